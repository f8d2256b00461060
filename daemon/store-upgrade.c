/*
 * store-upgrade.c: the tables of upgrade insights (schema version 9):
 * deprecated_uses, written by deprecation.c and loaded at start, and
 * backups, written by hpqd --backup from its own process and read by
 * hpq upgrade-check (store.h, "upgrade insights").
 *
 * The rows are few and written seldom, so the SQL is prepared where it
 * runs instead of joining the store's table of prepared statements.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "store-internal.h"

struct deprecated_put {
	char *what, *who;
	int64_t first_ms, last_ms;
	uint64_t count;
};

/* May run again after a failed commit: it writes absolute values. */
static int deprecated_put_run(struct store *s, void *arg)
{
	struct deprecated_put *p = arg;
	sqlite3_stmt *q = NULL;
	int rc;

	rc = sqlite3_prepare_v2(store_db(s), "INSERT OR REPLACE INTO deprecated_uses (what, who,"
				" first_seen_ms, last_seen_ms, count) VALUES (?,?,?,?,?)", -1, &q,
				NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(q, 1, p->what, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, p->who, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, p->first_ms);
	sqlite3_bind_int64(q, 4, p->last_ms);
	sqlite3_bind_int64(q, 5, (int64_t)p->count);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void deprecated_put_done(void *arg, int status)
{
	struct deprecated_put *p = arg;

	(void)status;
	free(p->what);
	free(p->who);
	free(p);
}

void store_deprecated_put(struct store *s, const struct store_deprecated_row *r)
{
	struct deprecated_put *p = xcalloc(1, sizeof(*p));

	p->what = xstrdup(r->what);
	p->who = xstrdup(r->who);
	p->first_ms = r->first_seen_ms;
	p->last_ms = r->last_seen_ms;
	p->count = r->count;
	store_call(s, deprecated_put_run, deprecated_put_done, p);
}

int store_deprecated_load(struct store *s,
			  void (*cb)(void *arg, const struct store_deprecated_row *r), void *arg,
			  char *err, size_t errlen)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *q = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT what, who, first_seen_ms, last_seen_ms, count FROM"
				" deprecated_uses ORDER BY what, who", -1, &q, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_deprecated_row r = {
			.what = col_text(q, 0),
			.who = col_text(q, 1),
			.first_seen_ms = sqlite3_column_int64(q, 2),
			.last_seen_ms = sqlite3_column_int64(q, 3),
			.count = (uint64_t)sqlite3_column_int64(q, 4),
		};

		cb(arg, &r);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		rc = hpq_errf(err, errlen, HPQ_ESTORAGE, "reading deprecated_uses: %s",
			      sqlite3_errmsg(db));
	else
		rc = 0;
	sqlite3_finalize(q);
	return rc;
}

struct backup_read {
	store_backup_fn fn;
	void *arg;
	struct store_backup_info b;
	char *path;
	char errbuf[128];
};

static int backup_read_run(struct store *s, void *arg)
{
	struct backup_read *r = arg;
	sqlite3 *db = store_db(s);
	sqlite3_stmt *q = NULL;
	int64_t size = 0;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT path, time_ms, bytes, schema FROM backups"
				" ORDER BY time_ms DESC, id DESC LIMIT 1", -1, &q, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		free(r->path);
		r->path = col_dup(q, 0);
		r->b.has = true;
		r->b.path = r->path;
		r->b.time_ms = sqlite3_column_int64(q, 1);
		r->b.bytes = (uint64_t)sqlite3_column_int64(q, 2);
		r->b.schema = (uint32_t)sqlite3_column_int(q, 3);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(q);
	q = NULL;
	if (rc == SQLITE_DONE &&
	    (rc = sqlite3_prepare_v2(db, "SELECT page_count * page_size FROM"
				     " pragma_page_count(), pragma_page_size()", -1, &q,
				     NULL)) == SQLITE_OK &&
	    (rc = sqlite3_step(q)) == SQLITE_ROW) {
		size = sqlite3_column_int64(q, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(q);
	r->b.db_bytes = size > 0 ? (uint64_t)size : 0;
	if (rc != SQLITE_DONE)
		read_failed(db, r->errbuf, sizeof(r->errbuf), &r->b.error);
	return SQLITE_OK;
}

static void backup_read_done(void *arg, int status)
{
	struct backup_read *r = arg;

	r->fn(r->arg, status < 0 ? status : r->b.error ? HPQ_ESTORAGE : 0, &r->b);
	free(r->path);
	free(r);
}

void store_backup_latest(struct store *s, store_backup_fn fn, void *arg)
{
	struct backup_read *r = xcalloc(1, sizeof(*r));

	r->fn = fn;
	r->arg = arg;
	store_call_read(s, backup_read_run, backup_read_done, r);
}

int store_backup_record(const char *db_path, const char *path, int64_t time_ms, uint64_t bytes,
			uint32_t schema, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	struct stat sb;
	int rc, r = 0;

	/* Writing may create the -wal and -shm files: as another user (root)
	 * they could lock hpqd's own user out of its database. */
	if (stat(db_path, &sb) < 0)
		return hpq_errf(err, errlen, -errno, "cannot record the backup in '%s': %s",
				db_path, strerror(errno));
	if (sb.st_uid != geteuid())
		return hpq_errf(err, errlen, HPQ_EPERM, "the backup is not recorded in '%s': run "
				"hpqd --backup as the database's owner (uid %u) to record it",
				db_path, (unsigned)sb.st_uid);
	rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, 5000);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "INSERT INTO backups (path, time_ms, bytes, schema)"
					" VALUES (?,?,?,?)", -1, &q, NULL);
	if (rc != SQLITE_OK) {
		/* A database of schema 8 or older has no backups table. */
		r = hpq_errf(err, errlen, strstr(db ? sqlite3_errmsg(db) : "", "no such table")
					  ? -ENOENT : HPQ_ESTORAGE,
			     "cannot record the backup in '%s': %s", db_path,
			     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, time_ms);
	sqlite3_bind_int64(q, 3, (int64_t)bytes);
	sqlite3_bind_int(q, 4, (int)schema);
	if (sqlite3_step(q) != SQLITE_DONE)
		r = hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot record the backup in '%s': %s",
			     db_path, sqlite3_errmsg(db));
out:
	sqlite3_finalize(q);
	sqlite3_close(db);
	return r;
}
