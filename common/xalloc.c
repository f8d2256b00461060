/*
 * xalloc.c: allocation wrappers that treat out-of-memory as fatal (see
 * xalloc.h). Multiplications are checked, so a size computed from
 * untrusted input cannot wrap into a small allocation.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

void *xmalloc(size_t n)
{
	void *p;

	if (n == 0)
		n = 1;
	p = malloc(n);
	if (!p)
		hpq_fatal("out of memory allocating %zu bytes", n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	p = calloc(nmemb, size);
	if (!p)
		hpq_fatal("out of memory allocating %zu x %zu bytes", nmemb, size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q;

	if (n == 0)
		n = 1;
	q = realloc(p, n);
	if (!q)
		hpq_fatal("out of memory reallocating to %zu bytes", n);
	return q;
}

void *xreallocarray(void *p, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		hpq_fatal("allocation of %zu x %zu bytes overflows", nmemb, size);
	return xrealloc(p, nmemb * size);
}

char *xmemdup(const void *p, size_t n)
{
	char *d = xmalloc(n + 1);

	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

char **xstrv_pack(char *const *v, size_t n)
{
	size_t size = (n + 1) * sizeof(char *);
	char **c, *p;

	if (!n)
		return NULL;
	for (size_t i = 0; i < n; i++)
		size += strlen(v[i]) + 1;
	c = xmalloc(size);
	p = (char *)(c + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(v[i]) + 1;

		c[i] = memcpy(p, v[i], len);
		p += len;
	}
	c[n] = NULL;
	return c;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

int xvasprintf(char **ret, const char *fmt, va_list ap)
{
	char *s;
	int n;

	n = vasprintf(&s, fmt, ap);
	if (n < 0)
		hpq_fatal("out of memory formatting a string");
	*ret = s;
	return n;
}

int xasprintf(char **ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = xvasprintf(ret, fmt, ap);
	va_end(ap);
	return n;
}
