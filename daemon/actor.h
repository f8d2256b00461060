/*
 * actor.h: who asks for a change (a user over a connection, an agent
 * relaying for its node, the daemon itself), and whether a list of
 * principals names them: team members and admins are user names and
 * @groups, and [auth] admin_group is a group (docs/security.md "Rights").
 */
#ifndef HPQD_ACTOR_H
#define HPQD_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct actor {
	const char *user;
	uint32_t uid, gid;
	bool admin;
	bool agent;                  /* an agent relaying for one of its tasks */
	const char *node;            /* agent: its node's name */
	bool known;                  /* uid/gid are real (the user exists here) */
	/* The names of the user's groups on hpqd's host (groups.h), for
	 * @group members and admins of teams: one block, owned by whoever
	 * filled the actor (the connection); NULL for none. */
	char **groups;
	size_t ngroups;
};

/* Is who a member of group (a name; "" is no group)? */
bool actor_in_group(const struct actor *who, const char *group);
/* Does list (user names and @groups) name who? An agent is named by
 * none of its user names, only by its groups. */
bool actor_named(char *const *list, size_t n, const struct actor *who);

#endif
