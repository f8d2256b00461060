/*
 * t_diskfull: hpqd survives a full or failing state disk. Its state
 * directory is a small tmpfs the test mounts (as root, in a mount
 * namespace of its own, so that nothing it mounts outlives it; without
 * the right to mount it exits 77, skipped), and unmounts at the end of
 * each test, failed or not.
 *
 * - full_while_running: the disk fills under a running hpqd. A submit is
 *   refused with "state store full: N bytes free on DIR" and leaves no
 *   trace (not even a task id); list, show, events and status still
 *   answer; status, the metrics and systemd (STATUS=) say degraded. The
 *   space comes back: hpqd takes changes again without a restart, and
 *   after one the tasks are exactly those acknowledged.
 * - large_submit_on_a_nearly_full_disk: a submit larger than what is left
 *   fails its commit (the check before it passed). hpqd keeps running,
 *   degraded, refuses the next submit, and answers the large one only
 *   once the space is back and its commit went through; it is durable.
 * - large_start_on_a_nearly_full_disk: the same submit where an agent
 *   waits fails its commit with its start; once the space is back the
 *   task's environment and arguments (1.8 MB) are read for its RunTask,
 *   and it runs with all of them.
 * - start_on_full_disk: hpqd started on a full disk (no room even for the
 *   database's -shm file) serves reads, degraded, and resumes by itself.
 * - agent_report_waits: a task ends while the disk is full. Its agent's
 *   report is refused, the task stays RUNNING (nothing unstored is shown
 *   as done), and once the space is back the agent, which kept its
 *   report, sends it again: COMPLETED, exit code 0.
 * - readonly_database_refused: a database hpqd may not write (the file
 *   without write permission, for a root hpqd without CAP_DAC_OVERRIDE; a
 *   directory it cannot write) is refused at start, with words that say
 *   so, not reported ready and then broken at the first write.
 * - readonly_mount_refused: the same for a file system mounted read-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include "harness.h"

#define FS_SIZE "8m"            /* the store's reserve on it: 512 KiB */
#define BIG_ARGS 9              /* of BIG_ARG bytes, and as many variables: */
#define BIG_ARG 100000          /* a task of 1.8 MB (each part at most 1 MiB) */
#define ROOT_TASKS "[auth]\nallow_root_tasks = yes\n"

struct fixture {
	struct h_cluster *c;
	char state[128];     /* hpqd's state directory */
	char mnt[128];       /* the tmpfs mounted there; "" when none is */
	int metrics_port;    /* hpqd's --metrics port, or 0 */
	int notify_fd;       /* hpqd's $NOTIFY_SOCKET, bound here; -1 when none */
	char notify[100];     /* its path (sun_path holds 108) */
};

/* Mounts a tmpfs of FS_SIZE at path. Returns 0 or -errno. */
static int mount_small(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=" FS_SIZE ",mode=0700") < 0)
		return -errno;
	return 0;
}

static uint64_t free_bytes(const char *dir)
{
	struct statvfs v;

	assert_int_equal(statvfs(dir, &v), 0);
	return (uint64_t)v.f_bavail * v.f_frsize;
}

/* Writes zeros into dir/fill until the file system is full, or until
 * leave bytes are left. */
static void fill(const char *dir, uint64_t leave)
{
	static const char zeros[4096];
	char path[256];
	uint64_t todo = UINT64_MAX;
	ssize_t n = 0;
	int fd;

	if (leave) {
		uint64_t have = free_bytes(dir);

		assert_true(have > leave);
		todo = have - leave;
	}
	snprintf(path, sizeof(path), "%s/fill", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	while (todo > 0 &&
	       (n = write(fd, zeros, todo < sizeof(zeros) ? todo : sizeof(zeros))) > 0)
		todo -= todo == UINT64_MAX ? 0 : (uint64_t)n;
	if (n < 0 && errno != ENOSPC)
		fail_msg("filling %s: %s", dir, strerror(errno));
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

static void unfill(const char *dir)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/fill", dir);
	assert_int_equal(unlink(path), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->c = h_cluster_new();
	snprintf(f->state, sizeof(f->state), "%s", h_path(f->c, "state"));
	/* The tests submit as root. */
	h_daemon_config(f->c, ROOT_TASKS);
	f->notify_fd = -1;
	*state = f;
	return 0;
}

/* The state directory on a fresh tmpfs. */
static void use_tmpfs(struct fixture *f)
{
	int r = mount_small(f->state);

	if (r < 0)
		fail_msg("cannot mount a tmpfs at %s: %s", f->state, strerror(-r));
	snprintf(f->mnt, sizeof(f->mnt), "%s", f->state);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc = 0;

	/* hpqd first, so that it stops on its own disk; then the mount. */
	if (f->c->hpqd) {
		kill(f->c->hpqd, SIGTERM);
		if (!H_WAIT_FOR(f->c, f->c->hpqd == 0, 20000)) {
			fprintf(stderr, "t_diskfull: hpqd did not stop within 20 s of SIGTERM\n");
			kill(f->c->hpqd, SIGKILL);
			rc = -1;
		} else if (!WIFEXITED(f->c->hpqd_status) || WEXITSTATUS(f->c->hpqd_status) != 0) {
			fprintf(stderr, "t_diskfull: hpqd exited with status %#x on SIGTERM\n",
				f->c->hpqd_status);
			rc = -1;
		}
	}
	if (f->mnt[0] && umount2(f->mnt, MNT_DETACH) < 0)
		fprintf(stderr, "t_diskfull: cannot unmount %s: %s\n", f->mnt, strerror(errno));
	chmod(f->state, 0700);
	if (f->notify_fd >= 0)
		close(f->notify_fd);
	if (h_cluster_free(f->c) < 0)
		rc = -1;
	free(f);
	return rc;
}

static bool socket_ready(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* A TCP port nobody listens on now. */
static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static long log_size(struct h_cluster *c)
{
	struct stat st;

	return stat(c->log, &st) == 0 ? (long)st.st_size : 0;
}

/* What hpqd logged from offset on (malloc'd). */
static char *log_since(struct h_cluster *c, long offset)
{
	char *text = h_read_file(c->log), *rest;

	assert_non_null(text);
	rest = strdup(text + ((long)strlen(text) < offset ? (long)strlen(text) : offset));
	free(text);
	assert_non_null(rest);
	return rest;
}

/*
 * Starts hpqd on f->state, over the Unix socket only, its log in the
 * cluster's dir (not on the small disk). no_dac: without
 * CAP_DAC_OVERRIDE, so that a root hpqd meets file modes as any user
 * does. Returns true once it serves, false if it exited first.
 */
static bool start_hpqd(struct fixture *f, bool no_dac)
{
	struct h_cluster *c = f->c;
	char metrics[64] = "";
	const char *argv[20];
	int n = 0;
	pid_t pid;

	assert_int_equal(c->hpqd, 0);
	argv[n++] = h_bin("hpqd");
	argv[n++] = "--foreground";
	argv[n++] = "--state-dir";
	argv[n++] = f->state;
	argv[n++] = "--socket";
	argv[n++] = c->sock;
	argv[n++] = "--listen";
	argv[n++] = "";
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	if (c->config[0]) {
		argv[n++] = "--config";
		argv[n++] = c->config;
	}
	if (f->metrics_port) {
		snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", f->metrics_port);
		argv[n++] = "--metrics";
		argv[n++] = metrics;
	}
	argv[n] = NULL;

	unlink(c->sock);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		setenv("HPQ_ITEST_DIR", c->dir, 1);
		if (f->notify[0])
			setenv("NOTIFY_SOCKET", f->notify, 1);
		if (chdir(c->dir) < 0)
			_exit(127);
		if (no_dac && prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) < 0) {
			fprintf(stderr, "t_diskfull: cannot drop CAP_DAC_OVERRIDE: %s\n",
				strerror(errno));
			_exit(126);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	c->hpqd = pid;
	if (!H_WAIT_FOR(c, c->hpqd == 0 || socket_ready(c->sock), 30000))
		fail_msg("hpqd neither served nor exited within 30 s");
	return c->hpqd != 0;
}

static void stop_hpqd(struct fixture *f)
{
	assert_int_equal(WEXITSTATUS(h_daemon_stop(f->c, SIGTERM)), 0);
}

/* hpq status --json's "store" object, as (degraded, state). */
static bool degraded(struct h_cluster *c, const char *want_state)
{
	json_t *j = h_hpq_json(c, "status", NULL);
	json_t *st = json_object_get(j, "store");
	bool d = json_is_true(json_object_get(st, "degraded"));
	bool match = !want_state || !strcmp(h_str(st, "state"), want_state);

	json_decref(j);
	return d && match;
}

static bool writable(struct h_cluster *c)
{
	json_t *j = h_hpq_json(c, "status", NULL);
	bool w = json_is_false(json_object_get(json_object_get(j, "store"), "degraded"));

	json_decref(j);
	return w;
}

static size_t ntasks(struct h_cluster *c)
{
	json_t *t = h_tasks(c);
	size_t n = json_array_size(t);

	json_decref(t);
	return n;
}

static bool has_task(struct h_cluster *c, uint64_t id)
{
	json_t *t = h_tasks(c);
	bool yes = h_find_task(t, id) != NULL;

	json_decref(t);
	return yes;
}

/* A submit refused because the disk is full: the clear words, no id. */
static void submit_refused_full(struct h_cluster *c)
{
	struct h_out o;

	h_hpq(c, &o, "submit", "--", "true", NULL);
	if (o.code == 0 || !strstr(o.err, "state store full: ") ||
	    !strstr(o.err, " bytes free on "))
		fail_msg("a submit on a full disk: exit %d, stdout '%s', stderr '%s'", o.code,
			 o.out, o.err);
	h_out_free(&o);
}

/* Binds the datagram socket hpqd is to send its sd_notify messages to. */
static void listen_notify(struct fixture *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(f->notify, sizeof(f->notify), "%s", h_path(f->c, "notify.sock"));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->notify);
	f->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(f->notify_fd >= 0);
	assert_int_equal(bind(f->notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

/* Whether a message that begins with prefix has come (reading what has). */
static bool notified(struct fixture *f, const char *prefix)
{
	char buf[1024];
	ssize_t n;
	bool seen = false;

	while ((n = recv(f->notify_fd, buf, sizeof(buf) - 1, 0)) > 0) {
		buf[n] = '\0';
		seen = seen || !strncmp(buf, prefix, strlen(prefix));
	}
	return seen;
}

/* The metrics page (plain HTTP on 127.0.0.1:port), malloc'd. */
static char *scrape(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	assert_non_null(buf);
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	while ((n = read(fd, buf + len, cap - 1 - len)) > 0) {
		len += (size_t)n;
		if (cap - 1 - len == 0) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

/* ---------------------------------------------------------------- tests */

static void full_while_running(void **state)
{
	struct fixture *f = *state;
	struct h_cluster *c = f->c;
	struct h_out o;
	uint64_t id1, id2;
	json_t *t;
	char *page;

	use_tmpfs(f);
	f->metrics_port = free_port();
	listen_notify(f);
	assert_true(start_hpqd(f, false));
	id1 = h_submit(c, "--", "true", NULL);
	assert_true(writable(c));

	fill(f->state, 0);
	submit_refused_full(c);
	if (!H_WAIT_FOR(c, notified(f, "STATUS=degraded: state store full: "), 30000))
		fail_msg("systemd was not told (STATUS=) that hpqd is degraded");

	/* Reads go on, and say why changes do not. */
	assert_int_equal(ntasks(c), 1);
	t = h_task(c, id1);
	assert_non_null(t);
	json_decref(t);
	json_decref(h_hpq_json(c, "events", NULL));
	assert_true(degraded(c, "full"));
	assert_int_equal(h_hpq(c, &o, "status", NULL), 0);
	if (strncmp(o.out, "DEGRADED: state store full: ", 28) != 0)
		fail_msg("hpq status does not begin with the degraded store:\n%s", o.out);
	h_out_free(&o);
	page = scrape(f->metrics_port);
	if (!strstr(page, "\nhpq_store_degraded{reason=\"full\"} 1\n") ||
	    !strstr(page, "\nhpq_store_degraded{reason=\"failing\"} 0\n") ||
	    !strstr(page, "\nhpq_store_free_bytes "))
		fail_msg("the metrics do not say degraded:\n%s", page);
	free(page);
	/* Still refused a moment later: not a one-off. */
	submit_refused_full(c);

	/* The space returns: hpqd takes changes again, by itself. */
	unfill(f->state);
	if (!H_WAIT_FOR(c, writable(c), 30000))
		fail_msg("hpqd is still degraded 30 s after the space returned");
	if (!H_WAIT_FOR(c, notified(f, "STATUS=state store writable"), 30000))
		fail_msg("systemd was not told (STATUS=) that hpqd is writable again");
	id2 = h_submit(c, "--", "true", NULL);
	/* The refused submits left nothing behind, not even an id. */
	assert_int_equal(id2, id1 + 1);
	page = scrape(f->metrics_port);
	assert_non_null(strstr(page, "\nhpq_store_degraded{reason=\"full\"} 0\n"));
	free(page);

	/* Exactly the acknowledged tasks, durably. */
	stop_hpqd(f);
	assert_true(start_hpqd(f, false));
	assert_int_equal(ntasks(c), 2);
	assert_true(has_task(c, id1));
	assert_true(has_task(c, id2));
	h_pass(c);
}

static void large_submit_on_a_nearly_full_disk(void **state)
{
	struct fixture *f = *state;
	struct h_cluster *c = f->c;
	char out_path[256], *out, *arg;
	const char *argv[BIG_ARGS + 6];
	uint64_t id1, id2;
	json_t *j;
	pid_t pid;
	int n = 0, status;

	h_daemon_config(c, ROOT_TASKS "[limits]\nmax_task_bytes = 2M\n");
	use_tmpfs(f);
	assert_true(start_hpqd(f, false));
	id1 = h_submit(c, "--", "true", NULL);

	/* 700 KiB left: above the reserve, far below what the task needs. */
	fill(f->state, 700 << 10);
	assert_true(writable(c));

	arg = malloc(BIG_ARG + 1);
	assert_non_null(arg);
	memset(arg, 'x', BIG_ARG);
	arg[BIG_ARG] = '\0';
	argv[n++] = h_bin("hpq");
	argv[n++] = "submit";
	argv[n++] = "--";
	argv[n++] = "true";
	for (int i = 0; i < BIG_ARGS; i++)
		argv[n++] = arg;
	argv[n] = NULL;
	snprintf(out_path, sizeof(out_path), "%s", h_path(c, "big-submit.out"));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		setenv("HPQ_SOCKET", c->sock, 1);
		unsetenv("HPQ_SERVER");
		for (int i = 0; i < BIG_ARGS; i++) {
			char name[16];

			snprintf(name, sizeof(name), "BIG%d", i);
			setenv(name, argv[4], 1);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	free(arg);

	/* Its commit failed: hpqd runs on, degraded, and refuses what comes next. */
	if (!H_WAIT_FOR(c, c->hpqd == 0 || degraded(c, NULL), 30000) || c->hpqd == 0)
		fail_msg("hpqd is not degraded after a commit larger than the disk");
	j = h_hpq_json(c, "status", NULL);
	assert_true(h_int(json_object_get(j, "store"), "waiting_rows") > 0);
	json_decref(j);
	submit_refused_full(c);

	/* The space returns: the large submit's commit goes through, and only
	 * now is it answered. */
	unfill(f->state);
	status = h_wait_child(c, pid, 40000);
	out = h_read_file(out_path);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the large submit: status %#x, output '%s'", status, out ? out : "");
	id2 = h_parse_id(out);
	free(out);
	assert_true(id2 > id1);
	assert_true(H_WAIT_FOR(c, writable(c), 30000));
	h_submit(c, "--", "true", NULL);

	stop_hpqd(f);
	assert_true(start_hpqd(f, false));
	assert_int_equal(ntasks(c), 3);
	j = h_task(c, id2);
	assert_non_null(j);
	json_decref(j);
	h_pass(c);
}

/*
 * A large task submitted where an agent waits, on a nearly full disk: its
 * submit and its start fail their commit together. Once the space is
 * back they commit, the environment and arguments (1.8 MB, near [limits]
 * max_task_bytes) are read for its RunTask then, and the task runs with
 * every one of them.
 */
static void large_start_on_a_nearly_full_disk(void **state)
{
	struct fixture *f = *state;
	struct h_cluster *c = f->c;
	char out_path[256], *out, *arg;
	const char *argv[BIG_ARGS + 10];
	uint64_t id;
	pid_t pid;
	int n = 0, status;

	h_daemon_config(c, ROOT_TASKS "[limits]\nmax_task_bytes = 2M\n");
	use_tmpfs(f);
	assert_true(start_hpqd(f, false));
	h_agent_start(c, "node1", 0, 1, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));
	fill(f->state, 700 << 10);
	assert_true(writable(c));

	arg = malloc(BIG_ARG + 1);
	assert_non_null(arg);
	memset(arg, 'x', BIG_ARG);
	arg[BIG_ARG] = '\0';
	argv[n++] = h_bin("hpq");
	argv[n++] = "submit";
	argv[n++] = "--";
	argv[n++] = "sh";
	argv[n++] = "-c";
	argv[n++] = "[ $# -eq 9 ] && [ ${#1} -eq 100000 ] && [ ${#BIG0} -eq 100000 ] && "
		    "[ ${#BIG8} -eq 100000 ]";
	argv[n++] = "sh";
	for (int i = 0; i < BIG_ARGS; i++)
		argv[n++] = arg;
	argv[n] = NULL;
	snprintf(out_path, sizeof(out_path), "%s", h_path(c, "big-start.out"));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		setenv("HPQ_SOCKET", c->sock, 1);
		unsetenv("HPQ_SERVER");
		for (int i = 0; i < BIG_ARGS; i++) {
			char name[16];

			snprintf(name, sizeof(name), "BIG%d", i);
			setenv(name, arg, 1);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (!H_WAIT_FOR(c, c->hpqd == 0 || degraded(c, NULL), 30000) || c->hpqd == 0)
		fail_msg("hpqd is not degraded after a commit larger than the disk");
	unfill(f->state);
	status = h_wait_child(c, pid, 40000);
	out = h_read_file(out_path);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the large submit: status %#x, output '%s'", status, out ? out : "");
	id = h_parse_id(out);
	free(out);
	free(arg);
	assert_true(id != 0);
	assert_true(h_wait_state(c, id, "COMPLETED", 60000));
	h_pass(c);
}

static void start_on_full_disk(void **state)
{
	struct fixture *f = *state;
	struct h_cluster *c = f->c;
	uint64_t id1, id2;
	json_t *t;

	use_tmpfs(f);
	assert_true(start_hpqd(f, false));
	id1 = h_submit(c, "--", "true", NULL);
	stop_hpqd(f);

	fill(f->state, 0);
	if (!start_hpqd(f, false))
		fail_msg("hpqd did not start on a full disk");
	assert_true(has_task(c, id1));
	t = h_task(c, id1);
	assert_non_null(t);
	json_decref(t);
	assert_true(degraded(c, "full"));
	submit_refused_full(c);

	unfill(f->state);
	if (!H_WAIT_FOR(c, writable(c), 30000))
		fail_msg("hpqd is still degraded 30 s after the space returned");
	id2 = h_submit(c, "--", "true", NULL);
	assert_int_equal(id2, id1 + 1);
	h_pass(c);
}

/* Whether hpqd logged text from offset on. */
static bool logged(struct h_cluster *c, long offset, const char *text)
{
	char *log = log_since(c, offset);
	bool yes = strstr(log, text) != NULL;

	free(log);
	return yes;
}

static void agent_report_waits(void **state)
{
	struct fixture *f = *state;
	struct h_cluster *c = f->c;
	char cmd[256];
	uint64_t id;
	json_t *t;
	long off;

	use_tmpfs(f);
	assert_true(start_hpqd(f, false));
	h_agent_start(c, "node1", 0, 1, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));
	snprintf(cmd, sizeof(cmd), "while [ ! -e %s ]; do sleep 0.1; done", h_path(c, "go"));
	id = h_submit(c, "--", "sh", "-c", cmd, NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));

	fill(f->state, 0);
	assert_true(H_WAIT_FOR(c, degraded(c, "full"), 30000));
	off = log_size(c);
	h_write_file(h_path(c, "go"), "");
	/* The task ends; its agent's report is refused, and the task stays as
	 * it was: nothing unstored is shown as done. */
	if (!H_WAIT_FOR(c, logged(c, off, "refused: state store full: "), 30000))
		fail_msg("the agent's report of the exit was not refused");
	t = h_task(c, id);
	assert_non_null(t);
	assert_string_equal(h_str(t, "state"), "RUNNING");
	json_decref(t);

	/* The space returns: the agent, which kept its report, sends it again. */
	unfill(f->state);
	assert_true(H_WAIT_FOR(c, writable(c), 30000));
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	t = h_task(c, id);
	assert_int_equal(h_int(t, "exit_code"), 0);
	json_decref(t);
	h_pass(c);
}

/* hpqd must refuse to start, and say why in words that contain want. */
static void refused_at_start(struct fixture *f, bool no_dac, const char *want)
{
	long off = log_size(f->c);
	char *log;
	int st;

	if (start_hpqd(f, no_dac))
		fail_msg("hpqd started (it should have refused: '%s')", want);
	st = f->c->hpqd_status;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 126)
		fail_msg("cannot run hpqd without CAP_DAC_OVERRIDE");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	log = log_since(f->c, off);
	if (!strstr(log, want))
		fail_msg("hpqd's refusal does not say '%s':\n%s", want, log);
	free(log);
}

static void readonly_database_refused(void **state)
{
	struct fixture *f = *state;
	struct h_cluster *c = f->c;
	char db[160];
	uint64_t id;

	assert_int_equal(mkdir(f->state, 0700), 0);
	assert_true(start_hpqd(f, false));
	id = h_submit(c, "--", "true", NULL);
	stop_hpqd(f);

	snprintf(db, sizeof(db), "%s/hpq.db", f->state);
	assert_int_equal(chmod(db, 0400), 0);
	refused_at_start(f, true, "is read-only");
	assert_int_equal(chmod(db, 0600), 0);

	assert_int_equal(chmod(f->state, 0500), 0);
	refused_at_start(f, true, "is not writable by hpqd");
	assert_int_equal(chmod(f->state, 0700), 0);

	/* Nothing was harmed. */
	assert_true(start_hpqd(f, true));
	assert_true(has_task(c, id));
	assert_true(writable(c));
	h_pass(c);
}

static void readonly_mount_refused(void **state)
{
	struct fixture *f = *state;
	struct h_cluster *c = f->c;
	uint64_t id;

	use_tmpfs(f);
	assert_true(start_hpqd(f, false));
	id = h_submit(c, "--", "true", NULL);
	stop_hpqd(f);

	assert_int_equal(mount(NULL, f->mnt, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
			       NULL), 0);
	refused_at_start(f, false, "is on a read-only file system");
	assert_int_equal(mount(NULL, f->mnt, NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, NULL), 0);

	assert_true(start_hpqd(f, false));
	assert_true(has_task(c, id));
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(full_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(large_submit_on_a_nearly_full_disk, setup,
						teardown),
		cmocka_unit_test_setup_teardown(large_start_on_a_nearly_full_disk, setup,
						teardown),
		cmocka_unit_test_setup_teardown(start_on_full_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(agent_report_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(readonly_database_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(readonly_mount_refused, setup, teardown),
	};
	char probe[] = "/tmp/t_diskfull-XXXXXX";
	int r = 0;

	/* A mount namespace of our own: whatever the test mounts goes with
	 * its last process, however it ends. Mounting needs root
	 * (CAP_SYS_ADMIN): without it, skip. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		r = -errno;
	if (r == 0 && !mkdtemp(probe)) {
		perror("t_diskfull: mkdtemp");
		return 1;
	}
	if (r == 0) {
		r = mount_small(probe);
		if (r == 0)
			umount2(probe, MNT_DETACH);
		rmdir(probe);
	}
	if (r < 0) {
		fprintf(stderr, "t_diskfull: skipped: cannot mount a tmpfs in a mount namespace "
			"of its own (%s); the test needs root with CAP_SYS_ADMIN\n", strerror(-r));
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
