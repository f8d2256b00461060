/*
 * upgrade.h: hpq upgrade-check's table of checks (EKS's upgrade insights):
 * what an upgrade of this cluster to a release of the catalogue would
 * break or disrupt, each check with an id, a description, a status
 * (PASSING, WARNING, ERROR), the objects it found and what to do.
 *
 * A check is a function of struct upgrade_ctx, which holds everything it
 * may read (the state, the settings, the record of deprecated use, the
 * catalogue, the newest backup), so that the table runs the same in hpqd
 * and in the unit tests. Adding a check is adding one entry to
 * upgrade_checks[] (upgrade.c).
 */
#ifndef HPQD_UPGRADE_H
#define HPQD_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

struct config;
struct deprecations;
struct state;
struct store_backup_info;

enum upgrade_status {
	UPGRADE_PASSING,
	UPGRADE_WARNING,
	UPGRADE_ERROR,
};

/* A backup is fresh for this long, and of the database's schema now. */
#define UPGRADE_BACKUP_FRESH_MS (24 * 3600 * 1000LL)
/* Deprecated uses older than this are history, not users. */
#define UPGRADE_DEPRECATED_RECENT_MS (30 * 24 * 3600 * 1000LL)
/* A running task whose newest checkpoint is older would lose more. */
#define UPGRADE_CHECKPOINT_RECENT_MS (3600 * 1000LL)
/* At most this many affected objects per check; then a count of the rest. */
#define UPGRADE_AFFECTED_MAX 50

struct upgrade_ctx {
	const struct state *st;
	const struct config *cfg;
	const struct deprecations *dp;
	const struct hpq_catalog *cat;
	const struct hpq_release *target;
	const char *daemon_version;              /* HPQ_VERSION */
	uint32_t schema;                         /* the database's, now */
	const char *client_version;              /* the asking hpq's Hello */
	uint32_t client_protocol;
	const struct store_backup_info *backup;  /* the newest recorded */
	uint64_t free_bytes;                     /* on the state directory's file system */
	int64_t now_ms;
};

struct upgrade_result {
	enum upgrade_status status;
	char **affected;
	size_t naffected;
	size_t more;                             /* left out past UPGRADE_AFFECTED_MAX */
	char *recommendation;
};

struct upgrade_check {
	const char *id;
	const char *description;
	void (*fn)(const struct upgrade_ctx *x, struct upgrade_result *r);
};

extern const struct upgrade_check upgrade_checks[];
extern const size_t upgrade_ncheck;

/* Runs every check: results[i] is upgrade_checks[i]'s (upgrade_ncheck of
 * them, to free with upgrade_results_free). Returns the worst status. */
enum upgrade_status upgrade_run(const struct upgrade_ctx *x, struct upgrade_result **results);
void upgrade_results_free(struct upgrade_result *results);
const char *upgrade_status_name(enum upgrade_status s);

#endif
