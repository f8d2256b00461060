/*
 * test_common_xalloc.c: the big buffers of xalloc.h. Growing keeps the
 * contents, also across XBIG_MIN (malloc's memory into a mapping) and
 * from one mapping into a bigger one; a mapping starts on a 2 MiB
 * boundary, and what was not copied into it reads as zero; a shrink is
 * refused (a mapping handed to realloc would corrupt the heap).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "xalloc.h"

/* Fills b[from, to) with a pattern that says where each byte is. */
static void fill(uint8_t *b, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		b[i] = (uint8_t)(i * 7 + i / 251);
}

static void assert_filled(const uint8_t *b, size_t to)
{
	for (size_t i = 0; i < to; i++)
		if (b[i] != (uint8_t)(i * 7 + i / 251))
			fail_msg("byte %zu is %u", i, b[i]);
}

static void test_grow_keeps_contents(void **state)
{
	static const size_t sizes[] = {
		100, 4096, XBIG_MIN - 1, XBIG_MIN, XBIG_MIN + 1, 3u << 20, 9u << 20,
	};
	uint8_t *b = NULL;
	size_t size = 0;

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];

		b = xbig_grow(b, size, n);
		assert_non_null(b);
		assert_filled(b, size);
		if (n >= XBIG_MIN) {
			assert_int_equal((uintptr_t)b % (2u << 20), 0);
			for (size_t i = size; i < n; i++)
				if (b[i])
					fail_msg("byte %zu of a new mapping is %u", i, b[i]);
		}
		fill(b, size, n);
		size = n;
	}
	assert_filled(b, size);
	xbig_free(b, size);
	xbig_free(NULL, 0);
	xbig_free(NULL, XBIG_MIN);
}

/* A shrink ends the process (hpq_fatal aborts), in a child of its own. */
static void test_shrink_refused(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint8_t *b = xbig_grow(NULL, 0, XBIG_MIN);

		if (dup2(open("/dev/null", O_WRONLY), 2) < 0)
			_exit(3);
		b = xbig_grow(b, XBIG_MIN, 100);
		_exit(b ? 0 : 4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow_keeps_contents),
		cmocka_unit_test(test_shrink_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
