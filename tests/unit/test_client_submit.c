/*
 * test_client_submit.c: what `hpq submit` command lines turn into, without
 * a daemon: defaults, every option, where options stop and the command
 * starts, --export in all its forms, and the usage errors (exit 2) for
 * sizes, durations, numbers and names that must not reach the daemon.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "cmd-submit.h"
#include "error.h"

#define ARGC(v) ((int)(sizeof(v) / sizeof((v)[0])) - 1)

static char *test_envp[] = {"HOME=/home/alice", "PATH=/usr/bin:/bin", "LANG=C.UTF-8",
			    "=nameless", "EMPTY=", NULL};

/* Parses argv (NULL-terminated) and returns the parser's result. */
static int parse(char **argv, int argc, struct cmd_submit *s)
{
	struct cli cli;

	cli_init(&cli);
	cli.cmd = "submit";
	return cmd_submit_parse(&cli, &cmd_submit_entry, argc, argv, test_envp, s);
}

static const char *env_get(const struct cmd_submit *s, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < s->n_env; i++)
		if (strncmp(s->env[i], name, n) == 0 && s->env[i][n] == '=')
			return s->env[i] + n + 1;
	return NULL;
}

static void test_defaults(void **state)
{
	char *argv[] = {"submit", "--", "./train.sh", "--lr", "3", NULL};
	struct cmd_submit s;
	char *here = getcwd(NULL, 0);

	assert_int_equal(parse(argv, ARGC(argv), &s), 0);
	assert_int_equal(s.spec.n_argv, 3);
	assert_string_equal(s.spec.argv[0], "./train.sh");
	assert_string_equal(s.spec.argv[2], "3");
	assert_int_equal(s.spec.nodes, 1);
	assert_int_equal(s.spec.per_node->gpus, 0);
	assert_int_equal(s.spec.per_node->cpus, SUBMIT_DEFAULT_CPUS);
	assert_int_equal(s.spec.per_node->mem, SUBMIT_DEFAULT_MEM_MIB);
	assert_int_equal(s.spec.time_limit_s, 0);
	assert_int_equal(s.spec.preempt_signal, 0);
	assert_int_equal(s.spec.grace_s, 0);
	assert_string_equal(s.spec.name, "train.sh");
	assert_string_equal(s.spec.team, "");
	assert_string_equal(s.spec.class_, "");
	assert_string_equal(s.spec.pool, "");
	assert_string_equal(s.spec.checkpoint_dir, "");
	assert_string_equal(s.spec.cwd, here);
	/* --export=ALL: every variable with a name, empty values included. */
	assert_int_equal(s.spec.n_env, 4);
	assert_string_equal(env_get(&s, "HOME"), "/home/alice");
	assert_string_equal(env_get(&s, "EMPTY"), "");
	assert_null(env_get(&s, ""));
	cmd_submit_release(&s);
	free(here);
}

static void test_all_options(void **state)
{
	char *argv[] = {"submit", "--name", "llm-7b", "--team", "team1", "--class", "training",
			"--pool", "p5", "--nodes", "2", "--gpus", "8", "--cpus", "96", "--mem",
			"1T", "--time", "1h30m", "--checkpoint-dir", "ckpt", "--preempt-signal",
			"USR1", "--grace", "2m", "--export=NONE,WANDB_MODE=offline", "--chdir",
			"/srv/run", "torchrun", "train.py", NULL};
	struct cmd_submit s;

	assert_int_equal(parse(argv, ARGC(argv), &s), 0);
	assert_string_equal(s.spec.name, "llm-7b");
	assert_string_equal(s.spec.team, "team1");
	assert_string_equal(s.spec.class_, "training");
	assert_string_equal(s.spec.pool, "p5");
	assert_int_equal(s.spec.nodes, 2);
	assert_int_equal(s.spec.per_node->gpus, 8);
	assert_int_equal(s.spec.per_node->cpus, 96);
	assert_int_equal(s.spec.per_node->mem, 1024 * 1024);
	assert_int_equal(s.spec.time_limit_s, 5400);
	assert_int_equal(s.spec.preempt_signal, SIGUSR1);
	assert_int_equal(s.spec.grace_s, 120);
	/* Relative directories: --chdir from here, the checkpoint dir from --chdir. */
	assert_string_equal(s.spec.cwd, "/srv/run");
	assert_string_equal(s.spec.checkpoint_dir, "/srv/run/ckpt");
	assert_int_equal(s.spec.n_env, 1);
	assert_string_equal(s.spec.env[0], "WANDB_MODE=offline");
	assert_int_equal(s.spec.n_argv, 2);
	assert_string_equal(s.spec.argv[0], "torchrun");
	cmd_submit_release(&s);
}

static void test_relative_chdir(void **state)
{
	char *argv[] = {"submit", "--chdir", "work", "--checkpoint-dir", "/abs/ck", "x", NULL};
	struct cmd_submit s;
	char *here = getcwd(NULL, 0), *want;

	assert_int_equal(parse(argv, ARGC(argv), &s), 0);
	assert_true(asprintf(&want, "%s/work", here) > 0);
	assert_string_equal(s.spec.cwd, want);
	assert_string_equal(s.spec.checkpoint_dir, "/abs/ck");
	cmd_submit_release(&s);
	free(want);
	free(here);
}

/* Options stop at the command: what follows belongs to it. */
static void test_command_boundary(void **state)
{
	char *a1[] = {"submit", "python3", "--gpus", "2", NULL};
	char *a2[] = {"submit", "--gpus", "1", "--", "--weird", "--", NULL};
	char *a3[] = {"submit", "--gpus", "1", "--", NULL};
	char *a4[] = {"submit", "--", "", "arg", NULL};
	char *a5[] = {"submit", "--gpus", "1", NULL};
	struct cmd_submit s;

	assert_int_equal(parse(a1, ARGC(a1), &s), 0);
	assert_int_equal(s.spec.per_node->gpus, 0);
	assert_int_equal(s.spec.n_argv, 3);
	assert_string_equal(s.spec.argv[1], "--gpus");
	cmd_submit_release(&s);

	assert_int_equal(parse(a2, ARGC(a2), &s), 0);
	assert_int_equal(s.spec.per_node->gpus, 1);
	assert_int_equal(s.spec.n_argv, 2);
	assert_string_equal(s.spec.argv[0], "--weird");
	assert_string_equal(s.spec.argv[1], "--");
	cmd_submit_release(&s);

	assert_int_equal(parse(a3, ARGC(a3), &s), CLI_USAGE);
	assert_int_equal(parse(a4, ARGC(a4), &s), CLI_USAGE);
	assert_int_equal(parse(a5, ARGC(a5), &s), CLI_USAGE);
}

static void test_default_name(void **state)
{
	char *a1[] = {"submit", "/usr/bin/python3", NULL};
	char *a2[] = {"submit", "/opt/run it!.sh", NULL};
	char *a3[] = {"submit", "/opt/.hidden", NULL};
	struct cmd_submit s;

	assert_int_equal(parse(a1, ARGC(a1), &s), 0);
	assert_string_equal(s.spec.name, "python3");
	cmd_submit_release(&s);
	assert_int_equal(parse(a2, ARGC(a2), &s), 0);
	assert_string_equal(s.spec.name, "run_it_.sh");
	cmd_submit_release(&s);
	/* Nothing that can be a name: the task stays unnamed. */
	assert_int_equal(parse(a3, ARGC(a3), &s), 0);
	assert_string_equal(s.spec.name, "");
	cmd_submit_release(&s);
}

static void bad(const char *opt, const char *val)
{
	char *argv[] = {"submit", (char *)opt, (char *)val, "--", "true", NULL};
	struct cmd_submit s;
	int r = parse(argv, ARGC(argv), &s);

	if (r != CLI_USAGE)
		fail_msg("'%s %s' gave %d, not a usage error", opt, val, r);
}

static void test_usage_errors(void **state)
{
	bad("--mem", "0");
	bad("--mem", "-5G");
	bad("--mem", "12Q");
	bad("--mem", "65T");
	bad("--mem", "");
	bad("--gpus", "-1");
	bad("--gpus", "1025");
	bad("--gpus", "2.5");
	bad("--cpus", "0");
	bad("--nodes", "0");
	bad("--nodes", "99999999999999999999999");
	bad("--time", "soon");
	bad("--time", "-1h");
	bad("--grace", "0");
	bad("--grace", "2d");
	bad("--preempt-signal", "NOPE");
	bad("--preempt-signal", "0");
	bad("--name", "has space");
	bad("--team", "");
	bad("--class", "-x");
	bad("--pool", "a/b");
	bad("--export", "ALL,NONE");
	bad("--export", "1BAD");
	bad("--chdir", "");
	bad("--checkpoint-dir", "");
	bad("--no-such-option", "x");
}

static void test_time_none(void **state)
{
	char *argv[] = {"submit", "--time", "unlimited", "x", NULL};
	char *argv2[] = {"submit", "--time=2-00:00:00", "x", NULL};
	struct cmd_submit s;

	assert_int_equal(parse(argv, ARGC(argv), &s), 0);
	assert_int_equal(s.spec.time_limit_s, 0);
	cmd_submit_release(&s);
	assert_int_equal(parse(argv2, ARGC(argv2), &s), 0);
	assert_int_equal(s.spec.time_limit_s, 172800);
	cmd_submit_release(&s);
}

/* --time reads Slurm's syntax: a bare number is minutes. */
static void test_time_minutes(void **state)
{
	char *a1[] = {"submit", "--time", "90", "x", NULL};
	char *a2[] = {"submit", "-t", "1:30", "x", NULL};
	char *a3[] = {"submit", "--time", "90s", "x", NULL};
	char *a4[] = {"submit", "--time", "INFINITE", "x", NULL};
	struct cmd_submit s;

	assert_int_equal(parse(a1, ARGC(a1), &s), 0);
	assert_int_equal(s.spec.time_limit_s, 5400);
	cmd_submit_release(&s);
	assert_int_equal(parse(a2, ARGC(a2), &s), 0);
	assert_int_equal(s.spec.time_limit_s, 90);
	cmd_submit_release(&s);
	assert_int_equal(parse(a3, ARGC(a3), &s), 0);
	assert_int_equal(s.spec.time_limit_s, 90);
	cmd_submit_release(&s);
	assert_int_equal(parse(a4, ARGC(a4), &s), 0);
	assert_int_equal(s.spec.time_limit_s, 0);
	cmd_submit_release(&s);
}

/* The batch options of the command line reach the spec. */
static void test_batch_options(void **state)
{
	char *argv[] = {"submit", "-o", "%x-%j.out", "-e", "%x-%j.err", "-a", "0-9%2", "-d",
			"afterok:3", "--kill-on-invalid-dep=yes", "-H", "--exclusive",
			"--ntasks-per-node", "2", "-J", "nm", "-A", "t1", "-q", "c1", "-p", "p1",
			"--", "true", NULL};
	struct cmd_submit s;

	assert_int_equal(parse(argv, ARGC(argv), &s), 0);
	assert_string_equal(s.spec.output, "%x-%j.out");
	assert_string_equal(s.spec.error, "%x-%j.err");
	assert_string_equal(s.spec.array, "0-9%2");
	assert_string_equal(s.spec.dependency, "afterok:3");
	assert_true(s.spec.kill_on_invalid_dep);
	assert_true(s.spec.hold);
	assert_true(s.spec.exclusive);
	assert_int_equal(s.spec.ntasks_per_node, 2);
	assert_int_equal(s.spec.per_node->cpus, 2);
	assert_string_equal(s.spec.name, "nm");
	assert_string_equal(s.spec.team, "t1");
	assert_string_equal(s.spec.class_, "c1");
	assert_string_equal(s.spec.pool, "p1");
	assert_int_equal(s.spec.script.len, 0);
	assert_false(s.test_only);
	cmd_submit_release(&s);
	bad("--output", "%z");
	bad("--error", "x%");
	bad("--array", "3-1");
	bad("--dependency", "afterok:");
	bad("--kill-on-invalid-dep", "1");
	bad("--time", "1:2:3:4");
	bad("--nodes", "3-2");
	bad("--gres", "gpu:-1");
	bad("--mem-per-cpu", "0");
}

static void test_help(void **state)
{
	char *argv[] = {"submit", "--gpus", "1", "--help", "x", NULL};
	struct cmd_submit s;

	assert_int_equal(parse(argv, ARGC(argv), &s), CLI_DONE);
}

/* ---------------------------------------------------------------- --export */

static char **exp_ok(const char *spec, size_t *n)
{
	char **env = NULL, err[128] = "";

	if (cmd_submit_export(spec, test_envp, &env, n, err, sizeof(err)) != 0)
		fail_msg("--export=%s refused: %s", spec, err);
	return env;
}

static void exp_free(char **env, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(env[i]);
	free(env);
}

static void test_export_forms(void **state)
{
	size_t n;
	char **e;

	e = exp_ok("NONE", &n);
	assert_int_equal(n, 0);
	exp_free(e, n);

	e = exp_ok("HOME", &n);
	assert_int_equal(n, 1);
	assert_string_equal(e[0], "HOME=/home/alice");
	exp_free(e, n);

	/* A name that is not set stays unset; VAR=VALUE sets. */
	e = exp_ok("HOME,UNSET_VAR,X=1,Y=a=b", &n);
	assert_int_equal(n, 3);
	assert_string_equal(e[0], "HOME=/home/alice");
	assert_string_equal(e[1], "X=1");
	assert_string_equal(e[2], "Y=a=b");
	exp_free(e, n);

	/* ALL with overrides: the override replaces in place, new ones follow. */
	e = exp_ok("ALL,PATH=/opt/bin,NEW=", &n);
	assert_int_equal(n, 5);
	assert_string_equal(e[1], "PATH=/opt/bin");
	assert_string_equal(e[4], "NEW=");
	exp_free(e, n);

	/* The order of ALL in the list does not matter. */
	e = exp_ok("LANG=fr_FR.UTF-8,ALL", &n);
	assert_int_equal(n, 4);
	assert_string_equal(e[2], "LANG=fr_FR.UTF-8");
	exp_free(e, n);

	/* The last VAR=VALUE wins. */
	e = exp_ok("NONE,A=1,A=2", &n);
	assert_int_equal(n, 1);
	assert_string_equal(e[0], "A=2");
	exp_free(e, n);
}

static void test_export_bad(void **state)
{
	static const char *const specs[] = {"", ",", "A,", ",A", "A,,B", "ALL,NONE", "1A",
					    "A-B=1", "=x", "A B", NULL};

	for (const char *const *s = specs; *s; s++) {
		char **env = (char **)0x1, err[128] = "";
		size_t n = 77;

		if (cmd_submit_export(*s, test_envp, &env, &n, err, sizeof(err)) != HPQ_EINVAL)
			fail_msg("--export='%s' was accepted", *s);
		assert_true(env == (char **)0x1 && n == 77); /* outputs untouched */
		assert_true(err[0] != '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_relative_chdir),
		cmocka_unit_test(test_command_boundary),
		cmocka_unit_test(test_default_name),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_time_none),
		cmocka_unit_test(test_time_minutes),
		cmocka_unit_test(test_batch_options),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_export_forms),
		cmocka_unit_test(test_export_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
