/*
 * deprecation.h: what hpqd still accepts but will stop accepting, and the
 * record of who still uses it (hpq upgrade-check's deprecated-use check).
 *
 * The table (deprecation_table) names each deprecated thing once: what it
 * is, the release that deprecated it, the release that removes it, and
 * what replaces it. Where hpqd accepts such a thing it calls
 * deprecation_note with the user, node or file that used it; the record
 * keeps, per thing and user, the first and last use and a count. It
 * survives restarts in the store's deprecated_uses table, written
 * rate-limited: a row when a user is first seen, then at most once per
 * DEPRECATION_WRITE_MS while uses go on, and whatever is left at close.
 */
#ifndef HPQD_DEPRECATION_H
#define HPQD_DEPRECATION_H

#include <stddef.h>
#include <stdint.h>

struct store;

enum deprecation_id {
	DEPRECATED_PROTOCOL_1,           /* a peer says Hello with protocol 1 */
	DEPRECATED_LIST_STATE,           /* ListRequest.state (protocol 1's) */
	DEPRECATED_NODES_UNREACHABLE,    /* [nodes] unreachable_after in hpqd.conf */
	DEPRECATED_COUNT,
};

struct deprecation {
	const char *id;              /* stored as deprecated_uses.what */
	const char *kind;            /* "protocol", "request field", "config key" */
	const char *what;            /* for people */
	const char *since;           /* the release that deprecated it */
	const char *removed;         /* the release that stops accepting it */
	const char *instead;         /* what to use */
	const char *section, *key;   /* config keys: the deprecated one */
};

extern const struct deprecation deprecation_table[DEPRECATED_COUNT];

/* By id; NULL when unknown (a row of a newer hpqd). */
const struct deprecation *deprecation_find(const char *id);

#define DEPRECATION_WRITE_MS 60000
/* More distinct users than this of one thing count as "(others)". */
#define DEPRECATION_MAX_USES 1024

struct deprecated_use {
	const struct deprecation *dep;
	char *who;
	int64_t first_ms, last_ms;
	uint64_t count;
	int64_t written_ms;          /* last_ms as last written; 0: never */
	uint64_t written_count;
};

struct deprecations;

/* Loads the record from s (before store_start). 0 or a negative code. */
int deprecation_open(struct store *s, struct deprecations **ret, char *err, size_t errlen);
/* Writes what is not written yet into the store's open batch and frees dp
 * (NULL is fine). */
void deprecation_close(struct deprecations *dp);
/* who used dep at now_ms. dp NULL: nothing (a core without the record). */
void deprecation_note(struct deprecations *dp, enum deprecation_id dep, const char *who,
		      int64_t now_ms);
/* Every use recorded, by thing then user. */
const struct deprecated_use *deprecation_uses(const struct deprecations *dp, size_t *n);

#endif
