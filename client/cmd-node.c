/*
 * cmd-node.c: `hpq node ...`, the machines of the cluster as hpqd sees
 * them: capacity and use, health and service state, the agent's
 * connection and findings. `node show` picks one node out of the list
 * reply; it needs no request of its own. Administration (drain, resume,
 * repair; administrators only) sends its request, waits for the daemon's
 * Ok (sent after the commit) and prints the node as it is then.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "msg.h"

static const struct option node_options[] = {
	CLI_COMMON_OPTIONS,
};

enum { OPT_REASON = CLI_OPT_FIRST_PRIVATE, OPT_ACTION };

static const struct option node_admin_options[] = {
	{"reason", required_argument, NULL, OPT_REASON},
	{"action", required_argument, NULL, OPT_ACTION},
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

/* Prints node name from a fresh list (after an administrative change). */
static int node_print(struct cli *cli, const char *name)
{
	Hpq__Envelope *reply;
	Hpq__NodeListReply *nl;
	int r;

	if ((r = node_fetch(cli, &reply)) != 0)
		return r;
	nl = reply->node_list_reply;
	for (size_t i = 0; i < nl->n_nodes; i++)
		if (strcmp(nl->nodes[i]->name, name) == 0)
			cli_output(cli)->node(&cli->out, nl->nodes[i]);
	hpq_msg_free(reply);
	return CLI_OK;
}

/* drain, resume and repair: NAME [--reason R] (repair also --action A). */
static int node_admin_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__NodeDrainRequest drain = HPQ__NODE_DRAIN_REQUEST__INIT;
	Hpq__NodeResumeRequest resume = HPQ__NODE_RESUME_REQUEST__INIT;
	Hpq__NodeRepairRequest repair = HPQ__NODE_REPAIR_REQUEST__INIT;
	const char *reason = "", *action = "", *name;
	bool is_repair = !strcmp(e->name, "repair");
	char what[64];
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", node_admin_options)) != -1) {
		switch (c) {
		case OPT_REASON:
			if (strlen(optarg) > 256)
				return cli_usage_error(cli, "--reason is longer than 256 "
						       "characters");
			reason = optarg;
			break;
		case OPT_ACTION:
			if (!is_repair)
				return cli_usage_error(cli, "--action is for 'node repair'");
			if (strcmp(optarg, "reboot") && strcmp(optarg, "replace") &&
			    strcmp(optarg, "none"))
				return cli_usage_error(cli, "invalid --action '%s': use reboot, "
						       "replace or none", optarg);
			action = optarg;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind >= argc)
		return cli_usage_error(cli, "which node? give its name");
	if (optind + 1 < argc)
		return cli_usage_error(cli, "one node at a time; unexpected '%s'",
				       argv[optind + 1]);
	name = argv[optind];
	if (cli_parse_name(cli, "node", name) != 0)
		return CLI_USAGE;
	if (!strcmp(e->name, "drain")) {
		drain.name = (char *)name;
		drain.reason = (char *)reason;
		req.body_case = HPQ__ENVELOPE__BODY_NODE_DRAIN;
		req.node_drain = &drain;
	} else if (!strcmp(e->name, "resume")) {
		resume.name = (char *)name;
		resume.reason = (char *)reason;
		req.body_case = HPQ__ENVELOPE__BODY_NODE_RESUME;
		req.node_resume = &resume;
	} else {
		repair.name = (char *)name;
		repair.reason = (char *)reason;
		repair.action = (char *)action;
		req.body_case = HPQ__ENVELOPE__BODY_NODE_REPAIR;
		req.node_repair = &repair;
	}
	snprintf(what, sizeof(what), "%s node %s", e->name, name);
	if ((r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_OK, what, &reply)) != 0)
		return r;
	hpq_msg_free(reply);
	return node_print(cli, name);
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

static const struct cmd_entry node_drain_entry = {
	.name = "drain",
	.usage = "node drain NAME [--reason R] [--json]",
	.summary = "take a node out of service: no new tasks, running ones finish (admin)",
	.help = "The node is draining until its tasks end, then drained. hpqd never\n"
		"returns a node drained by hand to service; 'hpq node resume' does.\n"
		"options:\n"
		"  --reason R   why (shown with the node and in its events)\n"
		"  --json       print the node as a JSON object\n",
	.exec = node_admin_exec,
};

static const struct cmd_entry node_resume_entry = {
	.name = "resume",
	.usage = "node resume NAME [--reason R] [--json]",
	.summary = "return a node to service (admin)",
	.help = "options:\n"
		"  --reason R   why (shown in the node's events)\n"
		"  --json       print the node as a JSON object\n",
	.exec = node_admin_exec,
};

static const struct cmd_entry node_repair_entry = {
	.name = "repair",
	.usage = "node repair NAME [--reason R] [--action A] [--json]",
	.summary = "repair a node now: requeue its tasks, run the repair command (admin)",
	.help = "The node's tasks are requeued from their newest checkpoints, hpqd runs\n"
		"its [repair] command with the node, the action and the reason, and\n"
		"the node returns to service after its healthy streak.\n"
		"options:\n"
		"  --reason R   why (default: the node's worst finding)\n"
		"  --action A   reboot, replace or none (default: from the finding)\n"
		"  --json       print the node as a JSON object\n",
	.exec = node_admin_exec,
};

static const struct cmd_entry *const node_table[] = {
	&node_list_entry,
	&node_show_entry,
	&node_drain_entry,
	&node_resume_entry,
	&node_repair_entry,
	&cmd_node_revoke_entry,
	&cmd_node_remove_entry,
	&cmd_node_token_entry,
	NULL,
};

const struct cmd_entry cmd_node_entry = {
	.name = "node",
	.usage = "node list|show|drain|resume|repair|revoke|remove|token ...",
	.summary = "look at and administer the nodes of the cluster",
	.sub = node_table,
};
