/*
 * exec.h: the task runner. It starts one attempt of a task as a process
 * in its own session and process group, as the task's user, with the
 * task's environment and its output appended to the task's log file, and
 * supervises it until it ends: time limit, kill with a grace period, and
 * the exit status.
 *
 * Exit status contract (as git's run-command and the shell): exit_code is
 * the process's exit status when it exited, 128 + the signal number when
 * a signal ended it, 127 when it could not be started at all (reason
 * "spawn-failed": unknown user, cwd, command not found, ...), and -1 when
 * it is unknown: the task ran without a supervisor (below) and the agent
 * restarted meanwhile, or its supervisor left no record (reason "lost",
 * or the reason of the kill the agent had started). reason is one of
 * exit, signal, timeout, spawn-failed, lost, fenced (the supervisor
 * stopped it when the node's lease ran out), or the reason given to
 * exec_kill (cancelled, preempted, stale, ...); three refusals to start
 * have words of their own, root-refused (a task as uid 0 without
 * allow_root_tasks), unsafe-checkpoint-dir (its path breaks the rule of
 * safepath.h) and work-dir-unwritable (below).
 *
 * Files: the output of an attempt goes to
 * <work_dir>/logs/<cluster id>/<task id>.<attempt>.log, created for that
 * attempt (O_EXCL) in directories the agent's user alone may write, and
 * handed to the task's user. The task's checkpoint directory is reached
 * (and created) by the task's own process after it became the task's
 * user, under the rule of safepath.h; its working directory is entered
 * the same way.
 *
 * Batch tasks (batch.h). A RunTask with a script runs the script's copy
 * with argv[1..]; one with output or error patterns has its stdout and
 * stderr opened by the task's process, as its user, after it changed
 * directory (O_APPEND, created 0644 less the umask), and the log file then
 * holds hpq's lines only: the header, a line naming those files, refusals
 * and the end. The agent's own variables then include HPQ_ARRAY_ID and
 * HPQ_ARRAY_INDEX in an array and, when RunTask.slurm_env, the SLURM_*
 * ones (exec_env_build).
 *
 * Confinement (cgroup.h). With cfg->cgroup enabled, each attempt gets its
 * cgroup before it starts (a failure fails the start, spawn-failed: the
 * node does not run a task unconfined once it said it confines them), the
 * task's process joins it first thing after fork, and when the attempt
 * ends its usage (OOM kill, peak memory, CPU time) lands in the record and
 * the cgroup goes with whatever was left in it.
 *
 * Children are watched with ev_child, which needs libev's default loop.
 * Tasks adopted from the journal after an agent restart are not our
 * children; they are watched by polling /proc/<pid>/stat, with the
 * process start time guarding against a reused pid.
 *
 * When the main process of a task ends, whatever it left running in its
 * process group is killed, as Slurm does: a task owns its resources only
 * while it runs.
 *
 * Supervisor. When cfg->supervisor names hpq-supervisor (supervisor.c),
 * each attempt gets one: the agent forks a process that becomes a session
 * leader, forks the task from there (set up by this file's code, as
 * above) and execs hpq-supervisor, which waits for the task and records
 * its exit in <work_dir>/run/<task id>.<attempt>/status, durably. That
 * process, not the task, is then the agent's child (or, after an agent
 * restart, what the poll watches); its exit means the status is there to
 * read, so an adopted task's real exit code and signal are known. Kills
 * go through it (a control file and SIGUSR1), and it sends the SIGKILL
 * at the end of the grace period itself, so a kill in progress goes on
 * while the agent is away. Before anything starts, the attempt's
 * directory and a "start" file in it are written and synced: a work
 * directory that cannot take them (full, read-only) fails the start with
 * reason "work-dir-unwritable" and exit code 127, and nothing runs.
 * Without a supervisor (cfg->supervisor NULL: the unit tests, or an
 * install without one) tasks are the agent's children as before.
 */
#ifndef HPQ_AGENT_EXEC_H
#define HPQ_AGENT_EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ev.h>

#include "hpq.pb-c.h"
#include "task.h"

#define EXEC_DEFAULT_GRACE_S 30   /* when neither RunTask nor KillTask names one */
#define EXEC_POLL_INTERVAL 1.0    /* seconds, for adopted tasks */

struct exec;
struct cgroup;

/* A running task ended (called from the loop, never from exec_* calls). */
typedef void exec_exit_fn(struct exec *ex, struct task *t);

struct exec_config {
	const char *work_dir;       /* logs go to <work_dir>/logs/ (above) */
	const char *node_name;      /* for the log header */
	const char *agent_socket;   /* HPQ_AGENT_SOCKET; NULL: not set */
	uint32_t ngpus;             /* GPU indices 0..ngpus-1 are handed out */
	uint64_t default_grace_s;   /* 0: EXEC_DEFAULT_GRACE_S */
	double poll_interval;       /* 0: EXEC_POLL_INTERVAL */
	bool allow_root_tasks;      /* start tasks that run as uid 0 */
	const char *supervisor;     /* hpq-supervisor's path; NULL: none (above) */
	struct cgroup *cgroup;      /* confines each attempt (cgroup.h); NULL: never */
};

struct exec {
	struct ev_loop *loop;
	char *work_dir, *log_dir, *node_name, *agent_socket;
	char *supervisor, *run_dir; /* NULL without a supervisor */
	char *script_dir;           /* <work_dir>/scripts: batch scripts' copies (batch.h) */
	struct cgroup *cg;          /* NULL: tasks are not confined */
	uint32_t ngpus;
	uint64_t default_grace_s;
	double poll_interval;
	bool allow_root_tasks;
	bool *gpu_busy;             /* ngpus entries */
	struct dlist tasks;         /* of struct task: running and exited-unacknowledged */
	exec_exit_fn *on_exit;
	void *data;                 /* the owner's */
};

void exec_init(struct exec *ex, struct ev_loop *loop, const struct exec_config *cfg,
	       exec_exit_fn *on_exit, void *data);
/* Stops every watcher and frees the records. Processes keep running. */
void exec_release(struct exec *ex);

/*
 * Starts one attempt. Returns 0 and the new record, which is running or,
 * when the process could not be started, already exited with 127 and
 * reason "spawn-failed" (the log file and the agent's log say why).
 * Returns HPQ_EEXIST if (task id, attempt) is already here, HPQ_EINVAL
 * for a zero task id or attempt; nothing is created then.
 */
int exec_start(struct exec *ex, const Hpq__RunTask *rt, struct task **ret_task);
/*
 * exec_start for several attempts that came together (hpqd sends its
 * RunTasks in bursts), each into ret_tasks[i] and ret[i]: their start
 * records are written first and made durable together, then their
 * processes started, so that the burst waits for the disk once.
 */
void exec_start_many(struct exec *ex, const Hpq__RunTask *const *rts, size_t n,
		     struct task **ret_tasks, int *ret);
/*
 * A start refused before anything is made for it: rt's attempt is
 * recorded as ended at once, exit code 127 and reason (a word), why in
 * its log, as one that could not be spawned, and reported as any other
 * end. Returns as exec_start.
 */
int exec_refuse(struct exec *ex, const Hpq__RunTask *rt, const char *reason, const char *why,
		struct task **ret_task);

/*
 * Stops a running task: sends signo (0: the task's stop signal) to its
 * process group, and SIGKILL to the group grace_s later (0: the task's
 * grace). reason becomes the exit's reason (a word; anything else is
 * recorded as "killed"). A second kill while one is in progress only
 * brings the deadline forward. No effect on an exited task.
 */
void exec_kill(struct exec *ex, struct task *t, int signo, uint64_t grace_s, const char *reason);

/*
 * Takes over a record read from the journal. An exited one is kept for
 * reporting. A running one whose process still exists (same pid and start
 * time) is adopted: watched by polling, its GPUs reserved, its time limit
 * and any kill in progress resumed. One whose process is gone is marked
 * exited now with exit code -1. The caller sees which in t->exited.
 */
void exec_adopt(struct exec *ex, struct task *t);
/*
 * After the journal's records are adopted: an attempt directory in
 * <work_dir>/run with no record is an attempt started by an agent that
 * died before its journal held it. One still running is killed (through
 * its supervisor, waited for: hpqd requeues it when the agent registers
 * without it); one that ended gets an exited record with its supervisor's
 * outcome, to report. Without a supervisor configured: nothing.
 */
void exec_orphans(struct exec *ex);
/* A new time limit for a running attempt (hpq update --time), counted from
 * its start: one already past stops it now. 0: none. */
void exec_set_limit(struct exec *ex, struct task *t, uint64_t time_limit_s);

/* Drops an exited record (its exit was acknowledged). */
void exec_forget(struct exec *ex, struct task *t);

/* ----------------------------------------------------- parts, for tests */

/* Who a task runs as, for its minimal environment. */
struct exec_ident {
	const char *user;
	const char *home;
	const char *shell;
	uid_t uid;
};

/*
 * The task's environment: rt->env (or, when empty, a minimal login-like
 * environment from ident), without any variable the agent manages, then
 * HPQ_TASK_ID, HPQ_ATTEMPT, HPQ_NODE_RANK, HPQ_NNODES,
 * CUDA_VISIBLE_DEVICES (gpus, comma-separated; empty when none),
 * HPQ_AGENT_SOCKET (when agent_socket is set), HPQ_CHECKPOINT_DIR (when
 * set), HPQ_RESUME_FROM and HPQ_RESUME_STEP (when resuming),
 * HPQ_MASTER_ADDR and HPQ_MASTER_PORT (when set), then batch_env's
 * (batch.h); submitted variables with those names are dropped. Returns 0 and a
 * NULL-terminated array (free with exec_env_free), or HPQ_EINVAL for an
 * entry of rt->env that is not NAME=VALUE.
 */
int exec_env_build(const Hpq__RunTask *rt, const struct exec_ident *ident, const uint32_t *gpus,
		   uint32_t ngpus, const char *agent_socket, char ***ret_env);
void exec_env_free(char **env);

/* The log file of an attempt, as above, into buf. */
void exec_log_path(const char *log_dir, const char *cluster_id, uint64_t id, uint32_t attempt,
		   char *buf, size_t len);

/* exit status of waitpid() -> exit code as above. */
int exec_exit_code(int status);

/* Start time (clock ticks after boot) and state letter of a process from
 * /proc/<pid>/stat. Returns 0, -ENOENT when there is no such process, or
 * HPQ_EINVAL when the file cannot be parsed. */
int exec_proc_stat(pid_t pid, uint64_t *ret_start, char *ret_state);

#endif
