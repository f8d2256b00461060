/*
 * daemon_fixture.c: the state-and-store fixture the daemon's unit tests
 * share (see daemon_fixture.h). Linked into every test_daemon_* program.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <uv.h>

#include "daemon_fixture.h"
#include "hpq.h"
#include "hpq.pb-c.h"
#include "xalloc.h"

void fix_init(struct fix *f, const char *name, unsigned flags)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/hpq-%s-XXXXXX", name);
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/hpq.db", f->dir);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->flags = flags;
	f->s = NULL;
}

void fix_fini(struct fix *f)
{
	char cmd[160];

	assert_int_equal(uv_loop_close(&f->loop), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
}

/* keep: set keep_finished_ms, else leave state_init's. */
static void open_all(struct fix *f, bool keep, int64_t keep_finished_ms)
{
	char err[256] = "";

	if (store_open(f->path, f->flags, &f->s, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	state_init(&f->st, f->s);
	if (keep)
		f->st.keep_finished_ms = keep_finished_ms;
	if (state_load(&f->st, err, sizeof(err)) < 0)
		fail_msg("state_load: %s", err);
	assert_int_equal(store_start(f->s, &f->loop, NULL, NULL), 0);
}

void fix_open(struct fix *f)
{
	open_all(f, false, 0);
}

void fix_open_keep(struct fix *f, int64_t keep_finished_ms)
{
	open_all(f, true, keep_finished_ms);
}

void fix_on_commit(void *arg, int status)
{
	*(int *)arg = status == 0 ? 1 : -1;
}

void fix_commit_store(struct fix *f, struct store *s)
{
	int done = 0;

	store_after_commit(s, fix_on_commit, &done);
	store_submit(s);
	while (!done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(done, 1);
}

void fix_close_store(struct fix *f, struct store *s)
{
	store_close(s);
	uv_run(&f->loop, UV_RUN_DEFAULT);  /* the async handle's close */
}

void fix_commit(struct fix *f)
{
	fix_commit_store(f, f->s);
}

void fix_close(struct fix *f)
{
	state_release(&f->st);
	fix_close_store(f, f->s);
	f->s = NULL;
}

void fix_commit_close(struct fix *f)
{
	fix_commit(f);
	fix_close(f);
}

int fix_setup(void **ts, const char *name, unsigned flags)
{
	struct fix *f = xcalloc(1, sizeof(*f));

	fix_init(f, name, flags);
	fix_open(f);
	*ts = f;
	return 0;
}

static void teardown(struct fix *f, bool commit)
{
	if (f->s && commit)
		fix_commit(f);
	if (f->s)
		fix_close(f);
	fix_fini(f);
	free(f);
}

int fix_teardown(void **ts)
{
	teardown(*ts, true);
	return 0;
}

int fix_teardown_uncommitted(void **ts)
{
	teardown(*ts, false);
	return 0;
}

static void node_register(struct state *st, const char *name, const char *pool,
			  const char *address, uint32_t gpus, uint32_t cpus, uint64_t mem)
{
	Hpq__Register reg = HPQ__REGISTER__INIT;
	Hpq__Resources cap = HPQ__RESOURCES__INIT;
	struct state_err e;
	struct node *n;

	cap.gpus = gpus;
	cap.cpus = cpus;
	cap.mem = mem;
	reg.name = (char *)name;
	reg.pool = (char *)pool;
	reg.capacity = &cap;
	reg.address = (char *)address;
	if (state_node_register(st, &reg, "0.1.0", &n, &e) < 0)
		fail_msg("register %s: %s", name, e.msg);
}

void fix_cpu_node(struct state *st, const char *name, uint32_t cpus)
{
	node_register(st, name, HPQ_DEFAULT_POOL, "", 0, cpus, 1024 * 1024);
}

void fix_gpu_node(struct state *st, const char *name, const char *pool, uint32_t gpus)
{
	node_register(st, name, pool, "10.0.0.1", gpus, 64, 512 * 1024);
}

size_t fix_cycle(struct state *st)
{
	const struct sched_decision *d;
	size_t n, starts = 0;

	d = sched_cycle(st->sched, 1, &n);
	for (size_t i = 0; i < n; i++) {
		if (d[i].action != SCHED_START)
			continue;
		state_task_start(st, state_task_of(d[i].task));
		starts++;
	}
	return starts;
}
