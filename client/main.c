/*
 * main.c: hpq, the command-line client of hpqd. This file holds only the
 * command table and the global options; each command family lives in its
 * own cmd-<name>.c and is found here by its exact name (no abbreviations,
 * so that a new command can never change what an old script meant).
 *
 * Exit status: 0 ok, 1 error, 2 usage (cli.h).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hpq.h"

static const struct cmd_entry *const cmd_table[] = {
	&cmd_submit_entry,     &cmd_list_entry, &cmd_show_entry, &cmd_cancel_entry,
	&cmd_hold_entry,       &cmd_release_entry, &cmd_requeue_entry, &cmd_update_entry,
	&cmd_acct_entry,
	&cmd_checkpoint_entry, &cmd_node_entry, &cmd_team_entry, &cmd_class_entry,
	&cmd_policy_entry,     &cmd_recipe_entry, &cmd_plan_entry,
	&cmd_status_entry,     &cmd_events_entry, &cmd_usage_entry,
	&cmd_top_entry,        &cmd_logs_entry,
	&cmd_version_entry,    &cmd_versions_entry, &cmd_upgrade_check_entry, NULL,
};

static const struct cmd_entry main_entry = {
	.name = "",
	.usage = "[--socket PATH | --server HOST:PORT [--ca-file FILE] [--server-name NAME]\n"
		 "           [--munge-socket PATH] [--insecure]] [--json] COMMAND [ARGS...]\n"
		 "       hpq --help | --version\n"
		 "       hpq help [COMMAND [SUBCOMMAND]]",
	.summary = "hpq is the client of hpqd, the queue daemon of a shared GPU cluster",
	.help = "options (also accepted after COMMAND):\n"
		"  --socket PATH       the daemon's Unix socket; default $HPQ_SOCKET, else\n"
		"                      $HPQ_SERVER, else " HPQ_DEFAULT_SOCKET "\n"
		"  --server HOST:PORT  the daemon's TCP address (port 7420 if omitted)\n"
		"  --munge-socket PATH munged's socket, for the MUNGE credential that proves\n"
		"                      the user over TCP; default $HPQ_MUNGE_SOCKET, else\n"
		"                      " HPQ_DEFAULT_MUNGE_SOCKET "\n"
		"  --ca-file FILE      the cluster CA that hpqd's certificate must chain to\n"
		"                      over TCP (TLS); default $HPQ_CA_FILE, else\n"
		"                      " HPQ_DEFAULT_CA_FILE "\n"
		"  --server-name NAME  the name hpqd's certificate must carry; default the\n"
		"                      host of --server ($HPQ_SERVER_NAME)\n"
		"  --insecure          plain TCP, to an hpqd started --insecure (tests, demos;\n"
		"                      $HPQ_INSECURE=1)\n"
		"  --json              print JSON instead of tables\n"
		"  -h, --help          this help; -V, --version: hpq's version\n",
	.sub = cmd_table,
};

/* hpq help [COMMAND [SUBCOMMAND]] */
static int main_help(int argc, char **argv)
{
	const struct cmd_entry *e = &main_entry;

	for (int i = 1; i < argc; i++) {
		const struct cmd_entry *found = NULL;

		for (const struct cmd_entry *const *p = e->sub; p && *p; p++)
			if (strcmp((*p)->name, argv[i]) == 0)
				found = *p;
		if (!found) {
			fprintf(stderr, "hpq help: no command '%s'; see 'hpq --help'\n", argv[i]);
			return CLI_USAGE;
		}
		e = found;
	}
	cli_help(stdout, e);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"version", no_argument, NULL, 'V'},
		CLI_COMMON_OPTIONS,
	};
	struct cli cli;
	int c, r;

	cli_init(&cli);
	while ((c = cli_getopt(&cli, &main_entry, argc, argv, "+:hV", options)) != -1) {
		switch (c) {
		case CLI_OPT_HELP:
			return CLI_OK;
		case 'V':
			printf("hpq %s (protocol %d)\n", HPQ_VERSION, HPQ_PROTOCOL_VERSION);
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind >= argc) {
		cli_help(stderr, &main_entry);
		return CLI_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0)
		return main_help(argc - optind, argv + optind);
	r = cli_run(&cli, cmd_table, NULL, argc - optind, argv + optind);
	cli_release(&cli);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* A full disk or a closed pipe must not look like success. */
		fprintf(stderr, "hpq: cannot write the output\n");
		return CLI_ERR;
	}
	return r;
}
