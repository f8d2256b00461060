/*
 * status.h: `hpq status`, the cluster at a glance, built from
 * memory alone: the dispatcher's per-team counters (sched_team_usage,
 * sched_pool_capacity), the nodes, and one pass over the active tasks for
 * what no counter holds (oldest pending wait, longest run, per class
 * counts). Never a database scan. metrics.c builds its gauges from the
 * same reply, so the two cannot disagree.
 */
#ifndef HPQD_STATUS_H
#define HPQD_STATUS_H

#include <stdint.h>

#include "hpq.pb-c.h"
#include "state.h"

struct hpqd;

/*
 * The status at now_ms, restricted to a pool and a team when they are not
 * NULL or "" (unknown names give HPQ_ENOTFOUND with a message in e). The
 * reply owns all its memory: free it with hpq__status_reply__free_unpacked
 * (rep, NULL).
 */
int status_build(struct hpqd *d, const char *pool, const char *team, int64_t now_ms,
		 Hpq__StatusReply **ret_reply, struct state_err *e);

#endif
