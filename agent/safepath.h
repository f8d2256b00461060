/*
 * safepath.h: reaching a task's directory without following a path that
 * another user controls. The agent calls it in the task's child process
 * after that process became the task's user (exec.c), so the kernel's
 * permission checks are the user's and whatever it creates is the user's.
 *
 * The rule, for every directory on the path, from "/" down:
 *  - it is owned by root or by the task's user;
 *  - it is writable by nobody else (group or other write), unless its
 *    sticky bit is set (/tmp), where others cannot rename what is not
 *    theirs;
 *  - a symbolic link on the way is followed only if root or the task's
 *    user owns it (at most SAFEPATH_MAX_LINKS of them), and what it
 *    leads to is checked by the same rule;
 *  - the last directory is owned by the task's user.
 * Each step is an openat() of one name with O_NOFOLLOW relative to the
 * descriptor of the directory checked before it, so nothing can be
 * swapped between the check and the use. Missing directories are created
 * (mode 0700) when asked to.
 *
 * Everything here is async-signal-safe: no allocation, no stdio.
 */
#ifndef HPQ_AGENT_SAFEPATH_H
#define HPQ_AGENT_SAFEPATH_H

#include <stdbool.h>
#include <sys/types.h>

#define SAFEPATH_MAX_LINKS 40
#define SAFEPATH_WHERE_MAX 1024

/* Which rule a path broke (0: none; err then holds a system error). */
enum safepath_rule {
	SAFEPATH_OK = 0,
	SAFEPATH_LINK_OWNER,     /* a symbolic link owned by someone else */
	SAFEPATH_OWNER,          /* a directory owned by someone else */
	SAFEPATH_WRITABLE,       /* a directory others may write to (not sticky) */
	SAFEPATH_NOT_OWN,        /* the last directory is not the user's */
	SAFEPATH_NOT_DIR,        /* not a directory */
	SAFEPATH_LOOPS,          /* more than SAFEPATH_MAX_LINKS links, or too long */
};

struct safepath_err {
	int rule;                /* enum safepath_rule */
	int err;                 /* errno, for rule 0 */
	unsigned long owner;     /* of the offending file */
	char where[SAFEPATH_WHERE_MAX]; /* the path reached when it failed */
};

/*
 * Walks the absolute path dir as described above for user uid, creating
 * missing directories when create is set. Returns 0, or -1 with e filled.
 */
int safepath_dir(const char *dir, uid_t uid, bool create, struct safepath_err *e);

/* A message for e, "'WHERE' is a symbolic link owned by uid 5" and so on. */
void safepath_describe(const struct safepath_err *e, char *buf, size_t len);

#endif
