/*
 * select.h: which tasks a job-control command acts on (hpq cancel, hold,
 * release, requeue): task ids as people type them ("12", "12_5",
 * "12_[1-3,7]", as Slurm writes array tasks) and the filters --user,
 * --team, --name, --state and --array, gathered into the wire's
 * TaskSelector. Also the task states as the CLI names them, shared with
 * hpq list and hpq acct, and the report of a ControlReply.
 *
 * Ids are checked here only for their syntax, so a typo fails before
 * anything is sent; the daemon parses them again and decides what they
 * name.
 */
#ifndef HPQ_SELECT_H
#define HPQ_SELECT_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"

/* Checks one task id as typed. With ranges, "ID_[LIST]" is allowed, LIST
 * being indices and ranges A-B (A <= B) or A-B:STEP separated by commas,
 * as hpq list writes an array's pending indices; without, only
 * "ID" and "ID_INDEX". Returns 0, or HPQ_EINVAL with a message in err. */
int select_check_id(const char *s, bool ranges, char *err, size_t errlen);
/* True for a bare task id ("12"): what an older hpqd understands. */
bool select_id_plain(const char *s);

/* Appends the states of a --state value (one state or a comma-separated
 * list, any letter case, '-' for '_'; "active" is pending, running and
 * preempting) to *v, skipping repeats. The strings are static. Returns 0,
 * or HPQ_EINVAL with a message in err. */
int select_add_states(const char *arg, const char ***v, size_t *n, char *err, size_t errlen);
/* Every state, for messages and help: "PENDING", ... NULL-terminated. */
extern const char *const select_state_names[];

/* The filter options, for a command's option table. */
enum {
	SELECT_OPT_USER = CLI_OPT_FIRST_PRIVATE + 0x80,
	SELECT_OPT_TEAM,
	SELECT_OPT_NAME,
	SELECT_OPT_STATE,
	SELECT_OPT_ARRAY,
};
#define SELECT_OPTIONS                                              \
	{"user", required_argument, NULL, SELECT_OPT_USER},         \
	{"team", required_argument, NULL, SELECT_OPT_TEAM},         \
	{"name", required_argument, NULL, SELECT_OPT_NAME},         \
	{"state", required_argument, NULL, SELECT_OPT_STATE},       \
	{"array", required_argument, NULL, SELECT_OPT_ARRAY}

#define SELECT_HELP                                                              \
	"  --user U    tasks of user U\n"                                        \
	"  --team T    tasks of team T\n"                                        \
	"  --name N    tasks named N\n"                                          \
	"  --state S   tasks in state S; repeat it or give a list (pending,running)\n" \
	"              to match any of them; active is pending, running and\n"    \
	"              preempting\n"                                              \
	"  --array ID  every task of array ID\n"

struct select_args {
	Hpq__TaskSelector sel;
	const char **states;
	size_t n_states;
	char **ids;
	size_t n_ids;
	bool filtered; /* a filter was given */
	bool ranges;   /* an id uses array syntax */
};

void select_init(struct select_args *s);
void select_free(struct select_args *s);
/* Handles option c if it is a filter: returns 0 when it was one and is
 * valid, 1 when c is not a filter option, CLI_USAGE after a usage error. */
int select_option(struct cli *cli, struct select_args *s, int c, const char *arg);
/* Takes argv[first..argc-1] as task ids and checks that something is
 * selected: never "every task" by accident. Returns 0 or CLI_USAGE. */
int select_operands(struct cli *cli, struct select_args *s, int argc, char **argv, int first);

/* A job-control reply gathered from its frames: every frame's results,
 * in order. */
struct select_reply {
	Hpq__Envelope **frames;
	size_t nframes;
	Hpq__CancelResult **results;
	size_t n;
};

/* cli_call for a CancelRequest, HoldRequest or RequeueRequest that asked
 * for a stream: reads the reply's frames into out, until one without
 * `more` (release it with select_reply_free). Returns 0, or CLI_ERR
 * having said why. */
int select_call(struct cli *cli, Hpq__Envelope *req, Hpq__Envelope__BodyCase expect,
		const char *what, struct select_reply *out);
void select_reply_free(struct select_reply *r);

/* Prints a job-control reply: each failure on stderr ("hpq: cannot hold
 * task 12: why"), then a summary ("held 3 tasks"); with --json the array
 * of {id, ok, error} hpq cancel prints. verb is "hold", done "held".
 * Returns CLI_OK, or CLI_ERR when any task failed. */
int select_report(struct cli *cli, const char *verb, const char *done,
		  Hpq__CancelResult *const *r, size_t n);

#endif
