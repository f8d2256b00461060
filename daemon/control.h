/*
 * control.h: job control on the model: hold and release of pending tasks,
 * and carrying out cancel, hold and release over a selection (select.h),
 * with each item's outcome for the reply.
 *
 * A held task is PENDING and out of the dispatcher, reason "held"; its
 * release puts it back with its submit time, so it keeps its place in the
 * queue. Holding a whole array holds its pending indices as one (the
 * arrays row) and its materialized pending tasks; holding one index that
 * is not materialized materializes it, held. Cancelling such indices
 * drops them from the pending set without making them tasks, before the
 * array's head is acted on; each run of one array's is one result
 * (sel_item.tasks).
 */
#ifndef HPQD_CONTROL_H
#define HPQD_CONTROL_H

#include <stdbool.h>

#include "select.h"

struct actor;
struct state;
struct state_err;
struct task;

enum control_op {
	CONTROL_CANCEL,
	CONTROL_HOLD,
	CONTROL_RELEASE,
	CONTROL_REQUEUE,             /* running tasks only: back to the queue at their exit */
};

/*
 * Refusals for want of rights answered and recorded one by one in one
 * request; past them, a selection's refused tasks are counted and answered
 * by one summary, recorded as one "denied" event, so that a user's filter
 * over a shared queue (hpq cancel --state pending) gets a reply that fits
 * a frame and writes a bounded number of events.
 */
#define CONTROL_DENIED_MAX 100

/* Holds (release false) or releases t. */
int state_task_hold(struct state *st, struct task *t, bool release, const struct actor *who,
		    struct state_err *e);

/*
 * Applies op to every item of sel (SEL_MISSING items keep their error):
 * each item's code and msg say how it went. kill(arg, t) is called for
 * each running task whose stop must reach its agent (state_task_cancel or
 * state_task_requeue_request returned 1); refusals for rights are recorded (rights_denied).
 * The refusals past the first CONTROL_DENIED_MAX are folded (sel_item.folded)
 * and counted in sel->folded, with sel->folded_msg saying who may act on them.
 */
void control_apply(struct state *st, struct selection *sel, enum control_op op,
		   const struct actor *who, void (*kill)(void *arg, struct task *t), void *arg);

#endif
