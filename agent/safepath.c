/*
 * safepath.c: walks a task's directory path one name at a time, by
 * descriptor, under the rule of safepath.h. It runs in a forked child, so
 * it keeps to system calls and string functions on fixed buffers.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safepath.h"

#define WALK_OPEN (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

struct walk {
	char rest[2 * PATH_MAX];       /* names still to walk, '/'-separated */
	char where[SAFEPATH_WHERE_MAX]; /* the directory reached, for messages */
	int fd;                        /* of that directory */
};

/* Appends "/name" to where (".." removes the last name), if it fits. */
static void walk_where(char *where, const char *name)
{
	size_t n = strlen(where), k = strlen(name);

	if (!strcmp(name, "..")) {
		char *slash = strrchr(where, '/');

		if (slash)
			*slash = '\0';
		return;
	}
	if (n + 1 + k < SAFEPATH_WHERE_MAX) {
		where[n] = '/';
		memcpy(where + n + 1, name, k + 1);
	}
}

static int walk_fail(struct walk *w, struct safepath_err *e, int rule, int err,
		     unsigned long owner, const char *name)
{
	e->rule = rule;
	e->err = err;
	e->owner = owner;
	memcpy(e->where, w->where, sizeof(e->where));
	if (name)
		walk_where(e->where, name);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	return -1;
}

/* Takes the next name off rest, skipping empty names and "."; false at the end. */
static int walk_next(struct walk *w, char name[NAME_MAX + 1])
{
	for (;;) {
		size_t skip = strspn(w->rest, "/"), n = strcspn(w->rest + skip, "/");
		size_t left;

		if (n == 0)
			return 0;
		if (n > NAME_MAX)
			return -1;
		memcpy(name, w->rest + skip, n);
		name[n] = '\0';
		left = strlen(w->rest + skip + n);
		memmove(w->rest, w->rest + skip + n, left + 1);
		if (strcmp(name, "."))
			return 1;
	}
}

/* The rule for one directory on the way (an open descriptor). */
static int walk_check(int fd, uid_t uid, struct stat *st)
{
	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISDIR(st->st_mode))
		return SAFEPATH_NOT_DIR;
	if (st->st_uid != 0 && st->st_uid != uid)
		return SAFEPATH_OWNER;
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX))
		return SAFEPATH_WRITABLE;
	return 0;
}

/* Restarts the walk at "/" (the start, and absolute link targets). */
static int walk_root(struct walk *w, uid_t uid, struct safepath_err *e)
{
	struct stat st;
	int r;

	if (w->fd >= 0)
		close(w->fd);
	w->where[0] = '\0';
	w->fd = open("/", WALK_OPEN);
	if (w->fd < 0)
		return walk_fail(w, e, 0, errno, 0, NULL);
	r = walk_check(w->fd, uid, &st);
	if (r)
		return walk_fail(w, e, r < 0 ? 0 : r, r < 0 ? -r : 0, (unsigned long)st.st_uid,
				 NULL);
	return 0;
}

/* Follows the link name in w->fd: its target goes in front of what is left. */
static int walk_link(struct walk *w, const char *name, uid_t uid, struct safepath_err *e)
{
	char target[PATH_MAX];
	size_t left = strlen(w->rest);
	ssize_t n = readlinkat(w->fd, name, target, sizeof(target) - 1);

	if (n < 0)
		return walk_fail(w, e, 0, errno, 0, name);
	target[n] = '\0';
	if ((size_t)n + 1 + left + 1 > sizeof(w->rest))
		return walk_fail(w, e, SAFEPATH_LOOPS, 0, 0, name);
	memmove(w->rest + n + 1, w->rest, left + 1);
	memcpy(w->rest, target, (size_t)n);
	w->rest[n] = '/';
	return target[0] == '/' ? walk_root(w, uid, e) : 0;
}

int safepath_dir(const char *dir, uid_t uid, bool create, struct safepath_err *e)
{
	struct walk w;
	char name[NAME_MAX + 1];
	struct stat st;
	int links = 0, more, r;

	memset(e, 0, sizeof(*e));
	w.fd = -1;
	w.where[0] = '\0';
	if (dir[0] != '/' || strlen(dir) >= sizeof(w.rest))
		return walk_fail(&w, e, 0, dir[0] != '/' ? EINVAL : ENAMETOOLONG, 0, NULL);
	memcpy(w.rest, dir, strlen(dir) + 1);
	if (walk_root(&w, uid, e) < 0)
		return -1;
	while ((more = walk_next(&w, name)) > 0) {
		int fd;

		if (fstatat(w.fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT || !create)
				return walk_fail(&w, e, 0, errno, 0, name);
			/* As the user: the new directory is the user's. */
			if (mkdirat(w.fd, name, 0700) < 0 && errno != EEXIST)
				return walk_fail(&w, e, 0, errno, 0, name);
			if (fstatat(w.fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				return walk_fail(&w, e, 0, errno, 0, name);
		}
		if (S_ISLNK(st.st_mode)) {
			if (st.st_uid != 0 && st.st_uid != uid)
				return walk_fail(&w, e, SAFEPATH_LINK_OWNER, 0,
						 (unsigned long)st.st_uid, name);
			if (++links > SAFEPATH_MAX_LINKS)
				return walk_fail(&w, e, SAFEPATH_LOOPS, 0, 0, name);
			if (walk_link(&w, name, uid, e) < 0)
				return -1;
			continue;
		}
		/* The checks below look at what was opened, not at what fstatat saw. */
		fd = openat(w.fd, name, WALK_OPEN);
		if (fd < 0)
			return walk_fail(&w, e, errno == ENOTDIR ? SAFEPATH_NOT_DIR : 0, errno, 0,
					 name);
		close(w.fd);
		w.fd = fd;
		walk_where(w.where, name);
		r = walk_check(w.fd, uid, &st);
		if (r)
			return walk_fail(&w, e, r < 0 ? 0 : r, r < 0 ? -r : 0,
					 (unsigned long)st.st_uid, NULL);
	}
	if (more < 0)
		return walk_fail(&w, e, 0, ENAMETOOLONG, 0, NULL);
	if (fstat(w.fd, &st) < 0)
		return walk_fail(&w, e, 0, errno, 0, NULL);
	if (st.st_uid != uid)
		return walk_fail(&w, e, SAFEPATH_NOT_OWN, 0, (unsigned long)st.st_uid, NULL);
	close(w.fd);
	return 0;
}

void safepath_describe(const struct safepath_err *e, char *buf, size_t len)
{
	const char *w = e->where[0] ? e->where : "/";

	switch (e->rule) {
	case SAFEPATH_LINK_OWNER:
		snprintf(buf, len, "'%s' is a symbolic link of uid %lu, neither root's nor the "
			 "task user's", w, e->owner);
		break;
	case SAFEPATH_OWNER:
		snprintf(buf, len, "'%s' belongs to uid %lu, neither root nor the task's user", w,
			 e->owner);
		break;
	case SAFEPATH_WRITABLE:
		snprintf(buf, len, "'%s' is writable by other users (and not sticky)", w);
		break;
	case SAFEPATH_NOT_OWN:
		snprintf(buf, len, "'%s' belongs to uid %lu, not to the task's user", w, e->owner);
		break;
	case SAFEPATH_NOT_DIR:
		snprintf(buf, len, "'%s' is not a directory", w);
		break;
	case SAFEPATH_LOOPS:
		snprintf(buf, len, "'%s': too many symbolic links, or the path is too long", w);
		break;
	default:
		snprintf(buf, len, "'%s': %s", w, strerror(e->err));
		break;
	}
}
