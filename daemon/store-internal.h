/*
 * store-internal.h: what the store's files (daemon/store*.c) share: the
 * prepared statements, the ops that carry rows to the storage thread
 * (store-batch.c), and helpers for reading rows and columns
 * (store-rows.c). Nothing else includes it.
 */
#ifndef HPQD_STORE_INTERNAL_H
#define HPQD_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store.h"
#include "xalloc.h"

/* The prepared statements; each one's SQL is in the file of its tables. */
enum stmt_id {
	/* store-tasks.c */
	ST_TASK_INSERT,
	ST_TASK_UPDATE,
	ST_TASK_END,
	ST_SCRIPT_INSERT,
	ST_ENV_INSERT,
	ST_ENV_READ,
	ST_SCRIPT_READ,
	ST_CKPT_INSERT,
	ST_HIST_CKPTS,
	ST_HIST_EVENTS,
	ST_TASK_BULK,           /* no SQL: a bulk op (store_task_bulk) */
	ST_BULK_EVENT_NEXT,
	ST_BULK_EVENT,
	ST_BULK_PUT,
	ST_BULK_FIRST,
	ST_BULK_DELETE,
	/* store-teams.c */
	ST_POLICY_PUT,
	ST_POOL_PUT,
	ST_CLASS_PUT,
	ST_CLASS_DELETE,
	ST_TEAM_PUT,
	ST_TEAM_DELETE,
	ST_QUOTAS_CLEAR,
	ST_QUOTA_PUT,
	/* store-nodes.c */
	ST_NODE_PUT,
	ST_NODE_DELETE,
	ST_ASNODE_PUT,
	ST_ASNODE_DELETE,
	/* store-events.c */
	ST_EVENT_INSERT,
	/* store-usage.c */
	ST_USAGE_ADD,
	/* store-arrays.c */
	ST_ARRAY_PUT,
	/* store-trust.c */
	ST_TOKEN_PUT,
	ST_TOKEN_DELETE,
	ST_CERT_PUT,
	ST_CERT_DELETE,
	/* store-plans.c */
	ST_PLAN_PUT,
	/* store.c: the engine's own */
	ST_PROBE,
	ST_COUNT,
};

struct stmt_def {
	enum stmt_id id;
	const char *sql;
};

/* Each file's statements, ended by one without sql; store_open
 * (store-open.c) prepares them all, so a mistake in any fails at start. */
extern const struct stmt_def store_task_stmts[];
extern const struct stmt_def store_team_stmts[];
extern const struct stmt_def store_node_stmts[];
extern const struct stmt_def store_event_stmts[];
extern const struct stmt_def store_usage_stmts[];
extern const struct stmt_def store_trust_stmts[];
extern const struct stmt_def store_array_stmts[];
extern const struct stmt_def store_plan_stmts[];

/*
 * An op is one row for the open batch: a statement and a copy of each
 * value bound to it, owned by the op, so the state can change again
 * before the storage thread gets to it.
 */
enum val_type { V_NULL, V_INT, V_TEXT, V_BLOB };

struct val {
	enum val_type type;
	int64_t i;
	char *p;        /* V_TEXT (NUL-terminated) and V_BLOB, in the batch's memory */
	size_t len;
};

struct batch;

typedef int (*store_run_fn)(struct store *s, void *arg);

struct op {
	struct batch *batch;    /* whose memory holds it and its values */
	enum stmt_id stmt;
	store_run_fn run;       /* store_call: runs instead of the statement */
	void *arg;
	bool read;              /* store_call_read: answers even while changes wait */
	bool ran;               /* a read that ran (storage thread) */
	size_t done_idx;        /* a read's completion, in its batch */
	unsigned n;
	struct val v[];
};

/* Appends an op with n values to the open batch; values not set are NULL. */
struct op *op_new(struct store *s, enum stmt_id stmt, unsigned n);
/* The open batch's last op, NULL if none. */
struct op *store_last_op(struct store *s);

static inline void op_int(struct op *op, unsigned i, int64_t x)
{
	op->v[i].type = V_INT;
	op->v[i].i = x;
}

/* A copy of s (NULL: ""). */
void op_text(struct op *op, unsigned i, const char *s);
/* Room for more bytes at the end of blob i, which grows as needed (its
 * capacity kept in its int): returns where they go. The caller adds them
 * to its len. */
char *op_blob_room(struct op *op, unsigned i, size_t more);

/* Strings, each followed by its NUL, in one blob. */
void op_strv(struct op *op, unsigned i, char *const *strv, size_t n);
/* len bytes, copied. */
void op_blob(struct op *op, unsigned i, const void *p, size_t len);
/* Reverses n rows of size bytes in place: reads that keep the newest
 * limit rows read newest first and hand them out oldest first. */
void rows_reverse(void *rows, size_t n, size_t size);
/* Names joined with commas. */
void op_names(struct op *op, unsigned i, char *const *names, size_t n);

/*
 * Runs run(s, arg) on the storage thread, inside the transaction of the
 * open batch and after the rows recorded before it, then done(arg,
 * status) on the loop. run returns an SQLite result code; anything but
 * SQLITE_OK fails the commit, which then waits and is tried again (store.h),
 * so run may run more than once and must do the same each time. Reads
 * use store_call_read, unless they must see the batch's changes and
 * answer only once those are committed (store_read_run).
 */
void store_call(struct store *s, store_run_fn run, store_done_fn done, void *arg);

/*
 * The same for a read, or a change that may be lost (pruning): run keeps
 * its own errors and returns SQLITE_OK, and it runs once whatever happens
 * to the changes around it. While changes wait for room on the disk
 * (store.h, "When the disk is full or failing") it still runs, in a
 * transaction of its own, and sees what is committed; otherwise it runs
 * in the group's transaction after the rows recorded before it. done gets
 * its own status: HPQ_ESTORAGE only if run returned an error.
 */
void store_call_read(struct store *s, store_run_fn run, store_done_fn done, void *arg);

/*
 * A pruning call (store_tasks_prune, store_events_prune), made with
 * store_call_read: run deletes at most max_rows of its table's rows older
 * than before_ms and says in p how many went (or why none could); fn
 * gets p on the loop.
 */
struct store_prune_req {
	int64_t before_ms;
	uint32_t max_rows;
	store_prune_fn fn;
	void *arg;
	struct store_prune p;
	char errbuf[128];
};
void store_call_prune(struct store *s, int64_t before_ms, uint32_t max_rows, store_run_fn run,
		      store_prune_fn fn, void *arg);

/* Reads keep their errors to themselves rather than fail the commit:
 * the message goes to buf, and *error points at it. */
void read_failed(sqlite3 *db, char *buf, size_t size, const char **error);

/* The connection and the prepared statements: the storage thread's, or
 * the loop's before store_start. */
sqlite3 *store_db(struct store *s);
sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id);

/*
 * Bulk changes (store_task_bulk, store-tasks.c). A bulk op's run writes
 * its task_bulk row and reserves its events' ids; store_bulk_apply, on
 * the storage thread inside a transaction, writes the rows and events of
 * every task_bulk row and deletes it. The engine (store.c) runs it, as
 * its bulk_apply (set by store_open), after each commit that wrote such
 * a row, and before anything later in a transaction that could see or
 * change those rows (store_bulk_forced).
 */
int store_bulk_apply(struct store *s);
static inline bool store_bulk_forced(const struct op *op)
{
	return op->read || (op->run && op->stmt != ST_TASK_BULK) ||
	       op->stmt == ST_TASK_UPDATE || op->stmt == ST_TASK_END;
}
/* Finishes what task_bulk holds in a transaction of its own (store.c):
 * an SQLite result code. */
int store_bulk_finish(struct store *s);

/* Task states in SQL: the live ones, and the ends that are not a completion. */
#define LIVE_STATES "('PENDING','RUNNING','PREEMPTING')"
#define BAD_STATES "('FAILED','CANCELLED','TIMEOUT','OUT_OF_MEMORY')"
/*
 * The arrays that ended and left memory, for a load that leaves the tasks
 * that ended before ?1 in the store: nothing pending, their dropped
 * indices known (schema 16), and none of their tasks loaded. The daemon
 * builds none of them; those that did not all complete come as gone
 * summaries (STORE_GONE_BAD, STORE_GONE_ARRAY_LEFT). The unary + keeps
 * each subquery on the index of state or end time, not on tasks_array,
 * which holds every array task ever run.
 */
#define ARRAYS_LEFT \
	"pending = '' AND dropped IS NOT NULL AND id NOT IN (SELECT array_id FROM tasks" \
	" WHERE state IN " LIVE_STATES " AND +array_id != 0 UNION SELECT array_id FROM" \
	" tasks WHERE end_time != 0 AND end_time >= ?1 AND +array_id != 0)"
/* Of those, the ones that did not all complete. */
#define ARRAYS_LEFT_BAD \
	ARRAYS_LEFT " AND (dropped != '' OR id IN (SELECT array_id FROM arrays_gone_bad)" \
	" OR id IN (SELECT array_id FROM tasks WHERE state IN " BAD_STATES \
	" AND +array_id != 0))"

/* Each table family's part of store_load, in its order; SQLite result codes. */
int store_load_teams(struct store *s, const struct store_loader *cb, void *arg);
int store_load_nodes(struct store *s, const struct store_loader *cb, void *arg);
int store_load_tasks(struct store *s, const struct store_loader *cb, void *arg);
int store_load_trust(struct store *s, const struct store_loader *cb, void *arg);
int store_load_arrays(struct store *s, const struct store_loader *cb, void *arg);
int store_load_plans(struct store *s, const struct store_loader *cb, void *arg);

/* Runs one query of a load, calling row() for each row it returns. */
typedef void (*load_row_fn)(sqlite3_stmt *q, const struct store_loader *cb, void *arg);
int store_load_rows(struct store *s, const char *sql, load_row_fn row,
		    const struct store_loader *cb, void *arg);

/* A column's text, "" for NULL. */
static inline const char *col_text(sqlite3_stmt *q, int col)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	return t ? (const char *)t : "";
}

static inline char *col_dup(sqlite3_stmt *q, int col)
{
	return xstrdup(col_text(q, col));
}

/* Frees the strings of an event read from the table (store-events.c). */
void event_free(struct store_event *e);

/* A list column split into strings, for one row's callback. */
struct col_strv {
	char **v;
	size_t n;
	char *bytes;
};
/* A blob of NUL-terminated strings (op_strv's). */
void col_strv_blob(struct col_strv *sv, sqlite3_stmt *q, int col);
/* Comma separated names (op_names'); empty names are skipped. */
void col_strv_names(struct col_strv *sv, sqlite3_stmt *q, int col);
void col_strv_free(struct col_strv *sv);

#endif
