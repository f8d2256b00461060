/*
 * task-reply.h: a task as a reply carries it (Hpq__Task), for hpq show,
 * hpq list and an array's unstarted index: every field, or only the
 * table's; and what a reader who may not see a task's private data
 * (rights.h) gets instead.
 *
 * The strings are borrowed from the task: the reply must be encoded
 * before the task can change or leave memory.
 */
#ifndef HPQD_TASK_REPLY_H
#define HPQD_TASK_REPLY_H

#include "hpq.pb-c.h"
#include "rights.h"
#include "task.h"

/* Fills pb from t (every field); res is pb's per_node storage. */
void task_to_pb(const struct state *st, const struct task *t, Hpq__Task *pb,
		Hpq__Resources *res);
/* Fills pb with only what hpq list's default table shows (LIST_VIEW_TABLE,
 * task_to_pb's first part): no argv, environment or paths, so nothing is
 * private to redact. pb and res are initialised once, or hold a row
 * already: every field that a table row carries is set, and the rest stay
 * as they were, so that a list can fill one Task for all its rows. */
void task_table_row(const struct state *st, const struct task *t, Hpq__Task *pb,
		    Hpq__Resources *res);
/* A table row (task_table_row) with the fields that only other columns of
 * hpq list --format show (LIST_VIEW_FORMAT): pool, submit time, time limit,
 * attempts, preemptions, dependency and usage, none of them private. */
void task_format_row(const struct state *st, const struct task *t, Hpq__Task *pb,
		     Hpq__Resources *res);
/* Withholds t's private data from a reader who may not see it. */
void task_redact(const struct rights_view *v, const struct task *t, Hpq__Task *pb);

#endif
