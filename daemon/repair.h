/*
 * repair.h: node service administration and automatic repair (docs/design.md §9): `hpq node drain|resume|repair`, and the loop that takes a node
 * whose fatal finding or unreachability has lasted its wait time out of
 * service, requeues its tasks, runs the configured repair command, and
 * returns the node after a streak of healthy heartbeats (or leaves it
 * `down` when the repair times out), within the pool's blast-radius limits.
 *
 * Service states: active draining drained repairing down. Every change goes
 * through state_node_set_service, so each is persisted with who made it and
 * is an event.
 */
#ifndef HPQD_REPAIR_H
#define HPQD_REPAIR_H

#include <stdint.h>

#include "hpq.pb-c.h"
#include "state.h"

struct config;
struct hpqd;

int repair_init(struct hpqd *d);
/* At stop: ends the timer and signals repair commands still running. */
void repair_close(struct hpqd *d);

/* SIGHUP: takes the [repair] settings of cfg. */
void repair_reload(struct hpqd *d, const struct config *cfg);

/* The action (reboot replace none) for a finding's reason: [repair.actions],
 * else the agent's suggestion, else the built-in table. */
const char *repair_action_for(const struct config *cfg, const char *reason,
			      const char *suggested);

/*
 * An administrator's orders, already checked by the caller (req-node.c):
 * drain (no new work; the node stays out of service until resumed; an
 * empty reason says who drained it), resume, and repair now (action
 * reboot|replace|none, or "" for the one its worst finding calls for).
 * Each is recorded; the caller replies once it is committed.
 */
void repair_drain(struct hpqd *d, struct node *n, const char *by, const char *reason);
void repair_resume(struct hpqd *d, struct node *n, const char *by, const char *reason);
int repair_now(struct hpqd *d, struct node *n, const char *by, const char *action,
	       const char *reason, struct state_err *e);

#endif
