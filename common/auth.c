/*
 * auth.c: the cluster key (auth.h). The key file may hold any bytes (a
 * munge-style random file or a passphrase), so it is hashed to a fixed
 * 32-byte key with BLAKE2b instead of being used as is. The file is read
 * in pieces through the streaming hash, and every copy of the secret is
 * wiped before it goes out of scope. Also the payload that binds a MUNGE
 * credential to a connection (hex by libsodium).
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "error.h"
#include "log.h"

_Static_assert(crypto_auth_BYTES == HPQ_AUTH_MAC_BYTES, "MAC size");
_Static_assert(crypto_auth_KEYBYTES == HPQ_AUTH_KEY_BYTES, "key size");
_Static_assert(crypto_generichash_BYTES == HPQ_AUTH_KEY_BYTES, "hash size");

/* sodium_init is idempotent and thread-safe; it returns 1 when already done. */
static void auth_init(void)
{
	if (sodium_init() < 0)
		hpq_fatal("cannot initialise libsodium");
}

int hpq_auth_load_key(const char *path, uint8_t key[HPQ_AUTH_KEY_BYTES])
{
	crypto_generichash_state st;
	uint8_t buf[4096], out[HPQ_AUTH_KEY_BYTES];
	size_t total = 0;
	int fd, r = 0;

	auth_init();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	crypto_generichash_init(&st, NULL, 0, sizeof(out));
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		crypto_generichash_update(&st, buf, (size_t)n);
		total += (size_t)n;
	}
	if (total == 0) {
		r = HPQ_EINVAL;
		goto out;
	}
	crypto_generichash_final(&st, out, sizeof(out));
	memcpy(key, out, sizeof(out));
out:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(out, sizeof(out));
	sodium_memzero(&st, sizeof(st));
	close(fd);
	return r;
}

void hpq_auth_nonce(uint8_t nonce[HPQ_AUTH_NONCE_BYTES])
{
	auth_init();
	randombytes_buf(nonce, HPQ_AUTH_NONCE_BYTES);
}

void hpq_auth_mac(const uint8_t *nonce, size_t nonce_len, const uint8_t key[HPQ_AUTH_KEY_BYTES],
		  uint8_t mac[HPQ_AUTH_MAC_BYTES])
{
	auth_init();
	crypto_auth(mac, nonce, nonce_len, key);
}

int hpq_auth_verify(const uint8_t *mac, size_t mac_len, const uint8_t *nonce, size_t nonce_len,
		    const uint8_t key[HPQ_AUTH_KEY_BYTES])
{
	auth_init();
	if (!mac || mac_len != HPQ_AUTH_MAC_BYTES)
		return HPQ_EAUTH;
	return crypto_auth_verify(mac, nonce, nonce_len, key) == 0 ? 0 : HPQ_EAUTH;
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
