/*
 * test_client_recipe.c: recipes (client/recipe.c) without a daemon:
 * parameter types, defaults and required ones, --set, base inheritance
 * and its cycles, errors with file and line, the search path, and the
 * wrapper script (run for real with sh, a fake hpq and a fake program).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "cmd-submit.h"
#include "error.h"
#include "recipe.h"
#include "xalloc.h"

struct fix {
	char dir[64];
	char sub[96];  /* a second directory, searched after dir */
	char *path[3];
};

static int setup(void **state)
{
	struct fix *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/hpq-recipe-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->sub, sizeof(f->sub), "%s/second", f->dir);
	mkdir(f->sub, 0755);
	f->path[0] = f->dir;
	f->path[1] = f->sub;
	f->path[2] = NULL;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[256];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static const char basic[] =
	"name: basic\n"
	"version: \"2\"\n"
	"description: a test\n"
	"params:\n"
	"  steps: {type: int, default: 10, description: how many}\n"
	"  lr: {type: string, default: \"0.1\"}\n"
	"  fast: {type: bool, default: no}\n"
	"  limit: {type: duration, default: 2h}\n"
	"  memory: {type: size, default: 4G}\n"
	"  data: {type: string, description: the data set}\n"
	"nodes: 2\n"
	"class: training\n"
	"time: \"{limit}\"\n"
	"resources: {gpus: 4, cpus: 8, mem: \"{memory}\"}\n"
	"launcher: torchrun\n"
	"command: [python3, train.py, --steps, \"{steps}\", --data, \"{data}\", \"--fast={fast}\"]\n"
	"checkpoint:\n"
	"  dir: \"ck/%u/%j/{lr}\"\n"
	"  resume: {arg: \"--resume={path}\"}\n"
	"env: {LR: \"{lr}\", PLAIN: x}\n";

/* Loads name from f's path and resolves it with sets. */
static int resolve(struct fix *f, const char *name, char **sets, size_t n,
		   struct recipe_task *t, char *err, size_t errlen)
{
	struct recipe r;
	int rc = recipe_load(f->path, name, &r, err, errlen);

	if (rc < 0)
		return rc;
	rc = recipe_resolve(&r, sets, n, t, err, errlen);
	recipe_release(&r);
	return rc;
}

static void test_types_defaults_and_sets(void **state)
{
	struct fix *f = *state;
	char *sets[] = {"data=/d/x y", "steps=25", "fast=yes"};
	struct recipe_task t;
	char err[1024];

	put(f->dir, "basic.yaml", basic);
	assert_int_equal(resolve(f, "basic", sets, 3, &t, err, sizeof(err)), 0);
	assert_string_equal(t.name, "basic");
	assert_string_equal(t.version, "2");
	assert_int_equal(t.nodes, 2);
	assert_int_equal(t.gpus, 4);
	assert_int_equal(t.cpus, 8);
	assert_int_equal(t.mem_mib, 4096);
	assert_int_equal(t.time_s, 7200);
	assert_string_equal(t.class_, "training");
	assert_int_equal(t.launcher, RECIPE_LAUNCH_TORCHRUN);
	assert_int_equal(t.n_command, 7);
	assert_string_equal(t.command[3], "25");
	assert_string_equal(t.command[5], "/d/x y");
	assert_string_equal(t.command[6], "--fast=true"); /* bools are normalized */
	assert_string_equal(t.ckpt_dir, "ck/%u/%j/0.1");
	assert_int_equal(t.n_resume_arg, 1);
	assert_string_equal(t.resume_arg[0], "--resume={path}");
	assert_int_equal(t.n_env, 2);
	assert_string_equal(t.env[0], "LR=0.1");
	assert_int_equal(t.n_params, 6);
	assert_string_equal(t.params[0], "steps=25");
	assert_string_equal(t.params[5], "data=/d/x y");
	recipe_task_release(&t);
}

/* A duration parameter is checked as an hpq duration, where a bare number is
 * seconds (docs/recipes.md, hpq(1)); used as the time limit it must mean the
 * same: limit=3600 is one hour, not 3600 minutes. */
static void test_duration_param_as_time(void **state)
{
	struct fix *f = *state;
	char *sets[] = {"data=d", "limit=3600"};
	struct recipe_task t;
	char err[1024];

	put(f->dir, "basic.yaml", basic);
	assert_int_equal(resolve(f, "basic", sets, 2, &t, err, sizeof(err)), 0);
	if (t.time_s != 3600)
		fail_msg("--set limit=3600 (a duration: 3600 s) gave a time limit of %llu s",
			 (unsigned long long)t.time_s);
	recipe_task_release(&t);
}

/* A time parameter is a time limit as --time takes it: a bare number is
 * minutes, UNLIMITED is no limit (0), and it is checked as such. */
static void test_time_param(void **state)
{
	struct fix *f = *state;
	char *minutes[] = {"t=90"}, *unlimited[] = {"t=unlimited"}, *units[] = {"t=1h30m"};
	char *bad[] = {"t=soon"};
	struct recipe_task t;
	char err[1024];

	put(f->dir, "timed.yaml", "name: timed\nparams:\n  t: {type: time, default: 2h}\n"
	    "time: \"{t}\"\ncommand: [x]\n");
	assert_int_equal(resolve(f, "timed", NULL, 0, &t, err, sizeof(err)), 0);
	assert_int_equal(t.time_s, 7200);
	recipe_task_release(&t);
	assert_int_equal(resolve(f, "timed", minutes, 1, &t, err, sizeof(err)), 0);
	assert_int_equal(t.time_s, 90 * 60);
	recipe_task_release(&t);
	assert_int_equal(resolve(f, "timed", units, 1, &t, err, sizeof(err)), 0);
	assert_int_equal(t.time_s, 90 * 60);
	recipe_task_release(&t);
	assert_int_equal(resolve(f, "timed", unlimited, 1, &t, err, sizeof(err)), 0);
	assert_true(t.has_time);
	assert_int_equal(t.time_s, 0);
	recipe_task_release(&t);
	assert_int_equal(resolve(f, "timed", bad, 1, &t, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "'soon' is not a time limit"));

	/* A duration keeps its seconds in the time limit, whatever its form. */
	put(f->dir, "dur.yaml", "name: dur\nparams:\n  d: {type: duration, default: \"1:30:00\"}\n"
	    "time: \"{d}\"\ncommand: [x]\n");
	assert_int_equal(resolve(f, "dur", NULL, 0, &t, err, sizeof(err)), 0);
	assert_int_equal(t.time_s, 5400);
	recipe_task_release(&t);
}

static void test_bad_sets(void **state)
{
	struct fix *f = *state;
	char *unknown[] = {"data=x", "stpes=3"}, *wrong[] = {"data=x", "steps=ten"};
	char *badbool[] = {"data=x", "fast=maybe"}, *badsize[] = {"data=x", "memory=lots"};
	char *noeq[] = {"data"};
	struct recipe_task t;
	char err[1024];

	put(f->dir, "basic.yaml", basic);
	assert_int_equal(resolve(f, "basic", unknown, 2, &t, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "no parameter 'stpes'"));
	assert_non_null(strstr(err, "steps, lr")); /* lists what it has */
	assert_int_equal(resolve(f, "basic", wrong, 2, &t, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "'ten' is not a int"));
	assert_int_equal(resolve(f, "basic", badbool, 2, &t, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "not a bool"));
	assert_int_equal(resolve(f, "basic", badsize, 2, &t, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "not a size"));
	assert_int_equal(resolve(f, "basic", noeq, 1, &t, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "KEY=VALUE"));
	/* data has no default: it is required. */
	assert_int_equal(resolve(f, "basic", NULL, 0, &t, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "needs parameter 'data': the data set"));
}

static void test_file_errors_have_lines(void **state)
{
	struct fix *f = *state;
	struct recipe r;
	char err[1024], file[256];

	put(f->dir, "syntax.yaml", "name: syntax\ncommand: [a, b\nnodes: 1\n");
	snprintf(file, sizeof(file), "%s/syntax.yaml", f->dir);
	assert_int_equal(recipe_load(f->path, "syntax", &r, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, file));
	assert_non_null(strstr(err, "YAML syntax error"));
	assert_non_null(strstr(err, "syntax.yaml:3:"));

	put(f->dir, "unknown.yaml", "name: unknown\ncommand: [x]\n\ngpu: 1\n");
	assert_int_equal(recipe_load(f->path, "unknown", &r, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "unknown.yaml:4: unknown key 'gpu'"));

	put(f->dir, "shape.yaml", "command: python3 x.py\n");
	assert_int_equal(recipe_load(f->path, "shape", &r, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "shape.yaml:1: command must be a list"));

	put(f->dir, "ptype.yaml", "params:\n  n: {type: integer}\ncommand: [x]\n");
	assert_int_equal(recipe_load(f->path, "ptype", &r, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "ptype.yaml:2:"));
	assert_non_null(strstr(err, "type 'integer'"));

	put(f->dir, "pdef.yaml", "params:\n  n:\n    type: int\n    default: lots\ncommand: [x]\n");
	assert_int_equal(recipe_load(f->path, "pdef", &r, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "default 'lots' is not a int"));

	put(f->dir, "launch.yaml", "command: [x]\nlauncher: srun\n");
	assert_int_equal(recipe_load(f->path, "launch", &r, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "launch.yaml:2: launcher must be"));

	put(f->dir, "named.yaml", "name: other\ncommand: [x]\n");
	assert_int_equal(recipe_load(f->path, "named", &r, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "does not match"));

	assert_int_equal(recipe_load(f->path, "absent", &r, err, sizeof(err)), HPQ_ENOTFOUND);
	assert_int_equal(recipe_load(f->path, "../etc", &r, err, sizeof(err)), HPQ_EINVAL);
}

static void test_unknown_placeholder(void **state)
{
	struct fix *f = *state;
	struct recipe_task t;
	char err[1024];

	put(f->dir, "ph.yaml", "params: {a: {default: x}}\ncommand: [echo, \"{b}\"]\n");
	assert_int_equal(resolve(f, "ph", NULL, 0, &t, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "{b} is not a parameter"));
	put(f->dir, "br.yaml", "params: {a: {default: x}}\ncommand: [echo, \"{{{a}}}\"]\n");
	assert_int_equal(resolve(f, "br", NULL, 0, &t, err, sizeof(err)), 0);
	assert_string_equal(t.command[1], "{x}");
	recipe_task_release(&t);
	/* Shell text keeps its braces: ${VAR}, { cmds; }, awk's { print }. */
	put(f->dir, "sh.yaml", "params: {a: {default: x}}\n"
	    "command: [sh, -c, 'echo ${HOME:-} {a}; { true; } | awk \"{ print $1 }\"']\n");
	assert_int_equal(resolve(f, "sh", NULL, 0, &t, err, sizeof(err)), 0);
	assert_string_equal(t.command[2], "echo ${HOME:-} x; { true; } | awk \"{ print $1 }\"");
	recipe_task_release(&t);
	/* A value that must be a number after substitution. */
	put(f->dir, "nn.yaml", "params: {n: {default: two}}\nnodes: \"{n}\"\ncommand: [x]\n");
	assert_int_equal(resolve(f, "nn", NULL, 0, &t, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "nodes is 'two'"));
}

static void test_base_inheritance(void **state)
{
	struct fix *f = *state;
	struct recipe_task t;
	char *sets[] = {"rank=4"};
	char err[1024];

	put(f->dir, "parent.yaml",
	    "version: \"1\"\n"
	    "description: the parent\n"
	    "params:\n"
	    "  gpus: {type: int, default: 1}\n"
	    "  mem: {type: size, default: 8G, description: memory}\n"
	    "class: training\n"
	    "resources: {gpus: \"{gpus}\", cpus: 4, mem: \"{mem}\"}\n"
	    "launcher: torchrun\n"
	    "command: [python3, parent.py]\n"
	    "checkpoint: {dir: ck/%j, resume: {env: RESUME_PATH}}\n"
	    "env: {A: parent, B: parent}\n");
	put(f->sub, "child.yaml",
	    "base: parent\n"
	    "version: \"3\"\n"
	    "params:\n"
	    "  mem: {default: 64G}\n"
	    "  rank: {type: int, default: 8}\n"
	    "class: fine-tuning\n"
	    "resources: {cpus: 16}\n"
	    "command: [python3, child.py, --rank, \"{rank}\", --gpus, \"{gpus}\"]\n"
	    "env: {B: child}\n");
	assert_int_equal(resolve(f, "child", sets, 1, &t, err, sizeof(err)), 0);
	assert_string_equal(t.version, "3");
	assert_string_equal(t.class_, "fine-tuning");
	assert_int_equal(t.gpus, 1);         /* from the parent */
	assert_int_equal(t.cpus, 16);        /* overridden, field by field */
	assert_int_equal(t.mem_mib, 65536);  /* the parent's parameter, a new default */
	assert_int_equal(t.launcher, RECIPE_LAUNCH_TORCHRUN);
	assert_string_equal(t.command[1], "child.py");
	assert_string_equal(t.command[3], "4");
	assert_string_equal(t.ckpt_dir, "ck/%j");
	assert_string_equal(t.resume_env, "RESUME_PATH");
	assert_int_equal(t.n_params, 3);
	assert_string_equal(t.params[1], "mem=64G");
	assert_int_equal(t.n_env, 2);
	assert_string_equal(t.env[0], "B=child");
	assert_string_equal(t.env[1], "A=parent");
	recipe_task_release(&t);

	/* The parent is found in the first directory, the child in the second. */
	put(f->dir, "one.yaml", "base: two\ncommand: [x]\n");
	put(f->dir, "two.yaml", "base: three\n");
	put(f->sub, "three.yaml", "base: one\n");
	assert_int_equal(resolve(f, "one", NULL, 0, &t, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "cycle: one -> two -> three -> one"));
	put(f->dir, "self.yaml", "base: self\ncommand: [x]\n");
	assert_int_equal(resolve(f, "self", NULL, 0, &t, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "cycle: self -> self"));
	put(f->dir, "orphan.yaml", "base: nobody\ncommand: [x]\n");
	assert_int_equal(resolve(f, "orphan", NULL, 0, &t, err, sizeof(err)), HPQ_ENOTFOUND);
	assert_non_null(strstr(err, "base 'nobody'"));
}

static void test_search_path(void **state)
{
	struct fix *f = *state;
	char *dirs[] = {"/cli/a", "/cli/b"};
	char **p = recipe_search_path(dirs, 2, "/env/a:/env/b", "/home/u/.config");
	struct recipe r;
	char err[512];

	assert_string_equal(p[0], "/cli/a");
	assert_string_equal(p[1], "/cli/b");
	assert_string_equal(p[2], "/env/a");
	assert_string_equal(p[3], "/env/b");
	assert_string_equal(p[4], "/home/u/.config/hpq/recipes");
	assert_string_equal(p[5], "/etc/hpq/recipes");
	assert_non_null(p[6]); /* the system's */
	assert_null(p[7]);
	recipe_strv_free(p);

	/* First match wins. */
	put(f->dir, "dup.yaml", "description: first\ncommand: [x]\n");
	put(f->sub, "dup.yaml", "description: second\ncommand: [x]\n");
	assert_int_equal(recipe_load(f->path, "dup", &r, err, sizeof(err)), 0);
	assert_string_equal(r.description, "first");
	recipe_release(&r);
	assert_int_equal(recipe_load(f->path + 1, "dup", &r, err, sizeof(err)), 0);
	assert_string_equal(r.description, "second");
	recipe_release(&r);
}

static void list_count(void *arg, const char *file, const struct recipe *r, const char *err)
{
	int *n = arg;

	if (r && !strcmp(r->name, "dup"))
		assert_string_equal(r->description, "first");
	(*n)++;
}

static void test_list(void **state)
{
	struct fix *f = *state;
	int n = 0;

	put(f->dir, "dup.yaml", "description: first\ncommand: [x]\n");
	put(f->sub, "dup.yaml", "description: second\ncommand: [x]\n");
	put(f->sub, "other.yml", "command: [x]\n");
	put(f->sub, "notes.txt", "not a recipe\n");
	assert_int_equal(recipe_list(f->path, list_count, &n), 2);
	assert_int_equal(n, 2);
}

/* Runs script with sh and args, in dir, with the environment given. */
static int run_sh(const char *dir, const char *script, const char *const *env,
		  const char *const *args)
{
	char path[256];
	pid_t pid;
	int status;

	snprintf(path, sizeof(path), "%s/wrapper.sh", dir);
	put(dir, "wrapper.sh", script);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *argv[16] = {"sh", path};
		size_t n = 2;

		for (size_t i = 0; args[i]; i++)
			argv[n++] = args[i];
		argv[n] = NULL;
		if (chdir(dir) < 0)
			_exit(126);
		execve("/bin/sh", (char **)argv, (char **)env);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_wrapper_script(void **state)
{
	struct fix *f = *state;
	char *sets[] = {"data=it's \"$HOME\" `x`"};
	char fake[256], env_path[300], *script, *text, args[512];
	struct recipe_task t;
	char err[1024];
	FILE *fp;

	put(f->dir, "basic.yaml", basic);
	assert_int_equal(resolve(f, "basic", sets, 1, &t, err, sizeof(err)), 0);
	t.launcher = RECIPE_LAUNCH_NONE;
	/* A fake hpq that records what the watcher was started on and exits. */
	snprintf(fake, sizeof(fake), "%s/fakehpq", f->dir);
	put(f->dir, "fakehpq", "#!/bin/sh\necho \"$@\" > watcher.args\n");
	chmod(fake, 0755);
	script = recipe_script(&t, "alice", fake);
	/* The value with quotes and $ goes in the environment only as a literal. */
	assert_non_null(strstr(script, "set -u"));
	assert_null(strstr(script, "$HOME")); /* not in the script: it is an argument */

	snprintf(env_path, sizeof(env_path), "PATH=%s", getenv("PATH"));
	{
		const char *env[] = {env_path, "HPQ_TASK_ID=42", "HPQ_RESUME_FROM=/ck/step-7",
				     NULL};
		/* The "program" prints its arguments and the variables it got. */
		const char *prog[] = {"sh", "-c",
				      "printf '%s|' \"$@\" > args.out; "
				      "printf '%s|%s' \"$LR\" \"$HPQ_CHECKPOINT_DIR\" > env.out; "
				      "exit 3", "prog", "it's \"$HOME\" `x`", NULL};

		assert_int_equal(run_sh(f->dir, script, env, prog), 3);
	}
	snprintf(args, sizeof(args), "%s/args.out", f->dir);
	fp = fopen(args, "r");
	assert_non_null(fp);
	text = xcalloc(1, 512);
	assert_true(fread(text, 1, 511, fp) > 0);
	fclose(fp);
	assert_string_equal(text, "it's \"$HOME\" `x`|--resume=/ck/step-7|");
	free(text);
	snprintf(args, sizeof(args), "%s/env.out", f->dir);
	fp = fopen(args, "r");
	assert_non_null(fp);
	text = xcalloc(1, 512);
	assert_true(fread(text, 1, 511, fp) > 0);
	fclose(fp);
	assert_string_equal(text, "0.1|ck/alice/42/0.1");
	free(text);
	snprintf(args, sizeof(args), "%s/ck/alice/42/0.1", f->dir);
	assert_int_equal(access(args, F_OK), 0); /* created */
	snprintf(args, sizeof(args), "%s/watcher.args", f->dir);
	fp = fopen(args, "r");
	assert_non_null(fp);
	text = xcalloc(1, 512);
	assert_true(fread(text, 1, 511, fp) > 0);
	fclose(fp);
	assert_string_equal(text, "checkpoint --watch ck/alice/42/0.1\n");
	free(text);
	free(script);

	/* torchrun: one launcher per node, the node's GPUs, rank 0's address. */
	t.launcher = RECIPE_LAUNCH_TORCHRUN;
	script = recipe_script(&t, "alice", fake);
	assert_non_null(strstr(script, "--nnodes \"$HPQ_NNODES\" --node-rank \"$HPQ_NODE_RANK\""));
	assert_non_null(strstr(script, "--rdzv-endpoint \"$HPQ_MASTER_ADDR:$HPQ_MASTER_PORT\""));
	assert_non_null(strstr(script, "CUDA_VISIBLE_DEVICES"));
	/* Run it with a fake torchrun that writes down its arguments. */
	put(f->dir, "torchrun", "#!/bin/sh\nprintf '%s ' \"$@\" > torchrun.args\n");
	snprintf(args, sizeof(args), "%s/torchrun", f->dir);
	chmod(args, 0755);
	snprintf(env_path, sizeof(env_path), "PATH=%s:%s", f->dir, getenv("PATH"));
	{
		const char *env[] = {env_path, "HPQ_TASK_ID=42", "HPQ_NODE_RANK=1", "HPQ_NNODES=2",
				     "HPQ_MASTER_ADDR=10.0.0.1", "HPQ_MASTER_PORT=29400",
				     "CUDA_VISIBLE_DEVICES=2,5,7", NULL};
		const char *prog[] = {"python3", "train.py", NULL};

		assert_int_equal(run_sh(f->dir, script, env, prog), 0);
	}
	snprintf(args, sizeof(args), "%s/torchrun.args", f->dir);
	fp = fopen(args, "r");
	assert_non_null(fp);
	text = xcalloc(1, 512);
	assert_true(fread(text, 1, 511, fp) > 0);
	fclose(fp);
	assert_string_equal(text, "--nnodes 2 --node-rank 1 --nproc-per-node 3 --rdzv-backend c10d "
			    "--rdzv-endpoint 10.0.0.1:29400 --no-python python3 train.py ");
	free(text);
	free(script);
	/* Only node rank 0 runs the watcher. */
	t.launcher = RECIPE_LAUNCH_NONE;
	script = recipe_script(&t, "alice", fake);
	snprintf(args, sizeof(args), "%s/watcher.args", f->dir);
	unlink(args);
	{
		const char *env[] = {env_path, "HPQ_TASK_ID=42", "HPQ_NODE_RANK=1", NULL};
		const char *prog[] = {"true", NULL};

		assert_int_equal(run_sh(f->dir, script, env, prog), 0);
	}
	assert_int_equal(access(args, F_OK), -1);
	free(script);
	t.launcher = RECIPE_LAUNCH_MPIRUN;
	script = recipe_script(&t, "alice", fake);
	assert_non_null(strstr(script, "export WORLD_SIZE=\"${HPQ_NNODES:-1}\" "
				       "RANK=\"${HPQ_NODE_RANK:-0}\" LOCAL_RANK=0"));
	free(script);
	recipe_task_release(&t);
}

static int submit_parse(char **argv, int argc, struct cmd_submit *s)
{
	static char *envp[] = {"HOME=/home/x", NULL};
	struct cli cli;

	cli_init(&cli);
	cli.cmd = "submit";
	return cmd_submit_parse(&cli, &cmd_submit_entry, argc, argv, envp, s);
}

/* hpq submit --recipe: the recipe's settings, then the command line's. */
static void test_submit_recipe(void **state)
{
	struct fix *f = *state;
	char *argv[] = {"submit", "--recipe-path", f->dir, "--recipe", "basic", "--set", "data=d",
			"--nodes", "5", "--class", "urgent", NULL};
	char *bad[] = {"submit", "--recipe-path", f->dir, "--recipe", "basic", "--set", "data=d",
		       "--", "extra", NULL};
	char *noset[] = {"submit", "--set", "data=d", "--", "true", NULL};
	char *missing[] = {"submit", "--recipe-path", f->dir, "--recipe", "basic", NULL};
	char file[256];
	struct cmd_submit s;

	put(f->dir, "basic.yaml", basic);
	snprintf(file, sizeof(file), "%s/basic.yaml", f->dir);
	assert_int_equal(submit_parse(argv, 11, &s), 0);
	assert_int_equal(s.spec.nodes, 5);             /* the command line wins */
	assert_string_equal(s.spec.class_, "urgent");
	assert_int_equal(s.spec.per_node->gpus, 4);    /* the recipe's */
	assert_int_equal(s.spec.per_node->mem, 4096);
	assert_int_equal(s.spec.time_limit_s, 7200);
	assert_string_equal(s.spec.name, "basic");
	assert_string_equal(s.spec.argv[0], file);
	assert_string_equal(s.spec.argv[1], "python3");
	assert_int_equal(s.spec.n_argv, 8);
	assert_true(s.spec.script.len > 0);
	assert_string_equal(s.spec.recipe, "basic");
	assert_string_equal(s.spec.recipe_version, "2");
	assert_int_equal(s.spec.n_recipe_params, 6);
	assert_string_equal(s.spec.recipe_params[5], "data=d");
	cmd_submit_release(&s);
	assert_int_equal(submit_parse(bad, 9, &s), CLI_USAGE);
	assert_int_equal(submit_parse(noset, 5, &s), CLI_USAGE);
	assert_int_equal(submit_parse(missing, 5, &s), CLI_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_types_defaults_and_sets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duration_param_as_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_param, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_sets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors_have_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_placeholder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_base_inheritance, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrapper_script, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_recipe, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
