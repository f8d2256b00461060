/*
 * replay.c: hpq-replay, real GPU job traces through the real dispatcher.
 *
 * It replays the Microsoft ITP traces (traces/itp-elasticflow: 10 clusters,
 * 69,351 jobs, README.md there) through daemon/scheduler.c, linked
 * directly as hpqd links it, in simulated time: a discrete-event clock, no
 * sockets, no daemon. Each source cluster becomes a team of one shared
 * pool of 8-GPU nodes, by default as many as the Philly virtual clusters
 * had in all (traces/vc-reference/philly_vc.csv: 352 nodes). A team's
 * guarantee is its share of the pool: by default its share of the trace's
 * GPU-hours, or with --quota philly the Philly VC size of the same rank
 * (see guarantees()); its fair-share weight is its guarantee in nodes.
 * The same jobs run under several policies:
 *
 *   static         each team on its guarantee alone (dont-lend, no borrowing)
 *   fcfs           lend-and-borrow, idle compute first come first served
 *   fair           lend-and-borrow, idle compute by fair share
 *   ...-preempt    the same, and lenders take their guarantee back by
 *                  preempting borrowers, which lose the work done since
 *                  their last checkpoint (--ckpt-interval); without it the
 *                  class is not preemptible, so nothing is reclaimed
 *   noguar-fcfs    nobody holds a guarantee: weights and the idle policy
 *   noguar-fair    share the whole pool
 *
 * Events: a job arrives (sched_task_submit), ends after its duration of
 * RUNNING time (sched_task_finish), checkpoints (sched_task_checkpoint),
 * and the dispatcher's own wakeups (sched_next_wakeup). The events of one
 * instant go ends first (in trace order), then checkpoints, then arrivals;
 * after them, cycles run until no preemption is decided: a preempted
 * job stops at once and is requeued with its remaining work plus the work
 * it lost.
 *
 * The traces record no arrays or dependencies, but most of their jobs come
 * in sweeps: a team's jobs of one size submitted in the same second. With
 * --arrays each such group is one task array, as `hpq submit --array`
 * makes it: one index waits in the dispatcher at a time and the successor
 * hook hands over the next when it starts (daemon/array.c's rules, the %
 * limit of --array-limit included). With --chain H a job that runs longer
 * than H hours is a chain of parts of at most H hours, each after the one
 * before (`--dependency afterok`), as a site with a time limit runs long
 * training: a part enters the queue when the one before completes, with
 * the job's submission as its queue time (daemon/depend.h). A job's
 * queueing delay is then the sum of its parts' waits.
 *
 * It writes into --out: summary.csv (one row per policy), teams.csv (per
 * policy and team), util.csv (GPU utilisation per time bin and policy),
 * share-POLICY.csv (each team's share of the pool per bin), replay.gp and,
 * when gnuplot is installed, queue.png, util.png and share-POLICY.png.
 * It checks its own bookkeeping (every job ends once, no team of the
 * static split above its guarantee, the pool never over-full) and exits
 * non-zero if that fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "list.h"
#include "scheduler.h"
#include "xalloc.h"

#ifndef HPQ_REPLAY_TRACES
#define HPQ_REPLAY_TRACES "traces/itp-elasticflow"
#endif

#define NTEAMS 10
#define NODE_GPUS 8
#define MS 1000
#define NONE UINT32_MAX

enum mode { M_STATIC, M_LEND, M_NOGUAR };

struct policy {
	const char *name;
	enum mode mode;
	enum sched_idle_policy idle;
	bool preempt;
};

static const struct policy policies[] = {
	{"static", M_STATIC, SCHED_IDLE_FCFS, false},
	{"fcfs", M_LEND, SCHED_IDLE_FCFS, false},
	{"fcfs-preempt", M_LEND, SCHED_IDLE_FCFS, true},
	{"fair", M_LEND, SCHED_IDLE_FAIR_SHARE, false},
	{"fair-preempt", M_LEND, SCHED_IDLE_FAIR_SHARE, true},
	{"noguar-fcfs", M_NOGUAR, SCHED_IDLE_FCFS, false},
	{"noguar-fair", M_NOGUAR, SCHED_IDLE_FAIR_SHARE, false},
};
#define NPOL (sizeof(policies) / sizeof(policies[0]))

/* One trace job or one part of it (--chain), and its state in the
 * current replay. */
struct job {
	struct sched_task t;     /* embedded: the dispatcher points at it */
	int64_t submit;          /* ms, the trace job's */
	int64_t work;            /* ms of running time it needs */
	uint32_t gpus, team;
	uint32_t part_next;      /* --chain: the part after this one, or NONE */
	uint32_t array;          /* --arrays: its array, or NONE */
	uint32_t array_next;     /* the next index of its array, or NONE */
	/* per replay */
	int64_t ready;           /* when it could first run: its submission, or
	                          * the end of the part before it */
	int64_t left;            /* work left when the current attempt started */
	int64_t first_start;     /* -1 until it starts */
	int64_t end;             /* -1 until it ends */
	int64_t ckpt;            /* its last checkpoint in this attempt (or start) */
	uint32_t attempt;        /* events of older attempts are stale */
	uint32_t preempted;
	double lost;             /* GPU-ms lost to preemption */
};

enum ev_kind { EV_END, EV_CKPT };

struct ev {
	int64_t t;
	uint32_t job, attempt;
	enum ev_kind kind;
};

/* A sweep submitted as one array: its indices are jobs linked by
 * array_next, from first on. */
struct array {
	uint32_t first, n;
	/* per replay, as daemon/array.c counts them */
	uint32_t pending;        /* the next index not yet handed over, or NONE */
	uint32_t head;           /* the index waiting in the dispatcher for the
	                          * next to follow it, or NONE */
	uint32_t nactive;        /* indices running */
	uint32_t noffered;       /* indices pending in the dispatcher */
};

struct evheap {
	struct ev *v;
	size_t n, cap;
};

struct bins {
	double *alloc;  /* [bin][team] GPU-ms allocated */
	double *dem;    /* [bin][team] GPU-ms asked for (pending + running) */
	size_t n, cap;
};

struct stats {
	double mean, median, p95;
};

struct team_result {
	size_t n;
	struct stats queue;
	double jct_mean;
	uint64_t preemptions;
	double lost_gpuh;
};

struct result {
	const struct policy *pol;
	struct team_result team[NTEAMS];
	double *queue, *jct;          /* s, per job */
	uint64_t preemptions;
	double lost_gpuh, used_gpuh;
	double window_alloc;          /* GPU-ms allocated before the last arrival */
	double jain, util;            /* util: % of the pool over the window */
	size_t peak_queued;           /* most tasks pending in the dispatcher at once */
	int64_t makespan;             /* ms, from the first submission to the last end */
	double wall;                  /* s */
	struct bins bins;
};

struct opts {
	const char *traces, *out, *quota, *vc;
	uint32_t nodes;
	int64_t ckpt_ms, min_runtime_ms, bin_ms, half_life_ms;
	size_t max_jobs;              /* per cluster, 0: all */
	int runs;
	bool plots;
	bool arrays;                  /* sweeps as arrays */
	uint32_t array_limit;         /* their % limit; 0: none */
	int64_t chain_ms;             /* parts of at most this long; 0: none */
	const char *only;
};

/* jobs[0, ntrace): the trace's, by submission; then the later parts of
 * chains. Each replay gives a job the id of its index + 1, but an array's
 * later indices, which get a new one when they are handed over (as in
 * hpqd). */
static struct job *jobs;
static size_t njobs, jobs_cap, ntrace;
static struct array *arrays;
static size_t narrays, array_jobs, nchained;
static double team_gpuh[NTEAMS];
static uint32_t team_maxgpus[NTEAMS], team_njobs[NTEAMS];
static uint32_t guar_nodes[NTEAMS];
static uint32_t weight[NTEAMS];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("hpq-replay: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the traces ---- */

/* A non-negative decimal integer field ending at a comma or the line's end. */
static bool field_int(char **p, int64_t *ret)
{
	char *end;
	long long v;

	errno = 0;
	if (**p < '0' || **p > '9')
		return false;
	v = strtoll(*p, &end, 10);
	if (errno || (*end != ',' && *end != '\n' && *end != '\0' && *end != '\r'))
		return false;
	*ret = v;
	*p = *end == ',' ? end + 1 : end;
	return true;
}

/* One clusterNN.csv: job_id,submission_time,duration,num_gpu. */
static void load_cluster(const char *dir, uint32_t team, size_t max_jobs)
{
	char path[4096], line[512];
	size_t lineno = 0, n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cluster%02u.csv", dir, team + 1);
	f = fopen(path, "r");
	if (!f)
		die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		int64_t sub, dur, gpus;
		char *p = line;
		struct job *j;

		lineno++;
		if (lineno == 1) {
			if (strncmp(line, "job_id,submission_time,duration,num_gpu", 39))
				die("%s: not an ITP trace (header %.60s)", path, line);
			continue;
		}
		if (max_jobs && n >= max_jobs)
			break;
		p = strchr(line, ',');
		if (!p)
			die("%s:%zu: no fields", path, lineno);
		p++;
		if (!field_int(&p, &sub) || !field_int(&p, &dur) || !field_int(&p, &gpus))
			die("%s:%zu: bad submission_time, duration or num_gpu", path, lineno);
		if (gpus < 1 || (gpus > NODE_GPUS && gpus % NODE_GPUS) || gpus > 1024 ||
		    dur < 1 || sub > INT64_MAX / 2 / MS || dur > INT64_MAX / 4 / MS)
			die("%s:%zu: job of %" PRId64 " GPUs for %" PRId64 " s cannot be replayed",
			    path, lineno, gpus, dur);
		if (njobs == jobs_cap) {
			jobs_cap = jobs_cap ? 2 * jobs_cap : 16384;
			jobs = xreallocarray(jobs, jobs_cap, sizeof(*jobs));
		}
		j = &jobs[njobs++];
		memset(j, 0, sizeof(*j));
		j->submit = sub * MS;
		j->work = dur * MS;
		j->gpus = (uint32_t)gpus;
		j->team = team;
		team_gpuh[team] += (double)dur * (double)gpus / 3600;
		if (j->gpus > team_maxgpus[team])
			team_maxgpus[team] = j->gpus;
		team_njobs[team]++;
		n++;
	}
	if (ferror(f))
		die("%s: read error", path);
	fclose(f);
	if (!n)
		die("%s: no jobs", path);
}

static int job_cmp(const void *a, const void *b)
{
	const struct job *x = a, *y = b;

	if (x->submit != y->submit)
		return x->submit < y->submit ? -1 : 1;
	if (x->team != y->team)
		return x->team < y->team ? -1 : 1;
	return x->t.id < y->t.id ? -1 : x->t.id > y->t.id;
}

static void load(const struct opts *o)
{
	uint32_t i;

	for (i = 0; i < NTEAMS; i++)
		load_cluster(o->traces, i, o->max_jobs);
	/* simultaneous jobs go in team order, then file order (qsort is not stable) */
	for (i = 0; i < njobs; i++)
		jobs[i].t.id = i;
	qsort(jobs, njobs, sizeof(*jobs), job_cmp);
	for (i = 0; i < njobs; i++)
		jobs[i].part_next = jobs[i].array = jobs[i].array_next = NONE;
	ntrace = njobs;
}

/*
 * --arrays: each team's jobs of one size submitted in the same second
 * (two or more) become one array, its indices in trace order. The jobs of
 * one second and team lie together in jobs[].
 */
static void make_arrays(void)
{
	size_t cap = 0;

	for (size_t i = 0; i < ntrace; i++) {
		struct job *j = &jobs[i];
		uint32_t last = (uint32_t)i, n = 1;

		if (j->array != NONE)
			continue;
		for (size_t k = i + 1; k < ntrace && jobs[k].submit == j->submit &&
				       jobs[k].team == j->team; k++) {
			if (jobs[k].gpus != j->gpus)
				continue;
			jobs[last].array_next = (uint32_t)k;
			jobs[k].array = (uint32_t)narrays;
			last = (uint32_t)k;
			n++;
		}
		if (n == 1)
			continue;
		if (narrays == cap) {
			cap = cap ? 2 * cap : 1024;
			arrays = xreallocarray(arrays, cap, sizeof(*arrays));
		}
		j->array = (uint32_t)narrays;
		arrays[narrays++] = (struct array){.first = (uint32_t)i, .n = n};
		array_jobs += n;
	}
}

/*
 * --chain: a job longer than chain_ms runs as parts of chain_ms, the last
 * one the rest, each after the one before. The first part is the trace
 * job itself (in an array, the array's index); the others follow jobs[].
 */
static void make_chains(int64_t chain_ms)
{
	for (size_t i = 0; i < ntrace; i++) {
		uint32_t prev = (uint32_t)i;
		int64_t rest;

		if (jobs[i].work <= chain_ms)
			continue;
		rest = jobs[i].work - chain_ms;
		jobs[i].work = chain_ms;
		nchained++;
		while (rest > 0) {
			struct job *p;

			if (njobs == jobs_cap) {
				jobs_cap *= 2;
				jobs = xreallocarray(jobs, jobs_cap, sizeof(*jobs));
			}
			p = &jobs[njobs];
			*p = jobs[i];
			p->work = rest < chain_ms ? rest : chain_ms;
			p->array = p->array_next = p->part_next = NONE;
			jobs[prev].part_next = (uint32_t)njobs;
			prev = (uint32_t)njobs++;
			rest -= p->work;
		}
	}
}

/* ---- guarantees ---- */

/* The Philly virtual clusters' sizes in nodes (vc-reference/philly_vc.csv), largest first. */
static uint32_t philly_sizes(const char *dir, double *ret)
{
	char path[4096], line[256];
	uint32_t n = 0, i, k;
	FILE *f;

	snprintf(path, sizeof(path), "%s/philly_vc.csv", dir);
	f = fopen(path, "r");
	if (!f)
		die("%s: %s", path, strerror(errno));
	if (!fgets(line, sizeof(line), f) || strncmp(line, "vc,node num", 11))
		die("%s: not philly_vc.csv", path);
	while (n < 64 && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ',');
		int64_t v;

		if (!p)
			die("%s: bad line %.40s", path, line);
		p++;
		if (!field_int(&p, &v) || v < 1 || v > 100000)
			die("%s: bad node count in %.40s", path, line);
		ret[n++] = (double)v;
	}
	fclose(f);
	if (n < NTEAMS)
		die("%s: %u VCs, %d needed", path, n, NTEAMS);
	for (i = 1; i < n; i++)
		for (k = i; k > 0 && ret[k - 1] < ret[k]; k--) {
			double t = ret[k];

			ret[k] = ret[k - 1];
			ret[k - 1] = t;
		}
	return n;
}

/*
 * Splits the pool's nodes among the teams in proportion to target[] (whole
 * nodes, largest remainder), each at least its largest job: a static split
 * where a team's job can never start would not finish.
 */
static void split(const struct opts *o, const double *target)
{
	double sum = 0, want[NTEAMS];
	uint32_t i, total = 0, floor_n[NTEAMS];

	for (i = 0; i < NTEAMS; i++)
		sum += target[i];
	for (i = 0; i < NTEAMS; i++) {
		floor_n[i] = (team_maxgpus[i] + NODE_GPUS - 1) / NODE_GPUS;
		want[i] = (double)o->nodes * target[i] / sum;
		guar_nodes[i] = (uint32_t)want[i];
		if (guar_nodes[i] < floor_n[i])
			guar_nodes[i] = floor_n[i];
		total += guar_nodes[i];
	}
	while (total < o->nodes) {
		uint32_t best = 0;

		for (i = 1; i < NTEAMS; i++)
			if (want[i] - guar_nodes[i] > want[best] - guar_nodes[best])
				best = i;
		guar_nodes[best]++;
		total++;
	}
	while (total > o->nodes) {
		uint32_t best = NTEAMS;

		for (i = 0; i < NTEAMS; i++)
			if (guar_nodes[i] > floor_n[i] &&
			    (best == NTEAMS ||
			     guar_nodes[i] - want[i] > guar_nodes[best] - want[best]))
				best = i;
		if (best == NTEAMS)
			die("%u nodes cannot hold every team's largest job", o->nodes);
		guar_nodes[best]--;
		total--;
	}
}

/*
 * demand: each team's guarantee is its share of the trace's GPU-hours;
 * philly: the ten largest Philly VC sizes, given by rank (the team with the
 * most GPU-hours gets the largest VC), scaled to the pool. Team weights
 * are the guarantees in nodes, in every policy.
 */
static void guarantees(const struct opts *o)
{
	double target[NTEAMS];
	uint32_t i;

	if (!strcmp(o->quota, "demand")) {
		for (i = 0; i < NTEAMS; i++)
			target[i] = team_gpuh[i];
	} else {
		double vc[64];
		uint32_t rank[NTEAMS], k;

		philly_sizes(o->vc, vc);
		for (i = 0; i < NTEAMS; i++)
			rank[i] = i;
		for (i = 1; i < NTEAMS; i++)
			for (k = i; k > 0 && team_gpuh[rank[k - 1]] < team_gpuh[rank[k]]; k--) {
				uint32_t t = rank[k];

				rank[k] = rank[k - 1];
				rank[k - 1] = t;
			}
		for (i = 0; i < NTEAMS; i++)
			target[rank[i]] = vc[i];
	}
	split(o, target);
	for (i = 0; i < NTEAMS; i++)
		weight[i] = guar_nodes[i];
}

/* ---- events ---- */

/*
 * Ends before checkpoints, then trace order: a total order, because the
 * order of ends of one instant decides which nodes the dispatcher sees
 * freed last, and so where the next tasks go. Left to the heap, it would
 * depend on what else the heap holds (the checkpoints of the -preempt
 * policies), and a policy that preempts nothing would place differently.
 */
static bool ev_before(const struct ev *a, const struct ev *b)
{
	if (a->t != b->t)
		return a->t < b->t;
	if (a->kind != b->kind)
		return a->kind < b->kind;
	if (a->job != b->job)
		return a->job < b->job;
	return a->attempt < b->attempt;
}

static void ev_push(struct evheap *h, struct ev e)
{
	size_t i;

	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 4096;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	i = h->n++;
	while (i > 0 && ev_before(&e, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = e;
}

static struct ev ev_pop(struct evheap *h)
{
	struct ev top = h->v[0], e = h->v[--h->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && ev_before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!ev_before(&h->v[c], &e))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = e;
	return top;
}

static void team_results(struct result *r);

/* A trace job's fate: the waits of its parts, each from when it could
 * run, and its last part's end. */
struct outcome {
	int64_t queue, end;
};

static struct outcome outcome_of(const struct job *j)
{
	struct outcome oc = {0, 0};

	for (;;) {
		oc.queue += j->first_start - j->ready;
		oc.end = j->end;
		if (j->part_next == NONE)
			return oc;
		j = &jobs[j->part_next];
	}
}

/* ---- one replay ---- */

struct sim {
	const struct opts *o;
	const struct policy *pol;
	struct sched *s;
	struct evheap ev;
	int64_t now, window_end;
	int64_t run_gpus[NTEAMS], dem_gpus[NTEAMS], busy, cap;
	size_t ended;
	size_t queued;           /* tasks pending in the dispatcher */
	uint64_t next_id;        /* the last id given */
	struct result *r;
};

static void bins_grow(struct bins *b, size_t need)
{
	size_t old = b->cap;

	if (need <= b->cap)
		return;
	b->cap = b->cap ? b->cap : 256;
	while (b->cap < need)
		b->cap *= 2;
	b->alloc = xreallocarray(b->alloc, b->cap * NTEAMS, sizeof(double));
	b->dem = xreallocarray(b->dem, b->cap * NTEAMS, sizeof(double));
	memset(b->alloc + old * NTEAMS, 0, (b->cap - old) * NTEAMS * sizeof(double));
	memset(b->dem + old * NTEAMS, 0, (b->cap - old) * NTEAMS * sizeof(double));
}

/* Integrates allocation and demand over [m->now, to). */
static void advance(struct sim *m, int64_t to)
{
	int64_t from = m->now, bin = m->o->bin_ms;
	uint32_t i;

	if (to <= from)
		return;
	if (from < m->window_end)
		m->r->window_alloc +=
			(double)m->busy * (double)((to < m->window_end ? to : m->window_end) - from);
	while (from < to) {
		size_t b = (size_t)(from / bin);
		int64_t end = (int64_t)(b + 1) * bin;
		double dt;

		if (end > to)
			end = to;
		dt = (double)(end - from);
		bins_grow(&m->r->bins, b + 1);
		if (b + 1 > m->r->bins.n)
			m->r->bins.n = b + 1;
		for (i = 0; i < NTEAMS; i++) {
			m->r->bins.alloc[b * NTEAMS + i] += (double)m->run_gpus[i] * dt;
			m->r->bins.dem[b * NTEAMS + i] += (double)m->dem_gpus[i] * dt;
		}
		from = end;
	}
	m->now = to;
}

/* The dispatcher's queue length, for peak_queued. */
static void queued_add(struct sim *m)
{
	if (++m->queued > m->r->peak_queued)
		m->r->peak_queued = m->queued;
}

static void submit(struct sim *m, struct job *j)
{
	if (sched_task_submit(m->s, &j->t) < 0)
		die("%s: submit of job %" PRIu64 " refused", m->pol->name, j->t.id);
	queued_add(m);
}

/* ---- arrays, by daemon/array.c's rules ---- */

/* The % limit counts what runs and what the dispatcher may start. */
static bool array_may_grow(const struct sim *m, const struct array *a)
{
	uint32_t limit = m->o->array_limit;

	return a->head == NONE && a->pending != NONE &&
	       (!limit || a->nactive + a->noffered < limit);
}

/* The next index, made the array's head: the one that, when it starts,
 * hands over the one after it. */
static struct job *array_hand_over(struct sim *m, struct array *a)
{
	uint32_t k = a->pending;
	struct job *x = &jobs[k];

	a->pending = x->array_next;
	/* The array's id is its first index's; the others get theirs now. */
	if (k != a->first)
		x->t.id = ++m->next_id;
	x->t.successor = true;
	a->head = k;
	a->noffered++;
	return x;
}

/* Outside a cycle: an index more in the dispatcher, if the array may. */
static void array_refill(struct sim *m, struct array *a)
{
	if (array_may_grow(m, a))
		submit(m, array_hand_over(m, a));
}

/* The dispatcher's successor hook (scheduler.h): in a cycle, an index
 * started. */
static struct sched_task *array_successor(void *ctx, struct sched_task *started)
{
	struct sim *m = ctx;
	struct job *j = container_of(started, struct job, t);
	struct array *a;

	if (j->array == NONE) {
		started->successor = false;
		return NULL;
	}
	a = &arrays[j->array];
	a->nactive++;
	if (a->noffered)
		a->noffered--;
	if (a->head != (uint32_t)(j - jobs))
		return NULL;
	a->head = NONE;
	if (!array_may_grow(m, a))
		return NULL;
	queued_add(m); /* it joins the queue at once */
	return &array_hand_over(m, a)->t;
}

static void on_start(struct sim *m, struct job *j)
{
	m->queued--;
	if (j->array != NONE && m->o->array_limit &&
	    arrays[j->array].nactive > m->o->array_limit)
		die("%s: an array runs %u indices, over its limit of %u", m->pol->name,
		    arrays[j->array].nactive, m->o->array_limit);
	m->run_gpus[j->team] += j->gpus;
	m->busy += j->gpus;
	if (m->busy > m->cap)
		die("%s: %" PRId64 " GPUs in use of %" PRId64, m->pol->name, m->busy, m->cap);
	if (m->pol->mode == M_STATIC && m->run_gpus[j->team] > guar_nodes[j->team] * NODE_GPUS)
		die("static: team %u uses %" PRId64 " GPUs over its guarantee of %u", j->team + 1,
		    m->run_gpus[j->team], guar_nodes[j->team] * NODE_GPUS);
	if (j->first_start < 0)
		j->first_start = m->now;
	j->attempt++;
	j->ckpt = m->now;
	ev_push(&m->ev, (struct ev){m->now + j->left, (uint32_t)(j - jobs), j->attempt, EV_END});
	if (m->pol->preempt && m->o->ckpt_ms > 0 && m->o->ckpt_ms < j->left)
		ev_push(&m->ev, (struct ev){m->now + m->o->ckpt_ms, (uint32_t)(j - jobs),
					    j->attempt, EV_CKPT});
}

/* The victim stops now: what it did up to its last checkpoint is kept. */
static void on_preempt(struct sim *m, struct job *j)
{
	int64_t kept = j->ckpt - j->t.start_ms, lost = m->now - j->ckpt;

	m->run_gpus[j->team] -= j->gpus;
	m->busy -= j->gpus;
	j->left -= kept;
	j->lost += (double)lost * j->gpus;
	j->preempted++;
	j->attempt++;
	m->r->preemptions++;
	sched_task_requeue(m->s, &j->t, m->now);
	queued_add(m);
	if (j->array != NONE) {
		arrays[j->array].nactive--;
		arrays[j->array].noffered++;
	}
}

static void on_event(struct sim *m, const struct ev *e)
{
	struct job *j = &jobs[e->job];

	if (e->attempt != j->attempt || j->t.state != SCHED_RUNNING)
		return;
	if (e->kind == EV_CKPT) {
		j->ckpt = m->now;
		sched_task_checkpoint(m->s, &j->t, m->now);
		if (m->now + m->o->ckpt_ms < j->t.start_ms + j->left)
			ev_push(&m->ev, (struct ev){m->now + m->o->ckpt_ms, e->job, j->attempt,
						    EV_CKPT});
		return;
	}
	sched_task_finish(m->s, &j->t, m->now);
	m->run_gpus[j->team] -= j->gpus;
	m->busy -= j->gpus;
	j->end = m->now;
	m->ended++;
	if (j->array != NONE) {
		arrays[j->array].nactive--;
		array_refill(m, &arrays[j->array]);
	}
	if (j->part_next == NONE) {
		m->dem_gpus[j->team] -= j->gpus;
		return;
	}
	/* The next part's dependency is met: it enters the queue now, with
	 * the job's submission as its queue time; the job still asks. */
	j = &jobs[j->part_next];
	j->ready = m->now;
	submit(m, j);
}

/* Cycles until nothing more is preempted at this instant. */
static void cycles(struct sim *m)
{
	static struct sched_task **victims;
	static size_t vcap;
	int guard;

	for (guard = 0; guard < 64; guard++) {
		const struct sched_decision *d;
		size_t n, i, nv = 0;

		d = sched_cycle(m->s, m->now, &n);
		for (i = 0; i < n; i++) {
			if (d[i].action == SCHED_START) {
				on_start(m, container_of(d[i].task, struct job, t));
				continue;
			}
			if (nv == vcap) {
				vcap = vcap ? 2 * vcap : 64;
				victims = xreallocarray(victims, vcap, sizeof(*victims));
			}
			victims[nv++] = d[i].task;
		}
		/* the decisions are gone once the dispatcher changes: victims were copied */
		for (i = 0; i < nv; i++)
			on_preempt(m, container_of(victims[i], struct job, t));
		if (!nv)
			return;
	}
	/* Each round ends what it preempts and starts what it can: rounds
	 * without end at one instant would be tasks preempting each other. */
	die("%s: preemption did not settle in %d cycles at %" PRId64 " s", m->pol->name, guard,
	    m->now / MS);
}

static void sched_setup(struct sim *m)
{
	struct sched_policy sp = {
		.idle = m->pol->idle,
		.half_life_ms = m->o->half_life_ms,
		.min_runtime_ms = m->o->min_runtime_ms,
	};
	uint32_t i;

	m->s = sched_new(&sp);
	sched_set_successor(m->s, array_successor, m);
	if (sched_class_set(m->s, 0, 10, m->pol->preempt) < 0)
		die("class");
	for (i = 0; i < m->o->nodes; i++)
		if (sched_node_set(m->s, i, 0, (struct hpq_res){NODE_GPUS, 64, 1 << 20}, true) < 0)
			die("node %u", i);
	for (i = 0; i < NTEAMS; i++) {
		struct sched_quota q = {.sharing = SCHED_LEND_AND_BORROW};

		if (m->pol->mode != M_NOGUAR)
			q.guarantee = (struct hpq_res){(int64_t)guar_nodes[i] * NODE_GPUS, 0, 0};
		if (m->pol->mode == M_STATIC) {
			q.sharing = SCHED_DONT_LEND;
			q.borrow_limit_pct = 0;
		} else {
			/* borrowing is not what is compared: up to the whole pool */
			q.has_borrow_abs = true;
			q.borrow_abs = (struct hpq_res){m->cap, 0, 0};
		}
		if (sched_team_set(m->s, i, weight[i], false) < 0 ||
		    sched_team_quota(m->s, i, 0, &q) < 0)
			die("team %u", i + 1);
	}
}

static void replay(const struct opts *o, const struct policy *pol, struct result *r)
{
	struct sim m = {.o = o, .pol = pol, .r = r};
	size_t next = 0, i;
	double t0 = now_s();

	m.cap = (int64_t)o->nodes * NODE_GPUS;
	m.window_end = jobs[ntrace - 1].submit;
	m.next_id = njobs;
	free(r->bins.alloc);
	free(r->bins.dem);
	memset(r, 0, sizeof(*r));
	r->pol = pol;
	for (i = 0; i < njobs; i++) {
		struct job *j = &jobs[i];
		struct sched_task *t = &j->t;

		memset(t, 0, sizeof(*t));
		t->id = i + 1;
		t->submit_ms = j->submit;
		t->team = j->team;
		t->class_id = 0;
		t->nnodes = j->gpus > NODE_GPUS ? j->gpus / NODE_GPUS : 1;
		t->per_node = (struct hpq_res){j->gpus > NODE_GPUS ? NODE_GPUS : j->gpus, 0, 0};
		j->left = j->work;
		j->ready = j->first_start = j->end = -1;
		j->ckpt = 0;
		j->attempt = 0;
		j->preempted = 0;
		j->lost = 0;
	}
	for (i = 0; i < narrays; i++) {
		struct array *a = &arrays[i];

		a->pending = a->first;
		a->head = NONE;
		a->nactive = a->noffered = 0;
	}
	sched_setup(&m);
	m.now = jobs[0].submit;
	while (m.ended < njobs) {
		int64_t t = INT64_MAX, w = sched_next_wakeup(m.s);

		if (next < ntrace)
			t = jobs[next].submit;
		if (m.ev.n && m.ev.v[0].t < t)
			t = m.ev.v[0].t;
		/* a wakeup due now was served by the cycle that just ran */
		if (w > m.now && w < t)
			t = w;
		if (t == INT64_MAX)
			die("%s: %zu jobs can never start", pol->name, njobs - m.ended);
		advance(&m, t);
		while (m.ev.n && m.ev.v[0].t == t) {
			struct ev e = ev_pop(&m.ev);

			on_event(&m, &e);
		}
		while (next < ntrace && jobs[next].submit == t) {
			struct job *j = &jobs[next];

			m.dem_gpus[j->team] += j->gpus;
			j->ready = j->submit;
			if (j->array == NONE)
				submit(&m, j);
			else if (arrays[j->array].first == next)
				array_refill(&m, &arrays[j->array]);
			next++;
		}
		cycles(&m);
	}
	r->wall = now_s() - t0;
	sched_free(m.s);
	free(m.ev.v);
	r->queue = xreallocarray(NULL, ntrace, sizeof(double));
	r->jct = xreallocarray(NULL, ntrace, sizeof(double));
	for (i = 0; i < njobs; i++) {
		const struct job *j = &jobs[i];

		if (j->end < 0 || j->ready < j->submit || j->first_start < j->ready)
			die("%s: job %zu never ran", pol->name, i);
		r->lost_gpuh += j->lost / MS / 3600;
		r->used_gpuh += ((double)j->work * j->gpus + j->lost) / MS / 3600;
		if (j->end - jobs[0].submit > r->makespan)
			r->makespan = j->end - jobs[0].submit;
	}
	for (i = 0; i < ntrace; i++) {
		struct outcome oc = outcome_of(&jobs[i]);

		r->queue[i] = (double)oc.queue / MS;
		r->jct[i] = (double)(oc.end - jobs[i].submit) / MS;
	}
	team_results(r);
}

/* ---- figures ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Of v sorted, n > 0: the middle value, or the mean of the middle two. */
static double median_of(const double *v, size_t n)
{
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Sorts v. p95 by nearest rank, as bench_quantile: the smallest value
 * that at least 95% of them do not exceed (the rank in whole numbers, so
 * that 0.95 * n cannot round past it). */
static struct stats stats_of(double *v, size_t n)
{
	struct stats st = {0, 0, 0};
	size_t i;

	if (!n)
		return st;
	qsort(v, n, sizeof(*v), cmp_double);
	for (i = 0; i < n; i++)
		st.mean += v[i];
	st.mean /= (double)n;
	st.median = median_of(v, n);
	st.p95 = v[(95 * n + 99) / 100 - 1];
	return st;
}

/* Per team: the trace jobs' delays and completion times as replay()
 * left them in r (in trace order: before stats_of sorts them), and what
 * preemption took from every part. */
static void team_results(struct result *r)
{
	double *qv = xreallocarray(NULL, ntrace, sizeof(double));
	double *cv = xreallocarray(NULL, ntrace, sizeof(double));
	double lost[NTEAMS] = {0}; /* GPU-ms: whole numbers, summed exactly */
	uint32_t t;
	size_t i;

	memset(r->team, 0, sizeof(r->team));
	for (i = 0; i < njobs; i++) {
		r->team[jobs[i].team].preemptions += jobs[i].preempted;
		lost[jobs[i].team] += jobs[i].lost;
	}
	for (t = 0; t < NTEAMS; t++) {
		struct team_result *tr = &r->team[t];
		size_t n = 0;

		for (i = 0; i < ntrace; i++) {
			if (jobs[i].team != t)
				continue;
			qv[n] = r->queue[i];
			cv[n++] = r->jct[i];
		}
		tr->n = n;
		tr->queue = stats_of(qv, n);
		tr->jct_mean = stats_of(cv, n).mean;
		tr->lost_gpuh = lost[t] / MS / 3600;
	}
	free(qv);
	free(cv);
}

/*
 * Jain's index over the teams that asked for GPUs in one bin, of what each
 * got divided by its weighted max-min fair share of the whole pool given
 * what it asked for (water-filling by weight). 1 when every team got its
 * fair share; a static split loses when a team waits over its guarantee
 * while another's sits idle. The result is the mean over bins where at
 * least two teams asked.
 */
static double jain(const struct result *r, double cap_bin)
{
	double sum = 0;
	size_t b, nb = 0;

	for (b = 0; b < r->bins.n; b++) {
		const double *a = &r->bins.alloc[b * NTEAMS], *d = &r->bins.dem[b * NTEAMS];
		double fair[NTEAMS] = {0}, left = cap_bin, sx = 0, sxx = 0;
		bool done[NTEAMS] = {false};
		uint32_t i, n = 0;

		for (i = 0; i < NTEAMS; i++)
			if (d[i] <= 0)
				done[i] = true;
			else
				n++;
		if (n < 2)
			continue;
		for (;;) {
			double wsum = 0;
			bool capped = false;

			for (i = 0; i < NTEAMS; i++)
				if (!done[i])
					wsum += weight[i];
			if (wsum <= 0 || left <= 0)
				break;
			for (i = 0; i < NTEAMS; i++) {
				if (done[i] || d[i] > left * weight[i] / wsum)
					continue;
				fair[i] = d[i];
				done[i] = true;
				capped = true;
			}
			if (!capped) {
				for (i = 0; i < NTEAMS; i++)
					if (!done[i])
						fair[i] = left * weight[i] / wsum;
				break;
			}
			left = cap_bin;
			for (i = 0; i < NTEAMS; i++)
				if (done[i] && d[i] > 0)
					left -= fair[i];
		}
		for (i = 0; i < NTEAMS; i++) {
			double x;

			if (d[i] <= 0 || fair[i] <= 0)
				continue;
			x = a[i] / fair[i];
			sx += x;
			sxx += x * x;
		}
		if (sxx > 0) {
			sum += sx * sx / ((double)n * sxx);
			nb++;
		}
	}
	return nb ? sum / (double)nb : 1;
}

static FILE *out_open(const struct opts *o, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", o->out, name);
	f = fopen(path, "w");
	if (!f)
		die("%s: %s", path, strerror(errno));
	return f;
}

static void out_close(FILE *f, const char *name)
{
	if (fclose(f))
		die("%s: write error", name);
}

static void write_csv(const struct opts *o, struct result *res, size_t nres)
{
	double cap = (double)o->nodes * NODE_GPUS;
	/* the window replay() integrates window_alloc over: first to last submission */
	int64_t span = jobs[ntrace - 1].submit - jobs[0].submit;
	double window = span > 0 ? (double)span : 1;
	size_t p, b, nbins = 0;
	FILE *f = out_open(o, "summary.csv"), *g;

	fprintf(f, "policy,jobs,queue_mean_s,queue_median_s,queue_p95_s,jct_mean_s,"
		   "jct_median_s,jct_p95_s,util_pct,jain,preemptions,gpu_hours_lost,"
		   "gpu_hours_used,makespan_h,wall_s,peak_queued\n");
	for (p = 0; p < nres; p++) {
		struct result *r = &res[p];
		struct stats q = stats_of(r->queue, ntrace), c = stats_of(r->jct, ntrace);

		r->jain = jain(r, cap * (double)o->bin_ms);
		r->util = 100 * r->window_alloc / (cap * window);
		fprintf(f, "%s,%zu,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.2f,%.4f,%" PRIu64
			   ",%.1f,%.1f,%.1f,%.3f,%zu\n",
			r->pol->name, ntrace, q.mean, q.median, q.p95, c.mean, c.median, c.p95,
			r->util, r->jain, r->preemptions, r->lost_gpuh, r->used_gpuh,
			(double)r->makespan / MS / 3600, r->wall, r->peak_queued);
		if (r->bins.n > nbins)
			nbins = r->bins.n;
	}
	out_close(f, "summary.csv");

	f = out_open(o, "teams.csv");
	fprintf(f, "policy,team,cluster,guarantee_gpus,weight,jobs,gpu_hours,queue_mean_s,"
		   "queue_median_s,queue_p95_s,jct_mean_s,preemptions,gpu_hours_lost\n");
	for (p = 0; p < nres; p++) {
		uint32_t t;

		for (t = 0; t < NTEAMS; t++) {
			const struct team_result *tr = &res[p].team[t];

			fprintf(f, "%s,%u,cluster%02u,%u,%u,%zu,%.1f,%.0f,%.0f,%.0f,%.0f,%" PRIu64 ",%.1f\n",
				res[p].pol->name, t + 1, t + 1,
				res[p].pol->mode == M_NOGUAR ? 0 : guar_nodes[t] * NODE_GPUS, weight[t],
				tr->n, team_gpuh[t], tr->queue.mean, tr->queue.median, tr->queue.p95,
				tr->jct_mean, tr->preemptions, tr->lost_gpuh);
		}
	}
	out_close(f, "teams.csv");

	f = out_open(o, "util.csv");
	fprintf(f, "hour");
	for (p = 0; p < nres; p++)
		fprintf(f, ",%s", res[p].pol->name);
	fprintf(f, "\n");
	for (b = 0; b < nbins; b++) {
		fprintf(f, "%.2f", (double)(b * o->bin_ms) / MS / 3600);
		for (p = 0; p < nres; p++) {
			double a = 0;
			uint32_t t;

			for (t = 0; b < res[p].bins.n && t < NTEAMS; t++)
				a += res[p].bins.alloc[b * NTEAMS + t];
			fprintf(f, ",%.2f", 100 * a / (cap * (double)o->bin_ms));
		}
		fprintf(f, "\n");
	}
	out_close(f, "util.csv");

	for (p = 0; p < nres; p++) {
		char name[128];
		uint32_t t;

		snprintf(name, sizeof(name), "share-%s.csv", res[p].pol->name);
		g = out_open(o, name);
		fprintf(g, "hour");
		for (t = 0; t < NTEAMS; t++)
			fprintf(g, ",team%02u", t + 1);
		fprintf(g, "\n");
		for (b = 0; b < res[p].bins.n; b++) {
			fprintf(g, "%.2f", (double)(b * o->bin_ms) / MS / 3600);
			for (t = 0; t < NTEAMS; t++)
				fprintf(g, ",%.2f",
					100 * res[p].bins.alloc[b * NTEAMS + t] /
						(cap * (double)o->bin_ms));
			fprintf(g, "\n");
		}
		out_close(g, name);
	}
}

/* ---- plots ---- */

static void write_gp(const struct opts *o, const struct result *res, size_t nres)
{
	FILE *f = out_open(o, "replay.gp");
	size_t p;
	uint32_t t;

	fprintf(f, "# written by hpq-replay: gnuplot replay.gp (in this directory)\n"
		   "set terminal pngcairo size 1200,600 noenhanced\n"
		   "set datafile separator ','\n"
		   "set grid ytics\n"
		   "set key outside right\n\n");
	fprintf(f, "set output 'queue.png'\n"
		   "set title 'Queueing delay per policy (%zu jobs, %u GPUs)'\n"
		   "set ylabel 'seconds (log scale; under 1 s drawn as 1 s)'\n"
		   "set logscale y\n"
		   "set yrange [1:*]\n"
		   "set style data histograms\n"
		   "set style histogram clustered gap 1\n"
		   "set style fill solid 0.8 border -1\n"
		   "set xtics rotate by -30\n"
		   "plot 'summary.csv' skip 1 using ($3 < 1 ? 1 : $3):xtic(1) title 'mean', \\\n"
		   "     '' skip 1 using ($4 < 1 ? 1 : $4) title 'median', \\\n"
		   "     '' skip 1 using ($5 < 1 ? 1 : $5) title 'p95'\n"
		   "set xtics norotate\n"
		   "unset logscale y\n\n",
		   ntrace, o->nodes * NODE_GPUS);
	fprintf(f, "set output 'util.png'\n"
		   "set title 'GPU utilisation over time (%.0f h bins)'\n"
		   "set xlabel 'day'\n"
		   "set ylabel 'GPUs allocated, %% of the pool'\n"
		   "set yrange [0:105]\n"
		   "plot for [i=2:%zu] 'util.csv' using ($1/24):i with lines "
		   "title columnhead(i)\n"
		   "set yrange [*:*]\n\n",
		   (double)o->bin_ms / MS / 3600, nres + 1);
	for (p = 0; p < nres; p++) {
		fprintf(f, "set output 'share-%s.png'\n"
			   "set title 'Per-team share of the pool over time: %s'\n"
			   "set xlabel 'day'\n"
			   "set ylabel '%% of the pool'\n"
			   "set yrange [0:105]\n"
			   "plot ",
			res[p].pol->name, res[p].pol->name);
		/* stacked: team 10 at the bottom of the drawing order, team 1 on top */
		for (t = NTEAMS; t >= 1; t--)
			fprintf(f, "'share-%s.csv' skip 1 using ($1/24):(sum [c=2:%u] column(c)) "
				   "with filledcurves x1 title 'team%02u (cluster%02u)'%s",
				res[p].pol->name, t + 1, t, t, t > 1 ? ", \\\n     " : "\n");
		fprintf(f, "set yrange [*:*]\n\n");
	}
	out_close(f, "replay.gp");
}

/* Runs gnuplot on replay.gp in the output directory, if gnuplot is there. */
static void run_gnuplot(const struct opts *o)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (chdir(o->out) < 0)
			_exit(126);
		execlp("gnuplot", "gnuplot", "replay.gp", (char *)NULL);
		_exit(errno == ENOENT ? 127 : 126);
	}
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		printf("gnuplot is not installed (Debian: gnuplot-nox): no PNG plots; "
		       "%s/replay.gp makes them\n", o->out);
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		fprintf(stderr, "hpq-replay: gnuplot failed on %s/replay.gp\n", o->out);
	else
		printf("plots: %s/queue.png, util.png, share-*.png\n", o->out);
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hpq-replay [--traces DIR] [--vc-reference DIR] [--out DIR] [--nodes N]\n"
		"                  [--quota demand|philly] [--ckpt-interval S] [--min-runtime S]\n"
		"                  [--half-life S] [--bin S] [--max-jobs N] [--runs N]\n"
		"                  [--policy NAME] [--no-plots]\n"
		"                  [--arrays] [--array-limit N] [--chain HOURS]\n"
		"policies:");
	for (size_t i = 0; i < NPOL; i++)
		fprintf(f, " %s", policies[i].name);
	fprintf(f, "\n");
}

/* A whole number in [lo, hi] or a clear error. */
static int64_t num_arg(const char *opt, const char *v, int64_t lo, int64_t hi)
{
	char *end;
	long long x;

	errno = 0;
	x = v ? strtoll(v, &end, 10) : 0;
	if (!v || errno || end == v || *end || x < lo || x > hi)
		die("%s wants a whole number from %" PRId64 " to %" PRId64 ", not '%s'", opt, lo, hi,
		    v ? v : "");
	return x;
}

static void parse(int argc, char **argv, struct opts *o)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--no-plots")) {
			o->plots = false;
			continue;
		} else if (!strcmp(a, "--arrays")) {
			o->arrays = true;
			continue;
		}
		if (!v)
			die("%s wants a value (--help)", a);
		i++;
		if (!strcmp(a, "--traces"))
			o->traces = v;
		else if (!strcmp(a, "--vc-reference"))
			o->vc = v;
		else if (!strcmp(a, "--out"))
			o->out = v;
		else if (!strcmp(a, "--quota"))
			o->quota = v;
		else if (!strcmp(a, "--policy"))
			o->only = v;
		else if (!strcmp(a, "--nodes"))
			o->nodes = (uint32_t)num_arg(a, v, 1, 100000);
		else if (!strcmp(a, "--ckpt-interval"))
			o->ckpt_ms = num_arg(a, v, 0, 365 * 86400) * MS;
		else if (!strcmp(a, "--min-runtime"))
			o->min_runtime_ms = num_arg(a, v, 0, 365 * 86400) * MS;
		else if (!strcmp(a, "--half-life"))
			o->half_life_ms = num_arg(a, v, 0, 365 * 86400) * MS;
		else if (!strcmp(a, "--bin"))
			o->bin_ms = num_arg(a, v, 60, 30 * 86400) * MS;
		else if (!strcmp(a, "--max-jobs"))
			o->max_jobs = (size_t)num_arg(a, v, 0, 100000000);
		else if (!strcmp(a, "--runs"))
			o->runs = (int)num_arg(a, v, 1, 100);
		else if (!strcmp(a, "--array-limit"))
			o->array_limit = (uint32_t)num_arg(a, v, 1, 1000000);
		else if (!strcmp(a, "--chain"))
			o->chain_ms = num_arg(a, v, 1, 24 * 365) * 3600 * MS;
		else
			die("unknown option %s (--help)", a);
	}
	if (o->array_limit && !o->arrays)
		die("--array-limit is the %% limit of --arrays' arrays: give --arrays too");
	if (strcmp(o->quota, "demand") && strcmp(o->quota, "philly"))
		die("--quota is demand or philly, not '%s'", o->quota);
	if (o->only) {
		size_t k;

		for (k = 0; k < NPOL && strcmp(policies[k].name, o->only); k++)
			;
		if (k == NPOL)
			die("no policy '%s' (--help)", o->only);
	}
}

static int cmp_wall(const void *a, const void *b)
{
	return cmp_double(a, b);
}

int main(int argc, char **argv)
{
	struct opts o = {
		.traces = HPQ_REPLAY_TRACES "/itp-elasticflow",
		.vc = HPQ_REPLAY_TRACES "/vc-reference",
		.out = "replay-out",
		.quota = "demand",
		.ckpt_ms = 1800 * MS,
		.half_life_ms = 3600 * MS,
		.bin_ms = 3600 * MS,
		.runs = 1,
		.plots = true,
	};
	struct result res[NPOL];
	double walls[100], load_s;
	size_t p, nres = 0;
	int run;
	uint32_t t;

	parse(argc, argv, &o);
	if (!o.nodes) {
		/* the pool of the Philly VCs: 352 nodes, 2,816 GPUs */
		double vc[64];
		uint32_t n = philly_sizes(o.vc, vc), i;

		for (i = 0; i < n; i++)
			o.nodes += (uint32_t)vc[i];
	}
	if (mkdir(o.out, 0777) < 0 && errno != EEXIST)
		die("%s: %s", o.out, strerror(errno));
	load_s = now_s();
	load(&o);
	if (o.arrays)
		make_arrays();
	if (o.chain_ms)
		make_chains(o.chain_ms);
	load_s = now_s() - load_s;
	guarantees(&o);
	printf("hpq-replay: %zu jobs from %s, %u nodes x %d GPUs, guarantees by %s, "
	       "checkpoint every %" PRId64 " s\n",
	       ntrace, o.traces, o.nodes, NODE_GPUS, o.quota, o.ckpt_ms / MS);
	printf("team  cluster    jobs  GPU-hours  max GPUs  guarantee GPUs\n");
	for (t = 0; t < NTEAMS; t++)
		printf("%4u  cluster%02u %6u %10.0f %9u %15u\n", t + 1, t + 1, team_njobs[t],
		       team_gpuh[t], team_maxgpus[t], guar_nodes[t] * NODE_GPUS);
	if (o.arrays) {
		char lim[32] = "no % limit";
		uint32_t most = 0;

		for (size_t i = 0; i < narrays; i++)
			if (arrays[i].n > most)
				most = arrays[i].n;
		if (o.array_limit)
			snprintf(lim, sizeof(lim), "%%%u", o.array_limit);
		printf("arrays: %zu, of %zu jobs (%.1f%%), the largest %u indices, %s\n", narrays,
		       array_jobs, 100.0 * (double)array_jobs / (double)ntrace, most, lim);
	}
	if (o.chain_ms)
		printf("chains: %zu jobs over %" PRId64 " h run as %zu parts (afterok)\n", nchained,
		       o.chain_ms / MS / 3600, nchained + njobs - ntrace);
	memset(res, 0, sizeof(res));
	for (run = 0; run < o.runs; run++) {
		double t0 = now_s();

		for (p = 0, nres = 0; p < NPOL; p++) {
			if (o.only && strcmp(o.only, policies[p].name))
				continue;
			free(res[nres].queue);
			free(res[nres].jct);
			replay(&o, &policies[p], &res[nres]);
			nres++;
		}
		walls[run] = now_s() - t0;
		printf("run %d: %zu policies in %.3f s (trace load %.3f s)\n", run + 1, nres,
		       walls[run], load_s);
	}
	qsort(walls, (size_t)o.runs, sizeof(double), cmp_wall);
	printf("replay wall time, median of %d: %.3f s\n", o.runs,
	       median_of(walls, (size_t)o.runs));
	write_csv(&o, res, nres);
	write_gp(&o, res, nres);
	printf("\n%-13s %9s %9s %9s %9s %7s %6s %8s %10s %7s\n", "policy", "queue_mean",
	       "median", "p95", "jct_mean", "util%", "jain", "preempt", "lost_GPUh", "queued");
	for (p = 0; p < nres; p++) {
		struct stats q = stats_of(res[p].queue, ntrace), c = stats_of(res[p].jct, ntrace);

		printf("%-13s %9.0fs %8.0fs %8.0fs %8.0fs %7.2f %6.3f %8" PRIu64 " %10.1f %7zu\n",
		       res[p].pol->name, q.mean, q.median, q.p95, c.mean, res[p].util, res[p].jain,
		       res[p].preemptions, res[p].lost_gpuh, res[p].peak_queued);
	}
	printf("csv: %s/summary.csv teams.csv util.csv share-*.csv\n", o.out);
	if (o.plots)
		run_gnuplot(&o);
	for (p = 0; p < nres; p++) {
		free(res[p].queue);
		free(res[p].jct);
		free(res[p].bins.alloc);
		free(res[p].bins.dem);
	}
	free(jobs);
	free(arrays);
	return 0;
}
