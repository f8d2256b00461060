/*
 * test_sched_queue.c: the queue itself (docs/design.md §4, "Queue order").
 *
 * Best-effort FIFO: a task that cannot fit does not block smaller ones, but
 * the oldest blocked task of the highest class holds a reservation on the
 * nodes it will get, so a stream of small tasks cannot starve it. Requeued
 * tasks keep their submit time or go behind (requeue-order = eviction).
 * Also: cancelling pending work, plans that lose their node, adopting
 * running tasks after a restart, class weight changes.
 */
#include "test_sched_fixture.h"

enum { BORROWER = 1, OWNER = 2 };

static void world(struct fx *f, uint32_t nnodes, bool eviction)
{
	struct sched_quota owner = {.guarantee = fx_gpus(8), .sharing = SCHED_LEND_AND_BORROW};
	struct sched_quota borrower = {.sharing = SCHED_LEND_AND_BORROW, .has_borrow_abs = true,
				       .borrow_abs = {1000, 1000, 1000000}};
	struct sched_policy pol = {.idle = SCHED_IDLE_FCFS, .half_life_ms = 3600000,
				   .requeue_by_eviction = eviction};

	fx_init(f, SCHED_IDLE_FCFS);
	sched_set_policy(f->s, &pol);
	fx_nodes(f, 0, nnodes, 0, 8);
	assert_int_equal(sched_team_quota(f->s, OWNER, 0, &owner), 0);
	assert_int_equal(sched_team_quota(f->s, BORROWER, 0, &borrower), 0);
}

/* No quotas at all (the default team alone, say): reservations are about nodes. */
static void test_reservation(void **state)
{
	struct fx f;
	uint32_t free4;

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	fx_nodes(&f, 0, 3, 0, 8);
	fx_submit(&f, 1, BORROWER, TRAINING, 1, 6);
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 6);
	fx_submit(&f, 3, BORROWER, TRAINING, 1, 4);
	fx_cycle_expect(&f, "S1 S2 S3");
	free4 = f.t[3].nodes[0];
	/* free: 2, 2, 4. The 8-GPU task reserves the node with 4 free; the
	 * small tasks behind it run elsewhere, not there */
	fx_submit(&f, 10, BORROWER, TRAINING, 1, 8);
	fx_submit(&f, 11, BORROWER, FINETUNE, 1, 2);
	fx_submit(&f, 12, OWNER, FINETUNE, 1, 2);
	fx_submit(&f, 13, BORROWER, FINETUNE, 1, 2);
	fx_cycle_expect(&f, "S11 S12");
	assert_int_not_equal(f.t[11].nodes[0], free4);
	assert_int_not_equal(f.t[12].nodes[0], free4);
	fx_reason(&f, 13, SCHED_REASON_PRIORITY);
	fx_reason(&f, 10, SCHED_REASON_CAPACITY);
	/* work that outranks the reservation may use the reserved node */
	fx_submit(&f, 14, OWNER, INFERENCE, 1, 2);
	fx_cycle_expect(&f, "S14");
	assert_int_equal(f.t[14].nodes[0], free4);
	/* capacity accumulates there until the big task fits */
	fx_finish(&f, 3);
	fx_cycle_expect(&f, "");
	fx_finish(&f, 14);
	fx_cycle_expect(&f, "S10");
	assert_int_equal(f.t[10].nodes[0], free4);
	fx_free(&f);
}

/* With quotas, the reservation also earmarks the idle compute its task
 * will borrow: lower-ranked borrowers cannot eat it. */
static void test_reservation_earmarks_idle(void **state)
{
	struct fx f;
	struct sched_quota other = {.sharing = SCHED_LEND_AND_BORROW, .has_borrow_abs = true,
				    .borrow_abs = {1000, 1000, 1000000}};

	(void)state;
	world(&f, 3, false);
	assert_int_equal(sched_team_quota(f.s, 3, 0, &other), 0);
	fx_submit(&f, 1, BORROWER, TRAINING, 1, 6);
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 6);
	fx_submit(&f, 3, BORROWER, TRAINING, 1, 6);
	fx_cycle_expect(&f, "S1 S2 S3");
	/* 18 of 24 idle GPUs borrowed, 2 free on each node */
	fx_submit(&f, 10, 3, TRAINING, 1, 4);
	fx_submit(&f, 11, 3, FINETUNE, 1, 2);
	fx_submit(&f, 12, 3, FINETUNE, 1, 2);
	fx_cycle_expect(&f, "S11");
	fx_reason(&f, 12, SCHED_REASON_PRIORITY);
	fx_submit(&f, 13, BORROWER, INFERENCE, 1, 2);
	fx_cycle_expect(&f, "S13");
	fx_finish(&f, 1);
	fx_cycle_expect(&f, "S10 S12");
	fx_free(&f);
}

/* The reservation goes where capacity appears, and ends with its task. */
static void test_reservation_follows_capacity(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	fx_nodes(&f, 0, 2, 0, 8);
	fx_submit(&f, 1, BORROWER, TRAINING, 1, 6);
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 4);
	fx_cycle_expect(&f, "S1 S2");
	fx_submit(&f, 10, BORROWER, TRAINING, 1, 8);
	fx_submit(&f, 11, BORROWER, FINETUNE, 1, 2);
	/* T2's node (4 free) is reserved; T11 fits beside T1 */
	fx_cycle_expect(&f, "S11");
	assert_int_equal(f.t[11].nodes[0], f.t[1].nodes[0]);
	fx_finish(&f, 1);
	fx_finish(&f, 11);
	fx_cycle_expect(&f, "S10");
	/* cancelling the task that holds the reservation frees its nodes */
	fx_submit(&f, 12, BORROWER, TRAINING, 1, 8);
	fx_submit(&f, 13, BORROWER, FINETUNE, 1, 2);
	fx_cycle_expect(&f, "");
	fx_reason(&f, 13, SCHED_REASON_PRIORITY);
	fx_finish(&f, 12);
	fx_cycle_expect(&f, "S13");
	fx_free(&f);
}

/* X is evicted after Y was submitted: submit order puts X first again,
 * eviction order puts it behind Y. */
static void requeue_order(bool eviction, const char *want)
{
	struct fx f;

	world(&f, 1, eviction);
	assert_int_equal(sched_team_set(f.s, OWNER, 1, true), 0);
	fx_submit(&f, 1, OWNER, FINETUNE, 1, 8);
	fx_cycle_expect(&f, "S1");
	fx_submit(&f, 2, OWNER, FINETUNE, 1, 8);
	fx_submit(&f, 3, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P1>3p");
	fx_requeue(&f, 1);
	fx_cycle_expect(&f, "S3");
	fx_finish(&f, 3);
	fx_cycle_expect(&f, want);
	fx_free(&f);
}

static void test_requeue_order(void **state)
{
	(void)state;
	requeue_order(false, "S1");
	requeue_order(true, "S2");
}

static void test_cancel_pending(void **state)
{
	struct fx f;

	(void)state;
	world(&f, 1, false);
	fx_submit(&f, 1, OWNER, TRAINING, 1, 8);
	fx_submit(&f, 2, OWNER, TRAINING, 1, 8);
	fx_submit(&f, 3, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S1");
	fx_finish(&f, 2);
	assert_int_equal(f.t[2].state, SCHED_NONE);
	fx_finish(&f, 1);
	fx_cycle_expect(&f, "S3");
	fx_free(&f);
}

/* A beneficiary whose promised node goes away plans again elsewhere. */
static void test_plan_loses_node(void **state)
{
	struct fx f;

	(void)state;
	world(&f, 2, false);
	fx_submit(&f, 1, BORROWER, TRAINING, 1, 8);
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S1 S2");
	fx_submit(&f, 9, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P2>9r");
	assert_int_equal(sched_node_set(f.s, f.t[2].nodes[0], 0,
					(struct hpq_res){8, 64, 512 * 1024}, false), 0);
	fx_cycle_expect(&f, "P1>9r");
	fx_requeue(&f, 2);
	fx_cycle_expect(&f, "");
	fx_requeue(&f, 1);
	fx_cycle_expect(&f, "S9");
	fx_free(&f);
}

static void test_adopt(void **state)
{
	struct fx f;
	struct sched_task *t = &f.t[1];
	uint32_t nodes[2] = {0, 1}, bad[2] = {0, 0};
	struct hpq_res cap, fr;

	(void)state;
	world(&f, 3, false);
	*t = (struct sched_task){.id = 1, .submit_ms = 5, .team = OWNER, .class_id = TRAINING,
				 .nnodes = 2, .per_node = fx_gpus(4)};
	assert_int_equal(sched_task_adopt(f.s, t, bad, 5), HPQ_EINVAL);
	nodes[1] = 77;
	assert_int_equal(sched_task_adopt(f.s, t, nodes, 5), HPQ_EINVAL);
	nodes[1] = 1;
	assert_int_equal(sched_task_adopt(f.s, t, nodes, 5), 0);
	assert_int_equal(t->state, SCHED_RUNNING);
	assert_int_equal(t->start_ms, 5);
	assert_int_equal(fx_used(&f, OWNER), 8);
	assert_int_equal(sched_pool_capacity(f.s, 0, &cap, &fr), 0);
	assert_int_equal(cap.gpus, 24);
	assert_int_equal(fr.gpus, 16);
	/* the owner is at its guarantee: its next task borrows */
	fx_submit(&f, 2, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "");
	fx_reason(&f, 2, SCHED_REASON_QUOTA);
	fx_finish(&f, 1);
	fx_cycle_expect(&f, "S2");
	fx_free(&f);
}

static void test_class_weight_change(void **state)
{
	struct fx f;

	(void)state;
	world(&f, 1, false);
	fx_submit(&f, 1, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S1");
	fx_submit(&f, 2, OWNER, TRAINING, 1, 8);
	fx_submit(&f, 3, OWNER, DATAPROC, 1, 8);
	assert_int_equal(sched_class_set(f.s, DATAPROC, 20, true), 0);
	fx_finish(&f, 1);
	fx_cycle_expect(&f, "S3");
	fx_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reservation),
		cmocka_unit_test(test_reservation_earmarks_idle),
		cmocka_unit_test(test_reservation_follows_capacity),
		cmocka_unit_test(test_requeue_order),
		cmocka_unit_test(test_cancel_pending),
		cmocka_unit_test(test_plan_loses_node),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_class_weight_change),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
