/*
 * test_client_show.c: the arguments of `hpq show`, without a daemon: ID
 * and ID_INDEX are accepted (the request then fails to connect, exit 1),
 * malformed ids and --script with --json are usage errors (exit 2) that
 * connect to nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "cli.h"

static int run(char **argv)
{
	const struct cmd_entry *const table[] = {&cmd_show_entry, NULL};
	struct cli cli;
	FILE *saved = stderr;
	int argc = 0, r;

	while (argv[argc])
		argc++;
	cli_init(&cli);
	cli.addr = "/nonexistent/hpq-test.sock"; /* any connection attempt fails */
	stderr = fopen("/dev/null", "w");
	r = cli_run(&cli, table, NULL, argc, argv);
	fclose(stderr);
	stderr = saved;
	cli_release(&cli);
	return r;
}

static void test_ids(void **state)
{
	char *ok1[] = {"show", "12", NULL};
	char *ok2[] = {"show", "12_5", NULL};
	char *ok3[] = {"show", "12_0", "--script", NULL};
	char *bad1[] = {"show", "12_", NULL};
	char *bad2[] = {"show", "_5", NULL};
	char *bad3[] = {"show", "12_x", NULL};
	char *bad4[] = {"show", "12_5_6", NULL};
	char *bad5[] = {"show", "0_5", NULL};
	char *bad6[] = {"show", "12_99999999", NULL};
	char *bad7[] = {"show", "12", "--script", "--json", NULL};
	char *bad8[] = {"show", "12", "13", NULL};

	/* Valid: parsing passes and only the connection fails. */
	assert_int_equal(run(ok1), CLI_ERR);
	assert_int_equal(run(ok2), CLI_ERR);
	assert_int_equal(run(ok3), CLI_ERR);
	assert_int_equal(run(bad1), CLI_USAGE);
	assert_int_equal(run(bad2), CLI_USAGE);
	assert_int_equal(run(bad3), CLI_USAGE);
	assert_int_equal(run(bad4), CLI_USAGE);
	assert_int_equal(run(bad5), CLI_USAGE);
	assert_int_equal(run(bad6), CLI_USAGE);
	assert_int_equal(run(bad7), CLI_USAGE);
	assert_int_equal(run(bad8), CLI_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
