/*
 * fuzz_frame.c: the first code that touches a peer's bytes. The stream
 * (fuzz.h) is fed to one framer in the chunks its plan says and to a
 * second framer in one piece; both must yield the same frames and the
 * same verdict, whatever the cuts. Every frame is decoded; a decoded
 * message must have a body, re-encode, and decode again to the same kind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "frame.h"
#include "fuzz.h"
#include "hpq.h"
#include "msg.h"

/* Small enough that the fuzzer meets the limit often. */
#define FUZZ_FRAME_MAX (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const uint8_t *p, size_t len)
{
	Hpq__Envelope *env = hpq_msg_decode(p, len), *again;
	uint8_t *buf;
	size_t blen;

	if (!env)
		return;
	if (env->body_case == HPQ__ENVELOPE__BODY__NOT_SET || !strcmp(hpq_msg_name(env), "none"))
		abort();
	buf = hpq_msg_encode(env, &blen);
	again = hpq_msg_decode(buf + HPQ_FRAME_HEADER, blen - HPQ_FRAME_HEADER);
	if (!again || again->body_case != env->body_case || again->id != env->id)
		abort();
	hpq_msg_free(again);
	free(buf);
	hpq_msg_free(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hpq_framer chunked = HPQ_FRAMER_INIT(FUZZ_FRAME_MAX);
	struct hpq_framer whole = HPQ_FRAMER_INIT(FUZZ_FRAME_MAX);
	struct fuzz_chunker ch;
	const uint8_t *piece, *p, *q;
	size_t n, plen, qlen;
	int r = 0, rw;

	fuzz_chunker_init(&ch, data, size);
	rw = hpq_framer_feed(&whole, ch.data, ch.len);

	while (r >= 0 && fuzz_chunker_next(&ch, &piece, &n)) {
		r = hpq_framer_feed(&chunked, piece, n);
		while (r >= 0 && (r = hpq_framer_next(&chunked, &p, &plen)) == 1) {
			/* The reference framer must hold the same frame next. */
			if (hpq_framer_next(&whole, &q, &qlen) != 1 || qlen != plen ||
			    memcmp(p, q, plen) != 0)
				abort();
			check_message(p, plen);
		}
	}
	/* Both reach the same end: the same error, or the same leftover. */
	if (rw == 0)
		rw = hpq_framer_next(&whole, &q, &qlen);
	if (r < 0) {
		if (rw != r)
			abort();
	} else if (rw != 0 || hpq_framer_pending(&chunked) != hpq_framer_pending(&whole)) {
		abort();
	}
	/* Memory stays bounded by one frame plus one piece. */
	if (chunked.cap > 2 * (FUZZ_FRAME_MAX + HPQ_FRAME_HEADER + 65536))
		abort();

	hpq_framer_release(&chunked);
	hpq_framer_release(&whole);
	return 0;
}
