/*
 * req-task.c: the task requests: submit, list, show, cancel and checkpoint
 * (request.h).
 *
 * Reads answer at once from memory, except `show`, whose checkpoints and
 * events live only in the database: it queues a read behind everything
 * recorded so far and answers from the storage thread's result. Changes
 * answer after their commit.
 *
 * Replies point into the state's own strings instead of copying them;
 * that is safe because they are encoded before the handler returns.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "context.h"
#include "error.h"
#include "msg.h"
#include "queue.h"
#include "request.h"
#include "rights.h"
#include "server.h"
#include "store.h"
#include "xalloc.h"

#define MAX_CANCEL_IDS 10000
/* Room left in a frame for the envelope around a list of tasks. */
#define LIST_BUDGET (HPQ_FRAME_MAX - 65536)

/* Fills pb from t; res is pb's per_node storage. Strings are borrowed. */
static void task_to_pb(const struct state *st, const struct task *t, Hpq__Task *pb,
		       Hpq__Resources *res)
{
	hpq__task__init(pb);
	hpq__resources__init(res);
	pb->id = t->st.id;
	pb->name = t->name;
	pb->team = t->team;
	pb->user = t->user;
	pb->uid = t->uid;
	pb->gid = t->gid;
	pb->class_ = t->cls;
	pb->pool = t->pool;
	pb->state = (char *)state_task_state(t->state);
	pb->reason = (char *)state_task_reason(st, t);
	pb->nodes = t->st.nnodes;
	hpq_res_to_pb(t->st.per_node, res);
	pb->per_node = res;
	pb->n_node_names = t->n_node_names;
	pb->node_names = t->node_names;
	pb->attempts = t->attempts;
	pb->submit_time = t->submit_ms;
	pb->start_time = t->start_ms;
	pb->end_time = t->end_ms;
	pb->exit_code = t->exit_code;
	pb->has_exit_code = t->has_exit_code;
	pb->time_limit_s = t->time_limit_s;
	pb->checkpoint_dir = t->checkpoint_dir;
	pb->n_argv = t->argc;
	pb->argv = t->argv;
	pb->cwd = t->cwd;
	pb->preempt_signal = t->preempt_signal;
	pb->grace_s = state_task_grace(st, t);
}

/* Withholds t's private data from a reader who may not see it (rights.h). */
static void task_redact(const struct rights_view *v, const struct task *t, Hpq__Task *pb)
{
	if (rights_view_task(v, t))
		return;
	pb->n_argv = 0;
	pb->argv = NULL;
	pb->cwd = (char *)"";
	pb->redacted = true;
}

int req_submit(struct req *q)
{
	const Hpq__SubmitRequest *m = q->env->submit;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__SubmitReply rep = HPQ__SUBMIT_REPLY__INIT;
	struct task *t;
	int r;

	/* A task runs as its submitter: root only where the cluster allows it. */
	if (q->c->actor.uid == 0 && !q->d->cfg.allow_root_tasks)
		return state_errf(q->e, HPQ_EPERM, "tasks may not run as root on this cluster: "
				  "submit as an ordinary user (or set [auth] allow_root_tasks "
				  "= yes in hpqd.conf)");
	r = state_task_submit(&q->d->state, m->spec, &q->c->actor, &t, q->e);
	if (r < 0)
		return r;
	rep.id = t->st.id;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_SUBMIT_REPLY;
	env.submit_reply = &rep;
	server_reply_after_commit(q->c, &env);
	return 0;
}

struct list_filter {
	const char *team, *user;
	int state;           /* -1: any; -2: active */
};

static bool list_match(const struct task *t, const struct list_filter *f)
{
	if (f->state == -2 && task_state_final(t->state))
		return false;
	if (f->state >= 0 && (int)t->state != f->state)
		return false;
	if (f->team && strcmp(t->team, f->team))
		return false;
	if (f->user && strcmp(t->user, f->user))
		return false;
	return true;
}

int req_list(struct req *q)
{
	const Hpq__ListRequest *m = q->env->list;
	struct state *st = &q->d->state;
	struct list_filter f = { NULL, NULL, -1 };
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ListReply rep = HPQ__LIST_REPLY__INIT;
	Hpq__Task *tasks = NULL, **ptrs = NULL;
	Hpq__Resources *res = NULL;
	struct queue_index *qi = NULL;
	struct rights_view view;
	size_t n = 0, cap = 0, bytes = 0;

	if (*m->team)
		f.team = m->team;
	if (*m->user)
		f.user = m->user;
	if (*m->state) {
		if (!strcasecmp(m->state, "active")) {
			f.state = -2;
		} else {
			f.state = state_task_state_parse(m->state);
			if (f.state < 0)
				return state_errf(q->e, HPQ_EINVAL, "unknown state '%.32s': use "
						  "PENDING, RUNNING, PREEMPTING, COMPLETED, "
						  "FAILED, CANCELLED, TIMEOUT or active",
						  m->state);
		}
	}

	/* The reader's rights once; then each task's private data is one check. */
	rights_view_init(&view, st, &q->c->actor, q->d->cfg.private_data);
	/* Newest first, so that a limit (or the frame size) keeps the newest. */
	for (size_t i = st->ntasks; i-- > 0;) {
		const struct task *t = st->tasks[i];
		size_t sz;

		if (!list_match(t, &f))
			continue;
		if (m->limit && n >= m->limit)
			break;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			tasks = xreallocarray(tasks, cap, sizeof(*tasks));
			res = xreallocarray(res, cap, sizeof(*res));
		}
		task_to_pb(st, t, &tasks[n], &res[n]);
		task_redact(&view, t, &tasks[n]);
		tasks[n].per_node = &res[n];
		if (t->state == TASK_PENDING) {
			if (!qi)
				qi = queue_index_new(st);
			tasks[n].queue_position = queue_index_get(qi, t->st.id);
		}
		sz = hpq__task__get_packed_size(&tasks[n]) + 8;
		if (bytes + sz > LIST_BUDGET) {
			rep.truncated = true;
			break;
		}
		bytes += sz;
		n++;
	}
	/* res may have moved while growing: point every task at its own again. */
	ptrs = n ? xcalloc(n, sizeof(*ptrs)) : NULL;
	for (size_t i = 0; i < n; i++) {
		tasks[n - 1 - i].per_node = &res[n - 1 - i];
		ptrs[i] = &tasks[n - 1 - i];
	}
	rep.n_tasks = n;
	rep.tasks = ptrs;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_LIST_REPLY;
	env.list_reply = &rep;
	server_send(q->c, &env);
	free(ptrs);
	free(tasks);
	free(res);
	queue_index_free(qi);
	rights_view_release(&view);
	return 0;
}

struct show_req {
	struct hpqd *d;
	struct conn *c;
	uint64_t id;
	uint64_t task_id;
};

static void on_history(void *arg, int status, const struct store_history *h)
{
	struct show_req *q = arg;
	struct state *st = &q->d->state;
	const struct task *t = state_task_find(st, q->task_id);
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ShowReply rep = HPQ__SHOW_REPLY__INIT;
	Hpq__Task task;
	Hpq__Resources res;
	Hpq__Checkpoint *ck = NULL, **ckp = NULL;
	Hpq__Event *ev = NULL, **evp = NULL;
	struct rights_view view;

	if (status < 0 || !t) {
		server_send_error(q->c, q->id, status < 0 ? status : HPQ_ENOTFOUND,
				  "cannot read the task's history");
		goto out;
	}
	task_to_pb(st, t, &task, &res);
	rights_view_init(&view, st, &q->c->actor, q->d->cfg.private_data);
	task_redact(&view, t, &task);
	rights_view_release(&view);
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
	server_unref(q->c);
	free(q);
}

int req_show(struct req *q)
{
	const Hpq__ShowRequest *m = q->env->show;
	struct show_req *s;

	if (!state_task_find(&q->d->state, m->id))
		return state_errf(q->e, HPQ_ENOTFOUND, "no task %llu", (unsigned long long)m->id);
	s = xcalloc(1, sizeof(*s));
	s->d = q->d;
	s->c = q->c;
	s->id = q->id;
	s->task_id = m->id;
	server_ref(s->c);
	store_read_history(q->d->store, m->id, on_history, s);
	return 0;
}

int req_cancel(struct req *q)
{
	const Hpq__CancelRequest *m = q->env->cancel;
	struct state *st = &q->d->state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__CancelReply rep = HPQ__CANCEL_REPLY__INIT;
	Hpq__CancelResult *res, **ptrs;
	struct state_err *msgs;

	if (!m->n_ids)
		return state_errf(q->e, HPQ_EINVAL, "no task to cancel");
	if (m->n_ids > MAX_CANCEL_IDS)
		return state_errf(q->e, HPQ_EINVAL, "at most %d tasks per cancel", MAX_CANCEL_IDS);
	res = xcalloc(m->n_ids, sizeof(*res));
	ptrs = xcalloc(m->n_ids, sizeof(*ptrs));
	msgs = xcalloc(m->n_ids, sizeof(*msgs));
	for (size_t i = 0; i < m->n_ids; i++) {
		struct task *t = state_task_find(st, m->ids[i]);
		int r;

		hpq__cancel_result__init(&res[i]);
		res[i].id = m->ids[i];
		ptrs[i] = &res[i];
		if (!t) {
			r = state_errf(&msgs[i], HPQ_ENOTFOUND, "no task %llu",
				       (unsigned long long)m->ids[i]);
		} else {
			r = state_task_cancel(st, t, &q->c->actor, &msgs[i]);
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
	rep.n_results = m->n_ids;
	rep.results = ptrs;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_CANCEL_REPLY;
	env.cancel_reply = &rep;
	server_reply_after_commit(q->c, &env);
	free(res);
	free(ptrs);
	free(msgs);
	return 0;
}

int req_checkpoint(struct req *q)
{
	const Hpq__CheckpointRequest *m = q->env->checkpoint;
	struct task *t = state_task_find(&q->d->state, m->task_id);

	if (!t)
		return state_errf(q->e, HPQ_ENOTFOUND, "no task %llu", (unsigned long long)m->task_id);
	return req_ok_after_commit(q, state_checkpoint_add(&q->d->state, t, m->attempt, m->step,
							   m->path, &q->c->actor, q->e));
}
