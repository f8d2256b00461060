/*
 * store-rows.c: reading rows back (store-internal.h): a query's rows handed
 * to a callback one at a time, as the load does, and the columns that
 * hold lists (argv, env, labels as NUL-separated blobs; names joined with
 * commas).
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store-internal.h"
#include "xalloc.h"

int store_load_rows(struct store *s, const char *sql, load_row_fn row,
		    const struct store_loader *cb, void *arg)
{
	sqlite3_stmt *q;
	int rc;

	rc = sqlite3_prepare_v2(store_db(s), sql, -1, &q, NULL);
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
