/*
 * store-core.h: the store's own structures, for the engine (store.c: the
 * storage thread, its commits and the store's health), store-batch.c
 * (what the loop queues for that thread) and store-open.c (which puts
 * the store together). The table families (store-*.c) see the store
 * through store-internal.h only.
 */
#ifndef HPQD_STORE_CORE_H
#define HPQD_STORE_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>
#include <uv.h>

#include "store-checkpoint.h"
#include "store-internal.h"
#include "store.h"

struct done {
	store_done_fn fn;
	void *arg;
	bool read;              /* a read's (store_call_read): runs with its own status */
	int status;             /* a read's, set where it ran */
};

/*
 * The ops and completions of one loop iteration. The thread takes every
 * batch waiting, runs their ops in one BEGIN IMMEDIATE ... COMMIT, frees
 * the ops and passes the batches back through a uv_async, whose callback
 * runs the completions in order. A batch whose transaction failed comes
 * back held: its reads have run, and their completions run at once; its
 * rows and the completions that wait for them stay on the loop, in order,
 * until a later transaction commits them.
 */
struct batch {
	struct op **ops;
	size_t nops, capops;
	struct chunk *mem;      /* its ops and their values, newest chunk first */
	struct done *dones;
	size_t ndones, capdones;
	int status;
	uint64_t commit_ns;     /* how long its transaction took (first batch of a group) */
	bool held;              /* thread to loop: its changes wait for a later commit */
	bool retry;             /* loop to thread: try to commit it although changes wait */
	bool final;             /* loop to thread: try to commit it, and fail it if that fails */
	bool probe;             /* the watch's own batch: one small row */
	struct batch *next;
};

/* Why a transaction failed, in SQLite's words and the system's. */
struct failure {
	int rc;                 /* SQLite's extended result code */
	int sys_errno;          /* the errno behind it, or 0 */
	char msg[160];
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmts[ST_COUNT];
	unsigned flags;
	char *path, *dir;       /* the database, and the directory it lives in */
	bool exclusive;         /* opened with locking_mode EXCLUSIVE (no room for -shm) */
	struct checkpointer *ckpt; /* the WAL's checkpoints; NULL: in the commits */

	/* loop thread */
	struct batch *open;
	size_t inflight;
	uv_loop_t *loop;
	uv_async_t async;
	uv_timer_t watch;       /* free space, and the retries while degraded */
	unsigned handles;       /* libuv handles still to close */
	bool started, joined;
	bool final;             /* store_finish: nothing waits for room any more */
	void (*on_change)(void *arg);
	void *change_arg;
	void (*on_commit)(void *arg, uint64_t ns);
	void *commit_arg;

	/* loop thread: the health (store_health) */
	enum store_state state;
	char cause[200];        /* STORE_FAILING: the error, in words */
	char problem[480];
	int64_t since_ms;
	uint64_t free_bytes, reserve;
	struct batch *held, **held_tail;  /* changes waiting for their commit, in order */
	size_t held_rows, trying_rows;
	bool trying;            /* the watch's retry is with the thread */
	int64_t retry_ms, next_try_mono;

	/* shared, under mu */
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cv;
	struct batch *todo, **todo_tail;
	struct batch *finished, **finished_tail;
	bool quit;
	struct failure failure; /* the newest failed transaction's */

	/* storage thread */
	bool holding;           /* a transaction failed: later changes wait behind it */
	/* storage thread (the loop before store_start and after the join):
	 * task_bulk may hold rows whose tasks' rows are still to be written,
	 * which bulk_apply writes (store_bulk_apply: set by store_open) */
	bool bulk_pending;
	int (*bulk_apply)(struct store *s);
};

/* An SQL statement without rows or values, on the engine's connection
 * or store_open's: SQLite's result code. */
static inline int store_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* store.c, for store_open (store-open.c): the engine's own statements
 * (ended by one without sql); a store not yet opened, every field as the
 * engine starts it; one small write, refusing a database that cannot be
 * written and finding a full or failing disk at once (0, or HPQ_ESTORAGE
 * with a message); the connection closed with its statements; the store
 * freed. */
extern const struct stmt_def store_core_stmts[];
struct store *store_new(const char *path, unsigned flags);
int store_probe(struct store *s, char *err, size_t errlen);
void store_close_db(struct store *s);
void store_free(struct store *s);

/* store-batch.c: an op of b with n values, all NULL, not yet among b's
 * ops, and adding it (a batch of the store's own: the watch's probe); */
struct op *op_alloc(struct batch *b, enum stmt_id stmt, unsigned n);
void batch_add(struct batch *b, struct op *op);
/* a batch's memory and ops, freed; a held batch's reads alone (their
 * memory goes with its rows'). */
void batch_free(struct batch *b);
void batch_free_ops(struct batch *b);
void batch_free_reads(struct batch *b);

#endif
