/*
 * rights.c: who may do what to tasks and teams, and the rate-limited
 * record of refusals (rights.h).
 *
 * The refusals are kept per user in a small array (DENIED_MAX_USERS, the
 * user whose window began longest ago makes room): a fixed window of
 * DENIED_WINDOW_MS that records DENIED_BURST events and counts the rest,
 * so a script retrying a forbidden cancel in a loop costs the event log
 * ten rows a minute, and the count of the others is not lost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "log.h"
#include "rights.h"
#include "xalloc.h"

bool rights_task_manage(const struct state *st, const struct task *t, const struct actor *who)
{
	if (who->admin || (!who->agent && !strcmp(who->user, t->user)))
		return true;
	return team_is_admin(state_team_find(st, t->team), who);
}

int rights_task_refuse(const struct task *t, const char *what, struct state_err *e)
{
	return state_errf(e, HPQ_EPERM, "task %llu is %s's: only its owner, admins of team %s "
			  "and cluster administrators may %s", (unsigned long long)t->st.id,
			  t->user, t->team, what);
}

/* ---------------------------------------------------------------- private data */

void rights_view_init(struct rights_view *v, const struct state *st, const struct actor *who,
		      bool private_data)
{
	memset(v, 0, sizeof(*v));
	v->st = st;
	v->who = who;
	v->all = who->admin || !private_data;
	if (v->all || !st->nteams)
		return;
	v->nteams = st->nteams;
	v->team_admin = xcalloc(st->nteams, sizeof(*v->team_admin));
	for (uint32_t i = 0; i < st->nteams; i++) {
		v->team_admin[i] = team_is_admin(st->teams[i], who);
		v->any_team |= v->team_admin[i];
	}
}

void rights_view_release(struct rights_view *v)
{
	free(v->team_admin);
	v->team_admin = NULL;
}

bool rights_view_task(const struct rights_view *v, const struct task *t)
{
	const struct team *tm;

	if (v->all || (!v->who->agent && !strcmp(v->who->user, t->user)))
		return true;
	if (!v->any_team)
		return false;
	tm = state_team_find(v->st, t->team);
	return tm && tm->id < v->nteams && v->team_admin[tm->id];
}

/* ---------------------------------------------------------------- refusals */

struct denial {
	char *user;
	int64_t window_ms;           /* when its window began */
	uint32_t recorded;           /* in this window */
	uint32_t dropped;            /* not recorded, since the last one that was */
};

struct denials {
	struct denial v[DENIED_MAX_USERS];
	size_t n;
};

static struct denial *denial_of(struct state *st, const char *user, int64_t now_ms)
{
	struct denials *ds = st->denials;
	struct denial *d, *oldest = NULL;

	if (!ds)
		ds = st->denials = xcalloc(1, sizeof(*ds));
	for (size_t i = 0; i < ds->n; i++) {
		if (!strcmp(ds->v[i].user, user))
			return &ds->v[i];
		if (!oldest || ds->v[i].window_ms < oldest->window_ms)
			oldest = &ds->v[i];
	}
	if (ds->n < DENIED_MAX_USERS) {
		d = &ds->v[ds->n++];
	} else {
		d = oldest;
		if (d->dropped)
			log_notice("%u refusals of %s were not recorded as events", d->dropped,
				   d->user);
		free(d->user);
	}
	memset(d, 0, sizeof(*d));
	d->user = xstrdup(user);
	d->window_ms = now_ms;
	return d;
}

/* An event that stands for n refusals: left out, it counts as n. */
static void event_of(struct state *st, const char *kind, const char *name, const struct task *t,
		     const char *node, const char *msg, uint32_t n, int64_t now_ms)
{
	struct denial *d = denial_of(st, name, now_ms);

	if (now_ms - d->window_ms >= DENIED_WINDOW_MS || now_ms < d->window_ms) {
		d->window_ms = now_ms;
		d->recorded = 0;
	}
	if (d->recorded >= DENIED_BURST) {
		if (!d->dropped)
			log_notice("%s was refused more than %d times in %d s: the rest of the "
				   "minute is counted, not recorded", name, DENIED_BURST,
				   DENIED_WINDOW_MS / 1000);
		d->dropped = n > UINT32_MAX - d->dropped ? UINT32_MAX : d->dropped + n;
		return;
	}
	d->recorded++;
	if (d->dropped)
		state_event(st, kind, t, node, name, "%s (and %u earlier refusals of %s, "
			    "over %d a minute, not recorded)", msg, d->dropped, name,
			    DENIED_BURST);
	else
		state_event(st, kind, t, node, name, "%s", msg);
	d->dropped = 0;
}

void rights_event_at(struct state *st, const char *kind, const char *name, const struct task *t,
		     const char *node, const char *msg, int64_t now_ms)
{
	event_of(st, kind, name, t, node, msg, 1, now_ms);
}

void rights_denied_at(struct state *st, const struct actor *who, const struct task *t,
		      const char *msg, int64_t now_ms)
{
	event_of(st, "denied", who->user, t, NULL, msg, 1, now_ms);
}

void rights_denied_many(struct state *st, const struct actor *who, uint32_t n, const char *msg)
{
	event_of(st, "denied", who->user, NULL, NULL, msg, n, hpq_mono_ms());
}

void rights_denied(struct state *st, const struct actor *who, const struct task *t,
		   const char *msg)
{
	rights_denied_at(st, who, t, msg, hpq_mono_ms());
}

void rights_release(struct state *st)
{
	if (!st->denials)
		return;
	for (size_t i = 0; i < st->denials->n; i++)
		free(st->denials->v[i].user);
	free(st->denials);
	st->denials = NULL;
}
