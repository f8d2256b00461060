/*
 * cmd-requeue.c: `hpq requeue`: running tasks go back to the queue, as if
 * preempted: they stop, keep their checkpoints, and resume from the newest
 * one when they start again. Ids and filters as hpq hold takes them.
 */
#include "cli.h"
#include "msg.h"
#include "select.h"

static const struct option requeue_options[] = {
	SELECT_OPTIONS,
	CLI_COMMON_OPTIONS,
};

static int requeue_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__RequeueRequest rq = HPQ__REQUEUE_REQUEST__INIT;
	struct select_args s;
	int c, r;

	select_init(&s);
	while ((c = cli_getopt(cli, e, argc, argv, ":h", requeue_options)) != -1) {
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
	rq.select = &s.sel;
	req.body_case = HPQ__ENVELOPE__BODY_REQUEUE;
	req.requeue = &rq;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_CONTROL_REPLY, "requeue the tasks", &reply);
	if (r != 0)
		goto out;
	r = select_report(cli, "requeue", "requeued", reply->control_reply->results,
			  reply->control_reply->n_results);
out:
	if (reply)
		hpq_msg_free(reply);
	select_free(&s);
	return r;
}

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
