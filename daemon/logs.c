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

#include "agentlink.h"
#include "context.h"
#include "error.h"
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
	server_answered(r->client);
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

void logs_relay(struct logs *lg, struct conn *client, uint64_t id, uint64_t task_id,
		uint32_t attempt, struct conn *agent, uint64_t offset, uint32_t max)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__LogRequest fwd = HPQ__LOG_REQUEST__INIT;
	struct relay *r = xcalloc(1, sizeof(*r));

	r->client = client;
	r->agent = agent;
	server_awaits(r->client);
	server_ref(r->agent);
	r->client_id = id;
	r->agent_id = LOGS_ID_BIT | ++lg->next_id;
	r->deadline = uv_now(lg->d->loop) + LOGS_TIMEOUT_MS;
	dlist_add_tail(&lg->relays, &r->link);
	if (!uv_is_active((uv_handle_t *)&lg->timer))
		uv_timer_start(&lg->timer, on_timer, 1000, 1000);

	fwd.task_id = task_id;
	fwd.attempt = attempt;
	fwd.cluster_id = lg->d->cluster_id;
	fwd.offset = offset;
	fwd.max = max && max < MAX_CHUNK ? max : MAX_CHUNK;
	env.id = r->agent_id;
	env.body_case = HPQ__ENVELOPE__BODY_LOG_REQUEST;
	env.log_request = &fwd;
	agentlink_push(agent, &env);
}

bool logs_agent_reply(struct logs *lg, struct conn *agent, const Hpq__Envelope *env)
{
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
