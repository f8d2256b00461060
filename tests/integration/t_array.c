/*
 * t_array: arrays, hold and release, and dependencies with real processes,
 * the requests built in C (TaskSpec.array, .hold, .dependency,
 * .kill_on_invalid_dep; HoldRequest; CancelRequest.select).
 *
 *   - array_limit: 0-11%2 on a node with room for 4: every index runs
 *     exactly once, and never more than 2 at a time (each index marks
 *     itself running in a directory and records how many it sees there);
 *     each index's task carries its array id and index, and when the
 *     agent sets HPQ_ARRAY_INDEX each saw its own;
 *   - hold_release: a task submitted held does not start while the
 *     dispatcher runs cycles; another hold is refused for running tasks;
 *     its release starts it; a held array's indices shown one by one
 *     (ID_INDEX) and listed one row each (expand_arrays); cancel of a
 *     whole pending array by selector (its indices that never had a task
 *     shown CANCELLED), and by its plain id (hpq cancel);
 *   - depend_restart: A -> B (afterok) -> C across a daemon restart, then
 *     afternotok (runs after a failure) and afterok with
 *     kill_on_invalid_dep (cancelled, dependency-never-satisfied);
 *   - depend_gone_index: a dependency on an index of an array that ended
 *     and left memory, at submit or by hpq update, is refused when the
 *     array never had that index, or names an index of a plain task, and
 *     taken otherwise, before and after a restart;
 *   - script_restart: hpq show --script of an index without a task prints
 *     its array's script; an index made a task before a restart runs the
 *     stored script after it; attempt 2 of a requeued index runs it with
 *     the same environment;
 *   - long_reply: a job-control reply of 200,000 results streams in
 *     several frames; hpq counts them all;
 *   - acct_dropped: indices a cancel dropped before they were tasks are one
 *     record of hpq acct (ID_[RANGES], CANCELLED, never started) in JSON,
 *     CSV and the table, with its filters (state, user, period), through a
 *     restart; thousands of ranges shown cut;
 *   - acct_stream: hpq acct of 3,000 records comes in pages, each record
 *     once and in order, in JSON, CSV and the table; --limit N gives the
 *     newest N and says more matched; a request that does not stream is
 *     still one frame, and refused above 100,000; a client that leaves in
 *     the middle of a reply leaves hpqd serving.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "client.h"
#include "error.h"
#include "harness.h"
#include "msg.h"

extern char **environ;

static int call(struct h_cluster *c, Hpq__Envelope *env, Hpq__Envelope **reply, char *err,
		size_t errlen)
{
	struct hpq_client cl;
	int r = hpq_client_connect(&cl, c->sock, 30000);

	if (r < 0)
		fail_msg("cannot connect: %s", cl.errbuf);
	r = hpq_client_call(&cl, env, reply);
	if (r < 0 && err)
		snprintf(err, errlen, "%s", cl.errbuf);
	hpq_client_close(&cl);
	return r;
}

/* Submits sh -c cmd with the batch fields; returns the id, 0 on refusal (err). */
static uint64_t submit(struct h_cluster *c, const char *cmd, const char *array, bool hold,
		       const char *dep, bool kill, char *err, size_t errlen)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__SubmitRequest req = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	char *argv[] = { "sh", "-c", (char *)cmd };
	size_t nenv = 0;
	uint64_t id = 0;

	while (environ[nenv])
		nenv++;
	res.cpus = 1;
	spec.per_node = &res;
	spec.n_argv = 3;
	spec.argv = argv;
	spec.n_env = nenv;
	spec.env = environ;     /* HPQ_ITEST_DIR: the teardown finds the tasks */
	spec.cwd = c->dir;
	spec.array = (char *)array;
	spec.hold = hold;
	spec.dependency = (char *)dep;
	spec.kill_on_invalid_dep = kill;
	req.spec = &spec;
	env.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	env.submit = &req;
	if (call(c, &env, &reply, err, errlen) == 0) {
		if (reply->body_case == HPQ__ENVELOPE__BODY_SUBMIT_REPLY)
			id = reply->submit_reply->id;
		hpq_msg_free(reply);
	}
	return id;
}

/* The tasks of an array (materialized), and its pending rest's spec. */
struct arr {
	uint64_t ids[64];
	uint32_t index[64];
	char state[64][16];
	int n;
	char rest[64];
};

static int control(struct h_cluster *c, bool cancel, bool release, const char *id,
		   Hpq__Envelope **reply);

static void list_array(struct h_cluster *c, uint64_t array_id, struct arr *a)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__ListRequest req = HPQ__LIST_REQUEST__INIT;

	memset(a, 0, sizeof(*a));
	req.array_id = array_id;
	env.body_case = HPQ__ENVELOPE__BODY_LIST;
	env.list = &req;
	assert_int_equal(call(c, &env, &reply, NULL, 0), 0);
	for (size_t i = 0; i < reply->list_reply->n_tasks; i++) {
		const Hpq__Task *t = reply->list_reply->tasks[i];

		assert_true(t->has_array);
		assert_int_equal(t->array_id, array_id);
		if (*t->array_spec) {
			snprintf(a->rest, sizeof(a->rest), "%s", t->array_spec);
			continue;
		}
		if (a->n < 64) {
			a->ids[a->n] = t->id;
			a->index[a->n] = t->array_index;
			snprintf(a->state[a->n], sizeof(a->state[0]), "%s", t->state);
			a->n++;
		}
	}
	hpq_msg_free(reply);
}

static int completed(struct h_cluster *c, uint64_t array_id)
{
	struct arr a;
	int n = 0;

	list_array(c, array_id, &a);
	for (int i = 0; i < a.n; i++)
		n += !strcmp(a.state[i], "COMPLETED");
	return n;
}

static void array_limit(void **state)
{
	struct h_cluster *c = *state;
	char cmd[1024], err[256] = "";
	uint64_t id;
	struct arr a;
	bool seen[12] = { false };
	char *maxes, *idx;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 4, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));
	mkdir(h_path(c, "run"), 0755);

	/* Bad specs are refused and make nothing. */
	assert_int_equal(submit(c, "true", "0-5000000", false, "", false, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "indices go from 0 to"));
	assert_int_equal(submit(c, "true", "3-1", false, "", false, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "goes down"));

	/* Each index: mark itself running, count the running, work a little, unmark. */
	snprintf(cmd, sizeof(cmd),
		 "touch %1$s/$HPQ_TASK_ID; ls %1$s | wc -l >> %2$s;"
		 " echo \"$HPQ_TASK_ID ${HPQ_ARRAY_INDEX:-}\" >> %3$s;"
		 " sleep 0.3; rm %1$s/$HPQ_TASK_ID",
		 h_path(c, "run"), h_path(c, "max"), h_path(c, "idx"));
	id = submit(c, cmd, "0-11%2", true, "", false, err, sizeof(err));
	if (!id)
		fail_msg("array submit: %s", err);
	/* Held: its first index and its rest wait; released, it runs. */
	list_array(c, id, &a);
	assert_string_equal(a.rest, "1-11%2");
	assert_int_equal(a.n, 1);
	assert_string_equal(a.state[0], "PENDING");
	{
		Hpq__Envelope *reply;
		char ids[32];

		snprintf(ids, sizeof(ids), "%" PRIu64, id);
		assert_int_equal(control(c, false, true, ids, &reply), 0);
		hpq_msg_free(reply);
	}
	assert_true(H_WAIT_FOR(c, completed(c, id) == 12, 90000));

	list_array(c, id, &a);
	assert_int_equal(a.n, 12);
	assert_string_equal(a.rest, "");
	for (int i = 0; i < a.n; i++) {
		assert_true(a.index[i] < 12);
		assert_false(seen[a.index[i]]);
		seen[a.index[i]] = true;
	}
	maxes = h_read_file(h_path(c, "max"));
	assert_non_null(maxes);
	for (char *p = maxes; *p; p++)
		if (*p >= '0' && *p <= '9' && atoi(p) > 2)
			fail_msg("more than 2 indices ran at once: %s", maxes);
	free(maxes);
	assert_int_equal(h_count_prefix(h_path(c, "idx"), ""), 12);
	/* Where the agent sets HPQ_ARRAY_INDEX, each saw its own. */
	idx = h_read_file(h_path(c, "idx"));
	for (char *line = strtok(idx, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long tid;
		int k = -1;

		if (sscanf(line, "%llu %d", &tid, &k) == 2)
			for (int i = 0; i < a.n; i++)
				if (a.ids[i] == tid)
					assert_int_equal(a.index[i], k);
	}
	free(idx);
	h_pass(c);
}

static int control(struct h_cluster *c, bool cancel, bool release, const char *id,
		   Hpq__Envelope **reply)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__HoldRequest hold = HPQ__HOLD_REQUEST__INIT;
	Hpq__CancelRequest can = HPQ__CANCEL_REQUEST__INIT;
	Hpq__TaskSelector sel = HPQ__TASK_SELECTOR__INIT;
	char *ids[] = { (char *)id };

	sel.n_ids = 1;
	sel.ids = ids;
	if (cancel) {
		can.select = &sel;
		env.body_case = HPQ__ENVELOPE__BODY_CANCEL;
		env.cancel = &can;
	} else {
		hold.select = &sel;
		hold.release = release;
		env.body_case = HPQ__ENVELOPE__BODY_HOLD;
		env.hold = &hold;
	}
	return call(c, &env, reply, NULL, 0);
}

static int first_code(Hpq__Envelope *reply)
{
	Hpq__CancelResult **r = reply->body_case == HPQ__ENVELOPE__BODY_CONTROL_REPLY
					? reply->control_reply->results
					: reply->cancel_reply->results;
	size_t n = reply->body_case == HPQ__ENVELOPE__BODY_CONTROL_REPLY
			   ? reply->control_reply->n_results
			   : reply->cancel_reply->n_results;

	return n ? r[0]->code : 1;
}

/* hpq show ARRAY_INDEX: the index's task, or the template while pending. */
static void show_index(struct h_cluster *c, uint64_t array_id, uint32_t index,
		       const char *state, const char *reason)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__ShowRequest req = HPQ__SHOW_REQUEST__INIT;
	const Hpq__Task *t;

	req.id = array_id;
	req.array_index = index;
	req.has_array_index = true;
	env.body_case = HPQ__ENVELOPE__BODY_SHOW;
	env.show = &req;
	assert_int_equal(call(c, &env, &reply, NULL, 0), 0);
	t = reply->show_reply->task;
	assert_true(t->has_array);
	assert_int_equal(t->array_id, array_id);
	assert_int_equal(t->array_index, index);
	assert_string_equal(t->state, state);
	assert_string_equal(t->reason, reason);
	hpq_msg_free(reply);
	req.array_index = 100000;
	assert_true(call(c, &env, &reply, NULL, 0) < 0);
}

/* Rows of an array's list with expand_arrays: one per index. */
static size_t expanded(struct h_cluster *c, uint64_t array_id)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__ListRequest req = HPQ__LIST_REQUEST__INIT;
	size_t n;

	req.array_id = array_id;
	req.expand_arrays = true;
	env.body_case = HPQ__ENVELOPE__BODY_LIST;
	env.list = &req;
	assert_int_equal(call(c, &env, &reply, NULL, 0), 0);
	n = reply->list_reply->n_tasks;
	for (size_t i = 0; i < n; i++)
		assert_string_equal(reply->list_reply->tasks[i]->array_spec, "");
	hpq_msg_free(reply);
	return n;
}

static void hold_release(void **state)
{
	struct h_cluster *c = *state;
	Hpq__Envelope *reply;
	char err[256], ids[32], cmd[256];
	uint64_t held, running, arr, other;
	json_t *t;
	long long cycles;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));

	held = submit(c, "true", "", true, "", false, err, sizeof(err));
	assert_true(held > 0);
	snprintf(cmd, sizeof(cmd), "while [ ! -f %s ]; do sleep 0.1; done", h_path(c, "go"));
	running = submit(c, cmd, "", false, "", false, err, sizeof(err));
	assert_true(h_wait_state(c, running, "RUNNING", 30000));
	/* The dispatcher runs (another task starts and ends), the held one stays. */
	cycles = h_status_counter(c, "cycles");
	other = submit(c, "true", "", false, "", false, err, sizeof(err));
	assert_true(h_wait_state(c, other, "COMPLETED", 30000));
	assert_true(h_wait_counter(c, "cycles", cycles + 1, 30000));
	t = h_task(c, held);
	assert_string_equal(h_str(t, "state"), "PENDING");
	assert_string_equal(h_str(t, "reason"), "held");
	json_decref(t);

	snprintf(ids, sizeof(ids), "%" PRIu64, running);
	assert_int_equal(control(c, false, false, ids, &reply), 0);
	assert_true(first_code(reply) < 0);     /* running: not pending */
	hpq_msg_free(reply);
	snprintf(ids, sizeof(ids), "%" PRIu64, held);
	assert_int_equal(control(c, false, true, ids, &reply), 0);
	assert_int_equal(first_code(reply), 0);
	hpq_msg_free(reply);
	assert_true(h_wait_state(c, held, "COMPLETED", 30000));

	/* A whole array held, then cancelled by its id: nothing of it runs. */
	arr = submit(c, "true", "0-99", true, "", false, err, sizeof(err));
	assert_true(arr > 0);
	show_index(c, arr, 5, "PENDING", "held");
	show_index(c, arr, 0, "PENDING", "held");
	assert_int_equal(expanded(c, arr), 100);
	snprintf(ids, sizeof(ids), "%" PRIu64, arr);
	assert_int_equal(control(c, true, false, ids, &reply), 0);
	assert_int_equal(first_code(reply), 0);
	hpq_msg_free(reply);
	assert_true(h_wait_state(c, arr, "CANCELLED", 30000));
	{
		struct arr a;

		list_array(c, arr, &a);
		assert_string_equal(a.rest, "");
		assert_int_equal(a.n, 1);
	}
	/* Its indices that never had a task show as cancelled too. */
	show_index(c, arr, 5, "CANCELLED", "cancelled while pending");
	/* Cancelled by its plain id, as hpq cancel sends one: the same. */
	arr = submit(c, "true", "0-99", true, "", false, err, sizeof(err));
	assert_true(arr > 0);
	assert_int_equal(h_hpq(c, NULL, "cancel", h_id(arr), NULL), 0);
	assert_true(h_wait_state(c, arr, "CANCELLED", 30000));
	{
		struct arr a;

		list_array(c, arr, &a);
		assert_string_equal(a.rest, "");
		assert_int_equal(a.n, 1);
	}
	h_write_file(h_path(c, "go"), "");
	assert_true(h_wait_state(c, running, "COMPLETED", 30000));
	h_pass(c);
}

static void depend_restart(void **state)
{
	struct h_cluster *c = *state;
	char cmd[256], dep[64], err[256] = "";
	uint64_t a, b, cc, d, e, f;
	json_t *t;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 4, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));

	assert_int_equal(submit(c, "true", "", false, "afterok:999", false, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "no task 999"));
	assert_int_equal(submit(c, "true", "", false, "afterok", false, err, sizeof(err)), 0);

	snprintf(cmd, sizeof(cmd), "while [ ! -f %s ]; do sleep 0.1; done", h_path(c, "go"));
	a = submit(c, cmd, "", false, "", false, err, sizeof(err));
	snprintf(dep, sizeof(dep), "afterok:%" PRIu64, a);
	b = submit(c, "true", "", false, dep, false, err, sizeof(err));
	snprintf(dep, sizeof(dep), "afterok:%" PRIu64, b);
	cc = submit(c, "true", "", false, dep, false, err, sizeof(err));
	assert_true(a && b && cc);
	assert_true(h_wait_state(c, a, "RUNNING", 30000));
	t = h_task(c, cc);
	assert_string_equal(h_str(t, "reason"), "dependency");
	json_decref(t);

	/* hpqd restarts while B and C wait. */
	assert_int_equal(h_daemon_stop(c, SIGTERM), 0);
	h_daemon_start(c);
	assert_true(h_wait_nodes(c, 1, 30000));
	t = h_task(c, b);
	assert_string_equal(h_str(t, "state"), "PENDING");
	assert_string_equal(h_str(t, "reason"), "dependency");
	json_decref(t);
	h_write_file(h_path(c, "go"), "");
	assert_true(h_wait_state(c, cc, "COMPLETED", 60000));
	assert_true(h_wait_state(c, b, "COMPLETED", 1000));

	/* D fails: E (afterok, kill) is cancelled, F (afternotok) runs. */
	d = submit(c, "exit 3", "", true, "", false, err, sizeof(err));
	snprintf(dep, sizeof(dep), "afterok:%" PRIu64, d);
	e = submit(c, "true", "", false, dep, true, err, sizeof(err));
	snprintf(dep, sizeof(dep), "afternotok:%" PRIu64, d);
	f = submit(c, "true", "", false, dep, false, err, sizeof(err));
	assert_true(d && e && f);
	{
		Hpq__Envelope *reply;
		char ids[32];

		snprintf(ids, sizeof(ids), "%" PRIu64, d);
		assert_int_equal(control(c, false, true, ids, &reply), 0);
		hpq_msg_free(reply);
	}
	assert_true(h_wait_state(c, d, "FAILED", 30000));
	assert_true(h_wait_state(c, e, "CANCELLED", 30000));
	t = h_task(c, e);
	assert_string_equal(h_str(t, "reason"), "dependency-never-satisfied");
	json_decref(t);
	assert_true(h_wait_state(c, f, "COMPLETED", 30000));
	h_pass(c);
}

/* How many tasks hpqd holds in memory (hpq list --all). */
static size_t in_memory(struct h_cluster *c)
{
	json_t *all = h_tasks(c);
	size_t n = json_array_size(all);

	json_decref(all);
	return n;
}

/*
 * A dependency on an index of an array that ended and left memory is
 * checked against what the store kept of it, as one on an array still in
 * memory is: an index it never had is refused (it would otherwise count
 * as completed, and the task run at once), as is an index of a plain
 * task; a real index is taken and met. The same after a restart.
 */
static void depend_gone_index(void **state)
{
	struct h_cluster *c = *state;
	char dep[64], err[256] = "", want[96], field[96];
	struct h_out o;
	uint64_t a, p, b;

	h_daemon_config(c, "[tasks]\nkeep_finished = 0\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 4, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));
	a = submit(c, "true", "0-2", false, "", false, err, sizeof(err));
	p = submit(c, "true", "", false, "", false, err, sizeof(err));
	assert_true(a && p);
	assert_true(h_wait_state(c, p, "COMPLETED", 30000));
	if (!H_WAIT_FOR(c, in_memory(c) == 0, 60000))
		fail_msg("the ended tasks did not leave hpqd's memory");

	for (int round = 0; round < 2; round++) {
		snprintf(dep, sizeof(dep), "afterok:%" PRIu64 "_99999", a);
		err[0] = '\0';
		assert_int_equal(submit(c, "true", "", false, dep, false, err, sizeof(err)), 0);
		snprintf(want, sizeof(want), "array %" PRIu64 " has no index 99999", a);
		if (!strstr(err, want))
			fail_msg("%s: '%s', not '%s'", dep, err, want);
		snprintf(dep, sizeof(dep), "afterok:%" PRIu64 "_0", p);
		err[0] = '\0';
		assert_int_equal(submit(c, "true", "", false, dep, false, err, sizeof(err)), 0);
		snprintf(want, sizeof(want), "no array %" PRIu64, p);
		if (!strstr(err, want))
			fail_msg("%s: '%s', not '%s'", dep, err, want);
		/* One term of several is enough to refuse it. */
		snprintf(dep, sizeof(dep), "afterok:%" PRIu64 "_1:%" PRIu64 "_7", a, a);
		assert_int_equal(submit(c, "true", "", false, dep, false, err, sizeof(err)), 0);
		/* hpq update of a held task's dependency: the same. */
		b = submit(c, "true", "", true, "", false, err, sizeof(err));
		assert_true(b != 0);
		snprintf(field, sizeof(field), "dependency=afterok:%" PRIu64 "_99999", a);
		assert_int_not_equal(h_hpq(c, &o, "update", h_id(b), field, NULL), 0);
		snprintf(want, sizeof(want), "array %" PRIu64 " has no index 99999", a);
		if (!strstr(o.err, want))
			fail_msg("update %s: '%s', not '%s'", field, o.err, want);
		h_out_free(&o);
		snprintf(field, sizeof(field), "dependency=afterok:%" PRIu64 "_1", a);
		if (h_hpq(c, &o, "update", h_id(b), field, NULL) != 0)
			fail_msg("update %s: %s", field, o.err);
		h_out_free(&o);
		assert_int_equal(h_hpq(c, NULL, "cancel", h_id(b), NULL), 0);

		snprintf(dep, sizeof(dep), "afterok:%" PRIu64 "_2", a);
		b = submit(c, "true", "", false, dep, false, err, sizeof(err));
		if (!b)
			fail_msg("%s refused: %s", dep, err);
		assert_true(h_wait_state(c, b, "COMPLETED", 30000));
		if (!H_WAIT_FOR(c, in_memory(c) == 0, 60000))
			fail_msg("task %" PRIu64 " did not leave hpqd's memory", b);
		if (!round) {
			assert_int_equal(h_daemon_stop(c, SIGTERM), 0);
			h_daemon_start(c);
			assert_true(h_wait_nodes(c, 1, 30000));
		}
	}
	h_pass(c);
}

/* Task id's first attempt is over: it waits in the queue or runs again. */
static bool requeued(struct h_cluster *c, uint64_t id)
{
	json_t *t = h_task(c, id);
	bool r = !strcmp(h_str(t, "state"), "PENDING") || h_int(t, "attempts") >= 2;

	json_decref(t);
	return r;
}

/*
 * A batch script array: `hpq show --script` of an index that has no task
 * yet prints the array's script; an index made a task before a restart
 * (the head that waits) runs the stored script after it, as the others
 * do, though the file it was submitted from is gone; an index requeued
 * after the restart runs it again, in attempt 2, with its environment.
 */
static void script_restart(void **state)
{
	struct h_cluster *c = *state;
	const char *path = h_path(c, "job.sh");
	char script[512], idx[48], *out;
	struct h_out o;
	struct arr arr;
	uint64_t a;

	snprintf(script, sizeof(script),
		 "#!/bin/sh\necho start $HPQ_ATTEMPT $HPQ_SPEC_VAR >> %s/idx.$HPQ_ARRAY_INDEX\n"
		 "while [ ! -f %s ]; do sleep 0.1; done\n"
		 "echo end >> %s/idx.$HPQ_ARRAY_INDEX\n", c->dir, h_path(c, "go"), c->dir);
	h_write_file(path, script);
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 1, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));
	if (h_hpq(c, &o, "submit", "--array", "0-2", "--cpus", "1", "--chdir", c->dir,
		  "--export", "ALL,HPQ_SPEC_VAR=kept", path, NULL) != 0)
		fail_msg("hpq submit %s: %s", path, o.err);
	a = h_parse_id(o.out);
	h_out_free(&o);
	unlink(path);

	snprintf(idx, sizeof(idx), "%" PRIu64 "_2", a);
	assert_int_equal(h_hpq(c, &o, "show", idx, "--script", NULL), 0);
	if (strcmp(o.out, script))
		fail_msg("hpq show --script %s printed '%s'", idx, o.out);
	h_out_free(&o);

	/* Index 0 runs; index 1 waits as a task of its own. */
	if (!H_WAIT_FOR(c, (list_array(c, a, &arr), arr.n == 2), 30000))
		fail_msg("array %" PRIu64 " has %d tasks, not 2", a, arr.n);
	assert_int_equal(h_daemon_stop(c, SIGTERM), 0);
	h_daemon_start(c);
	assert_true(h_wait_nodes(c, 1, 30000));
	/* Index 0, adopted, is requeued: its attempt 2 runs the same script
	 * with the same environment. */
	snprintf(idx, sizeof(idx), "%" PRIu64 "_0", a);
	assert_int_equal(h_hpq(c, NULL, "requeue", idx, NULL), 0);
	if (!H_WAIT_FOR(c, requeued(c, a), 60000))
		fail_msg("%s was not requeued", idx);
	h_write_file(h_path(c, "go"), "");
	if (!H_WAIT_FOR(c, completed(c, a) == 3, 60000)) {
		list_array(c, a, &arr);
		for (int i = 0; i < arr.n; i++)
			fprintf(stderr, "index %u: %s\n", arr.index[i], arr.state[i]);
		fail_msg("array %" PRIu64 " did not complete", a);
	}
	for (int i = 0; i < 3; i++) {
		out = h_read_file(h_path(c, "idx.%d", i));
		if (!out || strcmp(out, i ? "start 1 kept\nend\n"
					  : "start 1 kept\nstart 2 kept\nend\n"))
			fail_msg("index %d wrote '%s'", i, out ? out : "(nothing)");
		free(out);
	}
	h_pass(c);
}

/*
 * A job-control reply longer than a frame: a requeue of 200,000 pending
 * indices, none of which runs, answers for each (about 11 MB of results),
 * in frames of at most HPQ_FRAME_MAX, each but the last with `more`, when
 * the request asks for a stream; hpq counts every one.
 */
static void long_reply(void **state)
{
	struct h_cluster *c = *state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__RequeueRequest req = HPQ__REQUEUE_REQUEST__INIT;
	Hpq__TaskSelector sel = HPQ__TASK_SELECTOR__INIT;
	struct hpq_client cl;
	char err[256], id[64], *ids[] = { id };
	size_t frames = 0, results = 0;
	uint64_t arr;
	struct h_out o;
	bool more;

	h_daemon_start(c);
	arr = submit(c, "true", "0-199999", true, "", false, err, sizeof(err));
	assert_true(arr > 0);
	snprintf(id, sizeof(id), "%" PRIu64 "_[0-199999]", arr);
	sel.n_ids = 1;
	sel.ids = ids;
	req.select = &sel;
	req.stream = true;
	env.body_case = HPQ__ENVELOPE__BODY_REQUEUE;
	env.requeue = &req;
	if (hpq_client_connect(&cl, c->sock, 30000) < 0)
		fail_msg("cannot connect: %s", cl.errbuf);
	if (hpq_client_call(&cl, &env, &reply) != 0)
		fail_msg("requeue: %s", cl.errbuf);
	do {
		Hpq__ControlReply *r = reply->control_reply;

		assert_int_equal(reply->body_case, HPQ__ENVELOPE__BODY_CONTROL_REPLY);
		for (size_t i = 0; i < r->n_results; i++) {
			assert_int_equal(r->results[i]->code, HPQ_ESTATE);
			assert_int_equal(r->results[i]->id, arr);
		}
		results += r->n_results;
		frames++;
		more = r->more;
		hpq_msg_free(reply);
		reply = NULL;
		if (more && hpq_client_next(&cl, env.id, &reply) != 0)
			fail_msg("frame %zu of the requeue's reply: %s", frames + 1, cl.errbuf);
	} while (more);
	hpq_client_close(&cl);
	assert_int_equal(results, 200000);
	if (frames < 2)
		fail_msg("200,000 results came in %zu frame", frames);

	/* hpq asks for the stream: every failure counted, the exit status 1. */
	assert_int_not_equal(h_hpq(c, &o, "requeue", id, NULL), 0);
	if (!strstr(o.out, "requeued 0 tasks, 200000 failed"))
		fail_msg("hpq requeue %s: %s", id, o.out);
	/* The array's first task says why for itself, and the pending
	 * indices are one line that counts them, not 199,999 alike. */
	{
		size_t lines = 0;

		for (const char *p = o.err; (p = strchr(p, '\n')); p++)
			lines++;
		if (lines != 2 || !strstr(o.err, "pending indices are not running (the same for "
					      "199998 more)\n"))
			fail_msg("hpq requeue %s said: %.400s", id, o.err);
	}
	h_out_free(&o);
	/* Nothing changed. The cancel of them all: the head, index 0, is a
	 * task; the others are one result. */
	assert_int_equal(h_hpq(c, &o, "cancel", id, "--json", NULL), 0);
	if (!strstr(o.out, "\"tasks\": 199999"))
		fail_msg("hpq cancel %s --json: %s", id, o.out);
	h_out_free(&o);
	snprintf(id, sizeof(id), "%" PRIu64 "_199999", arr);
	assert_int_equal(h_hpq(c, &o, "show", id, NULL), 0);
	if (!strstr(o.out, "CANCELLED"))
		fail_msg("hpq show %s: %s", id, o.out);
	h_out_free(&o);
	h_pass(c);
}

/* The row of hpq acct --json (with args) whose task is task, or NULL. */
static json_t *acct_row(struct h_cluster *c, const char *task, const char *a1, const char *a2)
{
	json_t *j = h_hpq_json(c, "acct", a1, a2, NULL), *row, *found = NULL;
	size_t i;

	assert_non_null(j);
	json_array_foreach(j, i, row)
		if (!strcmp(h_str(row, "task"), task))
			found = json_incref(row);
	json_decref(j);
	return found;
}

/* The last record hpq acct --state cancelled has of indices a cancel
 * dropped (the one with an array_spec); fails the test without one. */
static json_t *dropped_record(struct h_cluster *c)
{
	json_t *j = h_hpq_json(c, "acct", "--state", "cancelled", NULL), *r, *row = NULL;
	size_t i;

	json_array_foreach(j, i, r)
		if (json_is_string(json_object_get(r, "array_spec")))
			row = r;
	row = json_incref(row);
	json_decref(j);
	if (!row)
		fail_msg("hpq acct --state cancelled has no record of dropped indices");
	return row;
}

static bool acct_has(struct h_cluster *c, const char *task, const char *a1, const char *a2)
{
	json_t *row = acct_row(c, task, a1, a2);

	json_decref(row);
	return row != NULL;
}

static void acct_dropped(void **state)
{
	struct h_cluster *c = *state;
	char err[256], cmd[256], task[64], ids[64], line[80];
	json_t *row;
	uint64_t arr;
	struct h_out o;
	const char *spec;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));
	snprintf(cmd, sizeof(cmd), "while [ ! -f %s ]; do sleep 0.1; done", h_path(c, "go"));
	arr = submit(c, cmd, "0-4099%1", false, "", false, err, sizeof(err));
	assert_true(arr > 0);
	assert_true(h_wait_state(c, arr, "RUNNING", 30000));
	snprintf(ids, sizeof(ids), "%" PRIu64 "_[5-99]", arr);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);

	/* One record for the 95, as sacct shows an array's cancelled rest. */
	snprintf(task, sizeof(task), "%" PRIu64 "_[5-99]", arr);
	row = acct_row(c, task, NULL, NULL);
	if (!row)
		fail_msg("hpq acct has no record %s", task);
	assert_int_equal(h_int(row, "id"), (long long)arr);
	assert_int_equal(h_int(row, "array_id"), (long long)arr);
	assert_true(json_is_null(json_object_get(row, "array_index")));
	assert_string_equal(h_str(row, "array_spec"), "5-99");
	assert_string_equal(h_str(row, "state"), "CANCELLED");
	assert_string_equal(h_str(row, "reason"), "cancelled while pending");
	assert_true(json_is_null(json_object_get(row, "start_time")));
	assert_true(json_is_string(json_object_get(row, "end_time")));
	assert_int_equal(h_int(row, "elapsed"), 0);
	assert_int_equal(h_int(row, "attempts"), 0);
	json_decref(row);
	/* Its filters: state, user, the period. */
	assert_true(acct_has(c, task, "--state", "cancelled"));
	assert_false(acct_has(c, task, "--state", "completed,failed"));
	assert_false(acct_has(c, task, "--user", "nosuchuser"));
	assert_true(acct_has(c, task, "--since", "1h"));
	assert_false(acct_has(c, task, "--until", "1h"));
	/* CSV and the table name it so too. */
	assert_int_equal(h_hpq(c, &o, "acct", "--csv", "--format", "id,state,elapsed", NULL), 0);
	snprintf(line, sizeof(line), "\n%s,CANCELLED,0\n", task);
	if (!strstr(o.out, line))
		fail_msg("hpq acct --csv has no '%s':\n%s", task, o.out);
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "acct", NULL), 0);
	if (!strstr(o.out, task))
		fail_msg("hpq acct has no '%s':\n%s", task, o.out);
	h_out_free(&o);

	/* Every other index of the rest: thousands of ranges, shown cut. */
	{
		const char *argv[6] = { "cancel" };
		char *lists[4];

		for (int k = 0; k < 4; k++) {
			char *p = lists[k] = malloc(4096);

			p += sprintf(p, "%" PRIu64 "_[", arr);
			for (int i = 0; i < 500; i++)
				p += sprintf(p, "%s%d", i ? "," : "", 100 + 2 * (500 * k + i));
			strcpy(p, "]");
			argv[k + 1] = lists[k];
		}
		if (h_hpqv(c, &o, argv) != 0)
			fail_msg("hpq cancel: %s%s", o.out, o.err);
		h_out_free(&o);
		for (int k = 0; k < 4; k++)
			free(lists[k]);
	}
	/* a restart in between: the store keeps what the record needs */
	assert_int_equal(h_daemon_stop(c, SIGTERM), 0);
	h_daemon_start(c);
	assert_true(h_wait_nodes(c, 1, 30000));
	row = dropped_record(c);
	spec = h_str(row, "array_spec");
	assert_true(!strncmp(spec, "5-100,102,104,", 14));
	assert_true(strlen(spec) <= 4100);
	assert_string_equal(spec + strlen(spec) - 4, ",...");
	json_decref(row);

	/* The rest cancelled with the one that runs. */
	assert_int_equal(h_hpq(c, NULL, "cancel", h_id(arr), NULL), 0);
	assert_true(h_wait_state(c, arr, "CANCELLED", 30000));
	snprintf(task, sizeof(task), "%" PRIu64 "_0", arr);
	assert_true(acct_has(c, task, "--state", "cancelled"));
	row = dropped_record(c);
	/* the gaps filled: one range again */
	assert_string_equal(h_str(row, "array_spec"), "1-4099");
	json_decref(row);
	/* Oldest first, as the table prints them: the record after its
	 * array's first task. */
	{
		json_t *j = h_hpq_json(c, "acct", NULL), *r;
		long long last = 0;
		size_t i, first = SIZE_MAX;

		json_array_foreach(j, i, r) {
			assert_true(h_int(r, "id") >= last);
			last = h_int(r, "id");
			if (!strcmp(h_str(r, "task"), task))
				first = i;
		}
		r = json_array_get(j, first + 1);
		assert_non_null(r);
		assert_true(json_is_string(json_object_get(r, "array_spec")));
		json_decref(j);
	}
	h_write_file(h_path(c, "go"), "");
	h_pass(c);
}

/*
 * An array's pending indices cancelled are one result of the array's id
 * that counts them, also when there is one: else it reads as the array's
 * first task, which the same cancel may name too ("cancelled task 12"
 * twice), and --json cannot tell it from that task.
 */
static void cancel_one_index(void **state)
{
	struct h_cluster *c = *state;
	char err[256], id[64], want[128];
	uint64_t arr;
	struct h_out o;

	h_daemon_start(c);
	/* Held: index 0 is a task (the head), 1 and 2 are not. */
	arr = submit(c, "true", "0-2", true, "", false, err, sizeof(err));
	assert_true(arr > 0);
	snprintf(id, sizeof(id), "%" PRIu64 "_1", arr);
	assert_int_equal(h_hpq(c, &o, "cancel", id, "--json", NULL), 0);
	if (!strstr(o.out, "\"tasks\": 1"))
		fail_msg("hpq cancel %s --json: %s", id, o.out);
	h_out_free(&o);
	/* The head and the one index left. */
	assert_int_equal(h_hpq(c, &o, "cancel", h_id(arr), NULL), 0);
	snprintf(want, sizeof(want), "cancelled 1 pending index of array %" PRIu64 "\n", arr);
	if (!strstr(o.out, want) || strlen(o.out) != strlen(want) + strlen("cancelled task \n") +
							  strlen(h_id(arr)))
		fail_msg("hpq cancel %" PRIu64 ": %s", arr, o.out);
	h_out_free(&o);
	h_pass(c);
}

#define ACCT_RECORDS 3000

/* The ids of hpq acct --json ARGS, in order; their number. */
static size_t acct_ids(struct h_cluster *c, uint64_t *ids, size_t max, const char *a1,
		       const char *a2)
{
	json_t *j = h_hpq_json(c, "acct", "--limit", a1, a2, NULL), *row;
	size_t i, n = json_array_size(j);

	assert_non_null(j);
	assert_true(n <= max);
	json_array_foreach(j, i, row)
		ids[i] = (uint64_t)h_int(row, "id");
	json_decref(j);
	return n;
}

static size_t lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void acct_stream(void **state)
{
	struct h_cluster *c = *state;
	static uint64_t ids[ACCT_RECORDS + 8], newest[ACCT_RECORDS + 8];
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__AcctRequest req = HPQ__ACCT_REQUEST__INIT;
	char err[256], range[64];
	struct hpq_client cl;
	struct h_out o;
	uint64_t arr;
	size_t n;

	/* No node: the indices wait; a hold makes each a task, the cancel
	 * ends them all, a record each. */
	h_daemon_start(c);
	arr = submit(c, "true", "0-2999", false, "", false, err, sizeof(err));
	assert_true(arr > 0);
	snprintf(range, sizeof(range), "%" PRIu64 "_[0-2999]", arr);
	assert_int_equal(h_hpq(c, NULL, "hold", range, NULL), 0);
	assert_int_equal(h_hpq(c, NULL, "cancel", range, NULL), 0);

	n = acct_ids(c, ids, ACCT_RECORDS + 8, "0", NULL);
	assert_int_equal(n, ACCT_RECORDS);
	for (size_t i = 1; i < n; i++)
		if (ids[i] <= ids[i - 1])
			fail_msg("hpq acct: record %zu (task %" PRIu64 ") after task %" PRIu64, i,
				 ids[i], ids[i - 1]);
	assert_int_equal(h_hpq(c, &o, "acct", "--limit", "0", "--csv", NULL), 0);
	assert_int_equal(lines(o.out), ACCT_RECORDS + 1);
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "acct", NULL), 0);
	assert_int_equal(lines(o.out), ACCT_RECORDS + 1);
	assert_string_equal(o.err, "");
	h_out_free(&o);

	/* The newest 1,500, and a word that there were more. */
	assert_int_equal(acct_ids(c, newest, ACCT_RECORDS, "1500", NULL), 1500);
	assert_memory_equal(newest, ids + ACCT_RECORDS - 1500, 1500 * sizeof(*ids));
	assert_int_equal(h_hpq(c, &o, "acct", "--limit", "1500", "--csv", NULL), 0);
	assert_int_equal(lines(o.out), 1501);
	if (!strstr(o.err, "these are the newest 1500"))
		fail_msg("hpq acct --limit 1500 did not say more matched: %s", o.err);
	h_out_free(&o);
	assert_int_equal(acct_ids(c, newest, ACCT_RECORDS, "0", "--name=nosuch"), 0);
	assert_int_not_equal(h_hpq(c, &o, "acct", "--limit", "-1", NULL), 0);
	assert_non_null(strstr(o.err, "--limit"));
	h_out_free(&o);
	assert_int_not_equal(h_hpq(c, &o, "acct", "--limit", "4294967296", NULL), 0);
	assert_non_null(strstr(o.err, "--limit"));
	h_out_free(&o);

	/* A client that does not stream: one frame, at most 100,000. */
	req.limit = 0;
	env.body_case = HPQ__ENVELOPE__BODY_ACCT;
	env.acct = &req;
	assert_int_equal(call(c, &env, &reply, err, sizeof(err)), 0);
	assert_int_equal(reply->body_case, HPQ__ENVELOPE__BODY_ACCT_REPLY);
	assert_int_equal(reply->acct_reply->n_tasks, ACCT_RECORDS);
	assert_false(reply->acct_reply->more);
	hpq_msg_free(reply);
	req.limit = 100001;
	assert_int_not_equal(call(c, &env, &reply, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "is more than 100000"));

	/* One that leaves after the first frame. */
	req.limit = 0;
	req.stream = true;
	if (hpq_client_connect(&cl, c->sock, 30000) < 0)
		fail_msg("cannot connect: %s", cl.errbuf);
	assert_int_equal(hpq_client_call(&cl, &env, &reply), 0);
	assert_true(reply->acct_reply->more);
	assert_true(reply->acct_reply->n_tasks < ACCT_RECORDS);
	hpq_msg_free(reply);
	hpq_client_close(&cl);
	assert_int_equal(acct_ids(c, ids, ACCT_RECORDS + 8, "0", NULL), ACCT_RECORDS);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(array_limit, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(hold_release, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(depend_restart, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(depend_gone_index, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(script_restart, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(long_reply, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(acct_dropped, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(acct_stream, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(cancel_one_index, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
