/*
 * req-control.c: job control over a selection (select.h, control.h):
 * hpq hold and hpq release (HoldRequest), hpq requeue (RequeueRequest),
 * and hpq cancel with a
 * TaskSelector (CancelRequest.select: ids as text, whole arrays, indices
 * and filters). The reply gives each item's outcome and waits for the
 * commit of the whole batch: one transaction however many tasks it
 * touches. Refusals for rights past CONTROL_DENIED_MAX are one summary
 * result at the end (id 0, tasks: how many), so that a filter over other
 * users' tasks gets a reply of bounded size; to a client that asks for a
 * stream, the results of a selection of any size come in as many frames
 * as they need.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "agentlink.h"
#include "context.h"
#include "control.h"
#include "error.h"
#include "hpq.h"
#include "msg.h"
#include "request.h"
#include "select.h"
#include "server.h"
#include "xalloc.h"

struct stop_ctx {
	struct hpqd *d;
	enum control_op op;
};

/* A running task's stop reaches its agent after the commit: a cancel with
 * SIGTERM, a requeue with the task's own preemption signal, so that it can
 * checkpoint as it would for a preemption. */
static void kill_one(void *arg, struct task *t)
{
	struct stop_ctx *x = arg;
	bool requeue = x->op == CONTROL_REQUEUE;

	agentlink_kill_after_commit(x->d, t, t->attempts, -1, requeue ? 0 : SIGTERM,
				    state_task_stop_grace(&x->d->state, t),
				    requeue ? "requeued" : "cancelled");
}

/* The bytes a frame's results may take: the rest of HPQ_FRAME_MAX is
 * more than the envelope around them needs. */
#define CONTROL_BUDGET (HPQ_FRAME_MAX - 65536)

/* The items' outcomes, in the selection's order, then the summary of the
 * folded refusals (id 0, tasks: how many): returns how many results. */
static size_t results(const struct selection *sel, Hpq__CancelResult **ret_res,
		      Hpq__CancelResult ***ret_ptrs)
{
	size_t n = sel->folded ? 1 : 0, k = 0;
	Hpq__CancelResult *res, **ptrs;

	for (size_t i = 0; i < sel->n; i++)
		n += !sel->v[i].folded;
	res = n ? xcalloc(n, sizeof(*res)) : NULL;
	ptrs = n ? xcalloc(n, sizeof(*ptrs)) : NULL;
	for (size_t i = 0; i < sel->n; i++) {
		if (sel->v[i].folded)
			continue;
		hpq__cancel_result__init(&res[k]);
		res[k].id = sel->v[i].id;
		res[k].code = sel->v[i].code;
		res[k].message = sel->v[i].msg ? sel->v[i].msg : (char *)"";
		/* An array's pending indices say how many they are, also one:
		 * else the result reads as the array's first task's. */
		res[k].tasks = sel->v[i].tasks;
		ptrs[k] = &res[k];
		k++;
	}
	if (sel->folded) {
		hpq__cancel_result__init(&res[k]);
		res[k].code = HPQ_EPERM;
		res[k].message = sel->folded_msg;
		res[k].tasks = (uint32_t)sel->folded;
		ptrs[k] = &res[k];
	}
	*ret_res = res;
	*ret_ptrs = ptrs;
	return n;
}

/*
 * The results as the reply, once the change is committed: in frames of
 * at most CONTROL_BUDGET bytes of results for a client that streams,
 * else in one. A filter may match a million tasks, whose results
 * (about 6 bytes each) a frame cannot hold.
 */
static void reply(struct req *q, enum control_op op, Hpq__CancelResult **ptrs, size_t n,
		  bool stream)
{
	uint8_t **frames = NULL;
	size_t *lens = NULL, nframes = 0, i = 0;

	do {
		Hpq__Envelope env = HPQ__ENVELOPE__INIT;
		Hpq__CancelReply crep = HPQ__CANCEL_REPLY__INIT;
		Hpq__ControlReply rep = HPQ__CONTROL_REPLY__INIT;
		size_t first = i, bytes = 0;

		for (; i < n; i++) {
			/* The result, its field's tag and its length. */
			size_t b = hpq__cancel_result__get_packed_size(ptrs[i]) + 6;

			if (stream && i > first && bytes + b > CONTROL_BUDGET)
				break;
			bytes += b;
		}
		env.id = q->id;
		if (op == CONTROL_CANCEL) {
			crep.n_results = i - first;
			crep.results = ptrs + first;
			crep.more = i < n;
			env.body_case = HPQ__ENVELOPE__BODY_CANCEL_REPLY;
			env.cancel_reply = &crep;
		} else {
			rep.n_results = i - first;
			rep.results = ptrs + first;
			rep.more = i < n;
			env.body_case = HPQ__ENVELOPE__BODY_CONTROL_REPLY;
			env.control_reply = &rep;
		}
		frames = xreallocarray(frames, nframes + 1, sizeof(*frames));
		lens = xreallocarray(lens, nframes + 1, sizeof(*lens));
		frames[nframes] = hpq_msg_encode(&env, &lens[nframes]);
		nframes++;
	} while (i < n);
	server_frames_after_commit(q->c, q->id, frames, lens, nframes);
	free(frames);
	free(lens);
}

static int control(struct req *q, const Hpq__TaskSelector *select, bool stream,
		   enum control_op op)
{
	struct state *st = &q->d->state;
	Hpq__CancelResult *res, **ptrs;
	struct selection sel;
	size_t n;
	struct stop_ctx x = { q->d, op };
	int r = select_resolve(st, select, &sel, q->e);

	if (r < 0)
		return r;
	if (!sel.n) {
		select_release(&sel);
		return state_errf(q->e, HPQ_ENOTFOUND, "no task matches");
	}
	control_apply(st, &sel, op, &q->c->actor, kill_one, &x);
	n = results(&sel, &res, &ptrs);
	reply(q, op, ptrs, n, stream);
	free(res);
	free(ptrs);
	select_release(&sel);
	return 0;
}

int req_hold(struct req *q)
{
	const Hpq__HoldRequest *m = q->env->hold;

	return control(q, m->select, m->stream, m->release ? CONTROL_RELEASE : CONTROL_HOLD);
}

int req_requeue(struct req *q)
{
	const Hpq__RequeueRequest *m = q->env->requeue;

	return control(q, m->select, m->stream, CONTROL_REQUEUE);
}

int req_cancel_select(struct req *q)
{
	const Hpq__CancelRequest *m = q->env->cancel;

	return control(q, m->select, m->stream, CONTROL_CANCEL);
}

/* A cancel by plain ids (CancelRequest.ids, as hpq cancel 12 sends it)
 * of which one is an array's: that id means every task of the array, as
 * in a selector, which cancels the array's pending rest first. */
int req_cancel_ids_select(struct req *q)
{
	const Hpq__CancelRequest *m = q->env->cancel;
	Hpq__TaskSelector sel = HPQ__TASK_SELECTOR__INIT;
	char **ids = xcalloc(m->n_ids, sizeof(*ids));
	char (*buf)[24] = xcalloc(m->n_ids, sizeof(*buf));
	int r;

	for (size_t i = 0; i < m->n_ids; i++) {
		snprintf(buf[i], sizeof(buf[i]), "%llu", (unsigned long long)m->ids[i]);
		ids[i] = buf[i];
	}
	sel.n_ids = m->n_ids;
	sel.ids = ids;
	r = control(q, &sel, m->stream, CONTROL_CANCEL);
	free(ids);
	free(buf);
	return r;
}
