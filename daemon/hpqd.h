/*
 * hpqd.h: the daemon's context, shared by its modules.
 *
 * One struct hpqd holds everything the loop thread owns: the libuv loop,
 * the configuration, the in-memory state (with the dispatcher inside it),
 * the store, the listeners and connections, and the timers. main.c fills
 * one per process; the unit tests and the fuzzer make their own with
 * hpqd_init/hpqd_release, so nothing in the core is a global.
 *
 * Threads: only the loop thread touches this struct. The storage thread
 * sees finished batches of rows and hands back completions (store.h).
 */
#ifndef HPQD_H
#define HPQD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "auth.h"
#include "config.h"
#include "state.h"

struct store;
struct server;
struct events;
struct usage;
struct metrics;
struct logs;
struct repair;

struct hpqd {
	uv_loop_t *loop;
	struct config cfg;
	struct state state;
	struct store *store;
	struct server *server;

	uv_prepare_t tick;          /* end of every loop iteration: dispatch, then commit */
	uv_timer_t node_timer;      /* finds agents that stopped talking (agentlink.c) */
	uv_timer_t wakeup;          /* when the dispatcher asked to look again (dispatch.c) */

	uid_t uid;                  /* the daemon's own uid: an administrator */
	int lock_fd;                /* flock on <state_dir>/hpqd.lock: one daemon per directory */
	bool has_key;               /* TCP peers must answer a nonce with the cluster key */
	uint8_t key[HPQ_AUTH_KEY_BYTES];
	uint64_t start_mono;        /* uv_now at start: disconnected nodes' grace counts from it */

	/* The dashboards (issue 5). */
	struct events *events;      /* events.c: followers, preemption marks, retention */
	struct usage *usage;        /* usage.c: GPU-hour accounting, or NULL */
	struct metrics *metrics;    /* metrics.c: the --metrics listener, or NULL */
	struct logs *logs;          /* logs.c: hpq logs requests relayed to agents */
	struct repair *repair;      /* repair.c: node repair timer and commands (issue 4) */
	uint64_t status_first_active; /* status.c: no task below this id is active */
	uint64_t cycles, node_checks, repair_checks; /* progress since start (hpq status) */

	bool stopping;              /* no new work; shutting down */
	int exit_status;            /* what main() returns once the loop ends */
	void (*on_stop)(struct hpqd *d); /* main.c: called once the store has drained */
};

/*
 * Brings up the core on an initialised loop: opens and loads the store at
 * <state_dir>/hpq.db, starts its thread, feeds the dispatcher, arms the
 * tick and the node timer. It does not listen; server_listen does.
 * flags: STORE_* (store.h). On failure returns a negative code and, if
 * err is given, what went wrong.
 */
int hpqd_init(struct hpqd *d, uv_loop_t *loop, const struct config *cfg, unsigned flags,
	      char *err, size_t errlen);

/*
 * Begins a graceful stop: listeners close, connections stop reading, the
 * open batch is committed; when every completion has run, connections are
 * flushed and closed and d->on_stop is called. The loop then ends by itself
 * once every handle is closed.
 */
void hpqd_stop(struct hpqd *d);

/* After uv_run returned: frees what hpqd_init made. */
void hpqd_release(struct hpqd *d);

#endif
