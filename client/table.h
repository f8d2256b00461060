/*
 * table.h: aligned text tables for people, the way ps(1) and squeue print
 * them: a header row, columns separated by two spaces, text left-aligned,
 * numbers right-aligned, no trailing blanks. Widths count characters,
 * not bytes (names and messages may be UTF-8), and never include colour
 * escapes, so a coloured table lines up exactly like a plain one.
 *
 *	struct table *t = table_new(3, "ID", "NAME", "STATE");
 *	table_align_right(t, 0);
 *	table_add(t, NULL, "%llu", id);
 *	table_add(t, NULL, "%s", name);
 *	table_add(t, "\033[32m", "%s", state);   // a row ends after 3 cells
 *	table_print(t, stdout, colour);
 *	table_free(t);
 */
#ifndef HPQ_TABLE_H
#define HPQ_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct table;

/* ncols header strings follow. */
struct table *table_new(size_t ncols, ...);
void table_free(struct table *t);

void table_align_right(struct table *t, size_t col);

/* Adds a column after the last one; only before the first cell is added
 * (for tables whose columns are chosen at run time). */
void table_add_column(struct table *t, const char *header);
/* Leaves the header row out when printing (hpq list --noheader); the
 * widths are then those of the rows alone. */
void table_hide_header(struct table *t);

/* Appends a cell to the current row (a new row starts after ncols cells).
 * colour is an ANSI SGR sequence used only when printing in colour, or
 * NULL. An empty cell prints as "-". */
void table_add(struct table *t, const char *colour, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* table_add(t, colour, "%s", s), without the formatting. */
void table_add_text(struct table *t, const char *colour, const char *s);

size_t table_rows(const struct table *t);

/* Prints the header (bold in colour) and the rows; the header even when
 * there are no rows, so that an empty answer still reads as one. */
void table_print(const struct table *t, FILE *f, bool colour);

/* Display width of a UTF-8 string: its number of characters. */
size_t table_width(const char *s);

/* Is s shown in a cell as it is: printable ASCII without a backslash
 * (escape.h)? Then *len is its length, and the characters it takes. */
static inline bool table_plain(const char *s, size_t *len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '\\')
			return false;
	*len = (size_t)(p - (const unsigned char *)s);
	return true;
}

/* What a cell shows for s when it is not plain: a new string, s escaped
 * (escape.h), with its bytes in *len and the characters it takes (UTF-8)
 * in *width. Cells show other users' data: control characters, which
 * could move the cursor or forge lines, become visible escapes. */
char *table_escape(const char *s, size_t *len, size_t *width);

#endif
