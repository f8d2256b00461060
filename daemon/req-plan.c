/*
 * req-plan.c: the training-plan requests (request.h, plan.h): search,
 * create, list (and show) and cancel.
 *
 * A search answers at once: its offerings live in memory only, for
 * [plans] offer_lifetime, and a daemon restart forgets them (a create then
 * asks for a new search). Create and cancel go through the model, which
 * checks rights and the calendar before touching anything, and answer
 * once committed.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "context.h"
#include "error.h"
#include "plan.h"
#include "request.h"
#include "server.h"
#include "xalloc.h"

/* A segment on the wire; names point into the state. */
static void segment_pb(const struct state *st, Hpq__PlanSegment *pb, int64_t start, int64_t end,
		       uint32_t n, const uint32_t *ids, char **names)
{
	hpq__plan_segment__init(pb);
	pb->start = start;
	pb->end = end;
	pb->nodes = n;
	pb->n_node_names = n;
	pb->node_names = xcalloc(n ? n : 1, sizeof(char *));
	for (uint32_t k = 0; k < n; k++)
		pb->node_names[k] = ids ? st->nodes[ids[k]]->name : names[k];
}

static void segments_free(Hpq__PlanSegment *segs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(segs[i].node_names);
}

int req_plan_search(struct req *q)
{
	const Hpq__PlanSearchRequest *m = q->env->plan_search;
	struct state *st = &q->d->state;
	struct plan_query pq = {
		.pool = m->pool, .team = m->team, .nodes = m->nodes, .duration_s = m->duration_s,
		.after = m->after, .before = m->before, .max_segments = m->max_segments,
		.min_segment_s = m->min_segment_s,
	};
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__PlanSearchReply rep = HPQ__PLAN_SEARCH_REPLY__INIT;
	const struct plan_offer *offers;
	Hpq__PlanOffer *pbs, **ptrs;
	Hpq__PlanSegment *segs, **sptrs;
	uint32_t reservable = 0, pool_nodes = 0;
	size_t k = 0;
	int n;

	n = plans_search(st, &pq, hpq_now_ms(), &offers, &reservable, &pool_nodes, q->e);
	if (n < 0)
		return n;
	pbs = xcalloc((size_t)n + 1, sizeof(*pbs));
	ptrs = xcalloc((size_t)n + 1, sizeof(*ptrs));
	segs = xcalloc((size_t)n * CALENDAR_MAX_SEGMENTS + 1, sizeof(*segs));
	sptrs = xcalloc((size_t)n * CALENDAR_MAX_SEGMENTS + 1, sizeof(*sptrs));
	for (int i = 0; i < n; i++) {
		const struct plan_offer *o = &offers[i];
		Hpq__PlanOffer *pb = &pbs[i];

		hpq__plan_offer__init(pb);
		pb->id = (char *)o->id;
		pb->expires = o->expires_ms;
		pb->finish = o->o.finish;
		pb->breaks = o->o.nsegments - 1;
		pb->n_segments = o->o.nsegments;
		pb->segments = &sptrs[k];
		for (uint32_t s = 0; s < o->o.nsegments; s++, k++) {
			const struct calendar_segment *cs = &o->o.segments[s];

			segment_pb(st, &segs[k], cs->start, cs->end, cs->nnodes, cs->nodes, NULL);
			sptrs[k] = &segs[k];
		}
		ptrs[i] = pb;
	}
	rep.n_offers = (size_t)n;
	rep.offers = ptrs;
	rep.reservable = reservable;
	rep.pool_nodes = pool_nodes;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_PLAN_SEARCH_REPLY;
	env.plan_search_reply = &rep;
	server_send(q->c, &env);
	segments_free(segs, k);
	free(segs);
	free(sptrs);
	free(pbs);
	free(ptrs);
	return 0;
}

/* Fills pb from p; free with plan_pb_free. */
static void plan_pb(const struct state *st, const struct plan *p, Hpq__Plan *pb, int64_t now)
{
	hpq__plan__init(pb);
	pb->name = p->name;
	pb->team = p->team;
	pb->pool = p->pool;
	pb->state = (char *)plan_state_name(p->state);
	pb->nodes = p->nnodes;
	pb->duration_s = p->duration_s;
	pb->created = p->created_ms;
	pb->created_by = p->created_by;
	pb->gpu_hours_reserved = plan_gpu_hours_reserved(p);
	pb->next_change = plan_next_change(p, now);
	pb->ended = p->ended_ms;
	pb->n_segments = p->nsegments;
	pb->segments = xcalloc(p->nsegments, sizeof(*pb->segments));
	for (uint32_t s = 0; s < p->nsegments; s++) {
		pb->segments[s] = xmalloc(sizeof(Hpq__PlanSegment));
		segment_pb(st, pb->segments[s], p->seg[s].start_ms, p->seg[s].end_ms,
			   p->seg[s].nnodes, NULL, p->seg[s].nodes);
	}
}

static void plan_pb_free(Hpq__Plan *pb)
{
	for (size_t s = 0; s < pb->n_segments; s++) {
		segments_free(pb->segments[s], 1);
		free(pb->segments[s]);
	}
	free(pb->segments);
}

int req_plan_create(struct req *q)
{
	const Hpq__PlanCreateRequest *m = q->env->plan_create;
	struct state *st = &q->d->state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Plan pb;
	struct plan *p;
	int64_t now = hpq_now_ms();
	int rc;

	rc = plans_create(st, &q->c->actor, m->offer, m->team, m->name, now, &p, q->e);
	if (rc < 0)
		return rc;
	plan_pb(st, p, &pb, now);
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_PLAN;
	env.plan = &pb;
	server_reply_after_commit(q->c, &env);
	plan_pb_free(&pb);
	return 0;
}

int req_plan_list(struct req *q)
{
	const Hpq__PlanListRequest *m = q->env->plan_list;
	struct state *st = &q->d->state;
	struct plans *ps = st->plans;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__PlanListReply rep = HPQ__PLAN_LIST_REPLY__INIT;
	Hpq__Plan *pbs = xcalloc(ps->n + 1, sizeof(*pbs));
	Hpq__Plan **ptrs = xcalloc(ps->n + 1, sizeof(*ptrs));
	int64_t now = hpq_now_ms();
	size_t n = 0;

	if (*m->name && !plans_find(st, m->name)) {
		free(pbs);
		free(ptrs);
		return state_errf(q->e, HPQ_ENOTFOUND, "unknown plan '%.64s'", m->name);
	}
	if (*m->team && !state_team_find(st, m->team)) {
		free(pbs);
		free(ptrs);
		return state_errf(q->e, HPQ_ENOTFOUND, "unknown team '%.64s'", m->team);
	}
	for (size_t i = 0; i < ps->n; i++) {
		const struct plan *p = ps->v[i];
		bool ended = p->state == PLAN_COMPLETED || p->state == PLAN_CANCELLED;

		if (*m->name ? strcmp(m->name, p->name) != 0
			     : (ended && !m->all) || (*m->team && strcmp(m->team, p->team)))
			continue;
		plan_pb(st, p, &pbs[n], now);
		ptrs[n] = &pbs[n];
		n++;
	}
	rep.n_plans = n;
	rep.plans = ptrs;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_PLAN_LIST_REPLY;
	env.plan_list_reply = &rep;
	server_send(q->c, &env);
	for (size_t i = 0; i < n; i++)
		plan_pb_free(&pbs[i]);
	free(pbs);
	free(ptrs);
	return 0;
}

int req_plan_cancel(struct req *q)
{
	const Hpq__PlanCancelRequest *m = q->env->plan_cancel;

	return req_ok_after_commit(q, plans_cancel(&q->d->state, &q->c->actor, m->name,
						   hpq_now_ms(), q->e));
}
