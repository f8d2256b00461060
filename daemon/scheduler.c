/*
 * scheduler.c: the dispatcher (docs/design.md §4 and §5), a pure module.
 *
 * Theory of operation.
 *
 * Everything is indexed so that a cycle touches only what can change:
 *
 *  - A "tq" is one team's presence in one pool: its quota there, its usage
 *    counters (used, claim), its contribution to the pool's borrowed and
 *    lendable sums, its running tasks, and its pending queue.
 *  - A pending queue is a heap of "shapes". A shape groups the pending tasks
 *    of one tq that ask for exactly the same resources (gang size, per-node
 *    request); inside a shape tasks are a heap in queue order (class weight
 *    desc, queue key, id). All tasks of a shape are equally admissible and
 *    placeable, and the head ranks highest, so when the head cannot start,
 *    none of the others can: a cycle skips a whole shape in O(log shapes),
 *    and the best-effort FIFO costs the number of distinct shapes (a handful
 *    per team), never the number of pending tasks. The tq heap orders
 *    shapes by their heads.
 *  - Every pool keeps its schedulable nodes in buckets by the free amount of
 *    its primary resource (GPUs, or CPUs in a pool without GPUs). Best fit is
 *    a walk up from the bucket of the request.
 *  - Pools are marked dirty by the events that can let something start
 *    (submit: only its tq; a release, a node or model change: the whole
 *    pool). A cycle visits dirty pools only, so a cycle with nothing new is
 *    O(pools). In a dirty pool, a tq is examined only if its smallest
 *    request (component-wise min over its shapes) could be admitted and
 *    placed, or it could preempt its own lower classes: an O(1) test, so a
 *    cycle costs about the number of teams plus the work it starts.
 *
 * Admission follows docs/design.md §4 per resource dimension. A dimension in which
 * nobody holds a guarantee in a pool is not governed there (a cluster that
 * only sets GPU guarantees does not make every task "borrow" CPUs); only
 * placement checks it. A pool where nobody holds a guarantee of anything is
 * all idle compute: every task there is admitted as idle work (no borrow
 * limit: nothing is borrowed from anyone), so the idle-allocation policy
 * and the team weights share it, fair share weighing use of the primary
 * resource. Usage for admission is used + claim, where a claim
 * is what a beneficiary waiting for its victims has set aside.
 *
 * A cycle over one pool:
 *   0. beneficiaries of earlier preemptions whose victims are gone start on
 *      the nodes they were promised (claims keep everyone else off them);
 *   1. tasks within their team's guarantee, in class/queue order; a task
 *      that cannot be placed reclaims borrowed compute (RECLAIM preemption);
 *   3. tasks that need idle compute, in fcfs or fair-share order;
 *   2. priority preemption inside teams with preempt_own_lower, evaluated
 *      last so that "nothing idle can serve the task" is known.
 * A task that is admissible but cannot be placed may take the pool's
 * reservation: the nodes closest to fitting it receive no work of lower
 * rank (work within its guarantee ignores a borrower's reservation), and
 * the idle compute it will borrow is earmarked, so a stream of small tasks
 * cannot starve it.
 *
 * Preemption (try_preempt) collects the eligible victims, fails fast when
 * not even all of them would let the beneficiary start, else takes them in
 * victim order until it fits; if their teams reach their guarantees first,
 * it chooses per node instead (the nodes cheapest to empty with the victims
 * on them), so scattered victims do not block a reclaim that another set
 * would satisfy. Then it drops every victim not needed. The
 * beneficiary gets a plan: claims on its nodes and on its team's usage, so
 * that nobody else takes what the victims free and it does not preempt
 * again while they stop; it starts when the last of them is gone.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "scheduler.h"
#include "xalloc.h"

#define ID_LIMIT (1u << 22)              /* ids index tables: refuse absurd ones */
#define RES_LIMIT ((int64_t)1 << 40)     /* bound on requests, capacities, guarantees */
#define NNODES_LIMIT 65536u
#define BUCKETS_MAX 257u
#define NOWHERE UINT32_MAX
#define NDIMS 3

/* sched_task.flags */
enum {
	TF_PLANNED = 1u << 0, /* beneficiary waiting for victims; heap_index = plan index */
	TF_CHOSEN = 1u << 1,  /* scratch in try_preempt: a chosen victim */
	TF_TRY = 1u << 2,     /* scratch in try_preempt: a victim tried on one node */
	TF_WSHIFT = 16,       /* flags >> TF_WSHIFT: its class weight, cached for the heaps */
	TF_LOW = (1u << TF_WSHIFT) - 1,
};

/* shape.mark: where a shape is during a cycle */
enum {
	MARK_NONE = 0,  /* in its tq heap (or empty) */
	MARK_DEFER,     /* set aside in phase 1: needs idle compute */
	MARK_BLOCKED,   /* set aside: cannot start in this cycle */
};

enum adm {
	ADM_GUARANTEE = 0,
	ADM_IDLE,
	ADM_QUOTA,
	ADM_BORROW_LIMIT,
	ADM_NO_IDLE,
};

enum cycle_order {
	ORDER_CLASS,  /* class weight desc, queue key */
	ORDER_SHARE,  /* fair share */
};

struct heap {
	void **v;
	uint32_t n, cap;
};

/*
 * A heap of pending tasks that keeps each one's rank key next to its
 * pointer, so that sifting compares without touching the tasks themselves
 * (a shape may hold a hundred thousand of them).
 */
struct tent {
	int64_t key;                 /* queue_key */
	uint32_t w;                  /* class weight */
	struct sched_task *t;
};

struct theap {
	struct tent *v;
	uint32_t n, cap;
};

struct shape {
	struct tq *tq;
	uint32_t nnodes;
	struct hpq_res per_node, total;
	struct theap tasks;    /* pending tasks in queue order */
	uint32_t index;        /* in tq->shapes, NOWHERE if not there */
	uint32_t mark;
	uint32_t hash;
	struct shape *hnext;
};

struct tq {
	uint32_t team, pool;
	uint32_t pi;                 /* index in pool->tqs */
	struct sched_quota quota;
	bool explicit_quota;
	bool dirty;                  /* in pool->dirty */
	struct hpq_res used;         /* RUNNING + PREEMPTING */
	struct hpq_res leaving;      /* PREEMPTING part of used */
	struct hpq_res claim;        /* set aside for waiting beneficiaries */
	struct hpq_res borrowed;     /* contribution to pool->borrowed */
	struct hpq_res lendable;     /* contribution to pool->lendable */
	struct hpq_res vleft;        /* scratch: used left while choosing victims */
	struct heap shapes;          /* struct shape *, non-empty, not set aside */
	struct sched_task **run;     /* RUNNING and PREEMPTING; task->heap_index */
	uint32_t nrun, run_cap;
	uint32_t npending;
	uint32_t nforms;             /* shapes, wherever they are */
	bool min_stale;
	struct hpq_res min_pn;       /* component-wise min over shapes: per node */
	struct hpq_res min_total;    /* ... and in total */
	bool minrun_stale;
	uint32_t minrun_w;           /* lowest class weight of its preemptible RUNNING tasks */
	struct hpq_res *cls_used;    /* RUNNING usage by class id */
	uint32_t ncls;
	double hist[NDIMS];          /* decayed borrowed history, resource x half-lives */
	int64_t hist_ms;
	uint32_t ci;                 /* index in the cycle heap, NOWHERE if not there */
	double share;                /* fair-share numerator, set per cycle */
	bool tried_own;              /* per cycle: priority preemption was considered */
};

struct node {
	bool exists, schedulable, reserved, touched;
	uint32_t pool;
	uint32_t pi;                 /* index in pool->nodes */
	struct hpq_res cap, used, claim;
	struct hpq_res leaving;      /* part of used held by PREEMPTING tasks */
	struct hpq_res freed;        /* scratch: released by chosen victims */
	uint32_t ti;                 /* scratch: index in sched->touched */
	uint32_t ntasks;
	int32_t bprev, bnext;
	int32_t bucket;              /* -1: in no bucket (not schedulable) */
};

/*
 * What the nodes of a pool offer a request of one size per node, as
 * sched_task_reason weighs it: the same for every waiting task of that
 * size until a node changes (nodes_gen), so that the reasons of a long
 * list cost a walk of the nodes per size, not per task.
 */
#define FIT_VIEWS 8
struct fit_view {
	uint64_t gen;                /* 0: empty */
	struct hpq_res per_node;
	uint32_t hosts;              /* schedulable nodes it fits on when empty */
	uint32_t fit;                /* ... with room for it now, not reserved */
	uint32_t fit_reserved;       /* ... with room for it now, reserved */
	uint32_t held;               /* ... room only once claims are given back */
	struct hpq_res sum;          /* free capacity on the hosts */
};

struct pool {
	uint32_t id;
	struct tq **by_team;         /* indexed by team */
	uint32_t by_team_cap;
	struct tq **tqs;             /* dense */
	uint32_t ntqs, tqs_cap;
	uint32_t *nodes;             /* every node of the pool */
	uint32_t nnodes, nodes_cap;
	uint32_t nsched, ngpu_nodes;
	struct hpq_res cap;          /* of schedulable nodes */
	struct hpq_res maxcap;       /* component-wise max over schedulable nodes */
	struct fit_view *views;      /* sched_task_reason's, FIT_VIEWS of them; NULL until asked */
	uint32_t next_view;
	uint32_t nmax[NDIMS];        /* schedulable nodes that reach maxcap, per dimension */
	struct hpq_res gsum;         /* sum of guarantees */
	enum adm within;             /* admission within guarantee: ADM_IDLE if gsum is zero */
	uint32_t share_dims;         /* per cycle: the dimensions fair share weighs, a bit each */
	struct hpq_res borrowed;     /* sum of tq->borrowed */
	struct hpq_res lendable;     /* sum of tq->lendable */
	struct hpq_res idle_tot;     /* per cycle: base + lendable */
	int primary;                 /* bucket dimension: 0 gpus, 1 cpus */
	int32_t *bhead;
	uint32_t *bcount;
	uint32_t nbuckets;
	bool queued, all;
	struct tq **dirty;
	uint32_t ndirty, dirty_cap;
	struct sched_task *resv;     /* holds the reservation */
	bool resv_guarantee;         /* ... and is within its guarantee */
	struct hpq_res resv_borrow;  /* ... and will borrow this much */
	bool resv_moved;             /* it changed: go over the whole pool again */
	uint32_t passes;             /* cycles over it in this sched_cycle call */
	uint32_t *resv_nodes;
	uint32_t nresv, resv_cap;
	int64_t retry_at;            /* a failed preemption may succeed then */
};

struct plan {
	struct sched_task *b;
	uint32_t pool;
	uint32_t *nodes;
	struct sched_task **victims; /* still PREEMPTING for b */
	uint32_t nvictims;
};

struct class_info {
	uint32_t weight;
	bool preemptible;
};

struct team_info {
	uint32_t weight;
	bool preempt_own;
	bool has_default;
	struct sched_quota default_quota;
};

struct sched {
	struct sched_policy pol;
	int64_t now;
	int64_t retry_at;

	struct class_info *classes;
	uint32_t nclasses;
	struct team_info *teams;
	uint32_t nteams;
	struct pool **pools;
	uint32_t npools;
	struct node *nodes;
	uint32_t nnodes;
	uint64_t nodes_gen;          /* moves with any node's use, claim, reservation or capacity */

	struct shape **stab;         /* shape hash, chained */
	uint32_t stab_mask, nshapes;

	struct plan **plans;
	uint32_t nplans, plans_cap;

	uint32_t *dirty_pools;
	uint32_t ndirty, dirty_cap;

	struct sched_decision *dec;
	uint32_t ndec, dec_cap;

	sched_successor_fn successor;  /* sched_set_successor */
	void *successor_ctx;

	/* cycle scratch */
	enum cycle_order order;
	struct heap cand;            /* struct tq * */
	struct heap visit;           /* struct tq * examined in this cycle */
	struct heap aside;           /* struct shape * set aside */
	struct heap vic;             /* struct sched_task * victim candidates */
	struct heap chosen;          /* struct sched_task * chosen victims */
	struct heap vord;            /* struct sched_task * victim candidates in victim order */
	uint32_t *vstart, *vlist;    /* per touched node: indexes in vord of its victims */
	uint32_t vstart_cap, vlist_cap;
	struct ncost *ncost;         /* touched nodes by what emptying them costs */
	uint32_t ncost_cap;
	uint32_t *nodebuf, *nodebuf2, *touched;
	uint32_t nodebuf_cap, ntouched, touched_cap;
};

static const struct class_info class_default = {0, true};

/* ---- small helpers ---- */

static inline int64_t res_dim(struct hpq_res r, int d)
{
	return d == 0 ? r.gpus : d == 1 ? r.cpus : r.mem;
}

static bool res_valid(struct hpq_res r, int64_t limit)
{
	return r.gpus >= 0 && r.cpus >= 0 && r.mem >= 0 && r.gpus <= limit && r.cpus <= limit &&
	       r.mem <= limit;
}

static inline bool governed(const struct pool *p, int d)
{
	return res_dim(p->gsum, d) > 0;
}

/* Nobody holds a guarantee in p: all of it is idle compute. */
static inline bool unguaranteed(const struct pool *p)
{
	return hpq_res_is_zero(p->gsum);
}

static struct hpq_res task_total(const struct sched_task *t)
{
	return hpq_res_scale(t->per_node, t->nnodes);
}

static const struct class_info *class_of(const struct sched *s, uint32_t c)
{
	return c < s->nclasses ? &s->classes[c] : &class_default;
}

static uint32_t team_weight(const struct sched *s, uint32_t team)
{
	return team < s->nteams ? s->teams[team].weight : 1;
}

static void grow(void **v, uint32_t *cap, uint32_t need, size_t size)
{
	uint32_t c = *cap ? *cap : 4;

	if (need <= *cap)
		return;
	while (c < need)
		c *= 2;
	*v = xreallocarray(*v, c, size);
	memset((char *)*v + (size_t)*cap * size, 0, (size_t)(c - *cap) * size);
	*cap = c;
}

static void nodebuf_reserve(struct sched *s, uint32_t n)
{
	if (n <= s->nodebuf_cap)
		return;
	s->nodebuf = xreallocarray(s->nodebuf, n, sizeof(*s->nodebuf));
	s->nodebuf2 = xreallocarray(s->nodebuf2, n, sizeof(*s->nodebuf2));
	s->nodebuf_cap = n;
}

/* ---- binary heaps of pointers ---- */

typedef bool (*heap_before_fn)(const struct sched *s, const void *a, const void *b);
typedef void (*heap_index_fn)(void *e, uint32_t i);

static inline void heap_put(struct heap *h, uint32_t i, void *e, heap_index_fn ix)
{
	h->v[i] = e;
	if (ix)
		ix(e, i);
}

static void heap_up(const struct sched *s, struct heap *h, uint32_t i, heap_before_fn before,
		    heap_index_fn ix)
{
	void *e = h->v[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (!before(s, e, h->v[parent]))
			break;
		heap_put(h, i, h->v[parent], ix);
		i = parent;
	}
	heap_put(h, i, e, ix);
}

static void heap_down(const struct sched *s, struct heap *h, uint32_t i, heap_before_fn before,
		      heap_index_fn ix)
{
	void *e = h->v[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && before(s, h->v[c + 1], h->v[c]))
			c++;
		if (!before(s, h->v[c], e))
			break;
		heap_put(h, i, h->v[c], ix);
		i = c;
	}
	heap_put(h, i, e, ix);
}

static void heap_fix(const struct sched *s, struct heap *h, uint32_t i, heap_before_fn before,
		     heap_index_fn ix)
{
	if (i > 0 && before(s, h->v[i], h->v[(i - 1) / 2]))
		heap_up(s, h, i, before, ix);
	else
		heap_down(s, h, i, before, ix);
}

static void heap_push(const struct sched *s, struct heap *h, void *e, heap_before_fn before,
		      heap_index_fn ix)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 4;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	h->v[h->n++] = e;
	heap_up(s, h, h->n - 1, before, ix);
}

static void heap_remove(const struct sched *s, struct heap *h, uint32_t i, heap_before_fn before,
			heap_index_fn ix)
{
	void *last = h->v[--h->n];

	if (i < h->n) {
		heap_put(h, i, last, ix);
		heap_fix(s, h, i, before, ix);
	}
}

static void heap_build(const struct sched *s, struct heap *h, heap_before_fn before,
		       heap_index_fn ix)
{
	uint32_t i;

	for (i = 0; i < h->n; i++)
		heap_put(h, i, h->v[i], ix);
	for (i = h->n / 2; i-- > 0;)
		heap_down(s, h, i, before, ix);
}

static void array_push(struct heap *h, void *e)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 4;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	h->v[h->n++] = e;
}

/* ---- orders ---- */

/* Queue order, inside a shape and across teams: class weight desc, queue key, id.
 * Pending tasks carry their class weight in flags (class weights are <= 65535). */
static bool task_before(const struct sched *s, const void *a, const void *b)
{
	const struct sched_task *x = a, *y = b;
	uint32_t wx = x->flags >> TF_WSHIFT, wy = y->flags >> TF_WSHIFT;

	if (wx != wy)
		return wx > wy;
	if (x->queue_key != y->queue_key)
		return x->queue_key < y->queue_key;
	return x->id < y->id;
}

static inline bool tent_before(const struct tent *a, const struct tent *b)
{
	if (a->w != b->w)
		return a->w > b->w;
	if (a->key != b->key)
		return a->key < b->key;
	return a->t->id < b->t->id;
}

static inline void theap_put(struct theap *h, uint32_t i, struct tent e)
{
	h->v[i] = e;
	e.t->heap_index = i;
}

static void theap_up(struct theap *h, uint32_t i)
{
	struct tent e = h->v[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (!tent_before(&e, &h->v[parent]))
			break;
		theap_put(h, i, h->v[parent]);
		i = parent;
	}
	theap_put(h, i, e);
}

static void theap_down(struct theap *h, uint32_t i)
{
	struct tent e = h->v[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && tent_before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!tent_before(&h->v[c], &e))
			break;
		theap_put(h, i, h->v[c]);
		i = c;
	}
	theap_put(h, i, e);
}

static void theap_push(struct theap *h, struct sched_task *t)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 4;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	h->v[h->n] = (struct tent){t->queue_key, t->flags >> TF_WSHIFT, t};
	theap_up(h, h->n++);
}

static void theap_remove(struct theap *h, uint32_t i)
{
	struct tent last = h->v[--h->n];

	if (i == h->n)
		return;
	theap_put(h, i, last);
	if (i > 0 && tent_before(&h->v[i], &h->v[(i - 1) / 2]))
		theap_up(h, i);
	else
		theap_down(h, i);
}

/* After class weights changed: new keys, new order. */
static void theap_rekey(struct theap *h)
{
	uint32_t i;

	for (i = 0; i < h->n; i++)
		h->v[i].w = h->v[i].t->flags >> TF_WSHIFT;
	for (i = h->n / 2; i-- > 0;)
		theap_down(h, i);
}

static bool outranks(const struct sched *s, const struct sched_task *a,
		     const struct sched_task *b)
{
	return task_before(s, a, b);
}

static inline struct sched_task *shape_head(const struct shape *sh)
{
	return sh->tasks.v[0].t;
}

static bool shape_before(const struct sched *s, const void *a, const void *b)
{
	const struct shape *x = a, *y = b;

	return tent_before(&x->tasks.v[0], &y->tasks.v[0]);
}

static void shape_index(void *e, uint32_t i)
{
	((struct shape *)e)->index = i;
}

static bool share_before(const struct tq *a, const struct tq *b, const struct sched *s)
{
	uint32_t wa = team_weight(s, a->team), wb = team_weight(s, b->team);

	/* weight 0 borrows last */
	if ((wa == 0) != (wb == 0))
		return wb == 0;
	if (wa && wb) {
		double x = a->share / wa, y = b->share / wb;

		if (x != y)
			return x < y;
	} else if (a->share != b->share) {
		return a->share < b->share;
	}
	if (a->npending != b->npending)
		return a->npending > b->npending;
	if (shape_head(a->shapes.v[0])->queue_key != shape_head(b->shapes.v[0])->queue_key)
		return shape_head(a->shapes.v[0])->queue_key <
		       shape_head(b->shapes.v[0])->queue_key;
	return a->team < b->team;
}

static bool cand_before(const struct sched *s, const void *a, const void *b)
{
	const struct tq *x = a, *y = b;

	if (s->order == ORDER_SHARE)
		return share_before(x, y, s);
	return shape_before(s, x->shapes.v[0], y->shapes.v[0]);
}

static void cand_index(void *e, uint32_t i)
{
	((struct tq *)e)->ci = i;
}

/*
 * Victims first: lowest class, then the least work lost (the newest of
 * start and checkpoint: a task that just started or just checkpointed loses
 * least), then the most recently started, then the highest id.
 */
static bool victim_before(const struct sched *s, const void *a, const void *b)
{
	const struct sched_task *x = a, *y = b;
	uint32_t wx = class_of(s, x->class_id)->weight, wy = class_of(s, y->class_id)->weight;
	int64_t lx = hpq__max64(x->start_ms, x->checkpoint_ms);
	int64_t ly = hpq__max64(y->start_ms, y->checkpoint_ms);

	if (wx != wy)
		return wx < wy;
	if (lx != ly)
		return lx > ly;
	if (x->start_ms != y->start_ms)
		return x->start_ms > y->start_ms;
	return x->id > y->id;
}

/* ---- decisions ---- */

static void decide(struct sched *s, enum sched_action a, struct sched_task *t,
		   struct sched_task *b, enum sched_preempt_cause cause)
{
	grow((void **)&s->dec, &s->dec_cap, s->ndec + 1, sizeof(*s->dec));
	s->dec[s->ndec++] = (struct sched_decision){a, t, b, cause};
}

/* ---- pools, tqs, usage ---- */

static struct pool *pool_find(const struct sched *s, uint32_t id)
{
	return id < s->npools ? s->pools[id] : NULL;
}

static struct pool *pool_get(struct sched *s, uint32_t id)
{
	struct pool *p;

	grow((void **)&s->pools, &s->npools, id + 1, sizeof(*s->pools));
	if (s->pools[id])
		return s->pools[id];
	p = xcalloc(1, sizeof(*p));
	p->id = id;
	p->retry_at = INT64_MAX;
	p->within = ADM_IDLE;
	s->pools[id] = p;
	return p;
}

static void pool_queue(struct sched *s, struct pool *p)
{
	if (p->queued)
		return;
	p->queued = true;
	grow((void **)&s->dirty_pools, &s->dirty_cap, s->ndirty + 1, sizeof(*s->dirty_pools));
	s->dirty_pools[s->ndirty++] = p->id;
}

static void pool_dirty_all(struct sched *s, struct pool *p)
{
	p->all = true;
	pool_queue(s, p);
}

static void tq_dirty(struct sched *s, struct pool *p, struct tq *q)
{
	if (!p->all && !q->dirty) {
		q->dirty = true;
		grow((void **)&p->dirty, &p->dirty_cap, p->ndirty + 1, sizeof(*p->dirty));
		p->dirty[p->ndirty++] = q;
	}
	pool_queue(s, p);
}

static const struct sched_quota quota_default = {
	.sharing = SCHED_LEND_AND_BORROW,
	.borrow_limit_pct = 50,
};

static const struct sched_quota *team_default_quota(const struct sched *s, uint32_t team)
{
	if (team < s->nteams && s->teams[team].has_default)
		return &s->teams[team].default_quota;
	return &quota_default;
}

static struct hpq_res lend_of(const struct sched_quota *q, struct hpq_res unused)
{
	if (q->sharing == SCHED_DONT_LEND)
		return HPQ_RES_ZERO;
	if (q->has_lend_limit)
		return hpq_res_min(unused, q->lend_limit);
	return unused;
}

static int64_t borrow_limit(const struct sched_quota *q, int d)
{
	if (q->has_borrow_abs)
		return res_dim(q->borrow_abs, d);
	return res_dim(q->guarantee, d) * (int64_t)q->borrow_limit_pct / 100;
}

/*
 * Advances the decayed borrow history of q to s->now: the integral of
 * borrowed(t) 2^-((now - t) / h) dt / h. Over a step of x half-lives in
 * which borrowed held still, that is hist 2^-x + borrowed (1 - 2^-x) / ln 2,
 * exactly, so the history is the same however often it is advanced (not
 * borrowed x, which only approaches it for small steps and made a team's
 * history grow with the time since its last update).
 */
static void hist_advance(const struct sched *s, struct tq *q)
{
	double x, f, g;
	int d;

	if (s->now <= q->hist_ms)
		return;
	if (s->pol.half_life_ms <= 0) {
		q->hist[0] = q->hist[1] = q->hist[2] = 0;
	} else {
		x = (double)(s->now - q->hist_ms) / (double)s->pol.half_life_ms;
		f = exp2(-x);
		g = -expm1(-x * M_LN2) / M_LN2; /* (1 - f) / ln 2 */
		for (d = 0; d < NDIMS; d++)
			q->hist[d] = q->hist[d] * f + (double)res_dim(q->borrowed, d) * g;
	}
	q->hist_ms = s->now;
}

/* Recomputes q's contributions to its pool's sums after used, claim or the quota changed. */
static void tq_account(struct sched *s, struct pool *p, struct tq *q)
{
	struct hpq_res eff = hpq_res_add(q->used, q->claim);
	struct hpq_res b = hpq_res_sub_floor(eff, q->quota.guarantee);
	struct hpq_res l = lend_of(&q->quota, hpq_res_sub_floor(q->quota.guarantee, eff));

	hist_advance(s, q);
	p->borrowed = hpq_res_add(hpq_res_sub(p->borrowed, q->borrowed), b);
	p->lendable = hpq_res_add(hpq_res_sub(p->lendable, q->lendable), l);
	q->borrowed = b;
	q->lendable = l;
}

static struct tq *tq_find(const struct pool *p, uint32_t team)
{
	return p && team < p->by_team_cap ? p->by_team[team] : NULL;
}

static struct tq *tq_get(struct sched *s, struct pool *p, uint32_t team)
{
	struct tq *q = tq_find(p, team);

	if (q)
		return q;
	grow((void **)&p->by_team, &p->by_team_cap, team + 1, sizeof(*p->by_team));
	q = xcalloc(1, sizeof(*q));
	q->team = team;
	q->pool = p->id;
	q->quota = *team_default_quota(s, team);
	q->ci = NOWHERE;
	q->minrun_stale = true;
	q->hist_ms = s->now;
	p->by_team[team] = q;
	grow((void **)&p->tqs, &p->tqs_cap, p->ntqs + 1, sizeof(*p->tqs));
	q->pi = p->ntqs;
	p->tqs[p->ntqs++] = q;
	/* default quotas have no guarantee, so gsum does not change */
	p->gsum = hpq_res_add(p->gsum, q->quota.guarantee);
	p->within = unguaranteed(p) ? ADM_IDLE : ADM_GUARANTEE;
	tq_account(s, p, q);
	return q;
}

/* RUNNING usage by class: what priority preemption could free, in O(classes). */
static void tq_cls_charge(struct tq *q, const struct sched_task *t, int sign)
{
	struct hpq_res r = task_total(t);

	grow((void **)&q->cls_used, &q->ncls, t->class_id + 1, sizeof(*q->cls_used));
	q->cls_used[t->class_id] = sign > 0 ? hpq_res_add(q->cls_used[t->class_id], r)
					    : hpq_res_sub(q->cls_used[t->class_id], r);
}

static struct hpq_res tq_lower_usage(const struct sched *s, const struct tq *q, uint32_t w)
{
	struct hpq_res sum = HPQ_RES_ZERO;
	uint32_t c;

	for (c = 0; c < q->ncls; c++) {
		const struct class_info *ci = class_of(s, c);

		if (ci->preemptible && ci->weight < w)
			sum = hpq_res_add(sum, q->cls_used[c]);
	}
	return sum;
}

static void tq_run_add(struct tq *q, struct sched_task *t)
{
	q->minrun_stale = true;
	grow((void **)&q->run, &q->run_cap, q->nrun + 1, sizeof(*q->run));
	t->heap_index = q->nrun;
	q->run[q->nrun++] = t;
}

static void tq_run_remove(struct tq *q, struct sched_task *t)
{
	uint32_t i = t->heap_index;

	q->minrun_stale = true;
	q->run[i] = q->run[--q->nrun];
	q->run[i]->heap_index = i;
	t->heap_index = NOWHERE;
}

/* Team over its guarantee in a governed dimension, not counting what is already leaving. */
static bool over_guarantee(const struct pool *p, const struct tq *q, struct hpq_res used)
{
	int d;

	for (d = 0; d < NDIMS; d++)
		if (governed(p, d) && res_dim(used, d) > res_dim(q->quota.guarantee, d))
			return true;
	return false;
}

/*
 * Would q be admitted for req when its usage is eff (normally used + claim;
 * less when victims are being counted out)? Exactly docs/design.md §4: within
 * guarantee; else, if the team may borrow, the new excess within its
 * borrow limit and within the pool's idle compute.
 */
static enum adm admit_x(const struct pool *p, const struct tq *q, struct hpq_res eff,
			struct hpq_res req, struct hpq_res earmarked)
{
	const struct sched_quota *qu = &q->quota;
	struct hpq_res u = hpq_res_add(eff, req);
	struct hpq_res b0 = hpq_res_sub_floor(eff, qu->guarantee);
	struct hpq_res b1 = hpq_res_sub_floor(u, qu->guarantee);
	struct hpq_res l1;
	bool within = true, quota = false, limit = false;
	int d;

	for (d = 0; d < NDIMS; d++)
		if (governed(p, d) && res_dim(req, d) > 0 && res_dim(u, d) > res_dim(qu->guarantee, d))
			within = false;
	if (within)
		return p->within;
	if (qu->sharing == SCHED_LEND)
		return ADM_QUOTA;
	for (d = 0; d < NDIMS; d++) {
		int64_t lim;

		if (!governed(p, d) || res_dim(b1, d) <= res_dim(b0, d))
			continue;
		lim = borrow_limit(qu, d);
		if (lim <= 0)
			quota = true;
		else if (res_dim(b1, d) > lim)
			limit = true;
	}
	if (quota)
		return ADM_QUOTA;
	if (limit)
		return ADM_BORROW_LIMIT;
	l1 = lend_of(qu, hpq_res_sub_floor(qu->guarantee, u));
	for (d = 0; d < NDIMS; d++) {
		int64_t base, borrowed, idle;

		if (!governed(p, d) || res_dim(b1, d) <= res_dim(b0, d))
			continue;
		base = hpq__max64(res_dim(p->cap, d) - res_dim(p->gsum, d), 0);
		borrowed = res_dim(p->borrowed, d) - res_dim(q->borrowed, d) + res_dim(b1, d) +
			   res_dim(earmarked, d);
		idle = base + res_dim(p->lendable, d) - res_dim(q->lendable, d) + res_dim(l1, d);
		if (borrowed > idle)
			return ADM_NO_IDLE;
	}
	return ADM_IDLE;
}

static enum adm admit(const struct pool *p, const struct tq *q, struct hpq_res eff,
		      struct hpq_res req)
{
	return admit_x(p, q, eff, req, HPQ_RES_ZERO);
}

static inline struct hpq_res tq_eff(const struct tq *q)
{
	return hpq_res_add(q->used, q->claim);
}

/*
 * Admission of t (of q) for req, with the pool's reservation earmarked
 * against work it outranks: its own team counts it as used, other teams
 * find the idle compute it will borrow taken. Without this, small tasks
 * could keep eating the idle compute a reserved task waits for.
 */
static enum adm admit_task(const struct sched *s, const struct pool *p, const struct tq *q,
			   const struct sched_task *t, struct hpq_res req)
{
	const struct sched_task *r = p->resv;
	struct hpq_res eff = tq_eff(q);

	if (!r || r == t || outranks(s, t, r))
		return admit_x(p, q, eff, req, HPQ_RES_ZERO);
	if (r->team == t->team)
		return admit_x(p, q, hpq_res_add(eff, task_total(r)), req, HPQ_RES_ZERO);
	return admit_x(p, q, eff, req, p->resv_borrow);
}

/* ---- nodes and the free-capacity index ---- */

static inline struct hpq_res node_avail(const struct node *n)
{
	return hpq_res_sub_floor(n->cap, hpq_res_add(n->used, n->claim));
}

static uint32_t bucket_for(const struct pool *p, struct hpq_res r)
{
	int64_t v = res_dim(r, p->primary);

	if (v < 0)
		v = 0;
	return v >= (int64_t)p->nbuckets ? p->nbuckets - 1 : (uint32_t)v;
}

static void bucket_unlink(struct sched *s, struct pool *p, uint32_t id)
{
	struct node *n = &s->nodes[id];

	if (n->bucket < 0)
		return;
	if (n->bprev >= 0)
		s->nodes[n->bprev].bnext = n->bnext;
	else
		p->bhead[n->bucket] = n->bnext;
	if (n->bnext >= 0)
		s->nodes[n->bnext].bprev = n->bprev;
	p->bcount[n->bucket]--;
	n->bucket = -1;
}

static void bucket_link(struct sched *s, struct pool *p, uint32_t id)
{
	struct node *n = &s->nodes[id];
	uint32_t b = bucket_for(p, node_avail(n));

	n->bucket = (int32_t)b;
	n->bprev = -1;
	n->bnext = p->bhead[b];
	if (n->bnext >= 0)
		s->nodes[n->bnext].bprev = (int32_t)id;
	p->bhead[b] = (int32_t)id;
	p->bcount[b]++;
}

static void node_rebucket(struct sched *s, uint32_t id)
{
	struct node *n = &s->nodes[id];
	struct pool *p;

	s->nodes_gen++;
	if (n->bucket < 0)
		return;
	p = s->pools[n->pool];
	if ((uint32_t)n->bucket == bucket_for(p, node_avail(n)))
		return;
	bucket_unlink(s, p, id);
	bucket_link(s, p, id);
}

static inline int64_t *res_dim_at(struct hpq_res *r, int d)
{
	return d == 0 ? &r->gpus : d == 1 ? &r->cpus : &r->mem;
}

/* Counts v into a maximum *m that *n nodes reach. */
static void top_count(int64_t *m, uint32_t *n, int64_t v)
{
	if (v > *m) {
		*m = v;
		*n = 1;
	} else if (v == *m) {
		(*n)++;
	}
}

/* A schedulable node's capacity joins maxcap. */
static void maxcap_add(struct pool *p, struct hpq_res cap)
{
	for (int d = 0; d < NDIMS; d++)
		top_count(res_dim_at(&p->maxcap, d), &p->nmax[d], res_dim(cap, d));
}

/* A node with capacity cap is no longer schedulable (its flag is already
 * down): only the last node at the top of a dimension costs a walk. */
static void maxcap_remove(struct sched *s, struct pool *p, struct hpq_res cap)
{
	for (int d = 0; d < NDIMS; d++) {
		int64_t *m = res_dim_at(&p->maxcap, d);

		if (res_dim(cap, d) != *m || --p->nmax[d])
			continue;
		*m = 0;
		for (uint32_t i = 0; i < p->nnodes; i++) {
			const struct node *n = &s->nodes[p->nodes[i]];

			if (n->schedulable)
				top_count(m, &p->nmax[d], res_dim(n->cap, d));
		}
	}
}

/* Rebuilds the buckets and the pool's capacity sums from its nodes. */
static void pool_reindex(struct sched *s, struct pool *p)
{
	uint32_t i, nb = 1;

	p->cap = p->maxcap = HPQ_RES_ZERO;
	memset(p->nmax, 0, sizeof(p->nmax));
	p->nsched = p->ngpu_nodes = 0;
	for (i = 0; i < p->nnodes; i++) {
		struct node *n = &s->nodes[p->nodes[i]];

		if (n->cap.gpus > 0)
			p->ngpu_nodes++;
	}
	p->primary = p->ngpu_nodes ? 0 : 1;
	for (i = 0; i < p->nnodes; i++) {
		struct node *n = &s->nodes[p->nodes[i]];
		int64_t v;

		n->bucket = -1;
		if (!n->schedulable)
			continue;
		p->nsched++;
		p->cap = hpq_res_add(p->cap, n->cap);
		maxcap_add(p, n->cap);
		v = res_dim(n->cap, p->primary);
		if (v + 1 > (int64_t)nb)
			nb = v + 1 > BUCKETS_MAX ? BUCKETS_MAX : (uint32_t)(v + 1);
	}
	p->nbuckets = nb;
	p->bhead = xreallocarray(p->bhead, nb, sizeof(*p->bhead));
	p->bcount = xreallocarray(p->bcount, nb, sizeof(*p->bcount));
	for (i = 0; i < nb; i++) {
		p->bhead[i] = -1;
		p->bcount[i] = 0;
	}
	for (i = 0; i < p->nnodes; i++)
		if (s->nodes[p->nodes[i]].schedulable)
			bucket_link(s, p, p->nodes[i]);
}

/*
 * Accounts a new node in p's sums if the bucket index can take it as it
 * is (same primary resource, within the bucket range); false if the index
 * must be rebuilt instead.
 */
static bool pool_index_add(struct pool *p, struct hpq_res cap, bool schedulable)
{
	int primary = p->ngpu_nodes || cap.gpus > 0 ? 0 : 1;

	if (primary != p->primary || !p->nbuckets)
		return false;
	if (schedulable && res_dim(cap, primary) >= (int64_t)p->nbuckets &&
	    p->nbuckets < BUCKETS_MAX)
		return false;
	if (cap.gpus > 0)
		p->ngpu_nodes++;
	if (schedulable) {
		p->nsched++;
		p->cap = hpq_res_add(p->cap, cap);
		maxcap_add(p, cap);
	}
	return true;
}

/*
 * A node of p that stays in it with its capacity becomes schedulable or
 * stops being so (an agent lost, back, drained, healthy again): accounted
 * in place if the bucket index can take it as it is, instead of a rebuild
 * that walks the pool. A whole cluster's agents reconnecting costs each
 * node O(1), not O(nodes). False if the index must be rebuilt.
 */
static bool pool_index_flip(struct sched *s, struct pool *p, uint32_t id, bool schedulable)
{
	struct node *n = &s->nodes[id];

	if (!p->nbuckets)
		return false;
	if (schedulable) {
		if (res_dim(n->cap, p->primary) >= (int64_t)p->nbuckets &&
		    p->nbuckets < BUCKETS_MAX)
			return false;
		n->schedulable = true;
		p->nsched++;
		p->cap = hpq_res_add(p->cap, n->cap);
		maxcap_add(p, n->cap);
		bucket_link(s, p, id);
	} else {
		bucket_unlink(s, p, id);
		n->schedulable = false;
		p->nsched--;
		p->cap = hpq_res_sub(p->cap, n->cap);
		maxcap_remove(s, p, n->cap);
	}
	return true;
}

static void node_charge(struct sched *s, uint32_t id, struct hpq_res r, int sign)
{
	struct node *n = &s->nodes[id];

	n->used = sign > 0 ? hpq_res_add(n->used, r) : hpq_res_sub(n->used, r);
	n->ntasks += sign;
	node_rebucket(s, id);
}

static bool node_can_host(const struct node *n, uint32_t pool, struct hpq_res per)
{
	return n->exists && n->schedulable && n->pool == pool && hpq_res_fits(per, n->cap);
}

/*
 * Best fit: walks the buckets up from the request's, so the first nodes
 * found leave the least of the primary resource free. Fills out[0..nn).
 */
static bool place(struct sched *s, struct pool *p, struct hpq_res per, uint32_t nn,
		  bool use_reserved, uint32_t *out)
{
	uint32_t b0, b, got = 0, total = 0;

	if (!p->nsched || nn > p->nsched || !hpq_res_fits(per, p->maxcap))
		return false;
	b0 = bucket_for(p, per);
	for (b = b0; b < p->nbuckets; b++)
		total += p->bcount[b];
	if (total < nn)
		return false;
	for (b = b0; b < p->nbuckets; b++) {
		int32_t i;

		for (i = p->bhead[b]; i >= 0; i = s->nodes[i].bnext) {
			const struct node *n = &s->nodes[i];

			if (n->reserved && !use_reserved)
				continue;
			if (!hpq_res_fits(per, node_avail(n)))
				continue;
			out[got++] = (uint32_t)i;
			if (got == nn)
				return true;
		}
	}
	return false;
}

/* ---- shapes ---- */

static uint32_t shape_hash(uint32_t team, uint32_t pool, uint32_t nnodes, struct hpq_res r)
{
	uint64_t h = 1469598103934665603ull;
	uint64_t v[6] = {team, pool, nnodes, (uint64_t)r.gpus, (uint64_t)r.cpus, (uint64_t)r.mem};
	int i;

	for (i = 0; i < 6; i++) {
		h ^= v[i];
		h *= 1099511628211ull;
		h ^= h >> 29;
	}
	return (uint32_t)(h ^ (h >> 32));
}

static bool shape_is(const struct shape *sh, const struct sched_task *t)
{
	return sh->tq->team == t->team && sh->tq->pool == t->pool && sh->nnodes == t->nnodes &&
	       hpq_res_eq(sh->per_node, t->per_node);
}

static void stab_grow(struct sched *s)
{
	uint32_t n = s->stab ? (s->stab_mask + 1) * 2 : 64, i;
	struct shape **tab = xcalloc(n, sizeof(*tab));

	if (s->stab) {
		for (i = 0; i <= s->stab_mask; i++) {
			struct shape *sh = s->stab[i], *next;

			for (; sh; sh = next) {
				next = sh->hnext;
				sh->hnext = tab[sh->hash & (n - 1)];
				tab[sh->hash & (n - 1)] = sh;
			}
		}
		free(s->stab);
	}
	s->stab = tab;
	s->stab_mask = n - 1;
}

static struct shape *shape_find(const struct sched *s, const struct sched_task *t)
{
	uint32_t h = shape_hash(t->team, t->pool, t->nnodes, t->per_node);
	struct shape *sh;

	if (!s->stab)
		return NULL;
	for (sh = s->stab[h & s->stab_mask]; sh; sh = sh->hnext)
		if (sh->hash == h && shape_is(sh, t))
			return sh;
	return NULL;
}

static struct shape *shape_get(struct sched *s, struct tq *q, const struct sched_task *t)
{
	struct shape *sh = shape_find(s, t);

	if (sh)
		return sh;
	if (!s->stab || s->nshapes >= s->stab_mask)
		stab_grow(s);
	sh = xcalloc(1, sizeof(*sh));
	sh->tq = q;
	sh->nnodes = t->nnodes;
	sh->per_node = t->per_node;
	sh->total = task_total(t);
	sh->index = NOWHERE;
	sh->hash = shape_hash(t->team, t->pool, t->nnodes, t->per_node);
	sh->hnext = s->stab[sh->hash & s->stab_mask];
	s->stab[sh->hash & s->stab_mask] = sh;
	s->nshapes++;
	if (!q->nforms++) {
		q->min_pn = sh->per_node;
		q->min_total = sh->total;
	} else {
		q->min_pn = hpq_res_min(q->min_pn, sh->per_node);
		q->min_total = hpq_res_min(q->min_total, sh->total);
	}
	return sh;
}

static void shape_free(struct sched *s, struct shape *sh)
{
	struct shape **pp = &s->stab[sh->hash & s->stab_mask];

	while (*pp != sh)
		pp = &(*pp)->hnext;
	*pp = sh->hnext;
	s->nshapes--;
	sh->tq->nforms--;
	sh->tq->min_stale = true;
	free(sh->tasks.v);
	free(sh);
}

/* Adds a PENDING task to its shape (not to npending: callers count). */
static void queue_insert(struct sched *s, struct tq *q, struct sched_task *t)
{
	struct shape *sh = shape_get(s, q, t);

	t->flags = (t->flags & TF_LOW) | class_of(s, t->class_id)->weight << TF_WSHIFT;
	theap_push(&sh->tasks, t);
	if (sh->mark != MARK_NONE)
		return;
	if (sh->index == NOWHERE)
		heap_push(s, &q->shapes, sh, shape_before, shape_index);
	else
		heap_fix(s, &q->shapes, sh->index, shape_before, shape_index);
}

/* Removes a PENDING task from its shape; an emptied shape that is not set aside is freed. */
static void queue_remove_from(struct sched *s, struct tq *q, struct shape *sh,
			      struct sched_task *t)
{
	theap_remove(&sh->tasks, t->heap_index);
	t->heap_index = NOWHERE;
	if (sh->tasks.n == 0) {
		if (sh->index != NOWHERE)
			heap_remove(s, &q->shapes, sh->index, shape_before, shape_index);
		sh->index = NOWHERE;
		if (sh->mark == MARK_NONE)
			shape_free(s, sh);
	} else if (sh->index != NOWHERE) {
		heap_fix(s, &q->shapes, sh->index, shape_before, shape_index);
	}
}

static void queue_remove(struct sched *s, struct tq *q, struct sched_task *t)
{
	struct shape *sh = shape_find(s, t);

	if (!sh)
		hpq_fatal("sched: pending task %llu is in no queue", (unsigned long long)t->id);
	queue_remove_from(s, q, sh, t);
}

/* ---- reservation ---- */

/*
 * Any change of the reservation (another holder, other nodes, none) may let
 * work start that it held back, in this cycle or earlier ones: the pool is
 * gone over again (resv_moved; see pool_cycle).
 */
static void resv_clear(struct sched *s, struct pool *p)
{
	uint32_t i;

	s->nodes_gen++;
	if (p->resv)
		p->resv_moved = true;
	for (i = 0; i < p->nresv; i++)
		s->nodes[p->resv_nodes[i]].reserved = false;
	p->nresv = 0;
	p->resv = NULL;
}

/*
 * Reserves for t the nodes able to host it that are closest to fitting it.
 * A task that cannot get enough of them (larger than the healthy nodes)
 * gets nothing; it does not take the reservation from its holder, and a
 * holder in that case loses it. Returns whether anything changed.
 */
static bool resv_pick(struct sched *s, struct pool *p, struct sched_task *t)
{
	uint32_t b, i, n = 0, old = p->nresv;
	bool same;

	if (!p->nsched || t->nnodes > p->nsched || !hpq_res_fits(t->per_node, p->maxcap)) {
		if (p->resv != t)
			return false;
		resv_clear(s, p);
		return old > 0;
	}
	nodebuf_reserve(s, p->nnodes + t->nnodes);
	for (b = p->nbuckets; b-- > 0 && n < t->nnodes;) {
		int32_t k;

		for (k = p->bhead[b]; k >= 0 && n < t->nnodes; k = s->nodes[k].bnext)
			if (hpq_res_fits(t->per_node, s->nodes[k].cap))
				s->nodebuf2[n++] = (uint32_t)k;
	}
	if (n < t->nnodes) {
		if (p->resv != t)
			return false;
		resv_clear(s, p);
		return old > 0;
	}
	same = p->resv == t && old == n;
	for (i = 0; i < n && same; i++)
		same = s->nodes[s->nodebuf2[i]].reserved;
	if (same)
		return false;
	resv_clear(s, p);
	grow((void **)&p->resv_nodes, &p->resv_cap, n, sizeof(*p->resv_nodes));
	memcpy(p->resv_nodes, s->nodebuf2, n * sizeof(*p->resv_nodes));
	for (i = 0; i < n; i++)
		s->nodes[p->resv_nodes[i]].reserved = true;
	p->nresv = n;
	p->resv = t;
	p->resv_moved = true;
	return true;
}

/* Notes how t, holding the reservation, would be admitted. */
static void resv_note(struct pool *p, const struct tq *q, const struct sched_task *t, enum adm a)
{
	struct hpq_res eff = tq_eff(q), g = q->quota.guarantee;

	p->resv_guarantee = a == ADM_GUARANTEE;
	p->resv_borrow = hpq_res_sub(hpq_res_sub_floor(hpq_res_add(eff, task_total(t)), g),
				     hpq_res_sub_floor(eff, g));
}

static void resv_offer(struct sched *s, struct pool *p, struct tq *q, struct sched_task *t,
		       enum adm a)
{
	if ((!p->resv || outranks(s, t, p->resv)) && resv_pick(s, p, t))
		resv_note(p, q, t, a);
}

/*
 * Reserved nodes are off limits to work of lower rank, except that a task
 * within its guarantee is never held back for a task that borrows.
 */
static bool may_use_reserved(const struct sched *s, const struct pool *p,
			     const struct sched_task *t, enum adm a)
{
	return !p->resv || p->resv == t || outranks(s, t, p->resv) ||
	       (a == ADM_GUARANTEE && !p->resv_guarantee);
}

/* ---- starting and releasing ---- */

static bool task_valid(const struct sched_task *t);
static void task_enqueue(struct sched *s, struct sched_task *t);

/* The successor hook's task joins its queue; an invalid one is dropped
 * (the caller sees it still SCHED_NONE). */
static void successor_enqueue(struct sched *s, struct sched_task *n)
{
	if (n && task_valid(n))
		task_enqueue(s, n);
}

/* A one-node task's node is in the task itself (node_one). */
static void task_nodes_set(struct sched_task *t, const uint32_t *nodes)
{
	t->nodes = t->nnodes == 1 ? &t->node_one : xreallocarray(NULL, t->nnodes, sizeof(*t->nodes));
	memcpy(t->nodes, nodes, t->nnodes * sizeof(*t->nodes));
}

static void task_nodes_free(struct sched_task *t)
{
	if (t->nodes != &t->node_one)
		free(t->nodes);
	t->nodes = NULL;
}

static void task_start(struct sched *s, struct pool *p, struct tq *q, struct sched_task *t,
		       const uint32_t *nodes)
{
	uint32_t i;

	task_nodes_set(t, nodes);
	for (i = 0; i < t->nnodes; i++)
		node_charge(s, nodes[i], t->per_node, 1);
	q->used = hpq_res_add(q->used, task_total(t));
	tq_account(s, p, q);
	q->npending--;
	tq_run_add(q, t);
	tq_cls_charge(q, t, 1);
	t->state = SCHED_RUNNING;
	t->start_ms = s->now;
	if (p->resv == t)
		resv_clear(s, p);
	decide(s, SCHED_START, t, NULL, SCHED_CAUSE_NONE);
	if (t->successor && s->successor)
		successor_enqueue(s, s->successor(s->successor_ctx, t));
}

/* Starts the head of sh (the top shape of q) on nodes. */
static void start_head(struct sched *s, struct pool *p, struct tq *q, struct shape *sh,
		       const uint32_t *nodes)
{
	struct sched_task *t = shape_head(sh);

	queue_remove_from(s, q, sh, t);
	task_start(s, p, q, t, nodes);
}

static struct plan *plan_of(const struct sched *s, const struct sched_task *b)
{
	return s->plans[b->heap_index];
}

static void plan_drop_victim(struct plan *pl, struct sched_task *v)
{
	uint32_t i;

	for (i = 0; i < pl->nvictims; i++) {
		if (pl->victims[i] == v) {
			pl->victims[i] = pl->victims[--pl->nvictims];
			break;
		}
	}
	v->preempting_for = NULL;
}

/* Releases what a RUNNING or PREEMPTING task holds. */
static void task_release(struct sched *s, struct sched_task *t)
{
	struct pool *p = s->pools[t->pool];
	struct tq *q = tq_find(p, t->team);
	struct hpq_res total = task_total(t);
	uint32_t i;

	for (i = 0; i < t->nnodes; i++) {
		struct node *n = &s->nodes[t->nodes[i]];

		if (t->state == SCHED_PREEMPTING)
			n->leaving = hpq_res_sub(n->leaving, t->per_node);
		node_charge(s, t->nodes[i], t->per_node, -1);
	}
	task_nodes_free(t);
	q->used = hpq_res_sub(q->used, total);
	if (t->state == SCHED_PREEMPTING)
		q->leaving = hpq_res_sub(q->leaving, total);
	tq_account(s, p, q);
	tq_run_remove(q, t);
	if (t->state == SCHED_RUNNING)
		tq_cls_charge(q, t, -1);
	if (t->preempting_for)
		plan_drop_victim(plan_of(s, t->preempting_for), t);
	pool_dirty_all(s, p);
}

static void plan_remove(struct sched *s, struct plan *pl)
{
	uint32_t i = pl->b->heap_index;

	s->plans[i] = s->plans[--s->nplans];
	if (i < s->nplans)
		s->plans[i]->b->heap_index = i;
	free(pl->nodes);
	free(pl->victims);
	free(pl);
}

/* Gives back what a plan set aside: the claims on its nodes and its team's claim. */
static void plan_release_claims(struct sched *s, struct plan *pl)
{
	struct sched_task *b = pl->b;
	struct pool *p = s->pools[pl->pool];
	struct tq *q = tq_find(p, b->team);
	uint32_t i;

	for (i = 0; i < b->nnodes; i++) {
		struct node *n = &s->nodes[pl->nodes[i]];

		n->claim = hpq_res_sub(n->claim, b->per_node);
		node_rebucket(s, pl->nodes[i]);
	}
	q->claim = hpq_res_sub(q->claim, task_total(b));
	tq_account(s, p, q);
}

/* The beneficiary gives up its plan: back into its queue; the victims keep stopping. */
static void plan_cancel(struct sched *s, struct plan *pl, bool requeue)
{
	struct sched_task *b = pl->b;
	struct pool *p = s->pools[pl->pool];
	struct tq *q = tq_find(p, b->team);
	uint32_t i;

	plan_release_claims(s, pl);
	for (i = 0; i < pl->nvictims; i++)
		pl->victims[i]->preempting_for = NULL;
	plan_remove(s, pl);
	b->flags &= ~TF_PLANNED;
	b->heap_index = NOWHERE;
	if (requeue) {
		queue_insert(s, q, b);
		tq_dirty(s, p, q);
	}
}

/* ---- preemption ---- */

static void touch(struct sched *s, uint32_t id)
{
	struct node *n = &s->nodes[id];

	if (n->touched)
		return;
	n->touched = true;
	n->freed = HPQ_RES_ZERO;
	grow((void **)&s->touched, &s->touched_cap, s->ntouched + 1, sizeof(*s->touched));
	s->touched[s->ntouched++] = id;
}

static void untouch_all(struct sched *s)
{
	uint32_t i;

	for (i = 0; i < s->ntouched; i++)
		s->nodes[s->touched[i]].touched = false;
	s->ntouched = 0;
}

struct search {
	struct pool *p;
	struct tq *bq;
	struct sched_task *b;
	enum sched_preempt_cause cause;
	uint32_t base;           /* nodes that fit without victims */
	uint32_t fit;            /* base + touched nodes that fit with what victims free */
	struct hpq_res vsum;     /* sum of chosen victims of b's own team */
};

static bool node_fits_freed(const struct node *n, struct hpq_res per)
{
	return hpq_res_fits(per, hpq_res_add(node_avail(n), n->freed));
}

/* Adds (sign 1) or removes (sign -1) victim v from the search's view. */
static void search_apply(struct sched *s, struct search *se, struct sched_task *v, int sign)
{
	uint32_t i;

	for (i = 0; i < v->nnodes; i++) {
		struct node *n = &s->nodes[v->nodes[i]];
		bool before, after;

		if (!node_can_host(n, se->p->id, se->b->per_node))
			continue;
		touch(s, v->nodes[i]);
		before = node_fits_freed(n, se->b->per_node);
		if (sign > 0)
			n->freed = hpq_res_add(n->freed, v->per_node);
		else
			n->freed = hpq_res_sub(n->freed, v->per_node);
		after = node_fits_freed(n, se->b->per_node);
		if (before != after)
			se->fit += after ? 1 : -1;
	}
	if (v->team == se->b->team) {
		if (sign > 0)
			se->vsum = hpq_res_add(se->vsum, task_total(v));
		else
			se->vsum = hpq_res_sub(se->vsum, task_total(v));
	}
}

static bool search_done(const struct sched *s, const struct search *se)
{
	enum adm a;

	if (se->fit < se->b->nnodes)
		return false;
	if (se->cause != SCHED_CAUSE_PRIORITY)
		return true;
	a = admit(se->p, se->bq, hpq_res_sub(tq_eff(se->bq), se->vsum), task_total(se->b));
	return a == ADM_GUARANTEE || a == ADM_IDLE;
}

static bool victim_eligible(struct sched *s, struct pool *p, const struct sched_task *v,
			    const struct sched_task *b)
{
	const struct class_info *c = class_of(s, v->class_id);
	uint32_t i;

	/* never one that started in this very cycle (or millisecond) */
	if (v->state != SCHED_RUNNING || !c->preemptible || v->start_ms >= s->now)
		return false;
	if (s->pol.min_runtime_ms > 0 && s->now - v->start_ms < s->pol.min_runtime_ms) {
		int64_t at = v->start_ms + s->pol.min_runtime_ms;

		if (at < p->retry_at)
			p->retry_at = at;
		return false;
	}
	if (v->team == b->team)
		return true; /* may be needed for the team's admission alone */
	for (i = 0; i < v->nnodes; i++)
		if (node_can_host(&s->nodes[v->nodes[i]], p->id, b->per_node))
			return true;
	return false;
}

/* What making b fit on one node costs: the rank of the most valuable victim needed, then their number. */
struct ncost {
	uint32_t worst, count, id;
};

static int ncost_cmp(const void *a, const void *b)
{
	const struct ncost *x = a, *y = b;

	if (x->worst != y->worst)
		return x->worst < y->worst ? -1 : 1;
	if (x->count != y->count)
		return x->count < y->count ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Takes, in victim order, the victims on node id that are not chosen yet
 * (for RECLAIM only while their team is over its guarantee) until b fits
 * there. Returns whether it fits; then *ret_cost says what it takes. With
 * take, the victims are chosen (and their teams' vleft stays charged),
 * else everything is as before.
 */
static bool node_try(struct sched *s, struct search *se, uint32_t id, bool take,
		     struct ncost *ret_cost)
{
	struct node *n = &s->nodes[id];
	struct hpq_res freed = n->freed;
	uint32_t k, lo = s->vstart[n->ti], hi = s->vstart[n->ti + 1], end;
	struct ncost c = {0, 0, id};
	bool fits = node_fits_freed(n, se->b->per_node);

	for (k = lo; k < hi && !fits; k++) {
		struct sched_task *v = s->vord.v[s->vlist[k]];

		if (v->flags & (TF_CHOSEN | TF_TRY))
			continue;
		if (se->cause == SCHED_CAUSE_RECLAIM) {
			struct tq *vq = tq_find(se->p, v->team);

			if (!over_guarantee(se->p, vq, vq->vleft))
				continue;
			vq->vleft = hpq_res_sub(vq->vleft, task_total(v));
		}
		v->flags |= TF_TRY;
		freed = hpq_res_add(freed, v->per_node);
		c.worst = s->vlist[k];
		c.count++;
		fits = hpq_res_fits(se->b->per_node, hpq_res_add(node_avail(n), freed));
	}
	end = k;
	for (k = lo; k < end; k++) {
		struct sched_task *v = s->vord.v[s->vlist[k]];

		if (!(v->flags & TF_TRY))
			continue;
		v->flags &= ~TF_TRY;
		if (take && fits) {
			v->flags |= TF_CHOSEN;
			search_apply(s, se, v, 1);
		} else if (se->cause == SCHED_CAUSE_RECLAIM) {
			struct tq *vq = tq_find(se->p, v->team);

			vq->vleft = hpq_res_add(vq->vleft, task_total(v));
		}
	}
	if (fits)
		*ret_cost = c;
	return fits;
}

static void sort_by_leftover(struct sched *s, struct pool *p, uint32_t *ids, uint32_t n,
			     struct hpq_res per)
{
	uint32_t i, j;

	/* insertion sort: candidate lists are short (at most base + touched nodes) */
	for (i = 1; i < n; i++) {
		uint32_t id = ids[i];
		const struct node *x = &s->nodes[id];
		int64_t lx = res_dim(hpq_res_add(node_avail(x), x->freed), p->primary) -
			     res_dim(per, p->primary);

		for (j = i; j > 0; j--) {
			const struct node *y = &s->nodes[ids[j - 1]];
			int64_t ly = res_dim(hpq_res_add(node_avail(y), y->freed), p->primary) -
				     res_dim(per, p->primary);

			if (ly <= lx)
				break;
			ids[j] = ids[j - 1];
		}
		ids[j] = id;
	}
}

/*
 * Tries to make room for b (the head of a shape that has been set aside)
 * by preempting: RECLAIM takes tasks of other teams that are over their
 * guarantee in this pool; PRIORITY takes b's team's own lower-class tasks.
 * First greedy in victim order (cheap: it stops as soon as b fits). When
 * that fails, victims spread over several nodes may have used up what their
 * teams may give back without making any node fit; then victims are chosen
 * per node: for every node, what taking the victims on it in victim order
 * until b fits there would cost, and the cheapest nodes (the most valuable
 * victim needed, then how many) are emptied first. Whatever b still needs
 * (its team's admission for PRIORITY) is then taken in victim order. Every
 * victim that turns out not to be needed is dropped. On success b is
 * planned on its nodes and the victims are PREEMPTING.
 */
static bool try_preempt(struct sched *s, struct pool *p, struct tq *bq, struct sched_task *b,
			enum sched_preempt_cause cause)
{
	struct search se = {p, bq, b, cause, 0, 0, HPQ_RES_ZERO};
	uint32_t bw = class_of(s, b->class_id)->weight;
	uint32_t i, j, nplan = 0, b0, bk, nt, nv, nc;
	struct plan *pl;
	bool ok = false;

	if (!p->nsched || b->nnodes > p->nsched || !hpq_res_fits(b->per_node, p->maxcap))
		return false;

	/* 1. candidates; for priority, not even freeing all lower classes may admit b */
	if (cause == SCHED_CAUSE_PRIORITY) {
		enum adm a = admit(p, bq, hpq_res_sub(tq_eff(bq), tq_lower_usage(s, bq, bw)),
				   task_total(b));

		if (a != ADM_GUARANTEE && a != ADM_IDLE)
			return false;
	}
	s->vic.n = 0;
	s->vord.n = 0;
	if (cause == SCHED_CAUSE_RECLAIM) {
		for (i = 0; i < p->ntqs; i++) {
			struct tq *q = p->tqs[i];

			if (q == bq || !over_guarantee(p, q, hpq_res_sub(q->used, q->leaving)))
				continue;
			q->vleft = hpq_res_sub(q->used, q->leaving);
			for (j = 0; j < q->nrun; j++)
				if (victim_eligible(s, p, q->run[j], b))
					array_push(&s->vic, q->run[j]);
		}
	} else {
		for (j = 0; j < bq->nrun; j++) {
			struct sched_task *v = bq->run[j];

			if (class_of(s, v->class_id)->weight < bw && victim_eligible(s, p, v, b))
				array_push(&s->vic, v);
		}
	}
	if (!s->vic.n)
		return false;

	/* 2. nodes that already fit (other plans' claims respected, reservations not) */
	nodebuf_reserve(s, p->nnodes + b->nnodes);
	b0 = bucket_for(p, b->per_node);
	for (bk = b0; bk < p->nbuckets && se.base < b->nnodes; bk++) {
		int32_t k;

		for (k = p->bhead[bk]; k >= 0 && se.base < b->nnodes; k = s->nodes[k].bnext)
			if (hpq_res_fits(b->per_node, node_avail(&s->nodes[k])))
				s->nodebuf[se.base++] = (uint32_t)k;
	}
	se.fit = se.base;

	/* 3. fail fast: not even all of them together would do */
	for (i = 0; i < s->vic.n; i++)
		search_apply(s, &se, s->vic.v[i], 1);
	if (!search_done(s, &se))
		goto out;
	for (i = 0; i < s->ntouched; i++)
		s->nodes[s->touched[i]].freed = HPQ_RES_ZERO;
	se.fit = se.base;
	se.vsum = HPQ_RES_ZERO;
	heap_build(s, &s->vic, victim_before, NULL);

	/* 4. greedy in victim order: usually enough, and cheap as it stops early */
	while (!search_done(s, &se) && s->vic.n) {
		struct sched_task *v = s->vic.v[0];

		heap_remove(s, &s->vic, 0, victim_before, NULL);
		array_push(&s->vord, v);
		if (cause == SCHED_CAUSE_RECLAIM) {
			struct tq *vq = tq_find(p, v->team);

			if (!over_guarantee(p, vq, vq->vleft))
				continue;
			vq->vleft = hpq_res_sub(vq->vleft, task_total(v));
		}
		v->flags |= TF_CHOSEN;
		search_apply(s, &se, v, 1);
	}
	if (search_done(s, &se))
		goto chosen;

	/*
	 * 5. it failed, and every candidate is now in vord, in victim order: the
	 * victims it took may be spread over nodes none of which fits. Undo, and
	 * list per touched node its victims in victim order (count, then place).
	 */
	for (i = 0; i < s->vord.n; i++) {
		struct sched_task *v = s->vord.v[i];

		if (!(v->flags & TF_CHOSEN))
			continue;
		v->flags &= ~TF_CHOSEN;
		search_apply(s, &se, v, -1);
		if (cause == SCHED_CAUSE_RECLAIM) {
			struct tq *vq = tq_find(p, v->team);

			vq->vleft = hpq_res_add(vq->vleft, task_total(v));
		}
	}
	nt = s->ntouched;
	grow((void **)&s->vstart, &s->vstart_cap, nt + 1, sizeof(*s->vstart));
	memset(s->vstart, 0, (nt + 1) * sizeof(*s->vstart));
	for (i = 0; i < nt; i++)
		s->nodes[s->touched[i]].ti = i;
	for (i = nv = 0; i < s->vord.n; i++) {
		const struct sched_task *v = s->vord.v[i];

		for (j = 0; j < v->nnodes; j++)
			if (s->nodes[v->nodes[j]].touched) {
				s->vstart[s->nodes[v->nodes[j]].ti + 1]++;
				nv++;
			}
	}
	for (i = 0; i < nt; i++)
		s->vstart[i + 1] += s->vstart[i];
	grow((void **)&s->vlist, &s->vlist_cap, nv ? nv : 1, sizeof(*s->vlist));
	for (i = 0; i < s->vord.n; i++) {
		const struct sched_task *v = s->vord.v[i];

		for (j = 0; j < v->nnodes; j++)
			if (s->nodes[v->nodes[j]].touched)
				s->vlist[s->vstart[s->nodes[v->nodes[j]].ti]++] = i;
	}
	for (i = nt; i > 0; i--)
		s->vstart[i] = s->vstart[i - 1];
	s->vstart[0] = 0;

	/* 6. the cheapest nodes first, each emptied by its own victims */
	grow((void **)&s->ncost, &s->ncost_cap, nt ? nt : 1, sizeof(*s->ncost));
	for (i = nc = 0; i < nt; i++) {
		const struct node *n = &s->nodes[s->touched[i]];

		if (!hpq_res_fits(b->per_node, node_avail(n)) &&
		    node_try(s, &se, s->touched[i], false, &s->ncost[nc]))
			nc++;
	}
	qsort(s->ncost, nc, sizeof(*s->ncost), ncost_cmp);
	for (i = 0; i < nc && se.fit < b->nnodes; i++) {
		struct ncost c;

		if (!node_fits_freed(&s->nodes[s->ncost[i].id], b->per_node))
			node_try(s, &se, s->ncost[i].id, true, &c);
	}

	/* 7. whatever is still missing, in victim order */
	for (i = 0; i < s->vord.n && !search_done(s, &se); i++) {
		struct sched_task *v = s->vord.v[i];

		if (v->flags & TF_CHOSEN)
			continue;
		if (cause == SCHED_CAUSE_RECLAIM) {
			struct tq *vq = tq_find(p, v->team);

			if (!over_guarantee(p, vq, vq->vleft))
				continue;
			vq->vleft = hpq_res_sub(vq->vleft, task_total(v));
		}
		v->flags |= TF_CHOSEN;
		search_apply(s, &se, v, 1);
	}
	if (!search_done(s, &se))
		goto out;
chosen:
	s->chosen.n = 0;
	for (i = 0; i < s->vord.n; i++) {
		struct sched_task *v = s->vord.v[i];

		if (v->flags & TF_CHOSEN) {
			v->flags &= ~TF_CHOSEN;
			array_push(&s->chosen, v);
		}
	}

	/* 8. minimality: drop, most valuable first, every victim not needed */
	for (i = s->chosen.n; i-- > 0;) {
		struct sched_task *v = s->chosen.v[i];

		search_apply(s, &se, v, -1);
		if (search_done(s, &se))
			s->chosen.v[i] = NULL;
		else
			search_apply(s, &se, v, 1);
	}
	for (i = j = 0; i < s->chosen.n; i++)
		if (s->chosen.v[i])
			s->chosen.v[j++] = s->chosen.v[i];
	s->chosen.n = j;

	/* 9. nodes: those that fit already, then the tightest of those made free */
	for (i = 0; i < se.base && nplan < b->nnodes; i++)
		s->nodebuf2[nplan++] = s->nodebuf[i];
	if (nplan < b->nnodes) {
		nc = 0;
		for (i = 0; i < s->ntouched; i++) {
			const struct node *n = &s->nodes[s->touched[i]];
			bool in_base = false;

			if (!node_fits_freed(n, b->per_node) || hpq_res_is_zero(n->freed))
				continue;
			for (j = 0; j < se.base; j++)
				in_base |= s->nodebuf[j] == s->touched[i];
			if (!in_base)
				s->nodebuf[se.base + nc++] = s->touched[i];
		}
		sort_by_leftover(s, p, s->nodebuf + se.base, nc, b->per_node);
		for (i = 0; i < nc && nplan < b->nnodes; i++)
			s->nodebuf2[nplan++] = s->nodebuf[se.base + i];
	}
	if (nplan < b->nnodes || !s->chosen.n)
		goto out;

	/* 10. a victim on none of the chosen nodes stays only if the team's admission needs it */
	for (i = s->chosen.n; i-- > 0;) {
		struct sched_task *v = s->chosen.v[i];
		struct hpq_res vsum = se.vsum;
		bool on_plan = false;
		enum adm a;
		uint32_t k;

		for (j = 0; j < v->nnodes && !on_plan; j++)
			for (k = 0; k < nplan; k++)
				on_plan |= v->nodes[j] == s->nodebuf2[k];
		if (on_plan)
			continue;
		if (cause == SCHED_CAUSE_PRIORITY) {
			if (v->team == b->team)
				vsum = hpq_res_sub(vsum, task_total(v));
			a = admit(p, bq, hpq_res_sub(tq_eff(bq), vsum), task_total(b));
			if (a != ADM_GUARANTEE && a != ADM_IDLE)
				continue;
		}
		se.vsum = vsum;
		memmove(&s->chosen.v[i], &s->chosen.v[i + 1],
			(s->chosen.n - i - 1) * sizeof(*s->chosen.v));
		s->chosen.n--;
	}
	if (!s->chosen.n)
		goto out;

	/* 11. commit */
	pl = xcalloc(1, sizeof(*pl));
	pl->b = b;
	pl->pool = p->id;
	pl->nodes = xreallocarray(NULL, b->nnodes, sizeof(*pl->nodes));
	memcpy(pl->nodes, s->nodebuf2, b->nnodes * sizeof(*pl->nodes));
	pl->nvictims = s->chosen.n;
	pl->victims = xreallocarray(NULL, pl->nvictims, sizeof(*pl->victims));
	memcpy(pl->victims, s->chosen.v, pl->nvictims * sizeof(*pl->victims));
	for (i = 0; i < b->nnodes; i++) {
		struct node *n = &s->nodes[pl->nodes[i]];

		n->claim = hpq_res_add(n->claim, b->per_node);
		node_rebucket(s, pl->nodes[i]);
	}
	bq->claim = hpq_res_add(bq->claim, task_total(b));
	tq_account(s, p, bq);
	queue_remove(s, bq, b);
	grow((void **)&s->plans, &s->plans_cap, s->nplans + 1, sizeof(*s->plans));
	b->flags |= TF_PLANNED;
	b->heap_index = s->nplans;
	s->plans[s->nplans++] = pl;
	for (i = 0; i < pl->nvictims; i++) {
		struct sched_task *v = pl->victims[i];
		struct tq *vq = tq_find(p, v->team);

		for (j = 0; j < v->nnodes; j++) {
			struct node *n = &s->nodes[v->nodes[j]];

			n->leaving = hpq_res_add(n->leaving, v->per_node);
		}
		v->state = SCHED_PREEMPTING;
		tq_cls_charge(vq, v, -1);
		vq->minrun_stale = true;
		v->preempting_for = b;
		vq->leaving = hpq_res_add(vq->leaving, task_total(v));
		decide(s, SCHED_PREEMPT, v, b, cause);
	}
	if (p->resv == b)
		resv_clear(s, p);
	ok = true;
out:
	for (i = 0; i < s->vord.n; i++)
		((struct sched_task *)s->vord.v[i])->flags &= ~(uint32_t)(TF_CHOSEN | TF_TRY);
	untouch_all(s);
	return ok;
}

/* ---- the cycle ---- */

/*
 * Beneficiaries whose victims are gone start on their nodes. A plan is
 * dropped (its task queued again) when a node went away, or when its nodes
 * cannot hold it even once every task being preempted there has stopped
 * (capacity shrank, say); while other plans' victims still stop on its
 * nodes, it waits.
 */
static void plans_progress(struct sched *s, struct pool *p)
{
	uint32_t i, k;

	for (i = s->nplans; i-- > 0;) {
		struct plan *pl = s->plans[i];
		struct sched_task *b = pl->b;
		struct tq *q = tq_find(p, b->team);
		bool broken = false, fits = true, will_fit = true;

		if (pl->pool != p->id)
			continue;
		for (k = 0; k < b->nnodes; k++) {
			const struct node *n = &s->nodes[pl->nodes[k]];
			struct hpq_res avail;

			if (!n->exists || !n->schedulable || n->pool != p->id) {
				broken = true;
				break;
			}
			/* what is free to b: all but others' use and claims */
			avail = hpq_res_sub(n->cap, hpq_res_add(n->used,
								hpq_res_sub(n->claim, b->per_node)));
			fits &= hpq_res_fits(b->per_node, avail);
			will_fit &= hpq_res_fits(b->per_node, hpq_res_add(avail, n->leaving));
		}
		if (broken || (!pl->nvictims && !will_fit)) {
			plan_cancel(s, pl, true);
		} else if (!pl->nvictims && fits) {
			memcpy(s->nodebuf2, pl->nodes, b->nnodes * sizeof(*pl->nodes));
			plan_release_claims(s, pl);
			plan_remove(s, pl);
			b->flags &= ~TF_PLANNED;
			task_start(s, p, q, b, s->nodebuf2);
		}
	}
}

static void aside(struct sched *s, struct tq *q, struct shape *sh, uint32_t mark)
{
	heap_remove(s, &q->shapes, sh->index, shape_before, shape_index);
	sh->index = NOWHERE;
	sh->mark = mark;
	array_push(&s->aside, sh);

}

/* Fair-share numerator of q: its dominant share of the pool's idle compute. */
static double tq_share(const struct sched *s, const struct pool *p, struct tq *q)
{
	double m = 0;
	int d;

	hist_advance(s, q);
	for (d = 0; d < NDIMS; d++) {
		double v;

		if (!(p->share_dims >> d & 1))
			continue;
		v = ((double)res_dim(q->borrowed, d) + q->hist[d]) /
		    (double)hpq__max64(res_dim(p->idle_tot, d), 1);
		if (v > m)
			m = v;
	}
	return m;
}

/* Most of the primary resource free on one node, an upper bound; -1 if none. */
static int64_t pool_max_free(const struct pool *p)
{
	uint32_t b;

	for (b = p->nbuckets; b-- > 0;)
		if (p->bcount[b])
			return b + 1 == BUCKETS_MAX ? INT64_MAX : (int64_t)b;
	return -1;
}

static bool pool_has_borrowers(const struct pool *p)
{
	int d;

	for (d = 0; d < NDIMS; d++)
		if (governed(p, d) && res_dim(p->borrowed, d) > 0)
			return true;
	return false;
}

/* Only between cycles: shapes set aside are not in the heap. */
static void tq_refresh_mins(struct tq *q)
{
	uint32_t i;

	if (!q->min_stale || !q->shapes.n)
		return;
	q->min_stale = false;
	for (i = 0; i < q->shapes.n; i++) {
		const struct shape *sh = q->shapes.v[i];

		q->min_pn = i ? hpq_res_min(q->min_pn, sh->per_node) : sh->per_node;
		q->min_total = i ? hpq_res_min(q->min_total, sh->total) : sh->total;
	}
}

static uint32_t tq_minrun(const struct sched *s, struct tq *q)
{
	uint32_t i, w = UINT32_MAX;

	if (!q->minrun_stale)
		return q->minrun_w;
	for (i = 0; i < q->nrun; i++) {
		const struct sched_task *t = q->run[i];
		const struct class_info *c = class_of(s, t->class_id);

		if (t->state == SCHED_RUNNING && c->preemptible && c->weight < w)
			w = c->weight;
	}
	q->minrun_w = w;
	q->minrun_stale = false;
	return w;
}

static bool may_preempt_own(const struct sched *s, struct tq *q, const struct sched_task *t)
{
	return q->team < s->nteams && s->teams[q->team].preempt_own &&
	       class_of(s, t->class_id)->weight > tq_minrun(s, q);
}

enum maybe {
	MAYBE_NOT,
	MAYBE_PRIORITY, /* only by preempting its own lower-class work */
	MAYBE_IDLE,     /* on idle compute only: nothing fits in its guarantee */
	MAYBE_START,    /* perhaps within its guarantee, or by reclaiming it */
};

/*
 * Can q possibly start something, or preempt for something, right now?
 * A cheap necessary condition from its smallest request (component-wise
 * min over its shapes): admission is monotone in the request, and no
 * node has more free than pool_max_free. Teams that fail it cost O(1).
 */
static enum maybe tq_maybe(const struct sched *s, const struct pool *p, struct tq *q,
			   int64_t maxfree)
{
	bool place_ok;
	enum adm a;

	if (!q->shapes.n)
		return MAYBE_NOT;
	place_ok = res_dim(q->min_pn, p->primary) <= maxfree &&
		   hpq_res_fits(q->min_pn, p->maxcap);
	a = admit(p, q, tq_eff(q), q->min_total);
	if (a == ADM_IDLE && place_ok)
		return MAYBE_IDLE;
	if (a == ADM_GUARANTEE && (place_ok || pool_has_borrowers(p)))
		return MAYBE_START;
	return may_preempt_own(s, q, shape_head(q->shapes.v[0])) ? MAYBE_PRIORITY : MAYBE_NOT;
}

/* Drops q from the cycle heap when it cannot start anything more in this phase. */
static bool cand_skip(struct sched *s, struct pool *p, struct tq *q, enum maybe need)
{
	if (tq_maybe(s, p, q, pool_max_free(p)) >= need)
		return false;
	heap_remove(s, &s->cand, q->ci, cand_before, cand_index);
	q->ci = NOWHERE;
	return true;
}

enum phase {
	PHASE_GUARANTEE,
	PHASE_IDLE,
};

/*
 * Priority preemption (docs/design.md §4): t cannot be admitted or placed, not even
 * on idle compute (which only shrinks during a cycle), so its team's own
 * lower-class work may make room, at once: its lower classes queued
 * behind it must not start first only to be preempted in the next cycle.
 */
static bool preempt_own(struct sched *s, struct pool *p, struct tq *q, struct sched_task *t)
{
	q->tried_own = true;
	return may_preempt_own(s, q, t) && try_preempt(s, p, q, t, SCHED_CAUSE_PRIORITY);
}

/*
 * Sets aside q's shapes that cannot start now, in queue order, until its
 * top shape can (its nodes are then in s->nodebuf). Within a cycle nothing
 * that could not start becomes able to, so they stay aside until the end.
 * Phase 1 defers what needs idle compute to phase 3 and reclaims for work
 * within the guarantee that does not fit; both offer the reservation.
 */
static bool tq_advance(struct sched *s, struct pool *p, struct tq *q, enum phase ph)
{
	while (q->shapes.n) {
		struct shape *sh = q->shapes.v[0];
		struct sched_task *t = shape_head(sh);
		enum adm a = admit_task(s, p, q, t, sh->total);

		if (a == ADM_IDLE && ph == PHASE_GUARANTEE) {
			aside(s, q, sh, MARK_DEFER);
			continue;
		}
		if (a != ADM_GUARANTEE && a != ADM_IDLE) {
			if (p->resv == t)
				resv_clear(s, p);
			aside(s, q, sh, MARK_BLOCKED);
			preempt_own(s, p, q, t);
			continue;
		}
		if (place(s, p, sh->per_node, sh->nnodes, may_use_reserved(s, p, t, a), s->nodebuf))
			return true;
		aside(s, q, sh, MARK_BLOCKED);
		if (a == ADM_GUARANTEE && try_preempt(s, p, q, t, SCHED_CAUSE_RECLAIM))
			continue;
		if (!preempt_own(s, p, q, t))
			resv_offer(s, p, q, t, a);
	}
	return false;
}

/*
 * Starts work from the candidate tqs in the cycle heap's order. The top
 * tq first moves past what it cannot start; if another tq now ranks first,
 * that one goes, else its top task starts. One heap fix per step.
 */
static void run_phase(struct sched *s, struct pool *p, enum phase ph)
{
	while (s->cand.n) {
		struct tq *q = s->cand.v[0];

		if (cand_skip(s, p, q, ph == PHASE_GUARANTEE ? MAYBE_START : MAYBE_IDLE))
			continue;
		if (!tq_advance(s, p, q, ph)) {
			heap_remove(s, &s->cand, q->ci, cand_before, cand_index);
			q->ci = NOWHERE;
			continue;
		}
		heap_fix(s, &s->cand, q->ci, cand_before, cand_index);
		if (s->cand.v[0] != q)
			continue;
		start_head(s, p, q, q->shapes.v[0], s->nodebuf);
		if (s->order == ORDER_SHARE)
			q->share = tq_share(s, p, q);
	}
}

/* Phase 1: within guarantee, in class order; reclaim when placement fails. */
static void phase_guarantee(struct sched *s, struct pool *p)
{
	s->order = ORDER_CLASS;
	heap_build(s, &s->cand, cand_before, cand_index);
	run_phase(s, p, PHASE_GUARANTEE);
}

/* Phase 3: idle compute, in fcfs or fair-share order. */
static void phase_idle(struct sched *s, struct pool *p)
{
	int64_t maxfree = pool_max_free(p);
	uint32_t i, n = 0;

	for (i = 0; i < s->aside.n; i++) {
		struct shape *sh = s->aside.v[i];

		if (sh->mark != MARK_DEFER) {
			s->aside.v[n++] = sh;
			continue;
		}
		sh->mark = MARK_NONE;
		heap_push(s, &sh->tq->shapes, sh, shape_before, shape_index);
	}
	s->aside.n = n;
	s->cand.n = 0;
	for (i = 0; i < s->visit.n; i++) {
		struct tq *q = s->visit.v[i];

		if (tq_maybe(s, p, q, maxfree) >= MAYBE_IDLE)
			array_push(&s->cand, q);
	}
	if (!s->cand.n)
		return;
	s->order = s->pol.idle == SCHED_IDLE_FCFS ? ORDER_CLASS : ORDER_SHARE;
	if (s->order == ORDER_SHARE)
		for (i = 0; i < s->cand.n; i++)
			((struct tq *)s->cand.v[i])->share = tq_share(s, p, s->cand.v[i]);
	heap_build(s, &s->cand, cand_before, cand_index);
	run_phase(s, p, PHASE_IDLE);
}

/*
 * Phase 2, for the teams that were not scanned because nothing of theirs
 * can be admitted: their best-ranked task may still preempt their own
 * lower classes. (Scanned teams tried it as their tasks were found blocked.)
 */
static void phase_priority(struct sched *s, struct pool *p)
{
	uint32_t i;

	for (i = 0; i < s->visit.n; i++) {
		struct tq *q = s->visit.v[i];

		if (q->tried_own || !q->shapes.n ||
		    tq_maybe(s, p, q, pool_max_free(p)) != MAYBE_PRIORITY)
			continue;
		preempt_own(s, p, q, shape_head(q->shapes.v[0]));
	}
}

static void restore(struct sched *s)
{
	uint32_t i;

	for (i = 0; i < s->aside.n; i++) {
		struct shape *sh = s->aside.v[i];

		sh->mark = MARK_NONE;
		if (sh->tasks.n)
			heap_push(s, &sh->tq->shapes, sh, shape_before, shape_index);
		else
			shape_free(s, sh);
	}
	s->aside.n = 0;
}

static void pool_cycle(struct sched *s, struct pool *p)
{
	int64_t maxfree;
	uint32_t i;
	bool all;

	nodebuf_reserve(s, p->nnodes + 1);
	plans_progress(s, p);
	if (p->resv) {
		/* the reservation follows capacity: its nodes may change */
		struct sched_task *t = p->resv;
		struct tq *q = tq_find(p, t->team);
		enum adm a = admit(p, q, tq_eff(q), task_total(t));

		bool g = p->resv_guarantee;
		struct hpq_res e = p->resv_borrow;

		if (a != ADM_GUARANTEE && a != ADM_IDLE) {
			resv_clear(s, p);
		} else if (resv_pick(s, p, t), p->resv) {
			resv_note(p, q, t, a);
			/* what it holds back changed with how it would be admitted */
			if (g != p->resv_guarantee || !hpq_res_eq(e, p->resv_borrow))
				p->resv_moved = true;
		}
	}
	all = p->all || p->resv_moved;
	p->resv_moved = false;
	p->all = false;
	p->queued = false;
	s->cand.n = 0;
	s->visit.n = 0;
	maxfree = pool_max_free(p);
	for (i = 0; i < (all ? p->ntqs : p->ndirty); i++) {
		struct tq *q = all ? p->tqs[i] : p->dirty[i];
		enum maybe m;

		tq_refresh_mins(q);
		m = tq_maybe(s, p, q, maxfree);
		if (m != MAYBE_NOT)
			array_push(&s->visit, q);
		if (m == MAYBE_START)
			array_push(&s->cand, q);
		q->tried_own = false;
	}
	for (i = 0; i < p->ndirty; i++)
		p->dirty[i]->dirty = false;
	p->ndirty = 0;
	for (i = 0; i < s->cand.n; i++)
		((struct tq *)s->cand.v[i])->ci = i;
	if (!p->nsched) {
		for (i = 0; i < s->cand.n; i++)
			((struct tq *)s->cand.v[i])->ci = NOWHERE;
		s->cand.n = 0;
		s->visit.n = 0;
		return;
	}
	p->share_dims = 0;
	for (i = 0; i < NDIMS; i++) {
		int64_t base = hpq__max64(res_dim(p->cap, i) - res_dim(p->gsum, i), 0);
		int64_t v = base + res_dim(p->lendable, i);

		if (governed(p, i))
			p->share_dims |= 1u << i;

		if (i == 0)
			p->idle_tot.gpus = v;
		else if (i == 1)
			p->idle_tot.cpus = v;
		else
			p->idle_tot.mem = v;
	}
	/* in a pool nobody is guaranteed anything, all use is borrowed */
	if (!p->share_dims)
		p->share_dims = 1u << p->primary;
	phase_guarantee(s, p);
	phase_idle(s, p);
	phase_priority(s, p);
	restore(s);
	/*
	 * Work held back by a reservation that has since gone (its task started
	 * or waits for victims) or moved could start now: go over the pool
	 * again, within this sched_cycle call. A reservation only moves to a
	 * higher-ranked task or goes with its task, so this ends; the bound on
	 * passes is a guard (past it, the next cycle does it).
	 */
	if (p->resv_moved && ++p->passes < 8) {
		p->resv_moved = false;
		pool_dirty_all(s, p);
	}
}

const struct sched_decision *sched_cycle(struct sched *s, int64_t now_ms, size_t *ret_n)
{
	uint32_t i;

	s->ndec = 0;
	if (now_ms > s->now)
		s->now = now_ms;
	if (s->retry_at <= s->now) {
		s->retry_at = INT64_MAX;
		for (i = 0; i < s->npools; i++) {
			struct pool *p = s->pools[i];

			if (!p)
				continue;
			if (p->retry_at <= s->now) {
				p->retry_at = INT64_MAX;
				pool_dirty_all(s, p);
			}
		}
	}
	for (i = 0; i < s->ndirty; i++) {
		struct pool *p = s->pools[s->dirty_pools[i]];

		pool_cycle(s, p);
		if (p->retry_at < s->retry_at)
			s->retry_at = p->retry_at;
	}
	for (i = 0; i < s->ndirty; i++)
		s->pools[s->dirty_pools[i]]->passes = 0;
	s->ndirty = 0;
	*ret_n = s->ndec;
	return s->dec;
}

int64_t sched_next_wakeup(const struct sched *s)
{
	return s->retry_at;
}

/* ---- model ---- */

struct sched *sched_new(const struct sched_policy *policy)
{
	struct sched *s = xcalloc(1, sizeof(*s));

	if (policy)
		s->pol = *policy;
	else
		s->pol.half_life_ms = 3600 * 1000;
	s->retry_at = INT64_MAX;
	s->nodes_gen = 1;            /* an empty fit_view (gen 0) is never current */
	return s;
}

void sched_free(struct sched *s)
{
	uint32_t i, j;

	if (!s)
		return;
	for (i = 0; i < s->nplans; i++) {
		s->plans[i]->b->flags &= ~TF_PLANNED;
		free(s->plans[i]->nodes);
		free(s->plans[i]->victims);
		free(s->plans[i]);
	}
	for (i = 0; i < s->npools; i++) {
		struct pool *p = s->pools[i];

		if (!p)
			continue;
		for (j = 0; j < p->ntqs; j++) {
			struct tq *q = p->tqs[j];
			uint32_t k;

			for (k = 0; k < q->nrun; k++)
				task_nodes_free(q->run[k]);
			free(q->run);
			free(q->cls_used);
			free(q->shapes.v);
			free(q);
		}
		free(p->by_team);
		free(p->tqs);
		free(p->nodes);
		free(p->bhead);
		free(p->bcount);
		free(p->dirty);
		free(p->resv_nodes);
		free(p->views);
		free(p);
	}
	if (s->stab) {
		for (i = 0; i <= s->stab_mask; i++) {
			struct shape *sh = s->stab[i], *next;

			for (; sh; sh = next) {
				next = sh->hnext;
				free(sh->tasks.v);
				free(sh);
			}
		}
	}
	free(s->stab);
	free(s->plans);
	free(s->pools);
	free(s->nodes);
	free(s->classes);
	free(s->teams);
	free(s->dirty_pools);
	free(s->dec);
	free(s->cand.v);
	free(s->visit.v);
	free(s->aside.v);
	free(s->vic.v);
	free(s->chosen.v);
	free(s->vord.v);
	free(s->vstart);
	free(s->vlist);
	free(s->ncost);
	free(s->nodebuf);
	free(s->nodebuf2);
	free(s->touched);
	free(s);
}

static void dirty_every_pool(struct sched *s)
{
	uint32_t i;

	for (i = 0; i < s->npools; i++)
		if (s->pools[i])
			pool_dirty_all(s, s->pools[i]);
}

void sched_set_policy(struct sched *s, const struct sched_policy *policy)
{
	uint32_t i, j;

	/* bring the histories up to now under the old half-life */
	for (i = 0; i < s->npools; i++)
		for (j = 0; s->pools[i] && j < s->pools[i]->ntqs; j++)
			hist_advance(s, s->pools[i]->tqs[j]);
	s->pol = *policy;
	dirty_every_pool(s);
}

static void reorder_all(struct sched *s)
{
	uint32_t i, j;

	for (i = 0; i < s->npools; i++)
		for (j = 0; s->pools[i] && j < s->pools[i]->ntqs; j++) {
			struct tq *q = s->pools[i]->tqs[j];
			uint32_t k;

			for (k = 0; k < q->shapes.n; k++) {
				struct shape *sh = q->shapes.v[k];
				uint32_t m;

				for (m = 0; m < sh->tasks.n; m++) {
					struct sched_task *t = sh->tasks.v[m].t;

					t->flags = (t->flags & TF_LOW) |
						   class_of(s, t->class_id)->weight << TF_WSHIFT;
				}
				theap_rekey(&sh->tasks);
			}
			heap_build(s, &q->shapes, shape_before, shape_index);
			q->minrun_stale = true;
		}
}

int sched_class_set(struct sched *s, uint32_t class_id, uint32_t weight, bool preemptible)
{
	uint32_t i, old;

	if (class_id >= ID_LIMIT || weight > UINT16_MAX)
		return HPQ_EINVAL;
	old = s->nclasses;
	grow((void **)&s->classes, &s->nclasses, class_id + 1, sizeof(*s->classes));
	for (i = old; i < s->nclasses; i++)
		s->classes[i] = class_default;
	s->classes[class_id].weight = weight;
	s->classes[class_id].preemptible = preemptible;
	reorder_all(s);
	dirty_every_pool(s);
	return 0;
}

static struct team_info *team_get(struct sched *s, uint32_t team)
{
	uint32_t i, old = s->nteams;

	grow((void **)&s->teams, &s->nteams, team + 1, sizeof(*s->teams));
	for (i = old; i < s->nteams; i++) {
		s->teams[i].weight = 1;
		s->teams[i].preempt_own = false;
		s->teams[i].has_default = false;
	}
	return &s->teams[team];
}

int sched_team_set(struct sched *s, uint32_t team, uint32_t weight, bool preempt_own_lower)
{
	struct team_info *ti;

	if (team >= ID_LIMIT || weight > UINT16_MAX)
		return HPQ_EINVAL;
	ti = team_get(s, team);
	ti->weight = weight;
	ti->preempt_own = preempt_own_lower;
	dirty_every_pool(s);
	return 0;
}

static bool quota_valid(const struct sched_quota *q)
{
	if (!res_valid(q->guarantee, RES_LIMIT) || q->borrow_limit_pct > 10000)
		return false;
	if (q->sharing != SCHED_LEND_AND_BORROW && q->sharing != SCHED_LEND &&
	    q->sharing != SCHED_DONT_LEND)
		return false;
	if (q->has_borrow_abs && !res_valid(q->borrow_abs, INT64_MAX))
		return false;
	if (q->has_lend_limit && !res_valid(q->lend_limit, INT64_MAX))
		return false;
	return true;
}

static void tq_set_quota(struct sched *s, struct pool *p, struct tq *q,
			 const struct sched_quota *qu)
{
	p->gsum = hpq_res_add(hpq_res_sub(p->gsum, q->quota.guarantee), qu->guarantee);
	p->within = unguaranteed(p) ? ADM_IDLE : ADM_GUARANTEE;
	q->quota = *qu;
	tq_account(s, p, q);
	pool_dirty_all(s, p);
}

int sched_team_quota(struct sched *s, uint32_t team, uint32_t pool, const struct sched_quota *q)
{
	struct pool *p;
	struct tq *t;

	if (team >= ID_LIMIT || pool >= ID_LIMIT || !q || !quota_valid(q))
		return HPQ_EINVAL;
	team_get(s, team);
	p = pool_get(s, pool);
	t = tq_get(s, p, team);
	t->explicit_quota = true;
	tq_set_quota(s, p, t, q);
	return 0;
}

int sched_team_default_quota(struct sched *s, uint32_t team, const struct sched_quota *q)
{
	struct team_info *ti;
	uint32_t i;

	if (team >= ID_LIMIT || !q || !quota_valid(q) || !hpq_res_is_zero(q->guarantee))
		return HPQ_EINVAL;
	ti = team_get(s, team);
	ti->has_default = true;
	ti->default_quota = *q;
	for (i = 0; i < s->npools; i++) {
		struct tq *t = tq_find(s->pools[i], team);

		if (t && !t->explicit_quota)
			tq_set_quota(s, s->pools[i], t, q);
	}
	return 0;
}

int sched_node_set(struct sched *s, uint32_t node, uint32_t pool, struct hpq_res capacity,
		   bool schedulable)
{
	struct node *n;
	struct pool *p, *old = NULL;

	if (node >= ID_LIMIT || pool >= ID_LIMIT || !res_valid(capacity, RES_LIMIT))
		return HPQ_EINVAL;
	s->nodes_gen++;
	if (node < s->nnodes && s->nodes[node].exists) {
		n = &s->nodes[node];
		if (n->pool == pool && n->schedulable == schedulable && hpq_res_eq(n->cap, capacity))
			return 0; /* nothing changes (a re-registration) */
		if (n->pool != pool && (n->ntasks || !hpq_res_is_zero(n->claim)))
			return HPQ_EBUSY;
		old = s->pools[n->pool];
	} else {
		grow((void **)&s->nodes, &s->nnodes, node + 1, sizeof(*s->nodes));
	}
	p = pool_get(s, pool);
	n = &s->nodes[node];
	if (old == p && hpq_res_eq(n->cap, capacity) && pool_index_flip(s, p, node, schedulable)) {
		n->reserved = false;
		pool_dirty_all(s, p);
		return 0;
	}
	if (old && old != p) {
		uint32_t i = n->pi;

		bucket_unlink(s, old, node);
		old->nodes[i] = old->nodes[--old->nnodes];
		s->nodes[old->nodes[i]].pi = i;
		pool_reindex(s, old);
		pool_dirty_all(s, old);
	}
	if (!n->exists || old != p) {
		grow((void **)&p->nodes, &p->nodes_cap, p->nnodes + 1, sizeof(*p->nodes));
		n->pi = p->nnodes;
		p->nodes[p->nnodes++] = node;
		if (!n->exists)
			n->bucket = -1;
	}
	if (!old && pool_index_add(p, capacity, schedulable)) {
		/* a new node that fits the current index: no rebuild */
		n->exists = true;
		n->pool = pool;
		n->cap = capacity;
		n->schedulable = schedulable;
		n->reserved = false;
		if (schedulable)
			bucket_link(s, p, node);
	} else {
		n->exists = true;
		n->pool = pool;
		n->cap = capacity;
		n->schedulable = schedulable;
		n->reserved = false;
		pool_reindex(s, p);
	}
	pool_dirty_all(s, p);
	return 0;
}

uint32_t sched_node_tasks(const struct sched *s, uint32_t node)
{
	if (node >= s->nnodes || !s->nodes[node].exists)
		return 0;
	return s->nodes[node].ntasks;
}

bool sched_node_claimed(const struct sched *s, uint32_t node)
{
	return node < s->nnodes && s->nodes[node].exists &&
	       !hpq_res_is_zero(s->nodes[node].claim);
}

int sched_node_remove(struct sched *s, uint32_t node)
{
	struct node *n;
	struct pool *p;
	uint32_t i;

	if (node >= s->nnodes || !s->nodes[node].exists)
		return HPQ_ENOTFOUND;
	n = &s->nodes[node];
	if (n->ntasks)
		return HPQ_EBUSY;
	s->nodes_gen++;
	for (i = s->nplans; i-- > 0;) {
		struct plan *pl = s->plans[i];
		uint32_t k;

		for (k = 0; k < pl->b->nnodes; k++) {
			if (pl->nodes[k] == node) {
				plan_cancel(s, pl, true);
				break;
			}
		}
	}
	p = s->pools[n->pool];
	i = n->pi;
	p->nodes[i] = p->nodes[--p->nnodes];
	s->nodes[p->nodes[i]].pi = i;
	if (p->resv)
		resv_clear(s, p);
	memset(n, 0, sizeof(*n));
	n->bucket = -1;
	pool_reindex(s, p);
	pool_dirty_all(s, p);
	return 0;
}

/* ---- tasks ---- */

static bool task_valid(const struct sched_task *t)
{
	return t->team < ID_LIMIT && t->pool < ID_LIMIT && t->class_id < ID_LIMIT &&
	       t->nnodes >= 1 && t->nnodes <= NNODES_LIMIT && res_valid(t->per_node, RES_LIMIT) &&
	       t->state == SCHED_NONE;
}

void sched_set_successor(struct sched *s, sched_successor_fn fn, void *ctx)
{
	s->successor = fn;
	s->successor_ctx = ctx;
}

int sched_task_submit(struct sched *s, struct sched_task *t)
{
	if (!task_valid(t))
		return HPQ_EINVAL;
	task_enqueue(s, t);
	return 0;
}

static void task_enqueue(struct sched *s, struct sched_task *t)
{
	struct pool *p;
	struct tq *q;

	p = pool_get(s, t->pool);
	q = tq_get(s, p, t->team);
	t->state = SCHED_PENDING;
	t->queue_key = t->submit_ms;
	t->nodes = NULL;
	t->preempting_for = NULL;
	t->flags = 0;
	queue_insert(s, q, t);
	q->npending++;
	tq_dirty(s, p, q);
}

int sched_task_adopt(struct sched *s, struct sched_task *t, const uint32_t *nodes, int64_t start_ms)
{
	struct pool *p;
	struct tq *q;
	uint32_t i;
	int r = 0;

	if (!task_valid(t) || !nodes)
		return HPQ_EINVAL;
	for (i = 0; i < t->nnodes; i++) {
		if (nodes[i] >= s->nnodes || !s->nodes[nodes[i]].exists ||
		    s->nodes[nodes[i]].pool != t->pool || s->nodes[nodes[i]].touched) {
			r = HPQ_EINVAL;
			break;
		}
		touch(s, nodes[i]);
	}
	untouch_all(s);
	if (r < 0)
		return r;
	p = pool_get(s, t->pool);
	q = tq_get(s, p, t->team);
	t->queue_key = t->submit_ms;
	t->preempting_for = NULL;
	t->flags = 0;
	task_nodes_set(t, nodes);
	for (i = 0; i < t->nnodes; i++)
		node_charge(s, nodes[i], t->per_node, 1);
	q->used = hpq_res_add(q->used, task_total(t));
	tq_account(s, p, q);
	tq_run_add(q, t);
	tq_cls_charge(q, t, 1);
	t->state = SCHED_RUNNING;
	t->start_ms = start_ms;
	pool_dirty_all(s, p);
	return 0;
}

void sched_task_requeue(struct sched *s, struct sched_task *t, int64_t now_ms)
{
	struct pool *p;
	struct tq *q;

	if (t->state != SCHED_RUNNING && t->state != SCHED_PREEMPTING)
		return;
	if (now_ms > s->now)
		s->now = now_ms;
	task_release(s, t);
	p = s->pools[t->pool];
	q = tq_find(p, t->team);
	t->state = SCHED_PENDING;
	t->queue_key = s->pol.requeue_by_eviction ? now_ms : t->submit_ms;
	queue_insert(s, q, t);
	q->npending++;
	tq_dirty(s, p, q);
}

int sched_task_set_class(struct sched *s, struct sched_task *t, uint32_t class_id)
{
	struct pool *p;
	struct tq *q;

	if ((t->state != SCHED_RUNNING && t->state != SCHED_PREEMPTING) || class_id >= ID_LIMIT)
		return HPQ_EINVAL;
	p = s->pools[t->pool];
	q = tq_find(p, t->team);
	tq_cls_charge(q, t, -1);
	t->class_id = class_id;
	t->flags = (t->flags & TF_LOW) | class_of(s, class_id)->weight << TF_WSHIFT;
	tq_cls_charge(q, t, 1);
	q->minrun_stale = true;
	pool_dirty_all(s, p);
	return 0;
}

void sched_task_finish(struct sched *s, struct sched_task *t, int64_t now_ms)
{
	struct pool *p;
	struct tq *q;

	if (now_ms > s->now)
		s->now = now_ms;
	switch (t->state) {
	case SCHED_PENDING:
		p = s->pools[t->pool];
		q = tq_find(p, t->team);
		if (t->flags & TF_PLANNED) {
			plan_cancel(s, plan_of(s, t), false);
			pool_dirty_all(s, p);
		} else {
			queue_remove(s, q, t);
		}
		q->npending--;
		if (p->resv == t) {
			resv_clear(s, p);
			pool_dirty_all(s, p);
		}
		break;
	case SCHED_RUNNING:
	case SCHED_PREEMPTING:
		task_release(s, t);
		break;
	default:
		return;
	}
	t->state = SCHED_NONE;
	t->flags = 0;
}

void sched_task_checkpoint(struct sched *s, struct sched_task *t, int64_t now_ms)
{
	if (now_ms > s->now)
		s->now = now_ms;
	t->checkpoint_ms = now_ms;
}

/* ---- queries ---- */

const char *sched_reason_name(enum sched_reason r)
{
	static const char *const names[] = {
		[SCHED_REASON_NONE] = "none",
		[SCHED_REASON_QUOTA] = "quota",
		[SCHED_REASON_BORROW_LIMIT] = "borrow-limit",
		[SCHED_REASON_NO_IDLE] = "no-idle-compute",
		[SCHED_REASON_CAPACITY] = "capacity",
		[SCHED_REASON_PRIORITY] = "priority",
		[SCHED_REASON_GANG] = "gang",
		[SCHED_REASON_PREEMPTING_FOR] = "preempting-for",
		[SCHED_REASON_UNHEALTHY_POOL] = "unhealthy-pool",
	};

	if ((unsigned)r >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[r];
}

/* The view of p's nodes for requests of per_node, kept or made now. */
static const struct fit_view *fit_view(struct sched *s, struct pool *p, struct hpq_res per)
{
	struct fit_view *v;

	if (!p->views)
		p->views = xcalloc(FIT_VIEWS, sizeof(*p->views));
	for (uint32_t i = 0; i < FIT_VIEWS; i++)
		if (p->views[i].gen == s->nodes_gen && hpq_res_eq(p->views[i].per_node, per))
			return &p->views[i];
	v = &p->views[p->next_view];
	p->next_view = (p->next_view + 1) % FIT_VIEWS;
	*v = (struct fit_view){ .gen = s->nodes_gen, .per_node = per };
	for (uint32_t i = 0; i < p->nnodes; i++) {
		const struct node *n = &s->nodes[p->nodes[i]];
		struct hpq_res free_now;

		if (!n->schedulable || !hpq_res_fits(per, n->cap))
			continue;
		v->hosts++;
		free_now = hpq_res_sub_floor(n->cap, n->used);
		v->sum = hpq_res_add(v->sum, free_now);
		if (!hpq_res_fits(per, free_now))
			continue;
		if (!hpq_res_fits(per, node_avail(n)))
			v->held++;
		else if (n->reserved)
			v->fit_reserved++;
		else
			v->fit++;
	}
	return v;
}

enum sched_reason sched_task_reason(struct sched *s, const struct sched_task *t)
{
	struct pool *p = pool_find(s, t->pool);
	struct tq *q = tq_find(p, t->team);
	const struct fit_view *v;
	uint32_t hosts, fit, held;
	struct hpq_res sum;
	enum adm a, aheld;

	if (t->state != SCHED_PENDING || !p || !q)
		return SCHED_REASON_NONE;
	if (t->flags & TF_PLANNED)
		return SCHED_REASON_PREEMPTING_FOR;
	if (!p->nsched)
		return SCHED_REASON_UNHEALTHY_POOL;
	a = admit(p, q, tq_eff(q), task_total(t));
	aheld = admit_task(s, p, q, t, task_total(t));
	v = fit_view(s, p, t->per_node);
	hosts = v->hosts;
	sum = v->sum;
	fit = v->fit;
	held = v->held;
	if (v->fit_reserved && may_use_reserved(s, p, t, aheld))
		fit += v->fit_reserved;
	else
		held += v->fit_reserved;
	if (hosts < t->nnodes)
		return SCHED_REASON_CAPACITY;
	switch (a) {
	case ADM_QUOTA:
		return SCHED_REASON_QUOTA;
	case ADM_BORROW_LIMIT:
		return SCHED_REASON_BORROW_LIMIT;
	case ADM_NO_IDLE:
		return SCHED_REASON_NO_IDLE;
	default:
		break;
	}
	/* admissible, but what it needs is held for higher-ranked work */
	if (aheld != ADM_GUARANTEE && aheld != ADM_IDLE)
		return SCHED_REASON_PRIORITY;
	if (fit >= t->nnodes)
		return SCHED_REASON_NONE; /* it starts in the next cycle */
	if (fit + held >= t->nnodes)
		return SCHED_REASON_PRIORITY;
	if (t->nnodes > 1 && hpq_res_fits(task_total(t), sum))
		return SCHED_REASON_GANG;
	return a == ADM_IDLE && !unguaranteed(p) ? SCHED_REASON_NO_IDLE : SCHED_REASON_CAPACITY;
}

int sched_team_usage(const struct sched *s, uint32_t team, uint32_t pool, struct sched_usage *ret)
{
	const struct pool *p = pool_find(s, pool);
	const struct tq *q = tq_find(p, team);
	struct sched_usage u = {0};
	int d;

	if (team >= ID_LIMIT || pool >= ID_LIMIT || !ret)
		return HPQ_EINVAL;
	if (!q) {
		u.guarantee = team_default_quota(s, team)->guarantee;
		*ret = u;
		return 0;
	}
	u.used = q->used;
	u.guarantee = q->quota.guarantee;
	u.borrowed = hpq_res_sub_floor(q->used, q->quota.guarantee);
	/* nothing is borrowed of a resource nobody is guaranteed */
	if (!governed(p, 0))
		u.borrowed.gpus = 0;
	if (!governed(p, 1))
		u.borrowed.cpus = 0;
	if (!governed(p, 2))
		u.borrowed.mem = 0;
	/* lent: this team's share of what borrowers take beyond the unguaranteed part */
	for (d = 0; d < NDIMS; d++) {
		int64_t base = hpq__max64(res_dim(p->cap, d) - res_dim(p->gsum, d), 0);
		int64_t over = hpq__max64(res_dim(p->borrowed, d) - base, 0);
		int64_t l = res_dim(p->lendable, d), mine = res_dim(q->lendable, d), v;

		v = l > 0 ? (int64_t)((double)mine * (double)hpq__min64(over, l) / (double)l) : 0;
		if (d == 0)
			u.lent.gpus = v;
		else if (d == 1)
			u.lent.cpus = v;
		else
			u.lent.mem = v;
	}
	u.running = q->nrun;
	u.pending = q->npending;
	*ret = u;
	return 0;
}

int sched_pool_capacity(const struct sched *s, uint32_t pool, struct hpq_res *ret_capacity,
			struct hpq_res *ret_free)
{
	const struct pool *p = pool_find(s, pool);
	struct hpq_res fr = HPQ_RES_ZERO;
	uint32_t i;

	if (!p)
		return HPQ_ENOTFOUND;
	for (i = 0; i < p->nnodes; i++) {
		const struct node *n = &s->nodes[p->nodes[i]];

		if (n->schedulable)
			fr = hpq_res_add(fr, hpq_res_sub_floor(n->cap, n->used));
	}
	if (ret_capacity)
		*ret_capacity = p->cap;
	if (ret_free)
		*ret_free = fr;
	return 0;
}
