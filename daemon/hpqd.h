/*
 * hpqd.h: bringing the daemon's core up and down.
 *
 * main.c runs one core per process; the unit tests, the benchmarks and the
 * fuzzer run their own on a loop of theirs. The context itself is
 * context.h.
 */
#ifndef HPQD_H
#define HPQD_H

#include <stddef.h>

#include <uv.h>

#include "context.h"

/*
 * Brings up the core on an initialised loop: opens and loads the store at
 * <state_dir>/hpq.db, starts its thread, feeds the dispatcher, and starts
 * every module. It does not listen; server_listen does. flags: STORE_*
 * (store.h). On failure returns a negative code and, if err is given,
 * what went wrong.
 */
int hpqd_init(struct hpqd *d, uv_loop_t *loop, const struct config *cfg, unsigned flags,
	      char *err, size_t errlen);

/*
 * Begins a graceful stop: listeners close, connections stop reading, the
 * open batch is committed; when every completion has run, every module
 * closes its handles and d->on_stop is called (if set). The loop then
 * ends by itself once every handle is closed.
 */
void hpqd_stop(struct hpqd *d);

/* After uv_run returned: frees what hpqd_init made. */
void hpqd_release(struct hpqd *d);

#endif
