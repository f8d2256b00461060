/*
 * test_agent_supervisor.c: exec.c with hpq-supervisor (cfg.supervisor set),
 * which test_agent_exec.c does not cover.
 *
 * - spawn_failure_with_full_work_dir: the start record fits in the work
 *   directory but the supervisor's status file does not (a tmpfs with one
 *   inode too few); the task's command does not exist. exec_start must
 *   come back with the task failed (127, spawn-failed), not wait for a
 *   supervisor that waits for room on the disk. Needs root (mount).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
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

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_exit_cb(struct exec *ex, struct task *t)
{
}

/* Kills every hpq-supervisor whose attempt directory is under dir. */
static void kill_supervisors_under(const char *dir)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[300], buf[4096];
		ssize_t n;
		int fd;
		long pid = strtol(e->d_name, NULL, 10);

		if (pid <= 1 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* argv[0] "hpq-supervisor", argv[1] the attempt directory */
		if (!strcmp(buf, "hpq-supervisor") && (size_t)n > strlen(buf) + 1 &&
		    !strncmp(buf + strlen(buf) + 1, dir, strlen(dir)))
			kill((pid_t)pid, SIGKILL);
	}
	closedir(d);
}

static void spawn_failure_with_full_work_dir(void **state)
{
	char dir[] = "/tmp/test_agent_supervisor.XXXXXX", self[PATH_MAX], sup[PATH_MAX + 64];
	char *argv[] = {"no-such-command-hpq", "poison"};
	ssize_t n;
	pid_t child;
	int status = 0;
	double until;
	bool done = false;

	(void)state;
	if (geteuid() != 0)
		skip();
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	snprintf(sup, sizeof(sup), "%s/../../agent/hpq-supervisor", dirname(self));
	if (access(sup, X_OK) < 0)
		skip();
	assert_non_null(mkdtemp(dir));
	/* 7 inodes: the root, run/, run/1.1/, run/1.1/start, logs/,
	 * logs/CLUSTER/ and the log file; none left for the status. */
	if (mount("tmpfs", dir, "tmpfs", 0, "size=1m,nr_inodes=7,mode=0755") < 0) {
		rmdir(dir);
		skip();
	}

	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct exec ex;
		struct exec_config cfg = {0};
		Hpq__RunTask rt = HPQ__RUN_TASK__INIT;
		struct task *t = NULL;

		cfg.work_dir = dir;
		cfg.node_name = "testnode";
		cfg.allow_root_tasks = true;
		cfg.supervisor = sup;
		exec_init(&ex, ev_default_loop(0), &cfg, on_exit_cb, NULL);
		rt.task_id = 1;
		rt.attempt = 1;
		rt.argv = argv;
		rt.n_argv = 1;
		rt.uid = getuid();
		rt.gid = getgid();
		rt.cluster_id = CLUSTER;
		if (exec_start(&ex, &rt, &t) != 0 || !t || !t->exited || t->exit_code != 127)
			_exit(3);
		/* The start record was made: the failure is the command's. */
		_exit(strcmp(t->reason, "spawn-failed") == 0 ? 0 : 4);
	}
	/* A deadline against hanging (a start takes milliseconds), not a
	 * measurement. */
	until = now() + 30;
	while (now() < until) {
		pid_t r = waitpid(child, &status, WNOHANG);

		if (r == child) {
			done = true;
			break;
		}
		usleep(20000);
	}
	if (!done) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
	}
	kill_supervisors_under(dir);
	while (umount2(dir, MNT_DETACH) < 0 && errno == EINTR)
		;
	rmdir(dir);
	if (!done)
		fail_msg("exec_start did not return within 30 s: the agent waits for a "
			 "supervisor that cannot record the failed start");
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spawn_failure_with_full_work_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
