/*
 * cmd-status.c: `hpq status`, the cluster on one screen: a line
 * per pool (nodes by health and service, what is used of the capacity,
 * idle compute), a team table (guarantee, use, borrowing and lending,
 * queue figures, a flag for a guarantee nobody uses) and a class table.
 * The daemon computes every figure from its memory; this file only
 * lays them out. Tables show the pool's main resource: GPUs where the
 * pool has any, else CPUs. --json has all three, in the names scripts
 * rely on (dash.c). A degraded daemon (it cannot write its state: a
 * full or failing disk) says so on the first line.
 */
#include <string.h>

#include "cli.h"
#include "dash.h"
#include "msg.h"
#include "parse.h"
#include "table.h"

enum {
	OPT_POOL = CLI_OPT_FIRST_PRIVATE,
	OPT_TEAM,
};

static const struct option status_options[] = {
	{"pool", required_argument, NULL, OPT_POOL},
	{"team", required_argument, NULL, OPT_TEAM},
	CLI_COMMON_OPTIONS,
};

#define RED "\033[31m"
#define YELLOW "\033[33m"
#define GREEN "\033[32m"

/* GPUs unless the pool has none; then CPUs. */
static bool pool_uses_gpus(const Hpq__StatusReply *s, const char *pool)
{
	for (size_t i = 0; i < s->n_pools; i++)
		if (!strcmp(s->pools[i]->name, pool))
			return s->pools[i]->capacity && s->pools[i]->capacity->gpus;
	return true;
}

static uint64_t pick(const Hpq__Resources *r, bool gpus)
{
	return r ? (gpus ? r->gpus : r->cpus) : 0;
}

static char *counts(Hpq__StateCount *const *v, size_t n, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%u %s", i ? ", " : "", v[i]->count,
					v[i]->name);
	return buf;
}

static char *dur(int64_t s, char *buf, size_t len)
{
	if (s <= 0)
		return strcpy(buf, "-");
	return hpq_format_duration((uint64_t)s, buf, len);
}

static void print_text(const struct output_ctx *o, const Hpq__StatusReply *s)
{
	struct table *t;
	char b1[128], b2[128], b3[64];

	/* First, and loud: hpqd cannot write its state (a full or failing disk). */
	if (s->store_state && *s->store_state && strcmp(s->store_state, "ok")) {
		char since[OUTPUT_TIME_LEN];

		fprintf(o->out, "%sDEGRADED: %s; hpqd serves reads and refuses every change "
			"until %s (since %s)%s\n", o->colour ? RED : "", s->store_problem,
			strcmp(s->store_state, "full") ? "it can write its state again"
						       : "space returns",
			output_time_local(s->store_degraded_since, since, sizeof(since)),
			o->colour ? "\033[0m" : "");
		if (s->store_waiting_rows)
			fprintf(o->out, "  %llu changes made before the failure wait for their "
				"commit (none of them acknowledged yet)\n",
				(unsigned long long)s->store_waiting_rows);
	}
	if (s->insecure)
		fprintf(o->out, "WARNING: hpqd runs --insecure: TCP is plain and every peer is "
			"who it says it is (tests and demos only)\n");
	fprintf(o->out, "cluster: %u running, %u pending; idle allocation %s\n", s->running,
		s->pending, s->policy ? s->policy->idle : "?");
	if (s->ca_hash && *s->ca_hash && !s->insecure)
		fprintf(o->out, "security: TLS with the cluster CA %s%s\n", s->ca_hash,
			s->munge ? "; users over TCP by MUNGE" : "");
	for (size_t i = 0; i < s->n_pools; i++) {
		const Hpq__PoolStatus *p = s->pools[i];
		const Hpq__Resources *c = p->capacity, *u = p->used;

		fprintf(o->out, "pool %s: %u node%s (%s; %s)\n", p->name, p->nodes,
			p->nodes == 1 ? "" : "s", p->nodes ? counts(p->health, p->n_health, b1,
								    sizeof(b1)) : "none",
			p->nodes ? counts(p->service, p->n_service, b2, sizeof(b2)) : "-");
		fprintf(o->out, "  used %u/%u gpus, %u/%u cpus, %s/", u->gpus, c->gpus, u->cpus,
			c->cpus, hpq_format_size_mib(u->mem, b3, sizeof(b3)));
		fprintf(o->out, "%s mem; idle %u gpus, %u cpus; guaranteed %u gpus, %u cpus\n",
			hpq_format_size_mib(c->mem, b1, sizeof(b1)), p->idle->gpus, p->idle->cpus,
			p->guaranteed->gpus, p->guaranteed->cpus);
	}
	fputc('\n', o->out);

	t = table_new(15, "TEAM", "POOL", "RES", "GUAR", "USED", "BORROWED", "LENT", "UTIL",
		      "RUN", "PEND", "PRE1H", "OLDEST-WAIT", "LONGEST-RUN", "FLAG", "WEIGHT");
	for (size_t c = 3; c <= 12; c++)
		table_align_right(t, c);
	table_align_right(t, 14);
	for (size_t i = 0; i < s->n_teams; i++) {
		const Hpq__TeamStatus *ts = s->teams[i];
		bool g = pool_uses_gpus(s, ts->pool);
		uint64_t guar = pick(ts->guarantee, g), used = pick(ts->used, g);
		uint64_t borrowed = pick(ts->borrowed, g), lent = pick(ts->lent, g);
		bool idle_guar = guar && !used;

		table_add(t, NULL, "%s", ts->name);
		table_add(t, NULL, "%s", ts->pool);
		table_add(t, NULL, "%s", g ? "gpus" : "cpus");
		table_add(t, NULL, "%llu", (unsigned long long)guar);
		table_add(t, NULL, "%llu", (unsigned long long)used);
		table_add(t, borrowed ? YELLOW : NULL, "%llu", (unsigned long long)borrowed);
		table_add(t, lent ? GREEN : NULL, "%llu", (unsigned long long)lent);
		if (guar)
			table_add(t, used > guar ? YELLOW : NULL, "%llu%%",
				  (unsigned long long)(used * 100 / guar));
		else
			table_add(t, NULL, "-");
		table_add(t, NULL, "%u", ts->running);
		table_add(t, NULL, "%u", ts->pending);
		table_add(t, ts->preempted_1h ? YELLOW : NULL, "%u", ts->preempted_1h);
		if (*ts->oldest_pending_reason)
			table_add(t, ts->oldest_pending_s > 3600 ? RED
				     : ts->oldest_pending_s > 600 ? YELLOW : NULL,
				  "%s (%s)", dur(ts->oldest_pending_s, b1, sizeof(b1)),
				  ts->oldest_pending_reason);
		else
			table_add(t, NULL, "-");
		table_add(t, NULL, "%s", dur(ts->longest_running_s, b2, sizeof(b2)));
		table_add(t, idle_guar ? RED : NULL, "%s", idle_guar ? "unused-guarantee" : "");
		table_add(t, NULL, "%u", ts->weight);
	}
	table_print(t, o->out, o->colour);
	table_free(t);
	fputc('\n', o->out);

	t = table_new(5, "CLASS", "WEIGHT", "PREEMPTIBLE", "RUNNING", "PENDING");
	table_align_right(t, 1);
	table_align_right(t, 3);
	table_align_right(t, 4);
	for (size_t i = 0; i < s->n_classes; i++) {
		const Hpq__ClassStatus *c = s->classes[i];

		table_add(t, NULL, "%s", c->name);
		table_add(t, NULL, "%u", c->weight);
		table_add(t, NULL, "%s", c->preemptible ? "yes" : "no");
		table_add(t, NULL, "%u", c->running);
		table_add(t, NULL, "%u", c->pending);
	}
	table_print(t, o->out, o->colour);
	table_free(t);

	if (s->n_plans) {
		fputc('\n', o->out);
		t = table_new(6, "PLAN", "TEAM", "POOL", "STATE", "NODES", "NEXT CHANGE");
		table_align_right(t, 4);
		for (size_t i = 0; i < s->n_plans; i++) {
			const Hpq__Plan *p = s->plans[i];
			char when[OUTPUT_TIME_LEN];

			table_add(t, NULL, "%s", p->name);
			table_add(t, NULL, "%s", p->team);
			table_add(t, NULL, "%s", p->pool);
			table_add(t, NULL, "%s", p->state);
			table_add(t, NULL, "%u", p->nodes);
			table_add(t, NULL, "%s", p->next_change > 0
				  ? output_time_local(p->next_change, when, sizeof(when)) : "-");
		}
		table_print(t, o->out, o->colour);
		table_free(t);
	}

	for (size_t i = 0; i < s->n_pools; i++) {
		const Hpq__PoolStatus *p = s->pools[i];
		const Hpq__Resources *gs = p->guaranteed, *c = p->capacity;

		char over[160] = "";
		size_t off = 0;

		if (gs->gpus > c->gpus)
			off += (size_t)snprintf(over + off, sizeof(over) - off, "%u of %u gpus",
						gs->gpus, c->gpus);
		if (gs->cpus > c->cpus)
			off += (size_t)snprintf(over + off, sizeof(over) - off, "%s%u of %u cpus",
						off ? ", " : "", gs->cpus, c->cpus);
		if (gs->mem > c->mem)
			snprintf(over + off, sizeof(over) - off, "%s%s of %s mem", off ? ", " : "",
				 hpq_format_size_mib(gs->mem, b1, sizeof(b1)),
				 hpq_format_size_mib(c->mem, b2, sizeof(b2)));
		if (over[0])
			fprintf(o->out, "\n%swarning: pool %s is over-committed: guarantees add up "
				"to %s of healthy capacity; not every team can have its guarantee "
				"at once%s\n", o->colour ? RED : "", p->name, over,
				o->colour ? "\033[0m" : "");
	}
}

static int status_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__StatusRequest sr = HPQ__STATUS_REQUEST__INIT;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", status_options)) != -1) {
		switch (c) {
		case OPT_POOL:
			if (cli_parse_name(cli, "pool", optarg) != 0)
				return CLI_USAGE;
			sr.pool = optarg;
			break;
		case OPT_TEAM:
			if (cli_parse_name(cli, "team", optarg) != 0)
				return CLI_USAGE;
			sr.team = optarg;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);

	req.body_case = HPQ__ENVELOPE__BODY_STATUS;
	req.status = &sr;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_STATUS_REPLY, "get the status", &reply);
	if (r != 0)
		return r;
	if (cli->json) {
		json_t *j = dash_status_json(reply->status_reply);

		json_dumpf(j, cli->out.out, JSON_INDENT(2));
		fputc('\n', cli->out.out);
		json_decref(j);
	} else {
		print_text(&cli->out, reply->status_reply);
	}
	hpq_msg_free(reply);
	return CLI_OK;
}

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.usage = "status [--pool P] [--team T] [--json]",
	.summary = "the cluster at a glance: pools, teams' guarantees and use, classes",
	.help = "options:\n"
		"  --pool P    only pool P\n"
		"  --team T    only team T\n"
		"  --json      print a JSON object with pools, teams, classes and policy\n",
	.exec = status_exec,
};
