/*
 * pki.c: the cluster's certificates (pki.h), with OpenSSL 3 doing all the
 * cryptography and all the parsing. What this file adds is policy: which
 * extensions a CA, server or node certificate carries, that a node's name
 * comes from hpqd and never from its request, which key types are
 * accepted, and how key files are read and written.
 *
 * A request from a joining node is untrusted input (tests/fuzz/fuzz_csr.c):
 * it is bounded in size, parsed from memory, its signature checked, and
 * only its public key is used, rebuilt from the raw point so that nothing
 * else the request encodes (explicit curve parameters, say) can reach a
 * certificate. Every OpenSSL failure clears the thread's error queue, so
 * that a stale error never confuses a later TLS call (tls.c).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "error.h"
#include "parse.h"
#include "path.h"
#include "ossl.h"
#include "pki.h"
#include "xalloc.h"

#define CA_DAYS 3650
#define LIFETIME_MAX ((int64_t)20 * 365 * 86400)
#define SERVER_DAYS_MAX (20 * 365)
/* "hpq cluster CA " and the label must fit X.509's 64-character CN. */
#define CA_CN_PREFIX "hpq cluster CA"
#define LABEL_MAX 48
/* A DNS name in a certificate (RFC 1035 limits). */
#define DNS_MAX 253
#define DNS_LABEL_MAX 63

struct hpq_ca {
	EVP_PKEY *key;
	X509 *cert;
	char *pem;
	char hash[HPQ_PKI_HASH_LEN];
};

const char *hpq_ossl_reason(void)
{
	unsigned long e = ERR_peek_error();

	return e ? ERR_reason_error_string(e) : NULL;
}

int hpq_ossl_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
	const char *reason = hpq_ossl_reason();
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (reason)
		code = hpq_errf(err, errlen, code, "%s: %s", what, reason);
	else
		code = hpq_errf(err, errlen, code, "%s", what);
	ERR_clear_error();
	return code;
}

int hpq_ossl_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static X509 *x509_from_pem(const char *pem, size_t len)
{
	BIO *b;
	X509 *x;

	if (!pem || len == 0 || len > HPQ_PKI_FILE_MAX)
		return NULL;
	b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, hpq_ossl_no_passphrase, NULL);
	BIO_free(b);
	return x;
}

static EVP_PKEY *key_from_pem(const char *pem, size_t len)
{
	EVP_PKEY *k;
	BIO *b;

	if (!pem || len == 0 || len > HPQ_PKI_FILE_MAX)
		return NULL;
	b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return NULL;
	k = PEM_read_bio_PrivateKey(b, NULL, hpq_ossl_no_passphrase, NULL);
	BIO_free(b);
	return k;
}

/* The contents of a memory BIO as a malloc'd string; for secure memory
 * BIOs the copy is what the caller must wipe. */
static char *bio_string(BIO *b)
{
	char *data, *s;
	long n = BIO_get_mem_data(b, &data);

	if (n < 0)
		n = 0;
	s = xmalloc((size_t)n + 1);
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

static char *x509_to_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b && PEM_write_bio_X509(b, x))
		s = bio_string(b);
	BIO_free(b);
	return s;
}

static char *key_to_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *s = NULL;

	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		s = bio_string(b);
	BIO_free(b);
	return s;
}

static void free_secret(char *s, size_t len)
{
	if (s) {
		OPENSSL_cleanse(s, len);
		free(s);
	}
}

static int x509_hash(X509 *x, char out[HPQ_PKI_HASH_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	/* The DER as it was read (OpenSSL keeps the original encoding). */
	if (!X509_digest(x, EVP_sha256(), md, &n) || n != 32)
		return -1;
	memcpy(out, "sha256:", 7);
	for (unsigned int i = 0; i < n; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[7 + 2 * n] = '\0';
	return 0;
}

bool hpq_pki_hash_valid(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) != 0)
		return false;
	for (int i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[7 + i]))
			return false;
	return s[71] == '\0';
}

/* One CN or OU, as UTF-8 without control characters; "" when absent. Two
 * of the same kind are refused: which one names the node would be a guess. */
static int name_entry(const X509_NAME *name, int nid, const char *what, char *out, size_t outlen,
		      char *err, size_t errlen)
{
	int i = X509_NAME_get_index_by_NID(name, nid, -1), len;
	unsigned char *u = NULL;

	out[0] = '\0';
	if (i < 0)
		return 0;
	if (X509_NAME_get_index_by_NID(name, nid, i) >= 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "the certificate's subject has two %ss",
				what);
	len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (len < 0)
		return hpq_ossl_errf(err, errlen, HPQ_EINVAL, "the certificate's %s is not text", what);
	if ((size_t)len >= outlen) {
		OPENSSL_free(u);
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"the certificate's %s is longer than %zu bytes", what, outlen - 1);
	}
	for (int j = 0; j < len; j++) {
		if (u[j] < 0x20 || u[j] == 0x7f) {
			OPENSSL_free(u);
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"the certificate's %s holds control characters", what);
		}
	}
	memcpy(out, u, (size_t)len);
	out[len] = '\0';
	OPENSSL_free(u);
	return 0;
}

static int asn1_time_unix(const ASN1_TIME *t, int64_t *ret)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return -1;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

static int x509_info(X509 *x, struct hpq_cert_info *info, char *err, size_t errlen)
{
	const X509_NAME *subj = X509_get_subject_name(x);
	BIGNUM *bn;
	char *hex;
	int r;

	memset(info, 0, sizeof(*info));
	r = name_entry(subj, NID_commonName, "CN", info->cn, sizeof(info->cn), err, errlen);
	if (r < 0)
		return r;
	r = name_entry(subj, NID_organizationalUnitName, "OU", info->ou, sizeof(info->ou), err,
		       errlen);
	if (r < 0)
		return r;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	BN_free(bn);
	if (!hex)
		return hpq_ossl_errf(err, errlen, HPQ_EINVAL, "the certificate's serial number");
	if (strlen(hex) >= sizeof(info->serial)) {
		OPENSSL_free(hex);
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"the certificate's serial number is longer than %zu hex digits",
				sizeof(info->serial) - 1);
	}
	strcpy(info->serial, hex);
	OPENSSL_free(hex);
	if (asn1_time_unix(X509_get0_notBefore(x), &info->not_before) < 0 ||
	    asn1_time_unix(X509_get0_notAfter(x), &info->not_after) < 0)
		return hpq_ossl_errf(err, errlen, HPQ_EINVAL, "the certificate's validity dates");
	return 0;
}

int hpq_pki_cert_info(const char *pem, size_t len, struct hpq_cert_info *info, char *err,
		      size_t errlen)
{
	X509 *x;
	int r;

	if (len > HPQ_PKI_FILE_MAX)
		return hpq_errf(err, errlen, HPQ_EINVAL, "certificate larger than %u bytes",
				HPQ_PKI_FILE_MAX);
	x = x509_from_pem(pem, len);
	if (!x)
		return hpq_ossl_errf(err, errlen, HPQ_EINVAL, "not a PEM certificate");
	r = x509_info(x, info, err, errlen);
	X509_free(x);
	return r;
}

int hpq_pki_cert_hash(const char *pem, size_t len, char out[HPQ_PKI_HASH_LEN], char *err,
		      size_t errlen)
{
	X509 *x;
	int r = 0;

	if (len > HPQ_PKI_FILE_MAX)
		return hpq_errf(err, errlen, HPQ_EINVAL, "certificate larger than %u bytes",
				HPQ_PKI_FILE_MAX);
	x = x509_from_pem(pem, len);
	if (!x)
		return hpq_ossl_errf(err, errlen, HPQ_EINVAL, "not a PEM certificate");
	if (x509_hash(x, out) < 0)
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "cannot hash the certificate");
	X509_free(x);
	return r;
}

int hpq_pki_read_private(const char *path, char **ret, size_t *ret_len, char *err, size_t errlen)
{
	struct stat st;
	size_t len = 0;
	char *buf;
	int fd, r;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer. The checks
	 * below are on what was opened, so a swapped path cannot slip by. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		return hpq_errf(err, errlen, r, "cannot open '%s': %s", path, strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return hpq_errf(err, errlen, r, "cannot stat '%s': %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return hpq_errf(err, errlen, HPQ_EINVAL, "'%s' is not a regular file", path);
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		close(fd);
		return hpq_errf(err, errlen, HPQ_EPERM,
				"'%s' is owned by uid %u, not by this user (uid %u) or root: "
				"chown %u %s",
				path, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(),
				path);
	}
	if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
		close(fd);
		return hpq_errf(err, errlen, HPQ_EPERM,
				"permissions %04o for '%s' are too open (others could read or "
				"change it): chmod 600 %s",
				(unsigned)(st.st_mode & 07777), path, path);
	}
	if (st.st_size > (off_t)HPQ_PKI_FILE_MAX) {
		close(fd);
		return hpq_errf(err, errlen, HPQ_ETOOBIG, "'%s' is larger than %u bytes", path,
				HPQ_PKI_FILE_MAX);
	}
	/* One byte more than allowed, to notice a file that grew meanwhile. */
	buf = xmalloc(HPQ_PKI_FILE_MAX + 2);
	for (;;) {
		ssize_t n = read(fd, buf + len, HPQ_PKI_FILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			close(fd);
			free_secret(buf, HPQ_PKI_FILE_MAX + 2);
			return hpq_errf(err, errlen, r, "cannot read '%s': %s", path, strerror(-r));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > HPQ_PKI_FILE_MAX) {
			close(fd);
			free_secret(buf, HPQ_PKI_FILE_MAX + 2);
			return hpq_errf(err, errlen, HPQ_ETOOBIG, "'%s' is larger than %u bytes",
					path, HPQ_PKI_FILE_MAX);
		}
	}
	close(fd);
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

static EVP_PKEY *new_key(void)
{
	return EVP_EC_gen("P-256");
}

/* The digest to sign with: Ed25519 and Ed448 keys take none. */
static const EVP_MD *sign_md(EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return NULL;
	return EVP_sha256();
}

static int set_random_serial(X509 *x)
{
	unsigned char b[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	bn = BN_bin2bn(b, sizeof(b), NULL);
	if (!bn)
		return -1;
	if (BN_is_zero(bn))
		BN_one(bn);
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

static X509_NAME *make_name(const char *cn, const char *ou)
{
	X509_NAME *n = X509_NAME_new();

	if (!n)
		return NULL;
	if (ou && *ou &&
	    !X509_NAME_add_entry_by_NID(n, NID_organizationalUnitName, MBSTRING_UTF8,
					(const unsigned char *)ou, -1, -1, 0))
		goto fail;
	if (!X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
					-1, -1, 0))
		goto fail;
	return n;
fail:
	X509_NAME_free(n);
	return NULL;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509_EXTENSION *ext;
	X509V3_CTX c;
	int ok;

	X509V3_set_ctx_nodb(&c);
	X509V3_set_ctx(&c, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &c, nid, value);
	if (!ext)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* A certificate for pubkey with subject, issued by issuer (NULL: itself)
 * under issuer_key; the caller adds kind-specific extensions after. */
static X509 *new_cert(EVP_PKEY *pubkey, X509_NAME *subject, X509 *issuer, int64_t lifetime_s)
{
	X509 *x = X509_new();
	time_t now = time(NULL);

	if (!x || !X509_set_version(x, X509_VERSION_3) || set_random_serial(x) < 0 ||
	    !X509_set_subject_name(x, subject) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject) ||
	    !X509_set_pubkey(x, pubkey) ||
	    !ASN1_TIME_set(X509_getm_notBefore(x), now - HPQ_PKI_BACKDATE_S) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), now + (time_t)lifetime_s))
		goto fail;
	/* The subject key identifier first: the self-signed CA's authority key
	 * identifier is taken from it. */
	if (add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, issuer ? issuer : x, NID_authority_key_identifier, "keyid:always") < 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

static int leaf_exts(X509 *x, X509 *issuer, const char *eku)
{
	if (add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, issuer, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(x, issuer, NID_ext_key_usage, eku) < 0)
		return -1;
	return 0;
}

void hpq_ca_free(struct hpq_ca *ca)
{
	if (!ca)
		return;
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	free(ca->pem);
	free(ca);
}

const char *hpq_ca_hash(const struct hpq_ca *ca)
{
	return ca->hash;
}

const char *hpq_ca_pem(const struct hpq_ca *ca)
{
	return ca->pem;
}

/* Takes key and cert; fills in the rest. */
static int ca_finish(EVP_PKEY *key, X509 *cert, struct hpq_ca **ret, char *err, size_t errlen)
{
	struct hpq_ca *ca = xcalloc(1, sizeof(*ca));

	ca->key = key;
	ca->cert = cert;
	ca->pem = x509_to_pem(cert);
	if (!ca->pem || x509_hash(cert, ca->hash) < 0) {
		hpq_ca_free(ca);
		return hpq_ossl_errf(err, errlen, HPQ_EINVAL, "cannot encode the CA certificate");
	}
	*ret = ca;
	return 0;
}

static int ca_create(const char *keypath, const char *crtpath, const char *label,
		     struct hpq_ca **ret, char *err, size_t errlen)
{
	X509_NAME *name = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char cn[80], *key_pem = NULL, *crt_pem = NULL;
	size_t key_len = 0;
	int r;

	if (label && *label) {
		size_t n = strlen(label);

		if (n > LABEL_MAX)
			return hpq_errf(err, errlen, HPQ_EINVAL, "CA label longer than %d bytes",
					LABEL_MAX);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)label[i] < 0x20 || label[i] == 0x7f)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"CA label holds control characters");
		snprintf(cn, sizeof(cn), "%s %s", CA_CN_PREFIX, label);
	} else {
		snprintf(cn, sizeof(cn), "%s", CA_CN_PREFIX);
	}
	key = new_key();
	name = key ? make_name(cn, NULL) : NULL;
	cert = name ? new_cert(key, name, NULL, (int64_t)CA_DAYS * 86400) : NULL;
	if (!cert || add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
	    add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    !X509_sign(cert, key, sign_md(key))) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "cannot make the CA certificate");
		goto out;
	}
	key_pem = key_to_pem(key);
	crt_pem = x509_to_pem(cert);
	if (!key_pem || !crt_pem) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "cannot encode the CA");
		goto out;
	}
	key_len = strlen(key_pem);
	r = hpq_path_write_file(keypath, key_pem, key_len, 0600, err, errlen);
	if (r < 0)
		goto out;
	r = hpq_path_write_file(crtpath, crt_pem, strlen(crt_pem), 0600, err, errlen);
	if (r < 0) {
		/* A key without its certificate would block every later start. */
		unlink(keypath);
		goto out;
	}
	r = ca_finish(key, cert, ret, err, errlen);
	key = NULL;
	cert = NULL;
out:
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	X509_free(cert);
	free_secret(key_pem, key_len);
	free(crt_pem);
	return r;
}

static int ca_load(const char *keypath, const char *crtpath, struct hpq_ca **ret, char *err,
		   size_t errlen)
{
	char *key_pem = NULL, *crt_pem = NULL;
	size_t key_len = 0, crt_len = 0;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int r;

	r = hpq_pki_read_private(keypath, &key_pem, &key_len, err, errlen);
	if (r < 0)
		return r;
	r = hpq_pki_read_private(crtpath, &crt_pem, &crt_len, err, errlen);
	if (r < 0)
		goto out;
	key = key_from_pem(key_pem, key_len);
	if (!key) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "'%s' holds no usable private key", keypath);
		goto out;
	}
	cert = x509_from_pem(crt_pem, crt_len);
	if (!cert) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "'%s' holds no usable certificate", crtpath);
		goto out;
	}
	if (X509_check_ca(cert) < 1 || X509_self_signed(cert, 1) != 1) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "'%s' is not a self-signed CA certificate",
			      crtpath);
		goto out;
	}
	if (!X509_check_private_key(cert, key)) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "'%s' does not match the certificate '%s'",
			      keypath, crtpath);
		goto out;
	}
	r = ca_finish(key, cert, ret, err, errlen);
	key = NULL;
	cert = NULL;
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	free_secret(key_pem, key_len);
	free(crt_pem);
	return r;
}

static int exists(const char *path, bool *ret, char *err, size_t errlen)
{
	struct stat st;
	int r;

	if (stat(path, &st) == 0) {
		*ret = true;
		return 0;
	}
	if (errno == ENOENT) {
		*ret = false;
		return 0;
	}
	r = -errno;
	return hpq_errf(err, errlen, r, "cannot stat '%s': %s", path, strerror(-r));
}

int hpq_ca_open(const char *dir, const char *label, bool create, struct hpq_ca **ret, char *err,
		size_t errlen)
{
	char *keypath, *crtpath;
	bool have_key = false, have_crt = false;
	int r;

	xasprintf(&keypath, "%s/ca.key", dir);
	xasprintf(&crtpath, "%s/ca.crt", dir);
	r = exists(keypath, &have_key, err, errlen);
	if (r == 0)
		r = exists(crtpath, &have_crt, err, errlen);
	if (r < 0)
		goto out;
	if (!have_key && !have_crt) {
		if (create)
			r = ca_create(keypath, crtpath, label, ret, err, errlen);
		else
			r = hpq_errf(err, errlen, -ENOENT,
				     "no cluster CA in '%s' (no ca.key, ca.crt)", dir);
	} else if (!have_key || !have_crt) {
		r = hpq_errf(err, errlen, HPQ_ESTATE,
			     "'%s' exists but '%s' does not: restore it from a backup, or remove "
			     "both to make a new CA (every node must then join again)",
			     have_key ? keypath : crtpath, have_key ? crtpath : keypath);
	} else {
		r = ca_load(keypath, crtpath, ret, err, errlen);
	}
out:
	free(keypath);
	free(crtpath);
	return r;
}

/* A server name as a SAN entry: an IP address, or a DNS name (lowercased,
 * RFC 1035 letters, digits and hyphens in dot-separated labels). */
static GENERAL_NAME *server_gen_name(const char *s, char *err, size_t errlen)
{
	unsigned char ip[16];
	GENERAL_NAME *g;
	size_t n = strlen(s), label = 0;
	char dns[DNS_MAX + 1];
	int iplen = 0;

	if (inet_pton(AF_INET, s, ip) == 1)
		iplen = 4;
	else if (inet_pton(AF_INET6, s, ip) == 1)
		iplen = 16;
	if (iplen) {
		ASN1_OCTET_STRING *o = ASN1_OCTET_STRING_new();

		g = GENERAL_NAME_new();
		if (!o || !g || !ASN1_OCTET_STRING_set(o, ip, iplen)) {
			ASN1_OCTET_STRING_free(o);
			GENERAL_NAME_free(g);
			hpq_ossl_errf(err, errlen, HPQ_EINVAL, "cannot encode '%s'", s);
			return NULL;
		}
		GENERAL_NAME_set0_value(g, GEN_IPADD, o);
		return g;
	}
	if (n == 0 || n > DNS_MAX) {
		hpq_errf(err, errlen, HPQ_EINVAL, "invalid server name '%.*s'", DNS_MAX, s);
		return NULL;
	}
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > DNS_LABEL_MAX || s[i - 1] == '-' ||
			    s[i - label] == '-') {
				hpq_errf(err, errlen, HPQ_EINVAL,
					 "invalid server name '%s' (not an IP address, nor a DNS "
					 "name of letters, digits and hyphens)",
					 s);
				return NULL;
			}
			label = 0;
		} else if (c < 128 && (isalnum(c) || c == '-')) {
			label++;
		} else {
			hpq_errf(err, errlen, HPQ_EINVAL,
				 "invalid server name '%s' (not an IP address, nor a DNS name of "
				 "letters, digits and hyphens)",
				 s);
			return NULL;
		}
		dns[i] = (char)tolower(c);
	}
	{
		ASN1_IA5STRING *a = ASN1_IA5STRING_new();

		g = GENERAL_NAME_new();
		if (!a || !g || !ASN1_STRING_set(a, dns, (int)n)) {
			ASN1_IA5STRING_free(a);
			GENERAL_NAME_free(g);
			hpq_ossl_errf(err, errlen, HPQ_EINVAL, "cannot encode '%s'", s);
			return NULL;
		}
		GENERAL_NAME_set0_value(g, GEN_DNS, a);
	}
	return g;
}

static bool gens_has(const GENERAL_NAMES *gens, GENERAL_NAME *g)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++)
		if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(gens, i), g) == 0)
			return true;
	return false;
}

/* Same set of names (want has no duplicates). */
static bool gens_equal(const GENERAL_NAMES *want, const GENERAL_NAMES *have)
{
	if (!have || sk_GENERAL_NAME_num(want) != sk_GENERAL_NAME_num(have))
		return false;
	for (int i = 0; i < sk_GENERAL_NAME_num(want); i++)
		if (!gens_has(have, sk_GENERAL_NAME_value(want, i)))
			return false;
	return true;
}

/* Is the existing pair good to keep (pki.h)? Any doubt means no. */
static bool server_keep(struct hpq_ca *ca, EVP_PKEY *key, X509 *cert, const GENERAL_NAMES *want,
			int days)
{
	GENERAL_NAMES *have;
	int64_t nb, na, now = (int64_t)time(NULL);
	bool ok;

	if (!X509_check_private_key(cert, key) || X509_check_issued(ca->cert, cert) != X509_V_OK ||
	    X509_verify(cert, ca->key) != 1 ||
	    X509_check_purpose(cert, X509_PURPOSE_SSL_SERVER, 0) != 1 ||
	    asn1_time_unix(X509_get0_notBefore(cert), &nb) < 0 ||
	    asn1_time_unix(X509_get0_notAfter(cert), &na) < 0 || nb > now ||
	    na - now <= (int64_t)days * 86400 / 3) {
		ERR_clear_error();
		return false;
	}
	have = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	ok = gens_equal(want, have);
	GENERAL_NAMES_free(have);
	ERR_clear_error();
	return ok;
}

/* Reads dir's existing pair: 0 with both parsed (or NULL where unusable),
 * or an error when a file is there but may not be read (its rules). */
static int server_read(const char *keypath, const char *crtpath, EVP_PKEY **ret_key,
		       X509 **ret_cert, char *err, size_t errlen)
{
	char *key_pem = NULL, *crt_pem = NULL;
	size_t key_len = 0, crt_len = 0;
	int r;

	*ret_key = NULL;
	*ret_cert = NULL;
	r = hpq_pki_read_private(keypath, &key_pem, &key_len, err, errlen);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = hpq_pki_read_private(crtpath, &crt_pem, &crt_len, err, errlen);
	if (r == -ENOENT) {
		free_secret(key_pem, key_len);
		return 0;
	}
	if (r < 0) {
		free_secret(key_pem, key_len);
		return r;
	}
	*ret_key = key_from_pem(key_pem, key_len);
	*ret_cert = x509_from_pem(crt_pem, crt_len);
	ERR_clear_error();
	free_secret(key_pem, key_len);
	free(crt_pem);
	return 0;
}

int hpq_ca_server_cert(struct hpq_ca *ca, const char *dir, const char *const *names, size_t nnames,
		       int days, char **ret_cert_pem, char **ret_key_pem, char *err, size_t errlen)
{
	GENERAL_NAMES *want = NULL;
	X509_NAME *subject = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char *keypath = NULL, *crtpath = NULL, *key_pem = NULL, *crt_pem = NULL;
	size_t key_len = 0;
	int r = 0;

	if (nnames == 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "the server certificate needs a name");
	if (days < 1 || days > SERVER_DAYS_MAX)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"server certificate lifetime %d days is not in 1..%d", days,
				SERVER_DAYS_MAX);
	want = sk_GENERAL_NAME_new_null();
	if (!want)
		return hpq_ossl_errf(err, errlen, HPQ_EINVAL, "out of memory");
	for (size_t i = 0; i < nnames; i++) {
		GENERAL_NAME *g;

		if (!names[i]) {
			r = hpq_errf(err, errlen, HPQ_EINVAL, "no server name");
			goto out;
		}
		g = server_gen_name(names[i], err, errlen);
		if (!g) {
			r = HPQ_EINVAL;
			goto out;
		}
		if (gens_has(want, g)) {
			GENERAL_NAME_free(g);
			continue;
		}
		if (!sk_GENERAL_NAME_push(want, g)) {
			GENERAL_NAME_free(g);
			r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "out of memory");
			goto out;
		}
	}
	xasprintf(&keypath, "%s/server.key", dir);
	xasprintf(&crtpath, "%s/server.crt", dir);
	r = server_read(keypath, crtpath, &key, &cert, err, errlen);
	if (r < 0)
		goto out;
	if (!key || !cert || !server_keep(ca, key, cert, want, days)) {
		EVP_PKEY_free(key);
		X509_free(cert);
		cert = NULL;
		key = new_key();
		subject = key ? make_name("hpqd", NULL) : NULL;
		cert = subject ? new_cert(key, subject, ca->cert, (int64_t)days * 86400) : NULL;
		if (!cert || leaf_exts(cert, ca->cert, "serverAuth") < 0 ||
		    !X509_add1_ext_i2d(cert, NID_subject_alt_name, want, 0, X509V3_ADD_DEFAULT) ||
		    !X509_sign(cert, ca->key, sign_md(ca->key))) {
			r = hpq_ossl_errf(err, errlen, HPQ_EINVAL,
				      "cannot make the server certificate");
			goto out;
		}
		key_pem = key_to_pem(key);
		crt_pem = x509_to_pem(cert);
		if (!key_pem || !crt_pem) {
			r = hpq_ossl_errf(err, errlen, HPQ_EINVAL,
				      "cannot encode the server certificate");
			goto out;
		}
		key_len = strlen(key_pem);
		/* Key first: a crash in between leaves a pair that does not
		 * match, which the next start replaces. */
		r = hpq_path_write_file(keypath, key_pem, key_len, 0600, err, errlen);
		if (r == 0)
			r = hpq_path_write_file(crtpath, crt_pem, strlen(crt_pem), 0600, err,
					       errlen);
		if (r < 0)
			goto out;
	} else {
		key_pem = key_to_pem(key);
		crt_pem = x509_to_pem(cert);
		if (!key_pem || !crt_pem) {
			r = hpq_ossl_errf(err, errlen, HPQ_EINVAL,
				      "cannot encode the server certificate");
			goto out;
		}
		key_len = strlen(key_pem);
	}
	*ret_cert_pem = crt_pem;
	*ret_key_pem = key_pem;
	crt_pem = NULL;
	key_pem = NULL;
out:
	GENERAL_NAMES_free(want);
	X509_NAME_free(subject);
	EVP_PKEY_free(key);
	X509_free(cert);
	free(keypath);
	free(crtpath);
	free_secret(key_pem, key_len);
	free(crt_pem);
	return r;
}

/* The request's public key, rebuilt from its raw bytes as a named-curve
 * P-256 or an Ed25519 key; NULL for any other kind. */
static EVP_PKEY *node_pubkey(EVP_PKEY *pk, char *err, size_t errlen)
{
	unsigned char pub[256];
	char group[64], p256[] = "prime256v1";
	EVP_PKEY_CTX *pc = NULL;
	EVP_PKEY *out = NULL;
	size_t len = 0;

	if (EVP_PKEY_is_a(pk, "ED25519")) {
		len = sizeof(pub);
		if (!EVP_PKEY_get_raw_public_key(pk, pub, &len) || len != 32 ||
		    !(out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, len)))
			hpq_ossl_errf(err, errlen, HPQ_EINVAL, "the request's Ed25519 key is unusable");
		return out;
	}
	if (!EVP_PKEY_is_a(pk, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					    NULL) ||
	    (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
		hpq_ossl_errf(err, errlen, HPQ_EINVAL,
			  "the request's key is not EC P-256 or Ed25519 (it is %s)",
			  EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "unknown");
		return NULL;
	}
	if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &len)) {
		hpq_ossl_errf(err, errlen, HPQ_EINVAL, "the request's EC key is unusable");
		return NULL;
	}
	{
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, p256, 0),
			OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, len),
			OSSL_PARAM_construct_end(),
		};

		pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		if (!pc || EVP_PKEY_fromdata_init(pc) <= 0 ||
		    EVP_PKEY_fromdata(pc, &out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
			EVP_PKEY_CTX_free(pc);
			hpq_ossl_errf(err, errlen, HPQ_EINVAL, "the request's EC key is unusable");
			return NULL;
		}
		EVP_PKEY_CTX_free(pc);
	}
	/* Importing the point checks it is on the curve; check the key too. */
	pc = EVP_PKEY_CTX_new_from_pkey(NULL, out, NULL);
	if (!pc || EVP_PKEY_public_check(pc) != 1) {
		EVP_PKEY_CTX_free(pc);
		EVP_PKEY_free(out);
		hpq_ossl_errf(err, errlen, HPQ_EINVAL, "the request's EC key is not a valid point");
		return NULL;
	}
	EVP_PKEY_CTX_free(pc);
	return out;
}

int hpq_ca_sign_node(struct hpq_ca *ca, const char *csr_pem, size_t csr_len, const char *node,
		     const char *pool, int64_t lifetime_s, char **ret_cert_pem,
		     struct hpq_cert_info *info, char *err, size_t errlen)
{
	struct hpq_cert_info tmp;
	X509_NAME *subject = NULL;
	EVP_PKEY *pub = NULL, *reqkey;
	X509_REQ *req = NULL;
	X509 *cert = NULL;
	char *pem = NULL;
	BIO *b = NULL;
	int r;

	if (hpq_check_name(node) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "invalid node name '%.*s'", HPQ_NAME_MAX,
				node ? node : "");
	if (pool && *pool && hpq_check_name(pool) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "invalid pool name '%.*s'", HPQ_NAME_MAX,
				pool);
	if (lifetime_s < 1 || lifetime_s > LIFETIME_MAX)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"certificate lifetime %lld s is not in 1..%lld",
				(long long)lifetime_s, (long long)LIFETIME_MAX);
	if (!csr_pem || csr_len == 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "empty certificate request");
	if (csr_len > HPQ_PKI_FILE_MAX)
		return hpq_errf(err, errlen, HPQ_ETOOBIG,
				"certificate request larger than %u bytes", HPQ_PKI_FILE_MAX);

	b = BIO_new_mem_buf(csr_pem, (int)csr_len);
	req = b ? PEM_read_bio_X509_REQ(b, NULL, hpq_ossl_no_passphrase, NULL) : NULL;
	if (!req) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "not a PEM certificate request");
		goto out;
	}
	reqkey = X509_REQ_get0_pubkey(req);
	if (!reqkey) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "the certificate request has no usable key");
		goto out;
	}
	pub = node_pubkey(reqkey, err, errlen);
	if (!pub) {
		r = HPQ_EINVAL;
		goto out;
	}
	/* Proof that the requester holds the private key. */
	if (X509_REQ_verify(req, reqkey) != 1) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL,
			      "the certificate request's signature does not verify");
		goto out;
	}
	subject = make_name(node, pool);
	cert = subject ? new_cert(pub, subject, ca->cert, lifetime_s) : NULL;
	if (!cert || leaf_exts(cert, ca->cert, "clientAuth") < 0 ||
	    !X509_sign(cert, ca->key, sign_md(ca->key))) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "cannot make the node certificate");
		goto out;
	}
	pem = x509_to_pem(cert);
	if (!pem) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "cannot encode the node certificate");
		goto out;
	}
	r = x509_info(cert, info ? info : &tmp, err, errlen);
	if (r < 0)
		goto out;
	*ret_cert_pem = pem;
	pem = NULL;
out:
	BIO_free(b);
	X509_REQ_free(req);
	EVP_PKEY_free(pub);
	X509_NAME_free(subject);
	X509_free(cert);
	free(pem);
	ERR_clear_error();
	return r;
}

int hpq_pki_make_request(const char *node, char **ret_key_pem, char **ret_csr_pem, char *err,
			 size_t errlen)
{
	X509_NAME *subject = NULL;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	char *key_pem = NULL, *csr_pem = NULL;
	BIO *b = NULL;
	int r = 0;

	if (hpq_check_name(node) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "invalid node name '%.*s'", HPQ_NAME_MAX,
				node ? node : "");
	key = new_key();
	subject = key ? make_name(node, NULL) : NULL;
	req = subject ? X509_REQ_new() : NULL;
	b = req ? BIO_new(BIO_s_mem()) : NULL;
	if (!b || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, subject) || !X509_REQ_set_pubkey(req, key) ||
	    !X509_REQ_sign(req, key, EVP_sha256()) || !PEM_write_bio_X509_REQ(b, req) ||
	    !(key_pem = key_to_pem(key))) {
		r = hpq_ossl_errf(err, errlen, HPQ_EINVAL, "cannot make a certificate request");
		goto out;
	}
	csr_pem = bio_string(b);
	*ret_key_pem = key_pem;
	*ret_csr_pem = csr_pem;
out:
	BIO_free(b);
	X509_REQ_free(req);
	X509_NAME_free(subject);
	EVP_PKEY_free(key);
	return r;
}
