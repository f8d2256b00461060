/*
 * pki.h: the cluster's certificates (OpenSSL 3). hpqd holds a cluster CA
 * (a key and a self-signed certificate in its state directory, made at
 * first start); it signs its own server certificate and the node
 * certificates agents ask for when they join. Keys are EC P-256.
 *
 * A node certificate names its node in the subject's CN and its pool in
 * OU; hpqd writes the subject itself and takes only the public key from a
 * request, so what a node is called is hpqd's word, never the node's.
 *
 * Key and certificate files are read as ssh reads its keys: a regular file
 * of sane size, owned by the user reading it (or root), and not group- or
 * world-readable. Files are written atomically (temporary file, fsync,
 * rename) with mode 0600.
 *
 * Errors: a negative HPQ_E* code (error.h) or -errno, with words in err.
 */
#ifndef HPQ_PKI_H
#define HPQ_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hpq.h"

/* "sha256:" and 64 hex digits of the certificate's DER, with the NUL. */
#define HPQ_PKI_HASH_LEN 72
/* A serial number in hex (128 random bits), with the NUL. */
#define HPQ_PKI_SERIAL_LEN 40
/* The largest key or certificate file read, and the largest CSR signed. */
#define HPQ_PKI_FILE_MAX (64u << 10)

/* Certificates start a little in the past, so that a freshly issued one
 * is not "not yet valid" on a machine whose clock is a few minutes behind:
 * one was issued this long after its notBefore. */
#define HPQ_PKI_BACKDATE_S 300

struct hpq_cert_info {
	char cn[HPQ_NAME_MAX];       /* node name (node certs), "" if none */
	char ou[HPQ_NAME_MAX];       /* pool (node certs), "" if none */
	char serial[HPQ_PKI_SERIAL_LEN];
	int64_t not_before, not_after; /* Unix seconds */
};

struct hpq_ca;

/* Opens the CA in dir: dir/ca.key and dir/ca.crt. If neither exists and
 * create is true, makes them (a self-signed CA certificate, CN "hpq
 * cluster CA <label>", valid 10 years), mode 0600. One without the other,
 * a file that fails hpq_pki_read_private, or a key that does not match the
 * certificate is an error. */
int hpq_ca_open(const char *dir, const char *label, bool create, struct hpq_ca **ret,
		char *err, size_t errlen);
void hpq_ca_free(struct hpq_ca *ca);
const char *hpq_ca_hash(const struct hpq_ca *ca);   /* "sha256:..." */
const char *hpq_ca_pem(const struct hpq_ca *ca);    /* the CA certificate, PEM */

/* Makes sure dir/server.key and dir/server.crt hold a key and a server
 * certificate signed by ca whose subjectAltName lists exactly names (each
 * an IPv4/IPv6 address or a DNS name), valid for days from now. An
 * existing pair is kept if it is signed by ca, names the same names and
 * is valid for more than a third of days more; otherwise both are made
 * again. The PEM text of both is returned (malloc'd). */
int hpq_ca_server_cert(struct hpq_ca *ca, const char *dir, const char *const *names,
		       size_t nnames, int days, char **ret_cert_pem, char **ret_key_pem,
		       char *err, size_t errlen);

/* Signs a node's certificate request (PEM, at most HPQ_PKI_FILE_MAX):
 * checks the request's own signature and that its key is EC P-256 (or
 * Ed25519), then issues a certificate for that key with subject CN=node,
 * OU=pool (pool may be ""), extendedKeyUsage clientAuth, a random serial,
 * valid from now for lifetime_s. Whatever subject or extensions the
 * request carries are ignored. Returns the certificate PEM (malloc'd) and
 * fills info. Any bytes at all may come in csr_pem: this is the path a
 * joining node's request takes before it is trusted (tests/fuzz). */
int hpq_ca_sign_node(struct hpq_ca *ca, const char *csr_pem, size_t csr_len, const char *node,
		     const char *pool, int64_t lifetime_s, char **ret_cert_pem,
		     struct hpq_cert_info *info, char *err, size_t errlen);

/* Agent side: a fresh EC P-256 key and a certificate request for node
 * (CN=node), both PEM, malloc'd. */
int hpq_pki_make_request(const char *node, char **ret_key_pem, char **ret_csr_pem, char *err,
			 size_t errlen);

/* Facts about a PEM certificate. */
int hpq_pki_cert_info(const char *pem, size_t len, struct hpq_cert_info *info, char *err,
		      size_t errlen);
/* "sha256:<hex>" of a PEM certificate's DER (the CA pin agents check). */
int hpq_pki_cert_hash(const char *pem, size_t len, char out[HPQ_PKI_HASH_LEN], char *err,
		      size_t errlen);
/* Is s a well-formed pin: "sha256:" and 64 hex digits (any case)? */
bool hpq_pki_hash_valid(const char *s);

/* Reads a key or certificate file: a regular file (not a device, FIFO or
 * directory: nothing that could hang or never end) of at most
 * HPQ_PKI_FILE_MAX bytes, owned by the effective user or root, with no
 * group or other permission bits that allow reading or writing. Says
 * which rule failed, and how to fix it ("chmod 600 PATH"). Returns the
 * contents NUL-terminated (malloc'd) and its length. */
int hpq_pki_read_private(const char *path, char **ret, size_t *ret_len, char *err,
			 size_t errlen);

#endif
