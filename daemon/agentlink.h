/*
 * agentlink.h: the daemon's side of the agent protocol: Register with
 * reconciliation, heartbeats, task updates, RunTask and KillTask, and the
 * timer that declares silent nodes lost (docs/decisions.md, "Dispatch and
 * reconciliation").
 *
 * Messages to agents that follow a change (RunTask after a START, KillTask
 * after a cancel, a preemption or a requeue) are sent from the change's
 * commit completion, so an agent never acts on something the database
 * could still forget.
 */
#ifndef HPQD_AGENTLINK_H
#define HPQD_AGENTLINK_H

#include <stdint.h>

#include "hpq.pb-c.h"
#include "state.h"

struct conn;
struct hpqd;

int agentlink_register(struct conn *c, uint64_t id, const Hpq__Register *m, struct state_err *e);
int agentlink_heartbeat(struct conn *c, uint64_t id, const Hpq__Heartbeat *m,
			struct state_err *e);
int agentlink_task_update(struct conn *c, uint64_t id, const Hpq__TaskUpdate *m,
			  struct state_err *e);
/* The agent's connection closed. */
void agentlink_disconnected(struct conn *c);

/* A START was recorded: send RunTask to every member once it is committed. */
void agentlink_run_after_commit(struct hpqd *d, struct task *t);
/* Stop attempt `attempt` of t on its nodes (all when rank < 0, else all
 * but that rank) once the change is committed. signo 0: SIGKILL-free
 * default (the task's preempt signal). */
void agentlink_kill_after_commit(struct hpqd *d, const struct task *t, uint32_t attempt,
				 int skip_rank, int signo, uint64_t grace_s, const char *reason);

/* Requeues every run with an unfinished member on n (from its newest
 * checkpoint) and kills all its members, n's included. Returns how many. */
int agentlink_evacuate(struct hpqd *d, struct node *n, const char *why);

/* The node timer (every heartbeat / 2): declares nodes lost. */
int agentlink_start(struct hpqd *d);
void agentlink_check_nodes(struct hpqd *d);

#endif
