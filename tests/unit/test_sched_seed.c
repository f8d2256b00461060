/*
 * test_sched_seed.c: the worked scenario of docs/design.md §4, replayed on the pure
 * dispatcher with the exact decisions it must take at every step.
 *
 * Pool of 2 nodes x 8 GPUs; team1 and team2 each guarantee 8 GPUs,
 * lend-and-borrow, borrow limit 100%. team1 is idle. team2 runs T1, T2
 * within its guarantee and T3, T5 on team1's idle compute; T6 replaces T5
 * (priority within the team, team2 being at its borrow limit); team1's T7
 * reclaims its guarantee from the newest borrowed tasks, T6 then T3; as
 * capacity frees, T3, T6 and T5 resume in that order.
 */
#include "test_sched_fixture.h"

enum { TEAM1 = 1, TEAM2 = 2 };

static void seed_setup(struct fx *f)
{
	fx_init(f, SCHED_IDLE_FAIR_SHARE);
	fx_nodes(f, 0, 2, 0, 8);
	fx_team(f, TEAM1, 0, 8, 100);
	fx_team(f, TEAM2, 0, 8, 100);
	assert_int_equal(sched_team_set(f->s, TEAM1, 1, true), 0);
	assert_int_equal(sched_team_set(f->s, TEAM2, 1, true), 0);
}

static void test_seed(void **state)
{
	struct fx f;
	struct sched_usage u;
	uint32_t t3node;

	(void)state;
	seed_setup(&f);

	/* T1, T2 within team2's guarantee, best fit: the same node */
	fx_submit(&f, 1, TEAM2, TRAINING, 1, 4);
	fx_submit(&f, 2, TEAM2, TRAINING, 1, 4);
	fx_cycle_expect(&f, "S1 S2");
	assert_int_equal(f.t[1].nodes[0], f.t[2].nodes[0]);

	/* T3 and T5 borrow team1's idle guarantee */
	fx_submit(&f, 3, TEAM2, TRAINING, 1, 4);
	fx_submit(&f, 5, TEAM2, FINETUNE, 1, 4);
	fx_cycle_expect(&f, "S3 S5");
	assert_int_equal(f.t[3].nodes[0], f.t[5].nodes[0]);
	t3node = f.t[3].nodes[0];
	assert_int_equal(sched_team_usage(f.s, TEAM2, 0, &u), 0);
	assert_int_equal(u.used.gpus, 16);
	assert_int_equal(u.borrowed.gpus, 8);
	assert_int_equal(sched_team_usage(f.s, TEAM1, 0, &u), 0);
	assert_int_equal(u.lent.gpus, 8);

	/* T6: nothing free, team2 at its borrow limit: T5 makes room */
	fx_submit(&f, 6, TEAM2, TRAINING, 1, 4);
	fx_cycle_expect(&f, "P5>6p");
	assert_int_equal(f.t[5].state, SCHED_PREEMPTING);
	assert_ptr_equal(f.t[5].preempting_for, &f.t[6]);
	fx_reason(&f, 6, SCHED_REASON_PREEMPTING_FOR);
	/* no second round while T5 stops, and nobody takes T6's place */
	fx_cycle_expect(&f, "");
	fx_requeue(&f, 5);
	fx_cycle_expect(&f, "S6");
	assert_int_equal(f.t[6].nodes[0], t3node);
	fx_reason(&f, 5, SCHED_REASON_BORROW_LIMIT);

	/* T7: team1's guarantee is lent out; the newest borrowed tasks go */
	fx_submit(&f, 7, TEAM1, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P6>7r P3>7r");
	fx_reason(&f, 7, SCHED_REASON_PREEMPTING_FOR);
	fx_requeue(&f, 6);
	fx_cycle_expect(&f, "");
	fx_requeue(&f, 3);
	fx_cycle_expect(&f, "S7");
	assert_int_equal(f.t[7].nodes[0], t3node);
	fx_reason(&f, 3, SCHED_REASON_NO_IDLE);
	fx_reason(&f, 6, SCHED_REASON_NO_IDLE);
	fx_reason(&f, 5, SCHED_REASON_NO_IDLE);

	/* capacity frees: T3, T6, then T5, each within team2's guarantee */
	fx_finish(&f, 1);
	fx_cycle_expect(&f, "S3");
	fx_finish(&f, 2);
	fx_cycle_expect(&f, "S6");
	fx_finish(&f, 3);
	fx_cycle_expect(&f, "S5");
	fx_finish(&f, 7);
	fx_cycle_expect(&f, "");
	assert_int_equal(fx_used(&f, TEAM2), 8);
	fx_free(&f);
}

/* The same story with requeue-order = eviction: T6 and T3 were evicted after
 * T5, so T5 (evicted first) ... still comes last: it is of a lower class. */
static void test_seed_eviction_order(void **state)
{
	struct fx f;
	struct sched_policy pol = {.idle = SCHED_IDLE_FAIR_SHARE, .half_life_ms = 3600000,
				   .requeue_by_eviction = true};

	(void)state;
	seed_setup(&f);
	sched_set_policy(f.s, &pol);
	fx_submit(&f, 1, TEAM2, TRAINING, 1, 4);
	fx_submit(&f, 2, TEAM2, TRAINING, 1, 4);
	fx_submit(&f, 3, TEAM2, TRAINING, 1, 4);
	fx_submit(&f, 5, TEAM2, FINETUNE, 1, 4);
	fx_cycle_expect(&f, "S1 S2 S3 S5");
	fx_submit(&f, 6, TEAM2, TRAINING, 1, 4);
	fx_cycle_expect(&f, "P5>6p");
	fx_requeue(&f, 5);
	fx_cycle_expect(&f, "S6");
	fx_submit(&f, 7, TEAM1, TRAINING, 1, 8);
	fx_cycle_expect(&f, "P6>7r P3>7r");
	/* evicted in the order T3, T6: with eviction order T3 goes first */
	fx_requeue(&f, 3);
	fx_requeue(&f, 6);
	fx_cycle_expect(&f, "S7");
	fx_finish(&f, 1);
	fx_cycle_expect(&f, "S3");
	fx_finish(&f, 2);
	fx_cycle_expect(&f, "S6");
	fx_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_seed_eviction_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
