/*
 * test_common_path.c: relative paths are resolved against the current
 * directory (and refused when it is gone), the checks --check makes
 * of directories and programs say what is wrong, and a file's directory
 * is the one synced, and a file is written whole with its mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "path.h"

static char dir[] = "/tmp/hpq-test-path-XXXXXX";

static void write_file(const char *path, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs("#!/bin/sh\n", f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void absolute(void **state)
{
	char err[256], *p, want[128];

	assert_int_equal(chdir(dir), 0);
	assert_int_equal(hpq_path_absolute("/etc/x", &p, err, sizeof(err)), 0);
	assert_string_equal(p, "/etc/x");
	free(p);
	assert_int_equal(hpq_path_absolute("", &p, err, sizeof(err)), 0);
	assert_string_equal(p, "");
	free(p);
	snprintf(want, sizeof(want), "%s/var/state", dir);
	assert_int_equal(hpq_path_absolute("var/state", &p, err, sizeof(err)), 0);
	assert_string_equal(p, want);
	free(p);
	assert_int_equal(hpq_path_absolute("./var/state", &p, err, sizeof(err)), 0);
	assert_string_equal(p, want);
	free(p);
	assert_int_equal(hpq_path_absolute(".", &p, err, sizeof(err)), 0);
	assert_string_equal(p, dir);
	free(p);

	/* A current directory that was removed cannot resolve anything. */
	snprintf(want, sizeof(want), "%s/gone", dir);
	assert_int_equal(mkdir(want, 0700), 0);
	assert_int_equal(chdir(want), 0);
	assert_int_equal(rmdir(want), 0);
	p = NULL;
	assert_true(hpq_path_absolute("var", &p, err, sizeof(err)) < 0);
	assert_null(p);
	assert_non_null(strstr(err, "cannot resolve the relative path 'var'"));
	assert_int_equal(chdir(dir), 0);
}

static void check_dir(void **state)
{
	char err[256], path[256];

	assert_int_equal(hpq_path_check_dir(dir, err, sizeof(err)), 0);
	/* Missing, but it can be made (two levels down too). */
	snprintf(path, sizeof(path), "%s/a/b", dir);
	assert_int_equal(hpq_path_check_dir(path, err, sizeof(err)), 0);
	/* A file on the way. */
	snprintf(path, sizeof(path), "%s/file", dir);
	write_file(path, 0644);
	assert_true(hpq_path_check_dir(path, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "is not a directory"));
	snprintf(path, sizeof(path), "%s/file/sub", dir);
	assert_true(hpq_path_check_dir(path, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "cannot be made"));
	/* A directory this user may not write in (root may write anywhere). */
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/ro", dir);
		assert_int_equal(mkdir(path, 0555), 0);
		assert_true(hpq_path_check_dir(path, err, sizeof(err)) < 0);
		assert_non_null(strstr(err, "cannot write in"));
		snprintf(path, sizeof(path), "%s/ro/sub", dir);
		assert_true(hpq_path_check_dir(path, err, sizeof(err)) < 0);
		assert_non_null(strstr(err, "cannot be made in"));
	}
}

static void check_executable(void **state)
{
	char err[256], path[256];

	snprintf(path, sizeof(path), "%s/prog", dir);
	write_file(path, 0755);
	assert_int_equal(hpq_path_check_executable(path, err, sizeof(err)), 0);
	assert_true(hpq_path_check_executable(dir, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "not a regular file"));
	snprintf(path, sizeof(path), "%s/nothere", dir);
	assert_true(hpq_path_check_executable(path, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "No such file"));
	snprintf(path, sizeof(path), "%s/plain", dir);
	write_file(path, 0644);
	assert_true(hpq_path_check_executable(path, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "not executable"));
}

static mode_t mode_of(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb.st_mode & 07777;
}

static void write_durably(void **state)
{
	char err[512], path[256], tmp[sizeof(path) + 4], buf[16];
	mode_t old;
	FILE *f;

	snprintf(path, sizeof(path), "%s/written", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* The mode is the one asked for, whatever the umask. */
	old = umask(0);
	assert_int_equal(hpq_path_write_file(path, "one", 3, 0600, err, sizeof(err)), 0);
	umask(old);
	assert_int_equal(mode_of(path), 0600);
	/* A stale temporary file with a loose mode is replaced, not reused. */
	write_file(tmp, 0666);
	assert_int_equal(hpq_path_write_file(path, "two", 3, 0600, err, sizeof(err)), 0);
	assert_int_equal(mode_of(path), 0600);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "two");
	assert_int_not_equal(access(tmp, F_OK), 0);

	snprintf(path, sizeof(path), "%s/nowhere/f", dir);
	assert_int_equal(hpq_path_write_file(path, "x", 1, 0600, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "nowhere"));
}

/* Which directory is synced shows in the errors: each names what it opened. */
static void sync_dir(void **state)
{
	char path[256];

	assert_int_equal(chdir(dir), 0);
	assert_int_equal(hpq_path_sync_dir(dir), 0);
	snprintf(path, sizeof(path), "%s/nothere", dir);
	assert_int_equal(hpq_path_sync_dir(path), -ENOENT);
	snprintf(path, sizeof(path), "%s/synced", dir);
	write_file(path, 0644);
	assert_int_equal(hpq_path_sync_dir(path), -ENOTDIR);
	assert_int_equal(hpq_path_sync_file(path), 0);
	snprintf(path, sizeof(path), "%s/nothere", dir);
	assert_int_equal(hpq_path_sync_file(path), -ENOENT);
	snprintf(path, sizeof(path), "%s/synced", dir);

	assert_int_equal(hpq_path_sync_dir_of(path), 0);        /* dir */
	assert_int_equal(hpq_path_sync_dir_of("/x"), 0);        /* "/" */
	assert_int_equal(hpq_path_sync_dir_of("synced"), 0);    /* "." */
	snprintf(path, sizeof(path), "%s/nothere/file", dir);
	assert_int_equal(hpq_path_sync_dir_of(path), -ENOENT);
	snprintf(path, sizeof(path), "%s/synced/file", dir);
	assert_int_equal(hpq_path_sync_dir_of(path), -ENOTDIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(absolute),
		cmocka_unit_test(check_dir),
		cmocka_unit_test(check_executable),
		cmocka_unit_test(sync_dir),
		cmocka_unit_test(write_durably),
	};
	char cmd[128];
	int r;

	if (!mkdtemp(dir))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
