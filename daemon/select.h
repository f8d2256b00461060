/*
 * select.h: which tasks a job-control request acts on (hpq cancel, hold,
 * release): a TaskSelector resolved against the model.
 *
 * Ids name tasks ("12"), whole arrays ("12" when 12 is an array: every
 * index, materialized or not), one index ("12_5") or several
 * ("12_[1-3,7]"); the filters (user, team, name, states, array) keep what
 * matches all of them, over the named ids or, without ids, over every
 * task. A whole array, or filters without ids, leave out the tasks that
 * have ended unless the states name theirs. An empty selector matches
 * nothing and is refused.
 *
 * Resolving changes nothing: an index not materialized yet is reported
 * as (array, index), and the caller materializes it once the asker's
 * rights are checked. The pending rest of a whole array is one item.
 */
#ifndef HPQD_SELECT_H
#define HPQD_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hpq.pb-c.h"

struct array;
struct state;
struct state_err;
struct task;

enum sel_kind {
	SEL_TASK,        /* t: a task (an array's materialized index or not) */
	SEL_INDEX,       /* a, index: an index not materialized yet */
	SEL_ARRAY_REST,  /* a: every index of a not materialized yet */
	SEL_MISSING,     /* an id that names nothing: code and msg */
};

struct sel_item {
	enum sel_kind kind;
	struct task *t;
	struct array *a;
	uint32_t index;
	uint64_t id;                 /* for the reply: the task's, or the array's */
	int code;
	char *msg;                   /* why it failed (malloc'd), or NULL */
	bool folded;                 /* answered for by another result: refused, by the
	                              * selection's summary; a dropped index, by the
	                              * first of its array's run (control.c) */
	uint32_t tasks;              /* how many tasks its result stands for (0: one):
	                              * an array's pending indices acted on at once */
};

struct selection {
	struct sel_item *v;
	size_t n, cap;
	/* Set by control_apply: the refusals past CONTROL_DENIED_MAX, answered
	 * as one summary, and why (malloc'd). */
	size_t folded;
	char *folded_msg;
};

/* At most this many ids per selector, and items per selection. */
#define SELECT_MAX_IDS 10000
#define SELECT_MAX_ITEMS 1000000

/*
 * Fills out (release it with select_release) or refuses the selector as a
 * whole (malformed id, unknown state name, empty selector). Array rests
 * come first, so that an operation on them goes before the operation on
 * their heads.
 */
int select_resolve(const struct state *st, const Hpq__TaskSelector *sel, struct selection *out,
		   struct state_err *e);
void select_release(struct selection *s);

/* Parses one id: "12" (*has_set false) or "12_5" / "12_[1-3,7]" (*set filled:
 * release it). */
struct array_set;
int select_parse_id(const char *s, uint64_t *id, bool *has_set, struct array_set *set,
		    struct state_err *e);

#endif
