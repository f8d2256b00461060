/*
 * test_common_batchspec.c: the syntax checks shared by the client and
 * hpqd for output patterns (outpat.h), array specs and dependency specs
 * (batchspec.h): what is accepted, what is refused, and that a refusal
 * names the offending part; the one reader of index lists, term by term
 * and as a membership test on lists as hpqd stores them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "batchspec.h"
#include "error.h"
#include "outpat.h"

static void pat_ok(const char *p)
{
	char err[512] = "";

	if (hpq_outpat_check(p, err, sizeof(err)) != 0)
		fail_msg("pattern '%s' refused: %s", p, err);
}

/* Refused, with a message holding want. */
static void pat_bad(const char *p, const char *want)
{
	char err[512] = "";

	if (hpq_outpat_check(p, err, sizeof(err)) != HPQ_EINVAL)
		fail_msg("pattern '%s' was accepted", p);
	if (!strstr(err, want))
		fail_msg("pattern '%s': message '%s' lacks '%s'", p, err, want);
}

static void test_outpat(void **state)
{
	char big[HPQ_OUTPAT_MAX + 2];

	pat_ok("");
	pat_ok("out.log");
	pat_ok("logs/%x-%j.out");
	pat_ok("/scratch/%u/%A_%a.%N.%t.err");
	pat_ok("100%%.txt");
	pat_ok("%%j");
	pat_bad("%q.out", "'%q'");
	pat_bad("slurm-%n.out", "'%n'");
	pat_bad("%s", "'%s'");
	pat_bad("x%", "lone '%'");
	pat_bad("%4a.out", "padding");
	pat_bad("a\nb", "control character");
	pat_bad("a\tb", "control character");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	pat_bad(big, "long");
	big[HPQ_OUTPAT_MAX] = '\0';
	pat_ok(big);
}

static void arr_ok(const char *s, uint64_t count)
{
	char err[512] = "";
	uint64_t n = 0;

	if (hpq_array_check(s, &n, err, sizeof(err)) != 0)
		fail_msg("array '%s' refused: %s", s, err);
	if (n != count)
		fail_msg("array '%s': %llu indices, not %llu", s, (unsigned long long)n,
			 (unsigned long long)count);
}

static void arr_bad(const char *s)
{
	char err[512] = "";

	if (hpq_array_check(s, NULL, err, sizeof(err)) != HPQ_EINVAL)
		fail_msg("array '%s' was accepted", s);
	assert_true(err[0] != '\0');
}

static void test_array(void **state)
{
	arr_ok("0", 1);
	arr_ok("0-15", 16);
	arr_ok("0-15:4", 4);
	arr_ok("1,3,5-9:2", 5);
	arr_ok("0-999%50", 1000);
	arr_ok("7%1", 1);
	arr_ok("0-4000000", 4000001); /* hpqd counts (at most 1,000,000) */
	arr_ok("5-5", 1);
	arr_ok("1:2", 1);             /* a step after one index: hpqd has always taken it */
	arr_bad("");
	arr_bad("-1");
	arr_bad("1-");
	arr_bad("5-1");
	arr_bad("0-10:0");
	arr_bad("0-10:");
	arr_bad("1,,2");
	arr_bad("1,");
	arr_bad(",1");
	arr_bad("0-9%");
	arr_bad("0-9%0");
	arr_bad("0-9%5x");
	arr_ok("0-9%1000000", 10);
	arr_bad("0-9%1000001");             /* hpqd's bound too */
	arr_bad("0-4000001");
	arr_bad("a-b");
	arr_bad("1 2");
	arr_bad("0-9%%5");
}

static void test_index_ranges(void **state)
{
	static const struct {
		const char *text, *rest;
		uint64_t lo, hi, step;
	} good[] = {
		{ "7", "", 7, 7, 1 },
		{ "0-99", "", 0, 99, 1 },
		{ "5-999:2,1001", ",1001", 5, 999, 2 },
		{ "5:2", "", 5, 5, 2 },
		{ "0-4294967296]", "]", 0, 4294967296ull, 1 },
		{ "3%50", "%50", 3, 3, 1 },
		{ "18446744073709551615", "", UINT64_MAX, UINT64_MAX, 1 },
		{ "1-99999999999999999999999:3", "", 1, UINT64_MAX, 3 },
	};
	static const char *const bad[] = {
		"", "-3", "1-", "1-:2", "1-9:", "a", ",1", " 1", "+1",
	};
	struct hpq_index_range r;
	const char *p;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		p = good[i].text;
		if (hpq_index_range_read(&p, &r) != 0)
			fail_msg("'%s' refused", good[i].text);
		assert_string_equal(p, good[i].rest);
		assert_true(r.lo == good[i].lo && r.hi == good[i].hi && r.step == good[i].step);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = bad[i];
		if (hpq_index_range_read(&p, &r) != HPQ_EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	}

	/* Lists as hpqd stores them, and an array's spec with its limit. */
	assert_true(hpq_index_list_has("5-999:2,1001", 5));
	assert_true(hpq_index_list_has("5-999:2,1001", 7));
	assert_false(hpq_index_list_has("5-999:2,1001", 6));
	assert_false(hpq_index_list_has("5-999:2,1001", 1000));
	assert_true(hpq_index_list_has("5-999:2,1001", 1001));
	assert_false(hpq_index_list_has("5-999:2,1001", 4));
	assert_true(hpq_index_list_has("0-3,8-9%2", 9));
	assert_false(hpq_index_list_has("0-3,8-9%2", 2 + 20));
	assert_false(hpq_index_list_has("", 0));
	assert_false(hpq_index_list_has("3-5:0", 3));      /* a step of 0 holds nothing */
	/* What comes before text that cannot be read still counts. */
	assert_true(hpq_index_list_has("1,2,x", 2));
	assert_false(hpq_index_list_has("1,2,x", 3));
	assert_false(hpq_index_list_has("1,,3", 3));
}

static void dep_ok(const char *s)
{
	char err[512] = "";

	if (hpq_dependency_check(s, err, sizeof(err)) != 0)
		fail_msg("dependency '%s' refused: %s", s, err);
}

static void dep_bad(const char *s, const char *want)
{
	char err[512] = "";

	if (hpq_dependency_check(s, err, sizeof(err)) != HPQ_EINVAL)
		fail_msg("dependency '%s' was accepted", s);
	if (!strstr(err, want))
		fail_msg("dependency '%s': message '%s' lacks '%s'", s, err, want);
}

static void test_dependency(void **state)
{
	dep_ok("afterok:12");
	dep_ok("afterok:12:13:14");
	dep_ok("afterany:12,afternotok:13");
	dep_ok("after:12?afterok:13_5");
	dep_ok("singleton");
	dep_ok("singleton,afterok:1");
	dep_bad("", "needs");
	dep_bad("afterok", "needs task ids");
	dep_bad("afterok:", "not a task id");
	dep_bad("afterok:0", "not a task id");
	dep_bad("afterok:x", "'x'");
	dep_bad("afterok:12_", "not a task id");
	dep_bad("afterok:12+5", "delays");
	dep_bad("aftercorr:12", "unknown condition 'aftercorr'");
	dep_bad("before:1", "unknown condition");
	dep_bad("afterok:1,afterok:2?afterok:3", "not both");
	dep_bad("afterok:1,", "ends with");
	dep_bad("afterok:1::2", "not a task id");
	dep_bad("AFTEROK:1", "unknown condition");
	/* A task id past INT64_MAX is refused, also one that wraps uint64_t
	 * back into range while it is read (2^64 + 1 reads as 1). */
	dep_bad("afterok:9223372036854775808", "not a task id");
	dep_bad("afterok:18446744073709551617", "not a task id");
	dep_bad("afterok:20000000000000000000", "not a task id");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outpat),
		cmocka_unit_test(test_array),
		cmocka_unit_test(test_index_ranges),
		cmocka_unit_test(test_dependency),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
