/*
 * credentials.h: the node's TLS credentials in its work directory, how
 * hpq-agent proves to hpqd which node it is.
 *
 *   WORK-DIR/tls/           mode 0700, the agent's user
 *   WORK-DIR/tls/node.pem   the node's private key, then its certificate
 *                           (CN = node, OU = pool), mode 0600: one file, so
 *                           that a renewal replaces both with one rename
 *   WORK-DIR/tls/ca.crt     the cluster CA the node trusts hpqd by, 0600
 *
 * A node has credentials once node.pem exists: joining writes ca.crt
 * first and node.pem last, so a join cut short leaves at most a ca.crt,
 * which the next join replaces. Files are read with hpq_pki_read_private
 * (no group or other access, owned by the agent's user or root) and
 * written atomically with hpq_path_write_file.
 */
#ifndef HPQ_AGENT_CREDENTIALS_H
#define HPQ_AGENT_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pki.h"

#define CREDS_DIR "tls"
#define CREDS_NODE_FILE "node.pem"
#define CREDS_CA_FILE "ca.crt"
/* A join token: "hpq1.ID.SECRET", printable, at most this long. */
#define CREDS_TOKEN_MAX 512

struct creds {
	char *dir;                  /* WORK-DIR/tls */
	char *node_path, *ca_path;
	bool present;               /* node.pem and ca.crt are loaded */
	char *key_pem, *cert_pem, *ca_pem;
	struct hpq_cert_info info;  /* of cert_pem */
	char ca_hash[HPQ_PKI_HASH_LEN];
};

/*
 * Opens WORK-DIR/tls (made with mode 0700 if missing; one that is not a
 * directory, belongs to another user or is open to group or others is
 * refused) and loads the credentials when node.pem is there. node is this
 * agent's node name: a certificate for another name is an error. An
 * expired certificate is loaded (the caller decides). Returns 0 (see
 * c->present), or a negative code with err saying what to do.
 */
int creds_open(struct creds *c, const char *work_dir, const char *node, char *err,
	       size_t errlen);
void creds_release(struct creds *c);

/*
 * Checks a key and the certificate hpqd issued for it (and, when ca_pem
 * is not NULL, the CA, whose hash must be ca_pin when that is not NULL),
 * writes them (ca.crt, then node.pem) and makes them the credentials in
 * use. The certificate must name node and be valid now. Bytes from the
 * network may be anything: embedded NULs and over-long input are refused.
 * Nothing changes on failure.
 */
int creds_store(struct creds *c, const char *node, const char *key_pem, const void *cert,
		size_t cert_len, const void *ca, size_t ca_len, const char *ca_pin, char *err,
		size_t errlen);

/* Splits node.pem's text into its key and its certificate (malloc'd). */
int creds_split_node(const char *text, char **ret_key, char **ret_cert, char *err,
		     size_t errlen);

/* The certificate's lifetime in seconds, from its issue (notBefore is
 * HPQ_PKI_BACKDATE_S before it) to notAfter. */
int64_t creds_lifetime(const struct hpq_cert_info *info);
/* True once less than a third of the certificate's lifetime is left. */
bool creds_renew_due(const struct hpq_cert_info *info, int64_t now_s);

/* Is s shaped like a join token (hpq1. and printable, without spaces)? */
bool creds_token_valid(const char *s);
/* Reads a join token from a private file (hpq_pki_read_private); trailing
 * white space is dropped. Returns the token (malloc'd). */
int creds_read_token(const char *path, char **ret, char *err, size_t errlen);


#endif
