/*
 * exec.c: starting and supervising task processes (see exec.h for the
 * contract).
 *
 * Starting. Everything that can fail for a reason worth telling the user
 * is worked out in the parent before fork (identity and groups from the
 * password database, GPUs, environment, log file), because the child
 * after fork should do as little as possible. The child then only
 * becomes a session leader, points its output at the log, drops to the
 * task's user (its groups too, as initgroups would set them), reaches its
 * checkpoint directory under the rule of safepath.h, changes directory
 * and execs. Paths the user names are thus only ever touched with the
 * user's rights. It reports a failure through
 * a close-on-exec pipe: the parent reads the pipe until EOF, which comes
 * at once when exec succeeds (the kernel closes it) or with the stage and
 * errno when something failed. That read is the only wait at start, and
 * it lasts as long as a fork+exec.
 *
 * The command is looked up in the task's own PATH, not the agent's, and
 * with the task's permissions, so the child does the search itself after
 * dropping privileges (execvpe would use the agent's PATH).
 *
 * Stopping. A kill sends the stop signal (and SIGCONT, so a stopped group
 * can act on it) to the process group, then SIGKILL to the group when the
 * grace period ends. A task's group is its pid: the kernel does not hand
 * out a pid while a group of that id exists, so signalling -pid reaches
 * the task's processes only. For adopted tasks the leader's start time
 * is checked before every signal; once the leader is gone the group is
 * left alone, because its id could belong to someone else.
 *
 * Supervised (exec.h). The fork above happens in a process that first
 * makes itself a session leader and then execs hpq-supervisor, so the
 * task's setup code is this file's, unchanged, and the supervisor keeps
 * nothing of the agent. That process reports the task's pid through the
 * same pipe before its exec. Kills become requests to the supervisor; the
 * agent's own kill timer stays as a backstop, and when the control file
 * cannot be written the agent signals the group itself, as before.
 *
 * The "fork" is clone(2) with CLONE_VM | CLONE_VFORK, as posix_spawn does
 * it (exec_clone): the child runs on a stack of its own in the agent's
 * memory (a buffer in the caller's frame) while the agent waits, until it execs or exits. A real fork
 * copied the agent's page tables, twice per supervised task, and the
 * copies were torn down again by the exec, with copy-on-write faults in
 * the agent meanwhile: most of the agent's CPU time per start. Sharing
 * the memory asks of the child code what async-signal safety asks
 * already (no allocation, no stdio), and also: every signal blocked until
 * the dispositions are reset (a handler would run on the agent's data),
 * and ids changed by raw system calls (glibc's wrappers would, in a
 * process it believes threaded, have the agent's threads change theirs).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "batch.h"
#include "cgroup.h"
#include "clock.h"
#include "error.h"
#include "escape.h"
#include "exec.h"
#include "log.h"
#include "path.h"
#include "safepath.h"
#include "xalloc.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Variables the agent sets itself; the submitted values are dropped. */
static const char *const exec_managed_vars[] = {
	"HPQ_TASK_ID", "HPQ_ATTEMPT", "HPQ_CHECKPOINT_DIR", "HPQ_RESUME_FROM", "HPQ_RESUME_STEP",
	"HPQ_NODE_RANK", "HPQ_NNODES", "HPQ_MASTER_ADDR", "HPQ_MASTER_PORT",
	"CUDA_VISIBLE_DEVICES", "HPQ_AGENT_SOCKET", NULL,
};

#define EXEC_USER_PATH "/usr/local/bin:/usr/bin:/bin"
#define EXEC_ROOT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ------------------------------------------------------------ environment */

struct strv {
	char **v;
	size_t n, cap;
};

static void strv_push(struct strv *sv, char *s)
{
	if (sv->n + 2 > sv->cap) {
		sv->cap = sv->cap ? 2 * sv->cap : 32;
		sv->v = xreallocarray(sv->v, sv->cap, sizeof(*sv->v));
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

static void strv_pushf(struct strv *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void strv_pushf(struct strv *sv, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	xvasprintf(&s, fmt, ap);
	va_end(ap);
	strv_push(sv, s);
}

static bool exec_var_managed(const char *entry, bool slurm_env)
{
	size_t n = strcspn(entry, "=");

	if (batch_env_managed(entry, slurm_env))
		return true;
	for (int i = 0; exec_managed_vars[i]; i++)
		if (strlen(exec_managed_vars[i]) == n && strncmp(entry, exec_managed_vars[i], n) == 0)
			return true;
	return false;
}

static void exec_env_add(void *arg, char *entry)
{
	strv_push(arg, entry);
}

void exec_env_free(char **env)
{
	if (!env)
		return;
	for (char **e = env; *e; e++)
		free(*e);
	free(env);
}

int exec_env_build(const Hpq__RunTask *rt, const struct exec_ident *ident, const uint32_t *gpus,
		   uint32_t ngpus, const char *agent_socket, char ***ret_env)
{
	struct strv sv = {NULL, 0, 0};
	char *cvd;
	size_t len = 0;

	strv_push(&sv, NULL); /* never return NULL for an empty list */
	sv.n = 0;
	if (rt->n_env > 0) {
		for (size_t i = 0; i < rt->n_env; i++) {
			const char *e = rt->env[i];
			const char *eq = e ? strchr(e, '=') : NULL;

			if (!eq || eq == e) {
				exec_env_free(sv.v);
				return HPQ_EINVAL;
			}
			if (!exec_var_managed(e, rt->slurm_env))
				strv_push(&sv, xstrdup(e));
		}
	} else {
		strv_pushf(&sv, "HOME=%s", ident->home);
		strv_pushf(&sv, "USER=%s", ident->user);
		strv_pushf(&sv, "LOGNAME=%s", ident->user);
		strv_pushf(&sv, "SHELL=%s", ident->shell);
		strv_pushf(&sv, "PATH=%s", ident->uid == 0 ? EXEC_ROOT_PATH : EXEC_USER_PATH);
	}

	strv_pushf(&sv, "HPQ_TASK_ID=%" PRIu64, rt->task_id);
	strv_pushf(&sv, "HPQ_ATTEMPT=%" PRIu32, rt->attempt);
	strv_pushf(&sv, "HPQ_NODE_RANK=%" PRIu32, rt->node_rank);
	strv_pushf(&sv, "HPQ_NNODES=%" PRIu32, rt->nnodes ? rt->nnodes : 1);

	cvd = xmalloc(ngpus * 11 + 1);
	cvd[0] = '\0';
	for (uint32_t i = 0; i < ngpus; i++)
		len += (size_t)sprintf(cvd + len, "%s%" PRIu32, i ? "," : "", gpus[i]);
	strv_pushf(&sv, "CUDA_VISIBLE_DEVICES=%s", cvd);
	free(cvd);

	if (agent_socket)
		strv_pushf(&sv, "HPQ_AGENT_SOCKET=%s", agent_socket);
	if (rt->checkpoint_dir && rt->checkpoint_dir[0])
		strv_pushf(&sv, "HPQ_CHECKPOINT_DIR=%s", rt->checkpoint_dir);
	if (rt->has_resume) {
		strv_pushf(&sv, "HPQ_RESUME_FROM=%s", rt->resume_from ? rt->resume_from : "");
		strv_pushf(&sv, "HPQ_RESUME_STEP=%" PRIu64, rt->resume_step);
	}
	if (rt->master_addr && rt->master_addr[0])
		strv_pushf(&sv, "HPQ_MASTER_ADDR=%s", rt->master_addr);
	if (rt->master_port)
		strv_pushf(&sv, "HPQ_MASTER_PORT=%" PRIu32, rt->master_port);
	batch_env(rt, exec_env_add, &sv);
	*ret_env = sv.v;
	return 0;
}

/* ------------------------------------------------------------ processes */

int exec_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

int exec_proc_stat(pid_t pid, uint64_t *ret_start, char *ret_state)
{
	char path[64], buf[1024], *p, *save = NULL, *tok;
	unsigned long long start;
	char state;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 ? -ENOENT : (errno == ESRCH ? -ENOENT : -errno);
	buf[n] = '\0';
	/* "pid (comm) S ppid ..." where comm may hold spaces and parentheses. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return HPQ_EINVAL;
	p += 2;
	state = *p;
	/* Fields after comm start at 3 (state); starttime is field 22. */
	for (field = 3, tok = strtok_r(p, " ", &save); tok && field < 22;
	     tok = strtok_r(NULL, " ", &save))
		field++;
	if (!tok || sscanf(tok, "%llu", &start) != 1)
		return HPQ_EINVAL;
	*ret_start = start;
	*ret_state = state;
	return 0;
}

/* Is the task's leader still the process we started? */
static bool exec_leader_alive(const struct task *t)
{
	uint64_t start;
	char state;

	if (t->pid <= 1 || exec_proc_stat(t->pid, &start, &state) < 0)
		return false;
	return start == t->proc_start && state != 'Z' && state != 'X' && state != 'x';
}

/* Is the task's supervisor still the process we started? */
static bool exec_sup_alive(const struct task *t)
{
	uint64_t start;
	char state;

	if (t->sup_pid <= 1 || exec_proc_stat(t->sup_pid, &start, &state) < 0)
		return false;
	return start == t->sup_start && state != 'Z' && state != 'X' && state != 'x';
}

static void exec_attempt_dir(const struct exec *ex, const struct task *t, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%" PRIu64 ".%" PRIu32, ex->run_dir, t->id, t->attempt);
}

static bool exec_reason_ok(const char *s);

/*
 * Asks the supervisor to stop the task: signo now, SIGKILL at deadline_ms.
 * When the request cannot be written (a full work directory), the agent
 * signals the group itself, while its leader is the process we started.
 */
static void exec_sup_request(struct exec *ex, struct task *t, int signo, int64_t deadline_ms,
			     const char *reason)
{
	char dir[4096], tmp[4200], path[4200];
	int64_t grace = deadline_ms - hpq_now_ms();
	int fd, r = 0;

	exec_attempt_dir(ex, t, dir, sizeof(dir));
	snprintf(tmp, sizeof(tmp), "%s/control.tmp", dir);
	snprintf(path, sizeof(path), "%s/control", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || dprintf(fd, "kill %d %" PRId64 " %s\n", signo, grace > 0 ? grace : 0,
			      exec_reason_ok(reason) ? reason : "killed") < 0)
		r = -errno;
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		log_warn("task %" PRIu64 " attempt %" PRIu32 ": cannot write to its supervisor "
			 "(%s): %s; signalling it directly", t->id, t->attempt, path,
			 hpq_strerror(r));
		unlink(tmp);
		if (exec_leader_alive(t)) {
			if (kill(-t->pid, signo) < 0 && errno == ESRCH)
				(void)kill(t->pid, signo);
			if (signo != SIGKILL)
				(void)kill(-t->pid, SIGCONT);
		}
		return;
	}
	if (exec_sup_alive(t) && kill(t->sup_pid, SIGUSR1) < 0)
		log_debug("cannot signal supervisor %ld: %s", (long)t->sup_pid, strerror(errno));
}

/* The supervisor's record of how the task ended. Returns 0, or -1 when
 * there is none (or it is not about this task's process). */
/* The start of file name in the attempt directory dir into buf, a string:
 * "" when there is none. */
static void exec_attempt_file(const char *dir, const char *name, char *buf, size_t len)
{
	char path[4200];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	n = fd >= 0 ? read(fd, buf, len - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
}

/* The supervisor's record in t's attempt directory, whichever process it
 * is about: its pid, exit code, end and reason. Returns 0, or -1 when there
 * is none that reads. */
static int exec_sup_record(struct exec *ex, const struct task *t, long *ret_pid, int *ret_code,
			   long long *ret_end, char ret_reason[TASK_REASON_MAX])
{
	char dir[4096], buf[256], word[64];

	exec_attempt_dir(ex, t, dir, sizeof(dir));
	exec_attempt_file(dir, "status", buf, sizeof(buf));
	if (sscanf(buf, "hpq-supervisor-status 1 pid=%ld code=%d end=%lld reason=%63s", ret_pid,
		   ret_code, ret_end, word) != 4 || *ret_code < 0 || *ret_code > 255 + 128 ||
	    !exec_reason_ok(word))
		return -1;
	task_set_reason(ret_reason, word);
	return 0;
}

static int exec_sup_status(struct exec *ex, const struct task *t, int *ret_code,
			   char ret_reason[TASK_REASON_MAX])
{
	long long end;
	long pid;

	if (exec_sup_record(ex, t, &pid, ret_code, &end, ret_reason) < 0 || pid != (long)t->pid)
		return -1;
	return 0;
}

static void exec_signal(struct task *t, int signo)
{
	if (t->pid <= 1)
		return;
	if (t->adopted && !exec_leader_alive(t))
		return;
	if (kill(-t->pid, signo) < 0 && errno == ESRCH)
		(void)kill(t->pid, signo); /* the leader left its group */
}

static void exec_gpus_release(struct exec *ex, struct task *t)
{
	for (uint32_t i = 0; i < t->ngpus; i++)
		if (t->gpus[i] < ex->ngpus)
			ex->gpu_busy[t->gpus[i]] = false;
}

void exec_log_path(const char *log_dir, const char *cluster_id, uint64_t id, uint32_t attempt,
		   char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/%" PRIu64 ".%" PRIu32 ".log", log_dir, cluster_id, id, attempt);
}

/* Appends a line to the attempt's log file, which exec_log_open made; a
 * failure is only logged. */
static void exec_log_line(struct exec *ex, const struct task *t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void exec_log_line(struct exec *ex, const struct task *t, const char *fmt, ...)
{
	char path[4096], last;
	struct stat st;
	va_list ap;
	int fd;

	if (!t->cluster_id[0])
		return;
	exec_log_path(ex->log_dir, t->cluster_id, t->id, t->attempt, path, sizeof(path));
	fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		log_debug("cannot append to '%s': %s", path, strerror(errno));
		return;
	}
	/* hpq's line is a line of its own, also after output that did not
	 * end with a newline (hpq logs --json tells the two apart). */
	if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1 &&
	    last != '\n' && write(fd, "\n", 1) < 0)
		log_debug("cannot append to '%s': %s", path, strerror(errno));
	va_start(ap, fmt);
	vdprintf(fd, fmt, ap);
	va_end(ap);
	close(fd);
}

static void exec_finish(struct exec *ex, struct task *t, int code, const char *reason)
{
	char when[32];

	ev_child_stop(ex->loop, &t->child_w);
	ev_timer_stop(ex->loop, &t->limit_w);
	ev_timer_stop(ex->loop, &t->kill_w);
	ev_timer_stop(ex->loop, &t->poll_w);
	/* Whatever the task left behind in its group goes with it. */
	if (!t->adopted && !t->sup_pid && t->pid > 1)
		(void)kill(-t->pid, SIGKILL);
	exec_gpus_release(ex, t);
	if (ex->cg) {
		struct cgroup_usage u = {t->oom, t->peak_mem, t->cpu_usec};

		cgroup_task_finish(ex->cg, t->id, t->attempt, &u);
		t->oom = u.oom;
		t->peak_mem = u.peak_mem;
		t->cpu_usec = u.cpu_usec;
	}
	t->exited = true;
	t->exit_code = code;
	t->end_ms = hpq_now_ms();
	task_set_reason(t->reason, t->kill_reason[0] ? t->kill_reason : reason);
	hpq_utc_iso(t->end_ms, when, sizeof(when));
	if (t->oom)
		exec_log_line(ex, t, "==== hpq: task %" PRIu64 " attempt %" PRIu32 ": out of "
			      "memory: the kernel's OOM killer ended a process of it at its "
			      "memory limit\n", t->id, t->attempt);
	if (code >= 0)
		exec_log_line(ex, t, "==== hpq: task %" PRIu64 " attempt %" PRIu32
			      " ended at %s: exit code %d (%s)\n",
			      t->id, t->attempt, when, code, t->reason);
	else
		exec_log_line(ex, t, "==== hpq: task %" PRIu64 " attempt %" PRIu32
			      " ended at %s: exit code unknown (%s)\n",
			      t->id, t->attempt, when, t->reason);
}

/*
 * The supervisor is gone: its status says how the task ended. Without one
 * (the supervisor was killed) a task still running is watched alone, as
 * tasks were before supervisors, and one that is gone is lost. Returns
 * whether the task ended.
 */
static bool exec_sup_ended(struct exec *ex, struct task *t)
{
	char reason[TASK_REASON_MAX];
	int code;

	if (exec_sup_status(ex, t, &code, reason) == 0) {
		exec_finish(ex, t, code, reason);
		return true;
	}
	if (exec_leader_alive(t)) {
		log_warn("task %" PRIu64 " attempt %" PRIu32 ": its supervisor (pid %ld) ended "
			 "before it; watching the task without one (its exit code will be unknown)",
			 t->id, t->attempt, (long)t->sup_pid);
		ev_child_stop(ex->loop, &t->child_w);
		t->sup_pid = 0;
		t->sup_start = 0;
		t->adopted = true;
		ev_timer_start(ex->loop, &t->poll_w);
		return false;
	}
	log_notice("task %" PRIu64 " attempt %" PRIu32 ": its supervisor (pid %ld) left no "
		   "record of its exit; its exit code is unknown", t->id, t->attempt,
		   (long)t->sup_pid);
	exec_finish(ex, t, -1, "lost");
	return true;
}

static void exec_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct task *t = w->data;
	struct exec *ex = t->exec;
	int status = w->rstatus;

	if (t->sup_pid) {
		if (exec_sup_ended(ex, t))
			ex->on_exit(ex, t);
		return;
	}
	exec_finish(ex, t, exec_exit_code(status), WIFSIGNALED(status) ? "signal" : "exit");
	ex->on_exit(ex, t);
}

static void exec_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct task *t = w->data;
	struct exec *ex = t->exec;

	if (t->sup_pid) {
		if (!exec_sup_alive(t) && exec_sup_ended(ex, t))
			ex->on_exit(ex, t);
		return;
	}
	if (exec_leader_alive(t))
		return;
	exec_finish(ex, t, -1, "lost");
	ex->on_exit(ex, t);
}

static void exec_kill_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct task *t = w->data;

	log_info("task %" PRIu64 " attempt %" PRIu32 ": grace period over, killing its processes",
		 t->id, t->attempt);
	if (t->sup_pid) /* it does so itself; this is a backstop */
		exec_sup_request(t->exec, t, SIGKILL, hpq_now_ms(), t->kill_reason);
	else
		exec_signal(t, SIGKILL);
	/* Repeat until it is gone: a process in uninterruptible sleep may need it. */
	ev_timer_set(w, 5.0, 0.0);
	ev_timer_start(loop, w);
}

static void exec_limit_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct task *t = w->data;

	log_info("task %" PRIu64 " attempt %" PRIu32 ": time limit reached, stopping it",
		 t->id, t->attempt);
	exec_kill(t->exec, t, 0, 0, "timeout");
}

/* Sets up the record's watchers (not started). */
static void exec_watchers_init(struct exec *ex, struct task *t)
{
	t->exec = ex;
	ev_child_init(&t->child_w, exec_child_cb, t->pid, 0);
	ev_timer_init(&t->limit_w, exec_limit_cb, 0.0, 0.0);
	ev_timer_init(&t->kill_w, exec_kill_cb, 0.0, 0.0);
	ev_timer_init(&t->poll_w, exec_poll_cb, ex->poll_interval, ex->poll_interval);
	t->child_w.data = t->limit_w.data = t->kill_w.data = t->poll_w.data = t;
}

static void exec_timer_at(struct exec *ex, ev_timer *w, int64_t deadline_ms)
{
	int64_t left = deadline_ms - hpq_now_ms();

	ev_timer_stop(ex->loop, w);
	ev_timer_set(w, left > 0 ? (double)left / 1000.0 : 0.0, 0.0);
	ev_timer_start(ex->loop, w);
}

static bool exec_reason_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n < TASK_REASON_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

void exec_kill(struct exec *ex, struct task *t, int signo, uint64_t grace_s, const char *reason)
{
	int64_t deadline;

	if (t->exited)
		return;
	if (signo <= 0 || signo >= NSIG)
		signo = t->stop_signal;
	if (grace_s == 0)
		grace_s = t->grace_s;
	if (grace_s > 86400 * 365)
		grace_s = 86400 * 365;
	deadline = hpq_now_ms() + (int64_t)grace_s * 1000;
	if (signo == SIGKILL)
		deadline = hpq_now_ms();

	if (t->kill_reason[0]) {
		/* Already stopping: a later kill can only hurry it. */
		if (deadline < t->kill_deadline_ms) {
			t->kill_deadline_ms = deadline;
			exec_timer_at(ex, &t->kill_w, deadline);
			if (t->sup_pid)
				exec_sup_request(ex, t, signo, deadline, t->kill_reason);
		}
		return;
	}
	task_set_reason(t->kill_reason, exec_reason_ok(reason) ? reason : "killed");
	t->kill_deadline_ms = deadline;
	ev_timer_stop(ex->loop, &t->limit_w);
	if (t->sup_pid) {
		exec_sup_request(ex, t, signo, deadline, t->kill_reason);
		exec_timer_at(ex, &t->kill_w, deadline);
		return;
	}
	exec_signal(t, signo);
	if (signo != SIGKILL && signo != SIGCONT)
		exec_signal(t, SIGCONT);
	exec_timer_at(ex, &t->kill_w, deadline);
}

/* ------------------------------------------------------------ starting */

/* What the child needs, all prepared by the parent. */
struct spawn {
	char **argv;
	char **envp;
	const char *path;     /* the task's PATH */
	const char *cwd;
	const char *checkpoint_dir; /* NULL: none */
	bool switch_user;
	uid_t uid;                  /* the task's, also when not switching */
	gid_t gid;
	gid_t *groups;
	int ngroups;
	int logfd;
	int nullfd;
	const char *cgroup_dir;     /* joined before anything else; NULL: unconfined */
	const char *script;         /* the batch script's copy, run instead of argv[0] */
	char **sh_argv;             /* its run under /bin/sh when it has no "#!" */
	const char *output, *error; /* absolute; NULL: the log file */
};

/* Reported by a child that could not exec (one write, below PIPE_BUF). */
struct spawn_error {
	int stage;
	int err;
	struct safepath_err path;   /* STAGE_CHECKPOINT */
};

enum {
	STAGE_SETSID = 1, STAGE_FDS, STAGE_GROUPS, STAGE_GID, STAGE_UID, STAGE_CHECKPOINT,
	STAGE_CWD, STAGE_EXEC, STAGE_SUPERVISOR, STAGE_CGROUP, STAGE_OUTPUT, STAGE_ERROR,
	STAGE_PID  /* not an error: the supervisor's report of the task's pid (in err) */
};

static const char *exec_stage_name(int stage)
{
	switch (stage) {
	case STAGE_SETSID: return "cannot create a session";
	case STAGE_FDS: return "cannot set up stdin/stdout/stderr";
	case STAGE_GROUPS: return "cannot set supplementary groups";
	case STAGE_GID: return "cannot set group id";
	case STAGE_UID: return "cannot set user id";
	case STAGE_CHECKPOINT: return "unusable checkpoint directory";
	case STAGE_CWD: return "cannot change directory";
	case STAGE_EXEC: return "cannot execute command";
	case STAGE_SUPERVISOR: return "cannot start the supervisor";
	case STAGE_CGROUP: return "cannot join the task's cgroup";
	case STAGE_OUTPUT: return "cannot open the output file";
	case STAGE_ERROR: return "cannot open the error file";
	}
	return "cannot start";
}

/* The parent turns this into a message for the log file and the agent's log. */
static void exec_child_fail(int errfd, int stage, int err) __attribute__((noreturn));

static void exec_child_fail(int errfd, int stage, int err)
{
	struct spawn_error se = {.stage = stage, .err = err};

	if (write(errfd, &se, sizeof(se)) < 0) {
		/* nothing left to tell it with */
	}
	_exit(127);
}

/* execve through the task's PATH, like execvp but with the task's PATH
 * and environment. Returns the errno to report. */
static int exec_search(char **argv, char **envp, const char *path)
{
	char buf[4096];
	const char *dir, *end;
	int saved = ENOENT;

	if (strchr(argv[0], '/')) {
		execve(argv[0], argv, envp);
		return errno;
	}
	for (dir = path; dir; dir = *end ? end + 1 : NULL) {
		size_t dlen;

		end = strchrnul(dir, ':');
		dlen = (size_t)(end - dir);
		if (dlen == 0) {
			snprintf(buf, sizeof(buf), "%s", argv[0]);
		} else {
			if (dlen + strlen(argv[0]) + 2 > sizeof(buf))
				continue;
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)dlen, dir, argv[0]);
		}
		execve(buf, argv, envp);
		if (errno == EACCES)
			saved = EACCES;
		else if (errno != ENOENT && errno != ENOTDIR)
			return errno;
	}
	return saved;
}

static void exec_child(const struct spawn *sp, int errfd) __attribute__((noreturn));

/* The 32-bit id calls where the plain ones take 16-bit ids. */
#ifdef SYS_setgroups32
#define EXEC_SYS_SETGROUPS SYS_setgroups32
#define EXEC_SYS_SETGID SYS_setgid32
#define EXEC_SYS_SETUID SYS_setuid32
#else
#define EXEC_SYS_SETGROUPS SYS_setgroups
#define EXEC_SYS_SETGID SYS_setgid
#define EXEC_SYS_SETUID SYS_setuid
#endif

/* The checkpoint directory broke the rule, or could not be reached. */
static void exec_child_fail_path(int errfd, const struct safepath_err *e) __attribute__((noreturn));

static void exec_child_fail_path(int errfd, const struct safepath_err *e)
{
	struct spawn_error se = {.stage = STAGE_CHECKPOINT, .err = e->err, .path = *e};

	if (write(errfd, &se, sizeof(se)) < 0) {
		/* nothing left to tell it with */
	}
	_exit(127);
}

static void exec_child(const struct spawn *sp, int errfd)
{
	struct safepath_err pe;
	sigset_t none;

	/* Signals the agent ignores or blocks must not stay that way for the task. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (setsid() < 0)
		exec_child_fail(errfd, STAGE_SETSID, errno);
	/* Confined before it can fork or allocate, while it may still write there. */
	if (sp->cgroup_dir) {
		int r = cgroup_join(sp->cgroup_dir);

		if (r < 0)
			exec_child_fail(errfd, STAGE_CGROUP, -r);
	}
	if (dup2(sp->nullfd, 0) < 0 || dup2(sp->logfd, 1) < 0 || dup2(sp->logfd, 2) < 0)
		exec_child_fail(errfd, STAGE_FDS, errno);
	/* Nothing of the agent's leaks into the task, whatever forgot O_CLOEXEC. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 1024; fd++)
			if (fd != errfd)
				(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	/* Raw system calls: this process's own ids only (see the top). */
	if (sp->switch_user) {
		if (syscall(EXEC_SYS_SETGROUPS, (size_t)sp->ngroups, sp->groups) < 0)
			exec_child_fail(errfd, STAGE_GROUPS, errno);
		if (syscall(EXEC_SYS_SETGID, sp->gid) < 0)
			exec_child_fail(errfd, STAGE_GID, errno);
		if (syscall(EXEC_SYS_SETUID, sp->uid) < 0)
			exec_child_fail(errfd, STAGE_UID, errno);
	}
	/* As the user: what it creates is the user's, what it may not reach stays out. */
	if (sp->checkpoint_dir && safepath_dir(sp->checkpoint_dir, sp->uid, true, &pe) < 0)
		exec_child_fail_path(errfd, &pe);
	if (chdir(sp->cwd) < 0)
		exec_child_fail(errfd, STAGE_CWD, errno);
	/* Opened as the user: a path the user may not write, or a link planted
	 * by someone else where the user may not go, stays out of reach. */
	if (sp->output) {
		int fd = open(sp->output, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

		if (fd < 0)
			exec_child_fail(errfd, STAGE_OUTPUT, errno);
		if (dup2(fd, 1) < 0 || (!sp->error && dup2(fd, 2) < 0))
			exec_child_fail(errfd, STAGE_FDS, errno);
	}
	if (sp->error) {
		int fd = open(sp->error, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

		if (fd < 0)
			exec_child_fail(errfd, STAGE_ERROR, errno);
		if (dup2(fd, 2) < 0)
			exec_child_fail(errfd, STAGE_FDS, errno);
	}
	if (sp->script) {
		execve(sp->script, sp->argv, sp->envp);
		if (errno == ENOEXEC) /* no "#!": a shell script, as execvp runs one */
			execve("/bin/sh", sp->sh_argv, sp->envp);
		exec_child_fail(errfd, STAGE_EXEC, errno);
	}
	exec_child_fail(errfd, STAGE_EXEC, exec_search(sp->argv, sp->envp, sp->path));
}

/* Who the task runs as: resolved in the parent, before fork. */
struct ident {
	bool switch_user;
	uid_t uid;
	gid_t gid;
	char *user, *home, *shell;
	gid_t *groups;
	int ngroups;
};

/* What exec_prepare_batch makes, freed after the fork. */
struct exec_batch {
	char script[4200];
	char **sh_argv;
	char *path[2];             /* output, error */
	char cgroup[4200];
};

static void ident_release(struct ident *id)
{
	free(id->user);
	free(id->home);
	free(id->shell);
	free(id->groups);
}

/* The groups of pw's user on this node, as initgroups would set them;
 * false when the task's primary group gid is not among them. */
static bool exec_groups(const struct passwd *pw, gid_t gid, struct ident *id)
{
	int n = 64;

	for (;;) {
		int want = n;

		id->groups = xreallocarray(id->groups, (size_t)n, sizeof(gid_t));
		if (getgrouplist(pw->pw_name, pw->pw_gid, id->groups, &want) >= 0) {
			id->ngroups = want;
			break;
		}
		if (want <= n) { /* should not happen; fall back to the primary group */
			id->groups[0] = pw->pw_gid;
			id->ngroups = 1;
			break;
		}
		n = want;
	}
	for (int i = 0; i < id->ngroups; i++)
		if (id->groups[i] == gid)
			return true;
	return false;
}

static int exec_ident_resolve(const Hpq__RunTask *rt, struct ident *ret, char *err, size_t errlen)
{
	struct ident id = {0};
	struct passwd *pw = NULL;
	const char *name = rt->user && rt->user[0] ? rt->user : NULL;

	if (geteuid() != 0) {
		/* Not root: every task runs as the agent's user. */
		id.uid = getuid();
		id.gid = getgid();
		pw = getpwuid(id.uid);
	} else {
		id.switch_user = true;
		id.uid = rt->uid;
		id.gid = rt->gid;
		if (name) {
			pw = getpwnam(name);
			if (pw && pw->pw_uid != id.uid) {
				snprintf(err, errlen, "user '%s' is uid %lu on this node, the task "
					 "says uid %lu", name, (unsigned long)pw->pw_uid,
					 (unsigned long)id.uid);
				return HPQ_EINVAL;
			}
		}
		if (!pw)
			pw = getpwuid(id.uid);
		if (pw && !name)
			name = pw->pw_name;
		if (pw && !exec_groups(pw, id.gid, &id)) {
			snprintf(err, errlen, "group %lu is not one of the groups of user '%s' on "
				 "this node", (unsigned long)id.gid, pw->pw_name);
			free(id.groups);
			return HPQ_EINVAL;
		}
		if (!pw) {
			log_notice("task %" PRIu64 ": uid %lu%s%s%s is unknown on this node: it "
				   "runs with group %lu alone", rt->task_id, (unsigned long)id.uid,
				   name ? " ('" : "", name ? name : "", name ? "')" : "",
				   (unsigned long)id.gid);
			id.groups = xmalloc(sizeof(gid_t));
			id.groups[0] = id.gid;
			id.ngroups = 1;
		}
	}
	if (pw) {
		id.user = xstrdup(name && id.switch_user ? name : pw->pw_name);
		id.home = xstrdup(pw->pw_dir && pw->pw_dir[0] ? pw->pw_dir : "/");
		id.shell = xstrdup(pw->pw_shell && pw->pw_shell[0] ? pw->pw_shell : "/bin/sh");
	} else {
		if (name)
			id.user = xstrdup(name);
		else
			xasprintf(&id.user, "%lu", (unsigned long)id.uid);
		id.home = xstrdup("/");
		id.shell = xstrdup("/bin/sh");
	}
	*ret = id;
	return 0;
}

/* Picks count free GPUs, lowest indices first. */
static int exec_gpus_take(struct exec *ex, uint32_t count, struct task *t)
{
	uint32_t nfree = 0;

	for (uint32_t i = 0; i < ex->ngpus; i++)
		nfree += !ex->gpu_busy[i];
	if (count > nfree)
		return HPQ_EBUSY;
	if (count == 0)
		return 0;
	t->gpus = xreallocarray(NULL, count, sizeof(*t->gpus));
	for (uint32_t i = 0; i < ex->ngpus && t->ngpus < count; i++) {
		if (!ex->gpu_busy[i]) {
			ex->gpu_busy[i] = true;
			t->gpus[t->ngpus++] = i;
		}
	}
	return 0;
}

/* Makes dir (0755) if missing; it must be the agent's user's and writable
 * by it alone, so that no task's user can add, swap or link a file in it. */
static int exec_log_dir(const char *dir, char *why, size_t len)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		snprintf(why, len, "cannot create the log directory '%s': %s", dir,
			 strerror(errno));
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, len, "cannot open the log directory '%s': %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(why, len, "the log directory '%s' must belong to uid %lu and be writable "
			 "by it alone", dir, (unsigned long)geteuid());
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Creates the attempt's own log file. (cluster id, task id, attempt) names
 * one run, so the file cannot exist, unless hpqd's database was restored
 * from an older copy and hands out task ids again: that file belongs to
 * the earlier run, perhaps another user's, and is moved aside (kept for
 * the administrator) rather than appended to or served.
 */
static int exec_log_open(struct exec *ex, const struct task *t, char *why, size_t len)
{
	char dir[4096], name[64], aside[96];
	int dfd, fd;

	dfd = exec_log_dir(ex->log_dir, why, len);
	if (dfd < 0)
		return -1;
	close(dfd);
	snprintf(dir, sizeof(dir), "%s/%s", ex->log_dir, t->cluster_id);
	dfd = exec_log_dir(dir, why, len);
	if (dfd < 0)
		return -1;
	snprintf(name, sizeof(name), "%" PRIu64 ".%" PRIu32 ".log", t->id, t->attempt);
	fd = openat(dfd, name, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0640);
	if (fd < 0 && errno == EEXIST) {
		snprintf(aside, sizeof(aside), "%s.superseded-%" PRId64, name, hpq_now_ms());
		if (renameat(dfd, name, dfd, aside) == 0)
			log_warn("task %" PRIu64 " attempt %" PRIu32 ": '%s/%s' is an earlier "
				 "run's (a restored database?): moved it to '%s'", t->id,
				 t->attempt, dir, name, aside);
		fd = openat(dfd, name, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW |
			    O_CLOEXEC, 0640);
	}
	if (fd < 0)
		snprintf(why, len, "cannot create the log file '%.256s/%s': %s", dir, name,
			 strerror(errno));
	close(dfd);
	return fd;
}

static const char *exec_env_get(char **envp, const char *name)
{
	size_t n = strlen(name);

	for (char **e = envp; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static void exec_write_header(int fd, struct exec *ex, const struct task *t, const struct ident *id,
			      const Hpq__RunTask *rt)
{
	char when[32], *name = hpq_escape(t->name), *node = hpq_escape(ex->node_name);
	char *user = hpq_escape(id->user);

	/* One line whatever the fields hold: a newline or an escape sequence
	 * in the command cannot forge a second header (escape.h). */
	hpq_utc_iso(t->start_ms, when, sizeof(when));
	dprintf(fd, "==== hpq: task %" PRIu64 "%s%s%s attempt %" PRIu32 " on %s at %s as %s "
		"(uid %lu):", t->id, name[0] ? " (" : "", name, name[0] ? ")" : "",
		t->attempt, node, when, user, (unsigned long)id->uid);
	for (size_t i = 0; i < rt->n_argv; i++) {
		char *arg = hpq_escape(rt->argv[i]);

		dprintf(fd, " %s", arg);
		free(arg);
	}
	dprintf(fd, "\n");
	free(name);
	free(node);
	free(user);
}

/* Marks a record that never ran as exited with 127 and tells why. */
static void exec_spawn_failed(struct exec *ex, struct task *t, const char *reason,
			      const char *why)
{
	log_warn("task %" PRIu64 " attempt %" PRIu32 ": cannot start: %s", t->id, t->attempt, why);
	exec_log_line(ex, t, "hpq-agent: cannot start task %" PRIu64 " attempt %" PRIu32 ": %s\n",
		      t->id, t->attempt, why);
	exec_finish(ex, t, 127, reason);
}

/* Signals the supervisor waits for or ignores: blocked from before its
 * exec, so that none is lost, or fatal, before it is ready. */
static void exec_sup_sigset(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGPIPE);
}

/* What a child made by exec_clone gets. */
struct exec_clone_arg {
	struct exec *ex;
	const struct task *t;
	const struct spawn *sp;
	int errfd;
};

/*
 * The children's stacks: a buffer in the frame of the caller, which is
 * stopped until the child execs or exits (CLONE_VFORK). On the caller's
 * own stack, the child stays inside the stack range the thread is known
 * to have, which is what AddressSanitizer needs to follow it (it keeps
 * the thread's bounds, and unpoisons them at the child's exec). The
 * supervisor-to-be's holds the task's, its own child, inside it. Sized
 * for exec_child's path buffers (safepath.c) with a wide margin.
 */
#define EXEC_STACK_SIZE (384 * 1024)
#define EXEC_SUP_STACK_SIZE (3 * EXEC_STACK_SIZE)

/*
 * A child in the caller's memory, the caller stopped until it execs or
 * exits (see the top); its end is SIGCHLD to the caller, as fork's is.
 * Every signal must be blocked in the caller. stack is the child's (size
 * bytes, in the caller's frame). Returns its pid, or -1 with errno set.
 */
static pid_t exec_clone(int (*fn)(void *), struct exec_clone_arg *arg, char *stack,
			size_t size)
{
	/* Stacks grow down here (x86, arm64): the top is the end, 16-aligned. */
	char *top = (char *)((uintptr_t)(stack + size) & ~(uintptr_t)15);

	return clone(fn, top, CLONE_VM | CLONE_VFORK | SIGCHLD, arg);
}

static int exec_clone_task(void *arg)
{
	const struct exec_clone_arg *a = arg;

	exec_child(a->sp, a->errfd);
}

/*
 * The supervisor-to-be (supervised starts): a session of its own, the
 * task started from it (exec_child), its pid told to the agent, then
 * hpq-supervisor with an empty environment.
 */
static void exec_sup_child(struct exec *ex, const struct task *t, const struct spawn *sp,
			   int errfd) __attribute__((noreturn));

static void exec_sup_child(struct exec *ex, const struct task *t, const struct spawn *sp,
			   int errfd)
{
	struct spawn_error rec = {.stage = STAGE_PID};
	struct exec_clone_arg arg = {ex, t, sp, errfd};
	char dir[4096], pidbuf[24], sigbuf[16], gracebuf[24];
	char *argv[6], *envp[1] = {NULL};
	sigset_t set;
	pid_t task;
	char stack[EXEC_STACK_SIZE];

	/* Ignored signals would stay ignored across exec (SIGCHLD would reap
	 * alone); all are still blocked (exec_fork), so no handler of the
	 * agent's runs here meanwhile. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	if (setsid() < 0)
		exec_child_fail(errfd, STAGE_SETSID, errno);
	task = exec_clone(exec_clone_task, &arg, stack, sizeof(stack));
	if (task < 0)
		exec_child_fail(errfd, STAGE_SUPERVISOR, errno);
	rec.err = (int)task;
	if (write(errfd, &rec, sizeof(rec)) < 0) {
		/* the agent sees no pid: a failed start */
	}
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 1024; fd++)
			if (fd != errfd)
				(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	exec_attempt_dir(ex, t, dir, sizeof(dir));
	snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)task);
	snprintf(sigbuf, sizeof(sigbuf), "%d", t->stop_signal);
	snprintf(gracebuf, sizeof(gracebuf), "%" PRIu64,
		 (t->grace_s > 86400 * 365 ? 86400 * 365 : t->grace_s) * 1000);
	argv[0] = (char *)"hpq-supervisor";
	argv[1] = dir;
	argv[2] = pidbuf;
	argv[3] = sigbuf;
	argv[4] = gracebuf;
	argv[5] = NULL;
	/* The supervisor's signals stay blocked across exec, the others not. */
	exec_sup_sigset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	execve(ex->supervisor, argv, envp);
	rec.stage = STAGE_SUPERVISOR;
	rec.err = errno;
	(void)kill(task, SIGKILL);
	if (write(errfd, &rec, sizeof(rec)) < 0) {
		/* nothing left to tell it with */
	}
	_exit(127);
}

static int exec_clone_sup(void *arg)
{
	const struct exec_clone_arg *a = arg;

	exec_sup_child(a->ex, a->t, a->sp, a->errfd);
}

/* Starts the child (exec_clone) and has it exec; returns the task's pid,
 * or 0 after exec_spawn_failed. Supervised, t->sup_pid is the supervisor's. */
static pid_t exec_fork(struct exec *ex, struct task *t, const struct spawn *sp)
{
	struct spawn_error se, rec;
	struct exec_clone_arg arg = {ex, t, sp, -1};
	sigset_t block, old;
	char why[2048];
	int pipefd[2], err;
	ssize_t n = 0, m;
	pid_t pid, task;
	char stack[EXEC_SUP_STACK_SIZE];

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(why, sizeof(why), "cannot create a pipe: %s", strerror(errno));
		exec_spawn_failed(ex, t, "spawn-failed", why);
		return 0;
	}
	/* The read end stays open in the child until its exec (close-on-exec):
	 * harmless, EOF waits for the write ends only. */
	arg.errfd = pipefd[1];
	sigfillset(&block);
	sigprocmask(SIG_SETMASK, &block, &old);
	pid = exec_clone(ex->supervisor ? exec_clone_sup : exec_clone_task, &arg, stack,
			 sizeof(stack));
	err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		snprintf(why, sizeof(why), "cannot fork: %s", strerror(err));
		close(pipefd[0]);
		close(pipefd[1]);
		exec_spawn_failed(ex, t, "spawn-failed", why);
		return 0;
	}
	close(pipefd[1]);
	/* Until EOF: the supervised child tells the task's pid first, and
	 * either process may report a failure; the first one counts. */
	task = ex->supervisor ? 0 : pid;
	for (;;) {
		m = read(pipefd[0], &rec, sizeof(rec));
		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0)
			break;
		if (m == (ssize_t)sizeof(rec) && rec.stage == STAGE_PID && rec.err > 1) {
			task = (pid_t)rec.err;
			continue;
		}
		if (n == 0) {
			se = rec;
			n = m;
		}
	}
	close(pipefd[0]);
	if (n == 0 && task > 0) {
		if (ex->supervisor)
			t->sup_pid = pid;
		return task; /* exec succeeded: the kernel closed the pipe */
	}

	/* The child is exiting with 127; reap it here, before libev sees it.
	 * Supervised, it may have become an hpq-supervisor of a task that
	 * never ran, which waits to record that exit (on a full work directory,
	 * for ever): nothing needs its record, so it goes now. */
	if (ex->supervisor)
		(void)kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof(se) && se.stage == STAGE_CHECKPOINT) {
		char what[SAFEPATH_WHERE_MAX + 128];

		safepath_describe(&se.path, what, sizeof(what));
		snprintf(why, sizeof(why), "%s '%s': %s", exec_stage_name(se.stage),
			 sp->checkpoint_dir, what);
		/* A path against the rule is refused; a plain error only fails the start. */
		exec_spawn_failed(ex, t, se.path.rule ? "unsafe-checkpoint-dir" : "spawn-failed",
				  why);
		return 0;
	}
	if (n == (ssize_t)sizeof(se))
		snprintf(why, sizeof(why), "%s '%s': %s", exec_stage_name(se.stage),
			 se.stage == STAGE_CWD ? sp->cwd :
			 se.stage == STAGE_EXEC ? (sp->script ? sp->script : sp->argv[0]) :
			 se.stage == STAGE_SUPERVISOR ? ex->supervisor :
			 se.stage == STAGE_CGROUP ? sp->cgroup_dir :
			 se.stage == STAGE_OUTPUT ? sp->output :
			 se.stage == STAGE_ERROR ? sp->error : "", strerror(se.err));
	else
		snprintf(why, sizeof(why), "the child failed before exec");
	exec_spawn_failed(ex, t, "spawn-failed", why);
	return 0;
}

/* The files an attempt's directory may hold (supervisor.c's and ours). */
static const char *const attempt_files[] = {"status", "status.tmp", "control", "control.tmp",
					    "start", NULL};

/* why: the start record could not be made durable in path, for error r. */
static void exec_record_failed(char *why, size_t len, const char *path, int r)
{
	snprintf(why, len, "cannot record the start in '%.300s': %s", path, hpq_strerror(r));
}

/*
 * The attempt's directory, with a "start" file in it, written here and
 * synced (exec_attempt_sync) before anything runs: what cannot be
 * recorded must not start. An earlier run's leftovers (a restored
 * database hands out ids again) go. Returns the start file, open, to sync.
 */
static int exec_attempt_write(struct exec *ex, const struct task *t, char *why, size_t len)
{
	char dir[4096], path[4200];
	int fd, r = 0;

	exec_attempt_dir(ex, t, dir, sizeof(dir));
	if (mkdir(ex->run_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(why, len, "cannot create '%s': %s", ex->run_dir, strerror(errno));
		return r;
	}
	if (mkdir(dir, 0700) < 0) {
		if (errno != EEXIST) {
			r = -errno;
			snprintf(why, len, "cannot create '%.300s': %s", dir, strerror(errno));
			return r;
		}
		for (int i = 0; attempt_files[i]; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, attempt_files[i]);
			(void)unlink(path);
		}
	}
	snprintf(path, sizeof(path), "%s/start", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || dprintf(fd, "task %" PRIu64 " attempt %" PRIu32 " start %" PRId64 "\n",
			      t->id, t->attempt, t->start_ms) < 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		exec_record_failed(why, len, dir, r);
		return r;
	}
	return fd;
}

/* The start file fd of t's attempt and its directory, made durable (the
 * run directory that holds it is the caller's to sync); fd is closed. */
static int exec_attempt_sync(struct exec *ex, const struct task *t, int fd, char *why,
			     size_t len)
{
	char dir[4096];
	int r = 0;

	exec_attempt_dir(ex, t, dir, sizeof(dir));
	if (fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0)
		r = hpq_path_sync_dir(dir);
	if (r < 0)
		exec_record_failed(why, len, dir, r);
	return r;
}

static void exec_attempt_remove(struct exec *ex, const struct task *t)
{
	char dir[4096], path[4200];

	exec_attempt_dir(ex, t, dir, sizeof(dir));
	for (int i = 0; attempt_files[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, attempt_files[i]);
		(void)unlink(path);
	}
	if (rmdir(dir) < 0 && errno != ENOENT)
		log_debug("cannot remove '%s': %s", dir, strerror(errno));
}

/*
 * A batch task's parts (batch.h): its script's copy, its output and error
 * files (expanded, made absolute against its working directory, and
 * named in the log, which then holds hpq's own lines only) and its
 * cgroup. Fills sp; returns 0, or -1 after exec_spawn_failed.
 */
static int exec_prepare_batch(struct exec *ex, struct task *t, const Hpq__RunTask *rt,
			      const struct ident *id, int logfd, struct spawn *sp,
			      struct exec_batch *b)
{
	const struct batch_names names = {
		.task_id = rt->task_id, .array_id = rt->array_id, .array_index = rt->array_index,
		.has_array = rt->has_array, .name = rt->name, .user = id->user,
		.node = ex->node_name, .rank = rt->node_rank,
	};
	const char *pattern[2] = {rt->output, rt->error};
	char why[512];

	if (rt->script.len > 0) {
		if (batch_script_write(ex->script_dir, t->id, t->attempt, rt->script.data,
				       rt->script.len, id->switch_user, id->uid, id->gid,
				       b->script, sizeof(b->script), why, sizeof(why)) < 0) {
			exec_spawn_failed(ex, t, "spawn-failed", why);
			return -1;
		}
		sp->script = b->script;
		/* sh SCRIPT ARGS..., with the process's name as submitted */
		b->sh_argv = xcalloc(rt->n_argv + 2, sizeof(char *));
		b->sh_argv[0] = rt->argv[0];
		b->sh_argv[1] = b->script;
		for (size_t i = 1; i < rt->n_argv; i++)
			b->sh_argv[i + 1] = rt->argv[i];
		sp->sh_argv = b->sh_argv;
	}
	for (int i = 0; i < 2; i++) {
		char *path, *shown;

		if (!pattern[i] || !pattern[i][0])
			continue;
		path = batch_expand(pattern[i], &names);
		if (path[0] != '/') {
			char *abs;

			xasprintf(&abs, "%s%s%s", sp->cwd,
				  sp->cwd[strlen(sp->cwd) - 1] == '/' ? "" : "/", path);
			free(path);
			path = abs;
		}
		b->path[i] = path;
		shown = hpq_escape(path);
		dprintf(logfd, "==== hpq: the task's %s to %s\n",
			i == 0 ? (rt->error && rt->error[0] ? "output goes" : "output and errors go") :
			"errors go", shown);
		free(shown);
	}
	sp->output = b->path[0];
	sp->error = b->path[1];
	if (ex->cg && ex->cg->enabled) {
		const Hpq__Resources *res = rt->resources;

		if (cgroup_task_create(ex->cg, t->id, t->attempt, res ? res->cpus : 0,
				       res ? res->mem : 0, why, sizeof(why)) < 0) {
			exec_spawn_failed(ex, t, "spawn-failed", why);
			return -1;
		}
		cgroup_task_path(ex->cg, t->id, t->attempt, b->cgroup, sizeof(b->cgroup));
		sp->cgroup_dir = b->cgroup;
	}
	return 0;
}

/* Starts t, whose start record is durable, or failed to be: then
 * record_err says why and t ends at once. */
static void exec_prepare(struct exec *ex, struct task *t, const Hpq__RunTask *rt,
			 const char *record_err)
{
	struct ident id = {0};
	struct spawn sp = {0};
	struct exec_batch b = {0};
	char **envp = NULL, **argv = NULL;
	char why[512];
	uint32_t want_gpus;
	int logfd = -1, nullfd = -1, r;
	pid_t pid;

	if (record_err) {
		exec_spawn_failed(ex, t, "work-dir-unwritable", record_err);
		return;
	}
	/* First the attempt's own log file, so that every refusal below is in it. */
	if (!t->cluster_id[0]) {
		exec_spawn_failed(ex, t, "spawn-failed", "hpqd sent no valid cluster id (is it "
				  "older than this agent?): the task's log file has no name");
		return;
	}
	logfd = exec_log_open(ex, t, why, sizeof(why));
	if (logfd < 0) {
		t->cluster_id[0] = '\0'; /* no file to write the reason to */
		exec_spawn_failed(ex, t, "spawn-failed", why);
		return;
	}
	if (rt->n_argv == 0 || !rt->argv[0] || !rt->argv[0][0]) {
		exec_spawn_failed(ex, t, "spawn-failed", "empty command");
		goto out;
	}
	if (exec_ident_resolve(rt, &id, why, sizeof(why)) < 0) {
		exec_spawn_failed(ex, t, "spawn-failed", why);
		goto out;
	}
	t->uid = id.uid;
	t->gid = id.gid;
	/* hpqd refuses root's submits unless allowed; this node decides for itself. */
	if ((id.uid == 0 || rt->uid == 0) && !ex->allow_root_tasks) {
		exec_spawn_failed(ex, t, "root-refused", "the task would run as root (uid 0), "
				  "which this agent refuses (its allow-root-tasks setting is off)");
		goto out;
	}
	/* The task's user may read its own log; the directory stays the agent's. */
	if (id.switch_user && fchown(logfd, id.uid, id.gid) < 0)
		log_debug("task %" PRIu64 ": cannot hand its log file to uid %lu: %s", t->id,
			  (unsigned long)id.uid, strerror(errno));

	want_gpus = rt->resources ? rt->resources->gpus : 0;
	if (rt->n_gpu_ids > want_gpus)
		want_gpus = (uint32_t)rt->n_gpu_ids;
	if (exec_gpus_take(ex, want_gpus, t) < 0) {
		snprintf(why, sizeof(why), "needs %" PRIu32 " GPUs, this node has %" PRIu32
			 " with some in use", want_gpus, ex->ngpus);
		exec_spawn_failed(ex, t, "spawn-failed", why);
		goto out;
	}
	if (exec_env_build(rt, &(struct exec_ident){id.user, id.home, id.shell, id.uid}, t->gpus,
			   t->ngpus, ex->agent_socket, &envp) < 0) {
		exec_spawn_failed(ex, t, "spawn-failed",
				  "invalid environment entry (not NAME=VALUE)");
		goto out;
	}
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nullfd < 0) {
		snprintf(why, sizeof(why), "cannot open /dev/null: %s", strerror(errno));
		exec_spawn_failed(ex, t, "spawn-failed", why);
		goto out;
	}
	exec_write_header(logfd, ex, t, &id, rt);

	/* protobuf-c's repeated strings are counted, not NULL-terminated as execve wants. */
	argv = xcalloc(rt->n_argv + 1, sizeof(*argv));
	memcpy(argv, rt->argv, rt->n_argv * sizeof(*argv));
	sp.argv = argv;
	sp.envp = envp;
	sp.path = exec_env_get(envp, "PATH");
	if (!sp.path)
		sp.path = EXEC_USER_PATH;
	sp.cwd = rt->cwd && rt->cwd[0] ? rt->cwd : id.home;
	sp.checkpoint_dir = t->checkpoint_dir;
	sp.switch_user = id.switch_user;
	sp.uid = id.uid;
	sp.gid = id.gid;
	sp.groups = id.groups;
	sp.ngroups = id.ngroups;
	sp.logfd = logfd;
	sp.nullfd = nullfd;
	if (exec_prepare_batch(ex, t, rt, &id, logfd, &sp, &b) < 0)
		goto out;

	pid = exec_fork(ex, t, &sp);
	if (pid == 0)
		goto out;
	t->pid = pid;
	r = exec_proc_stat(pid, &t->proc_start, &(char){0});
	if (r < 0)
		log_debug("cannot read /proc/%ld/stat: %s", (long)pid, hpq_strerror(r));
	if (t->sup_pid) {
		r = exec_proc_stat(t->sup_pid, &t->sup_start, &(char){0});
		if (r < 0)
			log_debug("cannot read /proc/%ld/stat: %s", (long)t->sup_pid,
				  hpq_strerror(r));
	}
	ev_child_set(&t->child_w, t->sup_pid ? t->sup_pid : pid, 0);
	ev_child_start(ex->loop, &t->child_w);
	if (t->time_limit_s > 0) {
		ev_timer_set(&t->limit_w, (double)t->time_limit_s, 0.0);
		ev_timer_start(ex->loop, &t->limit_w);
	}
	log_info("task %" PRIu64 " attempt %" PRIu32 " started: pid %ld, user %s", t->id,
		 t->attempt, (long)pid, id.user);
out:
	if (logfd >= 0)
		close(logfd);
	if (nullfd >= 0)
		close(nullfd);
	free(argv);
	free(b.sh_argv);
	free(b.path[0]);
	free(b.path[1]);
	exec_env_free(envp);
	ident_release(&id);
}

/* A new record for rt's attempt, not started yet: see exec_start. */
static int exec_task_new(struct exec *ex, const Hpq__RunTask *rt, struct task **ret_task)
{
	struct task *t;

	if (rt->task_id == 0 || rt->attempt == 0)
		return HPQ_EINVAL;
	if (task_find(&ex->tasks, rt->task_id, rt->attempt))
		return HPQ_EEXIST;

	t = task_new(rt->task_id, rt->attempt, rt->name);
	if (task_cluster_id_ok(rt->cluster_id))
		memcpy(t->cluster_id, rt->cluster_id, TASK_CLUSTER_ID_LEN + 1);
	t->start_ms = hpq_now_ms();
	t->time_limit_s = rt->time_limit_s;
	t->stop_signal = rt->preempt_signal > 0 && rt->preempt_signal < NSIG ? rt->preempt_signal
									     : SIGTERM;
	t->grace_s = rt->grace_s ? rt->grace_s : ex->default_grace_s;
	if (rt->checkpoint_dir && rt->checkpoint_dir[0] == '/')
		t->checkpoint_dir = xstrdup(rt->checkpoint_dir);
	exec_watchers_init(ex, t);
	dlist_add_tail(&ex->tasks, &t->entry);
	*ret_task = t;
	return 0;
}

/*
 * Up to EXEC_START_CHUNK attempts at once: every start record written,
 * then synced, then every process started. The first fsync commits the
 * file system's journal with all the records in it, and the others find
 * little left to do: one commit for the lot instead of one each, which
 * was the largest share of a start's wait.
 */
#define EXEC_START_CHUNK 64
#define EXEC_WHY_LEN 512

static void exec_start_chunk(struct exec *ex, const Hpq__RunTask *const *rts, size_t n,
			     struct task **ret_tasks, int *ret)
{
	int fd[EXEC_START_CHUNK];
	char (*why)[EXEC_WHY_LEN] = xcalloc(n, sizeof(*why));
	bool written = false;

	for (size_t i = 0; i < n; i++) {
		fd[i] = -1;
		ret_tasks[i] = NULL;
		ret[i] = exec_task_new(ex, rts[i], &ret_tasks[i]);
		if (ret[i] < 0 || !ex->supervisor)
			continue;
		fd[i] = exec_attempt_write(ex, ret_tasks[i], why[i], EXEC_WHY_LEN);
		written |= fd[i] >= 0;
	}
	for (size_t i = 0; i < n; i++)
		if (fd[i] >= 0)
			exec_attempt_sync(ex, ret_tasks[i], fd[i], why[i], EXEC_WHY_LEN);
	if (written) {
		int r = hpq_path_sync_dir(ex->run_dir);

		for (size_t i = 0; r < 0 && i < n; i++)
			if (fd[i] >= 0 && !why[i][0])
				exec_record_failed(why[i], EXEC_WHY_LEN, ex->run_dir, r);
	}
	for (size_t i = 0; i < n; i++)
		if (ret[i] == 0)
			exec_prepare(ex, ret_tasks[i], rts[i], why[i][0] ? why[i] : NULL);
	free(why);
}

void exec_start_many(struct exec *ex, const Hpq__RunTask *const *rts, size_t n,
		     struct task **ret_tasks, int *ret)
{
	for (size_t i = 0; i < n; i += EXEC_START_CHUNK)
		exec_start_chunk(ex, rts + i, n - i < EXEC_START_CHUNK ? n - i : EXEC_START_CHUNK,
				 ret_tasks + i, ret + i);
}

int exec_refuse(struct exec *ex, const Hpq__RunTask *rt, const char *reason, const char *why,
		struct task **ret_task)
{
	int r = exec_task_new(ex, rt, ret_task);

	if (r < 0)
		return r;
	exec_spawn_failed(ex, *ret_task, reason, why);
	return 0;
}

int exec_start(struct exec *ex, const Hpq__RunTask *rt, struct task **ret_task)
{
	int r;

	exec_start_many(ex, &rt, 1, ret_task, &r);
	return r;
}

/* ------------------------------------------------------------ adoption */

void exec_adopt(struct exec *ex, struct task *t)
{
	exec_watchers_init(ex, t);
	dlist_add_tail(&ex->tasks, &t->entry);
	if (t->exited)
		return;

	t->adopted = true;
	if (t->sup_pid && !ex->run_dir) {
		t->sup_pid = 0; /* no supervisor configured now: watch the task alone */
		t->sup_start = 0;
	}
	if (t->sup_pid && !exec_sup_alive(t)) {
		if (exec_sup_ended(ex, t)) {
			log_notice("task %" PRIu64 " attempt %" PRIu32 ": ended while the agent was "
				   "away: exit code %d (%s)", t->id, t->attempt, t->exit_code,
				   t->reason);
			return;
		}
	} else if (!t->sup_pid && !exec_leader_alive(t)) {
		log_notice("task %" PRIu64 " attempt %" PRIu32 ": pid %ld ended while the agent "
			   "was away; its exit code is unknown", t->id, t->attempt, (long)t->pid);
		exec_finish(ex, t, -1, "lost");
		return;
	}
	for (uint32_t i = 0; i < t->ngpus; i++)
		if (t->gpus[i] < ex->ngpus)
			ex->gpu_busy[t->gpus[i]] = true;
	ev_timer_start(ex->loop, &t->poll_w);
	if (t->kill_reason[0]) {
		exec_timer_at(ex, &t->kill_w, t->kill_deadline_ms);
	} else if (t->time_limit_s > 0) {
		exec_timer_at(ex, &t->limit_w, t->start_ms + (int64_t)t->time_limit_s * 1000);
	}
	log_info("task %" PRIu64 " attempt %" PRIu32 ": adopted pid %ld", t->id, t->attempt,
		 (long)t->pid);
}

void exec_forget(struct exec *ex, struct task *t)
{
	if (!t->exited)
		hpq_fatal("exec: forgetting task %" PRIu64 " while it runs", t->id);
	if (ex->run_dir)
		exec_attempt_remove(ex, t);
	batch_script_remove(ex->script_dir, t->id, t->attempt);
	if (ex->cg)
		cgroup_task_remove(ex->cg, t->id, t->attempt);
	dlist_del(&t->entry);
	task_free(t);
}

/* Is process pid ours and running the supervisor we start (sup, resolved)?
 * A command line anyone can choose; its owner and program they cannot. */
static bool exec_is_our_sup(long pid, const char *sup)
{
	char path[64], exe[PATH_MAX];
	struct stat sb;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld", pid);
	if (stat(path, &sb) < 0 || sb.st_uid != geteuid())
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	return strcmp(exe, sup) == 0;
}

/*
 * The live hpq-supervisor of the attempt directory dir, from /proc: its
 * command line is "hpq-supervisor DIR TASK_PID SIGNAL GRACE_MS" (exec_fork),
 * and it is this agent's user's and runs ex->supervisor. Fills t's sup_pid,
 * sup_start and pid, proc_start. Returns whether found.
 */
static bool exec_find_sup(const struct exec *ex, const char *dir, struct task *t)
{
	char sup[PATH_MAX];
	DIR *d;
	struct dirent *de;
	bool found = false;

	if (!realpath(ex->supervisor, sup) || !(d = opendir("/proc")))
		return false;
	while (!found && (de = readdir(d))) {
		char path[64], buf[8192], *argv[5], *p, *end;
		long pid = strtol(de->d_name, &end, 10);
		const char *base;
		ssize_t n;
		int fd, argc = 0;

		if (*end || pid <= 1)
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
		for (p = buf; p < buf + n && argc < 5; p += strlen(p) + 1)
			argv[argc++] = p;
		if (argc != 5 || p != buf + n || strcmp(argv[1], dir) != 0)
			continue;
		base = strrchr(argv[0], '/');
		if (strcmp(base ? base + 1 : argv[0], "hpq-supervisor") != 0 ||
		    !exec_is_our_sup(pid, sup))
			continue;
		t->sup_pid = (pid_t)pid;
		t->pid = (pid_t)strtol(argv[2], NULL, 10);
		if (exec_proc_stat(t->sup_pid, &t->sup_start, &(char){0}) < 0)
			continue;
		if (exec_proc_stat(t->pid, &t->proc_start, &(char){0}) < 0)
			t->proc_start = 0;
		found = exec_sup_alive(t);
	}
	closedir(d);
	return found;
}

/* What a record-less attempt left: its directory, script copy and cgroup. */
static void exec_orphan_remove(struct exec *ex, struct task *t)
{
	exec_attempt_remove(ex, t);
	batch_script_remove(ex->script_dir, t->id, t->attempt);
	if (ex->cg)
		cgroup_task_remove(ex->cg, t->id, t->attempt);
	task_free(t);
}

/*
 * An attempt directory with no record: the agent died after the attempt
 * started and before its journal was saved (agent.c, agent_flush). hpqd
 * never had its start answered and requeues it when this agent registers
 * without it, so a copy still running under its supervisor is killed now,
 * before the registration, and waited for; one that ended meanwhile is
 * reported with the outcome its supervisor recorded, like an adopted one.
 */
static void exec_orphan(struct exec *ex, uint64_t id, uint32_t attempt)
{
	struct task *t = task_new(id, attempt, NULL);
	char dir[4096], buf[256], reason[TASK_REASON_MAX];
	long long start = 0, end = 0;
	long pid = 0;
	int code;

	exec_attempt_dir(ex, t, dir, sizeof(dir));
	if (exec_find_sup(ex, dir, t)) {
		log_warn("task %" PRIu64 " attempt %" PRIu32 ": runs (pid %ld) with no record "
			 "in the journal (the agent died before saving it): killing it, hpqd "
			 "requeues it", id, attempt, (long)t->pid);
		exec_sup_request(ex, t, SIGKILL, hpq_now_ms(), "stale");
		for (int i = 0; i < 3000 && exec_sup_alive(t); i++) /* 30 s at most */
			usleep(10000);
		if (exec_sup_alive(t))
			log_err("task %" PRIu64 " attempt %" PRIu32 ": its supervisor (pid %ld) is "
				"still there 30 s after it was told to kill it", id, attempt,
				(long)t->sup_pid);
		exec_orphan_remove(ex, t);
		return;
	}
	/* Gone: its supervisor's record, if any, says how it ended. */
	if (exec_sup_record(ex, t, &pid, &code, &end, reason) < 0 || pid <= 1) {
		log_notice("task %" PRIu64 " attempt %" PRIu32 ": a start with no record in the "
			   "journal and nothing running: dropped", id, attempt);
		exec_orphan_remove(ex, t);
		return;
	}
	t->pid = (pid_t)pid;
	exec_attempt_file(dir, "start", buf, sizeof(buf));
	if (sscanf(buf, "task %*u attempt %*u start %lld", &start) == 1)
		t->start_ms = start;
	exec_watchers_init(ex, t);
	t->exited = true;
	t->exit_code = code;
	t->end_ms = end;
	task_set_reason(t->reason, reason);
	dlist_add_tail(&ex->tasks, &t->entry);
	log_notice("task %" PRIu64 " attempt %" PRIu32 ": ended while the agent was away, "
		   "before its journal held it: exit code %d (%s)", id, attempt, code, reason);
}

void exec_orphans(struct exec *ex)
{
	struct dirent *de;
	DIR *d;

	if (!ex->run_dir || !(d = opendir(ex->run_dir)))
		return;
	while ((de = readdir(d))) {
		unsigned long long id;
		unsigned attempt;
		char extra;

		if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
		    sscanf(de->d_name, "%llu.%u%c", &id, &attempt, &extra) != 2 || !attempt ||
		    task_find(&ex->tasks, id, attempt))
			continue;
		exec_orphan(ex, id, attempt);
	}
	closedir(d);
}

/* ------------------------------------------------------------ lifetime */

void exec_init(struct exec *ex, struct ev_loop *loop, const struct exec_config *cfg,
	       exec_exit_fn *on_exit, void *data)
{
	memset(ex, 0, sizeof(*ex));
	ex->loop = loop;
	ex->work_dir = xstrdup(cfg->work_dir);
	xasprintf(&ex->log_dir, "%s/logs", cfg->work_dir);
	xasprintf(&ex->script_dir, "%s/scripts", cfg->work_dir);
	ex->cg = cfg->cgroup;
	ex->node_name = xstrdup(cfg->node_name ? cfg->node_name : "");
	ex->agent_socket = cfg->agent_socket ? xstrdup(cfg->agent_socket) : NULL;
	ex->ngpus = cfg->ngpus;
	ex->gpu_busy = xcalloc(cfg->ngpus ? cfg->ngpus : 1, sizeof(bool));
	ex->default_grace_s = cfg->default_grace_s ? cfg->default_grace_s : EXEC_DEFAULT_GRACE_S;
	ex->poll_interval = cfg->poll_interval > 0 ? cfg->poll_interval : EXEC_POLL_INTERVAL;
	ex->allow_root_tasks = cfg->allow_root_tasks;
	if (cfg->supervisor) {
		ex->supervisor = xstrdup(cfg->supervisor);
		xasprintf(&ex->run_dir, "%s/run", cfg->work_dir);
	}
	dlist_init(&ex->tasks);
	ex->on_exit = on_exit;
	ex->data = data;
}

void exec_release(struct exec *ex)
{
	struct task *t;

	dlist_for_each_entry(t, &ex->tasks, entry) {
		ev_child_stop(ex->loop, &t->child_w);
		ev_timer_stop(ex->loop, &t->limit_w);
		ev_timer_stop(ex->loop, &t->kill_w);
		ev_timer_stop(ex->loop, &t->poll_w);
	}
	task_list_release(&ex->tasks);
	free(ex->work_dir);
	free(ex->log_dir);
	free(ex->script_dir);
	free(ex->supervisor);
	free(ex->run_dir);
	free(ex->node_name);
	free(ex->agent_socket);
	free(ex->gpu_busy);
	memset(ex, 0, sizeof(*ex));
}

void exec_set_limit(struct exec *ex, struct task *t, uint64_t time_limit_s)
{
	t->time_limit_s = time_limit_s;
	if (t->exited || t->kill_reason[0])
		return;
	ev_timer_stop(ex->loop, &t->limit_w);
	if (time_limit_s > 0)
		exec_timer_at(ex, &t->limit_w, t->start_ms + (int64_t)time_limit_s * 1000);
}
