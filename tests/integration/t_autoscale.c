/*
 * t_autoscale: hpqd's autoscaler ([autoscale.POOL]) with real processes.
 *
 * The provision command is a shell script written here that starts a real
 * hpq-agent on hpqd's Unix socket for every node name it is given (with
 * the template from its environment) and logs each call; the deprovision
 * script stops those agents. Files in the temp dir steer the provision
 * script: "hold" makes it wait (before it starts any agent) until the file
 * is gone, "hang" makes it start none (the launch times out), "fail" makes
 * it fail with a message. Covered:
 *   - a burst on an empty pool launches exactly the nodes it needs, shown
 *     `launching` until their agents register; the tasks run; once idle
 *     the nodes are drained, deprovisioned and removed;
 *   - a team that may not borrow causes launches for its guarantee only;
 *   - an array's pending indices are demand: one launch for all of them;
 *   - a bad [autoscale.POOL] section is refused with a clear message;
 *   - a launch that times out is undone, the pool backs off (pending
 *     reason launch-failed) and a later launch succeeds;
 *   - a failing provision command's output is in its event;
 *   - consolidation moves preemptible work off a node to its checkpoint
 *     and removes the node, one node at a time (budget 1), and never
 *     touches a node with non-preemptible work;
 *   - a node past max_node_lifetime is replaced: the new one first;
 *   - hpqd killed in the middle of a launch does not launch again.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* The scripts, and a config for pool "burst" with extra lines. */
static void setup_pool(struct h_cluster *c, const char *extra)
{
	char *text, *conf;

	if (asprintf(&text,
		     "#!/bin/sh\n"
		     "# provision: an hpq-agent for each node named\n"
		     "echo \"provision $* pool=$HPQ_AUTOSCALE_POOL cpus=$HPQ_AUTOSCALE_CPUS "
		     "mem=$HPQ_AUTOSCALE_MEM nodes=$HPQ_AUTOSCALE_NODES\" >> %s/provision.log\n"
		     "if [ -e %s/fail ]; then echo 'out of capacity: quota exceeded for "
		     "instance type x1'; exit 3; fi\n"
		     "[ -e %s/hang ] && exit 0\n"
		     "while [ -e %s/hold ]; do sleep 0.05; done\n"
		     "for n in \"$@\"; do\n"
		     "  mkdir -p %s/$n\n"
		     "  %s --foreground --server %s --name $n --pool $HPQ_AUTOSCALE_POOL "
		     "--work-dir %s/$n --gpus $HPQ_AUTOSCALE_GPUS --cpus $HPQ_AUTOSCALE_CPUS "
		     "--mem ${HPQ_AUTOSCALE_MEM}M --heartbeat 1s --allow-root-tasks "
		     "--log-level debug > %s/$n.log 2>&1 &\n"
		     "  echo $! > %s/$n.pid\n"
		     "done\n",
		     c->dir, c->dir, c->dir, c->dir, c->dir, h_bin("agent"), c->sock, c->dir,
		     c->dir, c->dir) < 0)
		fail();
	h_write_file(h_path(c, "provision.sh"), text);
	chmod(h_path(c, "provision.sh"), 0755);
	free(text);
	if (asprintf(&text,
		     "#!/bin/sh\n"
		     "# deprovision: stop the agents of the nodes named\n"
		     "echo \"deprovision $*\" >> %s/deprovision.log\n"
		     "for n in \"$@\"; do\n"
		     "  [ -e %s/$n.pid ] || continue\n"
		     "  pid=$(cat %s/$n.pid)\n"
		     "  kill $pid 2>/dev/null\n"
		     "  while kill -0 $pid 2>/dev/null; do sleep 0.05; done\n"
		     "  rm -f %s/$n.pid\n"
		     "done\n",
		     c->dir, c->dir, c->dir, c->dir) < 0)
		fail();
	h_write_file(h_path(c, "deprovision.sh"), text);
	chmod(h_path(c, "deprovision.sh"), 0755);
	free(text);
	if (asprintf(&conf,
		     "[agents]\nheartbeat = 1s\n\n"
		     "[autoscale.burst]\n"
		     "max_nodes = 4\n"
		     "cpus = 2\n"
		     "mem = 1G\n"
		     "labels = spot,x1\n"
		     "provision_command = %s\n"
		     "deprovision_command = %s\n"
		     "%s",
		     h_path(c, "provision.sh"), h_path(c, "deprovision.sh"), extra) < 0)
		fail();
	h_daemon_config(c, conf);
	free(conf);
}

/* Lines of name's log (provision.log, deprovision.log) that start with prefix. */
static int log_lines(struct h_cluster *c, const char *name, const char *prefix)
{
	return h_count_prefix(h_path(c, "%s", name), prefix);
}

/* Node names the provision script was given, over all its calls. */
static int provisioned(struct h_cluster *c)
{
	char *text = h_read_file(h_path(c, "provision.log"));
	int n = 0;

	for (char *line = text, *end; line && *line; line = *end ? end + 1 : end) {
		char *p = line + strlen("provision");

		end = line + strcspn(line, "\n");
		/* "provision NAME... pool=" */
		for (char *q = p; q < end && strncmp(q, " pool=", 6); q++)
			if (q[0] == ' ' && q[1] != ' ')
				n++;
	}
	free(text);
	return n;
}

/* Nodes of pool in `hpq node list`, and how many have service svc (NULL: any). */
static int nodes_in(struct h_cluster *c, const char *pool, const char *svc)
{
	json_t *nodes = h_hpq_json(c, "node", "list", NULL), *n;
	size_t i;
	int count = 0;

	json_array_foreach(nodes, i, n)
		if (!strcmp(h_str(n, "pool"), pool) && (!svc || !strcmp(h_str(n, "service"), svc)))
			count++;
	json_decref(nodes);
	return count;
}

static const char *task_reason(struct h_cluster *c, uint64_t id, char *buf, size_t len)
{
	json_t *t = h_task(c, id);

	snprintf(buf, len, "%s", t ? h_str(t, "reason") : "");
	json_decref(t);
	return buf;
}

/* A task of cpus CPUs in pool burst that runs until <dir>/go exists. */
static uint64_t submit_wait(struct h_cluster *c, const char *cpus)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "while [ ! -e %s/go ]; do sleep 0.1; done", c->dir);
	return h_submit(c, "--pool", "burst", "--cpus", cpus, "--mem", "100M", "--", "sh", "-c",
			cmd, NULL);
}

/* ---------------------------------------------------------------- the tests */

static void burst_up_and_down(void **state)
{
	struct h_cluster *c = *state;
	uint64_t ids[6];

	setup_pool(c, "idle_timeout = 2s\nlaunch_timeout = 60s\n");
	h_write_file(h_path(c, "hold"), "");
	h_daemon_start(c);
	/* The pool exists before its first node: work can be submitted. */
	assert_int_equal(nodes_in(c, "burst", NULL), 0);
	/* But not work no node of its template could hold, nor more such
	 * nodes than max_nodes: refused at submit, nothing launched. */
	{
		struct h_out o;

		assert_int_not_equal(h_hpq(c, &o, "submit", "--pool", "burst", "--cpus", "3",
					   "--", "true", NULL), 0);
		assert_non_null(strstr(o.err, "impossible request: pool burst grows by nodes of"));
		h_out_free(&o);
		assert_int_not_equal(h_hpq(c, &o, "submit", "--pool", "burst", "--cpus", "1",
					   "--nodes", "5", "--", "true", NULL), 0);
		assert_non_null(strstr(o.err, "at most 4"));
		h_out_free(&o);
	}

	/* Six 1-CPU tasks on 2-CPU nodes: three nodes, all at once. */
	for (int i = 0; i < 6; i++)
		ids[i] = submit_wait(c, "1");
	assert_true(H_WAIT_FOR(c, log_lines(c, "provision.log", "provision ") >= 1, 30000));
	assert_true(H_WAIT_FOR(c, nodes_in(c, "burst", "launching") == 3, 30000));
	unlink(h_path(c, "hold"));
	for (int i = 0; i < 6; i++)
		assert_true(h_wait_state(c, ids[i], "RUNNING", 60000));
	assert_int_equal(provisioned(c), 3);
	assert_int_equal(nodes_in(c, "burst", "active"), 3);
	/* Labels and capacity of the template reached the script. */
	assert_int_equal(log_lines(c, "provision.log", "provision burst-1 pool=burst cpus=2 "
				   "mem=1024 nodes=burst-1"), 1);

	/* Done: the nodes go once empty for idle_timeout, all of them. */
	h_write_file(h_path(c, "go"), "");
	for (int i = 0; i < 6; i++)
		assert_true(h_wait_state(c, ids[i], "COMPLETED", 60000));
	assert_true(H_WAIT_FOR(c, nodes_in(c, "burst", NULL) == 0, 60000));
	assert_true(H_WAIT_FOR(c, log_lines(c, "deprovision.log", "deprovision ") == 3, 30000));
	assert_true(h_has_event(c, NULL, "removed from pool burst by hpqd"));
	/* And nothing more was launched. */
	assert_int_equal(provisioned(c), 3);
	h_pass(c);
}

static void array_burst(void **state)
{
	struct h_cluster *c = *state;
	char cmd[256];
	uint64_t id;
	json_t *tasks, *t;
	size_t i;
	int done = 0;

	setup_pool(c, "idle_timeout = 1h\n");
	h_write_file(h_path(c, "hold"), "");
	h_daemon_start(c);
	/* One request, four pending indices: two 2-CPU nodes in one launch. */
	snprintf(cmd, sizeof(cmd), "while [ ! -e %s/go ]; do sleep 0.1; done", c->dir);
	id = h_submit(c, "--pool", "burst", "--array", "1-4", "--cpus", "1", "--mem", "100M",
		      "--", "sh", "-c", cmd, NULL);
	assert_true(H_WAIT_FOR(c, provisioned(c) == 2, 30000));
	assert_int_equal(log_lines(c, "provision.log", "provision burst-1 burst-2 "), 1);
	unlink(h_path(c, "hold"));
	h_write_file(h_path(c, "go"), "");
	assert_true(H_WAIT_FOR(c, ({
		done = 0;
		tasks = h_tasks(c);
		json_array_foreach(tasks, i, t)
			done += h_int(t, "array_id") == (long long)id &&
				!strcmp(h_str(t, "state"), "COMPLETED");
		json_decref(tasks);
		done == 4;
	}), 90000));
	assert_int_equal(provisioned(c), 2);
	h_pass(c);
}

static void governance_limits_demand(void **state)
{
	struct h_cluster *c = *state;
	char cmd[256], reason[128];
	uint64_t ids[4];

	setup_pool(c, "idle_timeout = 1h\n");
	h_daemon_start(c);
	/* A team with 2 CPUs guaranteed in the pool that may not borrow. */
	assert_int_equal(h_hpq(c, NULL, "team", "add", "vision", "--pool", "burst", "--cpus", "2",
			       "--sharing", "lend", NULL), 0);
	snprintf(cmd, sizeof(cmd), "while [ ! -e %s/go ]; do sleep 0.1; done", c->dir);
	for (int i = 0; i < 4; i++)
		ids[i] = h_submit(c, "--pool", "burst", "--team", "vision", "--cpus", "1", "--mem",
				  "100M", "--", "sh", "-c", cmd, NULL);
	/* Its guarantee's worth of work is launched for, not the rest. */
	assert_true(h_wait_state(c, ids[0], "RUNNING", 60000));
	assert_true(h_wait_state(c, ids[1], "RUNNING", 60000));
	assert_int_equal(provisioned(c), 1);
	assert_string_equal(task_reason(c, ids[2], reason, sizeof(reason)), "quota");
	assert_string_equal(task_reason(c, ids[3], reason, sizeof(reason)), "quota");
	assert_int_equal(nodes_in(c, "burst", NULL), 1);
	h_write_file(h_path(c, "go"), "");
	for (int i = 0; i < 4; i++)
		assert_true(h_wait_state(c, ids[i], "COMPLETED", 60000));
	/* Ended work frees the guarantee for the rest, on the same node. */
	assert_int_equal(provisioned(c), 1);
	h_pass(c);
}

static void launch_timeout_backs_off(void **state)
{
	struct h_cluster *c = *state;
	char reason[128];
	uint64_t id;

	setup_pool(c, "launch_timeout = 2s\nidle_timeout = 1h\n");
	h_write_file(h_path(c, "hang"), "");
	h_daemon_start(c);
	id = submit_wait(c, "1");
	assert_true(H_WAIT_FOR(c, h_has_event(c, NULL, "timed out: its agent did not register "
					      "within 2s"), 60000));
	assert_true(H_WAIT_FOR(c, !strcmp(task_reason(c, id, reason, sizeof(reason)),
					  "launch-failed"), 30000));
	assert_true(h_has_event(c, NULL, "1 launch failure in a row; next launch in 2s"));
	/* The node that never came is undone. */
	assert_true(H_WAIT_FOR(c, log_lines(c, "deprovision.log", "deprovision burst-1") == 1,
			       30000));
	/* Backing off: a second try also fails, the wait doubles. */
	assert_true(H_WAIT_FOR(c, h_has_event(c, NULL, "2 launch failures in a row; next launch "
					      "in 4s"), 60000));
	/* The cloud recovers: the next launch brings the node. */
	unlink(h_path(c, "hang"));
	assert_true(h_wait_state(c, id, "RUNNING", 90000));
	assert_true(provisioned(c) >= 3);
	h_write_file(h_path(c, "go"), "");
	assert_true(h_wait_state(c, id, "COMPLETED", 60000));
	h_pass(c);
}

static void failing_provision_says_why(void **state)
{
	struct h_cluster *c = *state;
	char reason[128];
	uint64_t id;

	setup_pool(c, "launch_timeout = 60s\n");
	h_write_file(h_path(c, "fail"), "");
	h_daemon_start(c);
	id = submit_wait(c, "1");
	assert_true(H_WAIT_FOR(c, h_has_event(c, NULL, "provision command for burst-1 in pool "
					      "burst failed (exit 3): out of capacity: quota "
					      "exceeded for instance type x1"), 60000));
	assert_true(H_WAIT_FOR(c, !strcmp(task_reason(c, id, reason, sizeof(reason)),
					  "launch-failed"), 30000));
	/* Its node is undone too. */
	assert_true(H_WAIT_FOR(c, nodes_in(c, "burst", "launching") == 0, 30000));
	h_pass(c);
}

/* Writes <dir>/go-ID: the waiter task ID ends. */
static void let_go(struct h_cluster *c, uint64_t id)
{
	h_write_file(h_path(c, "go-%" PRIu64, id), "");
}

static const char *first_node(struct h_cluster *c, uint64_t id, char *buf, size_t len)
{
	json_t *j = h_task(c, id);

	snprintf(buf, len, "%s",
		 j ? json_string_value(json_array_get(json_object_get(j, "node_names"), 0)) : "");
	json_decref(j);
	return buf;
}

static void consolidation_moves_to_checkpoint(void **state)
{
	struct h_cluster *c = *state;
	char cmd[1024], waitcmd[256], trainer_node[32], infer_node[32], want[64];
	uint64_t t[4];
	json_t *j;

	if (!*h_bin("trainer"))
		skip();
	setup_pool(c, "consolidation = on\ndisruption_budget = 1\nidle_timeout = 1h\n");
	h_daemon_start(c);
	snprintf(waitcmd, sizeof(waitcmd), "while [ ! -e %s/go-$HPQ_TASK_ID ]; do sleep 0.1; done",
		 c->dir);
	/* Node one: an inference task (never preempted) and a waiter. A
	 * class above the waiters' would preempt them for room, so it comes
	 * first. */
	t[2] = h_submit(c, "--pool", "burst", "--cpus", "1", "--mem", "100M", "--class",
			"inference", "--", "sh", "-c", waitcmd, NULL);
	t[3] = h_submit(c, "--pool", "burst", "--cpus", "1", "--mem", "100M", "--", "sh", "-c",
			waitcmd, NULL);
	assert_true(h_wait_state(c, t[2], "RUNNING", 60000));
	assert_true(h_wait_state(c, t[3], "RUNNING", 60000));
	/* Node two: a trainer (preemptible) and a waiter. */
	t[0] = h_submit(c, "--pool", "burst", "--cpus", "1", "--mem", "100M", "--checkpoint-dir",
			h_path(c, "ckpt"), "--", "sh", "-c", h_trainer_cmd(cmd, sizeof(cmd), 5),
			NULL);
	t[1] = h_submit(c, "--pool", "burst", "--cpus", "1", "--mem", "100M", "--", "sh", "-c",
			waitcmd, NULL);
	assert_true(h_wait_state(c, t[0], "RUNNING", 60000));
	assert_true(h_wait_state(c, t[1], "RUNNING", 60000));
	assert_int_equal(provisioned(c), 2);
	first_node(c, t[0], trainer_node, sizeof(trainer_node));
	first_node(c, t[2], infer_node, sizeof(infer_node));
	assert_string_not_equal(trainer_node, infer_node);

	/* The waiters end: one node could hold both tasks left, and only the
	 * trainer may move. Its node leaves; it resumes on the other, from a
	 * checkpoint it wrote before (a move before its first one would
	 * restart it from nothing, which this trainer refuses). */
	assert_true(H_WAIT_FOR(c, h_newest_step(c, t[0]) >= 5, 60000));
	let_go(c, t[1]);
	let_go(c, t[3]);
	assert_true(h_wait_state(c, t[1], "COMPLETED", 60000));
	assert_true(h_wait_state(c, t[3], "COMPLETED", 60000));
	assert_true(H_WAIT_FOR(c, log_lines(c, "deprovision.log", "deprovision ") >= 1, 90000));
	snprintf(want, sizeof(want), "deprovision %s", trainer_node);
	assert_int_equal(log_lines(c, "deprovision.log", want), 1);
	assert_true(H_WAIT_FOR(c, nodes_in(c, "burst", NULL) == 1, 60000));
	assert_true(h_has_event(c, NULL, "consolidation: its work fits on other nodes"));
	assert_true(h_wait_state(c, t[0], "COMPLETED", 120000));
	j = h_task(c, t[0]);
	assert_int_equal(h_int(j, "attempts"), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "node_names"), 0)),
			    infer_node);
	json_decref(j);
	/* The inference task was never moved. */
	j = h_task(c, t[2]);
	assert_int_equal(h_int(j, "attempts"), 1);
	assert_string_equal(h_str(j, "state"), "RUNNING");
	json_decref(j);
	assert_int_equal(log_lines(c, "deprovision.log", "deprovision "), 1);
	let_go(c, t[2]);
	assert_true(h_wait_state(c, t[2], "COMPLETED", 60000));
	h_pass(c);
}

static void lifetime_replaces_new_first(void **state)
{
	struct h_cluster *c = *state;

	setup_pool(c, "min_nodes = 1\nmax_nodes = 1\nmax_node_lifetime = 3s\n"
		      "idle_timeout = 1h\ndisruption_budget = 1\n");
	h_daemon_start(c);
	/* min_nodes: one node with no work at all. */
	assert_true(H_WAIT_FOR(c, nodes_in(c, "burst", "active") == 1, 60000));
	/* Past its lifetime: burst-2 comes, then burst-1 goes. */
	assert_true(H_WAIT_FOR(c, log_lines(c, "deprovision.log", "deprovision burst-1") == 1,
			       60000));
	assert_true(log_lines(c, "provision.log", "provision burst-2 ") == 1);
	assert_true(h_has_event(c, NULL, "replaced: older than max_node_lifetime"));
	assert_true(H_WAIT_FOR(c, nodes_in(c, "burst", NULL) >= 1, 30000));
	h_pass(c);
}

static void restart_mid_launch(void **state)
{
	struct h_cluster *c = *state;
	uint64_t a, b;

	setup_pool(c, "launch_timeout = 120s\nidle_timeout = 1h\n");
	h_write_file(h_path(c, "hold"), "");
	h_daemon_start(c);
	a = submit_wait(c, "2");
	b = submit_wait(c, "2");
	assert_true(H_WAIT_FOR(c, provisioned(c) == 2, 30000));
	/* hpqd dies while its provision command still runs. */
	h_daemon_stop(c, SIGKILL);
	h_daemon_start(c);
	assert_int_equal(nodes_in(c, "burst", "launching"), 2);
	unlink(h_path(c, "hold"));
	assert_true(h_wait_state(c, a, "RUNNING", 60000));
	assert_true(h_wait_state(c, b, "RUNNING", 60000));
	/* Launched once: two nodes, no second call for either. */
	assert_int_equal(provisioned(c), 2);
	assert_int_equal(log_lines(c, "provision.log", "provision burst-1 "), 1);
	assert_int_equal(log_lines(c, "provision.log", "provision burst-2 "), 1);
	assert_int_equal(nodes_in(c, "burst", NULL), 2);
	h_write_file(h_path(c, "go"), "");
	assert_true(h_wait_state(c, a, "COMPLETED", 60000));
	assert_true(h_wait_state(c, b, "COMPLETED", 60000));
	h_pass(c);
}

static void bad_config_refused(void **state)
{
	struct h_cluster *c = *state;
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "[autoscale.p]\nmin_nodes = 3\nmax_nodes = 2\ncpus = 1\nprovision_command = /bin/true\n"
		  "deprovision_command = /bin/true\n", "min_nodes (3) is more than max_nodes (2)" },
		{ "[autoscale.p]\nmax_nodes = 2\ncpus = 1\ndeprovision_command = /bin/true\n",
		  "has no provision_command" },
		{ "[autoscale.p]\nmax_nodes = 2\nprovision_command = /bin/true\n"
		  "deprovision_command = /bin/true\n", "the node template has no capacity" },
		{ "[autoscale.p]\nmax_nodes = 2\nflavour = large\n", "unknown key 'flavour' in "
		  "[autoscale.p]" },
		{ "[autoscale.p]\nmax_nodes = 2\ndisruption_budget = 150%\n",
		  "invalid disruption_budget '150%'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out;
		const char *argv[] = { "--check", "--foreground", "--config", h_path(c, "bad.conf"),
				       "-d", h_path(c, "st"), "-s", h_path(c, "x.sock"), NULL };
		char cmd[1024];
		int rc;

		h_write_file(h_path(c, "bad.conf"), cases[i].text);
		snprintf(cmd, sizeof(cmd), "%s %s %s %s %s %s %s %s %s > %s 2>&1", h_bin("hpqd"),
			 argv[0], argv[1], argv[2], argv[3], argv[4], argv[5], argv[6], argv[7],
			 h_path(c, "check.out"));
		rc = system(cmd);
		out = h_read_file(h_path(c, "check.out"));
		assert_non_null(out);
		if (rc == 0 || !strstr(out, cases[i].want))
			fail_msg("config %zu: want an error with '%s', got (rc %d):\n%s", i,
				 cases[i].want, rc, out);
		free(out);
	}
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(bad_config_refused, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(burst_up_and_down, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(restart_mid_launch, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(governance_limits_demand, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(array_burst, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(failing_provision_says_why, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(launch_timeout_backs_off, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(lifetime_replaces_new_first, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(consolidation_moves_to_checkpoint, h_setup,
						h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
