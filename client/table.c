/*
 * table.c: aligned text tables (see table.h). Cells are kept as strings
 * until the whole table is known, because a column's width is that of its
 * widest cell. A flat array of cells, row-major, over one arena of their
 * texts is all the structure needed, also for 100,000 rows.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "log.h"
#include "table.h"
#include "xalloc.h"

#define TABLE_BOLD "\033[1m"
#define TABLE_RESET "\033[0m"

struct table_cell {
	size_t off;          /* of its text in the table's arena */
	size_t len, width;   /* bytes; characters shown */
	const char *colour;
};

/* Cells' texts live in one arena, not one allocation each: a table of
 * 100,000 tasks has over a million cells. */
struct table {
	size_t ncols;
	struct table_cell *cells; /* header row first */
	size_t ncells;
	size_t cap;
	char *arena;
	size_t alen, acap;
	bool *right;
	bool no_header;
};

/* Is s shown as it is: printable ASCII without a backslash (escape.h)? */
static bool table_plain(const char *s, size_t *len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '\\')
			return false;
	*len = (size_t)(p - (const unsigned char *)s);
	return true;
}

/* Appends a cell showing s: escaped (escape.h), "-" when empty. */
static void table_push(struct table *t, const char *s, const char *colour)
{
	struct table_cell *c;
	char *esc = NULL;
	size_t len, width;

	if (!s[0])
		s = "-";
	/* Cells show other users' data: control characters, which could move
	 * the cursor or forge lines, become visible escapes (escape.h). */
	if (table_plain(s, &len)) {
		width = len;
	} else {
		s = esc = hpq_escape(s);
		len = strlen(s);
		width = table_width(s);
	}
	if (t->ncells == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 8 * t->ncols;
		t->cells = xreallocarray(t->cells, t->cap, sizeof(*t->cells));
	}
	if (t->alen + len + 1 > t->acap) {
		t->acap = t->acap ? 2 * t->acap : 4096;
		while (t->alen + len + 1 > t->acap)
			t->acap *= 2;
		t->arena = xrealloc(t->arena, t->acap);
	}
	memcpy(t->arena + t->alen, s, len + 1);
	c = &t->cells[t->ncells++];
	c->off = t->alen;
	c->len = len;
	c->width = width;
	c->colour = colour;
	t->alen += len + 1;
	free(esc);
}

struct table *table_new(size_t ncols, ...)
{
	struct table *t = xcalloc(1, sizeof(*t));
	va_list ap;

	if (ncols == 0)
		hpq_fatal("table_new: a table needs columns");
	t->ncols = ncols;
	t->right = xcalloc(ncols, sizeof(*t->right));
	va_start(ap, ncols);
	for (size_t i = 0; i < ncols; i++)
		table_push(t, va_arg(ap, const char *), NULL);
	va_end(ap);
	return t;
}

void table_free(struct table *t)
{
	if (!t)
		return;
	free(t->arena);
	free(t->cells);
	free(t->right);
	free(t);
}

void table_align_right(struct table *t, size_t col)
{
	if (col >= t->ncols)
		hpq_fatal("table_align_right: no column %zu", col);
	t->right[col] = true;
}

void table_add_column(struct table *t, const char *header)
{
	if (t->ncells != t->ncols)
		hpq_fatal("table_add_column: the table has rows");
	t->right = xreallocarray(t->right, t->ncols + 1, sizeof(*t->right));
	t->right[t->ncols++] = false;
	table_push(t, header, NULL);
}

void table_hide_header(struct table *t)
{
	t->no_header = true;
}

void table_add(struct table *t, const char *colour, const char *fmt, ...)
{
	char buf[256], *raw = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		va_start(ap, fmt);
		xvasprintf(&raw, fmt, ap);
		va_end(ap);
	}
	table_push(t, raw ? raw : buf, colour);
	free(raw);
}

void table_add_text(struct table *t, const char *colour, const char *s)
{
	table_push(t, s, colour);
}

size_t table_rows(const struct table *t)
{
	size_t body = t->ncells - t->ncols;

	return (body + t->ncols - 1) / t->ncols; /* a partial last row counts */
}

size_t table_width(const char *s)
{
	size_t n = 0;

	/* Count every byte that does not continue a UTF-8 sequence. */
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static void table_pad(FILE *f, size_t n)
{
	static const char spaces[64] = "                                                               ";

	for (; n > sizeof(spaces); n -= sizeof(spaces))
		fwrite_unlocked(spaces, 1, sizeof(spaces), f);
	fwrite_unlocked(spaces, 1, n, f);
}

void table_print(const struct table *t, FILE *f, bool colour)
{
	size_t *width = xcalloc(t->ncols, sizeof(*width));
	size_t first = t->no_header ? t->ncols : 0;

	for (size_t i = first; i < t->ncells; i++)
		if (t->cells[i].width > width[i % t->ncols])
			width[i % t->ncols] = t->cells[i].width;
	/* One lock for the table, not one per cell: a list can be a million. */
	flockfile(f);
	for (size_t i = first; i < t->ncells; i++) {
		const struct table_cell *c = &t->cells[i];
		size_t col = i % t->ncols;
		bool last = col == t->ncols - 1 || i == t->ncells - 1;
		size_t pad = width[col] - c->width;
		const char *sgr = i < t->ncols ? TABLE_BOLD : c->colour;

		if (col > 0)
			fwrite_unlocked("  ", 1, 2, f);
		if (t->right[col])
			table_pad(f, pad);
		if (colour && sgr)
			fprintf(f, "%s%s%s", sgr, t->arena + c->off, TABLE_RESET);
		else
			fwrite_unlocked(t->arena + c->off, 1, c->len, f);
		if (!t->right[col] && !last)
			table_pad(f, pad);
		if (last)
			fputc_unlocked('\n', f);
	}
	funlockfile(f);
	free(width);
}
