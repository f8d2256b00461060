/*
 * catalog.h: the catalogue of hpq releases (dist/versions.json): each
 * release's version, dates, support windows, and the protocol and schema
 * versions it speaks. hpq versions shows it; upgrade checks read it.
 */
#ifndef HPQ_CATALOG_H
#define HPQ_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HPQ_CATALOG_MAX_RELEASES 256

struct hpq_release {
	char version[32];            /* MAJOR.MINOR.PATCH */
	char released[11];           /* YYYY-MM-DD */
	char standard_end[11];       /* the end of standard support */
	char extended_end[11];       /* the end of extended support */
	uint32_t protocol;           /* HPQ_PROTOCOL_VERSION it speaks */
	uint32_t protocol_min;       /* the oldest peer protocol it accepts */
	uint32_t schema;             /* the database schema version it migrates to */
	bool is_default;             /* the release new clusters should install */
	/* "config_keys": the hpqd.conf keys it knows, "section.key"; a word "*"
	 * stands for any one word ("repair.actions.*": any key of the section;
	 * "autoscale.*.min_nodes": that key of any [autoscale.POOL]);
	 * has_config_keys false when not listed. */
	char **config_keys;
	size_t nconfig_keys;
	bool has_config_keys;
};

struct hpq_catalog {
	struct hpq_release *v;
	size_t n;
};

/* Reads and checks path: a JSON object {"releases": [...]}, every release
 * whole and valid, versions unique, exactly one default. On an error, err
 * names the file, the line where JSON says so, and what is wrong. */
int hpq_catalog_load(const char *path, struct hpq_catalog *cat, char *err, size_t errlen);
void hpq_catalog_release(struct hpq_catalog *cat);
const struct hpq_release *hpq_catalog_find(const struct hpq_catalog *cat, const char *version);

/* The default release (there is exactly one in a loaded catalogue). */
const struct hpq_release *hpq_catalog_default(const struct hpq_catalog *cat);

/* Whether r lists the hpqd.conf key section.key (config_keys). */
bool hpq_release_knows_key(const struct hpq_release *r, const char *section, const char *key);

/* STANDARD_SUPPORT, EXTENDED_SUPPORT or END_OF_SUPPORT on the day of now
 * (UTC). */
const char *hpq_release_status(const struct hpq_release *r, time_t now);

/* Compares MAJOR.MINOR.PATCH versions: <0, 0, >0. Unparsable ones sort first. */
int hpq_version_cmp(const char *a, const char *b);

#endif
