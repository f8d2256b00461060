/*
 * control.c: hold, release, and cancel, hold or release over a selection
 * (control.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "clock.h"
#include "control.h"
#include "depend.h"
#include "error.h"
#include "rights.h"
#include "state-internal.h"
#include "xalloc.h"

/*
 * A held task that waits for nothing else: no dependency, not an index of
 * an array, not bound to a plan. Its release only puts it back into the
 * dispatcher, and its row changes only in held and reason.
 */
static bool plain_held(const struct task *t)
{
	return t->state == TASK_PENDING && t->held && !t->array_id &&
	       (!t->dependency || !*t->dependency) && (!t->plan || !*t->plan);
}

/*
 * A plain held task's release in a batch (a release of many at once):
 * what depend_offer and state_task_hold do for it, with its row and its
 * release event recorded as the store's bulk change. Returns false, having
 * changed nothing, when the dispatcher would refuse it: the caller
 * releases it the usual way, which ends it.
 */
static bool release_in_batch(struct state *st, struct task *t, const struct actor *who,
			     const struct cancel_batch *b)
{
	char msg[160];

	t->held = false;
	if (sched_task_submit(st->sched, &t->st) < 0) {
		t->held = true;
		return false;
	}
	str_set(&t->reason, "");
	snprintf(msg, sizeof(msg), "released by %s", who->user);
	state_task_bulk(st, t, &(struct store_bulk){
		.change = STORE_BULK_RELEASE,
		.reason = t->reason,
		.time_ms = b->now_ms,
		.kind = "release",
		.actor = who->user,
		.message = msg,
	});
	mark_dirty(st);
	return true;
}

static int hold_in(struct state *st, struct task *t, bool release, const struct actor *who,
		   const struct cancel_batch *b, struct state_err *e)
{
	struct array *a = array_find(st, t->array_id);

	if (!rights_task_manage(st, t, who))
		return rights_task_refuse(t, release ? "release it" : "hold it", e);
	if (t->state != TASK_PENDING)
		return state_errf(e, HPQ_ESTATE, "task %llu is %s, not pending",
				  (unsigned long long)t->st.id, state_task_state(t->state));
	if (!release) {
		if (t->held)
			return 0;
		task_leaving(st, t);
		if (t->st.state != SCHED_NONE)
			sched_task_finish(st->sched, &t->st, hpq_now_ms());
		t->held = true;
		str_set(&t->reason, "held");
		task_save(st, t);
		state_event(st, "hold", t, NULL, who->user, "held by %s", who->user);
		mark_dirty(st);
		/* The array goes on with its next index. */
		if (a)
			array_refill(st, a);
		return 0;
	}
	if (!t->held)
		return state_errf(e, HPQ_ESTATE, "task %llu is not held",
				  (unsigned long long)t->st.id);
	if (b && b->on && plain_held(t) && release_in_batch(st, t, who, b))
		return 0;
	t->held = false;
	str_set(&t->reason, "");
	depend_offer(st, t);
	task_save(st, t);
	state_event(st, "release", t, NULL, who->user, "released by %s", who->user);
	mark_dirty(st);
	return 0;
}

int state_task_hold(struct state *st, struct task *t, bool release, const struct actor *who,
		    struct state_err *e)
{
	return hold_in(st, t, release, who, NULL, e);
}

/* The whole pending rest of an array. */
static int rest_apply(struct state *st, struct array *a, enum control_op op,
		      const struct actor *who, struct state_err *e)
{
	unsigned long long n = array_set_count(&a->pending);

	switch (op) {
	case CONTROL_CANCEL:
		array_drop_pending(st, a);
		state_event(st, "cancel", a->tmpl, NULL, who->user,
			    "%llu pending indices of array %llu cancelled", n,
			    (unsigned long long)a->id);
		return 0;
	case CONTROL_HOLD:
		if (a->held)
			return 0;
		array_set_held(st, a, true);
		state_event(st, "hold", a->tmpl, NULL, who->user,
			    "%llu pending indices of array %llu held by %s", n,
			    (unsigned long long)a->id, who->user);
		return 0;
	case CONTROL_RELEASE:
		if (!a->held)
			return state_errf(e, HPQ_ESTATE, "array %llu is not held",
					  (unsigned long long)a->id);
		array_set_held(st, a, false);
		state_event(st, "release", a->tmpl, NULL, who->user,
			    "%llu pending indices of array %llu released by %s", n,
			    (unsigned long long)a->id, who->user);
		array_refill(st, a);
		mark_dirty(st);
		return 0;
	case CONTROL_REQUEUE:        /* refused by control_apply: nothing here runs */
		break;
	}
	return HPQ_EINVAL;
}

/* One index that is not materialized yet. */
static int index_apply(struct state *st, struct sel_item *it, enum control_op op,
		       const struct actor *who, struct state_err *e)
{
	struct array *a = it->a;
	struct task *t;

	if (op == CONTROL_RELEASE && !a->held)
		return state_errf(e, HPQ_ESTATE, "%llu_%u is not held",
				  (unsigned long long)a->id, it->index);
	t = array_materialize(st, a, it->index);
	if (!t)
		return state_errf(e, HPQ_ESTATE, "%llu_%u is no longer pending",
				  (unsigned long long)a->id, it->index);
	it->t = t;
	it->id = t->st.id;
	switch (op) {
	case CONTROL_CANCEL:
		return state_task_cancel(st, t, who, e);
	case CONTROL_HOLD:
		return state_task_hold(st, t, false, who, e);
	case CONTROL_RELEASE:
		/* Out of its held array, on its own. */
		depend_offer(st, t);
		state_event(st, "release", t, NULL, who->user, "released by %s", who->user);
		mark_dirty(st);
		return 0;
	case CONTROL_REQUEUE:        /* refused by control_apply: nothing here runs */
		break;
	}
	return HPQ_EINVAL;
}

/*
 * The task index idx of a has become since the selection was resolved, or
 * NULL. An earlier item's end of the array's head (a cancel) makes the
 * next pending index the new head: the newest task, looked for from the
 * newest down.
 */
static struct task *index_made_task(const struct state *st, const struct array *a, uint32_t idx)
{
	if (array_set_has(&a->pending, idx))
		return NULL;
	for (size_t i = st->ntasks; i-- > 0 && st->tasks[i]->st.id > a->id;) {
		struct task *t = st->tasks[i];

		if (t->array_id == a->id && t->array_index == idx)
			return t;
	}
	return NULL;
}

static const char *const control_what[] = {
	[CONTROL_CANCEL] = "cancel it",
	[CONTROL_HOLD] = "hold it",
	[CONTROL_RELEASE] = "release it",
	[CONTROL_REQUEUE] = "requeue it",
};
static const char *const control_verb[] = {
	[CONTROL_CANCEL] = "cancel",
	[CONTROL_HOLD] = "hold",
	[CONTROL_RELEASE] = "release",
	[CONTROL_REQUEUE] = "requeue",
};

/* One pass of control_apply over the items of sel, and what it leaves to
 * the next. */
struct apply {
	struct state *st;
	struct selection *sel;
	enum control_op op;
	const struct actor *who;
	void (*kill)(void *arg, struct task *t);
	void *arg;
	struct cancel_batch batch;
	size_t denied;               /* refusals for rights so far */
	/* The run of one array's pending indices being dropped: one record,
	 * one event and one result (the first item's) for all of them. */
	struct array *run;
	struct sel_item *run_first;
	uint32_t run_n;
};

static void run_end(struct apply *x)
{
	struct array *a = x->run;

	if (!a)
		return;
	array_drop_done(x->st, a, x->run_n);
	state_event(x->st, "cancel", a->tmpl, NULL, x->who->user,
		    "%u pending indices of array %llu cancelled by %s", x->run_n,
		    (unsigned long long)a->id, x->who->user);
	x->run_first->tasks = x->run_n;
	x->run = NULL;
}

/*
 * A cancel of index it->index of it->a, which is not a task: dropped as
 * a whole array's rest is, without a task made for it only to end. A
 * range of 100,000 such indices once made 100,000 tasks, rows and events,
 * one at a time (2 s). Returns 0, or 1 when the item is answered for by
 * its run's first, or a negative code.
 */
static int index_drop(struct apply *x, struct sel_item *it, struct state_err *e)
{
	if (!array_drop_index(it->a, it->index))
		return state_errf(e, HPQ_ESTATE, "%llu_%u is no longer pending",
				  (unsigned long long)it->a->id, it->index);
	if (x->run == it->a) {
		x->run_n++;
		return 1;
	}
	run_end(x);
	x->run = it->a;
	x->run_first = it;
	x->run_n = 1;
	return 0;
}

/* The item's outcome for an array's pending indices (SEL_INDEX,
 * SEL_ARRAY_REST): 1 as index_drop. */
static int pending_apply(struct apply *x, struct sel_item *it, struct state_err *e)
{
	struct array *a = it->a;

	/* Every pending index became a task since: none is left. */
	if (!a->tmpl)
		return state_errf(e, HPQ_ESTATE, "array %llu has no pending index left",
				  (unsigned long long)a->id);
	if (!rights_task_manage(x->st, a->tmpl, x->who))
		return rights_task_refuse(a->tmpl, control_what[x->op], e);
	/* What an array has not materialized is pending, never running. */
	if (x->op == CONTROL_REQUEUE)
		return state_errf(e, HPQ_ESTATE, "array %llu's pending indices are not running",
				  (unsigned long long)a->id);
	if (it->kind == SEL_INDEX)
		return x->op == CONTROL_CANCEL ? index_drop(x, it, e)
					       : index_apply(x->st, it, x->op, x->who, e);
	it->tasks = (uint32_t)array_set_count(&a->pending);
	return rest_apply(x->st, a, x->op, x->who, e);
}

static void apply_item(struct apply *x, struct sel_item *it)
{
	struct state *st = x->st;
	struct state_err e = { "" };
	const struct task *subject;
	struct task *made;
	int r = 0;

	/* Acted on as the task it is now, as if it had been named. */
	if (it->kind == SEL_INDEX && (made = index_made_task(st, it->a, it->index))) {
		it->kind = SEL_TASK;
		it->t = made;
		it->id = made->st.id;
	}
	subject = it->t ? it->t : it->a ? it->a->tmpl : NULL;

	switch (it->kind) {
	case SEL_MISSING:
		return;
	case SEL_TASK:
		if (x->op == CONTROL_CANCEL || x->op == CONTROL_REQUEUE) {
			r = x->op == CONTROL_CANCEL
				    ? state_task_cancel_in(st, it->t, x->who, &x->batch, &e)
				    : state_task_requeue_request(st, it->t, x->who, &e);
			if (r == 1 && x->kill)
				x->kill(x->arg, it->t);
		} else {
			r = hold_in(st, it->t, x->op == CONTROL_RELEASE, x->who, &x->batch, &e);
		}
		break;
	case SEL_INDEX:
	case SEL_ARRAY_REST:
		r = pending_apply(x, it, &e);
		if (r == 1) {
			it->folded = true; /* its run's first answers for it */
			return;
		}
		break;
	}
	free(it->msg);
	it->msg = NULL;
	it->code = r < 0 ? r : 0;
	if (r == HPQ_EPERM && x->denied++ >= CONTROL_DENIED_MAX) {
		it->folded = true;
		x->sel->folded++;
		return;
	}
	if (r == HPQ_EPERM && subject)
		rights_denied(st, x->who, subject, e.msg);
	if (r < 0)
		it->msg = xstrdup(e.msg);
}

/* Cancels of indices that are not tasks go first, as whole arrays' rests
 * do (select.h): a cancel of their array's head before them would make
 * the next of them a task. */
static bool goes_first(const struct apply *x, const struct sel_item *it)
{
	return x->op == CONTROL_CANCEL && it->kind == SEL_INDEX;
}

void control_apply(struct state *st, struct selection *sel, enum control_op op,
		   const struct actor *who, void (*kill)(void *arg, struct task *t), void *arg)
{
	struct apply x = { .st = st, .sel = sel, .op = op, .who = who, .kill = kill, .arg = arg };
	size_t pending = 0;
	char *msg;

	/* Many pending tasks cancelled, or many plain held ones released: one
	 * batch (task.h), and one bulk change in the store. */
	for (size_t i = 0; i < sel->n; i++) {
		const struct sel_item *it = &sel->v[i];

		if (it->kind != SEL_TASK)
			continue;
		if (op == CONTROL_CANCEL)
			pending += it->t->state == TASK_PENDING;
		else if (op == CONTROL_RELEASE)
			pending += plain_held(it->t);
	}
	x.batch.on = pending >= CANCEL_BATCH_MIN;
	x.batch.now_ms = hpq_now_ms();
	for (size_t i = 0; i < sel->n; i++)
		if (goes_first(&x, &sel->v[i]))
			apply_item(&x, &sel->v[i]);
	run_end(&x);
	for (size_t i = 0; i < sel->n; i++)
		if (!goes_first(&x, &sel->v[i]))
			apply_item(&x, &sel->v[i]);
	state_cancel_batch_end(st, &x.batch, who);
	if (!sel->folded)
		return;
	xasprintf(&sel->folded_msg, "only their owners, admins of their teams and cluster "
		  "administrators may %s them", control_verb[op]);
	xasprintf(&msg, "%s by %s refused for %zu more tasks: %s", control_verb[op], who->user,
		  sel->folded, sel->folded_msg);
	rights_denied_many(st, who, (uint32_t)sel->folded, msg);
	free(msg);
}
