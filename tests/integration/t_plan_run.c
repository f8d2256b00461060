/*
 * t_plan_run: plan-bound tasks (hpq submit --plan, docs/plans.md) with a
 * real hpqd and agent, in seconds. Bad input is refused and changes
 * nothing; a plan task waits with reason plan-not-started until its
 * plan's first segment, runs in it, is stopped to its checkpoint at the
 * segment's end warning, waits with reason between-segments, and resumes
 * from its checkpoint in segment 2, on that segment's node; another
 * team's task on a segment's node is stopped before the segment starts;
 * a plan task survives a restart with its plan; a plan that ends sends
 * its waiting tasks to their team's queue (plan-ended); a segment under
 * way at a restart is under way again.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Runs hpq ARGS expecting exit code `code` and `want` in its stderr. */
static void refused(struct h_cluster *c, int code, const char *want, const char *const *argv)
{
	struct h_out o;
	int rc = h_hpqv(c, &o, argv);

	if (rc != code || !strstr(o.err, want))
		fail_msg("hpq %s %s: exit %d (want %d), stderr '%s' (want '%s')", argv[0], argv[1],
			 rc, code, o.err, want);
	h_out_free(&o);
}

#define REFUSED(c, code, want, ...) refused(c, code, want, (const char *const[]){__VA_ARGS__, NULL})

/* A plan of team on the default pool: the first offering of a search
 * with `breaks` breaks. */
static void plan_of(struct h_cluster *c, const char *team, const char *name, const char *nodes,
		    const char *dur, const char *segs, const char *after, long long breaks)
{
	json_t *offers = h_hpq_json(c, "plan", "search", "--pool", "default", "--nodes", nodes,
				    "--duration", dur, "--max-segments", segs, "--after", after,
				    NULL), *o = NULL, *p;
	size_t i;

	json_array_foreach(offers, i, o)
		if (h_int(o, "breaks") == breaks)
			break;
	if (i == json_array_size(offers))
		fail_msg("no offering with %lld breaks for plan %s", breaks, name);
	p = h_hpq_json(c, "plan", "create", h_str(o, "id"), "--team", team, "--name", name, NULL);
	json_decref(p);
	json_decref(offers);
}

static void plan(struct h_cluster *c, const char *name, const char *nodes, const char *dur,
		 const char *segs, const char *after, long long breaks)
{
	plan_of(c, "default", name, nodes, dur, segs, after, breaks);
}

static bool reason_starts(struct h_cluster *c, uint64_t id, const char *state, const char *want)
{
	json_t *t = h_task(c, id);
	bool ok = t && !strcmp(h_str(t, "state"), state) &&
		  !strncmp(h_str(t, "reason"), want, strlen(want));

	json_decref(t);
	return ok;
}

/* Is there an event of kind whose message has text? */
static bool event_has(struct h_cluster *c, const char *kind, const char *text)
{
	json_t *evs = h_hpq_json(c, "events", NULL), *e;
	size_t i;
	bool found = false;

	json_array_foreach(evs, i, e) {
		const char *k = json_string_value(json_object_get(e, "kind"));
		const char *msg = json_string_value(json_object_get(e, "message"));

		if (k && msg && !strcmp(k, kind) && strstr(msg, text))
			found = true;
	}
	json_decref(evs);
	return found;
}

/* The node of plan name's segment seg (0-based): a new string. */
static char *segment_node(struct h_cluster *c, const char *name, size_t seg)
{
	json_t *p = h_hpq_json(c, "plan", "show", name, NULL);
	json_t *s = json_array_get(json_object_get(p, "segments"), seg);
	char *n = strdup(json_string_value(json_array_get(json_object_get(s, "node_names"), 0)));

	json_decref(p);
	return n;
}

/* The node task id runs on ("" when none): a new string. */
static char *task_node(struct h_cluster *c, uint64_t id)
{
	json_t *t = h_task(c, id);
	const char *n = json_string_value(json_array_get(json_object_get(t, "node_names"), 0));
	char *r = strdup(n ? n : "");

	json_decref(t);
	return r;
}

static bool runs_on(struct h_cluster *c, uint64_t id, const char *node)
{
	json_t *t = h_task(c, id);
	char *n = task_node(c, id);
	bool ok = !strcmp(h_str(t, "state"), "RUNNING") && !strcmp(n, node);

	free(n);
	json_decref(t);
	return ok;
}

static void plan_run(void **state)
{
	struct h_cluster *c = *state;
	char cmd[1024], want[64], *log, *seg1, *seg2, *n1, *n2;
	long long step;
	uint64_t id, late, b1, b2, on_seg1, other, a1, a2;
	json_t *t;

	if (!*h_bin("trainer"))
		skip();
	h_daemon_config(c, "[plans]\nreservable = default=100%\nmax_length = 1d\n"
			"end_warning = 2s\n");
	h_daemon_start(c);
	/* a segment's nodes are claimed 2s before it starts */
	assert_int_equal(h_hpq(c, NULL, "policy", "set", "grace", "2s", NULL), 0);
	h_agent_start(c, "node1", 1, 2, "2G");
	h_agent_start(c, "node2", 1, 2, "2G");
	h_agent_start_opts(c, "other1", 0, 2, "2G", (const char *const[]){"--pool", "other", NULL});
	assert_true(h_wait_nodes(c, 3, 30000));
	assert_int_equal(h_hpq(c, NULL, "team", "add", "vision", NULL), 0);

	/* both nodes are taken from +14s to +18s: a 16s plan from +4s
	 * splits around it, [+4s, +14s) and [+18s, +24s) */
	plan(c, "block", "2", "4s", "1", "+14s", 0);
	plan(c, "run", "1", "16s", "2", "+4s", 1);
	seg1 = segment_node(c, "run", 0);
	seg2 = segment_node(c, "run", 1);
	/* another team's work fills both nodes of the pool meanwhile */
	b1 = h_submit(c, "--team", "vision", "--cpus", "2", "--", "sleep", "1000", NULL);
	b2 = h_submit(c, "--team", "vision", "--cpus", "2", "--", "sleep", "1000", NULL);
	plan(c, "later", "1", "1h", "1", "+1h", 0);
	plan(c, "gone", "1", "1h", "1", "+2h", 0);
	assert_int_equal(h_hpq(c, NULL, "plan", "cancel", "gone", NULL), 0);

	/* bad input: refused, with the reason */
	REFUSED(c, 1, "unknown plan 'nope'", "submit", "--plan", "nope", "--", "true");
	REFUSED(c, 2, "not a valid plan name", "submit", "--plan", "no pe", "--", "true");
	REFUSED(c, 1, "is team default's", "submit", "--plan", "run", "--team", "vision", "--",
		"true");
	REFUSED(c, 1, "is cancelled", "submit", "--plan", "gone", "--", "true");
	REFUSED(c, 1, "holds 1 node per segment", "submit", "--plan", "run", "--nodes", "2", "--",
		"true");
	REFUSED(c, 1, "reserves nodes of pool default, not of pool other", "submit", "--plan",
		"run", "--pool", "other", "--", "true");
	REFUSED(c, 1, "an array cannot run in a plan", "submit", "--plan", "run", "--array",
		"0-1", "--", "true");
	t = h_tasks(c);
	assert_int_equal(json_array_size(t), 2);    /* the borrowers */
	json_decref(t);

	/* the plan's task waits for segment 1, runs in it, stops to its
	 * checkpoint at the end warning, waits, and resumes in segment 2 */
	id = h_submit(c, "--name", "train", "--plan", "run", "--cpus", "1", "--gpus", "1",
		      "--checkpoint-dir",
		      h_path(c, "ckpt"), "--", "sh", "-c", h_trainer_cmd(cmd, sizeof(cmd), 5),
		      NULL);
	assert_true(reason_starts(c, id, "PENDING", "plan-not-started: segment 1 of 2 starts"));
	snprintf(want, sizeof(want), "%" PRIu64, id);
	REFUSED(c, 1, "reserves nodes of pool default", "update", want, "pool=other");
	t = h_task(c, id);
	assert_string_equal(h_str(t, "plan"), "run");
	assert_string_equal(h_str(t, "team"), "default");
	json_decref(t);
	/* the borrower on segment 1's node is stopped before the segment
	 * (it ran there, or never got there), the other runs on */
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	n1 = task_node(c, id);
	assert_string_equal(n1, seg1);
	free(n1);
	n1 = task_node(c, b1);
	n2 = task_node(c, b2);
	on_seg1 = strcmp(n1, seg1) ? b2 : b1;
	other = on_seg1 == b1 ? b2 : b1;
	free(n1);
	free(n2);
	assert_true(runs_on(c, other, strcmp(seg1, "node1") ? "node1" : "node2"));
	t = h_task(c, on_seg1);
	assert_string_equal(h_str(t, "state"), "PENDING");
	assert_true(h_int(t, "preemptions") >= 1);
	json_decref(t);
	assert_true(H_WAIT_FOR(c, h_newest_step(c, id) >= 5, 30000));
	assert_true(H_WAIT_FOR(c, reason_starts(c, id, "PENDING",
						"between-segments: segment 2 of 2 starts"), 30000));
	step = h_newest_step(c, id);
	assert_true(step >= 5);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	t = h_task(c, id);
	assert_int_equal(h_int(t, "attempts"), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(t, "node_names"),
							      0)), seg2);
	log = h_task_log(c, json_string_value(json_array_get(json_object_get(t, "node_names"), 0)),
			 id);
	json_decref(t);
	snprintf(want, sizeof(want), "resumed at step %lld", step);
	if (!log || !strstr(log, want))
		fail_msg("task %" PRIu64 "'s log has no '%s': %s", id, want, log ? log : "(none)");
	free(log);
	/* Its GPU-hours count to the plan, next to what the plan reserves
	 * (1 node x 1 GPU x 16 s); a plan that ran nothing is listed too. */
	{
		json_t *u = h_hpq_json(c, "usage", "--by", "plan", NULL), *r, *rows;
		bool saw_run = false, saw_later = false;
		size_t i;

		assert_non_null(u);
		rows = json_object_get(u, "rows");
		json_array_foreach(rows, i, r) {
			const char *name = h_str(r, "name");
			double used = json_real_value(json_object_get(r, "used_gpu_h"));
			double resv = json_real_value(json_object_get(r, "reserved_gpu_h"));

			if (!strcmp(name, "run")) {
				saw_run = true;
				assert_true(used > 0 && used <= resv);
				assert_true(resv > 15.0 / 3600 && resv < 17.0 / 3600);
			} else if (!strcmp(name, "later")) {
				saw_later = true;
				assert_true(used == 0 && resv > 0);
			}
		}
		assert_true(saw_run && saw_later);
		json_decref(u);
	}

	/* a waiting plan task survives a restart with its plan */
	late = h_submit(c, "--plan", "later", "--", "true", NULL);
	assert_true(reason_starts(c, late, "PENDING", "plan-not-started: segment 1 of 1"));
	assert_int_equal(h_daemon_stop(c, SIGTERM), 0);
	h_daemon_start(c);
	assert_true(h_wait_nodes(c, 3, 30000));
	assert_true(reason_starts(c, late, "PENDING", "plan-not-started: segment 1 of 1"));
	t = h_task(c, late);
	assert_string_equal(h_str(t, "plan"), "later");
	json_decref(t);

	/* its plan ends (cancelled): it queues in its team as any task (the
	 * borrowers fill both nodes' CPUs meanwhile, and use no GPU, which the
	 * fair share of a GPU pool counts: it waits for capacity there) */
	assert_int_equal(h_hpq(c, NULL, "plan", "cancel", "later", NULL), 0);
	assert_true(H_WAIT_FOR(c, event_has(c, "requeue", "plan later ended"), 30000));
	assert_true(H_WAIT_FOR(c, reason_starts(c, late, "PENDING", "capacity") ||
				     reason_starts(c, late, "RUNNING", "") ||
				     reason_starts(c, late, "COMPLETED", ""), 30000));
	snprintf(want, sizeof(want), "%" PRIu64, late);
	(void)h_hpq(c, NULL, "cancel", want, NULL);

	/* a segment under way at a restart is under way again: its task runs
	 * on, on its node, and the plan's next task joins it there (a plan of
	 * a team with no terms in the pool: its own pool is all its own) */
	plan_of(c, "vision", "again", "1", "20s", "1", "+3s", 0);
	n1 = segment_node(c, "again", 0);
	a1 = h_submit(c, "--plan", "again", "--cpus", "1", "--", "sleep", "1000", NULL);
	assert_true(H_WAIT_FOR(c, runs_on(c, a1, n1), 30000));
	assert_int_equal(h_daemon_stop(c, SIGTERM), 0);
	h_daemon_start(c);
	assert_true(h_wait_nodes(c, 3, 30000));
	a2 = h_submit(c, "--plan", "again", "--cpus", "1", "--", "sleep", "1000", NULL);
	assert_true(H_WAIT_FOR(c, runs_on(c, a2, n1), 30000));
	assert_true(runs_on(c, a1, n1));
	t = h_task(c, a1);
	assert_int_equal(h_int(t, "attempts"), 1);
	assert_string_equal(h_str(t, "team"), "vision");
	json_decref(t);
	free(n1);
	free(seg1);
	free(seg2);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(plan_run, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
