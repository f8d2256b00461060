/*
 * cmd-show.c: `hpq show ID`, everything hpqd knows about one task: its
 * request, where and how often it ran, its checkpoints and its events.
 */
#include "cli.h"
#include "msg.h"

static const struct option show_options[] = {
	CLI_COMMON_OPTIONS,
};

static int show_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__ShowRequest show = HPQ__SHOW_REQUEST__INIT;
	uint64_t id;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", show_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind >= argc)
		return cli_usage_error(cli, "which task? give its id");
	if (optind + 1 < argc)
		return cli_usage_error(cli, "one task at a time; unexpected '%s'",
				       argv[optind + 1]);
	if (cli_parse_id(cli, argv[optind], &id) != 0)
		return CLI_USAGE;

	show.id = id;
	req.body_case = HPQ__ENVELOPE__BODY_SHOW;
	req.show = &show;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_SHOW_REPLY, "show the task", &reply);
	if (r != 0)
		return r;
	if (!reply->show_reply->task) {
		hpq_msg_free(reply);
		return cli_error(cli, "cannot show task %llu: hpqd sent no task",
				 (unsigned long long)id);
	}
	cli_output(cli)->task(&cli->out, reply->show_reply->task);
	hpq_msg_free(reply);
	return CLI_OK;
}

const struct cmd_entry cmd_show_entry = {
	.name = "show",
	.usage = "show ID [--json]",
	.summary = "show one task with its checkpoints and events",
	.help = "options:\n"
		"  --json   print the task as a JSON object\n",
	.exec = show_exec,
};
