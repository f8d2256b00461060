/*
 * task.c: tasks (task.h): cancel, checkpoints, and the transitions of
 * docs/design.md §3 and docs/decisions.md: START (the attempt count goes
 * up and the nodes are recorded), PREEMPT, a member's exit (a gang ends
 * when every member exited 0, or at the first failure, cancel, timeout or
 * any exit while preempting), and requeue (node lost, agent lost the
 * task), which turns into CANCELLED when a cancel waits. A new task comes
 * from submit.c. What is built on tasks (arrays, dependencies, plans)
 * hears of each step from the state's observers (state.h): this file
 * calls none of it by name.
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
#include "rights.h"
#include "state-internal.h"
#include "store.h"
#include "xalloc.h"


static const char *const state_names[] = {
	[TASK_PENDING] = "PENDING",     [TASK_RUNNING] = "RUNNING",
	[TASK_PREEMPTING] = "PREEMPTING", [TASK_COMPLETED] = "COMPLETED",
	[TASK_FAILED] = "FAILED",       [TASK_CANCELLED] = "CANCELLED",
	[TASK_TIMEOUT] = "TIMEOUT",     [TASK_OUT_OF_MEMORY] = "OUT_OF_MEMORY",
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

struct task *state_task_new(void)
{
	struct task *t = xcalloc(1, sizeof(*t));

	t->preempt_signal = SIGTERM;
	t->run_link.prev = t->run_link.next = &t->run_link;
	return t;
}

void state_task_set_name(struct task *t, const char *name)
{
	char *old = t->name;
	size_t n = strlen(name);

	if (n < sizeof(t->name_buf)) {
		memmove(t->name_buf, name, n + 1);
		t->name = t->name_buf;
	} else {
		t->name = xstrdup(name);
	}
	if (old != t->name_buf)
		str_free(old);
}

/*
 * Where t's newest attempt runs or ran, in one allocation that t->members
 * starts: each rank's member (on its node's list while the task runs:
 * link_running), its node's name and its exit mark ('0', then '1' once
 * that rank's exit is in). done's marks are kept when there is one per
 * rank, as a stored row has them; else every mark is '0'.
 */
static void task_unplace(struct task *t)
{
	for (uint32_t i = 0; i < t->n_node_names; i++)
		dlist_del(&t->members[i].link);
	free(t->members);
	t->members = NULL;
	t->node_names = NULL;
	t->n_node_names = 0;
	t->done = str_dup("");
}

static void task_place(struct task *t, const char *const *names, uint32_t n, const char *done)
{
	size_t size = n * (sizeof(*t->members) + sizeof(*t->node_names)) + n + 1;
	char *p;

	task_unplace(t);
	if (!n)
		return;
	for (uint32_t i = 0; i < n; i++)
		size += strlen(names[i]) + 1;
	t->members = xmalloc(size);
	t->node_names = (char **)(t->members + n);
	t->done = (char *)(t->node_names + n);
	p = t->done + n + 1;
	for (uint32_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]) + 1;

		t->members[i].t = t;
		t->members[i].rank = i;
		dlist_init(&t->members[i].link);
		t->node_names[i] = memcpy(p, names[i], len);
		p += len;
	}
	if (done && strlen(done) == n) {
		memcpy(t->done, done, n + 1);
	} else {
		memset(t->done, '0', n);
		t->done[n] = '\0';
	}
	t->n_node_names = n;
}

void state_task_free(struct task *t)
{
	if (!t)
		return;
	if (t->name != t->name_buf)
		str_free(t->name);
	if (!t->interned) {
		str_free(t->user);
		str_free(t->team);
		str_free(t->cls);
		str_free(t->pool);
	}
	task_unplace(t);
	str_free(t->reason);
	str_free(t->checkpoint_dir);
	str_free(t->cwd);
	free(t->argv);
	free_strv(t->env, t->envc);
	str_free(t->ckpt.path);
	str_free(t->output);
	str_free(t->error);
	str_free(t->dependency);
	str_free(t->submit_dir);
	free(t->script);
	str_free(t->requeue_by);
	free(t->recipe);
	free(t->recipe_version);
	free_strv(t->recipe_params, t->n_recipe_params);
	str_free(t->plan);
	free(t);
}

/* ---------------------------------------------------------------- shared names */

char *task_shared_name(struct state *st, const char *name)
{
	char *s = strmap_get(&st->names, name);

	if (!s) {
		s = xstrdup(name);
		strmap_put(&st->names, s, s);
	}
	return s;
}

static void intern_one(struct state *st, struct task *t, char **slot)
{
	char *s = task_shared_name(st, *slot ? *slot : "");

	if (!t->interned)
		free(*slot);
	*slot = s;
}

void task_intern(struct state *st, struct task *t)
{
	if (t->interned)
		return;
	intern_one(st, t, &t->user);
	intern_one(st, t, &t->team);
	intern_one(st, t, &t->cls);
	intern_one(st, t, &t->pool);
	t->interned = true;
}

void task_set_name(struct state *st, struct task *t, char **slot, const char *name)
{
	if (t->interned)
		*slot = task_shared_name(st, name);
	else
		set_str(slot, name);
}

void task_names_release(struct state *st)
{
	struct strmap *m = &st->names;

	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i])
			free(m->vals[i]);
	strmap_release(m);
}

/* ---------------------------------------------------------------- per-user tallies */

/* How many PENDING tasks a user has, for [limits] max_pending_tasks. */
struct user_tally {
	char *user;
	uint32_t pending;
};

uint32_t task_pending_of(const struct state *st, const char *user)
{
	const struct user_tally *u = strmap_get(&st->pending_by_user, user);

	return u ? u->pending : 0;
}

static void pending_add(struct state *st, const char *user, int delta)
{
	struct user_tally *u = strmap_get(&st->pending_by_user, user);

	if (!u) {
		u = xcalloc(1, sizeof(*u));
		u->user = xstrdup(user);
		strmap_put(&st->pending_by_user, u->user, u);
	}
	u->pending += (uint32_t)delta;
	if (u->pending == 0) {
		strmap_del(&st->pending_by_user, u->user);
		free(u->user);
		free(u);
	}
}

/* Every change of a task's state goes through here, so the tallies follow. */
static void task_set_state(struct state *st, struct task *t, enum task_state to)
{
	if (t->state == TASK_PENDING && to != TASK_PENDING)
		pending_add(st, t->user, -1);
	else if (t->state != TASK_PENDING && to == TASK_PENDING)
		pending_add(st, t->user, 1);
	t->state = to;
}

void task_tallies_release(struct state *st)
{
	struct strmap *m = &st->pending_by_user;

	for (size_t i = 0; i < m->cap; i++) {
		struct user_tally *u = m->keys[i] ? m->vals[i] : NULL;

		if (u) {
			free(u->user);
			free(u);
		}
	}
	strmap_release(m);
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

struct task *state_task_of(struct sched_task *t)
{
	return container_of(t, struct task, st);
}

const char *state_task_reason(const struct state *st, const struct task *t)
{
	if (t->state == TASK_PENDING && t->st.state == SCHED_PENDING) {
		enum sched_reason r = sched_task_reason(st->sched, &t->st);
		struct pool_fit f;

		/* "capacity" means wait; a task that no registered node of its
		 * pool could ever hold (one left, or came back smaller) would
		 * wait forever. */
		if (r == SCHED_REASON_CAPACITY || r == SCHED_REASON_GANG ||
		    r == SCHED_REASON_UNHEALTHY_POOL) {
			state_pool_fit(st, t->st.pool, t->st.per_node, &f);
			if (f.nodes && f.fitting < t->st.nnodes)
				return "unsatisfiable";
			/* The pool's nodes are the autoscaler's to add: its word. */
			if (st->pools[t->st.pool]->waiting[0])
				return st->pools[t->st.pool]->waiting;
		}
		if (r != SCHED_REASON_NONE)
			return sched_reason_name(r);
	}
	return t->reason ? t->reason : "";
}

/* t, which has ended, in st's bound for state_tasks_evict. */
static void ended_first_note(struct state *st, const struct task *t)
{
	if (t->end_ms < st->ended_first_ms)
		st->ended_first_ms = t->end_ms;
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
	if (task_state_final(t->state))
		ended_first_note(st, t);
}

struct task *state_task_from_row(const struct store_task_row *row,
				 const struct store_checkpoint *newest)
{
	int state = state_task_state_parse(row->state);
	struct task *t;

	if (state < 0) {
		log_warn("task %llu has unknown state '%s': treating it as FAILED",
			 (unsigned long long)row->id, row->state);
		state = TASK_FAILED;
	}
	t = state_task_new();
	t->st.id = row->id;
	t->state = (enum task_state)state;
	state_task_set_name(t, row->name);
	t->team = xstrdup(row->team);
	t->user = xstrdup(row->user);
	t->uid = row->uid;
	t->gid = row->gid;
	t->cls = xstrdup(row->cls);
	t->pool = xstrdup(row->pool);
	t->reason = str_dup(row->reason);
	t->st.nnodes = row->nnodes;
	t->st.per_node = row->per_node;
	task_place(t, (const char *const *)row->node_names, (uint32_t)row->n_node_names,
		   row->nodes_done);
	t->attempts = row->attempts;
	t->submit_ms = row->submit_ms;
	t->start_ms = row->start_ms;
	t->end_ms = row->end_ms;
	t->has_exit_code = row->has_exit_code;
	t->exit_code = row->exit_code;
	t->time_limit_s = row->time_limit_s;
	t->preempt_signal = row->preempt_signal;
	t->grace_s = row->grace_s;
	t->checkpoint_dir = str_dup(row->checkpoint_dir);
	t->cwd = str_dup(row->cwd);
	t->argv = xstrv_pack(row->argv, row->argc);
	t->argc = row->argc;
	t->cancel_requested = row->cancel_requested;
	t->array_id = row->array_id;
	t->array_index = row->array_index;
	t->output = str_dup(row->output);
	t->error = str_dup(row->error);
	t->dependency = str_dup(row->dependency);
	t->kill_on_invalid_dep = row->kill_on_invalid_dep;
	t->held = row->held;
	t->submit_dir = str_dup(row->submit_dir);
	t->ntasks_per_node = row->ntasks_per_node;
	t->peak_mem = row->peak_mem;
	t->cpu_usec = row->cpu_usec;
	t->preemptions = row->preemptions;
	t->requeue_by = str_dup(row->requeue_by);
	t->recipe = xstrdup(row->recipe ? row->recipe : "");
	t->recipe_version = xstrdup(row->recipe_version ? row->recipe_version : "");
	t->recipe_params = dup_strv(row->recipe_params, row->n_recipe_params);
	t->n_recipe_params = row->n_recipe_params;
	t->plan = str_dup(row->plan ? row->plan : "");
	t->has_script = row->script != NULL;
	/* Its environment and script stay in the store: RunTask reads them
	 * there (agentlink.c). An ended task needs no place to resume. */
	if (newest && !task_state_final(t->state)) {
		t->ckpt.has = true;
		t->ckpt.attempt = newest->attempt;
		t->ckpt.step = newest->step;
		t->ckpt.path = xstrdup(newest->path);
		t->ckpt.time_ms = newest->time_ms;
	}
	return t;
}

void load_task(void *arg, const struct store_task_row *row,
	       const struct store_checkpoint *newest)
{
	struct state *st = arg;
	struct task *t;

	if (st->ntasks && st->tasks[st->ntasks - 1]->st.id >= row->id) {
		log_warn("task %llu out of order in the state database ignored",
			 (unsigned long long)row->id);
		return;
	}
	t = state_task_from_row(row, newest);
	task_intern(st, t);
	tasks_append(st, t);
	if (t->state == TASK_PENDING)
		pending_add(st, t->user, 1);
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
		.array_id = t->array_id,
		.array_index = t->array_index,
		.output = t->output,
		.error = t->error,
		.dependency = t->dependency,
		.kill_on_invalid_dep = t->kill_on_invalid_dep,
		.held = t->held,
		.submit_dir = t->submit_dir,
		.ntasks_per_node = t->ntasks_per_node,
		.peak_mem = t->peak_mem,
		.cpu_usec = t->cpu_usec,
		.preemptions = t->preemptions,
		.requeue_by = t->requeue_by,
		.recipe = t->recipe,
		.recipe_version = t->recipe_version,
		.recipe_params = t->recipe_params,
		.n_recipe_params = t->n_recipe_params,
		.plan = t->plan,
	};
}

/* The environment and script are in the store's open batch (and the
 * array's template has its copy): the task runs from the store's. */
static void drop_run_fields(struct task *t)
{
	free_strv(t->env, t->envc);
	t->env = NULL;
	t->envc = 0;
	free(t->script);
	t->script = NULL;
	t->script_len = 0;
}

void task_enter(struct state *st, struct task *t)
{
	struct store_task_row row;

	tasks_append(st, t);
	pending_add(st, t->user, 1);
	task_row(t, &row);
	row.script = t->script;
	row.script_len = t->script_len;
	store_task_insert(st->store, &row);
	drop_run_fields(t);
}

void task_save(struct state *st, struct task *t)
{
	struct store_task_row row;

	task_row(t, &row);
	store_task_update(st->store, &row);
}

static void unlink_running(struct task *t)
{
	if (t->run_link.next != &t->run_link)
		dlist_del(&t->run_link);
	for (uint32_t i = 0; i < t->n_node_names; i++)
		dlist_del(&t->members[i].link);
}

/*
 * Into the state's running list, and each rank's member into its node's
 * members (node.h), found by the name the attempt recorded, as every walk
 * of the running tasks compared names before. A node not known (none
 * is, while the dispatcher holds the task) gets no member; a node named
 * twice only its first rank, as a walk by name found the first.
 */
static void link_running(struct state *st, struct task *t)
{
	uint32_t n = t->n_node_names;

	unlink_running(t);
	dlist_add_tail(&st->running, &t->run_link);
	for (uint32_t i = 0; i < n; i++) {
		struct task_member *m = &t->members[i];
		struct node *nd = state_node_find(st, t->node_names[i]);

		/* This task's members go in rank order at the tails: an
		 * earlier rank on nd is at its tail now. */
		if (!nd || (!dlist_empty(&nd->members) &&
			    container_of(nd->members.prev, struct task_member, link)->t == t))
			continue;
		dlist_add_tail(&nd->members, &m->link);
	}
}

/* Tells the observers that follow tasks (state.h) of one step of a task's life. */
#define TELL(st, what, ...)                                                        \
	do {                                                                       \
		for (size_t i_ = 0; i_ < (st)->nobservers; i_++)                   \
			if ((st)->observers[i_].what)                              \
				(st)->observers[i_].what((st)->observers[i_].arg,  \
							 __VA_ARGS__);             \
	} while (0)

void task_entered(struct state *st, struct task *t)
{
	TELL(st, task_entered, t);
}

bool task_successor_held(struct state *st, struct task *t)
{
	for (size_t i = 0; i < st->nobservers; i++)
		if (st->observers[i].successor_held &&
		    st->observers[i].successor_held(st->observers[i].arg, t))
			return true;
	return false;
}

void task_leaving(struct state *st, struct task *t)
{
	TELL(st, task_leaving, t);
}

/* What t's end event says: its state, its exit code if it has one, and
 * the reason it ended. */
static const char *end_message(const struct task *t, char *buf, size_t size)
{
	snprintf(buf, size, "%s", state_task_state(t->state));
	if (t->has_exit_code)
		snprintf(buf + strlen(buf), size - strlen(buf), ", exit code %d", t->exit_code);
	if (*t->reason)
		snprintf(buf + strlen(buf), size - strlen(buf), ": %s", t->reason);
	return buf;
}

/* A pending task's end in a batch: its row and end event go into the
 * store's bulk change, and the observers hear the event now. The batch
 * ends its tasks with one state and one reason: one message serves all
 * but those with an exit code. */
static void end_in_batch(struct state *st, struct task *t, struct cancel_batch *b)
{
	char own[512];
	const char *msg;

	if (t->has_exit_code)
		msg = end_message(t, own, sizeof(own));
	else
		msg = b->end_msg[0] ? b->end_msg : end_message(t, b->end_msg, sizeof(b->end_msg));
	state_task_bulk(st, t, &(struct store_bulk){
		.change = STORE_BULK_END,
		.state = state_task_state(t->state),
		.reason = t->reason,
		.end_ms = t->end_ms,
		.time_ms = b->now_ms,
		.kind = "end",
		.actor = "hpqd",
		.message = msg,
	});
}

/* Moves a task to a final state. With narrow (a pending task that a cancel
 * ends), its row has only its state, reason and end time to change: every
 * other change of a pending task is written when it is made; in a batch
 * (b on) they go to the store with the batch's others. */
static void task_end_as(struct state *st, struct task *t, enum task_state to, const char *reason,
			bool narrow, struct cancel_batch *b)
{
	struct team *team = state_team_find(st, t->team);
	struct prio_class *cls = state_class_find(st, t->cls);
	bool batch = narrow && b && b->on;
	char msg[512];

	task_leaving(st, t);
	if (t->st.state != SCHED_NONE)
		sched_task_finish(st->sched, &t->st, hpq_now_ms());
	unlink_running(t);
	task_set_state(st, t, to);
	t->end_ms = batch ? b->now_ms : hpq_now_ms();
	ended_first_note(st, t);
	t->run_unsent = false;
	if (reason)
		str_set(&t->reason, reason);
	if (team && team->active)
		team->active--;
	if (cls && cls->active)
		cls->active--;
	/* Only a run needs the environment, and it can be large: the store keeps it. */
	free_strv(t->env, t->envc);
	t->env = NULL;
	t->envc = 0;
	/* The script stays in the store, for hpq show --script. */
	free(t->script);
	t->script = NULL;
	t->script_len = 0;
	if (batch) {
		end_in_batch(st, t, b);
	} else {
		if (narrow)
			store_task_end(st->store, t->st.id, state_task_state(to), t->reason,
				       t->end_ms);
		else
			task_save(st, t);
		state_event(st, "end", t, NULL, NULL, "%s", end_message(t, msg, sizeof(msg)));
	}
	mark_dirty(st);
	TELL(st, task_ended, t);
}

static void task_end(struct state *st, struct task *t, enum task_state to, const char *reason)
{
	task_end_as(st, t, to, reason, false, NULL);
}

/* Hands a loaded, unfinished task to the dispatcher. */
void restore_one(struct state *st, struct task *t)
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
			link_running(st, t);
			if (t->ckpt.has)
				sched_task_checkpoint(st->sched, &t->st, t->ckpt.time_ms);
			return;
		}
		/* Its nodes are gone from the store: it cannot be running anywhere we know. */
		task_set_state(st, t, TASK_PENDING);
		str_set(&t->reason, "its nodes are no longer known");
		task_save(st, t);
		state_event(st, "requeue", t, NULL, NULL, "%s", t->reason);
	}
	/* Held, waiting for dependencies (depend_load_done looks at it), or
	 * for its array's % limit (array_load_done). */
	if (t->held || (t->dependency && *t->dependency) ||
	    (t->array_id && !strcmp(t->reason, "array-limit")))
		return;
	/* A plan's task: plans load after tasks; plans_load_done places it. */
	if (t->plan && *t->plan)
		return;
	r = sched_task_submit(st->sched, &t->st);
	if (r < 0) {
		team->active--;
		cls->active--;
		task_end(st, t, TASK_FAILED, "the dispatcher refused it after a restart");
	}
}

/* ---------------------------------------------------------------- grace */

static uint64_t grace_at_least_1(uint64_t s)
{
	return s ? s : 1;
}

/* The policy's grace, as an administrator's stop gives it. */
static uint64_t policy_grace(const struct state *st)
{
	uint64_t g = st->policy.grace_s;

	return grace_at_least_1(g < st->policy.max_grace_s ? g : st->policy.max_grace_s);
}

uint64_t state_task_grace(const struct state *st, const struct task *t)
{
	uint64_t g = t->grace_s ? t->grace_s : st->policy.grace_s;

	return grace_at_least_1(g < st->policy.max_grace_s ? g : st->policy.max_grace_s);
}

uint64_t state_task_stop_grace(const struct state *st, const struct task *t)
{
	uint64_t own = state_task_grace(st, t), pol = policy_grace(st);

	if (t->has_stop_grace)
		return t->stop_grace_s;
	/* Decided before a restart: who asked is not known, so the shorter. */
	return own < pol ? own : pol;
}

static void set_stop_grace(struct task *t, uint64_t s)
{
	t->stop_grace_s = s;
	t->has_stop_grace = true;
}

/* ---------------------------------------------------------------- cancel, checkpoint */

int state_task_cancel(struct state *st, struct task *t, const struct actor *who,
		      struct state_err *e)
{
	return state_task_cancel_in(st, t, who, NULL, e);
}

int state_task_cancel_in(struct state *st, struct task *t, const struct actor *who,
			 struct cancel_batch *b, struct state_err *e)
{
	char own[128], *why = b ? b->why : own, gbuf[32];
	uint64_t grace;

	if (!rights_task_manage(st, t, who))
		return rights_task_refuse(t, "cancel it", e);
	if (task_state_final(t->state))
		return state_errf(e, HPQ_ESTATE, "task %llu has already ended (%s)",
				  (unsigned long long)t->st.id, state_task_state(t->state));
	_Static_assert(sizeof(own) == sizeof(b->why), "one size for both");
	if (!b || !b->why[0])
		snprintf(why, sizeof(own), "cancelled by %s", who->user);
	if (t->state == TASK_PENDING) {
		/* In a batch, its end event ("cancelled by U") is the record;
		 * the batch's tasks end at one time, its first's. */
		if (b && b->on && !b->now_ms)
			b->now_ms = hpq_now_ms();
		if (b && b->on)
			b->pending++;
		else
			state_event(st, "cancel", t, NULL, who->user, "cancelled while pending");
		task_end_as(st, t, TASK_CANCELLED, why, true, b);
		return 0;
	}
	/* The owner's cancel gives the task its own grace; an administrator's
	 * cancel of another user's task gives the policy's. A later stop can
	 * only hurry one under way, as on the agent. */
	grace = strcmp(who->user, t->user) ? policy_grace(st) : state_task_grace(st, t);
	if (!t->has_stop_grace || grace < t->stop_grace_s)
		set_stop_grace(t, grace);
	if (t->cancel_requested)
		return 1;
	t->cancel_requested = true;
	str_set(&t->reason, why);
	task_save(st, t);
	state_event(st, "cancel", t, NULL, who->user, "cancel of attempt %u requested, grace %s",
		    t->attempts, hpq_format_duration(t->stop_grace_s, gbuf, sizeof(gbuf)));
	return 1;
}

void state_cancel_batch_end(struct state *st, struct cancel_batch *b, const struct actor *who)
{
	if (b->on && b->pending)
		state_event(st, "cancel", NULL, NULL, who->user,
			    "%zu pending tasks cancelled by %s", b->pending, who->user);
	b->pending = 0;
}

int state_task_requeue_request(struct state *st, struct task *t, const struct actor *who,
			       struct state_err *e)
{
	char why[128], gbuf[32];
	uint64_t grace;

	if (!rights_task_manage(st, t, who))
		return rights_task_refuse(t, "requeue it", e);
	if (t->state == TASK_PENDING)
		return state_errf(e, HPQ_ESTATE, "task %llu is pending, not running",
				  (unsigned long long)t->st.id);
	if (task_state_final(t->state))
		return state_errf(e, HPQ_ESTATE, "task %llu has already ended (%s)",
				  (unsigned long long)t->st.id, state_task_state(t->state));
	if (t->cancel_requested)
		return state_errf(e, HPQ_ESTATE, "task %llu is being cancelled",
				  (unsigned long long)t->st.id);
	/* Preempting or already asked: it is on its way back to the queue. */
	if (t->state == TASK_PREEMPTING || (t->requeue_by && *t->requeue_by))
		return 0;
	grace = strcmp(who->user, t->user) ? policy_grace(st) : state_task_grace(st, t);
	if (!t->has_stop_grace || grace < t->stop_grace_s)
		set_stop_grace(t, grace);
	snprintf(why, sizeof(why), "requeued by %s", who->user);
	str_set(&t->requeue_by, who->user);
	str_set(&t->reason, why);
	task_save(st, t);
	state_event(st, "requeue", t, NULL, who->user, "requeue of attempt %u requested, grace %s%s",
		    t->attempts, hpq_format_duration(t->stop_grace_s, gbuf, sizeof(gbuf)),
		    t->ckpt.has ? "; it resumes from its newest checkpoint" : "");
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
	if (!*path || strlen(path) >= STATE_MAX_PATH || has_ctl(path))
		return state_errf(e, HPQ_EINVAL, "a checkpoint needs a usable path");

	t->ckpt.has = true;
	t->ckpt.attempt = attempt;
	t->ckpt.step = step;
	str_set(&t->ckpt.path, path);
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
	const char *one[8];
	const char **names = t->st.nnodes <= 8 ? one : xcalloc(t->st.nnodes, sizeof(*names));

	list[0] = '\0';
	for (uint32_t i = 0; i < t->st.nnodes; i++) {
		names[i] = st->nodes[t->st.nodes[i]]->name;
		if (len < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
						i ? "," : "", names[i]);
	}
	task_place(t, names, t->st.nnodes, NULL);
	if (names != one)
		free(names);
	t->attempts++;
	t->has_stop_grace = false;
	task_set_state(st, t, TASK_RUNNING);
	t->start_ms = hpq_now_ms();
	t->end_ms = 0;
	t->has_exit_code = false;
	t->exit_code = 0;
	str_set(&t->reason, "");
	t->run_unsent = true;
	link_running(st, t);
	task_save(st, t);
	state_event(st, "start", t, NULL, NULL, "attempt %u on %s%s", t->attempts, list,
		    t->ckpt.has ? " (resuming)" : "");
	TELL(st, task_started, t);
}

void state_task_preempt(struct state *st, struct task *t, const struct task *beneficiary,
			enum sched_preempt_cause cause)
{
	const char *how = cause == SCHED_CAUSE_RECLAIM    ? "reclaim"
			  : cause == SCHED_CAUSE_PRIORITY ? "priority"
							  : "dispatcher";
	char why[96], gbuf[32];
	/* Priority preemption stays inside the task's team, which chose its
	 * grace; a reclaim is the cluster taking back what it lent, on the
	 * policy's terms (docs/decisions.md, "Grace"). */
	uint64_t grace = cause == SCHED_CAUSE_PRIORITY ? state_task_grace(st, t)
						       : policy_grace(st);

	if (beneficiary)
		snprintf(why, sizeof(why), "preempted by task %llu (%s)",
			 (unsigned long long)beneficiary->st.id, how);
	else
		snprintf(why, sizeof(why), "preempted (%s)", how);
	if (!t->has_stop_grace || grace < t->stop_grace_s)
		set_stop_grace(t, grace);
	/* One stop is one preemption, even when the dispatcher picks a task
	 * that the autoscaler or `hpq requeue` is already stopping. */
	if (t->state != TASK_PREEMPTING && !(t->requeue_by && *t->requeue_by))
		t->preemptions++;
	task_set_state(st, t, TASK_PREEMPTING);
	if (!t->cancel_requested)
		str_set(&t->reason, why);
	task_save(st, t);
	state_event(st, "preempt", t, NULL, NULL, "attempt %u %s, grace %s", t->attempts, why,
		    hpq_format_duration(t->stop_grace_s, gbuf, sizeof(gbuf)));
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
	str_set(&t->requeue_by, "");
	t->queue_ms = hpq_now_ms();
	task_leaving(st, t);
	sched_task_requeue(st->sched, &t->st, t->queue_ms);
	if (!st->policy.sched.requeue_by_eviction)
		t->queue_ms = t->submit_ms;
	unlink_running(t);
	task_set_state(st, t, TASK_PENDING);
	t->run_unsent = false;
	str_set(&t->reason, why);
	task_save(st, t);
	state_event(st, "requeue", t, NULL, NULL, "attempt %u: %s%s", t->attempts, why,
		    t->ckpt.has ? "; resumes from its newest checkpoint" : "");
	TELL(st, task_requeued, t);
	mark_dirty(st);
}

/*
 * Ends that are the node's failure, not the task's: its work directory
 * could not record the start, or it was cut off from hpqd and its
 * supervisors fenced the task (agent/supervisor.c). The task goes back to
 * the queue, as a preempted one does, from its newest checkpoint.
 */
static bool node_fault(const char *reason)
{
	return !strcmp(reason, "fenced") || !strcmp(reason, "work-dir-unwritable");
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
	if (t->state == TASK_PREEMPTING || (t->requeue_by && *t->requeue_by)) {
		char prev[96];

		snprintf(prev, sizeof(prev), "%s", t->reason ? t->reason : "preempted");
		t->has_exit_code = false;
		state_task_requeue(st, t, prev);
		return EXIT_REQUEUED;
	}
	if (node_fault(reason)) {
		snprintf(why, sizeof(why), "%s on %s", reason, t->node_names[rank]);
		t->has_exit_code = false;
		state_task_requeue(st, t, why);
		return EXIT_REQUEUED;
	}
	if (!strcmp(reason, "timeout")) {
		snprintf(why, sizeof(why), "time limit reached on %s", t->node_names[rank]);
		task_end(st, t, TASK_TIMEOUT, why);
		return EXIT_ENDED;
	}
	/* The kernel's OOM killer acted in its cgroup (req-agent.c says "oom"). */
	if (!strcmp(reason, "oom")) {
		if (t->st.per_node.mem > 0)
			snprintf(why, sizeof(why), "out of memory on %s (memory.max %lld MiB)",
				 t->node_names[rank], (long long)t->st.per_node.mem);
		else
			snprintf(why, sizeof(why), "out of memory on %s (no memory limit: the "
				 "node ran out)", t->node_names[rank]);
		task_end(st, t, TASK_OUT_OF_MEMORY, why);
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
	task_save(st, t);
	state_event(st, "exit", t, t->node_names[rank], NULL,
		    "rank %u exited 0; waiting for the others", rank);
	return EXIT_WAIT;
}

/* ---------------------------------------------------------------- for array.c, depend.c, select.c */

void task_adopt(struct state *st, struct task *t)
{
	struct team *team = state_team_find(st, t->team);
	struct prio_class *cls = state_class_find(st, t->cls);
	struct store_task_row row;

	task_intern(st, t);
	tasks_append(st, t);
	pending_add(st, t->user, 1);
	if (team)
		team->active++;
	if (cls)
		cls->active++;
	task_row(t, &row);
	/* An array's script is stored once, under the array's id. */
	if (t->st.id == t->array_id || !t->array_id) {
		row.script = t->script;
		row.script_len = t->script_len;
	}
	store_task_insert(st->store, &row);
	drop_run_fields(t);
}

void task_finish(struct state *st, struct task *t, enum task_state to, const char *reason)
{
	task_end(st, t, to, reason);
}

/* ---------------------------------------------------------------- leaving memory */

static struct task_gone_count *gone_count_of(struct state *st, const char *team)
{
	struct task_gone_count *c = strmap_get(&st->gone_counts, team);

	if (!c) {
		c = xcalloc(1, sizeof(*c));
		c->team = xstrdup(team);
		strmap_put(&st->gone_counts, c->team, c);
	}
	return c;
}

void task_gone_bad(struct state *st, uint64_t id)
{
	if (st->ngone_bad == st->gone_bad_cap) {
		st->gone_bad_cap = st->gone_bad_cap ? 2 * st->gone_bad_cap : 256;
		st->gone_bad = xreallocarray(st->gone_bad, st->gone_bad_cap, sizeof(*st->gone_bad));
	}
	if (st->ngone_bad && st->gone_bad[st->ngone_bad - 1] > id)
		st->gone_bad_unsorted = true;
	st->gone_bad[st->ngone_bad++] = id;
}

static void gone_note(struct state *st, uint64_t id, const char *team, enum task_state s,
		      uint32_t attempts)
{
	struct task_gone_count *c = gone_count_of(st, team);

	c->submitted++;
	c->started += attempts;
	if (task_state_final(s))
		c->finished[s - TASK_COMPLETED]++;
	if (s != TASK_COMPLETED)
		task_gone_bad(st, id);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void gone_sort(struct state *st)
{
	if (st->gone_bad_unsorted)
		qsort(st->gone_bad, st->ngone_bad, sizeof(*st->gone_bad), cmp_u64);
	st->gone_bad_unsorted = false;
}

static enum task_state final_of(const char *name)
{
	int s = state_task_state_parse(name ? name : "");

	return s < 0 || !task_state_final((enum task_state)s) ? TASK_FAILED : (enum task_state)s;
}

void load_gone(void *arg, const struct store_gone_row *g)
{
	struct state *st = arg;
	struct task_gone_count *c;
	enum task_state s;

	switch (g->kind) {
	case STORE_GONE_BAD:
		task_gone_bad(st, g->id);
		break;
	case STORE_GONE_ARRAY:       /* the array's: state.c hands it to array.c */
	case STORE_GONE_ARRAY_LEFT:
		break;
	case STORE_GONE_TEAM:
		s = final_of(g->state);
		c = gone_count_of(st, g->team);
		c->submitted += g->count;
		c->started += g->attempts;
		c->finished[s - TASK_COMPLETED] += g->count;
		break;
	case STORE_GONE_MAX:
		if (g->id >= st->next_id)
			st->next_id = g->id + 1;
		break;
	}
	gone_sort(st);
}

bool state_task_gone(const struct state *st, uint64_t id, bool *completed)
{
	size_t lo = 0, hi = st->ngone_bad;

	if (id == 0 || id >= st->next_id || state_task_find(st, id))
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->gone_bad[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*completed = !(lo < st->ngone_bad && st->gone_bad[lo] == id);
	return true;
}

size_t state_tasks_evict(struct state *st, int64_t ended_before_ms, size_t max)
{
	size_t k = 0, n = 0;
	int64_t first = INT64_MAX;

	/* The sweep comes every second: the tasks are walked only when one
	 * may be old enough (a walk of 100,000 pending tasks took 2 ms). */
	if (ended_before_ms > st->ended_first_ms) {
		for (size_t i = 0; i < st->ntasks; i++) {
			struct task *t = st->tasks[i];

			if (task_state_final(t->state) && n < max && t->end_ms < ended_before_ms) {
				gone_note(st, t->st.id, t->team, t->state, t->attempts);
				TELL(st, task_gone, t);
				state_task_free(t);
				n++;
				continue;
			}
			if (task_state_final(t->state) && t->end_ms < first)
				first = t->end_ms;
			st->tasks[k++] = t;
		}
		st->ntasks = k;
		st->ended_first_ms = first;
	}
	/* What followed them goes once they have (an array, once all its
	 * tasks have), with the room they left in this call. */
	for (size_t i = 0, room = max - n; i < st->nobservers && room; i++)
		if (st->observers[i].tasks_evicted)
			room -= st->observers[i].tasks_evicted(st->observers[i].arg, ended_before_ms,
							       room);
	gone_sort(st);
	/* Give memory back once the vector is mostly empty. */
	if (n && st->tasks_cap > 1024 && st->ntasks < st->tasks_cap / 4) {
		st->tasks_cap = st->ntasks > 512 ? 2 * st->ntasks : 1024;
		st->tasks = xreallocarray(st->tasks, st->tasks_cap, sizeof(*st->tasks));
	}
	return n;
}

void task_gone_release(struct state *st)
{
	struct strmap *m = &st->gone_counts;

	for (size_t i = 0; i < m->cap; i++) {
		struct task_gone_count *c = m->keys[i] ? m->vals[i] : NULL;

		if (c) {
			free(c->team);
			free(c);
		}
	}
	strmap_release(m);
	free(st->gone_bad);
	st->gone_bad = NULL;
	st->ngone_bad = st->gone_bad_cap = 0;
}
