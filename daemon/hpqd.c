/*
 * hpqd.c: bringing the daemon's core up and down (hpqd.h), apart from
 * main.c so that the unit tests and the fuzzer can run a real core. This
 * is the one file that knows every module: it starts each, wires the
 * server to the router, and stops each in order.
 *
 * Stopping is the one part with an order to it: close the listeners and
 * stop reading (no new work), commit what is recorded and let every
 * completion send its reply, then flush and close the connections, close
 * every module's handles, and close the store. The last steps run from a
 * zero timer rather than from the store's completion itself, because the
 * store cannot be closed from inside its own callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "agentlink.h"
#include "autoscale.h"
#include "ca.h"
#include "deprecation.h"
#include "dispatch.h"
#include "events.h"
#include "error.h"
#include "groups.h"
#include "hpqd.h"
#include "log.h"
#include "logs.h"
#include "metrics.h"
#include "path.h"
#include "plan.h"
#include "repair.h"
#include "retention.h"
#include "router.h"
#include "server.h"
#include "store.h"
#include "trust.h"
#include "usage.h"
#include "xalloc.h"

/*
 * The store turned degraded (a full or failing disk) or writable again
 * (store.h); it logs the change itself. While degraded the router refuses
 * changes and the dispatcher starts nothing; once writable, the tasks that
 * waited meanwhile get a dispatcher cycle.
 */
static void on_store_change(void *arg)
{
	struct hpqd *d = arg;

	if (!store_degraded(d->store))
		d->state.dirty = true;
	if (d->on_store)
		d->on_store(d);
}

/* A node's connection outlived its certificate (server.h): recorded as a
 * breach, since nothing renewed it in time. */
static void on_cert_lapsed(void *arg, struct conn *c, const char *why)
{
	struct hpqd *d = arg;
	const char *node = c->cert.cn;

	state_security(&d->state, node, NULL, node, "%s: %s", c->peer, why);
}

/* hpqd's own certificate, renewed while it runs once a third of its life
 * is left (ca.h): new connections get the new one, open ones keep
 * theirs. A daemon that ran past its certificate's life would refuse
 * every agent and client over TCP. */
static void on_cert_timer(uv_timer_t *h)
{
	struct hpqd *d = container_of(h, struct hpqd, cert_timer);
	char err[512];
	bool renewed;

	if (ca_renew_server(d->ca, &d->cfg, &renewed, err, sizeof(err)) < 0) {
		log_err("cannot renew hpqd's server certificate: %s (trying again in %llu s)",
			  err, (unsigned long long)ca_renew_every_ms(&d->cfg) / 1000);
		return;
	}
	if (renewed)
		server_set_tls(d->server, ca_server_tls(d->ca));
}

/* A state directory hpqd cannot write is refused at start, not at the
 * first change: a read-only mount, or no write permission. */
static int check_state_dir(const char *dir, char *err, size_t errlen)
{
	struct statvfs v;

	if (statvfs(dir, &v) == 0 && (v.f_flag & ST_RDONLY))
		return hpq_errf(err, errlen, HPQ_ESTORAGE, "the state directory '%s' is on a "
				"read-only file system: hpqd keeps its database there and must "
				"write it; remount it read-write or choose another state_dir", dir);
	if (access(dir, W_OK | X_OK) < 0)
		return hpq_errf(err, errlen, HPQ_ESTORAGE, "the state directory '%s' is not "
				"writable by hpqd (uid %u): %s; hpqd keeps its database there and "
				"must write it", dir, (unsigned)geteuid(), strerror(errno));
	return 0;
}

static int make_dir(const char *path, char *err, size_t errlen)
{
	char *p = xstrdup(path);
	int r = 0;

	for (char *s = p + 1; ; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			r = -errno;
			snprintf(err, errlen, "cannot create '%s': %s", p, strerror(errno));
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return r;
}

/* Two daemons on one database would each believe they own it. */
static int lock_state_dir(const char *dir, char *err, size_t errlen)
{
	char *path = NULL;
	int fd, r;

	xasprintf(&path, "%s/hpqd.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
	} else if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "another hpqd uses the state directory '%s'", dir);
		else
			snprintf(err, errlen, "cannot lock '%s': %s", path, strerror(errno));
		close(fd);
	} else {
		r = fd;
	}
	free(path);
	return r;
}

/* Writes a new random cluster id to path, atomically and durably. */
static int cluster_id_create(const char *path, char *id, char *err, size_t errlen)
{
	uint8_t raw[HPQD_CLUSTER_ID_LEN / 2];
	char line[HPQD_CLUSTER_ID_LEN + 2];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		int r = -errno;

		snprintf(err, errlen, "cannot make a cluster id: %s", strerror(errno));
		return r;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(id + 2 * i, 3, "%02x", raw[i]);
	snprintf(line, sizeof(line), "%s\n", id);
	return hpq_path_write_file(path, line, strlen(line), 0600, err, errlen);
}

/*
 * The cluster id, <state_dir>/cluster-id: 16 random bytes in hex, made at
 * the first start and read at every later one. Agents name task log files
 * after it (docs/decisions.md, "Node agent"), so a new state directory,
 * whose task ids start again at 1, never reaches an older cluster's logs.
 */
static int cluster_id_load(const char *dir, char *id, char *err, size_t errlen)
{
	char *path = NULL, buf[HPQD_CLUSTER_ID_LEN + 2];
	ssize_t n;
	int fd, r = 0;

	xasprintf(&path, "%s/cluster-id", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		r = cluster_id_create(path, id, err, errlen);
		if (r == 0)
			log_notice("made the cluster id %s ('%s')", id, path);
		goto out;
	}
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != HPQD_CLUSTER_ID_LEN + 1 || buf[HPQD_CLUSTER_ID_LEN] != '\n' ||
	    strspn(buf, "0123456789abcdef") != HPQD_CLUSTER_ID_LEN) {
		r = HPQ_EINVAL;
		snprintf(err, errlen, "'%s' does not hold a cluster id (32 lower-case hex digits "
			 "and a newline): restore it from a backup, or remove it to make a new "
			 "one (hpq logs then no longer finds the output of earlier tasks)", path);
		goto out;
	}
	memcpy(id, buf, HPQD_CLUSTER_ID_LEN);
	id[HPQD_CLUSTER_ID_LEN] = '\0';
out:
	free(path);
	return r;
}

/* hpqd.conf's deprecated keys (deprecation.h): the file is their user. */
static void note_deprecated_keys(struct hpqd *d)
{
	for (size_t i = 0; i < DEPRECATED_COUNT; i++) {
		const struct deprecation *dep = &deprecation_table[i];
		char *full = NULL;

		if (!dep->section)
			continue;
		xasprintf(&full, "%s.%s", dep->section, dep->key);
		for (size_t k = 0; k < d->cfg.nfile_keys; k++)
			if (!strcmp(d->cfg.file_keys[k], full))
				deprecation_note(d->deprecations, (enum deprecation_id)i,
						 d->cfg.file, hpq_now_ms());
		free(full);
	}
}

int hpqd_init(struct hpqd *d, uv_loop_t *loop, const struct config *cfg, unsigned flags,
	      char *err, size_t errlen)
{
	char *path = NULL;
	int r;

	memset(d, 0, sizeof(*d));
	d->lock_fd = -1;
	d->loop = loop;
	config_copy(&d->cfg, cfg);
	d->uid = getuid();
	uv_update_time(loop);
	d->start_mono = uv_now(loop);

	r = make_dir(cfg->state_dir, err, errlen);
	if (r < 0)
		goto fail;
	r = check_state_dir(cfg->state_dir, err, errlen);
	if (r < 0)
		goto fail;
	r = lock_state_dir(cfg->state_dir, err, errlen);
	if (r < 0)
		goto fail;
	d->lock_fd = r;
	r = cluster_id_load(cfg->state_dir, d->cluster_id, err, errlen);
	if (r < 0)
		goto fail;
	/* The cluster CA and the server certificate, made at the first start. */
	r = ca_open(cfg, d->cluster_id, &d->ca, err, errlen);
	if (r < 0)
		goto fail;
	xasprintf(&path, "%s/hpq.db", cfg->state_dir);
	r = store_open(path, flags, &d->store, err, errlen);
	if (r < 0)
		goto fail;
	state_init(&d->state, d->store);
	plans_configure(&d->state, &d->cfg);
	d->state.max_pending_tasks = cfg->limits.max_pending_tasks;
	d->state.max_task_bytes = cfg->limits.max_task_bytes;
	d->state.keep_finished_ms = (int64_t)cfg->keep_finished_s * 1000;
	r = state_load(&d->state, err, errlen);
	if (r < 0)
		goto fail;
	r = deprecation_open(d->store, &d->deprecations, err, errlen);
	if (r < 0)
		goto fail;
	note_deprecated_keys(d);
	/* Before the storage thread: it reads its rows as state_load did. */
	r = autoscale_load(d, err, errlen);
	if (r < 0)
		goto fail;
	r = store_start(d->store, loop, on_store_change, d);
	if (r < 0) {
		snprintf(err, errlen, "cannot start the storage thread: %s", uv_strerror(r));
		goto fail;
	}
	d->groups = groups_new(GROUPS_TTL_MS, GROUPS_MAX_USERS, NULL, NULL);
	d->router = router_new();
	server_new(&(struct server_params){
			   .loop = loop,
			   .store = d->store,
			   .cfg = &d->cfg,
			   .uid = d->uid,
			   .tls = cfg->insecure ? NULL : ca_server_tls(d->ca),
			   .groups = d->groups,
			   .on_message = router_deliver,
			   .on_lapsed = on_cert_lapsed,
			   .arg = d,
		   }, &d->server);
	/* None can fail in libuv short of a broken loop. */
	if (uv_timer_init(loop, &d->stop_timer) < 0 || uv_timer_init(loop, &d->cert_timer) < 0 ||
	    (!cfg->insecure && uv_timer_start(&d->cert_timer, on_cert_timer,
					      ca_renew_every_ms(cfg), ca_renew_every_ms(cfg)) < 0) ||
	    dispatch_init(d) < 0 ||
	    agentlink_init(d) < 0 || events_init(d) < 0 || usage_init(d) < 0 ||
	    logs_init(d) < 0 || repair_init(d) < 0 || retention_init(d) < 0 ||
	    autoscale_init(d) < 0)
		hpq_fatal("cannot set up the loop's handles");
	free(path);
	return 0;
fail:
	free(path);
	autoscale_close(d);
	ca_free(d->ca);
	d->ca = NULL;
	deprecation_close(d->deprecations);
	d->deprecations = NULL;
	store_close(d->store);
	d->store = NULL;
	state_release(&d->state);
	config_release(&d->cfg);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	d->lock_fd = -1;
	return r;
}

static void finish_stop(uv_timer_t *h)
{
	struct hpqd *d = container_of(h, struct hpqd, stop_timer);

	metrics_stop(d);        /* joins its thread; waiting scrapes get 503 */
	logs_close(d);
	repair_close(d);
	retention_close(d);
	server_close_all(d->server);
	dispatch_close(d);
	agentlink_close(d);
	uv_close((uv_handle_t *)&d->stop_timer, NULL);
	uv_close((uv_handle_t *)&d->cert_timer, NULL);
	usage_close(d);         /* its last rows go into the final commit */
	deprecation_close(d->deprecations); /* and the uses not written yet */
	d->deprecations = NULL;
	store_close(d->store);
	d->store = NULL;
	events_close(d);        /* after the store: its last completions push events */
	autoscale_close(d);     /* after the store: its completions start commands */
	log_info("stopped");
	if (d->on_stop)
		d->on_stop(d);
}

static void on_drained(void *arg, int status)
{
	struct hpqd *d = arg;

	uv_timer_start(&d->stop_timer, finish_stop, 0, 0);
}

void hpqd_stop(struct hpqd *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("stopping: finishing %zu pending commits", store_inflight(d->store));
	if (d->server)
		server_quiesce(d->server);
	/* Changes waiting for room on a full disk get one last try. */
	store_finish(d->store);
	store_after_commit(d->store, on_drained, d);
	store_submit(d->store);
}

void hpqd_release(struct hpqd *d)
{
	state_release(&d->state);
	server_free(d->server);
	d->server = NULL;
	router_free(d->router);
	d->router = NULL;
	groups_free(d->groups);
	d->groups = NULL;
	ca_free(d->ca);
	d->ca = NULL;
	config_release(&d->cfg);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	d->lock_fd = -1;
}
