/*
 * hpq-sim: many simulated agents in one process, for testing and measuring
 * hpqd at cluster scale without a cluster.
 *
 * Each simulated node opens its own connection to hpqd's Unix socket and
 * speaks the agents' real protocol (proto/hpq.proto): Hello as an agent,
 * Register with its capacity, heartbeats, TaskUpdate for starts and exits
 * (exits re-sent until hpqd answers Ok), CheckpointRequest, and it obeys
 * RunTask and KillTask. A "task" is a timer: nothing is forked. One libev
 * loop drives every connection and every task.
 *
 * How long a task runs: its own argv first ("sim:duration=30s,exit=3,
 * ckpt=10s", or argv[0] "sim" followed by "duration=30s" ...), else
 * --duration (a fixed time, "exp:MEAN" or "uniform:MIN-MAX").
 *
 * What it counts (--stats FILE, rewritten every second and at exit, one
 * "key value" per line) is what a test checks: RunTasks, duplicate starts
 * of one attempt, exits acknowledged, refusals of the misbehaviours below.
 * --runlog FILE gets one line per RunTask ("R wall_us task attempt
 * array_id index node") and per exit ("E wall_us task attempt code"),
 * which a benchmark joins with its submit times.
 *
 * Misbehaviours, to test the daemon against (all off by default):
 *   --lie-exits R         R exits a second, from random nodes, about tasks
 *                         they do not run (running elsewhere, or never made)
 *   --dup-register N      N extra connections register names already
 *                         connected (impostors; each tries once)
 *   --flood-heartbeats N  N heartbeats a second from every node
 *   --bad-attempts R      R updates a second about a node's own running
 *                         task with a wrong attempt (next, 0, exited)
 * At SIGTERM it stops misbehaving and exits once hpqd has answered every
 * lie sent (2 s at most), so that lies sent = refused + accepted.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "error.h"
#include "frame.h"
#include "hpq.h"
#include "msg.h"
#include "parse.h"
#include "xalloc.h"

/* ---------------------------------------------------------------- settings */

enum dist { DIST_FIXED, DIST_EXP, DIST_UNIFORM };

struct duration {
	enum dist kind;
	double a, b;                 /* seconds: fixed/mean/min, max */
};

static struct {
	const char *server;
	const char *prefix;
	const char *pool;
	char **labels;
	size_t nlabels;
	unsigned nodes, gpus, cpus;
	uint64_t mem_mib;
	double heartbeat_s;          /* 0: what RegisterReply says */
	struct duration duration;
	double grace_s;              /* a killed task's simulated stop time, at most its grace */
	double connect_rate;         /* connections opened per second; 0: all at once */
	double unhealthy_fraction;
	double run_for_s;            /* 0: until SIGTERM/SIGINT */
	const char *stats_path;
	const char *runlog_path;
	double lie_exits, bad_attempts, flood_hz;
	unsigned dup_register;
	double misbehave_after_s;
	uint64_t seed;
	bool quiet;
} opt = {
	.prefix = "sim", .pool = "", .nodes = 10, .gpus = 8, .cpus = 64, .mem_mib = 512 * 1024,
	.duration = { DIST_FIXED, 1, 0 }, .grace_s = 0.2, .connect_rate = 2000,
	.misbehave_after_s = 2, .seed = 1,
};

/* ---------------------------------------------------------------- counters */

static struct {
	uint64_t connects, connect_failures, disconnects, registers, register_errors;
	uint64_t heartbeats, run_tasks, run_resent, dup_starts, reattempts, max_attempt;
	uint64_t concurrent_dups, exits_sent, exits_acked, exits_refused;
	uint64_t kills, kills_unknown, ckpts_sent, ckpts_acked, ckpts_refused;
	uint64_t lies_sent, lies_refused, lies_accepted;
	uint64_t bad_sent, bad_refused, bad_accepted;
	uint64_t ghosts_registered, ghosts_refused, ghosts_dropped, ghost_run_tasks;
	uint64_t errors_received, running, stale_kills;
} stats;

/* Lies sent that hpqd has not answered yet. */
static uint64_t lies_unanswered(void)
{
	return stats.lies_sent - stats.lies_refused - stats.lies_accepted;
}

/* ---------------------------------------------------------------- structures */

struct node;

struct simtask {
	struct simtask *next;
	struct node *node;
	uint64_t id, array_id;
	uint32_t attempt, index;
	int64_t start_ms, end_ms;
	int exit_code;
	char reason[16];
	bool exited, stopping, update_inflight;
	double ckpt_s;
	uint64_t step;
	ev_timer end_w, ckpt_w;
};

enum pend_kind { P_HELLO, P_REGISTER, P_EXIT, P_CKPT, P_LIE, P_BAD };

struct pending {
	uint64_t id;
	enum pend_kind kind;
	uint64_t task_id;
	uint32_t attempt;
};

enum node_state { N_DOWN, N_HELLO, N_REGISTER, N_READY };

struct node {
	char name[64];
	unsigned idx;
	bool ghost;                  /* a --dup-register impostor */
	bool ghost_done;
	bool unhealthy;
	int fd;
	enum node_state state;
	ev_io rio, wio;
	ev_timer hb_w, reconnect_w, flood_w;
	struct hpq_framer framer;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	uint64_t next_id;
	struct pending *pend;
	size_t npend, cappend;
	struct simtask *tasks;
	double heartbeat_s;
};

static struct ev_loop *loop;
static struct node *nodes;
static struct node *ghosts;
static unsigned nghosts;
static unsigned next_connect;
static ev_timer connect_w, stats_w, stop_w, lie_w, bad_w, ghost_w;
static bool draining;                /* SIGTERM: waiting for the answers to lies */
static ev_signal sigterm_w, sigint_w, sigusr2_w;
static FILE *runlog;
static uint64_t rng_state;
static bool misbehaving;

/* Every (task, attempt) seen, for duplicate starts: task id -> last attempt. */
struct seen {
	uint64_t id;
	uint32_t attempt;
	uint32_t runs;
	struct node *running_on;     /* NULL once it exited */
	struct node *ran_on;         /* the last attempt's */
};
static struct seen *seen;
static size_t seen_cap, seen_n;

/* Recent runs (task, attempt, node), for exits a liar claims. */
#define RECENT 1024
static struct { uint64_t id; uint32_t attempt; } recent[RECENT];
static unsigned recent_n;
static uint64_t max_task_id;

static void node_connect(struct node *n);
static void node_drop(struct node *n, const char *why);
static void task_finish(struct simtask *t, int code, const char *reason);

/* ---------------------------------------------------------------- helpers */

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible for a --seed, good enough for timing. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static double rnd01(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	if (opt.quiet)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "hpq-sim: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* "30s", "500ms", "2m", "1h", "1.5" (seconds). Returns seconds or -1. */
static double parse_secs(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0 || !isfinite(v))
		return -1;
	if (!*end || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "ms"))
		return v / 1000;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	return -1;
}

/* "30s", "exp:30s", "uniform:10s-60s". Returns 0 or -1. */
static int parse_duration(const char *s, struct duration *d)
{
	char buf[64], *dash;

	if (!strncmp(s, "exp:", 4)) {
		d->kind = DIST_EXP;
		d->a = parse_secs(s + 4);
		return d->a > 0 ? 0 : -1;
	}
	if (!strncmp(s, "uniform:", 8)) {
		snprintf(buf, sizeof(buf), "%s", s + 8);
		dash = strchr(buf, '-');
		if (!dash)
			return -1;
		*dash = '\0';
		d->kind = DIST_UNIFORM;
		d->a = parse_secs(buf);
		d->b = parse_secs(dash + 1);
		return d->a >= 0 && d->b >= d->a ? 0 : -1;
	}
	d->kind = DIST_FIXED;
	d->a = parse_secs(s);
	return d->a >= 0 ? 0 : -1;
}

static double draw(const struct duration *d)
{
	switch (d->kind) {
	case DIST_EXP:
		return -d->a * log(1 - rnd01());
	case DIST_UNIFORM:
		return d->a + (d->b - d->a) * rnd01();
	default:
		return d->a;
	}
}

/* ---------------------------------------------------------------- seen table */

static struct seen *seen_slot(uint64_t id)
{
	size_t i;

	if (2 * (seen_n + 1) > seen_cap) {
		struct seen *old = seen;
		size_t oldcap = seen_cap;

		seen_cap = seen_cap ? 2 * seen_cap : 4096;
		seen = xcalloc(seen_cap, sizeof(*seen));
		for (size_t j = 0; j < oldcap; j++) {
			if (!old[j].id)
				continue;
			for (i = old[j].id * 11400714819323198485ull % seen_cap; seen[i].id;
			     i = (i + 1) % seen_cap)
				;
			seen[i] = old[j];
		}
		free(old);
	}
	for (i = id * 11400714819323198485ull % seen_cap; seen[i].id && seen[i].id != id;
	     i = (i + 1) % seen_cap)
		;
	if (!seen[i].id) {
		seen[i].id = id;
		seen_n++;
	}
	return &seen[i];
}

/* ---------------------------------------------------------------- sending */

static void node_flush(struct node *n)
{
	while (n->out_off < n->out_len) {
		ssize_t w = send(n->fd, n->out + n->out_off, n->out_len - n->out_off,
				 MSG_NOSIGNAL);

		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (w < 0) {
			node_drop(n, strerror(errno));
			return;
		}
		n->out_off += (size_t)w;
	}
	if (n->out_off == n->out_len) {
		n->out_off = n->out_len = 0;
		ev_io_stop(loop, &n->wio);
	} else {
		ev_io_start(loop, &n->wio);
	}
}

/* Queues env; a request (want_reply) gets the next id and a pending entry,
 * anything else keeps the id it has (0 for a push, the request's for an
 * answer). */
static void node_send(struct node *n, Hpq__Envelope *env, bool want_reply, enum pend_kind kind,
		      uint64_t task_id, uint32_t attempt)
{
	uint8_t *buf;
	size_t len;

	if (n->fd < 0)
		return;
	if (want_reply) {
		env->id = ++n->next_id;
		if (n->npend == n->cappend) {
			n->cappend = n->cappend ? 2 * n->cappend : 8;
			n->pend = xreallocarray(n->pend, n->cappend, sizeof(*n->pend));
		}
		n->pend[n->npend++] = (struct pending){ env->id, kind, task_id, attempt };
	}
	buf = hpq_msg_encode(env, &len);
	if (n->out_len + len > n->out_cap) {
		if (n->out_off) {
			memmove(n->out, n->out + n->out_off, n->out_len - n->out_off);
			n->out_len -= n->out_off;
			n->out_off = 0;
		}
		while (n->out_len + len > n->out_cap)
			n->out_cap = n->out_cap ? 2 * n->out_cap : 4096;
		n->out = xrealloc(n->out, n->out_cap);
	}
	memcpy(n->out + n->out_len, buf, len);
	n->out_len += len;
	free(buf);
	if (!ev_is_active(&n->wio))
		node_flush(n);
}

static void agent_task_pb(const struct simtask *t, Hpq__AgentTask *at)
{
	hpq__agent_task__init(at);
	at->task_id = t->id;
	at->attempt = t->attempt;
	at->running = !t->exited;
	at->pid = 1;
	at->exited = t->exited;
	at->exit_code = t->exited ? t->exit_code : 0;
	at->start_time = t->start_ms;
	at->end_time = t->exited ? t->end_ms : 0;
	at->reason = (char *)(t->exited ? t->reason : "");
}

static void send_update(struct node *n, const Hpq__AgentTask *at, bool request,
			enum pend_kind kind)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__TaskUpdate up = HPQ__TASK_UPDATE__INIT;

	up.task = (Hpq__AgentTask *)at;
	env.body_case = HPQ__ENVELOPE__BODY_TASK_UPDATE;
	env.task_update = &up;
	node_send(n, &env, request, kind, at->task_id, at->attempt);
}

static void report_exit(struct simtask *t)
{
	Hpq__AgentTask at;

	if (!t->exited || t->update_inflight || t->node->state != N_READY)
		return;
	agent_task_pb(t, &at);
	send_update(t->node, &at, true, P_EXIT);
	t->update_inflight = true;
	stats.exits_sent++;
}

static Hpq__Finding sick = HPQ__FINDING__INIT;
static Hpq__Finding *sick_list[1] = { &sick };

static void fill_findings(const struct node *n, Hpq__Finding ***f, size_t *nf)
{
	if (!n->unhealthy)
		return;
	*f = sick_list;
	*nf = 1;
}

static void send_heartbeat(struct node *n)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Heartbeat hb = HPQ__HEARTBEAT__INIT;

	hb.time = wall_ms();
	fill_findings(n, &hb.findings, &hb.n_findings);
	env.body_case = HPQ__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	node_send(n, &env, false, 0, 0, 0);
	stats.heartbeats++;
}

static void send_checkpoint(struct simtask *t)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__CheckpointRequest ck = HPQ__CHECKPOINT_REQUEST__INIT;
	char path[96];

	if (t->node->state != N_READY)
		return;
	t->step++;
	snprintf(path, sizeof(path), "/sim/ckpt/%" PRIu64 "/%" PRIu64, t->id, t->step);
	ck.task_id = t->id;
	ck.attempt = t->attempt;
	ck.step = t->step;
	ck.path = path;
	env.body_case = HPQ__ENVELOPE__BODY_CHECKPOINT;
	env.checkpoint = &ck;
	node_send(t->node, &env, true, P_CKPT, t->id, t->attempt);
	stats.ckpts_sent++;
}

/* ---------------------------------------------------------------- tasks */

static struct simtask *task_find(struct node *n, uint64_t id, uint32_t attempt)
{
	struct simtask *t, *any = NULL;

	for (t = n->tasks; t; t = t->next) {
		if (t->id != id)
			continue;
		if (attempt && t->attempt == attempt)
			return t;
		if (!attempt && (!any || !t->exited))
			any = t;
	}
	return attempt ? NULL : any;
}

static void task_free(struct simtask *t)
{
	struct simtask **p;

	for (p = &t->node->tasks; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	ev_timer_stop(loop, &t->end_w);
	ev_timer_stop(loop, &t->ckpt_w);
	free(t);
}

static void task_finish(struct simtask *t, int code, const char *reason)
{
	struct seen *s;

	if (t->exited)
		return;
	ev_timer_stop(loop, &t->end_w);
	ev_timer_stop(loop, &t->ckpt_w);
	t->exited = true;
	t->exit_code = code;
	t->end_ms = wall_ms();
	snprintf(t->reason, sizeof(t->reason), "%s", reason);
	stats.running--;
	s = seen_slot(t->id);
	if (s->running_on == t->node && s->attempt == t->attempt)
		s->running_on = NULL;
	if (runlog)
		fprintf(runlog, "E %" PRId64 " %" PRIu64 " %u %d\n", wall_us(), t->id, t->attempt,
			code);
	report_exit(t);
}

static void task_end_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct simtask *t = w->data;

	if (t->stopping)
		task_finish(t, t->exit_code, t->reason);
	else if (!strcmp(t->reason, "timeout"))
		task_finish(t, 128 + SIGKILL, "timeout");
	else
		task_finish(t, t->exit_code, t->exit_code ? "exit" : "exit");
}

static void task_ckpt_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	send_checkpoint(w->data);
}

/* What the task's argv says: "sim:k=v,k=v" anywhere, or argv[0] "sim" and
 * then "k=v" arguments. */
static void task_argv(struct simtask *t, const Hpq__RunTask *rt, double *dur)
{
	bool bare = rt->n_argv && !strcmp(rt->argv[0], "sim");

	for (size_t i = 0; i < rt->n_argv; i++) {
		char buf[256], *tok, *save = NULL;
		const char *a = rt->argv[i];

		if (!strncmp(a, "sim:", 4))
			a += 4;
		else if (!bare || i == 0)
			continue;
		snprintf(buf, sizeof(buf), "%s", a);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			struct duration d;

			if (!strncmp(tok, "duration=", 9) && !parse_duration(tok + 9, &d))
				*dur = draw(&d);
			else if (!strncmp(tok, "exit=", 5))
				t->exit_code = atoi(tok + 5);
			else if (!strncmp(tok, "ckpt=", 5))
				t->ckpt_s = parse_secs(tok + 5);
		}
	}
}

static void on_run_task(struct node *n, const Hpq__RunTask *rt)
{
	struct simtask *t;
	struct seen *s;
	double dur = draw(&opt.duration);

	if (!rt || !rt->task_id || !rt->attempt)
		return;
	if (n->ghost) {
		/* An impostor takes nothing on: it is dropped, and hpqd requeues. */
		stats.ghost_run_tasks++;
		return;
	}
	if (task_find(n, rt->task_id, rt->attempt)) {
		stats.run_resent++; /* the same start again: already here */
		return;
	}
	stats.run_tasks++;
	s = seen_slot(rt->task_id);
	if (s->attempt == rt->attempt && s->runs)
		stats.dup_starts++;
	else if (s->attempt && rt->attempt > s->attempt)
		stats.reattempts++;
	if (s->running_on && s->running_on != n && rt->nnodes <= 1)
		stats.concurrent_dups++;
	if (s->attempt != rt->attempt)
		s->runs = 0;
	s->attempt = rt->attempt;
	s->runs++;
	s->running_on = n;
	s->ran_on = n;
	if (rt->attempt > stats.max_attempt)
		stats.max_attempt = rt->attempt;
	if (rt->task_id > max_task_id)
		max_task_id = rt->task_id;
	recent[recent_n++ % RECENT].id = rt->task_id;
	recent[(recent_n - 1) % RECENT].attempt = rt->attempt;
	if (runlog)
		fprintf(runlog, "R %" PRId64 " %" PRIu64 " %u %" PRIu64 " %u %s\n", wall_us(),
			rt->task_id, rt->attempt, rt->has_array ? rt->array_id : 0,
			rt->has_array ? rt->array_index : 0, n->name);

	t = xcalloc(1, sizeof(*t));
	t->node = n;
	t->id = rt->task_id;
	t->attempt = rt->attempt;
	t->start_ms = wall_ms();
	task_argv(t, rt, &dur);
	if (rt->time_limit_s && dur > (double)rt->time_limit_s) {
		dur = (double)rt->time_limit_s;
		snprintf(t->reason, sizeof(t->reason), "timeout");
	}
	t->next = n->tasks;
	n->tasks = t;
	stats.running++;
	ev_timer_init(&t->end_w, task_end_cb, dur, 0);
	t->end_w.data = t;
	ev_timer_start(loop, &t->end_w);
	ev_timer_init(&t->ckpt_w, task_ckpt_cb, t->ckpt_s, t->ckpt_s);
	t->ckpt_w.data = t;
	if (t->ckpt_s > 0)
		ev_timer_start(loop, &t->ckpt_w);
	{
		Hpq__AgentTask at;

		agent_task_pb(t, &at);
		send_update(n, &at, false, 0);
	}
}

static void on_kill_task(struct node *n, const Hpq__KillTask *kt)
{
	struct simtask *t = kt ? task_find(n, kt->task_id, kt->attempt) : NULL;
	double grace;

	if (!t) {
		stats.kills_unknown++;
		return;
	}
	stats.kills++;
	if (kt->reason && !strcmp(kt->reason, "stale"))
		stats.stale_kills++;
	if (t->exited || t->stopping)
		return;
	t->stopping = true;
	t->exit_code = 128 + (kt->signal ? kt->signal : SIGTERM);
	snprintf(t->reason, sizeof(t->reason), "%s",
		 kt->reason && *kt->reason ? kt->reason : "killed");
	/* A trainer saves its work when told to stop, then exits. */
	if (t->ckpt_s > 0 && kt->signal != SIGKILL)
		send_checkpoint(t);
	grace = kt->signal == SIGKILL ? 0 : opt.grace_s;
	if (grace > (double)kt->grace_s)
		grace = (double)kt->grace_s;
	ev_timer_stop(loop, &t->end_w);
	ev_timer_set(&t->end_w, grace, 0);
	ev_timer_start(loop, &t->end_w);
}

/* ---------------------------------------------------------------- connection */

static void send_hello(struct node *n)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Hello h = HPQ__HELLO__INIT;

	h.role = HPQ__ROLE__ROLE_AGENT;
	h.protocol_version = HPQ_PROTOCOL_VERSION;
	h.software_version = (char *)"hpq-sim " HPQ_VERSION;
	h.name = n->name;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	n->state = N_HELLO;
	node_send(n, &env, true, P_HELLO, 0, 0);
}

static void send_register(struct node *n)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Register reg = HPQ__REGISTER__INIT;
	Hpq__Resources cap = HPQ__RESOURCES__INIT;
	Hpq__AgentTask *ats = NULL, **atp = NULL;
	size_t nt = 0, i = 0;
	struct simtask *t;

	for (t = n->tasks; t; t = t->next)
		nt++;
	if (nt) {
		ats = xcalloc(nt, sizeof(*ats));
		atp = xcalloc(nt, sizeof(*atp));
		for (t = n->tasks; t; t = t->next, i++) {
			agent_task_pb(t, &ats[i]);
			atp[i] = &ats[i];
			t->update_inflight = false;
		}
	}
	cap.gpus = opt.gpus;
	cap.cpus = opt.cpus;
	cap.mem = opt.mem_mib;
	reg.name = n->name;
	reg.pool = (char *)opt.pool;
	reg.capacity = &cap;
	reg.labels = opt.labels;
	reg.n_labels = opt.nlabels;
	reg.tasks = atp;
	reg.n_tasks = nt;
	reg.address = (char *)"127.0.0.1";
	reg.boot_time = wall_ms() / 1000;
	fill_findings(n, &reg.findings, &reg.n_findings);
	env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
	env.register_ = &reg;
	n->state = N_REGISTER;
	node_send(n, &env, true, P_REGISTER, 0, 0);
	free(ats);
	free(atp);
}

static void hb_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	send_heartbeat(w->data);
}

static void flood_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct node *n = w->data;

	if (n->state == N_READY)
		send_heartbeat(n);
}

static void on_registered(struct node *n, const Hpq__RegisterReply *rr)
{
	double every = opt.heartbeat_s ? opt.heartbeat_s : rr && rr->heartbeat_s ?
				rr->heartbeat_s : 5;

	n->state = N_READY;
	stats.registers++;
	if (n->ghost) {
		stats.ghosts_registered++;
		say("impostor %s registered", n->name);
	}
	n->heartbeat_s = every;
	/* Spread the beats over the interval, as independent machines do. */
	ev_timer_init(&n->hb_w, hb_cb, every * rnd01(), every);
	n->hb_w.data = n;
	ev_timer_start(loop, &n->hb_w);
	if (opt.flood_hz > 0) {
		ev_timer_init(&n->flood_w, flood_cb, rnd01() / opt.flood_hz, 1 / opt.flood_hz);
		n->flood_w.data = n;
		if (misbehaving)
			ev_timer_start(loop, &n->flood_w);
	}
	for (struct simtask *t = n->tasks, *next; t; t = next) {
		next = t->next;
		report_exit(t);
	}
}

static bool pend_take(struct node *n, uint64_t id, struct pending *ret)
{
	for (size_t i = 0; i < n->npend; i++) {
		if (n->pend[i].id != id)
			continue;
		*ret = n->pend[i];
		n->pend[i] = n->pend[--n->npend];
		return true;
	}
	return false;
}

static void on_reply(struct node *n, const Hpq__Envelope *env, const struct pending *p)
{
	bool ok = env->body_case == HPQ__ENVELOPE__BODY_OK;
	bool err = env->body_case == HPQ__ENVELOPE__BODY_ERROR;
	struct simtask *t;

	if (err)
		stats.errors_received++;
	switch (p->kind) {
	case P_HELLO:
		if (env->body_case != HPQ__ENVELOPE__BODY_HELLO_REPLY) {
			say("%s: hello refused: %s", n->name, err ? env->error->message : "?");
			node_drop(n, "hello refused");
			return;
		}
		send_register(n);
		return;
	case P_REGISTER:
		if (env->body_case != HPQ__ENVELOPE__BODY_REGISTER_REPLY) {
			stats.register_errors++;
			if (n->ghost)
				stats.ghosts_refused++;
			say("%s: register refused: %s", n->name, err ? env->error->message : "?");
			node_drop(n, "register refused");
			return;
		}
		on_registered(n, env->register_reply);
		return;
	case P_EXIT:
		t = task_find(n, p->task_id, p->attempt);
		if (!t)
			return;
		t->update_inflight = false;
		if (ok)
			stats.exits_acked++;
		else
			stats.exits_refused++;
		task_free(t);
		return;
	case P_CKPT:
		if (ok)
			stats.ckpts_acked++;
		else
			stats.ckpts_refused++;
		return;
	case P_LIE:
		if (ok)
			stats.lies_accepted++;
		else
			stats.lies_refused++;
		if (draining && !lies_unanswered())
			ev_break(loop, EVBREAK_ALL);
		return;
	case P_BAD:
		if (ok)
			stats.bad_accepted++;
		else
			stats.bad_refused++;
		return;
	}
}

static void on_message(struct node *n, const Hpq__Envelope *env)
{
	struct pending p;

	switch (env->body_case) {
	case HPQ__ENVELOPE__BODY_RUN_TASK:
		on_run_task(n, env->run_task);
		break;
	case HPQ__ENVELOPE__BODY_KILL_TASK:
		on_kill_task(n, env->kill_task);
		break;
	default:
		if (env->id && pend_take(n, env->id, &p)) {
			on_reply(n, env, &p);
			return;
		}
		if (env->body_case == HPQ__ENVELOPE__BODY_ERROR)
			stats.errors_received++;
		return;
	}
	/* A push with an id wants an answer; the agent's is Ok. */
	if (env->id && n->fd >= 0) {
		Hpq__Envelope ok = HPQ__ENVELOPE__INIT;
		Hpq__Ok okb = HPQ__OK__INIT;

		ok.body_case = HPQ__ENVELOPE__BODY_OK;
		ok.ok = &okb;
		ok.id = env->id;
		node_send(n, &ok, false, 0, 0, 0);
	}
}

static void read_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct node *n = w->data;
	uint8_t buf[65536];
	const uint8_t *p;
	size_t len;
	ssize_t r;
	int k;

	r = recv(n->fd, buf, sizeof(buf), 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		node_drop(n, r == 0 ? "hpqd closed the connection" : strerror(errno));
		return;
	}
	if (hpq_framer_feed(&n->framer, buf, (size_t)r) < 0) {
		node_drop(n, "bad framing");
		return;
	}
	while (n->fd >= 0 && (k = hpq_framer_next(&n->framer, &p, &len)) > 0) {
		Hpq__Envelope *env = hpq_msg_decode(p, len);

		if (!env) {
			node_drop(n, "undecodable message");
			return;
		}
		on_message(n, env);
		hpq_msg_free(env);
	}
}

static void write_cb(struct ev_loop *l, ev_io *w, int revents)
{
	node_flush(w->data);
}

static void reconnect_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	node_connect(w->data);
}

static void node_drop(struct node *n, const char *why)
{
	if (n->fd < 0)
		return;
	if (n->state == N_READY || n->state == N_REGISTER)
		say("%s: disconnected (%s)", n->name, why);
	ev_io_stop(loop, &n->rio);
	ev_io_stop(loop, &n->wio);
	ev_timer_stop(loop, &n->hb_w);
	ev_timer_stop(loop, &n->flood_w);
	close(n->fd);
	n->fd = -1;
	if (n->state == N_READY && n->ghost)
		stats.ghosts_dropped++;
	n->state = N_DOWN;
	stats.disconnects++;
	hpq_framer_release(&n->framer);
	hpq_framer_init(&n->framer, HPQ_FRAME_MAX);
	n->out_len = n->out_off = 0;
	n->npend = 0;
	for (struct simtask *t = n->tasks; t; t = t->next)
		t->update_inflight = false;
	if (n->ghost) {
		n->ghost_done = true; /* an impostor tries once */
		return;
	}
	/* As an agent does: back off a little, then register again with the
	 * tasks it has. */
	ev_timer_set(&n->reconnect_w, 0.5 + 1.5 * rnd01(), 0);
	ev_timer_start(loop, &n->reconnect_w);
}

static void node_connect(struct node *n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (n->fd >= 0)
		return;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", opt.server);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* A full backlog (EAGAIN) or hpqd not up yet: try again soon. */
		if (fd >= 0)
			close(fd);
		stats.connect_failures++;
		if (!n->ghost || !n->ghost_done) {
			ev_timer_set(&n->reconnect_w, 0.2 + 0.8 * rnd01(), 0);
			ev_timer_start(loop, &n->reconnect_w);
		}
		return;
	}
	stats.connects++;
	n->fd = fd;
	n->next_id = 0;
	ev_io_init(&n->rio, read_cb, fd, EV_READ);
	n->rio.data = n;
	ev_io_init(&n->wio, write_cb, fd, EV_WRITE);
	n->wio.data = n;
	ev_io_start(loop, &n->rio);
	send_hello(n);
}

static void node_init(struct node *n, unsigned idx, const char *name, bool ghost)
{
	n->idx = idx;
	n->ghost = ghost;
	n->fd = -1;
	snprintf(n->name, sizeof(n->name), "%s", name);
	hpq_framer_init(&n->framer, HPQ_FRAME_MAX);
	ev_timer_init(&n->reconnect_w, reconnect_cb, 1, 0);
	n->reconnect_w.data = n;
	ev_timer_init(&n->hb_w, hb_cb, 1, 1);
	ev_timer_init(&n->flood_w, flood_cb, 1, 1);
}

/* Opens connections at --connect-rate, so that hpqd's accept backlog is
 * not what is measured. */
static void connect_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	unsigned batch = opt.connect_rate > 0 ? (unsigned)ceil(opt.connect_rate / 100) : opt.nodes;

	while (batch-- && next_connect < opt.nodes)
		node_connect(&nodes[next_connect++]);
	if (next_connect >= opt.nodes)
		ev_timer_stop(loop, w);
}

/* ---------------------------------------------------------------- misbehaviour */

static struct node *random_ready_node(void)
{
	for (int tries = 0; tries < 16; tries++) {
		struct node *n = &nodes[rnd() % opt.nodes];

		if (n->state == N_READY)
			return n;
	}
	return NULL;
}

/* Exits for tasks the liar does not run: one running on another node (the
 * dangerous lie), or one that was never made. Exit code 99, so that a lie
 * that worked shows as a FAILED task. */
static void lie_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct node *n = random_ready_node();
	Hpq__AgentTask at;
	unsigned i;

	if (!n)
		return;
	hpq__agent_task__init(&at);
	at.exited = true;
	at.exit_code = 99;
	at.reason = (char *)"exit";
	at.end_time = wall_ms();
	if (recent_n && rnd() % 2) {
		i = (unsigned)(rnd() % (recent_n < RECENT ? recent_n : RECENT));
		at.task_id = recent[i].id;
		at.attempt = recent[i].attempt;
		if (seen_slot(at.task_id)->ran_on == n)
			return; /* its own (an exit said twice is no lie) */
	} else {
		at.task_id = max_task_id + 1000000 + rnd() % 1000;
		at.attempt = 1;
	}
	send_update(n, &at, true, P_LIE);
	stats.lies_sent++;
}

/* Updates about a node's own running task with an attempt it never got:
 * exits of the next attempt, of attempt 0 or of one far ahead, and a
 * start of attempt 0. */
static void bad_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct node *n = random_ready_node();
	struct simtask *t;
	Hpq__AgentTask at;

	if (!n)
		return;
	for (t = n->tasks; t && (t->exited || t->stopping); t = t->next)
		;
	if (!t)
		return;
	agent_task_pb(t, &at);
	at.running = false;
	at.exited = true;
	at.exit_code = 99;
	at.reason = (char *)"exit";
	switch (rnd() % 4) {
	case 0:
		at.attempt = t->attempt + 1;
		break;
	case 1:
		at.attempt = 0;
		break;
	case 2:
		at.attempt = t->attempt + 1000;
		break;
	default:
		/* "Attempt 0 runs here": no attempt is numbered 0. */
		at.attempt = 0;
		at.running = true;
		at.exited = false;
		at.exit_code = 0;
		at.reason = (char *)"";
		break;
	}
	send_update(n, &at, true, P_BAD);
	stats.bad_sent++;
}

static void ghost_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	for (unsigned i = 0; i < nghosts; i++)
		node_connect(&ghosts[i]);
}

static void misbehave_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	misbehaving = true;
	say("misbehaving from now on");
	if (opt.lie_exits > 0) {
		ev_timer_init(&lie_w, lie_cb, 0, 1 / opt.lie_exits);
		ev_timer_again(loop, &lie_w);
	}
	if (opt.bad_attempts > 0) {
		ev_timer_init(&bad_w, bad_cb, 0, 1 / opt.bad_attempts);
		ev_timer_again(loop, &bad_w);
	}
	if (opt.flood_hz > 0)
		for (unsigned i = 0; i < opt.nodes; i++)
			if (nodes[i].state == N_READY)
				ev_timer_start(loop, &nodes[i].flood_w);
	if (nghosts) {
		ev_timer_init(&ghost_w, ghost_cb, 0, 0);
		ev_timer_start(loop, &ghost_w);
	}
}

/* ---------------------------------------------------------------- stats, signals */

static void write_stats(void)
{
	char tmp[4096];
	FILE *f;
	unsigned ready = 0;
	struct rusage ru;

	if (runlog)
		fflush(runlog);
	if (!opt.stats_path)
		return;
	for (unsigned i = 0; i < opt.nodes; i++)
		ready += nodes[i].state == N_READY;
	snprintf(tmp, sizeof(tmp), "%s.tmp", opt.stats_path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	getrusage(RUSAGE_SELF, &ru);
#define S(k) fprintf(f, #k " %" PRIu64 "\n", stats.k)
	fprintf(f, "nodes %u\nready %u\n", opt.nodes, ready);
	S(connects); S(connect_failures); S(disconnects); S(registers); S(register_errors);
	S(heartbeats); S(run_tasks); S(run_resent); S(dup_starts); S(reattempts);
	S(max_attempt); S(concurrent_dups); S(exits_sent); S(exits_acked); S(exits_refused);
	S(kills); S(kills_unknown); S(stale_kills); S(ckpts_sent); S(ckpts_acked);
	S(ckpts_refused); S(lies_sent); S(lies_refused); S(lies_accepted); S(bad_sent);
	S(bad_refused); S(bad_accepted); S(ghosts_registered); S(ghosts_refused);
	S(ghosts_dropped); S(ghost_run_tasks); S(errors_received); S(running);
#undef S
	fprintf(f, "cpu_s %.3f\nmaxrss_kib %ld\n",
		(double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
			(double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss);
	fclose(f);
	rename(tmp, opt.stats_path);
}

static void stats_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	write_stats();
}

static void stop_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

/* A lie is counted refused or accepted when hpqd answers it: at SIGTERM
 * no more go out, and those in flight get their answers first (2 s at
 * most), so that the counters add up. A second signal ends it at once. */
static void sig_cb(struct ev_loop *l, ev_signal *w, int revents)
{
	static ev_timer drain_w;

	ev_timer_stop(loop, &lie_w);
	ev_timer_stop(loop, &bad_w);
	ev_timer_stop(loop, &ghost_w);
	if (draining || !lies_unanswered()) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	draining = true;
	ev_timer_init(&drain_w, stop_cb, 2.0, 0);
	ev_timer_start(loop, &drain_w);
}

/* SIGUSR2: the --unhealthy-fraction nodes turn sick, or well again. */
static void usr2_cb(struct ev_loop *l, ev_signal *w, int revents)
{
	static bool off;
	unsigned k = (unsigned)ceil(opt.unhealthy_fraction * opt.nodes);

	off = !off;
	for (unsigned i = 0; i < k && i < opt.nodes; i++) {
		nodes[i].unhealthy = !off;
		if (nodes[i].state == N_READY)
			send_heartbeat(&nodes[i]);
	}
	say("%u nodes now %s", k, off ? "healthy" : "unhealthy");
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hpq-sim --server SOCKET [options]\n"
		"  --nodes N              simulated nodes (10)\n"
		"  --prefix NAME          node names NAME00001... (sim)\n"
		"  --pool NAME            their pool (hpqd's default)\n"
		"  --gpus N --cpus N --mem MIB   each node's capacity (8, 64, 524288)\n"
		"  --label L              a node label (repeatable)\n"
		"  --heartbeat SECS       heartbeat interval (what hpqd asks)\n"
		"  --duration D           30s, exp:30s, uniform:10s-60s (1s); a task's\n"
		"                         argv sim:duration=D,exit=N,ckpt=SECS wins\n"
		"  --grace SECS           a stopped task's simulated exit time (0.2)\n"
		"  --connect-rate N       connections opened per second (2000; 0: all)\n"
		"  --unhealthy-fraction F that share of nodes reports a fatal finding\n"
		"                         (SIGUSR2 toggles it)\n"
		"  --time SECS            run that long, then exit (until SIGTERM)\n"
		"  --stats FILE           counters, every second and at exit\n"
		"  --runlog FILE          one line per RunTask and per exit\n"
		"  --lie-exits R --bad-attempts R --flood-heartbeats N --dup-register N\n"
		"  --misbehave-after SECS when the misbehaviours start (2)\n"
		"  --seed N --quiet\n");
}

static double arg_num(const char *name, const char *v, double min, double max)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || d < min || d > max) {
		fprintf(stderr, "hpq-sim: --%s %s: want a number from %g to %g\n", name, v, min,
			max);
		exit(2);
	}
	return d;
}

static double arg_secs(const char *name, const char *v)
{
	double d = parse_secs(v);

	if (d < 0) {
		fprintf(stderr, "hpq-sim: --%s %s: want a time like 30s, 500ms, 2m\n", name, v);
		exit(2);
	}
	return d;
}

static void raise_nofile(unsigned need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need + 64)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need + 64 ? need + 64
										  : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need + 64)
		fprintf(stderr, "hpq-sim: only %llu file descriptors: raise ulimit -n for %u "
			"nodes\n", (unsigned long long)rl.rlim_cur, need);
}

int main(int argc, char **argv)
{
	enum { O_PREFIX = 256, O_POOL, O_GPUS, O_CPUS, O_MEM, O_LABEL, O_HB, O_DUR, O_GRACE,
	       O_RATE, O_UNHEALTHY, O_TIME, O_STATS, O_RUNLOG, O_LIE, O_BAD, O_FLOOD, O_DUP,
	       O_AFTER, O_SEED, O_QUIET, O_HELP };
	static const struct option lopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "prefix", required_argument, NULL, O_PREFIX },
		{ "pool", required_argument, NULL, O_POOL },
		{ "gpus", required_argument, NULL, O_GPUS },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "mem", required_argument, NULL, O_MEM },
		{ "label", required_argument, NULL, O_LABEL },
		{ "heartbeat", required_argument, NULL, O_HB },
		{ "duration", required_argument, NULL, O_DUR },
		{ "grace", required_argument, NULL, O_GRACE },
		{ "connect-rate", required_argument, NULL, O_RATE },
		{ "unhealthy-fraction", required_argument, NULL, O_UNHEALTHY },
		{ "time", required_argument, NULL, O_TIME },
		{ "stats", required_argument, NULL, O_STATS },
		{ "runlog", required_argument, NULL, O_RUNLOG },
		{ "lie-exits", required_argument, NULL, O_LIE },
		{ "bad-attempts", required_argument, NULL, O_BAD },
		{ "flood-heartbeats", required_argument, NULL, O_FLOOD },
		{ "dup-register", required_argument, NULL, O_DUP },
		{ "misbehave-after", required_argument, NULL, O_AFTER },
		{ "seed", required_argument, NULL, O_SEED },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 }
	};
	int c;

	opt.server = getenv("HPQ_SOCKET");
	while ((c = getopt_long(argc, argv, "s:n:", lopts, NULL)) != -1) {
		switch (c) {
		case 's': opt.server = optarg; break;
		case 'n': opt.nodes = (unsigned)arg_num("nodes", optarg, 1, 1000000); break;
		case O_PREFIX:
			if (hpq_check_name(optarg) < 0 || strlen(optarg) > 40) {
				fprintf(stderr, "hpq-sim: --prefix %s: not a node name\n", optarg);
				return 2;
			}
			opt.prefix = optarg;
			break;
		case O_POOL: opt.pool = optarg; break;
		case O_GPUS: opt.gpus = (unsigned)arg_num("gpus", optarg, 0, 1024); break;
		case O_CPUS: opt.cpus = (unsigned)arg_num("cpus", optarg, 0, 65536); break;
		case O_MEM: opt.mem_mib = (uint64_t)arg_num("mem", optarg, 0, 1e12); break;
		case O_LABEL:
			opt.labels = xreallocarray(opt.labels, opt.nlabels + 1, sizeof(char *));
			opt.labels[opt.nlabels++] = optarg;
			break;
		case O_HB: opt.heartbeat_s = arg_secs("heartbeat", optarg); break;
		case O_DUR:
			if (parse_duration(optarg, &opt.duration) < 0) {
				fprintf(stderr, "hpq-sim: --duration %s: want 30s, exp:30s or "
					"uniform:10s-60s\n", optarg);
				return 2;
			}
			break;
		case O_GRACE: opt.grace_s = arg_secs("grace", optarg); break;
		case O_RATE: opt.connect_rate = arg_num("connect-rate", optarg, 0, 1e7); break;
		case O_UNHEALTHY:
			opt.unhealthy_fraction = arg_num("unhealthy-fraction", optarg, 0, 1);
			break;
		case O_TIME: opt.run_for_s = arg_secs("time", optarg); break;
		case O_STATS: opt.stats_path = optarg; break;
		case O_RUNLOG: opt.runlog_path = optarg; break;
		case O_LIE: opt.lie_exits = arg_num("lie-exits", optarg, 0, 1e6); break;
		case O_BAD: opt.bad_attempts = arg_num("bad-attempts", optarg, 0, 1e6); break;
		case O_FLOOD: opt.flood_hz = arg_num("flood-heartbeats", optarg, 0, 1e5); break;
		case O_DUP: opt.dup_register = (unsigned)arg_num("dup-register", optarg, 0, 1e6);
			break;
		case O_AFTER: opt.misbehave_after_s = arg_secs("misbehave-after", optarg); break;
		case O_SEED: opt.seed = (uint64_t)arg_num("seed", optarg, 0, 1e18); break;
		case O_QUIET: opt.quiet = true; break;
		case O_HELP: usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !opt.server) {
		usage(stderr);
		return 2;
	}
	if (strlen(opt.server) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "hpq-sim: --server %s: path too long\n", opt.server);
		return 2;
	}
	rng_state = opt.seed * 0x9E3779B97F4A7C15ull + 1;
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(opt.nodes + opt.dup_register);
	if (opt.runlog_path) {
		runlog = fopen(opt.runlog_path, "w");
		if (!runlog) {
			fprintf(stderr, "hpq-sim: %s: %s\n", opt.runlog_path, strerror(errno));
			return 1;
		}
		setvbuf(runlog, NULL, _IOFBF, 1 << 20);
	}
	sick.category = (char *)"accelerator";
	sick.reason = (char *)"sim-fault";
	sick.message = (char *)"simulated fault (hpq-sim --unhealthy-fraction)";
	sick.severity = (char *)"fatal";
	sick.since = wall_ms() / 1000;

	loop = ev_default_loop(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (!loop) {
		fprintf(stderr, "hpq-sim: no epoll event loop\n");
		return 1;
	}
	nodes = xcalloc(opt.nodes, sizeof(*nodes));
	for (unsigned i = 0; i < opt.nodes; i++) {
		char name[64];

		snprintf(name, sizeof(name), "%s%05u", opt.prefix, i + 1);
		node_init(&nodes[i], i, name, false);
		nodes[i].unhealthy = i < (unsigned)ceil(opt.unhealthy_fraction * opt.nodes);
	}
	/* Impostors take the names of real nodes spread over the range. */
	nghosts = opt.dup_register < opt.nodes ? opt.dup_register : opt.nodes;
	ghosts = nghosts ? xcalloc(nghosts, sizeof(*ghosts)) : NULL;
	for (unsigned i = 0; i < nghosts; i++)
		node_init(&ghosts[i], i, nodes[(size_t)i * opt.nodes / nghosts].name, true);

	ev_timer_init(&connect_w, connect_cb, 0, 0.01);
	ev_timer_again(loop, &connect_w);
	ev_timer_start(loop, &connect_w);
	ev_timer_init(&stats_w, stats_cb, 1, 1);
	ev_timer_start(loop, &stats_w);
	if (opt.lie_exits > 0 || opt.bad_attempts > 0 || opt.flood_hz > 0 || nghosts) {
		static ev_timer after_w;

		ev_timer_init(&after_w, misbehave_cb, opt.misbehave_after_s, 0);
		ev_timer_start(loop, &after_w);
	}
	if (opt.run_for_s > 0) {
		ev_timer_init(&stop_w, stop_cb, opt.run_for_s, 0);
		ev_timer_start(loop, &stop_w);
	}
	ev_signal_init(&sigterm_w, sig_cb, SIGTERM);
	ev_signal_start(loop, &sigterm_w);
	ev_signal_init(&sigint_w, sig_cb, SIGINT);
	ev_signal_start(loop, &sigint_w);
	ev_signal_init(&sigusr2_w, usr2_cb, SIGUSR2);
	ev_signal_start(loop, &sigusr2_w);
	say("%u nodes of %u GPUs, %u CPUs on %s", opt.nodes, opt.gpus, opt.cpus, opt.server);

	ev_run(loop, 0);

	write_stats();
	if (runlog)
		fclose(runlog);
	return 0;
}
