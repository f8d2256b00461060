/*
 * cmd-class.c: `hpq class add|set|list|rm`, the priority classes: a name,
 * a weight (higher runs first and may preempt lower) and whether tasks of
 * the class may be preempted at all. A new cluster has inference (15, not
 * preemptible), training (10), fine-tuning (5) and data-processing (1).
 */
#include <string.h>

#include "cli.h"
#include "msg.h"
#include "parse.h"

#define CLASS_MAX_WEIGHT 100

enum {
	OPT_WEIGHT = CLI_OPT_FIRST_PRIVATE,
	OPT_PREEMPTIBLE,
	OPT_MAX_TIME,
};

static const struct option class_set_options[] = {
	{"weight", required_argument, NULL, OPT_WEIGHT},
	{"preemptible", required_argument, NULL, OPT_PREEMPTIBLE},
	{"max-time", required_argument, NULL, OPT_MAX_TIME},
	CLI_COMMON_OPTIONS,
};

static const struct option class_plain_options[] = {
	CLI_COMMON_OPTIONS,
};

/* One NAME operand after the options. Returns 0 with *ret_name set, else
 * CLI_USAGE; every failure returns CLI_USAGE itself so that the compiler
 * (and the reader) can see *ret_name is set whenever 0 is returned. */
static int class_name_arg(struct cli *cli, int argc, char **argv, const char **ret_name)
{
	if (optind >= argc) {
		cli_usage_error(cli, "which class? give its name");
		return CLI_USAGE;
	}
	if (optind + 1 < argc) {
		cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
		return CLI_USAGE;
	}
	if (cli_parse_name(cli, "class", argv[optind]) != 0)
		return CLI_USAGE;
	*ret_name = argv[optind];
	return 0;
}

static int class_set_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__ClassSetRequest set = HPQ__CLASS_SET_REQUEST__INIT;
	Hpq__PriorityClass pc = HPQ__PRIORITY_CLASS__INIT;
	char *fields[3];
	bool create = strcmp(e->name, "add") == 0, weight = false, preemptible = false;
	bool max_time = false;
	const char *name;
	uint64_t v;
	int c, r;

	pc.preemptible = true; /* the default of a new class */
	while ((c = cli_getopt(cli, e, argc, argv, ":h", class_set_options)) != -1) {
		switch (c) {
		case OPT_WEIGHT:
			if (cli_parse_uint(cli, "--weight", optarg, 0, CLASS_MAX_WEIGHT, &v) != 0)
				return CLI_USAGE;
			pc.weight = (uint32_t)v;
			weight = true;
			break;
		case OPT_PREEMPTIBLE:
			if (strcmp(optarg, "yes") == 0)
				pc.preemptible = true;
			else if (strcmp(optarg, "no") == 0)
				pc.preemptible = false;
			else
				return cli_usage_error(cli, "--preemptible takes yes or no, "
						       "not '%s'", optarg);
			preemptible = true;
			break;
		case OPT_MAX_TIME:
			if (!strcmp(optarg, "none") || !strcmp(optarg, "0")) {
				pc.max_time_s = 0;
			} else if (hpq_parse_time_limit(optarg, &v) < 0 || !v) {
				return cli_usage_error(cli, "--max-time takes a time limit (90, "
						       "1-00:00:00, 12h) or none, not '%s'",
						       optarg);
			} else {
				pc.max_time_s = v;
			}
			max_time = true;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if ((r = class_name_arg(cli, argc, argv, &name)) != 0)
		return r;
	if (create && !weight)
		return cli_usage_error(cli, "a new class needs --weight W");
	if (!create && !weight && !preemptible && !max_time)
		return cli_usage_error(cli, "nothing to change; give --weight, --preemptible or "
				       "--max-time");

	pc.name = (char *)name;
	if (weight)
		fields[set.n_fields++] = (char *)"weight";
	if (preemptible)
		fields[set.n_fields++] = (char *)"preemptible";
	if (max_time)
		fields[set.n_fields++] = (char *)"max_time";
	set.fields = fields;
	set.class_ = &pc;
	set.create = create;
	req.body_case = HPQ__ENVELOPE__BODY_CLASS_SET;
	req.class_set = &set;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_OK,
		     create ? "create the class" : "change the class", &reply);
	if (r == 0)
		hpq_msg_free(reply);
	return r;
}

static int class_list_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__ClassListRequest list = HPQ__CLASS_LIST_REQUEST__INIT;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", class_plain_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	req.body_case = HPQ__ENVELOPE__BODY_CLASS_LIST;
	req.class_list = &list;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_CLASS_LIST_REPLY, "list the classes", &reply);
	if (r != 0)
		return r;
	cli_output(cli)->classes(&cli->out, reply->class_list_reply->classes,
				 reply->class_list_reply->n_classes);
	hpq_msg_free(reply);
	return CLI_OK;
}

static int class_rm_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__ClassRemoveRequest rm = HPQ__CLASS_REMOVE_REQUEST__INIT;
	const char *name;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", class_plain_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if ((r = class_name_arg(cli, argc, argv, &name)) != 0)
		return r;
	rm.name = (char *)name;
	req.body_case = HPQ__ENVELOPE__BODY_CLASS_REMOVE;
	req.class_remove = &rm;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_OK, "remove the class", &reply);
	if (r == 0)
		hpq_msg_free(reply);
	return r;
}

#define CLASS_SET_HELP                                                                  \
	"options:\n"                                                                    \
	"  --weight W            0 to 100; higher classes run first and may preempt\n"  \
	"                        lower ones\n"                                          \
	"  --preemptible yes|no  whether tasks of the class may be preempted\n"         \
	"                        (default yes for a new class)\n"                     \
	"  --max-time LIMIT      the longest time limit its tasks may ask for, in\n"   \
	"                        Slurm's syntax (minutes, D-HH:MM:SS) or 12h; none\n"

static const struct cmd_entry class_add_entry = {
	.name = "add",
	.usage = "class add NAME --weight W [--preemptible yes|no] [--max-time LIMIT]",
	.summary = "create a priority class",
	.help = CLASS_SET_HELP,
	.exec = class_set_exec,
};

static const struct cmd_entry class_set_entry = {
	.name = "set",
	.usage = "class set NAME [--weight W] [--preemptible yes|no] [--max-time LIMIT]",
	.summary = "change a priority class",
	.help = CLASS_SET_HELP,
	.exec = class_set_exec,
};

static const struct cmd_entry class_list_entry = {
	.name = "list",
	.usage = "class list [--json]",
	.summary = "list the priority classes",
	.help = "options:\n"
		"  --json   print a JSON array of {name, weight, preemptible}\n",
	.exec = class_list_exec,
};

static const struct cmd_entry class_rm_entry = {
	.name = "rm",
	.usage = "class rm NAME",
	.summary = "remove a priority class that no task or team uses",
	.exec = class_rm_exec,
};

static const struct cmd_entry *const class_table[] = {
	&class_add_entry, &class_set_entry, &class_list_entry, &class_rm_entry, NULL,
};

const struct cmd_entry cmd_class_entry = {
	.name = "class",
	.usage = "class add|set|list|rm ...",
	.summary = "administer priority classes",
	.sub = class_table,
};
