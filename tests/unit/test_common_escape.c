/*
 * test_common_escape.c: hpq_escape (common/escape.h) shows control
 * characters, C1 controls, bidirectional overrides and bytes that are not
 * UTF-8 as visible escapes, and leaves printable text, UTF-8 included,
 * alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "escape.h"

static void check(const char *in, const char *want)
{
	char *out = hpq_escape(in);

	assert_string_equal(out, want);
	free(out);
}

static void plain_text_unchanged(void **state)
{
	check("", "");
	check("python train.py --lr=0.1", "python train.py --lr=0.1");
	check("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x9a\x80", "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x9a\x80");
}

static void controls_escaped(void **state)
{
	check("a\nCommand: forged", "a\\nCommand: forged");
	check("\r\t", "\\r\\t");
	check("\x1b[31mred", "\\x1b[31mred");
	check("\x7f\x01", "\\x7f\\x01");
	check("back\\slash", "back\\\\slash");
}

static void c1_bidi_and_bad_utf8(void **state)
{
	check("\xc2\x9b" "2J", "\\u009b2J");             /* CSI as UTF-8 */
	check("\x9b" "2J", "\\x9b2J");                   /* a lone C1 byte */
	check("\xe2\x80\xae" "gpj.exe", "\\u202egpj.exe"); /* right-to-left override */
	check("\xe2\x80\xa8", "\\u2028");                /* line separator */
	check("\xc0\xaf", "\\xc0\\xaf");                 /* overlong '/' */
	check("\xed\xa0\x80", "\\xed\\xa0\\x80");        /* a surrogate */
	check("\xf0\x9f", "\\xf0\\x9f");                 /* cut short */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_text_unchanged),
		cmocka_unit_test(controls_escaped),
		cmocka_unit_test(c1_bidi_and_bad_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
