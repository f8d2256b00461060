/*
 * test_sched_reclaim.c: reclaim picks its victims per node (docs/design.md §4,
 * "Reclaim").
 *
 * A team that lends only down to its own guarantee can give back just part
 * of what it runs. Taking victims in plain victim order across the pool may
 * spend that part on tasks spread over several nodes, so that no node (or
 * not enough nodes for a gang) becomes free although another set of victims
 * would do. Victim order decides which node is cheapest to empty, not which
 * victims are taken anywhere. The victims' order is set by their newest
 * checkpoint (least work lost goes first).
 */
#include "test_sched_fixture.h"

enum { BORROWER = 1, OWNER = 2 };

/* nnodes x 8 GPUs; OWNER and BORROWER guarantee what they are given; BORROWER
 * borrows without limit beyond its own guarantee. */
static void world(struct fx *f, uint32_t nnodes, int64_t owner_gpus, int64_t borrower_gpus)
{
	struct sched_quota owner = {.guarantee = fx_gpus(owner_gpus),
				    .sharing = SCHED_LEND_AND_BORROW, .borrow_limit_pct = 100};
	struct sched_quota borrower = {.guarantee = fx_gpus(borrower_gpus),
				       .sharing = SCHED_LEND_AND_BORROW, .has_borrow_abs = true,
				       .borrow_abs = {1000, 1000, 1000000}};

	fx_init(f, SCHED_IDLE_FCFS);
	fx_nodes(f, 0, nnodes, 0, 8);
	assert_int_equal(sched_team_quota(f->s, OWNER, 0, &owner), 0);
	assert_int_equal(sched_team_quota(f->s, BORROWER, 0, &borrower), 0);
}

/* Starts BORROWER's 4-GPU tasks 1..n, two per node, then checkpoints them in
 * the order given: the last one checkpointed is the first victim. */
static void fill(struct fx *f, uint32_t n, const uint32_t *ckpt_order)
{
	uint32_t i;

	for (i = 1; i <= n; i++)
		fx_submit(f, i, BORROWER, TRAINING, 1, 4);
	fx_cycle(f);
	for (i = 1; i <= n; i++)
		assert_int_equal(f->t[i].state, SCHED_RUNNING);
	for (i = 0; i < n; i++) {
		f->now += 10;
		sched_task_checkpoint(f->s, &f->t[ckpt_order[i]], f->now);
	}
	f->now += 10;
}

/*
 * Two nodes: tasks 1, 2 on one, 3, 4 on the other; BORROWER may lose 8 GPUs.
 * Victim order 1, 3, 2, 4: plain greedy takes 1 and 3 (one per node) and
 * BORROWER is back at its guarantee, so nothing fits. Emptying node of 1
 * costs 1 and 2, node of 3 costs 3 and 4: the first is cheaper.
 */
static void test_reclaim_cross_node(void **state)
{
	static const uint32_t order[] = {4, 2, 3, 1};
	struct fx f;
	uint32_t node1;

	(void)state;
	world(&f, 2, 8, 8);
	fill(&f, 4, order);
	node1 = f.t[1].nodes[0];
	assert_int_equal(f.t[1].nodes[0], f.t[2].nodes[0]);
	assert_int_equal(f.t[3].nodes[0], f.t[4].nodes[0]);
	assert_int_not_equal(f.t[1].nodes[0], f.t[3].nodes[0]);
	fx_submit(&f, 9, OWNER, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P1>9r P2>9r");
	assert_int_equal(f.t[3].state, SCHED_RUNNING);
	assert_int_equal(f.t[4].state, SCHED_RUNNING);
	fx_requeue(&f, 1);
	fx_cycle_expect(&f, "");
	fx_requeue(&f, 2);
	fx_cycle_expect(&f, "S9");
	assert_int_equal(f.t[9].nodes[0], node1);
	fx_free(&f);
}

/*
 * Three nodes, a gang of two whole nodes; BORROWER may lose 16 GPUs.
 * Victim order 1, 3, 5, 2, 4, 6: greedy takes 1, 3, 5, 2, empties one node
 * and stops at the guarantee. The two cheapest nodes are those of 1 and 3.
 */
static void test_reclaim_gang_cross_node(void **state)
{
	static const uint32_t order[] = {6, 4, 2, 5, 3, 1};
	struct fx f;

	(void)state;
	world(&f, 3, 16, 8);
	fill(&f, 6, order);
	fx_submit(&f, 9, OWNER, TRAINING, 2, 8);
	fx_cycle_expect(&f, "P1>9r P3>9r P2>9r P4>9r");
	assert_int_equal(f.t[5].state, SCHED_RUNNING);
	assert_int_equal(f.t[6].state, SCHED_RUNNING);
	fx_requeue(&f, 1);
	fx_requeue(&f, 2);
	fx_requeue(&f, 3);
	fx_cycle_expect(&f, "");
	fx_requeue(&f, 4);
	fx_cycle_expect(&f, "S9");
	assert_int_not_equal(f.t[9].nodes[0], f.t[5].nodes[0]);
	assert_int_not_equal(f.t[9].nodes[1], f.t[5].nodes[0]);
	fx_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reclaim_cross_node),
		cmocka_unit_test(test_reclaim_gang_cross_node),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
