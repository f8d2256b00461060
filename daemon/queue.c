/*
 * queue.c: queue positions within a team (queue.h).
 *
 * The order is the dispatcher's (scheduler.h): class weight descending, then
 * queue time, then id. A task's class cannot be removed while the task is
 * unfinished, so its weight is always at hand.
 */
#include <stdlib.h>

#include "queue.h"
#include "xalloc.h"

/* A pending task, for the sort (k: its index in id order, which stands
 * in for its id: both ascend together). */
struct entry {
	uint32_t team;
	uint32_t weight;
	int64_t queue_ms;
	uint32_t k;
};

/*
 * The tasks of one team and weight. Their order is queue time, then id;
 * ids come in order, and queue times mostly do too (a submit's time),
 * so a group whose queue times never go down in id order needs no sort.
 */
struct group {
	uint32_t team, weight;
	uint32_t n;          /* its tasks */
	uint32_t last;       /* the position last handed out: at first, the one
	                      * before its first task's */
	int64_t last_ms;     /* the queue time of its last task so far */
	bool sort;           /* a queue time went down: sort it */
};

struct queue_index {
	uint64_t *id;        /* the pending tasks' ids, ascending (the tasks' order) */
	uint32_t *pos;       /* pos[k]: id[k]'s position */
	size_t n;
	size_t hint;         /* the last k asked for */
};

bool queue_has(const struct task *t)
{
	return t->state == TASK_PENDING && t->st.state == SCHED_PENDING;
}

static uint32_t weight_of(const struct state *st, const struct task *t)
{
	const struct prio_class *c = t->st.class_id < st->nclasses ? st->classes[t->st.class_id]
								   : NULL;

	return c ? c->weight : 0;
}

/* Does a go before b in one team's queue? */
static bool before(uint32_t wa, int64_t qa, uint64_t ida, uint32_t wb, int64_t qb, uint64_t idb)
{
	if (wa != wb)
		return wa > wb;
	if (qa != qb)
		return qa < qb;
	return ida < idb;
}

uint32_t queue_position(const struct state *st, const struct task *t)
{
	uint32_t w, pos = 1;

	if (!queue_has(t))
		return 0;
	w = weight_of(st, t);
	for (size_t i = 0; i < st->ntasks; i++) {
		const struct task *u = st->tasks[i];

		if (u != t && queue_has(u) && u->st.team == t->st.team &&
		    before(weight_of(st, u), u->queue_ms, u->st.id, w, t->queue_ms, t->st.id))
			pos++;
	}
	return pos;
}

static int by_queue(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;

	if (a->team != b->team)
		return a->team < b->team ? -1 : 1;
	if (before(a->weight, a->queue_ms, a->k, b->weight, b->queue_ms, b->k))
		return -1;
	return a->k == b->k ? 0 : 1;
}

static int group_order(const void *pa, const void *pb)
{
	const struct group *a = *(struct group *const *)pa, *b = *(struct group *const *)pb;

	if (a->team != b->team)
		return a->team < b->team ? -1 : 1;
	return a->weight == b->weight ? 0 : a->weight > b->weight ? -1 : 1;
}

/* The groups, by (team, weight): open addressing, a power of two wide. */
struct groups {
	struct group *g;
	size_t n, cap;
	uint32_t *slot;      /* group index + 1; 0: free */
	size_t nslots;
};

/* The slot of (team, weight): its group's, or the free one it would take. */
static size_t groups_slot(const struct groups *gs, uint32_t team, uint32_t weight)
{
	uint64_t key = (uint64_t)team << 32 | weight;
	size_t mask = gs->nslots - 1, i = (size_t)((key * 0x9e3779b97f4a7c15u) >> 40) & mask;

	while (gs->slot[i] && (gs->g[gs->slot[i] - 1].team != team ||
			       gs->g[gs->slot[i] - 1].weight != weight))
		i = (i + 1) & mask;
	return i;
}

/* The index of (team, weight)'s group, made empty if there is none yet. */
static uint32_t groups_find(struct groups *gs, uint32_t team, uint32_t weight)
{
	size_t i;

	if (2 * (gs->n + 1) > gs->nslots) {
		gs->nslots = gs->nslots ? 2 * gs->nslots : 64;
		free(gs->slot);
		gs->slot = xcalloc(gs->nslots, sizeof(*gs->slot));
		for (size_t k = 0; k < gs->n; k++)
			gs->slot[groups_slot(gs, gs->g[k].team, gs->g[k].weight)] = (uint32_t)k + 1;
	}
	i = groups_slot(gs, team, weight);
	if (gs->slot[i])
		return gs->slot[i] - 1;
	if (gs->n == gs->cap) {
		gs->cap = gs->cap ? 2 * gs->cap : 16;
		gs->g = xreallocarray(gs->g, gs->cap, sizeof(*gs->g));
	}
	gs->g[gs->n] = (struct group){ .team = team, .weight = weight, .last_ms = INT64_MIN };
	gs->slot[i] = (uint32_t)gs->n + 1;
	return (uint32_t)gs->n++;
}

/*
 * One pass groups the pending tasks by team and weight, in id order; the
 * groups' own order (team, then weight down) gives each its first
 * position. A group in queue order already (most are) then numbers its
 * tasks in one more pass; only the others are sorted.
 */
struct queue_index *queue_index_new(const struct state *st)
{
	struct queue_index *q = xcalloc(1, sizeof(*q));
	struct groups gs = { 0 };
	struct group **order;
	struct entry *e = NULL;
	uint32_t *gof = NULL;
	size_t cap = 0, nsort = 0;

	for (size_t i = 0; i < st->ntasks; i++) {
		const struct task *t = st->tasks[i];
		struct group *g;
		uint32_t gi;

		if (i + TASK_PREFETCH_AHEAD < st->ntasks)
			task_prefetch(st->tasks[i + TASK_PREFETCH_AHEAD]);
		if (!queue_has(t))
			continue;
		if (q->n == cap) {
			cap = cap ? 2 * cap : 64;
			e = xreallocarray(e, cap, sizeof(*e));
			gof = xreallocarray(gof, cap, sizeof(*gof));
			q->id = xreallocarray(q->id, cap, sizeof(*q->id));
		}
		q->id[q->n] = t->st.id;
		e[q->n] = (struct entry){ t->st.team, weight_of(st, t), t->queue_ms, (uint32_t)q->n };
		gof[q->n] = gi = groups_find(&gs, e[q->n].team, e[q->n].weight);
		g = &gs.g[gi];
		g->n++;
		g->sort |= t->queue_ms < g->last_ms;
		g->last_ms = t->queue_ms;
		q->n++;
	}
	if (!q->n)
		goto out;
	order = xreallocarray(NULL, gs.n, sizeof(*order));
	for (size_t i = 0; i < gs.n; i++)
		order[i] = &gs.g[i];
	qsort(order, gs.n, sizeof(*order), group_order);
	for (size_t i = 0; i < gs.n; i++)
		order[i]->last = i && order[i - 1]->team == order[i]->team
				 ? order[i - 1]->last + order[i - 1]->n : 0;
	free(order);

	q->pos = xreallocarray(NULL, q->n, sizeof(*q->pos));
	for (size_t k = 0; k < q->n; k++) {
		struct group *g = &gs.g[gof[k]];

		if (g->sort)
			e[nsort++] = e[k]; /* nsort <= k: e[k] is read before it is written */
		else
			q->pos[k] = ++g->last;
	}
	/* The rest, into queue order: each group's tasks together. */
	qsort(e, nsort, sizeof(*e), by_queue);
	for (size_t i = 0; i < nsort; i++)
		q->pos[e[i].k] = ++gs.g[gof[e[i].k]].last;
out:
	free(e);
	free(gof);
	free(gs.g);
	free(gs.slot);
	return q;
}

uint32_t queue_index_get(struct queue_index *q, uint64_t task_id)
{
	size_t lo = 0, hi = q->n;

	/* A list asks in id order, up or down: beside the last answer first. */
	for (size_t k = q->hint ? q->hint - 1 : 0; k <= q->hint + 1 && k < q->n; k++)
		if (q->id[k] == task_id)
			return q->pos[q->hint = k];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (q->id[mid] < task_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == q->n || q->id[lo] != task_id)
		return 0;
	q->hint = lo;
	return q->pos[lo];
}

void queue_index_free(struct queue_index *q)
{
	if (!q)
		return;
	free(q->id);
	free(q->pos);
	free(q);
}
