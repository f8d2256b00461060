/*
 * table.c: aligned text tables (see table.h). Cells are kept as strings
 * until the whole table is known, because a column's width is that of its
 * widest cell. A flat array of cells, row-major, over one arena of their
 * texts is all the structure needed, also for 100,000 rows.
 */
#include <stdarg.h>
#include <stdint.h>
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
 * 100,000 tasks has over a million cells. Both are big buffers (xalloc.h). */
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

size_t table_width(const char *s)
{
	size_t n = 0;

	/* Count every byte that does not continue a UTF-8 sequence. */
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

char *table_escape(const char *s, size_t *len, size_t *width)
{
	char *esc = hpq_escape(s);

	*len = strlen(esc);
	*width = table_width(esc);
	return esc;
}

/* Appends a cell showing s: escaped (escape.h), "-" when empty. */
static void table_push(struct table *t, const char *s, const char *colour)
{
	struct table_cell *c;
	char *esc = NULL;
	size_t len, width;

	if (!s[0])
		s = "-";
	if (table_plain(s, &len))
		width = len;
	else
		s = esc = table_escape(s, &len, &width);
	if (t->ncells == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 8 * t->ncols;

		if (cap > SIZE_MAX / sizeof(*t->cells))
			hpq_fatal("table: too many cells");
		t->cells = xbig_grow(t->cells, t->cap * sizeof(*t->cells),
				     cap * sizeof(*t->cells));
		t->cap = cap;
	}
	if (t->alen + len + 1 > t->acap) {
		size_t acap = t->acap ? 2 * t->acap : 4096;

		while (t->alen + len + 1 > acap)
			acap *= 2;
		t->arena = xbig_grow(t->arena, t->acap, acap);
		t->acap = acap;
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
	xbig_free(t->arena, t->acap);
	xbig_free(t->cells, t->cap * sizeof(*t->cells));
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

static void table_pad(FILE *f, size_t n)
{
	static const char spaces[64] = "                                                               ";

	for (; n > sizeof(spaces); n -= sizeof(spaces))
		fwrite_unlocked(spaces, 1, sizeof(spaces), f);
	fwrite_unlocked(spaces, 1, n, f);
}

/* One row, its cells padded, built in *line (grown as needed): one write
 * a row instead of several a cell, for tables of 100,000 rows. */
static size_t table_line(const struct table *t, size_t row0, const size_t *width, char **line,
			 size_t *cap)
{
	size_t n = 0, need = 1;

	for (size_t col = 0; col < t->ncols && row0 + col < t->ncells; col++)
		need += 2 + width[col] + t->cells[row0 + col].len;
	if (need > *cap) {
		*cap = need * 2;
		*line = xrealloc(*line, *cap);
	}
	for (size_t col = 0; col < t->ncols && row0 + col < t->ncells; col++) {
		const struct table_cell *c = &t->cells[row0 + col];
		bool last = col == t->ncols - 1 || row0 + col == t->ncells - 1;
		size_t pad = width[col] - c->width;

		if (col > 0) {
			memcpy(*line + n, "  ", 2);
			n += 2;
		}
		if (t->right[col]) {
			memset(*line + n, ' ', pad);
			n += pad;
		}
		memcpy(*line + n, t->arena + c->off, c->len);
		n += c->len;
		if (!t->right[col] && !last) {
			memset(*line + n, ' ', pad);
			n += pad;
		}
	}
	(*line)[n++] = '\n';
	return n;
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
	if (!colour) {
		char *line = NULL;
		size_t cap = 0;

		for (size_t i = first; i < t->ncells; i += t->ncols) {
			size_t len = table_line(t, i, width, &line, &cap);

			fwrite_unlocked(line, 1, len, f);
		}
		funlockfile(f);
		free(line);
		free(width);
		return;
	}
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
		if (sgr)
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
