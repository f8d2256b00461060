/*
 * main.c: hpq-agent, the node agent of hpq. Reads its settings (flags
 * over agent.conf), detects the node's resources, and runs the agent on
 * libev's default loop (the one that can watch child processes) until
 * SIGTERM or SIGINT.
 *
 * Startup reads top to bottom: settings (--check stops after them),
 * logging, capacity, detach, loop, agent (work directory, journal, local
 * socket, the node's credentials), signals, watchdog, connect, READY=1,
 * run. Before it detaches, the agent makes its relative paths absolute
 * (it works in "/" afterwards); detached, it logs to agent.log in its work
 * directory and keeps its pid in agent.pid there. A node that joins says
 * READY=1 (and lets a detaching parent return) only once its first
 * attempt to join is over, so that a join refused for good (a bad token,
 * the wrong CA hash) is an error at start, on the terminal. Stopping
 * leaves the tasks running in their own sessions for the next agent to
 * adopt, unless --kill-tasks-on-exit says otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "agent.h"
#include "capacity.h"
#include "config.h"
#include "config-check.h"
#include "error.h"
#include "hpq.h"
#include "log.h"
#include "notify.h"
#include "parse.h"
#include "path.h"
#include "res.h"
#include "xalloc.h"

static const char usage_text[] =
	"usage: hpq-agent [options]\n"
	"\n"
	"The hpq node agent: registers this machine with hpqd, runs the tasks it is\n"
	"given and reports how they end. Every option is also a key in the --config\n"
	"file (same name without the dashes); options win over the file.\n"
	"\n"
	"  --server HOST:PORT|PATH  hpqd to connect to: over TCP (TLS), or on its Unix\n"
	"                           socket when PATH has a '/' (default 127.0.0.1:7420)\n"
	"  --server-name NAME       the name hpqd's certificate must carry (default:\n"
	"                           the host of --server)\n"
	"  --join TOKEN             join the cluster with this token from\n"
	"                           'hpq node token create' (once; ignored after)\n"
	"  --join-file FILE         read the join token from FILE (mode 0600)\n"
	"  --ca-hash sha256:HEX     the cluster CA hpqd must show to a joining node\n"
	"  --insecure               plaintext TCP to an --insecure hpqd on loopback\n"
	"  --name NAME              node name (default: the short host name)\n"
	"  --pool NAME              pool this node belongs to (default: default)\n"
	"  --work-dir DIR           task logs, journal and agent socket\n"
	"                           (default /var/lib/hpq-agent)\n"
	"  --gpus N                 GPUs to offer (default: count of nvidia-smi -L)\n"
	"  --cpus N                 CPUs to offer (default: online CPUs)\n"
	"  --mem SIZE               memory to offer, e.g. 64G (default: MemTotal)\n"
	"  --labels L1,L2           labels reported with the node\n"
	"  --address HOST           address other nodes of a gang reach this one at\n"
	"                           (default: the local address of the link to hpqd)\n"
	"  --heartbeat DURATION     heartbeat interval (default 10s)\n"
	"  --health-dir DIR         run the executables in DIR as health checks\n"
	"                           (exit 0 healthy, 1 warning, 2 fatal; default none)\n"
	"  --health-interval DURATION\n"
	"                           how often health is checked (default 60s)\n"
	"  --health-timeout DURATION\n"
	"                           kill a health script or probe after this long\n"
	"                           (default 30s)\n"
	"  --health-threshold N     report a problem once it is seen this many\n"
	"                           checks in a row (default 1)\n"
	"  --health-disk PATH[,PATH...]\n"
	"                           also watch these filesystems' free space and inodes\n"
	"                           as the node's health (repeatable; the work\n"
	"                           directory's is always watched)\n"
	"  --health-disk-warning PERCENT\n"
	"                           warn below this share of free space or inodes on\n"
	"                           the work and --health-disk filesystems (default 10%)\n"
	"  --health-disk-fatal PERCENT\n"
	"                           fatal below this share (default 2%)\n"
	"  --health-clock-warning DURATION\n"
	"                           warn at this clock offset to hpqd (default 1s)\n"
	"  --health-clock-fatal DURATION\n"
	"                           fatal at this clock offset (default 30s)\n"
	"  --health-memory-pressure PERCENT\n"
	"                           warn when tasks wait for memory this share of\n"
	"                           the time (PSI some avg10; default 20%)\n"
	"  --health-inject FILE     for tests: report the findings listed in FILE\n"
	"  --local-max-per-user N   connections of one user (not root) to the agent\n"
	"                           socket (default 8)\n"
	"  --local-idle-timeout DURATION\n"
	"                           close an agent socket client silent this long\n"
	"                           (default 30s)\n"
	"  -c, --config FILE        read settings from FILE (INI)\n"
	"  --log-level LEVEL        error, warning, notice, info (default) or debug\n"
	"  --kill-tasks-on-exit     stop running tasks when the agent stops\n"
	"                           (default: leave them running for the next agent)\n"
	"  --allow-root-tasks       run tasks whose user is root (uid 0); hpqd must\n"
	"                           allow them too (default: refuse them)\n"
	"  --cgroup auto|required|off\n"
	"                           confine each task in a cgroup v2 of its own under\n"
	"                           the agent's delegated cgroup (auto: when the host\n"
	"                           allows it; required: refuse to start otherwise)\n"
	"  --task-pids-max N        processes and threads a task may have (default 4096)\n"
	"  -f, --foreground         do not detach (detached, the agent logs to\n"
	"                           agent.log in its work directory)\n"
	"  -n, --check              check the settings, print them with where each\n"
	"                           value came from, and exit (1 if one is wrong)\n"
	"  -h, --help               show this help\n"
	"  -V, --version            show the version\n";

/* Settings given on the command line, kept to re-apply over a reloaded file. */
struct flags {
	const char *config_path;
	const char *keys[32];
	const char *values[32];
	int n;
	bool log_level_given;
	bool check;              /* --check */
};

static const struct option long_options[] = {
	{"server", required_argument, NULL, 0},
	{"server-name", required_argument, NULL, 0},
	{"join", required_argument, NULL, 0},
	{"join-file", required_argument, NULL, 0},
	{"ca-hash", required_argument, NULL, 0},
	{"insecure", no_argument, NULL, 0},
	{"name", required_argument, NULL, 0},
	{"pool", required_argument, NULL, 0},
	{"work-dir", required_argument, NULL, 0},
	{"gpus", required_argument, NULL, 0},
	{"cpus", required_argument, NULL, 0},
	{"mem", required_argument, NULL, 0},
	{"labels", required_argument, NULL, 0},
	{"address", required_argument, NULL, 0},
	{"heartbeat", required_argument, NULL, 0},
	{"health-dir", required_argument, NULL, 0},
	{"health-interval", required_argument, NULL, 0},
	{"health-timeout", required_argument, NULL, 0},
	{"health-threshold", required_argument, NULL, 0},
	{"health-disk", required_argument, NULL, 0},
	{"health-disk-warning", required_argument, NULL, 0},
	{"health-disk-fatal", required_argument, NULL, 0},
	{"health-clock-warning", required_argument, NULL, 0},
	{"health-clock-fatal", required_argument, NULL, 0},
	{"health-memory-pressure", required_argument, NULL, 0},
	{"health-inject", required_argument, NULL, 0},
	{"key-file", required_argument, NULL, 0}, /* gone: config_set says what replaced it */
	{"local-max-per-user", required_argument, NULL, 0},
	{"local-idle-timeout", required_argument, NULL, 0},
	{"log-level", required_argument, NULL, 0},
	{"kill-tasks-on-exit", no_argument, NULL, 0},
	{"allow-root-tasks", no_argument, NULL, 0},
	{"cgroup", required_argument, NULL, 0},
	{"task-pids-max", required_argument, NULL, 0},
	{"foreground", no_argument, NULL, 'f'},
	{"config", required_argument, NULL, 'c'},
	{"check", no_argument, NULL, 'n'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

static void usage_error(const char *what, const char *arg) __attribute__((noreturn));

static void usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "hpq-agent: %s%s\nTry 'hpq-agent --help' for more information.\n", what,
		arg);
	exit(2);
}

static void parse_flags(int argc, char **argv, struct flags *fl)
{
	struct agent_config scratch;
	char err[256];
	int c, idx;

	config_init(&scratch);
	while ((c = getopt_long(argc, argv, "fc:nhV", long_options, &idx)) != -1) {
		const char *key, *value;

		switch (c) {
		case 0:
			key = long_options[idx].name;
			value = long_options[idx].has_arg ? optarg : "yes";
			break;
		case 'f':
			key = "foreground";
			value = "yes";
			break;
		case 'c':
			fl->config_path = optarg;
			continue;
		case 'n':
			fl->check = true;
			continue;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			printf("hpq-agent %s (protocol %d)\n", HPQ_VERSION, HPQ_PROTOCOL_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try 'hpq-agent --help' for more information.\n");
			exit(2);
		}
		/* Check now, so a bad flag is a usage error before anything starts. */
		if (config_set(&scratch, key, value, err, sizeof(err)) < 0)
			usage_error(err, "");
		if (fl->n == (int)(sizeof(fl->keys) / sizeof(fl->keys[0])))
			usage_error("too many options", "");
		fl->keys[fl->n] = key;
		fl->values[fl->n++] = value;
		if (strcmp(key, "log-level") == 0)
			fl->log_level_given = true;
	}
	config_release(&scratch);
	if (optind < argc)
		usage_error("unexpected argument: ", argv[optind]);
}

/* Defaults, then the file, then the flags. */
static int load_settings(const struct flags *fl, struct agent_config *ret, char *err, size_t errlen)
{
	struct agent_config cfg;
	bool disks_given = false;
	int r;

	config_init(&cfg);
	if (fl->config_path) {
		r = config_load(&cfg, fl->config_path, err, errlen);
		if (r < 0)
			goto fail;
	}
	for (int i = 0; i < fl->n; i++) {
		/* Repeated --health-disk adds up; together they replace the file's. */
		if (!disks_given && strcmp(fl->keys[i], "health-disk") == 0) {
			config_health_disks_clear(&cfg);
			disks_given = true;
		}
		r = config_set(&cfg, fl->keys[i], fl->values[i], err, errlen);
		if (r < 0)
			goto fail;
	}
	r = config_finish(&cfg, err, errlen);
	if (r < 0)
		goto fail;
	*ret = cfg;
	return 0;
fail:
	config_release(&cfg);
	return r;
}

/*
 * Detaches from the terminal. The parent waits until the child says it is
 * serving (or dies), so that `hpq-agent` returns 0 only for a running
 * agent and startup errors still reach the terminal. Returns the write
 * end of that pipe in the child.
 */
static int daemonize(void)
{
	int fds[2], devnull;
	char status;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_err("cannot create a pipe: %s", strerror(errno));
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		log_err("cannot fork: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		close(fds[1]);
		exit(read(fds[0], &status, 1) == 1 && status == 0 ? 0 : 1);
	}
	close(fds[0]);
	setsid();
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		close(devnull);
	}
	if (chdir("/") < 0) {
		/* the work directory is absolute; nothing depends on the cwd */
	}
	return fds[1];
}

/* Tells the waiting parent that the agent serves; from now on the agent
 * logs to log_fd, its log file, with dated lines. */
static void daemon_ready(int fd, int log_fd)
{
	char ok = 0;

	if (fd < 0)
		return;
	if (write(fd, &ok, 1) < 0) {
		/* the parent is gone; nothing to tell */
	}
	close(fd);
	if (dup2(log_fd, STDERR_FILENO) >= 0)
		hpq_log_dated(true);
	close(log_fd);
}

/* --check: the settings the agent would run with, each with its source,
 * and what is wrong with them. Returns the exit status. */
static int check_settings(const struct flags *fl, struct agent_config *cfg)
{
	struct hpq_res capacity;
	char err[512];
	unsigned problems;
	int r;

	if (!cfg->foreground && config_make_absolute(cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return 1;
	}
	r = capacity_detect((struct hpq_res){cfg->gpus, cfg->cpus, cfg->mem}, &capacity);
	if (r < 0) {
		log_err("cannot detect this node's memory: %s; give --mem", hpq_strerror(r));
		return 1;
	}
	printf("# the settings hpq-agent runs with; after each, where it comes from:\n"
	       "# default, detected, file (%s) or option\n",
	       fl->config_path ? fl->config_path : "none");
	config_print(cfg, capacity, fl->config_path, fl->keys, (size_t)fl->n, stdout);
	fflush(stdout);
	problems = config_check(cfg, stderr);
	if (problems)
		fprintf(stderr, "hpq-agent: %u problem%s in the settings\n", problems,
			problems == 1 ? "" : "s");
	return problems ? 1 : 0;
}

struct main_ctx {
	struct agent agent;
	struct agent_config cfg;
	const struct flags *flags;
	ev_signal sigterm_w, sigint_w, sighup_w;
	ev_timer watchdog_w;
	int ready_fd;            /* detached: the pipe to the waiting parent */
	int log_fd;              /* detached: <work-dir>/agent.log */
	char *pid_path;          /* detached: <work-dir>/agent.pid */
};

/* The agent serves: tell systemd and a waiting parent. */
static void on_serving(void *ctx)
{
	struct main_ctx *m = ctx;

	notify_send("READY=1");
	daemon_ready(m->ready_fd, m->log_fd);
	m->ready_fd = m->log_fd = -1;
	log_notice("hpq-agent %s serving node %s (work directory %s)", HPQ_VERSION, m->cfg.name,
		   m->agent.work_dir);
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct main_ctx *m = w->data;

	if (m->agent.stopping) {
		log_notice("second stop signal: exiting without waiting for tasks");
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	log_notice("received %s, stopping%s", strsignal(w->signum),
		   m->cfg.kill_tasks_on_exit ? " with the tasks" : "; tasks keep running");
	notify_send("STOPPING=1");
	agent_stop(&m->agent, m->cfg.kill_tasks_on_exit);
}

/* SIGHUP: re-read the settings; only the log level changes live. */
static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct main_ctx *m = w->data;
	struct agent_config fresh;
	char err[512];

	notify_send("RELOADING=1");
	if (load_settings(m->flags, &fresh, err, sizeof(err)) < 0) {
		log_err("reload: %s; keeping the current settings", err);
	} else {
		if (fresh.log_level != m->cfg.log_level) {
			m->cfg.log_level = fresh.log_level;
			hpq_log_set_level(fresh.log_level);
		}
		log_notice("reloaded settings (log level applied; other changes need a restart)");
		config_release(&fresh);
	}
	notify_send("READY=1");
}

/* agent.pid: the pid, replaced atomically. Returns 0 or -1 with errno. */
static int write_pid_file(const char *path)
{
	char *tmp;
	FILE *f;
	int r = 0;

	xasprintf(&tmp, "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f) {
		free(tmp);
		return -1;
	}
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		r = -1;
		unlink(tmp);
	}
	free(tmp);
	return r;
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	notify_send("WATCHDOG=1");
}

int main(int argc, char **argv)
{
	static struct main_ctx m;
	struct flags fl = {0};
	struct hpq_res given, capacity;
	struct ev_loop *loop;
	uint64_t wd_usec;
	char err[1024], buf[128], *config_abs = NULL, *path;
	int r, status = 0;

	parse_flags(argc, argv, &fl);
	m.flags = &fl;
	hpq_log_init("hpq-agent", LOG_INFO);
	if (load_settings(&fl, &m.cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return 1;
	}
	hpq_log_set_level(m.cfg.log_level);
	if (fl.check) {
		r = check_settings(&fl, &m.cfg);
		config_release(&m.cfg);
		return r;
	}
	/* Detached, the agent works in "/": its paths are absolute from here. */
	if (!m.cfg.foreground) {
		if (config_make_absolute(&m.cfg, err, sizeof(err)) < 0 ||
		    (fl.config_path &&
		     hpq_path_absolute(fl.config_path, &config_abs, err, sizeof(err)) < 0)) {
			log_err("%s", err);
			return 1;
		}
		if (config_abs)
			fl.config_path = config_abs;
	}

	given = (struct hpq_res){m.cfg.gpus, m.cfg.cpus, m.cfg.mem};
	r = capacity_detect(given, &capacity);
	if (r < 0) {
		log_err("cannot detect this node's memory: %s; give --mem", hpq_strerror(r));
		return 1;
	}
	log_info("node %s in pool %s offers %s", m.cfg.name, m.cfg.pool,
		 hpq_res_format(capacity, buf, sizeof(buf)));

	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)(time(NULL) ^ getpid()));
	m.ready_fd = m.log_fd = -1;
	if (!m.cfg.foreground)
		m.ready_fd = daemonize();

	loop = ev_default_loop(EVFLAG_AUTO);
	if (!loop) {
		log_err("cannot initialise the event loop (libev)");
		return 1;
	}
	r = agent_init(&m.agent, loop, &m.cfg, capacity, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		return 1;
	}

	ev_signal_init(&m.sigterm_w, on_stop_signal, SIGTERM);
	ev_signal_init(&m.sigint_w, on_stop_signal, SIGINT);
	ev_signal_init(&m.sighup_w, on_sighup, SIGHUP);
	m.sigterm_w.data = m.sigint_w.data = m.sighup_w.data = &m;
	ev_signal_start(loop, &m.sigterm_w);
	ev_signal_start(loop, &m.sigint_w);
	ev_signal_start(loop, &m.sighup_w);
	wd_usec = notify_watchdog_usec();
	if (wd_usec) {
		double every = (double)wd_usec / 2e6;

		ev_timer_init(&m.watchdog_w, on_watchdog, every, every);
		ev_timer_start(loop, &m.watchdog_w);
		ev_unref(loop); /* the watchdog alone does not keep the loop alive */
	}

	if (m.ready_fd >= 0) {
		/* The work directory exists now; failing here still reaches the
		 * terminal, which the parent shares until daemon_ready. */
		xasprintf(&path, "%s/agent.log", m.agent.work_dir);
		m.log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (m.log_fd < 0) {
			log_err("cannot open the log file '%s': %s", path, strerror(errno));
			return 1;
		}
		free(path);
		xasprintf(&m.pid_path, "%s/agent.pid", m.agent.work_dir);
		if (write_pid_file(m.pid_path) < 0)
			log_warn("cannot write '%s': %s", m.pid_path, strerror(errno));
	}
	m.agent.on_serving = on_serving;
	m.agent.on_serving_ctx = &m;
	agent_start(&m.agent);

	if (!m.agent.uplink.gave_up)
		ev_run(loop, 0);

	if (m.agent.uplink.gave_up) {
		/* A token or a pin that was refused, or a certificate that expired,
		 * stays refused: systemd must not keep trying
		 * (RestartPreventExitStatus=2). */
		log_err("stopping: node %s cannot be in the cluster until it joins (see above)",
			m.cfg.name);
		status = 2;
	}
	log_notice("stopped; %zu tasks left running", agent_running(&m.agent));
	if (wd_usec) {
		ev_ref(loop);
		ev_timer_stop(loop, &m.watchdog_w);
	}
	ev_signal_stop(loop, &m.sigterm_w);
	ev_signal_stop(loop, &m.sigint_w);
	ev_signal_stop(loop, &m.sighup_w);
	agent_release(&m.agent);
	config_release(&m.cfg);
	ev_loop_destroy(loop);
	if (m.pid_path)
		unlink(m.pid_path);
	free(m.pid_path);
	free(config_abs);
	return status;
}
