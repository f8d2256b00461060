/*
 * path.h: file system paths in settings. hpqd and hpq-agent resolve the
 * relative paths they were given against the directory they were started
 * in before they become daemons (a daemon changes to "/", where a relative
 * path would name something else), and their --check asks whether the
 * directories they will write in are usable.
 */
#ifndef HPQ_PATH_H
#define HPQ_PATH_H

#include <stddef.h>
#include <sys/types.h>

/*
 * *ret becomes a new string: path itself when it is empty or absolute,
 * else the current directory, '/', and path without leading "./". Returns
 * 0, or a negative code with err set when the current directory cannot be
 * known (removed, or out of reach), so that the path cannot be resolved.
 */
int hpq_path_absolute(const char *path, char **ret, char *err, size_t errlen);

/*
 * Whether a program can keep files in the directory path, as the user it
 * runs as now: path is a directory it may write in and search, or path
 * does not exist and the nearest directory above it that does is one, so
 * that path can be made. Returns 0, or a negative code with err saying
 * what is wrong ("'/x' is not a directory", ...).
 */
int hpq_path_check_dir(const char *path, char *err, size_t errlen);

/* Whether path is a regular file this user may execute. Returns 0 or a
 * negative code with err set. */
int hpq_path_check_executable(const char *path, char *err, size_t errlen);

/* name in the directory of the running program (/proc/self/exe), as a new
 * string, if access(2) grants it mode there; else NULL. A program finds
 * its helpers this way in a build tree, before where they are installed. */
char *hpq_path_beside_self(const char *name, int mode);

/*
 * fsync(2) of the file path, of the directory dir, or of the one that
 * holds the file path, so that the file's bytes, or a file made, renamed
 * or removed in the directory, are still so after a crash. Returns 0 or
 * a negative errno.
 */
int hpq_path_sync_file(const char *path);
int hpq_path_sync_dir(const char *dir);
int hpq_path_sync_dir_of(const char *path);

/* Writes len bytes to path atomically (path.tmp, made anew, fsync, rename,
 * fsync of the directory) with mode, whatever the umask. Returns 0, or a
 * negative errno with err saying which step failed. */
int hpq_path_write_file(const char *path, const void *data, size_t len, mode_t mode, char *err,
			size_t errlen);

#endif
