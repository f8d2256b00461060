/*
 * table.c: aligned text tables (see table.h). Cells are kept as strings
 * until the whole table is known, because a column's width is that of its
 * widest cell. Tables are small (what one reply holds), so a flat array of
 * cells, row-major, is all the structure needed.
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
	char *text;
	const char *colour;
};

struct table {
	size_t ncols;
	struct table_cell *cells; /* header row first */
	size_t ncells;
	size_t cap;
	bool *right;
	bool no_header;
};

static void table_push(struct table *t, char *text, const char *colour)
{
	if (t->ncells == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 8 * t->ncols;
		t->cells = xreallocarray(t->cells, t->cap, sizeof(*t->cells));
	}
	t->cells[t->ncells].text = text;
	t->cells[t->ncells].colour = colour;
	t->ncells++;
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
		table_push(t, xstrdup(va_arg(ap, const char *)), NULL);
	va_end(ap);
	return t;
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i].text);
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
	table_push(t, xstrdup(header), NULL);
}

void table_hide_header(struct table *t)
{
	t->no_header = true;
}

void table_add(struct table *t, const char *colour, const char *fmt, ...)
{
	va_list ap;
	char *raw, *s;

	va_start(ap, fmt);
	xvasprintf(&raw, fmt, ap);
	va_end(ap);
	/* Cells show other users' data: control characters, which could move
	 * the cursor or forge lines, become visible escapes (escape.h). */
	s = hpq_escape(raw[0] ? raw : "-");
	free(raw);
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
	while (n-- > 0)
		fputc(' ', f);
}

void table_print(const struct table *t, FILE *f, bool colour)
{
	size_t *width = xcalloc(t->ncols, sizeof(*width));
	size_t first = t->no_header ? t->ncols : 0;

	for (size_t i = first; i < t->ncells; i++) {
		size_t w = table_width(t->cells[i].text);
		if (w > width[i % t->ncols])
			width[i % t->ncols] = w;
	}
	for (size_t i = first; i < t->ncells; i++) {
		const struct table_cell *c = &t->cells[i];
		size_t col = i % t->ncols;
		bool last = col == t->ncols - 1 || i == t->ncells - 1;
		size_t pad = width[col] - table_width(c->text);
		const char *sgr = i < t->ncols ? TABLE_BOLD : c->colour;

		if (col > 0)
			fputs("  ", f);
		if (t->right[col])
			table_pad(f, pad);
		if (colour && sgr)
			fprintf(f, "%s%s%s", sgr, c->text, TABLE_RESET);
		else
			fputs(c->text, f);
		if (!t->right[col] && !last)
			table_pad(f, pad);
		if (last)
			fputc('\n', f);
	}
	free(width);
}
