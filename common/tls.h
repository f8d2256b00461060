/*
 * tls.h: TLS 1.3 channels over memory BIOs (OpenSSL 3), for any event
 * loop. The loop owns the socket and moves bytes: what arrives goes into
 * hpq_tls_feed, what hpq_tls_out_take hands back goes out. The channel
 * turns ciphertext into plaintext (hpq_tls_read) and plaintext into
 * ciphertext (hpq_tls_write). hpqd drives it from libuv, hpq-agent from
 * libev, the CLI from blocking poll(); none of them sees OpenSSL.
 *
 * Trust is the cluster CA's (pki.h) and nothing else: the system's trust
 * store is never used. A client verifies the server's certificate against
 * the CA and the name it dialled (DNS name or IP address), or, when it
 * joins and has no CA yet, against a pinned CA hash: the server sends the
 * CA certificate in its chain, and the client trusts that CA only if its
 * hash is the pin. A server asks clients for a certificate but does not
 * require one (CLI clients prove their user with MUNGE instead); a
 * certificate that is sent must verify against the CA, or the handshake
 * fails.
 *
 * Plaintext written before the handshake completes is kept and sent once
 * it has. Session tickets and renegotiation are off; only TLS 1.3.
 */
#ifndef HPQ_TLS_H
#define HPQ_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pki.h"

struct hpq_tls_config {
	const char *ca_pem;       /* the CA to trust (PEM text); NULL with pin_hash */
	const char *pin_hash;     /* client without a CA: "sha256:..." of the CA to accept */
	const char *cert_pem;     /* own certificate (PEM text), or NULL */
	const char *key_pem;      /* its key (PEM text), or NULL */
	const char *chain_pem;    /* server: sent after cert_pem (the CA certificate), or NULL */
};

struct hpq_tls_ctx;
struct hpq_tls;

struct hpq_tls_ctx *hpq_tls_ctx_new(bool server, const struct hpq_tls_config *cfg, char *err,
				    size_t errlen);
void hpq_tls_ctx_free(struct hpq_tls_ctx *ctx);

/* A channel. For a client, server_name is the name the server's
 * certificate must carry (an IP address or a DNS name; sent as SNI when a
 * DNS name); it is NULL on the server. The client's first flight is ready
 * in hpq_tls_out_take at once. A client channel without a usable
 * server_name has failed from the start (hpq_tls_error says so). */
struct hpq_tls *hpq_tls_new(struct hpq_tls_ctx *ctx, const char *server_name);
void hpq_tls_free(struct hpq_tls *t);

/* Ciphertext from the peer. Advances the handshake. Returns 0, or
 * HPQ_ETLS once the channel failed (hpq_tls_error says why: a bad
 * certificate, a wrong pin, a protocol error). After a feed, and after a
 * failure too (an alert for the peer), send what hpq_tls_out_take has. */
int hpq_tls_feed(struct hpq_tls *t, const void *buf, size_t len);
/* Decrypted bytes, up to len: returns how many (0: none ready yet), or a
 * negative code: -EPIPE after the peer's close_notify, HPQ_ETLS on
 * failure. */
ssize_t hpq_tls_read(struct hpq_tls *t, void *buf, size_t len);
/* Encrypts len bytes for the peer (kept until the handshake is done).
 * -EPIPE after hpq_tls_shutdown, HPQ_ETLS once the channel failed. */
int hpq_tls_write(struct hpq_tls *t, const void *buf, size_t len);
/* Ciphertext waiting to go to the peer: how many bytes, and taking up to
 * len of them (returns how many were copied). */
size_t hpq_tls_out_pending(const struct hpq_tls *t);
size_t hpq_tls_out_take(struct hpq_tls *t, void *buf, size_t len);
/* Queues close_notify. */
void hpq_tls_shutdown(struct hpq_tls *t);

bool hpq_tls_ready(const struct hpq_tls *t);    /* handshake done and verified */
/* After the handshake: the peer's certificate, verified against the CA;
 * false if the peer sent none. */
bool hpq_tls_peer(const struct hpq_tls *t, struct hpq_cert_info *info);
/* Why the channel failed (or ""). */
const char *hpq_tls_error(const struct hpq_tls *t);

#endif
