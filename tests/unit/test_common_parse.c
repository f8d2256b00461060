/*
 * test_common_parse.c: durations, sizes, integers, signals and names as
 * people type them, and everything that must be refused (overflow, signs,
 * blanks, trailing junk) without touching the output.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "hpq.h"
#include "parse.h"

static uint64_t dur(const char *s)
{
	uint64_t v = 12345;

	assert_int_equal(hpq_parse_duration(s, &v), 0);
	return v;
}

static void dur_bad(const char *s)
{
	uint64_t v = 777;

	if (hpq_parse_duration(s, &v) != HPQ_EINVAL)
		fail_msg("duration '%s' was accepted", s);
	assert_int_equal(v, 777);
}

static void test_duration(void **state)
{
	assert_int_equal(dur("0"), 0);
	assert_int_equal(dur("90"), 90);
	assert_int_equal(dur("90s"), 90);
	assert_int_equal(dur("15m"), 900);
	assert_int_equal(dur("2h"), 7200);
	assert_int_equal(dur("2d"), 172800);
	assert_int_equal(dur("1h30m"), 5400);
	assert_int_equal(dur("1h30m5s"), 5405);
	assert_int_equal(dur("1d2h3m4s"), 93784);
	assert_int_equal(dur("1H30M"), 5400);
	assert_int_equal(dur("1:30:00"), 5400);
	assert_int_equal(dur("01:30:00"), 5400);
	assert_int_equal(dur("30:00"), 1800);
	assert_int_equal(dur("90:00"), 5400);
	assert_int_equal(dur("2-00:00:00"), 172800);
	assert_int_equal(dur("1-12"), 129600);
	assert_int_equal(dur("1-12:30"), 131400);
	assert_int_equal(dur("1-12:30:15"), 131415);
	assert_true(dur("18446744073709551615") == UINT64_MAX);
	assert_true(dur("213503982334601d25215s") == UINT64_MAX);
}

/* ---------------------------------------------------------------- time limits */

static uint64_t tl(const char *s)
{
	uint64_t v = 12345;

	if (hpq_parse_time_limit(s, &v) != 0)
		fail_msg("time limit '%s' was refused", s);
	return v;
}

static void tl_bad(const char *s)
{
	uint64_t v = 777;

	if (hpq_parse_time_limit(s, &v) != HPQ_EINVAL)
		fail_msg("time limit '%s' was accepted", s);
	assert_int_equal(v, 777);
}

/* Slurm's --time: a bare number is minutes; the colon and day forms as
 * Slurm reads them; hpq's unit forms as before. */
static void test_time_limit(void **state)
{
	assert_int_equal(tl("90"), 5400);
	assert_int_equal(tl("0"), 0);
	assert_int_equal(tl("1"), 60);
	assert_int_equal(tl("30:15"), 1815);        /* MM:SS */
	assert_int_equal(tl("90:00"), 5400);
	assert_int_equal(tl("1:30:00"), 5400);      /* HH:MM:SS */
	assert_int_equal(tl("2-12"), 216000);       /* D-HH */
	assert_int_equal(tl("2-12:30"), 217800);    /* D-HH:MM */
	assert_int_equal(tl("2-00:00:00"), 172800); /* D-HH:MM:SS */
	assert_int_equal(tl("0-0:0:1"), 1);
	/* Fields after the first may leave their clock range and add up. */
	assert_int_equal(tl("25:99:00"), 25 * 3600 + 99 * 60);
	assert_int_equal(tl("1:90"), 60 + 90);
	assert_int_equal(tl("1-30"), 86400 + 30 * 3600);
	assert_int_equal(tl("90s"), 90);
	assert_int_equal(tl("30m"), 1800);
	assert_int_equal(tl("2h"), 7200);
	assert_int_equal(tl("1d"), 86400);
	assert_int_equal(tl("1h30m"), 5400);
	assert_int_equal(tl("UNLIMITED"), 0);
	assert_int_equal(tl("unlimited"), 0);
	assert_int_equal(tl("infinite"), 0);
	assert_int_equal(tl("Infinite"), 0);
	assert_int_equal(tl("none"), 0);
	assert_true(tl("36600-00:00:00") == HPQ_TIME_LIMIT_MAX_S);
}

static void test_time_limit_bad(void **state)
{
	tl_bad("");
	tl_bad("1:2:3:4");
	tl_bad("-5");
	tl_bad("1-");
	tl_bad("-1-00");
	tl_bad("1--2");
	tl_bad(":30");
	tl_bad("30:");
	tl_bad("1::2");
	tl_bad("1-2:3:4:5");
	tl_bad("1.5");
	tl_bad("soon");
	tl_bad("90 ");
	tl_bad(" 90");
	tl_bad("+90");
	tl_bad("1h30");
	tl_bad("5x");
	tl_bad("never");
	tl_bad("36600-00:00:01");
	tl_bad("307445734561825861");   /* minutes that overflow as seconds */
	tl_bad("99999999999999999999"); /* over UINT64_MAX */
}

static void test_duration_bad(void **state)
{
	dur_bad("");
	dur_bad("s");
	dur_bad("h1");
	dur_bad("-5");
	dur_bad("+5");
	dur_bad(" 5");
	dur_bad("5 ");
	dur_bad("5x");
	dur_bad("1h30");
	dur_bad("30m1h");
	dur_bad("1h1h");
	dur_bad("1.5h");
	dur_bad("18446744073709551616");
	dur_bad("18446744073709551615m");
	dur_bad("213503982334602d");
	dur_bad("213503982334601d25216s");
	dur_bad("1:60");
	dur_bad("1:60:00");
	dur_bad("1:00:60");
	dur_bad("1:2:3:4");
	dur_bad(":30");
	dur_bad("30:");
	dur_bad("1::0");
	dur_bad("1-24:00:00");
	dur_bad("1-");
	dur_bad("-1:00");
	dur_bad("1-2-3");
	dur_bad("1:30x");
	dur_bad("1d-1");
}

static void test_size(void **state)
{
	uint64_t v;
	static const struct {
		const char *s;
		uint64_t mib;
	} ok[] = {
		{"0", 0},        {"512", 512},      {"512M", 512},    {"512m", 512},
		{"512MB", 512},  {"512MiB", 512},   {"64G", 65536},   {"64g", 65536},
		{"64GB", 65536}, {"1T", 1048576},   {"1TiB", 1048576}, {"1024K", 1},
		{"1K", 1},       {"1025K", 2},      {"2048KiB", 2},   {"0K", 0},
		{"17592186044415T", 17592186044415ull << 20},
	};
	static const char *const bad[] = {
		"", "M", "-1", "+1", " 1", "1 ", "1X", "1P", "1MM", "1MBB", "1Mi", "1.5G", "1B",
		"18446744073709551616", "17592186044416T", "18014398509481984G", "1G ",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 1;
		if (hpq_parse_size_mib(ok[i].s, &v) != 0)
			fail_msg("size '%s' was refused", ok[i].s);
		assert_int_equal(v, ok[i].mib);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 777;
		if (hpq_parse_size_mib(bad[i], &v) != HPQ_EINVAL)
			fail_msg("size '%s' was accepted", bad[i]);
		assert_int_equal(v, 777);
	}
}

static void test_uint(void **state)
{
	uint64_t v = 5;

	assert_int_equal(hpq_parse_uint("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(hpq_parse_uint("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(hpq_parse_uint("007", 0, 10, &v), 0);
	assert_int_equal(v, 7);
	v = 5;
	assert_int_equal(hpq_parse_uint("11", 0, 10, &v), HPQ_EINVAL);
	assert_int_equal(hpq_parse_uint("0", 1, 10, &v), HPQ_EINVAL);
	assert_int_equal(hpq_parse_uint("", 0, 10, &v), HPQ_EINVAL);
	assert_int_equal(hpq_parse_uint("-1", 0, UINT64_MAX, &v), HPQ_EINVAL);
	assert_int_equal(hpq_parse_uint("+1", 0, 10, &v), HPQ_EINVAL);
	assert_int_equal(hpq_parse_uint(" 1", 0, 10, &v), HPQ_EINVAL);
	assert_int_equal(hpq_parse_uint("1 ", 0, 10, &v), HPQ_EINVAL);
	assert_int_equal(hpq_parse_uint("0x1", 0, 10, &v), HPQ_EINVAL);
	assert_int_equal(hpq_parse_uint("18446744073709551616", 0, UINT64_MAX, &v), HPQ_EINVAL);
	assert_int_equal(hpq_parse_uint("99999999999999999999999", 0, UINT64_MAX, &v),
			 HPQ_EINVAL);
	assert_int_equal(v, 5);
	assert_int_equal(hpq_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
}

static void test_signal(void **state)
{
	int s = -1;

	assert_int_equal(hpq_parse_signal("TERM", &s), 0);
	assert_int_equal(s, SIGTERM);
	assert_int_equal(hpq_parse_signal("SIGUSR1", &s), 0);
	assert_int_equal(s, SIGUSR1);
	assert_int_equal(hpq_parse_signal("sigint", &s), 0);
	assert_int_equal(s, SIGINT);
	assert_int_equal(hpq_parse_signal("kill", &s), 0);
	assert_int_equal(s, SIGKILL);
	assert_int_equal(hpq_parse_signal("15", &s), 0);
	assert_int_equal(s, 15);
	s = -1;
	assert_int_equal(hpq_parse_signal("0", &s), HPQ_EINVAL);
	assert_int_equal(hpq_parse_signal("65", &s), HPQ_EINVAL);
	assert_int_equal(hpq_parse_signal("-15", &s), HPQ_EINVAL);
	assert_int_equal(hpq_parse_signal("SIG", &s), HPQ_EINVAL);
	assert_int_equal(hpq_parse_signal("", &s), HPQ_EINVAL);
	assert_int_equal(hpq_parse_signal("TERMX", &s), HPQ_EINVAL);
	assert_int_equal(hpq_parse_signal("15x", &s), HPQ_EINVAL);
	assert_int_equal(s, -1);
}

static void test_name(void **state)
{
	char longest[64], toolong[65];

	assert_int_equal(hpq_check_name("ml-team"), 0);
	assert_int_equal(hpq_check_name("p5.48xlarge"), 0);
	assert_int_equal(hpq_check_name("a_b"), 0);
	assert_int_equal(hpq_check_name("9lives"), 0);
	assert_int_equal(hpq_check_name(""), HPQ_EINVAL);
	assert_int_equal(hpq_check_name("-x"), HPQ_EINVAL);
	assert_int_equal(hpq_check_name(".x"), HPQ_EINVAL);
	assert_int_equal(hpq_check_name("a b"), HPQ_EINVAL);
	assert_int_equal(hpq_check_name("a/b"), HPQ_EINVAL);
	assert_int_equal(hpq_check_name("caf\xc3\xa9"), HPQ_EINVAL);
	memset(longest, 'a', 63);
	longest[63] = '\0';
	assert_int_equal(hpq_check_name(longest), 0);
	memset(toolong, 'a', 64);
	toolong[64] = '\0';
	assert_int_equal(hpq_check_name(toolong), HPQ_EINVAL);

	/* Group names (@GROUP in team members and admins, [auth] admin_group). */
	assert_int_equal(hpq_check_group_name("hpq-admin"), 0);
	assert_int_equal(hpq_check_group_name("_ml.leads"), 0);
	assert_int_equal(hpq_check_group_name("9lives"), 0);
	assert_int_equal(hpq_check_group_name(""), HPQ_EINVAL);
	assert_int_equal(hpq_check_group_name("@ml"), HPQ_EINVAL);
	assert_int_equal(hpq_check_group_name("-ml"), HPQ_EINVAL);
	assert_int_equal(hpq_check_group_name("ml leads"), HPQ_EINVAL);
	assert_int_equal(hpq_check_group_name("ml,ops"), HPQ_EINVAL);
	memset(longest, 'g', 32);
	longest[32] = '\0';
	assert_int_equal(hpq_check_group_name(longest), 0);
	longest[32] = 'g';
	longest[33] = '\0';
	assert_int_equal(hpq_check_group_name(longest), HPQ_EINVAL);
}

static void test_format(void **state)
{
	char buf[64];
	uint64_t back;

	assert_string_equal(hpq_format_duration(0, buf, sizeof(buf)), "0s");
	assert_string_equal(hpq_format_duration(59, buf, sizeof(buf)), "59s");
	assert_string_equal(hpq_format_duration(5405, buf, sizeof(buf)), "1h30m5s");
	assert_string_equal(hpq_format_duration(5400, buf, sizeof(buf)), "1h30m");
	assert_string_equal(hpq_format_duration(93784, buf, sizeof(buf)), "1d2h3m4s");
	assert_string_equal(hpq_format_duration(86400, buf, sizeof(buf)), "1d");
	/* Truncation still terminates. */
	assert_string_equal(hpq_format_duration(93784, buf, 5), "1d2h");

	assert_string_equal(hpq_format_size_mib(0, buf, sizeof(buf)), "0M");
	assert_string_equal(hpq_format_size_mib(512, buf, sizeof(buf)), "512M");
	assert_string_equal(hpq_format_size_mib(1536, buf, sizeof(buf)), "1536M");
	assert_string_equal(hpq_format_size_mib(65536, buf, sizeof(buf)), "64G");
	assert_string_equal(hpq_format_size_mib(1048576, buf, sizeof(buf)), "1T");
	assert_string_equal(hpq_format_size_mib(1024ull << 20, buf, sizeof(buf)), "1024T");

	/* What we print, we read back. */
	for (uint64_t d = 0; d < 200000; d += 997) {
		assert_int_equal(hpq_parse_duration(hpq_format_duration(d, buf, sizeof(buf)),
						    &back), 0);
		assert_int_equal(back, d);
	}
	for (uint64_t m = 0; m < (1ull << 40); m = m * 3 + 1024) {
		assert_int_equal(hpq_parse_size_mib(hpq_format_size_mib(m, buf, sizeof(buf)),
						    &back), 0);
		assert_int_equal(back, m);
	}
}

static void test_hostport(void **state)
{
	char host[16];
	uint16_t port = 1;

	(void)state;
	assert_int_equal(hpq_split_hostport("gpu001:7421", 0, host, sizeof(host), &port), 0);
	assert_string_equal(host, "gpu001");
	assert_int_equal(port, 7421);
	assert_int_equal(hpq_split_hostport("10.0.0.1", 0, host, sizeof(host), &port), 0);
	assert_string_equal(host, "10.0.0.1");
	assert_int_equal(port, HPQ_DEFAULT_PORT);
	assert_int_equal(hpq_split_hostport("[::1]:80", 0, host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 80);
	assert_int_equal(hpq_split_hostport("[fe80::1]", 0, host, sizeof(host), &port), 0);
	assert_string_equal(host, "fe80::1");
	assert_int_equal(port, HPQ_DEFAULT_PORT);
	assert_int_equal(hpq_split_hostport("fe80::2", 0, host, sizeof(host), &port), 0);
	assert_string_equal(host, "fe80::2");
	assert_int_equal(port, HPQ_DEFAULT_PORT);

	/* Only a listen address may leave out the host or ask for port 0. */
	assert_int_equal(hpq_split_hostport(":0", HPQ_HOSTPORT_LISTEN, host, sizeof(host),
					    &port), 0);
	assert_string_equal(host, "");
	assert_int_equal(port, 0);
	assert_int_equal(hpq_split_hostport("0.0.0.0:65535", HPQ_HOSTPORT_LISTEN, host,
					    sizeof(host), &port), 0);
	assert_int_equal(port, 65535);

	/* Rejected, and nothing written. */
	strcpy(host, "unchanged");
	port = 1;
	const char *bad[] = {"", ":7420", "h:0", "h:", "h:65536", "h:-1", "h: 1", "h:+1", "h:1x",
			     "[::1", "[::1]x", "[]:1", "[::1]:", "a-host-name-too-long:1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hpq_split_hostport(bad[i], 0, host, sizeof(host), &port),
				 HPQ_EINVAL);
	assert_int_equal(hpq_split_hostport(NULL, 0, host, sizeof(host), &port), HPQ_EINVAL);
	assert_int_equal(hpq_split_hostport("h:99999", HPQ_HOSTPORT_LISTEN, host, sizeof(host),
					    &port), HPQ_EINVAL);
	assert_string_equal(host, "unchanged");
	assert_int_equal(port, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration), cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_time_limit), cmocka_unit_test(test_time_limit_bad),
		cmocka_unit_test(test_size),     cmocka_unit_test(test_uint),
		cmocka_unit_test(test_signal),   cmocka_unit_test(test_name),
		cmocka_unit_test(test_format),   cmocka_unit_test(test_hostport),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
