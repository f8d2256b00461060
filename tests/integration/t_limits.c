/*
 * t_limits.c: limits against misbehaving peers (docs/security.md, "Limits
 * against misbehaving peers"), each against the attack it answers:
 *
 *   - a partial frame that stalls is closed after [limits] read_timeout;
 *   - before Hello a frame over 64 KiB is refused from its length alone;
 *   - 1,000 idle Unix connections of one user (after Hello) leave another
 *     user's and root's `hpq list` working; the hoarder is told the limit;
 *   - the agent socket caps each uid, so another user still gets through;
 *   - per user: pending tasks, task bytes and the request rate, each with
 *     an error naming the limit, and nothing stored;
 *   - an administrator's cancel and a reclaim give the policy's grace,
 *     not the task's long --grace; a --grace over max-grace is refused;
 *   - `hpq show` prints a newline and ESC in argv as escapes (--json stays
 *     exact), and the task log's header line cannot be forged.
 *
 * Then hpqd restarts --insecure (plain TCP on loopback, so that a refusal
 * before Hello is a frame this test can read) with short limits, for:
 *
 *   - TCP peers that say nothing count per address: one over
 *     max_unauthenticated_per_address is told so, the Unix CLI still works;
 *   - max_inflight: a client pipelining submits is read a few at a time
 *     (each few is a dispatcher cycle of its own), gets every reply in
 *     order, and nothing is lost;
 *   - a follower that reads none of its replies is cut off after
 *     write_timeout, a client whose unread replies pass max_write_queue at
 *     once, without hpqd's peak memory growing by what it asked for;
 *   - a client silent after Hello is closed after idle_timeout, a follower
 *     of events is not;
 *   - the agent socket closes a client silent for --local-idle-timeout.
 *
 * Two unprivileged users, hpqt-lima and hpqt-limb, are made for it and
 * removed at the end (leftovers of an earlier run are tolerated).
 */
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "hpq.h"
#include "msg.h"

#include "harness.h"

#define USER_A "hpqt-lima"
#define USER_B "hpqt-limb"
#define HOARD 1000

static struct passwd user_a, user_b;

static void make_user(const char *name, struct passwd *out)
{
	char cmd[160];
	struct passwd *pw;

	snprintf(cmd, sizeof(cmd), "useradd -M -N -s /bin/sh %s 2>/dev/null", name);
	if (system(cmd) != 0 && !getpwnam(name))
		fail_msg("cannot create user %s", name);
	pw = getpwnam(name);
	assert_non_null(pw);
	*out = *pw;
	out->pw_name = strdup(name);
}

static void drop_user(const char *name)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "userdel -f %s 2>/dev/null", name);
	if (system(cmd) != 0)
		fprintf(stderr, "t_limits: cannot remove user %s\n", name);
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (strlen(path) >= sizeof(sa.sun_path))
		fail_msg("socket path too long for sun_path: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void send_hello(int fd, uint64_t id)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Hello hello = HPQ__HELLO__INIT;
	uint8_t *buf;
	size_t len;

	hello.role = HPQ__ROLE__ROLE_CLIENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)HPQ_VERSION;
	hello.name = (char *)"";
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	buf = hpq_msg_encode(&env, &len);
	(void)!send(fd, buf, len, MSG_NOSIGNAL);
	free(buf);
}

/* Reads one frame (waiting at most timeout_ms in all); NULL on EOF or timeout. */
static Hpq__Envelope *read_env(int fd, int timeout_ms)
{
	struct hpq_framer f;
	Hpq__Envelope *env = NULL;
	int64_t end = h_now_ms() + timeout_ms;
	const uint8_t *p;
	size_t len;

	hpq_framer_init(&f, HPQ_FRAME_MAX);
	while (!env) {
		struct pollfd pfd = {fd, POLLIN, 0};
		uint8_t buf[4096];
		ssize_t n;

		if (hpq_framer_next(&f, &p, &len) > 0) {
			env = hpq_msg_decode(p, len);
			break;
		}
		if (poll(&pfd, 1, (int)(end - h_now_ms())) <= 0 ||
		    (n = recv(fd, buf, sizeof(buf), 0)) <= 0)
			break;
		hpq_framer_feed(&f, buf, (size_t)n);
	}
	hpq_framer_release(&f);
	return env;
}

/* True once the peer closed fd (reads drain whatever came first). */
static bool closed_within(int fd, int timeout_ms)
{
	int64_t end = h_now_ms() + timeout_ms;
	uint8_t buf[4096];

	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&pfd, 1, (int)(end - h_now_ms())) <= 0)
			return false;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return true;
	}
}

static void become(const struct passwd *pw)
{
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		_exit(90);
}

static bool has_text(const char *s, const char *what)
{
	return s && strstr(s, what);
}

static int setup(void **state)
{
	struct h_cluster *c;

	make_user(USER_A, &user_a);
	make_user(USER_B, &user_b);
	h_setup(state);
	c = *state;
	h_daemon_config(c, "[limits]\n"
			   "read_timeout = 1s\n"
			   "max_connections_per_user = 64\n"
			   "max_pending_tasks = 3\n"
			   "max_task_bytes = 4K\n"
			   "rate = 1\n"
			   "burst = 25\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 2, 4, "4G");
	if (!h_wait_nodes(c, 1, 20000))
		fail_msg("the agent did not register");
	return 0;
}

static int teardown(void **state)
{
	int r = h_teardown(state);

	drop_user(USER_A);
	drop_user(USER_B);
	return r;
}

/* A peer that begins a frame and stalls is closed after read_timeout (1s). */
static void stalled_frame(void **state)
{
	struct h_cluster *c = *state;
	int fd = connect_unix(c->sock);
	int64_t t0;

	assert_true(fd >= 0);
	assert_int_equal(send(fd, "\0\0", 2, MSG_NOSIGNAL), 2);
	t0 = h_now_ms();
	assert_true(closed_within(fd, 15000));
	assert_true(h_now_ms() - t0 >= 900);
	close(fd);
}

/* read_timeout times each frame from its own first byte: a client whose
 * reads keep ending inside its next request, every request completed and
 * answered at once, is not cut off after 1s of such traffic. */
static void busy_stream(void **state)
{
	struct h_cluster *c = *state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *rep;
	Hpq__TeamListRequest tl = HPQ__TEAM_LIST_REQUEST__INIT;
	int fd = connect_unix(c->sock);
	uint8_t *frame, *next, both[512];
	size_t len, half, nlen, tail;
	uint64_t id = 2;
	int64_t t0;

	assert_true(fd >= 0);
	send_hello(fd, 1);
	rep = read_env(fd, 15000);
	assert_non_null(rep);
	assert_int_equal(rep->body_case, HPQ__ENVELOPE__BODY_HELLO_REPLY);
	hpq_msg_free(rep);
	env.body_case = HPQ__ENVELOPE__BODY_TEAM_LIST;
	env.team_list = &tl;
	env.id = id;
	frame = hpq_msg_encode(&env, &len);
	half = len / 2;
	assert_int_equal(send(fd, frame, half, MSG_NOSIGNAL), (ssize_t)half);
	/* Each step finishes the frame begun and begins the next, then waits
	 * for the answer to the finished one. */
	for (t0 = h_now_ms(); h_now_ms() - t0 < 3000;) {
		env.id = ++id;
		next = hpq_msg_encode(&env, &nlen);
		tail = len - half;
		assert_true(tail + nlen / 2 <= sizeof(both));
		memcpy(both, frame + half, tail);
		memcpy(both + tail, next, nlen / 2);
		assert_int_equal(send(fd, both, tail + nlen / 2, MSG_NOSIGNAL),
				 (ssize_t)(tail + nlen / 2));
		rep = read_env(fd, 15000);
		if (!rep || rep->body_case == HPQ__ENVELOPE__BODY_ERROR)
			fail_msg("request %llu, %lld ms into a stream of answered requests: %s",
				 (unsigned long long)(id - 1), (long long)(h_now_ms() - t0),
				 rep ? rep->error->message : "connection closed");
		assert_int_equal(rep->id, id - 1);
		hpq_msg_free(rep);
		free(frame);
		frame = next;
		len = nlen;
		half = nlen / 2;
	}
	free(frame);
	close(fd);
}

/* Before Hello a frame may hold 64 KiB: a 1 MiB header alone is refused. */
static void preauth_big_frame(void **state)
{
	struct h_cluster *c = *state;
	uint8_t head[HPQ_FRAME_HEADER];
	Hpq__Envelope *env;
	int fd = connect_unix(c->sock);

	assert_true(fd >= 0);
	hpq_frame_header(head, 1u << 20);
	assert_int_equal(send(fd, head, sizeof(head), MSG_NOSIGNAL), (ssize_t)sizeof(head));
	/* No body was sent: the answer can only come from the length. */
	env = read_env(fd, 15000);
	assert_non_null(env);
	assert_int_equal(env->body_case, HPQ__ENVELOPE__BODY_ERROR);
	if (!has_text(env->error->message, "larger than 65536"))
		fail_msg("unexpected refusal: %s", env->error->message);
	hpq_msg_free(env);
	assert_true(closed_within(fd, 15000));
	close(fd);
}

/* 1,000 connections of user A, each past Hello, then idle. */
static void hoarder(struct h_cluster *c, int ready_fd, int done_fd)
{
	struct rlimit rl = {HOARD + 64, HOARD + 64};
	char b;

	setrlimit(RLIMIT_NOFILE, &rl);
	become(&user_a);
	for (int i = 0; i < HOARD; i++) {
		int fd = connect_unix(c->sock);

		if (fd >= 0)
			send_hello(fd, 1);
	}
	(void)!write(ready_fd, "r", 1);
	(void)!read(done_fd, &b, 1);
	_exit(0);
}

static void many_connections(void **state)
{
	struct h_cluster *c = *state;
	struct h_out o;
	int ready[2], done[2];
	pid_t pid;
	char b;

	/* The first h_cli_as opens the test's dir to other users: the socket is in it. */
	h_cli_as(c, user_b.pw_uid, user_b.pw_gid);
	h_cli_as(c, 0, 0);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(done[1]);
		hoarder(c, ready[1], done[0]);
	}
	close(ready[1]);
	close(done[0]);
	assert_int_equal(read(ready[0], &b, 1), 1);

	/* Another user and root still get in. */
	h_cli_as(c, user_b.pw_uid, user_b.pw_gid);
	assert_int_equal(h_hpq(c, NULL, "list", NULL), 0);
	h_cli_as(c, 0, 0);
	assert_int_equal(h_hpq(c, NULL, "list", NULL), 0);
	/* The hoarder itself is told why. */
	h_cli_as(c, user_a.pw_uid, user_a.pw_gid);
	assert_int_not_equal(h_hpq(c, &o, "list", NULL), 0);
	if (!has_text(o.err, "max_connections_per_user"))
		fail_msg("hpq list of the hoarder said: %s", o.err);
	h_out_free(&o);
	h_cli_as(c, 0, 0);

	assert_int_equal(write(done[1], "d", 1), 1);
	assert_true(WIFEXITED(h_wait_child(c, pid, 20000)));
	close(ready[0]);
	close(done[1]);
	assert_int_equal(kill(c->hpqd, 0), 0);
	/* Its slots come back once it is gone. */
	h_cli_as(c, user_a.pw_uid, user_a.pw_gid);
	assert_true(H_WAIT_FOR(c, h_hpq(c, NULL, "list", NULL) == 0, 15000));
	h_cli_as(c, 0, 0);
}

/* In a child as pw: opens n connections to the agent socket with Hello and
 * exits with how many got a HelloReply. */
static int agent_hellos(const char *path, const struct passwd *pw, int n)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		int got = 0;

		become(pw);
		for (int i = 0; i < n; i++) {
			int fd = connect_unix(path);
			Hpq__Envelope *env;

			if (fd < 0)
				continue;
			send_hello(fd, 1);
			env = read_env(fd, 5000);
			if (env && env->body_case == HPQ__ENVELOPE__BODY_HELLO_REPLY)
				got++;
			if (env)
				hpq_msg_free(env);
			/* The connection stays open: the child holds it until it exits. */
		}
		_exit(got);
	}
	status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void agent_socket_cap(void **state)
{
	struct h_cluster *c = *state;
	char path[256];

	snprintf(path, sizeof(path), "%s/agent.sock", c->agents[0].work);
	/* A holds its 8 (local-max-per-user); the rest are refused. */
	assert_int_equal(agent_hellos(path, &user_a, 20), 8);
	/* Each child's connections end with it, so B and root count afresh. */
	assert_int_equal(agent_hellos(path, &user_b, 1), 1);
}

/* The per-user limits of hpqd: pending tasks, task bytes; nothing stored. */
static void user_limits(void **state)
{
	struct h_cluster *c = *state;
	char big[5000 + 16];
	struct h_out o;
	json_t *tasks, *t;
	size_t i, mine = 0;

	h_cli_as(c, user_a.pw_uid, user_a.pw_gid);
	/* Held: they stay pending. */
	for (i = 0; i < 3; i++)
		assert_int_equal(h_hpq(c, NULL, "submit", "--hold", "--", "true", NULL), 0);
	assert_int_not_equal(h_hpq(c, &o, "submit", "--hold", "--", "true", NULL), 0);
	if (!has_text(o.err, "max_pending_tasks") || !has_text(o.err, "3"))
		fail_msg("a 4th pending task was refused with: %s", o.err);
	h_out_free(&o);

	strcpy(big, "--export=BIG=");
	memset(big + strlen(big), 'x', 5000);
	big[13 + 5000] = '\0';
	h_cli_as(c, user_b.pw_uid, user_b.pw_gid);
	assert_int_not_equal(h_hpq(c, &o, "submit", big, "--", "true", NULL), 0);
	if (!has_text(o.err, "max_task_bytes") || !has_text(o.err, "4096"))
		fail_msg("a 5 KB environment was refused with: %s", o.err);
	h_out_free(&o);
	h_cli_as(c, 0, 0);

	tasks = h_tasks(c);
	json_array_foreach(tasks, i, t) {
		if (!strcmp(h_str(t, "user"), USER_A))
			mine++;
		assert_string_not_equal(h_str(t, "user"), USER_B);
	}
	json_decref(tasks);
	assert_int_equal(mine, 3);
	assert_int_equal(h_hpq(c, NULL, "cancel", "1", "2", "3", NULL), 0);
}

static bool in_state(struct h_cluster *c, uint64_t id, const char *state)
{
	json_t *t = h_task(c, id);
	bool r = t && !strcmp(h_str(t, "state"), state);

	json_decref(t);
	return r;
}

#define STUBBORN "trap '' TERM; while :; do sleep 0.2; done"

/* An administrator's cancel and a reclaim give the policy's grace (1s),
 * not the half hour the task asked for. */
static void grace(void **state)
{
	struct h_cluster *c = *state;
	struct h_out o;
	uint64_t id, victim, owner;

	assert_int_equal(h_hpq(c, NULL, "policy", "set", "grace", "1s", NULL), 0);
	h_cli_as(c, user_b.pw_uid, user_b.pw_gid);
	assert_int_not_equal(h_hpq(c, &o, "submit", "--grace", "2h", "--", "true", NULL), 0);
	if (!has_text(o.err, "max-grace"))
		fail_msg("--grace 2h was refused with: %s", o.err);
	h_out_free(&o);
	id = h_submit(c, "--grace", "30m", "--", "sh", "-c", STUBBORN, NULL);
	h_cli_as(c, 0, 0);
	assert_true(h_wait_state(c, id, "RUNNING", 20000));
	{
		char ids[32];

		snprintf(ids, sizeof(ids), "%llu", (unsigned long long)id);
		assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);
	}
	assert_true(h_task_has_event(c, id, "cancel", "grace 1s"));
	assert_true(h_wait_state(c, id, "CANCELLED", 20000));

	/* Reclaim: B borrows both GPUs on the default team; team g takes them back. */
	assert_int_equal(h_hpq(c, NULL, "team", "add", "g", "--pool", "default", "--gpus", "2",
			       NULL), 0);
	h_cli_as(c, user_b.pw_uid, user_b.pw_gid);
	victim = h_submit(c, "--gpus", "2", "--grace", "30m", "--", "sh", "-c", STUBBORN, NULL);
	h_cli_as(c, 0, 0);
	assert_true(h_wait_state(c, victim, "RUNNING", 20000));
	h_cli_as(c, user_a.pw_uid, user_a.pw_gid);
	owner = h_submit(c, "--team", "g", "--gpus", "2", "--", "sh", "-c", STUBBORN, NULL);
	h_cli_as(c, 0, 0);
	assert_true(H_WAIT_FOR(c, in_state(c, owner, "RUNNING"), 20000));
	assert_true(h_task_has_event(c, victim, "preempt", "(reclaim), grace 1s"));
	{
		char a[32], b[32];

		snprintf(a, sizeof(a), "%llu", (unsigned long long)victim);
		snprintf(b, sizeof(b), "%llu", (unsigned long long)owner);
		assert_int_equal(h_hpq(c, NULL, "cancel", a, b, NULL), 0);
	}
	assert_true(h_wait_state(c, owner, "CANCELLED", 20000));
	assert_true(h_wait_state(c, victim, "CANCELLED", 20000));
}

/* Control characters in argv: escaped for people, exact in JSON, and one
 * header line in the task's log. */
static void escapes(void **state)
{
	struct h_cluster *c = *state;
	const char *forged = "x\nCommand: forged\x1b[31m";
	const char *header = "y\n==== hpq: task 999 attempt 1 on node1 as root (uid 0): evil";
	struct h_out o;
	json_t *t;
	uint64_t id;
	char ids[32];

	id = h_submit(c, "--hold", "--", "echo", forged, NULL);
	snprintf(ids, sizeof(ids), "%llu", (unsigned long long)id);
	assert_int_equal(h_hpq(c, &o, "show", ids, NULL), 0);
	if (has_text(o.out, "\nCommand: forged") || has_text(o.out, "\x1b[31m") ||
	    !has_text(o.out, "x\\nCommand: forged\\x1b[31m"))
		fail_msg("hpq show printed:\n%s", o.out);
	h_out_free(&o);
	t = h_task(c, id);
	assert_string_equal(json_string_value(json_array_get(json_object_get(t, "argv"), 1)),
			    forged);
	json_decref(t);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);

	h_cli_as(c, user_a.pw_uid, user_a.pw_gid);
	id = h_submit(c, "--", "sh", "-c", "exit 0", header, NULL);
	h_cli_as(c, 0, 0);
	assert_true(h_wait_state(c, id, "COMPLETED", 20000));
	snprintf(ids, sizeof(ids), "%llu", (unsigned long long)id);
	assert_int_equal(h_hpq(c, &o, "logs", ids, NULL), 0);
	if (has_text(o.out, "\n==== hpq: task 999") || !has_text(o.out, "y\\n==== hpq: task 999"))
		fail_msg("the log of task %s reads:\n%s", ids, o.out);
	h_out_free(&o);
}

/* B's requests beyond the burst (25) at 1 per second are refused. */
static void rate(void **state)
{
	struct h_cluster *c = *state;
	struct h_out o;
	bool limited = false;

	h_cli_as(c, user_b.pw_uid, user_b.pw_gid);
	for (int i = 0; i < 60 && !limited; i++) {
		if (h_hpq(c, &o, "list", NULL) != 0) {
			if (!has_text(o.err, "[limits] rate"))
				fail_msg("hpq list was refused with: %s", o.err);
			limited = true;
		}
		h_out_free(&o);
	}
	h_cli_as(c, 0, 0);
	assert_true(limited);
	/* Root, an administrator, is not limited. */
	for (int i = 0; i < 30; i++)
		assert_int_equal(h_hpq(c, NULL, "list", NULL), 0);
}

/* ---------------------------------------------------------------- short limits */

/*
 * What the tests below watch happen, short enough to wait for. hello_timeout
 * is long so that a slow machine does not close the silent TCP peers of
 * preauth_per_address before the one over the limit arrives; idle_timeout
 * and write_timeout are both 2s, so write_timeout's test uses a follower,
 * which is never idle.
 */
#define SHORT_LIMITS "[limits]\n"					\
		     "read_timeout = 1s\n"				\
		     "hello_timeout = 60s\n"				\
		     "idle_timeout = 2s\n"				\
		     "write_timeout = 2s\n"				\
		     "max_write_queue = 4M\n"				\
		     "max_inflight = 4\n"				\
		     "max_unauthenticated_per_address = 4\n"
#define MAX_WRITE_QUEUE (4 << 20)
#define MAX_INFLIGHT 4
#define MAX_PREAUTH 4
#define TIMEOUT_MS 2000

/* Restarts hpqd --insecure with SHORT_LIMITS, once for all the tests below. */
static void short_limits(struct h_cluster *c)
{
	static bool done;

	if (done)
		return;
	h_daemon_stop(c, SIGTERM);
	c->insecure = true;
	h_daemon_config(c, SHORT_LIMITS);
	h_daemon_start(c);
	if (!h_wait_nodes(c, 1, 20000))
		fail_msg("the agent did not come back");
	done = true;
}

static int connect_tcp(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Whether the peer has closed fd, without reading a byte of it (reading
 * would let a peer that waits to write go on). */
static bool hung_up(int fd)
{
	struct pollfd pfd = {fd, POLLRDHUP, 0};

	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

/* Sends all of buf, waiting for room at most timeout_ms in all. */
static bool send_all(int fd, const uint8_t *buf, size_t len, int timeout_ms)
{
	int64_t end = h_now_ms() + timeout_ms;

	while (len) {
		struct pollfd pfd = {fd, POLLOUT, 0};
		int64_t left = end - h_now_ms();
		ssize_t n;

		if (poll(&pfd, 1, left > 0 ? (int)left : 0) <= 0)
			return false;
		n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		}
	}
	return true;
}

static void send_env(int fd, const Hpq__Envelope *env)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	h_append_frame(&buf, &len, env);
	assert_true(send_all(fd, buf, len, 15000));
	free(buf);
}

/* The frames of one connection in order. read_env drops what one read
 * brought after the first frame; this keeps it for the next call. */
struct reader {
	int fd;
	struct hpq_framer f;
};

static void reader_init(struct reader *r, int fd)
{
	r->fd = fd;
	hpq_framer_init(&r->f, HPQ_FRAME_MAX);
}

static void reader_close(struct reader *r)
{
	hpq_framer_release(&r->f);
	close(r->fd);
}

/* The next frame, waiting at most timeout_ms; NULL on EOF or timeout. */
static Hpq__Envelope *reader_next(struct reader *r, int timeout_ms)
{
	return h_next_frame(r->fd, &r->f, timeout_ms);
}

/* A client connection on the Unix socket (as root, this test) past Hello. */
static int unix_client(struct h_cluster *c)
{
	int fd = connect_unix(c->sock);
	Hpq__Envelope *env;

	assert_true(fd >= 0);
	send_hello(fd, 1);
	env = read_env(fd, 15000);
	if (!env || env->body_case != HPQ__ENVELOPE__BODY_HELLO_REPLY)
		fail_msg("no HelloReply on the Unix socket");
	hpq_msg_free(env);
	return fd;
}

static void list_request(Hpq__Envelope *env, Hpq__ListRequest *list, uint64_t id)
{
	hpq__list_request__init(list);
	env->id = id;
	env->body_case = HPQ__ENVELOPE__BODY_LIST;
	env->list = list;
}

/* Makes r's connection follow every event from now on; reads the first reply. */
static void follow(struct reader *r, uint64_t id)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *rep;
	Hpq__EventsRequest ev = HPQ__EVENTS_REQUEST__INIT;

	ev.follow = true;
	ev.limit = 1;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_EVENTS;
	env.events = &ev;
	send_env(r->fd, &env);
	rep = reader_next(r, 15000);
	if (!rep || rep->body_case != HPQ__ENVELOPE__BODY_EVENTS_REPLY)
		fail_msg("no EventsReply to a follow");
	hpq_msg_free(rep);
}

/* hpqd's peak resident memory (VmHWM), in KiB. */
static long peak_kib(pid_t pid)
{
	char path[64], *text, *at;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	text = h_read_file(path);
	assert_non_null(text);
	at = strstr(text, "VmHWM:");
	if (at)
		kib = strtol(at + 6, NULL, 10);
	free(text);
	assert_true(kib > 0);
	return kib;
}

/* A TCP client says Hello (insecure: its name is taken) and is answered. */
static bool tcp_admitted(struct h_cluster *c)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *rep;
	Hpq__Hello hello = HPQ__HELLO__INIT;
	int fd = connect_tcp(c->port);
	bool ok;

	if (fd < 0)
		return false;
	hello.role = HPQ__ROLE__ROLE_CLIENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)HPQ_VERSION;
	hello.name = (char *)"root";
	env.id = 1;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	send_env(fd, &env);
	rep = read_env(fd, 15000);
	ok = rep && rep->body_case == HPQ__ENVELOPE__BODY_HELLO_REPLY;
	if (rep)
		hpq_msg_free(rep);
	close(fd);
	return ok;
}

/* TCP peers that say nothing count per address: the one over
 * max_unauthenticated_per_address is told so and closed; the CLI on the
 * Unix socket is not affected, and a slot given back is taken again. */
static void preauth_per_address(void **state)
{
	struct h_cluster *c = *state;
	int held[MAX_PREAUTH], extra;
	Hpq__Envelope *env;

	short_limits(c);
	for (int i = 0; i < MAX_PREAUTH; i++) {
		held[i] = connect_tcp(c->port);
		assert_true(held[i] >= 0);
	}
	/* hpqd accepts in the order the connections came. */
	extra = connect_tcp(c->port);
	assert_true(extra >= 0);
	env = read_env(extra, 15000);
	if (!env || env->body_case != HPQ__ENVELOPE__BODY_ERROR)
		fail_msg("connection %d from one address was not refused", MAX_PREAUTH + 1);
	if (!has_text(env->error->message, "max_unauthenticated_per_address"))
		fail_msg("unexpected refusal: %s", env->error->message);
	hpq_msg_free(env);
	assert_true(closed_within(extra, 15000));
	close(extra);
	for (int i = 0; i < MAX_PREAUTH; i++)
		assert_false(hung_up(held[i]));

	assert_int_equal(h_hpq(c, NULL, "list", NULL), 0);

	close(held[0]);
	assert_true(H_WAIT_FOR(c, tcp_admitted(c), 15000));
	for (int i = 1; i < MAX_PREAUTH; i++)
		close(held[i]);
}

#define PIPELINED 200
#define ARG_PAD 2000   /* bytes of argv per task: what makes the lists below large */

/* A client pipelines 200 submits and reads no reply until it sent them
 * all. hpqd takes at most max_inflight (4) of its requests before their
 * commit, so they reach the dispatcher a few at a time: at least 200 / 4
 * cycles, where one read of them all would make one or a few. */
static void inflight(void **state)
{
	struct h_cluster *c = *state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	char pad[ARG_PAD + 1], *argv[2] = {(char *)"true", pad};
	uint8_t *buf = NULL;
	size_t len = 0;
	long long cycles;
	uint64_t first = 0;
	struct reader r;

	short_limits(c);
	memset(pad, 'x', ARG_PAD);
	pad[ARG_PAD] = '\0';
	res.gpus = 1;
	spec.hold = true;     /* held: they stay pending */
	res.cpus = 1;
	res.mem = 64;
	spec.nodes = 1;
	spec.per_node = &res;
	spec.argv = argv;
	spec.n_argv = 2;
	spec.cwd = c->dir;
	sub.spec = &spec;
	env.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	env.submit = &sub;
	for (uint64_t i = 1; i <= PIPELINED; i++) {
		env.id = i;
		h_append_frame(&buf, &len, &env);
	}

	reader_init(&r, unix_client(c));
	cycles = h_status_counter(c, "cycles");
	assert_true(send_all(r.fd, buf, len, 30000));
	free(buf);
	/* Others are served while its replies wait unread. */
	assert_int_equal(h_hpq(c, NULL, "list", NULL), 0);

	/* Every reply, in order, each a new task. */
	for (uint64_t i = 1; i <= PIPELINED; i++) {
		Hpq__Envelope *rep = reader_next(&r, 15000);

		if (!rep || rep->body_case != HPQ__ENVELOPE__BODY_SUBMIT_REPLY || rep->id != i)
			fail_msg("reply %llu: %s", (unsigned long long)i,
				 !rep ? "none" : rep->body_case == HPQ__ENVELOPE__BODY_ERROR
				 ? rep->error->message : "not a SubmitReply to it");
		if (i == 1)
			first = rep->submit_reply->id;
		else
			assert_int_equal(rep->submit_reply->id, first + i - 1);
		hpq_msg_free(rep);
	}
	reader_close(&r);
	{
		json_t *t = h_task(c, first + PIPELINED - 1);

		assert_non_null(t);
		assert_string_equal(h_str(t, "state"), "PENDING");
		json_decref(t);
	}
	cycles = h_status_counter(c, "cycles") - cycles;
	if (cycles < PIPELINED / MAX_INFLIGHT)
		fail_msg("%d pipelined submits came in %lld dispatcher cycles: hpqd read more "
			 "than max_inflight (%d) of them at once", PIPELINED, cycles, MAX_INFLIGHT);
}

/*
 * Requests answered from elsewhere count against max_inflight too: here
 * `hpq logs` relays to an agent that is stopped and so never answers. The
 * request after max_inflight of them is not even read until one of them
 * times out (LOGS_TIMEOUT_MS): its reply comes after theirs, not at once
 * as it did when such waits were not counted.
 */
static void inflight_reads(void **state)
{
	struct h_cluster *c = *state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *rep;
	Hpq__LogRequest log = HPQ__LOG_REQUEST__INIT;
	Hpq__ShowRequest show = HPQ__SHOW_REQUEST__INIT;
	uint8_t *buf = NULL;
	size_t len = 0;
	struct reader r;
	uint64_t id;
	int64_t t0;

	short_limits(c);
	id = h_submit(c, "--cpus", "1", "--", "sleep", "600", NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_int_equal(kill(c->agents[0].pid, SIGSTOP), 0);
	log.task_id = id;
	env.body_case = HPQ__ENVELOPE__BODY_LOG_REQUEST;
	env.log_request = &log;
	for (uint64_t i = 0; i < MAX_INFLIGHT; i++) {
		env.id = 10 + i;
		h_append_frame(&buf, &len, &env);
	}
	show.id = id;
	env.id = 20;
	env.body_case = HPQ__ENVELOPE__BODY_SHOW;
	env.show = &show;
	h_append_frame(&buf, &len, &env);

	reader_init(&r, unix_client(c));
	t0 = h_now_ms();
	assert_true(send_all(r.fd, buf, len, 15000));
	free(buf);
	rep = reader_next(&r, 30000);
	assert_non_null(rep);
	if (rep->id == 20)
		fail_msg("the request after %d relays waiting for an agent was answered after "
			 "%lld ms, before any of them", MAX_INFLIGHT, (long long)(h_now_ms() - t0));
	assert_true(rep->id >= 10 && rep->id < 10 + MAX_INFLIGHT);
	assert_int_equal(rep->body_case, HPQ__ENVELOPE__BODY_ERROR);
	assert_true(has_text(rep->error->message, "did not answer in time"));
	hpq_msg_free(rep);
	for (int n = 1; n <= MAX_INFLIGHT; n++) {   /* the other relays and the show */
		rep = reader_next(&r, 15000);
		assert_non_null(rep);
		if (rep->id == 20)
			assert_int_equal(rep->body_case, HPQ__ENVELOPE__BODY_SHOW_REPLY);
		hpq_msg_free(rep);
	}
	reader_close(&r);
	fprintf(stderr, "the request after %d waiting relays was read %lld ms after it came\n",
		MAX_INFLIGHT, (long long)(h_now_ms() - t0));

	assert_int_equal(kill(c->agents[0].pid, SIGCONT), 0);
	assert_int_equal(h_hpq(c, NULL, "cancel", h_id(id), NULL), 0);
	assert_true(h_wait_state(c, id, "CANCELLED", 30000));
}

/* The size of a list of every task, as hpqd sends it. */
static size_t list_size(struct h_cluster *c)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *rep;
	Hpq__ListRequest list;
	int fd = unix_client(c);
	size_t n;

	list_request(&env, &list, 2);
	send_env(fd, &env);
	rep = read_env(fd, 15000);
	assert_non_null(rep);
	assert_int_equal(rep->body_case, HPQ__ENVELOPE__BODY_LIST_REPLY);
	n = hpq__envelope__get_packed_size(rep);
	hpq_msg_free(rep);
	close(fd);
	return n;
}

/* Bytes the kernel holds for a Unix stream socket before its writer waits. */
static size_t socket_room(void)
{
	char *text = h_read_file("/proc/sys/net/core/wmem_default");
	size_t n = text ? strtoul(text, NULL, 10) : 0;

	free(text);
	return n ? n : 212992;
}

/*
 * Replies a peer leaves unread. A follower (never idle) that asks for a
 * few large lists, more than the socket holds and less than
 * max_write_queue, is closed after write_timeout. A client that asks for
 * 300 of them at once is closed when its queue passes max_write_queue (4
 * MiB), before hpqd has encoded most of them: hpqd's peak memory grows by
 * far less than the replies would take.
 */
static void write_limits(void **state)
{
	struct h_cluster *c = *state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ListRequest list;
	uint8_t *buf = NULL;
	size_t size, len = 0, k, many = 300;
	struct reader fol;
	long peak;
	int64_t t0;
	int fd;

	short_limits(c);
	size = list_size(c);
	/* The tasks inflight left: each list is large. */
	assert_true(size >= PIPELINED * ARG_PAD);
	k = (2 * socket_room() + (512 << 10)) / size + 1;
	if (k * size >= MAX_WRITE_QUEUE - (1 << 20))
		fail_msg("the socket holds too much (%zu) for this test", socket_room());

	reader_init(&fol, unix_client(c));
	follow(&fol, 1);
	fd = fol.fd;
	for (size_t i = 0; i < k; i++) {
		list_request(&env, &list, 10 + i);
		h_append_frame(&buf, &len, &env);
	}
	t0 = h_now_ms();
	assert_true(send_all(fd, buf, len, 15000));
	free(buf);
	buf = NULL;
	len = 0;
	if (!H_WAIT_FOR(c, hung_up(fd), 20000))
		fail_msg("a follower that left %zu bytes unread is still connected", k * size);
	if (h_now_ms() - t0 < TIMEOUT_MS - 100)
		fail_msg("closed after %lld ms, before write_timeout",
			 (long long)(h_now_ms() - t0));
	reader_close(&fol);
	assert_int_equal(h_hpq(c, NULL, "list", NULL), 0);

	peak = peak_kib(c->hpqd);
	fd = unix_client(c);
	for (size_t i = 0; i < many; i++) {
		list_request(&env, &list, 10 + i);
		h_append_frame(&buf, &len, &env);
	}
	assert_true(send_all(fd, buf, len, 15000));
	free(buf);
	if (!H_WAIT_FOR(c, hung_up(fd), 20000))
		fail_msg("a client that left %zu bytes unread is still connected", many * size);
	close(fd);
	peak = peak_kib(c->hpqd) - peak;
	if ((size_t)peak * 1024 > many * size / 3)
		fail_msg("hpqd's peak memory grew by %ld KiB for %zu KiB of unread replies",
			 peak, many * size / 1024);
	assert_int_equal(h_hpq(c, NULL, "list", NULL), 0);
	assert_int_equal(kill(c->hpqd, 0), 0);
}

/* A client silent after Hello is closed after idle_timeout (2s), with an
 * error naming it; a follower of events, as silent, is not, and still gets
 * its events. */
static void idle(void **state)
{
	struct h_cluster *c = *state;
	Hpq__Envelope *env;
	int64_t t0;
	int quiet, again;
	struct reader fol;
	uint64_t id;
	bool seen = false;

	short_limits(c);
	t0 = h_now_ms();
	quiet = unix_client(c);
	reader_init(&fol, unix_client(c));
	follow(&fol, 7);
	if (!H_WAIT_FOR(c, hung_up(quiet), 20000))
		fail_msg("a client silent after Hello was not closed");
	if (h_now_ms() - t0 < TIMEOUT_MS - 100)
		fail_msg("closed after %lld ms, before idle_timeout", (long long)(h_now_ms() - t0));
	env = read_env(quiet, 5000);
	if (!env || env->body_case != HPQ__ENVELOPE__BODY_ERROR ||
	    !has_text(env->error->message, "idle_timeout"))
		fail_msg("the idle client was told: %s", env && env->body_case ==
			 HPQ__ENVELOPE__BODY_ERROR ? env->error->message : "nothing");
	hpq_msg_free(env);
	close(quiet);

	/* Once another idle client is closed too, the follower has been silent
	 * for longer than idle_timeout, checked more than once. */
	again = unix_client(c);
	assert_true(H_WAIT_FOR(c, hung_up(again), 20000));
	close(again);
	assert_false(hung_up(fol.fd));
	id = h_submit(c, "--hold", "--", "true", NULL);
	for (int64_t end = h_now_ms() + 15000; !seen && h_now_ms() < end;) {
		env = reader_next(&fol, 1000);
		if (env && env->body_case == HPQ__ENVELOPE__BODY_EVENT && env->id == 7 &&
		    env->event->task_id == id)
			seen = true;
		if (env)
			hpq_msg_free(env);
	}
	if (!seen)
		fail_msg("the follower did not get the submit of task %llu",
			 (unsigned long long)id);
	reader_close(&fol);
	{
		char ids[32];

		snprintf(ids, sizeof(ids), "%llu", (unsigned long long)id);
		assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);
	}
}

/* A client on the agent socket past Hello, or -1. */
static int agent_client(const char *path)
{
	int fd = connect_unix(path);
	Hpq__Envelope *env;
	bool ok;

	if (fd < 0)
		return -1;
	send_hello(fd, 1);
	env = read_env(fd, 5000);
	ok = env && env->body_case == HPQ__ENVELOPE__BODY_HELLO_REPLY;
	if (env)
		hpq_msg_free(env);
	if (!ok) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The agent socket closes a client silent after Hello for
 * --local-idle-timeout (2s here, 30s by default). */
static void agent_idle(void **state)
{
	struct h_cluster *c = *state;
	int i = h_agent_index(c, "node1"), fd = -1;
	struct h_agent *a = &c->agents[i];
	char path[256], *log;
	int64_t t0 = 0;

	assert_true(i >= 0);
	h_agent_stop(c, i, SIGTERM);
	snprintf(a->extra[0], sizeof(a->extra[0]), "--local-idle-timeout");
	snprintf(a->extra[1], sizeof(a->extra[1]), "2s");
	h_agent_restart(c, i);
	snprintf(path, sizeof(path), "%s/agent.sock", a->work);
	if (!H_WAIT_FOR(c, (t0 = h_now_ms(), fd = agent_client(path)) >= 0, 20000))
		fail_msg("no Hello answered on the restarted agent's socket");
	if (!H_WAIT_FOR(c, hung_up(fd), 20000))
		fail_msg("a client silent on the agent socket was not closed");
	if (h_now_ms() - t0 < TIMEOUT_MS - 100)
		fail_msg("closed after %lld ms, before local-idle-timeout",
			 (long long)(h_now_ms() - t0));
	close(fd);
	log = h_read_file(a->log);
	if (!has_text(log, ": idle for "))
		fail_msg("the agent's log does not say why it closed the client");
	free(log);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stalled_frame),
		cmocka_unit_test(busy_stream),
		cmocka_unit_test(preauth_big_frame),
		cmocka_unit_test(many_connections),
		cmocka_unit_test(agent_socket_cap),
		cmocka_unit_test(user_limits),
		cmocka_unit_test(grace),
		cmocka_unit_test(escapes),
		cmocka_unit_test(rate),
		cmocka_unit_test(preauth_per_address),
		cmocka_unit_test(inflight),
		cmocka_unit_test(inflight_reads),
		cmocka_unit_test(write_limits),
		cmocka_unit_test(idle),
		cmocka_unit_test(agent_idle),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
