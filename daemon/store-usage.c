/*
 * store-usage.c: the usage table (schema version 2): hourly buckets of
 * GPU-milliseconds that daemon/usage.c adds to, and their sums for
 * `hpq usage`.
 */
#include <stdlib.h>

#include "store-internal.h"

const struct stmt_def store_usage_stmts[] = {
	{ ST_USAGE_ADD,
	  "INSERT INTO usage (hour, dim, key, pool, used_ms, within_ms, borrowed_ms, lent_ms)"
	  " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (hour, dim, key, pool) DO UPDATE SET"
	  " used_ms = used_ms + excluded.used_ms,"
	  " within_ms = within_ms + excluded.within_ms,"
	  " borrowed_ms = borrowed_ms + excluded.borrowed_ms,"
	  " lent_ms = lent_ms + excluded.lent_ms" },
	{ ST_COUNT, NULL },
};

void store_usage_add(struct store *s, const struct store_usage_row *u)
{
	struct op *op = op_new(s, ST_USAGE_ADD, 8);

	op_int(op, 0, u->hour);
	op_text(op, 1, u->dim);
	op_text(op, 2, u->key);
	op_text(op, 3, u->pool);
	op_int(op, 4, u->used_ms);
	op_int(op, 5, u->within_ms);
	op_int(op, 6, u->borrowed_ms);
	op_int(op, 7, u->lent_ms);
}

struct usage_req {
	char *dim;
	int64_t since_hour;
	store_usage_fn fn;
	void *arg;
	struct store_usage_sum *sums;
	struct store_usage_list l;
	char errbuf[128];
};

static int usage_run(struct store *s, void *arg)
{
	struct usage_req *r = arg;
	sqlite3 *db = store_db(s);
	sqlite3_stmt *q = NULL;
	size_t n = 0;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT key, pool, sum(used_ms), sum(within_ms),"
				" sum(borrowed_ms), sum(lent_ms) FROM usage WHERE dim = ?1"
				" AND hour >= ?2 GROUP BY key, pool ORDER BY key, pool", -1, &q,
				NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(q, 1, r->dim, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, r->since_hour);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			r->sums = xreallocarray(r->sums, n + 1, sizeof(*r->sums));
			r->sums[n++] = (struct store_usage_sum){
				.key = col_dup(q, 0),
				.pool = col_dup(q, 1),
				.used_ms = sqlite3_column_int64(q, 2),
				.within_ms = sqlite3_column_int64(q, 3),
				.borrowed_ms = sqlite3_column_int64(q, 4),
				.lent_ms = sqlite3_column_int64(q, 5),
			};
		}
	}
	if (rc != SQLITE_DONE)
		read_failed(db, r->errbuf, sizeof(r->errbuf), &r->l.error);
	sqlite3_finalize(q);
	r->l.v = r->sums;
	r->l.n = n;
	return SQLITE_OK;
}

static void usage_done(void *arg, int status)
{
	struct usage_req *r = arg;

	r->fn(r->arg, status, status < 0 ? NULL : &r->l);
	for (size_t i = 0; i < r->l.n; i++) {
		free((char *)r->sums[i].key);
		free((char *)r->sums[i].pool);
	}
	free(r->sums);
	free(r->dim);
	free(r);
}

void store_usage_read(struct store *s, const char *dim, int64_t since_hour, store_usage_fn fn,
		      void *arg)
{
	struct usage_req *r = xcalloc(1, sizeof(*r));

	r->dim = xstrdup(dim);
	r->since_hour = since_hour;
	r->fn = fn;
	r->arg = arg;
	store_call_read(s, usage_run, usage_done, r);
}
