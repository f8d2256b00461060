/*
 * submit.c: a new task (submit.h). The request is checked as a whole;
 * then the task is made, joins the model (task.c) and is handed to what
 * follows it: its array (array.h), the tasks it waits for (depend.h), its
 * plan (plan.h), or else the dispatcher. This file stands above those
 * modules, which know nothing of it, so that task.c need not know them.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "clock.h"
#include "depend.h"
#include "error.h"
#include "hpq.h"
#include "outpat.h"
#include "parse.h"
#include "plan.h"
#include "rights.h"
#include "state-internal.h"
#include "submit.h"
#include "xalloc.h"

#define MAX_ARG_BYTES (1u << 20)
#define MAX_GRACE_S (7ull * 24 * 3600)

/* Team for a submit that named none: the one team whose members list
 * names the user (or one of their groups), else `default`. */
static struct team *guess_team(struct state *st, const struct actor *who, struct state_err *e)
{
	struct team *found = NULL, *def;
	char list[200] = "";
	size_t len = 0, n = 0;

	for (uint32_t i = 0; i < st->nteams; i++) {
		struct team *t = st->teams[i];

		if (!t || !t->nmembers || !team_admits(t, who))
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

		if (t && team_admits(t, who) && len < sizeof(list))
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

/* [limits] max_task_bytes and max_pending_tasks: what one user may make
 * the daemon and its database hold. */
static int check_user_limits(const struct state *st, const Hpq__TaskSpec *spec,
			     const struct actor *who, struct state_err *e)
{
	uint64_t bytes = 0;
	uint32_t pending = task_pending_of(st, who->user);

	for (size_t i = 0; i < spec->n_argv; i++)
		bytes += strlen(spec->argv[i]) + 1;
	for (size_t i = 0; i < spec->n_env; i++)
		bytes += strlen(spec->env[i]) + 1;
	if (st->max_task_bytes && bytes > st->max_task_bytes)
		return state_errf(e, HPQ_EINVAL, "the command and environment are %llu bytes; the "
				  "limit is %llu per task ([limits] max_task_bytes): export fewer "
				  "variables (--export)", (unsigned long long)bytes,
				  (unsigned long long)st->max_task_bytes);
	if (st->max_pending_tasks && pending >= st->max_pending_tasks)
		return state_errf(e, HPQ_EBUSY, "%s has %u pending tasks; the limit is %u per user "
				  "([limits] max_pending_tasks): wait for some to start", who->user,
				  pending, st->max_pending_tasks);
	return 0;
}

static int check_path(const char *p, const char *what, struct state_err *e)
{
	if (!*p)
		return 0;
	if (p[0] != '/')
		return state_errf(e, HPQ_EINVAL, "%s '%s' is not an absolute path", what, p);
	if (strlen(p) >= STATE_MAX_PATH || has_ctl(p))
		return state_errf(e, HPQ_EINVAL, "%s is not a usable path", what);
	return 0;
}

/* The batch workflow's part of a submit: whole nodes, scripts, limits. */
static int check_batch(struct state *st, const Hpq__TaskSpec *spec, const struct pool *pool,
		       const struct prio_class *cls, uint32_t nnodes, struct hpq_res *per,
		       struct state_err *e)
{
	char a[32], b[32], why[160];

	if (hpq_outpat_check(spec->output, why, sizeof(why)) < 0)
		return state_errf(e, HPQ_EINVAL, "--output: %s", why);
	if (hpq_outpat_check(spec->error, why, sizeof(why)) < 0)
		return state_errf(e, HPQ_EINVAL, "--error: %s", why);
	if (strlen(spec->output) > STATE_MAX_PATH || strlen(spec->error) > STATE_MAX_PATH ||
	    strlen(spec->submit_dir) > STATE_MAX_PATH)
		return state_errf(e, HPQ_EINVAL, "an output path over %d bytes is absurd",
				  STATE_MAX_PATH);
	if (spec->script.len > HPQ_SCRIPT_MAX)
		return state_errf(e, HPQ_EINVAL, "the batch script is %zu bytes, more than the "
				  "%u bytes a script may have", spec->script.len, HPQ_SCRIPT_MAX);
	if (spec->script.len && memchr(spec->script.data, '\0', spec->script.len))
		return state_errf(e, HPQ_EINVAL, "the batch script contains a NUL byte: a script "
				  "is text");
	/* The recipe a task was made from is only shown: keep it printable and small. */
	if (strlen(spec->recipe) > 256 || has_ctl(spec->recipe) ||
	    strlen(spec->recipe_version) > 256 || has_ctl(spec->recipe_version) ||
	    spec->n_recipe_params > 256)
		return state_errf(e, HPQ_EINVAL, "the recipe's name or version is not printable "
				  "text of at most 256 bytes, or it has over 256 parameters");
	for (size_t i = 0; i < spec->n_recipe_params; i++)
		if (strlen(spec->recipe_params[i]) > 4096 || has_ctl(spec->recipe_params[i]))
			return state_errf(e, HPQ_EINVAL, "recipe parameter %zu is not printable "
					  "text of at most 4096 bytes", i + 1);
	if (spec->ntasks_per_node > STATE_MAX_NTASKS_PER_NODE)
		return state_errf(e, HPQ_EINVAL, "--ntasks-per-node %u is more than %d",
				  spec->ntasks_per_node, STATE_MAX_NTASKS_PER_NODE);
	if (cls->max_time_s && spec->time_limit_s > cls->max_time_s)
		return state_errf(e, HPQ_EINVAL, "a time limit of %s is over class %s's maximum "
				  "of %s (hpq class list)",
				  hpq_format_duration(spec->time_limit_s, a, sizeof(a)), cls->name,
				  hpq_format_duration(cls->max_time_s, b, sizeof(b)));
	if (spec->exclusive && !state_pool_whole_nodes(st, pool->id, nnodes, *per, per))
		return state_errf(e, HPQ_EINVAL, "--exclusive: pool %s has no %u node%s to give "
				  "whole", pool->name, nnodes, nnodes > 1 ? "s" : "");
	return state_pool_check(st, pool, nnodes, *per, e);
}

static void take_batch(struct task *t, const Hpq__TaskSpec *spec)
{
	if (spec->script.len) {
		t->script = xmemdup(spec->script.data, spec->script.len);
		t->script_len = spec->script.len;
		t->has_script = true;
	}
	t->output = str_dup(spec->output);
	t->error = str_dup(spec->error);
	t->submit_dir = str_dup(spec->submit_dir);
	t->ntasks_per_node = spec->ntasks_per_node;
	t->dependency = str_dup("");
	t->requeue_by = str_dup("");
	t->recipe = xstrdup(spec->recipe);
	t->recipe_version = xstrdup(spec->recipe_version);
	t->recipe_params = dup_strv(spec->recipe_params, spec->n_recipe_params);
	t->n_recipe_params = spec->n_recipe_params;
}

/* ---- the batch workflow's part of a submit: arrays, holds (array.h) */

static int submit_check_batch(struct state *st, const Hpq__TaskSpec *spec, struct state_err *e)
{
	int r = 0;

	if (*spec->array)
		r = array_submit_check(spec->array, e);
	if (r == 0 && *spec->dependency)
		r = depend_check(st, NULL, spec->dependency, e);
	return r;
}

static void submit_batch_fields(struct state *st, const Hpq__TaskSpec *spec, struct task *t)
{
	if (*spec->array)
		array_submit_first(t, spec->array);
	str_free(t->dependency);
	t->dependency = str_dup(spec->dependency);
	t->kill_on_invalid_dep = spec->kill_on_invalid_dep;
	if (spec->hold) {
		t->held = true;
		str_set(&t->reason, "held");
	}
	(void)st;
}

/* Whether t stays out of the dispatcher at submit (held, or waiting). */
static bool submit_waits(struct state *st, struct task *t)
{
	return t->held || !depend_met(st, t) || plan_task_waits(st, t);
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
	r = check_user_limits(st, spec, who, e);
	if (r < 0)
		return r;
	if (*spec->name && hpq_check_name(spec->name) < 0)
		return state_errf(e, HPQ_EINVAL,
				  "invalid task name '%.64s': use letters, digits, '.', '_', '-'",
				  spec->name);
	if (*spec->plan && (hpq_check_name(spec->plan) < 0 || !plans_find(st, spec->plan)))
		return state_errf(e, HPQ_ENOTFOUND, "unknown plan '%.64s': see hpq plan list",
				  spec->plan);
	if (*spec->team || *spec->plan) {
		const char *tname = *spec->team ? spec->team : plans_find(st, spec->plan)->team;

		if (hpq_check_name(tname) < 0)
			return state_errf(e, HPQ_EINVAL, "invalid team name '%.64s'", spec->team);
		team = state_team_find(st, tname);
		if (!team)
			return state_errf(e, HPQ_ENOTFOUND,
					  "unknown team '%s': see hpq team list", tname);
	} else {
		team = guess_team(st, who, e);
		if (!team)
			return HPQ_EINVAL;
	}
	if (!team_admits(team, who) && !who->admin)
		return state_errf(e, HPQ_EPERM, "%s is not a member of team %s: only its members "
				  "(users and @groups), its admins and cluster administrators may "
				  "submit to it", who->user, team->name);

	cls_name = *spec->class_ ? spec->class_ : *team->default_class ? team->default_class
								      : STATE_NO_CLASS;
	if (*spec->class_ && hpq_check_name(spec->class_) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid class name '%.64s'", spec->class_);
	cls = state_class_find(st, cls_name);
	if (!cls)
		return state_errf(e, HPQ_ENOTFOUND, "unknown class '%s': see hpq class list",
				  cls_name);

	pool_name = *spec->pool ? spec->pool
		    : *spec->plan ? plans_find(st, spec->plan)->pool : HPQ_DEFAULT_POOL;
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
	r = check_batch(st, spec, pool, cls, spec->nodes ? spec->nodes : 1, &per_node, e);
	if (r < 0)
		return r;
	if (spec->time_limit_s > STATE_MAX_TIME_LIMIT_S)
		return state_errf(e, HPQ_EINVAL, "a time limit over a year is absurd");
	if (spec->grace_s > MAX_GRACE_S)
		return state_errf(e, HPQ_EINVAL, "a grace period over a week is absurd");
	if (spec->grace_s > st->policy.max_grace_s) {
		char g[32], m[32];

		return state_errf(e, HPQ_EINVAL, "--grace %s is longer than the policy allows: "
				  "max-grace is %s (hpq policy show)",
				  hpq_format_duration(spec->grace_s, g, sizeof(g)),
				  hpq_format_duration(st->policy.max_grace_s, m, sizeof(m)));
	}
	if (spec->preempt_signal < 0 || spec->preempt_signal > SIGRTMAX)
		return state_errf(e, HPQ_EINVAL, "invalid preempt signal %d", spec->preempt_signal);
	r = check_path(spec->cwd, "working directory", e);
	if (r < 0)
		return r;
	r = check_path(spec->checkpoint_dir, "checkpoint directory", e);
	if (r < 0)
		return r;
	r = submit_check_batch(st, spec, e);
	if (r < 0)
		return r;
	if (*spec->plan) {
		if (*spec->array)
			return state_errf(e, HPQ_EINVAL, "--plan with --array: an array cannot run "
					  "in a plan (submit its tasks one by one)");
		r = plans_check_task(st, spec->plan, team->name, pool->name,
				     spec->nodes ? spec->nodes : 1, e);
		if (r < 0)
			return r;
	}

	t = state_task_new();
	t->st.id = st->next_id;
	t->st.submit_ms = t->submit_ms = t->queue_ms = hpq_now_ms();
	t->st.team = team->id;
	t->st.pool = pool->id;
	t->st.class_id = cls->id;
	t->st.nnodes = spec->nodes ? spec->nodes : 1;
	t->st.per_node = per_node;
	if (*spec->name) {
		state_task_set_name(t, spec->name);
	} else {
		char *name = default_name(spec->argv[0]);

		state_task_set_name(t, name);
		free(name);
	}
	t->user = task_shared_name(st, who->user);
	t->uid = who->uid;
	t->gid = who->gid;
	t->team = task_shared_name(st, team->name);
	t->cls = task_shared_name(st, cls->name);
	t->pool = task_shared_name(st, pool->name);
	t->interned = true;
	t->state = TASK_PENDING;
	t->reason = str_dup("");
	t->done = str_dup("");
	t->time_limit_s = spec->time_limit_s;
	t->grace_s = spec->grace_s;
	t->preempt_signal = spec->preempt_signal ? spec->preempt_signal : SIGTERM;
	t->checkpoint_dir = str_dup(spec->checkpoint_dir);
	t->cwd = xstrdup(*spec->cwd ? spec->cwd : "/");
	t->argv = xstrv_pack(spec->argv, spec->n_argv);
	t->argc = spec->n_argv;
	t->env = dup_strv(spec->env, spec->n_env);
	t->envc = spec->n_env;
	take_batch(t, spec);
	submit_batch_fields(st, spec, t);
	t->plan = str_dup(spec->plan);

	r = submit_waits(st, t) ? 0 : sched_task_submit(st->sched, &t->st);
	if (r == 0 && t->st.state == SCHED_PENDING) {
		str_free(t->dependency);    /* met already: nothing left to wait for */
		t->dependency = str_dup("");
	}
	if (r < 0) {
		state_task_free(t);
		return state_errf(e, r, "the dispatcher cannot take this task: %s",
				  hpq_strerror(r));
	}
	team->active++;
	cls->active++;
	task_enter(st, t);
	if (*spec->array) {
		char *later = depend_once_started(spec->dependency);

		array_submit_create(st, t, spec->array, spec->dependency, later);
		free(later);
	}
	state_event(st, "submit", t, NULL, who->user, "%s in team %s, class %s, pool %s, %u node%s",
		    t->name, t->team, t->cls, t->pool, t->st.nnodes, t->st.nnodes > 1 ? "s" : "");
	if (*t->dependency)
		depend_offer(st, t);    /* waits, indexed by what it waits for */
	mark_dirty(st);
	*ret_task = t;
	return 0;
}
