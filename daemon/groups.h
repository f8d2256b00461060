/*
 * groups.h: the Unix groups of users on hpqd's host, from NSS
 * (getgrouplist, getgrgid_r), kept briefly in a small cache.
 *
 * Team members and admins may be @groups, and [auth] admin_group makes a
 * group's members cluster administrators (docs/security.md "Rights").
 * The server asks at Hello, once it knows who the peer is, and again
 * before a request of a connection whose answer is older than the TTL
 * (hpq top, a follower of events: connections that last). The cache
 * spares the name service (files, LDAP, sssd) a lookup per `hpq` command
 * of a script in a loop, and the TTL bounds how long a change of
 * membership takes to count. The loop thread owns it.
 */
#ifndef HPQD_GROUPS_H
#define HPQD_GROUPS_H

#include <stddef.h>
#include <stdint.h>

struct groups;

#define GROUPS_TTL_MS 30000     /* a user's groups are looked up again after this */
#define GROUPS_MAX_USERS 1024   /* users cached at most; the oldest goes first */

/*
 * Looks up the names of user's groups, gid (their primary group)
 * included, as one malloc'd block: the array of *ret_n names and the
 * names themselves, freed with one free(). Returns NULL with *ret_n = 0
 * for none. Groups without a name are left out.
 */
typedef char **groups_resolve_fn(void *arg, const char *user, uint32_t gid, size_t *ret_n);

/* The name service's answer: groups_resolve_fn by getgrouplist(3). */
groups_resolve_fn groups_nss;

/* A cache of at most max users, each kept ttl_ms; resolve (NULL:
 * groups_nss) answers what it does not hold. */
struct groups *groups_new(int64_t ttl_ms, size_t max, groups_resolve_fn *resolve, void *arg);
void groups_free(struct groups *g);

/* user's groups as groups_resolve_fn gives them (a block of the caller's
 * own), from the cache while its entry is younger than the TTL at now_ms
 * (a monotonic clock). g may be NULL: then straight from NSS. */
char **groups_of(struct groups *g, const char *user, uint32_t gid, int64_t now_ms,
		 size_t *ret_n);

#endif
