/*
 * store-events.c: the events table: recording events, reading them for
 * `hpq events`, the newest id and recent marks events.c seeds itself with,
 * and pruning in bounded batches.
 */
#include <stdio.h>
#include <stdlib.h>

#include "store-internal.h"

const struct stmt_def store_event_stmts[] = {
	{ ST_EVENT_INSERT,
	  "INSERT INTO events (time, kind, task_id, node, team, actor, message)"
	  " VALUES (?,?,?,?,?,?,?)" },
	{ ST_COUNT, NULL },
};

void store_event_add(struct store *s, const struct store_event *ev)
{
	struct op *op = op_new(s, ST_EVENT_INSERT, 7);

	op_int(op, 0, ev->time_ms);
	op_text(op, 1, ev->kind);
	if (ev->task_id)
		op_int(op, 2, (int64_t)ev->task_id);
	op_text(op, 3, ev->node);
	op_text(op, 4, ev->team);
	op_text(op, 5, ev->actor);
	op_text(op, 6, ev->message);
}

/* ---------------------------------------------------------------- reading */

struct events_req {
	struct store_event_filter f;     /* team and node owned */
	store_events_fn fn;
	void *arg;
	struct store_event *rows;
	struct store_event_list l;
	char errbuf[128];
};

void event_free(struct store_event *e)
{
	free((char *)e->kind);
	free((char *)e->node);
	free((char *)e->team);
	free((char *)e->actor);
	free((char *)e->message);
}

static int events_run(struct store *s, void *arg)
{
	struct events_req *r = arg;
	const struct store_event_filter *f = &r->f;
	sqlite3 *db = store_db(s);
	sqlite3_stmt *q = NULL;
	char sql[512];
	size_t n = 0;
	int rc;

	snprintf(sql, sizeof(sql),
		 "SELECT id, time, kind, task_id, node, team, actor, message FROM events"
		 " WHERE time >= ?1%s%s%s ORDER BY id DESC LIMIT ?5",
		 f->task_id ? " AND task_id = ?2" : "", f->team ? " AND team = ?3" : "",
		 f->node ? " AND node = ?4" : "");
	rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, f->since_ms);
		if (f->task_id)
			sqlite3_bind_int64(q, 2, (int64_t)f->task_id);
		if (f->team)
			sqlite3_bind_text(q, 3, f->team, -1, SQLITE_STATIC);
		if (f->node)
			sqlite3_bind_text(q, 4, f->node, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 5, (int64_t)f->limit + 1);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			struct store_event *e;

			if (n == f->limit) {
				r->l.truncated = true;
				continue;
			}
			r->rows = xreallocarray(r->rows, n + 1, sizeof(*r->rows));
			e = &r->rows[n++];
			e->id = (uint64_t)sqlite3_column_int64(q, 0);
			e->time_ms = sqlite3_column_int64(q, 1);
			e->kind = col_dup(q, 2);
			e->task_id = (uint64_t)sqlite3_column_int64(q, 3);
			e->node = col_dup(q, 4);
			e->team = col_dup(q, 5);
			e->actor = col_dup(q, 6);
			e->message = col_dup(q, 7);
		}
	}
	if (rc != SQLITE_DONE)
		read_failed(db, r->errbuf, sizeof(r->errbuf), &r->l.error);
	sqlite3_finalize(q);
	/* Read newest first to keep the newest; handed out oldest first. */
	rows_reverse(r->rows, n, sizeof(*r->rows));
	r->l.v = r->rows;
	r->l.n = n;
	return SQLITE_OK;
}

static void events_done(void *arg, int status)
{
	struct events_req *r = arg;

	r->fn(r->arg, status, status < 0 ? NULL : &r->l);
	for (size_t i = 0; i < r->l.n; i++)
		event_free(&r->rows[i]);
	free(r->rows);
	free((char *)r->f.team);
	free((char *)r->f.node);
	free(r);
}

void store_events_read(struct store *s, const struct store_event_filter *f, store_events_fn fn,
		       void *arg)
{
	struct events_req *r = xcalloc(1, sizeof(*r));

	r->f = *f;
	r->f.team = f->team ? xstrdup(f->team) : NULL;
	r->f.node = f->node ? xstrdup(f->node) : NULL;
	r->fn = fn;
	r->arg = arg;
	store_call_read(s, events_run, events_done, r);
}

/* ---------------------------------------------------------------- marks */

struct marks_req {
	char *kind;
	int64_t since_ms;
	store_marks_fn fn;
	void *arg;
	struct store_event_mark *marks;
	struct store_event_marks m;
	char errbuf[128];
};

static int marks_run(struct store *s, void *arg)
{
	struct marks_req *r = arg;
	sqlite3 *db = store_db(s);
	sqlite3_stmt *q = NULL;
	size_t n = 0;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM events", -1, &q, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		r->m.max_id = (uint64_t)sqlite3_column_int64(q, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(q);
	q = NULL;
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT task_id, time FROM events WHERE"
					" kind = ?1 AND time >= ?2 ORDER BY time", -1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(q, 1, r->kind, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, r->since_ms);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			r->marks = xreallocarray(r->marks, n + 1, sizeof(*r->marks));
			r->marks[n++] = (struct store_event_mark){
				(uint64_t)sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1)
			};
		}
	}
	if (rc == SQLITE_DONE) {
		r->m.v = r->marks;
		r->m.n = n;
	} else {
		read_failed(db, r->errbuf, sizeof(r->errbuf), &r->m.error);
	}
	sqlite3_finalize(q);
	return SQLITE_OK;
}

static void marks_done(void *arg, int status)
{
	struct marks_req *r = arg;

	r->fn(r->arg, status, status < 0 ? NULL : &r->m);
	free(r->marks);
	free(r->kind);
	free(r);
}

void store_events_marks(struct store *s, const char *kind, int64_t since_ms, store_marks_fn fn,
			void *arg)
{
	struct marks_req *r = xcalloc(1, sizeof(*r));

	r->kind = xstrdup(kind);
	r->since_ms = since_ms;
	r->fn = fn;
	r->arg = arg;
	store_call_read(s, marks_run, marks_done, r);
}

/* ---------------------------------------------------------------- pruning */

static int prune_run(struct store *s, void *arg)
{
	struct store_prune_req *r = arg;
	sqlite3 *db = store_db(s);
	sqlite3_stmt *q = NULL;
	int rc;

	/* Never the newest row: ids must keep growing from it (marks_run). */
	rc = sqlite3_prepare_v2(db, "DELETE FROM events WHERE id IN (SELECT id FROM events"
				" WHERE time < ?1 AND id < (SELECT max(id) FROM events)"
				" ORDER BY time LIMIT ?2)", -1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, r->before_ms);
		sqlite3_bind_int64(q, 2, r->max_rows);
		rc = sqlite3_step(q);
		r->p.deleted = sqlite3_changes(db);
	}
	/* A failed delete only delays pruning; it must not break the store. */
	if (rc != SQLITE_DONE)
		read_failed(db, r->errbuf, sizeof(r->errbuf), &r->p.error);
	sqlite3_finalize(q);
	return SQLITE_OK;
}

void store_events_prune(struct store *s, int64_t before_ms, uint32_t max_rows, store_prune_fn fn,
			void *arg)
{
	store_call_prune(s, before_ms, max_rows, prune_run, fn, arg);
}
