/*
 * strmap.h: a map from names to records, for lookups by name.
 *
 * Open addressing with linear probing, at most half full, so a lookup
 * is one hash and a short scan of adjacent slots. The map does not own
 * its keys: each key is borrowed from the record it maps to (the
 * record's own name string), and must stay unchanged while the entry is
 * in the map; put the record again after renaming it. A zeroed struct
 * strmap is an empty map.
 */
#ifndef HPQ_STRMAP_H
#define HPQ_STRMAP_H

#include <stddef.h>

struct strmap {
	const char **keys;   /* borrowed; NULL: a free slot */
	void **vals;
	size_t cap, len;     /* cap: 0 or a power of two */
};

/* Maps key to val, replacing (key and value) what key mapped to. */
void strmap_put(struct strmap *m, const char *key, void *val);
/* What key maps to, or NULL (also for a NULL key). */
void *strmap_get(const struct strmap *m, const char *key);
/* Removes key if it is there. */
void strmap_del(struct strmap *m, const char *key);
/* Frees the map's arrays (not the keys or values) and empties it. */
void strmap_release(struct strmap *m);

#endif
