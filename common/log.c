/*
 * log.c: the one logger of every hpq program. Under systemd stderr goes
 * to journald, which reads a "<N>" syslog priority prefix on each line, so
 * that is what we write when stderr is not a terminal. On a terminal a
 * person reads it: "HH:MM:SS.mmm level prog: message". A daemon that logs
 * to a file of its own asks for dated lines (hpq_log_dated), which carry
 * the date, the time with its UTC offset, the level and the pid. Each line
 * goes out in one write so lines from threads do not interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static const char *log_prog = "hpq";
static int log_max = LOG_INFO;
static int log_tty = -1; /* unknown until the first message or hpq_log_init */
static bool log_dated;    /* hpq_log_dated: stderr is our own log file */

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg",   [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
	[LOG_ERR] = "error",     [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",     [LOG_DEBUG] = "debug",
};

static int clamp_level(int level)
{
	if (level < LOG_EMERG)
		return LOG_EMERG;
	if (level > LOG_DEBUG)
		return LOG_DEBUG;
	return level;
}

void hpq_log_init(const char *progname, int level)
{
	if (progname) {
		const char *slash = strrchr(progname, '/');

		log_prog = slash ? slash + 1 : progname;
	}
	log_max = clamp_level(level);
	log_tty = isatty(STDERR_FILENO);
	log_dated = false;
}

void hpq_log_dated(bool on)
{
	log_dated = on;
}

void hpq_log_set_level(int level)
{
	log_max = clamp_level(level);
}

int hpq_log_level(void)
{
	return log_max;
}

int hpq_log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} names[] = {
		{"error", LOG_ERR},   {"err", LOG_ERR},       {"warning", LOG_WARNING},
		{"warn", LOG_WARNING}, {"notice", LOG_NOTICE}, {"info", LOG_INFO},
		{"debug", LOG_DEBUG},
	};

	if (!name)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return names[i].level;
	return -1;
}

/* Formats and writes one line, whatever the level filter says. */
__attribute__((format(printf, 2, 0))) static void log_write(int level, const char *fmt,
							   va_list ap)
{
	char line[2048];
	int saved_errno = errno;
	size_t n;
	int r;

	if (log_tty < 0)
		log_tty = isatty(STDERR_FILENO);

	if (log_dated) {
		struct timeval tv;
		struct tm tm;
		char date[32], zone[8];

		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
		strftime(zone, sizeof(zone), "%z", &tm);
		r = snprintf(line, sizeof(line), "%s.%03ld%s %s %s[%ld]: ", date,
			     (long)(tv.tv_usec / 1000), zone, level_names[level], log_prog,
			     (long)getpid());
	} else if (log_tty) {
		struct timeval tv;
		struct tm tm;

		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		r = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld %s %s: ", tm.tm_hour,
			     tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000), level_names[level],
			     log_prog);
	} else {
		r = snprintf(line, sizeof(line), "<%d>", level);
	}
	n = r < 0 ? 0 : (size_t)r;
	if (n < sizeof(line)) {
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	/* Truncate long messages, but always end with exactly one newline. */
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	while (n > 0 && line[n - 1] == '\n')
		n--;
	line[n++] = '\n';

	for (size_t off = 0; off < n;) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)w;
	}
	errno = saved_errno;
}

void hpq_vlog(int level, const char *fmt, va_list ap)
{
	level = clamp_level(level);
	if (level <= log_max)
		log_write(level, fmt, ap);
}

void hpq_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hpq_vlog(level, fmt, ap);
	va_end(ap);
}

void hpq_log_limited(struct hpq_log_limit *l, int level, const char *fmt, ...)
{
	int64_t now = hpq_mono_ms();
	char line[512];
	va_list ap;

	if (now < l->next_ms) {
		l->held++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (l->held)
		hpq_log(level, "%s; %lu more like it in the last %lld s", line, l->held,
			(long long)(l->interval_ms / 1000));
	else
		hpq_log(level, "%s", line);
	l->held = 0;
	l->next_ms = now + l->interval_ms;
}

void hpq_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(LOG_CRIT, fmt, ap); /* never filtered out */
	va_end(ap);
	abort();
}
