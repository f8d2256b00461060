/*
 * test_common_tls.c: two channels pumped against each other in memory.
 * Mutual TLS carries data both ways (also data written before the
 * handshake, also 1 MiB, also when the bytes move a few at a time); a
 * client without a certificate is let in without a peer; a client
 * certificate from another CA, a server that does not carry the dialled
 * name and a server from another CA are refused with words; a joining
 * client trusts the right pin and refuses a wrong one, and what it wrote
 * before the refusal never reaches the server; close_notify reads as
 * -EPIPE; a TLS 1.2 client is refused.
 */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "error.h"
#include "pki.h"
#include "tls.h"

static char dir[] = "/tmp/hpq-test-tls-XXXXXX";

/* The cluster (CA, server, one node) and a stranger (another CA, a node). */
static struct hpq_ca *ca, *other;
static char *srv_cert, *srv_key, *node_cert, *node_key, *alien_cert, *alien_key;

struct end {
	struct hpq_tls *t;
	int rc;       /* first error hpq_tls_feed returned */
	size_t taken; /* plaintext bytes read so far */
	char *got;    /* and what they were */
};

static void node_pair(struct hpq_ca *c, const char *node, char **cert, char **key)
{
	char err[256], *csr;

	assert_int_equal(hpq_pki_make_request(node, key, &csr, err, sizeof(err)), 0);
	if (hpq_ca_sign_node(c, csr, strlen(csr), node, "a100", 86400, cert, NULL, err,
			     sizeof(err)) != 0)
		fail_msg("%s", err);
	free(csr);
}

static int setup(void **state)
{
	const char *names[] = {"127.0.0.1", "head.example"};
	char err[256], sub[128];

	if (!mkdtemp(dir))
		return -1;
	snprintf(sub, sizeof(sub), "%s/other", dir);
	if (mkdir(sub, 0700) < 0 || hpq_ca_open(dir, "tls", true, &ca, err, sizeof(err)) < 0 ||
	    hpq_ca_open(sub, "other", true, &other, err, sizeof(err)) < 0 ||
	    hpq_ca_server_cert(ca, dir, names, 2, 30, &srv_cert, &srv_key, err, sizeof(err)) < 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	node_pair(ca, "gpu-01", &node_cert, &node_key);
	node_pair(other, "gpu-01", &alien_cert, &alien_key);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	hpq_ca_free(ca);
	hpq_ca_free(other);
	free(srv_cert);
	free(srv_key);
	free(node_cert);
	free(node_key);
	free(alien_cert);
	free(alien_key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct hpq_tls_ctx *server_ctx(bool chain)
{
	struct hpq_tls_config cfg = {
		.ca_pem = hpq_ca_pem(ca),
		.cert_pem = srv_cert,
		.key_pem = srv_key,
		.chain_pem = chain ? hpq_ca_pem(ca) : NULL,
	};
	char err[256];
	struct hpq_tls_ctx *c = hpq_tls_ctx_new(true, &cfg, err, sizeof(err));

	if (!c)
		fail_msg("server ctx: %s", err);
	return c;
}

static struct hpq_tls_ctx *client_ctx(const struct hpq_tls_config *cfg)
{
	char err[256];
	struct hpq_tls_ctx *c = hpq_tls_ctx_new(false, cfg, err, sizeof(err));

	if (!c)
		fail_msg("client ctx: %s", err);
	return c;
}

/* Reads everything a channel has decrypted into e->got. */
static void drain(struct end *e)
{
	char buf[7000];
	ssize_t n;

	while ((n = hpq_tls_read(e->t, buf, sizeof(buf))) > 0) {
		e->got = realloc(e->got, e->taken + (size_t)n + 1);
		assert_non_null(e->got);
		memcpy(e->got + e->taken, buf, (size_t)n);
		e->taken += (size_t)n;
		e->got[e->taken] = '\0';
	}
}

/* Moves ciphertext between the two, at most step bytes at a time, until
 * neither has any left; reads what arrives as it goes. */
static void pump_step(struct end *a, struct end *b, size_t step)
{
	static unsigned char buf[1 << 16];
	bool moved = true;

	if (step > sizeof(buf))
		step = sizeof(buf);
	while (moved) {
		struct end *from = a, *to = b;

		moved = false;
		for (int way = 0; way < 2; way++) {
			size_t n;

			while ((n = hpq_tls_out_take(from->t, buf, step)) > 0) {
				int r = hpq_tls_feed(to->t, buf, n);

				moved = true;
				if (r < 0 && to->rc == 0)
					to->rc = r;
				drain(to);
			}
			from = b;
			to = a;
		}
	}
}

static void pump(struct end *a, struct end *b)
{
	pump_step(a, b, 1 << 16);
}

static void end_free(struct end *e)
{
	hpq_tls_free(e->t);
	free(e->got);
	memset(e, 0, sizeof(*e));
}

static void expect_error(const struct hpq_tls *t, const char *words)
{
	if (!strstr(hpq_tls_error(t), words))
		fail_msg("expected '%s' in '%s'", words, hpq_tls_error(t));
}

static void test_mutual(void **state)
{
	struct hpq_tls_config ccfg = {
		.ca_pem = hpq_ca_pem(ca), .cert_pem = node_cert, .key_pem = node_key};
	struct hpq_tls_ctx *sctx = server_ctx(true), *cctx = client_ctx(&ccfg);
	struct end c = {.t = hpq_tls_new(cctx, "127.0.0.1")}, s = {.t = hpq_tls_new(sctx, NULL)};
	struct hpq_cert_info info;
	size_t big = 1u << 20;
	char *payload;

	/* The client hello is there at once; nothing is ready yet. */
	assert_true(hpq_tls_out_pending(c.t) > 0);
	assert_false(hpq_tls_ready(c.t));
	assert_false(hpq_tls_peer(s.t, &info));

	/* Written before the handshake: kept, then sent. */
	assert_int_equal(hpq_tls_write(c.t, "hello ", 6), 0);
	assert_int_equal(hpq_tls_write(c.t, "server", 6), 0);
	assert_int_equal(hpq_tls_write(s.t, "welcome", 7), 0);
	pump(&c, &s);
	assert_int_equal(c.rc, 0);
	assert_int_equal(s.rc, 0);
	assert_true(hpq_tls_ready(c.t));
	assert_true(hpq_tls_ready(s.t));
	assert_string_equal(hpq_tls_error(c.t), "");
	assert_string_equal(s.got, "hello server");
	assert_string_equal(c.got, "welcome");

	/* Each knows the other, as the CA named them. */
	assert_true(hpq_tls_peer(s.t, &info));
	assert_string_equal(info.cn, "gpu-01");
	assert_string_equal(info.ou, "a100");
	assert_true(hpq_tls_peer(c.t, &info));
	assert_string_equal(info.cn, "hpqd");

	/* 1 MiB each way, in one write. */
	payload = malloc(big);
	assert_non_null(payload);
	for (size_t i = 0; i < big; i++)
		payload[i] = (char)('a' + i % 23);
	free(s.got);
	free(c.got);
	s.got = c.got = NULL;
	s.taken = c.taken = 0;
	assert_int_equal(hpq_tls_write(c.t, payload, big), 0);
	assert_int_equal(hpq_tls_write(s.t, payload, big), 0);
	pump(&c, &s);
	assert_int_equal(s.taken, big);
	assert_int_equal(c.taken, big);
	assert_memory_equal(s.got, payload, big);
	assert_memory_equal(c.got, payload, big);
	free(payload);

	end_free(&c);
	end_free(&s);
	/* Channels outlive nothing: the contexts may go first or last. */
	hpq_tls_ctx_free(sctx);
	hpq_tls_ctx_free(cctx);
}

/* The handshake and data when the loop moves a few bytes at a time. */
static void test_small_pieces(void **state)
{
	struct hpq_tls_config ccfg = {
		.ca_pem = hpq_ca_pem(ca), .cert_pem = node_cert, .key_pem = node_key};
	struct hpq_tls_ctx *sctx = server_ctx(true), *cctx = client_ctx(&ccfg);
	struct end c = {.t = hpq_tls_new(cctx, "head.example")}, s = {.t = hpq_tls_new(sctx, NULL)};

	/* Contexts freed while their channels live on. */
	hpq_tls_ctx_free(sctx);
	hpq_tls_ctx_free(cctx);
	assert_int_equal(hpq_tls_write(c.t, "early bytes", 11), 0);
	pump_step(&c, &s, 3);
	assert_true(hpq_tls_ready(c.t) && hpq_tls_ready(s.t));
	assert_string_equal(s.got, "early bytes");
	assert_int_equal(hpq_tls_write(s.t, "late bytes", 10), 0);
	pump_step(&c, &s, 1);
	assert_string_equal(c.got, "late bytes");
	end_free(&c);
	end_free(&s);
}

static void test_client_without_cert(void **state)
{
	struct hpq_tls_config ccfg = {.ca_pem = hpq_ca_pem(ca)};
	struct hpq_tls_ctx *sctx = server_ctx(false), *cctx = client_ctx(&ccfg);
	struct end c = {.t = hpq_tls_new(cctx, "head.example")}, s = {.t = hpq_tls_new(sctx, NULL)};
	struct hpq_cert_info info;

	assert_int_equal(hpq_tls_write(c.t, "munge next", 10), 0);
	pump(&c, &s);
	assert_true(hpq_tls_ready(s.t));
	assert_true(hpq_tls_ready(c.t));
	assert_false(hpq_tls_peer(s.t, &info));
	assert_true(hpq_tls_peer(c.t, &info));
	assert_string_equal(s.got, "munge next");
	end_free(&c);
	end_free(&s);
	hpq_tls_ctx_free(sctx);
	hpq_tls_ctx_free(cctx);
}

static void test_client_cert_other_ca(void **state)
{
	struct hpq_tls_config ccfg = {
		.ca_pem = hpq_ca_pem(ca), .cert_pem = alien_cert, .key_pem = alien_key};
	struct hpq_tls_ctx *sctx = server_ctx(true), *cctx = client_ctx(&ccfg);
	struct end c = {.t = hpq_tls_new(cctx, "127.0.0.1")}, s = {.t = hpq_tls_new(sctx, NULL)};
	struct hpq_cert_info info;

	assert_int_equal(hpq_tls_write(c.t, "let me in", 9), 0);
	pump(&c, &s);
	assert_int_equal(s.rc, HPQ_ETLS);
	assert_false(hpq_tls_ready(s.t));
	assert_false(hpq_tls_peer(s.t, &info));
	expect_error(s.t, "the client's certificate verify failed");
	expect_error(s.t, "unable to get local issuer certificate");
	assert_int_equal(s.taken, 0);
	assert_int_equal(hpq_tls_read(s.t, (char[8]){0}, 8), HPQ_ETLS);
	assert_int_equal(hpq_tls_write(s.t, "x", 1), HPQ_ETLS);
	/* The client hears the server's alert. */
	assert_int_equal(c.rc, HPQ_ETLS);
	expect_error(c.t, "the server refused the TLS channel: tlsv1 alert unknown ca");
	end_free(&c);
	end_free(&s);
	hpq_tls_ctx_free(sctx);
	hpq_tls_ctx_free(cctx);
}

static void wrong_server(const struct hpq_tls_config *ccfg, const char *name, bool chain,
			 const char *words, const char *words2)
{
	struct hpq_tls_ctx *sctx = server_ctx(chain), *cctx = client_ctx(ccfg);
	struct end c = {.t = hpq_tls_new(cctx, name)}, s = {.t = hpq_tls_new(sctx, NULL)};

	assert_int_equal(hpq_tls_write(c.t, "my secret token", 15), 0);
	pump(&c, &s);
	assert_int_equal(c.rc, HPQ_ETLS);
	assert_false(hpq_tls_ready(c.t));
	expect_error(c.t, words);
	if (words2)
		expect_error(c.t, words2);
	/* Nothing the client wrote reached the server. */
	assert_int_equal(s.taken, 0);
	assert_false(hpq_tls_ready(s.t));
	assert_true(hpq_tls_read(s.t, (char[8]){0}, 8) <= 0);
	assert_int_equal(hpq_tls_write(c.t, "more", 4), HPQ_ETLS);
	assert_int_equal(hpq_tls_feed(c.t, "x", 1), HPQ_ETLS);
	end_free(&c);
	end_free(&s);
	hpq_tls_ctx_free(sctx);
	hpq_tls_ctx_free(cctx);
}

static void test_server_refused(void **state)
{
	struct hpq_tls_config right = {.ca_pem = hpq_ca_pem(ca)};
	struct hpq_tls_config wrong_ca = {.ca_pem = hpq_ca_pem(other)};

	wrong_server(&right, "10.9.9.9", true, "the server's certificate verify failed",
		     "does not name '10.9.9.9'");
	wrong_server(&right, "other.example", true, "certificate verify failed",
		     "does not name 'other.example'");
	wrong_server(&right, "head.example.evil", true, "certificate verify failed", NULL);
	/* Another CA: with our CA in the chain it is an untrusted root,
	 * without it an unknown issuer. */
	wrong_server(&wrong_ca, "127.0.0.1", true, "certificate verify failed",
		     "self-signed certificate in certificate chain");
	wrong_server(&wrong_ca, "127.0.0.1", false, "certificate verify failed",
		     "unable to get local issuer certificate");
}

/* A node's certificate is not a server's, even from the right CA. */
static void test_node_cert_as_server(void **state)
{
	struct hpq_tls_config scfg = {
		.ca_pem = hpq_ca_pem(ca), .cert_pem = node_cert, .key_pem = node_key};
	struct hpq_tls_config ccfg = {.ca_pem = hpq_ca_pem(ca)};
	char err[256];
	struct hpq_tls_ctx *sctx = hpq_tls_ctx_new(true, &scfg, err, sizeof(err));
	struct hpq_tls_ctx *cctx = client_ctx(&ccfg);
	struct end c, s;

	assert_non_null(sctx);
	c = (struct end){.t = hpq_tls_new(cctx, "gpu-01")};
	s = (struct end){.t = hpq_tls_new(sctx, NULL)};
	pump(&c, &s);
	assert_int_equal(c.rc, HPQ_ETLS);
	expect_error(c.t, "certificate verify failed");
	end_free(&c);
	end_free(&s);
	hpq_tls_ctx_free(sctx);
	hpq_tls_ctx_free(cctx);
}

static void test_pin(void **state)
{
	struct hpq_tls_config ccfg = {.pin_hash = hpq_ca_hash(ca)};
	struct hpq_tls_ctx *sctx = server_ctx(true), *cctx = client_ctx(&ccfg);
	struct end c = {.t = hpq_tls_new(cctx, "127.0.0.1")}, s = {.t = hpq_tls_new(sctx, NULL)};
	struct hpq_cert_info info;
	char upper[HPQ_PKI_HASH_LEN], leaf[HPQ_PKI_HASH_LEN], err[256];

	assert_int_equal(hpq_tls_write(c.t, "join gpu-01", 11), 0);
	pump(&c, &s);
	assert_int_equal(c.rc, 0);
	assert_true(hpq_tls_ready(c.t));
	assert_true(hpq_tls_ready(s.t));
	assert_true(hpq_tls_peer(c.t, &info));
	assert_string_equal(info.cn, "hpqd");
	assert_false(hpq_tls_peer(s.t, &info));
	assert_string_equal(s.got, "join gpu-01");
	end_free(&c);
	end_free(&s);
	hpq_tls_ctx_free(cctx);

	/* A pin typed in capitals is the same pin. */
	for (int i = 0; i < HPQ_PKI_HASH_LEN; i++)
		upper[i] = i < 7 ? hpq_ca_hash(ca)[i] : (char)toupper(hpq_ca_hash(ca)[i]);
	ccfg.pin_hash = upper;
	cctx = client_ctx(&ccfg);
	c = (struct end){.t = hpq_tls_new(cctx, "head.example")};
	s = (struct end){.t = hpq_tls_new(sctx, NULL)};
	pump(&c, &s);
	assert_true(hpq_tls_ready(c.t));
	end_free(&c);
	end_free(&s);
	hpq_tls_ctx_free(cctx);
	hpq_tls_ctx_free(sctx);

	/* The pin of another CA: refused before anything is sent, and the
	 * message names the pin and what the server sent. */
	{
		struct hpq_tls_config wrong = {.pin_hash = hpq_ca_hash(other)};
		char words[200];

		snprintf(words, sizeof(words),
			 "the server's CA does not match the pinned hash %s (it sent a CA with %s)",
			 hpq_ca_hash(other), hpq_ca_hash(ca));
		wrong_server(&wrong, "127.0.0.1", true, words, NULL);
	}
	/* The right pin, but the server sends no CA in its chain. */
	wrong_server(&ccfg, "127.0.0.1", false, "does not match the pinned hash",
		     "it sent no CA certificate");
	/* The right pin, the wrong name. */
	wrong_server(&ccfg, "10.1.1.1", true, "verify failed against the pinned CA",
		     "does not name '10.1.1.1'");
	/* Pinning the server's own certificate does not make it a CA. */
	assert_int_equal(hpq_pki_cert_hash(srv_cert, strlen(srv_cert), leaf, err, sizeof(err)), 0);
	{
		struct hpq_tls_config pin_leaf = {.pin_hash = leaf};

		wrong_server(&pin_leaf, "127.0.0.1", true, "verify failed against the pinned CA",
			     NULL);
	}
}

static void test_close(void **state)
{
	struct hpq_tls_config ccfg = {.ca_pem = hpq_ca_pem(ca)};
	struct hpq_tls_ctx *sctx = server_ctx(true), *cctx = client_ctx(&ccfg);
	struct end c = {.t = hpq_tls_new(cctx, "127.0.0.1")}, s = {.t = hpq_tls_new(sctx, NULL)};

	pump(&c, &s);
	assert_true(hpq_tls_ready(s.t));
	assert_int_equal(hpq_tls_write(c.t, "bye", 3), 0);
	hpq_tls_shutdown(c.t);
	assert_int_equal(hpq_tls_write(c.t, "late", 4), -EPIPE);
	pump(&c, &s);
	assert_int_equal(s.rc, 0);
	assert_string_equal(s.got, "bye");
	assert_int_equal(hpq_tls_read(s.t, (char[8]){0}, 8), -EPIPE);
	assert_int_equal(hpq_tls_read(s.t, (char[8]){0}, 8), -EPIPE);
	/* The server may still answer and close; the client sees both. */
	assert_int_equal(hpq_tls_write(s.t, "ok", 2), 0);
	hpq_tls_shutdown(s.t);
	pump(&c, &s);
	assert_string_equal(c.got, "ok");
	assert_int_equal(hpq_tls_read(c.t, (char[8]){0}, 8), -EPIPE);
	end_free(&c);
	end_free(&s);

	/* Written and closed before the handshake: both happen after it. */
	c = (struct end){.t = hpq_tls_new(cctx, "127.0.0.1")};
	s = (struct end){.t = hpq_tls_new(sctx, NULL)};
	assert_int_equal(hpq_tls_write(c.t, "quick", 5), 0);
	hpq_tls_shutdown(c.t);
	pump(&c, &s);
	assert_string_equal(s.got, "quick");
	assert_int_equal(hpq_tls_read(s.t, (char[8]){0}, 8), -EPIPE);
	end_free(&c);
	end_free(&s);
	hpq_tls_ctx_free(sctx);
	hpq_tls_ctx_free(cctx);
}

static void test_garbage_and_config(void **state)
{
	struct hpq_tls_ctx *sctx = server_ctx(true), *cctx;
	struct hpq_tls_config cfg = {0};
	struct hpq_tls *t;
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	char err[256];

	/* Not TLS at all. */
	t = hpq_tls_new(sctx, NULL);
	assert_int_equal(hpq_tls_feed(t, http, sizeof(http) - 1), HPQ_ETLS);
	assert_true(hpq_tls_error(t)[0] != '\0');
	assert_int_equal(hpq_tls_feed(t, http, sizeof(http) - 1), HPQ_ETLS);
	hpq_tls_free(t);

	/* Configurations that cannot work are refused with words. */
	assert_null(hpq_tls_ctx_new(false, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "either a CA certificate or a pinned CA hash"));
	cfg.ca_pem = hpq_ca_pem(ca);
	cfg.pin_hash = hpq_ca_hash(ca);
	assert_null(hpq_tls_ctx_new(false, &cfg, err, sizeof(err)));
	cfg.ca_pem = NULL;
	cfg.pin_hash = "sha256:1234";
	assert_null(hpq_tls_ctx_new(false, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "invalid CA pin"));
	cfg.pin_hash = NULL;
	cfg.ca_pem = "not a certificate";
	assert_null(hpq_tls_ctx_new(false, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "CA certificate"));
	cfg.ca_pem = hpq_ca_pem(ca);
	assert_null(hpq_tls_ctx_new(true, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "needs a certificate"));
	cfg.cert_pem = srv_cert;
	assert_null(hpq_tls_ctx_new(true, &cfg, err, sizeof(err)));
	cfg.key_pem = node_key;
	assert_null(hpq_tls_ctx_new(true, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "does not match"));
	cfg.key_pem = "junk";
	assert_null(hpq_tls_ctx_new(true, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "not a PEM private key"));

	/* A client channel needs a name to check. */
	cfg = (struct hpq_tls_config){.ca_pem = hpq_ca_pem(ca)};
	cctx = client_ctx(&cfg);
	t = hpq_tls_new(cctx, NULL);
	assert_non_null(strstr(hpq_tls_error(t), "no server name"));
	assert_int_equal(hpq_tls_write(t, "x", 1), HPQ_ETLS);
	assert_int_equal(hpq_tls_out_pending(t), 0);
	hpq_tls_free(t);
	t = hpq_tls_new(cctx, "bad name/");
	assert_non_null(strstr(hpq_tls_error(t), "invalid server name"));
	hpq_tls_free(t);
	hpq_tls_ctx_free(cctx);
	hpq_tls_ctx_free(sctx);
}

/* A client that offers only TLS 1.2 (plain OpenSSL) gets no channel. */
static void test_tls12_refused(void **state)
{
	struct hpq_tls_ctx *sctx = server_ctx(true);
	struct hpq_tls *s = hpq_tls_new(sctx, NULL);
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	unsigned char buf[16384];
	int n, r = 0;

	assert_int_equal(SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION), 1);
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	ssl = SSL_new(c);
	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	for (int round = 0; round < 10 && r == 0; round++) {
		SSL_do_handshake(ssl);
		while ((n = BIO_read(wb, buf, sizeof(buf))) > 0)
			r = hpq_tls_feed(s, buf, (size_t)n);
		while ((n = (int)hpq_tls_out_take(s, buf, sizeof(buf))) > 0)
			BIO_write(rb, buf, n);
	}
	assert_int_equal(r, HPQ_ETLS);
	assert_false(hpq_tls_ready(s));
	expect_error(s, "unsupported protocol");
	SSL_free(ssl);
	SSL_CTX_free(c);
	hpq_tls_free(s);
	hpq_tls_ctx_free(sctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutual),
		cmocka_unit_test(test_small_pieces),
		cmocka_unit_test(test_client_without_cert),
		cmocka_unit_test(test_client_cert_other_ca),
		cmocka_unit_test(test_server_refused),
		cmocka_unit_test(test_node_cert_as_server),
		cmocka_unit_test(test_pin),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_garbage_and_config),
		cmocka_unit_test(test_tls12_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
