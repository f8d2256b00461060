/*
 * test_client_usage.c: the usage text of every command and the manual
 * agree. Each command's synopsis (what `hpq CMD --help` prints) must be a
 * SYNOPSIS line of man/hpq.1, word for word, and every option it names
 * must be described in the body of the page. Every command must answer
 * --help with exit status 0 without connecting to anything, and an
 * unknown command or option must be a usage error.
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
#include "xalloc.h"

static const struct cmd_entry *const families[] = {
	&cmd_submit_entry, &cmd_list_entry, &cmd_show_entry,  &cmd_cancel_entry,
	&cmd_hold_entry, &cmd_release_entry, &cmd_requeue_entry, &cmd_update_entry,
	&cmd_acct_entry,
	&cmd_checkpoint_entry, &cmd_node_entry, &cmd_team_entry, &cmd_class_entry,
	&cmd_policy_entry, &cmd_status_entry, &cmd_events_entry, &cmd_usage_entry,
	&cmd_top_entry, &cmd_logs_entry, &cmd_plan_entry,
	&cmd_version_entry, NULL,
};

static char *man_synopsis; /* SYNOPSIS lines, joined, one per line */
static char *man_body;     /* everything after SYNOPSIS, escapes removed */

/* Removes roff escapes that do not print (\fB, \fI, \fR, \fP, \&) and
 * turns \- and \e into what they print. */
static void unroff(char *s)
{
	char *w = s;

	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] == 'f' && r[2]) {
			r += 3;
		} else if (r[0] == '\\' && r[1] == '&') {
			r += 2;
		} else if (r[0] == '\\' && r[1] == '-') {
			*w++ = '-';
			r += 2;
		} else if (r[0] == '\\' && r[1] == 'e') {
			*w++ = '\\';
			r += 2;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

static int load_man(void **state)
{
	char path[4096], line[1024];
	const char *slash = strrchr(__FILE__, '/');
	size_t syn_len = 0, body_len = 0;
	FILE *f, *syn, *body;
	int section = 0; /* 0 before SYNOPSIS, 1 in it, 2 after */

	snprintf(path, sizeof(path), "%.*s/../../man/hpq.1", (int)(slash - __FILE__), __FILE__);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	syn = open_memstream(&man_synopsis, &syn_len);
	body = open_memstream(&man_body, &body_len);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, ".SH", 3) == 0)
			section = strstr(line, "SYNOPSIS") ? 1 : section ? 2 : 0;
		if (section == 0 || strncmp(line, ".\\\"", 3) == 0)
			continue;
		unroff(line);
		if (section == 2) {
			/* Macro lines (.TP, .BI --chdir " DIR") count: options are named there. */
			fprintf(body, "%s\n", line);
		} else if (line[0] == '.') {
			continue;
		} else if (line[0] == ' ') {
			/* A continuation: join it to the line above with one space. */
			fprintf(syn, " %s", line + strspn(line, " "));
		} else if (line[0]) {
			fprintf(syn, "\n%s", line);
		}
	}
	fputc('\n', syn);
	fclose(syn);
	fclose(body);
	fclose(f);
	return 0;
}

static int free_man(void **state)
{
	free(man_synopsis);
	free(man_body);
	return 0;
}

static void check_entry(const struct cmd_entry *e)
{
	char *want, *opts, *tok, *save = NULL;

	xasprintf(&want, "\nhpq %s\n", e->usage);
	if (!strstr(man_synopsis, want))
		fail_msg("man/hpq.1 SYNOPSIS lacks the line 'hpq %s'", e->usage);
	free(want);

	/* Every --option of the synopsis is explained after it. */
	opts = xstrdup(e->usage);
	for (tok = strtok_r(opts, " []|", &save); tok; tok = strtok_r(NULL, " []|", &save)) {
		char name[64];

		if (strncmp(tok, "--", 2) != 0 || strcmp(tok, "--") == 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(tok, "="), tok);
		if (!strstr(man_body, name))
			fail_msg("man/hpq.1 does not describe %s of 'hpq %s'", name, e->name);
	}
	free(opts);
}

/* Every command that runs (a leaf of the table, at any depth). */
static void check_tree(const struct cmd_entry *e)
{
	if (!e->sub) {
		check_entry(e);
		return;
	}
	for (const struct cmd_entry *const *s = e->sub; *s; s++)
		check_tree(*s);
}

static void test_synopsis(void **state)
{
	for (const struct cmd_entry *const *f = families; *f; f++)
		check_tree(*f);
}

/* Runs hpq's dispatcher on argv with stdout discarded; returns the status. */
static int run(int argc, char **argv)
{
	struct cli cli;
	FILE *saved = stdout;
	int r;

	cli_init(&cli);
	cli.addr = "/nonexistent/hpq-test.sock"; /* any connection attempt fails */
	stdout = fopen("/dev/null", "w");
	r = cli_run(&cli, families, NULL, argc, argv);
	fclose(stdout);
	stdout = saved;
	cli_release(&cli);
	return r;
}

static void test_help_everywhere(void **state)
{
	for (const struct cmd_entry *const *f = families; *f; f++) {
		char *help[] = {(char *)(*f)->name, "--help", NULL};

		if (run(2, help) != CLI_OK)
			fail_msg("hpq %s --help did not exit 0", (*f)->name);
		if (!(*f)->sub)
			continue;
		for (const struct cmd_entry *const *s = (*f)->sub; *s; s++) {
			char *sub[] = {(char *)(*f)->name, (char *)(*s)->name, "--help", NULL};

			if (run(3, sub) != CLI_OK)
				fail_msg("hpq %s %s --help did not exit 0", (*f)->name, (*s)->name);
		}
	}
}

static void test_usage_errors(void **state)
{
	char *a1[] = {"lsit", NULL};
	char *a2[] = {"list", "--bogus", NULL};
	char *a3[] = {"team", "frob", NULL};
	char *a4[] = {"team", NULL};
	char *a5[] = {"show", NULL};
	char *a6[] = {"show", "12x", NULL};
	char *a7[] = {"cancel", "1", "-3", NULL};
	char *a8[] = {"list", "--state", "sleeping", NULL};
	char *a9[] = {"list", "--team", NULL};
	char *a10[] = {"class", "add", "c1", NULL};
	char *a11[] = {"checkpoint", "--path", "/x", NULL};

	assert_int_equal(run(1, a1), CLI_USAGE);
	assert_int_equal(run(2, a2), CLI_USAGE);
	assert_int_equal(run(2, a3), CLI_USAGE);
	assert_int_equal(run(1, a4), CLI_USAGE);
	assert_int_equal(run(1, a5), CLI_USAGE);
	assert_int_equal(run(2, a6), CLI_USAGE);
	assert_int_equal(run(3, a7), CLI_USAGE);
	assert_int_equal(run(3, a8), CLI_USAGE);
	assert_int_equal(run(2, a9), CLI_USAGE);
	assert_int_equal(run(3, a10), CLI_USAGE);
	assert_int_equal(run(3, a11), CLI_USAGE);
}

/* Well-formed commands get past parsing and fail only to connect. */
static void test_unreachable_daemon(void **state)
{
	char *a1[] = {"list", "--state", "Running", NULL};
	char *a2[] = {"cancel", "1", "2", NULL};
	char *a3[] = {"version", NULL};

	assert_int_equal(run(3, a1), CLI_ERR);
	assert_int_equal(run(3, a2), CLI_ERR);
	assert_int_equal(run(1, a3), CLI_ERR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_synopsis),
		cmocka_unit_test(test_help_everywhere),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_unreachable_daemon),
	};

	return cmocka_run_group_tests(tests, load_man, free_man);
}
