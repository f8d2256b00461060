/*
 * cmd-checkpoint.c: `hpq checkpoint --step N --path P`, run by a task to
 * record a checkpoint it has just written; the newest one is where the
 * task resumes after preemption or a lost node.
 *
 * Inside a task it needs no other flags: the agent put HPQ_TASK_ID,
 * HPQ_ATTEMPT and HPQ_AGENT_SOCKET into the environment. The request goes
 * to the agent's socket, not to the daemon: the agent checks that the
 * caller runs as the task's user, forwards it on its own authenticated
 * connection and relays the answer, which comes after the daemon
 * committed the checkpoint. So exit 0 means the checkpoint is durable.
 * $HPQ_AGENT_SOCKET is preferred over $HPQ_SOCKET because a task may have
 * inherited the submitter's HPQ_SOCKET through --export=ALL. Outside a
 * task (tests, administrators) --task and --attempt name the run and the
 * request goes to the daemon.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "msg.h"
#include "parse.h"
#include "xalloc.h"

enum {
	OPT_STEP = CLI_OPT_FIRST_PRIVATE,
	OPT_PATH,
	OPT_TASK,
	OPT_ATTEMPT,
};

static const struct option checkpoint_options[] = {
	{"step", required_argument, NULL, OPT_STEP},
	{"path", required_argument, NULL, OPT_PATH},
	{"task", required_argument, NULL, OPT_TASK},
	{"attempt", required_argument, NULL, OPT_ATTEMPT},
	CLI_COMMON_OPTIONS,
};

/* A value from --opt, else from the environment variable. */
static int checkpoint_number(struct cli *cli, const char *opt, const char *arg, const char *var,
			     uint64_t min, uint64_t max, uint64_t *ret)
{
	const char *env = getenv(var);

	if (arg)
		return cli_parse_uint(cli, opt, arg, min, max, ret);
	if (!env || !env[0])
		return cli_usage_error(cli, "not inside an hpq task: $%s is not set; "
				       "give %s", var, opt);
	if (hpq_parse_uint(env, min, max, ret) < 0)
		return cli_usage_error(cli, "$%s is '%s', not a valid number", var, env);
	return 0;
}

static int checkpoint_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__CheckpointRequest ck = HPQ__CHECKPOINT_REQUEST__INIT;
	const char *step = NULL, *path = NULL, *task = NULL, *attempt = NULL, *agent;
	uint64_t v;
	char *abs = NULL, *sock = NULL;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", checkpoint_options)) != -1) {
		switch (c) {
		case OPT_STEP:
			step = optarg;
			break;
		case OPT_PATH:
			path = optarg;
			break;
		case OPT_TASK:
			task = optarg;
			break;
		case OPT_ATTEMPT:
			attempt = optarg;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!step || !path)
		return cli_usage_error(cli, "give both --step N and --path P");
	if (path[0] == '\0')
		return cli_usage_error(cli, "--path needs the checkpoint's path");
	if (cli_parse_uint(cli, "--step", step, 0, UINT64_MAX, &v) != 0)
		return CLI_USAGE;
	ck.step = v;
	if (checkpoint_number(cli, "--task", task, "HPQ_TASK_ID", 1, INT64_MAX, &v) != 0)
		return CLI_USAGE;
	ck.task_id = v;
	if (checkpoint_number(cli, "--attempt", attempt, "HPQ_ATTEMPT", 1, UINT32_MAX, &v) != 0)
		return CLI_USAGE;
	ck.attempt = (uint32_t)v;

	/* The path is recorded for the next attempt, which may start elsewhere
	 * in the file system; make it absolute now. */
	if (path[0] != '/') {
		char *here = getcwd(NULL, 0);

		if (!here)
			return cli_error(cli, "cannot tell the current directory: %s; "
					 "give an absolute --path", strerror(errno));
		xasprintf(&abs, "%s/%s", here, path);
		free(here);
		path = abs;
	}
	ck.path = (char *)path;

	agent = getenv("HPQ_AGENT_SOCKET");
	if (!cli->addr && agent && agent[0]) {
		if (!strchr(agent, '/')) {
			/* The client library takes a name without '/' for HOST:PORT. */
			xasprintf(&sock, "./%s", agent);
			agent = sock;
		}
		cli->addr = agent;
	}
	req.body_case = HPQ__ENVELOPE__BODY_CHECKPOINT;
	req.checkpoint = &ck;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_OK, "record the checkpoint", &reply);
	if (r == 0)
		hpq_msg_free(reply);
	if (sock) {
		cli_release(cli);
		cli->addr = NULL;
		free(sock);
	}
	free(abs);
	return r;
}

const struct cmd_entry cmd_checkpoint_entry = {
	.name = "checkpoint",
	.usage = "checkpoint --step N --path P [--task ID] [--attempt N]",
	.summary = "record a checkpoint, from inside a running task",
	.help = "Run it after the checkpoint is written; it returns once hpqd has stored\n"
		"the record. The task resumes from its newest checkpoint after preemption,\n"
		"with $HPQ_RESUME_FROM and $HPQ_RESUME_STEP set.\n\n"
		"options:\n"
		"  --step N      training step (or any increasing number) of the checkpoint\n"
		"  --path P      where it is; a relative path is made absolute\n"
		"  --task ID     the task (default $HPQ_TASK_ID)\n"
		"  --attempt N   the attempt (default $HPQ_ATTEMPT)\n",
	.exec = checkpoint_exec,
};
