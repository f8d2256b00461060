/*
 * node.c: nodes (node.h): registration, heartbeats and their findings,
 * health, connection and service state.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "error.h"
#include "hpq.h"
#include "log.h"
#include "parse.h"
#include "state-internal.h"
#include "store.h"
#include "xalloc.h"

#define MAX_LABELS 256

static void findings_free(struct node *n)
{
	for (size_t i = 0; i < n->nfindings; i++) {
		free(n->findings[i].category);
		free(n->findings[i].reason);
		free(n->findings[i].message);
		free(n->findings[i].severity);
		free(n->findings[i].action);
	}
	free(n->findings);
	n->findings = NULL;
	n->nfindings = 0;
}

void node_free(struct node *n)
{
	if (!n)
		return;
	/* A node leaves with no task on it (state_node_remove), and tasks
	 * are freed before nodes (state_release); should a member be linked
	 * still, it is unlinked here, so that its task never touches this
	 * freed node. */
	while (!dlist_empty(&n->members))
		dlist_del(n->members.next);
	free(n->name);
	free_strv(n->labels, n->nlabels);
	free(n->address);
	free(n->cgroup_problem);
	free(n->software_version);
	free(n->service);
	free(n->health);
	free(n->reason);
	free(n->service_by);
	free(n->repair_action);
	findings_free(n);
	free(n);
}

struct node *state_node_find(const struct state *st, const char *name)
{
	return strmap_get(&st->node_names, name);
}

static struct node *node_add(struct state *st, const char *name, uint32_t pool)
{
	struct node *n = xcalloc(1, sizeof(*n));

	n->id = st->nnodes;
	n->name = xstrdup(name);
	n->pool = pool;
	n->address = xstrdup("");
	n->cgroup_problem = xstrdup("");
	n->software_version = xstrdup("");
	n->service = xstrdup("active");
	n->health = xstrdup("healthy");
	n->reason = xstrdup("");
	n->service_by = xstrdup("");
	n->repair_action = xstrdup("");
	dlist_init(&n->members);
	st->nodes = xreallocarray(st->nodes, st->nnodes + 1, sizeof(*st->nodes));
	st->nodes[st->nnodes++] = n;
	strmap_put(&st->node_names, n->name, n);
	return n;
}

bool state_node_schedulable(const struct node *n)
{
	return n->connected && !n->lost && !strcmp(n->service, "active") &&
	       strcmp(n->health, "unhealthy") && strcmp(n->health, "unreachable");
}

static void node_to_sched(struct state *st, struct node *n)
{
	st->nodes_gen++;
	if (sched_node_set(st->sched, n->id, n->in_plan ? n->plan_pool : n->pool, n->capacity,
			   state_node_schedulable(n)) < 0)
		log_warn("node %s: the dispatcher refused its capacity", n->name);
	mark_dirty(st);
}

void state_node_resched(struct state *st, struct node *n)
{
	node_to_sched(st, n);
}

void load_node(void *arg, const struct store_node_row *row)
{
	struct state *st = arg;
	struct node *n;

	if (state_node_find(st, row->name))
		return;
	n = node_add(st, row->name, pool_restore(st, row->pool)->id);
	n->capacity = row->capacity;
	/* Every node starts disconnected after a restart (docs/decisions.md). */
	node_to_sched(st, n);
	n->labels = dup_strv(row->labels, row->nlabels);
	n->nlabels = row->nlabels;
	set_str(&n->address, row->address);
	set_str(&n->service, row->service);
	set_str(&n->health, row->health);
	/* Already lost before the restart: no second "lost". */
	n->lost = !strcmp(n->health, "unreachable");
	set_str(&n->reason, row->reason);
	n->last_heartbeat_ms = row->last_seen_ms;
	set_str(&n->service_by, row->service_by);
	n->service_since_ms = row->service_since_ms;
	n->admin_hold = row->admin_hold;
	set_str(&n->repair_action, row->repair_action);
}

/* ---------------------------------------------------------------- nodes */

static const char *health_of(const struct finding *f, size_t n)
{
	const char *h = "healthy";

	for (size_t i = 0; i < n; i++) {
		if (!strcmp(f[i].severity, "fatal"))
			return "unhealthy";
		if (!strcmp(f[i].severity, "warning"))
			h = "degraded";
	}
	return h;
}

static int check_findings(Hpq__Finding **f, size_t n, struct state_err *e)
{
	if (n > 256)
		return state_errf(e, HPQ_EINVAL, "%zu findings are too many", n);
	for (size_t i = 0; i < n; i++)
		if (strlen(f[i]->message) > 4096 || strlen(f[i]->reason) > 256 ||
		    strlen(f[i]->category) > 64 || strlen(f[i]->severity) > 16 ||
		    strlen(f[i]->action) > 16)
			return state_errf(e, HPQ_EINVAL, "finding %zu is too long", i + 1);
	return 0;
}

static void set_findings(struct node *n, Hpq__Finding **f, size_t count)
{
	findings_free(n);
	if (!count)
		return;
	n->findings = xcalloc(count, sizeof(*n->findings));
	for (size_t i = 0; i < count; i++) {
		n->findings[i].category = xstrdup(f[i]->category);
		n->findings[i].reason = xstrdup(f[i]->reason);
		n->findings[i].message = xstrdup(f[i]->message);
		n->findings[i].severity = xstrdup(f[i]->severity);
		n->findings[i].action = xstrdup(f[i]->action);
		n->findings[i].since = f[i]->since;
	}
	n->nfindings = count;
}

int state_node_register(struct state *st, const Hpq__Register *reg, const char *version,
			struct node **ret_node, struct state_err *e)
{
	const char *pool_name = *reg->pool ? reg->pool : HPQ_DEFAULT_POOL;
	struct hpq_res cap;
	struct pool *pool;
	struct node *n;
	char buf[96];
	bool was_lost;
	int r;

	if (hpq_check_name(reg->name) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid node name '%.64s'", reg->name);
	if (hpq_check_name(pool_name) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid pool name '%.64s'", pool_name);
	r = check_res(reg->capacity, &cap, "a node", e);
	if (r < 0)
		return r;
	if (reg->n_labels > MAX_LABELS)
		return state_errf(e, HPQ_EINVAL, "%zu labels are too many", reg->n_labels);
	for (size_t i = 0; i < reg->n_labels; i++)
		if (strlen(reg->labels[i]) > 256 || has_ctl(reg->labels[i]))
			return state_errf(e, HPQ_EINVAL, "label %zu is not usable", i + 1);
	if (strlen(reg->address) > 255 || has_ctl(reg->address))
		return state_errf(e, HPQ_EINVAL, "the node's address is not usable");
	if (strlen(reg->cgroup_problem) > 512 || has_ctl(reg->cgroup_problem))
		return state_errf(e, HPQ_EINVAL, "the node's cgroup problem is not usable");
	r = check_findings(reg->findings, reg->n_findings, e);
	if (r < 0)
		return r;
	n = state_node_find(st, reg->name);
	pool = state_pool_find(st, pool_name);
	if (n && (!pool || pool->id != n->pool) &&
	    sched_node_tasks(st->sched, n->id))
		return state_errf(e, HPQ_EBUSY, "node %s runs tasks in pool %s: drain it before "
				  "moving it to pool %s", n->name, st->pools[n->pool]->name,
				  pool_name);
	/* The dispatcher would keep it where it is (sched_node_set) while
	 * the node said it moved: the gang it is held for would start there. */
	if (n && (!pool || pool->id != n->pool) && sched_node_claimed(st->sched, n->id))
		return state_errf(e, HPQ_EBUSY, "node %s is held for a task about to start in "
				  "pool %s: drain it before moving it to pool %s", n->name,
				  st->pools[n->pool]->name, pool_name);
	if (!pool)
		pool = pool_create(st, pool_name, NULL);
	if (!n)
		n = node_add(st, reg->name, pool->id);
	was_lost = n->lost;
	n->pool = pool->id;
	n->capacity = cap;
	free_strv(n->labels, n->nlabels);
	n->labels = dup_strv(reg->labels, reg->n_labels);
	n->nlabels = reg->n_labels;
	set_str(&n->address, reg->address);
	set_str(&n->software_version, version);
	n->cgroup = reg->cgroup;
	set_str(&n->cgroup_problem, reg->cgroup_problem);
	set_findings(n, reg->findings, reg->n_findings);
	if (strcmp(n->health, health_of(n->findings, n->nfindings)))
		state_event(st, "node", NULL, n->name, "hpqd", "health %s -> %s", n->health,
			    health_of(n->findings, n->nfindings));
	set_str(&n->health, health_of(n->findings, n->nfindings));
	/* Out of service, the reason is the service state's (repair.c). */
	if (!strcmp(n->service, "active"))
		set_str(&n->reason, "");
	n->lost = false;
	n->connected = true;
	n->last_heartbeat_ms = hpq_now_ms();
	node_to_sched(st, n);
	state_node_save(st, n);
	state_event(st, "node", NULL, n->name, n->name, "registered%s in pool %s: %s",
		    was_lost ? " again" : "", st->pools[n->pool]->name,
		    hpq_res_format(cap, buf, sizeof(buf)));
	*ret_node = n;
	return 0;
}

int state_node_add_launching(struct state *st, const char *name, struct pool *pool,
			     struct hpq_res capacity, char *const *labels, size_t nlabels,
			     const char *by, struct state_err *e)
{
	struct node *n;
	char buf[96];

	if (hpq_check_name(name) < 0)
		return state_errf(e, HPQ_EINVAL, "invalid node name '%.64s'", name);
	if (state_node_find(st, name))
		return state_errf(e, HPQ_EEXIST, "node %s exists already", name);
	n = node_add(st, name, pool->id);
	n->capacity = capacity;
	n->labels = dup_strv(labels, nlabels);
	n->nlabels = nlabels;
	set_str(&n->service, "launching");
	set_str(&n->service_by, by);
	n->service_since_ms = hpq_now_ms();
	node_to_sched(st, n);
	state_node_save(st, n);
	state_event(st, "node", NULL, n->name, by, "launching in pool %s: %s", pool->name,
		    hpq_res_format(capacity, buf, sizeof(buf)));
	return 0;
}

/* Tells the observers that n's heartbeat is in. */
static void heard(struct state *st, struct node *n)
{
	for (size_t i = 0; i < st->nobservers; i++)
		if (st->observers[i].heartbeat)
			st->observers[i].heartbeat(st->observers[i].arg, n);
}

void state_node_heartbeat(struct state *st, struct node *n, const Hpq__Heartbeat *hb)
{
	const char *health;
	bool before = state_node_schedulable(n);

	n->heartbeats++;
	n->last_heartbeat_ms = hpq_now_ms();
	if (check_findings(hb->findings, hb->n_findings, NULL) < 0) {
		heard(st, n);      /* alive, if confused: its findings are kept */
		return;
	}
	set_findings(n, hb->findings, hb->n_findings);
	health = health_of(n->findings, n->nfindings);
	if (strcmp(health, n->health)) {
		/* The daemon's judgement of what the agent found. */
		state_event(st, "node", NULL, n->name, "hpqd", "health %s -> %s%s%s", n->health,
			    health, n->nfindings ? ": " : "",
			    n->nfindings ? n->findings[0].message : "");
		set_str(&n->health, health);
		state_node_save(st, n);
	}
	if (before != state_node_schedulable(n))
		node_to_sched(st, n);
	heard(st, n);
}

void state_node_disconnected(struct state *st, struct node *n)
{
	n->connected = false;
	node_to_sched(st, n);
	state_event(st, "node", NULL, n->name, NULL, "agent disconnected");
}

void state_node_set_service(struct state *st, struct node *n, const char *service,
			    const char *by, const char *reason)
{
	char old[16];

	/* by and reason may be n's own strings (drained keeps them). */
	by = xstrdup(by);
	reason = xstrdup(reason);
	snprintf(old, sizeof(old), "%s", n->service);
	set_str(&n->service, service);
	free(n->service_by);
	n->service_by = (char *)by;
	free(n->reason);
	n->reason = (char *)reason;
	n->service_since_ms = hpq_now_ms();
	node_to_sched(st, n);
	state_node_save(st, n);
	if (strcmp(old, service))
		state_event(st, "node", NULL, n->name, by, "service %s -> %s%s%s", old, service,
			    *reason ? ": " : "", reason);
	else
		state_event(st, "node", NULL, n->name, by, "service %s%s%s", service,
			    *reason ? ": " : "", reason);
}

void state_node_save(struct state *st, struct node *n)
{
	struct store_node_row row = {
		.name = n->name,
		.pool = st->pools[n->pool]->name,
		.capacity = n->capacity,
		.labels = n->labels,
		.nlabels = n->nlabels,
		.address = n->address,
		.service = n->service,
		.health = n->health,
		.reason = n->reason,
		.last_seen_ms = n->last_heartbeat_ms,
		.service_by = n->service_by,
		.service_since_ms = n->service_since_ms,
		.admin_hold = n->admin_hold,
		.repair_action = n->repair_action,
	};

	store_node_put(st->store, &row);
}

void state_node_lost(struct state *st, struct node *n)
{
	n->lost = true;
	set_str(&n->health, "unreachable");
	if (!strcmp(n->service, "active"))
		set_str(&n->reason, "no word from its agent");
	node_to_sched(st, n);
	state_node_save(st, n);
	state_event(st, "node", NULL, n->name, "hpqd", "lost: no word from its agent; health "
		    "unreachable");
}

/* ---------------------------------------------------------------- removal */

int state_node_remove(struct state *st, struct node *n, const struct actor *who,
		      struct state_err *e)
{
	uint32_t ntasks = sched_node_tasks(st->sched, n->id);

	if (!who->admin)
		return state_errf(e, HPQ_EPERM, "only administrators can remove nodes");
	if (strcmp(n->service, "drained"))
		return state_errf(e, HPQ_ESTATE, "node %s is %s: drain it first (hpq node drain "
				  "%s), so that nothing new starts there", n->name, n->service,
				  n->name);
	if (ntasks)
		return state_errf(e, HPQ_EBUSY, "node %s still holds %u task%s", n->name, ntasks,
				  ntasks == 1 ? "" : "s");
	if (n->connected)
		return state_errf(e, HPQ_EBUSY, "node %s's agent is connected: stop it first "
				  "(or hpq node revoke %s), or it registers again", n->name,
				  n->name);
	if (sched_node_remove(st->sched, n->id) < 0)
		return state_errf(e, HPQ_EBUSY, "the dispatcher still has work on node %s",
				  n->name);
	state_event(st, "node", NULL, n->name, who->user, "removed from pool %s by %s",
		    st->pools[n->pool]->name, who->user);
	store_node_delete(st->store, n->name);
	strmap_del(&st->node_names, n->name);
	st->nodes[n->id] = NULL;
	st->nodes_gen++;
	node_free(n);
	mark_dirty(st);
	return 0;
}

/* ---------------------------------------------------------------- what a pool could give */

static bool res_larger(struct hpq_res a, struct hpq_res b)
{
	if (a.gpus != b.gpus)
		return a.gpus > b.gpus;
	if (a.cpus != b.cpus)
		return a.cpus > b.cpus;
	return a.mem > b.mem;
}

/* The answers of state_pool_fit for the last few request shapes of a pool. */
#define FIT_MEMO 8
struct pool_fit_memo {
	uint64_t gen;                /* the state's nodes_gen when they were given */
	uint32_t n, next;
	struct {
		struct hpq_res per;
		struct pool_fit fit;
	} e[FIT_MEMO];
};

static bool fit_recall(const struct state *st, struct pool *p, struct hpq_res per,
		       struct pool_fit *ret)
{
	struct pool_fit_memo *m = p->fit_memo;

	if (!m || m->gen != st->nodes_gen)
		return false;
	for (uint32_t i = 0; i < m->n; i++) {
		if (hpq_res_eq(m->e[i].per, per)) {
			*ret = m->e[i].fit;
			return true;
		}
	}
	return false;
}

static void fit_keep(const struct state *st, struct pool *p, struct hpq_res per,
		     const struct pool_fit *fit)
{
	struct pool_fit_memo *m = p->fit_memo;

	if (!m)
		m = p->fit_memo = xcalloc(1, sizeof(*m));
	if (m->gen != st->nodes_gen) {
		m->gen = st->nodes_gen;
		m->n = m->next = 0;
	}
	m->e[m->next].per = per;
	m->e[m->next].fit = *fit;
	m->next = (m->next + 1) % FIT_MEMO;
	if (m->n < FIT_MEMO)
		m->n++;
}

void state_pool_fit(const struct state *st, uint32_t pool, struct hpq_res per_node,
		    struct pool_fit *ret)
{
	struct pool *p = pool < st->npools ? st->pools[pool] : NULL;

	if (p && fit_recall(st, p, per_node, ret))
		return;
	*ret = (struct pool_fit){ 0 };
	for (uint32_t i = 0; i < st->nnodes; i++) {
		const struct node *n = st->nodes[i];

		if (!n || n->pool != pool)
			continue;
		ret->nodes++;
		ret->fitting += hpq_res_fits(per_node, n->capacity);
		if (res_larger(n->capacity, ret->largest))
			ret->largest = n->capacity;
		ret->most = hpq_res_max(ret->most, n->capacity);
	}
	if (p)
		fit_keep(st, p, per_node, ret);
}

bool state_pool_whole_nodes(const struct state *st, uint32_t pool, uint32_t nnodes,
			    struct hpq_res per_node, struct hpq_res *ret)
{
	bool found = false;

	/* Each node's capacity is a candidate; quadratic in the pool's nodes,
	 * paid only by --exclusive submissions. */
	for (uint32_t i = 0; i < st->nnodes; i++) {
		const struct node *c = st->nodes[i];
		uint32_t holding = 0;

		if (!c || c->pool != pool || !hpq_res_fits(per_node, c->capacity))
			continue;
		if (found && !res_larger(c->capacity, *ret))
			continue;
		for (uint32_t k = 0; k < st->nnodes && holding < nnodes; k++) {
			const struct node *n = st->nodes[k];

			holding += n && n->pool == pool && hpq_res_fits(c->capacity, n->capacity);
		}
		if (holding >= nnodes) {
			*ret = c->capacity;
			found = true;
		}
	}
	return found;
}

/*
 * What a pool could ever give: a request larger than every registered node
 * (or needing more such nodes than the pool has) is refused now instead of
 * waiting forever as "capacity". A pool with no node yet takes anything:
 * its nodes may still join. An autoscaled pool may also grow by nodes of
 * its template, up to its max_nodes, and takes only what those could hold.
 */
int state_pool_check(const struct state *st, const struct pool *pool, uint32_t nnodes,
		     struct hpq_res per, struct state_err *e)
{
	struct pool_fit f;
	char want[96], big[96];

	state_pool_fit(st, pool->id, per, &f);
	if (pool->grows_max) {
		if (hpq_res_fits(per, pool->grows) && f.fitting + pool->grows_max >= nnodes)
			return 0;
		if (f.fitting >= nnodes)
			return 0;
		hpq_res_format(per, want, sizeof(want));
		hpq_res_format(pool->grows, big, sizeof(big));
		return state_errf(e, HPQ_EINVAL, "impossible request: pool %s grows by nodes "
				  "of %s, at most %u ([autoscale.%s]), and has %u node%s that "
				  "hold %s; %u such node%s wanted", pool->name, big,
				  pool->grows_max, pool->name, f.fitting,
				  f.fitting == 1 ? "" : "s", want, nnodes, nnodes == 1 ? "" : "s");
	}
	if (!f.nodes || f.fitting >= nnodes)
		return 0;
	hpq_res_format(per, want, sizeof(want));
	hpq_res_format(f.largest, big, sizeof(big));
	if (per.gpus > f.most.gpus)
		return state_errf(e, HPQ_EINVAL, "impossible request: no node of pool %s has %lld "
				  "GPUs (the most any has is %lld; its largest node offers %s)",
				  pool->name, (long long)per.gpus, (long long)f.most.gpus, big);
	if (per.cpus > f.most.cpus)
		return state_errf(e, HPQ_EINVAL, "impossible request: no node of pool %s has %lld "
				  "CPUs (the most any has is %lld; its largest node offers %s)",
				  pool->name, (long long)per.cpus, (long long)f.most.cpus, big);
	if (per.mem > f.most.mem)
		return state_errf(e, HPQ_EINVAL, "impossible request: no node of pool %s has %lld "
				  "MiB of memory (the most any has is %lld; its largest node "
				  "offers %s)", pool->name, (long long)per.mem,
				  (long long)f.most.mem, big);
	if (!f.fitting)
		return state_errf(e, HPQ_EINVAL, "impossible request: no single node of pool %s "
				  "has %s at once (its largest node offers %s)", pool->name, want,
				  big);
	return state_errf(e, HPQ_EINVAL, "impossible request: %u node%s of %s wanted, but pool "
			  "%s has only %u node%s that large (of %u; its largest offers %s)",
			  nnodes, nnodes > 1 ? "s" : "", want, pool->name, f.fitting,
			  f.fitting > 1 ? "s" : "", f.nodes, big);
}
