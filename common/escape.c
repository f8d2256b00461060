/*
 * escape.c: escaping for terminals and log lines (escape.h). The input
 * is walked as UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF); a byte that does not start a valid sequence is shown
 * as \xNN and the walk goes on with the next byte.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "xalloc.h"

/* Length of the valid UTF-8 sequence at s and its code point, or 0. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Code points shown escaped: C1 controls, line and paragraph separators,
 * and the bidirectional embeddings, overrides and isolates. */
static bool cp_hidden(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Appends the escaped form of s to out (NULL: only counts). Returns the
 * escaped length. */
static size_t escape_into(const char *s, char *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = 0;
	char tmp[8];

	while (*p) {
		uint32_t cp;
		size_t n = utf8_next(p, &cp);
		const char *rep = NULL;
		size_t rlen;

		if (n == 0) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", *p);
			rep = tmp;
			n = 1;
		} else if (cp == '\n') {
			rep = "\\n";
		} else if (cp == '\r') {
			rep = "\\r";
		} else if (cp == '\t') {
			rep = "\\t";
		} else if (cp == '\\') {
			rep = "\\\\";
		} else if (cp < 0x20 || cp == 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", (unsigned)cp);
			rep = tmp;
		} else if (cp_hidden(cp)) {
			snprintf(tmp, sizeof(tmp), "\\u%04x", (unsigned)cp);
			rep = tmp;
		}
		if (rep) {
			rlen = strlen(rep);
			if (out)
				memcpy(out + len, rep, rlen);
		} else {
			rlen = n;
			if (out)
				memcpy(out + len, p, n);
		}
		len += rlen;
		p += n;
	}
	if (out)
		out[len] = '\0';
	return len;
}

char *hpq_escape(const char *s)
{
	char *out = xmalloc(escape_into(s, NULL) + 1);

	escape_into(s, out);
	return out;
}
