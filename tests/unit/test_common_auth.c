/*
 * test_common_auth.c: what binds a MUNGE credential to a connection. The
 * nonce is random; the payload names the role and the whole nonce, and
 * only a nonce of the right size.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "error.h"

static void test_nonce(void **state)
{
	uint8_t a[HPQ_AUTH_NONCE_BYTES] = { 0 }, b[HPQ_AUTH_NONCE_BYTES] = { 0 };

	/* Random: two in a row differ (2^-256 says they never meet). */
	hpq_auth_nonce(a);
	hpq_auth_nonce(b);
	assert_memory_not_equal(a, b, sizeof(a));
}

static void test_munge_payload(void **state)
{
	uint8_t nonce[HPQ_AUTH_NONCE_BYTES];
	char p[HPQ_MUNGE_PAYLOAD_MAX], q[HPQ_MUNGE_PAYLOAD_MAX];
	char role[HPQ_MUNGE_PAYLOAD_MAX];

	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(i * 8 + 1);
	assert_int_equal(hpq_munge_payload("client", nonce, sizeof(nonce), p), 84);
	assert_string_equal(p, "hpq-munge-v1 client 0109111921293139414951596169717981"
			       "899199a1a9b1b9c1c9d1d9e1e9f1f9");
	/* Another role or another nonce is another payload. */
	assert_int_equal(hpq_munge_payload("agent", nonce, sizeof(nonce), q), 83);
	assert_string_not_equal(p, q);
	nonce[31] ^= 1;
	assert_int_equal(hpq_munge_payload("client", nonce, sizeof(nonce), q), 84);
	assert_string_not_equal(p, q);
	/* No nonce, a short one, or a role that does not fit. */
	assert_int_equal(hpq_munge_payload("client", NULL, 0, q), HPQ_EINVAL);
	assert_int_equal(hpq_munge_payload("client", nonce, sizeof(nonce) - 1, q), HPQ_EINVAL);
	memset(role, 'r', sizeof(role) - 1);
	role[sizeof(role) - 1] = '\0';
	assert_int_equal(hpq_munge_payload(role, nonce, sizeof(nonce), q), HPQ_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nonce),
		cmocka_unit_test(test_munge_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
