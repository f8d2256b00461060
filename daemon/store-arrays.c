/*
 * store-arrays.c: the arrays table (store.h, array.h): one row per task
 * array, rewritten whenever its pending indices, its % limit or its hold
 * change. A start that leaves old ended tasks in the store loads only
 * the arrays that may still be in memory (ARRAYS_LEFT). A dependency on
 * an index of an array that left memory is checked against its row here
 * (store_read_indices).
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "batchspec.h"
#include "store-internal.h"
#include "store.h"

const struct stmt_def store_array_stmts[] = {
	{ ST_ARRAY_PUT,
	  "INSERT OR REPLACE INTO arrays (id, spec, pending, max_running, held, dependency,"
	  " dropped) VALUES (?,?,?,?,?,?,?)" },
	{ ST_COUNT, NULL },
};

void store_array_put(struct store *s, const struct store_array_row *a)
{
	struct op *op = op_new(s, ST_ARRAY_PUT, 7);

	op_int(op, 0, (int64_t)a->id);
	op_text(op, 1, a->spec);
	op_text(op, 2, a->pending);
	op_int(op, 3, a->max_running);
	op_int(op, 4, a->held);
	op_text(op, 5, a->dependency ? a->dependency : "");
	op_text(op, 6, a->dropped ? a->dropped : "");
}

/* ---------------------------------------------------------------- indices named by a dependency */

struct indices_req {
	store_indices_fn fn;
	void *arg;
	size_t n;
	struct store_index_query q[];
};

static int index_known(sqlite3 *db, struct store_index_query *x)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(db, "SELECT spec FROM arrays WHERE id = ?1", -1, &q, NULL);

	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(q, 1, (int64_t)x->id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		x->known = hpq_index_list_has(col_text(q, 0), x->index) ? STORE_INDEX_OF
								       : STORE_INDEX_NOT_OF;
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return rc == SQLITE_ROW ? SQLITE_OK : rc;
	/* No array row: a task of its own, or nothing left to tell (an
	 * earlier hpqd deleted the row of an array with its last task). */
	rc = sqlite3_prepare_v2(db, "SELECT array_id FROM tasks WHERE id = ?1", -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(q, 1, (int64_t)x->id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && (uint64_t)sqlite3_column_int64(q, 0) != x->id)
		x->known = STORE_INDEX_NOT_ARRAY;
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int indices_run(struct store *s, void *arg)
{
	struct indices_req *r = arg;
	int rc = SQLITE_OK;

	for (size_t i = 0; i < r->n && rc == SQLITE_OK; i++) {
		r->q[i].known = STORE_INDEX_UNKNOWN;
		rc = index_known(store_db(s), &r->q[i]);
	}
	return rc;
}

static void indices_done(void *arg, int status)
{
	struct indices_req *r = arg;

	r->fn(r->arg, status, r->q, r->n);
	free(r);
}

void store_read_indices(struct store *s, const struct store_index_query *q, size_t n,
			store_indices_fn fn, void *arg)
{
	struct indices_req *r = xcalloc(1, sizeof(*r) + n * sizeof(r->q[0]));

	r->fn = fn;
	r->arg = arg;
	r->n = n;
	memcpy(r->q, q, n * sizeof(r->q[0]));
	store_call_read(s, indices_run, indices_done, r);
}

static void array_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	struct store_array_row a = {
		.id = (uint64_t)sqlite3_column_int64(q, 0),
		.spec = col_text(q, 1),
		.pending = col_text(q, 2),
		.max_running = (uint32_t)sqlite3_column_int64(q, 3),
		.held = sqlite3_column_int64(q, 4) != 0,
		.dependency = col_text(q, 5),
		/* NULL: a row from before version 16 (array_load_done) */
		.dropped = sqlite3_column_type(q, 6) == SQLITE_NULL ? NULL : col_text(q, 6),
	};

	cb->on_array(arg, &a);
}

int store_load_arrays(struct store *s, const struct store_loader *cb, void *arg)
{
	sqlite3_stmt *q;
	int rc;

	if (cb->ended_since_ms <= 0 || !cb->on_gone)
		return store_load_rows(s, "SELECT id, spec, pending, max_running, held,"
				       " dependency, dropped FROM arrays ORDER BY id", array_row,
				       cb, arg);
	/* Not the arrays that ended and left, as many as ever ran: on_gone
	 * hears of those that did not all complete. */
	rc = sqlite3_prepare_v2(store_db(s), "SELECT id, spec, pending, max_running, held,"
				" dependency, dropped FROM arrays WHERE NOT (" ARRAYS_LEFT ")"
				" ORDER BY id", -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(q, 1, cb->ended_since_ms);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		array_row(q, cb, arg);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
