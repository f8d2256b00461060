/*
 * auth.h: the cluster key that authenticates TCP peers (agents and remote
 * clients). The key is derived from a secret file's contents (any bytes,
 * like a munge key) with BLAKE2b-256. The daemon sends a random nonce in
 * HelloReply; the peer answers with Auth{mac = HMAC-SHA512-256(nonce, key)}
 * (libsodium crypto_auth). Unix-socket clients need no key: the kernel's
 * peer credentials identify them.
 *
 * A client over TCP proves its user with a MUNGE credential instead, whose
 * payload (hpq_munge_payload) binds it to one connection: the role and the
 * daemon's nonce, so that a credential relayed to another connection or
 * another daemon does not match there.
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

/* "hpq-munge-v1 ROLE HEX(nonce)": at most this long with its NUL. */
#define HPQ_MUNGE_PAYLOAD_MAX 128
/* Writes the MUNGE payload for role ("client") and nonce into buf. Returns
 * its length (without a NUL), or HPQ_EINVAL when nonce_len is not
 * HPQ_AUTH_NONCE_BYTES or role is too long. */
int hpq_munge_payload(const char *role, const uint8_t *nonce, size_t nonce_len,
		      char buf[HPQ_MUNGE_PAYLOAD_MAX]);

#endif
