/*
 * state.c: the model as a whole (state.h): init, load, release, the event
 * log and its observers, and the helpers and checks the nouns share.
 *
 * Each public change function, here and in task.c, team.c and node.c,
 * has the same shape: check everything the request says against the
 * current state (returning a clear error before touching anything), then
 * apply it to memory and to the dispatcher, record the rows and one event
 * in the store's open batch, and mark the dispatcher dirty when its
 * inputs changed. A change is therefore either refused whole or recorded
 * whole; the caller decides whether to wait for the commit before it
 * answers.
 *
 * Loading walks the store's rows through a store_loader whose callbacks
 * live with their nouns, in the store's order: policy, pools, classes,
 * teams, quotas, nodes, tasks, then done.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "error.h"
#include "hpq.h"
#include "log.h"
#include "parse.h"
#include "state-internal.h"
#include "store.h"
#include "xalloc.h"

#define DEFAULT_GRACE_S 60

int state_errf(struct state_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

/* ---------------------------------------------------------------- small helpers */

void set_str(char **slot, const char *s)
{
	char *n = xstrdup(s ? s : "");

	free(*slot);
	*slot = n;
}

void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

char **dup_strv(char *const *v, size_t n)
{
	char **c;

	if (!n)
		return NULL;
	c = xcalloc(n, sizeof(*c));
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

void mark_dirty(struct state *st)
{
	st->dirty = true;
}

void state_event(struct state *st, const char *kind, const struct task *t, const char *node,
		 const char *actor, const char *fmt, ...)
{
	struct store_event ev = { 0 };
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ev.time_ms = hpq_now_ms();
	ev.kind = kind;
	ev.task_id = t ? t->st.id : 0;
	ev.node = node ? node : "";
	ev.team = t ? t->team : "";
	ev.actor = actor ? actor : "hpqd";
	ev.message = msg;
	store_event_add(st->store, &ev);
	for (size_t i = 0; i < st->nobservers; i++)
		if (st->observers[i].event)
			st->observers[i].event(st->observers[i].arg, &ev, t);
	if (t)
		log_info("task %llu: %s: %s", (unsigned long long)t->st.id, kind, msg);
	else
		log_info("%s%s%s: %s", kind, node ? " " : "", node ? node : "", msg);
}

/* ---------------------------------------------------------------- init, release */

void state_init(struct state *st, struct store *store)
{
	memset(st, 0, sizeof(*st));
	st->store = store;
	st->next_id = 1;
	dlist_init(&st->running);
	st->policy.sched.idle = SCHED_IDLE_FAIR_SHARE;
	st->policy.sched.half_life_ms = 3600 * 1000;
	st->policy.sched.min_runtime_ms = 0;
	st->policy.sched.requeue_by_eviction = false;
	st->policy.grace_s = DEFAULT_GRACE_S;
	st->sched = sched_new(&st->policy.sched);
}

void state_observe(struct state *st, const struct state_observer *o)
{
	st->observers = xreallocarray(st->observers, st->nobservers + 1, sizeof(*o));
	st->observers[st->nobservers++] = *o;
}

void state_unobserve(struct state *st, const void *arg)
{
	size_t k = 0;

	for (size_t i = 0; i < st->nobservers; i++)
		if (st->observers[i].arg != arg)
			st->observers[k++] = st->observers[i];
	st->nobservers = k;
}

void state_release(struct state *st)
{
	free(st->observers);
	st->observers = NULL;
	st->nobservers = 0;
	/* The dispatcher first: it still links the tasks. */
	if (st->sched)
		sched_free(st->sched);
	for (size_t i = 0; i < st->ntasks; i++)
		state_task_free(st->tasks[i]);
	free(st->tasks);
	for (uint32_t i = 0; i < st->nteams; i++)
		team_free(st->teams[i]);
	free(st->teams);
	for (uint32_t i = 0; i < st->nclasses; i++) {
		if (st->classes[i])
			free(st->classes[i]->name);
		free(st->classes[i]);
	}
	free(st->classes);
	for (uint32_t i = 0; i < st->npools; i++) {
		free(st->pools[i]->name);
		free(st->pools[i]);
	}
	free(st->pools);
	for (uint32_t i = 0; i < st->nnodes; i++)
		node_free(st->nodes[i]);
	free(st->nodes);
	strmap_release(&st->team_names);
	strmap_release(&st->class_names);
	strmap_release(&st->pool_names);
	strmap_release(&st->node_names);
	memset(st, 0, sizeof(*st));
}

/* ---------------------------------------------------------------- restore */

static int64_t parse_ms(const char *v, bool *ok)
{
	uint64_t s;

	*ok = hpq_parse_duration(v, &s) == 0 && s < (uint64_t)INT64_MAX / 1000;
	return *ok ? (int64_t)s * 1000 : 0;
}

/*
 * The loader of state_load: store_load hands it rows in dependency order
 * (store.h). Rows that make no sense are logged and skipped; a restart
 * must not fail over one bad row.
 */
static void state_policy_restore(void *arg, const char *key, const char *value)
{
	struct state *st = arg;
	struct state_policy *p = &st->policy;
	bool ok = true;

	if (!strcmp(key, "idle-allocation")) {
		if (!strcmp(value, "fair-share"))
			p->sched.idle = SCHED_IDLE_FAIR_SHARE;
		else if (!strcmp(value, "fcfs"))
			p->sched.idle = SCHED_IDLE_FCFS;
		else
			ok = false;
	} else if (!strcmp(key, "half-life")) {
		int64_t ms = parse_ms(value, &ok);

		if (ok)
			p->sched.half_life_ms = ms;
	} else if (!strcmp(key, "min-runtime")) {
		int64_t ms = parse_ms(value, &ok);

		if (ok)
			p->sched.min_runtime_ms = ms;
	} else if (!strcmp(key, "grace")) {
		int64_t ms = parse_ms(value, &ok);

		if (ok)
			p->grace_s = (uint64_t)ms / 1000;
	} else if (!strcmp(key, "requeue-order")) {
		if (!strcmp(value, "submit"))
			p->sched.requeue_by_eviction = false;
		else if (!strcmp(value, "eviction"))
			p->sched.requeue_by_eviction = true;
		else
			ok = false;
	} else {
		log_warn("unknown policy key '%s' in the state database ignored", key);
		return;
	}
	if (!ok)
		log_warn("invalid policy %s '%s' in the state database ignored", key, value);
	sched_set_policy(st->sched, &p->sched);
}

static void load_done(void *arg)
{
	struct state *st = arg;

	for (size_t i = 0; i < st->ntasks; i++)
		if (!task_state_final(st->tasks[i]->state))
			restore_one(st, st->tasks[i]);
	mark_dirty(st);
	log_info("loaded %zu tasks, %u teams, %u classes, %u pools, %u nodes", st->ntasks,
		 st->nteams, st->nclasses, st->npools, st->nnodes);
}

int state_load(struct state *st, char *err, size_t errlen)
{
	static const struct store_loader loader = {
		.policy = state_policy_restore,
		.pool = load_pool,
		.cls = load_class,
		.team = load_team,
		.quota = load_quota,
		.node = load_node,
		.task = load_task,
		.done = load_done,
	};

	return store_load(st->store, &loader, st, err, errlen);
}

/* ---------------------------------------------------------------- submit */

int check_res(const Hpq__Resources *pb, struct hpq_res *ret, const char *what,
	      struct state_err *e)
{
	struct hpq_res r = pb ? (struct hpq_res){ pb->gpus, pb->cpus, (int64_t)pb->mem }
			      : HPQ_RES_ZERO;

	if (pb && pb->mem > (uint64_t)STATE_MAX_MEM)
		return state_errf(e, HPQ_EINVAL, "%s memory %llu MiB is absurd", what,
				  (unsigned long long)pb->mem);
	if (r.gpus > STATE_MAX_GPUS)
		return state_errf(e, HPQ_EINVAL, "%s of %lld gpus is more than %d", what,
				  (long long)r.gpus, STATE_MAX_GPUS);
	if (r.cpus > STATE_MAX_CPUS)
		return state_errf(e, HPQ_EINVAL, "%s of %lld cpus is more than %d", what,
				  (long long)r.cpus, STATE_MAX_CPUS);
	*ret = r;
	return 0;
}

/*
 * A limit (borrow, lend): a component at or above HPQ_UNLIMITED_COUNT
 * (memory: HPQ_UNLIMITED_MEM) means "no limit" and is kept as exactly
 * that value, the one definition of unlimited (common/hpq.h); the others
 * are checked like any resource vector.
 */
int check_limit(const Hpq__Resources *pb, struct hpq_res *ret, const char *what,
		struct state_err *e)
{
	Hpq__Resources finite = HPQ__RESOURCES__INIT;
	struct hpq_res r;
	int rc;

	if (pb) {
		finite.gpus = pb->gpus >= HPQ_UNLIMITED_COUNT ? 0 : pb->gpus;
		finite.cpus = pb->cpus >= HPQ_UNLIMITED_COUNT ? 0 : pb->cpus;
		finite.mem = pb->mem >= HPQ_UNLIMITED_MEM ? 0 : pb->mem;
	}
	rc = check_res(&finite, &r, what, e);
	if (rc < 0)
		return rc;
	if (pb && pb->gpus >= HPQ_UNLIMITED_COUNT)
		r.gpus = HPQ_UNLIMITED_COUNT;
	if (pb && pb->cpus >= HPQ_UNLIMITED_COUNT)
		r.cpus = HPQ_UNLIMITED_COUNT;
	if (pb && pb->mem >= HPQ_UNLIMITED_MEM)
		r.mem = (int64_t)HPQ_UNLIMITED_MEM;
	*ret = r;
	return 0;
}
