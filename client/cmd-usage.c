/*
 * cmd-usage.c: `hpq usage`, GPU-hours per team and pool over a period:
 * used, of it within the team's guarantee and borrowed beyond it, and how
 * much of its unused guarantee others used (lent); or per user or class,
 * used only; or per training plan, used next to what it reserves. The daemon accounts in hourly buckets (daemon/usage.c), so
 * --since is rounded down to the hour; the figures run to now.
 */
#include <string.h>
#include <time.h>

#include "cli.h"
#include "dash.h"
#include "msg.h"
#include "table.h"

enum {
	OPT_SINCE = CLI_OPT_FIRST_PRIVATE,
	OPT_BY,
	OPT_CSV,
};

static const struct option usage_options[] = {
	{"since", required_argument, NULL, OPT_SINCE},
	{"by", required_argument, NULL, OPT_BY},
	{"csv", no_argument, NULL, OPT_CSV},
	CLI_COMMON_OPTIONS,
};

static json_t *row_json(const Hpq__UsageRow *r, bool team, bool plan)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(r->key));
	json_object_set_new(o, "pool", json_string(r->pool));
	json_object_set_new(o, "used_gpu_h", json_real(r->used_gpu_h));
	if (plan)
		json_object_set_new(o, "reserved_gpu_h", json_real(r->reserved_gpu_h));
	if (team) {
		json_object_set_new(o, "within_gpu_h", json_real(r->within_gpu_h));
		json_object_set_new(o, "borrowed_gpu_h", json_real(r->borrowed_gpu_h));
		json_object_set_new(o, "lent_gpu_h", json_real(r->lent_gpu_h));
	}
	return o;
}

static void print(const struct cli *cli, const Hpq__UsageReply *u, bool csv)
{
	bool team = !strcmp(u->by, "team"), plan = !strcmp(u->by, "plan");
	FILE *f = cli->out.out;
	char b1[OUTPUT_TIME_LEN], b2[OUTPUT_TIME_LEN];

	if (cli->json) {
		json_t *o = json_object(), *rows = json_array();

		for (size_t i = 0; i < u->n_rows; i++)
			json_array_append_new(rows, row_json(u->rows[i], team, plan));
		json_object_set_new(o, "by", json_string(u->by));
		json_object_set_new(o, "since", json_string(output_time_iso(u->since > 0 ? u->since
										: 1, b1,
								     sizeof(b1))));
		json_object_set_new(o, "until", json_string(output_time_iso(u->until, b2,
									      sizeof(b2))));
		json_object_set_new(o, "rows", rows);
		json_dumpf(o, f, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
		fputc('\n', f);
		json_decref(o);
		return;
	}
	if (csv) {
		fprintf(f, "%s,pool,used_gpu_h%s\n", u->by,
			team ? ",within_gpu_h,borrowed_gpu_h,lent_gpu_h"
			     : plan ? ",reserved_gpu_h" : "");
		for (size_t i = 0; i < u->n_rows; i++) {
			const Hpq__UsageRow *r = u->rows[i];

			fprintf(f, "%s,%s,%.3f", r->key, r->pool, r->used_gpu_h);
			if (plan)
				fprintf(f, ",%.3f", r->reserved_gpu_h);
			if (team)
				fprintf(f, ",%.3f,%.3f,%.3f", r->within_gpu_h, r->borrowed_gpu_h,
					r->lent_gpu_h);
			fputc('\n', f);
		}
		return;
	}
	fprintf(f, "GPU-hours from %s to %s\n\n",
		u->since > 0 ? output_time_local(u->since, b1, sizeof(b1)) : "the start",
		output_time_local(u->until, b2, sizeof(b2)));
	{
		struct table *t = team ? table_new(6, "TEAM", "POOL", "USED", "WITHIN", "BORROWED",
						   "LENT")
				  : plan ? table_new(4, "PLAN", "POOL", "USED", "RESERVED")
				       : table_new(3, !strcmp(u->by, "user") ? "USER" : "CLASS",
						   "POOL", "USED");

		for (size_t c = 2; c < (team ? 6u : plan ? 4u : 3u); c++)
			table_align_right(t, c);
		for (size_t i = 0; i < u->n_rows; i++) {
			const Hpq__UsageRow *r = u->rows[i];

			table_add(t, NULL, "%s", r->key);
			table_add(t, NULL, "%s", r->pool);
			table_add(t, NULL, "%.2f", r->used_gpu_h);
			if (plan)
				table_add(t, NULL, "%.2f", r->reserved_gpu_h);
			if (team) {
				table_add(t, NULL, "%.2f", r->within_gpu_h);
				table_add(t, r->borrowed_gpu_h > 0 && cli->out.colour ? "\033[33m"
										     : NULL,
					  "%.2f", r->borrowed_gpu_h);
				table_add(t, NULL, "%.2f", r->lent_gpu_h);
			}
		}
		table_print(t, f, cli->out.colour);
		table_free(t);
	}
}

static int usage_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__UsageRequest ur = HPQ__USAGE_REQUEST__INIT;
	uint64_t v = 24 * 3600;
	bool csv = false;
	int c, r;

	ur.by = (char *)"team";
	while ((c = cli_getopt(cli, e, argc, argv, ":h", usage_options)) != -1) {
		switch (c) {
		case OPT_SINCE:
			if (cli_parse_duration(cli, "--since", optarg, &v) != 0)
				return CLI_USAGE;
			break;
		case OPT_BY:
			if (strcmp(optarg, "team") && strcmp(optarg, "user") &&
			    strcmp(optarg, "class") && strcmp(optarg, "plan"))
				return cli_usage_error(cli, "--by takes team, user, class or plan, "
						       "not '%s'", optarg);
			ur.by = optarg;
			break;
		case OPT_CSV:
			csv = true;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (csv && cli->json)
		return cli_usage_error(cli, "give either --json or --csv, not both");
	ur.since = (int64_t)time(NULL) * 1000 - (int64_t)v * 1000;
	if (ur.since < 0)
		ur.since = 0;

	req.body_case = HPQ__ENVELOPE__BODY_USAGE;
	req.usage = &ur;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_USAGE_REPLY, "read the usage", &reply);
	if (r != 0)
		return r;
	print(cli, reply->usage_reply, csv);
	hpq_msg_free(reply);
	return CLI_OK;
}

const struct cmd_entry cmd_usage_entry = {
	.name = "usage",
	.usage = "usage [--since DURATION] [--by team|user|class|plan] [--json|--csv]",
	.summary = "GPU-hours per team (within guarantee, borrowed, lent), user, class or plan",
	.help = "options:\n"
		"  --since DURATION     the period up to now (default 24h; whole hours)\n"
		"  --by team|user|class|plan\n"
		"                       group by team (default; with within, borrowed and\n"
		"                       lent), by user, by class, or by training plan (with\n"
		"                       the GPU-hours it reserves)\n"
		"  --json               a JSON object {by, since, until, rows}\n"
		"  --csv                comma-separated values with a header line\n",
	.exec = usage_exec,
};
