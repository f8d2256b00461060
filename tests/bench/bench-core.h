/*
 * bench-core.h: a real hpqd core inside a benchmark's own process (state,
 * dispatcher, SQLite store without fsync), as the daemon fuzzer runs it.
 * Agents and clients are connections without sockets (server_pseudo):
 * frames fed to them go through the same decoding and handlers a socket's
 * bytes go through, so that what is timed is the daemon's work alone.
 * bench_status and bench_autoscale measure with it.
 */
#ifndef HPQ_BENCH_CORE_H
#define HPQ_BENCH_CORE_H

#include <uv.h>

#include "hpq.pb-c.h"

#include "../../daemon/config.h"
#include "../../daemon/hpqd.h"

struct conn;

struct bench_core {
	uv_loop_t loop;
	struct hpqd d;
	char dir[64];                /* the state dir, removed by bench_core_stop */
	struct conn **agents;        /* bench_core_nodes' */
	unsigned nagents;
	struct conn *admin;          /* root, an admin: the benchmark's client */
};

/* Starts the core with cfg on a fresh temp dir (cfg's state_dir is
 * replaced; [auth] allow_root_tasks is set, since the admin is root) and
 * opens the admin connection. Returns 0, or -1 with err set. */
int bench_core_start(struct bench_core *b, struct config *cfg, char *err, size_t errlen);
/* Feeds env to c as one frame, handled at once. */
void bench_core_feed(struct conn *c, Hpq__Envelope *env);
/* Runs the dispatcher until no store write is in flight. */
void bench_core_settle(struct bench_core *b);
/* Registers n agents node0000... of 8 GPUs, 96 CPUs and 1 TiB in pool,
 * and settles. */
void bench_core_nodes(struct bench_core *b, unsigned n, const char *pool);
/* Closes every connection, stops the core and removes its dir. Returns 0,
 * or -1 if the dir could not be removed. */
int bench_core_stop(struct bench_core *b);

#endif
