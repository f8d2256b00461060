/*
 * depend.h: task dependencies (`--dependency`), Slurm's grammar:
 * afterok:ID[:ID...], afterany:ID, afternotok:ID, after:ID, singleton,
 * joined by ',' (all of them) or '?' (any of them). An ID is a task, an
 * array (all its indices) or one index (ID_INDEX).
 *
 * A task whose dependencies are not met is PENDING, out of the
 * dispatcher, reason "dependency"; it enters the dispatcher with its
 * submit time once they are. One that can never be met (afterok on a task
 * that did not complete, afternotok on one that did) gets the reason
 * "dependency-never-satisfied" and, with kill_on_invalid_dep, is
 * cancelled. tasks.dependency keeps what is still waited for.
 *
 * Waiting tasks are indexed by what they wait for (a task, or an array for
 * its indices; singleton by user and name), so a change costs O(the tasks
 * waiting on it), not O(pending). singleton is "no other task of the
 * user's with this name is in the dispatcher or running"; an array's
 * indices share its name, so a singleton array runs one index at a time,
 * and only its one materialized head waits on it (array.h).
 */
#ifndef HPQD_DEPEND_H
#define HPQD_DEPEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct state;
struct state_err;
struct task;

#define DEPEND_MAX_SPEC 4096
#define DEPEND_MAX_TERMS 256

/* Checks spec for t (t may be NULL at submit): the grammar, that every id
 * exists, and that t is not among what it would wait for, directly or
 * through others (a cycle). Changes nothing. */
int depend_check(struct state *st, struct task *t, const char *spec, struct state_err *e);

/*
 * What depend_check cannot check from memory: the terms of spec that name
 * an index (ID_INDEX) of an id that left memory, which only the store
 * knows was an array with that index (store_read_indices). Puts at most
 * max of them in ids and indices, each id and index once; returns how
 * many (0 when spec does not parse: depend_check says why). With ids
 * NULL, only whether there is one.
 */
size_t depend_gone_indices(const struct state *st, const char *spec, uint64_t *ids,
			   uint32_t *indices, size_t max);

/*
 * t (PENDING, not held, not in the dispatcher) enters the dispatcher if
 * its dependencies are met; else it waits, indexed by what it waits for,
 * with its reason, or is cancelled when they can never be met and it has
 * kill_on_invalid_dep. Returns whether it entered.
 */
bool depend_offer(struct state *st, struct task *t);
/* Submit: whether t's dependencies are met now (nothing changes). */
bool depend_met(struct state *st, const struct task *t);
/*
 * t's dependency was changed (hpq update, after depend_check): a PENDING
 * task that is not held leaves the dispatcher if it is in it and enters
 * again only once the new dependencies are met.
 */
void depend_changed(struct state *st, struct task *t);
/*
 * What an array's later indices still wait for once one of its indices
 * started, for spec, what they were submitted with: the other terms are
 * met for good, singleton never is. "" without singleton, "singleton"
 * for all-of, spec itself for any-of (singleton may be what was met).
 * malloc'd.
 */
char *depend_once_started(const char *spec);
/* The tasks waiting on one look again when it starts or ends: state_init
 * subscribes them (state.h). */
void depend_follow_tasks(struct state *st);
/* Load: every waiting task is indexed and looks again. */
void depend_load_done(struct state *st);
void depend_release(struct state *st);

#endif
