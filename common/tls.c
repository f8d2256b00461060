/*
 * tls.c: TLS 1.3 channels over memory BIOs (tls.h). Each channel's SSL
 * reads ciphertext from one memory BIO (what hpq_tls_feed puts there) and
 * writes to another (what hpq_tls_out_take empties); the program's event
 * loop moves the bytes, so no socket or loop is seen here.
 *
 * Feeding decrypts at once into the channel's plaintext buffer, so that a
 * failure or the peer's close_notify shows in hpq_tls_feed's result and
 * hpq_tls_read simply hands out what is there. Plaintext written before
 * the handshake is held in the channel, never in OpenSSL, and goes out
 * only after the peer's certificate has verified.
 *
 * Trust: each context has its own X509_STORE holding only the configured
 * CA; the system's default paths are never loaded. A joining client has
 * no CA, only a pin: its verify callback looks for the pinned certificate
 * in the chain the server sent and verifies the server's certificate with
 * that certificate as the one trust anchor (and the usual name check).
 * OpenSSL's per-thread error queue is cleared before and after each call,
 * so that errors left by one channel never decide another's fate.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "error.h"
#include "log.h"
#include "ossl.h"
#include "tls.h"
#include "xalloc.h"

/* How much SSL_read is offered at a time: one TLS record's worth. */
#define READ_CHUNK 16384
#define ERROR_MAX 512

struct hpq_tls_ctx {
	SSL_CTX *ssl;
	bool server;
	bool pinned;
	unsigned char pin[32];
	char pin_text[HPQ_PKI_HASH_LEN];
};

/* A byte queue: data lies at p[off .. off+len). */
struct buf {
	unsigned char *p;
	size_t off, len, cap;
};

struct hpq_tls {
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
	bool server;
	bool ready; /* handshake done, peer verified */
	bool failed;
	bool eof;     /* the peer's close_notify came */
	bool closing; /* hpq_tls_shutdown was called */
	bool have_peer;
	unsigned char pin[32];
	char pin_text[HPQ_PKI_HASH_LEN];
	char *server_name;
	STACK_OF(X509) *anchors; /* the pinned CA, while the session needs it */
	struct buf early;        /* written before the handshake was done */
	struct buf in;           /* decrypted, not read yet */
	struct hpq_cert_info peer;
	char error[ERROR_MAX];
};

static void buf_reserve(struct buf *b, size_t need)
{
	if (b->cap - b->off - b->len >= need)
		return;
	if (b->off > 0) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
		if (b->cap - b->len >= need)
			return;
	}
	{
		size_t cap = b->cap ? b->cap : 4096;
		unsigned char *p;

		while (cap - b->len < need)
			cap *= 2;
		/* Not xrealloc: the old copy may hold plaintext and is wiped. */
		p = xmalloc(cap);
		if (b->len)
			memcpy(p, b->p, b->len);
		if (b->p) {
			OPENSSL_cleanse(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
}

static void buf_append(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	memcpy(b->p + b->off + b->len, data, len);
	b->len += len;
}

static void buf_free(struct buf *b)
{
	if (b->p) {
		OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

/* Every certificate in pem (at least one). */
static STACK_OF(X509) *certs_from_pem(const char *pem, const char *what, char *err, size_t errlen)
{
	STACK_OF(X509) *sk = NULL;
	size_t len = strlen(pem);
	BIO *b;

	if (len == 0 || len > INT_MAX) {
		hpq_errf(err, errlen, HPQ_EINVAL, "%s: no PEM certificate", what);
		return NULL;
	}
	b = BIO_new_mem_buf(pem, (int)len);
	sk = b ? sk_X509_new_null() : NULL;
	if (!sk)
		goto fail;
	for (;;) {
		X509 *x = PEM_read_bio_X509(b, NULL, hpq_ossl_no_passphrase, NULL);
		unsigned long e;

		if (!x) {
			/* The normal end: no further "BEGIN" line. */
			e = ERR_peek_last_error();
			if (sk_X509_num(sk) > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break;
			}
			goto fail;
		}
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			goto fail;
		}
	}
	BIO_free(b);
	return sk;
fail:
	hpq_ossl_errf(err, errlen, HPQ_EINVAL, "%s: not a PEM certificate", what);
	sk_X509_pop_free(sk, X509_free);
	BIO_free(b);
	return NULL;
}

static int load_own(SSL_CTX *c, const struct hpq_tls_config *cfg, char *err, size_t errlen)
{
	STACK_OF(X509) *certs;
	EVP_PKEY *key = NULL;
	size_t len = strlen(cfg->key_pem);
	BIO *b;
	int ok;

	certs = certs_from_pem(cfg->cert_pem, "own certificate", err, errlen);
	if (!certs)
		return HPQ_EINVAL;
	ok = SSL_CTX_use_certificate(c, sk_X509_value(certs, 0));
	/* Anything after the first certificate is chain. */
	for (int i = 1; ok && i < sk_X509_num(certs); i++)
		ok = SSL_CTX_add1_chain_cert(c, sk_X509_value(certs, i));
	sk_X509_pop_free(certs, X509_free);
	if (!ok)
		return hpq_ossl_errf(err, errlen, HPQ_EINVAL, "cannot use the own certificate");
	b = len > 0 && len <= INT_MAX ? BIO_new_mem_buf(cfg->key_pem, (int)len) : NULL;
	if (b)
		key = PEM_read_bio_PrivateKey(b, NULL, hpq_ossl_no_passphrase, NULL);
	BIO_free(b);
	if (!key)
		return hpq_ossl_errf(err, errlen, HPQ_EINVAL, "own key: not a PEM private key");
	ok = SSL_CTX_use_PrivateKey(c, key);
	EVP_PKEY_free(key);
	if (!ok || !SSL_CTX_check_private_key(c))
		return hpq_ossl_errf(err, errlen, HPQ_EINVAL,
				 "the own key does not match the own certificate");
	return 0;
}

static int parse_pin(const char *s, unsigned char out[32])
{
	if (!hpq_pki_hash_valid(s))
		return -1;
	for (int i = 0; i < 32; i++) {
		unsigned int v;

		if (sscanf(s + 7 + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

static int pin_verify(X509_STORE_CTX *x, void *arg);

struct hpq_tls_ctx *hpq_tls_ctx_new(bool server, const struct hpq_tls_config *cfg, char *err,
				    size_t errlen)
{
	struct hpq_tls_ctx *ctx;
	STACK_OF(X509) *cas = NULL;
	X509_STORE *store = NULL;
	SSL_CTX *c = NULL;

	if (!cfg) {
		hpq_errf(err, errlen, HPQ_EINVAL, "no TLS configuration");
		return NULL;
	}
	if (!cfg->cert_pem != !cfg->key_pem) {
		hpq_errf(err, errlen, HPQ_EINVAL,
			 "a certificate needs its key, a key its certificate");
		return NULL;
	}
	if (server && !cfg->cert_pem) {
		hpq_errf(err, errlen, HPQ_EINVAL, "a TLS server needs a certificate and key");
		return NULL;
	}
	if (server && cfg->pin_hash) {
		hpq_errf(err, errlen, HPQ_EINVAL, "a TLS server takes a CA, not a pin");
		return NULL;
	}
	if (!server && !cfg->ca_pem == !cfg->pin_hash) {
		hpq_errf(err, errlen, HPQ_EINVAL,
			 "a TLS client needs either a CA certificate or a pinned CA hash");
		return NULL;
	}
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->server = server;
	if (cfg->pin_hash) {
		if (parse_pin(cfg->pin_hash, ctx->pin) < 0) {
			hpq_errf(err, errlen, HPQ_EINVAL,
				 "invalid CA pin '%.80s' (expected sha256: and 64 hex digits)",
				 cfg->pin_hash);
			goto fail;
		}
		ctx->pinned = true;
		/* Lowercase, as hpq_ca_hash prints it. */
		for (int i = 0; i < HPQ_PKI_HASH_LEN; i++)
			ctx->pin_text[i] = (char)tolower((unsigned char)cfg->pin_hash[i]);
	}

	ERR_clear_error();
	c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!c || !SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) || !SSL_CTX_set_num_tickets(c, 0)) {
		hpq_ossl_errf(err, errlen, HPQ_ETLS, "cannot set up TLS");
		goto fail;
	}
	SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	/* The chain sent is exactly the configured one. */
	SSL_CTX_set_mode(c, SSL_MODE_NO_AUTO_CHAIN);

	store = X509_STORE_new();
	if (!store) {
		hpq_ossl_errf(err, errlen, HPQ_ETLS, "cannot set up TLS");
		goto fail;
	}
	if (cfg->ca_pem) {
		cas = certs_from_pem(cfg->ca_pem, "CA certificate", err, errlen);
		if (!cas) {
			X509_STORE_free(store);
			goto fail;
		}
		for (int i = 0; i < sk_X509_num(cas); i++) {
			if (!X509_STORE_add_cert(store, sk_X509_value(cas, i))) {
				hpq_ossl_errf(err, errlen, HPQ_EINVAL,
					  "cannot trust the CA certificate");
				sk_X509_pop_free(cas, X509_free);
				X509_STORE_free(store);
				goto fail;
			}
		}
		sk_X509_pop_free(cas, X509_free);
	}
	SSL_CTX_set_cert_store(c, store);

	if (cfg->cert_pem && load_own(c, cfg, err, errlen) < 0)
		goto fail;
	if (cfg->chain_pem) {
		STACK_OF(X509) *chain = certs_from_pem(cfg->chain_pem, "chain", err, errlen);
		int ok = chain != NULL;

		for (int i = 0; ok && i < sk_X509_num(chain); i++)
			ok = SSL_CTX_add1_chain_cert(c, sk_X509_value(chain, i));
		sk_X509_pop_free(chain, X509_free);
		if (!ok) {
			if (chain)
				hpq_ossl_errf(err, errlen, HPQ_EINVAL, "cannot use the chain");
			goto fail;
		}
	}
	/* Server: ask for a certificate, do not require one, verify one that
	 * comes. Client: always verify the server. */
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	if (ctx->pinned)
		SSL_CTX_set_cert_verify_callback(c, pin_verify, NULL);
	ctx->ssl = c;
	ERR_clear_error();
	return ctx;
fail:
	SSL_CTX_free(c);
	free(ctx);
	ERR_clear_error();
	return NULL;
}

void hpq_tls_ctx_free(struct hpq_tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

static bool is_ip(const char *s)
{
	unsigned char b[16];

	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* A DNS name as it may appear in a certificate (pki.c makes the rules). */
static bool is_dns(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(c < 128 && (isalnum(c) || c == '-' || c == '.')))
			return false;
	}
	return true;
}

static void tls_failf(struct hpq_tls *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Marks the channel failed with a reason (the first one stays). Anything
 * still held before the handshake is dropped unsent. */
static void tls_failf(struct hpq_tls *t, const char *fmt, ...)
{
	va_list ap;

	t->failed = true;
	if (!t->error[0]) {
		va_start(ap, fmt);
		vsnprintf(t->error, sizeof(t->error), fmt, ap);
		va_end(ap);
	}
	buf_free(&t->early);
	buf_free(&t->in);
	ERR_clear_error();
}

/* What a failed verification means, with the name when it was the name. */
static void verify_words(const struct hpq_tls *t, long v, char *out, size_t len)
{
	const char *why = X509_verify_cert_error_string(v);

	if (!t->server &&
	    (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH))
		snprintf(out, len, "%s (the certificate does not name '%s')", why, t->server_name);
	else
		snprintf(out, len, "%s", why);
}

/* The channel failed inside OpenSSL: say why as precisely as it can. */
static void tls_fail(struct hpq_tls *t)
{
	long v = SSL_get_verify_result(t->ssl);
	const char *reason = hpq_ossl_reason();
	char words[300];

	if (v != X509_V_OK) {
		verify_words(t, v, words, sizeof(words));
		tls_failf(t, "%s certificate verify failed: %s",
			  t->server ? "the client's" : "the server's", words);
	} else if (reason && strstr(reason, "alert")) {
		tls_failf(t, "the %s refused the TLS %s: %s", t->server ? "client" : "server",
			  t->ready ? "channel" : "handshake", reason);
	} else {
		tls_failf(t, "TLS %s failed: %s", t->ready ? "channel" : "handshake",
			  reason ? reason : "unknown error");
	}
}

/* Client, pinned: the certificate verify callback (tls.h). */
static int pin_verify(X509_STORE_CTX *x, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct hpq_tls *t = ssl ? SSL_get_app_data(ssl) : NULL;
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_untrusted(x);
	X509 *anchor = NULL, *last;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n;
	char words[300];

	if (!t)
		return 0;
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *c = sk_X509_value(chain, i);

		if (X509_digest(c, EVP_sha256(), md, &n) && n == 32 &&
		    CRYPTO_memcmp(md, t->pin, 32) == 0) {
			anchor = c;
			break;
		}
	}
	if (!anchor) {
		static const char hex[] = "0123456789abcdef";
		char sent[HPQ_PKI_HASH_LEN] = "";

		last = sk_X509_num(chain) > 1 ? sk_X509_value(chain, sk_X509_num(chain) - 1) : NULL;
		if (last && X509_digest(last, EVP_sha256(), md, &n) && n == 32) {
			memcpy(sent, "sha256:", 7);
			for (unsigned int i = 0; i < 32; i++) {
				sent[7 + 2 * i] = hex[md[i] >> 4];
				sent[8 + 2 * i] = hex[md[i] & 15];
			}
			sent[71] = '\0';
		}
		snprintf(t->error, sizeof(t->error),
			 "the server's CA does not match the pinned hash %s (%s%s)", t->pin_text,
			 sent[0] ? "it sent a CA with " : "it sent no CA certificate",
			 sent[0] ? sent : "");
		X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_UNTRUSTED);
		return 0;
	}
	/* The pinned certificate is the only trust anchor of this check. */
	sk_X509_pop_free(t->anchors, X509_free);
	t->anchors = sk_X509_new_null();
	if (!t->anchors || !X509_up_ref(anchor))
		return 0;
	if (!sk_X509_push(t->anchors, anchor)) {
		X509_free(anchor);
		return 0;
	}
	X509_STORE_CTX_set0_trusted_stack(x, t->anchors);
	if (X509_verify_cert(x) != 1) {
		verify_words(t, X509_STORE_CTX_get_error(x), words, sizeof(words));
		snprintf(t->error, sizeof(t->error),
			 "the server's certificate verify failed against the pinned CA %s: %s",
			 t->pin_text, words);
		return 0;
	}
	return 1;
}

static int tls_send(struct hpq_tls *t, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		int n = len > INT_MAX ? INT_MAX : (int)len, w;

		ERR_clear_error();
		w = SSL_write(t->ssl, p, n);
		if (w <= 0) {
			tls_fail(t);
			return HPQ_ETLS;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* The handshake is done and the peer verified: note who it is, send what
 * was written meanwhile, and the close that was asked for. */
static void tls_on_ready(struct hpq_tls *t)
{
	X509 *peer = SSL_get0_peer_certificate(t->ssl);
	long v = SSL_get_verify_result(t->ssl);

	if (v != X509_V_OK) {
		/* SSL_VERIFY_PEER already fails the handshake; never trust less. */
		tls_fail(t);
		return;
	}
	if (peer) {
		BIO *b = BIO_new(BIO_s_mem());
		char *data, err[256];
		long n;

		if (!b || !PEM_write_bio_X509(b, peer)) {
			BIO_free(b);
			tls_failf(t, "cannot read the peer's certificate");
			return;
		}
		n = BIO_get_mem_data(b, &data);
		if (hpq_pki_cert_info(data, (size_t)n, &t->peer, err, sizeof(err)) < 0) {
			BIO_free(b);
			tls_failf(t, "the peer's certificate: %s", err);
			return;
		}
		BIO_free(b);
		t->have_peer = true;
	}
	t->ready = true;
	if (t->early.len > 0) {
		if (tls_send(t, t->early.p + t->early.off, t->early.len) < 0)
			return;
		buf_free(&t->early);
	}
	if (t->closing) {
		ERR_clear_error();
		SSL_shutdown(t->ssl);
		ERR_clear_error();
	}
}

static void tls_advance(struct hpq_tls *t)
{
	int r, e;

	if (t->failed || t->ready)
		return;
	ERR_clear_error();
	r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		tls_on_ready(t);
		return;
	}
	e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		return;
	}
	tls_fail(t);
}

/* Decrypts everything fed so far into t->in. */
static void tls_pull(struct hpq_tls *t)
{
	while (!t->failed && !t->eof) {
		int n, e;

		buf_reserve(&t->in, READ_CHUNK);
		ERR_clear_error();
		n = SSL_read(t->ssl, t->in.p + t->in.off + t->in.len, READ_CHUNK);
		if (n > 0) {
			t->in.len += (size_t)n;
			continue;
		}
		e = SSL_get_error(t->ssl, n);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			ERR_clear_error();
			break;
		}
		if (e == SSL_ERROR_ZERO_RETURN) {
			ERR_clear_error();
			t->eof = true;
			break;
		}
		tls_fail(t);
	}
}

struct hpq_tls *hpq_tls_new(struct hpq_tls_ctx *ctx, const char *server_name)
{
	struct hpq_tls *t = xcalloc(1, sizeof(*t));
	X509_VERIFY_PARAM *param;

	t->server = ctx->server;
	memcpy(t->pin, ctx->pin, sizeof(t->pin));
	memcpy(t->pin_text, ctx->pin_text, sizeof(t->pin_text));
	ERR_clear_error();
	t->ssl = SSL_new(ctx->ssl);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->rbio || !t->wbio)
		hpq_fatal("out of memory (TLS channel)");
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_app_data(t->ssl, t);
	if (t->server) {
		SSL_set_accept_state(t->ssl);
		return t;
	}
	SSL_set_connect_state(t->ssl);
	if (!server_name || !*server_name) {
		tls_failf(t, "no server name to check the server's certificate against");
		return t;
	}
	t->server_name = xstrdup(server_name);
	param = SSL_get0_param(t->ssl);
	/* Names come from subjectAltName only, never from a subject's CN. */
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
						       X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	if (is_ip(server_name)) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(param, server_name)) {
			tls_failf(t, "invalid server address '%s'", server_name);
			return t;
		}
	} else if (!is_dns(server_name) || !X509_VERIFY_PARAM_set1_host(param, server_name, 0) ||
		   !SSL_set_tlsext_host_name(t->ssl, server_name)) {
		tls_failf(t, "invalid server name '%.253s'", server_name);
		return t;
	}
	tls_advance(t);
	return t;
}

void hpq_tls_free(struct hpq_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	sk_X509_pop_free(t->anchors, X509_free);
	buf_free(&t->early);
	buf_free(&t->in);
	free(t->server_name);
	free(t);
	ERR_clear_error();
}

int hpq_tls_feed(struct hpq_tls *t, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	if (t->failed)
		return HPQ_ETLS;
	if (t->eof)
		return 0; /* nothing after close_notify counts */
	while (len > 0) {
		int n = len > INT_MAX ? INT_MAX : (int)len;

		if (BIO_write(t->rbio, p, n) != n)
			hpq_fatal("out of memory (TLS input)");
		p += n;
		len -= (size_t)n;
	}
	tls_advance(t);
	if (t->ready)
		tls_pull(t);
	return t->failed ? HPQ_ETLS : 0;
}

ssize_t hpq_tls_read(struct hpq_tls *t, void *buf, size_t len)
{
	size_t n;

	if (t->failed)
		return HPQ_ETLS;
	if (t->in.len == 0)
		return t->eof ? -EPIPE : 0;
	n = len < t->in.len ? len : t->in.len;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	memcpy(buf, t->in.p + t->in.off, n);
	t->in.off += n;
	t->in.len -= n;
	if (t->in.len == 0)
		t->in.off = 0;
	return (ssize_t)n;
}

int hpq_tls_write(struct hpq_tls *t, const void *buf, size_t len)
{
	if (t->failed)
		return HPQ_ETLS;
	if (t->closing)
		return -EPIPE;
	if (len == 0)
		return 0;
	if (!t->ready) {
		buf_append(&t->early, buf, len);
		return 0;
	}
	return tls_send(t, buf, len);
}

size_t hpq_tls_out_pending(const struct hpq_tls *t)
{
	return BIO_ctrl_pending(t->wbio);
}

size_t hpq_tls_out_take(struct hpq_tls *t, void *buf, size_t len)
{
	int n = BIO_read(t->wbio, buf, len > INT_MAX ? INT_MAX : (int)len);

	return n > 0 ? (size_t)n : 0;
}

void hpq_tls_shutdown(struct hpq_tls *t)
{
	if (t->failed || t->closing)
		return;
	t->closing = true;
	/* Before the handshake is done, tls_on_ready sends it. */
	if (t->ready) {
		ERR_clear_error();
		SSL_shutdown(t->ssl);
		ERR_clear_error();
	}
}

bool hpq_tls_ready(const struct hpq_tls *t)
{
	return t->ready && !t->failed;
}

bool hpq_tls_peer(const struct hpq_tls *t, struct hpq_cert_info *info)
{
	if (!hpq_tls_ready(t) || !t->have_peer)
		return false;
	if (info)
		*info = t->peer;
	return true;
}

const char *hpq_tls_error(const struct hpq_tls *t)
{
	return t->error;
}
