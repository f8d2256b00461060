/*
 * events.c: hpq events, its followers, preemption counts and retention
 * (events.h).
 *
 * The events table is written by state_event through the store's batches;
 * this file only reads it (store reads, queued in order with the writes)
 * and prunes it. Live delivery hangs off the state's event observer: when
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

#include "clock.h"
#include "error.h"
#include "events.h"
#include "context.h"
#include "log.h"
#include "server.h"
#include "store.h"
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

static void on_event(void *arg, const struct store_event *e, const struct task *t)
{
	struct events *ev = arg;
	struct push *p;

	if (t && !strcmp(e->kind, "preempt"))
		mark_add(ev, e->time_ms, t->st.team, t->st.pool);
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

/*
 * Seeding the marks with the preemptions of the last hour, from the table.
 * Events are rows appended in the order state_event records them, and
 * pruning never deletes the newest, so the events recorded from here on
 * get ids max + 1, max + 2, ...: pushes can carry them.
 */
static void on_seeded(void *arg, int status, const struct store_event_marks *r)
{
	struct events *ev = arg;
	bool ok = status >= 0 && !r->error;
	size_t nread = ok ? r->n : 0;
	size_t nold = ev->nmarks - ev->head;
	const struct preempt_mark *old = nold ? ev->marks + ev->head : NULL;
	struct preempt_mark *m = xcalloc(nread + nold + 1, sizeof(*m));
	size_t n = 0;

	if (!ok) {
		log_warn("cannot read the last hour's preemptions: status counts start at zero");
	} else {
		ev->id_base = r->max_id + 1;
		ev->id_known = true;
	}
	for (size_t i = 0; i < nread; i++) {
		const struct task *t = state_task_find(&ev->d->state, r->v[i].task_id);

		if (t)
			m[n++] = (struct preempt_mark){ r->v[i].time_ms, t->st.team, t->st.pool };
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
}

/* ---------------------------------------------------------------- reading */

struct read_req {
	struct conn *c;
	uint64_t id;
};

static void read_free(struct read_req *q)
{
	server_answered(q->c);
	free(q);
}

static void on_read(void *arg, int status, const struct store_event_list *l)
{
	struct read_req *q = arg;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__EventsReply rep = HPQ__EVENTS_REPLY__INIT;
	Hpq__Event *evs = NULL, **ptrs = NULL;

	if (status < 0 || l->error) {
		char msg[192];

		snprintf(msg, sizeof(msg), "cannot read the events: %s",
			 status < 0 ? "the store failed" : l->error);
		server_send_error(q->c, q->id, HPQ_ESTORAGE, msg);
		read_free(q);
		return;
	}
	if (l->n) {
		evs = xcalloc(l->n, sizeof(*evs));
		ptrs = xcalloc(l->n, sizeof(*ptrs));
	}
	/* Oldest first, as logs read. */
	for (size_t i = 0; i < l->n; i++) {
		const struct store_event *se = &l->v[i];

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
	rep.n_events = l->n;
	rep.events = ptrs;
	rep.truncated = l->truncated;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_EVENTS_REPLY;
	env.events_reply = &rep;
	server_send(q->c, &env);
	free(evs);
	free(ptrs);
	read_free(q);
}

int events_request(struct events *ev, struct conn *c, uint64_t id, const Hpq__EventsRequest *m,
		   struct state_err *e)
{
	struct store_event_filter f = {
		.since_ms = m->since,
		.task_id = m->task_id,
		.team = *m->team ? m->team : NULL,
		.node = *m->node ? m->node : NULL,
		.limit = m->limit ? m->limit : DEFAULT_LIMIT,
	};
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
	server_awaits(c);
	store_events_read(ev->d->store, &f, on_read, q);

	if (m->follow) {
		struct sub *s = xcalloc(1, sizeof(*s));

		s->c = c;
		s->req_id = id;
		s->from_seq = ev->seq;
		s->task_id = m->task_id;
		s->team = *m->team ? xstrdup(m->team) : NULL;
		s->node = *m->node ? xstrdup(m->node) : NULL;
		s->since_ms = m->since;
		c->follower = true;   /* silent by design: not idle (server.c) */
		server_ref(c);
		dlist_add_tail(&ev->subs, &s->link);
	}
	return 0;
}

/* ---------------------------------------------------------------- retention */

/* A failed delete only delays pruning: the store goes on. */
static void on_pruned(void *arg, int status, const struct store_prune *p)
{
	if (status < 0)
		return;
	if (p->error)
		log_warn("cannot prune old events; will try again in an hour");
	else if (p->deleted > 0)
		log_info("pruned %lld events older than the retention period",
			 (long long)p->deleted);
}

static void on_prune_timer(uv_timer_t *h)
{
	struct events *ev = h->data;

	if (ev->d->stopping || !ev->d->cfg.events_retain_s)
		return;
	store_events_prune(ev->d->store,
			   hpq_now_ms() - (int64_t)ev->d->cfg.events_retain_s * 1000, PRUNE_ROWS,
			   on_pruned, NULL);
}

/* ---------------------------------------------------------------- setup */

int events_init(struct hpqd *d)
{
	struct events *ev = xcalloc(1, sizeof(*ev));

	ev->d = d;
	dlist_init(&ev->subs);
	d->events = ev;
	state_observe(&d->state, &(struct state_observer){ .event = on_event, .arg = ev });
	store_events_marks(d->store, "preempt", hpq_now_ms() - HOUR_MS, on_seeded, ev);
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
	state_unobserve(&d->state, ev);
	d->events = NULL;
	free(ev->marks);
	ev->marks = NULL;
	if (ev->has_timer)
		uv_close((uv_handle_t *)&ev->prune, on_timer_closed);
	else
		free(ev);
}
