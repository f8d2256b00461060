/*
 * test_agent_health_script.c: admin health scripts, for real, on the
 * agent's loop. Exit 0 is healthy, 1 a warning, 2 fatal, with the first
 * line as the reason (and an optional category) and the second as the
 * message; a script that hangs is killed with everything it started
 * within the timeout and reported; one that leaves a background process
 * behind does not look hung; unsafe and hidden files are not run; a
 * removed script takes its finding along. Also the probe underneath:
 * output capture and its limit, and forked bodies.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "clock.h"
#include "error.h"
#include "health.h"
#include "monitor.h"
#include "probe.h"
#include "xalloc.h"

#define EXIT(n) ((n) << 8)

struct fixture {
	struct ev_loop *loop;
	struct health h;
	bool started;
	char dir[64];
	char scripts[96];
	int changes;
};

static void on_change(struct health *h, void *data)
{
	((struct fixture *)data)->changes++;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	/* Orphans of the scripts come back to us to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	strcpy(f->dir, "/tmp/test_agent_health_script.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->scripts, sizeof(f->scripts), "%s/health.d", f->dir);
	assert_int_equal(mkdir(f->scripts, 0755), 0);
	f->loop = ev_default_loop(0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	if (f->started)
		health_release(&f->h);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void start(struct fixture *f, double timeout)
{
	static const struct monitor *const table[] = {&monitor_script, NULL};
	struct health_config cfg;

	health_config_init(&cfg);
	cfg.script_dir = f->scripts;
	cfg.timeout = timeout;
	cfg.interval = 3600; /* rounds are run by hand */
	health_init(&f->h, f->loop, &cfg, table, on_change, f);
	f->started = true;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

/* Runs the loop until `want` findings are published, or limit seconds. */
static bool wait_findings(struct fixture *f, size_t want, double limit)
{
	double end = hpq_mono_s() + limit;
	ev_timer tick;

	ev_timer_init(&tick, tick_cb, 0.02, 0.02);
	ev_timer_start(f->loop, &tick);
	while (f->h.nfindings != want && hpq_mono_s() < end)
		ev_run(f->loop, EVRUN_ONCE);
	ev_timer_stop(f->loop, &tick);
	return f->h.nfindings == want;
}

static void spin(struct fixture *f, double secs)
{
	(void)wait_findings(f, 9999, secs);
}

static void script(struct fixture *f, const char *name, const char *body, mode_t mode)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->scripts, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void exit_codes_and_reasons(void **state)
{
	struct fixture *f = *state;
	const Hpq__Finding *x;

	script(f, "ok", "#!/bin/sh\necho all good\nexit 0\n", 0755);
	script(f, "warn", "#!/bin/sh\necho '  disk-slow  '\nexit 1\n", 0755);
	script(f, "fatal", "#!/bin/sh\necho 'accelerator: gpu-gone'\necho 'GPU 2 is missing'\n"
			   "echo 'more detail'\nexit 2\n", 0755);
	script(f, "quiet", "#!/bin/sh\nexit 2\n", 0755);
	script(f, "odd", "#!/bin/sh\necho something odd\nexit 7\n", 0755);
	script(f, "notacat", "#!/bin/sh\necho 'eth0: link flapping'\nexit 1\n", 0755);
	script(f, "README", "not a script\n", 0644);
	start(f, 10);
	health_run(&f->h);
	assert_true(wait_findings(f, 5, 10));

	x = health_find(&f->h, "runtime", "disk-slow");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_string_equal(x->message, "health script 'warn': disk-slow");
	x = health_find(&f->h, "accelerator", "gpu-gone");
	assert_non_null(x);
	assert_string_equal(x->severity, "fatal");
	assert_string_equal(x->message, "health script 'fatal': GPU 2 is missing");
	x = health_find(&f->h, "runtime", "health-script-failed");
	assert_non_null(x);
	assert_string_equal(x->severity, "fatal");
	assert_string_equal(x->message, "health script 'quiet' exited 2 without a reason");
	x = health_find(&f->h, "runtime", "health-script-error");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_string_equal(x->message, "health script 'odd' exited 7: something odd");
	/* "eth0" is no category: the whole line is the reason. */
	assert_non_null(health_find(&f->h, "runtime", "eth0: link flapping"));

	/* Fixed: its finding goes at the next round. */
	script(f, "fatal", "#!/bin/sh\nexit 0\n", 0755);
	health_run(&f->h);
	assert_true(wait_findings(f, 4, 10));
	assert_null(health_find(&f->h, "accelerator", "gpu-gone"));
}

static void hung_script_is_killed_in_time(void **state)
{
	struct fixture *f = *state;
	char pids[128], body[512], line[64];
	const Hpq__Finding *x;
	double t0, took;
	FILE *fp;
	int child = 0;

	snprintf(pids, sizeof(pids), "%s/child.pid", f->dir);
	/* A child that would outlive the script, unless its session is killed. */
	snprintf(body, sizeof(body), "#!/bin/sh\nsleep 300 &\necho $! > %s\nwait\n", pids);
	script(f, "hang", body, 0755);
	start(f, 1.0);
	t0 = hpq_mono_s();
	health_run(&f->h);
	assert_true(wait_findings(f, 1, 10));
	took = hpq_mono_s() - t0;
	assert_true(took >= 0.9 && took < 3.0);
	x = health_find(&f->h, "runtime", "health-script-timeout");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_non_null(strstr(x->message, "'hang' did not finish within 1 s"));

	fp = fopen(pids, "re");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	child = atoi(line);
	assert_true(child > 1);
	/* Its child went with it (reaped by us, the subreaper, or gone already). */
	for (int i = 0; i < 100 && kill(child, 0) == 0; i++) {
		(void)waitpid(child, NULL, WNOHANG);
		usleep(20000);
	}
	assert_int_equal(kill(child, 0), -1);
	assert_int_equal(errno, ESRCH);

	/* Each round runs it again, and it is reported again. */
	health_run(&f->h);
	spin(f, 1.5);
	assert_non_null(health_find(&f->h, "runtime", "health-script-timeout"));
}

static void background_child_does_not_look_hung(void **state)
{
	struct fixture *f = *state;
	char pids[128], body[256], line[64];
	const Hpq__Finding *x;
	double t0;
	FILE *fp;
	int child;

	snprintf(pids, sizeof(pids), "%s/child.pid", f->dir);
	snprintf(body, sizeof(body), "#!/bin/sh\nsleep 300 &\necho $! > %s\necho nfs-slow\n"
		 "exit 1\n", pids);
	script(f, "bg", body, 0755);
	start(f, 20);
	t0 = hpq_mono_s();
	health_run(&f->h);
	assert_true(wait_findings(f, 1, 10));
	assert_true(hpq_mono_s() - t0 < 5);
	x = health_find(&f->h, "runtime", "nfs-slow");
	assert_non_null(x);

	/* What it left running went with it. */
	fp = fopen(pids, "re");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	child = atoi(line);
	assert_true(child > 1);
	for (int i = 0; i < 100 && kill(child, 0) == 0; i++) {
		(void)waitpid(child, NULL, WNOHANG);
		usleep(20000);
	}
	assert_int_equal(kill(child, 0), -1);
}

static void unsafe_and_hidden_files_are_not_run(void **state)
{
	struct fixture *f = *state;
	char marker[128], body[256];
	const Hpq__Finding *x;

	snprintf(marker, sizeof(marker), "%s/ran", f->dir);
	snprintf(body, sizeof(body), "#!/bin/sh\ntouch %s\nexit 2\n", marker);
	script(f, "open-to-all", body, 0777);
	script(f, ".hidden", body, 0755);
	script(f, "backup~", body, 0755);
	script(f, "old.dpkg-old", body, 0755);
	start(f, 10);
	health_run(&f->h);
	assert_true(wait_findings(f, 1, 5));
	x = health_find(&f->h, "agent", "health-script-unsafe");
	assert_non_null(x);
	assert_non_null(strstr(x->message, "'open-to-all'"));
	spin(f, 0.5);
	assert_int_equal(access(marker, F_OK), -1);

	/* A directory others can write to: nothing in it runs. */
	script(f, "open-to-all", body, 0755);
	assert_int_equal(chmod(f->scripts, 0777), 0);
	health_run(&f->h);
	spin(f, 0.5);
	x = health_find(&f->h, "agent", "health-script-unsafe");
	assert_non_null(x);
	assert_non_null(strstr(x->message, "directory"));
	assert_int_equal(access(marker, F_OK), -1);
}

static void removed_script_takes_its_finding(void **state)
{
	struct fixture *f = *state;
	char path[160];

	script(f, "a", "#!/bin/sh\necho reason-a\nexit 1\n", 0755);
	script(f, "b", "#!/bin/sh\necho reason-b\nexit 2\n", 0755);
	start(f, 10);
	health_run(&f->h);
	assert_true(wait_findings(f, 2, 10));
	snprintf(path, sizeof(path), "%s/b", f->scripts);
	assert_int_equal(unlink(path), 0);
	f->changes = 0;
	health_run(&f->h);
	assert_int_equal(f->h.nfindings, 1); /* at once, before any script ran */
	assert_int_equal(f->changes, 1);
	assert_non_null(health_find(&f->h, "runtime", "reason-a"));
	spin(f, 0.5);
	assert_int_equal(f->h.nfindings, 1);
}

static void missing_directory_is_said(void **state)
{
	struct fixture *f = *state;
	const Hpq__Finding *x;

	assert_int_equal(rmdir(f->scripts), 0);
	start(f, 10);
	health_run(&f->h);
	x = health_find(&f->h, "agent", "health-dir-unreadable");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_int_equal(mkdir(f->scripts, 0755), 0);
	health_run(&f->h);
	assert_int_equal(f->h.nfindings, 0);
}

static void result_rules(void **state)
{
	struct health h;
	struct health_config cfg;
	struct health_source *s;

	health_config_init(&cfg);
	health_init(&h, ev_default_loop(0), &cfg, NULL, NULL, NULL);
	s = health_source_new(&h, "t");
	monitor_script_result(s, "x", false, 30, SIGKILL, "");           /* killed by a signal */
	health_done(s);
	assert_non_null(strstr(health_find(&h, "runtime", "health-script-error")->message,
			       "signal 9"));
	/* A category, and no reason. */
	monitor_script_result(s, "x", false, 30, EXIT(1), "kernel:   \n");
	health_done(s);
	assert_non_null(health_find(&h, "kernel", "health-script-failed"));
	monitor_script_result(s, "x", false, 30, EXIT(1), "storage: raid-degraded\r\n");
	health_done(s);
	assert_string_equal(health_find(&h, "storage", "raid-degraded")->message,
			    "health script 'x': raid-degraded");
	monitor_script_result(s, "x", false, 30, EXIT(0), "storage: ignored\n");
	health_done(s);
	assert_int_equal(h.nfindings, 0);
	health_release(&h);
}

/* ------------------------------------------------------------ probe */

struct probe_run {
	struct probe p;
	int done;
};

static void probe_done_cb(struct probe *p)
{
	struct probe_run *r = p->data;

	r->done++;
	ev_break(p->loop, EVBREAK_ALL);
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void run_probe(struct probe_run *r)
{
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, 10.0, 0.0);
	ev_timer_start(r->p.loop, &guard);
	ev_run(r->p.loop, 0);
	ev_timer_stop(r->p.loop, &guard);
	assert_int_equal(r->done, 1);
}

static int body_writes(int fd, void *arg)
{
	dprintf(fd, "from the child: %s\n", (const char *)arg);
	return 3;
}

static void probe_output_and_status(void **state)
{
	struct probe_run r = {0};
	char *argv_big[] = {"/bin/sh", "-c", "yes 0123456789 | head -c 100000; exit 4", NULL};
	char *argv_missing[] = {"/nonexistent/tool", NULL};
	char line[64];

	probe_init(&r.p, ev_default_loop(0), 1000, probe_done_cb, &r);
	assert_int_equal(probe_spawn(&r.p, argv_big, 10), 0);
	assert_true(probe_busy(&r.p));
	assert_int_equal(probe_spawn(&r.p, argv_big, 10), HPQ_EBUSY);
	run_probe(&r);
	assert_false(probe_busy(&r.p));
	assert_false(r.p.timed_out);
	assert_true(WIFEXITED(r.p.status));
	assert_int_equal(WEXITSTATUS(r.p.status), 4);
	assert_int_equal(r.p.out_len, 1000);      /* kept, the rest read and dropped */
	assert_int_equal(strlen(r.p.out), 1000);
	probe_first_line(&r.p, line, sizeof(line));
	assert_string_equal(line, "0123456789");

	r.done = 0;
	assert_int_equal(probe_spawn(&r.p, argv_missing, 10), 0);
	run_probe(&r);
	assert_int_equal(WEXITSTATUS(r.p.status), 127);
	probe_first_line(&r.p, line, sizeof(line));
	assert_string_equal(line, "cannot execute '/nonexistent/tool': No such file or directory");

	r.done = 0;
	assert_int_equal(probe_fork(&r.p, body_writes, "hello", 10), 0);
	run_probe(&r);
	assert_int_equal(WEXITSTATUS(r.p.status), 3);
	assert_string_equal(r.p.out, "from the child: hello\n");
	probe_release(&r.p);

	{
		char *found = probe_which("sh");

		assert_non_null(found);
		assert_int_equal(access(found, X_OK), 0);
		free(found);
		assert_null(probe_which("no-such-tool-hpq"));
	}
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(exit_codes_and_reasons),
		T(hung_script_is_killed_in_time),
		T(background_child_does_not_look_hung),
		T(unsafe_and_hidden_files_are_not_run),
		T(removed_script_takes_its_finding),
		T(missing_directory_is_said),
		cmocka_unit_test(result_rules),
		cmocka_unit_test(probe_output_and_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
