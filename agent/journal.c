/*
 * journal.c: atomic save and strict load of the agent's task journal.
 * The format and the crash-safety argument are in journal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "journal.h"
#include "path.h"
#include "xalloc.h"

#define JOURNAL_MAGIC "hpq-agent-journal"
#define JOURNAL_VERSION 1
#define JOURNAL_MAX_BYTES (16u << 20)
#define JOURNAL_MAX_GPUS 4096  /* the most an agent may have (config.c, gpus) */

static void journal_write_task(FILE *f, const struct task *t)
{
	fprintf(f, "task id=%" PRIu64 " attempt=%" PRIu32 " pid=%ld pstart=%" PRIu64
		" uid=%lu gid=%lu start=%" PRId64 " limit=%" PRIu64 " signal=%d grace=%" PRIu64
		" gpus=",
		t->id, t->attempt, (long)t->pid, t->proc_start, (unsigned long)t->uid,
		(unsigned long)t->gid, t->start_ms, t->time_limit_s, t->stop_signal, t->grace_s);
	if (t->ngpus == 0)
		fputc('-', f);
	for (uint32_t i = 0; i < t->ngpus; i++)
		fprintf(f, "%s%" PRIu32, i ? "," : "", t->gpus[i]);
	fprintf(f, " kill=%s deadline=%" PRId64 " exited=%d code=%d end=%" PRId64 " reason=%s"
		" cluster=%s sup=%ld sstart=%" PRIu64 " oom=%d peak=%" PRIu64 " cpu=%" PRIu64 "\n",
		t->kill_reason[0] ? t->kill_reason : "-", t->kill_deadline_ms, t->exited ? 1 : 0,
		t->exit_code, t->end_ms, t->reason[0] ? t->reason : "-",
		t->cluster_id[0] ? t->cluster_id : "-", (long)t->sup_pid, t->sup_start,
		t->oom ? 1 : 0, t->peak_mem, t->cpu_usec);
}

int journal_save(const char *path, const struct dlist *tasks)
{
	const struct task *t;
	char *tmp = NULL;
	FILE *f = NULL;
	int fd = -1, r = 0;

	xasprintf(&tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	f = fdopen(fd, "w");
	if (!f) {
		r = -errno;
		close(fd);
		goto out;
	}
	fprintf(f, "# hpq-agent: tasks on this node and exits not yet acknowledged by hpqd\n");
	fprintf(f, "%s %d\n", JOURNAL_MAGIC, JOURNAL_VERSION);
	dlist_for_each_entry(t, tasks, entry)
		journal_write_task(f, t);
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) < 0) {
		r = errno ? -errno : -EIO;
		goto out;
	}
	r = fclose(f) == 0 ? 0 : -errno;
	f = NULL;
	if (r < 0)
		goto out;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto out;
	}
	r = hpq_path_sync_dir_of(path);
out:
	if (f)
		fclose(f);
	if (r < 0)
		unlink(tmp);
	free(tmp);
	return r;
}

/* ------------------------------------------------------------------ load */

struct jparse {
	char *err;
	size_t errlen;
	unsigned line;
};

static int jfail(struct jparse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int jfail(struct jparse *p, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!p->err || p->errlen == 0)
		return HPQ_EINVAL;
	if (p->line)
		n = snprintf(p->err, p->errlen, "line %u: ", p->line);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - n, fmt, ap);
		va_end(ap);
	}
	return HPQ_EINVAL;
}

static int jnum(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*ret = v;
	return 0;
}

static int jsnum(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	char *end;
	long long v;

	if (!*s)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*ret = v;
	return 0;
}

/* A reason word: "-" (empty) or 1..TASK_REASON_MAX-1 of [A-Za-z0-9._-]. */
static int jword(const char *s, char dst[TASK_REASON_MAX])
{
	size_t n = strlen(s);

	if (strcmp(s, "-") == 0) {
		dst[0] = '\0';
		return 0;
	}
	if (n == 0 || n >= TASK_REASON_MAX || strspn(s, "abcdefghijklmnopqrstuvwxyz"
					       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return -1;
	memcpy(dst, s, n + 1);
	return 0;
}

static int jgpus(const char *s, struct task *t)
{
	uint32_t *gpus = NULL, n = 0;
	char *copy, *tok, *next;
	uint64_t v;
	int r = 0;

	if (strcmp(s, "-") == 0)
		return 0;
	/* Split by hand: strtok would accept "0,,1". */
	copy = xstrdup(s);
	for (tok = copy; tok; tok = next) {
		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		if (n >= JOURNAL_MAX_GPUS || jnum(tok, UINT32_MAX, &v) < 0) {
			r = -1;
			break;
		}
		gpus = xreallocarray(gpus, n + 1, sizeof(*gpus));
		gpus[n++] = (uint32_t)v;
	}
	free(copy);
	if (r < 0) {
		free(gpus);
		return -1;
	}
	t->gpus = gpus;
	t->ngpus = n;
	return 0;
}

enum {
	K_ID, K_ATTEMPT, K_PID, K_PSTART, K_UID, K_GID, K_START, K_LIMIT, K_SIGNAL, K_GRACE,
	K_GPUS, K_KILL, K_DEADLINE, K_EXITED, K_CODE, K_END, K_REASON, K_CLUSTER, K_SUP,
	K_SSTART, K_OOM, K_PEAK, K_CPU, K_COUNT
};

static const char *const jkeys[K_COUNT] = {
	"id", "attempt", "pid", "pstart", "uid", "gid", "start", "limit", "signal", "grace",
	"gpus", "kill", "deadline", "exited", "code", "end", "reason", "cluster", "sup", "sstart",
	"oom", "peak", "cpu",
};

static int jtask_field(struct task *t, int k, const char *v)
{
	uint64_t u;
	int64_t s;

	switch (k) {
	case K_ID:
		if (jnum(v, UINT64_MAX, &u) < 0 || u == 0)
			return -1;
		t->id = u;
		return 0;
	case K_ATTEMPT:
		if (jnum(v, UINT32_MAX, &u) < 0 || u == 0)
			return -1;
		t->attempt = (uint32_t)u;
		return 0;
	case K_PID:
		if (jnum(v, INT32_MAX, &u) < 0)
			return -1;
		t->pid = (pid_t)u;
		return 0;
	case K_PSTART:
		return jnum(v, UINT64_MAX, &t->proc_start);
	case K_UID:
		if (jnum(v, UINT32_MAX - 1, &u) < 0)
			return -1;
		t->uid = (uid_t)u;
		return 0;
	case K_GID:
		if (jnum(v, UINT32_MAX - 1, &u) < 0)
			return -1;
		t->gid = (gid_t)u;
		return 0;
	case K_START:
		return jsnum(v, 0, INT64_MAX, &t->start_ms);
	case K_LIMIT:
		return jnum(v, UINT64_MAX, &t->time_limit_s);
	case K_SIGNAL:
		if (jnum(v, 64, &u) < 0 || u == 0)
			return -1;
		t->stop_signal = (int)u;
		return 0;
	case K_GRACE:
		return jnum(v, UINT64_MAX, &t->grace_s);
	case K_GPUS:
		return jgpus(v, t);
	case K_KILL:
		return jword(v, t->kill_reason);
	case K_DEADLINE:
		return jsnum(v, 0, INT64_MAX, &t->kill_deadline_ms);
	case K_EXITED:
		if (strcmp(v, "0") && strcmp(v, "1"))
			return -1;
		t->exited = v[0] == '1';
		return 0;
	case K_CODE:
		if (jsnum(v, -1, 255 + 128, &s) < 0)
			return -1;
		t->exit_code = (int)s;
		return 0;
	case K_END:
		return jsnum(v, 0, INT64_MAX, &t->end_ms);
	case K_REASON:
		return jword(v, t->reason);
	case K_CLUSTER:
		if (strcmp(v, "-") == 0)
			return 0;
		if (!task_cluster_id_ok(v))
			return -1;
		memcpy(t->cluster_id, v, TASK_CLUSTER_ID_LEN + 1);
		return 0;
	case K_SUP:
		if (jnum(v, INT32_MAX, &u) < 0 || u == 1)
			return -1;
		t->sup_pid = (pid_t)u;
		return 0;
	case K_SSTART:
		return jnum(v, UINT64_MAX, &t->sup_start);
	case K_OOM:
		if (strcmp(v, "0") && strcmp(v, "1"))
			return -1;
		t->oom = v[0] == '1';
		return 0;
	case K_PEAK:
		return jnum(v, UINT64_MAX, &t->peak_mem);
	case K_CPU:
		return jnum(v, UINT64_MAX, &t->cpu_usec);
	}
	return -1;
}

static int jtask(struct jparse *p, char *line, struct task **ret)
{
	struct task *t = task_new(0, 0, NULL);
	bool seen[K_COUNT] = {false};
	char *tok, *save = NULL;
	int r = 0;

	for (tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '=');
		int k;

		if (!eq) {
			r = jfail(p, "'%s' is not key=value", tok);
			goto out;
		}
		*eq = '\0';
		for (k = 0; k < K_COUNT; k++)
			if (strcmp(tok, jkeys[k]) == 0)
				break;
		if (k == K_COUNT)
			continue; /* written by a newer agent */
		if (seen[k]) {
			r = jfail(p, "'%s' given twice", tok);
			goto out;
		}
		seen[k] = true;
		if (jtask_field(t, k, eq + 1) < 0) {
			r = jfail(p, "invalid %s '%s'", tok, eq + 1);
			goto out;
		}
	}
	for (int k = 0; k < K_COUNT; k++) {
		/* A journal of an older agent lacks the cluster (log files named by
		 * it), the supervisor (none then) and the cgroup's usage. */
		if (!seen[k] && k != K_CLUSTER && k != K_SUP && k != K_SSTART && k != K_OOM &&
		    k != K_PEAK && k != K_CPU) {
			r = jfail(p, "missing '%s'", jkeys[k]);
			goto out;
		}
	}
	if (!t->exited && t->pid <= 1) {
		r = jfail(p, "running task %" PRIu64 " without a pid", t->id);
		goto out;
	}
	*ret = t;
	t = NULL;
out:
	task_free(t);
	return r;
}

static int journal_read_file(const char *path, char **ret_text)
{
	struct stat st;
	char *buf = NULL;
	size_t off = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_size > JOURNAL_MAX_BYTES) {
		r = -EFBIG;
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	if (strlen(buf) != off) {
		r = HPQ_EINVAL; /* NUL bytes: not a journal */
		goto out;
	}
	*ret_text = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

int journal_load(const char *path, struct dlist *ret_tasks, char *err, size_t errlen)
{
	struct jparse p = {err, errlen, 0};
	struct dlist tasks = DLIST_INIT(tasks);
	char *text = NULL, *line, *next;
	bool header = false;
	int r;

	r = journal_read_file(path, &text);
	if (r == -ENOENT)
		return 0;
	if (r == HPQ_EINVAL) {
		r = jfail(&p, "binary data in the journal");
		goto out;
	}
	if (r < 0)
		goto out;

	for (line = text; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		p.line++;
		if (line[0] == '\0')
			continue;
		if (line[0] == '#')
			continue;
		if (!header) {
			char magic[32];
			int version, n = 0;

			if (sscanf(line, "%31s %d%n", magic, &version, &n) != 2 || line[n] ||
			    strcmp(magic, JOURNAL_MAGIC)) {
				r = jfail(&p, "not an hpq-agent journal");
				goto out;
			}
			if (version != JOURNAL_VERSION) {
				r = jfail(&p, "journal version %d, this agent reads %d", version,
					  JOURNAL_VERSION);
				goto out;
			}
			header = true;
			continue;
		}
		if (strncmp(line, "task ", 5) == 0) {
			struct task *t = NULL;

			r = jtask(&p, line + 5, &t);
			if (r < 0)
				goto out;
			if (task_find(&tasks, t->id, t->attempt)) {
				r = jfail(&p, "task %" PRIu64 " attempt %" PRIu32 " listed twice",
					  t->id, t->attempt);
				task_free(t);
				goto out;
			}
			dlist_add_tail(&tasks, &t->entry);
			continue;
		}
		r = jfail(&p, "unknown record");
		goto out;
	}
	if (!header) {
		p.line = 0;
		r = jfail(&p, "empty journal (no header line)");
		goto out;
	}
	dlist_splice_tail(ret_tasks, &tasks);
out:
	task_list_release(&tasks);
	free(text);
	return r;
}
