/*
 * router.c: the request table (router.h), in the manner of redis' command
 * table and tmux's cmd_entry.
 *
 * The table is indexed by the Envelope's body case, so finding a request
 * is one load. Each entry says who may send it: clients, agents, or both
 * (`hpq checkpoint` comes from the CLI directly or relayed by the task's
 * agent); and, for requests that only administrators may send whatever
 * they name, what they do, for the refusal's message. Rights that depend
 * on the object (whose task, which team) are the state's to check. A body
 * with no entry (a reply, a push, a body from a newer protocol) is refused
 * like a request of the wrong role. Every refusal for want of a right
 * (HPQ_EPERM) leaves through here and is recorded as a "denied" event
 * (rights.h); a cancel's per-task refusals are recorded by req_cancel.
 * Requests that change the state are marked WRITE: while the store is
 * degraded (a full or failing disk, store.h) they are refused here with
 * HPQ_ESTORAGE and the store's words, before anything is touched.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "context.h"
#include "deprecation.h"
#include "error.h"
#include "msg.h"
#include "request.h"
#include "rights.h"
#include "router.h"
#include "server.h"
#include "store.h"
#include "strmap.h"
#include "trust.h"
#include "xalloc.h"

/* One user's token bucket: `tokens` requests may go now; it refills at
 * [limits] rate per second up to burst. */
struct bucket {
	char *key;                   /* "uid 1000", or "user NAME" without an account */
	double tokens;
	uint64_t mono_ms;            /* when tokens was last brought up to date */
};

struct router {
	struct strmap buckets;       /* of struct bucket, by key */
};

struct router *router_new(void)
{
	return xcalloc(1, sizeof(struct router));
}

void router_free(struct router *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->buckets.cap; i++) {
		struct bucket *b = r->buckets.keys[i] ? r->buckets.vals[i] : NULL;

		if (b) {
			free(b->key);
			free(b);
		}
	}
	strmap_release(&r->buckets);
	free(r);
}

/* Takes one token from c's user; refuses (negative, with e) when none is left. */
static int charge(struct hpqd *d, struct conn *c, struct state_err *e)
{
	const struct limits_config *l = &d->cfg.limits;
	uint64_t now = uv_now(d->loop);
	struct bucket *b;
	char key[HPQ_NAME_MAX + 16];

	if (c->role == HPQ__ROLE__ROLE_AGENT || c->pseudo || (c->actor.admin && l->exempt_admins))
		return 0;
	if (c->actor.known)
		snprintf(key, sizeof(key), "uid %u", c->actor.uid);
	else
		snprintf(key, sizeof(key), "user %s", c->user);
	b = strmap_get(&d->router->buckets, key);
	if (!b) {
		b = xcalloc(1, sizeof(*b));
		b->key = xstrdup(key);
		b->tokens = l->burst;
		b->mono_ms = now;
		strmap_put(&d->router->buckets, b->key, b);
	}
	b->tokens += (double)(now - b->mono_ms) * l->rate / 1000.0;
	if (b->tokens > l->burst)
		b->tokens = l->burst;
	b->mono_ms = now;
	if (b->tokens < 1.0)
		return state_errf(e, HPQ_EBUSY, "too many requests from %s: the limit is %u per "
				  "second per user, %u at once ([limits] rate and burst); slow "
				  "down and try again", c->user, l->rate, l->burst);
	b->tokens -= 1.0;
	return 0;
}

enum {
	CLIENT = 1u << 0,
	AGENT = 1u << 1,
	JOINER = 1u << 2,            /* an agent over TLS without a certificate */
	WRITE = 1u << 3,             /* changes the state: refused while the store is degraded */
};

struct req_entry {
	unsigned roles;              /* who may send it */
	const char *admin;           /* administrators only: "only administrators can ..." */
	req_fn *handle;
};

#define BODY(name) HPQ__ENVELOPE__BODY_##name

static const struct req_entry table[] = {
	[BODY(SUBMIT)]        = { CLIENT | WRITE, NULL, req_submit },
	[BODY(LIST)]          = { CLIENT, NULL, req_list },
	[BODY(SHOW)]          = { CLIENT, NULL, req_show },
	[BODY(CANCEL)]        = { CLIENT | WRITE, NULL, req_cancel },
	[BODY(HOLD)]          = { CLIENT | WRITE, NULL, req_hold },
	[BODY(CHECKPOINT)]    = { CLIENT | AGENT | WRITE, NULL, req_checkpoint },
	[BODY(REQUEUE)]       = { CLIENT | WRITE, NULL, req_requeue },
	[BODY(UPDATE)]        = { CLIENT | WRITE, NULL, req_update },

	[BODY(NODE_LIST)]     = { CLIENT, NULL, req_node_list },
	[BODY(NODE_DRAIN)]    = { CLIENT | WRITE, "drain nodes", req_node_drain },
	[BODY(NODE_RESUME)]   = { CLIENT | WRITE, "resume nodes", req_node_resume },
	[BODY(NODE_REPAIR)]   = { CLIENT | WRITE, "repair nodes", req_node_repair },
	[BODY(NODE_REMOVE)]   = { CLIENT | WRITE, "remove nodes", req_node_remove },
	[BODY(NODE_REVOKE)]   = { CLIENT | WRITE, "revoke nodes", req_node_revoke },
	[BODY(TOKEN_CREATE)]  = { CLIENT | WRITE, "make join tokens", req_token_create },
	[BODY(TOKEN_LIST)]    = { CLIENT, "list join tokens", req_token_list },
	[BODY(TOKEN_DELETE)]  = { CLIENT | WRITE, "delete join tokens", req_token_delete },
	[BODY(JOIN)]          = { JOINER | WRITE, NULL, req_join },

	[BODY(TEAM_SET)]      = { CLIENT | WRITE, NULL, req_team_set },
	[BODY(TEAM_REMOVE)]   = { CLIENT | WRITE, NULL, req_team_remove },
	[BODY(TEAM_LIST)]     = { CLIENT, NULL, req_team_list },
	[BODY(CLASS_SET)]     = { CLIENT | WRITE, NULL, req_class_set },
	[BODY(CLASS_REMOVE)]  = { CLIENT | WRITE, NULL, req_class_remove },
	[BODY(CLASS_LIST)]    = { CLIENT, NULL, req_class_list },
	[BODY(POLICY_SHOW)]   = { CLIENT, NULL, req_policy_show },
	[BODY(POLICY_SET)]    = { CLIENT | WRITE, NULL, req_policy_set },

	[BODY(PLAN_SEARCH)]   = { CLIENT, NULL, req_plan_search },
	[BODY(PLAN_CREATE)]   = { CLIENT | WRITE, NULL, req_plan_create },
	[BODY(PLAN_LIST)]     = { CLIENT, NULL, req_plan_list },
	[BODY(PLAN_CANCEL)]   = { CLIENT | WRITE, NULL, req_plan_cancel },

	[BODY(STATUS)]        = { CLIENT, NULL, req_status },
	[BODY(EVENTS)]        = { CLIENT, NULL, req_events },
	[BODY(USAGE)]         = { CLIENT, NULL, req_usage },
	[BODY(LOG_REQUEST)]   = { CLIENT, NULL, req_log_request },
	[BODY(ACCT)]          = { CLIENT, NULL, req_acct },
	[BODY(VERSIONS)]      = { CLIENT, NULL, req_versions },
	[BODY(UPGRADE_CHECK)] = { CLIENT, NULL, req_upgrade_check },

	[BODY(REGISTER)]      = { AGENT | WRITE, NULL, req_register },
	[BODY(HEARTBEAT)]     = { AGENT, NULL, req_heartbeat },
	[BODY(TASK_UPDATE)]   = { AGENT | WRITE, NULL, req_task_update },
	[BODY(LOG_CHUNK)]     = { AGENT, NULL, req_log_chunk },
	[BODY(RENEW)]         = { AGENT | WRITE, NULL, req_renew },
	[BODY(OK)]            = { AGENT, NULL, req_ack },
	[BODY(ERROR)]         = { AGENT, NULL, req_ack },
};

/* A change while the disk is full or failing (store.h) is refused before
 * anything is touched; an agent told so keeps its report and tries again. */
static int writable(struct hpqd *d, const struct req_entry *r, struct state_err *e)
{
	if (!(r->roles & WRITE))
		return 0;
	return store_check_writable(d->store, e->msg, sizeof(e->msg));
}

void router_deliver(void *arg, struct conn *c, const Hpq__Envelope *env)
{
	struct state_err e = { { 0 } };
	struct req q = { .d = arg, .c = c, .id = env->id, .env = env, .e = &e };
	bool agent = c->role == HPQ__ROLE__ROLE_AGENT;
	unsigned role = c->phase != CONN_READY ? JOINER : agent ? AGENT : CLIENT;
	const struct req_entry *r = NULL;
	int rc;

	/* A peer of an older protocol is served, and its use recorded (in
	 * memory per request; the store's row is rate-limited). */
	if (c->protocol == 1 && c->phase == CONN_READY && c->user) {
		char who[HPQ_NAME_MAX + 16];

		snprintf(who, sizeof(who), "%s %s", agent ? "agent" : "client", c->user);
		deprecation_note(q.d->deprecations, DEPRECATED_PROTOCOL_1, who, hpq_now_ms());
	}
	if ((size_t)env->body_case < sizeof(table) / sizeof(table[0]))
		r = &table[env->body_case];
	if (!r || !r->handle || !(r->roles & role))
		rc = HPQ_EPROTO;
	else if (r->admin && !c->actor.admin)
		rc = state_errf(&e, HPQ_EPERM, "only administrators can %s", r->admin);
	else if ((rc = writable(q.d, r, &e)) == 0 && (rc = charge(q.d, c, &e)) == 0)
		rc = r->handle(&q);
	if (rc >= 0)
		return;
	/* Every refusal for want of a right goes into the event log (rights.h);
	 * a node that acts beyond itself is a security event (trust.h). */
	if (rc == HPQ_EPERM && agent)
		state_security(&q.d->state, c->user, NULL, c->user, "%s", e.msg);
	else if (rc == HPQ_EPERM)
		rights_denied(&q.d->state, &c->actor, NULL, e.msg);
	if (rc == HPQ_EPROTO && !e.msg[0])
		state_errf(&e, HPQ_EPROTO, "%s is not a request a%s may send", hpq_msg_name(env),
			   agent ? "n agent" : " client");
	server_send_error(c, env->id, rc, e.msg);
}
