/*
 * test_common_pki.c: the cluster's certificates. A CA is made 0600 and
 * opened again with the same hash; key files are read only under ssh's
 * rules (owner, mode, a regular file of sane size: FIFOs and devices are
 * refused at once, never read); a key that does not match its certificate
 * is refused; the server certificate is kept while it fits and made again
 * when it does not; a node's certificate says what hpqd says (CN=node,
 * OU=pool, clientAuth, not a CA) whatever its request asked for, and
 * requests that are garbage, truncated, oversized, badly signed or of the
 * wrong key type are refused with words. OpenSSL itself checks the
 * results, so the tests do not trust the code under test to judge itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "error.h"
#include "pki.h"

static char dir[] = "/tmp/hpq-test-pki-XXXXXX";

/* A call that must succeed, with its words when it does not (err in scope). */
#define assert_ok(call)                                          \
	do {                                                     \
		int r_ = (call);                                 \
		if (r_ != 0)                                     \
			fail_msg("%s: %d (%s)", #call, r_, err); \
	} while (0)

static char *path_in(const char *sub, const char *name)
{
	static char buf[32][512];
	static int i;
	char *p = buf[i++ % 32];

	if (name)
		snprintf(p, 512, "%s/%s/%s", dir, sub, name);
	else
		snprintf(p, 512, "%s/%s", dir, sub);
	return p;
}

static const char *subdir(const char *sub)
{
	const char *p = path_in(sub, NULL);

	assert_true(mkdir(p, 0700) == 0 || errno == EEXIST);
	return p;
}

static void write_mode(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static char *read_all(const char *path)
{
	char *buf = NULL, err[256];
	size_t len;

	assert_ok(hpq_pki_read_private(path, &buf, &len, err, sizeof(err)));
	assert_int_equal(strlen(buf), len);
	return buf;
}

static X509 *x509(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	BIO_free(b);
	assert_non_null(x);
	return x;
}

static int mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static bool ext_critical(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);

	assert_true(i >= 0);
	return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_ca_create_and_reopen(void **state)
{
	struct hpq_ca *ca, *again;
	struct hpq_cert_info info;
	char err[256], hash[HPQ_PKI_HASH_LEN], *pem;
	unsigned char md[32];
	unsigned int n;
	X509 *x;
	const char *d = subdir("ca1");

	/* Nothing there and not asked to create: an error, nothing made. */
	assert_int_equal(hpq_ca_open(d, "test", false, &ca, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no cluster CA"));
	assert_int_not_equal(access(path_in("ca1", "ca.key"), F_OK), 0);

	assert_ok(hpq_ca_open(d, "test", true, &ca, err, sizeof(err)));
	assert_int_equal(mode_of(path_in("ca1", "ca.key")), 0600);
	assert_int_equal(mode_of(path_in("ca1", "ca.crt")), 0600);
	assert_true(hpq_pki_hash_valid(hpq_ca_hash(ca)));
	assert_int_not_equal(access(path_in("ca1", "ca.key.tmp"), F_OK), 0);

	/* The file on disk is the PEM the CA hands out. */
	pem = read_all(path_in("ca1", "ca.crt"));
	assert_string_equal(pem, hpq_ca_pem(ca));
	free(pem);

	assert_ok(hpq_ca_open(d, "other label", false, &again, err, sizeof(err)));
	assert_string_equal(hpq_ca_hash(again), hpq_ca_hash(ca));
	assert_string_equal(hpq_ca_pem(again), hpq_ca_pem(ca));
	hpq_ca_free(again);

	/* The hash is SHA-256 of the DER, as OpenSSL computes it. */
	x = x509(hpq_ca_pem(ca));
	assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
	assert_int_equal(
		hpq_pki_cert_hash(hpq_ca_pem(ca), strlen(hpq_ca_pem(ca)), hash, err, sizeof(err)),
		0);
	assert_string_equal(hash, hpq_ca_hash(ca));
	for (unsigned int i = 0; i < n; i++) {
		char two[3];

		snprintf(two, sizeof(two), "%02x", md[i]);
		assert_memory_equal(hash + 7 + 2 * i, two, 2);
	}

	/* A CA: basicConstraints critical CA:TRUE, keyCertSign and cRLSign only,
	 * self-signed, about ten years. */
	assert_int_equal(X509_check_ca(x), 1);
	assert_true(ext_critical(x, NID_basic_constraints));
	assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_int_equal(X509_self_signed(x, 1), 1);
	assert_non_null(X509_get0_subject_key_id(x));
	assert_int_equal(
		hpq_pki_cert_info(hpq_ca_pem(ca), strlen(hpq_ca_pem(ca)), &info, err, sizeof(err)),
		0);
	assert_string_equal(info.cn, "hpq cluster CA test");
	assert_string_equal(info.ou, "");
	assert_true(info.not_after - info.not_before > (int64_t)3649 * 86400);
	assert_true(info.not_before <= (int64_t)time(NULL));
	X509_free(x);
	hpq_ca_free(ca);

	/* A label that would not fit the CN. */
	assert_int_equal(hpq_ca_open(subdir("ca-long"),
				     "a label far too long to fit in a certificate's common name",
				     true, &ca, err, sizeof(err)),
			 HPQ_EINVAL);
}

static void test_ca_half_or_mismatched(void **state)
{
	struct hpq_ca *a, *b, *c = NULL;
	char err[256], *key;
	const char *da = subdir("mis-a"), *db = subdir("mis-b");

	assert_ok(hpq_ca_open(da, "a", true, &a, err, sizeof(err)));
	assert_ok(hpq_ca_open(db, "b", true, &b, err, sizeof(err)));

	/* b's key with a's certificate. */
	key = read_all(path_in("mis-b", "ca.key"));
	write_mode(path_in("mis-a", "ca.key"), key, strlen(key), 0600);
	free(key);
	assert_int_equal(hpq_ca_open(da, "a", true, &c, err, sizeof(err)), HPQ_EINVAL);
	assert_null(c);
	assert_non_null(strstr(err, "does not match"));

	/* A key alone: an error that says what to do, and nothing replaced. */
	assert_int_equal(unlink(path_in("mis-a", "ca.crt")), 0);
	assert_int_equal(hpq_ca_open(da, "a", true, &c, err, sizeof(err)), HPQ_ESTATE);
	assert_non_null(strstr(err, "ca.crt"));
	assert_int_not_equal(access(path_in("mis-a", "ca.crt"), F_OK), 0);

	/* A certificate that is not a CA's (a server certificate) as ca.crt. */
	{
		char *cert, *skey;
		const char *name = "localhost";

		assert_ok(hpq_ca_server_cert(b, db, &name, 1, 30, &cert, &skey, err, sizeof(err)));
		write_mode(path_in("mis-a", "ca.crt"), cert, strlen(cert), 0600);
		write_mode(path_in("mis-a", "ca.key"), skey, strlen(skey), 0600);
		assert_int_equal(hpq_ca_open(da, "a", false, &c, err, sizeof(err)), HPQ_EINVAL);
		assert_non_null(strstr(err, "not a self-signed CA"));
		free(cert);
		free(skey);
	}

	/* Garbage in the key file. */
	write_mode(path_in("mis-a", "ca.key"), "garbage\n", 8, 0600);
	assert_int_equal(hpq_ca_open(da, "a", false, &c, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "no usable private key"));

	/* An open key file keeps the CA from opening. */
	assert_int_equal(chmod(path_in("mis-b", "ca.key"), 0640), 0);
	assert_int_equal(hpq_ca_open(db, "b", false, &c, err, sizeof(err)), HPQ_EPERM);
	assert_non_null(strstr(err, "chmod 600"));
	hpq_ca_free(a);
	hpq_ca_free(b);
}

static void test_read_private_rules(void **state)
{
	char err[512], *buf = NULL, *big;
	size_t len = 0;
	const char *d = subdir("files"), *p;

	p = path_in("files", "ok");
	write_mode(p, "secret", 6, 0600);
	assert_ok(hpq_pki_read_private(p, &buf, &len, err, sizeof(err)));
	assert_int_equal(len, 6);
	assert_string_equal(buf, "secret");
	free(buf);
	buf = NULL;

	/* 0400 and 0700 are fine: nobody else may read or write. */
	write_mode(p, "secret", 6, 0400);
	assert_ok(hpq_pki_read_private(p, &buf, &len, err, sizeof(err)));
	free(buf);
	buf = NULL;

	p = path_in("files", "open");
	write_mode(p, "secret", 6, 0644);
	assert_int_equal(hpq_pki_read_private(p, &buf, &len, err, sizeof(err)), HPQ_EPERM);
	assert_null(buf);
	assert_non_null(strstr(err, "0644"));
	assert_non_null(strstr(err, "chmod 600"));
	write_mode(p, "secret", 6, 0620);
	assert_int_equal(hpq_pki_read_private(p, &buf, &len, err, sizeof(err)), HPQ_EPERM);
	write_mode(p, "secret", 6, 0602);
	assert_int_equal(hpq_pki_read_private(p, &buf, &len, err, sizeof(err)), HPQ_EPERM);

	/* Someone else's file. */
	if (geteuid() == 0) {
		p = path_in("files", "theirs");
		write_mode(p, "secret", 6, 0600);
		assert_int_equal(chown(p, 65534, 65534), 0);
		assert_int_equal(hpq_pki_read_private(p, &buf, &len, err, sizeof(err)), HPQ_EPERM);
		assert_non_null(strstr(err, "owned by uid 65534"));
	} else {
		print_message("not root: the other-owner case is not tested\n");
	}

	/* Not regular files: a FIFO without a writer (would block), a device
	 * that never ends, a directory. Refused, never read. */
	p = path_in("files", "fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(hpq_pki_read_private(p, &buf, &len, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(hpq_pki_read_private("/dev/zero", &buf, &len, err, sizeof(err)),
			 HPQ_EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(hpq_pki_read_private(d, &buf, &len, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "not a regular file"));

	/* Size: exactly the limit is read, one byte more is not. */
	big = malloc(HPQ_PKI_FILE_MAX + 1);
	assert_non_null(big);
	memset(big, 'x', HPQ_PKI_FILE_MAX + 1);
	p = path_in("files", "big");
	write_mode(p, big, HPQ_PKI_FILE_MAX, 0600);
	assert_ok(hpq_pki_read_private(p, &buf, &len, err, sizeof(err)));
	assert_int_equal(len, HPQ_PKI_FILE_MAX);
	free(buf);
	buf = NULL;
	write_mode(p, big, HPQ_PKI_FILE_MAX + 1, 0600);
	assert_int_equal(hpq_pki_read_private(p, &buf, &len, err, sizeof(err)), HPQ_ETOOBIG);
	assert_null(buf);
	free(big);

	/* Missing: -ENOENT, with the path. */
	p = path_in("files", "missing");
	assert_int_equal(hpq_pki_read_private(p, &buf, &len, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "missing"));
}

static void test_server_cert(void **state)
{
	const char *names[] = {"127.0.0.1", "Head-01.example", "::1"};
	const char *same[] = {"::1", "head-01.example", "127.0.0.1", "127.0.0.1"};
	const char *fewer[] = {"127.0.0.1"};
	const char *bad[][1] = {{"head 01"},    {""},           {"a..b"},
				{"-x.example"}, {"x-.example"}, {"x_y.example"},
				{"1.2.3.4/8"}};
	struct hpq_cert_info info, info2;
	struct hpq_ca *ca, *other;
	char err[256], *cert, *key, *cert2, *key2;
	const char *d = subdir("srv"), *dother = subdir("srv-other");
	X509 *x, *cx;
	EVP_PKEY *ck;

	assert_ok(hpq_ca_open(d, "srv", true, &ca, err, sizeof(err)));
	assert_ok(hpq_ca_open(dother, "other", true, &other, err, sizeof(err)));
	assert_ok(hpq_ca_server_cert(ca, d, names, 3, 90, &cert, &key, err, sizeof(err)));
	assert_int_equal(mode_of(path_in("srv", "server.key")), 0600);
	assert_int_equal(mode_of(path_in("srv", "server.crt")), 0600);

	x = x509(cert);
	cx = x509(hpq_ca_pem(ca));
	ck = X509_get0_pubkey(cx);
	assert_int_equal(X509_verify(x, ck), 1);
	assert_int_equal(X509_check_host(x, "head-01.example", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "HEAD-01.example", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "10.0.0.1", 0), 0);
	assert_int_equal(X509_check_host(x, "other.example", 0, 0, NULL), 0);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 0);
	assert_int_equal(X509_check_ca(x), 0);
	assert_true(ext_critical(x, NID_basic_constraints));
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(
		ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(cx)),
		0);
	assert_non_null(X509_get0_subject_key_id(x));
	X509_free(x);
	X509_free(cx);

	/* The key is the certificate's. */
	{
		BIO *b = BIO_new_mem_buf(key, -1);
		EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);

		x = x509(cert);
		assert_non_null(k);
		assert_int_equal(X509_check_private_key(x, k), 1);
		assert_true(EVP_PKEY_is_a(k, "EC"));
		EVP_PKEY_free(k);
		BIO_free(b);
		X509_free(x);
	}

	/* The same names in another order, case and with a repeat: kept. */
	assert_ok(hpq_ca_server_cert(ca, d, same, 4, 90, &cert2, &key2, err, sizeof(err)));
	assert_string_equal(cert2, cert);
	assert_string_equal(key2, key);
	free(cert2);
	free(key2);

	/* Fewer names: made again, with a new key. */
	assert_ok(hpq_ca_server_cert(ca, d, fewer, 1, 90, &cert2, &key2, err, sizeof(err)));
	assert_string_not_equal(cert2, cert);
	assert_string_not_equal(key2, key);
	x = x509(cert2);
	assert_int_equal(X509_check_host(x, "head-01.example", 0, 0, NULL), 0);
	X509_free(x);
	free(cert);
	free(key);
	cert = cert2;
	key = key2;

	/* Good for 90 days, but 365 asked: less than a third left, made again. */
	assert_ok(hpq_ca_server_cert(ca, d, fewer, 1, 365, &cert2, &key2, err, sizeof(err)));
	assert_string_not_equal(cert2, cert);
	assert_ok(hpq_pki_cert_info(cert2, strlen(cert2), &info, err, sizeof(err)));
	assert_true(info.not_after - (int64_t)time(NULL) > (int64_t)364 * 86400);
	free(cert);
	free(key);
	cert = cert2;
	key = key2;

	/* Signed by another CA: made again, by this one. */
	assert_ok(hpq_ca_server_cert(other, d, fewer, 1, 365, &cert2, &key2, err, sizeof(err)));
	assert_string_not_equal(cert2, cert);
	x = x509(cert2);
	cx = x509(hpq_ca_pem(other));
	assert_int_equal(X509_verify(x, X509_get0_pubkey(cx)), 1);
	X509_free(x);
	X509_free(cx);
	free(cert);
	free(key);
	free(cert2);
	free(key2);

	/* A damaged certificate file: made again. */
	write_mode(path_in("srv", "server.crt"), "junk", 4, 0600);
	assert_ok(hpq_ca_server_cert(ca, d, fewer, 1, 365, &cert, &key, err, sizeof(err)));
	assert_ok(hpq_pki_cert_info(cert, strlen(cert), &info2, err, sizeof(err)));
	assert_string_equal(info2.cn, "hpqd");
	free(cert);
	free(key);

	/* A key file others can read: an error, not silently replaced. */
	assert_int_equal(chmod(path_in("srv", "server.key"), 0644), 0);
	cert = key = NULL;
	assert_int_equal(hpq_ca_server_cert(ca, d, fewer, 1, 365, &cert, &key, err, sizeof(err)),
			 HPQ_EPERM);
	assert_null(cert);
	assert_int_equal(mode_of(path_in("srv", "server.key")), 0644);

	/* Names that are neither addresses nor DNS names; no names; bad days. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(hpq_ca_server_cert(ca, dother, bad[i], 1, 30, &cert, &key, err,
						    sizeof(err)),
				 HPQ_EINVAL);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(
		hpq_ca_server_cert(ca, dother, names, 0, 30, &cert, &key, err, sizeof(err)),
		HPQ_EINVAL);
	assert_int_equal(hpq_ca_server_cert(ca, dother, names, 1, 0, &cert, &key, err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_not_equal(access(path_in("srv-other", "server.key"), F_OK), 0);
	hpq_ca_free(ca);
	hpq_ca_free(other);
}

/* A request made by hand with OpenSSL, asking for far more than it gets. */
static char *greedy_request(EVP_PKEY *key, EVP_PKEY *sign_with)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509V3_CTX c;
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"evil", -1, -1,
				   0);
	X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC, (const unsigned char *)"admins", -1,
				   -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"hpqd", -1, -1,
				   0);
	X509_REQ_set_subject_name(req, name);
	X509_REQ_set_pubkey(req, key);
	X509V3_set_ctx_nodb(&c);
	X509V3_set_ctx(&c, NULL, NULL, req, NULL, 0);
	sk_X509_EXTENSION_push(
		exts, X509V3_EXT_conf_nid(NULL, &c, NID_basic_constraints, "critical,CA:TRUE"));
	sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, &c, NID_subject_alt_name,
							 "DNS:hpqd.example,IP:10.0.0.1"));
	sk_X509_EXTENSION_push(exts,
			       X509V3_EXT_conf_nid(NULL, &c, NID_ext_key_usage, "serverAuth"));
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	assert_true(X509_REQ_sign(req, sign_with,
				  EVP_PKEY_is_a(sign_with, "ED25519") ? NULL : EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509_REQ(b, req), 1);
	n = BIO_get_mem_data(b, &data);
	s = strndup(data, (size_t)n);
	BIO_free(b);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return s;
}

/* The request with one byte of its DER changed at offset from the end. */
static char *flip_request(const char *pem, size_t from_end)
{
	BIO *b = BIO_new_mem_buf(pem, -1), *o = BIO_new(BIO_s_mem());
	X509_REQ *req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	unsigned char *der = NULL;
	char *data, *s;
	int len;
	long n;

	assert_non_null(req);
	len = i2d_X509_REQ(req, &der);
	assert_true(len > 0);
	der[len - 1 - (int)from_end] ^= 0x01;
	assert_true(PEM_write_bio(o, "CERTIFICATE REQUEST", "", der, len) > 0);
	n = BIO_get_mem_data(o, &data);
	s = strndup(data, (size_t)n);
	OPENSSL_free(der);
	X509_REQ_free(req);
	BIO_free(b);
	BIO_free(o);
	return s;
}

static void expect_refused(struct hpq_ca *ca, const char *csr, size_t len, int code,
			   const char *words)
{
	char err[256] = "", *cert = NULL;
	struct hpq_cert_info info;

	assert_int_equal(hpq_ca_sign_node(ca, csr, len, "gpu-01", "a100", 3600, &cert, &info, err,
					  sizeof(err)),
			 code);
	assert_null(cert);
	if (words && !strstr(err, words))
		fail_msg("expected '%s' in '%s'", words, err);
	assert_true(err[0] != '\0');
}

static void test_sign_node(void **state)
{
	struct hpq_cert_info info, info2;
	struct hpq_ca *ca;
	char err[256], *key, *csr, *cert, *cert2, *greedy;
	EVP_PKEY *k;
	X509 *x, *cx;
	X509_NAME *subj;
	time_t now = time(NULL);

	assert_ok(hpq_ca_open(subdir("sign"), "sign", true, &ca, err, sizeof(err)));
	cx = x509(hpq_ca_pem(ca));

	/* The agent's side. */
	assert_ok(hpq_pki_make_request("gpu-01", &key, &csr, err, sizeof(err)));
	assert_non_null(strstr(csr, "BEGIN CERTIFICATE REQUEST"));
	assert_non_null(strstr(key, "BEGIN PRIVATE KEY"));

	assert_ok(hpq_ca_sign_node(ca, csr, strlen(csr), "gpu-01", "a100", 86400, &cert, &info, err,
				   sizeof(err)));
	assert_string_equal(info.cn, "gpu-01");
	assert_string_equal(info.ou, "a100");
	assert_true(strlen(info.serial) >= 16 && strlen(info.serial) <= 32);
	assert_true(info.not_before <= (int64_t)now && info.not_before >= (int64_t)now - 3600);
	assert_true(info.not_after >= (int64_t)now + 86400 - 5 &&
		    info.not_after <= (int64_t)now + 86400 + 5);

	x = x509(cert);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(cx)), 1);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 1);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 0);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(
		ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(cx)),
		0);
	/* The certificate is for the request's key: the agent's key matches. */
	{
		BIO *b = BIO_new_mem_buf(key, -1);

		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
		assert_non_null(k);
		assert_int_equal(X509_check_private_key(x, k), 1);
	}
	X509_free(x);

	/* Two certificates, two serials. */
	assert_ok(hpq_ca_sign_node(ca, csr, strlen(csr), "gpu-01", "a100", 86400, &cert2, &info2,
				   err, sizeof(err)));
	assert_string_not_equal(info.serial, info2.serial);
	free(cert2);

	/* A request that asks for another name, an OU, CA:TRUE, a SAN and
	 * serverAuth gets exactly what hpqd says, and nothing of that. */
	greedy = greedy_request(k, k);
	assert_ok(hpq_ca_sign_node(ca, greedy, strlen(greedy), "gpu-02", "", 3600, &cert2, &info2,
				   err, sizeof(err)));
	assert_string_equal(info2.cn, "gpu-02");
	assert_string_equal(info2.ou, "");
	x = x509(cert2);
	subj = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_entry_count(subj), 1);
	assert_int_equal(X509_NAME_get_index_by_NID(subj, NID_commonName, -1), 0);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), -1);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 0);
	assert_int_equal(X509_check_host(x, "hpqd.example", 0, 0, NULL), 0);
	X509_free(x);
	free(cert2);
	free(greedy);

	/* Ed25519 is accepted too. */
	{
		EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

		greedy = greedy_request(ed, ed);
		assert_ok(hpq_ca_sign_node(ca, greedy, strlen(greedy), "gpu-03", "pool-b", 3600,
					   &cert2, &info2, err, sizeof(err)));
		assert_string_equal(info2.cn, "gpu-03");
		assert_string_equal(info2.ou, "pool-b");
		free(cert2);
		free(greedy);
		EVP_PKEY_free(ed);
	}

	/* Another key type (P-384) is refused. */
	{
		EVP_PKEY *p384 = EVP_EC_gen("P-384");

		greedy = greedy_request(p384, p384);
		expect_refused(ca, greedy, strlen(greedy), HPQ_EINVAL, "not EC P-256");
		free(greedy);
		EVP_PKEY_free(p384);
	}

	/* Signed by another key than the one it carries: refused. */
	{
		EVP_PKEY *other = EVP_EC_gen("P-256");

		greedy = greedy_request(k, other);
		expect_refused(ca, greedy, strlen(greedy), HPQ_EINVAL, "signature");
		free(greedy);
		EVP_PKEY_free(other);
	}
	/* A bit flipped in the signature: refused. */
	greedy = flip_request(csr, 0);
	expect_refused(ca, greedy, strlen(greedy), HPQ_EINVAL, "signature");
	free(greedy);

	/* Garbage, empty, truncated, oversized. */
	expect_refused(ca, "hello", 5, HPQ_EINVAL, "not a PEM certificate request");
	expect_refused(ca, "", 0, HPQ_EINVAL, "empty");
	expect_refused(ca, NULL, 0, HPQ_EINVAL, "empty");
	expect_refused(ca, csr, strlen(csr) / 2, HPQ_EINVAL, "not a PEM certificate request");
	expect_refused(ca, csr, strlen(csr) - 30, HPQ_EINVAL, "not a PEM certificate request");
	expect_refused(ca,
		       "-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAAAAAAAAAA\n"
		       "-----END CERTIFICATE REQUEST-----\n",
		       strlen("-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAAAAAAAAAA\n"
			      "-----END CERTIFICATE REQUEST-----\n"),
		       HPQ_EINVAL, "not a PEM certificate request");
	/* A certificate is not a request. */
	expect_refused(ca, hpq_ca_pem(ca), strlen(hpq_ca_pem(ca)), HPQ_EINVAL,
		       "not a PEM certificate request");
	{
		char *huge = malloc(HPQ_PKI_FILE_MAX + 1);

		memset(huge, 'A', HPQ_PKI_FILE_MAX + 1);
		memcpy(huge, csr, strlen(csr));
		expect_refused(ca, huge, HPQ_PKI_FILE_MAX + 1, HPQ_ETOOBIG, "larger");
		free(huge);
	}
	/* A valid request with bytes after it: the request is what counts. */
	{
		size_t n = strlen(csr);
		char *tail = malloc(n + 10);

		memcpy(tail, csr, n);
		memcpy(tail + n, "trailing\n", 10);
		assert_ok(hpq_ca_sign_node(ca, tail, n + 9, "gpu-01", NULL, 60, &cert2, NULL, err,
					   sizeof(err)));
		free(cert2);
		free(tail);
	}

	/* hpqd's own arguments are checked too. */
	cert2 = NULL;
	assert_int_equal(hpq_ca_sign_node(ca, csr, strlen(csr), "bad name", "a100", 60, &cert2,
					  &info2, err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(hpq_ca_sign_node(ca, csr, strlen(csr), "", "a100", 60, &cert2, &info2, err,
					  sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(hpq_ca_sign_node(ca, csr, strlen(csr), "gpu-01", "a/b", 60, &cert2, &info2,
					  err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(hpq_ca_sign_node(ca, csr, strlen(csr), "gpu-01", "a100", 0, &cert2, &info2,
					  err, sizeof(err)),
			 HPQ_EINVAL);
	assert_null(cert2);
	assert_int_equal(hpq_pki_make_request("no/slash", &key, &csr, err, sizeof(err)),
			 HPQ_EINVAL);

	EVP_PKEY_free(k);
	X509_free(cx);
	free(cert);
	free(csr);
	free(key);
	hpq_ca_free(ca);
}

static void test_cert_info_and_hash(void **state)
{
	char err[256], hash[HPQ_PKI_HASH_LEN];
	struct hpq_cert_info info;

	assert_int_equal(hpq_pki_cert_info("junk", 4, &info, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "not a PEM certificate"));
	assert_int_equal(hpq_pki_cert_hash("junk", 4, hash, err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(hpq_pki_cert_hash("", 0, hash, err, sizeof(err)), HPQ_EINVAL);

	assert_true(hpq_pki_hash_valid(
		"sha256:0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef"));
	assert_false(hpq_pki_hash_valid(
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"));
	assert_false(hpq_pki_hash_valid(
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"));
	assert_false(hpq_pki_hash_valid(
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg"));
	assert_false(hpq_pki_hash_valid(
		"sha1:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
	assert_false(hpq_pki_hash_valid(""));
	assert_false(hpq_pki_hash_valid(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca_create_and_reopen),
		cmocka_unit_test(test_ca_half_or_mismatched),
		cmocka_unit_test(test_read_private_rules),
		cmocka_unit_test(test_server_cert),
		cmocka_unit_test(test_sign_node),
		cmocka_unit_test(test_cert_info_and_hash),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
