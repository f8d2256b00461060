/*
 * store.h: the durable record of the daemon's state (DESIGN §6), SQLite in
 * WAL mode with synchronous=FULL, written by one storage thread.
 *
 * The loop thread never waits for the disk. During a loop iteration the
 * state module records rows (store_task_insert, store_event_add, ...) into
 * an open batch, copying what it needs; callers that must not answer before
 * the rows are durable register completions with store_after_commit. At
 * the end of the iteration store_submit hands the batch to the thread,
 * which writes every batch it finds waiting in ONE transaction (group
 * commit) and wakes the loop; the loop then runs the completions in the
 * order they were registered, with the commit's status.
 *
 * If a commit fails the store is broken for good (the memory is ahead of
 * the disk and nothing can reconcile them in place): that and every later
 * batch complete with HPQ_ESTORAGE, and on_error is called once so the
 * daemon can stop; a restart loads the last committed state.
 *
 * Schema: migrations keyed on PRAGMA user_version, applied by store_open.
 * Version 1 is frozen (tests/unit/test_daemon_store.c keeps a copy and
 * checks that a version-1 file upgrades); add a migration, never edit one.
 */
#ifndef HPQD_STORE_H
#define HPQD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "scheduler.h"

struct store;
struct state;
struct task;
struct team;
struct prio_class;
struct node;

/* store_open flags */
#define STORE_NOSYNC 1u   /* synchronous=OFF: for the fuzzer and tests, never the daemon */

/* The schema version this code writes. */
int store_schema_latest(void);

/*
 * Opens (creating if needed) the database at path and migrates it to the
 * newest schema. Returns 0, or a negative code with a message in err.
 */
int store_open(const char *path, unsigned flags, struct store **ret_store, char *err,
	       size_t errlen);

/* Reads every row into st (before store_start). */
int store_load(struct store *s, struct state *st, char *err, size_t errlen);

/* Starts the storage thread; completions run on loop. on_error, if set,
 * is called once (on the loop) when a commit fails. */
int store_start(struct store *s, uv_loop_t *loop, void (*on_error)(void *arg), void *arg);

/*
 * Commits what is queued, stops the thread, runs the last completions,
 * closes the database and frees s once libuv has closed its handle (the
 * loop must run once more). Safe on a store that was never started.
 */
void store_close(struct store *s);

/* ---- rows for the open batch. Everything is copied; nothing is kept. */
void store_task_insert(struct store *s, const struct task *t);
void store_task_update(struct store *s, const struct task *t);  /* the fields that change */
void store_checkpoint_add(struct store *s, uint64_t task_id, uint32_t attempt, uint64_t step,
			  const char *path, int64_t time_ms);
void store_team_put(struct store *s, const struct state *st, const struct team *t);
void store_team_delete(struct store *s, const char *name);
void store_class_put(struct store *s, const struct prio_class *c);
void store_class_delete(struct store *s, const char *name);
void store_pool_put(struct store *s, const char *name);
void store_node_put(struct store *s, const struct state *st, const struct node *n);
void store_policy_put(struct store *s, const char *key, const char *value);

struct store_event {
	uint64_t id;       /* assigned by the database */
	int64_t time_ms;
	const char *kind;
	uint64_t task_id;  /* 0: none */
	const char *node;
	const char *team;
	const char *actor;
	const char *message;
};
void store_event_add(struct store *s, const struct store_event *ev);

/* Runs fn(arg, status) on the loop once everything recorded so far is
 * committed (status 0) or failed (HPQ_ESTORAGE). */
typedef void (*store_done_fn)(void *arg, int status);
void store_after_commit(struct store *s, store_done_fn fn, void *arg);

/* A task's checkpoints and events, oldest first (the newest
 * STORE_HISTORY_MAX of each), read after everything recorded so far. */
#define STORE_HISTORY_MAX 500
struct store_checkpoint {
	uint32_t attempt;
	uint64_t step;
	char *path;
	int64_t time_ms;
};
struct store_history {
	struct store_checkpoint *ckpts;
	size_t nckpts;
	struct store_event *events;   /* strings owned by the history */
	size_t nevents;
};
/* h is valid during the call only; NULL when status < 0. */
typedef void (*store_history_fn)(void *arg, int status, const struct store_history *h);
void store_read_history(struct store *s, uint64_t task_id, store_history_fn fn, void *arg);

/*
 * Runs fn(db, arg) on the storage thread, inside the transaction of the
 * open batch and after the rows recorded before it, then done(arg,
 * status) on the loop (if done is not NULL). For modules with tables of
 * their own (usage.c) and reads the history op does not cover (events.c).
 * fn returns an SQLite result code; anything but SQLITE_OK fails the
 * commit and breaks the store, so a read keeps its own errors in arg and
 * returns SQLITE_OK.
 */
struct sqlite3;
typedef int (*store_call_fn)(struct sqlite3 *db, void *arg);
void store_call(struct store *s, store_call_fn fn, store_done_fn done, void *arg);

/* End of a loop iteration: hand the open batch to the thread if it has
 * anything in it. */
void store_submit(struct store *s);

/* fn(arg, ns) on the loop after every successful group commit: how long
 * its transaction took (metrics.c's histogram). NULL: nobody listens. */
void store_set_commit_observer(struct store *s, void (*fn)(void *arg, uint64_t ns), void *arg);

/* Batches handed over whose completions have not run yet, plus the open one if not empty. */
size_t store_inflight(const struct store *s);

#endif
