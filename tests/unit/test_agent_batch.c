/*
 * test_agent_batch.c: a batch task's parts (agent/batch.h). Output
 * patterns expand every escape Slurm users write (%j %A %a %x %u %N %t %%,
 * with zero padding) and keep anything else as written; the SLURM_*
 * variables say what Slurm's would, replace submitted ones, and go with
 * slurm_env off while the HPQ_ARRAY_* ones stay; the script's copy is the
 * user's, 0700, in a directory no one else may write, and replaces a stale
 * file of the same name.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "batch.h"
#include "error.h"
#include "exec.h"

static const struct batch_names plain = {
	.task_id = 42, .name = "train", .user = "alice", .node = "gpu07", .rank = 1,
};

static void expect(const char *pattern, const struct batch_names *nm, const char *want)
{
	char *got = batch_expand(pattern, nm);

	if (strcmp(got, want))
		fail_msg("'%s' expanded to '%s', not '%s'", pattern, got, want);
	free(got);
}

static void patterns(void **state)
{
	struct batch_names arr = plain;

	expect("slurm-%j.out", &plain, "slurm-42.out");
	expect("%x-%u-%N-%t.log", &plain, "train-alice-gpu07-1.log");
	/* Outside an array: %A is the task id, %a Slurm's NO_VAL. */
	expect("%A_%a", &plain, "42_4294967294");
	arr.has_array = true;
	arr.array_id = 40;
	arr.array_index = 7;
	expect("out/%A_%a.txt", &arr, "out/40_7.txt");
	expect("%4a|%3j|%%|100%%", &arr, "0007|042|%|100%");
	/* Unknown escapes, a lone '%' and a trailing one stay as written. */
	expect("%q-%-% %", &plain, "%q-%-% %");
	expect("x%", &plain, "x%");
	expect("%5", &plain, "%5");
	expect("%5%", &plain, "%5%");
	expect("", &plain, "");
	expect("/abs/no escapes", &plain, "/abs/no escapes");
}

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

static void slurm_env(void **state)
{
	static const struct exec_ident alice = {"alice", "/home/alice", "/bin/bash", 1000};
	char *submitted[] = {"SLURM_JOB_ID=9", "SLURM_OTHER=x", "HPQ_ARRAY_INDEX=3", "KEEP=1"};
	char *nodes[] = {"gpu01", "gpu02"};
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	Hpq__RunTask rt = HPQ__RUN_TASK__INIT;
	char **env = NULL;

	res.gpus = 8;
	res.cpus = 16;
	res.mem = 65536;
	rt.task_id = 77;
	rt.attempt = 1;
	rt.name = "job";
	rt.nnodes = 2;
	rt.node_rank = 1;
	rt.node_names = nodes;
	rt.n_node_names = 2;
	rt.resources = &res;
	rt.cwd = "/work/run";
	rt.submit_dir = "/home/alice/proj";
	rt.ntasks_per_node = 4;
	rt.has_array = true;
	rt.array_id = 70;
	rt.array_index = 5;
	rt.array_count = 10;
	rt.array_min = 1;
	rt.array_max = 19;
	rt.array_step = 2;
	rt.slurm_env = true;
	rt.env = submitted;
	rt.n_env = 4;
	assert_int_equal(exec_env_build(&rt, &alice, NULL, 0, NULL, &env), 0);
	assert_string_equal(get(env, "SLURM_JOB_ID"), "77");
	assert_string_equal(get(env, "SLURM_JOB_NAME"), "job");
	assert_string_equal(get(env, "SLURM_NNODES"), "2");
	assert_string_equal(get(env, "SLURM_JOB_NUM_NODES"), "2");
	assert_string_equal(get(env, "SLURM_NODEID"), "1");
	assert_string_equal(get(env, "SLURM_JOB_NODELIST"), "gpu01,gpu02");
	assert_string_equal(get(env, "SLURM_GPUS_PER_NODE"), "8");
	assert_string_equal(get(env, "SLURM_CPUS_PER_TASK"), "16");
	assert_string_equal(get(env, "SLURM_MEM_PER_NODE"), "65536");
	assert_string_equal(get(env, "SLURM_SUBMIT_DIR"), "/home/alice/proj");
	assert_string_equal(get(env, "SLURM_NTASKS_PER_NODE"), "4");
	assert_string_equal(get(env, "SLURM_ARRAY_JOB_ID"), "70");
	assert_string_equal(get(env, "SLURM_ARRAY_TASK_ID"), "5");
	assert_string_equal(get(env, "SLURM_ARRAY_TASK_COUNT"), "10");
	assert_string_equal(get(env, "SLURM_ARRAY_TASK_MIN"), "1");
	assert_string_equal(get(env, "SLURM_ARRAY_TASK_MAX"), "19");
	assert_string_equal(get(env, "SLURM_ARRAY_TASK_STEP"), "2");
	assert_string_equal(get(env, "HPQ_ARRAY_ID"), "70");
	assert_string_equal(get(env, "HPQ_ARRAY_INDEX"), "5");
	assert_null(get(env, "SLURM_OTHER")); /* the submitter's allocation's */
	assert_string_equal(get(env, "KEEP"), "1");
	exec_env_free(env);

	/* Off: no SLURM_* of ours, the submitted ones kept; HPQ_ARRAY_* stay. */
	rt.slurm_env = false;
	assert_int_equal(exec_env_build(&rt, &alice, NULL, 0, NULL, &env), 0);
	assert_string_equal(get(env, "SLURM_JOB_ID"), "9");
	assert_string_equal(get(env, "SLURM_OTHER"), "x");
	assert_null(get(env, "SLURM_NODEID"));
	assert_null(get(env, "SLURM_ARRAY_TASK_ID"));
	assert_string_equal(get(env, "HPQ_ARRAY_INDEX"), "5");
	exec_env_free(env);

	/* Not an array, nothing asked: the optional ones are missing; the
	 * submit directory defaults to the working directory. */
	rt.slurm_env = true;
	rt.has_array = false;
	rt.resources = NULL;
	rt.submit_dir = "";
	rt.ntasks_per_node = 0;
	rt.n_node_names = 0;
	rt.n_env = 0;
	assert_int_equal(exec_env_build(&rt, &alice, NULL, 0, NULL, &env), 0);
	assert_string_equal(get(env, "SLURM_SUBMIT_DIR"), "/work/run");
	assert_null(get(env, "SLURM_JOB_NODELIST"));
	assert_null(get(env, "SLURM_GPUS_PER_NODE"));
	assert_null(get(env, "SLURM_NTASKS_PER_NODE"));
	assert_null(get(env, "SLURM_ARRAY_JOB_ID"));
	assert_null(get(env, "HPQ_ARRAY_ID"));
	exec_env_free(env);
}

static void script_copy(void **state)
{
	char dir[] = "/tmp/test_agent_batch.XXXXXX", sdir[128], path[256], why[256], buf[256];
	const char body[] = "#!/bin/sh\necho hi\n";
	struct stat st;
	ssize_t n;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(sdir, sizeof(sdir), "%s/scripts", dir);
	assert_int_equal(batch_script_write(sdir, 5, 2, body, sizeof(body) - 1, false, 0, 0, path,
					    sizeof(path), why, sizeof(why)), 0);
	snprintf(buf, sizeof(buf), "%s/5.2", sdir);
	assert_string_equal(path, buf);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, getuid());
	assert_int_equal(stat(sdir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0711);
	fd = open(path, O_RDONLY);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, sizeof(body) - 1);
	assert_memory_equal(buf, body, sizeof(body) - 1);

	/* A second write of the same attempt replaces the file, also when it
	 * was made a link meanwhile. */
	unlink(path);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(batch_script_write(sdir, 5, 2, "x", 1, false, 0, 0, path, sizeof(path),
					    why, sizeof(why)), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 1);
	batch_script_remove(sdir, 5, 2);
	assert_int_equal(lstat(path, &st), -1);

	/* A directory others may write to is refused. */
	assert_int_equal(chmod(sdir, 0777), 0);
	assert_true(batch_script_write(sdir, 6, 1, "x", 1, false, 0, 0, path, sizeof(path), why,
				       sizeof(why)) < 0);
	assert_non_null(strstr(why, "writable by it alone"));
	rmdir(sdir);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(patterns),
		cmocka_unit_test(slurm_env),
		cmocka_unit_test(script_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
