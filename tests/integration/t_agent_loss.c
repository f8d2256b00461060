/*
 * t_agent_loss: a node dies under a running task. The agent is killed
 * with SIGKILL and so is the task's process group (the machine is gone).
 * After unreachable_after heartbeats (3 x 1 s here) the daemon declares
 * the node unreachable and requeues the task, which runs again, as
 * attempt 2, on the other node. When the dead node's agent comes back
 * with its old work dir, the task's finished record is not disturbed and
 * the node returns to service.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static json_t *find_node(json_t *nodes, const char *name)
{
	size_t i;
	json_t *n;

	json_array_foreach(nodes, i, n)
		if (strcmp(h_str(n, "name"), name) == 0)
			return n;
	return NULL;
}

static bool node_is(struct h_cluster *c, const char *name, const char *health, bool connected)
{
	json_t *nodes = h_hpq_json(c, "node", "list", NULL);
	json_t *n = find_node(nodes, name);
	bool ok = n && strcmp(h_str(n, "health"), health) == 0 &&
		  json_is_true(json_object_get(n, "connected")) == connected;

	json_decref(nodes);
	return ok;
}

static void agent_loss(void **state)
{
	struct h_cluster *c = *state;
	char cmd[256], *text = NULL, line[64], first[32];
	const char *other;
	uint64_t id;
	int lost, pgid = 0;
	json_t *t;

	h_daemon_config(c, "[agents]\nheartbeat = 1s\nunreachable_after = 3\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "2G");
	h_agent_start(c, "node2", 0, 2, "2G");
	assert_true(h_wait_nodes(c, 2, 30000));

	/* Attempt 1 runs until killed; later attempts finish at once. */
	snprintf(cmd, sizeof(cmd),
		 "echo \"$HPQ_ATTEMPT $$\" >> %s; [ \"$HPQ_ATTEMPT\" -ge 2 ] || sleep 120",
		 h_path(c, "attempts"));
	id = h_submit(c, "--cpus", "2", "--", "sh", "-c", cmd, NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, (free(text), text = h_read_file(h_path(c, "attempts"))) &&
					  sscanf(text, "1 %d", &pgid) == 1, 30000));
	free(text);
	t = h_task(c, id);
	assert_non_null(json_string_value(json_array_get(json_object_get(t, "node_names"), 0)));
	snprintf(first, sizeof(first), "%s",
		 json_string_value(json_array_get(json_object_get(t, "node_names"), 0)));
	json_decref(t);
	lost = h_agent_index(c, first);
	assert_true(lost >= 0);
	other = strcmp(first, "node1") == 0 ? "node2" : "node1";

	/* The machine dies: its agent and everything on it. */
	h_agent_stop(c, lost, SIGKILL);
	kill(-pgid, SIGKILL);
	int64_t t0 = h_now_ms();
	assert_true(H_WAIT_FOR(c, node_is(c, first, "unreachable", false), 30000));
	fprintf(stderr, "%s unreachable after %" PRId64 " ms\n", first, h_now_ms() - t0);

	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	t = h_task(c, id);
	assert_int_equal(h_int(t, "attempts"), 2);
	assert_int_equal(h_int(t, "exit_code"), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(t, "node_names"), 0)),
			    other);
	snprintf(line, sizeof(line), "1 %d", pgid);
	assert_int_equal(h_count_lines(h_path(c, "attempts"), line), 1);
	text = h_read_file(h_path(c, "attempts"));
	assert_non_null(strstr(text, "\n2 "));
	free(text);
	json_decref(t);

	/* The node comes back with its old work dir: the task is done and
	 * stays so, and the node is in service again. Its agent reported what
	 * its journal held when it registered; three heartbeats and two node
	 * checks later nothing has changed that record. */
	h_agent_restart(c, lost);
	assert_true(H_WAIT_FOR(c, node_is(c, first, "healthy", true), 30000));
	assert_true(h_wait_heartbeats(c, first, 3, 30000));
	assert_true(h_wait_node_checks(c, 2, 30000));
	t = h_task(c, id);
	assert_string_equal(h_str(t, "state"), "COMPLETED");
	assert_int_equal(h_int(t, "attempts"), 2);
	json_decref(t);
	assert_int_equal(h_count_lines(h_path(c, "attempts"), line), 1);

	/* And it takes work again. */
	id = h_submit(c, "--nodes", "2", "--cpus", "2", "--", "true", NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(agent_loss, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
