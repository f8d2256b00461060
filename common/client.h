/*
 * client.h: the blocking client library: connect to hpqd over its Unix
 * socket or TCP, say Hello, and make request/reply calls. Used by the
 * CLI, by `hpq checkpoint` inside tasks, and by the tests and benchmarks.
 * It has no event loop: each call writes one frame and reads until the
 * reply with the same request id arrives.
 *
 * Where to connect (hpq_client_connect with addr NULL): $HPQ_SOCKET, then
 * $HPQ_SERVER (HOST:PORT), then HPQ_DEFAULT_SOCKET. An addr containing
 * '/' is a socket path; anything else is HOST:PORT (or HOST, port 7420).
 */
#ifndef HPQ_CLIENT_H
#define HPQ_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "frame.h"
#include "hpq.pb-c.h"

struct hpq_tls;
struct hpq_tls_ctx;

struct hpq_client {
	int fd;
	struct hpq_tls_ctx *tls_ctx; /* over TCP (tls.h) */
	struct hpq_tls *tls;
	bool tls_closed;             /* hpqd sent close_notify */
	uint64_t next_id;
	struct hpq_framer framer;
	char *user;       /* identity the daemon gave us (HelloReply.user) */
	bool admin;
	char *server_version;
	int timeout_ms;   /* bound on connect and on each wait for a reply */
	char errbuf[256]; /* last error, for messages */
};

/* Connects and completes the Hello exchange, and Auth when the daemon asks
 * for it. Over TCP: TLS 1.3, trusting the cluster CA in $HPQ_CA_FILE
 * (default HPQ_DEFAULT_CA_FILE) for a certificate that names the host
 * dialled or $HPQ_SERVER_NAME, and a MUNGE credential from the munged at
 * $HPQ_MUNGE_SOCKET (default HPQ_DEFAULT_MUNGE_SOCKET); with
 * HPQ_INSECURE=1, plain TCP to an --insecure hpqd. timeout_ms bounds
 * connect and each read (0: 30 s). Returns 0 or a negative code;
 * c->errbuf says what went wrong. */
int hpq_client_connect(struct hpq_client *c, const char *addr, int timeout_ms);
void hpq_client_close(struct hpq_client *c);

/* Sends req (its id is assigned here) and waits for the reply. On success
 * returns 0 and *ret_reply is the reply Envelope (free with
 * hpq_msg_free). If the daemon answered with Error, returns its code and
 * copies its message into c->errbuf; *ret_reply is not set. */
int hpq_client_call(struct hpq_client *c, Hpq__Envelope *req, Hpq__Envelope **ret_reply);

/* Waits for one more reply to the request with id (req->id after
 * hpq_client_call), for requests answered in several frames (a streamed
 * ListRequest). Returns as hpq_client_call does. */
int hpq_client_next(struct hpq_client *c, uint64_t id, Hpq__Envelope **ret_reply);

#endif
