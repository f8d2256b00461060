/*
 * test_sched_admission.c: who may start, and where (docs/design.md §4).
 *
 * Admission within guarantee or on idle compute within the borrow limit
 * (percentage or absolute), sharing modes and lend limits, the built-in
 * `default` team that only ever borrows, nodes that are not schedulable,
 * gangs on distinct whole nodes, best fit, queue order inside a team, and
 * the pending reasons that go with each refusal.
 */
#include "test_sched_fixture.h"

enum { DEFAULT = 0, TEAM1 = 1, TEAM2 = 2 };

static const struct hpq_res unlimited = {1000000000, 1000000000, (int64_t)1 << 50};

static void quota(struct fx *f, uint32_t team, int64_t g, enum sched_sharing sh, uint32_t pct)
{
	struct sched_quota q = {.guarantee = fx_gpus(g), .sharing = sh, .borrow_limit_pct = pct};

	assert_int_equal(sched_team_quota(f->s, team, 0, &q), 0);
}

static void default_team(struct fx *f, uint32_t pool)
{
	struct sched_quota q = {.sharing = SCHED_LEND_AND_BORROW, .has_borrow_abs = true,
				.borrow_abs = unlimited};

	assert_int_equal(sched_team_quota(f->s, DEFAULT, pool, &q), 0);
}

/* Two nodes x 8 GPUs, team1 and team2 guarantee 8 each. */
static void two_teams(struct fx *f)
{
	fx_init(f, SCHED_IDLE_FCFS);
	fx_nodes(f, 0, 2, 0, 8);
}

static void test_within_guarantee_then_borrow_pct(void **state)
{
	struct fx f;

	(void)state;
	two_teams(&f);
	quota(&f, TEAM1, 8, SCHED_LEND_AND_BORROW, 50);
	quota(&f, TEAM2, 8, SCHED_LEND_AND_BORROW, 50);
	fx_submit(&f, 1, TEAM1, TRAINING, 1, 4);
	fx_submit(&f, 2, TEAM1, TRAINING, 1, 4);
	fx_submit(&f, 3, TEAM1, TRAINING, 1, 4);
	fx_submit(&f, 4, TEAM1, TRAINING, 1, 4);
	fx_cycle_expect(&f, "S1 S2 S3");
	fx_reason(&f, 4, SCHED_REASON_BORROW_LIMIT);
	assert_int_equal(fx_used(&f, TEAM1), 12);
	/* team2 still gets its whole guarantee: 4 free plus a reclaim of T3 */
	fx_submit(&f, 5, TEAM2, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P3>5r");
	fx_free(&f);
}

static void test_borrow_abs(void **state)
{
	struct fx f;
	struct sched_quota q = {.guarantee = fx_gpus(8), .sharing = SCHED_LEND_AND_BORROW,
				.borrow_limit_pct = 0, .has_borrow_abs = true,
				.borrow_abs = {6, 0, 0}};

	(void)state;
	two_teams(&f);
	assert_int_equal(sched_team_quota(f.s, TEAM1, 0, &q), 0);
	quota(&f, TEAM2, 8, SCHED_LEND_AND_BORROW, 50);
	fx_submit(&f, 1, TEAM1, TRAINING, 1, 8);
	fx_submit(&f, 2, TEAM1, TRAINING, 1, 4);
	fx_submit(&f, 3, TEAM1, TRAINING, 1, 2);
	fx_submit(&f, 4, TEAM1, TRAINING, 1, 1);
	fx_cycle_expect(&f, "S1 S2 S3");
	fx_reason(&f, 4, SCHED_REASON_BORROW_LIMIT);
	fx_free(&f);
}

static void test_borrow_limit_zero_is_quota(void **state)
{
	struct fx f;

	(void)state;
	two_teams(&f);
	quota(&f, TEAM1, 4, SCHED_LEND_AND_BORROW, 0);
	fx_submit(&f, 1, TEAM1, TRAINING, 1, 4);
	fx_submit(&f, 2, TEAM1, TRAINING, 1, 4);
	fx_cycle_expect(&f, "S1");
	fx_reason(&f, 2, SCHED_REASON_QUOTA);
	fx_free(&f);
}

static void test_lend_cannot_borrow(void **state)
{
	struct fx f;

	(void)state;
	two_teams(&f);
	quota(&f, TEAM1, 8, SCHED_LEND, 100);
	quota(&f, TEAM2, 8, SCHED_LEND, 100);
	fx_submit(&f, 1, TEAM1, TRAINING, 1, 8);
	fx_submit(&f, 2, TEAM1, TRAINING, 1, 1);
	fx_cycle_expect(&f, "S1");
	fx_reason(&f, 2, SCHED_REASON_QUOTA);
	/* but it lends: a borrower may use team2's unused guarantee */
	default_team(&f, 0);
	f.t[3] = (struct sched_task){.id = 3, .submit_ms = ++f.now, .team = DEFAULT,
				     .class_id = TRAINING, .nnodes = 1, .per_node = fx_gpus(8)};
	assert_int_equal(sched_task_submit(f.s, &f.t[3]), 0);
	fx_cycle_expect(&f, "S3");
	fx_free(&f);
}

static void test_dont_lend(void **state)
{
	struct fx f;

	(void)state;
	two_teams(&f);
	quota(&f, TEAM1, 8, SCHED_LEND_AND_BORROW, 100);
	quota(&f, TEAM2, 8, SCHED_DONT_LEND, 100);
	fx_submit(&f, 1, TEAM1, TRAINING, 1, 8);
	fx_submit(&f, 2, TEAM1, TRAINING, 1, 1);
	fx_cycle_expect(&f, "S1");
	fx_reason(&f, 2, SCHED_REASON_NO_IDLE);
	/* team2 still runs its own guarantee */
	fx_submit(&f, 3, TEAM2, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S3");
	fx_free(&f);
}

static void test_lend_limit(void **state)
{
	struct fx f;
	struct sched_quota q = {.guarantee = fx_gpus(8), .sharing = SCHED_LEND_AND_BORROW,
				.borrow_limit_pct = 100, .has_lend_limit = true,
				.lend_limit = {3, 0, 0}};
	struct sched_usage u;

	(void)state;
	two_teams(&f);
	quota(&f, TEAM1, 8, SCHED_LEND_AND_BORROW, 100);
	assert_int_equal(sched_team_quota(f.s, TEAM2, 0, &q), 0);
	fx_submit(&f, 1, TEAM1, TRAINING, 1, 8);
	fx_submit(&f, 2, TEAM1, TRAINING, 1, 2);
	fx_submit(&f, 3, TEAM1, TRAINING, 1, 2);
	fx_submit(&f, 4, TEAM1, TRAINING, 1, 1);
	fx_cycle_expect(&f, "S1 S2 S4");
	fx_reason(&f, 3, SCHED_REASON_NO_IDLE);
	assert_int_equal(sched_team_usage(f.s, TEAM2, 0, &u), 0);
	assert_int_equal(u.lent.gpus, 3);
	assert_int_equal(u.guarantee.gpus, 8);
	fx_free(&f);
}

/* The built-in default team: no guarantee, unlimited absolute borrow limit. */
static void test_default_team_alone(void **state)
{
	struct fx f;
	struct sched_usage u;

	(void)state;
	fx_init(&f, SCHED_IDLE_FAIR_SHARE);
	fx_nodes(&f, 0, 2, 0, 8);
	default_team(&f, 0);
	fx_submit(&f, 1, DEFAULT, TRAINING, 1, 8);
	fx_submit(&f, 2, DEFAULT, TRAINING, 2, 4);
	fx_submit(&f, 3, DEFAULT, FINETUNE, 1, 1);
	/* T2 holds the free node for itself: the small T3 does not take it */
	fx_cycle_expect(&f, "S1");
	fx_reason(&f, 2, SCHED_REASON_GANG);
	fx_reason(&f, 3, SCHED_REASON_PRIORITY);
	fx_finish(&f, 1);
	fx_cycle_expect(&f, "S2 S3");
	assert_int_not_equal(f.t[2].nodes[0], f.t[2].nodes[1]);
	assert_int_equal(sched_team_usage(f.s, DEFAULT, 0, &u), 0);
	assert_int_equal(u.used.gpus, 9);
	assert_int_equal(u.borrowed.gpus, 0); /* nobody is guaranteed GPUs here */
	assert_int_equal(u.running, 2);
	assert_int_equal(u.pending, 0);
	fx_free(&f);
}

/* With a guaranteed team beside it, everything default runs is borrowed. */
static void test_default_team_borrows_idle(void **state)
{
	struct fx f;
	struct sched_usage u;

	(void)state;
	fx_init(&f, SCHED_IDLE_FAIR_SHARE);
	fx_nodes(&f, 0, 3, 0, 8);
	default_team(&f, 0);
	quota(&f, TEAM1, 8, SCHED_LEND_AND_BORROW, 50);
	fx_submit(&f, 1, DEFAULT, TRAINING, 1, 8);
	fx_submit(&f, 2, DEFAULT, TRAINING, 1, 8);
	fx_submit(&f, 3, DEFAULT, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S1 S2 S3");
	assert_int_equal(sched_team_usage(f.s, DEFAULT, 0, &u), 0);
	assert_int_equal(u.borrowed.gpus, 24);
	assert_int_equal(sched_team_usage(f.s, TEAM1, 0, &u), 0);
	assert_int_equal(u.lent.gpus, 8);
	/* team1 takes its guarantee back from the newest default task */
	fx_submit(&f, 4, TEAM1, TRAINING, 1, 4);
	fx_cycle_expect(&f, "P3>4r");
	fx_requeue(&f, 3);
	fx_cycle_expect(&f, "S4");
	fx_reason(&f, 3, SCHED_REASON_NO_IDLE);
	/* team1 idle again: default's task runs on the lent part */
	fx_finish(&f, 4);
	fx_cycle_expect(&f, "S3");
	fx_free(&f);
}

/* sched_team_default_quota covers pools the team has no explicit terms in. */
static void test_team_default_quota(void **state)
{
	struct fx f;
	struct sched_quota q = {.sharing = SCHED_LEND_AND_BORROW, .has_borrow_abs = true,
				.borrow_abs = unlimited};
	struct sched_quota bad = q;

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	bad.guarantee = fx_gpus(1);
	/* someone holds a guarantee in pool 7, so its GPUs are governed there */
	sched_team_quota(f.s, TEAM2, 7, &(struct sched_quota){.guarantee = fx_gpus(1)});
	assert_int_equal(sched_team_default_quota(f.s, DEFAULT, &bad), HPQ_EINVAL);
	assert_int_equal(sched_team_default_quota(f.s, DEFAULT, &q), 0);
	fx_nodes(&f, 0, 1, 7, 8);
	f.t[1] = (struct sched_task){.id = 1, .submit_ms = 1, .team = DEFAULT, .pool = 7,
				     .class_id = TRAINING, .nnodes = 1, .per_node = fx_gpus(8)};
	f.t[2] = (struct sched_task){.id = 2, .submit_ms = 2, .team = TEAM1, .pool = 7,
				     .class_id = TRAINING, .nnodes = 1, .per_node = fx_gpus(8)};
	assert_int_equal(sched_task_submit(f.s, &f.t[2]), 0);
	assert_int_equal(sched_task_submit(f.s, &f.t[1]), 0);
	/* team1 has no terms in pool 7: no guarantee, may not borrow */
	fx_cycle_expect(&f, "S1");
	fx_reason(&f, 2, SCHED_REASON_QUOTA);
	fx_free(&f);
}

/* A resource nobody is guaranteed in a pool is not governed there: the
 * seed's GPU-only guarantees do not make every task borrow CPUs, and in a
 * pool without guarantees work runs in class order, whatever its team. */
static void test_ungoverned(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	fx_nodes(&f, 0, 1, 0, 8);
	fx_submit(&f, 1, TEAM1, FINETUNE, 1, 4);
	fx_submit(&f, 2, TEAM2, TRAINING, 1, 4);
	fx_submit(&f, 3, TEAM2, INFERENCE, 1, 4);
	fx_cycle_expect(&f, "S3 S2");
	fx_reason(&f, 1, SCHED_REASON_CAPACITY);
	/* now GPUs are governed; CPUs still are not */
	quota(&f, TEAM2, 8, SCHED_LEND_AND_BORROW, 0);
	fx_finish(&f, 3);
	fx_cycle_expect(&f, "");
	fx_reason(&f, 1, SCHED_REASON_QUOTA);
	fx_free(&f);
}

static void test_unschedulable_node(void **state)
{
	struct fx f;
	struct hpq_res cap, fr;
	const struct hpq_res node = {8, 64, 512 * 1024};

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	fx_nodes(&f, 0, 2, 0, 8);
	default_team(&f, 0);
	quota(&f, TEAM1, 8, SCHED_LEND_AND_BORROW, 50);
	assert_int_equal(sched_node_set(f.s, 1, 0, node, false), 0);
	assert_int_equal(sched_pool_capacity(f.s, 0, &cap, &fr), 0);
	assert_int_equal(cap.gpus, 8);
	fx_submit(&f, 1, DEFAULT, TRAINING, 1, 4);
	fx_submit(&f, 2, DEFAULT, TRAINING, 1, 4);
	fx_submit(&f, 3, DEFAULT, TRAINING, 1, 4);
	/* only node 0 counts: idle = 8 - 8 guaranteed + 8 lendable */
	fx_cycle_expect(&f, "S1 S2");
	assert_int_equal(f.t[1].nodes[0], 0);
	assert_int_equal(f.t[2].nodes[0], 0);
	fx_reason(&f, 3, SCHED_REASON_NO_IDLE);
	/* node 1 back: its capacity is idle compute */
	assert_int_equal(sched_node_set(f.s, 1, 0, node, true), 0);
	fx_cycle_expect(&f, "S3");
	assert_int_equal(f.t[3].nodes[0], 1);
	/* a node that goes unschedulable keeps its task, receives nothing */
	assert_int_equal(sched_node_set(f.s, 1, 0, node, false), 0);
	assert_int_equal(sched_node_remove(f.s, 1), HPQ_EBUSY);
	fx_submit(&f, 4, DEFAULT, TRAINING, 1, 1);
	fx_cycle_expect(&f, "");
	fx_finish(&f, 3);
	assert_int_equal(sched_node_remove(f.s, 1), 0);
	assert_int_equal(sched_node_set(f.s, 0, 0, node, false), 0);
	fx_reason(&f, 4, SCHED_REASON_UNHEALTHY_POOL);
	fx_free(&f);
}

/*
 * Nodes going down and up are accounted one at a time (no rebuild of the
 * pool's index): when the last of the largest nodes goes, the largest
 * request that fits shrinks with it, and grows back with the first that
 * returns.
 */
static void test_largest_node_flips(void **state)
{
	struct fx f;
	struct hpq_res cap, fr;
	const struct hpq_res big = {8, 64, 512 * 1024}, small = {4, 64, 512 * 1024};

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	default_team(&f, 0);
	assert_int_equal(sched_node_set(f.s, 0, 0, big, true), 0);
	assert_int_equal(sched_node_set(f.s, 1, 0, big, true), 0);
	assert_int_equal(sched_node_set(f.s, 2, 0, small, true), 0);
	assert_int_equal(sched_node_set(f.s, 0, 0, big, false), 0);
	assert_int_equal(sched_node_set(f.s, 1, 0, big, false), 0);
	assert_int_equal(sched_pool_capacity(f.s, 0, &cap, &fr), 0);
	assert_int_equal(cap.gpus, 4);
	fx_submit(&f, 1, DEFAULT, TRAINING, 1, 8);
	fx_cycle_expect(&f, "");
	fx_submit(&f, 2, DEFAULT, TRAINING, 1, 4);
	fx_cycle_expect(&f, "S2");
	assert_int_equal(f.t[2].nodes[0], 2);
	assert_int_equal(sched_node_set(f.s, 1, 0, big, true), 0);
	assert_int_equal(sched_pool_capacity(f.s, 0, &cap, &fr), 0);
	assert_int_equal(cap.gpus, 12);
	assert_int_equal(fr.gpus, 8);
	fx_cycle_expect(&f, "S1");
	assert_int_equal(f.t[1].nodes[0], 1);
	/* The small one down and up again, with its task: nothing moves. */
	assert_int_equal(sched_node_set(f.s, 2, 0, small, false), 0);
	assert_int_equal(sched_node_set(f.s, 2, 0, small, true), 0);
	assert_int_equal(sched_pool_capacity(f.s, 0, &cap, &fr), 0);
	assert_int_equal(cap.gpus, 12);
	assert_int_equal(fr.gpus, 0);
	fx_free(&f);
}

static void test_gang(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	fx_nodes(&f, 0, 3, 0, 8);
	default_team(&f, 0);
	fx_submit(&f, 1, DEFAULT, TRAINING, 1, 4);
	fx_submit(&f, 2, DEFAULT, TRAINING, 1, 4);
	fx_submit(&f, 3, DEFAULT, TRAINING, 1, 4);
	fx_cycle_expect(&f, "S1 S2 S3");
	assert_int_equal(f.t[1].nodes[0], f.t[2].nodes[0]);
	/* 8 GPUs free on one node, 4 on another: a 2 x 6 gang waits */
	fx_submit(&f, 5, DEFAULT, TRAINING, 2, 6);
	fx_submit(&f, 6, DEFAULT, TRAINING, 4, 1);
	fx_cycle_expect(&f, "");
	fx_reason(&f, 5, SCHED_REASON_GANG);
	fx_reason(&f, 6, SCHED_REASON_CAPACITY);
	/* all or nothing, on distinct nodes */
	fx_finish(&f, 2);
	fx_finish(&f, 1);
	fx_cycle_expect(&f, "S5");
	assert_int_not_equal(f.t[5].nodes[0], f.t[5].nodes[1]);
	fx_free(&f);
}

static void test_best_fit(void **state)
{
	struct fx f;
	uint32_t half;

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	fx_nodes(&f, 0, 3, 0, 8);
	default_team(&f, 0);
	fx_submit(&f, 1, DEFAULT, TRAINING, 1, 6);
	fx_cycle_expect(&f, "S1");
	fx_submit(&f, 2, DEFAULT, TRAINING, 1, 4);
	fx_cycle_expect(&f, "S2");
	half = f.t[2].nodes[0];
	assert_int_not_equal(half, f.t[1].nodes[0]);
	/* 2 GPUs: the node with 2 free, not the one with 4 */
	fx_submit(&f, 3, DEFAULT, TRAINING, 1, 2);
	fx_cycle_expect(&f, "S3");
	assert_int_equal(f.t[3].nodes[0], f.t[1].nodes[0]);
	fx_submit(&f, 4, DEFAULT, TRAINING, 1, 3);
	fx_cycle_expect(&f, "S4");
	assert_int_equal(f.t[4].nodes[0], half);
	/* a whole node is still free for an 8-GPU task */
	fx_submit(&f, 5, DEFAULT, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S5");
	fx_free(&f);
}

static void test_capacity_checks_every_resource(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	fx_nodes(&f, 0, 2, 0, 8);
	default_team(&f, 0);
	quota(&f, TEAM1, 8, SCHED_LEND_AND_BORROW, 50);
	/* nodes have 64 cpus */
	f.t[1] = (struct sched_task){.id = 1, .submit_ms = ++f.now, .team = DEFAULT,
				     .class_id = TRAINING, .nnodes = 1, .per_node = {1, 65, 1024}};
	assert_int_equal(sched_task_submit(f.s, &f.t[1]), 0);
	fx_submit(&f, 2, DEFAULT, TRAINING, 1, 16);
	fx_submit(&f, 3, DEFAULT, TRAINING, 3, 1);
	fx_cycle_expect(&f, "");
	fx_reason(&f, 1, SCHED_REASON_CAPACITY);
	fx_reason(&f, 2, SCHED_REASON_CAPACITY);
	fx_reason(&f, 3, SCHED_REASON_CAPACITY);
	/* cpus are not governed (no guarantee names them) but bound placement */
	f.t[4] = (struct sched_task){.id = 4, .submit_ms = ++f.now, .team = DEFAULT,
				     .class_id = TRAINING, .nnodes = 1, .per_node = {1, 64, 1024}};
	assert_int_equal(sched_task_submit(f.s, &f.t[4]), 0);
	fx_cycle_expect(&f, "S4");
	fx_free(&f);
}

static void test_queue_order_in_team(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	fx_nodes(&f, 0, 1, 0, 8);
	quota(&f, TEAM1, 8, SCHED_LEND_AND_BORROW, 50);
	fx_submit(&f, 1, TEAM1, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S1");
	fx_submit(&f, 2, TEAM1, FINETUNE, 1, 8);
	fx_submit(&f, 3, TEAM1, TRAINING, 1, 8);
	fx_submit(&f, 4, TEAM1, DATAPROC, 1, 8);
	fx_submit(&f, 5, TEAM1, TRAINING, 1, 8);
	fx_submit(&f, 6, TEAM1, INFERENCE, 1, 8);
	fx_cycle_expect(&f, "");
	fx_finish(&f, 1);
	fx_cycle_expect(&f, "S6");
	fx_finish(&f, 6);
	fx_cycle_expect(&f, "S3");
	fx_finish(&f, 3);
	fx_cycle_expect(&f, "S5");
	fx_finish(&f, 5);
	fx_cycle_expect(&f, "S2");
	fx_finish(&f, 2);
	fx_cycle_expect(&f, "S4");
	fx_free(&f);
}

static void test_invalid_input(void **state)
{
	struct fx f;
	struct sched_quota q = {.sharing = SCHED_LEND_AND_BORROW, .borrow_limit_pct = 10001};
	struct sched_task t = {.id = 1, .nnodes = 0, .per_node = {1, 1, 1}};

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	assert_int_equal(sched_team_quota(f.s, 1, 0, &q), HPQ_EINVAL);
	q.borrow_limit_pct = 50;
	q.guarantee.gpus = -1;
	assert_int_equal(sched_team_quota(f.s, 1, 0, &q), HPQ_EINVAL);
	q.guarantee.gpus = 0;
	q.sharing = (enum sched_sharing)7;
	assert_int_equal(sched_team_quota(f.s, 1, 0, &q), HPQ_EINVAL);
	assert_int_equal(sched_node_set(f.s, 0, 0, (struct hpq_res){-1, 0, 0}, true), HPQ_EINVAL);
	assert_int_equal(sched_node_set(f.s, UINT32_MAX, 0, fx_gpus(1), true), HPQ_EINVAL);
	assert_int_equal(sched_task_submit(f.s, &t), HPQ_EINVAL);
	t.nnodes = 1;
	t.per_node.mem = -5;
	assert_int_equal(sched_task_submit(f.s, &t), HPQ_EINVAL);
	t.per_node.mem = 5;
	t.team = UINT32_MAX;
	assert_int_equal(sched_task_submit(f.s, &t), HPQ_EINVAL);
	t.team = 1;
	assert_int_equal(sched_task_submit(f.s, &t), 0);
	assert_int_equal(sched_task_submit(f.s, &t), HPQ_EINVAL); /* already known */
	assert_int_equal(sched_node_remove(f.s, 3), HPQ_ENOTFOUND);
	sched_task_finish(f.s, &t, 5);
	assert_int_equal(t.state, SCHED_NONE);
	fx_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_within_guarantee_then_borrow_pct),
		cmocka_unit_test(test_borrow_abs),
		cmocka_unit_test(test_borrow_limit_zero_is_quota),
		cmocka_unit_test(test_lend_cannot_borrow),
		cmocka_unit_test(test_dont_lend),
		cmocka_unit_test(test_lend_limit),
		cmocka_unit_test(test_default_team_alone),
		cmocka_unit_test(test_default_team_borrows_idle),
		cmocka_unit_test(test_team_default_quota),
		cmocka_unit_test(test_ungoverned),
		cmocka_unit_test(test_unschedulable_node),
		cmocka_unit_test(test_largest_node_flips),
		cmocka_unit_test(test_gang),
		cmocka_unit_test(test_best_fit),
		cmocka_unit_test(test_capacity_checks_every_resource),
		cmocka_unit_test(test_queue_order_in_team),
		cmocka_unit_test(test_invalid_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
