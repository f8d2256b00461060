/*
 * t_seed: the worked scenario of docs/design.md §4, end to end, with the
 * real daemon, two agents and the example trainer.
 *
 * One pool of 2 nodes x 8 GPUs; team1 and team2 each guarantee 8 GPUs,
 * lend-and-borrow, borrow limit 100%. team1 is idle at first.
 *   1. team2 runs training T1, T2 (4 GPUs each) within its guarantee;
 *   2. training T3 and fine-tuning T5 run on team1's idle compute;
 *   3. training T6: nothing is free and team2 is at its borrow limit, so
 *      T5 is preempted for it (priority) and goes back to the queue;
 *   4. team1's training T7 (8 GPUs) takes its guarantee back: T6 and T3,
 *      newest first, are preempted (reclaim) and T7 runs;
 *   5. as T7 and the others finish, T3, T6 and then T5 resume, each from
 *      its newest checkpoint: the trainer's log says "resumed at step N"
 *      for exactly the step of the newest checkpoint the daemon recorded
 *      before the requeue. T3 checkpoints only when signalled, so the step
 *      it resumes at comes from the checkpoint it reported during its
 *      grace period, after its preempt event.
 * The event log (preempt, preempt-for, requeue, checkpoint), the reasons,
 * the queue positions, team usage and the final states are asserted.
 *
 * How long a trainer runs must not decide the scenario on a slow machine:
 * T1, T2 and T7 finish their steps and then wait for the test's go (a file
 * per task) before they exit; the preempted T3, T5 and T6 run without end
 * in their first attempt, so they are still running whenever their
 * preemption comes, and their second attempt resumes at the checkpoint's
 * step and runs to the fourth multiple of 5 past it. The test lets T7 end
 * first (T3 and T6 resume on its GPUs), then T1 and T2.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

enum { T1, T2, T3, T5, T6, T7, NT };
static const char *const names[NT] = { "T1", "T2", "T3", "T5", "T6", "T7" };

static uint64_t submit_cmd(struct h_cluster *c, const char *name, const char *team,
			   const char *cls, const char *gpus, const char *cmd)
{
	return h_submit(c, "--name", name, "--team", team, "--class", cls, "--gpus", gpus,
			"--cpus", "1", "--mem", "256M", "--checkpoint-dir",
			h_path(c, "ckpt/%s", name), "--", "sh", "-c", cmd, NULL);
}

/* A task that runs the trainer's steps and exits 0 once the test lets it
 * (go(c, name)). every: checkpoint every that many steps; "0": only when
 * signalled. */
static uint64_t submit_held(struct h_cluster *c, const char *name, const char *team,
			    const char *cls, const char *gpus, const char *steps, const char *every)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "'%s' --steps %s --step-ms 100 --every %s && "
		 "until [ -e '%s' ]; do sleep 0.1; done",
		 h_bin("trainer"), steps, every, h_path(c, "ckpt/%s.go", name));
	return submit_cmd(c, name, team, cls, gpus, cmd);
}

static void go(struct h_cluster *c, const char *name)
{
	h_write_file(h_path(c, "ckpt/%s.go", name), "");
}

/* A task that is to be preempted (h_trainer_cmd): its first attempt runs
 * until it is, a later one from the step it resumes at to
 * h_resumed_steps() of it. */
static uint64_t submit_preemptee(struct h_cluster *c, const char *name, const char *team,
				 const char *cls, const char *gpus, unsigned every)
{
	char cmd[1024];

	return submit_cmd(c, name, team, cls, gpus, h_trainer_cmd(cmd, sizeof(cmd), every));
}

static bool is_state(struct h_cluster *c, uint64_t id, const char *state)
{
	json_t *t = h_task(c, id);
	bool ok = t && !strcmp(h_str(t, "state"), state);

	json_decref(t);
	return ok;
}

static long long attempts_of(struct h_cluster *c, uint64_t id)
{
	json_t *t = h_task(c, id);
	long long n = t ? h_int(t, "attempts") : -1;

	json_decref(t);
	return n;
}

/* Newest checkpoint step of the task for attempt (0: any), or -1. */
static long long newest_step(json_t *t, long long attempt)
{
	json_t *ck;
	long long best = -1;
	size_t i;

	json_array_foreach(json_object_get(t, "checkpoints"), i, ck)
		if ((!attempt || h_int(ck, "attempt") == attempt) && h_int(ck, "step") > best)
			best = h_int(ck, "step");
	return best;
}

static long long task_step(struct h_cluster *c, uint64_t id)
{
	json_t *t = h_task(c, id);
	long long s = t ? newest_step(t, 0) : -1;

	json_decref(t);
	return s;
}

/* The id of the first event of kind whose message contains text, or 0. */
static long long event_id(json_t *t, const char *kind, const char *text)
{
	json_t *ev;
	size_t i;

	json_array_foreach(json_object_get(t, "events"), i, ev)
		if (!strcmp(h_str(ev, "kind"), kind) && strstr(h_str(ev, "message"), text))
			return (long long)i + 1;
	return 0;
}

static json_t *team_usage(struct h_cluster *c, const char *team)
{
	json_t *t = h_hpq_json(c, "team", "show", team, NULL);
	json_t *u = json_incref(json_array_get(json_object_get(t, "usage"), 0));

	json_decref(t);
	return u;
}

static long long usage_gpus(json_t *u, const char *what)
{
	return h_int(json_object_get(u, what), "gpus");
}

/* A team's row of hpq status in pool default: field key (gpus of a vector). */
static long long status_of(struct h_cluster *c, const char *team, const char *key)
{
	json_t *s = h_hpq_json(c, "status", NULL), *row;
	long long v = -1;
	size_t i;

	json_array_foreach(json_object_get(s, "teams"), i, row) {
		json_t *f = json_object_get(row, key);

		if (strcmp(h_str(row, "name"), team) || strcmp(h_str(row, "pool"), "default"))
			continue;
		v = json_is_object(f) ? h_int(f, "gpus") : json_integer_value(f);
	}
	json_decref(s);
	return v;
}

/* Both agents' logs of a task, concatenated (it may resume on the other node). */
static char *task_log(struct h_cluster *c, uint64_t id)
{
	char *a = h_task_log(c, "node1", id);
	char *b = h_task_log(c, "node2", id);
	size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
	char *all = malloc(la + lb + 2);

	assert_non_null(all);
	snprintf(all, la + lb + 2, "\n%s%s", a ? a : "", b ? b : "");
	free(a);
	free(b);
	return all;
}

static void seed(void **state)
{
	struct h_cluster *c = *state;
	uint64_t id[NT];
	long long last[NT], pos;
	json_t *t, *u, *events;
	char want[96], *log;
	size_t i;

	if (!*h_bin("trainer"))
		skip();
	assert_int_equal(mkdir(h_path(c, "ckpt"), 0755), 0);
	h_daemon_start(c);
	h_agent_start(c, "node1", 8, 4, "4G");
	h_agent_start(c, "node2", 8, 4, "4G");
	assert_true(h_wait_nodes(c, 2, 30000));

	/* A short grace so a trainer that ignored TERM would not stall the test. */
	assert_int_equal(h_hpq(c, NULL, "policy", "set", "grace", "10s", NULL), 0);
	for (i = 1; i <= 2; i++) {
		char team[8];

		snprintf(team, sizeof(team), "team%zu", i);
		assert_int_equal(h_hpq(c, NULL, "team", "add", team, "--pool", "default", "--gpus",
				       "8", "--sharing", "lend-and-borrow", "--borrow-limit", "100",
				       NULL), 0);
	}
	/* A guarantee larger than the pool is refused, whole. */
	assert_int_equal(h_hpq(c, NULL, "team", "set", "team1", "--pool", "default", "--gpus",
			       "17", NULL), 1);

	/* 1 + 2: T1, T2 within team2's guarantee; T3, T5 on team1's idle compute. */
	/*
	 * Checkpoint cadence decides the victims' order among equals (the
	 * least work lost first: the newest checkpoint or start). T1, T2 and
	 * T3 checkpoint only when signalled, T5 and T6 every 5 steps, so the
	 * order is the scenario's (docs/design.md §4): T6, then T3, and never T1 or T2.
	 */
	id[T1] = submit_held(c, "T1", "team2", "training", "4", "200", "0");
	id[T2] = submit_held(c, "T2", "team2", "training", "4", "200", "0");
	assert_true(H_WAIT_FOR(c, is_state(c, id[T1], "RUNNING") &&
				  is_state(c, id[T2], "RUNNING"), 30000));
	/* T3 checkpoints only when signalled: the step it resumes at can only
	 * come from the checkpoint it reports during its grace period. */
	id[T3] = submit_preemptee(c, "T3", "team2", "training", "4", 0);
	id[T5] = submit_preemptee(c, "T5", "team2", "fine-tuning", "4", 5);
	assert_true(H_WAIT_FOR(c, is_state(c, id[T3], "RUNNING") &&
				  is_state(c, id[T5], "RUNNING"), 30000));
	u = team_usage(c, "team2");
	assert_int_equal(usage_gpus(u, "used"), 16);
	assert_int_equal(usage_gpus(u, "borrowed"), 8);
	json_decref(u);
	u = team_usage(c, "team1");
	assert_int_equal(usage_gpus(u, "lent"), 8);
	json_decref(u);
	/* hpq status shows the borrowing too. */
	assert_int_equal(status_of(c, "team2", "borrowed"), 8);
	assert_int_equal(status_of(c, "team1", "lent"), 8);
	assert_true(H_WAIT_FOR(c, task_step(c, id[T5]) >= 10, 30000));

	/* 3: T6 replaces T5, which goes back to the queue at its last checkpoint. */
	id[T6] = submit_preemptee(c, "T6", "team2", "training", "4", 5);
	assert_true(H_WAIT_FOR(c, is_state(c, id[T5], "PENDING"), 30000));
	assert_true(H_WAIT_FOR(c, is_state(c, id[T6], "RUNNING"), 30000));
	t = h_task(c, id[T5]);
	snprintf(want, sizeof(want), "preempted by task %" PRIu64 " (priority)", id[T6]);
	assert_true(event_id(t, "preempt", want) > 0);
	assert_true(event_id(t, "requeue", want) > 0);
	assert_int_equal(h_int(t, "attempts"), 1);
	last[T5] = newest_step(t, 1);
	assert_true(last[T5] >= 10);
	/* It waits: team2 is at its borrow limit. */
	assert_string_equal(h_str(t, "reason"), "borrow-limit");
	assert_int_equal(h_int(t, "queue_position"), 1);
	json_decref(t);
	{
		struct h_out out;

		assert_int_equal(h_hpq(c, &out, "list", "--team", "team2", NULL), 0);
		assert_non_null(strstr(out.out, "borrow-limit #1"));
		h_out_free(&out);
	}
	t = h_task(c, id[T6]);
	snprintf(want, sizeof(want), "preempting task %" PRIu64 " (priority", id[T5]);
	assert_true(event_id(t, "preempt-for", want) > 0);
	json_decref(t);
	assert_true(H_WAIT_FOR(c, task_step(c, id[T6]) >= 10, 30000));

	/* 4: team1 takes its guarantee back from T6 and T3, newest first. */
	id[T7] = submit_held(c, "T7", "team1", "training", "8", "30", "5");
	assert_true(H_WAIT_FOR(c, is_state(c, id[T7], "RUNNING"), 30000));
	assert_true(H_WAIT_FOR(c, is_state(c, id[T3], "PENDING") &&
				  is_state(c, id[T6], "PENDING"), 30000));
	assert_true(is_state(c, id[T1], "RUNNING") && is_state(c, id[T2], "RUNNING"));
	snprintf(want, sizeof(want), "preempted by task %" PRIu64 " (reclaim)", id[T7]);
	for (int k = T3; k <= T6; k++) {
		if (k == T5)
			continue;
		assert_true(H_WAIT_FOR(c, task_step(c, id[k]) >= 5, 30000));
		t = h_task(c, id[k]);
		assert_true(event_id(t, "preempt", want) > 0);
		last[k] = newest_step(t, 1);
		assert_true(last[k] >= 5);
		if (k == T3) {
			char ck[32];

			/* Reported after the preemption: during the grace period. */
			snprintf(ck, sizeof(ck), "step %lld ", last[k]);
			assert_true(event_id(t, "checkpoint", ck) > event_id(t, "preempt", want));
		}
		json_decref(t);
	}
	/* Newest first: T6's preemption is recorded before T3's. */
	events = h_hpq_json(c, "events", "--team", "team2", NULL);
	{
		long long p3 = 0, p6 = 0;
		json_t *ev;

		json_array_foreach(events, i, ev) {
			if (strcmp(h_str(ev, "kind"), "preempt") || !strstr(h_str(ev, "message"), want))
				continue;
			if (h_int(ev, "task") == (long long)id[T3])
				p3 = (long long)i + 1;
			if (h_int(ev, "task") == (long long)id[T6])
				p6 = (long long)i + 1;
		}
		assert_true(p3 > 0 && p6 > 0);
		assert_true(p6 < p3);
	}
	json_decref(events);
	/* Queue of team2 now: T3, T6 (training, by submit time), then T5. */
	t = h_task(c, id[T5]);
	pos = h_int(t, "queue_position");
	json_decref(t);
	assert_int_equal(pos, 3);
	u = team_usage(c, "team1");
	assert_int_equal(usage_gpus(u, "used"), 8);
	assert_int_equal(usage_gpus(u, "lent"), 0);
	json_decref(u);
	/* hpq status counts team2's three preemptions, none of team1's. */
	assert_int_equal(status_of(c, "team2", "preempted_1h"), 3);
	assert_int_equal(status_of(c, "team1", "preempted_1h"), 0);
	assert_int_equal(status_of(c, "team2", "borrowed"), 0);

	/* 5: T7 finishes, and T3 and T6 resume on its GPUs; T5, behind them in
	 * the queue, resumes once more frees (T3 or T6 done, or T1 and T2,
	 * which finish next). Then everything finishes. */
	go(c, "T7");
	assert_true(h_wait_state(c, id[T7], "COMPLETED", 60000));
	assert_true(H_WAIT_FOR(c, attempts_of(c, id[T3]) == 2 && attempts_of(c, id[T6]) == 2,
			       30000));
	go(c, "T1");
	go(c, "T2");
	for (int k = 0; k < NT; k++)
		assert_true(h_wait_state(c, id[k], "COMPLETED", 90000));
	for (int k = T3; k <= T6; k++) {
		long long start2;

		t = h_task(c, id[k]);
		assert_int_equal(h_int(t, "attempts"), 2);
		/* T3 was not signalled again: no checkpoint in its second attempt. */
		assert_int_equal(newest_step(t, 2), k == T3 ? -1 : h_resumed_steps(last[k]));
		assert_true(newest_step(t, 1) == last[k]);
		start2 = event_id(t, "start", "attempt 2");
		assert_true(start2 > 0);
		json_decref(t);
		log = task_log(c, id[k]);
		snprintf(want, sizeof(want), "\nresumed at step %lld\n", last[k]);
		if (!strstr(log, want))
			fail_msg("%s did not resume at step %lld; its log:\n%s", names[k], last[k],
				 log);
		snprintf(want, sizeof(want), "\ndone %lld steps\n", h_resumed_steps(last[k]));
		if (!strstr(log, want))
			fail_msg("%s did not run to step %lld; its log:\n%s", names[k],
				 h_resumed_steps(last[k]), log);
		free(log);
		fprintf(stderr, "%s resumed at step %lld\n", names[k], last[k]);
	}
	/* T5 resumed after T3 and T6 (event log order). */
	events = h_hpq_json(c, "events", "--team", "team2", NULL);
	{
		long long s3 = 0, s5 = 0, s6 = 0;
		json_t *ev;

		json_array_foreach(events, i, ev) {
			if (strcmp(h_str(ev, "kind"), "start") ||
			    !strstr(h_str(ev, "message"), "attempt 2"))
				continue;
			if (h_int(ev, "task") == (long long)id[T3])
				s3 = (long long)i + 1;
			if (h_int(ev, "task") == (long long)id[T5])
				s5 = (long long)i + 1;
			if (h_int(ev, "task") == (long long)id[T6])
				s6 = (long long)i + 1;
		}
		assert_true(s3 > 0 && s5 > 0 && s6 > 0);
		assert_true(s5 > s3 && s5 > s6);
	}
	json_decref(events);
	/* The others ran once, from the start. */
	for (int k = 0; k < NT; k++) {
		if (k == T3 || k == T5 || k == T6)
			continue;
		t = h_task(c, id[k]);
		assert_int_equal(h_int(t, "attempts"), 1);
		json_decref(t);
	}
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(seed, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
