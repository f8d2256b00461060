/*
 * table.c: aligned text tables (see table.h). A column is as wide as its
 * widest cell, so every cell is kept until the table is printed, and a
 * table can be a history of a million finished tasks (hpq acct). A cell
 * is therefore kept in the fewest bytes that say it, one after another
 * in one arena: a byte with its colour and whether it shows fewer
 * characters than it has bytes, its length, then that width if so, then
 * its text. The columns' widths grow as the cells are added, and the
 * printing reads the arena once, front to back.
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

/* A cell's first byte: its colour's index + 1 (0: none), and CELL_WIDE
 * when its width follows its length. */
#define CELL_WIDE 0x80u
#define CELL_COLOURS 0x7fu
/* The most bytes a cell's head takes: the byte and two varints. */
#define CELL_HEAD_MAX (1 + 2 * 10)

/* Cells' texts live in one arena, not one allocation each: a table of
 * 100,000 tasks has over a million cells. It is a big buffer (xalloc.h). */
struct table {
	size_t ncols;
	size_t ncells;       /* the header row's included */
	unsigned char *arena;
	size_t alen, acap;
	size_t *head_width;  /* the header's cells' widths */
	size_t *width;       /* the widest cell of each column below the header */
	bool *right;
	bool no_header;
	const char *colour[CELL_COLOURS];
	size_t ncolours;
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

static unsigned char *put_varint(unsigned char *p, size_t v)
{
	for (; v >= 0x80; v >>= 7)
		*p++ = (unsigned char)(v | 0x80);
	*p++ = (unsigned char)v;
	return p;
}

static const unsigned char *get_varint(const unsigned char *p, size_t *v)
{
	unsigned shift = 0;

	*v = 0;
	for (; *p & 0x80; p++, shift += 7)
		*v |= (size_t)(*p & 0x7f) << shift;
	*v |= (size_t)*p++ << shift;
	return p;
}

/* The index + 1 of colour among the table's (0 for none). */
static unsigned colour_index(struct table *t, const char *colour)
{
	if (!colour)
		return 0;
	for (size_t i = 0; i < t->ncolours; i++)
		if (t->colour[i] == colour || !strcmp(t->colour[i], colour))
			return (unsigned)i + 1;
	if (t->ncolours == CELL_COLOURS)
		hpq_fatal("table: more than %u colours", CELL_COLOURS);
	t->colour[t->ncolours++] = colour;
	return (unsigned)t->ncolours;
}

/* Appends a cell showing s: escaped (escape.h), "-" when empty. */
static void table_push(struct table *t, const char *s, const char *colour)
{
	size_t col = t->ncells % t->ncols, len, width, *w;
	unsigned head = colour_index(t, colour);
	unsigned char *p;
	char *esc = NULL;

	if (!s[0])
		s = "-";
	if (table_plain(s, &len))
		width = len;
	else
		s = esc = table_escape(s, &len, &width);
	if (width != len)
		head |= CELL_WIDE;
	if (len > SIZE_MAX - CELL_HEAD_MAX - t->alen)
		hpq_fatal("table: too many cells");
	if (t->alen + CELL_HEAD_MAX + len > t->acap) {
		size_t acap = t->acap ? 2 * t->acap : 4096;

		while (t->alen + CELL_HEAD_MAX + len > acap)
			acap *= 2;
		t->arena = xbig_grow(t->arena, t->acap, acap);
		t->acap = acap;
	}
	p = t->arena + t->alen;
	*p++ = (unsigned char)head;
	p = put_varint(p, len);
	if (head & CELL_WIDE)
		p = put_varint(p, width);
	memcpy(p, s, len);
	t->alen = (size_t)(p - t->arena) + len;
	w = t->ncells < t->ncols ? &t->head_width[col] : &t->width[col];
	if (width > *w)
		*w = width;
	t->ncells++;
	free(esc);
}

/* A cell read back from the arena at p; returns where the next starts. */
struct cell {
	const char *text;
	size_t len, width;
	const char *colour;
};

static const unsigned char *cell_read(const struct table *t, const unsigned char *p,
				      struct cell *c)
{
	unsigned head = *p++;

	p = get_varint(p, &c->len);
	if (head & CELL_WIDE)
		p = get_varint(p, &c->width);
	else
		c->width = c->len;
	c->colour = head & CELL_COLOURS ? t->colour[(head & CELL_COLOURS) - 1] : NULL;
	c->text = (const char *)p;
	return p + c->len;
}

struct table *table_new(size_t ncols, ...)
{
	struct table *t = xcalloc(1, sizeof(*t));
	va_list ap;

	if (ncols == 0)
		hpq_fatal("table_new: a table needs columns");
	t->ncols = ncols;
	t->right = xcalloc(ncols, sizeof(*t->right));
	t->head_width = xcalloc(ncols, sizeof(*t->head_width));
	t->width = xcalloc(ncols, sizeof(*t->width));
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
	free(t->head_width);
	free(t->width);
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
	t->head_width = xreallocarray(t->head_width, t->ncols + 1, sizeof(*t->head_width));
	t->width = xreallocarray(t->width, t->ncols + 1, sizeof(*t->width));
	t->right[t->ncols] = false;
	t->head_width[t->ncols] = t->width[t->ncols] = 0;
	t->ncols++;
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

/* Room for n more bytes in *line (grown as needed), of which *len are used. */
static char *line_room(char **line, size_t *cap, size_t len, size_t n)
{
	if (len + n > *cap) {
		*cap = 2 * (len + n);
		*line = xrealloc(*line, *cap);
	}
	return *line + len;
}

void table_print(const struct table *t, FILE *f, bool colour)
{
	size_t *width = xcalloc(t->ncols, sizeof(*width));
	const unsigned char *p = t->arena;
	char *line = NULL;
	size_t cap = 0, n = 0;
	struct cell c;

	for (size_t col = 0; col < t->ncols; col++)
		width[col] = t->no_header || t->head_width[col] < t->width[col]
			     ? t->width[col] : t->head_width[col];
	/* One lock for the table, not one per cell, and one write a row,
	 * built in line: a list can be a million rows. */
	flockfile(f);
	for (size_t i = 0; i < t->ncells; i++) {
		size_t col = i % t->ncols, pad;
		bool last = col == t->ncols - 1 || i == t->ncells - 1;
		const char *sgr = NULL;
		char *q;

		p = cell_read(t, p, &c);
		if (i < t->ncols && t->no_header)
			continue;
		pad = width[col] - c.width;
		if (colour)
			sgr = i < t->ncols ? TABLE_BOLD : c.colour;
		q = line_room(&line, &cap, n, 2 + width[col] + c.len + 1 +
				      (sgr ? strlen(sgr) + strlen(TABLE_RESET) : 0));
		if (col > 0) {
			memcpy(q, "  ", 2);
			q += 2;
		}
		if (t->right[col]) {
			memset(q, ' ', pad);
			q += pad;
		}
		if (sgr)
			q = stpcpy(q, sgr);
		memcpy(q, c.text, c.len);
		q += c.len;
		if (sgr)
			q = stpcpy(q, TABLE_RESET);
		if (!t->right[col] && !last) {
			memset(q, ' ', pad);
			q += pad;
		}
		if (last)
			*q++ = '\n';
		n = (size_t)(q - line);
		if (last) {
			fwrite_unlocked(line, 1, n, f);
			n = 0;
		}
	}
	funlockfile(f);
	free(line);
	free(width);
}
