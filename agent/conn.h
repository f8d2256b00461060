/*
 * conn.h: one framed protocol connection on the agent's libev loop, for
 * the uplink to hpqd (TCP) and for tasks on the local socket (Unix).
 *
 * Reading follows redis's read handler: read what is there, feed the
 * frame decoder, decode and hand each Envelope to on_frame; EAGAIN waits
 * for more, EOF or an error closes. Output is buffered and written by an
 * ev_io write watcher that runs only while something is queued (tmux's
 * proc_update_event), so a slow peer never blocks the loop; a peer that
 * stops reading altogether is dropped when its queue passes a limit.
 *
 * A conn may speak TLS (conn_set_tls, for the uplink over TCP): what the
 * socket gives goes into the channel (hpq_tls_feed) and what the channel
 * decrypts into the frame decoder; frames to send are encrypted, and the
 * channel's records (the handshake's too) go into the output buffer. The
 * frames themselves are the same either way. A TLS failure closes the
 * conn with HPQ_ETLS, and conn_error() says why.
 *
 * Teardown follows tmux's "mark dead, free later": conn_close() stops
 * the watchers, closes the socket, marks the conn dead, calls on_close
 * once and drops the owner's reference. The memory stays until the last
 * reference is dropped, so a handler in the middle of on_frame, or a
 * request still waiting for the daemon's answer on behalf of a local
 * client, can hold a reference and look at `dead` safely.
 */
#ifndef HPQ_AGENT_CONN_H
#define HPQ_AGENT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "frame.h"
#include "hpq.pb-c.h"
#include "tls.h"

/* A peer that lets this much output pile up is dropped. */
#define CONN_OUT_MAX (16u << 20)

struct conn;

/* A decoded message; the Envelope is freed after the callback returns. */
typedef void conn_frame_fn(struct conn *c, const Hpq__Envelope *env);
/* The conn is closed: error is 0 for EOF, else a negative code
 * (HPQ_EPROTO for a malformed frame, HPQ_ETOOBIG, HPQ_ETLS, -errno). */
typedef void conn_close_fn(struct conn *c, int error);

struct conn {
	struct ev_loop *loop;
	int fd;
	ev_io rio, wio;
	struct hpq_framer framer;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	struct hpq_tls *tls;      /* NULL: plaintext; freed when the conn closes */
	char error[512];          /* why TLS failed, kept past the channel */
	int refs;
	bool dead;
	conn_frame_fn *on_frame;
	conn_close_fn *on_close;
	void *data;               /* the owner's */
};

/* Takes over a connected non-blocking fd and starts reading. The caller
 * holds the one reference that conn_close() drops. */
struct conn *conn_new(struct ev_loop *loop, int fd, conn_frame_fn *on_frame,
		      conn_close_fn *on_close, void *data);

/* From now on the conn speaks TLS through t, which it owns. Call it right
 * after conn_new, before anything is sent; a client's first flight goes
 * out at once. */
void conn_set_tls(struct conn *c, struct hpq_tls *t);
/* Why the conn failed with HPQ_ETLS (hpq_tls_error's words), or "". */
const char *conn_error(const struct conn *c);

/* Queues one Envelope. A no-op on a dead conn. */
void conn_send(struct conn *c, const Hpq__Envelope *env);
/* Queues Error{code, message} with request id `id`. */
void conn_send_error(struct conn *c, uint64_t id, int code, const char *message);

/* Tries once, without blocking, to write what is queued (used before
 * closing, for a last error reply), then closes. */
void conn_close_flush(struct conn *c, int error);
/* See the teardown note above. Safe to call more than once. */
void conn_close(struct conn *c, int error);

void conn_ref(struct conn *c);
void conn_unref(struct conn *c);

#endif
