/*
 * bench_plan_search.c: training-plan search over a busy calendar
 * (daemon/calendar.h, docs/plans.md).
 *
 * A seeded calendar of one pool with 1,000 nodes and 10,000 reservations
 * (each 1 to 16 neighbouring nodes for an hour to three days, somewhere in
 * 240 days, in seconds: about half the node-hours), then searches of several shapes, each timed --runs
 * times on the same calendar; it prints the medians of the wall time and of
 * the thread's CPU time (on a shared machine, what the search itself cost)
 * and the best offering.
 * The shapes: a small contiguous plan, a large one split into up to 5
 * segments, one nearly as large as the pool, and one that fits nowhere
 * before its deadline (the whole calendar is scanned). A figure to
 * report, never a pass/fail question: no timing is asserted.
 *
 *   bench_plan_search [--runs N] [--nodes N] [--reservations N]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calendar.h"

#define DAY 86400
#define HORIZON 240   /* days the reservations are spread over */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* This thread's CPU time: on a shared machine, what the search itself cost. */
static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), dbl_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct shape {
	const char *name;
	uint32_t nnodes, segments;
	int64_t duration, min_segment, before;
};

int main(int argc, char **argv)
{
	int runs = 9, nres = 10000, tries = 0, booked = 0;
	uint32_t nnodes = 1000, *nodes;
	struct calendar *c = calendar_new();
	struct shape shapes[] = {
		{"64 nodes, 14 d, 1 segment", 64, 1, 14 * DAY, 0, CALENDAR_FOREVER},
		{"500 nodes, 14 d, 5 segments", 500, 5, 14 * DAY, DAY, CALENDAR_FOREVER},
		{"900 nodes, 14 d, 5 segments", 900, 5, 14 * DAY, DAY, CALENDAR_FOREVER},
		{"990 nodes, 14 d, 5 segm., no fit", 990, 5, 14 * DAY, DAY, 30 * DAY},
	};
	char err[256];
	double t0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--nodes") && i + 1 < argc)
			nnodes = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reservations") && i + 1 < argc)
			nres = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--runs N] [--nodes N] [--reservations N]\n",
				argv[0]);
			return 2;
		}
	}
	if (runs < 1 || nnodes < 1000 || nres < 0) {
		fprintf(stderr, "bench_plan_search: --runs >= 1, --nodes >= 1000\n");
		return 2;
	}
	nodes = malloc(16 * sizeof(*nodes));
	for (uint32_t i = 0; i < nnodes; i++)
		calendar_node_add(c, i);
	t0 = now_ms();
	while (booked < nres && tries < 50 * nres) {
		int64_t start = (int64_t)(next() % (HORIZON * DAY));
		int64_t len = 3600 + (int64_t)(next() % (3 * DAY));
		uint32_t n = 1 + (uint32_t)(next() % 16), first = (uint32_t)(next() % (nnodes - n));
		struct calendar_segment sg = {start, start + len, n, nodes};

		for (uint32_t k = 0; k < n; k++)
			nodes[k] = first + k;
		tries++;
		if (calendar_reserve(c, (uint64_t)booked + 1, (uint32_t)(next() % 20), &sg, 1, 1, err,
				     sizeof(err)) == 0)
			booked++;
	}
	printf("calendar: %u nodes, %d reservations (%d tries), built in %.0f ms\n", nnodes, booked,
	       tries, now_ms() - t0);
	printf("%-36s %10s %8s %8s %8s %12s\n", "search", "median ms", "cpu ms", "offers",
	       "segments", "finish (d)");
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		struct calendar_query q = {
			.team = 1, .nnodes = shapes[s].nnodes, .duration = shapes[s].duration,
			.after = 0, .before = shapes[s].before, .max_segments = shapes[s].segments,
			.min_segment = shapes[s].min_segment, .max_offers = 5,
		};
		double *v = calloc((size_t)runs, sizeof(*v));
		double *u = calloc((size_t)runs, sizeof(*u));
		int n = 0;
		struct calendar_offer *o = NULL;

		if (q.nnodes > nnodes)
			q.nnodes = nnodes;
		for (int r = 0; r < runs; r++) {
			double t, cpu;

			calendar_offers_free(o, n);
			t = now_ms();
			cpu = cpu_ms();
			n = calendar_search(c, &q, &o, err, sizeof(err));
			v[r] = now_ms() - t;
			u[r] = cpu_ms() - cpu;
			if (n < 0) {
				fprintf(stderr, "search: %s\n", err);
				return 1;
			}
		}
		printf("%-36s %10.3f %8.3f %8d %8u %12.2f\n", shapes[s].name, median(v, runs),
		       median(u, runs), n, n ? o[0].nsegments : 0,
		       n ? (double)o[0].finish / DAY : -1.0);
		calendar_offers_free(o, n);
		free(v);
		free(u);
	}
	printf("median of %d runs\n", runs);
	free(nodes);
	calendar_free(c);
	return 0;
}
