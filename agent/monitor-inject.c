/*
 * monitor-inject.c: findings from a file, for tests (see monitor.h).
 *
 * Integration tests need a node to turn unhealthy on cue, and then
 * healthy again, without a broken GPU: they write a line to this file
 * and remove it later. The agent treats the result like any other
 * finding (threshold, since, immediate heartbeat), and so does the
 * daemon, which cannot tell the difference; there is no test-only path
 * anywhere else. ev_stat (inotify where libev has it, else polling every
 * second) notices a change at once, so tests need not wait for a round.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "monitor.h"
#include "xalloc.h"

#define INJECT_FILE_MAX (64u << 10)

/* The next blank-separated word of *p, NUL-terminated in place; NULL at the end. */
static char *inject_word(char **p)
{
	char *s = *p + strspn(*p, " \t"), *w;

	if (!*s)
		return NULL;
	w = s;
	s += strcspn(s, " \t");
	if (*s)
		*s++ = '\0';
	*p = s;
	return w;
}

void monitor_inject_apply(struct health_source *src, const char *path, const char *text)
{
	char *copy = xstrdup(text), *line, *next;
	unsigned lineno = 0;

	for (line = copy; line && *line; line = next) {
		char *p, *cat, *reason, *sev, *action = NULL, *msg;
		enum health_category c;
		enum health_severity s;
		size_t n;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		p = line + strspn(line, " \t");
		if (!*p || *p == '#')
			continue;
		cat = inject_word(&p);
		reason = inject_word(&p);
		sev = inject_word(&p);
		if (!sev) {
			health_see(src, HEALTH_AGENT, "health-inject-invalid", HEALTH_WARNING, NULL,
				   "%s:%u: expected 'CATEGORY REASON SEVERITY [action=ACTION] "
				   "MESSAGE'", path, lineno);
			continue;
		}
		if (health_category_parse(cat, &c) < 0) {
			health_see(src, HEALTH_AGENT, "health-inject-invalid", HEALTH_WARNING, NULL,
				   "%s:%u: unknown category '%s': expected accelerator, kernel, "
				   "storage, network, runtime or agent", path, lineno, cat);
			continue;
		}
		if (health_severity_parse(sev, &s) < 0) {
			health_see(src, HEALTH_AGENT, "health-inject-invalid", HEALTH_WARNING, NULL,
				   "%s:%u: unknown severity '%s': expected info, warning or fatal",
				   path, lineno, sev);
			continue;
		}
		p += strspn(p, " \t");
		if (strncmp(p, "action=", 7) == 0) {
			action = inject_word(&p) + 7;
			if (strcmp(action, "reboot") && strcmp(action, "replace") &&
			    strcmp(action, "none")) {
				health_see(src, HEALTH_AGENT, "health-inject-invalid",
					   HEALTH_WARNING, NULL, "%s:%u: unknown action '%s': "
					   "expected reboot, replace or none", path, lineno,
					   action);
				continue;
			}
			if (strcmp(action, "none") == 0)
				action = NULL;
		}
		msg = p + strspn(p, " \t");
		n = strlen(msg);
		while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == '\t' || msg[n - 1] == '\r'))
			msg[--n] = '\0';
		health_see(src, c, reason, s, action, "%s", msg[0] ? msg : reason);
	}
	free(copy);
}

struct inject_state {
	struct health *h;
	struct health_source *src;
	ev_stat stat_w;
};

static void inject_read(struct inject_state *st)
{
	const char *path = st->h->cfg.inject_path;
	char *text = NULL;
	int r = health_read_file(path, INJECT_FILE_MAX, &text);

	if (r == 0)
		monitor_inject_apply(st->src, path, text);
	else if (r != -ENOENT)
		health_see(st->src, HEALTH_AGENT, "health-inject-invalid", HEALTH_WARNING, NULL,
			   "cannot read '%s': %s", path,
			   r == -EFBIG ? "larger than 64 KiB" : hpq_strerror(r));
	free(text);
	health_done(st->src);
}

static void inject_stat_cb(struct ev_loop *loop, ev_stat *w, int revents)
{
	inject_read(w->data);
}

static void inject_run(void *state)
{
	inject_read(state);
}

static int inject_init(struct health *h, struct health_source *src, void **ret_state)
{
	struct inject_state *st;

	if (!h->cfg.inject_path || !h->cfg.inject_path[0])
		return 1;
	st = xcalloc(1, sizeof(*st));
	st->h = h;
	st->src = src;
	ev_stat_init(&st->stat_w, inject_stat_cb, h->cfg.inject_path, 1.0);
	st->stat_w.data = st;
	ev_stat_start(h->loop, &st->stat_w);
	log_notice("health: test findings are read from '%s' (--health-inject)",
		   h->cfg.inject_path);
	*ret_state = st;
	return 0;
}

static void inject_release(void *state)
{
	struct inject_state *st = state;

	ev_stat_stop(st->h->loop, &st->stat_w);
	free(st);
}

const struct monitor monitor_inject = {
	.name = "inject",
	.init = inject_init,
	.run = inject_run,
	.release = inject_release,
};
