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

#endif
