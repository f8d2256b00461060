/*
 * submit.h: a new task, from a client's TaskSpec (submit.c).
 */
#ifndef HPQD_SUBMIT_H
#define HPQD_SUBMIT_H

#include "hpq.pb-c.h"
#include "state.h"

/* Checks spec as a whole and, when nothing refuses it, makes the task
 * (*ret_task): recorded, in its array, waiting for its dependencies or
 * its plan, or in the dispatcher. Else a negative code, with e's message,
 * and nothing changed. */
int state_task_submit(struct state *st, const Hpq__TaskSpec *spec, const struct actor *who,
		      struct task **ret_task, struct state_err *e);

#endif
