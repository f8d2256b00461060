/*
 * store-batch.c: what the loop thread hands the storage thread (store.c):
 * the open batch, its ops (a statement and a copy of each value bound to
 * it) in memory of the batch's own, and the calls and completions that
 * run with it (store-internal.h); and the connection and prepared
 * statements those ops and calls run with (store_db, store_stmt).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>   /* no-ops unless built with ASan */
#include <sqlite3.h>

#include "log.h"
#include "store-core.h"
#include "store-internal.h"
#include "xalloc.h"

/*
 * Where a batch's ops and their values live: chunks that grow from a
 * small first one (a few rows, the usual batch) to BATCH_CHUNK_MAX, and
 * are freed together with the ops. Allocating each op and each copied
 * text with malloc took a tenth of hpqd's loop at 10,000 nodes: an op of
 * a task row is over 1 KiB, a "large" request that made malloc
 * consolidate its small free chunks every time. Under AddressSanitizer
 * what no value was given stays poisoned, so that running past a value
 * is caught as it would be past a malloc'd one.
 */
#define BATCH_CHUNK_FIRST 1000u   /* under 1 KiB: served from glibc's thread cache */
#define BATCH_CHUNK_MAX (64u << 10)

struct chunk {
	struct chunk *prev;
	size_t size, used;
	max_align_t data[];
};

sqlite3 *store_db(struct store *s)
{
	return s->db;
}

sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id)
{
	return s->stmts[id];
}

static struct batch *open_batch(struct store *s)
{
	if (!s->open)
		s->open = xcalloc(1, sizeof(*s->open));
	return s->open;
}

/* n bytes of b's memory, aligned for anything; freed with its ops. */
static void *batch_mem(struct batch *b, size_t n)
{
	struct chunk *c = b->mem;
	size_t a = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	void *p;

	if (a < n)
		hpq_fatal("store: a value of %zu bytes", n);
	if (!c || c->size - c->used < a) {
		size_t size = c ? (c->size < BATCH_CHUNK_MAX / 4 ? 4 * c->size : BATCH_CHUNK_MAX)
				: BATCH_CHUNK_FIRST - sizeof(*c);

		if (size < a)
			size = a;
		c = xmalloc(sizeof(*c) + size);
		c->prev = b->mem;
		c->size = size;
		c->used = 0;
		b->mem = c;
		ASAN_POISON_MEMORY_REGION(c->data, size);
	}
	p = (char *)c->data + c->used;
	c->used += a;
	ASAN_UNPOISON_MEMORY_REGION(p, n);
	return p;
}

void batch_add(struct batch *b, struct op *op)
{
	if (b->nops == b->capops) {
		b->capops = b->capops ? 2 * b->capops : 16;
		b->ops = xreallocarray(b->ops, b->capops, sizeof(*b->ops));
	}
	b->ops[b->nops++] = op;
}

/* An op of b with n values, all NULL, not yet among b's ops. */
struct op *op_alloc(struct batch *b, enum stmt_id stmt, unsigned n)
{
	size_t size = sizeof(struct op) + n * sizeof(struct val);
	struct op *op = memset(batch_mem(b, size), 0, size);

	op->batch = b;
	op->stmt = stmt;
	op->n = n;
	return op;
}

struct op *op_new(struct store *s, enum stmt_id stmt, unsigned n)
{
	struct batch *b = open_batch(s);
	struct op *op = op_alloc(b, stmt, n);

	batch_add(b, op);
	return op;
}

void op_text(struct op *op, unsigned i, const char *s)
{
	size_t len = s ? strlen(s) : 0;
	char *p = batch_mem(op->batch, len + 1);

	memcpy(p, s ? s : "", len);
	p[len] = '\0';
	op->v[i].type = V_TEXT;
	op->v[i].p = p;
}

char *op_blob_room(struct op *op, unsigned i, size_t more)
{
	struct val *v = &op->v[i];

	if (more > SIZE_MAX / 2 - v->len)
		hpq_fatal("store: a value of %zu bytes", v->len + more);
	if (v->len + more > (size_t)v->i) {
		size_t cap = v->i ? 2 * (size_t)v->i : 512;
		char *p;

		while (cap < v->len + more)
			cap *= 2;
		p = batch_mem(op->batch, cap);
		if (v->len)
			memcpy(p, v->p, v->len);
		v->p = p;
		v->i = (int64_t)cap;
	}
	v->type = V_BLOB;
	return v->p + v->len;
}

struct op *store_last_op(struct store *s)
{
	return s->open && s->open->nops ? s->open->ops[s->open->nops - 1] : NULL;
}

void op_strv(struct op *op, unsigned i, char *const *strv, size_t n)
{
	size_t len = 0, off = 0;
	char *p;

	for (size_t k = 0; k < n; k++)
		len += strlen(strv[k]) + 1;
	p = batch_mem(op->batch, len ? len : 1);
	for (size_t k = 0; k < n; k++) {
		size_t l = strlen(strv[k]) + 1;

		memcpy(p + off, strv[k], l);
		off += l;
	}
	op->v[i].type = V_BLOB;
	op->v[i].p = p;
	op->v[i].len = len;
}

void rows_reverse(void *rows, size_t n, size_t size)
{
	char *v = rows, tmp[256];

	if (size > sizeof(tmp))
		hpq_fatal("rows_reverse: rows of %zu bytes", size);
	for (size_t i = 0; i < n / 2; i++) {
		memcpy(tmp, v + i * size, size);
		memcpy(v + i * size, v + (n - 1 - i) * size, size);
		memcpy(v + (n - 1 - i) * size, tmp, size);
	}
}

void op_blob(struct op *op, unsigned i, const void *p, size_t len)
{
	char *b = batch_mem(op->batch, len ? len : 1);

	memcpy(b, p, len);
	op->v[i].type = V_BLOB;
	op->v[i].p = b;
	op->v[i].len = len;
}

void op_names(struct op *op, unsigned i, char *const *names, size_t n)
{
	size_t len = 1;
	char *p, *q;

	for (size_t k = 0; k < n; k++)
		len += strlen(names[k]) + 1;
	p = q = batch_mem(op->batch, len);
	*p = '\0';
	for (size_t k = 0; k < n; k++) {
		size_t l = strlen(names[k]);

		if (k)
			*q++ = ',';
		memcpy(q, names[k], l);
		q += l;
		*q = '\0';
	}
	op->v[i].type = V_TEXT;
	op->v[i].p = p;
}

void batch_free_ops(struct batch *b)
{
	for (struct chunk *c = b->mem, *prev; c; c = prev) {
		prev = c->prev;
		ASAN_UNPOISON_MEMORY_REGION(c->data, c->size);
		free(c);
	}
	b->mem = NULL;
	free(b->ops);
	b->ops = NULL;
	b->nops = b->capops = 0;
}

/* A held batch keeps its rows; its reads have run. (Their memory goes
 * with the rows'.) */
void batch_free_reads(struct batch *b)
{
	size_t k = 0;

	for (size_t i = 0; i < b->nops; i++)
		if (!b->ops[i]->read)
			b->ops[k++] = b->ops[i];
	b->nops = k;
}

void batch_free(struct batch *b)
{
	batch_free_ops(b);
	free(b->dones);
	free(b);
}

void store_after_commit(struct store *s, store_done_fn fn, void *arg)
{
	struct batch *b = open_batch(s);

	if (b->ndones == b->capdones) {
		b->capdones = b->capdones ? 2 * b->capdones : 8;
		b->dones = xreallocarray(b->dones, b->capdones, sizeof(*b->dones));
	}
	b->dones[b->ndones++] = (struct done){ fn, arg, false, 0 };
}

void store_call(struct store *s, store_run_fn run, store_done_fn done, void *arg)
{
	struct op *op = op_new(s, ST_COUNT, 0);

	op->run = run;
	op->arg = arg;
	store_after_commit(s, done, arg);
}

void store_call_read(struct store *s, store_run_fn run, store_done_fn done, void *arg)
{
	struct op *op = op_new(s, ST_COUNT, 0);
	struct batch *b = s->open;

	op->run = run;
	op->arg = arg;
	op->read = true;
	op->done_idx = b->ndones;
	store_after_commit(s, done, arg);
	b->dones[op->done_idx].read = true;
}

static void prune_done(void *arg, int status)
{
	struct store_prune_req *r = arg;

	r->fn(r->arg, status, status < 0 ? NULL : &r->p);
	free(r);
}

void store_call_prune(struct store *s, int64_t before_ms, uint32_t max_rows, store_run_fn run,
		      store_prune_fn fn, void *arg)
{
	struct store_prune_req *r = xcalloc(1, sizeof(*r));

	r->before_ms = before_ms;
	r->max_rows = max_rows;
	r->fn = fn;
	r->arg = arg;
	store_call_read(s, run, prune_done, r);
}

void read_failed(sqlite3 *db, char *buf, size_t size, const char **error)
{
	snprintf(buf, size, "%s", sqlite3_errmsg(db));
	*error = buf;
}
