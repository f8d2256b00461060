/*
 * cmd-list.c: `hpq list`, the queue. By default it shows the active tasks
 * (pending, running, preempting), as squeue does, because on a busy
 * cluster the finished ones soon outnumber them; --all adds finished
 * tasks and --state picks one state. Filters and --limit are applied by
 * the daemon, so a large history is never sent just to be thrown away
 * here; a reply that did not fit in one frame says so and hpq warns.
 */
#include <ctype.h>
#include <string.h>

#include "cli.h"
#include "msg.h"

enum {
	OPT_TEAM = CLI_OPT_FIRST_PRIVATE,
	OPT_STATE,
	OPT_USER,
	OPT_ALL,
	OPT_LIMIT,
};

static const struct option list_options[] = {
	{"team", required_argument, NULL, OPT_TEAM},
	{"state", required_argument, NULL, OPT_STATE},
	{"user", required_argument, NULL, OPT_USER},
	{"all", no_argument, NULL, OPT_ALL},
	{"limit", required_argument, NULL, OPT_LIMIT},
	CLI_COMMON_OPTIONS,
};

static const char *const list_states[] = {
	"PENDING", "RUNNING", "PREEMPTING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT",
};

/* The wire form of a --state value: a state in capitals, or "active". */
static const char *list_state(const char *arg)
{
	if (strcasecmp(arg, "active") == 0)
		return "active";
	for (size_t i = 0; i < sizeof(list_states) / sizeof(list_states[0]); i++)
		if (strcasecmp(arg, list_states[i]) == 0)
			return list_states[i];
	return NULL;
}

static int list_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	bool all = false, state_given = false;
	uint64_t v;
	int c, r;

	list.state = (char *)"active";
	while ((c = cli_getopt(cli, e, argc, argv, ":h", list_options)) != -1) {
		switch (c) {
		case OPT_TEAM:
			if (cli_parse_name(cli, "team", optarg) != 0)
				return CLI_USAGE;
			list.team = optarg;
			break;
		case OPT_STATE:
			if (!(list.state = (char *)list_state(optarg)))
				return cli_usage_error(cli, "unknown state '%s'; use one of "
						       "active, pending, running, preempting, "
						       "completed, failed, cancelled, timeout",
						       optarg);
			state_given = true;
			break;
		case OPT_USER:
			if (cli_parse_user(cli, "--user", optarg) != 0)
				return CLI_USAGE;
			list.user = optarg;
			break;
		case OPT_ALL:
			all = true;
			break;
		case OPT_LIMIT:
			if (cli_parse_uint(cli, "--limit", optarg, 1, UINT32_MAX, &v) != 0)
				return CLI_USAGE;
			list.limit = (uint32_t)v;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (all && state_given)
		return cli_usage_error(cli, "give either --all or --state, not both");
	if (all)
		list.state = (char *)"";

	req.body_case = HPQ__ENVELOPE__BODY_LIST;
	req.list = &list;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_LIST_REPLY, "list the tasks", &reply);
	if (r != 0)
		return r;
	cli_output(cli)->tasks(&cli->out, reply->list_reply->tasks, reply->list_reply->n_tasks);
	if (reply->list_reply->truncated)
		fprintf(stderr, "hpq: more tasks matched than one reply holds; these are the "
				"newest %zu. Narrow the list with --team, --state, --user "
				"or --limit\n", reply->list_reply->n_tasks);
	hpq_msg_free(reply);
	return CLI_OK;
}

const struct cmd_entry cmd_list_entry = {
	.name = "list",
	.usage = "list [--team T] [--state S] [--user U] [--all] [--limit N] [--json]",
	.summary = "list tasks: the active ones, or those you select",
	.help = "options:\n"
		"  --team T    only tasks of team T\n"
		"  --state S   only tasks in state S: active (pending, running, preempting; the\n"
		"              default), pending, running, preempting, completed, failed,\n"
		"              cancelled or timeout\n"
		"  --user U    only tasks of user U\n"
		"  --all       tasks in every state, finished ones too\n"
		"  --limit N   at most N tasks, the newest\n"
		"  --json      print a JSON array of tasks\n",
	.exec = list_exec,
};
