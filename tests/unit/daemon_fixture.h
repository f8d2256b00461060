/*
 * daemon_fixture.h: the state-and-store fixture of the daemon's unit tests
 * (test_daemon_*.c): a temp dir with the database in it, a libuv loop, the
 * real store with the real state on top, opened, committed and closed the
 * way hpqd does; cmocka setup and teardown; nodes that register, and a
 * dispatcher cycle that starts what it decides to start.
 *
 * A test with more of its own (a config, an observer, a struct hpqd)
 * embeds struct fix in a struct of its own and opens or closes as it needs
 * with the smaller pieces. The helpers on the state take the state itself,
 * so that a test whose state lives in a struct hpqd uses them too.
 */
#ifndef DAEMON_FIXTURE_H
#define DAEMON_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "state.h"
#include "store.h"

struct fix {
	char dir[64];           /* /tmp/hpq-NAME-XXXXXX, removed at the end */
	char path[128];         /* the database, DIR/hpq.db */
	uv_loop_t loop;         /* the store's completions run on it */
	unsigned flags;         /* store_open's flags, for every open */
	struct store *s;        /* NULL while closed */
	struct state st;
};

/* The temp dir, the path and the loop; opens nothing. */
void fix_init(struct fix *f, const char *name, unsigned flags);
/* Closes the loop and removes the temp dir; the store is closed already. */
void fix_fini(struct fix *f);

/* store_open, state_init, state_load and store_start. */
void fix_open(struct fix *f);
/* The same, with the state's keep_finished_ms set before the load. */
void fix_open_keep(struct fix *f, int64_t keep_finished_ms);
/* Commits what is recorded and runs the loop until it is durable. */
void fix_commit(struct fix *f);
/* Releases the state and closes the store, which commits what is left
 * itself, and runs the loop until it is gone. */
void fix_close(struct fix *f);
/* fix_commit, then fix_close. */
void fix_commit_close(struct fix *f);

/* For a store that is not f->s: the test's own, or a struct hpqd's. */
void fix_commit_store(struct fix *f, struct store *s);
void fix_close_store(struct fix *f, struct store *s);
/* A store_after_commit completion: *(int *)arg becomes 1, or -1 on failure. */
void fix_on_commit(void *arg, int status);

/* cmocka: a struct fix in *ts, opened with flags in /tmp/hpq-NAME-XXXXXX. */
int fix_setup(void **ts, const char *name, unsigned flags);
/* cmocka: commits and closes what is open, then fix_fini, and frees it. */
int fix_teardown(void **ts);
/* The same without the commit: store_close commits what is left itself. */
int fix_teardown_uncommitted(void **ts);

/* A node of cpus CPUs, 1 TiB of memory and no GPU in the default pool. */
void fix_cpu_node(struct state *st, const char *name, uint32_t cpus);
/* A node of gpus GPUs, 64 CPUs and 512 GiB in pool, agent 0.1.0. */
void fix_gpu_node(struct state *st, const char *name, const char *pool, uint32_t gpus);

/* One dispatcher cycle at time 1, its STARTs applied as dispatch.c does;
 * returns how many. */
size_t fix_cycle(struct state *st);

#endif
