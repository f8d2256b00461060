/*
 * cmd-node-join.c: `hpq node token create|list|delete`, `hpq node
 * revoke` and `hpq node remove`, how administrators let machines join the
 * cluster and put them out of it again (docs/security.md, "Nodes"). A token is printed once, at
 * its creation, with the CA hash the joining agent pins and the command
 * that joins; hpqd keeps only a hash of its secret.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "msg.h"
#include "output.h"

enum { OPT_POOL = CLI_OPT_FIRST_PRIVATE, OPT_TTL, OPT_USES };

static const struct option token_create_options[] = {
	{"pool", required_argument, NULL, OPT_POOL},
	{"ttl", required_argument, NULL, OPT_TTL},
	{"uses", required_argument, NULL, OPT_USES},
	CLI_COMMON_OPTIONS,
};

static const struct option plain_options[] = {
	CLI_COMMON_OPTIONS,
};

static int token_create_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__TokenCreateRequest tc = HPQ__TOKEN_CREATE_REQUEST__INIT;
	const Hpq__TokenCreateReply *t;
	char when[64];
	uint64_t v;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", token_create_options)) != -1) {
		switch (c) {
		case OPT_POOL:
			if (cli_parse_name(cli, "pool", optarg) != 0)
				return CLI_USAGE;
			tc.pool = optarg;
			break;
		case OPT_TTL:
			if (cli_parse_duration(cli, "--ttl", optarg, &v) != 0)
				return CLI_USAGE;
			if (v < 1 || v > 30 * 86400)
				return cli_usage_error(cli, "--ttl must be 1s to 30d");
			tc.ttl_s = v;
			break;
		case OPT_USES:
			if (cli_parse_uint(cli, "--uses", optarg, 1, 10000, &v) != 0)
				return CLI_USAGE;
			tc.uses = (uint32_t)v;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	req.body_case = HPQ__ENVELOPE__BODY_TOKEN_CREATE;
	req.token_create = &tc;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_TOKEN_CREATE_REPLY, "make a join token",
		     &reply);
	if (r != 0)
		return r;
	t = reply->token_create_reply;
	if (cli->json) {
		json_t *o = json_object();

		json_object_set_new(o, "token", json_string(t->token));
		json_object_set_new(o, "ca_hash", json_string(t->ca_hash));
		json_object_set_new(o, "expires", json_integer(t->expires_ms / 1000));
		json_object_set_new(o, "uses", json_integer(t->uses));
		json_object_set_new(o, "pool", json_string(t->pool));
		json_dumpf(o, cli->out.out, JSON_INDENT(2));
		fputc('\n', cli->out.out);
		json_decref(o);
	} else {
		fprintf(cli->out.out,
			"token:    %s\n"
			"ca-hash:  %s\n"
			"expires:  %s\n"
			"uses:     %u\n"
			"pool:     %s\n"
			"\n"
			"Join a machine with (as root, on that machine):\n"
			"  hpq-agent --server HOST:PORT --name NODE --join %s \\\n"
			"            --ca-hash %s\n"
			"The token is shown only now: hpqd keeps only a hash of it.\n",
			t->token, t->ca_hash, output_time_local(t->expires_ms, when, sizeof(when)),
			t->uses, *t->pool ? t->pool : "(the agent's own)", t->token, t->ca_hash);
	}
	hpq_msg_free(reply);
	return CLI_OK;
}

static int token_list_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__TokenListRequest tl = HPQ__TOKEN_LIST_REQUEST__INIT;
	const Hpq__TokenListReply *l;
	char made[64], exp[64];
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", plain_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	req.body_case = HPQ__ENVELOPE__BODY_TOKEN_LIST;
	req.token_list = &tl;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_TOKEN_LIST_REPLY, "list the join tokens",
		     &reply);
	if (r != 0)
		return r;
	l = reply->token_list_reply;
	if (cli->json) {
		json_t *a = json_array();

		for (size_t i = 0; i < l->n_tokens; i++) {
			const Hpq__JoinToken *t = l->tokens[i];
			json_t *o = json_object();

			json_object_set_new(o, "id", json_string(t->id));
			json_object_set_new(o, "pool", json_string(t->pool));
			json_object_set_new(o, "expires", json_integer(t->expires_ms / 1000));
			json_object_set_new(o, "uses_left", json_integer(t->uses_left));
			json_object_set_new(o, "created_by", json_string(t->created_by));
			json_object_set_new(o, "created", json_integer(t->created_ms / 1000));
			json_array_append_new(a, o);
		}
		json_dumpf(a, cli->out.out, JSON_INDENT(2));
		fputc('\n', cli->out.out);
		json_decref(a);
	} else {
		fprintf(cli->out.out, "%-12s  %-16s  %-9s  %-19s  %-19s  %s\n", "ID", "POOL",
			"USES LEFT", "CREATED", "EXPIRES", "BY");
		for (size_t i = 0; i < l->n_tokens; i++) {
			const Hpq__JoinToken *t = l->tokens[i];

			fprintf(cli->out.out, "%-12s  %-16s  %-9u  %-19s  %-19s  %s\n", t->id,
				*t->pool ? t->pool : "-", t->uses_left,
				output_time_local(t->created_ms, made, sizeof(made)),
				output_time_local(t->expires_ms, exp, sizeof(exp)), t->created_by);
		}
	}
	hpq_msg_free(reply);
	return CLI_OK;
}

/* token delete ID, revoke NAME and remove NAME: one operand, an Ok back. */
static int one_name_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__TokenDeleteRequest td = HPQ__TOKEN_DELETE_REQUEST__INIT;
	Hpq__NodeRevokeRequest nr = HPQ__NODE_REVOKE_REQUEST__INIT;
	Hpq__NodeRemoveRequest rm = HPQ__NODE_REMOVE_REQUEST__INIT;
	bool remove = !strcmp(e->name, "remove");
	bool revoke = !strcmp(e->name, "revoke") || remove;
	char what[128];
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", plain_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind >= argc)
		return cli_usage_error(cli, revoke ? "which node? give its name"
						   : "which token? give its ID (hpq node token list)");
	if (optind + 1 < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if (revoke) {
		if (cli_parse_name(cli, "node", argv[optind]) != 0)
			return CLI_USAGE;
		nr.name = rm.name = argv[optind];
		if (remove) {
			req.body_case = HPQ__ENVELOPE__BODY_NODE_REMOVE;
			req.node_remove = &rm;
		} else {
			req.body_case = HPQ__ENVELOPE__BODY_NODE_REVOKE;
			req.node_revoke = &nr;
		}
		snprintf(what, sizeof(what), "%s node %s", e->name, argv[optind]);
	} else {
		if (strlen(argv[optind]) > 32 ||
		    strspn(argv[optind], "0123456789abcdef") != strlen(argv[optind]))
			return cli_usage_error(cli, "'%.40s' is not a token ID (12 hex digits; "
					       "hpq node token list)", argv[optind]);
		td.id = argv[optind];
		req.body_case = HPQ__ENVELOPE__BODY_TOKEN_DELETE;
		req.token_delete = &td;
		snprintf(what, sizeof(what), "delete join token %s", argv[optind]);
	}
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_OK, what, &reply);
	if (r != 0)
		return r;
	hpq_msg_free(reply);
	if (!cli->json)
		fprintf(cli->out.out, remove ? "node %s removed from the cluster\n"
				      : revoke ? "node %s: certificates revoked; it can come back "
						 "only by joining with a new token\n"
					       : "join token %s deleted\n", argv[optind]);
	return CLI_OK;
}

static const struct cmd_entry token_create_entry = {
	.name = "create",
	.usage = "node token create [--pool P] [--ttl D] [--uses N] [--json]",
	.summary = "make a bootstrap token that lets machines join as nodes (admin)",
	.help = "Prints the token, once, and the SHA-256 hash of the cluster CA that the\n"
		"joining agent pins: hpq-agent --join TOKEN --ca-hash HASH.\n"
		"options:\n"
		"  --pool P   nodes that join with it belong to pool P (default: the pool\n"
		"             their agent says)\n"
		"  --ttl D    it expires after D (default 1h, [tls] token_ttl; up to 30d)\n"
		"  --uses N   it lets N machines join (default 1)\n"
		"  --json     print the token as a JSON object\n",
	.exec = token_create_exec,
};

static const struct cmd_entry token_list_entry = {
	.name = "list",
	.usage = "node token list [--json]",
	.summary = "list the join tokens that have not expired, without their secrets (admin)",
	.help = "options:\n"
		"  --json   print a JSON array\n",
	.exec = token_list_exec,
};

static const struct cmd_entry token_delete_entry = {
	.name = "delete",
	.usage = "node token delete ID",
	.summary = "delete a join token before it expires (admin)",
	.exec = one_name_exec,
};

static const struct cmd_entry *const token_table[] = {
	&token_create_entry,
	&token_list_entry,
	&token_delete_entry,
	NULL,
};

const struct cmd_entry cmd_node_token_entry = {
	.name = "token",
	.usage = "node token create|list|delete ...",
	.summary = "bootstrap tokens with which machines join the cluster (admin)",
	.sub = token_table,
};

const struct cmd_entry cmd_node_revoke_entry = {
	.name = "revoke",
	.usage = "node revoke NAME",
	.summary = "refuse a node's certificates from now on and disconnect it (admin)",
	.help = "The node's agent is disconnected and its certificates are refused from\n"
		"then on. The same machine, or a new one, comes back under that name only\n"
		"by joining with a new token (hpq node token create).\n",
	.exec = one_name_exec,
};

const struct cmd_entry cmd_node_remove_entry = {
	.name = "remove",
	.usage = "node remove NAME",
	.summary = "take a drained node out of the cluster for good (admin)",
	.help = "The node must be drained (hpq node drain), hold no task, and have no\n"
		"agent connected (stop it, or hpq node revoke it). Its row, its place in\n"
		"hpq status and its metrics go; an agent of that name that registers later\n"
		"is a new node.\n",
	.exec = one_name_exec,
};
