/*
 * batch.c: a batch task's script copy, output patterns and SLURM_*
 * environment (batch.h).
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

#include "batch.h"
#include "error.h"
#include "xalloc.h"

/* ------------------------------------------------------------ patterns */

struct buf {
	char *s;
	size_t n, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
}

/* A number, zero-padded to width. */
static void buf_num(struct buf *b, uint64_t v, int width)
{
	char num[64];
	int n = snprintf(num, sizeof(num), "%0*" PRIu64, width, v);

	buf_add(b, num, (size_t)n);
}

char *batch_expand(const char *pattern, const struct batch_names *nm)
{
	struct buf b = {NULL, 0, 0};
	const char *p = pattern;

	buf_add(&b, "", 0);
	while (*p) {
		const char *start = p, *q;
		int width = 0;

		if (*p != '%') {
			q = strchrnul(p, '%');
			buf_add(&b, p, (size_t)(q - p));
			p = q;
			continue;
		}
		q = p + 1;
		while (*q >= '0' && *q <= '9' && q - p < 3)
			width = width * 10 + (*q++ - '0');
		switch (*q) {
		case '%':
			if (q != p + 1)
				goto literal;
			buf_add(&b, "%", 1);
			break;
		case 'j':
			buf_num(&b, nm->task_id, width);
			break;
		case 'A':
			buf_num(&b, nm->has_array ? nm->array_id : nm->task_id, width);
			break;
		case 'a':
			buf_num(&b, nm->has_array ? nm->array_index : BATCH_NO_ARRAY_INDEX, width);
			break;
		case 't':
			buf_num(&b, nm->rank, width);
			break;
		case 'x':
			buf_add(&b, nm->name ? nm->name : "", nm->name ? strlen(nm->name) : 0);
			break;
		case 'u':
			buf_add(&b, nm->user ? nm->user : "", nm->user ? strlen(nm->user) : 0);
			break;
		case 'N':
			buf_add(&b, nm->node ? nm->node : "", nm->node ? strlen(nm->node) : 0);
			break;
		default:
			goto literal;
		}
		p = q + 1;
		continue;
literal:
		/* Not an escape we know: kept as written ("%q", a '%' at the end). */
		q = *q ? q + 1 : q;
		buf_add(&b, start, (size_t)(q - start));
		p = q;
	}
	return b.s;
}

/* ------------------------------------------------------------ environment */

static void env_addf(void (*add)(void *, char *), void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void env_addf(void (*add)(void *, char *), void *arg, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	xvasprintf(&s, fmt, ap);
	va_end(ap);
	add(arg, s);
}

void batch_env(const Hpq__RunTask *rt, void (*add)(void *arg, char *entry), void *arg)
{
	const Hpq__Resources *res = rt->resources;
	uint32_t nnodes = rt->nnodes ? rt->nnodes : 1;

	if (rt->has_array) {
		env_addf(add, arg, "HPQ_ARRAY_ID=%" PRIu64, rt->array_id);
		env_addf(add, arg, "HPQ_ARRAY_INDEX=%" PRIu32, rt->array_index);
	}
	if (!rt->slurm_env)
		return;
	env_addf(add, arg, "SLURM_JOB_ID=%" PRIu64, rt->task_id);
	env_addf(add, arg, "SLURM_JOB_NAME=%s", rt->name ? rt->name : "");
	env_addf(add, arg, "SLURM_NNODES=%" PRIu32, nnodes);
	env_addf(add, arg, "SLURM_JOB_NUM_NODES=%" PRIu32, nnodes);
	env_addf(add, arg, "SLURM_NODEID=%" PRIu32, rt->node_rank);
	if (rt->n_node_names > 0) {
		size_t len = 1;
		char *list;

		for (size_t i = 0; i < rt->n_node_names; i++)
			len += strlen(rt->node_names[i]) + 1;
		list = xcalloc(1, len);
		for (size_t i = 0; i < rt->n_node_names; i++)
			strcat(strcat(list, i ? "," : ""), rt->node_names[i]);
		env_addf(add, arg, "SLURM_JOB_NODELIST=%s", list);
		free(list);
	}
	env_addf(add, arg, "SLURM_SUBMIT_DIR=%s",
		 rt->submit_dir && rt->submit_dir[0] ? rt->submit_dir : rt->cwd ? rt->cwd : "");
	if (res && res->gpus)
		env_addf(add, arg, "SLURM_GPUS_PER_NODE=%" PRIu32, (uint32_t)res->gpus);
	if (res && res->cpus)
		env_addf(add, arg, "SLURM_CPUS_PER_TASK=%" PRIu32, (uint32_t)res->cpus);
	if (res && res->mem)
		env_addf(add, arg, "SLURM_MEM_PER_NODE=%" PRIu64, (uint64_t)res->mem);
	if (rt->ntasks_per_node)
		env_addf(add, arg, "SLURM_NTASKS_PER_NODE=%" PRIu32, rt->ntasks_per_node);
	if (rt->has_array) {
		env_addf(add, arg, "SLURM_ARRAY_JOB_ID=%" PRIu64, rt->array_id);
		env_addf(add, arg, "SLURM_ARRAY_TASK_ID=%" PRIu32, rt->array_index);
		env_addf(add, arg, "SLURM_ARRAY_TASK_COUNT=%" PRIu32, rt->array_count);
		env_addf(add, arg, "SLURM_ARRAY_TASK_MIN=%" PRIu32, rt->array_min);
		env_addf(add, arg, "SLURM_ARRAY_TASK_MAX=%" PRIu32, rt->array_max);
		env_addf(add, arg, "SLURM_ARRAY_TASK_STEP=%" PRIu32, rt->array_step);
	}
}

bool batch_env_managed(const char *entry, bool slurm_env)
{
	size_t n = strcspn(entry, "=");

	if ((n == 12 && !strncmp(entry, "HPQ_ARRAY_ID", n)) ||
	    (n == 15 && !strncmp(entry, "HPQ_ARRAY_INDEX", n)))
		return true;
	return slurm_env && !strncmp(entry, "SLURM_", 6);
}

/* ------------------------------------------------------------ script */

/* Makes dir (0711) if missing; it must be the agent's user's and writable
 * by it alone. Returns an open descriptor, or -1 with why. */
static int batch_dir(const char *dir, char *why, size_t len)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0711) < 0 && errno != EEXIST) {
		hpq_errf(why, len, -errno, "cannot create '%s': %s", dir, strerror(errno));
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		hpq_errf(why, len, -errno, "cannot open '%s': %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		hpq_errf(why, len, HPQ_EPERM, "'%s' must belong to uid %lu and be writable by it "
			 "alone", dir, (unsigned long)geteuid());
		close(fd);
		return -1;
	}
	return fd;
}

int batch_script_write(const char *dir, uint64_t id, uint32_t attempt, const void *body,
		       size_t len, bool chown, uid_t uid, gid_t gid, char *path, size_t pathlen,
		       char *why, size_t whylen)
{
	char name[64];
	size_t off = 0;
	int dfd, fd, r = 0;

	dfd = batch_dir(dir, why, whylen);
	if (dfd < 0)
		return HPQ_EINVAL;
	snprintf(name, sizeof(name), "%" PRIu64 ".%" PRIu32, id, attempt);
	snprintf(path, pathlen, "%s/%s", dir, name);
	/* (id, attempt) runs once here: a file of that name is an earlier
	 * run's (a restored database hands out ids again), and only the
	 * agent can have made it. */
	(void)unlinkat(dfd, name, 0);
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
	if (fd < 0) {
		r = -errno;
		hpq_errf(why, whylen, r, "cannot create the script's copy '%s': %s", path,
			 strerror(errno));
		close(dfd);
		return r;
	}
	while (off < len) {
		ssize_t n = write(fd, (const char *)body + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		off += (size_t)n;
	}
	/* The mode again, whatever the agent's umask took from 0700. */
	if (r == 0 && ((chown && fchown(fd, uid, gid) < 0) || fchmod(fd, 0700) < 0))
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0) {
		hpq_errf(why, whylen, r, "cannot write the script's copy '%s': %s", path,
			 hpq_strerror(r));
		(void)unlinkat(dfd, name, 0);
	}
	close(dfd);
	return r;
}

void batch_script_remove(const char *dir, uint64_t id, uint32_t attempt)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%" PRIu64 ".%" PRIu32, dir, id, attempt);
	(void)unlink(path);
}
