/*
 * cmd-plan.c: `hpq plan search|create|list|show|cancel`, training plans
 * (docs/plans.md): capacity of whole nodes reserved ahead for a team, in
 * up to five segments. search prints offerings (snapshots with an id and
 * an expiry); create turns one into a plan, which hpqd checks against
 * the calendar again.
 *
 * Times on the command line: now, +DURATION (from now), @UNIX_SECONDS, or
 * YYYY-MM-DD[THH:MM[:SS]] in local time (UTC with a trailing Z).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "msg.h"
#include "parse.h"
#include "xalloc.h"

enum {
	OPT_POOL = CLI_OPT_FIRST_PRIVATE,
	OPT_NODES,
	OPT_DURATION,
	OPT_AFTER,
	OPT_BEFORE,
	OPT_MAX_SEGMENTS,
	OPT_MIN_SEGMENT,
	OPT_TEAM,
	OPT_NAME,
	OPT_ALL,
};

static const struct option search_options[] = {
	{"pool", required_argument, NULL, OPT_POOL},
	{"nodes", required_argument, NULL, OPT_NODES},
	{"duration", required_argument, NULL, OPT_DURATION},
	{"after", required_argument, NULL, OPT_AFTER},
	{"before", required_argument, NULL, OPT_BEFORE},
	{"max-segments", required_argument, NULL, OPT_MAX_SEGMENTS},
	{"min-segment", required_argument, NULL, OPT_MIN_SEGMENT},
	{"team", required_argument, NULL, OPT_TEAM},
	CLI_COMMON_OPTIONS,
};

static const struct option create_options[] = {
	{"team", required_argument, NULL, OPT_TEAM},
	{"name", required_argument, NULL, OPT_NAME},
	CLI_COMMON_OPTIONS,
};

static const struct option list_options[] = {
	{"team", required_argument, NULL, OPT_TEAM},
	{"all", no_argument, NULL, OPT_ALL},
	CLI_COMMON_OPTIONS,
};

static const struct option plain_options[] = {
	CLI_COMMON_OPTIONS,
};

/* A time of the command line as unix milliseconds; 0 or CLI_USAGE. */
static int parse_when(struct cli *cli, const char *opt, const char *arg, int64_t *ret)
{
	struct tm tm;
	const char *end;
	uint64_t v;

	if (!strcmp(arg, "now")) {
		*ret = hpq_now_ms();
		return 0;
	}
	if (arg[0] == '+') {
		if (hpq_parse_duration(arg + 1, &v) < 0)
			goto bad;
		*ret = hpq_now_ms() + (int64_t)v * 1000;
		return 0;
	}
	if (arg[0] == '@') {
		if (hpq_parse_uint(arg + 1, 1, 1ull << 40, &v) < 0)
			goto bad;
		*ret = (int64_t)v * 1000;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(arg, "%Y-%m-%d", &tm);
	if (end && (*end == 'T' || *end == ' ')) {
		const char *t = strptime(end + 1, "%H:%M:%S", &tm);

		end = t ? t : strptime(end + 1, "%H:%M", &tm);
	}
	if (!end || (*end && strcmp(end, "Z")))
		goto bad;
	if (*end == 'Z') {
		*ret = (int64_t)timegm(&tm) * 1000;
	} else {
		tm.tm_isdst = -1;
		*ret = (int64_t)mktime(&tm) * 1000;
	}
	return 0;
bad:
	return cli_usage_error(cli, "%s takes now, +DURATION, @UNIX_SECONDS or "
			       "YYYY-MM-DD[THH:MM[:SS]][Z], not '%s'", opt, arg);
}

/* As every command's JSON: ISO-8601 UTC with milliseconds, null if unset. */
static json_t *json_when(int64_t ms)
{
	char buf[OUTPUT_TIME_LEN];

	return ms > 0 ? json_string(output_time_iso(ms, buf, sizeof(buf))) : json_null();
}

static json_t *segments_json(Hpq__PlanSegment *const *segs, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object(), *nodes = json_array();

		json_object_set_new(o, "start", json_when(segs[i]->start));
		json_object_set_new(o, "end", json_when(segs[i]->end));
		json_object_set_new(o, "nodes", json_integer(segs[i]->nodes));
		for (size_t k = 0; k < segs[i]->n_node_names; k++)
			json_array_append_new(nodes, json_string(segs[i]->node_names[k]));
		json_object_set_new(o, "node_names", nodes);
		json_array_append_new(a, o);
	}
	return a;
}

static void segments_text(FILE *f, Hpq__PlanSegment *const *segs, size_t n)
{
	char a[32], b[32], d[32];

	for (size_t i = 0; i < n; i++) {
		fprintf(f, "  segment %zu: %s - %s  %-8s %u nodes:", i + 1,
			output_time_local(segs[i]->start, a, sizeof(a)),
			output_time_local(segs[i]->end, b, sizeof(b)),
			hpq_format_duration((uint64_t)(segs[i]->end - segs[i]->start) / 1000, d,
					    sizeof(d)), segs[i]->nodes);
		for (size_t k = 0; k < segs[i]->n_node_names; k++)
			fprintf(f, "%s%s", k ? "," : " ", segs[i]->node_names[k]);
		fputc('\n', f);
	}
}

static void dump(struct cli *cli, json_t *j)
{
	json_dumpf(j, cli->out.out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	fputc('\n', cli->out.out);
	json_decref(j);
}

/* ---------------------------------------------------------------- search */

static int search_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__PlanSearchRequest m = HPQ__PLAN_SEARCH_REQUEST__INIT;
	const Hpq__PlanSearchReply *rep;
	uint64_t v;
	int c, r;

	m.max_segments = 1;
	while ((c = cli_getopt(cli, e, argc, argv, ":h", search_options)) != -1) {
		switch (c) {
		case OPT_POOL:
			if (cli_parse_name(cli, "pool", optarg))
				return CLI_USAGE;
			m.pool = optarg;
			break;
		case OPT_NODES:
			if (cli_parse_uint(cli, "--nodes", optarg, 1, 1024, &v))
				return CLI_USAGE;
			m.nodes = (uint32_t)v;
			break;
		case OPT_DURATION:
			if (cli_parse_duration(cli, "--duration", optarg, &m.duration_s))
				return CLI_USAGE;
			if (m.duration_s == 0)
				return cli_usage_error(cli, "--duration must be longer than 0");
			break;
		case OPT_AFTER:
			if (parse_when(cli, "--after", optarg, &m.after))
				return CLI_USAGE;
			break;
		case OPT_BEFORE:
			if (parse_when(cli, "--before", optarg, &m.before))
				return CLI_USAGE;
			break;
		case OPT_MAX_SEGMENTS:
			if (cli_parse_uint(cli, "--max-segments", optarg, 1, 5, &v))
				return CLI_USAGE;
			m.max_segments = (uint32_t)v;
			break;
		case OPT_MIN_SEGMENT:
			if (cli_parse_duration(cli, "--min-segment", optarg, &m.min_segment_s))
				return CLI_USAGE;
			break;
		case OPT_TEAM:
			if (cli_parse_name(cli, "team", optarg))
				return CLI_USAGE;
			m.team = optarg;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!*m.pool || !m.nodes || !m.duration_s)
		return cli_usage_error(cli, "give --pool, --nodes and --duration");
	if (m.before && m.after && m.before <= m.after)
		return cli_usage_error(cli, "--before must come after --after");
	req.body_case = HPQ__ENVELOPE__BODY_PLAN_SEARCH;
	req.plan_search = &m;
	if ((r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_PLAN_SEARCH_REPLY, "search for a plan",
			  &reply)) != 0)
		return r;
	rep = reply->plan_search_reply;
	if (cli->json) {
		json_t *a = json_array();

		for (size_t i = 0; i < rep->n_offers; i++) {
			const Hpq__PlanOffer *o = rep->offers[i];
			json_t *j = json_object();

			json_object_set_new(j, "id", json_string(o->id));
			json_object_set_new(j, "finish", json_when(o->finish));
			json_object_set_new(j, "breaks", json_integer(o->breaks));
			json_object_set_new(j, "expires", json_when(o->expires));
			json_object_set_new(j, "segments", segments_json(o->segments,
									 o->n_segments));
			json_array_append_new(a, j);
		}
		dump(cli, a);
	} else if (rep->n_offers == 0) {
		fprintf(cli->out.out, "nothing fits%s (pool of %u nodes, %u reservable at once)\n",
			m.before ? " before --before" : "", rep->pool_nodes, rep->reservable);
	} else {
		char a[32], b[32];

		for (size_t i = 0; i < rep->n_offers; i++) {
			const Hpq__PlanOffer *o = rep->offers[i];

			fprintf(cli->out.out, "%s%-8s finish %s  breaks %u  expires %s\n", i ? "\n" : "",
				o->id, output_time_local(o->finish, a, sizeof(a)), o->breaks,
				output_time_local(o->expires, b, sizeof(b)));
			segments_text(cli->out.out, o->segments, o->n_segments);
		}
	}
	hpq_msg_free(reply);
	return CLI_OK;
}

/* ---------------------------------------------------------------- one plan */

static json_t *plan_json(const Hpq__Plan *p)
{
	json_t *j = json_object();

	json_object_set_new(j, "name", json_string(p->name));
	json_object_set_new(j, "team", json_string(p->team));
	json_object_set_new(j, "pool", json_string(p->pool));
	json_object_set_new(j, "state", json_string(p->state));
	json_object_set_new(j, "nodes", json_integer(p->nodes));
	json_object_set_new(j, "duration_s", json_integer((json_int_t)p->duration_s));
	json_object_set_new(j, "created", json_when(p->created));
	json_object_set_new(j, "created_by", json_string(p->created_by));
	json_object_set_new(j, "next_change", json_when(p->next_change));
	json_object_set_new(j, "ended", json_when(p->ended));
	json_object_set_new(j, "gpu_hours_reserved", json_real(p->gpu_hours_reserved));
	json_object_set_new(j, "gpu_hours_used", json_real(p->gpu_hours_used));
	json_object_set_new(j, "segments", segments_json(p->segments, p->n_segments));
	return j;
}

static void plan_text(FILE *f, const Hpq__Plan *p)
{
	char a[32], d[32];

	fprintf(f, "plan:        %s\nteam:        %s\npool:        %s\nstate:       %s\n", p->name,
		p->team, p->pool, p->state);
	fprintf(f, "nodes:       %u\nduration:    %s\n", p->nodes,
		hpq_format_duration(p->duration_s, d, sizeof(d)));
	fprintf(f, "created:     %s by %s\n", output_time_local(p->created, a, 32), p->created_by);
	if (p->next_change)
		fprintf(f, "next change: %s\n", output_time_local(p->next_change, a, 32));
	if (p->ended)
		fprintf(f, "ended:       %s\n", output_time_local(p->ended, a, 32));
	fprintf(f, "GPU-hours:   %.1f reserved\n", p->gpu_hours_reserved);
	segments_text(f, p->segments, p->n_segments);
}

static int create_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__PlanCreateRequest m = HPQ__PLAN_CREATE_REQUEST__INIT;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", create_options)) != -1) {
		switch (c) {
		case OPT_TEAM:
			if (cli_parse_name(cli, "team", optarg))
				return CLI_USAGE;
			m.team = optarg;
			break;
		case OPT_NAME:
			if (cli_parse_name(cli, "plan", optarg))
				return CLI_USAGE;
			m.name = optarg;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind >= argc)
		return cli_usage_error(cli, "which offering? give its id from 'hpq plan search'");
	if (optind + 1 < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if (!*m.team || !*m.name)
		return cli_usage_error(cli, "give --team and --name");
	m.offer = argv[optind];
	req.body_case = HPQ__ENVELOPE__BODY_PLAN_CREATE;
	req.plan_create = &m;
	if ((r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_PLAN, "create the plan", &reply)) != 0)
		return r;
	if (cli->json)
		dump(cli, plan_json(reply->plan));
	else
		plan_text(cli->out.out, reply->plan);
	hpq_msg_free(reply);
	return CLI_OK;
}

static int fetch(struct cli *cli, const char *name, const char *team, bool all,
		 Hpq__Envelope **ret)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT;
	Hpq__PlanListRequest m = HPQ__PLAN_LIST_REQUEST__INIT;

	m.name = (char *)(name ? name : "");
	m.team = (char *)(team ? team : "");
	m.all = all;
	req.body_case = HPQ__ENVELOPE__BODY_PLAN_LIST;
	req.plan_list = &m;
	return cli_call(cli, &req, HPQ__ENVELOPE__BODY_PLAN_LIST_REPLY, "list plans", ret);
}

static int list_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope *reply;
	const Hpq__PlanListReply *rep;
	const char *team = NULL;
	bool all = false;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", list_options)) != -1) {
		switch (c) {
		case OPT_TEAM:
			if (cli_parse_name(cli, "team", optarg))
				return CLI_USAGE;
			team = optarg;
			break;
		case OPT_ALL:
			all = true;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if ((r = fetch(cli, NULL, team, all, &reply)) != 0)
		return r;
	rep = reply->plan_list_reply;
	if (cli->json) {
		json_t *a = json_array();

		for (size_t i = 0; i < rep->n_plans; i++)
			json_array_append_new(a, plan_json(rep->plans[i]));
		dump(cli, a);
	} else {
		char a[32], b[32];

		fprintf(cli->out.out, "%-20s %-12s %-10s %-16s %5s %4s %-19s %-19s\n", "NAME", "TEAM",
			"POOL", "STATE", "NODES", "SEGS", "START", "FINISH");
		for (size_t i = 0; i < rep->n_plans; i++) {
			const Hpq__Plan *p = rep->plans[i];
			size_t n = p->n_segments;
			const Hpq__PlanSegment *first = n ? p->segments[0] : NULL;
			const Hpq__PlanSegment *last = n ? p->segments[n - 1] : NULL;

			fprintf(cli->out.out, "%-20s %-12s %-10s %-16s %5u %4zu %-19s %-19s\n",
				p->name, p->team, p->pool, p->state, p->nodes, p->n_segments,
				first ? output_time_local(first->start, a, sizeof(a)) : "-",
				last ? output_time_local(last->end, b, sizeof(b)) : "-");
		}
	}
	hpq_msg_free(reply);
	return CLI_OK;
}

/* NAME, the one operand of show and cancel; 0, CLI_DONE or CLI_USAGE. */
static int name_arg(struct cli *cli, const struct cmd_entry *e, int argc, char **argv,
		    const char **ret)
{
	int c;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", plain_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_DONE : CLI_USAGE;
	if (optind >= argc) {
		cli_usage_error(cli, "which plan? give its name");
		return CLI_USAGE;
	}
	if (optind + 1 < argc) {
		cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
		return CLI_USAGE;
	}
	if (cli_parse_name(cli, "plan", argv[optind]) != 0)
		return CLI_USAGE;
	*ret = argv[optind];
	return 0;
}

static int show_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope *reply;
	const char *name;
	int r;

	if ((r = name_arg(cli, e, argc, argv, &name)) != 0)
		return r == CLI_DONE ? CLI_OK : r;
	if ((r = fetch(cli, name, NULL, true, &reply)) != 0)
		return r;
	if (reply->plan_list_reply->n_plans != 1)
		r = cli_error(cli, "no plan '%s'; see 'hpq plan list --all'", name);
	else if (cli->json)
		dump(cli, plan_json(reply->plan_list_reply->plans[0]));
	else
		plan_text(cli->out.out, reply->plan_list_reply->plans[0]);
	hpq_msg_free(reply);
	return r;
}

static int cancel_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__PlanCancelRequest m = HPQ__PLAN_CANCEL_REQUEST__INIT;
	const char *name;
	int r;

	if ((r = name_arg(cli, e, argc, argv, &name)) != 0)
		return r == CLI_DONE ? CLI_OK : r;
	m.name = (char *)name;
	req.body_case = HPQ__ENVELOPE__BODY_PLAN_CANCEL;
	req.plan_cancel = &m;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_OK, "cancel the plan", &reply);
	if (r == 0)
		hpq_msg_free(reply);
	return r;
}

static const struct cmd_entry plan_search_entry = {
	.name = "search",
	.usage = "plan search --pool P --nodes N --duration D [--after T] [--before T] "
		 "[--max-segments K] [--min-segment D] [--team T] [--json]",
	.summary = "find ways to reserve whole nodes for a training run",
	.help = "Offerings come earliest finish first; each is a snapshot that lasts\n"
		"[plans] offer_lifetime. T: now, +DURATION, @UNIX_SECONDS or\n"
		"YYYY-MM-DD[THH:MM[:SS]] (local time; UTC with a trailing Z).\n\n"
		"options:\n"
		"  --pool P           the pool\n"
		"  --nodes N          whole nodes in every segment (1 to 1024)\n"
		"  --duration D       the run's total length, e.g. 14d\n"
		"  --after T          start no sooner (default now)\n"
		"  --before T         finish by then (default: no deadline)\n"
		"  --max-segments K   split into up to K segments, 1 to 5 (default 1)\n"
		"  --min-segment D    no segment shorter than D (default: a tenth of\n"
		"                     --duration)\n"
		"  --team T           count T's guarantee as its own (as create will)\n"
		"  --json             print a JSON array of offerings\n",
	.exec = search_exec,
};

static const struct cmd_entry plan_create_entry = {
	.name = "create",
	.usage = "plan create OFFERING --team T --name NAME [--json]",
	.summary = "reserve an offering of 'hpq plan search' as a plan of team T",
	.help = "Team admins of T and cluster administrators may. The calendar is\n"
		"checked again: an offering whose capacity was taken meanwhile is refused.\n\n"
		"options:\n"
		"  --team T      the team the plan is for\n"
		"  --name NAME   the plan's name (for hpq submit --plan and the other\n"
		"                plan commands)\n"
		"  --json        print the plan as a JSON object\n",
	.exec = create_exec,
};

static const struct cmd_entry plan_list_entry = {
	.name = "list",
	.usage = "plan list [--team T] [--all] [--json]",
	.summary = "list plans that have not ended (--all: every plan)",
	.help = "options:\n"
		"  --team T   only team T's plans\n"
		"  --all      completed and cancelled plans too\n"
		"  --json     print a JSON array of plans\n",
	.exec = list_exec,
};

static const struct cmd_entry plan_show_entry = {
	.name = "show",
	.usage = "plan show NAME [--json]",
	.summary = "show a plan with its segments and nodes",
	.help = "options:\n"
		"  --json   print the plan as a JSON object\n",
	.exec = show_exec,
};

static const struct cmd_entry plan_cancel_entry = {
	.name = "cancel",
	.usage = "plan cancel NAME",
	.summary = "cancel a plan: what it has not used yet is free again",
	.exec = cancel_exec,
};

static const struct cmd_entry *const plan_table[] = {
	&plan_search_entry, &plan_create_entry, &plan_list_entry, &plan_show_entry,
	&plan_cancel_entry, NULL,
};

const struct cmd_entry cmd_plan_entry = {
	.name = "plan",
	.usage = "plan search|create|list|show|cancel ...",
	.summary = "training plans: reserve whole nodes ahead for a team's run",
	.sub = plan_table,
};
