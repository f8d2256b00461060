/*
 * cgroup.c: tasks in cgroups of their own under the agent's delegated
 * cgroup v2 subtree (cgroup.h says what and why).
 *
 * Everything here writes and reads small files of cgroupfs; a failure to
 * set up the subtree is not an error of the agent but a fact about the
 * node, said once (cg->problem) and reported to hpqd.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "error.h"
#include "log.h"
#include "xalloc.h"

#define CGROUP_AGENT_LEAF "agent"
#define CGROUP_CONTROLLERS "+cpu +memory +pids"
#define CGROUP_CPU_PERIOD 100000

static const char *const cgroup_needed[] = {"cpu", "memory", "pids", NULL};

int cgroup_mode_parse(const char *s, enum cgroup_mode *ret)
{
	if (!strcmp(s, "auto"))
		*ret = CGROUP_AUTO;
	else if (!strcmp(s, "required"))
		*ret = CGROUP_REQUIRED;
	else if (!strcmp(s, "off"))
		*ret = CGROUP_OFF;
	else
		return HPQ_EINVAL;
	return 0;
}

const char *cgroup_mode_name(enum cgroup_mode mode)
{
	return mode == CGROUP_REQUIRED ? "required" : mode == CGROUP_OFF ? "off" : "auto";
}

/* ------------------------------------------------------------ parsing */

int cgroup_parse_self(const char *text, char *path, size_t len)
{
	for (const char *line = text; line && *line;) {
		const char *end = strchrnul(line, '\n');

		/* "0::/PATH": hierarchy 0, no controllers named: the v2 one. */
		if (end - line >= 4 && !strncmp(line, "0::/", 4)) {
			size_t n = (size_t)(end - line) - 3;

			if (n >= len)
				return HPQ_EINVAL;
			memcpy(path, line + 3, n);
			path[n] = '\0';
			return 0;
		}
		line = *end ? end + 1 : end;
	}
	return HPQ_ENOTFOUND;
}

/* A mountinfo field with its octal escapes (\040 for a space) undone. */
static int cgroup_unescape(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			c = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		}
		if (o + 1 >= outlen)
			return HPQ_EINVAL;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

int cgroup_parse_mountinfo_line(const char *line, char *mnt, size_t mntlen, char *root,
				size_t rootlen)
{
	const char *f[6], *sep, *fs;
	size_t flen[6];
	const char *p = line;

	/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
	for (int i = 0; i < 6; i++) {
		p += strspn(p, " ");
		if (!*p || *p == '\n')
			return HPQ_EINVAL;
		f[i] = p;
		flen[i] = strcspn(p, " \n");
		p += flen[i];
	}
	sep = strstr(p, " - ");
	if (!sep)
		return HPQ_EINVAL;
	fs = sep + 3;
	if (strncmp(fs, "cgroup2 ", 8) != 0)
		return 0;
	if (cgroup_unescape(f[4], flen[4], mnt, mntlen) < 0 ||
	    cgroup_unescape(f[3], flen[3], root, rootlen) < 0)
		return HPQ_EINVAL;
	return 1;
}

int cgroup_parse_keyed(const char *text, const char *key, uint64_t *ret)
{
	size_t klen = strlen(key);

	for (const char *line = text; line && *line;) {
		const char *end = strchrnul(line, '\n');

		if ((size_t)(end - line) > klen + 1 && !strncmp(line, key, klen) &&
		    line[klen] == ' ') {
			char *stop;
			unsigned long long v;

			errno = 0;
			v = strtoull(line + klen + 1, &stop, 10);
			if (errno || stop == line + klen + 1 || (*stop && *stop != '\n'))
				return HPQ_EINVAL;
			*ret = v;
			return 0;
		}
		line = *end ? end + 1 : end;
	}
	return HPQ_ENOTFOUND;
}

bool cgroup_list_has(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; *p;) {
		size_t len;

		p += strspn(p, " \n");
		len = strcspn(p, " \n");
		if (len == n && !strncmp(p, word, n))
			return true;
		p += len;
	}
	return false;
}

/* ------------------------------------------------------------ files */

/* The whole of a small file into buf (NUL-terminated). Returns 0 or -errno. */
static int cgroup_read(const char *path, char *buf, size_t len)
{
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	while (off + 1 < len) {
		ssize_t n = read(fd, buf + off, len - 1 - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	close(fd);
	return r;
}

/* dir/name into path; -ENAMETOOLONG rather than a cut path. */
static int cgroup_path_join(char *path, size_t len, const char *dir, const char *name)
{
	int n = snprintf(path, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int cgroup_read_at(const char *dir, const char *name, char *buf, size_t len)
{
	char path[4200];
	int r = cgroup_path_join(path, sizeof(path), dir, name);

	return r < 0 ? r : cgroup_read(path, buf, len);
}

/* Writes value to dir/name in one write. Returns 0 or -errno. */
static int cgroup_write(const char *dir, const char *name, const char *value)
{
	char path[4200];
	size_t n = strlen(value);
	int fd, r = cgroup_path_join(path, sizeof(path), dir, name);

	if (r < 0)
		return r;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, n) != (ssize_t)n)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static int cgroup_access(const char *dir, const char *name, int mode)
{
	char path[4200];
	int r = cgroup_path_join(path, sizeof(path), dir, name);

	if (r < 0)
		return r;
	return access(path, mode) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------ the subtree */

/* Where the calling process's cgroup is, on the cgroup2 mount. */
static int cgroup_find_self(char *dir, size_t len, char *why, size_t whylen)
{
	char self[4096], line_mnt[4096], line_root[4096], *text = NULL;
	char text_self[8192];
	size_t cap = 0;
	bool any = false;
	FILE *f;
	int r;

	r = cgroup_read("/proc/self/cgroup", text_self, sizeof(text_self));
	if (r < 0)
		return hpq_errf(why, whylen, r, "cannot read /proc/self/cgroup: %s",
				hpq_strerror(r));
	if (cgroup_parse_self(text_self, self, sizeof(self)) < 0)
		return hpq_errf(why, whylen, HPQ_ENOTFOUND, "no cgroup v2 hierarchy (this host "
				"uses cgroup v1 only)");
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return hpq_errf(why, whylen, -errno, "cannot read /proc/self/mountinfo: %s",
				strerror(errno));
	while (getline(&text, &cap, f) > 0) {
		size_t rl;

		if (cgroup_parse_mountinfo_line(text, line_mnt, sizeof(line_mnt), line_root,
						sizeof(line_root)) != 1)
			continue;
		any = true;
		/* The mount shows the tree from line_root down; our path is from
		 * the top of the (namespace's) tree. */
		rl = strcmp(line_root, "/") ? strlen(line_root) : 0;
		if (rl && (strncmp(self, line_root, rl) || (self[rl] && self[rl] != '/')))
			continue;
		snprintf(dir, len, "%s%s", line_mnt,
			 self[rl] && strcmp(self + rl, "/") ? self + rl : "");
		free(text);
		fclose(f);
		return 0;
	}
	free(text);
	fclose(f);
	return hpq_errf(why, whylen, HPQ_ENOTFOUND, any ? "the agent's cgroup %s is not on a "
			"cgroup2 mount it can see" : "no cgroup2 mount (this host uses cgroup "
			"v1)", self);
}

static int cgroup_setup(struct cgroup *cg, char *why, size_t whylen)
{
	char dir[4200], leaf[4300], list[1024], missing[64] = "";
	const char *base;
	bool in_leaf;
	int r;

	r = cgroup_find_self(dir, sizeof(dir), why, whylen);
	if (r < 0)
		return r;
	base = strrchr(dir, '/');
	in_leaf = base && !strcmp(base + 1, CGROUP_AGENT_LEAF);
	if (in_leaf)
		dir[base - dir] = '\0';
	r = cgroup_read_at(dir, "cgroup.controllers", list, sizeof(list));
	if (r < 0)
		return hpq_errf(why, whylen, r, "cannot read %s/cgroup.controllers: %s", dir,
				hpq_strerror(r));
	for (int i = 0; cgroup_needed[i]; i++)
		if (!cgroup_list_has(list, cgroup_needed[i]))
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
				 "%s%s", missing[0] ? ", " : "", cgroup_needed[i]);
	if (missing[0])
		return hpq_errf(why, whylen, HPQ_EUNAVAIL, "the cgroup2 subtree %s lacks the %s "
				"controller%s (the host keeps %s on cgroup v1, or does not "
				"delegate %s to the agent)", dir, missing,
				strchr(missing, ',') ? "s" : "", strchr(missing, ',') ? "them" :
				"it", strchr(missing, ',') ? "them" : "it");
	if (access(dir, W_OK) < 0 || cgroup_access(dir, "cgroup.subtree_control", W_OK) < 0 ||
	    cgroup_access(dir, "cgroup.procs", W_OK) < 0)
		return hpq_errf(why, whylen, HPQ_EPERM, "the cgroup %s is not delegated to the "
				"agent (not writable by uid %lu): run it under systemd with "
				"Delegate=yes, or see hpq-agent(8)", dir, (unsigned long)geteuid());
	snprintf(leaf, sizeof(leaf), "%s/%s", dir, CGROUP_AGENT_LEAF);
	if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
		return hpq_errf(why, whylen, -errno, "cannot create %s: %s", leaf,
				strerror(errno));
	if (!in_leaf) {
		r = cgroup_write(leaf, "cgroup.procs", "0");
		if (r < 0)
			return hpq_errf(why, whylen, r, "cannot move the agent into %s: %s", leaf,
					hpq_strerror(r));
	}
	r = cgroup_write(dir, "cgroup.subtree_control", CGROUP_CONTROLLERS);
	if (r < 0)
		return hpq_errf(why, whylen, r, "cannot enable the cpu, memory and pids "
				"controllers in %s/cgroup.subtree_control: %s%s", dir,
				hpq_strerror(r), r == -EBUSY ? " (other processes share the "
				"agent's cgroup: give the agent one of its own, hpq-agent(8))" : "");
	cg->root = xstrdup(dir);
	return 0;
}

int cgroup_init(struct cgroup *cg, enum cgroup_mode mode, uint64_t pids_max, char *err,
		size_t errlen)
{
	char why[CGROUP_PROBLEM_MAX];

	memset(cg, 0, sizeof(*cg));
	cg->pids_max = pids_max ? pids_max : CGROUP_DEFAULT_PIDS_MAX;
	if (mode == CGROUP_OFF) {
		snprintf(cg->problem, sizeof(cg->problem), "confinement is off (cgroup = off)");
		return 0;
	}
	if (cgroup_setup(cg, why, sizeof(why)) < 0) {
		if (mode == CGROUP_REQUIRED)
			return hpq_errf(err, errlen, HPQ_EUNAVAIL, "cgroup = required, but tasks "
					"cannot be confined: %s", why);
		snprintf(cg->problem, sizeof(cg->problem), "%s", why);
		return 0;
	}
	cg->enabled = true;
	return 0;
}

void cgroup_release(struct cgroup *cg)
{
	free(cg->root);
	memset(cg, 0, sizeof(*cg));
}

/* ------------------------------------------------------------ tasks */

void cgroup_task_path(const struct cgroup *cg, uint64_t id, uint32_t attempt, char *buf,
		      size_t len)
{
	snprintf(buf, len, "%s/task-%" PRIu64 "-%" PRIu32, cg->root ? cg->root : "", id,
		 attempt);
}

int cgroup_task_create(struct cgroup *cg, uint64_t id, uint32_t attempt, uint32_t cpus,
		       uint64_t mem_mib, char *why, size_t whylen)
{
	char dir[4200], v[64];
	int r;

	if (!cg->enabled)
		return 0;
	cgroup_task_path(cg, id, attempt, dir, sizeof(dir));
	/* A leftover of an earlier run with the same name (a restored
	 * database hands out ids again) goes if it is empty. */
	if (mkdir(dir, 0755) < 0 && (errno != EEXIST || rmdir(dir) < 0 || mkdir(dir, 0755) < 0))
		return hpq_errf(why, whylen, -errno, "cannot create the task's cgroup %s: %s",
				dir, strerror(errno));
	if (cpus) {
		snprintf(v, sizeof(v), "%" PRIu64 " %d", (uint64_t)cpus * CGROUP_CPU_PERIOD,
			 CGROUP_CPU_PERIOD);
		r = cgroup_write(dir, "cpu.max", v);
		if (r < 0)
			goto fail_cpu;
	}
	if (mem_mib) {
		snprintf(v, sizeof(v), "%" PRIu64, mem_mib << 20);
		r = cgroup_write(dir, "memory.max", v);
		if (r < 0) {
			hpq_errf(why, whylen, r, "cannot set %s/memory.max: %s", dir,
				 hpq_strerror(r));
			goto fail;
		}
	}
	/* Without swap accounting (swapaccount=0) the file is missing: no swap
	 * to take anyway. */
	r = cgroup_write(dir, "memory.swap.max", "0");
	if (r < 0 && r != -ENOENT) {
		hpq_errf(why, whylen, r, "cannot set %s/memory.swap.max: %s", dir,
			 hpq_strerror(r));
		goto fail;
	}
	snprintf(v, sizeof(v), "%" PRIu64, cg->pids_max);
	r = cgroup_write(dir, "pids.max", v);
	if (r < 0) {
		hpq_errf(why, whylen, r, "cannot set %s/pids.max: %s", dir, hpq_strerror(r));
		goto fail;
	}
	return 0;
fail_cpu:
	hpq_errf(why, whylen, r, "cannot set %s/cpu.max: %s", dir, hpq_strerror(r));
fail:
	(void)rmdir(dir);
	return r;
}

int cgroup_join(const char *dir)
{
	static const char name[] = "/cgroup.procs";
	char path[4200];
	size_t n = strlen(dir);
	int fd, r = 0;

	if (n + sizeof(name) > sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n);
	memcpy(path + n, name, sizeof(name));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "0", 1) != 1)
		r = -errno;
	close(fd);
	return r;
}

void cgroup_task_sample(const struct cgroup *cg, uint64_t id, uint32_t attempt, uint64_t *peak)
{
	char dir[4200], buf[64];
	uint64_t v;
	char *end;

	if (!cg->enabled)
		return;
	cgroup_task_path(cg, id, attempt, dir, sizeof(dir));
	if (cgroup_read_at(dir, "memory.current", buf, sizeof(buf)) < 0)
		return;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (!errno && end != buf && v > *peak)
		*peak = v;
}

/* Kills every process left in dir; waits a little for them to leave it. */
static void cgroup_kill_all(const char *dir)
{
	char buf[4096], *p, *end;

	if (cgroup_write(dir, "cgroup.kill", "1") == -ENOENT) {
		/* Before kernel 5.14: one by one, a few rounds for forks in between. */
		for (int round = 0; round < 3; round++) {
			if (cgroup_read_at(dir, "cgroup.procs", buf, sizeof(buf)) < 0 || !buf[0])
				break;
			for (p = buf; *p; p = end) {
				long pid = strtol(p, &end, 10);

				if (end == p)
					break;
				if (pid > 1)
					(void)kill((pid_t)pid, SIGKILL);
				end += strspn(end, "\n");
			}
		}
	}
	/* SIGKILLed processes leave the cgroup as they exit, in microseconds;
	 * one in uninterruptible sleep may take longer, and is left for
	 * cgroup_task_remove. */
	for (int i = 0; i < 20; i++) {
		uint64_t populated = 1;

		if (cgroup_read_at(dir, "cgroup.events", buf, sizeof(buf)) < 0 ||
		    cgroup_parse_keyed(buf, "populated", &populated) < 0 || !populated)
			return;
		nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
	}
}

void cgroup_task_finish(struct cgroup *cg, uint64_t id, uint32_t attempt,
			struct cgroup_usage *u)
{
	char dir[4200], buf[2048];
	uint64_t v;

	if (!cg->enabled)
		return;
	cgroup_task_path(cg, id, attempt, dir, sizeof(dir));
	if (access(dir, F_OK) < 0)
		return;
	if (cgroup_read_at(dir, "memory.events", buf, sizeof(buf)) == 0 &&
	    cgroup_parse_keyed(buf, "oom_kill", &v) == 0 && v > 0)
		u->oom = true;
	if (cgroup_read_at(dir, "memory.peak", buf, sizeof(buf)) == 0) {
		char *end;

		errno = 0;
		v = strtoull(buf, &end, 10);
		if (!errno && end != buf && v > u->peak_mem)
			u->peak_mem = v;
	} else {
		cgroup_task_sample(cg, id, attempt, &u->peak_mem);
	}
	if (cgroup_read_at(dir, "cpu.stat", buf, sizeof(buf)) == 0 &&
	    cgroup_parse_keyed(buf, "usage_usec", &v) == 0)
		u->cpu_usec = v;
	cgroup_kill_all(dir);
	cgroup_task_remove(cg, id, attempt);
}

void cgroup_task_remove(struct cgroup *cg, uint64_t id, uint32_t attempt)
{
	char dir[4200];

	if (!cg->enabled)
		return;
	cgroup_task_path(cg, id, attempt, dir, sizeof(dir));
	if (rmdir(dir) < 0 && errno != ENOENT)
		log_debug("cannot remove the cgroup %s yet: %s", dir, strerror(errno));
}
