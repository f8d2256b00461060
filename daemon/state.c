/*
 * state.c: the model as a whole (state.h): made empty, loaded from the
 * store at start, released at the end.
 *
 * Loading walks the store's rows through a store_loader whose callbacks
 * live with their nouns (task.c, team.c, node.c), in the store's order:
 * the policy, pools, classes, teams, quotas, nodes, tasks, then done,
 * which hands the tasks to the dispatcher.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "clock.h"
#include "depend.h"
#include "log.h"
#include "parse.h"
#include "plan.h"
#include "rights.h"
#include "state-internal.h"
#include "store.h"
#include "xalloc.h"

#define DEFAULT_GRACE_S 60
#define DEFAULT_MAX_GRACE_S 3600

/* ---------------------------------------------------------------- init, release */

void state_init(struct state *st, struct store *store)
{
	memset(st, 0, sizeof(*st));
	st->store = store;
	st->next_id = 1;
	st->ended_first_ms = INT64_MAX;
	st->keep_finished_ms = -1;
	dlist_init(&st->running);
	st->policy.sched.idle = SCHED_IDLE_FAIR_SHARE;
	st->policy.sched.half_life_ms = 3600 * 1000;
	st->policy.sched.min_runtime_ms = 0;
	st->policy.sched.requeue_by_eviction = false;
	st->policy.grace_s = DEFAULT_GRACE_S;
	st->policy.max_grace_s = DEFAULT_MAX_GRACE_S;
	st->sched = sched_new(&st->policy.sched);
	sched_set_successor(st->sched, array_successor, st);
	/* What follows tasks, in the order it hears of them (state.h). */
	array_follow_tasks(st);
	depend_follow_tasks(st);
	plans_init(st);
}

void state_release(struct state *st)
{
	free(st->observers);
	st->observers = NULL;
	st->nobservers = 0;
	plans_release(st);
	rights_release(st);
	trust_release(st);
	task_tallies_release(st);
	task_gone_release(st);
	/* The dispatcher first: it still links the tasks. */
	if (st->sched)
		sched_free(st->sched);
	for (size_t i = 0; i < st->ntasks; i++)
		state_task_free(st->tasks[i]);
	free(st->tasks);
	array_release_all(st);
	depend_release(st);
	task_names_release(st);
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
		free(st->pools[i]->fit_memo);
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
	} else if (!strcmp(key, "max-grace")) {
		int64_t ms = parse_ms(value, &ok);

		if (ok)
			p->max_grace_s = (uint64_t)ms / 1000;
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
	array_load_done(st);
	depend_load_done(st);
	plans_load_done(st);
	mark_dirty(st);
	log_info("loaded %zu tasks, %u teams, %u classes, %u pools, %u nodes", st->ntasks,
		 st->nteams, st->nclasses, st->npools, st->nnodes);
}

/* An array row: what its later indices wait for is depend.c's to say. */
static void load_array(void *arg, const struct store_array_row *row)
{
	char *later = depend_once_started(row->dependency);

	array_load(arg, row, later);
	free(later);
}

/* A task row, and the template of its array if it is an array's first index. */
static void load_task_row(void *arg, const struct store_task_row *row,
			  const struct store_checkpoint *newest)
{
	load_task(arg, row, newest);
	if (row->array_id)
		array_load_task(arg, row);
}

/* What left memory: an array's index is its array's to count, the rest
 * the tasks'. */
static void load_gone_row(void *arg, const struct store_gone_row *g)
{
	if (g->kind == STORE_GONE_ARRAY)
		array_load_gone(arg, g->array_id, g->index,
				state_task_state_parse(g->state ? g->state : "") == TASK_COMPLETED);
	else if (g->kind == STORE_GONE_ARRAY_LEFT)
		array_load_left(arg, g->array_id, g->spec, g->dropped);
	else
		load_gone(arg, g);
}

int state_load(struct state *st, char *err, size_t errlen)
{
	static const struct store_loader loader = {
		.on_policy = state_policy_restore,
		.on_pool = load_pool,
		.on_cls = load_class,
		.on_team = load_team,
		.on_quota = load_quota,
		.on_node = load_node,
		.on_array = load_array,
		.on_task = load_task_row,
		.on_token = load_token,
		.on_cert = load_cert,
		.on_plan = plans_load_row,
		.on_done = load_done,
		.on_gone = load_gone_row,
	};
	struct store_loader cb = loader;

	/* Tasks that ended before keep_finished are left in the store. */
	if (st->keep_finished_ms >= 0)
		cb.ended_since_ms = hpq_now_ms() - st->keep_finished_ms;
	return store_load(st->store, &cb, st, err, errlen);
}
