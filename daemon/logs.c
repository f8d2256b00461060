/*
 * logs.c: relaying `hpq logs` between clients and agents (logs.h).
 *
 * A relayed request is a small record (client connection and request id,
 * agent connection, deadline) on a list; both connections are referenced
 * so that either may go away first. The list is short (one entry per
 * client read in flight), so it is searched linearly; a one-second timer
 * runs only while it is not empty and fails what is overdue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hpqd.h"
#include "log.h"
#include "logs.h"
#include "server.h"
#include "xalloc.h"

#define MAX_CHUNK (1u << 20)

struct relay {
	struct dlist link;
	struct conn *client, *agent;
	uint64_t client_id, agent_id;
	uint64_t deadline;           /* uv_now */
};

struct logs {
	struct hpqd *d;
	struct dlist relays;
	uint64_t next_id;
	uv_timer_t timer;
};

static void relay_free(struct relay *r)
{
	dlist_del(&r->link);
	server_unref(r->client);
	server_unref(r->agent);
	free(r);
}

static void on_timer(uv_timer_t *h)
{
	struct logs *lg = h->data;
	uint64_t now = uv_now(lg->d->loop);

	for (struct dlist *l = lg->relays.next, *next; l != &lg->relays; l = next) {
		struct relay *r = container_of(l, struct relay, link);

		next = l->next;
		if (r->agent->dead || now >= r->deadline) {
			server_send_error(r->client, r->client_id, HPQ_EUNAVAIL,
					  r->agent->dead ? "the node's agent went away; try again"
							 : "the node's agent did not answer in time");
			relay_free(r);
		}
	}
	if (dlist_empty(&lg->relays))
		uv_timer_stop(&lg->timer);
}

int logs_rpc(struct conn *c, uint64_t id, const Hpq__LogRequest *m, struct state_err *e)
{
	struct logs *lg = c->d->logs;
	struct state *st = &c->d->state;
	struct task *t = state_task_find(st, m->task_id);
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__LogRequest fwd = HPQ__LOG_REQUEST__INIT;
	const char *node_name = m->node;
	struct node *n;
	struct relay *r;

	if (!t)
		return state_errf(e, HPQ_ENOTFOUND, "no task %llu", (unsigned long long)m->task_id);
	/* Output may hold secrets: the owner and administrators only. */
	if (!c->actor.admin && strcmp(c->actor.user, t->user))
		return state_errf(e, HPQ_EPERM, "task %llu is %s's: only its owner and "
				  "administrators may read its output",
				  (unsigned long long)t->st.id, t->user);
	if (!*node_name) {
		if (!t->n_node_names)
			return state_errf(e, HPQ_ENOTFOUND, "task %llu has not run yet: no output",
					  (unsigned long long)t->st.id);
		node_name = t->node_names[0];
	}
	n = state_node_find(st, node_name);
	if (!n)
		return state_errf(e, HPQ_ENOTFOUND, "unknown node '%.64s'", node_name);
	if (!n->conn || n->conn->dead)
		return state_errf(e, HPQ_EUNAVAIL, "node %s is not connected: its agent holds "
				  "the output", n->name);

	r = xcalloc(1, sizeof(*r));
	r->client = c;
	r->agent = n->conn;
	server_ref(r->client);
	server_ref(r->agent);
	r->client_id = id;
	r->agent_id = LOGS_ID_BIT | ++lg->next_id;
	r->deadline = uv_now(c->d->loop) + LOGS_TIMEOUT_MS;
	dlist_add_tail(&lg->relays, &r->link);
	if (!uv_is_active((uv_handle_t *)&lg->timer))
		uv_timer_start(&lg->timer, on_timer, 1000, 1000);

	fwd.task_id = t->st.id;
	fwd.offset = m->offset;
	fwd.max = m->max && m->max < MAX_CHUNK ? m->max : MAX_CHUNK;
	env.id = r->agent_id;
	env.body_case = HPQ__ENVELOPE__BODY_LOG_REQUEST;
	env.log_request = &fwd;
	server_push(r->agent, &env);
	return 0;
}

bool logs_agent_reply(struct conn *agent, const Hpq__Envelope *env)
{
	struct logs *lg = agent->d->logs;

	if (!lg || !(env->id & LOGS_ID_BIT))
		return false;
	for (struct dlist *l = lg->relays.next; l != &lg->relays; l = l->next) {
		struct relay *r = container_of(l, struct relay, link);
		Hpq__Envelope out = *env;

		if (r->agent_id != env->id || r->agent != agent)
			continue;
		if (env->body_case == HPQ__ENVELOPE__BODY_LOG_CHUNK ||
		    env->body_case == HPQ__ENVELOPE__BODY_ERROR) {
			out.id = r->client_id;
			server_send(r->client, &out);
		} else {
			server_send_error(r->client, r->client_id, HPQ_EPROTO,
					  "the node's agent answered with something else");
		}
		relay_free(r);
		return true;
	}
	return true;    /* ours, but late: the client was already answered */
}

int logs_init(struct hpqd *d)
{
	struct logs *lg = xcalloc(1, sizeof(*lg));

	lg->d = d;
	dlist_init(&lg->relays);
	if (uv_timer_init(d->loop, &lg->timer) < 0) {
		free(lg);
		return HPQ_EINVAL;
	}
	lg->timer.data = lg;
	d->logs = lg;
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	free(h->data);
}

void logs_close(struct hpqd *d)
{
	struct logs *lg = d->logs;

	if (!lg)
		return;
	while (!dlist_empty(&lg->relays))
		relay_free(container_of(lg->relays.next, struct relay, link));
	d->logs = NULL;
	uv_close((uv_handle_t *)&lg->timer, on_closed);
}
