/*
 * repair.c: node service administration and automatic repair (repair.h).
 *
 * A timer looks at every node once a second (O(nodes), no I/O): a draining
 * node with no unfinished run becomes drained; a node whose fatal finding or
 * unreachability has lasted its wait time ([repair] wait_accelerator for
 * accelerator findings, wait_default otherwise) starts a repair, if the
 * pool's blast radius allows; a repair past its timeout leaves the node
 * down. Heartbeats (observed from the state) count the healthy streak that returns
 * a repaired node to active.
 *
 * Starting a repair: service repairing (by "hpqd" or the administrator),
 * its runs requeued from their newest checkpoints and killed everywhere
 * (agentlink_evacuate: a gang loses all members), then the repair command
 * runs on the daemon's host through uv_spawn, as COMMAND NODE ACTION REASON
 * with HPQ_NODE, HPQ_REPAIR_ACTION and HPQ_REPAIR_REASON in its
 * environment, killed if it outlives the repair timeout. Action "none", or
 * no command configured, runs nothing: the node just has to turn healthy.
 *
 * Safety, for automatic repairs only (an administrator's `hpq node repair`
 * is a decision, not a guess): none starts while more than
 * max_unhealthy_percent of the pool's nodes are unhealthy, unreachable or
 * repairing (the candidate counts), nor while max_parallel repairs run in
 * the cluster. The node then carries the reason "repair-blocked: ...", said
 * once in an event. A node an administrator drained (admin_hold) is never
 * repaired or resumed automatically.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentlink.h"
#include "error.h"
#include "context.h"
#include "log.h"
#include "repair.h"
#include "store.h"
#include "xalloc.h"

extern char **environ;

#define TICK_MS 1000
#define ACTOR "hpqd"

struct repair_proc {
	uv_process_t proc;
	uv_timer_t timer;
	struct hpqd *d;
	struct dlist link;
	char *node;
	uint64_t repair_mono;       /* the repair it belongs to (node->repair_mono) */
	int open;                   /* handles not yet closed */
	bool timed_out;
};

struct repair {
	uv_timer_t tick;
	struct dlist procs;
};

/* ---------------------------------------------------------------- actions */

/* Built-in: what a reason usually needs (prefix match; the first wins). */
static const struct {
	const char *prefix;
	const char *action;
} builtin_actions[] = {
	{ "xid-", "reboot" },
	{ "gpu-", "reboot" },
	{ "nvidia-smi", "reboot" },
	{ "hard-lockup", "reboot" },
	{ "soft-lockup", "reboot" },
	{ "hung-task", "reboot" },
	{ "kernel-bug", "reboot" },
	{ "unreachable", "reboot" },
	{ "disk", "none" },
	{ "memory", "none" },
	{ "oom", "none" },
	{ "clock", "none" },
	{ "netif", "none" },
};

const char *repair_action_for(const struct config *cfg, const char *reason,
			      const char *suggested)
{
	for (size_t i = 0; i < cfg->repair.nactions; i++)
		if (!strcmp(cfg->repair.action_reasons[i], reason))
			return cfg->repair.action_values[i];
	if (suggested && (!strcmp(suggested, "reboot") || !strcmp(suggested, "replace")))
		return suggested;
	for (size_t i = 0; i < sizeof(builtin_actions) / sizeof(builtin_actions[0]); i++)
		if (!strncmp(reason, builtin_actions[i].prefix, strlen(builtin_actions[i].prefix)))
			return builtin_actions[i].action;
	return "reboot";
}

/* The finding that decides the repair: a fatal accelerator one first. */
static const struct finding *worst_finding(const struct node *n)
{
	const struct finding *best = NULL;

	for (size_t i = 0; i < n->nfindings; i++) {
		const struct finding *f = &n->findings[i];

		if (strcmp(f->severity, "fatal"))
			continue;
		if (!best || (!strcmp(f->category, "accelerator") &&
			      strcmp(best->category, "accelerator")))
			best = f;
	}
	return best;
}

static bool is_bad(const struct node *n)
{
	return n->lost || !strcmp(n->health, "unhealthy") || !strcmp(n->health, "unreachable");
}

static bool has_runs(const struct node *n)
{
	const struct task_member *m;

	dlist_for_each_entry(m, &n->members, link)
		if (m->t->done && m->t->done[m->rank] != '1')
			return true;
	return false;
}

/* ---------------------------------------------------------------- the command */

static void proc_closed(uv_handle_t *h)
{
	struct repair_proc *p = h->data;

	if (--p->open == 0) {
		free(p->node);
		free(p);
	}
}

static void proc_finish(struct repair_proc *p)
{
	dlist_del(&p->link);
	uv_timer_stop(&p->timer);
	uv_close((uv_handle_t *)&p->proc, proc_closed);
	uv_close((uv_handle_t *)&p->timer, proc_closed);
}

static void to_down(struct hpqd *d, struct node *n, const char *why)
{
	n->repair_running = false;
	state_node_set_service(&d->state, n, "down", ACTOR, why);
}

static void on_proc_exit(uv_process_t *h, int64_t status, int signo)
{
	struct repair_proc *p = h->data;
	struct hpqd *d = p->d;
	struct node *n = state_node_find(&d->state, p->node);
	char why[160];

	if (!n || strcmp(n->service, "repairing") || n->repair_mono != p->repair_mono) {
		log_info("repair command for %s ended (exit %lld, signal %d) after its repair did",
			 p->node, (long long)status, signo);
	} else if (p->timed_out || signo || status) {
		if (p->timed_out)
			snprintf(why, sizeof(why), "repair command timed out (action %s)",
				 n->repair_action);
		else if (signo)
			snprintf(why, sizeof(why), "repair command killed by signal %d (action %s)",
				 signo, n->repair_action);
		else
			snprintf(why, sizeof(why), "repair command failed with exit %lld "
				 "(action %s)", (long long)status, n->repair_action);
		to_down(d, n, why);
	} else {
		n->repair_running = false;
		n->streak = 0;
		state_event(&d->state, "node", NULL, n->name, ACTOR,
			    "repair command done (action %s): waiting for %u healthy heartbeats",
			    n->repair_action, d->cfg.repair.healthy_streak);
	}
	proc_finish(p);
}

static void on_proc_timeout(uv_timer_t *h)
{
	struct repair_proc *p = h->data;

	log_warn("repair command for %s outlived the repair timeout: killing it", p->node);
	p->timed_out = true;
	uv_process_kill(&p->proc, SIGKILL);
}

static char *env_entry(const char *key, const char *value)
{
	char *s;

	xasprintf(&s, "%s=%s", key, value);
	return s;
}

/* Starts the command; on failure returns a negative libuv code. */
static int spawn_command(struct hpqd *d, struct node *n, const char *reason)
{
	struct repair *rp = d->repair;
	const char *cmd = d->cfg.repair.command;
	uv_process_options_t o = { 0 };
	uv_stdio_container_t io[3];
	char *args[5];
	char **env;
	size_t nenv = 0, k = 0;
	struct repair_proc *p;
	int r;

	while (environ && environ[nenv])
		nenv++;
	env = xcalloc(nenv + 4, sizeof(*env));
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "HPQ_NODE=", 9) && strncmp(environ[i], "HPQ_REPAIR_", 11))
			env[k++] = environ[i];
	env[k++] = env_entry("HPQ_NODE", n->name);
	env[k++] = env_entry("HPQ_REPAIR_ACTION", n->repair_action);
	env[k++] = env_entry("HPQ_REPAIR_REASON", reason);
	env[k] = NULL;
	args[0] = (char *)cmd;
	args[1] = n->name;
	args[2] = n->repair_action;
	args[3] = (char *)reason;
	args[4] = NULL;
	io[0].flags = UV_IGNORE;
	io[1].flags = UV_INHERIT_FD;
	io[1].data.fd = 2;          /* its output goes to our log */
	io[2].flags = UV_INHERIT_FD;
	io[2].data.fd = 2;
	o.file = cmd;
	o.args = args;
	o.env = env;
	o.stdio = io;
	o.stdio_count = 3;
	o.exit_cb = on_proc_exit;

	p = xcalloc(1, sizeof(*p));
	p->d = d;
	p->node = xstrdup(n->name);
	p->repair_mono = n->repair_mono;
	p->proc.data = p;
	p->timer.data = p;
	r = uv_spawn(d->loop, &p->proc, &o);
	for (size_t i = k - 3; i < k; i++)
		free(env[i]);
	free(env);
	if (r < 0) {
		/* libuv wants even a failed spawn's handle closed. */
		p->open = 1;
		uv_close((uv_handle_t *)&p->proc, proc_closed);
		return r;
	}
	p->open = 2;
	uv_timer_init(d->loop, &p->timer);
	uv_timer_start(&p->timer, on_proc_timeout, d->cfg.repair.timeout_ms, 0);
	dlist_add_tail(&rp->procs, &p->link);
	log_notice("repair of %s: running %s %s %s '%s' (pid %d)", n->name, cmd, n->name,
		   n->repair_action, reason, p->proc.pid);
	return 0;
}

/* ---------------------------------------------------------------- repairs */

static void start_repair(struct hpqd *d, struct node *n, const char *actor, const char *action,
			 const char *reason)
{
	char why[320];
	int moved, r;

	n->admin_hold = false;
	n->streak = 0;
	n->repair_mono = uv_now(d->loop);
	n->repair_running = false;
	free(n->repair_action);
	n->repair_action = xstrdup(action);
	state_node_set_service(&d->state, n, "repairing", actor, reason);
	snprintf(why, sizeof(why), "node %s under repair: %s", n->name, reason);
	moved = agentlink_evacuate(d, n, why);
	state_event(&d->state, "node", NULL, n->name, actor,
		    "repair started (action %s, %d task%s requeued): %s", action, moved,
		    moved == 1 ? "" : "s", reason);
	if (!*d->cfg.repair.command || !strcmp(action, "none"))
		return;
	r = spawn_command(d, n, reason);
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot run repair command '%s': %s",
			 d->cfg.repair.command, uv_strerror(r));
		to_down(d, n, why);
		return;
	}
	n->repair_running = true;
}

/* Why no automatic repair may start on n now, or NULL. */
static const char *blocked(struct hpqd *d, const struct node *n, char *buf, size_t len)
{
	const struct state *st = &d->state;
	const struct repair_config *rc = &d->cfg.repair;
	uint32_t total = 0, bad = 0, repairing = 0;

	for (uint32_t i = 0; i < st->nnodes; i++) {
		const struct node *o = st->nodes[i];
		bool rep;

		if (!o)
			continue;
		rep = !strcmp(o->service, "repairing");
		repairing += rep;
		if (o->pool != n->pool)
			continue;
		total++;
		bad += rep || is_bad(o);
	}
	if (repairing >= rc->max_parallel) {
		snprintf(buf, len, "%u repair%s already running (max_parallel %u)", repairing,
			 repairing == 1 ? "" : "s", rc->max_parallel);
		return buf;
	}
	if ((uint64_t)bad * 100 > (uint64_t)rc->max_unhealthy_percent * total) {
		snprintf(buf, len, "%u of %u nodes in pool %s are unhealthy or repairing "
			 "(more than max_unhealthy_percent %u%%)", bad, total,
			 st->pools[n->pool]->name, rc->max_unhealthy_percent);
		return buf;
	}
	return NULL;
}

static void set_blocked(struct hpqd *d, struct node *n, const char *why)
{
	char reason[320];

	snprintf(reason, sizeof(reason), "repair-blocked: %s", why);
	if (!strcmp(n->reason, reason))
		return;
	free(n->reason);
	n->reason = xstrdup(reason);
	state_node_save(&d->state, n);
	state_event(&d->state, "node", NULL, n->name, ACTOR, "%s", reason);
}

static void clear_blocked(struct hpqd *d, struct node *n)
{
	if (strncmp(n->reason, "repair-blocked", 14))
		return;
	free(n->reason);
	n->reason = xstrdup("");
	state_node_save(&d->state, n);
	state_event(&d->state, "node", NULL, n->name, ACTOR, "repair no longer needed");
}

static void maybe_auto_repair(struct hpqd *d, struct node *n, uint64_t now)
{
	const struct repair_config *rc = &d->cfg.repair;
	const struct finding *f = worst_finding(n);
	bool accel = f && !n->lost && !strcmp(f->category, "accelerator");
	uint64_t wait = accel ? rc->wait_accelerator_ms : rc->wait_default_ms;
	char buf[256], reason[320];
	const char *why, *action;

	if (now - n->bad_since_mono < wait)
		return;
	if ((why = blocked(d, n, buf, sizeof(buf)))) {
		set_blocked(d, n, why);
		return;
	}
	if (n->lost || !f) {
		snprintf(reason, sizeof(reason), "unreachable: no word from its agent");
		action = repair_action_for(&d->cfg, "unreachable", NULL);
	} else {
		snprintf(reason, sizeof(reason), "%s: %s", f->reason, f->message);
		action = repair_action_for(&d->cfg, f->reason, f->action);
	}
	start_repair(d, n, ACTOR, action, reason);
}

static void check_node(struct hpqd *d, struct node *n, uint64_t now)
{
	const struct repair_config *rc = &d->cfg.repair;
	bool bad = is_bad(n);

	if (!bad)
		n->bad_since_mono = 0;
	else if (!n->bad_since_mono)
		n->bad_since_mono = now;

	if (!strcmp(n->service, "draining")) {
		if (!has_runs(n))
			state_node_set_service(&d->state, n, "drained", n->service_by, n->reason);
		return;
	}
	if (!strcmp(n->service, "repairing")) {
		if (!n->connected)
			n->streak = 0;
		if (!n->repair_running && now - n->repair_mono > rc->timeout_ms) {
			char why[320];

			snprintf(why, sizeof(why), "repair timed out after %llu s: %s",
				 (unsigned long long)(rc->timeout_ms / 1000), n->reason);
			to_down(d, n, why);
		}
		return;
	}
	if (!strcmp(n->service, "down") || n->admin_hold)
		return;
	if (!bad) {
		clear_blocked(d, n);
		return;
	}
	if (rc->enabled)
		maybe_auto_repair(d, n, now);
}

static void on_tick(uv_timer_t *h)
{
	struct hpqd *d = h->data;
	uint64_t now = uv_now(d->loop);

	if (d->stopping)
		return;
	d->repair_checks++;
	for (uint32_t i = 0; i < d->state.nnodes; i++)
		if (d->state.nodes[i])
			check_node(d, d->state.nodes[i], now);
}

/* The state's heartbeat observer: counts a repaired node's healthy streak. */
static void on_heartbeat(void *arg, struct node *n)
{
	struct hpqd *d = arg;

	if (strcmp(n->service, "repairing") || n->repair_running)
		return;
	if (!strcmp(n->health, "unhealthy")) {
		n->streak = 0;
		return;
	}
	if (++n->streak < d->cfg.repair.healthy_streak)
		return;
	state_event(&d->state, "node", NULL, n->name, ACTOR,
		    "repaired: %u healthy heartbeats after action %s", n->streak, n->repair_action);
	free(n->repair_action);
	n->repair_action = xstrdup("");
	n->bad_since_mono = 0;
	state_node_set_service(&d->state, n, "active", ACTOR, "");
}

/* ---------------------------------------------------------------- setup */

int repair_init(struct hpqd *d)
{
	struct repair *rp = xcalloc(1, sizeof(*rp));
	uint64_t every = d->cfg.heartbeat_ms / 2 < TICK_MS ? d->cfg.heartbeat_ms / 2 : TICK_MS;
	int r;

	dlist_init(&rp->procs);
	d->repair = rp;
	/* After a restart a repair's clock starts again; its command is not rerun. */
	for (uint32_t i = 0; i < d->state.nnodes; i++)
		if (d->state.nodes[i] && !strcmp(d->state.nodes[i]->service, "repairing"))
			d->state.nodes[i]->repair_mono = d->start_mono;
	r = uv_timer_init(d->loop, &rp->tick);
	if (r < 0)
		return r;
	rp->tick.data = d;
	state_observe(&d->state, &(struct state_observer){ .heartbeat = on_heartbeat, .arg = d });
	return uv_timer_start(&rp->tick, on_tick, every ? every : 1, every ? every : 1);
}

static void free_repair(uv_handle_t *h)
{
	free(container_of((uv_timer_t *)h, struct repair, tick));
}

void repair_close(struct hpqd *d)
{
	struct repair *rp = d->repair;

	if (!rp)
		return;
	while (!dlist_empty(&rp->procs)) {
		struct repair_proc *p = container_of(rp->procs.next, struct repair_proc, link);

		log_notice("stopping: the repair command for %s (pid %d) is left running",
			   p->node, p->proc.pid);
		proc_finish(p);
	}
	state_unobserve(&d->state, d);
	uv_close((uv_handle_t *)&rp->tick, free_repair);
	d->repair = NULL;
}

void repair_reload(struct hpqd *d, const struct config *cfg)
{
	struct repair_config old = d->cfg.repair;
	struct config tmp;

	/* Swap the [repair] block through a full copy: it owns its strings. */
	config_copy(&tmp, cfg);
	d->cfg.repair = tmp.repair;
	tmp.repair = old;
	config_release(&tmp);
}

/* ---------------------------------------------------------------- administration */

void repair_drain(struct hpqd *d, struct node *n, const char *by, const char *reason)
{
	char why[320];

	if (*reason)
		snprintf(why, sizeof(why), "%s", reason);
	else
		snprintf(why, sizeof(why), "drained by %s", by);
	n->admin_hold = true;
	n->repair_running = false;      /* a running command's exit is only logged */
	free(n->repair_action);
	n->repair_action = xstrdup("");
	state_node_set_service(&d->state, n, has_runs(n) ? "draining" : "drained", by,
			       why);
}

void repair_resume(struct hpqd *d, struct node *n, const char *by, const char *reason)
{
	n->admin_hold = false;
	n->repair_running = false;
	n->streak = 0;
	/* A condition that is still there gets its full wait again. */
	n->bad_since_mono = is_bad(n) ? uv_now(d->loop) : 0;
	free(n->repair_action);
	n->repair_action = xstrdup("");
	state_node_set_service(&d->state, n, "active", by, reason);
}

int repair_now(struct hpqd *d, struct node *n, const char *by, const char *action,
	       const char *reason, struct state_err *e)
{
	const struct finding *f;
	char why[320];

	if (*action && strcmp(action, "reboot") && strcmp(action, "replace") &&
	    strcmp(action, "none"))
		return state_errf(e, HPQ_EINVAL, "unknown repair action '%.32s': use reboot, "
				  "replace or none", action);
	if (!strcmp(n->service, "repairing") && n->repair_running)
		return state_errf(e, HPQ_EBUSY, "node %s is being repaired already "
				  "(action %s)", n->name, n->repair_action);
	f = worst_finding(n);
	if (*reason)
		snprintf(why, sizeof(why), "%s", reason);
	else if (f)
		snprintf(why, sizeof(why), "%s: %s", f->reason, f->message);
	else
		snprintf(why, sizeof(why), "repair asked by %s", by);
	if (!*action)
		action = f ? repair_action_for(&d->cfg, f->reason, f->action)
			   : repair_action_for(&d->cfg, n->lost ? "unreachable" : "admin", NULL);
	start_repair(d, n, by, action, why);
	return 0;
}
