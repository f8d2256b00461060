/*
 * store.c: the store's core (store.h): opening and migrating the database,
 * the storage thread with its group commits and completions, and the
 * store's health. Each table family's rows live in a file of their own
 * (store-tasks.c, store-teams.c, store-nodes.c, store-events.c,
 * store-usage.c and the rest), built on store-internal.h: the batches
 * and ops they queue for the thread are store-batch.c's, the rows they
 * read back store-rows.c's, and the order of a load store-load.c's.
 *
 * The database is opened with SQLITE_OPEN_NOMUTEX: the loop thread uses
 * the connection only before store_start (migrate, load) and after the
 * thread has been joined (close); in between only the thread touches it.
 *
 * A full or failing disk (store.h, "When the disk is full or failing").
 * Most of the time the store sees it coming: below a reserve of free
 * space (the watch timer, and store_check_writable before each request
 * that would change something) it turns degraded before anything is
 * applied, so a refused change never touches memory. When a transaction
 * fails all the same (another program filled the disk, a change larger
 * than what was left, an I/O error), its changes are already in memory,
 * and two ways would make memory and disk agree again:
 *
 *   (a) reload the state from the database, dropping the changes, and
 *       answer their requests with an error;
 *   (b) keep memory as it is, and commit the same changes, in the same
 *       order, once the disk takes them.
 *
 * The store does (b). Every reply and push still leaves only after the
 * commit of what it announces, so nothing acknowledged can be lost; a
 * change is never reported failed and then stored, which a client would
 * take as "try again" and submit twice. (a) would undo facts that are not
 * requests at all (an agent that disconnected, a node's health), and
 * would have every module that holds the model (agent sessions, RunTask
 * waiting for its commit, timers) let go of it: a restart in all but
 * name, with every connection cut. The price of (b): the changes of the
 * failed transaction (usually one loop iteration's) are visible to
 * readers before they are durable, as any change is for the length of
 * one commit, and are lost if hpqd dies before the disk takes them; their
 * requests have no answer until then, so nobody was told they were done.
 *
 * After a failed transaction the thread "holds": it keeps the rows of
 * that batch and of every later one (they were made on top of it), runs
 * their reads in a transaction of their own so that reads still answer,
 * and hands them back held. The loop keeps them in order; the watch
 * retries them all in one transaction, with a small row of its own, when
 * space is back (or with a backoff after an I/O error), and only once the
 * thread has handed everything back, so that no change can overtake
 * another. A stop (store_finish) tries them one last time and fails what
 * cannot be committed.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
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
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int store_schema_latest(void)
{
	return NMIGRATIONS;
}

/* ---------------------------------------------------------------- health */

/* The directory's file system, measured: what is free, and the reserve. */
static void measure(struct store *s)
{
	struct statvfs v;
	uint64_t total;

	if (statvfs(s->dir, &v) < 0) {
		s->free_bytes = UINT64_MAX;     /* unknown: never short of space */
		s->reserve = 0;
		return;
	}
	s->free_bytes = (uint64_t)v.f_bavail * v.f_frsize;
	total = (uint64_t)v.f_blocks * v.f_frsize;
	s->reserve = total / STORE_RESERVE_DIVISOR < STORE_RESERVE_MAX
		     ? total / STORE_RESERVE_DIVISOR : STORE_RESERVE_MAX;
}

static bool short_of_space(const struct store *s)
{
	return s->free_bytes < s->reserve;
}

/* Enough again to try: half the reserve above it, so that a disk at the
 * edge does not flap between the two states. */
static bool room_again(const struct store *s)
{
	return s->free_bytes >= s->reserve + s->reserve / 2;
}

static void describe(struct store *s)
{
	switch (s->state) {
	case STORE_FULL:
		if (s->free_bytes == UINT64_MAX)
			snprintf(s->problem, sizeof(s->problem), "state store full on %s", s->dir);
		else
			snprintf(s->problem, sizeof(s->problem),
				 "state store full: %llu bytes free on %s",
				 (unsigned long long)s->free_bytes, s->dir);
		break;
	case STORE_FAILING:
		snprintf(s->problem, sizeof(s->problem), "state store failing: %s on %s", s->cause,
			 s->dir);
		break;
	case STORE_OK:
	default:
		s->problem[0] = '\0';
		break;
	}
}

static const char *until(enum store_state state)
{
	return state == STORE_FULL ? "space returns" : "it can write its database again";
}

/* The state, logged and told once per change, never per retry. */
static void set_health(struct store *s, enum store_state state, const char *cause)
{
	enum store_state was = s->state;

	if (cause)
		snprintf(s->cause, sizeof(s->cause), "%s", cause);
	s->state = state;
	describe(s);
	if (was == state)
		return;
	if (state == STORE_OK) {
		s->since_ms = 0;
		if (s->free_bytes == UINT64_MAX)
			log_notice("state store writable again: accepting changes");
		else
			log_notice("state store writable again (%llu bytes free on %s): accepting "
				   "changes", (unsigned long long)s->free_bytes, s->dir);
	} else {
		if (was == STORE_OK) {
			s->since_ms = hpq_now_ms();
			s->retry_ms = STORE_RETRY_MIN_MS;
			s->next_try_mono = hpq_mono_ms() + s->retry_ms;
		}
		log_err("%s: serving reads and refusing changes until %s; retrying on its own",
			s->problem, until(state));
	}
	if (s->on_change)
		s->on_change(s->change_arg);
}

static enum store_state classify(const struct failure *f)
{
	if ((f->rc & 0xff) == SQLITE_FULL || f->sys_errno == ENOSPC || f->sys_errno == EDQUOT)
		return STORE_FULL;
	return STORE_FAILING;
}

static void failure_words(const struct failure *f, char *buf, size_t len)
{
	if (f->sys_errno)
		snprintf(buf, len, "%s (%s)", f->msg, strerror(f->sys_errno));
	else
		snprintf(buf, len, "%s", f->msg);
}

/* The newest failure, from the thread, decides the state. */
static void set_failed(struct store *s)
{
	struct failure f;
	char words[200];

	uv_mutex_lock(&s->mu);
	f = s->failure;
	uv_mutex_unlock(&s->mu);
	failure_words(&f, words, sizeof(words));
	measure(s);
	set_health(s, classify(&f), words);
}

const char *store_state_name(enum store_state state)
{
	return state == STORE_FULL ? "full" : state == STORE_FAILING ? "failing" : "ok";
}

void store_checkpoint_counts(const struct store *s, struct store_checkpoints *out)
{
	checkpointer_counts(s->ckpt, out);
}

void store_health(const struct store *s, struct store_health *h)
{
	h->state = s->state;
	h->problem = s->problem;
	h->free_bytes = s->free_bytes;
	h->since_ms = s->since_ms;
	h->waiting_rows = s->held_rows + s->trying_rows;
	h->exclusive = s->exclusive;
}

bool store_degraded(const struct store *s)
{
	return s->state != STORE_OK;
}

int store_check_writable(struct store *s, char *msg, size_t len)
{
	measure(s);
	if (s->state == STORE_OK && short_of_space(s))
		set_health(s, STORE_FULL, NULL);
	if (s->state == STORE_OK)
		return 0;
	describe(s);
	snprintf(msg, len, "%s: hpqd refuses changes until %s", s->problem, until(s->state));
	return HPQ_ESTORAGE;
}

void store_finish(struct store *s)
{
	s->final = true;
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

/* Why the last call on the connection failed; taken before a ROLLBACK
 * replaces the message. */
static void note_failure(struct store *s, int rc, struct failure *f)
{
	int ext = sqlite3_extended_errcode(s->db);

	f->rc = ext != SQLITE_OK ? ext : rc;
	f->sys_errno = sqlite3_system_errno(s->db);
	snprintf(f->msg, sizeof(f->msg), "%s", sqlite3_errmsg(s->db));
}

/* A read runs once; its completion gets its own status. */
static void run_read(struct store *s, struct batch *b, struct op *op)
{
	int rc = op->run(s, op->arg);

	op->ran = true;
	b->dones[op->done_idx].status = rc == SQLITE_OK ? 0 : HPQ_ESTORAGE;
}

/* Inside a transaction: the tasks' rows of what task_bulk holds. */
static int bulk_apply(struct store *s)
{
	int rc = store_bulk_apply(s);

	if (rc == SQLITE_OK)
		s->bulk_pending = false;
	return rc;
}

int store_bulk_finish(struct store *s)
{
	uint64_t t0 = uv_hrtime();
	int rc;

	if (!s->bulk_pending)
		return SQLITE_OK;
	rc = exec(s->db, "BEGIN IMMEDIATE");
	if (rc == SQLITE_OK)
		rc = bulk_apply(s);
	if (rc == SQLITE_OK)
		rc = exec(s->db, "COMMIT");
	if (rc != SQLITE_OK) {
		log_warn("store: cannot write the rows of a change of many tasks yet (%s): "
			 "trying again with the next commit", sqlite3_errmsg(s->db));
		if (!sqlite3_get_autocommit(s->db))
			exec(s->db, "ROLLBACK");
		s->bulk_pending = true;
		return rc;
	}
	log_debug("store: rows of a change of many tasks written in %.1f ms",
		  (double)(uv_hrtime() - t0) / 1e6);
	return SQLITE_OK;
}

/* One transaction for every batch in the list: SQLITE_OK, or what failed in f. */
static int commit_batches(struct store *s, struct batch *list, struct failure *f)
{
	size_t nops = 0;
	int rc;

	rc = exec(s->db, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK) {
		note_failure(s, rc, f);
		return rc;
	}
	/* A bulk change not yet written out (its own transaction failed):
	 * everything here was recorded after it. */
	if (s->bulk_pending && (rc = bulk_apply(s)) != SQLITE_OK)
		goto rollback;
	for (struct batch *b = list; b; b = b->next) {
		for (size_t i = 0; i < b->nops; i++) {
			struct op *op = b->ops[i];

			if (s->bulk_pending && store_bulk_forced(op) &&
			    (rc = bulk_apply(s)) != SQLITE_OK)
				goto rollback;
			if (op->read) {
				run_read(s, b, op);
				/* A read that failed with an I/O error may have
				 * ended the transaction: nothing may run outside it. */
				if (sqlite3_get_autocommit(s->db)) {
					note_failure(s, SQLITE_ABORT, f);
					return f->rc;
				}
				continue;
			}
			rc = run_op(s, op);
			if (rc != SQLITE_OK)
				goto rollback;
			if (op->stmt == ST_TASK_BULK)
				s->bulk_pending = true;
			nops++;
		}
	}
	rc = exec(s->db, "COMMIT");
	if (rc != SQLITE_OK)
		goto rollback;
	log_debug("store: committed %zu rows", nops);
	return SQLITE_OK;
rollback:
	note_failure(s, rc, f);
	exec(s->db, "ROLLBACK");
	/* What a bulk apply deleted in it is back. */
	s->bulk_pending = true;
	return rc;
}

/* The reads of list that have not run, in a transaction of their own:
 * while changes wait, reads still answer, from what is committed. */
static void run_reads(struct store *s, struct batch *list)
{
	bool begun = false;

	for (struct batch *b = list; b; b = b->next) {
		for (size_t i = 0; i < b->nops; i++) {
			struct op *op = b->ops[i];

			if (!op->read || op->ran)
				continue;
			if (!begun)
				exec(s->db, "BEGIN");
			begun = true;
			run_read(s, b, op);
		}
	}
	if (begun && !sqlite3_get_autocommit(s->db) && exec(s->db, "COMMIT") != SQLITE_OK)
		exec(s->db, "ROLLBACK");
}

/*
 * One group of batches. After a failed transaction the thread holds: the
 * changes of every later batch wait behind the failed ones (they were
 * made on top of them), so it runs only their reads and hands them back
 * held, until the loop sends them all again with a retry (or a final
 * try). The thread never reorders changes: the loop sends a retry only
 * once every batch is back.
 */
static void process_group(struct store *s, struct batch *list)
{
	struct failure f = { 0 };
	bool attempt = !s->holding, final = false;
	uint64_t t0 = uv_hrtime();
	int rc = SQLITE_OK;

	for (struct batch *b = list; b; b = b->next) {
		attempt = attempt || b->retry || b->final;
		final = final || b->final;
	}
	if (attempt) {
		rc = commit_batches(s, list, &f);
		list->commit_ns = uv_hrtime() - t0;
		if (rc == SQLITE_OK) {
			s->holding = false;
			for (struct batch *b = list; b; b = b->next) {
				b->status = 0;
				batch_free_ops(b);
			}
			return;
		}
		log_debug("store: cannot commit: %s", f.msg);
		uv_mutex_lock(&s->mu);
		s->failure = f;
		uv_mutex_unlock(&s->mu);
	}
	run_reads(s, list);
	for (struct batch *b = list; b; b = b->next) {
		if (final) {
			b->status = HPQ_ESTORAGE;
			batch_free_ops(b);
		} else {
			b->held = true;
			batch_free_reads(b);
		}
	}
	if (!final)
		s->holding = true;
}

static void store_thread(void *arg)
{
	struct store *s = arg;

	/* top -H and perf tell it from the loop by this name */
	pthread_setname_np(pthread_self(), "hpqd-store");
	for (;;) {
		struct batch *list, *b;

		uv_mutex_lock(&s->mu);
		while (!s->todo && !s->quit)
			uv_cond_wait(&s->cv, &s->mu);
		list = s->todo;
		s->todo = NULL;
		s->todo_tail = &s->todo;
		uv_mutex_unlock(&s->mu);
		if (!list)
			break;

		process_group(s, list);

		uv_mutex_lock(&s->mu);
		*s->finished_tail = list;
		for (b = list; b->next; b = b->next)
			;
		s->finished_tail = &b->next;
		uv_mutex_unlock(&s->mu);
		uv_async_send(&s->async);

		/* The group's completions go now; the rows of a bulk change it
		 * committed follow, before any later group. */
		if (s->bulk_pending && !s->holding)
			store_bulk_finish(s);
	}
}

/* On the loop: hands a chain of batches to the thread, in order. */
static void hand_over(struct store *s, struct batch *list)
{
	struct batch *last = list;

	for (struct batch *b = list; b; b = b->next) {
		s->inflight++;
		last = b;
	}
	uv_mutex_lock(&s->mu);
	*s->todo_tail = list;
	s->todo_tail = &last->next;
	uv_cond_signal(&s->cv);
	uv_mutex_unlock(&s->mu);
}

/* On the loop: a batch came back held. Its reads' completions run now;
 * its rows and the completions waiting for them wait in order. */
static void hold(struct store *s, struct batch *b)
{
	size_t k = 0;

	for (size_t i = 0; i < b->ndones; i++) {
		struct done d = b->dones[i];

		if (d.read)
			d.fn(d.arg, d.status);
		else
			b->dones[k++] = d;
	}
	b->ndones = k;
	b->held = b->retry = false;
	b->commit_ns = 0;
	/* The watch's own row is made again for its next try. */
	if (b->probe || (!b->nops && !b->ndones)) {
		batch_free(b);
		return;
	}
	*s->held_tail = b;
	s->held_tail = &b->next;
	s->held_rows += b->nops;
}

/* Takes the waiting changes, in order, with b (if any) after them. */
static struct batch *take_held(struct store *s, struct batch *b)
{
	struct batch *list;

	*s->held_tail = b;
	list = s->held;
	s->held = NULL;
	s->held_tail = &s->held;
	s->held_rows = 0;
	return list;
}

/* The watch's retry: every waiting change and one small row of its own,
 * in one transaction, once nothing is with the thread. */
static void try_again(struct store *s)
{
	struct batch *p = xcalloc(1, sizeof(*p));
	struct op *op = op_alloc(p, ST_PROBE, 1);

	op_int(op, 0, hpq_now_ms());
	batch_add(p, op);
	p->probe = p->retry = true;
	s->trying_rows = s->held_rows;
	s->trying = true;
	s->next_try_mono = hpq_mono_ms() + s->retry_ms;
	s->retry_ms = 2 * s->retry_ms < STORE_RETRY_MAX_MS ? 2 * s->retry_ms : STORE_RETRY_MAX_MS;
	log_debug("store: trying to commit again (%zu rows wait)", s->trying_rows);
	hand_over(s, take_held(s, p));
}

/* On the loop: run the completions of finished batches, in order. */
static void run_finished(struct store *s)
{
	struct batch *list, *next;
	bool tried = false, ok = false, failed = false, lost = false;

	uv_mutex_lock(&s->mu);
	list = s->finished;
	s->finished = NULL;
	s->finished_tail = &s->finished;
	uv_mutex_unlock(&s->mu);

	for (; list; list = next) {
		next = list->next;
		list->next = NULL;
		s->inflight--;
		if (list->probe) {
			tried = true;
			ok = !list->held && list->status == 0;
		}
		if (list->held) {
			failed = true;
			hold(s, list);
			continue;
		}
		if (list->status < 0)
			lost = true;
		else if (list->commit_ns && s->on_commit)
			s->on_commit(s->commit_arg, list->commit_ns);
		for (size_t i = 0; i < list->ndones; i++)
			list->dones[i].fn(list->dones[i].arg, list->dones[i].read
							     ? list->dones[i].status
							     : list->status);
		batch_free(list);
	}
	if (tried) {
		s->trying = false;
		s->trying_rows = 0;
	}
	if (failed) {
		set_failed(s);
	} else if (tried && ok) {
		s->retry_ms = STORE_RETRY_MIN_MS;
		measure(s);
		set_health(s, short_of_space(s) ? STORE_FULL : STORE_OK, NULL);
	}
	if (lost) {
		struct failure f;
		char words[200];

		uv_mutex_lock(&s->mu);
		f = s->failure;
		uv_mutex_unlock(&s->mu);
		failure_words(&f, words, sizeof(words));
		log_err("the last commit failed (%s): its changes, never acknowledged, are "
			"dropped; a restart loads the last committed state", words);
	}
	/* Stopping: the last commits go once everything is back. */
	if (s->final && !s->inflight)
		store_submit(s);
}

static void on_async(uv_async_t *h)
{
	run_finished(h->data);
}

/* Every second: the free space; while degraded, a retry when it is due. */
static void on_watch(uv_timer_t *h)
{
	struct store *s = h->data;

	measure(s);
	if (s->final)
		return;
	if (s->state == STORE_OK) {
		if (short_of_space(s))
			set_health(s, STORE_FULL, NULL);
		return;
	}
	describe(s);
	if (s->state == STORE_FULL && !room_again(s))
		return;
	if (s->trying || s->inflight || hpq_mono_ms() < s->next_try_mono)
		return;
	try_again(s);
}

void store_submit(struct store *s)
{
	struct batch *b = s->open;

	if (!s->started || s->joined)
		return;
	if (s->final) {
		/* Stopping: the waiting changes first, once the thread has
		 * handed every batch back; nothing is held from here on. */
		struct batch *list;

		if (s->inflight || (!b && !s->held))
			return;
		s->open = NULL;
		list = take_held(s, b);
		for (struct batch *x = list; x; x = x->next)
			x->final = true;
		hand_over(s, list);
		return;
	}
	if (!b)
		return;
	s->open = NULL;
	hand_over(s, b);
}

void store_set_commit_observer(struct store *s, void (*fn)(void *arg, uint64_t ns), void *arg)
{
	s->on_commit = fn;
	s->commit_arg = arg;
}

size_t store_inflight(const struct store *s)
{
	size_t n = s->inflight + (s->open ? 1 : 0);

	for (const struct batch *b = s->held; b; b = b->next)
		n++;
	return n;
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

/* The store's own statements. */
static const struct stmt_def store_core_stmts[] = {
	{ ST_PROBE, "INSERT OR REPLACE INTO meta (key, value) VALUES ('store-probe', ?)" },
	{ ST_COUNT, NULL },
};

/* Each table family's statements. */
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
		rc = exec(s->db, "PRAGMA locking_mode = EXCLUSIVE");
	/* journal_mode answers with a row, so it goes through exec too. */
	if (rc == SQLITE_OK)
		rc = exec(s->db, "PRAGMA journal_mode = WAL");
	if (rc == SQLITE_OK)
		rc = exec(s->db, store_sync_pragma(s->flags & STORE_NOSYNC));
	return rc;
}

/*
 * One small write at start. A database that cannot be written (read-only
 * here, for all its file modes say) is refused now, not at its first
 * change; a full or failing disk makes the store degraded from the start:
 * it serves reads and retries on its own.
 */
static int probe_at_open(struct store *s, char *err, size_t errlen)
{
	struct failure f = { 0 };
	sqlite3_stmt *q = s->stmts[ST_PROBE];
	char words[200];
	int rc;

	rc = exec(s->db, "BEGIN IMMEDIATE");
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, hpq_now_ms());
		rc = sqlite3_step(q);
		sqlite3_reset(q);
		if (rc == SQLITE_DONE)
			rc = exec(s->db, "COMMIT");
	}
	if (rc != SQLITE_OK)
		note_failure(s, rc, &f);
	if (!sqlite3_get_autocommit(s->db))
		exec(s->db, "ROLLBACK");
	measure(s);
	if (rc == SQLITE_OK) {
		if (short_of_space(s))
			set_health(s, STORE_FULL, NULL);
		return 0;
	}
	failure_words(&f, words, sizeof(words));
	if ((f.rc & 0xff) == SQLITE_READONLY || f.sys_errno == EROFS || f.sys_errno == EACCES ||
	    f.sys_errno == EPERM)
		return hpq_errf(err, errlen, HPQ_ESTORAGE, "the state database '%s' cannot be "
				"written: %s; hpqd must write it", s->path, words);
	set_health(s, classify(&f), words);
	return 0;
}

/* What opening without room for the -shm file fails with. */
static bool no_room(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_IOERR || rc == SQLITE_FULL || rc == SQLITE_CANTOPEN;
}

static void close_db(struct store *s)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(s->stmts[i]);
		s->stmts[i] = NULL;
	}
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		log_warn("closing the state database: %s", sqlite3_errmsg(s->db));
	s->db = NULL;
}

static void store_free(struct store *s)
{
	free(s->path);
	free(s->dir);
	free(s);
}

int store_open(const char *path, unsigned flags, struct store **ret_store, char *err,
	       size_t errlen)
{
	struct store *s = xcalloc(1, sizeof(*s));
	const char *slash = strrchr(path, '/');
	char first[200];
	int r, rc;

	s->flags = flags;
	s->todo_tail = &s->todo;
	s->finished_tail = &s->finished;
	s->held_tail = &s->held;
	s->path = xstrdup(path);
	s->dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : xstrdup(".");
	s->free_bytes = UINT64_MAX;
	s->retry_ms = STORE_RETRY_MIN_MS;
	s->bulk_pending = true;      /* a crash may have left some: store_load looks */
	r = check_writable(path, err, errlen);
	if (r < 0)
		goto fail;
	rc = open_db(s, false);
	if (rc != SQLITE_OK && s->db && no_room(rc)) {
		snprintf(first, sizeof(first), "%s", sqlite3_errmsg(s->db));
		close_db(s);
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
	r = probe_at_open(s, err, errlen);
	if (r < 0)
		goto fail;
	*ret_store = s;
	return 0;
fail:
	close_db(s);
	store_free(s);
	return r;
}

/* ---------------------------------------------------------------- start, close */

int store_start(struct store *s, uv_loop_t *loop, void (*on_change)(void *arg), void *arg)
{
	int r;

	s->loop = loop;
	s->on_change = on_change;
	s->change_arg = arg;
	r = uv_async_init(loop, &s->async, on_async);
	if (r < 0)
		return r;
	s->async.data = s;
	s->handles = 1;
	/* Failing to make a timer, a mutex or a thread is running out of
	 * resources, which is fatal in hpq like running out of memory. */
	if (uv_timer_init(loop, &s->watch) < 0)
		hpq_fatal("cannot make the state store's timer");
	s->watch.data = s;
	s->handles = 2;
	uv_timer_start(&s->watch, on_watch, STORE_WATCH_MS, STORE_WATCH_MS);
	uv_unref((uv_handle_t *)&s->watch);
	/* Held alone, the database has no room for a second connection. */
	if (!s->exclusive)
		s->ckpt = checkpointer_start(s->db, s->path, s->flags & STORE_NOSYNC);
	if (uv_mutex_init(&s->mu) < 0 || uv_cond_init(&s->cv) < 0 ||
	    uv_thread_create(&s->thread, store_thread, s) < 0)
		hpq_fatal("cannot start the storage thread");
	s->started = true;
	return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct store *s = h->data;

	if (--s->handles == 0)
		store_free(s);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (!s->started) {
		if (s->open)
			batch_free(s->open);
		close_db(s);
		store_free(s);
		return;
	}
	s->final = true;
	store_submit(s);
	uv_mutex_lock(&s->mu);
	s->quit = true;
	uv_cond_signal(&s->cv);
	uv_mutex_unlock(&s->mu);
	uv_thread_join(&s->thread);
	s->joined = true;
	run_finished(s);
	/* Completions may record more, and changes may still wait; the
	 * thread is gone, so commit here, once, failing what cannot be. */
	while (s->open || s->held) {
		struct batch *list = take_held(s, s->open);
		struct failure f = { 0 };
		int rc;

		s->open = NULL;
		rc = commit_batches(s, list, &f);
		if (rc != SQLITE_OK) {
			run_reads(s, list);
			s->failure = f;
		}
		for (struct batch *b = list; b; b = b->next) {
			b->status = rc == SQLITE_OK ? 0 : HPQ_ESTORAGE;
			batch_free_ops(b);
			s->inflight++;
		}
		*s->finished_tail = list;
		while (*s->finished_tail)
			s->finished_tail = &(*s->finished_tail)->next;
		run_finished(s);
	}
	store_bulk_finish(s);
	checkpointer_stop(s->ckpt);
	s->ckpt = NULL;
	close_db(s);
	uv_mutex_destroy(&s->mu);
	uv_cond_destroy(&s->cv);
	uv_close((uv_handle_t *)&s->watch, on_handle_closed);
	uv_close((uv_handle_t *)&s->async, on_handle_closed);
}
