/*
 * conn.c: buffered, framed, non-blocking connections on libev. The
 * lifecycle rules are in conn.h.
 */
#include <errno.h>
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
	int r;

	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c, n == 0 ? 0 : -errno);
		return;
	}
	r = hpq_framer_feed(&c->framer, buf, (size_t)n);
	conn_ref(c);
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

void conn_send(struct conn *c, const Hpq__Envelope *env)
{
	uint8_t *frame;
	size_t len;

	if (c->dead)
		return;
	frame = hpq_msg_encode(env, &len);
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + len > c->out_cap) {
		/* Compact before growing. */
		if (c->out_off > 0) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		if (c->out_len + len > c->out_cap) {
			c->out_cap = c->out_len + len > 2 * c->out_cap ? c->out_len + len
								       : 2 * c->out_cap;
			c->out = xrealloc(c->out, c->out_cap);
		}
	}
	memcpy(c->out + c->out_len, frame, len);
	c->out_len += len;
	free(frame);
	if (c->out_len - c->out_off > CONN_OUT_MAX) {
		conn_close(c, -ENOBUFS);
		return;
	}
	conn_update_write(c);
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
