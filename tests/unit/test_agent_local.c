/*
 * test_agent_local.c: the agent socket that `hpq checkpoint` uses inside
 * tasks. A forked client (the real client library) talks to the agent's
 * loop in this process. The agent must answer Hello, and refuse, each
 * with its own error, a checkpoint for a task that does not run here, one
 * from a user who is not the task's (SO_PEERCRED, not what the client
 * says), one while hpqd is not connected, requests other than checkpoints,
 * anything before Hello, and bytes that are not frames.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "client.h"
#include "error.h"
#include "exec.h"
#include "frame.h"
#include "local.h"
#include "msg.h"
#include "uplink.h"
#include "xalloc.h"

struct fixture {
	struct ev_loop *loop;
	struct exec ex;
	struct uplink uplink;
	struct local local;
	struct task *task;
	char dir[64];
	char sock[128];
	ev_child child_w;
	ev_timer guard_w;
	int child_status;
	bool done;
};

static void on_task_exit(struct exec *ex, struct task *t)
{
}

static void uplink_noop(void *data)
{
}

static void uplink_fill(void *data, Hpq__Register *reg, const char *addr)
{
}

static void uplink_release_reg(void *data, Hpq__Register *reg)
{
}

static void uplink_msg(void *data, const Hpq__Envelope *env)
{
}

static const struct uplink_ops ops = {
	.fill_register = uplink_fill,
	.release_register = uplink_release_reg,
	.ready = uplink_noop,
	.lost = uplink_noop,
	.message = uplink_msg,
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct exec_config ec = {0};
	struct uplink_config lc = {.server = "127.0.0.1:1", .name = "testnode", .heartbeat = 1,
				   .insecure = true};
	static char *argv[] = {"/bin/sleep", "30"};
	Hpq__RunTask rt = HPQ__RUN_TASK__INIT;

	strcpy(f->dir, "/tmp/test_agent_local.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(chmod(f->dir, 0755), 0); /* tasks of other users reach the socket */
	snprintf(f->sock, sizeof(f->sock), "%s/agent.sock", f->dir);
	f->loop = ev_default_loop(0);
	ec.work_dir = f->dir;
	ec.node_name = "testnode";
	exec_init(&f->ex, f->loop, &ec, on_task_exit, f);
	/* The uplink exists but is never started: hpqd is "not connected". */
	assert_int_equal(uplink_init(&f->uplink, f->loop, &lc, &ops, f, NULL, 0), 0);
	assert_int_equal(local_open(&f->local, f->loop, f->sock, &f->ex, &f->uplink), 0);

	/* Task 5 attempt 2 runs as nobody when we are root, else as us. */
	rt.task_id = 5;
	rt.attempt = 2;
	rt.argv = argv;
	rt.n_argv = 2;
	rt.uid = 65534;
	rt.gid = 65534;
	rt.cwd = "/";
	rt.cluster_id = "0123456789abcdef0123456789abcdef"; /* names its log file */
	assert_int_equal(exec_start(&f->ex, &rt, &f->task), 0);
	assert_false(f->task->exited);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	kill(-f->task->pid, SIGKILL);
	local_close(&f->local);
	uplink_release(&f->uplink);
	exec_release(&f->ex);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct fixture *f = w->data;

	f->child_status = w->rstatus;
	f->done = true;
	ev_child_stop(loop, w);
	ev_break(loop, EVBREAK_ALL);
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

/* Runs fn in a child process (as uid when uid >= 0) while our loop serves
 * the socket; the child's exit status 0 means its checks passed. */
static void run_client(struct fixture *f, int (*fn)(struct fixture *f), int uid)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (uid >= 0 && (setgid((gid_t)uid) < 0 || setuid((uid_t)uid) < 0))
			_exit(99);
		_exit(fn(f));
	}
	ev_child_init(&f->child_w, child_cb, pid, 0);
	f->child_w.data = f;
	ev_child_start(f->loop, &f->child_w);
	ev_timer_init(&f->guard_w, guard_cb, 10.0, 0.0);
	ev_timer_start(f->loop, &f->guard_w);
	f->done = false;
	ev_run(f->loop, 0);
	ev_timer_stop(f->loop, &f->guard_w);
	if (!f->done) {
		kill(pid, SIGKILL);
		fail_msg("client did not finish");
	}
	if (!WIFEXITED(f->child_status) || WEXITSTATUS(f->child_status) != 0)
		fail_msg("client checks failed: status %#x (exit %d)", f->child_status,
			 WEXITSTATUS(f->child_status));
}

/* In the child: fprintf(stderr) explains a failure, the exit code counts. */
static int checkpoint_expect(struct fixture *f, uint64_t task, uint32_t attempt, int want,
			     const char *text)
{
	struct hpq_client c;
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *rep = NULL;
	Hpq__CheckpointRequest ck = HPQ__CHECKPOINT_REQUEST__INIT;
	int r;

	r = hpq_client_connect(&c, f->sock, 5000);
	if (r < 0) {
		fprintf(stderr, "connect: %s\n", c.errbuf);
		return 1;
	}
	ck.task_id = task;
	ck.attempt = attempt;
	ck.step = 10;
	ck.path = "/ckpt/10";
	req.body_case = HPQ__ENVELOPE__BODY_CHECKPOINT;
	req.checkpoint = &ck;
	r = hpq_client_call(&c, &req, &rep);
	hpq_msg_free(rep);
	if (r != want || !strstr(c.errbuf, text)) {
		fprintf(stderr, "got %d '%s', want %d '%s'\n", r, c.errbuf, want, text);
		hpq_client_close(&c);
		return 2;
	}
	hpq_client_close(&c);
	return 0;
}

static int client_unknown_task(struct fixture *f)
{
	return checkpoint_expect(f, 999, 1, HPQ_ENOTFOUND, "not running on this node") ||
	       checkpoint_expect(f, 5, 1, HPQ_ENOTFOUND, "not running on this node") ||
	       checkpoint_expect(f, 0, 0, HPQ_EINVAL, "without a task id");
}

static void unknown_task_refused(void **state)
{
	run_client(*state, client_unknown_task, -1);
}

static int client_daemon_away(struct fixture *f)
{
	return checkpoint_expect(f, 5, 2, HPQ_EUNAVAIL, "not connected to hpqd");
}

/* The task's user (or root) passes the checks and meets an absent daemon. */
static void daemon_not_connected(void **state)
{
	struct fixture *f = *state;

	run_client(f, client_daemon_away, -1);
	if (geteuid() == 0)
		run_client(f, client_daemon_away, 65534);
}

static int client_wrong_user(struct fixture *f)
{
	return checkpoint_expect(f, 5, 2, HPQ_EPERM, "runs as uid 65534; you are uid 4242");
}

static void other_user_refused(void **state)
{
	if (geteuid() != 0)
		skip(); /* needs root to become another user */
	run_client(*state, client_wrong_user, 4242);
}

static int client_not_a_checkpoint(struct fixture *f)
{
	struct hpq_client c;
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *rep = NULL;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	int r;

	if (hpq_client_connect(&c, f->sock, 5000) < 0)
		return 1;
	req.body_case = HPQ__ENVELOPE__BODY_LIST;
	req.list = &list;
	r = hpq_client_call(&c, &req, &rep);
	hpq_msg_free(rep);
	hpq_client_close(&c);
	return r == HPQ_EPROTO && strstr(c.errbuf, "checkpoint requests only") ? 0 : 2;
}

static void other_requests_refused(void **state)
{
	run_client(*state, client_not_a_checkpoint, -1);
}

/* Writes raw bytes, reads one frame back; 0 if it is an Error mentioning text. */
static int raw_expect_error(struct fixture *f, const void *bytes, size_t n, const char *text)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct hpq_framer fr = HPQ_FRAMER_INIT(1 << 20);
	uint8_t buf[4096];
	const uint8_t *p;
	size_t len;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), ok = 3;
	ssize_t got;

	strcpy(sun.sun_path, f->sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return 1;
	if (write(fd, bytes, n) != (ssize_t)n)
		return 1;
	while ((got = read(fd, buf, sizeof(buf))) > 0) {
		hpq_framer_feed(&fr, buf, (size_t)got);
		if (hpq_framer_next(&fr, &p, &len) > 0) {
			Hpq__Envelope *env = hpq_msg_decode(p, len);

			ok = env && env->body_case == HPQ__ENVELOPE__BODY_ERROR &&
			     strstr(env->error->message, text) ? 0 : 2;
			hpq_msg_free(env);
			break;
		}
	}
	/* Then the agent hangs up. */
	while (ok == 0 && (got = read(fd, buf, sizeof(buf))) > 0)
		;
	hpq_framer_release(&fr);
	close(fd);
	return ok;
}

static int client_garbage(struct fixture *f)
{
	static const uint8_t not_protobuf[] = {0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t too_big[] = {0x7f, 0xff, 0xff, 0xff};
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	uint8_t *frame;
	size_t len;
	int r;

	env.id = 1;
	env.body_case = HPQ__ENVELOPE__BODY_LIST;
	env.list = &list;
	frame = hpq_msg_encode(&env, &len);
	r = raw_expect_error(f, not_protobuf, sizeof(not_protobuf), "malformed frame") ||
	    raw_expect_error(f, too_big, sizeof(too_big), "frame too large") ||
	    raw_expect_error(f, frame, len, "say hello first");
	free(frame);
	return r;
}

static void garbage_gets_error_and_close(void **state)
{
	struct fixture *f = *state;

	run_client(f, client_garbage, -1);
	/* And the agent still serves. */
	run_client(f, client_unknown_task, -1);
	assert_int_equal(f->local.nclients, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(unknown_task_refused),
		T(daemon_not_connected),
		T(other_user_refused),
		T(other_requests_refused),
		T(garbage_gets_error_and_close),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
