/*
 * store-nodes.c: the nodes table: each node's pool, capacity, labels,
 * address, health and service administration.
 */
#include "store-internal.h"

const struct stmt_def store_node_stmts[] = {
	{ ST_NODE_PUT,
	  "INSERT OR REPLACE INTO nodes (name, pool, gpus, cpus, mem, labels, address,"
	  " service, health, reason, last_seen, service_by, service_since, admin_hold,"
	  " repair_action) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)" },
	{ ST_NODE_DELETE, "DELETE FROM nodes WHERE name = ?" },
	{ ST_COUNT, NULL },
};

void store_node_put(struct store *s, const struct store_node_row *n)
{
	struct op *op = op_new(s, ST_NODE_PUT, 15);

	op_text(op, 0, n->name);
	op_text(op, 1, n->pool);
	op_int(op, 2, n->capacity.gpus);
	op_int(op, 3, n->capacity.cpus);
	op_int(op, 4, n->capacity.mem);
	op_strv(op, 5, n->labels, n->nlabels);
	op_text(op, 6, n->address);
	op_text(op, 7, n->service);
	op_text(op, 8, n->health);
	op_text(op, 9, n->reason);
	op_int(op, 10, n->last_seen_ms);
	op_text(op, 11, n->service_by);
	op_int(op, 12, n->service_since_ms);
	op_int(op, 13, n->admin_hold);
	op_text(op, 14, n->repair_action);
}

void store_node_delete(struct store *s, const char *name)
{
	struct op *op = op_new(s, ST_NODE_DELETE, 1);

	op_text(op, 0, name);
}

static void node_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	struct col_strv labels;
	struct store_node_row n = {
		.name = col_text(q, 0),
		.pool = col_text(q, 1),
		.capacity = { sqlite3_column_int64(q, 2), sqlite3_column_int64(q, 3),
			      sqlite3_column_int64(q, 4) },
		.address = col_text(q, 6),
		.service = col_text(q, 7),
		.health = col_text(q, 8),
		.reason = col_text(q, 9),
		.last_seen_ms = sqlite3_column_int64(q, 10),
		.service_by = col_text(q, 11),
		.service_since_ms = sqlite3_column_int64(q, 12),
		.admin_hold = sqlite3_column_int64(q, 13) != 0,
		.repair_action = col_text(q, 14),
	};

	col_strv_blob(&labels, q, 5);
	n.labels = labels.v;
	n.nlabels = labels.n;
	cb->on_node(arg, &n);
	col_strv_free(&labels);
}

int store_load_nodes(struct store *s, const struct store_loader *cb, void *arg)
{
	return store_load_rows(s,
		"SELECT name, pool, gpus, cpus, mem, labels, address, service, health, reason,"
		" last_seen, service_by, service_since, admin_hold, repair_action FROM nodes"
		" ORDER BY name",
		node_row, cb, arg);
}
