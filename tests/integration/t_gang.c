/*
 * t_gang: a task over several nodes starts on all of them together or
 * not at all. A 2-node gang on two idle agents runs once per node with
 * HPQ_NODE_RANK 0 and 1, HPQ_NNODES=2, one HPQ_MASTER_ADDR and the
 * environment it was submitted with on every node; the same
 * gang waits while one node is busy and starts when it frees up; a 3-node
 * gang on a 2-node cluster is refused at submit as impossible, and runs
 * once a third agent has joined.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define GANG_CMD "echo \"gang rank=$HPQ_NODE_RANK nnodes=$HPQ_NNODES master=$HPQ_MASTER_ADDR" \
		 " var=$HPQ_GANG_VAR\""
/* Exported at submit (hpq's own environment): every node's rank gets it. */
#define GANG_VAR "from-the-submit"

/* Checks a finished gang of n nodes: distinct nodes, each log has its own
 * rank line, all ranks 0..n-1 present, one master address. */
static void check_gang(struct h_cluster *c, uint64_t id, int n)
{
	json_t *t = h_task(c, id), *names;
	bool seen[8] = {false};
	char master[128] = "";

	assert_non_null(t);
	assert_string_equal(h_str(t, "state"), "COMPLETED");
	assert_int_equal(h_int(t, "nodes"), n);
	names = json_object_get(t, "node_names");
	assert_int_equal(json_array_size(names), n);
	for (int i = 0; i < n; i++) {
		const char *node = json_string_value(json_array_get(names, i));
		char *log, *line = NULL;
		int rank, nn;
		char m[128], v[64];

		assert_non_null(node);
		for (int k = 0; k < i; k++)
			assert_string_not_equal(node, json_string_value(json_array_get(names, k)));
		log = h_task_log(c, node, id);
		/* At a line start: the agent's header line quotes the command. */
		if (!log || !(line = strstr(log, "\ngang rank=")))
			fail_msg("gang %" PRIu64 ": no rank line in %s's log", id, node);
		m[0] = v[0] = '\0';
		assert_true(sscanf(line, "\ngang rank=%d nnodes=%d master=%127s var=%63s", &rank,
				   &nn, m, v) >= 2);
		assert_int_equal(nn, n);
		/* The environment, read from the state database once for all ranks. */
		if (strcmp(v, GANG_VAR))
			fail_msg("gang %" PRIu64 ": rank %d on %s got HPQ_GANG_VAR '%s'", id, rank,
				 node, v);
		assert_true(rank >= 0 && rank < n);
		assert_false(seen[rank]);
		seen[rank] = true;
		if (i == 0)
			snprintf(master, sizeof(master), "%s", m);
		assert_string_equal(master, m);
		free(log);
	}
	assert_true(master[0] != '\0');
	json_decref(t);
}

static void assert_pending(struct h_cluster *c, uint64_t id)
{
	json_t *t = h_task(c, id);

	assert_non_null(t);
	if (strcmp(h_str(t, "state"), "PENDING") != 0)
		fail_msg("gang %" PRIu64 " is %s, should wait", id, h_str(t, "state"));
	assert_int_equal(h_int(t, "attempts"), 0);
	json_decref(t);
}

/* Submits a gang of nodes x 1 or 2 CPUs that must wait. It has waited long
 * enough once the dispatcher has run a cycle since the submit and every
 * agent has sent two more heartbeats (what they report can change nothing
 * either): it is PENDING, never started, and was so all along. */
static uint64_t submit_waiting_gang(struct h_cluster *c, const char *nodes, const char *cpus)
{
	long long cycles = h_status_counter(c, "cycles");
	uint64_t id = h_submit(c, "--nodes", nodes, "--cpus", cpus, "--", "sh", "-c", GANG_CMD,
			       NULL);

	assert_pending(c, id);
	assert_true(h_wait_counter(c, "cycles", cycles + 1, 30000));
	for (int i = 0; i < c->nagents; i++) {
		assert_true(h_wait_heartbeats(c, c->agents[i].name, 2, 30000));
		assert_pending(c, id);
	}
	return id;
}

/*
 * Each row of `hpq list` names its own nodes, in rank order, as the task's
 * record does; also with --limit, which hpqd walks newest first and sends
 * oldest first (its columns reversed, node names and all). The newest
 * tasks are gangs of different sizes.
 */
static void check_list_nodes(struct h_cluster *c, int rows)
{
	struct h_out all, last;
	char limit[16], *tail, *line, *save = NULL;
	int n = 0;

	snprintf(limit, sizeof(limit), "%d", rows);
	assert_int_equal(h_hpq(c, &all, "list", "--all", "--format", "id,nodelist", "--noheader",
			       NULL), 0);
	assert_int_equal(h_hpq(c, &last, "list", "--all", "--limit", limit, "--format", "id,nodelist",
			       "--noheader", NULL), 0);
	/* --limit: the newest rows, as the whole list ends. */
	for (tail = all.out + strlen(all.out); tail > all.out; tail--)
		if (tail[-1] == '\n' && n++ == rows)
			break;
	assert_string_equal(tail, last.out);
	assert_non_null(strchr(last.out, ','));   /* gangs among them */
	for (line = strtok_r(last.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		uint64_t id = strtoull(line, NULL, 10);
		json_t *t = h_task(c, id), *names = json_object_get(t, "node_names");
		char want[512] = "", got[512] = "";

		for (size_t i = 0; i < json_array_size(names); i++)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
				 i ? "," : "", json_string_value(json_array_get(names, i)));
		if (sscanf(line, "%*s %511s", got) != 1)
			got[0] = '\0';
		if (strcmp(got, want))
			fail_msg("task %" PRIu64 ": hpq list names nodes '%s', its record '%s'", id,
				 got, want);
		json_decref(t);
	}
	h_out_free(&all);
	h_out_free(&last);
}

static void gang(void **state)
{
	struct h_cluster *c = *state;
	uint64_t id, blocker;
	struct h_out o;

	setenv("HPQ_GANG_VAR", GANG_VAR, 1);
	char ids[32];

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "2G");
	h_agent_start(c, "node2", 0, 2, "2G");
	assert_true(h_wait_nodes(c, 2, 30000));

	/* Both nodes idle: it starts on both. */
	id = h_submit(c, "--nodes", "2", "--cpus", "2", "--", "sh", "-c", GANG_CMD, NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	check_gang(c, id, 2);

	/* One node busy: it waits, and starts when that node frees up. */
	blocker = h_submit(c, "--cpus", "2", "--", "sleep", "120", NULL);
	assert_true(h_wait_state(c, blocker, "RUNNING", 30000));
	id = submit_waiting_gang(c, "2", "2");
	snprintf(ids, sizeof(ids), "%" PRIu64, blocker);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);
	assert_true(h_wait_state(c, blocker, "CANCELLED", 30000));
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	check_gang(c, id, 2);

	/* More nodes than the pool has: refused at submit, saying so; once a
	 * third node has joined, the same request runs. */
	assert_int_not_equal(h_hpq(c, &o, "submit", "--nodes", "3", "--cpus", "1", "--", "sh",
				   "-c", GANG_CMD, NULL), 0);
	if (!strstr(o.err, "impossible request") || !strstr(o.err, "only 2 nodes"))
		fail_msg("a gang of 3 on 2 nodes was refused with: %s", o.err);
	h_out_free(&o);
	h_agent_start(c, "node3", 0, 2, "2G");
	assert_true(h_wait_nodes(c, 3, 30000));
	id = h_submit(c, "--nodes", "3", "--cpus", "1", "--", "sh", "-c", GANG_CMD, NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	check_gang(c, id, 3);
	check_list_nodes(c, 3);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(gang, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
