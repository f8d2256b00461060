/*
 * fuzz.h: the input convention shared by the stream fuzz targets, so one
 * seed corpus serves all of them. An input is an 8-byte chunk plan
 * followed by the byte stream a peer would send (frames). The plan seeds
 * a tiny PRNG that cuts the stream into the pieces read() would have
 * returned: mostly small pieces (1..16 bytes, to split headers and
 * fields), sometimes large ones. The fuzzer mutates plan and stream
 * independently, so the cut points change without breaking the frames.
 */
#ifndef HPQ_FUZZ_H
#define HPQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_PLAN_BYTES 8

struct fuzz_chunker {
	const uint8_t *data;
	size_t len;
	uint64_t state;
};

static inline void fuzz_chunker_init(struct fuzz_chunker *ch, const uint8_t *data, size_t len)
{
	ch->state = 0x9e3779b97f4a7c15ull;
	if (len >= FUZZ_PLAN_BYTES) {
		uint64_t seed;

		memcpy(&seed, data, sizeof(seed));
		ch->state ^= seed;
		data += FUZZ_PLAN_BYTES;
		len -= FUZZ_PLAN_BYTES;
	}
	ch->data = data;
	ch->len = len;
}

/* Returns 1 and the next piece of the stream, or 0 at its end. */
static inline int fuzz_chunker_next(struct fuzz_chunker *ch, const uint8_t **ret_p,
				    size_t *ret_n)
{
	uint64_t x;
	size_t n;

	if (ch->len == 0)
		return 0;
	/* xorshift64* */
	x = ch->state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	ch->state = x;
	x *= 0x2545f4914f6cdd1dull;
	n = (x >> 60) < 12 ? 1 + (size_t)(x % 16) : 1 + (size_t)(x % 65536);
	if (n > ch->len)
		n = ch->len;
	*ret_p = ch->data;
	*ret_n = n;
	ch->data += n;
	ch->len -= n;
	return 1;
}

#endif
