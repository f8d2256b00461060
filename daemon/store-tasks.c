/*
 * store-tasks.c: the tasks and checkpoints tables: recording a task and
 * its changes, its checkpoints, reading a task's history for `hpq show`,
 * and loading the tasks with their newest checkpoints at start. Also the
 * task_bulk table: a change many tasks get at once (store_task_bulk)
 * commits as one row, and its tasks' rows and events follow.
 */
#include <stdlib.h>
#include <string.h>

#include "batchspec.h"
#include "log.h"
#include "store-internal.h"

const struct stmt_def store_task_stmts[] = {
	{ ST_TASK_INSERT,
	  "INSERT INTO tasks (id, name, team, user, uid, gid, class, pool, state, reason,"
	  " nnodes, gpus, cpus, mem, node_names, nodes_done, attempts, submit_time,"
	  " start_time, end_time, exit_code, time_limit_s, preempt_signal, grace_s,"
	  " checkpoint_dir, cwd, argv, env, cancel_requested, array_id, array_index, output,"
	  " error, dependency, kill_on_invalid_dep, held, submit_dir, ntasks_per_node,"
	  " peak_mem, cpu_usec, preemptions, recipe, recipe_version, recipe_params,"
	  " plan)"
	  " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
	  "?,?,?,?)" },
	{ ST_SCRIPT_INSERT, "INSERT OR REPLACE INTO scripts (id, body) VALUES (?,?)" },
	{ ST_ENV_INSERT, "INSERT OR REPLACE INTO task_env (id, env) VALUES (?,?)" },
	{ ST_ENV_READ, "SELECT env FROM task_env WHERE id = ?" },
	{ ST_SCRIPT_READ, "SELECT body FROM scripts WHERE id = ?" },
	{ ST_TASK_UPDATE,
	  "UPDATE tasks SET state = ?, reason = ?, node_names = ?, nodes_done = ?,"
	  " attempts = ?, start_time = ?, end_time = ?, exit_code = ?,"
	  " cancel_requested = ?, name = ?, class = ?, pool = ?, nnodes = ?, gpus = ?,"
	  " cpus = ?, mem = ?, time_limit_s = ?, dependency = ?, held = ?, peak_mem = ?,"
	  " cpu_usec = ?, preemptions = ?, kill_on_invalid_dep = ?, requeue_by = ?"
	  " WHERE id = ?" },
	{ ST_TASK_END, "UPDATE tasks SET state = ?, reason = ?, end_time = ? WHERE id = ?" },
	{ ST_CKPT_INSERT,
	  "INSERT INTO checkpoints (task_id, attempt, step, path, time) VALUES (?,?,?,?,?)" },
	{ ST_HIST_CKPTS,
	  "SELECT attempt, step, path, time FROM (SELECT id, attempt, step, path, time"
	  " FROM checkpoints WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id" },
	{ ST_HIST_EVENTS,
	  "SELECT id, time, kind, node, team, actor, message FROM (SELECT * FROM events"
	  " WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id" },
	{ ST_BULK_EVENT_NEXT, "SELECT coalesce(max(id), 0) + 1 FROM events" },
	{ ST_BULK_EVENT,
	  "INSERT INTO events (id, time, kind, task_id, node, team, actor, message)"
	  " VALUES (?1, ?2, ?3, ?4, '', coalesce((SELECT team FROM tasks WHERE id = ?4), ''),"
	  " ?5, ?6)" },
	{ ST_BULK_PUT,
	  "INSERT INTO task_bulk (change, ids, first_event, state, reason, end_time, time, kind,"
	  " actor, message) VALUES (?,?,?,?,?,?,?,?,?,?)" },
	{ ST_BULK_FIRST,
	  "SELECT id, change, ids, first_event, state, reason, end_time, time, kind, actor,"
	  " message FROM task_bulk ORDER BY id LIMIT 1" },
	{ ST_BULK_DELETE, "DELETE FROM task_bulk WHERE id = ?" },
	{ ST_COUNT, NULL },
};

void store_task_insert(struct store *s, const struct store_task_row *t)
{
	struct op *op = op_new(s, ST_TASK_INSERT, 45);

	op_int(op, 0, (int64_t)t->id);
	op_text(op, 1, t->name);
	op_text(op, 2, t->team);
	op_text(op, 3, t->user);
	op_int(op, 4, t->uid);
	op_int(op, 5, t->gid);
	op_text(op, 6, t->cls);
	op_text(op, 7, t->pool);
	op_text(op, 8, t->state);
	op_text(op, 9, t->reason);
	op_int(op, 10, t->nnodes);
	op_int(op, 11, t->per_node.gpus);
	op_int(op, 12, t->per_node.cpus);
	op_int(op, 13, t->per_node.mem);
	op_names(op, 14, t->node_names, t->n_node_names);
	op_text(op, 15, t->nodes_done);
	op_int(op, 16, t->attempts);
	op_int(op, 17, t->submit_ms);
	op_int(op, 18, t->start_ms);
	op_int(op, 19, t->end_ms);
	if (t->has_exit_code)
		op_int(op, 20, t->exit_code);
	op_int(op, 21, (int64_t)t->time_limit_s);
	op_int(op, 22, t->preempt_signal);
	op_int(op, 23, (int64_t)t->grace_s);
	op_text(op, 24, t->checkpoint_dir);
	op_text(op, 25, t->cwd);
	op_strv(op, 26, t->argv, t->argc);
	op_strv(op, 27, NULL, 0);    /* in task_env (schema version 7) */
	op_int(op, 28, t->cancel_requested);
	op_int(op, 29, (int64_t)t->array_id);
	op_int(op, 30, t->array_index);
	op_text(op, 31, t->output);
	op_text(op, 32, t->error);
	op_text(op, 33, t->dependency);
	op_int(op, 34, t->kill_on_invalid_dep);
	op_int(op, 35, t->held);
	op_text(op, 36, t->submit_dir);
	op_int(op, 37, t->ntasks_per_node);
	op_int(op, 38, (int64_t)t->peak_mem);
	op_int(op, 39, (int64_t)t->cpu_usec);
	op_int(op, 40, t->preemptions);
	op_text(op, 41, t->recipe ? t->recipe : "");
	op_text(op, 42, t->recipe_version ? t->recipe_version : "");
	op_strv(op, 43, t->recipe_params, t->n_recipe_params);
	op_text(op, 44, t->plan ? t->plan : "");
	if (t->envc) {
		op = op_new(s, ST_ENV_INSERT, 2);
		op_int(op, 0, (int64_t)t->id);
		op_strv(op, 1, t->env, t->envc);
	}
	if (t->script) {
		op = op_new(s, ST_SCRIPT_INSERT, 2);
		op_int(op, 0, (int64_t)(t->array_id ? t->array_id : t->id));
		op_blob(op, 1, t->script, t->script_len);
	}
}

void store_task_update(struct store *s, const struct store_task_row *t)
{
	struct op *op = op_new(s, ST_TASK_UPDATE, 25);

	op_text(op, 0, t->state);
	op_text(op, 1, t->reason);
	op_names(op, 2, t->node_names, t->n_node_names);
	op_text(op, 3, t->nodes_done);
	op_int(op, 4, t->attempts);
	op_int(op, 5, t->start_ms);
	op_int(op, 6, t->end_ms);
	if (t->has_exit_code)
		op_int(op, 7, t->exit_code);
	op_int(op, 8, t->cancel_requested);
	op_text(op, 9, t->name);
	op_text(op, 10, t->cls);
	op_text(op, 11, t->pool);
	op_int(op, 12, t->nnodes);
	op_int(op, 13, t->per_node.gpus);
	op_int(op, 14, t->per_node.cpus);
	op_int(op, 15, t->per_node.mem);
	op_int(op, 16, (int64_t)t->time_limit_s);
	op_text(op, 17, t->dependency);
	op_int(op, 18, t->held);
	op_int(op, 19, (int64_t)t->peak_mem);
	op_int(op, 20, (int64_t)t->cpu_usec);
	op_int(op, 21, t->preemptions);
	op_int(op, 22, t->kill_on_invalid_dep);
	op_text(op, 23, t->requeue_by);
	op_int(op, 24, (int64_t)t->id);
}

void store_task_end(struct store *s, uint64_t id, const char *state, const char *reason,
		    int64_t end_ms)
{
	struct op *op = op_new(s, ST_TASK_END, 4);

	op_text(op, 0, state);
	op_text(op, 1, reason);
	op_int(op, 2, end_ms);
	op_int(op, 3, (int64_t)id);
}

/* ---------------------------------------------------------------- bulk changes */

/*
 * A bulk op's values. The ids are 8 bytes each, little-endian, in the
 * order recorded, as the task_bulk row keeps them; the blob's capacity is
 * kept in its int.
 */
enum { BV_CHANGE, BV_IDS, BV_STATE, BV_REASON, BV_END, BV_TIME, BV_KIND, BV_ACTOR, BV_MESSAGE,
       BV_N };

static const char *const bulk_changes[] = {
	[STORE_BULK_END] = "end",
	[STORE_BULK_RELEASE] = "release",
};

static bool bulk_same(const struct op *op, const struct store_bulk *b)
{
	return op->stmt == ST_TASK_BULK && op->v[BV_CHANGE].i == (int64_t)b->change &&
	       op->v[BV_END].i == b->end_ms && op->v[BV_TIME].i == b->time_ms &&
	       !strcmp(op->v[BV_STATE].p, b->state ? b->state : "") &&
	       !strcmp(op->v[BV_REASON].p, b->reason ? b->reason : "") &&
	       !strcmp(op->v[BV_KIND].p, b->kind) && !strcmp(op->v[BV_ACTOR].p, b->actor) &&
	       !strcmp(op->v[BV_MESSAGE].p, b->message);
}

static int bulk_run(struct store *s, void *arg);

void store_task_bulk(struct store *s, uint64_t id, const struct store_bulk *b)
{
	struct op *op = store_last_op(s);
	char *p;

	if (!op || !bulk_same(op, b)) {
		op = op_new(s, ST_TASK_BULK, BV_N);
		op->run = bulk_run;
		op->arg = op;
		op_int(op, BV_CHANGE, b->change);
		op_text(op, BV_STATE, b->state);
		op_text(op, BV_REASON, b->reason);
		op_int(op, BV_END, b->end_ms);
		op_int(op, BV_TIME, b->time_ms);
		op_text(op, BV_KIND, b->kind);
		op_text(op, BV_ACTOR, b->actor);
		op_text(op, BV_MESSAGE, b->message);
	}
	p = op_blob_room(op, BV_IDS, 8);
	for (int k = 0; k < 8; k++)
		p[k] = (char)(id >> (8 * k));
	op->v[BV_IDS].len += 8;
}

static uint64_t bulk_id(const void *ids, size_t i)
{
	const unsigned char *p = (const unsigned char *)ids + 8 * i;
	uint64_t id = 0;

	for (int k = 7; k >= 0; k--)
		id = id << 8 | p[k];
	return id;
}

static int step_done(sqlite3_stmt *q)
{
	int rc = sqlite3_step(q);

	sqlite3_reset(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* One event of a bulk change, with the id it was given. */
static int bulk_event(struct store *s, int64_t event_id, int64_t time_ms, const char *kind,
		      uint64_t task_id, const char *actor, const char *message)
{
	sqlite3_stmt *q = store_stmt(s, ST_BULK_EVENT);

	sqlite3_bind_int64(q, 1, event_id);
	sqlite3_bind_int64(q, 2, time_ms);
	sqlite3_bind_text(q, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, (int64_t)task_id);
	sqlite3_bind_text(q, 5, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, message, -1, SQLITE_STATIC);
	return step_done(q);
}

/*
 * The op in its transaction: the task_bulk row, and the last task's event
 * with the id that the op's place in the log gives it (events are
 * numbered as recorded: events.c counts on it), so that the events
 * recorded after the op get the ids after its own. Runs again, the same,
 * if the transaction has to be tried again.
 */
static int bulk_run(struct store *s, void *arg)
{
	const struct op *op = arg;
	size_t n = op->v[BV_IDS].len / 8;
	sqlite3_stmt *q = store_stmt(s, ST_BULK_EVENT_NEXT);
	int64_t first;
	int rc;

	if (!n)
		return SQLITE_OK;
	rc = sqlite3_step(q);
	first = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	if (rc != SQLITE_ROW)
		return rc;
	rc = bulk_event(s, first + (int64_t)n - 1, op->v[BV_TIME].i, op->v[BV_KIND].p,
			bulk_id(op->v[BV_IDS].p, n - 1), op->v[BV_ACTOR].p, op->v[BV_MESSAGE].p);
	if (rc != SQLITE_OK)
		return rc;
	q = store_stmt(s, ST_BULK_PUT);
	sqlite3_bind_text(q, 1, bulk_changes[op->v[BV_CHANGE].i], -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, op->v[BV_IDS].p, (int)op->v[BV_IDS].len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, first);
	sqlite3_bind_text(q, 4, op->v[BV_STATE].p, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, op->v[BV_REASON].p, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, op->v[BV_END].i);
	sqlite3_bind_int64(q, 7, op->v[BV_TIME].i);
	sqlite3_bind_text(q, 8, op->v[BV_KIND].p, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 9, op->v[BV_ACTOR].p, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 10, op->v[BV_MESSAGE].p, -1, SQLITE_STATIC);
	return step_done(q);
}

/* A task_bulk row, copied out of its statement. */
struct bulk_row {
	int64_t id, first_event, end_ms, time_ms;
	char *change, *state, *reason, *kind, *actor, *message;
	void *ids;
	size_t n;
};

static void bulk_row_free(struct bulk_row *r)
{
	free(r->change);
	free(r->state);
	free(r->reason);
	free(r->kind);
	free(r->actor);
	free(r->message);
	free(r->ids);
}

/* Runs sql with ?1..?n bound to the row's values (those it names). */
static int bulk_exec(struct store *s, const char *sql, const struct bulk_row *r)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(store_db(s), sql, -1, &q, NULL);

	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(q, 1, r->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, r->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, r->end_ms);
	sqlite3_bind_int64(q, 4, r->first_event);
	sqlite3_bind_int64(q, 5, r->time_ms);
	sqlite3_bind_text(q, 6, r->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, r->actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, r->message, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 9, (int64_t)r->n - 1);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * Every task's row and every event but the last (bulk_run wrote it), set
 * by set: the ids in a temporary table by their place (0, 1, ...), then
 * one statement for the rows and one for the events, whose ids follow the
 * first's in that order: a quarter cheaper than a statement per task.
 */
static int bulk_apply_row(struct store *s, const struct bulk_row *r)
{
	static const char *const rows_sql[] = {
		[STORE_BULK_END] = "UPDATE tasks SET state = ?1, reason = ?2, end_time = ?3"
				   " WHERE id IN (SELECT id FROM temp.bulk_ids)",
		[STORE_BULK_RELEASE] = "UPDATE tasks SET held = 0, reason = ?2"
				       " WHERE id IN (SELECT id FROM temp.bulk_ids)",
	};
	sqlite3 *db = store_db(s);
	sqlite3_stmt *q = NULL;
	int change, rc;

	if (!strcmp(r->change, bulk_changes[STORE_BULK_END])) {
		change = STORE_BULK_END;
	} else if (!strcmp(r->change, bulk_changes[STORE_BULK_RELEASE])) {
		change = STORE_BULK_RELEASE;
	} else {
		/* Only this file writes the rows: anything else is damage,
		 * dropped rather than tried again for ever. */
		log_err("store: task_bulk row %lld has an unknown change '%s': dropped",
			(long long)r->id, r->change);
		goto done;
	}
	rc = sqlite3_exec(db, "CREATE TEMP TABLE IF NOT EXISTS bulk_ids"
			  " (pos INTEGER PRIMARY KEY, id INTEGER NOT NULL);"
			  " DELETE FROM temp.bulk_ids", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "INSERT INTO temp.bulk_ids (pos, id) VALUES (?, ?)",
					-1, &q, NULL);
	for (size_t i = 0; i < r->n && rc == SQLITE_OK; i++) {
		sqlite3_bind_int64(q, 1, (int64_t)i);
		sqlite3_bind_int64(q, 2, (int64_t)bulk_id(r->ids, i));
		rc = step_done(q);
	}
	sqlite3_finalize(q);
	if (rc == SQLITE_OK)
		rc = bulk_exec(s, rows_sql[change], r);
	if (rc == SQLITE_OK)
		rc = bulk_exec(s, "INSERT INTO events (id, time, kind, task_id, node, team,"
			       " actor, message) SELECT ?4 + b.pos, ?5, ?6, b.id, '',"
			       " coalesce(t.team, ''), ?7, ?8 FROM temp.bulk_ids b"
			       " LEFT JOIN tasks t ON t.id = b.id WHERE b.pos < ?9"
			       " ORDER BY b.pos", r);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "DELETE FROM temp.bulk_ids", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return rc;
done:
	q = store_stmt(s, ST_BULK_DELETE);
	sqlite3_bind_int64(q, 1, r->id);
	return step_done(q);
}

int store_bulk_apply(struct store *s)
{
	sqlite3_stmt *q = store_stmt(s, ST_BULK_FIRST);
	int rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct bulk_row r = {
			.id = sqlite3_column_int64(q, 0),
			.change = col_dup(q, 1),
			.n = (size_t)sqlite3_column_bytes(q, 2) / 8,
			.first_event = sqlite3_column_int64(q, 3),
			.state = col_dup(q, 4),
			.reason = col_dup(q, 5),
			.end_ms = sqlite3_column_int64(q, 6),
			.time_ms = sqlite3_column_int64(q, 7),
			.kind = col_dup(q, 8),
			.actor = col_dup(q, 9),
			.message = col_dup(q, 10),
		};

		r.ids = xmalloc(r.n ? 8 * r.n : 1);
		if (r.n)
			memcpy(r.ids, sqlite3_column_blob(q, 2), 8 * r.n);
		sqlite3_reset(q);
		rc = bulk_apply_row(s, &r);
		bulk_row_free(&r);
		if (rc != SQLITE_OK)
			return rc;
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

void store_checkpoint_add(struct store *s, uint64_t task_id, uint32_t attempt, uint64_t step,
			  const char *path, int64_t time_ms)
{
	struct op *op = op_new(s, ST_CKPT_INSERT, 5);

	op_int(op, 0, (int64_t)task_id);
	op_int(op, 1, attempt);
	op_int(op, 2, (int64_t)step);
	op_text(op, 3, path);
	op_int(op, 4, time_ms);
}

static void read_task_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg);

/* ---------------------------------------------------------------- history */

struct history_req {
	uint64_t task_id, script_id;
	struct store_history h;
	store_history_fn fn;
	void *arg;
};

/* The batch script kept under hr->script_id, if any. */
static int history_script(struct store *s, struct history_req *hr)
{
	struct store_history *h = &hr->h;
	sqlite3_stmt *q;
	int rc;

	if (!hr->script_id)
		return SQLITE_OK;
	q = store_stmt(s, ST_SCRIPT_READ);
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, (int64_t)hr->script_id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		free(h->script);
		h->script_len = (size_t)sqlite3_column_bytes(q, 0);
		h->script = xmemdup(h->script_len ? sqlite3_column_blob(q, 0) : "", h->script_len);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int history_run(struct store *s, void *arg)
{
	struct history_req *hr = arg;
	struct store_history *h = &hr->h;
	sqlite3_stmt *q = store_stmt(s, ST_HIST_CKPTS);
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

	q = store_stmt(s, ST_HIST_EVENTS);
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
	if (rc != SQLITE_DONE)
		return rc;
	return history_script(s, hr);
}

static void history_free(struct history_req *hr)
{
	struct store_history *h = &hr->h;

	for (size_t i = 0; i < h->nckpts; i++)
		free(h->ckpts[i].path);
	free(h->ckpts);
	for (size_t i = 0; i < h->nevents; i++)
		event_free(&h->events[i]);
	free(h->events);
	free(h->script);
	free(hr);
}

static void history_done(void *arg, int status)
{
	struct history_req *hr = arg;

	hr->fn(hr->arg, status, status < 0 ? NULL : &hr->h);
	history_free(hr);
}

void store_read_history(struct store *s, uint64_t task_id, uint64_t script_id,
			store_history_fn fn, void *arg)
{
	struct history_req *hr = xcalloc(1, sizeof(*hr));

	hr->task_id = task_id;
	hr->script_id = script_id;
	hr->fn = fn;
	hr->arg = arg;
	store_call_read(s, history_run, history_done, hr);
}

/* ---------------------------------------------------------------- accounting */

struct acct_req {
	struct store_acct_filter f;
	struct store_acct_row *rows;
	struct store_acct_list l;
	char errbuf[256];
	store_acct_fn fn;
	void *arg;
};

/*
 * An array's indices that a cancel dropped before they had tasks of their
 * own (arrays.dropped) are one record, as Slurm's sacct shows an array's
 * cancelled pending rest (12_[5-99]): its first task's request (the
 * template every index was made from), CANCELLED, never started. They end
 * when they were dropped. No column keeps that: it is the time of the
 * newest of the array's drops that recorded an event (control.c: kind
 * cancel on its first task, "N pending indices of array A cancelled"),
 * else, its events deleted by [events] retain or dropped with no event of
 * its own (depend.c, kill_on_invalid_dep), the newest end of the array's
 * tasks, which ended with them, else its submit. [tasks] retain keeps
 * its first task while they are younger than it keeps tasks, as if they
 * were tasks of their own (tprune_run): once it deleted it, they have no
 * record, as its other tasks have none.
 */
#define DROPPED_END \
	"coalesce((SELECT max(e.time) FROM events e WHERE e.task_id = a.id AND e.kind = 'cancel'" \
	" AND e.message LIKE '% pending indices of array %'), (SELECT nullif(max(x.end_time), 0)" \
	" FROM tasks x WHERE x.array_id = a.id AND x.array_id != 0), t.submit_time)"
/*
 * ?8, ?9: the position a forward read starts at (store_acct_pos): a
 * task's row (id, 0) is at or after it when id > ?8, or id = ?8 and ?9 =
 * 0; an array's dropped record (id, 1) when id >= ?8. 0, 0 for the rest.
 */
#define ACCT_DROPPED \
	"SELECT id, name, team, user, class, pool, state, reason, nnodes, gpus, cpus, mem," \
	" node_names, attempts, submit_time, start_time, end_time, exit_code, time_limit_s," \
	" array_id, array_index, peak_mem, cpu_usec, preemptions, dropped FROM (SELECT t.id," \
	" t.name, t.team, t.user, t.class, t.pool, 'CANCELLED' AS state," \
	" 'cancelled while pending' AS reason, t.nnodes, t.gpus, t.cpus, t.mem," \
	" '' AS node_names, 0 AS attempts, t.submit_time, 0 AS start_time, " \
	DROPPED_END " AS end_time, NULL AS exit_code, t.time_limit_s, a.id AS array_id," \
	" 0 AS array_index, 0 AS peak_mem, 0 AS cpu_usec, 0 AS preemptions, a.dropped AS dropped" \
	" FROM arrays a CROSS JOIN tasks t ON t.id = a.id WHERE a.dropped != '' AND t.id >= ?8" \
	" AND (?3 IS NULL OR t.user = ?3) AND (?4 IS NULL OR t.team = ?4)" \
	" AND (?5 IS NULL OR t.name = ?5) AND (?6 IS NULL OR instr(?6, ',CANCELLED,') > 0))" \
	" WHERE end_time >= ?1 AND (?2 = 0 OR end_time < ?2)"
/* Every record, in no order yet (the ORDER BY follows). */
#define ACCT_ROWS \
	"SELECT id, name, team, user, class, pool, state, reason, nnodes, gpus, cpus, mem," \
	" node_names, attempts, submit_time, start_time, end_time, exit_code, time_limit_s," \
	" array_id, array_index, peak_mem, cpu_usec, preemptions, '' AS dropped FROM tasks" \
	" WHERE end_time != 0 AND end_time >= ?1 AND (?2 = 0 OR end_time < ?2)" \
	" AND (?3 IS NULL OR user = ?3) AND (?4 IS NULL OR team = ?4)" \
	" AND (?5 IS NULL OR name = ?5)" \
	" AND (?6 IS NULL OR instr(?6, ',' || state || ',') > 0)" \
	" AND id >= ?8 AND NOT (id = ?8 AND ?9 = 1)" \
	" UNION ALL " ACCT_DROPPED
/* Newest first, LIMIT ?7 OFFSET ?10; oldest first, LIMIT ?7. */
#define ACCT_NEWEST ACCT_ROWS " ORDER BY id DESC, dropped DESC LIMIT ?7 OFFSET ?10"
#define ACCT_FORWARD ACCT_ROWS " ORDER BY id ASC, dropped ASC LIMIT ?7"

static void acct_row_free(struct store_acct_row *r)
{
	free(r->name);
	free(r->team);
	free(r->user);
	free(r->cls);
	free(r->pool);
	free(r->state);
	free(r->reason);
	free(r->dropped);
	for (size_t i = 0; i < r->n_node_names; i++)
		free(r->node_names[i]);
	free(r->node_names);
}

static struct store_acct_pos acct_pos(sqlite3_stmt *q)
{
	return (struct store_acct_pos){ (uint64_t)sqlite3_column_int64(q, 0),
					sqlite3_column_bytes(q, 24) > 0 };
}

static void acct_row_read(sqlite3_stmt *q, struct store_acct_row *a)
{
	struct col_strv nodes;
	char **names;

	/* The row owns each name (acct_row_free): col_strv's point into one
	 * buffer of its own. */
	col_strv_names(&nodes, q, 12);
	names = nodes.n ? xcalloc(nodes.n, sizeof(*names)) : NULL;
	for (size_t i = 0; i < nodes.n; i++)
		names[i] = xstrdup(nodes.v[i]);
	*a = (struct store_acct_row){
		.id = (uint64_t)sqlite3_column_int64(q, 0),
		.name = col_dup(q, 1),
		.team = col_dup(q, 2),
		.user = col_dup(q, 3),
		.cls = col_dup(q, 4),
		.pool = col_dup(q, 5),
		.state = col_dup(q, 6),
		.reason = col_dup(q, 7),
		.nnodes = (uint32_t)sqlite3_column_int64(q, 8),
		.per_node = { sqlite3_column_int64(q, 9), sqlite3_column_int64(q, 10),
			      sqlite3_column_int64(q, 11) },
		.node_names = names,
		.n_node_names = nodes.n,
		.attempts = (uint32_t)sqlite3_column_int64(q, 13),
		.submit_ms = sqlite3_column_int64(q, 14),
		.start_ms = sqlite3_column_int64(q, 15),
		.end_ms = sqlite3_column_int64(q, 16),
		.has_exit_code = sqlite3_column_type(q, 17) != SQLITE_NULL,
		.exit_code = (int32_t)sqlite3_column_int64(q, 17),
		.time_limit_s = (uint64_t)sqlite3_column_int64(q, 18),
		.array_id = (uint64_t)sqlite3_column_int64(q, 19),
		.array_index = (uint32_t)sqlite3_column_int64(q, 20),
		.peak_mem = (uint64_t)sqlite3_column_int64(q, 21),
		.cpu_usec = (uint64_t)sqlite3_column_int64(q, 22),
		.preemptions = (uint32_t)sqlite3_column_int64(q, 23),
		.dropped = col_dup(q, 24),
	};
	col_strv_free(&nodes);
}

static int acct_prepare(sqlite3 *db, const char *sql, const struct store_acct_filter *f,
			int64_t limit, int64_t offset, sqlite3_stmt **ret)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);

	*ret = q;
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(q, 1, f->since_ms);
	sqlite3_bind_int64(q, 2, f->until_ms);
	if (f->user)
		sqlite3_bind_text(q, 3, f->user, -1, SQLITE_STATIC);
	if (f->team)
		sqlite3_bind_text(q, 4, f->team, -1, SQLITE_STATIC);
	if (f->name)
		sqlite3_bind_text(q, 5, f->name, -1, SQLITE_STATIC);
	if (f->states)
		sqlite3_bind_text(q, 6, f->states, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 7, limit);
	sqlite3_bind_int64(q, 8, f->forward ? (int64_t)f->from.id : 0);
	sqlite3_bind_int(q, 9, f->forward && f->from.dropped);
	if (sqlite3_bind_parameter_count(q) >= 10)
		sqlite3_bind_int64(q, 10, offset);
	return SQLITE_OK;
}

/* forward with newest: where the newest f->newest records begin. */
static int acct_find_newest(sqlite3 *db, struct store_acct_filter *f, bool *truncated)
{
	sqlite3_stmt *q;
	int rc = acct_prepare(db, ACCT_NEWEST, f, 2, (int64_t)(f->newest - 1), &q);

	if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		f->from = acct_pos(q);
		*truncated = (rc = sqlite3_step(q)) == SQLITE_ROW;
	}
	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE;
	sqlite3_finalize(q);
	return rc;
}

static int acct_run(struct store *s, void *arg)
{
	struct acct_req *r = arg;
	struct store_acct_filter f = r->f;
	sqlite3 *db = store_db(s);
	sqlite3_stmt *q = NULL;
	size_t n = 0;
	int rc = SQLITE_DONE;

	/* A rerun (store.h) starts over. */
	for (size_t i = 0; i < r->l.n; i++)
		acct_row_free(&r->rows[i]);
	r->l.n = 0;
	r->l.truncated = r->l.more = false;
	if (f.forward && f.newest)
		rc = acct_find_newest(db, &f, &r->l.truncated);
	if (rc == SQLITE_DONE)
		rc = acct_prepare(db, f.forward ? ACCT_FORWARD : ACCT_NEWEST, &f,
				  (int64_t)f.limit + 1, 0, &q);
	if (rc == SQLITE_OK) {
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			if (n == f.limit) {
				/* One row too many: there is more (newest first:
				 * older ones, which the limit leaves out). */
				if (f.forward) {
					r->l.more = true;
					r->l.next = acct_pos(q);
				} else {
					r->l.truncated = true;
				}
				continue;
			}
			r->rows = xreallocarray(r->rows, n + 1, sizeof(*r->rows));
			acct_row_read(q, &r->rows[n++]);
			r->l.n = n;
		}
	}
	if (rc != SQLITE_DONE)
		read_failed(db, r->errbuf, sizeof(r->errbuf), &r->l.error);
	sqlite3_finalize(q);
	if (!f.forward)
		rows_reverse(r->rows, n, sizeof(*r->rows));
	r->l.v = r->rows;
	r->l.n = n;
	return SQLITE_OK;
}

static void acct_done(void *arg, int status)
{
	struct acct_req *r = arg;

	r->fn(r->arg, status, status < 0 ? NULL : &r->l);
	for (size_t i = 0; i < r->l.n; i++)
		acct_row_free(&r->rows[i]);
	free(r->rows);
	free((char *)r->f.user);
	free((char *)r->f.team);
	free((char *)r->f.name);
	free((char *)r->f.states);
	free(r);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void store_acct_read(struct store *s, const struct store_acct_filter *f, store_acct_fn fn,
		     void *arg)
{
	struct acct_req *r = xcalloc(1, sizeof(*r));

	r->f = *f;
	r->f.user = dup_or_null(f->user);
	r->f.team = dup_or_null(f->team);
	r->f.name = dup_or_null(f->name);
	r->f.states = dup_or_null(f->states);
	r->fn = fn;
	r->arg = arg;
	store_call_read(s, acct_run, acct_done, r);
}

/* ---------------------------------------------------------------- load */

static void read_task_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	struct col_strv node_names, argv, env, recipe_params;
	struct store_checkpoint ck = { 0 };
	struct store_task_row t = {
		.id = (uint64_t)sqlite3_column_int64(q, 0),
		.name = col_text(q, 1),
		.team = col_text(q, 2),
		.user = col_text(q, 3),
		.uid = (uint32_t)sqlite3_column_int64(q, 4),
		.gid = (uint32_t)sqlite3_column_int64(q, 5),
		.cls = col_text(q, 6),
		.pool = col_text(q, 7),
		.state = col_text(q, 8),
		.reason = col_text(q, 9),
		.nnodes = (uint32_t)sqlite3_column_int64(q, 10),
		.per_node = { sqlite3_column_int64(q, 11), sqlite3_column_int64(q, 12),
			      sqlite3_column_int64(q, 13) },
		.nodes_done = col_text(q, 15),
		.attempts = (uint32_t)sqlite3_column_int64(q, 16),
		.submit_ms = sqlite3_column_int64(q, 17),
		.start_ms = sqlite3_column_int64(q, 18),
		.end_ms = sqlite3_column_int64(q, 19),
		.has_exit_code = sqlite3_column_type(q, 20) != SQLITE_NULL,
		.exit_code = (int32_t)sqlite3_column_int64(q, 20),
		.time_limit_s = (uint64_t)sqlite3_column_int64(q, 21),
		.preempt_signal = (int32_t)sqlite3_column_int64(q, 22),
		.grace_s = (uint64_t)sqlite3_column_int64(q, 23),
		.checkpoint_dir = col_text(q, 24),
		.cwd = col_text(q, 25),
		.cancel_requested = sqlite3_column_int64(q, 28) != 0,
		.array_id = (uint64_t)sqlite3_column_int64(q, 33),
		.array_index = (uint32_t)sqlite3_column_int64(q, 34),
		.output = col_text(q, 35),
		.error = col_text(q, 36),
		.dependency = col_text(q, 37),
		.kill_on_invalid_dep = sqlite3_column_int64(q, 38) != 0,
		.held = sqlite3_column_int64(q, 39) != 0,
		.submit_dir = col_text(q, 40),
		.ntasks_per_node = (uint32_t)sqlite3_column_int64(q, 41),
		.peak_mem = (uint64_t)sqlite3_column_int64(q, 42),
		.cpu_usec = (uint64_t)sqlite3_column_int64(q, 43),
		.preemptions = (uint32_t)sqlite3_column_int64(q, 44),
		.requeue_by = col_text(q, 46),
		.recipe = col_text(q, 47),
		.recipe_version = col_text(q, 48),
		.plan = col_text(q, 50),
	};
	bool has_ck = sqlite3_column_type(q, 29) != SQLITE_NULL;

	if (sqlite3_column_type(q, 45) != SQLITE_NULL) {
		t.script = sqlite3_column_blob(q, 45);
		t.script_len = (size_t)sqlite3_column_bytes(q, 45);
		if (!t.script)
			t.script = "";
	}

	col_strv_names(&node_names, q, 14);
	col_strv_blob(&argv, q, 26);
	col_strv_blob(&env, q, 27);
	col_strv_blob(&recipe_params, q, 49);
	t.recipe_params = recipe_params.v;
	t.n_recipe_params = recipe_params.n;
	t.node_names = node_names.v;
	t.n_node_names = node_names.n;
	t.argv = argv.v;
	t.argc = argv.n;
	t.env = env.v;
	t.envc = env.n;
	if (has_ck) {
		ck.attempt = (uint32_t)sqlite3_column_int64(q, 29);
		ck.step = (uint64_t)sqlite3_column_int64(q, 30);
		ck.path = col_dup(q, 31);
		ck.time_ms = sqlite3_column_int64(q, 32);
	}
	cb->on_task(arg, &t, has_ck ? &ck : NULL);
	free(ck.path);
	col_strv_free(&node_names);
	col_strv_free(&argv);
	col_strv_free(&env);
	col_strv_free(&recipe_params);
}

/* The columns of a task row as read_task_row reads them. Not the environment:
 * nobody keeps it in memory (RunTask reads it, store_read_run). Nor the
 * script, only whether one is kept for the task: its own, or its array's,
 * kept once under the array's id, for each index alike (an index told it
 * has none would start without it). */
#define TASK_COLS \
	"SELECT t.id, t.name, t.team, t.user, t.uid, t.gid, t.class, t.pool, t.state," \
	" t.reason, t.nnodes, t.gpus, t.cpus, t.mem, t.node_names, t.nodes_done," \
	" t.attempts, t.submit_time, t.start_time, t.end_time, t.exit_code," \
	" t.time_limit_s, t.preempt_signal, t.grace_s, t.checkpoint_dir, t.cwd, t.argv," \
	" x'', t.cancel_requested, c.attempt, c.step, c.path, c.time, t.array_id," \
	" t.array_index, t.output, t.error, t.dependency, t.kill_on_invalid_dep, t.held," \
	" t.submit_dir, t.ntasks_per_node, t.peak_mem, t.cpu_usec, t.preemptions," \
	" CASE WHEN s.id IS NULL THEN NULL ELSE x'' END," \
	" t.requeue_by, t.recipe, t.recipe_version, t.recipe_params, t.plan" \
	" FROM tasks t LEFT JOIN checkpoints c" \
	" ON c.id = (SELECT max(id) FROM checkpoints WHERE task_id = t.id)" \
	" LEFT JOIN scripts s ON s.id = CASE WHEN t.array_id != 0 THEN t.array_id ELSE t.id END"

/* An array's first task while its array has indices left: its template. */
#define ARRAY_TEMPLATE "(SELECT id FROM arrays WHERE pending != '')"

/* The ended tasks that are not loaded. */
#define GONE_WHERE \
	" state NOT IN " LIVE_STATES " AND (end_time = 0 OR end_time < ?1)" \
	" AND id NOT IN " ARRAY_TEMPLATE

/* Each query reads an index, not the table: the start never reads the
 * rows of the tasks that ended long ago. */
static const struct {
	enum store_gone_kind kind;
	const char *sql;
} gone_queries[] = {
	/* An array that left and did not all complete counts as a task that
	 * did not (array_gone_completed). */
	{ STORE_GONE_BAD, "SELECT id FROM tasks WHERE state IN " BAD_STATES " AND" GONE_WHERE
			  " UNION SELECT id FROM tasks_gone_bad UNION SELECT id FROM arrays"
			  " WHERE " ARRAYS_LEFT_BAD " ORDER BY id" },
	/* Before the indices: those of these arrays join them. */
	{ STORE_GONE_ARRAY_LEFT, "SELECT id, spec, dropped FROM arrays WHERE " ARRAYS_LEFT_BAD
				 " ORDER BY id" },
	/* Only the indices that did not complete: the others are the rest
	 * (array_load_done), but for an array whose dropped indices are not
	 * known yet, which counts them from every row. */
	{ STORE_GONE_ARRAY, "SELECT array_id, state, array_index FROM tasks WHERE array_id != 0 AND"
			    " (state IN " BAD_STATES " OR array_id IN (SELECT id FROM arrays WHERE"
			    " dropped IS NULL)) AND" GONE_WHERE
			    " UNION ALL SELECT array_id, 'FAILED', array_index FROM arrays_gone_bad" },
	/* with what the deleted rows left (tprune_run): a team and state
	 * can come twice, and the counts add up */
	{ STORE_GONE_TEAM, "SELECT team, state, count(*), sum(attempts) FROM tasks WHERE"
			   GONE_WHERE " GROUP BY team, state"
			   " UNION ALL SELECT team, state, count, attempts FROM tasks_gone_counts" },
	{ STORE_GONE_MAX, "SELECT max(id) FROM tasks WHERE ?1 = ?1" },
};

static int read_gone_rows(struct store *s, const struct store_loader *cb, void *arg)
{
	for (size_t i = 0; i < sizeof(gone_queries) / sizeof(gone_queries[0]); i++) {
		sqlite3_stmt *q;
		int rc = sqlite3_prepare_v2(store_db(s), gone_queries[i].sql, -1, &q, NULL);

		if (rc != SQLITE_OK)
			return rc;
		sqlite3_bind_int64(q, 1, cb->ended_since_ms);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			struct store_gone_row g = { .kind = gone_queries[i].kind };

			switch (g.kind) {
			case STORE_GONE_BAD:
			case STORE_GONE_MAX:
				g.id = (uint64_t)sqlite3_column_int64(q, 0);
				break;
			case STORE_GONE_ARRAY_LEFT:
				g.array_id = (uint64_t)sqlite3_column_int64(q, 0);
				g.spec = col_text(q, 1);
				g.dropped = col_text(q, 2);
				break;
			case STORE_GONE_ARRAY:
				g.array_id = (uint64_t)sqlite3_column_int64(q, 0);
				g.state = col_text(q, 1);
				g.index = (uint32_t)sqlite3_column_int64(q, 2);
				break;
			case STORE_GONE_TEAM:
				g.team = col_text(q, 0);
				g.state = col_text(q, 1);
				g.count = (uint64_t)sqlite3_column_int64(q, 2);
				g.attempts = (uint64_t)sqlite3_column_int64(q, 3);
				break;
			}
			cb->on_gone(arg, &g);
		}
		sqlite3_finalize(q);
		if (rc != SQLITE_DONE)
			return rc;
	}
	return SQLITE_OK;
}

int store_load_tasks(struct store *s, const struct store_loader *cb, void *arg)
{
	sqlite3_stmt *q;
	int rc;

	if (cb->ended_since_ms <= 0)
		return store_load_rows(s, TASK_COLS " ORDER BY t.id", read_task_row, cb, arg);
	/* The ids from the indices (tasks_state, tasks_end), then the rows by
	 * id: the rows of tasks that ended long ago are never read. */
	rc = sqlite3_prepare_v2(store_db(s), TASK_COLS
				" WHERE t.id IN (SELECT id FROM tasks WHERE state IN " LIVE_STATES
				" UNION SELECT id FROM tasks WHERE end_time != 0 AND end_time >= ?1"
				" UNION SELECT id FROM tasks WHERE id IN " ARRAY_TEMPLATE ")"
				" ORDER BY t.id", -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(q, 1, cb->ended_since_ms);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		read_task_row(q, cb, arg);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return rc;
	return cb->on_gone ? read_gone_rows(s, cb, arg) : SQLITE_OK;
}

/* ---------------------------------------------------------------- a task no longer in memory */

struct task_hist_req {
	struct history_req hr;
	bool script;
	store_make_fn make;
	uint64_t array_id;           /* hr.task_id 0: the task of this array's index */
	uint32_t index;
	int64_t dropped_ms;          /* when index was dropped, if it was (DROPPED_END) */
};

static void made_row(void *arg, const struct store_task_row *row,
		     const struct store_checkpoint *newest)
{
	struct task_hist_req *r = arg;

	if (!r->hr.h.task) {
		r->hr.h.task = r->make(row, newest);
		if (r->script)
			r->hr.script_id = row->array_id ? row->array_id : row->id;
	}
}

/*
 * An index that a cancel dropped before it had a task of its own (in its
 * array's dropped) has no row: it is its array's first task's request,
 * never started, CANCELLED, as it would be had it been cancelled once
 * materialized, ending when it was dropped (as hpq acct's record of it).
 * Its history is not that task's: none.
 */
static void made_dropped(void *arg, const struct store_task_row *row,
			 const struct store_checkpoint *newest)
{
	struct task_hist_req *r = arg;
	struct store_task_row t = *row;

	t.array_index = r->index;
	t.state = "CANCELLED";
	t.reason = "cancelled while pending";
	t.node_names = NULL;
	t.n_node_names = 0;
	t.nodes_done = "";
	t.attempts = 0;
	t.start_ms = 0;
	t.end_ms = r->dropped_ms;
	t.has_exit_code = false;
	t.exit_code = 0;
	t.cancel_requested = false;
	t.held = false;
	t.peak_mem = t.cpu_usec = 0;
	t.preemptions = 0;
	t.requeue_by = "";
	made_row(arg, &t, NULL);
}

/* Whether index is one a cancel dropped from array array_id, and when. */
static int index_dropped(struct store *s, uint64_t array_id, uint32_t index, bool *dropped,
			 int64_t *when_ms)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(store_db(s), "SELECT a.dropped, " DROPPED_END " FROM arrays a"
				    " LEFT JOIN tasks t ON t.id = a.id WHERE a.id = ?1", -1, &q,
				    NULL);

	*dropped = false;
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(q, 1, (int64_t)array_id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*dropped = hpq_index_list_has(col_text(q, 0), index);
		*when_ms = sqlite3_column_int64(q, 1);
	}
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int task_hist_run(struct store *s, void *arg)
{
	struct task_hist_req *r = arg;
	struct store_loader cb = { .on_task = made_row };
	bool dropped = false;
	sqlite3_stmt *q;
	int rc;

	if (!r->hr.task_id && r->array_id) {
		rc = sqlite3_prepare_v2(store_db(s), "SELECT id FROM tasks WHERE array_id = ?1"
					" AND array_index = ?2", -1, &q, NULL);
		if (rc != SQLITE_OK)
			return rc;
		sqlite3_bind_int64(q, 1, (int64_t)r->array_id);
		sqlite3_bind_int64(q, 2, r->index);
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW)
			r->hr.task_id = (uint64_t)sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
		if (rc == SQLITE_DONE)
			rc = index_dropped(s, r->array_id, r->index, &dropped, &r->dropped_ms);
		else if (rc == SQLITE_ROW)
			rc = SQLITE_OK;
		if (rc != SQLITE_OK || (!r->hr.task_id && !dropped))
			return rc;
	}
	rc = sqlite3_prepare_v2(store_db(s), TASK_COLS " WHERE t.id = ?1", -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	if (dropped)
		cb.on_task = made_dropped;
	sqlite3_bind_int64(q, 1, (int64_t)(dropped ? r->array_id : r->hr.task_id));
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		read_task_row(q, &cb, r);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return rc;
	if (!r->hr.h.task)
		return SQLITE_OK;
	return dropped ? history_script(s, &r->hr) : history_run(s, &r->hr);
}

/* h goes to fn whatever the status: what make made is fn's to free. */
static void task_hist_done(void *arg, int status)
{
	struct history_req *hr = arg;

	hr->fn(hr->arg, status, &hr->h);
	history_free(hr);
}

void store_read_index_history(struct store *s, uint64_t array_id, uint32_t index, bool script,
			      store_make_fn make, store_history_fn fn, void *arg)
{
	struct task_hist_req *r = xcalloc(1, sizeof(*r));

	r->array_id = array_id;
	r->index = index;
	r->hr.fn = fn;
	r->hr.arg = arg;
	r->script = script;
	r->make = make;
	store_call_read(s, task_hist_run, task_hist_done, r);
}

void store_read_task_history(struct store *s, uint64_t task_id, bool script, store_make_fn make,
			     store_history_fn fn, void *arg)
{
	struct task_hist_req *r = xcalloc(1, sizeof(*r));

	/* history_free frees &r->hr, which is r. */
	r->hr.task_id = task_id;
	r->hr.fn = fn;
	r->hr.arg = arg;
	r->script = script;
	r->make = make;
	store_call_read(s, task_hist_run, task_hist_done, r);
}

/* ---------------------------------------------------------------- what RunTask needs */

struct run_req {
	uint64_t task_id, script_id;
	struct col_strv env;
	bool has_env;
	char *script;
	size_t script_len;
	int read_rc;                 /* the read's own SQLite result */
	store_run_fn_t fn;
	void *arg;
};

/*
 * Runs among the batch's changes, so it reads what they wrote (a task
 * submitted and started in one iteration); run again from the start when
 * their transaction failed and is tried again. A failed read fails only
 * itself, not the transaction, unless it ended the transaction (an I/O
 * error): then nothing else may run outside it.
 */
static int run_read_run(struct store *s, void *arg)
{
	struct run_req *r = arg;
	sqlite3_stmt *q;
	int rc;

	/* A rerun starts over. */
	if (r->has_env)
		col_strv_free(&r->env);
	r->has_env = false;
	free(r->script);
	r->script = NULL;
	q = store_stmt(s, ST_ENV_READ);
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, (int64_t)r->task_id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		col_strv_blob(&r->env, q, 0);
		r->has_env = true;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(q);
	if (rc == SQLITE_DONE && r->script_id) {
		q = store_stmt(s, ST_SCRIPT_READ);
		sqlite3_reset(q);
		sqlite3_bind_int64(q, 1, (int64_t)r->script_id);
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW) {
			r->script_len = (size_t)sqlite3_column_bytes(q, 0);
			r->script = xmemdup(r->script_len ? sqlite3_column_blob(q, 0) : "",
					    r->script_len);
			rc = SQLITE_DONE;
		}
		sqlite3_reset(q);
	}
	r->read_rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	return sqlite3_get_autocommit(store_db(s)) ? r->read_rc : SQLITE_OK;
}

static void run_done(void *arg, int status)
{
	struct run_req *r = arg;
	struct store_run run = {
		.env = r->has_env ? r->env.v : NULL,
		.envc = r->has_env ? r->env.n : 0,
		.script = r->script,
		.script_len = r->script_len,
	};

	r->fn(r->arg, status, status < 0 || r->read_rc != SQLITE_OK ? NULL : &run);
	if (r->has_env)
		col_strv_free(&r->env);
	free(r->script);
	free(r);
}

void store_read_run(struct store *s, uint64_t task_id, uint64_t script_id, store_run_fn_t fn,
		    void *arg)
{
	struct run_req *r = xcalloc(1, sizeof(*r));

	r->task_id = task_id;
	r->script_id = script_id;
	r->fn = fn;
	r->arg = arg;
	store_call(s, run_read_run, run_done, r);
}

/* ---------------------------------------------------------------- retention */

/* The statement of a prune batch whose changes are the rows it deleted. */
static const char tprune_delete_tasks[] =
	"DELETE FROM tasks WHERE id IN (SELECT id FROM temp.prune_ids)";

/*
 * A prune batch. It never deletes an array's row: the row's spec is the
 * only record of which indices the array had once its tasks are gone,
 * and without it a dependency on an index it never had would count as
 * completed (store_read_indices). A row is a few dozen bytes, and a start
 * does not read those of arrays that left (ARRAYS_LEFT).
 */
static int tprune_run(struct store *s, void *arg)
{
	static const char *const sql[] = {
		/* The batch: the oldest ended tasks, never an array's first task
		 * while its array has indices left to run (their environment
		 * and script are its). */
		"CREATE TEMP TABLE IF NOT EXISTS prune_ids (id INTEGER PRIMARY KEY, array_id INTEGER)",
		"DELETE FROM temp.prune_ids",
		/* never the newest: ids must keep growing from it after a restart */
		("INSERT INTO temp.prune_ids SELECT id, array_id FROM tasks WHERE end_time != 0"
		 " AND end_time < ?1 AND state NOT IN " LIVE_STATES
		 " AND id NOT IN " ARRAY_TEMPLATE
		 " AND id NOT IN (SELECT array_id FROM tasks WHERE state IN " LIVE_STATES
		 " AND array_id != 0)"
		 /* nor while its indices that a cancel dropped are younger
		  * than retain keeps tasks: their record is its (hpq acct,
		  * hpq show ID_INDEX) */
		 " AND id NOT IN (SELECT a.id FROM arrays a CROSS JOIN tasks t ON t.id = a.id WHERE"
		 " a.dropped != '' AND " DROPPED_END " >= ?1)"
		 " AND id < (SELECT max(id) FROM tasks) ORDER BY end_time LIMIT ?2"),
		/* how the ones that did not complete ended outlives their rows */
		("INSERT OR IGNORE INTO tasks_gone_bad SELECT id FROM tasks WHERE id IN"
		 " (SELECT id FROM temp.prune_ids) AND state IN " BAD_STATES),
		/* and an array's index's, by its index: the rest of the array
		 * completed (array_load_done) */
		("INSERT OR IGNORE INTO arrays_gone_bad SELECT array_id, array_index FROM tasks"
		 " WHERE id IN (SELECT id FROM temp.prune_ids) AND array_id != 0 AND state IN "
		 BAD_STATES),
		/* and what they counted, for the metrics' totals */
		("INSERT INTO tasks_gone_counts (team, state, count, attempts)"
		 " SELECT team, state, count(*), sum(attempts) FROM tasks WHERE id IN"
		 " (SELECT id FROM temp.prune_ids) GROUP BY team, state"
		 " ON CONFLICT (team, state) DO UPDATE SET count = count + excluded.count,"
		 " attempts = attempts + excluded.attempts"),
		"DELETE FROM checkpoints WHERE task_id IN (SELECT id FROM temp.prune_ids)",
		"DELETE FROM task_env WHERE id IN (SELECT id FROM temp.prune_ids)",
		tprune_delete_tasks,
		/* A script goes with its task, an array's once no task of it is left. */
		("DELETE FROM scripts WHERE id IN (SELECT id FROM temp.prune_ids UNION"
		 " SELECT array_id FROM temp.prune_ids WHERE array_id != 0)"
		 " AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = scripts.id)"
		 /* array_id != 0 lets it use tasks_array, a partial index:
		  * without it, a scan of every task for each script */
		 " AND NOT EXISTS (SELECT 1 FROM tasks WHERE array_id = scripts.id"
		 " AND array_id != 0)"),
		"DELETE FROM temp.prune_ids",
	};
	struct store_prune_req *r = arg;
	sqlite3 *db = store_db(s);
	int rc = SQLITE_OK;

	r->p.deleted = 0;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && rc == SQLITE_OK; i++) {
		sqlite3_stmt *q = NULL;

		rc = sqlite3_prepare_v2(db, sql[i], -1, &q, NULL);
		if (rc != SQLITE_OK)
			break;
		if (sqlite3_bind_parameter_count(q) >= 2) {
			sqlite3_bind_int64(q, 1, r->before_ms);
			sqlite3_bind_int64(q, 2, r->max_rows);
		}
		rc = sqlite3_step(q);
		if (rc == SQLITE_DONE) {
			rc = SQLITE_OK;
			if (sql[i] == tprune_delete_tasks)
				r->p.deleted = sqlite3_changes(db);
		}
		sqlite3_finalize(q);
	}
	/* A failed delete only delays pruning; it must not break the store. */
	if (rc != SQLITE_OK)
		read_failed(db, r->errbuf, sizeof(r->errbuf), &r->p.error);
	return SQLITE_OK;
}

void store_tasks_prune(struct store *s, int64_t before_ms, uint32_t max_rows, store_prune_fn fn,
		       void *arg)
{
	store_call_prune(s, before_ms, max_rows, tprune_run, fn, arg);
}
