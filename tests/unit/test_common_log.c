/*
 * test_common_log.c: the logger writes one "<N>message" line per call to a
 * non-terminal stderr, filters by level, keeps errno, and truncates long
 * messages to one line; dated lines (a daemon's own log file) carry the
 * date, time, offset, level, program and pid; hpq_strerror covers both
 * code ranges.
 */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "log.h"
#include "xalloc.h"

/* Runs fn with stderr redirected to a temporary file; returns its text. */
static char *capture(void (*fn)(void))
{
	char path[] = "/tmp/hpq-test-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	static char out[8192];
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	fn();
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	n = pread(fd, out, sizeof(out) - 1, 0);
	assert_true(n >= 0);
	out[n] = '\0';
	close(fd);
	return out;
}

static void log_some(void)
{
	hpq_log_init("/usr/sbin/hpqd", LOG_INFO);
	errno = EAGAIN;
	log_info("node %s joined pool %s", "gpu-01", "default");
	assert_int_equal(errno, EAGAIN);
	log_debug("not shown");
	log_err("cannot open '%s': %s", "/x", "permission denied");
	log_warn("trailing newline\n");
}

static void test_lines(void **state)
{
	assert_string_equal(capture(log_some),
			    "<6>node gpu-01 joined pool default\n"
			    "<3>cannot open '/x': permission denied\n"
			    "<4>trailing newline\n");
}

static void log_long(void)
{
	char *big = xmalloc(5000);

	memset(big, 'y', 4999);
	big[4999] = '\0';
	hpq_log_init("hpq", LOG_DEBUG);
	log_debug("%s", big);
	free(big);
}

static void test_long(void **state)
{
	char *out = capture(log_long);
	size_t n = strlen(out);

	assert_true(n > 1000 && n < 2100);
	assert_memory_equal(out, "<7>yyy", 6);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, '\n', n - 1));
}

static void log_dated(void)
{
	hpq_log_init("/usr/sbin/hpqd", LOG_INFO);
	hpq_log_dated(true);
	log_notice("hpqd ready");
	log_debug("not shown");
	hpq_log_init("hpqd", LOG_INFO); /* back to journald's prefixes */
	log_info("plain");
}

static void test_dated(void **state)
{
	char *out = capture(log_dated), want[128];
	regex_t re;

	snprintf(want, sizeof(want), "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
		 "\\.[0-9]{3}[+-][0-9]{4} notice hpqd\\[%ld\\]: hpqd ready\n<6>plain\n$",
		 (long)getpid());
	assert_int_equal(regcomp(&re, want, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&re, out, 0, NULL, 0) != 0)
		fail_msg("not a dated line and a plain one: '%s'", out);
	regfree(&re);
}

static void test_levels(void **state)
{
	assert_int_equal(hpq_log_level_parse("error"), LOG_ERR);
	assert_int_equal(hpq_log_level_parse("warning"), LOG_WARNING);
	assert_int_equal(hpq_log_level_parse("NOTICE"), LOG_NOTICE);
	assert_int_equal(hpq_log_level_parse("info"), LOG_INFO);
	assert_int_equal(hpq_log_level_parse("debug"), LOG_DEBUG);
	assert_int_equal(hpq_log_level_parse("loud"), -1);
	assert_int_equal(hpq_log_level_parse(""), -1);
	assert_int_equal(hpq_log_level_parse(NULL), -1);
	hpq_log_set_level(LOG_NOTICE);
	assert_int_equal(hpq_log_level(), LOG_NOTICE);
}

static void test_strerror(void **state)
{
	assert_string_equal(hpq_strerror(HPQ_EPROTO), "protocol error");
	assert_string_equal(hpq_strerror(HPQ_ETOOBIG), "message too large");
	assert_string_equal(hpq_strerror(HPQ_EBUSY), "in use");
	assert_string_equal(hpq_strerror(-ENOENT), "No such file or directory");
	assert_string_equal(hpq_strerror(0), "success");
	assert_string_equal(hpq_strerror(-1000), "unknown error");
	assert_string_equal(hpq_strerror(-1014), "unknown error");
	assert_string_equal(hpq_strerror(-999), "unknown error");
	/* Every domain code has its own text. */
	for (int c = HPQ_ETLS; c <= HPQ_EPROTO; c++)
		assert_string_not_equal(hpq_strerror(c), "unknown error");
}

static void test_xalloc(void **state)
{
	char *s = NULL;

	assert_int_equal(xasprintf(&s, "%s-%d", "task", 42), 7);
	assert_string_equal(s, "task-42");
	free(s);
	s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	s = xstrndup("ab", 10);
	assert_string_equal(s, "ab");
	free(s);
	s = xreallocarray(NULL, 10, 10);
	memset(s, 0, 100);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),   cmocka_unit_test(test_long),
		cmocka_unit_test(test_levels),  cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_xalloc),  cmocka_unit_test(test_dated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
