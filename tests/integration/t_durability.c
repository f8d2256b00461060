/*
 * t_durability: the promise of docs/design.md §6 under fire. Several clients
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
 * The kills come at moments set by progress, not by a clock: each once
 * some more submits have been acknowledged since the last start of hpqd
 * and a task runs on an agent; hpqd restarts once some client has had a
 * submit fail against the dead daemon. The clients keep submitting all
 * along: each submits again as soon as its previous task started (or
 * hpqd is gone), and after a failed submit as soon as hpqd's socket
 * accepts connections again.
 *
 * The unreachable grace is long (1000 heartbeats, longer than the test
 * may run) so that agents always reconnect in time: this test is about
 * adoption, t_agent_loss about loss.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define NCLIENTS 4
#define MAX_PER_CLIENT 100
#define NKILLS 3
#define MAX_TASKS (NCLIENTS * MAX_PER_CLIENT)
/* Acknowledged submits between one start of hpqd and the next kill. */
#define ACKS_PER_ROUND 6
/* A deadline for progress that a loaded machine still makes in time. */
#define PROGRESS_MS 60000

/* Whether hpqd accepts connections on its Unix socket now. */
static bool daemon_up(struct h_cluster *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->sock);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Whether the runs file has a start line of task id. */
static bool has_started(struct h_cluster *c, uint64_t id)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "start %" PRIu64 " ", id);
	return h_count_prefix(h_path(c, "runs"), prefix) > 0;
}

/* In a submitter: polls cond (50 ms) until it holds or the stop file is
 * there; exits the client with a message if neither comes in time. */
#define CLIENT_WAIT(c, k, stop, cond, what) do {				\
	int64_t end_ = h_now_ms() + PROGRESS_MS;				\
	while (!(cond) && access(stop, F_OK) < 0) {				\
		if (h_now_ms() >= end_) {					\
			fprintf(stderr, "client %d: %s within %d ms\n", k, what,	\
				PROGRESS_MS);					\
			_exit(3);						\
		}								\
		h_sleep_ms(50);							\
	}									\
} while (0)

/* One submitting client: a child process running the CLI in a loop until
 * the stop file appears. Writes "ID NAME" to acked.K for each acknowledged
 * submit and a line to refused.K for each failed one. Paced by progress:
 * after an acknowledged submit it waits until that task has started, or
 * hpqd is gone (then its next submit meets the dead daemon); after a
 * failed one, until hpqd accepts connections again. */
static void submitter(struct h_cluster *c, int k)
{
	char name[32], cmd[512], stop[256];
	FILE *acked, *refused;

	snprintf(stop, sizeof(stop), "%s", h_path(c, "stop"));
	snprintf(cmd, sizeof(cmd),
		 "echo \"start $HPQ_TASK_ID $HPQ_ATTEMPT\" >> %s; sleep 2; "
		 "echo \"end $HPQ_TASK_ID $HPQ_ATTEMPT\" >> %s",
		 h_path(c, "runs"), h_path(c, "runs"));
	acked = fopen(h_path(c, "acked.%d", k), "we");
	refused = fopen(h_path(c, "refused.%d", k), "we");
	if (!acked || !refused)
		_exit(2);
	setvbuf(acked, NULL, _IOLBF, 0);
	setvbuf(refused, NULL, _IOLBF, 0);
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
		else
			fprintf(refused, "%s %d\n", name, o.code);
		h_out_free(&o);
		if (id)
			CLIENT_WAIT(c, k, stop, has_started(c, id) || !daemon_up(c),
				    "an acknowledged task did not start");
		else
			CLIENT_WAIT(c, k, stop, daemon_up(c), "hpqd did not come back");
	}
	fclose(acked);
	fclose(refused);
	_exit(0);
}

/* Lines in all clients' acked.K (or refused.K) files. */
static int count_all(struct h_cluster *c, const char *what)
{
	int n = 0;

	for (int k = 0; k < NCLIENTS; k++) {
		char *text = h_read_file(h_path(c, "%s.%d", what, k));

		for (char *p = text; p && *p; p++)
			n += *p == '\n';
		free(text);
	}
	return n;
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

	h_daemon_config(c, "[agents]\nheartbeat = 1s\nunreachable_after = 1000\n");
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
		int n, acks = count_all(c, "acked"), refusals;

		/* Let more submits be acknowledged, and tasks start, then kill
		 * hpqd while some of them run. */
		if (!H_WAIT_FOR(c, count_all(c, "acked") >= acks + ACKS_PER_ROUND &&
				      running_now(c, adopted + nadopted, 1) > 0, PROGRESS_MS))
			fail_msg("before kill %d: %d submits acknowledged since the last start "
				 "(want %d), %d tasks running", kill + 1,
				 count_all(c, "acked") - acks, ACKS_PER_ROUND,
				 running_now(c, adopted + nadopted, 1));
		refusals = count_all(c, "refused");
		h_daemon_stop(c, SIGKILL);
		n = running_now(c, adopted + nadopted, MAX_TASKS * NKILLS - nadopted);
		fprintf(stderr, "kill %d: %d tasks running on agents\n", kill + 1, n);
		nadopted += n;
		/* The clients meet the dead daemon before it comes back. */
		if (!H_WAIT_FOR(c, count_all(c, "refused") > refusals, PROGRESS_MS))
			fail_msg("after kill %d: no client had a submit refused", kill + 1);
		h_daemon_start(c);
	}
	/* Traffic goes on after the last restart. */
	{
		int acks = count_all(c, "acked");

		if (!H_WAIT_FOR(c, count_all(c, "acked") >= acks + ACKS_PER_ROUND, PROGRESS_MS))
			fail_msg("after the last restart: %d submits acknowledged (want %d)",
				 count_all(c, "acked") - acks, ACKS_PER_ROUND);
	}
	h_write_file(h_path(c, "stop"), "");
	for (int k = 0; k < NCLIENTS; k++) {
		int st = h_wait_child(c, clients[k], 2 * PROGRESS_MS);

		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("client %d ended with status %#x (see its message above)", k, st);
	}
	/* Some kill must have hit running tasks, or adoption went untested. */
	assert_true(nadopted > 0);

	if (!H_WAIT_FOR(c, ({
		json_decref(tasks);
		tasks = h_tasks(c);
		count_terminal(tasks) == (int)json_array_size(tasks);
	}), 120000))
		fail_msg("%d of %zu tasks ended", count_terminal(tasks), json_array_size(tasks));

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
