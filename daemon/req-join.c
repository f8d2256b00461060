/*
 * req-join.c: how nodes come to be trusted (request.h, docs/security.md
 * "Nodes"): the bootstrap tokens administrators make, the JoinRequest of
 * an agent that has no certificate yet, the RenewRequest of one whose
 * certificate is getting old, and revocation.
 *
 * A join is checked before anything is signed (the token must be good and
 * the name free), and the token is used up only once the certificate is
 * made; the answer goes out after the commit that records both, so a
 * crash can never leave a node with a certificate hpqd does not know, or
 * a token used for nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "ca.h"
#include "context.h"
#include "error.h"
#include "log.h"
#include "request.h"
#include "server.h"
#include "trust.h"
#include "xalloc.h"

/* The name a joining agent asked for must not belong to another machine. */
static int name_free(struct req *q, const char *name)
{
	const struct node_cert *nc = state_node_cert(&q->d->state, name);
	struct node *n = state_node_find(&q->d->state, name);

	if (nc)
		return state_errf(q->e, HPQ_EEXIST, "node %s already holds a certificate (serial "
				  "%s): if this machine replaces it, an administrator runs `hpq "
				  "node revoke %s` first", name, nc->serial, name);
	if (n && agentlink_conn(q->d, n))
		return state_errf(q->e, HPQ_EBUSY, "node %s is connected now: a second machine "
				  "cannot join under its name", name);
	return 0;
}

static int64_t ms_of(int64_t s)
{
	return s * 1000;
}

int req_join(struct req *q)
{
	const Hpq__JoinRequest *m = q->env->join;
	struct state *st = &q->d->state;
	const char *node = q->c->user;
	const struct join_token *t;
	struct hpq_cert_info info;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__JoinReply rep = HPQ__JOIN_REPLY__INIT;
	char *pem = NULL, err[256];
	int r;

	r = state_token_check(st, m->token, node, q->c->peer, &t, q->e);
	if (r < 0)
		return r;
	r = name_free(q, node);
	if (r < 0) {
		state_security(st, node, NULL, node, "join as %s from %s refused: %s", node,
			       q->c->peer, q->e->msg);
		return r;
	}
	r = ca_sign_node(q->d->ca, (const char *)m->csr.data, m->csr.len, node, t->pool, &pem,
			 &info, err, sizeof(err));
	if (r < 0) {
		state_security(st, node, NULL, node, "join as %s from %s refused: %s", node,
			       q->c->peer, err);
		return state_errf(q->e, HPQ_EINVAL, "join refused: %s", err);
	}
	state_token_use(st, t);
	state_cert_issued(st, info.serial, node, t->pool, ms_of(info.not_after),
			  "joined with token");
	log_notice("node %s joined from %s with token %s%s%s", node, q->c->peer, t->id,
		   *t->pool ? " into pool " : "", t->pool);
	rep.certificate.data = (uint8_t *)pem;
	rep.certificate.len = strlen(pem);
	rep.ca.data = (uint8_t *)ca_pem(q->d->ca);
	rep.ca.len = strlen(ca_pem(q->d->ca));
	rep.pool = t->pool;
	rep.not_after_ms = ms_of(info.not_after);
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_JOIN_REPLY;
	env.join_reply = &rep;
	server_reply_after_commit(q->c, &env);
	free(pem);
	return 0;
}

int req_renew(struct req *q)
{
	const Hpq__RenewRequest *m = q->env->renew;
	struct state *st = &q->d->state;
	struct conn *c = q->c;
	struct hpq_cert_info info;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__RenewReply rep = HPQ__RENEW_REPLY__INIT;
	char *pem = NULL, err[256];
	int r;

	if (!c->has_cert)
		return state_errf(q->e, HPQ_EPERM, "only a node that holds a certificate renews "
				  "it (this connection has none)");
	r = state_cert_check(st, c->cert.serial, c->cert.cn, q->e);
	if (r == 0)
		r = state_cert_renewable(st, c->cert.cn, q->e);
	if (r < 0)
		return r;
	r = ca_sign_node(q->d->ca, (const char *)m->csr.data, m->csr.len, c->cert.cn, c->cert.ou,
			 &pem, &info, err, sizeof(err));
	if (r < 0)
		return state_errf(q->e, HPQ_EINVAL, "renewal refused: %s", err);
	state_cert_issued(st, info.serial, c->cert.cn, c->cert.ou, ms_of(info.not_after),
			  "renewed");
	/* The peer proved it holds the new key (the request is signed with
	 * it) over a channel the old certificate vouched for: the new one
	 * vouches for this connection now, which outlives the old one. */
	server_cert_renewed(c, &info);
	rep.certificate.data = (uint8_t *)pem;
	rep.certificate.len = strlen(pem);
	rep.not_after_ms = ms_of(info.not_after);
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_RENEW_REPLY;
	env.renew_reply = &rep;
	server_reply_after_commit(c, &env);
	free(pem);
	return 0;
}

int req_token_create(struct req *q)
{
	const Hpq__TokenCreateRequest *m = q->env->token_create;
	const struct join_token *t;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__TokenCreateReply rep = HPQ__TOKEN_CREATE_REPLY__INIT;
	char token[TRUST_TOKEN_MAX];
	int r;

	r = state_token_create(&q->d->state, m->pool, m->ttl_s ? m->ttl_s
							       : q->d->cfg.tls.token_ttl_s,
			       m->uses, &q->c->actor, token, &t, q->e);
	if (r < 0)
		return r;
	rep.token = token;
	rep.ca_hash = (char *)ca_hash(q->d->ca);
	rep.expires_ms = t->expires_ms;
	rep.uses = t->uses_left;
	rep.pool = t->pool;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_TOKEN_CREATE_REPLY;
	env.token_create_reply = &rep;
	server_reply_after_commit(q->c, &env);
	return 0;
}

int req_token_list(struct req *q)
{
	size_t n;
	const struct join_token **v = state_tokens(&q->d->state, &n);
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__TokenListReply rep = HPQ__TOKEN_LIST_REPLY__INIT;
	Hpq__JoinToken *items = xcalloc(n + 1, sizeof(*items));
	Hpq__JoinToken **ptrs = xcalloc(n + 1, sizeof(*ptrs));

	for (size_t i = 0; i < n; i++) {
		hpq__join_token__init(&items[i]);
		items[i].id = v[i]->id;
		items[i].pool = v[i]->pool;
		items[i].expires_ms = v[i]->expires_ms;
		items[i].uses_left = v[i]->uses_left;
		items[i].created_by = v[i]->created_by;
		items[i].created_ms = v[i]->created_ms;
		ptrs[i] = &items[i];
	}
	rep.tokens = ptrs;
	rep.n_tokens = n;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_TOKEN_LIST_REPLY;
	env.token_list_reply = &rep;
	server_send(q->c, &env);
	free(ptrs);
	free(items);
	free(v);
	return 0;
}

int req_token_delete(struct req *q)
{
	return req_ok_after_commit(q, state_token_delete(&q->d->state, q->env->token_delete->id,
							 &q->c->actor, q->e));
}

int req_node_revoke(struct req *q)
{
	const char *name = q->env->node_revoke->name;
	size_t count;
	int r;

	r = state_node_revoke(&q->d->state, name, &q->c->actor, &count, q->e);
	if (r < 0)
		return r;
	/* Its connections end now, registered or not (the one that renewed
	 * its certificate too); it cannot come back with what it holds. */
	count = server_close_node(q->d->server, name);
	if (count)
		log_notice("node %s: certificates revoked by %s: %zu connection%s closed", name,
			   q->c->actor.user, count, count == 1 ? "" : "s");
	return req_ok_after_commit(q, 0);
}
