/*
 * frame.c: the incremental frame decoder and header writer (frame.h).
 *
 * Buffered bytes live in buf[off, len). A returned payload points into the
 * buffer, so nothing moves until the next call: feed() compacts the buffer
 * (moves the unconsumed tail to the front) before appending, and next()
 * only rewinds when everything has been consumed. A buffer is freed once
 * it drains, so an idle connection keeps none: hpqd with 10,000 agents
 * kept 40 MiB of 4 KiB buffers between their heartbeats. The length of
 * the frame being collected is checked as soon as its header is complete,
 * before its body is stored, so a peer cannot make us buffer more than
 * max + one read chunk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "frame.h"
#include "log.h"
#include "xalloc.h"

/* A buffer starts small and doubles as a frame needs: most reads are one
 * frame of a few hundred bytes, and glibc serves requests that small from
 * a per-thread cache. A first buffer of 4 KiB is a "large" request, which
 * makes malloc consolidate the heap's free small chunks first: at 10,000
 * nodes that was a tenth of hpqd's loop, once for every read. */
#define FRAMER_MIN 256u

void hpq_framer_init(struct hpq_framer *f, uint32_t max)
{
	*f = (struct hpq_framer)HPQ_FRAMER_INIT(max);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void hpq_frame_header(uint8_t out[HPQ_FRAME_HEADER], uint32_t len)
{
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
}

size_t hpq_framer_pending(const struct hpq_framer *f)
{
	return f->len - f->off;
}

static void framer_drop(struct hpq_framer *f)
{
	free(f->buf);
	f->buf = NULL;
	f->cap = f->len = f->off = 0;
}

void hpq_framer_release(struct hpq_framer *f)
{
	framer_drop(f);
	f->error = 0;
}

/* Moves the unconsumed bytes to the front; drops the buffer once empty. */
static void framer_compact(struct hpq_framer *f)
{
	size_t pending = f->len - f->off;

	if (pending == 0 && f->cap) {
		framer_drop(f);
		return;
	}
	if (f->off > 0 && pending > 0) {
		memmove(f->buf, f->buf + f->off, pending);
	}
	f->len = pending;
	f->off = 0;
}

static void framer_append(struct hpq_framer *f, const uint8_t *data, size_t n)
{
	size_t need;

	if (n == 0)
		return;
	if (n > SIZE_MAX - f->len)
		hpq_fatal("frame buffer size overflows");
	need = f->len + n;
	if (need > f->cap) {
		size_t cap = f->cap ? f->cap : FRAMER_MIN;

		while (cap < need)
			cap = cap > SIZE_MAX / 2 ? need : cap * 2;
		f->buf = xrealloc(f->buf, cap);
		f->cap = cap;
	}
	memcpy(f->buf + f->len, data, n);
	f->len = need;
}

/* The frame at off has a complete header announcing more than max. */
static int framer_check_head(struct hpq_framer *f)
{
	if (f->len - f->off >= HPQ_FRAME_HEADER && get_be32(f->buf + f->off) > f->max)
		f->error = HPQ_ETOOBIG;
	return f->error;
}

int hpq_framer_feed(struct hpq_framer *f, const void *data, size_t n)
{
	const uint8_t *p = data;
	size_t pending, head;

	if (f->error)
		return f->error;
	framer_compact(f);

	/* Complete the header of the frame being collected and check it
	 * before storing any of its body. */
	pending = f->len;
	if (pending < HPQ_FRAME_HEADER) {
		head = HPQ_FRAME_HEADER - pending;
		if (head > n)
			head = n;
		framer_append(f, p, head);
		p += head;
		n -= head;
	}
	if (framer_check_head(f))
		return f->error;
	framer_append(f, p, n);
	return 0;
}

int hpq_framer_next(struct hpq_framer *f, const uint8_t **ret_payload, size_t *ret_len)
{
	size_t pending;
	uint32_t flen;

	if (f->error)
		return f->error;
	if (f->off == f->len) {
		/* Everything consumed: the last payload returned is done with. */
		framer_drop(f);
		return 0;
	}
	pending = f->len - f->off;
	if (pending < HPQ_FRAME_HEADER)
		return 0;
	flen = get_be32(f->buf + f->off);
	if (flen > f->max) {
		f->error = HPQ_ETOOBIG;
		return f->error;
	}
	/* flen <= max < 2^32 and pending >= 4, so neither side overflows. */
	if (pending - HPQ_FRAME_HEADER < flen)
		return 0;
	*ret_payload = f->buf + f->off + HPQ_FRAME_HEADER;
	*ret_len = flen;
	f->off += HPQ_FRAME_HEADER + (size_t)flen;
	return 1;
}
