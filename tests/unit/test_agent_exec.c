/*
 * test_agent_exec.c: the task runner against real processes on a real
 * libev loop. A task's exit code follows the shell's rule (status, or 128
 * + signal), its output and a header and footer line land in its log
 * file, the time limit and kills stop the whole process group (SIGKILL
 * after the grace period for a task that ignores the polite signal), a
 * task that cannot start exits 127 with the reason in its log, GPUs are
 * handed out without overlap, and tasks left by a previous agent are
 * adopted only if their process is still the same one. Each attempt has a
 * log file of its own, named by the cluster id, and never one an earlier
 * run left; a root task starts only where allowed, and a checkpoint
 * directory that leads elsewhere is refused. A burst of RunTasks started
 * together is answered one by one as if each came alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "error.h"
#include "exec.h"
#include "xalloc.h"

#define CLUSTER "0123456789abcdef0123456789abcdef"
#define OTHER_UID 4242   /* a user unknown to the system, for tests as root */

struct fixture {
	struct ev_loop *loop;
	struct exec ex;
	char dir[64];
	int exits;               /* on_exit calls */
	int want_exits;          /* break the loop after this many */
	ev_timer guard;          /* a hung test fails instead of hanging */
	bool timed_out;
};

static void on_exit_cb(struct exec *ex, struct task *t)
{
	struct fixture *f = ex->data;

	assert_true(t->exited);
	if (++f->exits >= f->want_exits)
		ev_break(f->loop, EVBREAK_ALL);
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fixture *f = w->data;

	f->timed_out = true;
	ev_break(loop, EVBREAK_ALL);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct exec_config cfg = {0};
	char sock[128];

	/* Orphans of the tasks (background processes) come back to us to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	strcpy(f->dir, "/tmp/test_agent_exec.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(sock, sizeof(sock), "%s/agent.sock", f->dir);
	f->loop = ev_default_loop(0);
	cfg.work_dir = f->dir;
	cfg.node_name = "testnode";
	cfg.agent_socket = sock;
	cfg.ngpus = 4;
	cfg.poll_interval = 0.05;
	cfg.allow_root_tasks = true; /* the tests may run as root */
	exec_init(&f->ex, f->loop, &cfg, on_exit_cb, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct task *t;
	char cmd[128];

	/* A test that failed half-way leaves no processes behind. */
	dlist_for_each_entry(t, &f->ex.tasks, entry)
		if (!t->exited && t->pid > 1)
			kill(-t->pid, SIGKILL);
	exec_release(&f->ex);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Runs the loop until n more tasks have exited (at most `limit` seconds). */
static void run_until_exits(struct fixture *f, int n, double limit)
{
	f->want_exits = f->exits + n;
	/* The loop's clock stood still while the test blocked outside it. */
	ev_now_update(f->loop);
	ev_timer_init(&f->guard, guard_cb, limit, 0.0);
	f->guard.data = f;
	ev_timer_start(f->loop, &f->guard);
	ev_run(f->loop, 0);
	ev_timer_stop(f->loop, &f->guard);
	if (f->timed_out)
		fail_msg("tasks did not exit within %.0f s", limit);
}

/* The wall clock in unix ms, as the agent's deadlines are. */
static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * argv arrays for shell_task: each RunTask of a test keeps its own. They
 * hold exactly 3 pointers and are followed by a non-NULL poison pointer,
 * as protobuf-c's counted arrays are not NULL-terminated either.
 */
static char *argv_pool[32][4];
static unsigned argv_next;

/* A RunTask for `sh -c script` as ourselves. */
static Hpq__RunTask shell_task(uint64_t id, const char *script)
{
	Hpq__RunTask rt = HPQ__RUN_TASK__INIT;
	char **argv_sh = argv_pool[argv_next++ % 32];

	argv_sh[0] = "/bin/sh";
	argv_sh[1] = "-c";
	argv_sh[2] = (char *)script;
	argv_sh[3] = (char *)"poison: not part of argv";
	rt.task_id = id;
	rt.attempt = 1;
	rt.argv = argv_sh;
	rt.n_argv = 3;
	rt.uid = getuid();
	rt.gid = getgid();
	rt.cluster_id = CLUSTER;
	return rt;
}

static struct task *start(struct fixture *f, const Hpq__RunTask *rt)
{
	struct task *t = NULL;

	/* As in the agent, where a RunTask arrives in a callback of a loop
	 * that keeps time: its timers start from now. */
	ev_now_update(f->loop);
	assert_int_equal(exec_start(&f->ex, rt, &t), 0);
	assert_non_null(t);
	return t;
}

/* The log of attempt 1 of task id. */
#define log_text(f, id) attempt_log(f, id, 1)

static char *attempt_log(struct fixture *f, uint64_t id, uint32_t attempt)
{
	static char buf[16384];
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/logs/%s/%llu.%u.log", f->dir, CLUSTER,
		 (unsigned long long)id, attempt);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Waits (blocking, at most 30 s; nothing else has to happen meanwhile) for
 * text in a task's log. */
static void wait_for_log(struct fixture *f, uint64_t id, const char *text)
{
	double until = now() + 30;

	while (now() < until) {
		char *log = log_text(f, id);

		if (log && strstr(log, text))
			return;
		usleep(10000);
	}
	fail_msg("'%s' did not appear in the log of task %llu", text, (unsigned long long)id);
}

/* Whether pid is gone: no such process, or a zombie waiting to be reaped. */
static bool proc_gone(pid_t pid)
{
	uint64_t ticks;
	char st = '?';
	int r = exec_proc_stat(pid, &ticks, &st);

	return r == -ENOENT || (r == 0 && st == 'Z');
}

/*
 * Waits (at most 30 s: a deadline against hanging, not a measurement) until
 * pid is gone, running the loop meanwhile so that libev reaps what comes
 * back to us (the fixture is a child subreaper).
 */
static void wait_gone(struct fixture *f, pid_t pid, const char *what)
{
	double until = now() + 30;

	for (;;) {
		ev_run(f->loop, EVRUN_NOWAIT);
		if (proc_gone(pid))
			return;
		if (now() >= until)
			fail_msg("%s (pid %d) is still there after 30 s", what, (int)pid);
		usleep(10000);
	}
}

/* Waits (at most 30 s) until pid runs program comm: it has exec'ed. */
static void wait_exec(pid_t pid, const char *comm)
{
	double until = now() + 30;
	char path[64], buf[64] = "";

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	for (;;) {
		FILE *fp = fopen(path, "re");

		buf[0] = '\0';
		if (fp) {
			if (!fgets(buf, sizeof(buf), fp))
				buf[0] = '\0';
			fclose(fp);
		}
		buf[strcspn(buf, "\n")] = '\0';
		if (!strcmp(buf, comm))
			return;
		if (now() >= until)
			fail_msg("pid %d runs '%s', not '%s', after 30 s", (int)pid, buf, comm);
		usleep(10000);
	}
}

static void exit_codes(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r0 = shell_task(1, "exit 0"), r3 = shell_task(2, "exit 3"),
		     rk = shell_task(3, "kill -KILL $$"), rt = shell_task(4, "kill -TERM $$");
	struct task *t0 = start(f, &r0), *t3 = start(f, &r3), *tk = start(f, &rk),
		    *tt = start(f, &rt);

	assert_false(t0->exited);
	assert_true(t0->pid > 1);
	run_until_exits(f, 4, 60);
	assert_int_equal(t0->exit_code, 0);
	assert_string_equal(t0->reason, "exit");
	assert_int_equal(t3->exit_code, 3);
	assert_string_equal(t3->reason, "exit");
	assert_int_equal(tk->exit_code, 128 + SIGKILL);
	assert_string_equal(tk->reason, "signal");
	assert_int_equal(tt->exit_code, 128 + SIGTERM);
	assert_true(t0->end_ms >= t0->start_ms);
}

/*
 * The child shares the agent's memory until its exec (exec.c): the task
 * still starts with every signal unblocked and at its default, whatever
 * the agent blocks or ignores, and the agent's own mask and dispositions
 * are as they were.
 */
static void signals_reset_and_agent_untouched(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r = shell_task(6, "grep -E '^Sig(Blk|Ign):' /proc/self/status");
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_usr2, now_usr2;
	sigset_t block, old, now;
	struct task *t;
	char *log;

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGHUP);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old), 0);
	assert_int_equal(sigaction(SIGUSR2, &ign, &old_usr2), 0);
	t = start(f, &r);
	assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &now), 0);
	assert_int_equal(sigaction(SIGUSR2, NULL, &now_usr2), 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGUSR2, &old_usr2, NULL);
	assert_true(sigismember(&now, SIGUSR1) && sigismember(&now, SIGHUP));
	assert_false(sigismember(&now, SIGTERM) || sigismember(&now, SIGCHLD));
	assert_ptr_equal(now_usr2.sa_handler, SIG_IGN);
	run_until_exits(f, 1, 60);
	assert_int_equal(t->exit_code, 0);
	log = log_text(f, 6);
	assert_non_null(log);
	/* glibc keeps 32 to SIGRTMIN-1 for itself and lets no one set them:
	 * what the agent was started with stays there, and the task's own
	 * glibc sets them as it needs. Every other signal is at its default. */
	{
		const char *line = strstr(log, "SigIgn:\t");
		unsigned long long mask = line ? strtoull(line + 8, NULL, 16) : ~0ULL;

		for (int sig = 32; sig < SIGRTMIN; sig++)
			mask &= ~(1ULL << (sig - 1));
		if (!strstr(log, "SigBlk:\t0000000000000000\n") || mask)
			fail_msg("the task's signals are not all unblocked and default:\n%s", log);
	}
}

static void same_attempt_twice_refused(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r = shell_task(5, "exit 0");
	struct task *t = NULL;

	start(f, &r);
	assert_int_equal(exec_start(&f->ex, &r, &t), HPQ_EEXIST);
	r.attempt = 0;
	assert_int_equal(exec_start(&f->ex, &r, &t), HPQ_EINVAL);
	run_until_exits(f, 1, 60);
	assert_int_equal(task_list_count(&f->ex.tasks), 1);
}

/* A burst started together: each RunTask answered as exec_start would,
 * a repeat within the burst included, and every new one runs. */
static void burst_started_together(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r[4] = { shell_task(11, "exit 3"), shell_task(12, "exit 4"),
			      shell_task(11, "exit 5"), shell_task(13, "exit 0") };
	const Hpq__RunTask *rts[4] = { &r[0], &r[1], &r[2], &r[3] };
	struct task *t[4];
	int ret[4];

	r[3].attempt = 0;
	ev_now_update(f->loop);
	exec_start_many(&f->ex, rts, 4, t, ret);
	assert_int_equal(ret[0], 0);
	assert_int_equal(ret[1], 0);
	assert_int_equal(ret[2], HPQ_EEXIST);
	assert_int_equal(ret[3], HPQ_EINVAL);
	assert_non_null(t[0]);
	assert_non_null(t[1]);
	assert_null(t[2]);
	assert_null(t[3]);
	assert_true(t[0]->pid > 0 && t[1]->pid > 0);
	run_until_exits(f, 2, 60);
	assert_int_equal(task_list_count(&f->ex.tasks), 2);
	assert_int_equal(task_find(&f->ex.tasks, 11, 1)->exit_code, 3);
	assert_int_equal(task_find(&f->ex.tasks, 12, 1)->exit_code, 4);
}

static void log_file_and_environment(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r = shell_task(7, "echo out; echo err >&2; "
				       "echo \"id=$HPQ_TASK_ID attempt=$HPQ_ATTEMPT "
				       "gpus=$CUDA_VISIBLE_DEVICES sock=$HPQ_AGENT_SOCKET\"; pwd; "
				       "echo \"extra=$0 $#\"");
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	char want[256], *log;
	struct task *t;

	res.gpus = 2;
	r.resources = &res;
	r.name = "train";
	r.cwd = "/tmp";
	t = start(f, &r);
	assert_int_equal(t->ngpus, 2);
	run_until_exits(f, 1, 60);
	assert_int_equal(t->exit_code, 0);
	assert_int_equal(t->ngpus, 2); /* kept for the record; free again for others */

	/* A second attempt has a file of its own. */
	r.attempt = 2;
	r.resources = NULL;
	r.argv[2] = "echo second; exit 1";
	start(f, &r);
	run_until_exits(f, 1, 60);

	log = log_text(f, 7);
	assert_non_null(log);
	assert_non_null(strstr(log, "==== hpq: task 7 (train) attempt 1 on testnode at "));
	assert_non_null(strstr(log, "out\nerr\n"));
	snprintf(want, sizeof(want), "id=7 attempt=1 gpus=0,1 sock=%s/agent.sock\n/tmp\n",
		 f->dir);
	assert_non_null(strstr(log, want));
	/* Exactly the 3 words of argv reached the task (nothing past n_argv). */
	assert_non_null(strstr(log, "\nextra=/bin/sh 0\n"));
	assert_non_null(strstr(log, "attempt 1 ended at "));
	assert_non_null(strstr(log, ": exit code 0 (exit)\n"));
	assert_null(strstr(log, "second"));
	log = attempt_log(f, 7, 2);
	assert_non_null(log);
	assert_non_null(strstr(log, "==== hpq: task 7 (train) attempt 2 on testnode"));
	assert_non_null(strstr(log, "second\n"));
	assert_non_null(strstr(log, ": exit code 1 (exit)\n"));
	assert_null(strstr(log, "attempt 1"));
}

/* A restored database names a run again: the earlier file is moved aside,
 * never appended to; without a cluster id there is no file at all. */
static void log_file_never_reused(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r = shell_task(8, "echo new-owner"), bad = shell_task(9, "exit 0");
	char path[256], *log;
	struct task *t;
	struct stat st;

	snprintf(path, sizeof(path), "%s/logs", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/logs/%s", f->dir, CLUSTER);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/logs/%s/8.1.log", f->dir, CLUSTER);
	{
		FILE *fp = fopen(path, "w");

		assert_non_null(fp);
		fputs("old-owner-secret\n", fp);
		fclose(fp);
	}
	start(f, &r);
	run_until_exits(f, 1, 60);
	log = log_text(f, 8);
	assert_non_null(strstr(log, "new-owner\n"));
	assert_null(strstr(log, "old-owner-secret"));

	/* A log directory others may write to is not used. */
	snprintf(path, sizeof(path), "%s/logs/%s", f->dir, CLUSTER);
	assert_int_equal(chmod(path, 0777), 0);
	bad.task_id = 10;
	t = start(f, &bad);
	assert_true(t->exited);
	assert_string_equal(t->reason, "spawn-failed");
	assert_int_equal(chmod(path, 0755), 0);

	bad.task_id = 9;
	bad.cluster_id = "../../etc";
	t = start(f, &bad);
	assert_true(t->exited);
	assert_int_equal(t->exit_code, 127);
	assert_string_equal(t->reason, "spawn-failed");
	snprintf(path, sizeof(path), "%s/logs/%s/9.1.log", f->dir, CLUSTER);
	assert_int_equal(stat(path, &st), -1);
}

/* uid 0 runs only where the agent allows it. */
static void root_task_refused(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r = shell_task(11, "echo ran");
	struct task *t;

	f->ex.allow_root_tasks = false;
	r.uid = 0;
	r.gid = 0;
	t = start(f, &r);
	assert_true(t->exited);
	assert_int_equal(t->exit_code, 127);
	assert_string_equal(t->reason, "root-refused");
	assert_non_null(strstr(log_text(f, 11), "would run as root"));
	assert_null(strstr(log_text(f, 11), "ran\n"));
}

/* A checkpoint directory that is a link to a directory of someone else is
 * refused; one the user owns is created by the task's process, as the user. */
static void checkpoint_dir_rules(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r = shell_task(12, "exit 0"), ok = shell_task(13, "exit 0");
	char home[128], link[160], made[160];
	struct task *t;
	struct stat st;

	if (getuid() != 0)
		skip(); /* needs another user */
	snprintf(home, sizeof(home), "%s/home", f->dir);
	assert_int_equal(mkdir(home, 0755), 0);
	assert_int_equal(chown(home, OTHER_UID, OTHER_UID), 0);
	assert_int_equal(chmod(f->dir, 0711), 0);
	snprintf(link, sizeof(link), "%s/ckpt", home);
	assert_int_equal(symlink("/etc", link), 0);
	assert_int_equal(lchown(link, OTHER_UID, OTHER_UID), 0);

	r.uid = ok.uid = OTHER_UID;
	r.gid = ok.gid = OTHER_UID;
	r.cwd = ok.cwd = "/";
	r.checkpoint_dir = link;
	t = start(f, &r);
	assert_true(t->exited); /* found before exec: no exit callback */
	assert_int_equal(t->exit_code, 127);
	assert_string_equal(t->reason, "unsafe-checkpoint-dir");
	assert_non_null(strstr(log_text(f, 12), "'/etc' belongs to uid 0, not to the task's "
				"user"));

	snprintf(made, sizeof(made), "%s/new/deeper", home);
	ok.checkpoint_dir = made;
	t = start(f, &ok);
	run_until_exits(f, 1, 60);
	assert_int_equal(t->exit_code, 0);
	assert_int_equal(stat(made, &st), 0);
	assert_int_equal(st.st_uid, OTHER_UID);
	assert_int_equal(st.st_mode & 07777, 0700);
}

static void gpus_do_not_overlap(void **state)
{
	struct fixture *f = *state;
	Hpq__Resources two = HPQ__RESOURCES__INIT, one = HPQ__RESOURCES__INIT;
	Hpq__RunTask a = shell_task(10, "sleep 0.3"), b, c, d;
	struct task *ta, *tb, *tc, *td;

	two.gpus = 2;
	one.gpus = 1;
	a.resources = &two;
	ta = start(f, &a);
	b = shell_task(11, "sleep 0.3");
	b.resources = &two;
	tb = start(f, &b);
	assert_int_equal(ta->gpus[0], 0);
	assert_int_equal(ta->gpus[1], 1);
	assert_int_equal(tb->gpus[0], 2);
	assert_int_equal(tb->gpus[1], 3);
	/* All four in use: a fifth GPU cannot be given, the task fails to start. */
	c = shell_task(12, "exit 0");
	c.resources = &one;
	tc = start(f, &c);
	assert_true(tc->exited);
	assert_int_equal(tc->exit_code, 127);
	assert_string_equal(tc->reason, "spawn-failed");
	assert_non_null(strstr(log_text(f, 12), "needs 1 GPUs"));
	run_until_exits(f, 2, 60);
	/* Released at exit. */
	d = shell_task(13, "exit 0");
	d.resources = &one;
	td = start(f, &d);
	assert_false(td->exited);
	assert_int_equal(td->gpus[0], 0);
	run_until_exits(f, 1, 60);
}

static void spawn_failures(void **state)
{
	struct fixture *f = *state;
	char *missing[] = {"/nonexistent/bin/trainer", "poison"};
	char *not_in_path[] = {"no-such-command-hpq", "poison"};
	Hpq__RunTask a = shell_task(20, "exit 0"), b, c = shell_task(22, "exit 0"),
		     d = shell_task(23, "exit 0");
	char *bad_env[] = {"NOT-AN-ASSIGNMENT"};
	struct task *t;

	a.argv = missing;
	a.n_argv = 1;
	t = start(f, &a);
	assert_true(t->exited);
	assert_int_equal(t->exit_code, 127);
	assert_string_equal(t->reason, "spawn-failed");
	assert_non_null(strstr(log_text(f, 20), "cannot execute command "
				"'/nonexistent/bin/trainer': No such file or directory"));

	b = shell_task(21, "exit 0");
	b.argv = not_in_path;
	b.n_argv = 1;
	t = start(f, &b);
	assert_int_equal(t->exit_code, 127);
	assert_non_null(strstr(log_text(f, 21), "'no-such-command-hpq'"));

	c.cwd = "/nonexistent/dir";
	t = start(f, &c);
	assert_int_equal(t->exit_code, 127);
	assert_non_null(strstr(log_text(f, 22), "cannot change directory '/nonexistent/dir'"));

	d.env = bad_env;
	d.n_env = 1;
	t = start(f, &d);
	assert_int_equal(t->exit_code, 127);
	assert_non_null(strstr(log_text(f, 23), "invalid environment"));

	/* Empty command. */
	d.task_id = 24;
	d.n_argv = 0;
	d.n_env = 0;
	t = start(f, &d);
	assert_int_equal(t->exit_code, 127);
	assert_non_null(strstr(log_text(f, 24), "empty command"));

	/* The command is looked up in the task's PATH, not the agent's. */
	{
		char *env[] = {"PATH=/nonexistent:/bin"};
		char *sh[] = {"sh", "-c", "exit 4", "poison"};
		Hpq__RunTask e = shell_task(25, "");

		e.argv = sh;
		e.env = env;
		e.n_env = 1;
		t = start(f, &e);
		assert_false(t->exited);
		run_until_exits(f, 1, 60);
		assert_int_equal(t->exit_code, 4);
	}
}

/* An hour's sleep with a 1 s limit: only the limit ends it, politely. */
static void time_limit_stops_task(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r = shell_task(30, "echo started; sleep 3600");
	struct task *t;

	r.time_limit_s = 1;
	r.grace_s = 3600;
	t = start(f, &r);
	run_until_exits(f, 1, 60);
	assert_int_equal(t->exit_code, 128 + SIGTERM);
	assert_string_equal(t->reason, "timeout");
	assert_non_null(strstr(log_text(f, 30), ": exit code 143 (timeout)"));
}

/*
 * A task that ignores SIGTERM (and so do its children: an ignored signal
 * stays ignored across fork and exec) is SIGKILLed, group and all, when
 * the grace period ends: its deadline is the grace from the kill, and
 * since SIGTERM cannot end it, its exit by SIGKILL is the escalation.
 */
static void kill_escalates_after_grace(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r = shell_task(40, "trap '' TERM; sleep 60 & echo child=$!; echo ready; "
					"while :; do sleep 0.1; done");
	struct task *t;
	int64_t before, after;
	char *log, *p;
	pid_t child;

	t = start(f, &r);
	wait_for_log(f, 40, "\nready\n"); /* output, not the header */
	log = log_text(f, 40);
	p = strstr(log, "\nchild="); /* not the command line in the header */
	assert_non_null(p);
	child = (pid_t)atoi(p + 7);
	assert_true(child > 1);

	before = wall_ms();
	exec_kill(&f->ex, t, SIGTERM, 1, "cancelled");
	after = wall_ms();
	assert_string_equal(t->kill_reason, "cancelled");
	assert_false(t->exited);
	assert_true(t->kill_deadline_ms >= before + 1000 && t->kill_deadline_ms <= after + 1000);
	run_until_exits(f, 1, 60);
	assert_int_equal(t->exit_code, 128 + SIGKILL);
	assert_string_equal(t->reason, "cancelled");
	/* The background child went with the group. The SIGKILL is sent; it
	 * is gone once the kernel and libev are done with it: wait for that. */
	wait_gone(f, child, "the background child");
}

static void kill_polite_task_exits_quickly(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r = shell_task(41, "echo ready; exec sleep 3600");
	struct task *t;

	r.preempt_signal = SIGUSR1; /* the task's own stop signal */
	t = start(f, &r);
	wait_for_log(f, 41, "\nready\n");
	wait_exec(t->pid, "sleep"); /* the shell has exec'ed sleep */
	/* An hour's grace: ended by its own signal, not by a SIGKILL. */
	exec_kill(&f->ex, t, 0, 3600, "preempted");
	run_until_exits(f, 1, 60);
	assert_int_equal(t->exit_code, 128 + SIGUSR1);
	assert_string_equal(t->reason, "preempted");
	/* A kill after the exit changes nothing. */
	exec_kill(&f->ex, t, SIGKILL, 0, "stale");
	assert_string_equal(t->reason, "preempted");
}

static void background_processes_killed_at_exit(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r = shell_task(42, "sleep 60 & echo bg=$!; exit 0");
	struct task *t;
	char *p;
	pid_t bg;

	t = start(f, &r);
	run_until_exits(f, 1, 60);
	assert_int_equal(t->exit_code, 0);
	p = strstr(log_text(f, 42), "\nbg=");
	assert_non_null(p);
	bg = (pid_t)atoi(p + 4);
	assert_true(bg > 1);
	wait_gone(f, bg, "the background sleep");
}

static void forget_drops_exited(void **state)
{
	struct fixture *f = *state;
	Hpq__RunTask r = shell_task(43, "exit 0");
	struct task *t = start(f, &r);

	run_until_exits(f, 1, 60);
	exec_forget(&f->ex, t);
	assert_null(task_find(&f->ex.tasks, 43, 1));
}

/* A process in its own session, started "by a previous agent". */
static pid_t spawn_orphan(const char *seconds)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		setsid();
		execl("/bin/sleep", "sleep", seconds, (char *)NULL);
		_exit(127);
	}
	wait_exec(pid, "sleep"); /* in its own session, running sleep */
	return pid;
}

static struct task *journal_record(uint64_t id, pid_t pid)
{
	struct task *t = task_new(id, 1, NULL);
	char st;

	t->pid = pid;
	t->stop_signal = SIGTERM;
	t->grace_s = 1;
	t->start_ms = 1;
	if (exec_proc_stat(pid, &t->proc_start, &st) < 0)
		t->proc_start = 1;
	return t;
}

/* Adopted while it runs; when it ends (here: killed), its status is
 * unknown to the agent, which is not its parent. */
static void adopt_running_then_lost(void **state)
{
	struct fixture *f = *state;
	pid_t pid = spawn_orphan("3600");
	struct task *t = journal_record(50, pid);

	t->gpus = xreallocarray(NULL, 1, sizeof(uint32_t));
	t->gpus[0] = 3;
	t->ngpus = 1;
	exec_adopt(&f->ex, t);
	assert_false(t->exited);
	assert_true(t->adopted);
	assert_true(f->ex.gpu_busy[3]);
	assert_int_equal(kill(pid, SIGKILL), 0);
	run_until_exits(f, 1, 60);
	/* Not our child any more: the status is unknown. */
	assert_int_equal(t->exit_code, -1);
	assert_string_equal(t->reason, "lost");
	assert_false(f->ex.gpu_busy[3]);
}

static void adopt_dead_or_reused_pid(void **state)
{
	struct fixture *f = *state;
	pid_t dead = fork();
	struct task *gone, *reused;

	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	gone = journal_record(51, dead);
	gone->proc_start = 1;
	exec_adopt(&f->ex, gone);
	assert_true(gone->exited);
	assert_int_equal(gone->exit_code, -1);
	assert_string_equal(gone->reason, "lost");

	/* Our own pid with another start time: the pid was reused, not our task. */
	reused = journal_record(52, getpid());
	reused->proc_start += 1;
	exec_adopt(&f->ex, reused);
	assert_true(reused->exited);
	assert_int_equal(f->exits, 0); /* found at adoption: no exit callback */
}

static void adopted_task_killed_with_grace(void **state)
{
	struct fixture *f = *state;
	pid_t pid = spawn_orphan("60");
	struct task *t = journal_record(53, pid);

	exec_adopt(&f->ex, t);
	assert_false(t->exited);
	exec_kill(&f->ex, t, SIGTERM, 1, "stale");
	run_until_exits(f, 1, 60);
	assert_int_equal(t->exit_code, -1);
	assert_string_equal(t->reason, "stale");
}

static void adopted_kill_in_progress_resumes(void **state)
{
	struct fixture *f = *state;
	pid_t pid = fork();
	struct task *t;

	if (pid == 0) {
		/* Ignores SIGTERM: only the resumed SIGKILL deadline ends it. */
		setsid();
		signal(SIGTERM, SIG_IGN);
		execl("/bin/sleep", "sleep", "3600", (char *)NULL);
		_exit(127);
	}
	wait_exec(pid, "sleep"); /* TERM ignored, in its own session */
	t = journal_record(54, pid);
	task_set_reason(t->kill_reason, "preempted");
	t->kill_deadline_ms = wall_ms() + 500;
	ev_now_update(f->loop);
	exec_adopt(&f->ex, t);
	assert_false(t->exited);
	run_until_exits(f, 1, 60);
	assert_string_equal(t->reason, "preempted");
}

static void exit_code_rule(void **state)
{
	assert_int_equal(exec_exit_code(0), 0);
	assert_int_equal(exec_exit_code(3 << 8), 3);
	assert_int_equal(exec_exit_code(255 << 8), 255);
	assert_int_equal(exec_exit_code(SIGKILL), 137);
	assert_int_equal(exec_exit_code(SIGSEGV | 0x80), 128 + SIGSEGV); /* core dumped */
}

static char *read_file(const char *path)
{
	static char buf[16384];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/*
 * Batch tasks (batch.h): the script's copy runs with the arguments (under
 * /bin/sh without "#!"), stdout and stderr go to the expanded pattern
 * files, made relative to the working directory and owned by the task's
 * user, the log names them and keeps hpq's lines; a later attempt writes
 * the copy again and appends; an output file that cannot be opened fails
 * the start; the copy goes when the attempt is forgotten.
 */
static void batch_script_and_output(void **state)
{
	struct fixture *f = *state;
	char *args[] = {"/home/someone/job.sh", "a b", "c", "poison"};
	static const char plain[] = "echo \"args:$1|$2|$#\"\necho to-stderr >&2\n";
	static const char bang[] = "#!/bin/sh\necho out-$HPQ_TASK_ID\necho err-$1 >&2\n";
	Hpq__RunTask a = shell_task(60, "unused"), b = shell_task(61, "unused"),
		     c = shell_task(62, "unused");
	char path[256], *text;
	struct task *t;
	struct stat st;

	a.argv = args;
	a.n_argv = 3;
	a.name = "nm";
	a.cwd = f->dir;
	a.script.data = (uint8_t *)plain;
	a.script.len = sizeof(plain) - 1;
	a.output = "%j-%x.out";
	t = start(f, &a);
	run_until_exits(f, 1, 30);
	assert_int_equal(t->exit_code, 0);
	snprintf(path, sizeof(path), "%s/60-nm.out", f->dir);
	text = read_file(path);
	assert_non_null(text);
	assert_non_null(strstr(text, "args:a b|c|2\n"));
	assert_non_null(strstr(text, "to-stderr\n"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, getuid());
	text = log_text(f, 60);
	assert_non_null(strstr(text, "/home/someone/job.sh"));
	assert_non_null(strstr(text, "output and errors go to"));
	assert_null(strstr(text, "args:"));
	snprintf(path, sizeof(path), "%s/scripts/60.1", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	exec_forget(&f->ex, t);
	assert_int_equal(stat(path, &st), -1);

	/* A later attempt (after a preemption, say) writes the copy afresh
	 * and appends to the same file. */
	a.attempt = 2;
	t = start(f, &a);
	run_until_exits(f, 1, 30);
	assert_int_equal(t->exit_code, 0);
	snprintf(path, sizeof(path), "%s/60-nm.out", f->dir);
	text = read_file(path);
	assert_non_null(text);
	assert_non_null(strstr(strstr(text, "args:a b|c|2\n") + 1, "args:a b|c|2\n"));
	snprintf(path, sizeof(path), "%s/scripts/60.2", f->dir);
	assert_int_equal(stat(path, &st), 0);

	/* With "#!" and an error file of its own, named absolutely. */
	b.argv = args;
	b.n_argv = 2;
	b.cwd = f->dir;
	b.script.data = (uint8_t *)bang;
	b.script.len = sizeof(bang) - 1;
	b.output = "o-%j";
	snprintf(path, sizeof(path), "%s/e-%%j", f->dir);
	b.error = path;
	t = start(f, &b);
	run_until_exits(f, 1, 30);
	assert_int_equal(t->exit_code, 0);
	snprintf(path, sizeof(path), "%s/o-61", f->dir);
	text = read_file(path);
	assert_non_null(text);
	assert_string_equal(text, "out-61\n");
	snprintf(path, sizeof(path), "%s/e-61", f->dir);
	text = read_file(path);
	assert_non_null(text);
	assert_string_equal(text, "err-a b\n");

	/* A file that cannot be opened: no start, and the log says why. */
	c.cwd = f->dir;
	c.output = "no-such-dir/%j.out";
	t = start(f, &c);
	assert_true(t->exited);
	assert_int_equal(t->exit_code, 127);
	assert_string_equal(t->reason, "spawn-failed");
	assert_non_null(strstr(log_text(f, 62), "cannot open the output file"));
	assert_non_null(strstr(log_text(f, 62), "no-such-dir/62.out"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(exit_codes),
		T(signals_reset_and_agent_untouched),
		T(same_attempt_twice_refused),
		T(burst_started_together),
		T(log_file_and_environment),
		T(log_file_never_reused),
		T(root_task_refused),
		T(checkpoint_dir_rules),
		T(gpus_do_not_overlap),
		T(spawn_failures),
		T(batch_script_and_output),
		T(time_limit_stops_task),
		T(kill_escalates_after_grace),
		T(kill_polite_task_exits_quickly),
		T(background_processes_killed_at_exit),
		T(forget_drops_exited),
		T(adopt_running_then_lost),
		T(adopt_dead_or_reused_pid),
		T(adopted_task_killed_with_grace),
		T(adopted_kill_in_progress_resumes),
		cmocka_unit_test(exit_code_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
