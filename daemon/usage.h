/*
 * usage.h: GPU-hour accounting for `hpq usage`.
 *
 * Usage is integrated in memory: the current rates (the dispatcher's per
 * team and pool used, borrowed and lent GPUs; per user and per class the
 * GPUs of the running tasks) times the time they held, added up in
 * accumulators at every event that may change them and at every loop
 * iteration, so a figure is exact to the loop iteration (milliseconds),
 * whatever the tasks' lengths.
 * Accumulators go to the usage table (schema v2, store-open.c) in hourly
 * buckets every minute, at every hour boundary, before every query and
 * when the daemon stops; a crash loses at most the last minute.
 */
#ifndef HPQD_USAGE_H
#define HPQD_USAGE_H

#include <stdint.h>

#include "hpq.pb-c.h"
#include "state.h"

struct hpqd;
struct conn;
struct store_event;

int usage_init(struct hpqd *d);
/* Integrates up to now and writes the last rows (before the store closes). */
void usage_close(struct hpqd *d);
/* hpq usage: answers c's request id; u may be NULL (accounting is off). */
int usage_request(struct usage *u, struct conn *c, uint64_t id, const Hpq__UsageRequest *m,
		  struct state_err *e);
/* For the tests: catches up, then counts the running tasks afresh; 0 when
 * what the events kept per user, class and plan agrees with the count,
 * else HPQ_ESTATE and what differs (the count stays). */
int usage_verify(struct usage *u, char *err, size_t errlen);

#endif
