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

#include "clock.h"
#include "dash.h"
#include "log.h"
#include "msg.h"

#include "../../daemon/dispatch.h"
#include "../../daemon/hpqd.h"
#include "../../daemon/server.h"
#include "../../daemon/status.h"
#include "../../daemon/store.h"

#define RUNS 30
#define NTEAMS 20

static uv_loop_t loop;
static struct hpqd d;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *ms, size_t n)
{
	qsort(ms, n, sizeof(*ms), cmp_double);
	printf("%-8s median %8.2f ms   p95 %8.2f ms   max %8.2f ms\n", what, ms[n / 2],
	       ms[(n * 95) / 100], ms[n - 1]);
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

int main(int argc, char **argv)
{
	unsigned ntasks = argc > 1 ? (unsigned)atoi(argv[1]) : 100000;
	unsigned nnodes = argc > 2 ? (unsigned)atoi(argv[2]) : 1000;
	char dir[64] = "/tmp/hpq-bench-status-XXXXXX", err[256], cmd[128];
	double build[RUNS], rpc[RUNS], client[RUNS];
	struct config cfg;
	struct conn *admin, **agents;
	uint64_t t0;
	Hpq__StatusReply *rep;
	struct state_err e;
	size_t packed = 0;

	hpq_log_init("bench_status", LOG_CRIT);
	if (uv_loop_init(&loop) < 0 || !mkdtemp(dir))
		return 1;
	config_init(&cfg);
	/* The submitting connection is root's, whose tasks hpqd refuses by
	 * default ([auth] allow_root_tasks), and one user may hold only
	 * [limits] max_pending_tasks pending tasks. */
	cfg.allow_root_tasks = true;
	cfg.limits.max_pending_tasks = ntasks;
	free(cfg.state_dir);
	cfg.state_dir = strdup(dir);
	if (hpqd_init(&d, &loop, &cfg, STORE_NOSYNC, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_status: %s\n", err);
		return 1;
	}
	config_release(&cfg);

	t0 = now_ns();
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
		reg.pool = (char *)"default";
		reg.capacity = &cap;
		env.id = 1;
		env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
		env.register_ = &reg;
		feed(agents[i], &env);
	}
	settle();

	admin = server_pseudo(d.server, HPQ__ROLE__ROLE_CLIENT, "root", true);
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
		feed(admin, &env);
	}
	settle();

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
		feed(admin, &env);
		if (i % 2000 == 1999)
			settle();
	}
	settle();
	if (status_build(&d, NULL, NULL, hpq_now_ms(), &rep, &e) < 0) {
		fprintf(stderr, "bench_status: %s\n", e.msg);
		return 1;
	}
	printf("cluster: %u nodes, %u tasks (%u running, %u pending), %zu team rows; "
	       "set up in %.1f s\n", nnodes, ntasks, rep->running, rep->pending, rep->n_teams,
	       (double)(now_ns() - t0) / 1e9);
	hpq__status_reply__free_unpacked(rep, NULL);

	for (int r = 0; r < RUNS; r++) {
		Hpq__Envelope env = HPQ__ENVELOPE__INIT, wrap = HPQ__ENVELOPE__INIT, *back;
		Hpq__StatusRequest sr = HPQ__STATUS_REQUEST__INIT;
		uint8_t *frame;
		json_t *j;
		char *text;

		t0 = now_ns();
		status_build(&d, NULL, NULL, hpq_now_ms(), &rep, &e);
		build[r] = (double)(now_ns() - t0) / 1e6;

		/* The client's side: decode the reply and print the JSON. */
		wrap.id = 9;
		wrap.body_case = HPQ__ENVELOPE__BODY_STATUS_REPLY;
		wrap.status_reply = rep;
		frame = hpq_msg_encode(&wrap, &packed);
		hpq__status_reply__free_unpacked(rep, NULL);
		t0 = now_ns();
		back = hpq_msg_decode(frame + 4, packed - 4);
		j = dash_status_json(back->status_reply);
		text = json_dumps(j, JSON_INDENT(2));
		client[r] = (double)(now_ns() - t0) / 1e6;
		free(text);
		json_decref(j);
		hpq_msg_free(back);
		free(frame);

		/* The whole request through the handler (the reply is encoded, then dropped). */
		env.id = 10;
		env.body_case = HPQ__ENVELOPE__BODY_STATUS;
		env.status = &sr;
		t0 = now_ns();
		feed(admin, &env);
		rpc[r] = (double)(now_ns() - t0) / 1e6;
	}
	printf("status reply: %zu bytes\n", packed);
	report("build", build, RUNS);
	report("rpc", rpc, RUNS);
	report("client", client, RUNS);

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
