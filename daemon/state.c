/*
 * state.c: the in-memory model (state.h) and every change to it.
 *
 * Each public change function has the same shape: check everything the
 * request says against the current state (returning a clear error before
 * touching anything), then apply it to memory and to the dispatcher,
 * record the rows and one event in the store's open batch, and mark the
 * dispatcher dirty when its inputs changed. A change is therefore either
 * refused whole or recorded whole; the caller decides whether to wait for
 * the commit before it answers.
 *
 * Task transitions follow DESIGN §3 and docs/decisions.md: START (the
 * attempt count goes up and the nodes are recorded), PREEMPT, a member's
 * exit (a gang ends when every member exited 0, or at the first failure,
 * cancel, timeout or any exit while preempting), and requeue (node lost,
 * agent lost the task), which turns into CANCELLED when a cancel waits.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "hpq.h"
#include "log.h"
#include "parse.h"
#include "state.h"
#include "store.h"
#include "xalloc.h"

#define MAX_PATH_LEN 4096
#define MAX_ARG_BYTES (1u << 20)
#define MAX_TIME_LIMIT_S (366ull * 24 * 3600)
#define MAX_GRACE_S (7ull * 24 * 3600)
#define DEFAULT_GRACE_S 60
#define MAX_LABELS 256

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

static const char *const state_names[] = {
	[TASK_PENDING] = "PENDING",     [TASK_RUNNING] = "RUNNING",
	[TASK_PREEMPTING] = "PREEMPTING", [TASK_COMPLETED] = "COMPLETED",
	[TASK_FAILED] = "FAILED",       [TASK_CANCELLED] = "CANCELLED",
	[TASK_TIMEOUT] = "TIMEOUT",
};

const char *state_task_state(enum task_state s)
{
	if ((unsigned)s >= sizeof(state_names) / sizeof(state_names[0]))
		return "UNKNOWN";
	return state_names[s];
}

int state_task_state_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (!strcasecmp(name, state_names[i]))
			return (int)i;
	return -1;
}

/* ---------------------------------------------------------------- small helpers */

static void set_str(char **slot, const char *s)
{
	char *n = xstrdup(s ? s : "");

	free(*slot);
	*slot = n;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char **dup_strv(char *const *v, size_t n)
{
	char **c;

	if (!n)
		return NULL;
	c = xcalloc(n, sizeof(*c));
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static void mark_dirty(struct state *st)
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

struct task *state_task_new(void)
{
	struct task *t = xcalloc(1, sizeof(*t));

	t->preempt_signal = SIGTERM;
	t->run_link.prev = t->run_link.next = &t->run_link;
	return t;
}

void state_task_free(struct task *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->user);
	free(t->team);
	free(t->cls);
	free(t->pool);
	free_strv(t->node_names, t->n_node_names);
	free(t->done);
	free(t->reason);
	free(t->checkpoint_dir);
	free(t->cwd);
	free_strv(t->argv, t->argc);
	free_strv(t->env, t->envc);
	free(t->ckpt.path);
	free(t);
}

static void team_free(struct team *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->default_class);
	free_strv(t->members, t->nmembers);
	free(t->quotas);
	free(t);
}

static void findings_free(struct node *n)
{
	for (size_t i = 0; i < n->nfindings; i++) {
		free(n->findings[i].category);
		free(n->findings[i].reason);
		free(n->findings[i].message);
		free(n->findings[i].severity);
		free(n->findings[i].action);
	}
	free(n->findings);
	n->findings = NULL;
	n->nfindings = 0;
}

static void node_free(struct node *n)
{
	if (!n)
		return;
	free(n->name);
	free_strv(n->labels, n->nlabels);
	free(n->address);
	free(n->software_version);
	free(n->service);
	free(n->health);
	free(n->reason);
	free(n->service_by);
	free(n->repair_action);
	findings_free(n);
	free(n);
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

/* ---------------------------------------------------------------- lookups */

static size_t lower_bound(const struct state *st, uint64_t id)
{
	size_t lo = 0, hi = st->ntasks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->tasks[mid]->st.id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t state_task_lower_bound(const struct state *st, uint64_t id)
{
	return lower_bound(st, id);
}

struct task *state_task_find(const struct state *st, uint64_t id)
{
	size_t i = lower_bound(st, id);

	return i < st->ntasks && st->tasks[i]->st.id == id ? st->tasks[i] : NULL;
}

struct team *state_team_find(const struct state *st, const char *name)
{
	return strmap_get(&st->team_names, name);
}

struct prio_class *state_class_find(const struct state *st, const char *name)
{
	return strmap_get(&st->class_names, name);
}

struct pool *state_pool_find(const struct state *st, const char *name)
{
	return strmap_get(&st->pool_names, name);
}

struct node *state_node_find(const struct state *st, const char *name)
{
	return strmap_get(&st->node_names, name);
}

struct task *state_task_of(struct sched_task *t)
{
	return container_of(t, struct task, st);
}

const char *state_task_reason(const struct state *st, const struct task *t)
{
	if (t->state == TASK_PENDING && t->st.state == SCHED_PENDING) {
		enum sched_reason r = sched_task_reason(st->sched, &t->st);

		if (r != SCHED_REASON_NONE)
			return sched_reason_name(r);
	}
	return t->reason ? t->reason : "";
}

static void tasks_append(struct state *st, struct task *t)
{
	if (st->ntasks == st->tasks_cap) {
		st->tasks_cap = st->tasks_cap ? 2 * st->tasks_cap : 1024;
		st->tasks = xreallocarray(st->tasks, st->tasks_cap, sizeof(*st->tasks));
	}
	st->tasks[st->ntasks++] = t;
	if (t->st.id >= st->next_id)
		st->next_id = t->st.id + 1;
}

/* ---------------------------------------------------------------- pools, classes, teams */

static struct pool *pool_add(struct state *st, const char *name)
{
	struct pool *p = xcalloc(1, sizeof(*p));

	p->id = st->npools;
	p->name = xstrdup(name);
	st->pools = xreallocarray(st->pools, st->npools + 1, sizeof(*st->pools));
	st->pools[st->npools++] = p;
	strmap_put(&st->pool_names, p->name, p);
	return p;
}

static void quota_defaults(struct sched_quota *q)
{
	memset(q, 0, sizeof(*q));
	q->sharing = SCHED_LEND_AND_BORROW;
	q->borrow_limit_pct = 50;
}

static struct quota *team_quota(struct team *t, uint32_t pool)
{
	for (size_t i = 0; i < t->nquotas; i++)
		if (t->quotas[i].pool == pool)
			return &t->quotas[i];
	return NULL;
}

static struct quota *team_quota_add(struct team *t, uint32_t pool)
{
	struct quota *q;

	t->quotas = xreallocarray(t->quotas, t->nquotas + 1, sizeof(*t->quotas));
	q = &t->quotas[t->nquotas++];
	q->pool = pool;
	quota_defaults(&q->q);
	return q;
}

/* Records a team with its quotas. */
static void team_save(struct state *st, const struct team *t)
{
	struct store_quota_row *q = xcalloc(t->nquotas, sizeof(*q));
	struct store_team_row row = {
		.name = t->name,
		.weight = t->weight,
		.preempt_own = t->preempt_own_lower ? "lower-priority" : "never",
		.default_class = t->default_class,
		.members = t->members,
		.nmembers = t->nmembers,
		.quotas = q,
		.nquotas = t->nquotas,
	};

	for (size_t i = 0; i < t->nquotas; i++) {
		const struct sched_quota *sq = &t->quotas[i].q;

		q[i] = (struct store_quota_row){
			.pool = st->pools[t->quotas[i].pool]->name,
			.guarantee = sq->guarantee,
			.sharing = state_sharing_name(sq->sharing),
			.borrow_limit_pct = sq->borrow_limit_pct,
			.has_borrow_abs = sq->has_borrow_abs,
			.borrow_abs = sq->borrow_abs,
			.has_lend_limit = sq->has_lend_limit,
			.lend_limit = sq->lend_limit,
		};
	}
	store_team_put(st->store, &row);
	free(q);
}

/*
 * A pool that comes into being (a node registers with it, a quota names
 * it) gives the team `default` what it has in the default pool: no
 * guarantee and unlimited borrowing, so that work submitted without a team
 * can use idle compute there as everywhere. Later changes are the admin's.
 */
static struct pool *pool_create(struct state *st, const char *name, const char *actor)
{
	struct pool *p = pool_add(st, name);
	struct team *def = state_team_find(st, "default");

	store_pool_put(st->store, p->name);
	state_event(st, "pool", NULL, NULL, actor, "pool %s created", p->name);
	if (def && !team_quota(def, p->id)) {
		struct quota *q = team_quota_add(def, p->id);

		q->q.borrow_limit_pct = 0;
		q->q.has_borrow_abs = true;
		q->q.borrow_abs = STATE_UNLIMITED;
		sched_team_quota(st->sched, def->id, p->id, &q->q);
		team_save(st, def);
	}
	return p;
}

static struct prio_class *class_add(struct state *st, const char *name, uint32_t weight,
				    bool preemptible)
{
	struct prio_class *c = xcalloc(1, sizeof(*c));

	c->id = st->nclasses;
	c->name = xstrdup(name);
	c->weight = weight;
	c->preemptible = preemptible;
	st->classes = xreallocarray(st->classes, st->nclasses + 1, sizeof(*st->classes));
	st->classes[st->nclasses++] = c;
	strmap_put(&st->class_names, c->name, c);
	sched_class_set(st->sched, c->id, weight, preemptible);
	return c;
}

static void team_insert(struct state *st, struct team *t)
{
	t->id = st->nteams;
	st->teams = xreallocarray(st->teams, st->nteams + 1, sizeof(*st->teams));
	st->teams[st->nteams++] = t;
	strmap_put(&st->team_names, t->name, t);
}

static bool team_admits(const struct team *t, const char *user)
{
	if (!t->nmembers)
		return true;
	for (size_t i = 0; i < t->nmembers; i++)
		if (!strcmp(t->members[i], user))
			return true;
	return false;
}

static void team_to_sched(struct state *st, const struct team *t)
{
	sched_team_set(st->sched, t->id, t->weight, t->preempt_own_lower);
	for (size_t i = 0; i < t->nquotas; i++)
		sched_team_quota(st->sched, t->id, t->quotas[i].pool, &t->quotas[i].q);
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

static struct pool *pool_restore(struct state *st, const char *name)
{
	struct pool *p = state_pool_find(st, name);

	return p ? p : pool_add(st, name);
}

static void load_pool(void *arg, const char *name)
{
	pool_restore(arg, name);
}

static void load_class(void *arg, const struct store_class_row *c)
{
	struct state *st = arg;

	if (!state_class_find(st, c->name))
		class_add(st, c->name, c->weight, c->preemptible);
}

static void load_team(void *arg, const struct store_team_row *row)
{
	struct state *st = arg;
	struct team *t;

	if (state_team_find(st, row->name))
		return;
	t = xcalloc(1, sizeof(*t));
	t->name = xstrdup(row->name);
	t->weight = row->weight;
	t->preempt_own_lower = strcmp(row->preempt_own, "never") != 0;
	t->default_class = xstrdup(row->default_class);
	t->members = dup_strv(row->members, row->nmembers);
	t->nmembers = row->nmembers;
	team_insert(st, t);
	sched_team_set(st->sched, t->id, t->weight, t->preempt_own_lower);
}

static void load_quota(void *arg, const char *team, const struct store_quota_row *row)
{
	struct state *st = arg;
	struct team *t = state_team_find(st, team);
	int sh = state_sharing_parse(row->sharing);
	struct sched_quota q = {
		.guarantee = row->guarantee,
		.sharing = sh < 0 ? SCHED_LEND_AND_BORROW : (enum sched_sharing)sh,
		.borrow_limit_pct = row->borrow_limit_pct,
		.has_borrow_abs = row->has_borrow_abs,
		.borrow_abs = row->borrow_abs,
		.has_lend_limit = row->has_lend_limit,
		.lend_limit = row->lend_limit,
	};
	struct quota *tq;
	struct pool *p;

	if (!t) {
		log_warn("quota for unknown team '%s' ignored", team);
		return;
	}
	p = pool_restore(st, row->pool);
	tq = team_quota(t, p->id);
	if (!tq)
		tq = team_quota_add(t, p->id);
	tq->q = q;
	sched_team_quota(st->sched, t->id, p->id, &q);
}

static struct node *node_add(struct state *st, const char *name, uint32_t pool)
{
	struct node *n = xcalloc(1, sizeof(*n));

	n->id = st->nnodes;
	n->name = xstrdup(name);
	n->pool = pool;
	n->address = xstrdup("");
	n->software_version = xstrdup("");
	n->service = xstrdup("active");
	n->health = xstrdup("healthy");
	n->reason = xstrdup("");
	n->service_by = xstrdup("");
	n->repair_action = xstrdup("");
	st->nodes = xreallocarray(st->nodes, st->nnodes + 1, sizeof(*st->nodes));
	st->nodes[st->nnodes++] = n;
	strmap_put(&st->node_names, n->name, n);
	return n;
}

bool state_node_schedulable(const struct node *n)
{
	return n->conn && !n->lost && !strcmp(n->service, "active") &&
	       strcmp(n->health, "unhealthy") && strcmp(n->health, "unreachable");
}

static void node_to_sched(struct state *st, struct node *n)
{
	if (sched_node_set(st->sched, n->id, n->pool, n->capacity, state_node_schedulable(n)) < 0)
		log_warn("node %s: the dispatcher refused its capacity", n->name);
	mark_dirty(st);
}

static void load_node(void *arg, const struct store_node_row *row)
{
	struct state *st = arg;
	struct node *n;

	if (state_node_find(st, row->name))
		return;
	n = node_add(st, row->name, pool_restore(st, row->pool)->id);
	n->capacity = row->capacity;
	/* Every node starts disconnected after a restart (docs/decisions.md). */
	node_to_sched(st, n);
	n->labels = dup_strv(row->labels, row->nlabels);
	n->nlabels = row->nlabels;
	set_str(&n->address, row->address);
	set_str(&n->service, row->service);
	set_str(&n->health, row->health);
	/* Already lost before the restart: no second "lost". */
	n->lost = !strcmp(n->health, "unreachable");
	set_str(&n->reason, row->reason);
	n->last_heartbeat_ms = row->last_seen_ms;
	set_str(&n->service_by, row->service_by);
	n->service_since_ms = row->service_since_ms;
	n->admin_hold = row->admin_hold;
	set_str(&n->repair_action, row->repair_action);
}

static void load_task(void *arg, const struct store_task_row *row,
		      const struct store_checkpoint *newest)
{
	struct state *st = arg;
	int state = state_task_state_parse(row->state);
	struct task *t;

	if (st->ntasks && st->tasks[st->ntasks - 1]->st.id >= row->id) {
		log_warn("task %llu out of order in the state database ignored",
			 (unsigned long long)row->id);
		return;
	}
	if (state < 0) {
		log_warn("task %llu has unknown state '%s': treating it as FAILED",
			 (unsigned long long)row->id, row->state);
		state = TASK_FAILED;
	}
	t = state_task_new();
	t->st.id = row->id;
	t->state = (enum task_state)state;
	t->name = xstrdup(row->name);
	t->team = xstrdup(row->team);
	t->user = xstrdup(row->user);
	t->uid = row->uid;
	t->gid = row->gid;
	t->cls = xstrdup(row->cls);
	t->pool = xstrdup(row->pool);
	t->reason = xstrdup(row->reason);
	t->st.nnodes = row->nnodes;
	t->st.per_node = row->per_node;
	t->node_names = dup_strv(row->node_names, row->n_node_names);
	t->n_node_names = (uint32_t)row->n_node_names;
	t->done = xstrdup(row->nodes_done);
	t->attempts = row->attempts;
	t->submit_ms = row->submit_ms;
	t->start_ms = row->start_ms;
	t->end_ms = row->end_ms;
	t->has_exit_code = row->has_exit_code;
	t->exit_code = row->exit_code;
	t->time_limit_s = row->time_limit_s;
	t->preempt_signal = row->preempt_signal;
	t->grace_s = row->grace_s;
	t->checkpoint_dir = xstrdup(row->checkpoint_dir);
	t->cwd = xstrdup(row->cwd);
	t->argv = dup_strv(row->argv, row->argc);
	t->argc = row->argc;
	t->cancel_requested = row->cancel_requested;
	/* An ended task needs neither its environment nor where to resume. */
	if (!task_state_final(t->state)) {
		t->env = dup_strv(row->env, row->envc);
		t->envc = row->envc;
		if (newest) {
			t->ckpt.has = true;
			t->ckpt.attempt = newest->attempt;
			t->ckpt.step = newest->step;
			t->ckpt.path = xstrdup(newest->path);
			t->ckpt.time_ms = newest->time_ms;
		}
	}
	tasks_append(st, t);
}

/* The row the store keeps of t, borrowing t's strings. */
static void task_row(const struct task *t, struct store_task_row *row)
{
	*row = (struct store_task_row){
		.id = t->st.id,
		.name = t->name,
		.team = t->team,
		.user = t->user,
		.uid = t->uid,
		.gid = t->gid,
		.cls = t->cls,
		.pool = t->pool,
		.state = state_task_state(t->state),
		.reason = t->reason,
		.nnodes = t->st.nnodes,
		.per_node = t->st.per_node,
		.node_names = t->node_names,
		.n_node_names = t->n_node_names,
		.nodes_done = t->done,
		.attempts = t->attempts,
		.submit_ms = t->submit_ms,
		.start_ms = t->start_ms,
		.end_ms = t->end_ms,
		.has_exit_code = t->has_exit_code,
		.exit_code = t->exit_code,
		.time_limit_s = t->time_limit_s,
		.preempt_signal = t->preempt_signal,
		.grace_s = t->grace_s,
		.checkpoint_dir = t->checkpoint_dir,
		.cwd = t->cwd,
		.argv = t->argv,
		.argc = t->argc,
		.env = t->env,
		.envc = t->envc,
		.cancel_requested = t->cancel_requested,
	};
}

static void task_insert(struct state *st, const struct task *t)
{
	struct store_task_row row;

	task_row(t, &row);
	store_task_insert(st->store, &row);
}

static void task_record(struct state *st, struct task *t)
{
	struct store_task_row row;

	task_row(t, &row);
	store_task_update(st->store, &row);
}

static void unlink_running(struct task *t)
{
	if (t->run_link.next != &t->run_link)
		dlist_del(&t->run_link);
}

/* Moves a task to a final state. */
static void task_end(struct state *st, struct task *t, enum task_state to, const char *reason)
{
	struct team *team = state_team_find(st, t->team);
	struct prio_class *cls = state_class_find(st, t->cls);

	if (t->st.state != SCHED_NONE)
		sched_task_finish(st->sched, &t->st, hpq_now_ms());
	unlink_running(t);
	t->state = to;
	t->end_ms = hpq_now_ms();
	t->run_unsent = false;
	if (reason)
		set_str(&t->reason, reason);
	if (team && team->active)
		team->active--;
	if (cls && cls->active)
		cls->active--;
	/* Only a run needs the environment, and it can be large: the store keeps it. */
	free_strv(t->env, t->envc);
	t->env = NULL;
	t->envc = 0;
	task_record(st, t);
	if (t->has_exit_code)
		state_event(st, "end", t, NULL, NULL, "%s, exit code %d%s%s", state_task_state(to),
			    t->exit_code, *t->reason ? ": " : "", t->reason);
	else
		state_event(st, "end", t, NULL, NULL, "%s%s%s", state_task_state(to),
			    *t->reason ? ": " : "", t->reason);
	mark_dirty(st);
}

/* Hands a loaded, unfinished task to the dispatcher. */
static void restore_one(struct state *st, struct task *t)
{
	struct team *team = state_team_find(st, t->team);
	struct prio_class *cls = state_class_find(st, t->cls);
	struct pool *pool = state_pool_find(st, t->pool);
	uint32_t *ids = NULL;
	int r;

	if (!pool)
		pool = pool_create(st, t->pool, NULL);
	if (!team || !cls) {
		char why[160];

		snprintf(why, sizeof(why), "its %s '%s' no longer exists", team ? "class" : "team",
			 team ? t->cls : t->team);
		task_end(st, t, TASK_FAILED, why);
		return;
	}
	team->active++;
	cls->active++;
	t->st.submit_ms = t->queue_ms = t->submit_ms;
	t->st.team = team->id;
	t->st.pool = pool->id;
	t->st.class_id = cls->id;
	if (!t->st.nnodes)
		t->st.nnodes = 1;

	if (t->state == TASK_RUNNING || t->state == TASK_PREEMPTING) {
		/* One '0'/'1' per rank, whatever the row held. */
		if (!t->done || strlen(t->done) != t->st.nnodes) {
			free(t->done);
			t->done = xmalloc(t->st.nnodes + 1);
			memset(t->done, '0', t->st.nnodes);
			t->done[t->st.nnodes] = '\0';
		}
		if (t->n_node_names == t->st.nnodes) {
			ids = xcalloc(t->st.nnodes, sizeof(*ids));
			for (uint32_t i = 0; i < t->st.nnodes; i++) {
				struct node *n = state_node_find(st, t->node_names[i]);

				if (!n) {
					free(ids);
					ids = NULL;
					break;
				}
				ids[i] = n->id;
			}
		}
		r = ids ? sched_task_adopt(st->sched, &t->st, ids, t->start_ms) : HPQ_ENOTFOUND;
		free(ids);
		if (r == 0) {
			dlist_add_tail(&st->running, &t->run_link);
			if (t->ckpt.has)
				sched_task_checkpoint(st->sched, &t->st, t->ckpt.time_ms);
			return;
		}
		/* Its nodes are gone from the store: it cannot be running anywhere we know. */
		t->state = TASK_PENDING;
		set_str(&t->reason, "its nodes are no longer known");
		task_record(st, t);
		state_event(st, "requeue", t, NULL, NULL, "%s", t->reason);
	}
	r = sched_task_submit(st->sched, &t->st);
	if (r < 0) {
		team->active--;
		cls->active--;
		task_end(st, t, TASK_FAILED, "the dispatcher refused it after a restart");
	}
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

static int check_res(const Hpq__Resources *pb, struct hpq_res *ret, const char *what,
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
static int check_limit(const Hpq__Resources *pb, struct hpq_res *ret, const char *what,
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

/* Team for a submit that named none: the one team whose members list
 * names the user, else `default`. */
static struct team *guess_team(struct state *st, const char *user, struct state_err *e)
{
	struct team *found = NULL, *def;
	char list[200] = "";
	size_t len = 0, n = 0;

	for (uint32_t i = 0; i < st->nteams; i++) {
		struct team *t = st->teams[i];

		if (!t || !t->nmembers || !team_admits(t, user))
			continue;
		n++;
		found = t;
		if (len < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
						len ? ", " : "", t->name);
	}
	if (n == 1)
		return found;
	if (n > 1) {
		state_errf(e, HPQ_EINVAL, "you are in several teams (%s): choose one with --team",
			   list);
		return NULL;
	}
	def = state_team_find(st, "default");
	if (def)
		return def;
	len = 0;
	for (uint32_t i = 0; i < st->nteams; i++) {
		struct team *t = st->teams[i];

		if (t && team_admits(t, user) && len < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
						len ? ", " : "", t->name);
	}
	state_errf(e, HPQ_EINVAL, "no team given and no team names you%s%s: use --team", len ?
		   "; open to you: " : "", list);
	return NULL;
}

/* A task name from argv[0] when none was given: its basename, tamed. */
static char *default_name(const char *argv0)
{
	const char *base = strrchr(argv0, '/');
	char *name;
	size_t n;

	base = base && base[1] ? base + 1 : argv0;
	n = strnlen(base, HPQ_NAME_MAX - 1);
	name = xstrndup(base, n);
	for (char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			*p = '_';
	if (!*name) {
		free(name);
		name = xstrdup("task");
	}
	return name;
}

static int check_strv(char **v, size_t n, const char *what, bool env, struct state_err *e)
{
	size_t bytes = 0;

	if (n > STATE_MAX_ARGS)
		return state_errf(e, HPQ_EINVAL, "%zu %s entries are too many (at most %d)", n,
				  what, STATE_MAX_ARGS);
	for (size_t i = 0; i < n; i++) {
		bytes += strlen(v[i]) + 1;
		if (env && (!strchr(v[i], '=') || v[i][0] == '='))
			return state_errf(e, HPQ_EINVAL,
					  "environment entry %zu is not KEY=VALUE", i + 1);
	}
	if (bytes > MAX_ARG_BYTES)
		return state_errf(e, HPQ_EINVAL, "%s is %zu bytes, more than %u", what, bytes,
				  MAX_ARG_BYTES);
	return 0;
}

static int check_path(const char *p, const char *what, struct state_err *e)
{
	if (!*p)
		return 0;
	if (p[0] != '/')
		return state_errf(e, HPQ_EINVAL, "%s '%s' is not an absolute path", what, p);
	if (strlen(p) >= MAX_PATH_LEN || has_ctl(p))
		return state_errf(e, HPQ_EINVAL, "%s is not a usable path", what);
	return 0;
}

int state_task_submit(struct state *st, const Hpq__TaskSpec *spec, const struct actor *who,
		      struct task **ret_task, struct state_err *e)
{
	struct team *team;
	struct prio_class *cls;
	struct pool *pool;
	struct hpq_res per_node;
	const char *pool_name, *cls_name;
	struct task *t;
	int r;

	if (!spec)
		return state_errf(e, HPQ_EINVAL, "submit without a task");
	if (!who->known)
		return state_errf(e, HPQ_EPERM, "user '%s' has no account on the daemon's host",
				  who->user);
	if (!spec->n_argv || !spec->argv[0][0])
		return state_errf(e, HPQ_EINVAL, "empty command: give it after --");
	r = check_strv(spec->argv, spec->n_argv, "command", false, e);
	if (r < 0)
		return r;
	r = check_strv(spec->env, spec->n_env, "environment", true, e);
	if (r < 0)
		return r;
	if (*spec->name && hpq_check_name(spec->name) < 0)
		return state_errf(e, HPQ_EINVAL,
				  "invalid task name '%.64s': use letters, digits, '.', '_', '-'",
				  spec->name);
	if (*spec->team) {
		if (hpq_check_name(spec->team) < 0)
			return state_errf(e, HPQ_EINVAL, "invalid team name '%.64s'", spec->team);
		team = state_team_find(st, spec->team);
		if (!team)
			return state_errf(e, HPQ_ENOTFOUND,
					  "unknown team '%s': see hpq team list", spec->team);
	} else {
		team = guess_team(st, who->user, e);
		if (!team)
			return HPQ_EINVAL;
	}
	if (!team_admits(team, who->user) && !who->admin)
		return state_errf(e, HPQ_EPERM, "you are not a member of team '%s'", team->name);

	cls_name = *spec->class_ ? spec->class_ : *team->default_class ? team->default_class
								      : STATE_NO_CLASS;
	if (*spec->class_ && hpq_check_name(spec->class_) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid class name '%.64s'", spec->class_);
	cls = state_class_find(st, cls_name);
	if (!cls)
		return state_errf(e, HPQ_ENOTFOUND, "unknown class '%s': see hpq class list",
				  cls_name);

	pool_name = *spec->pool ? spec->pool : HPQ_DEFAULT_POOL;
	if (hpq_check_name(pool_name) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid pool name '%.64s'", pool_name);
	pool = state_pool_find(st, pool_name);
	if (!pool)
		return state_errf(e, HPQ_ENOTFOUND, "unknown pool '%s': see hpq node list",
				  pool_name);

	if (spec->nodes > STATE_MAX_NODES_PER_TASK)
		return state_errf(e, HPQ_EINVAL, "a task of %u nodes is more than %d", spec->nodes,
				  STATE_MAX_NODES_PER_TASK);
	r = check_res(spec->per_node, &per_node, "a request", e);
	if (r < 0)
		return r;
	if (hpq_res_is_zero(per_node))
		per_node.cpus = 1;
	if (spec->time_limit_s > MAX_TIME_LIMIT_S)
		return state_errf(e, HPQ_EINVAL, "a time limit over a year is absurd");
	if (spec->grace_s > MAX_GRACE_S)
		return state_errf(e, HPQ_EINVAL, "a grace period over a week is absurd");
	if (spec->preempt_signal < 0 || spec->preempt_signal > SIGRTMAX)
		return state_errf(e, HPQ_EINVAL, "invalid preempt signal %d", spec->preempt_signal);
	r = check_path(spec->cwd, "working directory", e);
	if (r < 0)
		return r;
	r = check_path(spec->checkpoint_dir, "checkpoint directory", e);
	if (r < 0)
		return r;

	t = state_task_new();
	t->st.id = st->next_id;
	t->st.submit_ms = t->submit_ms = t->queue_ms = hpq_now_ms();
	t->st.team = team->id;
	t->st.pool = pool->id;
	t->st.class_id = cls->id;
	t->st.nnodes = spec->nodes ? spec->nodes : 1;
	t->st.per_node = per_node;
	t->name = *spec->name ? xstrdup(spec->name) : default_name(spec->argv[0]);
	t->user = xstrdup(who->user);
	t->uid = who->uid;
	t->gid = who->gid;
	t->team = xstrdup(team->name);
	t->cls = xstrdup(cls->name);
	t->pool = xstrdup(pool->name);
	t->state = TASK_PENDING;
	t->reason = xstrdup("");
	t->done = xstrdup("");
	t->time_limit_s = spec->time_limit_s;
	t->grace_s = spec->grace_s;
	t->preempt_signal = spec->preempt_signal ? spec->preempt_signal : SIGTERM;
	t->checkpoint_dir = xstrdup(spec->checkpoint_dir);
	t->cwd = xstrdup(*spec->cwd ? spec->cwd : "/");
	t->argv = dup_strv(spec->argv, spec->n_argv);
	t->argc = spec->n_argv;
	t->env = dup_strv(spec->env, spec->n_env);
	t->envc = spec->n_env;

	r = sched_task_submit(st->sched, &t->st);
	if (r < 0) {
		state_task_free(t);
		return state_errf(e, r, "the dispatcher cannot take this task: %s",
				  hpq_strerror(r));
	}
	tasks_append(st, t);
	team->active++;
	cls->active++;
	task_insert(st, t);
	state_event(st, "submit", t, NULL, who->user, "%s in team %s, class %s, pool %s, %u node%s",
		    t->name, t->team, t->cls, t->pool, t->st.nnodes, t->st.nnodes > 1 ? "s" : "");
	mark_dirty(st);
	*ret_task = t;
	return 0;
}

/* ---------------------------------------------------------------- cancel, checkpoint */

int state_task_cancel(struct state *st, struct task *t, const struct actor *who,
		      struct state_err *e)
{
	char why[128];

	if (!who->admin && strcmp(who->user, t->user))
		return state_errf(e, HPQ_EPERM,
				  "task %llu belongs to %s: only they or an administrator can "
				  "cancel it", (unsigned long long)t->st.id, t->user);
	if (task_state_final(t->state))
		return state_errf(e, HPQ_ESTATE, "task %llu has already ended (%s)",
				  (unsigned long long)t->st.id, state_task_state(t->state));
	snprintf(why, sizeof(why), "cancelled by %s", who->user);
	if (t->state == TASK_PENDING) {
		state_event(st, "cancel", t, NULL, who->user, "cancelled while pending");
		task_end(st, t, TASK_CANCELLED, why);
		return 0;
	}
	if (t->cancel_requested)
		return 1;
	t->cancel_requested = true;
	set_str(&t->reason, why);
	task_record(st, t);
	state_event(st, "cancel", t, NULL, who->user, "cancel of attempt %u requested",
		    t->attempts);
	return 1;
}

static bool runs_on(const struct task *t, const char *node)
{
	for (uint32_t i = 0; i < t->n_node_names; i++)
		if (!strcmp(t->node_names[i], node))
			return true;
	return false;
}

int state_checkpoint_add(struct state *st, struct task *t, uint32_t attempt, uint64_t step,
			 const char *path, const struct actor *who, struct state_err *e)
{
	int64_t now = hpq_now_ms();

	if (who->agent) {
		if (!who->node || !runs_on(t, who->node))
			return state_errf(e, HPQ_EPERM, "task %llu does not run on this node",
					  (unsigned long long)t->st.id);
	} else if (!who->admin && strcmp(who->user, t->user)) {
		return state_errf(e, HPQ_EPERM, "task %llu belongs to %s",
				  (unsigned long long)t->st.id, t->user);
	}
	if (t->state != TASK_RUNNING && t->state != TASK_PREEMPTING)
		return state_errf(e, HPQ_ESTATE, "task %llu is %s, not running",
				  (unsigned long long)t->st.id, state_task_state(t->state));
	if (attempt != t->attempts)
		return state_errf(e, HPQ_ESTATE,
				  "attempt %u is not the current attempt of task %llu (%u)",
				  attempt, (unsigned long long)t->st.id, t->attempts);
	if (!*path || strlen(path) >= MAX_PATH_LEN || has_ctl(path))
		return state_errf(e, HPQ_EINVAL, "a checkpoint needs a usable path");

	t->ckpt.has = true;
	t->ckpt.attempt = attempt;
	t->ckpt.step = step;
	set_str(&t->ckpt.path, path);
	t->ckpt.time_ms = now;
	sched_task_checkpoint(st->sched, &t->st, now);
	store_checkpoint_add(st->store, t->st.id, attempt, step, path, now);
	state_event(st, "checkpoint", t, who->agent ? who->node : NULL, who->user,
		    "step %llu at %s", (unsigned long long)step, path);
	return 0;
}

/* ---------------------------------------------------------------- dispatcher decisions, exits */

void state_task_start(struct state *st, struct task *t)
{
	char list[256];
	size_t len = 0;

	free_strv(t->node_names, t->n_node_names);
	t->n_node_names = t->st.nnodes;
	t->node_names = xcalloc(t->st.nnodes, sizeof(*t->node_names));
	list[0] = '\0';
	for (uint32_t i = 0; i < t->st.nnodes; i++) {
		const struct node *n = st->nodes[t->st.nodes[i]];

		t->node_names[i] = xstrdup(n->name);
		if (len < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
						i ? "," : "", n->name);
	}
	free(t->done);
	t->done = xmalloc(t->st.nnodes + 1);
	memset(t->done, '0', t->st.nnodes);
	t->done[t->st.nnodes] = '\0';
	t->attempts++;
	t->state = TASK_RUNNING;
	t->start_ms = hpq_now_ms();
	t->end_ms = 0;
	t->has_exit_code = false;
	t->exit_code = 0;
	set_str(&t->reason, "");
	t->run_unsent = true;
	unlink_running(t);
	dlist_add_tail(&st->running, &t->run_link);
	task_record(st, t);
	state_event(st, "start", t, NULL, NULL, "attempt %u on %s%s", t->attempts, list,
		    t->ckpt.has ? " (resuming)" : "");
}

void state_task_preempt(struct state *st, struct task *t, const struct task *beneficiary,
			enum sched_preempt_cause cause)
{
	const char *how = cause == SCHED_CAUSE_RECLAIM    ? "reclaim"
			  : cause == SCHED_CAUSE_PRIORITY ? "priority"
							  : "dispatcher";
	char why[96];

	if (beneficiary)
		snprintf(why, sizeof(why), "preempted by task %llu (%s)",
			 (unsigned long long)beneficiary->st.id, how);
	else
		snprintf(why, sizeof(why), "preempted (%s)", how);
	t->state = TASK_PREEMPTING;
	if (!t->cancel_requested)
		set_str(&t->reason, why);
	task_record(st, t);
	state_event(st, "preempt", t, NULL, NULL, "attempt %u %s", t->attempts, why);
	if (beneficiary)
		state_event(st, "preempt-for", beneficiary, NULL, NULL, "preempting task %llu (%s, "
			    "team %s, class %s) to make room", (unsigned long long)t->st.id, how,
			    t->team, t->cls);
}

void state_task_requeue(struct state *st, struct task *t, const char *why)
{
	if (t->state != TASK_RUNNING && t->state != TASK_PREEMPTING)
		return;
	if (t->cancel_requested) {
		task_end(st, t, TASK_CANCELLED, NULL);
		return;
	}
	t->queue_ms = hpq_now_ms();
	sched_task_requeue(st->sched, &t->st, t->queue_ms);
	if (!st->policy.sched.requeue_by_eviction)
		t->queue_ms = t->submit_ms;
	unlink_running(t);
	t->state = TASK_PENDING;
	t->run_unsent = false;
	set_str(&t->reason, why);
	task_record(st, t);
	state_event(st, "requeue", t, NULL, NULL, "attempt %u: %s%s", t->attempts, why,
		    t->ckpt.has ? "; resumes from its newest checkpoint" : "");
	mark_dirty(st);
}

enum member_exit state_task_member_exit(struct state *st, struct task *t, uint32_t rank,
					int32_t exit_code, const char *reason)
{
	char why[160];
	bool all = true;

	if (t->state != TASK_RUNNING && t->state != TASK_PREEMPTING)
		return EXIT_IGNORED;
	if (rank >= t->n_node_names || !t->done || strlen(t->done) <= rank ||
	    t->done[rank] == '1')
		return EXIT_IGNORED;
	t->done[rank] = '1';
	t->exit_code = exit_code;
	t->has_exit_code = true;
	t->run_unsent = false;
	reason = reason && *reason ? reason : "exit";

	if (t->cancel_requested) {
		task_end(st, t, TASK_CANCELLED, NULL);
		return EXIT_ENDED;
	}
	if (t->state == TASK_PREEMPTING) {
		char prev[96];

		snprintf(prev, sizeof(prev), "%s", t->reason ? t->reason : "preempted");
		t->has_exit_code = false;
		state_task_requeue(st, t, prev);
		return EXIT_REQUEUED;
	}
	if (!strcmp(reason, "timeout")) {
		snprintf(why, sizeof(why), "time limit reached on %s", t->node_names[rank]);
		task_end(st, t, TASK_TIMEOUT, why);
		return EXIT_ENDED;
	}
	if (exit_code != 0) {
		snprintf(why, sizeof(why), "%s on %s", reason, t->node_names[rank]);
		task_end(st, t, TASK_FAILED, why);
		return EXIT_ENDED;
	}
	for (uint32_t i = 0; i < t->n_node_names; i++)
		if (t->done[i] != '1')
			all = false;
	if (all) {
		task_end(st, t, TASK_COMPLETED, "");
		return EXIT_ENDED;
	}
	task_record(st, t);
	state_event(st, "exit", t, t->node_names[rank], NULL,
		    "rank %u exited 0; waiting for the others", rank);
	return EXIT_WAIT;
}

/* ---------------------------------------------------------------- teams and classes */

static const char *const sharing_names[] = {
	[SCHED_LEND_AND_BORROW] = "lend-and-borrow",
	[SCHED_LEND] = "lend",
	[SCHED_DONT_LEND] = "dont-lend",
};

const char *state_sharing_name(enum sched_sharing s)
{
	if ((unsigned)s >= sizeof(sharing_names) / sizeof(sharing_names[0]))
		return "lend-and-borrow";
	return sharing_names[s];
}

int state_sharing_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(sharing_names) / sizeof(sharing_names[0]); i++)
		if (!strcmp(name, sharing_names[i]))
			return (int)i;
	return -1;
}

static struct team *team_clone(const struct team *t)
{
	struct team *c = xcalloc(1, sizeof(*c));

	*c = *t;
	c->name = xstrdup(t->name);
	c->default_class = xstrdup(t->default_class);
	c->members = dup_strv(t->members, t->nmembers);
	c->quotas = t->nquotas ? xcalloc(t->nquotas, sizeof(*c->quotas)) : NULL;
	if (t->nquotas)
		memcpy(c->quotas, t->quotas, t->nquotas * sizeof(*c->quotas));
	return c;
}

enum {
	F_WEIGHT = 1 << 0,
	F_PREEMPT_OWN = 1 << 1,
	F_MEMBERS = 1 << 2,
	F_DEFAULT_CLASS = 1 << 3,
	F_QUOTAS = 1 << 4,          /* replace the whole list */
	F_Q_GUARANTEE = 1 << 5,
	F_Q_SHARING = 1 << 6,
	F_Q_BORROW_PCT = 1 << 7,
	F_Q_BORROW_ABS = 1 << 8,
	F_Q_LEND = 1 << 9,
	F_PREEMPTIBLE = 1 << 10,    /* classes */
	F_Q_ALL = F_Q_GUARANTEE | F_Q_SHARING | F_Q_BORROW_PCT | F_Q_BORROW_ABS | F_Q_LEND,
};

static const struct {
	const char *name;
	unsigned bit;
} team_fields[] = {
	{ "weight", F_WEIGHT },
	{ "preempt_own", F_PREEMPT_OWN },
	{ "members", F_MEMBERS },
	{ "default_class", F_DEFAULT_CLASS },
	{ "quotas", F_QUOTAS },
	{ "quota.guarantee", F_Q_GUARANTEE },
	{ "quota.sharing", F_Q_SHARING },
	{ "quota.borrow_limit_pct", F_Q_BORROW_PCT },
	{ "quota.borrow_limit_abs", F_Q_BORROW_ABS },
	{ "quota.lend_limit", F_Q_LEND },
};

static int parse_fields(char **fields, size_t n, unsigned *ret, struct state_err *e)
{
	unsigned mask = 0;

	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < sizeof(team_fields) / sizeof(team_fields[0]); k++)
			if (!strcmp(fields[i], team_fields[k].name))
				break;
		if (k == sizeof(team_fields) / sizeof(team_fields[0]))
			return state_errf(e, HPQ_EINVAL,
					  "unknown team field '%.64s': use weight, preempt_own, "
					  "members, default_class, quotas or quota.guarantee, "
					  "quota.sharing, quota.borrow_limit_pct, "
					  "quota.borrow_limit_abs, quota.lend_limit", fields[i]);
		mask |= team_fields[k].bit;
	}
	*ret = mask;
	return 0;
}

static int apply_quota(struct sched_quota *q, const Hpq__PoolQuota *pq, unsigned mask,
		       struct state_err *e)
{
	struct sched_quota n = *q;
	int r;

	if (mask & F_Q_GUARANTEE) {
		r = check_res(pq->guarantee, &n.guarantee, "a guarantee", e);
		if (r < 0)
			return r;
	}
	if (mask & F_Q_SHARING) {
		size_t k;

		for (k = 0; k < sizeof(sharing_names) / sizeof(sharing_names[0]); k++)
			if (!strcmp(pq->sharing, sharing_names[k]))
				break;
		if (!*pq->sharing)
			k = SCHED_LEND_AND_BORROW;
		else if (k == sizeof(sharing_names) / sizeof(sharing_names[0]))
			return state_errf(e, HPQ_EINVAL,
					  "unknown sharing '%.32s': use dont-lend, lend or "
					  "lend-and-borrow", pq->sharing);
		n.sharing = (enum sched_sharing)k;
	}
	if (mask & F_Q_BORROW_PCT) {
		if (pq->borrow_limit_pct > 10000)
			return state_errf(e, HPQ_EINVAL, "a borrow limit of %u%% is over 10000%%",
					  pq->borrow_limit_pct);
		n.borrow_limit_pct = pq->borrow_limit_pct;
	}
	if (mask & F_Q_BORROW_ABS) {
		n.has_borrow_abs = pq->has_borrow_limit_abs;
		n.borrow_abs = HPQ_RES_ZERO;
		if (n.has_borrow_abs) {
			r = check_limit(pq->borrow_limit_abs, &n.borrow_abs, "a borrow limit", e);
			if (r < 0)
				return r;
		}
	}
	if (mask & F_Q_LEND) {
		n.has_lend_limit = pq->has_lend_limit;
		n.lend_limit = HPQ_RES_ZERO;
		if (n.has_lend_limit) {
			r = check_limit(pq->lend_limit, &n.lend_limit, "a lend limit", e);
			if (r < 0)
				return r;
		}
	}
	*q = n;
	return 0;
}

/* Pools named by quotas that do not exist yet; created once the change is accepted. */
struct new_pools {
	char **names;
	size_t n;
};

static int quota_pool(struct state *st, const char *name, struct new_pools *np, uint32_t *ret,
		      struct state_err *e)
{
	struct pool *p;

	if (hpq_check_name(name) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid pool name '%.64s'", name);
	p = state_pool_find(st, name);
	if (p) {
		*ret = p->id;
		return 0;
	}
	for (size_t i = 0; i < np->n; i++)
		if (!strcmp(np->names[i], name)) {
			*ret = st->npools + (uint32_t)i;
			return 0;
		}
	np->names = xreallocarray(np->names, np->n + 1, sizeof(*np->names));
	np->names[np->n] = xstrdup(name);
	*ret = st->npools + (uint32_t)np->n++;
	return 0;
}

/*
 * A guarantee must fit the pool: no resource may exceed what the pool's
 * nodes have in total (every registered node, schedulable or not: a node
 * under repair comes back). A pool without nodes yet (named by a quota
 * before its machines arrive) takes any guarantee. Over-commitment, the
 * sum of the teams' guarantees beyond capacity, is allowed.
 */
static int check_guarantee(const struct state *st, uint32_t pool, struct hpq_res g,
			   struct state_err *e)
{
	struct hpq_res cap = HPQ_RES_ZERO;
	uint32_t nodes = 0;
	char want[96], have[96];

	for (uint32_t i = 0; i < st->nnodes; i++) {
		if (st->nodes[i]->pool != pool)
			continue;
		cap = hpq_res_add(cap, st->nodes[i]->capacity);
		nodes++;
	}
	if (!nodes || (g.gpus <= cap.gpus && g.cpus <= cap.cpus && g.mem <= cap.mem))
		return 0;
	return state_errf(e, HPQ_EINVAL, "a guarantee of %s is larger than pool %s (%s on %u "
			  "node%s)", hpq_res_format(g, want, sizeof(want)), st->pools[pool]->name,
			  hpq_res_format(cap, have, sizeof(have)), nodes, nodes == 1 ? "" : "s");
}

static int apply_team(struct state *st, struct team *t, const Hpq__Team *pb, unsigned mask,
		      struct new_pools *np, struct state_err *e)
{
	int r;

	if (mask & F_WEIGHT) {
		if (pb->weight > 100)
			return state_errf(e, HPQ_EINVAL, "weight %u is out of range 0-100",
					  pb->weight);
		t->weight = pb->weight;
	}
	if (mask & F_PREEMPT_OWN) {
		if (!*pb->preempt_own || !strcmp(pb->preempt_own, "lower-priority"))
			t->preempt_own_lower = true;
		else if (!strcmp(pb->preempt_own, "never"))
			t->preempt_own_lower = false;
		else
			return state_errf(e, HPQ_EINVAL, "unknown preempt_own '%.32s': "
					  "use lower-priority or never", pb->preempt_own);
	}
	if (mask & F_MEMBERS) {
		for (size_t i = 0; i < pb->n_members; i++)
			if (hpq_check_name(pb->members[i]) < 0)
				return state_errf(e, HPQ_EINVAL, "invalid user name '%.64s'",
						  pb->members[i]);
		free_strv(t->members, t->nmembers);
		t->members = dup_strv(pb->members, pb->n_members);
		t->nmembers = pb->n_members;
	}
	if (mask & F_DEFAULT_CLASS) {
		if (*pb->default_class && !state_class_find(st, pb->default_class))
			return state_errf(e, HPQ_ENOTFOUND, "unknown class '%.64s'",
					  pb->default_class);
		set_str(&t->default_class, pb->default_class);
	}
	if (mask & F_QUOTAS) {
		free(t->quotas);
		t->quotas = NULL;
		t->nquotas = 0;
		mask |= F_Q_ALL;
	}
	if (!(mask & (F_QUOTAS | F_Q_ALL)))
		return 0;
	if ((mask & F_Q_ALL) && !pb->n_quotas && !(mask & F_QUOTAS))
		return state_errf(e, HPQ_EINVAL, "a quota field without a pool");
	for (size_t i = 0; i < pb->n_quotas; i++) {
		const Hpq__PoolQuota *pq = pb->quotas[i];
		const char *pname = *pq->pool ? pq->pool : HPQ_DEFAULT_POOL;
		struct quota *q;
		uint32_t pool = 0;

		r = quota_pool(st, pname, np, &pool, e);
		if (r < 0)
			return r;
		q = team_quota(t, pool);
		if (q && (mask & F_QUOTAS))
			return state_errf(e, HPQ_EINVAL, "pool %s appears twice", pname);
		if (!q)
			q = team_quota_add(t, pool);
		r = apply_quota(&q->q, pq, mask, e);
		if (r < 0)
			return r;
		if ((mask & F_Q_GUARANTEE) && pool < st->npools) {
			r = check_guarantee(st, pool, q->q.guarantee, e);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static bool any_admin_errors(const struct actor *who, struct state_err *e, int *r)
{
	if (who->admin)
		return false;
	*r = state_errf(e, HPQ_EPERM, "only administrators can change teams and classes");
	return true;
}

int state_team_set(struct state *st, const Hpq__TeamSetRequest *req, const struct actor *who,
		   struct state_err *e)
{
	const Hpq__Team *pb = req->team;
	struct new_pools np = { 0 };
	struct team *old, *t = NULL;
	unsigned mask = 0;
	int r;

	if (any_admin_errors(who, e, &r))
		return r;
	if (!pb)
		return state_errf(e, HPQ_EINVAL, "no team given");
	if (hpq_check_name(pb->name) < 0)
		return state_errf(e, HPQ_EINVAL,
				  "invalid team name '%.64s': use letters, digits, '.', '_', '-'",
				  pb->name);
	r = parse_fields(req->fields, req->n_fields, &mask, e);
	if (r < 0)
		return r;
	old = state_team_find(st, pb->name);
	if (req->create) {
		if (old)
			return state_errf(e, HPQ_EEXIST, "team '%s' exists: use hpq team set",
					  pb->name);
		/* Only the listed fields come from the request; the rest are defaults. */
		t = xcalloc(1, sizeof(*t));
		t->name = xstrdup(pb->name);
		t->weight = 1;
		t->preempt_own_lower = true;
		t->default_class = xstrdup("");
	} else {
		if (!old)
			return state_errf(e, HPQ_ENOTFOUND, "unknown team '%s': use hpq team add",
					  pb->name);
		if (!mask)
			return state_errf(e, HPQ_EINVAL, "nothing to change in team '%s'",
					  pb->name);
		t = team_clone(old);
	}
	r = apply_team(st, t, pb, mask, &np, e);
	if (r < 0)
		goto out;

	for (size_t i = 0; i < np.n; i++)
		pool_create(st, np.names[i], who->user);
	if (old) {
		/* Pools dropped by a replacement of the list get nothing there any more. */
		for (size_t i = 0; i < old->nquotas; i++) {
			if (!team_quota(t, old->quotas[i].pool)) {
				struct sched_quota none;

				quota_defaults(&none);
				none.borrow_limit_pct = 0;
				none.sharing = SCHED_DONT_LEND;
				sched_team_quota(st->sched, old->id, old->quotas[i].pool, &none);
			}
		}
		t->id = old->id;
		t->active = old->active;
		st->teams[t->id] = t;
		strmap_put(&st->team_names, t->name, t);
		team_free(old);
	} else {
		team_insert(st, t);
	}
	team_to_sched(st, t);
	team_save(st, t);
	state_event(st, "team", NULL, NULL, who->user, "team %s %s", t->name,
		    old ? "changed" : "created");
	mark_dirty(st);
	t = NULL;
	r = 0;
out:
	if (t)
		team_free(t);
	free_strv(np.names, np.n);
	return r;
}

int state_team_remove(struct state *st, const char *name, const struct actor *who,
		      struct state_err *e)
{
	struct team *t;
	struct sched_quota none;
	int r;

	if (any_admin_errors(who, e, &r))
		return r;
	t = state_team_find(st, name);
	if (!t)
		return state_errf(e, HPQ_ENOTFOUND, "unknown team '%.64s'", name);
	if (t->active)
		return state_errf(e, HPQ_EBUSY,
				  "team '%s' has %u unfinished tasks: cancel them or wait", name,
				  t->active);
	quota_defaults(&none);
	none.borrow_limit_pct = 0;
	none.sharing = SCHED_DONT_LEND;
	for (size_t i = 0; i < t->nquotas; i++)
		sched_team_quota(st->sched, t->id, t->quotas[i].pool, &none);
	store_team_delete(st->store, t->name);
	state_event(st, "team", NULL, NULL, who->user, "team %s removed", t->name);
	strmap_del(&st->team_names, t->name);
	st->teams[t->id] = NULL;
	team_free(t);
	mark_dirty(st);
	return 0;
}

int state_class_set(struct state *st, const Hpq__ClassSetRequest *req, const struct actor *who,
		    struct state_err *e)
{
	const Hpq__PriorityClass *pb = req->class_;
	struct prio_class *c;
	unsigned mask = 0;
	uint32_t n = 0;
	int r;

	if (any_admin_errors(who, e, &r))
		return r;
	if (!pb)
		return state_errf(e, HPQ_EINVAL, "no class given");
	if (hpq_check_name(pb->name) < 0)
		return state_errf(e, HPQ_EINVAL,
				  "invalid class name '%.64s': use letters, digits, '.', '_', '-'",
				  pb->name);
	for (size_t i = 0; i < req->n_fields; i++) {
		if (!strcmp(req->fields[i], "weight"))
			mask |= F_WEIGHT;
		else if (!strcmp(req->fields[i], "preemptible"))
			mask |= F_PREEMPTIBLE;
		else
			return state_errf(e, HPQ_EINVAL,
					  "unknown class field '%.64s': use weight or preemptible",
					  req->fields[i]);
	}
	if ((mask & F_WEIGHT) && pb->weight > 100)
		return state_errf(e, HPQ_EINVAL, "weight %u is out of range 0-100", pb->weight);
	c = state_class_find(st, pb->name);
	if (req->create) {
		if (c)
			return state_errf(e, HPQ_EEXIST, "class '%s' exists: use hpq class set",
					  pb->name);
		for (uint32_t i = 0; i < st->nclasses; i++)
			if (st->classes[i] && strcmp(st->classes[i]->name, STATE_NO_CLASS))
				n++;
		if (n >= STATE_MAX_CLASSES)
			return state_errf(e, HPQ_EINVAL, "there are already %d classes, the most",
					  STATE_MAX_CLASSES);
		c = class_add(st, pb->name, (mask & F_WEIGHT) ? pb->weight : 0,
			      (mask & F_PREEMPTIBLE) ? pb->preemptible : true);
	} else {
		if (!c)
			return state_errf(e, HPQ_ENOTFOUND, "unknown class '%s': use hpq class add",
					  pb->name);
		if (!mask)
			return state_errf(e, HPQ_EINVAL, "nothing to change in class '%s'",
					  pb->name);
		if (mask & F_WEIGHT)
			c->weight = pb->weight;
		if (mask & F_PREEMPTIBLE)
			c->preemptible = pb->preemptible;
		sched_class_set(st->sched, c->id, c->weight, c->preemptible);
	}
	store_class_put(st->store, &(struct store_class_row){ c->name, c->weight, c->preemptible });
	state_event(st, "class", NULL, NULL, who->user, "class %s %s: weight %u, %spreemptible",
		    c->name, req->create ? "created" : "changed", c->weight,
		    c->preemptible ? "" : "not ");
	mark_dirty(st);
	return 0;
}

int state_class_remove(struct state *st, const char *name, const struct actor *who,
		       struct state_err *e)
{
	struct prio_class *c;
	int r;

	if (any_admin_errors(who, e, &r))
		return r;
	if (hpq_check_name(name) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid class name '%.64s'", name);
	c = state_class_find(st, name);
	if (!c)
		return state_errf(e, HPQ_ENOTFOUND, "unknown class '%.64s'", name);
	if (c->active)
		return state_errf(e, HPQ_EBUSY,
				  "class '%s' has %u unfinished tasks: cancel them or wait", name,
				  c->active);
	for (uint32_t i = 0; i < st->nteams; i++)
		if (st->teams[i] && !strcmp(st->teams[i]->default_class, name))
			return state_errf(e, HPQ_EBUSY, "team '%s' uses class '%s' as its default",
					  st->teams[i]->name, name);
	store_class_delete(st->store, c->name);
	state_event(st, "class", NULL, NULL, who->user, "class %s removed", c->name);
	strmap_del(&st->class_names, c->name);
	st->classes[c->id] = NULL;
	free(c->name);
	free(c);
	return 0;
}

/* ---------------------------------------------------------------- nodes */

static const char *health_of(const struct finding *f, size_t n)
{
	const char *h = "healthy";

	for (size_t i = 0; i < n; i++) {
		if (!strcmp(f[i].severity, "fatal"))
			return "unhealthy";
		if (!strcmp(f[i].severity, "warning"))
			h = "degraded";
	}
	return h;
}

static int check_findings(Hpq__Finding **f, size_t n, struct state_err *e)
{
	if (n > 256)
		return state_errf(e, HPQ_EINVAL, "%zu findings are too many", n);
	for (size_t i = 0; i < n; i++)
		if (strlen(f[i]->message) > 4096 || strlen(f[i]->reason) > 256 ||
		    strlen(f[i]->category) > 64 || strlen(f[i]->severity) > 16 ||
		    strlen(f[i]->action) > 16)
			return state_errf(e, HPQ_EINVAL, "finding %zu is too long", i + 1);
	return 0;
}

static void set_findings(struct node *n, Hpq__Finding **f, size_t count)
{
	findings_free(n);
	if (!count)
		return;
	n->findings = xcalloc(count, sizeof(*n->findings));
	for (size_t i = 0; i < count; i++) {
		n->findings[i].category = xstrdup(f[i]->category);
		n->findings[i].reason = xstrdup(f[i]->reason);
		n->findings[i].message = xstrdup(f[i]->message);
		n->findings[i].severity = xstrdup(f[i]->severity);
		n->findings[i].action = xstrdup(f[i]->action);
		n->findings[i].since = f[i]->since;
	}
	n->nfindings = count;
}

static bool node_has_tasks(const struct state *st, const struct node *n)
{
	for (const struct dlist *l = st->running.next; l != &st->running; l = l->next) {
		const struct task *t = container_of(l, struct task, run_link);

		if (runs_on(t, n->name))
			return true;
	}
	return false;
}

int state_node_register(struct state *st, const Hpq__Register *reg, const char *version,
			struct conn *conn, struct node **ret_node, struct state_err *e)
{
	const char *pool_name = *reg->pool ? reg->pool : HPQ_DEFAULT_POOL;
	struct hpq_res cap;
	struct pool *pool;
	struct node *n;
	char buf[96];
	bool was_lost;
	int r;

	if (hpq_check_name(reg->name) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid node name '%.64s'", reg->name);
	if (hpq_check_name(pool_name) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid pool name '%.64s'", pool_name);
	r = check_res(reg->capacity, &cap, "a node", e);
	if (r < 0)
		return r;
	if (reg->n_labels > MAX_LABELS)
		return state_errf(e, HPQ_EINVAL, "%zu labels are too many", reg->n_labels);
	for (size_t i = 0; i < reg->n_labels; i++)
		if (strlen(reg->labels[i]) > 256 || has_ctl(reg->labels[i]))
			return state_errf(e, HPQ_EINVAL, "label %zu is not usable", i + 1);
	if (strlen(reg->address) > 255 || has_ctl(reg->address))
		return state_errf(e, HPQ_EINVAL, "the node's address is not usable");
	r = check_findings(reg->findings, reg->n_findings, e);
	if (r < 0)
		return r;
	n = state_node_find(st, reg->name);
	pool = state_pool_find(st, pool_name);
	if (n && (!pool || pool->id != n->pool) && node_has_tasks(st, n))
		return state_errf(e, HPQ_EBUSY, "node %s runs tasks in pool %s: drain it before "
				  "moving it to pool %s", n->name, st->pools[n->pool]->name,
				  pool_name);
	if (!pool)
		pool = pool_create(st, pool_name, NULL);
	if (!n)
		n = node_add(st, reg->name, pool->id);
	was_lost = n->lost;
	n->pool = pool->id;
	n->capacity = cap;
	free_strv(n->labels, n->nlabels);
	n->labels = dup_strv(reg->labels, reg->n_labels);
	n->nlabels = reg->n_labels;
	set_str(&n->address, reg->address);
	set_str(&n->software_version, version);
	set_findings(n, reg->findings, reg->n_findings);
	if (strcmp(n->health, health_of(n->findings, n->nfindings)))
		state_event(st, "node", NULL, n->name, "hpqd", "health %s -> %s", n->health,
			    health_of(n->findings, n->nfindings));
	set_str(&n->health, health_of(n->findings, n->nfindings));
	/* Out of service, the reason is the service state's (repair.c). */
	if (!strcmp(n->service, "active"))
		set_str(&n->reason, "");
	n->lost = false;
	n->conn = conn;
	n->last_heartbeat_ms = hpq_now_ms();
	node_to_sched(st, n);
	state_node_save(st, n);
	state_event(st, "node", NULL, n->name, n->name, "registered%s in pool %s: %s",
		    was_lost ? " again" : "", st->pools[n->pool]->name,
		    hpq_res_format(cap, buf, sizeof(buf)));
	*ret_node = n;
	return 0;
}

/* Tells the observers that n's heartbeat is in. */
static void heard(struct state *st, struct node *n)
{
	for (size_t i = 0; i < st->nobservers; i++)
		if (st->observers[i].heartbeat)
			st->observers[i].heartbeat(st->observers[i].arg, n);
}

void state_node_heartbeat(struct state *st, struct node *n, const Hpq__Heartbeat *hb)
{
	const char *health;
	bool before = state_node_schedulable(n);

	n->heartbeats++;
	n->last_heartbeat_ms = hpq_now_ms();
	if (check_findings(hb->findings, hb->n_findings, NULL) < 0) {
		heard(st, n);      /* alive, if confused: its findings are kept */
		return;
	}
	set_findings(n, hb->findings, hb->n_findings);
	health = health_of(n->findings, n->nfindings);
	if (strcmp(health, n->health)) {
		/* The daemon's judgement of what the agent found. */
		state_event(st, "node", NULL, n->name, "hpqd", "health %s -> %s%s%s", n->health,
			    health, n->nfindings ? ": " : "",
			    n->nfindings ? n->findings[0].message : "");
		set_str(&n->health, health);
		state_node_save(st, n);
	}
	if (before != state_node_schedulable(n))
		node_to_sched(st, n);
	heard(st, n);
}

void state_node_disconnected(struct state *st, struct node *n)
{
	n->conn = NULL;
	node_to_sched(st, n);
	state_event(st, "node", NULL, n->name, NULL, "agent disconnected");
}

void state_node_set_service(struct state *st, struct node *n, const char *service,
			    const char *by, const char *reason)
{
	char old[16];

	/* by and reason may be n's own strings (drained keeps them). */
	by = xstrdup(by);
	reason = xstrdup(reason);
	snprintf(old, sizeof(old), "%s", n->service);
	set_str(&n->service, service);
	free(n->service_by);
	n->service_by = (char *)by;
	free(n->reason);
	n->reason = (char *)reason;
	n->service_since_ms = hpq_now_ms();
	node_to_sched(st, n);
	state_node_save(st, n);
	if (strcmp(old, service))
		state_event(st, "node", NULL, n->name, by, "service %s -> %s%s%s", old, service,
			    *reason ? ": " : "", reason);
	else
		state_event(st, "node", NULL, n->name, by, "service %s%s%s", service,
			    *reason ? ": " : "", reason);
}

void state_node_save(struct state *st, struct node *n)
{
	struct store_node_row row = {
		.name = n->name,
		.pool = st->pools[n->pool]->name,
		.capacity = n->capacity,
		.labels = n->labels,
		.nlabels = n->nlabels,
		.address = n->address,
		.service = n->service,
		.health = n->health,
		.reason = n->reason,
		.last_seen_ms = n->last_heartbeat_ms,
		.service_by = n->service_by,
		.service_since_ms = n->service_since_ms,
		.admin_hold = n->admin_hold,
		.repair_action = n->repair_action,
	};

	store_node_put(st->store, &row);
}

void state_node_lost(struct state *st, struct node *n)
{
	n->lost = true;
	set_str(&n->health, "unreachable");
	if (!strcmp(n->service, "active"))
		set_str(&n->reason, "no word from its agent");
	node_to_sched(st, n);
	state_node_save(st, n);
	state_event(st, "node", NULL, n->name, "hpqd", "lost: no word from its agent; health "
		    "unreachable");
}
