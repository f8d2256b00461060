/*
 * cmd-submit.c: `hpq submit`, which queues one task and prints its id.
 *
 * Like sbatch, submit captures where and with what the command should run:
 * the working directory (or --chdir) and the environment (--export, ALL by
 * default). Everything the user typed is checked here first so that a
 * typo fails fast with a usage error, before any connection; the daemon
 * checks the request again (teams, classes and capacity are its to know).
 *
 * Options stop at the first operand, so both `hpq submit -- cmd --flag`
 * and `hpq submit cmd --flag` pass --flag to cmd.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd-submit.h"
#include "error.h"
#include "hpq.h"
#include "msg.h"
#include "parse.h"
#include "xalloc.h"

enum {
	OPT_NAME = CLI_OPT_FIRST_PRIVATE,
	OPT_TEAM,
	OPT_CLASS,
	OPT_POOL,
	OPT_NODES,
	OPT_GPUS,
	OPT_CPUS,
	OPT_MEM,
	OPT_TIME,
	OPT_CHECKPOINT_DIR,
	OPT_PREEMPT_SIGNAL,
	OPT_GRACE,
	OPT_EXPORT,
	OPT_CHDIR,
};

static const struct option submit_options[] = {
	{"name", required_argument, NULL, OPT_NAME},
	{"team", required_argument, NULL, OPT_TEAM},
	{"class", required_argument, NULL, OPT_CLASS},
	{"pool", required_argument, NULL, OPT_POOL},
	{"nodes", required_argument, NULL, OPT_NODES},
	{"gpus", required_argument, NULL, OPT_GPUS},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"mem", required_argument, NULL, OPT_MEM},
	{"time", required_argument, NULL, OPT_TIME},
	{"checkpoint-dir", required_argument, NULL, OPT_CHECKPOINT_DIR},
	{"preempt-signal", required_argument, NULL, OPT_PREEMPT_SIGNAL},
	{"grace", required_argument, NULL, OPT_GRACE},
	{"export", required_argument, NULL, OPT_EXPORT},
	{"chdir", required_argument, NULL, OPT_CHDIR},
	CLI_COMMON_OPTIONS,
};

/* ---------------------------------------------------------------- --export */

#define SUBMIT_LETTERS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define SUBMIT_DIGITS "0123456789"

/* A shell variable name: a letter or '_', then letters, digits and '_'. */
static bool submit_var_name_ok(const char *s, size_t n)
{
	if (n == 0 || !strchr(SUBMIT_LETTERS "_", s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!s[i] || !strchr(SUBMIT_LETTERS SUBMIT_DIGITS "_", s[i]))
			return false;
	return true;
}

struct submit_env {
	char **v;
	size_t n;
};

/* Sets KEY=VALUE (entry), replacing an earlier entry for the same KEY. */
static void submit_env_put(struct submit_env *env, const char *entry)
{
	size_t klen = strcspn(entry, "=");

	for (size_t i = 0; i < env->n; i++) {
		if (strncmp(env->v[i], entry, klen) == 0 && env->v[i][klen] == '=') {
			free(env->v[i]);
			env->v[i] = xstrdup(entry);
			return;
		}
	}
	env->v = xreallocarray(env->v, env->n + 1, sizeof(*env->v));
	env->v[env->n++] = xstrdup(entry);
}

static const char *submit_env_find(char *const *envp, const char *name, size_t n)
{
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp;
	return NULL;
}

static void submit_env_free(struct submit_env *env)
{
	for (size_t i = 0; i < env->n; i++)
		free(env->v[i]);
	free(env->v);
	env->v = NULL;
	env->n = 0;
}

int cmd_submit_export(const char *spec, char *const *envp, char ***ret_env, size_t *ret_n,
		      char *err, size_t errlen)
{
	struct submit_env env = {NULL, 0};
	bool all = false, none = false;
	char *copy = xstrdup(spec), *item, *save = NULL;
	int r = HPQ_EINVAL;

	if (spec[0] == '\0') {
		snprintf(err, errlen, "--export needs ALL, NONE or a list of variables");
		goto out;
	}
	if (spec[strlen(spec) - 1] == ',' || spec[0] == ',' || strstr(spec, ",,")) {
		snprintf(err, errlen, "--export has an empty entry in '%s'", spec);
		goto out;
	}
	/* First pass: ALL and NONE decide the base the variables apply to. */
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (strcmp(item, "ALL") == 0)
			all = true;
		else if (strcmp(item, "NONE") == 0)
			none = true;
	}
	if (all && none) {
		snprintf(err, errlen, "--export cannot be both ALL and NONE");
		goto out;
	}
	if (all)
		for (char *const *e = envp; e && *e; e++)
			if (strchr(*e, '=') && strchr(*e, '=') != *e)
				submit_env_put(&env, *e);
	free(copy);
	copy = xstrdup(spec);
	save = NULL;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		size_t klen = strcspn(item, "=");

		if (strcmp(item, "ALL") == 0 || strcmp(item, "NONE") == 0)
			continue;
		if (!submit_var_name_ok(item, klen)) {
			snprintf(err, errlen, "--export: '%.*s' is not a variable name", (int)klen,
				 item);
			goto out;
		}
		if (item[klen] == '=') {
			submit_env_put(&env, item);
		} else {
			/* A name alone exports its current value; an unset variable stays unset. */
			const char *cur = submit_env_find(envp, item, klen);
			if (cur)
				submit_env_put(&env, cur);
		}
	}
	*ret_env = env.v;
	*ret_n = env.n;
	env.v = NULL;
	env.n = 0;
	r = 0;
out:
	free(copy);
	submit_env_free(&env);
	return r;
}

/* ---------------------------------------------------------------- parsing */

/* base/path, or path when it is absolute already. */
static char *submit_join(const char *base, const char *path)
{
	char *s;

	if (path[0] == '/')
		return xstrdup(path);
	xasprintf(&s, "%s%s%s", base, base[strlen(base) - 1] == '/' ? "" : "/", path);
	return s;
}

/* A default task name from the command: its file name, with characters a
 * name may not hold replaced; NULL if nothing usable is left. */
static char *submit_default_name(const char *cmd)
{
	const char *base = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
	char *s = xstrndup(base, HPQ_NAME_MAX - 1);

	for (char *p = s; *p; p++)
		if (!strchr(SUBMIT_LETTERS SUBMIT_DIGITS "._-", *p))
			*p = '_';
	if (hpq_check_name(s) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

void cmd_submit_release(struct cmd_submit *s)
{
	struct submit_env env = {s->env, s->n_env};

	free(s->name);
	free(s->cwd);
	free(s->checkpoint_dir);
	submit_env_free(&env);
	memset(s, 0, sizeof(*s));
}

int cmd_submit_parse(struct cli *cli, const struct cmd_entry *e, int argc, char **argv,
		     char *const *envp, struct cmd_submit *ret)
{
	struct cmd_submit s;
	const char *name = NULL, *chdir_arg = NULL, *ckpt_arg = NULL, *export_arg = "ALL";
	uint64_t v;
	char err[256];
	int c, r = CLI_USAGE;

	memset(&s, 0, sizeof(s));
	hpq__task_spec__init(&s.spec);
	hpq__resources__init(&s.per_node);
	s.spec.nodes = 1;
	s.per_node.cpus = SUBMIT_DEFAULT_CPUS;
	s.per_node.mem = SUBMIT_DEFAULT_MEM_MIB;

	while ((c = cli_getopt(cli, e, argc, argv, "+:h", submit_options)) != -1) {
		switch (c) {
		case OPT_NAME:
			if (cli_parse_name(cli, "task", optarg) != 0)
				goto out;
			name = optarg;
			break;
		case OPT_TEAM:
			if (cli_parse_name(cli, "team", optarg) != 0)
				goto out;
			s.spec.team = optarg;
			break;
		case OPT_CLASS:
			if (cli_parse_name(cli, "class", optarg) != 0)
				goto out;
			s.spec.class_ = optarg;
			break;
		case OPT_POOL:
			if (cli_parse_name(cli, "pool", optarg) != 0)
				goto out;
			s.spec.pool = optarg;
			break;
		case OPT_NODES:
			if (cli_parse_uint(cli, "--nodes", optarg, 1, SUBMIT_MAX_NODES, &v) != 0)
				goto out;
			s.spec.nodes = (uint32_t)v;
			break;
		case OPT_GPUS:
			if (cli_parse_uint(cli, "--gpus", optarg, 0, SUBMIT_MAX_GPUS, &v) != 0)
				goto out;
			s.per_node.gpus = (uint32_t)v;
			break;
		case OPT_CPUS:
			if (cli_parse_uint(cli, "--cpus", optarg, 1, SUBMIT_MAX_CPUS, &v) != 0)
				goto out;
			s.per_node.cpus = (uint32_t)v;
			break;
		case OPT_MEM:
			if (cli_parse_size(cli, "--mem", optarg, SUBMIT_MAX_MEM_MIB, &v) != 0)
				goto out;
			if (v == 0) {
				cli_usage_error(cli, "--mem must be more than 0");
				goto out;
			}
			s.per_node.mem = v;
			break;
		case OPT_TIME:
			if (strcmp(optarg, "none") == 0 || strcmp(optarg, "unlimited") == 0)
				v = 0;
			else if (cli_parse_duration(cli, "--time", optarg, &v) != 0)
				goto out;
			s.spec.time_limit_s = v;
			break;
		case OPT_CHECKPOINT_DIR:
			if (optarg[0] == '\0') {
				cli_usage_error(cli, "--checkpoint-dir needs a directory");
				goto out;
			}
			ckpt_arg = optarg;
			break;
		case OPT_PREEMPT_SIGNAL: {
			int signo;

			if (hpq_parse_signal(optarg, &signo) < 0 || signo == 0) {
				cli_usage_error(cli, "--preempt-signal takes a signal name or "
						"number like TERM, USR1 or 10, not '%s'", optarg);
				goto out;
			}
			s.spec.preempt_signal = signo;
			break;
		}
		case OPT_GRACE:
			if (cli_parse_duration(cli, "--grace", optarg, &v) != 0)
				goto out;
			if (v == 0 || v > SUBMIT_MAX_GRACE_S) {
				cli_usage_error(cli, "--grace must be from 1s to 24h, not '%s'",
						optarg);
				goto out;
			}
			s.spec.grace_s = v;
			break;
		case OPT_EXPORT:
			export_arg = optarg;
			break;
		case OPT_CHDIR:
			if (optarg[0] == '\0') {
				cli_usage_error(cli, "--chdir needs a directory");
				goto out;
			}
			chdir_arg = optarg;
			break;
		case CLI_OPT_HELP:
			r = CLI_DONE;
			goto out;
		default:
			goto out;
		}
	}
	if (optind >= argc) {
		cli_usage_error(cli, "no command given; put it after the options, e.g. "
				"'hpq submit --gpus 1 -- ./train.sh'");
		goto out;
	}
	if (argv[optind][0] == '\0') {
		cli_usage_error(cli, "the command is an empty string");
		goto out;
	}
	s.spec.argv = argv + optind;
	s.spec.n_argv = (size_t)(argc - optind);

	if (cmd_submit_export(export_arg, envp, &s.env, &s.n_env, err, sizeof(err)) < 0) {
		cli_usage_error(cli, "%s", err);
		goto out;
	}
	if (!chdir_arg || chdir_arg[0] != '/') {
		char *here = getcwd(NULL, 0);

		if (!here) {
			r = cli_error(cli, "cannot tell the current directory: %s; "
				      "give one with --chdir DIR", strerror(errno));
			goto out;
		}
		s.cwd = chdir_arg ? submit_join(here, chdir_arg) : xstrdup(here);
		free(here);
	} else {
		s.cwd = xstrdup(chdir_arg);
	}
	if (ckpt_arg)
		s.checkpoint_dir = submit_join(s.cwd, ckpt_arg);
	s.name = name ? xstrdup(name) : submit_default_name(s.spec.argv[0]);

	s.spec.per_node = &s.per_node;
	s.spec.cwd = s.cwd;
	s.spec.env = s.env;
	s.spec.n_env = s.n_env;
	if (s.name)
		s.spec.name = s.name;
	if (s.checkpoint_dir)
		s.spec.checkpoint_dir = s.checkpoint_dir;
	*ret = s;
	/* The spec points into s; now it must point into *ret. */
	ret->spec.per_node = &ret->per_node;
	return 0;
out:
	cmd_submit_release(&s);
	return r;
}

/* ---------------------------------------------------------------- command */

extern char **environ;

static int submit_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	struct cmd_submit s;
	int r;

	r = cmd_submit_parse(cli, e, argc, argv, environ, &s);
	if (r != 0)
		return r == CLI_DONE ? CLI_OK : r;
	sub.spec = &s.spec;
	req.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	req.submit = &sub;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_SUBMIT_REPLY, "submit the task", &reply);
	if (r == 0) {
		cli_output(cli)->submitted(&cli->out, reply->submit_reply->id);
		hpq_msg_free(reply);
	}
	cmd_submit_release(&s);
	return r;
}

const struct cmd_entry cmd_submit_entry = {
	.name = "submit",
	.usage = "submit [--name N] [--team T] [--class C] [--pool P] [--nodes N] [--gpus N] "
		 "[--cpus N] [--mem SIZE] [--time DURATION] [--checkpoint-dir DIR] "
		 "[--preempt-signal SIG] [--grace DURATION] [--export=ALL|NONE|VAR[=VALUE][,...]] "
		 "[--chdir DIR] [--json] [--] COMMAND [ARGS...]",
	.summary = "queue a task and print its id",
	.help = "options:\n"
		"  --name N             task name (default: the command's file name)\n"
		"  --team T             team to charge (default: your only team, else 'default')\n"
		"  --class C            priority class (default: the team's default class)\n"
		"  --pool P             pool of nodes to run in (default: 'default')\n"
		"  --nodes N            gang size: N nodes that start together (default 1)\n"
		"  --gpus N             GPUs per node (default 0)\n"
		"  --cpus N             CPUs per node (default 1)\n"
		"  --mem SIZE           memory per node, e.g. 512M, 64G (default 1G)\n"
		"  --time DURATION      time limit, e.g. 90m, 2h, 1-00:00:00 (default none)\n"
		"  --checkpoint-dir DIR where the task writes checkpoints ($HPQ_CHECKPOINT_DIR)\n"
		"  --preempt-signal SIG signal sent on preemption (default TERM)\n"
		"  --grace DURATION     time between that signal and SIGKILL (default: cluster's)\n"
		"  --export=SPEC        environment to pass: ALL (default), NONE, or a list of\n"
		"                       VAR and VAR=VALUE, optionally with ALL\n"
		"  --chdir DIR          working directory of the task (default: the current one)\n"
		"  --json               print {\"id\": N} instead of the bare id\n",
	.exec = submit_exec,
};
