/*
 * cmd-upgrade.c: `hpq upgrade-check`, upgrade insights (EKS's): hpqd runs
 * its table of checks (daemon/upgrade.c) against a release of the
 * catalogue and this prints each check's id, status, description, the
 * objects it found and the recommendation. The exit status is the worst
 * status, so that a script can gate an upgrade on it: 0 every check
 * PASSING, 3 a WARNING at worst, 4 an ERROR (1 and 2 keep their meaning:
 * the checks could not be run, a usage error).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "msg.h"

enum {
	OPT_TARGET = CLI_OPT_FIRST_PRIVATE,
};

#define EXIT_WARNING 3
#define EXIT_ERROR 4

static const struct option upgrade_options[] = {
	{"target", required_argument, NULL, OPT_TARGET},
	CLI_COMMON_OPTIONS,
};

static const char *str(const char *s)
{
	return s ? s : "";
}

static void print_json(const Hpq__UpgradeCheckReply *r)
{
	json_t *v = json_object(), *a = json_array();

	for (size_t i = 0; i < r->n_checks; i++) {
		const Hpq__UpgradeCheck *c = r->checks[i];
		json_t *e = json_object(), *aff = json_array();

		for (size_t k = 0; k < c->n_affected; k++)
			json_array_append_new(aff, output_json_text(c->affected[k],
								    strlen(c->affected[k])));
		json_object_set_new(e, "id", json_string(str(c->id)));
		json_object_set_new(e, "status", json_string(str(c->status)));
		json_object_set_new(e, "description", output_json_text(str(c->description),
								       strlen(str(c->description))));
		json_object_set_new(e, "affected", aff);
		json_object_set_new(e, "recommendation",
				    output_json_text(str(c->recommendation),
						     strlen(str(c->recommendation))));
		json_array_append_new(a, e);
	}
	json_object_set_new(v, "daemon_version", json_string(str(r->daemon_version)));
	json_object_set_new(v, "target", json_string(str(r->target)));
	json_object_set_new(v, "catalog", output_json_text(str(r->catalog), strlen(str(r->catalog))));
	json_object_set_new(v, "checks", a);
	json_dumpf(v, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(v);
}

static void print_text(const Hpq__UpgradeCheckReply *r)
{
	printf("upgrade of hpqd %s to %s (catalogue %s)\n\n", str(r->daemon_version),
	       str(r->target), str(r->catalog));
	for (size_t i = 0; i < r->n_checks; i++) {
		const Hpq__UpgradeCheck *c = r->checks[i];

		printf("%-8s %s\n         %s\n", str(c->status), str(c->id), str(c->description));
		for (size_t k = 0; k < c->n_affected; k++)
			printf("         - %s\n", c->affected[k]);
		if (*str(c->recommendation))
			printf("         recommendation: %s\n", c->recommendation);
	}
}

static int upgrade_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__UpgradeCheckRequest ur = HPQ__UPGRADE_CHECK_REQUEST__INIT;
	const Hpq__UpgradeCheckReply *rep;
	int c, r, worst = CLI_OK;

	ur.target = (char *)"";
	while ((c = cli_getopt(cli, e, argc, argv, ":h", upgrade_options)) != -1) {
		switch (c) {
		case OPT_TARGET:
			if (!*optarg || strlen(optarg) >= 32 || strspn(optarg, "0123456789.") !=
								      strlen(optarg))
				return cli_usage_error(cli, "--target takes a release's version "
						       "(MAJOR.MINOR.PATCH, as hpq versions lists "
						       "them), not '%.40s'", optarg);
			ur.target = optarg;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	req.body_case = HPQ__ENVELOPE__BODY_UPGRADE_CHECK;
	req.upgrade_check = &ur;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_UPGRADE_CHECK_REPLY, "check the upgrade",
		     &reply);
	if (r != 0)
		return r;
	rep = reply->upgrade_check_reply;
	if (cli->json)
		print_json(rep);
	else
		print_text(rep);
	for (size_t i = 0; i < rep->n_checks; i++) {
		if (!strcmp(str(rep->checks[i]->status), "ERROR"))
			worst = EXIT_ERROR;
		else if (!strcmp(str(rep->checks[i]->status), "WARNING") && worst != EXIT_ERROR)
			worst = EXIT_WARNING;
	}
	hpq_msg_free(reply);
	return worst;
}

const struct cmd_entry cmd_upgrade_check_entry = {
	.name = "upgrade-check",
	.usage = "upgrade-check [--target VERSION] [--json]",
	.summary = "check what an upgrade to a release would break or disrupt",
	.help = "hpqd runs each check against the target release of its catalogue\n"
		"([versions] catalog; hpq versions lists it) and the cluster as it is:\n"
		"  agent-version-skew   agents outside the target's protocol window\n"
		"  client-version-skew  this hpq outside it\n"
		"  deprecated-use       deprecated protocol versions, request fields and\n"
		"                       config keys used in the last 30 days, by whom\n"
		"  schema-migrations    the target's migrations: free space, a fresh backup\n"
		"  node-health          unhealthy, draining or unreachable nodes\n"
		"  disrupted-work       running non-preemptible or unsaved tasks\n"
		"  config-keys          hpqd.conf keys the target does not know\n"
		"Each is PASSING, WARNING or ERROR. The upgrade order is hpqd, then the\n"
		"agents, then hpq (docs/upgrades.md).\n\n"
		"options:\n"
		"  --target VERSION  the release to check against; default: the\n"
		"                    catalogue's default release\n"
		"  --json            print {daemon_version, target, catalog, checks: [{id,\n"
		"                    status, description, affected: [...],\n"
		"                    recommendation}]}\n\n"
		"exit status: 0 all PASSING, 3 a WARNING at worst, 4 an ERROR; 1 when the\n"
		"checks could not run (an unknown target, a malformed catalogue).\n",
	.exec = upgrade_exec,
};
