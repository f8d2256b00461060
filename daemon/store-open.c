/*
 * store-open.c: opening the store (store_open, store.h): the database in
 * WAL mode, its schema brought up to date, and every table family's
 * statements prepared on it, so that a mistake in any fails at start.
 * This file puts the store together: the engine (store.c: the storage
 * thread, its commits and the store's health) knows no table, and the
 * families (store-*.c) know nothing of the engine but store-internal.h.
 *
 * The schema's versions are PRAGMA user_version, one migration each,
 * appended and never edited (docs/decisions.md lists them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "error.h"
#include "log.h"
#include "store-core.h"
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

/*
 * Version 6: the batch workflow. A task may be one index of an array
 * (array_id is the array's id, which is also the id of its first index;
 * 0: not in an array); it keeps its output and error patterns, what it
 * still depends on, whether it is held, where it was submitted, and what
 * its attempts used (cgroup peak memory and CPU time) and how often it was
 * preempted, and who asked for a requeue that waits for its exit. A batch script is kept once, under the task's id (an array's
 * under the array id). An array keeps its pending indices as ranges
 * ("5-999:2,1001"), rewritten as indices start; held is 1 while the whole
 * array is held. A class may cap its tasks' time limits (max_time_s, 0:
 * none).
 */
static const char schema_v6[] =
	"ALTER TABLE tasks ADD COLUMN array_id INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE tasks ADD COLUMN array_index INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE tasks ADD COLUMN output TEXT NOT NULL DEFAULT '';\n"
	"ALTER TABLE tasks ADD COLUMN error TEXT NOT NULL DEFAULT '';\n"
	"ALTER TABLE tasks ADD COLUMN dependency TEXT NOT NULL DEFAULT '';\n"
	"ALTER TABLE tasks ADD COLUMN kill_on_invalid_dep INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE tasks ADD COLUMN held INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE tasks ADD COLUMN submit_dir TEXT NOT NULL DEFAULT '';\n"
	"ALTER TABLE tasks ADD COLUMN ntasks_per_node INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE tasks ADD COLUMN peak_mem INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE tasks ADD COLUMN cpu_usec INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE tasks ADD COLUMN preemptions INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE tasks ADD COLUMN requeue_by TEXT NOT NULL DEFAULT '';\n"
	"CREATE INDEX tasks_array ON tasks (array_id) WHERE array_id != 0;\n"
	"CREATE INDEX tasks_end ON tasks (end_time) WHERE end_time != 0;\n"
	"ALTER TABLE classes ADD COLUMN max_time_s INTEGER NOT NULL DEFAULT 0;\n"
	"CREATE TABLE scripts (\n"
	"  id   INTEGER PRIMARY KEY,\n"
	"  body BLOB NOT NULL\n"
	");\n"
	"CREATE TABLE arrays (\n"
	"  id          INTEGER PRIMARY KEY,\n"
	"  spec        TEXT NOT NULL,\n"
	"  pending     TEXT NOT NULL,\n"
	"  max_running INTEGER NOT NULL DEFAULT 0,\n"
	"  held        INTEGER NOT NULL DEFAULT 0\n"
	");\n";

/*
 * Version 7: a task's environment moves to a table of its own. hpqd
 * keeps neither environments nor scripts of tasks in memory (RunTask
 * reads them at start), and a row of tasks without its environment's
 * kilobytes (and their overflow pages) is cheap to read at start and for
 * hpq acct. tasks.env stays, empty. The index on team, state, end time
 * and attempts lets the start count the tasks that ended long ago per
 * team (for the metrics) without reading their rows.
 */
static const char schema_v7[] =
	"CREATE TABLE task_env (\n"
	"  id  INTEGER PRIMARY KEY,\n"
	"  env BLOB NOT NULL\n"
	");\n"
	"INSERT INTO task_env (id, env) SELECT id, env FROM tasks WHERE length(env) > 0;\n"
	"UPDATE tasks SET env = x'' WHERE length(env) > 0;\n"
	"CREATE INDEX tasks_team ON tasks (team, state, end_time, attempts);\n";

/*
 * Version 8: recipes. A task made from a recipe (hpq submit --recipe)
 * keeps the recipe's name, its version and every parameter's value
 * ("k=v" strings, as argv), so that `hpq show` tells how it was made.
 */
static const char schema_v8[] =
	"ALTER TABLE tasks ADD COLUMN recipe TEXT NOT NULL DEFAULT '';\n"
	"ALTER TABLE tasks ADD COLUMN recipe_version TEXT NOT NULL DEFAULT '';\n"
	"ALTER TABLE tasks ADD COLUMN recipe_params BLOB NOT NULL DEFAULT x'';\n";

/* Upgrade insights (store-upgrade.c): who still uses what is deprecated,
 * one row per thing and user, and the backups hpqd --backup made. */
static const char schema_v9[] =
	"CREATE TABLE deprecated_uses (\n"
	"  what TEXT NOT NULL,\n"
	"  who TEXT NOT NULL,\n"
	"  first_seen_ms INTEGER NOT NULL,\n"
	"  last_seen_ms INTEGER NOT NULL,\n"
	"  count INTEGER NOT NULL,\n"
	"  PRIMARY KEY (what, who)\n"
	");\n"
	"CREATE TABLE backups (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  path TEXT NOT NULL,\n"
	"  time_ms INTEGER NOT NULL,\n"
	"  bytes INTEGER NOT NULL,\n"
	"  schema INTEGER NOT NULL\n"
	");\n";

/*
 * Version 10: the autoscaler's nodes ([autoscale.POOL], autoscale.c). A
 * row is written before a node's provision command runs, so a restart in
 * the middle of a launch waits for that node instead of launching
 * another; it keeps when the node registered (its lifetime counts from
 * then) and which node it replaces.
 */
static const char schema_v10[] =
	"CREATE TABLE autoscale_nodes (\n"
	"  name        TEXT PRIMARY KEY,\n"
	"  pool        TEXT NOT NULL,\n"
	"  state       TEXT NOT NULL,\n"
	"  launched_ms INTEGER NOT NULL,\n"
	"  born_ms     INTEGER NOT NULL DEFAULT 0,\n"
	"  replaces    TEXT NOT NULL DEFAULT ''\n"
	");\n";

/* Version 11: training plans (plan.h): one row each, its segments in one text. */
static const char schema_v11[] =
	"CREATE TABLE plans (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  name TEXT NOT NULL UNIQUE,\n"
	"  team TEXT NOT NULL,\n"
	"  pool TEXT NOT NULL,\n"
	"  nodes INTEGER NOT NULL,\n"
	"  gpus_per_node INTEGER NOT NULL DEFAULT 0,\n"
	"  duration_s INTEGER NOT NULL,\n"
	"  state TEXT NOT NULL,\n"
	"  segments TEXT NOT NULL,\n"
	"  created_ms INTEGER NOT NULL,\n"
	"  created_by TEXT NOT NULL,\n"
	"  ended_ms INTEGER NOT NULL DEFAULT 0\n"
	");\n";

/* Version 12: plan-bound tasks (docs/plans.md): the plan a task runs in, "" none. */
static const char schema_v12[] =
	"ALTER TABLE tasks ADD COLUMN plan TEXT NOT NULL DEFAULT '';\n";

/*
 * Version 13: a change that many tasks get alike in one request (a cancel
 * of every pending task, a release of every held one: store_task_bulk),
 * kept as one row until each task's row and event are written after it
 * (store-tasks.c): the change (end or release), the tasks' ids (8 bytes
 * each, little-endian), the id of the first task's event (the others
 * follow it), what the rows get and what each event says. A row left by
 * a crash is finished when the database is next loaded.
 */
static const char schema_v13[] =
	"CREATE TABLE task_bulk (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  change TEXT NOT NULL,\n"
	"  ids BLOB NOT NULL,\n"
	"  first_event INTEGER NOT NULL,\n"
	"  state TEXT NOT NULL DEFAULT '',\n"
	"  reason TEXT NOT NULL DEFAULT '',\n"
	"  end_time INTEGER NOT NULL DEFAULT 0,\n"
	"  time INTEGER NOT NULL,\n"
	"  kind TEXT NOT NULL,\n"
	"  actor TEXT NOT NULL,\n"
	"  message TEXT NOT NULL\n"
	");\n";

/*
 * Version 14: the ids of tasks that [tasks] retain deleted without their
 * having completed (FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY), so that
 * a dependency on one (afterok, afternotok) still resolves by how it
 * ended after a restart, as it did while it had its row.
 */
static const char schema_v14[] =
	"CREATE TABLE tasks_gone_bad (\n"
	"  id INTEGER PRIMARY KEY\n"
	");\n";

/*
 * Version 15: an array keeps the dependency its indices were submitted
 * with. Its first task keeps only what it still waits for ("" once met),
 * which was all a restart had to make the rest from: a singleton array,
 * whose every index waits for singleton anew, ran the rest of its indices
 * at once after a restart.
 */
static const char schema_v15[] =
	"ALTER TABLE arrays ADD COLUMN dependency TEXT NOT NULL DEFAULT '';\n";

/*
 * Version 16: how an array's indices ended outlives the rows [tasks]
 * retain deletes. A restart counted every index that was neither a row
 * nor pending as dropped by a cancel, so an array whose early indices
 * were deleted counted them as not completed (afterok on it was never
 * met). Now the indices a cancel dropped are kept as ranges
 * (arrays.dropped), and the deleted indices that did not complete as rows
 * of arrays_gone_bad; every other index that is neither a row nor
 * pending completed. A row from before keeps dropped NULL: hpqd computes
 * it at its next start from the rows, which no version-16 retain has
 * deleted yet, and writes it; one with indices still pending dropped none.
 */
static const char schema_v16[] =
	"ALTER TABLE arrays ADD COLUMN dropped TEXT;\n"
	"UPDATE arrays SET dropped = '' WHERE pending != '';\n"
	"CREATE TABLE arrays_gone_bad (\n"
	"  array_id INTEGER NOT NULL,\n"
	"  array_index INTEGER NOT NULL,\n"
	"  PRIMARY KEY (array_id, array_index)\n"
	") WITHOUT ROWID;\n";

/*
 * Version 17: what the tasks [tasks] retain deleted add to the per-team
 * counts (hpq_tasks_submitted_total, _started_total, _finished_total),
 * by team and final state. A restart counted only the rows left, so the
 * counters came back lower than they were, and a scraper took the drop
 * for a reset and the whole count for new work. Counts deleted before
 * this version are not known.
 */
static const char schema_v17[] =
	"CREATE TABLE tasks_gone_counts (\n"
	"  team TEXT NOT NULL,\n"
	"  state TEXT NOT NULL,\n"
	"  count INTEGER NOT NULL,\n"
	"  attempts INTEGER NOT NULL,\n"
	"  PRIMARY KEY (team, state)\n"
	") WITHOUT ROWID;\n";

static const char *const migrations[] = {
	schema_v1,
	schema_v2,
	schema_v3,
	schema_v4,
	schema_v5,
	schema_v6,
	schema_v7,
	schema_v8,
	schema_v9,
	schema_v10,
	schema_v11,
	schema_v12,
	schema_v13,
	schema_v14,
	schema_v15,
	schema_v16,
	schema_v17,
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int store_schema_latest(void)
{
	return NMIGRATIONS;
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
		rc = store_exec(db, "BEGIN IMMEDIATE");
		if (rc == SQLITE_OK)
			rc = store_exec(db, migrations[version]);
		if (rc == SQLITE_OK)
			rc = store_exec(db, sql);
		if (rc == SQLITE_OK)
			rc = store_exec(db, "COMMIT");
		if (rc != SQLITE_OK) {
			int r = hpq_errf(err, errlen, HPQ_ESTORAGE,
					 "cannot migrate '%s' to schema version %d: %s", path,
					 version + 1, sqlite3_errmsg(db));

			store_exec(db, "ROLLBACK");
			return r;
		}
		log_info("state database '%s' now at schema version %d", path, version + 1);
	}
	return 0;
}

/* Every statement: the engine's own and each table family's. */
static const struct stmt_def *const stmt_defs[] = {
	store_core_stmts,
	store_task_stmts,
	store_team_stmts,
	store_node_stmts,
	store_event_stmts,
	store_usage_stmts,
	store_trust_stmts,
	store_array_stmts,
	store_plan_stmts,
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

/* A database hpqd may not write is refused at start, not at its first
 * change: the file and its -wal and -shm, where they exist. */
static int check_writable(const char *path, char *err, size_t errlen)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	int r = 0;

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]) && r == 0; i++) {
		char *p = NULL;

		xasprintf(&p, "%s%s", path, suffixes[i]);
		if (access(p, W_OK) < 0 && errno != ENOENT)
			r = hpq_errf(err, errlen, HPQ_ESTORAGE, "the state database '%s' is "
				     "read-only (%s): hpqd must write it; give hpqd's user write "
				     "permission on it and its -wal and -shm files", p,
				     strerror(errno));
		free(p);
	}
	return r;
}

/*
 * Opens the connection in WAL mode. exclusive: with locking_mode
 * EXCLUSIVE first, so that SQLite keeps the WAL index in memory instead
 * of the -shm file: on a full disk there may be no room for that file,
 * and without it not even a read works. Returns an SQLite result code;
 * s->db is set (for its message) whenever it was opened.
 */
static int open_db(struct store *s, bool exclusive)
{
	int rc;

	rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_busy_timeout(s->db, 5000);
	if (exclusive)
		rc = store_exec(s->db, "PRAGMA locking_mode = EXCLUSIVE");
	/* journal_mode answers with a row, so it goes through store_exec too. */
	if (rc == SQLITE_OK)
		rc = store_exec(s->db, "PRAGMA journal_mode = WAL");
	if (rc == SQLITE_OK)
		rc = store_exec(s->db, s->flags & STORE_NOSYNC ? "PRAGMA synchronous = OFF"
							       : "PRAGMA synchronous = FULL");
	return rc;
}

/* What opening without room for the -shm file fails with. */
static bool no_room(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_IOERR || rc == SQLITE_FULL || rc == SQLITE_CANTOPEN;
}

int store_open(const char *path, unsigned flags, struct store **ret_store, char *err,
	       size_t errlen)
{
	struct store *s = store_new(path, flags);
	char first[200];
	int r, rc;

	/* The engine runs the tasks' family's rows of a change of many tasks. */
	s->bulk_apply = store_bulk_apply;
	r = check_writable(path, err, errlen);
	if (r < 0)
		goto fail;
	rc = open_db(s, false);
	if (rc != SQLITE_OK && s->db && no_room(rc)) {
		snprintf(first, sizeof(first), "%s", sqlite3_errmsg(s->db));
		store_close_db(s);
		rc = open_db(s, true);
		if (rc == SQLITE_OK) {
			s->exclusive = true;
			log_notice("'%s': no room for the database's shared memory file (%s): hpqd "
				   "holds the database alone (locking_mode EXCLUSIVE) until it "
				   "restarts; an online backup (sqlite3 .backup) waits until then",
				   path, first);
		}
	}
	if (rc != SQLITE_OK) {
		r = hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot open '%s': %s", path,
			     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		r = hpq_errf(err, errlen, HPQ_ESTORAGE, "the state database '%s' is read-only: "
			     "hpqd must write it; give hpqd's user write permission on it and "
			     "its directory", path);
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
	r = store_probe(s, err, errlen);
	if (r < 0)
		goto fail;
	*ret_store = s;
	return 0;
fail:
	store_close_db(s);
	store_free(s);
	return r;
}
