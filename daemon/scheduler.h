/*
 * scheduler.h: the dispatcher, a pure module (docs/design.md §1, §4, §5).
 *
 * It keeps its own indexes over the cluster (per-pool free capacity,
 * per-team pending queues ordered by class weight then submit time,
 * incremental usage counters) and, when asked to run a cycle, returns
 * decisions: start task X on nodes A,B; preempt task Y for task Z. It does
 * no I/O, reads no clock (the caller passes `now`), and knows nothing of
 * sockets or SQLite. The daemon turns decisions into messages and storage
 * writes; the unit tests and tests/bench/sched drive it directly.
 *
 * Identities. Pools, teams, classes and nodes are small dense integers the
 * caller chooses (indexes into its own arrays); the module grows its
 * tables to fit. Tasks are `struct sched_task` records that the caller
 * embeds in its own task record (get back with container_of), so pending
 * tasks cost no second allocation.
 *
 * Lifecycle of a task as the dispatcher sees it:
 *
 *   sched_task_submit ──▶ PENDING ──(START decision)──▶ RUNNING
 *        ▲                                   │   │
 *        └── sched_task_requeue ◀────────────┘   └──(PREEMPT decision)──▶ PREEMPTING
 *                      ▲                                                     │
 *                      └─────────────────────────────────────────────────────┘
 *   sched_task_finish: from any state, the task leaves the dispatcher
 *   (ended, cancelled). Resources held by RUNNING/PREEMPTING tasks are
 *   released by requeue and finish, never before.
 *
 * A START decision has already moved the task to RUNNING and reserved its
 * nodes; a PREEMPT decision has already moved the victim to PREEMPTING (it
 * still holds its resources until the caller reports it stopped). If the
 * caller cannot carry out a START (the agent vanished), it calls
 * sched_task_requeue.
 *
 * Cost: task calls are O(log n) in the number of tasks; a cycle costs
 * O(dirty pools x teams) plus the work it decides, never O(pending), and
 * O(1) when nothing changed. Model changes are rare and may cost more:
 * sched_class_set re-sorts the pending queues (O(pending)), a node that
 * changes (not one that joins) rebuilds its pool's index (O(its nodes)).
 */
#ifndef HPQ_SCHED_H
#define HPQ_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "res.h"

struct sched;

enum sched_idle_policy {
	SCHED_IDLE_FAIR_SHARE = 0,
	SCHED_IDLE_FCFS = 1,
};

struct sched_policy {
	enum sched_idle_policy idle;
	int64_t half_life_ms;      /* usage decay for fair share (default 1h) */
	int64_t min_runtime_ms;    /* a task runs at least this long before it may be preempted */
	bool requeue_by_eviction;  /* requeued tasks go behind (eviction time) instead of keeping submit time */
};

enum sched_sharing {
	SCHED_LEND_AND_BORROW = 0,
	SCHED_LEND = 1,
	SCHED_DONT_LEND = 2,
};

/*
 * A team's terms in one pool. Admission applies them per resource, and
 * only to the resources someone holds a guarantee of in that pool: with
 * GPU-only guarantees, CPUs and memory are not governed there (no task
 * "borrows" CPUs), only placement checks them. A pool where nobody holds a
 * guarantee is all idle compute: the idle-allocation policy and the team
 * weights share it (fair share by use of its GPUs, or CPUs in a pool
 * without GPUs), with no borrow limits.
 */
struct sched_quota {
	struct hpq_res guarantee;
	enum sched_sharing sharing;
	uint32_t borrow_limit_pct;     /* of the guarantee, 0..10000; default 50 */
	bool has_borrow_abs;           /* borrow limit is borrow_abs instead of the percentage */
	struct hpq_res borrow_abs;
	bool has_lend_limit;           /* default: all of the unused guarantee */
	struct hpq_res lend_limit;
};

enum sched_state {
	SCHED_NONE = 0,   /* not known to the dispatcher */
	SCHED_PENDING,
	SCHED_RUNNING,
	SCHED_PREEMPTING,
};

/* Why a pending task waits (hpq list's reason column). */
enum sched_reason {
	SCHED_REASON_NONE = 0,
	SCHED_REASON_QUOTA,          /* over guarantee and the team may not borrow */
	SCHED_REASON_BORROW_LIMIT,   /* would exceed the team's borrow limit */
	SCHED_REASON_NO_IDLE,        /* needs idle compute and none is free (in the
	                              * accounts, or on the nodes) */
	SCHED_REASON_CAPACITY,       /* larger than any set of healthy nodes can give,
	                              * or within its guarantee but the nodes are
	                              * taken by work that cannot be reclaimed */
	SCHED_REASON_PRIORITY,       /* what it needs is held for higher-ranked work:
	                              * the pool's reservation, or a beneficiary's
	                              * claim */
	SCHED_REASON_GANG,           /* enough in sum, but not on enough whole nodes */
	SCHED_REASON_PREEMPTING_FOR, /* victims are being preempted for it */
	SCHED_REASON_UNHEALTHY_POOL, /* no schedulable node in its pool */
};

const char *sched_reason_name(enum sched_reason r);

/*
 * A task as the dispatcher sees it. The caller fills the public fields
 * before sched_task_submit and must not change them while the task is
 * known to the dispatcher; the rest belongs to the module.
 */
struct sched_task {
	/* set by the caller */
	uint64_t id;
	int64_t submit_ms;           /* queue order within (team, class weight) */
	uint32_t team, pool, class_id;
	uint32_t nnodes;             /* gang size, >= 1 */
	struct hpq_res per_node;
	bool successor;              /* when it starts, ask the successor hook for the
	                              * next task (sched_set_successor); may change at
	                              * any time */

	/* read-only for the caller (checkpoint_ms may be preset from the store
	 * before submit or adopt; later it changes via sched_task_checkpoint) */
	enum sched_state state;
	int64_t start_ms;            /* when the current attempt started */
	int64_t checkpoint_ms;       /* newest checkpoint, 0 if none */
	uint32_t *nodes;             /* nnodes node ids while RUNNING/PREEMPTING */
	struct sched_task *preempting_for; /* PREEMPTING: the task it makes room for;
	                                    * NULL once that task left or gave up */

	/* private to scheduler.c */
	int64_t queue_key;           /* submit_ms or eviction time */
	uint32_t heap_index;         /* in its queue, its team's running set, or plans */
	uint32_t flags;              /* also caches the class weight */
	uint32_t node_one;           /* nodes of a one-node task: no allocation */
};

enum sched_action {
	SCHED_START = 1,    /* task is now RUNNING on task->nodes */
	SCHED_PREEMPT = 2,  /* task is now PREEMPTING; stop it, then requeue it */
};

enum sched_preempt_cause {
	SCHED_CAUSE_NONE = 0,
	SCHED_CAUSE_RECLAIM,   /* a team takes its guarantee back */
	SCHED_CAUSE_PRIORITY,  /* higher class of the same team */
};

struct sched_decision {
	enum sched_action action;
	struct sched_task *task;
	struct sched_task *beneficiary;   /* PREEMPT: for whom */
	enum sched_preempt_cause cause;
};

struct sched *sched_new(const struct sched_policy *policy);
/* Frees the dispatcher and the nodes arrays of the tasks it still knows:
 * call it before freeing those tasks. */
void sched_free(struct sched *s);
void sched_set_policy(struct sched *s, const struct sched_policy *policy);

/* Model. Return 0 or HPQ_EINVAL. Changes take effect in the next cycle. */
int sched_class_set(struct sched *s, uint32_t class_id, uint32_t weight, bool preemptible);
int sched_team_set(struct sched *s, uint32_t team, uint32_t weight, bool preempt_own_lower);
int sched_team_quota(struct sched *s, uint32_t team, uint32_t pool, const struct sched_quota *q);
/* Terms in every pool where the team has no sched_team_quota (the built-in
 * `default` team: lend-and-borrow, has_borrow_abs with huge values). The
 * guarantee must be zero. Without it a team has no guarantee and may not
 * borrow (50% of nothing) in such pools. */
int sched_team_default_quota(struct sched *s, uint32_t team, const struct sched_quota *q);
/* A node that is not schedulable (unhealthy, draining, disconnected) keeps
 * the tasks it has but receives no new ones and does not count as capacity. */
int sched_node_set(struct sched *s, uint32_t node, uint32_t pool, struct hpq_res capacity,
		   bool schedulable);
int sched_node_remove(struct sched *s, uint32_t node); /* HPQ_EBUSY if tasks hold it */
/* How many tasks hold node now (running or preempting); 0 if it is unknown. */
uint32_t sched_node_tasks(const struct sched *s, uint32_t node);
/* Whether a preemption's beneficiary holds room on node until it starts:
 * such a node, like one with tasks, may not change pools. */
bool sched_node_claimed(const struct sched *s, uint32_t node);

/*
 * The successor hook: when a task with `successor` set starts (a START
 * decision, in a cycle), fn(ctx, started) may return a new task, filled in
 * as for sched_task_submit, which joins the queue at once (counted as
 * pending), so the same cycle may start it too. This lets a caller keep a
 * long run of like tasks (an array's pending indices) as one queued task
 * and hand over the next only when the one before starts: the queue, and
 * the cycle's cost, stay the same whatever the run's length. fn must not
 * call into the dispatcher; NULL (the default) turns the hook off.
 */
typedef struct sched_task *(*sched_successor_fn)(void *ctx, struct sched_task *started);
void sched_set_successor(struct sched *s, sched_successor_fn fn, void *ctx);

/* Tasks. */
int sched_task_submit(struct sched *s, struct sched_task *t);
/* Restart: a task the store says was RUNNING on these nodes (known nodes
 * of its pool, distinct; HPQ_EINVAL otherwise). Its usage counts even if
 * the nodes are not schedulable or now too small. */
int sched_task_adopt(struct sched *s, struct sched_task *t, const uint32_t *nodes, int64_t start_ms);
/* Back to PENDING (preempted, node lost, could not start). */
void sched_task_requeue(struct sched *s, struct sched_task *t, int64_t now_ms);
/* Leaves the dispatcher, releasing what it holds. */
void sched_task_finish(struct sched *s, struct sched_task *t, int64_t now_ms);
void sched_task_checkpoint(struct sched *s, struct sched_task *t, int64_t now_ms);
/* A RUNNING or PREEMPTING task changes class (hpq update --class): its
 * usage moves to the new class, and from the next cycle it is weighed as
 * one of it (as a victim, and when it preempts its team's lower work). A
 * pending task changes class by leaving and being submitted again.
 * HPQ_EINVAL for a task in neither state. */
int sched_task_set_class(struct sched *s, struct sched_task *t, uint32_t class_id);

/* Why t (PENDING) waits right now. Costs O(nodes in its pool) at most;
 * for queries, not for the cycle. */
enum sched_reason sched_task_reason(struct sched *s, const struct sched_task *t);

/*
 * Runs one dispatch cycle at time now_ms and returns its decisions (valid
 * until the next call of any sched_* function that changes state); *ret_n
 * is their count. Cheap when nothing can start: O(teams + pools).
 */
const struct sched_decision *sched_cycle(struct sched *s, int64_t now_ms, size_t *ret_n);

/*
 * When a cycle may decide something without any other event: a preemption
 * that waits for a victim to reach min_runtime. INT64_MAX if never. The
 * daemon arms a timer for it and runs sched_cycle then (an earlier cycle
 * does no harm). Valid after sched_cycle.
 */
int64_t sched_next_wakeup(const struct sched *s);

/* Per team and pool accounting, for status and metrics. */
struct sched_usage {
	struct hpq_res used, borrowed, lent, guarantee;
	uint32_t running, pending;
};
int sched_team_usage(const struct sched *s, uint32_t team, uint32_t pool, struct sched_usage *ret);
/* Capacity and free capacity of the schedulable nodes in a pool. */
int sched_pool_capacity(const struct sched *s, uint32_t pool, struct hpq_res *ret_capacity,
			struct hpq_res *ret_free);

#endif
