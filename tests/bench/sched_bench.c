/*
 * sched_bench.c: the dispatcher at scale (docs/design.md §5).
 *
 * A synthetic, seeded cluster driven through daemon/scheduler.h exactly as
 * hpqd drives it: 10,000 nodes x 8 GPUs in 4 pools, 200 teams (each with a
 * guarantee in its home pool, about 80% of the pool guaranteed in all),
 * 16 classes, and a million pending tasks of mixed shapes (1 to 8 GPUs,
 * some gangs of 2 or 4 whole nodes). It reports:
 *
 *   fill        placements per second, one cycle filling the empty cluster
 *   noop        a cycle with nothing changed, and a cycle after a submit
 *               that cannot start, at ~10k and ~1M pending (must not grow)
 *   recheck     a cycle that re-examines every team of every pool (what a
 *               policy change costs), at ~10k and ~1M pending
 *   churn       one end-and-start event in steady state: a running task
 *               ends and the cycle that follows (with whatever it decides)
 *   reclaim     one reclaim decision over 10,000 running borrowed tasks
 *   memory      bytes per pending task: the caller's struct sched_task plus
 *               what the dispatcher allocates for it (mallinfo2 delta)
 *
 * Every figure is the median over --runs fresh worlds. Build it optimised
 * and without sanitizers (tests/bench/README.md).
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler.h"

#define NPOOLS 4
#define NODES_PER_POOL 2500
#define NTEAMS 200
#define NCLASSES 16
#define GPUS 8
#define CPUS 96
#define MEM (1024 * 1024)   /* MiB per node */

struct world {
	struct sched *s;
	struct sched_task *t;
	size_t nt, cap;
	struct sched_task **run;   /* RUNNING tasks, for churn */
	size_t nrun, run_cap;
	uint64_t rng;
	int64_t now;
};

static uint64_t rnd(struct world *w)
{
	uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t rndn(struct world *w, uint32_t n)
{
	return (uint32_t)(rnd(w) % n);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n ? v[n / 2] : 0;
}

static double quantile(double *v, size_t n, double q)
{
	size_t i;

	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)(q * (double)n);
	return n ? v[i < n ? i : n - 1] : 0;
}

static void check(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "sched_bench: %s failed: %d\n", what, r);
		exit(1);
	}
}

static void run_add(struct world *w, struct sched_task *t)
{
	if (w->nrun == w->run_cap) {
		w->run_cap = w->run_cap ? w->run_cap * 2 : 1024;
		w->run = realloc(w->run, w->run_cap * sizeof(*w->run));
		if (!w->run)
			abort();
	}
	w->run[w->nrun++] = t;
}

/* Applies decisions the way hpqd would, stopping preempted tasks at once. */
static size_t apply(struct world *w, const struct sched_decision *d, size_t n)
{
	size_t i, starts = 0;

	for (i = 0; i < n; i++) {
		if (d[i].action == SCHED_START) {
			run_add(w, d[i].task);
			starts++;
		}
	}
	return starts;
}

static void world_model(struct world *w, uint64_t seed)
{
	struct sched_policy pol = {.idle = SCHED_IDLE_FAIR_SHARE, .half_life_ms = 3600000};
	uint32_t i, p, n;

	memset(w, 0, sizeof(*w));
	w->rng = seed;
	w->now = 1000000;
	w->s = sched_new(&pol);
	for (i = 0; i < NCLASSES; i++)
		check(sched_class_set(w->s, i, i * 6, i < NCLASSES - 2), "class");
	for (p = 0; p < NPOOLS; p++)
		for (n = 0; n < NODES_PER_POOL; n++)
			check(sched_node_set(w->s, p * NODES_PER_POOL + n, p,
					     (struct hpq_res){GPUS, CPUS, MEM}, true),
			      "node");
	for (i = 0; i < NTEAMS; i++) {
		/* 50 teams per pool share 80% of its 20,000 GPUs: 320 on average */
		int64_t g = 160 + rndn(w, 321);
		struct sched_quota q = {
			.guarantee = {g, g * 12, g * 65536},
			.sharing = i % 10 == 0 ? SCHED_DONT_LEND : SCHED_LEND_AND_BORROW,
			.borrow_limit_pct = 50 + rndn(w, 151),
		};

		check(sched_team_set(w->s, i, 1 + rndn(w, 10), i % 3 == 0), "team");
		check(sched_team_quota(w->s, i, i % NPOOLS, &q), "quota");
	}
}

static void task_make(struct world *w, struct sched_task *t, uint64_t id)
{
	uint32_t r = rndn(w, 100), team = rndn(w, NTEAMS);
	int64_t g;

	memset(t, 0, sizeof(*t));
	t->id = id;
	t->submit_ms = ++w->now;
	t->team = team;
	t->pool = team % NPOOLS;
	t->class_id = rndn(w, NCLASSES);
	t->nnodes = 1;
	g = r < 40 ? 1 : r < 65 ? 2 : r < 80 ? 4 : 8;
	if (r >= 92)
		t->nnodes = r < 97 ? 2 : 4;
	t->per_node = (struct hpq_res){g, g * 12, g * 65536};
}

/* Submits n more tasks; returns the time it took in ns. */
static uint64_t submit(struct world *w, size_t n)
{
	uint64_t t0;
	size_t i;

	/* tasks are never moved: the dispatcher holds pointers to them */
	if (w->nt + n > w->cap) {
		fprintf(stderr, "sched_bench: task array is full\n");
		exit(1);
	}
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		struct sched_task *t = &w->t[w->nt + i];

		task_make(w, t, w->nt + i + 1);
		check(sched_task_submit(w->s, t), "submit");
	}
	w->nt += n;
	return now_ns() - t0;
}

static void world_tasks(struct world *w, size_t cap)
{
	w->cap = cap;
	w->t = calloc(cap, sizeof(*w->t));
	if (!w->t)
		abort();
}

static size_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static const struct sched_decision *cycle(struct world *w, size_t *n)
{
	w->now += 1;
	return sched_cycle(w->s, w->now, n);
}

static void world_free(struct world *w)
{
	sched_free(w->s);
	free(w->t);
	free(w->run);
}

static size_t pending(const struct world *w)
{
	size_t i, n = 0;

	for (i = 0; i < w->nt; i++)
		n += w->t[i].state == SCHED_PENDING;
	return n;
}

struct figures {
	double submit_per_s, fill_per_s, fill_starts, fill_ms, bytes_per_task;
	double noop_ns, noop_event_ns, recheck_us;
	double churn_med_us, churn_p99_us, churn_mean_us;
	double plain_med_us, plain_share;     /* events that only started tasks */
	double starts_per_event, preempts_per_event;
	double pending;
};

/* A cycle after nothing changed, a cycle after one submit that cannot
 * start, and a full re-examination, each averaged. */
static void measure_noop(struct world *w, struct figures *f)
{
	const int k = 2000;
	const struct sched_decision *d;
	struct sched_task *extra = calloc(k, sizeof(*extra));
	struct sched_policy pol = {.idle = SCHED_IDLE_FAIR_SHARE, .half_life_ms = 3600000};
	uint64_t t0, tsub = 0;
	size_t n;
	int i;

	t0 = now_ns();
	for (i = 0; i < k; i++)
		d = cycle(w, &n);
	f->noop_ns = (double)(now_ns() - t0) / k;

	/* larger than any node: they wait, in a team chosen at random */
	for (i = 0; i < k; i++) {
		struct sched_task *t = &extra[i];
		uint64_t t1;

		memset(t, 0, sizeof(*t));
		t->id = 1000000000ull + (uint64_t)i;
		t->submit_ms = ++w->now;
		t->team = rndn(w, NTEAMS);
		t->pool = t->team % NPOOLS;
		t->class_id = rndn(w, NCLASSES);
		t->nnodes = 1;
		t->per_node = (struct hpq_res){GPUS + 1, CPUS, MEM};
		check(sched_task_submit(w->s, t), "submit");
		t1 = now_ns();
		d = cycle(w, &n);
		tsub += now_ns() - t1;
		apply(w, d, n);
	}
	f->noop_event_ns = (double)tsub / k;

	t0 = now_ns();
	for (i = 0; i < 20; i++) {
		sched_set_policy(w->s, &pol);
		d = cycle(w, &n);
		apply(w, d, n);
	}
	f->recheck_us = (double)(now_ns() - t0) / 20 / 1000;
	for (i = 0; i < k; i++)
		if (extra[i].state == SCHED_RUNNING || extra[i].state == SCHED_PENDING ||
		    extra[i].state == SCHED_PREEMPTING)
			sched_task_finish(w->s, &extra[i], w->now);
	/* drop the extra tasks from our running list */
	for (size_t j = 0; j < w->nrun;) {
		if (w->run[j] >= extra && w->run[j] < extra + k)
			w->run[j] = w->run[--w->nrun];
		else
			j++;
	}
	free(extra);
	(void)d;
}

/* Steady state: a random running task ends; the cycle refills. Preempted
 * tasks stop at once (requeued in the same event). */
static void measure_churn(struct world *w, struct figures *f, int events)
{
	double *v = calloc((size_t)events, sizeof(*v));
	double *plain = calloc((size_t)events, sizeof(*plain));
	double sum = 0;
	size_t nplain = 0, starts = 0, preempts = 0;
	int e;

	for (e = 0; e < events && w->nrun; e++) {
		size_t i = rndn(w, (uint32_t)w->nrun), n, k, pre = 0;
		struct sched_task *t = w->run[i];
		const struct sched_decision *d;
		uint64_t t0;

		w->run[i] = w->run[--w->nrun];
		if (t->state != SCHED_RUNNING) {
			e--;
			continue;
		}
		w->now += 1;
		t0 = now_ns();
		sched_task_finish(w->s, t, w->now);
		d = cycle(w, &n);
		for (k = 0; k < n; k++) {
			if (d[k].action == SCHED_START) {
				run_add(w, d[k].task);
				starts++;
			} else {
				sched_task_requeue(w->s, d[k].task, w->now);
				pre++;
			}
		}
		v[e] = (double)(now_ns() - t0) / 1000;
		sum += v[e];
		preempts += pre;
		if (!pre)
			plain[nplain++] = v[e];
		/* resubmit the finished task so that the queue stays as long */
		check(sched_task_submit(w->s, t), "resubmit");
	}
	f->churn_mean_us = sum / e;
	f->churn_med_us = quantile(v, (size_t)e, 0.5);
	f->churn_p99_us = quantile(v, (size_t)e, 0.99);
	f->plain_med_us = quantile(plain, nplain, 0.5);
	f->plain_share = (double)nplain / e;
	f->starts_per_event = (double)starts / e;
	f->preempts_per_event = (double)preempts / e;
	free(v);
	free(plain);
}

static void run_world(uint64_t seed, size_t npending, bool full, struct figures *f)
{
	struct world w;
	const struct sched_decision *d;
	size_t n, before, starts;
	uint64_t t0, tsub;

	memset(f, 0, sizeof(*f));
	world_model(&w, seed);
	world_tasks(&w, npending + (full ? 0 : 25000));
	before = heap_bytes();
	if (full) {
		tsub = submit(&w, npending);
		f->bytes_per_task = (double)(heap_bytes() - before) / (double)npending +
				    sizeof(struct sched_task);
		f->submit_per_s = (double)npending / ((double)tsub / 1e9);
		t0 = now_ns();
		d = cycle(&w, &n);
		f->fill_ms = (double)(now_ns() - t0) / 1e6;
		starts = apply(&w, d, n);
		f->fill_starts = (double)starts;
		f->fill_per_s = (double)starts / (f->fill_ms / 1e3);
	} else {
		/* enough to fill the cluster, then top up to npending pending */
		size_t p;

		submit(&w, 25000);
		d = cycle(&w, &n);
		apply(&w, d, n);
		p = pending(&w);
		if (p < npending)
			submit(&w, npending - p);
	}
	d = cycle(&w, &n);
	apply(&w, d, n);
	f->pending = (double)pending(&w);
	measure_noop(&w, f);
	measure_churn(&w, f, 50000);
	world_free(&w);
}

/* Reclaim: one pool of 1,250 nodes full of 10,000 one-GPU borrowed tasks;
 * the owner of the whole pool submits one 8-GPU task. Time of the cycle
 * that chooses its victims. */
static double measure_reclaim(uint64_t seed, int reps, uint32_t *ret_victims)
{
	struct sched_policy pol = {.idle = SCHED_IDLE_FAIR_SHARE, .half_life_ms = 3600000};
	struct sched_quota owner = {.guarantee = {10000, 10000 * 12, 10000 * 65536ll},
				    .sharing = SCHED_LEND_AND_BORROW, .borrow_limit_pct = 50};
	struct sched_quota borrower = {.sharing = SCHED_LEND_AND_BORROW, .has_borrow_abs = true,
				       .borrow_abs = {1000000, 1000000, 1ll << 40}};
	struct sched_task *t = calloc(10001, sizeof(*t)), *b = &t[10000];
	double *v = calloc((size_t)reps, sizeof(*v));
	struct sched *s = sched_new(&pol);
	const struct sched_decision *d;
	int64_t now = 1000;
	uint32_t i, r;
	size_t n, k;
	uint64_t rng = seed;

	for (i = 0; i < NCLASSES; i++)
		check(sched_class_set(s, i, i * 6, true), "class");
	for (i = 0; i < 1250; i++)
		check(sched_node_set(s, i, 0, (struct hpq_res){GPUS, CPUS, MEM}, true), "node");
	check(sched_team_quota(s, 1, 0, &owner), "quota");
	check(sched_team_quota(s, 2, 0, &borrower), "quota");
	for (i = 0; i < 10000; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		t[i] = (struct sched_task){.id = i + 1, .submit_ms = now + i, .team = 2,
					   .class_id = (uint32_t)(rng >> 60),
					   .nnodes = 1, .per_node = {1, 12, 65536}};
		check(sched_task_submit(s, &t[i]), "submit");
	}
	d = sched_cycle(s, now += 10, &n);
	if (n != 10000) {
		fprintf(stderr, "sched_bench: reclaim setup started %zu of 10000\n", n);
		exit(1);
	}
	for (r = 0; r < (uint32_t)reps; r++) {
		uint64_t t0;

		*b = (struct sched_task){.id = 20000 + r, .submit_ms = now, .team = 1,
					 .class_id = 8, .nnodes = 1, .per_node = {8, 96, MEM}};
		check(sched_task_submit(s, b), "submit");
		t0 = now_ns();
		d = sched_cycle(s, now += 10, &n);
		v[r] = (double)(now_ns() - t0) / 1000;
		*ret_victims = (uint32_t)n;
		/* undo: the owner leaves, the victims stop and start again */
		for (k = 0; k < n; k++)
			if (d[k].action != SCHED_PREEMPT)
				abort();
		sched_task_finish(s, b, now += 10);
		for (i = 0; i < 10000; i++)
			if (t[i].state == SCHED_PREEMPTING)
				sched_task_requeue(s, &t[i], now);
		d = sched_cycle(s, now += 10, &n);
	}
	sched_free(s);
	free(t);
	r = (uint32_t)reps;
	{
		double m = median(v, r);

		free(v);
		return m;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: sched_bench [--runs N] [--seed S] [--pending N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int runs = 5, i;
	uint64_t seed = 42;
	size_t big = 1000000, small = 10000;
	struct figures *fb, *fs;
	double v[5][16];
	uint32_t victims = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--pending") && i + 1 < argc)
			big = strtoull(argv[++i], NULL, 10);
		else
			usage();
	}
	if (runs < 1 || runs > 16 || big < 20000)
		usage();
	fb = calloc((size_t)runs, sizeof(*fb));
	fs = calloc((size_t)runs, sizeof(*fs));
	printf("sched_bench: %d pools x %d nodes x %d GPUs, %d teams, %d classes, seed %" PRIu64
	       ", %d runs\n",
	       NPOOLS, NODES_PER_POOL, GPUS, NTEAMS, NCLASSES, seed, runs);
	printf("sizeof(struct sched_task) = %zu bytes\n", sizeof(struct sched_task));
	for (i = 0; i < runs; i++) {
		run_world(seed + (uint64_t)i, big, true, &fb[i]);
		run_world(seed + (uint64_t)i, small, false, &fs[i]);
		printf("run %d: fill %.0f starts in %.1f ms (%.0f/s), submit %.0f/s, "
		       "%.0f B/task; 1M: noop %.2f us, submit+cycle %.2f us, recheck %.0f us, "
		       "churn med %.2f p99 %.2f us; 10k: noop %.2f us, submit+cycle %.2f us, "
		       "recheck %.0f us, churn med %.2f us\n",
		       i, fb[i].fill_starts, fb[i].fill_ms, fb[i].fill_per_s, fb[i].submit_per_s,
		       fb[i].bytes_per_task, fb[i].noop_ns / 1000, fb[i].noop_event_ns / 1000,
		       fb[i].recheck_us, fb[i].churn_med_us, fb[i].churn_p99_us,
		       fs[i].noop_ns / 1000, fs[i].noop_event_ns / 1000, fs[i].recheck_us,
		       fs[i].churn_med_us);
		fflush(stdout);
	}
	for (i = 0; i < runs; i++) {
		v[0][i] = fb[i].fill_per_s;
		v[1][i] = fb[i].noop_ns;
		v[2][i] = fs[i].noop_ns;
		v[3][i] = fb[i].noop_event_ns;
		v[4][i] = fs[i].noop_event_ns;
	}
	printf("\nmedian of %d runs\n", runs);
	printf("  pending after fill:           %.0f (big), %.0f (small)\n", fb[0].pending,
	       fs[0].pending);
	printf("  fill: placements/s            %.0f  (%.0f starts)\n", median(v[0], runs),
	       fb[0].fill_starts);
	printf("  no-op cycle, ~1M pending:     %.3f us\n", median(v[1], runs) / 1000);
	printf("  no-op cycle, ~10k pending:    %.3f us\n", median(v[2], runs) / 1000);
	printf("  submit+cycle, ~1M pending:    %.3f us\n", median(v[3], runs) / 1000);
	printf("  submit+cycle, ~10k pending:   %.3f us\n", median(v[4], runs) / 1000);
	for (i = 0; i < runs; i++) {
		v[0][i] = fb[i].recheck_us;
		v[1][i] = fs[i].recheck_us;
		v[2][i] = fb[i].churn_med_us;
		v[3][i] = fb[i].churn_p99_us;
		v[4][i] = fb[i].bytes_per_task;
	}
	printf("  full recheck, ~1M pending:    %.1f us\n", median(v[0], runs));
	printf("  full recheck, ~10k pending:   %.1f us\n", median(v[1], runs));
	printf("  end-and-start event (1M):     median %.2f us, p99 %.2f us\n",
	       median(v[2], runs), median(v[3], runs));
	for (i = 0; i < runs; i++) {
		v[0][i] = fb[i].plain_med_us;
		v[1][i] = fb[i].plain_share * 100;
		v[2][i] = fb[i].starts_per_event;
		v[3][i] = fb[i].preempts_per_event;
	}
	printf("    of which only starts:       median %.2f us (%.0f%% of events)\n",
	       median(v[0], runs), median(v[1], runs));
	printf("    decisions per event:        %.2f starts, %.2f preemptions\n",
	       median(v[2], runs), median(v[3], runs));
	printf("  bytes per pending task:       %.0f\n", median(v[4], runs));
	printf("  reclaim over 10,000 borrowed: %.1f us", measure_reclaim(seed, 21, &victims));
	printf(" (%u victims)\n", victims);
	free(fb);
	free(fs);
	return 0;
}
