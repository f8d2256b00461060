/*
 * upgrade.c: hpq upgrade-check's checks (upgrade.h). Each is one entry of
 * upgrade_checks[]: an id that scripts can rely on, a description, and a
 * function that reads struct upgrade_ctx, lists what it found and raises
 * the status. A check never changes anything.
 *
 * What decides ERROR against WARNING: ERROR when the upgrade as it stands
 * would fail or refuse someone (an agent outside the target's protocol
 * window, a config key the target does not know, a deprecated thing the
 * target removes, too little room for its migrations, too many nodes
 * out); WARNING when it would go through but cost something (work
 * disrupted, no fresh backup, deprecated use the target still serves).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "deprecation.h"
#include "list.h"
#include "node.h"
#include "state.h"
#include "store.h"
#include "task.h"
#include "team.h"
#include "upgrade.h"
#include "xalloc.h"

const char *upgrade_status_name(enum upgrade_status s)
{
	return s == UPGRADE_ERROR ? "ERROR" : s == UPGRADE_WARNING ? "WARNING" : "PASSING";
}

static void raise_to(struct upgrade_result *r, enum upgrade_status s)
{
	if (s > r->status)
		r->status = s;
}

static void push(struct upgrade_result *r, char *s)
{
	r->affected = xreallocarray(r->affected, r->naffected + 1, sizeof(*r->affected));
	r->affected[r->naffected++] = s;
}

static void __attribute__((format(printf, 2, 3)))
affected(struct upgrade_result *r, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (r->naffected >= UPGRADE_AFFECTED_MAX) {
		r->more++;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s)
		push(r, s);
}

/* The recommendation: the first one said wins, as the checks say the most
 * pressing first. */
static void __attribute__((format(printf, 3, 4)))
recommend(struct upgrade_result *r, enum upgrade_status s, const char *fmt, ...)
{
	va_list ap;

	raise_to(r, s);
	if (r->recommendation)
		return;
	va_start(ap, fmt);
	if (vasprintf(&r->recommendation, fmt, ap) < 0)
		r->recommendation = NULL;
	va_end(ap);
}

/* ---------------------------------------------------------------- the checks */

/* Agents: the release each one announced, against the target's window. */
static void check_agent_skew(const struct upgrade_ctx *x, struct upgrade_result *r)
{
	const struct hpq_release *t = x->target;
	size_t bad = 0, unknown = 0;

	for (uint32_t i = 0; i < x->st->nnodes; i++) {
		const struct node *n = x->st->nodes[i];
		const struct hpq_release *rel;

		if (!n)
			continue;
		if (!n->software_version || !*n->software_version) {
			unknown++;
			affected(r, "%s: no version (its agent has not registered)", n->name);
			continue;
		}
		rel = hpq_catalog_find(x->cat, n->software_version);
		if (!rel) {
			unknown++;
			affected(r, "%s: %s, not in the catalogue", n->name, n->software_version);
		} else if (rel->protocol < t->protocol_min || rel->protocol > t->protocol) {
			bad++;
			affected(r, "%s: %s (protocol %u; %s accepts %u to %u)", n->name,
				 n->software_version, rel->protocol, t->version, t->protocol_min,
				 t->protocol);
		}
	}
	if (bad)
		recommend(r, UPGRADE_ERROR, "upgrade these agents to a release of protocol %u "
			  "to %u before hpqd moves to %s: it would refuse them", t->protocol_min,
			  t->protocol, t->version);
	if (unknown)
		recommend(r, UPGRADE_WARNING, "find these agents' versions (hpq versions) and "
			  "check them against %s's protocol window %u to %u", t->version,
			  t->protocol_min, t->protocol);
}

/* The hpq that asks: the target must still accept it. */
static void check_client_skew(const struct upgrade_ctx *x, struct upgrade_result *r)
{
	const struct hpq_release *t = x->target;

	if (x->client_protocol >= t->protocol_min && x->client_protocol <= t->protocol)
		return;
	affected(r, "this hpq: %s (protocol %u; %s accepts %u to %u)", x->client_version,
		 x->client_protocol, t->version, t->protocol_min, t->protocol);
	recommend(r, UPGRADE_ERROR, "upgrade the hpq command on client hosts right after "
		  "hpqd and the agents: %s refuses protocol %u", t->version, x->client_protocol);
}

/* Deprecated things used lately, by whom. */
static void check_deprecated(const struct upgrade_ctx *x, struct upgrade_result *r)
{
	size_t n;
	const struct deprecated_use *u = deprecation_uses(x->dp, &n);
	const struct deprecation *removed = NULL, *served = NULL;

	for (size_t i = 0; i < n; i++) {
		const struct deprecation *d = u[i].dep;
		bool gone = hpq_version_cmp(x->target->version, d->removed) >= 0;
		char first[32], last[32];

		if (x->now_ms - u[i].last_ms > UPGRADE_DEPRECATED_RECENT_MS)
			continue;
		hpq_utc_iso(u[i].first_ms, first, sizeof(first));
		hpq_utc_iso(u[i].last_ms, last, sizeof(last));
		affected(r, "%s %s: %s, %" PRIu64 " time%s from %s to %s (deprecated in %s, "
			 "removed in %s%s)", d->kind, d->id, u[i].who, u[i].count,
			 u[i].count == 1 ? "" : "s", first, last, d->since, d->removed,
			 gone ? ": by the target" : "");
		if (gone && !removed)
			removed = d;
		if (!gone && !served)
			served = d;
	}
	if (removed)
		recommend(r, UPGRADE_ERROR, "%s no longer accepts %s: %s", x->target->version,
			  removed->what, removed->instead);
	if (served)
		recommend(r, UPGRADE_WARNING, "%s still accepts %s, but %s will not: %s",
			  x->target->version, served->what, served->removed, served->instead);
}

/* The target's migrations: room for them, and a backup to go back to. */
static void check_schema(const struct upgrade_ctx *x, struct upgrade_result *r)
{
	const struct store_backup_info *b = x->backup;
	uint64_t db = b ? b->db_bytes : 0, need;
	char when[32];
	bool fresh;

	if (x->target->schema < x->schema) {
		affected(r, "the database is at schema %u; %s writes %u", x->schema,
			 x->target->version, x->target->schema);
		recommend(r, UPGRADE_ERROR, "%s cannot open a database of a newer schema: "
			  "choose a target at schema %u or later", x->target->version, x->schema);
		return;
	}
	if (x->target->schema == x->schema)
		return;
	/* A migration rewrites tables in one transaction: the WAL can grow to
	 * the database's size again, and a copy for safety takes as much. */
	need = 2 * db;
	affected(r, "migrations %u to %u will run at %s's first start (database %" PRIu64
		 " bytes; about %" PRIu64 " bytes free needed, %" PRIu64 " free)",
		 x->schema + 1, x->target->schema, x->target->version, db, need,
		 x->free_bytes);
	if (b && b->has) {
		hpq_utc_iso(b->time_ms, when, sizeof(when));
		fresh = x->now_ms - b->time_ms <= UPGRADE_BACKUP_FRESH_MS && b->schema == x->schema;
		affected(r, "newest backup: %s at %s (schema %u)%s", b->path, when, b->schema,
			 fresh ? "" : ": not fresh");
	} else {
		fresh = false;
		affected(r, "no backup recorded (hpqd --backup PATH records one)");
	}
	if (x->free_bytes != UINT64_MAX && x->free_bytes < need)
		recommend(r, UPGRADE_ERROR, "free at least %" PRIu64 " bytes on the state "
			  "directory's file system before upgrading", need - x->free_bytes);
	if (!fresh)
		recommend(r, UPGRADE_WARNING, "run hpqd --backup PATH just before the upgrade: "
			  "a migrated database cannot go back");
}

/* Nodes out of service: too many and the upgrade has no room to drain. */
static void check_health(const struct upgrade_ctx *x, struct upgrade_result *r)
{
	uint32_t total = 0, out = 0;
	uint32_t max = x->cfg->repair.max_unhealthy_percent;

	for (uint32_t i = 0; i < x->st->nnodes; i++) {
		const struct node *n = x->st->nodes[i];
		const char *why = NULL;

		if (!n)
			continue;
		total++;
		if (!n->connected || n->lost || (n->health && !strcmp(n->health, "unreachable")))
			why = "unreachable";
		else if (n->health && !strcmp(n->health, "unhealthy"))
			why = "unhealthy";
		else if (n->service && strcmp(n->service, "active"))
			why = n->service;
		if (!why)
			continue;
		out++;
		affected(r, "%s: %s%s%s", n->name, why, n->reason && *n->reason ? ": " : "",
			 n->reason ? n->reason : "");
	}
	if (!out)
		return;
	if ((uint64_t)out * 100 > (uint64_t)max * total)
		recommend(r, UPGRADE_ERROR, "%u of %u nodes are out of service, above [repair] "
			  "max_unhealthy_percent (%u%%): bring them back or remove them (hpq node "
			  "resume, hpq node remove) first", out, total, max);
	else
		recommend(r, UPGRADE_WARNING, "%u of %u nodes are out of service: upgrade their "
			  "agents once they are back", out, total);
}

/* Running work an agent's restart or a node's drain would cost. */
static void check_disruption(const struct upgrade_ctx *x, struct upgrade_result *r)
{
	struct task *t;
	size_t fixed = 0, unsaved = 0;

	dlist_for_each_entry(t, (struct dlist *)&x->st->running, run_link) {
		const struct prio_class *c = state_class_find(x->st, t->cls);
		bool pre = c && c->preemptible;
		bool saved = t->ckpt.has && x->now_ms - t->ckpt.time_ms <=
						  UPGRADE_CHECKPOINT_RECENT_MS;
		const char *node = t->n_node_names ? t->node_names[0] : "";

		if (pre && saved)
			continue;
		fixed += !pre;
		unsaved += !saved;
		affected(r, "task %" PRIu64 " (%s, class %s) on %s%s: %s%s%s", t->st.id,
			 t->user, t->cls, node, t->n_node_names > 1 ? " and others" : "",
			 pre ? "" : "not preemptible", !pre && !saved ? ", " : "",
			 saved ? "" : t->ckpt.has ? "no checkpoint in the last hour"
						  : "no checkpoint");
	}
	if (fixed)
		recommend(r, UPGRADE_WARNING, "upgrade the nodes of non-preemptible tasks last "
			  "(hpq node drain waits for them), or after the tasks end");
	if (unsaved)
		recommend(r, UPGRADE_WARNING, "ask these tasks to checkpoint (hpq checkpoint) "
			  "before draining their nodes");
}

/* hpqd.conf's keys against the target's: one it does not know stops it. */
static void check_config_keys(const struct upgrade_ctx *x, struct upgrade_result *r)
{
	const struct hpq_release *t = x->target;
	size_t unknown = 0;

	if (!t->has_config_keys) {
		if (x->cfg->nfile_keys)
			recommend(r, UPGRADE_WARNING, "the catalogue does not list %s's config "
				  "keys: compare %s with its hpqd.conf by hand", t->version,
				  x->cfg->file ? x->cfg->file : "hpqd.conf");
		return;
	}
	for (size_t i = 0; i < x->cfg->nfile_keys; i++) {
		char sec[128];
		const char *k = x->cfg->file_keys[i], *dot = strrchr(k, '.');

		if (!dot || (size_t)(dot - k) >= sizeof(sec))
			continue;
		memcpy(sec, k, (size_t)(dot - k));
		sec[dot - k] = '\0';
		if (hpq_release_knows_key(t, sec, dot + 1))
			continue;
		unknown++;
		affected(r, "%s: [%s] %s", x->cfg->file ? x->cfg->file : "hpqd.conf", sec,
			 dot + 1);
	}
	if (unknown)
		recommend(r, UPGRADE_ERROR, "remove or rename these keys: hpqd %s refuses to "
			  "start with a key it does not know", t->version);
}

const struct upgrade_check upgrade_checks[] = {
	{ "agent-version-skew",
	  "every agent's release is within the target's protocol window (protocol_min to "
	  "protocol)", check_agent_skew },
	{ "client-version-skew",
	  "this hpq command's protocol is within the target's window", check_client_skew },
	{ "deprecated-use",
	  "nothing deprecated was used in the last 30 days (protocol versions, request "
	  "fields, config keys), by whom and when", check_deprecated },
	{ "schema-migrations",
	  "the target's schema migrations: room on the disk and a fresh backup "
	  "(hpqd --backup, within a day)", check_schema },
	{ "node-health",
	  "unhealthy, draining, drained or unreachable nodes are within [repair] "
	  "max_unhealthy_percent", check_health },
	{ "disrupted-work",
	  "no running task is non-preemptible or without a checkpoint in the last hour",
	  check_disruption },
	{ "config-keys",
	  "every key in hpqd.conf is known to the target", check_config_keys },
};

const size_t upgrade_ncheck = sizeof(upgrade_checks) / sizeof(upgrade_checks[0]);

enum upgrade_status upgrade_run(const struct upgrade_ctx *x, struct upgrade_result **results)
{
	struct upgrade_result *v = xcalloc(upgrade_ncheck, sizeof(*v));
	enum upgrade_status worst = UPGRADE_PASSING;

	for (size_t i = 0; i < upgrade_ncheck; i++) {
		upgrade_checks[i].fn(x, &v[i]);
		if (v[i].more) {
			char *s = NULL;

			xasprintf(&s, "and %zu more", v[i].more);
			push(&v[i], s);
		}
		if (v[i].status > worst)
			worst = v[i].status;
	}
	*results = v;
	return worst;
}

void upgrade_results_free(struct upgrade_result *results)
{
	if (!results)
		return;
	for (size_t i = 0; i < upgrade_ncheck; i++) {
		for (size_t k = 0; k < results[i].naffected; k++)
			free(results[i].affected[k]);
		free(results[i].affected);
		free(results[i].recommendation);
	}
	free(results);
}
