/*
 * cmd-policy.c: `hpq policy show|set`, the cluster policy of docs/design.md §4:
 * how idle compute is shared between teams (fair-share or fcfs), the
 * half-life of the borrowing history fair share weighs, how long a task
 * runs before it may be preempted (min-runtime), the preemption grace of
 * tasks submitted without --grace, the longest grace any task gets
 * (max-grace), and where a requeued task goes back in its queue
 * (requeue-order). `set` takes KEY VALUE pairs; the daemon
 * checks them all and applies them together or not at all, and answers
 * with the policy in force, which `set` prints like `show`.
 */
#include <string.h>

#include "cli.h"
#include "msg.h"
#include "parse.h"

#define POLICY_MAX_SETTINGS 16

static const struct option policy_options[] = {
	CLI_COMMON_OPTIONS,
};

static const char *const policy_keys[] = {
	"idle-allocation", "half-life", "min-runtime", "grace", "max-grace", "requeue-order",
	NULL,
};

static void policy_print(const struct cli *cli, const Hpq__PolicyReply *p)
{
	char hl[32], mr[32], gr[32], mg[32];
	json_t *o;

	if (cli->json) {
		o = json_object();
		json_object_set_new(o, "idle_allocation", json_string(p->idle_allocation));
		json_object_set_new(o, "half_life", json_integer((json_int_t)p->half_life_s));
		json_object_set_new(o, "min_runtime", json_integer((json_int_t)p->min_runtime_s));
		json_object_set_new(o, "grace", json_integer((json_int_t)p->grace_s));
		json_object_set_new(o, "max_grace", json_integer((json_int_t)p->max_grace_s));
		json_object_set_new(o, "requeue_order", json_string(p->requeue_order));
		json_dumpf(o, cli->out.out, JSON_INDENT(2));
		fputc('\n', cli->out.out);
		json_decref(o);
		return;
	}
	fprintf(cli->out.out,
		"idle-allocation  %s\n"
		"half-life        %s\n"
		"min-runtime      %s\n"
		"grace            %s\n"
		"max-grace        %s\n"
		"requeue-order    %s\n",
		p->idle_allocation, hpq_format_duration(p->half_life_s, hl, sizeof(hl)),
		hpq_format_duration(p->min_runtime_s, mr, sizeof(mr)),
		hpq_format_duration(p->grace_s, gr, sizeof(gr)),
		hpq_format_duration(p->max_grace_s, mg, sizeof(mg)), p->requeue_order);
}

static int policy_show_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__PolicyShowRequest show = HPQ__POLICY_SHOW_REQUEST__INIT;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", policy_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	req.body_case = HPQ__ENVELOPE__BODY_POLICY_SHOW;
	req.policy_show = &show;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_POLICY_REPLY, "show the policy", &reply);
	if (r != 0)
		return r;
	policy_print(cli, reply->policy_reply);
	hpq_msg_free(reply);
	return CLI_OK;
}

/* Checks what can be checked here, so a typo is a usage error (exit 2). */
static int policy_check(struct cli *cli, const char *key, const char *value)
{
	uint64_t s;
	size_t k;

	for (k = 0; policy_keys[k]; k++)
		if (!strcmp(key, policy_keys[k]))
			break;
	if (!policy_keys[k])
		return cli_usage_error(cli, "unknown key '%s': use idle-allocation, half-life, "
				       "min-runtime, grace, max-grace or requeue-order", key);
	if (!strcmp(key, "idle-allocation")) {
		if (strcmp(value, "fair-share") && strcmp(value, "fcfs"))
			return cli_usage_error(cli, "idle-allocation takes fair-share or fcfs, "
					       "not '%s'", value);
	} else if (!strcmp(key, "requeue-order")) {
		if (strcmp(value, "submit") && strcmp(value, "eviction"))
			return cli_usage_error(cli, "requeue-order takes submit or eviction, "
					       "not '%s'", value);
	} else if (hpq_parse_duration(value, &s) != 0) {
		return cli_usage_error(cli, "%s takes a duration (90s, 15m, 1h), not '%s'", key,
				       value);
	}
	return 0;
}

static int policy_set_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__PolicySetRequest set = HPQ__POLICY_SET_REQUEST__INIT;
	Hpq__PolicySetting settings[POLICY_MAX_SETTINGS], *ptrs[POLICY_MAX_SETTINGS];
	size_t n = 0;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", policy_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind >= argc)
		return cli_usage_error(cli, "what to set? give KEY VALUE");
	if ((argc - optind) % 2)
		return cli_usage_error(cli, "'%s' has no value: give KEY VALUE pairs",
				       argv[argc - 1]);
	for (int i = optind; i < argc; i += 2) {
		if (n == POLICY_MAX_SETTINGS)
			return cli_usage_error(cli, "too many settings at once");
		if ((r = policy_check(cli, argv[i], argv[i + 1])) != 0)
			return r;
		hpq__policy_setting__init(&settings[n]);
		settings[n].key = argv[i];
		settings[n].value = argv[i + 1];
		ptrs[n] = &settings[n];
		n++;
	}
	set.n_settings = n;
	set.settings = ptrs;
	req.body_case = HPQ__ENVELOPE__BODY_POLICY_SET;
	req.policy_set = &set;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_POLICY_REPLY, "change the policy", &reply);
	if (r != 0)
		return r;
	policy_print(cli, reply->policy_reply);
	hpq_msg_free(reply);
	return CLI_OK;
}

static const struct cmd_entry policy_show_entry = {
	.name = "show",
	.usage = "policy show [--json]",
	.summary = "show the cluster policy",
	.help = "options:\n"
		"  --json   print a JSON object {idle_allocation, half_life, min_runtime,\n"
		"           grace, max_grace, requeue_order} (durations in seconds)\n",
	.exec = policy_show_exec,
};

static const struct cmd_entry policy_set_entry = {
	.name = "set",
	.usage = "policy set KEY VALUE [KEY VALUE]...",
	.summary = "change the cluster policy (administrators)",
	.help = "keys:\n"
		"  idle-allocation fair-share|fcfs  how teams share idle compute (default\n"
		"                                   fair-share)\n"
		"  half-life DURATION               decay of the borrowing history fair share\n"
		"                                   weighs (default 1h)\n"
		"  min-runtime DURATION             a task runs this long before it may be\n"
		"                                   preempted (default 0)\n"
		"  grace DURATION                   preemption grace of tasks submitted\n"
		"                                   without --grace (default 60s)\n"
		"  max-grace DURATION               the longest grace a task may ask for\n"
		"                                   (default 1h); an administrator's cancel\n"
		"                                   and a reclaim give the policy's grace\n"
		"  requeue-order submit|eviction    a requeued task keeps its submit time, or\n"
		"                                   goes behind the queue (default submit)\n"
		"all pairs are applied together or not at all; prints the new policy\n",
	.exec = policy_set_exec,
};

static const struct cmd_entry *const policy_table[] = {
	&policy_show_entry, &policy_set_entry, NULL,
};

const struct cmd_entry cmd_policy_entry = {
	.name = "policy",
	.usage = "policy show|set ...",
	.summary = "show or change the cluster policy",
	.sub = policy_table,
};
