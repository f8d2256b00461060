/*
 * cmd-show.c: `hpq show ID`, everything hpqd knows about one task: its
 * request, where and how often it ran, its checkpoints and its events.
 * ID_INDEX names one index of an array; --script prints the batch script
 * the task runs (the copy taken at submit), byte for byte.
 */
#include <errno.h>
#include <string.h>

#include "batchspec.h"
#include "cli.h"
#include "msg.h"
#include "parse.h"

enum {
	OPT_SCRIPT = CLI_OPT_FIRST_PRIVATE,
};

static const struct option show_options[] = {
	{"script", no_argument, NULL, OPT_SCRIPT},
	CLI_COMMON_OPTIONS,
};

/* ID or ID_INDEX into req. */
static int show_parse_id(struct cli *cli, const char *arg, Hpq__ShowRequest *req)
{
	const char *us = strchr(arg, '_');
	char id[32];
	uint64_t v;

	if (!us)
		return cli_parse_id(cli, arg, &req->id);
	if ((size_t)(us - arg) >= sizeof(id) ||
	    hpq_parse_uint(us + 1, 0, HPQ_ARRAY_INDEX_MAX, &v) < 0)
		return cli_usage_error(cli, "'%s' is not a task id (12) or an array index "
				       "(12_5)", arg);
	snprintf(id, sizeof(id), "%.*s", (int)(us - arg), arg);
	if (cli_parse_id(cli, id, &req->id) != 0)
		return CLI_USAGE;
	req->array_index = (uint32_t)v;
	req->has_array_index = true;
	return 0;
}

static int show_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__ShowRequest show = HPQ__SHOW_REQUEST__INIT;
	const Hpq__Task *t;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", show_options)) != -1) {
		if (c == OPT_SCRIPT) {
			show.script = true;
			continue;
		}
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	}
	if (optind >= argc)
		return cli_usage_error(cli, "which task? give its id");
	if (optind + 1 < argc)
		return cli_usage_error(cli, "one task at a time; unexpected '%s'",
				       argv[optind + 1]);
	if (show.script && cli->json)
		return cli_usage_error(cli, "--script prints the script as it is; "
				       "it does not go with --json");
	if (show_parse_id(cli, argv[optind], &show) != 0)
		return CLI_USAGE;

	req.body_case = HPQ__ENVELOPE__BODY_SHOW;
	req.show = &show;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_SHOW_REPLY, "show the task", &reply);
	if (r != 0)
		return r;
	t = reply->show_reply->task;
	if (!t) {
		hpq_msg_free(reply);
		return cli_error(cli, "cannot show task %s: hpqd sent no task", argv[optind]);
	}
	if (show.script) {
		if (!t->has_script) {
			hpq_msg_free(reply);
			return cli_error(cli, "task %s has no script: it was submitted as a "
					 "command, not a batch script", argv[optind]);
		}
		r = fwrite(t->script.data, 1, t->script.len, cli->out.out) == t->script.len &&
				    fflush(cli->out.out) == 0
			    ? CLI_OK
			    : cli_error(cli, "cannot write the script: %s", strerror(errno));
		hpq_msg_free(reply);
		return r;
	}
	cli_output(cli)->task(&cli->out, t);
	hpq_msg_free(reply);
	return CLI_OK;
}

const struct cmd_entry cmd_show_entry = {
	.name = "show",
	.usage = "show ID|ID_INDEX [--script] [--json]",
	.summary = "show one task with its checkpoints and events",
	.help = "options:\n"
		"  --script print the batch script the task runs, exactly as stored\n"
		"  --json   print the task as a JSON object\n",
	.exec = show_exec,
};
