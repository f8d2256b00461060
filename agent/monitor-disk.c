/*
 * monitor-disk.c: the disk monitor (see monitor.h).
 *
 * Each round a forked probe calls statvfs on every watched path and
 * writes one line per path, "PATH<TAB>bavail blocks favail files" or
 * "PATH<TAB>error ERRNO"; a path that does not exist yet (a checkpoint
 * directory the task has not made) is measured at its nearest existing
 * parent. statvfs on a network filesystem whose server is gone can block
 * for good, which is why it does not run in the agent: the probe's
 * timeout turns that into a finding (disk-unresponsive, fatal) and the
 * agent carries on.
 *
 * Two paths on one filesystem give the same figures; both are named in
 * the one finding, which tells the operator which uses are affected.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "monitor.h"
#include "probe.h"
#include "task.h"
#include "xalloc.h"

#define DISK_PATHS_MAX 32
#define DISK_OUTPUT_MAX (64u << 10)

void monitor_disk_check(struct health_source *src, const char *path, const struct statvfs *st,
			unsigned warning, unsigned fatal)
{
	static const struct {
		const char *reason, *what;
	} kinds[2] = {{"disk-space-low", "space"}, {"disk-inodes-low", "inodes"}};
	double total[2] = {(double)st->f_blocks, (double)st->f_files};
	double avail[2] = {(double)st->f_bavail, (double)st->f_favail};

	for (int k = 0; k < 2; k++) {
		double pct;

		if (total[k] <= 0)
			continue; /* not counted by this filesystem (inodes on btrfs, say) */
		pct = 100.0 * avail[k] / total[k];
		if (fatal && pct < fatal)
			health_see(src, HEALTH_STORAGE, kinds[k].reason, HEALTH_FATAL, NULL,
				   "%s: %.1f%% of its %s free (fatal below %u%%)", path, pct,
				   kinds[k].what, fatal);
		else if (warning && pct < warning)
			health_see(src, HEALTH_STORAGE, kinds[k].reason, HEALTH_WARNING, NULL,
				   "%s: %.1f%% of its %s free (warning below %u%%)", path, pct,
				   kinds[k].what, warning);
	}
}

/* ------------------------------------------------------------ monitor */

struct disk_state {
	struct health *h;
	struct health_source *src;
	struct probe probe;
	char *paths[DISK_PATHS_MAX];   /* of the run in progress */
	size_t npaths;
};

/* In the probe's child: statvfs each path (or its nearest existing parent). */
static int disk_body(int fd, void *arg)
{
	struct disk_state *st = arg;

	for (size_t i = 0; i < st->npaths; i++) {
		char p[PATH_MAX];
		struct statvfs sv;
		int r;

		snprintf(p, sizeof(p), "%s", st->paths[i]);

		while ((r = statvfs(p, &sv)) < 0 && errno == ENOENT && strcmp(p, "/") != 0) {
			char *slash = strrchr(p, '/');

			if (slash == p)
				p[1] = '\0';
			else
				*slash = '\0';
		}
		if (r < 0)
			dprintf(fd, "%s\terror %d\n", st->paths[i], errno);
		else
			dprintf(fd, "%s\t%llu %llu %llu %llu\n", st->paths[i],
				(unsigned long long)sv.f_bavail, (unsigned long long)sv.f_blocks,
				(unsigned long long)sv.f_favail, (unsigned long long)sv.f_files);
	}
	return 0;
}

static void disk_paths_clear(struct disk_state *st)
{
	for (size_t i = 0; i < st->npaths; i++)
		free(st->paths[i]);
	st->npaths = 0;
}

static void disk_add(struct disk_state *st, const char *path)
{
	if (!path || path[0] != '/' || strpbrk(path, "\t\n") || st->npaths == DISK_PATHS_MAX)
		return;
	for (size_t i = 0; i < st->npaths; i++)
		if (strcmp(st->paths[i], path) == 0)
			return;
	st->paths[st->npaths++] = xstrdup(path);
}

static void disk_report_hung(struct disk_state *st)
{
	char list[512] = "";
	size_t used = 0;

	for (size_t i = 0; i < st->npaths && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 st->paths[i]);
	health_see(st->src, HEALTH_STORAGE, "disk-unresponsive", HEALTH_FATAL, NULL,
		   "statvfs did not return within %.0f s for one of %s: a filesystem hangs",
		   st->h->cfg.timeout, list);
}

static void disk_done(struct probe *p)
{
	struct disk_state *st = p->data;
	const struct health_config *cfg = &st->h->cfg;

	if (p->timed_out) {
		disk_report_hung(st);
		health_done(st->src);
		return;
	}
	for (char *line = p->out, *next; line && *line; line = next) {
		unsigned long long v[4];
		struct statvfs sv;
		char *tab;
		int e;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		tab = strchr(line, '\t');
		if (!tab)
			continue;
		*tab++ = '\0';
		if (sscanf(tab, "error %d", &e) == 1) {
			health_see(st->src, HEALTH_STORAGE, "disk-error",
				   e == EIO ? HEALTH_FATAL : HEALTH_WARNING, NULL,
				   "%s: cannot measure its filesystem: %s", line, strerror(e));
			continue;
		}
		if (sscanf(tab, "%llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3]) != 4)
			continue;
		memset(&sv, 0, sizeof(sv));
		sv.f_bavail = v[0];
		sv.f_blocks = v[1];
		sv.f_favail = v[2];
		sv.f_files = v[3];
		monitor_disk_check(st->src, line, &sv, cfg->disk_warning, cfg->disk_fatal);
	}
	health_done(st->src);
}

static void disk_run(void *state)
{
	struct disk_state *st = state;
	const struct task *t;
	int r;

	if (probe_busy(&st->probe)) {
		if (!st->probe.running) {
			disk_report_hung(st); /* killed, and still not gone */
			health_done(st->src);
		}
		return;
	}
	disk_paths_clear(st);
	disk_add(st, st->h->cfg.work_dir);
	if (st->h->cfg.tasks)
		dlist_for_each_entry(t, st->h->cfg.tasks, entry)
			if (!t->exited)
				disk_add(st, t->checkpoint_dir);
	r = probe_fork(&st->probe, disk_body, st, st->h->cfg.timeout);
	if (r < 0) {
		health_see(st->src, HEALTH_AGENT, "probe-failed", HEALTH_WARNING, NULL,
			   "cannot start the disk check: %s", hpq_strerror(r));
		health_done(st->src);
	}
}

static int disk_init(struct health *h, struct health_source *src, void **ret_state)
{
	struct disk_state *st;

	if (!h->cfg.work_dir || (!h->cfg.disk_warning && !h->cfg.disk_fatal))
		return 1;
	st = xcalloc(1, sizeof(*st));
	st->h = h;
	st->src = src;
	probe_init(&st->probe, h->loop, DISK_OUTPUT_MAX, disk_done, st);
	*ret_state = st;
	return 0;
}

static void disk_release(void *state)
{
	struct disk_state *st = state;

	probe_release(&st->probe);
	disk_paths_clear(st);
	free(st);
}

const struct monitor monitor_disk = {
	.name = "disk",
	.init = disk_init,
	.run = disk_run,
	.release = disk_release,
};
