/*
 * conn.c: buffered, framed, non-blocking connections on libev, in
 * plaintext or TLS. The lifecycle rules are in conn.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "error.h"
#include "hpq.h"
#include "log.h"
#include "msg.h"
#include "xalloc.h"

static void conn_update_write(struct conn *c)
{
	if (c->dead)
		return;
	if (c->out_len > c->out_off)
		ev_io_start(c->loop, &c->wio);
	else
		ev_io_stop(c->loop, &c->wio);
}

/* Writes as much as the socket takes. Returns 0 or -errno (not EAGAIN). */
static int conn_write_some(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -errno;
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Room for len more bytes at the end of the output buffer. */
static void conn_out_reserve(struct conn *c, size_t len)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + len <= c->out_cap)
		return;
	/* Compact before growing. */
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len > c->out_cap) {
		c->out_cap = c->out_len + len > 2 * c->out_cap ? c->out_len + len : 2 * c->out_cap;
		c->out = xrealloc(c->out, c->out_cap);
	}
}

/* Moves the TLS records waiting in the channel to the output buffer. */
static void conn_tls_out(struct conn *c)
{
	size_t n, got;

	while ((n = hpq_tls_out_pending(c->tls)) > 0) {
		conn_out_reserve(c, n);
		got = hpq_tls_out_take(c->tls, c->out + c->out_len, n);
		c->out_len += got;
		if (got == 0)
			break;
	}
}

/* Keeps the channel's words: the channel is gone by the time on_close runs. */
static void conn_tls_note(struct conn *c)
{
	const char *why = c->tls ? hpq_tls_error(c->tls) : NULL;

	if (!c->error[0])
		snprintf(c->error, sizeof(c->error), "%s", why && why[0] ? why : "TLS failed");
}

/* Starts or stops writing after output was queued; drops a peer whose
 * queue is over the limit. Returns false if the conn is closed now. */
static bool conn_out_queued(struct conn *c)
{
	if (c->out_len - c->out_off > CONN_OUT_MAX) {
		conn_close(c, -ENOBUFS);
		return false;
	}
	conn_update_write(c);
	return true;
}

/*
 * Ciphertext from the socket: into the channel, plaintext out of it into
 * the framer, and what the channel has to say (handshake records) out.
 * Returns 0 or the framer's error. *end says whether the channel is over
 * once the frames already decrypted are handled: -EPIPE after the peer's
 * close_notify, HPQ_ETLS after a failure.
 */
static int conn_tls_input(struct conn *c, uint8_t *buf, size_t n, size_t size, int *end)
{
	ssize_t m;
	int r;

	if (hpq_tls_feed(c->tls, buf, n) < 0) {
		conn_tls_note(c);
		*end = HPQ_ETLS;
	}
	while (!*end) {
		m = hpq_tls_read(c->tls, buf, size);
		if (m == 0)
			break;
		if (m < 0) {
			if (m != -EPIPE)
				conn_tls_note(c);
			*end = m == -EPIPE ? -EPIPE : HPQ_ETLS;
			break;
		}
		r = hpq_framer_feed(&c->framer, buf, (size_t)m);
		if (r < 0)
			return r;
	}
	conn_tls_out(c);
	(void)conn_out_queued(c);
	return 0;
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	int r = conn_write_some(c);

	if (r < 0) {
		conn_close(c, r);
		return;
	}
	conn_update_write(c);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	uint8_t buf[65536];
	const uint8_t *payload;
	size_t len;
	ssize_t n;
	int r, end = 0;

	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c, n == 0 ? 0 : -errno);
		return;
	}
	conn_ref(c);
	if (c->tls)
		r = conn_tls_input(c, buf, (size_t)n, sizeof(buf), &end);
	else
		r = hpq_framer_feed(&c->framer, buf, (size_t)n);
	while (r >= 0 && !c->dead && (r = hpq_framer_next(&c->framer, &payload, &len)) > 0) {
		Hpq__Envelope *env = hpq_msg_decode(payload, len);

		if (!env) {
			r = HPQ_EPROTO;
			break;
		}
		c->on_frame(c, env);
		hpq_msg_free(env);
	}
	if (r < 0 && !c->dead) {
		conn_send_error(c, 0, r, r == HPQ_ETOOBIG ? "frame too large" : "malformed frame");
		conn_close_flush(c, r);
	} else if (end == HPQ_ETLS && !c->dead) {
		conn_close_flush(c, HPQ_ETLS); /* the alert, if the channel has one */
	} else if (end && !c->dead) {
		conn_close(c, 0); /* close_notify: the peer is done, as at EOF */
	}
	conn_unref(c);
}

struct conn *conn_new(struct ev_loop *loop, int fd, conn_frame_fn *on_frame,
		      conn_close_fn *on_close, void *data)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->fd = fd;
	c->refs = 1;
	c->on_frame = on_frame;
	c->on_close = on_close;
	c->data = data;
	hpq_framer_init(&c->framer, HPQ_FRAME_MAX);
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	ev_io_start(loop, &c->rio);
	return c;
}

void conn_set_tls(struct conn *c, struct hpq_tls *t)
{
	c->tls = t;
	conn_tls_out(c);
	(void)conn_out_queued(c);
}

const char *conn_error(const struct conn *c)
{
	return c->error;
}

void conn_send(struct conn *c, const Hpq__Envelope *env)
{
	uint8_t *frame;
	size_t len;
	int r;

	if (c->dead)
		return;
	frame = hpq_msg_encode(env, &len);
	if (c->tls) {
		r = hpq_tls_write(c->tls, frame, len);
		free(frame);
		if (r < 0) {
			conn_tls_note(c);
			conn_close(c, HPQ_ETLS);
			return;
		}
		conn_tls_out(c);
	} else {
		conn_out_reserve(c, len);
		memcpy(c->out + c->out_len, frame, len);
		c->out_len += len;
		free(frame);
	}
	(void)conn_out_queued(c);
}

void conn_send_error(struct conn *c, uint64_t id, int code, const char *message)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Error err = HPQ__ERROR__INIT;

	err.code = code;
	err.message = (char *)message;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_ERROR;
	env.error = &err;
	conn_send(c, &env);
}

void conn_close_flush(struct conn *c, int error)
{
	if (!c->dead && c->tls) {
		if (error != HPQ_ETLS)
			hpq_tls_shutdown(c->tls);
		conn_tls_out(c);
	}
	if (!c->dead)
		(void)conn_write_some(c);
	conn_close(c, error);
}

void conn_close(struct conn *c, int error)
{
	if (c->dead)
		return;
	c->dead = true;
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	close(c->fd);
	c->fd = -1;
	if (c->tls) {
		if (error == HPQ_ETLS)
			conn_tls_note(c);
		/* Before on_close, which may free the channel's context. */
		hpq_tls_free(c->tls);
		c->tls = NULL;
	}
	if (c->on_close)
		c->on_close(c, error);
	conn_unref(c);
}

void conn_ref(struct conn *c)
{
	c->refs++;
}

void conn_unref(struct conn *c)
{
	if (--c->refs > 0)
		return;
	if (!c->dead)
		hpq_fatal("conn: last reference dropped on a live connection");
	hpq_framer_release(&c->framer);
	free(c->out);
	free(c);
}
