/*
 * monitor-script.c: admin health scripts (see monitor.h), after Slurm's
 * HealthCheckProgram and LBNL's NHC.
 *
 * The directory is scanned every round, so scripts can be added and
 * removed without restarting the agent. Each script has its own probe
 * and its own source: its findings live and count independently, and a
 * script that is removed takes its findings with it. Scripts run side by
 * side; a script whose last run has not ended yet (its timeout is longer
 * than the interval) is not started again, and one that was killed but
 * is not gone yet (stuck in the kernel) is reported as hung again.
 *
 * The agent usually runs as root and so are the scripts: a script (or
 * the directory) that another user could change would let that user run
 * anything as root, so such files are refused, as sudo and cron do.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "list.h"
#include "log.h"
#include "monitor.h"
#include "probe.h"
#include "xalloc.h"

#define SCRIPT_OUTPUT_MAX 4096
#define SCRIPTS_MAX 64

/* Copies line number n (0-based) of text, trimmed and cut to len - 1 bytes. */
static void script_line(const char *text, int n, char *buf, size_t len)
{
	size_t l, o = 0;

	for (; n > 0 && text; n--) {
		text = strchr(text, '\n');
		if (text)
			text++;
	}
	buf[0] = '\0';
	if (!text)
		return;
	text += strspn(text, " \t\r");
	l = strcspn(text, "\n");
	for (size_t i = 0; i < l && o + 1 < len; i++)
		buf[o++] = (unsigned char)text[i] < 0x20 ? ' ' : text[i];
	while (o > 0 && buf[o - 1] == ' ')
		o--;
	buf[o] = '\0';
}

void monitor_script_result(struct health_source *src, const char *name, bool timed_out,
			   double timeout, int status, const char *output)
{
	enum health_category category = HEALTH_RUNTIME;
	char first[HEALTH_REASON_MAX + 32], second[HEALTH_MESSAGE_MAX / 2];
	const char *reason = first, *colon;
	int code;

	if (timed_out) {
		health_see(src, HEALTH_RUNTIME, "health-script-timeout", HEALTH_WARNING, NULL,
			   "health script '%s' did not finish within %.0f s and was killed", name,
			   timeout);
		return;
	}
	script_line(output, 0, first, sizeof(first));
	if (WIFSIGNALED(status)) {
		health_see(src, HEALTH_RUNTIME, "health-script-error", HEALTH_WARNING, NULL,
			   "health script '%s' was killed by signal %d", name, WTERMSIG(status));
		return;
	}
	code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (code == 0)
		return;
	if (code != 1 && code != 2) {
		health_see(src, HEALTH_RUNTIME, "health-script-error", HEALTH_WARNING, NULL,
			   "health script '%s' exited %d%s%s", name, code, first[0] ? ": " : "",
			   first);
		return;
	}
	/* "category: reason" */
	colon = strchr(first, ':');
	if (colon) {
		char word[16];
		enum health_category c;

		snprintf(word, sizeof(word), "%.*s", (int)(colon - first), first);
		if ((size_t)(colon - first) < sizeof(word) &&
		    health_category_parse(word, &c) == 0) {
			category = c;
			reason = colon + 1 + strspn(colon + 1, " \t");
		}
	}
	script_line(output, 1, second, sizeof(second));
	if (!reason[0])
		health_see(src, category, "health-script-failed",
			   code == 2 ? HEALTH_FATAL : HEALTH_WARNING, NULL,
			   "health script '%s' exited %d without a reason", name, code);
	else
		health_see(src, category, reason, code == 2 ? HEALTH_FATAL : HEALTH_WARNING, NULL,
			   "health script '%s': %s", name, second[0] ? second : reason);
}

/* ------------------------------------------------------------ monitor */

struct script_state;

struct script {
	struct dlist entry;
	struct script_state *st;
	char *name, *path;
	struct health_source *src;
	struct probe probe;
	bool present;               /* found by the latest scan */
};

struct script_state {
	struct health *h;
	struct health_source *src;  /* the directory's own findings */
	struct dlist scripts;       /* of struct script, newest first */
	size_t nscripts;
};

static void script_free(struct script *s)
{
	dlist_del(&s->entry);
	s->st->nscripts--;
	probe_release(&s->probe);
	health_source_free(s->src);
	free(s->name);
	free(s->path);
	free(s);
}

static void script_done(struct probe *p)
{
	struct script *s = p->data;

	if (!s->present) {
		script_free(s); /* removed while it ran */
		return;
	}
	monitor_script_result(s->src, s->name, p->timed_out, s->st->h->cfg.timeout, p->status,
			      p->out);
	health_done(s->src);
}

static struct script *script_get(struct script_state *st, const char *name)
{
	struct script *s;
	char *src_name;

	dlist_for_each_entry(s, &st->scripts, entry)
		if (strcmp(s->name, name) == 0)
			return s;
	if (st->nscripts >= SCRIPTS_MAX)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->st = st;
	s->name = xstrdup(name);
	xasprintf(&s->path, "%s/%s", st->h->cfg.script_dir, name);
	xasprintf(&src_name, "script %s", name);
	s->src = health_source_new(st->h, src_name);
	free(src_name);
	probe_init(&s->probe, st->h->loop, SCRIPT_OUTPUT_MAX, script_done, s);
	dlist_add_head(&st->scripts, &s->entry);
	st->nscripts++;
	return s;
}

/* Not a script: hidden files, editor backups, package manager leftovers. */
static bool script_name_skipped(const char *name)
{
	static const char *const suffixes[] = {
		"~", ".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".rpmnew", ".rpmsave",
		".rpmorig", ".swp",
	};
	size_t n = strlen(name);

	if (name[0] == '.')
		return true;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t k = strlen(suffixes[i]);

		if (n >= k && strcmp(name + n - k, suffixes[i]) == 0)
			return true;
	}
	return false;
}

/* Could someone other than root and us change it? */
static bool script_unsafe(const struct stat *sb)
{
	return (sb->st_uid != 0 && sb->st_uid != geteuid()) || (sb->st_mode & (S_IWGRP | S_IWOTH));
}

/* Marks the scripts of the directory present; reports what is refused. */
static void script_scan(struct script_state *st)
{
	const char *dir = st->h->cfg.script_dir;
	struct script *s;
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int dfd;

	dlist_for_each_entry(s, &st->scripts, entry)
		s->present = false;
	d = opendir(dir);
	if (!d) {
		health_see(st->src, HEALTH_AGENT, "health-dir-unreadable", HEALTH_WARNING, NULL,
			   "cannot read the health script directory '%s': %s", dir,
			   strerror(errno));
		return;
	}
	dfd = dirfd(d);
	if (fstat(dfd, &sb) == 0 && script_unsafe(&sb)) {
		health_see(st->src, HEALTH_AGENT, "health-script-unsafe", HEALTH_WARNING, NULL,
			   "no health script is run: the directory '%s' can be changed by other "
			   "users than root and the agent's (chmod go-w, chown root)", dir);
		closedir(d);
		return;
	}
	while ((de = readdir(d))) {
		if (script_name_skipped(de->d_name))
			continue;
		if (fstatat(dfd, de->d_name, &sb, 0) < 0 || !S_ISREG(sb.st_mode) ||
		    !(sb.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)))
			continue;
		if (script_unsafe(&sb)) {
			health_see(st->src, HEALTH_AGENT, "health-script-unsafe", HEALTH_WARNING,
				   NULL, "health script '%s' is not run: other users than root "
				   "and the agent's can change it (chmod go-w, chown root)",
				   de->d_name);
			continue;
		}
		s = script_get(st, de->d_name);
		if (!s) {
			health_see(st->src, HEALTH_AGENT, "health-scripts-too-many", HEALTH_WARNING,
				   NULL, "more than %d health scripts in '%s'; the others are "
				   "not run", SCRIPTS_MAX, dir);
			continue;
		}
		s->present = true;
	}
	closedir(d);
}

static void script_run(void *state)
{
	struct script_state *st = state;
	struct script *s, *next;

	script_scan(st);
	health_done(st->src);
	dlist_for_each_entry_safe(s, next, &st->scripts, entry) {
		char *argv[] = {s->path, NULL};
		int r;

		if (!s->present) {
			if (!probe_busy(&s->probe))
				script_free(s); /* else when its run ends */
			continue;
		}
		if (probe_busy(&s->probe)) {
			if (s->probe.running)
				continue; /* still within its timeout */
			/* Killed at its timeout, and still not gone. */
			monitor_script_result(s->src, s->name, true, st->h->cfg.timeout, 0, "");
			health_done(s->src);
			continue;
		}
		r = probe_spawn(&s->probe, argv, st->h->cfg.timeout);
		if (r < 0) {
			health_see(s->src, HEALTH_RUNTIME, "health-script-error", HEALTH_WARNING,
				   NULL, "cannot start health script '%s': %s", s->name,
				   hpq_strerror(r));
			health_done(s->src);
		}
	}
}

static int script_init(struct health *h, struct health_source *src, void **ret_state)
{
	struct script_state *st;

	if (!h->cfg.script_dir || !h->cfg.script_dir[0])
		return 1;
	st = xcalloc(1, sizeof(*st));
	st->h = h;
	st->src = src;
	dlist_init(&st->scripts);
	*ret_state = st;
	return 0;
}

static void script_release(void *state)
{
	struct script_state *st = state;

	while (!dlist_empty(&st->scripts))
		script_free(dlist_first_entry(&st->scripts, struct script, entry));
	free(st);
}

const struct monitor monitor_script = {
	.name = "scripts",
	.init = script_init,
	.run = script_run,
	.release = script_release,
};
