/*
 * test_agent_env.c: the environment a task gets. The submitted list is
 * kept except for the variables the agent owns, which it sets itself (a
 * task submitted from inside another task must not inherit the parent's
 * HPQ_TASK_ID or GPUs); an empty list becomes a minimal login
 * environment; resume and gang variables appear only when they apply.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "exec.h"

static const struct exec_ident alice = {"alice", "/home/alice", "/bin/bash", 1000};

static const char *get(char **env, const char *name)
{
	size_t n = strlen(name);
	const char *found = NULL;

	for (; *env; env++) {
		if (strncmp(*env, name, n) == 0 && (*env)[n] == '=') {
			assert_null(found); /* every variable at most once */
			found = *env + n + 1;
		}
	}
	return found;
}

static size_t count(char **env)
{
	size_t n = 0;

	while (env[n])
		n++;
	return n;
}

static void submitted_env_kept_managed_replaced(void **state)
{
	char *submitted[] = {
		"PATH=/opt/conda/bin:/usr/bin", "HOME=/home/alice", "HPQ_TASK_ID=999",
		"CUDA_VISIBLE_DEVICES=0,1,2,3", "HPQ_RESUME_FROM=/old/ckpt", "EMPTY=",
		"WEIRD=a=b=c",
	};
	uint32_t gpus[] = {2, 3};
	Hpq__RunTask rt = HPQ__RUN_TASK__INIT;
	char **env = NULL;

	rt.task_id = 42;
	rt.attempt = 3;
	rt.env = submitted;
	rt.n_env = sizeof(submitted) / sizeof(submitted[0]);
	assert_int_equal(exec_env_build(&rt, &alice, gpus, 2, "/var/lib/hpq-agent/agent.sock",
					&env), 0);
	assert_string_equal(get(env, "PATH"), "/opt/conda/bin:/usr/bin");
	assert_string_equal(get(env, "HOME"), "/home/alice");
	assert_string_equal(get(env, "EMPTY"), "");
	assert_string_equal(get(env, "WEIRD"), "a=b=c");
	assert_string_equal(get(env, "HPQ_TASK_ID"), "42");
	assert_string_equal(get(env, "HPQ_ATTEMPT"), "3");
	assert_string_equal(get(env, "HPQ_NODE_RANK"), "0");
	assert_string_equal(get(env, "HPQ_NNODES"), "1");
	assert_string_equal(get(env, "CUDA_VISIBLE_DEVICES"), "2,3");
	assert_string_equal(get(env, "HPQ_AGENT_SOCKET"), "/var/lib/hpq-agent/agent.sock");
	/* Not resuming: the submitter's stale value must not leak through. */
	assert_null(get(env, "HPQ_RESUME_FROM"));
	assert_null(get(env, "HPQ_RESUME_STEP"));
	assert_null(get(env, "HPQ_CHECKPOINT_DIR"));
	assert_null(get(env, "HPQ_MASTER_ADDR"));
	assert_null(get(env, "HPQ_MASTER_PORT"));
	assert_null(get(env, "USER")); /* not submitted, not invented */
	exec_env_free(env);
}

static void empty_env_is_minimal_login(void **state)
{
	static const struct exec_ident root = {"root", "/root", "/bin/sh", 0};
	Hpq__RunTask rt = HPQ__RUN_TASK__INIT;
	char **env = NULL;

	rt.task_id = 1;
	rt.attempt = 1;
	assert_int_equal(exec_env_build(&rt, &alice, NULL, 0, NULL, &env), 0);
	assert_string_equal(get(env, "HOME"), "/home/alice");
	assert_string_equal(get(env, "USER"), "alice");
	assert_string_equal(get(env, "LOGNAME"), "alice");
	assert_string_equal(get(env, "SHELL"), "/bin/bash");
	assert_string_equal(get(env, "PATH"), "/usr/local/bin:/usr/bin:/bin");
	/* No GPUs asked for: none visible, rather than all of them. */
	assert_string_equal(get(env, "CUDA_VISIBLE_DEVICES"), "");
	assert_null(get(env, "HPQ_AGENT_SOCKET"));
	/* 5 login variables + task id, attempt, rank, nnodes, CUDA_VISIBLE_DEVICES */
	assert_int_equal(count(env), 10);
	exec_env_free(env);

	assert_int_equal(exec_env_build(&rt, &root, NULL, 0, NULL, &env), 0);
	assert_non_null(strstr(get(env, "PATH"), "/usr/sbin"));
	exec_env_free(env);
}

static void resume_gang_and_checkpoint(void **state)
{
	Hpq__RunTask rt = HPQ__RUN_TASK__INIT;
	uint32_t gpus[] = {0, 1, 2, 3, 4, 5, 6, 7};
	char **env = NULL;

	rt.task_id = 7;
	rt.attempt = 2;
	rt.checkpoint_dir = "/ckpt/7";
	rt.has_resume = true;
	rt.resume_from = "/ckpt/7/step-1200";
	rt.resume_step = 1200;
	rt.node_rank = 1;
	rt.nnodes = 4;
	rt.master_addr = "10.0.0.11";
	rt.master_port = 29500;
	assert_int_equal(exec_env_build(&rt, &alice, gpus, 8, "/w/agent.sock", &env), 0);
	assert_string_equal(get(env, "HPQ_CHECKPOINT_DIR"), "/ckpt/7");
	assert_string_equal(get(env, "HPQ_RESUME_FROM"), "/ckpt/7/step-1200");
	assert_string_equal(get(env, "HPQ_RESUME_STEP"), "1200");
	assert_string_equal(get(env, "HPQ_NODE_RANK"), "1");
	assert_string_equal(get(env, "HPQ_NNODES"), "4");
	assert_string_equal(get(env, "HPQ_MASTER_ADDR"), "10.0.0.11");
	assert_string_equal(get(env, "HPQ_MASTER_PORT"), "29500");
	assert_string_equal(get(env, "CUDA_VISIBLE_DEVICES"), "0,1,2,3,4,5,6,7");
	exec_env_free(env);

	/* Resuming from step 0 (a checkpoint before the first step) still says so. */
	rt.resume_step = 0;
	rt.resume_from = "/ckpt/7/init";
	assert_int_equal(exec_env_build(&rt, &alice, NULL, 0, NULL, &env), 0);
	assert_string_equal(get(env, "HPQ_RESUME_STEP"), "0");
	exec_env_free(env);
}

static void invalid_entries_refused(void **state)
{
	char *no_equals[] = {"PATH=/bin", "JUSTANAME"};
	char *empty_name[] = {"=value"};
	Hpq__RunTask rt = HPQ__RUN_TASK__INIT;
	char **env = (char **)0x1;

	rt.task_id = 1;
	rt.attempt = 1;
	rt.env = no_equals;
	rt.n_env = 2;
	assert_int_equal(exec_env_build(&rt, &alice, NULL, 0, NULL, &env), HPQ_EINVAL);
	rt.env = empty_name;
	rt.n_env = 1;
	assert_int_equal(exec_env_build(&rt, &alice, NULL, 0, NULL, &env), HPQ_EINVAL);
	assert_ptr_equal(env, (char **)0x1); /* not set on failure */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(submitted_env_kept_managed_replaced),
		cmocka_unit_test(empty_env_is_minimal_login),
		cmocka_unit_test(resume_gang_and_checkpoint),
		cmocka_unit_test(invalid_entries_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
