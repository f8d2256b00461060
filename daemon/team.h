/*
 * team.h: governance in the daemon's model (state.h): pools, teams with
 * their per-pool quotas, and priority classes (docs/design.md §4), and
 * every change to them.
 *
 * Pools, teams and classes get small dense ids (their index in the
 * state's arrays) that are also their dispatcher ids. Ids are never
 * reused while the daemon runs; a removed team or class leaves a NULL
 * slot.
 */
#ifndef HPQD_TEAM_H
#define HPQD_TEAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hpq.h"
#include "hpq.pb-c.h"
#include "res.h"
#include "scheduler.h"

struct actor;
struct state;
struct state_err;

/* The "unlimited" borrow limit of the default team: the wire's unlimited
 * (common/hpq.h), the daemon's only definition of it. */
#define STATE_UNLIMITED                                                              \
	((struct hpq_res){ HPQ_UNLIMITED_COUNT, HPQ_UNLIMITED_COUNT,                 \
			   (int64_t)HPQ_UNLIMITED_MEM })
#define STATE_MAX_CLASSES 16
/* The built-in weight-0 class of tasks whose team names no default. */
#define STATE_NO_CLASS "-"
/* Entries of a team's members or admins list at most. */
#define STATE_MAX_PRINCIPALS 4096

struct pool {
	uint32_t id;
	char *name;
	/* The autoscaler's word on the pool (state_pool_set_waiting): what
	 * its pending work waits for when no node can take it, instead of
	 * "capacity" ("launch-failed"); "" for none. */
	char waiting[32];
	/* An autoscaled pool's node template and most nodes
	 * (state_pool_set_growth): what it may still grow to, so that a
	 * request no node of it could ever hold is refused at submit. */
	struct hpq_res grows;
	uint32_t grows_max;
	/* state_pool_fit's latest answers (node.c), good while the state's
	 * nodes_gen stays: a long list asks it for every waiting task. */
	struct pool_fit_memo *fit_memo;
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
	char **members;              /* user names and @groups; empty: open to everyone */
	size_t nmembers;
	char **admins;               /* user names and @groups (rights.h) */
	size_t nadmins;
	struct quota *quotas;
	size_t nquotas;
	uint32_t active;             /* tasks of this team that have not ended */
};

struct prio_class {
	uint32_t id;
	char *name;
	uint32_t weight;
	bool preemptible;
	uint64_t max_time_s;         /* the longest time limit its tasks may ask; 0: none */
	uint32_t active;
};

/* "lend-and-borrow", "lend", "dont-lend". parse returns -1 if unknown. */
const char *state_sharing_name(enum sched_sharing s);
int state_sharing_parse(const char *name);

struct team *state_team_find(const struct state *st, const char *name);
/* Is who an admin of team tm (NULL: no team, no)? Cluster administrators
 * are not, unless listed: check actor.admin besides. */
bool team_is_admin(const struct team *tm, const struct actor *who);
struct prio_class *state_class_find(const struct state *st, const char *name);
struct pool *state_pool_find(const struct state *st, const char *name);
/* The pool of that name, created (recorded, with an event by actor) if
 * there is none: a pool the autoscaler serves exists before its first
 * node, so that work can be submitted to it. */
struct pool *state_pool_ensure(struct state *st, const char *name, const char *actor);
/* Sets what the pool's pending work waits for (struct pool.waiting). */
void state_pool_set_waiting(struct state *st, struct pool *p, const char *why);
/* The autoscaler's template and max_nodes for the pool (struct pool.grows). */
void state_pool_set_growth(struct state *st, struct pool *p, struct hpq_res tmpl,
			   uint32_t max_nodes);

int state_team_set(struct state *st, const Hpq__TeamSetRequest *req, const struct actor *who,
		   struct state_err *e);
int state_team_remove(struct state *st, const char *name, const struct actor *who,
		      struct state_err *e);
int state_class_set(struct state *st, const Hpq__ClassSetRequest *req, const struct actor *who,
		    struct state_err *e);
int state_class_remove(struct state *st, const char *name, const struct actor *who,
		       struct state_err *e);

#endif
