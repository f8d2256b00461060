/*
 * status.c: `hpq status` (status.h).
 *
 * Cost: O(teams x pools) calls of sched_team_usage (counters the
 * dispatcher keeps anyway), O(nodes) for the pools, and one pass over the
 * ACTIVE tasks only: tasks are ordered by id and never leave a final
 * state, so d->status_first_active remembers where the first one that may
 * still be active is and every call starts there. With 100,000 pending
 * tasks the pass is a few milliseconds (tests/bench/bench_status.c).
 *
 * It lists the training plans that have not ended (plan.h), without their
 * segments: O(plans).
 *
 * The reply also carries the state store's health (store.h): whether
 * hpqd is degraded by a full or failing disk, and why, which clients show
 * first.
 *
 * The reply is built with heap copies of every string so that it owns its
 * memory and protobuf-c's free_unpacked releases it whole; metrics.c
 * keeps such a reply between two scrapes of the same instant.
 */
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "clock.h"
#include "context.h"
#include "error.h"
#include "events.h"
#include "msg.h"
#include "plan.h"
#include "status.h"
#include "store.h"
#include "xalloc.h"

static Hpq__Resources *res_new(struct hpq_res r)
{
	Hpq__Resources *pb = xcalloc(1, sizeof(*pb));

	hpq__resources__init(pb);
	hpq_res_to_pb(hpq_res_max(r, HPQ_RES_ZERO), pb);
	return pb;
}

static Hpq__StateCount *count_new(const char *name)
{
	Hpq__StateCount *sc = xcalloc(1, sizeof(*sc));

	hpq__state_count__init(sc);
	sc->name = xstrdup(name);
	return sc;
}

/* Adds one to the count called name in *v (a small list: a handful of words). */
static void count_word(Hpq__StateCount ***v, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i]->name, name)) {
			(*v)[i]->count++;
			return;
		}
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[*n] = count_new(name);
	(*v)[(*n)++]->count = 1;
}

/* Per (team, pool) and per class figures from the pass over the tasks. */
struct tp_acc {
	const struct task *oldest;  /* the oldest pending task, or NULL */
	int64_t oldest_submit_ms;   /* 0: nothing pending */
	int64_t earliest_start_ms;  /* 0: nothing running */
};
struct class_acc {
	uint32_t running, pending;
};

static void scan_tasks(struct hpqd *d, struct tp_acc *tp, uint32_t npools,
		       struct class_acc *cls, uint32_t nclasses, uint32_t *ret_running,
		       uint32_t *ret_pending)
{
	struct state *st = &d->state;
	uint32_t running = 0, pending = 0;
	size_t i = state_task_lower_bound(st, d->status_first_active);
	bool all_final = true;

	for (; i < st->ntasks; i++) {
		const struct task *t = st->tasks[i];
		struct tp_acc *a;

		if (task_state_final(t->state)) {
			if (all_final)
				d->status_first_active = t->st.id + 1;
			continue;
		}
		all_final = false;
		a = &tp[(size_t)t->st.team * npools + t->st.pool];
		if (t->state == TASK_PENDING) {
			pending++;
			if (!a->oldest_submit_ms || t->submit_ms < a->oldest_submit_ms) {
				a->oldest_submit_ms = t->submit_ms;
				a->oldest = t;
			}
			if (t->st.class_id < nclasses)
				cls[t->st.class_id].pending++;
		} else {
			running++;
			if (t->start_ms > 0 &&
			    (!a->earliest_start_ms || t->start_ms < a->earliest_start_ms))
				a->earliest_start_ms = t->start_ms;
			if (t->st.class_id < nclasses)
				cls[t->st.class_id].running++;
		}
	}
	*ret_running = running;
	*ret_pending = pending;
}

static bool team_has_quota(const struct team *t, uint32_t pool, const struct sched_quota **ret_q)
{
	for (size_t j = 0; j < t->nquotas; j++)
		if (t->quotas[j].pool == pool) {
			*ret_q = &t->quotas[j].q;
			return true;
		}
	return false;
}

static int64_t age_s(int64_t now_ms, int64_t ms)
{
	return ms > 0 && now_ms > ms ? (now_ms - ms) / 1000 : 0;
}

int status_build(struct hpqd *d, const char *pool, const char *team, int64_t now_ms,
		 Hpq__StatusReply **ret_reply, struct state_err *e)
{
	struct state *st = &d->state;
	const struct pool *only_pool = NULL;
	const struct team *only_team = NULL;
	uint32_t np = st->npools, nt = st->nteams, nc = st->nclasses;
	struct tp_acc *tp;
	struct class_acc *cls;
	uint32_t *preempted;
	struct hpq_res *pool_used, *pool_gsum, *pool_lendable, *pool_borrowed;
	const struct preempt_mark *marks;
	size_t nmarks;
	Hpq__StatusReply *rep;
	Hpq__PolicyStatus *pol;
	struct store_health sh;

	if (pool && *pool && !(only_pool = state_pool_find(st, pool)))
		return state_errf(e, HPQ_ENOTFOUND, "unknown pool '%.64s'", pool);
	if (team && *team && !(only_team = state_team_find(st, team)))
		return state_errf(e, HPQ_ENOTFOUND, "unknown team '%.64s'", team);

	tp = xcalloc((size_t)nt * np + 1, sizeof(*tp));
	cls = xcalloc((size_t)nc + 1, sizeof(*cls));
	preempted = xcalloc((size_t)nt * np + 1, sizeof(*preempted));
	pool_used = xcalloc((size_t)np + 1, sizeof(*pool_used));
	pool_gsum = xcalloc((size_t)np + 1, sizeof(*pool_gsum));
	pool_lendable = xcalloc((size_t)np + 1, sizeof(*pool_lendable));
	pool_borrowed = xcalloc((size_t)np + 1, sizeof(*pool_borrowed));

	rep = xcalloc(1, sizeof(*rep));
	hpq__status_reply__init(rep);
	rep->time = now_ms;
	rep->cycles = d->cycles;
	rep->node_checks = d->node_checks;
	rep->repair_checks = d->repair_checks;
	rep->insecure = d->cfg.insecure && *d->cfg.listen;
	rep->munge = !d->cfg.insecure && *d->cfg.listen;
	rep->ca_hash = xstrdup(d->ca ? ca_hash(d->ca) : "");
	store_health(d->store, &sh);
	rep->store_state = xstrdup(store_state_name(sh.state));
	rep->store_problem = xstrdup(sh.problem);
	rep->store_free_bytes = sh.free_bytes;
	rep->store_degraded_since = sh.since_ms;
	rep->store_waiting_rows = sh.waiting_rows;
	scan_tasks(d, tp, np, cls, nc, &rep->running, &rep->pending);
	marks = events_preemptions(d->events, now_ms - 3600 * 1000, &nmarks);
	for (size_t i = 0; i < nmarks; i++)
		if (marks[i].team < nt && marks[i].pool < np)
			preempted[(size_t)marks[i].team * np + marks[i].pool]++;

	/* Teams, and the pool sums that need every team (whatever the filter). */
	rep->teams = xcalloc((size_t)nt * np + 1, sizeof(*rep->teams));
	for (uint32_t ti = 0; ti < nt; ti++) {
		const struct team *t = st->teams[ti];

		if (!t)
			continue;
		for (uint32_t pi = 0; pi < np; pi++) {
			const struct sched_quota *q = NULL;
			bool quota = team_has_quota(t, pi, &q);
			struct sched_usage u;
			struct tp_acc *a = &tp[(size_t)ti * np + pi];
			uint32_t npre = preempted[(size_t)ti * np + pi];
			struct hpq_res unused;
			Hpq__TeamStatus *ts;

			if (sched_team_usage(st->sched, ti, pi, &u) < 0)
				continue;
			unused = hpq_res_sub_floor(u.guarantee, u.used);
			pool_used[pi] = hpq_res_add(pool_used[pi], u.used);
			pool_gsum[pi] = hpq_res_add(pool_gsum[pi], u.guarantee);
			pool_borrowed[pi] = hpq_res_add(pool_borrowed[pi], u.borrowed);
			if (quota && q->sharing != SCHED_DONT_LEND)
				pool_lendable[pi] = hpq_res_add(pool_lendable[pi],
					q->has_lend_limit ? hpq_res_min(unused, q->lend_limit)
							  : unused);
			if ((only_team && only_team != t) || (only_pool && only_pool->id != pi))
				continue;
			if (!quota && !u.running && !u.pending && !npre && hpq_res_is_zero(u.used))
				continue;
			ts = xcalloc(1, sizeof(*ts));
			hpq__team_status__init(ts);
			ts->name = xstrdup(t->name);
			ts->pool = xstrdup(st->pools[pi]->name);
			ts->weight = t->weight;
			ts->guarantee = res_new(u.guarantee);
			ts->used = res_new(u.used);
			ts->borrowed = res_new(u.borrowed);
			ts->lent = res_new(u.lent);
			ts->unused_guarantee = res_new(unused);
			ts->running = u.running;
			ts->pending = u.pending;
			ts->preempted_1h = npre;
			ts->oldest_pending_s = age_s(now_ms, a->oldest_submit_ms);
			/* One reason per row (O(nodes of the pool) each), not per task. */
			ts->oldest_pending_reason = xstrdup(a->oldest ? state_task_reason(st, a->oldest)
								       : "");
			ts->longest_running_s = age_s(now_ms, a->earliest_start_ms);
			rep->teams[rep->n_teams++] = ts;
		}
	}

	rep->pools = xcalloc((size_t)np + 1, sizeof(*rep->pools));
	for (uint32_t pi = 0; pi < np; pi++) {
		Hpq__PoolStatus *ps;
		struct hpq_res cap = HPQ_RES_ZERO, fr = HPQ_RES_ZERO, idle;

		if (!st->pools[pi] || (only_pool && only_pool->id != pi))
			continue;
		sched_pool_capacity(st->sched, pi, &cap, &fr);
		/* docs/design.md §4: the unguaranteed part plus every team's lendable unused
		 * guarantee, less what borrowers hold of it now, and never more than
		 * is free on the nodes: what a borrower could still get. */
		idle = hpq_res_add(hpq_res_sub_floor(cap, pool_gsum[pi]), pool_lendable[pi]);
		idle = hpq_res_min(hpq_res_sub_floor(idle, pool_borrowed[pi]), fr);
		ps = xcalloc(1, sizeof(*ps));
		hpq__pool_status__init(ps);
		ps->name = xstrdup(st->pools[pi]->name);
		ps->capacity = res_new(cap);
		ps->used = res_new(pool_used[pi]);
		ps->idle = res_new(idle);
		ps->free = res_new(fr);
		ps->guaranteed = res_new(pool_gsum[pi]);
		for (uint32_t ni = 0; ni < st->nnodes; ni++) {
			const struct node *n = st->nodes[ni];

			if (!n || n->pool != pi)
				continue;
			ps->nodes++;
			count_word(&ps->health, &ps->n_health, n->health);
			count_word(&ps->service, &ps->n_service, n->service);
		}
		rep->pools[rep->n_pools++] = ps;
	}

	rep->classes = xcalloc((size_t)nc + 1, sizeof(*rep->classes));
	for (uint32_t ci = 0; ci < nc; ci++) {
		const struct prio_class *pc = st->classes[ci];
		Hpq__ClassStatus *cs;

		if (!pc)
			continue;
		cs = xcalloc(1, sizeof(*cs));
		hpq__class_status__init(cs);
		cs->name = xstrdup(pc->name);
		cs->weight = pc->weight;
		cs->preemptible = pc->preemptible;
		cs->running = cls[ci].running;
		cs->pending = cls[ci].pending;
		rep->classes[rep->n_classes++] = cs;
	}

	/* plans that have not ended: their state and when it next changes */
	rep->plans = xcalloc(st->plans->n + 1, sizeof(*rep->plans));
	for (size_t i = 0; i < st->plans->n; i++) {
		const struct plan *p = st->plans->v[i];
		Hpq__Plan *pb;

		if (p->state == PLAN_COMPLETED || p->state == PLAN_CANCELLED ||
		    (only_team && strcmp(only_team->name, p->team)) ||
		    (only_pool && strcmp(only_pool->name, p->pool)))
			continue;
		pb = xcalloc(1, sizeof(*pb));
		hpq__plan__init(pb);
		pb->name = xstrdup(p->name);
		pb->team = xstrdup(p->team);
		pb->pool = xstrdup(p->pool);
		pb->state = xstrdup(plan_state_name(p->state));
		pb->created_by = xstrdup(p->created_by);
		pb->nodes = p->nnodes;
		pb->duration_s = p->duration_s;
		pb->created = p->created_ms;
		pb->gpu_hours_reserved = plan_gpu_hours_reserved(p);
		pb->next_change = plan_next_change(p, now_ms);
		rep->plans[rep->n_plans++] = pb;
	}

	pol = xcalloc(1, sizeof(*pol));
	hpq__policy_status__init(pol);
	pol->idle = xstrdup(st->policy.sched.idle == SCHED_IDLE_FCFS ? "fcfs" : "fair-share");
	pol->half_life_s = st->policy.sched.half_life_ms / 1000;
	pol->min_runtime_s = st->policy.sched.min_runtime_ms / 1000;
	pol->requeue_by_eviction = st->policy.sched.requeue_by_eviction;
	pol->grace_s = st->policy.grace_s;
	pol->max_grace_s = st->policy.max_grace_s;
	rep->policy = pol;

	free(tp);
	free(cls);
	free(preempted);
	free(pool_used);
	free(pool_gsum);
	free(pool_lendable);
	free(pool_borrowed);
	*ret_reply = rep;
	return 0;
}
