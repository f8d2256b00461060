/*
 * supervisor.c: hpq-supervisor, the small process that stays with one
 * attempt of a task, in the manner of slurmstepd or containerd's shim.
 * It is internal to hpq-agent, which starts it as
 *
 *	hpq-supervisor ATTEMPT_DIR TASK_PID STOP_SIGNAL GRACE_MS
 *
 * after forking the task from it (exec.c): the task is already its child,
 * set up by the agent's code (user, groups, cwd, environment, log file),
 * and this program, exec'ed afresh, carries none of the agent's memory.
 * It runs in its own session, so it outlives the agent (whose unit stops
 * its main process only), and it uses libc alone: no event loop, no heap
 * to speak of, a few hundred KiB resident.
 *
 * It does three things, with the files of ATTEMPT_DIR (the agent's, in
 * its work directory):
 *
 *  - waits for the task and records how it ended in "status", durably
 *    (written to a temporary file, fsync'ed, renamed, directory
 *    fsync'ed), then exits; on a full or failing disk it keeps trying
 *    every second and stays until it has. The agent reads that file when this process
 *    is gone, whether it is still the parent (ev_child) or an agent
 *    restarted meanwhile (it polls /proc), so the real exit code and
 *    signal of a task are known across agent restarts. Format:
 *
 *	hpq-supervisor-status 1
 *	pid=1234 code=0 end=1700000000000 reason=exit
 *
 *    code is the exit status, or 128 + the signal; reason is exit,
 *    signal, or the reason of the kill it was asked for.
 *
 *  - stops the task when asked: the agent writes "control" (atomically:
 *    a temporary file renamed over it) as one line
 *
 *	kill SIGNO GRACE_MS REASON
 *
 *    and sends this process SIGUSR1. It sends SIGNO (and SIGCONT) to the
 *    task's process group, and SIGKILL to the group GRACE_MS later, again
 *    every 5 s until the task is gone. A second request only brings the
 *    deadline forward, as exec_kill does. The escalation happens here,
 *    so an agent killed or restarted meanwhile loses nothing.
 *
 *  - fences the task: when its node's lease from hpqd has run out (the
 *    agent could not renew it, or the agent itself is stopped or gone),
 *    it stops the task with its STOP_SIGNAL, reason "fenced", and kills it
 *    GRACE_MS later, but no later than fence_after after the lease's end.
 *    The lease is the file "lease" next to the attempt directories (the
 *    agent keeps it, agent.c): "UNTIL FENCE UNTIL FENCE", the end on
 *    CLOCK_BOOTTIME and hpqd's fence_after, in ms; a read whose two copies
 *    differ was torn and is tried again. No file: no fencing. It is read
 *    every SUP_LEASE_CHECK_MS, which hpqd's margin covers (hpqd(8)).
 *
 * When the task's main process ends, whatever it left in its process
 * group is killed, as the agent did before this program existed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUP_REASON_MAX 32
#define SUP_REPEAT_KILL_MS 5000
#define SUP_LEASE_CHECK_MS 500

static const char *sup_dir;
static pid_t sup_task;
static int sup_stop_signal;
static long long sup_grace_ms;

/* Stopping. */
static int stopping;
static long long kill_deadline;          /* CLOCK_BOOTTIME ms */
static char kill_reason[SUP_REASON_MAX];

static long long sup_now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sup_warn(const char *what)
{
	fprintf(stderr, "hpq-supervisor[%ld]: %s: %s\n", (long)getpid(), sup_dir, what);
}

static int sup_reason_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < SUP_REASON_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static void sup_signal(int signo)
{
	if (kill(-sup_task, signo) < 0 && errno == ESRCH)
		(void)kill(sup_task, signo); /* the leader left its group */
}

/* A stop: the first one signals, later ones can only hurry the SIGKILL. */
static void sup_stop(int signo, long long grace_ms, const char *reason)
{
	long long deadline = sup_now_ms(CLOCK_BOOTTIME) + (grace_ms > 0 ? grace_ms : 0);

	if (signo == SIGKILL)
		deadline = sup_now_ms(CLOCK_BOOTTIME);
	if (stopping) {
		if (deadline < kill_deadline)
			kill_deadline = deadline;
		return;
	}
	stopping = 1;
	kill_deadline = deadline;
	snprintf(kill_reason, sizeof(kill_reason), "%s", sup_reason_ok(reason) ? reason : "killed");
	sup_signal(signo);
	if (signo != SIGKILL && signo != SIGCONT)
		sup_signal(SIGCONT);
}

/* Reads a small file whole into buf (NUL-terminated). */
static int sup_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

static void sup_control(void)
{
	char path[PATH_MAX], buf[256], reason[SUP_REASON_MAX];
	long long grace;
	int signo;

	snprintf(path, sizeof(path), "%s/control", sup_dir);
	if (sup_read(path, buf, sizeof(buf)) < 0)
		return;
	if (sscanf(buf, "kill %d %lld %31s", &signo, &grace, reason) != 3 || signo <= 0 ||
	    signo >= NSIG || grace < 0) {
		sup_warn("ignoring a malformed control file");
		return;
	}
	sup_stop(signo, grace, reason);
}

/* Stops the task once the node's lease has run out. */
static void sup_lease(void)
{
	char path[PATH_MAX], buf[256];
	long long until, fence, until2, fence2;

	snprintf(path, sizeof(path), "%s/../lease", sup_dir);
	if (sup_read(path, buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%lld %lld %lld %lld", &until, &fence, &until2, &fence2) != 4 ||
	    until != until2 || fence != fence2 || until <= 0 || fence <= 0)
		return; /* no lease kept, or a torn read: next time */
	if (sup_now_ms(CLOCK_BOOTTIME) < until || stopping)
		return;
	sup_warn("the node's lease from hpqd ran out: stopping the task");
	sup_stop(sup_stop_signal, sup_grace_ms < fence ? sup_grace_ms : fence, "fenced");
}

static int sup_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

static int sup_record(int status)
{
	char tmp[PATH_MAX], path[PATH_MAX], buf[256];
	const char *reason;
	int code, fd, n;
	struct timespec ts;

	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	reason = stopping ? kill_reason : WIFSIGNALED(status) ? "signal" : "exit";
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(buf, sizeof(buf), "hpq-supervisor-status 1\npid=%ld code=%d end=%lld "
		     "reason=%s\n", (long)sup_task, code,
		     (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, reason);
	snprintf(tmp, sizeof(tmp), "%s/status.tmp", sup_dir);
	snprintf(path, sizeof(path), "%s/status", sup_dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, buf, (size_t)n) != n || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return sup_sync_dir(sup_dir);
}

int main(int argc, char **argv)
{
	sigset_t set;
	siginfo_t si;
	char *end;
	long pid;
	int status = 0;

	if (argc != 5 || argv[1][0] != '/') {
		fprintf(stderr, "usage: hpq-supervisor ATTEMPT_DIR TASK_PID STOP_SIGNAL GRACE_MS "
			"(started by hpq-agent, not by hand)\n");
		return 2;
	}
	errno = 0;
	pid = strtol(argv[2], &end, 10);
	if (errno || *end || pid <= 1) {
		fprintf(stderr, "hpq-supervisor: invalid task pid '%s'\n", argv[2]);
		return 2;
	}
	sup_stop_signal = (int)strtol(argv[3], &end, 10);
	if (*end || sup_stop_signal <= 0 || sup_stop_signal >= NSIG) {
		fprintf(stderr, "hpq-supervisor: invalid signal '%s'\n", argv[3]);
		return 2;
	}
	sup_grace_ms = strtoll(argv[4], &end, 10);
	if (*end || sup_grace_ms < 0) {
		fprintf(stderr, "hpq-supervisor: invalid grace '%s'\n", argv[4]);
		return 2;
	}
	sup_dir = argv[1];
	sup_task = (pid_t)pid;
	if (chdir("/") < 0) {
		/* stays where the agent was: harmless */
	}

	/* The agent blocked these before exec, so that none is lost or fatal. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);

	sup_control(); /* a request written before we were ready */
	for (;;) {
		long long now, wait_ms = SUP_LEASE_CHECK_MS;
		struct timespec ts;
		int r;

		/* Ended but not reaped (WNOWAIT): its pid, hence its group's id,
		 * stays reserved until the group is killed below. */
		si.si_pid = 0;
		r = waitid(P_PID, (id_t)sup_task, &si, WEXITED | WNOHANG | WNOWAIT);
		if (r == 0 && si.si_pid == sup_task)
			break;
		if (r < 0 && errno == ECHILD) {
			sup_warn("the task is not this process's child");
			return 1;
		}
		sup_lease();
		if (stopping) {
			now = sup_now_ms(CLOCK_BOOTTIME);
			if (now >= kill_deadline) {
				sup_signal(SIGKILL);
				kill_deadline = now + SUP_REPEAT_KILL_MS;
			}
			if (kill_deadline - now < wait_ms)
				wait_ms = kill_deadline - now;
		}
		/* Asleep until the task ends, a request comes, the kill or the
		 * next look at the lease. */
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (wait_ms % 1000) * 1000000;
		if (sigtimedwait(&set, &si, &ts) == SIGUSR1)
			sup_control();
	}
	/* Whatever the task left behind in its group goes with it, while the
	 * leader's zombie keeps the group's id from being handed out again;
	 * only then is it reaped. */
	(void)kill(-sup_task, SIGKILL);
	while (waitpid(sup_task, &status, 0) < 0 && errno == EINTR)
		;
	/* No exit without a record: on a full or failing disk the outcome is
	 * kept here, and this process stays (the agent sees it alive, so the
	 * task as not yet ended) until the record is written. */
	for (int tries = 0; sup_record(status) < 0; tries++) {
		if (tries % 60 == 0)
			sup_warn("cannot record the task's exit yet; trying again every second");
		sleep(1);
	}
	return 0;
}
