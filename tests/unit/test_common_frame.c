/*
 * test_common_frame.c: the incremental frame decoder must return the same
 * frames however the stream is cut, reject oversized frames from the
 * header alone, and stay broken once broken.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "frame.h"
#include "hpq.h"

struct stream {
	uint8_t *data;
	size_t len;
};

static void stream_add(struct stream *s, const void *payload, uint32_t len)
{
	s->data = realloc(s->data, s->len + HPQ_FRAME_HEADER + len);
	assert_non_null(s->data);
	hpq_frame_header(s->data + s->len, len);
	if (len)
		memcpy(s->data + s->len + HPQ_FRAME_HEADER, payload, len);
	s->len += HPQ_FRAME_HEADER + len;
}

static const char *const payloads[] = {"hello", "", "a somewhat longer payload of bytes", "x", ""};
#define NPAYLOADS (sizeof(payloads) / sizeof(payloads[0]))

static struct stream sample_stream(void)
{
	struct stream s = {NULL, 0};

	for (size_t i = 0; i < NPAYLOADS; i++)
		stream_add(&s, payloads[i], (uint32_t)strlen(payloads[i]));
	return s;
}

/* Drains f, checking frames against payloads starting at *idx. */
static void drain(struct hpq_framer *f, size_t *idx)
{
	const uint8_t *p;
	size_t len;
	int r;

	while ((r = hpq_framer_next(f, &p, &len)) == 1) {
		assert_true(*idx < NPAYLOADS);
		assert_int_equal(len, strlen(payloads[*idx]));
		assert_memory_equal(p, payloads[*idx], len);
		assert_non_null(p);
		(*idx)++;
	}
	assert_int_equal(r, 0);
}

static void test_header(void **state)
{
	uint8_t h[4];

	hpq_frame_header(h, 0x01020304);
	assert_int_equal(h[0], 1);
	assert_int_equal(h[1], 2);
	assert_int_equal(h[2], 3);
	assert_int_equal(h[3], 4);
}

static void test_every_split(void **state)
{
	struct stream s = sample_stream();

	for (size_t cut = 0; cut <= s.len; cut++) {
		struct hpq_framer f = HPQ_FRAMER_INIT(HPQ_FRAME_MAX);
		size_t idx = 0;

		assert_int_equal(hpq_framer_feed(&f, s.data, cut), 0);
		drain(&f, &idx);
		assert_int_equal(hpq_framer_feed(&f, s.data + cut, s.len - cut), 0);
		drain(&f, &idx);
		assert_int_equal(idx, NPAYLOADS);
		assert_int_equal(hpq_framer_pending(&f), 0);
		hpq_framer_release(&f);
	}
	free(s.data);
}

static void test_every_double_split(void **state)
{
	struct stream s = sample_stream();

	for (size_t a = 0; a <= s.len; a++) {
		for (size_t b = a; b <= s.len; b++) {
			struct hpq_framer f;
			size_t idx = 0;

			hpq_framer_init(&f, 64);
			assert_int_equal(hpq_framer_feed(&f, s.data, a), 0);
			drain(&f, &idx);
			assert_int_equal(hpq_framer_feed(&f, s.data + a, b - a), 0);
			drain(&f, &idx);
			assert_int_equal(hpq_framer_feed(&f, s.data + b, s.len - b), 0);
			drain(&f, &idx);
			assert_int_equal(idx, NPAYLOADS);
			hpq_framer_release(&f);
		}
	}
	free(s.data);
}

static void test_byte_at_a_time(void **state)
{
	struct stream s = sample_stream();
	struct hpq_framer f = HPQ_FRAMER_INIT(HPQ_FRAME_MAX);
	size_t idx = 0;

	for (size_t i = 0; i < s.len; i++) {
		assert_int_equal(hpq_framer_feed(&f, s.data + i, 1), 0);
		drain(&f, &idx);
		/* A partial frame is pending, never a whole one. */
		assert_true(hpq_framer_pending(&f) < HPQ_FRAME_HEADER + 64);
	}
	assert_int_equal(idx, NPAYLOADS);
	assert_int_equal(hpq_framer_pending(&f), 0);
	hpq_framer_release(&f);
	free(s.data);
}

static void test_zero_length(void **state)
{
	struct hpq_framer f = HPQ_FRAMER_INIT(16);
	uint8_t h[4];
	const uint8_t *p = NULL;
	size_t len = 99;

	hpq_frame_header(h, 0);
	assert_int_equal(hpq_framer_next(&f, &p, &len), 0);
	assert_int_equal(hpq_framer_feed(&f, h, 4), 0);
	assert_int_equal(hpq_framer_next(&f, &p, &len), 1);
	assert_int_equal(len, 0);
	assert_non_null(p);
	assert_int_equal(hpq_framer_next(&f, &p, &len), 0);
	hpq_framer_release(&f);
}

static void test_oversized_header_alone(void **state)
{
	struct hpq_framer f = HPQ_FRAMER_INIT(100);
	uint8_t h[4], body[10000] = {0};
	const uint8_t *p;
	size_t len;

	hpq_frame_header(h, 101);
	/* Header in two pieces: no verdict until it is complete. */
	assert_int_equal(hpq_framer_feed(&f, h, 2), 0);
	assert_int_equal(hpq_framer_next(&f, &p, &len), 0);
	assert_int_equal(hpq_framer_feed(&f, h + 2, 2), HPQ_ETOOBIG);
	assert_int_equal(hpq_framer_next(&f, &p, &len), HPQ_ETOOBIG);
	/* Sticky: the body is refused and never buffered. */
	assert_int_equal(hpq_framer_feed(&f, body, sizeof(body)), HPQ_ETOOBIG);
	assert_int_equal(hpq_framer_pending(&f), HPQ_FRAME_HEADER);
	assert_true(f.cap < sizeof(body));
	assert_int_equal(hpq_framer_next(&f, &p, &len), HPQ_ETOOBIG);
	hpq_framer_release(&f);
}

static void test_oversized_with_body_in_same_chunk(void **state)
{
	struct hpq_framer f = HPQ_FRAMER_INIT(100);
	uint8_t chunk[4 + 150] = {0};
	const uint8_t *p;
	size_t len;

	hpq_frame_header(chunk, 150);
	assert_int_equal(hpq_framer_feed(&f, chunk, sizeof(chunk)), HPQ_ETOOBIG);
	assert_true(hpq_framer_pending(&f) <= HPQ_FRAME_HEADER);
	assert_int_equal(hpq_framer_next(&f, &p, &len), HPQ_ETOOBIG);
	hpq_framer_release(&f);
}

static void test_oversized_after_good_frame(void **state)
{
	struct stream s = {NULL, 0};
	struct hpq_framer f = HPQ_FRAMER_INIT(8);
	uint8_t h[4];
	const uint8_t *p;
	size_t len;

	stream_add(&s, "ok", 2);
	hpq_frame_header(h, 9);
	s.data = realloc(s.data, s.len + 4);
	memcpy(s.data + s.len, h, 4);
	s.len += 4;
	assert_int_equal(hpq_framer_feed(&f, s.data, s.len), 0);
	assert_int_equal(hpq_framer_next(&f, &p, &len), 1);
	assert_int_equal(len, 2);
	assert_memory_equal(p, "ok", 2);
	assert_int_equal(hpq_framer_next(&f, &p, &len), HPQ_ETOOBIG);
	assert_int_equal(hpq_framer_next(&f, &p, &len), HPQ_ETOOBIG);
	assert_int_equal(hpq_framer_feed(&f, "abc", 3), HPQ_ETOOBIG);
	hpq_framer_release(&f);
	free(s.data);
}

static void test_max_exactly(void **state)
{
	const uint32_t max = HPQ_FRAME_MAX;
	uint8_t *big = malloc(HPQ_FRAME_HEADER + (size_t)max);
	struct hpq_framer f = HPQ_FRAMER_INIT(max);
	const uint8_t *p;
	size_t len, fed = 0;

	assert_non_null(big);
	hpq_frame_header(big, max);
	for (size_t i = 0; i < max; i++)
		big[HPQ_FRAME_HEADER + i] = (uint8_t)(i * 7 + 3);
	/* In uneven chunks, checking nothing comes out early. */
	while (fed < HPQ_FRAME_HEADER + (size_t)max) {
		size_t n = 65521;

		if (n > HPQ_FRAME_HEADER + (size_t)max - fed)
			n = HPQ_FRAME_HEADER + (size_t)max - fed;
		assert_int_equal(hpq_framer_next(&f, &p, &len), 0);
		assert_int_equal(hpq_framer_feed(&f, big + fed, n), 0);
		fed += n;
	}
	assert_int_equal(hpq_framer_next(&f, &p, &len), 1);
	assert_int_equal(len, max);
	assert_memory_equal(p, big + HPQ_FRAME_HEADER, max);
	/* Drained: the buffer is given back, not kept for the next frame. */
	assert_int_equal(hpq_framer_next(&f, &p, &len), 0);
	assert_null(f.buf);
	assert_int_equal(f.cap, 0);
	hpq_framer_release(&f);
	free(big);
}

static void test_bounded_memory_over_long_stream(void **state)
{
	struct hpq_framer f = HPQ_FRAMER_INIT(1024);
	uint8_t frame[4 + 100];
	const uint8_t *p;
	size_t len, got = 0;

	hpq_frame_header(frame, 100);
	memset(frame + 4, 'z', 100);
	/* 10000 frames fed in pieces of 37 bytes, so frames straddle feeds. */
	for (size_t i = 0; i < 10000 * sizeof(frame); i += 37) {
		size_t n = 37, pos = i % sizeof(frame);
		uint8_t piece[37];

		if (n > 10000 * sizeof(frame) - i)
			n = 10000 * sizeof(frame) - i;
		for (size_t k = 0; k < n; k++)
			piece[k] = frame[(pos + k) % sizeof(frame)];
		assert_int_equal(hpq_framer_feed(&f, piece, n), 0);
		while (hpq_framer_next(&f, &p, &len) == 1) {
			assert_int_equal(len, 100);
			got++;
		}
		assert_true(f.cap <= 4096);
	}
	assert_int_equal(got, 10000);
	hpq_framer_release(&f);
}

static void test_release_and_reuse(void **state)
{
	struct hpq_framer f = HPQ_FRAMER_INIT(4);
	uint8_t h[4];
	const uint8_t *p;
	size_t len;

	hpq_frame_header(h, 5);
	assert_int_equal(hpq_framer_feed(&f, h, 4), HPQ_ETOOBIG);
	hpq_framer_release(&f);
	hpq_framer_init(&f, 8);
	assert_int_equal(hpq_framer_feed(&f, h, 4), 0);
	assert_int_equal(hpq_framer_feed(&f, "12345", 5), 0);
	assert_int_equal(hpq_framer_next(&f, &p, &len), 1);
	assert_int_equal(len, 5);
	hpq_framer_release(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_every_double_split),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_oversized_header_alone),
		cmocka_unit_test(test_oversized_with_body_in_same_chunk),
		cmocka_unit_test(test_oversized_after_good_frame),
		cmocka_unit_test(test_max_exactly),
		cmocka_unit_test(test_bounded_memory_over_long_stream),
		cmocka_unit_test(test_release_and_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
