/*
 * output.c: the formatting both outputs share: times (ISO-8601 UTC for
 * JSON, local and relative for tables), run times, resource counts with
 * their "unlimited" sentinel, signal names, shell-quoted command lines,
 * and the colour of a state word. Everything writes into a caller's
 * buffer, so the printers stay free of allocation and error paths; the
 * one exception, output_write, hands a printer's full buffer to its file.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "escape.h"
#include "output.h"
#include "parse.h"
#include "xalloc.h"

static const Hpq__Task *array_next(struct task_rows *r)
{
	struct task_array_rows *a = (struct task_array_rows *)r;

	return a->i < a->n ? a->tasks[a->i++] : NULL;
}

static void array_rewind(struct task_rows *r)
{
	((struct task_array_rows *)r)->i = 0;
}

struct task_rows *task_rows_array(struct task_array_rows *a, Hpq__Task *const *tasks, size_t n)
{
	*a = (struct task_array_rows){
		{ .next = array_next, .rewind = array_rewind, .rewind_live = array_rewind },
		tasks, n, 0,
	};
	return &a->rows;
}

char *output_time_iso(int64_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char day[24];

	if (!gmtime_r(&secs, &tm) || strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		snprintf(buf, len, "invalid");
	else
		snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
	return buf;
}

char *output_time_local(int64_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !localtime_r(&secs, &tm) ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "-");
	return buf;
}

/* The two most significant units, the second left out when it is zero:
 * "45s", "12m3s", "12m", "3h12m", "2d4h". */
static char *output_coarse(uint64_t s, char *buf, size_t len)
{
	static const struct {
		uint64_t secs;
		char unit;
	} units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	size_t i = 0;

	while (i < 3 && s < units[i].secs)
		i++;
	if (i == 3 || (s % units[i].secs) / units[i + 1].secs == 0)
		snprintf(buf, len, "%llu%c", (unsigned long long)(s / units[i].secs),
			 units[i].unit);
	else
		snprintf(buf, len, "%llu%c%llu%c", (unsigned long long)(s / units[i].secs),
			 units[i].unit, (unsigned long long)(s % units[i].secs / units[i + 1].secs),
			 units[i + 1].unit);
	return buf;
}

char *output_ago(int64_t now_ms, int64_t ms, char *buf, size_t len)
{
	char d[32];
	int64_t diff = now_ms - ms;

	if (ms <= 0)
		snprintf(buf, len, "-");
	else if (diff > -1000 && diff < 1000)
		snprintf(buf, len, "just now");
	else if (diff < 0) /* the daemon's clock is ahead of ours */
		snprintf(buf, len, "in %s", output_coarse((uint64_t)(-diff / 1000), d, sizeof(d)));
	else
		snprintf(buf, len, "%s ago", output_coarse((uint64_t)(diff / 1000), d, sizeof(d)));
	return buf;
}

char *output_runtime(const Hpq__Task *t, int64_t now_ms, char *buf, size_t len)
{
	int64_t end = t->end_time > 0 ? t->end_time : now_ms;
	uint64_t ms = end > t->start_time ? (uint64_t)(end - t->start_time) : 0;

	/* A requeued task keeps its last attempt's start; it does not run now. */
	if (t->start_time <= 0 || strcmp(t->state, "PENDING") == 0)
		snprintf(buf, len, "-");
	else
		hpq_format_duration(ms / 1000, buf, len);
	return buf;
}

char *output_uint(uint64_t v, char *buf, size_t len)
{
	char *p = buf + len;

	*--p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	return p;
}

char *output_queued(const char *reason, uint32_t pos, char *buf)
{
	char num[24];
	size_t n = strlen(reason);

	memcpy(buf, reason, n);
	if (n)
		buf[n++] = ' ';
	buf[n++] = '#';
	strcpy(buf + n, output_uint(pos, num, sizeof(num)));
	return buf;
}

char *output_count(uint64_t n, char *buf, size_t len)
{
	if (n >= HPQ_UNLIMITED_COUNT)
		snprintf(buf, len, "unlimited");
	else
		snprintf(buf, len, "%llu", (unsigned long long)n);
	return buf;
}

char *output_mem(uint64_t mib, char *buf, size_t len)
{
	if (mib >= HPQ_UNLIMITED_MEM)
		snprintf(buf, len, "unlimited");
	else
		hpq_format_size_mib(mib, buf, len);
	return buf;
}

char *output_res(const Hpq__Resources *r, char *buf, size_t len)
{
	char g[16], c[16], m[16];
	uint32_t gpus = r ? r->gpus : 0, cpus = r ? r->cpus : 0;
	uint64_t mem = r ? r->mem : 0;

	snprintf(buf, len, "%s gpu%s, %s cpu%s, %s mem", output_count(gpus, g, sizeof(g)),
		 gpus == 1 ? "" : "s", output_count(cpus, c, sizeof(c)), cpus == 1 ? "" : "s",
		 output_mem(mem, m, sizeof(m)));
	return buf;
}

const char *output_signal(int signo, char *buf, size_t len)
{
	const char *name = sigabbrev_np(signo ? signo : SIGTERM);

	if (name)
		return name;
	snprintf(buf, len, "%d", signo);
	return buf;
}

static bool output_shell_safe(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "_@%+=:,./-",
			    *s))
			return false;
	return true;
}

char *output_argv(char *const *argv, size_t n)
{
	size_t cap = 1;
	char *s, *p;

	/* Worst case: every byte is a quote, which becomes '\'' (4 bytes). */
	for (size_t i = 0; i < n; i++)
		cap += 4 * strlen(argv[i]) + 3;
	p = s = xmalloc(cap);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ' ';
		if (output_shell_safe(argv[i])) {
			p = stpcpy(p, argv[i]);
			continue;
		}
		*p++ = '\'';
		for (const char *a = argv[i]; *a; a++) {
			if (*a == '\'')
				p = stpcpy(p, "'\\''");
			else
				*p++ = *a;
		}
		*p++ = '\'';
	}
	*p = '\0';
	return s;
}

const char *output_state_colour(const char *state)
{
	static const struct {
		const char *word;
		const char *sgr;
	} colours[] = {
		{"RUNNING", "\033[32m"},   {"PENDING", "\033[33m"},     {"PREEMPTING", "\033[35m"},
		{"COMPLETED", NULL},       {"FAILED", "\033[31m"},      {"TIMEOUT", "\033[31m"},
		{"OUT_OF_MEMORY", "\033[31m"},
		{"CANCELLED", "\033[2m"},  {"healthy", "\033[32m"},     {"degraded", "\033[33m"},
		{"unhealthy", "\033[31m"}, {"unreachable", "\033[31m"}, {"draining", "\033[33m"},
		{"drained", "\033[31m"},   {"repairing", "\033[35m"},   {"down", "\033[31m"},
	};

	for (size_t i = 0; i < sizeof(colours) / sizeof(colours[0]); i++)
		if (strcmp(colours[i].word, state) == 0)
			return colours[i].sgr;
	return NULL;
}

bool output_state_ended(const char *state)
{
	return strcmp(state, "PENDING") && strcmp(state, "RUNNING") && strcmp(state, "PREEMPTING");
}

static bool failed_alike(const Hpq__CancelResult *a, const Hpq__CancelResult *b)
{
	return b->code == a->code && b->id == a->id && b->tasks == a->tasks &&
	       !strcmp(b->message, a->message);
}

size_t output_result_error(FILE *f, const char *verb, Hpq__CancelResult *const *r, size_t n)
{
	char *msg = hpq_escape(r[0]->message[0] ? r[0]->message : hpq_strerror(r[0]->code));
	bool summary = !r[0]->id && r[0]->tasks;
	size_t k = 1;

	while (!summary && k < n && failed_alike(r[0], r[k]))
		k++;
	if (summary)
		fprintf(f, "hpq: cannot %s %u more task%s: %s; to act on your own, add --user "
			"$USER\n", verb, r[0]->tasks, r[0]->tasks == 1 ? "" : "s", msg);
	else if (k > 1)
		fprintf(f, "hpq: cannot %s task %llu: %s (the same for %zu more)\n", verb,
			(unsigned long long)r[0]->id, msg, k - 1);
	else
		fprintf(f, "hpq: cannot %s task %llu: %s\n", verb, (unsigned long long)r[0]->id,
			msg);
	free(msg);
	return k;
}

void output_write(FILE *f, const char *buf, size_t n)
{
	int fd = fileno_unlocked(f);

	/* A stream with no file (a test's memory stream), or one that cannot
	 * be emptied, is written the usual way. */
	if (fd < 0 || fflush_unlocked(f) != 0) {
		fwrite_unlocked(buf, 1, n, f);
		return;
	}
	while (n > 0) {
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		buf += w;
		n -= (size_t)w;
	}
	/* What write(2) refused, stdio tries once more: it fails the same
	 * way, and marks f. */
	if (n > 0)
		fwrite_unlocked(buf, 1, n, f);
}
