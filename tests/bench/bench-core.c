/*
 * bench-core.c: a real hpqd core in the benchmark's process (bench-core.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

#include "../../daemon/dispatch.h"
#include "../../daemon/server.h"
#include "../../daemon/store.h"
#include "bench-core.h"

int bench_core_start(struct bench_core *b, struct config *cfg, char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->dir, sizeof(b->dir), "/tmp/hpq-bench-core-XXXXXX");
	if (uv_loop_init(&b->loop) < 0 || !mkdtemp(b->dir)) {
		snprintf(err, errlen, "cannot make a loop and a temp dir");
		return -1;
	}
	cfg->allow_root_tasks = true;
	free(cfg->state_dir);
	cfg->state_dir = strdup(b->dir);
	if (hpqd_init(&b->d, &b->loop, cfg, STORE_NOSYNC, err, errlen) < 0)
		return -1;
	b->admin = server_pseudo(b->d.server, HPQ__ROLE__ROLE_CLIENT, "root", true);
	return 0;
}

void bench_core_feed(struct conn *c, Hpq__Envelope *env)
{
	size_t len;
	uint8_t *frame = hpq_msg_encode(env, &len);

	server_feed(c, frame, len);
	free(frame);
}

void bench_core_settle(struct bench_core *b)
{
	dispatch_run(&b->d);
	while (store_inflight(b->d.store)) {
		uv_run(&b->loop, UV_RUN_ONCE);
		dispatch_run(&b->d);
	}
}

void bench_core_nodes(struct bench_core *b, unsigned n, const char *pool)
{
	b->agents = calloc(n, sizeof(*b->agents));
	b->nagents = n;
	for (unsigned i = 0; i < n; i++) {
		Hpq__Envelope env = HPQ__ENVELOPE__INIT;
		Hpq__Register reg = HPQ__REGISTER__INIT;
		Hpq__Resources cap = HPQ__RESOURCES__INIT;
		char name[32];

		snprintf(name, sizeof(name), "node%04u", i);
		b->agents[i] = server_pseudo(b->d.server, HPQ__ROLE__ROLE_AGENT, name, false);
		cap.gpus = 8;
		cap.cpus = 96;
		cap.mem = 1 << 20;
		reg.name = name;
		reg.pool = (char *)pool;
		reg.capacity = &cap;
		env.id = 1;
		env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
		env.register_ = &reg;
		bench_core_feed(b->agents[i], &env);
	}
	bench_core_settle(b);
}

int bench_core_stop(struct bench_core *b)
{
	char cmd[128];

	for (unsigned i = 0; i < b->nagents; i++) {
		server_close(b->agents[i]);
		server_unref(b->agents[i]);
	}
	free(b->agents);
	server_close(b->admin);
	server_unref(b->admin);
	hpqd_stop(&b->d);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	hpqd_release(&b->d);
	uv_loop_close(&b->loop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
	return system(cmd) == 0 ? 0 : -1;
}
