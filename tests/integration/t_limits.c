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
 * Two unprivileged users, hpqt-lima and hpqt-limb, are made for it and
 * removed at the end (leftovers of an earlier run are tolerated).
 */
#include <errno.h>
#include <grp.h>
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

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
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
	/* More GPUs than any node: they stay pending. */
	for (i = 0; i < 3; i++)
		assert_int_equal(h_hpq(c, NULL, "submit", "--gpus", "8", "--", "true", NULL), 0);
	assert_int_not_equal(h_hpq(c, &o, "submit", "--gpus", "8", "--", "true", NULL), 0);
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

static bool has_event(struct h_cluster *c, uint64_t id, const char *kind, const char *text)
{
	json_t *t = h_task(c, id), *ev;
	bool found = false;
	size_t i;

	json_array_foreach(json_object_get(t, "events"), i, ev)
		if (!strcmp(h_str(ev, "kind"), kind) && strstr(h_str(ev, "message"), text))
			found = true;
	json_decref(t);
	return found;
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
	assert_true(has_event(c, id, "cancel", "grace 1s"));
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
	assert_true(has_event(c, victim, "preempt", "(reclaim), grace 1s"));
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

	id = h_submit(c, "--gpus", "8", "--", "echo", forged, NULL);
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
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stalled_frame),
		cmocka_unit_test(preauth_big_frame),
		cmocka_unit_test(many_connections),
		cmocka_unit_test(agent_socket_cap),
		cmocka_unit_test(user_limits),
		cmocka_unit_test(grace),
		cmocka_unit_test(escapes),
		cmocka_unit_test(rate),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
