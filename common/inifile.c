/*
 * inifile.c: the reader in front of inih (inifile.h). inih keeps the
 * parsing; this counts lines, hands inih whole lines only and refuses the
 * ones it would misread.
 */
#include "inifile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <ini.h>

#include "error.h"

struct ini_read {
	FILE *f;
	hpq_ini_handler handler;
	void *user;
	int line;            /* lines handed to inih so far: the one it parses */
	bool after_key;      /* inih would take an indented line as a continuation */
	int bad_line;        /* the first line refused or failed here; 0 = none */
	char msg[256];       /* what is wrong with bad_line */
	int read_errno;      /* a read error: not a line's fault */
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* What inih (ini_parse_stream) would make of line, for the one state it
 * keeps across lines: after a key, an indented line continues it; a
 * [section] ends that. */
static void track(struct ini_read *rd, const char *line)
{
	const char *s = line;
	bool space = false;

	while (is_blank(*s))
		s++;
	if (!*s || strchr(";#", *s))
		return;                          /* blank, or a comment */
	if (*s == '[') {
		/* A section when its ']' comes before an inline comment. */
		for (s++; *s && *s != ']' && !(space && *s == ';'); s++)
			space = is_blank(*s);
		if (*s == ']')
			rd->after_key = false;
		return;
	}
	/* A key when '=' or ':' comes before an inline comment, and the name
	 * before it is not empty. */
	for (const char *p = s; *p; p++) {
		if (*p == '=' || *p == ':') {
			if (p > s)
				rd->after_key = true;
			return;
		}
		if (space && *p == ';')
			return;
		space = is_blank(*p);
	}
}

static char *refuse(struct ini_read *rd, int line, const char *msg)
{
	rd->bad_line = line;
	snprintf(rd->msg, sizeof(rd->msg), "%s", msg);
	return NULL;
}

/* inih's fgets: the next line, whole, without its newline; NULL at the end
 * of the file or to stop at a line refused. num is inih's buffer: a line
 * and its newline and NUL must fit it. */
static char *ini_reader_checked(char *str, int num, void *stream)
{
	struct ini_read *rd = stream;
	size_t n = 0, max = num > 2 ? (size_t)num - 2 : 0;
	char too_long[80];
	const char *s;
	int c;

	if (rd->bad_line || rd->read_errno)
		return NULL;
	while ((c = getc(rd->f)) != EOF && c != '\n') {
		if (c == '\0')
			return refuse(rd, rd->line + 1, "a NUL byte: this is not a text file");
		if (n >= max) {
			snprintf(too_long, sizeof(too_long),
				 "line longer than %zu bytes, the most a line can be", max);
			return refuse(rd, rd->line + 1, too_long);
		}
		str[n++] = (char)c;
	}
	if (c == EOF && ferror(rd->f)) {
		rd->read_errno = errno ? errno : EIO;
		return NULL;
	}
	if (c == EOF && n == 0)
		return NULL;
	str[n++] = '\n'; /* a newline: whole, to every inih release */
	str[n] = '\0';
	rd->line++;

	s = str;
	if (rd->line == 1 && !strncmp(s, "\xEF\xBB\xBF", 3))
		s += 3;                          /* a UTF-8 BOM, as inih skips it */
	if (is_blank(*s) && rd->after_key) {
		while (is_blank(*s))
			s++;
		if (*s && *s != '\n' && !strchr(";#", *s))
			return refuse(rd, rd->line,
				      "an indented line after a setting: continuation lines "
				      "are not read; a setting is one line (unindent it if "
				      "it is a setting of its own)");
	}
	track(rd, s);
	return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct ini_read *rd = user;

	/* A new section, when inih is built to say so: nothing to set. */
	if (!name)
		return 1;
	if (rd->bad_line)
		return 1;
	if (rd->handler(rd->user, section ? section : "", name, value ? value : "", rd->msg,
			sizeof(rd->msg)) < 0) {
		rd->bad_line = rd->line;
		if (!rd->msg[0])
			snprintf(rd->msg, sizeof(rd->msg), "invalid setting '%s'", name);
		return 0;
	}
	return 1;
}

int hpq_ini_load(const char *path, hpq_ini_handler handler, void *user, char *err,
		 size_t errlen)
{
	struct ini_read rd = {.handler = handler, .user = user};
	int r, e;

	rd.f = fopen(path, "re");
	if (!rd.f) {
		e = errno ? errno : ENOENT;
		return hpq_errf(err, errlen, -e, "cannot open '%s': %s", path, strerror(e));
	}
	r = ini_parse_stream(ini_reader_checked, &rd, on_key, &rd);
	fclose(rd.f);
	if (rd.read_errno)
		return hpq_errf(err, errlen, -rd.read_errno, "cannot read '%s': %s", path,
				strerror(rd.read_errno));
	if (r < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "cannot read '%s': out of memory",
				path);
	/* inih reports its first bad line, which may be before the one stopped
	 * at here: a line it could not parse. */
	if (r > 0 && r != rd.bad_line)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"%s:%d: syntax error: expected 'key = value' or '[section]'",
				path, r);
	if (rd.bad_line)
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s:%d: %s", path, rd.bad_line,
				rd.msg);
	return 0;
}
