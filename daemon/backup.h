/*
 * backup.h: an online copy of hpqd's state database (hpqd --backup).
 */
#ifndef HPQD_BACKUP_H
#define HPQD_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backup_result {
	int schema;                  /* the copy's schema version */
	uint64_t pages, bytes;
	/* Whether the copy was recorded in the live database (hpq upgrade-check
	 * reads the newest), and if not why (recording is not the backup's
	 * success: the copy is whole either way). */
	bool recorded;
	char record_error[256];
};

/* Copies the database at db_path to path, which must not exist, while a
 * hpqd may be running on it. Returns 0 or a negative code with err set. */
int backup_run(const char *db_path, const char *path, struct backup_result *res, char *err,
	       size_t errlen);

#endif
