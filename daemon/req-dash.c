/*
 * req-dash.c: the dashboards' requests: status, events, usage and logs
 * (request.h). Each answers from what its module keeps: status.c builds
 * the status from memory, events.c and usage.c read the store behind
 * everything recorded so far, logs.c relays the read to the agent that
 * holds the output.
 */
#include <string.h>

#include "agentlink.h"
#include "clock.h"
#include "context.h"
#include "error.h"
#include "events.h"
#include "logs.h"
#include "request.h"
#include "rights.h"
#include "server.h"
#include "status.h"
#include "usage.h"

int req_status(struct req *q)
{
	const Hpq__StatusRequest *m = q->env->status;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__StatusReply *rep;
	int r;

	r = status_build(q->d, m->pool, m->team, hpq_now_ms(), &rep, q->e);
	if (r < 0)
		return r;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_STATUS_REPLY;
	env.status_reply = rep;
	server_send(q->c, &env);
	hpq__status_reply__free_unpacked(rep, NULL);
	return 0;
}

int req_events(struct req *q)
{
	return events_request(q->d->events, q->c, q->id, q->env->events, q->e);
}

int req_usage(struct req *q)
{
	return usage_request(q->d->usage, q->c, q->id, q->env->usage, q->e);
}

int req_log_request(struct req *q)
{
	const Hpq__LogRequest *m = q->env->log_request;
	struct state *st = &q->d->state;
	struct task *t = state_task_find(st, m->task_id);
	const char *node_name = m->node;
	struct conn *agent;
	struct node *n;

	if (!t)
		return state_errf(q->e, HPQ_ENOTFOUND, "no task %llu",
				  (unsigned long long)m->task_id);
	/* Output may hold secrets: private data (rights.h), unless private_data is off. */
	if (q->d->cfg.private_data && !rights_task_manage(st, t, &q->c->actor))
		return rights_task_refuse(t, "read its output", q->e);
	if (!t->attempts || (!*node_name && !t->n_node_names))
		return state_errf(q->e, HPQ_ENOTFOUND, "task %llu has not run yet: no output",
				  (unsigned long long)t->st.id);
	/* Each attempt has its own file, named by the cluster id, task and attempt. */
	if (m->attempt > t->attempts)
		return state_errf(q->e, HPQ_ENOTFOUND, "task %llu has run %u attempt%s, not %u",
				  (unsigned long long)t->st.id, t->attempts,
				  t->attempts == 1 ? "" : "s", m->attempt);
	if (!*node_name)
		node_name = t->node_names[0];
	n = state_node_find(st, node_name);
	if (!n)
		return state_errf(q->e, HPQ_ENOTFOUND, "unknown node '%.64s'", node_name);
	agent = agentlink_conn(q->d, n);
	if (!agent || agent->dead)
		return state_errf(q->e, HPQ_EUNAVAIL, "node %s is not connected: its agent holds "
				  "the output", n->name);
	logs_relay(q->d->logs, q->c, q->id, t->st.id, m->attempt ? m->attempt : t->attempts,
		   agent, m->offset, m->max);
	return 0;
}
