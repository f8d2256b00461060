/*
 * cli.c: the machinery every command shares (see cli.h): dispatch through
 * the command tables, --help text, option parsing with the common options
 * folded in, value parsers that explain what they expected, and the one
 * place that connects to hpqd and turns a failed call into a message.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "error.h"
#include "escape.h"
#include "hpq.h"
#include "msg.h"
#include "parse.h"
#include "xalloc.h"

void cli_init(struct cli *cli)
{
	const char *no_colour = getenv("NO_COLOR");
	const char *term = getenv("TERM");

	memset(cli, 0, sizeof(*cli));
	cli->cmd = "";
	cli->out.out = stdout;
	cli->out.err = stderr;
	cli->out.now_ms = hpq_now_ms();
	/* https://no-color.org: any non-empty NO_COLOR turns colour off. */
	cli->out.colour = isatty(STDOUT_FILENO) && !(no_colour && no_colour[0]) &&
			  !(term && strcmp(term, "dumb") == 0);
}

void cli_release(struct cli *cli)
{
	if (cli->connected)
		hpq_client_close(&cli->client);
	cli->connected = false;
}

const struct output *cli_output(const struct cli *cli)
{
	return cli->json ? &output_json : &output_text;
}

void cli_help(FILE *f, const struct cmd_entry *e)
{
	fprintf(f, "usage: hpq %s\n", e->usage);
	if (e->summary)
		fprintf(f, "\n%s.\n", e->summary);
	if (e->sub) {
		fprintf(f, "\ncommands:\n");
		for (const struct cmd_entry *const *s = e->sub; *s; s++)
			fprintf(f, "  %-12s %s\n", (*s)->name, (*s)->summary);
	}
	if (e->help)
		fprintf(f, "\n%s", e->help);
	if (e->sub)
		fprintf(f, "\nsee 'hpq %s%sCOMMAND --help' for one of them\n", e->name,
			e->name[0] ? " " : "");
}

/* Edit distance, to suggest the command a typo meant. */
static size_t cli_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[32], prev, tmp;

	if (lb >= sizeof(row) / sizeof(row[0]))
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = prev + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			prev = tmp;
		}
	}
	return row[lb];
}

static int cli_unknown(const struct cmd_entry *const *table, const char *family, const char *name)
{
	const char *best = NULL;
	size_t best_d = 3; /* suggest only close matches */

	for (const struct cmd_entry *const *e = table; *e; e++) {
		size_t d = cli_distance(name, (*e)->name);
		if (d < best_d) {
			best_d = d;
			best = (*e)->name;
		}
	}
	if (family)
		fprintf(stderr, "hpq %s: '%s' is not a %s command", family, name, family);
	else
		fprintf(stderr, "hpq: '%s' is not an hpq command", name);
	if (best)
		fprintf(stderr, "; did you mean '%s'?\n", best);
	else
		fprintf(stderr, "; see 'hpq %s%s--help'\n", family ? family : "",
			family ? " " : "");
	return CLI_USAGE;
}

int cli_run(struct cli *cli, const struct cmd_entry *const *table, const char *family, int argc,
	    char **argv)
{
	const struct cmd_entry *e = NULL;

	for (const struct cmd_entry *const *p = table; *p; p++)
		if (strcmp((*p)->name, argv[0]) == 0)
			e = *p;
	if (!e)
		return cli_unknown(table, family, argv[0]);
	if (!e->sub) {
		static char name[64];

		snprintf(name, sizeof(name), "%s%s%s", family ? family : "", family ? " " : "",
			 e->name);
		cli->cmd = name;
		return e->exec(cli, e, argc, argv);
	}
	if (argc < 2) {
		cli_help(stderr, e);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		cli_help(stdout, e);
		return CLI_OK;
	}
	return cli_run(cli, e->sub, e->name, argc - 1, argv + 1);
}

int cli_usage_error(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hpq %s: ", cli->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nsee 'hpq %s --help'\n", cli->cmd);
	return CLI_USAGE;
}

int cli_error(struct cli *cli, const char *fmt, ...)
{
	char *msg, *shown;
	va_list ap;

	/* Errors carry the daemon's words, which may quote other users' data. */
	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	shown = hpq_escape(msg);
	fprintf(stderr, "hpq: %s\n", shown);
	free(shown);
	free(msg);
	return CLI_ERR;
}

/* Sets the daemon address from --socket or --server. Returns 0, or
 * CLI_USAGE after saying why the value cannot be an address. */
static int cli_set_addr(struct cli *cli, int opt, const char *arg)
{
	static char path[4096];

	if (arg[0] == '\0')
		return cli_usage_error(cli, "%s needs a value",
				       opt == CLI_OPT_SOCKET ? "--socket" : "--server");
	if (opt == CLI_OPT_SERVER && strchr(arg, '/'))
		return cli_usage_error(cli, "--server takes HOST:PORT, not a path ('%s'); "
				       "use --socket for a Unix socket", arg);
	if (opt == CLI_OPT_SOCKET && !strchr(arg, '/')) {
		/* The client library tells paths from HOST:PORT by a '/'. */
		snprintf(path, sizeof(path), "./%s", arg);
		arg = path;
	}
	cli->addr = arg;
	return 0;
}

/* --ca-file, --server-name and --insecure, for the client library. */
static int cli_set_env(struct cli *cli, int opt, const char *arg)
{
	const char *var = opt == CLI_OPT_CA_FILE	? "HPQ_CA_FILE"
			  : opt == CLI_OPT_SERVER_NAME ? "HPQ_SERVER_NAME"
						       : "HPQ_INSECURE";

	if (opt == CLI_OPT_INSECURE)
		arg = "1";
	else if (!arg[0] || strlen(arg) > 4096) {
		cli_usage_error(cli, "--%s needs a value", opt == CLI_OPT_CA_FILE ? "ca-file"
										  : "server-name");
		return -1;
	}
	if (setenv(var, arg, 1) != 0) {
		cli_error(cli, "cannot set %s: %s", var, strerror(errno));
		return -1;
	}
	return 0;
}

int cli_getopt(struct cli *cli, const struct cmd_entry *e, int argc, char **argv,
	       const char *shortopts, const struct option *longopts)
{
	int c, index = -1;

	if (cli->opt_argv != argv) {
		/* A new argument vector: optind 0 makes glibc reinitialise. */
		cli->opt_argv = argv;
		optind = 0;
		opterr = 0;
	}
	for (;;) {
		index = -1;
		c = getopt_long(argc, argv, shortopts, longopts, &index);
		switch (c) {
		case 'h':
		case CLI_OPT_HELP:
			cli_help(stdout, e);
			return CLI_OPT_HELP;
		case CLI_OPT_JSON:
			cli->json = true;
			continue;
		case CLI_OPT_SOCKET:
		case CLI_OPT_SERVER:
			if (cli_set_addr(cli, c, optarg) != 0)
				return CLI_OPT_BAD;
			continue;
		case CLI_OPT_CA_FILE:
		case CLI_OPT_SERVER_NAME:
		case CLI_OPT_INSECURE:
			/* The client library reads these from the environment. */
			if (cli_set_env(cli, c, optarg) != 0)
				return CLI_OPT_BAD;
			continue;
		case CLI_OPT_MUNGE_SOCKET:
			/* The client library asks munged there, over TCP. */
			if (!optarg[0] ||
			    strlen(optarg) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
				cli_usage_error(cli, "--munge-socket takes the path of munged's "
						"socket (under 108 bytes), not '%.200s'", optarg);
				return CLI_OPT_BAD;
			}
			if (setenv("HPQ_MUNGE_SOCKET", optarg, 1) != 0) {
				cli_error(cli, "cannot set HPQ_MUNGE_SOCKET: %s", strerror(errno));
				return CLI_OPT_BAD;
			}
			continue;
		case ':':
			cli_usage_error(cli, "option '%s' needs a value", argv[optind - 1]);
			return CLI_OPT_BAD;
		case '?':
			if (optopt && optopt < CLI_OPT_HELP && optopt != '?')
				cli_usage_error(cli, "unknown option '-%c'", optopt);
			else
				cli_usage_error(cli, "unknown option '%s'", argv[optind - 1]);
			return CLI_OPT_BAD;
		default:
			return c;
		}
	}
}

int cli_parse_uint(struct cli *cli, const char *opt, const char *arg, uint64_t min, uint64_t max,
		   uint64_t *ret)
{
	uint64_t v;

	if (hpq_parse_uint(arg, min, max, &v) < 0)
		return cli_usage_error(cli, "%s takes a whole number from %llu to %llu, not '%s'",
				       opt, (unsigned long long)min, (unsigned long long)max, arg);
	*ret = v;
	return 0;
}

int cli_parse_size(struct cli *cli, const char *opt, const char *arg, uint64_t max,
		   uint64_t *ret_mib)
{
	uint64_t v;
	char buf[32];

	if (hpq_parse_size_mib(arg, &v) < 0)
		return cli_usage_error(cli, "%s takes a size like 512M, 64G or 1T "
				       "(a plain number is MiB), not '%s'", opt, arg);
	if (v > max)
		return cli_usage_error(cli, "%s %s is more than the largest allowed, %s", opt, arg,
				       hpq_format_size_mib(max, buf, sizeof(buf)));
	*ret_mib = v;
	return 0;
}

int cli_parse_duration(struct cli *cli, const char *opt, const char *arg, uint64_t *ret_seconds)
{
	uint64_t v;

	if (hpq_parse_duration(arg, &v) < 0)
		return cli_usage_error(cli, "%s takes a duration like 90s, 15m, 1h30m, 2d "
				       "or 1:30:00, not '%s'", opt, arg);
	*ret_seconds = v;
	return 0;
}

int cli_parse_name(struct cli *cli, const char *what, const char *arg)
{
	if (hpq_check_name(arg) < 0)
		return cli_usage_error(cli, "'%s' is not a valid %s name: use 1 to %d letters, "
				       "digits, '.', '_' or '-', starting with a letter or digit",
				       arg, what, HPQ_NAME_MAX - 1);
	return 0;
}

int cli_parse_id(struct cli *cli, const char *arg, uint64_t *ret_id)
{
	uint64_t v;

	if (hpq_parse_uint(arg, 1, INT64_MAX, &v) < 0)
		return cli_usage_error(cli, "'%s' is not a task id (a positive whole number)", arg);
	*ret_id = v;
	return 0;
}

int cli_parse_user(struct cli *cli, const char *opt, const char *arg)
{
	size_t n = strlen(arg);

	if (n == 0 || n > 32 || arg[0] == '-' ||
	    strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._$-") != n)
		return cli_usage_error(cli, "%s: '%s' is not a user name", opt, arg);
	return 0;
}

const char *cli_address(const struct cli *cli)
{
	const char *s;

	if (cli->addr)
		return cli->addr;
	if ((s = getenv("HPQ_SOCKET")) && s[0])
		return s;
	if ((s = getenv("HPQ_SERVER")) && s[0])
		return s;
	return HPQ_DEFAULT_SOCKET;
}

int cli_connect(struct cli *cli)
{
	int r;

	if (cli->connected)
		return 0;
	memset(&cli->client, 0, sizeof(cli->client));
	r = hpq_client_connect(&cli->client, cli->addr, 0);
	if (r < 0) {
		/* The library's message names the address and what to check. */
		if (cli->client.errbuf[0])
			return cli_error(cli, "%s", cli->client.errbuf);
		return cli_error(cli, "cannot connect to hpqd at %s: %s", cli_address(cli),
				 hpq_strerror(r));
	}
	cli->connected = true;
	return 0;
}

int cli_call(struct cli *cli, Hpq__Envelope *req, Hpq__Envelope__BodyCase expect, const char *what,
	     Hpq__Envelope **ret_reply)
{
	Hpq__Envelope *reply = NULL;
	int r;

	if (cli_connect(cli) != 0)
		return CLI_ERR;
	r = hpq_client_call(&cli->client, req, &reply);
	if (r != 0)
		return cli_error(cli, "cannot %s: %s", what,
				 cli->client.errbuf[0] ? cli->client.errbuf : hpq_strerror(r));
	if (reply->body_case != expect) {
		cli_error(cli, "cannot %s: hpqd answered with an unexpected '%s' message "
			  "(are hpq and hpqd the same version?)", what, hpq_msg_name(reply));
		hpq_msg_free(reply);
		return CLI_ERR;
	}
	*ret_reply = reply;
	return 0;
}
