/*
 * t_durability: the promise of DESIGN §6 under fire. Several clients
 * submit in a loop through the CLI while hpqd is killed with SIGKILL
 * three times and restarted on the same state dir and port. Afterwards:
 *
 * - every task whose submit was acknowledged (the CLI printed its id and
 *   exited 0) exists, under the name it was submitted with;
 * - nothing is duplicated: each submit attempt has a unique name, and no
 *   name appears twice;
 * - every task ran exactly once: each task's command appends a start and
 *   an end line to one file, and each task has one of each;
 * - tasks that were running on the agents when hpqd died were adopted
 *   after the restart: the attempt that ran across the kill is the
 *   task's last one.
 *
 * The unreachable grace is long (15 heartbeats) so that agents always
 * reconnect in time: this test is about adoption, t_agent_loss about loss.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define NCLIENTS 4
#define MAX_PER_CLIENT 60
#define NKILLS 3
#define MAX_TASKS (NCLIENTS * MAX_PER_CLIENT)

/* One submitting client: a child process running the CLI in a loop until
 * the stop file appears. Writes "ID NAME" for each acknowledged submit. */
static void submitter(struct h_cluster *c, int k)
{
	char name[32], cmd[512], stop[256];
	FILE *acked;

	snprintf(stop, sizeof(stop), "%s", h_path(c, "stop"));
	snprintf(cmd, sizeof(cmd),
		 "echo \"start $HPQ_TASK_ID $HPQ_ATTEMPT\" >> %s; sleep 2; "
		 "echo \"end $HPQ_TASK_ID $HPQ_ATTEMPT\" >> %s",
		 h_path(c, "runs"), h_path(c, "runs"));
	acked = fopen(h_path(c, "acked.%d", k), "we");
	if (!acked)
		_exit(2);
	setvbuf(acked, NULL, _IOLBF, 0);
	for (int n = 0; n < MAX_PER_CLIENT && access(stop, F_OK) < 0; n++) {
		const char *argv[] = {"submit", "--name", name, "--cpus", "1", "--",
				      "sh", "-c", cmd, NULL};
		struct h_out o;
		uint64_t id;

		snprintf(name, sizeof(name), "c%d-%d", k, n);
		h_hpqv(c, &o, argv);
		id = o.code == 0 ? h_parse_id(o.out) : 0;
		if (id)
			fprintf(acked, "%" PRIu64 " %s\n", id, name);
		h_out_free(&o);
		h_sleep_ms(id ? 150 : 100);
	}
	fclose(acked);
	_exit(0);
}

/* One run of a task, as its command logged it. */
struct run {
	uint64_t id;
	unsigned attempt;
};

/* Runs with a start line and no end line in the runs file. */
static int running_now(struct h_cluster *c, struct run *runs, int max)
{
	char *text = h_read_file(h_path(c, "runs")), *line, *save = NULL;
	struct run started[MAX_TASKS * 2];
	int nstarted = 0, n = 0;

	if (!text)
		return 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long id;
		unsigned att;

		if (sscanf(line, "start %llu %u", &id, &att) == 2 && nstarted < MAX_TASKS * 2)
			started[nstarted++] = (struct run){id, att};
		else if (sscanf(line, "end %llu %u", &id, &att) == 2)
			for (int i = 0; i < nstarted; i++)
				if (started[i].id == id && started[i].attempt == att)
					started[i].id = 0;
	}
	free(text);
	for (int i = 0; i < nstarted && n < max; i++)
		if (started[i].id)
			runs[n++] = started[i];
	return n;
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

static void durability(void **state)
{
	struct h_cluster *c = *state;
	pid_t clients[NCLIENTS];
	struct run adopted[MAX_TASKS * NKILLS];
	int nadopted = 0, nacked = 0;
	json_t *tasks = NULL, *t;
	size_t i;

	h_daemon_config(c, "[agents]\nheartbeat = 1s\nunreachable_after = 15\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 8, "8G");
	h_agent_start(c, "node2", 0, 8, "8G");
	assert_true(h_wait_nodes(c, 2, 30000));

	for (int k = 0; k < NCLIENTS; k++) {
		clients[k] = fork();
		assert_true(clients[k] >= 0);
		if (clients[k] == 0)
			submitter(c, k);
	}

	for (int kill = 0; kill < NKILLS; kill++) {
		int n;

		/* Let tasks get submitted and started, then kill hpqd while
		 * some of them run. */
		h_sleep_ms(kill == 0 ? 2500 : 1500);
		H_WAIT_FOR(c, running_now(c, adopted + nadopted, 1) > 0, 5000);
		h_daemon_stop(c, SIGKILL);
		n = running_now(c, adopted + nadopted, MAX_TASKS * NKILLS - nadopted);
		fprintf(stderr, "kill %d: %d tasks running on agents\n", kill + 1, n);
		nadopted += n;
		h_sleep_ms(300 + 200 * kill);
		h_daemon_start(c);
	}
	h_sleep_ms(1000);
	h_write_file(h_path(c, "stop"), "");
	for (int k = 0; k < NCLIENTS; k++) {
		int st = h_wait_child(c, clients[k], 60000);

		assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	/* Some kill must have hit running tasks, or adoption went untested. */
	assert_true(nadopted > 0);

	bool done = H_WAIT_FOR(c, ({
		json_decref(tasks);
		tasks = h_tasks(c);
		count_terminal(tasks) == (int)json_array_size(tasks);
	}), 90000);
	assert_true(done);

	/* Every acknowledged submit exists, under its name. */
	for (int k = 0; k < NCLIENTS; k++) {
		char *text = h_read_file(h_path(c, "acked.%d", k)), *line, *save = NULL;

		assert_non_null(text);
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			unsigned long long id;
			char name[32];

			assert_int_equal(sscanf(line, "%llu %31s", &id, name), 2);
			t = h_find_task(tasks, id);
			if (!t)
				fail_msg("acknowledged task %llu (%s) is lost", id, name);
			assert_string_equal(h_str(t, "name"), name);
			nacked++;
		}
		free(text);
	}
	fprintf(stderr, "%d submits acknowledged, %zu tasks stored, %d adopted\n", nacked,
		json_array_size(tasks), nadopted);
	assert_true(nacked > 0);

	/* Nothing duplicated, everything ran exactly once. */
	json_array_foreach(tasks, i, t) {
		char prefix[64];
		const char *name = h_str(t, "name");
		uint64_t id = (uint64_t)h_int(t, "id");
		size_t j;
		json_t *u;

		json_array_foreach(tasks, j, u)
			if (j != i && strcmp(h_str(u, "name"), name) == 0)
				fail_msg("tasks %" PRIu64 " and %lld both have the name %s", id,
					 h_int(u, "id"), name);
		if (strcmp(h_str(t, "state"), "COMPLETED") != 0 || h_int(t, "exit_code") != 0) {
			char *dump = json_dumps(t, JSON_COMPACT);
			fail_msg("task %" PRIu64 " did not complete: %s", id, dump);
		}
		snprintf(prefix, sizeof(prefix), "start %" PRIu64 " ", id);
		if (h_count_prefix(h_path(c, "runs"), prefix) != 1)
			fail_msg("task %" PRIu64 " started %d times", id,
				 h_count_prefix(h_path(c, "runs"), prefix));
		snprintf(prefix, sizeof(prefix), "end %" PRIu64 " ", id);
		assert_int_equal(h_count_prefix(h_path(c, "runs"), prefix), 1);
	}

	/* The runs going on at a kill were adopted: the attempt that ran then
	 * is the task's last. (It need not be attempt 1: a start committed
	 * just before an earlier kill and never sent is requeued, which is
	 * right, since that attempt never ran.) */
	for (int k = 0; k < nadopted; k++) {
		t = h_find_task(tasks, adopted[k].id);
		assert_non_null(t);
		if (h_int(t, "attempts") != adopted[k].attempt)
			fail_msg("task %" PRIu64 " ran attempt %u across a daemon kill, and ended "
				 "with %lld attempts", adopted[k].id, adopted[k].attempt,
				 h_int(t, "attempts"));
	}
	json_decref(tasks);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(durability, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
