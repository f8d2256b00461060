/*
 * test_sched_random.c: the dispatcher against its invariants, under a
 * seeded stream of random events.
 *
 * The rules have their own tests; this one looks for what incremental
 * indexes get wrong over time. A small cluster (two pools, teams with every
 * kind of terms, a non-preemptible class, min-runtime) receives submits,
 * ends, cancels, checkpoints, node and quota changes in random order, with
 * preempted tasks stopping after a random delay. After every cycle it
 * checks, against its own bookkeeping: no node holds more than its
 * capacity, gangs are on distinct schedulable nodes of their pool, usage
 * per team equals the sum of its running tasks, victims are preemptible and
 * were running, and every task is in exactly one state; the waiting tasks'
 * reasons, which the dispatcher answers from what it keeps per request
 * size, equal a fresh look. ASan does the rest.
 */
#include "test_sched_fixture.h"

#define NTASKS 200
#define NNODES 12
#define NTEAMS 6

struct world {
	struct fx f;
	uint64_t rng;
	struct hpq_res cap[NNODES];
	bool sched_ok[NNODES];
	int stop_in[NTASKS];   /* PREEMPTING: events until it stops */
	int waits_since[NTASKS]; /* beneficiary: cycle of its preemptions, 0 if none */
	int cycle;
	bool plans_may_break;  /* a node went away since the last cycle */
	uint64_t next_id;
};

static uint32_t rnd(struct world *w, uint32_t n)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return (uint32_t)(w->rng % n);
}

static uint32_t pool_of_node(uint32_t n)
{
	return n < NNODES / 2 ? 0 : 1;
}

static void quota_random(struct world *w, uint32_t team, uint32_t pool)
{
	struct sched_quota q = {
		.guarantee = {rnd(w, 3) * 8, rnd(w, 2) * 64, 0},
		.sharing = (enum sched_sharing)rnd(w, 3),
		.borrow_limit_pct = rnd(w, 4) * 50,
	};

	if (rnd(w, 4) == 0) {
		q.has_borrow_abs = true;
		q.borrow_abs = (struct hpq_res){1000, 1000, 1 << 30};
	}
	if (rnd(w, 4) == 0) {
		q.has_lend_limit = true;
		q.lend_limit = fx_gpus(rnd(w, 8));
	}
	assert_int_equal(sched_team_quota(w->f.s, team, pool, &q), 0);
}

static void setup(struct world *w, uint64_t seed, enum sched_idle_policy idle)
{
	struct sched_policy pol = {.idle = idle, .half_life_ms = 5000,
				   .min_runtime_ms = seed % 2 ? 50 : 0,
				   .requeue_by_eviction = seed % 3 == 0};
	uint32_t i, p;

	memset(w, 0, sizeof(*w));
	w->rng = seed * 2654435761u + 1;
	fx_init(&w->f, idle);
	sched_set_policy(w->f.s, &pol);
	assert_int_equal(sched_class_set(w->f.s, 4, 3, false), 0);
	for (i = 0; i < NNODES; i++) {
		w->cap[i] = (struct hpq_res){i % 3 == 0 ? 4 : 8, 64, 1 << 20};
		w->sched_ok[i] = true;
		assert_int_equal(sched_node_set(w->f.s, i, pool_of_node(i), w->cap[i], true), 0);
	}
	for (i = 0; i < NTEAMS; i++) {
		assert_int_equal(sched_team_set(w->f.s, i, rnd(w, 4), rnd(w, 2)), 0);
		for (p = 0; p < 2; p++)
			quota_random(w, i, p);
	}
	w->next_id = 1;
}

static void submit_random(struct world *w)
{
	uint32_t i = rnd(w, NTASKS);
	struct sched_task *t = &w->f.t[i];

	if (t->state != SCHED_NONE)
		return;
	memset(t, 0, sizeof(*t));
	t->id = i;
	t->submit_ms = ++w->f.now;
	t->team = rnd(w, NTEAMS);
	t->pool = rnd(w, 2);
	t->class_id = rnd(w, 5);
	t->nnodes = rnd(w, 6) == 0 ? 2 : 1;
	t->per_node = (struct hpq_res){1 + rnd(w, 8), rnd(w, 3) * 16, 1024};
	if (rnd(w, 10) == 0)
		t->checkpoint_ms = w->f.now - 5;
	assert_int_equal(sched_task_submit(w->f.s, t), 0);
}

/* Everything the dispatcher says must agree with the tasks themselves. */
static void check(struct world *w)
{
	struct hpq_res node_used[NNODES] = {{0}};
	struct hpq_res team_used[NTEAMS][2] = {{{0}}};
	uint32_t team_run[NTEAMS][2] = {{0}}, team_pend[NTEAMS][2] = {{0}};
	uint32_t i, k, t;

	for (i = 0; i < NTASKS; i++) {
		const struct sched_task *x = &w->f.t[i];

		if (x->state == SCHED_PENDING) {
			team_pend[x->team][x->pool]++;
			assert_null(x->nodes);
			continue;
		}
		if (x->state != SCHED_RUNNING && x->state != SCHED_PREEMPTING)
			continue;
		assert_non_null(x->nodes);
		for (k = 0; k < x->nnodes; k++) {
			assert_true(x->nodes[k] < NNODES);
			assert_int_equal(pool_of_node(x->nodes[k]), x->pool);
			node_used[x->nodes[k]] = hpq_res_add(node_used[x->nodes[k]], x->per_node);
			for (t = 0; t < k; t++)
				assert_int_not_equal(x->nodes[t], x->nodes[k]);
		}
		team_used[x->team][x->pool] =
			hpq_res_add(team_used[x->team][x->pool], hpq_res_scale(x->per_node, x->nnodes));
		team_run[x->team][x->pool]++;
	}
	for (i = 0; i < NNODES; i++)
		assert_true(hpq_res_fits(node_used[i], w->cap[i]));
	/* The pools' capacity, kept node by node, against a fresh sum. */
	for (k = 0; k < 2; k++) {
		struct hpq_res want = HPQ_RES_ZERO, cap, fr;

		for (i = 0; i < NNODES; i++)
			if (pool_of_node(i) == k && w->sched_ok[i])
				want = hpq_res_add(want, w->cap[i]);
		assert_int_equal(sched_pool_capacity(w->f.s, k, &cap, &fr), 0);
		assert_true(hpq_res_eq(cap, want));
	}
	for (t = 0; t < NTEAMS; t++) {
		for (k = 0; k < 2; k++) {
			struct sched_usage u;

			assert_int_equal(sched_team_usage(w->f.s, t, k, &u), 0);
			assert_true(hpq_res_eq(u.used, team_used[t][k]));
			assert_int_equal(u.running, team_run[t][k]);
			assert_int_equal(u.pending, team_pend[t][k]);
		}
	}
}

static void apply(struct world *w, const struct sched_decision *d, size_t n)
{
	size_t i;
	uint32_t k;

	for (i = 0; i < n; i++) {
		struct sched_task *t = d[i].task;
		uint32_t idx = (uint32_t)(t - w->f.t);

		assert_true(idx < NTASKS);
		if (d[i].action == SCHED_START) {
			assert_int_equal(t->state, SCHED_RUNNING);
			w->waits_since[idx] = 0;
			for (k = 0; k < t->nnodes; k++)
				assert_true(w->sched_ok[t->nodes[k]]);
		} else {
			assert_int_equal(d[i].action, SCHED_PREEMPT);
			assert_int_equal(t->state, SCHED_PREEMPTING);
			assert_true(t->class_id != 4);
			assert_non_null(d[i].beneficiary);
			assert_int_equal(d[i].beneficiary->state, SCHED_PENDING);
			assert_string_equal(sched_reason_name(sched_task_reason(w->f.s,
										d[i].beneficiary)),
					    "preempting-for");
			/* no second round for a beneficiary that already waits */
			k = (uint32_t)(d[i].beneficiary - w->f.t);
			assert_true(!w->waits_since[k] || w->waits_since[k] == w->cycle);
			w->waits_since[k] = w->cycle;
			if (d[i].cause == SCHED_CAUSE_PRIORITY)
				assert_int_equal(d[i].beneficiary->team, t->team);
			else
				assert_int_not_equal(d[i].beneficiary->team, t->team);
			w->stop_in[idx] = 1 + (int)rnd(w, 4);
		}
	}
}

static void step(struct world *w)
{
	uint32_t r = rnd(w, 100), i;
	struct sched_task *t;

	w->f.now += 1 + rnd(w, 20);
	if (r < 40) {
		submit_random(w);
	} else if (r < 60) {
		/* a running task ends */
		t = &w->f.t[rnd(w, NTASKS)];
		if (t->state == SCHED_RUNNING)
			sched_task_finish(w->f.s, t, w->f.now);
	} else if (r < 65) {
		/* a cancel, in whatever state */
		sched_task_finish(w->f.s, &w->f.t[rnd(w, NTASKS)], w->f.now);
	} else if (r < 70) {
		t = &w->f.t[rnd(w, NTASKS)];
		if (t->state == SCHED_RUNNING || t->state == SCHED_PREEMPTING)
			sched_task_checkpoint(w->f.s, t, w->f.now);
	} else if (r < 74) {
		/* a node goes unhealthy or comes back */
		i = rnd(w, NNODES);
		w->sched_ok[i] = !w->sched_ok[i];
		w->plans_may_break = true;
		assert_int_equal(sched_node_set(w->f.s, i, pool_of_node(i), w->cap[i],
						 w->sched_ok[i]),
				 0);
	} else if (r < 76) {
		/* a node is lost: its tasks are requeued */
		i = rnd(w, NNODES);
		for (uint32_t k = 0; k < NTASKS; k++) {
			struct sched_task *x = &w->f.t[k];

			if ((x->state == SCHED_RUNNING || x->state == SCHED_PREEMPTING) &&
			    (x->nodes[0] == i || (x->nnodes > 1 && x->nodes[1] == i)))
				sched_task_requeue(w->f.s, x, w->f.now);
		}
	} else if (r < 78) {
		quota_random(w, rnd(w, NTEAMS), rnd(w, 2));
	} else if (r < 79) {
		assert_int_equal(sched_class_set(w->f.s, rnd(w, 4), rnd(w, 20), true), 0);
	} else if (r < 80) {
		assert_int_equal(sched_team_set(w->f.s, rnd(w, NTEAMS), rnd(w, 4), rnd(w, 2)), 0);
	}
	for (i = 0; i < NTASKS; i++)
		if (w->f.t[i].state != SCHED_PENDING)
			w->waits_since[i] = 0;
	/* The reasons, from what the dispatcher keeps of its nodes per
	 * request size since the last look, against a fresh look (a node set
	 * again as it is, as a re-registration does, drops what it kept);
	 * every few steps, so that kept views live across several events. */
	if (rnd(w, 8) == 0) {
		enum sched_reason kept[NTASKS];

		for (i = 0; i < NTASKS; i++)
			kept[i] = sched_task_reason(w->f.s, &w->f.t[i]);
		assert_int_equal(sched_node_set(w->f.s, 0, pool_of_node(0), w->cap[0],
						 w->sched_ok[0]),
				 0);
		for (i = 0; i < NTASKS; i++)
			assert_int_equal(kept[i], sched_task_reason(w->f.s, &w->f.t[i]));
	}
	/* preempted tasks stop after a while, some exit on their own */
	for (i = 0; i < NTASKS; i++) {
		t = &w->f.t[i];
		if (t->state != SCHED_PREEMPTING || --w->stop_in[i] > 0)
			continue;
		if (rnd(w, 5) == 0)
			sched_task_finish(w->f.s, t, w->f.now);
		else
			sched_task_requeue(w->f.s, t, w->f.now);
	}
	if (rnd(w, 3) == 0) {
		const struct sched_decision *d;
		enum sched_reason why;
		size_t n;

		w->cycle++;
		if (w->plans_may_break)
			memset(w->waits_since, 0, sizeof(w->waits_since));
		w->plans_may_break = false;
		d = sched_cycle(w->f.s, w->f.now, &n);
		apply(w, d, n);
		check(w);
		/* what could start has started (the reason says what the cycle saw) */
		for (i = 0; i < NTASKS; i++) {
			t = &w->f.t[i];
			if (t->state != SCHED_PENDING)
				continue;
			why = sched_task_reason(w->f.s, t);
			if (why != SCHED_REASON_PREEMPTING_FOR)
				w->waits_since[i] = 0;
			if (why == SCHED_REASON_NONE) {
				fail_msg("task %u could start but did not", i);
			}
		}
	}
}

static void run(uint64_t seed, enum sched_idle_policy idle)
{
	struct world w;
	int i;

	setup(&w, seed, idle);
	for (i = 0; i < 4000; i++)
		step(&w);
	check(&w);
	fx_free(&w.f);
}

static void test_random_fair_share(void **state)
{
	uint64_t seed;

	(void)state;
	for (seed = 1; seed <= 12; seed++)
		run(seed, SCHED_IDLE_FAIR_SHARE);
}

static void test_random_fcfs(void **state)
{
	uint64_t seed;

	(void)state;
	for (seed = 100; seed < 112; seed++)
		run(seed, SCHED_IDLE_FCFS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_fair_share),
		cmocka_unit_test(test_random_fcfs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
