/*
 * bench_autoscale: what the autoscaler's decision costs the daemon with
 * 10,000 pending tasks and 1,000 nodes (target: under 1 ms for a cycle
 * that has demand; nothing for a cycle where no autoscaled pool changed).
 *
 * Two parts, each RUNS times, median and p95:
 *
 *   plan    the pure plan (daemon/autoscale-plan.h) alone: 1,000 full
 *           nodes, 100 launching, 10,000 pending tasks of 8 shapes
 *   cycle   autoscale_cycle in a real hpqd core (state, dispatcher, SQLite
 *           store without fsync, as bench_status builds it): 1,000 agents
 *           registered in pool "gpu" through connections without sockets,
 *           [autoscale.gpu] with max_nodes 1,100 (so 100 nodes are launching,
 *           their provision command /bin/true never brings them), the
 *           nodes full and 10,000 tasks pending; a task is submitted (the
 *           pool changed) and the autoscaler's cycle that follows is timed:
 *           gathering the pool from the model, the plan, nothing to launch
 *   noop    autoscale_cycle when no pool changed
 *
 * Usage: bench_autoscale [PENDING [NODES]]. Build with
 * -DCMAKE_BUILD_TYPE=Release; a figure to report, never a pass/fail test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-core.h"
#include "bench.h"
#include "clock.h"
#include "log.h"

#include "../../daemon/autoscale-plan.h"
#include "../../daemon/autoscale.h"

#define RUNS 31

/* The sorted samples' median, p95 and max (bench_quantile sorts them). */
static void report(const char *what, double *us, size_t n)
{
	double med = bench_quantile(us, n, 0.5), p95 = bench_quantile(us, n, 0.95);

	printf("%-6s median %9.1f us   p95 %9.1f us   max %9.1f us\n", what, med, p95,
	       us[n - 1]);
}

/* ---------------------------------------------------------------- the pure plan */

static void bench_plan(unsigned npending, unsigned nnodes)
{
	struct asplan p;
	struct asplan_pool pool = {
		.tmpl = { 8, 96, 1 << 20 },
		.max_nodes = nnodes + 100,
		.idle_timeout_ms = 600000,
		.budget = 10,
		.consolidation = true,
		.may_launch = true,
	};
	struct asplan_node *n = calloc(nnodes + 100, sizeof(*n));
	struct asplan_demand *dem = calloc(npending, sizeof(*dem));
	struct hpq_res *tres = calloc((size_t)nnodes * 8, sizeof(*tres));
	double us[RUNS];

	for (unsigned i = 0; i < nnodes * 8; i++)
		tres[i] = (struct hpq_res){ 1, 12, 1 << 17 };
	for (unsigned i = 0; i < nnodes; i++)
		n[i] = (struct asplan_node){
			.id = i, .state = ASPLAN_READY, .managed = true, .schedulable = true,
			.movable = true, .capacity = { 8, 96, 1 << 20 }, .free = { 0, 0, 0 },
			.ntasks = 8, .task_res = &tres[i * 8], .born_ms = 0,
		};
	for (unsigned i = nnodes; i < nnodes + 100; i++)
		n[i] = (struct asplan_node){ .id = i, .state = ASPLAN_LAUNCHING, .managed = true,
					     .capacity = { 8, 96, 1 << 20 } };
	for (unsigned i = 0; i < npending; i++)
		dem[i] = (struct asplan_demand){ { 1 + i % 4, 4 + i % 2 * 8, 1024 },
						 1 + (i % 50 == 0), 1 };
	asplan_init(&p);
	for (int r = 0; r < RUNS; r++) {
		uint64_t t0 = bench_now_ns();

		asplan_run(&p, &pool, n, nnodes + 100, dem, npending, 1000);
		us[r] = (double)(bench_now_ns() - t0) / 1e3;
	}
	printf("plan: %u nodes (+100 launching), %u pending: launch %u, unplaced %u\n", nnodes,
	       npending, p.launch, p.unplaced);
	report("plan", us, RUNS);
	asplan_release(&p);
	free(n);
	free(dem);
	free(tres);
}

/* ---------------------------------------------------------------- in the core */

static void submit(struct conn *admin, unsigned i)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__SubmitRequest sr = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources per = HPQ__RESOURCES__INIT;
	char *args[] = { (char *)"sleep", (char *)"1000" };

	per.gpus = 1 + i % 2;
	per.cpus = 4;
	per.mem = 1024;
	spec.pool = (char *)"gpu";
	spec.per_node = &per;
	spec.nodes = 1;
	spec.n_argv = 2;
	spec.argv = args;
	spec.cwd = (char *)"/tmp";
	sr.spec = &spec;
	env.id = 3;
	env.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	env.submit = &sr;
	bench_core_feed(admin, &env);
}

static int bench_cycle(unsigned npending, unsigned nnodes)
{
	static struct bench_core b;
	char err[256], num[32];
	double cyc[RUNS], noop[RUNS];
	struct config cfg;
	unsigned ntasks = npending + nnodes * 8;
	uint64_t t0;

	config_init(&cfg);
	cfg.limits.max_pending_tasks = ntasks + RUNS + 10;
	snprintf(num, sizeof(num), "%u", nnodes + 100);
	if (config_set(&cfg, "autoscale.gpu", "max_nodes", num, err, sizeof(err)) < 0 ||
	    config_set(&cfg, "autoscale.gpu", "gpus", "8", err, sizeof(err)) < 0 ||
	    config_set(&cfg, "autoscale.gpu", "cpus", "96", err, sizeof(err)) < 0 ||
	    config_set(&cfg, "autoscale.gpu", "mem", "1024G", err, sizeof(err)) < 0 ||
	    config_set(&cfg, "autoscale.gpu", "launch_timeout", "1h", err, sizeof(err)) < 0 ||
	    config_set(&cfg, "autoscale.gpu", "consolidation", "on", err, sizeof(err)) < 0 ||
	    config_set(&cfg, "autoscale.gpu", "provision_command", "/bin/true", err,
		       sizeof(err)) < 0 ||
	    config_set(&cfg, "autoscale.gpu", "deprovision_command", "/bin/true", err,
		       sizeof(err)) < 0 ||
	    config_autoscale_check(&cfg, err, sizeof(err)) < 0 ||
	    bench_core_start(&b, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_autoscale: %s\n", err);
		return 1;
	}
	config_release(&cfg);

	t0 = bench_now_ns();
	bench_core_nodes(&b, nnodes, "gpu");
	for (unsigned i = 0; i < ntasks; i++) {
		submit(b.admin, i);
		if (i % 2000 == 1999)
			bench_core_settle(&b);
	}
	bench_core_settle(&b);
	printf("cycle: %u nodes in pool gpu, %u tasks submitted; set up in %.1f s\n", nnodes,
	       ntasks, (double)(bench_now_ns() - t0) / 1e9);

	for (int r = 0; r < RUNS; r++) {
		/* A change in the pool, then the autoscaler's part of the cycle. */
		submit(b.admin, (unsigned)r);
		t0 = bench_now_ns();
		autoscale_cycle(&b.d, hpq_now_ms());
		cyc[r] = (double)(bench_now_ns() - t0) / 1e3;
		bench_core_settle(&b);
		t0 = bench_now_ns();
		autoscale_cycle(&b.d, hpq_now_ms());
		noop[r] = (double)(bench_now_ns() - t0) / 1e3;
	}
	report("cycle", cyc, RUNS);
	report("noop", noop, RUNS);

	return bench_core_stop(&b) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	unsigned npending = argc > 1 ? (unsigned)atoi(argv[1]) : 10000;
	unsigned nnodes = argc > 2 ? (unsigned)atoi(argv[2]) : 1000;

	hpq_log_init("bench_autoscale", LOG_CRIT);
	bench_plan(npending, nnodes);
	return bench_cycle(npending, nnodes);
}
