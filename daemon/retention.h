/*
 * retention.h: how long ended tasks stay, in memory ([tasks] keep_finished)
 * and in the database ([tasks] retain).
 */
#ifndef HPQD_RETENTION_H
#define HPQD_RETENTION_H

struct hpqd;

/* Sweeps of at most this many tasks out of memory, one a second. */
#define RETENTION_EVICT_MAX 10000
/* Rows of ended tasks deleted from the database per batch: one batch a
 * second while there is more to delete, else one a minute. */
#define RETENTION_PRUNE_ROWS 500

int retention_init(struct hpqd *d);
void retention_close(struct hpqd *d);
/* One sweep and one prune batch now, as the timer does (for the tests). */
void retention_tick(struct hpqd *d);

#endif
