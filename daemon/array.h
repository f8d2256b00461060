/*
 * array.h: task arrays in the daemon's model (state.h).
 *
 * `--array 0-999%50` is one submit and one array. The array's id is the
 * task id of its first index, which is a normal task made at submit. The
 * other indices wait as a compact set of ranges (struct array_set: a few
 * bytes per range, nothing per index) until they are needed: the array
 * keeps at most one of them materialized as a pending task, its head, in
 * the dispatcher. When the head starts, the dispatcher's successor hook
 * (scheduler.h) asks for the next index, which is materialized then (a new
 * task id, a copy of the array's template) and may start in the same
 * cycle; the `%` limit stops the chain while that many indices run, and
 * an index that ends lets it go on. A hold or release of one index that
 * is not materialized materializes it first; a cancel drops it from the
 * pending set (array_drop_index), as the cancel of a whole array drops
 * them all.
 *
 * The arrays table keeps each array's pending set as ranges
 * ("5-999:2,1001"), rewritten as indices are materialized, and the
 * dependency its indices were submitted with.
 *
 * A singleton array (`--dependency singleton`) runs one index at a time:
 * the successor hook still materializes the next index, which waits on
 * singleton out of the dispatcher as the array's head (depend.c holds it
 * there: successor_held, state.h), and enters once the one that runs has
 * ended. The pending rest waits as ranges behind it: one waiter per array,
 * whatever its length.
 */
#ifndef HPQD_ARRAY_H
#define HPQD_ARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batchspec.h"
#include "hpq.pb-c.h"

struct state;
struct state_err;
struct task;
struct store_array_row;
struct store_task_row;

/* lo, lo + step, ..., hi (hi is in the range: (hi - lo) % step == 0). */
struct array_range {
	uint32_t lo, hi, step;
};

/* A set of indices as disjoint ranges sorted by lo. */
struct array_set {
	struct array_range *r;
	uint32_t n, cap;
};

/* Parses "0-999%50", "1,3,5-9:2", "7": returns 0 with *set filled (owned
 * by the caller: array_set_release) and *max_running (0: no % limit), or
 * a negative code with a message. */
int array_set_parse(const char *spec, struct array_set *set, uint32_t *max_running,
		    struct state_err *e);
/* A set as hpqd wrote it into the store (array_set_format): as
 * array_set_parse, but of any length, since a subset of a spec, its
 * indices cancelled here and there, can take far more text than the
 * spec. */
int array_set_load(const char *text, struct array_set *set);
void array_set_release(struct array_set *set);
uint64_t array_set_count(const struct array_set *set);
static inline bool array_set_empty(const struct array_set *set)
{
	return set->n == 0;
}
uint32_t array_set_min(const struct array_set *set);   /* the set must not be empty */
uint32_t array_set_max(const struct array_set *set);
bool array_set_has(const struct array_set *set, uint32_t idx);
/* Returns whether idx was there. */
bool array_set_remove(struct array_set *set, uint32_t idx);
/* Adds idx, joining it to the range before or after it where it follows
 * with that range's stride (step for a range of one index). */
void array_set_add(struct array_set *set, uint32_t idx, uint32_t step);
/* The set as ranges ("5-999:2,1001"; "" when empty), malloc'd. */
char *array_set_format(const struct array_set *set);
/* Calls fn for each index from the first at or above from, in order, until
 * it returns false. */
void array_set_each(const struct array_set *set, uint32_t from,
		    bool (*fn)(void *arg, uint32_t idx), void *arg);
/* The same from the highest index at or below from, down. */
void array_set_each_desc(const struct array_set *set, uint32_t from,
			 bool (*fn)(void *arg, uint32_t idx), void *arg);

struct array {
	uint64_t id;                 /* the task id of its first index */
	char *spec;                  /* every index, as ranges, without the % limit */
	struct array_set pending;    /* indices not materialized yet */
	uint32_t max_running;        /* the % limit; 0: none */
	uint32_t min, max, count, step; /* of the whole array (RunTask, SLURM_ARRAY_*) */
	bool held;                   /* the pending set is held */
	struct task *tmpl;           /* what every index runs: a task of its own, never
	                              * in the dispatcher nor in the state's tasks;
	                              * NULL once every index is materialized */
	struct task *head;           /* the materialized pending head, or NULL */
	uint32_t nactive;            /* indices started and not yet requeued or ended */
	uint32_t noffered;           /* indices PENDING in the dispatcher (the head too) */
	uint32_t nparked;            /* indices ready but out of it: the % limit is reached */
	/* for dependencies on the whole array (depend.h) */
	uint32_t nbegun;             /* indices that started or ended */
	uint32_t nok, nbad;          /* indices ended COMPLETED, or otherwise (dropped too) */
	bool deps_met;               /* an index started: the next need not wait, but
	                              * for singleton (later) */
	char *dependency;            /* what its indices were submitted with; "" also
	                              * for an array of a store before version 15 */
	char *later;                 /* what an index waits for once deps_met
	                              * (depend_once_started): "" but for singleton */
	/* Indices that did not end COMPLETED and left memory, and those a
	 * cancel dropped: every other index that is neither pending nor in
	 * memory completed. Nothing is kept for a completed index. */
	struct array_set gone_bad;
	struct array_set dropped;    /* indices a cancel dropped before they existed
	                              * (arrays.dropped: the store cannot tell them
	                              * from the completed ones [tasks] retain deleted) */
	bool dropped_unknown;        /* at load: a row from before schema 16 */
	struct array_set rows;       /* at load, dropped_unknown only: its indices
	                              * that have a row */
	int64_t last_end_ms;         /* when its newest ended index in memory ended */
};

/* The array with this id; NULL if none (id 0: a task in no array). */
struct array *array_find(const struct state *st, uint64_t id);
/* The place in st->arrays (ordered by id) of the first array of id or more. */
size_t arrays_lower_bound(const struct state *st, uint64_t id);
/* The materialized task of index idx of a, or NULL. */
struct task *array_task_find(const struct state *st, const struct array *a, uint32_t idx);
/* a's pending indices as one list row: "5-999%50". malloc'd. */
char *array_pending_spec(const struct array *a);
/* Why a's pending indices wait: "held", "array-limit", or its head's reason. */
const char *array_pending_reason(const struct state *st, const struct array *a);

/* Submit (task.c): checks spec; then names t index min of a new array;
 * then, once t is recorded, makes the array, whose indices wait for
 * dependency, and those after the first to start for later
 * (depend_once_started). */
int array_submit_check(const char *spec, struct state_err *e);
void array_submit_first(struct task *t, const char *spec);
void array_submit_create(struct state *st, struct task *t, const char *spec,
			 const char *dependency, const char *later);

/*
 * Index idx of a materialized now: a PENDING task in the state, recorded,
 * not in the dispatcher; NULL if idx is not pending in a. Operations on
 * one index (hold, cancel) call it first.
 */
struct task *array_materialize(struct state *st, struct array *a, uint32_t idx);
/* Drops every pending index of a (cancel of a whole array); recorded. */
void array_drop_pending(struct state *st, struct array *a);
/*
 * A cancel of some pending indices, none of which is a task: each ends
 * without ever being one, as array_drop_pending ends them all.
 * array_drop_index takes idx out of the pending set (false: it was not
 * there), and array_drop_done records a after n of them, which end now,
 * once, however many there were.
 */
bool array_drop_index(struct array *a, uint32_t idx);
void array_drop_done(struct state *st, struct array *a, uint32_t n);
/* Holds or releases the pending set of a (not its head); recorded. */
void array_set_held(struct state *st, struct array *a, bool held);
/* Gives a a head in the dispatcher when it has pending indices, none is
 * held, it has no head and its % limit allows one more. */
void array_refill(struct state *st, struct array *a);

/*
 * t, an array's pending task whose dependencies are met, enters the
 * dispatcher (1), or waits with reason "array-limit" while its array's %
 * limit is reached (0; array_refill offers it later). < 0: the
 * dispatcher refused it.
 */
int array_offer(struct state *st, struct task *t);
/*
 * An array follows its tasks (state_init subscribes it: state.h): one
 * leaving the dispatcher or coming back changes what is active and
 * offered; a start counts its first attempt; an end counts it and
 * refills the array; one leaving memory leaves whether it completed.
 */
void array_follow_tasks(struct state *st);

/* Whether idx is one of a's indices (its spec; not a hot path). */
bool array_has_index(const struct array *a, uint32_t idx);

/*
 * ---- leaving memory ([tasks] keep_finished, state_tasks_evict)
 *
 * An array's ended task leaves memory as any task does; its array keeps
 * the index if it did not complete (gone_bad) for dependencies on it. An
 * array whose every index has ended and whose tasks have all left goes
 * too, in the same call; one that did not all complete stays known as a
 * task that did not (task_gone_bad), and one of which some indices
 * completed and some not keeps the indices that did not (as ranges: a
 * few bytes per such index, nothing for the others). A restart loads
 * the arrays that may still be in memory with their gone indices that
 * did not complete (array_load_gone: from their rows, or from
 * arrays_gone_bad once [tasks] retain deleted them) and those a cancel
 * dropped; the rest that are neither pending nor loaded completed. One
 * that ended and none of whose tasks is loaded is not built: the store
 * names it a task that did not complete if it did not all complete, and
 * it gets its record at once (array_load_left), with every index that
 * did not complete, unless none completed.
 */
struct array_gone {
	uint64_t id;
	struct array_set bad;        /* its indices that did not end COMPLETED */
	uint32_t count, step;        /* at load (array_load_left): of the whole
	                              * array; count 0 after */
};

/* Whether index idx of array id, which left memory, ended COMPLETED
 * (false for an array that is not known). */
bool array_gone_completed(const struct state *st, uint64_t id, uint32_t idx);

/* The RunTask description of t's array: zero if t is in none. */
void array_run_fields(const struct state *st, const struct task *t, uint32_t *min,
		      uint32_t *max, uint32_t *count, uint32_t *step);

/* state.c: loading. Arrays load before tasks; the task rows of first
 * indices give the arrays their templates; after the tasks, every array
 * counts its running indices and gets a head. */
void array_load(struct state *st, const struct store_array_row *row, const char *later);
void array_load_task(struct state *st, const struct store_task_row *row);
void array_load_done(struct state *st);
/* An array that ended and left, and did not all complete (the store did
 * not load it: STORE_GONE_ARRAY_LEFT): its record, with the indices a
 * cancel dropped; those of its tasks that did not complete follow
 * (array_load_gone). */
void array_load_left(struct state *st, uint64_t id, const char *spec, const char *dropped);
/* An ended task of array array_id that stayed in the store (state_load):
 * one that did not complete, or any of an array whose dropped indices are
 * not known yet. */
void array_load_gone(struct state *st, uint64_t array_id, uint32_t index, bool completed);
void array_release_all(struct state *st);
/* The dispatcher's successor hook (scheduler.h), set by state_init. */
struct sched_task *array_successor(void *ctx, struct sched_task *started);

#endif
