/*
 * bench_status: what `hpq status` costs the daemon with 100,000 tasks in
 * the queue and 1,000 nodes (target: under 50 ms).
 *
 * A real hpqd core (state, dispatcher, SQLite store without fsync) runs in
 * this process, as in the daemon fuzzer: 1,000 agents register through
 * connections without sockets (server_pseudo), 20 teams get guarantees,
 * and 100,000 one-GPU tasks are submitted through the same framing,
 * decoding and handlers a socket's bytes go through; the dispatcher then
 * starts what fits (8,000 on 8-GPU nodes) and 92,000 wait. Measured, each
 * RUNS times, median and p95:
 *
 *   build   status_build: the figures, from memory
 *   rpc     a StatusRequest frame fed in, handled, reply encoded
 *   client  decoding that reply and printing `hpq status --json`
 *
 * Usage: bench_status [TASKS [NODES]]. Build with -DCMAKE_BUILD_TYPE=Release.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-core.h"
#include "bench.h"
#include "clock.h"
#include "dash.h"
#include "log.h"
#include "msg.h"

#include "../../daemon/server.h"
#include "../../daemon/status.h"

#define RUNS 30
#define NTEAMS 20

/* The samples' median, p95 and max (bench_quantile sorts them). */
static void report(const char *what, double *ms, size_t n)
{
	double med = bench_quantile(ms, n, 0.5), p95 = bench_quantile(ms, n, 0.95);

	printf("%-8s median %8.2f ms   p95 %8.2f ms   max %8.2f ms\n", what, med, p95,
	       ms[n - 1]);
}

int main(int argc, char **argv)
{
	unsigned ntasks = argc > 1 ? (unsigned)atoi(argv[1]) : 100000;
	unsigned nnodes = argc > 2 ? (unsigned)atoi(argv[2]) : 1000;
	static struct bench_core b;
	char err[256];
	double build[RUNS], rpc[RUNS], client[RUNS];
	struct config cfg;
	uint64_t t0;
	Hpq__StatusReply *rep;
	struct state_err e;
	size_t packed = 0;

	hpq_log_init("bench_status", LOG_CRIT);
	config_init(&cfg);
	/* One user may hold only [limits] max_pending_tasks pending tasks. */
	cfg.limits.max_pending_tasks = ntasks;
	if (bench_core_start(&b, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_status: %s\n", err);
		return 1;
	}
	config_release(&cfg);

	t0 = bench_now_ns();
	bench_core_nodes(&b, nnodes, "default");
	for (unsigned i = 0; i < NTEAMS; i++) {
		Hpq__Envelope env = HPQ__ENVELOPE__INIT;
		Hpq__TeamSetRequest ts = HPQ__TEAM_SET_REQUEST__INIT;
		Hpq__Team team = HPQ__TEAM__INIT;
		Hpq__PoolQuota q = HPQ__POOL_QUOTA__INIT, *qp = &q;
		Hpq__Resources g = HPQ__RESOURCES__INIT;
		char name[32];
		char *fields[] = { (char *)"quota.guarantee" };

		snprintf(name, sizeof(name), "team%02u", i);
		g.gpus = nnodes * 8 / NTEAMS / 2;   /* half the cluster is guaranteed */
		q.pool = (char *)"default";
		q.guarantee = &g;
		q.sharing = (char *)"lend-and-borrow";
		q.borrow_limit_pct = 100;
		team.name = name;
		team.weight = 1;
		team.n_quotas = 1;
		team.quotas = &qp;
		ts.team = &team;
		ts.create = true;
		ts.n_fields = 1;
		ts.fields = fields;
		env.id = 2;
		env.body_case = HPQ__ENVELOPE__BODY_TEAM_SET;
		env.team_set = &ts;
		bench_core_feed(b.admin, &env);
	}
	bench_core_settle(&b);

	for (unsigned i = 0; i < ntasks; i++) {
		Hpq__Envelope env = HPQ__ENVELOPE__INIT;
		Hpq__SubmitRequest sr = HPQ__SUBMIT_REQUEST__INIT;
		Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
		Hpq__Resources per = HPQ__RESOURCES__INIT;
		char team[32], *args[] = { (char *)"sleep", (char *)"1000" };
		static const char *const classes[] = { "training", "fine-tuning", "inference",
						       "data-processing" };

		snprintf(team, sizeof(team), "team%02u", i % NTEAMS);
		per.gpus = 1;
		per.cpus = 1;
		per.mem = 1024;
		spec.team = team;
		spec.class_ = (char *)classes[i % 4];
		spec.per_node = &per;
		spec.nodes = 1;
		spec.n_argv = 2;
		spec.argv = args;
		spec.cwd = (char *)"/tmp";
		sr.spec = &spec;
		env.id = 3;
		env.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
		env.submit = &sr;
		bench_core_feed(b.admin, &env);
		if (i % 2000 == 1999)
			bench_core_settle(&b);
	}
	bench_core_settle(&b);
	if (status_build(&b.d, NULL, NULL, hpq_now_ms(), &rep, &e) < 0) {
		fprintf(stderr, "bench_status: %s\n", e.msg);
		return 1;
	}
	printf("cluster: %u nodes, %u tasks (%u running, %u pending), %zu team rows; "
	       "set up in %.1f s\n", nnodes, ntasks, rep->running, rep->pending, rep->n_teams,
	       (double)(bench_now_ns() - t0) / 1e9);
	hpq__status_reply__free_unpacked(rep, NULL);

	for (int r = 0; r < RUNS; r++) {
		Hpq__Envelope env = HPQ__ENVELOPE__INIT, wrap = HPQ__ENVELOPE__INIT, *back;
		Hpq__StatusRequest sr = HPQ__STATUS_REQUEST__INIT;
		uint8_t *frame;
		json_t *j;
		char *text;

		t0 = bench_now_ns();
		status_build(&b.d, NULL, NULL, hpq_now_ms(), &rep, &e);
		build[r] = (double)(bench_now_ns() - t0) / 1e6;

		/* The client's side: decode the reply and print the JSON. */
		wrap.id = 9;
		wrap.body_case = HPQ__ENVELOPE__BODY_STATUS_REPLY;
		wrap.status_reply = rep;
		frame = hpq_msg_encode(&wrap, &packed);
		hpq__status_reply__free_unpacked(rep, NULL);
		t0 = bench_now_ns();
		back = hpq_msg_decode(frame + 4, packed - 4);
		j = dash_status_json(back->status_reply);
		text = json_dumps(j, JSON_INDENT(2));
		client[r] = (double)(bench_now_ns() - t0) / 1e6;
		free(text);
		json_decref(j);
		hpq_msg_free(back);
		free(frame);

		/* The whole request through the handler (the reply is encoded, then dropped). */
		env.id = 10;
		env.body_case = HPQ__ENVELOPE__BODY_STATUS;
		env.status = &sr;
		t0 = bench_now_ns();
		bench_core_feed(b.admin, &env);
		rpc[r] = (double)(bench_now_ns() - t0) / 1e6;
	}
	printf("status reply: %zu bytes\n", packed);
	report("build", build, RUNS);
	report("rpc", rpc, RUNS);
	report("client", client, RUNS);

	return bench_core_stop(&b) == 0 ? 0 : 1;
}
