/*
 * inifile.h: how hpqd and hpq-agent read their config files. inih parses
 * (sections, key = value, comments); this is the reader in front of it,
 * which counts lines and refuses what inih would silently misread:
 *
 *  - a line longer than inih's line buffer (INI_MAX_LINE less the newline
 *    and the NUL: 198 bytes with Debian's libinih), which inih would cut
 *    in two, its tail read as a line of its own;
 *  - a continuation line: an indented, non-blank, non-comment line after a
 *    key, which inih (INI_ALLOW_MULTILINE) hands to the handler as a new
 *    value of that key, so "admins = alice," "  bob" would set admins to
 *    "bob" alone;
 *  - a NUL byte.
 *
 * A setting is one line. Errors are "PATH:LINE: message", with the line
 * and the message always of the same, first, bad line.
 */
#ifndef HPQ_INIFILE_H
#define HPQ_INIFILE_H

#include <stddef.h>

/* Called per key = value in file order; section is "" before any section.
 * Returns 0, or a negative code with a message (without file or line) in
 * err; reading then stops and that message is the error. */
typedef int (*hpq_ini_handler)(void *user, const char *section, const char *name,
			       const char *value, char *err, size_t errlen);

/* Reads path. Returns 0; a negative errno when it cannot be opened or read
 * ("cannot open 'PATH': ..."); HPQ_EINVAL for a bad line or a handler's
 * error ("PATH:LINE: ..."). */
int hpq_ini_load(const char *path, hpq_ini_handler handler, void *user, char *err,
		 size_t errlen);

#endif
