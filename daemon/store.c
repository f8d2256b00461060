/*
 * store.c: the store's engine (store.h): the storage thread with its
 * group commits and completions, and the store's health. It knows no
 * table. store-open.c opens and migrates the database and prepares every
 * table family's statements; each family's rows live in a file of their
 * own (store-tasks.c, store-teams.c, store-nodes.c, store-events.c,
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

#include <sqlite3.h>

#include "clock.h"
#include "error.h"
#include "log.h"
#include "store-core.h"
#include "store-internal.h"
#include "store.h"
#include "xalloc.h"

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
	checkpointer_counts(s->ckpt, &out->background, &out->finished, &out->forced);
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
	int rc = s->bulk_apply(s);

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
	rc = store_exec(s->db, "BEGIN IMMEDIATE");
	if (rc == SQLITE_OK)
		rc = bulk_apply(s);
	if (rc == SQLITE_OK)
		rc = store_exec(s->db, "COMMIT");
	if (rc != SQLITE_OK) {
		log_warn("store: cannot write the rows of a change of many tasks yet (%s): "
			 "trying again with the next commit", sqlite3_errmsg(s->db));
		if (!sqlite3_get_autocommit(s->db))
			store_exec(s->db, "ROLLBACK");
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

	rc = store_exec(s->db, "BEGIN IMMEDIATE");
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
	rc = store_exec(s->db, "COMMIT");
	if (rc != SQLITE_OK)
		goto rollback;
	log_debug("store: committed %zu rows", nops);
	return SQLITE_OK;
rollback:
	note_failure(s, rc, f);
	store_exec(s->db, "ROLLBACK");
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
				store_exec(s->db, "BEGIN");
			begun = true;
			run_read(s, b, op);
		}
	}
	if (begun && !sqlite3_get_autocommit(s->db) && store_exec(s->db, "COMMIT") != SQLITE_OK)
		store_exec(s->db, "ROLLBACK");
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

/* ---------------------------------------------------------------- open (store-open.c), close */

/* The engine's own statements (store-core.h). */
const struct stmt_def store_core_stmts[] = {
	{ ST_PROBE, "INSERT OR REPLACE INTO meta (key, value) VALUES ('store-probe', ?)" },
	{ ST_COUNT, NULL },
};

struct store *store_new(const char *path, unsigned flags)
{
	struct store *s = xcalloc(1, sizeof(*s));
	const char *slash = strrchr(path, '/');

	s->flags = flags;
	s->todo_tail = &s->todo;
	s->finished_tail = &s->finished;
	s->held_tail = &s->held;
	s->path = xstrdup(path);
	s->dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : xstrdup(".");
	s->free_bytes = UINT64_MAX;
	s->retry_ms = STORE_RETRY_MIN_MS;
	s->bulk_pending = true;      /* a crash may have left some: store_load looks */
	return s;
}

/*
 * One small write at start. A database that cannot be written (read-only
 * here, for all its file modes say) is refused now, not at its first
 * change; a full or failing disk makes the store degraded from the start:
 * it serves reads and retries on its own.
 */
int store_probe(struct store *s, char *err, size_t errlen)
{
	struct failure f = { 0 };
	sqlite3_stmt *q = s->stmts[ST_PROBE];
	char words[200];
	int rc;

	rc = store_exec(s->db, "BEGIN IMMEDIATE");
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, hpq_now_ms());
		rc = sqlite3_step(q);
		sqlite3_reset(q);
		if (rc == SQLITE_DONE)
			rc = store_exec(s->db, "COMMIT");
	}
	if (rc != SQLITE_OK)
		note_failure(s, rc, &f);
	if (!sqlite3_get_autocommit(s->db))
		store_exec(s->db, "ROLLBACK");
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

void store_close_db(struct store *s)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(s->stmts[i]);
		s->stmts[i] = NULL;
	}
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		log_warn("closing the state database: %s", sqlite3_errmsg(s->db));
	s->db = NULL;
}

void store_free(struct store *s)
{
	free(s->path);
	free(s->dir);
	free(s);
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
		s->ckpt = checkpointer_start(s->db, s->path);
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
		store_close_db(s);
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
	store_close_db(s);
	uv_mutex_destroy(&s->mu);
	uv_cond_destroy(&s->cv);
	uv_close((uv_handle_t *)&s->watch, on_handle_closed);
	uv_close((uv_handle_t *)&s->async, on_handle_closed);
}
