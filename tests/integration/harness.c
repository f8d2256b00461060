/*
 * harness.c: start and stop real hpqd/hpq-agent processes on a temp dir,
 * run the real hpq CLI and read its JSON. See harness.h for the model.
 *
 * Process bookkeeping is the delicate part. The test process is a child
 * subreaper, so every process that loses its parent below us (task process
 * groups of a killed agent) is reaped here by h_reap(); statuses of the
 * processes we track (hpqd, agents, helpers forked by a test) are recorded
 * as they are reaped so nothing is lost to a waitpid(-1). Cleanup does not
 * rely on pids at all: it kills whatever carries our marker in its
 * environment or sits in our dir, which catches tasks started by agents
 * in their own sessions.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hpq.h"
#include "msg.h"

#define H_MARKER "HPQ_ITEST_DIR"
#define H_CLI_TIMEOUT_MS 60000
#define H_START_TIMEOUT_MS 30000

/* ---------------------------------------------------------------- basics */

/* A file of hpqd's state directory (<dir>, or <dir>/<state>). */
static const char *state_path(struct h_cluster *c, const char *file)
{
	return *c->state ? h_path(c, "%s/%s", c->state, file) : h_path(c, "%s", file);
}

int64_t h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

const char *h_bin(const char *which)
{
	static const struct {
		const char *which, *env, *path;
	} bins[] = {
		{"hpqd", "HPQ_TEST_HPQD", HPQ_TEST_HPQD_PATH},
		{"agent", "HPQ_TEST_AGENT", HPQ_TEST_AGENT_PATH},
		{"hpq", "HPQ_TEST_HPQ", HPQ_TEST_HPQ_PATH},
		{"trainer", "HPQ_TEST_TRAINER", HPQ_TEST_TRAINER_PATH},
	};

	for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++) {
		if (strcmp(bins[i].which, which) != 0)
			continue;
		const char *e = getenv(bins[i].env);
		return e && *e ? e : bins[i].path;
	}
	fail_msg("harness: no binary called '%s'", which);
	return NULL;
}

const char *h_path(struct h_cluster *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n, m;

	n = snprintf(buf, sizeof(buf), "%s/", c->dir);
	va_start(ap, fmt);
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)m >= sizeof(buf) - (size_t)n)
		fail_msg("harness: a path under %s is longer than %zu bytes", c->dir, sizeof(buf));
	/* Once made, a path stays: a test may hold it across any number of
	 * calls (a polling wait makes many). */
	for (size_t i = 0; i < c->npaths; i++)
		if (strcmp(c->paths[i], buf) == 0)
			return c->paths[i];
	if (c->npaths == c->cappaths) {
		c->cappaths = c->cappaths ? 2 * c->cappaths : 64;
		c->paths = realloc(c->paths, c->cappaths * sizeof(*c->paths));
		assert_non_null(c->paths);
	}
	c->paths[c->npaths] = strdup(buf);
	assert_non_null(c->paths[c->npaths]);
	return c->paths[c->npaths++];
}

char *h_task_log(struct h_cluster *c, const char *node, uint64_t id)
{
	char *cluster = h_read_file(state_path(c, "cluster-id")), *all = NULL;
	size_t len = 0;

	if (!cluster)
		return NULL;
	cluster[strcspn(cluster, "\n")] = '\0';
	for (unsigned a = 1; a <= 64; a++) {
		char *part = h_read_file(h_path(c, "%s/logs/%s/%" PRIu64 ".%u.log", node, cluster,
						id, a));
		size_t n;

		if (!part)
			continue;
		n = strlen(part);
		all = realloc(all, len + n + 1);
		if (!all)
			fail_msg("harness: out of memory");
		memcpy(all + len, part, n + 1);
		len += n;
		free(part);
	}
	free(cluster);
	return all;
}

char *h_read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

void h_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (!f)
		fail_msg("harness: cannot write '%s': %s", path, strerror(errno));
	fputs(text, f);
	if (fclose(f) != 0)
		fail_msg("harness: cannot write '%s': %s", path, strerror(errno));
}

void h_copy_file(const char *src, const char *dst, mode_t mode)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;

	if (in < 0)
		fail_msg("harness: cannot read '%s': %s", src, strerror(errno));
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (out < 0)
		fail_msg("harness: cannot create '%s': %s", dst, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(out, buf, (size_t)n) != n)
			fail_msg("harness: cannot copy '%s' to '%s': %s", src, dst,
				 strerror(errno));
	}
	close(in);
	/* Explicitly: the umask must not take the others' bits away. */
	if (fchmod(out, mode) < 0 || close(out) < 0)
		fail_msg("harness: cannot write '%s': %s", dst, strerror(errno));
}

int h_count_lines(const char *path, const char *line)
{
	char *text = h_read_file(path), *p, *save = NULL;
	int n = 0;

	if (!text)
		return 0;
	for (p = strtok_r(text, "\n", &save); p; p = strtok_r(NULL, "\n", &save))
		if (strcmp(p, line) == 0)
			n++;
	free(text);
	return n;
}

int h_count_prefix(const char *path, const char *prefix)
{
	char *text = h_read_file(path), *p, *save = NULL;
	size_t pl = strlen(prefix);
	int n = 0;

	if (!text)
		return 0;
	for (p = strtok_r(text, "\n", &save); p; p = strtok_r(NULL, "\n", &save))
		n += strncmp(p, prefix, pl) == 0;
	free(text);
	return n;
}

bool h_file_has(const char *path, const char *text)
{
	char *all = h_read_file(path);
	bool found = all && strstr(all, text);

	free(all);
	return found;
}

/* ---------------------------------------------------------------- reaping */

/* Statuses of children reaped by h_reap that nobody claimed yet. */
static struct {
	pid_t pid;
	int status;
} reaped[256];
static unsigned nreaped;

static void note_status(struct h_cluster *c, pid_t pid, int status)
{
	if (c && pid == c->hpqd) {
		c->hpqd = 0;
		c->hpqd_status = status;
		return;
	}
	for (int i = 0; c && i < c->nagents; i++) {
		if (c->agents[i].pid == pid) {
			c->agents[i].pid = 0;
			c->agents[i].status = status;
			return;
		}
	}
	reaped[nreaped % 256].pid = pid;
	reaped[nreaped % 256].status = status;
	nreaped++;
}

void h_reap(struct h_cluster *c)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		note_status(c, pid, status);
}

int h_wait_child(struct h_cluster *c, pid_t pid, int timeout_ms)
{
	int64_t end = h_now_ms() + timeout_ms;
	int status;

	for (;;) {
		for (unsigned i = 0; i < 256 && i < nreaped; i++) {
			if (reaped[i].pid == pid) {
				reaped[i].pid = 0;
				return reaped[i].status;
			}
		}
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno == ECHILD)
			return -1;
		h_reap(c);
		if (h_now_ms() >= end)
			return -1;
		h_sleep_ms(10);
	}
}

static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

/* ---------------------------------------------------------------- cleanup */

static bool env_has(pid_t pid, const char *entry)
{
	char path[64], *buf;
	bool found = false;
	size_t len = 0, cap = 1 << 16;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return false;
	}
	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	for (size_t off = 0; off < len; off += strlen(buf + off) + 1) {
		if (strcmp(buf + off, entry) == 0) {
			found = true;
			break;
		}
	}
	free(buf);
	return found;
}

static bool cwd_under(pid_t pid, const char *dir)
{
	char path[64], cwd[512];
	size_t dl = strlen(dir);
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
	n = readlink(path, cwd, sizeof(cwd) - 1);
	if (n < 0)
		return false;
	cwd[n] = '\0';
	return strncmp(cwd, dir, dl) == 0 && (cwd[dl] == '\0' || cwd[dl] == '/');
}

/* Sends sig to every process (but us) that belongs to the test in dir.
 * Returns how many it found. */
static int sweep(const char *dir, int sig)
{
	char entry[128];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(entry, sizeof(entry), "%s=%s", H_MARKER, dir);
	d = opendir("/proc");
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 1 || pid == getpid())
			continue;
		if (env_has((pid_t)pid, entry) || cwd_under((pid_t)pid, dir)) {
			kill((pid_t)pid, sig);
			n++;
		}
	}
	closedir(d);
	return n;
}

int h_task_pids(struct h_cluster *c, uint64_t id, pid_t *pids, int max)
{
	char marker[128], task[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(marker, sizeof(marker), "%s=%s", H_MARKER, c->dir);
	snprintf(task, sizeof(task), "HPQ_TASK_ID=%" PRIu64, id);
	d = opendir("/proc");
	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 1)
			continue;
		if (env_has((pid_t)pid, task) && env_has((pid_t)pid, marker))
			pids[n++] = (pid_t)pid;
	}
	closedir(d);
	return n;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void rmtree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool keep_tmp(void)
{
	const char *k = getenv("HPQ_KEEP_TMP");

	return k && *k && strcmp(k, "0") != 0;
}

/* The guardian: waits for the test process to close the pipe (or die),
 * then kills what is left and removes the dir. */
static void guardian(const char *dir, int fd)
{
	char b;

	setsid();
	while (read(fd, &b, 1) < 0 && errno == EINTR)
		;
	for (int round = 0; round < 50 && sweep(dir, SIGKILL) > 0; round++)
		h_sleep_ms(20);
	if (!keep_tmp())
		rmtree(dir);
	_exit(0);
}

/* ---------------------------------------------------------------- cluster */

struct h_cluster *h_cluster_new(void)
{
	struct h_cluster *c = calloc(1, sizeof(*c));
	int p[2];

	assert_non_null(c);
	signal(SIGPIPE, SIG_IGN);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		fail_msg("harness: cannot become a child subreaper: %s", strerror(errno));
	strcpy(c->dir, "/tmp/hpqt-XXXXXX");
	if (!mkdtemp(c->dir))
		fail_msg("harness: cannot create a temp dir: %s", strerror(errno));
	snprintf(c->sock, sizeof(c->sock), "%s/hpqd.sock", c->dir);
	snprintf(c->log, sizeof(c->log), "%s/hpqd.log", c->dir);

	if (pipe2(p, O_CLOEXEC) < 0)
		fail_msg("harness: pipe: %s", strerror(errno));
	c->guardian = fork();
	if (c->guardian < 0)
		fail_msg("harness: fork: %s", strerror(errno));
	if (c->guardian == 0) {
		close(p[1]);
		guardian(c->dir, p[0]);
	}
	close(p[0]);
	c->guardian_fd = p[1];
	return c;
}

void h_pass(struct h_cluster *c)
{
	c->passed = true;
}

static void tail_file(const char *title, const char *path, int lines)
{
	char *text = h_read_file(path);
	const char *p;
	int n = 0;

	if (!text) {
		fprintf(stderr, "---- %s: (no file %s)\n", title, path);
		return;
	}
	p = text + strlen(text);
	while (p > text && n <= lines) {
		p--;
		if (*p == '\n' && p[1] != '\0')
			n++;
	}
	if (*p == '\n')
		p++;
	fprintf(stderr, "---- %s (%s), last %d lines:\n%s", title, path, lines, p);
	if (*p && p[strlen(p) - 1] != '\n')
		fputc('\n', stderr);
	free(text);
}

void h_dump_logs(struct h_cluster *c)
{
	tail_file("hpqd", c->log, 60);
	for (int i = 0; i < c->nagents; i++)
		tail_file(c->agents[i].name, c->agents[i].log, 30);
}

/* Waits until pid (hpqd or an agent, tracked in c) is reaped. */
static bool wait_gone(struct h_cluster *c, pid_t *slot, int timeout_ms)
{
	return H_WAIT_FOR(c, *slot == 0, timeout_ms);
}

int h_cluster_free(struct h_cluster *c)
{
	int rc = 0;

	if (!c)
		return 0;
	if (c->hpqd) {
		kill(c->hpqd, SIGTERM);
		if (!wait_gone(c, &c->hpqd, 20000)) {
			fprintf(stderr, "harness: hpqd did not stop within 20 s of SIGTERM\n");
			kill(c->hpqd, SIGKILL);
			wait_gone(c, &c->hpqd, 5000);
			rc = -1;
		} else if (status_code(c->hpqd_status) != 0) {
			fprintf(stderr, "harness: hpqd exited with %d on SIGTERM\n",
				status_code(c->hpqd_status));
			rc = -1;
		}
	}
	for (int i = 0; i < c->nagents; i++) {
		struct h_agent *a = &c->agents[i];

		if (!a->pid)
			continue;
		kill(a->pid, SIGTERM);
		if (!wait_gone(c, &a->pid, 15000)) {
			fprintf(stderr, "harness: agent %s did not stop within 15 s of SIGTERM\n",
				a->name);
			kill(a->pid, SIGKILL);
			wait_gone(c, &a->pid, 5000);
			rc = -1;
		} else if (status_code(a->status) != 0) {
			fprintf(stderr, "harness: agent %s exited with %d on SIGTERM\n", a->name,
				status_code(a->status));
			rc = -1;
		}
	}
	for (int round = 0; round < 100 && sweep(c->dir, SIGKILL) > 0; round++) {
		h_sleep_ms(20);
		h_reap(c);
	}
	h_reap(c);
	if (!c->passed || rc < 0)
		h_dump_logs(c);
	if (keep_tmp())
		fprintf(stderr, "harness: kept %s\n", c->dir);
	else
		rmtree(c->dir);
	close(c->guardian_fd);
	h_wait_child(c, c->guardian, 10000);
	for (size_t i = 0; i < c->npaths; i++)
		free(c->paths[i]);
	free(c->paths);
	free(c);
	return rc;
}

int h_setup(void **state)
{
	*state = h_cluster_new();
	return 0;
}

int h_teardown(void **state)
{
	int rc = h_cluster_free(*state);

	*state = NULL;
	return rc;
}

/* ---------------------------------------------------------------- processes */

/* Forks and execs argv with our marker set, cwd dir, stdout and stderr
 * appended to logpath (or /dev/null). */
static pid_t spawn(struct h_cluster *c, const char *const *argv, const char *logpath)
{
	pid_t pid = fork();

	if (pid < 0)
		fail_msg("harness: fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(logpath ? logpath : "/dev/null",
			      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		setenv(H_MARKER, c->dir, 1);
		setenv("HPQ_SOCKET", c->sock, 1);
		unsetenv("HPQ_SERVER");
		if (chdir(c->dir) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "harness: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

static const char *run_config(struct h_cluster *c);

void h_daemon_config(struct h_cluster *c, const char *text)
{
	snprintf(c->config, sizeof(c->config), "%s/hpqd.conf", c->dir);
	h_write_file(c->config, text);
	/* A running hpqd reads the run config on SIGHUP: keep it current. */
	if (c->hpqd)
		run_config(c);
}

static bool socket_ready(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Whether 127.0.0.1:port can be bound now, with SO_REUSEADDR as libuv
 * (hpqd) binds it: only a live socket on it says no. */
static bool port_bindable(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	bool ok;

	if (fd < 0)
		return false;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int read_port(struct h_cluster *c)
{
	char *text = h_read_file(state_path(c, "hpqd.port"));
	long port = 0;

	if (text) {
		char *end;
		port = strtol(text, &end, 10);
		if (end == text || (*end && *end != '\n') || port <= 0 || port > 65535)
			port = 0;
		free(text);
	}
	return (int)port;
}

void h_root_tasks(struct h_cluster *c, bool daemon, bool agents)
{
	c->no_root_daemon = !daemon;
	c->no_root_agents = !agents;
}

/* <dir>/hpqd-run.conf: the harness's [auth] allow_root_tasks, then the
 * test's config, whose keys win. */
static const char *run_config(struct h_cluster *c)
{
	const char *path = h_path(c, "hpqd-run.conf");
	char *text = c->config[0] ? h_read_file(c->config) : NULL, *all;

	/* Fencing off unless a test turns it on: the tests' quick heartbeats
	 * and node losses (a few seconds) leave no room for the default lease,
	 * and hpqd refuses timings that break its rule (t_supervisor, t_chaos
	 * test the fence). */
	if (asprintf(&all, "[auth]\nallow_root_tasks = %s\n[agents]\nfence_after = off\n%s",
		     c->no_root_daemon ? "no" : "yes", text ? text : "") < 0)
		fail_msg("harness: out of memory");
	h_write_file(path, all);
	free(all);
	free(text);
	return path;
}

void h_daemon_start(struct h_cluster *c)
{
	char listen[64], config[160];
	const char *argv[16];
	int n = 0, attempt;

	assert_int_equal(c->hpqd, 0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", c->port);
	argv[n++] = h_bin("hpqd");
	argv[n++] = "--foreground";
	argv[n++] = "--state-dir";
	argv[n++] = *c->state ? h_path(c, "%s", c->state) : c->dir;
	argv[n++] = "--socket";
	argv[n++] = c->sock;
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	snprintf(config, sizeof(config), "%s", run_config(c));
	argv[n++] = "--config";
	argv[n++] = config;
	if (c->insecure)
		argv[n++] = "--insecure";
	argv[n] = NULL;

	/* A fixed port may still be held for a moment by the previous
	 * instance's sockets; try a few times before calling it a failure. */
	for (attempt = 0; attempt < 5; attempt++) {
		unlink(state_path(c, "hpqd.port"));
		c->hpqd = spawn(c, argv, c->log);
		if (H_WAIT_FOR(c, c->hpqd == 0 || (read_port(c) > 0 && socket_ready(c->sock)),
			       H_START_TIMEOUT_MS) && c->hpqd != 0)
			break;
		/* Teardown prints the logs. */
		if (c->hpqd)
			fail_msg("harness: hpqd did not get ready within %d ms",
				 H_START_TIMEOUT_MS);
		fprintf(stderr, "harness: hpqd exited with %d during start (try %d)\n",
			status_code(c->hpqd_status), attempt + 1);
		if (c->port == 0)
			break; /* no fixed port to wait for: it is broken */
		/* Try again once the port can be bound (as hpqd binds it). */
		if (!H_WAIT_FOR(c, port_bindable(c->port), H_START_TIMEOUT_MS))
			fprintf(stderr, "harness: port %d still taken after %d ms\n", c->port,
				H_START_TIMEOUT_MS);
	}
	if (c->hpqd == 0)
		fail_msg("harness: hpqd does not start");
	if (c->port == 0)
		c->port = read_port(c);
	else
		assert_int_equal(read_port(c), c->port);
	/* The cluster CA as a client host keeps it: a public copy (hpqd's own
	 * is 0600 in its state directory), for the CLI over TCP. */
	h_copy_file(state_path(c, "tls/ca.crt"), h_path(c, "ca.crt"), 0644);
}

int h_daemon_stop(struct h_cluster *c, int sig)
{
	assert_int_not_equal(c->hpqd, 0);
	kill(c->hpqd, sig);
	if (!wait_gone(c, &c->hpqd, 20000))
		fail_msg("harness: hpqd did not exit within 20 s of signal %d", sig);
	if (sig == SIGTERM && status_code(c->hpqd_status) != 0)
		fail_msg("harness: hpqd exited with %d on SIGTERM", status_code(c->hpqd_status));
	return c->hpqd_status;
}

/* Agents connect over hpqd's Unix socket, as root, as an agent on the
 * daemon's own host does; those of h_agent_start_tcp over TCP (TLS). */
static void agent_spawn(struct h_cluster *c, struct h_agent *a)
{
	char gpus[16], cpus[16], server[64];
	const char *argv[24 + H_AGENT_EXTRA] = {
		h_bin("agent"), "--foreground", "--server", c->sock, "--name", a->name,
		"--work-dir", a->work, "--gpus", gpus, "--cpus", cpus, "--mem", a->mem,
		"--heartbeat", "1s", "--log-level", "debug",
	};
	int n = 18;

	if (!c->no_root_agents)
		argv[n++] = "--allow-root-tasks";
	if (a->tcp) {
		assert_int_not_equal(c->port, 0);
		snprintf(server, sizeof(server), "127.0.0.1:%d", c->port);
		argv[3] = server;
	}
	for (int i = 0; i < H_AGENT_EXTRA && a->extra[i][0]; i++)
		argv[n++] = a->extra[i];
	argv[n] = NULL;
	snprintf(gpus, sizeof(gpus), "%u", a->gpus);
	snprintf(cpus, sizeof(cpus), "%u", a->cpus);
	a->pid = spawn(c, argv, a->log);
}

int h_agent_start_tcp(struct h_cluster *c, const char *name, unsigned gpus, unsigned cpus,
		      const char *mem, const char *const *extra)
{
	assert_true(c->nagents < H_MAX_AGENTS);
	c->agents[c->nagents].tcp = true;
	return h_agent_start_opts(c, name, gpus, cpus, mem, extra);
}

int h_agent_start_opts(struct h_cluster *c, const char *name, unsigned gpus, unsigned cpus,
		       const char *mem, const char *const *extra)
{
	struct h_agent *a;

	assert_true(c->nagents < H_MAX_AGENTS);
	a = &c->agents[c->nagents];
	for (int i = 0; extra && extra[i]; i++) {
		assert_true(i < H_AGENT_EXTRA && strlen(extra[i]) < sizeof(a->extra[i]));
		snprintf(a->extra[i], sizeof(a->extra[i]), "%s", extra[i]);
	}
	return h_agent_start(c, name, gpus, cpus, mem);
}

int h_agent_start(struct h_cluster *c, const char *name, unsigned gpus, unsigned cpus,
		  const char *mem)
{
	struct h_agent *a;

	assert_true(c->nagents < H_MAX_AGENTS);
	a = &c->agents[c->nagents];
	snprintf(a->name, sizeof(a->name), "%s", name);
	/* h_path's buffer, not c->dir: gcc cannot see that a->work and
	 * c->dir do not overlap. */
	snprintf(a->work, sizeof(a->work), "%s", h_path(c, "%s", name));
	snprintf(a->log, sizeof(a->log), "%s", h_path(c, "%s.log", name));
	snprintf(a->mem, sizeof(a->mem), "%s", mem);
	a->gpus = gpus;
	a->cpus = cpus;
	agent_spawn(c, a);
	return c->nagents++;
}

void h_agent_restart(struct h_cluster *c, int i)
{
	assert_int_equal(c->agents[i].pid, 0);
	agent_spawn(c, &c->agents[i]);
}

void h_agent_stop(struct h_cluster *c, int i, int sig)
{
	struct h_agent *a = &c->agents[i];

	assert_int_not_equal(a->pid, 0);
	kill(a->pid, sig);
	if (!wait_gone(c, &a->pid, 15000))
		fail_msg("harness: agent %s did not exit within 15 s of signal %d", a->name, sig);
}

int h_agent_index(struct h_cluster *c, const char *name)
{
	for (int i = 0; i < c->nagents; i++)
		if (strcmp(c->agents[i].name, name) == 0)
			return i;
	return -1;
}

/* ---------------------------------------------------------------- the CLI */

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_read(struct buf *b, int fd, bool *eof)
{
	ssize_t n;

	if (b->cap - b->len < 4096) {
		b->cap = b->cap ? b->cap * 2 : 8192;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	n = read(fd, b->p + b->len, b->cap - b->len - 1);
	if (n > 0)
		b->len += (size_t)n;
	else if (n == 0 || errno != EINTR)
		*eof = true;
	b->p[b->len] = '\0';
}

static bool verbose(void)
{
	const char *v = getenv("HPQ_ITEST_VERBOSE");

	return v && *v && strcmp(v, "0") != 0;
}

const char *h_cli_tls_module(void)
{
	static char path[PATH_MAX];
	const char *hpq = h_bin("hpq"), *slash = strrchr(hpq, '/');
	int n = slash ? (int)(slash - hpq) : 1;

	snprintf(path, sizeof(path), "%.*s/hpq-tls.so", n, slash ? hpq : ".");
	return path;
}

void h_cli_as(struct h_cluster *c, uid_t uid, gid_t gid)
{
	if (uid && !c->cli_copy[0]) {
		const char *bin = h_path(c, "bin");

		if (chmod(c->dir, 0711) < 0)
			fail_msg("harness: chmod '%s': %s", c->dir, strerror(errno));
		if (mkdir(bin, 0755) < 0 || chmod(bin, 0755) < 0)
			fail_msg("harness: cannot create '%s': %s", bin, strerror(errno));
		snprintf(c->cli_copy, sizeof(c->cli_copy), "%s/hpq", bin);
		h_copy_file(h_bin("hpq"), c->cli_copy, 0755);
		/* and the TLS module that hpq loads from beside itself */
		h_copy_file(h_cli_tls_module(), h_path(c, "bin/hpq-tls.so"), 0644);
	}
	c->cli_uid = uid;
	c->cli_gid = gid;
}

int h_hpqv(struct h_cluster *c, struct h_out *out, const char *const *args)
{
	const char *argv[64];
	struct buf ob = {0}, eb = {0};
	int po[2], pe[2], status, n = 0;
	bool oeof = false, eeof = false;
	int64_t end = h_now_ms() + H_CLI_TIMEOUT_MS;
	pid_t pid;

	if (c->cli_uid && !c->cli_copy[0])
		h_cli_as(c, c->cli_uid, c->cli_gid); /* set directly: make the copy */
	argv[n++] = c->cli_uid ? c->cli_copy : h_bin("hpq");
	for (; *args; args++) {
		assert_true(n < 63);
		argv[n++] = *args;
	}
	argv[n] = NULL;

	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		fail_msg("harness: pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fail_msg("harness: fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
			_exit(127);
		if (c->cli_uid && (setgroups(0, NULL) < 0 || setgid(c->cli_gid) < 0 ||
				   setuid(c->cli_uid) < 0)) {
			fprintf(stderr, "harness: cannot become uid %u: %s\n",
				(unsigned)c->cli_uid, strerror(errno));
			_exit(127);
		}
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		setenv(H_MARKER, c->dir, 1);
		setenv("HPQ_SOCKET", c->sock, 1);
		setenv("HPQ_CLI", argv[0], 1);
		/* Over TCP (--server) the CLI trusts this cluster's CA (h_daemon_start). */
		setenv("HPQ_CA_FILE", h_path(c, "ca.crt"), 1);
		unsetenv("HPQ_SERVER");
		if (chdir(c->dir) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "harness: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while (!oeof || !eeof) {
		struct pollfd pfd[2] = {{po[0], oeof ? 0 : POLLIN, 0}, {pe[0], eeof ? 0 : POLLIN, 0}};
		int64_t left = end - h_now_ms();

		if (left <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(pfd, 2, (int)left) < 0 && errno != EINTR)
			break;
		if (!oeof && pfd[0].revents)
			buf_read(&ob, po[0], &oeof);
		if (!eeof && pfd[1].revents)
			buf_read(&eb, pe[0], &eeof);
	}
	close(po[0]);
	close(pe[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!ob.p)
		ob.p = strdup("");
	if (!eb.p)
		eb.p = strdup("");

	int code = status_code(status);
	if (verbose()) {
		fprintf(stderr, "$ hpq");
		for (int i = 1; i < n; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, "  => %d\n%s%s", code, ob.p, eb.p);
	}
	if (out) {
		out->code = code;
		out->out = ob.p;
		out->err = eb.p;
	} else {
		free(ob.p);
		free(eb.p);
	}
	return code;
}

void h_out_free(struct h_out *o)
{
	free(o->out);
	free(o->err);
	o->out = o->err = NULL;
}

#define COLLECT_ARGS(argv, first, extra)				\
	do {								\
		va_list ap_;						\
		int n_ = 0;						\
		va_start(ap_, first);					\
		for (const char *a_ = (first); a_; a_ = va_arg(ap_, const char *)) { \
			assert_true(n_ < 60);				\
			(argv)[n_++] = a_;				\
		}							\
		va_end(ap_);						\
		if (extra)						\
			(argv)[n_++] = (extra);				\
		(argv)[n_] = NULL;					\
	} while (0)

int h_hpq(struct h_cluster *c, struct h_out *out, const char *arg, ...)
{
	const char *argv[64];

	COLLECT_ARGS(argv, arg, (const char *)NULL);
	return h_hpqv(c, out, argv);
}

static json_t *run_json(struct h_cluster *c, const char *const *argv)
{
	struct h_out o;
	json_error_t jerr;
	json_t *j;

	h_hpqv(c, &o, argv);
	if (o.code != 0) {
		fprintf(stderr, "harness: hpq %s exited %d: %s", argv[0], o.code, o.err);
		h_out_free(&o);
		fail_msg("harness: hpq %s --json failed", argv[0]);
	}
	j = json_loads(o.out, JSON_DECODE_ANY, &jerr);
	if (!j) {
		fprintf(stderr, "harness: hpq %s --json printed invalid JSON (%s, line %d):\n%s",
			argv[0], jerr.text, jerr.line, o.out);
		h_out_free(&o);
		fail_msg("harness: invalid JSON");
	}
	h_out_free(&o);
	return j;
}

json_t *h_hpq_json(struct h_cluster *c, const char *arg, ...)
{
	const char *argv[64];

	COLLECT_ARGS(argv, arg, "--json");
	return run_json(c, argv);
}

uint64_t h_submit(struct h_cluster *c, const char *arg, ...)
{
	const char *argv[64];
	struct h_out o;
	uint64_t id;

	argv[0] = "submit";
	{
		va_list ap;
		int n = 1;
		va_start(ap, arg);
		for (const char *a = arg; a; a = va_arg(ap, const char *)) {
			assert_true(n < 62);
			argv[n++] = a;
		}
		va_end(ap);
		argv[n] = NULL;
	}
	h_hpqv(c, &o, argv);
	if (o.code != 0) {
		fprintf(stderr, "harness: hpq submit exited %d: %s", o.code, o.err);
		h_out_free(&o);
		fail_msg("harness: submit failed");
	}
	id = h_parse_id(o.out);
	if (id == 0) {
		fprintf(stderr, "harness: hpq submit printed no task id: '%s'\n", o.out);
		h_out_free(&o);
		fail_msg("harness: no task id");
	}
	h_out_free(&o);
	return id;
}

uint64_t h_parse_id(const char *text)
{
	while (*text && (*text < '0' || *text > '9'))
		text++;
	return *text ? strtoull(text, NULL, 10) : 0;
}

/* ---------------------------------------------------------------- JSON */

/* Commands print either a bare array/object or wrap it in an object with
 * one key ("tasks", "task", "nodes"); accept both. */
static json_t *unwrap(json_t *j, const char *key)
{
	json_t *inner = json_is_object(j) ? json_object_get(j, key) : NULL;

	if (inner) {
		json_incref(inner);
		json_decref(j);
		return inner;
	}
	return j;
}

json_t *h_tasks(struct h_cluster *c)
{
	const char *argv[] = {"list", "--all", "--json", NULL};
	json_t *j = unwrap(run_json(c, argv), "tasks");

	if (!json_is_array(j))
		fail_msg("harness: hpq list --json is not an array");
	return j;
}

/* Does an event of events (an array) have kind (NULL: any) and text in its message? */
static bool events_have(json_t *events, const char *kind, const char *text)
{
	json_t *e;
	size_t i;

	json_array_foreach(events, i, e)
		if ((!kind || !strcmp(h_str(e, "kind"), kind)) && strstr(h_str(e, "message"), text))
			return true;
	return false;
}

bool h_has_event(struct h_cluster *c, const char *kind, const char *text)
{
	json_t *events = h_hpq_json(c, "events", "--limit", "100000", NULL);
	bool found = events_have(events, kind, text);

	json_decref(events);
	return found;
}

bool h_task_has_event(struct h_cluster *c, uint64_t id, const char *kind, const char *text)
{
	json_t *t = h_task(c, id);
	bool found = t && events_have(json_object_get(t, "events"), kind, text);

	json_decref(t);
	return found;
}

bool h_node_has_event(struct h_cluster *c, const char *node, const char *kind, const char *text)
{
	json_t *events = h_hpq_json(c, "events", "--node", node, "--limit", "100000", NULL);
	bool found = events_have(events, kind, text);

	json_decref(events);
	return found;
}

json_t *h_task(struct h_cluster *c, uint64_t id)
{
	char ids[32];
	const char *argv[] = {"show", ids, "--json", NULL};
	struct h_out o;
	json_t *j;

	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	h_hpqv(c, &o, argv);
	if (o.code != 0) {
		h_out_free(&o);
		return NULL;
	}
	j = json_loads(o.out, JSON_DECODE_ANY, NULL);
	h_out_free(&o);
	if (!j)
		fail_msg("harness: hpq show --json printed invalid JSON");
	j = unwrap(j, "task");
	if (json_is_array(j) && json_array_size(j) == 1) {
		json_t *t = json_incref(json_array_get(j, 0));
		json_decref(j);
		j = t;
	}
	return j;
}

long long h_newest_step(struct h_cluster *c, uint64_t id)
{
	json_t *t = h_task(c, id), *cks = t ? json_object_get(t, "checkpoints") : NULL, *ck;
	long long best = -1;
	size_t i;

	json_array_foreach(cks, i, ck)
		if (h_int(ck, "step") > best)
			best = h_int(ck, "step");
	json_decref(t);
	return best;
}

const char *h_id(uint64_t id)
{
	static char buf[4][32];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%" PRIu64, id);
	return buf[k];
}

json_t *h_find_task(json_t *tasks, uint64_t id)
{
	size_t i;
	json_t *t;

	json_array_foreach(tasks, i, t)
		if ((uint64_t)json_integer_value(json_object_get(t, "id")) == id)
			return t;
	return NULL;
}

const char *h_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

long long h_int(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

bool h_is_terminal(const char *state)
{
	return strcmp(state, "COMPLETED") == 0 || strcmp(state, "FAILED") == 0 ||
	       strcmp(state, "CANCELLED") == 0 || strcmp(state, "TIMEOUT") == 0;
}

static bool task_in_state(struct h_cluster *c, uint64_t id, const char *state)
{
	json_t *t = h_task(c, id);
	bool ok;

	if (!t)
		return false;
	ok = state ? strcmp(h_str(t, "state"), state) == 0 : h_is_terminal(h_str(t, "state"));
	json_decref(t);
	return ok;
}

bool h_wait_state(struct h_cluster *c, uint64_t id, const char *state, int timeout_ms)
{
	if (H_WAIT_FOR(c, task_in_state(c, id, state), timeout_ms))
		return true;
	json_t *t = h_task(c, id);
	char *dump = t ? json_dumps(t, JSON_COMPACT) : NULL;
	fprintf(stderr, "harness: task %" PRIu64 " not %s after %d ms: %s\n", id,
		state ? state : "terminal", timeout_ms, dump ? dump : "(show failed)");
	free(dump);
	json_decref(t);
	return false;
}

static int nodes_connected(struct h_cluster *c)
{
	const char *argv[] = {"node", "list", "--json", NULL};
	json_t *j = unwrap(run_json(c, argv), "nodes"), *n;
	size_t i;
	int count = 0;

	json_array_foreach(j, i, n)
		if (json_is_true(json_object_get(n, "connected")))
			count++;
	json_decref(j);
	return count;
}

bool h_wait_nodes(struct h_cluster *c, int n, int timeout_ms)
{
	return H_WAIT_FOR(c, nodes_connected(c) >= n, timeout_ms);
}

/* ---------------------------------------------------------------- trainer */

long long h_resumed_steps(long long at)
{
	return (at / 5 + 4) * 5;
}

const char *h_trainer_cmd(char *buf, size_t len, unsigned every)
{
	int n = snprintf(buf, len,
			 "n=1000000; if [ \"$HPQ_ATTEMPT\" != 1 ]; then n=${HPQ_RESUME_FROM##*-}; "
			 "case $n in ''|*[!0-9]*) echo \"harness: no step in "
			 "HPQ_RESUME_FROM='$HPQ_RESUME_FROM'\" >&2; exit 99;; esac; "
			 "n=$(( (n / 5 + 4) * 5 )); fi; "
			 "exec '%s' --steps $n --step-ms 100 --every %u",
			 h_bin("trainer"), every);

	if (n < 0 || (size_t)n >= len)
		fail_msg("harness: the trainer command does not fit %zu bytes", len);
	return buf;
}

/* ---------------------------------------------------------------- progress */

long long h_status_counter(struct h_cluster *c, const char *key)
{
	const char *argv[] = {"status", "--json", NULL};
	json_t *j = run_json(c, argv), *v = json_object_get(j, key);
	long long n;

	if (!json_is_integer(v))
		fail_msg("harness: hpq status --json has no counter \"%s\"", key);
	n = json_integer_value(v);
	json_decref(j);
	return n;
}

long long h_node_heartbeats(struct h_cluster *c, const char *node)
{
	const char *argv[] = {"node", "list", "--json", NULL};
	json_t *j = unwrap(run_json(c, argv), "nodes"), *n;
	long long count = -1;
	size_t i;

	json_array_foreach(j, i, n) {
		if (strcmp(h_str(n, "name"), node) != 0)
			continue;
		if (!json_is_integer(json_object_get(n, "heartbeats")))
			fail_msg("harness: hpq node list --json has no \"heartbeats\" for %s", node);
		count = json_integer_value(json_object_get(n, "heartbeats"));
	}
	json_decref(j);
	return count;
}

bool h_wait_counter(struct h_cluster *c, const char *key, long long target, int timeout_ms)
{
	long long now = -1;

	if (H_WAIT_FOR(c, (now = h_status_counter(c, key)) >= target, timeout_ms))
		return true;
	fprintf(stderr, "harness: hpqd's %s reached %lld, not %lld, in %d ms\n", key, now, target,
		timeout_ms);
	return false;
}

bool h_wait_node_checks(struct h_cluster *c, int n, int timeout_ms)
{
	return h_wait_counter(c, "node_checks", h_status_counter(c, "node_checks") + n,
			      timeout_ms);
}

bool h_wait_repair_checks(struct h_cluster *c, int n, int timeout_ms)
{
	return h_wait_counter(c, "repair_checks", h_status_counter(c, "repair_checks") + n,
			      timeout_ms);
}

bool h_wait_heartbeats(struct h_cluster *c, const char *node, int n, int timeout_ms)
{
	long long from = h_node_heartbeats(c, node), now = from;

	if (from < 0)
		fail_msg("harness: no node %s in hpq node list", node);
	if (H_WAIT_FOR(c, (now = h_node_heartbeats(c, node)) >= from + n, timeout_ms))
		return true;
	fprintf(stderr, "harness: %lld of %d more heartbeats from %s in %d ms\n", now - from, n,
		node, timeout_ms);
	return false;
}

/* ---------------------------------------------------------------- TLS by hand */

/* Sends what the channel has for the daemon. */
static bool tls_flush(struct h_tls *r)
{
	uint8_t buf[16384];
	size_t n;

	while ((n = hpq_tls_out_take(r->tls, buf, sizeof(buf))) > 0)
		if (send(r->fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
			return false;
	return true;
}

bool h_tls_open(struct h_tls *r, int port, const struct hpq_tls_config *cfg)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char err[256];

	memset(r, 0, sizeof(*r));
	hpq_framer_init(&r->f, HPQ_FRAME_MAX);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0 || connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "harness: cannot connect to port %d: %s\n", port, strerror(errno));
		return false;
	}
	r->ctx = hpq_tls_ctx_new(false, cfg, err, sizeof(err));
	if (!r->ctx) {
		fprintf(stderr, "harness: cannot make a TLS context: %s\n", err);
		return false;
	}
	r->tls = hpq_tls_new(r->ctx, "127.0.0.1");
	return tls_flush(r);
}

void h_append_frame(uint8_t **buf, size_t *len, const Hpq__Envelope *env)
{
	size_t n;
	uint8_t *frame = hpq_msg_encode(env, &n);

	*buf = realloc(*buf, *len + n);
	assert_non_null(*buf);
	memcpy(*buf + *len, frame, n);
	*len += n;
	free(frame);
}

Hpq__Envelope *h_next_frame(int fd, struct hpq_framer *f, int timeout_ms)
{
	int64_t end = h_now_ms() + timeout_ms;
	static uint8_t buf[65536];
	const uint8_t *p;
	size_t len;

	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int64_t left = end - h_now_ms();
		ssize_t n;

		if (hpq_framer_next(f, &p, &len) > 0)
			return hpq_msg_decode(p, len);
		if (poll(&pfd, 1, left > 0 ? (int)left : 0) <= 0 ||
		    (n = recv(fd, buf, sizeof(buf), 0)) <= 0)
			return NULL;
		hpq_framer_feed(f, buf, (size_t)n);
	}
}

bool h_tls_send(struct h_tls *r, const Hpq__Envelope *env)
{
	size_t len;
	uint8_t *buf = hpq_msg_encode(env, &len);
	bool ok = hpq_tls_write(r->tls, buf, len) == 0 && tls_flush(r);

	free(buf);
	return ok;
}

Hpq__Envelope *h_tls_next(struct h_tls *r)
{
	const uint8_t *p;
	size_t len;
	uint8_t buf[16384];

	for (;;) {
		struct pollfd pfd = { r->fd, POLLIN, 0 };
		ssize_t n, m;

		if (hpq_framer_next(&r->f, &p, &len) > 0)
			return hpq_msg_decode(p, len);
		if (poll(&pfd, 1, 30000) <= 0 || (n = recv(r->fd, buf, sizeof(buf), 0)) <= 0)
			return NULL;
		if (hpq_tls_feed(r->tls, buf, (size_t)n) < 0 || !tls_flush(r)) {
			fprintf(stderr, "harness: TLS failed: %s\n", hpq_tls_error(r->tls));
			return NULL;
		}
		while ((m = hpq_tls_read(r->tls, buf, sizeof(buf))) > 0)
			hpq_framer_feed(&r->f, buf, (size_t)m);
		/* After close_notify, what came before it is still read. */
		if (m < 0 && !hpq_framer_pending(&r->f))
			return NULL;
	}
}

void h_tls_open_node(struct h_tls *r, int port, const char *pem, const char *ca)
{
	struct hpq_tls_config cfg = { .ca_pem = ca, .cert_pem = pem, .key_pem = pem };

	if (!h_tls_open(r, port, &cfg))
		fail_msg("harness: no TLS connection to port %d with the node's certificate", port);
}

Hpq__Envelope *h_tls_call(struct h_tls *r, uint64_t id, Hpq__Envelope *env)
{
	Hpq__Envelope *reply;

	env->id = id;
	if (!h_tls_send(r, env))
		return NULL;
	while ((reply = h_tls_next(r)) && reply->id != id)
		hpq_msg_free(reply);
	return reply;
}

Hpq__Envelope *h_tls_hello(struct h_tls *r, const char *name)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Hello hello = HPQ__HELLO__INIT;

	hello.role = HPQ__ROLE__ROLE_AGENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)"harness";
	hello.name = (char *)name;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	return h_tls_call(r, 1, &env);
}

Hpq__Envelope *h_tls_beat(struct h_tls *r, uint64_t id)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Heartbeat hb = HPQ__HEARTBEAT__INIT;

	env.body_case = HPQ__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	return h_tls_call(r, id, &env);
}

bool h_node_connected(struct h_cluster *c, const char *name)
{
	json_t *nodes = h_hpq_json(c, "node", "list", NULL), *n;
	bool up = false;
	size_t i;

	json_array_foreach(nodes, i, n)
		if (!strcmp(h_str(n, "name"), name))
			up = json_is_true(json_object_get(n, "connected"));
	json_decref(nodes);
	return up;
}

void h_tls_close(struct h_tls *r)
{
	hpq_tls_free(r->tls);
	hpq_tls_ctx_free(r->ctx);
	hpq_framer_release(&r->f);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}
