/*
 * metrics.c: the Prometheus endpoint (metrics.h).
 *
 * Threads: libmicrohttpd answers on its own thread; everything it
 * needs is rendered on the loop thread. A scrape bumps `wanted`, wakes
 * the loop with a uv_async and waits on a condition variable until the
 * page generation changes; the loop renders the page from status_build
 * (the figures of `hpq status`), the model (nodes, running tasks), the
 * task counters and the histograms, and publishes it under the mutex.
 * Concurrent scrapes share one render. When the daemon stops, waiting
 * scrapes are released with 503 before the listener's thread is joined.
 *
 * Names follow Prometheus's rules, so that stock dashboards and alerts
 * apply: an hpq_ prefix, one unit per family in base units (GPUs and CPUs
 * are counts; memory is in bytes, time in seconds), counters for events
 * with a _total suffix, and every label combination that can occur
 * written, at 0 when nothing is there, so that a series never vanishes
 * and reappears.
 *
 * The task counters (submitted, started, finished, preempted, requeued)
 * are kept here, from the model's events (state_observe); nothing calls
 * this file. Those the task rows can answer are seeded from the tasks the
 * store loaded (every task stays in the store), so they carry on across a
 * restart: submitted (one per task), started (its attempts), finished (its
 * final state). Preemptions and requeues leave no count in a task's row:
 * they count from the daemon's start, and a restart resets them, which
 * Prometheus's rate() and increase() expect of a counter.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "clock.h"
#include "error.h"
#include "context.h"
#include "dispatch.h"
#include "hpq.h"
#include "log.h"
#include "metrics.h"
#include "status.h"
#include "store.h"
#include "strmap.h"
#include "xalloc.h"

#define RENDER_WAIT_MS 2000

struct histogram {
	const double *bounds;        /* upper bounds in seconds, ascending */
	size_t nbounds;
	uint64_t *counts;            /* per bucket, not cumulative; [nbounds] is +Inf */
	double sum;
	uint64_t count;
};

static const double cycle_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
				       0.025, 0.05, 0.1, 0.25, 0.5, 1 };
static const double commit_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					0.1, 0.25, 0.5, 1, 2.5, 5 };

struct metrics {
	struct hpqd *d;
	struct MHD_Daemon *mhd;
	uv_async_t async;
	uv_prepare_t turn_mark;      /* before each poll: one turn of the loop ended */
	int open_handles;
	char *port_path;

	/* loop thread */
	struct histogram cycle, commit, turn;
	uint64_t turn_start_ns, turn_idle_ns; /* the last mark: uv_hrtime, idle time */
	uint64_t cycles, decisions;
	struct strmap counts;        /* struct team_count by team name */

	/* shared, under mu */
	uv_mutex_t mu;
	uv_cond_t cv;
	char *page;
	size_t page_len;
	uint64_t generation;
	bool wanted;
	bool stopping;
};

static void hist_init(struct histogram *h, const double *bounds, size_t n)
{
	h->bounds = bounds;
	h->nbounds = n;
	h->counts = xcalloc(n + 1, sizeof(*h->counts));
}

static void hist_observe(struct histogram *h, double v)
{
	size_t i = 0;

	while (i < h->nbounds && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->sum += v;
	h->count++;
}

/*
 * Task counters of one team, by the name tasks keep (a removed team's
 * counts stay). finished[] is indexed by the final state less
 * TASK_COMPLETED.
 */
#define NFINAL (TASK_OUT_OF_MEMORY - TASK_COMPLETED + 1)

struct team_count {
	char *team;
	uint64_t submitted, started, preempted, requeued;
	uint64_t finished[NFINAL];
};

/* Label values, in the order of enum task_state from TASK_COMPLETED. */
static const char *const final_names[NFINAL] = { "completed", "failed", "cancelled",
						 "timeout", "out_of_memory" };

static struct team_count *count_of(struct metrics *m, const char *team)
{
	struct team_count *c = strmap_get(&m->counts, team);

	if (!c) {
		c = xcalloc(1, sizeof(*c));
		c->team = xstrdup(team);
		strmap_put(&m->counts, c->team, c);
	}
	return c;
}

/* What the tasks already say: those in memory, and the counts the ones
 * that left it (task.h, state_tasks_evict) left behind. */
static void seed_counts(struct metrics *m)
{
	const struct state *st = &m->d->state;
	const struct strmap *gone = &st->gone_counts;

	for (size_t i = 0; i < gone->cap; i++) {
		const struct task_gone_count *g = gone->keys[i] ? gone->vals[i] : NULL;
		struct team_count *c;

		if (!g)
			continue;
		c = count_of(m, g->team);
		c->submitted += g->submitted;
		c->started += g->started;
		for (int k = 0; k < NFINAL; k++)
			c->finished[k] += g->finished[k];
	}

	for (size_t i = 0; i < st->ntasks; i++) {
		const struct task *t = st->tasks[i];
		struct team_count *c = count_of(m, t->team);

		c->submitted++;
		c->started += t->attempts;
		if (task_state_final(t->state))
			c->finished[t->state - TASK_COMPLETED]++;
	}
}

/* The model's event observer. Every final transition records one "end"
 * event (task.c's task_end), with the task already in its final state. */
static void observe_event(void *arg, const struct store_event *e, const struct task *t)
{
	struct metrics *m = arg;
	struct team_count *c;

	if (!t)
		return;
	c = count_of(m, t->team);
	if (!strcmp(e->kind, "submit"))
		c->submitted++;
	else if (!strcmp(e->kind, "start"))
		c->started++;
	else if (!strcmp(e->kind, "preempt"))
		c->preempted++;
	else if (!strcmp(e->kind, "requeue"))
		c->requeued++;
	else if (!strcmp(e->kind, "end") && task_state_final(t->state))
		c->finished[t->state - TASK_COMPLETED]++;
}

static void counts_release(struct strmap *map)
{
	for (size_t i = 0; i < map->cap; i++)
		if (map->keys[i]) {
			struct team_count *c = map->vals[i];

			free(c->team);
			free(c);
		}
	strmap_release(map);
}

/* The dispatcher's cycle observer. */
static void observe_cycle(void *arg, uint64_t ns, size_t decisions)
{
	struct metrics *m = arg;

	hist_observe(&m->cycle, (double)ns / 1e9);
	m->cycles++;
	m->decisions += decisions;
}

/* The store's commit observer. */
static void observe_commit(void *arg, uint64_t ns)
{
	struct metrics *m = arg;

	hist_observe(&m->commit, (double)ns / 1e9);
}

/*
 * One turn of the loop: from one mark, before the loop polls, to the next,
 * less the time it waited in the poll. Every request, agent frame, timer
 * and completion of that turn is in it; a long one held up everything else.
 */
static void on_turn_mark(uv_prepare_t *h)
{
	struct metrics *m = h->data;
	uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(h->loop);

	if (m->turn_start_ns) {
		uint64_t busy = (now - m->turn_start_ns) - (idle - m->turn_idle_ns);

		hist_observe(&m->turn, (double)busy / 1e9);
	}
	m->turn_start_ns = now;
	m->turn_idle_ns = idle;
}

/* ---------------------------------------------------------------- rendering */

static void hist_print(FILE *f, const char *name, const char *help, const struct histogram *h)
{
	uint64_t cum = 0;

	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i < h->nbounds; i++) {
		cum += h->counts[i];
		fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
			(unsigned long long)cum);
	}
	cum += h->counts[h->nbounds];
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	fprintf(f, "%s_sum %.9f\n%s_count %llu\n", name, h->sum, name,
		(unsigned long long)h->count);
}

static void header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Names are checked by the daemon ([A-Za-z0-9._-]), but a label value is
 * escaped all the same: one odd name must not break the whole page. */
static void put_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

/* name{k1="v1",...} and a space; the labels are (key, value) pairs ending in NULL. */
static void put_name(FILE *f, const char *name, va_list ap)
{
	const char *k;
	bool first = true;

	fputs(name, f);
	while ((k = va_arg(ap, const char *))) {
		fprintf(f, "%s%s=\"", first ? "{" : ",", k);
		put_value(f, va_arg(ap, const char *));
		fputc('"', f);
		first = false;
	}
	fputs(first ? " " : "} ", f);
}

static void __attribute__((sentinel)) put_u(FILE *f, const char *name, uint64_t v, ...)
{
	va_list ap;

	va_start(ap, v);
	put_name(f, name, ap);
	va_end(ap);
	fprintf(f, "%llu\n", (unsigned long long)v);
}

/* A time in seconds from milliseconds; a negative ms is NaN (unknown). */
static void __attribute__((sentinel)) put_ms(FILE *f, const char *name, int64_t ms, ...)
{
	va_list ap;

	va_start(ap, ms);
	put_name(f, name, ap);
	va_end(ap);
	if (ms < 0)
		fputs("NaN\n", f);
	else
		fprintf(f, "%lld.%03lld\n", (long long)(ms / 1000), (long long)(ms % 1000));
}

/* The three resources, each a family of its own in its base unit. */
enum unit { U_GPUS, U_CPUS, U_MEM, NUNITS };
static const char *const unit_suffix[NUNITS] = { "gpus", "cpus", "memory_bytes" };
static const char *const unit_word[NUNITS] = { "GPUs", "CPUs", "Memory in bytes" };

static uint64_t res_unit(struct hpq_res r, enum unit u)
{
	int64_t v = u == U_GPUS ? r.gpus : u == U_CPUS ? r.cpus : r.mem;

	if (v < 0)
		return 0;
	return u == U_MEM ? (uint64_t)v * 1024 * 1024 : (uint64_t)v;
}

static struct hpq_res res_of(const Hpq__Resources *r)
{
	return r ? (struct hpq_res){ r->gpus, r->cpus, (int64_t)r->mem } : HPQ_RES_ZERO;
}

/* Writes # HELP and # TYPE of the gauge prefix_<unit>, whose help is the
 * unit's words followed by what, and returns its name in name. */
static void unit_header(FILE *f, char *name, size_t len, const char *prefix, const char *what,
			enum unit u)
{
	char help[160];

	snprintf(name, len, "%s_%s", prefix, unit_suffix[u]);
	snprintf(help, sizeof(help), "%s %s", unit_word[u], what);
	header(f, name, "gauge", help);
}

/* The words a node's health and service state can be (node.h). */
static const char *const health_names[] = { "healthy", "degraded", "unhealthy", "unreachable" };
static const char *const service_names[] = { "active", "draining", "drained", "repairing",
					     "down", "launching" };
#define NHEALTH (sizeof(health_names) / sizeof(health_names[0]))
#define NSERVICE (sizeof(service_names) / sizeof(service_names[0]))

static size_t word_index(const char *const *words, size_t n, const char *w)
{
	size_t i = 0;

	while (i < n && strcmp(words[i], w))
		i++;
	return i;
}

/* One of a state set: value 1 for the node's word, 0 for the others (and
 * a word outside the list, should one appear, at 1 after them). */
static void node_state_set(FILE *f, const char *name, const char *label, const char *node,
			   const char *pool, const char *const *words, size_t n, const char *is)
{
	for (size_t i = 0; i < n; i++)
		put_u(f, name, !strcmp(words[i], is), "node", node, "pool", pool, label, words[i],
		      NULL);
	if (word_index(words, n, is) == n)
		put_u(f, name, 1, "node", node, "pool", pool, label, is, NULL);
}

/* A (team, pool) as the metrics show it: every team in every pool. */
struct trow {
	const char *team, *pool;
	struct sched_usage u;
	int64_t oldest_pending_s;
	uint32_t preempting;
};

static int count_cmp(const void *a, const void *b)
{
	return strcmp((*(struct team_count *const *)a)->team,
		      (*(struct team_count *const *)b)->team);
}

/* The counters of every team with counts, and of every team that exists
 * (at 0 before its first task), sorted by name. */
static struct team_count **counts_sorted(struct metrics *m, size_t *ret_n)
{
	const struct state *st = &m->d->state;
	struct team_count **v;
	size_t n = 0;

	for (uint32_t ti = 0; ti < st->nteams; ti++)
		if (st->teams[ti])
			count_of(m, st->teams[ti]->name);
	v = xcalloc(m->counts.len + 1, sizeof(*v));
	for (size_t i = 0; i < m->counts.cap; i++)
		if (m->counts.keys[i])
			v[n++] = m->counts.vals[i];
	qsort(v, n, sizeof(*v), count_cmp);
	*ret_n = n;
	return v;
}

static struct hpq_res usage_part(const struct sched_usage *u, size_t k)
{
	switch (k) {
	case 0:
		return u->guarantee;
	case 1:
		return u->used;
	case 2:
		return u->borrowed;
	default:
		return u->lent;
	}
}

static void render_teams(FILE *f, const struct trow *rows, size_t nrows)
{
	/* In the order of usage_part. */
	static const struct {
		const char *prefix, *help;
	} kinds[] = {
		{ "hpq_team_guarantee", "guaranteed to a team in a pool." },
		{ "hpq_team_used", "held by a team's running tasks in a pool." },
		{ "hpq_team_borrowed", "a team uses beyond its guarantee, on idle compute." },
		{ "hpq_team_lent", "of a team's unused guarantee that other teams use." },
	};
	char name[96];

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (enum unit u = 0; u < NUNITS; u++) {
			unit_header(f, name, sizeof(name), kinds[k].prefix, kinds[k].help, u);
			for (size_t i = 0; i < nrows; i++) {
				struct hpq_res r = usage_part(&rows[i].u, k);

				put_u(f, name, res_unit(r, u), "team", rows[i].team, "pool",
				      rows[i].pool, NULL);
			}
		}
	header(f, "hpq_team_tasks", "gauge",
	       "Tasks of a team in a pool that have not ended, by state.");
	for (size_t i = 0; i < nrows; i++) {
		const struct trow *r = &rows[i];
		uint32_t pre = r->preempting < r->u.running ? r->preempting : r->u.running;

		put_u(f, "hpq_team_tasks", r->u.pending, "team", r->team, "pool", r->pool,
		      "state", "pending", NULL);
		put_u(f, "hpq_team_tasks", r->u.running - pre, "team", r->team, "pool", r->pool,
		      "state", "running", NULL);
		put_u(f, "hpq_team_tasks", pre, "team", r->team, "pool", r->pool,
		      "state", "preempting", NULL);
	}
	header(f, "hpq_team_oldest_pending_seconds", "gauge",
	       "Wait of a team's oldest pending task in a pool (0: none).");
	for (size_t i = 0; i < nrows; i++)
		put_u(f, "hpq_team_oldest_pending_seconds", (uint64_t)rows[i].oldest_pending_s,
		      "team", rows[i].team, "pool", rows[i].pool, NULL);
}

static void render_counters(struct metrics *m, FILE *f)
{
	size_t n;
	struct team_count **v = counts_sorted(m, &n);

	header(f, "hpq_tasks_submitted_total", "counter",
	       "Tasks submitted, by team (kept across restarts and [tasks] retain).");
	for (size_t i = 0; i < n; i++)
		put_u(f, "hpq_tasks_submitted_total", v[i]->submitted, "team", v[i]->team, NULL);
	header(f, "hpq_tasks_started_total", "counter",
	       "Attempts started, by team (kept across restarts and [tasks] retain).");
	for (size_t i = 0; i < n; i++)
		put_u(f, "hpq_tasks_started_total", v[i]->started, "team", v[i]->team, NULL);
	header(f, "hpq_tasks_finished_total", "counter",
	       "Tasks that reached a final state, by team and state (kept across restarts and "
	       "[tasks] retain).");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < NFINAL; k++)
			put_u(f, "hpq_tasks_finished_total", v[i]->finished[k], "team", v[i]->team,
			      "state", final_names[k], NULL);
	header(f, "hpq_tasks_preempted_total", "counter",
	       "Preemptions of running tasks, by team (since the daemon started).");
	for (size_t i = 0; i < n; i++)
		put_u(f, "hpq_tasks_preempted_total", v[i]->preempted, "team", v[i]->team, NULL);
	header(f, "hpq_tasks_requeued_total", "counter",
	       "Attempts that ended with the task back in the queue (preempted, node lost, "
	       "could not start), by team (since the daemon started).");
	for (size_t i = 0; i < n; i++)
		put_u(f, "hpq_tasks_requeued_total", v[i]->requeued, "team", v[i]->team, NULL);
	free(v);
}

static void render_nodes(FILE *f, const struct state *st, const struct hpq_res *used,
			 int64_t now_ms)
{
	char name[96];

#define EACH_NODE(n_) \
	for (uint32_t ni = 0; ni < st->nnodes; ni++) \
		for (const struct node *n_ = st->nodes[ni]; n_; n_ = NULL)

	header(f, "hpq_node_health", "gauge",
	       "A node's health: 1 for the state it is in, 0 for the others.");
	EACH_NODE(n)
		node_state_set(f, "hpq_node_health", "health", n->name, st->pools[n->pool]->name,
			       health_names, NHEALTH, n->health);
	header(f, "hpq_node_service", "gauge",
	       "A node's service state: 1 for the state it is in, 0 for the others.");
	EACH_NODE(n)
		node_state_set(f, "hpq_node_service", "service", n->name,
			       st->pools[n->pool]->name, service_names, NSERVICE, n->service);
	header(f, "hpq_node_connected", "gauge", "Whether a node's agent is connected (1) or not (0).");
	EACH_NODE(n)
		put_u(f, "hpq_node_connected", n->connected, "node", n->name, "pool",
		      st->pools[n->pool]->name, NULL);
	for (enum unit u = 0; u < NUNITS; u++) {
		unit_header(f, name, sizeof(name), "hpq_node_capacity",
			    "of a node, as its agent reported them.", u);
		EACH_NODE(n)
			put_u(f, name, res_unit(n->capacity, u), "node", n->name, "pool",
			      st->pools[n->pool]->name, NULL);
	}
	for (enum unit u = 0; u < NUNITS; u++) {
		unit_header(f, name, sizeof(name), "hpq_node_used",
			    "held by the running tasks on a node.", u);
		EACH_NODE(n)
			put_u(f, name, res_unit(used[ni], u), "node", n->name, "pool",
			      st->pools[n->pool]->name, NULL);
	}
	header(f, "hpq_node_last_heartbeat_age_seconds", "gauge",
	       "Time since a node's agent was last heard from (NaN: never).");
	EACH_NODE(n) {
		/* A clock stepped back shows 0, not a negative age. */
		int64_t ms = now_ms > n->last_heartbeat_ms ? now_ms - n->last_heartbeat_ms : 0;

		put_ms(f, "hpq_node_last_heartbeat_age_seconds",
		       n->last_heartbeat_ms > 0 ? ms : -1, "node", n->name, "pool",
		       st->pools[n->pool]->name, NULL);
	}
#undef EACH_NODE
}

static void render_pools(FILE *f, const struct state *st, const Hpq__StatusReply *s)
{
	uint32_t np = st->npools;
	uint32_t (*pool_nodes)[NHEALTH][NSERVICE];  /* per pool */
	char name[96];

	for (enum unit u = 0; u < NUNITS; u++) {
		unit_header(f, name, sizeof(name), "hpq_pool_capacity",
			    "of a pool's schedulable nodes.", u);
		for (size_t i = 0; i < s->n_pools; i++)
			put_u(f, name, res_unit(res_of(s->pools[i]->capacity), u), "pool",
			      s->pools[i]->name, NULL);
	}
	for (enum unit u = 0; u < NUNITS; u++) {
		unit_header(f, name, sizeof(name), "hpq_pool_used",
			    "held by running tasks in a pool.", u);
		for (size_t i = 0; i < s->n_pools; i++)
			put_u(f, name, res_unit(res_of(s->pools[i]->used), u), "pool",
			      s->pools[i]->name, NULL);
	}
	for (enum unit u = 0; u < NUNITS; u++) {
		unit_header(f, name, sizeof(name), "hpq_pool_idle",
			    "idle in a pool that a borrower could still get.", u);
		for (size_t i = 0; i < s->n_pools; i++)
			put_u(f, name, res_unit(res_of(s->pools[i]->idle), u), "pool",
			      s->pools[i]->name, NULL);
	}

	/* A node in a word outside the lists (none today) is in no count. */
	pool_nodes = xcalloc((size_t)np + 1, sizeof(*pool_nodes));
	for (uint32_t ni = 0; ni < st->nnodes; ni++) {
		const struct node *n = st->nodes[ni];
		size_t h, sv;

		if (!n || n->pool >= np)
			continue;
		h = word_index(health_names, NHEALTH, n->health);
		sv = word_index(service_names, NSERVICE, n->service);
		if (h < NHEALTH && sv < NSERVICE)
			pool_nodes[n->pool][h][sv]++;
	}
	header(f, "hpq_pool_nodes", "gauge", "Nodes of a pool, by health and service state.");
	for (uint32_t pi = 0; pi < np; pi++)
		for (size_t h = 0; st->pools[pi] && h < NHEALTH; h++)
			for (size_t sv = 0; sv < NSERVICE; sv++)
				put_u(f, "hpq_pool_nodes", pool_nodes[pi][h][sv], "pool",
				      st->pools[pi]->name, "health", health_names[h], "service",
				      service_names[sv], NULL);
	free(pool_nodes);
}

/* The state store's health (store.h), as hpq status has it: degraded by
 * reason, both reasons always written. */
static void render_store(FILE *f, const Hpq__StatusReply *s, const struct store *store)
{
	struct store_checkpoints c;

	header(f, "hpq_store_degraded", "gauge",
	       "1 while hpqd refuses changes because it cannot count on writing its state "
	       "database: full (short of space) or failing (a write failed otherwise).");
	put_u(f, "hpq_store_degraded", !strcmp(s->store_state, "full"), "reason", "full", NULL);
	put_u(f, "hpq_store_degraded", !strcmp(s->store_state, "failing"), "reason", "failing",
	      NULL);
	if (s->store_free_bytes != UINT64_MAX) {
		header(f, "hpq_store_free_bytes", "gauge",
		       "Free space on the file system of hpqd's state directory, in bytes.");
		put_u(f, "hpq_store_free_bytes", s->store_free_bytes, NULL);
	}
	header(f, "hpq_store_waiting_rows", "gauge",
	       "Changes applied in memory that wait for a commit after a failed one.");
	put_u(f, "hpq_store_waiting_rows", s->store_waiting_rows, NULL);
	store_checkpoint_counts(store, &c);
	header(f, "hpq_store_checkpoints_total", "counter",
	       "Checkpoints of the database's write-ahead log: passes of the background "
	       "thread (background), short ends of them after a commit (finish), and full "
	       "ones in a commit because the log grew too long (forced).");
	put_u(f, "hpq_store_checkpoints_total", c.background, "where", "background", NULL);
	put_u(f, "hpq_store_checkpoints_total", c.finished, "where", "finish", NULL);
	put_u(f, "hpq_store_checkpoints_total", c.forced, "where", "forced", NULL);
}

static void render(struct metrics *m, char **ret_page, size_t *ret_len)
{
	struct hpqd *d = m->d;
	const struct state *st = &d->state;
	Hpq__StatusReply *s = NULL;
	struct state_err e;
	char proto[16], schema[16];
	uint32_t np = st->npools, nt = st->nteams, nc = st->nclasses;
	struct trow *rows;
	size_t nrows = 0, k;
	uint32_t *tp_pre, *cls_pre, total_pre = 0;
	struct hpq_res *node_used;
	int64_t now_ms = hpq_now_ms();
	FILE *f = open_memstream(ret_page, ret_len);

	if (!f)
		hpq_fatal("out of memory");
	if (status_build(d, NULL, NULL, now_ms, &s, &e) < 0)
		hpq_fatal("status_build failed without filters: %s", e.msg);

	/* One pass over the running tasks: what the nodes hold and who is
	 * being preempted (status counts PREEMPTING tasks as running). */
	tp_pre = xcalloc((size_t)nt * np + 1, sizeof(*tp_pre));
	cls_pre = xcalloc((size_t)nc + 1, sizeof(*cls_pre));
	node_used = xcalloc((size_t)st->nnodes + 1, sizeof(*node_used));
	for (const struct dlist *l = st->running.next; l != &st->running; l = l->next) {
		const struct task *t = container_of(l, struct task, run_link);

		for (uint32_t i = 0; t->st.nodes && i < t->st.nnodes; i++)
			if (t->st.nodes[i] < st->nnodes)
				node_used[t->st.nodes[i]] = hpq_res_add(node_used[t->st.nodes[i]],
									t->st.per_node);
		if (t->state != TASK_PREEMPTING)
			continue;
		total_pre++;
		if (t->st.team < nt && t->st.pool < np)
			tp_pre[(size_t)t->st.team * np + t->st.pool]++;
		if (t->st.class_id < nc)
			cls_pre[t->st.class_id]++;
	}

	/* Every team in every pool, from the dispatcher's counters as status
	 * has them; status leaves idle rows out, the metrics write them. Its
	 * rows come in the same (team, pool) order, so one walk finds them. */
	rows = xcalloc((size_t)nt * np + 1, sizeof(*rows));
	k = 0;
	for (uint32_t ti = 0; ti < nt; ti++) {
		for (uint32_t pi = 0; st->teams[ti] && pi < np; pi++) {
			struct trow *r = &rows[nrows];

			if (!st->pools[pi])
				continue;
			r->team = st->teams[ti]->name;
			r->pool = st->pools[pi]->name;
			if (sched_team_usage(st->sched, ti, pi, &r->u) < 0)
				memset(&r->u, 0, sizeof(r->u));
			r->preempting = tp_pre[(size_t)ti * np + pi];
			if (k < s->n_teams && !strcmp(s->teams[k]->name, r->team) &&
			    !strcmp(s->teams[k]->pool, r->pool))
				r->oldest_pending_s = s->teams[k++]->oldest_pending_s;
			nrows++;
		}
	}

	header(f, "hpq_build_info", "gauge",
	       "hpqd's version, protocol and database schema, as labels; always 1.");
	snprintf(proto, sizeof(proto), "%d", HPQ_PROTOCOL_VERSION);
	snprintf(schema, sizeof(schema), "%d", store_schema_latest());
	put_u(f, "hpq_build_info", 1, "version", HPQ_VERSION, "protocol", proto, "schema", schema,
	      NULL);

	header(f, "hpq_tasks", "gauge", "Tasks in the cluster that have not ended, by state.");
	put_u(f, "hpq_tasks", s->pending, "state", "pending", NULL);
	put_u(f, "hpq_tasks", s->running - (total_pre < s->running ? total_pre : s->running),
	      "state", "running", NULL);
	put_u(f, "hpq_tasks", total_pre < s->running ? total_pre : s->running, "state",
	      "preempting", NULL);
	render_counters(m, f);
	render_teams(f, rows, nrows);

	header(f, "hpq_class_tasks", "gauge",
	       "Tasks of a priority class that have not ended, by state.");
	k = 0;
	for (uint32_t ci = 0; ci < nc; ci++) {
		const Hpq__ClassStatus *c;
		uint32_t pre;

		if (!st->classes[ci] || k >= s->n_classes)
			continue;
		c = s->classes[k++];
		pre = cls_pre[ci] < c->running ? cls_pre[ci] : c->running;
		put_u(f, "hpq_class_tasks", c->pending, "class", c->name, "state", "pending", NULL);
		put_u(f, "hpq_class_tasks", c->running - pre, "class", c->name, "state", "running",
		      NULL);
		put_u(f, "hpq_class_tasks", pre, "class", c->name, "state", "preempting", NULL);
	}

	render_pools(f, st, s);
	render_nodes(f, st, node_used, now_ms);

	header(f, "hpq_dispatch_decisions_total", "counter",
	       "Start and preempt decisions (since the daemon started).");
	put_u(f, "hpq_dispatch_decisions_total", m->decisions, NULL);
	hist_print(f, "hpq_dispatch_cycle_seconds",
		   "Duration of a dispatch cycle, deciding and applying.", &m->cycle);
	hist_print(f, "hpq_store_commit_seconds",
		   "Duration of a group commit to the state database.", &m->commit);
	hist_print(f, "hpq_loop_turn_seconds",
		   "Work of one turn of the daemon's event loop (requests, agent messages, "
		   "timers), its wait for events excluded.", &m->turn);
	render_store(f, s, d->store);
	if (fclose(f) != 0)
		hpq_fatal("out of memory");
	hpq__status_reply__free_unpacked(s, NULL);
	free(rows);
	free(tp_pre);
	free(cls_pre);
	free(node_used);
}

static void on_render(uv_async_t *h)
{
	struct metrics *m = h->data;
	char *page = NULL;
	size_t len = 0;
	bool wanted;

	uv_mutex_lock(&m->mu);
	wanted = m->wanted;
	m->wanted = false;
	uv_mutex_unlock(&m->mu);
	if (!wanted)
		return;
	render(m, &page, &len);
	uv_mutex_lock(&m->mu);
	free(m->page);
	m->page = page;
	m->page_len = len;
	m->generation++;
	uv_cond_broadcast(&m->cv);
	uv_mutex_unlock(&m->mu);
}

/* ---------------------------------------------------------------- HTTP (its own thread) */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type,
			     void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	static const char text[] = "text/plain; charset=utf-8";
	struct metrics *m = cls;
	uint64_t gen;
	char *copy = NULL;
	size_t len = 0;

	(void)version;
	(void)upload_data;
	if (!*con_cls) {
		/* First call: headers only. Answer on the second. */
		*con_cls = m;
		return MHD_YES;
	}
	if (*upload_size)
		return reply(conn, 413, text, (void *)"no body, please\n",
			     16, MHD_RESPMEM_PERSISTENT);
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, (void *)"use GET\n", 8,
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, text, (void *)"try /metrics\n", 13,
			     MHD_RESPMEM_PERSISTENT);

	uv_mutex_lock(&m->mu);
	gen = m->generation;
	m->wanted = true;
	uv_async_send(&m->async);
	while (m->generation == gen && !m->stopping)
		if (uv_cond_timedwait(&m->cv, &m->mu, (uint64_t)RENDER_WAIT_MS * 1000000) ==
		    UV_ETIMEDOUT)
			break;
	if (m->generation != gen && m->page) {
		copy = xmalloc(m->page_len + 1);
		memcpy(copy, m->page, m->page_len);
		len = m->page_len;
	}
	uv_mutex_unlock(&m->mu);
	if (!copy)
		return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, text,
			     (void *)"hpqd is busy or stopping\n", 25, MHD_RESPMEM_PERSISTENT);
	return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", copy, len,
		     MHD_RESPMEM_MUST_FREE);
}

/* ---------------------------------------------------------------- setup */

static int parse_addr(const char *s, struct sockaddr_storage *ss, char *err, size_t errlen)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	size_t hl;
	long port;
	char *end;

	if (!colon)
		goto bad;
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		goto bad;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		goto bad;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (uv_ip4_addr(hl ? host : "0.0.0.0", (int)port, (struct sockaddr_in *)ss) == 0 ||
	    uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
bad:
	snprintf(err, errlen, "invalid metrics address '%s': use HOST:PORT", s);
	return HPQ_EINVAL;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct metrics *m = h->data;

	if (--m->open_handles > 0)
		return;
	free(m->cycle.counts);
	free(m->commit.counts);
	free(m->turn.counts);
	free(m->page);
	free(m->port_path);
	counts_release(&m->counts);
	uv_cond_destroy(&m->cv);
	uv_mutex_destroy(&m->mu);
	free(m);
}

int metrics_start(struct hpqd *d, const char *listen, char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	struct metrics *m;
	const union MHD_DaemonInfo *info;
	unsigned port = 0;
	FILE *f;
	int r;

	r = parse_addr(listen, &ss, err, errlen);
	if (r < 0)
		return r;
	m = xcalloc(1, sizeof(*m));
	m->d = d;
	hist_init(&m->cycle, cycle_bounds, sizeof(cycle_bounds) / sizeof(cycle_bounds[0]));
	hist_init(&m->commit, commit_bounds, sizeof(commit_bounds) / sizeof(commit_bounds[0]));
	hist_init(&m->turn, cycle_bounds, sizeof(cycle_bounds) / sizeof(cycle_bounds[0]));
	if (uv_mutex_init(&m->mu) < 0 || uv_cond_init(&m->cv) < 0)
		hpq_fatal("cannot make a mutex");
	uv_async_init(d->loop, &m->async, on_render);
	m->async.data = m;
	uv_unref((uv_handle_t *)&m->async);
	m->open_handles = 1;
	m->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
				  (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				  0, NULL, NULL, on_request, m,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
				  MHD_OPTION_END);
	if (!m->mhd) {
		snprintf(err, errlen, "cannot serve metrics on %s: %s", listen,
			 errno ? strerror(errno) : "libmicrohttpd failed");
		uv_close((uv_handle_t *)&m->async, on_handle_closed);
		return HPQ_EINVAL;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (info)
		port = info->port;
	d->metrics = m;
	if (uv_loop_configure(d->loop, UV_METRICS_IDLE_TIME) == 0) {
		uv_prepare_init(d->loop, &m->turn_mark);
		m->turn_mark.data = m;
		uv_prepare_start(&m->turn_mark, on_turn_mark);
		uv_unref((uv_handle_t *)&m->turn_mark);
		m->open_handles++;
	}
	store_set_commit_observer(d->store, observe_commit, m);
	dispatch_on_cycle(d, observe_cycle, m);
	seed_counts(m);
	state_observe(&d->state, &(struct state_observer){ .event = observe_event, .arg = m });
	xasprintf(&m->port_path, "%s/hpqd.metrics.port", d->cfg.state_dir);
	f = fopen(m->port_path, "w");
	if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0)
		log_warn("cannot write '%s': %s", m->port_path, strerror(errno));
	log_info("serving metrics on %s (port %u) at /metrics", listen, port);
	return 0;
}

void metrics_stop(struct hpqd *d)
{
	struct metrics *m = d->metrics;

	if (!m)
		return;
	uv_mutex_lock(&m->mu);
	m->stopping = true;
	uv_cond_broadcast(&m->cv);
	uv_mutex_unlock(&m->mu);
	MHD_stop_daemon(m->mhd);
	if (d->store)
		store_set_commit_observer(d->store, NULL, NULL);
	if (d->dispatch)
		dispatch_on_cycle(d, NULL, NULL);
	state_unobserve(&d->state, m);
	unlink(m->port_path);
	d->metrics = NULL;
	if (m->open_handles > 1)
		uv_close((uv_handle_t *)&m->turn_mark, on_handle_closed);
	uv_close((uv_handle_t *)&m->async, on_handle_closed);
}
