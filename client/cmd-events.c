/*
 * cmd-events.c: `hpq events`, the cluster's event log: submits, starts,
 * ends, preemptions (victim and beneficiary), requeues, checkpoints, node
 * health, team and class changes, with who did it. Filters are applied by
 * the daemon. --follow keeps the connection open and prints each event as
 * the daemon commits it (a subscription, no polling); one line per event,
 * flushed at once, so `hpq events --follow | grep preempt` works, under
 * one header line. With --json: an array, or with --follow one JSON
 * object per line.
 */
#include <string.h>
#include <time.h>

#include "cli.h"
#include "dash.h"
#include "msg.h"

enum {
	OPT_FOLLOW = CLI_OPT_FIRST_PRIVATE,
	OPT_TASK,
	OPT_TEAM,
	OPT_NODE,
	OPT_SINCE,
	OPT_LIMIT,
};

static const struct option events_options[] = {
	{"follow", no_argument, NULL, OPT_FOLLOW},
	{"task", required_argument, NULL, OPT_TASK},
	{"team", required_argument, NULL, OPT_TEAM},
	{"node", required_argument, NULL, OPT_NODE},
	{"since", required_argument, NULL, OPT_SINCE},
	{"limit", required_argument, NULL, OPT_LIMIT},
	CLI_COMMON_OPTIONS,
};

static void print_line(const struct cli *cli, const Hpq__Event *e)
{
	FILE *f = cli->out.out;

	if (cli->json) {
		json_t *j = dash_event_json(e);

		json_dumpf(j, f, JSON_COMPACT);
		fputc('\n', f);
		json_decref(j);
	} else {
		dash_event_text(f, e);
	}
}

static int events_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__EventsRequest er = HPQ__EVENTS_REQUEST__INIT;
	const Hpq__EventsReply *rep;
	uint64_t v;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":hf", events_options)) != -1) {
		switch (c) {
		case 'f':
		case OPT_FOLLOW:
			er.follow = true;
			break;
		case OPT_TASK:
			if (cli_parse_id(cli, optarg, &er.task_id) != 0)
				return CLI_USAGE;
			break;
		case OPT_TEAM:
			if (cli_parse_name(cli, "team", optarg) != 0)
				return CLI_USAGE;
			er.team = optarg;
			break;
		case OPT_NODE:
			if (cli_parse_name(cli, "node", optarg) != 0)
				return CLI_USAGE;
			er.node = optarg;
			break;
		case OPT_SINCE:
			if (cli_parse_duration(cli, "--since", optarg, &v) != 0)
				return CLI_USAGE;
			er.since = (int64_t)time(NULL) * 1000 - (int64_t)v * 1000;
			if (er.since < 0)
				er.since = 0;
			break;
		case OPT_LIMIT:
			if (cli_parse_uint(cli, "--limit", optarg, 1, 100000, &v) != 0)
				return CLI_USAGE;
			er.limit = (uint32_t)v;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);

	req.body_case = HPQ__ENVELOPE__BODY_EVENTS;
	req.events = &er;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_EVENTS_REPLY, "read the events", &reply);
	if (r != 0)
		return r;
	rep = reply->events_reply;
	if (rep->truncated)
		fprintf(stderr, "hpq: older events matched too; these are the newest %zu. Use "
				"--limit or --since for more or fewer\n", rep->n_events);
	if (cli->json && !er.follow) {
		json_t *a = json_array();

		for (size_t i = 0; i < rep->n_events; i++)
			json_array_append_new(a, dash_event_json(rep->events[i]));
		json_dumpf(a, cli->out.out, JSON_INDENT(2));
		fputc('\n', cli->out.out);
		json_decref(a);
		hpq_msg_free(reply);
		return CLI_OK;
	}
	if (!cli->json)
		dash_event_header(cli->out.out);
	for (size_t i = 0; i < rep->n_events; i++)
		print_line(cli, rep->events[i]);
	fflush(cli->out.out);
	hpq_msg_free(reply);
	if (!er.follow)
		return CLI_OK;

	for (;;) {
		Hpq__Envelope *push;

		r = dash_follow_next(&cli->client, req.id, -1, &push);
		if (r < 0)
			return cli_error(cli, "stopped following the events: %s",
					 cli->client.errbuf);
		if (r == 0)
			continue;
		if (push->body_case == HPQ__ENVELOPE__BODY_EVENT)
			print_line(cli, push->event);
		hpq_msg_free(push);
		if (fflush(cli->out.out) != 0 || ferror(cli->out.out))
			return CLI_ERR;   /* the reader went away */
	}
}

const struct cmd_entry cmd_events_entry = {
	.name = "events",
	.usage = "events [--follow] [--task ID] [--team T] [--node N] [--since DURATION] "
		 "[--limit N] [--json]",
	.summary = "the event log: what happened to tasks, nodes, teams and classes, and who did it",
	.help = "options:\n"
		"  -f, --follow        after the log, print new events as they happen\n"
		"  --task ID           only events of task ID\n"
		"  --team T            only events of team T's tasks\n"
		"  --node N            only events that name node N\n"
		"  --since DURATION    only events of the last DURATION (e.g. 1h, 2d)\n"
		"  --limit N           at most the newest N events of the log (default 1000)\n"
		"  --json              a JSON array of events; with --follow, one object per line\n",
	.exec = events_exec,
};
