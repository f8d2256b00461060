/*
 * main.c: hpqd, the queue daemon. Reads flags and the config file, becomes
 * a daemon unless --foreground, brings up the core (hpqd.c), listens,
 * tells systemd it is ready, and runs the loop until SIGTERM or SIGINT
 * stop it gracefully. Read main() top to bottom: that is the startup.
 *
 * Daemonizing keeps the parent until the child is serving (or has failed)
 * and exits with the child's status and message, so `hpqd && hpq list`
 * works and a bad config fails where it was typed. Before it, every
 * relative path (state directory, socket, config file) is made absolute,
 * since the daemon works in "/", and the log file is opened, so that a
 * path that cannot be used fails on the terminal too. The daemon logs to
 * hpqd.log in the state directory with dated lines and keeps its pid in
 * hpqd.pid there while it runs. Under systemd (Type=notify, --foreground)
 * neither is needed: the journal has the log, systemd the pid.
 *
 * systemd integration is done by hand, without libsystemd (common/notify.c,
 * shared with the agent): READY=1, RELOADING=1 then READY=1 on SIGHUP,
 * WATCHDOG=1 (every half $WATCHDOG_USEC, from the loop, so a stuck loop
 * is noticed) and STOPPING=1 are datagrams to $NOTIFY_SOCKET; so is
 * STATUS= when the state store turns degraded (a full or failing disk)
 * or writable again.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <munge.h>
#include <uv.h>

#include "backup.h"
#include "config-check.h"
#include "deprecation.h"
#include "error.h"
#include "hpq.h"
#include "ca.h"
#include "catalog.h"
#include "hpqd.h"
#include "log.h"
#include "parse.h"
#include "metrics.h"
#include "notify.h"
#include "path.h"
#include "repair.h"
#include "server.h"
#include "store.h"
#include "xalloc.h"

#define EXIT_USAGE 2

static const char usage_text[] =
	"usage: hpqd [options]\n"
	"\n"
	"The hpq queue daemon.\n"
	"\n"
	"  -c, --config FILE          read settings from FILE (INI; see hpqd(8))\n"
	"  -d, --state-dir DIR        state directory (default " HPQ_DEFAULT_STATE_DIR ")\n"
	"  -l, --listen HOST:PORT     TCP address for agents and remote clients\n"
	"                             (default 0.0.0.0:7420; port 0 picks one; \"\" none)\n"
	"  -s, --socket PATH          Unix socket for local clients\n"
	"                             (default " HPQ_DEFAULT_SOCKET "; \"\" none)\n"
	"      --insecure             plain TCP, trusting the user or node a peer names:\n"
	"                             no TLS, no MUNGE (tests and demos on loopback only)\n"
	"  -L, --log-level LEVEL      error, warning, notice, info (default) or debug\n"
	"      --heartbeat DURATION   heartbeat interval for agents (default 10s)\n"
	"      --unreachable-after N  heartbeats missed before a node is lost (default 25)\n"
	"      --metrics HOST:PORT    serve Prometheus metrics at /metrics (default off)\n"
	"  -f, --foreground           do not daemonize; log to stderr (without it:\n"
	"                             to hpqd.log in the state directory)\n"
	"  -n, --check                check the settings, print them with where each\n"
	"                             value came from, and exit (1 if one is wrong)\n"
	"      --backup PATH          copy the state database to PATH (a new file),\n"
	"                             also while hpqd runs, and exit\n"
	"  -h, --help                 show this help\n"
	"  -V, --version              show the version\n";

enum { OPT_HEARTBEAT = 256, OPT_UNREACHABLE, OPT_METRICS, OPT_INSECURE, OPT_BACKUP };

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "state-dir", required_argument, NULL, 'd' },
	{ "listen", required_argument, NULL, 'l' },
	{ "socket", required_argument, NULL, 's' },
	{ "log-level", required_argument, NULL, 'L' },
	{ "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
	{ "unreachable-after", required_argument, NULL, OPT_UNREACHABLE },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "foreground", no_argument, NULL, 'f' },
	{ "check", no_argument, NULL, 'n' },
	{ "backup", required_argument, NULL, OPT_BACKUP },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static const char short_opts[] = "c:d:l:s:L:fnhV";

struct daemon_main {
	const char *backup_path;   /* --backup: copy the database there and exit */
	struct hpqd d;
	uv_loop_t loop;
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t watchdog;
	bool has_watchdog;
	const char *config_path;
	bool level_from_flag;
	char *port_path;
	char *pid_path;            /* daemonized: <state_dir>/hpqd.pid */
	int ready_fd;              /* daemonized: the parent waits on this */
	char options[16][48];      /* "section.key" of each setting an option gave */
	size_t noptions;
};

/* ---------------------------------------------------------------- systemd */

static void on_watchdog(uv_timer_t *h)
{
	notify_send("WATCHDOG=1");
}

static void start_watchdog(struct daemon_main *m)
{
	uint64_t us = notify_watchdog_usec(), every;

	if (!us)
		return;
	every = us / 2000;
	if (!every)
		every = 1;
	uv_timer_init(&m->loop, &m->watchdog);
	uv_timer_start(&m->watchdog, on_watchdog, every, every);
	m->has_watchdog = true;
}

/* ---------------------------------------------------------------- daemonizing */

/*
 * Forks twice (no controlling terminal ever again) and returns in the
 * grandchild with *ret_fd, on which it reports readiness, and standard
 * error on log_fd, the log file. The original process waits for that
 * report and exits with it.
 */
static void daemonize(const char *log_path, int log_fd, int *ret_fd)
{
	int pfd[2], fd;
	char buf[512];
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		fprintf(stderr, "hpqd: cannot make a pipe: %s\n", strerror(errno));
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "hpqd: cannot fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		/* The first byte is the status; the rest, if any, a message. */
		close(pfd[1]);
		n = read(pfd[0], buf, sizeof(buf) - 1);
		if (n <= 0) {
			fprintf(stderr, "hpqd: the daemon exited during startup; see %s\n",
				log_path);
			exit(1);
		}
		buf[n] = '\0';
		if (n > 1)
			fprintf(stderr, "hpqd: %s\n", buf + 1);
		exit((unsigned char)buf[0]);
	}
	close(pfd[0]);
	setsid();
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);
	umask(022);
	if (chdir("/") < 0)
		_exit(1);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	if (dup2(log_fd, STDERR_FILENO) < 0)
		_exit(1);
	close(log_fd);
	*ret_fd = pfd[1];
}

static void report_ready(struct daemon_main *m, int status, const char *msg)
{
	char buf[512];
	size_t n;

	if (m->ready_fd < 0)
		return;
	buf[0] = (char)status;
	n = (size_t)snprintf(buf + 1, sizeof(buf) - 1, "%s", msg ? msg : "");
	if (write(m->ready_fd, buf, n + 1) < 0)
		log_debug("cannot report to the parent: %s", strerror(errno));
	close(m->ready_fd);
	m->ready_fd = -1;
}

/* ---------------------------------------------------------------- signals, stop */

static void on_stop_signal(uv_signal_t *h, int signum)
{
	struct daemon_main *m = h->data;

	log_notice("%s: shutting down", strsignal(signum));
	notify_send("STOPPING=1");
	hpqd_stop(&m->d);
}

/* SIGHUP: re-read the config file's log level and [repair] settings (what
 * changes live; man/hpqd.8). */
static void on_hup(uv_signal_t *h, int signum)
{
	struct daemon_main *m = h->data;
	struct config c;
	char err[256];

	/* Like the agent: systemd sees the reload begin and end, also when
	 * there is nothing to re-read. */
	notify_send("RELOADING=1");
	if (!m->config_path) {
		log_info("SIGHUP: no config file to re-read");
		notify_send("READY=1");
		return;
	}
	config_init(&c);
	if (config_load(&c, m->config_path, err, sizeof(err)) < 0) {
		log_warn("SIGHUP: %s; keeping the current settings", err);
	} else {
		if (!m->level_from_flag)
			hpq_log_set_level(c.log_level);
		repair_reload(&m->d, &c);
		log_notice("SIGHUP: log level and [repair] re-read from %s", m->config_path);
	}
	config_release(&c);
	notify_send("READY=1");
}

/* STATUS= for systemd (what `systemctl status hpqd` shows): whether the
 * state store is degraded, a full or failing disk, and why (store.h). */
static void notify_store(struct hpqd *d)
{
	struct store_health h;
	char buf[640];

	store_health(d->store, &h);
	if (h.state == STORE_OK)
		snprintf(buf, sizeof(buf), "STATUS=state store writable: accepting changes");
	else
		snprintf(buf, sizeof(buf), "STATUS=degraded: %s; serving reads, refusing changes",
			 h.problem);
	notify_send(buf);
}

static void on_core_stopped(struct hpqd *d)
{
	struct daemon_main *m = container_of(d, struct daemon_main, d);

	uv_close((uv_handle_t *)&m->sigterm, NULL);
	uv_close((uv_handle_t *)&m->sigint, NULL);
	uv_close((uv_handle_t *)&m->sighup, NULL);
	if (m->has_watchdog)
		uv_close((uv_handle_t *)&m->watchdog, NULL);
}

/* hpqd.port, hpqd.pid: one number, replaced atomically. */
static int write_number_file(const char *path, int number)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", number);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		int r = -errno;

		unlink(tmp);
		return r;
	}
	return 0;
}

/* ---------------------------------------------------------------- flags */

/* config_set for an option, remembered for --check's sources. */
static int flag_set(struct daemon_main *m, struct config *cfg, const char *section,
		    const char *key, const char *value, char *err, size_t errlen)
{
	int r = config_set(cfg, section, key, value, err, errlen);

	if (r == 0 && m->noptions < sizeof(m->options) / sizeof(m->options[0]))
		snprintf(m->options[m->noptions++], sizeof(m->options[0]), "%s.%s", section, key);
	return r;
}

static int parse_flags(int argc, char **argv, struct config *cfg, struct daemon_main *m,
		       bool *ret_check)
{
	char err[256];
	int c, r;

	/* The config file first, so that flags override it whatever their order. */
	for (optind = 1; (c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1;) {
		if (c == '?')
			return EXIT_USAGE;
		if (c == 'c')
			m->config_path = optarg;
	}
	if (optind < argc) {
		fprintf(stderr, "hpqd: unexpected argument '%s'\n%s", argv[optind], usage_text);
		return EXIT_USAGE;
	}
	if (m->config_path && config_load(cfg, m->config_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "hpqd: %s\n", err);
		return 1;
	}
	for (optind = 1; (c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1;) {
		r = 0;
		switch (c) {
		case 'c':
			break;
		case 'd':
			r = flag_set(m, cfg, "hpqd", "state_dir", optarg, err, sizeof(err));
			break;
		case 'l':
			r = flag_set(m, cfg, "hpqd", "listen", optarg, err, sizeof(err));
			break;
		case 's':
			r = flag_set(m, cfg, "hpqd", "socket", optarg, err, sizeof(err));
			break;
		case 'L':
			r = flag_set(m, cfg, "hpqd", "log_level", optarg, err, sizeof(err));
			m->level_from_flag = true;
			break;
		case OPT_HEARTBEAT:
			r = flag_set(m, cfg, "agents", "heartbeat", optarg, err, sizeof(err));
			break;
		case OPT_UNREACHABLE:
			r = flag_set(m, cfg, "agents", "unreachable_after", optarg, err,
				     sizeof(err));
			break;
		case OPT_METRICS:
			r = flag_set(m, cfg, "hpqd", "metrics", optarg, err, sizeof(err));
			break;
		case OPT_INSECURE:
			cfg->insecure = true;
			break;
		case 'f':
			cfg->foreground = true;
			break;
		case 'n':
			*ret_check = true;
			break;
		case OPT_BACKUP:
			m->backup_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			printf("hpqd %s (protocol %d, schema %d)\n", HPQ_VERSION,
			       HPQ_PROTOCOL_VERSION, store_schema_latest());
			exit(0);
		default:
			return EXIT_USAGE;
		}
		if (r < 0) {
			fprintf(stderr, "hpqd: %s\n", err);
			return EXIT_USAGE;
		}
	}
	return 0;
}

/* [repair] and [repair.actions] (daemon/repair.c), for --check. */
static void print_repair(const struct config *c)
{
	const struct repair_config *r = &c->repair;
	char wa[32], wd[32], to[32];

	printf("\n[repair]\nenabled = %s\nwait_accelerator = %s\nwait_default = %s\n"
	       "command = %s\ntimeout = %s\nhealthy_streak = %u\nmax_unhealthy_percent = %u\n"
	       "max_parallel = %u\n", r->enabled ? "yes" : "no",
	       hpq_format_duration(r->wait_accelerator_ms / 1000, wa, sizeof(wa)),
	       hpq_format_duration(r->wait_default_ms / 1000, wd, sizeof(wd)), r->command,
	       hpq_format_duration(r->timeout_ms / 1000, to, sizeof(to)), r->healthy_streak,
	       r->max_unhealthy_percent, r->max_parallel);
	if (r->nactions)
		printf("\n[repair.actions]\n");
	for (size_t i = 0; i < r->nactions; i++)
		printf("%s = %s\n", r->action_reasons[i], r->action_values[i]);
}

/* [limits] (server.c, router.c, task.c), for --check. */
static void print_limits(const struct config *c)
{
	const struct limits_config *l = &c->limits;
	char he[32], rd[32], id[32], wr[32], li[32];

	printf("\n[limits]\nhello_timeout = %s\nread_timeout = %s\nidle_timeout = %s\n"
	       "write_timeout = %s\nmax_connections = %u\nmax_connections_per_user = %u\n"
	       "max_unauthenticated_per_address = %u\nmax_inflight = %u\n"
	       "max_write_queue = %llu\nlog_interval = %s\nmax_pending_tasks = %u\n"
	       "max_task_bytes = %llu\nrate = %u\nburst = %u\nexempt_admins = %s\n",
	       hpq_format_duration(l->hello_timeout_ms / 1000, he, sizeof(he)),
	       hpq_format_duration(l->read_timeout_ms / 1000, rd, sizeof(rd)),
	       hpq_format_duration(l->idle_timeout_ms / 1000, id, sizeof(id)),
	       hpq_format_duration(l->write_timeout_ms / 1000, wr, sizeof(wr)),
	       l->max_connections, l->max_connections_per_user,
	       l->max_unauthenticated_per_address, l->max_inflight,
	       (unsigned long long)l->max_write_queue,
	       hpq_format_duration(l->log_interval_ms / 1000, li, sizeof(li)),
	       l->max_pending_tasks, (unsigned long long)l->max_task_bytes, l->rate,
	       l->burst, l->exempt_admins ? "yes" : "no");
}

/* [autoscale.POOL] (daemon/autoscale.c), for --check: one per pool. */
static void print_autoscale(const struct config *c)
{
	char lt[32], it[32], ml[32], mem[32];

	for (size_t i = 0; i < c->nautoscale; i++) {
		const struct autoscale_config *a = &c->autoscale[i];

		printf("\n[autoscale.%s]\nmin_nodes = %u\nmax_nodes = %u\ngpus = %lld\n"
		       "cpus = %lld\nmem = %s\nlabels = ", a->pool, a->min_nodes, a->max_nodes,
		       (long long)a->tmpl.gpus, (long long)a->tmpl.cpus,
		       hpq_format_size_mib((uint64_t)a->tmpl.mem, mem, sizeof(mem)));
		for (size_t k = 0; k < a->nlabels; k++)
			printf("%s%s", k ? "," : "", a->labels[k]);
		printf("\nprovision_command = %s\ndeprovision_command = %s\nlaunch_timeout = %s\n"
		       "idle_timeout = %s\nmax_node_lifetime = %s\nconsolidation = %s\n"
		       "disruption_budget = %u%s\n", a->provision_command, a->deprovision_command,
		       hpq_format_duration(a->launch_timeout_ms / 1000, lt, sizeof(lt)),
		       hpq_format_duration(a->idle_timeout_ms / 1000, it, sizeof(it)),
		       a->max_lifetime_ms
			       ? hpq_format_duration(a->max_lifetime_ms / 1000, ml, sizeof(ml))
			       : "off",
		       a->consolidation ? "on" : "off", a->budget, a->budget_percent ? "%" : "");
	}
}

static void print_config(const struct config *c)
{
	static const char *const levels[] = { "emerg", "alert", "crit", "error", "warning",
					      "notice", "info", "debug" };
	char retain[32];

	printf("[hpqd]\nlisten = %s\nsocket = %s\nstate_dir = %s\nlog_level = %s\n"
	       "metrics = %s\n\n", c->listen, c->socket_path, c->state_dir,
	       levels[c->log_level & 7], c->metrics);
	printf("[auth]\nmunge_socket = %s\nadmins = ", c->munge_socket);
	for (size_t i = 0; i < c->nadmins; i++)
		printf("%s%s", i ? "," : "", c->admins[i]);
	printf("\nallow_root_tasks = %s", c->allow_root_tasks ? "yes" : "no");
	printf("\nadmin_group = %s\nprivate_data = %s", c->admin_group,
	       c->private_data ? "yes" : "no");
	printf("\n\n[agents]\nheartbeat = %llus\nunreachable_after = %u\n",
	       (unsigned long long)(c->heartbeat_ms / 1000), c->unreachable_after);
	if (c->fence_after_ms)
		printf("fence_after = %llus\n", (unsigned long long)(c->fence_after_ms / 1000));
	else
		printf("fence_after = off\n");
	printf("\n[events]\nretain = %s\n",
	       hpq_format_duration(c->events_retain_s, retain, sizeof(retain)));
	printf("\n[tasks]\nkeep_finished = %s\n",
	       hpq_format_duration(c->keep_finished_s, retain, sizeof(retain)));
	printf("retain = %s\n", hpq_format_duration(c->tasks_retain_s, retain, sizeof(retain)));
	printf("\n[plans]\nreservable = %s\n", c->plans.reservable);
	printf("max_length = %s\n", hpq_format_duration(c->plans.max_length_s, retain, sizeof(retain)));
	printf("end_warning = %s\n",
	       hpq_format_duration(c->plans.end_warning_s, retain, sizeof(retain)));
	printf("offer_lifetime = %s\n",
	       hpq_format_duration(c->plans.offer_lifetime_s, retain, sizeof(retain)));
	printf("\n[compat]\nslurm_env = %s\n", c->slurm_env ? "yes" : "no");
	printf("\n[versions]\ncatalog = %s\n", c->versions_catalog);
	printf("\n[tls]\nserver_names = ");
	for (size_t i = 0; i < c->tls.nserver_names; i++)
		printf("%s%s", i ? "," : "", c->tls.server_names[i]);
	printf("\nnode_cert_lifetime = %s\n",
	       hpq_format_duration(c->tls.node_cert_lifetime_s, retain, sizeof(retain)));
	printf("server_cert_lifetime = %s\n",
	       hpq_format_duration(c->tls.server_cert_lifetime_s, retain, sizeof(retain)));
	printf("token_ttl = %s\n", hpq_format_duration(c->tls.token_ttl_s, retain, sizeof(retain)));
	print_repair(c);
	print_limits(c);
	print_autoscale(c);
}

/*
 * --check's report on who hpqd would trust (docs/security.md): TLS and its
 * CA (what ca.c would use, made nothing), whether the munged that proves
 * TCP clients answers (a credential made and decoded), and --insecure.
 * Lines go to f; returns the number of problems that would stop a start.
 */
static unsigned check_security(const struct config *cfg, FILE *f)
{
	munge_ctx_t ctx;
	munge_err_t e;
	char *cred = NULL;
	unsigned problems = 0;

	if (!*cfg->listen) {
		fprintf(f, "hpqd: auth: no TCP listener: the Unix socket only, where the "
			"kernel says who each peer is\n");
		return 0;
	}
	if (cfg->insecure) {
		fprintf(f, "hpqd: auth: --insecure: TCP on %s is plain and every peer is who it "
			"says it is, root included (tests and demos on loopback only)\n",
			cfg->listen);
		return 0;
	}
	fprintf(f, "hpqd: auth: TCP on %s is TLS 1.3; nodes prove themselves with "
		"certificates of the cluster CA, users with MUNGE\n", cfg->listen);
	if (ca_check(cfg, f) < 0)
		problems++;
	ctx = munge_ctx_create();
	if (!ctx)
		hpq_fatal("out of memory");
	e = munge_ctx_set(ctx, MUNGE_OPT_SOCKET, cfg->munge_socket);
	if (e == EMUNGE_SUCCESS)
		e = munge_encode(&cred, ctx, NULL, 0);
	if (e == EMUNGE_SUCCESS)
		e = munge_decode(cred, ctx, NULL, NULL, NULL, NULL);
	if (e == EMUNGE_SUCCESS)
		fprintf(f, "hpqd: auth: munged at %s answers\n", cfg->munge_socket);
	else
		fprintf(f, "hpqd: auth: munged at %s does not answer (%s): TCP clients would be "
			"refused until it does ([auth] munge_socket); agents and the Unix "
			"socket are not affected\n", cfg->munge_socket,
			munge_ctx_strerror(ctx) ? munge_ctx_strerror(ctx) : munge_strerror(e));
	free(cred);
	munge_ctx_destroy(ctx);
	return problems;
}

/*
 * --check: the settings hpqd would run with (paths absolute unless in the
 * foreground), each with where its value came from, and what is wrong
 * with them. Returns the exit status.
 */
/* --backup PATH: the state database, copied while hpqd may run (backup.h). */
static int backup(const struct config *cfg, const char *path)
{
	struct backup_result res;
	char err[512], *db;
	int r;

	xasprintf(&db, "%s/hpq.db", cfg->state_dir);
	r = backup_run(db, path, &res, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "hpqd: %s\n", err);
	else
	{
		printf("backed up %s to %s: schema version %d, %llu pages, %llu bytes\n", db, path,
		       res.schema, (unsigned long long)res.pages, (unsigned long long)res.bytes);
		if (!res.recorded)
			fprintf(stderr, "hpqd: warning: %s (hpq upgrade-check will not see this "
				"backup)\n", res.record_error);
	}
	free(db);
	return r < 0 ? 1 : 0;
}

/* --check: deprecated keys in the file are notes, not problems: hpqd
 * still reads them (and records their use for hpq upgrade-check). */
static void check_deprecated(const struct config *cfg, FILE *out)
{
	for (size_t i = 0; i < DEPRECATED_COUNT; i++) {
		const struct deprecation *d = &deprecation_table[i];

		if (!d->section)
			continue;
		for (size_t k = 0; k < cfg->nfile_keys; k++) {
			size_t ls = strlen(d->section);
			const char *f = cfg->file_keys[k];

			if (!strncmp(f, d->section, ls) && f[ls] == '.' && !strcmp(f + ls + 1, d->key))
				fprintf(out, "# deprecated: [%s] %s in %s (since %s, removed in %s): "
					"use %s\n", d->section, d->key, cfg->file, d->since,
					d->removed, d->instead);
		}
	}
}

/* --check: the release catalogue (hpq versions). Absent is a note, since
 * hpqd runs without it; present but malformed is a problem. */
static unsigned check_catalog(const struct config *cfg, FILE *out, FILE *problems)
{
	struct hpq_catalog cat;
	char err[512];

	const char *path = config_catalog(cfg);

	if (access(path, F_OK) < 0) {
		fprintf(out, "# versions: no catalogue at %s: hpq versions has no releases to "
			"show\n", path);
		return 0;
	}
	if (hpq_catalog_load(path, &cat, err, sizeof(err)) < 0) {
		fprintf(problems, "hpqd: [versions] catalog: %s\n", err);
		return 1;
	}
	fprintf(out, "# versions: %zu release%s in %s\n", cat.n, cat.n == 1 ? "" : "s", path);
	hpq_catalog_release(&cat);
	return 0;
}

static int check_config(struct daemon_main *m, struct config *cfg)
{
	const char *options[sizeof(m->options) / sizeof(m->options[0])];
	char err[512], *text = NULL;
	size_t len = 0;
	unsigned problems;
	FILE *saved, *f;

	if (!cfg->foreground && config_make_absolute(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "hpqd: %s\n", err);
		return 1;
	}
	/* print_config writes to stdout; catch it to add the sources. glibc's
	 * stdout is a variable that may be set (the glibc manual, "Standard
	 * Streams"). */
	f = open_memstream(&text, &len);
	if (!f)
		hpq_fatal("out of memory");
	fflush(stdout);
	saved = stdout;
	stdout = f;
	print_config(cfg);
	stdout = saved;
	if (fclose(f) != 0)
		hpq_fatal("out of memory");
	for (size_t i = 0; i < m->noptions; i++)
		options[i] = m->options[i];
	printf("# the settings hpqd runs with; after each, where it comes from:\n"
	       "# default, file (%s) or option\n", m->config_path ? m->config_path : "none");
	config_print_sources(stdout, text, m->config_path, options, m->noptions);
	free(text);
	problems = config_check(cfg, stderr);
	problems += check_security(cfg, stderr);
	problems += check_catalog(cfg, stdout, stderr);
	check_deprecated(cfg, stdout);
	if (problems)
		fprintf(stderr, "hpqd: %u problem%s in the settings\n", problems,
			problems == 1 ? "" : "s");
	return problems ? 1 : 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	static struct daemon_main m;
	struct config cfg;
	bool check = false;
	char err[512], *log_path = NULL, *config_abs = NULL;
	int r, status, log_fd;

	m.ready_fd = -1;
	config_init(&cfg);
	r = parse_flags(argc, argv, &cfg, &m, &check);
	if (r) {
		config_release(&cfg);
		return r;
	}
	/* Before anything is made: --insecure is for this host only. */
	if (cfg.insecure && server_check_insecure(cfg.listen, err, sizeof(err)) < 0) {
		fprintf(stderr, "hpqd: %s\n", err);
		config_release(&cfg);
		return EXIT_USAGE;
	}
	if (check) {
		r = check_config(&m, &cfg);
		config_release(&cfg);
		return r;
	}
	if (m.backup_path) {
		r = backup(&cfg, m.backup_path);
		config_release(&cfg);
		return r;
	}
	if (config_fence_check(&cfg, err, sizeof(err)) < 0 ||
	    config_autoscale_check(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "hpqd: %s\n", err);
		config_release(&cfg);
		return 1;
	}
	hpq_log_init("hpqd", cfg.log_level);
	signal(SIGPIPE, SIG_IGN);

	/* A daemon works in "/": its paths are absolute from here on. Its log
	 * lives in its state directory. */
	if (!cfg.foreground) {
		if (config_make_absolute(&cfg, err, sizeof(err)) < 0 ||
		    (m.config_path &&
		     hpq_path_absolute(m.config_path, &config_abs, err, sizeof(err)) < 0)) {
			fprintf(stderr, "hpqd: %s\n", err);
			config_release(&cfg);
			return 1;
		}
		if (config_abs)
			m.config_path = config_abs;
		if (mkdir(cfg.state_dir, 0700) < 0 && errno != EEXIST) {
			fprintf(stderr, "hpqd: cannot create '%s': %s\n", cfg.state_dir,
				strerror(errno));
			return 1;
		}
		xasprintf(&log_path, "%s/hpqd.log", cfg.state_dir);
		log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (log_fd < 0) {
			fprintf(stderr, "hpqd: cannot open the log file '%s': %s\n", log_path,
				strerror(errno));
			return 1;
		}
		daemonize(log_path, log_fd, &m.ready_fd);
		hpq_log_init("hpqd", cfg.log_level);
		hpq_log_dated(true);
		xasprintf(&m.pid_path, "%s/hpqd.pid", cfg.state_dir);
	}

	if (uv_loop_init(&m.loop) < 0)
		hpq_fatal("cannot make the event loop");
	r = hpqd_init(&m.d, &m.loop, &cfg, 0, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		report_ready(&m, 1, err);
		return 1;
	}
	m.d.on_stop = on_core_stopped;
	m.d.on_store = notify_store;
	uv_signal_init(&m.loop, &m.sigterm);
	uv_signal_init(&m.loop, &m.sigint);
	uv_signal_init(&m.loop, &m.sighup);
	m.sigterm.data = m.sigint.data = m.sighup.data = &m;
	uv_signal_start(&m.sigterm, on_stop_signal, SIGTERM);
	uv_signal_start(&m.sigint, on_stop_signal, SIGINT);
	uv_signal_start(&m.sighup, on_hup, SIGHUP);

	xasprintf(&m.port_path, "%s/hpqd.port", cfg.state_dir);
	unlink(m.port_path);
	r = server_listen(m.d.server, cfg.listen, cfg.socket_path, err, sizeof(err));
	if (r == 0 && *cfg.metrics)
		r = metrics_start(&m.d, cfg.metrics, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		report_ready(&m, 1, err);
		m.d.exit_status = 1;
		hpqd_stop(&m.d);
	} else {
		if (*cfg.listen) {
			r = write_number_file(m.port_path, server_port(m.d.server));
			if (r < 0)
				log_warn("cannot write '%s': %s", m.port_path, strerror(-r));
		}
		if (m.pid_path && (r = write_number_file(m.pid_path, (int)getpid())) < 0)
			log_warn("cannot write '%s': %s", m.pid_path, strerror(-r));
		if (*cfg.listen && cfg.insecure)
			log_warn("--insecure: TCP is plain and NOT authenticated: whoever reaches "
				 "%s may act as any user or node they name, root included; for "
				 "tests and demos on this host only", cfg.listen);
		else if (*cfg.listen)
			log_info("TCP speaks TLS 1.3: nodes prove themselves with certificates of "
				 "the cluster CA %s, users with MUNGE (munged at %s)",
				 ca_hash(m.d.ca), cfg.munge_socket);
		start_watchdog(&m);
		log_notice("hpqd %s ready (pid %d, state in %s)", HPQ_VERSION, (int)getpid(),
			   cfg.state_dir);
		report_ready(&m, 0, NULL);
		notify_send("READY=1");
		if (store_degraded(m.d.store))
			notify_store(&m.d);
	}

	uv_run(&m.loop, UV_RUN_DEFAULT);

	status = m.d.exit_status;
	unlink(m.port_path);
	if (m.pid_path)
		unlink(m.pid_path);
	hpqd_release(&m.d);
	if (uv_loop_close(&m.loop) != 0)
		log_warn("the loop closed with handles still open");
	free(m.port_path);
	free(m.pid_path);
	free(log_path);
	free(config_abs);
	config_release(&cfg);
	return status;
}
