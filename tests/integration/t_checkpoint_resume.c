/*
 * t_checkpoint_resume: a training task checkpoints, loses its node, and
 * resumes from its newest checkpoint elsewhere. The example trainer
 * reports each checkpoint with `hpq checkpoint` through its agent's
 * socket ($HPQ_AGENT_SOCKET), so the checkpoints hpq show lists went task
 * -> agent -> daemon -> commit. When the node dies (agent and task killed
 * with SIGKILL), the task is requeued after the unreachable grace and
 * attempt 2 starts with HPQ_RESUME_FROM naming the newest checkpoint the
 * daemon committed: the trainer says "resumed at step N" for exactly that
 * N and finishes the remaining steps only. (Its first attempt would run
 * until stopped, so it is still running when its node dies however slow
 * the machine; the second runs to h_resumed_steps(N).)
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Newest checkpoint step of a task for attempt (0: any), or -1. */
static long long newest_step(json_t *t, unsigned attempt)
{
	json_t *cks = json_object_get(t, "checkpoints"), *ck;
	long long best = -1;
	size_t i;

	json_array_foreach(cks, i, ck)
		if ((!attempt || h_int(ck, "attempt") == attempt) && h_int(ck, "step") > best)
			best = h_int(ck, "step");
	return best;
}

static long long task_newest_step(struct h_cluster *c, uint64_t id)
{
	json_t *t = h_task(c, id);
	long long s = t ? newest_step(t, 0) : -1;

	json_decref(t);
	return s;
}

static void checkpoint_resume(void **state)
{
	struct h_cluster *c = *state;
	char cmd[1024], node[32], want[64], *log;
	pid_t pids[16];
	long long last;
	uint64_t id;
	json_t *t;
	int n;

	if (!*h_bin("trainer"))
		skip();
	h_daemon_config(c, "[agents]\nheartbeat = 1s\nunreachable_after = 3\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 1, 2, "2G");
	h_agent_start(c, "node2", 1, 2, "2G");
	assert_true(h_wait_nodes(c, 2, 30000));

	id = h_submit(c, "--name", "train", "--gpus", "1", "--cpus", "2", "--checkpoint-dir",
		      h_path(c, "ckpt"), "--", "sh", "-c", h_trainer_cmd(cmd, sizeof(cmd), 5),
		      NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, task_newest_step(c, id) >= 10, 30000));

	t = h_task(c, id);
	snprintf(node, sizeof(node), "%s",
		 json_string_value(json_array_get(json_object_get(t, "node_names"), 0)));
	json_decref(t);

	/* The node dies: its agent and the trainer's process group. */
	n = h_task_pids(c, id, pids, 16);
	assert_true(n >= 1);
	h_agent_stop(c, h_agent_index(c, node), SIGKILL);
	for (int i = 0; i < n; i++)
		kill(-pids[i], SIGKILL);
	/* Nothing can report a checkpoint now: this is the newest. */
	last = task_newest_step(c, id);
	assert_true(last >= 10);
	fprintf(stderr, "killed %s with the trainer past step %lld\n", node, last);

	assert_true(h_wait_state(c, id, "COMPLETED", 60000));
	t = h_task(c, id);
	assert_int_equal(h_int(t, "attempts"), 2);
	assert_string_not_equal(json_string_value(json_array_get(json_object_get(t, "node_names"),
								 0)),
				node);
	assert_int_equal(newest_step(t, 1), last);
	assert_int_equal(newest_step(t, 2), h_resumed_steps(last));
	/* Attempt 2 checkpointed only after where attempt 1 left off. */
	{
		json_t *ck;
		size_t i;

		json_array_foreach(json_object_get(t, "checkpoints"), i, ck)
			if (h_int(ck, "attempt") == 2)
				assert_true(h_int(ck, "step") > last);
	}

	log = h_task_log(c, json_string_value(json_array_get(json_object_get(t, "node_names"), 0)),
			 id);
	assert_non_null(log);
	snprintf(want, sizeof(want), "\nresumed at step %lld\n", last);
	if (!strstr(log, want))
		fail_msg("attempt 2 did not resume at step %lld; its log:\n%s", last, log);
	snprintf(want, sizeof(want), "\ndone %lld steps\n", h_resumed_steps(last));
	if (!strstr(log, want))
		fail_msg("attempt 2 did not run to step %lld; its log:\n%s", h_resumed_steps(last),
			 log);
	assert_null(strstr(log, "\nstarting at step 0\n"));
	free(log);
	json_decref(t);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(checkpoint_resume, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
