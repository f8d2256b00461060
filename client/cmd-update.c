/*
 * cmd-update.c: `hpq update ID KEY=VALUE...`, Slurm's `scontrol update`
 * for one pending task (time and class also while it runs). Each change
 * is also an option (--time 2h is time=2h). hpq checks the key names and
 * that each value parses, then sends the fields as typed: hpqd parses them
 * again, checks the caller's rights and the task's state, and applies all
 * of them or none.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "msg.h"
#include "select.h"
#include "xalloc.h"

/* The keys, in the order of the options below (OPT_TIME + index). */
static const char *const update_keys[] = {
	"time", "gpus", "cpus", "mem", "nodes", "class", "pool", "name", "dependency", NULL,
};

enum {
	OPT_TIME = CLI_OPT_FIRST_PRIVATE,
	OPT_GPUS,
	OPT_CPUS,
	OPT_MEM,
	OPT_NODES,
	OPT_CLASS,
	OPT_POOL,
	OPT_NAME,
	OPT_DEPENDENCY,
};

static const struct option update_options[] = {
	{"time", required_argument, NULL, OPT_TIME},
	{"gpus", required_argument, NULL, OPT_GPUS},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"mem", required_argument, NULL, OPT_MEM},
	{"nodes", required_argument, NULL, OPT_NODES},
	{"class", required_argument, NULL, OPT_CLASS},
	{"pool", required_argument, NULL, OPT_POOL},
	{"name", required_argument, NULL, OPT_NAME},
	{"dependency", required_argument, NULL, OPT_DEPENDENCY},
	CLI_COMMON_OPTIONS,
};

/* Checks that value is one the key takes. Returns 0 or CLI_USAGE. */
static int update_check(struct cli *cli, const char *key, const char *value)
{
	char opt[32];
	uint64_t v;

	snprintf(opt, sizeof(opt), "%s", key);
	if (!value[0])
		return cli_usage_error(cli, "%s needs a value", key);
	if (!strcmp(key, "time"))
		/* The duration parser of --time, as hpq submit uses it: when
		 * submit's --time takes Slurm's syntax (a bare number is
		 * minutes), this check must use the same parser. The value
		 * goes to hpqd as typed either way. */
		return cli_parse_duration(cli, opt, value, &v);
	if (!strcmp(key, "gpus") || !strcmp(key, "cpus"))
		return cli_parse_uint(cli, opt, value, !strcmp(key, "cpus"), UINT32_MAX - 1, &v);
	if (!strcmp(key, "nodes"))
		return cli_parse_uint(cli, opt, value, 1, UINT32_MAX - 1, &v);
	if (!strcmp(key, "mem"))
		return cli_parse_size(cli, opt, value, UINT64_MAX - 1, &v);
	if (!strcmp(key, "class") || !strcmp(key, "pool"))
		return cli_parse_name(cli, key, value);
	if (!strcmp(key, "name"))
		return cli_parse_name(cli, "task", value);
	/* dependency: hpqd parses the list; only its characters are checked here. */
	if (strlen(value) > 4096 ||
	    strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789:,?_[]-") != strlen(value))
		return cli_usage_error(cli, "dependency: '%.200s' is not a dependency list "
				       "(e.g. afterok:12:13,afterany:14, singleton)", value);
	return 0;
}

/* Adds key=value to the fields, once per key. Returns 0 or CLI_USAGE. */
static int update_add(struct cli *cli, char ***fields, size_t *n, const char *key,
		      const char *value)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i < *n; i++)
		if (!strncmp((*fields)[i], key, klen) && (*fields)[i][klen] == '=')
			return cli_usage_error(cli, "%s is given twice", key);
	if (update_check(cli, key, value) != 0)
		return CLI_USAGE;
	*fields = xreallocarray(*fields, *n + 1, sizeof(**fields));
	xasprintf(&(*fields)[(*n)++], "%s=%s", key, value);
	return 0;
}

static int update_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__UpdateRequest up = HPQ__UPDATE_REQUEST__INIT;
	char **fields = NULL, err[256];
	size_t n = 0;
	int c, r = CLI_USAGE;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", update_options)) != -1) {
		if (c == CLI_OPT_HELP) {
			r = CLI_OK;
			goto out;
		}
		if (c < OPT_TIME || c > OPT_DEPENDENCY)
			goto out;
		if (update_add(cli, &fields, &n, update_keys[c - OPT_TIME], optarg) != 0)
			goto out;
	}
	if (optind >= argc) {
		r = cli_usage_error(cli, "which task? give its id (12, or 12_5 in an array)");
		goto out;
	}
	if (select_check_id(argv[optind], false, err, sizeof(err)) != 0) {
		r = cli_usage_error(cli, "%s", err);
		goto out;
	}
	up.id = argv[optind];
	for (int i = optind + 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		char key[32];
		bool known = false;

		if (!eq || (size_t)(eq - argv[i]) >= sizeof(key)) {
			r = cli_usage_error(cli, "'%s' is not KEY=VALUE", argv[i]);
			goto out;
		}
		snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
		for (size_t k = 0; update_keys[k] && !known; k++)
			known = !strcmp(update_keys[k], key);
		if (!known) {
			r = cli_usage_error(cli, "unknown key '%s'; use time, gpus, cpus, mem, "
					    "nodes, class, pool, name or dependency", key);
			goto out;
		}
		if (update_add(cli, &fields, &n, key, eq + 1) != 0)
			goto out;
	}
	if (n == 0) {
		r = cli_usage_error(cli, "what should change? give KEY=VALUE or an option "
				    "such as --time 2h");
		goto out;
	}
	up.fields = fields;
	up.n_fields = n;
	req.body_case = HPQ__ENVELOPE__BODY_UPDATE;
	req.update = &up;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_OK, "update the task", &reply);
	if (r != 0)
		goto out;
	if (cli->json) {
		json_t *o = json_object(), *a = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, json_string(fields[i]));
		json_object_set_new(o, "id", json_string(up.id));
		json_object_set_new(o, "fields", a);
		json_dumpf(o, cli->out.out, JSON_INDENT(2));
		fputc('\n', cli->out.out);
		json_decref(o);
	} else {
		fprintf(cli->out.out, "updated task %s:", up.id);
		for (size_t i = 0; i < n; i++)
			fprintf(cli->out.out, " %s", fields[i]);
		fputc('\n', cli->out.out);
	}
out:
	if (reply)
		hpq_msg_free(reply);
	for (size_t i = 0; i < n; i++)
		free(fields[i]);
	free(fields);
	return r;
}

const struct cmd_entry cmd_update_entry = {
	.name = "update",
	.usage = "update ID [KEY=VALUE...] [--time DURATION] [--gpus N] [--cpus N] [--mem SIZE] "
		 "[--nodes N] [--class C] [--pool P] [--name N] [--dependency D] [--json]",
	.summary = "change a pending task (time and class also while it runs)",
	.help = "ID is a task id or ID_INDEX for one task of an array. Each change is\n"
		"KEY=VALUE or the option of the same name; keys: time, gpus, cpus, mem,\n"
		"nodes, class, pool, name, dependency. All changes apply, or none.\n"
		"A pending task takes any of them; a running one only time and class,\n"
		"within the rights of the one who asks.\n\n"
		"options:\n"
		"  --time DURATION  time limit (as hpq submit --time)\n"
		"  --gpus N         GPUs per node\n"
		"  --cpus N         CPUs per node\n"
		"  --mem SIZE       memory per node (512M, 64G)\n"
		"  --nodes N        number of nodes\n"
		"  --class C        priority class\n"
		"  --pool P         pool\n"
		"  --name N         task name\n"
		"  --dependency D   dependencies, as hpq submit --dependency\n"
		"  --json           print {id, fields}\n",
	.exec = update_exec,
};
