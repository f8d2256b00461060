/*
 * t_repair: node health and automatic repair in hpqd, with real agents
 * whose findings come from their test-only inject file (hpq-agent
 * --health-inject: one "category reason severity message" line per
 * finding, while the line is there), so the daemon sees exactly what a
 * broken GPU would make the agent send.
 *
 *   fatal_finding_repairs: a fatal accelerator finding on the trainer's
 *     node lasts its wait time: the node is drained for repair, the
 *     trainer is requeued and resumes on the other node from its newest
 *     checkpoint, the repair command runs with the node's name, action
 *     and reason, and once the finding is gone the node returns to active
 *     after its healthy streak. Every change is an event by "hpqd".
 *   agent_loss_kills_stale: a killed agent makes its node unreachable, its
 *     task runs again elsewhere, and when the agent returns (adopting the
 *     old copy from its journal) hpqd has that stale copy killed.
 *   blast_radius: 5 nodes; one fails and repairs; a second failing while
 *     the first repairs would put 2 of 5 (40%) out, more than 20%: it is
 *     reported repair-blocked and keeps its service state.
 *   hung_script: an admin health script that hangs is killed by the
 *     agent and reported; the finding shows in hpq node show --json.
 *   admin_drain: drain/resume are admin-only; a drained node gets no
 *     tasks and is never resumed by hpqd.
 *   unreachable_repairs: unreachability that lasts wait_default starts a
 *     repair (action reboot, reason unreachable); the agent's return and
 *     healthy streak end it.
 *   repair_timeout_down: an administrator's repair whose command hangs
 *     past [repair] timeout leaves the node down, said in its events.
 *   gang_evacuated: a fatal finding on one member's node requeues the
 *     whole gang and kills its members on every node; it runs again on
 *     healthy nodes.
 *   restart_keeps_service: a drain and a repair in progress survive a
 *     restart of hpqd (schema v3 columns); the repair still completes.
 *   sighup_enables_repair: with enabled = no nothing repairs; the config
 *     changed to yes and SIGHUP, the waiting node repairs.
 *
 * The agents here are started by this file (the harness's h_agent_start
 * takes no extra options) the same way the harness does it: marker in the
 * environment, output to <dir>/<name>.log, registered in c->agents so
 * h_agent_stop and teardown handle them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* Starts (or restarts, i >= 0) an agent with the inject file and maybe a
 * health dir; returns its index. */
static int agent_spawn(struct h_cluster *c, int i, const char *name, const char *health_dir)
{
	struct h_agent *a;
	char server[128], inject[160], hdir[160];
	pid_t pid;

	if (i < 0) {
		assert_true(c->nagents < H_MAX_AGENTS);
		i = c->nagents++;
		a = &c->agents[i];
		snprintf(a->name, sizeof(a->name), "%s", name);
		snprintf(a->work, sizeof(a->work), "%s", h_path(c, "%s", name));
		snprintf(a->log, sizeof(a->log), "%s", h_path(c, "%s.log", name));
		snprintf(a->mem, sizeof(a->mem), "2G");
		a->gpus = 1;
		a->cpus = 2;
	}
	a = &c->agents[i];
	snprintf(server, sizeof(server), "%s", c->sock);
	snprintf(inject, sizeof(inject), "%s", h_path(c, "%s.inject", a->name));
	snprintf(hdir, sizeof(hdir), "%s", health_dir ? health_dir : "");
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *argv[32] = {
			h_bin("agent"), "--foreground", "--server", server, "--name", a->name,
			"--work-dir", a->work, "--gpus", "1", "--cpus", "2", "--mem", "2G",
			"--heartbeat", "1s", "--log-level", "debug", "--health-inject", inject,
			"--health-interval", "1s", "--allow-root-tasks", /* the test submits as root */
		};
		int n = 23, fd = open(a->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (*hdir) {
			argv[n++] = "--health-dir";
			argv[n++] = hdir;
			argv[n++] = "--health-timeout";
			argv[n++] = "2s";
		}
		argv[n] = NULL;
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		setenv("HPQ_ITEST_DIR", c->dir, 1);
		if (chdir(c->dir) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	a->pid = pid;
	return i;
}

static void inject(struct h_cluster *c, const char *node, const char *line)
{
	h_write_file(h_path(c, "%s.inject", node), line);
}

/* hpq node show NAME --json (a new reference) or NULL. */
static json_t *node_show(struct h_cluster *c, const char *name)
{
	struct h_out o;
	json_t *j = NULL;

	if (h_hpq(c, &o, "node", "show", name, "--json", NULL) == 0)
		j = json_loads(o.out, 0, NULL);
	h_out_free(&o);
	return j;
}

static bool node_field_is(struct h_cluster *c, const char *name, const char *key,
			  const char *want)
{
	json_t *n = node_show(c, name);
	bool ok = n && strcmp(h_str(n, key), want) == 0;

	json_decref(n);
	return ok;
}

static bool node_reason_has(struct h_cluster *c, const char *name, const char *text)
{
	json_t *n = node_show(c, name);
	bool ok = n && strstr(h_str(n, "reason"), text) != NULL;

	json_decref(n);
	return ok;
}

/* An event of node with kind "node" whose message contains text; its actor. */
static bool node_event(struct h_cluster *c, const char *node, const char *text,
		       const char *actor)
{
	json_t *evs = h_hpq_json(c, "events", "--node", node, NULL), *ev;
	bool ok = false;
	size_t i;

	json_array_foreach(evs, i, ev)
		if (strstr(h_str(ev, "message"), text) &&
		    (!actor || strcmp(h_str(ev, "actor"), actor) == 0))
			ok = true;
	json_decref(evs);
	return ok;
}

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

static const char *first_node(json_t *t)
{
	return json_string_value(json_array_get(json_object_get(t, "node_names"), 0));
}

static void write_repair_script(struct h_cluster *c)
{
	char text[512];
	const char *path = h_path(c, "repair.sh");

	snprintf(text, sizeof(text),
		 "#!/bin/sh\necho \"$1|$2|$3|$HPQ_NODE|$HPQ_REPAIR_ACTION|$HPQ_REPAIR_REASON\""
		 " >> %s\n", h_path(c, "repairs.txt"));
	h_write_file(path, text);
	assert_int_equal(chmod(path, 0755), 0);
}

/* repairs.txt once it holds whole lines: the script's `>>` creates the
 * file before its echo writes the line, and a read in between sees an
 * empty file. NULL until then. */
static char *repairs_read(struct h_cluster *c)
{
	char *r = h_read_file(h_path(c, "repairs.txt"));

	if (r && (!*r || r[strlen(r) - 1] != '\n')) {
		free(r);
		return NULL;
	}
	return r;
}

/* Does repairs.txt hold a line with s? */
static bool repairs_have(struct h_cluster *c, const char *s)
{
	char *r = repairs_read(c);
	bool has = r && strstr(r, s);

	free(r);
	return has;
}

static void fatal_finding_repairs(void **state)
{
	struct h_cluster *c = *state;
	char conf[1024], node[32], other[32], want[256], cmd[1024], *repairs;
	long long last;
	uint64_t id;
	json_t *t, *n;

	if (!*h_bin("trainer"))
		skip();
	write_repair_script(c);
	snprintf(conf, sizeof(conf),
		 "[agents]\nheartbeat = 1s\n[nodes]\nunreachable_after = 3\n"
		 "[repair]\nenabled = yes\nwait_accelerator = 2s\nwait_default = 120s\n"
		 "command = %s\ntimeout = 60s\nhealthy_streak = 3\nmax_unhealthy_percent = 50\n"
		 "max_parallel = 1\n", h_path(c, "repair.sh"));
	h_daemon_config(c, conf);
	h_daemon_start(c);
	agent_spawn(c, -1, "node1", NULL);
	agent_spawn(c, -1, "node2", NULL);
	assert_true(h_wait_nodes(c, 2, 30000));

	/* Its first attempt runs until stopped (h_trainer_cmd): it still runs
	 * when the repair evacuates the node, however slow the machine. */
	id = h_submit(c, "--name", "train", "--gpus", "1", "--cpus", "2", "--checkpoint-dir",
		      h_path(c, "ckpt"), "--", "sh", "-c", h_trainer_cmd(cmd, sizeof(cmd), 5),
		      NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, task_newest_step(c, id) >= 10, 30000));
	t = h_task(c, id);
	snprintf(node, sizeof(node), "%s", first_node(t));
	snprintf(other, sizeof(other), "%s", strcmp(node, "node1") ? "node1" : "node2");
	json_decref(t);

	inject(c, node, "accelerator xid-79 fatal GPU has fallen off the bus\n");
	assert_true(H_WAIT_FOR(c, node_field_is(c, node, "health", "unhealthy"), 30000));
	n = node_show(c, node);
	assert_non_null(n);
	{
		json_t *f = json_array_get(json_object_get(n, "findings"), 0);

		assert_non_null(f);
		assert_string_equal(h_str(f, "category"), "accelerator");
		assert_string_equal(h_str(f, "reason"), "xid-79");
		assert_string_equal(h_str(f, "severity"), "fatal");
		assert_true(json_is_string(json_object_get(f, "since")));
		assert_true(json_is_string(json_object_get(n, "last_heartbeat")));
		assert_true(json_is_array(json_object_get(n, "tasks")));
	}
	json_decref(n);
	assert_true(H_WAIT_FOR(c, node_field_is(c, node, "service", "repairing"), 30000));
	assert_true(node_field_is(c, node, "service_by", "hpqd"));
	assert_true(node_field_is(c, node, "repair_action", "reboot"));

	/* The repair command ran with the node, the action and the reason. */
	assert_true(H_WAIT_FOR(c, (repairs = repairs_read(c)) != NULL, 15000));
	snprintf(want, sizeof(want), "%s|reboot|xid-79: GPU has fallen off the bus|%s|reboot|"
		 "xid-79: GPU has fallen off the bus\n", node, node);
	if (strcmp(repairs, want))
		fail_msg("repair command got:\n%s\nwanted:\n%s", repairs, want);
	free(repairs);

	/* The trainer resumes on the other node from the newest checkpoint (and
	 * may have finished its few remaining steps by now). */
	assert_true(H_WAIT_FOR(c, ({
		json_t *x = h_task(c, id);
		bool ok = x && h_int(x, "attempts") == 2 &&
			  (!strcmp(h_str(x, "state"), "RUNNING") ||
			   !strcmp(h_str(x, "state"), "COMPLETED"));
		json_decref(x);
		ok; }), 30000));
	t = h_task(c, id);
	assert_string_equal(first_node(t), other);
	last = newest_step(t, 1);
	assert_true(last >= 10);
	json_decref(t);
	snprintf(want, sizeof(want), "\nresumed at step %lld\n", last);
	assert_true(H_WAIT_FOR(c, ({
		char *l = h_task_log(c, other, id);
		bool ok = l && strstr(l, want);
		free(l);
		ok; }), 30000));

	/* Still unhealthy: it stays in repair, through more unhealthy
	 * heartbeats than the healthy streak (3) and two more passes of the
	 * repair timer. Healthy again: back to active. */
	assert_true(h_wait_heartbeats(c, node, 4, 30000));
	assert_true(h_wait_repair_checks(c, 2, 30000));
	assert_true(node_field_is(c, node, "service", "repairing"));
	inject(c, node, "");
	assert_true(H_WAIT_FOR(c, node_field_is(c, node, "service", "active"), 30000));
	assert_true(node_field_is(c, node, "health", "healthy"));
	assert_true(node_event(c, node, "service active -> repairing", "hpqd"));
	assert_true(node_event(c, node, "repair started (action reboot, 1 task requeued)",
			       "hpqd"));
	assert_true(node_event(c, node, "repaired: 3 healthy heartbeats", "hpqd"));
	assert_true(node_event(c, node, "service repairing -> active", "hpqd"));

	h_pass(c);
}

static bool pid_alive(pid_t pid)
{
	char path[64], *st;
	bool alive;

	/* A zombie is dead: it is reaped by h_reap soon. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	st = h_read_file(path);
	alive = st && !strstr(st, ") Z ");
	free(st);
	return alive;
}

static void agent_loss_kills_stale(void **state)
{
	struct h_cluster *c = *state;
	char node[32], other[32];
	pid_t pids[16];
	int n, i;
	uint64_t id;
	json_t *t;

	h_daemon_config(c, "[agents]\nheartbeat = 1s\n[nodes]\nunreachable_after = 2\n"
			   "[repair]\nwait_default = 300s\n");
	h_daemon_start(c);
	agent_spawn(c, -1, "node1", NULL);
	agent_spawn(c, -1, "node2", NULL);
	assert_true(h_wait_nodes(c, 2, 30000));
	id = h_submit(c, "--cpus", "2", "--", "sleep", "300", NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	t = h_task(c, id);
	snprintf(node, sizeof(node), "%s", first_node(t));
	snprintf(other, sizeof(other), "%s", strcmp(node, "node1") ? "node1" : "node2");
	json_decref(t);
	assert_true(H_WAIT_FOR(c, h_task_pids(c, id, pids, 16) >= 1, 30000));
	n = h_task_pids(c, id, pids, 16);

	/* The agent dies; its task (own session) keeps running: the stale copy. */
	i = h_agent_index(c, node);
	h_agent_stop(c, i, SIGKILL);
	assert_true(H_WAIT_FOR(c, node_field_is(c, node, "health", "unreachable"), 30000));
	assert_true(H_WAIT_FOR(c, ({
		json_t *x = h_task(c, id);
		bool ok = x && h_int(x, "attempts") == 2 && !strcmp(h_str(x, "state"), "RUNNING") &&
			  !strcmp(first_node(x), other);
		json_decref(x);
		ok; }), 30000));
	for (int k = 0; k < n; k++)
		assert_true(pid_alive(pids[k]));

	/* The agent returns with the old copy in its journal: hpqd kills it. */
	agent_spawn(c, i, node, NULL);
	assert_true(H_WAIT_FOR(c, ({
		bool gone = true;
		for (int k = 0; k < n; k++)
			gone = gone && !pid_alive(pids[k]);
		gone; }), 30000));
	assert_true(H_WAIT_FOR(c, node_field_is(c, node, "health", "healthy"), 30000));
	t = h_task(c, id);
	assert_string_equal(h_str(t, "state"), "RUNNING");
	assert_int_equal(h_int(t, "attempts"), 2);
	json_decref(t);
	assert_true(h_file_has(c->log, "which is not expected there: killing it"));
	h_pass(c);
}

static void blast_radius(void **state)
{
	struct h_cluster *c = *state;
	char conf[1024];
	char names[5][8];

	write_repair_script(c);
	snprintf(conf, sizeof(conf),
		 "[agents]\nheartbeat = 1s\n[repair]\nwait_accelerator = 1s\n"
		 "command = %s\ntimeout = 60s\nmax_unhealthy_percent = 20\nmax_parallel = 2\n",
		 h_path(c, "repair.sh"));
	h_daemon_config(c, conf);
	h_daemon_start(c);
	for (int i = 0; i < 5; i++) {
		snprintf(names[i], sizeof(names[i]), "n%d", i + 1);
		agent_spawn(c, -1, names[i], NULL);
	}
	assert_true(h_wait_nodes(c, 5, 30000));

	/* One of five (20%): it repairs. */
	inject(c, "n1", "accelerator xid-48 fatal double-bit ECC error\n");
	assert_true(H_WAIT_FOR(c, node_field_is(c, "n1", "service", "repairing"), 30000));
	/* A second, while the first repairs (stays unhealthy): 2 of 5 = 40%. */
	inject(c, "n2", "accelerator xid-79 fatal GPU has fallen off the bus\n");
	assert_true(H_WAIT_FOR(c, node_reason_has(c, "n2", "repair-blocked"), 30000));
	assert_true(node_reason_has(c, "n2", "2 of 5 nodes in pool default"));
	assert_true(node_field_is(c, "n2", "service", "active"));
	assert_true(node_field_is(c, "n2", "health", "unhealthy"));
	/* Four more passes of the repair timer, each blocked again. */
	assert_true(h_wait_repair_checks(c, 4, 30000));
	assert_true(node_field_is(c, "n2", "service", "active"));
	assert_true(node_event(c, "n2", "repair-blocked: 2 of 5 nodes", "hpqd"));
	assert_true(H_WAIT_FOR(c, repairs_have(c, "n1|reboot|xid-48"), 30000));
	assert_false(repairs_have(c, "n2|"));
	/* n1 recovers: n2 alone is 1 of 5, and repairs now. */
	inject(c, "n1", "");
	assert_true(H_WAIT_FOR(c, node_field_is(c, "n1", "service", "active"), 30000));
	assert_true(H_WAIT_FOR(c, node_field_is(c, "n2", "service", "repairing"), 30000));
	h_pass(c);
}

static void hung_script(void **state)
{
	struct h_cluster *c = *state;
	const char *dir = h_path(c, "health.d");
	char script[160];
	json_t *n, *f;
	size_t i;
	bool found = false;

	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(script, sizeof(script), "%s/hang", dir);
	h_write_file(script, "#!/bin/sh\nexec sleep 600\n");
	assert_int_equal(chmod(script, 0755), 0);
	h_daemon_config(c, "[agents]\nheartbeat = 1s\n[repair]\nenabled = no\n");
	h_daemon_start(c);
	agent_spawn(c, -1, "node1", dir);
	assert_true(h_wait_nodes(c, 1, 30000));
	assert_true(H_WAIT_FOR(c, ({
		json_t *x = node_show(c, "node1");
		bool ok = x && json_array_size(json_object_get(x, "findings")) > 0;
		json_decref(x);
		ok; }), 45000));
	n = node_show(c, "node1");
	json_array_foreach(json_object_get(n, "findings"), i, f) {
		fprintf(stderr, "finding: %s %s %s: %s\n", h_str(f, "category"),
			h_str(f, "reason"), h_str(f, "severity"), h_str(f, "message"));
		if (!strcmp(h_str(f, "reason"), "health-script-timeout") &&
		    strstr(h_str(f, "message"), "'hang'") &&
		    strstr(h_str(f, "message"), "was killed"))
			found = true;
	}
	assert_true(found);
	assert_string_not_equal(h_str(n, "health"), "healthy");
	json_decref(n);
	h_pass(c);
}

static void admin_drain(void **state)
{
	struct h_cluster *c = *state;
	struct h_out o;
	uint64_t id;
	json_t *t;

	h_daemon_config(c, "[agents]\nheartbeat = 1s\n");
	h_daemon_start(c);
	agent_spawn(c, -1, "node1", NULL);
	assert_true(h_wait_nodes(c, 1, 30000));
	id = h_submit(c, "--", "sleep", "3", NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_int_equal(h_hpq(c, &o, "node", "drain", "node1", "--reason", "new PSU", "--json",
			       NULL), 0);
	assert_non_null(strstr(o.out, "\"draining\""));
	h_out_free(&o);
	assert_true(node_field_is(c, "node1", "reason", "new PSU"));
	/* Nothing new starts there; the running task finishes; then drained. */
	{
		uint64_t id2 = h_submit(c, "--", "true", NULL);

		assert_true(h_wait_state(c, id, "COMPLETED", 30000));
		assert_true(H_WAIT_FOR(c, node_field_is(c, "node1", "service", "drained"),
				       30000));
		/* Drained it stays: three more passes of the repair timer and
		 * two healthy heartbeats change nothing, and id2 never starts. */
		assert_true(h_wait_repair_checks(c, 3, 30000));
		assert_true(h_wait_heartbeats(c, "node1", 2, 30000));
		assert_true(node_field_is(c, "node1", "service", "drained"));
		t = h_task(c, id2);
		assert_string_equal(h_str(t, "state"), "PENDING");
		assert_int_equal(h_int(t, "attempts"), 0);
		json_decref(t);
		assert_int_equal(h_hpq(c, NULL, "node", "resume", "node1", NULL), 0);
		assert_true(h_wait_state(c, id2, "COMPLETED", 30000));
	}
	assert_true(node_field_is(c, "node1", "service", "active"));
	assert_int_equal(h_hpq(c, &o, "node", "drain", "nope", NULL), 1);
	assert_non_null(strstr(o.err, "no node 'nope'"));
	h_out_free(&o);
	h_pass(c);
}

static void unreachable_repairs(void **state)
{
	struct h_cluster *c = *state;
	char conf[1024], *r;
	int i;

	write_repair_script(c);
	snprintf(conf, sizeof(conf),
		 "[agents]\nheartbeat = 1s\n[nodes]\nunreachable_after = 2\n"
		 "[repair]\nwait_default = 2s\ncommand = %s\ntimeout = 60s\n"
		 "healthy_streak = 2\nmax_unhealthy_percent = 50\n", h_path(c, "repair.sh"));
	h_daemon_config(c, conf);
	h_daemon_start(c);
	i = agent_spawn(c, -1, "node1", NULL);
	agent_spawn(c, -1, "node2", NULL);
	assert_true(h_wait_nodes(c, 2, 30000));
	h_agent_stop(c, i, SIGKILL);
	assert_true(H_WAIT_FOR(c, node_field_is(c, "node1", "health", "unreachable"), 30000));
	assert_true(H_WAIT_FOR(c, node_field_is(c, "node1", "service", "repairing"), 30000));
	assert_true(H_WAIT_FOR(c, (r = repairs_read(c)) != NULL, 30000));
	assert_non_null(strstr(r, "node1|reboot|unreachable: no word from its agent|node1|"));
	free(r);
	assert_true(node_reason_has(c, "node1", "unreachable"));
	/* The "reboot" brings the agent back; two healthy heartbeats later: active. */
	agent_spawn(c, i, "node1", NULL);
	assert_true(H_WAIT_FOR(c, node_field_is(c, "node1", "service", "active"), 30000));
	assert_true(node_field_is(c, "node1", "health", "healthy"));
	assert_true(node_event(c, "node1", "repaired: 2 healthy heartbeats", "hpqd"));
	h_pass(c);
}

static void repair_timeout_down(void **state)
{
	struct h_cluster *c = *state;
	const struct passwd *pw = getpwnam("nobody");
	const char *cmd = h_path(c, "hang.sh");
	char conf[512];
	struct h_out o;

	h_write_file(cmd, "#!/bin/sh\nexec sleep 60\n");
	assert_int_equal(chmod(cmd, 0755), 0);
	snprintf(conf, sizeof(conf), "[agents]\nheartbeat = 1s\n[repair]\ncommand = %s\n"
		 "timeout = 3s\n", cmd);
	h_daemon_config(c, conf);
	h_daemon_start(c);
	agent_spawn(c, -1, "node1", NULL);
	assert_true(h_wait_nodes(c, 1, 30000));

	/* Administration is for administrators. */
	if (pw) {
		h_cli_as(c, pw->pw_uid, pw->pw_gid);
		assert_int_equal(h_hpq(c, &o, "node", "repair", "node1", NULL), 1);
		assert_non_null(strstr(o.err, "only administrators"));
		h_out_free(&o);
		assert_int_equal(h_hpq(c, &o, "node", "drain", "node1", NULL), 1);
		h_out_free(&o);
		h_cli_as(c, 0, 0);
		assert_true(node_field_is(c, "node1", "service", "active"));
	}
	assert_int_equal(h_hpq(c, &o, "node", "repair", "node1", "--reason", "fan noise",
			       "--action", "replace", "--json", NULL), 0);
	assert_non_null(strstr(o.out, "\"repairing\""));
	h_out_free(&o);
	assert_true(node_field_is(c, "node1", "repair_action", "replace"));
	assert_true(node_field_is(c, "node1", "service_by", "root"));
	/* A second repair while the command runs is refused. */
	assert_int_equal(h_hpq(c, &o, "node", "repair", "node1", NULL), 1);
	assert_non_null(strstr(o.err, "being repaired already"));
	h_out_free(&o);
	assert_true(H_WAIT_FOR(c, node_field_is(c, "node1", "service", "down"), 30000));
	assert_true(node_reason_has(c, "node1", "repair command timed out (action replace)"));
	assert_true(node_event(c, "node1", "service repairing -> down", "hpqd"));
	/* Down stays down, healthy or not, until an administrator says: more
	 * healthy heartbeats than a healthy streak (3) and four more passes of
	 * the repair timer leave it so. */
	assert_true(h_wait_heartbeats(c, "node1", 4, 30000));
	assert_true(h_wait_repair_checks(c, 4, 30000));
	assert_true(node_field_is(c, "node1", "service", "down"));
	assert_int_equal(h_hpq(c, NULL, "node", "resume", "node1", NULL), 0);
	assert_true(node_field_is(c, "node1", "service", "active"));
	assert_true(node_event(c, "node1", "service down -> active", "root"));
	h_pass(c);
}

static void sighup_enables_repair(void **state)
{
	struct h_cluster *c = *state;
	char conf[1024], *r;

	write_repair_script(c);
	snprintf(conf, sizeof(conf),
		 "[agents]\nheartbeat = 1s\n[repair]\nenabled = no\nwait_accelerator = 1s\n"
		 "command = %s\nmax_unhealthy_percent = 50\n", h_path(c, "repair.sh"));
	h_daemon_config(c, conf);
	h_daemon_start(c);
	agent_spawn(c, -1, "node1", NULL);
	agent_spawn(c, -1, "node2", NULL);
	assert_true(h_wait_nodes(c, 2, 30000));
	inject(c, "node1", "accelerator xid-94 fatal contained ECC error\n");
	assert_true(H_WAIT_FOR(c, node_field_is(c, "node1", "health", "unhealthy"), 30000));
	/* Past wait_accelerator (1 s): the repair timer ticks every 500 ms of
	 * hpqd's clock here, so five more passes span at least 2 s after the
	 * first that saw the node unhealthy. Disabled: nothing repairs. */
	assert_true(h_wait_repair_checks(c, 5, 30000));
	assert_true(node_field_is(c, "node1", "service", "active"));
	assert_null(h_read_file(h_path(c, "repairs.txt")));

	snprintf(conf, sizeof(conf),
		 "[agents]\nheartbeat = 1s\n[repair]\nenabled = yes\nwait_accelerator = 1s\n"
		 "command = %s\nmax_unhealthy_percent = 50\n[repair.actions]\nxid-94 = replace\n",
		 h_path(c, "repair.sh"));
	h_daemon_config(c, conf);
	assert_int_equal(kill(c->hpqd, SIGHUP), 0);
	assert_true(H_WAIT_FOR(c, node_field_is(c, "node1", "service", "repairing"), 30000));
	assert_true(H_WAIT_FOR(c, (r = repairs_read(c)) != NULL, 30000));
	assert_non_null(strstr(r, "node1|replace|xid-94: contained ECC error|"));
	free(r);
	h_pass(c);
}

static void gang_evacuated(void **state)
{
	struct h_cluster *c = *state;
	char node[32];
	pid_t pids[16];
	uint64_t id;
	json_t *t, *names, *v;
	size_t k;
	int n;

	h_daemon_config(c, "[agents]\nheartbeat = 1s\n[repair]\nwait_accelerator = 1s\n"
			   "max_unhealthy_percent = 50\n");
	h_daemon_start(c);
	agent_spawn(c, -1, "node1", NULL);
	agent_spawn(c, -1, "node2", NULL);
	agent_spawn(c, -1, "node3", NULL);
	assert_true(h_wait_nodes(c, 3, 30000));
	id = h_submit(c, "--nodes", "2", "--cpus", "2", "--", "sleep", "300", NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, h_task_pids(c, id, pids, 16) >= 2, 30000));
	n = h_task_pids(c, id, pids, 16);
	t = h_task(c, id);
	snprintf(node, sizeof(node), "%s", first_node(t));
	json_decref(t);

	inject(c, node, "accelerator xid-79 fatal GPU has fallen off the bus\n");
	assert_true(H_WAIT_FOR(c, node_field_is(c, node, "service", "repairing"), 30000));
	/* Attempt 1 is gone everywhere, attempt 2 runs on the other two nodes. */
	assert_true(H_WAIT_FOR(c, ({
		bool gone = true;
		for (int i = 0; i < n; i++)
			gone = gone && !pid_alive(pids[i]);
		gone; }), 30000));
	assert_true(H_WAIT_FOR(c, ({
		json_t *x = h_task(c, id);
		bool ok = x && h_int(x, "attempts") == 2 && !strcmp(h_str(x, "state"), "RUNNING");
		json_decref(x);
		ok; }), 30000));
	t = h_task(c, id);
	names = json_object_get(t, "node_names");
	assert_int_equal(json_array_size(names), 2);
	json_array_foreach(names, k, v)
		assert_string_not_equal(json_string_value(v), node);
	json_decref(t);
	h_pass(c);
}

static void restart_keeps_service(void **state)
{
	struct h_cluster *c = *state;

	h_daemon_config(c, "[agents]\nheartbeat = 1s\n[repair]\nenabled = no\n"
			   "healthy_streak = 2\n");
	h_daemon_start(c);
	agent_spawn(c, -1, "node1", NULL);
	agent_spawn(c, -1, "node2", NULL);
	assert_true(h_wait_nodes(c, 2, 30000));
	assert_int_equal(h_hpq(c, NULL, "node", "drain", "node1", "--reason", "rma", NULL), 0);
	inject(c, "node2", "kernel hung-task fatal task blocked for more than 120 seconds\n");
	assert_true(H_WAIT_FOR(c, node_field_is(c, "node2", "health", "unhealthy"), 30000));
	assert_int_equal(h_hpq(c, NULL, "node", "repair", "node2", NULL), 0);
	assert_true(node_field_is(c, "node2", "service", "repairing"));
	assert_true(node_field_is(c, "node2", "repair_action", "reboot"));

	h_daemon_stop(c, SIGTERM);
	h_daemon_start(c);
	assert_true(h_wait_nodes(c, 2, 30000));
	assert_true(node_field_is(c, "node1", "service", "drained"));
	assert_true(node_field_is(c, "node1", "service_by", "root"));
	assert_true(node_field_is(c, "node1", "reason", "rma"));
	assert_true(node_field_is(c, "node2", "service", "repairing"));
	assert_true(node_reason_has(c, "node2", "hung-task: task blocked"));
	/* Still unhealthy: no streak. More unhealthy heartbeats since the
	 * restart than the healthy streak (2), and two repair passes. */
	assert_true(h_wait_heartbeats(c, "node2", 3, 30000));
	assert_true(h_wait_repair_checks(c, 2, 30000));
	assert_true(node_field_is(c, "node2", "service", "repairing"));
	inject(c, "node2", "");
	assert_true(H_WAIT_FOR(c, node_field_is(c, "node2", "service", "active"), 30000));
	assert_true(node_field_is(c, "node1", "service", "drained"));
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(fatal_finding_repairs, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(agent_loss_kills_stale, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(blast_radius, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(hung_script, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(admin_drain, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(unreachable_repairs, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(repair_timeout_down, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(sighup_enables_repair, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(restart_keeps_service, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(gang_evacuated, h_setup, h_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
