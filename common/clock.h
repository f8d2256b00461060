/*
 * clock.h: the one clock of hpqd, hpq-agent and hpq.
 *
 * Wall time is what travels: times on the wire, in the database and in
 * logs are unix milliseconds. Monotonic time measures intervals (timeouts,
 * backoff, ages) and never jumps when an administrator or NTP sets the
 * wall clock.
 */
#ifndef HPQ_CLOCK_H
#define HPQ_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock: unix milliseconds. */
int64_t hpq_now_ms(void);

/* Monotonic milliseconds since an arbitrary origin. */
int64_t hpq_mono_ms(void);

/* Monotonic seconds, with nanosecond resolution. */
double hpq_mono_s(void);

/* The boot clock in milliseconds: monotonic, and it counts a suspend too.
 * An agent's fencing lease is kept in it (agent.c, supervisor.c). */
int64_t hpq_boot_ms(void);

/* Room for either form of a wall time below, its NUL included. */
#define HPQ_UTC_LEN 32

/* Wall time ms as people read it in logs and messages:
 * "2026-12-04 18:00:00 UTC". Returns buf. A time that gmtime cannot
 * take (a year past 9999) is written as its number of milliseconds. */
const char *hpq_utc_text(int64_t ms, char *buf, size_t len);

/* Wall time ms in ISO 8601, for files and programs:
 * "2026-12-04T18:00:00Z". Returns buf; the same fallback. */
const char *hpq_utc_iso(int64_t ms, char *buf, size_t len);

#endif
