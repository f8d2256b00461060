/*
 * store-plans.c: the plans table (store.h, plan.h): one row per training
 * plan, rewritten whenever its state changes.
 */
#include <sqlite3.h>

#include "store-internal.h"
#include "store.h"

const struct stmt_def store_plan_stmts[] = {
	{ ST_PLAN_PUT,
	  "INSERT OR REPLACE INTO plans (id, name, team, pool, nodes, gpus_per_node, duration_s,"
	  " state, segments, created_ms, created_by, ended_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)" },
	{ ST_COUNT, NULL },
};

void store_plan_put(struct store *s, const struct store_plan_row *p)
{
	struct op *op = op_new(s, ST_PLAN_PUT, 12);

	op_int(op, 0, (int64_t)p->id);
	op_text(op, 1, p->name);
	op_text(op, 2, p->team);
	op_text(op, 3, p->pool);
	op_int(op, 4, p->nodes);
	op_int(op, 5, p->gpus_per_node);
	op_int(op, 6, (int64_t)p->duration_s);
	op_text(op, 7, p->state);
	op_text(op, 8, p->segments);
	op_int(op, 9, p->created_ms);
	op_text(op, 10, p->created_by);
	op_int(op, 11, p->ended_ms);
}

static void plan_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	struct store_plan_row p = {
		.id = (uint64_t)sqlite3_column_int64(q, 0),
		.name = col_text(q, 1),
		.team = col_text(q, 2),
		.pool = col_text(q, 3),
		.nodes = (uint32_t)sqlite3_column_int64(q, 4),
		.gpus_per_node = (uint32_t)sqlite3_column_int64(q, 5),
		.duration_s = (uint64_t)sqlite3_column_int64(q, 6),
		.state = col_text(q, 7),
		.segments = col_text(q, 8),
		.created_ms = sqlite3_column_int64(q, 9),
		.created_by = col_text(q, 10),
		.ended_ms = sqlite3_column_int64(q, 11),
	};

	cb->on_plan(arg, &p);
}

int store_load_plans(struct store *s, const struct store_loader *cb, void *arg)
{
	return store_load_rows(s, "SELECT id, name, team, pool, nodes, gpus_per_node, duration_s,"
			       " state, segments, created_ms, created_by, ended_ms FROM plans"
			       " ORDER BY id", plan_row, cb, arg);
}
