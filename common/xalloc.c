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
#include <sys/mman.h>

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

#define XBIG_PAGE (2u << 20)

/* Whole 2 MiB pages: a part of one would be 4 KiB pages. */
static size_t xbig_map_len(size_t n)
{
	return (n + XBIG_PAGE - 1) & ~(size_t)(XBIG_PAGE - 1);
}

void xbig_free(void *p, size_t size)
{
	if (size < XBIG_MIN)
		free(p);
	else if (p)
		munmap(p, xbig_map_len(size));
}

void *xbig_grow(void *p, size_t size, size_t n)
{
	uint8_t *m, *q;
	size_t len, front;

	if (n < size) /* a mapping given to realloc would corrupt the heap */
		hpq_fatal("xbig_grow: %zu bytes cannot grow to %zu", size, n);
	if (n < XBIG_MIN)
		return xrealloc(p, n);
	if (n > SIZE_MAX - 2 * XBIG_PAGE)
		hpq_fatal("out of memory allocating %zu bytes", n);
	len = xbig_map_len(n);
	/* One page more than needed, then the ends trimmed to an aligned start. */
	m = mmap(NULL, len + XBIG_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		 0);
	if (m == MAP_FAILED)
		hpq_fatal("out of memory allocating %zu bytes", n);
	q = (uint8_t *)(((uintptr_t)m + XBIG_PAGE - 1) & ~(uintptr_t)(XBIG_PAGE - 1));
	front = (size_t)(q - m);
	if (front)
		munmap(m, front);
	munmap(q + len, XBIG_PAGE - front);
	madvise(q, len, MADV_HUGEPAGE);
	if (size)
		memcpy(q, p, size);
	xbig_free(p, size);
	return q;
}
