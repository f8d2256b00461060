/*
 * cmd-checkpoint.c: `hpq checkpoint --step N --path P`, run by a task to
 * record a checkpoint it has just written; the newest one is where the
 * task resumes after preemption or a lost node.
 *
 * Inside a task it needs no other flags: the agent put HPQ_TASK_ID,
 * HPQ_ATTEMPT and HPQ_AGENT_SOCKET into the environment. The request goes
 * to the agent's socket, not to the daemon: the agent checks that the
 * caller runs as the task's user, forwards it on its own authenticated
 * connection and relays the answer, which comes after the daemon
 * committed the checkpoint. So exit 0 means the checkpoint is durable.
 * $HPQ_AGENT_SOCKET is preferred over $HPQ_SOCKET because a task may have
 * inherited the submitter's HPQ_SOCKET through --export=ALL. Outside a
 * task (tests, administrators) --task and --attempt name the run and the
 * request goes to the daemon.
 *
 * `hpq checkpoint --watch DIR` reports checkpoints for a program that only
 * writes them (a recipe's wrapper runs it beside the program). It watches
 * DIR with inotify: an entry whose name ends in a number (step-120,
 * checkpoint-120, ckpt_120.pt; not one that says tmp, part or lock) is a
 * complete checkpoint when it is renamed into place (IN_MOVED_TO), when a
 * file of that name is closed after writing (IN_CLOSE_WRITE), or when a
 * directory of that name gets a file named .complete or COMPLETE. The
 * number is the step; only steps above the newest one reported (or
 * resumed from) are reported. It ignores TERM and INT, which preemption
 * sends to the whole task: the checkpoint written then is the one that
 * matters. On USR1, or when its parent exits, it reports what is left in
 * the queue and exits.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "msg.h"
#include "parse.h"
#include "xalloc.h"

enum {
	OPT_STEP = CLI_OPT_FIRST_PRIVATE,
	OPT_PATH,
	OPT_TASK,
	OPT_ATTEMPT,
	OPT_WATCH,
};

static const struct option checkpoint_options[] = {
	{"step", required_argument, NULL, OPT_STEP},
	{"path", required_argument, NULL, OPT_PATH},
	{"task", required_argument, NULL, OPT_TASK},
	{"attempt", required_argument, NULL, OPT_ATTEMPT},
	{"watch", required_argument, NULL, OPT_WATCH},
	CLI_COMMON_OPTIONS,
};

/* A value from --opt, else from the environment variable. */
static int checkpoint_number(struct cli *cli, const char *opt, const char *arg, const char *var,
			     uint64_t min, uint64_t max, uint64_t *ret)
{
	const char *env = getenv(var);

	if (arg)
		return cli_parse_uint(cli, opt, arg, min, max, ret);
	if (!env || !env[0])
		return cli_usage_error(cli, "not inside an hpq task: $%s is not set; "
				       "give %s", var, opt);
	if (hpq_parse_uint(env, min, max, ret) < 0)
		return cli_usage_error(cli, "$%s is '%s', not a valid number", var, env);
	return 0;
}

static int checkpoint_send(struct cli *cli, Hpq__CheckpointRequest *ck, char *abs);

/* ---------------------------------------------------------------- --watch */

/* The step a checkpoint's name ends with: step-120, checkpoint-120,
 * ckpt_120.pt (one extension of letters is skipped). Names of files on
 * their way (tmp, part, lock) and hidden ones are not checkpoints. */
static bool checkpoint_name_step(const char *name, uint64_t *ret)
{
	static const char *const skip[] = {"tmp", "temp", "part", "incomplete", "lock", "swp"};
	size_t end = strlen(name), start;
	const char *dot = strrchr(name, '.');
	char num[24];

	if (name[0] == '.' || end == 0)
		return false;
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strcasestr(name, skip[i]))
			return false;
	if (dot && dot > name && dot[1]) {
		bool letters = true;

		for (const char *p = dot + 1; *p; p++)
			letters = letters && isalpha((unsigned char)*p);
		if (letters)
			end = (size_t)(dot - name);
	}
	start = end;
	while (start > 0 && isdigit((unsigned char)name[start - 1]))
		start--;
	if (start == end || end - start >= sizeof(num))
		return false;
	memcpy(num, name + start, end - start);
	num[end - start] = '\0';
	return hpq_parse_uint(num, 0, UINT64_MAX, ret) == 0;
}

static bool checkpoint_marker(const char *name)
{
	return !strcmp(name, ".complete") || !strcmp(name, "COMPLETE");
}

struct watch {
	struct cli *cli;
	const char *dir;          /* absolute */
	int fd, wd;
	uint64_t task_id;
	uint32_t attempt;
	bool have, failed;
	uint64_t last;            /* the newest step reported or resumed from */
	struct { int wd; char *name; } *subs; /* directories waiting for their marker */
	size_t n_subs;
};

static void watch_report(struct watch *w, const char *name, uint64_t step)
{
	Hpq__CheckpointRequest ck = HPQ__CHECKPOINT_REQUEST__INIT;
	char *path;

	if (w->have && step <= w->last)
		return;
	xasprintf(&path, "%s/%s", w->dir, name);
	ck.task_id = w->task_id;
	ck.attempt = w->attempt;
	ck.step = step;
	ck.path = path;
	if (checkpoint_send(w->cli, &ck, path) == 0) {
		w->have = true;
		w->last = step;
	} else {
		w->failed = true; /* cli_call said why; later checkpoints may still go */
	}
}

/* A directory checkpoint: complete once it holds the marker. */
static void watch_dir_entry(struct watch *w, const char *name, uint64_t step)
{
	char *m1, *m2;
	struct stat sb;
	int wd;

	xasprintf(&m1, "%s/%s", w->dir, name);
	wd = inotify_add_watch(w->fd, m1, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
			       IN_ONLYDIR);
	if (wd >= 0) {
		w->subs = xreallocarray(w->subs, w->n_subs + 1, sizeof(*w->subs));
		w->subs[w->n_subs].wd = wd;
		w->subs[w->n_subs++].name = xstrdup(name);
	}
	free(m1);
	/* The marker may be there already. */
	xasprintf(&m1, "%s/%s/.complete", w->dir, name);
	xasprintf(&m2, "%s/%s/COMPLETE", w->dir, name);
	if (stat(m1, &sb) == 0 || stat(m2, &sb) == 0)
		watch_report(w, name, step);
	free(m1);
	free(m2);
}

/* What is in the directory already: the watch may have started after the
 * program wrote its first checkpoint. */
static void watch_scan(struct watch *w)
{
	DIR *d = opendir(w->dir);
	struct dirent *de;
	uint64_t step, best = 0;
	char *best_name = NULL;

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat sb;

		if (!checkpoint_name_step(de->d_name, &step) ||
		    fstatat(dirfd(d), de->d_name, &sb, 0) < 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			watch_dir_entry(w, de->d_name, step);
			continue;
		}
		if (S_ISREG(sb.st_mode) && (!best_name || step > best)) {
			free(best_name);
			best_name = xstrdup(de->d_name);
			best = step;
		}
	}
	closedir(d);
	if (best_name)
		watch_report(w, best_name, best);
	free(best_name);
}

static void watch_event(struct watch *w, const struct inotify_event *ev)
{
	uint64_t step;
	struct stat sb;
	char *p;

	if (!ev->len)
		return;
	if (ev->wd != w->wd) {
		for (size_t i = 0; i < w->n_subs; i++)
			if (w->subs[i].wd == ev->wd && checkpoint_marker(ev->name) &&
			    checkpoint_name_step(w->subs[i].name, &step))
				watch_report(w, w->subs[i].name, step);
		return;
	}
	if (!checkpoint_name_step(ev->name, &step))
		return;
	if (ev->mask & IN_ISDIR) {
		if (ev->mask & IN_MOVED_TO)
			watch_report(w, ev->name, step); /* renamed into place: complete */
		else
			watch_dir_entry(w, ev->name, step);
		return;
	}
	if (!(ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE)))
		return;
	/* Closed after writing, but perhaps renamed or removed since. */
	xasprintf(&p, "%s/%s", w->dir, ev->name);
	if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode))
		watch_report(w, ev->name, step);
	free(p);
}

/* Reads and handles every queued event; false when the directory went. */
static bool watch_drain(struct watch *w)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool alive = true;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->wd == w->wd && (ev->mask & (IN_IGNORED | IN_DELETE_SELF)))
				alive = false;
			else
				watch_event(w, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
	return alive;
}

static volatile sig_atomic_t watch_stop;

static void watch_on_usr1(int sig)
{
	(void)sig;
	watch_stop = 1;
}

static int checkpoint_watch(struct cli *cli, const char *dir, uint64_t task_id, uint32_t attempt)
{
	struct watch w = {.cli = cli, .task_id = task_id, .attempt = attempt};
	struct sigaction sa = {.sa_handler = watch_on_usr1};
	const char *from = getenv("HPQ_RESUME_FROM"), *rstep = getenv("HPQ_RESUME_STEP");
	pid_t parent = getppid();
	char *abs;
	int r = CLI_OK;

	/* The newest checkpoint so far: where this attempt resumed from. */
	if (from && from[0] && rstep && hpq_parse_uint(rstep, 0, UINT64_MAX, &w.last) == 0)
		w.have = true;
	abs = realpath(dir, NULL);
	if (!abs)
		return cli_error(cli, "cannot watch %s: %s", dir, strerror(errno));
	w.dir = abs;
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	(void)prctl(PR_SET_PDEATHSIG, SIGUSR1);
	w.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w.fd < 0) {
		r = cli_error(cli, "cannot watch %s: inotify: %s", dir, strerror(errno));
		goto out;
	}
	w.wd = inotify_add_watch(w.fd, abs, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
				 IN_DELETE_SELF | IN_ONLYDIR);
	if (w.wd < 0) {
		r = cli_error(cli, "cannot watch %s: %s", dir, strerror(errno));
		goto out;
	}
	watch_scan(&w);
	while (!watch_stop && getppid() == parent) {
		struct pollfd pfd = {.fd = w.fd, .events = POLLIN};

		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			break;
		if (!watch_drain(&w))
			break;
	}
	watch_drain(&w); /* what the program wrote last, as it stopped */
out:
	if (w.fd >= 0)
		close(w.fd);
	for (size_t i = 0; i < w.n_subs; i++)
		free(w.subs[i].name);
	free(w.subs);
	free(abs);
	return r;
}

static int checkpoint_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__CheckpointRequest ck = HPQ__CHECKPOINT_REQUEST__INIT;
	const char *step = NULL, *path = NULL, *task = NULL, *attempt = NULL, *watch = NULL;
	uint64_t v;
	char *abs = NULL;
	int c;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", checkpoint_options)) != -1) {
		switch (c) {
		case OPT_STEP:
			step = optarg;
			break;
		case OPT_PATH:
			path = optarg;
			break;
		case OPT_TASK:
			task = optarg;
			break;
		case OPT_ATTEMPT:
			attempt = optarg;
			break;
		case OPT_WATCH:
			watch = optarg;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (watch && (step || path))
		return cli_usage_error(cli, "--watch DIR finds the steps and paths itself; "
				       "give it without --step and --path");
	if (watch) {
		if (checkpoint_number(cli, "--task", task, "HPQ_TASK_ID", 1, INT64_MAX, &v) != 0)
			return CLI_USAGE;
		ck.task_id = v;
		if (checkpoint_number(cli, "--attempt", attempt, "HPQ_ATTEMPT", 1, UINT32_MAX,
				      &v) != 0)
			return CLI_USAGE;
		ck.attempt = (uint32_t)v;
		return checkpoint_watch(cli, watch, ck.task_id, ck.attempt);
	}
	if (!step || !path)
		return cli_usage_error(cli, "give both --step N and --path P");
	if (path[0] == '\0')
		return cli_usage_error(cli, "--path needs the checkpoint's path");
	if (cli_parse_uint(cli, "--step", step, 0, UINT64_MAX, &v) != 0)
		return CLI_USAGE;
	ck.step = v;
	if (checkpoint_number(cli, "--task", task, "HPQ_TASK_ID", 1, INT64_MAX, &v) != 0)
		return CLI_USAGE;
	ck.task_id = v;
	if (checkpoint_number(cli, "--attempt", attempt, "HPQ_ATTEMPT", 1, UINT32_MAX, &v) != 0)
		return CLI_USAGE;
	ck.attempt = (uint32_t)v;

	/* The path is recorded for the next attempt, which may start elsewhere
	 * in the file system; make it absolute now. */
	if (path[0] != '/') {
		char *here = getcwd(NULL, 0);

		if (!here)
			return cli_error(cli, "cannot tell the current directory: %s; "
					 "give an absolute --path", strerror(errno));
		xasprintf(&abs, "%s/%s", here, path);
		free(here);
		path = abs;
	}
	ck.path = (char *)path;

	return checkpoint_send(cli, &ck, abs);
}

/* Sends ck to the agent's socket ($HPQ_AGENT_SOCKET) or the daemon, and
 * frees abs. */
static int checkpoint_send(struct cli *cli, Hpq__CheckpointRequest *ck, char *abs)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	const char *agent;
	char *sock = NULL;
	bool set_addr = false;
	int r;

	agent = getenv("HPQ_AGENT_SOCKET");
	if (!cli->addr && agent && agent[0]) {
		set_addr = true;
		if (!strchr(agent, '/')) {
			/* The client library takes a name without '/' for HOST:PORT. */
			xasprintf(&sock, "./%s", agent);
			agent = sock;
		}
		cli->addr = agent;
	}
	req.body_case = HPQ__ENVELOPE__BODY_CHECKPOINT;
	req.checkpoint = ck;
	r = cli_call(cli, &req, HPQ__ENVELOPE__BODY_OK, "record the checkpoint", &reply);
	if (r == 0)
		hpq_msg_free(reply);
	if (set_addr) {
		cli_release(cli);
		cli->addr = NULL;
	}
	free(sock);
	free(abs);
	return r;
}

const struct cmd_entry cmd_checkpoint_entry = {
	.name = "checkpoint",
	.usage = "checkpoint --step N --path P | --watch DIR [--task ID] [--attempt N]",
	.summary = "record a checkpoint, from inside a running task",
	.help = "Run it after the checkpoint is written; it returns once hpqd has stored\n"
		"the record. The task resumes from its newest checkpoint after preemption,\n"
		"with $HPQ_RESUME_FROM and $HPQ_RESUME_STEP set.\n\n"
		"options:\n"
		"  --step N      training step (or any increasing number) of the checkpoint\n"
		"  --path P      where it is; a relative path is made absolute\n"
		"  --task ID     the task (default $HPQ_TASK_ID)\n"
		"  --attempt N   the attempt (default $HPQ_ATTEMPT)\n"
		"  --watch DIR   report each checkpoint written into DIR until the parent\n"
		"                exits: an entry named like step-120 or ckpt_120.pt renamed\n"
		"                into place or closed after writing, or a directory named\n"
		"                like checkpoint-120 given a .complete or COMPLETE file\n",
	.exec = checkpoint_exec,
};
