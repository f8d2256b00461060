/*
 * strmap.c: the name map (strmap.h).
 *
 * Deletion shifts the entries of the probe chain back instead of leaving
 * tombstones, so a lookup never scans more than the live entries of its
 * chain, however many deletions came before.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "xalloc.h"

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static void strmap_grow(struct strmap *m)
{
	struct strmap old = *m;

	m->cap = old.cap ? 2 * old.cap : 16;
	m->keys = xcalloc(m->cap, sizeof(*m->keys));
	m->vals = xcalloc(m->cap, sizeof(*m->vals));
	m->len = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.keys[i])
			strmap_put(m, old.keys[i], old.vals[i]);
	free(old.keys);
	free(old.vals);
}

/* key's slot, or the free slot that ends its probe chain. */
static size_t strmap_slot(const struct strmap *m, const char *key)
{
	size_t i = hash_str(key) & (m->cap - 1);

	while (m->keys[i] && strcmp(m->keys[i], key))
		i = (i + 1) & (m->cap - 1);
	return i;
}

void strmap_put(struct strmap *m, const char *key, void *val)
{
	size_t i;

	if (2 * (m->len + 1) > m->cap)
		strmap_grow(m);
	i = strmap_slot(m, key);
	if (!m->keys[i])
		m->len++;
	m->keys[i] = key;
	m->vals[i] = val;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	size_t i;

	if (!m->cap || !key)
		return NULL;
	i = strmap_slot(m, key);
	return m->keys[i] ? m->vals[i] : NULL;
}

void strmap_del(struct strmap *m, const char *key)
{
	size_t i, j;

	if (!m->cap)
		return;
	i = strmap_slot(m, key);
	if (!m->keys[i])
		return;
	m->keys[i] = NULL;
	m->len--;
	for (j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
		size_t home = hash_str(m->keys[j]) & (m->cap - 1);

		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			m->keys[j] = NULL;
			i = j;
		}
	}
}

void strmap_release(struct strmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}
