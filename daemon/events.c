/*
 * events.c: hpq events, its followers, preemption counts and retention
 * (events.h).
 *
 * The events table is written by state_event through the store's batches;
 * this file only reads it (store_call ops, in order with the writes) and
 * prunes it. Live delivery hangs off the state's on_event hook: when
 * somebody follows, each event is copied and a completion registered
 * behind its batch, so it goes out only once committed, in the order
 * recorded. Every event gets a sequence number; a follower takes those at
 * or after the number current when it subscribed. Its backlog read is
 * queued at that same moment, so an event is either in the backlog (it
 * was recorded before) or pushed (after), never both, never neither, and
 * the backlog reply, whose completion comes first, precedes the pushes.
 *
 * Preemptions are also kept in memory for an hour (a sorted array with a
 * moving head) because `hpq status` counts them per team on every call;
 * at start they are seeded from the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "clock.h"
#include "error.h"
#include "events.h"
#include "hpqd.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "usage.h"
#include "xalloc.h"

#define HOUR_MS (3600 * 1000)
#define DEFAULT_LIMIT 1000
#define MAX_LIMIT 100000
/* The first prune runs soon after start, then hourly; each deletes at most
 * PRUNE_ROWS rows so that one commit never stalls the others for long. */
#define PRUNE_FIRST_MS (60 * 1000)
#define PRUNE_EVERY_MS ((uint64_t)HOUR_MS)
#define PRUNE_ROWS 50000

struct sub {
	struct dlist link;
	struct conn *c;
	uint64_t req_id;
	uint64_t from_seq;
	uint64_t task_id;
	char *team, *node;
	int64_t since_ms;
};

struct events {
	struct hpqd *d;
	struct dlist subs;
	uint64_t seq;                /* sequence number of the next event */
	uint64_t id_base;            /* the table id of event seq 0, once known */
	bool id_known;
	struct preempt_mark *marks;
	size_t head, nmarks, capmarks; /* live marks are [head, nmarks) */
	uint64_t preempt_total;
	uv_timer_t prune;
	bool has_timer;
};

/* An event on its way to the followers. */
struct push {
	struct events *ev;
	uint64_t seq;
	int64_t time_ms;
	uint64_t task_id;
	char *kind, *node, *team, *actor, *message;
};

/* ---------------------------------------------------------------- followers */

static void sub_free(struct sub *s)
{
	dlist_del(&s->link);
	server_unref(s->c);
	free(s->team);
	free(s->node);
	free(s);
}

static bool sub_match(const struct sub *s, const struct push *p)
{
	if (s->task_id && s->task_id != p->task_id)
		return false;
	if (s->team && strcmp(s->team, p->team))
		return false;
	if (s->node && strcmp(s->node, p->node))
		return false;
	return p->time_ms >= s->since_ms;
}

static void push_free(struct push *p)
{
	free(p->kind);
	free(p->node);
	free(p->team);
	free(p->actor);
	free(p->message);
	free(p);
}

static void on_push_committed(void *arg, int status)
{
	struct push *p = arg;
	struct events *ev = p->ev;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Event e = HPQ__EVENT__INIT;

	e.id = ev->id_known ? ev->id_base + p->seq : 0;
	e.time = p->time_ms;
	e.kind = p->kind;
	e.task_id = p->task_id;
	e.node = p->node;
	e.team = p->team;
	e.actor = p->actor;
	e.message = p->message;
	env.body_case = HPQ__ENVELOPE__BODY_EVENT;
	env.event = &e;
	for (struct dlist *l = ev->subs.next, *next; l != &ev->subs; l = next) {
		struct sub *s = container_of(l, struct sub, link);

		next = l->next;
		if (s->c->dead) {
			sub_free(s);
			continue;
		}
		if (status < 0 || p->seq < s->from_seq || !sub_match(s, p))
			continue;
		env.id = s->req_id;
		server_send(s->c, &env);
	}
	push_free(p);
}

/* ---------------------------------------------------------------- preemption marks */

static void mark_add(struct events *ev, int64_t time_ms, uint32_t team, uint32_t pool)
{
	if (ev->head && ev->head * 2 >= ev->nmarks) {
		/* More than half is expired: slide the live part down. */
		memmove(ev->marks, ev->marks + ev->head,
			(ev->nmarks - ev->head) * sizeof(*ev->marks));
		ev->nmarks -= ev->head;
		ev->head = 0;
	}
	if (ev->nmarks == ev->capmarks) {
		ev->capmarks = ev->capmarks ? 2 * ev->capmarks : 64;
		ev->marks = xreallocarray(ev->marks, ev->capmarks, sizeof(*ev->marks));
	}
	ev->marks[ev->nmarks++] = (struct preempt_mark){ time_ms, team, pool };
}

const struct preempt_mark *events_preemptions(struct events *ev, int64_t since_ms,
					      size_t *ret_n)
{
	/* Drop what is older than an hour before the newest query could ask. */
	while (ev->head < ev->nmarks && ev->marks[ev->head].time_ms < since_ms &&
	       ev->marks[ev->head].time_ms < hpq_now_ms() - HOUR_MS)
		ev->head++;
	for (size_t i = ev->head; i < ev->nmarks; i++)
		if (ev->marks[i].time_ms >= since_ms) {
			*ret_n = ev->nmarks - i;
			return ev->marks + i;
		}
	*ret_n = 0;
	return NULL;
}

uint64_t events_preempt_total(const struct events *ev)
{
	return ev->preempt_total;
}

static void on_event(void *arg, const struct store_event *e, const struct task *t)
{
	struct events *ev = arg;
	struct push *p;

	usage_note(ev->d, e);
	if (t && !strcmp(e->kind, "preempt")) {
		mark_add(ev, e->time_ms, t->st.team, t->st.pool);
		ev->preempt_total++;
	}
	if (dlist_empty(&ev->subs)) {
		ev->seq++;
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->ev = ev;
	p->seq = ev->seq++;
	p->time_ms = e->time_ms;
	p->task_id = e->task_id;
	p->kind = xstrdup(e->kind);
	p->node = xstrdup(e->node ? e->node : "");
	p->team = xstrdup(e->team ? e->team : "");
	p->actor = xstrdup(e->actor ? e->actor : "");
	p->message = xstrdup(e->message ? e->message : "");
	store_after_commit(ev->d->store, on_push_committed, p);
}

/* Seeding the marks: the preemptions of the last hour, from the table. */
struct seed {
	struct events *ev;
	int64_t since_ms;
	int rc;
	uint64_t max_id;
	uint64_t *task_ids;
	int64_t *times;
	size_t n;
};

static int seed_read(sqlite3 *db, void *arg)
{
	struct seed *sd = arg;
	sqlite3_stmt *q = NULL;
	int rc;

	/* Events are rows appended in the order state_event records them, and
	 * pruning never deletes the newest, so the events recorded from here on
	 * get ids max + 1, max + 2, ...: pushes can carry them. */
	rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM events", -1, &q, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		sd->max_id = (uint64_t)sqlite3_column_int64(q, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(q);
	q = NULL;
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT task_id, time FROM events WHERE"
					" kind = 'preempt' AND time >= ?1 ORDER BY time", -1, &q,
					NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, sd->since_ms);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			sd->task_ids = xreallocarray(sd->task_ids, sd->n + 1, sizeof(uint64_t));
			sd->times = xreallocarray(sd->times, sd->n + 1, sizeof(int64_t));
			sd->task_ids[sd->n] = (uint64_t)sqlite3_column_int64(q, 0);
			sd->times[sd->n++] = sqlite3_column_int64(q, 1);
		}
	}
	sqlite3_finalize(q);
	sd->rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	return SQLITE_OK;
}

static void on_seeded(void *arg, int status)
{
	struct seed *sd = arg;
	struct events *ev = sd->ev;
	size_t nold = ev->nmarks - ev->head;
	const struct preempt_mark *old = nold ? ev->marks + ev->head : NULL;
	struct preempt_mark *m = xcalloc(sd->n + nold + 1, sizeof(*m));
	size_t n = 0;

	if (status < 0 || sd->rc != SQLITE_OK) {
		log_warn("cannot read the last hour's preemptions: status counts start at zero");
	} else {
		ev->id_base = sd->max_id + 1;
		ev->id_known = true;
	}
	for (size_t i = 0; status >= 0 && i < sd->n; i++) {
		const struct task *t = state_task_find(&ev->d->state, sd->task_ids[i]);

		if (t)
			m[n++] = (struct preempt_mark){ sd->times[i], t->st.team, t->st.pool };
	}
	/* Marks recorded since start are newer than anything read. */
	if (nold)
		memcpy(m + n, old, nold * sizeof(*m));
	free(ev->marks);
	ev->marks = m;
	ev->head = 0;
	ev->nmarks = ev->capmarks = n + nold;
	if (!ev->capmarks) {
		free(ev->marks);
		ev->marks = NULL;
	}
	free(sd->task_ids);
	free(sd->times);
	free(sd);
}

/* ---------------------------------------------------------------- reading */

struct read_req {
	struct conn *c;
	uint64_t id;
	uint64_t task_id;
	char *team, *node;
	int64_t since_ms;
	uint32_t limit;
	int rc;
	char errmsg[128];
	struct store_event *rows;    /* newest first; strings owned */
	size_t n;
	bool truncated;
};

static int read_rows(sqlite3 *db, void *arg)
{
	struct read_req *q = arg;
	char sql[512];
	sqlite3_stmt *st = NULL;
	int rc;

	snprintf(sql, sizeof(sql),
		 "SELECT id, time, kind, task_id, node, team, actor, message FROM events"
		 " WHERE time >= ?1%s%s%s ORDER BY id DESC LIMIT ?5",
		 q->task_id ? " AND task_id = ?2" : "", q->team ? " AND team = ?3" : "",
		 q->node ? " AND node = ?4" : "");
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, q->since_ms);
	if (q->task_id)
		sqlite3_bind_int64(st, 2, (int64_t)q->task_id);
	if (q->team)
		sqlite3_bind_text(st, 3, q->team, -1, SQLITE_STATIC);
	if (q->node)
		sqlite3_bind_text(st, 4, q->node, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)q->limit + 1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_event *e;

		if (q->n == q->limit) {
			q->truncated = true;
			continue;
		}
		q->rows = xreallocarray(q->rows, q->n + 1, sizeof(*q->rows));
		e = &q->rows[q->n++];
		e->id = (uint64_t)sqlite3_column_int64(st, 0);
		e->time_ms = sqlite3_column_int64(st, 1);
		e->kind = xstrdup((const char *)sqlite3_column_text(st, 2) ?: "");
		e->task_id = (uint64_t)sqlite3_column_int64(st, 3);
		e->node = xstrdup((const char *)sqlite3_column_text(st, 4) ?: "");
		e->team = xstrdup((const char *)sqlite3_column_text(st, 5) ?: "");
		e->actor = xstrdup((const char *)sqlite3_column_text(st, 6) ?: "");
		e->message = xstrdup((const char *)sqlite3_column_text(st, 7) ?: "");
	}
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
out:
	if (rc != SQLITE_OK)
		snprintf(q->errmsg, sizeof(q->errmsg), "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	q->rc = rc;
	return SQLITE_OK;
}

static void read_free(struct read_req *q)
{
	for (size_t i = 0; i < q->n; i++) {
		free((char *)q->rows[i].kind);
		free((char *)q->rows[i].node);
		free((char *)q->rows[i].team);
		free((char *)q->rows[i].actor);
		free((char *)q->rows[i].message);
	}
	free(q->rows);
	free(q->team);
	free(q->node);
	server_unref(q->c);
	free(q);
}

static void on_read(void *arg, int status)
{
	struct read_req *q = arg;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__EventsReply rep = HPQ__EVENTS_REPLY__INIT;
	Hpq__Event *evs = NULL, **ptrs = NULL;

	if (status < 0 || q->rc != SQLITE_OK) {
		char msg[192];

		snprintf(msg, sizeof(msg), "cannot read the events: %s",
			 status < 0 ? "the store failed" : q->errmsg);
		server_send_error(q->c, q->id, HPQ_ESTORAGE, msg);
		read_free(q);
		return;
	}
	if (q->n) {
		evs = xcalloc(q->n, sizeof(*evs));
		ptrs = xcalloc(q->n, sizeof(*ptrs));
	}
	/* Oldest first, as logs read. */
	for (size_t i = 0; i < q->n; i++) {
		const struct store_event *se = &q->rows[q->n - 1 - i];

		hpq__event__init(&evs[i]);
		evs[i].id = se->id;
		evs[i].time = se->time_ms;
		evs[i].kind = (char *)se->kind;
		evs[i].task_id = se->task_id;
		evs[i].node = (char *)se->node;
		evs[i].team = (char *)se->team;
		evs[i].actor = (char *)se->actor;
		evs[i].message = (char *)se->message;
		ptrs[i] = &evs[i];
	}
	rep.n_events = q->n;
	rep.events = ptrs;
	rep.truncated = q->truncated;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_EVENTS_REPLY;
	env.events_reply = &rep;
	server_send(q->c, &env);
	free(evs);
	free(ptrs);
	read_free(q);
}

int events_rpc(struct conn *c, uint64_t id, const Hpq__EventsRequest *m, struct state_err *e)
{
	struct events *ev = c->d->events;
	struct read_req *q;

	if (m->limit > MAX_LIMIT)
		return state_errf(e, HPQ_EINVAL, "at most %d events per request", MAX_LIMIT);
	if (strlen(m->team) > 256 || strlen(m->node) > 256)
		return state_errf(e, HPQ_EINVAL, "team or node name too long");
	if (m->since < 0)
		return state_errf(e, HPQ_EINVAL, "since must not be negative");
	q = xcalloc(1, sizeof(*q));
	q->c = c;
	q->id = id;
	q->task_id = m->task_id;
	q->team = *m->team ? xstrdup(m->team) : NULL;
	q->node = *m->node ? xstrdup(m->node) : NULL;
	q->since_ms = m->since;
	q->limit = m->limit ? m->limit : DEFAULT_LIMIT;
	server_ref(c);
	store_call(c->d->store, read_rows, on_read, q);

	if (m->follow) {
		struct sub *s = xcalloc(1, sizeof(*s));

		s->c = c;
		s->req_id = id;
		s->from_seq = ev->seq;
		s->task_id = m->task_id;
		s->team = *m->team ? xstrdup(m->team) : NULL;
		s->node = *m->node ? xstrdup(m->node) : NULL;
		s->since_ms = m->since;
		server_ref(c);
		dlist_add_tail(&ev->subs, &s->link);
	}
	return 0;
}

/* ---------------------------------------------------------------- retention */

struct prune {
	int64_t before_ms;
	int changes;
};

static int prune_rows(sqlite3 *db, void *arg)
{
	struct prune *p = arg;
	sqlite3_stmt *q = NULL;
	int rc;

	/* Never the newest row: ids must keep growing from it (seed_read). */
	rc = sqlite3_prepare_v2(db, "DELETE FROM events WHERE id IN (SELECT id FROM events"
				" WHERE time < ?1 AND id < (SELECT max(id) FROM events)"
				" ORDER BY time LIMIT ?2)", -1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, p->before_ms);
		sqlite3_bind_int(q, 2, PRUNE_ROWS);
		rc = sqlite3_step(q);
		p->changes = sqlite3_changes(db);
	}
	sqlite3_finalize(q);
	/* A failed delete only delays pruning; it must not break the store. */
	if (rc != SQLITE_DONE)
		p->changes = -1;
	return SQLITE_OK;
}

static void on_pruned(void *arg, int status)
{
	struct prune *p = arg;

	if (status >= 0 && p->changes > 0)
		log_info("pruned %d events older than the retention period", p->changes);
	else if (status >= 0 && p->changes < 0)
		log_warn("cannot prune old events; will try again in an hour");
	free(p);
}

static void on_prune_timer(uv_timer_t *h)
{
	struct events *ev = h->data;
	struct prune *p;

	if (ev->d->stopping || !ev->d->cfg.events_retain_s)
		return;
	p = xcalloc(1, sizeof(*p));
	p->before_ms = hpq_now_ms() - (int64_t)ev->d->cfg.events_retain_s * 1000;
	store_call(ev->d->store, prune_rows, on_pruned, p);
}

/* ---------------------------------------------------------------- setup */

int events_init(struct hpqd *d)
{
	struct events *ev = xcalloc(1, sizeof(*ev));
	struct seed *sd = xcalloc(1, sizeof(*sd));

	ev->d = d;
	dlist_init(&ev->subs);
	d->events = ev;
	d->state.on_event = on_event;
	d->state.on_event_arg = ev;
	sd->ev = ev;
	sd->since_ms = hpq_now_ms() - HOUR_MS;
	store_call(d->store, seed_read, on_seeded, sd);
	if (uv_timer_init(d->loop, &ev->prune) < 0)
		return HPQ_EINVAL;
	ev->prune.data = ev;
	ev->has_timer = true;
	uv_timer_start(&ev->prune, on_prune_timer, PRUNE_FIRST_MS, PRUNE_EVERY_MS);
	uv_unref((uv_handle_t *)&ev->prune);
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void events_close(struct hpqd *d)
{
	struct events *ev = d->events;

	if (!ev)
		return;
	while (!dlist_empty(&ev->subs))
		sub_free(container_of(ev->subs.next, struct sub, link));
	d->state.on_event = NULL;
	d->events = NULL;
	free(ev->marks);
	ev->marks = NULL;
	if (ev->has_timer)
		uv_close((uv_handle_t *)&ev->prune, on_timer_closed);
	else
		free(ev);
}
