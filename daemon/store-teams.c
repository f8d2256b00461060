/*
 * store-teams.c: the governance tables: the cluster policy, pools,
 * priority classes, teams and their quotas per pool.
 */
#include "store-internal.h"

const struct stmt_def store_team_stmts[] = {
	{ ST_POLICY_PUT, "INSERT OR REPLACE INTO policy (key, value) VALUES (?,?)" },
	{ ST_POOL_PUT, "INSERT OR IGNORE INTO pools (name) VALUES (?)" },
	{ ST_CLASS_PUT,
	  "INSERT OR REPLACE INTO classes (name, weight, preemptible, max_time_s)"
	  " VALUES (?,?,?,?)" },
	{ ST_CLASS_DELETE, "DELETE FROM classes WHERE name = ?" },
	{ ST_TEAM_PUT,
	  "INSERT OR REPLACE INTO teams (name, weight, preempt_own, default_class, members,"
	  " admins) VALUES (?,?,?,?,?,?)" },
	{ ST_TEAM_DELETE, "DELETE FROM teams WHERE name = ?" },
	{ ST_QUOTAS_CLEAR, "DELETE FROM team_quotas WHERE team = ?" },
	{ ST_QUOTA_PUT,
	  "INSERT INTO team_quotas (team, pool, guarantee_gpus, guarantee_cpus,"
	  " guarantee_mem, sharing, borrow_limit_pct, borrow_abs_gpus, borrow_abs_cpus,"
	  " borrow_abs_mem, lend_gpus, lend_cpus, lend_mem)"
	  " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)" },
	{ ST_COUNT, NULL },
};

void store_policy_put(struct store *s, const char *key, const char *value)
{
	struct op *op = op_new(s, ST_POLICY_PUT, 2);

	op_text(op, 0, key);
	op_text(op, 1, value);
}

void store_pool_put(struct store *s, const char *name)
{
	struct op *op = op_new(s, ST_POOL_PUT, 1);

	op_text(op, 0, name);
}

void store_class_put(struct store *s, const struct store_class_row *c)
{
	struct op *op = op_new(s, ST_CLASS_PUT, 4);

	op_text(op, 0, c->name);
	op_int(op, 1, c->weight);
	op_int(op, 2, c->preemptible);
	op_int(op, 3, (int64_t)c->max_time_s);
}

void store_class_delete(struct store *s, const char *name)
{
	struct op *op = op_new(s, ST_CLASS_DELETE, 1);

	op_text(op, 0, name);
}

/* A resource triple, or three NULLs. */
static void op_res(struct op *op, unsigned i, bool has, struct hpq_res r)
{
	if (!has)
		return;
	op_int(op, i, r.gpus);
	op_int(op, i + 1, r.cpus);
	op_int(op, i + 2, r.mem);
}

void store_team_put(struct store *s, const struct store_team_row *t)
{
	struct op *op = op_new(s, ST_TEAM_PUT, 6);

	op_text(op, 0, t->name);
	op_int(op, 1, t->weight);
	op_text(op, 2, t->preempt_own);
	op_text(op, 3, t->default_class);
	op_names(op, 4, t->members, t->nmembers);
	op_names(op, 5, t->admins, t->nadmins);

	op = op_new(s, ST_QUOTAS_CLEAR, 1);
	op_text(op, 0, t->name);
	for (size_t i = 0; i < t->nquotas; i++) {
		const struct store_quota_row *q = &t->quotas[i];

		op = op_new(s, ST_QUOTA_PUT, 13);
		op_text(op, 0, t->name);
		op_text(op, 1, q->pool);
		op_res(op, 2, true, q->guarantee);
		op_text(op, 5, q->sharing);
		op_int(op, 6, q->borrow_limit_pct);
		op_res(op, 7, q->has_borrow_abs, q->borrow_abs);
		op_res(op, 10, q->has_lend_limit, q->lend_limit);
	}
}

void store_team_delete(struct store *s, const char *name)
{
	struct op *op = op_new(s, ST_QUOTAS_CLEAR, 1);

	op_text(op, 0, name);
	op = op_new(s, ST_TEAM_DELETE, 1);
	op_text(op, 0, name);
}

/* ---------------------------------------------------------------- load */

static void policy_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	cb->on_policy(arg, col_text(q, 0), col_text(q, 1));
}

static void pool_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	cb->on_pool(arg, col_text(q, 0));
}

static void class_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	struct store_class_row c = {
		.name = col_text(q, 0),
		.weight = (uint32_t)sqlite3_column_int64(q, 1),
		.preemptible = sqlite3_column_int64(q, 2) != 0,
		.max_time_s = (uint64_t)sqlite3_column_int64(q, 3),
	};

	cb->on_cls(arg, &c);
}

static void team_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	struct col_strv members, admins;
	struct store_team_row t = {
		.name = col_text(q, 0),
		.weight = (uint32_t)sqlite3_column_int64(q, 1),
		.preempt_own = col_text(q, 2),
		.default_class = col_text(q, 3),
	};

	col_strv_names(&members, q, 4);
	col_strv_names(&admins, q, 5);
	t.members = members.v;
	t.nmembers = members.n;
	t.admins = admins.v;
	t.nadmins = admins.n;
	cb->on_team(arg, &t);
	col_strv_free(&members);
	col_strv_free(&admins);
}

static struct hpq_res col_res(sqlite3_stmt *q, int col)
{
	return (struct hpq_res){ sqlite3_column_int64(q, col), sqlite3_column_int64(q, col + 1),
				 sqlite3_column_int64(q, col + 2) };
}

static void quota_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	struct store_quota_row qu = {
		.pool = col_text(q, 1),
		.guarantee = col_res(q, 2),
		.sharing = col_text(q, 5),
		.borrow_limit_pct = (uint32_t)sqlite3_column_int64(q, 6),
		.has_borrow_abs = sqlite3_column_type(q, 7) != SQLITE_NULL,
		.borrow_abs = col_res(q, 7),
		.has_lend_limit = sqlite3_column_type(q, 10) != SQLITE_NULL,
		.lend_limit = col_res(q, 10),
	};

	cb->on_quota(arg, col_text(q, 0), &qu);
}

int store_load_teams(struct store *s, const struct store_loader *cb, void *arg)
{
	static const struct {
		const char *sql;
		load_row_fn row;
	} queries[] = {
		{ "SELECT key, value FROM policy ORDER BY key", policy_row },
		{ "SELECT name FROM pools ORDER BY name", pool_row },
		{ "SELECT name, weight, preemptible, max_time_s FROM classes ORDER BY name", class_row },
		{ "SELECT name, weight, preempt_own, default_class, members, admins FROM teams"
		  " ORDER BY name", team_row },
		{ "SELECT team, pool, guarantee_gpus, guarantee_cpus, guarantee_mem, sharing,"
		  " borrow_limit_pct, borrow_abs_gpus, borrow_abs_cpus, borrow_abs_mem,"
		  " lend_gpus, lend_cpus, lend_mem FROM team_quotas ORDER BY team, pool",
		  quota_row },
	};
	int rc = SQLITE_OK;

	for (size_t k = 0; rc == SQLITE_OK && k < sizeof(queries) / sizeof(queries[0]); k++)
		rc = store_load_rows(s, queries[k].sql, queries[k].row, cb, arg);
	return rc;
}
