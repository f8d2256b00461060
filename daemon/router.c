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
 * like a request of the wrong role.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "context.h"
#include "error.h"
#include "msg.h"
#include "request.h"
#include "router.h"
#include "server.h"

enum {
	CLIENT = 1u << 0,
	AGENT = 1u << 1,
};

struct req_entry {
	unsigned roles;              /* who may send it */
	const char *admin;           /* administrators only: "only administrators can ..." */
	req_fn *handle;
};

#define BODY(name) HPQ__ENVELOPE__BODY_##name

static const struct req_entry table[] = {
	[BODY(SUBMIT)]        = { CLIENT, NULL, req_submit },
	[BODY(LIST)]          = { CLIENT, NULL, req_list },
	[BODY(SHOW)]          = { CLIENT, NULL, req_show },
	[BODY(CANCEL)]        = { CLIENT, NULL, req_cancel },
	[BODY(CHECKPOINT)]    = { CLIENT | AGENT, NULL, req_checkpoint },

	[BODY(NODE_LIST)]     = { CLIENT, NULL, req_node_list },
	[BODY(NODE_DRAIN)]    = { CLIENT, "drain nodes", req_node_drain },
	[BODY(NODE_RESUME)]   = { CLIENT, "resume nodes", req_node_resume },
	[BODY(NODE_REPAIR)]   = { CLIENT, "repair nodes", req_node_repair },

	[BODY(TEAM_SET)]      = { CLIENT, NULL, req_team_set },
	[BODY(TEAM_REMOVE)]   = { CLIENT, NULL, req_team_remove },
	[BODY(TEAM_LIST)]     = { CLIENT, NULL, req_team_list },
	[BODY(CLASS_SET)]     = { CLIENT, NULL, req_class_set },
	[BODY(CLASS_REMOVE)]  = { CLIENT, NULL, req_class_remove },
	[BODY(CLASS_LIST)]    = { CLIENT, NULL, req_class_list },
	[BODY(POLICY_SHOW)]   = { CLIENT, NULL, req_policy_show },
	[BODY(POLICY_SET)]    = { CLIENT, NULL, req_policy_set },

	[BODY(STATUS)]        = { CLIENT, NULL, req_status },
	[BODY(EVENTS)]        = { CLIENT, NULL, req_events },
	[BODY(USAGE)]         = { CLIENT, NULL, req_usage },
	[BODY(LOG_REQUEST)]   = { CLIENT, NULL, req_log_request },

	[BODY(REGISTER)]      = { AGENT, NULL, req_register },
	[BODY(HEARTBEAT)]     = { AGENT, NULL, req_heartbeat },
	[BODY(TASK_UPDATE)]   = { AGENT, NULL, req_task_update },
	[BODY(LOG_CHUNK)]     = { AGENT, NULL, req_log_chunk },
	[BODY(OK)]            = { AGENT, NULL, req_ack },
	[BODY(ERROR)]         = { AGENT, NULL, req_ack },
};

void router_deliver(void *arg, struct conn *c, const Hpq__Envelope *env)
{
	struct state_err e = { { 0 } };
	struct req q = { .d = arg, .c = c, .id = env->id, .env = env, .e = &e };
	bool agent = c->role == HPQ__ROLE__ROLE_AGENT;
	unsigned role = agent ? AGENT : CLIENT;
	const struct req_entry *r = NULL;
	int rc;

	if ((size_t)env->body_case < sizeof(table) / sizeof(table[0]))
		r = &table[env->body_case];
	if (!r || !r->handle || !(r->roles & role))
		rc = HPQ_EPROTO;
	else if (r->admin && !c->actor.admin)
		rc = state_errf(&e, HPQ_EPERM, "only administrators can %s", r->admin);
	else
		rc = r->handle(&q);
	if (rc >= 0)
		return;
	if (rc == HPQ_EPROTO && !e.msg[0])
		state_errf(&e, HPQ_EPROTO, "%s is not a request a%s may send", hpq_msg_name(env),
			   agent ? "n agent" : " client");
	server_send_error(c, env->id, rc, e.msg);
}
