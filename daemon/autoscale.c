/*
 * autoscale.c: the autoscaler service (autoscale.h, docs/autoscale.md).
 *
 * A node the autoscaler launched lives in three states, each recorded in
 * autoscale_nodes before anything outside hpqd hears of it:
 *
 *   launching ──(its agent registers under the name)──▶ ready ──▶ leaving ──▶ removed
 *       └──(launch_timeout, or the provision command failed)───────▲
 *
 * launching: in the model with service `launching` (node.h), capacity and
 * labels from the template; the provision command runs from the commit
 * that recorded it, as COMMAND NODE... with HPQ_AUTOSCALE_POOL,
 * HPQ_AUTOSCALE_NODES, HPQ_AUTOSCALE_GPUS, HPQ_AUTOSCALE_CPUS,
 * HPQ_AUTOSCALE_MEM (MiB) and HPQ_AUTOSCALE_LABELS in its environment. A
 * restart finds the row and waits for the same node: it never runs the
 * command twice. leaving: drained (its preemptible work preempted when
 * the node leaves on purpose: consolidation, lifetime), then, once no
 * task holds it, the deprovision command (COMMAND NODE, same
 * environment), then, once its agent is gone, removed as `hpq node
 * remove` removes a node (state_node_remove, by "hpqd" as an
 * administrator).
 *
 * What changed: the state's event observer marks the pool of every event
 * (a task's, a node's) changed; a timer marks a pool whose time came (an
 * idle timeout, a lifetime, the end of a back-off) and checks launch
 * timeouts and leaving nodes. autoscale_cycle, run by dispatch.c after a
 * dispatcher cycle, plans only the pools marked.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentlink.h"
#include "array.h"
#include "autoscale-plan.h"
#include "autoscale.h"
#include "clock.h"
#include "context.h"
#include "error.h"
#include "log.h"
#include "parse.h"
#include "store.h"
#include "xalloc.h"

extern char **environ;

#define ACTOR "hpqd"
#define TICK_MS 250
#define BACKOFF_BASE_MS 2000
#define BACKOFF_MAX_MS (10 * 60 * 1000)
#define OUTPUT_KEEP 600              /* bytes of a failed command's output in its event */

enum as_state { AS_LAUNCHING, AS_READY, AS_LEAVING };
static const char *const state_names[] = { "launching", "ready", "leaving" };

struct as_pool;

struct as_node {
	struct dlist link;
	char *name;
	struct as_pool *pool;
	enum as_state state;
	int64_t launched_ms, born_ms;
	int64_t empty_since_ms;      /* 0: it holds tasks (or was never seen empty) */
	char *replaces;              /* the node it replaces; "" */
	int deprov;                  /* 0: not run yet, 1: running, 2: done */
	uint32_t deprov_failures;
	int64_t deprov_retry_ms;
	bool removal_refused;        /* state_node_remove said no: said once */
	bool replaced;               /* mark_replaced: its replacement is on the way */
};

struct as_pool {
	const struct autoscale_config *cfg;
	uint32_t pool_id;
	bool changed;
	int64_t wake_ms;             /* plan again then (idle timeout, lifetime) */
	uint32_t failures;           /* launches failed in a row */
	int64_t retry_ms;            /* no launch before */
	uint32_t next_seq;
	struct asplan plan;
	struct asplan_node *pn;
	size_t pn_cap;
	struct asplan_demand *dem;
	size_t dem_cap;
	struct hpq_res *tres;
	size_t tres_cap;
};

struct as_proc {
	uv_process_t proc;
	uv_pipe_t out;
	struct autoscale *as;
	struct dlist link;
	bool provision;
	struct as_pool *pool;
	char **names;
	size_t nnames;
	char buf[OUTPUT_KEEP];
	size_t len;
	int open;
};

struct autoscale {
	struct hpqd *d;
	struct as_pool *pools;
	size_t npools;
	struct dlist nodes;          /* struct as_node */
	struct strmap by_name;
	uv_timer_t tick;
	bool tick_open;
	struct dlist procs;
	int32_t *slot;               /* scratch: state node id -> index in a pool's pn */
	size_t slot_cap;
	uint32_t *pn_count;          /* scratch: tasks per pn entry */
	size_t pn_count_cap;
	struct team_room *room;      /* scratch: per team, what governance leaves */
	size_t room_cap;
	struct run_on *runs;         /* scratch: each running task's node and request */
	size_t runs_cap;
};

struct run_on {
	uint32_t k;                  /* index in the pool's pn */
	struct hpq_res res;
};

struct team_room {
	bool done, unlimited;
	struct hpq_res left;
};

static const struct actor hpqd_actor = { .user = ACTOR, .admin = true, .known = true };

/* ---------------------------------------------------------------- small helpers */

static struct as_pool *pool_of_id(struct autoscale *as, uint32_t id)
{
	for (size_t i = 0; i < as->npools; i++)
		if (as->pools[i].pool_id == id)
			return &as->pools[i];
	return NULL;
}

static void save_node(struct autoscale *as, const struct as_node *a)
{
	struct store_asnode_row row = {
		.name = a->name,
		.pool = a->pool->cfg->pool,
		.state = state_names[a->state],
		.replaces = a->replaces,
		.launched_ms = a->launched_ms,
		.born_ms = a->born_ms,
	};

	store_asnode_put(as->d->store, &row);
}

static struct as_node *node_new(struct autoscale *as, struct as_pool *p, const char *name,
				enum as_state state, int64_t launched_ms, int64_t born_ms,
				const char *replaces)
{
	struct as_node *a = xcalloc(1, sizeof(*a));

	a->name = xstrdup(name);
	a->pool = p;
	a->state = state;
	a->launched_ms = launched_ms;
	a->born_ms = born_ms;
	a->replaces = xstrdup(replaces ? replaces : "");
	dlist_add_tail(&as->nodes, &a->link);
	strmap_put(&as->by_name, a->name, a);
	return a;
}

static void node_forget(struct autoscale *as, struct as_node *a)
{
	store_asnode_delete(as->d->store, a->name);
	strmap_del(&as->by_name, a->name);
	dlist_del(&a->link);
	free(a->name);
	free(a->replaces);
	free(a);
}

/* Marks each node whose replacement is on the way (launching or ready,
 * not leaving, naming it in replaces): O(the autoscaler's nodes). */
static void mark_replaced(struct autoscale *as)
{
	struct dlist *l;

	for (l = as->nodes.next; l != &as->nodes; l = l->next)
		container_of(l, struct as_node, link)->replaced = false;
	for (l = as->nodes.next; l != &as->nodes; l = l->next) {
		const struct as_node *o = container_of(l, struct as_node, link);
		struct as_node *old;

		if (o->state != AS_LEAVING && *o->replaces &&
		    (old = strmap_get(&as->by_name, o->replaces)) != NULL)
			old->replaced = true;
	}
}

/* Printable, one line: a command's output for an event. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* ---------------------------------------------------------------- commands */

static void proc_closed(uv_handle_t *h)
{
	struct as_proc *pr = h->data;

	if (--pr->open)
		return;
	for (size_t i = 0; i < pr->nnames; i++)
		free(pr->names[i]);
	free(pr->names);
	free(pr);
}

static void proc_close(struct as_proc *pr)
{
	dlist_del(&pr->link);
	uv_close((uv_handle_t *)&pr->proc, proc_closed);
	uv_close((uv_handle_t *)&pr->out, proc_closed);
}

static void keep_output(struct as_proc *pr, const char *p, size_t n)
{
	/* The last OUTPUT_KEEP - 1 bytes: a failure says why at its end. */
	if (n >= sizeof(pr->buf) - 1) {
		p += n - (sizeof(pr->buf) - 1);
		n = sizeof(pr->buf) - 1;
	}
	if (pr->len + n > sizeof(pr->buf) - 1) {
		size_t drop = pr->len + n - (sizeof(pr->buf) - 1);

		memmove(pr->buf, pr->buf + drop, pr->len - drop);
		pr->len -= drop;
	}
	memcpy(pr->buf + pr->len, p, n);
	pr->len += n;
	pr->buf[pr->len] = '\0';
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char chunk[4096];

	(void)h;
	(void)hint;
	buf->base = chunk;
	buf->len = sizeof(chunk);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct as_proc *pr = s->data;

	if (n > 0)
		keep_output(pr, buf->base, (size_t)n);
	else if (n < 0)
		uv_read_stop(s);
}

/* What an exited command wrote and the loop has not read yet: it is in the
 * pipe already (a child it left running may hold the pipe open, so its
 * end of file may never come). */
static void drain_output(struct as_proc *pr)
{
	uv_os_fd_t fd;
	char chunk[1024];
	ssize_t n;

	uv_read_stop((uv_stream_t *)&pr->out);
	if (uv_fileno((uv_handle_t *)&pr->out, &fd) < 0)
		return;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		keep_output(pr, chunk, (size_t)n);
}

static void plan_soon(struct autoscale *as, struct as_pool *p)
{
	p->changed = true;
	as->d->state.dirty = true;
}

static void leave(struct autoscale *as, struct as_node *a, const char *why, bool preempt);
static void launch_failed(struct autoscale *as, struct as_pool *p, int64_t now);

static void on_exit_cb(uv_process_t *h, int64_t status, int signo)
{
	struct as_proc *pr = h->data;
	struct autoscale *as = pr->as;
	struct state *st = &as->d->state;
	char names[256] = "", how[48];
	int64_t now = hpq_now_ms();

	drain_output(pr);
	one_line(pr->buf);
	for (size_t i = 0, k = 0; i < pr->nnames && k < sizeof(names) - 1; i++)
		k += (size_t)snprintf(names + k, sizeof(names) - k, "%s%s", i ? " " : "",
				      pr->names[i]);
	if (signo)
		snprintf(how, sizeof(how), "killed by signal %d", signo);
	else
		snprintf(how, sizeof(how), "exit %lld", (long long)status);

	if (as->d->stopping) {
		proc_close(pr);
		return;
	}
	if (pr->provision) {
		if (status || signo) {
			state_event(st, "node", NULL, pr->names[0], ACTOR, "autoscale: provision "
				    "command for %s in pool %s failed (%s): %s", names,
				    pr->pool->cfg->pool, how, pr->len ? pr->buf : "(no output)");
			launch_failed(as, pr->pool, now);
			for (size_t i = 0; i < pr->nnames; i++) {
				struct as_node *a = strmap_get(&as->by_name, pr->names[i]);

				if (a && a->state == AS_LAUNCHING)
					leave(as, a, "launch failed: the provision command failed",
					      false);
			}
		} else {
			log_info("autoscale: provision command for %s done", names);
		}
	} else {
		for (size_t i = 0; i < pr->nnames; i++) {
			struct as_node *a = strmap_get(&as->by_name, pr->names[i]);

			if (!a)
				continue;
			if (status || signo) {
				uint32_t k = a->deprov_failures < 10 ? a->deprov_failures : 10;

				a->deprov = 0;
				a->deprov_failures++;
				a->deprov_retry_ms = now + ((int64_t)BACKOFF_BASE_MS << k);
				state_event(st, "node", NULL, a->name, ACTOR, "autoscale: deprovision "
					    "command for %s failed (%s), retrying: %s", a->name, how,
					    pr->len ? pr->buf : "(no output)");
			} else {
				a->deprov = 2;
			}
		}
		plan_soon(as, pr->pool);
	}
	proc_close(pr);
}

static char *env_entry(const char *key, const char *value)
{
	char *s;

	xasprintf(&s, "%s=%s", key, value);
	return s;
}

/* Runs the pool's provision or deprovision command for names. */
static int spawn(struct autoscale *as, struct as_pool *p, bool provision, char *const *names,
		 size_t nnames)
{
	const struct autoscale_config *c = p->cfg;
	const char *cmd = provision ? c->provision_command : c->deprovision_command;
	uv_process_options_t o = { 0 };
	uv_stdio_container_t io[3];
	struct as_proc *pr = xcalloc(1, sizeof(*pr));
	char **args = xcalloc(nnames + 2, sizeof(*args));
	char **env, num[32], *joined = NULL, *labels = NULL;
	size_t nenv = 0, k = 0, mine;
	uv_file fds[2] = { -1, -1 };
	bool piped;
	int r;

	for (size_t i = 0, len = 0; i < nnames; i++) {
		joined = xrealloc(joined, len + strlen(names[i]) + 2);
		len += (size_t)sprintf(joined + len, "%s%s", i ? " " : "", names[i]);
	}
	for (size_t i = 0, len = 0; i < c->nlabels; i++) {
		labels = xrealloc(labels, len + strlen(c->labels[i]) + 2);
		len += (size_t)sprintf(labels + len, "%s%s", i ? "," : "", c->labels[i]);
	}
	while (environ && environ[nenv])
		nenv++;
	env = xcalloc(nenv + 8, sizeof(*env));
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "HPQ_AUTOSCALE_", 14))
			env[k++] = environ[i];
	mine = k;
	env[k++] = env_entry("HPQ_AUTOSCALE_POOL", c->pool);
	env[k++] = env_entry("HPQ_AUTOSCALE_NODES", joined ? joined : "");
	snprintf(num, sizeof(num), "%lld", (long long)c->tmpl.gpus);
	env[k++] = env_entry("HPQ_AUTOSCALE_GPUS", num);
	snprintf(num, sizeof(num), "%lld", (long long)c->tmpl.cpus);
	env[k++] = env_entry("HPQ_AUTOSCALE_CPUS", num);
	snprintf(num, sizeof(num), "%lld", (long long)c->tmpl.mem);
	env[k++] = env_entry("HPQ_AUTOSCALE_MEM", num);
	env[k++] = env_entry("HPQ_AUTOSCALE_LABELS", labels ? labels : "");
	env[k] = NULL;
	args[0] = (char *)cmd;
	for (size_t i = 0; i < nnames; i++)
		args[i + 1] = names[i];

	pr->as = as;
	pr->provision = provision;
	pr->pool = p;
	pr->nnames = nnames;
	pr->names = xcalloc(nnames, sizeof(*pr->names));
	for (size_t i = 0; i < nnames; i++)
		pr->names[i] = xstrdup(names[i]);
	pr->proc.data = pr->out.data = pr;
	uv_pipe_init(as->d->loop, &pr->out, 0);
	/* One pipe for its stdout and stderr, read here: what it says is what
	 * a failure's event shows. */
	r = uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
	if (r == 0)
		r = uv_pipe_open(&pr->out, fds[0]);
	io[0].flags = UV_IGNORE;
	io[1].flags = UV_INHERIT_FD;
	io[1].data.fd = fds[1];
	io[2].flags = UV_INHERIT_FD;
	io[2].data.fd = fds[1];
	o.file = cmd;
	o.args = args;
	o.env = env;
	o.stdio = io;
	o.stdio_count = 3;
	o.exit_cb = on_exit_cb;
	piped = r == 0;
	if (piped)
		r = uv_spawn(as->d->loop, &pr->proc, &o);
	if (fds[1] >= 0)
		close(fds[1]);
	if (r < 0 && fds[0] >= 0 && uv_fileno((uv_handle_t *)&pr->out, &(uv_os_fd_t){ 0 }) < 0)
		close(fds[0]);          /* not the pipe handle's yet */
	for (size_t i = mine; i < k; i++)
		free(env[i]);
	free(env);
	free(args);
	free(joined);
	free(labels);
	if (!piped) {
		/* No process handle to close: only the pipe's. */
		pr->open = 1;
		uv_close((uv_handle_t *)&pr->out, proc_closed);
		return r;
	}
	pr->open = 2;
	dlist_add_tail(&as->procs, &pr->link);
	if (r < 0) {
		/* libuv wants even a failed spawn's handle closed. */
		proc_close(pr);
		return r;
	}
	uv_read_start((uv_stream_t *)&pr->out, on_alloc, on_read);
	log_notice("autoscale: %s %s for pool %s (pid %d)", cmd, pr->names[0], p->cfg->pool,
		   pr->proc.pid);
	return 0;
}

/* ---------------------------------------------------------------- launching */

struct launch_job {
	struct autoscale *as;
	struct as_pool *p;
	char **names;
	size_t nnames;
};

/* The launch is committed: now the outside world may hear of it. */
static void launch_committed(void *arg, int status)
{
	struct launch_job *j = arg;
	struct autoscale *as = j->as;
	int r;

	if (status == 0 && as->d->autoscale == as && !as->d->stopping) {
		r = spawn(as, j->p, true, j->names, j->nnames);
		if (r < 0) {
			int64_t now = hpq_now_ms();

			state_event(&as->d->state, "node", NULL, j->names[0], ACTOR, "autoscale: "
				    "cannot run provision command '%s': %s",
				    j->p->cfg->provision_command, uv_strerror(r));
			launch_failed(as, j->p, now);
			for (size_t i = 0; i < j->nnames; i++) {
				struct as_node *a = strmap_get(&as->by_name, j->names[i]);

				if (a && a->state == AS_LAUNCHING)
					leave(as, a, "launch failed: cannot run the provision "
					      "command", false);
			}
		}
	}
	for (size_t i = 0; i < j->nnames; i++)
		free(j->names[i]);
	free(j->names);
	free(j);
}

/* A name no node has: POOL-N. */
static char *next_name(struct autoscale *as, struct as_pool *p)
{
	for (;;) {
		char *name;

		xasprintf(&name, "%s-%" PRIu32, p->cfg->pool, ++p->next_seq);
		if (!state_node_find(&as->d->state, name) && !strmap_get(&as->by_name, name))
			return name;
		free(name);
	}
}

/* Records count new nodes and runs the provision command once committed. */
static void launch(struct autoscale *as, struct as_pool *p, uint32_t count, const char *replaces,
		   int64_t now)
{
	struct state *st = &as->d->state;
	struct launch_job *j;
	struct state_err e;

	if (!count)
		return;
	j = xcalloc(1, sizeof(*j));
	j->as = as;
	j->p = p;
	j->names = xcalloc(count, sizeof(*j->names));
	for (uint32_t i = 0; i < count; i++) {
		char *name = next_name(as, p);
		struct as_node *a;

		if (state_node_add_launching(st, name, st->pools[p->pool_id], p->cfg->tmpl,
					     p->cfg->labels, p->cfg->nlabels, ACTOR, &e) < 0) {
			log_err("autoscale: cannot add node %s: %s", name, e.msg);
			free(name);
			continue;
		}
		a = node_new(as, p, name, AS_LAUNCHING, now, 0, replaces);
		save_node(as, a);
		j->names[j->nnames++] = name;
	}
	if (!j->nnames) {
		launch_committed(j, -1);
		return;
	}
	state_event(st, "node", NULL, j->names[0], ACTOR, "autoscale: launching %zu node%s in "
		    "pool %s%s%s", j->nnames, j->nnames == 1 ? "" : "s", p->cfg->pool,
		    *replaces ? " to replace " : "", replaces);
	store_after_commit(as->d->store, launch_committed, j);
}

static void launch_failed(struct autoscale *as, struct as_pool *p, int64_t now)
{
	uint32_t k = p->failures < 12 ? p->failures : 12;
	int64_t wait = (int64_t)BACKOFF_BASE_MS << k;
	char d[32];

	if (wait > BACKOFF_MAX_MS)
		wait = BACKOFF_MAX_MS;
	p->failures++;
	p->retry_ms = now + wait;
	state_pool_set_waiting(&as->d->state, as->d->state.pools[p->pool_id], "launch-failed");
	state_event(&as->d->state, "pool", NULL, NULL, ACTOR, "autoscale: pool %s: %u launch "
		    "failure%s in a row; next launch in %s", p->cfg->pool, p->failures,
		    p->failures == 1 ? "" : "s",
		    hpq_format_duration((uint64_t)(wait + 999) / 1000, d, sizeof(d)));
	plan_soon(as, p);
}

/* Its agent registered under the chosen name: the node joins the pool. */
static void registered(struct autoscale *as, struct as_node *a, struct node *n, int64_t now)
{
	struct state *st = &as->d->state;
	struct as_pool *p = a->pool;

	a->state = AS_READY;
	a->born_ms = now;
	a->empty_since_ms = now;
	save_node(as, a);
	state_node_set_service(st, n, "active", ACTOR, "");
	if (p->failures) {
		p->failures = 0;
		p->retry_ms = 0;
	}
	state_pool_set_waiting(st, st->pools[p->pool_id], "");
	if (*a->replaces) {
		struct as_node *old = strmap_get(&as->by_name, a->replaces);

		if (old && old->state == AS_READY)
			leave(as, old, "replaced: older than max_node_lifetime", true);
	}
}

/* ---------------------------------------------------------------- leaving */

static bool preemptible(const struct state *st, const struct task *t)
{
	/* Class ids are indexes into st->classes (team.c): no lookup by name. */
	const struct prio_class *c = t->st.class_id < st->nclasses ? st->classes[t->st.class_id]
								    : NULL;

	return c && c->preemptible;
}

/* Drains a, preempting its preemptible work to its checkpoints if asked. */
static void leave(struct autoscale *as, struct as_node *a, const char *why, bool preempt)
{
	struct hpqd *d = as->d;
	struct state *st = &d->state;
	struct node *n = state_node_find(st, a->name);
	int moved = 0;

	a->state = AS_LEAVING;
	save_node(as, a);
	if (!n)
		return;
	if (preempt) {
		struct task_member *m, *next;

		node_for_each_member(m, next, n) {
			struct task *t = m->t;
			bool here = t->done && t->done[m->rank] != '1';

			if (!here || t->state != TASK_RUNNING || !preemptible(st, t))
				continue;
			state_task_preempt(st, t, NULL, SCHED_CAUSE_NONE);
			agentlink_kill_after_commit(d, t, t->attempts, -1, t->preempt_signal,
						    state_task_stop_grace(st, t), "preempted");
			moved++;
		}
	}
	state_node_set_service(st, n, sched_node_tasks(st->sched, n->id) ? "draining" : "drained",
			       ACTOR, why);
	state_event(st, "node", NULL, n->name, ACTOR, "autoscale: %s leaves pool %s (%s)%s",
		    n->name, a->pool->cfg->pool, why,
		    moved ? "; its preemptible tasks are preempted to their checkpoints" : "");
}

/* A leaving node's next step; may free a. */
static void progress(struct autoscale *as, struct as_node *a, int64_t now)
{
	struct state *st = &as->d->state;
	struct node *n = state_node_find(st, a->name);
	struct state_err e;

	if (!n) {                        /* removed by hand meanwhile */
		node_forget(as, a);
		return;
	}
	if (sched_node_tasks(st->sched, n->id))
		return;
	if (!strcmp(n->service, "draining") || !strcmp(n->service, "launching"))
		state_node_set_service(st, n, "drained", ACTOR, n->reason);
	if (a->deprov == 0 && now >= a->deprov_retry_ms) {
		char *names[1] = { a->name };
		int r = spawn(as, a->pool, false, names, 1);

		if (r < 0) {
			uint32_t k = a->deprov_failures < 10 ? a->deprov_failures : 10;

			a->deprov_failures++;
			a->deprov_retry_ms = now + ((int64_t)BACKOFF_BASE_MS << k);
			state_event(st, "node", NULL, a->name, ACTOR, "autoscale: cannot run "
				    "deprovision command '%s': %s", a->pool->cfg->deprovision_command,
				    uv_strerror(r));
		} else {
			a->deprov = 1;
		}
		return;
	}
	if (a->deprov != 2 || n->connected)
		return;
	if (state_node_remove(st, n, &hpqd_actor, &e) < 0) {
		if (!a->removal_refused)
			log_warn("autoscale: cannot remove node %s yet: %s", a->name, e.msg);
		a->removal_refused = true;
		return;
	}
	plan_soon(as, a->pool);
	node_forget(as, a);
}

/* ---------------------------------------------------------------- planning */

/* What governance leaves team in pool for more work: its guarantee plus
 * what it may borrow, less what it uses, in the resources someone holds a
 * guarantee of there (docs/design.md §4). */
static void team_room(struct state *st, uint32_t team, uint32_t pool, struct hpq_res governed,
		      struct team_room *r)
{
	const struct team *t = team < st->nteams ? st->teams[team] : NULL;
	const struct quota *q = NULL;
	struct sched_usage u;
	struct hpq_res limit;

	r->done = true;
	r->unlimited = false;
	r->left = HPQ_RES_ZERO;
	if (hpq_res_is_zero(governed)) {
		r->unlimited = true;         /* all idle compute: no borrow limits */
		return;
	}
	for (size_t i = 0; t && i < t->nquotas && !q; i++)
		if (t->quotas[i].pool == pool)
			q = &t->quotas[i];
	if (!t || !q)
		return;                      /* no guarantee, may not borrow */
	limit = q->q.guarantee;
	if (q->q.sharing == SCHED_LEND_AND_BORROW)
		limit = hpq_res_add(limit, q->q.has_borrow_abs
					   ? q->q.borrow_abs
					   : (struct hpq_res){
						     q->q.guarantee.gpus * q->q.borrow_limit_pct / 10000,
						     q->q.guarantee.cpus * q->q.borrow_limit_pct / 10000,
						     q->q.guarantee.mem * q->q.borrow_limit_pct / 10000 });
	if (sched_team_usage(st->sched, team, pool, &u) < 0)
		u.used = HPQ_RES_ZERO;
	r->left = hpq_res_sub_floor(limit, u.used);
	/* Not governed there: no limit. */
	if (!governed.gpus)
		r->left.gpus = INT64_MAX / 4;
	if (!governed.cpus)
		r->left.cpus = INT64_MAX / 4;
	if (!governed.mem)
		r->left.mem = INT64_MAX / 4;
}

/* How many of one fit in left (one is never all zero). */
static uint64_t how_many(struct hpq_res left, struct hpq_res one)
{
	uint64_t k = UINT64_MAX;

	if (one.gpus > 0)
		k = (uint64_t)(left.gpus / one.gpus);
	if (one.cpus > 0 && (uint64_t)(left.cpus / one.cpus) < k)
		k = (uint64_t)(left.cpus / one.cpus);
	if (one.mem > 0 && (uint64_t)(left.mem / one.mem) < k)
		k = (uint64_t)(left.mem / one.mem);
	return k == UINT64_MAX ? 0 : k;
}

/* The tasks a pending task stands for: 1, or for an array's pending head
 * its pending indices too, within its % limit (array.h), at most a
 * million (no pool is that large). */
static uint64_t array_demand(const struct state *st, const struct task *t)
{
	const struct array *a;
	uint64_t count;

	if (!t->array_id || !(a = array_find(st, t->array_id)) || a->head != t || a->held)
		return 1;
	count = 1 + array_set_count(&a->pending);
	if (a->max_running) {
		uint64_t room = a->max_running > a->nactive ? a->max_running - a->nactive : 0;

		if (room < count)
			count = room;
	}
	return count < (1u << 20) ? count : 1u << 20;
}

static void *grow(void *v, size_t *cap, size_t want, size_t size)
{
	if (*cap >= want)
		return v;
	*cap = want > 2 * *cap ? want : 2 * *cap;
	return xreallocarray(v, *cap, size);
}

static void plan_pool(struct autoscale *as, struct as_pool *p, int64_t now)
{
	struct hpqd *d = as->d;
	struct state *st = &d->state;
	const struct autoscale_config *c = p->cfg;
	struct asplan_pool in = {
		.tmpl = c->tmpl,
		.min_nodes = c->min_nodes,
		.max_nodes = c->max_nodes,
		.idle_timeout_ms = (int64_t)c->idle_timeout_ms,
		.max_lifetime_ms = (int64_t)c->max_lifetime_ms,
		.consolidation = c->consolidation,
		.may_launch = now >= p->retry_ms,
	};
	struct hpq_res governed = HPQ_RES_ZERO;
	size_t nn = 0, ndem = 0, ntres = 0;
	uint32_t in_pool = 0;
	int64_t young_until = INT64_MAX;

	/* The pool's nodes; a launched node whose agent is in is ready now. */
	mark_replaced(as);
	as->slot = grow(as->slot, &as->slot_cap, st->nnodes + 1, sizeof(*as->slot));
	for (uint32_t i = 0; i < st->nnodes; i++) {
		struct node *n = st->nodes[i];
		struct as_node *a;
		struct asplan_node *pn;

		as->slot[i] = -1;
		if (!n || n->pool != p->pool_id)
			continue;
		a = strmap_get(&as->by_name, n->name);
		if (a && a->state == AS_LAUNCHING && n->connected)
			registered(as, a, n, now);
		p->pn = grow(p->pn, &p->pn_cap, nn + 1, sizeof(*p->pn));
		pn = &p->pn[nn];
		*pn = (struct asplan_node){
			.id = i,
			.state = a && a->state == AS_LEAVING ? ASPLAN_LEAVING
				 : !strcmp(n->service, "launching") ? ASPLAN_LAUNCHING
								     : ASPLAN_READY,
			.managed = a != NULL,
			.schedulable = state_node_schedulable(n),
			.movable = true,
			.replacing = a && a->state == AS_READY && a->replaced,
			.capacity = n->capacity,
			.free = n->capacity,
			.empty_since_ms = a ? a->empty_since_ms : 0,
			.born_ms = a ? a->born_ms : 0,
		};
		as->slot[i] = (int32_t)nn++;
	}
	in_pool = (uint32_t)nn;
	in.budget = config_autoscale_budget(c, in_pool);

	/* What runs on them: free capacity, and each task's request, read
	 * from the running tasks once (their records are scattered in
	 * memory), then bucketed by node from a compact copy. */
	as->pn_count = grow(as->pn_count, &as->pn_count_cap, nn + 1, sizeof(*as->pn_count));
	memset(as->pn_count, 0, (nn + 1) * sizeof(*as->pn_count));
	for (struct dlist *l = st->running.next; l != &st->running; l = l->next) {
		const struct task *t = container_of(l, struct task, run_link);
		bool moves;

		if (t->st.pool != p->pool_id || !t->st.nodes)
			continue;
		moves = t->state == TASK_RUNNING && preemptible(st, t);
		/* The policy's min-runtime holds for consolidation too: such a
		 * node may go once its youngest task is old enough. */
		if (moves && c->consolidation && st->policy.sched.min_runtime_ms > 0 &&
		    t->st.start_ms + st->policy.sched.min_runtime_ms > now) {
			moves = false;
			if (t->st.start_ms + st->policy.sched.min_runtime_ms < young_until)
				young_until = t->st.start_ms + st->policy.sched.min_runtime_ms;
		}
		for (uint32_t r = 0; r < t->st.nnodes; r++) {
			uint32_t id = t->st.nodes[r];
			int32_t k = id < st->nnodes ? as->slot[id] : -1;

			if (k < 0)
				continue;
			as->runs = grow(as->runs, &as->runs_cap, ntres + 1, sizeof(*as->runs));
			as->runs[ntres++] = (struct run_on){ (uint32_t)k, t->st.per_node };
			as->pn_count[k]++;
			p->pn[k].free = hpq_res_sub_floor(p->pn[k].free, t->st.per_node);
			if (!moves)
				p->pn[k].movable = false;
		}
	}
	p->tres = grow(p->tres, &p->tres_cap, ntres + 1, sizeof(*p->tres));
	for (size_t k = 0, at = 0; k < nn; k++) {
		p->pn[k].task_res = &p->tres[at];
		at += as->pn_count[k];
		as->pn_count[k] = 0;
	}
	for (size_t i = 0; i < ntres; i++) {
		uint32_t k = as->runs[i].k;

		((struct hpq_res *)p->pn[k].task_res)[as->pn_count[k]++] = as->runs[i].res;
	}
	for (size_t k = 0; k < nn; k++) {
		struct asplan_node *pn = &p->pn[k];
		struct as_node *a = strmap_get(&as->by_name, st->nodes[pn->id]->name);

		pn->ntasks = as->pn_count[k];
		if (!a || a->state != AS_READY)
			continue;
		if (pn->ntasks)
			a->empty_since_ms = 0;
		else if (!a->empty_since_ms)
			a->empty_since_ms = now;
		pn->empty_since_ms = a->empty_since_ms;
	}

	/* The demand: pending work of the pool that governance lets run. */
	for (uint32_t i = 0; i < st->nteams; i++) {
		const struct team *t = st->teams[i];

		for (size_t k = 0; t && k < t->nquotas; k++)
			if (t->quotas[k].pool == p->pool_id)
				governed = hpq_res_add(governed, t->quotas[k].q.guarantee);
	}
	as->room = grow(as->room, &as->room_cap, st->nteams + 1, sizeof(*as->room));
	memset(as->room, 0, (st->nteams + 1) * sizeof(*as->room));
	for (size_t i = 0; i < st->ntasks; i++) {
		const struct task *t = st->tasks[i];
		uint32_t nnodes = t->st.nnodes ? t->st.nnodes : 1;
		uint64_t count;
		struct team_room *r;

		if (t->state != TASK_PENDING || t->st.state != SCHED_PENDING ||
		    t->st.pool != p->pool_id)
			continue;
		count = array_demand(st, t);
		if (t->st.team < st->nteams && count) {
			uint64_t k;

			r = &as->room[t->st.team];
			if (!r->done)
				team_room(st, t->st.team, p->pool_id, governed, r);
			if (!r->unlimited) {
				struct hpq_res one = hpq_res_scale(t->st.per_node, nnodes);

				k = how_many(r->left, one);
				if (k < count)
					count = k;
				r->left = hpq_res_sub(r->left, hpq_res_scale(one, (int64_t)count));
			}
		}
		if (!count)
			continue;
		p->dem = grow(p->dem, &p->dem_cap, ndem + 1, sizeof(*p->dem));
		p->dem[ndem++] = (struct asplan_demand){ t->st.per_node, nnodes, (uint32_t)count };
	}

	asplan_run(&p->plan, &in, p->pn, nn, p->dem, ndem, now);
	p->wake_ms = p->plan.next_ms < young_until ? p->plan.next_ms : young_until;

	if (p->plan.launch)
		launch(as, p, p->plan.launch, "", now);
	for (size_t i = 0; i < p->plan.nreplace; i++)
		launch(as, p, 1, st->nodes[p->plan.replace[i]]->name, now);
	for (size_t i = 0; i < p->plan.nremove; i++) {
		struct as_node *a = strmap_get(&as->by_name, st->nodes[p->plan.remove[i]]->name);
		char why[64], dur[32];

		snprintf(why, sizeof(why), "empty for %s",
			 hpq_format_duration(c->idle_timeout_ms / 1000, dur, sizeof(dur)));
		if (a)
			leave(as, a, why, false);
	}
	for (size_t i = 0; i < p->plan.nconsolidate; i++) {
		struct as_node *a =
			strmap_get(&as->by_name, st->nodes[p->plan.consolidate[i]]->name);

		if (a)
			leave(as, a, "consolidation: its work fits on other nodes", true);
	}
}

void autoscale_cycle(struct hpqd *d, int64_t now_ms)
{
	struct autoscale *as = d->autoscale;

	if (!as)
		return;
	for (size_t i = 0; i < as->npools; i++) {
		struct as_pool *p = &as->pools[i];

		if (!p->changed)
			continue;
		p->changed = false;
		plan_pool(as, p, now_ms);
	}
}

/* ---------------------------------------------------------------- the timer */

static void on_tick(uv_timer_t *h)
{
	struct autoscale *as = h->data;
	struct hpqd *d = as->d;
	int64_t now = hpq_now_ms();

	if (d->stopping || store_degraded(d->store))
		return;
	for (struct dlist *l = as->nodes.next, *next; l != &as->nodes; l = next) {
		struct as_node *a = container_of(l, struct as_node, link);
		const struct autoscale_config *c = a->pool->cfg;

		next = l->next;
		if (a->state == AS_LAUNCHING &&
		    now >= a->launched_ms + (int64_t)c->launch_timeout_ms) {
			char dur[32];
			struct node *n = state_node_find(&d->state, a->name);

			if (n && n->connected) {
				plan_soon(as, a->pool);  /* registered: the plan takes it in */
				continue;
			}
			state_event(&d->state, "node", NULL, a->name, ACTOR, "autoscale: launch of "
				    "%s timed out: its agent did not register within %s", a->name,
				    hpq_format_duration(c->launch_timeout_ms / 1000, dur,
							sizeof(dur)));
			launch_failed(as, a->pool, now);
			leave(as, a, "launch timed out", false);
		}
		if (a->state == AS_LEAVING)
			progress(as, a, now);
	}
	for (size_t i = 0; i < as->npools; i++) {
		struct as_pool *p = &as->pools[i];

		if (now >= p->wake_ms || (p->retry_ms && now >= p->retry_ms)) {
			if (p->retry_ms && now >= p->retry_ms)
				p->retry_ms = 0;
			p->wake_ms = INT64_MAX;
			p->changed = true;
		}
		if (p->changed)
			d->state.dirty = true;
	}
}

/* The state's event observer: the pool of what changed plans again. */
static void on_event(void *arg, const struct store_event *ev, const struct task *t)
{
	struct autoscale *as = arg;
	struct state *st = &as->d->state;
	struct as_pool *p = NULL;

	if (t) {
		p = pool_of_id(as, t->st.pool);
	} else if (ev->node && *ev->node) {
		const struct node *n = state_node_find(st, ev->node);

		if (n)
			p = pool_of_id(as, n->pool);
	}
	if (p)
		p->changed = true;
}

/* ---------------------------------------------------------------- setup */

static void load_row(void *arg, const struct store_asnode_row *row)
{
	struct autoscale *as = arg;
	struct state *st = &as->d->state;
	struct as_pool *p = NULL;
	enum as_state s = AS_LEAVING;

	for (size_t i = 0; i < as->npools && !p; i++)
		if (!strcmp(as->pools[i].cfg->pool, row->pool))
			p = &as->pools[i];
	for (int k = 0; k < 3; k++)
		if (!strcmp(row->state, state_names[k]))
			s = (enum as_state)k;
	if (!p || !state_node_find(st, row->name)) {
		/* Its pool is no longer autoscaled, or the node is gone: the
		 * node, if any, is an ordinary one now. */
		log_notice("autoscale: forgetting node %s of pool %s (%s)", row->name, row->pool,
			   p ? "no such node" : "the pool has no [autoscale] section");
		store_asnode_delete(as->d->store, row->name);
		return;
	}
	node_new(as, p, row->name, s, row->launched_ms, row->born_ms, row->replaces);
}

int autoscale_load(struct hpqd *d, char *err, size_t errlen)
{
	struct autoscale *as;
	struct state *st = &d->state;
	int r;

	if (!d->cfg.nautoscale)
		return 0;
	as = xcalloc(1, sizeof(*as));
	as->d = d;
	dlist_init(&as->nodes);
	dlist_init(&as->procs);
	as->npools = d->cfg.nautoscale;
	as->pools = xcalloc(as->npools, sizeof(*as->pools));
	for (size_t i = 0; i < as->npools; i++) {
		struct as_pool *p = &as->pools[i];
		size_t plen;

		p->cfg = &d->cfg.autoscale[i];
		p->pool_id = state_pool_ensure(st, p->cfg->pool, ACTOR)->id;
		state_pool_set_growth(st, st->pools[p->pool_id], p->cfg->tmpl, p->cfg->max_nodes);
		p->changed = true;
		p->wake_ms = INT64_MAX;
		asplan_init(&p->plan);
		/* Names go on from the largest POOL-N there is. */
		plen = strlen(p->cfg->pool);
		for (uint32_t k = 0; k < st->nnodes; k++) {
			const char *name = st->nodes[k] ? st->nodes[k]->name : NULL;
			uint64_t v;

			if (name && !strncmp(name, p->cfg->pool, plen) && name[plen] == '-' &&
			    hpq_parse_uint(name + plen + 1, 1, UINT32_MAX - 1, &v) == 0 &&
			    v > p->next_seq)
				p->next_seq = (uint32_t)v;
		}
	}
	d->autoscale = as;
	r = store_load_asnodes(d->store, load_row, as, err, errlen);
	if (r < 0) {
		autoscale_close(d);
		return r;
	}
	return 0;
}

int autoscale_init(struct hpqd *d)
{
	struct autoscale *as = d->autoscale;
	int r;

	if (!as)
		return 0;
	r = uv_timer_init(d->loop, &as->tick);
	if (r < 0)
		return r;
	as->tick_open = true;
	as->tick.data = as;
	state_observe(&d->state, &(struct state_observer){ .event = on_event, .arg = as });
	d->state.dirty = true;
	return uv_timer_start(&as->tick, on_tick, TICK_MS, TICK_MS);
}

static void free_autoscale(struct autoscale *as)
{
	while (!dlist_empty(&as->nodes)) {
		struct as_node *a = container_of(as->nodes.next, struct as_node, link);

		dlist_del(&a->link);
		free(a->name);
		free(a->replaces);
		free(a);
	}
	strmap_release(&as->by_name);
	for (size_t i = 0; i < as->npools; i++) {
		struct as_pool *p = &as->pools[i];

		asplan_release(&p->plan);
		free(p->pn);
		free(p->dem);
		free(p->tres);
	}
	free(as->pools);
	free(as->slot);
	free(as->pn_count);
	free(as->room);
	free(as->runs);
	free(as);
}

static void tick_closed(uv_handle_t *h)
{
	free_autoscale(h->data);
}

void autoscale_close(struct hpqd *d)
{
	struct autoscale *as = d->autoscale;

	if (!as)
		return;
	d->autoscale = NULL;
	while (!dlist_empty(&as->procs)) {
		struct as_proc *pr = container_of(as->procs.next, struct as_proc, link);

		log_notice("stopping: the autoscaler's command for %s (pid %d) is left running",
			   pr->names[0], pr->proc.pid);
		proc_close(pr);
	}
	state_unobserve(&d->state, as);
	if (as->tick_open)
		uv_close((uv_handle_t *)&as->tick, tick_closed);
	else
		free_autoscale(as);
}
