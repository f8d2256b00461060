/*
 * plan.h: training plans, the model (docs/plans.md). A plan reserves whole
 * nodes of one pool for one team, for a total duration split into up to
 * five segments, each on concrete nodes.
 *
 * The capacity calendar (calendar.h) is built afresh from the pool's
 * nodes, the teams' guarantees and the plans that still hold capacity
 * whenever a search or a create needs it, so it can never drift from
 * what the nodes, teams and plans are. A search leaves offerings: each a
 * snapshot with an id and an expiry, which `create` turns into a plan
 * after checking the calendar again.
 *
 * A plan's state follows the clock: scheduled (before its first segment),
 * active (inside a segment), between-segments, completed (after its last),
 * or cancelled. plans_advance records each change as a `plan` event and in
 * the plan's row; dispatch.c calls it and wakes up for the next change.
 * A plan's tasks (hpq submit --plan) run only in its segments, on its
 * segments' nodes, which a dispatcher pool of the plan's own holds while
 * the segment lasts (below).
 */
#ifndef HPQD_PLAN_H
#define HPQD_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "state.h"

struct config;
struct store_plan_row;

enum plan_state {
	PLAN_SCHEDULED = 0,
	PLAN_ACTIVE,
	PLAN_BETWEEN,
	PLAN_COMPLETED,
	PLAN_CANCELLED,
};

const char *plan_state_name(enum plan_state s);

struct plan_segment {
	int64_t start_ms, end_ms;
	uint32_t nnodes;
	char **nodes;                /* names */
};

struct plan {
	uint64_t id;
	char *name, *team, *pool, *created_by;
	uint32_t nnodes;             /* per segment */
	uint32_t gpus_per_node;      /* the pool's, when it was made */
	uint64_t duration_s;
	int64_t created_ms, ended_ms;
	enum plan_state state;
	bool open;                   /* memory only: its tasks may run now (plan.c) */
	bool has_pool;               /* memory only: its dispatcher pool, pool_id, exists */
	uint32_t pool_id;
	uint32_t nsegments;
	struct plan_segment seg[CALENDAR_MAX_SEGMENTS];
};

/* An offering kept for create. */
struct plan_offer {
	char id[24];
	int64_t expires_ms;
	uint32_t pool;
	uint64_t duration_s;
	struct calendar_offer o;     /* node ids are the state's */
};

struct plans {
	struct plan **v;             /* by id */
	size_t n, cap;
	uint64_t next_id;
	struct plan_offer *offers;   /* newest last */
	size_t noffers;
	uint64_t next_offer;
	const struct config *cfg;    /* [plans]; NULL: none reservable */
	/* Nodes with in_plan set, as last counted (never fewer): the nodes are
	 * walked at each dispatcher cycle only while some are, or a segment
	 * claims them. */
	uint32_t nodes_in_plan;
};

/* What hpq plan search asks; times in unix ms, 0 for "none". */
struct plan_query {
	const char *pool, *team;
	uint32_t nodes;
	uint64_t duration_s;
	int64_t after, before;
	uint32_t max_segments;       /* 0: 1 */
	uint64_t min_segment_s;      /* 0: a tenth of the duration when split */
};

/* Empty; its tasks requeued while their plan is closed leave the
 * dispatcher again (it follows them: state.h). */
void plans_init(struct state *st);
void plans_release(struct state *st);
/* The settings ([plans] of hpqd.conf); cfg must outlive the state. */
void plans_configure(struct state *st, const struct config *cfg);
/* store_loader.on_plan */
void plans_load_row(void *arg, const struct store_plan_row *row);

/*
 * Finds ways to fit q, kept as offerings; *ret points at up to 5 of them
 * in st's cache (valid until the next plans_* call), earliest finish
 * first. Returns how many (0: nothing fits), or a refusal.
 */
int plans_search(struct state *st, const struct plan_query *q, int64_t now,
		 const struct plan_offer **ret, uint32_t *ret_reservable, uint32_t *ret_pool_nodes,
		 struct state_err *e);
/* Turns offering offer_id into plan name of team, if who may and the
 * capacity is still there. */
int plans_create(struct state *st, const struct actor *who, const char *offer_id,
		 const char *team, const char *name, int64_t now, struct plan **ret,
		 struct state_err *e);
int plans_cancel(struct state *st, const struct actor *who, const char *name, int64_t now,
		 struct state_err *e);
struct plan *plans_find(const struct state *st, const char *name);

/* Records every state change due by now; returns when the next is due
 * (INT64_MAX: none). */
int64_t plans_advance(struct state *st, int64_t now);
/* When a plan's tasks or nodes next need the dispatcher without a change
 * of state: a segment's end warning, or the claim of its nodes
 * (INT64_MAX: none). */
int64_t plans_next_wakeup(const struct state *st, int64_t now);
/* When p next changes state after now, 0 if never. */
int64_t plan_next_change(const struct plan *p, int64_t now);
/*
 * Plan-bound tasks (hpq submit --plan). A plan's tasks enter the
 * dispatcher only while the plan is open: inside a segment, before the
 * segment's end warning ([plans] end_warning, at most half the segment).
 * Otherwise they wait out of it with the reason plan-not-started,
 * between-segments or plan-ending (and the next segment's start); once
 * the plan has ended they queue in their team as any task (plan-ended).
 */
/* Refuses a task of team for plan name that the plan cannot hold. */
int plans_check_task(const struct state *st, const char *name, const char *team,
		     const char *pool, uint32_t nnodes, struct state_err *e);
/* Whether pending t must stay out of the dispatcher for its plan now
 * (then its reason says why, unsaved); when not and its plan is open, t
 * is set to enter the plan's pool. */
bool plan_task_waits(struct state *st, struct task *t);
/* After a load: the plans' tasks placed as the clock says. */
void plans_load_done(struct state *st);
/*
 * A segment's nodes are the plan's alone: from the segment's start less
 * the policy's grace until its end they belong to a dispatcher pool of
 * the plan's own ("plan:NAME", never stored, which no submit may name),
 * where only its tasks go. A node moves when nothing runs on it; until
 * then the other work on it is stopped to its checkpoints.
 *
 * Each cycle: moves the nodes that may move, and calls fn(arg, t) for
 * each RUNNING task the caller must stop to its checkpoint: a closed
 * plan's tasks, and other work on nodes a segment claims. Costs nothing
 * when no live plan is closed and no segment claims or holds a node.
 */
void plans_each_to_stop(struct state *st, int64_t now, void (*fn)(void *arg, struct task *t),
			void *arg);

/* GPU-hours p holds over all its segments (as far as it got, once cancelled). */
double plan_gpu_hours_reserved(const struct plan *p);

#endif
