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

struct entry {
	uint64_t id;
	uint32_t team;
	uint32_t weight;
	int64_t queue_ms;
	uint32_t pos;
};

struct queue_index {
	struct entry *e;     /* sorted by id once positions are set */
	size_t n;
};

static bool pending(const struct task *t)
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

	if (!pending(t))
		return 0;
	w = weight_of(st, t);
	for (size_t i = 0; i < st->ntasks; i++) {
		const struct task *u = st->tasks[i];

		if (u != t && pending(u) && u->st.team == t->st.team &&
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
	if (before(a->weight, a->queue_ms, a->id, b->weight, b->queue_ms, b->id))
		return -1;
	return a->id == b->id ? 0 : 1;
}

static int by_id(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;

	return a->id < b->id ? -1 : a->id > b->id;
}

struct queue_index *queue_index_new(const struct state *st)
{
	struct queue_index *q = xcalloc(1, sizeof(*q));
	size_t cap = 0;

	for (size_t i = 0; i < st->ntasks; i++) {
		const struct task *t = st->tasks[i];

		if (!pending(t))
			continue;
		if (q->n == cap) {
			cap = cap ? 2 * cap : 64;
			q->e = xreallocarray(q->e, cap, sizeof(*q->e));
		}
		q->e[q->n++] = (struct entry){ t->st.id, t->st.team, weight_of(st, t), t->queue_ms,
					       0 };
	}
	if (!q->n)
		return q;
	qsort(q->e, q->n, sizeof(*q->e), by_queue);
	for (size_t i = 0; i < q->n; i++)
		q->e[i].pos = i && q->e[i - 1].team == q->e[i].team ? q->e[i - 1].pos + 1 : 1;
	/* Tasks are appended in id order, but the queue sort moved them. */
	qsort(q->e, q->n, sizeof(*q->e), by_id);
	return q;
}

uint32_t queue_index_get(const struct queue_index *q, uint64_t task_id)
{
	size_t lo = 0, hi = q->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (q->e[mid].id < task_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < q->n && q->e[lo].id == task_id ? q->e[lo].pos : 0;
}

void queue_index_free(struct queue_index *q)
{
	if (!q)
		return;
	free(q->e);
	free(q);
}
