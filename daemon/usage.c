/*
 * usage.c: GPU-hour accounting (usage.h).
 *
 * Three kinds of accumulator, all in GPU-milliseconds: per team and pool
 * (used, within the guarantee, borrowed, lent: the dispatcher's counters),
 * and per user, per class and per training plan, each with its pool (used:
 * the running tasks' GPUs). Rates change only where the state records an event (start, end,
 * requeue, team, node...): usage observes them, and accumulates up
 * to that moment at the old rates; the next tick (a uv_prepare, whichever
 * side of the dispatcher's it runs) reads the new rates, O(teams x pools)
 * plus one walk over the running tasks, which the cluster's size bounds.
 *
 * Accumulators move to "rows" (hour, dimension, key, pool, amounts) at
 * hour boundaries and whenever the rates they belong to are rebuilt; rows
 * are written with an upsert that adds, so the same bucket may be written
 * any number of times.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "context.h"
#include "log.h"
#include "plan.h"
#include "server.h"
#include "store.h"
#include "usage.h"
#include "xalloc.h"

#define HOUR_MS ((int64_t)3600 * 1000)
#define FLUSH_MS 60000

enum { DIM_TEAM, DIM_USER, DIM_CLASS, DIM_PLAN, NDIMS };
static const char *const dim_names[] = { "team", "user", "class", "plan" };

struct acc {
	int dim;
	char *key, *pool;
	int64_t used, within, borrowed, lent;            /* rates: GPUs now */
	int64_t used_ms, within_ms, borrowed_ms, lent_ms; /* GPU-ms so far */
};

struct row {
	int64_t hour;
	int dim;
	char *key, *pool;
	int64_t used_ms, within_ms, borrowed_ms, lent_ms;
};

struct rows {
	struct row *v;
	size_t n, cap;
};

struct usage {
	struct hpqd *d;
	uv_prepare_t tick;
	uv_timer_t flush;
	int64_t last_ms;            /* accumulated up to here */
	struct acc *teams;          /* [team * npools + pool] */
	uint32_t nt, np;
	struct acc *others;         /* users and classes, rebuilt on change */
	size_t nothers;
	bool dirty;                 /* an event since the rates were read */
	struct rows rows;           /* waiting to be written */
	int closing;                /* handles still closing */
};

static void rows_add(struct rows *r, int64_t hour, const struct acc *a)
{
	struct row *w;

	if (!a->used_ms && !a->within_ms && !a->borrowed_ms && !a->lent_ms)
		return;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 32;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	w = &r->v[r->n++];
	w->hour = hour;
	w->dim = a->dim;
	w->key = xstrdup(a->key);
	w->pool = xstrdup(a->pool);
	w->used_ms = a->used_ms;
	w->within_ms = a->within_ms;
	w->borrowed_ms = a->borrowed_ms;
	w->lent_ms = a->lent_ms;
}

static void rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].key);
		free(r->v[i].pool);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* Moves what acc holds into a row of hour and starts it again from zero. */
static void acc_bank(struct usage *u, struct acc *a, int64_t hour)
{
	rows_add(&u->rows, hour, a);
	a->used_ms = a->within_ms = a->borrowed_ms = a->lent_ms = 0;
}

static void acc_free(struct acc *a)
{
	free(a->key);
	free(a->pool);
}

static void bank_all(struct usage *u, int64_t hour)
{
	for (size_t i = 0; i < (size_t)u->nt * u->np; i++)
		if (u->teams[i].key)
			acc_bank(u, &u->teams[i], hour);
	for (size_t i = 0; i < u->nothers; i++)
		acc_bank(u, &u->others[i], hour);
}

static void acc_add(struct acc *a, int64_t dt)
{
	a->used_ms += a->used * dt;
	a->within_ms += a->within * dt;
	a->borrowed_ms += a->borrowed * dt;
	a->lent_ms += a->lent * dt;
}

/* Accumulates the current rates up to now, banking at every hour boundary. */
static void integrate(struct usage *u, int64_t now)
{
	while (u->last_ms < now) {
		int64_t hour_end = (u->last_ms / HOUR_MS + 1) * HOUR_MS;
		int64_t to = now < hour_end ? now : hour_end, dt = to - u->last_ms;

		for (size_t i = 0; i < (size_t)u->nt * u->np; i++)
			if (u->teams[i].key)
				acc_add(&u->teams[i], dt);
		for (size_t i = 0; i < u->nothers; i++)
			acc_add(&u->others[i], dt);
		u->last_ms = to;
		if (to == hour_end)
			bank_all(u, hour_end / HOUR_MS - 1);
	}
	if (now < u->last_ms)
		u->last_ms = now;   /* the clock went back: count nothing twice */
}

static int64_t cur_hour(const struct usage *u)
{
	return (u->last_ms - 1) / HOUR_MS;
}

/* ---------------------------------------------------------------- rates */

static void refresh_teams(struct usage *u)
{
	struct state *st = &u->d->state;

	if (st->nteams != u->nt || st->npools != u->np) {
		/* Ids only grow: bank everything and lay the table out again. */
		for (size_t i = 0; i < (size_t)u->nt * u->np; i++) {
			if (u->teams[i].key)
				acc_bank(u, &u->teams[i], cur_hour(u));
			acc_free(&u->teams[i]);
		}
		free(u->teams);
		u->nt = st->nteams;
		u->np = st->npools;
		u->teams = xcalloc((size_t)u->nt * u->np + 1, sizeof(*u->teams));
	}
	for (uint32_t t = 0; t < u->nt; t++) {
		for (uint32_t p = 0; p < u->np; p++) {
			struct acc *a = &u->teams[(size_t)t * u->np + p];
			struct sched_usage su;

			if (!st->teams[t] || !st->pools[p] ||
			    sched_team_usage(st->sched, t, p, &su) < 0) {
				a->used = a->within = a->borrowed = a->lent = 0;
				continue;
			}
			if (!a->key) {
				if (!su.used.gpus && !su.lent.gpus)
					continue;
				a->dim = DIM_TEAM;
				a->key = xstrdup(st->teams[t]->name);
				a->pool = xstrdup(st->pools[p]->name);
			}
			a->used = su.used.gpus;
			a->borrowed = su.borrowed.gpus;
			a->within = su.used.gpus - su.borrowed.gpus;
			a->lent = su.lent.gpus;
		}
	}
}

static int cmp_acc(const void *x, const void *y)
{
	const struct acc *a = x, *b = y;
	int c;

	if (a->dim != b->dim)
		return a->dim - b->dim;
	c = strcmp(a->key, b->key);
	return c ? c : strcmp(a->pool, b->pool);
}

/* Where (dim, key, pool) is in an index of v (open addressing, a power of
 * two of slots holding v's index + 1); returns the slot. */
static size_t others_slot(const uint32_t *slot, size_t mask, const struct acc *v, int dim,
			  const char *key, const char *pool)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)dim;
	size_t i;

	for (const char *c = key; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	h = (h ^ 0x100) * 1099511628211ull; /* key "ab" pool "c" is not key "a" pool "bc" */
	for (const char *c = pool; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	for (i = (size_t)h & mask; slot[i]; i = (i + 1) & mask) {
		const struct acc *a = &v[slot[i] - 1];

		if (a->dim == dim && !strcmp(a->key, key) && !strcmp(a->pool, pool))
			break;
	}
	return i;
}

struct others_index {
	struct acc *v;
	size_t n, cap;
	uint32_t *slot;
	size_t nslots;
};

/* Adds g GPUs to (dim, key, pool), a new entry (pointing at key and pool) if need be. */
static void others_add(struct others_index *x, int dim, const char *key, const char *pool,
		       int64_t g)
{
	size_t i;

	if (2 * (x->n + 1) > x->nslots) {
		x->nslots = x->nslots ? 2 * x->nslots : 256;
		free(x->slot);
		x->slot = xcalloc(x->nslots, sizeof(*x->slot));
		for (size_t j = 0; j < x->n; j++) {
			i = others_slot(x->slot, x->nslots - 1, x->v, x->v[j].dim, x->v[j].key,
					x->v[j].pool);
			x->slot[i] = (uint32_t)(j + 1);
		}
	}
	i = others_slot(x->slot, x->nslots - 1, x->v, dim, key, pool);
	if (x->slot[i]) {
		x->v[x->slot[i] - 1].used += g;
		return;
	}
	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 64;
		x->v = xreallocarray(x->v, x->cap, sizeof(*x->v));
	}
	x->v[x->n++] = (struct acc){ .dim = dim, .key = (char *)key, .pool = (char *)pool,
				     .used = g };
	x->slot[i] = (uint32_t)x->n;
}

/*
 * The per user and per class GPUs of the running tasks: one walk, summed
 * through a hash index (this runs after every start and end, so at a high
 * rate with many tasks running). What the old entries accumulated stays
 * with the same (dim, key, pool) when it is still there, to be banked
 * with it (rows add up per hour, so the stored sums are the same); only
 * the entries that are gone are banked now.
 */
static void refresh_others(struct usage *u)
{
	struct state *st = &u->d->state;
	struct others_index x = { 0 };

	for (struct dlist *l = st->running.next; l != &st->running; l = l->next) {
		const struct task *t = container_of(l, struct task, run_link);
		int64_t g = (int64_t)t->st.per_node.gpus * t->st.nnodes;

		if (!g)
			continue;
		others_add(&x, DIM_USER, t->user, t->pool, g);
		others_add(&x, DIM_CLASS, t->cls, t->pool, g);
		if (t->plan && *t->plan)
			others_add(&x, DIM_PLAN, t->plan, t->pool, g);
	}
	for (size_t i = 0; i < x.n; i++) {
		x.v[i].key = xstrdup(x.v[i].key);
		x.v[i].pool = xstrdup(x.v[i].pool);
	}
	for (size_t i = 0; i < u->nothers; i++) {
		struct acc *o = &u->others[i];
		size_t j = x.n ? others_slot(x.slot, x.nslots - 1, x.v, o->dim, o->key, o->pool)
			       : 0;

		if (x.n && x.slot[j]) {
			struct acc *a = &x.v[x.slot[j] - 1];

			a->used_ms += o->used_ms;
			a->within_ms += o->within_ms;
			a->borrowed_ms += o->borrowed_ms;
			a->lent_ms += o->lent_ms;
		} else {
			acc_bank(u, o, cur_hour(u));
		}
		acc_free(o);
	}
	free(u->others);
	free(x.slot);
	/* In a stable order, as before: rows are written in it. */
	if (x.n)
		qsort(x.v, x.n, sizeof(*x.v), cmp_acc);
	u->others = x.v;
	u->nothers = x.n;
}

/* New rates if something changed since they were read, then up to now. */
static void catch_up(struct usage *u)
{
	if (u->dirty) {
		refresh_teams(u);
		refresh_others(u);
		u->dirty = false;
	}
	integrate(u, hpq_now_ms());
}

static void on_tick(uv_prepare_t *h)
{
	catch_up(h->data);
}

/* The state's event observer. */
static void on_event(void *arg, const struct store_event *ev, const struct task *t)
{
	struct usage *u = arg;

	/* Every rate change comes with an event (start, end, requeue, team,
	 * node...): what ran before it is counted at the old rates now, what
	 * runs after at the new ones, read at the next tick. */
	integrate(u, hpq_now_ms());
	u->dirty = true;
}

/* ---------------------------------------------------------------- writing */

/* Banks everything up to now and records the rows in the open batch. */
static void flush(struct usage *u)
{
	catch_up(u);
	bank_all(u, cur_hour(u));
	for (size_t i = 0; i < u->rows.n; i++) {
		const struct row *w = &u->rows.v[i];

		store_usage_add(u->d->store, &(struct store_usage_row){
			.hour = w->hour,
			.dim = dim_names[w->dim],
			.key = w->key,
			.pool = w->pool,
			.used_ms = w->used_ms,
			.within_ms = w->within_ms,
			.borrowed_ms = w->borrowed_ms,
			.lent_ms = w->lent_ms,
		});
	}
	rows_free(&u->rows);
}

static void on_flush_timer(uv_timer_t *h)
{
	struct usage *u = h->data;

	if (!u->d->stopping)
		flush(u);
}

/* ---------------------------------------------------------------- reading */

struct usage_req {
	struct usage *u;
	struct conn *c;
	uint64_t id;
	int dim;
	int64_t since_hour, until_ms;
};

static void on_read(void *arg, int status, const struct store_usage_list *l)
{
	struct usage_req *q = arg;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__UsageReply rep = HPQ__USAGE_REPLY__INIT;
	Hpq__UsageRow *rows = NULL, **ptrs = NULL;
	const struct plans *pl = q->u->d->state.plans;
	size_t n = 0, cap = l ? l->n : 0;

	if (status < 0 || l->error) {
		char msg[192];

		snprintf(msg, sizeof(msg), "cannot read the usage: %s",
			 status < 0 ? "the store failed" : l->error);
		server_send_error(q->c, q->id, HPQ_ESTORAGE, msg);
		goto out;
	}
	/* By plan, also the plans of the period that used nothing yet: what
	 * each reserves stands next to what it used. */
	if (q->dim == DIM_PLAN && pl)
		cap += pl->n;
	if (cap) {
		rows = xcalloc(cap, sizeof(*rows));
		ptrs = xcalloc(cap, sizeof(*ptrs));
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct store_usage_sum *s = &l->v[i];
		const struct plan *p = q->dim == DIM_PLAN ? plans_find(&q->u->d->state, s->key)
							  : NULL;

		hpq__usage_row__init(&rows[n]);
		rows[n].key = (char *)s->key;
		rows[n].pool = (char *)s->pool;
		rows[n].used_gpu_h = (double)s->used_ms / (double)HOUR_MS;
		rows[n].within_gpu_h = (double)s->within_ms / (double)HOUR_MS;
		rows[n].borrowed_gpu_h = (double)s->borrowed_ms / (double)HOUR_MS;
		rows[n].lent_gpu_h = (double)s->lent_ms / (double)HOUR_MS;
		rows[n].reserved_gpu_h = p ? plan_gpu_hours_reserved(p) : 0;
		ptrs[n] = &rows[n];
		n++;
	}
	for (size_t i = 0; q->dim == DIM_PLAN && pl && i < pl->n; i++) {
		const struct plan *p = pl->v[i];
		bool listed = false;

		if (!p || (p->ended_ms && p->ended_ms < q->since_hour * HOUR_MS) ||
		    p->created_ms > q->until_ms)
			continue;
		for (size_t k = 0; k < l->n && !listed; k++)
			listed = !strcmp(l->v[k].key, p->name);
		if (listed)
			continue;
		hpq__usage_row__init(&rows[n]);
		rows[n].key = p->name;
		rows[n].pool = p->pool;
		rows[n].reserved_gpu_h = plan_gpu_hours_reserved(p);
		ptrs[n] = &rows[n];
		n++;
	}
	rep.rows = ptrs;
	rep.n_rows = n;
	rep.since = q->since_hour * HOUR_MS;
	rep.until = q->until_ms;
	rep.by = (char *)dim_names[q->dim];
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_USAGE_REPLY;
	env.usage_reply = &rep;
	server_send(q->c, &env);
	free(rows);
	free(ptrs);
out:
	server_unref(q->c);
	free(q);
}

int usage_request(struct usage *u, struct conn *c, uint64_t id, const Hpq__UsageRequest *m,
		  struct state_err *e)
{
	struct usage_req *q;
	int dim = -1;

	for (int i = 0; i < NDIMS; i++)
		if (!strcmp(m->by, dim_names[i]))
			dim = i;
	if (!*m->by)
		dim = DIM_TEAM;
	if (dim < 0)
		return state_errf(e, HPQ_EINVAL, "cannot group usage by '%.32s': use team, user, "
				  "class or plan", m->by);
	if (m->since < 0)
		return state_errf(e, HPQ_EINVAL, "since must not be negative");
	if (!u)
		return state_errf(e, HPQ_EUNAVAIL, "usage accounting is not running");
	flush(u);
	q = xcalloc(1, sizeof(*q));
	q->u = u;
	q->c = c;
	q->id = id;
	q->dim = dim;
	q->since_hour = m->since / HOUR_MS;
	q->until_ms = u->last_ms;
	server_ref(c);
	store_usage_read(u->d->store, dim_names[dim], q->since_hour, on_read, q);
	return 0;
}

/* ---------------------------------------------------------------- setup */

int usage_init(struct hpqd *d)
{
	struct usage *u = xcalloc(1, sizeof(*u));

	u->d = d;
	u->last_ms = hpq_now_ms();
	u->dirty = true;
	if (uv_prepare_init(d->loop, &u->tick) < 0 || uv_timer_init(d->loop, &u->flush) < 0) {
		free(u);
		return HPQ_EINVAL;
	}
	u->tick.data = u;
	u->flush.data = u;
	uv_prepare_start(&u->tick, on_tick);
	uv_unref((uv_handle_t *)&u->tick);
	uv_timer_start(&u->flush, on_flush_timer, FLUSH_MS, FLUSH_MS);
	uv_unref((uv_handle_t *)&u->flush);
	state_observe(&d->state, &(struct state_observer){ .event = on_event, .arg = u });
	d->usage = u;
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	struct usage *u = h->data;

	/* libuv runs close callbacks in no promised order: free after both. */
	if (--u->closing == 0)
		free(u);
}

void usage_close(struct hpqd *d)
{
	struct usage *u = d->usage;

	if (!u)
		return;
	state_unobserve(&d->state, u);
	flush(u);
	for (size_t i = 0; i < (size_t)u->nt * u->np; i++)
		acc_free(&u->teams[i]);
	free(u->teams);
	for (size_t i = 0; i < u->nothers; i++)
		acc_free(&u->others[i]);
	free(u->others);
	rows_free(&u->rows);
	d->usage = NULL;
	u->closing = 2;
	uv_close((uv_handle_t *)&u->tick, on_closed);
	uv_close((uv_handle_t *)&u->flush, on_closed);
}
