/*
 * clock.c: wall, monotonic and boot time (clock.h).
 */
#include <time.h>

#include "clock.h"

int64_t hpq_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

int64_t hpq_mono_ms(void)
{
	struct timespec ts = mono();

	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double hpq_mono_s(void)
{
	struct timespec ts = mono();

	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t hpq_boot_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
