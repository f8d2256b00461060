/*
 * store.c: the SQLite implementation of store.h.
 *
 * Rows recorded by the loop thread become "ops": one prepared statement
 * and a copy of its bound values. An op owns its copies, so the state can
 * change again before the storage thread gets to it. A batch is the ops
 * and completions of one loop iteration; the thread takes every batch
 * waiting, runs them in one BEGIN IMMEDIATE ... COMMIT, frees the ops and
 * passes the batches back through a uv_async, whose callback runs the
 * completions in order. Reads that must see everything recorded before
 * them (a task's history for `hpq show`) are ops too.
 *
 * The database is opened with SQLITE_OPEN_NOMUTEX: the loop thread uses
 * the connection only before store_start (migrate, load) and after the
 * thread has been joined (close); in between only the thread touches it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "error.h"
#include "log.h"
#include "state.h"
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

static const char *const migrations[] = {
	schema_v1,
	schema_v2,
	schema_v3,
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int store_schema_latest(void)
{
	return NMIGRATIONS;
}

/* ---------------------------------------------------------------- statements */

enum stmt_id {
	ST_TASK_INSERT,
	ST_TASK_UPDATE,
	ST_CKPT_INSERT,
	ST_EVENT_INSERT,
	ST_TEAM_PUT,
	ST_TEAM_DELETE,
	ST_QUOTAS_CLEAR,
	ST_QUOTA_PUT,
	ST_CLASS_PUT,
	ST_CLASS_DELETE,
	ST_POOL_PUT,
	ST_NODE_PUT,
	ST_POLICY_PUT,
	ST_HIST_CKPTS,
	ST_HIST_EVENTS,
	ST_COUNT,
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_TASK_INSERT] =
		"INSERT INTO tasks (id, name, team, user, uid, gid, class, pool, state, reason,"
		" nnodes, gpus, cpus, mem, node_names, nodes_done, attempts, submit_time,"
		" start_time, end_time, exit_code, time_limit_s, preempt_signal, grace_s,"
		" checkpoint_dir, cwd, argv, env, cancel_requested)"
		" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[ST_TASK_UPDATE] =
		"UPDATE tasks SET state = ?, reason = ?, node_names = ?, nodes_done = ?,"
		" attempts = ?, start_time = ?, end_time = ?, exit_code = ?,"
		" cancel_requested = ? WHERE id = ?",
	[ST_CKPT_INSERT] =
		"INSERT INTO checkpoints (task_id, attempt, step, path, time) VALUES (?,?,?,?,?)",
	[ST_EVENT_INSERT] =
		"INSERT INTO events (time, kind, task_id, node, team, actor, message)"
		" VALUES (?,?,?,?,?,?,?)",
	[ST_TEAM_PUT] =
		"INSERT OR REPLACE INTO teams (name, weight, preempt_own, default_class, members)"
		" VALUES (?,?,?,?,?)",
	[ST_TEAM_DELETE] = "DELETE FROM teams WHERE name = ?",
	[ST_QUOTAS_CLEAR] = "DELETE FROM team_quotas WHERE team = ?",
	[ST_QUOTA_PUT] =
		"INSERT INTO team_quotas (team, pool, guarantee_gpus, guarantee_cpus,"
		" guarantee_mem, sharing, borrow_limit_pct, borrow_abs_gpus, borrow_abs_cpus,"
		" borrow_abs_mem, lend_gpus, lend_cpus, lend_mem)"
		" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[ST_CLASS_PUT] =
		"INSERT OR REPLACE INTO classes (name, weight, preemptible) VALUES (?,?,?)",
	[ST_CLASS_DELETE] = "DELETE FROM classes WHERE name = ?",
	[ST_POOL_PUT] = "INSERT OR IGNORE INTO pools (name) VALUES (?)",
	[ST_NODE_PUT] =
		"INSERT OR REPLACE INTO nodes (name, pool, gpus, cpus, mem, labels, address,"
		" service, health, reason, last_seen, service_by, service_since, admin_hold,"
		" repair_action) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[ST_POLICY_PUT] = "INSERT OR REPLACE INTO policy (key, value) VALUES (?,?)",
	[ST_HIST_CKPTS] =
		"SELECT attempt, step, path, time FROM (SELECT id, attempt, step, path, time"
		" FROM checkpoints WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id",
	[ST_HIST_EVENTS] =
		"SELECT id, time, kind, node, team, actor, message FROM (SELECT * FROM events"
		" WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id",
};

/* ---------------------------------------------------------------- ops and batches */

enum val_type { V_NULL, V_INT, V_TEXT, V_BLOB };

struct val {
	enum val_type type;
	int64_t i;
	char *p;        /* V_TEXT (NUL-terminated) and V_BLOB, owned */
	size_t len;
};

struct history_req {
	uint64_t task_id;
	struct store_history h;
};

struct op {
	enum stmt_id stmt;      /* ST_HIST_CKPTS: a history read */
	struct history_req *hist;
	store_call_fn call;     /* store_call: runs instead of a statement */
	void *call_arg;
	unsigned n;
	struct val v[];
};

struct done {
	store_done_fn fn;
	store_history_fn hist_fn;
	void *arg;
	struct history_req *hist;
};

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

static struct batch *open_batch(struct store *s)
{
	if (!s->open)
		s->open = xcalloc(1, sizeof(*s->open));
	return s->open;
}

static struct op *op_new(struct store *s, enum stmt_id stmt, unsigned n)
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

static void v_int(struct op *op, unsigned i, int64_t x)
{
	op->v[i].type = V_INT;
	op->v[i].i = x;
}

static void v_text(struct op *op, unsigned i, const char *s)
{
	op->v[i].type = V_TEXT;
	op->v[i].p = xstrdup(s ? s : "");
}

static void v_null(struct op *op, unsigned i)
{
	op->v[i].type = V_NULL;
}

/* Strings, each followed by its NUL, in one blob. */
static void v_strv(struct op *op, unsigned i, char *const *strv, size_t n)
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

/* Names joined with commas (names cannot contain commas). */
static char *join_names(char *const *names, size_t n)
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
	return p;
}

static void v_names(struct op *op, unsigned i, char *const *names, size_t n)
{
	op->v[i].type = V_TEXT;
	op->v[i].p = join_names(names, n);
}

static void op_free(struct op *op)
{
	for (unsigned i = 0; i < op->n; i++)
		free(op->v[i].p);
	free(op);
}

static void history_free(struct history_req *hr)
{
	if (!hr)
		return;
	for (size_t i = 0; i < hr->h.nckpts; i++)
		free(hr->h.ckpts[i].path);
	free(hr->h.ckpts);
	for (size_t i = 0; i < hr->h.nevents; i++) {
		struct store_event *e = &hr->h.events[i];

		free((char *)e->kind);
		free((char *)e->node);
		free((char *)e->team);
		free((char *)e->actor);
		free((char *)e->message);
	}
	free(hr->h.events);
	free(hr);
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
	for (size_t i = 0; i < b->ndones; i++)
		history_free(b->dones[i].hist);
	free(b->dones);
	free(b);
}

static struct done *done_new(struct store *s)
{
	struct batch *b = open_batch(s);

	if (b->ndones == b->capdones) {
		b->capdones = b->capdones ? 2 * b->capdones : 8;
		b->dones = xreallocarray(b->dones, b->capdones, sizeof(*b->dones));
	}
	memset(&b->dones[b->ndones], 0, sizeof(b->dones[0]));
	return &b->dones[b->ndones++];
}

/* ---------------------------------------------------------------- recording rows */

void store_task_insert(struct store *s, const struct task *t)
{
	struct op *op = op_new(s, ST_TASK_INSERT, 29);

	v_int(op, 0, (int64_t)t->st.id);
	v_text(op, 1, t->name);
	v_text(op, 2, t->team);
	v_text(op, 3, t->user);
	v_int(op, 4, t->uid);
	v_int(op, 5, t->gid);
	v_text(op, 6, t->cls);
	v_text(op, 7, t->pool);
	v_text(op, 8, state_task_state(t->state));
	v_text(op, 9, t->reason);
	v_int(op, 10, t->st.nnodes);
	v_int(op, 11, t->st.per_node.gpus);
	v_int(op, 12, t->st.per_node.cpus);
	v_int(op, 13, t->st.per_node.mem);
	v_names(op, 14, t->node_names, t->n_node_names);
	v_text(op, 15, t->done);
	v_int(op, 16, t->attempts);
	v_int(op, 17, t->submit_ms);
	v_int(op, 18, t->start_ms);
	v_int(op, 19, t->end_ms);
	if (t->has_exit_code)
		v_int(op, 20, t->exit_code);
	else
		v_null(op, 20);
	v_int(op, 21, (int64_t)t->time_limit_s);
	v_int(op, 22, t->preempt_signal);
	v_int(op, 23, (int64_t)t->grace_s);
	v_text(op, 24, t->checkpoint_dir);
	v_text(op, 25, t->cwd);
	v_strv(op, 26, t->argv, t->argc);
	v_strv(op, 27, t->env, t->envc);
	v_int(op, 28, t->cancel_requested);
}

void store_task_update(struct store *s, const struct task *t)
{
	struct op *op = op_new(s, ST_TASK_UPDATE, 10);

	v_text(op, 0, state_task_state(t->state));
	v_text(op, 1, t->reason);
	v_names(op, 2, t->node_names, t->n_node_names);
	v_text(op, 3, t->done);
	v_int(op, 4, t->attempts);
	v_int(op, 5, t->start_ms);
	v_int(op, 6, t->end_ms);
	if (t->has_exit_code)
		v_int(op, 7, t->exit_code);
	else
		v_null(op, 7);
	v_int(op, 8, t->cancel_requested);
	v_int(op, 9, (int64_t)t->st.id);
}

void store_checkpoint_add(struct store *s, uint64_t task_id, uint32_t attempt, uint64_t step,
			  const char *path, int64_t time_ms)
{
	struct op *op = op_new(s, ST_CKPT_INSERT, 5);

	v_int(op, 0, (int64_t)task_id);
	v_int(op, 1, attempt);
	v_int(op, 2, (int64_t)step);
	v_text(op, 3, path);
	v_int(op, 4, time_ms);
}

void store_event_add(struct store *s, const struct store_event *ev)
{
	struct op *op = op_new(s, ST_EVENT_INSERT, 7);

	v_int(op, 0, ev->time_ms);
	v_text(op, 1, ev->kind);
	if (ev->task_id)
		v_int(op, 2, (int64_t)ev->task_id);
	else
		v_null(op, 2);
	v_text(op, 3, ev->node);
	v_text(op, 4, ev->team);
	v_text(op, 5, ev->actor);
	v_text(op, 6, ev->message);
}

void store_team_put(struct store *s, const struct state *st, const struct team *t)
{
	struct op *op = op_new(s, ST_TEAM_PUT, 5);

	v_text(op, 0, t->name);
	v_int(op, 1, t->weight);
	v_text(op, 2, t->preempt_own_lower ? "lower-priority" : "never");
	v_text(op, 3, t->default_class);
	v_names(op, 4, t->members, t->nmembers);

	op = op_new(s, ST_QUOTAS_CLEAR, 1);
	v_text(op, 0, t->name);
	for (size_t i = 0; i < t->nquotas; i++) {
		const struct quota *q = &t->quotas[i];

		op = op_new(s, ST_QUOTA_PUT, 13);
		v_text(op, 0, t->name);
		v_text(op, 1, st->pools[q->pool]->name);
		v_int(op, 2, q->q.guarantee.gpus);
		v_int(op, 3, q->q.guarantee.cpus);
		v_int(op, 4, q->q.guarantee.mem);
		v_text(op, 5, state_sharing_name(q->q.sharing));
		v_int(op, 6, q->q.borrow_limit_pct);
		if (q->q.has_borrow_abs) {
			v_int(op, 7, q->q.borrow_abs.gpus);
			v_int(op, 8, q->q.borrow_abs.cpus);
			v_int(op, 9, q->q.borrow_abs.mem);
		} else {
			v_null(op, 7);
			v_null(op, 8);
			v_null(op, 9);
		}
		if (q->q.has_lend_limit) {
			v_int(op, 10, q->q.lend_limit.gpus);
			v_int(op, 11, q->q.lend_limit.cpus);
			v_int(op, 12, q->q.lend_limit.mem);
		} else {
			v_null(op, 10);
			v_null(op, 11);
			v_null(op, 12);
		}
	}
}

void store_team_delete(struct store *s, const char *name)
{
	struct op *op = op_new(s, ST_QUOTAS_CLEAR, 1);

	v_text(op, 0, name);
	op = op_new(s, ST_TEAM_DELETE, 1);
	v_text(op, 0, name);
}

void store_class_put(struct store *s, const struct prio_class *c)
{
	struct op *op = op_new(s, ST_CLASS_PUT, 3);

	v_text(op, 0, c->name);
	v_int(op, 1, c->weight);
	v_int(op, 2, c->preemptible);
}

void store_class_delete(struct store *s, const char *name)
{
	struct op *op = op_new(s, ST_CLASS_DELETE, 1);

	v_text(op, 0, name);
}

void store_pool_put(struct store *s, const char *name)
{
	struct op *op = op_new(s, ST_POOL_PUT, 1);

	v_text(op, 0, name);
}

void store_node_put(struct store *s, const struct state *st, const struct node *n)
{
	struct op *op = op_new(s, ST_NODE_PUT, 15);

	v_text(op, 0, n->name);
	v_text(op, 1, st->pools[n->pool]->name);
	v_int(op, 2, n->capacity.gpus);
	v_int(op, 3, n->capacity.cpus);
	v_int(op, 4, n->capacity.mem);
	v_strv(op, 5, n->labels, n->nlabels);
	v_text(op, 6, n->address);
	v_text(op, 7, n->service);
	v_text(op, 8, n->health);
	v_text(op, 9, n->reason);
	v_int(op, 10, n->last_heartbeat_ms);
	v_text(op, 11, n->service_by);
	v_int(op, 12, n->service_since_ms);
	v_int(op, 13, n->admin_hold);
	v_text(op, 14, n->repair_action);
}

void store_policy_put(struct store *s, const char *key, const char *value)
{
	struct op *op = op_new(s, ST_POLICY_PUT, 2);

	v_text(op, 0, key);
	v_text(op, 1, value);
}

void store_after_commit(struct store *s, store_done_fn fn, void *arg)
{
	struct done *d = done_new(s);

	d->fn = fn;
	d->arg = arg;
}

void store_read_history(struct store *s, uint64_t task_id, store_history_fn fn, void *arg)
{
	struct history_req *hr = xcalloc(1, sizeof(*hr));
	struct op *op = op_new(s, ST_HIST_CKPTS, 0);
	struct done *d;

	hr->task_id = task_id;
	op->hist = hr;
	d = done_new(s);
	d->hist_fn = fn;
	d->arg = arg;
	d->hist = hr;
}

void store_call(struct store *s, store_call_fn fn, store_done_fn done, void *arg)
{
	struct op *op = op_new(s, ST_COUNT, 0);

	op->call = fn;
	op->call_arg = arg;
	if (done) {
		struct done *d = done_new(s);

		d->fn = done;
		d->arg = arg;
	}
}

/* ---------------------------------------------------------------- the storage thread */

static char *col_dup(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);

	return xstrdup(t ? (const char *)t : "");
}

static int run_history(struct store *s, struct history_req *hr)
{
	sqlite3_stmt *q = s->stmts[ST_HIST_CKPTS];
	struct store_history *h = &hr->h;
	int rc;

	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, (int64_t)hr->task_id);
	sqlite3_bind_int(q, 2, STORE_HISTORY_MAX);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_checkpoint *c;

		h->ckpts = xreallocarray(h->ckpts, h->nckpts + 1, sizeof(*h->ckpts));
		c = &h->ckpts[h->nckpts++];
		c->attempt = (uint32_t)sqlite3_column_int64(q, 0);
		c->step = (uint64_t)sqlite3_column_int64(q, 1);
		c->path = col_dup(q, 2);
		c->time_ms = sqlite3_column_int64(q, 3);
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return rc;

	q = s->stmts[ST_HIST_EVENTS];
	sqlite3_bind_int64(q, 1, (int64_t)hr->task_id);
	sqlite3_bind_int(q, 2, STORE_HISTORY_MAX);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_event *e;

		h->events = xreallocarray(h->events, h->nevents + 1, sizeof(*h->events));
		e = &h->events[h->nevents++];
		e->id = (uint64_t)sqlite3_column_int64(q, 0);
		e->time_ms = sqlite3_column_int64(q, 1);
		e->kind = col_dup(q, 2);
		e->task_id = hr->task_id;
		e->node = col_dup(q, 3);
		e->team = col_dup(q, 4);
		e->actor = col_dup(q, 5);
		e->message = col_dup(q, 6);
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int run_op(struct store *s, struct op *op)
{
	sqlite3_stmt *q;
	int rc;

	if (op->hist)
		return run_history(s, op->hist);
	if (op->call)
		return op->call(s->db, op->call_arg);
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
		for (size_t i = 0; i < list->ndones; i++) {
			struct done *d = &list->dones[i];

			if (d->hist_fn)
				d->hist_fn(d->arg, list->status,
					   list->status < 0 ? NULL : &d->hist->h);
			else
				d->fn(d->arg, list->status);
		}
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
	run_finished(container_of(h, struct store, async));
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
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&s->stmts[i], NULL);
		if (rc != SQLITE_OK) {
			r = hpq_errf(err, errlen, HPQ_ESTORAGE,
				     "cannot prepare a statement on '%s': %s", path,
				     sqlite3_errmsg(s->db));
			goto fail;
		}
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

/* Splits a blob of NUL-terminated strings. */
static char **blob_strv(sqlite3_stmt *q, int col, size_t *ret_n)
{
	const char *p = sqlite3_column_blob(q, col);
	size_t len = (size_t)sqlite3_column_bytes(q, col), n = 0;
	char **v = NULL;

	for (size_t off = 0; p && off < len;) {
		size_t l = strnlen(p + off, len - off);

		v = xreallocarray(v, n + 2, sizeof(*v));
		v[n++] = xstrndup(p + off, l);
		off += l + 1;
	}
	if (v)
		v[n] = NULL;
	*ret_n = n;
	return v;
}

static char **split_names(const char *s, uint32_t *ret_n)
{
	char *copy, *save = NULL, *tok;
	char **v = NULL;
	uint32_t n = 0;

	if (!s || !*s) {
		*ret_n = 0;
		return NULL;
	}
	copy = xstrdup(s);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrdup(tok);
	}
	free(copy);
	*ret_n = n;
	return v;
}

static const unsigned char *col_text(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);

	return t ? t : (const unsigned char *)"";
}

#define TXT(q, i) ((const char *)col_text((q), (i)))

static struct task *load_task(struct state *st, sqlite3_stmt *q)
{
	struct task *t = state_task_new();
	int state = state_task_state_parse(TXT(q, 8));
	size_t n;

	if (state < 0) {
		log_warn("task %lld has unknown state '%s': treating it as FAILED",
			 (long long)sqlite3_column_int64(q, 0), TXT(q, 8));
		state = TASK_FAILED;
	}
	t->st.id = (uint64_t)sqlite3_column_int64(q, 0);
	t->name = col_dup(q, 1);
	t->team = col_dup(q, 2);
	t->user = col_dup(q, 3);
	t->uid = (uint32_t)sqlite3_column_int64(q, 4);
	t->gid = (uint32_t)sqlite3_column_int64(q, 5);
	t->cls = col_dup(q, 6);
	t->pool = col_dup(q, 7);
	t->state = (enum task_state)state;
	t->reason = col_dup(q, 9);
	t->st.nnodes = (uint32_t)sqlite3_column_int64(q, 10);
	t->st.per_node.gpus = sqlite3_column_int64(q, 11);
	t->st.per_node.cpus = sqlite3_column_int64(q, 12);
	t->st.per_node.mem = sqlite3_column_int64(q, 13);
	t->node_names = split_names(TXT(q, 14), &t->n_node_names);
	t->done = col_dup(q, 15);
	t->attempts = (uint32_t)sqlite3_column_int64(q, 16);
	t->submit_ms = sqlite3_column_int64(q, 17);
	t->start_ms = sqlite3_column_int64(q, 18);
	t->end_ms = sqlite3_column_int64(q, 19);
	t->has_exit_code = sqlite3_column_type(q, 20) != SQLITE_NULL;
	t->exit_code = (int32_t)sqlite3_column_int64(q, 20);
	t->time_limit_s = (uint64_t)sqlite3_column_int64(q, 21);
	t->preempt_signal = (int32_t)sqlite3_column_int64(q, 22);
	t->grace_s = (uint64_t)sqlite3_column_int64(q, 23);
	t->checkpoint_dir = col_dup(q, 24);
	t->cwd = col_dup(q, 25);
	t->argv = blob_strv(q, 26, &t->argc);
	if (!task_state_final(t->state)) {
		t->env = blob_strv(q, 27, &n);
		t->envc = n;
	}
	t->cancel_requested = sqlite3_column_int64(q, 28) != 0;
	(void)st;
	return t;
}

int store_load(struct store *s, struct state *st, char *err, size_t errlen)
{
	static const char *const queries[] = {
		"SELECT key, value FROM policy ORDER BY key",
		"SELECT name FROM pools ORDER BY name",
		"SELECT name, weight, preemptible FROM classes ORDER BY name",
		"SELECT name, weight, preempt_own, default_class, members FROM teams ORDER BY name",
		"SELECT team, pool, guarantee_gpus, guarantee_cpus, guarantee_mem, sharing,"
		" borrow_limit_pct, borrow_abs_gpus, borrow_abs_cpus, borrow_abs_mem,"
		" lend_gpus, lend_cpus, lend_mem FROM team_quotas ORDER BY team, pool",
		/* In parentheses: clang's -Wstring-concatenation guesses a missing comma. */
		("SELECT name, pool, gpus, cpus, mem, labels, address, service, health, reason,"
		 " last_seen, service_by, service_since, admin_hold, repair_action FROM nodes"
		 " ORDER BY name"),
		"SELECT id, name, team, user, uid, gid, class, pool, state, reason, nnodes, gpus,"
		" cpus, mem, node_names, nodes_done, attempts, submit_time, start_time, end_time,"
		" exit_code, time_limit_s, preempt_signal, grace_s, checkpoint_dir, cwd, argv,"
		" env, cancel_requested FROM tasks ORDER BY id",
		"SELECT c.task_id, c.attempt, c.step, c.path, c.time FROM checkpoints c JOIN"
		" (SELECT max(id) AS id FROM checkpoints GROUP BY task_id) m ON c.id = m.id",
	};
	size_t ntasks = 0;
	int r = 0;

	for (size_t k = 0; k < sizeof(queries) / sizeof(queries[0]); k++) {
		sqlite3_stmt *q;
		int rc;

		rc = sqlite3_prepare_v2(s->db, queries[k], -1, &q, NULL);
		if (rc != SQLITE_OK)
			return hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot load state: %s",
					sqlite3_errmsg(s->db));
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			switch (k) {
			case 0:
				state_policy_restore(st, TXT(q, 0), TXT(q, 1));
				break;
			case 1:
				state_pool_restore(st, TXT(q, 0));
				break;
			case 2:
				state_class_restore(st, TXT(q, 0),
						    (uint32_t)sqlite3_column_int64(q, 1),
						    sqlite3_column_int64(q, 2) != 0);
				break;
			case 3:
				state_team_restore(st, TXT(q, 0),
						   (uint32_t)sqlite3_column_int64(q, 1), TXT(q, 2),
						   TXT(q, 3), TXT(q, 4));
				break;
			case 4: {
				struct team *t = state_team_find(st, TXT(q, 0));
				struct sched_quota qu = { 0 };
				int sh = state_sharing_parse(TXT(q, 5));

				if (!t) {
					log_warn("quota for unknown team '%s' ignored", TXT(q, 0));
					break;
				}
				qu.guarantee = (struct hpq_res){ sqlite3_column_int64(q, 2),
								 sqlite3_column_int64(q, 3),
								 sqlite3_column_int64(q, 4) };
				qu.sharing = sh < 0 ? SCHED_LEND_AND_BORROW
						    : (enum sched_sharing)sh;
				qu.borrow_limit_pct = (uint32_t)sqlite3_column_int64(q, 6);
				qu.has_borrow_abs = sqlite3_column_type(q, 7) != SQLITE_NULL;
				qu.borrow_abs = (struct hpq_res){ sqlite3_column_int64(q, 7),
								  sqlite3_column_int64(q, 8),
								  sqlite3_column_int64(q, 9) };
				qu.has_lend_limit = sqlite3_column_type(q, 10) != SQLITE_NULL;
				qu.lend_limit = (struct hpq_res){ sqlite3_column_int64(q, 10),
								  sqlite3_column_int64(q, 11),
								  sqlite3_column_int64(q, 12) };
				state_quota_restore(st, t, TXT(q, 1), &qu);
				break;
			}
			case 5: {
				struct hpq_res cap = { sqlite3_column_int64(q, 2),
						       sqlite3_column_int64(q, 3),
						       sqlite3_column_int64(q, 4) };
				struct node *n = state_node_restore(st, TXT(q, 0), TXT(q, 1), cap);

				if (!n)
					break;
				n->labels = blob_strv(q, 5, &n->nlabels);
				free(n->address);
				n->address = col_dup(q, 6);
				free(n->service);
				n->service = col_dup(q, 7);
				free(n->health);
				n->health = col_dup(q, 8);
				/* Already lost before the restart: no second "lost". */
				n->lost = !strcmp(n->health, "unreachable");
				free(n->reason);
				n->reason = col_dup(q, 9);
				n->last_heartbeat_ms = sqlite3_column_int64(q, 10);
				free(n->service_by);
				n->service_by = col_dup(q, 11);
				n->service_since_ms = sqlite3_column_int64(q, 12);
				n->admin_hold = sqlite3_column_int64(q, 13) != 0;
				free(n->repair_action);
				n->repair_action = col_dup(q, 14);
				break;
			}
			case 6:
				state_task_restore(st, load_task(st, q));
				ntasks++;
				break;
			case 7: {
				uint64_t id = (uint64_t)sqlite3_column_int64(q, 0);
				struct task *t = state_task_find(st, id);

				if (!t || task_state_final(t->state))
					break;
				t->ckpt.has = true;
				t->ckpt.attempt = (uint32_t)sqlite3_column_int64(q, 1);
				t->ckpt.step = (uint64_t)sqlite3_column_int64(q, 2);
				free(t->ckpt.path);
				t->ckpt.path = col_dup(q, 3);
				t->ckpt.time_ms = sqlite3_column_int64(q, 4);
				break;
			}
			}
		}
		if (rc != SQLITE_DONE)
			r = hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot load state: %s",
				     sqlite3_errmsg(s->db));
		sqlite3_finalize(q);
		if (r < 0)
			return r;
	}
	state_restore_done(st);
	log_info("loaded %zu tasks, %u teams, %u classes, %u pools, %u nodes", ntasks,
		 st->nteams, st->nclasses, st->npools, st->nnodes);
	return 0;
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
	free(container_of((uv_async_t *)h, struct store, async));
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
