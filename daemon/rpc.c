/*
 * rpc.c: client requests (rpc.h).
 *
 * Reads answer at once from memory, except `show`, whose checkpoints and
 * events live only in the database: it queues a read behind everything
 * recorded so far and answers from the storage thread's result. Changes
 * answer after their commit: the reply is encoded when the request is
 * handled (so it says what was decided then) and written from the commit
 * completion, or replaced by an Error if the commit failed.
 *
 * Replies point into the state's own strings instead of copying them;
 * that is safe because they are encoded before this file returns to the
 * loop.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "error.h"
#include "hpq.h"
#include "hpqd.h"
#include "log.h"
#include "msg.h"
#include "queue.h"
#include "rpc.h"
#include "server.h"
#include "store.h"
#include "xalloc.h"

#define MAX_CANCEL_IDS 10000
/* Room left in a frame for the envelope around a list of tasks. */
#define LIST_BUDGET (HPQ_FRAME_MAX - 65536)

static struct state *state_of(struct conn *c)
{
	return &c->d->state;
}

/* ---------------------------------------------------------------- replies after commit */

struct pending_reply {
	struct conn *c;
	uint64_t id;
	uint8_t *frame;
	size_t len;
};

static void on_committed(void *arg, int status)
{
	struct pending_reply *p = arg;

	if (status < 0) {
		free(p->frame);
		server_send_error(p->c, p->id, HPQ_ESTORAGE,
				  "the change could not be stored: the daemon is stopping");
	} else {
		server_send_frame(p->c, p->frame, p->len);
	}
	server_unref(p->c);
	free(p);
}

static void reply_after_commit(struct conn *c, const Hpq__Envelope *env)
{
	struct pending_reply *p = xcalloc(1, sizeof(*p));

	p->c = c;
	p->id = env->id;
	p->frame = hpq_msg_encode(env, &p->len);
	server_ref(c);
	store_after_commit(c->d->store, on_committed, p);
}

void rpc_reply_after_commit(struct conn *c, const Hpq__Envelope *env)
{
	reply_after_commit(c, env);
}

void rpc_ok_after_commit(struct conn *c, uint64_t id)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Ok ok = HPQ__OK__INIT;

	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_OK;
	env.ok = &ok;
	reply_after_commit(c, &env);
}

/* The reply to a change that was applied (r >= 0): Ok once it is committed. */
static int ok_after_commit(struct conn *c, uint64_t id, int r)
{
	if (r < 0)
		return r;
	rpc_ok_after_commit(c, id);
	return 0;
}

/* ---------------------------------------------------------------- tasks */

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
	pb->grace_s = t->grace_s ? t->grace_s : st->policy.grace_s;
}

int rpc_submit(struct conn *c, uint64_t id, const Hpq__SubmitRequest *m, struct state_err *e)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__SubmitReply rep = HPQ__SUBMIT_REPLY__INIT;
	struct task *t;
	int r;

	r = state_task_submit(state_of(c), m->spec, &c->actor, &t, e);
	if (r < 0)
		return r;
	rep.id = t->st.id;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_SUBMIT_REPLY;
	env.submit_reply = &rep;
	reply_after_commit(c, &env);
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

int rpc_list(struct conn *c, uint64_t id, const Hpq__ListRequest *m, struct state_err *e)
{
	struct state *st = state_of(c);
	struct list_filter f = { NULL, NULL, -1 };
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ListReply rep = HPQ__LIST_REPLY__INIT;
	Hpq__Task *tasks = NULL, **ptrs = NULL;
	Hpq__Resources *res = NULL;
	struct queue_index *qi = NULL;
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
				return state_errf(e, HPQ_EINVAL, "unknown state '%.32s': use "
						  "PENDING, RUNNING, PREEMPTING, COMPLETED, "
						  "FAILED, CANCELLED, TIMEOUT or active",
						  m->state);
		}
	}

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
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_LIST_REPLY;
	env.list_reply = &rep;
	server_send(c, &env);
	free(ptrs);
	free(tasks);
	free(res);
	queue_index_free(qi);
	return 0;
}

struct show_req {
	struct conn *c;
	uint64_t id;
	uint64_t task_id;
};

static void on_history(void *arg, int status, const struct store_history *h)
{
	struct show_req *q = arg;
	struct state *st = &q->c->d->state;
	const struct task *t = state_task_find(st, q->task_id);
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ShowReply rep = HPQ__SHOW_REPLY__INIT;
	Hpq__Task task;
	Hpq__Resources res;
	Hpq__Checkpoint *ck = NULL, **ckp = NULL;
	Hpq__Event *ev = NULL, **evp = NULL;

	if (status < 0 || !t) {
		server_send_error(q->c, q->id, status < 0 ? status : HPQ_ENOTFOUND,
				  "cannot read the task's history");
		goto out;
	}
	task_to_pb(st, t, &task, &res);
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

int rpc_show(struct conn *c, uint64_t id, const Hpq__ShowRequest *m, struct state_err *e)
{
	struct show_req *q;

	if (!state_task_find(state_of(c), m->id))
		return state_errf(e, HPQ_ENOTFOUND, "no task %llu", (unsigned long long)m->id);
	q = xcalloc(1, sizeof(*q));
	q->c = c;
	q->id = id;
	q->task_id = m->id;
	server_ref(c);
	store_read_history(c->d->store, m->id, on_history, q);
	return 0;
}

int rpc_cancel(struct conn *c, uint64_t id, const Hpq__CancelRequest *m, struct state_err *e)
{
	struct state *st = state_of(c);
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__CancelReply rep = HPQ__CANCEL_REPLY__INIT;
	Hpq__CancelResult *res, **ptrs;
	struct state_err *msgs;

	if (!m->n_ids)
		return state_errf(e, HPQ_EINVAL, "no task to cancel");
	if (m->n_ids > MAX_CANCEL_IDS)
		return state_errf(e, HPQ_EINVAL, "at most %d tasks per cancel", MAX_CANCEL_IDS);
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
			r = state_task_cancel(st, t, &c->actor, &msgs[i]);
			if (r == 1)
				agentlink_kill_after_commit(c->d, t, t->attempts, -1, SIGTERM,
							    t->grace_s ? t->grace_s
								       : st->policy.grace_s,
							    "cancelled");
		}
		res[i].code = r < 0 ? r : 0;
		res[i].message = r < 0 ? msgs[i].msg : (char *)"";
	}
	rep.n_results = m->n_ids;
	rep.results = ptrs;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_CANCEL_REPLY;
	env.cancel_reply = &rep;
	reply_after_commit(c, &env);
	free(res);
	free(ptrs);
	free(msgs);
	return 0;
}

int rpc_checkpoint(struct conn *c, uint64_t id, const Hpq__CheckpointRequest *m,
		   struct state_err *e)
{
	struct task *t = state_task_find(state_of(c), m->task_id);

	if (!t)
		return state_errf(e, HPQ_ENOTFOUND, "no task %llu", (unsigned long long)m->task_id);
	return ok_after_commit(c, id, state_checkpoint_add(state_of(c), t, m->attempt, m->step,
							   m->path, &c->actor, e));
}

/* ---------------------------------------------------------------- nodes */

int rpc_node_list(struct conn *c, uint64_t id, const Hpq__NodeListRequest *m,
		  struct state_err *e)
{
	struct state *st = state_of(c);
	uint32_t nn = st->nnodes;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__NodeListReply rep = HPQ__NODE_LIST_REPLY__INIT;
	Hpq__Node *nodes = nn ? xcalloc(nn, sizeof(*nodes)) : NULL;
	Hpq__Node **ptrs = nn ? xcalloc(nn, sizeof(*ptrs)) : NULL;
	Hpq__Resources *res = nn ? xcalloc(2 * (size_t)nn, sizeof(*res)) : NULL;
	struct hpq_res *used = nn ? xcalloc(nn, sizeof(*used)) : NULL;
	size_t nfind = 0, k = 0;
	Hpq__Finding *finds, **fptrs;

	/* What runs where, from the running tasks (bounded by the cluster's size). */
	for (struct dlist *l = st->running.next; l != &st->running; l = l->next) {
		struct task *t = container_of(l, struct task, run_link);

		for (uint32_t r = 0; r < t->n_node_names; r++) {
			struct node *n = state_node_find(st, t->node_names[r]);

			if (!n)
				continue;
			used[n->id] = hpq_res_add(used[n->id], t->st.per_node);
			nodes[n->id].tasks = xreallocarray(nodes[n->id].tasks,
							   nodes[n->id].n_tasks + 1,
							   sizeof(uint64_t));
			nodes[n->id].tasks[nodes[n->id].n_tasks++] = t->st.id;
		}
	}
	for (uint32_t i = 0; i < nn; i++)
		nfind += st->nodes[i]->nfindings;
	finds = nfind ? xcalloc(nfind, sizeof(*finds)) : NULL;
	fptrs = nfind ? xcalloc(nfind, sizeof(*fptrs)) : NULL;
	for (uint32_t i = 0; i < nn; i++) {
		const struct node *n = st->nodes[i];
		Hpq__Node *pb = &nodes[i];
		uint64_t *tasks = pb->tasks;
		size_t ntasks = pb->n_tasks;

		hpq__node__init(pb);
		pb->tasks = tasks;
		pb->n_tasks = ntasks;
		pb->name = n->name;
		pb->pool = st->pools[n->pool]->name;
		hpq__resources__init(&res[2 * i]);
		hpq__resources__init(&res[2 * i + 1]);
		hpq_res_to_pb(n->capacity, &res[2 * i]);
		hpq_res_to_pb(used[i], &res[2 * i + 1]);
		pb->capacity = &res[2 * i];
		pb->used = &res[2 * i + 1];
		pb->health = n->health;
		pb->service = n->service;
		pb->reason = n->reason;
		pb->last_heartbeat = n->last_heartbeat_ms;
		pb->heartbeats = n->heartbeats;
		pb->connected = n->conn != NULL;
		pb->address = n->address;
		pb->software_version = n->software_version;
		pb->service_by = n->service_by;
		pb->service_since = n->service_since_ms;
		pb->repair_action = n->repair_action;
		pb->findings = fptrs ? &fptrs[k] : NULL;
		pb->n_findings = n->nfindings;
		for (size_t f = 0; f < n->nfindings; f++, k++) {
			hpq__finding__init(&finds[k]);
			finds[k].category = n->findings[f].category;
			finds[k].reason = n->findings[f].reason;
			finds[k].message = n->findings[f].message;
			finds[k].severity = n->findings[f].severity;
			finds[k].action = n->findings[f].action;
			finds[k].since = n->findings[f].since;
			fptrs[k] = &finds[k];
		}
		ptrs[i] = pb;
	}
	rep.n_nodes = nn;
	rep.nodes = ptrs;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_NODE_LIST_REPLY;
	env.node_list_reply = &rep;
	server_send(c, &env);
	for (uint32_t i = 0; i < nn; i++)
		free(nodes[i].tasks);
	free(nodes);
	free(ptrs);
	free(res);
	free(used);
	free(finds);
	free(fptrs);
	return 0;
}

/* ---------------------------------------------------------------- teams and classes */

int rpc_team_set(struct conn *c, uint64_t id, const Hpq__TeamSetRequest *m, struct state_err *e)
{
	return ok_after_commit(c, id, state_team_set(state_of(c), m, &c->actor, e));
}

int rpc_team_remove(struct conn *c, uint64_t id, const Hpq__TeamRemoveRequest *m,
		    struct state_err *e)
{
	return ok_after_commit(c, id, state_team_remove(state_of(c), m->name, &c->actor, e));
}

int rpc_team_list(struct conn *c, uint64_t id, const Hpq__TeamListRequest *m,
		  struct state_err *e)
{
	struct state *st = state_of(c);
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__TeamListReply rep = HPQ__TEAM_LIST_REPLY__INIT;
	Hpq__Team *teams = st->nteams ? xcalloc(st->nteams, sizeof(*teams)) : NULL;
	Hpq__Team **ptrs = st->nteams ? xcalloc(st->nteams, sizeof(*ptrs)) : NULL;
	Hpq__PoolQuota **qptrs = NULL;
	Hpq__PoolQuota *qs = NULL;
	Hpq__PoolUsage **uptrs = NULL;
	Hpq__PoolUsage *us = NULL;
	Hpq__Resources *res = NULL;
	size_t nq = 0, k = 0, n = 0;

	if (*m->name && !state_team_find(st, m->name)) {
		free(teams);
		free(ptrs);
		return state_errf(e, HPQ_ENOTFOUND, "unknown team '%.64s'", m->name);
	}
	for (uint32_t i = 0; i < st->nteams; i++)
		if (st->teams[i])
			nq += st->teams[i]->nquotas;
	if (nq) {
		qs = xcalloc(nq, sizeof(*qs));
		qptrs = xcalloc(nq, sizeof(*qptrs));
		us = xcalloc(nq, sizeof(*us));
		uptrs = xcalloc(nq, sizeof(*uptrs));
		res = xcalloc(6 * nq, sizeof(*res));
	}
	for (uint32_t i = 0; i < st->nteams; i++) {
		const struct team *t = st->teams[i];
		Hpq__Team *pb = &teams[n];

		if (!t || (*m->name && strcmp(m->name, t->name)))
			continue;
		hpq__team__init(pb);
		pb->name = t->name;
		pb->weight = t->weight;
		pb->preempt_own = (char *)(t->preempt_own_lower ? "lower-priority" : "never");
		pb->n_members = t->nmembers;
		pb->members = t->members;
		pb->default_class = t->default_class;
		pb->n_quotas = t->nquotas;
		pb->quotas = t->nquotas ? &qptrs[k] : NULL;
		pb->n_usage = t->nquotas;
		pb->usage = t->nquotas ? &uptrs[k] : NULL;
		for (size_t j = 0; j < t->nquotas; j++, k++) {
			const struct sched_quota *q = &t->quotas[j].q;
			Hpq__PoolQuota *pq = &qs[k];
			Hpq__PoolUsage *pu = &us[k];
			struct sched_usage u;

			/* What the dispatcher counts for it there now. */
			hpq__pool_usage__init(pu);
			pu->pool = st->pools[t->quotas[j].pool]->name;
			if (sched_team_usage(st->sched, t->id, t->quotas[j].pool, &u) < 0)
				memset(&u, 0, sizeof(u));
			for (int r = 3; r < 6; r++)
				hpq__resources__init(&res[6 * k + r]);
			hpq_res_to_pb(u.used, &res[6 * k + 3]);
			hpq_res_to_pb(u.borrowed, &res[6 * k + 4]);
			hpq_res_to_pb(u.lent, &res[6 * k + 5]);
			pu->used = &res[6 * k + 3];
			pu->borrowed = &res[6 * k + 4];
			pu->lent = &res[6 * k + 5];
			pu->running = u.running;
			pu->pending = u.pending;
			uptrs[k] = pu;

			hpq__pool_quota__init(pq);
			pq->pool = st->pools[t->quotas[j].pool]->name;
			for (int r = 0; r < 3; r++)
				hpq__resources__init(&res[6 * k + r]);
			hpq_res_to_pb(q->guarantee, &res[6 * k]);
			pq->guarantee = &res[6 * k];
			pq->sharing = (char *)state_sharing_name(q->sharing);
			pq->borrow_limit_pct = q->borrow_limit_pct;
			pq->has_borrow_limit_abs = q->has_borrow_abs;
			if (q->has_borrow_abs) {
				hpq_res_to_pb(q->borrow_abs, &res[6 * k + 1]);
				pq->borrow_limit_abs = &res[6 * k + 1];
			}
			pq->has_lend_limit = q->has_lend_limit;
			if (q->has_lend_limit) {
				hpq_res_to_pb(q->lend_limit, &res[6 * k + 2]);
				pq->lend_limit = &res[6 * k + 2];
			}
			qptrs[k] = pq;
		}
		ptrs[n++] = pb;
	}
	rep.n_teams = n;
	rep.teams = ptrs;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_TEAM_LIST_REPLY;
	env.team_list_reply = &rep;
	server_send(c, &env);
	free(teams);
	free(ptrs);
	free(qs);
	free(qptrs);
	free(us);
	free(uptrs);
	free(res);
	return 0;
}

int rpc_class_set(struct conn *c, uint64_t id, const Hpq__ClassSetRequest *m,
		  struct state_err *e)
{
	return ok_after_commit(c, id, state_class_set(state_of(c), m, &c->actor, e));
}

int rpc_class_remove(struct conn *c, uint64_t id, const Hpq__ClassRemoveRequest *m,
		     struct state_err *e)
{
	return ok_after_commit(c, id, state_class_remove(state_of(c), m->name, &c->actor, e));
}

int rpc_class_list(struct conn *c, uint64_t id, const Hpq__ClassListRequest *m,
		   struct state_err *e)
{
	struct state *st = state_of(c);
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ClassListReply rep = HPQ__CLASS_LIST_REPLY__INIT;
	Hpq__PriorityClass *cls = st->nclasses ? xcalloc(st->nclasses, sizeof(*cls)) : NULL;
	Hpq__PriorityClass **ptrs = st->nclasses ? xcalloc(st->nclasses, sizeof(*ptrs)) : NULL;
	size_t n = 0;

	for (uint32_t i = 0; i < st->nclasses; i++) {
		const struct prio_class *pc = st->classes[i];

		if (!pc)
			continue;
		hpq__priority_class__init(&cls[n]);
		cls[n].name = pc->name;
		cls[n].weight = pc->weight;
		cls[n].preemptible = pc->preemptible;
		ptrs[n] = &cls[n];
		n++;
	}
	rep.n_classes = n;
	rep.classes = ptrs;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_CLASS_LIST_REPLY;
	env.class_list_reply = &rep;
	server_send(c, &env);
	free(cls);
	free(ptrs);
	return 0;
}
