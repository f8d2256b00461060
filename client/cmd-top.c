/*
 * cmd-top.c: `hpq top`, the status as a live full-screen view (ncurses):
 * pools, the team table, the classes, and a task pane sortable by wait,
 * run time or GPUs.
 *
 * Two connections: one follows the event log (as `hpq events --follow`,
 * a subscription the daemon pushes to, no polling of anything), the other
 * asks for the status and the active tasks. The view is fetched again
 * when an event arrives (coalesced to at most every REFRESH_MIN_MS) and
 * on the --interval timer, for the wait and run times that grow without
 * events. The terminal is restored on every way out: q, end of input,
 * SIGINT/SIGTERM/SIGHUP (handled as a flag the loop sees when poll() is
 * interrupted) and error exits (atexit).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curses.h>

#include "cli.h"
#include "clock.h"
#include "dash.h"
#include "error.h"
#include "msg.h"
#include "parse.h"

#define REFRESH_MIN_MS 200

enum {
	OPT_INTERVAL = CLI_OPT_FIRST_PRIVATE,
	OPT_TEAM,
};

static const struct option top_options[] = {
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{"team", required_argument, NULL, OPT_TEAM},
	CLI_COMMON_OPTIONS,
};

enum sort_key { SORT_WAIT, SORT_RUNTIME, SORT_GPUS, SORT_COUNT };
static const char *const sort_names[] = { "wait", "runtime", "gpus" };

static volatile sig_atomic_t stop_signal;
static bool screen_up;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void restore_terminal(void)
{
	if (screen_up) {
		endwin();
		screen_up = false;
	}
}

struct view {
	Hpq__StatusReply *status;   /* in status_env */
	Hpq__Envelope *status_env, *list_env;
	Hpq__Task **tasks;          /* sorted copy of the list's pointers */
	size_t ntasks;
	enum sort_key sort;
	int64_t now_ms;
	char error[320];
	unsigned events;            /* pushed since start */
	const char *team;
	int64_t interval_ms;
};

static uint64_t task_gpus(const Hpq__Task *t)
{
	return (uint64_t)(t->per_node ? t->per_node->gpus : 0) * (t->nodes ? t->nodes : 1);
}

static bool is_pending(const Hpq__Task *t)
{
	return !strcmp(t->state, "PENDING");
}

/* How long it has waited (pending) or run (running), in ms. */
static int64_t task_age(const Hpq__Task *t, int64_t now)
{
	int64_t from = is_pending(t) ? t->submit_time : t->start_time;

	return from > 0 && now > from ? now - from : 0;
}

static int64_t sort_now;
static enum sort_key sort_by;

static int cmp_task(const void *x, const void *y)
{
	const Hpq__Task *a = *(Hpq__Task *const *)x, *b = *(Hpq__Task *const *)y;
	int64_t ka, kb;

	switch (sort_by) {
	case SORT_WAIT:
		/* Pending first, longest wait first. */
		if (is_pending(a) != is_pending(b))
			return is_pending(a) ? -1 : 1;
		ka = task_age(a, sort_now);
		kb = task_age(b, sort_now);
		break;
	case SORT_RUNTIME:
		if (is_pending(a) != is_pending(b))
			return is_pending(a) ? 1 : -1;
		ka = task_age(a, sort_now);
		kb = task_age(b, sort_now);
		break;
	case SORT_GPUS:
	default:
		ka = (int64_t)task_gpus(a);
		kb = (int64_t)task_gpus(b);
		break;
	}
	if (ka != kb)
		return ka > kb ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static void view_sort(struct view *v)
{
	sort_now = v->now_ms;
	sort_by = v->sort;
	if (v->ntasks)
		qsort(v->tasks, v->ntasks, sizeof(*v->tasks), cmp_task);
}

static void view_clear(struct view *v)
{
	if (v->status_env)
		hpq_msg_free(v->status_env);
	if (v->list_env)
		hpq_msg_free(v->list_env);
	free(v->tasks);
	v->status_env = v->list_env = NULL;
	v->status = NULL;
	v->tasks = NULL;
	v->ntasks = 0;
}

/* Fetches the status and the active tasks on the request connection. */
static void view_fetch(struct view *v, struct hpq_client *c)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *st = NULL, *ls = NULL;
	Hpq__StatusRequest sr = HPQ__STATUS_REQUEST__INIT;
	Hpq__ListRequest lr = HPQ__LIST_REQUEST__INIT;
	int r;

	sr.team = (char *)(v->team ? v->team : "");
	req.body_case = HPQ__ENVELOPE__BODY_STATUS;
	req.status = &sr;
	r = hpq_client_call(c, &req, &st);
	if (r == 0 && st->body_case == HPQ__ENVELOPE__BODY_STATUS_REPLY) {
		Hpq__Envelope lreq = HPQ__ENVELOPE__INIT;
		static char *active[] = { "active" };

		lr.states = active;     /* not `state`: protocol 1's, deprecated */
		lr.n_states = 1;
		lr.team = (char *)(v->team ? v->team : "");
		lr.limit = 5000;
		lreq.body_case = HPQ__ENVELOPE__BODY_LIST;
		lreq.list = &lr;
		r = hpq_client_call(c, &lreq, &ls);
	}
	if (r != 0 || !st || !ls || ls->body_case != HPQ__ENVELOPE__BODY_LIST_REPLY) {
		snprintf(v->error, sizeof(v->error), "cannot refresh: %.256s",
			 c->errbuf[0] ? c->errbuf : hpq_strerror(r ? r : HPQ_EPROTO));
		if (st)
			hpq_msg_free(st);
		if (ls)
			hpq_msg_free(ls);
		return;
	}
	view_clear(v);
	v->error[0] = '\0';
	v->status_env = st;
	v->status = st->status_reply;
	v->list_env = ls;
	v->ntasks = ls->list_reply->n_tasks;
	v->tasks = calloc(v->ntasks + 1, sizeof(*v->tasks));
	if (!v->tasks)
		abort();
	if (v->ntasks)
		memcpy(v->tasks, ls->list_reply->tasks, v->ntasks * sizeof(*v->tasks));
	v->now_ms = hpq_now_ms();
	view_sort(v);
}

static char *dur(int64_t s, char *buf, size_t len)
{
	if (s <= 0)
		return strcpy(buf, "-");
	return hpq_format_duration((uint64_t)s, buf, len);
}

enum { C_TITLE = 1, C_WARN, C_BAD, C_GOOD, C_KEYS };

static void draw(const struct view *v)
{
	const Hpq__StatusReply *s = v->status;
	int rows, cols, y = 0;
	char b1[64], b2[64];

	getmaxyx(stdscr, rows, cols);
	erase();
	attron(COLOR_PAIR(C_TITLE) | A_BOLD);
	mvprintw(y, 0, "hpq top");
	attroff(COLOR_PAIR(C_TITLE) | A_BOLD);
	if (s)
		printw("  %u running, %u pending  idle allocation %s  %u event%s  every %llds",
		       s->running, s->pending, s->policy ? s->policy->idle : "?", v->events,
		       v->events == 1 ? "" : "s", (long long)(v->interval_ms / 1000));
	y++;
	if (v->error[0]) {
		attron(COLOR_PAIR(C_BAD));
		mvprintw(y++, 0, "%.*s", cols, v->error);
		attroff(COLOR_PAIR(C_BAD));
	}
	for (size_t i = 0; s && i < s->n_pools && y < rows - 2; i++) {
		const Hpq__PoolStatus *p = s->pools[i];

		mvprintw(y++, 0, "pool %-12.12s %4u nodes  gpus %u/%u  cpus %u/%u  idle %u gpus",
			 p->name, p->nodes, p->used->gpus, p->capacity->gpus, p->used->cpus,
			 p->capacity->cpus, p->idle->gpus);
		if (p->guaranteed->gpus > p->capacity->gpus) {
			attron(COLOR_PAIR(C_BAD));
			printw("  over-committed: %u gpus guaranteed", p->guaranteed->gpus);
			attroff(COLOR_PAIR(C_BAD));
		}
	}
	y++;
	if (s && y < rows - 2) {
		attron(A_BOLD);
		mvprintw(y++, 0, "%-14s %-10s %5s %5s %5s %5s %5s %5s %5s %11s %11s", "TEAM", "POOL",
			 "GUAR", "USED", "BORR", "LENT", "RUN", "PEND", "PRE1H", "OLDEST-WAIT",
			 "LONGEST-RUN");
		attroff(A_BOLD);
	}
	for (size_t i = 0; s && i < s->n_teams && y < rows - 2; i++) {
		const Hpq__TeamStatus *t = s->teams[i];
		bool unused = t->guarantee->gpus && !t->used->gpus;

		mvprintw(y, 0, "%-14.14s %-10.10s %5u %5u ", t->name, t->pool, t->guarantee->gpus,
			 t->used->gpus);
		if (t->borrowed->gpus)
			attron(COLOR_PAIR(C_WARN));
		printw("%5u", t->borrowed->gpus);
		attroff(COLOR_PAIR(C_WARN));
		printw(" %5u %5u %5u %5u %11s %11s", t->lent->gpus, t->running, t->pending,
		       t->preempted_1h, dur(t->oldest_pending_s, b1, sizeof(b1)),
		       dur(t->longest_running_s, b2, sizeof(b2)));
		if (unused) {
			attron(COLOR_PAIR(C_BAD));
			printw("  unused-guarantee");
			attroff(COLOR_PAIR(C_BAD));
		}
		y++;
	}
	if (s && y < rows - 2) {
		move(++y, 0);
		printw("classes:");
		for (size_t i = 0; i < s->n_classes; i++)
			if (s->classes[i]->running || s->classes[i]->pending)
				printw("  %s %u/%u", s->classes[i]->name, s->classes[i]->running,
				       s->classes[i]->pending);
		printw("  (running/pending)");
		y += 2;
	}
	if (y < rows - 3) {
		mvprintw(y++, 0, "%zu active tasks, sorted by %s", v->ntasks, sort_names[v->sort]);
		attron(A_BOLD);
		mvprintw(y++, 0, "%-8s %-12s %-10s %-14s %-10s %4s %11s  %s", "ID", "TEAM", "USER",
			 "CLASS", "STATE", "GPUS", "WAIT/RUN", "REASON/NODES");
		attroff(A_BOLD);
	}
	for (size_t i = 0; i < v->ntasks && y < rows - 1; i++, y++) {
		const Hpq__Task *t = v->tasks[i];
		int64_t age = task_age(t, v->now_ms) / 1000;

		mvprintw(y, 0, "%-8llu %-12.12s %-10.10s %-14.14s %-10.10s %4llu %11s  %.*s",
			 (unsigned long long)t->id, t->team, t->user, t->class_, t->state,
			 (unsigned long long)task_gpus(t), dur(age, b1, sizeof(b1)),
			 cols > 80 ? cols - 80 : 0,
			 is_pending(t) ? t->reason
				       : (t->n_node_names ? t->node_names[0] : ""));
	}
	attron(COLOR_PAIR(C_KEYS) | A_REVERSE);
	mvprintw(rows - 1, 0, "%-*.*s", cols, cols,
		 " q quit   w sort by wait   r by runtime   g by gpus   s next sort   "
		 "+/- interval   space refresh");
	attroff(COLOR_PAIR(C_KEYS) | A_REVERSE);
	refresh();
}

static int top_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__EventsRequest er = HPQ__EVENTS_REQUEST__INIT;
	struct hpq_client sub;
	struct view v = { .interval_ms = 2000 };
	struct sigaction sa;
	int64_t next_fetch, last_fetch = 0;
	bool want = true;
	uint64_t secs;
	int c, r, status = CLI_OK;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", top_options)) != -1) {
		switch (c) {
		case OPT_INTERVAL:
			if (cli_parse_duration(cli, "--interval", optarg, &secs) != 0)
				return CLI_USAGE;
			if (secs < 1 || secs > 3600)
				return cli_usage_error(cli, "--interval takes 1s to 1h");
			v.interval_ms = (int64_t)secs * 1000;
			break;
		case OPT_TEAM:
			if (cli_parse_name(cli, "team", optarg) != 0)
				return CLI_USAGE;
			v.team = optarg;
			break;
		case CLI_OPT_HELP:
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (cli->json)
		return cli_usage_error(cli, "a live view has no --json; scripts read the same "
				       "with 'hpq status --json' and 'hpq events --follow --json'");
	if (!isatty(0) || !isatty(1))
		return cli_error(cli, "top needs a terminal; use 'hpq status' in scripts");
	if (cli_connect(cli) != 0)
		return CLI_ERR;

	/* The subscription: only events from now on (since = now). */
	r = hpq_client_connect(&sub, cli->addr, 0);
	if (r < 0)
		return cli_error(cli, "cannot connect to %s: %s", cli_address(cli), sub.errbuf);
	er.follow = true;
	er.since = hpq_now_ms();
	er.limit = 1;
	req.body_case = HPQ__ENVELOPE__BODY_EVENTS;
	req.events = &er;
	r = hpq_client_call(&sub, &req, &reply);
	if (r != 0) {
		cli_error(cli, "cannot follow the events: %s", sub.errbuf);
		hpq_client_close(&sub);
		return CLI_ERR;
	}
	hpq_msg_free(reply);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	atexit(restore_terminal);
	initscr();
	screen_up = true;
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	curs_set(0);
	if (has_colors()) {
		start_color();
		use_default_colors();
		init_pair(C_TITLE, COLOR_CYAN, -1);
		init_pair(C_WARN, COLOR_YELLOW, -1);
		init_pair(C_BAD, COLOR_RED, -1);
		init_pair(C_GOOD, COLOR_GREEN, -1);
		init_pair(C_KEYS, COLOR_WHITE, -1);
	}

	next_fetch = hpq_mono_ms();
	while (!stop_signal) {
		struct pollfd pfd[2] = { { .fd = 0, .events = POLLIN },
					 { .fd = sub.fd, .events = POLLIN } };
		int64_t now = hpq_mono_ms(), wait;
		Hpq__Envelope *push;
		int ch;

		if (want && now - last_fetch >= REFRESH_MIN_MS) {
			view_fetch(&v, &cli->client);
			last_fetch = now;
			next_fetch = now + v.interval_ms;
			want = false;
			draw(&v);
		}
		wait = (want ? last_fetch + REFRESH_MIN_MS : next_fetch) - now;
		if (poll(pfd, 2, wait < 0 ? 0 : (int)wait) < 0 && errno != EINTR) {
			status = CLI_ERR;
			break;
		}
		if (hpq_mono_ms() >= next_fetch)
			want = true;
		/* Pushed events: drain what is buffered without blocking. */
		while ((r = dash_follow_next(&sub, req.id, 0, &push)) > 0) {
			v.events++;
			want = true;
			hpq_msg_free(push);
		}
		if (r < 0) {
			snprintf(v.error, sizeof(v.error), "lost the event stream: %.256s",
				 sub.errbuf);
			draw(&v);
			restore_terminal();
			fprintf(stderr, "hpq top: %s\n", v.error);
			status = CLI_ERR;
			break;
		}
		while ((ch = getch()) != ERR) {
			if (ch == 'q' || ch == 'Q' || ch == 4 /* ^D */) {
				stop_signal = -1;
				break;
			}
			switch (ch) {
			case 'w':
				v.sort = SORT_WAIT;
				break;
			case 'r':
				v.sort = SORT_RUNTIME;
				break;
			case 'g':
				v.sort = SORT_GPUS;
				break;
			case 's':
				v.sort = (v.sort + 1) % SORT_COUNT;
				break;
			case '+':
				if (v.interval_ms < 3600000)
					v.interval_ms += 1000;
				break;
			case '-':
				if (v.interval_ms > 1000)
					v.interval_ms -= 1000;
				break;
			case ' ':
				want = true;
				last_fetch = 0;
				break;
			case KEY_RESIZE:
			default:
				break;
			}
			view_sort(&v);
			draw(&v);
		}
	}
	restore_terminal();
	view_clear(&v);
	hpq_client_close(&sub);
	return status;
}

const struct cmd_entry cmd_top_entry = {
	.name = "top",
	.usage = "top [--interval DURATION] [--team T]",
	.summary = "the status, live: teams, classes and tasks, refreshed as things happen",
	.help = "options:\n"
		"  --interval DURATION  refresh at least this often (default 2s; also on\n"
		"                       every event the daemon pushes)\n"
		"  --team T             only team T\n"
		"keys: q quit, w/r/g sort tasks by wait, run time or GPUs, s next sort,\n"
		"      +/- change the interval, space refresh now\n",
	.exec = top_exec,
};
