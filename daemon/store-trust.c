/*
 * store-trust.c: the join_tokens and node_certs tables: the bootstrap
 * tokens nodes join with (only a hash of each secret) and every node
 * certificate hpqd issued, with its revocation.
 */
#include "store-internal.h"

const struct stmt_def store_trust_stmts[] = {
	{ ST_TOKEN_PUT,
	  "INSERT OR REPLACE INTO join_tokens (id, secret_hash, pool, expires, uses_left,"
	  " created_by, created) VALUES (?,?,?,?,?,?,?)" },
	{ ST_TOKEN_DELETE, "DELETE FROM join_tokens WHERE id = ?" },
	{ ST_CERT_PUT,
	  "INSERT OR REPLACE INTO node_certs (serial, node, pool, issued, not_after, revoked)"
	  " VALUES (?,?,?,?,?,?)" },
	{ ST_CERT_DELETE, "DELETE FROM node_certs WHERE serial = ?" },
	{ ST_COUNT, NULL },
};

void store_token_put(struct store *s, const struct store_token_row *t)
{
	struct op *op = op_new(s, ST_TOKEN_PUT, 7);

	op_text(op, 0, t->id);
	op_text(op, 1, t->secret_hash);
	op_text(op, 2, t->pool);
	op_int(op, 3, t->expires_ms);
	op_int(op, 4, t->uses_left);
	op_text(op, 5, t->created_by);
	op_int(op, 6, t->created_ms);
}

void store_token_delete(struct store *s, const char *id)
{
	op_text(op_new(s, ST_TOKEN_DELETE, 1), 0, id);
}

void store_cert_put(struct store *s, const struct store_cert_row *c)
{
	struct op *op = op_new(s, ST_CERT_PUT, 6);

	op_text(op, 0, c->serial);
	op_text(op, 1, c->node);
	op_text(op, 2, c->pool);
	op_int(op, 3, c->issued_ms);
	op_int(op, 4, c->not_after_ms);
	op_int(op, 5, c->revoked_ms);
}

void store_cert_delete(struct store *s, const char *serial)
{
	op_text(op_new(s, ST_CERT_DELETE, 1), 0, serial);
}

static void token_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	struct store_token_row t = {
		.id = col_text(q, 0),
		.secret_hash = col_text(q, 1),
		.pool = col_text(q, 2),
		.expires_ms = sqlite3_column_int64(q, 3),
		.uses_left = (uint32_t)sqlite3_column_int64(q, 4),
		.created_by = col_text(q, 5),
		.created_ms = sqlite3_column_int64(q, 6),
	};

	cb->on_token(arg, &t);
}

static void cert_row(sqlite3_stmt *q, const struct store_loader *cb, void *arg)
{
	struct store_cert_row c = {
		.serial = col_text(q, 0),
		.node = col_text(q, 1),
		.pool = col_text(q, 2),
		.issued_ms = sqlite3_column_int64(q, 3),
		.not_after_ms = sqlite3_column_int64(q, 4),
		.revoked_ms = sqlite3_column_int64(q, 5),
	};

	cb->on_cert(arg, &c);
}

int store_load_trust(struct store *s, const struct store_loader *cb, void *arg)
{
	int rc = SQLITE_OK;

	if (cb->on_token)
		rc = store_load_rows(s,
			"SELECT id, secret_hash, pool, expires, uses_left, created_by, created"
			" FROM join_tokens ORDER BY created", token_row, cb, arg);
	if (rc == SQLITE_OK && cb->on_cert)
		rc = store_load_rows(s,
			"SELECT serial, node, pool, issued, not_after, revoked FROM node_certs"
			" ORDER BY issued", cert_row, cb, arg);
	return rc;
}
