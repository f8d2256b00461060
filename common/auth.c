/*
 * auth.c: the nonce and the payload that bind a MUNGE credential to one
 * connection (auth.h), with libsodium's random bytes and hex.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "error.h"
#include "log.h"

/* sodium_init is idempotent and thread-safe; it returns 1 when already done. */
static void auth_init(void)
{
	if (sodium_init() < 0)
		hpq_fatal("cannot initialise libsodium");
}

void hpq_auth_nonce(uint8_t nonce[HPQ_AUTH_NONCE_BYTES])
{
	auth_init();
	randombytes_buf(nonce, HPQ_AUTH_NONCE_BYTES);
}

int hpq_munge_payload(const char *role, const uint8_t *nonce, size_t nonce_len,
		      char buf[HPQ_MUNGE_PAYLOAD_MAX])
{
	char hex[HPQ_AUTH_NONCE_BYTES * 2 + 1];
	int n;

	if (!nonce || nonce_len != HPQ_AUTH_NONCE_BYTES)
		return HPQ_EINVAL;
	sodium_bin2hex(hex, sizeof(hex), nonce, nonce_len);
	n = snprintf(buf, HPQ_MUNGE_PAYLOAD_MAX, "hpq-munge-v1 %s %s", role, hex);
	return n < 0 || n >= HPQ_MUNGE_PAYLOAD_MAX ? HPQ_EINVAL : n;
}
