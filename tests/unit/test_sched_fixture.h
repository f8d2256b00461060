/*
 * test_sched_fixture.h: a small world for the dispatcher's unit tests.
 *
 * Each test builds a cluster (classes, teams, nodes), submits tasks from a
 * fixed array, runs cycles and checks the exact decisions. The helpers keep
 * the tests close to the way the seed scenario is told in docs/design.md §4: "T6 preempts
 * T5", "T7 starts". Included by the test_sched_*.c programs only.
 */
#ifndef TEST_SCHED_FIXTURE_H
#define TEST_SCHED_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "scheduler.h"

#define FX_TASKS 256

/* The default classes of a new cluster. */
enum { INFERENCE = 0, TRAINING = 1, FINETUNE = 2, DATAPROC = 3 };

struct fx {
	struct sched *s;
	struct sched_task t[FX_TASKS];
	int64_t now;
	const struct sched_decision *d;
	size_t nd;
};

static inline struct hpq_res fx_gpus(int64_t g)
{
	return (struct hpq_res){g, 0, 0};
}

static inline void fx_init(struct fx *f, enum sched_idle_policy idle)
{
	struct sched_policy pol = {
		.idle = idle,
		.half_life_ms = 3600 * 1000,
	};

	memset(f, 0, sizeof(*f));
	f->s = sched_new(&pol);
	f->now = 1000;
	assert_int_equal(sched_class_set(f->s, INFERENCE, 15, false), 0);
	assert_int_equal(sched_class_set(f->s, TRAINING, 10, true), 0);
	assert_int_equal(sched_class_set(f->s, FINETUNE, 5, true), 0);
	assert_int_equal(sched_class_set(f->s, DATAPROC, 1, true), 0);
}

static inline void fx_free(struct fx *f)
{
	size_t i;

	for (i = 0; i < FX_TASKS; i++)
		if (f->t[i].state != SCHED_NONE)
			sched_task_finish(f->s, &f->t[i], f->now);
	sched_free(f->s);
}

/* n nodes with ids first..first+n-1, gpus each, 64 cpus, 512 GiB. */
static inline void fx_nodes(struct fx *f, uint32_t first, uint32_t n, uint32_t pool, int64_t gpus)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		assert_int_equal(sched_node_set(f->s, first + i, pool,
						 (struct hpq_res){gpus, 64, 512 * 1024}, true),
				 0);
}

/* A team with a GPU-only guarantee, lend-and-borrow, borrow limit pct. */
static inline void fx_team(struct fx *f, uint32_t team, uint32_t pool, int64_t gpus,
			   uint32_t pct)
{
	struct sched_quota q = {
		.guarantee = fx_gpus(gpus),
		.sharing = SCHED_LEND_AND_BORROW,
		.borrow_limit_pct = pct,
	};

	assert_int_equal(sched_team_quota(f->s, team, pool, &q), 0);
}

/* Submits task id (its index in f->t) asking gpus per node on nnodes nodes. */
static inline struct sched_task *fx_submit(struct fx *f, uint32_t id, uint32_t team,
					   uint32_t class_id, uint32_t nnodes, int64_t gpus)
{
	struct sched_task *t = &f->t[id];

	memset(t, 0, sizeof(*t));
	t->id = id;
	t->submit_ms = ++f->now;
	t->team = team;
	t->pool = 0;
	t->class_id = class_id;
	t->nnodes = nnodes;
	t->per_node = (struct hpq_res){gpus, 1, 1024};
	assert_int_equal(sched_task_submit(f->s, t), 0);
	return t;
}

static inline size_t fx_cycle(struct fx *f)
{
	f->now += 10;
	f->d = sched_cycle(f->s, f->now, &f->nd);
	return f->nd;
}

/* Asserts the decisions of the last cycle, in order: "S3" starts task 3,
 * "P5>6r" preempts 5 for 6 (r reclaim, p priority). */
static inline void fx_expect(struct fx *f, const char *want)
{
	char got[1024] = "";
	size_t i, len = 0;

	for (i = 0; i < f->nd && len < sizeof(got) - 32; i++) {
		const struct sched_decision *d = &f->d[i];

		if (d->action == SCHED_START)
			len += (size_t)snprintf(got + len, sizeof(got) - len, "%sS%llu", i ? " " : "",
						(unsigned long long)d->task->id);
		else
			len += (size_t)snprintf(got + len, sizeof(got) - len, "%sP%llu>%llu%c",
						i ? " " : "", (unsigned long long)d->task->id,
						(unsigned long long)d->beneficiary->id,
						d->cause == SCHED_CAUSE_RECLAIM ? 'r' : 'p');
	}
	assert_string_equal(got, want);
}

static inline void fx_cycle_expect(struct fx *f, const char *want)
{
	fx_cycle(f);
	fx_expect(f, want);
}

static inline void fx_requeue(struct fx *f, uint32_t id)
{
	f->now += 10;
	sched_task_requeue(f->s, &f->t[id], f->now);
}

static inline void fx_finish(struct fx *f, uint32_t id)
{
	f->now += 10;
	sched_task_finish(f->s, &f->t[id], f->now);
}

static inline void fx_reason(struct fx *f, uint32_t id, enum sched_reason want)
{
	assert_string_equal(sched_reason_name(sched_task_reason(f->s, &f->t[id])),
			    sched_reason_name(want));
}

static inline int64_t fx_used(struct fx *f, uint32_t team)
{
	struct sched_usage u;

	assert_int_equal(sched_team_usage(f->s, team, 0, &u), 0);
	return u.used.gpus;
}

#endif
