/*
 * cli.h: what the commands of hpq(1) share: the command table entry, the
 * per-invocation state (global options, the connection, how to print),
 * option parsing with the common options folded in, and the helpers that
 * turn failures into one clear message and an exit status.
 *
 * A command is data (struct cmd_entry, as tmux's cmd_entry and git's
 * commands[]): a name, its synopsis, a one-line summary, its option help,
 * and either a handler or a table of sub-commands (team add, team set...).
 * Handlers are short: parse options, build the request, cli_call(), hand
 * the reply to the chosen struct output, return an exit status. They
 * connect only after their arguments parsed, so a usage error never waits
 * for a daemon.
 *
 * Exit status: 0 ok, 1 the request failed (daemon unreachable, refused,
 * not found), 2 the command line was wrong.
 */
#ifndef HPQ_CLI_H
#define HPQ_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "client.h"
#include "output.h"

enum {
	CLI_DONE = -1, /* from parsers: help was printed, exit with CLI_OK */
	CLI_OK = 0,
	CLI_ERR = 1,
	CLI_USAGE = 2,
};

struct cli;

struct cmd_entry {
	const char *name;
	const char *usage;   /* synopsis after "hpq ", as in the man page */
	const char *summary; /* one line for the command list */
	const char *help;    /* option descriptions for --help, or NULL */
	/* A leaf command has exec; a family (team, class, node) has sub,
	 * a NULL-terminated table of its sub-commands. */
	int (*exec)(struct cli *cli, const struct cmd_entry *self, int argc, char **argv);
	const struct cmd_entry *const *sub;
};

struct cli {
	const char *addr;     /* --socket or --server; NULL: $HPQ_SOCKET, $HPQ_SERVER, default */
	bool json;            /* --json: machine-readable output */
	const char *cmd;      /* "submit", "team add": prefix of messages */
	struct output_ctx out;
	struct hpq_client client;
	bool connected;
	char **opt_argv;      /* the argv cli_getopt() is parsing */
};

/* The commands, one file each (cmd-<name>.c). */
extern const struct cmd_entry cmd_submit_entry;
extern const struct cmd_entry cmd_list_entry;
extern const struct cmd_entry cmd_show_entry;
extern const struct cmd_entry cmd_cancel_entry;
extern const struct cmd_entry cmd_hold_entry;     /* cmd-control.c, with the next two */
extern const struct cmd_entry cmd_release_entry;
extern const struct cmd_entry cmd_requeue_entry;
extern const struct cmd_entry cmd_update_entry;
extern const struct cmd_entry cmd_acct_entry;
extern const struct cmd_entry cmd_checkpoint_entry;
extern const struct cmd_entry cmd_node_entry;
extern const struct cmd_entry cmd_node_token_entry;  /* cmd-node-join.c */
extern const struct cmd_entry cmd_node_revoke_entry;
extern const struct cmd_entry cmd_node_remove_entry;
extern const struct cmd_entry cmd_team_entry;
extern const struct cmd_entry cmd_class_entry;
extern const struct cmd_entry cmd_policy_entry;
extern const struct cmd_entry cmd_plan_entry;    /* cmd-plan.c */
extern const struct cmd_entry cmd_recipe_entry;  /* cmd-recipe.c */
extern const struct cmd_entry cmd_version_entry;
extern const struct cmd_entry cmd_versions_entry;
extern const struct cmd_entry cmd_upgrade_check_entry;
extern const struct cmd_entry cmd_status_entry;   /* the dashboards: cmd-status.c ... */
extern const struct cmd_entry cmd_events_entry;
extern const struct cmd_entry cmd_usage_entry;
extern const struct cmd_entry cmd_top_entry;
extern const struct cmd_entry cmd_logs_entry;

/* Sets up cli for one invocation: stdout/stderr, colour when stdout is a
 * terminal and NO_COLOR is unset or empty. */
void cli_init(struct cli *cli);
/* Closes the connection if one was made. */
void cli_release(struct cli *cli);

/* The output for the chosen format (--json or tables). */
const struct output *cli_output(const struct cli *cli);

/* Runs argv[0] from table (a NULL-terminated array), descending into
 * sub-commands. Returns the exit status. */
int cli_run(struct cli *cli, const struct cmd_entry *const *table, const char *family, int argc,
	    char **argv);

/* Prints "usage: hpq <usage>" and the help text of e to f. */
void cli_help(FILE *f, const struct cmd_entry *e);

/*
 * Option parsing. Each command lists its long options followed by
 * CLI_COMMON_OPTIONS; cli_getopt() wraps getopt_long() (options stop at
 * the first operand when shortopts starts with '+') and handles the
 * common ones itself. It returns the option's value, -1 after the last
 * option (optind is then the first operand), CLI_OPT_HELP after printing
 * the command's help (the caller returns CLI_OK), or CLI_OPT_BAD after
 * printing a usage error (the caller returns CLI_USAGE). The first call
 * for an argv resets getopt's state; -h is --help where shortopts has it.
 */
enum {
	CLI_OPT_HELP = 0x1000,
	CLI_OPT_BAD,
	CLI_OPT_JSON,
	CLI_OPT_SOCKET,
	CLI_OPT_SERVER,
	CLI_OPT_CA_FILE,
	CLI_OPT_SERVER_NAME,
	CLI_OPT_INSECURE,
	CLI_OPT_MUNGE_SOCKET,
	CLI_OPT_FIRST_PRIVATE = 0x1100, /* commands number their long-only options from here */
};
#define CLI_COMMON_OPTIONS                                        \
	{"help", no_argument, NULL, CLI_OPT_HELP},                \
	{"json", no_argument, NULL, CLI_OPT_JSON},                \
	{"socket", required_argument, NULL, CLI_OPT_SOCKET},      \
	{"server", required_argument, NULL, CLI_OPT_SERVER},      \
	{"ca-file", required_argument, NULL, CLI_OPT_CA_FILE},    \
	{"server-name", required_argument, NULL, CLI_OPT_SERVER_NAME}, \
	{"insecure", no_argument, NULL, CLI_OPT_INSECURE},        \
	{"munge-socket", required_argument, NULL, CLI_OPT_MUNGE_SOCKET}, \
	{NULL, 0, NULL, 0}

int cli_getopt(struct cli *cli, const struct cmd_entry *e, int argc, char **argv,
	       const char *shortopts, const struct option *longopts);

/* Option values: parse, or print a usage error naming the option and
 * return CLI_USAGE. On success return 0 and set *ret. */
int cli_parse_uint(struct cli *cli, const char *opt, const char *arg, uint64_t min, uint64_t max,
		   uint64_t *ret);
int cli_parse_size(struct cli *cli, const char *opt, const char *arg, uint64_t max,
		   uint64_t *ret_mib);
int cli_parse_duration(struct cli *cli, const char *opt, const char *arg, uint64_t *ret_seconds);
int cli_parse_name(struct cli *cli, const char *what, const char *arg);
int cli_parse_id(struct cli *cli, const char *arg, uint64_t *ret_id);
/* A user name as passwd(5) allows: 1..32 of [A-Za-z0-9._$-], not starting with '-'. */
int cli_parse_user(struct cli *cli, const char *opt, const char *arg);

/* "hpq <cmd>: <message>" and a pointer to --help; returns CLI_USAGE. */
int cli_usage_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "hpq: <message>"; returns CLI_ERR. */
int cli_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Where the daemon is looked for, for messages: the option, $HPQ_SOCKET,
 * $HPQ_SERVER or the default socket. */
const char *cli_address(const struct cli *cli);

/* Connects (once) and says Hello. Returns 0 or CLI_ERR after printing why. */
int cli_connect(struct cli *cli);

/* Connects if needed, sends req and checks that the reply's body is
 * `expect`. what names the action for messages ("submit the task").
 * Returns 0 with *ret_reply set (free with hpq_msg_free), or CLI_ERR after
 * printing "hpq: cannot <what>: <reason>". */
int cli_call(struct cli *cli, Hpq__Envelope *req, Hpq__Envelope__BodyCase expect, const char *what,
	     Hpq__Envelope **ret_reply);

#endif
