/*
 * usage.c: GPU-hour accounting (usage.h).
 *
 * Three kinds of accumulator, all in GPU-milliseconds: per team and pool
 * (used, within the guarantee, borrowed, lent: the dispatcher's counters),
 * and per user, per class and per training plan, each with its pool (used:
 * the running tasks' GPUs). Rates change only where the state records an event (start, end,
 * requeue, team, node...): usage observes them, and accumulates up
 * to that moment at the old rates; the next tick (a uv_prepare, whichever
 * side of the dispatcher's it runs) reads the new rates: the teams' from
 * the dispatcher, O(teams x pools); the users', classes' and plans' by
 * taking back what each task with an event added and adding what it adds
 * now (a table by task id), so that a start or an end costs the same
 * however many tasks run. Only an event without a task (a node, a team,
 * a policy...), rare next to starts and ends, counts the running tasks
 * again in one walk.
 *
 * Accumulators move to "rows" (hour, dimension, key, pool, amounts) at
 * hour boundaries and at every flush; rows are written with an upsert
 * that adds, so the same bucket may be written any number of times. A
 * user's, class's or plan's accumulator that holds nothing and runs
 * nothing leaves at a flush.
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
#include "task.h"
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
	struct acc **others;        /* users, classes and plans, each with its pool */
	size_t nothers, capothers;
	struct acc **oslot;         /* an index of others by (dim, key, pool) */
	size_t noslots;
	struct counted *cslot;      /* what each running task adds to others' rates */
	size_t ncslots, ncounted;
	uint64_t *touched;          /* tasks with an event since the rates were read */
	size_t ntouched, captouched;
	bool recount;               /* an event without a task: count them all again */
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

static int cmp_acc(const void *x, const void *y)
{
	const struct acc *a = *(struct acc *const *)x, *b = *(struct acc *const *)y;
	int c;

	if (a->dim != b->dim)
		return a->dim - b->dim;
	c = strcmp(a->key, b->key);
	return c ? c : strcmp(a->pool, b->pool);
}

static void bank_all(struct usage *u, int64_t hour)
{
	for (size_t i = 0; i < (size_t)u->nt * u->np; i++)
		if (u->teams[i].key)
			acc_bank(u, &u->teams[i], hour);
	/* In a stable order: rows are written in it. */
	if (u->nothers)
		qsort(u->others, u->nothers, sizeof(*u->others), cmp_acc);
	for (size_t i = 0; i < u->nothers; i++)
		acc_bank(u, u->others[i], hour);
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
			acc_add(u->others[i], dt);
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

/* Where (dim, key, pool) is in the index of others (open addressing, a
 * power of two of slots), or the empty slot where it would go. */
static size_t others_slot(const struct usage *u, int dim, const char *key, const char *pool)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)dim;
	size_t mask = u->noslots - 1, i;

	for (const char *c = key; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	h = (h ^ 0x100) * 1099511628211ull; /* key "ab" pool "c" is not key "a" pool "bc" */
	for (const char *c = pool; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	for (i = (size_t)h & mask; u->oslot[i]; i = (i + 1) & mask) {
		const struct acc *a = u->oslot[i];

		if (a->dim == dim && !strcmp(a->key, key) && !strcmp(a->pool, pool))
			break;
	}
	return i;
}

/* Lays the index of others out again, at most half full. */
static void others_reindex(struct usage *u)
{
	size_t n = 256;

	while (n < 2 * (u->nothers + 1))
		n *= 2;
	free(u->oslot);
	u->noslots = n;
	u->oslot = xcalloc(n, sizeof(*u->oslot));
	for (size_t j = 0; j < u->nothers; j++) {
		struct acc *a = u->others[j];

		u->oslot[others_slot(u, a->dim, a->key, a->pool)] = a;
	}
}

/* The accumulator of (dim, key, pool), a new one at rate 0 if there is none. */
static struct acc *others_get(struct usage *u, int dim, const char *key, const char *pool)
{
	struct acc *a;
	size_t i;

	if (2 * (u->nothers + 1) > u->noslots)
		others_reindex(u);
	i = others_slot(u, dim, key, pool);
	if (u->oslot[i])
		return u->oslot[i];
	if (u->nothers == u->capothers) {
		u->capothers = u->capothers ? 2 * u->capothers : 64;
		u->others = xreallocarray(u->others, u->capothers, sizeof(*u->others));
	}
	a = xcalloc(1, sizeof(*a));
	a->dim = dim;
	a->key = xstrdup(key);
	a->pool = xstrdup(pool);
	u->others[u->nothers++] = a;
	u->oslot[i] = a;
	return a;
}

/* Drops the accumulators that hold nothing and count no running task
 * (once banked: flush), so that users and classes long gone cost nothing. */
static void others_compact(struct usage *u)
{
	size_t n = 0;

	for (size_t i = 0; i < u->nothers; i++) {
		struct acc *a = u->others[i];

		if (a->used || a->used_ms || a->within_ms || a->borrowed_ms || a->lent_ms) {
			u->others[n++] = a;
		} else {
			acc_free(a);
			free(a);
		}
	}
	if (n == u->nothers)
		return;
	u->nothers = n;
	others_reindex(u);
}

/*
 * What each running task adds to the rates, by task id: its GPUs, to its
 * user's, its class's and its plan's (or no) accumulator. An event of a
 * task takes back what it added and adds what it adds now, so a start or
 * an end costs the same however many tasks run. Open addressing with
 * linear probing, at most 3/4 full (40 B a slot: at half full the table
 * was 150 B per running task), and deletion by shifting back; g == 0 is
 * an empty slot (a task that adds nothing is not kept).
 */
struct counted {
	uint64_t id;
	int64_t g;
	struct acc *a[3];            /* user, class, plan (or NULL) */
};

static size_t counted_home(const struct usage *u, uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (u->ncslots - 1);
}

static struct counted *counted_find(struct usage *u, uint64_t id)
{
	size_t mask = u->ncslots - 1;

	if (!u->ncslots)
		return NULL;
	for (size_t i = counted_home(u, id); u->cslot[i].g; i = (i + 1) & mask)
		if (u->cslot[i].id == id)
			return &u->cslot[i];
	return NULL;
}

/* Adds c, whose id is not there yet. */
static void counted_put(struct usage *u, const struct counted *c)
{
	size_t mask, i;

	if (4 * (u->ncounted + 1) > 3 * u->ncslots) {
		struct counted *old = u->cslot;
		size_t n = u->ncslots;

		u->ncslots = n ? 2 * n : 1024;
		u->cslot = xcalloc(u->ncslots, sizeof(*u->cslot));
		u->ncounted = 0;
		for (size_t j = 0; j < n; j++)
			if (old[j].g)
				counted_put(u, &old[j]);
		free(old);
	}
	mask = u->ncslots - 1;
	for (i = counted_home(u, c->id); u->cslot[i].g; i = (i + 1) & mask)
		;
	u->cslot[i] = *c;
	u->ncounted++;
}

/* Removes the entry at c: each later entry of its run that may fill the
 * hole (its home is not between the hole and itself) moves back into it. */
static void counted_del(struct usage *u, struct counted *c)
{
	size_t mask = u->ncslots - 1, i = (size_t)(c - u->cslot), j = i;

	for (;;) {
		size_t h;

		j = (j + 1) & mask;
		if (!u->cslot[j].g)
			break;
		h = counted_home(u, u->cslot[j].id);
		if (i <= j ? (h <= i || h > j) : (h <= i && h > j)) {
			u->cslot[i] = u->cslot[j];
			i = j;
		}
	}
	memset(&u->cslot[i], 0, sizeof(u->cslot[i]));
	u->ncounted--;
}

/* The GPUs a task adds to the rates: those of a running one (in the
 * state's running list), 0 for any other. */
static int64_t task_gpus(const struct task *t)
{
	if (!t || dlist_empty(&t->run_link))
		return 0;
	return (int64_t)t->st.per_node.gpus * t->st.nnodes;
}

static const char *task_plan(const struct task *t)
{
	return t->plan && *t->plan ? t->plan : NULL;
}

static void count(struct usage *u, const struct task *t, int64_t g)
{
	struct counted c = { .id = t->st.id, .g = g };

	c.a[0] = others_get(u, DIM_USER, t->user, t->pool);
	c.a[1] = others_get(u, DIM_CLASS, t->cls, t->pool);
	if (task_plan(t))
		c.a[2] = others_get(u, DIM_PLAN, task_plan(t), t->pool);
	for (int k = 0; k < 3; k++)
		if (c.a[k])
			c.a[k]->used += g;
	counted_put(u, &c);
}

static bool acc_is(const struct acc *a, const char *key, const char *pool)
{
	return key ? a && !strcmp(a->key, key) && !strcmp(a->pool, pool) : !a;
}

/* Brings what task id adds to the rates in line with the task as it is now
 * (running or not, ended, gone from memory, its class changed...). */
static void recount_task(struct usage *u, uint64_t id)
{
	const struct task *t = state_task_find(&u->d->state, id);
	struct counted *c = counted_find(u, id);
	int64_t g = task_gpus(t);

	if (c && g == c->g && acc_is(c->a[0], t->user, t->pool) &&
	    acc_is(c->a[1], t->cls, t->pool) && acc_is(c->a[2], task_plan(t), t->pool))
		return;
	if (c) {
		for (int k = 0; k < 3; k++)
			if (c->a[k])
				c->a[k]->used -= c->g;
		counted_del(u, c);
	}
	if (g)
		count(u, t, g);
}

/* The per user, class and plan GPUs counted afresh: one walk over the
 * running tasks. At the start, and after an event with no task, which
 * might have changed any of them. */
static void recount_all(struct usage *u)
{
	struct state *st = &u->d->state;

	for (size_t i = 0; i < u->nothers; i++)
		u->others[i]->used = 0;
	if (u->ncslots)
		memset(u->cslot, 0, u->ncslots * sizeof(*u->cslot));
	u->ncounted = 0;
	for (struct dlist *l = st->running.next; l != &st->running; l = l->next) {
		const struct task *t = container_of(l, struct task, run_link);
		int64_t g = task_gpus(t);

		if (g)
			count(u, t, g);
	}
}

/* New rates if something changed since they were read, then up to now. */
static void catch_up(struct usage *u)
{
	if (u->dirty) {
		refresh_teams(u);
		if (u->recount)
			recount_all(u);
		else
			for (size_t i = 0; i < u->ntouched; i++)
				recount_task(u, u->touched[i]);
		u->ntouched = 0;
		u->recount = false;
		u->dirty = false;
	}
	integrate(u, hpq_now_ms());
}

int usage_verify(struct usage *u, char *err, size_t errlen)
{
	size_t n, ncounted;
	int64_t *used;
	int r = 0;

	catch_up(u);
	n = u->nothers;
	ncounted = u->ncounted;
	used = xcalloc(n + 1, sizeof(*used));
	for (size_t i = 0; i < n; i++)
		used[i] = u->others[i]->used;
	recount_all(u);
	for (size_t i = 0; i < u->nothers && !r; i++) {
		const struct acc *a = u->others[i];
		int64_t had = i < n ? used[i] : 0;

		if (a->used != had)
			r = hpq_errf(err, errlen, HPQ_ESTATE, "%s %s in pool %s: %lld GPUs counted, "
				     "%lld running", dim_names[a->dim], a->key, a->pool,
				     (long long)had, (long long)a->used);
	}
	if (!r && ncounted != u->ncounted)
		r = hpq_errf(err, errlen, HPQ_ESTATE, "%zu tasks counted, %zu running with GPUs",
			     ncounted, u->ncounted);
	free(used);
	return r;
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
	if (!t) {
		u->recount = true;
		return;
	}
	if (u->recount)
		return;
	/* Past as many as run, a walk over the running tasks costs less. */
	if (u->ntouched >= 1024 && u->ntouched > 2 * u->ncounted) {
		u->recount = true;
		return;
	}
	if (u->ntouched == u->captouched) {
		u->captouched = u->captouched ? 2 * u->captouched : 256;
		u->touched = xreallocarray(u->touched, u->captouched, sizeof(*u->touched));
	}
	u->touched[u->ntouched++] = t->st.id;
}

/* ---------------------------------------------------------------- writing */

/* Banks everything up to now and records the rows in the open batch. */
static void flush(struct usage *u)
{
	catch_up(u);
	bank_all(u, cur_hour(u));
	others_compact(u);
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
	server_answered(q->c);
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
	server_awaits(c);
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
	u->recount = true;          /* the tasks the load found running */
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
	for (size_t i = 0; i < u->nothers; i++) {
		acc_free(u->others[i]);
		free(u->others[i]);
	}
	free(u->others);
	free(u->oslot);
	free(u->cslot);
	free(u->touched);
	rows_free(&u->rows);
	d->usage = NULL;
	u->closing = 2;
	uv_close((uv_handle_t *)&u->tick, on_closed);
	uv_close((uv_handle_t *)&u->flush, on_closed);
}
