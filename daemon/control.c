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

void control_apply(struct state *st, struct selection *sel, enum control_op op,
		   const struct actor *who, void (*kill)(void *arg, struct task *t), void *arg)
{
	static const char *const what[] = {
		[CONTROL_CANCEL] = "cancel it",
		[CONTROL_HOLD] = "hold it",
		[CONTROL_RELEASE] = "release it",
		[CONTROL_REQUEUE] = "requeue it",
	};
	static const char *const verb[] = {
		[CONTROL_CANCEL] = "cancel",
		[CONTROL_HOLD] = "hold",
		[CONTROL_RELEASE] = "release",
		[CONTROL_REQUEUE] = "requeue",
	};

	struct cancel_batch batch = { 0 };
	size_t pending = 0, denied = 0;
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
	batch.on = pending >= CANCEL_BATCH_MIN;
	batch.now_ms = hpq_now_ms();
	for (size_t i = 0; i < sel->n; i++) {
		struct sel_item *it = &sel->v[i];
		struct state_err e = { { 0 } };
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
			continue;
		case SEL_TASK:
			if (op == CONTROL_CANCEL || op == CONTROL_REQUEUE) {
				r = op == CONTROL_CANCEL
					    ? state_task_cancel_in(st, it->t, who, &batch, &e)
					    : state_task_requeue_request(st, it->t, who, &e);
				if (r == 1 && kill)
					kill(arg, it->t);
			} else {
				r = hold_in(st, it->t, op == CONTROL_RELEASE, who, &batch, &e);
			}
			break;
		case SEL_INDEX:
		case SEL_ARRAY_REST:
			/* Every pending index became a task since: none is left. */
			if (!it->a->tmpl) {
				r = state_errf(&e, HPQ_ESTATE, "array %llu has no pending index left",
					       (unsigned long long)it->a->id);
				break;
			}
			if (!rights_task_manage(st, it->a->tmpl, who)) {
				r = rights_task_refuse(it->a->tmpl, what[op], &e);
				break;
			}
			/* What an array has not materialized is pending, never running. */
			if (op == CONTROL_REQUEUE) {
				r = state_errf(&e, HPQ_ESTATE, "array %llu's pending indices are not "
					       "running", (unsigned long long)it->a->id);
				break;
			}
			r = it->kind == SEL_INDEX ? index_apply(st, it, op, who, &e)
						  : rest_apply(st, it->a, op, who, &e);
			break;
		}
		free(it->msg);
		it->msg = NULL;
		it->code = r < 0 ? r : 0;
		if (r == HPQ_EPERM && denied++ >= CONTROL_DENIED_MAX) {
			it->folded = true;
			sel->folded++;
			continue;
		}
		if (r == HPQ_EPERM && subject)
			rights_denied(st, who, subject, e.msg);
		if (r < 0)
			it->msg = xstrdup(e.msg);
	}
	state_cancel_batch_end(st, &batch, who);
	if (!sel->folded)
		return;
	xasprintf(&sel->folded_msg, "only their owners, admins of their teams and cluster "
		  "administrators may %s them", verb[op]);
	xasprintf(&msg, "%s by %s refused for %zu more tasks: %s", verb[op], who->user,
		  sel->folded, sel->folded_msg);
	rights_denied_many(st, who, (uint32_t)sel->folded, msg);
	free(msg);
}
