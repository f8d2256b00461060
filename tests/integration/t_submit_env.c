/*
 * t_submit_env: what a task finds when it starts, and its time limit.
 *
 * - By default (--export=ALL, as sbatch) the task gets the submitting
 *   environment and the submitting directory, plus HPQ_TASK_ID,
 *   HPQ_ATTEMPT, HPQ_NODE_RANK, HPQ_NNODES, HPQ_CHECKPOINT_DIR,
 *   HPQ_AGENT_SOCKET and CUDA_VISIBLE_DEVICES naming as many distinct GPUs
 *   as it asked for.
 * - --export=NONE gives a login-like environment (HOME, PATH, USER from
 *   the password database) and none of the submitter's variables; --chdir
 *   sets the directory.
 * - --export=NONE,HPQ_ITEST_X=y,HPQ_SOCKET gives exactly those: one set
 *   on the command line, one copied from the submitting environment.
 * - --time 2s on a task that would sleep a minute ends it TIMEOUT, with
 *   its process group gone, in a few seconds.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

/* The value of NAME in an `env` dump, or NULL. Returns a static buffer. */
static const char *env_value(const char *dump, const char *name)
{
	static char val[512];
	size_t n = strlen(name);

	for (const char *p = dump; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			size_t len = strcspn(p + n + 1, "\n");

			snprintf(val, sizeof(val), "%.*s", (int)len, p + n + 1);
			return val;
		}
	}
	return NULL;
}

/* Fails unless NAME is want in the dump (want NULL: NAME is absent). */
static void expect_env(const char *dump, const char *name, const char *want)
{
	const char *v = env_value(dump, name);

	if (!want && v)
		fail_msg("%s=%s in the task's environment; it should be absent", name, v);
	if (want && (!v || strcmp(v, want) != 0))
		fail_msg("%s is %s%s%s in the task's environment, not '%s'", name, v ? "'" : "",
			 v ? v : "absent", v ? "'" : "", want);
}

static char *run_env(struct h_cluster *c, const char *out, uint64_t *ret_id,
		     const char *const *extra)
{
	const char *argv[32] = {"submit"};
	char cmd[256];
	struct h_out o;
	int n = 1;

	for (; *extra; extra++)
		argv[n++] = *extra;
	snprintf(cmd, sizeof(cmd), "env > %s.tmp; pwd > %s.pwd; mv %s.tmp %s", out, out, out,
		 out);
	argv[n++] = "--";
	argv[n++] = "sh";
	argv[n++] = "-c";
	argv[n++] = cmd;
	argv[n] = NULL;
	h_hpqv(c, &o, argv);
	if (o.code != 0)
		fail_msg("submit failed: %s", o.err);
	*ret_id = h_parse_id(o.out);
	h_out_free(&o);
	assert_true(h_wait_state(c, *ret_id, "COMPLETED", 30000));
	return h_read_file(out);
}

static void submit_env(void **state)
{
	struct h_cluster *c = *state;
	char out[256], ids[32], sub[256], *env, *pwd;
	const char *v;
	uint64_t id;
	pid_t pids[8];
	int n;

	h_daemon_start(c);
	h_agent_start(c, "node1", 4, 2, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));

	/* The default: everything exported, the submit directory. */
	snprintf(out, sizeof(out), "%s", h_path(c, "env-all"));
	env = run_env(c, out, &id, (const char *const[]){"--gpus", "2", "--checkpoint-dir",
							  h_path(c, "ck"), NULL});
	assert_non_null(env);
	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	expect_env(env, "HPQ_TASK_ID", ids);
	expect_env(env, "HPQ_ATTEMPT", "1");
	expect_env(env, "HPQ_NODE_RANK", "0");
	expect_env(env, "HPQ_NNODES", "1");
	assert_non_null(env_value(env, "HPQ_CHECKPOINT_DIR"));
	assert_non_null(strstr(env_value(env, "HPQ_CHECKPOINT_DIR"), h_path(c, "ck")));
	assert_non_null(env_value(env, "HPQ_AGENT_SOCKET"));
	expect_env(env, "HPQ_ITEST_DIR", c->dir); /* exported */
	expect_env(env, "HPQ_SOCKET", c->sock);
	v = env_value(env, "CUDA_VISIBLE_DEVICES");
	assert_non_null(v);
	{
		unsigned a, b;

		if (sscanf(v, "%u,%u", &a, &b) != 2 || a == b || a > 3 || b > 3)
			fail_msg("CUDA_VISIBLE_DEVICES='%s' for 2 of 4 GPUs", v);
	}
	free(env);
	pwd = h_read_file(h_path(c, "env-all.pwd"));
	assert_non_null(pwd);
	assert_int_equal(strncmp(pwd, c->dir, strlen(c->dir)), 0);
	assert_string_equal(pwd + strlen(c->dir), "\n");
	free(pwd);

	/* Nothing exported: a login-like environment; another directory. */
	snprintf(sub, sizeof(sub), "%s", h_path(c, "sub"));
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(out, sizeof(out), "%s", h_path(c, "env-none"));
	env = run_env(c, out, &id, (const char *const[]){"--export", "NONE", "--chdir", sub,
							  NULL});
	assert_non_null(env);
	expect_env(env, "HPQ_SOCKET", NULL);
	expect_env(env, "HPQ_ITEST_DIR", NULL);
	expect_env(env, "USER", "root");
	expect_env(env, "HOME", "/root");
	assert_non_null(env_value(env, "PATH"));
	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	expect_env(env, "HPQ_TASK_ID", ids);
	free(env);
	pwd = h_read_file(h_path(c, "env-none.pwd"));
	assert_non_null(pwd);
	assert_int_equal(strncmp(pwd, sub, strlen(sub)), 0);
	assert_string_equal(pwd + strlen(sub), "\n");
	free(pwd);

	/* Exactly a list: one variable set here, one copied. */
	snprintf(out, sizeof(out), "%s", h_path(c, "env-list"));
	env = run_env(c, out, &id, (const char *const[]){"--export", "NONE,HPQ_ITEST_X=y,HPQ_SOCKET",
							  NULL});
	assert_non_null(env);
	expect_env(env, "HPQ_ITEST_X", "y");
	expect_env(env, "HPQ_SOCKET", c->sock);
	expect_env(env, "HPQ_ITEST_DIR", NULL);
	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	expect_env(env, "HPQ_TASK_ID", ids);
	free(env);

	/* A time limit: a task that would sleep for an hour ends TIMEOUT (which
	 * only its 2 s limit can make it), its whole group killed. */
	id = h_submit(c, "--time", "2s", "--", "sh", "-c", "sleep 3600 & wait", NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, h_task_pids(c, id, pids, 8) >= 2, 30000));
	n = h_task_pids(c, id, pids, 8);
	assert_true(h_wait_state(c, id, "TIMEOUT", 60000));
	for (int i = 0; i < n; i++)
		assert_true(H_WAIT_FOR(c, kill(pids[i], 0) < 0 && errno == ESRCH, 30000));
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(submit_env, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
