/*
 * cmd-acct.c: `hpq acct`, the sacct of hpq: finished tasks from hpqd's
 * store, filtered there by end time, user, team, state and name, with what
 * they used: elapsed time, GPU-hours (worked out here: GPUs per node x
 * nodes x elapsed), CPU time and peak memory (measured by the agent's
 * cgroup), attempts and preemptions; an array's indices that a cancel
 * dropped before they were tasks, as one row (12_[5-99]). A table for
 * people, --csv and --json for programs; the column names of --format are
 * the CSV header and the JSON keys' stems.
 *
 * The records come streamed (AcctRequest.stream): hpqd reads its store a
 * page at a time as hpq reads the frames, so that a month of a busy
 * cluster's history (--limit 0) is one command, as sacct's is.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cmd-acct.h"
#include "error.h"
#include "log.h"
#include "msg.h"
#include "output-columns.h"
#include "parse.h"
#include "select.h"
#include "xalloc.h"

enum {
	OPT_SINCE = CLI_OPT_FIRST_PRIVATE,
	OPT_UNTIL,
	OPT_USER,
	OPT_TEAM,
	OPT_STATE,
	OPT_NAME,
	OPT_LIMIT,
	OPT_FORMAT,
	OPT_CSV,
	OPT_NOHEADER,
};

static const struct option acct_options[] = {
	{"since", required_argument, NULL, OPT_SINCE},
	{"until", required_argument, NULL, OPT_UNTIL},
	{"user", required_argument, NULL, OPT_USER},
	{"team", required_argument, NULL, OPT_TEAM},
	{"state", required_argument, NULL, OPT_STATE},
	{"name", required_argument, NULL, OPT_NAME},
	{"limit", required_argument, NULL, OPT_LIMIT},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"csv", no_argument, NULL, OPT_CSV},
	{"noheader", no_argument, NULL, OPT_NOHEADER},
	CLI_COMMON_OPTIONS,
};

int acct_parse_time(const char *s, int64_t now_ms, int64_t *ret_ms, char *err, size_t errlen)
{
	static const char *const formats[] = {
		"%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
		"%Y-%m-%d %H:%M:%S",
	};
	uint64_t secs;

	if (strcmp(s, "now") == 0) {
		*ret_ms = now_ms;
		return 0;
	}
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct tm tm;
		const char *end;
		time_t t;

		memset(&tm, 0, sizeof(tm));
		end = strptime(s, formats[i], &tm);
		if (!end || *end)
			continue;
		tm.tm_isdst = -1; /* local time, summer or not */
		t = mktime(&tm);
		if (t == (time_t)-1 || tm.tm_year < 70)
			break;
		*ret_ms = (int64_t)t * 1000;
		return 0;
	}
	/* A duration ago. hpq's duration parser, as hpq events --since: when
	 * it takes Slurm's syntax (a bare number is minutes), so does this. */
	if (hpq_parse_duration(s[0] == '-' ? s + 1 : s, &secs) == 0 &&
	    secs <= (uint64_t)(now_ms / 1000)) {
		*ret_ms = now_ms - (int64_t)secs * 1000;
		return 0;
	}
	return hpq_errf(err, errlen, HPQ_EINVAL,
			"'%.64s' is not a time: give a date (2026-12-04), a date and time "
			"(2026-12-04T10:00), now, or how long ago (2h, 7d)", s);
}

/* What hpq acct asks for without --limit. */
#define ACCT_DEFAULT_LIMIT 10000

/* The next frame of the reply to id; NULL (having said why) on an error. */
static Hpq__AcctReply *acct_next_frame(struct cli *cli, uint64_t id)
{
	Hpq__Envelope *next = NULL;
	int r = hpq_client_next(&cli->client, id, &next);

	if (r != 0) {
		cli_error(cli, "cannot read the accounting: %s",
			  cli->client.errbuf[0] ? cli->client.errbuf : hpq_strerror(r));
		return NULL;
	}
	if (next->body_case != HPQ__ENVELOPE__BODY_ACCT_REPLY) {
		cli_error(cli, "cannot read the accounting: hpqd answered with an unexpected "
			  "message");
		return NULL;
	}
	return next->acct_reply;
}

/*
 * The records, read one at a time as they come, for every printer: each
 * frame is forgotten (its memory reused, hpq_msg_arena_reset) once its
 * records are printed or, for a table, kept as cells (table.c), before
 * the next is read, so that hpq's memory does not grow with the history
 * by a message a record. An error ends the rows; err says it.
 */
struct acct_stream {
	struct task_rows rows;
	struct cli *cli;
	uint64_t id;
	Hpq__AcctReply *frame;
	size_t i, n;                 /* the next row of frame; rows read */
	int err;
};

static const Hpq__Task *acct_stream_next(struct task_rows *r)
{
	struct acct_stream *as = (struct acct_stream *)r;

	while (!as->err && as->i >= as->frame->n_tasks) {
		if (!as->frame->more)
			return NULL;
		hpq_msg_arena_reset();
		as->i = 0;
		if (!(as->frame = acct_next_frame(as->cli, as->id)))
			as->err = CLI_ERR;
	}
	if (as->err)
		return NULL;
	as->n++;
	return as->frame->tasks[as->i++];
}

/* The one pass a printer takes starts at the first record. */
static void acct_stream_start(struct task_rows *r)
{
	if (((struct acct_stream *)r)->n)
		hpq_fatal("acct: the records can be read only once");
}

static int acct_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__AcctRequest ar = HPQ__ACCT_REQUEST__INIT;
	const char **states = NULL, *format = ACCT_DEFAULT_COLUMNS, *opt;
	size_t n_states = 0, cols[TASK_COLUMNS_MAX], ncols = 0;
	bool csv = false, noheader = false, formatted = false, truncated;
	int64_t now_ms = cli->out.now_ms;
	struct acct_stream as;
	char err[256];
	uint64_t v;
	int c, r = CLI_USAGE;

	ar.limit = ACCT_DEFAULT_LIMIT;
	while ((c = cli_getopt(cli, e, argc, argv, ":h", acct_options)) != -1) {
		switch (c) {
		case OPT_SINCE:
		case OPT_UNTIL:
			opt = c == OPT_SINCE ? "--since" : "--until";
			if (acct_parse_time(optarg, now_ms, c == OPT_SINCE ? &ar.since : &ar.until,
					    err, sizeof(err)) != 0) {
				cli_usage_error(cli, "%s: %s", opt, err);
				goto out;
			}
			break;
		case OPT_USER:
			if (cli_parse_user(cli, "--user", optarg) != 0)
				goto out;
			ar.user = optarg;
			break;
		case OPT_TEAM:
			if (cli_parse_name(cli, "team", optarg) != 0)
				goto out;
			ar.team = optarg;
			break;
		case OPT_STATE:
			if (select_add_states(optarg, &states, &n_states, err, sizeof(err)) != 0) {
				cli_usage_error(cli, "%s", err);
				goto out;
			}
			break;
		case OPT_NAME:
			if (cli_parse_name(cli, "task", optarg) != 0)
				goto out;
			ar.name = optarg;
			break;
		case OPT_LIMIT:
			if (cli_parse_uint(cli, "--limit", optarg, 0, UINT32_MAX, &v) != 0)
				goto out;
			ar.limit = (uint32_t)v;
			break;
		case OPT_FORMAT:
			format = optarg;
			formatted = true;
			break;
		case OPT_CSV:
			csv = true;
			break;
		case OPT_NOHEADER:
			noheader = true;
			break;
		case CLI_OPT_HELP:
			r = CLI_OK;
			goto out;
		default:
			goto out;
		}
	}
	if (optind < argc) {
		cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	for (size_t i = 0; i < n_states; i++)
		if (!strcmp(states[i], "PENDING") || !strcmp(states[i], "RUNNING") ||
		    !strcmp(states[i], "PREEMPTING")) {
			cli_usage_error(cli, "hpq acct lists finished tasks; use hpq list for "
					"%s ones", states[i]);
			goto out;
		}
	if (ar.since && ar.until && ar.until < ar.since) {
		cli_usage_error(cli, "--until is before --since");
		goto out;
	}
	if (cli->json && (csv || formatted || noheader)) {
		cli_usage_error(cli, "--json prints every field; --csv, --format and "
				"--noheader are for tables and CSV");
		goto out;
	}
	if (task_columns_parse(format, cols, TASK_COLUMNS_MAX, &ncols, err, sizeof(err)) != 0) {
		cli_usage_error(cli, "%s", err);
		goto out;
	}
	ar.states = (char **)states;
	ar.n_states = n_states;
	ar.stream = true;
	req.body_case = HPQ__ENVELOPE__BODY_ACCT;
	req.acct = &ar;
	/* hpq exits after printing: the frames need not be freed. */
	hpq_msg_use_arena();
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_ACCT_REPLY, "read the accounting", &reply);
	if (r != 0)
		goto out;
	truncated = reply->acct_reply->truncated; /* the first frame's, before it is forgotten */
	as = (struct acct_stream){ { .next = acct_stream_next, .rewind_last = acct_stream_start },
				   cli, req.id, reply->acct_reply, 0, 0, 0 };
	if (cli->json)
		output_json_acct(cli->out.out, &as.rows, now_ms);
	else if (csv)
		task_csv(cli->out.out, &as.rows, cols, ncols, !noheader, now_ms);
	else
		task_table(&cli->out, &as.rows, cols, ncols, !noheader);
	r = as.err;
	if (r == 0 && truncated)
		fprintf(stderr, "hpq: more tasks matched; these are the newest %zu. Narrow the "
				"period with --since and --until, or raise --limit (0: all of "
				"them)\n", as.n);
out:
	free(states);
	return r;
}

const struct cmd_entry cmd_acct_entry = {
	.name = "acct",
	.usage = "acct [--since TIME] [--until TIME] [--user U] [--team T] [--state S]... "
		 "[--name N] [--limit N] [--format COLUMNS] [--noheader] [--json|--csv]",
	.summary = "what finished tasks used: elapsed time, GPU-hours, CPU time, memory",
	.help = "Finished tasks that ended in the period, oldest first (with --limit N,\n"
		"the newest N). TIME is a date (2026-12-04), a date and time in local time\n"
		"(2026-12-04T10:00), now, or how long ago (2h, 7d). GPU-hours are GPUs per\n"
		"node x nodes x the elapsed time of the last attempt; CPU time and peak\n"
		"memory are measured where the node confines its tasks (cgroup v2), else 0.\n"
		"An array's indices that a cancel dropped before they were tasks are one\n"
		"row, ID_[RANGES] (12_[5-99]), CANCELLED, never started, ending when they\n"
		"were dropped.\n\n"
		"options:\n"
		"  --since TIME      tasks that ended at or after TIME\n"
		"  --until TIME      tasks that ended before TIME\n"
		"  --user U          only tasks of user U\n"
		"  --team T          only tasks of team T\n"
		"  --state S         only tasks in state S: completed, failed, cancelled,\n"
		"                    timeout or out_of_memory; repeat it or give a list\n"
		"  --name N          only tasks named N\n"
		"  --limit N         the newest N tasks at most (default 10000; 0: all of\n"
		"                    them, however many: --json and --csv print them as\n"
		"                    they come; a table keeps about 200 bytes a row)\n"
		"  --format COLUMNS  the columns, separated by commas; default:\n"
		"                    id,name,user,team,class,state,exit,reason,start,end,\n"
		"                    elapsed,nodes,gpu_hours,cpu_time,peak_mem,attempts,\n"
		"                    preemptions\n"
		"  --noheader        leave out the header row (tables and CSV)\n"
		"  --csv             CSV (RFC 4180 quoting) with the column names as header;\n"
		"                    seconds, bytes and UTC times\n"
		"  --json            a JSON array of objects: id, task (ID_INDEX), array_id,\n"
		"                    array_index, array_spec (an array's dropped indices),\n"
		"                    name, user, team, class, pool, state,\n"
		"                    exit_code, reason, submit_time, start_time, end_time,\n"
		"                    elapsed (s), nodes, node_names, per_node, gpus, gpu_hours,\n"
		"                    cpu_time (s), peak_mem (bytes), attempts, preemptions\n\n"
		"columns:\n" TASK_COLUMNS_HELP,
	.exec = acct_exec,
};
