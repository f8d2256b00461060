/*
 * trust.h: the model's record of who may join as a node and which node
 * certificates hpqd issued (docs/security.md, "Nodes").
 *
 * A bootstrap token is "hpq1.ID.SECRET": ID names it in lists and events,
 * SECRET is 128 random bits of which hpqd keeps only a SHA-256. It is good
 * for its number of uses until it expires; a used-up token is kept until
 * then, so that a second use says so. Every certificate issued is kept
 * with its node, pool and expiry until it expires; revoking a node
 * revokes all of its certificates, and a revoked certificate is refused
 * from then on (state_cert_check).
 *
 * Refusals to peers that are not yet trusted (a wrong token) and breaches
 * by trusted nodes are recorded as "security" events, rate-limited per
 * name as refusals are (rights.h).
 */
#ifndef HPQD_TRUST_H
#define HPQD_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

#define TRUST_TOKEN_MAX 64          /* "hpq1." 12 hex "." 32 hex, with room */
#define TRUST_TOKEN_MAX_USES 10000
#define TRUST_TOKEN_MAX_TTL_S (30 * 86400)
#define TRUST_TOKEN_DEFAULT_TTL_S 3600
#define TRUST_NODE_CERTS_MAX 3       /* valid certificates a node may hold (renewal) */

struct join_token {
	char *id;
	char *secret_hash;           /* hex SHA-256 of the secret */
	char *pool;                  /* "": the node's own */
	int64_t expires_ms;
	uint32_t uses_left;
	char *created_by;
	int64_t created_ms;
};

struct node_cert {
	char *serial;
	char *node, *pool;
	int64_t issued_ms, not_after_ms;
	int64_t revoked_ms;          /* 0: valid */
};

/* Makes a token for pool ("": any; it must exist otherwise) good for
 * uses joins within ttl_s (0: TRUST_TOKEN_DEFAULT_TTL_S); the whole token
 * goes to token, which nobody can read back later. */
int state_token_create(struct state *st, const char *pool, uint64_t ttl_s, uint32_t uses,
		       const struct actor *who, char token[TRUST_TOKEN_MAX],
		       const struct join_token **ret, struct state_err *e);
/* Is token good for one more join (nothing changes)? Every refusal is a
 * security event naming node (the name the peer asked for) and peer. */
int state_token_check(struct state *st, const char *token, const char *node, const char *peer,
		      const struct join_token **ret, struct state_err *e);
/* Uses up one join of a token state_token_check accepted. */
void state_token_use(struct state *st, const struct join_token *t);
int state_token_delete(struct state *st, const char *id, const struct actor *who,
		       struct state_err *e);
/* The tokens not yet expired, oldest first (a malloc'd array). */
const struct join_token **state_tokens(struct state *st, size_t *n);

/* Records a certificate issued to node. */
void state_cert_issued(struct state *st, const char *serial, const char *node, const char *pool,
		       int64_t not_after_ms, const char *how);
/* May a peer with the certificate serial act as node: issued by this
 * hpqd to that node, and not revoked? (The signature and expiry at
 * connection are the TLS handshake's; a live connection is closed once
 * its certificate expires by the server, server.h.) */
int state_cert_check(const struct state *st, const char *serial, const char *node,
		     struct state_err *e);
/* The newest certificate of node that is neither revoked nor expired. */
const struct node_cert *state_node_cert(const struct state *st, const char *node);
/*
 * May node get one more certificate by renewal? Not while it holds
 * TRUST_NODE_CERTS_MAX that are neither expired nor revoked: an agent
 * renews once a certificate lifetime (a third before the end), so that is
 * room for its current one, the renewed one and one whose answer was lost,
 * and a node that asks again and again (a fault, or a thief) cannot make
 * hpqd sign and keep more. Nor once none is valid: a connection opened
 * before the last one expired does not renew it.
 */
int state_cert_renewable(const struct state *st, const char *node, struct state_err *e);
/* Revokes every certificate of node; how many were valid goes to *n. */
int state_node_revoke(struct state *st, const char *node, const struct actor *who, size_t *n,
		      struct state_err *e);

/* A breach or an untrusted peer's failed attempt, as a "security" event
 * (rate-limited per name) and a warning in the log. */
void state_security(struct state *st, const char *name, const struct task *t,
		    const char *node, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
