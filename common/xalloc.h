/*
 * xalloc.h: allocation that cannot fail. Out of memory is fatal in hpq
 * (as in tmux and OpenSMTPD): a daemon that cannot allocate a task cannot
 * do anything useful, and handling it everywhere hides real bugs.
 */
#ifndef HPQ_XALLOC_H
#define HPQ_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* n bytes of p, plus a NUL after them. */
char *xmemdup(const void *p, size_t n);
/* v's n strings in one allocation, which free() frees whole: n pointers
 * and a NULL, then the strings. NULL when n is 0. */
char **xstrv_pack(char *const *v, size_t n);
int xasprintf(char **ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* xasprintf for variadic wrappers (log-like helpers that format a message). */
int xvasprintf(char **ret, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/*
 * Buffers of megabytes, filled once and read back (a reply's decoded
 * messages, a table of 100,000 rows). From XBIG_MIN bytes they are
 * anonymous mappings of whole 2 MiB pages that ask for huge pages, so
 * that filling one faults once per 2 MiB instead of once per 4 KiB: on a
 * virtual machine those faults were most of the cost of printing a long
 * list. A mapping comes zeroed; below XBIG_MIN the memory is malloc's.
 * xbig_grow returns p (of size bytes, from xbig_grow, or NULL and 0)
 * grown to n bytes (n >= size), its contents kept; xbig_free takes the
 * same size.
 */
#define XBIG_MIN (256u << 10)
void *xbig_grow(void *p, size_t size, size_t n);
void xbig_free(void *p, size_t size);

#endif
