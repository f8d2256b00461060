/*
 * fuzz-core.h: a real hpqd core for the daemon's fuzz targets
 * (fuzz_daemon_*.c): state, dispatcher, SQLite store and its thread on a
 * temporary state directory, brought up at the first input, torn down
 * every FUZZ_CORE_RESET inputs (so that memory stays bounded) and at exit.
 * Its munged socket does not exist, so a MUNGE credential is refused the
 * way a stopped munged's is.
 *
 * The daemon's headers are reached by a relative path: a target gets
 * hpqd_core's instrumented copy, which does not pass on its -iquote.
 */
#ifndef HPQ_FUZZ_CORE_H
#define HPQ_FUZZ_CORE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#include "../../daemon/hpqd.h"
#include "../../daemon/store.h"

#define FUZZ_CORE_RESET 2000

struct fuzz_core {
	const char *name;           /* the target's, for messages and the temp dir */
	uv_loop_t loop;
	struct hpqd d;
	bool up;
	unsigned runs;
	char dir[96];
};

static void fuzz_core_up(struct fuzz_core *fc)
{
	struct config cfg;
	char err[256];

	snprintf(fc->dir, sizeof(fc->dir), "/tmp/hpq-%s-XXXXXX", fc->name);
	if (!mkdtemp(fc->dir))
		abort();
	config_init(&cfg);
	free(cfg.state_dir);
	cfg.state_dir = strdup(fc->dir);
	free(cfg.munge_socket);
	if (asprintf(&cfg.munge_socket, "%s/no-munged.sock", fc->dir) < 0)
		abort();
	if (hpqd_init(&fc->d, &fc->loop, &cfg, STORE_NOSYNC, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", fc->name, err);
		abort();
	}
	config_release(&cfg);
	fc->up = true;
}

static void fuzz_core_down(struct fuzz_core *fc)
{
	char cmd[160];

	hpqd_stop(&fc->d);
	uv_run(&fc->loop, UV_RUN_DEFAULT);
	hpqd_release(&fc->d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fc->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "%s: cannot remove %s\n", fc->name, fc->dir);
	fc->up = false;
}

/* From LLVMFuzzerInitialize: the loop, and the core's end at exit. */
static void fuzz_core_init(struct fuzz_core *fc, void (*at_exit)(void))
{
	hpq_log_init("fuzz", LOG_CRIT);
	if (uv_loop_init(&fc->loop) < 0)
		abort();
	atexit(at_exit);
}

static void fuzz_core_exit(struct fuzz_core *fc)
{
	if (fc->up)
		fuzz_core_down(fc);
	uv_loop_close(&fc->loop);
}

/* At the start of each input: the core, up. */
static struct hpqd *fuzz_core_get(struct fuzz_core *fc)
{
	if (!fc->up)
		fuzz_core_up(fc);
	return &fc->d;
}

/* At the end of each input. */
static void fuzz_core_done(struct fuzz_core *fc)
{
	if (++fc->runs % FUZZ_CORE_RESET == 0)
		fuzz_core_down(fc);
}

#endif
