/*
 * store-nodes.c: the nodes table: each node's pool, capacity, labels,
 * address, health and service administration; and the autoscaler's
 * nodes (autoscale_nodes: launched, registered, leaving).
 */
#include "error.h"
#include "store-internal.h"

const struct stmt_def store_node_stmts[] = {
	{ ST_NODE_PUT,
	  "INSERT OR REPLACE INTO nodes (name, pool, gpus, cpus, mem, labels, address,"
	  " service, health, reason, last_seen, service_by, service_since, admin_hold,"
	  " repair_action) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)" },
	{ ST_NODE_DELETE, "DELETE FROM nodes WHERE name = ?" },
	{ ST_ASNODE_PUT,
	  "INSERT OR REPLACE INTO autoscale_nodes (name, pool, state, launched_ms, born_ms,"
	  " replaces) VALUES (?,?,?,?,?,?)" },
	{ ST_ASNODE_DELETE, "DELETE FROM autoscale_nodes WHERE name = ?" },
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

void store_asnode_put(struct store *s, const struct store_asnode_row *a)
{
	struct op *op = op_new(s, ST_ASNODE_PUT, 6);

	op_text(op, 0, a->name);
	op_text(op, 1, a->pool);
	op_text(op, 2, a->state);
	op_int(op, 3, a->launched_ms);
	op_int(op, 4, a->born_ms);
	op_text(op, 5, a->replaces);
}

void store_asnode_delete(struct store *s, const char *name)
{
	struct op *op = op_new(s, ST_ASNODE_DELETE, 1);

	op_text(op, 0, name);
}

struct asnode_load {
	void (*fn)(void *arg, const struct store_asnode_row *a);
	void *arg;
};

static void asnode_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	const struct asnode_load *l = arg;
	struct store_asnode_row a = {
		.name = col_text(q, 0),
		.pool = col_text(q, 1),
		.state = col_text(q, 2),
		.launched_ms = sqlite3_column_int64(q, 3),
		.born_ms = sqlite3_column_int64(q, 4),
		.replaces = col_text(q, 5),
	};

	(void)cb;
	l->fn(l->arg, &a);
}

int store_load_asnodes(struct store *s, void (*fn)(void *arg, const struct store_asnode_row *a),
		       void *arg, char *err, size_t errlen)
{
	struct asnode_load l = { fn, arg };
	int rc = store_load_rows(s,
		"SELECT name, pool, state, launched_ms, born_ms, replaces FROM autoscale_nodes"
		" ORDER BY name",
		asnode_row, NULL, &l);

	if (rc != SQLITE_OK)
		return hpq_errf(err, errlen, HPQ_ESTORAGE, "cannot read the autoscaler's nodes: %s",
				sqlite3_errstr(rc));
	return 0;
}
