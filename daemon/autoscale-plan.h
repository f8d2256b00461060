/*
 * autoscale-plan.h: the autoscaler's decision for one pool, a pure part
 * (docs/autoscale.md). Given the pool's settings, its nodes and the work
 * that waits for it, it says how many nodes to launch, which empty nodes
 * to remove, which nodes to empty because their work fits elsewhere
 * (consolidation) and which to replace because they are too old. It does
 * no I/O and reads no clock (now is an argument): autoscale.c gathers the
 * inputs from the model and carries the plan out; the unit tests and
 * tests/bench/bench_autoscale drive it directly.
 *
 * Demand is what the dispatcher left pending that the pool's governance
 * lets run (the caller leaves out a team's work beyond what it may use).
 * The plan packs it first onto the free capacity of the pool's
 * schedulable nodes and onto the nodes being launched, then onto new
 * nodes of the template, first-fit by decreasing size, so that a cycle
 * after a launch packs the same work onto the launching nodes and asks
 * for nothing more. A gang's members go to distinct nodes.
 *
 * Cost: O(demand items) to group the demand by shape (a hash; an array's
 * pending indices are one item with a count), then
 * O(shapes x nodes) to pack it; consolidation looks at a bounded number
 * of candidates per run.
 */
#ifndef HPQD_AUTOSCALE_PLAN_H
#define HPQD_AUTOSCALE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "res.h"

enum asplan_state {
	ASPLAN_READY = 0,      /* registered */
	ASPLAN_LAUNCHING,      /* launched, its agent not registered yet */
	ASPLAN_LEAVING,        /* being drained or deprovisioned */
};

struct asplan_node {
	uint32_t id;                 /* the caller's */
	enum asplan_state state;
	bool managed;                /* launched by the autoscaler: it may take it away */
	bool schedulable;            /* READY and taking work */
	bool movable;                /* every task on it may be preempted to move it */
	bool replacing;              /* READY, too old, its replacement on the way */
	struct hpq_res capacity;     /* LAUNCHING: what the template gives */
	struct hpq_res free;         /* READY: what no task holds */
	uint32_t ntasks;             /* tasks holding it */
	const struct hpq_res *task_res; /* ntasks entries: each task's per-node request */
	int64_t empty_since_ms;      /* ntasks == 0: since when */
	int64_t born_ms;             /* when it registered (its lifetime counts from it) */
};

struct asplan_demand {
	struct hpq_res per_node;
	uint32_t nnodes;             /* gang size, >= 1 */
	uint32_t count;              /* tasks of this shape (an array's pending
	                              * indices); 0 counts as 1 */
};

struct asplan_pool {
	struct hpq_res tmpl;
	uint32_t min_nodes, max_nodes;
	int64_t idle_timeout_ms;
	int64_t max_lifetime_ms;     /* 0: never */
	bool consolidation;
	uint32_t budget;             /* nodes that may be leaving or replaced at once */
	bool may_launch;             /* false while a failed launch backs off */
};

/* A plan, and the scratch space it reuses from one run to the next. */
struct asplan {
	uint32_t launch;             /* new nodes to launch (demand and min_nodes) */
	uint32_t *remove;            /* ids of empty nodes to drain and remove */
	size_t nremove;
	uint32_t *consolidate;       /* ids of nodes to empty: their work fits elsewhere */
	size_t nconsolidate;
	uint32_t *replace;           /* ids of nodes too old: a new one first, then it leaves */
	size_t nreplace;
	uint32_t unplaced;           /* demand items that fit no node, not even a new one */
	int64_t next_ms;             /* when time alone may change the plan; INT64_MAX */

	/* private to autoscale-plan.c */
	struct asplan_scratch *s;
};

void asplan_init(struct asplan *p);
void asplan_release(struct asplan *p);

/*
 * Plans pool at time now_ms. nodes are the pool's nodes (read only);
 * demand the pending work (ndemand items, read only). The lists in p stay
 * valid until the next asplan_run or asplan_release.
 */
void asplan_run(struct asplan *p, const struct asplan_pool *pool, const struct asplan_node *nodes,
		size_t nnodes, const struct asplan_demand *demand, size_t ndemand, int64_t now_ms);

#endif
