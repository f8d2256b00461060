/*
 * cmd-control.c: `hpq hold`, `hpq release` and `hpq requeue`, Slurm's
 * scontrol hold/release/requeue. A held pending task stays in the queue
 * but does not start until it is released; a requeued running task stops
 * as a preempted one does and waits again, keeping its checkpoints. All
 * three take task ids (a whole array, one index, a list of indices) or
 * filters, in one request; the daemon answers for each task it touched or
 * could not, and hpq exits 1 if any failed, as hpq cancel does.
 */
#include "cli.h"
#include "msg.h"
#include "select.h"

enum control_op { OP_HOLD, OP_RELEASE, OP_REQUEUE };

static const struct {
	const char *verb, *done, *what;
} op_words[] = {
	[OP_HOLD] = { "hold", "held", "hold the tasks" },
	[OP_RELEASE] = { "release", "released", "release the tasks" },
	[OP_REQUEUE] = { "requeue", "requeued", "requeue the tasks" },
};

static const struct option control_options[] = {
	SELECT_OPTIONS,
	CLI_COMMON_OPTIONS,
};

static int control_run(struct cli *cli, const struct cmd_entry *e, int argc, char **argv,
		       enum control_op op)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT;
	Hpq__HoldRequest hold = HPQ__HOLD_REQUEST__INIT;
	Hpq__RequeueRequest requeue = HPQ__REQUEUE_REQUEST__INIT;
	struct select_reply reply = { 0 };
	struct select_args s;
	int c, r;

	select_init(&s);
	while ((c = cli_getopt(cli, e, argc, argv, ":h", control_options)) != -1) {
		if (c == CLI_OPT_HELP) {
			r = CLI_OK;
			goto out;
		}
		if ((r = select_option(cli, &s, c, optarg)) != 0) {
			r = CLI_USAGE;
			goto out;
		}
	}
	if ((r = select_operands(cli, &s, argc, argv, optind)) != 0)
		goto out;
	if (op == OP_REQUEUE) {
		requeue.select = &s.sel;
		requeue.stream = true;
		req.body_case = HPQ__ENVELOPE__BODY_REQUEUE;
		req.requeue = &requeue;
	} else {
		hold.select = &s.sel;
		hold.release = op == OP_RELEASE;
		hold.stream = true;
		req.body_case = HPQ__ENVELOPE__BODY_HOLD;
		req.hold = &hold;
	}
	r = select_call(cli, &req, HPQ__ENVELOPE__BODY_CONTROL_REPLY, op_words[op].what, &reply);
	if (r != 0)
		goto out;
	r = select_report(cli, op_words[op].verb, op_words[op].done, reply.results, reply.n);
out:
	select_reply_free(&reply);
	select_free(&s);
	return r;
}

static int hold_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	return control_run(cli, e, argc, argv, OP_HOLD);
}

static int release_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	return control_run(cli, e, argc, argv, OP_RELEASE);
}

static int requeue_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	return control_run(cli, e, argc, argv, OP_REQUEUE);
}

const struct cmd_entry cmd_hold_entry = {
	.name = "hold",
	.usage = "hold [ID...] [--user U] [--team T] [--name N] [--state S] [--array ID] [--json]",
	.summary = "keep pending tasks from starting until they are released",
	.help = "IDs are task ids, array ids (every task of the array), ID_INDEX for one\n"
		"task of an array or ID_[LIST] for several (12_[1-3,7]). Filters select\n"
		"the tasks that match all of them. Only pending tasks can be held.\n"
		"Failures are printed on stderr, then a count; the exit status is 1 if\n"
		"any failed.\n\n"
		"options:\n" SELECT_HELP
		"  --json      print a JSON array of {id, ok, error}\n",
	.exec = hold_exec,
};

const struct cmd_entry cmd_release_entry = {
	.name = "release",
	.usage = "release [ID...] [--user U] [--team T] [--name N] [--state S] [--array ID] "
		 "[--json]",
	.summary = "let held tasks start again",
	.help = "Takes ids and filters as hpq hold does. Failures are printed on stderr,\n"
		"then a count; the exit status is 1 if any failed.\n\n"
		"options:\n" SELECT_HELP
		"  --json      print a JSON array of {id, ok, error}\n",
	.exec = release_exec,
};

const struct cmd_entry cmd_requeue_entry = {
	.name = "requeue",
	.usage = "requeue [ID...] [--user U] [--team T] [--name N] [--state S] [--array ID] "
		 "[--json]",
	.summary = "send running tasks back to the queue, keeping their checkpoints",
	.help = "A requeued task stops as a preempted task does and waits as PENDING;\n"
		"it resumes from its newest checkpoint.\n"
		"Takes ids and filters as hpq hold does. Failures are printed on stderr,\n"
		"then a count; the exit status is 1 if any failed.\n\n"
		"options:\n" SELECT_HELP
		"  --json      print a JSON array of {id, ok, error}\n",
	.exec = requeue_exec,
};
