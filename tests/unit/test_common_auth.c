/*
 * test_common_auth.c: the cluster key. The key depends on the whole key
 * file, a MAC verifies only under the same key and nonce, and a missing
 * or empty key file is an error, not a weak key. The MUNGE payload names
 * the role and the whole nonce, and only a nonce of the right size.
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

static char dir[] = "/tmp/hpq-test-auth-XXXXXX";

static void write_file(const char *path, const char *content, size_t n)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_key_and_mac(void **state)
{
	uint8_t k1[HPQ_AUTH_KEY_BYTES], k2[HPQ_AUTH_KEY_BYTES], k3[HPQ_AUTH_KEY_BYTES];
	uint8_t nonce[HPQ_AUTH_NONCE_BYTES], nonce2[HPQ_AUTH_NONCE_BYTES];
	uint8_t mac[HPQ_AUTH_MAC_BYTES];
	char a[256], b[256], c[256];
	char big[10000];

	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	snprintf(c, sizeof(c), "%s/c", dir);
	/* Two big files differing only in their last byte: the whole file counts. */
	memset(big, 'k', sizeof(big));
	write_file(a, big, sizeof(big));
	big[sizeof(big) - 1] = 'K';
	write_file(b, big, sizeof(big));
	write_file(c, big, sizeof(big));

	assert_int_equal(hpq_auth_load_key(a, k1), 0);
	assert_int_equal(hpq_auth_load_key(b, k2), 0);
	assert_int_equal(hpq_auth_load_key(c, k3), 0);
	assert_memory_not_equal(k1, k2, sizeof(k1));
	assert_memory_equal(k2, k3, sizeof(k2));

	hpq_auth_nonce(nonce);
	hpq_auth_nonce(nonce2);
	assert_memory_not_equal(nonce, nonce2, sizeof(nonce));

	hpq_auth_mac(nonce, sizeof(nonce), k2, mac);
	assert_int_equal(hpq_auth_verify(mac, sizeof(mac), nonce, sizeof(nonce), k3), 0);
	/* Wrong key, wrong nonce, tampered or short MAC: refused. */
	assert_int_equal(hpq_auth_verify(mac, sizeof(mac), nonce, sizeof(nonce), k1), HPQ_EAUTH);
	assert_int_equal(hpq_auth_verify(mac, sizeof(mac), nonce2, sizeof(nonce2), k2),
			 HPQ_EAUTH);
	assert_int_equal(hpq_auth_verify(mac, sizeof(mac) - 1, nonce, sizeof(nonce), k2),
			 HPQ_EAUTH);
	assert_int_equal(hpq_auth_verify(NULL, 0, nonce, sizeof(nonce), k2), HPQ_EAUTH);
	mac[0] ^= 1;
	assert_int_equal(hpq_auth_verify(mac, sizeof(mac), nonce, sizeof(nonce), k2), HPQ_EAUTH);
}

static void test_key_file_errors(void **state)
{
	uint8_t key[HPQ_AUTH_KEY_BYTES], before[HPQ_AUTH_KEY_BYTES];
	char empty[256], missing[256];

	snprintf(empty, sizeof(empty), "%s/empty", dir);
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	write_file(empty, "", 0);
	memset(key, 0xaa, sizeof(key));
	memcpy(before, key, sizeof(key));
	assert_int_equal(hpq_auth_load_key(empty, key), HPQ_EINVAL);
	assert_int_equal(hpq_auth_load_key(missing, key), -ENOENT);
	assert_int_equal(hpq_auth_load_key(dir, key), -EISDIR);
	assert_memory_equal(key, before, sizeof(key));
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
		cmocka_unit_test(test_key_and_mac),
		cmocka_unit_test(test_key_file_errors),
		cmocka_unit_test(test_munge_payload),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
