/*
 * cmd-team.c: `hpq team add|set|show|list|rm`, the administration of teams
 * and their per-pool quotas (docs/design.md §4): guarantee, sharing, borrow and lend
 * limits, fair-share weight, preemption of the team's own work, members
 * and default class. See cmd-team.h for how options map to the request.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd-team.h"
#include "error.h"
#include "log.h"
#include "msg.h"
#include "parse.h"
#include "xalloc.h"

enum {
	OPT_POOL = CLI_OPT_FIRST_PRIVATE,
	OPT_GPUS,
	OPT_CPUS,
	OPT_MEM,
	OPT_SHARING,
	OPT_BORROW_LIMIT,
	OPT_BORROW_LIMIT_ABS,
	OPT_LEND_LIMIT,
	OPT_WEIGHT,
	OPT_PREEMPT_OWN,
	OPT_MEMBERS,
	OPT_ADMINS,
	OPT_DEFAULT_CLASS,
};

static const struct option team_set_options[] = {
	{"pool", required_argument, NULL, OPT_POOL},
	{"gpus", required_argument, NULL, OPT_GPUS},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"mem", required_argument, NULL, OPT_MEM},
	{"sharing", required_argument, NULL, OPT_SHARING},
	{"borrow-limit", required_argument, NULL, OPT_BORROW_LIMIT},
	{"borrow-limit-abs", required_argument, NULL, OPT_BORROW_LIMIT_ABS},
	{"lend-limit", required_argument, NULL, OPT_LEND_LIMIT},
	{"weight", required_argument, NULL, OPT_WEIGHT},
	{"preempt-own", required_argument, NULL, OPT_PREEMPT_OWN},
	{"members", required_argument, NULL, OPT_MEMBERS},
	{"admins", required_argument, NULL, OPT_ADMINS},
	{"default-class", required_argument, NULL, OPT_DEFAULT_CLASS},
	CLI_COMMON_OPTIONS,
};

static const struct option team_plain_options[] = {
	CLI_COMMON_OPTIONS,
};

/* Guarantees beyond any real pool are typos; the daemon checks the pool. */
#define TEAM_MAX_COUNT 1000000u
#define TEAM_MAX_MEM_MIB ((uint64_t)1 << 40)

/* ---------------------------------------------------------------- parsing */

int cmd_team_parse_limit(const char *s, Hpq__Resources *ret)
{
	Hpq__Resources r = HPQ__RESOURCES__INIT;
	char *copy, *item, *save = NULL;
	unsigned seen = 0;
	int rc = HPQ_EINVAL;

	r.gpus = HPQ_UNLIMITED_COUNT;
	r.cpus = HPQ_UNLIMITED_COUNT;
	r.mem = HPQ_UNLIMITED_MEM;
	if (strcmp(s, "unlimited") == 0) {
		*ret = r;
		return 0;
	}
	if (s[0] == '\0' || s[0] == ',' || s[strlen(s) - 1] == ',' || strstr(s, ",,"))
		return HPQ_EINVAL;
	copy = xstrdup(s);
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *val = strchr(item, '=');
		bool unlimited;
		uint64_t v;

		if (!val)
			goto out;
		*val++ = '\0';
		unlimited = strcmp(val, "unlimited") == 0;
		if (strcmp(item, "gpus") == 0 && !(seen & 1)) {
			if (!unlimited && hpq_parse_uint(val, 0, TEAM_MAX_COUNT, &v) < 0)
				goto out;
			r.gpus = unlimited ? HPQ_UNLIMITED_COUNT : (uint32_t)v;
			seen |= 1;
		} else if (strcmp(item, "cpus") == 0 && !(seen & 2)) {
			if (!unlimited && hpq_parse_uint(val, 0, TEAM_MAX_COUNT, &v) < 0)
				goto out;
			r.cpus = unlimited ? HPQ_UNLIMITED_COUNT : (uint32_t)v;
			seen |= 2;
		} else if (strcmp(item, "mem") == 0 && !(seen & 4)) {
			if (!unlimited && (hpq_parse_size_mib(val, &v) < 0 || v > TEAM_MAX_MEM_MIB))
				goto out;
			r.mem = unlimited ? HPQ_UNLIMITED_MEM : v;
			seen |= 4;
		} else {
			goto out;
		}
	}
	*ret = r;
	rc = 0;
out:
	free(copy);
	return rc;
}

static void team_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* --members and --admins: "U,@G,..." (users and @groups); "" for none. */
static int team_parse_names(struct cli *cli, const char *opt, const char *arg,
			    char ***ret_names, size_t *ret_n)
{
	char *copy, *item, *save = NULL, **names = NULL;
	size_t n = 0;
	int r = CLI_USAGE;

	if (arg[0] == '\0') {
		*ret_names = NULL;
		*ret_n = 0;
		return 0;
	}
	if (arg[0] == ',' || arg[strlen(arg) - 1] == ',' || strstr(arg, ",,"))
		return cli_usage_error(cli, "%s has an empty entry in '%s'", opt, arg);
	copy = xstrdup(arg);
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		bool dup = false;

		if (item[0] == '@') {
			if (hpq_check_group_name(item + 1) < 0) {
				cli_usage_error(cli, "%s: '%s' is not @ and a group name", opt,
						item);
				goto out;
			}
		} else if (cli_parse_user(cli, opt, item) != 0) {
			goto out;
		}
		for (size_t i = 0; i < n && !dup; i++)
			dup = strcmp(names[i], item) == 0;
		if (dup)
			continue;
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = xstrdup(item);
	}
	*ret_names = names;
	*ret_n = n;
	names = NULL;
	n = 0;
	r = 0;
out:
	team_names_free(names, n);
	free(copy);
	return r;
}

static struct cmd_team_pool *team_pool_add(struct cmd_team *t, const char *pool)
{
	struct cmd_team_pool *p;

	t->pools = xreallocarray(t->pools, t->n_pools + 1, sizeof(*t->pools));
	p = &t->pools[t->n_pools++];
	memset(p, 0, sizeof(*p));
	p->pool = pool;
	hpq__resources__init(&p->guarantee);
	hpq__resources__init(&p->borrow_abs);
	hpq__resources__init(&p->lend);
	return p;
}

/* The group a quota option applies to: the last --pool, else "default". */
static struct cmd_team_pool *team_current_pool(struct cmd_team *t)
{
	if (t->n_pools == 0)
		return team_pool_add(t, "default");
	return &t->pools[t->n_pools - 1];
}

static const char *team_long_name(int opt)
{
	for (const struct option *o = team_set_options; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

void cmd_team_release(struct cmd_team *t)
{
	team_names_free(t->members, t->n_members);
	team_names_free(t->admins, t->n_admins);
	free(t->pools);
	memset(t, 0, sizeof(*t));
}

int cmd_team_parse(struct cli *cli, const struct cmd_entry *e, int argc, char **argv,
		   struct cmd_team *ret)
{
	struct cmd_team t;
	struct cmd_team_pool *p;
	uint64_t v;
	int c, r = CLI_USAGE;

	memset(&t, 0, sizeof(t));
	while ((c = cli_getopt(cli, e, argc, argv, ":h", team_set_options)) != -1) {
		unsigned bit = 0;

		switch (c) {
		case OPT_POOL:
			if (cli_parse_name(cli, "pool", optarg) != 0)
				goto out;
			for (size_t i = 0; i < t.n_pools; i++) {
				if (strcmp(t.pools[i].pool, optarg) == 0) {
					cli_usage_error(cli, "--pool %s given twice; put all "
							"of its options after one --pool", optarg);
					goto out;
				}
			}
			team_pool_add(&t, optarg);
			continue;
		case OPT_WEIGHT:
			if (t.given & TEAM_F_WEIGHT)
				goto twice;
			if (cli_parse_uint(cli, "--weight", optarg, 0, TEAM_MAX_WEIGHT, &v) != 0)
				goto out;
			t.weight = (uint32_t)v;
			t.given |= TEAM_F_WEIGHT;
			continue;
		case OPT_PREEMPT_OWN:
			if (t.given & TEAM_F_PREEMPT_OWN)
				goto twice;
			if (strcmp(optarg, "lower-priority") != 0 && strcmp(optarg, "never") != 0) {
				cli_usage_error(cli, "--preempt-own takes lower-priority or never, "
						"not '%s'", optarg);
				goto out;
			}
			t.preempt_own = optarg;
			t.given |= TEAM_F_PREEMPT_OWN;
			continue;
		case OPT_MEMBERS:
			if (t.given & TEAM_F_MEMBERS)
				goto twice;
			if (team_parse_names(cli, "--members", optarg, &t.members,
					     &t.n_members) != 0)
				goto out;
			t.given |= TEAM_F_MEMBERS;
			continue;
		case OPT_ADMINS:
			if (t.given & TEAM_F_ADMINS)
				goto twice;
			if (team_parse_names(cli, "--admins", optarg, &t.admins, &t.n_admins) != 0)
				goto out;
			t.given |= TEAM_F_ADMINS;
			continue;
		case OPT_DEFAULT_CLASS:
			if (t.given & TEAM_F_DEFAULT_CLASS)
				goto twice;
			/* An empty value removes the default class. */
			if (optarg[0] && cli_parse_name(cli, "class", optarg) != 0)
				goto out;
			t.default_class = optarg;
			t.given |= TEAM_F_DEFAULT_CLASS;
			continue;
		case CLI_OPT_HELP:
			r = CLI_DONE;
			goto out;
		case OPT_GPUS:
			bit = TEAM_Q_GPUS;
			break;
		case OPT_CPUS:
			bit = TEAM_Q_CPUS;
			break;
		case OPT_MEM:
			bit = TEAM_Q_MEM;
			break;
		case OPT_SHARING:
			bit = TEAM_Q_SHARING;
			break;
		case OPT_BORROW_LIMIT:
			bit = TEAM_Q_BORROW_PCT;
			break;
		case OPT_BORROW_LIMIT_ABS:
			bit = TEAM_Q_BORROW_ABS;
			break;
		case OPT_LEND_LIMIT:
			bit = TEAM_Q_LEND;
			break;
		default:
			goto out;
		}

		/* A quota option of the current --pool group. */
		p = team_current_pool(&t);
		if (p->given & bit) {
			cli_usage_error(cli, "--%s given twice for pool %s", team_long_name(c),
					p->pool);
			goto out;
		}
		p->given |= bit;
		switch (c) {
		case OPT_GPUS:
			if (cli_parse_uint(cli, "--gpus", optarg, 0, TEAM_MAX_COUNT, &v) != 0)
				goto out;
			p->guarantee.gpus = (uint32_t)v;
			break;
		case OPT_CPUS:
			if (cli_parse_uint(cli, "--cpus", optarg, 0, TEAM_MAX_COUNT, &v) != 0)
				goto out;
			p->guarantee.cpus = (uint32_t)v;
			break;
		case OPT_MEM:
			if (cli_parse_size(cli, "--mem", optarg, TEAM_MAX_MEM_MIB, &v) != 0)
				goto out;
			p->guarantee.mem = v;
			break;
		case OPT_SHARING:
			if (strcmp(optarg, "dont-lend") != 0 && strcmp(optarg, "lend") != 0 &&
			    strcmp(optarg, "lend-and-borrow") != 0) {
				cli_usage_error(cli, "--sharing takes dont-lend, lend or "
						"lend-and-borrow, not '%s'", optarg);
				goto out;
			}
			p->sharing = optarg;
			break;
		case OPT_BORROW_LIMIT: {
			char pct[32];
			size_t n = strlen(optarg);

			/* "50" and "50%" alike. */
			if (n > 0 && n < sizeof(pct) && optarg[n - 1] == '%')
				n--;
			snprintf(pct, sizeof(pct), "%.*s", (int)n, optarg);
			if (hpq_parse_uint(pct, 0, TEAM_MAX_BORROW_PCT, &v) < 0) {
				cli_usage_error(cli, "--borrow-limit takes a percentage of the "
						"guarantee from 0 to %d, not '%s'",
						TEAM_MAX_BORROW_PCT, optarg);
				goto out;
			}
			p->borrow_pct = (uint32_t)v;
			break;
		}
		case OPT_BORROW_LIMIT_ABS:
			p->has_borrow_abs = strcmp(optarg, "none") != 0;
			if (p->has_borrow_abs && cmd_team_parse_limit(optarg, &p->borrow_abs) < 0) {
				cli_usage_error(cli, "--borrow-limit-abs takes none, unlimited or "
						"gpus=N,cpus=N,mem=SIZE (any of them), not '%s'",
						optarg);
				goto out;
			}
			break;
		case OPT_LEND_LIMIT:
			p->has_lend = strcmp(optarg, "all") != 0;
			if (p->has_lend && cmd_team_parse_limit(optarg, &p->lend) < 0) {
				cli_usage_error(cli, "--lend-limit takes all or "
						"gpus=N,cpus=N,mem=SIZE (any of them), not '%s'",
						optarg);
				goto out;
			}
			break;
		}
	}
	if (optind >= argc) {
		cli_usage_error(cli, "which team? give its name");
		goto out;
	}
	if (optind + 1 < argc) {
		cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (cli_parse_name(cli, "team", argv[optind]) != 0)
		goto out;
	t.name = argv[optind];
	*ret = t;
	return 0;
twice:
	cli_usage_error(cli, "--%s given twice", team_long_name(c));
out:
	cmd_team_release(&t);
	return r;
}

/* ---------------------------------------------------------------- request */

static void team_field(struct cmd_team_request *r, const char *name)
{
	size_t n = r->req.n_fields;

	for (size_t i = 0; i < n; i++)
		if (strcmp(r->fields[i], name) == 0)
			return;
	if (n >= sizeof(r->fields) / sizeof(r->fields[0]))
		hpq_fatal("team request: too many fields");
	r->fields[n] = (char *)name;
	r->req.n_fields = n + 1;
}

/* A quota of the request: a copy of q (or defaults when NULL) with its
 * own vectors, so that merging never writes into the daemon's reply. */
static void team_quota_init(struct cmd_team_request *r, size_t i, const Hpq__PoolQuota *q,
			    const char *pool)
{
	Hpq__PoolQuota *dst = &r->quotas[i];
	Hpq__Resources *res = &r->res[3 * i];

	hpq__pool_quota__init(dst);
	for (int k = 0; k < 3; k++)
		hpq__resources__init(&res[k]);
	dst->guarantee = &res[0];
	dst->pool = (char *)pool;
	if (q) {
		dst->sharing = q->sharing;
		dst->borrow_limit_pct = q->borrow_limit_pct;
		dst->has_borrow_limit_abs = q->has_borrow_limit_abs;
		dst->has_lend_limit = q->has_lend_limit;
		if (q->guarantee)
			res[0] = *q->guarantee;
		if (q->borrow_limit_abs)
			res[1] = *q->borrow_limit_abs;
		if (q->lend_limit)
			res[2] = *q->lend_limit;
	} else {
		dst->sharing = (char *)TEAM_DEFAULT_SHARING;
		dst->borrow_limit_pct = TEAM_DEFAULT_BORROW_PCT;
	}
	dst->borrow_limit_abs = dst->has_borrow_limit_abs ? &res[1] : NULL;
	dst->lend_limit = dst->has_lend_limit ? &res[2] : NULL;
	r->quota_ptrs[i] = dst;
}

void cmd_team_request(const struct cmd_team *t, bool create, const Hpq__Team *existing,
		      struct cmd_team_request *ret)
{
	struct cmd_team_request r;
	size_t nq = existing ? existing->n_quotas : 0, cap = nq + t->n_pools;

	memset(&r, 0, sizeof(r));
	hpq__team_set_request__init(&r.req);
	hpq__team__init(&r.team);
	r.quotas = xcalloc(cap ? cap : 1, sizeof(*r.quotas));
	r.quota_ptrs = xcalloc(cap ? cap : 1, sizeof(*r.quota_ptrs));
	r.res = xcalloc(3 * (cap ? cap : 1), sizeof(*r.res));

	r.team.name = (char *)t->name;
	if (existing) {
		r.team.weight = existing->weight;
		r.team.preempt_own = existing->preempt_own;
		r.team.members = existing->members;
		r.team.n_members = existing->n_members;
		r.team.admins = existing->admins;
		r.team.n_admins = existing->n_admins;
		r.team.default_class = existing->default_class;
	}
	if (t->given & TEAM_F_WEIGHT) {
		r.team.weight = t->weight;
		team_field(&r, "weight");
	}
	if (t->given & TEAM_F_PREEMPT_OWN) {
		r.team.preempt_own = (char *)t->preempt_own;
		team_field(&r, "preempt_own");
	}
	if (t->given & TEAM_F_MEMBERS) {
		r.team.members = t->members;
		r.team.n_members = t->n_members;
		team_field(&r, "members");
	}
	if (t->given & TEAM_F_ADMINS) {
		r.team.admins = t->admins;
		r.team.n_admins = t->n_admins;
		team_field(&r, "admins");
	}
	if (t->given & TEAM_F_DEFAULT_CLASS) {
		r.team.default_class = (char *)t->default_class;
		team_field(&r, "default_class");
	}

	for (size_t i = 0; i < nq; i++)
		team_quota_init(&r, i, existing->quotas[i], existing->quotas[i]->pool);
	for (size_t k = 0; k < t->n_pools; k++) {
		const struct cmd_team_pool *p = &t->pools[k];
		Hpq__PoolQuota *q = NULL;
		size_t i;

		for (i = 0; i < nq && !q; i++)
			if (strcmp(r.quotas[i].pool, p->pool) == 0)
				q = &r.quotas[i];
		if (!q) {
			team_quota_init(&r, nq, NULL, p->pool);
			q = &r.quotas[nq++];
		}
		/* Naming the pool at all makes the quota part of the change. */
		team_field(&r, "quota.guarantee");
		if (p->given & TEAM_Q_GPUS)
			q->guarantee->gpus = p->guarantee.gpus;
		if (p->given & TEAM_Q_CPUS)
			q->guarantee->cpus = p->guarantee.cpus;
		if (p->given & TEAM_Q_MEM)
			q->guarantee->mem = p->guarantee.mem;
		if (p->given & TEAM_Q_SHARING) {
			q->sharing = (char *)p->sharing;
			team_field(&r, "quota.sharing");
		}
		if (p->given & TEAM_Q_BORROW_PCT) {
			q->borrow_limit_pct = p->borrow_pct;
			team_field(&r, "quota.borrow_limit_pct");
		}
		if (p->given & TEAM_Q_BORROW_ABS) {
			Hpq__Resources *res = &r.res[3 * (size_t)(q - r.quotas) + 1];

			q->has_borrow_limit_abs = p->has_borrow_abs;
			*res = p->borrow_abs;
			q->borrow_limit_abs = p->has_borrow_abs ? res : NULL;
			team_field(&r, "quota.borrow_limit_abs");
		}
		if (p->given & TEAM_Q_LEND) {
			Hpq__Resources *res = &r.res[3 * (size_t)(q - r.quotas) + 2];

			q->has_lend_limit = p->has_lend;
			*res = p->lend;
			q->lend_limit = p->has_lend ? res : NULL;
			team_field(&r, "quota.lend_limit");
		}
	}
	r.team.quotas = r.quota_ptrs;
	r.team.n_quotas = nq;
	r.req.create = create;
	*ret = r;
	/* The request points into r; now it must point into *ret. */
	ret->req.team = &ret->team;
	ret->req.fields = ret->fields;
}

void cmd_team_request_release(struct cmd_team_request *r)
{
	free(r->quotas);
	free(r->quota_ptrs);
	free(r->res);
	memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------------- commands */

/* Fetches the teams named name (all when NULL). */
static int team_fetch(struct cli *cli, const char *name, Hpq__Envelope **ret_reply)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT;
	Hpq__TeamListRequest list = HPQ__TEAM_LIST_REQUEST__INIT;

	if (name)
		list.name = (char *)name;
	req.body_case = HPQ__ENVELOPE__BODY_TEAM_LIST;
	req.team_list = &list;
	return cli_call(cli, &req, HPQ__ENVELOPE__BODY_TEAM_LIST_REPLY,
			name ? "look up the team" : "list the teams", ret_reply);
}

/* The team called name in a TeamListReply, or NULL. */
static const Hpq__Team *team_find(const Hpq__Envelope *reply, const char *name)
{
	for (size_t i = 0; i < reply->team_list_reply->n_teams; i++)
		if (strcmp(reply->team_list_reply->teams[i]->name, name) == 0)
			return reply->team_list_reply->teams[i];
	return NULL;
}

static int team_set_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply, *current = NULL;
	const Hpq__Team *existing = NULL;
	struct cmd_team_request tr;
	struct cmd_team t;
	bool create = strcmp(e->name, "add") == 0;
	int r;

	r = cmd_team_parse(cli, e, argc, argv, &t);
	if (r != 0)
		return r == CLI_DONE ? CLI_OK : r;
	if (!create && t.given == 0 && t.n_pools == 0) {
		cmd_team_release(&t);
		return cli_usage_error(cli, "nothing to change; give at least one option");
	}
	if (!create && t.n_pools > 0) {
		/* Quotas are merged into the current ones (cmd-team.h). */
		if ((r = team_fetch(cli, t.name, &current)) != 0)
			goto out;
		if (!(existing = team_find(current, t.name))) {
			r = cli_error(cli, "no team '%s'; create it with 'hpq team add'", t.name);
			goto out;
		}
	}
	cmd_team_request(&t, create, existing, &tr);
	req.body_case = HPQ__ENVELOPE__BODY_TEAM_SET;
	req.team_set = &tr.req;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_OK,
		     create ? "create the team" : "change the team", &reply);
	if (r == 0)
		hpq_msg_free(reply);
	cmd_team_request_release(&tr);
out:
	if (current)
		hpq_msg_free(current);
	cmd_team_release(&t);
	return r;
}

/* team show NAME, team rm NAME: one name and the common options. */
static int team_name_arg(struct cli *cli, const struct cmd_entry *e, int argc, char **argv,
			 const char **ret_name)
{
	int c;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", team_plain_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_DONE : CLI_USAGE;
	/* Failures return CLI_USAGE themselves, so that the compiler can see
	 * *ret_name is set whenever 0 is returned. */
	if (optind >= argc) {
		cli_usage_error(cli, "which team? give its name");
		return CLI_USAGE;
	}
	if (optind + 1 < argc) {
		cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
		return CLI_USAGE;
	}
	if (cli_parse_name(cli, "team", argv[optind]) != 0)
		return CLI_USAGE;
	*ret_name = argv[optind];
	return 0;
}

static int team_show_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope *reply;
	const Hpq__Team *team;
	const char *name;
	int r;

	if ((r = team_name_arg(cli, e, argc, argv, &name)) != 0)
		return r == CLI_DONE ? CLI_OK : r;
	if ((r = team_fetch(cli, name, &reply)) != 0)
		return r;
	if ((team = team_find(reply, name)))
		cli_output(cli)->team(&cli->out, team);
	else
		r = cli_error(cli, "no team '%s'; see 'hpq team list'", name);
	hpq_msg_free(reply);
	return r;
}

static int team_list_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope *reply;
	int c, r;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", team_plain_options)) != -1)
		return c == CLI_OPT_HELP ? CLI_OK : CLI_USAGE;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if ((r = team_fetch(cli, NULL, &reply)) != 0)
		return r;
	cli_output(cli)->teams(&cli->out, reply->team_list_reply->teams,
			       reply->team_list_reply->n_teams);
	hpq_msg_free(reply);
	return CLI_OK;
}

static int team_rm_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__TeamRemoveRequest rm = HPQ__TEAM_REMOVE_REQUEST__INIT;
	const char *name;
	int r;

	if ((r = team_name_arg(cli, e, argc, argv, &name)) != 0)
		return r == CLI_DONE ? CLI_OK : r;
	rm.name = (char *)name;
	req.body_case = HPQ__ENVELOPE__BODY_TEAM_REMOVE;
	req.team_remove = &rm;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_OK, "remove the team", &reply);
	if (r == 0)
		hpq_msg_free(reply);
	return r;
}

#define TEAM_SET_OPTIONS                                                                      \
	"[--pool P] [--gpus N] [--cpus N] [--mem SIZE] "                                      \
	"[--sharing dont-lend|lend|lend-and-borrow] [--borrow-limit PCT] "                    \
	"[--borrow-limit-abs LIMIT] [--lend-limit LIMIT] [--weight W] "                       \
	"[--preempt-own lower-priority|never] [--members U,@G,...] [--admins U,@G,...] "      \
	"[--default-class C]"

#define TEAM_SET_HELP                                                                         \
	"Quota options apply to the pool named by the --pool before them (pool\n"             \
	"'default' before any --pool); repeat --pool for several pools.\n\n"                  \
	"options:\n"                                                                          \
	"  --pool P                 start the options of pool P\n"                           \
	"  --gpus N, --cpus N       guaranteed GPUs and CPUs in the pool\n"                  \
	"  --mem SIZE               guaranteed memory in the pool, e.g. 512G\n"               \
	"  --sharing S              dont-lend, lend, or lend-and-borrow (default)\n"          \
	"  --borrow-limit PCT       borrow up to PCT% of the guarantee beyond it\n"           \
	"                           (0 to 10000; default 50)\n"                               \
	"  --borrow-limit-abs LIMIT absolute borrow limit, replacing the percentage:\n"      \
	"                           gpus=N,cpus=N,mem=SIZE (unnamed ones unlimited),\n"       \
	"                           unlimited, or none to use the percentage again\n"        \
	"  --lend-limit LIMIT       lend at most gpus=N,cpus=N,mem=SIZE of the unused\n"      \
	"                           guarantee, or all (default)\n"                            \
	"  --weight W               fair-share weight, 0 to 100 (default 1)\n"                \
	"  --preempt-own P          lower-priority: the team's tasks may preempt its own\n"  \
	"                           tasks of lower classes; never: they may not\n"           \
	"  --members U,@G,...       users and @groups who may submit to the team; ''\n"     \
	"                           makes it open to everyone\n"                            \
	"  --admins U,@G,...        users and @groups who manage the team's tasks and\n"    \
	"                           set its members; '' for none\n"                         \
	"  --default-class C        class of tasks submitted without --class; '' for none\n"

static const struct cmd_entry team_add_entry = {
	.name = "add",
	.usage = "team add NAME " TEAM_SET_OPTIONS,
	.summary = "create a team",
	.help = TEAM_SET_HELP,
	.exec = team_set_exec,
};

static const struct cmd_entry team_set_entry = {
	.name = "set",
	.usage = "team set NAME " TEAM_SET_OPTIONS,
	.summary = "change a team; what is not given stays as it is",
	.help = TEAM_SET_HELP,
	.exec = team_set_exec,
};

static const struct cmd_entry team_show_entry = {
	.name = "show",
	.usage = "team show NAME [--json]",
	.summary = "show a team with its quotas",
	.help = "options:\n"
		"  --json   print the team as a JSON object\n",
	.exec = team_show_exec,
};

static const struct cmd_entry team_list_entry = {
	.name = "list",
	.usage = "team list [--json]",
	.summary = "list the teams, one row per pool quota",
	.help = "options:\n"
		"  --json   print a JSON array of teams\n",
	.exec = team_list_exec,
};

static const struct cmd_entry team_rm_entry = {
	.name = "rm",
	.usage = "team rm NAME",
	.summary = "remove a team that has no active tasks",
	.exec = team_rm_exec,
};

static const struct cmd_entry *const team_table[] = {
	&team_add_entry, &team_set_entry, &team_show_entry, &team_list_entry, &team_rm_entry, NULL,
};

const struct cmd_entry cmd_team_entry = {
	.name = "team",
	.usage = "team add|set|show|list|rm ...",
	.summary = "administer teams and their quotas",
	.sub = team_table,
};
