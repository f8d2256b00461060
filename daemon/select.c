/*
 * select.c: resolving a TaskSelector into tasks, array indices and array
 * rests (select.h). It reads the model and changes nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "array.h"
#include "error.h"
#include "select.h"
#include "state.h"
#include "xalloc.h"

struct filter {
	const char *user, *team, *name;
	uint32_t states;             /* bit per task_state; 0: any */
	uint64_t array_id;
	bool any;                    /* some filter is set */
};

static bool filter_match(const struct filter *f, const struct task *t, uint64_t array_id,
			 enum task_state state)
{
	if (f->user && strcmp(t->user, f->user))
		return false;
	if (f->team && strcmp(t->team, f->team))
		return false;
	if (f->name && strcmp(t->name, f->name))
		return false;
	if (f->states && !(f->states & (1u << state)))
		return false;
	if (f->array_id && array_id != f->array_id)
		return false;
	return true;
}

static struct sel_item *push(struct selection *s, enum sel_kind kind)
{
	struct sel_item *it;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	it = &s->v[s->n++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	return it;
}

static void push_task(struct selection *s, const struct filter *f, struct task *t)
{
	if (!filter_match(f, t, t->array_id, t->state))
		return;
	push(s, SEL_TASK)->t = t;
	s->v[s->n - 1].id = t->st.id;
}

/*
 * A task that a whole array or a filter without ids takes: not one that
 * has ended, unless the states asked for name its state. Nothing can be
 * done to it, and `hpq cancel ARRAY` once some indices finished, or
 * `hpq cancel --user U`, would fail for every one of them.
 */
static void push_live_task(struct selection *s, const struct filter *f, struct task *t)
{
	if (task_state_final(t->state) && !(f->states & 1u << t->state))
		return;
	push_task(s, f, t);
}

/* A not materialized index, or the rest of an array: as its template, PENDING. */
static void push_pending(struct selection *s, const struct filter *f, struct array *a,
			 enum sel_kind kind, uint32_t index)
{
	struct sel_item *it;

	if (!a->tmpl || !filter_match(f, a->tmpl, a->id, TASK_PENDING))
		return;
	it = push(s, kind);
	it->a = a;
	it->index = index;
	it->id = a->id;
}

static void push_missing(struct selection *s, uint64_t id, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void push_missing(struct selection *s, uint64_t id, int code, const char *fmt, ...)
{
	struct sel_item *it = push(s, SEL_MISSING);
	char buf[160];
	va_list ap;

	it->id = id;
	it->code = code;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	it->msg = xstrdup(buf);
}

void select_release(struct selection *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].msg);
	free(s->v);
	free(s->folded_msg);
	memset(s, 0, sizeof(*s));
}

int select_parse_id(const char *s, uint64_t *id, bool *has_set, struct array_set *set,
		    struct state_err *e)
{
	const char *p = s;
	uint64_t v = 0;
	uint32_t m;

	*has_set = false;
	if (*p < '0' || *p > '9')
		goto bad;
	while (*p >= '0' && *p <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			goto bad;
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	*id = v;
	if (!*p)
		return 0;
	if (*p++ != '_')
		goto bad;
	if (*p == '[') {
		size_t n = strlen(++p);
		char inner[HPQ_ARRAY_SPEC_MAX + 1];
		int r;

		if (n < 2 || p[n - 1] != ']' || n > sizeof(inner) || memchr(p, '%', n))
			goto bad;
		memcpy(inner, p, n - 1);
		inner[n - 1] = '\0';
		r = array_set_parse(inner, set, &m, e);
		if (r < 0) {
			/* The reason is in e->msg, which the message is written over. */
			char why[sizeof(e->msg)];

			snprintf(why, sizeof(why), "%s", e ? e->msg : "bad indices");
			return state_errf(e, r, "'%.64s': %s", s, why);
		}
	} else {
		char one[16];
		size_t n = strlen(p);
		int r;

		if (!n || n >= sizeof(one) || strspn(p, "0123456789") != n)
			goto bad;
		memcpy(one, p, n + 1);
		r = array_set_parse(one, set, &m, e);
		if (r < 0)
			return r;
	}
	*has_set = true;
	return 0;
bad:
	return state_errf(e, HPQ_EINVAL, "'%.64s' is not a task id: use 12, 12_5 or 12_[1-3,7]",
			  s);
}

/* index -> task of one array, sorted by index, for ids with many indices. */
struct idx_task {
	uint32_t index;
	struct task *t;
};

static int idx_cmp(const void *a, const void *b)
{
	const struct idx_task *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

struct each_arg {
	struct selection *s;
	const struct filter *f;
	struct array *a;
	struct idx_task *map;
	size_t nmap;
	struct array_set all;        /* a's indices (its spec), parsed once */
	bool has_all;
	/* The indices named one after another that have ended (HPQ_ESTATE)
	 * or never were (HPQ_ENOTFOUND): one item, not one each, so that
	 * 12_[0-999999] of a short array is not a reply of a million. */
	int run_code;                /* 0: no run */
	uint32_t run_first, run_last;
	uint64_t run_n;
};

/* The run of missing indices as one item. */
static void end_run(struct each_arg *x)
{
	unsigned long long id = x->a->id, n = x->run_n;
	bool gapless = x->run_last - x->run_first + 1 == n;

	if (!x->run_code)
		return;
	if (n == 1 && x->run_code == HPQ_ESTATE)
		push_missing(x->s, id, HPQ_ESTATE, "array %llu index %u has already ended", id,
			     x->run_first);
	else if (n == 1)
		push_missing(x->s, id, HPQ_ENOTFOUND, "array %llu has no index %u", id,
			     x->run_first);
	else if (x->run_code == HPQ_ESTATE && gapless)
		push_missing(x->s, id, HPQ_ESTATE, "array %llu indices %u-%u have already ended",
			     id, x->run_first, x->run_last);
	else if (x->run_code == HPQ_ESTATE)
		push_missing(x->s, id, HPQ_ESTATE, "%llu indices of array %llu named from %u to "
			     "%u have already ended", n, id, x->run_first, x->run_last);
	else if (gapless)
		push_missing(x->s, id, HPQ_ENOTFOUND, "array %llu has no indices %u-%u", id,
			     x->run_first, x->run_last);
	else
		push_missing(x->s, id, HPQ_ENOTFOUND, "array %llu has none of the %llu indices "
			     "named from %u to %u", id, n, x->run_first, x->run_last);
	x->run_code = 0;
}

static void missing_index(struct each_arg *x, int code, uint32_t idx)
{
	if (x->run_code != code) {
		end_run(x);
		x->run_code = code;
		x->run_first = idx;
		x->run_n = 0;
	}
	x->run_last = idx;
	x->run_n++;
}

static bool each_index(void *arg, uint32_t idx)
{
	struct each_arg *x = arg;
	struct idx_task key = { idx, NULL }, *hit;

	hit = x->nmap ? bsearch(&key, x->map, x->nmap, sizeof(*x->map), idx_cmp) : NULL;
	if (hit || array_set_has(&x->a->pending, idx))
		end_run(x);
	if (hit)
		push_task(x->s, x->f, hit->t);
	else if (array_set_has(&x->a->pending, idx))
		push_pending(x->s, x->f, x->a, SEL_INDEX, idx);
	else if (x->has_all ? array_set_has(&x->all, idx) : array_has_index(x->a, idx))
		missing_index(x, HPQ_ESTATE, idx);
	else
		missing_index(x, HPQ_ENOTFOUND, idx);
	return x->s->n < SELECT_MAX_ITEMS;
}

static void select_indices(const struct state *st, struct selection *s, const struct filter *f,
			   struct array *a, const struct array_set *set)
{
	struct each_arg x = { .s = s, .f = f, .a = a };
	uint32_t max_running;
	size_t cap = 0;

	for (size_t i = state_task_lower_bound(st, a->id); i < st->ntasks; i++) {
		struct task *t = st->tasks[i];

		if (t->array_id != a->id)
			continue;
		if (x.nmap == cap) {
			cap = cap ? 2 * cap : 16;
			x.map = xreallocarray(x.map, cap, sizeof(*x.map));
		}
		x.map[x.nmap++] = (struct idx_task){ t->array_index, t };
	}
	qsort(x.map, x.nmap, sizeof(*x.map), idx_cmp);
	x.has_all = array_set_parse(a->spec, &x.all, &max_running, NULL) == 0;
	array_set_each(set, 0, each_index, &x);
	end_run(&x);
	if (x.has_all)
		array_set_release(&x.all);
	free(x.map);
}

/* A whole array: its pending rest and its materialized tasks that have
 * not ended; an array with neither has ended. */
static void select_array(const struct state *st, struct selection *s, const struct filter *f,
			 struct array *a)
{
	bool live = !array_set_empty(&a->pending);

	if (live)
		push_pending(s, f, a, SEL_ARRAY_REST, 0);
	for (size_t i = state_task_lower_bound(st, a->id); i < st->ntasks; i++) {
		struct task *t = st->tasks[i];

		if (t->array_id != a->id)
			continue;
		live = live || !task_state_final(t->state);
		push_live_task(s, f, t);
	}
	if (!live && !f->states)
		push_missing(s, a->id, HPQ_ESTATE, "array %llu has already ended",
			     (unsigned long long)a->id);
}

static int parse_filter(const Hpq__TaskSelector *sel, struct filter *f, struct state_err *e)
{
	memset(f, 0, sizeof(*f));
	if (*sel->user)
		f->user = sel->user;
	if (*sel->team)
		f->team = sel->team;
	if (*sel->name)
		f->name = sel->name;
	f->array_id = sel->array_id;
	for (size_t i = 0; i < sel->n_states; i++) {
		int s;

		if (!strcasecmp(sel->states[i], "active")) {
			f->states |= 1u << TASK_PENDING | 1u << TASK_RUNNING | 1u << TASK_PREEMPTING;
			continue;
		}
		s = state_task_state_parse(sel->states[i]);
		if (s < 0)
			return state_errf(e, HPQ_EINVAL, "unknown state '%.32s': use PENDING, "
					  "RUNNING, PREEMPTING, COMPLETED, FAILED, CANCELLED, "
					  "TIMEOUT, OUT_OF_MEMORY or active", sel->states[i]);
		f->states |= 1u << s;
	}
	f->any = f->user || f->team || f->name || f->states || f->array_id;
	return 0;
}

/* Array rests first: an operation on a whole array must empty its pending
 * set before its head goes, or the head's end would materialize the next. */
static void rests_first(struct selection *s)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].kind == SEL_ARRAY_REST) {
			struct sel_item tmp = s->v[i];

			memmove(&s->v[k + 1], &s->v[k], (i - k) * sizeof(*s->v));
			s->v[k++] = tmp;
		}
	}
}

/* What an item acts on, for finding the same twice: a task by its id;
 * an array's rest as (array, 0), before its indices (array, index + 1). */
struct item_key {
	bool index_space;            /* an array's rest or index, not a task */
	uint64_t id;
	uint64_t sub;
	size_t at;                   /* the item's place in the selection */
};

static int key_cmp(const void *a, const void *b)
{
	const struct item_key *x = a, *y = b;

	if (x->index_space != y->index_space)
		return x->index_space ? 1 : -1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	if (x->sub != y->sub)
		return x->sub < y->sub ? -1 : 1;
	return x->at < y->at ? -1 : x->at > y->at;
}

/*
 * Several ids may name the same task or index ("12 12_5", "12_[1-3] 12_2"):
 * each is acted on once, at its first place, and an index not taken
 * otherwise is left to its array's rest when that is named too. Acting
 * twice would report the second time as a failure (already cancelled, no
 * longer pending, not held) of what was done.
 */
static void drop_repeats(struct selection *s)
{
	struct item_key *k = xcalloc(s->n ? s->n : 1, sizeof(*k));
	bool *drop = xcalloc(s->n ? s->n : 1, sizeof(*drop));
	size_t nk = 0, w = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct sel_item *it = &s->v[i];

		if (it->kind == SEL_TASK)
			k[nk++] = (struct item_key){ false, it->t->st.id, 0, i };
		else if (it->kind == SEL_INDEX)
			k[nk++] = (struct item_key){ true, it->a->id, (uint64_t)it->index + 1, i };
		else if (it->kind == SEL_ARRAY_REST)
			k[nk++] = (struct item_key){ true, it->a->id, 0, i };
	}
	qsort(k, nk, sizeof(*k), key_cmp);
	/* k[first]: the first key of the task or array of k[i]; an array's is
	 * its rest, if that is named. */
	for (size_t i = 1, first = 0; i < nk; i++) {
		if (k[i].index_space != k[first].index_space || k[i].id != k[first].id) {
			first = i;
			continue;
		}
		if (k[i].sub == k[i - 1].sub || (k[i].index_space && k[first].sub == 0))
			drop[k[i].at] = true;
	}
	for (size_t i = 0; i < s->n; i++) {
		if (drop[i]) {
			free(s->v[i].msg);
			continue;
		}
		s->v[w++] = s->v[i];
	}
	s->n = w;
	free(k);
	free(drop);
}

int select_resolve(const struct state *st, const Hpq__TaskSelector *sel, struct selection *out,
		   struct state_err *e)
{
	struct filter f;
	int r;

	memset(out, 0, sizeof(*out));
	if (!sel)
		return state_errf(e, HPQ_EINVAL, "no tasks selected");
	r = parse_filter(sel, &f, e);
	if (r < 0)
		return r;
	if (!sel->n_ids && !f.any)
		return state_errf(e, HPQ_EINVAL, "an empty selection matches nothing: name tasks "
				  "(12, 12_5, 12_[1-3,7]) or give a filter (user, team, name, "
				  "state, array)");
	if (sel->n_ids > SELECT_MAX_IDS)
		return state_errf(e, HPQ_EINVAL, "at most %d ids at once", SELECT_MAX_IDS);
	/* Every id must read before anything is resolved; the indices they
	 * name are each looked at, and that is bounded as the items are. */
	for (size_t i = 0, nindices = 0; i < sel->n_ids; i++) {
		struct array_set set;
		uint64_t id;
		bool has_set;

		r = select_parse_id(sel->ids[i], &id, &has_set, &set, e);
		if (r < 0)
			return r;
		if (!has_set)
			continue;
		nindices += array_set_count(&set);
		array_set_release(&set);
		if (nindices > SELECT_MAX_ITEMS)
			return state_errf(e, HPQ_EINVAL, "at most %d array indices at once",
					  SELECT_MAX_ITEMS);
	}
	for (size_t i = 0; i < sel->n_ids && out->n < SELECT_MAX_ITEMS; i++) {
		struct array_set set;
		struct array *a;
		struct task *t;
		uint64_t id;
		bool has_set, gone_ok;

		select_parse_id(sel->ids[i], &id, &has_set, &set, NULL);
		a = array_find(st, id);
		if (has_set) {
			if (a)
				select_indices(st, out, &f, a, &set);
			else if (state_task_gone(st, id, &gone_ok))
				push_missing(out, id, HPQ_ESTATE, "array %llu has already ended",
					     (unsigned long long)id);
			else
				push_missing(out, id, HPQ_ENOTFOUND, "no array %llu",
					     (unsigned long long)id);
			array_set_release(&set);
			continue;
		}
		if (a) {
			select_array(st, out, &f, a);
			continue;
		}
		t = state_task_find(st, id);
		if (t)
			push_task(out, &f, t);
		else if (state_task_gone(st, id, &gone_ok))
			push_missing(out, id, HPQ_ESTATE, "task %llu has already ended",
				     (unsigned long long)id);
		else
			push_missing(out, id, HPQ_ENOTFOUND, "no task %llu",
				     (unsigned long long)id);
	}
	if (!sel->n_ids) {
		for (size_t i = 0; i < st->ntasks && out->n < SELECT_MAX_ITEMS; i++)
			push_live_task(out, &f, st->tasks[i]);
		for (size_t i = 0; i < st->narrays && out->n < SELECT_MAX_ITEMS; i++)
			if (!array_set_empty(&st->arrays[i]->pending))
				push_pending(out, &f, st->arrays[i], SEL_ARRAY_REST, 0);
	}
	if (sel->n_ids > 1)
		drop_repeats(out);
	rests_first(out);
	return 0;
}
