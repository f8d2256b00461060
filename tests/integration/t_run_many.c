/*
 * t_run_many: two agents, 200 tasks through the real CLI, each with an
 * exit status known in advance (plain exits, a signal death, output to the
 * task log, a GPU request). Every task must end COMPLETED or FAILED with
 * exactly that exit_code, after one attempt, on a node that exists, and
 * the output of the ones that print must be in their node's task log.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NTASKS 200

struct expect {
	uint64_t id;
	int exit_code;
	const char *marker; /* a line the task prints, or NULL */
	char buf[64];
};

/* The command of task i and what it must end with. */
static void task_command(int i, struct expect *e, char *cmd, size_t len)
{
	e->marker = NULL;
	switch (i % 5) {
	case 0:
	case 1:
	case 2:
		snprintf(cmd, len, "exit %d", i % 5 == 0 ? 0 : 100 + i % 7);
		e->exit_code = i % 5 == 0 ? 0 : 100 + i % 7;
		break;
	case 3:
		/* Death by signal is 128 + signo, the shell's rule. */
		snprintf(cmd, len, "kill -TERM $$");
		e->exit_code = 128 + 15;
		break;
	default:
		snprintf(e->buf, sizeof(e->buf), "\nout-%d gpu=", i); /* a line start */
		snprintf(cmd, len, "echo \"out-%d gpu=$CUDA_VISIBLE_DEVICES\"", i);
		e->marker = e->buf;
		e->exit_code = 0;
		break;
	}
}

/* The task's log, on whichever node ran it. */
static char *task_log(struct h_cluster *c, json_t *t)
{
	json_t *names = json_object_get(t, "node_names");
	const char *node = json_string_value(json_array_get(names, 0));

	if (!node)
		return NULL;
	return h_task_log(c, node, (uint64_t)h_int(t, "id"));
}

static int count_terminal(json_t *tasks)
{
	size_t i;
	json_t *t;
	int n = 0;

	json_array_foreach(tasks, i, t)
		n += h_is_terminal(h_str(t, "state"));
	return n;
}

static void run_many(void **state)
{
	struct h_cluster *c = *state;
	static struct expect exp[NTASKS];
	char cmd[128];
	json_t *tasks = NULL;
	int64_t t0;

	h_daemon_start(c);
	h_agent_start(c, "node1", 2, 4, "4G");
	h_agent_start(c, "node2", 2, 4, "4G");
	assert_true(h_wait_nodes(c, 2, 30000));

	t0 = h_now_ms();
	for (int i = 0; i < NTASKS; i++) {
		task_command(i, &exp[i], cmd, sizeof(cmd));
		if (exp[i].marker)
			exp[i].id = h_submit(c, "--gpus", "1", "--", "sh", "-c", cmd, NULL);
		else
			exp[i].id = h_submit(c, "--", "sh", "-c", cmd, NULL);
		for (int k = 0; k < i; k++)
			assert_true(exp[k].id != exp[i].id);
	}
	fprintf(stderr, "submitted %d tasks in %" PRId64 " ms\n", NTASKS, h_now_ms() - t0);

	bool done = H_WAIT_FOR(c, ({
		json_decref(tasks);
		tasks = h_tasks(c);
		count_terminal(tasks) == NTASKS;
	}), 150000);
	fprintf(stderr, "%d of %zu tasks ended after %" PRId64 " ms\n", count_terminal(tasks),
		json_array_size(tasks), h_now_ms() - t0);
	assert_true(done);
	assert_int_equal(json_array_size(tasks), NTASKS);

	for (int i = 0; i < NTASKS; i++) {
		json_t *t = h_find_task(tasks, exp[i].id);
		const char *want = exp[i].exit_code == 0 ? "COMPLETED" : "FAILED";
		const char *node;

		assert_non_null(t);
		if (strcmp(h_str(t, "state"), want) != 0 || h_int(t, "exit_code") != exp[i].exit_code) {
			char *dump = json_dumps(t, JSON_COMPACT);
			fail_msg("task %" PRIu64 ": want %s/%d, got %s", exp[i].id, want,
				 exp[i].exit_code, dump);
		}
		assert_int_equal(h_int(t, "attempts"), 1);
		node = json_string_value(json_array_get(json_object_get(t, "node_names"), 0));
		assert_non_null(node);
		assert_true(h_agent_index(c, node) >= 0);
		assert_non_null(json_object_get(t, "start_time"));
		assert_non_null(json_object_get(t, "end_time"));
		if (exp[i].marker) {
			char *log = task_log(c, t);

			if (!log || !strstr(log, exp[i].marker))
				fail_msg("task %" PRIu64 ": no '%s' in its log on %s", exp[i].id,
					 exp[i].marker, node);
			/* One GPU was requested, so the agent named one. */
			char *gpu = strstr(log, exp[i].marker) + strlen(exp[i].marker);
			assert_true(*gpu >= '0' && *gpu <= '9');
			free(log);
		}
	}
	json_decref(tasks);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(run_many, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
