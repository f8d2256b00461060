/*
 * t_sdnotify: hpqd and hpq-agent under systemd's supervision protocol, and
 * the installed files their units and example configs describe.
 *
 * The test plays systemd's side of sd_notify: it binds the datagram socket
 * $NOTIFY_SOCKET names (a path in the test's dir, or an abstract "@" name;
 * each program is tried with both), with SO_PASSCRED so that every message
 * carries its sender's pid. systemd's default for Type=notify is
 * NotifyAccess=main, so a message counts only from the process systemd
 * started: every message here must come from that pid. A collector thread
 * reads and timestamps messages as they arrive (the kernel queues only a few
 * datagrams and hpqd's sender blocks when the queue is full, as systemd's own
 * sd_notify does). With WATCHDOG_USEC at one second, WATCHDOG=1 must come
 * at least once a second (the programs ping every half interval, as
 * sd_watchdog_enabled(3) advises). The test measures that against the
 * programs' own clocks, not the wall's, so that a loaded machine cannot
 * fail it: hpqd checks its nodes every half heartbeat (500 ms here) and an
 * agent heartbeats every second, from the same loops that ping; over a
 * stretch of N node checks hpqd must ping about N times, and over N
 * heartbeats an agent about 2N times (a stalled loop fires each overdue
 * timer once, so the ratio holds). READY=1 must come once they serve,
 * STOPPING=1 on SIGTERM, and the agent brackets a SIGHUP reload with
 * RELOADING=1 and READY=1. With WATCHDOG_PID naming another process, as
 * when the variables leak to a child, no pings may come: none while hpqd
 * makes several node checks and receives several heartbeats.
 *
 * The install test runs `cmake --install` of this build into a temp prefix,
 * directly (without the files under /etc: component Unspecified) and with
 * DESTDIR (everything), and checks the tree: programs (the example trainer
 * on PATH too), the CLI's TLS module, man pages, units whose ExecStart is the installed binary,
 * the tmpfiles.d entry, and the example configs, which must name every key
 * the programs accept, with their real defaults (hpqd --check prints the
 * same settings with every example line uncommented as with no file), and
 * be accepted as a whole (the installed agent starts with all of
 * agent.conf's example lines set). In DESTDIR the configs are installed
 * under /etc/hpq, and installing again keeps one an admin edited.
 *
 * Modes that need a tool of the host, each exiting 77 (which ctest reports
 * as skipped) without it:
 * `t_sdnotify systemd-analyze` runs `systemd-analyze verify` on the
 * installed units (it checks the ExecStart binaries and the man pages they
 * name); `t_sdnotify tmpfiles` makes the user hpq in a staged root with
 * systemd-sysusers and /run/hpq there with systemd-tmpfiles, from the
 * installed files; `t_sdnotify logrotate` rotates logs with the installed
 * logrotate file, its paths moved to a temp dir, as daemons append to them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define WATCHDOG_MS 1000
#define RX_MAX 2048

/* ---------------------------------------------------------------- the notify socket */

struct rx_msg {
	int64_t t_ms;  /* when it arrived (CLOCK_MONOTONIC, as h_now_ms) */
	pid_t pid;     /* sender, from SCM_CREDENTIALS */
	char text[64]; /* one VAR=VALUE line of the datagram */
};

struct rx {
	char name[108]; /* what NOTIFY_SOCKET says: "/path" or "@name" */
	int fd;
	pthread_t thread;
	pthread_mutex_t lock;
	struct rx_msg msgs[RX_MAX];
	int n;
	bool overflow;
	volatile bool stop;
};

static void rx_add(struct rx *rx, int64_t t, pid_t pid, const char *line, size_t len)
{
	pthread_mutex_lock(&rx->lock);
	if (rx->n == RX_MAX) {
		rx->overflow = true;
	} else {
		struct rx_msg *m = &rx->msgs[rx->n++];

		m->t_ms = t;
		m->pid = pid;
		snprintf(m->text, sizeof(m->text), "%.*s", (int)len, line);
	}
	pthread_mutex_unlock(&rx->lock);
}

static void *rx_run(void *arg)
{
	struct rx *rx = arg;
	char buf[4096];
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(struct ucred))];
	} control;

	while (!rx->stop) {
		struct pollfd pfd = {.fd = rx->fd, .events = POLLIN};
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = control.space, .msg_controllen = sizeof(control.space),
		};
		struct cmsghdr *cm;
		pid_t pid = 0;
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recvmsg(rx->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			continue;
		int64_t t = h_now_ms();

		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
				struct ucred uc;

				memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
				pid = uc.pid;
			}
		}
		/* One datagram may carry several newline-separated assignments. */
		buf[n] = '\0';
		for (char *line = buf; *line;) {
			size_t len = strcspn(line, "\n");

			if (len)
				rx_add(rx, t, pid, line, len);
			line += len;
			if (*line)
				line++;
		}
	}
	return NULL;
}

/* Binds name ("/path" or "@abstract") and starts collecting. */
static void rx_open(struct rx *rx, const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(name);
	int one = 1;

	memset(rx, 0, sizeof(*rx));
	assert_true(len < sizeof(sa.sun_path) && len < sizeof(rx->name));
	memcpy(rx->name, name, len + 1);
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	rx->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(rx->fd >= 0);
	assert_int_equal(setsockopt(rx->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	if (bind(rx->fd, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/'))) < 0)
		fail_msg("cannot bind the notify socket '%s': %s", name, strerror(errno));
	pthread_mutex_init(&rx->lock, NULL);
	assert_int_equal(pthread_create(&rx->thread, NULL, rx_run, rx), 0);
}

static void rx_close(struct rx *rx)
{
	rx->stop = true;
	pthread_join(rx->thread, NULL);
	close(rx->fd);
	if (rx->name[0] == '/')
		unlink(rx->name);
	pthread_mutex_destroy(&rx->lock);
}

/* Index of the first message text from pid at index >= from, or -1. */
static int rx_find(struct rx *rx, pid_t pid, const char *text, int from, struct rx_msg *ret)
{
	int found = -1;

	pthread_mutex_lock(&rx->lock);
	for (int i = from < 0 ? 0 : from; i < rx->n; i++) {
		if (rx->msgs[i].pid == pid && strcmp(rx->msgs[i].text, text) == 0) {
			found = i;
			if (ret)
				*ret = rx->msgs[i];
			break;
		}
	}
	pthread_mutex_unlock(&rx->lock);
	return found;
}

/* Waits for text from pid at index >= from; fails the test if it does not come. */
static int rx_expect(struct h_cluster *c, struct rx *rx, pid_t pid, const char *text, int from,
		     int timeout_ms, struct rx_msg *ret)
{
	int i = -1;

	if (!H_WAIT_FOR(c, (i = rx_find(rx, pid, text, from, ret)) >= 0, timeout_ms)) {
		h_dump_logs(c);
		fail_msg("no %s from pid %d on %s within %d ms (%d messages there)", text,
			 (int)pid, rx->name, timeout_ms, rx->n);
	}
	return i;
}

/* Every message on rx came from pid (systemd's NotifyAccess=main). */
static void rx_assert_only(struct rx *rx, pid_t pid, const char *who)
{
	pthread_mutex_lock(&rx->lock);
	assert_false(rx->overflow);
	for (int i = 0; i < rx->n; i++) {
		if (rx->msgs[i].pid != pid) {
			pthread_mutex_unlock(&rx->lock);
			fail_msg("%s: '%s' came from pid %d, not from the main process %d", who,
				 rx->msgs[i].text, (int)rx->msgs[i].pid, (int)pid);
		}
	}
	pthread_mutex_unlock(&rx->lock);
}

/* The pings from pid that arrived between t_from and t_to (h_now_ms). The
 * longest gap is printed for whoever reads the log; it is not judged,
 * since on a loaded machine the wall clock says little. */
static int rx_pings(struct rx *rx, pid_t pid, int64_t t_from, int64_t t_to, const char *who)
{
	int64_t last = t_from, gap = 0;
	int n = 0;

	pthread_mutex_lock(&rx->lock);
	for (int i = 0; i < rx->n; i++) {
		const struct rx_msg *m = &rx->msgs[i];

		if (m->pid != pid || strcmp(m->text, "WATCHDOG=1") || m->t_ms < t_from ||
		    m->t_ms > t_to)
			continue;
		if (m->t_ms - last > gap)
			gap = m->t_ms - last;
		last = m->t_ms;
		n++;
	}
	pthread_mutex_unlock(&rx->lock);
	if (t_to - last > gap)
		gap = t_to - last;
	fprintf(stderr, "%s: %d WATCHDOG=1 in %lld ms, longest gap %lld ms (WATCHDOG_USEC %d ms)\n",
		who, n, (long long)(t_to - t_from), (long long)gap, WATCHDOG_MS);
	return n;
}

/* What hpqd's own clock did meanwhile: node checks, and one agent's
 * heartbeats, counted between two readings. */
struct progress {
	int64_t t0, t1;
	long long checks0, checks1, beats0, beats1;
};

static void progress_start(struct h_cluster *c, struct progress *p, const char *node)
{
	p->t0 = h_now_ms();
	p->checks0 = h_status_counter(c, "node_checks");
	p->beats0 = h_node_heartbeats(c, node);
}

/* Waits for checks more node checks and beats more heartbeats of node. */
static void progress_wait(struct h_cluster *c, struct progress *p, const char *node, int checks,
			  int beats)
{
	assert_true(h_wait_counter(c, "node_checks", p->checks0 + checks, 60000));
	assert_true(H_WAIT_FOR(c, h_node_heartbeats(c, node) >= p->beats0 + beats, 60000));
	p->checks1 = h_status_counter(c, "node_checks");
	p->beats1 = h_node_heartbeats(c, node);
	p->t1 = h_now_ms();
}

/*
 * hpqd pinged at least once per node check but two (both every 500 ms of
 * its loop, the window's edges cost one each), and an agent at least once
 * per heartbeat but two (every 500 ms against every second: twice as many
 * as that, when its loop keeps time). A program pinging only every
 * WATCHDOG_USEC, or less, falls short.
 */
static void rx_assert_watchdog(struct rx *rx, pid_t pid, const struct progress *p, bool daemon,
			       const char *who)
{
	int n = rx_pings(rx, pid, p->t0, p->t1, who);
	long long steps = daemon ? p->checks1 - p->checks0 : p->beats1 - p->beats0;

	fprintf(stderr, "%s: meanwhile %lld %s\n", who, steps, daemon ? "node checks" : "heartbeats");
	if (n < steps - 2)
		fail_msg("%s: %d WATCHDOG=1 during %lld %s: it does not ping every half "
			 "WATCHDOG_USEC", who, n, steps, daemon ? "node checks of hpqd" :
			 "heartbeats of the agent");
}

static int rx_count(struct rx *rx, const char *text)
{
	int n = 0;

	pthread_mutex_lock(&rx->lock);
	for (int i = 0; i < rx->n; i++)
		n += strcmp(rx->msgs[i].text, text) == 0;
	pthread_mutex_unlock(&rx->lock);
	return n;
}

/* What systemd puts in the environment of a service it supervises. */
static void sd_env(const char *notify_socket, const char *watchdog_pid)
{
	char usec[32];

	if (!notify_socket) {
		unsetenv("NOTIFY_SOCKET");
		unsetenv("WATCHDOG_USEC");
		unsetenv("WATCHDOG_PID");
		return;
	}
	snprintf(usec, sizeof(usec), "%d", WATCHDOG_MS * 1000);
	setenv("NOTIFY_SOCKET", notify_socket, 1);
	setenv("WATCHDOG_USEC", usec, 1);
	if (watchdog_pid)
		setenv("WATCHDOG_PID", watchdog_pid, 1);
	else
		unsetenv("WATCHDOG_PID");
}

static void abstract_name(char *buf, size_t len, const char *who)
{
	snprintf(buf, len, "@hpqt-notify-%d-%s", (int)getpid(), who);
}

/* ---------------------------------------------------------------- notify tests */

/*
 * hpqd and one agent, each on its own notify socket, one a path and the
 * other abstract: READY=1, pings, the agent's reload, STOPPING=1.
 */
static void supervise(struct h_cluster *c, bool daemon_abstract)
{
	struct rx rd, ra;
	struct progress pg;
	char name_d[108], name_a[108];
	pid_t hpqd, agent;
	int i, ai, hup;

	if (daemon_abstract) {
		abstract_name(name_d, sizeof(name_d), "hpqd");
		snprintf(name_a, sizeof(name_a), "%s", h_path(c, "notify-agent"));
	} else {
		snprintf(name_d, sizeof(name_d), "%s", h_path(c, "notify-hpqd"));
		abstract_name(name_a, sizeof(name_a), "agent");
	}
	rx_open(&rd, name_d);
	rx_open(&ra, name_a);

	/* Node checks every 500 ms, as often as the pings should come. */
	h_daemon_config(c, "[agents]\nheartbeat = 1s\n");
	sd_env(name_d, NULL);
	h_daemon_start(c);
	hpqd = c->hpqd;
	sd_env(name_a, NULL);
	ai = h_agent_start(c, "node1", 0, 1, "1G");
	agent = c->agents[ai].pid;
	sd_env(NULL, NULL);

	rx_expect(c, &rd, hpqd, "READY=1", 0, 30000, NULL);
	rx_expect(c, &ra, agent, "READY=1", 0, 30000, NULL);
	assert_true(h_wait_nodes(c, 1, 30000));

	/* Watch the pings for a few intervals of the programs' own clocks. */
	progress_start(c, &pg, "node1");
	progress_wait(c, &pg, "node1", 8, 4);
	rx_assert_watchdog(&rd, hpqd, &pg, true, "hpqd");
	rx_assert_watchdog(&ra, agent, &pg, false, "hpq-agent");

	/* The agent's reload: RELOADING=1, then READY=1 again; still pinging. */
	pthread_mutex_lock(&ra.lock);
	hup = ra.n;
	pthread_mutex_unlock(&ra.lock);
	assert_int_equal(kill(agent, SIGHUP), 0);
	i = rx_expect(c, &ra, agent, "RELOADING=1", hup, 30000, NULL);
	rx_expect(c, &ra, agent, "READY=1", i + 1, 30000, NULL);
	progress_start(c, &pg, "node1");
	progress_wait(c, &pg, "node1", 2, 4);
	rx_assert_watchdog(&ra, agent, &pg, false, "hpq-agent after SIGHUP");

	/* SIGTERM: STOPPING=1, and a clean exit. */
	h_agent_stop(c, ai, SIGTERM);
	assert_true(WIFEXITED(c->agents[ai].status) && WEXITSTATUS(c->agents[ai].status) == 0);
	rx_expect(c, &ra, agent, "STOPPING=1", 0, 30000, NULL);
	h_daemon_stop(c, SIGTERM);
	rx_expect(c, &rd, hpqd, "STOPPING=1", 0, 30000, NULL);

	rx_assert_only(&rd, hpqd, "hpqd");
	rx_assert_only(&ra, agent, "hpq-agent");
	assert_int_equal(rx_count(&rd, "READY=1"), 1);
	rx_close(&rd);
	rx_close(&ra);
	h_pass(c);
}

static void daemon_on_path_agent_abstract(void **state)
{
	supervise(*state, false);
}

static void daemon_abstract_agent_on_path(void **state)
{
	supervise(*state, true);
}

/* WATCHDOG_PID names another process: READY=1 still, but no pings. */
static void watchdog_for_another_pid(void **state)
{
	struct h_cluster *c = *state;
	struct rx rd, ra;
	struct progress pg;
	pid_t hpqd, agent;
	int i;

	rx_open(&rd, h_path(c, "notify-hpqd"));
	rx_open(&ra, h_path(c, "notify-agent"));
	h_daemon_config(c, "[agents]\nheartbeat = 1s\n");
	sd_env(rd.name, "1");
	h_daemon_start(c);
	hpqd = c->hpqd;
	sd_env(ra.name, "1");
	i = h_agent_start(c, "node1", 0, 1, "1G");
	agent = c->agents[i].pid;
	sd_env(NULL, NULL);

	rx_expect(c, &rd, hpqd, "READY=1", 0, 30000, NULL);
	rx_expect(c, &ra, agent, "READY=1", 0, 30000, NULL);
	/* Long enough for several pings of both, had they been due: six node
	 * checks of hpqd (3 s of its loop) and four heartbeats of the agent. */
	assert_true(h_wait_nodes(c, 1, 30000));
	progress_start(c, &pg, "node1");
	progress_wait(c, &pg, "node1", 6, 4);
	assert_int_equal(rx_count(&rd, "WATCHDOG=1"), 0);
	assert_int_equal(rx_count(&ra, "WATCHDOG=1"), 0);
	rx_assert_only(&rd, hpqd, "hpqd");
	rx_assert_only(&ra, agent, "hpq-agent");
	rx_close(&rd);
	rx_close(&ra);
	h_pass(c);
}

/* ---------------------------------------------------------------- running programs */

/*
 * Runs argv with extra environment entries ("K=V", NULL-terminated list or
 * NULL), stdout to out_path (or the log), stderr to log_path; returns the
 * exit code, or -1 if it did not end within timeout_ms.
 */
static int run(struct h_cluster *c, const char *const *argv, const char *const *env,
	       const char *out_path, const char *log_path, int timeout_ms)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		int lfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int ofd = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
				   : lfd;

		if (lfd < 0 || ofd < 0 || dup2(ofd, 1) < 0 || dup2(lfd, 2) < 0)
			_exit(127);
		setenv("HPQ_ITEST_DIR", c->dir, 1);
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	status = h_wait_child(c, pid, timeout_ms);
	if (status == -1) {
		kill(pid, SIGKILL);
		h_wait_child(c, pid, 5000);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* run(), failing the test with the log's contents unless it exits 0. */
static void run_ok(struct h_cluster *c, const char *const *argv, const char *const *env,
		   const char *out_path, const char *what)
{
	const char *log = h_path(c, "run.log");
	int code;

	unlink(log);
	code = run(c, argv, env, out_path, log, 120000);
	if (code != 0) {
		char *text = h_read_file(log);

		fail_msg("%s: exit %d\n%s", what, code, text ? text : "");
	}
}

/*
 * `cmake --install BUILD --prefix prefix` (with DESTDIR when destdir is
 * not NULL), leaving the build's install_manifest.txt as it was: the test
 * must not make a real `make install`'s manifest name temp files. Without
 * a DESTDIR only the component Unspecified: everything but /etc.
 */
static void install_to(struct h_cluster *c, const char *prefix, const char *destdir)
{
	const char *argv[] = {HPQ_TEST_CMAKE, "--install", HPQ_TEST_BUILD_DIR, "--prefix", prefix,
			      destdir ? NULL : "--component", "Unspecified", NULL};
	char manifest[4096], dest_env[4200];
	const char *env[] = {dest_env, NULL};
	char *saved;

	snprintf(manifest, sizeof(manifest), "%s/install_manifest.txt", HPQ_TEST_BUILD_DIR);
	saved = h_read_file(manifest);
	snprintf(dest_env, sizeof(dest_env), "DESTDIR=%s", destdir ? destdir : "");
	run_ok(c, argv, env, NULL, "cmake --install");
	if (saved)
		h_write_file(manifest, saved);
	else
		unlink(manifest);
	free(saved);
}

static bool is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_executable(const char *path)
{
	return is_file(path) && access(path, X_OK) == 0;
}

/* The value of the first line starting with key in text (static buffer), or "". */
static const char *line_value(const char *text, const char *key)
{
	static char value[1024];
	size_t klen = strlen(key);

	value[0] = '\0';
	for (const char *line = text; *line; line += strcspn(line, "\n")) {
		if (*line == '\n')
			line++;
		if (strncmp(line, key, klen) == 0) {
			snprintf(value, sizeof(value), "%.*s", (int)strcspn(line + klen, "\n"),
				 line + klen);
			break;
		}
	}
	return value;
}

/* ---------------------------------------------------------------- example configs */

/* The start of the line after line's end (its terminating NUL at the end). */
static char *next_line(char *line)
{
	line += strcspn(line, "\n");
	return *line ? line + 1 : line;
}

/*
 * The keys an example config documents: lines "#key = value" ('#' right
 * before the key; prose comments have a space after '#'), as "section.key"
 * (section "" for the agent), each followed by '\n'. Also writes the file
 * with those lines uncommented to uncommented_path.
 */
static char *example_keys(const char *path, const char *uncommented_path, bool with_section)
{
	char *text = h_read_file(path), *keys = calloc(1, 1), section[64] = "";
	FILE *out = fopen(uncommented_path, "w");
	size_t klen = 0;

	assert_non_null(text);
	assert_non_null(out);
	for (char *line = text; *line;) {
		size_t len = strcspn(line, "\n");
		char *eq;

		if (line[0] == '[' && len < sizeof(section)) {
			snprintf(section, sizeof(section), "%.*s", (int)(len - 2), line + 1);
			fprintf(out, "%.*s\n", (int)len, line);
		} else if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' &&
			   (eq = memchr(line, '=', len)) != NULL) {
			char key[64], entry[160];
			size_t n = strcspn(line + 1, " =");

			snprintf(key, sizeof(key), "%.*s", (int)n, line + 1);
			for (char *p = key; !with_section && *p; p++)
				if (*p == '_')
					*p = '-'; /* the agent's keys are its options */
			snprintf(entry, sizeof(entry), "%s%s%s\n", with_section ? section : "",
				 with_section ? "." : "", key);
			keys = realloc(keys, klen + strlen(entry) + 1);
			strcpy(keys + klen, entry);
			klen += strlen(entry);
			fprintf(out, "%.*s\n", (int)len - 1, line + 1);
		}
		line += len + (line[len] == '\n');
	}
	fclose(out);
	free(text);
	return keys;
}

/* True if the '\n'-terminated entry is a line of list. */
static bool has_entry(const char *list, const char *entry)
{
	size_t n = strlen(entry);

	for (const char *p = list; (p = strstr(p, entry)); p++)
		if ((p == list || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

/* Every line of a is in b and the other way round; names the first difference. */
static void assert_same_keys(const char *a, const char *a_name, const char *b, const char *b_name)
{
	const char *lists[2][3] = {{a, b, b_name}, {b, a, a_name}};

	for (int k = 0; k < 2; k++) {
		for (const char *line = lists[k][0]; *line; line += strcspn(line, "\n") + 1) {
			char entry[160];

			snprintf(entry, sizeof(entry), "%.*s", (int)strcspn(line, "\n"), line);
			if (!has_entry(lists[k][1], entry))
				fail_msg("key '%s' is missing from %s", entry, lists[k][2]);
		}
	}
}

/* --check's output without its comments: the "# ..." lines and each
 * setting's " ; source" (in place). */
static void strip_sources(char *text)
{
	char *out = text;

	for (char *line = text; *line;) {
		size_t len = strcspn(line, "\n");
		char *semi = memmem(line, len, " ; ", 3);
		size_t keep = semi ? (size_t)(semi - line) : len;

		if (line[0] != '#') {
			while (keep && line[keep - 1] == ' ')
				keep--;
			memmove(out, line, keep);
			out += keep;
			*out++ = '\n';
		}
		line += len + (line[len] == '\n');
	}
	*out = '\0';
}

/* hpqd.conf: the keys of `hpqd --check`, and the same defaults. */
static void check_hpqd_example(struct h_cluster *c, const char *prefix)
{
	char hpqd[512], example[512], *keys, *defaults, *with_example, *check_keys;
	const char *uncommented = h_path(c, "hpqd-all.conf");
	const char *check_out = h_path(c, "check-default.out");
	const char *check_all = h_path(c, "check-example.out");
	char section[64] = "";
	size_t klen = 0;

	snprintf(hpqd, sizeof(hpqd), "%s/%s/hpqd", prefix, HPQ_TEST_SBINDIR);
	snprintf(example, sizeof(example), "%s/%s/hpq/examples/hpqd.conf", prefix,
		 HPQ_TEST_DATADIR);
	keys = example_keys(example, uncommented, true);

	/* Paths this user may write in: --check checks them. */
	const char *state = h_path(c, "check-state"), *sock = h_path(c, "check.sock");
	const char *argv1[] = {hpqd, "--check", "-d", state, "-s", sock, NULL};
	const char *argv2[] = {hpqd, "--check", "--config", uncommented, "-d", state, "-s", sock,
			       NULL};

	run_ok(c, argv1, NULL, check_out, "hpqd --check");
	run_ok(c, argv2, NULL, check_all, "hpqd --check --config <example, uncommented>");
	defaults = h_read_file(check_out);
	with_example = h_read_file(check_all);
	assert_non_null(defaults);
	assert_non_null(with_example);
	strip_sources(defaults);
	strip_sources(with_example);
	/* The example's values are the defaults. */
	assert_string_equal(with_example, defaults);

	/* And it names every key --check prints. */
	check_keys = calloc(1, 1);
	for (char *line = defaults; *line; line = next_line(line)) {
		size_t len = strcspn(line, "\n");
		char entry[160];

		if (line[0] == '[') {
			snprintf(section, sizeof(section), "%.*s", (int)(len - 2), line + 1);
		} else if (len && memchr(line, '=', len)) {
			snprintf(entry, sizeof(entry), "%s.%.*s\n", section,
				 (int)strcspn(line, " ="), line);
			check_keys = realloc(check_keys, klen + strlen(entry) + 1);
			strcpy(check_keys + klen, entry);
			klen += strlen(entry);
		}
	}
	assert_true(klen > 0);
	assert_same_keys(keys, "the example hpqd.conf", check_keys, "hpqd --check");
	free(keys);
	free(check_keys);
	free(defaults);
	free(with_example);
}

/*
 * agent.conf: one key per option of `hpq-agent --help` (but --config,
 * --check, --help, --version), and the installed agent starts with all of
 * them set.
 */
static void check_agent_example(struct h_cluster *c, const char *prefix)
{
	char agent[512], example[512], *keys, *help, *opts, notify[108], env_notify[160];
	const char *uncommented = h_path(c, "agent-all.conf");
	const char *help_out = h_path(c, "agent-help.out");
	char work[256], log[256], *text;
	size_t olen = 0;
	struct rx rx;
	int status;
	pid_t pid;

	snprintf(agent, sizeof(agent), "%s/%s/hpq-agent", prefix, HPQ_TEST_SBINDIR);
	snprintf(example, sizeof(example), "%s/%s/hpq/examples/agent.conf", prefix,
		 HPQ_TEST_DATADIR);
	keys = example_keys(example, uncommented, false);

	const char *argv_help[] = {agent, "--help", NULL};

	run_ok(c, argv_help, NULL, help_out, "hpq-agent --help");
	help = h_read_file(help_out);
	assert_non_null(help);
	opts = calloc(1, 1);
	for (char *line = help; *line; line = next_line(line)) {
		char *p = line + strspn(line, " "), entry[64];

		if (p == line || *p != '-')
			continue;
		p = strstr(p, "--");
		if (!p || p > line + strcspn(line, "\n"))
			continue;
		snprintf(entry, sizeof(entry), "%.*s\n", (int)strspn(p + 2,
			 "abcdefghijklmnopqrstuvwxyz-"), p + 2);
		if (!strcmp(entry, "config\n") || !strcmp(entry, "check\n") ||
		    !strcmp(entry, "help\n") || !strcmp(entry, "version\n"))
			continue;
		opts = realloc(opts, olen + strlen(entry) + 1);
		strcpy(opts + olen, entry);
		olen += strlen(entry);
	}
	assert_true(olen > 0);
	assert_same_keys(keys, "the example agent.conf", opts, "hpq-agent --help");

	/* Every example value set: the agent must accept them all and serve.
	 * The site-specific paths and the server are overridden by flags. */
	snprintf(work, sizeof(work), "%s", h_path(c, "example-agent"));
	snprintf(log, sizeof(log), "%s", h_path(c, "example-agent.log"));
	snprintf(notify, sizeof(notify), "%s", h_path(c, "notify-example"));
	rx_open(&rx, notify);
	snprintf(env_notify, sizeof(env_notify), "NOTIFY_SOCKET=%s", notify);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		setenv("HPQ_ITEST_DIR", c->dir, 1);
		putenv(env_notify);
		execl(agent, agent, "--config", uncommented, "--foreground", "--server",
		      "127.0.0.1:1", "--work-dir", work, (char *)NULL);
		_exit(127);
	}
	status = -1;
	if (!H_WAIT_FOR(c, rx_find(&rx, pid, "READY=1", 0, NULL) >= 0 ||
			      (status = h_wait_child(c, pid, 0)) != -1, 30000) ||
	    status != -1) {
		text = h_read_file(log);
		if (status == -1)
			kill(pid, SIGKILL);
		fail_msg("the agent did not start with every example key set:\n%s",
			 text ? text : "");
	}
	/* It took the node name from the file. */
	text = h_read_file(log);
	assert_non_null(text);
	if (!strstr(text, "node gpu001 "))
		fail_msg("the agent did not use the example's node name:\n%s", text);
	free(text);
	kill(pid, SIGTERM);
	status = h_wait_child(c, pid, 30000);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	rx_close(&rx);
	free(keys);
	free(help);
	free(opts);
}

/* ---------------------------------------------------------------- install tests */

static void check_tree(const char *root, const char *prefix)
{
	static const char *const files[][2] = {
		{HPQ_TEST_SBINDIR, "hpqd"},
		{HPQ_TEST_SBINDIR, "hpq-agent"},
		{HPQ_TEST_BINDIR, "hpq"},
		{HPQ_TEST_BINDIR, "hpq-example-trainer"},
		{HPQ_TEST_MANDIR, "man8/hpqd.8"},
		{HPQ_TEST_MANDIR, "man8/hpq-agent.8"},
		{HPQ_TEST_MANDIR, "man1/hpq.1"},
		{HPQ_TEST_TLS_MODULE_DIR, "hpq-tls.so"},
		{HPQ_TEST_UNITDIR, "hpqd.service"},
		{HPQ_TEST_UNITDIR, "hpq-agent.service"},
		{HPQ_TEST_SYSUSERSDIR, "hpq.conf"},
		{HPQ_TEST_TMPFILESDIR, "hpq.conf"},
		{HPQ_TEST_DATADIR, "hpq/examples/hpqd.conf"},
		{HPQ_TEST_DATADIR, "hpq/examples/agent.conf"},
		{HPQ_TEST_DATADIR, "hpq/examples/README.md"},
		{HPQ_TEST_DATADIR, "hpq/examples/trainer.c"},
	};
	static const char *const programs[][2] = {
		{"hpqd.service", "hpqd"}, {"hpq-agent.service", "hpq-agent"},
	};
	char path[1024], want[1024];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s%s/%s/%s", root, prefix, files[i][0], files[i][1]);
		if (!is_file(path))
			fail_msg("not installed: %s", path);
	}
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s/%s/%s", root, prefix, files[i][0], files[i][1]);
		assert_true(is_executable(path));
	}
	/* The units run the binaries of this installation, without the DESTDIR. */
	for (size_t i = 0; i < 2; i++) {
		char *unit;

		snprintf(path, sizeof(path), "%s%s/%s/%s", root, prefix, HPQ_TEST_UNITDIR,
			 programs[i][0]);
		unit = h_read_file(path);
		assert_non_null(unit);
		snprintf(want, sizeof(want), "%s/%s/%s --foreground --config ", prefix,
			 HPQ_TEST_SBINDIR, programs[i][1]);
		if (strncmp(line_value(unit, "ExecStart="), want, strlen(want)) != 0)
			fail_msg("%s: ExecStart=%s, expected %s...", path,
				 line_value(unit, "ExecStart="), want);
		assert_null(strstr(unit, "@HPQ_"));
		assert_string_equal(line_value(unit, "Type="), "notify");
		assert_true(line_value(unit, "WatchdogSec=")[0] != '\0');
		free(unit);
	}
}

/*
 * Installing into a temp prefix is harmless only when every destination is
 * under the prefix: a build configured with an absolute unit directory
 * would install into the real one.
 */
static void skip_unless_relocatable(struct h_cluster *c)
{
	if (HPQ_TEST_UNITDIR[0] == '/' || HPQ_TEST_SYSUSERSDIR[0] == '/' ||
	    HPQ_TEST_TMPFILESDIR[0] == '/') {
		fprintf(stderr, "HPQ_SYSTEMD_UNITDIR, HPQ_SYSUSERSDIR or HPQ_TMPFILESDIR is "
			"absolute; not installing from a test\n");
		h_pass(c);
		skip();
	}
}

/*
 * The files under DESTDIR's /etc: the example configs and the logrotate
 * file, installed as they are, and kept by a second install once edited
 * (a removed one comes back).
 */
static void check_etc(struct h_cluster *c, const char *stage)
{
	static const char *const etc[][2] = {
		{HPQ_TEST_CONFDIR "/hpqd.conf", "dist/hpqd.conf"},
		{HPQ_TEST_CONFDIR "/agent.conf", "dist/agent.conf"},
		{HPQ_TEST_LOGROTATEDIR "/hpq", "dist/hpq.logrotate"},
	};
	char path[1024], src[1024], *a, *b;

	for (size_t i = 0; i < sizeof(etc) / sizeof(etc[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", stage, etc[i][0]);
		snprintf(src, sizeof(src), "%s/%s", HPQ_TEST_SOURCE_DIR, etc[i][1]);
		a = h_read_file(path);
		b = h_read_file(src);
		if (!a)
			fail_msg("not installed: %s", path);
		assert_non_null(b);
		assert_string_equal(a, b);
		free(a);
		free(b);
	}
	snprintf(path, sizeof(path), "%s%s/hpqd.conf", stage, HPQ_TEST_CONFDIR);
	h_write_file(path, "[hpqd]\nlisten = 10.0.0.1:7420\n");
	snprintf(src, sizeof(src), "%s%s/agent.conf", stage, HPQ_TEST_CONFDIR);
	assert_int_equal(unlink(src), 0);
	install_to(c, "/usr", stage);
	a = h_read_file(path);
	assert_non_null(a);
	assert_string_equal(a, "[hpqd]\nlisten = 10.0.0.1:7420\n");
	free(a);
	assert_true(is_file(src));
}

static void installed_tree(void **state)
{
	struct h_cluster *c = *state;
	char prefix[256], stage[256];

	skip_unless_relocatable(c);
	snprintf(prefix, sizeof(prefix), "%s", h_path(c, "prefix"));
	install_to(c, prefix, NULL);
	check_tree("", prefix);
	check_hpqd_example(c, prefix);
	check_agent_example(c, prefix);

	/* Without DESTDIR nothing went to /etc (not even under the prefix). */
	assert_false(is_file(h_path(c, "prefix/etc/hpq/hpqd.conf")));

	/* A staged install for a package: DESTDIR in front, the prefix in the
	 * units, and the configs under /etc. */
	snprintf(stage, sizeof(stage), "%s", h_path(c, "stage"));
	install_to(c, "/usr", stage);
	check_tree(stage, "/usr");
	check_etc(c, stage);
	h_pass(c);
}

static bool skipped_verify, skipped_tool;

/* True if the host has the program; else says so and skips the test. */
static void need_tool(struct h_cluster *c, const char *prog)
{
	const char *probe[] = {prog, "--version", NULL};

	if (run(c, probe, NULL, NULL, h_path(c, "probe.log"), 30000) != 0) {
		fprintf(stderr, "%s is not available: skipping\n", prog);
		skipped_tool = true;
		h_pass(c);
		skip();
	}
}

/* The user hpq from hpq.sysusers, and /run/hpq from hpq.tmpfiles, in a
 * staged root, as systemd makes them at boot. */
static void tmpfiles_run_dir(void **state)
{
	struct h_cluster *c = *state;
	const char *root = h_path(c, "root"), *log = h_path(c, "tmpfiles.log");
	char root_opt[300], sysusers[512], tmpfiles[512], *passwd, *text;
	struct stat st;
	unsigned uid = 0;

	need_tool(c, "systemd-sysusers");
	need_tool(c, "systemd-tmpfiles");
	snprintf(root_opt, sizeof(root_opt), "--root=%s", root);
	snprintf(sysusers, sizeof(sysusers), "%s/dist/hpq.sysusers", HPQ_TEST_SOURCE_DIR);
	snprintf(tmpfiles, sizeof(tmpfiles), "%s/dist/hpq.tmpfiles", HPQ_TEST_SOURCE_DIR);
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(mkdir(h_path(c, "root/etc"), 0755), 0);

	const char *argv1[] = {"systemd-sysusers", root_opt, sysusers, NULL};
	const char *argv2[] = {"systemd-tmpfiles", "--create", root_opt, tmpfiles, NULL};

	run_ok(c, argv1, NULL, NULL, "systemd-sysusers");
	passwd = h_read_file(h_path(c, "root/etc/passwd"));
	assert_non_null(passwd);
	text = strstr(passwd, "hpq:x:");
	if (!text || sscanf(text, "hpq:x:%u:", &uid) != 1)
		fail_msg("systemd-sysusers made no user hpq:\n%s", passwd);
	free(passwd);
	unlink(log);
	if (run(c, argv2, NULL, NULL, log, 60000) != 0 || (text = h_read_file(log)) == NULL ||
	    text[0]) {
		text = h_read_file(log);
		fail_msg("systemd-tmpfiles --create %s:\n%s", tmpfiles, text ? text : "");
	}
	free(text);
	assert_int_equal(stat(h_path(c, "root/run/hpq"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_uid, uid);
	h_pass(c);
}

/* text with every from replaced by to (malloc'd); fails unless there was one. */
static char *replace_all(const char *text, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), n = 0;
	char *out, *p;

	for (const char *q = text; (q = strstr(q, from)); q += fl)
		n++;
	if (!n)
		fail_msg("'%s' is not in the text", from);
	p = out = malloc(strlen(text) + n * tl + 1);
	for (const char *q = text, *hit; ; q = hit + fl) {
		hit = strstr(q, from);
		if (!hit) {
			strcpy(p, q);
			break;
		}
		memcpy(p, q, (size_t)(hit - q));
		p += hit - q;
		memcpy(p, to, tl);
		p += tl;
	}
	return out;
}

/*
 * hpq.logrotate, its paths moved to a temp dir: logrotate -d accepts it,
 * and a forced rotation moves the logs aside while they are held open for
 * appending, as hpqd and the agent hold theirs, and the next line written
 * lands at the start of the emptied file.
 */
static void logrotate_rotates(void **state)
{
	struct h_cluster *c = *state;
	const char *dir = h_path(c, "lr"), *conf = h_path(c, "lr/hpq");
	const char *hpqd_log = h_path(c, "lr/hpqd.log"), *agent_log = h_path(c, "lr/agent.log");
	const char *status = h_path(c, "lr/status");
	char src[512], *text, *moved, *again;
	int fd;

	need_tool(c, "logrotate");
	snprintf(src, sizeof(src), "%s/dist/hpq.logrotate", HPQ_TEST_SOURCE_DIR);
	text = h_read_file(src);
	assert_non_null(text);
	moved = replace_all(text, "/var/lib/hpq/hpqd.log", hpqd_log);
	again = replace_all(moved, "/var/lib/hpq-agent/agent.log", agent_log);
	assert_int_equal(mkdir(dir, 0755), 0);
	h_write_file(conf, again);
	assert_int_equal(chmod(conf, 0644), 0);
	free(text);
	free(moved);
	free(again);

	const char *debug[] = {"logrotate", "-d", "-s", status, conf, NULL};
	const char *force[] = {"logrotate", "-f", "-s", status, conf, NULL};

	/* -d: a dry run that reads the file and says what it would do. */
	run_ok(c, debug, NULL, NULL, "logrotate -d");
	text = h_read_file(h_path(c, "run.log"));
	if (text && strstr(text, "error"))
		fail_msg("logrotate -d:\n%s", text);
	free(text);

	fd = open(hpqd_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "line 1\n", 7), 7);
	h_write_file(agent_log, "agent 1\n");
	run_ok(c, force, NULL, NULL, "logrotate -f");
	text = h_read_file(h_path(c, "lr/hpqd.log.1"));
	assert_non_null(text);
	assert_string_equal(text, "line 1\n");
	free(text);
	text = h_read_file(h_path(c, "lr/agent.log.1"));
	assert_non_null(text);
	assert_string_equal(text, "agent 1\n");
	free(text);
	assert_int_equal(write(fd, "line 2\n", 7), 7);
	close(fd);
	text = h_read_file(hpqd_log);
	assert_non_null(text);
	assert_string_equal(text, "line 2\n");
	free(text);
	h_pass(c);
}

static void systemd_analyze_verify(void **state)
{
	struct h_cluster *c = *state;
	char prefix[256], unitdir[300], manpath[300], hpqd_unit[400], agent_unit[400];
	const char *probe[] = {"systemd-analyze", "--version", NULL};
	const char *log = h_path(c, "verify.log");
	char *text;
	int code;

	if (run(c, probe, NULL, NULL, h_path(c, "probe.log"), 30000) != 0) {
		fprintf(stderr, "systemd-analyze is not available: skipping\n");
		skipped_verify = true;
		h_pass(c);
		skip();
	}
	skipped_verify = true;
	skip_unless_relocatable(c);
	skipped_verify = false;
	snprintf(prefix, sizeof(prefix), "%s", h_path(c, "prefix"));
	install_to(c, prefix, NULL);
	snprintf(unitdir, sizeof(unitdir), "%s/%s", prefix, HPQ_TEST_UNITDIR);
	snprintf(manpath, sizeof(manpath), "MANPATH=%s/%s", prefix, HPQ_TEST_MANDIR);
	snprintf(hpqd_unit, sizeof(hpqd_unit), "%s/hpqd.service", unitdir);
	snprintf(agent_unit, sizeof(agent_unit), "%s/hpq-agent.service", unitdir);

	/* verify checks the syntax, that ExecStart/ExecReload are executables
	 * and, with MANPATH, that the Documentation= man pages exist. */
	const char *argv[] = {"systemd-analyze", "verify", hpqd_unit, agent_unit, NULL};
	const char *env[] = {manpath, NULL};

	code = run(c, argv, env, NULL, log, 60000);
	text = h_read_file(log);
	if (code != 0)
		fail_msg("systemd-analyze verify: exit %d\n%s", code, text ? text : "");
	/* Unknown or invalid settings are only warnings ("..., ignoring"), with
	 * exit 0; any line about our units fails. Other units of the host it
	 * loads (targets we order against) are not our business. */
	if (text && (strstr(text, "hpqd.service") || strstr(text, "hpq-agent.service")))
		fail_msg("systemd-analyze verify warns about the units:\n%s", text);
	free(text);
	h_pass(c);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest notify_tests[] = {
		cmocka_unit_test_setup_teardown(daemon_on_path_agent_abstract, h_setup,
						h_teardown),
		cmocka_unit_test_setup_teardown(daemon_abstract_agent_on_path, h_setup,
						h_teardown),
		cmocka_unit_test_setup_teardown(watchdog_for_another_pid, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(installed_tree, h_setup, h_teardown),
	};
	const struct CMUnitTest verify_tests[] = {
		cmocka_unit_test_setup_teardown(systemd_analyze_verify, h_setup, h_teardown),
	};
	const struct CMUnitTest tmpfiles_tests[] = {
		cmocka_unit_test_setup_teardown(tmpfiles_run_dir, h_setup, h_teardown),
	};
	const struct CMUnitTest logrotate_tests[] = {
		cmocka_unit_test_setup_teardown(logrotate_rotates, h_setup, h_teardown),
	};
	int r;

	if (argc > 1 && strcmp(argv[1], "systemd-analyze") == 0) {
		r = cmocka_run_group_tests(verify_tests, NULL, NULL);
		return r == 0 && skipped_verify ? 77 : r;
	}
	if (argc > 1 && strcmp(argv[1], "tmpfiles") == 0) {
		r = cmocka_run_group_tests(tmpfiles_tests, NULL, NULL);
		return r == 0 && skipped_tool ? 77 : r;
	}
	if (argc > 1 && strcmp(argv[1], "logrotate") == 0) {
		r = cmocka_run_group_tests(logrotate_tests, NULL, NULL);
		return r == 0 && skipped_tool ? 77 : r;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: %s [systemd-analyze | tmpfiles | logrotate]\n", argv[0]);
		return 2;
	}
	return cmocka_run_group_tests(notify_tests, NULL, NULL);
}
