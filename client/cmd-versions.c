/*
 * cmd-versions.c: `hpq versions`, the release catalogue hpqd reads
 * ([versions] catalog): each release's dates, support status, protocol
 * and schema, which one is the default, and which release this daemon and
 * each of its agents runs (EKS's describe-cluster-versions).
 */
#include "cli.h"
#include "msg.h"

static const struct option versions_options[] = {
	CLI_COMMON_OPTIONS,
};

static int versions_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__VersionsRequest vr = HPQ__VERSIONS_REQUEST__INIT;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", versions_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	req.body_case = HPQ__ENVELOPE__BODY_VERSIONS;
	req.versions = &vr;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_VERSIONS_REPLY, "list the versions", &reply);
	if (r != 0)
		return r;
	cli_output(cli)->versions(&cli->out, reply->versions_reply);
	hpq_msg_free(reply);
	return CLI_OK;
}

const struct cmd_entry cmd_versions_entry = {
	.name = "versions",
	.usage = "versions [--json]",
	.summary = "list hpq releases, their support windows, and who runs which",
	.help = "The catalogue is the file hpqd's [versions] catalog names (shipped as\n"
		"share/hpq/versions.json). STATUS is STANDARD_SUPPORT, EXTENDED_SUPPORT\n"
		"or END_OF_SUPPORT as of today.\n\n"
		"options:\n"
		"  --json   print {releases: [{version, released, end_of_standard_support,\n"
		"           end_of_extended_support, status, protocol, protocol_min, schema,\n"
		"           default}], catalog, catalog_error, daemon: {version, protocol,\n"
		"           schema}, agents: [{node, version, connected}]}\n",
	.exec = versions_exec,
};
