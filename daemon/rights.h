/*
 * rights.h: who may do what to tasks and teams, and the record of what
 * was refused (docs/security.md "Rights").
 *
 * Three kinds of people: cluster administrators (actor.admin: root,
 * hpqd's user, [auth] admins and the members of [auth] admin_group), the
 * admins of a team (its admins list) and everyone else. Team members and
 * admins are user names or @groups, matched against the user's groups
 * that the server resolved at Hello (groups.h).
 *
 * A task is managed (cancelled) by its owner, the admins of its team and
 * cluster administrators; its private data (argv, cwd, output) is shown
 * to the same people, or to everyone when [auth] private_data is off.
 * A team's admins set its members; all else about teams, and classes,
 * the policy and nodes, is the cluster administrators'. Every refusal
 * for want of a right is recorded as a "denied" event, at most
 * DENIED_BURST a minute per user.
 */
#ifndef HPQD_RIGHTS_H
#define HPQD_RIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

/* Recorded refusals per user and window; the users remembered at most. */
#define DENIED_BURST 10
#define DENIED_WINDOW_MS 60000
#define DENIED_MAX_USERS 256

/* May who manage t (cancel it): its owner, its team's admins, cluster
 * administrators. */
bool rights_task_manage(const struct state *st, const struct task *t, const struct actor *who);
/* The refusal of `what` ("cancel it", "read its output") on t, naming who
 * may: returns HPQ_EPERM with the message in e. */
int rights_task_refuse(const struct task *t, const char *what, struct state_err *e);

/*
 * One reader's right to the private data of tasks, worked out once per
 * request (the teams it administers), so that `hpq list` checks each task
 * in constant time.
 */
struct rights_view {
	const struct state *st;
	const struct actor *who;
	bool all;                    /* cluster administrator, or private_data off */
	bool any_team;               /* admin of some team */
	bool *team_admin;            /* by team id */
	uint32_t nteams;
};

void rights_view_init(struct rights_view *v, const struct state *st, const struct actor *who,
		      bool private_data);
void rights_view_release(struct rights_view *v);
/* May v's reader see t's argv, cwd and output? */
bool rights_view_task(const struct rights_view *v, const struct task *t);

/*
 * Records a refusal (msg, the reason given to who) as a "denied" event
 * with who as its actor and t (or NULL) as its task. Per user, at most
 * DENIED_BURST are recorded in a window of DENIED_WINDOW_MS; the rest are
 * counted, and the next one recorded in a later window says how many were
 * left out. rights_denied_at takes the monotonic time (for the tests).
 */
void rights_denied(struct state *st, const struct actor *who, const struct task *t,
		   const char *msg);
void rights_denied_at(struct state *st, const struct actor *who, const struct task *t,
		      const char *msg, int64_t now_ms);
/* One refusal that stands for n of who's (the tasks of a request refused
 * past CONTROL_DENIED_MAX, control.h): left out by the limit, it counts as
 * n in the next recorded one. */
void rights_denied_many(struct state *st, const struct actor *who, uint32_t n, const char *msg);
/* The same limit for any kind of event about name ("security": trust.h). */
void rights_event_at(struct state *st, const char *kind, const char *name, const struct task *t,
		     const char *node, const char *msg, int64_t now_ms);
/* Frees what rights_denied keeps in st (state_release). */
void rights_release(struct state *st);

#endif
