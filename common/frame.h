/*
 * frame.h: the wire framing of docs/design.md §7: a 4-byte big-endian length,
 * then that many bytes of one protobuf Envelope.
 *
 * The decoder is incremental and loop-agnostic: feed it whatever chunks
 * a read returned, in order, and take whole frames out. It never looks at
 * the payload, and it rejects a length over its limit as soon as the
 * 4-byte header is complete, before allocating anything for the body.
 *
 *	struct hpq_framer f = HPQ_FRAMER_INIT(HPQ_FRAME_MAX);
 *	hpq_framer_feed(&f, buf, n);
 *	while ((r = hpq_framer_next(&f, &p, &len)) > 0)
 *		handle(p, len);          // p valid until the next feed/next/release
 *	if (r < 0) close the connection (HPQ_ETOOBIG)
 */
#ifndef HPQ_FRAME_H
#define HPQ_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define HPQ_FRAME_HEADER 4

struct hpq_framer {
	uint8_t *buf;    /* buffered bytes not yet returned as frames */
	size_t len;      /* bytes in buf */
	size_t cap;      /* allocated size of buf */
	size_t off;      /* start of unconsumed data in buf */
	uint32_t max;    /* largest payload accepted */
	int error;       /* sticky: once set, every call returns it */
};

#define HPQ_FRAMER_INIT(max_) { NULL, 0, 0, 0, (max_), 0 }

void hpq_framer_init(struct hpq_framer *f, uint32_t max);
/* Frees the buffer; f may be reused after hpq_framer_init. */
void hpq_framer_release(struct hpq_framer *f);

/* Appends n bytes. Returns 0, or the sticky error. */
int hpq_framer_feed(struct hpq_framer *f, const void *data, size_t n);

/* Returns 1 and sets *ret_payload and *ret_len to the next whole frame, 0 if
 * no whole frame is buffered yet, or a negative code (HPQ_ETOOBIG) if the
 * stream is broken. The payload stays valid until the next call. */
int hpq_framer_next(struct hpq_framer *f, const uint8_t **ret_payload, size_t *ret_len);

/* Bytes buffered but not yet returned (a partial frame). */
size_t hpq_framer_pending(const struct hpq_framer *f);

/* Writes the 4-byte header for a payload of len bytes. */
void hpq_frame_header(uint8_t out[HPQ_FRAME_HEADER], uint32_t len);

#endif
