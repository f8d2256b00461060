/*
 * request.h: the handlers of hpqd's requests, one per Envelope body, and
 * what the router hands each of them.
 *
 * Every handler is named req_<body> after the request it answers and lives
 * in the req-*.c file of its family: req-task.c (tasks), req-node.c
 * (nodes), req-join.c (joining nodes, their tokens and certificates),
 * req-team.c (teams, classes, the policy), req-plan.c (training plans),
 * req-dash.c (the
 * dashboards: status, events, usage, logs) and req-agent.c (what agents
 * send). The router (router.c) has already checked that the sender's role
 * may send the request, so a handler checks only the request itself.
 *
 * A handler either answers (at once for reads, after the commit for
 * changes: server_reply_after_commit) and returns 0, or refuses: it
 * returns a negative code with the reason in q->e, and the router sends
 * the Error, so every refusal leaves through one exit.
 */
#ifndef HPQD_REQUEST_H
#define HPQD_REQUEST_H

#include <stdint.h>

#include "hpq.pb-c.h"
#include "server.h"

struct conn;
struct hpqd;
struct state_err;

struct req {
	struct hpqd *d;
	struct conn *c;              /* the sender */
	uint64_t id;                 /* the request id the reply must carry */
	const Hpq__Envelope *env;    /* the request; its body is env->(body) */
	struct state_err *e;         /* a refusal's message */
};

typedef int req_fn(struct req *q);

/* The reply to a change that was applied (r >= 0): Ok once it is
 * committed. Returns r when it is a refusal, else 0. */
static inline int req_ok_after_commit(struct req *q, int r)
{
	if (r < 0)
		return r;
	server_ok_after_commit(q->c, q->id);
	return 0;
}

/* req-task.c */
req_fn req_submit, req_list, req_show, req_cancel, req_checkpoint;
req_fn req_update;
/* req-control.c */
req_fn req_hold, req_requeue, req_cancel_select, req_cancel_ids_select;
/* req-node.c */
req_fn req_node_list, req_node_drain, req_node_resume, req_node_repair, req_node_remove;
/* req-team.c */
req_fn req_team_set, req_team_remove, req_team_list;
req_fn req_class_set, req_class_remove, req_class_list;
req_fn req_policy_show, req_policy_set;
/* req-dash.c */
req_fn req_status, req_events, req_usage, req_log_request, req_acct, req_versions;
req_fn req_upgrade_check;
/* req-join.c */
req_fn req_join, req_renew, req_token_create, req_token_list, req_token_delete;
req_fn req_node_revoke;
/* req-plan.c */
req_fn req_plan_search, req_plan_create, req_plan_list, req_plan_cancel;
/* req-agent.c */
req_fn req_register, req_heartbeat, req_task_update, req_log_chunk, req_ack;

#endif
