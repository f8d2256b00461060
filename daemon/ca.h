/*
 * ca.h: hpqd's certificates (docs/security.md, "Nodes"): the cluster CA
 * in <state_dir>/tls, made at the first start; the server certificate for
 * the names clients and agents dial; the TLS context the TCP listener
 * speaks; and the signing of node certificates.
 *
 * The server certificate names [tls] server_names, or when none are set:
 * the listen address if it is a specific one (else every address of this
 * host's interfaces), the host name, localhost, 127.0.0.1 and ::1. It is
 * made again at start when those names change or a third of its life is
 * left, and so while hpqd runs (ca_renew_server): a daemon that runs for
 * longer than its certificate's life keeps a valid one.
 */
#ifndef HPQD_CA_H
#define HPQD_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "pki.h"
#include "tls.h"

struct ca;

int ca_open(const struct config *cfg, const char *cluster_id, struct ca **ret, char *err,
	    size_t errlen);
void ca_free(struct ca *ca);

/* For hpqd --check: reports to out what a start would use (the CA's hash,
 * the server certificate's expiry and names), making nothing. Returns 0,
 * or a negative code when a file there would stop the start. */
int ca_check(const struct config *cfg, FILE *out);

/* The listener's TLS context (agents' certificates verified against the CA). */
struct hpq_tls_ctx *ca_server_tls(struct ca *ca);
/* The server certificate that context speaks with. */
const struct hpq_cert_info *ca_server_cert(const struct ca *ca);
/*
 * The server certificate again, as at start, for [tls] server_cert_lifetime
 * of cfg: made anew once a third of its life is left (or the names it
 * must carry changed), and the new serial and expiry logged. Returns 0
 * with *renewed set when ca_server_tls is a new context, the old one
 * freed: hand it to the listener at once (server_set_tls); or a negative
 * code and why, the old one kept.
 */
int ca_renew_server(struct ca *ca, const struct config *cfg, bool *renewed, char *err,
		    size_t errlen);
/* How often to ask: a sixth of the certificate's lifetime, at most an hour. */
uint64_t ca_renew_every_ms(const struct config *cfg);
const char *ca_hash(const struct ca *ca);      /* "sha256:..." */
const char *ca_pem(const struct ca *ca);
/* The server certificate's names, for hpqd --check and the log. */
const char *const *ca_server_names(const struct ca *ca, size_t *n);
/* Signs a node's request for [tls] node_cert_lifetime (pki.h's rules). */
int ca_sign_node(struct ca *ca, const char *csr, size_t len, const char *node, const char *pool,
		 char **ret_pem, struct hpq_cert_info *info, char *err, size_t errlen);

#endif
