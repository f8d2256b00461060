/*
 * store.c: the store's core (store.h): opening and migrating the database,
 * the storage thread with its batches, group commit and completions, and
 * the order of a load. Each table family's rows live in a file of their
 * own (store-tasks.c, store-teams.c, store-nodes.c, store-events.c,
 * store-usage.c), built on store-internal.h.
 *
 * The database is opened with SQLITE_OPEN_NOMUTEX: the loop thread uses
 * the connection only before store_start (migrate, load) and after the
 * thread has been joined (close); in between only the thread touches it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "error.h"
#include "log.h"
#include "store-internal.h"
#include "store.h"
#include "xalloc.h"

/* ---------------------------------------------------------------- schema */

/*
 * Version 1. Frozen: tests/unit/test_daemon_store.c holds a verbatim copy
 * and checks that a database made from it upgrades. To change the schema,
 * append a migration.
 *
 * Conventions: times are unix milliseconds; resources are gpus, cpus and
 * mem in MiB; lists of names (which cannot contain commas) are comma
 * separated; lists of arbitrary strings (argv, env, labels) are BLOBs of
 * NUL-terminated strings. The rows at the end are what a new cluster has.
 */
static const char schema_v1[] =
	"CREATE TABLE meta (\n"
	"  key TEXT PRIMARY KEY,\n"
	"  value TEXT NOT NULL\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE policy (\n"
	"  key TEXT PRIMARY KEY,\n"
	"  value TEXT NOT NULL\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE pools (\n"
	"  name TEXT PRIMARY KEY\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE classes (\n"
	"  name TEXT PRIMARY KEY,\n"
	"  weight INTEGER NOT NULL,\n"
	"  preemptible INTEGER NOT NULL\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE teams (\n"
	"  name TEXT PRIMARY KEY,\n"
	"  weight INTEGER NOT NULL DEFAULT 1,\n"
	"  preempt_own TEXT NOT NULL DEFAULT 'lower-priority',\n"
	"  default_class TEXT NOT NULL DEFAULT '',\n"
	"  members TEXT NOT NULL DEFAULT ''\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE team_quotas (\n"
	"  team TEXT NOT NULL,\n"
	"  pool TEXT NOT NULL,\n"
	"  guarantee_gpus INTEGER NOT NULL DEFAULT 0,\n"
	"  guarantee_cpus INTEGER NOT NULL DEFAULT 0,\n"
	"  guarantee_mem INTEGER NOT NULL DEFAULT 0,\n"
	"  sharing TEXT NOT NULL DEFAULT 'lend-and-borrow',\n"
	"  borrow_limit_pct INTEGER NOT NULL DEFAULT 50,\n"
	"  borrow_abs_gpus INTEGER,\n"
	"  borrow_abs_cpus INTEGER,\n"
	"  borrow_abs_mem INTEGER,\n"
	"  lend_gpus INTEGER,\n"
	"  lend_cpus INTEGER,\n"
	"  lend_mem INTEGER,\n"
	"  PRIMARY KEY (team, pool)\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE nodes (\n"
	"  name TEXT PRIMARY KEY,\n"
	"  pool TEXT NOT NULL,\n"
	"  gpus INTEGER NOT NULL,\n"
	"  cpus INTEGER NOT NULL,\n"
	"  mem INTEGER NOT NULL,\n"
	"  labels BLOB NOT NULL DEFAULT x'',\n"
	"  address TEXT NOT NULL DEFAULT '',\n"
	"  service TEXT NOT NULL DEFAULT 'active',\n"
	"  health TEXT NOT NULL DEFAULT 'healthy',\n"
	"  reason TEXT NOT NULL DEFAULT '',\n"
	"  last_seen INTEGER NOT NULL DEFAULT 0\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE tasks (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  name TEXT NOT NULL,\n"
	"  team TEXT NOT NULL,\n"
	"  user TEXT NOT NULL,\n"
	"  uid INTEGER NOT NULL,\n"
	"  gid INTEGER NOT NULL,\n"
	"  class TEXT NOT NULL,\n"
	"  pool TEXT NOT NULL,\n"
	"  state TEXT NOT NULL,\n"
	"  reason TEXT NOT NULL DEFAULT '',\n"
	"  nnodes INTEGER NOT NULL,\n"
	"  gpus INTEGER NOT NULL,\n"
	"  cpus INTEGER NOT NULL,\n"
	"  mem INTEGER NOT NULL,\n"
	"  node_names TEXT NOT NULL DEFAULT '',\n"
	"  nodes_done TEXT NOT NULL DEFAULT '',\n"
	"  attempts INTEGER NOT NULL DEFAULT 0,\n"
	"  submit_time INTEGER NOT NULL,\n"
	"  start_time INTEGER NOT NULL DEFAULT 0,\n"
	"  end_time INTEGER NOT NULL DEFAULT 0,\n"
	"  exit_code INTEGER,\n"
	"  time_limit_s INTEGER NOT NULL DEFAULT 0,\n"
	"  preempt_signal INTEGER NOT NULL DEFAULT 15,\n"
	"  grace_s INTEGER NOT NULL DEFAULT 0,\n"
	"  checkpoint_dir TEXT NOT NULL DEFAULT '',\n"
	"  cwd TEXT NOT NULL DEFAULT '',\n"
	"  argv BLOB NOT NULL,\n"
	"  env BLOB NOT NULL DEFAULT x'',\n"
	"  cancel_requested INTEGER NOT NULL DEFAULT 0\n"
	");\n"
	"CREATE INDEX tasks_state ON tasks (state);\n"
	"CREATE TABLE checkpoints (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  task_id INTEGER NOT NULL,\n"
	"  attempt INTEGER NOT NULL,\n"
	"  step INTEGER NOT NULL,\n"
	"  path TEXT NOT NULL,\n"
	"  time INTEGER NOT NULL\n"
	");\n"
	"CREATE INDEX checkpoints_task ON checkpoints (task_id, id);\n"
	"CREATE TABLE events (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  time INTEGER NOT NULL,\n"
	"  kind TEXT NOT NULL,\n"
	"  task_id INTEGER,\n"
	"  node TEXT NOT NULL DEFAULT '',\n"
	"  team TEXT NOT NULL DEFAULT '',\n"
	"  actor TEXT NOT NULL DEFAULT '',\n"
	"  message TEXT NOT NULL DEFAULT ''\n"
	");\n"
	"CREATE INDEX events_task ON events (task_id, id);\n"
	"CREATE INDEX events_time ON events (time);\n"
	"INSERT INTO pools (name) VALUES ('default');\n"
	"INSERT INTO classes (name, weight, preemptible) VALUES\n"
	"  ('inference', 15, 0), ('training', 10, 1), ('fine-tuning', 5, 1),\n"
	"  ('data-processing', 1, 1), ('-', 0, 1);\n"
	"INSERT INTO teams (name, weight, preempt_own, default_class, members)\n"
	"  VALUES ('default', 1, 'lower-priority', '', '');\n"
	"INSERT INTO team_quotas (team, pool, sharing, borrow_limit_pct,\n"
	"  borrow_abs_gpus, borrow_abs_cpus, borrow_abs_mem)\n"
	"  VALUES ('default', 'default', 'lend-and-borrow', 0,\n"
	"  1000000000, 1000000000, 1125899906842624);\n"
	"INSERT INTO meta (key, value) VALUES ('created', CAST(strftime('%s', 'now') AS TEXT));\n";

/*
 * Version 2: usage accounting (daemon/usage.c). GPU-milliseconds per hour
 * bucket (hour = unix time / 3600000), per dimension (team, user, class),
 * key and pool: used, within the guarantee, borrowed, and lent to others.
 * Rows are added to, never rewritten, so a crash loses at most the
 * unflushed minute. events_team lets `hpq events --team` skip other teams.
 */
static const char schema_v2[] =
	"CREATE TABLE usage (\n"
	"  hour INTEGER NOT NULL,\n"
	"  dim TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  pool TEXT NOT NULL,\n"
	"  used_ms INTEGER NOT NULL DEFAULT 0,\n"
	"  within_ms INTEGER NOT NULL DEFAULT 0,\n"
	"  borrowed_ms INTEGER NOT NULL DEFAULT 0,\n"
	"  lent_ms INTEGER NOT NULL DEFAULT 0,\n"
	"  PRIMARY KEY (hour, dim, key, pool)\n"
	");\n"
	"CREATE INDEX events_team ON events (team, id);\n";

/*
 * Version 3: node service administration and repair (daemon/repair.c):
 * who set the service state and when, whether an administrator holds the
 * node out of service, and the action of a repair in progress.
 */
static const char schema_v3[] =
	"ALTER TABLE nodes ADD COLUMN service_by TEXT NOT NULL DEFAULT '';\n"
	"ALTER TABLE nodes ADD COLUMN service_since INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE nodes ADD COLUMN admin_hold INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE nodes ADD COLUMN repair_action TEXT NOT NULL DEFAULT '';\n";

/*
 * Version 4: team admins (daemon/rights.c), a list of names like members:
 * user names and @groups. Every team keeps its rows and gets none.
 */
static const char schema_v4[] =
	"ALTER TABLE teams ADD COLUMN admins TEXT NOT NULL DEFAULT '';\n";

/*
 * Version 5: joining nodes (store-trust.c). A bootstrap token keeps only a
 * hash of its secret; every node certificate issued is kept until it has
 * expired, with the time it was revoked (0: it was not).
 */
static const char schema_v5[] =
	"CREATE TABLE join_tokens (\n"
	"  id          TEXT PRIMARY KEY,\n"
	"  secret_hash TEXT NOT NULL,\n"
	"  pool        TEXT NOT NULL,\n"
	"  expires     INTEGER NOT NULL,\n"
	"  uses_left   INTEGER NOT NULL,\n"
	"  created_by  TEXT NOT NULL,\n"
	"  created     INTEGER NOT NULL\n"
	");\n"
	"CREATE TABLE node_certs (\n"
	"  serial      TEXT PRIMARY KEY,\n"
	"  node        TEXT NOT NULL,\n"
	"  pool        TEXT NOT NULL,\n"
	"  issued      INTEGER NOT NULL,\n"
	"  not_after   INTEGER NOT NULL,\n"
	"  revoked     INTEGER NOT NULL DEFAULT 0\n"
	");\n"
	"CREATE INDEX node_certs_node ON node_certs (node);\n";

static const char *const migrations[] = {
	schema_v1,
	schema_v2,
	schema_v3,
	schema_v4,
	schema_v5,
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int store_schema_latest(void)
{
	return NMIGRATIONS;
}

/* ---------------------------------------------------------------- ops and batches */

struct done {
	store_done_fn fn;
	void *arg;
};

/*
 * The ops and completions of one loop iteration. The thread takes every
 * batch waiting, runs their ops in one BEGIN IMMEDIATE ... COMMIT, frees
 * the ops and passes the batches back through a uv_async, whose callback
 * runs the completions in order.
 */
struct batch {
	struct op **ops;
	size_t nops, capops;
	struct done *dones;
	size_t ndones, capdones;
	int status;
	uint64_t commit_ns;     /* how long its transaction took (first batch of a group) */
	struct batch *next;
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmts[ST_COUNT];
	unsigned flags;

	/* loop thread */
	struct batch *open;
	size_t inflight;
	uv_loop_t *loop;
	uv_async_t async;
	bool started;
	bool error_reported;
	void (*on_error)(void *arg);
	void *err_arg;
	void (*on_commit)(void *arg, uint64_t ns);
	void *commit_arg;

	/* shared, under mu */
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cv;
	struct batch *todo, **todo_tail;
	struct batch *finished, **finished_tail;
	bool quit;

	/* storage thread */
	bool broken;
};

sqlite3 *store_db(struct store *s)
{
	return s->db;
}

sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id)
{
	return s->stmts[id];
}

static struct batch *open_batch(struct store *s)
{
	if (!s->open)
		s->open = xcalloc(1, sizeof(*s->open));
	return s->open;
}

struct op *op_new(struct store *s, enum stmt_id stmt, unsigned n)
{
	struct batch *b = open_batch(s);
	struct op *op = xcalloc(1, sizeof(*op) + n * sizeof(struct val));

	op->stmt = stmt;
	op->n = n;
	if (b->nops == b->capops) {
		b->capops = b->capops ? 2 * b->capops : 16;
		b->ops = xreallocarray(b->ops, b->capops, sizeof(*b->ops));
	}
	b->ops[b->nops++] = op;
	return op;
}

void op_strv(struct op *op, unsigned i, char *const *strv, size_t n)
{
	size_t len = 0, off = 0;
	char *p;

	for (size_t k = 0; k < n; k++)
		len += strlen(strv[k]) + 1;
	p = xmalloc(len ? len : 1);
	for (size_t k = 0; k < n; k++) {
		size_t l = strlen(strv[k]) + 1;

		memcpy(p + off, strv[k], l);
		off += l;
	}
	op->v[i].type = V_BLOB;
	op->v[i].p = p;
	op->v[i].len = len;
}

void op_names(struct op *op, unsigned i, char *const *names, size_t n)
{
	size_t len = 1;
	char *p, *q;

	for (size_t k = 0; k < n; k++)
		len += strlen(names[k]) + 1;
	p = q = xmalloc(len);
	*p = '\0';
	for (size_t k = 0; k < n; k++) {
		size_t l = strlen(names[k]);

		if (k)
			*q++ = ',';
		memcpy(q, names[k], l);
		q += l;
		*q = '\0';
	}
	op->v[i].type = V_TEXT;
	op->v[i].p = p;
}

static void op_free(struct op *op)
{
	for (unsigned i = 0; i < op->n; i++)
		free(op->v[i].p);
	free(op);
}

static void batch_free_ops(struct batch *b)
{
	for (size_t i = 0; i < b->nops; i++)
		op_free(b->ops[i]);
	free(b->ops);
	b->ops = NULL;
	b->nops = b->capops = 0;
}

static void batch_free(struct batch *b)
{
	batch_free_ops(b);
	free(b->dones);
	free(b);
}

void store_after_commit(struct store *s, store_done_fn fn, void *arg)
{
	struct batch *b = open_batch(s);

	if (b->ndones == b->capdones) {
		b->capdones = b->capdones ? 2 * b->capdones : 8;
		b->dones = xreallocarray(b->dones, b->capdones, sizeof(*b->dones));
	}
	b->dones[b->ndones++] = (struct done){ fn, arg };
}

void store_call(struct store *s, store_run_fn run, store_done_fn done, void *arg)
{
	struct op *op = op_new(s, ST_COUNT, 0);

	op->run = run;
	op->arg = arg;
	store_after_commit(s, done, arg);
}

void read_failed(sqlite3 *db, char *buf, size_t size, const char **error)
{
	snprintf(buf, size, "%s", sqlite3_errmsg(db));
	*error = buf;
}

/* ---------------------------------------------------------------- the storage thread */

static int run_op(struct store *s, struct op *op)
{
	sqlite3_stmt *q;
	int rc;

	if (op->run)
		return op->run(s, op->arg);
	q = s->stmts[op->stmt];
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	for (unsigned i = 0; i < op->n; i++) {
		const struct val *v = &op->v[i];

		switch (v->type) {
		case V_NULL:
			rc = sqlite3_bind_null(q, (int)i + 1);
			break;
		case V_INT:
			rc = sqlite3_bind_int64(q, (int)i + 1, v->i);
			break;
		case V_TEXT:
			rc = sqlite3_bind_text(q, (int)i + 1, v->p, -1, SQLITE_STATIC);
			break;
		case V_BLOB:
		default:
			rc = sqlite3_bind_blob(q, (int)i + 1, v->p, (int)v->len, SQLITE_STATIC);
			break;
		}
		if (rc != SQLITE_OK)
			return rc;
	}
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* One transaction for every batch in the list. */
static int commit_batches(struct store *s, struct batch *list)
{
	size_t nops = 0;
	int rc;

	rc = exec(s->db, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		goto fail;
	for (struct batch *b = list; b; b = b->next) {
		for (size_t i = 0; i < b->nops; i++) {
			rc = run_op(s, b->ops[i]);
			if (rc != SQLITE_OK)
				goto rollback;
			nops++;
		}
	}
	rc = exec(s->db, "COMMIT");
	if (rc != SQLITE_OK)
		goto rollback;
	log_debug("store: committed %zu rows", nops);
	return 0;
rollback:
	log_err("cannot commit to the state database: %s", sqlite3_errmsg(s->db));
	exec(s->db, "ROLLBACK");
	return HPQ_ESTORAGE;
fail:
	log_err("cannot commit to the state database: %s", sqlite3_errmsg(s->db));
	return HPQ_ESTORAGE;
}

static void store_thread(void *arg)
{
	struct store *s = arg;

	for (;;) {
		struct batch *list, *b;
		int status;

		uv_mutex_lock(&s->mu);
		while (!s->todo && !s->quit)
			uv_cond_wait(&s->cv, &s->mu);
		list = s->todo;
		s->todo = NULL;
		s->todo_tail = &s->todo;
		uv_mutex_unlock(&s->mu);
		if (!list)
			break;

		list->commit_ns = uv_hrtime();
		status = s->broken ? HPQ_ESTORAGE : commit_batches(s, list);
		list->commit_ns = uv_hrtime() - list->commit_ns;
		if (status < 0)
			s->broken = true;
		for (b = list; b; b = b->next) {
			b->status = status;
			batch_free_ops(b);
		}

		uv_mutex_lock(&s->mu);
		*s->finished_tail = list;
		for (b = list; b->next; b = b->next)
			;
		s->finished_tail = &b->next;
		uv_mutex_unlock(&s->mu);
		uv_async_send(&s->async);
	}
}

/* On the loop: run the completions of finished batches, in order. */
static void run_finished(struct store *s)
{
	struct batch *list, *next;
	bool failed = false;

	uv_mutex_lock(&s->mu);
	list = s->finished;
	s->finished = NULL;
	s->finished_tail = &s->finished;
	uv_mutex_unlock(&s->mu);

	for (; list; list = next) {
		next = list->next;
		if (list->status < 0)
			failed = true;
		else if (list->commit_ns && s->on_commit)
			s->on_commit(s->commit_arg, list->commit_ns);
		for (size_t i = 0; i < list->ndones; i++)
			list->dones[i].fn(list->dones[i].arg, list->status);
		s->inflight--;
		batch_free(list);
	}
	if (failed && !s->error_reported) {
		s->error_reported = true;
		if (s->on_error)
			s->on_error(s->err_arg);
	}
}

static void on_async(uv_async_t *h)
{
	run_finished(h->data);
}

void store_submit(struct store *s)
{
	struct batch *b = s->open;

	if (!b || !s->started)
		return;
	s->open = NULL;
	s->inflight++;
	uv_mutex_lock(&s->mu);
	*s->todo_tail = b;
	s->todo_tail = &b->next;
	uv_cond_signal(&s->cv);
	uv_mutex_unlock(&s->mu);
}

void store_set_commit_observer(struct store *s, void (*fn)(void *arg, uint64_t ns), void *arg)
{
	s->on_commit = fn;
	s->commit_arg = arg;
}

size_t store_inflight(const struct store *s)
{
	return s->inflight + (s->open ? 1 : 0);
}

/* ---------------------------------------------------------------- open, migrate */

static int user_version(sqlite3 *db, int *ret)
{
	sqlite3_stmt *q;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*ret = sqlite3_column_int(q, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(q);
	return rc;
}

static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	char sql[64];
	int version = 0, rc;

	rc = user_version(db, &version);
	if (rc != SQLITE_OK)
		return hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot read '%s': %s", path,
				sqlite3_errmsg(db));
	if (version > NMIGRATIONS)
		return hpq_errf(err, errlen, HPQ_ESTORAGE,
				"'%s' has schema version %d, newer than this hpqd knows (%d): "
				"run a newer hpqd", path, version, NMIGRATIONS);
	for (; version < NMIGRATIONS; version++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		rc = exec(db, "BEGIN IMMEDIATE");
		if (rc == SQLITE_OK)
			rc = exec(db, migrations[version]);
		if (rc == SQLITE_OK)
			rc = exec(db, sql);
		if (rc == SQLITE_OK)
			rc = exec(db, "COMMIT");
		if (rc != SQLITE_OK) {
			int r = hpq_errf(err, errlen, HPQ_ESTORAGE,
					 "cannot migrate '%s' to schema version %d: %s", path,
					 version + 1, sqlite3_errmsg(db));

			exec(db, "ROLLBACK");
			return r;
		}
		log_info("state database '%s' now at schema version %d", path, version + 1);
	}
	return 0;
}

/* Each table family's statements. */
static const struct stmt_def *const stmt_defs[] = {
	store_task_stmts,
	store_team_stmts,
	store_node_stmts,
	store_event_stmts,
	store_usage_stmts,
	store_trust_stmts,
};

static int prepare_all(struct store *s)
{
	for (size_t k = 0; k < sizeof(stmt_defs) / sizeof(stmt_defs[0]); k++) {
		for (const struct stmt_def *d = stmt_defs[k]; d->sql; d++) {
			int rc = sqlite3_prepare_v3(s->db, d->sql, -1, SQLITE_PREPARE_PERSISTENT,
						    &s->stmts[d->id], NULL);

			if (rc != SQLITE_OK)
				return rc;
		}
	}
	return SQLITE_OK;
}

int store_open(const char *path, unsigned flags, struct store **ret_store, char *err,
	       size_t errlen)
{
	struct store *s = xcalloc(1, sizeof(*s));
	int r, rc;

	s->flags = flags;
	s->todo_tail = &s->todo;
	s->finished_tail = &s->finished;
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot open '%s': %s", path,
			     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* journal_mode answers with a row, so it goes through exec too. */
	rc = exec(s->db, "PRAGMA journal_mode = WAL");
	if (rc == SQLITE_OK)
		rc = exec(s->db, (flags & STORE_NOSYNC) ? "PRAGMA synchronous = OFF"
						       : "PRAGMA synchronous = FULL");
	if (rc != SQLITE_OK) {
		r = hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot set up '%s': %s", path,
			     sqlite3_errmsg(s->db));
		goto fail;
	}
	r = migrate(s->db, path, err, errlen);
	if (r < 0)
		goto fail;
	if (prepare_all(s) != SQLITE_OK) {
		r = hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot prepare a statement on '%s': %s",
			     path, sqlite3_errmsg(s->db));
		goto fail;
	}
	*ret_store = s;
	return 0;
fail:
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close(s->db);
	free(s);
	return r;
}

/* ---------------------------------------------------------------- load */

int store_load_rows(struct store *s, const char *sql, load_row_fn row,
		    const struct store_loader *cb, void *arg)
{
	sqlite3_stmt *q;
	int rc;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		row(q, cb, arg);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Splits a copy of the column at sep; a list of names has no empty ones. */
static void col_strv_split(struct col_strv *sv, sqlite3_stmt *q, int col, char sep)
{
	const void *p = sqlite3_column_blob(q, col);
	size_t len = (size_t)sqlite3_column_bytes(q, col);
	char *s, *e, *end;

	sv->bytes = xmalloc(len + 1);
	if (len)
		memcpy(sv->bytes, p, len);
	sv->bytes[len] = '\0';
	sv->v = NULL;
	sv->n = 0;
	for (s = sv->bytes, end = s + len; s < end; s = e + 1) {
		e = memchr(s, sep, (size_t)(end - s));
		if (!e)
			e = end;
		*e = '\0';
		if (e == s && sep)
			continue;
		sv->v = xreallocarray(sv->v, sv->n + 1, sizeof(*sv->v));
		sv->v[sv->n++] = s;
	}
}

void col_strv_blob(struct col_strv *sv, sqlite3_stmt *q, int col)
{
	col_strv_split(sv, q, col, '\0');
}

void col_strv_names(struct col_strv *sv, sqlite3_stmt *q, int col)
{
	col_strv_split(sv, q, col, ',');
}

void col_strv_free(struct col_strv *sv)
{
	free(sv->v);
	free(sv->bytes);
}

/* ---------------------------------------------------------------- start, close */

int store_start(struct store *s, uv_loop_t *loop, void (*on_error)(void *arg), void *arg)
{
	int r;

	s->loop = loop;
	s->on_error = on_error;
	s->err_arg = arg;
	r = uv_async_init(loop, &s->async, on_async);
	if (r < 0)
		return r;
	s->async.data = s;
	/* Failing to make a mutex or a thread is running out of resources,
	 * which is fatal in hpq like running out of memory. */
	if (uv_mutex_init(&s->mu) < 0 || uv_cond_init(&s->cv) < 0 ||
	    uv_thread_create(&s->thread, store_thread, s) < 0)
		hpq_fatal("cannot start the storage thread");
	s->started = true;
	return 0;
}

static void close_db(struct store *s)
{
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	if (sqlite3_close(s->db) != SQLITE_OK)
		log_warn("closing the state database: %s", sqlite3_errmsg(s->db));
	s->db = NULL;
}

static void on_async_closed(uv_handle_t *h)
{
	free(h->data);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (!s->started) {
		if (s->open)
			batch_free(s->open);
		close_db(s);
		free(s);
		return;
	}
	store_submit(s);
	uv_mutex_lock(&s->mu);
	s->quit = true;
	uv_cond_signal(&s->cv);
	uv_mutex_unlock(&s->mu);
	uv_thread_join(&s->thread);
	run_finished(s);
	/* Completions may record more; the thread is gone, so commit here. */
	while (s->open) {
		struct batch *b = s->open;

		s->open = NULL;
		b->status = s->broken ? HPQ_ESTORAGE : commit_batches(s, b);
		if (b->status < 0)
			s->broken = true;
		batch_free_ops(b);
		s->inflight++;
		*s->finished_tail = b;
		s->finished_tail = &b->next;
		run_finished(s);
	}
	close_db(s);
	uv_mutex_destroy(&s->mu);
	uv_cond_destroy(&s->cv);
	uv_close((uv_handle_t *)&s->async, on_async_closed);
}
