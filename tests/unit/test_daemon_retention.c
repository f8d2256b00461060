/*
 * test_daemon_retention.c: ended tasks leaving memory and the database
 * (daemon/task.c state_tasks_evict, daemon/store-tasks.c), and pending
 * tasks that keep their environment and script in the store only, on a
 * real state and store in a temp dir:
 *
 *   - a pending task holds no environment or script in memory; the store
 *     hands them out for RunTask, an array index's script under its
 *     array's id, and an array's index made a task before a restart
 *     still runs its array's script after it; a start whose environment
 *     cannot be read goes back to the queue held, not round again, an
 *     array's index with its array's pending rest;
 *   - the sweep walks the tasks only when one may be old enough: the
 *     state's bound is the earliest end in memory, kept through ends,
 *     evictions of at most max and a restart that loads ended tasks;
 *   - after eviction an ended task is gone from memory; hpq show's read
 *     finds its row and history in the store; a dependency on it still
 *     resolves by how it ended (afterok, afternotok, afterany); ids do not
 *     come back; the per-team counts it leaves behind are kept;
 *   - an array's ended indices leave while others have not ended; its
 *     later indices still materialize from the template; once all ended
 *     the array goes too, and an index is found in the store (hpq show
 *     ID_INDEX);
 *   - a restart with keep_finished leaves old ended tasks in the store,
 *     still knows how they ended, loads an array's template whose first
 *     index ended long ago and counts its ended indices;
 *   - [tasks] retain deletes in batches, with checkpoints and scripts, and
 *     never the newest task; the per-team counts of the tasks it deleted
 *     outlive their rows, across restarts and batches;
 *   - an array's indices answer dependencies as they ended whatever
 *     retain deleted of them, in one batch or several, before or after a
 *     restart, while the array still runs too, and for an array whose row
 *     is from before schema 16 (its dropped indices counted at start);
 *   - hpq show ID_INDEX of an index a cancel dropped shows it CANCELLED;
 *   - a restart builds no array for those that ended and left memory;
 *     retain deletes the row of an array that all completed with its
 *     last task;
 *   - the sweep (retention_tick) takes an ended array that stayed after
 *     its last task left;
 *   - hpq acct's record of an array's indices a cancel dropped: its
 *     filters, its end, a restart, [events] retain, and [tasks] retain
 *     keeping the array's first task while the drop is young;
 *   - hpq acct streamed: pages of every size give the whole read's
 *     records once each, in order; the newest N; filters on pages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "agentlink.h"
#include "array.h"
#include "clock.h"
#include "context.h"
#include "control.h"
#include "daemon_fixture.h"
#include "error.h"
#include "hpq.h"
#include "hpq.pb-c.h"
#include "log.h"
#include "retention.h"
#include "select.h"
#include "state.h"
#include "store.h"
#include "submit.h"

static const struct actor alice = { .user = "alice", .uid = 1000, .gid = 1000, .known = true };

static int setup(void **ts)
{
	return fix_setup(ts, "retention", STORE_NOSYNC);
}

static struct task *submit(struct fix *f, const char *array, const char *dep, const char *script)
{
	char *argv[] = { "/bin/job" };
	char *env[] = { "HOME=/home/alice", "PATH=/usr/bin:/bin", "LANG=C.UTF-8" };
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	struct state_err e = { { 0 } };
	struct task *t = NULL;

	res.cpus = 1;
	spec.per_node = &res;
	spec.n_argv = 1;
	spec.argv = argv;
	spec.n_env = 3;
	spec.env = env;
	spec.array = (char *)array;
	spec.dependency = (char *)dep;
	if (script) {
		spec.script.data = (uint8_t *)script;
		spec.script.len = strlen(script);
	}
	if (state_task_submit(&f->st, &spec, &alice, &t, &e) < 0)
		fail_msg("submit: %s", e.msg);
	return t;
}

/* Every running task exits with code. */
static void finish_running(struct fix *f, int code)
{
	for (size_t i = 0; i < f->st.ntasks; i++) {
		struct task *t = f->st.tasks[i];

		if (t->state == TASK_RUNNING)
			assert_int_equal(state_task_member_exit(&f->st, t, 0, code, "exit"),
					 EXIT_ENDED);
	}
}

/* ---------------------------------------------------------------- store reads */

struct run_read {
	int done;
	size_t envc;
	char env1[64];
	char script[64];
	bool has_script;
};

static void on_run(void *arg, int status, const struct store_run *r)
{
	struct run_read *rr = arg;

	rr->done = status == 0 ? 1 : -1;
	if (status < 0)
		return;
	rr->envc = r->envc;
	if (r->envc > 1)
		snprintf(rr->env1, sizeof(rr->env1), "%s", r->env[1]);
	rr->has_script = r->script != NULL;
	if (r->script)
		snprintf(rr->script, sizeof(rr->script), "%.*s", (int)r->script_len, r->script);
}

static void read_run(struct fix *f, uint64_t id, uint64_t script_id, struct run_read *rr)
{
	memset(rr, 0, sizeof(*rr));
	store_read_run(f->s, id, script_id, on_run, rr);
	store_submit(f->s);
	while (!rr->done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(rr->done, 1);
}

struct show_read {
	int done;
	struct task *t;
	size_t nevents;
	bool has_script;
};

static void *make(const struct store_task_row *row, const struct store_checkpoint *newest)
{
	return state_task_from_row(row, newest);
}

static void on_show(void *arg, int status, const struct store_history *h)
{
	struct show_read *sr = arg;

	sr->done = status == 0 ? 1 : -1;
	if (status < 0)
		return;
	sr->t = h->task;
	sr->nevents = h->nevents;
	sr->has_script = h->script != NULL;
}

static void read_show(struct fix *f, uint64_t id, struct show_read *sr)
{
	memset(sr, 0, sizeof(*sr));
	store_read_task_history(f->s, id, true, make, on_show, sr);
	store_submit(f->s);
	while (!sr->done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(sr->done, 1);
}

static int64_t count_rows(struct fix *f, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int64_t n = -1;

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

/* ---------------------------------------------------------------- tests */

static void test_env_stays_in_store(void **ts)
{
	struct fix *f = *ts;
	struct task *t = submit(f, "", "", NULL);
	struct task *b = submit(f, "", "", "#!/bin/sh\necho hi\n");
	struct task *a = submit(f, "0-3", "", "#!/bin/sh\necho array\n");
	struct run_read rr;
	uint64_t a_id = a->st.id;

	assert_null(t->env);
	assert_int_equal(t->envc, 0);
	assert_null(b->script);
	assert_true(b->has_script);
	fix_commit(f);
	read_run(f, t->st.id, 0, &rr);
	assert_int_equal(rr.envc, 3);
	assert_string_equal(rr.env1, "PATH=/usr/bin:/bin");
	assert_false(rr.has_script);
	read_run(f, b->st.id, b->st.id, &rr);
	assert_string_equal(rr.script, "#!/bin/sh\necho hi\n");

	/* An array's later index runs its array's first task's environment
	 * and script (agentlink.c reads them there). */
	fix_cpu_node(&f->st, "n1", 8);
	assert_true(fix_cycle(&f->st) >= 4);
	fix_commit(f);
	for (size_t i = 0; i < f->st.ntasks; i++) {
		struct task *x = f->st.tasks[i];

		assert_null(x->env);
		assert_null(x->script);
		if (x->array_id == a_id && x->st.id != a_id) {
			assert_true(x->has_script);
			read_run(f, a_id, a_id, &rr);
			assert_int_equal(rr.envc, 3);
			assert_string_equal(rr.script, "#!/bin/sh\necho array\n");
		}
	}
}

/*
 * An array's index made a task before a restart runs its array's script
 * after it: its row has no script of its own (the array's is kept once,
 * under the array's id), and RunTask asks for one only when the task says
 * it has one (agentlink.c).
 */
static void test_index_script_after_restart(void **ts)
{
	struct fix *f = *ts;
	struct task *a = submit(f, "0-3", "", "#!/bin/sh\necho array\n");
	uint64_t a_id = a->st.id, head_id = 0;
	struct task *t;
	struct show_read sr;

	fix_cpu_node(&f->st, "n1", 1);
	assert_int_equal(fix_cycle(&f->st), 1);  /* index 0 runs, index 1 is the head */
	for (size_t i = 0; i < f->st.ntasks; i++)
		if (f->st.tasks[i]->array_id == a_id && f->st.tasks[i]->array_index == 1)
			head_id = f->st.tasks[i]->st.id;
	assert_int_not_equal(head_id, 0);
	assert_int_not_equal(head_id, a_id);
	assert_true(state_task_find(&f->st, head_id)->has_script);

	fix_commit_close(f);
	fix_open_keep(f, 0);
	t = state_task_find(&f->st, head_id);
	assert_non_null(t);
	assert_int_equal(t->state, TASK_PENDING);
	assert_true(t->has_script);
	t = state_task_find(&f->st, a_id);
	assert_non_null(t);
	assert_true(t->has_script);
	/* hpq show of it, read from its row, says so too. */
	read_show(f, head_id, &sr);
	assert_non_null(sr.t);
	assert_true(sr.t->has_script);
	assert_true(sr.has_script);
	state_task_free(sr.t);
}

/* Renames table from to to in the database at path, from a connection of
 * its own, as a damaged page would fail the reads of it. */
static void rename_table(const char *path, const char *from, const char *to)
{
	char sql[128];
	sqlite3 *db;

	snprintf(sql, sizeof(sql), "ALTER TABLE %s RENAME TO %s", from, to);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/*
 * A start whose environment cannot be read from the store (agentlink.c):
 * its RunTask never leaves, and the task goes back to the queue held, not
 * to be started again at once with the same failed read, attempt after
 * attempt. Released once the database reads again, it starts, and its
 * RunTask has its environment.
 */
static void test_unreadable_env_holds(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct run_read rr;
	struct hpqd d;
	char err[256] = "";
	struct task *t;
	uint64_t id;

	id = submit(f, "", "", NULL)->st.id;
	fix_commit_close(f);
	memset(&d, 0, sizeof(d));
	d.loop = &f->loop;
	if (store_open(f->path, f->flags, &d.store, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	state_init(&d.state, d.store);
	if (state_load(&d.state, err, sizeof(err)) < 0)
		fail_msg("state_load: %s", err);
	assert_int_equal(store_start(d.store, &f->loop, NULL, NULL), 0);

	rename_table(f->path, "task_env", "task_env_away");
	fix_cpu_node(&d.state, "n1", 1);
	assert_int_equal(fix_cycle(&d.state), 1);
	t = state_task_find(&d.state, id);
	assert_int_equal(t->state, TASK_RUNNING);
	agentlink_run_after_commit(&d, t);
	store_submit(d.store);
	while (t->run_unsent)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(t->state, TASK_PENDING);
	assert_int_equal(t->attempts, 1);
	assert_true(t->held);
	assert_int_equal(fix_cycle(&d.state), 0);
	assert_int_equal(fix_cycle(&d.state), 0);
	assert_int_equal(t->attempts, 1);
	fix_commit_store(f, d.store);

	rename_table(f->path, "task_env_away", "task_env");
	assert_int_equal(state_task_hold(&d.state, t, true, &alice, &e), 0);
	assert_int_equal(fix_cycle(&d.state), 1);
	assert_int_equal(t->attempts, 2);
	fix_commit_store(f, d.store);
	memset(&rr, 0, sizeof(rr));
	store_read_run(d.store, id, 0, on_run, &rr);
	store_submit(d.store);
	while (!rr.done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(rr.done, 1);
	assert_int_equal(rr.envc, 3);
	assert_string_equal(rr.env1, "PATH=/usr/bin:/bin");

	fix_commit_store(f, d.store);
	state_release(&d.state);
	fix_close_store(f, d.store);
}

/* The same for an array's index: its pending rest is held with it, not
 * made a task index by index to fail the same way. */
static void test_unreadable_env_holds_array(void **ts)
{
	struct fix *f = *ts;
	struct hpqd d;
	char err[256] = "";
	struct array *a;
	struct task *t;
	uint64_t id;

	id = submit(f, "0-99", "", "#!/bin/sh\necho array\n")->st.id;
	fix_commit_close(f);
	memset(&d, 0, sizeof(d));
	d.loop = &f->loop;
	if (store_open(f->path, f->flags, &d.store, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	state_init(&d.state, d.store);
	if (state_load(&d.state, err, sizeof(err)) < 0)
		fail_msg("state_load: %s", err);
	assert_int_equal(store_start(d.store, &f->loop, NULL, NULL), 0);

	rename_table(f->path, "task_env", "task_env_away");
	fix_cpu_node(&d.state, "n1", 1);
	/* Each start's read fails (the head that already waited starts too). */
	for (int i = 0; i < 5 && fix_cycle(&d.state); i++) {
		for (size_t k = 0; k < d.state.ntasks; k++) {
			t = d.state.tasks[k];
			if (!t->run_unsent)
				continue;
			agentlink_run_after_commit(&d, t);
			store_submit(d.store);
			while (t->run_unsent)
				uv_run(&f->loop, UV_RUN_ONCE);
		}
	}
	assert_int_equal(fix_cycle(&d.state), 0);
	a = array_find(&d.state, id);
	assert_non_null(a);
	assert_true(a->held);
	/* index 0 and at most the head that waited already, both held */
	assert_true(d.state.ntasks <= 2);
	for (size_t k = 0; k < d.state.ntasks; k++)
		assert_true(d.state.tasks[k]->held);

	rename_table(f->path, "task_env_away", "task_env");
	fix_commit_store(f, d.store);
	state_release(&d.state);
	fix_close_store(f, d.store);
}

static void test_evict_bound(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct task *a, *b, *c;
	int64_t a_end;
	uint64_t b_id, c_id;

	/* No node: all three wait. Nothing has ended, nothing is walked. */
	a = submit(f, "", "", NULL);
	b = submit(f, "", "", NULL);
	c = submit(f, "", "", NULL);
	c_id = c->st.id;
	assert_int_equal(f->st.ended_first_ms, INT64_MAX);
	assert_int_equal(state_tasks_evict(&f->st, hpq_now_ms() + 1, 100), 0);
	assert_int_equal(f->st.ntasks, 3);

	/* An end sets the bound; a cut at it is not after it. */
	assert_int_equal(state_task_cancel(&f->st, a, &alice, &e), 0);
	a_end = a->end_ms;
	assert_int_equal(f->st.ended_first_ms, a_end);
	assert_int_equal(state_tasks_evict(&f->st, a_end, 100), 0);
	assert_int_equal(f->st.ended_first_ms, a_end);
	assert_int_equal(state_task_cancel(&f->st, b, &alice, &e), 0);
	b_id = b->st.id;
	assert_int_equal(f->st.ended_first_ms, a_end);
	fix_commit(f);

	/* One at a time: the bound moves to the end still in memory. */
	assert_int_equal(state_tasks_evict(&f->st, hpq_now_ms() + 1, 1), 1);
	assert_int_equal(f->st.ntasks, 2);
	b = state_task_find(&f->st, b_id);
	assert_non_null(b);
	assert_int_equal(f->st.ended_first_ms, b->end_ms);

	/* A restart that loads every ended task (both: the store keeps what
	 * left memory) bounds them by the earliest, and they can leave. */
	fix_commit_close(f);
	fix_open_keep(f, -1);
	assert_int_equal(f->st.ntasks, 3);
	assert_int_equal(f->st.ended_first_ms, a_end);
	assert_int_equal(state_tasks_evict(&f->st, hpq_now_ms() + 1, 100), 2);
	assert_int_equal(f->st.ended_first_ms, INT64_MAX);
	assert_int_equal(f->st.ntasks, 1);
	assert_non_null(state_task_find(&f->st, c_id));
}

static void test_evict_show_depend(void **ts)
{
	struct fix *f = *ts;
	struct task *ok, *bad, *w;
	uint64_t ok_id, bad_id, next;
	struct show_read sr;
	struct state_err e;
	bool done;
	size_t n;

	fix_cpu_node(&f->st, "n1", 2);
	ok = submit(f, "", "", "#!/bin/sh\ntrue\n");
	bad = submit(f, "", "", NULL);
	ok_id = ok->st.id;
	bad_id = bad->st.id;
	assert_int_equal(fix_cycle(&f->st), 2);
	assert_int_equal(state_task_member_exit(&f->st, ok, 0, 0, "exit"), EXIT_ENDED);
	assert_int_equal(state_task_member_exit(&f->st, bad, 0, 3, "exit"), EXIT_ENDED);
	fix_commit(f);
	next = f->st.next_id;

	/* Not yet: they ended after the cut. */
	assert_int_equal(state_tasks_evict(&f->st, ok->end_ms - 1, 100), 0);
	/* At most max per call. */
	assert_int_equal(state_tasks_evict(&f->st, hpq_now_ms() + 1, 1), 1);
	n = state_tasks_evict(&f->st, hpq_now_ms() + 1, 100);
	assert_int_equal(n, 1);
	assert_int_equal(f->st.ntasks, 0);
	assert_null(state_task_find(&f->st, ok_id));
	assert_null(state_task_find(&f->st, bad_id));
	assert_int_equal(f->st.next_id, next);
	assert_true(state_task_gone(&f->st, ok_id, &done));
	assert_true(done);
	assert_true(state_task_gone(&f->st, bad_id, &done));
	assert_false(done);
	assert_false(state_task_gone(&f->st, next, &done));

	/* Its counts stay behind for the metrics. */
	{
		const struct task_gone_count *c = strmap_get(&f->st.gone_counts, "default");

		assert_non_null(c);
		assert_int_equal(c->submitted, 2);
		assert_int_equal(c->started, 2);
		assert_int_equal(c->finished[TASK_COMPLETED - TASK_COMPLETED], 1);
		assert_int_equal(c->finished[TASK_FAILED - TASK_COMPLETED], 1);
	}

	/* hpq show reads it from the store, history and script included. */
	read_show(f, ok_id, &sr);
	assert_non_null(sr.t);
	assert_int_equal(sr.t->st.id, ok_id);
	assert_int_equal(sr.t->state, TASK_COMPLETED);
	assert_string_equal(sr.t->user, "alice");
	assert_true(sr.nevents >= 3);          /* submit, start, end */
	assert_true(sr.has_script);
	state_task_free(sr.t);
	read_show(f, next + 5, &sr);
	assert_null(sr.t);

	/* Dependencies on them resolve by how they ended. */
	w = submit(f, "", "", NULL);
	(void)w;
	{
		char dep[64];
		struct task *x;

		snprintf(dep, sizeof(dep), "afterok:%llu", (unsigned long long)ok_id);
		x = submit(f, "", dep, NULL);
		assert_string_equal(x->dependency, "");
		assert_int_equal(x->st.state, SCHED_PENDING);

		snprintf(dep, sizeof(dep), "afterok:%llu", (unsigned long long)bad_id);
		x = submit(f, "", dep, NULL);
		assert_string_equal(x->reason, "dependency-never-satisfied");
		assert_int_equal(x->st.state, SCHED_NONE);

		snprintf(dep, sizeof(dep), "afternotok:%llu", (unsigned long long)bad_id);
		x = submit(f, "", dep, NULL);
		assert_int_equal(x->st.state, SCHED_PENDING);

		snprintf(dep, sizeof(dep), "afternotok:%llu", (unsigned long long)ok_id);
		x = submit(f, "", dep, NULL);
		assert_string_equal(x->reason, "dependency-never-satisfied");

		snprintf(dep, sizeof(dep), "afterany:%llu", (unsigned long long)bad_id);
		x = submit(f, "", dep, NULL);
		assert_int_equal(x->st.state, SCHED_PENDING);
	}
	/* An id never given is still unknown. */
	{
		Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
		Hpq__Resources res = HPQ__RESOURCES__INIT;
		char *argv[] = { "/bin/job" };
		struct task *x;
		char dep[64];

		snprintf(dep, sizeof(dep), "afterok:%llu", (unsigned long long)next + 100);
		res.cpus = 1;
		spec.per_node = &res;
		spec.n_argv = 1;
		spec.argv = argv;
		spec.dependency = dep;
		assert_int_equal(state_task_submit(&f->st, &spec, &alice, &x, &e), HPQ_ENOTFOUND);
	}

	/* A restart that loads everything still knows them. */
	fix_commit_close(f);
	fix_open_keep(f, -1);
	assert_non_null(state_task_find(&f->st, ok_id));
	fix_commit_close(f);
	/* One with keep_finished leaves them in the store, and knows how they ended. */
	fix_open_keep(f, 0);
	assert_null(state_task_find(&f->st, ok_id));
	assert_null(state_task_find(&f->st, bad_id));
	assert_true(state_task_gone(&f->st, ok_id, &done));
	assert_true(done);
	assert_true(state_task_gone(&f->st, bad_id, &done));
	assert_false(done);
	assert_true(f->st.next_id > next);
	{
		const struct task_gone_count *c = strmap_get(&f->st.gone_counts, "default");

		assert_non_null(c);
		assert_int_equal(c->finished[TASK_FAILED - TASK_COMPLETED], 1);
	}
}

static void test_array_survives(void **ts)
{
	struct fix *f = *ts;
	struct task *a, *t;
	struct array *arr;
	uint64_t a_id;

	fix_cpu_node(&f->st, "n1", 1);
	a = submit(f, "0-2", "", "#!/bin/sh\necho $SLURM_ARRAY_TASK_ID\n");
	a_id = a->st.id;
	assert_int_equal(fix_cycle(&f->st), 1);
	finish_running(f, 0);           /* index 0 ended; index 1 is the head */
	fix_commit(f);

	/* Index 0 leaves memory; its array, with indices left, stays whole. */
	assert_int_equal(state_tasks_evict(&f->st, hpq_now_ms() + 1, 100), 1);
	assert_null(state_task_find(&f->st, a_id));
	arr = array_find(&f->st, a_id);
	assert_non_null(arr);
	assert_non_null(arr->tmpl);
	assert_true(array_set_empty(&arr->gone_bad));     /* it completed */

	/* A restart long after index 0 ended: the template still comes back. */
	fix_commit_close(f);
	fix_open_keep(f, 0);
	arr = array_find(&f->st, a_id);
	assert_non_null(arr);
	assert_non_null(arr->tmpl);
	assert_int_equal(arr->nok, 1);
	fix_cpu_node(&f->st, "n1", 1);   /* its agent registers again */
	assert_int_equal(fix_cycle(&f->st), 1);
	finish_running(f, 0);
	assert_int_equal(fix_cycle(&f->st), 1); /* index 2, from the template */
	t = NULL;
	for (size_t i = 0; i < f->st.ntasks; i++)
		if (f->st.tasks[i]->array_id == a_id && f->st.tasks[i]->array_index == 2)
			t = f->st.tasks[i];
	assert_non_null(t);
	assert_int_equal(t->state, TASK_RUNNING);
	assert_string_equal(t->argv[0], "/bin/job");
	assert_true(t->has_script);
	finish_running(f, 0);
	fix_commit(f);
	arr = array_find(&f->st, a_id);
	assert_int_equal(arr->nok, 3);

	/* Every index ended: they all go, the array too, and it as a whole is met. */
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 100);
	assert_int_equal(f->st.ntasks, 0);
	assert_null(array_find(&f->st, a_id));
	/* hpq show ID_INDEX finds an index in the store, with its array's script. */
	{
		struct show_read sr = { 0 };

		store_read_index_history(f->s, a_id, 1, true, make, on_show, &sr);
		store_submit(f->s);
		while (!sr.done)
			uv_run(&f->loop, UV_RUN_ONCE);
		assert_int_equal(sr.done, 1);
		assert_non_null(sr.t);
		assert_int_equal(sr.t->array_id, a_id);
		assert_int_equal(sr.t->array_index, 1);
		assert_int_equal(sr.t->state, TASK_COMPLETED);
		assert_true(sr.has_script);
		state_task_free(sr.t);
		memset(&sr, 0, sizeof(sr));
		store_read_index_history(f->s, a_id, 9, false, make, on_show, &sr);
		store_submit(f->s);
		while (!sr.done)
			uv_run(&f->loop, UV_RUN_ONCE);
		assert_null(sr.t);
	}
	{
		char dep[64];
		struct task *x;

		snprintf(dep, sizeof(dep), "afterok:%llu", (unsigned long long)a_id);
		x = submit(f, "", dep, NULL);
		assert_int_equal(x->st.state, SCHED_PENDING);
	}
	/* And after a restart that leaves them all in the store: the array
	 * is not built again, and is known to have completed. */
	fix_commit_close(f);
	fix_open_keep(f, 0);
	assert_null(array_find(&f->st, a_id));
	{
		bool ok = false;

		assert_true(state_task_gone(&f->st, a_id, &ok));
		assert_true(ok);
	}
}

struct prune_res {
	int done;
	int64_t deleted;
};

static void on_pruned(void *arg, int status, const struct store_prune *p)
{
	struct prune_res *r = arg;

	r->done = status == 0 && !p->error ? 1 : -1;
	if (status == 0)
		r->deleted = p->deleted;
}

static int64_t prune_before(struct fix *f, int64_t before_ms, uint32_t max)
{
	struct prune_res r = { 0 };

	store_tasks_prune(f->s, before_ms, max, on_pruned, &r);
	store_submit(f->s);
	while (!r.done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(r.done, 1);
	return r.deleted;
}

static int64_t prune(struct fix *f, uint32_t max)
{
	return prune_before(f, hpq_now_ms() + 1, max);
}

static void test_retain_batches(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct task *t;

	fix_cpu_node(&f->st, "n1", 1);
	/* 1,200 cancelled tasks, one run with a checkpoint, one with a script. */
	for (int i = 0; i < 1200; i++) {
		t = submit(f, "", "", i == 7 ? "#!/bin/sh\n" : NULL);
		if (i == 0)
			continue;
		assert_int_equal(state_task_cancel(&f->st, t, &alice, &e), 0);
	}
	assert_int_equal(fix_cycle(&f->st), 1);
	t = f->st.tasks[0];
	assert_int_equal(state_checkpoint_add(&f->st, t, 1, 5, "/ck/5", &alice, &e), 0);
	finish_running(f, 0);
	t = submit(f, "", "", NULL);        /* pending: never pruned */
	fix_commit(f);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM tasks"), 1201);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM checkpoints"), 1);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM scripts"), 1);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM task_env"), 1201);

	assert_int_equal(prune(f, 500), 500);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM tasks"), 701);
	assert_int_equal(prune(f, 500), 500);
	assert_int_equal(prune(f, 500), 200);
	assert_int_equal(prune(f, 500), 0);
	/* Only the pending one is left; it is also the newest. */
	assert_int_equal(count_rows(f, "SELECT count(*) FROM tasks"), 1);
	assert_int_equal(count_rows(f, "SELECT max(id) FROM tasks"), (int64_t)t->st.id);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM checkpoints"), 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM scripts"), 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM task_env"), 1);
}


/*
 * [tasks] retain deletes a failed task that a pending task's afterok
 * still names (it waits as dependency-never-satisfied), and an array of
 * which one index failed. After a restart, which reads no row of them,
 * each still counts as not completed: the waiting task stays out of the
 * dispatcher, and a new afterok on either is never met.
 */
static void test_retain_keeps_how_it_ended(void **ts)
{
	struct fix *f = *ts;
	struct task *bad, *w, *t;
	struct array *a;
	uint64_t bad_id, w_id, arr;
	char dep[64], arr_ok[64], arr_notok[64];
	bool completed = true;

	fix_cpu_node(&f->st, "n1", 2);
	bad = submit(f, "", "", NULL);
	bad_id = bad->st.id;
	assert_int_equal(fix_cycle(&f->st), 1);
	finish_running(f, 3);
	assert_int_equal(bad->state, TASK_FAILED);
	snprintf(dep, sizeof(dep), "afterok:%llu", (unsigned long long)bad_id);
	w = submit(f, "", dep, NULL);
	w_id = w->st.id;
	assert_string_equal(w->reason, "dependency-never-satisfied");
	/* Index 0, the array's own id, completes; index 1 fails. */
	t = submit(f, "0-1", "", NULL);
	arr = t->st.id;
	a = array_find(&f->st, arr);
	assert_int_equal(fix_cycle(&f->st), 2);
	assert_int_equal(state_task_member_exit(&f->st, array_task_find(&f->st, a, 0), 0, 0,
						"exit"), EXIT_ENDED);
	assert_int_equal(state_task_member_exit(&f->st, array_task_find(&f->st, a, 1), 0, 2,
						"exit"), EXIT_ENDED);
	/* Something newer than them all: the newest row is never pruned. */
	submit(f, "", "", NULL);
	fix_commit(f);
	assert_int_equal(state_tasks_evict(&f->st, hpq_now_ms() + 1, 100), 3);
	assert_null(array_find(&f->st, arr));
	assert_int_equal(prune(f, 500), 3);

	fix_commit_close(f);
	fix_open_keep(f, 0);
	w = state_task_find(&f->st, w_id);
	assert_non_null(w);
	assert_int_equal(w->st.state, SCHED_NONE);
	assert_true(state_task_gone(&f->st, bad_id, &completed));
	assert_false(completed);
	assert_int_equal(submit(f, "", dep, NULL)->st.state, SCHED_NONE);
	snprintf(arr_ok, sizeof(arr_ok), "afterok:%llu", (unsigned long long)arr);
	snprintf(arr_notok, sizeof(arr_notok), "afternotok:%llu", (unsigned long long)arr);
	assert_int_equal(submit(f, "", arr_ok, NULL)->st.state, SCHED_NONE);
	assert_int_equal(submit(f, "", arr_notok, NULL)->st.state, SCHED_PENDING);
	fix_commit(f);
}

/* The counts team default's tasks that left memory left behind. */
static void check_gone_counts(struct fix *f, uint64_t submitted, uint64_t started,
			      uint64_t completed, uint64_t failed, uint64_t cancelled)
{
	const struct task_gone_count *c = strmap_get(&f->st.gone_counts, "default");

	assert_non_null(c);
	assert_int_equal(c->submitted, submitted);
	assert_int_equal(c->started, started);
	assert_int_equal(c->finished[TASK_COMPLETED - TASK_COMPLETED], completed);
	assert_int_equal(c->finished[TASK_FAILED - TASK_COMPLETED], failed);
	assert_int_equal(c->finished[TASK_CANCELLED - TASK_COMPLETED], cancelled);
}

/*
 * The per-team counts of the metrics' totals outlive the rows [tasks]
 * retain deletes: a restart after a prune counts what it deleted, and a
 * second prune of the same team and state adds to the first's.
 */
static void test_retain_keeps_counts(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;

	fix_cpu_node(&f->st, "n1", 1);
	submit(f, "", "", NULL);
	assert_int_equal(fix_cycle(&f->st), 1);
	finish_running(f, 0);
	assert_int_equal(state_task_cancel(&f->st, submit(f, "", "", NULL), &alice, &e), 0);
	submit(f, "", "", NULL);
	assert_int_equal(fix_cycle(&f->st), 1);
	finish_running(f, 1);
	submit(f, "", "", NULL);             /* the newest, pending: never pruned */
	fix_commit(f);
	assert_int_equal(state_tasks_evict(&f->st, hpq_now_ms() + 1, 100), 3);
	check_gone_counts(f, 3, 2, 1, 1, 1);
	assert_int_equal(prune(f, 500), 3);
	assert_int_equal(count_rows(f, "SELECT sum(count) FROM tasks_gone_counts"), 3);

	fix_commit_close(f);
	fix_open_keep(f, 0);
	check_gone_counts(f, 3, 2, 1, 1, 1);
	/* Another is cancelled, and a newer one comes after it. */
	assert_int_equal(state_task_cancel(&f->st, submit(f, "", "", NULL), &alice, &e), 0);
	submit(f, "", "", NULL);
	fix_commit(f);
	assert_int_equal(state_tasks_evict(&f->st, hpq_now_ms() + 1, 100), 1);
	assert_int_equal(prune(f, 500), 1);
	assert_int_equal(count_rows(f, "SELECT count FROM tasks_gone_counts WHERE"
				       " state = 'CANCELLED'"), 2);
	fix_commit_close(f);
	fix_open_keep(f, 0);
	check_gone_counts(f, 4, 2, 1, 1, 2);
}

/* What a dependency of type on x (idx < 0: the whole array) answers: 1
 * met, 0 never, -1 waits. The probe is cancelled after. */
static int dep(struct fix *f, const char *type, uint64_t x, int idx)
{
	struct state_err e = { { 0 } };
	char d[64];
	struct task *t;
	int r;

	if (idx < 0)
		snprintf(d, sizeof(d), "%s:%llu", type, (unsigned long long)x);
	else
		snprintf(d, sizeof(d), "%s:%llu_%d", type, (unsigned long long)x, idx);
	t = submit(f, "", d, NULL);
	r = t->st.state == SCHED_PENDING ? 1 :
	    t->reason && !strcmp(t->reason, "dependency-never-satisfied") ? 0 : -1;
	assert_int_equal(state_task_cancel(&f->st, t, &alice, &e), 0);
	return r;
}

/* Array x ended: index i completed where outcome[i] is 'c'. */
static void check_ended(struct fix *f, uint64_t x, const char *outcome)
{
	int all_ok = !strchr(outcome, 'b');

	for (int i = 0; outcome[i]; i++) {
		int ok = outcome[i] == 'c';

		if (dep(f, "afterok", x, i) != ok || dep(f, "afternotok", x, i) != !ok ||
		    dep(f, "afterany", x, i) != 1)
			fail_msg("array %llu index %d: not %s", (unsigned long long)x, i,
				 ok ? "completed" : "failed");
	}
	assert_int_equal(dep(f, "afterok", x, -1), all_ok);
	assert_int_equal(dep(f, "afternotok", x, -1), !all_ok);
	assert_int_equal(dep(f, "afterany", x, -1), 1);
}

static void index_exit(struct fix *f, uint64_t x, uint32_t idx, int code)
{
	struct task *t = array_task_find(&f->st, array_find(&f->st, x), idx);

	assert_non_null(t);
	assert_int_equal(state_task_member_exit(&f->st, t, 0, code, "exit"), EXIT_ENDED);
}

/* hpq cancel ID (12, 12_5, 12_[5-7]) */
static void cancel_id(struct fix *f, const char *id)
{
	Hpq__TaskSelector q = HPQ__TASK_SELECTOR__INIT;
	struct state_err e = { { 0 } };
	struct selection sel;
	char *ids[] = { (char *)id };

	q.n_ids = 1;
	q.ids = ids;
	assert_int_equal(select_resolve(&f->st, &q, &sel, &e), 0);
	control_apply(&f->st, &sel, CONTROL_CANCEL, &alice, NULL, NULL);
	select_release(&sel);
}

static void cancel_array(struct fix *f, uint64_t x)
{
	Hpq__TaskSelector q = HPQ__TASK_SELECTOR__INIT;
	struct state_err e = { { 0 } };
	struct selection sel;
	char id[32], *ids[] = { id };

	snprintf(id, sizeof(id), "%llu", (unsigned long long)x);
	q.n_ids = 1;
	q.ids = ids;
	assert_int_equal(select_resolve(&f->st, &q, &sel, &e), 0);
	control_apply(&f->st, &sel, CONTROL_CANCEL, &alice, NULL, NULL);
	select_release(&sel);
}

/* x all completed, y all failed, z mixed: 0 and 3 failed, 1 and 2
 * completed, 4 was cancelled and 5 dropped with the rest. */
static void three_arrays(struct fix *f, uint64_t *x, uint64_t *y, uint64_t *z)
{
	fix_cpu_node(&f->st, "n1", 4);
	*x = submit(f, "0-3", "", NULL)->st.id;
	assert_int_equal(fix_cycle(&f->st), 4);
	finish_running(f, 0);
	*y = submit(f, "0-3", "", NULL)->st.id;
	assert_int_equal(fix_cycle(&f->st), 4);
	finish_running(f, 1);
	*z = submit(f, "0-5%2", "", NULL)->st.id;
	assert_int_equal(fix_cycle(&f->st), 2);
	index_exit(f, *z, 0, 1);
	index_exit(f, *z, 1, 0);
	assert_int_equal(fix_cycle(&f->st), 2);
	index_exit(f, *z, 2, 0);
	index_exit(f, *z, 3, 1);
	assert_true(array_set_has(&array_find(&f->st, *z)->pending, 5));
	cancel_array(f, *z);
}

static void check_three(struct fix *f, uint64_t x, uint64_t y, uint64_t z)
{
	check_ended(f, x, "cccc");
	check_ended(f, y, "bbbb");
	check_ended(f, z, "bccbbb");
}

/*
 * [tasks] retain deletes the rows of arrays that all completed, all
 * failed, and of one mixed with a cancel, some in one batch and the rest
 * in a later one, with restarts between: dependencies on each array and
 * on each index answer as they did while the rows were there.
 */
static void test_retain_array_outcomes(void **ts)
{
	struct fix *f = *ts;
	uint64_t x, y, z;

	three_arrays(f, &x, &y, &z);
	check_three(f, x, y, z);
	fix_commit(f);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_null(array_find(&f->st, x));
	assert_null(array_find(&f->st, z));
	check_three(f, x, y, z);

	/* Some of their rows go; a restart; the rest go; a restart. */
	assert_int_equal(prune(f, 7), 7);
	check_three(f, x, y, z);
	fix_commit_close(f);
	fix_open_keep(f, 0);
	check_three(f, x, y, z);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	check_three(f, x, y, z);
	fix_commit(f);
	prune(f, 500);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM tasks WHERE array_id != 0"), 0);
	fix_commit_close(f);
	fix_open_keep(f, 0);
	check_three(f, x, y, z);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	check_three(f, x, y, z);
	fix_commit(f);
}

/*
 * An array that still runs loses the rows of its early indices (not its
 * first: its template): after a restart they count as they ended, not as
 * dropped, and the array as a whole is met once the rest completes.
 */
static void test_retain_running_array(void **ts)
{
	struct fix *f = *ts;
	struct array *a;
	uint64_t x;

	fix_cpu_node(&f->st, "n1", 1);
	x = submit(f, "0-4", "", NULL)->st.id;
	assert_int_equal(fix_cycle(&f->st), 1);
	finish_running(f, 0);                /* 0 */
	assert_int_equal(fix_cycle(&f->st), 1);
	finish_running(f, 0);                /* 1 */
	assert_int_equal(fix_cycle(&f->st), 1);
	finish_running(f, 2);                /* 2 fails */
	assert_int_equal(fix_cycle(&f->st), 1);  /* 3 runs, 4 waits */
	fix_commit(f);
	assert_int_equal(state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000), 3);
	assert_int_equal(prune(f, 500), 2);  /* 1 and 2: 0 is the template */
	fix_commit_close(f);
	fix_open_keep(f, 0);
	fix_cpu_node(&f->st, "n1", 1);
	a = array_find(&f->st, x);
	assert_non_null(a);
	assert_int_equal(a->nok, 2);
	assert_int_equal(a->nbad, 1);
	assert_int_equal(dep(f, "afterok", x, 1), 1);
	assert_int_equal(dep(f, "afternotok", x, 2), 1);
	assert_int_equal(dep(f, "afterok", x, -1), 0);
	assert_int_equal(dep(f, "afternotok", x, -1), -1);
	finish_running(f, 0);                /* 3 */
	assert_true(fix_cycle(&f->st) >= 1);
	finish_running(f, 0);                /* 4 */
	check_ended(f, x, "ccbcc");
	fix_commit(f);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_null(array_find(&f->st, x));
	check_ended(f, x, "ccbcc");
}

/*
 * A restart builds no array for those that ended and whose tasks all left
 * memory (still rows, or deleted by retain): memory follows the live
 * arrays, not how many ever ran. What dependencies need of them is kept
 * all the same, and an array that still runs, or whose tasks are still
 * in memory, loads whole.
 */
static void test_restart_leaves_ended_arrays(void **ts)
{
	struct fix *f = *ts;
	uint64_t x, y, z, live, recent;

	three_arrays(f, &x, &y, &z);
	fix_commit(f);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_int_equal(f->st.narrays, 0);
	live = submit(f, "0-3", "", NULL)->st.id;     /* no node: it waits */
	fix_commit_close(f);
	fix_open_keep(f, 0);
	assert_int_equal(f->st.narrays, 1);
	assert_non_null(array_find(&f->st, live));
	check_three(f, x, y, z);
	fix_commit(f);
	prune(f, 500);
	fix_commit_close(f);
	fix_open_keep(f, 0);
	assert_int_equal(f->st.narrays, 1);
	check_three(f, x, y, z);

	/* One whose ended tasks are still in memory at the restart loads. */
	recent = submit(f, "0-1", "", NULL)->st.id;
	fix_cpu_node(&f->st, "n1", 8);
	assert_true(fix_cycle(&f->st) >= 2);
	finish_running(f, 0);
	assert_null(array_find(&f->st, recent)->head);
	fix_commit_close(f);
	fix_open_keep(f, 3600 * 1000);
	assert_non_null(array_find(&f->st, recent));
	assert_int_equal(array_find(&f->st, recent)->nok, 2);
	check_three(f, x, y, z);
}

struct index_res {
	int done;
	enum store_index_known known;
};

static void on_index(void *arg, int status, const struct store_index_query *q, size_t n)
{
	struct index_res *r = arg;

	r->done = status == 0 && n == 1 ? 1 : -1;
	r->known = n == 1 ? q[0].known : STORE_INDEX_UNKNOWN;
}

/* What the store says of index idx of array id (a dependency's check
 * once the array left memory). */
static enum store_index_known index_known(struct fix *f, uint64_t id, uint32_t idx)
{
	struct store_index_query q = { .id = id, .index = idx };
	struct index_res r = { 0 };

	store_read_indices(f->s, &q, 1, on_index, &r);
	store_submit(f->s);
	while (!r.done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(r.done, 1);
	return r.known;
}

/*
 * [tasks] retain deletes an array's tasks but never its row, whose spec
 * says which indices it had: a dependency on one it never had is still
 * refused once all its tasks are gone (an index whose row was deleted
 * would otherwise count as completed). Dependencies answer as before
 * across a restart.
 */
static void test_retain_prunes_arrays(void **ts)
{
	struct fix *f = *ts;
	uint64_t x, y, z, w;

	three_arrays(f, &x, &y, &z);
	w = submit(f, "0-1", "", NULL)->st.id;
	assert_int_equal(fix_cycle(&f->st), 2);
	finish_running(f, 0);
	fix_commit(f);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	submit(f, "", "", NULL);             /* the newest row stays */
	fix_commit(f);
	assert_int_equal(prune(f, 5), 5);    /* in two batches */
	prune(f, 500);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM tasks WHERE array_id != 0"), 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM arrays"), 4);
	fix_commit_close(f);
	fix_open_keep(f, 0);
	check_three(f, x, y, z);
	check_ended(f, w, "cc");
	/* w and x all completed, y and z did not: each knows its indices. */
	assert_int_equal(index_known(f, w, 1), STORE_INDEX_OF);
	assert_int_equal(index_known(f, w, 2), STORE_INDEX_NOT_OF);
	assert_int_equal(index_known(f, x, 3), STORE_INDEX_OF);
	assert_int_equal(index_known(f, x, 99), STORE_INDEX_NOT_OF);
	assert_int_equal(index_known(f, z, 5), STORE_INDEX_OF);
	assert_int_equal(index_known(f, z, 6), STORE_INDEX_NOT_OF);
	fix_commit(f);
}

/*
 * The sweep of keep_finished (retention_tick) goes on while an ended array
 * is in memory without a task: one whose tasks left in a sweep with no
 * room left for it (RETENTION_EVICT_MAX) leaves at the next one.
 */
static void test_sweep_takes_last_array(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct hpqd d;
	char err[256] = "";
	uint64_t x;

	hpq_log_set_level(LOG_WARNING);   /* thousands of cancels otherwise */
	fix_cpu_node(&f->st, "n1", 2);
	x = submit(f, "0-1", "", NULL)->st.id;
	assert_int_equal(fix_cycle(&f->st), 2);
	finish_running(f, 0);
	/* The array's two, then as many more as one sweep takes. */
	for (int i = 2; i < RETENTION_EVICT_MAX; i++)
		assert_int_equal(state_task_cancel(&f->st, submit(f, "", "", NULL), &alice, &e),
				 0);
	fix_commit_close(f);

	memset(&d, 0, sizeof(d));
	d.loop = &f->loop;
	if (store_open(f->path, f->flags, &d.store, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	state_init(&d.state, d.store);
	if (state_load(&d.state, err, sizeof(err)) < 0)
		fail_msg("state_load: %s", err);
	assert_int_equal(store_start(d.store, &f->loop, NULL, NULL), 0);
	assert_int_equal(retention_init(&d), 0);
	assert_int_equal(d.state.ntasks, RETENTION_EVICT_MAX);
	for (int i = 0; i < 3; i++) {
		retention_tick(&d);
		fix_commit_store(f, d.store);
		uv_run(&f->loop, UV_RUN_NOWAIT);
	}
	assert_int_equal(d.state.ntasks, 0);
	assert_null(array_find(&d.state, x));
	assert_int_equal(d.state.narrays, 0);
	retention_close(&d);
	fix_commit_store(f, d.store);
	state_release(&d.state);
	fix_close_store(f, d.store);
	hpq_log_set_level(LOG_INFO);
}

/* hpq show ID_INDEX's read of index idx of array x (the store's). */
static struct task *read_index(struct fix *f, uint64_t x, uint32_t idx)
{
	struct show_read sr = { 0 };

	store_read_index_history(f->s, x, idx, true, make, on_show, &sr);
	store_submit(f->s);
	while (!sr.done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(sr.done, 1);
	return sr.t;
}

/* Index idx of array x shows CANCELLED, never started, ended. */
static void shows_cancelled(struct fix *f, uint64_t x, uint32_t idx)
{
	struct task *t = read_index(f, x, idx);

	if (!t)
		fail_msg("array %llu index %u: not found", (unsigned long long)x, idx);
	assert_int_equal(t->array_id, x);
	assert_int_equal(t->array_index, idx);
	assert_int_equal(t->state, TASK_CANCELLED);
	assert_int_equal(t->attempts, 0);
	assert_int_equal(t->start_ms, 0);
	assert_true(t->end_ms > 0);
	state_task_free(t);
}

/*
 * An index that a cancel dropped before it had a task of its own shows as
 * CANCELLED, as one cancelled once it had one does: while its array is in
 * memory, after it left, and after a restart. An index the array never
 * had is still not found.
 */
static void test_show_dropped_index(void **ts)
{
	struct fix *f = *ts;
	uint64_t x, y, z, s;

	three_arrays(f, &x, &y, &z);
	/* Stepped: 0 runs, 2 waits, 4-10:2 are dropped with the rest. */
	s = submit(f, "0-10:2%1", "", NULL)->st.id;
	assert_int_equal(fix_cycle(&f->st), 1);
	cancel_array(f, s);
	fix_commit(f);
	shows_cancelled(f, z, 4);
	shows_cancelled(f, z, 5);
	assert_null(read_index(f, z, 6));
	shows_cancelled(f, s, 6);
	shows_cancelled(f, s, 10);
	assert_null(read_index(f, s, 7));
	assert_null(read_index(f, s, 12));
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_null(array_find(&f->st, z));
	shows_cancelled(f, z, 5);
	fix_commit_close(f);
	fix_open_keep(f, 0);
	shows_cancelled(f, z, 5);
	assert_null(read_index(f, z, 6));
}

/* An array whose row is from before schema 16 (dropped NULL): its next
 * start counts its dropped indices from its rows and records them, and
 * retain may delete the rows after. */
static void test_retain_array_from_before(void **ts)
{
	struct fix *f = *ts;
	uint64_t x, y, z;
	sqlite3 *db;

	three_arrays(f, &x, &y, &z);
	fix_commit_close(f);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE arrays SET dropped = NULL", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	fix_open_keep(f, 0);
	check_three(f, x, y, z);
	fix_commit(f);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM arrays WHERE dropped IS NULL"), 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM arrays WHERE dropped = '5'"), 1);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	fix_commit(f);
	prune(f, 500);
	fix_commit_close(f);
	fix_open_keep(f, 0);
	check_three(f, x, y, z);
	fix_commit(f);
}

/* ---------------------------------------------------------------- hpq acct */

struct acct_read {
	int done;
	size_t n;
	bool truncated, more;
	struct store_acct_pos next;
	struct {
		uint64_t id, array_id;
		char state[16], dropped[32], reason[32];
		int64_t start_ms, end_ms;
		uint32_t attempts;
	} v[8];
};

static void on_acct(void *arg, int status, const struct store_acct_list *l)
{
	struct acct_read *r = arg;

	r->done = status == 0 && !l->error ? 1 : -1;
	if (r->done < 0)
		return;
	assert_true(l->n <= 8);
	r->n = l->n;
	r->truncated = l->truncated;
	r->more = l->more;
	r->next = l->next;
	for (size_t i = 0; i < l->n; i++) {
		r->v[i].id = l->v[i].id;
		r->v[i].array_id = l->v[i].array_id;
		snprintf(r->v[i].state, sizeof(r->v[i].state), "%s", l->v[i].state);
		snprintf(r->v[i].dropped, sizeof(r->v[i].dropped), "%s", l->v[i].dropped);
		snprintf(r->v[i].reason, sizeof(r->v[i].reason), "%s", l->v[i].reason);
		r->v[i].start_ms = l->v[i].start_ms;
		r->v[i].end_ms = l->v[i].end_ms;
		r->v[i].attempts = l->v[i].attempts;
	}
}

/* hpq acct's read with filter q (NULL: everything) */
static struct acct_read *acct_of(struct fix *f, const struct store_acct_filter *q)
{
	static struct acct_read r;
	struct store_acct_filter all = { .limit = 100 };

	memset(&r, 0, sizeof(r));
	store_acct_read(f->s, q ? q : &all, on_acct, &r);
	store_submit(f->s);
	while (!r.done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(r.done, 1);
	return &r;
}

/* The number of hpq acct's records of array x's dropped indices with q,
 * the one there is in *end_ms and its ranges in dropped. */
static size_t dropped_records(struct fix *f, const struct store_acct_filter *q, uint64_t x,
			      int64_t *end_ms, char *dropped)
{
	struct acct_read *r = acct_of(f, q);
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++) {
		if (!r->v[i].dropped[0])
			continue;
		assert_int_equal(r->v[i].id, x);
		assert_int_equal(r->v[i].array_id, x);
		assert_string_equal(r->v[i].state, "CANCELLED");
		assert_string_equal(r->v[i].reason, "cancelled while pending");
		assert_int_equal(r->v[i].start_ms, 0);
		assert_int_equal(r->v[i].attempts, 0);
		if (end_ms)
			*end_ms = r->v[i].end_ms;
		if (dropped)
			strcpy(dropped, r->v[i].dropped);
		n++;
	}
	return n;
}

/*
 * hpq acct shows an array's indices that a cancel dropped before they had
 * tasks of their own, as sacct shows an array's cancelled pending rest:
 * one record (ID_[RANGES]) CANCELLED, never started, ending when they were
 * dropped (the newest drop's event; the newest end of the array's tasks
 * once [events] retain deleted that), after the array's first task. The
 * filters hold for it: state, user, team, name, the period, the limit.
 * It stays through a restart and the array leaving memory; [tasks]
 * retain keeps the array's first task while the drop is younger than it
 * keeps tasks (once hpq show ID_INDEX of a dropped index was not found
 * and the record was gone as soon as the first task was old enough),
 * then both go.
 */
static void test_acct_dropped_indices(void **ts)
{
	struct fix *f = *ts;
	struct store_acct_filter q = { .limit = 100 };
	struct acct_read *r;
	char id[48], dropped[32], sql[128];
	int64_t mid, end, ev;
	uint64_t s;
	sqlite3 *db;

	fix_cpu_node(&f->st, "n1", 4);
	s = submit(f, "0-9%1", "", NULL)->st.id;
	assert_int_equal(fix_cycle(&f->st), 1);
	index_exit(f, s, 0, 0);
	assert_int_equal(fix_cycle(&f->st), 1);
	/* what ended before this ended before the cancel */
	mid = hpq_now_ms();
	while (hpq_now_ms() <= mid + 1)
		;
	snprintf(id, sizeof(id), "%llu_[5-7]", (unsigned long long)s);
	cancel_id(f, id);
	fix_commit(f);

	/* index 0, then the dropped 5-7; 1 still runs */
	r = acct_of(f, NULL);
	assert_int_equal(r->n, 2);
	assert_int_equal(r->v[0].id, s);
	assert_string_equal(r->v[0].state, "COMPLETED");
	assert_string_equal(r->v[0].dropped, "");
	assert_int_equal(dropped_records(f, NULL, s, &end, dropped), 1);
	assert_string_equal(dropped, "5-7");
	ev = count_rows(f, "SELECT max(time) FROM events WHERE kind = 'cancel'");
	assert_true(ev > mid);
	assert_int_equal(end, ev);
	/* hpq show of one of them ends then too */
	{
		struct task *t = read_index(f, s, 6);

		assert_non_null(t);
		assert_int_equal(t->end_ms, end);
		state_task_free(t);
	}

	/* the filters */
	q.states = ",CANCELLED,";
	assert_int_equal(acct_of(f, &q)->n, 1);
	assert_int_equal(dropped_records(f, &q, s, NULL, NULL), 1);
	q.states = ",COMPLETED,FAILED,";
	assert_int_equal(acct_of(f, &q)->n, 1);
	assert_int_equal(dropped_records(f, &q, s, NULL, NULL), 0);
	q.states = NULL;
	q.user = "bob";
	assert_int_equal(acct_of(f, &q)->n, 0);
	q.user = "alice";
	assert_int_equal(dropped_records(f, &q, s, NULL, NULL), 1);
	q.user = NULL;
	q.team = "nobody";
	assert_int_equal(acct_of(f, &q)->n, 0);
	q.team = NULL;
	q.name = "nothing";
	assert_int_equal(acct_of(f, &q)->n, 0);
	q.name = NULL;
	q.since_ms = end + 1;
	assert_int_equal(acct_of(f, &q)->n, 0);
	q.since_ms = end;
	assert_int_equal(acct_of(f, &q)->n, 1);
	assert_int_equal(dropped_records(f, &q, s, NULL, NULL), 1);
	q.since_ms = 0;
	q.until_ms = end;
	assert_int_equal(acct_of(f, &q)->n, 1);
	assert_int_equal(dropped_records(f, &q, s, NULL, NULL), 0);
	q.until_ms = 0;
	q.limit = 1;
	r = acct_of(f, &q);
	assert_int_equal(r->n, 1);
	assert_true(r->truncated);
	assert_string_equal(r->v[0].dropped, "5-7");
	q.limit = 100;

	/* 1 ends, 2 is the head: a cancel of the array cancels it and drops
	 * the rest, one record still, ending at the newest drop */
	index_exit(f, s, 1, 0);
	cancel_array(f, s);
	fix_commit(f);
	assert_int_equal(dropped_records(f, NULL, s, &end, dropped), 1);
	assert_string_equal(dropped, "3-9");
	snprintf(sql, sizeof(sql), "SELECT max(time) FROM events WHERE kind = 'cancel' AND"
		 " task_id = %llu", (unsigned long long)s);
	ev = count_rows(f, sql);
	assert_int_equal(end, ev);
	assert_int_equal(acct_of(f, NULL)->n, 4);

	/* [events] retain deleted the events; a restart; out of memory */
	fix_commit_close(f);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM events", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	fix_open_keep(f, 0);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_null(array_find(&f->st, s));
	fix_commit(f);
	assert_int_equal(dropped_records(f, NULL, s, &end, dropped), 1);
	assert_string_equal(dropped, "3-9");
	assert_int_equal(end, count_rows(f, "SELECT max(end_time) FROM tasks"));
	assert_true(end > mid);

	/* The first task ended before mid, its dropped indices after: retain
	 * of what ended before mid keeps it, and what it answers for. */
	submit(f, "", "", NULL);
	assert_int_equal(prune_before(f, mid + 1, 500), 0);
	assert_int_equal(dropped_records(f, NULL, s, NULL, NULL), 1);
	shows_cancelled(f, s, 5);
	/* Retain of what ended before now takes it, and the record. */
	assert_int_equal(prune(f, 500), 3);
	assert_int_equal(dropped_records(f, NULL, s, NULL, NULL), 0);
	assert_int_equal(acct_of(f, NULL)->n, 0);
}

/*
 * hpq acct streamed reads forward a page at a time: the pages, each from
 * where the last one said the next starts, are the whole read's records
 * in its order, each once, wherever a page ends: between an array's
 * first task and its dropped record too. With newest, they start where
 * the newest records do, and truncated says that older ones were left.
 */
static void test_acct_pages(void **ts)
{
	struct fix *f = *ts;
	struct store_acct_filter p;
	struct acct_read *r;
	struct store_acct_pos whole[8] = { { 0, false } };
	char id[48];
	size_t n, got;
	uint64_t s;

	fix_cpu_node(&f->st, "n1", 4);
	s = submit(f, "0-9%1", "", NULL)->st.id;
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(fix_cycle(&f->st), 1);
		index_exit(f, s, i, 0);
	}
	snprintf(id, sizeof(id), "%llu_[6-8]", (unsigned long long)s);
	cancel_id(f, id);
	fix_commit(f);

	r = acct_of(f, NULL);
	n = r->n;
	assert_int_equal(n, 5);                 /* indices 0-3, then 6-8 dropped */
	for (size_t i = 0; i < n; i++)
		whole[i] = (struct store_acct_pos){ r->v[i].id, r->v[i].dropped[0] != 0 };
	assert_int_equal(whole[0].id, s);
	assert_int_equal(whole[1].id, s);
	assert_true(whole[1].dropped);

	for (uint32_t page = 1; page <= n + 1; page++) {
		p = (struct store_acct_filter){ .limit = page, .forward = true };
		got = 0;
		for (;;) {
			r = acct_of(f, &p);
			assert_true(r->n <= page);
			assert_false(r->truncated);
			for (size_t i = 0; i < r->n; i++, got++) {
				assert_true(got < n);
				assert_int_equal(r->v[i].id, whole[got].id);
				assert_int_equal(r->v[i].dropped[0] != 0, whole[got].dropped);
			}
			if (!r->more)
				break;
			assert_int_equal(r->n, page);
			p.from = r->next;
		}
		assert_int_equal(got, n);
	}

	/* the newest 4: from the dropped record on */
	p = (struct store_acct_filter){ .limit = 100, .forward = true, .newest = 4 };
	r = acct_of(f, &p);
	assert_int_equal(r->n, 4);
	assert_true(r->truncated);
	assert_false(r->more);
	assert_int_equal(r->v[0].id, s);
	assert_string_equal(r->v[0].dropped, "6-8");
	/* as many as there are, or more: all, none left out */
	p.newest = 5;
	r = acct_of(f, &p);
	assert_int_equal(r->n, 5);
	assert_false(r->truncated);
	p.newest = 50;
	assert_int_equal(acct_of(f, &p)->n, 5);
	/* the filters hold for pages: the completed ones, two at a time */
	p = (struct store_acct_filter){ .limit = 2, .forward = true, .states = ",COMPLETED," };
	r = acct_of(f, &p);
	assert_int_equal(r->n, 2);
	assert_true(r->more);
	p.from = r->next;
	r = acct_of(f, &p);
	assert_int_equal(r->n, 2);
	assert_false(r->more);
	assert_int_equal(r->v[1].id, whole[4].id);
	/* nothing in the period: one empty page */
	p = (struct store_acct_filter){ .limit = 2, .forward = true, .since_ms = INT64_MAX / 2 };
	r = acct_of(f, &p);
	assert_int_equal(r->n, 0);
	assert_false(r->more);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_env_stays_in_store, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_index_script_after_restart, setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_env_holds, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_env_holds_array, setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(test_evict_bound, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_evict_show_depend, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_array_survives, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_retain_batches, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_retain_keeps_how_it_ended, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_retain_keeps_counts, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_retain_array_outcomes, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_retain_running_array, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_retain_array_from_before, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_show_dropped_index, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_restart_leaves_ended_arrays, setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(test_retain_prunes_arrays, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_sweep_takes_last_array, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_acct_dropped_indices, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_acct_pages, setup, fix_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
