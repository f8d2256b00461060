/*
 * test_sched_idle.c: who gets idle compute (docs/design.md §4, "Idle allocation").
 *
 * In every test a lender team guarantees the whole pool and runs nothing,
 * so everything teams A and B run is borrowed from its idle guarantee:
 * fcfs (class weight, then submit time, across teams) against fair share
 * (lowest weighted dominant share first, ties by more pending, then the
 * oldest pending), team weights, weight 0, the decay of borrow history, and
 * no cap of one start per team per cycle. The last tests have no lender:
 * in a pool where nobody holds a guarantee all of it is idle compute, and
 * the same policy and weights share it.
 */
#include "test_sched_fixture.h"

enum { A = 1, B = 2, LENDER = 9 };

static void world(struct fx *f, enum sched_idle_policy idle, uint32_t nnodes, int64_t half_life)
{
	struct sched_quota lender = {.guarantee = fx_gpus(8 * nnodes),
				     .sharing = SCHED_LEND_AND_BORROW};
	struct sched_quota borrower = {.sharing = SCHED_LEND_AND_BORROW, .has_borrow_abs = true,
				       .borrow_abs = {1000, 1000, 1000000}};
	struct sched_policy pol = {.idle = idle, .half_life_ms = half_life};

	fx_init(f, idle);
	sched_set_policy(f->s, &pol);
	fx_nodes(f, 0, nnodes, 0, 8);
	assert_int_equal(sched_team_quota(f->s, LENDER, 0, &lender), 0);
	assert_int_equal(sched_team_quota(f->s, A, 0, &borrower), 0);
	assert_int_equal(sched_team_quota(f->s, B, 0, &borrower), 0);
}

static void submit_mix(struct fx *f)
{
	fx_submit(f, 11, A, TRAINING, 1, 8);
	fx_submit(f, 12, A, TRAINING, 1, 8);
	fx_submit(f, 21, B, INFERENCE, 1, 8);
	fx_submit(f, 22, B, FINETUNE, 1, 8);
	fx_submit(f, 23, B, TRAINING, 1, 8);
}

static void test_fcfs(void **state)
{
	struct fx f;

	(void)state;
	world(&f, SCHED_IDLE_FCFS, 4, 3600000);
	submit_mix(&f);
	/* class weight, then submit time, whatever the team */
	fx_cycle_expect(&f, "S21 S11 S12 S23");
	fx_reason(&f, 22, SCHED_REASON_NO_IDLE);
	fx_free(&f);
}

static void test_fair_share(void **state)
{
	struct fx f;

	(void)state;
	world(&f, SCHED_IDLE_FAIR_SHARE, 4, 3600000);
	submit_mix(&f);
	/* both at 0: B has more pending; then A (0 < 1/4); tie at 1/4: B has
	 * more pending; then A. B starts twice in one cycle: no cap. */
	fx_cycle_expect(&f, "S21 S11 S23 S12");
	fx_free(&f);
}

static void test_fair_share_weights(void **state)
{
	struct fx f;

	(void)state;
	world(&f, SCHED_IDLE_FAIR_SHARE, 4, 3600000);
	assert_int_equal(sched_team_set(f.s, A, 3, false), 0);
	assert_int_equal(sched_team_set(f.s, B, 1, false), 0);
	fx_submit(&f, 11, A, TRAINING, 1, 8);
	fx_submit(&f, 12, A, TRAINING, 1, 8);
	fx_submit(&f, 13, A, TRAINING, 1, 8);
	fx_submit(&f, 14, A, TRAINING, 1, 8);
	fx_submit(&f, 21, B, INFERENCE, 1, 8);
	fx_submit(&f, 22, B, TRAINING, 1, 8);
	fx_submit(&f, 23, B, TRAINING, 1, 8);
	/* A: 0, then 1/12, 2/12, 3/12 against B's 1/4 after its first */
	fx_cycle_expect(&f, "S11 S21 S12 S13");
	fx_free(&f);
}

static void test_weight_zero_borrows_last(void **state)
{
	struct fx f;

	(void)state;
	world(&f, SCHED_IDLE_FAIR_SHARE, 4, 3600000);
	assert_int_equal(sched_team_set(f.s, A, 0, false), 0);
	fx_submit(&f, 11, A, INFERENCE, 1, 8);
	fx_submit(&f, 12, A, INFERENCE, 1, 8);
	fx_submit(&f, 13, A, INFERENCE, 1, 8);
	fx_submit(&f, 21, B, DATAPROC, 1, 8);
	fx_submit(&f, 22, B, DATAPROC, 1, 8);
	fx_submit(&f, 23, B, DATAPROC, 1, 8);
	fx_cycle_expect(&f, "S21 S22 S23 S11");
	fx_free(&f);
}

static void test_ties(void **state)
{
	struct fx f;

	(void)state;
	world(&f, SCHED_IDLE_FAIR_SHARE, 1, 3600000);
	/* equal share and pending count: the oldest pending task first */
	fx_submit(&f, 21, B, TRAINING, 1, 8);
	fx_submit(&f, 11, A, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S21");
	fx_finish(&f, 21);
	/* B now has history, so A goes first even with fewer pending */
	fx_submit(&f, 22, B, TRAINING, 1, 8);
	fx_submit(&f, 23, B, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S11");
	fx_free(&f);
}

/*
 * share = (borrowed + decayed) / idle, over x = dt/h half-lives decayed
 * u <- u 2^-x + borrowed (1 - 2^-x) / ln 2 (the integral of borrowed,
 * halved every half-life). A borrows 16 of 16 idle GPUs for one half-life
 * and stops (u_A = 8 / ln 2 = 11.5). B then borrows 8 and keeps it; x
 * half-lives later A and B each want 8 more: share_A = 2^-x / (2 ln 2),
 * share_B = 1/2 + (1 - 2^-x) / (2 ln 2). B wins below x = 0.24, A above.
 */
static void decay_race(double x, const char *want)
{
	const int64_t h = 100000;
	struct fx f;

	world(&f, SCHED_IDLE_FAIR_SHARE, 2, h);
	fx_submit(&f, 11, A, TRAINING, 1, 8);
	fx_submit(&f, 12, A, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S11 S12");
	f.now += h;
	fx_finish(&f, 11);
	f.now -= 10;
	fx_finish(&f, 12);
	fx_submit(&f, 21, B, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S21");
	f.now += (int64_t)(x * (double)h);
	fx_submit(&f, 13, A, TRAINING, 1, 8);
	fx_submit(&f, 22, B, TRAINING, 1, 8);
	fx_cycle_expect(&f, want);
	fx_free(&f);
}

static void test_decay(void **state)
{
	(void)state;
	decay_race(0.15, "S22");
	decay_race(0.35, "S13");
}

/*
 * The history is the same however often it is brought up to date. A and B
 * each borrow 8 GPUs from the same moment; B stops after 5 half-lives, A
 * after 6, and meanwhile A's quota is set again (unchanged, as any `hpq
 * team set` does) every half of a half-life. A borrowed more, and more
 * recently: B goes first (u_A = 8 (1 - 2^-6) / ln 2 = 11.4 against u_B =
 * 8 (1 - 2^-5) / ln 2 / 2 = 5.6). Summing borrowed x dt/h per step instead
 * made B's one step of 5 half-lives 40 (20 once decayed) and A's twelve
 * small ones 13.4: A went first.
 */
static void test_decay_steps(void **state)
{
	const int64_t h = 100000;
	struct sched_quota borrower = {.sharing = SCHED_LEND_AND_BORROW, .has_borrow_abs = true,
				       .borrow_abs = {1000, 1000, 1000000}};
	struct fx f;
	int i;

	(void)state;
	world(&f, SCHED_IDLE_FAIR_SHARE, 2, h);
	fx_submit(&f, 11, A, TRAINING, 1, 8);
	fx_submit(&f, 21, B, TRAINING, 1, 8);
	fx_cycle(&f);
	assert_int_equal(f.nd, 2);
	for (i = 1; i <= 12; i++) {
		f.now += h / 2 - 10;
		if (i == 10)
			fx_finish(&f, 21);
		else
			fx_cycle_expect(&f, "");
		assert_int_equal(sched_team_quota(f.s, A, 0, &borrower), 0);
	}
	fx_finish(&f, 11);
	fx_submit(&f, 12, A, TRAINING, 1, 8);
	fx_submit(&f, 22, B, TRAINING, 1, 8);
	/* then A: B's 8 now count, (8 + 5.6) / 16 against 11.4 / 16 */
	fx_cycle_expect(&f, "S22 S12");
	fx_free(&f);
}

/* Without decay (half-life 0) only what is borrowed now counts. */
static void test_no_history(void **state)
{
	struct fx f;

	(void)state;
	world(&f, SCHED_IDLE_FAIR_SHARE, 1, 0);
	fx_submit(&f, 11, A, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S11");
	f.now += 1000000;
	fx_finish(&f, 11);
	fx_submit(&f, 21, B, TRAINING, 1, 8);
	fx_submit(&f, 12, A, TRAINING, 1, 8);
	fx_submit(&f, 13, A, TRAINING, 1, 8);
	fx_cycle_expect(&f, "S12");
	fx_free(&f);
}

/* Fair share orders idle compute only: work within a guarantee goes first. */
static void test_guarantee_before_idle(void **state)
{
	struct fx f;
	struct sched_quota q = {.guarantee = fx_gpus(8), .sharing = SCHED_LEND_AND_BORROW,
				.borrow_limit_pct = 100};

	(void)state;
	fx_init(&f, SCHED_IDLE_FAIR_SHARE);
	fx_nodes(&f, 0, 2, 0, 8);
	assert_int_equal(sched_team_quota(f.s, A, 0, &q), 0);
	assert_int_equal(sched_team_quota(f.s, B, 0, &q), 0);
	fx_submit(&f, 11, A, INFERENCE, 1, 8); /* within A's guarantee */
	fx_submit(&f, 12, A, INFERENCE, 1, 8); /* would borrow B's */
	fx_submit(&f, 21, B, DATAPROC, 1, 8);  /* within B's guarantee */
	fx_cycle_expect(&f, "S11 S21");
	fx_reason(&f, 12, SCHED_REASON_NO_IDLE);
	fx_free(&f);
}

/* Both teams keep 20 one-GPU tasks queued, submitted in turn. */
static void submit_full(struct fx *f)
{
	uint32_t i;

	for (i = 0; i < 20; i++) {
		fx_submit(f, 100 + i, A, TRAINING, 1, 1);
		fx_submit(f, 150 + i, B, TRAINING, 1, 1);
	}
}

/* Weights 3:1 and no guarantee anywhere: 12 and 4 of 16 GPUs. */
static void test_no_guarantee_weights(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, SCHED_IDLE_FAIR_SHARE);
	fx_nodes(&f, 0, 2, 0, 8);
	assert_int_equal(sched_team_set(f.s, A, 3, false), 0);
	assert_int_equal(sched_team_set(f.s, B, 1, false), 0);
	submit_full(&f);
	fx_cycle(&f);
	assert_int_equal(f.nd, 16);
	assert_int_equal(fx_used(&f, A), 12);
	assert_int_equal(fx_used(&f, B), 4);
	/* one of A's ends: its share is the lowest again, so A takes the GPU */
	fx_finish(&f, 100);
	fx_cycle_expect(&f, "S112");
	fx_reason(&f, 113, SCHED_REASON_CAPACITY);
	fx_free(&f);
}

/* The same with explicit quotas of no guarantee (sharing as the daemon's
 * default team has it): still 12 and 4. */
static void test_no_guarantee_quotas(void **state)
{
	struct sched_quota q = {.sharing = SCHED_LEND_AND_BORROW, .borrow_limit_pct = 50};
	struct fx f;

	(void)state;
	fx_init(&f, SCHED_IDLE_FAIR_SHARE);
	fx_nodes(&f, 0, 2, 0, 8);
	assert_int_equal(sched_team_quota(f.s, A, 0, &q), 0);
	assert_int_equal(sched_team_quota(f.s, B, 0, &q), 0);
	assert_int_equal(sched_team_set(f.s, A, 3, false), 0);
	assert_int_equal(sched_team_set(f.s, B, 1, false), 0);
	submit_full(&f);
	fx_cycle(&f);
	assert_int_equal(fx_used(&f, A), 12);
	assert_int_equal(fx_used(&f, B), 4);
	fx_free(&f);
}

/* fcfs with no guarantee: submit order across teams, whatever the weights. */
static void test_no_guarantee_fcfs(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, SCHED_IDLE_FCFS);
	fx_nodes(&f, 0, 1, 0, 8);
	assert_int_equal(sched_team_set(f.s, A, 3, false), 0);
	assert_int_equal(sched_team_set(f.s, B, 1, false), 0);
	fx_submit(&f, 21, B, TRAINING, 1, 2);
	fx_submit(&f, 11, A, TRAINING, 1, 1);
	fx_submit(&f, 22, B, TRAINING, 1, 1);
	fx_submit(&f, 23, B, TRAINING, 1, 2);
	fx_submit(&f, 12, A, TRAINING, 1, 2);
	fx_submit(&f, 13, A, TRAINING, 1, 1);
	fx_cycle_expect(&f, "S21 S11 S22 S23 S12");
	fx_free(&f);
}

/* A third team lending its guarantee gives the same 12 and 4. */
static void test_lender_weights(void **state)
{
	struct fx f;

	(void)state;
	world(&f, SCHED_IDLE_FAIR_SHARE, 2, 3600000);
	assert_int_equal(sched_team_set(f.s, A, 3, false), 0);
	assert_int_equal(sched_team_set(f.s, B, 1, false), 0);
	submit_full(&f);
	fx_cycle(&f);
	assert_int_equal(f.nd, 16);
	assert_int_equal(fx_used(&f, A), 12);
	assert_int_equal(fx_used(&f, B), 4);
	fx_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fcfs),
		cmocka_unit_test(test_fair_share),
		cmocka_unit_test(test_fair_share_weights),
		cmocka_unit_test(test_weight_zero_borrows_last),
		cmocka_unit_test(test_ties),
		cmocka_unit_test(test_decay),
		cmocka_unit_test(test_decay_steps),
		cmocka_unit_test(test_no_history),
		cmocka_unit_test(test_guarantee_before_idle),
		cmocka_unit_test(test_no_guarantee_weights),
		cmocka_unit_test(test_no_guarantee_quotas),
		cmocka_unit_test(test_no_guarantee_fcfs),
		cmocka_unit_test(test_lender_weights),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
