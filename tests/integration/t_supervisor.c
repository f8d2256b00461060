/*
 * t_supervisor: the per-task supervisor (hpq-supervisor) across agent
 * restarts and a work directory that cannot record a start.
 *
 * - exit0: the agent is stopped (SIGTERM, the graceful restart of an
 *   upgrade) while a task runs; the task exits 0 while the agent is down;
 *   the agent comes back: the task ends COMPLETED with exit code 0, not
 *   FAILED "lost" with -1.
 * - signal: the same with a task killed by a signal while the agent is
 *   down: the signal is reported (exit code 128 + signal, reason signal).
 * - kill_escalation: a cancel's stop signal reaches the task, which
 *   ignores it; the agent is killed with SIGKILL right after; the task is
 *   still killed at the end of its grace period, with the agent away, and
 *   ends CANCELLED once the agent is back.
 * - work_dir_full: the agent's work directory (a 1 MiB tmpfs) is full
 *   before a start: the start fails cleanly with reason
 *   work-dir-unwritable and the task is requeued (the node's failure, not
 *   the task's), nothing runs, the node reports a finding about its work
 *   directory, and once there is room again the finding goes and the task
 *   runs.
 *   Needs root (mount); skipped otherwise.
 * - fence: with [agents] fence_after, an agent that cannot renew its
 *   node's lease (SIGSTOPped, as good as cut off from hpqd) has its task
 *   stopped and killed by the supervisor before hpqd declares the node lost
 *   and runs the task elsewhere: the two attempts, which each hold an
 *   exclusive flock named after the task, never overlap.
 * - stale_start: a RunTask that reaches its agent only after the node's
 *   lease ran out (the agent was stopped while it was sent, and hpqd
 *   meanwhile ran attempt 2 elsewhere) never begins: it ends at once,
 *   fenced, and the attempts never overlap.
 *
 * Each task logs "start PID" and waits for a release file of its own, so
 * the test decides when it ends.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static uint64_t submit_held(struct h_cluster *c, const char *tag, const char *extra_sh,
			    const char *grace)
{
	char cmd[768];

	snprintf(cmd, sizeof(cmd),
		 "%s echo \"start $$\" >> %s; while [ ! -e %s ]; do sleep 0.1; done; exit 0",
		 extra_sh, h_path(c, "%s.runs", tag), h_path(c, "%s.release", tag));
	return h_submit(c, "--name", tag, "--cpus", "1", "--grace", grace, "--", "sh", "-c", cmd,
			NULL);
}

static pid_t started_pid(struct h_cluster *c, const char *tag)
{
	char *text = h_read_file(h_path(c, "%s.runs", tag));
	int pid = 0;

	if (text && sscanf(text, "start %d", &pid) != 1)
		pid = 0;
	free(text);
	return (pid_t)pid;
}

static bool gone(pid_t pid)
{
	return kill(pid, 0) < 0 && errno == ESRCH;
}

static void expect_end(struct h_cluster *c, uint64_t id, const char *state, int exit_code,
		       const char *reason)
{
	json_t *t;

	assert_true(h_wait_state(c, id, NULL, 30000));
	t = h_task(c, id);
	assert_non_null(t);
	if (strcmp(h_str(t, "state"), state) != 0 || h_int(t, "exit_code") != exit_code ||
	    (reason && !strstr(h_str(t, "reason"), reason))) {
		char *dump = json_dumps(t, JSON_COMPACT);

		fail_msg("task %" PRIu64 ": want %s, exit code %d, reason ~ %s; got %s", id, state,
			 exit_code, reason ? reason : "(any)", dump);
	}
	json_decref(t);
}

/* One task, its agent stopped (SIGTERM) while it runs; the task ends while
 * the agent is away, by its release file or by end_sig. */
static uint64_t run_across_restart(struct h_cluster *c, const char *tag, int end_sig)
{
	uint64_t id;
	pid_t pid;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));
	id = submit_held(c, tag, "", "5s");
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, (pid = started_pid(c, tag)) > 1, 30000));

	h_agent_stop(c, 0, SIGTERM);
	assert_false(gone(pid)); /* a graceful stop leaves the tasks running */
	if (end_sig)
		assert_int_equal(kill(pid, end_sig), 0);
	else
		h_write_file(h_path(c, "%s.release", tag), "");
	assert_true(H_WAIT_FOR(c, gone(pid), 30000));
	h_agent_restart(c, 0);
	return id;
}

static void exit0(void **state)
{
	struct h_cluster *c = *state;
	uint64_t id = run_across_restart(c, "zero", 0);

	expect_end(c, id, "COMPLETED", 0, NULL);
	h_pass(c);
}

static void signal_reported(void **state)
{
	struct h_cluster *c = *state;
	uint64_t id = run_across_restart(c, "sig", SIGUSR1);

	expect_end(c, id, "FAILED", 128 + SIGUSR1, "signal");
	h_pass(c);
}

static void kill_escalation(void **state)
{
	struct h_cluster *c = *state;
	struct h_out out = {0};
	char extra[256], ids[32];
	uint64_t id;
	int64_t t0;
	pid_t pid;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));
	/* It notes the stop signal and carries on: only SIGKILL ends it. */
	snprintf(extra, sizeof(extra), "trap 'echo term >> %s' TERM;", h_path(c, "esc.term"));
	id = submit_held(c, "esc", extra, "3s");
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, (pid = started_pid(c, "esc")) > 1, 30000));

	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	assert_int_equal(h_hpq(c, &out, "cancel", ids, NULL), 0);
	h_out_free(&out);
	assert_true(H_WAIT_FOR(c, h_count_lines(h_path(c, "esc.term"), "term") >= 1, 30000));
	h_agent_stop(c, 0, SIGKILL);
	t0 = h_now_ms();
	/* No agent: only the supervisor can end the grace period. */
	if (!H_WAIT_FOR(c, gone(pid), 30000))
		fail_msg("the task still runs %" PRId64 " ms after the agent died, past its "
			 "grace period", h_now_ms() - t0);
	fprintf(stderr, "killed %" PRId64 " ms after the agent died\n", h_now_ms() - t0);
	assert_false(h_read_file(h_path(c, "esc.release")));
	h_agent_restart(c, 0);
	expect_end(c, id, "CANCELLED", 128 + SIGKILL, NULL);
	h_pass(c);
}

/*
 * unjournaled: the agent is killed (-9) after it started a task and before
 * its journal held it (agent_flush: start, then save). That moment's state
 * on disk is made here: the agent killed once the task runs, and its
 * journal put back to what it was before the start. The restarted agent
 * must not leave that copy running: hpqd requeues the attempt it does not
 * list, and the second attempt must never meet the first.
 */
static void unjournaled(void **state)
{
	struct h_cluster *c = *state;
	const char *runs;
	uint64_t id;
	pid_t pid;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));
	id = submit_held(c, "unj", "", "5s");
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, (pid = started_pid(c, "unj")) > 1, 30000));

	h_agent_stop(c, 0, SIGKILL);
	assert_false(gone(pid)); /* its supervisor keeps it */
	h_write_file(h_path(c, "node1/tasks.journal"), "hpq-agent-journal 1\n");
	h_agent_restart(c, 0);

	runs = h_path(c, "unj.runs");
	if (!H_WAIT_FOR(c, h_count_prefix(runs, "start") >= 2, 30000))
		fail_msg("task %" PRIu64 " was not run again", id);
	if (!gone(pid))
		fail_msg("task %" PRIu64 ": attempt 2 started while attempt 1 (pid %ld), which "
			 "no journal held, still ran", id, (long)pid);
	h_write_file(h_path(c, "unj.release"), "");
	expect_end(c, id, "COMPLETED", 0, NULL);
	h_pass(c);
}

static bool has_finding(struct h_cluster *c, const char *node, const char *reason)
{
	json_t *nodes = h_hpq_json(c, "node", "list", NULL), *n, *f;
	bool found = false;
	size_t i, j;

	json_array_foreach(nodes, i, n) {
		if (strcmp(h_str(n, "name"), node) != 0)
			continue;
		json_array_foreach(json_object_get(n, "findings"), j, f)
			if (strcmp(h_str(f, "reason"), reason) == 0)
				found = true;
	}
	json_decref(nodes);
	return found;
}

/* Fills the filesystem of dir; returns the file that does it. */
static const char *fill(struct h_cluster *c, const char *dir)
{
	const char *path = h_path(c, "%s/fill", dir);
	static char chunk[65536];
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	while (fwrite(chunk, 1, sizeof(chunk), f) == sizeof(chunk))
		;
	fclose(f);
	return path;
}

/* Was task id requeued with reason in its events? */
static bool requeued_for(struct h_cluster *c, uint64_t id, const char *reason)
{
	char ids[32];
	json_t *j, *e;
	bool found = false;
	size_t i;

	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	j = h_hpq_json(c, "events", "--task", ids, NULL);
	json_array_foreach(j, i, e)
		if (!strcmp(h_str(e, "kind"), "requeue") && strstr(h_str(e, "message"), reason))
			found = true;
	json_decref(j);
	return found;
}

static void work_dir_full(void **state)
{
	struct h_cluster *c = *state;
	const char *work = h_path(c, "node1"), *filler;
	uint64_t id;

	if (geteuid() != 0)
		skip();
	assert_int_equal(mkdir(work, 0755), 0);
	if (mount("hpq-test", work, "tmpfs", 0, "size=1m,mode=0755") < 0) {
		fprintf(stderr, "cannot mount a tmpfs: %s; skipped\n", strerror(errno));
		skip();
	}
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));
	filler = fill(c, "node1");

	id = h_submit(c, "--", "sh", "-c", "echo ran > \"$0\"", h_path(c, "full.ran"), NULL);
	/* The node's failure, not the task's: back in the queue, not run. */
	assert_true(H_WAIT_FOR(c, requeued_for(c, id, "work-dir-unwritable"), 30000));
	assert_null(h_read_file(h_path(c, "full.ran")));
	assert_true(H_WAIT_FOR(c, has_finding(c, "node1", "work-dir-unwritable"), 30000));

	/* Room again: the next probe clears it, and the task runs. */
	assert_int_equal(unlink(filler), 0);
	assert_true(H_WAIT_FOR(c, !has_finding(c, "node1", "work-dir-unwritable"), 30000));
	expect_end(c, id, "COMPLETED", 0, NULL);
	{
		char *ran = h_read_file(h_path(c, "full.ran"));

		assert_non_null(ran);
		free(ran);
	}
	h_pass(c);
}

static int node_of(struct h_cluster *c, uint64_t id)
{
	json_t *t = h_task(c, id);
	const char *name = json_string_value(json_array_get(json_object_get(t, "node_names"), 0));
	int i = name ? h_agent_index(c, name) : -1;

	json_decref(t);
	return i;
}

static void fence(void **state)
{
	struct h_cluster *c = *state;
	const char *runs = h_path(c, "fence.runs");
	char cmd[1024];
	int64_t t0, killed_ms;
	uint64_t id;
	pid_t pid = 0;
	int i;

	/* The rule: 12 x 1 s >= 2 x 3 s + 5 s. */
	h_daemon_config(c, "[agents]\nheartbeat = 1s\nunreachable_after = 12\n"
			"fence_after = 3s\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "1G");
	h_agent_start(c, "node2", 0, 2, "1G");
	assert_true(h_wait_nodes(c, 2, 30000));
	/* Each attempt holds an exclusive lock named after the task for as long
	 * as it runs, and says so if another attempt still holds it. */
	snprintf(cmd, sizeof(cmd),
		 "exec 9>>%s.$HPQ_TASK_ID; flock -n 9 || echo overlap >> %s; "
		 "echo \"start $HPQ_ATTEMPT $$\" >> %s; "
		 "[ \"$HPQ_ATTEMPT\" -ge 2 ] || while :; do sleep 0.1; done",
		 h_path(c, "lock"), runs, runs);
	id = h_submit(c, "--cpus", "2", "--grace", "1s", "--", "sh", "-c", cmd, NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, h_count_prefix(runs, "start 1 ") == 1, 30000));
	{
		char *text = h_read_file(runs);

		assert_int_equal(sscanf(text, "start 1 %d", &pid), 1);
		free(text);
	}
	i = node_of(c, id);
	assert_true(i >= 0);
	/* Heartbeats renew the lease: the task outlives several fence_afters. */
	assert_true(h_wait_heartbeats(c, c->agents[i].name, 8, 30000));
	assert_false(gone(pid));

	/* The agent can no longer renew the lease: cut off, as in a partition. */
	assert_int_equal(kill(c->agents[i].pid, SIGSTOP), 0);
	t0 = h_now_ms();
	if (!H_WAIT_FOR(c, gone(pid), 30000))
		fail_msg("attempt 1 still runs %" PRId64 " ms after its agent stopped",
			 h_now_ms() - t0);
	killed_ms = h_now_ms() - t0;
	fprintf(stderr, "fenced %" PRId64 " ms after the agent stopped\n", killed_ms);
	assert_int_equal(h_count_prefix(runs, "start 2 "), 0); /* not requeued yet */
	assert_true(H_WAIT_FOR(c, h_count_prefix(runs, "start 2 ") == 1, 60000));
	fprintf(stderr, "attempt 2 started %" PRId64 " ms after the agent stopped\n",
		h_now_ms() - t0);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	assert_int_equal(h_count_prefix(runs, "overlap"), 0);

	/* The agent comes back: its stale attempt is already gone. */
	assert_int_equal(kill(c->agents[i].pid, SIGCONT), 0);
	assert_true(h_wait_nodes(c, 2, 30000));
	h_pass(c);
}

/*
 * A start held up on the way: node1's agent is stopped (SIGSTOP) before
 * hpqd sends it a RunTask, which waits in its socket while hpqd declares
 * node1 lost and runs attempt 2 on node2. When node1's agent goes on, it
 * reads the old RunTask after its lease has run out: attempt 1 must not
 * begin there while attempt 2 runs (it once did, and its supervisor
 * fenced it only after the command had started).
 */
static void stale_start(void **state)
{
	struct h_cluster *c = *state;
	const char *runs = h_path(c, "stale.runs");
	char cmd[1024];
	uint64_t id;

	h_daemon_config(c, "[agents]\nheartbeat = 1s\nunreachable_after = 12\n"
			"fence_after = 3s\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));
	assert_true(h_wait_heartbeats(c, "node1", 2, 30000));
	assert_int_equal(kill(c->agents[0].pid, SIGSTOP), 0);
	snprintf(cmd, sizeof(cmd),
		 "exec 9>>%s.$HPQ_TASK_ID; flock -n 9 || echo overlap >> %s; "
		 "echo \"start $HPQ_ATTEMPT $$\" >> %s; "
		 "while [ ! -e %s ]; do sleep 0.1; done",
		 h_path(c, "stale.lock"), runs, runs, h_path(c, "stale.release"));
	id = h_submit(c, "--cpus", "2", "--grace", "1s", "--", "sh", "-c", cmd, NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));  /* sent to node1, unread */
	h_agent_start(c, "node2", 0, 2, "1G");
	/* node1 lost: attempt 2 on node2. */
	assert_true(H_WAIT_FOR(c, h_count_prefix(runs, "start 2 ") == 1, 60000));

	assert_int_equal(kill(c->agents[0].pid, SIGCONT), 0);
	assert_true(H_WAIT_FOR(c, h_file_has(c->agents[0].log, "lease from hpqd ran out") ||
					  h_count_prefix(runs, "start 1 ") > 0,
			       30000));
	assert_int_equal(h_count_prefix(runs, "start 1 "), 0);
	assert_int_equal(h_count_prefix(runs, "overlap"), 0);
	/* node1 comes back; attempt 2 ends as its own. */
	assert_true(h_wait_nodes(c, 2, 30000));
	h_write_file(h_path(c, "stale.release"), "");
	expect_end(c, id, "COMPLETED", 0, NULL);
	assert_int_equal(h_count_prefix(runs, "start 1 "), 0);
	assert_int_equal(h_count_prefix(runs, "overlap"), 0);
	h_pass(c);
}

/* The tmpfs goes also when the test failed half way (lazily: the agent
 * may still be in it until h_teardown stops it). */
static int full_teardown(void **state)
{
	struct h_cluster *c = *state;

	(void)umount2(h_path(c, "node1"), MNT_DETACH);
	return h_teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(exit0, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(signal_reported, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(kill_escalation, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(unjournaled, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(work_dir_full, h_setup, full_teardown),
		cmocka_unit_test_setup_teardown(fence, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(stale_start, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
