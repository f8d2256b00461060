/*
 * test_agent_safepath.c: the rule for a task's checkpoint directory
 * (safepath.h), walked as the task's user in a child process, as the agent
 * does: links to someone else's directory, directories of other users or
 * writable by others are refused with the rule that broke; the user's own
 * links and sticky /tmp pass; missing directories are created as the user.
 * Needs root, to play two users.
 */
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "safepath.h"

#define U 4242  /* the task's user */
#define V 4343  /* another user */

static char base[64];

/* safepath_dir(path) as uid U in a child; the rule it broke, or 100 + errno. */
static int __attribute__((format(printf, 1, 2))) walk_as_user(const char *fmt, ...)
{
	char path[256];
	struct safepath_err e;
	va_list ap;
	pid_t pid;
	int st;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(U) < 0 || setuid(U) < 0)
			_exit(99);
		if (safepath_dir(path, U, true, &e) == 0)
			_exit(0);
		_exit(e.rule ? e.rule : 100 + e.err);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void mkdir_as(const char *name, uid_t uid, mode_t mode)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", base, name);
	assert_int_equal(mkdir(path, mode), 0);
	assert_int_equal(chmod(path, mode), 0);
	assert_int_equal(chown(path, uid, uid), 0);
}

static void link_as(const char *name, const char *target, uid_t uid)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", base, name);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(lchown(path, uid, uid), 0);
}

static int setup(void **state)
{
	char target[128];

	if (getuid() != 0)
		return 0;
	strcpy(base, "/tmp/test_safepath.XXXXXX");
	assert_non_null(mkdtemp(base));
	assert_int_equal(chmod(base, 0711), 0);
	mkdir_as("u", U, 0755);
	mkdir_as("u/ckpt", U, 0700);
	mkdir_as("v", V, 0755);
	mkdir_as("v/open", V, 0777);
	mkdir_as("shared", 0, 0777);
	mkdir_as("shared/u", U, 0755);
	mkdir_as("sticky", 0, 01777);
	mkdir_as("sticky/u", U, 0755);
	link_as("u/etc", "/etc", U);
	snprintf(target, sizeof(target), "%s/v/open", base);
	link_as("u/to-v", target, U);
	link_as("u/mine", "ckpt", U);
	link_as("u/by-v", "ckpt", V);
	link_as("u/loop", "loop", U);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	if (!base[0])
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	return system(cmd);
}

static void rules(void **state)
{
	struct stat st;
	char path[256];

	if (getuid() != 0)
		skip();
	assert_int_equal(walk_as_user("%s/u/ckpt", base), SAFEPATH_OK);
	assert_int_equal(walk_as_user("%s/u/mine", base), SAFEPATH_OK);
	assert_int_equal(walk_as_user("%s/u/./ckpt/../ckpt", base), SAFEPATH_OK);
	assert_int_equal(walk_as_user("%s/sticky/u", base), SAFEPATH_OK);
	assert_int_equal(walk_as_user("%s/u/etc", base), SAFEPATH_NOT_OWN);
	assert_int_equal(walk_as_user("%s/u/to-v", base), SAFEPATH_OWNER);
	assert_int_equal(walk_as_user("%s/u/by-v", base), SAFEPATH_LINK_OWNER);
	assert_int_equal(walk_as_user("%s/shared/u", base), SAFEPATH_WRITABLE);
	assert_int_equal(walk_as_user("%s/u/loop", base), SAFEPATH_LOOPS);
	assert_int_equal(walk_as_user("%s/u", base), SAFEPATH_OK);
	/* Created as the user, with mode 0700; not where the user may not. */
	assert_int_equal(walk_as_user("%s/u/new/deeper", base), SAFEPATH_OK);
	snprintf(path, sizeof(path), "%s/u/new/deeper", base);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, U);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(walk_as_user("%s/v/new", base), SAFEPATH_OWNER);
	assert_int_equal(walk_as_user("%s/nope", base), 100 + EACCES);
}

static void describe(void **state)
{
	struct safepath_err e = {.rule = SAFEPATH_NOT_OWN, .owner = 0};
	char buf[256];

	strcpy(e.where, "/etc");
	safepath_describe(&e, buf, sizeof(buf));
	assert_string_equal(buf, "'/etc' belongs to uid 0, not to the task's user");
	e.rule = 0;
	e.err = ENOENT;
	strcpy(e.where, "/x");
	safepath_describe(&e, buf, sizeof(buf));
	assert_string_equal(buf, "'/x': No such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rules),
		cmocka_unit_test(describe),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
