/*
 * auth.h: the cluster key that authenticates TCP peers (agents and remote
 * clients). The key is derived from a secret file's contents (any bytes,
 * like a munge key) with BLAKE2b-256. The daemon sends a random nonce in
 * HelloReply; the peer answers with Auth{mac = HMAC-SHA512-256(nonce, key)}
 * (libsodium crypto_auth). Unix-socket clients need no key: the kernel's
 * peer credentials identify them.
 */
#ifndef HPQ_AUTH_H
#define HPQ_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define HPQ_AUTH_KEY_BYTES 32
#define HPQ_AUTH_NONCE_BYTES 32
#define HPQ_AUTH_MAC_BYTES 32

/* Reads path and derives the key. Returns 0, a negative errno, or
 * HPQ_EINVAL for an empty file. */
int hpq_auth_load_key(const char *path, uint8_t key[HPQ_AUTH_KEY_BYTES]);
void hpq_auth_nonce(uint8_t nonce[HPQ_AUTH_NONCE_BYTES]);
void hpq_auth_mac(const uint8_t *nonce, size_t nonce_len, const uint8_t key[HPQ_AUTH_KEY_BYTES],
		  uint8_t mac[HPQ_AUTH_MAC_BYTES]);
/* Constant-time check. Returns 0 when mac is right, HPQ_EAUTH otherwise. */
int hpq_auth_verify(const uint8_t *mac, size_t mac_len, const uint8_t *nonce, size_t nonce_len,
		    const uint8_t key[HPQ_AUTH_KEY_BYTES]);

#endif
