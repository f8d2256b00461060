/*
 * t_backup: hpqd --backup copies the live state database while hpqd keeps
 * committing. Tasks are submitted the whole time the copy runs; the copy
 * is whole (SQLite's integrity check passes, or --backup fails), holds at
 * least what was committed before it started and at most what was after,
 * and a fresh hpqd started on it serves those tasks. A backup never
 * overwrites a file, and one of a state directory without a database
 * says so.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* The file holds want; its text is freed either way. */
static void expect_in(const char *path, const char *want)
{
	char *text = h_read_file(path);
	bool found = text && strstr(text, want);

	if (!found)
		fail_msg("%s does not say '%s': %s", path, want, text ? text : "(nothing)");
	free(text);
}

static size_t count_tasks(struct h_cluster *c)
{
	json_t *all = h_tasks(c);
	size_t n = json_array_size(all);

	json_decref(all);
	return n;
}

static void backup_while_busy(void **state)
{
	struct h_cluster *c = *state;
	const char *copy = h_path(c, "copy.db");
	const char *hpqd = h_bin("hpqd");
	size_t before, after, restored;
	struct h_out o;
	pid_t busy;
	int status;
	json_t *t;

	h_daemon_start(c);
	for (int i = 0; i < 20; i++)
		h_submit(c, "--hold", "--name", "early", "--", "true", NULL);
	before = count_tasks(c);

	/* A submitter that never stops while the copy runs. */
	busy = fork();
	assert_true(busy >= 0);
	if (busy == 0) {
		for (;;)
			h_hpq(c, NULL, "submit", "--hold", "--name", "during", "--", "true", NULL);
	}
	assert_true(H_WAIT_FOR(c, count_tasks(c) > before + 5, 30000));
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "'%s' --state-dir '%s' --backup '%s' > '%s' 2>&1", hpqd,
			 c->dir, copy, h_path(c, "backup.out"));
		status = system(cmd);
	}
	kill(busy, SIGKILL);
	waitpid(busy, NULL, 0);
	if (status != 0)
		fail_msg("hpqd --backup failed: %s", h_read_file(h_path(c, "backup.out")));
	after = count_tasks(c);

	/* Never over a file; a directory without a database. */
	{
		const char *argv1[] = { hpqd, "--state-dir", c->dir, "--backup", copy, NULL };
		const char *argv2[] = { hpqd, "--state-dir", h_path(c, "nothing-here"), "--backup",
					h_path(c, "other.db"), NULL };
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' '%s' '%s' > '%s' 2>&1", argv1[0], argv1[1],
			 argv1[2], argv1[3], argv1[4], h_path(c, "again.out"));
		assert_int_not_equal(system(cmd), 0);
		expect_in(h_path(c, "again.out"), "exists");
		snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' '%s' '%s' > '%s' 2>&1", argv2[0], argv2[1],
			 argv2[2], argv2[3], argv2[4], h_path(c, "none.out"));
		assert_int_not_equal(system(cmd), 0);
		expect_in(h_path(c, "none.out"), "no state database");
		assert_int_equal(access(h_path(c, "other.db"), F_OK), -1);
	}

	/* A fresh hpqd on the copy serves what it holds. */
	assert_int_equal(h_daemon_stop(c, SIGTERM), 0);
	snprintf(c->state, sizeof(c->state), "restored");
	assert_int_equal(mkdir(h_path(c, "restored"), 0700), 0);
	h_copy_file(copy, h_path(c, "restored/hpq.db"), 0600);
	h_daemon_start(c);
	restored = count_tasks(c);
	fprintf(stderr, "tasks: %zu before the copy, %zu restored, %zu after it\n", before,
		restored, after);
	assert_true(restored >= before + 5 && restored <= after);
	t = h_task(c, 1);
	assert_string_equal(h_str(t, "name"), "early");
	assert_true(json_is_true(json_object_get(t, "held")));
	json_decref(t);
	assert_int_equal(h_hpq(c, &o, "release", "1", NULL), 0);
	h_out_free(&o);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(backup_while_busy, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
