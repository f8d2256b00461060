/*
 * cmd-logs.c: `hpq logs ID`, the output of a task's attempt (the newest,
 * or --attempt N), read from the agent of the node that ran it (the daemon
 * relays: the file never leaves the node otherwise). Each attempt has a
 * file of its own. The output is paged through in 1 MiB pieces, so a large
 * log costs nobody a large buffer. --follow keeps reading as the file
 * grows, every half second while nothing new comes, until the task has
 * ended and everything is read; when the task's next attempt starts, the
 * output continues from that attempt's file, on whichever node it runs.
 *
 * --json prints JSON Lines, one record per line of output, as the lines
 * come (so that --follow works and a large output is never held whole):
 * {task, attempt, node, stream, offset, text}. The task's standard output
 * and standard error share one file, stream "output"; the lines the agent
 * writes around them, the header (the file's first line) and the footer
 * (the last line of an ended attempt, "==== hpq: ..."), are stream "hpq".
 * A line longer than a piece (1 MiB) is split into records of a piece.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "msg.h"
#include "parse.h"
#include "xalloc.h"

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

/* --json: the bytes of the attempt being read that are not printed yet. */
struct lines {
	FILE *out;
	uint64_t task;
	uint32_t attempt;
	char node[128];
	char *buf;
	size_t len, cap;
	uint64_t start;      /* file offset of buf[0] */
};

static void lines_print(struct lines *l, const char *text, size_t n, uint64_t offset, bool hpq)
{
	json_t *o = json_object();

	json_object_set_new(o, "task", json_integer((json_int_t)l->task));
	json_object_set_new(o, "attempt", json_integer(l->attempt));
	json_object_set_new(o, "node", output_json_text(l->node, strlen(l->node)));
	json_object_set_new(o, "stream", json_string(hpq ? "hpq" : "output"));
	json_object_set_new(o, "offset", json_integer((json_int_t)offset));
	json_object_set_new(o, "text", output_json_text(text, n));
	json_dumpf(o, l->out, JSON_COMPACT);
	fputc('\n', l->out);
	json_decref(o);
}

/* Drops the first n bytes of buf (printed). */
static void lines_drop(struct lines *l, size_t n)
{
	memmove(l->buf, l->buf + n, l->len - n);
	l->len -= n;
	l->start += n;
}

/*
 * Adds data read at the end of buf and prints the whole lines. Once the
 * attempt has ended (!running) its last whole line is held back: only at
 * the end of the file is it known to be the footer.
 */
static void lines_add(struct lines *l, const void *data, size_t n, bool running)
{
	size_t pos = 0;

	if (l->len + n > l->cap) {
		l->cap = l->len + n;
		l->buf = xrealloc(l->buf, l->cap);
	}
	memcpy(l->buf + l->len, data, n);
	l->len += n;
	for (;;) {
		const char *p = l->buf + pos, *nl = memchr(p, '\n', l->len - pos);
		size_t len = nl ? (size_t)(nl - p) : l->len - pos;
		uint64_t offset = l->start + pos;

		if (nl ? len > PIECE : len >= PIECE) {
			lines_print(l, p, PIECE, offset, false);
			pos += PIECE;
			continue;
		}
		if (!nl || (!running && pos + len + 1 == l->len))
			break;
		lines_print(l, p, len, offset, offset == 0);
		pos += len + 1;
	}
	lines_drop(l, pos);
}

/* The end of what is read of this attempt: prints what is left. ended:
 * the attempt has ended, so a whole last line may be the footer. */
static void lines_end(struct lines *l, bool ended)
{
	size_t len = l->len;

	if (len && l->buf[len - 1] == '\n') {
		len--;
		lines_print(l, l->buf, len, l->start, l->start == 0 ||
			    (ended && len >= 10 && !memcmp(l->buf, "==== hpq: ", 10)));
		lines_drop(l, len + 1);
	} else if (len) {
		lines_print(l, l->buf, len, l->start, false);
		lines_drop(l, len);
	}
}

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
	ended = output_state_ended(s);
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
	struct lines lines = {0};
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
	lines.out = cli->out.out;
	lines.task = id;
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
			break;
		ch = reply->log_chunk;
		if (seen && (ch->attempt != seen || strcmp(node, ch->node))) {
			/* The next attempt started: its own file, from its start. */
			if (cli->json) {
				lines_end(&lines, true);
				lines.start = 0;
			}
			fflush(cli->out.out);
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
		if (cli->json) {
			lines.attempt = ch->attempt;
			snprintf(lines.node, sizeof(lines.node), "%s", ch->node);
			if (len)
				lines_add(&lines, ch->data.data, len, running);
		} else if (len && fwrite(ch->data.data, 1, len, cli->out.out) != len) {
			hpq_msg_free(reply);
			r = CLI_ERR;
			break;
		}
		offset = ch->offset + len;
		hpq_msg_free(reply);
		if (len)
			continue;
		/* All there is for now. */
		if (cli->json && (!follow || !running))
			lines_end(&lines, !running);
		if (fflush(cli->out.out) != 0) {
			r = CLI_ERR;
			break;
		}
		if (!follow || (!running && lr.attempt))
			break;
		if (!running && task_ended(cli, id, &r))
			break;
		nanosleep(&(struct timespec){ 0, FOLLOW_MS * 1000000L }, NULL);
	}
	free(lines.buf);
	return r;
}

const struct cmd_entry cmd_logs_entry = {
	.name = "logs",
	.usage = "logs ID [--follow] [--attempt N] [--node N] [--json]",
	.summary = "a task's output, from the node that ran it",
	.help = "options:\n"
		"  -f, --follow  keep printing as the output grows, until the task has ended\n"
		"                (or, with --attempt, that attempt)\n"
		"  --attempt N   read attempt N's output (default: the newest attempt's)\n"
		"  --node N      read the copy on node N (default: where the newest attempt ran;\n"
		"                a gang's first node)\n"
		"  --json        one JSON object per line of output: {task, attempt, node,\n"
		"                stream (output, or hpq for the header and footer), offset, text}\n",
	.exec = logs_exec,
};
