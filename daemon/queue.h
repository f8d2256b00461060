/*
 * queue.h: where a pending task stands in its team's queue (hpq list and
 * hpq show: "borrow-limit #3"). The dispatcher orders a team's pending
 * tasks by class weight (higher first), then queue time (the submit time,
 * or the eviction time under requeue-order = eviction: task.queue_ms
 * mirrors it), then id; position 1 is the task the team starts next.
 *
 * Positions are computed on demand, for reads only, never in the cycle:
 * one task costs a pass over the tasks; a whole list a pass over the
 * pending ones, and a sort of those whose queue times are out of id order
 * (requeued, or an array's indices).
 */
#ifndef HPQD_QUEUE_H
#define HPQD_QUEUE_H

#include <stdint.h>

#include "state.h"

struct queue_index;

/* Is t in its team's queue: pending and offered to the dispatcher (not
 * held, nor waiting for a dependency or its array's limit)? Only such a
 * task has a position. */
bool queue_has(const struct task *t);

/* 1-based position of t in its team's queue; 0 if it is not in it (queue_has). */
uint32_t queue_position(const struct state *st, const struct task *t);

/* Positions of every pending task at once. Asking in id order (a list's
 * walk, either way) costs a step each, else a binary search. */
struct queue_index *queue_index_new(const struct state *st);
uint32_t queue_index_get(struct queue_index *q, uint64_t task_id);
void queue_index_free(struct queue_index *q);

#endif
