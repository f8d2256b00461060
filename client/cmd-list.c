/*
 * cmd-list.c: `hpq list`, the queue. By default it shows the active tasks
 * (pending, running, preempting), as squeue does, because on a busy
 * cluster the finished ones soon outnumber them; --all adds finished
 * tasks and --state picks one state. Filters and --limit are applied by
 * the daemon, so a large history is never sent just to be thrown away
 * here; a reply that did not fit in one frame says so and hpq warns.
 *
 * An array's pending indices come as one row (ID_[5-999%50], as squeue
 * shows them) unless --expand-arrays asks for one row each. --format picks
 * the columns (output-columns.h); without it the table is output_text's.
 * States go in `states` only: the older `state` field is protocol 1's,
 * deprecated (hpqd records who still sends it).
 *
 * A queue can hold 100,000 tasks: the list is asked for streamed (as many
 * frames as it takes, none truncated), in order (oldest first, frame after
 * frame) and, for a table, with only the fields its columns show: the
 * default table's (LIST_VIEW_TABLE), or with --format columns beyond
 * those, the few more that any column shows (LIST_VIEW_FORMAT), sent as
 * columns (ListRequest.columns: packed numbers, each text once). An hpqd
 * from before LIST_VIEW_FORMAT refuses it and is asked for whole tasks
 * instead. The printers read the rows one at a
 * time (output.h's task_rows): a table's frames are kept, compact, and
 * each row becomes a Task only while it is read; --json asks for every
 * field and prints each frame as it comes, then forgets it. An hpqd that
 * knows none of these sends one whole frame of tasks, which reads the
 * same way.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "error.h"
#include "log.h"
#include "msg.h"
#include "output-columns.h"
#include "parse.h"
#include "select.h"
#include "xalloc.h"

enum {
	OPT_TEAM = CLI_OPT_FIRST_PRIVATE,
	OPT_STATE,
	OPT_USER,
	OPT_ALL,
	OPT_LIMIT,
	OPT_NAME,
	OPT_ARRAY,
	OPT_EXPAND,
	OPT_FORMAT,
	OPT_NOHEADER,
};

static const struct option list_options[] = {
	{"team", required_argument, NULL, OPT_TEAM},
	{"state", required_argument, NULL, OPT_STATE},
	{"user", required_argument, NULL, OPT_USER},
	{"all", no_argument, NULL, OPT_ALL},
	{"limit", required_argument, NULL, OPT_LIMIT},
	{"name", required_argument, NULL, OPT_NAME},
	{"array", required_argument, NULL, OPT_ARRAY},
	{"expand-arrays", no_argument, NULL, OPT_EXPAND},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"noheader", no_argument, NULL, OPT_NOHEADER},
	CLI_COMMON_OPTIONS,
};

/* The view that carries what the columns show: LIST_VIEW_TABLE's fields
 * where they are enough, else LIST_VIEW_FORMAT's, which any column's are. */
static Hpq__ListView list_view(const size_t *cols, size_t ncols)
{
	for (size_t i = 0; i < ncols; i++)
		if (!task_columns[cols[i]].table)
			return HPQ__LIST_VIEW__LIST_VIEW_FORMAT;
	return HPQ__LIST_VIEW__LIST_VIEW_TABLE;
}

#define COL_HAS_EXIT_CODE HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HAS_EXIT_CODE
#define COL_HAS_ARRAY HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HAS_ARRAY
#define COL_HELD HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HELD

/* Do a frame's columns agree: as many entries in each (LIST_VIEW_FORMAT's
 * too, if asked for), and every text index in range? Checked once, so that
 * reading a row cannot fail. */
static bool list_columns_valid(const Hpq__TaskColumns *c, bool format)
{
	size_t n = c->n_id, nn = 0, ntexts = format ? 9 : 7;
	const uint32_t *texts[] = { c->name, c->team, c->user, c->class_, c->state, c->reason,
				    c->array_spec, c->pool, c->dependency };

	if (c->n_name != n || c->n_team != n || c->n_user != n || c->n_class_ != n ||
	    c->n_state != n || c->n_reason != n || c->n_queue_position != n || c->n_nodes != n ||
	    c->n_gpus != n || c->n_node_counts != n || c->n_start_time != n ||
	    c->n_end_time != n || c->n_exit_code != n || c->n_flags != n ||
	    c->n_array_id != n || c->n_array_index != n || c->n_array_spec != n)
		return false;
	if (format && (c->n_pool != n || c->n_submit_time != n || c->n_time_limit_s != n ||
		       c->n_attempts != n || c->n_preemptions != n || c->n_dependency != n ||
		       c->n_cpu_usec != n || c->n_peak_mem != n))
		return false;
	for (size_t i = 0; i < n; i++) {
		nn += c->node_counts[i];
		for (size_t k = 0; k < ntexts; k++)
			if (texts[k][i] >= c->n_strings)
				return false;
	}
	if (nn != c->n_node_names)
		return false;
	for (size_t i = 0; i < nn; i++)
		if (c->node_names[i] >= c->n_strings)
			return false;
	return true;
}

/* The frame's ListReply, checked (with LIST_VIEW_FORMAT's columns if
 * format): NULL (having said why) if it is not one. */
static Hpq__ListReply *list_frame(struct cli *cli, Hpq__Envelope *env, bool format)
{
	Hpq__ListReply *lr = env->body_case == HPQ__ENVELOPE__BODY_LIST_REPLY ? env->list_reply
									       : NULL;

	if (!lr) {
		cli_error(cli, "cannot list the tasks: hpqd answered with an unexpected message");
		return NULL;
	}
	if (!lr->n_tasks && lr->columns && !list_columns_valid(lr->columns, format)) {
		cli_error(cli, "cannot list the tasks: hpqd sent columns that do not agree");
		return NULL;
	}
	return lr;
}

/* The next frame of the reply to id; NULL (having said why) on an error. */
static Hpq__ListReply *list_next_frame(struct cli *cli, uint64_t id, bool format)
{
	Hpq__Envelope *next = NULL;
	int r = hpq_client_next(&cli->client, id, &next);

	if (r != 0) {
		cli_error(cli, "cannot list the tasks: %s",
			  cli->client.errbuf[0] ? cli->client.errbuf : hpq_strerror(r));
		return NULL;
	}
	return list_frame(cli, next, format);
}

/*
 * The rows of a list's frames, kept as they came: frames of tasks, or of
 * columns, whose rows are turned one at a time into the one Task here
 * with the fields of LIST_VIEW_TABLE, so that the output is the same
 * whichever way they came. A list of 100,000 rows once became 100,000
 * Tasks (48 MiB), and faulting that memory in was most of hpq's time.
 * From an hpqd that does not know in_order, the frames are read last to
 * first.
 *
 * The frames are read from the connection as the rows need them. A
 * rewind()'s pass needs them all first; a live one (rewind_live, only
 * for frames in order: a table's widths) reads each frame as it arrives,
 * while hpqd builds the next one, so that only the printing is left once
 * the last frame is in. The last pass (rewind_last: the task table's,
 * which keeps what it prints) forgets each frame once its rows are read,
 * and reads the next into the same memory (hpq_msg_arena_reset), so that
 * hpq does not hold the whole reply. A frame that cannot be read ends
 * the rows, in every pass after it too; err says why.
 */
struct frame_rows {
	struct task_rows rows;
	struct cli *cli;
	uint64_t id;                 /* the request the frames answer */
	bool format;                 /* its columns are LIST_VIEW_FORMAT's */
	Hpq__ListReply **frames;
	size_t nframes;
	bool reverse;
	bool live;                   /* this pass reads the frames as they come */
	bool forget;                 /* ... and forgets them (rewind_last) */
	bool truncated;              /* a frame read says more tasks matched */
	size_t nrows;                /* in the frames read */
	int err;
	size_t f, i, nn;             /* the next row: frame f (in this pass's order), row i */
	Hpq__Task task;
	Hpq__Resources res;
	char **names;                /* the row's node names */
	size_t names_cap;
};

static const Hpq__Task *frame_row(struct frame_rows *fr, const Hpq__ListReply *lr, size_t i)
{
	const Hpq__TaskColumns *c = lr->columns;
	Hpq__Task *t = &fr->task;
	uint32_t nn = c->node_counts[i];

	if (i == 0)
		fr->nn = 0;
	if (nn > fr->names_cap) {
		fr->names_cap = 2 * nn;
		fr->names = xreallocarray(fr->names, fr->names_cap, sizeof(*fr->names));
	}
	for (uint32_t k = 0; k < nn; k++)
		fr->names[k] = c->strings[c->node_names[fr->nn + k]];
	fr->nn += nn;
	/* Every row sets the same fields: the rest stay as initialised. */
	t->id = c->id[i];
	t->name = c->strings[c->name[i]];
	t->team = c->strings[c->team[i]];
	t->user = c->strings[c->user[i]];
	t->class_ = c->strings[c->class_[i]];
	t->state = c->strings[c->state[i]];
	t->reason = c->strings[c->reason[i]];
	t->array_spec = c->strings[c->array_spec[i]];
	t->queue_position = c->queue_position[i];
	t->nodes = c->nodes[i];
	fr->res.gpus = c->gpus[i];
	t->per_node = &fr->res;
	t->n_node_names = nn;
	t->node_names = fr->names;
	t->start_time = c->start_time[i];
	t->end_time = c->end_time[i];
	t->exit_code = c->exit_code[i];
	t->has_exit_code = !!(c->flags[i] & COL_HAS_EXIT_CODE);
	t->has_array = !!(c->flags[i] & COL_HAS_ARRAY);
	t->held = !!(c->flags[i] & COL_HELD);
	t->array_id = c->array_id[i];
	t->array_index = c->array_index[i];
	if (fr->format) {
		t->pool = c->strings[c->pool[i]];
		t->submit_time = c->submit_time[i];
		t->time_limit_s = c->time_limit_s[i];
		t->attempts = c->attempts[i];
		t->preemptions = c->preemptions[i];
		t->dependency = c->strings[c->dependency[i]];
		t->cpu_usec = c->cpu_usec[i];
		t->peak_mem = c->peak_mem[i];
	}
	return t;
}

/* lr among fr's frames, counted. */
static void frame_rows_add(struct frame_rows *fr, Hpq__ListReply *lr)
{
	fr->frames = xreallocarray(fr->frames, fr->nframes + 1, sizeof(*fr->frames));
	fr->frames[fr->nframes++] = lr;
	fr->truncated |= lr->truncated;
	fr->nrows += lr->n_tasks ? lr->n_tasks : lr->columns ? lr->columns->n_id : 0;
}

/* Reads the reply's next frame into fr; false when there is none (the
 * last one came, or reading failed: fr->err). */
static bool frame_rows_more(struct frame_rows *fr)
{
	Hpq__ListReply *lr;

	if (fr->err || !fr->frames[fr->nframes - 1]->more)
		return false;
	if (fr->forget) {
		/* The frames read are gone, and their texts with them. */
		hpq_msg_arena_reset();
		fr->rows.gen++;
		fr->nframes = fr->f = 0;
	}
	if (!(lr = list_next_frame(fr->cli, fr->id, fr->format))) {
		fr->err = CLI_ERR;
		return false;
	}
	frame_rows_add(fr, lr);
	return true;
}

static const Hpq__Task *frame_rows_next(struct task_rows *r)
{
	struct frame_rows *fr = (struct frame_rows *)r;

	if (!fr->live)
		while (frame_rows_more(fr))
			;
	for (; !fr->err; fr->f++, fr->i = 0) {
		const Hpq__ListReply *lr;

		if (fr->f == fr->nframes && !frame_rows_more(fr))
			break;
		lr = fr->frames[fr->reverse ? fr->nframes - 1 - fr->f : fr->f];
		if (lr->n_tasks && fr->i < lr->n_tasks)
			return lr->tasks[fr->i++];
		if (!lr->n_tasks && lr->columns && fr->i < lr->columns->n_id)
			return frame_row(fr, lr, fr->i++);
	}
	return NULL;
}

static void frame_rows_rewind(struct task_rows *r)
{
	struct frame_rows *fr = (struct frame_rows *)r;

	fr->f = fr->i = 0;
	fr->live = false;
}

static void frame_rows_rewind_live(struct task_rows *r)
{
	struct frame_rows *fr = (struct frame_rows *)r;

	fr->f = fr->i = 0;
	fr->live = true;
}

static void frame_rows_rewind_last(struct task_rows *r)
{
	frame_rows_rewind_live(r);
	((struct frame_rows *)r)->forget = true;
}

/*
 * The rows of an in_order reply read as it comes, for output_json, which
 * reads each row once: each frame is printed and forgotten (its memory
 * reused, hpq_msg_arena_reset) before the next is read, so that hpq's
 * memory does not grow with the list. An error ends the rows; err says it.
 */
struct stream_rows {
	struct task_rows rows;
	struct cli *cli;
	uint64_t id;
	Hpq__ListReply *frame;
	size_t i;
	int err;
};

static const Hpq__Task *stream_rows_next(struct task_rows *r)
{
	struct stream_rows *sr = (struct stream_rows *)r;

	while (!sr->err && sr->i >= sr->frame->n_tasks) {
		if (!sr->frame->more)
			return NULL;
		hpq_msg_arena_reset();
		sr->rows.gen++;
		sr->i = 0;
		if (!(sr->frame = list_next_frame(sr->cli, sr->id, false)))
			sr->err = CLI_ERR;
	}
	return sr->err ? NULL : sr->frame->tasks[sr->i++];
}

static int list_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	Hpq__ListReply *first;
	struct frame_rows fr = {
		.rows = { .next = frame_rows_next, .rewind = frame_rows_rewind,
			  .rewind_live = frame_rows_rewind_live,
			  .rewind_last = frame_rows_rewind_last },
	};
	bool all = false, noheader = false;
	static char *active[] = { "active" };
	const char **states = NULL, *format = NULL;
	size_t n_states = 0, cols[TASK_COLUMNS_MAX], ncols = 0;
	int n_state_opts = 0, c, r = CLI_USAGE;
	char err[256];
	uint64_t v;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", list_options)) != -1) {
		switch (c) {
		case OPT_TEAM:
			if (cli_parse_name(cli, "team", optarg) != 0)
				goto out;
			list.team = optarg;
			break;
		case OPT_STATE:
			if (select_add_states(optarg, &states, &n_states, err, sizeof(err)) != 0) {
				cli_usage_error(cli, "%s", err);
				goto out;
			}
			n_state_opts++;
			break;
		case OPT_USER:
			if (cli_parse_user(cli, "--user", optarg) != 0)
				goto out;
			list.user = optarg;
			break;
		case OPT_ALL:
			all = true;
			break;
		case OPT_LIMIT:
			if (cli_parse_uint(cli, "--limit", optarg, 1, UINT32_MAX, &v) != 0)
				goto out;
			list.limit = (uint32_t)v;
			break;
		case OPT_NAME:
			if (cli_parse_name(cli, "task", optarg) != 0)
				goto out;
			list.name = optarg;
			break;
		case OPT_ARRAY:
			if (hpq_parse_uint(optarg, 1, INT64_MAX, &v) < 0) {
				cli_usage_error(cli, "--array takes an array's id (a positive whole "
						"number), not '%s'", optarg);
				goto out;
			}
			list.array_id = v;
			break;
		case OPT_EXPAND:
			list.expand_arrays = true;
			break;
		case OPT_FORMAT:
			if (task_columns_parse(optarg, cols, TASK_COLUMNS_MAX, &ncols, err,
					       sizeof(err)) != 0) {
				cli_usage_error(cli, "%s", err);
				goto out;
			}
			format = optarg;
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
	if (all && n_state_opts) {
		cli_usage_error(cli, "give either --all or --state, not both");
		goto out;
	}
	if (cli->json && (format || noheader)) {
		cli_usage_error(cli, "--format and --noheader are for tables; --json prints "
				"every field");
		goto out;
	}
	if (n_state_opts) {
		list.states = (char **)states;
		list.n_states = n_states;
	} else if (!all) {
		list.states = active;
		list.n_states = 1;
	}

	list.stream = true;
	/* Oldest first, frame after frame: JSON is printed as it comes, and a
	 * table measures and keeps each row as it comes (frame_rows). */
	list.in_order = true;
	/* hpq exits after printing: the reply's tasks need not be freed. */
	hpq_msg_use_arena();
	if (!cli->json) {
		list.view = format ? list_view(cols, ncols) : HPQ__LIST_VIEW__LIST_VIEW_TABLE;
		list.columns = true;
	}
	req.body_case = HPQ__ENVELOPE__BODY_LIST;
	req.list = &list;
	if (list.view == HPQ__LIST_VIEW__LIST_VIEW_FORMAT) {
		/* An hpqd of this protocol from before LIST_VIEW_FORMAT refuses it:
		 * it is asked again for whole tasks. (A list changes nothing, so
		 * asking again after any other failure only says it again.) */
		r = CLI_ERR;
		if (cli_connect(cli) != 0)
			goto out;
		if (hpq_client_call(&cli->client, &req, &reply) != 0) {
			reply = NULL;
			list.view = HPQ__LIST_VIEW__LIST_VIEW_FULL;
			list.columns = false;
		}
	}
	if (!reply &&
	    (r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_LIST_REPLY, "list the tasks", &reply)))
		goto out;
	r = CLI_ERR;
	fr.format = list.view == HPQ__LIST_VIEW__LIST_VIEW_FORMAT;
	if (!(first = list_frame(cli, reply, fr.format)))
		goto out;
	if (cli->json && first->in_order) {
		/* Printed as it comes: the frames are in order. */
		struct stream_rows sr = { { .next = stream_rows_next }, cli, req.id, first, 0, 0 };

		cli_output(cli)->tasks(&cli->out, &sr.rows);
		r = sr.err ? sr.err : CLI_OK;
		goto out;
	}
	hpq__task__init(&fr.task);
	hpq__resources__init(&fr.res);
	fr.cli = cli;
	fr.id = req.id;
	frame_rows_add(&fr, first);
	fr.reverse = !first->in_order;
	if (fr.reverse) /* the frames come last to first */
		fr.rows.rewind_live = fr.rows.rewind_last = NULL;
	if (format) {
		task_table(&cli->out, &fr.rows, cols, ncols, !noheader);
	} else {
		cli->out.noheader = noheader;
		cli_output(cli)->tasks(&cli->out, &fr.rows);
	}
	if (fr.err) {
		r = fr.err;
		goto out;
	}
	if (fr.truncated)
		fprintf(stderr, "hpq: more tasks matched than one reply holds; these are the "
				"newest %zu. Narrow the list with --team, --state, --user "
				"or --limit\n", fr.nrows);
	r = CLI_OK;
out:
	/* The frames are the arena's, freed at exit. */
	free(fr.frames);
	free(fr.names);
	free(states);
	return r;
}

const struct cmd_entry cmd_list_entry = {
	.name = "list",
	.usage = "list [--team T] [--state S]... [--user U] [--name N] [--array ID] [--all] "
		 "[--limit N] [--expand-arrays] [--format COLUMNS] [--noheader] [--json]",
	.summary = "list tasks: the active ones, or those you select",
	.help = "options:\n"
		"  --team T          only tasks of team T\n"
		"  --state S         only tasks in state S: active (pending, running,\n"
		"                    preempting; the default), pending, running, preempting,\n"
		"                    completed, failed, cancelled, timeout or out_of_memory;\n"
		"                    repeat it or give a list (pending,running) for any of them\n"
		"  --user U          only tasks of user U\n"
		"  --name N          only tasks named N\n"
		"  --array ID        only the tasks of array ID\n"
		"  --all             tasks in every state, finished ones too\n"
		"  --limit N         at most N tasks, the newest\n"
		"  --expand-arrays   one row per pending array index, instead of one row\n"
		"                    for an array's pending rest (ID_[5-999%50])\n"
		"  --format COLUMNS  the columns to print, separated by commas\n"
		"                    (e.g. id,name,state,reason,exit,elapsed,nodes)\n"
		"  --noheader        leave out the header row\n"
		"  --json            print a JSON array of tasks\n\n"
		"columns:\n"
		TASK_COLUMNS_HELP,
	.exec = list_exec,
};
