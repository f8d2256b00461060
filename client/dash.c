/*
 * dash.c: shared pieces of the dashboard commands (dash.h).
 *
 * Following reads frames straight from the client's socket with poll():
 * the blocking client library returns after the one reply it waits for,
 * and whatever else arrived with it stays in its framer, which is why
 * this file looks there first.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "dash.h"
#include "error.h"
#include "escape.h"
#include "msg.h"
#include "output.h"

static json_t *json_ms(int64_t ms)
{
	char buf[OUTPUT_TIME_LEN];

	return ms > 0 ? json_string(output_time_iso(ms, buf, sizeof(buf))) : json_null();
}

static json_t *str(const char *s)
{
	return json_string(s ? s : "");
}

static json_t *state_counts(Hpq__StateCount *const *v, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, v[i]->name, json_integer(v[i]->count));
	return o;
}

/* A guarantee exceeds capacity in some resource: the pool is over-committed. */
static bool overcommitted(const Hpq__PoolStatus *p)
{
	const Hpq__Resources *g = p->guaranteed, *c = p->capacity;

	return g && c && (g->gpus > c->gpus || g->cpus > c->cpus || g->mem > c->mem);
}

/* The state store's health: degraded while hpqd cannot write its state
 * (a full or failing disk); an older hpqd sends no state: "ok". */
static json_t *store_json(const Hpq__StatusReply *s)
{
	json_t *o = json_object();
	const char *state = s->store_state && *s->store_state ? s->store_state : "ok";
	bool degraded = strcmp(state, "ok") != 0;
	bool known = s->store_state && *s->store_state && s->store_free_bytes <= INT64_MAX;

	json_object_set_new(o, "degraded", json_boolean(degraded));
	json_object_set_new(o, "state", json_string(state));
	json_object_set_new(o, "problem", degraded ? str(s->store_problem) : json_null());
	json_object_set_new(o, "free_bytes", known ? json_integer((json_int_t)s->store_free_bytes)
						   : json_null());
	json_object_set_new(o, "since", json_ms(s->store_degraded_since));
	json_object_set_new(o, "waiting_rows", json_integer((json_int_t)s->store_waiting_rows));
	return o;
}

/* The training plans that have not ended (hpq plan show has the rest). */
static json_t *plans_json(const Hpq__StatusReply *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->n_plans; i++) {
		const Hpq__Plan *p = s->plans[i];
		json_t *j = json_object();

		json_object_set_new(j, "name", str(p->name));
		json_object_set_new(j, "team", str(p->team));
		json_object_set_new(j, "pool", str(p->pool));
		json_object_set_new(j, "state", str(p->state));
		json_object_set_new(j, "nodes", json_integer(p->nodes));
		json_object_set_new(j, "next_change", json_ms(p->next_change));
		json_object_set_new(j, "gpu_hours_reserved", json_real(p->gpu_hours_reserved));
		json_array_append_new(a, j);
	}
	return a;
}

json_t *dash_status_json(const Hpq__StatusReply *s)
{
	json_t *o = json_object(), *pools = json_array(), *teams = json_array();
	json_t *classes = json_array(), *pol = json_object();

	for (size_t i = 0; i < s->n_pools; i++) {
		const Hpq__PoolStatus *p = s->pools[i];
		json_t *j = json_object();

		json_object_set_new(j, "name", str(p->name));
		json_object_set_new(j, "nodes", json_integer(p->nodes));
		json_object_set_new(j, "capacity", output_json_res(p->capacity));
		json_object_set_new(j, "used", output_json_res(p->used));
		json_object_set_new(j, "idle", output_json_res(p->idle));
		json_object_set_new(j, "free", output_json_res(p->free));
		json_object_set_new(j, "guaranteed", output_json_res(p->guaranteed));
		json_object_set_new(j, "overcommitted", json_boolean(overcommitted(p)));
		json_object_set_new(j, "health", state_counts(p->health, p->n_health));
		json_object_set_new(j, "service", state_counts(p->service, p->n_service));
		json_array_append_new(pools, j);
	}
	for (size_t i = 0; i < s->n_teams; i++) {
		const Hpq__TeamStatus *t = s->teams[i];
		json_t *j = json_object();
		bool unused = t->guarantee && t->used &&
			      (t->guarantee->gpus || t->guarantee->cpus) &&
			      !t->used->gpus && !t->used->cpus;

		json_object_set_new(j, "name", str(t->name));
		json_object_set_new(j, "pool", str(t->pool));
		json_object_set_new(j, "weight", json_integer(t->weight));
		json_object_set_new(j, "guarantee", output_json_res(t->guarantee));
		json_object_set_new(j, "used", output_json_res(t->used));
		json_object_set_new(j, "borrowed", output_json_res(t->borrowed));
		json_object_set_new(j, "lent", output_json_res(t->lent));
		json_object_set_new(j, "unused_guarantee", output_json_res(t->unused_guarantee));
		json_object_set_new(j, "running", json_integer(t->running));
		json_object_set_new(j, "pending", json_integer(t->pending));
		json_object_set_new(j, "preempted_1h", json_integer(t->preempted_1h));
		json_object_set_new(j, "oldest_pending_s", json_integer(t->oldest_pending_s));
		json_object_set_new(j, "oldest_pending_reason",
				    *t->oldest_pending_reason ? str(t->oldest_pending_reason)
							      : json_null());
		json_object_set_new(j, "longest_running_s", json_integer(t->longest_running_s));
		json_object_set_new(j, "guarantee_unused", json_boolean(unused));
		json_array_append_new(teams, j);
	}
	for (size_t i = 0; i < s->n_classes; i++) {
		const Hpq__ClassStatus *c = s->classes[i];
		json_t *j = json_object();

		json_object_set_new(j, "name", str(c->name));
		json_object_set_new(j, "weight", json_integer(c->weight));
		json_object_set_new(j, "preemptible", json_boolean(c->preemptible));
		json_object_set_new(j, "running", json_integer(c->running));
		json_object_set_new(j, "pending", json_integer(c->pending));
		json_array_append_new(classes, j);
	}
	if (s->policy) {
		json_object_set_new(pol, "idle_allocation", str(s->policy->idle));
		json_object_set_new(pol, "half_life_s", json_integer(s->policy->half_life_s));
		json_object_set_new(pol, "min_runtime_s", json_integer(s->policy->min_runtime_s));
		json_object_set_new(pol, "requeue_order",
				    json_string(s->policy->requeue_by_eviction ? "eviction"
									       : "submit"));
		json_object_set_new(pol, "grace_s", json_integer((json_int_t)s->policy->grace_s));
		json_object_set_new(pol, "max_grace_s",
				    json_integer((json_int_t)s->policy->max_grace_s));
	}
	json_object_set_new(o, "time", json_ms(s->time));
	json_object_set_new(o, "running", json_integer(s->running));
	json_object_set_new(o, "pending", json_integer(s->pending));
	json_object_set_new(o, "pools", pools);
	json_object_set_new(o, "teams", teams);
	json_object_set_new(o, "classes", classes);
	json_object_set_new(o, "policy", pol);
	json_object_set_new(o, "plans", plans_json(s));
	json_object_set_new(o, "cycles", json_integer((json_int_t)s->cycles));
	json_object_set_new(o, "node_checks", json_integer((json_int_t)s->node_checks));
	json_object_set_new(o, "repair_checks", json_integer((json_int_t)s->repair_checks));
	json_object_set_new(o, "insecure", json_boolean(s->insecure));
	json_object_set_new(o, "ca_hash", json_string(s->ca_hash ? s->ca_hash : ""));
	json_object_set_new(o, "munge", json_boolean(s->munge));
	json_object_set_new(o, "store", store_json(s));
	return o;
}

json_t *dash_event_json(const Hpq__Event *e)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", e->id ? json_integer((json_int_t)e->id) : json_null());
	json_object_set_new(o, "time", json_ms(e->time));
	json_object_set_new(o, "kind", str(e->kind));
	json_object_set_new(o, "task", e->task_id ? json_integer((json_int_t)e->task_id)
						  : json_null());
	json_object_set_new(o, "team", *e->team ? str(e->team) : json_null());
	json_object_set_new(o, "node", *e->node ? str(e->node) : json_null());
	json_object_set_new(o, "actor", str(e->actor));
	json_object_set_new(o, "message", str(e->message));
	return o;
}

/* The time column is output_time_local's "2024-05-01 14:00:03". */
#define EVENT_COLUMNS "%-19s  %-10s %-10s %-12s %-10s %s\n"

void dash_event_header(FILE *f)
{
	fprintf(f, EVENT_COLUMNS, "TIME", "KIND", "TASK", "NODE", "ACTOR", "MESSAGE");
}

void dash_event_text(FILE *f, const Hpq__Event *e)
{
	char when[OUTPUT_TIME_LEN], task[32] = "";
	char *kind = hpq_escape(e->kind), *node = hpq_escape(*e->node ? e->node : "-");
	char *actor = hpq_escape(e->actor), *msg = hpq_escape(e->message);

	if (e->task_id)
		snprintf(task, sizeof(task), "task %llu", (unsigned long long)e->task_id);
	fprintf(f, EVENT_COLUMNS, output_time_local(e->time, when, sizeof(when)), kind,
		*task ? task : "-", node, actor, msg);
	free(kind);
	free(node);
	free(actor);
	free(msg);
}

int dash_follow_next(struct hpq_client *c, uint64_t id, int timeout_ms, Hpq__Envelope **ret_env)
{
	uint8_t buf[65536];
	int64_t t0 = hpq_mono_ms();
	bool tried = false;

	for (;;) {
		const uint8_t *payload;
		size_t plen;
		ssize_t n;
		int r, wait = -1;
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

		while ((r = hpq_framer_next(&c->framer, &payload, &plen)) > 0) {
			Hpq__Envelope *env = hpq_msg_decode(payload, plen);

			if (!env) {
				snprintf(c->errbuf, sizeof(c->errbuf), "malformed message from hpqd");
				return HPQ_EPROTO;
			}
			if (env->id != id) {
				hpq_msg_free(env);
				continue;
			}
			if (env->body_case == HPQ__ENVELOPE__BODY_ERROR) {
				snprintf(c->errbuf, sizeof(c->errbuf), "%s", env->error->message);
				r = env->error->code < 0 ? env->error->code : HPQ_EPROTO;
				hpq_msg_free(env);
				return r;
			}
			*ret_env = env;
			return 1;
		}
		if (r < 0) {
			snprintf(c->errbuf, sizeof(c->errbuf), "message from hpqd is too large");
			return r;
		}
		if (timeout_ms >= 0) {
			int64_t spent = hpq_mono_ms() - t0;

			if (spent >= timeout_ms && tried)
				return 0;
			wait = spent >= timeout_ms ? 0 : (int)(timeout_ms - spent);
		}
		tried = true;
		r = poll(&pfd, 1, wait);
		if (r < 0 && errno == EINTR)
			return 0;   /* a signal: let the caller look (resize, quit) */
		if (r < 0) {
			r = -errno;
			snprintf(c->errbuf, sizeof(c->errbuf), "cannot wait for hpqd: %s",
				 strerror(errno));
			return r;
		}
		if (r == 0)
			continue;
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			r = hpq_framer_feed(&c->framer, buf, (size_t)n);
			if (r < 0) {
				snprintf(c->errbuf, sizeof(c->errbuf),
					 "message from hpqd is too large");
				return r;
			}
			continue;
		}
		if (n == 0) {
			snprintf(c->errbuf, sizeof(c->errbuf), "hpqd closed the connection");
			return HPQ_EUNAVAIL;
		}
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			continue;
		r = -errno;
		snprintf(c->errbuf, sizeof(c->errbuf), "cannot read from hpqd: %s", strerror(errno));
		return r;
	}
}
