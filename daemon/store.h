/*
 * store.h: the durable record of the daemon's state (docs/design.md §6), SQLite in
 * WAL mode with synchronous=FULL, written by one storage thread.
 *
 * The loop thread never waits for the disk. During a loop iteration the
 * state module records rows (store_task_insert, store_event_add, ...) into
 * an open batch, copying what it needs; callers that must not answer before
 * the rows are durable register completions with store_after_commit. At
 * the end of the iteration store_submit hands the batch to the thread,
 * which writes every batch it finds waiting in ONE transaction (group
 * commit) and wakes the loop; the loop then runs the completions in the
 * order they were registered, with the commit's status. Reads (a task's
 * history, `hpq events`, `hpq usage`) are queued the same way, so each
 * sees everything recorded before it.
 *
 * If a commit fails, nothing is lost and nothing is answered: the store
 * turns degraded, keeps the rows and retries them (see "When the disk is
 * full or failing" below, and store.c for why).
 *
 * The store speaks in rows of plain values and knows nothing of the state
 * built from them: words such as a task's state or a quota's sharing mode
 * are stored as the caller gives them. All SQL lives in store*.c.
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

#include "res.h"

struct store;

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

/* Starts the storage thread and the watch timer; completions run on
 * loop. on_change, if set, is called on the loop whenever the store's
 * health (store_health) changes state. */
int store_start(struct store *s, uv_loop_t *loop, void (*on_change)(void *arg), void *arg);

/*
 * Commits what is queued (what waits for room included, once more),
 * stops the thread, runs the last completions, closes the database and
 * frees s once libuv has closed its handles (the loop must run once
 * more). Safe on a store that was never started; what such a store has
 * queued is dropped, its completions never run.
 */
void store_close(struct store *s);

/*
 * ---- When the disk is full or failing
 *
 * The store is degraded while it cannot count on writing its database:
 * STORE_FULL when the file system of its directory has less free than a
 * reserve (a sixteenth of the file system, at most STORE_RESERVE_MAX), or
 * a transaction failed for want of space; STORE_FAILING when one failed
 * for another reason (an I/O error, a file system gone read-only). While
 * it is degraded:
 *
 *  - the daemon refuses every request that would change something, before
 *    touching anything (store_check_writable), and starts nothing;
 *  - reads go on: from memory, and the store's reads (history, events,
 *    usage) from what is committed;
 *  - changes that were already applied in memory when a transaction failed
 *    (and those the daemon makes by itself meanwhile) wait, in order, with
 *    every completion waiting for them: nothing is acknowledged before it
 *    is committed, and nothing is reported failed that may yet be stored;
 *  - a timer (STORE_WATCH_MS) measures the free space and, once there is
 *    room again (or, after an I/O error, with a backoff from
 *    STORE_RETRY_MIN_MS to STORE_RETRY_MAX_MS), commits what waits with a
 *    small row of its own; when that commits, the store is writable again.
 *
 * The state changes are logged once each and told to on_change. A store
 * opened on a full disk starts degraded (with the WAL index in memory if
 * there is no room for the -shm file); one that cannot be written at all
 * (read-only file, directory or mount) is refused by store_open.
 */
#define STORE_RESERVE_MAX ((uint64_t)8 << 20)
#define STORE_RESERVE_DIVISOR 16
#define STORE_WATCH_MS 1000
#define STORE_RETRY_MIN_MS 1000
#define STORE_RETRY_MAX_MS 30000

enum store_state {
	STORE_OK,
	STORE_FULL,
	STORE_FAILING,
};

struct store_health {
	enum store_state state;
	const char *problem;         /* "state store full: N bytes free on DIR", ...; "" if OK */
	uint64_t free_bytes;         /* on the directory's file system; UINT64_MAX: unknown */
	int64_t since_ms;            /* unix ms it became degraded; 0 when OK */
	size_t waiting_rows;         /* rows applied in memory that wait for their commit */
	bool exclusive;              /* opened without room for -shm: held alone until restart */
};

/* The health now; problem is valid until the next call into the store. */
void store_health(const struct store *s, struct store_health *h);
bool store_degraded(const struct store *s);
/*
 * The WAL's checkpoints since the store opened (store-checkpoint.c):
 * passes of the background thread, the short ends the storage thread
 * gave them after a commit, and the full ones it ran because the WAL
 * had grown too long. All zero where SQLite checkpoints inside its
 * commits (a database held alone, store_health's exclusive).
 */
struct store_checkpoints {
	uint64_t background, finished, forced;
};
void store_checkpoint_counts(const struct store *s, struct store_checkpoints *out);

/* "ok" "full" "failing" */
const char *store_state_name(enum store_state state);

/*
 * Before a change: 0 when it may be made, else HPQ_ESTORAGE with a
 * message for the refusal in msg ("state store full: N bytes free on
 * DIR: hpqd refuses changes until space returns"). Measures the free
 * space (one statvfs), so that a disk that filled a moment ago is seen
 * now.
 */
int store_check_writable(struct store *s, char *msg, size_t len);

/*
 * Stopping: from now on nothing waits for room. The next store_submit,
 * once every batch is back from the thread, commits what waits and what
 * is recorded; what cannot be committed completes with HPQ_ESTORAGE.
 */
void store_finish(struct store *s);

/*
 * ---- rows
 *
 * Strings and lists in a row are borrowed: recording copies them into the
 * open batch, so the caller may change or free them once the call returns.
 * Rows handed out by the store are valid during the callback only.
 * Lists of names (members, node names) cannot contain commas.
 */
struct store_task_row {
	uint64_t id;
	const char *name, *team, *user;
	uint32_t uid, gid;
	const char *cls, *pool;
	const char *state;           /* "PENDING" ... */
	const char *reason;
	uint32_t nnodes;
	struct hpq_res per_node;
	char *const *node_names;     /* of the newest attempt, by rank */
	size_t n_node_names;
	const char *nodes_done;      /* per rank '1' once its exit is in */
	uint32_t attempts;
	int64_t submit_ms, start_ms, end_ms;
	bool has_exit_code;
	int32_t exit_code;
	uint64_t time_limit_s;
	int32_t preempt_signal;
	uint64_t grace_s;
	const char *checkpoint_dir, *cwd;
	char *const *argv;
	size_t argc;
	char *const *env;
	size_t envc;
	bool cancel_requested;
	/* schema version 6: the batch workflow */
	uint64_t array_id;           /* 0: not in an array */
	uint32_t array_index;
	const char *output, *error;  /* patterns; "" for none */
	const char *dependency;      /* what it still waits for; "" */
	bool kill_on_invalid_dep;
	bool held;
	const char *submit_dir;
	uint32_t ntasks_per_node;
	uint64_t peak_mem;           /* bytes */
	uint64_t cpu_usec;
	uint32_t preemptions;
	const char *requeue_by;      /* a requeue waits for the exit; "" */
	/* schema version 7: recipes */
	const char *recipe, *recipe_version; /* "" when not made from one */
	char *const *recipe_params;  /* "k=v" */
	size_t n_recipe_params;
	const char *plan;            /* schema version 12: the plan it runs in, "" none */
	const char *script;          /* insert: the batch script, or NULL; load: ""
	                              * when one is kept for it (its array's for an
	                              * index), NULL when none */
	size_t script_len;
};

/* An array (array.h): every index, those not materialized yet, the %
 * limit, and whether its pending indices are held. */
struct store_array_row {
	uint64_t id;
	const char *spec;            /* ranges: "0-999" */
	const char *pending;         /* ranges; "" when none */
	uint32_t max_running;        /* 0: no limit */
	bool held;
	const char *dependency;      /* version 15: what its indices were submitted
	                              * with (singleton holds for each); "" none */
	const char *dropped;         /* version 16: ranges of the indices a cancel
	                              * dropped before they existed ("" none); NULL
	                              * in a row from before, which never said */
};

/* A training plan (plan.h). Its segments in one text:
 * "START-END@NODE,NODE;START-END@..." (unix ms). */
struct store_plan_row {
	uint64_t id;
	const char *name, *team, *pool, *state, *segments, *created_by;
	uint32_t nodes;              /* per segment */
	uint32_t gpus_per_node;      /* for GPU-hours reserved */
	uint64_t duration_s;
	int64_t created_ms;
	int64_t ended_ms;            /* cancelled or completed; 0: not yet */
};

struct store_checkpoint {
	uint32_t attempt;
	uint64_t step;
	char *path;
	int64_t time_ms;
};

struct store_quota_row {
	const char *pool;
	struct hpq_res guarantee;
	const char *sharing;         /* "lend-and-borrow" "lend" "dont-lend" */
	uint32_t borrow_limit_pct;
	bool has_borrow_abs;
	struct hpq_res borrow_abs;
	bool has_lend_limit;
	struct hpq_res lend_limit;
};

struct store_team_row {
	const char *name;
	uint32_t weight;
	const char *preempt_own;     /* "lower-priority" "never" */
	const char *default_class;
	char *const *members;        /* user names and @groups */
	size_t nmembers;
	char *const *admins;         /* the same (schema version 4) */
	size_t nadmins;
	const struct store_quota_row *quotas;  /* store_team_put: all of them */
	size_t nquotas;
};

struct store_class_row {
	const char *name;
	uint32_t weight;
	bool preemptible;
	uint64_t max_time_s;         /* schema version 6; 0: no cap */
};

struct store_node_row {
	const char *name, *pool;
	struct hpq_res capacity;
	char *const *labels;
	size_t nlabels;
	const char *address;
	const char *service, *health, *reason;
	int64_t last_seen_ms;
	const char *service_by;
	int64_t service_since_ms;
	bool admin_hold;
	const char *repair_action;
};

struct store_token_row {
	const char *id;
	const char *secret_hash;  /* hex of the secret's hash */
	const char *pool;
	int64_t expires_ms;
	uint32_t uses_left;
	const char *created_by;
	int64_t created_ms;
};

struct store_cert_row {
	const char *serial, *node, *pool;
	int64_t issued_ms, not_after_ms;
	int64_t revoked_ms;       /* 0: not revoked */
};

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

/* GPU-milliseconds of one hour bucket (hour = unix ms / 3600000). */
struct store_usage_row {
	int64_t hour;
	const char *dim;             /* "team" "user" "class" */
	const char *key, *pool;
	int64_t used_ms, within_ms, borrowed_ms, lent_ms;
};

/* What the daemon still needs of the tasks that ended long ago and are
 * not loaded (store_loader.ended_since_ms), one kind of summary a row. */
enum store_gone_kind {
	STORE_GONE_BAD,              /* id: one that did not end COMPLETED */
	STORE_GONE_ARRAY_LEFT,       /* array_id, spec, dropped: an array that ended,
	                              * whose tasks are none of them loaded and
	                              * which did not all complete: it is not
	                              * loaded (on_array) either, and its indices
	                              * that did not complete follow */
	STORE_GONE_ARRAY,            /* array_id, index, state: one of an array that
	                              * did not end COMPLETED (any, for an array
	                              * whose dropped is NULL); retain's too */
	STORE_GONE_TEAM,             /* team, state: count of them, attempts summed */
	STORE_GONE_MAX,              /* id: the largest task id in the store */
};
struct store_gone_row {
	enum store_gone_kind kind;
	uint64_t id, array_id;
	uint32_t index;              /* in its array */
	const char *team, *state;
	uint64_t count, attempts;
	const char *spec, *dropped;  /* STORE_GONE_ARRAY_LEFT */
};

/* ---- recording into the open batch */
void store_task_insert(struct store *s, const struct store_task_row *t);
/* Only what changes after the submit: state, reason, node names and done
 * marks, attempts, start and end times, exit code, cancel_requested. */
void store_task_update(struct store *s, const struct store_task_row *t);
/* A pending task's end (cancelled): its state, reason and end time, all
 * that changed since its row was last written; cheaper than a whole
 * update when a cancel ends thousands. */
void store_task_end(struct store *s, uint64_t id, const char *state, const char *reason,
		    int64_t end_ms);
/*
 * One task of a change that many tasks get alike in one request (a cancel
 * of every pending task, a release of every held one): its row's narrow
 * change, and its event (task_id the task, team the task's row's, node
 * ""). Consecutive calls that differ only in the task share one op, and
 * the commit that completions wait for writes one row for all of them
 * (task_bulk, schema version 13) and the last task's event: the events
 * get the ids they would have had one by one, and each task's row and
 * event are written by the storage thread right after that commit,
 * before anything recorded later runs (a read or a change of a task's
 * row in the same transaction first has them written), or when the
 * database is next opened if hpqd died in between. Reads therefore see
 * them as if written one by one; only while changes wait for room on the
 * disk may a read not see them yet.
 */
enum store_bulk_change {
	STORE_BULK_END,              /* state, reason, end_ms */
	STORE_BULK_RELEASE,          /* held cleared, reason */
};
struct store_bulk {
	enum store_bulk_change change;
	const char *state;           /* STORE_BULK_END only */
	const char *reason;
	int64_t end_ms;              /* STORE_BULK_END only */
	int64_t time_ms;             /* the events' */
	const char *kind, *actor, *message;
};
void store_task_bulk(struct store *s, uint64_t id, const struct store_bulk *b);
/* Inserts or replaces an array's row (store-arrays.c). */
void store_array_put(struct store *s, const struct store_array_row *a);
/* Inserts or replaces a plan's row (store-plans.c). */
void store_plan_put(struct store *s, const struct store_plan_row *p);
void store_checkpoint_add(struct store *s, uint64_t task_id, uint32_t attempt, uint64_t step,
			  const char *path, int64_t time_ms);
/* The team and exactly t->quotas: quotas it had before and no longer has go. */
void store_team_put(struct store *s, const struct store_team_row *t);
void store_team_delete(struct store *s, const char *name);
void store_class_put(struct store *s, const struct store_class_row *c);
void store_class_delete(struct store *s, const char *name);
void store_pool_put(struct store *s, const char *name);
void store_node_put(struct store *s, const struct store_node_row *n);
void store_node_delete(struct store *s, const char *name);
void store_policy_put(struct store *s, const char *key, const char *value);
void store_token_put(struct store *s, const struct store_token_row *t);
void store_token_delete(struct store *s, const char *id);
void store_cert_put(struct store *s, const struct store_cert_row *c);
void store_cert_delete(struct store *s, const char *serial);
void store_event_add(struct store *s, const struct store_event *ev);
/* Adds to the bucket's amounts (creating it): a bucket may be written any
 * number of times. */
void store_usage_add(struct store *s, const struct store_usage_row *u);

/* Runs fn(arg, status) on the loop once everything recorded so far is
 * committed (status 0), or failed for good (HPQ_ESTORAGE: only when the
 * daemon stops while its changes wait; see store_finish). */
typedef void (*store_done_fn)(void *arg, int status);
void store_after_commit(struct store *s, store_done_fn fn, void *arg);

/*
 * ---- loading, before store_start
 *
 * store_load hands every row to cb, in this order: policy keys, pools,
 * classes, teams (without their quotas), quotas (by team, then pool),
 * nodes, tasks (by id, each with its newest checkpoint or NULL), join
 * tokens, node certificates, plans, then done. Callbacks may record rows; they go into the open batch and are
 * committed once the store starts.
 */
struct store_loader {
	void (*on_policy)(void *arg, const char *key, const char *value);
	void (*on_pool)(void *arg, const char *name);
	void (*on_cls)(void *arg, const struct store_class_row *c);
	void (*on_team)(void *arg, const struct store_team_row *t);
	void (*on_quota)(void *arg, const char *team, const struct store_quota_row *q);
	void (*on_node)(void *arg, const struct store_node_row *n);
	void (*on_array)(void *arg, const struct store_array_row *a);
	void (*on_task)(void *arg, const struct store_task_row *t,
			const struct store_checkpoint *newest);
	void (*on_token)(void *arg, const struct store_token_row *t);
	void (*on_cert)(void *arg, const struct store_cert_row *c);
	void (*on_plan)(void *arg, const struct store_plan_row *p);  /* by id; may be NULL */
	void (*on_done)(void *arg);
	/* Tasks that ended before ended_since_ms (> 0) are not loaded: the
	 * daemon keeps them in the store only. on_gone, if set, gets a summary
	 * of each of them instead, after the tasks (an array's first task is
	 * loaded whenever its array still has pending indices: it is the
	 * array's template). Nor are the arrays that ended and none of whose
	 * tasks is loaded: on_array gets only the others. */
	int64_t ended_since_ms;
	void (*on_gone)(void *arg, const struct store_gone_row *g);
};
int store_load(struct store *s, const struct store_loader *cb, void *arg, char *err,
	       size_t errlen);

/*
 * The autoscaler's nodes (autoscale.c): one row per node it launched,
 * from before its provision command runs until the node is removed.
 * state: launching ready leaving. store_load_asnodes reads them, before
 * store_start, like store_load.
 */
struct store_asnode_row {
	const char *name, *pool, *state, *replaces;
	int64_t launched_ms, born_ms;
};
void store_asnode_put(struct store *s, const struct store_asnode_row *a);
void store_asnode_delete(struct store *s, const char *name);
int store_load_asnodes(struct store *s, void (*fn)(void *arg, const struct store_asnode_row *a),
		       void *arg, char *err, size_t errlen);

/*
 * ---- reading, after everything recorded so far
 *
 * Each read answers on the loop with fn(arg, status, result): result is
 * NULL when status is < 0. A read never fails a commit, and answers even
 * while changes wait for room: it then sees what is committed. A read
 * that fails by itself says why in its result's error (the history read:
 * with status HPQ_ESTORAGE).
 */

/* A task's checkpoints and events, oldest first (the newest
 * STORE_HISTORY_MAX of each). */
#define STORE_HISTORY_MAX 500
struct store_history {
	struct store_checkpoint *ckpts;
	size_t nckpts;
	struct store_event *events;
	size_t nevents;
	char *script;                /* script_id given and one is kept; NUL-terminated */
	size_t script_len;
	void *task;                  /* store_read_task_history: what make made, or NULL */
};
typedef void (*store_history_fn)(void *arg, int status, const struct store_history *h);
/* script_id: also the batch script kept under that id (the task's, or its
 * array's); 0: none. */
void store_read_history(struct store *s, uint64_t task_id, uint64_t script_id,
			store_history_fn fn, void *arg);
/*
 * The same for a task the daemon no longer holds in memory: make is called
 * ON THE STORAGE THREAD with the task's row (it must touch nothing but the
 * row) and its result is handed to fn in h->task (NULL when there is no such
 * row), which fn then owns: h is given even when status < 0. With script,
 * the batch script kept for it (its own, or its array's) is read too.
 */
typedef void *(*store_make_fn)(const struct store_task_row *row,
			       const struct store_checkpoint *newest);
void store_read_task_history(struct store *s, uint64_t task_id, bool script, store_make_fn make,
			     store_history_fn fn, void *arg);
/* The same for the task of index index of array array_id; for an index a
 * cancel dropped before it had a task (arrays.dropped), its array's first
 * task's row made CANCELLED and never started, with no history. */
void store_read_index_history(struct store *s, uint64_t array_id, uint32_t index, bool script,
			      store_make_fn make, store_history_fn fn, void *arg);

/*
 * What the store knows of index index of id, a task that left memory, for
 * a dependency on it: the array's spec (an array's row is never deleted);
 * else, from id's own row, that it is no array; else nothing ([tasks]
 * retain deleted a task's row, or an earlier hpqd an array's, and what is
 * gone cannot be told from what never was).
 */
enum store_index_known {
	STORE_INDEX_UNKNOWN,
	STORE_INDEX_OF,              /* the array has the index */
	STORE_INDEX_NOT_OF,          /* the array has no such index */
	STORE_INDEX_NOT_ARRAY,       /* id is a task of its own, not an array */
};

struct store_index_query {
	uint64_t id;
	uint32_t index;
	enum store_index_known known;    /* the answer */
};

typedef void (*store_indices_fn)(void *arg, int status, const struct store_index_query *q,
				 size_t n);
/* Answers the n queries of q (copied) from what is committed, or fn gets
 * status < 0. */
void store_read_indices(struct store *s, const struct store_index_query *q, size_t n,
			store_indices_fn fn, void *arg);

/*
 * What RunTask needs that the daemon does not keep in memory: the
 * environment of task task_id (an array's index runs its array's first
 * task's) and the batch script kept under script_id (the task's or its
 * array's id; 0: none). Read in the open batch's transaction, after the
 * changes recorded so far (the START that this RunTask announces), and
 * handed over once they are committed: a start waits for one commit.
 * fn gets the commit's status as store_after_commit's does; r is NULL
 * when the commit failed or the rows could not be read. env is a
 * NULL-terminated vector; r is valid during fn only.
 */
struct store_run {
	char *const *env;
	size_t envc;
	const char *script;          /* NULL: none */
	size_t script_len;
};
typedef void (*store_run_fn_t)(void *arg, int status, const struct store_run *r);
void store_read_run(struct store *s, uint64_t task_id, uint64_t script_id, store_run_fn_t fn,
		    void *arg);

/*
 * [tasks] retain: deletes at most max_rows of the tasks that ended before
 * before_ms, with their checkpoints and scripts (an array's script once no
 * task of it is left), never the first task of an array that still has
 * pending indices, or indices that a cancel dropped at or after before_ms
 * (their hpq acct record and hpq show ID_INDEX are its). p->deleted says
 * how many went.
 */
struct store_prune;
typedef void (*store_prune_fn)(void *arg, int status, const struct store_prune *p);
void store_tasks_prune(struct store *s, int64_t before_ms, uint32_t max_rows, store_prune_fn fn,
		       void *arg);

/*
 * hpq acct: ended tasks whose end falls in [since_ms, until_ms) (until 0:
 * no bound), of a user, team and name where those are set, in one of the
 * states (a ",COMPLETED,FAILED," list; NULL: every final state). The
 * newest limit of them by id, handed out oldest first. An array's indices
 * that a cancel dropped before they were tasks are one more row of its id
 * (after its first task's), CANCELLED, never started, with dropped their
 * ranges ("5-99,120") and end_ms when they were dropped (store-tasks.c).
 *
 * A streamed read goes forward a page at a time: the first limit rows at
 * or after the position `from`, oldest first; l->more says whether a row
 * follows them, l->next where the next page starts. With newest set, the
 * page starts where the newest `newest` rows begin instead (l->truncated
 * if any row comes before them). Each page is read on its own, so that
 * the store is never held for a whole history; one that ends later than
 * until_ms never shows, so a fixed until_ms keeps the pages one list.
 */
struct store_acct_pos {
	uint64_t id;
	bool dropped;                    /* the array's record of its dropped indices */
};
struct store_acct_filter {
	int64_t since_ms, until_ms;
	const char *user, *team, *name;  /* NULL: any */
	const char *states;
	uint32_t limit;
	bool forward;                    /* a page of a streamed read */
	struct store_acct_pos from;
	uint64_t newest;
};
struct store_acct_row {
	uint64_t id, array_id;
	uint32_t array_index;
	char *name, *team, *user, *cls, *pool, *state, *reason;
	char *dropped;                   /* "" but for an array's dropped indices */
	char **node_names;
	size_t n_node_names;
	uint32_t nnodes, attempts, preemptions;
	struct hpq_res per_node;
	int64_t submit_ms, start_ms, end_ms;
	bool has_exit_code;
	int32_t exit_code;
	uint64_t time_limit_s, peak_mem, cpu_usec;
};
struct store_acct_list {
	const struct store_acct_row *v;
	size_t n;
	bool truncated;
	bool more;                       /* forward: a row follows, at next */
	struct store_acct_pos next;
	const char *error;
};
typedef void (*store_acct_fn)(void *arg, int status, const struct store_acct_list *l);
void store_acct_read(struct store *s, const struct store_acct_filter *f, store_acct_fn fn,
		     void *arg);

/* Events at or after since_ms, and of one task, team and node where those
 * are set: the newest limit of them, oldest first. */
struct store_event_filter {
	int64_t since_ms;
	uint64_t task_id;            /* 0: any */
	const char *team, *node;     /* NULL: any */
	uint32_t limit;
};
struct store_event_list {
	const struct store_event *v;
	size_t n;
	bool truncated;              /* more matched than limit */
	const char *error;
};
typedef void (*store_events_fn)(void *arg, int status, const struct store_event_list *l);
void store_events_read(struct store *s, const struct store_event_filter *f, store_events_fn fn,
		       void *arg);

/* The newest event id (0: none yet) and the task and time of each event
 * of kind at or after since_ms, by time. Events recorded later get ids
 * from max_id + 1 on: ids only grow, and pruning keeps the newest. */
struct store_event_mark {
	uint64_t task_id;
	int64_t time_ms;
};
struct store_event_marks {
	uint64_t max_id;
	const struct store_event_mark *v;
	size_t n;
	const char *error;
};
typedef void (*store_marks_fn)(void *arg, int status, const struct store_event_marks *m);
void store_events_marks(struct store *s, const char *kind, int64_t since_ms, store_marks_fn fn,
			void *arg);

/* Deletes at most max_rows of the oldest events before before_ms (never
 * the newest event), so that one commit never stalls the others for long. */
struct store_prune {
	int64_t deleted;
	const char *error;
};
void store_events_prune(struct store *s, int64_t before_ms, uint32_t max_rows, store_prune_fn fn,
			void *arg);

/* Usage of one dimension from hour since_hour on, summed per key and pool,
 * by key then pool. */
struct store_usage_sum {
	const char *key, *pool;
	int64_t used_ms, within_ms, borrowed_ms, lent_ms;
};
struct store_usage_list {
	const struct store_usage_sum *v;
	size_t n;
	const char *error;
};
typedef void (*store_usage_fn)(void *arg, int status, const struct store_usage_list *l);
void store_usage_read(struct store *s, const char *dim, int64_t since_hour, store_usage_fn fn,
		      void *arg);

/* ---- the loop */

/* End of a loop iteration: hand the open batch to the thread if it has
 * anything in it. */
void store_submit(struct store *s);

/* fn(arg, ns) on the loop after every successful group commit: how long
 * its transaction took (metrics.c's histogram). NULL: nobody listens. */
void store_set_commit_observer(struct store *s, void (*fn)(void *arg, uint64_t ns), void *arg);

/* Batches handed over whose completions have not run yet, plus those that
 * wait for room, plus the open one if not empty. */
size_t store_inflight(const struct store *s);

/*
 * ---- upgrade insights (store-upgrade.c, schema version 9)
 *
 * deprecated_uses: one row per deprecated thing (deprecation.h's ids) and
 * per user of it, with its first and last use and a count, rewritten
 * whole (deprecation.c limits how often). backups: each copy hpqd --backup
 * made, recorded by that process in the live database.
 */
struct store_deprecated_row {
	const char *what, *who;
	int64_t first_seen_ms, last_seen_ms;
	uint64_t count;
};
void store_deprecated_put(struct store *s, const struct store_deprecated_row *r);
/* Before store_start: hands every row to cb. 0 or a negative code. */
int store_deprecated_load(struct store *s,
			  void (*cb)(void *arg, const struct store_deprecated_row *r), void *arg,
			  char *err, size_t errlen);

struct store_backup_info {
	bool has;                    /* a backup is recorded */
	const char *path;
	int64_t time_ms;
	uint64_t bytes;
	uint32_t schema;
	uint64_t db_bytes;           /* the database now: page_count x page_size */
	const char *error;           /* the read failed; NULL when it did not */
};
typedef void (*store_backup_fn)(void *arg, int status, const struct store_backup_info *b);
/* The newest backup recorded, and the database's size. */
void store_backup_latest(struct store *s, store_backup_fn fn, void *arg);
/* hpqd --backup, in its own process: records the copy at path in the live
 * database db_path through a connection of its own (a short write that
 * waits for hpqd's), as the database's owner only (HPQ_EPERM otherwise: the
 * files SQLite may create must stay hpqd's). A database older than schema
 * 9 has no table: -ENOENT. */
int store_backup_record(const char *db_path, const char *path, int64_t time_ms, uint64_t bytes,
			uint32_t schema, char *err, size_t errlen);

#endif
