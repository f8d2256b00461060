/*
 * actor.c: whether a group or a list of principals names an actor
 * (actor.h).
 */
#include <string.h>

#include "actor.h"

bool actor_in_group(const struct actor *who, const char *group)
{
	if (!group || !*group)
		return false;
	for (size_t i = 0; i < who->ngroups; i++)
		if (!strcmp(who->groups[i], group))
			return true;
	return false;
}

bool actor_named(char *const *list, size_t n, const struct actor *who)
{
	for (size_t i = 0; i < n; i++) {
		if (list[i][0] == '@') {
			if (actor_in_group(who, list[i] + 1))
				return true;
		} else if (!who->agent && !strcmp(list[i], who->user)) {
			return true;
		}
	}
	return false;
}
