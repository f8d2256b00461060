/*
 * backup.c: hpqd --backup PATH, an online copy of the state database
 * (backup.h).
 *
 * It runs as its own process next to a live hpqd: SQLite's backup API
 * reads the database through an ordinary read transaction (the database
 * is in WAL mode, so hpqd keeps committing while it reads), a few hundred
 * pages per step, and restarts on its own if hpqd changes a page it has
 * already copied. The copy is written to PATH.tmp, checked with
 * `PRAGMA integrity_check`, made durable and renamed into place: PATH is
 * either a whole, consistent database or absent. PATH must not exist.
 * The copy is then recorded in the live database's backups table (its
 * path, time, size and schema) for hpq upgrade-check.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "clock.h"
#include "error.h"
#include "path.h"
#include "store.h"
#include "xalloc.h"

#define PAGES_PER_STEP 256
#define BUSY_WAIT_MS 5000

static int integrity(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL);
	const char *v;

	if (rc != SQLITE_OK)
		return hpq_errf(err, errlen, HPQ_ESTORAGE, "checking the copy: %s",
				sqlite3_errmsg(db));
	rc = sqlite3_step(q);
	v = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
	if (!v || strcmp(v, "ok")) {
		rc = hpq_errf(err, errlen, HPQ_ESTORAGE, "the copy fails its integrity check: %s",
			      v ? v : sqlite3_errmsg(db));
		sqlite3_finalize(q);
		return rc;
	}
	sqlite3_finalize(q);
	return 0;
}

static int user_version(sqlite3 *db)
{
	sqlite3_stmt *q;
	int v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return v;
}

int backup_run(const char *db_path, const char *path, struct backup_result *res, char *err,
	       size_t errlen)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b = NULL;
	char *tmp = NULL;
	struct stat sb;
	int rc, r = 0;

	memset(res, 0, sizeof(*res));
	if (!*path)
		return hpq_errf(err, errlen, HPQ_EINVAL, "--backup needs a file to write");
	if (lstat(path, &sb) == 0)
		return hpq_errf(err, errlen, HPQ_EEXIST, "'%s' exists: a backup never overwrites "
				"a file; give a new name", path);
	if (stat(db_path, &sb) < 0)
		return hpq_errf(err, errlen, HPQ_ENOTFOUND, "no state database '%s': %s "
				"(--state-dir or [hpqd] state_dir names it)", db_path,
				strerror(errno));
	xasprintf(&tmp, "%s.tmp", path);
	unlink(tmp);
	rc = sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(src, BUSY_WAIT_MS);
	if (rc != SQLITE_OK) {
		r = hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot open '%s': %s", db_path,
			     src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
		goto out;
	}
	res->schema = user_version(src);
	rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		r = hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot create '%s': %s", tmp,
			     dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		goto out;
	}
	b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		r = hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot start the backup: %s",
			     sqlite3_errmsg(dst));
		goto out;
	}
	do {
		rc = sqlite3_backup_step(b, PAGES_PER_STEP);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(10);
	} while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	res->pages = (uint64_t)sqlite3_backup_pagecount(b);
	sqlite3_backup_finish(b);
	b = NULL;
	if (rc != SQLITE_DONE) {
		r = hpq_errf(err, errlen, HPQ_ESTORAGE, "backup of '%s' failed: %s", db_path,
			     sqlite3_errstr(rc));
		goto out;
	}
	/* The copy stands alone: one file, no WAL beside it. */
	if (sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != SQLITE_OK ||
	    (r = integrity(dst, err, errlen)) < 0) {
		if (!r)
			r = hpq_errf(err, errlen, HPQ_ESTORAGE, "finishing the copy: %s",
				     sqlite3_errmsg(dst));
		goto out;
	}
	sqlite3_close(dst);
	dst = NULL;
	if ((rc = hpq_path_sync_file(tmp)) < 0) {
		r = hpq_errf(err, errlen, rc, "cannot flush '%s': %s", tmp, strerror(-rc));
		goto out;
	}
	if (link(tmp, path) < 0) {       /* never replaces a file made meanwhile */
		r = hpq_errf(err, errlen, -errno, "cannot put the copy at '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	unlink(tmp);
	hpq_path_sync_dir_of(path);
	if (stat(path, &sb) == 0)
		res->bytes = (uint64_t)sb.st_size;
	{
		char *abs = realpath(path, NULL);

		res->recorded = store_backup_record(db_path, abs ? abs : path, hpq_now_ms(),
						    res->bytes, (uint32_t)res->schema,
						    res->record_error,
						    sizeof(res->record_error)) == 0;
		free(abs);
	}
out:
	if (b)
		sqlite3_backup_finish(b);
	sqlite3_close(dst);
	sqlite3_close(src);
	if (r < 0)
		unlink(tmp);
	free(tmp);
	return r;
}
