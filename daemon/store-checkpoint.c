/*
 * store-checkpoint.c: the WAL's checkpoints, off the commit path.
 *
 * SQLite's own automatic checkpoint runs inside the commit that takes the
 * WAL past 1,000 pages: that commit copies every page back into the
 * database and syncs the database file before it returns, and every
 * change queued behind it waits; on a loaded daemon that was a stall of
 * tens of milliseconds several times a second. Here a thread of its own,
 * on a second connection, does that copying and syncing (PASSIVE: it
 * never blocks the writer), while the storage thread goes on committing.
 *
 * A passive checkpoint cannot catch up with a writer that never pauses,
 * and the WAL starts again from its beginning only once every page in it
 * is back in the database. So when a pass leaves little behind (at most
 * CKPT_TAIL pages), the storage thread finishes the job itself after its
 * next commit: a few pages and one sync of the database, where it used
 * to do all of them. Past CKPT_HARD pages (a checkpointer that cannot keep
 * up, or a reader holding an old snapshot) it checkpoints in full at
 * once, as SQLite would have: the WAL never grows without bound.
 *
 * Threads: the hook runs on whichever thread commits on the main
 * connection (the storage thread; the loop only after it has joined it);
 * the pass runs on the checkpointer's thread; they meet under mu.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "log.h"
#include "store-checkpoint.h"
#include "xalloc.h"

#define CKPT_SOFT 1000          /* pages in the WAL: time for a pass */
#define CKPT_TAIL 64            /* left after a pass: the writer finishes */
#define CKPT_HARD 8000          /* the writer checkpoints, whatever is running */

struct checkpointer {
	sqlite3 *main, *db;     /* the store's connection; this thread's own */
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cv;
	bool want;              /* under mu: the writer asks for a pass */
	bool busy;              /* under mu: a pass is running */
	bool finish;            /* under mu: little is left; the writer ends it */
	bool quit;              /* under mu */
	_Atomic uint64_t passes, finished, forced;
};

static void checkpoint_thread(void *arg)
{
	struct checkpointer *c = arg;

	pthread_setname_np(pthread_self(), "hpqd-ckpt");
	uv_mutex_lock(&c->mu);
	for (;;) {
		int rc, log_pages = 0, done_pages = 0;

		while (!c->want && !c->quit)
			uv_cond_wait(&c->cv, &c->mu);
		if (c->quit)
			break;
		c->want = false;
		c->busy = true;
		uv_mutex_unlock(&c->mu);

		rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_pages,
					       &done_pages);
		if (rc == SQLITE_OK)
			atomic_fetch_add(&c->passes, 1);
		else if ((rc & 0xff) != SQLITE_BUSY)
			log_debug("store: background checkpoint: %s", sqlite3_errmsg(c->db));

		uv_mutex_lock(&c->mu);
		c->busy = false;
		if (rc == SQLITE_OK && log_pages - done_pages <= CKPT_TAIL)
			c->finish = true;
	}
	uv_mutex_unlock(&c->mu);
}

/* After each commit on the main connection: pages is the WAL's length. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct checkpointer *c = arg;
	bool inline_now = false, forced = false;

	if (pages < CKPT_SOFT)
		return SQLITE_OK;
	uv_mutex_lock(&c->mu);
	if (c->finish || pages >= CKPT_HARD) {
		forced = !c->finish;
		c->finish = false;
		inline_now = true;
	} else if (!c->busy && !c->want) {
		c->want = true;
		uv_cond_signal(&c->cv);
	}
	uv_mutex_unlock(&c->mu);
	/* Busy: the checkpointer is in a pass; the next commit tries again. */
	if (inline_now &&
	    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) == SQLITE_OK)
		atomic_fetch_add(forced ? &c->forced : &c->finished, 1);
	return SQLITE_OK;
}

/* main's PRAGMA synchronous (0 to 3); FULL if it cannot be read. */
static int sync_level(sqlite3 *main)
{
	sqlite3_stmt *q;
	int level = 2;

	if (sqlite3_prepare_v2(main, "PRAGMA synchronous", -1, &q, NULL) != SQLITE_OK)
		return level;
	if (sqlite3_step(q) == SQLITE_ROW)
		level = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return level >= 0 && level <= 3 ? level : 2;
}

struct checkpointer *checkpointer_start(sqlite3 *main, const char *path)
{
	struct checkpointer *c = xcalloc(1, sizeof(*c));
	char pragma[32];
	int rc;

	c->main = main;
	snprintf(pragma, sizeof(pragma), "PRAGMA synchronous = %d", sync_level(main));
	rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	/* One read opens the WAL for this connection; the checkpoint syncs
	 * as the store's commits do. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->db, pragma, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		log_notice("store: checkpoints stay in the commits: a second connection to '%s' "
			   "failed: %s", path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	if (uv_mutex_init(&c->mu) < 0 || uv_cond_init(&c->cv) < 0 ||
	    uv_thread_create(&c->thread, checkpoint_thread, c) < 0)
		hpq_fatal("cannot start the checkpoint thread");
	/* This replaces SQLite's automatic checkpoint (its own WAL hook). */
	sqlite3_wal_hook(main, on_wal, c);
	return c;
}

void checkpointer_stop(struct checkpointer *c)
{
	if (!c)
		return;
	/* SQLite's own again, for what is committed from here on. */
	sqlite3_wal_autocheckpoint(c->main, CKPT_SOFT);
	uv_mutex_lock(&c->mu);
	c->quit = true;
	uv_cond_signal(&c->cv);
	uv_mutex_unlock(&c->mu);
	uv_thread_join(&c->thread);
	uv_cond_destroy(&c->cv);
	uv_mutex_destroy(&c->mu);
	if (sqlite3_close(c->db) != SQLITE_OK)
		log_warn("store: closing the checkpoint connection: %s", sqlite3_errmsg(c->db));
	free(c);
}

void checkpointer_counts(const struct checkpointer *c, uint64_t *passes, uint64_t *finished,
			 uint64_t *forced)
{
	*passes = c ? atomic_load(&c->passes) : 0;
	*finished = c ? atomic_load(&c->finished) : 0;
	*forced = c ? atomic_load(&c->forced) : 0;
}
