/*
 * escape.h: text from other people made safe to show on a terminal or in
 * a log line. Control characters (C0, DEL, the C1 range U+0080-U+009F),
 * Unicode line separators and bidirectional overrides, bytes that are not
 * UTF-8, and the backslash itself become visible escapes: \n \r \t \\,
 * \xNN for a byte, \uNNNN for a code point. Everything else, printable
 * UTF-8 included, is copied. Escaping the backslash keeps the result
 * unambiguous: "\n" in the output always was a newline in the input.
 */
#ifndef HPQ_ESCAPE_H
#define HPQ_ESCAPE_H

/* A new string: s escaped (a copy when nothing needs escaping). */
char *hpq_escape(const char *s);

#endif
