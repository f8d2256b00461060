/*
 * update.c: hpq update, a task's request changed after submit (task.h).
 *
 * A pending task may change what it asks for (time, class, resources,
 * nodes, name, pool); a running one only its time limit and its class.
 * The whole request is checked against the current state first and
 * refused with nothing changed, as every change is; then applied at once.
 * A pending task that changes its shape leaves the dispatcher and comes
 * back with the same place in the queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "depend.h"
#include "error.h"
#include "hpq.h"
#include "log.h"
#include "parse.h"
#include "plan.h"
#include "rights.h"
#include "state-internal.h"
#include "xalloc.h"

#define MAX_FIELDS 16

struct update {
	bool time, cls, res, nodes, name, pool, dep;
	const char *dependency;
	uint64_t time_limit_s;
	const struct prio_class *to_cls;
	struct hpq_res per_node;
	uint32_t nnodes;
	const char *to_name;
	const struct pool *to_pool;
};

static int parse_count(const char *v, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long x;

	if (!*v || *v == '-')
		return -1;
	x = strtoull(v, &end, 10);
	if (*end || x > max)
		return -1;
	*ret = x;
	return 0;
}

/* One key=value into u; the values are checked later against the task. */
static int parse_field(struct state *st, const struct task *t, const char *f, struct update *u,
		       struct state_err *e)
{
	const char *eq = strchr(f, '=');
	char key[32];
	const char *v;
	uint64_t x;

	if (!eq || eq == f || (size_t)(eq - f) >= sizeof(key))
		return state_errf(e, HPQ_EINVAL, "'%.64s' is not key=value", f);
	memcpy(key, f, (size_t)(eq - f));
	key[eq - f] = '\0';
	v = eq + 1;
	if (!strcmp(key, "time")) {
		if (!strcasecmp(v, "none") || !strcasecmp(v, "unlimited"))
			x = 0;
		else if (hpq_parse_time_limit(v, &x) < 0)
			return state_errf(e, HPQ_EINVAL, "time=%.32s: not a time limit (90, 1:30:00, "
					  "2-00:00:00, 12h or none)", v);
		if (x > STATE_MAX_TIME_LIMIT_S)
			return state_errf(e, HPQ_EINVAL, "a time limit over a year is absurd");
		u->time = true;
		u->time_limit_s = x;
	} else if (!strcmp(key, "class")) {
		u->to_cls = state_class_find(st, v);
		if (!u->to_cls)
			return state_errf(e, HPQ_ENOTFOUND, "unknown class '%.64s': see hpq class "
					  "list", v);
		u->cls = true;
	} else if (!strcmp(key, "gpus") || !strcmp(key, "cpus")) {
		if (parse_count(v, HPQ_UNLIMITED_COUNT, &x) < 0)
			return state_errf(e, HPQ_EINVAL, "%s=%.32s: not a count", key, v);
		if (!u->res)
			u->per_node = t->st.per_node;
		if (key[0] == 'g')
			u->per_node.gpus = (int64_t)x;
		else
			u->per_node.cpus = (int64_t)x;
		u->res = true;
	} else if (!strcmp(key, "mem")) {
		if (hpq_parse_size_mib(v, &x) < 0)
			return state_errf(e, HPQ_EINVAL, "mem=%.32s: not an amount of memory (512M, "
					  "16G)", v);
		if (!u->res)
			u->per_node = t->st.per_node;
		u->per_node.mem = (int64_t)x;
		u->res = true;
	} else if (!strcmp(key, "nodes")) {
		if (parse_count(v, STATE_MAX_NODES_PER_TASK, &x) < 0 || !x)
			return state_errf(e, HPQ_EINVAL, "nodes=%.32s: 1 to %d", v,
					  STATE_MAX_NODES_PER_TASK);
		u->nnodes = (uint32_t)x;
		u->nodes = true;
	} else if (!strcmp(key, "name")) {
		if (hpq_check_name(v) < 0)
			return state_errf(e, HPQ_EINVAL, "invalid task name '%.64s': use letters, "
					  "digits, '.', '_', '-'", v);
		u->to_name = v;
		u->name = true;
	} else if (!strcmp(key, "dependency")) {
		u->dependency = v;
		u->dep = true;
	} else if (!strcmp(key, "pool")) {
		u->to_pool = state_pool_find(st, v);
		if (!u->to_pool)
			return state_errf(e, HPQ_ENOTFOUND, "unknown pool '%.64s'", v);
		u->pool = true;
	} else {
		return state_errf(e, HPQ_EINVAL, "cannot update '%.32s': use time, class, gpus, "
				  "cpus, mem, nodes, name, pool or dependency", key);
	}
	return 0;
}

/* The request against the task, its rights and the cluster. */
static int check(struct state *st, struct task *t, const struct update *u,
		 const struct actor *who, struct state_err *e)
{
	const struct prio_class *cls = u->cls ? u->to_cls : state_class_find(st, t->cls);
	const struct pool *pool = u->pool ? u->to_pool : state_pool_find(st, t->pool);
	uint64_t limit = u->time ? u->time_limit_s : t->time_limit_s;
	bool running = t->state == TASK_RUNNING || t->state == TASK_PREEMPTING;
	const struct team *team = state_team_find(st, t->team);
	char a[32], b[32];

	if (task_state_final(t->state))
		return state_errf(e, HPQ_ESTATE, "task %llu has already ended (%s)",
				  (unsigned long long)t->st.id, state_task_state(t->state));
	if (running && (u->res || u->nodes || u->name || u->pool || u->dep))
		return state_errf(e, HPQ_ESTATE, "task %llu is running: only its time limit and "
				  "class may change", (unsigned long long)t->st.id);
	if (u->dep && *u->dependency && depend_check(st, t, u->dependency, e) < 0)
		return HPQ_EINVAL;
	/* More time for a running task is its team's admins' to give: the
	 * owner may only give some back. */
	if (running && u->time && !who->admin && !team_is_admin(team, who) &&
	    (!u->time_limit_s || (t->time_limit_s && u->time_limit_s > t->time_limit_s)))
		return state_errf(e, HPQ_EPERM, "only a team admin or an administrator can give "
				  "running task %llu more time (it has %s)",
				  (unsigned long long)t->st.id,
				  t->time_limit_s ? hpq_format_duration(t->time_limit_s, a, sizeof(a))
						  : "none");
	if (cls && cls->max_time_s && (u->time || u->cls) && !who->admin &&
	    (!limit || limit > cls->max_time_s))
		return state_errf(e, HPQ_EINVAL, "a time limit of %s is over class %s's maximum "
				  "of %s (hpq class list)",
				  limit ? hpq_format_duration(limit, a, sizeof(a)) : "none",
				  cls->name, hpq_format_duration(cls->max_time_s, b, sizeof(b)));
	if (u->res && hpq_res_is_zero(u->per_node))
		return state_errf(e, HPQ_EINVAL, "a task needs some GPUs, CPUs or memory");
	/* A task of a live plan stays one its plan can hold. */
	if ((u->nodes || u->pool) && t->plan && *t->plan && pool) {
		const struct plan *p = plans_find(st, t->plan);
		int r = p && p->state < PLAN_COMPLETED
				? plans_check_task(st, t->plan, t->team, pool->name,
						   u->nodes ? u->nnodes : t->st.nnodes, e)
				: 0;

		if (r < 0)
			return r;
	}
	if ((u->res || u->nodes || u->pool) && pool)
		return state_pool_check(st, pool, u->nodes ? u->nnodes : t->st.nnodes,
					u->res ? u->per_node : t->st.per_node, e);
	return 0;
}

static void describe(const struct update *u, char *buf, size_t len)
{
	char d[32], r[96];
	size_t n = 0;

#define ADD(...) n += (size_t)snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__)
	buf[0] = '\0';
	if (u->time)
		ADD("%stime %s", n ? ", " : "",
		    u->time_limit_s ? hpq_format_duration(u->time_limit_s, d, sizeof(d)) : "none");
	if (u->cls)
		ADD("%sclass %s", n ? ", " : "", u->to_cls->name);
	if (u->res)
		ADD("%s%s per node", n ? ", " : "", hpq_res_format(u->per_node, r, sizeof(r)));
	if (u->nodes)
		ADD("%s%u nodes", n ? ", " : "", u->nnodes);
	if (u->name)
		ADD("%sname %s", n ? ", " : "", u->to_name);
	if (u->pool)
		ADD("%spool %s", n ? ", " : "", u->to_pool->name);
	if (u->dep)
		ADD("%sdependency %s", n ? ", " : "", *u->dependency ? u->dependency : "none");
#undef ADD
}

int state_task_update(struct state *st, struct task *t, char *const *fields, size_t n,
		      const struct actor *who, struct state_err *e)
{
	struct update u = { 0 };
	bool queued = t->st.state == SCHED_PENDING;
	bool reshape;
	char what[256];
	int r;

	if (!rights_task_manage(st, t, who))
		return rights_task_refuse(t, "update it", e);
	if (!n)
		return state_errf(e, HPQ_EINVAL, "nothing to update: give key=value (time, class, "
				  "gpus, cpus, mem, nodes, name, pool)");
	if (n > MAX_FIELDS)
		return state_errf(e, HPQ_EINVAL, "at most %d fields per update", MAX_FIELDS);
	for (size_t i = 0; i < n; i++)
		if ((r = parse_field(st, t, fields[i], &u, e)) < 0)
			return r;
	if ((r = check(st, t, &u, who, e)) < 0)
		return r;

	reshape = t->state == TASK_PENDING && (u.cls || u.res || u.nodes || u.pool);
	if (reshape && queued)
		sched_task_finish(st->sched, &t->st, 0);
	if (u.time)
		t->time_limit_s = u.time_limit_s;
	if (u.cls) {
		struct prio_class *old = state_class_find(st, t->cls);

		if (old && old->active)
			old->active--;
		((struct prio_class *)u.to_cls)->active++;
		task_set_name(st, t, &t->cls, u.to_cls->name);
		if (t->state == TASK_PENDING)
			t->st.class_id = u.to_cls->id;
		else
			sched_task_set_class(st->sched, &t->st, u.to_cls->id);
	}
	if (u.res)
		t->st.per_node = u.per_node;
	if (u.nodes)
		t->st.nnodes = u.nnodes;
	if (u.name)
		state_task_set_name(t, u.to_name);
	if (u.pool) {
		task_set_name(st, t, &t->pool, u.to_pool->name);
		t->st.pool = u.to_pool->id;
	}
	if (u.dep)
		str_set(&t->dependency, u.dependency);
	if (reshape && queued) {
		t->st.submit_ms = t->queue_ms;
		/* queued, so its plan (if any) is open or ended: back to its pool */
		(void)plan_task_waits(st, t);
		if (sched_task_submit(st->sched, &t->st) < 0)
			hpq_fatal("update: the dispatcher refused task %llu back",
				  (unsigned long long)t->st.id);
	}
	if (u.dep)
		depend_changed(st, t);
	task_save(st, t);
	describe(&u, what, sizeof(what));
	state_event(st, "update", t, NULL, who->user, "%s", what);
	mark_dirty(st);
	/* A running attempt's agent keeps the time limit: tell it. */
	return u.time && t->state != TASK_PENDING;
}
