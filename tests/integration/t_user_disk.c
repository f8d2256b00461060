/*
 * t_user_disk: a node's health is the node's, not a user's. The test
 * mounts a 1 MiB tmpfs and fills it (as root; without the right to mount
 * it exits 77, skipped), and unmounts it at the end of each test, failed
 * or not.
 *
 * - user_checkpoint_dir_full: a task whose --checkpoint-dir is on the full
 *   filesystem runs beside another user's unrelated task on the same
 *   node. That task gets one event, kind warning, reason
 *   checkpoint-dir-full (hpq show and hpq events --task), and no more
 *   while nothing changes; the node stays healthy and active, and both
 *   tasks keep running on their first attempt well past hpqd's repair
 *   wait, which would have repaired an unhealthy node and requeued them.
 * - admin_disk_full: the same filesystem named by the administrator with
 *   --health-disk is the node's: a fatal disk-space-low finding that
 *   names it, and the node is unhealthy. --check shows where the list
 *   came from (the options' replace the file's).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define NOBODY 65534

struct fixture {
	struct h_cluster *c;
	char mnt[128];       /* the tmpfs, under the cluster's dir; "" when not mounted */
};

/* Mounts a 1 MiB tmpfs at path. Returns 0 or -errno. */
static int mount_small(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0)
		return -errno;
	return 0;
}

/* Writes zeros into dir/fill until the filesystem says it is full. */
static void fill(const char *dir)
{
	static const char zeros[65536];
	char path[256];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/fill", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	while ((n = write(fd, zeros, sizeof(zeros))) > 0)
		;
	if (n < 0 && errno != ENOSPC)
		fail_msg("filling %s: %s", dir, strerror(errno));
	close(fd);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int r;

	assert_non_null(f);
	f->c = h_cluster_new();
	snprintf(f->mnt, sizeof(f->mnt), "%s", h_path(f->c, "smallfs"));
	r = mount_small(f->mnt);
	if (r < 0)
		fail_msg("cannot mount a tmpfs at %s: %s", f->mnt, strerror(-r));
	/* The task's checkpoint directory, made while there is room for it. */
	assert_int_equal(mkdir(h_path(f->c, "smallfs/ckpt"), 0700), 0);
	fill(f->mnt);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	/* Detached at once, even while a task still has it as its directory. */
	if (f->mnt[0] && umount2(f->mnt, MNT_DETACH) < 0)
		fprintf(stderr, "t_user_disk: cannot unmount %s: %s\n", f->mnt, strerror(errno));
	rc = h_cluster_free(f->c);
	free(f);
	return rc;
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

/* The node's finding with this reason (borrowed from n), or NULL. */
static json_t *finding(json_t *n, const char *reason)
{
	json_t *x;
	size_t i;

	json_array_foreach(json_object_get(n, "findings"), i, x)
		if (strcmp(h_str(x, "reason"), reason) == 0)
			return x;
	return NULL;
}

/* How many events of kind in events (a JSON array) have text in their message. */
static int count_events(json_t *events, const char *kind, const char *text)
{
	json_t *ev;
	size_t i;
	int n = 0;

	json_array_foreach(events, i, ev)
		n += strcmp(h_str(ev, "kind"), kind) == 0 && strstr(h_str(ev, "message"), text);
	return n;
}

static int task_events(struct h_cluster *c, uint64_t id, const char *kind, const char *text)
{
	json_t *t = h_task(c, id);
	int n = t ? count_events(json_object_get(t, "events"), kind, text) : -1;

	json_decref(t);
	return n;
}

static bool running_first_attempt(struct h_cluster *c, uint64_t id)
{
	json_t *t = h_task(c, id);
	bool ok = t && strcmp(h_str(t, "state"), "RUNNING") == 0 && h_int(t, "attempts") == 1;

	json_decref(t);
	return ok;
}

static void user_checkpoint_dir_full(void **state)
{
	struct fixture *f = *state;
	struct h_cluster *c = f->c;
	const char *ckpt = h_path(c, "smallfs/ckpt");
	const char *const opts[] = {"--health-interval", "1s", NULL};
	uint64_t other, mine;
	json_t *n, *evs;
	char id[32];

	/* A repair starts 2 s into an unhealthy spell, and may take the only node. */
	h_daemon_config(c, "[agents]\nheartbeat = 1s\n[repair]\nwait_default = 2s\n"
			   "max_unhealthy_percent = 100\n");
	h_daemon_start(c);
	h_agent_start_opts(c, "node1", 0, 4, "2G", opts);
	assert_true(h_wait_nodes(c, 1, 30000));

	/* Another user's task, unrelated, and a task with its checkpoints on the full disk. */
	h_cli_as(c, NOBODY, NOBODY);
	other = h_submit(c, "--name", "other", "--", "sleep", "600", NULL);
	h_cli_as(c, 0, 0);
	mine = h_submit(c, "--name", "mine", "--checkpoint-dir", ckpt, "--", "sleep", "600", NULL);
	assert_true(h_wait_state(c, other, "RUNNING", 30000));
	assert_true(h_wait_state(c, mine, "RUNNING", 30000));

	/* The task hears of it. */
	if (!H_WAIT_FOR(c, task_events(c, mine, "warning", "checkpoint-dir-full") == 1, 30000))
		fail_msg("task %llu got no checkpoint-dir-full warning",
			 (unsigned long long)mine);
	snprintf(id, sizeof(id), "%llu", (unsigned long long)mine);
	evs = h_hpq_json(c, "events", "--task", id, NULL);
	assert_int_equal(count_events(evs, "warning", "checkpoint-dir-full"), 1);
	assert_int_equal(count_events(evs, "warning", ckpt), 1);
	json_decref(evs);

	/* Well past the repair wait (several checks of it, each heartbeat/2,
	 * and a health round each second): nothing else happened. */
	assert_true(h_wait_repair_checks(c, 8, 30000));
	assert_true(h_wait_heartbeats(c, "node1", 4, 30000));
	n = node_show(c, "node1");
	assert_non_null(n);
	assert_string_equal(h_str(n, "health"), "healthy");
	assert_string_equal(h_str(n, "service"), "active");
	assert_null(finding(n, "disk-space-low"));
	json_decref(n);
	assert_true(running_first_attempt(c, other));
	assert_true(running_first_attempt(c, mine));
	/* Once per change, not once per round. */
	assert_int_equal(task_events(c, mine, "warning", "checkpoint-dir-full"), 1);
	assert_int_equal(task_events(c, other, "warning", ""), 0);
	h_pass(c);
}

/* The --check printout's health-disk line, or fails. */
static void check_line(struct h_cluster *c, const char *conf, const char *flag_value,
		       const char *want)
{
	char cmd[1024], line[512];
	bool found = false;
	FILE *p;

	/* The test's own paths have no quotes in them. */
	snprintf(cmd, sizeof(cmd), "'%s' --check --server '%s' --name n9 -c '%s' %s%s%s 2>/dev/null",
		 h_bin("agent"), c->sock, conf, flag_value ? "--health-disk '" : "",
		 flag_value ? flag_value : "", flag_value ? "'" : "");
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p))
		if (strncmp(line, "health-disk ", 12) == 0) {
			found = true;
			if (!strstr(line, want))
				fail_msg("--check printed '%s', expected '%s'", line, want);
		}
	pclose(p);
	if (!found)
		fail_msg("--check printed no health-disk line");
}

static void admin_disk_full(void **state)
{
	struct fixture *f = *state;
	struct h_cluster *c = f->c;
	const char *const opts[] = {"--health-interval", "1s", "--health-disk", f->mnt, NULL};
	const char *conf = h_path(c, "agent.conf");
	json_t *n, *x;

	h_daemon_config(c, "[agents]\nheartbeat = 1s\n");
	h_daemon_start(c);
	h_agent_start_opts(c, "node1", 0, 4, "2G", opts);
	assert_true(h_wait_nodes(c, 1, 30000));
	assert_true(H_WAIT_FOR(c, ({
		json_t *nn = node_show(c, "node1");
		bool bad = nn && strcmp(h_str(nn, "health"), "unhealthy") == 0;

		json_decref(nn);
		bad;
	}), 30000));
	n = node_show(c, "node1");
	x = finding(n, "disk-space-low");
	assert_non_null(x);
	assert_string_equal(h_str(x, "severity"), "fatal");
	assert_non_null(strstr(h_str(x, "message"), f->mnt));
	json_decref(n);

	/* Where the list comes from: the file's, or the options' instead. */
	h_write_file(conf, "[agent]\nhealth-disk = /srv/a,/srv/b\nhealth-disk = /srv/c\n");
	check_line(c, conf, NULL, "health-disk = /srv/a,/srv/b,/srv/c");
	check_line(c, conf, NULL, "; file");
	check_line(c, conf, "/tmp", "health-disk = /tmp ");
	check_line(c, conf, "/tmp", "; option");
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(user_checkpoint_dir_full, setup, teardown),
		cmocka_unit_test_setup_teardown(admin_disk_full, setup, teardown),
	};
	char probe[] = "/tmp/t_user_disk-XXXXXX";
	int r;

	/* Mounting needs root (CAP_SYS_ADMIN): without it, skip. */
	if (!mkdtemp(probe)) {
		perror("t_user_disk: mkdtemp");
		return 1;
	}
	r = mount_small(probe);
	if (r == 0)
		umount2(probe, MNT_DETACH);
	rmdir(probe);
	if (r < 0) {
		fprintf(stderr, "t_user_disk: skipped: cannot mount a tmpfs (%s); the test needs "
			"root with CAP_SYS_ADMIN\n", strerror(-r));
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
