/*
 * autoscale-plan.c: the autoscaler's decision for one pool
 * (autoscale-plan.h). Pure: no I/O, no clock, no model.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "autoscale-plan.h"
#include "xalloc.h"

/* Consolidation tries at most this many nodes per run: a run's cost stays
 * bounded, and the next run (a second later) tries the next ones. */
#define CONSOLIDATE_TRIES 16

struct shape {
	struct hpq_res per_node;
	uint32_t nnodes;
	uint32_t count;
};

struct bin {
	struct hpq_res free;
	int32_t node;                /* index into nodes; -1: a new node */
	bool used;                   /* demand was packed onto it */
	bool leaving;                /* chosen to leave in this run */
	bool received;               /* consolidation moved work onto it */
};

struct asplan_scratch {
	struct shape *shapes;
	size_t nshapes, shapes_cap;
	uint32_t *slots;             /* open addressing: shape index + 1; 0 empty */
	size_t nslots;
	struct bin *bins;
	size_t nbins, bins_cap;
	int32_t *bin_of;             /* node index -> bin, or -1 */
	size_t bin_of_cap;
	uint32_t *order;
	size_t order_cap;
	size_t remove_cap, consolidate_cap, replace_cap;
	struct hpq_res *trial;       /* consolidation: bins' free while trying */
	size_t trial_cap;
};

void asplan_init(struct asplan *p)
{
	memset(p, 0, sizeof(*p));
	p->s = xcalloc(1, sizeof(*p->s));
}

void asplan_release(struct asplan *p)
{
	struct asplan_scratch *s = p->s;

	if (s) {
		free(s->shapes);
		free(s->slots);
		free(s->bins);
		free(s->bin_of);
		free(s->order);
		free(s->trial);
		free(s);
	}
	free(p->remove);
	free(p->consolidate);
	free(p->replace);
	memset(p, 0, sizeof(*p));
}

/* ---------------------------------------------------------------- demand by shape */

static uint64_t shape_hash(struct hpq_res r, uint32_t nnodes)
{
	uint64_t h = 1469598103934665603ull;
	uint64_t v[4] = { (uint64_t)r.gpus, (uint64_t)r.cpus, (uint64_t)r.mem, nnodes };

	for (int i = 0; i < 4; i++) {
		h ^= v[i];
		h *= 1099511628211ull;
		h ^= h >> 29;
	}
	return h;
}

static void group_demand(struct asplan_scratch *s, const struct asplan_demand *d, size_t n)
{
	s->nshapes = 0;
	if (!n)
		return;
	if (s->nslots < 2 * n || s->nslots > 64 * n + 1024) {
		size_t want = 64;

		while (want < 2 * n)
			want *= 2;
		free(s->slots);
		s->slots = xcalloc(want, sizeof(*s->slots));
		s->nslots = want;
	} else {
		memset(s->slots, 0, s->nslots * sizeof(*s->slots));
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t nn = d[i].nnodes ? d[i].nnodes : 1, cnt = d[i].count ? d[i].count : 1;
		size_t k = shape_hash(d[i].per_node, nn) & (s->nslots - 1);

		for (;; k = (k + 1) & (s->nslots - 1)) {
			uint32_t at = s->slots[k];
			struct shape *sh;

			if (!at) {
				if (s->nshapes == s->shapes_cap) {
					s->shapes_cap = s->shapes_cap ? 2 * s->shapes_cap : 16;
					s->shapes = xreallocarray(s->shapes, s->shapes_cap,
								  sizeof(*s->shapes));
				}
				s->shapes[s->nshapes] = (struct shape){ d[i].per_node, nn, cnt };
				s->slots[k] = (uint32_t)++s->nshapes;
				break;
			}
			sh = &s->shapes[at - 1];
			if (sh->nnodes == nn && hpq_res_eq(sh->per_node, d[i].per_node)) {
				sh->count = sh->count + cnt < sh->count ? UINT32_MAX
									 : sh->count + cnt;
				break;
			}
		}
	}
}

/* Larger first: GPUs, then CPUs, then memory; gangs before single nodes. */
static int shape_cmp(const void *a, const void *b)
{
	const struct shape *x = a, *y = b;

	if (x->per_node.gpus != y->per_node.gpus)
		return x->per_node.gpus > y->per_node.gpus ? -1 : 1;
	if (x->per_node.cpus != y->per_node.cpus)
		return x->per_node.cpus > y->per_node.cpus ? -1 : 1;
	if (x->per_node.mem != y->per_node.mem)
		return x->per_node.mem > y->per_node.mem ? -1 : 1;
	if (x->nnodes != y->nnodes)
		return x->nnodes > y->nnodes ? -1 : 1;
	return 0;
}

/* ---------------------------------------------------------------- packing */

/* How many of per fit into free (per is never all zero). */
static uint64_t fit_count(struct hpq_res free, struct hpq_res per)
{
	uint64_t k = UINT64_MAX;

	if (free.gpus < 0 || free.cpus < 0 || free.mem < 0)
		return 0;
	if (per.gpus > 0 && (uint64_t)(free.gpus / per.gpus) < k)
		k = (uint64_t)(free.gpus / per.gpus);
	if (per.cpus > 0 && (uint64_t)(free.cpus / per.cpus) < k)
		k = (uint64_t)(free.cpus / per.cpus);
	if (per.mem > 0 && (uint64_t)(free.mem / per.mem) < k)
		k = (uint64_t)(free.mem / per.mem);
	return k == UINT64_MAX ? 0 : k;
}

static struct bin *bin_add(struct asplan_scratch *s, struct hpq_res free, int32_t node)
{
	if (s->nbins == s->bins_cap) {
		s->bins_cap = s->bins_cap ? 2 * s->bins_cap : 64;
		s->bins = xreallocarray(s->bins, s->bins_cap, sizeof(*s->bins));
	}
	s->bins[s->nbins] = (struct bin){ .free = free, .node = node };
	return &s->bins[s->nbins++];
}

/* One node's worth of a single-node shape: packs up to *count, returns how many. */
static uint64_t pack_into(struct bin *b, struct hpq_res per, uint64_t count)
{
	uint64_t k = fit_count(b->free, per);

	if (k > count)
		k = count;
	if (k) {
		b->free = hpq_res_sub(b->free, hpq_res_scale(per, (int64_t)k));
		b->used = true;
	}
	return k;
}

/*
 * Packs shape sh: first the existing bins, then new ones of the template
 * while *room allows. Returns the items left unplaced.
 */
static uint64_t pack_shape(struct asplan_scratch *s, const struct shape *sh,
			   const struct asplan_pool *pool, uint32_t *room, uint32_t *launched)
{
	uint64_t left = sh->count;
	size_t existing = s->nbins;
	uint64_t per_new = fit_count(pool->tmpl, sh->per_node);

	if (sh->nnodes == 1) {
		for (size_t i = 0; i < existing && left; i++)
			left -= pack_into(&s->bins[i], sh->per_node, left);
		while (left && per_new && *room) {
			left -= pack_into(bin_add(s, pool->tmpl, -1), sh->per_node, left);
			(*room)--;
			(*launched)++;
		}
		return left;
	}
	/* A gang: nnodes distinct bins, each with room for a member. Once one
	 * instance cannot be placed on the bins there are, none of the same
	 * shape can (they only fill up). */
	while (left) {
		uint32_t found = 0;

		for (size_t i = 0; i < s->nbins && found < sh->nnodes; i++)
			found += fit_count(s->bins[i].free, sh->per_node) > 0;
		if (found < sh->nnodes)
			break;
		found = 0;
		for (size_t i = 0; i < s->nbins && found < sh->nnodes; i++) {
			if (fit_count(s->bins[i].free, sh->per_node) == 0)
				continue;
			pack_into(&s->bins[i], sh->per_node, 1);
			found++;
		}
		left--;
	}
	/* New nodes: a group of nnodes of them holds per_new instances. */
	while (left && per_new && *room >= sh->nnodes) {
		uint64_t k = left < per_new ? left : per_new;

		for (uint32_t m = 0; m < sh->nnodes; m++)
			pack_into(bin_add(s, pool->tmpl, -1), sh->per_node, k);
		*room -= sh->nnodes;
		*launched += sh->nnodes;
		left -= k;
	}
	return left;
}

/* ---------------------------------------------------------------- lists */

static void push(uint32_t **v, size_t *n, size_t *cap, uint32_t id)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	(*v)[(*n)++] = id;
}

static void wake_at(struct asplan *p, int64_t at)
{
	if (at < p->next_ms)
		p->next_ms = at;
}

/* ---------------------------------------------------------------- consolidation */

/*
 * Can node i's tasks all go to other bins (not leaving, not new, not i)?
 * If so, takes their room and returns true.
 */
static bool try_move(struct asplan_scratch *s, const struct asplan_node *nodes, size_t i)
{
	const struct asplan_node *n = &nodes[i];
	size_t nb = s->nbins;

	if (s->trial_cap < nb) {
		s->trial_cap = nb;
		s->trial = xreallocarray(s->trial, nb, sizeof(*s->trial));
	}
	for (size_t b = 0; b < nb; b++)
		s->trial[b] = s->bins[b].free;
	for (uint32_t t = 0; t < n->ntasks; t++) {
		bool placed = false;

		for (size_t b = 0; b < nb && !placed; b++) {
			const struct bin *bin = &s->bins[b];

			if (bin->node < 0 || (size_t)bin->node == i || bin->leaving ||
			    !nodes[bin->node].schedulable)
				continue;
			if (hpq_res_fits(n->task_res[t], s->trial[b])) {
				s->trial[b] = hpq_res_sub(s->trial[b], n->task_res[t]);
				placed = true;
			}
		}
		if (!placed)
			return false;
	}
	for (size_t b = 0; b < nb; b++) {
		if (!hpq_res_eq(s->bins[b].free, s->trial[b]))
			s->bins[b].received = true;
		s->bins[b].free = s->trial[b];
	}
	return true;
}

static int by_tasks_cmp(const void *a, const void *b, void *arg)
{
	const struct asplan_node *nodes = arg;
	const struct asplan_node *x = &nodes[*(const uint32_t *)a], *y = &nodes[*(const uint32_t *)b];

	if (x->ntasks != y->ntasks)
		return x->ntasks < y->ntasks ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* qsort_r is a GNU extension with this argument order; sorting a few
 * candidates, an insertion sort is as good and portable. */
static void sort_candidates(uint32_t *v, size_t n, const struct asplan_node *nodes)
{
	for (size_t i = 1; i < n; i++) {
		uint32_t x = v[i];
		size_t j = i;

		while (j > 0 && by_tasks_cmp(&x, &v[j - 1], (void *)nodes) < 0) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

/* ---------------------------------------------------------------- the plan */

void asplan_run(struct asplan *p, const struct asplan_pool *pool, const struct asplan_node *nodes,
		size_t nnodes, const struct asplan_demand *demand, size_t ndemand, int64_t now_ms)
{
	struct asplan_scratch *s = p->s;
	uint32_t all = 0, leaving = 0, staying, room, launched = 0, budget_left, ncand = 0;

	p->launch = 0;
	p->nremove = p->nconsolidate = p->nreplace = 0;
	p->unplaced = 0;
	p->next_ms = INT64_MAX;
	s->nbins = 0;
	if (s->bin_of_cap < nnodes) {
		s->bin_of_cap = nnodes;
		s->bin_of = xreallocarray(s->bin_of, nnodes, sizeof(*s->bin_of));
	}

	/* The bins: what schedulable and launching nodes can still take. */
	for (size_t i = 0; i < nnodes; i++) {
		const struct asplan_node *n = &nodes[i];

		all++;
		leaving += n->state == ASPLAN_LEAVING || n->replacing;
		s->bin_of[i] = -1;
		if (n->state == ASPLAN_LAUNCHING) {
			s->bin_of[i] = (int32_t)s->nbins;
			bin_add(s, n->capacity, (int32_t)i);
		} else if (n->state == ASPLAN_READY && n->schedulable) {
			s->bin_of[i] = (int32_t)s->nbins;
			bin_add(s, n->free, (int32_t)i);
		}
	}
	staying = all - leaving;
	room = pool->may_launch && pool->max_nodes > all ? pool->max_nodes - all : 0;

	/* Scale up: the demand, largest first. */
	group_demand(s, demand, ndemand);
	if (s->nshapes > 1)
		qsort(s->shapes, s->nshapes, sizeof(*s->shapes), shape_cmp);
	for (size_t k = 0; k < s->nshapes; k++)
		p->unplaced += (uint32_t)pack_shape(s, &s->shapes[k], pool, &room, &launched);
	if (pool->may_launch && staying + launched < pool->min_nodes) {
		uint32_t more = pool->min_nodes - staying - launched;

		launched += more;
	}
	p->launch = launched;

	budget_left = pool->budget > leaving ? pool->budget - leaving : 0;

	/* Too old: replaced, a new node first. */
	for (size_t i = 0; i < nnodes && pool->max_lifetime_ms > 0; i++) {
		const struct asplan_node *n = &nodes[i];
		int64_t due;

		if (!n->managed || n->state != ASPLAN_READY || n->replacing)
			continue;
		due = n->born_ms + pool->max_lifetime_ms;
		if (due > now_ms) {
			wake_at(p, due);
			continue;
		}
		if (!budget_left)
			continue;
		budget_left--;
		push(&p->replace, &p->nreplace, &s->replace_cap, n->id);
		if (s->bin_of[i] >= 0)
			s->bins[s->bin_of[i]].leaving = true;
	}

	/* Scale down: empty nodes no demand wants, never below min_nodes. */
	for (size_t i = 0; i < nnodes; i++) {
		const struct asplan_node *n = &nodes[i];
		int64_t due;

		if (!n->managed || n->state != ASPLAN_READY || n->ntasks || n->replacing ||
		    (s->bin_of[i] >= 0 && (s->bins[s->bin_of[i]].used ||
					   s->bins[s->bin_of[i]].leaving)))
			continue;
		due = n->empty_since_ms + pool->idle_timeout_ms;
		if (due > now_ms) {
			wake_at(p, due);
			continue;
		}
		if (!budget_left || staying <= pool->min_nodes)
			continue;
		budget_left--;
		staying--;
		push(&p->remove, &p->nremove, &s->remove_cap, n->id);
		if (s->bin_of[i] >= 0)
			s->bins[s->bin_of[i]].leaving = true;
	}

	/* Consolidation: only when nothing is launched for demand (moving work
	 * while adding nodes is churn), emptiest nodes first. */
	if (!pool->consolidation || launched || !budget_left || staying <= pool->min_nodes)
		return;
	if (s->order_cap < nnodes) {
		s->order_cap = nnodes;
		s->order = xreallocarray(s->order, nnodes, sizeof(*s->order));
	}
	for (size_t i = 0; i < nnodes; i++) {
		const struct asplan_node *n = &nodes[i];

		if (n->managed && n->state == ASPLAN_READY && n->schedulable && n->movable &&
		    n->ntasks && !n->replacing && s->bin_of[i] >= 0 &&
		    !s->bins[s->bin_of[i]].used && !s->bins[s->bin_of[i]].leaving)
			s->order[ncand++] = (uint32_t)i;
	}
	sort_candidates(s->order, ncand, nodes);
	for (size_t k = 0, tries = 0; k < ncand && tries < CONSOLIDATE_TRIES; k++) {
		uint32_t i = s->order[k];
		struct bin *b = &s->bins[s->bin_of[i]];

		if (!budget_left || staying <= pool->min_nodes)
			break;
		if (b->received)      /* took another's work in this run */
			continue;
		tries++;
		b->leaving = true;
		if (!try_move(s, nodes, i)) {
			b->leaving = false;
			continue;
		}
		budget_left--;
		staying--;
		push(&p->consolidate, &p->nconsolidate, &s->consolidate_cap, nodes[i].id);
	}
}
