/*
 * store-load.c: reading the whole state at start (store_load, store.h):
 * each table family hands its rows to the loader's callbacks, in the
 * order the state needs them (after finishing a change of many tasks that
 * a crash left half written): the policy, pools, classes, teams and their
 * quotas first, then nodes, then arrays, then tasks with their newest checkpoints, then join
 * tokens and node certificates, then plans.
 */
#include <sqlite3.h>

#include "error.h"
#include "store-internal.h"
#include "store.h"

int store_load(struct store *s, const struct store_loader *cb, void *arg, char *err,
	       size_t errlen)
{
	int rc;

	/* A bulk change that a crash left half written is finished first,
	 * so that its tasks load as it left them. */
	rc = store_bulk_finish(s);
	if (rc != SQLITE_OK)
		return hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot finish writing a change of "
				"many tasks: %s", sqlite3_errstr(rc));
	rc = store_load_teams(s, cb, arg);
	if (rc == SQLITE_OK)
		rc = store_load_nodes(s, cb, arg);
	if (rc == SQLITE_OK && cb->on_array)
		rc = store_load_arrays(s, cb, arg);
	if (rc == SQLITE_OK)
		rc = store_load_tasks(s, cb, arg);
	if (rc == SQLITE_OK)
		rc = store_load_trust(s, cb, arg);
	if (rc == SQLITE_OK && cb->on_plan)
		rc = store_load_plans(s, cb, arg);
	if (rc != SQLITE_OK)
		return hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot load state: %s",
				sqlite3_errmsg(store_db(s)));
	cb->on_done(arg);
	return 0;
}
