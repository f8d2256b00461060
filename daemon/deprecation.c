/*
 * deprecation.c: the table of deprecated things and the record of their
 * use (deprecation.h).
 *
 * Uses are few distinct (thing, user) pairs noted many times (an old
 * client's every connection), so they live in a small array searched
 * linearly, and a row goes to the store only when a pair is new or a
 * minute has passed since its last write: a busy old client costs one row
 * a minute, not one per request.
 */
#include <stdlib.h>
#include <string.h>

#include "deprecation.h"
#include "error.h"
#include "store.h"
#include "xalloc.h"

const struct deprecation deprecation_table[DEPRECATED_COUNT] = {
	[DEPRECATED_PROTOCOL_1] = {
		.id = "protocol-1",
		.kind = "protocol",
		.what = "protocol version 1 in Hello (hpq and hpq-agent 0.1.x)",
		.since = "0.2.0",
		.removed = "0.3.0",
		.instead = "upgrade the agent or the hpq command to 0.2.x (protocol 2)",
	},
	[DEPRECATED_LIST_STATE] = {
		.id = "list-request-state",
		.kind = "request field",
		.what = "ListRequest.state, one state to list (hpq list and hpq top 0.1.x)",
		.since = "0.2.0",
		.removed = "0.3.0",
		.instead = "ListRequest.states (hpq 0.2.x sends only that)",
	},
	[DEPRECATED_NODES_UNREACHABLE] = {
		.id = "config-nodes-unreachable_after",
		.kind = "config key",
		.what = "[nodes] unreachable_after in hpqd.conf",
		.since = "0.1.0",
		.removed = "0.3.0",
		.instead = "[agents] unreachable_after, the same value",
		.section = "nodes",
		.key = "unreachable_after",
	},
};

struct deprecations {
	struct store *store;
	struct deprecated_use *v;
	size_t n, cap;
};

const struct deprecation *deprecation_find(const char *id)
{
	for (size_t i = 0; i < DEPRECATED_COUNT; i++)
		if (!strcmp(deprecation_table[i].id, id))
			return &deprecation_table[i];
	return NULL;
}

static struct deprecated_use *use_add(struct deprecations *dp, const struct deprecation *dep,
				      const char *who)
{
	struct deprecated_use *u;

	if (dp->n == dp->cap) {
		dp->cap = dp->cap ? 2 * dp->cap : 8;
		dp->v = xreallocarray(dp->v, dp->cap, sizeof(*dp->v));
	}
	u = &dp->v[dp->n++];
	memset(u, 0, sizeof(*u));
	u->dep = dep;
	u->who = xstrdup(who);
	return u;
}

static struct deprecated_use *use_find(struct deprecations *dp, const struct deprecation *dep,
				       const char *who)
{
	for (size_t i = 0; i < dp->n; i++)
		if (dp->v[i].dep == dep && !strcmp(dp->v[i].who, who))
			return &dp->v[i];
	return NULL;
}

static void on_row(void *arg, const struct store_deprecated_row *r)
{
	struct deprecations *dp = arg;
	const struct deprecation *dep = deprecation_find(r->what);
	struct deprecated_use *u;

	if (!dep)                    /* recorded by a newer hpqd: not ours to judge */
		return;
	u = use_find(dp, dep, r->who);
	if (!u)
		u = use_add(dp, dep, r->who);
	u->first_ms = r->first_seen_ms;
	u->last_ms = u->written_ms = r->last_seen_ms;
	u->count = u->written_count = r->count;
}

int deprecation_open(struct store *s, struct deprecations **ret, char *err, size_t errlen)
{
	struct deprecations *dp = xcalloc(1, sizeof(*dp));
	int r;

	dp->store = s;
	r = store_deprecated_load(s, on_row, dp, err, errlen);
	if (r < 0) {
		deprecation_close(dp);
		dp = NULL;
	}
	*ret = dp;
	return r;
}

static void write_use(struct deprecations *dp, struct deprecated_use *u)
{
	store_deprecated_put(dp->store, &(struct store_deprecated_row){
		.what = u->dep->id,
		.who = u->who,
		.first_seen_ms = u->first_ms,
		.last_seen_ms = u->last_ms,
		.count = u->count,
	});
	u->written_ms = u->last_ms;
	u->written_count = u->count;
}

void deprecation_close(struct deprecations *dp)
{
	if (!dp)
		return;
	for (size_t i = 0; i < dp->n; i++) {
		if (dp->store && dp->v[i].count != dp->v[i].written_count)
			write_use(dp, &dp->v[i]);
		free(dp->v[i].who);
	}
	free(dp->v);
	free(dp);
}

void deprecation_note(struct deprecations *dp, enum deprecation_id id, const char *who,
		      int64_t now_ms)
{
	const struct deprecation *dep;
	struct deprecated_use *u;

	if (!dp || (unsigned)id >= DEPRECATED_COUNT)
		return;
	dep = &deprecation_table[id];
	if (!who || !*who)
		who = "(unknown)";
	u = use_find(dp, dep, who);
	if (!u && dp->n >= DEPRECATION_MAX_USES) {
		who = "(others)";
		u = use_find(dp, dep, who);
	}
	if (!u) {
		u = use_add(dp, dep, who);
		u->first_ms = now_ms;
	}
	if (now_ms > u->last_ms)
		u->last_ms = now_ms;
	u->count++;
	if (!u->written_ms || now_ms - u->written_ms >= DEPRECATION_WRITE_MS)
		write_use(dp, u);
}

const struct deprecated_use *deprecation_uses(const struct deprecations *dp, size_t *n)
{
	*n = dp ? dp->n : 0;
	return dp ? dp->v : NULL;
}
