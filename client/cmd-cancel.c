/*
 * cmd-cancel.c: `hpq cancel ID...`. All ids go in one request and the
 * daemon answers for each; hpq reports each one and exits 1 if any could
 * not be cancelled, so `hpq cancel $(...)` in a script fails loudly but
 * still cancels everything it can. A running task is acknowledged once
 * the cancel is recorded; it becomes CANCELLED when its agent reports the
 * process gone.
 */
#include <stdlib.h>

#include "cli.h"
#include "msg.h"
#include "xalloc.h"

static const struct option cancel_options[] = {
	CLI_COMMON_OPTIONS,
};

static int cancel_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__CancelRequest cancel = HPQ__CANCEL_REQUEST__INIT;
	Hpq__CancelReply *cr;
	uint64_t *ids = NULL;
	size_t n = 0;
	int c, r = CLI_USAGE;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", cancel_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind >= argc)
		return cli_usage_error(cli, "which tasks? give their ids");
	ids = xcalloc((size_t)(argc - optind), sizeof(*ids));
	for (int i = optind; i < argc; i++)
		if (cli_parse_id(cli, argv[i], &ids[n++]) != 0)
			goto out;

	cancel.ids = ids;
	cancel.n_ids = n;
	req.body_case = HPQ__ENVELOPE__BODY_CANCEL;
	req.cancel = &cancel;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_CANCEL_REPLY, "cancel", &reply);
	if (r != 0)
		goto out;
	cr = reply->cancel_reply;
	cli_output(cli)->cancelled(&cli->out, cr->results, cr->n_results);
	for (size_t i = 0; i < cr->n_results; i++)
		if (cr->results[i]->code != 0)
			r = CLI_ERR;
	/* Every id must have an answer; silence is not success. */
	for (size_t i = 0; i < n; i++) {
		bool seen = false;

		for (size_t k = 0; k < cr->n_results && !seen; k++)
			seen = cr->results[k]->id == ids[i];
		if (!seen)
			r = cli_error(cli, "hpqd did not answer for task %llu",
				      (unsigned long long)ids[i]);
	}
out:
	if (reply)
		hpq_msg_free(reply);
	free(ids);
	return r;
}

const struct cmd_entry cmd_cancel_entry = {
	.name = "cancel",
	.usage = "cancel ID... [--json]",
	.summary = "cancel tasks",
	.help = "Each id gets a line: 'cancelled task ID', or an error on stderr; the exit\n"
		"status is 1 if any task could not be cancelled.\n\n"
		"options:\n"
		"  --json   print a JSON array of {id, ok, error}\n",
	.exec = cancel_exec,
};
