/*
 * cmd-node.c: `hpq node ...`, the machines of the cluster as hpqd sees
 * them: capacity and use, health and service state, the agent's
 * connection and findings. `node show` picks one node out of the list
 * reply; it needs no request of its own. Administration (drain, resume,
 * repair) joins this table when the protocol carries it.
 */
#include <string.h>

#include "cli.h"
#include "msg.h"

static const struct option node_options[] = {
	CLI_COMMON_OPTIONS,
};

/* Fetches every node. Returns 0 with *ret_reply set, or CLI_ERR. */
static int node_fetch(struct cli *cli, Hpq__Envelope **ret_reply)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT;
	Hpq__NodeListRequest list = HPQ__NODE_LIST_REQUEST__INIT;

	req.body_case = HPQ__ENVELOPE__BODY_NODE_LIST;
	req.node_list = &list;
	return cli_call(cli, &req, HPQ__ENVELOPE__BODY_NODE_LIST_REPLY, "list the nodes",
			ret_reply);
}

static int node_list_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope *reply;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", node_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if ((r = node_fetch(cli, &reply)) != 0)
		return r;
	cli_output(cli)->nodes(&cli->out, reply->node_list_reply->nodes,
			       reply->node_list_reply->n_nodes);
	hpq_msg_free(reply);
	return CLI_OK;
}

static int node_show_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope *reply;
	Hpq__NodeListReply *nl;
	const char *name;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", node_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind >= argc)
		return cli_usage_error(cli, "which node? give its name");
	if (optind + 1 < argc)
		return cli_usage_error(cli, "one node at a time; unexpected '%s'",
				       argv[optind + 1]);
	name = argv[optind];
	if (cli_parse_name(cli, "node", name) != 0)
		return CLI_USAGE;
	if ((r = node_fetch(cli, &reply)) != 0)
		return r;
	nl = reply->node_list_reply;
	r = -1;
	for (size_t i = 0; i < nl->n_nodes && r < 0; i++) {
		if (strcmp(nl->nodes[i]->name, name) == 0) {
			cli_output(cli)->node(&cli->out, nl->nodes[i]);
			r = CLI_OK;
		}
	}
	hpq_msg_free(reply);
	if (r < 0)
		return cli_error(cli, "no node '%s'; see 'hpq node list'", name);
	return r;
}

static const struct cmd_entry node_list_entry = {
	.name = "list",
	.usage = "node list [--json]",
	.summary = "list the nodes with their use, health and service state",
	.help = "options:\n"
		"  --json   print a JSON array of nodes\n",
	.exec = node_list_exec,
};

static const struct cmd_entry node_show_entry = {
	.name = "show",
	.usage = "node show NAME [--json]",
	.summary = "show one node with its tasks and health findings",
	.help = "options:\n"
		"  --json   print the node as a JSON object\n",
	.exec = node_show_exec,
};

static const struct cmd_entry *const node_table[] = {
	&node_list_entry,
	&node_show_entry,
	NULL,
};

const struct cmd_entry cmd_node_entry = {
	.name = "node",
	.usage = "node list|show ...",
	.summary = "look at the nodes of the cluster",
	.sub = node_table,
};
