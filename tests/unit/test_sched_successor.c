/*
 * test_sched_successor.c: the dispatcher's successor hook
 * (sched_set_successor), as arrays use it: a run of 10,000 like tasks
 * kept as one queued task at a time.
 *
 *   - the queue holds one entry whatever the run's length; a cycle starts
 *     as many as fit, each handing over the next in the same cycle;
 *   - a caller-side limit (the hook returns NULL) stops the chain within
 *     the cycle, and a later submit of the next one goes on;
 *   - the hook is not called for tasks without `successor`, and an
 *     invalid task it returns is dropped.
 */
#include "test_sched_fixture.h"

#include <stdlib.h>

#define RUN 10000

struct run {
	struct sched_task *t;        /* RUN tasks, made only when handed over */
	uint32_t next;               /* the next to hand over */
	uint32_t active, limit;      /* started; 0: no limit */
	uint32_t made, calls;
	bool bad;                    /* hand over an invalid task */
};

static struct sched_task *next_of(void *ctx, struct sched_task *started)
{
	struct run *r = ctx;
	struct sched_task *n;

	(void)started;
	r->calls++;
	r->active++;
	if (r->next >= RUN || (r->limit && r->active >= r->limit))
		return NULL;
	n = &r->t[r->next++];
	memset(n, 0, sizeof(*n));
	n->id = 1000 + r->next;
	n->submit_ms = started->submit_ms;
	n->team = started->team;
	n->pool = started->pool;
	n->class_id = started->class_id;
	n->nnodes = r->bad ? 0 : 1;
	n->per_node = started->per_node;
	n->successor = true;
	r->made++;
	return n;
}

static struct sched_task *first(struct fx *f, struct run *r)
{
	struct sched_task *t = &r->t[r->next++];

	memset(t, 0, sizeof(*t));
	t->id = 1000 + r->next;
	t->submit_ms = ++f->now;
	t->team = 0;
	t->pool = 0;
	t->class_id = TRAINING;
	t->nnodes = 1;
	t->per_node = (struct hpq_res){ 0, 1, 1 };
	t->successor = true;
	r->made++;
	assert_int_equal(sched_task_submit(f->s, t), 0);
	return t;
}

static void test_chain(void **ts)
{
	struct fx f;
	struct run r = { 0 };
	struct sched_usage u;

	(void)ts;
	r.t = calloc(RUN, sizeof(*r.t));
	assert_non_null(r.t);
	fx_init(&f, SCHED_IDLE_FCFS);
	sched_set_successor(f.s, next_of, &r);
	/* 4 nodes of 64 CPUs: 256 fit. */
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(sched_node_set(f.s, i, 0, (struct hpq_res){ 0, 64, 1 << 20 },
						true), 0);
	first(&f, &r);
	assert_int_equal(sched_team_usage(f.s, 0, 0, &u), 0);
	assert_int_equal(u.pending, 1);
	assert_int_equal(r.made, 1);

	fx_cycle(&f);
	assert_int_equal(f.nd, 256);
	assert_int_equal(r.calls, 256);
	assert_int_equal(sched_team_usage(f.s, 0, 0, &u), 0);
	assert_int_equal(u.running, 256);
	assert_int_equal(u.pending, 1);              /* one queued entry, still */
	assert_int_equal(r.made, 257);
	/* Nothing changed: the next cycle decides nothing. */
	fx_cycle(&f);
	assert_int_equal(f.nd, 0);

	for (uint32_t i = 0; i < r.made; i++)
		if (r.t[i].state != SCHED_NONE)
			sched_task_finish(f.s, &r.t[i], f.now);
	sched_free(f.s);
	free(r.t);
}

static void test_limit(void **ts)
{
	struct fx f;
	struct run r = { 0 };
	struct sched_usage u;
	struct sched_task *plain;

	(void)ts;
	r.t = calloc(RUN, sizeof(*r.t));
	assert_non_null(r.t);
	r.limit = 50;
	fx_init(&f, SCHED_IDLE_FCFS);
	sched_set_successor(f.s, next_of, &r);
	assert_int_equal(sched_node_set(f.s, 0, 0, (struct hpq_res){ 0, 1000, 1 << 20 }, true),
			 0);
	first(&f, &r);
	fx_cycle(&f);
	assert_int_equal(f.nd, 50);                  /* the limit, within one cycle */
	assert_int_equal(sched_team_usage(f.s, 0, 0, &u), 0);
	assert_int_equal(u.pending, 0);
	/* One ends; the caller hands over the next by a submit. */
	sched_task_finish(f.s, &r.t[0], f.now);
	r.active--;
	{
		struct sched_task *n = &r.t[r.next++];

		memset(n, 0, sizeof(*n));
		n->id = 1000 + r.next;
		n->submit_ms = r.t[1].submit_ms;
		n->class_id = TRAINING;
		n->nnodes = 1;
		n->per_node = r.t[1].per_node;
		n->successor = true;
		assert_int_equal(sched_task_submit(f.s, n), 0);
	}
	fx_cycle(&f);
	assert_int_equal(f.nd, 1);

	/* A task without `successor` does not call the hook. */
	plain = fx_submit(&f, 7, 0, TRAINING, 1, 0);
	r.calls = 0;
	fx_cycle(&f);
	fx_expect(&f, "S7");
	assert_int_equal(r.calls, 0);
	sched_task_finish(f.s, plain, f.now);

	for (uint32_t i = 0; i < r.next; i++)
		if (r.t[i].state != SCHED_NONE)
			sched_task_finish(f.s, &r.t[i], f.now);
	sched_free(f.s);
	free(r.t);
}

static void test_invalid_dropped(void **ts)
{
	struct fx f;
	struct run r = { 0 };

	(void)ts;
	r.t = calloc(RUN, sizeof(*r.t));
	assert_non_null(r.t);
	r.bad = true;
	fx_init(&f, SCHED_IDLE_FCFS);
	sched_set_successor(f.s, next_of, &r);
	assert_int_equal(sched_node_set(f.s, 0, 0, (struct hpq_res){ 0, 8, 1 << 20 }, true), 0);
	first(&f, &r);
	fx_cycle(&f);
	assert_int_equal(f.nd, 1);
	assert_int_equal(r.t[1].state, SCHED_NONE);  /* nnodes 0: not taken */
	sched_task_finish(f.s, &r.t[0], f.now);
	sched_free(f.s);
	free(r.t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_invalid_dropped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
