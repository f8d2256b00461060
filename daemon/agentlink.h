/*
 * agentlink.h: the daemon's link to its agents: each agent connection's
 * session (its node, the pushes held until it is registered), what the
 * daemon sends agents (RunTask, KillTask), and the timer that declares
 * silent nodes lost (docs/decisions.md, "Dispatch and reconciliation").
 * What agents send is handled in req-agent.c.
 *
 * Messages to agents that follow a change (RunTask after a START, KillTask
 * after a cancel, a preemption or a requeue) are sent from the change's
 * commit completion, so an agent never acts on something the database
 * could still forget.
 */
#ifndef HPQD_AGENTLINK_H
#define HPQD_AGENTLINK_H

#include <stdbool.h>
#include <stdint.h>

#include "hpq.pb-c.h"
#include "state.h"

struct conn;
struct hpqd;

/* Starts the node timer (every heartbeat / 2). */
int agentlink_init(struct hpqd *d);
void agentlink_close(struct hpqd *d);

/* ---- sessions */
/* n's agent connection, or NULL while it is away. */
struct conn *agentlink_conn(struct hpqd *d, const struct node *n);
/* The node registered on c, or NULL. */
struct node *agentlink_node(const struct conn *c);
/* n registers again on c: its previous connection is dropped (once
 * state_node_register has accepted c's Register: a refused one leaves
 * the node and its connection as they were). */
void agentlink_take_over(struct hpqd *d, struct node *n, struct conn *c);
/* c registered as n: from now on n's tasks go to c, and c's close
 * disconnects n. Pushes wait until agentlink_open_pushes. */
void agentlink_attach(struct hpqd *d, struct conn *c, struct node *n);
/* Sends the RegisterReply reply, then the pushes held meanwhile, in order;
 * later pushes flow at once. */
void agentlink_open_pushes(struct conn *c, const Hpq__Envelope *reply);
/*
 * A push to an agent (RunTask, KillTask, LogRequest). An agent reads
 * nothing but RegisterReply until it is registered, so pushes decided
 * meanwhile are held and go out right after it.
 */
void agentlink_push(struct conn *c, const Hpq__Envelope *env);

/* ---- runs */
/* The rank of node in the current attempt of t, or -1. */
int agentlink_rank_on(const struct task *t, const char *node);
/* A START was recorded: send RunTask to every member once it is committed. */
void agentlink_run_after_commit(struct hpqd *d, struct task *t);
/* Stop attempt `attempt` of t on its nodes (all when rank < 0, else all
 * but that rank) once the change is committed. signo 0: the task's
 * preempt signal. */
void agentlink_kill_after_commit(struct hpqd *d, const struct task *t, uint32_t attempt,
				 int skip_rank, int signo, uint64_t grace_s, const char *reason);
/* Tells the agents of t's running attempt its new time limit once the
 * change is committed (hpq update --time). */
void agentlink_limit_after_commit(struct hpqd *d, const struct task *t);
/* Kills one run on one agent connection after the commit of whatever is
 * in flight. reason must be a literal. */
void agentlink_kill_on(struct hpqd *d, struct conn *c, uint64_t task_id, uint32_t attempt,
		       int signo, uint64_t grace_s, const char *reason);
/* The run of t lost its member at rank: requeue it, kill the rest of the gang. */
void agentlink_lose_member(struct hpqd *d, struct task *t, int rank, const char *why);
/* Requeues every run with an unfinished member on n (from its newest
 * checkpoint) and kills all its members, n's included. Returns how many. */
int agentlink_evacuate(struct hpqd *d, struct node *n, const char *why);

#endif
