/*
 * state.h: the daemon's in-memory model of the cluster: tasks, teams,
 * priority classes, pools, nodes and the cluster policy, with the
 * dispatcher (scheduler.h) kept in step inside it.
 *
 * Every change goes through a state_* function that validates it as a
 * whole, applies it to memory and to the dispatcher, and records the rows
 * and the event it produced in the store's open batch (store.h), all or
 * nothing. Callers that promise durability (a reply that says "accepted")
 * then wait for the commit with store_after_commit. Nothing here sends
 * messages: the callers (rpc.c, agentlink.c, dispatch.c) do, because
 * only they know which connection a change concerns.
 *
 * Identities: pools, teams, classes and nodes get small dense ids (their
 * index in the arrays below) that are also their dispatcher ids. Ids are
 * never reused while the daemon runs; a removed team or class leaves a
 * NULL slot. Tasks live in a vector ordered by id: ids only grow, so
 * appending keeps it sorted, lookup is a binary search, and listing in
 * submit order needs no sort.
 */
#ifndef HPQD_STATE_H
#define HPQD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hpq.h"
#include "hpq.pb-c.h"
#include "list.h"
#include "res.h"
#include "scheduler.h"
#include "strmap.h"

struct store;
struct store_event;
struct conn;

enum task_state {
	TASK_PENDING = 0,
	TASK_RUNNING,
	TASK_PREEMPTING,
	TASK_COMPLETED,
	TASK_FAILED,
	TASK_CANCELLED,
	TASK_TIMEOUT,
};

const char *state_task_state(enum task_state s);
/* Returns the state or -1. */
int state_task_state_parse(const char *name);

/* "lend-and-borrow", "lend", "dont-lend". parse returns -1 if unknown. */
const char *state_sharing_name(enum sched_sharing s);
int state_sharing_parse(const char *name);

static inline bool task_state_final(enum task_state s)
{
	return s >= TASK_COMPLETED;
}

/* Limits on what anyone may ask for: well beyond any real machine, low
 * enough that sums over a large cluster cannot overflow. */
#define STATE_MAX_GPUS 4096
#define STATE_MAX_CPUS (1 << 20)
#define STATE_MAX_MEM ((int64_t)1 << 40)       /* MiB: one exbibyte */
#define STATE_MAX_NODES_PER_TASK 1024
#define STATE_MAX_ARGS 65536
#define STATE_MAX_CLASSES 16
/* The "unlimited" borrow limit of the default team: the wire's unlimited
 * (common/hpq.h), the daemon's only definition of it. */
#define STATE_UNLIMITED                                                              \
	((struct hpq_res){ HPQ_UNLIMITED_COUNT, HPQ_UNLIMITED_COUNT,                 \
			   (int64_t)HPQ_UNLIMITED_MEM })

struct task {
	struct sched_task st;        /* st.id is the task id; the dispatcher links it */
	enum task_state state;
	char *name;
	char *user;
	char *team;                  /* names stay, even if the team is removed later */
	char *cls;
	char *pool;
	uint32_t uid, gid;
	uint32_t attempts;           /* attempts started; the current one's number */
	char **node_names;           /* nodes of the newest attempt, by rank */
	uint32_t n_node_names;
	char *done;                  /* per rank '1' once that member's exit is in */
	int64_t submit_ms, start_ms, end_ms;
	int64_t queue_ms;            /* PENDING: its queue time as the dispatcher keeps it
	                              * (submit, or eviction time; queue.h) */
	int32_t exit_code;
	bool has_exit_code;
	char *reason;                /* why it ended or was last requeued */
	uint64_t time_limit_s;
	uint64_t grace_s;            /* 0: the cluster's default */
	int32_t preempt_signal;
	char *checkpoint_dir;
	char *cwd;
	char **argv;
	size_t argc;
	char **env;
	size_t envc;
	bool cancel_requested;       /* durable: a cancel waits for the exit */
	bool run_unsent;             /* START committed or committing, RunTask not sent yet */
	struct {
		bool has;
		uint32_t attempt;
		uint64_t step;
		char *path;
		int64_t time_ms;
	} ckpt;                      /* the newest checkpoint: where a restart resumes */
	struct dlist run_link;       /* in state.running while RUNNING or PREEMPTING */
};

struct quota {
	uint32_t pool;
	struct sched_quota q;
};

struct team {
	uint32_t id;
	char *name;
	uint32_t weight;
	bool preempt_own_lower;      /* preempt_own: "lower-priority" (true) or "never" */
	char *default_class;         /* "" = none */
	char **members;              /* empty: open to everyone */
	size_t nmembers;
	struct quota *quotas;
	size_t nquotas;
	uint32_t active;             /* tasks of this team that have not ended */
};

struct prio_class {
	uint32_t id;
	char *name;
	uint32_t weight;
	bool preemptible;
	uint32_t active;
};

struct pool {
	uint32_t id;
	char *name;
};

struct finding {
	char *category, *reason, *message, *severity;
	char *action;                /* the agent's suggested repair; "" = none said */
	int64_t since;
};

struct node {
	uint32_t id;
	char *name;
	uint32_t pool;
	struct hpq_res capacity;
	char **labels;
	size_t nlabels;
	char *address;
	char *software_version;
	char *service;               /* active draining drained repairing */
	char *health;                /* healthy degraded unhealthy unreachable */
	char *reason;
	struct finding *findings;
	size_t nfindings;
	int64_t last_heartbeat_ms;   /* wall clock of the last message */
	uint64_t heartbeats;         /* received since hpqd started */
	uint64_t seen_mono;          /* uv_now of the last message, or of the disconnect */
	struct conn *conn;           /* the agent's connection; NULL while away */
	bool lost;                   /* declared unreachable; its tasks were requeued */
	/* Service administration and repair (daemon/repair.c). */
	char *service_by;            /* who set the service state: "hpqd" or an admin */
	int64_t service_since_ms;    /* wall clock of that change */
	bool admin_hold;             /* drained by an administrator: never resumed by hpqd */
	char *repair_action;         /* repairing: reboot replace none */
	uint64_t bad_since_mono;     /* uv_now when a fatal finding or unreachability began; 0 */
	uint64_t repair_mono;        /* uv_now when the repair started */
	bool repair_running;         /* its repair command has not exited yet */
	uint32_t streak;             /* healthy heartbeats since the repair command ended */
};

/* The cluster policy (policy table; hpq policy in the governance issue). */
struct state_policy {
	struct sched_policy sched;
	uint64_t grace_s;            /* default preemption grace */
};

struct state {
	struct sched *sched;
	struct store *store;

	struct task **tasks;         /* ordered by id */
	size_t ntasks, tasks_cap;
	uint64_t next_id;

	struct team **teams;
	uint32_t nteams;
	struct prio_class **classes;
	uint32_t nclasses;
	struct pool **pools;
	uint32_t npools;
	struct node **nodes;
	uint32_t nnodes;
	struct strmap team_names, class_names, pool_names, node_names;

	struct dlist running;        /* RUNNING and PREEMPTING tasks */
	struct state_policy policy;
	bool dirty;                  /* the dispatcher has something new to look at */

	struct state_observer *observers; /* state_observe */
	size_t nobservers;
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
	void *arg;
};
/* Adds a copy of o; state_unobserve removes every observer with that arg. */
void state_observe(struct state *st, const struct state_observer *o);
void state_unobserve(struct state *st, const void *arg);

/* Who asks for a change. */
struct actor {
	const char *user;
	uint32_t uid, gid;
	bool admin;
	bool agent;                  /* an agent relaying for one of its tasks */
	const char *node;            /* agent: its node's name */
	bool known;                  /* uid/gid are real (the user exists here) */
};

/* The message of a refused change, for the Error reply. */
struct state_err {
	char msg[256];
};

/* Formats e (if not NULL) and returns code, so `return state_errf(...)` works. */
int state_errf(struct state_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The built-in weight-0 class of tasks whose team names no default. */
#define STATE_NO_CLASS "-"

void state_init(struct state *st, struct store *store);
void state_release(struct state *st);

/* Fills st from state_init's store (before store_start) and hands the
 * tasks to the dispatcher. Tasks that were running on nodes the store no
 * longer knows are requeued (recorded). Returns 0 or a negative code with
 * a message in err. */
int state_load(struct state *st, char *err, size_t errlen);

struct task *state_task_new(void);
void state_task_free(struct task *t);

/* ---- lookups */
struct task *state_task_find(const struct state *st, uint64_t id);
struct team *state_team_find(const struct state *st, const char *name);
struct prio_class *state_class_find(const struct state *st, const char *name);
struct pool *state_pool_find(const struct state *st, const char *name);
struct node *state_node_find(const struct state *st, const char *name);
struct task *state_task_of(struct sched_task *t);

/* The index of the first task with id >= id (for listing). */
size_t state_task_lower_bound(const struct state *st, uint64_t id);

/* Why a task is where it is: the dispatcher's reason while PENDING, the
 * stored one otherwise. */
const char *state_task_reason(const struct state *st, const struct task *t);

/* ---- changes from clients */
int state_task_submit(struct state *st, const Hpq__TaskSpec *spec, const struct actor *who,
		      struct task **ret_task, struct state_err *e);
/* Returns 0 when the task is now CANCELLED, 1 when it runs and must be
 * killed (the cancel is recorded and completes at its exit). */
int state_task_cancel(struct state *st, struct task *t, const struct actor *who,
		      struct state_err *e);
int state_checkpoint_add(struct state *st, struct task *t, uint32_t attempt, uint64_t step,
			 const char *path, const struct actor *who, struct state_err *e);
int state_team_set(struct state *st, const Hpq__TeamSetRequest *req, const struct actor *who,
		   struct state_err *e);
int state_team_remove(struct state *st, const char *name, const struct actor *who,
		      struct state_err *e);
int state_class_set(struct state *st, const Hpq__ClassSetRequest *req, const struct actor *who,
		    struct state_err *e);
int state_class_remove(struct state *st, const char *name, const struct actor *who,
		       struct state_err *e);

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

/* An agent registered on conn. Creates or updates the node (and its pool)
 * from reg and marks it connected. */
int state_node_register(struct state *st, const Hpq__Register *reg, const char *version,
			struct conn *conn, struct node **ret_node, struct state_err *e);
void state_node_heartbeat(struct state *st, struct node *n, const Hpq__Heartbeat *hb);
/* The agent's connection went away: the node keeps its tasks but gets no new ones. */
void state_node_disconnected(struct state *st, struct node *n);
/* Declared unreachable (the caller requeues its tasks). */
void state_node_lost(struct state *st, struct node *n);
bool state_node_schedulable(const struct node *n);
/* Sets the service state (active draining drained repairing down), who set
 * it and why, tells the dispatcher, records it and a "node" event. */
void state_node_set_service(struct state *st, struct node *n, const char *service,
			    const char *by, const char *reason);
/* Records a node's row again after repair.c changed its fields. */
void state_node_save(struct state *st, struct node *n);

/* Records an event (kind: submit start end preempt requeue cancel checkpoint node). */
void state_event(struct state *st, const char *kind, const struct task *t, const char *node,
		 const char *actor, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
