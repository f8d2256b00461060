/*
 * depend.c: task dependencies (depend.h): parsing, evaluation against the
 * model, and the index of waiting tasks by what they wait for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "depend.h"
#include "error.h"
#include "log.h"
#include "plan.h"
#include "state-internal.h"
#include "xalloc.h"

enum dtype { D_AFTER, D_AFTERANY, D_AFTEROK, D_AFTERNOTOK, D_SINGLETON };

static const char *const dnames[] = {
	[D_AFTER] = "after", [D_AFTERANY] = "afterany", [D_AFTEROK] = "afterok",
	[D_AFTERNOTOK] = "afternotok", [D_SINGLETON] = "singleton",
};

struct dterm {
	enum dtype type;
	uint64_t id;
	bool has_index;
	bool waits;                  /* spec_eval: t waits on it now (is indexed under it) */
	uint32_t index;
};

struct dspec {
	struct dterm v[DEPEND_MAX_TERMS];
	unsigned n;
	bool any;                    /* '?': any one term is enough */
};

enum dres { D_WAIT, D_MET, D_NEVER };

/* ---------------------------------------------------------------- parsing */

static int read_u64(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;

	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*s++ - '0');
	}
	*p = s;
	*v = x;
	return 0;
}

static int dparse(const char *spec, struct dspec *d, struct state_err *e)
{
	const char *p = spec;
	bool comma = false, quest = false;

	memset(d, 0, sizeof(*d));
	if (strlen(spec) > DEPEND_MAX_SPEC)
		return state_errf(e, HPQ_EINVAL, "--dependency is longer than %d bytes",
				  DEPEND_MAX_SPEC);
	while (*p) {
		enum dtype type;
		size_t len = strcspn(p, ":,?");
		int k;

		for (k = 0; k <= D_SINGLETON; k++)
			if (len == strlen(dnames[k]) && !strncmp(p, dnames[k], len))
				break;
		if (k > D_SINGLETON)
			return state_errf(e, HPQ_EINVAL, "--dependency '%.64s': unknown kind '%.*s'"
					  " (after, afterany, afterok, afternotok, singleton)",
					  spec, (int)(len > 32 ? 32 : len), p);
		type = (enum dtype)k;
		p += len;
		if (type == D_SINGLETON) {
			if (d->n == DEPEND_MAX_TERMS)
				goto many;
			d->v[d->n++] = (struct dterm){ .type = type };
		} else {
			if (*p != ':')
				return state_errf(e, HPQ_EINVAL, "--dependency '%.64s': %s needs "
						  "ids (%s:ID[:ID...])", spec, dnames[type],
						  dnames[type]);
			while (*p == ':') {
				struct dterm t = { .type = type };
				uint64_t idx;

				p++;
				if (read_u64(&p, &t.id) < 0 || !t.id)
					goto bad;
				if (*p == '_') {
					p++;
					if (read_u64(&p, &idx) < 0 || idx > HPQ_ARRAY_INDEX_MAX)
						goto bad;
					t.has_index = true;
					t.index = (uint32_t)idx;
				}
				if (*p == '+')
					return state_errf(e, HPQ_EINVAL, "--dependency '%.64s': "
							  "delays (+TIME) are not supported", spec);
				if (d->n == DEPEND_MAX_TERMS)
					goto many;
				d->v[d->n++] = t;
			}
		}
		if (*p == ',' || *p == '?') {
			if (*p == ',')
				comma = true;
			else
				quest = true;
			p++;
			if (!*p)
				goto bad;
		} else if (*p) {
			goto bad;
		}
	}
	if (comma && quest)
		return state_errf(e, HPQ_EINVAL, "--dependency '%.64s': use ',' (all of) or '?' "
				  "(any of), not both", spec);
	d->any = quest;
	return 0;
bad:
	return state_errf(e, HPQ_EINVAL, "--dependency '%.64s' is malformed: e.g. "
			  "afterok:12:13,afterany:14_2 or afterok:12?afternotok:13", spec);
many:
	return state_errf(e, HPQ_EINVAL, "--dependency '%.64s' has more than %d parts", spec,
			  DEPEND_MAX_TERMS);
}

/* The terms left, grouping neighbours of one kind: "afterok:12:13,singleton". */
static char *dformat(const struct dspec *d)
{
	size_t cap = 64, len = 0;
	char *s = xmalloc(cap);

	s[0] = '\0';
	for (unsigned i = 0; i < d->n; i++) {
		const struct dterm *t = &d->v[i];
		bool same = i && d->v[i - 1].type == t->type && t->type != D_SINGLETON;
		char item[64];
		int n;

		if (t->type == D_SINGLETON)
			n = snprintf(item, sizeof(item), "%ssingleton", i ? (d->any ? "?" : ",") : "");
		else if (same)
			n = snprintf(item, sizeof(item), ":%llu", (unsigned long long)t->id);
		else
			n = snprintf(item, sizeof(item), "%s%s:%llu", i ? (d->any ? "?" : ",") : "",
				     dnames[t->type], (unsigned long long)t->id);
		if (t->has_index && t->type != D_SINGLETON)
			n += snprintf(item + n, sizeof(item) - (size_t)n, "_%u", t->index);
		while (len + (size_t)n + 1 > cap) {
			cap *= 2;
			s = xrealloc(s, cap);
		}
		memcpy(s + len, item, (size_t)n + 1);
		len += (size_t)n;
	}
	return s;
}

/* ---------------------------------------------------------------- evaluation */

static enum dres by_state(enum dtype type, const struct task *x)
{
	bool final = task_state_final(x->state);

	switch (type) {
	case D_AFTER:
		return x->attempts || final ? D_MET : D_WAIT;
	case D_AFTERANY:
		return final ? D_MET : D_WAIT;
	case D_AFTEROK:
		return !final ? D_WAIT : x->state == TASK_COMPLETED ? D_MET : D_NEVER;
	case D_AFTERNOTOK:
		return !final ? D_WAIT : x->state == TASK_COMPLETED ? D_NEVER : D_MET;
	default:
		return D_WAIT;
	}
}

static enum dres by_array(enum dtype type, const struct array *a)
{
	uint32_t ended = a->nok + a->nbad;

	switch (type) {
	case D_AFTER:
		return a->nbegun >= a->count ? D_MET : D_WAIT;
	case D_AFTERANY:
		return ended >= a->count ? D_MET : D_WAIT;
	case D_AFTEROK:
		return a->nbad ? D_NEVER : a->nok >= a->count ? D_MET : D_WAIT;
	case D_AFTERNOTOK:
		return a->nok >= a->count ? D_NEVER : ended >= a->count ? D_MET : D_WAIT;
	default:
		return D_WAIT;
	}
}

/* A task (or an array's index) that ended and left memory: only whether
 * it completed is kept. */
static enum dres by_gone(enum dtype type, bool completed)
{
	if (type == D_AFTEROK)
		return completed ? D_MET : D_NEVER;
	if (type == D_AFTERNOTOK)
		return completed ? D_NEVER : D_MET;
	return D_MET;
}

/* Another task of t's user and name runs, or may start (in the dispatcher). */
static bool singleton_busy(const struct state *st, const struct task *t)
{
	for (size_t i = 0; i < st->ntasks; i++) {
		const struct task *x = st->tasks[i];

		if (x == t || x->st.state == SCHED_NONE)
			continue;
		if (!strcmp(x->name, t->name) && !strcmp(x->user, t->user))
			return true;
	}
	return false;
}

static enum dres term_eval(const struct state *st, const struct task *self,
			   const struct dterm *d)
{
	const struct array *a;
	const struct task *x;

	if (d->type == D_SINGLETON)
		return singleton_busy(st, self) ? D_WAIT : D_MET;
	a = array_find(st, d->id);
	if (d->has_index) {
		/* The array left memory: it kept which of its indices completed. */
		if (!a)
			return by_gone(d->type, array_gone_completed(st, d->id, d->index));
		x = array_task_find(st, a, d->index);
		if (x)
			return by_state(d->type, x);
		if (array_set_has(&a->pending, d->index))
			return D_WAIT;
		/* It ended and left memory, or was dropped with its array's rest. */
		return by_gone(d->type, !array_set_has(&a->gone_bad, d->index));
	}
	if (a)
		return by_array(d->type, a);
	x = state_task_find(st, d->id);
	if (!x) {
		bool ok = false;

		return by_gone(d->type, state_task_gone(st, d->id, &ok) && ok);
	}
	return by_state(d->type, x);
}

/*
 * Evaluates d for t, dropping the met terms (all-of) from d and marking
 * those t waits on now. All-of keeps its singleton terms until every
 * other term is met, and only then asks whether another task of the name
 * is active: that changes back and forth, so a singleton met while the
 * rest waits says nothing of the time the rest is met (and the walk of
 * the tasks is spared meanwhile).
 */
static enum dres spec_eval(const struct state *st, const struct task *t, struct dspec *d)
{
	unsigned k = 0, never = 0;
	bool rest = false;           /* all-of: a term other than singleton waits */

	for (unsigned i = 0; i < d->n; i++) {
		struct dterm *x = &d->v[i];
		enum dres r;

		if (!d->any && x->type == D_SINGLETON) {
			x->waits = false;    /* below, once the rest is known */
			d->v[k++] = *x;
			continue;
		}
		r = term_eval(st, t, x);
		x->waits = r == D_WAIT;
		if (d->any) {
			if (r == D_MET) {
				d->n = 0;
				return D_MET;
			}
			if (r == D_NEVER)
				never++;
			d->v[k++] = *x;
		} else {
			if (r == D_NEVER)
				return D_NEVER;
			if (r == D_WAIT) {
				rest = true;
				d->v[k++] = *x;
			}
		}
	}
	d->n = k;
	if (d->any)
		return !k ? D_MET : never == k ? D_NEVER : D_WAIT;
	if (k && !rest) {
		/* Only singleton terms are left: one walk answers them all. */
		if (!singleton_busy(st, t)) {
			d->n = 0;
			return D_MET;
		}
		for (unsigned i = 0; i < k; i++)
			d->v[i].waits = true;
	}
	return k ? D_WAIT : D_MET;
}

/* ---------------------------------------------------------------- the waiting index */

struct wlist {
	uint64_t key;
	uint64_t *ids;               /* waiting task ids */
	uint32_t n, cap;
	struct wlist *next;
};

struct depend {
	struct wlist **b;
	size_t nb, n;
};

#define SINGLETON_BIT (1ull << 63)

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t singleton_key(const struct task *t)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = t->user; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (const char *p = t->name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h | SINGLETON_BIT;
}

/* What a term waits on: its task, or its array for any index of it. */
static uint64_t term_key(const struct state *st, const struct task *self, const struct dterm *d)
{
	if (d->type == D_SINGLETON)
		return singleton_key(self);
	(void)st;
	return d->id & ~SINGLETON_BIT;
}

static struct wlist **wfind(struct depend *dp, uint64_t key)
{
	struct wlist **pp = &dp->b[mix(key) & (dp->nb - 1)];

	while (*pp && (*pp)->key != key)
		pp = &(*pp)->next;
	return pp;
}

static void wadd(struct state *st, uint64_t key, uint64_t id)
{
	struct depend *dp = st->depend;
	struct wlist **pp, *w;

	if (!dp) {
		dp = st->depend = xcalloc(1, sizeof(*dp));
		dp->nb = 64;
		dp->b = xcalloc(dp->nb, sizeof(*dp->b));
	}
	if (dp->n >= dp->nb) {
		size_t nb = dp->nb * 2;
		struct wlist **b = xcalloc(nb, sizeof(*b));

		for (size_t i = 0; i < dp->nb; i++) {
			while (dp->b[i]) {
				w = dp->b[i];
				dp->b[i] = w->next;
				w->next = b[mix(w->key) & (nb - 1)];
				b[mix(w->key) & (nb - 1)] = w;
			}
		}
		free(dp->b);
		dp->b = b;
		dp->nb = nb;
	}
	pp = wfind(dp, key);
	if (!*pp) {
		*pp = xcalloc(1, sizeof(**pp));
		(*pp)->key = key;
		dp->n++;
	}
	w = *pp;
	if (w->n && w->ids[w->n - 1] == id)
		return;
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 4;
		w->ids = xreallocarray(w->ids, w->cap, sizeof(*w->ids));
	}
	w->ids[w->n++] = id;
}

/* Takes the list of key out of the index (the caller frees it). */
static struct wlist *wtake(struct state *st, uint64_t key)
{
	struct depend *dp = st->depend;
	struct wlist **pp, *w;

	if (!dp)
		return NULL;
	pp = wfind(dp, key);
	w = *pp;
	if (w) {
		*pp = w->next;
		dp->n--;
	}
	return w;
}

void depend_release(struct state *st)
{
	struct depend *dp = st->depend;

	if (!dp)
		return;
	for (size_t i = 0; i < dp->nb; i++) {
		while (dp->b[i]) {
			struct wlist *w = dp->b[i];

			dp->b[i] = w->next;
			free(w->ids);
			free(w);
		}
	}
	free(dp->b);
	free(dp);
	st->depend = NULL;
}

/* ---------------------------------------------------------------- changes */

static bool waits(const struct task *t)
{
	return t->state == TASK_PENDING && !t->held && t->st.state == SCHED_NONE;
}

/* The other indices of a that exist and can never start either (held
 * ones too, which nothing looks at until they are released) go with
 * its rest. */
static void drop_indices(struct state *st, const struct array *a)
{
	uint64_t *ids = NULL;
	size_t n = 0;

	for (size_t i = state_task_lower_bound(st, a->id); i < st->ntasks; i++) {
		struct task *m = st->tasks[i];
		struct dspec d;

		if (m->array_id != a->id || m->state != TASK_PENDING ||
		    m->st.state != SCHED_NONE || !m->kill_on_invalid_dep || !m->dependency ||
		    !*m->dependency || dparse(m->dependency, &d, NULL) < 0 ||
		    spec_eval(st, m, &d) != D_NEVER)
			continue;
		ids = xreallocarray(ids, n + 1, sizeof(*ids));
		ids[n++] = m->st.id;
	}
	for (size_t i = 0; i < n; i++) {
		struct task *m = state_task_find(st, ids[i]);

		if (m && m->state == TASK_PENDING)
			task_finish(st, m, TASK_CANCELLED, "dependency-never-satisfied");
	}
	free(ids);
}

/* Evaluates t's dependencies into d (what is left of them). */
static enum dres reckon(const struct state *st, const struct task *t, struct dspec *d)
{
	if (!t->dependency || !*t->dependency) {
		d->n = 0;
		return D_MET;
	}
	if (dparse(t->dependency, d, NULL) < 0) {
		log_warn("task %llu: unreadable dependency '%s' dropped",
			 (unsigned long long)t->st.id, t->dependency);
		d->n = 0;
		return D_MET;
	}
	return spec_eval(st, t, d);
}

/* t's dependency becomes what d left of it; returns whether it changed. */
static bool keep_left(struct task *t, const struct dspec *d)
{
	char *left = dformat(d);
	bool changed = strcmp(left, t->dependency ? t->dependency : "") != 0;

	if (changed) {
		str_free(t->dependency);
		t->dependency = left;
	} else {
		free(left);
	}
	return changed;
}

/*
 * Indexes waiting t under the keys of the terms it waits on: all of them
 * (woke 0), or, when a wake of key woke took it out of that key's list,
 * that key and singleton's (the lists of its other terms still hold it;
 * all-of comes to wait on singleton only once the rest is met).
 */
static void index_waits(struct state *st, const struct task *t, const struct dspec *d,
			uint64_t woke)
{
	for (unsigned i = 0; i < d->n; i++) {
		uint64_t key;

		if (!d->v[i].waits)
			continue;
		key = term_key(st, t, &d->v[i]);
		if (!woke || key == woke || d->v[i].type == D_SINGLETON)
			wadd(st, key, t->st.id);
	}
}

/* t waits for what d left: its reason, its row, the index. */
static void wait_left(struct state *st, struct task *t, const struct dspec *d, uint64_t woke)
{
	bool changed = keep_left(t, d);

	if (!t->reason || strcmp(t->reason, "dependency")) {
		str_set(&t->reason, "dependency");
		changed = true;
	}
	if (changed)
		task_save(st, t);
	index_waits(st, t, d, woke);
}

/*
 * Evaluates t's dependencies and acts: into the dispatcher, never
 * satisfiable (maybe cancelled), or waiting (indexed as index_waits
 * says). Returns the outcome.
 */
static enum dres evaluate(struct state *st, struct task *t, uint64_t woke)
{
	struct dspec d;
	enum dres r = reckon(st, t, &d);

	if (r == D_NEVER) {
		if (t->reason && !strcmp(t->reason, "dependency-never-satisfied") &&
		    !t->kill_on_invalid_dep)
			return r;
		if (t->kill_on_invalid_dep) {
			struct array *a = array_find(st, t->array_id);

			/* Every index waits for the same: the whole array goes. */
			if (a)
				array_drop_pending(st, a);
			task_finish(st, t, TASK_CANCELLED, "dependency-never-satisfied");
			if (a)
				drop_indices(st, a);
			return r;
		}
		str_set(&t->reason, "dependency-never-satisfied");
		task_save(st, t);
		state_event(st, "dependency", t, NULL, NULL, "can never be satisfied: %s",
			    t->dependency);
		return r;
	}
	if (r == D_MET) {
		int k;

		keep_left(t, &d);
		str_set(&t->reason, "");
		if (t->array_id)
			k = array_offer(st, t);
		else if (plan_task_waits(st, t))
			k = 0;    /* its plan is closed: it waits for the plan */
		else
			k = sched_task_submit(st->sched, &t->st);
		if (k < 0) {
			task_finish(st, t, TASK_FAILED, "the dispatcher refused it");
			return D_NEVER;
		}
		task_save(st, t);
		mark_dirty(st);
		return k > 0 ? D_MET : D_WAIT;
	}
	wait_left(st, t, &d, woke);
	return r;
}

bool depend_offer(struct state *st, struct task *t)
{
	if (!waits(t))
		return false;
	return evaluate(st, t, 0) == D_MET;
}

/* An array's index that the dispatcher's successor hook made: whether it
 * waits (reason "dependency", indexed; true) or its dependency is met
 * (false: the hook hands it over). Never calls into the dispatcher. */
static bool depend_on_successor(void *arg, struct task *t)
{
	struct state *st = arg;
	struct dspec d;
	enum dres r = reckon(st, t, &d);

	if (r == D_MET) {
		if (keep_left(t, &d))
			task_save(st, t);
		return false;
	}
	/* Never D_NEVER: a successor waits for singleton alone, or for an
	 * any-of with it (array.c), and singleton is never unsatisfiable. */
	wait_left(st, t, &d, 0);
	return true;
}

void depend_changed(struct state *st, struct task *t)
{
	if (t->state != TASK_PENDING || t->held)
		return;
	if (t->st.state == SCHED_PENDING) {
		task_leaving(st, t);
		sched_task_finish(st->sched, &t->st, 0);
	} else if (t->reason && !strcmp(t->reason, "array-limit")) {
		/* Parked by its array's % limit: it is counted out, and in
		 * again if it parks once more (array_offer). */
		task_leaving(st, t);
		str_set(&t->reason, "");
	}
	evaluate(st, t, 0);
	if (t->array_id) {
		struct array *a = array_find(st, t->array_id);

		if (a)
			array_refill(st, a);
	}
}

bool depend_met(struct state *st, const struct task *t)
{
	struct dspec d;

	if (!t->dependency || !*t->dependency)
		return true;
	if (dparse(t->dependency, &d, NULL) < 0)
		return true;
	return spec_eval(st, t, &d) == D_MET;
}

char *depend_once_started(const char *spec)
{
	struct dspec d;

	if (!spec || dparse(spec, &d, NULL) < 0)
		return xstrdup("");
	for (unsigned i = 0; i < d.n; i++)
		if (d.v[i].type == D_SINGLETON)
			return xstrdup(d.any ? spec : "singleton");
	return xstrdup("");
}

/* Looks again at the tasks waiting under key; those that still wait on
 * key stay in its list. */
static void wake(struct state *st, uint64_t key)
{
	struct wlist *w = wtake(st, key);

	if (!w)
		return;
	for (uint32_t i = 0; i < w->n; i++) {
		struct task *t = state_task_find(st, w->ids[i]);

		if (t && waits(t))
			evaluate(st, t, key);
	}
	free(w->ids);
	free(w);
}

/* t started or ended: the tasks waiting on it look again. */
static void depend_on_task(void *arg, struct task *t)
{
	struct state *st = arg;

	if (!st->depend)
		return;
	wake(st, t->array_id ? t->array_id : t->st.id);
	/* An index is a task with an id of its own, which a term can name
	 * ("afterok:ID" of that task) as well as ID_INDEX. */
	if (t->array_id && t->array_id != t->st.id)
		wake(st, t->st.id);
	if (task_state_final(t->state) || t->state == TASK_PENDING)
		wake(st, singleton_key(t));
}

/* Indices of a that a cancel dropped ended with no task: what waits on
 * the array (afterany:A, afternotok:A_5) looks again. */
static void depend_on_dropped(void *arg, struct array *a)
{
	struct state *st = arg;

	if (st->depend)
		wake(st, a->id);
}

/* A task new in the queue goes in through its dependencies. */
static void depend_on_entered(void *arg, struct task *t)
{
	depend_offer(arg, t);
}

void depend_follow_tasks(struct state *st)
{
	state_observe(st, &(struct state_observer){
		.task_entered = depend_on_entered,
		.task_started = depend_on_task,
		.task_ended = depend_on_task,
		.successor_held = depend_on_successor,
		.indices_dropped = depend_on_dropped,
		.arg = st,
	});
}

void depend_load_done(struct state *st)
{
	for (size_t i = 0; i < st->ntasks; i++) {
		struct task *t = st->tasks[i];

		if (t->dependency && *t->dependency && waits(t))
			evaluate(st, t, 0);
	}
}

/* ---------------------------------------------------------------- checks */

struct walk {
	uint64_t *seen;
	size_t n, cap;
};

static bool walk_seen(struct walk *w, uint64_t id)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->seen[i] == id)
			return true;
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 16;
		w->seen = xreallocarray(w->seen, w->cap, sizeof(*w->seen));
	}
	w->seen[w->n++] = id;
	return false;
}

/* Whether what spec waits for reaches t (its id or its array). */
static bool reaches(struct state *st, const struct task *t, const char *spec, struct walk *w,
		    int depth)
{
	struct dspec d;

	if (depth > 64 || w->n > 10000 || dparse(spec, &d, NULL) < 0)
		return false;
	for (unsigned i = 0; i < d.n; i++) {
		const struct dterm *x = &d.v[i];
		const struct array *a;
		const struct task *o;

		if (x->type == D_SINGLETON)
			continue;
		if (x->id == t->st.id || (t->array_id && x->id == t->array_id))
			return true;
		if (walk_seen(w, x->id))
			continue;
		a = array_find(st, x->id);
		o = a ? a->tmpl : state_task_find(st, x->id);
		if (o && o->dependency && *o->dependency &&
		    reaches(st, t, o->dependency, w, depth + 1))
			return true;
		if (a) {
			/* its materialized indices may have their own */
			for (size_t k = state_task_lower_bound(st, a->id); k < st->ntasks; k++) {
				const struct task *m = st->tasks[k];

				if (m->array_id == a->id && m->dependency && *m->dependency &&
				    !task_state_final(m->state) &&
				    reaches(st, t, m->dependency, w, depth + 1))
					return true;
			}
		}
	}
	return false;
}

size_t depend_gone_indices(const struct state *st, const char *spec, uint64_t *ids,
			   uint32_t *indices, size_t max)
{
	struct dspec d;
	size_t n = 0;
	bool ok;

	if (!spec || !*spec || dparse(spec, &d, NULL) < 0)
		return 0;
	for (unsigned i = 0; i < d.n && (n < max || !ids); i++) {
		const struct dterm *x = &d.v[i];
		size_t k = 0;

		if (x->type == D_SINGLETON || !x->has_index || array_find(st, x->id) ||
		    !state_task_gone(st, x->id, &ok))
			continue;
		if (!ids)
			return 1;
		while (k < n && (ids[k] != x->id || indices[k] != x->index))
			k++;
		if (k < n)
			continue;
		ids[n] = x->id;
		indices[n++] = x->index;
	}
	return n;
}

int depend_check(struct state *st, struct task *t, const char *spec, struct state_err *e)
{
	bool ok;
	struct dspec d;
	int r = dparse(spec, &d, e);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < d.n; i++) {
		const struct dterm *x = &d.v[i];
		const struct array *a;

		if (x->type == D_SINGLETON)
			continue;
		a = array_find(st, x->id);
		if (x->has_index) {
			if (!a && !state_task_gone(st, x->id, &ok))
				return state_errf(e, HPQ_ENOTFOUND, "--dependency: no array %llu",
						  (unsigned long long)x->id);
			if (a && !array_has_index(a, x->index))
				return state_errf(e, HPQ_ENOTFOUND, "--dependency: array %llu has "
						  "no index %u", (unsigned long long)x->id,
						  x->index);
		} else if (!a && !state_task_find(st, x->id) && !state_task_gone(st, x->id, &ok)) {
			return state_errf(e, HPQ_ENOTFOUND, "--dependency: no task %llu",
					  (unsigned long long)x->id);
		}
	}
	if (t) {
		struct walk w = { 0 };
		bool cyc = reaches(st, t, spec, &w, 0);

		free(w.seen);
		if (cyc)
			return state_errf(e, HPQ_EINVAL, "--dependency '%.64s' would make task %llu "
					  "wait for itself (a cycle)", spec,
					  (unsigned long long)t->st.id);
	}
	return 0;
}
