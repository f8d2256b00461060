/*
 * test_client_select.c: what the job-control commands accept before they
 * send anything: task ids in Slurm's forms (12, 12_5, 12_[1-3,7]) and
 * nothing else, state lists (any case, "active", repeats folded), and the
 * rule that a command with neither ids nor filters is refused rather than
 * acting on every task.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "error.h"
#include "select.h"

static void test_ids(void **state)
{
	static const char *const good[] = {
		"12", "12_5", "12_0", "12_[1-3,7]", "12_[7]", "12_[0-4294967295]",
		"9223372036854775807", "12_[1-1]", "12_[3,1,2]", "12_[1-9:2]", "12_[0-10:5,20]",
		"12_[5:2]", /* index 5, as hpqd reads it */
	};
	static const char *const bad[] = {
		"", "0", "-1", "+1", "12x", "x12", "12_", "_5", "12__5", "12_5_6", "12_[]",
		"12_[1-]", "12_[-3]", "12_[3-1]", "12_[1,,2]", "12_[1,]", "12_[,1]", "12_[1-3",
		"12_1-3]", "12_[1-3]x", "12_4294967296", "9223372036854775808", "12_ 5",
		"12_[1-3%2]", "12_[a]", " 12", "12 ", "12_[1-9:0]", "12_[1-9:]",
		"12_[1-9:2:3]", "12_[1-9:x]",
	};
	char err[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (select_check_id(good[i], true, err, sizeof(err)) != 0)
			fail_msg("'%s' refused: %s", good[i], err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (select_check_id(bad[i], true, err, sizeof(err)) != HPQ_EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_non_null(strstr(err, "is not a task id"));
	}
	/* hpq list shows an array's % limit after its pending indices
	 * (12_[5-999%50]): what to leave out is said. */
	assert_int_equal(select_check_id("12_[5-999:2%50]", true, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "12_[5-999:2]"));
	/* Without ranges (hpq update): one task only. */
	assert_int_equal(select_check_id("12_5", false, err, sizeof(err)), 0);
	assert_int_equal(select_check_id("12_[5]", false, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "ID_INDEX"));
	assert_null(strstr(err, "LIST"));

	assert_true(select_id_plain("12"));
	assert_false(select_id_plain("12_5"));
	assert_false(select_id_plain("0"));
}

static void test_states(void **state)
{
	const char **v = NULL;
	size_t n = 0;
	char err[256];

	assert_int_equal(select_add_states("pending,Running", &v, &n, err, sizeof(err)), 0);
	assert_int_equal(select_add_states("out-of-memory", &v, &n, err, sizeof(err)), 0);
	assert_int_equal(select_add_states("active", &v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4); /* active adds only PREEMPTING: the others are there */
	assert_string_equal(v[0], "PENDING");
	assert_string_equal(v[1], "RUNNING");
	assert_string_equal(v[2], "OUT_OF_MEMORY");
	assert_string_equal(v[3], "PREEMPTING");

	assert_int_equal(select_add_states("pending,sleeping", &v, &n, err, sizeof(err)),
			 HPQ_EINVAL);
	assert_non_null(strstr(err, "'sleeping'"));
	assert_int_equal(select_add_states("", &v, &n, err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(select_add_states("pending,", &v, &n, err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(select_add_states(",pending", &v, &n, err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(select_add_states("pending,,failed", &v, &n, err, sizeof(err)),
			 HPQ_EINVAL);
	free(v);
}

/* Runs hpq's dispatcher with stdout and stderr discarded; returns the status. */
static int run(int argc, char **argv)
{
	static const struct cmd_entry *const table[] = {
		&cmd_cancel_entry, &cmd_hold_entry, &cmd_release_entry, &cmd_requeue_entry,
		&cmd_update_entry, &cmd_list_entry, &cmd_acct_entry,  NULL,
	};
	FILE *saved_out = stdout, *saved_err = stderr;
	struct cli cli;
	int r;

	cli_init(&cli);
	cli.addr = "/nonexistent/hpq-test.sock"; /* any connection attempt fails */
	stdout = fopen("/dev/null", "w");
	stderr = fopen("/dev/null", "w");
	r = cli_run(&cli, table, NULL, argc, argv);
	fclose(stdout);
	fclose(stderr);
	stdout = saved_out;
	stderr = saved_err;
	cli_release(&cli);
	return r;
}

#define RUN(...)                                                                  \
	({                                                                        \
		char *a_[] = {__VA_ARGS__, NULL};                                 \
		run((int)(sizeof(a_) / sizeof(a_[0])) - 1, a_);                   \
	})

static void test_commands(void **state)
{
	/* Nothing selected is refused, never "every task". */
	assert_int_equal(RUN("cancel"), CLI_USAGE);
	assert_int_equal(RUN("hold"), CLI_USAGE);
	assert_int_equal(RUN("release"), CLI_USAGE);
	assert_int_equal(RUN("requeue"), CLI_USAGE);
	/* Malformed ids and filters. */
	assert_int_equal(RUN("hold", "12_[3-1]"), CLI_USAGE);
	assert_int_equal(RUN("cancel", "12", "x"), CLI_USAGE);
	assert_int_equal(RUN("cancel", "--state", "sleeping"), CLI_USAGE);
	assert_int_equal(RUN("release", "--array", "0"), CLI_USAGE);
	assert_int_equal(RUN("requeue", "--user", "-bob"), CLI_USAGE);
	assert_int_equal(RUN("hold", "--team", "bad name"), CLI_USAGE);
	/* Well formed: they get as far as connecting. */
	assert_int_equal(RUN("cancel", "12", "13"), CLI_ERR);
	assert_int_equal(RUN("cancel", "12_[1-3]"), CLI_ERR);
	assert_int_equal(RUN("cancel", "--user", "bob", "--state", "pending,running"), CLI_ERR);
	assert_int_equal(RUN("hold", "--array", "12"), CLI_ERR);
	assert_int_equal(RUN("release", "12_5", "13"), CLI_ERR);
	assert_int_equal(RUN("requeue", "--name", "train", "--team", "t1"), CLI_ERR);

	assert_int_equal(RUN("update", "12"), CLI_USAGE);
	assert_int_equal(RUN("update"), CLI_USAGE);
	assert_int_equal(RUN("update", "12", "color=red"), CLI_USAGE);
	assert_int_equal(RUN("update", "12", "time"), CLI_USAGE);
	assert_int_equal(RUN("update", "12", "time="), CLI_USAGE);
	assert_int_equal(RUN("update", "12", "time=soon"), CLI_USAGE);
	assert_int_equal(RUN("update", "12", "gpus=-1"), CLI_USAGE);
	assert_int_equal(RUN("update", "12", "nodes=0"), CLI_USAGE);
	assert_int_equal(RUN("update", "12", "mem=lots"), CLI_USAGE);
	assert_int_equal(RUN("update", "12", "class=a b"), CLI_USAGE);
	assert_int_equal(RUN("update", "12", "dependency=afterok 3"), CLI_USAGE);
	assert_int_equal(RUN("update", "12", "--time", "1h", "time=2h"), CLI_USAGE);
	assert_int_equal(RUN("update", "12_[1-2]", "time=2h"), CLI_USAGE);
	assert_int_equal(RUN("update", "12", "time=2h", "--gpus", "2", "class=big",
			     "dependency=afterok:3:4,singleton"),
			 CLI_ERR);
	assert_int_equal(RUN("update", "12_5", "--name", "n1"), CLI_ERR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_commands),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
