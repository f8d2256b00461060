/*
 * log.h: logging to stderr with syslog priority prefixes ("<6>") that
 * journald understands; when stderr is a terminal the prefix is replaced
 * by a timestamp and a level word, and in a daemon's own log file by the
 * date and time, the level and the pid. Library code in common/ logs nothing
 * above debug; its callers decide.
 */
#ifndef HPQ_LOG_H
#define HPQ_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

/* Levels are syslog's: LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG. */
void hpq_log_init(const char *progname, int level);
void hpq_log_set_level(int level);
int hpq_log_level(void);
/* Lines with the date, the time and its UTC offset, the level and the pid
 * ("2024-05-01T14:00:03.250+0200 notice hpqd[812]: ..."), for a log file
 * a daemon writes itself; hpq_log_init turns them off again. */
void hpq_log_dated(bool on);
/* "error", "warning", "notice", "info", "debug" -> level; -1 if unknown. */
int hpq_log_level_parse(const char *name);

void hpq_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hpq_vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define log_err(...) hpq_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) hpq_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) hpq_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) hpq_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) hpq_log(LOG_DEBUG, __VA_ARGS__)

/*
 * A rate-limited log line, for what peers can cause at will (refused and
 * reaped connections): at most one line per interval_ms; the lines held
 * back meanwhile are counted and the next line that passes says how many
 * ("...; 41 more like it in the last 10 s"). A zeroed struct starts open.
 */
struct hpq_log_limit {
	int64_t interval_ms;
	int64_t next_ms;         /* monotonic: no line before this */
	unsigned long held;      /* lines held back since the last one */
};
void hpq_log_limited(struct hpq_log_limit *l, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* For broken invariants and out-of-memory only: logs and aborts. */
void hpq_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
