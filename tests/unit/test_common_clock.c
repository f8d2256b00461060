/*
 * test_common_clock.c: the two written forms of a wall time
 * (common/clock.h): for people and in ISO 8601, whole seconds, in UTC
 * whatever TZ says, and a number where no calendar date fits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "clock.h"

/* 2026-12-04 18:00:00 UTC, and a quarter of a second. */
#define T0 1796407200250LL

static void both_forms(void **state)
{
	char buf[HPQ_UTC_LEN];

	(void)state;
	setenv("TZ", "America/New_York", 1);
	assert_string_equal(hpq_utc_text(T0, buf, sizeof(buf)), "2026-12-04 18:00:00 UTC");
	assert_string_equal(hpq_utc_iso(T0, buf, sizeof(buf)), "2026-12-04T18:00:00Z");
	assert_string_equal(hpq_utc_iso(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
	/* A quarter of a second before the epoch is still in 1969. */
	assert_string_equal(hpq_utc_iso(-250, buf, sizeof(buf)), "1969-12-31T23:59:59Z");
	unsetenv("TZ");
}

static void beyond_the_calendar(void **state)
{
	char buf[HPQ_UTC_LEN];

	(void)state;
	/* A certificate's not-after of INT64_MAX seconds, in ms, wraps: any
	 * caller gets a number it can show, never garbage or a crash. */
	assert_string_equal(hpq_utc_text(INT64_MAX, buf, sizeof(buf)), "9223372036854775807");
	assert_string_equal(hpq_utc_iso(253402300800000LL, buf, sizeof(buf)), "253402300800000");
	/* Too small a buffer: cut, still terminated. */
	assert_string_equal(hpq_utc_text(T0, buf, 8), "1796407");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(both_forms),
		cmocka_unit_test(beyond_the_calendar),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
