/*
 * path.c: resolving and checking the paths of settings, and writing
 * files durably (path.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "path.h"
#include "xalloc.h"

int hpq_path_absolute(const char *path, char **ret, char *err, size_t errlen)
{
	char *cwd;

	if (!path[0] || path[0] == '/') {
		*ret = xstrdup(path);
		return 0;
	}
	/* glibc allocates the buffer; a removed directory gives ENOENT. */
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return hpq_errf(err, errlen, -errno,
				"cannot resolve the relative path '%s': the current directory "
				"is unknown (%s); give an absolute path", path, strerror(errno));
	while (path[0] == '.' && path[1] == '/') {
		path += 2;
		path += strspn(path, "/");
	}
	if (!path[0] || !strcmp(path, "."))
		*ret = cwd;
	else {
		xasprintf(ret, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", path);
		free(cwd);
	}
	return 0;
}

int hpq_path_check_dir(const char *path, char *err, size_t errlen)
{
	char *p = xstrdup(path), *slash;
	bool missing = false;
	struct stat st;
	int r = 0;

	/* Up to the nearest part of the path that exists (ENOTDIR: a file on
	 * the way, which the loop then finds). */
	while (stat(p, &st) < 0) {
		if (errno != ENOENT && errno != ENOTDIR) {
			r = hpq_errf(err, errlen, -errno, "cannot reach '%s': %s", p,
				     strerror(errno));
			goto out;
		}
		missing = true;
		slash = strrchr(p, '/');
		if (!slash)
			strcpy(p, ".");
		else if (slash == p)
			p[1] = '\0';
		else
			*slash = '\0';
	}
	if (!S_ISDIR(st.st_mode)) {
		r = hpq_errf(err, errlen, HPQ_EINVAL, missing ?
			     "cannot be made: '%s' is not a directory" : "'%s' is not a directory", p);
		goto out;
	}
	if (access(p, W_OK | X_OK) < 0) {
		int e = errno;

		if (missing)
			r = hpq_errf(err, errlen, -e, "does not exist and cannot be made in '%s' "
				     "by uid %ld: %s", p, (long)geteuid(), strerror(e));
		else
			r = hpq_errf(err, errlen, -e, "uid %ld cannot write in '%s': %s",
				     (long)geteuid(), p, strerror(e));
	}
out:
	free(p);
	return r;
}

int hpq_path_check_executable(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return hpq_errf(err, errlen, -errno, "'%s': %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return hpq_errf(err, errlen, HPQ_EINVAL, "'%s' is not a regular file", path);
	if (access(path, X_OK) < 0)
		return hpq_errf(err, errlen, -errno, "'%s' is not executable by uid %ld: %s", path,
				(long)geteuid(), strerror(errno));
	return 0;
}

char *hpq_path_beside_self(const char *name, int mode)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash, *path;

	if (n <= 0)
		return NULL;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return NULL;
	path = xmalloc((size_t)(slash + 1 - self) + strlen(name) + 1);
	memcpy(path, self, (size_t)(slash + 1 - self));
	strcpy(path + (slash + 1 - self), name);
	if (access(path, mode) == 0)
		return path;
	free(path);
	return NULL;
}

static int sync_path(const char *path, int flags)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | flags), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int hpq_path_sync_file(const char *path)
{
	return sync_path(path, 0);
}

int hpq_path_sync_dir(const char *dir)
{
	return sync_path(dir, O_DIRECTORY);
}

int hpq_path_sync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int r;

	if (!slash)
		return hpq_path_sync_dir(".");
	dir = xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
	r = hpq_path_sync_dir(dir);
	free(dir);
	return r;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int hpq_path_write_file(const char *path, const void *data, size_t len, mode_t mode, char *err,
			size_t errlen)
{
	char *tmp;
	int fd, r;

	xasprintf(&tmp, "%s.tmp", path);
	/* A stale temporary file from a crash may exist; O_EXCL after removing
	 * it makes sure the file written is a new one with our mode. */
	if (unlink(tmp) < 0 && errno != ENOENT) {
		r = -errno;
		hpq_errf(err, errlen, r, "cannot remove '%s': %s", tmp, strerror(-r));
		free(tmp);
		return r;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
	if (fd < 0) {
		r = -errno;
		hpq_errf(err, errlen, r, "cannot create '%s': %s", tmp, strerror(-r));
		free(tmp);
		return r;
	}
	/* The umask must not decide the mode. */
	r = fchmod(fd, mode & 07777) < 0 ? -errno : 0;
	if (r == 0)
		r = write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		hpq_errf(err, errlen, r, "cannot write '%s': %s", path, strerror(-r));
		unlink(tmp);
		free(tmp);
		return r;
	}
	free(tmp);
	r = hpq_path_sync_dir_of(path);
	if (r < 0)
		return hpq_errf(err, errlen, r, "cannot sync the directory of '%s': %s", path,
				strerror(-r));
	return 0;
}
