/*
 * clock.c: wall, monotonic and boot time (clock.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "clock.h"

static struct timespec read_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts;
}

static int64_t ms_of(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hpq_now_ms(void)
{
	return ms_of(read_clock(CLOCK_REALTIME));
}

int64_t hpq_mono_ms(void)
{
	return ms_of(read_clock(CLOCK_MONOTONIC));
}

double hpq_mono_s(void)
{
	struct timespec ts = read_clock(CLOCK_MONOTONIC);

	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t hpq_boot_ms(void)
{
	return ms_of(read_clock(CLOCK_BOOTTIME));
}

/* Written by two literal strftime formats, so that the compiler checks
 * them (-Wformat-nonliteral). */
static const char *utc_format(int64_t ms, bool iso, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000 - (ms % 1000 < 0));
	struct tm tm;
	size_t n = 0;

	if (gmtime_r(&s, &tm) && tm.tm_year <= 9999 - 1900)
		n = iso ? strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm)
			: strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (n == 0)
		snprintf(buf, len, "%lld", (long long)ms);
	return buf;
}

const char *hpq_utc_text(int64_t ms, char *buf, size_t len)
{
	return utc_format(ms, false, buf, len);
}

const char *hpq_utc_iso(int64_t ms, char *buf, size_t len)
{
	return utc_format(ms, true, buf, len);
}
