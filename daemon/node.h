/*
 * node.h: nodes in the daemon's model (state.h): what the agents
 * registered, their health from their findings, their service state, and
 * every change to them (docs/design.md §8, §9).
 *
 * Nodes get small dense ids (their index in the state's array) that are
 * also their dispatcher ids, never reused while the daemon runs.
 */
#ifndef HPQD_NODE_H
#define HPQD_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hpq.pb-c.h"
#include "list.h"
#include "res.h"

struct actor;
struct pool;
struct state;
struct state_err;

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
	char *service;               /* active draining drained repairing down */
	char *health;                /* healthy degraded unhealthy unreachable */
	char *reason;
	struct finding *findings;
	size_t nfindings;
	int64_t last_heartbeat_ms;   /* wall clock of the last message */
	uint64_t heartbeats;         /* received since hpqd started */
	uint64_t seen_mono;          /* uv_now of the last message, or of the disconnect */
	uint64_t beat_window_mono;   /* req-agent.c: the second whose heartbeats are counted */
	uint32_t beats_in_window;    /* and the heartbeats in it */
	bool connected;              /* its agent is connected (agentlink.c has the link) */
	bool lost;                   /* declared unreachable; its tasks were requeued */
	/* Service administration and repair (repair.c). */
	char *service_by;            /* who set the service state: "hpqd" or an admin */
	int64_t service_since_ms;    /* wall clock of that change */
	bool admin_hold;             /* drained by an administrator: never resumed by hpqd */
	char *repair_action;         /* repairing: reboot replace none */
	uint64_t bad_since_mono;     /* uv_now when a fatal finding or unreachability began; 0 */
	uint64_t repair_mono;        /* uv_now when the repair started */
	bool repair_running;         /* its repair command has not exited yet */
	uint32_t streak;             /* healthy heartbeats since the repair command ended */
	/* Whether its agent confines tasks (Register.cgroup), or why not; kept
	 * in memory only: every Register says it again. */
	bool cgroup;
	char *cgroup_problem;
	/* Memory only: while a plan's segment holds it (plan.c), the node is
	 * in the plan's own dispatcher pool, plan_pool, not in pool. */
	bool in_plan;
	uint32_t plan_pool;
	/* Memory only: the members here of the running tasks (task.h, struct
	 * task_member), in the order they started, so that what runs on one
	 * node is found without walking every running task. task.c keeps it
	 * as tasks enter and leave the state's running list. */
	struct dlist members;
};

/*
 * m walks the running tasks' members on node n (struct task_member:
 * m->t the task, m->rank its rank here), in the order the tasks started,
 * as the state's running list has them. A task has at most one member on
 * a node (its first rank there). The next member is read before the
 * body runs, so the body may requeue, preempt or end m->t (which unlinks
 * m); read m->t and m->rank before it does.
 */
#define node_for_each_member(m, next, n) dlist_for_each_entry_safe(m, next, &(n)->members, link)

struct node *state_node_find(const struct state *st, const char *name);
bool state_node_schedulable(const struct node *n);
/* Tells the dispatcher n's pool and capacity again (after in_plan changed). */
void state_node_resched(struct state *st, struct node *n);

/*
 * What the nodes of a pool could ever give, whatever their health now: a
 * request no registered node can hold is impossible, not just waiting.
 */
struct pool_fit {
	uint32_t nodes;              /* registered nodes in the pool */
	uint32_t fitting;            /* of those, nodes whose capacity holds per_node */
	struct hpq_res largest;      /* the capacity of its largest node (GPUs, CPUs, mem) */
	struct hpq_res most;         /* per resource, the most any node has */
};
/* Walks the pool's nodes, or answers as it did for the same per_node while
 * no node has come, gone or changed since (a list asks for every waiting
 * task). */
void state_pool_fit(const struct state *st, uint32_t pool, struct hpq_res per_node,
		    struct pool_fit *ret);
/* Refuses (HPQ_EINVAL, saying which limit and what the largest node
 * offers) a request no registered node of the pool could ever hold. */
int state_pool_check(const struct state *st, const struct pool *pool, uint32_t nnodes,
		     struct hpq_res per, struct state_err *e);
/* The largest capacity that at least nnodes nodes of the pool all hold
 * and that holds per_node (--exclusive: whole nodes). false: none. */
bool state_pool_whole_nodes(const struct state *st, uint32_t pool, uint32_t nnodes,
			    struct hpq_res per_node, struct hpq_res *ret);

/* An agent registered. Creates or updates the node (and its pool) from
 * reg and marks it connected. */
int state_node_register(struct state *st, const Hpq__Register *reg, const char *version,
			struct node **ret_node, struct state_err *e);
void state_node_heartbeat(struct state *st, struct node *n, const Hpq__Heartbeat *hb);
/* The agent's connection went away: the node keeps its tasks but gets no new ones. */
void state_node_disconnected(struct state *st, struct node *n);
/* Declared unreachable (the caller requeues its tasks). */
void state_node_lost(struct state *st, struct node *n);
/* Sets the service state (active draining drained repairing down), who set
 * it and why, tells the dispatcher, records it and a "node" event. */
void state_node_set_service(struct state *st, struct node *n, const char *service,
			    const char *by, const char *reason);
/*
 * The autoscaler launched a node (autoscale.c): it is in the model before
 * its agent registers, with the template's capacity and labels, service
 * `launching` (not schedulable) and no agent, so that `hpq node list`
 * shows it and the same name registering takes it over. by: who launched
 * it ("hpqd"). HPQ_EEXIST if a node of that name exists.
 */
int state_node_add_launching(struct state *st, const char *name, struct pool *pool,
			     struct hpq_res capacity, char *const *labels, size_t nlabels,
			     const char *by, struct state_err *e);
/* Records a node's row again after repair.c changed its fields. */
void state_node_save(struct state *st, struct node *n);
/* hpq node remove: a drained node with no task and no connected agent
 * leaves the cluster: the dispatcher, its row, status and metrics. Its
 * slot in st->nodes becomes NULL (ids are the dispatcher's and stay);
 * a node of that name that joins later is a new node. */
int state_node_remove(struct state *st, struct node *n, const struct actor *who,
		      struct state_err *e);

#endif
