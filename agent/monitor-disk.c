/*
 * monitor-disk.c: the disk monitor (see monitor.h).
 *
 * The node's filesystems. Each round a forked probe calls statvfs on the
 * work directory and on the administrator's --health-disk paths and
 * writes one line per path, "PATH<TAB>bavail blocks favail files" or
 * "PATH<TAB>error ERRNO". statvfs on a network filesystem whose server is
 * gone can block for good, which is why it does not run in the agent: the
 * probe's timeout turns that into a finding (disk-unresponsive, fatal) and
 * the agent carries on. Two paths on one filesystem give the same figures;
 * both are named in the one finding, which tells the operator which uses
 * are affected.
 *
 * The tasks' checkpoint directories are not the node's: a user chooses
 * them, and one user's full filesystem must not make the node unhealthy
 * and cost other users their tasks. A second probe, apart from the node's
 * so that a directory that hangs holds up only its own check, measures
 * them, each in a child that has taken the task's user's ids, so that the
 * kernel checks the path with that user's rights, as the task reaches it;
 * a directory not made yet is measured at its nearest existing parent.
 * What it finds (monitor_disk_task_check) is the task's alone: the owner
 * reports it on the task (health_config.task_warning), once per change of
 * that task's problem, not every round.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "monitor.h"
#include "probe.h"
#include "task.h"
#include "xalloc.h"

#define DISK_PATHS_MAX 32
#define DISK_TASKS_MAX 256          /* checkpoint directories measured per round */
#define DISK_OUTPUT_MAX (64u << 10)
#define DISK_REASON_MAX 48

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

/* A path the probe's line format can carry. */
static bool disk_path_ok(const char *path)
{
	return path && path[0] && !strpbrk(path, "\t\n");
}

size_t monitor_disk_node_paths(const struct health_config *cfg, const char **ret, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i <= cfg->ndisks; i++) {
		const char *path = i == 0 ? cfg->work_dir : cfg->disks[i - 1];
		bool dup = false;

		if (!disk_path_ok(path) || n == max)
			continue;
		for (size_t j = 0; j < n && !dup; j++)
			dup = strcmp(ret[j], path) == 0;
		if (!dup)
			ret[n++] = path;
	}
	return n;
}

const char *monitor_disk_task_check(const char *path, const struct statvfs *st, int err,
				    int write_err, unsigned warning, unsigned fatal, char *msg,
				    size_t len)
{
	static const char *const what[2] = {"space", "inodes"};
	double total[2] = {(double)st->f_blocks, (double)st->f_files};
	double avail[2] = {(double)st->f_bavail, (double)st->f_favail};

	if (err) {
		snprintf(msg, len, "%s: the task's user cannot measure it: %s", path,
			 strerror(err));
		return "checkpoint-dir-error";
	}
	if (st->f_flag & ST_RDONLY) {
		snprintf(msg, len, "%s: its filesystem is read-only: checkpoints cannot be "
			 "written there", path);
		return "checkpoint-dir-readonly";
	}
	for (int k = 0; k < 2; k++) {
		double pct;

		if (total[k] <= 0)
			continue;
		pct = 100.0 * avail[k] / total[k];
		if (avail[k] <= 0 || (fatal && pct < fatal)) {
			snprintf(msg, len, "%s: %.1f%% of its %s free: checkpoints written there "
				 "may fail", path, pct, what[k]);
			return "checkpoint-dir-full";
		}
	}
	if (write_err) {
		snprintf(msg, len, "%s: the task's user cannot write there: %s", path,
			 strerror(write_err));
		return "checkpoint-dir-unwritable";
	}
	for (int k = 0; k < 2; k++) {
		double pct;

		if (total[k] <= 0)
			continue;
		pct = 100.0 * avail[k] / total[k];
		if (warning && pct < warning) {
			snprintf(msg, len, "%s: %.1f%% of its %s free (warning below %u%%)", path,
				 pct, what[k], warning);
			return "checkpoint-dir-low";
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ monitor */

/* A task's checkpoint directory in the task probe's run. */
struct disk_task {
	uint64_t id;
	uint32_t attempt;
	uid_t uid;
	gid_t gid;
	char *path;
};

/* What was last reported for a running task: one report per change. */
struct disk_seen {
	uint64_t id;
	uint32_t attempt;
	char reason[DISK_REASON_MAX];   /* "" none */
};

struct disk_state {
	struct health *h;
	struct health_source *src;
	struct probe probe;             /* the node's filesystems */
	char *paths[DISK_PATHS_MAX];    /* of the run in progress */
	size_t npaths;
	struct probe task_probe;        /* the tasks' checkpoint directories */
	struct disk_task *tasks;        /* of the run in progress */
	size_t ntasks;
	struct disk_seen *seen;
	size_t nseen;
};

/* In a child of the probe: statvfs the path, or its nearest existing parent. */
static int disk_statvfs(const char *path, char *p, size_t len, struct statvfs *sv)
{
	int r;

	snprintf(p, len, "%s", path);
	while ((r = statvfs(p, sv)) < 0 && errno == ENOENT && strcmp(p, "/") != 0) {
		char *slash = strrchr(p, '/');

		if (!slash)
			break;
		if (slash == p)
			p[1] = '\0';
		else
			*slash = '\0';
	}
	return r < 0 ? -errno : 0;
}

/* In the probe's child: statvfs each of the node's paths. */
static int disk_body(int fd, void *arg)
{
	struct disk_state *st = arg;

	for (size_t i = 0; i < st->npaths; i++) {
		struct statvfs sv;

		if (statvfs(st->paths[i], &sv) < 0)
			dprintf(fd, "%s\terror %d\n", st->paths[i], errno);
		else
			dprintf(fd, "%s\t%llu %llu %llu %llu\n", st->paths[i],
				(unsigned long long)sv.f_bavail, (unsigned long long)sv.f_blocks,
				(unsigned long long)sv.f_favail, (unsigned long long)sv.f_files);
	}
	return 0;
}

/* In a child of the task probe's child: as the task's user, one line
 * "I<TAB>bavail blocks favail files flags write-errno", "I<TAB>error
 * ERRNO", or "I<TAB>user ERRNO" when it cannot become the user. */
static void disk_task_measure(int fd, size_t i, const struct disk_task *t)
{
	char p[PATH_MAX];
	struct statvfs sv;
	int r, werr = 0;

	if (geteuid() == 0 && t->uid != 0) {
		struct passwd *pw = getpwuid(t->uid);

		if ((pw ? initgroups(pw->pw_name, t->gid) : setgroups(1, &t->gid)) < 0 ||
		    setresgid(t->gid, t->gid, t->gid) < 0 || setresuid(t->uid, t->uid, t->uid) < 0) {
			dprintf(fd, "%zu\tuser %d\n", i, errno);
			return;
		}
	}
	r = disk_statvfs(t->path, p, sizeof(p), &sv);
	if (r < 0) {
		dprintf(fd, "%zu\terror %d\n", i, -r);
		return;
	}
	if (access(p, W_OK) < 0)
		werr = errno;
	dprintf(fd, "%zu\t%llu %llu %llu %llu %lu %d\n", i, (unsigned long long)sv.f_bavail,
		(unsigned long long)sv.f_blocks, (unsigned long long)sv.f_favail,
		(unsigned long long)sv.f_files, (unsigned long)sv.f_flag, werr);
}

/* In the task probe's child: one child per task, one after the other, so
 * that the first task without a line is the one that hangs. */
static int disk_task_body(int fd, void *arg)
{
	struct disk_state *st = arg;

	for (size_t i = 0; i < st->ntasks; i++) {
		pid_t pid = fork();
		int status;

		if (pid < 0)
			return 1;
		if (pid == 0) {
			disk_task_measure(fd, i, &st->tasks[i]);
			_exit(0);
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	return 0;
}

static void disk_paths_clear(struct disk_state *st)
{
	for (size_t i = 0; i < st->npaths; i++)
		free(st->paths[i]);
	st->npaths = 0;
}

static void disk_tasks_clear(struct disk_state *st)
{
	for (size_t i = 0; i < st->ntasks; i++)
		free(st->tasks[i].path);
	st->ntasks = 0;
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

static struct disk_seen *disk_seen_find(struct disk_state *st, uint64_t id, uint32_t attempt)
{
	for (size_t i = 0; i < st->nseen; i++)
		if (st->seen[i].id == id && st->seen[i].attempt == attempt)
			return &st->seen[i];
	return NULL;
}

/* What the task probe found for task t (reason NULL: nothing wrong): told
 * to the owner when it differs from what was told last. */
static void disk_task_result(struct disk_state *st, const struct disk_task *t, const char *reason,
			     const char *msg)
{
	const struct health_config *cfg = &st->h->cfg;
	struct disk_seen *s = disk_seen_find(st, t->id, t->attempt);

	if (!reason) {
		if (s && s->reason[0]) {
			log_info("task %" PRIu64 " attempt %" PRIu32 ": its checkpoint directory %s "
				 "is fine again", t->id, t->attempt, t->path);
			s->reason[0] = '\0';
		}
		return;
	}
	if (s && strcmp(s->reason, reason) == 0)
		return; /* told already */
	if (cfg->task_warning &&
	    !cfg->task_warning(cfg->task_warning_data, t->id, t->attempt, reason, msg))
		return; /* not connected: offered again next round */
	log_notice("task %" PRIu64 " attempt %" PRIu32 ": %s: %s (the task's problem, not the "
		   "node's)", t->id, t->attempt, reason, msg);
	if (!s) {
		st->seen = xreallocarray(st->seen, st->nseen + 1, sizeof(*st->seen));
		s = &st->seen[st->nseen++];
		s->id = t->id;
		s->attempt = t->attempt;
	}
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

static void disk_task_done(struct probe *p)
{
	struct disk_state *st = p->data;
	const struct health_config *cfg = &st->h->cfg;
	bool *answered = xcalloc(st->ntasks + 1, sizeof(*answered));

	for (char *line = p->out, *next; line && *line; line = next) {
		unsigned long long v[4];
		unsigned long flags;
		struct statvfs sv;
		const char *reason;
		char *end, msg[HEALTH_MESSAGE_MAX];
		size_t i;
		int e, werr;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		i = (size_t)strtoull(line, &end, 10);
		if (end == line || *end != '\t' || i >= st->ntasks || answered[i])
			continue;
		answered[i] = true;
		memset(&sv, 0, sizeof(sv));
		if (sscanf(end + 1, "user %d", &e) == 1) {
			log_debug("task %" PRIu64 ": cannot take its user's ids (uid %ld) to check "
				  "its checkpoint directory: %s", st->tasks[i].id,
				  (long)st->tasks[i].uid, strerror(e));
			continue;
		}
		if (sscanf(end + 1, "error %d", &e) == 1) {
			reason = monitor_disk_task_check(st->tasks[i].path, &sv, e, 0,
							 cfg->disk_warning, cfg->disk_fatal, msg,
							 sizeof(msg));
		} else if (sscanf(end + 1, "%llu %llu %llu %llu %lu %d", &v[0], &v[1], &v[2], &v[3],
				  &flags, &werr) == 6) {
			sv.f_bavail = v[0];
			sv.f_blocks = v[1];
			sv.f_favail = v[2];
			sv.f_files = v[3];
			sv.f_flag = flags;
			reason = monitor_disk_task_check(st->tasks[i].path, &sv, 0, werr,
							 cfg->disk_warning, cfg->disk_fatal, msg,
							 sizeof(msg));
		} else {
			continue;
		}
		disk_task_result(st, &st->tasks[i], reason, msg);
	}
	/* One after the other: the first without an answer is the one that hangs;
	 * those after it were not measured this time. */
	for (size_t i = 0; p->timed_out && i < st->ntasks; i++) {
		char msg[HEALTH_MESSAGE_MAX];

		if (answered[i])
			continue;
		snprintf(msg, sizeof(msg), "%s: statvfs did not return within %.0f s: its "
			 "filesystem hangs", st->tasks[i].path, cfg->timeout);
		disk_task_result(st, &st->tasks[i], "checkpoint-dir-unresponsive", msg);
		break;
	}
	free(answered);
}

/* The running tasks' checkpoint directories, into the task probe. */
static void disk_run_tasks(struct disk_state *st)
{
	const struct health_config *cfg = &st->h->cfg;
	const struct task *t;
	size_t k = 0;
	int r;

	if (probe_busy(&st->task_probe)) {
		log_debug("disk: the checkpoint directories' check of the last round is still "
			  "running");
		return;
	}
	disk_tasks_clear(st);
	if (cfg->tasks) {
		dlist_for_each_entry(t, cfg->tasks, entry) {
			struct disk_task *dt;

			if (t->exited || !t->checkpoint_dir || t->checkpoint_dir[0] != '/' ||
			    strpbrk(t->checkpoint_dir, "\t\n") || st->ntasks == DISK_TASKS_MAX)
				continue;
			st->tasks = xreallocarray(st->tasks, st->ntasks + 1, sizeof(*st->tasks));
			dt = &st->tasks[st->ntasks++];
			dt->id = t->id;
			dt->attempt = t->attempt;
			dt->uid = t->uid;
			dt->gid = t->gid;
			dt->path = xstrdup(t->checkpoint_dir);
		}
	}
	/* Forget the tasks that no longer run here. */
	for (size_t i = 0; i < st->nseen; i++) {
		bool running = false;

		for (size_t j = 0; j < st->ntasks && !running; j++)
			running = st->tasks[j].id == st->seen[i].id &&
				  st->tasks[j].attempt == st->seen[i].attempt;
		if (running)
			st->seen[k++] = st->seen[i];
	}
	st->nseen = k;
	if (st->ntasks == 0)
		return;
	r = probe_fork(&st->task_probe, disk_task_body, st, cfg->timeout);
	if (r < 0)
		log_warn("disk: cannot start the check of the tasks' checkpoint directories: %s",
			 hpq_strerror(r));
}

static void disk_run(void *state)
{
	struct disk_state *st = state;
	const char *paths[DISK_PATHS_MAX];
	size_t n;
	int r;

	disk_run_tasks(st);
	if (probe_busy(&st->probe)) {
		if (!st->probe.running) {
			disk_report_hung(st); /* killed, and still not gone */
			health_done(st->src);
		}
		return;
	}
	disk_paths_clear(st);
	n = monitor_disk_node_paths(&st->h->cfg, paths, DISK_PATHS_MAX);
	for (size_t i = 0; i < n; i++)
		st->paths[st->npaths++] = xstrdup(paths[i]);
	r = probe_fork(&st->probe, disk_body, st, st->h->cfg.timeout);
	if (r < 0) {
		health_see(st->src, HEALTH_AGENT, "probe-failed", HEALTH_WARNING, NULL,
			   "cannot start the disk check: %s", hpq_strerror(r));
		health_done(st->src);
	}
}

bool monitor_disk_busy(const void *state)
{
	const struct disk_state *st = state;

	return probe_busy(&st->probe) || probe_busy(&st->task_probe);
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
	probe_init(&st->task_probe, h->loop, DISK_OUTPUT_MAX, disk_task_done, st);
	*ret_state = st;
	return 0;
}

static void disk_release(void *state)
{
	struct disk_state *st = state;

	probe_release(&st->probe);
	probe_release(&st->task_probe);
	disk_paths_clear(st);
	disk_tasks_clear(st);
	free(st->tasks);
	free(st->seen);
	free(st);
}

const struct monitor monitor_disk = {
	.name = "disk",
	.init = disk_init,
	.run = disk_run,
	.release = disk_release,
};
