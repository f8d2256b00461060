/*
 * test_sched_calendar.c: the plans' capacity calendar (daemon/calendar.c),
 * in seconds: reserving without double-booking (back-to-back reservations
 * included), the reservable limit and
 * the teams' guarantees, search (contiguous, split, minimum segment,
 * deadline), stale offerings, release, and a randomized comparison of
 * one-segment search with a brute-force scan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "calendar.h"
#include "error.h"

static char err[256];

static struct calendar *pool(uint32_t nnodes)
{
	struct calendar *c = calendar_new();

	for (uint32_t i = 0; i < nnodes; i++)
		assert_int_equal(calendar_node_add(c, i), 0);
	return c;
}

/* Reserves [s, e) on nodes first..first+n-1 for plan id of team. */
static int book(struct calendar *c, uint64_t id, uint32_t team, int64_t s, int64_t e,
		uint32_t first, uint32_t n)
{
	uint32_t nodes[64];
	struct calendar_segment sg = {s, e, n, nodes};

	for (uint32_t i = 0; i < n; i++)
		nodes[i] = first + i;
	return calendar_reserve(c, id, team, &sg, 1, 0, err, sizeof(err));
}

static struct calendar_query query(uint32_t team, uint32_t n, int64_t dur, uint32_t segs)
{
	return (struct calendar_query){.team = team, .nnodes = n, .duration = dur, .after = 0,
				       .before = CALENDAR_FOREVER, .max_segments = segs,
				       .max_offers = 5};
}

static void test_contiguous(void **state)
{
	struct calendar *c = pool(4);
	struct calendar_query q = query(1, 2, 100, 1);
	struct calendar_offer *o;

	(void)state;
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), 1);
	assert_int_equal(o[0].nsegments, 1);
	assert_int_equal(o[0].segments[0].start, 0);
	assert_int_equal(o[0].finish, 100);
	assert_int_equal(o[0].segments[0].nnodes, 2);
	assert_int_equal(calendar_reserve(c, 7, 1, o[0].segments, 1, 0, err, sizeof(err)), 0);
	calendar_offers_free(o, 1);
	/* the other two nodes are still free then; a third plan waits */
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), 1);
	assert_int_equal(o[0].segments[0].start, 0);
	assert_int_equal(calendar_reserve(c, 8, 1, o[0].segments, 1, 0, err, sizeof(err)), 0);
	calendar_offers_free(o, 1);
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), 1);
	assert_int_equal(o[0].segments[0].start, 100);
	calendar_offers_free(o, 1);
	calendar_free(c);
}

/* Back-to-back reservations on a node: it is never free in between. */
static void test_adjacent(void **state)
{
	struct calendar *c = pool(2);
	struct calendar_query q = query(1, 2, 10, 1);
	struct calendar_offer *o;

	(void)state;
	assert_int_equal(book(c, 1, 2, 0, 50, 0, 1), 0);
	assert_int_equal(book(c, 2, 2, 50, 100, 0, 1), 0);
	assert_int_equal(book(c, 3, 2, 100, 105, 0, 1), 0);
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), 1);
	assert_int_equal(o[0].segments[0].start, 105);
	calendar_offers_free(o, 1);
	/* from inside the run, too */
	q.after = 60;
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), 1);
	assert_int_equal(o[0].segments[0].start, 105);
	calendar_offers_free(o, 1);
	calendar_free(c);
}

static void test_no_double_booking(void **state)
{
	struct calendar *c = pool(4);
	uint32_t nodes[2] = {1, 1};
	struct calendar_segment sg = {300, 310, 2, nodes};

	(void)state;
	assert_int_equal(book(c, 1, 1, 0, 100, 0, 2), 0);
	assert_int_equal(book(c, 2, 1, 50, 150, 1, 2), HPQ_EBUSY);
	assert_non_null(strstr(err, "node 1 is already reserved"));
	/* touching is not overlapping: [0,100) then [100,200) */
	assert_int_equal(book(c, 2, 1, 100, 200, 1, 2), 0);
	assert_int_equal(book(c, 3, 1, 0, 10, 9, 1), HPQ_EINVAL);
	assert_non_null(strstr(err, "not in the pool"));
	assert_int_equal(calendar_reserve(c, 3, 1, &sg, 1, 0, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(book(c, 3, 1, 10, 10, 3, 1), HPQ_EINVAL);
	assert_int_equal(book(c, 1, 1, 500, 600, 3, 1), HPQ_EEXIST);
	/* a refused plan changed nothing: node 3 is free all along */
	assert_int_equal(book(c, 3, 1, 0, 1000, 3, 1), 0);
	calendar_free(c);
}

/* The example of docs/plans.md: the contiguous window is taken, so two
 * segments finish sooner than waiting for it. */
static void test_split(void **state)
{
	struct calendar *c = pool(2);
	struct calendar_query q = query(1, 2, 140, 2);
	struct calendar_offer *o;
	int n;

	(void)state;
	assert_int_equal(book(c, 1, 2, 70, 200, 0, 2), 0);
	n = calendar_search(c, &q, &o, err, sizeof(err));
	assert_int_equal(n, 2);
	assert_int_equal(o[0].nsegments, 2);
	assert_int_equal(o[0].segments[0].start, 0);
	assert_int_equal(o[0].segments[0].end, 70);
	assert_int_equal(o[0].segments[1].start, 200);
	assert_int_equal(o[0].segments[1].end, 270);
	assert_int_equal(o[0].finish, 270);
	assert_int_equal(o[1].nsegments, 1);
	assert_int_equal(o[1].segments[0].start, 200);
	assert_int_equal(o[1].finish, 340);
	assert_int_equal(calendar_check(c, 1, o[0].segments, 2, err, sizeof(err)), 0);
	calendar_offers_free(o, n);

	/* segments of at least 80: the early window is too short */
	q.min_segment = 80;
	n = calendar_search(c, &q, &o, err, sizeof(err));
	assert_int_equal(n, 1);
	assert_int_equal(o[0].nsegments, 1);
	assert_int_equal(o[0].finish, 340);
	calendar_offers_free(o, n);

	/* a deadline nothing meets */
	q.min_segment = 0;
	q.before = 260;
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), 0);
	assert_null(o);
	calendar_free(c);
}

/* A short leftover is folded so that every segment keeps the minimum. */
static void test_min_segment_leftover(void **state)
{
	struct calendar *c = pool(1);
	struct calendar_query q = query(1, 1, 100, 3);
	struct calendar_offer *o;
	int n;

	(void)state;
	/* free: [0,90), [120,130), [200,...) */
	assert_int_equal(book(c, 1, 2, 90, 120, 0, 1), 0);
	assert_int_equal(book(c, 2, 2, 130, 200, 0, 1), 0);
	q.min_segment = 20;
	n = calendar_search(c, &q, &o, err, sizeof(err));
	assert_true(n >= 1);
	for (uint32_t i = 0; i < o[0].nsegments; i++)
		assert_true(o[0].segments[i].end - o[0].segments[i].start >= 20);
	/* [0,80) then [200,220): 80 + 20 */
	assert_int_equal(o[0].nsegments, 2);
	assert_int_equal(o[0].segments[0].end, 80);
	assert_int_equal(o[0].finish, 220);
	calendar_offers_free(o, n);
	calendar_free(c);
}

static void test_guarantee(void **state)
{
	struct calendar *c = pool(4);
	struct calendar_query q = query(1, 2, 100, 1);
	struct calendar_offer *o;

	(void)state;
	calendar_set_guarantee(c, 2, 3);
	/* team 1 may reserve only the one node nobody is guaranteed */
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), 0);
	assert_int_equal(book(c, 1, 1, 0, 100, 0, 2), HPQ_EBUSY);
	assert_non_null(strstr(err, "guarantee"));
	assert_int_equal(calendar_headroom(c, 1, 0, 100), 1);
	/* team 2 may reserve its guarantee and the free rest */
	assert_int_equal(calendar_headroom(c, 2, 0, 100), 4);
	assert_int_equal(book(c, 2, 2, 0, 100, 0, 3), 0);
	assert_int_equal(calendar_headroom(c, 1, 0, 100), 1);
	assert_int_equal(book(c, 3, 2, 0, 100, 3, 1), 0);
	/* now team 2 holds everything until 100: team 1 starts then */
	assert_int_equal(calendar_headroom(c, 1, 0, 100), 0);
	q.nnodes = 1;
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), 1);
	assert_int_equal(o[0].segments[0].start, 100);
	calendar_offers_free(o, 1);
	calendar_free(c);
}

static void test_reservable(void **state)
{
	struct calendar *c = pool(4);
	struct calendar_query q = query(1, 3, 100, 1);
	struct calendar_offer *o;

	(void)state;
	calendar_set_reservable(c, 2);
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "at most 2 nodes"));
	assert_int_equal(book(c, 1, 1, 0, 100, 0, 2), 0);
	q.nnodes = 1;
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), 1);
	assert_int_equal(o[0].segments[0].start, 100);
	calendar_offers_free(o, 1);
	calendar_free(c);
}

static void test_bad_query(void **state)
{
	struct calendar *c = pool(4);
	struct calendar_query q = query(1, 2, 100, 1);
	struct calendar_offer *o;

	(void)state;
	q.duration = 0;
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), HPQ_EINVAL);
	q = query(1, 2, 100, 6);
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "1 to 5 segments"));
	q = query(1, 2, 100, 2);
	q.min_segment = 101;
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), HPQ_EINVAL);
	q = query(1, 5, 100, 1);
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "only 4 nodes"));
	q = query(1, 2, 100, 1);
	q.after = 50;
	q.before = 120;
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), HPQ_EINVAL);
	calendar_free(c);
}

/* An offering goes stale when someone takes its capacity first. */
static void test_stale_offer(void **state)
{
	struct calendar *c = pool(2);
	struct calendar_query q = query(1, 2, 100, 1);
	struct calendar_offer *o;

	(void)state;
	assert_int_equal(calendar_search(c, &q, &o, err, sizeof(err)), 1);
	assert_int_equal(book(c, 9, 2, 50, 60, 1, 1), 0);
	assert_int_equal(calendar_check(c, 1, o[0].segments, 1, err, sizeof(err)), HPQ_EBUSY);
	assert_int_equal(calendar_reserve(c, 10, 1, o[0].segments, 1, 0, err, sizeof(err)),
			 HPQ_EBUSY);
	calendar_offers_free(o, 1);
	calendar_free(c);
}

static void test_release(void **state)
{
	struct calendar *c = pool(2);

	(void)state;
	assert_int_equal(book(c, 1, 1, 0, 100, 0, 2), 0);
	assert_int_equal(calendar_node_remove(c, 1, 50), HPQ_EBUSY);
	/* cut at 40: [40,100) is free again */
	assert_int_equal(calendar_release(c, 1, 40), 1);
	assert_int_equal(book(c, 2, 1, 40, 100, 0, 2), 0);
	assert_int_equal(book(c, 3, 1, 30, 41, 0, 1), HPQ_EBUSY);
	assert_int_equal(calendar_release(c, 2, INT64_MIN), 1);
	assert_int_equal(calendar_release(c, 2, INT64_MIN), 0);
	assert_int_equal(book(c, 3, 1, 40, 41, 0, 1), 0);
	calendar_prune(c, 1000);
	assert_int_equal(calendar_node_remove(c, 1, 50), 0);
	assert_int_equal(calendar_nodes(c), 1);
	calendar_free(c);
}

/* Search against a scan of every second: the one-segment offer starts at
 * the earliest start that fits, and every offer passes calendar_check. */
static void test_random(void **state)
{
	(void)state;
	srand(7);
	for (int round = 0; round < 200; round++) {
		uint32_t nn = 1 + (uint32_t)(rand() % 6);
		struct calendar *c = pool(nn);
		struct calendar_query q;
		struct calendar_offer *o;
		int64_t best = -1;
		int n;

		for (int i = 0; i < 12; i++) {
			int64_t s = rand() % 200, len = 1 + rand() % 40;
			uint32_t first = (uint32_t)(rand() % (int)nn);

			book(c, (uint64_t)i + 1, 2, s, s + len, first,
			     1 + (uint32_t)(rand() % (int)(nn - first)));
		}
		q = query(1, 1 + (uint32_t)(rand() % (int)nn), 1 + rand() % 60,
			  1 + (uint32_t)(rand() % 5));
		q.min_segment = rand() % 2 ? 0 : 1 + rand() % q.duration;
		for (int64_t s = 0; s <= 300 && best < 0; s++)
			if (calendar_headroom(c, 1, s, s + q.duration) >= q.nnodes) {
				uint32_t freen = 0;

				for (uint32_t k = 0; k < nn; k++) {
					uint32_t node = k;
					struct calendar_segment sg = {s, s + q.duration, 1, &node};

					freen += calendar_check(c, 1, &sg, 1, err, sizeof(err)) == 0;
				}
				if (freen >= q.nnodes)
					best = s;
			}
		n = calendar_search(c, &q, &o, err, sizeof(err));
		assert_true(n >= 1);
		assert_true(best >= 0);
		for (int i = 0; i < n; i++) {
			int64_t total = 0;

			assert_int_equal(calendar_check(c, 1, o[i].segments, o[i].nsegments, err,
							sizeof(err)), 0);
			for (uint32_t k = 0; k < o[i].nsegments; k++) {
				int64_t len = o[i].segments[k].end - o[i].segments[k].start;

				assert_true(len >= q.min_segment);
				total += len;
			}
			assert_int_equal(total, q.duration);
			assert_true(o[i].nsegments <= q.max_segments);
			assert_true(i == 0 || o[i].finish >= o[i - 1].finish);
			/* nothing finishes later than the best single window */
			assert_true(o[0].finish <= best + q.duration);
			if (o[i].nsegments == 1)
				assert_int_equal(o[i].segments[0].start, best);
		}
		calendar_offers_free(o, n);
		calendar_free(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contiguous),
		cmocka_unit_test(test_adjacent),
		cmocka_unit_test(test_no_double_booking),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_min_segment_leftover),
		cmocka_unit_test(test_guarantee),
		cmocka_unit_test(test_reservable),
		cmocka_unit_test(test_bad_query),
		cmocka_unit_test(test_stale_offer),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
