/*
 * agent.h: one running hpq-agent: the task runner, its journal, the uplink
 * to hpqd and the local socket, and the rules that connect them.
 *
 * The rules, in one place:
 *  - RunTask starts the attempt, journals it, answers Ok (also for a
 *    repeated RunTask of an attempt already here), and reports the start
 *    with a TaskUpdate (a push: Register reports it again if it is lost).
 *  - KillTask stops the attempt (signal, grace, SIGKILL of the group) and
 *    answers Ok; the exit is reported like any other.
 *  - Every exit is journaled, then sent as a TaskUpdate request and sent
 *    again (after each reconnect, and when an answer is overdue) until
 *    the daemon answers Ok, which it does after committing the outcome;
 *    only then is the record dropped. An Error saying the daemon does not
 *    know or expect that attempt (HPQ_ENOTFOUND, HPQ_ESTATE, HPQ_EINVAL)
 *    also ends the retries, with a warning, since no retry can succeed.
 *  - Register lists every record: running attempts and unacknowledged exits,
 *    and says whether tasks are confined (cgroup.h) or why not; an exit
 *    carries what the attempt's cgroup saw (OOM kill, peak memory, CPU).
 *  - The health monitors' counted findings (health.h) go out with every
 *    Register and Heartbeat, and a heartbeat goes out at once when they
 *    change.
 */
#ifndef HPQ_AGENT_AGENT_H
#define HPQ_AGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "cgroup.h"
#include "config.h"
#include "exec.h"
#include "health.h"
#include "hpq.pb-c.h"
#include "local.h"
#include "res.h"
#include "uplink.h"

struct agent {
	struct ev_loop *loop;
	const struct agent_config *cfg;
	struct hpq_res capacity;
	char *work_dir;             /* absolute */
	char *journal_path;
	char *socket_path;
	int lock_fd;
	int64_t boot_time_ms;
	bool stopping;

	struct cgroup cgroup;       /* confines the tasks, or says why not (cgroup.h) */
	struct exec exec;
	struct uplink uplink;
	struct local local;
	struct health health;
	bool health_unsent;         /* changed while not registered: send once registered */
	char *supervisor;           /* hpq-supervisor's path; NULL: tasks run without one */
	struct health_source *work_dir_health; /* a start the work directory could not record */
	bool work_dir_bad;          /* ...is reported: probed every tick until it is not */
	int lease_fd;               /* <work_dir>/run/lease, for the supervisors; -1: none */
	int64_t lease_until;        /* its end, CLOCK_BOOTTIME ms; 0: no lease */

	/* Changes waiting for the journal, saved once per loop iteration
	 * (agent.c, agent_flush), and what may only leave after it. */
	ev_prepare flush_w;
	bool journal_dirty;
	struct agent_run *runs;     /* RunTasks to start together */
	size_t nruns, runs_cap;
	struct agent_started *started; /* RunTasks to answer and starts to report */
	size_t nstarted, started_cap;

	/* Told once the agent serves (main's READY=1): at agent_start, or, for
	 * a node that joins, once its first attempt to join is over, so that
	 * a join refused for good is an error at start. Not told when the
	 * uplink gave up (a->uplink.gave_up): the agent is to exit then. Set
	 * between agent_init and agent_start. */
	void (*on_serving)(void *ctx);
	void *on_serving_ctx;
	bool serving;
};

/*
 * Prepares the work directory (created if missing, locked against a
 * second agent), reads the journal and adopts or closes the tasks in it,
 * opens the local socket, and loads the node's credentials (uplink.h). Does not
 * connect yet. Returns 0, or a negative code with err saying what to do.
 */
int agent_init(struct agent *a, struct ev_loop *loop, const struct agent_config *cfg,
	       struct hpq_res capacity, char *err, size_t errlen);

/* Starts connecting to hpqd, and the health monitors. */
void agent_start(struct agent *a);

/*
 * Stops: with kill_tasks, stops every running task (its stop signal, its
 * grace, SIGKILL) and breaks the loop once all have ended; otherwise
 * breaks the loop at once and the tasks keep running in their sessions,
 * to be adopted by the next agent.
 */
void agent_stop(struct agent *a, bool kill_tasks);

/* After the loop: closes everything. The journal is already current. */
void agent_release(struct agent *a);

/* Number of task records still running. */
size_t agent_running(const struct agent *a);

#endif
