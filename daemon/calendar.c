/*
 * calendar.c: one pool's capacity calendar for training plans (see
 * calendar.h for the rules it keeps). Pure: no I/O, no clock.
 *
 * Each node keeps its reserved intervals sorted by start (they never
 * overlap), so "is node n free over [s, e)" is a binary search. Each
 * segment is also kept as a record (who, when, how many nodes), from which
 * a search builds the counting rule for its team as a step function of
 * time: how many more nodes that team may reserve at each instant.
 *
 * Search. A window of N nodes may start only when the pool or the rule
 * relaxes: at the query's `after` or where some segment ends. Between two
 * such instants the nodes free at the start, and how long each stays
 * free, do not change, so starting later only shortens the window. For
 * each candidate start s the longest window is the N-th largest "free
 * until" among the nodes free at s, cut where the counting rule no longer
 * allows N. A sweep over every interval's start and end, sorted once,
 * keeps those "free until" times counted in a Fenwick tree; windows are
 * worked out lazily, in time order, only as far as a search needs them. Offerings come from greedy passes over them, one
 * per allowed number of segments and per way of sizing a segment (take
 * what comes, or insist on an even share of what is left, so that early
 * scraps do not use up the segments), ranked by finish time.
 */
#include "calendar.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "xalloc.h"

struct cal_iv {
	int64_t start, end;
	uint64_t id;
};

struct cal_node {
	uint32_t id;
	struct cal_iv *iv;
	size_t n, cap;
};

/* One reserved segment. */
struct cal_rec {
	uint64_t id;
	uint32_t team;
	int64_t start, end;
	uint32_t nnodes;
	uint32_t *nodes;
};

struct calendar {
	struct cal_node *nodes;
	size_t nnodes, capnodes;
	int32_t *slot;               /* node id -> index in nodes, -1 */
	size_t nslot;
	uint32_t reservable;
	uint32_t *guarantee;         /* by team id */
	size_t nteams;
	struct cal_rec *recs;
	size_t nrecs, caprecs;
	calendar_namer namer;        /* node names for messages; NULL: numbers */
	void *namer_ctx;
};

struct calendar *calendar_new(void)
{
	struct calendar *c = xcalloc(1, sizeof(*c));

	c->reservable = UINT32_MAX;
	return c;
}

void calendar_free(struct calendar *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nnodes; i++)
		free(c->nodes[i].iv);
	for (size_t i = 0; i < c->nrecs; i++)
		free(c->recs[i].nodes);
	free(c->nodes);
	free(c->slot);
	free(c->guarantee);
	free(c->recs);
	free(c);
}

static struct cal_node *node_of(const struct calendar *c, uint32_t id)
{
	if (id >= c->nslot || c->slot[id] < 0)
		return NULL;
	return &c->nodes[c->slot[id]];
}

int calendar_node_add(struct calendar *c, uint32_t node)
{
	if (node >= INT32_MAX)
		return HPQ_EINVAL;
	if (node_of(c, node))
		return HPQ_EEXIST;
	if (node >= c->nslot) {
		size_t n = c->nslot ? c->nslot : 16;

		while (n <= node)
			n *= 2;
		c->slot = xreallocarray(c->slot, n, sizeof(*c->slot));
		for (size_t i = c->nslot; i < n; i++)
			c->slot[i] = -1;
		c->nslot = n;
	}
	if (c->nnodes == c->capnodes) {
		c->capnodes = c->capnodes ? 2 * c->capnodes : 16;
		c->nodes = xreallocarray(c->nodes, c->capnodes, sizeof(*c->nodes));
	}
	c->nodes[c->nnodes] = (struct cal_node){.id = node};
	c->slot[node] = (int32_t)c->nnodes++;
	return 0;
}

int calendar_node_remove(struct calendar *c, uint32_t node, int64_t now)
{
	struct cal_node *n = node_of(c, node);
	size_t i;

	if (!n)
		return HPQ_ENOTFOUND;
	for (i = 0; i < n->n; i++)
		if (n->iv[i].end > now)
			return HPQ_EBUSY;
	free(n->iv);
	i = (size_t)c->slot[node];
	c->slot[node] = -1;
	if (i != c->nnodes - 1) {
		c->nodes[i] = c->nodes[c->nnodes - 1];
		c->slot[c->nodes[i].id] = (int32_t)i;
	}
	c->nnodes--;
	return 0;
}

void calendar_set_namer(struct calendar *c, calendar_namer fn, void *ctx)
{
	c->namer = fn;
	c->namer_ctx = ctx;
}

uint32_t calendar_nodes(const struct calendar *c)
{
	return (uint32_t)c->nnodes;
}

void calendar_set_reservable(struct calendar *c, uint32_t nodes)
{
	c->reservable = nodes;
}

void calendar_set_guarantee(struct calendar *c, uint32_t team, uint32_t nodes)
{
	if (team >= c->nteams) {
		size_t n = c->nteams ? c->nteams : 8;

		while (n <= team)
			n *= 2;
		c->guarantee = xreallocarray(c->guarantee, n, sizeof(*c->guarantee));
		memset(c->guarantee + c->nteams, 0, (n - c->nteams) * sizeof(*c->guarantee));
		c->nteams = n;
	}
	c->guarantee[team] = nodes;
}

/* Index of the first interval of n that ends after t. */
static size_t first_ending_after(const struct cal_node *n, int64_t t)
{
	size_t lo = 0, hi = n->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (n->iv[mid].end <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The interval of n that overlaps [s, e), or NULL. */
static const struct cal_iv *overlap(const struct cal_node *n, int64_t s, int64_t e)
{
	size_t i = first_ending_after(n, s);

	if (i < n->n && n->iv[i].start < e)
		return &n->iv[i];
	return NULL;
}

/* A key and what it belongs to, for radix_sort. */
struct keyed {
	uint64_t key;
	uint32_t idx;
};

#define RADIX_BITS 11
#define RADIX (1u << RADIX_BITS)

/* Sorts v by key, stably: least significant 11 bits first, only as far
 * as the keys differ (a search's times span far fewer bits than 64), and
 * skipping digits in which all keys agree. tmp holds n too. Sorting is
 * most of a search's fixed cost, and qsort's calls would dominate it. */
static void radix_sort(struct keyed *v, struct keyed *tmp, size_t n)
{
	struct keyed *src = v, *dst = tmp, *x;
	uint64_t diff = 0;
	size_t count[RADIX];

	for (size_t i = 1; i < n; i++)
		diff |= v[i].key ^ v[0].key;
	for (int shift = 0; shift < 64 && (diff >> shift); shift += RADIX_BITS) {
		size_t sum = 0;

		if (!((diff >> shift) & (RADIX - 1)))
			continue;      /* every key has the same digit here */
		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++)
			count[(src[i].key >> shift) & (RADIX - 1)]++;
		for (size_t d = 0; d < RADIX; d++) {
			size_t c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i].key >> shift) & (RADIX - 1)]++] = src[i];
		x = src, src = dst, dst = x;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
}

/* Time as an unsigned key that sorts the same way. */
static uint64_t time_key(int64_t t)
{
	return (uint64_t)t ^ ((uint64_t)1 << 63);
}

/*
 * The counting rule for one team as a step function: from t[j] until
 * t[j+1], the team may reserve cap[j] more nodes. t[0] is INT64_MIN.
 */
struct capfn {
	int64_t *t, *cap;
	size_t n;
};

struct cal_event {
	int64_t t;
	uint32_t team;
	int64_t delta;
};

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static uint32_t guarantee_of(const struct calendar *c, uint32_t team)
{
	return team < c->nteams ? c->guarantee[team] : 0;
}

static int64_t cap_now(const struct calendar *c, uint32_t team, int64_t reserved, int64_t guaranteed,
		       const int64_t *by_team)
{
	int64_t g = guarantee_of(c, team);
	int64_t mine = by_team[team];
	int64_t a = (int64_t)c->reservable - reserved;
	int64_t b = (int64_t)c->nnodes - guaranteed + max64(0, g - mine);

	return max64(0, min64(a, b));
}

static void capfn_build(const struct calendar *c, uint32_t team, struct capfn *f)
{
	size_t nev = 2 * c->nrecs, nteams = c->nteams, k;
	struct cal_event *ev = xcalloc(nev ? nev : 1, sizeof(*ev));
	struct keyed *kv = xmalloc((nev ? nev : 1) * sizeof(*kv));
	struct keyed *tmp = xmalloc((nev ? nev : 1) * sizeof(*tmp));
	int64_t reserved = 0, guaranteed = 0, *by_team;

	for (size_t i = 0; i < c->nrecs; i++)
		if (c->recs[i].team >= nteams)
			nteams = c->recs[i].team + 1;
	if (team >= nteams)
		nteams = team + 1;
	by_team = xcalloc(nteams, sizeof(*by_team));
	for (size_t u = 0; u < c->nteams; u++)
		guaranteed += c->guarantee[u];
	for (size_t i = 0; i < c->nrecs; i++) {
		ev[2 * i] = (struct cal_event){c->recs[i].start, c->recs[i].team, c->recs[i].nnodes};
		ev[2 * i + 1] = (struct cal_event){c->recs[i].end, c->recs[i].team,
						   -(int64_t)c->recs[i].nnodes};
	}
	for (size_t i = 0; i < nev; i++)
		kv[i] = (struct keyed){time_key(ev[i].t), (uint32_t)i};
	radix_sort(kv, tmp, nev);
	f->t = xmalloc((nev + 1) * sizeof(*f->t));
	f->cap = xmalloc((nev + 1) * sizeof(*f->cap));
	f->t[0] = INT64_MIN;
	f->cap[0] = cap_now(c, team, 0, guaranteed, by_team);
	f->n = 1;
	for (size_t i = 0; i < nev; i = k) {
		const struct cal_event *first = &ev[kv[i].idx];

		for (k = i; k < nev && ev[kv[k].idx].t == first->t; k++) {
			const struct cal_event *x = &ev[kv[k].idx];
			uint32_t u = x->team;
			int64_t g = guarantee_of(c, u);

			guaranteed -= max64(g, by_team[u]);
			by_team[u] += x->delta;
			guaranteed += max64(g, by_team[u]);
			reserved += x->delta;
		}
		f->t[f->n] = first->t;
		f->cap[f->n] = cap_now(c, team, reserved, guaranteed, by_team);
		f->n++;
	}
	free(by_team);
	free(kv);
	free(tmp);
	free(ev);
}

static void capfn_free(struct capfn *f)
{
	free(f->t);
	free(f->cap);
}

/* The step of f that holds time t. */
static size_t capfn_at(const struct capfn *f, int64_t t)
{
	size_t lo = 0, hi = f->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->t[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int64_t capfn_min(const struct capfn *f, int64_t s, int64_t e)
{
	size_t j = capfn_at(f, s);
	int64_t m = f->cap[j];

	for (j++; j < f->n && f->t[j] < e; j++)
		m = min64(m, f->cap[j]);
	return m;
}

uint32_t calendar_headroom(const struct calendar *c, uint32_t team, int64_t start, int64_t end)
{
	struct capfn f;
	int64_t m;

	capfn_build(c, team, &f);
	m = capfn_min(&f, start, end);
	capfn_free(&f);
	m = min64(m, (int64_t)c->nnodes);
	return (uint32_t)max64(0, m);
}

static int check(const struct calendar *c, const struct capfn *f, const struct calendar_segment *segs,
		 uint32_t nsegs, char *err, size_t errlen)
{
	bool *seen;

	if (nsegs == 0 || nsegs > CALENDAR_MAX_SEGMENTS)
		return hpq_errf(err, errlen, HPQ_EINVAL, "a plan has 1 to %d segments, not %u",
				CALENDAR_MAX_SEGMENTS, nsegs);
	for (uint32_t i = 0; i < nsegs; i++) {
		const struct calendar_segment *sg = &segs[i];

		if (sg->start >= sg->end)
			return hpq_errf(err, errlen, HPQ_EINVAL, "segment %u ends before it starts",
					i + 1);
		if (i > 0 && sg->start < segs[i - 1].end)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"segment %u starts before segment %u ends", i + 1, i);
		if (sg->nnodes == 0)
			return hpq_errf(err, errlen, HPQ_EINVAL, "segment %u has no nodes", i + 1);
	}
	seen = xcalloc(c->nnodes ? c->nnodes : 1, sizeof(*seen));
	for (uint32_t i = 0; i < nsegs; i++) {
		const struct calendar_segment *sg = &segs[i];
		int rc = 0;

		memset(seen, 0, c->nnodes * sizeof(*seen));
		for (uint32_t k = 0; k < sg->nnodes && !rc; k++) {
			const struct cal_node *n = node_of(c, sg->nodes[k]);
			const struct cal_iv *iv;
			char name[80];

			if (c->namer)
				snprintf(name, sizeof(name), "%s",
					 c->namer(c->namer_ctx, sg->nodes[k]));
			else
				snprintf(name, sizeof(name), "%u", sg->nodes[k]);
			if (!n) {
				rc = hpq_errf(err, errlen, HPQ_EINVAL,
					      "segment %u: node %s is not in the pool", i + 1, name);
			} else if (seen[n - c->nodes]) {
				rc = hpq_errf(err, errlen, HPQ_EINVAL,
					      "segment %u names node %s twice", i + 1, name);
			} else if ((iv = overlap(n, sg->start, sg->end))) {
				rc = hpq_errf(err, errlen, HPQ_EBUSY,
					      "segment %u: node %s is already reserved then", i + 1,
					      name);
			}
			if (n)
				seen[n - c->nodes] = true;
		}
		if (!rc && f && capfn_min(f, sg->start, sg->end) < (int64_t)sg->nnodes)
			rc = hpq_errf(err, errlen, HPQ_EBUSY,
				      "segment %u: only %lld more nodes may be reserved then without "
				      "breaking the pool's reservable limit or a team's guarantee",
				      i + 1, (long long)capfn_min(f, sg->start, sg->end));
		if (rc) {
			free(seen);
			return rc;
		}
	}
	free(seen);
	return 0;
}

int calendar_check(const struct calendar *c, uint32_t team, const struct calendar_segment *segs,
		   uint32_t nsegs, char *err, size_t errlen)
{
	struct capfn f;
	int rc;

	capfn_build(c, team, &f);
	rc = check(c, &f, segs, nsegs, err, errlen);
	capfn_free(&f);
	return rc;
}

static void node_insert(struct cal_node *n, int64_t s, int64_t e, uint64_t id)
{
	size_t i = first_ending_after(n, s);

	if (n->n == n->cap) {
		n->cap = n->cap ? 2 * n->cap : 4;
		n->iv = xreallocarray(n->iv, n->cap, sizeof(*n->iv));
	}
	memmove(&n->iv[i + 1], &n->iv[i], (n->n - i) * sizeof(*n->iv));
	n->iv[i] = (struct cal_iv){s, e, id};
	n->n++;
}

static struct cal_iv *node_find(struct cal_node *n, int64_t s, uint64_t id)
{
	size_t i = first_ending_after(n, s);

	for (; i < n->n && n->iv[i].start <= s; i++)
		if (n->iv[i].start == s && n->iv[i].id == id)
			return &n->iv[i];
	return NULL;
}

static void node_delete(struct cal_node *n, struct cal_iv *iv)
{
	size_t i = (size_t)(iv - n->iv);

	memmove(&n->iv[i], &n->iv[i + 1], (n->n - i - 1) * sizeof(*n->iv));
	n->n--;
}

int calendar_reserve(struct calendar *c, uint64_t id, uint32_t team,
		     const struct calendar_segment *segs, uint32_t nsegs, int force, char *err,
		     size_t errlen)
{
	struct capfn f;
	int rc;

	/* (forced: the loader's, whose ids are distinct; this costs O(segments)) */
	for (size_t i = 0; i < c->nrecs && !force; i++)
		if (c->recs[i].id == id)
			return hpq_errf(err, errlen, HPQ_EEXIST, "plan %llu already holds capacity",
					(unsigned long long)id);
	if (!force)
		capfn_build(c, team, &f);
	rc = check(c, force ? NULL : &f, segs, nsegs, err, errlen);
	if (!force)
		capfn_free(&f);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < nsegs; i++) {
		const struct calendar_segment *sg = &segs[i];
		struct cal_rec *r;

		if (c->nrecs == c->caprecs) {
			c->caprecs = c->caprecs ? 2 * c->caprecs : 16;
			c->recs = xreallocarray(c->recs, c->caprecs, sizeof(*c->recs));
		}
		r = &c->recs[c->nrecs++];
		*r = (struct cal_rec){id, team, sg->start, sg->end, sg->nnodes, NULL};
		r->nodes = xmalloc(sg->nnodes * sizeof(*r->nodes));
		memcpy(r->nodes, sg->nodes, sg->nnodes * sizeof(*r->nodes));
		for (uint32_t k = 0; k < sg->nnodes; k++)
			node_insert(node_of(c, sg->nodes[k]), sg->start, sg->end, id);
	}
	return 0;
}

/* Removes record i (its nodes' intervals too), or cuts it to end at cut. */
static void rec_trim(struct calendar *c, size_t i, int64_t cut, bool remove)
{
	struct cal_rec *r = &c->recs[i];

	for (uint32_t k = 0; k < r->nnodes; k++) {
		struct cal_node *n = node_of(c, r->nodes[k]);
		struct cal_iv *iv = n ? node_find(n, r->start, r->id) : NULL;

		if (!iv)
			continue;      /* the node left the pool */
		if (remove)
			node_delete(n, iv);
		else
			iv->end = cut;
	}
	if (!remove) {
		r->end = cut;
		return;
	}
	free(r->nodes);
	c->recs[i] = c->recs[--c->nrecs];
}

int calendar_release(struct calendar *c, uint64_t id, int64_t from)
{
	int changed = 0;

	for (size_t i = c->nrecs; i-- > 0;) {
		struct cal_rec *r = &c->recs[i];

		if (r->id != id || r->end <= from)
			continue;
		rec_trim(c, i, from, r->start >= from);
		changed++;
	}
	return changed;
}

void calendar_prune(struct calendar *c, int64_t until)
{
	for (size_t i = c->nrecs; i-- > 0;)
		if (c->recs[i].end <= until)
			rec_trim(c, i, 0, true);
}

/* --- search ------------------------------------------------------------ */

struct search {
	const struct calendar *c;
	const struct calendar_query *q;
	struct capfn f;
	int64_t *next_short;         /* by step of f: when the rule next allows < N */
	int64_t *starts;             /* candidate starts, ascending */
	size_t nstarts;
	int64_t *win;                /* longest window at each start, worked out lazily */
	size_t nwin;
	size_t step;                 /* the sweep's step of f */
	/* The sweep: every interval's start and end after q->after in time
	 * order (an interval's index in `off` terms, times two, plus 1 for
	 * its end), how far it got, and how many free nodes stay free until
	 * each value (a Fenwick tree over `vals`, the distinct interval
	 * starts after q->after, then CALENDAR_FOREVER). */
	struct keyed *ev;
	size_t nev, pos;
	uint32_t *gnode;             /* by interval: its node's index */
	int64_t *vals;
	size_t nvals;
	size_t *off;                 /* by node: where its intervals' ranks begin */
	uint32_t *rank;              /* by interval: its start's index in vals */
	uint32_t *fen;               /* 1-based */
	uint32_t nfree;
};

/* Counts (+1/-1) a free node that stays free until vals[r]. */
static void fen_add(struct search *S, uint32_t r, int d)
{
	for (size_t i = (size_t)r + 1; i <= S->nvals; i += i & -i)
		S->fen[i] += (uint32_t)d;
	S->nfree += (uint32_t)d;
}

/* The k-th smallest (k >= 1) value counted. */
static int64_t fen_kth(const struct search *S, uint32_t k)
{
	size_t pos = 0, bit = 1;

	while (bit * 2 <= S->nvals)
		bit *= 2;
	for (; bit; bit /= 2)
		if (pos + bit <= S->nvals && S->fen[pos + bit] < k) {
			pos += bit;
			k -= S->fen[pos];
		}
	return S->vals[pos];
}

/* Sorts the changes after q->after, ranks the starts, and counts each
 * node as it is at q->after. */
static void sweep_init(struct search *S)
{
	const struct calendar *c = S->c;
	int64_t after = S->q->after;
	size_t total = 0, n = 0;
	struct keyed *tmp;

	S->off = xmalloc((c->nnodes + 1) * sizeof(*S->off));
	for (size_t k = 0; k < c->nnodes; k++) {
		S->off[k] = total;
		total += c->nodes[k].n;
	}
	S->off[c->nnodes] = total;
	S->rank = xmalloc((total ? total : 1) * sizeof(*S->rank));
	S->gnode = xmalloc((total ? total : 1) * sizeof(*S->gnode));
	S->ev = xmalloc((2 * total + 1) * sizeof(*S->ev));
	tmp = xmalloc((2 * total + 1) * sizeof(*tmp));
	/* per node in order, so that the stable sort keeps an end before the
	 * next interval's start at the same time */
	for (size_t k = 0; k < c->nnodes; k++) {
		const struct cal_node *nd = &c->nodes[k];

		for (size_t j = first_ending_after(nd, after); j < nd->n; j++) {
			uint32_t g = (uint32_t)(S->off[k] + j);

			S->gnode[g] = (uint32_t)k;
			if (nd->iv[j].start > after)
				S->ev[n++] = (struct keyed){time_key(nd->iv[j].start), 2 * g};
			S->ev[n++] = (struct keyed){time_key(nd->iv[j].end), 2 * g + 1};
		}
	}
	S->nev = n;
	radix_sort(S->ev, tmp, n);
	free(tmp);
	/* the starts, in time order, are the values */
	S->vals = xmalloc((n / 2 + 2) * sizeof(*S->vals));
	for (size_t i = 0; i < n; i++) {
		int64_t t = (int64_t)(S->ev[i].key ^ ((uint64_t)1 << 63));

		if (S->ev[i].idx & 1)
			continue;
		if (S->nvals == 0 || S->vals[S->nvals - 1] != t)
			S->vals[S->nvals++] = t;
		S->rank[S->ev[i].idx / 2] = (uint32_t)(S->nvals - 1);
	}
	S->vals[S->nvals++] = CALENDAR_FOREVER;
	S->fen = xcalloc(S->nvals + 1, sizeof(*S->fen));
	for (size_t k = 0; k < c->nnodes; k++) {
		const struct cal_node *nd = &c->nodes[k];
		size_t j = first_ending_after(nd, after);

		if (j == nd->n)
			fen_add(S, (uint32_t)S->nvals - 1, 1);
		else if (nd->iv[j].start > after)
			fen_add(S, S->rank[S->off[k] + j], 1);
	}
}

/* Moves the sweep to time t: every change at or before t happens. An
 * interval that begins where the one before it ends changes nothing. */
static void sweep_to(struct search *S, int64_t t)
{
	uint64_t key = time_key(t);

	while (S->pos < S->nev && S->ev[S->pos].key <= key) {
		uint32_t g = S->ev[S->pos].idx / 2, k = S->gnode[g];
		const struct cal_node *nd = &S->c->nodes[k];
		size_t j = g - S->off[k];

		if (S->ev[S->pos++].idx & 1) {
			/* interval j ends: free until the next one, if it is not now */
			if (j + 1 == nd->n)
				fen_add(S, (uint32_t)S->nvals - 1, 1);
			else if (nd->iv[j + 1].start > nd->iv[j].end)
				fen_add(S, S->rank[g + 1], 1);
		} else if (j == 0 || nd->iv[j - 1].end < nd->iv[j].start) {
			/* free until now: it becomes busy */
			fen_add(S, S->rank[g], -1);
		}
	}
}

/* The longest window of N nodes that starts at starts[i]. */
static int64_t window(struct search *S, size_t i)
{
	uint32_t N = S->q->nnodes;

	while (S->nwin <= i) {
		size_t k = S->nwin++;
		int64_t s = S->starts[k], lim;

		while (S->step + 1 < S->f.n && S->f.t[S->step + 1] <= s)
			S->step++;
		sweep_to(S, s);
		if (S->f.cap[S->step] < (int64_t)N || S->nfree < N) {
			S->win[k] = 0;
			continue;
		}
		lim = min64(S->next_short[S->step], S->q->before);
		/* the N-th largest free-until is the (nfree - N + 1)-th smallest */
		lim = min64(lim, fen_kth(S, S->nfree - N + 1));
		S->win[k] = max64(0, lim - s);
	}
	return S->win[i];
}

/* One greedy pass: at most k segments; balanced: each but the last takes
 * at least an even share of what is left. 1 if it found a fit. */
static int greedy(struct search *S, uint32_t k, bool balanced, struct calendar_offer *o)
{
	const struct calendar_query *q = S->q;
	int64_t t = q->after, rem = q->duration, m = q->min_segment;
	size_t i = 0;

	memset(o, 0, sizeof(*o));
	while (rem > 0) {
		uint32_t left = k - o->nsegments;
		int64_t len = 0;

		if (left == 0)
			return 0;
		while (i < S->nstarts && S->starts[i] < t)
			i++;
		for (; i < S->nstarts; i++) {
			int64_t w = window(S, i), want;

			if (w >= rem) {
				len = rem;
				break;
			}
			if (left == 1 || w <= 0)
				continue;
			want = max64(m, 1);
			if (balanced)
				want = max64(want, (rem + left - 1) / left);
			len = w;
			if (rem - len < m)
				len = rem - m;
			if (len >= want)
				break;
		}
		if (i == S->nstarts)
			return 0;
		o->segments[o->nsegments].start = S->starts[i];
		o->segments[o->nsegments].end = S->starts[i] + len;
		o->segments[o->nsegments].nnodes = q->nnodes;
		o->nsegments++;
		rem -= len;
		t = S->starts[i] + len;
		i++;
	}
	o->finish = t;
	return 1;
}

static bool same_offer(const struct calendar_offer *a, const struct calendar_offer *b)
{
	if (a->nsegments != b->nsegments)
		return false;
	for (uint32_t i = 0; i < a->nsegments; i++)
		if (a->segments[i].start != b->segments[i].start ||
		    a->segments[i].end != b->segments[i].end)
			return false;
	return true;
}

static int offer_cmp(const void *a, const void *b)
{
	const struct calendar_offer *x = a, *y = b;

	if (x->finish != y->finish)
		return x->finish < y->finish ? -1 : 1;
	if (x->nsegments != y->nsegments)
		return x->nsegments < y->nsegments ? -1 : 1;
	return (x->segments[0].start > y->segments[0].start) -
	       (x->segments[0].start < y->segments[0].start);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

struct pick {
	int64_t until;
	uint32_t id;
};

static int pick_cmp(const void *a, const void *b)
{
	const struct pick *x = a, *y = b;

	if (x->until != y->until)
		return x->until < y->until ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/*
 * Chooses the nodes of a segment: free over all of it, and of those the
 * ones whose next reservation comes soonest, so that the nodes that stay
 * free longest are left for longer plans. 0 or HPQ_EBUSY.
 */
static int pick_nodes(const struct calendar *c, struct calendar_segment *sg, struct pick *buf)
{
	size_t n = 0;

	for (size_t k = 0; k < c->nnodes; k++) {
		const struct cal_node *nd = &c->nodes[k];
		size_t j = first_ending_after(nd, sg->start);

		if (j < nd->n && nd->iv[j].start < sg->end)
			continue;
		buf[n].until = j < nd->n ? nd->iv[j].start : CALENDAR_FOREVER;
		buf[n].id = nd->id;
		n++;
	}
	if (n < sg->nnodes)
		return HPQ_EBUSY;
	qsort(buf, n, sizeof(*buf), pick_cmp);
	sg->nodes = xmalloc(sg->nnodes * sizeof(*sg->nodes));
	for (uint32_t k = 0; k < sg->nnodes; k++)
		sg->nodes[k] = buf[k].id;
	qsort(sg->nodes, sg->nnodes, sizeof(*sg->nodes), u32_cmp);
	return 0;
}

void calendar_offers_free(struct calendar_offer *offers, int n)
{
	for (int i = 0; i < n; i++)
		for (uint32_t k = 0; k < offers[i].nsegments; k++)
			free(offers[i].segments[k].nodes);
	free(offers);
}

static int query_check(const struct calendar *c, const struct calendar_query *q, char *err,
		       size_t errlen)
{
	if (q->nnodes == 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "a plan needs at least one node");
	if (q->duration <= 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "a plan's duration must be positive");
	if (q->max_segments < 1 || q->max_segments > CALENDAR_MAX_SEGMENTS)
		return hpq_errf(err, errlen, HPQ_EINVAL, "a plan has 1 to %d segments, not %u",
				CALENDAR_MAX_SEGMENTS, q->max_segments);
	if (q->min_segment < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "the minimum segment must not be negative");
	if (q->min_segment > q->duration)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"the minimum segment is longer than the whole duration");
	if (q->before <= q->after || q->before - q->after < q->duration)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"the window between --after and --before is shorter than the duration");
	if (q->nnodes > c->nnodes)
		return hpq_errf(err, errlen, HPQ_EINVAL, "the pool has only %zu nodes, not %u",
				c->nnodes, q->nnodes);
	if (q->nnodes > c->reservable)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"at most %u nodes of the pool may be reserved at once, not %u",
				c->reservable, q->nnodes);
	return 0;
}

int calendar_search(const struct calendar *c, const struct calendar_query *q,
		    struct calendar_offer **ret, char *err, size_t errlen)
{
	struct search S = {.c = c, .q = q};
	struct calendar_offer *all, cand;
	struct pick *pbuf;
	size_t nall = 0, nuniq = 0;
	int rc, n = 0;

	*ret = NULL;
	rc = query_check(c, q, err, errlen);
	if (rc)
		return rc;
	capfn_build(c, q->team, &S.f);
	/* when the rule next allows fewer than N, from each step on */
	S.next_short = xmalloc(S.f.n * sizeof(*S.next_short));
	for (size_t j = S.f.n; j-- > 0;)
		S.next_short[j] = S.f.cap[j] < (int64_t)q->nnodes ? S.f.t[j]
			: j + 1 < S.f.n ? S.next_short[j + 1] : CALENDAR_FOREVER;
	/* candidate starts: after, and every segment's end in (after, before) */
	{
		struct keyed *kv = xmalloc((c->nrecs + 1) * sizeof(*kv));
		struct keyed *tmp = xmalloc((c->nrecs + 1) * sizeof(*tmp));
		size_t nk = 0;

		kv[nk++] = (struct keyed){time_key(q->after), 0};
		for (size_t i = 0; i < c->nrecs; i++)
			if (c->recs[i].end > q->after && c->recs[i].end < q->before)
				kv[nk++] = (struct keyed){time_key(c->recs[i].end), 0};
		radix_sort(kv, tmp, nk);
		S.starts = xmalloc(nk * sizeof(*S.starts));
		for (size_t i = 0; i < nk; i++)
			if (i == 0 || kv[i].key != kv[i - 1].key)
				S.starts[nuniq++] = (int64_t)(kv[i].key ^ ((uint64_t)1 << 63));
		S.nstarts = nuniq;
		free(kv);
		free(tmp);
	}
	S.win = xmalloc(S.nstarts * sizeof(*S.win));
	sweep_init(&S);

	all = xcalloc(2 * CALENDAR_MAX_SEGMENTS, sizeof(*all));
	for (uint32_t k = 1; k <= q->max_segments; k++) {
		for (int balanced = 0; balanced < 2; balanced++) {
			bool dup = false;

			if (k == 1 && balanced)
				continue;      /* the same pass */
			if (!greedy(&S, k, balanced, &cand))
				continue;
			for (size_t i = 0; i < nall && !dup; i++)
				dup = same_offer(&all[i], &cand);
			if (!dup)
				all[nall++] = cand;
		}
	}
	qsort(all, nall, sizeof(*all), offer_cmp);
	if (nall > q->max_offers)
		nall = q->max_offers ? q->max_offers : 1;
	pbuf = xmalloc((c->nnodes ? c->nnodes : 1) * sizeof(*pbuf));
	for (size_t i = 0; i < nall; i++) {
		for (uint32_t k = 0; k < all[i].nsegments; k++) {
			rc = pick_nodes(c, &all[i].segments[k], pbuf);
			if (rc)
				break;
		}
		if (rc) {
			/* cannot happen: the window said the nodes were there */
			calendar_offers_free(all, (int)nall);
			n = hpq_errf(err, errlen, HPQ_ESTATE, "search: inconsistent calendar");
			all = NULL;
			break;
		}
		n++;
	}
	free(pbuf);
	free(S.ev);
	free(S.gnode);
	free(S.vals);
	free(S.off);
	free(S.rank);
	free(S.fen);
	free(S.win);
	free(S.starts);
	free(S.next_short);
	capfn_free(&S.f);
	*ret = n > 0 ? all : NULL;
	if (n == 0)
		free(all);
	return n;
}
