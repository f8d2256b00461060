/*
 * dispatch.c: the end-of-iteration tick (dispatch.h).
 *
 * A START is recorded (attempt + 1, RUNNING, nodes) in the same batch as
 * everything else of this iteration and RunTask goes out from that batch's
 * commit completion: the database learns of a run before any agent does,
 * so a crash can leave a recorded run that never started (reconciliation
 * requeues it) but never a run the database does not know. A PREEMPT is
 * recorded the same way and its KillTask carries the task's own preempt
 * signal and grace. A plan's running tasks are stopped the same way at
 * its segment's end warning.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "agentlink.h"
#include "autoscale.h"
#include "context.h"
#include "dispatch.h"
#include "log.h"
#include "plan.h"
#include "store.h"
#include "xalloc.h"

struct dispatch {
	uv_prepare_t tick;           /* end of every loop iteration: dispatch, then commit */
	uv_timer_t wakeup;           /* when the dispatcher asked to look again */
	void (*on_cycle)(void *arg, uint64_t ns, size_t decisions);
	void *on_cycle_arg;
	unsigned closing;            /* handles whose close has not completed */
};

static void apply(struct hpqd *d, const struct sched_decision *dec)
{
	struct state *st = &d->state;
	struct task *t = state_task_of(dec->task);

	switch (dec->action) {
	case SCHED_START:
		state_task_start(st, t);
		agentlink_run_after_commit(d, t);
		break;
	case SCHED_PREEMPT:
		state_task_preempt(st, t,
				   dec->beneficiary ? state_task_of(dec->beneficiary) : NULL,
				   dec->cause);
		agentlink_kill_after_commit(d, t, t->attempts, -1, t->preempt_signal,
					    state_task_stop_grace(st, t), "preempted");
		break;
	default:
		hpq_fatal("the dispatcher returned an unknown action %d", (int)dec->action);
	}
}

/* A plan's segment nears its end ([plans] end_warning): its running
 * tasks get their preemption signal and grace, and requeue with their
 * checkpoints to wait for the next segment; before a segment starts, the
 * other work on its nodes is stopped the same way (plan.h). */
static void stop_plan_task(void *arg, struct task *t)
{
	struct hpqd *d = arg;
	struct state *st = &d->state;

	state_task_preempt(st, t, NULL, SCHED_CAUSE_NONE);
	agentlink_kill_after_commit(d, t, t->attempts, -1, t->preempt_signal,
				    state_task_stop_grace(st, t), "preempted");
	log_info("task %llu stopped to its checkpoint for a plan's segment",
		 (unsigned long long)t->st.id);
}

static void on_wakeup(uv_timer_t *h)
{
	struct hpqd *d = h->data;

	d->state.dirty = true;   /* the tick that follows runs the cycle */
}

/* A decision that only time can unlock (min-runtime), or a plan's next
 * change of state (plans_advance's answer): look again then. */
static void arm_wakeup(struct hpqd *d, int64_t now, int64_t plans_at)
{
	int64_t at = sched_next_wakeup(d->state.sched);
	uv_timer_t *wakeup = &d->dispatch->wakeup;

	if (plans_at < at)
		at = plans_at;
	uv_timer_stop(wakeup);
	if (at == INT64_MAX)
		return;
	/* Never sooner than 10 ms: a wakeup in the past must not spin the loop. */
	uv_timer_start(wakeup, on_wakeup, at > now + 10 ? (uint64_t)(at - now) : 10, 0);
}

void dispatch_run(struct hpqd *d)
{
	struct state *st = &d->state;

	/* A START or PREEMPT is a change: none while the store is degraded
	 * (store.h); dirty stays set, so the cycle runs once it is writable. */
	if (st->dirty && !d->stopping && !store_degraded(d->store)) {
		const struct sched_decision *decs;
		struct sched_decision *copy;
		int64_t now = hpq_now_ms();
		size_t n;

		uint64_t t0 = uv_hrtime();
		int64_t plans_at;

		/* plans first: a segment that begins or ends is a change */
		plans_at = plans_advance(st, now);
		plans_each_to_stop(st, now, stop_plan_task, d);
		if (plans_next_wakeup(st, now) < plans_at)
			plans_at = plans_next_wakeup(st, now);
		st->dirty = false;
		d->cycles++;
		decs = sched_cycle(st->sched, now, &n);
		if (n) {
			/* The array is the dispatcher's; applying may call into it. */
			copy = xreallocarray(NULL, n, sizeof(*copy));
			memcpy(copy, decs, n * sizeof(*copy));
			for (size_t i = 0; i < n; i++)
				apply(d, &copy[i]);
			free(copy);
			log_debug("dispatch: %zu decisions", n);
		}
		/* The autoscaler looks at what the cycle could not place. */
		autoscale_cycle(d, now);
		if (d->dispatch->on_cycle)
			d->dispatch->on_cycle(d->dispatch->on_cycle_arg, uv_hrtime() - t0, n);
		arm_wakeup(d, now, plans_at);
	}
	store_submit(d->store);
}

static void on_tick(uv_prepare_t *h)
{
	dispatch_run(h->data);
}

int dispatch_init(struct hpqd *d)
{
	struct dispatch *dp = xcalloc(1, sizeof(*dp));
	int r = uv_prepare_init(d->loop, &dp->tick);

	if (r == 0)
		r = uv_timer_init(d->loop, &dp->wakeup);
	if (r < 0) {
		free(dp);
		return r;
	}
	dp->tick.data = dp->wakeup.data = d;
	d->dispatch = dp;
	return uv_prepare_start(&dp->tick, on_tick);
}

void dispatch_on_cycle(struct hpqd *d, void (*fn)(void *arg, uint64_t ns, size_t decisions),
		       void *arg)
{
	d->dispatch->on_cycle = fn;
	d->dispatch->on_cycle_arg = arg;
}

static void on_closed(uv_handle_t *h)
{
	struct dispatch *dp = h->data;

	/* libuv runs close callbacks in no promised order: free after both. */
	if (--dp->closing == 0)
		free(dp);
}

void dispatch_close(struct hpqd *d)
{
	struct dispatch *dp = d->dispatch;

	if (!dp)
		return;
	d->dispatch = NULL;
	dp->tick.data = dp->wakeup.data = dp;
	dp->closing = 2;
	uv_close((uv_handle_t *)&dp->wakeup, on_closed);
	uv_close((uv_handle_t *)&dp->tick, on_closed);
}
