/*
 * cmd-version.c: `hpq version`, the client's version and protocol and,
 * when the daemon answers, its version and who the daemon thinks we are
 * (the identity it took from the socket's credentials or the Hello). The
 * client's line is printed even when the daemon cannot be reached, and
 * the exit status then says so.
 */
#include "cli.h"
#include "hpq.h"

static const struct option version_options[] = {
	CLI_COMMON_OPTIONS,
};

static int version_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	struct output_version v = {
		.client_version = HPQ_VERSION,
		.client_protocol = HPQ_PROTOCOL_VERSION,
	};
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", version_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	r = cli_connect(cli);
	if (r == 0) {
		v.server_version = cli->client.server_version ? cli->client.server_version : "";
		v.address = cli_address(cli);
		v.user = cli->client.user ? cli->client.user : "";
		v.admin = cli->client.admin;
	}
	cli_output(cli)->version(&cli->out, &v);
	return r;
}

const struct cmd_entry cmd_version_entry = {
	.name = "version",
	.usage = "version [--json]",
	.summary = "show the versions of hpq and hpqd",
	.help = "options:\n"
		"  --json   print {client: {version, protocol}, server: {version, address,\n"
		"           user, admin} or null}\n",
	.exec = version_exec,
};
