/*
 * cmd-cancel.c: `hpq cancel ID...`. All ids go in one request and the
 * daemon answers for each; hpq reports each one and exits 1 if any could
 * not be cancelled, so `hpq cancel $(...)` in a script fails loudly but
 * still cancels everything it can. A running task is acknowledged once
 * the cancel is recorded; it becomes CANCELLED when its agent reports the
 * process gone.
 *
 * Filters (--user, --team, --name, --state, --array) and array ids
 * (12_5, 12_[1-3]) go in CancelRequest.select. Plain ids alone keep the
 * older `ids` field, so that an hpqd without selectors still cancels
 * them. Nothing at all is a usage error, never "cancel everything".
 */
#include <stdlib.h>

#include "cli.h"
#include "msg.h"
#include "select.h"
#include "xalloc.h"

static const struct option cancel_options[] = {
	SELECT_OPTIONS,
	CLI_COMMON_OPTIONS,
};

static int cancel_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT;
	Hpq__CancelRequest cancel = HPQ__CANCEL_REQUEST__INIT;
	Hpq__CancelResult **res;
	struct select_reply reply = { 0 };
	struct select_args s;
	uint64_t *ids = NULL;
	size_t n = 0;
	bool array = false;          /* hpqd answered for tasks not named */
	int c, r;

	select_init(&s);
	while ((c = cli_getopt(cli, e, argc, argv, ":h", cancel_options)) != -1) {
		if (c == CLI_OPT_HELP) {
			r = CLI_OK;
			goto out;
		}
		if (select_option(cli, &s, c, optarg) != 0) {
			r = CLI_USAGE;
			goto out;
		}
	}
	if ((r = select_operands(cli, &s, argc, argv, optind)) != 0)
		goto out;
	if (s.filtered || s.ranges) {
		cancel.select = &s.sel;
	} else {
		ids = xcalloc(s.n_ids, sizeof(*ids));
		for (size_t i = 0; i < s.n_ids; i++)
			if (cli_parse_id(cli, s.ids[i], &ids[n++]) != 0) {
				r = CLI_USAGE;
				goto out;
			}
		cancel.ids = ids;
		cancel.n_ids = n;
	}
	cancel.stream = true;
	req.body_case = HPQ__ENVELOPE__BODY_CANCEL;
	req.cancel = &cancel;
	r = select_call(cli, &req, HPQ__ENVELOPE__BODY_CANCEL_REPLY, "cancel", &reply);
	if (r != 0)
		goto out;
	res = reply.results;
	if (cancel.select && !cli->json) {
		/* Filters may match many tasks: failures and a count, as hpq hold. */
		r = select_report(cli, "cancel", "cancelled", res, reply.n);
		goto out;
	}
	cli_output(cli)->cancelled(&cli->out, res, reply.n);
	for (size_t i = 0; i < reply.n; i++)
		if (res[i]->code != 0)
			r = CLI_ERR;
	/* Every id must have an answer; silence is not success. An array's id
	 * is answered for by its tasks (hpqd cancels the whole array), whose
	 * results need not name it: then the ids cannot be told apart. */
	for (size_t k = 0; k < reply.n && !array; k++) {
		bool named = false;

		for (size_t i = 0; i < n && !named; i++)
			named = res[k]->id == ids[i];
		array = !named;
	}
	for (size_t i = 0; i < n && !array; i++) {
		bool seen = false;

		for (size_t k = 0; k < reply.n && !seen; k++)
			seen = res[k]->id == ids[i];
		if (!seen)
			r = cli_error(cli, "hpqd did not answer for task %llu",
				      (unsigned long long)ids[i]);
	}
out:
	select_reply_free(&reply);
	free(ids);
	select_free(&s);
	return r;
}

const struct cmd_entry cmd_cancel_entry = {
	.name = "cancel",
	.usage = "cancel [ID...] [--user U] [--team T] [--name N] [--state S] [--array ID] "
		 "[--json]",
	.summary = "cancel tasks",
	.help = "IDs are task ids, array ids (every task of the array), ID_INDEX for one\n"
		"task of an array or ID_[LIST] for several (12_[1-3,7]). Filters select\n"
		"the tasks that match all of them. Give at least an id or a filter: to\n"
		"cancel all your tasks, use --user $USER.\n\n"
		"Plain ids get a line each: 'cancelled task ID', or an error on stderr;\n"
		"with filters or array ids, the failures and then a count. The exit\n"
		"status is 1 if any task could not be cancelled.\n\n"
		"options:\n" SELECT_HELP
		"  --json      print a JSON array of {id, ok, error}\n",
	.exec = cancel_exec,
};
