/*
 * task.h: one attempt of a task on this node, as the agent keeps it.
 *
 * A task record lives from the RunTask that starts it until the daemon
 * acknowledges its exit (TaskUpdate answered with Ok). In between it is
 * either running (a process group we supervise) or exited (an outcome
 * waiting to be acknowledged). The list of records (a struct dlist of
 * records linked by entry) is what the journal persists, what Register
 * reports, and what the local socket checks a checkpoint against.
 * (task id, attempt) names one record.
 *
 * The record only holds data; exec.c owns the processes and watchers, the
 * journal owns the file, the uplink owns the reports.
 */
#ifndef HPQ_AGENT_TASK_H
#define HPQ_AGENT_TASK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ev.h>

#include "list.h"

struct exec;

/* Longest "why it ended" word we keep (cancelled, preempted, spawn-failed, ...). */
#define TASK_REASON_MAX 32
/* hpqd's cluster id: 32 lower-case hex digits (RunTask.cluster_id). */
#define TASK_CLUSTER_ID_LEN 32

struct task {
	struct dlist entry;

	uint64_t id;
	uint32_t attempt;
	char *name;               /* for the log header; may be empty, never NULL */
	/* Names the log file, <logs>/<cluster_id>/<id>.<attempt>.log; empty: no
	 * log file (an invalid RunTask, or a record of an older agent's journal). */
	char cluster_id[TASK_CLUSTER_ID_LEN + 1];

	pid_t pid;                /* also the process group and session id; 0: never started */
	uint64_t proc_start;      /* starttime of /proc/<pid>/stat, guards against pid reuse */
	pid_t sup_pid;            /* its hpq-supervisor (exec.h); 0: none (started without one,
				   * or the supervisor is gone and the task is watched alone) */
	uint64_t sup_start;       /* the supervisor's starttime, as proc_start */
	uid_t uid;                /* what the process runs as (not what was asked when */
	gid_t gid;                /*   the agent is not root) */
	int64_t start_ms;         /* unix ms */
	uint64_t time_limit_s;    /* 0: none */
	int stop_signal;          /* sent first when stopping it (time limit, kill); never 0 */
	uint64_t grace_s;         /* between stop_signal and SIGKILL */
	uint32_t *gpus;           /* local GPU indices given to it */
	uint32_t ngpus;
	char *checkpoint_dir;     /* for the disk monitor; NULL: none, or not known after a
				   * restart (not journaled) */

	/* Stopping: set when a kill or the time limit started one. */
	char kill_reason[TASK_REASON_MAX]; /* empty: not being stopped */
	int64_t kill_deadline_ms; /* SIGKILL for the group at this time */

	/* Outcome. */
	bool exited;
	int exit_code;            /* exit status, 128 + signal, 127 spawn failure, -1 unknown */
	int64_t end_ms;
	char reason[TASK_REASON_MAX];
	/* What its cgroup saw (cgroup.h), read when it ended; zero unconfined. */
	bool oom;                 /* the kernel's OOM killer acted in it */
	uint64_t peak_mem;        /* bytes */
	uint64_t cpu_usec;

	/* Reporting (not persisted). */
	bool update_inflight;     /* an exit TaskUpdate waits for its answer */
	int64_t update_sent_ms;

	/* Supervision (exec.c). */
	bool adopted;             /* not our child (agent restarted): watched by polling /proc */
	ev_child child_w;
	ev_timer limit_w;
	ev_timer kill_w;
	ev_timer poll_w;
	struct exec *exec;
};

/* A zeroed record for (id, attempt); name may be NULL. */
struct task *task_new(uint64_t id, uint32_t attempt, const char *name);
void task_free(struct task *t);
/* Frees every record of the list and leaves it empty. Watchers must be stopped. */
void task_list_release(struct dlist *list);

struct task *task_find(const struct dlist *list, uint64_t id, uint32_t attempt);
size_t task_list_count(const struct dlist *list);

/* Copies a reason word, truncating to TASK_REASON_MAX - 1. */
void task_set_reason(char dst[TASK_REASON_MAX], const char *reason);

/* Whether s is a cluster id: exactly TASK_CLUSTER_ID_LEN of [0-9a-f]. */
bool task_cluster_id_ok(const char *s);

#endif
