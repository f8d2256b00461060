/*
 * retention.c: ended tasks leave memory and, later, the database
 * (retention.h).
 *
 * Memory: a task that ended more than keep_finished ago is taken out of
 * the state's vector by state_tasks_evict, in batches, once a second. The
 * sweep waits for the commit of the batch open when it was decided, so
 * that every end it counts is on disk before the task leaves memory
 * (hpq show then reads it there).
 *
 * Database: with retain set, a batch of at most RETENTION_PRUNE_ROWS of
 * the oldest ended tasks is deleted on the storage thread, one batch per
 * second while there is more, so that no commit is held up for long.
 */
#include <stdlib.h>

#include "clock.h"
#include "context.h"
#include "error.h"
#include "log.h"
#include "retention.h"
#include "store.h"
#include "xalloc.h"

#define TICK_MS 1000
#define PRUNE_IDLE_MS (60 * 1000)

struct retention {
	struct hpqd *d;
	uv_timer_t timer;
	bool sweeping;               /* a sweep waits for its commit */
	bool pruning;                /* a prune batch is on the storage thread */
	uint64_t next_prune;         /* uv_now from which the next batch may go */
	uint64_t pruned;             /* rows deleted since the last log line */
};

struct sweep {
	struct hpqd *d;
	int64_t before_ms;
};

static void on_sweep_committed(void *arg, int status)
{
	struct sweep *sw = arg;
	struct hpqd *d = sw->d;
	size_t n;

	if (d->retention) {
		d->retention->sweeping = false;
		if (status == 0) {
			n = state_tasks_evict(&d->state, sw->before_ms, RETENTION_EVICT_MAX);
			if (n)
				log_debug("%zu ended tasks left memory", n);
		}
	}
	free(sw);
}

static void on_pruned(void *arg, int status, const struct store_prune *p)
{
	struct hpqd *d = arg;
	struct retention *r = d->retention;

	if (!r)
		return;
	r->pruning = false;
	if (status < 0 || p->error) {
		log_warn("cannot delete old tasks from the database: %s; will try again",
			 p && p->error ? p->error : "storage error");
		r->next_prune = uv_now(d->loop) + PRUNE_IDLE_MS;
		return;
	}
	r->pruned += (uint64_t)p->deleted;
	if (p->deleted < RETENTION_PRUNE_ROWS) {
		if (r->pruned)
			log_info("deleted %llu tasks older than [tasks] retain from the database",
				 (unsigned long long)r->pruned);
		r->pruned = 0;
		r->next_prune = uv_now(d->loop) + PRUNE_IDLE_MS;
	}
}

void retention_tick(struct hpqd *d)
{
	struct retention *r = d->retention;
	int64_t now = hpq_now_ms();

	if (!r || d->stopping)
		return;
	/* An ended array may be left after its tasks (a sweep whose room
	 * they took): it goes at a later one. */
	if (!r->sweeping && (d->state.ntasks || d->state.narrays)) {
		struct sweep *sw = xcalloc(1, sizeof(*sw));

		sw->d = d;
		/* keep_finished 0: what ended before now, once that is committed. */
		sw->before_ms = now - (int64_t)d->cfg.keep_finished_s * 1000 +
				(d->cfg.keep_finished_s ? 0 : 1);
		r->sweeping = true;
		store_after_commit(d->store, on_sweep_committed, sw);
	}
	if (d->cfg.tasks_retain_s && !r->pruning && uv_now(d->loop) >= r->next_prune) {
		uint64_t keep = d->cfg.tasks_retain_s > d->cfg.keep_finished_s ?
				d->cfg.tasks_retain_s : d->cfg.keep_finished_s;

		r->pruning = true;
		store_tasks_prune(d->store, now - (int64_t)keep * 1000, RETENTION_PRUNE_ROWS,
				  on_pruned, d);
	}
}

static void on_timer(uv_timer_t *h)
{
	retention_tick(h->data);
}

int retention_init(struct hpqd *d)
{
	struct retention *r = xcalloc(1, sizeof(*r));

	r->d = d;
	if (uv_timer_init(d->loop, &r->timer) < 0) {
		free(r);
		return HPQ_EINVAL;
	}
	d->retention = r;
	r->timer.data = d;
	uv_timer_start(&r->timer, on_timer, TICK_MS, TICK_MS);
	uv_unref((uv_handle_t *)&r->timer);
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	free(container_of((uv_timer_t *)h, struct retention, timer));
}

void retention_close(struct hpqd *d)
{
	struct retention *r = d->retention;

	if (!r)
		return;
	d->retention = NULL;
	uv_close((uv_handle_t *)&r->timer, on_closed);
}
