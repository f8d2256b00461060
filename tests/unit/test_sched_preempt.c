/*
 * test_sched_preempt.c: preemption rules (docs/design.md §4, "Reclaim" and
 * "Priority preemption within a team").
 *
 * Reclaim: a team whose task fits in its unused guarantee preempts tasks on
 * borrowed compute in that pool (teams over guarantee only, lowest class,
 * least work lost, min-runtime respected), and the victim set is minimal.
 * Priority: only with preempt_own_lower, only lower classes, never
 * non-preemptible ones, and only when idle compute cannot serve the task.
 * While victims stop, the beneficiary holds its claim: no second round, no
 * stranger takes the freed capacity, and it can still be cancelled.
 */
#include "test_sched_fixture.h"

enum { BORROWER = 1, OWNER = 2, OTHER = 3 };

/* nnodes x 8 GPUs; OWNER guarantees owner_gpus; BORROWER borrows without limit. */
static void world(struct fx *f, uint32_t nnodes, int64_t owner_gpus, int64_t min_runtime)
{
	struct sched_quota owner = {.guarantee = fx_gpus(owner_gpus),
				    .sharing = SCHED_LEND_AND_BORROW, .borrow_limit_pct = 100};
	struct sched_quota borrower = {.sharing = SCHED_LEND_AND_BORROW, .has_borrow_abs = true,
				       .borrow_abs = {1000, 1000, 1000000}};
	struct sched_policy pol = {.idle = SCHED_IDLE_FCFS, .half_life_ms = 3600000,
				   .min_runtime_ms = min_runtime};

	fx_init(f, SCHED_IDLE_FCFS);
	sched_set_policy(f->s, &pol);
	fx_nodes(f, 0, nnodes, 0, 8);
	assert_int_equal(sched_team_quota(f->s, OWNER, 0, &owner), 0);
	assert_int_equal(sched_team_quota(f->s, BORROWER, 0, &borrower), 0);
}

/* Greedy takes v1 (newest, 4 GPUs on node a) then v2 (8 GPUs on node b);
 * v2 alone is enough, so v1 is dropped from the victim set. */
static void test_reclaim_minimal(void **state)
{
	struct fx f;

	(void)state;
	world(&f, 2, 8, 0);
	fx_submit(&f, 1, BORROWER, TRAINING, 1, 4);
	fx_cycle_expect(&f, "S1");
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S2");
	fx_submit(&f, 3, BORROWER, TRAINING, 1, 4);
	fx_cycle_expect(&f, "S3");
	assert_int_equal(f.t[1].nodes[0], f.t[3].nodes[0]);
	fx_submit(&f, 9, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P2>9r");
	assert_int_equal(f.t[2].state, SCHED_PREEMPTING);
	assert_int_equal(f.t[3].state, SCHED_RUNNING);
	fx_free(&f);
}

/* Lowest class first, whatever the start time. */
static void test_reclaim_lowest_class(void **state)
{
	struct fx f;

	(void)state;
	world(&f, 2, 8, 0);
	fx_submit(&f, 1, BORROWER, DATAPROC, 1, 8);
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S2 S1");
	fx_submit(&f, 9, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P1>9r");
	fx_free(&f);
}

/* Least work lost: the task with the newest checkpoint (or start) goes first. */
static void test_victim_least_work(void **state)
{
	struct fx f;

	(void)state;
	world(&f, 2, 8, 0);
	fx_submit(&f, 1, BORROWER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S1");
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S2");
	/* T1 started first but checkpointed after T2 started */
	f.now += 100;
	sched_task_checkpoint(f.s, &f.t[1], f.now);
	fx_submit(&f, 9, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P1>9r");
	fx_free(&f);
}

static void test_min_runtime(void **state)
{
	struct fx f;

	(void)state;
	world(&f, 2, 8, 1000);
	fx_submit(&f, 1, BORROWER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S1");
	f.now += 600;
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S2");
	fx_submit(&f, 9, OWNER, TRAINING, 1, 8);
	/* T2 is newer, but only T1 has run min-runtime */
	f.now += 500;
	fx_cycle_expect(&f, "P1>9r");
	fx_requeue(&f, 1);
	fx_cycle_expect(&f, "S9");
	fx_free(&f);
}

/* Nothing has run min-runtime yet: the owner waits, and gets its guarantee
 * once the time has passed, without any other event. */
static void test_min_runtime_retry(void **state)
{
	struct fx f;

	(void)state;
	world(&f, 2, 8, 1000);
	fx_submit(&f, 1, BORROWER, TRAINING, 1, 8);
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S1 S2");
	assert_int_equal(sched_next_wakeup(f.s), INT64_MAX);
	fx_submit(&f, 9, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "");
	fx_reason(&f, 9, SCHED_REASON_CAPACITY);
	assert_int_equal(sched_next_wakeup(f.s), f.t[1].start_ms + 1000);
	fx_cycle_expect(&f, "");
	f.now = sched_next_wakeup(f.s) - 10;
	fx_cycle_expect(&f, "P2>9r");
	assert_int_equal(sched_next_wakeup(f.s), INT64_MAX);
	fx_free(&f);
}

static void test_non_preemptible(void **state)
{
	struct fx f;

	(void)state;
	world(&f, 2, 8, 0);
	fx_submit(&f, 1, BORROWER, INFERENCE, 1, 8);
	fx_submit(&f, 2, BORROWER, INFERENCE, 1, 8);
	fx_cycle_expect(&f, "S1 S2");
	fx_submit(&f, 9, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "");
	fx_reason(&f, 9, SCHED_REASON_CAPACITY);
	fx_free(&f);
}

/* Only teams over their guarantee lose tasks, and never below it. */
static void test_reclaim_only_borrowed(void **state)
{
	struct fx f;
	struct sched_quota other = {.guarantee = fx_gpus(8), .sharing = SCHED_LEND_AND_BORROW,
				    .borrow_limit_pct = 100};

	(void)state;
	world(&f, 3, 8, 0);
	assert_int_equal(sched_team_quota(f.s, OTHER, 0, &other), 0);
	fx_submit(&f, 1, OTHER, DATAPROC, 1, 8);   /* within OTHER's guarantee */
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 8);
	fx_submit(&f, 3, BORROWER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S1 S2 S3");
	fx_submit(&f, 9, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P3>9r");
	fx_free(&f);
}

static void test_reclaim_gang(void **state)
{
	struct fx f;

	(void)state;
	world(&f, 3, 16, 0);
	fx_submit(&f, 1, BORROWER, TRAINING, 1, 8);
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 8);
	fx_submit(&f, 3, BORROWER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S1 S2 S3");
	fx_submit(&f, 9, OWNER, TRAINING, 2, 8);
	fx_cycle_expect(&f, "P3>9r P2>9r");
	fx_requeue(&f, 3);
	fx_cycle_expect(&f, "");
	fx_requeue(&f, 2);
	fx_cycle_expect(&f, "S9");
	assert_int_not_equal(f.t[9].nodes[0], f.t[9].nodes[1]);
	assert_int_not_equal(f.t[9].nodes[0], f.t[1].nodes[0]);
	fx_free(&f);
}

/* While its victims stop, the beneficiary neither preempts again nor loses
 * the freed capacity to another team's work that would fit there. */
static void test_beneficiary_keeps_claim(void **state)
{
	struct fx f;
	struct sched_quota other = {.guarantee = fx_gpus(4), .sharing = SCHED_LEND_AND_BORROW};

	(void)state;
	world(&f, 2, 8, 0);
	assert_int_equal(sched_team_quota(f.s, OTHER, 0, &other), 0);
	fx_submit(&f, 1, BORROWER, TRAINING, 1, 8);
	fx_submit(&f, 2, BORROWER, TRAINING, 1, 4);
	fx_submit(&f, 3, BORROWER, TRAINING, 1, 4);
	fx_cycle_expect(&f, "S1 S2 S3");
	fx_submit(&f, 9, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P3>9r P2>9r");
	fx_reason(&f, 9, SCHED_REASON_PREEMPTING_FOR);
	fx_cycle_expect(&f, "");
	fx_requeue(&f, 3);
	/* OTHER's task within its guarantee would fit where T3 was: it has to
	 * reclaim elsewhere instead */
	fx_submit(&f, 4, OTHER, INFERENCE, 1, 4);
	fx_cycle_expect(&f, "P1>4r");
	assert_int_not_equal(f.t[1].nodes[0], f.t[2].nodes[0]);
	/* T2 exits on its own during its grace period */
	fx_finish(&f, 2);
	fx_cycle_expect(&f, "S9");
	/* T4 where T1 was; T3 borrows the last 4 idle GPUs */
	fx_requeue(&f, 1);
	fx_cycle_expect(&f, "S4 S3");
	fx_reason(&f, 1, SCHED_REASON_NO_IDLE);
	fx_free(&f);
}

/* A beneficiary cancelled while waiting: its victims still stop, they no
 * longer point at it, and the capacity goes back to everyone. */
static void test_beneficiary_cancelled(void **state)
{
	struct fx f;

	(void)state;
	world(&f, 1, 8, 0);
	fx_submit(&f, 1, BORROWER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S1");
	fx_submit(&f, 9, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P1>9r");
	fx_finish(&f, 9);
	assert_int_equal(f.t[1].state, SCHED_PREEMPTING);
	assert_null(f.t[1].preempting_for);
	fx_cycle_expect(&f, "");
	fx_requeue(&f, 1);
	fx_cycle_expect(&f, "S1");
	fx_free(&f);
}

/* The seed's T6/T5 step, and the limits of priority preemption. */
static void prio_world(struct fx *f, bool preempt_own)
{
	struct sched_quota q = {.guarantee = fx_gpus(8), .sharing = SCHED_LEND_AND_BORROW,
				.borrow_limit_pct = 0};

	fx_init(f, SCHED_IDLE_FCFS);
	fx_nodes(f, 0, 2, 0, 8);
	assert_int_equal(sched_team_quota(f->s, OWNER, 0, &q), 0);
	assert_int_equal(sched_team_set(f->s, OWNER, 1, preempt_own), 0);
}

static void test_priority_preemption(void **state)
{
	struct fx f;
	enum { PINNED = 4 };

	(void)state;
	prio_world(&f, true);
	assert_int_equal(sched_class_set(f.s, PINNED, 3, false), 0);
	fx_submit(&f, 1, OWNER, PINNED, 1, 4);
	fx_submit(&f, 2, OWNER, FINETUNE, 1, 4);
	fx_cycle_expect(&f, "S2 S1");
	/* same class, or lower but not preemptible: waits */
	fx_submit(&f, 3, OWNER, FINETUNE, 1, 4);
	fx_cycle_expect(&f, "");
	fx_reason(&f, 3, SCHED_REASON_QUOTA);
	/* higher class: takes the lowest preemptible one */
	fx_submit(&f, 4, OWNER, TRAINING, 1, 4);
	fx_cycle_expect(&f, "P2>4p");
	fx_requeue(&f, 2);
	fx_cycle_expect(&f, "S4");
	/* never a task of the same or a higher class */
	fx_submit(&f, 5, OWNER, TRAINING, 1, 4);
	fx_cycle_expect(&f, "");
	fx_submit(&f, 6, OWNER, INFERENCE, 1, 4);
	fx_cycle_expect(&f, "P4>6p");
	fx_free(&f);
}

static void test_priority_needs_preempt_own(void **state)
{
	struct fx f;

	(void)state;
	prio_world(&f, false);
	fx_submit(&f, 1, OWNER, DATAPROC, 1, 8);
	fx_cycle_expect(&f, "S1");
	fx_submit(&f, 2, OWNER, INFERENCE, 1, 8);
	fx_cycle_expect(&f, "");
	fx_reason(&f, 2, SCHED_REASON_QUOTA);
	fx_free(&f);
}

/* Idle compute that can serve the task comes first: nothing is preempted. */
static void test_priority_only_when_idle_cannot(void **state)
{
	struct fx f;
	struct sched_quota q = {.guarantee = fx_gpus(8), .sharing = SCHED_LEND_AND_BORROW,
				.borrow_limit_pct = 100};

	(void)state;
	prio_world(&f, true);
	assert_int_equal(sched_team_quota(f.s, OWNER, 0, &q), 0);
	fx_submit(&f, 1, OWNER, DATAPROC, 1, 8);
	fx_cycle_expect(&f, "S1");
	fx_submit(&f, 2, OWNER, INFERENCE, 1, 8);
	fx_cycle_expect(&f, "S2");
	/* at the borrow limit now: the next one preempts */
	fx_submit(&f, 3, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P1>3p");
	fx_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reclaim_minimal),
		cmocka_unit_test(test_reclaim_lowest_class),
		cmocka_unit_test(test_victim_least_work),
		cmocka_unit_test(test_min_runtime),
		cmocka_unit_test(test_min_runtime_retry),
		cmocka_unit_test(test_non_preemptible),
		cmocka_unit_test(test_reclaim_only_borrowed),
		cmocka_unit_test(test_reclaim_gang),
		cmocka_unit_test(test_beneficiary_keeps_claim),
		cmocka_unit_test(test_beneficiary_cancelled),
		cmocka_unit_test(test_priority_preemption),
		cmocka_unit_test(test_priority_needs_preempt_own),
		cmocka_unit_test(test_priority_only_when_idle_cannot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
