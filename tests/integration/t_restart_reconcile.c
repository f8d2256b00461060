/*
 * t_restart_reconcile: the reconciliation rules of docs/decisions.md when
 * agents register again.
 *
 * - Daemon stopped (SIGTERM, then SIGKILL): a task that keeps running on
 *   its agent is adopted (same attempt); a task that exits while the
 *   daemon is down has its outcome (exit 3) applied once it is back.
 * - Agent restarted with an empty work dir while the daemon thinks it
 *   runs a task there: the agent does not have it, so the task is
 *   requeued at once and runs again. The unreachable grace is 1000
 *   heartbeats here, longer than the test may run, so only the agent's
 *   registration can have requeued it, and the requeue says so.
 *
 * Each task waits for a release file of its own, so the test decides when
 * it ends, and records its starts, so running twice would show.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* A command that logs "start ATTEMPT", waits for file release, logs
 * "end" and exits with code. */
static uint64_t submit_held(struct h_cluster *c, const char *tag, int code)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "echo \"start $HPQ_ATTEMPT $$\" >> %s; while [ ! -e %s ]; do sleep 0.1; done; "
		 "echo end >> %s; exit %d",
		 h_path(c, "%s.runs", tag), h_path(c, "%s.release", tag),
		 h_path(c, "%s.runs", tag), code);
	return h_submit(c, "--name", tag, "--cpus", "1", "--", "sh", "-c", cmd, NULL);
}

/* The pid of the task's shell, from its "start ATTEMPT PID" line. */
static pid_t shell_pid(struct h_cluster *c, const char *tag)
{
	char *text = h_read_file(h_path(c, "%s.runs", tag));
	int pid = 0;

	assert_non_null(text);
	assert_int_equal(sscanf(text, "start %*d %d", &pid), 1);
	free(text);
	assert_true(pid > 1);
	return (pid_t)pid;
}

/* Whether the task (hpq show --json) has an event of kind whose message
 * contains text. */
static bool has_event(json_t *t, const char *kind, const char *text)
{
	json_t *ev;
	size_t i;

	json_array_foreach(json_object_get(t, "events"), i, ev)
		if (!strcmp(h_str(ev, "kind"), kind) && strstr(h_str(ev, "message"), text))
			return true;
	return false;
}

static void release(struct h_cluster *c, const char *tag)
{
	h_write_file(h_path(c, "%s.release", tag), "");
}

static void expect_task(struct h_cluster *c, uint64_t id, const char *state, int attempts,
			int exit_code)
{
	json_t *t = h_task(c, id);

	assert_non_null(t);
	if (strcmp(h_str(t, "state"), state) != 0 || h_int(t, "attempts") != attempts ||
	    (exit_code >= 0 && h_int(t, "exit_code") != exit_code)) {
		char *dump = json_dumps(t, JSON_COMPACT);
		fail_msg("task %" PRIu64 ": want %s, %d attempts, exit %d; got %s", id, state,
			 attempts, exit_code, dump);
	}
	json_decref(t);
}

static void restart_reconcile(void **state)
{
	struct h_cluster *c = *state;
	uint64_t a, b, r;
	char node[32], why[96];
	pid_t b_pid;
	json_t *t;
	int i;

	h_daemon_config(c, "[agents]\nheartbeat = 1s\nunreachable_after = 1000\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "2G");
	h_agent_start(c, "node2", 0, 2, "2G");
	assert_true(h_wait_nodes(c, 2, 30000));

	a = submit_held(c, "a", 0);
	b = submit_held(c, "b", 3);
	assert_true(h_wait_state(c, a, "RUNNING", 30000));
	assert_true(h_wait_state(c, b, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, h_count_prefix(h_path(c, "a.runs"), "start 1 ") == 1 &&
					  h_count_prefix(h_path(c, "b.runs"), "start 1 ") == 1, 30000));

	/* Graceful stop; b ends while the daemon is away: its shell has
	 * exited and its agent has reaped it before hpqd is back. */
	h_daemon_stop(c, SIGTERM);
	b_pid = shell_pid(c, "b");
	release(c, "b");
	assert_true(H_WAIT_FOR(c, h_count_lines(h_path(c, "b.runs"), "end") == 1, 30000));
	if (!H_WAIT_FOR(c, kill(b_pid, 0) < 0 && errno == ESRCH, 30000))
		fail_msg("b's shell (pid %d) was not reaped by its agent", (int)b_pid);
	h_daemon_start(c);
	assert_true(h_wait_state(c, b, "FAILED", 30000));
	expect_task(c, b, "FAILED", 1, 3);
	assert_true(h_wait_nodes(c, 2, 30000));
	expect_task(c, a, "RUNNING", 1, -1);

	/* Crash; a is still adopted. (The agents find their connections gone
	 * whenever they look; either way they register with the new hpqd.)
	 * Adopted at registration, and still so two heartbeats of each agent
	 * and two node checks later. */
	h_daemon_stop(c, SIGKILL);
	h_daemon_start(c);
	assert_true(h_wait_nodes(c, 2, 30000));
	assert_true(h_wait_heartbeats(c, "node1", 2, 30000));
	assert_true(h_wait_heartbeats(c, "node2", 2, 30000));
	assert_true(h_wait_node_checks(c, 2, 30000));
	expect_task(c, a, "RUNNING", 1, -1);
	release(c, "a");
	assert_true(h_wait_state(c, a, "COMPLETED", 30000));
	expect_task(c, a, "COMPLETED", 1, 0);
	assert_int_equal(h_count_prefix(h_path(c, "a.runs"), "start 1 "), 1);
	assert_int_equal(h_count_prefix(h_path(c, "b.runs"), "start 1 "), 1);

	/* An agent that comes back without the task the daemon put there. */
	r = submit_held(c, "r", 0);
	assert_true(h_wait_state(c, r, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, h_count_prefix(h_path(c, "r.runs"), "start 1 ") == 1, 30000));
	t = h_task(c, r);
	snprintf(node, sizeof(node), "%s",
		 json_string_value(json_array_get(json_object_get(t, "node_names"), 0)));
	json_decref(t);
	i = h_agent_index(c, node);
	assert_true(i >= 0);
	h_agent_stop(c, i, SIGKILL);
	/* Its task dies with it: the shell leads its own process group. */
	{
		char *text = h_read_file(h_path(c, "r.runs"));
		int pgid = 0;

		assert_non_null(text);
		assert_int_equal(sscanf(text, "start 1 %d", &pgid), 1);
		free(text);
		assert_int_equal(kill(-pgid, SIGKILL), 0);
	}
	snprintf(c->agents[i].work, sizeof(c->agents[i].work), "%s", h_path(c, "%s-new", node));
	h_agent_restart(c, i);
	release(c, "r");
	assert_true(h_wait_state(c, r, "COMPLETED", 60000));
	expect_task(c, r, "COMPLETED", 2, 0);
	/* Not the grace (1000 heartbeats): the registration itself said "gone". */
	snprintf(why, sizeof(why), "its agent on %s no longer had it", node);
	t = h_task(c, r);
	if (!has_event(t, "requeue", why)) {
		char *dump = json_dumps(json_object_get(t, "events"), JSON_COMPACT);

		fail_msg("task %" PRIu64 ": no requeue event saying '%s': %s", r, why, dump);
	}
	json_decref(t);
	assert_int_equal(h_count_prefix(h_path(c, "r.runs"), "start 1 "), 1);
	assert_int_equal(h_count_prefix(h_path(c, "r.runs"), "start 2 "), 1);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(restart_reconcile, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
