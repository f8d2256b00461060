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

#endif
