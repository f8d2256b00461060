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
 *
 * When the command is a batch script (directives.c), its #SBATCH and #HPQ
 * lines are read with the same option table. Every option, wherever it
 * came from, is first collected with its origin (FILE:LINE for a script's)
 * and then applied in order of precedence, #SBATCH, #HPQ, command line, so
 * the last to set a thing wins and every message names where it came
 * from. Slurm's per-task and total counts (--cpus-per-task, --gpus in
 * #SBATCH, --mem-per-cpu, --ntasks) are turned into hpq's per-node ones
 * only at the end (submit_resolve), when all of them are known.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batchspec.h"
#include "cmd-submit.h"
#include "error.h"
#include "hpq.h"
#include "msg.h"
#include "outpat.h"
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
	/* batch workflow */
	OPT_OUTPUT,
	OPT_ERROR,
	OPT_ARRAY,
	OPT_DEPENDENCY,
	OPT_KILL_ON_INVALID_DEP,
	OPT_HOLD,
	OPT_EXCLUSIVE,
	OPT_WRAP,
	OPT_TEST_ONLY,
	OPT_NTASKS,
	OPT_NTASKS_PER_NODE,
	OPT_CPUS_PER_TASK,
	OPT_GRES,
	OPT_GPUS_TOTAL,
	OPT_GPUS_PER_NODE,
	OPT_MEM_PER_CPU,
	OPT_PARSABLE,
	OPT_RECIPE,
	OPT_SET,
	OPT_RECIPE_PATH,
	OPT_PLAN,
	/* sbatch options hpq cannot honour: a warning or an error (submit_unsupported) */
	OPT_MAIL_TYPE,
	OPT_MAIL_USER,
	OPT_REQUEUE,
	OPT_NO_REQUEUE,
	OPT_OPEN_MODE,
	OPT_COMMENT,
	OPT_SIGNAL,
	OPT_CONSTRAINT,
	OPT_LICENSES,
	OPT_NODELIST,
	OPT_EXCLUDE,
};

/*
 * One table for the command line and for #HPQ and #SBATCH lines, so both
 * accept the same things. Slurm's short options are sbatch's; -h is help.
 * Only --gpus differs by source: in #SBATCH lines it is Slurm's total over
 * all nodes, elsewhere hpq's GPUs per node (-G is always the total).
 */
#define SUBMIT_SHORTOPTS "+:hJ:N:c:t:o:e:a:d:D:p:q:A:Hn:G:C:L:w:x:"

static const struct option submit_options[] = {
	{"name", required_argument, NULL, OPT_NAME},
	{"job-name", required_argument, NULL, OPT_NAME},
	{"team", required_argument, NULL, OPT_TEAM},
	{"account", required_argument, NULL, OPT_TEAM},
	{"class", required_argument, NULL, OPT_CLASS},
	{"qos", required_argument, NULL, OPT_CLASS},
	{"pool", required_argument, NULL, OPT_POOL},
	{"partition", required_argument, NULL, OPT_POOL},
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
	{"output", required_argument, NULL, OPT_OUTPUT},
	{"error", required_argument, NULL, OPT_ERROR},
	{"array", required_argument, NULL, OPT_ARRAY},
	{"dependency", required_argument, NULL, OPT_DEPENDENCY},
	{"kill-on-invalid-dep", required_argument, NULL, OPT_KILL_ON_INVALID_DEP},
	{"hold", no_argument, NULL, OPT_HOLD},
	{"plan", required_argument, NULL, OPT_PLAN},
	{"exclusive", optional_argument, NULL, OPT_EXCLUSIVE},
	{"wrap", required_argument, NULL, OPT_WRAP},
	{"test-only", no_argument, NULL, OPT_TEST_ONLY},
	{"ntasks", required_argument, NULL, OPT_NTASKS},
	{"ntasks-per-node", required_argument, NULL, OPT_NTASKS_PER_NODE},
	{"cpus-per-task", required_argument, NULL, OPT_CPUS_PER_TASK},
	{"gres", required_argument, NULL, OPT_GRES},
	{"gpus-per-node", required_argument, NULL, OPT_GPUS_PER_NODE},
	{"mem-per-cpu", required_argument, NULL, OPT_MEM_PER_CPU},
	{"parsable", no_argument, NULL, OPT_PARSABLE},
	{"recipe", required_argument, NULL, OPT_RECIPE},
	{"set", required_argument, NULL, OPT_SET},
	{"recipe-path", required_argument, NULL, OPT_RECIPE_PATH},
	{"mail-type", required_argument, NULL, OPT_MAIL_TYPE},
	{"mail-user", required_argument, NULL, OPT_MAIL_USER},
	{"requeue", no_argument, NULL, OPT_REQUEUE},
	{"no-requeue", no_argument, NULL, OPT_NO_REQUEUE},
	{"open-mode", required_argument, NULL, OPT_OPEN_MODE},
	{"comment", required_argument, NULL, OPT_COMMENT},
	{"signal", required_argument, NULL, OPT_SIGNAL},
	{"constraint", required_argument, NULL, OPT_CONSTRAINT},
	{"licenses", required_argument, NULL, OPT_LICENSES},
	{"nodelist", required_argument, NULL, OPT_NODELIST},
	{"exclude", required_argument, NULL, OPT_EXCLUDE},
	CLI_COMMON_OPTIONS,
};

/* Short options and their long equivalents. */
static int submit_short(int c)
{
	switch (c) {
	case 'J': return OPT_NAME;
	case 'N': return OPT_NODES;
	case 'c': return OPT_CPUS_PER_TASK;
	case 't': return OPT_TIME;
	case 'o': return OPT_OUTPUT;
	case 'e': return OPT_ERROR;
	case 'a': return OPT_ARRAY;
	case 'd': return OPT_DEPENDENCY;
	case 'D': return OPT_CHDIR;
	case 'p': return OPT_POOL;
	case 'q': return OPT_CLASS;
	case 'A': return OPT_TEAM;
	case 'H': return OPT_HOLD;
	case 'n': return OPT_NTASKS;
	case 'G': return OPT_GPUS_TOTAL;
	case 'C': return OPT_CONSTRAINT;
	case 'L': return OPT_LICENSES;
	case 'w': return OPT_NODELIST;
	case 'x': return OPT_EXCLUDE;
	default: return c;
	}
}

/*
 * sbatch options hpq does not honour. Ignoring one is a warning only when
 * nothing that matters changes (mail, a comment); one that would change
 * where or how the task runs is an error, never silently dropped.
 */
static const struct {
	int opt;
	const char *name;
	bool fatal;
	const char *why;
} submit_unsupported[] = {
	{OPT_MAIL_TYPE, "--mail-type", false, "hpq sends no mail; watch with 'hpq events'"},
	{OPT_MAIL_USER, "--mail-user", false, "hpq sends no mail; watch with 'hpq events'"},
	{OPT_REQUEUE, "--requeue", false, "hpq requeues preempted tasks itself"},
	{OPT_NO_REQUEUE, "--no-requeue", false, "hpq requeues preempted tasks itself"},
	{OPT_OPEN_MODE, "--open-mode", false, "hpq decides how output files are opened"},
	{OPT_COMMENT, "--comment", false, "hpq keeps no comments"},
	{OPT_SIGNAL, "--signal", true,
	 "hpq sends no signal before the time limit; remove it (--preempt-signal "
	 "names the signal sent on preemption)"},
	{OPT_CONSTRAINT, "--constraint", true,
	 "hpq does not place tasks by node features; choose the nodes with --pool"},
	{OPT_LICENSES, "--licenses", true, "hpq has no licenses to allocate"},
	{OPT_NODELIST, "--nodelist", true, "hpq chooses the nodes; choose a pool with --pool"},
	{OPT_EXCLUDE, "--exclude", true, "hpq chooses the nodes; choose a pool with --pool"},
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

/* One option as given, with where it was given: the command line (file
 * NULL) or a script's line. */
struct submit_opt {
	int c;
	const char *arg; /* borrowed from argv or the script's directives */
	const char *file;
	unsigned line;
	bool slurm;
};

struct submit_opts {
	struct submit_opt *v;
	size_t n;
};

static void submit_opts_add(struct submit_opts *o, int c, const char *arg, const char *file,
			    unsigned line, bool slurm)
{
	o->v = xreallocarray(o->v, o->n + 1, sizeof(*o->v));
	o->v[o->n++] = (struct submit_opt){c, arg, file, line, slurm};
}

/* What the options say before they are combined into a TaskSpec. Each
 * field is one slot: options that set the same thing (--cpus and
 * --cpus-per-task, --gpus and --gres) share it, and the last to set it
 * wins, which makes the command line win over #HPQ, and #HPQ over #SBATCH. */
struct submit_req {
	const char *name, *team, *class_, *pool, *chdir, *ckpt, *export, *output, *error;
	const char *array, *dependency, *wrap, *plan;
	uint64_t nodes, cpus, gpus, mem, time_s, grace_s, ntasks, ntasks_per_node;
	bool cpus_per_task;          /* cpus counts per task, not per node */
	bool gpus_total;             /* gpus counts over all nodes */
	bool mem_per_cpu;
	int preempt_signal;
	bool hold, exclusive, kill_on_invalid_dep, test_only;
	const struct submit_opt *ntasks_at, *gpus_at, *mem_at; /* for messages */
	char **warnings;
	size_t n_warnings;
	char *const *envp;
};

/* "FILE:LINE: " for an option from a script, "" for the command line. */
static const char *submit_where(const struct submit_opt *o, char *buf, size_t len)
{
	if (!o || !o->file)
		return "";
	if (o->line == 0) /* set by a recipe */
		snprintf(buf, len, "%s: ", o->file);
	else
		snprintf(buf, len, "%s:%u: ", o->file, o->line);
	return buf;
}

static void submit_warn(struct submit_req *q, const struct submit_opt *o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void submit_warn(struct submit_req *q, const struct submit_opt *o, const char *fmt, ...)
{
	char where[512], *msg, *w;
	va_list ap;

	va_start(ap, fmt);
	if (xvasprintf(&msg, fmt, ap) < 0)
		msg = xstrdup(fmt);
	va_end(ap);
	xasprintf(&w, "%s%s", submit_where(o, where, sizeof(where)), msg);
	free(msg);
	q->warnings = xreallocarray(q->warnings, q->n_warnings + 1, sizeof(*q->warnings));
	q->warnings[q->n_warnings++] = w;
}

static int submit_name_arg(const char *what, const char *opt, const char *arg, char *err,
			   size_t errlen)
{
	if (hpq_check_name(arg) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"%s: '%s' is not a valid %s name: use 1 to %d letters, digits, "
				"'.', '_' or '-', starting with a letter or digit", opt, arg, what,
				HPQ_NAME_MAX - 1);
	return 0;
}

static int submit_uint_arg(const char *opt, const char *arg, uint64_t min, uint64_t max,
			   uint64_t *ret, char *err, size_t errlen)
{
	if (hpq_parse_uint(arg, min, max, ret) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"%s takes a whole number from %llu to %llu, not '%s'", opt,
				(unsigned long long)min, (unsigned long long)max, arg);
	return 0;
}

static int submit_size_arg(const char *opt, const char *arg, uint64_t *ret, char *err,
			   size_t errlen)
{
	char buf[32];

	if (hpq_parse_size_mib(arg, ret) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s takes a size like 512M, 64G or 1T "
				"(a plain number is MiB), not '%s'", opt, arg);
	if (*ret > SUBMIT_MAX_MEM_MIB)
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s %s is more than the largest allowed, "
				"%s", opt, arg, hpq_format_size_mib(SUBMIT_MAX_MEM_MIB, buf,
								     sizeof(buf)));
	if (*ret == 0)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"%s must be more than 0 (Slurm's 0, a whole node's memory, is "
				"not supported: give a size, or --exclusive for whole nodes)",
				opt);
	return 0;
}

/* A GPU type as Slurm's gres.conf names one (a100, h100_80gb): n bytes of
 * letters, digits, '.', '_' or '-', starting with a letter. */
static bool submit_gpu_type_ok(const char *s, size_t n)
{
	if (n == 0 || !strchr(SUBMIT_LETTERS, s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr(SUBMIT_LETTERS SUBMIT_DIGITS "._-", s[i]))
			return false;
	return true;
}

/* GPUs as "[TYPE:]N"; a type is warned about, as hpq does not schedule
 * GPU types. */
static int submit_gpu_count(struct submit_req *q, const struct submit_opt *o, const char *opt,
			    const char *arg, uint64_t *ret, char *err, size_t errlen)
{
	const char *colon = strrchr(arg, ':'), *shown = o->arg ? o->arg : arg;

	if (colon && !submit_gpu_type_ok(arg, (size_t)(colon - arg)))
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s takes N or TYPE:N, not '%s'", opt,
				shown);
	if (submit_uint_arg(opt, colon ? colon + 1 : arg, 0, SUBMIT_MAX_GPUS, ret, err,
			    errlen) < 0)
		return HPQ_EINVAL;
	if (colon)
		submit_warn(q, o, "%s %s: GPU types are not scheduled; the task gets %llu GPUs "
			    "of any type its pool has", opt, shown, (unsigned long long)*ret);
	return 0;
}

/* --gres=gpu[:TYPE][:N][,...]: only GPUs are generic resources here. */
static int submit_gres(struct submit_req *q, const struct submit_opt *o, const char *arg,
		       char *err, size_t errlen)
{
	char *copy = xstrdup(arg), *item, *save = NULL;
	uint64_t total = 0;
	bool any = false;
	int r = 0;

	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		uint64_t v = 1;
		char *rest;

		if (strncmp(item, "gpu", 3) != 0 || (item[3] != '\0' && item[3] != ':')) {
			r = hpq_errf(err, errlen, HPQ_EINVAL,
				     "--gres '%s': hpq schedules GPUs only (gpu:N or gpu:TYPE:N)",
				     item);
			goto out;
		}
		rest = item[3] ? item + 4 : NULL;
		if (rest && submit_gpu_type_ok(rest, strlen(rest))) {
			/* gpu:TYPE: one GPU of that type, as in Slurm */
			submit_warn(q, o, "--gres %s: GPU types are not scheduled; the task gets "
				    "1 GPU of any type its pool has", item);
		} else if (rest && submit_gpu_count(q, o, "--gres", rest, &v, err, errlen) < 0) {
			r = hpq_errf(err, errlen, HPQ_EINVAL,
				     "--gres takes gpu, gpu:N or gpu:TYPE:N, not '%s'", item);
			goto out;
		}
		total += v;
		any = true;
	}
	if (!any || total > SUBMIT_MAX_GPUS) {
		r = hpq_errf(err, errlen, HPQ_EINVAL, "--gres takes gpu:N or gpu:TYPE:N "
			     "(at most %d GPUs), not '%s'", SUBMIT_MAX_GPUS, arg);
		goto out;
	}
	q->gpus = total;
	q->gpus_total = false;
	q->gpus_at = o;
out:
	free(copy);
	return r;
}

/* Applies one option to q. Returns 0, or HPQ_EINVAL with a message. */
static int submit_apply(struct submit_req *q, const struct submit_opt *o, char *err,
			size_t errlen)
{
	const char *arg = o->arg;
	char msg[512];
	uint64_t v;

	switch (o->c) {
	case OPT_NAME:
		if (submit_name_arg("task", "--name", arg, err, errlen) < 0)
			return HPQ_EINVAL;
		q->name = arg;
		break;
	case OPT_TEAM:
		if (submit_name_arg("team", "--team", arg, err, errlen) < 0)
			return HPQ_EINVAL;
		q->team = arg;
		break;
	case OPT_CLASS:
		if (submit_name_arg("class", "--class", arg, err, errlen) < 0)
			return HPQ_EINVAL;
		q->class_ = arg;
		break;
	case OPT_POOL:
		if (strchr(arg, ','))
			return hpq_errf(err, errlen, HPQ_EINVAL, "--pool '%s': a task runs in "
					"one pool; name one", arg);
		if (submit_name_arg("pool", "--pool", arg, err, errlen) < 0)
			return HPQ_EINVAL;
		q->pool = arg;
		break;
	case OPT_NODES: {
		/* N, or Slurm's MIN-MAX: hpq starts exactly MIN. */
		char *dash = strchr(arg, '-'), *lo = xstrndup(arg, dash ? (size_t)(dash - arg)
								     : strlen(arg));
		uint64_t hi;
		int r = submit_uint_arg("--nodes", lo, 1, SUBMIT_MAX_NODES, &v, err, errlen);

		free(lo);
		if (r < 0)
			return r;
		if (dash) {
			if (hpq_parse_uint(dash + 1, v, SUBMIT_MAX_NODES, &hi) < 0)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"--nodes takes N or MIN-MAX with MIN <= MAX, "
						"not '%s'", arg);
			if (hi != v)
				submit_warn(q, o, "--nodes %s: hpq starts exactly %llu nodes; "
					    "the maximum %llu is ignored", arg,
					    (unsigned long long)v, (unsigned long long)hi);
		}
		q->nodes = v;
		break;
	}
	case OPT_GPUS:
		if (o->slurm)
			goto gpus_total; /* sbatch's --gpus counts over all nodes */
		if (submit_uint_arg("--gpus", arg, 0, SUBMIT_MAX_GPUS, &q->gpus, err, errlen) < 0)
			return HPQ_EINVAL;
		q->gpus_total = false;
		q->gpus_at = o;
		break;
	case OPT_GPUS_TOTAL:
	gpus_total:
		if (submit_gpu_count(q, o, "--gpus", arg, &q->gpus, err, errlen) < 0)
			return HPQ_EINVAL;
		q->gpus_total = true;
		q->gpus_at = o;
		break;
	case OPT_GPUS_PER_NODE:
		if (submit_gpu_count(q, o, "--gpus-per-node", arg, &q->gpus, err, errlen) < 0)
			return HPQ_EINVAL;
		q->gpus_total = false;
		q->gpus_at = o;
		break;
	case OPT_GRES:
		return submit_gres(q, o, arg, err, errlen);
	case OPT_CPUS:
	case OPT_CPUS_PER_TASK:
		if (submit_uint_arg(o->c == OPT_CPUS ? "--cpus" : "--cpus-per-task", arg, 1,
				    SUBMIT_MAX_CPUS, &q->cpus, err, errlen) < 0)
			return HPQ_EINVAL;
		q->cpus_per_task = o->c == OPT_CPUS_PER_TASK;
		break;
	case OPT_MEM:
	case OPT_MEM_PER_CPU:
		if (submit_size_arg(o->c == OPT_MEM ? "--mem" : "--mem-per-cpu", arg, &q->mem, err,
				    errlen) < 0)
			return HPQ_EINVAL;
		q->mem_per_cpu = o->c == OPT_MEM_PER_CPU;
		q->mem_at = o;
		break;
	case OPT_TIME:
		if (hpq_parse_time_limit(arg, &q->time_s) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--time takes minutes (90), MM:SS, HH:MM:SS, D-HH, "
					"D-HH:MM:SS, a duration like 90s, 2h or 1h30m, or "
					"UNLIMITED, not '%s'", arg);
		break;
	case OPT_CHECKPOINT_DIR:
		if (arg[0] == '\0')
			return hpq_errf(err, errlen, HPQ_EINVAL, "--checkpoint-dir needs a "
					"directory");
		q->ckpt = arg;
		break;
	case OPT_PREEMPT_SIGNAL:
		if (hpq_parse_signal(arg, &q->preempt_signal) < 0 || q->preempt_signal == 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--preempt-signal takes a signal name or number like "
					"TERM, USR1 or 10, not '%s'", arg);
		break;
	case OPT_GRACE:
		if (hpq_parse_duration(arg, &v) < 0 || v == 0 || v > SUBMIT_MAX_GRACE_S)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--grace must be from 1s to 24h, not '%s'", arg);
		q->grace_s = v;
		break;
	case OPT_EXPORT: {
		char **env = NULL;
		size_t n = 0;

		/* Checked now, for a message that names its line; applied at the end. */
		if (cmd_submit_export(arg, q->envp, &env, &n, err, errlen) < 0)
			return HPQ_EINVAL;
		for (size_t i = 0; i < n; i++)
			free(env[i]);
		free(env);
		q->export = arg;
		break;
	}
	case OPT_CHDIR:
		if (arg[0] == '\0')
			return hpq_errf(err, errlen, HPQ_EINVAL, "--chdir needs a directory");
		q->chdir = arg;
		break;
	case OPT_OUTPUT:
	case OPT_ERROR:
		if (hpq_outpat_check(arg, msg, sizeof(msg)) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL, "%s: %s",
					o->c == OPT_OUTPUT ? "--output" : "--error", msg);
		*(o->c == OPT_OUTPUT ? &q->output : &q->error) = arg;
		break;
	case OPT_ARRAY:
		if (hpq_array_check(arg, NULL, err, errlen) < 0)
			return HPQ_EINVAL;
		q->array = arg;
		break;
	case OPT_DEPENDENCY:
		if (hpq_dependency_check(arg, err, errlen) < 0)
			return HPQ_EINVAL;
		q->dependency = arg;
		break;
	case OPT_KILL_ON_INVALID_DEP:
		if (strcmp(arg, "yes") != 0 && strcmp(arg, "no") != 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--kill-on-invalid-dep takes yes or no, not '%s'", arg);
		q->kill_on_invalid_dep = arg[0] == 'y';
		break;
	case OPT_HOLD:
		q->hold = true;
		break;
	case OPT_PLAN:
		if (submit_name_arg("plan", "--plan", arg, err, errlen) < 0)
			return HPQ_EINVAL;
		q->plan = arg;
		break;
	case OPT_EXCLUSIVE:
		if (arg)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--exclusive=%s is not supported: --exclusive alone "
					"gives the task whole nodes", arg);
		q->exclusive = true;
		break;
	case OPT_WRAP:
		if (o->file)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--wrap belongs on the command line, not in a script");
		if (arg[0] == '\0')
			return hpq_errf(err, errlen, HPQ_EINVAL, "--wrap needs a command");
		q->wrap = arg;
		break;
	case OPT_TEST_ONLY:
		q->test_only = true;
		break;
	case OPT_NTASKS:
		if (submit_uint_arg("--ntasks", arg, 1, SUBMIT_MAX_CPUS, &q->ntasks, err,
				    errlen) < 0)
			return HPQ_EINVAL;
		q->ntasks_at = o;
		break;
	case OPT_NTASKS_PER_NODE:
		if (submit_uint_arg("--ntasks-per-node", arg, 1, SUBMIT_MAX_CPUS,
				    &q->ntasks_per_node, err, errlen) < 0)
			return HPQ_EINVAL;
		break;
	case OPT_PARSABLE:
		break; /* hpq prints the bare id already */
	case OPT_RECIPE:
	case OPT_SET:
	case OPT_RECIPE_PATH:
		/* Read before the options are applied (submit_recipe). */
		if (o->file)
			return hpq_errf(err, errlen, HPQ_EINVAL, "--recipe, --set and "
					"--recipe-path work on the command line only");
		break;
	case CLI_OPT_HELP:
	case CLI_OPT_JSON:
	case CLI_OPT_SOCKET:
	case CLI_OPT_SERVER:
	case CLI_OPT_CA_FILE:
	case CLI_OPT_SERVER_NAME:
	case CLI_OPT_INSECURE:
	case CLI_OPT_MUNGE_SOCKET:
		return hpq_errf(err, errlen, HPQ_EINVAL, "this option belongs on the command "
				"line, not in a script");
	default:
		for (size_t i = 0; i < sizeof(submit_unsupported) / sizeof(submit_unsupported[0]);
		     i++) {
			if (submit_unsupported[i].opt != o->c)
				continue;
			if (submit_unsupported[i].fatal)
				return hpq_errf(err, errlen, HPQ_EINVAL, "%s is not supported: %s",
						submit_unsupported[i].name,
						submit_unsupported[i].why);
			submit_warn(q, o, "%s is ignored: %s", submit_unsupported[i].name,
				    submit_unsupported[i].why);
			return 0;
		}
		return hpq_errf(err, errlen, HPQ_EINVAL, "unexpected option");
	}
	return 0;
}

/* Turns the slots into per-node resources: Slurm's per-task and total
 * counts become hpq's per-node ones. */
static int submit_resolve(struct submit_req *q, struct cmd_submit *s, char *err, size_t errlen)
{
	char where[512];
	uint64_t tpn = q->ntasks_per_node ? q->ntasks_per_node : 1, cpus;

	s->spec.nodes = (uint32_t)q->nodes;
	if (q->ntasks && q->ntasks != 1) {
		/* hpq runs the same number of tasks on each node. */
		if (q->ntasks_per_node && q->ntasks != q->nodes * q->ntasks_per_node)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"%s--ntasks %llu is not --nodes %llu times "
					"--ntasks-per-node %llu; give --nodes and "
					"--ntasks-per-node only",
					submit_where(q->ntasks_at, where, sizeof(where)),
					(unsigned long long)q->ntasks,
					(unsigned long long)q->nodes,
					(unsigned long long)q->ntasks_per_node);
		if (!q->ntasks_per_node) {
			if (q->ntasks % q->nodes != 0)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"%s--ntasks %llu does not spread evenly over "
						"%llu nodes; hpq runs as many tasks on each node: "
						"give --nodes and --ntasks-per-node",
						submit_where(q->ntasks_at, where, sizeof(where)),
						(unsigned long long)q->ntasks,
						(unsigned long long)q->nodes);
			tpn = q->ntasks / q->nodes;
		}
	} else if (q->ntasks == 1 && (q->nodes > 1 || tpn > 1)) {
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"%s--ntasks 1 is fewer than --nodes %llu times --ntasks-per-node "
				"%llu", submit_where(q->ntasks_at, where, sizeof(where)),
				(unsigned long long)q->nodes, (unsigned long long)tpn);
	}
	if (q->ntasks_per_node || (q->ntasks && tpn > 1))
		s->spec.ntasks_per_node = (uint32_t)tpn;

	/* CPUs per node: Slurm's per-task count times the tasks on a node, and
	 * one CPU per task when only the task count is known. */
	if (q->cpus)
		cpus = q->cpus_per_task ? q->cpus * tpn : q->cpus;
	else
		cpus = tpn > 1 ? tpn : SUBMIT_DEFAULT_CPUS;
	if (cpus > SUBMIT_MAX_CPUS)
		return hpq_errf(err, errlen, HPQ_EINVAL, "%llu CPUs per node is more than %d",
				(unsigned long long)cpus, SUBMIT_MAX_CPUS);
	s->per_node.cpus = (uint32_t)cpus;

	if (q->gpus_total) {
		if (q->gpus % q->nodes != 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"%s--gpus %llu (the total) does not divide evenly over "
					"%llu nodes; use --gpus-per-node",
					submit_where(q->gpus_at, where, sizeof(where)),
					(unsigned long long)q->gpus, (unsigned long long)q->nodes);
		s->per_node.gpus = (uint32_t)(q->gpus / q->nodes);
	} else {
		s->per_node.gpus = (uint32_t)q->gpus;
	}

	s->per_node.mem = q->mem ? q->mem : SUBMIT_DEFAULT_MEM_MIB;
	if (q->mem_per_cpu) {
		if (q->mem > SUBMIT_MAX_MEM_MIB / cpus)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"%s--mem-per-cpu times %llu CPUs is more than the largest "
					"node memory allowed",
					submit_where(q->mem_at, where, sizeof(where)),
					(unsigned long long)cpus);
		s->per_node.mem = q->mem * cpus;
	}
	return 0;
}

void cmd_submit_release(struct cmd_submit *s)
{
	struct submit_env env = {s->env, s->n_env};

	free(s->name);
	free(s->cwd);
	free(s->submit_dir);
	free(s->checkpoint_dir);
	free(s->wrap_argv);
	for (size_t i = 0; i < s->n_warnings; i++)
		free(s->warnings[i]);
	free(s->warnings);
	batch_script_release(&s->script);
	submit_env_free(&env);
	recipe_task_release(&s->recipe);
	free(s->recipe_script);
	free(s->recipe_argv);
	for (size_t i = 0; i < s->n_recipe_opts; i++)
		free(s->recipe_opts[i]);
	free(s->recipe_opts);
	memset(s, 0, sizeof(*s));
}

/* Reads one directive's words with the command line's option table. */
static int submit_read_directive(struct cli *cli, const char *path, const struct directive *d,
				 struct submit_opts *opts)
{
	int c, index;

	optind = 0; /* a new argument vector for getopt */
	opterr = 0;
	for (;;) {
		index = -1;
		c = getopt_long(d->argc, d->argv, SUBMIT_SHORTOPTS, submit_options, &index);
		if (c == -1)
			break;
		if (c == ':')
			return cli_usage_error(cli, "%s:%u: option '%s' needs a value", path,
					       d->line, d->argv[optind - 1]);
		if (c == '?') {
			if (optopt && optopt < CLI_OPT_HELP && optopt != '?')
				return cli_usage_error(cli, "%s:%u: unknown option '-%c'", path,
						       d->line, optopt);
			return cli_usage_error(cli, "%s:%u: unknown option '%s'", path, d->line,
					       d->argv[optind - 1]);
		}
		if (c == 'h')
			c = CLI_OPT_HELP;
		submit_opts_add(opts, submit_short(c), optarg, path, d->line, d->slurm);
	}
	if (optind < d->argc)
		return cli_usage_error(cli, "%s:%u: unexpected '%s'; a directive holds only "
				       "options", path, d->line, d->argv[optind]);
	return 0;
}

/* An option value the recipe sets, kept in s for the option list. */
static void submit_recipe_opt(struct cmd_submit *s, struct submit_opts *all, int c,
			      char *value)
{
	s->recipe_opts = xreallocarray(s->recipe_opts, s->n_recipe_opts + 1,
				       sizeof(*s->recipe_opts));
	s->recipe_opts[s->n_recipe_opts++] = value;
	submit_opts_add(all, c, value, s->recipe.path, 0, false);
}

/* The submitting user's name, for a checkpoint directory's %u. */
static char *submit_user_name(void)
{
	struct passwd *pw = getpwuid(getuid());
	char *s;

	if (pw && pw->pw_name)
		return xstrdup(pw->pw_name);
	xasprintf(&s, "%lu", (unsigned long)getuid());
	return s;
}

/*
 * --recipe NAME: finds it (--recipe-path, $HPQ_RECIPE_PATH, the user's,
 * the site's and the system's directories), resolves it with the --set
 * values and adds the options it sets to all, ahead of the command line's,
 * which therefore win. The task runs the recipe's wrapper (recipe.h) as
 * its batch script with the recipe's command as its arguments.
 */
static int submit_recipe(struct cli *cli, const struct submit_opts *line, const char *name,
			 struct cmd_submit *s, struct submit_opts *all)
{
	char **dirs = NULL, **sets = NULL, **path, *user, err[2048], buf[64];
	const char *home = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
	char *config_home = NULL, *self;
	size_t n_dirs = 0, n_sets = 0;
	struct recipe r;
	int rc;

	for (size_t i = 0; i < line->n; i++) {
		if (line->v[i].c == OPT_RECIPE_PATH) {
			dirs = xreallocarray(dirs, n_dirs + 1, sizeof(*dirs));
			dirs[n_dirs++] = (char *)line->v[i].arg;
		} else if (line->v[i].c == OPT_SET) {
			sets = xreallocarray(sets, n_sets + 1, sizeof(*sets));
			sets[n_sets++] = (char *)line->v[i].arg;
		}
	}
	if (home && home[0] == '/')
		config_home = xstrdup(home);
	else if (h && h[0] == '/')
		xasprintf(&config_home, "%s/.config", h);
	path = recipe_search_path(dirs, n_dirs, getenv("HPQ_RECIPE_PATH"), config_home);
	free(config_home);
	free(dirs);
	rc = recipe_load(path, name, &r, err, sizeof(err));
	recipe_strv_free(path);
	if (rc < 0) {
		free(sets);
		return rc == HPQ_ENOTFOUND || rc == HPQ_EINVAL ? cli_usage_error(cli, "%s", err)
							       : cli_error(cli, "%s", err);
	}
	rc = recipe_resolve(&r, sets, n_sets, &s->recipe, err, sizeof(err));
	recipe_release(&r);
	free(sets);
	if (rc < 0)
		return cli_usage_error(cli, "%s", err);
	s->has_recipe = true;

	if (s->recipe.nodes) {
		xasprintf(&self, "%u", s->recipe.nodes);
		submit_recipe_opt(s, all, OPT_NODES, self);
	}
	if (s->recipe.gpus) {
		xasprintf(&self, "%u", s->recipe.gpus);
		submit_recipe_opt(s, all, OPT_GPUS, self);
	}
	if (s->recipe.cpus) {
		xasprintf(&self, "%u", s->recipe.cpus);
		submit_recipe_opt(s, all, OPT_CPUS, self);
	}
	if (s->recipe.mem_mib) {
		xasprintf(&self, "%lluM", (unsigned long long)s->recipe.mem_mib);
		submit_recipe_opt(s, all, OPT_MEM, self);
	}
	if (s->recipe.has_time) {
		if (s->recipe.time_s)
			snprintf(buf, sizeof(buf), "%llus", (unsigned long long)s->recipe.time_s);
		else
			snprintf(buf, sizeof(buf), "UNLIMITED");
		submit_recipe_opt(s, all, OPT_TIME, xstrdup(buf));
	}
	if (s->recipe.class_)
		submit_recipe_opt(s, all, OPT_CLASS, xstrdup(s->recipe.class_));
	submit_recipe_opt(s, all, OPT_NAME, xstrdup(s->recipe.name));

	/* The watcher is this program, wherever the task runs it from. */
	self = realpath("/proc/self/exe", NULL);
	user = submit_user_name();
	s->recipe_script = recipe_script(&s->recipe, user, self ? self : "hpq");
	free(user);
	free(self);
	s->recipe_argv = xcalloc(s->recipe.n_command + 2, sizeof(*s->recipe_argv));
	s->recipe_argv[0] = s->recipe.path;
	for (size_t i = 0; i < s->recipe.n_command; i++)
		s->recipe_argv[i + 1] = s->recipe.command[i];
	return 0;
}

int cmd_submit_parse(struct cli *cli, const struct cmd_entry *e, int argc, char **argv,
		     char *const *envp, struct cmd_submit *ret)
{
	const char *recipe = NULL;
	struct cmd_submit s;
	struct submit_opts line = {NULL, 0}, all = {NULL, 0};
	struct submit_req q;
	char err[1024], where[512];
	char *here = NULL;
	int c, r = CLI_USAGE, loaded, first;

	memset(&s, 0, sizeof(s));
	memset(&q, 0, sizeof(q));
	hpq__task_spec__init(&s.spec);
	hpq__resources__init(&s.per_node);
	q.nodes = 1;
	q.export = "ALL";
	q.envp = envp;

	/* The command line first, to find the command; it is applied last. */
	while ((c = cli_getopt(cli, e, argc, argv, SUBMIT_SHORTOPTS, submit_options)) != -1) {
		if (c == CLI_OPT_HELP) {
			r = CLI_DONE;
			goto out;
		}
		if (c == CLI_OPT_BAD)
			goto out;
		submit_opts_add(&line, submit_short(c), optarg, NULL, 0, false);
	}
	first = optind; /* reading directives moves optind */
	for (size_t i = 0; i < line.n; i++) {
		if (line.v[i].c == OPT_WRAP)
			q.wrap = line.v[i].arg;
		if (line.v[i].c == OPT_RECIPE)
			recipe = line.v[i].arg;
	}
	for (size_t i = 0; !recipe && i < line.n; i++) {
		if (line.v[i].c == OPT_SET || line.v[i].c == OPT_RECIPE_PATH) {
			cli_usage_error(cli, "--set and --recipe-path go with --recipe NAME");
			goto out;
		}
	}
	if (recipe) {
		if (q.wrap || first < argc) {
			cli_usage_error(cli, "--recipe is the command; unexpected '%s'",
					q.wrap ? "--wrap" : argv[first]);
			goto out;
		}
		if (submit_recipe(cli, &line, recipe, &s, &all) != 0)
			goto out;
	}
	if (q.wrap && first < argc) {
		cli_usage_error(cli, "--wrap is the command; unexpected '%s'", argv[first]);
		goto out;
	}
	if (!recipe && !q.wrap && first >= argc) {
		cli_usage_error(cli, "no command given; put it after the options, e.g. "
				"'hpq submit --gpus 1 -- ./train.sh', or use --wrap 'CMD'");
		goto out;
	}
	if (!recipe && !q.wrap && argv[first][0] == '\0') {
		cli_usage_error(cli, "the command is an empty string");
		goto out;
	}

	/* A batch script: its directives come before the command line, the
	 * #SBATCH ones before the #HPQ ones, so that later ones win. */
	if (!recipe && !q.wrap) {
		loaded = batch_script_load(argv[first], &s.script, err, sizeof(err));
		if (loaded < 0) {
			r = loaded == HPQ_EINVAL ? cli_usage_error(cli, "%s", err)
						 : cli_error(cli, "%s", err);
			goto out;
		}
		for (int slurm = 1; loaded && slurm >= 0; slurm--)
			for (size_t i = 0; i < s.script.n; i++)
				if (s.script.d[i].slurm == (slurm == 1) &&
				    submit_read_directive(cli, argv[first], &s.script.d[i],
							  &all) != 0)
					goto out;
	}
	for (size_t i = 0; i < line.n; i++)
		submit_opts_add(&all, line.v[i].c, line.v[i].arg, NULL, 0, false);
	for (size_t i = 0; i < all.n; i++) {
		if (submit_apply(&q, &all.v[i], err, sizeof(err)) < 0) {
			cli_usage_error(cli, "%s%s", submit_where(&all.v[i], where, sizeof(where)),
					err);
			goto out;
		}
	}
	if (submit_resolve(&q, &s, err, sizeof(err)) < 0) {
		cli_usage_error(cli, "%s", err);
		goto out;
	}

	if (recipe) {
		s.spec.argv = s.recipe_argv;
		s.spec.n_argv = s.recipe.n_command + 1;
		s.spec.script.data = (uint8_t *)s.recipe_script;
		s.spec.script.len = strlen(s.recipe_script);
		s.spec.recipe = s.recipe.name;
		s.spec.recipe_version = s.recipe.version;
		s.spec.recipe_params = s.recipe.params;
		s.spec.n_recipe_params = s.recipe.n_params;
	} else if (q.wrap) {
		s.wrap_argv = xcalloc(4, sizeof(*s.wrap_argv));
		s.wrap_argv[0] = "sh";
		s.wrap_argv[1] = "-c";
		s.wrap_argv[2] = (char *)q.wrap;
		s.spec.argv = s.wrap_argv;
		s.spec.n_argv = 3;
	} else {
		s.spec.argv = argv + first;
		s.spec.n_argv = (size_t)(argc - first);
	}
	if (s.script.data) {
		s.spec.script.data = (uint8_t *)s.script.data;
		s.spec.script.len = s.script.len;
	}

	if (cmd_submit_export(q.export, envp, &s.env, &s.n_env, err, sizeof(err)) < 0) {
		cli_usage_error(cli, "%s", err);
		goto out;
	}
	here = getcwd(NULL, 0);
	if (!here && (!q.chdir || q.chdir[0] != '/')) {
		r = cli_error(cli, "cannot tell the current directory: %s; "
			      "give one with --chdir DIR", strerror(errno));
		goto out;
	}
	s.cwd = q.chdir ? (here ? submit_join(here, q.chdir) : xstrdup(q.chdir)) : xstrdup(here);
	s.submit_dir = here ? xstrdup(here) : NULL;
	if (q.ckpt)
		s.checkpoint_dir = submit_join(s.cwd, q.ckpt);
	s.name = q.name ? xstrdup(q.name) : q.wrap ? xstrdup("wrap")
						   : submit_default_name(s.spec.argv[0]);

	s.spec.per_node = &s.per_node;
	s.spec.cwd = s.cwd;
	if (s.submit_dir)
		s.spec.submit_dir = s.submit_dir;
	s.spec.env = s.env;
	s.spec.n_env = s.n_env;
	if (s.name)
		s.spec.name = s.name;
	if (s.checkpoint_dir)
		s.spec.checkpoint_dir = s.checkpoint_dir;
	if (q.team)
		s.spec.team = (char *)q.team;
	if (q.class_)
		s.spec.class_ = (char *)q.class_;
	if (q.pool)
		s.spec.pool = (char *)q.pool;
	if (q.plan)
		s.spec.plan = (char *)q.plan;
	if (q.output)
		s.spec.output = (char *)q.output;
	if (q.error)
		s.spec.error = (char *)q.error;
	if (q.array)
		s.spec.array = (char *)q.array;
	if (q.dependency)
		s.spec.dependency = (char *)q.dependency;
	s.spec.time_limit_s = q.time_s;
	s.spec.preempt_signal = q.preempt_signal;
	s.spec.grace_s = q.grace_s;
	s.spec.kill_on_invalid_dep = q.kill_on_invalid_dep;
	s.spec.hold = q.hold;
	s.spec.exclusive = q.exclusive;
	s.test_only = q.test_only;
	s.warnings = q.warnings;
	s.n_warnings = q.n_warnings;
	q.warnings = NULL;
	q.n_warnings = 0;
	*ret = s;
	/* The spec points into s; now it must point into *ret. */
	ret->spec.per_node = &ret->per_node;
	r = 0;
	goto done;
out:
	cmd_submit_release(&s);
done:
	for (size_t i = 0; i < q.n_warnings; i++)
		free(q.warnings[i]);
	free(q.warnings);
	free(line.v);
	free(all.v);
	free(here);
	return r;
}

/* ---------------------------------------------------------------- command */

extern char **environ;

/* --test-only: the request as it would be sent, for people and scripts. */
void cmd_submit_print(struct cli *cli, const struct cmd_submit *s)
{
	const Hpq__TaskSpec *t = &s->spec;
	FILE *f = cli->out.out;
	char buf[32];

	if (cli->json) {
		json_t *o = json_object(), *a = json_array(), *env = json_array();
		char *text;

		for (size_t i = 0; i < t->n_argv; i++)
			json_array_append_new(a, output_json_text(t->argv[i], strlen(t->argv[i])));
		for (size_t i = 0; i < t->n_env; i++)
			json_array_append_new(env, output_json_text(t->env[i], strlen(t->env[i])));
		json_object_set_new(o, "name", output_json_text(t->name, strlen(t->name)));
		json_object_set_new(o, "argv", a);
		json_object_set_new(o, "script_bytes", json_integer((json_int_t)t->script.len));
		json_object_set_new(o, "team", json_string(t->team));
		json_object_set_new(o, "class", json_string(t->class_));
		json_object_set_new(o, "pool", json_string(t->pool));
		json_object_set_new(o, "plan", json_string(t->plan));
		json_object_set_new(o, "nodes", json_integer(t->nodes));
		json_object_set_new(o, "gpus", json_integer(t->per_node->gpus));
		json_object_set_new(o, "cpus", json_integer(t->per_node->cpus));
		json_object_set_new(o, "mem", json_integer((json_int_t)t->per_node->mem));
		json_object_set_new(o, "time_limit_s", json_integer((json_int_t)t->time_limit_s));
		json_object_set_new(o, "cwd", output_json_text(t->cwd, strlen(t->cwd)));
		json_object_set_new(o, "output", output_json_text(t->output, strlen(t->output)));
		json_object_set_new(o, "error", output_json_text(t->error, strlen(t->error)));
		json_object_set_new(o, "array", json_string(t->array));
		json_object_set_new(o, "dependency", json_string(t->dependency));
		json_object_set_new(o, "kill_on_invalid_dep", json_boolean(t->kill_on_invalid_dep));
		json_object_set_new(o, "hold", json_boolean(t->hold));
		json_object_set_new(o, "exclusive", json_boolean(t->exclusive));
		json_object_set_new(o, "ntasks_per_node", json_integer(t->ntasks_per_node));
		json_object_set_new(o, "env", env);
		if (s->has_recipe) {
			json_t *rp = json_object(), *params = json_array(), *cmd = json_array();

			for (size_t i = 0; i < t->n_recipe_params; i++)
				json_array_append_new(params, output_json_text(
					t->recipe_params[i], strlen(t->recipe_params[i])));
			for (size_t i = 0; i < s->recipe.n_command; i++)
				json_array_append_new(cmd, output_json_text(
					s->recipe.command[i], strlen(s->recipe.command[i])));
			json_object_set_new(rp, "name", output_json_text(t->recipe,
									 strlen(t->recipe)));
			json_object_set_new(rp, "version", output_json_text(
				t->recipe_version, strlen(t->recipe_version)));
			json_object_set_new(rp, "file", output_json_text(s->recipe.path,
									 strlen(s->recipe.path)));
			json_object_set_new(rp, "params", params);
			json_object_set_new(rp, "command", cmd);
			json_object_set_new(rp, "launcher", json_string(recipe_launcher_name(
				s->recipe.launcher)));
			json_object_set_new(rp, "checkpoint_dir", s->recipe.ckpt_dir ?
					    output_json_text(s->recipe.ckpt_dir,
							     strlen(s->recipe.ckpt_dir)) : json_null());
			json_object_set_new(rp, "script", output_json_text(s->recipe_script,
									   strlen(s->recipe_script)));
			json_object_set_new(o, "recipe", rp);
		}
		text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fprintf(f, "%s\n", text ? text : "{}");
		free(text);
		json_decref(o);
		return;
	}
	fprintf(f, "name:       %s\n", t->name[0] ? t->name : "-");
	if (s->has_recipe) {
		fprintf(f, "recipe:     %s %s (%s)\n", t->recipe, t->recipe_version,
			s->recipe.path);
		for (size_t i = 0; i < t->n_recipe_params; i++)
			fprintf(f, "%s%s\n", i ? "            " : "parameters: ",
				t->recipe_params[i]);
		fprintf(f, "launcher:   %s\n", recipe_launcher_name(s->recipe.launcher));
		if (s->recipe.ckpt_dir)
			fprintf(f, "checkpoints: %s (%%u user, %%j task id)\n", s->recipe.ckpt_dir);
	}
	fprintf(f, "command:   ");
	for (size_t i = s->has_recipe ? 1 : 0; i < t->n_argv; i++)
		fprintf(f, " %s", t->argv[i]);
	fputc('\n', f);
	if (t->script.len && s->has_recipe)
		fprintf(f, "script:     the recipe's wrapper, %zu bytes (hpq recipe show "
			"prints it)\n", t->script.len);
	else if (t->script.len)
		fprintf(f, "script:     %zu bytes, copied at submit\n", t->script.len);
	fprintf(f, "team:       %s\n", t->team[0] ? t->team : "(default)");
	fprintf(f, "class:      %s\n", t->class_[0] ? t->class_ : "(default)");
	fprintf(f, "pool:       %s\n", t->pool[0] ? t->pool : "(default)");
	fprintf(f, "nodes:      %u%s\n", t->nodes, t->exclusive ? " (whole nodes)" : "");
	fprintf(f, "per node:   %u GPUs, %u CPUs, %s memory\n", t->per_node->gpus,
		t->per_node->cpus, hpq_format_size_mib(t->per_node->mem, buf, sizeof(buf)));
	if (t->ntasks_per_node)
		fprintf(f, "tasks/node: %u\n", t->ntasks_per_node);
	fprintf(f, "time limit: %s\n", t->time_limit_s ? hpq_format_duration(t->time_limit_s, buf,
									     sizeof(buf))
						       : "none");
	fprintf(f, "directory:  %s\n", t->cwd);
	if (t->output[0])
		fprintf(f, "output:     %s\n", t->output);
	if (t->error[0])
		fprintf(f, "error:      %s\n", t->error);
	if (t->array[0])
		fprintf(f, "array:      %s\n", t->array);
	if (t->dependency[0])
		fprintf(f, "dependency: %s%s\n", t->dependency,
			t->kill_on_invalid_dep ? " (cancelled if it can never be met)" : "");
	if (t->hold)
		fprintf(f, "held:       yes (hpq release starts it)\n");
	fprintf(f, "env:        %zu variables\n", t->n_env);
}

static int submit_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	struct cmd_submit s;
	int r;

	r = cmd_submit_parse(cli, e, argc, argv, environ, &s);
	if (r != 0)
		return r == CLI_DONE ? CLI_OK : r;
	for (size_t i = 0; i < s.n_warnings; i++)
		fprintf(stderr, "hpq submit: warning: %s\n", s.warnings[i]);
	if (s.test_only) {
		cmd_submit_print(cli, &s);
		cmd_submit_release(&s);
		return CLI_OK;
	}
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
		 "[--cpus N] [--mem SIZE] [--time TIME] [--checkpoint-dir DIR] "
		 "[--preempt-signal SIG] [--grace DURATION] [--export=ALL|NONE|VAR[=VALUE][,...]] "
		 "[--chdir DIR] [--output PATTERN] [--error PATTERN] [--array SPEC] "
		 "[--dependency SPEC] [--kill-on-invalid-dep yes|no] [--hold] [--plan NAME] [--exclusive] "
		 "[--test-only] [--json] [--recipe NAME [--set K=V]... [--recipe-path DIR]... | "
		 "--wrap CMD | [--] COMMAND|SCRIPT [ARGS...]]",
	.summary = "queue a task or a batch script and print its id",
	.help = "options (a SCRIPT's #HPQ and #SBATCH lines take the same ones; the command\n"
		"line wins over #HPQ, #HPQ over #SBATCH):\n"
		"  -J, --name N         task name (default: the command's file name)\n"
		"  -A, --team T         team to charge (default: your only team, else 'default')\n"
		"  -q, --class C        priority class (default: the team's default class)\n"
		"  -p, --pool P         pool of nodes to run in (default: 'default')\n"
		"  -N, --nodes N        gang size: N nodes that start together (default 1)\n"
		"  --gpus N             GPUs per node (default 0); in #SBATCH lines, the total\n"
		"  --cpus N             CPUs per node (default 1)\n"
		"  --mem SIZE           memory per node, e.g. 512M, 64G (default 1G)\n"
		"  -t, --time TIME      time limit: minutes (90), MM:SS, HH:MM:SS, D-HH:MM:SS,\n"
		"                       or 90s, 2h, 1h30m; UNLIMITED for none (the default)\n"
		"  --checkpoint-dir DIR where the task writes checkpoints ($HPQ_CHECKPOINT_DIR)\n"
		"  --preempt-signal SIG signal sent on preemption (default TERM)\n"
		"  --grace DURATION     time between that signal and SIGKILL (default: cluster's)\n"
		"  --export=SPEC        environment to pass: ALL (default), NONE, or a list of\n"
		"                       VAR and VAR=VALUE, optionally with ALL\n"
		"  -D, --chdir DIR      working directory of the task (default: the current one)\n"
		"  -o, --output PATTERN stdout to this file: %j id, %A array id, %a index,\n"
		"                       %x name, %u user, %N node, %t node rank, %% a '%'\n"
		"  -e, --error PATTERN  stderr to this file (default: with the output)\n"
		"  -a, --array SPEC     an array: 0-99, 1,3,5-9:2, 0-999%50 (50 at a time)\n"
		"  -d, --dependency SPEC  afterok:ID[:ID...], afterany, afternotok, after,\n"
		"                       singleton; ',' for all of, '?' for any of\n"
		"  --kill-on-invalid-dep yes|no  cancel it if the dependency can never be met\n"
		"  -H, --hold           submit it held; 'hpq release' starts it\n"
		"  --plan NAME          run in training plan NAME (hpq plan list): only inside\n"
		"                       its segments; team and pool default to the plan's\n"
		"  --exclusive          whole nodes\n"
		"  --wrap CMD           run 'sh -c CMD' instead of a command\n"
		"  --recipe NAME        run recipe NAME (hpq recipe list); the options given\n"
		"                       here win over what the recipe sets\n"
		"  --set K=V            a recipe parameter's value (repeatable)\n"
		"  --recipe-path DIR    look for recipes in DIR first (repeatable)\n"
		"  --test-only          check everything and print the request; submit nothing\n"
		"  --json               print {\"id\": N} instead of the bare id\n"
		"Slurm's -c/--cpus-per-task, --gpus-per-node, --gres=gpu:N, -G, --mem-per-cpu,\n"
		"-n/--ntasks and --ntasks-per-node are read too: see hpq(1), COMING FROM SLURM.\n",
	.exec = submit_exec,
};
