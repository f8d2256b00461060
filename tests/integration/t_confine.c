/*
 * t_confine: tasks confined in cgroups v2 of their own (hpq-agent(8),
 * Confinement), under a real kernel.
 *
 * The test makes the agent a delegated cgroup as the man page's by-hand
 * fallback does: as root, a cgroup hpqt-confine-PID at the top of the
 * cgroup2 mount, with the cpu, memory and pids controllers, and the agent
 * started in it (through a two-line wrapper that joins it and execs the
 * agent). Then:
 *
 * - the node reports that it confines tasks (Node.cgroup);
 * - a task runs in its own cgroup task-ID-1 with memory.max from --mem,
 *   cpu.max from --cpus, pids.max from --task-pids-max and no swap;
 * - a task with --mem 64M that allocates 400 MiB ends OUT_OF_MEMORY, its
 *   reason naming the node and the limit;
 * - the task's cgroup is gone after it ended.
 *
 * Where that cannot be done it exits 77 (skipped) saying why: not root,
 * no cgroup2 mount, the controllers are not available on it (a cgroup v1
 * host), or the top of the mount cannot hand them out.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "client.h"
#include "harness.h"
#include "msg.h"

static char mount_dir[1024];     /* the cgroup2 mount */
static char cg_dir[1200];        /* mount_dir/hpqt-confine-PID: the agent's */
static char wrapper[256];        /* the wrapper script, in a temp dir of its own */
static char wrapper_dir[64];

static int write_str(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		r = -errno;
	close(fd);
	return r;
}

static int read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n < 0 ? -errno : 0;
}

/* Finds the cgroup2 mount and prepares cg_dir; returns NULL, or why the
 * test cannot run here. */
static const char *prepare(void)
{
	static char why[4096];
	char line_root[4096], buf[2048], *line = NULL;
	size_t cap = 0;
	FILE *f;
	bool found = false;
	int r;

	if (geteuid() != 0)
		return "it needs root to make a cgroup for the agent";
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return "cannot read /proc/self/mountinfo";
	while (getline(&line, &cap, f) > 0)
		if (cgroup_parse_mountinfo_line(line, mount_dir, sizeof(mount_dir), line_root,
						sizeof(line_root)) == 1) {
			found = true;
			break;
		}
	free(line);
	fclose(f);
	if (!found)
		return "there is no cgroup2 mount (this host uses cgroup v1)";
	snprintf(buf, sizeof(buf), "%s/cgroup.controllers", mount_dir);
	if (read_str(buf, buf, sizeof(buf)) < 0 || !cgroup_list_has(buf, "memory") ||
	    !cgroup_list_has(buf, "cpu") || !cgroup_list_has(buf, "pids")) {
		snprintf(why, sizeof(why), "the cgroup2 mount %s lacks the cpu, memory or pids "
			 "controller (this host keeps them on cgroup v1)", mount_dir);
		return why;
	}
	snprintf(buf, sizeof(buf), "%s/cgroup.subtree_control", mount_dir);
	r = write_str(buf, "+cpu +memory +pids");
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot enable the controllers in %s: %s", buf,
			 strerror(-r));
		return why;
	}
	snprintf(cg_dir, sizeof(cg_dir), "%s/hpqt-confine-%ld", mount_dir, (long)getpid());
	if (mkdir(cg_dir, 0755) < 0) {
		snprintf(why, sizeof(why), "cannot create %s: %s", cg_dir, strerror(errno));
		return why;
	}
	return NULL;
}

static void cleanup(void)
{
	char path[1300];

	if (!cg_dir[0])
		return;
	/* The agent's leaf, then the subtree; task cgroups are gone already
	 * (checked by the test) unless it failed half-way. */
	snprintf(path, sizeof(path), "%s/agent", cg_dir);
	(void)rmdir(path);
	(void)rmdir(cg_dir);
	if (wrapper[0])
		unlink(wrapper);
	if (wrapper_dir[0])
		rmdir(wrapper_dir);
}

/* The agent, started in cg_dir by a wrapper (HPQ_TEST_AGENT). */
static void make_wrapper(void)
{
	char text[8192];
	FILE *f;

	snprintf(wrapper_dir, sizeof(wrapper_dir), "/tmp/hpqt-cgwrap-XXXXXX");
	assert_non_null(mkdtemp(wrapper_dir));
	snprintf(wrapper, sizeof(wrapper), "%s/hpq-agent", wrapper_dir);
	snprintf(text, sizeof(text), "#!/bin/sh\necho $$ > '%s/cgroup.procs' || exit 1\n"
		 "exec '%s' \"$@\"\n", cg_dir, h_bin("agent"));
	f = fopen(wrapper, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(wrapper, 0755), 0);
	assert_int_equal(setenv("HPQ_TEST_AGENT", wrapper, 1), 0);
}

/* Node.cgroup and cgroup_problem of node, from hpqd. */
static bool node_confines(struct h_cluster *c, const char *node, char *problem, size_t len)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__NodeListRequest req = HPQ__NODE_LIST_REQUEST__INIT;
	struct hpq_client cl;
	bool confined = false;

	if (hpq_client_connect(&cl, c->sock, 30000) < 0)
		fail_msg("cannot connect: %s", cl.errbuf);
	env.body_case = HPQ__ENVELOPE__BODY_NODE_LIST;
	env.node_list = &req;
	if (hpq_client_call(&cl, &env, &reply) < 0)
		fail_msg("node list: %s", cl.errbuf);
	snprintf(problem, len, "no node %s", node);
	for (size_t i = 0; i < reply->node_list_reply->n_nodes; i++) {
		const Hpq__Node *n = reply->node_list_reply->nodes[i];

		if (strcmp(n->name, node))
			continue;
		confined = n->cgroup;
		snprintf(problem, len, "%s", n->cgroup_problem);
	}
	hpq_msg_free(reply);
	hpq_client_close(&cl);
	return confined;
}

static void confined_and_oom(void **state)
{
	static const char *const extra[] = {"--cgroup", "required", "--task-pids-max", "123",
					    NULL};
	struct h_cluster *c = *state;
	char problem[600], cmd[8192], want[64], *log;
	uint64_t id;
	json_t *t;

	make_wrapper();
	h_daemon_start(c);
	h_agent_start_opts(c, "node1", 0, 2, "2G", extra);
	assert_true(h_wait_nodes(c, 1, 30000));
	if (!node_confines(c, "node1", problem, sizeof(problem)))
		fail_msg("node1 does not confine its tasks: %s", problem);

	/* Its own cgroup, with its limits. */
	snprintf(cmd, sizeof(cmd), "p=$(sed -n 's/^0:://p' /proc/self/cgroup); echo \"cg=$p\"; "
		 "d='%s'$p; echo \"mem=$(cat $d/memory.max)\"; echo \"cpu=$(cat $d/cpu.max)\"; "
		 "echo \"pids=$(cat $d/pids.max)\"; echo \"swap=$(cat $d/memory.swap.max "
		 "2>/dev/null || echo 0)\"", mount_dir);
	id = h_submit(c, "--mem", "64M", "--cpus", "1", "--", "sh", "-c", cmd, NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	log = h_task_log(c, "node1", id);
	assert_non_null(log);
	snprintf(want, sizeof(want), "/task-%" PRIu64 "-1\n", id);
	if (!strstr(log, want) || !strstr(log, "mem=67108864\n") ||
	    !strstr(log, "cpu=100000 100000\n") || !strstr(log, "pids=123\n") ||
	    !strstr(log, "swap=0\n"))
		fail_msg("the task's cgroup is not as asked:\n%s", log);
	free(log);
	snprintf(cmd, sizeof(cmd), "%s/task-%" PRIu64 "-1", cg_dir, id);
	assert_true(H_WAIT_FOR(c, access(cmd, F_OK) < 0, 10000));

	/* 400 MiB in a 64 MiB task: tail keeps a line without an end. */
	id = h_submit(c, "--mem", "64M", "--", "sh", "-c", "head -c 400M /dev/zero | tail",
		      NULL);
	if (!h_wait_state(c, id, "OUT_OF_MEMORY", 60000)) {
		t = h_task(c, id);
		fail_msg("task %" PRIu64 " is %s (%s), not OUT_OF_MEMORY", id,
			 t ? h_str(t, "state") : "?", t ? h_str(t, "reason") : "?");
	}
	t = h_task(c, id);
	assert_non_null(t);
	if (!strstr(h_str(t, "reason"), "out of memory on node1 (memory.max 64 MiB)"))
		fail_msg("OUT_OF_MEMORY with reason '%s'", h_str(t, "reason"));
	json_decref(t);
	snprintf(cmd, sizeof(cmd), "%s/task-%" PRIu64 "-1", cg_dir, id);
	assert_true(H_WAIT_FOR(c, access(cmd, F_OK) < 0, 10000));
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(confined_and_oom, h_setup, h_teardown),
	};
	const char *why = prepare();
	int r;

	if (why) {
		printf("t_confine: skipped: %s\n", why);
		return 77;
	}
	r = cmocka_run_group_tests(tests, NULL, NULL);
	cleanup();
	return r;
}
