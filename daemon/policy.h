/*
 * policy.h: the cluster policy (docs/design.md §4, `hpq policy show|set`): how
 * idle compute is shared (fair-share or fcfs), the usage half-life, the
 * min-runtime before a task may be preempted, the default preemption
 * grace and the longest grace a task may ask for (max-grace), and where a
 * requeued task goes back in its queue.
 *
 * The policy lives in state.policy and, durably, in the store's policy
 * table as the words people type (key, value), read back at start as they
 * are written. A change names one or more keys; all are
 * checked before any is applied, then memory, the dispatcher
 * (sched_set_policy) and the store change together, with one event of
 * kind "policy". Administrators only.
 */
#ifndef HPQD_POLICY_H
#define HPQD_POLICY_H

#include <stdint.h>

#include "hpq.pb-c.h"
#include "state.h"

/* Validates and applies every setting of req, or none. */
int policy_set(struct state *st, const Hpq__PolicySetRequest *req, const struct actor *who,
	       struct state_err *e);

/* Fills rep (strings are static) from the policy in force. */
void policy_to_pb(const struct state *st, Hpq__PolicyReply *rep);

#endif
