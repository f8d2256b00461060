/*
 * cmd-logs.c: `hpq logs ID`, the output of a task's attempt (the newest,
 * or --attempt N), read from the agent of the node that ran it (the daemon
 * relays: the file never leaves the node otherwise). Each attempt has a
 * file of its own. The output is paged through in 1 MiB pieces, so a large
 * log costs nobody a large buffer. --follow keeps reading as the file
 * grows, every half second while nothing new comes, until the task has
 * ended and everything is read; when the task's next attempt starts, the
 * output continues from that attempt's file, on whichever node it runs.
 */
#include <string.h>
#include <time.h>

#include "cli.h"
#include "msg.h"
#include "parse.h"

#define PIECE (1u << 20)
#define FOLLOW_MS 500

enum {
	OPT_FOLLOW = CLI_OPT_FIRST_PRIVATE,
	OPT_NODE,
	OPT_ATTEMPT,
};

static const struct option logs_options[] = {
	{"follow", no_argument, NULL, OPT_FOLLOW},
	{"node", required_argument, NULL, OPT_NODE},
	{"attempt", required_argument, NULL, OPT_ATTEMPT},
	CLI_COMMON_OPTIONS,
};

static bool task_ended(struct cli *cli, uint64_t id, int *ret_r)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__ShowRequest sr = HPQ__SHOW_REQUEST__INIT;
	const char *s;
	bool ended;

	sr.id = id;
	req.body_case = HPQ__ENVELOPE__BODY_SHOW;
	req.show = &sr;
	*ret_r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_SHOW_REPLY, "look up the task", &reply);
	if (*ret_r != 0)
		return true;
	s = reply->show_reply->task->state;
	ended = strcmp(s, "PENDING") && strcmp(s, "RUNNING") && strcmp(s, "PREEMPTING");
	hpq_msg_free(reply);
	return ended;
}

static int logs_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__LogRequest lr = HPQ__LOG_REQUEST__INIT;
	bool follow = false;
	char node[128] = "";
	uint64_t id, offset = 0, attempt;
	uint32_t seen = 0;    /* the attempt printed so far; 0: none yet */
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":hf", logs_options)) != -1) {
		switch (c) {
		case 'f':
		case OPT_FOLLOW:
			follow = true;
			break;
		case OPT_NODE:
			if (cli_parse_name(cli, "node", optarg) != 0)
				return CLI_USAGE;
			lr.node = optarg;
			break;
		case OPT_ATTEMPT:
			if (hpq_parse_uint(optarg, 1, UINT32_MAX, &attempt) < 0)
				return cli_usage_error(cli, "invalid attempt '%s': give a number "
						       "from 1 (hpq show ID says how many ran)",
						       optarg);
			lr.attempt = (uint32_t)attempt;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind >= argc)
		return cli_usage_error(cli, "which task? give its ID");
	if (cli_parse_id(cli, argv[optind], &id) != 0)
		return CLI_USAGE;
	if (optind + 1 < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);

	lr.task_id = id;
	lr.max = PIECE;
	for (;;) {
		Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
		const Hpq__LogChunk *ch;
		bool running;
		size_t len;

		lr.offset = offset;
		req.body_case = HPQ__ENVELOPE__BODY_LOG_REQUEST;
		req.log_request = &lr;
		r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_LOG_CHUNK, "read the task's output",
			     &reply);
		if (r != 0)
			return r;
		ch = reply->log_chunk;
		if (seen && (ch->attempt != seen || strcmp(node, ch->node))) {
			/* The next attempt started: its own file, from its start. */
			fprintf(stderr, "hpq: task %llu continues with attempt %u on node %s\n",
				(unsigned long long)id, ch->attempt, ch->node);
			snprintf(node, sizeof(node), "%s", ch->node);
			seen = ch->attempt;
			offset = 0;
			hpq_msg_free(reply);
			continue;
		}
		snprintf(node, sizeof(node), "%s", ch->node);
		seen = ch->attempt;
		len = ch->data.len;
		running = ch->running;
		if (len && fwrite(ch->data.data, 1, len, cli->out.out) != len) {
			hpq_msg_free(reply);
			return CLI_ERR;
		}
		offset = ch->offset + len;
		hpq_msg_free(reply);
		if (len)
			continue;
		if (fflush(cli->out.out) != 0)
			return CLI_ERR;
		if (!follow || (!running && lr.attempt))
			return CLI_OK;
		if (!running && task_ended(cli, id, &r))
			return r;
		nanosleep(&(struct timespec){ 0, FOLLOW_MS * 1000000L }, NULL);
	}
}

const struct cmd_entry cmd_logs_entry = {
	.name = "logs",
	.usage = "logs ID [--follow] [--attempt N] [--node N]",
	.summary = "a task's output, from the node that ran it",
	.help = "options:\n"
		"  -f, --follow  keep printing as the output grows, until the task has ended\n"
		"                (or, with --attempt, that attempt)\n"
		"  --attempt N   read attempt N's output (default: the newest attempt's)\n"
		"  --node N      read the copy on node N (default: where the newest attempt ran;\n"
		"                a gang's first node)\n",
	.exec = logs_exec,
};
