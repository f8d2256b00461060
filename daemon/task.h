/*
 * task.h: tasks in the daemon's model (state.h): what one is, its
 * lifecycle (docs/design.md §3), and every change to one.
 *
 * Tasks live in the state's vector ordered by id: ids only grow, so
 * appending keeps it sorted, lookup is a binary search, and listing in
 * submit order needs no sort. (task id, attempt) names one run
 * everywhere. An ended task leaves the vector after [tasks] keep_finished
 * (state_tasks_evict) and lives on in the store only.
 *
 * What a task holds is what the model needs while it waits: its
 * environment and batch script stay in the store (RunTask reads them at
 * start), its user, team, class and pool are names shared through the
 * state, and its many empty strings are one (str_dup, state-internal.h).
 */
#ifndef HPQD_TASK_H
#define HPQD_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hpq.pb-c.h"
#include "list.h"
#include "scheduler.h"

struct actor;
struct state;
struct store_checkpoint;
struct store_task_row;
struct state_err;

enum task_state {
	TASK_PENDING = 0,
	TASK_RUNNING,
	TASK_PREEMPTING,
	TASK_COMPLETED,
	TASK_FAILED,
	TASK_CANCELLED,
	TASK_TIMEOUT,
	TASK_OUT_OF_MEMORY,          /* the kernel's OOM killer ended it in its cgroup */
};

const char *state_task_state(enum task_state s);
/* Returns the state or -1. */
int state_task_state_parse(const char *name);

static inline bool task_state_final(enum task_state s)
{
	return s >= TASK_COMPLETED;
}

/* A running task's member on one node, in that node's members list
 * (node.h, node_for_each_member); not in any list (it points at itself)
 * while the task does not run, or for a rank whose node is not known. */
struct task_member {
	struct dlist link;
	struct task *t;
	uint32_t rank;
};

struct task {
	struct sched_task st;        /* st.id is the task id; the dispatcher links it */
	/*
	 * What a list's row, a queue position and a right to see read, in
	 * the lines right after st, which task_prefetch asks for: the rest
	 * is read one task at a time.
	 */
	enum task_state state;
	int32_t exit_code;
	uint32_t n_node_names;       /* its ranks, members and marks (task_place) */
	uint32_t array_index;
	char *name;                  /* name_buf when it fits (state_task_set_name) */
	char name_buf[24];
	char *user;
	char *team;                  /* names stay, even if the team is removed later */
	char *cls;
	char **node_names;           /* nodes of the newest attempt, by rank */
	int64_t start_ms, end_ms;
	int64_t queue_ms;            /* PENDING: its queue time as the dispatcher keeps it
	                              * (submit, or eviction time; queue.h) */
	char *reason;                /* why it ended or was last requeued */
	uint64_t array_id;           /* the batch workflow: 0, not in an array; else its id */
	/* flags, together */
	bool interned;               /* user, team, cls, pool are the state's shared names */
	bool has_exit_code;
	bool has_stop_grace;         /* memory only: unset after a restart */
	bool cancel_requested;       /* durable: a cancel waits for the exit */
	bool kill_on_invalid_dep;
	bool held;                   /* PENDING but not offered to the dispatcher */
	bool has_script;             /* submitted as a batch script (the store keeps it) */
	bool run_unsent;             /* START committed or committing, RunTask not sent yet */
	/* The rest: the first of it ends what task_prefetch asks for. */
	uint32_t uid, gid;
	char *pool;
	char *done;                  /* per rank '1' once that member's exit is in */
	int64_t submit_ms;
	uint64_t time_limit_s;
	uint64_t grace_s;            /* 0: the cluster's default */
	uint64_t stop_grace_s;       /* the grace of the stop under way (cancel, preemption) */
	int32_t preempt_signal;
	uint32_t ntasks_per_node;
	char *checkpoint_dir;
	char *cwd;
	char **argv;                 /* one allocation (xstrv_pack) */
	char **env;                  /* only from submit to its row: the store keeps it */
	uint32_t argc, envc;         /* these and script_len: bounded by a frame's size */
	uint32_t attempts;           /* attempts started; the current one's number */
	uint32_t preemptions;
	uint32_t script_len, n_recipe_params;
	char *output, *error;        /* -o / -e patterns, "" for the per-task log */
	char *dependency;            /* what it still waits for ("" none) */
	char *submit_dir;
	char *script;                /* only from submit to its row, else NULL: the store keeps it */
	uint64_t peak_mem;           /* bytes, the largest over its attempts */
	uint64_t cpu_usec;           /* over its attempts */
	char *requeue_by;            /* durable: who asked for a requeue that waits for the exit */
	char *recipe, *recipe_version; /* made from this recipe ("": not) */
	char **recipe_params;        /* "k=v" */
	char *plan;                  /* the plan it runs in (plan.h); "" or NULL: none */
	struct {
		uint32_t attempt;
		bool has;
		uint64_t step;
		char *path;
		int64_t time_ms;
	} ckpt;                      /* the newest checkpoint: where a restart resumes */
	struct dlist run_link;       /* in state.running while RUNNING or PREEMPTING */
	struct task_member *members; /* by rank, linked to their nodes while in state.running;
	                              * kept (unlinked) until the next attempt; its
	                              * allocation holds node_names and done too */
};

/*
 * Asks for t's first cache lines ahead of their use. A walk over many tasks
 * (a list, the queue's positions) is bound by reading them from memory:
 * each is several lines, each allocated on its own, and 100,000 of them
 * are far more than the caches hold; the processor cannot guess the next
 * task's address, the walk can. TASK_PREFETCH_AHEAD: how many tasks
 * ahead a walk asks.
 */
#define TASK_PREFETCH_AHEAD 8
static inline void task_prefetch(const struct task *t)
{
	/* Up to uid: the lines a walk reads (struct task), not all of them,
	 * which left the walk waiting for lines it never read. */
	const char *p = (const char *)t, *end = p + offsetof(struct task, uid) - 1;

	for (; p < end; p += 64)
		__builtin_prefetch(p);
	__builtin_prefetch(end);
}

/*
 * Asks for what a list's row reads of t outside it: its reason, a text of
 * its own (a held task's "held" is one per task). It reads t to find it,
 * so the walk asks it of a task whose lines task_prefetch asked for a
 * while before: TASK_PREFETCH_TEXTS ahead.
 */
#define TASK_PREFETCH_TEXTS (TASK_PREFETCH_AHEAD / 2)
static inline void task_prefetch_texts(const struct task *t)
{
	if (t->reason)
		__builtin_prefetch(t->reason);
}

/* What ended tasks that left memory (state_tasks_evict) leave of
 * themselves per team: counters for metrics.c, which count events. */
#define TASK_NFINAL (TASK_OUT_OF_MEMORY - TASK_COMPLETED + 1)
struct task_gone_count {
	char *team;
	uint64_t submitted, started;
	uint64_t finished[TASK_NFINAL];  /* by final state less TASK_COMPLETED */
};

struct task *state_task_new(void);
void state_task_free(struct task *t);
/* Sets t's name to a copy of name: a short one (most) inside the task,
 * where a long list reads it with the task and nothing is allocated. */
void state_task_set_name(struct task *t, const char *name);

/* ---- lookups */
struct task *state_task_find(const struct state *st, uint64_t id);
struct task *state_task_of(struct sched_task *t);
/* The index of the first task with id >= id (for listing). */
size_t state_task_lower_bound(const struct state *st, uint64_t id);
/* Why a task is where it is: the dispatcher's reason while PENDING, the
 * stored one otherwise. */
const char *state_task_reason(const struct state *st, const struct task *t);

/*
 * ---- leaving memory ([tasks] keep_finished)
 *
 * A task that ended before ended_before_ms leaves memory: it lives on in
 * the store only (hpq show reads it there, hpq acct and hpq usage always
 * did). An array's tasks go the same way while the rest of it runs, and
 * the array once all of it went (in the same call: the observers that
 * follow tasks hear of it, state.h). At most max tasks go per call,
 * in one pass that compacts the vector. What dependencies need of it
 * stays: whether it ended COMPLETED (state_task_gone). Returns how many
 * tasks went.
 */
size_t state_tasks_evict(struct state *st, int64_t ended_before_ms, size_t max);
/* Whether id is a task that left memory, and if so whether it ended COMPLETED. */
bool state_task_gone(const struct state *st, uint64_t id, bool *completed);
/* A task of its own (in no state) from a stored row, as state_load makes
 * them; touches nothing else, so the storage thread may call it. */
struct task *state_task_from_row(const struct store_task_row *row,
				 const struct store_checkpoint *newest);

/* ---- changes from clients (a submit: submit.h) */
/* Returns 0 when the task is now CANCELLED, 1 when it runs and must be
 * killed (the cancel is recorded and completes at its exit). */
int state_task_cancel(struct state *st, struct task *t, const struct actor *who,
		      struct state_err *e);
/*
 * A cancel of many tasks at once (hpq cancel --user U, or a list of ids):
 * a pending task cancelled in a batch records its end event only, and the
 * batch one cancel event for all of them (state_cancel_batch_end), instead
 * of a cancel event each. Its row and end event go to the store as one
 * bulk change (store_task_bulk), ended at the batch's time. Below
 * CANCEL_BATCH_MIN pending tasks a batch records what single cancels
 * record. control.c releases held tasks in batches the same way.
 */
#define CANCEL_BATCH_MIN 2
struct cancel_batch {
	bool on;                     /* enough pending tasks to be one */
	size_t pending;              /* pending tasks cancelled so far */
	int64_t now_ms;              /* its end time and events' (0: set at its first) */
	char why[128];               /* "cancelled by U", once made */
	char end_msg[160];           /* its end events' message (no exit code), once made */
};
int state_task_cancel_in(struct state *st, struct task *t, const struct actor *who,
			 struct cancel_batch *b, struct state_err *e);
/* The batch's cancel event, if it cancelled pending tasks. */
void state_cancel_batch_end(struct state *st, struct cancel_batch *b, const struct actor *who);
/* hpq requeue: a running task is stopped (its own grace, or the policy's
 * when another user asks) and goes back to PENDING at its exit, keeping
 * its checkpoints. Returns 1 when the caller must stop it, 0 when it is
 * already on its way back. */
int state_task_requeue_request(struct state *st, struct task *t, const struct actor *who,
			       struct state_err *e);
/* hpq update (update.c): fields are key=value (time, class, gpus, cpus,
 * mem, nodes, name, pool). Returns 1 when a running attempt's time limit
 * changed and its agent must be told, else 0, or a refusal. */
int state_task_update(struct state *st, struct task *t, char *const *fields, size_t n,
		      const struct actor *who, struct state_err *e);
int state_checkpoint_add(struct state *st, struct task *t, uint32_t attempt, uint64_t step,
			 const char *path, const struct actor *who, struct state_err *e);

/*
 * Grace periods (docs/decisions.md, "Grace"), in seconds, at least 1 (a
 * KillTask or RunTask grace of 0 means the agent's default):
 * state_task_grace is what the task's own stops get (time limit, its
 * owner's cancel, priority preemption in its team): its --grace, else the
 * policy's grace, never more than the policy's max-grace.
 * state_task_stop_grace is the grace of the stop under way, decided when
 * it was (cancel, preemption): the policy's grace when an administrator
 * cancels another user's task or a reclaim takes it.
 */
uint64_t state_task_grace(const struct state *st, const struct task *t);
uint64_t state_task_stop_grace(const struct state *st, const struct task *t);

/* ---- changes from the dispatcher and the agents */
/* A START decision: attempt + 1, RUNNING on t->st.nodes, run_unsent set. */
void state_task_start(struct state *st, struct task *t);
/* A PREEMPT decision (the dispatcher already made it PREEMPTING): reason
 * "preempted by task N (reclaim|priority)", a "preempt" event for the
 * victim (naming the beneficiary) and a "preempt-for" event for the
 * beneficiary (naming the victim); only the first counts as a preemption. */
void state_task_preempt(struct state *st, struct task *t, const struct task *beneficiary,
			enum sched_preempt_cause cause);

enum member_exit {
	EXIT_IGNORED = 0,   /* not the current attempt on that rank, or already in */
	EXIT_WAIT,          /* that member is done; others still run */
	EXIT_ENDED,         /* the task reached a final state */
	EXIT_REQUEUED,      /* back to PENDING */
};
/* The member at rank of the current attempt exited. */
enum member_exit state_task_member_exit(struct state *st, struct task *t, uint32_t rank,
					int32_t exit_code, const char *reason);
/* Back to PENDING (or CANCELLED if a cancel waits): node lost, agent
 * lost the task, could not start. why goes into reason and the event. */
void state_task_requeue(struct state *st, struct task *t, const char *why);

#endif
