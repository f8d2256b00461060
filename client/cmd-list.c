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
 * frames as it takes, none truncated) and, for a table whose columns need
 * no more, with only the table's fields (LIST_VIEW_TABLE), sent as
 * columns (ListRequest.columns: packed numbers, each text once, turned
 * back into tasks here); --json asks for every field. An hpqd that knows
 * none of these sends one whole frame of tasks, which reads the same way.
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

/* The table hpq list prints when only --noheader is given: output_text's
 * columns, EXIT only when a finished task is listed. */
static size_t list_default_columns(Hpq__Task *const *tasks, size_t n, size_t *cols)
{
	char err[128];
	bool finished = false;
	size_t ncols = 0;

	for (size_t i = 0; i < n && !finished; i++)
		finished = strcmp(tasks[i]->state, "PENDING") && strcmp(tasks[i]->state, "RUNNING") &&
			   strcmp(tasks[i]->state, "PREEMPTING");
	if (task_columns_parse(finished ? "id,name,team,user,class,state,exit,reason,nodes,gpus,"
					  "time,nodelist"
					: "id,name,team,user,class,state,reason,nodes,gpus,time,"
					  "nodelist",
			       cols, TASK_COLUMNS_MAX, &ncols, err, sizeof(err)) != 0)
		hpq_fatal("hpq list: %s", err);
	return ncols;
}

/* Do the columns need only what LIST_VIEW_TABLE carries? */
static bool list_table_view(const size_t *cols, size_t ncols)
{
	static const char *const table[] = {"id", "name", "team", "user", "class", "state",
					    "exit", "reason", "nodes", "gpus", "time", "elapsed",
					    "nodelist", "start", "end", "held"};

	for (size_t i = 0; i < ncols; i++) {
		size_t k = 0;

		while (k < sizeof(table) / sizeof(table[0]) &&
		       strcmp(task_columns[cols[i]].name, table[k]))
			k++;
		if (k == sizeof(table) / sizeof(table[0]))
			return false;
	}
	return true;
}

#define COL_HAS_EXIT_CODE HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HAS_EXIT_CODE
#define COL_HAS_ARRAY HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HAS_ARRAY
#define COL_HELD HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HELD

/* A text of a columns frame, or NULL when the index is out of range. */
static char *list_text(const Hpq__TaskColumns *c, uint32_t i)
{
	return i < c->n_strings ? c->strings[i] : NULL;
}

/*
 * The rows of a ListReply's columns (ListRequest.columns) as tasks with
 * the fields of LIST_VIEW_TABLE, so that the output is the same whichever
 * way they came. The tasks are left to the process's exit, like the
 * reply (hpq_msg_use_arena). Columns that disagree are an error.
 */
static int list_columns_tasks(struct cli *cli, Hpq__ListReply *lr)
{
	const Hpq__TaskColumns *c = lr->columns;
	size_t n = c->n_id, nn = 0;
	Hpq__Task *rows, **ptrs;
	Hpq__Resources *res;
	char **names;

	if (c->n_name != n || c->n_team != n || c->n_user != n || c->n_class_ != n ||
	    c->n_state != n || c->n_reason != n || c->n_queue_position != n || c->n_nodes != n ||
	    c->n_gpus != n || c->n_node_counts != n || c->n_start_time != n ||
	    c->n_end_time != n || c->n_exit_code != n || c->n_flags != n ||
	    c->n_array_id != n || c->n_array_index != n || c->n_array_spec != n)
		goto bad;
	for (size_t i = 0; i < n; i++)
		nn += c->node_counts[i];
	if (nn != c->n_node_names)
		goto bad;
	/* From the reply's arena: its 2 MiB pages fault once where 4 KiB
	 * pages of a Task a row faulted a thousand times (most of the time). */
	rows = hpq_msg_arena_alloc(n * sizeof(*rows));
	res = hpq_msg_arena_alloc(n * sizeof(*res));
	ptrs = hpq_msg_arena_alloc(n * sizeof(*ptrs));
	names = hpq_msg_arena_alloc(nn * sizeof(*names));
	for (size_t i = 0; i < nn; i++)
		if (!(names[i] = list_text(c, c->node_names[i])))
			goto bad;
	nn = 0;
	for (size_t i = 0; i < n; i++) {
		Hpq__Task *t = &rows[i];

		hpq__task__init(t);
		hpq__resources__init(&res[i]);
		t->id = c->id[i];
		t->name = list_text(c, c->name[i]);
		t->team = list_text(c, c->team[i]);
		t->user = list_text(c, c->user[i]);
		t->class_ = list_text(c, c->class_[i]);
		t->state = list_text(c, c->state[i]);
		t->reason = list_text(c, c->reason[i]);
		t->array_spec = list_text(c, c->array_spec[i]);
		if (!t->name || !t->team || !t->user || !t->class_ || !t->state || !t->reason ||
		    !t->array_spec)
			goto bad;
		t->queue_position = c->queue_position[i];
		t->nodes = c->nodes[i];
		res[i].gpus = c->gpus[i];
		t->per_node = &res[i];
		t->n_node_names = c->node_counts[i];
		t->node_names = names + nn;
		nn += c->node_counts[i];
		t->start_time = c->start_time[i];
		t->end_time = c->end_time[i];
		t->exit_code = c->exit_code[i];
		t->has_exit_code = !!(c->flags[i] & COL_HAS_EXIT_CODE);
		t->has_array = !!(c->flags[i] & COL_HAS_ARRAY);
		t->held = !!(c->flags[i] & COL_HELD);
		t->array_id = c->array_id[i];
		t->array_index = c->array_index[i];
		ptrs[i] = t;
	}
	lr->n_tasks = n;
	lr->tasks = ptrs;
	return 0;
bad:
	/* What was allocated goes with the process, which ends with this error. */
	return cli_error(cli, "cannot list the tasks: hpqd sent columns that do not agree");
}

/*
 * Reads the rest of a streamed reply into *frames (the first is there
 * already), then points *ret_tasks at every task, oldest first: frames
 * come newest first, each oldest first within (ListReply.more). Frames
 * of columns are turned into tasks first.
 */
static int list_receive(struct cli *cli, uint64_t id, Hpq__Envelope ***frames, size_t *nframes,
			Hpq__Task ***ret_tasks, size_t *ret_n, bool *truncated)
{
	size_t n = 0, k = 0;
	Hpq__Task **tasks;

	while ((*frames)[*nframes - 1]->list_reply->more) {
		Hpq__Envelope *next = NULL;
		int r = hpq_client_next(&cli->client, id, &next);

		if (r != 0)
			return cli_error(cli, "cannot list the tasks: %s",
					 cli->client.errbuf[0] ? cli->client.errbuf
							       : hpq_strerror(r));
		if (next->body_case != HPQ__ENVELOPE__BODY_LIST_REPLY) {
			hpq_msg_free(next);
			return cli_error(cli, "cannot list the tasks: hpqd answered with an "
					 "unexpected message");
		}
		*frames = xreallocarray(*frames, *nframes + 1, sizeof(**frames));
		(*frames)[(*nframes)++] = next;
	}
	for (size_t i = 0; i < *nframes; i++) {
		Hpq__ListReply *lr = (*frames)[i]->list_reply;

		if (lr->columns && !lr->n_tasks) {
			int r = list_columns_tasks(cli, lr);

			if (r != 0)
				return r;
		}
		n += (*frames)[i]->list_reply->n_tasks;
		*truncated |= (*frames)[i]->list_reply->truncated;
	}
	tasks = xcalloc(n ? n : 1, sizeof(*tasks));
	for (size_t i = *nframes; i-- > 0;) {
		const Hpq__ListReply *lr = (*frames)[i]->list_reply;

		if (lr->n_tasks)     /* an empty frame has no array at all */
			memcpy(tasks + k, lr->tasks, lr->n_tasks * sizeof(*tasks));
		k += lr->n_tasks;
	}
	*ret_tasks = tasks;
	*ret_n = n;
	return 0;
}

static int list_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply = NULL, **frames = NULL;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	Hpq__Task **tasks = NULL;
	size_t ntasks = 0, nframes = 0;
	bool all = false, noheader = false, truncated = false;
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
	/* hpq exits after printing: the reply's tasks need not be freed. */
	hpq_msg_use_arena();
	if (!cli->json && (!format || list_table_view(cols, ncols))) {
		list.view = HPQ__LIST_VIEW__LIST_VIEW_TABLE;
		list.columns = true;
	}
	req.body_case = HPQ__ENVELOPE__BODY_LIST;
	req.list = &list;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_LIST_REPLY, "list the tasks", &reply);
	if (r != 0)
		goto out;
	frames = xcalloc(1, sizeof(*frames));
	frames[nframes++] = reply;
	r = list_receive(cli, req.id, &frames, &nframes, &tasks, &ntasks, &truncated);
	if (r != 0)
		goto out;
	if (format || noheader) {
		if (!format)
			ncols = list_default_columns(tasks, ntasks, cols);
		task_table(&cli->out, tasks, ntasks, cols, ncols, !noheader);
	} else {
		cli_output(cli)->tasks(&cli->out, tasks, ntasks);
	}
	if (truncated)
		fprintf(stderr, "hpq: more tasks matched than one reply holds; these are the "
				"newest %zu. Narrow the list with --team, --state, --user "
				"or --limit\n", ntasks);
	r = CLI_OK;
out:
	for (size_t i = 0; i < nframes; i++)
		hpq_msg_free(frames[i]);
	free(frames);
	free(tasks);
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
