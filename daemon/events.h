/*
 * events.h: the event log as the dashboards see it (hpq events, status's
 * preemption counts), on top of the events table state_event fills.
 *
 * Reads (`hpq events`) are queued behind the store's writes, so they see
 * everything recorded before them. Followers (`hpq events --follow`, `hpq top`)
 * subscribe on their connection: every event recorded after the
 * subscription is pushed to them once its batch has committed, after the
 * backlog reply, each exactly once. Old events are pruned after
 * `[events] retain` (default 30 days).
 */
#ifndef HPQD_EVENTS_H
#define HPQD_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "hpq.pb-c.h"
#include "state.h"

struct hpqd;
struct conn;
struct events;

/* Preemptions of the last hour (and a little more), oldest first. */
struct preempt_mark {
	int64_t time_ms;
	uint32_t team, pool;
};

/* Hooks into the state's event stream, seeds the preemption counts from
 * the database, starts the pruning timer. */
int events_init(struct hpqd *d);
/* Drops the followers and closes the timer (before the store closes). */
void events_close(struct hpqd *d);

/* hpq events [--follow]: answers c's request id (req-dash.c checked nothing). */
int events_request(struct events *ev, struct conn *c, uint64_t id, const Hpq__EventsRequest *m,
		   struct state_err *e);

/* Preemptions at or after since_ms (at most an hour back), oldest first. */
const struct preempt_mark *events_preemptions(struct events *ev, int64_t since_ms,
					      size_t *ret_n);

#endif
