/*
 * state.h: the daemon's in-memory model of the cluster, with the
 * dispatcher (scheduler.h) kept in step inside it. The nouns have their
 * own files: task.h (tasks), team.h (pools, teams, classes), node.h
 * (nodes); policy.h sets the cluster policy. This header is the whole:
 * struct state, who asks for a change, how a refusal is said, the event
 * log, and who hears of changes.
 *
 * Every change goes through a state_* function that validates it as a
 * whole, applies it to memory and to the dispatcher, and records the rows
 * and the event it produced in the store's open batch (store.h), all or
 * nothing. Callers that promise durability (a reply that says "accepted")
 * then wait for the commit with store_after_commit. Nothing here sends
 * messages: the callers (the req-*.c handlers, agentlink.c, dispatch.c)
 * do, because only they know which connection a change concerns.
 */
#ifndef HPQD_STATE_H
#define HPQD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "list.h"
#include "node.h"
#include "scheduler.h"
#include "strmap.h"
#include "task.h"
#include "team.h"

struct array;
struct array_gone;
struct depend;
struct plans;
struct store;
struct store_event;

/* Limits on what anyone may ask for: well beyond any real machine, low
 * enough that sums over a large cluster cannot overflow. */
#define STATE_MAX_GPUS 4096
#define STATE_MAX_CPUS (1 << 20)
#define STATE_MAX_MEM ((int64_t)1 << 40)       /* MiB: one exbibyte */
#define STATE_MAX_NODES_PER_TASK 1024
#define STATE_MAX_NTASKS_PER_NODE 1024
#define STATE_MAX_TIME_LIMIT_S (366ull * 24 * 3600)
#define STATE_MAX_ARGS 65536
#define STATE_MAX_PATH 4096                    /* bytes of a path a task names */

/* The cluster policy (the policy table; `hpq policy`, docs/design.md §4). */
struct state_policy {
	struct sched_policy sched;
	uint64_t grace_s;            /* default preemption grace */
	uint64_t max_grace_s;        /* no task's own grace is longer */
};

struct state {
	struct sched *sched;
	struct store *store;

	struct task **tasks;         /* ordered by id */
	size_t ntasks, tasks_cap;
	/* No ended task among them ended before this: state_tasks_evict walks
	 * them only when one may have (INT64_MAX: none has ended). */
	int64_t ended_first_ms;
	uint64_t next_id;
	struct array **arrays;       /* array.h: ordered by id */
	size_t narrays, arrays_cap;
	/* array.h: arrays that left memory with some indices completed and
	 * some not, ordered by id, each with the indices that did not */
	struct array_gone *arrays_gone;
	size_t narrays_gone, arrays_gone_cap;
	struct depend *depend;       /* depend.h: who waits for whom */
	struct plans *plans;         /* plan.h: training plans */

	struct team **teams;
	uint32_t nteams;
	struct prio_class **classes;
	uint32_t nclasses;
	struct pool **pools;
	uint32_t npools;
	struct node **nodes;
	uint32_t nnodes;
	uint64_t nodes_gen;          /* moves when a node comes, goes or changes (node.c) */
	struct strmap team_names, class_names, pool_names, node_names;

	struct dlist running;        /* RUNNING and PREEMPTING tasks */
	struct state_policy policy;
	bool dirty;                  /* the dispatcher has something new to look at */

	struct state_observer *observers; /* state_observe */
	size_t nobservers;

	/* [limits] per user (task.c); 0: none. hpqd.c sets them from hpqd.conf. */
	uint32_t max_pending_tasks;  /* PENDING tasks of one user */
	uint64_t max_task_bytes;     /* argv and environment of one task */
	struct strmap pending_by_user; /* task.c: struct user_tally by user name */
	/* [tasks] keep_finished: state_load leaves tasks that ended longer ago
	 * in the store; -1 (state_init's): load them all. */
	int64_t keep_finished_ms;

	struct denials *denials;     /* rights.c: refusals recorded per user, rate-limited */
	struct strmap tokens;        /* trust.c: struct join_token by id */

	/* Tasks that left memory (task.h, state_tasks_evict): the ids of those
	 * that did not end COMPLETED, sorted, for dependencies on them; and
	 * their counts by team (struct task_gone_count), for the metrics. */
	uint64_t *gone_bad;
	size_t ngone_bad, gone_bad_cap;
	bool gone_bad_unsorted;
	struct strmap gone_counts;
	struct strmap names;         /* task.c: user, team, class and pool names tasks share */
	struct strmap certs;         /* trust.c: struct node_cert by serial */
};

/*
 * Who hears of the state's changes: modules that must react to one
 * subscribe here instead of being called by whoever made the change.
 * Callbacks run in the order they subscribed; any may be NULL.
 */
struct state_observer {
	/* Every event recorded, with its task (or NULL), as it is recorded. */
	void (*event)(void *arg, const struct store_event *ev, const struct task *t);
	/* A node's heartbeat was taken in, findings and health included. */
	void (*heartbeat)(void *arg, struct node *n);
	/*
	 * A task's life, for what is built on tasks (array.c, depend.c,
	 * plan.c: task.c calls none of them by name):
	 *   task_entered   t, pending outside the dispatcher, is new in the
	 *                  queue (its array's next index): its dependencies
	 *                  decide whether it goes in (depend.c);
	 *   task_leaving   t leaves the dispatcher (it ends, is requeued, is
	 *                  held or waits again), told before the dispatcher
	 *                  hears, t still as it was;
	 *   task_requeued  t is back in the queue;
	 *   task_started, task_ended;
	 *   task_gone      t, ended, leaves memory (state_tasks_evict);
	 *   tasks_evicted  every task that ended before ended_before_ms has
	 *                  left memory: what followed them may go too, at most
	 *                  max of it; returns how many went;
	 *   successor_held t, its array's next index made as the index before
	 *                  it starts, is about to follow it into the
	 *                  dispatcher: true keeps it out, waiting as the
	 *                  observer filed it (depend.c: singleton). Never
	 *                  calls into the dispatcher;
	 *   indices_dropped pending indices of a ended without ever being
	 *                  tasks (a cancel dropped them): no task ended, yet
	 *                  what waits on the array may be met (depend.c).
	 */
	void (*task_entered)(void *arg, struct task *t);
	void (*task_leaving)(void *arg, struct task *t);
	void (*task_requeued)(void *arg, struct task *t);
	void (*task_started)(void *arg, struct task *t);
	void (*task_ended)(void *arg, struct task *t);
	void (*task_gone)(void *arg, const struct task *t);
	size_t (*tasks_evicted)(void *arg, int64_t ended_before_ms, size_t max);
	bool (*successor_held)(void *arg, struct task *t);
	void (*indices_dropped)(void *arg, struct array *a);
	void *arg;
};
/* Adds a copy of o; state_unobserve removes every observer with that arg. */
void state_observe(struct state *st, const struct state_observer *o);
void state_unobserve(struct state *st, const void *arg);

/* The message of a refused change, for the Error reply. */
struct state_err {
	char msg[256];
};

/* Formats e (if not NULL) and returns code, so `return state_errf(...)` works. */
int state_errf(struct state_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void state_init(struct state *st, struct store *store);
void state_release(struct state *st);

/* Fills st from state_init's store (before store_start) and hands the
 * tasks to the dispatcher. Tasks that were running on nodes the store no
 * longer knows are requeued (recorded). Returns 0 or a negative code with
 * a message in err. */
int state_load(struct state *st, char *err, size_t errlen);

/* Records an event (kind: submit start end preempt requeue cancel checkpoint node). */
void state_event(struct state *st, const char *kind, const struct task *t, const char *node,
		 const char *actor, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
