/*
 * metrics.c: the Prometheus endpoint (metrics.h).
 *
 * Threads: libmicrohttpd answers on its own thread; everything it
 * needs is rendered on the loop thread. A scrape bumps `wanted`, wakes
 * the loop with a uv_async and waits on a condition variable until the
 * page generation changes; the loop renders the page from status_build
 * (the figures of `hpq status`), the event counters and the histograms,
 * and publishes it under the mutex. Concurrent scrapes share one render.
 * When the daemon stops, waiting scrapes are released with 503 before the
 * listener's thread is joined.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "clock.h"
#include "error.h"
#include "events.h"
#include "context.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "status.h"
#include "store.h"
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
	char *port_path;

	/* loop thread */
	struct histogram cycle, commit;
	uint64_t cycles, decisions;

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

/* Names are checked by the daemon ([A-Za-z0-9._-]), so they need no
 * escaping in label values. */
static void res3(FILE *f, const char *name, const char *labels, const Hpq__Resources *r)
{
	fprintf(f, "%s{%s,resource=\"gpus\"} %u\n", name, labels, r ? r->gpus : 0);
	fprintf(f, "%s{%s,resource=\"cpus\"} %u\n", name, labels, r ? r->cpus : 0);
	fprintf(f, "%s{%s,resource=\"mem_mib\"} %llu\n", name, labels,
		(unsigned long long)(r ? r->mem : 0));
}

#define TEAM_RES(field_, metric_, help_)                                                \
	do {                                                                            \
		header(f, metric_, "gauge", help_);                                     \
		for (size_t i = 0; i < s->n_teams; i++) {                               \
			snprintf(lab, sizeof(lab), "team=\"%s\",pool=\"%s\"",           \
				 s->teams[i]->name, s->teams[i]->pool);                 \
			res3(f, metric_, lab, s->teams[i]->field_);                     \
		}                                                                       \
	} while (0)

static void render(struct metrics *m, char **ret_page, size_t *ret_len)
{
	struct hpqd *d = m->d;
	Hpq__StatusReply *s = NULL;
	struct state_err e;
	char lab[320];
	FILE *f = open_memstream(ret_page, ret_len);

	if (!f)
		hpq_fatal("out of memory");
	if (status_build(d, NULL, NULL, hpq_now_ms(), &s, &e) < 0)
		hpq_fatal("status_build failed without filters: %s", e.msg);

	TEAM_RES(guarantee, "hpq_team_guarantee", "Guaranteed resources of a team in a pool.");
	TEAM_RES(used, "hpq_team_used", "Resources held by a team's running tasks in a pool.");
	TEAM_RES(borrowed, "hpq_team_borrowed",
		 "Resources a team uses beyond its guarantee, on idle compute.");
	TEAM_RES(lent, "hpq_team_lent", "Part of a team's unused guarantee that others use.");
	header(f, "hpq_team_tasks", "gauge", "Tasks of a team in a pool, by state.");
	for (size_t i = 0; i < s->n_teams; i++) {
		const Hpq__TeamStatus *t = s->teams[i];

		fprintf(f, "hpq_team_tasks{team=\"%s\",pool=\"%s\",state=\"running\"} %u\n",
			t->name, t->pool, t->running);
		fprintf(f, "hpq_team_tasks{team=\"%s\",pool=\"%s\",state=\"pending\"} %u\n",
			t->name, t->pool, t->pending);
	}
	header(f, "hpq_team_preempted_1h", "gauge",
	       "Tasks of a team preempted in the last hour.");
	for (size_t i = 0; i < s->n_teams; i++)
		fprintf(f, "hpq_team_preempted_1h{team=\"%s\",pool=\"%s\"} %u\n",
			s->teams[i]->name, s->teams[i]->pool, s->teams[i]->preempted_1h);
	header(f, "hpq_team_oldest_pending_seconds", "gauge",
	       "Wait of a team's oldest pending task (0: none).");
	for (size_t i = 0; i < s->n_teams; i++)
		fprintf(f, "hpq_team_oldest_pending_seconds{team=\"%s\",pool=\"%s\"} %lld\n",
			s->teams[i]->name, s->teams[i]->pool,
			(long long)s->teams[i]->oldest_pending_s);

	header(f, "hpq_class_tasks", "gauge", "Tasks of a priority class, by state.");
	for (size_t i = 0; i < s->n_classes; i++) {
		const Hpq__ClassStatus *c = s->classes[i];

		fprintf(f, "hpq_class_tasks{class=\"%s\",state=\"running\"} %u\n", c->name,
			c->running);
		fprintf(f, "hpq_class_tasks{class=\"%s\",state=\"pending\"} %u\n", c->name,
			c->pending);
	}

	header(f, "hpq_pool_capacity", "gauge", "Resources of a pool's schedulable nodes.");
	for (size_t i = 0; i < s->n_pools; i++) {
		snprintf(lab, sizeof(lab), "pool=\"%s\"", s->pools[i]->name);
		res3(f, "hpq_pool_capacity", lab, s->pools[i]->capacity);
	}
	header(f, "hpq_pool_used", "gauge", "Resources held by running tasks in a pool.");
	for (size_t i = 0; i < s->n_pools; i++) {
		snprintf(lab, sizeof(lab), "pool=\"%s\"", s->pools[i]->name);
		res3(f, "hpq_pool_used", lab, s->pools[i]->used);
	}
	header(f, "hpq_pool_idle", "gauge", "Idle compute a borrower could still get in a pool.");
	for (size_t i = 0; i < s->n_pools; i++) {
		snprintf(lab, sizeof(lab), "pool=\"%s\"", s->pools[i]->name);
		res3(f, "hpq_pool_idle", lab, s->pools[i]->idle);
	}
	header(f, "hpq_nodes", "gauge", "Nodes of a pool by health.");
	for (size_t i = 0; i < s->n_pools; i++)
		for (size_t k = 0; k < s->pools[i]->n_health; k++)
			fprintf(f, "hpq_nodes{pool=\"%s\",health=\"%s\"} %u\n", s->pools[i]->name,
				s->pools[i]->health[k]->name, s->pools[i]->health[k]->count);
	header(f, "hpq_nodes_service", "gauge", "Nodes of a pool by service state.");
	for (size_t i = 0; i < s->n_pools; i++)
		for (size_t k = 0; k < s->pools[i]->n_service; k++)
			fprintf(f, "hpq_nodes_service{pool=\"%s\",service=\"%s\"} %u\n",
				s->pools[i]->name, s->pools[i]->service[k]->name,
				s->pools[i]->service[k]->count);

	header(f, "hpq_tasks", "gauge", "Active tasks in the cluster, by state.");
	fprintf(f, "hpq_tasks{state=\"running\"} %u\nhpq_tasks{state=\"pending\"} %u\n",
		s->running, s->pending);
	header(f, "hpq_preemptions_total", "counter", "Preemptions since the daemon started.");
	fprintf(f, "hpq_preemptions_total %llu\n",
		(unsigned long long)events_preempt_total(d->events));
	header(f, "hpq_dispatch_decisions_total", "counter",
	       "Start and preempt decisions since the daemon started.");
	fprintf(f, "hpq_dispatch_decisions_total %llu\n", (unsigned long long)m->decisions);
	hist_print(f, "hpq_dispatch_cycle_seconds",
		   "Duration of a dispatch cycle, deciding and applying.", &m->cycle);
	hist_print(f, "hpq_store_commit_seconds",
		   "Duration of a group commit to the state database.", &m->commit);
	if (fclose(f) != 0)
		hpq_fatal("out of memory");
	hpq__status_reply__free_unpacked(s, NULL);
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

static void on_async_closed(uv_handle_t *h)
{
	struct metrics *m = h->data;

	free(m->cycle.counts);
	free(m->commit.counts);
	free(m->page);
	free(m->port_path);
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
	if (uv_mutex_init(&m->mu) < 0 || uv_cond_init(&m->cv) < 0)
		hpq_fatal("cannot make a mutex");
	uv_async_init(d->loop, &m->async, on_render);
	m->async.data = m;
	uv_unref((uv_handle_t *)&m->async);
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
		uv_close((uv_handle_t *)&m->async, on_async_closed);
		return HPQ_EINVAL;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (info)
		port = info->port;
	d->metrics = m;
	store_set_commit_observer(d->store, observe_commit, m);
	dispatch_on_cycle(d, observe_cycle, m);
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
	unlink(m->port_path);
	d->metrics = NULL;
	uv_close((uv_handle_t *)&m->async, on_async_closed);
}
