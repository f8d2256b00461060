/*
 * req-dash.c: the dashboards' requests: status, events, usage, logs and
 * accounting (request.h). Each answers from what its module keeps:
 * status.c builds the status from memory, events.c and usage.c read the
 * store behind everything recorded so far, logs.c relays the read to the
 * agent that holds the output; accounting reads the ended tasks' rows,
 * streamed a page at a time as the client reads them;
 * hpq versions reads the release catalogue; hpq upgrade-check reads it too,
 * then the newest backup's record, and runs upgrade.c's checks.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <time.h>

#include "agentlink.h"
#include "catalog.h"
#include "clock.h"
#include "context.h"
#include "error.h"
#include "events.h"
#include "logs.h"
#include "msg.h"
#include "request.h"
#include "rights.h"
#include "server.h"
#include "status.h"
#include "store.h"
#include "upgrade.h"
#include "usage.h"
#include "xalloc.h"

int req_status(struct req *q)
{
	const Hpq__StatusRequest *m = q->env->status;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__StatusReply *rep;
	int r;

	r = status_build(q->d, m->pool, m->team, hpq_now_ms(), &rep, q->e);
	if (r < 0)
		return r;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_STATUS_REPLY;
	env.status_reply = rep;
	server_send(q->c, &env);
	hpq__status_reply__free_unpacked(rep, NULL);
	return 0;
}

int req_events(struct req *q)
{
	return events_request(q->d->events, q->c, q->id, q->env->events, q->e);
}

int req_usage(struct req *q)
{
	return usage_request(q->d->usage, q->c, q->id, q->env->usage, q->e);
}

int req_log_request(struct req *q)
{
	const Hpq__LogRequest *m = q->env->log_request;
	struct state *st = &q->d->state;
	struct task *t = state_task_find(st, m->task_id);
	const char *node_name = m->node;
	struct conn *agent;
	struct node *n;
	bool completed;

	/* Only what hpqd holds in memory: where an attempt ran is in its row. */
	if (!t && state_task_gone(st, m->task_id, &completed))
		return state_errf(q->e, HPQ_ENOTFOUND, "task %llu ended longer ago than [tasks] "
				  "keep_finished: hpq logs no longer follows it (hpq show %llu "
				  "names its nodes)", (unsigned long long)m->task_id,
				  (unsigned long long)m->task_id);
	if (!t)
		return state_errf(q->e, HPQ_ENOTFOUND, "no task %llu",
				  (unsigned long long)m->task_id);
	/* Output may hold secrets: private data (rights.h), unless private_data is off. */
	if (q->d->cfg.private_data && !rights_task_manage(st, t, &q->c->actor))
		return rights_task_refuse(t, "read its output", q->e);
	if (!t->attempts || (!*node_name && !t->n_node_names))
		return state_errf(q->e, HPQ_ENOTFOUND, "task %llu has not run yet: no output",
				  (unsigned long long)t->st.id);
	/* Each attempt has its own file, named by the cluster id, task and attempt. */
	if (m->attempt > t->attempts)
		return state_errf(q->e, HPQ_ENOTFOUND, "task %llu has run %u attempt%s, not %u",
				  (unsigned long long)t->st.id, t->attempts,
				  t->attempts == 1 ? "" : "s", m->attempt);
	if (!*node_name)
		node_name = t->node_names[0];
	n = state_node_find(st, node_name);
	if (!n)
		return state_errf(q->e, HPQ_ENOTFOUND, "unknown node '%.64s'", node_name);
	agent = agentlink_conn(q->d, n);
	if (!agent || agent->dead)
		return state_errf(q->e, HPQ_EUNAVAIL, "node %s is not connected: its agent holds "
				  "the output", n->name);
	logs_relay(q->d->logs, q->c, q->id, t->st.id, m->attempt ? m->attempt : t->attempts,
		   agent, m->offset, m->max);
	return 0;
}

/* ---------------------------------------------------------------- hpq acct */

#define ACCT_DEFAULT_LIMIT 10000
#define ACCT_MAX_LIMIT 100000      /* without AcctRequest.stream: one frame */
/* Streamed: records read from the store at a time, and how much may wait
 * unread by the client before the next page waits too (LIST_QUEUE_MAX). */
#define ACCT_PAGE 1024
#define ACCT_QUEUE_MAX (2u << 20)
#define ACCT_WAIT_MS 2
/* Room left in a frame for the envelope around the rows. */
#define ACCT_BUDGET (HPQ_FRAME_MAX - 65536)
/* An array's dropped indices are ranges of any length (a cancel of every
 * third index leaves one per index): a record shows at most this much of
 * them, cut at a range and ending in "...", so that one array cannot
 * crowd every other record out of the frame. */
#define ACCT_DROPPED_MAX 4096

/* An hpq acct, from its request until its last frame is sent. */
struct acct_run {
	uv_timer_t wait;             /* stream: the next page, once the client read enough */
	struct hpqd *d;
	struct conn *c;
	uint64_t id;
	bool stream;
	bool sent;                   /* a frame went out: the next ones continue it */
	uint64_t left;               /* stream: records still to send (UINT64_MAX: all) */
	struct store_acct_filter f;  /* stream: the next page's; its texts are the run's own */
};

/* An array's dropped ranges as its record shows them: ACCT_DROPPED_MAX. */
static char *acct_dropped_text(const char *ranges)
{
	size_t len = strlen(ranges);
	char *s;

	if (len <= ACCT_DROPPED_MAX)
		return xstrdup(ranges);
	len = ACCT_DROPPED_MAX;
	while (len > 0 && ranges[len] != ',')
		len--;
	s = xmalloc(len + 5);
	memcpy(s, ranges, len);
	strcpy(s + len, len ? ",..." : "...");
	return s;
}

/* The Tasks of a frame of records, which they point into. */
struct acct_frame {
	Hpq__Task *tasks, **ptrs;
	Hpq__Resources *res;
	char **specs;                /* the dropped ranges' texts, the frame's own */
	size_t cap, n, bytes;        /* slots; those to send next, their bytes */
};

static void acct_frame_init(struct acct_frame *fr, size_t cap)
{
	*fr = (struct acct_frame){ .cap = cap };
	if (!cap)
		return;
	fr->tasks = xcalloc(cap, sizeof(*fr->tasks));
	fr->res = xcalloc(cap, sizeof(*fr->res));
	fr->ptrs = xcalloc(cap, sizeof(*fr->ptrs));
	fr->specs = xcalloc(cap, sizeof(*fr->specs));
}

/* Record a as the frame's slot i; returns the bytes it takes in the frame. */
static size_t acct_frame_put(struct acct_frame *fr, size_t i, const struct store_acct_row *a)
{
	Hpq__Task *t = &fr->tasks[i];

	hpq__task__init(t);
	hpq__resources__init(&fr->res[i]);
	t->id = a->id;
	t->name = a->name;
	t->team = a->team;
	t->user = a->user;
	t->class_ = a->cls;
	t->pool = a->pool;
	t->state = a->state;
	t->reason = a->reason;
	t->nodes = a->nnodes;
	hpq_res_to_pb(a->per_node, &fr->res[i]);
	t->per_node = &fr->res[i];
	t->n_node_names = a->n_node_names;
	t->node_names = a->node_names;
	t->attempts = a->attempts;
	t->submit_time = a->submit_ms;
	t->start_time = a->start_ms;
	t->end_time = a->end_ms;
	t->has_exit_code = a->has_exit_code;
	t->exit_code = a->exit_code;
	t->time_limit_s = a->time_limit_s;
	t->has_array = a->array_id != 0;
	t->array_id = a->array_id;
	t->array_index = a->array_index;
	if (a->dropped && *a->dropped)
		t->array_spec = fr->specs[i] = acct_dropped_text(a->dropped);
	t->peak_mem = a->peak_mem;
	t->cpu_usec = a->cpu_usec;
	t->preemptions = a->preemptions;
	return hpq__task__get_packed_size(t) + 8;
}

/* Sends the frame's slots [from, from + n), and empties it. */
static void acct_frame_send(struct acct_run *r, struct acct_frame *fr, size_t from, bool truncated,
			    bool more)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__AcctReply rep = HPQ__ACCT_REPLY__INIT;

	for (size_t i = 0; i < fr->n; i++)
		fr->ptrs[i] = &fr->tasks[from + i];
	rep.n_tasks = fr->n;
	rep.tasks = fr->ptrs;
	rep.truncated = truncated;
	rep.more = more;
	env.id = r->id;
	env.body_case = HPQ__ENVELOPE__BODY_ACCT_REPLY;
	env.acct_reply = &rep;
	(r->sent ? server_send_continued : server_send)(r->c, &env);
	r->sent = true;
	fr->n = fr->bytes = 0;
}

static void acct_frame_release(struct acct_frame *fr)
{
	for (size_t i = 0; fr->specs && i < fr->cap; i++)
		free(fr->specs[i]);
	free(fr->specs);
	free(fr->tasks);
	free(fr->res);
	free(fr->ptrs);
}

/* One frame: oldest first; when it cannot hold them all, the newest. */
static void acct_send_whole(struct acct_run *r, const struct store_acct_list *l)
{
	struct acct_frame fr;
	size_t skip = 0;
	bool truncated = l->truncated;

	acct_frame_init(&fr, l->n);
	for (size_t i = l->n; i-- > 0;) {
		size_t sz = acct_frame_put(&fr, i, &l->v[i]);

		if (fr.bytes + sz > ACCT_BUDGET) {
			skip = i + 1;
			truncated = true;
			break;
		}
		fr.bytes += sz;
		fr.n++;
	}
	acct_frame_send(r, &fr, skip, truncated, false);
	acct_frame_release(&fr);
}

/* A page, in as many frames as it takes; more: another page follows. */
static void acct_send_page(struct acct_run *r, const struct store_acct_list *l, bool more)
{
	struct acct_frame fr;
	size_t from = 0;
	bool truncated = !r->sent && l->truncated;

	acct_frame_init(&fr, l->n);
	for (size_t i = 0; i < l->n; i++) {
		size_t sz = acct_frame_put(&fr, i, &l->v[i]);

		if (fr.n && fr.bytes + sz > ACCT_BUDGET) {
			acct_frame_send(r, &fr, from, truncated, true);
			truncated = false;
			from = i;
		}
		fr.bytes += sz;
		fr.n++;
	}
	acct_frame_send(r, &fr, from, truncated, more);
	acct_frame_release(&fr);
}

static void acct_run_free(uv_handle_t *h)
{
	struct acct_run *r = h->data;

	free((char *)r->f.user);
	free((char *)r->f.team);
	free((char *)r->f.name);
	free((char *)r->f.states);
	free(r);
}

static void acct_run_end(struct acct_run *r)
{
	server_answered(r->c);
	if (r->stream)
		uv_close((uv_handle_t *)&r->wait, acct_run_free);
	else
		acct_run_free((uv_handle_t *)&r->wait);
}

static void on_acct(void *arg, int status, const struct store_acct_list *l);

/* The next page, unless the client has not read enough of the last ones. */
static void acct_next(uv_timer_t *h)
{
	struct acct_run *r = h->data;

	if (r->c->dead) {
		acct_run_end(r);
		return;
	}
	if (server_queued(r->c) > ACCT_QUEUE_MAX) {
		uv_timer_start(&r->wait, acct_next, ACCT_WAIT_MS, 0);
		return;
	}
	r->f.limit = r->left < ACCT_PAGE ? (uint32_t)r->left : ACCT_PAGE;
	store_acct_read(r->d->store, &r->f, on_acct, r);
}

static void on_acct(void *arg, int status, const struct store_acct_list *l)
{
	struct acct_run *r = arg;
	bool more;

	if (status < 0 || l->error) {
		server_send_error(r->c, r->id, status < 0 ? status : HPQ_ESTORAGE,
				  l && l->error ? l->error : "cannot read the accounting records");
		acct_run_end(r);
		return;
	}
	if (!r->stream) {
		acct_send_whole(r, l);
		acct_run_end(r);
		return;
	}
	if (r->left != UINT64_MAX)
		r->left -= l->n;
	more = l->more && r->left > 0;
	acct_send_page(r, l, more);
	if (!more) {
		acct_run_end(r);
		return;
	}
	r->f.from = l->next;
	r->f.newest = 0;
	acct_next(&r->wait);
}

int req_acct(struct req *q)
{
	const Hpq__AcctRequest *m = q->env->acct;
	struct store_acct_filter f = { 0 };
	struct acct_run *r;
	char *states = NULL;
	size_t len = 2;

	if (m->until && m->until <= m->since)
		return state_errf(q->e, HPQ_EINVAL, "--until must be later than --since");
	if (m->limit > ACCT_MAX_LIMIT && (!m->stream || q->c->pseudo))
		return state_errf(q->e, HPQ_EINVAL, "--limit %u is more than %d", m->limit,
				  ACCT_MAX_LIMIT);
	for (size_t i = 0; i < m->n_states; i++) {
		int s = state_task_state_parse(m->states[i]);

		if (s < 0 || !task_state_final((enum task_state)s))
			return state_errf(q->e, HPQ_EINVAL, "'%.32s' is not the state of an ended "
					  "task: use COMPLETED, FAILED, CANCELLED, TIMEOUT or "
					  "OUT_OF_MEMORY", m->states[i]);
		len += strlen(state_task_state((enum task_state)s)) + 1;
	}
	if (m->n_states) {
		states = xmalloc(len + 1);
		strcpy(states, ",");
		for (size_t i = 0; i < m->n_states; i++) {
			strcat(states, state_task_state(
				(enum task_state)state_task_state_parse(m->states[i])));
			strcat(states, ",");
		}
	}
	f.since_ms = m->since;
	f.until_ms = m->until;
	f.user = *m->user ? m->user : NULL;
	f.team = *m->team ? m->team : NULL;
	f.name = *m->name ? m->name : NULL;
	f.states = states;
	f.limit = m->limit ? m->limit : ACCT_DEFAULT_LIMIT;
	r = xcalloc(1, sizeof(*r));
	r->d = q->d;
	r->c = q->c;
	r->id = q->id;
	r->wait.data = r;
	server_awaits(q->c);
	if (m->stream && !q->c->pseudo) {
		r->stream = true;
		uv_timer_init(q->d->loop, &r->wait);
		/* What ends from now on is not part of this list: the pages
		 * are read one by one, and stay one list. */
		if (!f.until_ms)
			f.until_ms = hpq_now_ms() + 1;
		r->left = m->limit ? m->limit : UINT64_MAX;
		f.forward = true;
		f.newest = m->limit;
		f.user = f.user ? xstrdup(f.user) : NULL;
		f.team = f.team ? xstrdup(f.team) : NULL;
		f.name = f.name ? xstrdup(f.name) : NULL;
		r->f = f;
		acct_next(&r->wait);
		return 0;
	}
	store_acct_read(q->d->store, &f, on_acct, r);
	free(states);
	return 0;
}

/* ---------------------------------------------------------------- hpq versions */

/* The catalogue is read at each request: small, and an edit shows at once. */
int req_versions(struct req *q)
{
	struct hpqd *d = q->d;
	struct state *st = &d->state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__VersionsReply rep = HPQ__VERSIONS_REPLY__INIT;
	Hpq__Release *rel = NULL, **relp = NULL;
	Hpq__NodeVersion *nv = NULL, **nvp = NULL;
	struct hpq_catalog cat;
	char err[512] = "";
	time_t now = time(NULL);
	size_t n = 0;

	if (hpq_catalog_load(config_catalog(&d->cfg), &cat, err, sizeof(err)) == 0) {
		rel = xcalloc(cat.n, sizeof(*rel));
		relp = xcalloc(cat.n, sizeof(*relp));
		for (size_t i = 0; i < cat.n; i++) {
			const struct hpq_release *r = &cat.v[i];

			hpq__release__init(&rel[i]);
			rel[i].version = (char *)r->version;
			rel[i].released = (char *)r->released;
			rel[i].end_of_standard_support = (char *)r->standard_end;
			rel[i].end_of_extended_support = (char *)r->extended_end;
			rel[i].status = (char *)hpq_release_status(r, now);
			rel[i].protocol = r->protocol;
			rel[i].protocol_min = r->protocol_min;
			rel[i].schema = r->schema;
			rel[i].default_ = r->is_default;
			relp[i] = &rel[i];
		}
		rep.n_releases = cat.n;
		rep.releases = relp;
	}
	rep.catalog = (char *)config_catalog(&d->cfg);
	rep.catalog_error = err;
	rep.daemon_version = (char *)HPQ_VERSION;
	rep.daemon_protocol = HPQ_PROTOCOL_VERSION;
	rep.daemon_schema = (uint32_t)store_schema_latest();
	if (st->nnodes) {
		nv = xcalloc(st->nnodes, sizeof(*nv));
		nvp = xcalloc(st->nnodes, sizeof(*nvp));
	}
	for (uint32_t i = 0; i < st->nnodes; i++) {
		const struct node *nd = st->nodes[i];

		if (!nd)
			continue;
		hpq__node_version__init(&nv[n]);
		nv[n].node = nd->name;
		nv[n].version = nd->software_version ? nd->software_version : (char *)"";
		nv[n].connected = nd->connected;
		nvp[n] = &nv[n];
		n++;
	}
	rep.n_agents = n;
	rep.agents = nvp;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_VERSIONS_REPLY;
	env.versions_reply = &rep;
	server_send(q->c, &env);
	free(rel);
	free(relp);
	free(nv);
	free(nvp);
	hpq_catalog_release(&cat);
	return 0;
}

/* ---------------------------------------------------------------- hpq upgrade-check */

struct upgrade_req {
	struct hpqd *d;
	struct conn *c;
	uint64_t id;
	struct hpq_catalog cat;
	const struct hpq_release *target;
};

/* The checks run once the newest backup is read, on the state as it is
 * then. */
static void on_upgrade_backup(void *arg, int status, const struct store_backup_info *b)
{
	struct upgrade_req *r = arg;
	struct hpqd *d = r->d;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__UpgradeCheckReply rep = HPQ__UPGRADE_CHECK_REPLY__INIT;
	Hpq__UpgradeCheck *chk, **chkp;
	struct upgrade_result *res = NULL;
	struct statvfs vfs;
	struct upgrade_ctx x = {
		.st = &d->state,
		.cfg = &d->cfg,
		.dp = d->deprecations,
		.cat = &r->cat,
		.target = r->target,
		.daemon_version = HPQ_VERSION,
		.schema = (uint32_t)store_schema_latest(),
		.client_version = r->c->software ? r->c->software : "",
		.client_protocol = r->c->protocol,
		.backup = b,
		.free_bytes = UINT64_MAX,
		.now_ms = hpq_now_ms(),
	};

	if (status < 0) {
		server_send_error(r->c, r->id, status, b && b->error ? b->error
					      : "cannot read the backups' record");
		goto out;
	}
	if (statvfs(d->cfg.state_dir, &vfs) == 0)
		x.free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	upgrade_run(&x, &res);
	chk = xcalloc(upgrade_ncheck, sizeof(*chk));
	chkp = xcalloc(upgrade_ncheck, sizeof(*chkp));
	for (size_t i = 0; i < upgrade_ncheck; i++) {
		hpq__upgrade_check__init(&chk[i]);
		chk[i].id = (char *)upgrade_checks[i].id;
		chk[i].description = (char *)upgrade_checks[i].description;
		chk[i].status = (char *)upgrade_status_name(res[i].status);
		chk[i].n_affected = res[i].naffected;
		chk[i].affected = res[i].affected;
		chk[i].recommendation = res[i].recommendation ? res[i].recommendation : (char *)"";
		chkp[i] = &chk[i];
	}
	rep.daemon_version = (char *)HPQ_VERSION;
	rep.target = (char *)r->target->version;
	rep.catalog = (char *)config_catalog(&d->cfg);
	rep.n_checks = upgrade_ncheck;
	rep.checks = chkp;
	env.id = r->id;
	env.body_case = HPQ__ENVELOPE__BODY_UPGRADE_CHECK_REPLY;
	env.upgrade_check_reply = &rep;
	server_send(r->c, &env);
	free(chk);
	free(chkp);
	upgrade_results_free(res);
out:
	server_answered(r->c);
	hpq_catalog_release(&r->cat);
	free(r);
}

int req_upgrade_check(struct req *q)
{
	const Hpq__UpgradeCheckRequest *m = q->env->upgrade_check;
	struct hpqd *d = q->d;
	struct upgrade_req *r;
	struct hpq_catalog cat;
	const struct hpq_release *t;
	char err[512] = "", list[256] = "";
	size_t used = 0;

	if (hpq_catalog_load(config_catalog(&d->cfg), &cat, err, sizeof(err)) < 0)
		return state_errf(q->e, HPQ_EINVAL, "the release catalogue ([versions] catalog): "
				  "%s", err);
	t = *m->target ? hpq_catalog_find(&cat, m->target) : hpq_catalog_default(&cat);
	if (!t) {
		for (size_t i = 0; i < cat.n && used < sizeof(list); i++)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
						 i ? ", " : "", cat.v[i].version);
		state_errf(q->e, HPQ_ENOTFOUND, "unknown target release '%.40s': the catalogue "
			   "%s lists %s", m->target, config_catalog(&d->cfg), list);
		hpq_catalog_release(&cat);
		return HPQ_ENOTFOUND;
	}
	if (hpq_version_cmp(t->version, HPQ_VERSION) < 0) {
		state_errf(q->e, HPQ_EINVAL, "target %s is older than this hpqd (%s): hpq "
			   "upgrades, it does not go back", t->version, HPQ_VERSION);
		hpq_catalog_release(&cat);
		return HPQ_EINVAL;
	}
	r = xcalloc(1, sizeof(*r));
	r->d = d;
	r->c = q->c;
	r->id = q->id;
	r->cat = cat;
	r->target = t;
	server_awaits(q->c);
	store_backup_latest(d->store, on_upgrade_backup, r);
	return 0;
}
