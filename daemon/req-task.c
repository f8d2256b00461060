/*
 * req-task.c: the task requests: submit, show, cancel, checkpoint and
 * update (request.h); the list is req-list.c's.
 *
 * Reads answer at once from memory, except `show`, whose checkpoints and
 * events live only in the database: it queues a read behind everything
 * recorded so far and answers from the storage thread's result. Changes
 * answer after their commit. A submit whose dependency names an index of
 * an array that left memory waits for the store to say the array had it.
 *
 * Replies point into the state's own strings instead of copying them;
 * that is safe because they are encoded before the handler returns.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "array.h"
#include "context.h"
#include "depend.h"
#include "error.h"
#include "msg.h"
#include "queue.h"
#include "request.h"
#include "rights.h"
#include "select.h"
#include "server.h"
#include "store.h"
#include "submit.h"
#include "task-reply.h"
#include "xalloc.h"

#define MAX_CANCEL_IDS SELECT_MAX_IDS /* req_cancel_ids_select takes them all */

static int submit_now(struct hpqd *d, struct conn *c, uint64_t id, const Hpq__TaskSpec *spec,
		      struct state_err *e)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__SubmitReply rep = HPQ__SUBMIT_REPLY__INIT;
	struct task *t;
	int r = state_task_submit(&d->state, spec, &c->actor, &t, e);

	if (r < 0)
		return r;
	rep.id = t->st.id;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_SUBMIT_REPLY;
	env.submit_reply = &rep;
	server_reply_after_commit(c, &env);
	return 0;
}

/*
 * What the store said of the array indices a dependency names that memory
 * could not check (depend_gone_indices): a refusal as depend_check makes
 * for an array in memory, or 0. Also refused: a disk that filled while the
 * store was read, as a change is on arrival.
 */
static int indices_verdict(struct hpqd *d, int status, const struct store_index_query *x,
			   size_t n, struct state_err *e)
{
	if (status < 0)
		return state_errf(e, HPQ_ESTORAGE, "cannot read the arrays the dependency names "
				  "from the state database: try again");
	for (size_t i = 0; i < n; i++) {
		if (x[i].known == STORE_INDEX_NOT_ARRAY)
			return state_errf(e, HPQ_ENOTFOUND, "--dependency: no array %llu",
					  (unsigned long long)x[i].id);
		if (x[i].known == STORE_INDEX_NOT_OF)
			return state_errf(e, HPQ_ENOTFOUND, "--dependency: array %llu has no "
					  "index %u", (unsigned long long)x[i].id, x[i].index);
	}
	return store_check_writable(d->store, e->msg, sizeof(e->msg));
}

/* Asks the store about the indices dependency names of arrays that left
 * memory, for fn; returns false, having asked nothing, when there is none. */
static bool read_gone_indices(struct hpqd *d, const char *dependency, store_indices_fn fn,
			      void *arg)
{
	struct store_index_query x[DEPEND_MAX_TERMS];
	uint64_t ids[DEPEND_MAX_TERMS];
	uint32_t idx[DEPEND_MAX_TERMS];
	size_t n = depend_gone_indices(&d->state, dependency, ids, idx, DEPEND_MAX_TERMS);

	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		x[i] = (struct store_index_query){ .id = ids[i], .index = idx[i] };
	store_read_indices(d->store, x, n, fn, arg);
	return true;
}

/*
 * A submit whose dependency names an index of an array that left memory:
 * the store says whether the array had it (an index it never had would
 * otherwise count as completed), then the submit goes on as any other,
 * from a copy of its spec.
 */
struct submit_wait {
	struct hpqd *d;
	struct conn *c;
	uint64_t id;
	size_t len;
	uint8_t spec[];
};

static void on_indices(void *arg, int status, const struct store_index_query *x, size_t n)
{
	struct submit_wait *w = arg;
	struct state_err e = { .msg = "" };
	Hpq__TaskSpec *spec;
	int r = indices_verdict(w->d, status, x, n, &e);

	if (r == 0) {
		spec = hpq__task_spec__unpack(NULL, w->len, w->spec);
		r = spec ? submit_now(w->d, w->c, w->id, spec, &e)
			 : state_errf(&e, HPQ_EPROTO, "the submit could not be read back");
		if (spec)
			hpq__task_spec__free_unpacked(spec, NULL);
	}
	if (r == HPQ_EPERM)
		rights_denied(&w->d->state, &w->c->actor, NULL, e.msg);
	if (r < 0)
		server_send_error(w->c, w->id, r, e.msg);
	server_answered(w->c);
	free(w);
}

int req_submit(struct req *q)
{
	const Hpq__SubmitRequest *m = q->env->submit;
	struct submit_wait *w;

	/* A task runs as its submitter: root only where the cluster allows it. */
	if (q->c->actor.uid == 0 && !q->d->cfg.allow_root_tasks)
		return state_errf(q->e, HPQ_EPERM, "tasks may not run as root on this cluster: "
				  "submit as an ordinary user (or set [auth] allow_root_tasks "
				  "= yes in hpqd.conf)");
	if (!m->spec || !depend_gone_indices(&q->d->state, m->spec->dependency, NULL, NULL, 0))
		return submit_now(q->d, q->c, q->id, m->spec, q->e);
	w = xcalloc(1, sizeof(*w) + hpq__task_spec__get_packed_size(m->spec));
	w->d = q->d;
	w->c = q->c;
	w->id = q->id;
	w->len = hpq__task_spec__pack(m->spec, w->spec);
	server_awaits(q->c);
	read_gone_indices(q->d, m->spec->dependency, on_indices, w);
	return 0;
}

struct show_req {
	struct hpqd *d;
	struct conn *c;
	uint64_t id;
	uint64_t task_id;
	bool script;                 /* the asker wants the batch script */
	bool from_store;             /* the task's row is read too */
	uint64_t array_id;           /* ID_INDEX read from the store: its array and index */
	uint32_t array_index;
	bool index_pending;          /* ID_INDEX without a task: only its script is read */
};

static int send_template(struct hpqd *d, struct conn *c, uint64_t id, const struct array *a,
			 uint32_t index, const struct store_history *h, struct state_err *e);

static void *task_of_row(const struct store_task_row *row, const struct store_checkpoint *newest);

static void on_history(void *arg, int status, const struct store_history *h)
{
	struct show_req *q = arg;
	struct state *st = &q->d->state;
	/* A task that left memory comes with its row (state_tasks_evict). */
	struct task *gone = h ? h->task : NULL;
	const struct task *t = gone ? gone : state_task_find(st, q->task_id);
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ShowReply rep = HPQ__SHOW_REPLY__INIT;
	Hpq__Task task;
	Hpq__Resources res;
	Hpq__Checkpoint *ck = NULL, **ckp = NULL;
	Hpq__Event *ev = NULL, **evp = NULL;
	struct rights_view view;
	struct state_err e;

	if (status < 0) {
		server_send_error(q->c, q->id, status, "cannot read the task's history");
		goto out;
	}
	if (q->index_pending) {
		const struct array *a = array_find(st, q->array_id);
		int r;

		if (!a || !a->tmpl || !array_set_has(&a->pending, q->array_index))
			r = state_errf(&e, HPQ_ESTATE, "%llu_%u started while its script was read: "
				       "show it again", (unsigned long long)q->array_id,
				       q->array_index);
		else
			r = send_template(q->d, q->c, q->id, a, q->array_index, h, &e);
		if (r < 0)
			server_send_error(q->c, q->id, r, e.msg);
		goto out;
	}
	if (!t && q->array_id) {
		server_send_error(q->c, q->id, state_errf(&e, HPQ_ENOTFOUND, "array %llu has no "
							  "index %u",
							  (unsigned long long)q->array_id,
							  q->array_index), e.msg);
		goto out;
	}
	if (!t && !q->from_store && q->task_id && q->task_id < st->next_id) {
		/* It left memory while its history was read: read its row. */
		q->from_store = true;
		store_read_task_history(q->d->store, q->task_id, q->script, task_of_row, on_history,
					q);
		return;
	}
	if (!t) {
		server_send_error(q->c, q->id, state_errf(&e, HPQ_ENOTFOUND, "no task %llu",
							  (unsigned long long)q->task_id), e.msg);
		goto out;
	}
	task_to_pb(st, t, &task, &res);
	if (q->script) {
		if (!h->script) {
			server_send_error(q->c, q->id,
					  state_errf(&e, HPQ_ENOTFOUND, "task %llu was not submitted "
						     "as a batch script",
						     (unsigned long long)t->st.id), e.msg);
			goto out;
		}
		task.script.data = (uint8_t *)h->script;
		task.script.len = h->script_len;
	}
	rights_view_init(&view, st, &q->c->actor, q->d->cfg.private_data);
	task_redact(&view, t, &task);
	rights_view_release(&view);
	if (q->script && task.redacted) {
		server_send_error(q->c, q->id,
				  state_errf(&e, HPQ_EPERM, "task %llu is %s's: its script is "
					     "private", (unsigned long long)t->st.id, t->user),
				  e.msg);
		goto out;
	}
	task.queue_position = queue_position(st, t);
	if (h->nckpts) {
		ck = xcalloc(h->nckpts, sizeof(*ck));
		ckp = xcalloc(h->nckpts, sizeof(*ckp));
	}
	for (size_t i = 0; i < h->nckpts; i++) {
		hpq__checkpoint__init(&ck[i]);
		ck[i].step = h->ckpts[i].step;
		ck[i].path = h->ckpts[i].path;
		ck[i].time = h->ckpts[i].time_ms / 1000;
		ck[i].attempt = h->ckpts[i].attempt;
		ckp[i] = &ck[i];
	}
	if (h->nevents) {
		ev = xcalloc(h->nevents, sizeof(*ev));
		evp = xcalloc(h->nevents, sizeof(*evp));
	}
	for (size_t i = 0; i < h->nevents; i++) {
		const struct store_event *se = &h->events[i];

		hpq__event__init(&ev[i]);
		ev[i].id = se->id;
		ev[i].time = se->time_ms;
		ev[i].kind = (char *)se->kind;
		ev[i].task_id = se->task_id;
		ev[i].node = (char *)se->node;
		ev[i].team = (char *)se->team;
		ev[i].actor = (char *)se->actor;
		ev[i].message = (char *)se->message;
		evp[i] = &ev[i];
	}
	task.n_checkpoints = h->nckpts;
	task.checkpoints = ckp;
	task.n_events = h->nevents;
	task.events = evp;
	rep.task = &task;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_SHOW_REPLY;
	env.show_reply = &rep;
	server_send(q->c, &env);
	free(ck);
	free(ckp);
	free(ev);
	free(evp);
out:
	state_task_free(gone);
	server_answered(q->c);
	free(q);
}

static void *task_of_row(const struct store_task_row *row, const struct store_checkpoint *newest)
{
	return state_task_from_row(row, newest);
}

/*
 * Index index of a, which has no task yet: a's template with that index.
 * With h, the script read for it (hpq show --script).
 */
static int send_template(struct hpqd *d, struct conn *c, uint64_t id, const struct array *a,
			 uint32_t index, const struct store_history *h, struct state_err *e)
{
	struct state *st = &d->state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ShowReply rep = HPQ__SHOW_REPLY__INIT;
	Hpq__Task task;
	Hpq__Resources res;
	struct rights_view view;

	task_to_pb(st, a->tmpl, &task, &res);
	if (h) {
		if (!h->script)
			return state_errf(e, HPQ_ENOTFOUND, "%llu_%u was not submitted as a batch "
					  "script", (unsigned long long)a->id, index);
		task.script.data = (uint8_t *)h->script;
		task.script.len = h->script_len;
	}
	rights_view_init(&view, st, &c->actor, d->cfg.private_data);
	task_redact(&view, a->tmpl, &task);
	rights_view_release(&view);
	if (h && task.redacted)
		return state_errf(e, HPQ_EPERM, "task %llu is %s's: its script is private",
				  (unsigned long long)a->id, a->tmpl->user);
	task.id = a->id;
	task.has_array = true;
	task.array_id = a->id;
	task.array_index = index;
	task.held = a->held;
	task.reason = (char *)array_pending_reason(st, a);
	rep.task = &task;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_SHOW_REPLY;
	env.show_reply = &rep;
	server_send(c, &env);
	return 0;
}

/*
 * ID_INDEX: the index's own task once it is materialized (*task_id), else
 * the array's template with that index, answered here (returns 1), or,
 * for its script, once that is read from the store (returns 2).
 */
static int show_array_index(struct req *q, const Hpq__ShowRequest *m, uint64_t *task_id)
{
	struct state *st = &q->d->state;
	const struct array *a = array_find(st, m->id);
	const struct task *t;
	int r;

	/* The array ended and left memory: the store has its tasks. */
	if (!a && state_task_gone(st, m->id, &(bool){ false })) {
		*task_id = 0;
		return 0;
	}
	if (!a)
		return state_errf(q->e, HPQ_ENOTFOUND, "no array %llu", (unsigned long long)m->id);
	t = array_task_find(st, a, m->array_index);
	if (t) {
		*task_id = t->st.id;
		return 0;
	}
	/* Its task ended and left memory: the store has it (req_show). */
	if ((!a->tmpl || !array_set_has(&a->pending, m->array_index)) &&
	    m->array_index >= a->min && m->array_index <= a->max) {
		*task_id = 0;
		return 0;
	}
	if (!a->tmpl || !array_set_has(&a->pending, m->array_index))
		return state_errf(q->e, HPQ_ENOTFOUND, "array %llu has no index %u",
				  (unsigned long long)m->id, m->array_index);
	/* The script is its array's, in the store only (as every task's). */
	if (m->script)
		return 2;
	r = send_template(q->d, q->c, q->id, a, m->array_index, NULL, q->e);
	return r < 0 ? r : 1;
}

int req_show(struct req *q)
{
	const Hpq__ShowRequest *m = q->env->show;
	const struct task *t;
	struct show_req *s;
	uint64_t task_id = m->id;

	if (m->has_array_index) {
		int r = show_array_index(q, m, &task_id);

		if (r == 2) {
			s = xcalloc(1, sizeof(*s));
			s->d = q->d;
			s->c = q->c;
			s->id = q->id;
			s->array_id = m->id;
			s->array_index = m->array_index;
			s->index_pending = true;
			server_awaits(s->c);
			store_read_history(q->d->store, 0, m->id, on_history, s);
			return 0;
		}
		if (r != 0)
			return r < 0 ? r : 0;
	}
	t = task_id ? state_task_find(&q->d->state, task_id) : NULL;
	if (!t && !m->has_array_index && (task_id == 0 || task_id >= q->d->state.next_id))
		return state_errf(q->e, HPQ_ENOTFOUND, "no task %llu", (unsigned long long)m->id);
	s = xcalloc(1, sizeof(*s));
	s->d = q->d;
	s->c = q->c;
	s->id = q->id;
	s->task_id = task_id;
	s->script = m->script;
	server_awaits(s->c);
	s->from_store = !t;
	if (!t && !task_id) {
		s->array_id = m->id;
		s->array_index = m->array_index;
		store_read_index_history(q->d->store, m->id, m->array_index, m->script, task_of_row,
					 on_history, s);
	} else if (!t) {
		store_read_task_history(q->d->store, task_id, m->script, task_of_row, on_history, s);
	} else {
		store_read_history(q->d->store, task_id,
				   m->script ? (t->array_id ? t->array_id : t->st.id) : 0,
				   on_history, s);
	}
	return 0;
}

struct id_at {
	uint64_t id;
	size_t at;
};

static int id_at_cmp(const void *a, const void *b)
{
	const struct id_at *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->at < y->at ? -1 : x->at > y->at;
}

/* For each of the n ids, where it is named first: an id named twice is
 * cancelled once, its second answer the first's (not "already ended"). */
static size_t *first_places(const uint64_t *ids, size_t n)
{
	struct id_at *v = xcalloc(n, sizeof(*v));
	size_t *first = xcalloc(n, sizeof(*first));

	for (size_t i = 0; i < n; i++)
		v[i] = (struct id_at){ ids[i], i };
	qsort(v, n, sizeof(*v), id_at_cmp);
	for (size_t i = 0; i < n; i++)
		first[v[i].at] = i && v[i].id == v[i - 1].id ? first[v[i - 1].at] : v[i].at;
	free(v);
	return first;
}

int req_cancel(struct req *q)
{
	const Hpq__CancelRequest *m = q->env->cancel;
	struct state *st = &q->d->state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__CancelReply rep = HPQ__CANCEL_REPLY__INIT;
	Hpq__CancelResult *res, **ptrs;
	struct state_err *msgs;
	struct cancel_batch batch = { 0 };
	size_t pending = 0, *first;

	if (m->select)
		return req_cancel_select(q);
	if (!m->n_ids)
		return state_errf(q->e, HPQ_EINVAL, "no task to cancel");
	if (m->n_ids > MAX_CANCEL_IDS)
		return state_errf(q->e, HPQ_EINVAL, "at most %d tasks per cancel", MAX_CANCEL_IDS);
	/* An array's id is every task of the array, not only its first: as a
	 * selector names it (the pending rest goes first, then the tasks). */
	for (size_t i = 0; i < m->n_ids; i++)
		if (array_find(st, m->ids[i]))
			return req_cancel_ids_select(q);
	res = xcalloc(m->n_ids, sizeof(*res));
	ptrs = xcalloc(m->n_ids, sizeof(*ptrs));
	msgs = xcalloc(m->n_ids, sizeof(*msgs));
	first = first_places(m->ids, m->n_ids);
	for (size_t i = 0; i < m->n_ids; i++) {
		const struct task *t = state_task_find(st, m->ids[i]);

		pending += first[i] == i && t && t->state == TASK_PENDING;
	}
	batch.on = pending >= CANCEL_BATCH_MIN;
	for (size_t i = 0; i < m->n_ids; i++) {
		struct task *t = state_task_find(st, m->ids[i]);
		int r;

		hpq__cancel_result__init(&res[i]);
		res[i].id = m->ids[i];
		ptrs[i] = &res[i];
		if (first[i] != i) {
			res[i].code = res[first[i]].code;
			res[i].message = res[first[i]].message;
			continue;
		}
		if (!t) {
			r = state_errf(&msgs[i], HPQ_ENOTFOUND, "no task %llu",
				       (unsigned long long)m->ids[i]);
		} else {
			r = state_task_cancel_in(st, t, &q->c->actor, &batch, &msgs[i]);
			if (r == HPQ_EPERM)
				rights_denied(st, &q->c->actor, t, msgs[i].msg);
			if (r == 1)
				agentlink_kill_after_commit(q->d, t, t->attempts, -1, SIGTERM,
							    state_task_stop_grace(st, t),
							    "cancelled");
		}
		res[i].code = r < 0 ? r : 0;
		res[i].message = r < 0 ? msgs[i].msg : (char *)"";
	}
	state_cancel_batch_end(st, &batch, &q->c->actor);
	rep.n_results = m->n_ids;
	rep.results = ptrs;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_CANCEL_REPLY;
	env.cancel_reply = &rep;
	server_reply_after_commit(q->c, &env);
	free(res);
	free(ptrs);
	free(msgs);
	free(first);
	return 0;
}

int req_checkpoint(struct req *q)
{
	const Hpq__CheckpointRequest *m = q->env->checkpoint;
	struct task *t = state_task_find(&q->d->state, m->task_id);

	/* An agent speaks for its node once Register checked its certificate
	 * (known, not revoked): before that, Hello proved only a CA signature. */
	if (q->c->actor.agent && !agentlink_node(q->c))
		return state_errf(q->e, HPQ_EPROTO, "register first");
	if (!t)
		return state_errf(q->e, HPQ_ENOTFOUND, "no task %llu", (unsigned long long)m->task_id);
	return req_ok_after_commit(q, state_checkpoint_add(&q->d->state, t, m->attempt, m->step,
							   m->path, &q->c->actor, q->e));
}

/* The one task an update names: "12", or an array's started index "12_5". */
static struct task *update_task(struct state *st, const char *id, struct state_err *e, int *r)
{
	Hpq__TaskSelector sel = HPQ__TASK_SELECTOR__INIT;
	struct selection found;
	struct task *t = NULL;
	char *ids[] = { (char *)id };

	sel.n_ids = 1;
	sel.ids = ids;
	*r = select_resolve(st, &sel, &found, e);
	if (*r < 0)
		return NULL;
	/* A plain id is its own task: an array's, once its first index has
	 * ended, does not name the one index of it still going. */
	if (found.n == 1 && found.v[0].kind == SEL_TASK &&
	    (strchr(id, '_') || found.v[0].t->st.id == strtoull(id, NULL, 10))) {
		t = found.v[0].t;
	} else if (found.n == 1 && found.v[0].kind == SEL_MISSING) {
		*r = state_errf(e, found.v[0].code, "%s", found.v[0].msg ? found.v[0].msg : id);
	} else if (found.n && found.v[0].kind == SEL_INDEX) {
		*r = state_errf(e, HPQ_ESTATE, "%.32s has not started: an array's pending "
				"indices share the array's request (hpq hold %.32s makes it a "
				"task of its own, which hpq update can change)", id, id);
	} else {
		*r = state_errf(e, HPQ_EINVAL, "%.32s names more than one task: update one at "
				"a time", id);
	}
	select_release(&found);
	return t;
}

static int update_now(struct hpqd *d, struct conn *c, uint64_t id, const char *task,
		      char *const *fields, size_t n, struct state_err *e)
{
	struct state *st = &d->state;
	int r;
	struct task *t = update_task(st, task, e, &r);

	if (!t)
		return r;
	r = state_task_update(st, t, fields, n, &c->actor, e);
	if (r == HPQ_EPERM)
		rights_denied(st, &c->actor, t, e->msg);
	if (r == 1)
		agentlink_limit_after_commit(d, t);
	if (r < 0)
		return r;
	server_ok_after_commit(c, id);
	return 0;
}

/* An update whose dependency names an index of an array that left memory
 * (as a submit's, submit_wait): from a copy of its id and fields. */
struct update_wait {
	struct hpqd *d;
	struct conn *c;
	uint64_t id;
	char *task;
	char **fields;
	size_t n;
};

static void on_update_indices(void *arg, int status, const struct store_index_query *x,
			      size_t n)
{
	struct update_wait *w = arg;
	struct state_err e = { .msg = "" };
	int r = indices_verdict(w->d, status, x, n, &e);

	if (r == 0)
		r = update_now(w->d, w->c, w->id, w->task, w->fields, w->n, &e);
	if (r < 0)
		server_send_error(w->c, w->id, r, e.msg);
	server_answered(w->c);
	free(w->task);
	for (size_t i = 0; i < w->n; i++)
		free(w->fields[i]);
	free(w->fields);
	free(w);
}

/* The dependency fields sets (the last one counts), or NULL. */
static const char *update_dependency(char *const *fields, size_t n)
{
	const char *dep = NULL;

	for (size_t i = 0; i < n; i++)
		if (!strncmp(fields[i], "dependency=", 11))
			dep = fields[i] + 11;
	return dep;
}

int req_update(struct req *q)
{
	const Hpq__UpdateRequest *m = q->env->update;
	const char *dep = update_dependency(m->fields, m->n_fields);
	struct update_wait *w;

	if (!dep || !depend_gone_indices(&q->d->state, dep, NULL, NULL, 0))
		return update_now(q->d, q->c, q->id, m->id, m->fields, m->n_fields, q->e);
	w = xcalloc(1, sizeof(*w));
	w->d = q->d;
	w->c = q->c;
	w->id = q->id;
	w->task = xstrdup(m->id);
	w->n = m->n_fields;
	w->fields = xcalloc(w->n, sizeof(*w->fields));
	for (size_t i = 0; i < w->n; i++)
		w->fields[i] = xstrdup(m->fields[i]);
	server_awaits(q->c);
	read_gone_indices(q->d, dep, on_update_indices, w);
	return 0;
}
