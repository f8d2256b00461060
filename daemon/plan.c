/*
 * plan.c: training plans, the model (plan.h, docs/plans.md): search with
 * offerings, create, cancel, the state that follows the clock, and the
 * rows and events each change records; and the plans' tasks and nodes:
 * which tasks may be in the dispatcher, in which pool, and which nodes a
 * segment holds in its plan's own pool.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "parse.h"
#include "plan.h"
#include "rights.h"
#include "state-internal.h"
#include "store.h"
#include "xalloc.h"

static void tasks_follow(struct state *st, struct plan *p, int64_t now);

#define MAX_OFFERS_KEPT 256
#define OFFERS_PER_SEARCH 5

static const char *const state_names[] = {
	[PLAN_SCHEDULED] = "scheduled",
	[PLAN_ACTIVE] = "active",
	[PLAN_BETWEEN] = "between-segments",
	[PLAN_COMPLETED] = "completed",
	[PLAN_CANCELLED] = "cancelled",
};

const char *plan_state_name(enum plan_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

static void plan_on_requeued(void *arg, struct task *t);

void plans_init(struct state *st)
{
	st->plans = xcalloc(1, sizeof(*st->plans));
	st->plans->next_id = 1;
	st->plans->next_offer = 1;
	state_observe(st, &(struct state_observer){ .task_requeued = plan_on_requeued, .arg = st });
}

static void plan_free(struct plan *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->nsegments; i++) {
		for (uint32_t k = 0; k < p->seg[i].nnodes; k++)
			free(p->seg[i].nodes[k]);
		free(p->seg[i].nodes);
	}
	free(p->name);
	free(p->team);
	free(p->pool);
	free(p->created_by);
	free(p);
}

static void offer_free(struct plan_offer *o)
{
	for (uint32_t k = 0; k < o->o.nsegments; k++)
		free(o->o.segments[k].nodes);
	memset(o, 0, sizeof(*o));
}

void plans_release(struct state *st)
{
	struct plans *ps = st->plans;

	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++)
		plan_free(ps->v[i]);
	for (size_t i = 0; i < ps->noffers; i++)
		offer_free(&ps->offers[i]);
	free(ps->offers);
	free(ps->v);
	free(ps);
	st->plans = NULL;
}

void plans_configure(struct state *st, const struct config *cfg)
{
	st->plans->cfg = cfg;
}

struct plan *plans_find(const struct state *st, const char *name)
{
	for (size_t i = 0; i < st->plans->n; i++)
		if (!strcmp(st->plans->v[i]->name, name))
			return st->plans->v[i];
	return NULL;
}

static bool plan_ended(const struct plan *p)
{
	return p->state == PLAN_COMPLETED || p->state == PLAN_CANCELLED;
}

/* ---------------------------------------------------------------- rows, events */

/* Its segments as the store keeps them: "START-END@NODE,NODE;..." */
static char *segments_text(const struct plan *p)
{
	size_t len = 1, off = 0;
	char *s;

	for (uint32_t i = 0; i < p->nsegments; i++) {
		len += 48;
		for (uint32_t k = 0; k < p->seg[i].nnodes; k++)
			len += strlen(p->seg[i].nodes[k]) + 1;
	}
	s = xmalloc(len);
	s[0] = 0;
	for (uint32_t i = 0; i < p->nsegments; i++) {
		off += (size_t)snprintf(s + off, len - off, "%s%lld-%lld@", i ? ";" : "",
					(long long)p->seg[i].start_ms, (long long)p->seg[i].end_ms);
		for (uint32_t k = 0; k < p->seg[i].nnodes; k++)
			off += (size_t)snprintf(s + off, len - off, "%s%s", k ? "," : "",
						p->seg[i].nodes[k]);
	}
	return s;
}

static void plan_put(struct state *st, const struct plan *p)
{
	char *segs = segments_text(p);
	struct store_plan_row row = {
		.id = p->id, .name = p->name, .team = p->team, .pool = p->pool,
		.state = plan_state_name(p->state), .segments = segs, .created_by = p->created_by,
		.nodes = p->nnodes, .gpus_per_node = p->gpus_per_node,
		.duration_s = p->duration_s, .created_ms = p->created_ms, .ended_ms = p->ended_ms,
	};

	store_plan_put(st->store, &row);
	free(segs);
}

/* A `plan` event of p's team, told to the observers like every event. */
static void plan_event(struct state *st, const struct plan *p, const char *actor, const char *fmt,
		       ...) __attribute__((format(printf, 4, 5)));

static void plan_event(struct state *st, const struct plan *p, const char *actor, const char *fmt,
		       ...)
{
	struct store_event ev = { 0 };
	char msg[512], body[440];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "plan %s: %s", p->name, body);
	ev.time_ms = hpq_now_ms();
	ev.kind = "plan";
	ev.node = "";
	ev.team = p->team;
	ev.actor = actor ? actor : "hpqd";
	ev.message = msg;
	store_event_add(st->store, &ev);
	for (size_t i = 0; i < st->nobservers; i++)
		if (st->observers[i].event)
			st->observers[i].event(st->observers[i].arg, &ev, NULL);
}

/* ---------------------------------------------------------------- loading */

static int parse_segments(struct plan *p, const char *text)
{
	const char *s = text;

	while (*s && p->nsegments < CALENDAR_MAX_SEGMENTS) {
		struct plan_segment *sg = &p->seg[p->nsegments];
		char *end;
		const char *stop;
		size_t n = 1;

		sg->start_ms = strtoll(s, &end, 10);
		if (*end != '-')
			return -1;
		sg->end_ms = strtoll(end + 1, &end, 10);
		if (*end != '@')
			return -1;
		s = end + 1;
		stop = strchr(s, ';');
		if (!stop)
			stop = s + strlen(s);
		for (const char *c = s; c < stop; c++)
			n += *c == ',';
		sg->nodes = xcalloc(n, sizeof(*sg->nodes));
		while (s < stop) {
			const char *comma = memchr(s, ',', (size_t)(stop - s));

			if (!comma)
				comma = stop;
			sg->nodes[sg->nnodes++] = xstrndup(s, (size_t)(comma - s));
			s = comma < stop ? comma + 1 : stop;
		}
		p->nsegments++;
		if (*s == ';')
			s++;
	}
	return *s ? -1 : 0;
}

static void plans_add(struct plans *ps, struct plan *p)
{
	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? 2 * ps->cap : 16;
		ps->v = xreallocarray(ps->v, ps->cap, sizeof(*ps->v));
	}
	ps->v[ps->n++] = p;
	if (p->id >= ps->next_id)
		ps->next_id = p->id + 1;
}

void plans_load_row(void *arg, const struct store_plan_row *row)
{
	struct state *st = arg;
	struct plan *p = xcalloc(1, sizeof(*p));

	p->id = row->id;
	p->name = xstrdup(row->name);
	p->team = xstrdup(row->team);
	p->pool = xstrdup(row->pool);
	p->created_by = xstrdup(row->created_by);
	p->nnodes = row->nodes;
	p->gpus_per_node = row->gpus_per_node;
	p->duration_s = row->duration_s;
	p->created_ms = row->created_ms;
	p->ended_ms = row->ended_ms;
	p->state = PLAN_SCHEDULED;
	for (int s = 0; s <= PLAN_CANCELLED; s++)
		if (!strcmp(row->state, state_names[s]))
			p->state = (enum plan_state)s;
	if (parse_segments(p, row->segments) < 0 || p->nsegments == 0) {
		log_warn("plan %s: unreadable segments '%.64s': left out", row->name,
			    row->segments);
		plan_free(p);
		return;
	}
	plans_add(st->plans, p);
	/* a first cycle records what changed while hpqd was down */
	st->dirty = true;
}

/* ---------------------------------------------------------------- the calendar */

/* What one node of pool offers: GPUs if the pool has any, else CPUs. */
static int64_t pool_unit(const struct state *st, uint32_t pool, bool gpus)
{
	int64_t most = 0;

	for (uint32_t i = 0; i < st->nnodes; i++) {
		const struct node *n = st->nodes[i];
		int64_t v;

		if (!n || n->pool != pool)
			continue;
		v = gpus ? n->capacity.gpus : n->capacity.cpus;
		if (v > most)
			most = v;
	}
	return most;
}

static const char *node_name(void *ctx, uint32_t id)
{
	const struct state *st = ctx;

	return id < st->nnodes && st->nodes[id] ? st->nodes[id]->name : "(gone)";
}

/*
 * The calendar of pool: its nodes, the teams' guarantees in whole nodes
 * (rounded up, so a guarantee is never shortchanged), and the segments of
 * the plans that still hold capacity (skip: one plan left out, 0 for none).
 */
static struct calendar *build_calendar(const struct state *st, uint32_t pool, uint32_t *ret_gpn)
{
	struct calendar *c = calendar_new();
	int64_t gpn = pool_unit(st, pool, true), cpn = pool_unit(st, pool, false);
	const struct config *cfg = st->plans->cfg;
	const char *pname = st->pools[pool]->name;

	calendar_set_namer(c, node_name, (void *)st);

	for (uint32_t i = 0; i < st->nnodes; i++)
		if (st->nodes[i] && st->nodes[i]->pool == pool)
			calendar_node_add(c, st->nodes[i]->id);
	calendar_set_reservable(c, cfg ? config_plans_reservable(cfg, pname, calendar_nodes(c))
				: 0);
	for (uint32_t t = 0; t < st->nteams; t++) {
		const struct team *tm = st->teams[t];

		if (!tm)
			continue;
		for (size_t k = 0; k < tm->nquotas; k++) {
			const struct hpq_res *g = &tm->quotas[k].q.guarantee;
			int64_t need = 0;

			if (tm->quotas[k].pool != pool)
				continue;
			if (gpn > 0)
				need = (g->gpus + gpn - 1) / gpn;
			else if (cpn > 0)
				need = (g->cpus + cpn - 1) / cpn;
			calendar_set_guarantee(c, tm->id, (uint32_t)(need > UINT32_MAX ? UINT32_MAX
								     : need));
		}
	}
	for (size_t i = 0; i < st->plans->n; i++) {
		const struct plan *p = st->plans->v[i];
		struct calendar_segment segs[CALENDAR_MAX_SEGMENTS];
		uint32_t ids[CALENDAR_MAX_SEGMENTS][STATE_MAX_NODES_PER_TASK];
		const struct team *tm = state_team_find(st, p->team);
		uint32_t nsegs = 0;

		if (plan_ended(p) || strcmp(p->pool, pname))
			continue;
		for (uint32_t s = 0; s < p->nsegments; s++) {
			struct calendar_segment *sg = &segs[nsegs];

			sg->start = p->seg[s].start_ms;
			sg->end = p->seg[s].end_ms;
			sg->nodes = ids[nsegs];
			sg->nnodes = 0;
			/* nodes that left the pool hold nothing */
			for (uint32_t k = 0; k < p->seg[s].nnodes; k++) {
				const struct node *n = state_node_find(st, p->seg[s].nodes[k]);

				if (n && n->pool == pool && sg->nnodes < STATE_MAX_NODES_PER_TASK)
					ids[nsegs][sg->nnodes++] = n->id;
			}
			if (sg->nnodes)
				nsegs++;
		}
		if (nsegs)
			calendar_reserve(c, p->id, tm ? tm->id : st->nteams, segs, nsegs, 1, NULL,
					 0);
	}
	if (ret_gpn)
		*ret_gpn = (uint32_t)(gpn > 0 ? gpn : 0);
	return c;
}

/* ---------------------------------------------------------------- search */

static void offers_expire(struct plans *ps, int64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < ps->noffers; i++) {
		if (ps->offers[i].expires_ms <= now || ps->noffers - i > MAX_OFFERS_KEPT - 5)
			offer_free(&ps->offers[i]);
		else
			ps->offers[k++] = ps->offers[i];
	}
	ps->noffers = k;
}

int plans_search(struct state *st, const struct plan_query *q, int64_t now,
		 const struct plan_offer **ret, uint32_t *ret_reservable, uint32_t *ret_pool_nodes,
		 struct state_err *e)
{
	struct plans *ps = st->plans;
	const struct config *cfg = ps->cfg;
	uint64_t max_len = cfg ? cfg->plans.max_length_s : 0;
	uint64_t lifetime = cfg ? cfg->plans.offer_lifetime_s : 600;
	struct pool *pool = state_pool_find(st, q->pool);
	const struct team *tm = NULL;
	struct calendar_query cq = { 0 };
	struct calendar_offer *found = NULL;
	struct calendar *c;
	char err[256], when[32];
	int n;

	*ret = NULL;
	if (!pool)
		return state_errf(e, HPQ_ENOTFOUND, "unknown pool '%.64s'", q->pool);
	if (q->team && *q->team && !(tm = state_team_find(st, q->team)))
		return state_errf(e, HPQ_ENOTFOUND, "unknown team '%.64s'", q->team);
	if (q->nodes == 0 || q->nodes > STATE_MAX_NODES_PER_TASK)
		return state_errf(e, HPQ_EINVAL, "a plan has 1 to %d nodes, not %u",
				  STATE_MAX_NODES_PER_TASK, q->nodes);
	if (q->duration_s == 0)
		return state_errf(e, HPQ_EINVAL, "a plan's duration must be positive");
	if (q->duration_s > max_len)
		return state_errf(e, HPQ_EINVAL,
				  "a plan of %s is longer than [plans] max_length (%s)",
				  hpq_format_duration(q->duration_s, err, 32),
				  hpq_format_duration(max_len, when, sizeof(when)));
	if (q->max_segments > CALENDAR_MAX_SEGMENTS)
		return state_errf(e, HPQ_EINVAL, "a plan has 1 to %d segments, not %u",
				  CALENDAR_MAX_SEGMENTS, q->max_segments);
	if (q->min_segment_s > q->duration_s)
		return state_errf(e, HPQ_EINVAL,
				  "the minimum segment is longer than the whole duration");
	/* a second of slack for the client's clock and the trip */
	if (q->after && q->after < now - 1000)
		return state_errf(e, HPQ_EINVAL, "--after %s is in the past",
				  hpq_utc_text(q->after, when, sizeof(when)));
	if (q->before && q->before <= now)
		return state_errf(e, HPQ_EINVAL, "--before %s is in the past",
				  hpq_utc_text(q->before, when, sizeof(when)));

	c = build_calendar(st, pool->id, NULL);
	if (ret_pool_nodes)
		*ret_pool_nodes = calendar_nodes(c);
	if (ret_reservable)
		*ret_reservable = cfg ? config_plans_reservable(cfg, pool->name, calendar_nodes(c))
				      : 0;
	if (!cfg || config_plans_reservable(cfg, pool->name, calendar_nodes(c)) == 0) {
		calendar_free(c);
		return state_errf(e, HPQ_EINVAL,
				  "pool '%s' has no reservable nodes: an administrator sets "
				  "[plans] reservable in hpqd.conf", pool->name);
	}
	cq.team = tm ? tm->id : st->nteams;
	cq.nnodes = q->nodes;
	cq.duration = (int64_t)q->duration_s * 1000;
	cq.after = q->after > now ? q->after : now;
	cq.before = q->before ? q->before : CALENDAR_FOREVER;
	cq.max_segments = q->max_segments ? q->max_segments : 1;
	cq.min_segment = (int64_t)q->min_segment_s * 1000;
	/* by default no segment is shorter than a tenth of the run: a split
	 * into scraps would finish sooner on paper and waste the breaks */
	if (!q->min_segment_s && cq.max_segments > 1)
		cq.min_segment = cq.duration / 10;
	cq.max_offers = OFFERS_PER_SEARCH;
	n = calendar_search(c, &cq, &found, err, sizeof(err));
	calendar_free(c);
	if (n < 0)
		return state_errf(e, n, "%s", err);
	offers_expire(ps, now);
	for (int i = 0; i < n; i++) {
		struct plan_offer *o;

		ps->offers = xreallocarray(ps->offers, ps->noffers + 1, sizeof(*ps->offers));
		o = &ps->offers[ps->noffers++];
		memset(o, 0, sizeof(*o));
		snprintf(o->id, sizeof(o->id), "o%llu", (unsigned long long)ps->next_offer++);
		o->expires_ms = now + (int64_t)lifetime * 1000;
		o->pool = pool->id;
		o->duration_s = q->duration_s;
		o->o = found[i];
	}
	/* the offers own the node arrays now */
	free(found);
	*ret = n ? &ps->offers[ps->noffers - (size_t)n] : NULL;
	return n;
}

/* ---------------------------------------------------------------- create, cancel */

static struct plan_offer *offer_find(struct plans *ps, const char *id)
{
	for (size_t i = 0; i < ps->noffers; i++)
		if (!strcmp(ps->offers[i].id, id))
			return &ps->offers[i];
	return NULL;
}

int plans_create(struct state *st, const struct actor *who, const char *offer_id,
		 const char *team, const char *name, int64_t now, struct plan **ret,
		 struct state_err *e)
{
	struct plans *ps = st->plans;
	struct plan_offer *o = offer_find(ps, offer_id);
	const struct team *tm = state_team_find(st, team);
	struct calendar *c;
	struct plan *p;
	char err[256], a[32], b[32];
	uint32_t gpn;
	int rc;

	*ret = NULL;
	if (!tm)
		return state_errf(e, HPQ_ENOTFOUND, "unknown team '%.64s'", team);
	if (!who->admin && !team_is_admin(tm, who))
		return state_errf(e, HPQ_EPERM,
				  "only team admins of %s or cluster administrators can make its "
				  "plans", tm->name);
	if (hpq_check_name(name) < 0)
		return state_errf(e, HPQ_EINVAL,
				  "invalid plan name '%.64s': use letters, digits, '.', '_', '-'",
				  name);
	if (plans_find(st, name))
		return state_errf(e, HPQ_EEXIST, "a plan named '%.64s' exists", name);
	if (!o)
		return state_errf(e, HPQ_ENOTFOUND,
				  "unknown offering '%.32s': offerings last [plans] offer_lifetime; "
				  "search again", offer_id);
	if (o->expires_ms <= now)
		return state_errf(e, HPQ_ESTATE, "offering %s expired at %s: search again", o->id,
				  hpq_utc_text(o->expires_ms, a, sizeof(a)));
	if (o->o.segments[o->o.nsegments - 1].end <= now)
		return state_errf(e, HPQ_EINVAL, "offering %s lies in the past: search again",
				  o->id);
	if (o->pool >= st->npools || !st->pools[o->pool])
		return state_errf(e, HPQ_ESTATE, "offering %s: its pool is gone", o->id);
	/* the snapshot may be stale: check it against the calendar as it is now */
	c = build_calendar(st, o->pool, &gpn);
	rc = calendar_reserve(c, ps->next_id, tm->id, o->o.segments, o->o.nsegments, 0, err,
			      sizeof(err));
	calendar_free(c);
	if (rc < 0)
		return state_errf(e, HPQ_EBUSY,
				  "offering %s is stale: the capacity it offered is no longer free "
				  "(%s); search again", o->id, err);

	p = xcalloc(1, sizeof(*p));
	p->id = ps->next_id;
	p->name = xstrdup(name);
	p->team = xstrdup(tm->name);
	p->pool = xstrdup(st->pools[o->pool]->name);
	p->created_by = xstrdup(who->user ? who->user : "");
	p->nnodes = o->o.segments[0].nnodes;
	p->gpus_per_node = gpn;
	p->duration_s = o->duration_s;
	p->created_ms = now;
	p->nsegments = o->o.nsegments;
	for (uint32_t s = 0; s < p->nsegments; s++) {
		const struct calendar_segment *cs = &o->o.segments[s];
		struct plan_segment *sg = &p->seg[s];

		sg->start_ms = cs->start;
		sg->end_ms = cs->end;
		sg->nnodes = cs->nnodes;
		sg->nodes = xcalloc(cs->nnodes, sizeof(*sg->nodes));
		for (uint32_t k = 0; k < cs->nnodes; k++)
			sg->nodes[k] = xstrdup(st->nodes[cs->nodes[k]]->name);
	}
	plans_add(ps, p);
	/* an offering is used once */
	offer_free(o);
	*o = ps->offers[--ps->noffers];
	plan_put(st, p);
	plan_event(st, p, who->user, "scheduled for team %s: %u nodes of pool %s in %u segment%s, "
		   "%s to %s", p->team, p->nnodes, p->pool, p->nsegments,
		   p->nsegments == 1 ? "" : "s", hpq_utc_text(p->seg[0].start_ms, a, sizeof(a)),
		   hpq_utc_text(p->seg[p->nsegments - 1].end_ms, b, sizeof(b)));
	plans_advance(st, now);
	st->dirty = true;            /* the dispatcher wakes up for its segments */
	*ret = p;
	return 0;
}

int plans_cancel(struct state *st, const struct actor *who, const char *name, int64_t now,
		 struct state_err *e)
{
	struct plan *p = plans_find(st, name);
	const struct team *tm;

	if (!p)
		return state_errf(e, HPQ_ENOTFOUND, "unknown plan '%.64s'", name);
	tm = state_team_find(st, p->team);
	if (!who->admin && !team_is_admin(tm, who))
		return state_errf(e, HPQ_EPERM,
				  "only team admins of %s or cluster administrators can cancel its "
				  "plans", p->team);
	if (plan_ended(p))
		return state_errf(e, HPQ_ESTATE, "plan %s is already %s", p->name,
				  plan_state_name(p->state));
	p->state = PLAN_CANCELLED;
	p->ended_ms = now;
	p->open = false;
	plan_put(st, p);
	plan_event(st, p, who->user, "cancelled");
	tasks_follow(st, p, now);
	st->dirty = true;
	return 0;
}

/* ---------------------------------------------------------------- the clock */

/* Which segment holds now (0-based), or -1. */
static int segment_now(const struct plan *p, int64_t now)
{
	for (uint32_t s = 0; s < p->nsegments; s++)
		if (now >= p->seg[s].start_ms && now < p->seg[s].end_ms)
			return (int)s;
	return -1;
}

/* The end warning of segment s: [plans] end_warning, but never more than
 * half the segment, so that a short segment still runs something. */
static int64_t warning_ms(const struct state *st, const struct plan *p, uint32_t s)
{
	int64_t w = st->plans->cfg ? (int64_t)st->plans->cfg->plans.end_warning_s * 1000 : 0;
	int64_t half = (p->seg[s].end_ms - p->seg[s].start_ms) / 2;

	return w < half ? w : half;
}

/* When the segment under way stops taking plan tasks (its end warning). */
static int64_t window_end(const struct state *st, const struct plan *p, int64_t now)
{
	int s = segment_now(p, now);

	return s < 0 ? 0 : p->seg[s].end_ms - warning_ms(st, p, (uint32_t)s);
}

/*
 * Whether p's tasks may run now: inside a segment, before its end
 * warning. From the warning on, its running tasks are stopped to their
 * checkpoints (plans_each_to_stop) and its pending ones wait for the next
 * segment.
 */
static bool plan_open(const struct state *st, const struct plan *p, int64_t now)
{
	if (plan_ended(p) || segment_now(p, now) < 0)
		return false;
	return now < window_end(st, p, now);
}

/* Why a task of p waits now (p live and not open): the next segment's start. */
static void wait_reason(const struct plan *p, int64_t now, char *buf, size_t len)
{
	char t[32];

	for (uint32_t s = 0; s < p->nsegments; s++) {
		if (p->seg[s].start_ms <= now)
			continue;
		snprintf(buf, len, "%s: segment %u of %u starts %s",
			 s == 0 ? "plan-not-started" : "between-segments", s + 1, p->nsegments,
			 hpq_utc_text(p->seg[s].start_ms, t, sizeof(t)));
		return;
	}
	snprintf(buf, len, "plan-ending: its last segment ends %s",
		 hpq_utc_text(p->seg[p->nsegments - 1].end_ms, t, sizeof(t)));
}

/* p's own dispatcher pool (plan.h), made when first needed. */
static uint32_t plan_pool_id(struct state *st, struct plan *p)
{
	char name[HPQ_NAME_MAX + 8];

	if (!p->has_pool) {
		snprintf(name, sizeof(name), "plan:%s", p->name);
		p->pool_id = pool_restore(st, name)->id;
		p->has_pool = true;
	}
	return p->pool_id;
}

/* The pool t was submitted to (a plan's task is in its plan's pool while
 * the plan is open). */
static uint32_t own_pool_id(struct state *st, const struct task *t)
{
	struct pool *pl = state_pool_find(st, t->pool);

	return pl ? pl->id : t->st.pool;
}

/* t leaves the dispatcher if it is pending there in another pool than want. */
static void leave_other_pool(struct state *st, struct task *t, uint32_t want, int64_t now)
{
	if (t->st.state == SCHED_PENDING && t->st.pool != want)
		sched_task_finish(st->sched, &t->st, now);
	if (t->st.state == SCHED_NONE)
		t->st.pool = want;
}

/*
 * Puts one pending plan task where its plan says: in the dispatcher while
 * the plan is open, out of it (with the reason) while it is not, and back
 * in its team's queue as any task once the plan has ended. Held tasks,
 * tasks waiting for dependencies, and running ones are left alone: a
 * release or a met dependency comes here (plan_task_waits), a requeue
 * too (plan_on_requeued).
 */
static void place(struct state *st, struct task *t, struct plan *p, int64_t now)
{
	char why[160];

	if (t->state != TASK_PENDING || t->held || (t->dependency && *t->dependency))
		return;
	if (!p || plan_ended(p)) {
		leave_other_pool(st, t, own_pool_id(st, t), now);
		if (t->st.state != SCHED_NONE)
			return;
		if (sched_task_submit(st->sched, &t->st) < 0) {
			log_err("plan: the dispatcher refused task %llu back",
				  (unsigned long long)t->st.id);
			return;
		}
		if (!t->reason || strcmp(t->reason, "plan-ended")) {
			str_set(&t->reason, "plan-ended");
			task_save(st, t);
			state_event(st, "requeue", t, NULL, NULL, "plan %s ended: queued in team %s "
				    "as any task", t->plan, t->team);
		}
		return;
	}
	if (plan_open(st, p, now)) {
		leave_other_pool(st, t, plan_pool_id(st, p), now);
		if (t->st.state != SCHED_NONE)
			return;    /* already there: it keeps its reason (a preemption's) */
		if (sched_task_submit(st->sched, &t->st) < 0) {
			log_err("plan: the dispatcher refused task %llu",
				  (unsigned long long)t->st.id);
			return;
		}
		if (t->reason && *t->reason) {
			str_set(&t->reason, "");
			task_save(st, t);
		}
		return;
	}
	if (t->st.state == SCHED_PENDING)
		sched_task_finish(st->sched, &t->st, now);
	t->st.pool = own_pool_id(st, t);
	wait_reason(p, now, why, sizeof(why));
	if (!t->reason || strcmp(t->reason, why)) {
		str_set(&t->reason, why);
		task_save(st, t);
	}
}

/* p changed (a segment began or ended, its end warning came, it ended):
 * its pending tasks follow. O(tasks in memory), once per change. */
static void tasks_follow(struct state *st, struct plan *p, int64_t now)
{
	for (size_t i = 0; i < st->ntasks; i++) {
		struct task *t = st->tasks[i];

		if (t->plan && !strcmp(t->plan, p->name))
			place(st, t, p, now);
	}
}

int plans_check_task(const struct state *st, const char *name, const char *team,
		     const char *pool, uint32_t nnodes, struct state_err *e)
{
	const struct plan *p = plans_find(st, name);

	if (!p)
		return state_errf(e, HPQ_ENOTFOUND, "unknown plan '%.64s': see hpq plan list",
				  name);
	if (strcmp(p->team, team))
		return state_errf(e, HPQ_EPERM, "plan %s is team %s's, not team %s's: its tasks "
				  "are submitted to team %s", p->name, p->team, team, p->team);
	if (plan_ended(p))
		return state_errf(e, HPQ_ESTATE, "plan %s is %s: it holds no nodes any more",
				  p->name, plan_state_name(p->state));
	if (strcmp(p->pool, pool))
		return state_errf(e, HPQ_EINVAL, "plan %s reserves nodes of pool %s, not of pool "
				  "%s", p->name, p->pool, pool);
	if (nnodes > p->nnodes)
		return state_errf(e, HPQ_EINVAL, "plan %s holds %u node%s per segment: a task of "
				  "%u nodes cannot run in it", p->name, p->nnodes,
				  p->nnodes == 1 ? "" : "s", nnodes);
	return 0;
}

bool plan_task_waits(struct state *st, struct task *t)
{
	struct plan *p;
	char why[160];
	int64_t now = hpq_now_ms();

	if (!t->plan || !*t->plan)
		return false;
	p = plans_find(st, t->plan);
	if (!p || plan_ended(p)) {
		if (t->st.state == SCHED_NONE)
			t->st.pool = own_pool_id(st, t);    /* held in its plan's pool, say */
		return false;
	}
	if (plan_open(st, p, now)) {
		t->st.pool = plan_pool_id(st, p);    /* it enters its plan's pool */
		return false;
	}
	wait_reason(p, now, why, sizeof(why));
	str_set(&t->reason, why);
	return true;
}

/* t was requeued (into the dispatcher): out of it again if its plan is closed. */
static void plan_on_requeued(void *arg, struct task *t)
{
	struct state *st = arg;

	if (t->plan && *t->plan)
		place(st, t, plans_find(st, t->plan), hpq_now_ms());
}

static bool in_segment(const struct plan_segment *seg, const char *node)
{
	for (uint32_t k = 0; k < seg->nnodes; k++)
		if (!strcmp(seg->nodes[k], node))
			return true;
	return false;
}

/*
 * After a restart: the nodes of a segment under way go back to its plan's
 * pool at once, with the plan's tasks that run on them (the load adopted
 * them in their own pool), so that the segment is as it was. Where other
 * work runs on them too, nothing moves here: the claim (claim_nodes)
 * empties them.
 */
static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

	return x < y ? -1 : x > y;
}

static void reclaim_at_load(struct state *st, struct plan *p, int64_t now)
{
	int s = segment_now(p, now);
	const struct plan_segment *seg;
	struct task **mine = NULL;
	size_t n = 0;
	uint32_t pool;

	if (s < 0 || plan_ended(p))
		return;
	seg = &p->seg[s];
	/* What runs on the segment's nodes, from their members lists. */
	for (uint32_t k = 0; k < seg->nnodes; k++) {
		struct node *nd = state_node_find(st, seg->nodes[k]);
		struct task_member *m, *next;

		if (!nd)
			continue;
		node_for_each_member(m, next, nd) {
			struct task *t = m->t;
			bool inside = true;

			/* A rank here not done yet. */
			if (!t->done || t->done[m->rank] == '1')
				continue;
			for (uint32_t r = 0; r < t->n_node_names; r++)
				inside = inside && in_segment(seg, t->node_names[r]);
			if (!t->plan || strcmp(t->plan, p->name) || !inside) {
				free(mine);
				return;
			}
			mine = xreallocarray(mine, n + 1, sizeof(*mine));
			mine[n++] = t;
		}
	}
	/* A gang on several of the nodes came once from each. */
	if (n > 1) {
		size_t k = 1;

		qsort(mine, n, sizeof(*mine), cmp_ptr);
		for (size_t i = 1; i < n; i++)
			if (mine[i] != mine[k - 1])
				mine[k++] = mine[i];
		n = k;
	}
	pool = plan_pool_id(st, p);
	for (size_t i = 0; i < n; i++)
		sched_task_finish(st->sched, &mine[i]->st, now);
	for (uint32_t k = 0; k < seg->nnodes; k++) {
		struct node *nd = state_node_find(st, seg->nodes[k]);

		if (nd && !nd->in_plan && sched_node_tasks(st->sched, nd->id) == 0) {
			nd->in_plan = true;
			st->plans->nodes_in_plan++;
			nd->plan_pool = pool;
			state_node_resched(st, nd);
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct task *t = mine[i];
		uint32_t *ids = xcalloc(t->n_node_names ? t->n_node_names : 1, sizeof(*ids));

		for (uint32_t r = 0; r < t->n_node_names; r++)
			ids[r] = state_node_find(st, t->node_names[r])->id;
		t->st.pool = pool;
		if (sched_task_adopt(st->sched, &t->st, ids, t->start_ms) < 0)
			log_err("plan %s: the dispatcher refused running task %llu back", p->name,
				(unsigned long long)t->st.id);
		else if (t->ckpt.has)
			sched_task_checkpoint(st->sched, &t->st, t->ckpt.time_ms);
		free(ids);
	}
	free(mine);
}

void plans_load_done(struct state *st)
{
	int64_t now = hpq_now_ms();

	for (size_t i = 0; i < st->plans->n; i++) {
		st->plans->v[i]->open = plan_open(st, st->plans->v[i], now);
		reclaim_at_load(st, st->plans->v[i], now);
	}
	for (size_t i = 0; i < st->ntasks; i++) {
		struct task *t = st->tasks[i];

		if (t->plan && *t->plan)
			place(st, t, plans_find(st, t->plan), now);
	}
}

/* Whether t is a task of the plan whose pool is pool (one adopted in its
 * own pool at a restart, say: it is not stopped for its own segment). */
static bool own_task(struct state *st, const struct task *t, uint32_t pool)
{
	const struct plan *p = t->plan && *t->plan ? plans_find(st, t->plan) : NULL;

	return p && p->has_pool && p->pool_id == pool;
}

/* The segment nodes' pools, as the clock says; see plan.h. */
static void claim_nodes(struct state *st, int64_t now, void (*fn)(void *arg, struct task *t),
			void *arg)
{
	struct plans *ps = st->plans;
	int64_t grace = (int64_t)st->policy.grace_s * 1000;
	uint32_t *want = NULL;       /* by node id: its plan pool + 1, 0 for its own */
	bool any = ps->nodes_in_plan > 0;
	uint32_t in = 0;

	/* Claims before a start first, so that a segment under way keeps its
	 * nodes until its end against the next one's claim. */
	for (size_t j = 0; j < 2 * ps->n; j++) {
		struct plan *p = ps->v[j % ps->n];
		bool started = j >= ps->n;

		if (plan_ended(p))
			continue;
		for (uint32_t s = 0; s < p->nsegments; s++) {
			if (now < p->seg[s].start_ms - grace || now >= p->seg[s].end_ms ||
			    (now >= p->seg[s].start_ms) != started)
				continue;
			if (!want)
				want = xcalloc(st->nnodes ? st->nnodes : 1, sizeof(*want));
			for (uint32_t k = 0; k < p->seg[s].nnodes; k++) {
				struct node *n = state_node_find(st, p->seg[s].nodes[k]);

				if (n)
					want[n->id] = plan_pool_id(st, p) + 1;
			}
		}
	}
	if (!any && !want)
		return;
	for (uint32_t i = 0; i < st->nnodes; i++) {
		struct node *n = st->nodes[i];
		uint32_t w = want ? want[i] : 0, have;
		struct task_member *m, *next;

		if (!n)
			continue;
		have = n->in_plan ? n->plan_pool + 1 : 0;
		if (w == have)
			continue;
		if (sched_node_tasks(st->sched, n->id) == 0) {
			n->in_plan = w != 0;
			n->plan_pool = w ? w - 1 : 0;
			state_node_resched(st, n);
			log_info("node %s: now in pool %s", n->name,
				 st->pools[w ? w - 1 : n->pool]->name);
			continue;
		}
		if (!w)
			continue;    /* its plan's tasks are on their way out */
		/* Empty it for its segment: the work of anyone but the plan. */
		node_for_each_member(m, next, n) {
			struct task *t = m->t;

			/* A rank here not done yet. */
			if (t->state == TASK_RUNNING && t->st.pool != w - 1 && t->done &&
			    t->done[m->rank] != '1' && !own_task(st, t, w - 1))
				fn(arg, t);
		}
	}
	free(want);
	/* Exact again (a node removed while in a plan left it too high). */
	for (uint32_t i = 0; i < st->nnodes; i++)
		in += st->nodes[i] && st->nodes[i]->in_plan;
	ps->nodes_in_plan = in;
}

void plans_each_to_stop(struct state *st, int64_t now, void (*fn)(void *arg, struct task *t),
			void *arg)
{
	struct plans *ps = st->plans;
	bool any = false;

	claim_nodes(st, now, fn, arg);
	/* Most of the time no live plan is closed: then nothing to walk. */
	for (size_t i = 0; i < ps->n && !any; i++)
		any = !plan_ended(ps->v[i]) && !ps->v[i]->open;
	if (!any)
		return;
	for (struct dlist *l = st->running.next, *next; l != &st->running; l = next) {
		struct task *t = container_of(l, struct task, run_link);
		const struct plan *p;

		next = l->next;
		if (t->state != TASK_RUNNING || !t->plan || !*t->plan)
			continue;
		p = plans_find(st, t->plan);
		if (p && !plan_ended(p) && !p->open)
			fn(arg, t);
	}
}


static enum plan_state state_at(const struct plan *p, int64_t now)
{
	if (now < p->seg[0].start_ms)
		return PLAN_SCHEDULED;
	for (uint32_t s = 0; s < p->nsegments; s++)
		if (now >= p->seg[s].start_ms && now < p->seg[s].end_ms)
			return PLAN_ACTIVE;
	if (now >= p->seg[p->nsegments - 1].end_ms)
		return PLAN_COMPLETED;
	return PLAN_BETWEEN;
}

int64_t plan_next_change(const struct plan *p, int64_t now)
{
	if (plan_ended(p))
		return 0;
	for (uint32_t s = 0; s < p->nsegments; s++) {
		if (p->seg[s].start_ms > now)
			return p->seg[s].start_ms;
		if (p->seg[s].end_ms > now)
			return p->seg[s].end_ms;
	}
	return 0;
}

/* Which segment holds now (1-based), or the next one. */
static uint32_t segment_at(const struct plan *p, int64_t now)
{
	for (uint32_t s = 0; s < p->nsegments; s++)
		if (now < p->seg[s].end_ms)
			return s + 1;
	return p->nsegments;
}

int64_t plans_advance(struct state *st, int64_t now)
{
	struct plans *ps = st->plans;
	int64_t next = INT64_MAX;
	bool changed = false, open;

	for (size_t i = 0; i < ps->n; i++) {
		struct plan *p = ps->v[i];
		enum plan_state want;
		int64_t at;
		char t[32];
		uint32_t s;

		if (plan_ended(p))
			continue;
		want = state_at(p, now);
		open = plan_open(st, p, now);
		if (want != p->state || open != p->open) {
			changed = true;  /* its tasks follow, below, once p->state is set */
		}
		if (want != p->state) {
			p->state = want;
			s = segment_at(p, now);
			if (want == PLAN_COMPLETED)
				p->ended_ms = p->seg[p->nsegments - 1].end_ms;
			plan_put(st, p);
			switch (want) {
			case PLAN_ACTIVE:
				plan_event(st, p, NULL, "active: segment %u of %u, until %s", s,
					   p->nsegments, hpq_utc_text(p->seg[s - 1].end_ms, t, sizeof(t)));
				break;
			case PLAN_BETWEEN:
				plan_event(st, p, NULL, "between-segments: segment %u starts at %s",
					   s, hpq_utc_text(p->seg[s - 1].start_ms, t, sizeof(t)));
				break;
			case PLAN_COMPLETED:
				plan_event(st, p, NULL, "completed");
				break;
			default:
				plan_event(st, p, NULL, "%s", plan_state_name(want));
				break;
			}
			st->dirty = true;
		}
		if (changed) {
			p->open = open;
			tasks_follow(st, p, now);
			st->dirty = true;
			changed = false;
		}
		at = plan_next_change(p, now);
		if (at && at < next)
			next = at;
	}
	return next;
}

int64_t plans_next_wakeup(const struct state *st, int64_t now)
{
	const struct plans *ps = st->plans;
	int64_t next = INT64_MAX, at;

	for (size_t i = 0; i < ps->n; i++) {
		const struct plan *p = ps->v[i];

		if (plan_ended(p))
			continue;
		/* the end warning of the segment under way */
		if (p->open && (at = window_end(st, p, now)) > now && at < next)
			next = at;
		/* the claim of a segment's nodes: its start less the grace */
		for (uint32_t k = 0; k < p->nsegments; k++) {
			at = p->seg[k].start_ms - (int64_t)st->policy.grace_s * 1000;
			if (at > now && at < next)
				next = at;
		}
	}
	return next;
}

double plan_gpu_hours_reserved(const struct plan *p)
{
	double ms = 0;

	for (uint32_t s = 0; s < p->nsegments; s++) {
		int64_t end = p->seg[s].end_ms;

		if (p->state == PLAN_CANCELLED && p->ended_ms < end)
			end = p->ended_ms;
		if (end > p->seg[s].start_ms)
			ms += (double)(end - p->seg[s].start_ms) * p->seg[s].nnodes;
	}
	return ms * p->gpus_per_node / 3.6e6;
}
