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

#include "clock.h"
#include "log.h"
#include "bench.h"
#include "msg.h"

#include "../../daemon/autoscale-plan.h"
#include "../../daemon/autoscale.h"
#include "../../daemon/dispatch.h"
#include "../../daemon/hpqd.h"
#include "../../daemon/server.h"
#include "../../daemon/store.h"

#define RUNS 31

static uv_loop_t loop;
static struct hpqd d;

/* The sorted samples' median, p95 and max (bench_quantile sorts them). */
static void report(const char *what, double *us, size_t n)
{
	double med = bench_quantile(us, n, 0.5), p95 = bench_quantile(us, n, 0.95);

	printf("%-6s median %9.1f us   p95 %9.1f us   max %9.1f us\n", what, med, p95,
	       us[n - 1]);
}

static void feed(struct conn *c, Hpq__Envelope *env)
{
	size_t len;
	uint8_t *frame = hpq_msg_encode(env, &len);

	server_feed(c, frame, len);
	free(frame);
}

static void settle(void)
{
	dispatch_run(&d);
	while (store_inflight(d.store)) {
		uv_run(&loop, UV_RUN_ONCE);
		dispatch_run(&d);
	}
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
	feed(admin, &env);
}

static int bench_cycle(unsigned npending, unsigned nnodes)
{
	char dir[64] = "/tmp/hpq-bench-autoscale-XXXXXX", err[256], cmd[128], num[32];
	double cyc[RUNS], noop[RUNS];
	struct config cfg;
	struct conn *admin, **agents;
	unsigned ntasks = npending + nnodes * 8;
	uint64_t t0;

	if (uv_loop_init(&loop) < 0 || !mkdtemp(dir))
		return 1;
	config_init(&cfg);
	cfg.allow_root_tasks = true;
	cfg.limits.max_pending_tasks = ntasks + RUNS + 10;
	free(cfg.state_dir);
	cfg.state_dir = strdup(dir);
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
	    hpqd_init(&d, &loop, &cfg, STORE_NOSYNC, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_autoscale: %s\n", err);
		return 1;
	}
	config_release(&cfg);

	t0 = bench_now_ns();
	agents = calloc(nnodes, sizeof(*agents));
	for (unsigned i = 0; i < nnodes; i++) {
		Hpq__Envelope env = HPQ__ENVELOPE__INIT;
		Hpq__Register reg = HPQ__REGISTER__INIT;
		Hpq__Resources cap = HPQ__RESOURCES__INIT;
		char name[32];

		snprintf(name, sizeof(name), "node%04u", i);
		agents[i] = server_pseudo(d.server, HPQ__ROLE__ROLE_AGENT, name, false);
		cap.gpus = 8;
		cap.cpus = 96;
		cap.mem = 1 << 20;
		reg.name = name;
		reg.pool = (char *)"gpu";
		reg.capacity = &cap;
		env.id = 1;
		env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
		env.register_ = &reg;
		feed(agents[i], &env);
	}
	settle();
	admin = server_pseudo(d.server, HPQ__ROLE__ROLE_CLIENT, "root", true);
	for (unsigned i = 0; i < ntasks; i++) {
		submit(admin, i);
		if (i % 2000 == 1999)
			settle();
	}
	settle();
	printf("cycle: %u nodes in pool gpu, %u tasks submitted; set up in %.1f s\n", nnodes,
	       ntasks, (double)(bench_now_ns() - t0) / 1e9);

	for (int r = 0; r < RUNS; r++) {
		/* A change in the pool, then the autoscaler's part of the cycle. */
		submit(admin, (unsigned)r);
		t0 = bench_now_ns();
		autoscale_cycle(&d, hpq_now_ms());
		cyc[r] = (double)(bench_now_ns() - t0) / 1e3;
		settle();
		t0 = bench_now_ns();
		autoscale_cycle(&d, hpq_now_ms());
		noop[r] = (double)(bench_now_ns() - t0) / 1e3;
	}
	report("cycle", cyc, RUNS);
	report("noop", noop, RUNS);

	for (unsigned i = 0; i < nnodes; i++) {
		server_close(agents[i]);
		server_unref(agents[i]);
	}
	free(agents);
	server_close(admin);
	server_unref(admin);
	hpqd_stop(&d);
	uv_run(&loop, UV_RUN_DEFAULT);
	hpqd_release(&d);
	uv_loop_close(&loop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	unsigned npending = argc > 1 ? (unsigned)atoi(argv[1]) : 10000;
	unsigned nnodes = argc > 2 ? (unsigned)atoi(argv[2]) : 1000;

	hpq_log_init("bench_autoscale", LOG_CRIT);
	bench_plan(npending, nnodes);
	return bench_cycle(npending, nnodes);
}
