/*
 * test_daemon_upgrade.c: hpq upgrade-check's table (daemon/upgrade.c) and
 * the record of deprecated use (daemon/deprecation.c), with the real state
 * and store on temporary files:
 *
 *   - the table: ids unique and stable in form, every entry whole; the
 *     deprecation table names real releases, each removed after it was
 *     deprecated;
 *   - the record: a use is written at once when new, then at most once a
 *     minute however often it is noted, and what is left at close; it is
 *     read back after a reopen with its first and last use and count; a
 *     row of a newer hpqd is ignored; past DEPRECATION_MAX_USES users a
 *     thing's users are counted as "(others)";
 *   - the checks on a small cluster against releases of a catalogue: agents
 *     outside the target's protocol window are ERROR, of unknown versions
 *     WARNING; deprecated use is ERROR when the target removes it, WARNING
 *     when it still serves it; migrations need room and a fresh backup;
 *     out-of-service nodes against [repair] max_unhealthy_percent;
 *     non-preemptible running tasks; config keys the target does not know;
 *     a client outside the window.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "catalog.h"
#include "config.h"
#include "daemon_fixture.h"
#include "deprecation.h"
#include "error.h"
#include "hpq.pb-c.h"
#include "node.h"
#include "state.h"
#include "store.h"
#include "submit.h"
#include "task.h"
#include "team.h"
#include "upgrade.h"
#include "xalloc.h"

struct upgrade_fix {
	struct fix fx;
	struct deprecations *dp;
};

static const struct actor alice = { .user = "alice", .uid = 1000, .gid = 1000, .known = true };

/* fix_open, with the record of deprecated use opened after the load. */
static void open_all(struct upgrade_fix *uf)
{
	struct fix *f = &uf->fx;
	char err[256] = "";

	if (store_open(f->path, f->flags, &f->s, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	state_init(&f->st, f->s);
	if (state_load(&f->st, err, sizeof(err)) < 0)
		fail_msg("state_load: %s", err);
	if (deprecation_open(f->s, &uf->dp, err, sizeof(err)) < 0)
		fail_msg("deprecation_open: %s", err);
	assert_int_equal(store_start(f->s, &f->loop, NULL, NULL), 0);
}

/* The record writes what is left, then fix_commit_close. */
static void close_all(struct upgrade_fix *uf)
{
	deprecation_close(uf->dp);
	uf->dp = NULL;
	fix_commit_close(&uf->fx);
}

static int setup(void **ts)
{
	struct upgrade_fix *uf = xcalloc(1, sizeof(*uf));

	fix_init(&uf->fx, "upgrade", 0);
	open_all(uf);
	*ts = uf;
	return 0;
}

static int teardown(void **ts)
{
	struct upgrade_fix *uf = *ts;

	close_all(uf);
	fix_fini(&uf->fx);
	free(uf);
	return 0;
}

/* ---------------------------------------------------------------- the tables */

static void tables_are_whole(void **ts)
{
	(void)ts;
	assert_true(upgrade_ncheck >= 7);
	for (size_t i = 0; i < upgrade_ncheck; i++) {
		const struct upgrade_check *c = &upgrade_checks[i];

		assert_non_null(c->fn);
		assert_true(c->description && strlen(c->description) > 10);
		assert_true(*c->id && strspn(c->id, "abcdefghijklmnopqrstuvwxyz-") ==
						strlen(c->id));
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(upgrade_checks[k].id, c->id);
	}
	for (size_t i = 0; i < DEPRECATED_COUNT; i++) {
		const struct deprecation *d = &deprecation_table[i];

		assert_non_null(d->id);
		assert_ptr_equal(deprecation_find(d->id), d);
		assert_true(hpq_version_cmp(d->since, "0.0.0") > 0);
		assert_true(hpq_version_cmp(d->removed, d->since) > 0);
		assert_true(d->what && d->instead && d->kind);
		assert_true(!d->section == !d->key);
	}
	assert_null(deprecation_find("no-such-thing"));
	assert_string_equal(upgrade_status_name(UPGRADE_ERROR), "ERROR");
}

/* ---------------------------------------------------------------- the record */

static int64_t row_count(struct fix *f, const char *what, const char *who)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int64_t n = -1;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count FROM deprecated_uses WHERE what = ?"
					    " AND who = ?", -1, &q, NULL), SQLITE_OK);
	sqlite3_bind_text(q, 1, what, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, who, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static const struct deprecated_use *use_of(struct upgrade_fix *uf, const char *what,
					   const char *who)
{
	size_t n;
	const struct deprecated_use *u = deprecation_uses(uf->dp, &n);

	for (size_t i = 0; i < n; i++)
		if (!strcmp(u[i].dep->id, what) && !strcmp(u[i].who, who))
			return &u[i];
	return NULL;
}

static void record_is_rate_limited_and_kept(void **ts)
{
	struct upgrade_fix *uf = *ts;
	struct fix *f = &uf->fx;
	const struct deprecated_use *u;
	const int64_t t0 = 1700000000000;
	sqlite3 *db;

	deprecation_note(uf->dp, DEPRECATED_PROTOCOL_1, "agent n1", t0);
	fix_commit(f);
	assert_int_equal(row_count(f, "protocol-1", "agent n1"), 1);
	/* Within the minute: memory only. */
	for (int i = 1; i <= 100; i++)
		deprecation_note(uf->dp, DEPRECATED_PROTOCOL_1, "agent n1", t0 + i * 100);
	fix_commit(f);
	assert_int_equal(row_count(f, "protocol-1", "agent n1"), 1);
	u = use_of(uf, "protocol-1", "agent n1");
	assert_non_null(u);
	assert_int_equal(u->count, 101);
	/* A minute on: written again. */
	deprecation_note(uf->dp, DEPRECATED_PROTOCOL_1, "agent n1", t0 + DEPRECATION_WRITE_MS);
	fix_commit(f);
	assert_int_equal(row_count(f, "protocol-1", "agent n1"), 102);
	deprecation_note(uf->dp, DEPRECATED_PROTOCOL_1, "agent n1", t0 + DEPRECATION_WRITE_MS + 5);
	deprecation_note(uf->dp, DEPRECATED_LIST_STATE, "alice", t0 + 7);
	deprecation_note(uf->dp, DEPRECATED_NODES_UNREACHABLE, "/etc/hpq/hpqd.conf", t0 + 9);
	fix_commit(f);
	assert_int_equal(row_count(f, "protocol-1", "agent n1"), 102);

	/* A row of a newer hpqd, whose thing this one does not know. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO deprecated_uses VALUES ('future-thing',"
				      " 'x', 1, 2, 3)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	/* Close writes the rest; a reopen reads it all back. */
	close_all(uf);
	open_all(uf);
	u = use_of(uf, "protocol-1", "agent n1");
	assert_non_null(u);
	assert_int_equal(u->count, 103);
	assert_int_equal(u->first_ms, t0);
	assert_int_equal(u->last_ms, t0 + DEPRECATION_WRITE_MS + 5);
	u = use_of(uf, "list-request-state", "alice");
	assert_non_null(u);
	assert_int_equal(u->count, 1);
	assert_non_null(use_of(uf, "config-nodes-unreachable_after", "/etc/hpq/hpqd.conf"));
	{
		size_t n;

		deprecation_uses(uf->dp, &n);
		assert_int_equal(n, 3);           /* not the future thing */
	}

	/* Past the cap, new users are "(others)". */
	for (int i = 0; i < DEPRECATION_MAX_USES + 10; i++) {
		char who[32];

		snprintf(who, sizeof(who), "client u%d", i);
		deprecation_note(uf->dp, DEPRECATED_LIST_STATE, who, t0 + 1000);
	}
	u = use_of(uf, "list-request-state", "(others)");
	assert_non_null(u);
	assert_true(u->count >= 10);
	/* A core without a record notes nothing, and says so with no uses. */
	deprecation_note(NULL, DEPRECATED_LIST_STATE, "x", t0);
}

/* ---------------------------------------------------------------- the checks */

static void node(struct fix *f, const char *name, const char *version)
{
	Hpq__Register reg = HPQ__REGISTER__INIT;
	Hpq__Resources cap = HPQ__RESOURCES__INIT;
	struct state_err e;
	struct node *n;

	cap.gpus = 8;
	cap.cpus = 64;
	cap.mem = 512 * 1024;
	reg.name = (char *)name;
	reg.pool = "default";
	reg.capacity = &cap;
	reg.address = "10.0.0.1";
	if (state_node_register(&f->st, &reg, version, &n, &e) < 0)
		fail_msg("register: %s", e.msg);
	n->connected = true;
}

static struct node *node_named(struct fix *f, const char *name)
{
	for (uint32_t i = 0; i < f->st.nnodes; i++)
		if (f->st.nodes[i] && !strcmp(f->st.nodes[i]->name, name))
			return f->st.nodes[i];
	return NULL;
}

static struct task *run_task(struct fix *f)
{
	static char *argv[] = { "/bin/train" };
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	struct state_err e;
	struct task *t;

	res.gpus = 1;
	res.cpus = 1;
	spec.nodes = 1;
	spec.per_node = &res;
	spec.n_argv = 1;
	spec.argv = argv;
	if (state_task_submit(&f->st, &spec, &alice, &t, &e) < 0)
		fail_msg("submit: %s", e.msg);
	fix_cycle(&f->st);
	assert_int_equal(t->state, TASK_RUNNING);
	return t;
}

static struct hpq_release rel(const char *v, uint32_t p, uint32_t pmin, uint32_t schema)
{
	struct hpq_release r = { .released = "2026-01-01", .standard_end = "2027-01-01",
				 .extended_end = "2028-01-01", .protocol = p, .protocol_min = pmin,
				 .schema = schema };

	snprintf(r.version, sizeof(r.version), "%s", v);
	return r;
}

static const struct upgrade_result *result(struct upgrade_result *res, const char *id)
{
	for (size_t i = 0; i < upgrade_ncheck; i++)
		if (!strcmp(upgrade_checks[i].id, id))
			return &res[i];
	fail_msg("no check %s", id);
	return NULL;
}

static bool mentions(const struct upgrade_result *r, const char *what)
{
	for (size_t i = 0; i < r->naffected; i++)
		if (strstr(r->affected[i], what))
			return true;
	return false;
}

static void expect(struct upgrade_result *res, const char *id, enum upgrade_status s,
		   const char *mention)
{
	const struct upgrade_result *r = result(res, id);

	if (r->status != s || (mention && !mentions(r, mention))) {
		fprintf(stderr, "%s: %s, recommendation '%s'\n", id, upgrade_status_name(r->status),
			r->recommendation ? r->recommendation : "");
		for (size_t i = 0; i < r->naffected; i++)
			fprintf(stderr, "  - %s\n", r->affected[i]);
		fail_msg("%s: wanted %s mentioning '%s'", id, upgrade_status_name(s),
			 mention ? mention : "");
	}
	if (s != UPGRADE_PASSING)
		assert_non_null(r->recommendation);
}

static void checks_on_a_cluster(void **ts)
{
	struct upgrade_fix *uf = *ts;
	struct fix *f = &uf->fx;
	struct hpq_release v[3] = { rel("0.1.0", 1, 1, 8), rel("0.2.0", 2, 1, 9),
				    rel("0.3.0", 3, 2, 10) };
	struct hpq_catalog cat = { .v = v, .n = 3 };
	char *keys3[] = { "hpqd.listen", "agents.*" };
	struct store_backup_info backup = { .db_bytes = 1000 };
	struct config cfg;
	struct upgrade_result *res;
	const int64_t now = 1800000000000;
	struct upgrade_ctx x = {
		.st = &f->st, .cfg = &cfg, .dp = uf->dp, .cat = &cat, .target = &v[1],
		.daemon_version = "0.2.0", .schema = 9, .client_version = "0.2.0",
		.client_protocol = 2, .backup = &backup, .free_bytes = 1 << 20, .now_ms = now,
	};
	struct task *t;

	v[2].config_keys = keys3;
	v[2].nconfig_keys = 2;
	v[2].has_config_keys = true;
	config_init(&cfg);
	cfg.file = xstrdup("/etc/hpq/hpqd.conf");
	cfg.file_keys = xcalloc(2, sizeof(char *));
	cfg.file_keys[cfg.nfile_keys++] = xstrdup("hpqd.listen");
	cfg.file_keys[cfg.nfile_keys++] = xstrdup("nodes.unreachable_after");

	/* An empty cluster, the same release: everything passes but the keys,
	 * which the catalogue does not list for 0.2.0 (a warning). */
	assert_int_equal(upgrade_run(&x, &res), UPGRADE_WARNING);
	expect(res, "agent-version-skew", UPGRADE_PASSING, NULL);
	expect(res, "client-version-skew", UPGRADE_PASSING, NULL);
	expect(res, "deprecated-use", UPGRADE_PASSING, NULL);
	expect(res, "schema-migrations", UPGRADE_PASSING, NULL);
	expect(res, "node-health", UPGRADE_PASSING, NULL);
	expect(res, "disrupted-work", UPGRADE_PASSING, NULL);
	expect(res, "config-keys", UPGRADE_WARNING, NULL);
	upgrade_results_free(res);

	node(f, "old", "0.1.0");
	node(f, "new", "0.2.0");
	node(f, "odd", "9.9.9");
	node(f, "n4", "0.2.0");
	node(f, "n5", "0.2.0");
	t = run_task(f);
	state_class_find(&f->st, t->cls)->preemptible = false;
	deprecation_note(uf->dp, DEPRECATED_PROTOCOL_1, "agent old", now - 1000);
	deprecation_note(uf->dp, DEPRECATED_LIST_STATE, "bob", now - 40LL * 24 * 3600 * 1000);

	/* To 0.2.0: the old agent is within the window, the odd one unknown;
	 * protocol 1 is still served (a warning); bob's use is too old to count. */
	assert_int_equal(upgrade_run(&x, &res), UPGRADE_WARNING);
	expect(res, "agent-version-skew", UPGRADE_WARNING, "odd: 9.9.9");
	assert_false(mentions(result(res, "agent-version-skew"), "old:"));
	expect(res, "deprecated-use", UPGRADE_WARNING, "agent old");
	assert_false(mentions(result(res, "deprecated-use"), "bob"));
	expect(res, "disrupted-work", UPGRADE_WARNING, "not preemptible");
	upgrade_results_free(res);

	/* To 0.3.0: protocol 2 to 3, protocol 1 removed, schema 10, keys known. */
	x.target = &v[2];
	{
		struct node *n4 = node_named(f, "n4");

		free(n4->service);
		n4->service = xstrdup("draining");
	}
	assert_int_equal(upgrade_run(&x, &res), UPGRADE_ERROR);
	expect(res, "agent-version-skew", UPGRADE_ERROR, "old: 0.1.0 (protocol 1");
	expect(res, "deprecated-use", UPGRADE_ERROR, "removed in 0.3.0: by the target");
	expect(res, "schema-migrations", UPGRADE_WARNING, "no backup recorded");
	expect(res, "node-health", UPGRADE_WARNING, "n4: draining");   /* 1 of 5: 20% */
	expect(res, "config-keys", UPGRADE_ERROR, "[nodes] unreachable_after");
	assert_false(mentions(result(res, "config-keys"), "listen"));
	expect(res, "client-version-skew", UPGRADE_PASSING, NULL);
	upgrade_results_free(res);

	/* A fresh backup and room: the migrations pass; too little room fails;
	 * a second node out is above 20%; a protocol 1 client is refused. */
	backup.has = true;
	backup.path = "/backups/hpq.db";
	backup.time_ms = now - 3600 * 1000;
	backup.schema = 9;
	node_named(f, "new")->connected = false;
	x.client_protocol = 1;
	x.client_version = "0.1.0";
	assert_int_equal(upgrade_run(&x, &res), UPGRADE_ERROR);
	expect(res, "schema-migrations", UPGRADE_PASSING, "/backups/hpq.db");
	expect(res, "node-health", UPGRADE_ERROR, "new: unreachable");
	expect(res, "client-version-skew", UPGRADE_ERROR, "this hpq: 0.1.0");
	upgrade_results_free(res);
	x.free_bytes = 10;
	backup.time_ms = now - 2 * UPGRADE_BACKUP_FRESH_MS;
	assert_int_equal(upgrade_run(&x, &res), UPGRADE_ERROR);
	expect(res, "schema-migrations", UPGRADE_ERROR, "not fresh");
	upgrade_results_free(res);

	/* A target below the database's schema cannot open it. */
	x.target = &v[0];
	assert_int_equal(upgrade_run(&x, &res), UPGRADE_ERROR);
	expect(res, "schema-migrations", UPGRADE_ERROR, "schema 9");
	upgrade_results_free(res);
	config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tables_are_whole),
		cmocka_unit_test_setup_teardown(record_is_rate_limited_and_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(checks_on_a_cluster, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
