/*
 * context.h: struct hpqd, the one context every module of the daemon is
 * handed.
 *
 * It holds what the loop thread owns: the loop, the configuration, the
 * in-memory state (with the dispatcher inside it), the store, and one
 * opaque pointer per module. Each module creates its own struct and its
 * own libuv handles in its init function and closes them in its close
 * function; nothing here belongs to two modules. hpqd.c fills the struct
 * (hpqd.h); the unit tests and the fuzzer make their own, so nothing in
 * the core is a global.
 *
 * Threads: only the loop thread touches this struct. The storage thread
 * sees finished batches of rows and hands back completions (store.h).
 */
#ifndef HPQD_CONTEXT_H
#define HPQD_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "config.h"
#include "state.h"

/* 16 random bytes in lower-case hex, made once per state directory (hpqd.c). */
#define HPQD_CLUSTER_ID_LEN 32

struct agentlink;
struct autoscale;
struct ca;
struct deprecations;
struct dispatch;
struct events;
struct groups;
struct logs;
struct metrics;
struct repair;
struct retention;
struct router;
struct server;
struct store;
struct usage;

struct hpqd {
	uv_loop_t *loop;
	struct config cfg;
	struct state state;
	struct store *store;

	struct server *server;      /* server.c: listeners, connections, framing */
	struct router *router;      /* router.c: the request table */
	struct dispatch *dispatch;  /* dispatch.c: the end-of-iteration tick */
	struct agentlink *agents;   /* agentlink.c: agent sessions, the node timer */
	struct events *events;      /* events.c: followers, preemption marks, retention */
	struct usage *usage;        /* usage.c: GPU-hour accounting, or NULL */
	struct metrics *metrics;    /* metrics.c: the --metrics listener, or NULL */
	struct logs *logs;          /* logs.c: hpq logs requests relayed to agents */
	struct repair *repair;      /* repair.c: node repair timer and commands */
	struct retention *retention; /* retention.c: ended tasks leave memory, then the database */
	struct groups *groups;      /* groups.c: users' Unix groups, for roles */
	struct deprecations *deprecations; /* deprecation.c: who uses what is deprecated */
	struct autoscale *autoscale; /* autoscale.c: [autoscale.POOL] pools, or NULL */

	uid_t uid;                  /* the daemon's own uid: an administrator */
	struct ca *ca;              /* ca.c: the cluster CA, hpqd's certificate and TLS context */
	uint64_t start_mono;        /* uv_now at start: disconnected nodes' grace counts from it */
	char cluster_id[HPQD_CLUSTER_ID_LEN + 1]; /* <state_dir>/cluster-id: names task logs */
	uint64_t status_first_active; /* status.c: no task below this id is active */
	/* Progress since start, each counted by its module, for hpq status. */
	uint64_t cycles;            /* dispatch.c: dispatcher cycles run */
	uint64_t node_checks;       /* agentlink.c: unreachability checks */
	uint64_t repair_checks;     /* repair.c: passes of the repair timer */

	bool stopping;              /* no new work; shutting down */
	int exit_status;            /* what main() returns once the loop ends */
	void (*on_stop)(struct hpqd *d); /* main.c: called once the store has drained */
	void (*on_store)(struct hpqd *d); /* main.c: the store turned degraded or writable */

	/* hpqd.c's own. */
	int lock_fd;                /* flock on <state_dir>/hpqd.lock: one daemon per directory */
	uv_timer_t stop_timer;      /* the last steps of a stop run from it */
	uv_timer_t cert_timer;      /* renews the server certificate (TLS only) */
};

#endif
