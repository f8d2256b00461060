/*
 * groups.c: users' Unix groups from NSS, cached (groups.h).
 *
 * The cache is a name map (strmap) over an array of entries, each a user
 * with the block of its group names and the time it was looked up. An
 * entry older than the TTL, or made for another primary group, is looked
 * up again when asked for; when the cache is full, the entry looked up
 * longest ago makes room. Lookups run on the loop thread, as the
 * getpwuid of the handshake does: a slow name service slows Hello.
 */
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "groups.h"
#include "log.h"
#include "strmap.h"
#include "xalloc.h"

/* Beyond these a user's groups are cut short (and a warning logged). */
#define MAX_GIDS 65536
#define MAX_GRBUF (16u << 20)

struct entry {
	char *user;                  /* the key in by_user */
	uint32_t gid;
	int64_t at_ms;
	char **names;                /* one block (groups_resolve_fn) */
	size_t n;
	size_t index;                /* in entries */
};

struct groups {
	int64_t ttl_ms;
	size_t max;
	groups_resolve_fn *resolve;
	void *arg;
	struct entry **entries;
	size_t n;
	struct strmap by_user;
};

/* The name of group gid, or NULL; *buf grows as getgrgid_r asks. */
static const char *group_name(gid_t gid, char **buf, size_t *cap)
{
	struct group gr, *res = NULL;
	int r;

	for (;;) {
		r = getgrgid_r(gid, &gr, *buf, *cap, &res);
		if (r != ERANGE || *cap >= MAX_GRBUF)
			break;
		*cap *= 2;
		*buf = xrealloc(*buf, *cap);
	}
	return r == 0 && res ? res->gr_name : NULL;
}

char **groups_nss(void *arg, const char *user, uint32_t gid, size_t *ret_n)
{
	int ngids = 32, have = 0;
	gid_t *gids = NULL;
	char **names, **block, *buf;
	size_t n = 0, cap = 4096;

	for (;;) {
		have = ngids;
		gids = xreallocarray(gids, (size_t)have, sizeof(*gids));
		if (getgrouplist(user, (gid_t)gid, gids, &ngids) >= 0)
			break;
		if (ngids <= have)
			ngids = 2 * have;
		if (ngids > MAX_GIDS) {
			log_warn("user %s is in more than %d groups: only the first %d count",
				 user, MAX_GIDS, have);
			ngids = have;
			break;
		}
	}
	names = xcalloc((size_t)ngids, sizeof(*names));
	buf = xmalloc(cap);
	for (int i = 0; i < ngids; i++) {
		const char *name = group_name(gids[i], &buf, &cap);
		bool dup = false;

		for (size_t k = 0; name && k < n && !dup; k++)
			dup = !strcmp(names[k], name);
		if (name && !dup)
			names[n++] = xstrdup(name);
	}
	block = xstrv_pack(names, n);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(buf);
	free(gids);
	*ret_n = n;
	return block;
}

struct groups *groups_new(int64_t ttl_ms, size_t max, groups_resolve_fn *resolve, void *arg)
{
	struct groups *g = xcalloc(1, sizeof(*g));

	g->ttl_ms = ttl_ms;
	g->max = max ? max : 1;
	g->resolve = resolve ? resolve : groups_nss;
	g->arg = arg;
	return g;
}

static void entry_drop(struct groups *g, struct entry *e)
{
	strmap_del(&g->by_user, e->user);
	g->entries[e->index] = g->entries[--g->n];
	g->entries[e->index]->index = e->index;
	free(e->user);
	free(e->names);
	free(e);
}

void groups_free(struct groups *g)
{
	if (!g)
		return;
	while (g->n)
		entry_drop(g, g->entries[g->n - 1]);
	free(g->entries);
	strmap_release(&g->by_user);
	free(g);
}

char **groups_of(struct groups *g, const char *user, uint32_t gid, int64_t now_ms,
		 size_t *ret_n)
{
	struct entry *e;

	if (!g)
		return groups_nss(NULL, user, gid, ret_n);
	e = strmap_get(&g->by_user, user);
	if (e && (e->gid != gid || now_ms - e->at_ms >= g->ttl_ms || now_ms < e->at_ms)) {
		entry_drop(g, e);
		e = NULL;
	}
	if (!e) {
		if (g->n >= g->max) {
			struct entry *oldest = g->entries[0];

			for (size_t i = 1; i < g->n; i++)
				if (g->entries[i]->at_ms < oldest->at_ms)
					oldest = g->entries[i];
			entry_drop(g, oldest);
		}
		e = xcalloc(1, sizeof(*e));
		e->user = xstrdup(user);
		e->gid = gid;
		e->at_ms = now_ms;
		e->names = g->resolve(g->arg, user, gid, &e->n);
		e->index = g->n;
		g->entries = xreallocarray(g->entries, g->n + 1, sizeof(*g->entries));
		g->entries[g->n++] = e;
		strmap_put(&g->by_user, e->user, e);
	}
	*ret_n = e->n;
	return xstrv_pack(e->names, e->n);
}
