/*
 * team.c: pools, teams, their quotas, and priority classes (team.h).
 *
 * A team or class change is checked whole into a copy (every field,
 * every quota, the guarantees against the pools' capacity) before the
 * copy replaces the one in force, reaches the dispatcher and the store,
 * and makes one event.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actor.h"
#include "clock.h"
#include "error.h"
#include "hpq.h"
#include "log.h"
#include "parse.h"
#include "state-internal.h"
#include "store.h"
#include "xalloc.h"

void team_free(struct team *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->default_class);
	free_strv(t->members, t->nmembers);
	free_strv(t->admins, t->nadmins);
	free(t->quotas);
	free(t);
}

struct team *state_team_find(const struct state *st, const char *name)
{
	return strmap_get(&st->team_names, name);
}

struct prio_class *state_class_find(const struct state *st, const char *name)
{
	return strmap_get(&st->class_names, name);
}

struct pool *state_pool_find(const struct state *st, const char *name)
{
	return strmap_get(&st->pool_names, name);
}

/* ---------------------------------------------------------------- pools, classes, teams */

static struct pool *pool_add(struct state *st, const char *name)
{
	struct pool *p = xcalloc(1, sizeof(*p));

	p->id = st->npools;
	p->name = xstrdup(name);
	st->pools = xreallocarray(st->pools, st->npools + 1, sizeof(*st->pools));
	st->pools[st->npools++] = p;
	strmap_put(&st->pool_names, p->name, p);
	return p;
}

static void quota_defaults(struct sched_quota *q)
{
	memset(q, 0, sizeof(*q));
	q->sharing = SCHED_LEND_AND_BORROW;
	q->borrow_limit_pct = 50;
}

static struct quota *team_quota(struct team *t, uint32_t pool)
{
	for (size_t i = 0; i < t->nquotas; i++)
		if (t->quotas[i].pool == pool)
			return &t->quotas[i];
	return NULL;
}

static struct quota *team_quota_add(struct team *t, uint32_t pool)
{
	struct quota *q;

	t->quotas = xreallocarray(t->quotas, t->nquotas + 1, sizeof(*t->quotas));
	q = &t->quotas[t->nquotas++];
	q->pool = pool;
	quota_defaults(&q->q);
	return q;
}

/* Records a team with its quotas. */
static void team_save(struct state *st, const struct team *t)
{
	struct store_quota_row *q = xcalloc(t->nquotas, sizeof(*q));
	struct store_team_row row = {
		.name = t->name,
		.weight = t->weight,
		.preempt_own = t->preempt_own_lower ? "lower-priority" : "never",
		.default_class = t->default_class,
		.members = t->members,
		.nmembers = t->nmembers,
		.admins = t->admins,
		.nadmins = t->nadmins,
		.quotas = q,
		.nquotas = t->nquotas,
	};

	for (size_t i = 0; i < t->nquotas; i++) {
		const struct sched_quota *sq = &t->quotas[i].q;

		q[i] = (struct store_quota_row){
			.pool = st->pools[t->quotas[i].pool]->name,
			.guarantee = sq->guarantee,
			.sharing = state_sharing_name(sq->sharing),
			.borrow_limit_pct = sq->borrow_limit_pct,
			.has_borrow_abs = sq->has_borrow_abs,
			.borrow_abs = sq->borrow_abs,
			.has_lend_limit = sq->has_lend_limit,
			.lend_limit = sq->lend_limit,
		};
	}
	store_team_put(st->store, &row);
	free(q);
}

struct pool *state_pool_ensure(struct state *st, const char *name, const char *actor)
{
	struct pool *p = state_pool_find(st, name);

	return p ? p : pool_create(st, name, actor);
}

void state_pool_set_waiting(struct state *st, struct pool *p, const char *why)
{
	(void)st;
	snprintf(p->waiting, sizeof(p->waiting), "%s", why);
}

void state_pool_set_growth(struct state *st, struct pool *p, struct hpq_res tmpl,
			   uint32_t max_nodes)
{
	(void)st;
	p->grows = tmpl;
	p->grows_max = max_nodes;
}

/*
 * A pool that comes into being (a node registers with it, a quota names
 * it) gives the team `default` what it has in the default pool: no
 * guarantee and unlimited borrowing, so that work submitted without a team
 * can use idle compute there as everywhere. Later changes are the admin's.
 */
struct pool *pool_create(struct state *st, const char *name, const char *actor)
{
	struct pool *p = pool_add(st, name);
	struct team *def = state_team_find(st, "default");

	store_pool_put(st->store, p->name);
	state_event(st, "pool", NULL, NULL, actor, "pool %s created", p->name);
	if (def && !team_quota(def, p->id)) {
		struct quota *q = team_quota_add(def, p->id);

		q->q.borrow_limit_pct = 0;
		q->q.has_borrow_abs = true;
		q->q.borrow_abs = STATE_UNLIMITED;
		sched_team_quota(st->sched, def->id, p->id, &q->q);
		team_save(st, def);
	}
	return p;
}

static struct prio_class *class_add(struct state *st, const char *name, uint32_t weight,
				    bool preemptible)
{
	struct prio_class *c = xcalloc(1, sizeof(*c));

	c->id = st->nclasses;
	c->name = xstrdup(name);
	c->weight = weight;
	c->preemptible = preemptible;
	st->classes = xreallocarray(st->classes, st->nclasses + 1, sizeof(*st->classes));
	st->classes[st->nclasses++] = c;
	strmap_put(&st->class_names, c->name, c);
	sched_class_set(st->sched, c->id, weight, preemptible);
	return c;
}

static void team_insert(struct state *st, struct team *t)
{
	t->id = st->nteams;
	st->teams = xreallocarray(st->teams, st->nteams + 1, sizeof(*st->teams));
	st->teams[st->nteams++] = t;
	strmap_put(&st->team_names, t->name, t);
}

bool team_is_admin(const struct team *tm, const struct actor *who)
{
	return tm && actor_named(tm->admins, tm->nadmins, who);
}

bool team_admits(const struct team *t, const struct actor *who)
{
	return !t->nmembers || actor_named(t->members, t->nmembers, who) || team_is_admin(t, who);
}

static void team_to_sched(struct state *st, const struct team *t)
{
	sched_team_set(st->sched, t->id, t->weight, t->preempt_own_lower);
	for (size_t i = 0; i < t->nquotas; i++)
		sched_team_quota(st->sched, t->id, t->quotas[i].pool, &t->quotas[i].q);
}

struct pool *pool_restore(struct state *st, const char *name)
{
	struct pool *p = state_pool_find(st, name);

	return p ? p : pool_add(st, name);
}

void load_pool(void *arg, const char *name)
{
	pool_restore(arg, name);
}

void load_class(void *arg, const struct store_class_row *c)
{
	struct state *st = arg;

	if (!state_class_find(st, c->name))
		class_add(st, c->name, c->weight, c->preemptible)->max_time_s = c->max_time_s;
}

void load_team(void *arg, const struct store_team_row *row)
{
	struct state *st = arg;
	struct team *t;

	if (state_team_find(st, row->name))
		return;
	t = xcalloc(1, sizeof(*t));
	t->name = xstrdup(row->name);
	t->weight = row->weight;
	t->preempt_own_lower = strcmp(row->preempt_own, "never") != 0;
	t->default_class = xstrdup(row->default_class);
	t->members = dup_strv(row->members, row->nmembers);
	t->nmembers = row->nmembers;
	t->admins = dup_strv(row->admins, row->nadmins);
	t->nadmins = row->nadmins;
	team_insert(st, t);
	sched_team_set(st->sched, t->id, t->weight, t->preempt_own_lower);
}

void load_quota(void *arg, const char *team, const struct store_quota_row *row)
{
	struct state *st = arg;
	struct team *t = state_team_find(st, team);
	int sh = state_sharing_parse(row->sharing);
	struct sched_quota q = {
		.guarantee = row->guarantee,
		.sharing = sh < 0 ? SCHED_LEND_AND_BORROW : (enum sched_sharing)sh,
		.borrow_limit_pct = row->borrow_limit_pct,
		.has_borrow_abs = row->has_borrow_abs,
		.borrow_abs = row->borrow_abs,
		.has_lend_limit = row->has_lend_limit,
		.lend_limit = row->lend_limit,
	};
	struct quota *tq;
	struct pool *p;

	if (!t) {
		log_warn("quota for unknown team '%s' ignored", team);
		return;
	}
	p = pool_restore(st, row->pool);
	tq = team_quota(t, p->id);
	if (!tq)
		tq = team_quota_add(t, p->id);
	tq->q = q;
	sched_team_quota(st->sched, t->id, p->id, &q);
}

/* ---------------------------------------------------------------- teams and classes */

static const char *const sharing_names[] = {
	[SCHED_LEND_AND_BORROW] = "lend-and-borrow",
	[SCHED_LEND] = "lend",
	[SCHED_DONT_LEND] = "dont-lend",
};

const char *state_sharing_name(enum sched_sharing s)
{
	if ((unsigned)s >= sizeof(sharing_names) / sizeof(sharing_names[0]))
		return "lend-and-borrow";
	return sharing_names[s];
}

int state_sharing_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(sharing_names) / sizeof(sharing_names[0]); i++)
		if (!strcmp(name, sharing_names[i]))
			return (int)i;
	return -1;
}

static struct team *team_clone(const struct team *t)
{
	struct team *c = xcalloc(1, sizeof(*c));

	*c = *t;
	c->name = xstrdup(t->name);
	c->default_class = xstrdup(t->default_class);
	c->members = dup_strv(t->members, t->nmembers);
	c->admins = dup_strv(t->admins, t->nadmins);
	c->quotas = t->nquotas ? xcalloc(t->nquotas, sizeof(*c->quotas)) : NULL;
	if (t->nquotas)
		memcpy(c->quotas, t->quotas, t->nquotas * sizeof(*c->quotas));
	return c;
}

enum {
	F_WEIGHT = 1 << 0,
	F_PREEMPT_OWN = 1 << 1,
	F_MEMBERS = 1 << 2,
	F_DEFAULT_CLASS = 1 << 3,
	F_QUOTAS = 1 << 4,          /* replace the whole list */
	F_Q_GUARANTEE = 1 << 5,
	F_Q_SHARING = 1 << 6,
	F_Q_BORROW_PCT = 1 << 7,
	F_Q_BORROW_ABS = 1 << 8,
	F_Q_LEND = 1 << 9,
	F_PREEMPTIBLE = 1 << 10,    /* classes */
	F_ADMINS = 1 << 11,
	F_MAX_TIME = 1 << 12,       /* classes */
	F_Q_ALL = F_Q_GUARANTEE | F_Q_SHARING | F_Q_BORROW_PCT | F_Q_BORROW_ABS | F_Q_LEND,
};

static const struct {
	const char *name;
	unsigned bit;
} team_fields[] = {
	{ "weight", F_WEIGHT },
	{ "preempt_own", F_PREEMPT_OWN },
	{ "members", F_MEMBERS },
	{ "admins", F_ADMINS },
	{ "default_class", F_DEFAULT_CLASS },
	{ "quotas", F_QUOTAS },
	{ "quota.guarantee", F_Q_GUARANTEE },
	{ "quota.sharing", F_Q_SHARING },
	{ "quota.borrow_limit_pct", F_Q_BORROW_PCT },
	{ "quota.borrow_limit_abs", F_Q_BORROW_ABS },
	{ "quota.lend_limit", F_Q_LEND },
};

static int parse_fields(char **fields, size_t n, unsigned *ret, struct state_err *e)
{
	unsigned mask = 0;

	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < sizeof(team_fields) / sizeof(team_fields[0]); k++)
			if (!strcmp(fields[i], team_fields[k].name))
				break;
		if (k == sizeof(team_fields) / sizeof(team_fields[0]))
			return state_errf(e, HPQ_EINVAL,
					  "unknown team field '%.64s': use weight, preempt_own, "
					  "members, admins, default_class, quotas or "
					  "quota.guarantee, quota.sharing, quota.borrow_limit_pct, "
					  "quota.borrow_limit_abs, quota.lend_limit", fields[i]);
		mask |= team_fields[k].bit;
	}
	*ret = mask;
	return 0;
}

static int apply_quota(struct sched_quota *q, const Hpq__PoolQuota *pq, unsigned mask,
		       struct state_err *e)
{
	struct sched_quota n = *q;
	int r;

	if (mask & F_Q_GUARANTEE) {
		r = check_res(pq->guarantee, &n.guarantee, "a guarantee", e);
		if (r < 0)
			return r;
	}
	if (mask & F_Q_SHARING) {
		size_t k;

		for (k = 0; k < sizeof(sharing_names) / sizeof(sharing_names[0]); k++)
			if (!strcmp(pq->sharing, sharing_names[k]))
				break;
		if (!*pq->sharing)
			k = SCHED_LEND_AND_BORROW;
		else if (k == sizeof(sharing_names) / sizeof(sharing_names[0]))
			return state_errf(e, HPQ_EINVAL,
					  "unknown sharing '%.32s': use dont-lend, lend or "
					  "lend-and-borrow", pq->sharing);
		n.sharing = (enum sched_sharing)k;
	}
	if (mask & F_Q_BORROW_PCT) {
		if (pq->borrow_limit_pct > 10000)
			return state_errf(e, HPQ_EINVAL, "a borrow limit of %u%% is over 10000%%",
					  pq->borrow_limit_pct);
		n.borrow_limit_pct = pq->borrow_limit_pct;
	}
	if (mask & F_Q_BORROW_ABS) {
		n.has_borrow_abs = pq->has_borrow_limit_abs;
		n.borrow_abs = HPQ_RES_ZERO;
		if (n.has_borrow_abs) {
			r = check_limit(pq->borrow_limit_abs, &n.borrow_abs, "a borrow limit", e);
			if (r < 0)
				return r;
		}
	}
	if (mask & F_Q_LEND) {
		n.has_lend_limit = pq->has_lend_limit;
		n.lend_limit = HPQ_RES_ZERO;
		if (n.has_lend_limit) {
			r = check_limit(pq->lend_limit, &n.lend_limit, "a lend limit", e);
			if (r < 0)
				return r;
		}
	}
	*q = n;
	return 0;
}

/* Pools named by quotas that do not exist yet; created once the change is accepted. */
struct new_pools {
	char **names;
	size_t n;
};

static int quota_pool(struct state *st, const char *name, struct new_pools *np, uint32_t *ret,
		      struct state_err *e)
{
	struct pool *p;

	if (hpq_check_name(name) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid pool name '%.64s'", name);
	p = state_pool_find(st, name);
	if (p) {
		*ret = p->id;
		return 0;
	}
	for (size_t i = 0; i < np->n; i++)
		if (!strcmp(np->names[i], name)) {
			*ret = st->npools + (uint32_t)i;
			return 0;
		}
	np->names = xreallocarray(np->names, np->n + 1, sizeof(*np->names));
	np->names[np->n] = xstrdup(name);
	*ret = st->npools + (uint32_t)np->n++;
	return 0;
}

/*
 * A guarantee must fit the pool: no resource may exceed what the pool's
 * nodes have in total (every registered node, schedulable or not: a node
 * under repair comes back). A pool without nodes yet (named by a quota
 * before its machines arrive) takes any guarantee. Over-commitment, the
 * sum of the teams' guarantees beyond capacity, is allowed.
 */
static int check_guarantee(const struct state *st, uint32_t pool, struct hpq_res g,
			   struct state_err *e)
{
	struct hpq_res cap = HPQ_RES_ZERO;
	uint32_t nodes = 0;
	char want[96], have[96];

	for (uint32_t i = 0; i < st->nnodes; i++) {
		if (!st->nodes[i] || st->nodes[i]->pool != pool)
			continue;
		cap = hpq_res_add(cap, st->nodes[i]->capacity);
		nodes++;
	}
	if (!nodes || (g.gpus <= cap.gpus && g.cpus <= cap.cpus && g.mem <= cap.mem))
		return 0;
	return state_errf(e, HPQ_EINVAL, "a guarantee of %s is larger than pool %s (%s on %u "
			  "node%s)", hpq_res_format(g, want, sizeof(want)), st->pools[pool]->name,
			  hpq_res_format(cap, have, sizeof(have)), nodes, nodes == 1 ? "" : "s");
}

/* Team members and admins: user names and @groups (rights.h). */
static int check_principals(char **v, size_t n, const char *what, struct state_err *e)
{
	if (n > STATE_MAX_PRINCIPALS)
		return state_errf(e, HPQ_EINVAL, "%zu %ss are too many (at most %d): name a @group",
				  n, what, STATE_MAX_PRINCIPALS);
	for (size_t i = 0; i < n; i++) {
		const char *s = v[i];

		if (s[0] == '@' ? hpq_check_group_name(s + 1) < 0 : hpq_check_name(s) < 0)
			return state_errf(e, HPQ_EINVAL, "invalid %s '%.64s': give a user name or "
					  "@GROUP with a Unix group's name", what, s);
	}
	return 0;
}

static int apply_team(struct state *st, struct team *t, const Hpq__Team *pb, unsigned mask,
		      struct new_pools *np, struct state_err *e)
{
	int r;

	if (mask & F_WEIGHT) {
		if (pb->weight > 100)
			return state_errf(e, HPQ_EINVAL, "weight %u is out of range 0-100",
					  pb->weight);
		t->weight = pb->weight;
	}
	if (mask & F_PREEMPT_OWN) {
		if (!*pb->preempt_own || !strcmp(pb->preempt_own, "lower-priority"))
			t->preempt_own_lower = true;
		else if (!strcmp(pb->preempt_own, "never"))
			t->preempt_own_lower = false;
		else
			return state_errf(e, HPQ_EINVAL, "unknown preempt_own '%.32s': "
					  "use lower-priority or never", pb->preempt_own);
	}
	if (mask & F_MEMBERS) {
		r = check_principals(pb->members, pb->n_members, "member", e);
		if (r < 0)
			return r;
		free_strv(t->members, t->nmembers);
		t->members = dup_strv(pb->members, pb->n_members);
		t->nmembers = pb->n_members;
	}
	if (mask & F_ADMINS) {
		r = check_principals(pb->admins, pb->n_admins, "admin", e);
		if (r < 0)
			return r;
		free_strv(t->admins, t->nadmins);
		t->admins = dup_strv(pb->admins, pb->n_admins);
		t->nadmins = pb->n_admins;
	}
	if (mask & F_DEFAULT_CLASS) {
		if (*pb->default_class && !state_class_find(st, pb->default_class))
			return state_errf(e, HPQ_ENOTFOUND, "unknown class '%.64s'",
					  pb->default_class);
		set_str(&t->default_class, pb->default_class);
	}
	if (mask & F_QUOTAS) {
		free(t->quotas);
		t->quotas = NULL;
		t->nquotas = 0;
		mask |= F_Q_ALL;
	}
	if (!(mask & (F_QUOTAS | F_Q_ALL)))
		return 0;
	if ((mask & F_Q_ALL) && !pb->n_quotas && !(mask & F_QUOTAS))
		return state_errf(e, HPQ_EINVAL, "a quota field without a pool");
	for (size_t i = 0; i < pb->n_quotas; i++) {
		const Hpq__PoolQuota *pq = pb->quotas[i];
		const char *pname = *pq->pool ? pq->pool : HPQ_DEFAULT_POOL;
		struct quota *q;
		uint32_t pool = 0;

		r = quota_pool(st, pname, np, &pool, e);
		if (r < 0)
			return r;
		q = team_quota(t, pool);
		if (q && (mask & F_QUOTAS))
			return state_errf(e, HPQ_EINVAL, "pool %s appears twice", pname);
		if (!q)
			q = team_quota_add(t, pool);
		r = apply_quota(&q->q, pq, mask, e);
		if (r < 0)
			return r;
		if ((mask & F_Q_GUARANTEE) && pool < st->npools) {
			r = check_guarantee(st, pool, q->q.guarantee, e);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static bool any_admin_errors(const struct actor *who, struct state_err *e, int *r)
{
	if (who->admin)
		return false;
	*r = state_errf(e, HPQ_EPERM, "only cluster administrators can remove teams and change "
			"classes");
	return true;
}

/* What a team's own admins may change: its members, nothing else (rights.h). */
static int team_admin_may(const struct team *old, bool create, unsigned mask,
			  const struct actor *who, struct state_err *e)
{
	if (create)
		return state_errf(e, HPQ_EPERM, "only cluster administrators can create teams");
	if (!old)
		return 0;    /* unknown: said below */
	if (!team_is_admin(old, who))
		return state_errf(e, HPQ_EPERM, "you are not an admin of team %s: only its admins "
				  "and cluster administrators may set its members, and only "
				  "cluster administrators change the rest", old->name);
	if (mask & ~F_MEMBERS)
		return state_errf(e, HPQ_EPERM, "as an admin of team %s you may set its members "
				  "only: its admins, weight, quotas, default class and "
				  "preempt_own are for cluster administrators", old->name);
	return 0;
}

int state_team_set(struct state *st, const Hpq__TeamSetRequest *req, const struct actor *who,
		   struct state_err *e)
{
	const Hpq__Team *pb = req->team;
	struct new_pools np = { 0 };
	struct team *old, *t = NULL;
	unsigned mask = 0;
	int r;

	if (!pb)
		return state_errf(e, HPQ_EINVAL, "no team given");
	if (hpq_check_name(pb->name) < 0)
		return state_errf(e, HPQ_EINVAL,
				  "invalid team name '%.64s': use letters, digits, '.', '_', '-'",
				  pb->name);
	r = parse_fields(req->fields, req->n_fields, &mask, e);
	if (r < 0)
		return r;
	old = state_team_find(st, pb->name);
	if (!who->admin) {
		r = team_admin_may(old, req->create, mask, who, e);
		if (r < 0)
			return r;
	}
	if (req->create) {
		if (old)
			return state_errf(e, HPQ_EEXIST, "team '%s' exists: use hpq team set",
					  pb->name);
		/* Only the listed fields come from the request; the rest are defaults. */
		t = xcalloc(1, sizeof(*t));
		t->name = xstrdup(pb->name);
		t->weight = 1;
		t->preempt_own_lower = true;
		t->default_class = xstrdup("");
	} else {
		if (!old)
			return state_errf(e, HPQ_ENOTFOUND, "unknown team '%s': use hpq team add",
					  pb->name);
		if (!mask)
			return state_errf(e, HPQ_EINVAL, "nothing to change in team '%s'",
					  pb->name);
		t = team_clone(old);
	}
	r = apply_team(st, t, pb, mask, &np, e);
	if (r < 0)
		goto out;

	for (size_t i = 0; i < np.n; i++)
		pool_create(st, np.names[i], who->user);
	if (old) {
		/* Pools dropped by a replacement of the list get nothing there any more. */
		for (size_t i = 0; i < old->nquotas; i++) {
			if (!team_quota(t, old->quotas[i].pool)) {
				struct sched_quota none;

				quota_defaults(&none);
				none.borrow_limit_pct = 0;
				none.sharing = SCHED_DONT_LEND;
				sched_team_quota(st->sched, old->id, old->quotas[i].pool, &none);
			}
		}
		t->id = old->id;
		t->active = old->active;
		st->teams[t->id] = t;
		strmap_put(&st->team_names, t->name, t);
		team_free(old);
	} else {
		team_insert(st, t);
	}
	team_to_sched(st, t);
	team_save(st, t);
	state_event(st, "team", NULL, NULL, who->user, "team %s %s", t->name,
		    old ? "changed" : "created");
	mark_dirty(st);
	t = NULL;
	r = 0;
out:
	if (t)
		team_free(t);
	free_strv(np.names, np.n);
	return r;
}

int state_team_remove(struct state *st, const char *name, const struct actor *who,
		      struct state_err *e)
{
	struct team *t;
	struct sched_quota none;
	int r;

	if (any_admin_errors(who, e, &r))
		return r;
	t = state_team_find(st, name);
	if (!t)
		return state_errf(e, HPQ_ENOTFOUND, "unknown team '%.64s'", name);
	if (t->active)
		return state_errf(e, HPQ_EBUSY,
				  "team '%s' has %u unfinished tasks: cancel them or wait", name,
				  t->active);
	quota_defaults(&none);
	none.borrow_limit_pct = 0;
	none.sharing = SCHED_DONT_LEND;
	for (size_t i = 0; i < t->nquotas; i++)
		sched_team_quota(st->sched, t->id, t->quotas[i].pool, &none);
	store_team_delete(st->store, t->name);
	state_event(st, "team", NULL, NULL, who->user, "team %s removed", t->name);
	strmap_del(&st->team_names, t->name);
	st->teams[t->id] = NULL;
	team_free(t);
	mark_dirty(st);
	return 0;
}

int state_class_set(struct state *st, const Hpq__ClassSetRequest *req, const struct actor *who,
		    struct state_err *e)
{
	const Hpq__PriorityClass *pb = req->class_;
	struct prio_class *c;
	unsigned mask = 0;
	uint32_t n = 0;
	int r;

	if (any_admin_errors(who, e, &r))
		return r;
	if (!pb)
		return state_errf(e, HPQ_EINVAL, "no class given");
	if (hpq_check_name(pb->name) < 0)
		return state_errf(e, HPQ_EINVAL,
				  "invalid class name '%.64s': use letters, digits, '.', '_', '-'",
				  pb->name);
	for (size_t i = 0; i < req->n_fields; i++) {
		if (!strcmp(req->fields[i], "weight"))
			mask |= F_WEIGHT;
		else if (!strcmp(req->fields[i], "preemptible"))
			mask |= F_PREEMPTIBLE;
		else if (!strcmp(req->fields[i], "max_time"))
			mask |= F_MAX_TIME;
		else
			return state_errf(e, HPQ_EINVAL, "unknown class field '%.64s': use weight, "
					  "preemptible or max_time", req->fields[i]);
	}
	if ((mask & F_WEIGHT) && pb->weight > 100)
		return state_errf(e, HPQ_EINVAL, "weight %u is out of range 0-100", pb->weight);
	if ((mask & F_MAX_TIME) && pb->max_time_s > STATE_MAX_TIME_LIMIT_S)
		return state_errf(e, HPQ_EINVAL, "a maximum time limit over a year is absurd");
	c = state_class_find(st, pb->name);
	if (req->create) {
		if (c)
			return state_errf(e, HPQ_EEXIST, "class '%s' exists: use hpq class set",
					  pb->name);
		for (uint32_t i = 0; i < st->nclasses; i++)
			if (st->classes[i] && strcmp(st->classes[i]->name, STATE_NO_CLASS))
				n++;
		if (n >= STATE_MAX_CLASSES)
			return state_errf(e, HPQ_EINVAL, "there are already %d classes, the most",
					  STATE_MAX_CLASSES);
		c = class_add(st, pb->name, (mask & F_WEIGHT) ? pb->weight : 0,
			      (mask & F_PREEMPTIBLE) ? pb->preemptible : true);
		if (mask & F_MAX_TIME)
			c->max_time_s = pb->max_time_s;
	} else {
		if (!c)
			return state_errf(e, HPQ_ENOTFOUND, "unknown class '%s': use hpq class add",
					  pb->name);
		if (!mask)
			return state_errf(e, HPQ_EINVAL, "nothing to change in class '%s'",
					  pb->name);
		if (mask & F_WEIGHT)
			c->weight = pb->weight;
		if (mask & F_PREEMPTIBLE)
			c->preemptible = pb->preemptible;
		/* Tasks already submitted keep their limits: a cap applies to
		 * submissions and updates from now on. */
		if (mask & F_MAX_TIME)
			c->max_time_s = pb->max_time_s;
		sched_class_set(st->sched, c->id, c->weight, c->preemptible);
	}
	store_class_put(st->store, &(struct store_class_row){ c->name, c->weight, c->preemptible,
							       c->max_time_s });
	state_event(st, "class", NULL, NULL, who->user, "class %s %s: weight %u, %spreemptible",
		    c->name, req->create ? "created" : "changed", c->weight,
		    c->preemptible ? "" : "not ");
	mark_dirty(st);
	return 0;
}

int state_class_remove(struct state *st, const char *name, const struct actor *who,
		       struct state_err *e)
{
	struct prio_class *c;
	int r;

	if (any_admin_errors(who, e, &r))
		return r;
	if (hpq_check_name(name) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid class name '%.64s'", name);
	c = state_class_find(st, name);
	if (!c)
		return state_errf(e, HPQ_ENOTFOUND, "unknown class '%.64s'", name);
	if (c->active)
		return state_errf(e, HPQ_EBUSY,
				  "class '%s' has %u unfinished tasks: cancel them or wait", name,
				  c->active);
	for (uint32_t i = 0; i < st->nteams; i++)
		if (st->teams[i] && !strcmp(st->teams[i]->default_class, name))
			return state_errf(e, HPQ_EBUSY, "team '%s' uses class '%s' as its default",
					  st->teams[i]->name, name);
	store_class_delete(st->store, c->name);
	state_event(st, "class", NULL, NULL, who->user, "class %s removed", c->name);
	strmap_del(&st->class_names, c->name);
	st->classes[c->id] = NULL;
	free(c->name);
	free(c);
	return 0;
}
