/*
 * auth.h: how a client over TCP proves its user: the daemon sends a random
 * nonce in HelloReply, and the client answers with a MUNGE credential
 * whose payload (hpq_munge_payload) binds it to that one connection: the
 * role and the daemon's nonce, so that a credential relayed to another
 * connection or another daemon does not match there. (Nodes prove
 * themselves with certificates: pki.h, tls.h. On the Unix socket the
 * kernel's peer credentials identify everyone.)
 */
#ifndef HPQ_AUTH_H
#define HPQ_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define HPQ_AUTH_NONCE_BYTES 32

void hpq_auth_nonce(uint8_t nonce[HPQ_AUTH_NONCE_BYTES]);

/* "hpq-munge-v1 ROLE HEX(nonce)": at most this long with its NUL. */
#define HPQ_MUNGE_PAYLOAD_MAX 128
/* Writes the MUNGE payload for role ("client") and nonce into buf. Returns
 * its length (without a NUL), or HPQ_EINVAL when nonce_len is not
 * HPQ_AUTH_NONCE_BYTES or role is too long. */
int hpq_munge_payload(const char *role, const uint8_t *nonce, size_t nonce_len,
		      char buf[HPQ_MUNGE_PAYLOAD_MAX]);

#endif
