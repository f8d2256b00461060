/*
 * array.c: task arrays (array.h): the index sets, submit, materializing
 * indices one at a time through the dispatcher's successor hook, the %
 * limit, and loading.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "batchspec.h"
#include "clock.h"
#include "error.h"
#include "log.h"
#include "parse.h"
#include "state-internal.h"
#include "store.h"
#include "xalloc.h"

/* ---------------------------------------------------------------- index sets */

static uint64_t range_count(const struct array_range *r)
{
	return (uint64_t)(r->hi - r->lo) / r->step + 1;
}

void array_set_release(struct array_set *set)
{
	free(set->r);
	memset(set, 0, sizeof(*set));
}

static void set_push(struct array_set *set, struct array_range r)
{
	if (set->n == set->cap) {
		set->cap = set->cap ? 2 * set->cap : 4;
		set->r = xreallocarray(set->r, set->cap, sizeof(*set->r));
	}
	set->r[set->n++] = r;
}

uint64_t array_set_count(const struct array_set *set)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < set->n; i++)
		n += range_count(&set->r[i]);
	return n;
}

uint32_t array_set_min(const struct array_set *set)
{
	return set->r[0].lo;
}

uint32_t array_set_max(const struct array_set *set)
{
	return set->r[set->n - 1].hi;
}

/* The index of the first range that ends at or after idx (n if none). */
static uint32_t set_lower(const struct array_set *set, uint32_t idx)
{
	uint32_t lo = 0, hi = set->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (set->r[mid].hi < idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The index of the range that holds idx, or -1. */
static long set_find(const struct array_set *set, uint32_t idx)
{
	uint32_t lo = set_lower(set, idx);

	if (lo < set->n && set->r[lo].lo <= idx && (idx - set->r[lo].lo) % set->r[lo].step == 0)
		return lo;
	return -1;
}

bool array_set_has(const struct array_set *set, uint32_t idx)
{
	return set_find(set, idx) >= 0;
}

bool array_set_remove(struct array_set *set, uint32_t idx)
{
	long i = set_find(set, idx);
	struct array_range *r;

	if (i < 0)
		return false;
	r = &set->r[i];
	if (r->lo == r->hi) {
		memmove(r, r + 1, (set->n - (uint32_t)i - 1) * sizeof(*r));
		set->n--;
	} else if (idx == r->lo) {
		r->lo += r->step;
	} else if (idx == r->hi) {
		r->hi -= r->step;
	} else {
		struct array_range tail = { idx + r->step, r->hi, r->step };

		r->hi = idx - r->step;
		set_push(set, tail);     /* room first, then move it into place */
		r = &set->r[i];
		memmove(r + 2, r + 1, (set->n - (uint32_t)i - 2) * sizeof(*r));
		r[1] = tail;
	}
	return true;
}

static void set_insert(struct array_set *set, uint32_t at, struct array_range r)
{
	set_push(set, r);            /* room first, then move it into place */
	memmove(set->r + at + 1, set->r + at, (set->n - at - 1) * sizeof(*set->r));
	set->r[at] = r;
}

/* A range's stride: its own, or step for a single index. */
static uint32_t stride(const struct array_range *r, uint32_t step)
{
	return r->lo == r->hi ? step : r->step;
}

void array_set_add(struct array_set *set, uint32_t idx, uint32_t step)
{
	uint32_t lo = set_lower(set, idx);
	struct array_range *p, *q, one = { idx, idx, 1 };
	bool joins_p, joins_q;

	if (!step)
		step = 1;
	if (lo < set->n && set->r[lo].lo <= idx) {
		/* Inside the span of a stepped range, not in it: split it. */
		struct array_range *r = &set->r[lo];
		uint32_t below = idx - (idx - r->lo) % r->step;
		struct array_range tail = { below + r->step, r->hi, r->step };

		if (array_set_has(set, idx))
			return;
		r->hi = below;
		set_insert(set, lo + 1, tail);
		set_insert(set, lo + 1, one);
		return;
	}
	p = lo ? &set->r[lo - 1] : NULL;
	q = lo < set->n ? &set->r[lo] : NULL;
	joins_p = p && idx - p->hi == stride(p, step);
	joins_q = q && q->lo - idx == stride(q, step);
	if (joins_p && joins_q && stride(p, step) == stride(q, step)) {
		p->step = stride(p, step);
		p->hi = q->hi;
		memmove(q, q + 1, (set->n - lo - 1) * sizeof(*q));
		set->n--;
	} else if (joins_p) {
		p->step = stride(p, step);
		p->hi = idx;
	} else if (joins_q) {
		q->step = stride(q, step);
		q->lo = idx;
	} else {
		set_insert(set, lo, one);
	}
}

void array_set_each(const struct array_set *set, uint32_t from,
		    bool (*fn)(void *arg, uint32_t idx), void *arg)
{
	for (uint32_t i = 0; i < set->n; i++) {
		const struct array_range *r = &set->r[i];
		uint64_t k = r->lo;

		if (r->hi < from)
			continue;
		if (from > r->lo)
			k += ((uint64_t)(from - r->lo) + r->step - 1) / r->step * r->step;
		for (; k <= r->hi; k += r->step)
			if (!fn(arg, (uint32_t)k))
				return;
	}
}

void array_set_each_desc(const struct array_set *set, uint32_t from,
			 bool (*fn)(void *arg, uint32_t idx), void *arg)
{
	for (uint32_t i = set->n; i-- > 0;) {
		const struct array_range *r = &set->r[i];
		uint32_t top = r->hi < from ? r->hi : from;
		uint64_t k;

		if (r->lo > from)
			continue;
		k = r->lo + (uint64_t)(top - r->lo) / r->step * r->step;
		for (;; k -= r->step) {
			if (!fn(arg, (uint32_t)k))
				return;
			if (k < (uint64_t)r->lo + r->step)
				break;
		}
	}
}

char *array_set_format(const struct array_set *set)
{
	size_t cap = 64, len = 0;
	char *s = xmalloc(cap);

	s[0] = '\0';
	for (uint32_t i = 0; i < set->n; i++) {
		const struct array_range *r = &set->r[i];
		char item[48];
		size_t n;

		if (r->lo == r->hi)
			n = (size_t)snprintf(item, sizeof(item), "%s%u", i ? "," : "", r->lo);
		else if (r->step == 1)
			n = (size_t)snprintf(item, sizeof(item), "%s%u-%u", i ? "," : "", r->lo,
					     r->hi);
		else
			n = (size_t)snprintf(item, sizeof(item), "%s%u-%u:%u", i ? "," : "", r->lo,
					     r->hi, r->step);
		if (len + n + 1 > cap) {
			while (len + n + 1 > cap)
				cap *= 2;
			s = xrealloc(s, cap);
		}
		memcpy(s + len, item, n + 1);
		len += n;
	}
	return s;
}

static int range_cmp(const void *a, const void *b)
{
	const struct array_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Adds src's indices, none of which is in set, to set: ranges that
 * continue each other with one stride join (step for single indices). */
static void set_merge(struct array_set *set, const struct array_set *src, uint32_t step)
{
	uint32_t k = 0;

	if (!src->n)
		return;
	if (!step)
		step = 1;
	for (uint32_t i = 0; i < src->n; i++)
		set_push(set, src->r[i]);
	qsort(set->r, set->n, sizeof(*set->r), range_cmp);
	for (uint32_t i = 0; i < set->n; i++) {
		struct array_range r = set->r[i];

		if (k) {
			struct array_range *p = &set->r[k - 1];
			uint32_t sp = stride(p, stride(&r, step));

			if (stride(&r, sp) == sp && r.lo - p->hi == sp) {
				p->step = sp;
				p->hi = r.hi;
				continue;
			}
		}
		set->r[k++] = r;
	}
	set->n = k;
}

/*
 * Ranges whose spans overlap ("0-10:2,1-9:2", "1-5,3") are rewritten as
 * plain runs through a bitmap of the indices; an index named twice is
 * there once.
 */
static void set_normalize(struct array_set *set)
{
	uint32_t max = 0, n = 0;
	uint64_t *bits;
	struct array_set out = { 0 };

	for (uint32_t i = 0; i < set->n; i++)
		if (set->r[i].hi > max)
			max = set->r[i].hi;
	bits = xcalloc(max / 64 + 1, sizeof(*bits));
	for (uint32_t i = 0; i < set->n; i++)
		for (uint64_t k = set->r[i].lo; k <= set->r[i].hi; k += set->r[i].step)
			bits[k / 64] |= 1ull << (k % 64);
	for (uint64_t k = 0; k <= max; k++) {
		if (!(bits[k / 64] & (1ull << (k % 64))))
			continue;
		if (n && out.r[n - 1].hi + 1 == k) {
			out.r[n - 1].hi = (uint32_t)k;
		} else {
			set_push(&out, (struct array_range){ (uint32_t)k, (uint32_t)k, 1 });
			n++;
		}
	}
	free(bits);
	array_set_release(set);
	*set = out;
}

/* array_set_parse without its bound on the text's length. */
static int set_parse(const char *spec, struct array_set *set, uint32_t *max_running,
		     struct state_err *e)
{
	const char *p = spec;
	uint64_t count;
	bool overlap = false;

	memset(set, 0, sizeof(*set));
	*max_running = 0;
	if (!*spec)
		return state_errf(e, HPQ_EINVAL, "an empty --array: give indices, e.g. 0-99%%10");
	for (;;) {
		struct array_range r;
		struct hpq_index_range t;

		if (hpq_index_range_read(&p, &t) < 0)
			goto bad;
		if (t.step == 0) {
			array_set_release(set);
			return state_errf(e, HPQ_EINVAL, "--array '%.64s': a step of 0", spec);
		}
		if (t.lo > HPQ_ARRAY_INDEX_MAX || t.hi > HPQ_ARRAY_INDEX_MAX) {
			array_set_release(set);
			return state_errf(e, HPQ_EINVAL, "--array '%.64s': indices go from 0 to %u",
					  spec, HPQ_ARRAY_INDEX_MAX);
		}
		if (t.hi < t.lo) {
			array_set_release(set);
			return state_errf(e, HPQ_EINVAL, "--array '%.64s': range %llu-%llu goes "
					  "down", spec, (unsigned long long)t.lo,
					  (unsigned long long)t.hi);
		}
		r.lo = (uint32_t)t.lo;
		/* a step larger than any range: one index */
		r.step = (uint32_t)(t.step > HPQ_ARRAY_INDEX_MAX ? HPQ_ARRAY_INDEX_MAX + 1 : t.step);
		r.hi = r.lo + (uint32_t)((t.hi - t.lo) / r.step * r.step);
		set_push(set, r);
		if (*p != ',')
			break;
		p++;
	}
	if (*p == '%') {
		uint64_t m;

		if (hpq_parse_uint(p + 1, 0, HPQ_ARRAY_COUNT_MAX, &m) < 0)
			goto bad;
		if (m == 0) {
			array_set_release(set);
			return state_errf(e, HPQ_EINVAL, "--array '%.64s': a %% limit of 0 would "
					  "never run anything", spec);
		}
		*max_running = (uint32_t)m;
	} else if (*p) {
		goto bad;
	}
	qsort(set->r, set->n, sizeof(*set->r), range_cmp);
	for (uint32_t i = 1; i < set->n; i++)
		if (set->r[i].lo <= set->r[i - 1].hi)
			overlap = true;
	count = array_set_count(set);
	if (count > HPQ_ARRAY_COUNT_MAX) {
		array_set_release(set);
		return state_errf(e, HPQ_EINVAL, "--array '%.64s' has %llu indices, more than %u",
				  spec, (unsigned long long)count, HPQ_ARRAY_COUNT_MAX);
	}
	if (overlap)
		set_normalize(set);
	return 0;
bad:
	array_set_release(set);
	return state_errf(e, HPQ_EINVAL, "--array '%.64s' is not a list of indices N, ranges "
			  "N-M or N-M:STEP, with an optional %%LIMIT (e.g. 0-999%%50)", spec);
}

int array_set_parse(const char *spec, struct array_set *set, uint32_t *max_running,
		    struct state_err *e)
{
	if (strlen(spec) > HPQ_ARRAY_SPEC_MAX) {
		memset(set, 0, sizeof(*set));
		*max_running = 0;
		return state_errf(e, HPQ_EINVAL, "--array is longer than %d bytes", HPQ_ARRAY_SPEC_MAX);
	}
	return set_parse(spec, set, max_running, e);
}

int array_set_load(const char *text, struct array_set *set)
{
	uint32_t m;

	return set_parse(text, set, &m, NULL);
}

/* ---------------------------------------------------------------- the arrays of the state */

size_t arrays_lower_bound(const struct state *st, uint64_t id)
{
	size_t lo = 0, hi = st->narrays;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->arrays[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct array *array_find(const struct state *st, uint64_t id)
{
	size_t i;

	if (!id)                     /* a task in no array */
		return NULL;
	i = arrays_lower_bound(st, id);

	return i < st->narrays && st->arrays[i]->id == id ? st->arrays[i] : NULL;
}

static void arrays_add(struct state *st, struct array *a)
{
	size_t i = arrays_lower_bound(st, a->id);

	if (st->narrays == st->arrays_cap) {
		st->arrays_cap = st->arrays_cap ? 2 * st->arrays_cap : 16;
		st->arrays = xreallocarray(st->arrays, st->arrays_cap, sizeof(*st->arrays));
	}
	memmove(st->arrays + i + 1, st->arrays + i, (st->narrays - i) * sizeof(*st->arrays));
	st->arrays[i] = a;
	st->narrays++;
}

static void array_free(struct array *a)
{
	free(a->spec);
	free(a->dependency);
	free(a->later);
	array_set_release(&a->pending);
	array_set_release(&a->gone_bad);
	array_set_release(&a->dropped);
	array_set_release(&a->rows);
	state_task_free(a->tmpl);
	free(a);
}

void array_release_all(struct state *st)
{
	for (size_t i = 0; i < st->narrays; i++)
		array_free(st->arrays[i]);
	free(st->arrays);
	st->arrays = NULL;
	st->narrays = st->arrays_cap = 0;
	for (size_t i = 0; i < st->narrays_gone; i++)
		array_set_release(&st->arrays_gone[i].bad);
	free(st->arrays_gone);
	st->arrays_gone = NULL;
	st->narrays_gone = st->arrays_gone_cap = 0;
}

struct task *array_task_find(const struct state *st, const struct array *a, uint32_t idx)
{
	/* An array's tasks have ids from its own on. */
	for (size_t i = state_task_lower_bound(st, a->id); i < st->ntasks; i++) {
		struct task *t = st->tasks[i];

		if (t->array_id == a->id && t->array_index == idx)
			return t;
	}
	return NULL;
}

char *array_pending_spec(const struct array *a)
{
	char *set = array_set_format(&a->pending), *s;
	size_t n = strlen(set) + 16;

	if (!a->max_running)
		return set;
	s = xmalloc(n);
	snprintf(s, n, "%s%%%u", set, a->max_running);
	free(set);
	return s;
}

const char *array_pending_reason(const struct state *st, const struct array *a)
{
	if (a->held)
		return "held";
	if (a->head)
		return state_task_reason(st, a->head);
	return a->max_running ? "array-limit" : "array";
}

static void array_record(struct state *st, const struct array *a)
{
	char *pending = array_set_format(&a->pending), *dropped = array_set_format(&a->dropped);
	struct store_array_row row = {
		.id = a->id,
		.spec = a->spec,
		.pending = pending,
		.max_running = a->max_running,
		.held = a->held,
		.dependency = a->dependency,
		.dropped = dropped,
	};

	store_array_put(st->store, &row);
	free(pending);
	free(dropped);
}

static char *sdup(const char *s)
{
	return str_dup(s);
}

/* What every index is made of: t's request, not its run. */
static struct task *tmpl_copy(const struct task *t)
{
	struct task *c = state_task_new();

	c->st.id = t->st.id;
	c->st.submit_ms = t->st.submit_ms;
	c->st.team = t->st.team;
	c->st.pool = t->st.pool;
	c->st.class_id = t->st.class_id;
	c->st.nnodes = t->st.nnodes;
	c->st.per_node = t->st.per_node;
	c->state = TASK_PENDING;
	state_task_set_name(c, t->name);
	c->user = sdup(t->user);
	c->team = sdup(t->team);
	c->cls = sdup(t->cls);
	c->pool = sdup(t->pool);
	c->uid = t->uid;
	c->gid = t->gid;
	c->submit_ms = c->queue_ms = t->submit_ms;
	c->reason = str_dup("");
	c->done = str_dup("");
	c->time_limit_s = t->time_limit_s;
	c->grace_s = t->grace_s;
	c->preempt_signal = t->preempt_signal;
	c->checkpoint_dir = sdup(t->checkpoint_dir);
	c->cwd = sdup(t->cwd);
	c->argv = xstrv_pack(t->argv, t->argc);
	c->argc = t->argc;
	/* Not its environment nor its script: RunTask reads both from the
	 * array's first task in the store (agentlink.c). */
	c->array_id = t->array_id;
	c->array_index = t->array_index;
	c->output = sdup(t->output);
	c->error = sdup(t->error);
	c->dependency = sdup(t->dependency);
	c->kill_on_invalid_dep = t->kill_on_invalid_dep;
	c->submit_dir = sdup(t->submit_dir);
	c->ntasks_per_node = t->ntasks_per_node;
	c->has_script = t->has_script || t->script;
	c->requeue_by = str_dup("");
	return c;
}

static void set_whole(struct array *a, const struct array_set *set)
{
	a->min = array_set_min(set);
	a->max = array_set_max(set);
	a->count = (uint32_t)array_set_count(set);
	a->step = set->n == 1 ? set->r[0].step : 1;
	if (a->count == 1)
		a->step = 1;
}

/* ---------------------------------------------------------------- submit */

int array_submit_check(const char *spec, struct state_err *e)
{
	struct array_set set;
	uint32_t m;
	int r = array_set_parse(spec, &set, &m, e);

	array_set_release(&set);
	return r;
}

void array_submit_first(struct task *t, const char *spec)
{
	struct array_set set;
	uint32_t m;

	if (array_set_parse(spec, &set, &m, NULL) < 0)
		return;
	t->array_id = t->st.id;
	t->array_index = array_set_min(&set);
	t->st.successor = true;
	array_set_release(&set);
}

/* What a's indices wait for: dependency, as submitted, and later, what
 * the ones after the first to start still wait for. */
static void set_dependency(struct array *a, const char *dependency, const char *later)
{
	a->dependency = xstrdup(dependency ? dependency : "");
	a->later = xstrdup(later ? later : "");
}

void array_submit_create(struct state *st, struct task *t, const char *spec,
			 const char *dependency, const char *later)
{
	struct array *a = xcalloc(1, sizeof(*a));

	if (array_set_parse(spec, &a->pending, &a->max_running, NULL) < 0) {
		free(a);
		return;
	}
	a->id = t->st.id;
	set_whole(a, &a->pending);
	a->spec = array_set_format(&a->pending);
	array_set_remove(&a->pending, t->array_index);
	a->tmpl = tmpl_copy(t);
	/* Not t's: a dependency met at submit leaves t with none, and
	 * singleton holds for each index anew. */
	set_dependency(a, dependency, later);
	str_set(&a->tmpl->dependency, a->dependency);
	a->held = t->held;
	a->head = t;
	if (t->st.state == SCHED_PENDING)
		a->noffered = 1;
	arrays_add(st, a);
	array_record(st, a);
}

/* ---------------------------------------------------------------- materializing */

struct task *array_materialize(struct state *st, struct array *a, uint32_t idx)
{
	struct task *t;

	if (!array_set_remove(&a->pending, idx))
		return NULL;
	t = tmpl_copy(a->tmpl);
	t->st.id = st->next_id;
	t->array_id = a->id;
	t->array_index = idx;
	t->st.successor = true;
	if (a->deps_met)
		str_set(&t->dependency, a->later);
	task_adopt(st, t);
	array_record(st, a);
	/* Nothing is made from it any more (pending never grows back): an
	 * array whose indices all started keeps no template while they run. */
	if (array_set_empty(&a->pending)) {
		state_task_free(a->tmpl);
		a->tmpl = NULL;
	}
	return t;
}

/* What waits on a looks again: n of its indices ended as they were
 * dropped, and no task ended with them (state.h). */
static void tell_dropped(struct state *st, struct array *a)
{
	for (size_t i = 0; i < st->nobservers; i++)
		if (st->observers[i].indices_dropped)
			st->observers[i].indices_dropped(st->observers[i].arg, a);
}

void array_drop_done(struct state *st, struct array *a, uint32_t n)
{
	if (!n)
		return;
	a->nbad += n;
	a->nbegun += n;
	/* They end now: the array stays for keep_finished from here. */
	a->last_end_ms = hpq_now_ms();
	array_record(st, a);
	tell_dropped(st, a);
}

void array_drop_pending(struct state *st, struct array *a)
{
	uint32_t n = (uint32_t)array_set_count(&a->pending);

	/* They never get a row: the store keeps them as ranges, and so do
	 * dependencies on them. */
	set_merge(&a->gone_bad, &a->pending, a->step);
	set_merge(&a->dropped, &a->pending, a->step);
	array_set_release(&a->pending);
	if (n)
		array_drop_done(st, a, n);
	else
		array_record(st, a);
}

bool array_drop_index(struct array *a, uint32_t idx)
{
	if (!array_set_remove(&a->pending, idx))
		return false;
	array_set_add(&a->gone_bad, idx, a->step);
	array_set_add(&a->dropped, idx, a->step);
	return true;
}

void array_set_held(struct state *st, struct array *a, bool held)
{
	if (a->held == held)
		return;
	a->held = held;
	array_record(st, a);
}

/*
 * The % limit counts what runs and what the dispatcher may start: both
 * together stay within it, so that one cycle cannot start more.
 */
static bool room(const struct array *a)
{
	return !a->max_running || a->nactive + a->noffered < a->max_running;
}

/* May a have one more index in the dispatcher? */
static bool may_grow(const struct array *a)
{
	return !a->head && !a->held && !array_set_empty(&a->pending) && room(a);
}

static bool parked(const struct task *t)
{
	return t->state == TASK_PENDING && !t->held && t->st.state == SCHED_NONE && t->reason &&
	       !strcmp(t->reason, "array-limit");
}

int array_offer(struct state *st, struct task *t)
{
	struct array *a = array_find(st, t->array_id);
	int r;

	if (a && !room(a)) {
		if (!parked(t)) {
			str_set(&t->reason, "array-limit");
			a->nparked++;
			task_save(st, t);
		}
		return 0;
	}
	if (a && parked(t) && a->nparked)
		a->nparked--;
	r = sched_task_submit(st->sched, &t->st);
	if (r < 0)
		return r;
	if (a)
		a->noffered++;
	return 1;
}

/* Indices parked by the % limit go first, in index order. */
static void offer_parked(struct state *st, struct array *a)
{
	for (size_t i = state_task_lower_bound(st, a->id); i < st->ntasks && a->nparked &&
							room(a); i++) {
		struct task *t = st->tasks[i];

		if (t->array_id != a->id || !parked(t))
			continue;
		str_set(&t->reason, "");
		a->nparked--;
		if (sched_task_submit(st->sched, &t->st) == 0) {
			a->noffered++;
			task_save(st, t);
			mark_dirty(st);
		}
	}
}

void array_refill(struct state *st, struct array *a)
{
	struct task *t;

	if (a->nparked)
		offer_parked(st, a);
	if (!may_grow(a))
		return;
	t = array_materialize(st, a, array_set_min(&a->pending));
	if (!t)
		return;
	a->head = t;
	task_entered(st, t);
	mark_dirty(st);
}

struct sched_task *array_successor(void *ctx, struct sched_task *started)
{
	struct state *st = ctx;
	struct task *t = state_task_of(started), *n;
	struct array *a = array_find(st, t->array_id);

	if (!a) {
		started->successor = false;
		return NULL;
	}
	a->nactive++;
	if (a->noffered)
		a->noffered--;
	a->deps_met = true;
	if (a->head != t)
		return NULL;
	a->head = NULL;
	if (!may_grow(a))
		return NULL;
	n = array_materialize(st, a, array_set_min(&a->pending));
	if (!n)
		return NULL;
	a->head = n;
	/* singleton: t runs now, so n waits for it out of the dispatcher. */
	if (*a->later && task_successor_held(st, n))
		return NULL;
	a->noffered++;
	return &n->st;
}

/* ---------------------------------------------------------------- following its tasks (state.h) */

static void array_on_leaving(void *arg, struct task *t)
{
	struct array *a = array_find(arg, t->array_id);

	if (!a)
		return;
	if (a->head == t)
		a->head = NULL;
	if ((t->st.state == SCHED_RUNNING || t->st.state == SCHED_PREEMPTING) && a->nactive)
		a->nactive--;
	if (t->st.state == SCHED_PENDING && a->noffered)
		a->noffered--;
	if (parked(t) && a->nparked)
		a->nparked--;
}

static void array_on_requeued(void *arg, struct task *t)
{
	struct array *a = array_find(arg, t->array_id);

	if (a && t->st.state == SCHED_PENDING)
		a->noffered++;
}

static void array_on_started(void *arg, struct task *t)
{
	struct array *a = array_find(arg, t->array_id);

	if (a && t->attempts == 1)
		a->nbegun++;
}

static void array_on_ended(void *arg, struct task *t)
{
	struct state *st = arg;
	struct array *a = array_find(st, t->array_id);

	if (!a)
		return;
	if (!t->attempts)
		a->nbegun++;
	if (t->state == TASK_COMPLETED)
		a->nok++;
	else
		a->nbad++;
	if (t->end_ms > a->last_end_ms)
		a->last_end_ms = t->end_ms;
	array_refill(st, a);
}

bool array_has_index(const struct array *a, uint32_t idx)
{
	struct array_set all = { 0 };
	struct state_err e = { 0 };
	uint32_t max_running;
	bool has;

	if (array_set_parse(a->spec, &all, &max_running, &e) < 0)
		return idx >= a->min && idx <= a->max;
	has = array_set_has(&all, idx);
	array_set_release(&all);
	return has;
}

static void array_on_gone(void *arg, const struct task *t)
{
	struct array *a = array_find(arg, t->array_id);

	if (a && t->state != TASK_COMPLETED)
		array_set_add(&a->gone_bad, t->array_index, a->step);
}

/* The first record of st->arrays_gone whose id is id or above. */
static size_t gone_lower_bound(const struct state *st, uint64_t id)
{
	size_t lo = 0, hi = st->narrays_gone;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->arrays_gone[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* set, which is kept as it is from now on, without room to grow. */
static void set_trim(struct array_set *set)
{
	if (set->n && set->cap > set->n) {
		set->r = xreallocarray(set->r, set->n, sizeof(*set->r));
		set->cap = set->n;
	}
}

/* The record of array id, which left memory, with its indices bad. */
static void gone_insert(struct state *st, uint64_t id, struct array_set bad)
{
	size_t i = gone_lower_bound(st, id);

	if (st->narrays_gone == st->arrays_gone_cap) {
		st->arrays_gone_cap = st->arrays_gone_cap ? 2 * st->arrays_gone_cap : 16;
		st->arrays_gone = xreallocarray(st->arrays_gone, st->arrays_gone_cap,
						sizeof(*st->arrays_gone));
	}
	memmove(st->arrays_gone + i + 1, st->arrays_gone + i,
		(st->narrays_gone - i) * sizeof(*st->arrays_gone));
	st->arrays_gone[i] = (struct array_gone){ .id = id, .bad = bad };
	st->narrays_gone++;
}

/* a leaves memory with some indices completed and some not: the ones
 * that did not (dropped ones too), all of them in its gone_bad now that
 * its tasks have left, stay for dependencies on them. */
static void gone_keep_bad(struct state *st, struct array *a)
{
	struct array_set bad = a->gone_bad;

	memset(&a->gone_bad, 0, sizeof(a->gone_bad));
	set_trim(&bad);
	gone_insert(st, a->id, bad);
}

bool array_gone_completed(const struct state *st, uint64_t id, uint32_t idx)
{
	bool ok = false;
	size_t lo;

	/* Not a task that did not complete: all of it completed. */
	if (!state_task_gone(st, id, &ok) || ok)
		return ok;
	lo = gone_lower_bound(st, id);
	/* Without a record none of it completed. */
	return lo < st->narrays_gone && st->arrays_gone[lo].id == id &&
	       !array_set_has(&st->arrays_gone[lo].bad, idx);
}

/* Every index ended, and the last of them before ended_before_ms: its
 * tasks, which ended no later, have left memory before it. */
static bool array_may_leave(const struct array *a, int64_t ended_before_ms)
{
	return array_set_empty(&a->pending) && !a->head && !a->nactive && !a->noffered &&
	       !a->nparked && a->nok + a->nbad >= a->count && a->last_end_ms < ended_before_ms;
}

/* Arrays whose every index ended before ended_before_ms, and whose tasks
 * all left memory, go too; one that did not all complete stays known as
 * a task that did not (for dependencies on the whole array). */
static size_t array_on_evicted(void *arg, int64_t ended_before_ms, size_t max)
{
	struct state *st = arg;
	size_t k = 0, n = 0;

	for (size_t i = 0; i < st->narrays; i++) {
		struct array *a = st->arrays[i];

		if (n < max && array_may_leave(a, ended_before_ms)) {
			if (a->nbad)
				task_gone_bad(st, a->id);
			if (a->nbad && a->nok)
				gone_keep_bad(st, a);
			array_free(a);
			n++;
			continue;
		}
		st->arrays[k++] = a;
	}
	st->narrays = k;
	if (n && st->arrays_cap > 64 && st->narrays < st->arrays_cap / 4) {
		st->arrays_cap = st->narrays > 32 ? 2 * st->narrays : 64;
		st->arrays = xreallocarray(st->arrays, st->arrays_cap, sizeof(*st->arrays));
	}
	return n;
}

void array_follow_tasks(struct state *st)
{
	state_observe(st, &(struct state_observer){
		.task_leaving = array_on_leaving,
		.task_requeued = array_on_requeued,
		.task_started = array_on_started,
		.task_ended = array_on_ended,
		.task_gone = array_on_gone,
		.tasks_evicted = array_on_evicted,
		.arg = st,
	});
}

void array_run_fields(const struct state *st, const struct task *t, uint32_t *min,
		      uint32_t *max, uint32_t *count, uint32_t *step)
{
	const struct array *a = array_find(st, t->array_id);

	*min = a ? a->min : 0;
	*max = a ? a->max : 0;
	*count = a ? a->count : 0;
	*step = a ? a->step : 0;
}

/* ---------------------------------------------------------------- loading */

void array_load(struct state *st, const struct store_array_row *row, const char *later)
{
	struct array *a;
	struct array_set all;
	uint32_t m;

	if (array_set_parse(row->spec, &all, &m, NULL) < 0) {
		log_warn("array %llu has an unreadable spec '%s': ignored",
			 (unsigned long long)row->id, row->spec);
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->id = row->id;
	set_whole(a, &all);
	array_set_release(&all);
	a->spec = xstrdup(row->spec);
	if (*row->pending && array_set_load(row->pending, &a->pending) < 0) {
		log_warn("array %llu has unreadable pending indices '%s': none kept",
			 (unsigned long long)row->id, row->pending);
		memset(&a->pending, 0, sizeof(a->pending));
	}
	a->max_running = row->max_running;
	a->held = row->held;
	set_dependency(a, row->dependency, later);
	if (!row->dropped) {
		a->dropped_unknown = true;
	} else if (*row->dropped && array_set_load(row->dropped, &a->dropped) < 0) {
		log_warn("array %llu has unreadable dropped indices '%s': none kept",
			 (unsigned long long)row->id, row->dropped);
		memset(&a->dropped, 0, sizeof(a->dropped));
	}
	set_merge(&a->gone_bad, &a->dropped, a->step);
	arrays_add(st, a);
}

void array_load_task(struct state *st, const struct store_task_row *row)
{
	struct array *a = array_find(st, row->array_id);
	struct task *t, tmp;

	if (!a || row->id != row->array_id || a->tmpl || array_set_empty(&a->pending))
		return;
	/* The template from the row: the task's own copy may lose its
	 * environment and script once it ends. */
	memset(&tmp, 0, sizeof(tmp));
	tmp.st.id = row->id;
	tmp.st.nnodes = row->nnodes ? row->nnodes : 1;
	tmp.st.per_node = row->per_node;
	tmp.name = (char *)row->name;
	tmp.user = (char *)row->user;
	tmp.team = (char *)row->team;
	tmp.cls = (char *)row->cls;
	tmp.pool = (char *)row->pool;
	tmp.uid = row->uid;
	tmp.gid = row->gid;
	tmp.submit_ms = tmp.st.submit_ms = row->submit_ms;
	tmp.time_limit_s = row->time_limit_s;
	tmp.grace_s = row->grace_s;
	tmp.preempt_signal = row->preempt_signal;
	tmp.checkpoint_dir = (char *)row->checkpoint_dir;
	tmp.cwd = (char *)row->cwd;
	tmp.argv = (char **)row->argv;
	tmp.argc = row->argc;
	tmp.array_id = row->array_id;
	tmp.array_index = row->array_index;
	tmp.output = (char *)row->output;
	tmp.error = (char *)row->error;
	/* The first task's own is what it still waits for: "" once met. */
	tmp.dependency = (char *)(*a->dependency ? a->dependency : row->dependency);
	tmp.kill_on_invalid_dep = row->kill_on_invalid_dep;
	tmp.submit_dir = (char *)row->submit_dir;
	tmp.ntasks_per_node = row->ntasks_per_node;
	tmp.has_script = row->script != NULL;
	t = tmpl_copy(&tmp);
	a->tmpl = t;
}

/* One loaded task of a: what the array counts of it. */
static void load_count(struct array *a, struct task *t)
{
	if (t->attempts || task_state_final(t->state))
		a->nbegun++;
	if (t->attempts)
		a->deps_met = true;
	if (t->state == TASK_COMPLETED)
		a->nok++;
	else if (task_state_final(t->state))
		a->nbad++;
	if (task_state_final(t->state)) {
		if (t->end_ms > a->last_end_ms)
			a->last_end_ms = t->end_ms;
		return;
	}
	t->st.successor = true;
	if (t->st.state == SCHED_RUNNING || t->st.state == SCHED_PREEMPTING) {
		a->nactive++;
		return;
	}
	if (t->st.state == SCHED_PENDING)
		a->noffered++;
	else if (parked(t))
		a->nparked++;
	/* The first one that waits stands for the rest again. */
	if (!t->held && !parked(t) && !a->head)
		a->head = t;
}

void array_load_left(struct state *st, uint64_t id, const char *spec, const char *dropped)
{
	struct array_set bad = { 0 }, all;
	struct array whole = { 0 };
	size_t i;
	uint32_t m;

	/* Unreadable: kept whole, its other indices count as completed. */
	if (array_set_parse(spec, &all, &m, NULL) == 0) {
		set_whole(&whole, &all);
		array_set_release(&all);
	}
	if (*dropped && array_set_load(dropped, &bad) < 0) {
		log_warn("array %llu has unreadable dropped indices '%s': none kept",
			 (unsigned long long)id, dropped);
		memset(&bad, 0, sizeof(bad));
	}
	gone_insert(st, id, bad);
	i = gone_lower_bound(st, id);
	st->arrays_gone[i].count = whole.count;
	st->arrays_gone[i].step = whole.step;
}

void array_load_gone(struct state *st, uint64_t array_id, uint32_t index, bool completed)
{
	struct array *a = array_find(st, array_id);
	size_t i;

	if (!a) {
		/* One that left: its record (array_load_left), if it has one. */
		i = gone_lower_bound(st, array_id);
		if (!completed && i < st->narrays_gone && st->arrays_gone[i].id == array_id)
			array_set_add(&st->arrays_gone[i].bad, index, st->arrays_gone[i].step);
		return;
	}
	if (!completed)
		array_set_add(&a->gone_bad, index, a->step);
	if (a->dropped_unknown)
		array_set_add(&a->rows, index, a->step);
}

struct drop_walk {
	struct array *a;
	uint32_t last;
};

static bool dropped_one(void *arg, uint32_t idx)
{
	struct drop_walk *w = arg;
	struct array *a = w->a;

	if (array_set_has(&a->pending, idx) || array_set_has(&a->rows, idx))
		return true;
	/* In order: the distance from the last joins runs of one stride. */
	array_set_add(&a->dropped, idx, a->dropped.n ? idx - w->last : 1);
	w->last = idx;
	return true;
}

/*
 * a's row is from before schema 16, which did not keep the indices a
 * cancel dropped: they are those with no row that are not pending, as
 * long as [tasks] retain has deleted none of its rows since (a start
 * comes first; one before 16 lost the outcome of those it deleted, which
 * count as dropped as they did). Recorded: the next start knows them.
 */
static void load_dropped(struct state *st, struct array *a)
{
	struct drop_walk w = { .a = a };
	struct array_set all;
	uint32_t m;

	if (array_set_parse(a->spec, &all, &m, NULL) == 0) {
		array_set_each(&all, 0, dropped_one, &w);
		array_set_release(&all);
	}
	array_set_release(&a->rows);
	set_merge(&a->gone_bad, &a->dropped, a->step);
	a->dropped_unknown = false;
	array_record(st, a);
}

/* The records of the arrays that left (array_load_left), complete: those
 * that all failed need none, as when they leave memory (array_on_evicted). */
static void gone_load_done(struct state *st)
{
	size_t k = 0;

	for (size_t i = 0; i < st->narrays_gone; i++) {
		struct array_gone *g = &st->arrays_gone[i];

		if (g->count && array_set_count(&g->bad) >= g->count) {
			array_set_release(&g->bad);
			continue;
		}
		g->count = 0;
		set_trim(&g->bad);
		st->arrays_gone[k++] = *g;
	}
	st->narrays_gone = k;
}

void array_load_done(struct state *st)
{
	uint32_t *nmat = st->narrays ? xcalloc(st->narrays, sizeof(*nmat)) : NULL;

	gone_load_done(st);

	/* One pass over the tasks, whatever the number of arrays. */
	for (size_t k = 0; k < st->ntasks; k++) {
		struct task *t = st->tasks[k];
		size_t i;

		if (!t->array_id)
			continue;
		i = arrays_lower_bound(st, t->array_id);
		if (i >= st->narrays || st->arrays[i]->id != t->array_id)
			continue;
		nmat[i]++;
		if (st->arrays[i]->dropped_unknown)
			array_set_add(&st->arrays[i]->rows, t->array_index, st->arrays[i]->step);
		load_count(st->arrays[i], t);
	}
	for (size_t i = 0; i < st->narrays; i++) {
		struct array *a = st->arrays[i];
		uint64_t left = array_set_count(&a->pending);
		struct team *team;

		struct prio_class *cls;
		struct pool *pool;

		if (a->dropped_unknown)
			load_dropped(st, a);
		/*
		 * Indices neither loaded nor pending ended and left memory, or
		 * were dropped by a cancel: those that did not complete are in
		 * gone_bad, from their rows, from the rows [tasks] retain
		 * deleted (arrays_gone_bad) and from dropped; the rest completed.
		 */
		if (a->count > nmat[i] + left) {
			uint32_t gone = a->count - nmat[i] - (uint32_t)left;
			uint64_t bad = array_set_count(&a->gone_bad);

			if (bad > gone)
				bad = gone;
			a->nbad += (uint32_t)bad;
			a->nok += gone - (uint32_t)bad;
			a->nbegun += gone;
		}
		if (!a->tmpl) {
			if (left) {
				log_warn("array %llu lost its first task: its %llu pending indices "
					 "are dropped", (unsigned long long)a->id,
					 (unsigned long long)left);
				array_drop_pending(st, a);
			}
			continue;
		}
		team = state_team_find(st, a->tmpl->team);
		cls = state_class_find(st, a->tmpl->cls);
		pool = state_pool_find(st, a->tmpl->pool);
		if (!team || !cls || !pool) {
			if (left) {
				log_warn("array %llu: its team, class or pool is gone: its pending "
					 "indices are dropped", (unsigned long long)a->id);
				array_drop_pending(st, a);
			}
			continue;
		}
		a->tmpl->st.team = team->id;
		a->tmpl->st.class_id = cls->id;
		a->tmpl->st.pool = pool->id;
		array_refill(st, a);
	}
	free(nmat);
}
