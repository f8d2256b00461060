/*
 * credentials.c: loading, checking and saving the node's key, certificate
 * and CA in WORK-DIR/tls. See credentials.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "credentials.h"
#include "error.h"
#include "hpq.h"
#include "path.h"
#include "tls.h"
#include "xalloc.h"

#define CREDS_CERT_BEGIN "-----BEGIN CERTIFICATE-----"

bool creds_token_valid(const char *s)
{
	size_t n = strlen(s);

	if (n <= 5 || n >= CREDS_TOKEN_MAX || strncmp(s, "hpq1.", 5) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

int creds_read_token(const char *path, char **ret, char *err, size_t errlen)
{
	char *text, msg[256];
	size_t len;
	int r;

	r = hpq_pki_read_private(path, &text, &len, msg, sizeof(msg));
	if (r < 0)
		return hpq_errf(err, errlen, r, "cannot read the join token: %s", msg);
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
			   text[len - 1] == ' ' || text[len - 1] == '\t'))
		text[--len] = '\0';
	if (strlen(text) != len || !creds_token_valid(text)) {
		explicit_bzero(text, len);
		free(text);
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"'%s' does not hold a join token: expected one line "
				"hpq1.ID.SECRET, as 'hpq node token create' prints it", path);
	}
	*ret = text;
	return 0;
}

int64_t creds_lifetime(const struct hpq_cert_info *info)
{
	int64_t lifetime = info->not_after - info->not_before;

	/* Counted from its issue: the backdating is not life it will have. */
	return lifetime > HPQ_PKI_BACKDATE_S ? lifetime - HPQ_PKI_BACKDATE_S : lifetime;
}

bool creds_renew_due(const struct hpq_cert_info *info, int64_t now_s)
{
	int64_t lifetime = creds_lifetime(info);

	if (lifetime <= 0)
		return true;
	return (info->not_after - now_s) * 3 < lifetime;
}

int creds_split_node(const char *text, char **ret_key, char **ret_cert, char *err,
		     size_t errlen)
{
	const char *cert = strstr(text, CREDS_CERT_BEGIN);

	/* Our own file: the key's PEM block, then the certificate's. */
	if (!cert || (cert != text && cert[-1] != '\n'))
		return hpq_errf(err, errlen, HPQ_EINVAL, "no certificate in it");
	if (!memmem(text, (size_t)(cert - text), "PRIVATE KEY-----", 16))
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"no private key before the certificate in it");
	*ret_key = xstrndup(text, (size_t)(cert - text));
	*ret_cert = xstrdup(cert);
	return 0;
}

/* Do the key, the certificate and the CA make a TLS client? (tls.c loads
 * them as it will for a connection: a key that is not the certificate's
 * fails here.) */
static int creds_check_tls(const char *key_pem, const char *cert_pem, const char *ca_pem,
			   char *err, size_t errlen)
{
	struct hpq_tls_config tc = {.ca_pem = ca_pem, .cert_pem = cert_pem, .key_pem = key_pem};
	struct hpq_tls_ctx *ctx = hpq_tls_ctx_new(false, &tc, err, errlen);

	if (!ctx)
		return HPQ_ETLS;
	hpq_tls_ctx_free(ctx);
	return 0;
}

static int creds_check_cert(const char *cert_pem, const char *node,
			    struct hpq_cert_info *info, char *err, size_t errlen)
{
	char msg[256];
	int r;

	r = hpq_pki_cert_info(cert_pem, strlen(cert_pem), info, msg, sizeof(msg));
	if (r < 0)
		return hpq_errf(err, errlen, r, "not a certificate: %s", msg);
	if (strcmp(info->cn, node) != 0)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"the certificate is for node '%s', but this agent is node '%s'",
				info->cn, node);
	return 0;
}

/* The directory: ours, a directory, closed to others. */
static int creds_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return hpq_errf(err, errlen, -errno, "cannot create '%s': %s", dir,
				strerror(errno));
	if (lstat(dir, &st) < 0)
		return hpq_errf(err, errlen, -errno, "cannot read '%s': %s", dir,
				strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return hpq_errf(err, errlen, HPQ_EINVAL, "'%s' is not a directory", dir);
	if (st.st_uid != geteuid())
		return hpq_errf(err, errlen, HPQ_EPERM,
				"'%s' belongs to uid %u, not to the agent's user (uid %u): "
				"chown it", dir, (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & 077)
		return hpq_errf(err, errlen, HPQ_EPERM,
				"'%s' is open to other users (mode %04o): chmod 700 %s", dir,
				(unsigned)(st.st_mode & 07777), dir);
	return 0;
}

static void creds_clear(struct creds *c)
{
	if (c->key_pem) {
		explicit_bzero(c->key_pem, strlen(c->key_pem));
		free(c->key_pem);
	}
	free(c->cert_pem);
	free(c->ca_pem);
	c->key_pem = c->cert_pem = c->ca_pem = NULL;
	c->present = false;
	memset(&c->info, 0, sizeof(c->info));
	c->ca_hash[0] = '\0';
}

static int creds_load(struct creds *c, const char *node, char *err, size_t errlen)
{
	char *text = NULL, *ca = NULL, *key = NULL, *cert = NULL, msg[256];
	size_t len, ca_len;
	int r;

	r = hpq_pki_read_private(c->node_path, &text, &len, msg, sizeof(msg));
	if (r < 0)
		return hpq_errf(err, errlen, r, "cannot read this node's credentials: %s", msg);
	r = hpq_pki_read_private(c->ca_path, &ca, &ca_len, msg, sizeof(msg));
	if (r == -ENOENT) {
		r = hpq_errf(err, errlen, r,
			     "'%s' is there but '%s' is not: remove %s and join again (--join)",
			     c->node_path, c->ca_path, c->dir);
		goto out;
	}
	if (r < 0) {
		r = hpq_errf(err, errlen, r, "cannot read the cluster CA: %s", msg);
		goto out;
	}
	r = creds_split_node(text, &key, &cert, msg, sizeof(msg));
	if (r == 0)
		r = creds_check_cert(cert, node, &c->info, msg, sizeof(msg));
	if (r == 0)
		r = hpq_pki_cert_hash(ca, ca_len, c->ca_hash, msg, sizeof(msg));
	if (r == 0)
		r = creds_check_tls(key, cert, ca, msg, sizeof(msg));
	if (r < 0) {
		r = hpq_errf(err, errlen, r, "'%s' (or '%s') is not usable: %s; remove %s and "
			     "join again (--join)", c->node_path, c->ca_path, msg, c->dir);
		goto out;
	}
	c->key_pem = key;
	c->cert_pem = cert;
	c->ca_pem = ca;
	c->present = true;
	key = cert = ca = NULL;
out:
	if (key)
		explicit_bzero(key, strlen(key));
	free(key);
	free(cert);
	free(ca);
	explicit_bzero(text, len);
	free(text);
	if (r < 0)
		creds_clear(c);
	return r;
}

int creds_open(struct creds *c, const char *work_dir, const char *node, char *err,
	       size_t errlen)
{
	int r;

	memset(c, 0, sizeof(*c));
	xasprintf(&c->dir, "%s/%s", work_dir, CREDS_DIR);
	xasprintf(&c->node_path, "%s/%s", c->dir, CREDS_NODE_FILE);
	xasprintf(&c->ca_path, "%s/%s", c->dir, CREDS_CA_FILE);
	r = creds_dir(c->dir, err, errlen);
	if (r < 0)
		return r;
	if (access(c->node_path, F_OK) < 0 && errno == ENOENT)
		return 0; /* not joined yet */
	return creds_load(c, node, err, errlen);
}

void creds_release(struct creds *c)
{
	creds_clear(c);
	free(c->dir);
	free(c->node_path);
	free(c->ca_path);
	memset(c, 0, sizeof(*c));
}

/* Bytes from hpqd as a C string: no NUL inside, not over the file limit. */
static char *creds_text(const void *data, size_t len)
{
	if (len == 0 || len > HPQ_PKI_FILE_MAX || memchr(data, '\0', len))
		return NULL;
	return xstrndup(data, len);
}

int creds_store(struct creds *c, const char *node, const char *key_pem, const void *cert,
		size_t cert_len, const void *ca, size_t ca_len, const char *ca_pin, char *err,
		size_t errlen)
{
	char *cert_pem = creds_text(cert, cert_len), *ca_pem = NULL, *file = NULL;
	char hash[HPQ_PKI_HASH_LEN] = "", msg[256];
	struct hpq_cert_info info;
	int r;

	if (!cert_pem) {
		r = hpq_errf(err, errlen, HPQ_EPROTO, "hpqd sent no usable certificate");
		goto out;
	}
	if (!ca && !c->ca_pem) {
		r = hpq_errf(err, errlen, HPQ_EPROTO, "hpqd sent no CA certificate");
		goto out;
	}
	if (ca) {
		ca_pem = creds_text(ca, ca_len);
		if (!ca_pem) {
			r = hpq_errf(err, errlen, HPQ_EPROTO, "hpqd sent no usable CA certificate");
			goto out;
		}
		r = hpq_pki_cert_hash(ca_pem, strlen(ca_pem), hash, msg, sizeof(msg));
		if (r < 0) {
			r = hpq_errf(err, errlen, HPQ_EPROTO, "the CA certificate from hpqd is "
				     "not usable: %s", msg);
			goto out;
		}
		if (ca_pin && strcasecmp(hash, ca_pin) != 0) {
			r = hpq_errf(err, errlen, HPQ_EPROTO, "the CA certificate from hpqd "
				     "(%s) is not the pinned one (%s)", hash, ca_pin);
			goto out;
		}
	}
	r = creds_check_cert(cert_pem, node, &info, msg, sizeof(msg));
	if (r < 0) {
		r = hpq_errf(err, errlen, HPQ_EPROTO, "the certificate from hpqd: %s", msg);
		goto out;
	}
	if (info.not_after <= hpq_now_ms() / 1000) {
		r = hpq_errf(err, errlen, HPQ_EPROTO, "the certificate from hpqd has expired "
			     "already; is this node's clock right?");
		goto out;
	}
	r = creds_check_tls(key_pem, cert_pem, ca_pem ? ca_pem : c->ca_pem, msg, sizeof(msg));
	if (r < 0) {
		r = hpq_errf(err, errlen, HPQ_EPROTO, "the certificate from hpqd does not go "
			     "with this node's key: %s", msg);
		goto out;
	}
	if (ca_pem) {
		r = hpq_path_write_file(c->ca_path, ca_pem, strlen(ca_pem), 0600, msg, sizeof(msg));
		if (r < 0) {
			r = hpq_errf(err, errlen, r, "cannot save the cluster CA: %s", msg);
			goto out;
		}
	}
	xasprintf(&file, "%s%s%s", key_pem,
		  key_pem[0] && key_pem[strlen(key_pem) - 1] != '\n' ? "\n" : "", cert_pem);
	r = hpq_path_write_file(c->node_path, file, strlen(file), 0600, msg, sizeof(msg));
	if (r < 0) {
		r = hpq_errf(err, errlen, r, "cannot save this node's certificate: %s", msg);
		goto out;
	}
	/* Saved: these are the credentials now. */
	if (c->key_pem) {
		explicit_bzero(c->key_pem, strlen(c->key_pem));
		free(c->key_pem);
	}
	free(c->cert_pem);
	c->key_pem = xstrdup(key_pem);
	c->cert_pem = cert_pem;
	cert_pem = NULL;
	if (ca_pem) {
		free(c->ca_pem);
		c->ca_pem = ca_pem;
		ca_pem = NULL;
		memcpy(c->ca_hash, hash, sizeof(hash));
	}
	c->info = info;
	c->present = true;
out:
	if (file) {
		explicit_bzero(file, strlen(file));
		free(file);
	}
	free(cert_pem);
	free(ca_pem);
	return r;
}
