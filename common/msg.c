/*
 * msg.c: packing and unpacking of Envelopes (msg.h), whole or with the
 * values of a long reply packed one by one, and the conversion
 * between the wire resource vector and struct hpq_res. Decoding is the
 * first thing that touches bytes from a peer, so it accepts nothing that
 * the rest of the program would have to second-guess: a payload that does
 * not unpack, an Envelope without a body, or one carrying the invalid
 * field number 0 anywhere, is NULL.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "msg.h"
#include "xalloc.h"

uint8_t *hpq_msg_encode(const Hpq__Envelope *env, size_t *ret_len)
{
	size_t size = hpq__envelope__get_packed_size(env);
	uint8_t *buf;

	if (size > UINT32_MAX)
		hpq_fatal("message of %zu bytes cannot be framed", size);
	buf = xmalloc(HPQ_FRAME_HEADER + size);
	hpq_frame_header(buf, (uint32_t)size);
	if (hpq__envelope__pack(env, buf + HPQ_FRAME_HEADER) != size)
		hpq_fatal("protobuf-c packed a different size than it measured");
	*ret_len = HPQ_FRAME_HEADER + size;
	return buf;
}

/* A varint: 7 bits a byte, least significant first. */
static size_t varint_put(uint8_t *p, uint64_t x)
{
	size_t n = 0;

	while (x >= 0x80) {
		p[n++] = (uint8_t)(x | 0x80);
		x >>= 7;
	}
	p[n++] = (uint8_t)x;
	return n;
}

static size_t varint_size(uint64_t x)
{
	uint8_t scratch[10];

	return varint_put(scratch, x);
}

/* A length-delimited field's key: its number and wire type 2. */
static uint64_t key_delimited(uint32_t field)
{
	return (uint64_t)field << 3 | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
}

/* The most a value's key and length take: two varints of a 32-bit number. */
#define VALUE_HEAD_MAX 10

static void values_reserve(struct hpq_msg_values *v, size_t n)
{
	if (v->len + n <= v->cap)
		return;
	v->cap = v->cap ? 2 * v->cap : 65536;
	if (v->cap < v->len + n)
		v->cap = v->len + n;
	v->buf = xrealloc(v->buf, v->cap);
}

/* protobuf-c packs into this, piece by piece. */
struct values_buffer {
	ProtobufCBuffer base;
	struct hpq_msg_values *v;
};

static void values_append(ProtobufCBuffer *b, size_t n, const uint8_t *data)
{
	struct hpq_msg_values *v = ((struct values_buffer *)b)->v;

	values_reserve(v, n);
	memcpy(v->buf + v->len, data, n);
	v->len += n;
}

size_t hpq_msg_values_add(struct hpq_msg_values *v, const ProtobufCMessage *m)
{
	struct values_buffer b = { { values_append }, v };
	size_t start = v->len, guess, body, head;
	uint8_t h[VALUE_HEAD_MAX];

	if (v->n == v->cap_at) {
		v->cap_at = v->cap_at ? 2 * v->cap_at : 1024;
		v->at = xreallocarray(v->at, v->cap_at, sizeof(*v->at));
	}
	/* Packed after room for its head, which its length decides: the room
	 * of a length of two bytes (128 to 16,383: most values), else moved. */
	guess = varint_size(key_delimited(v->field)) + 2;
	values_reserve(v, guess);
	v->len += guess;
	body = protobuf_c_message_pack_to_buffer(m, &b.base);
	head = varint_put(h, key_delimited(v->field));
	head += varint_put(h + head, body);
	if (head != guess) {
		values_reserve(v, VALUE_HEAD_MAX);
		memmove(v->buf + start + head, v->buf + start + guess, body);
	}
	memcpy(v->buf + start, h, head);
	v->len = start + head + body;
	v->at[v->n++] = start;
	return head + body;
}

void hpq_msg_values_drop_last(struct hpq_msg_values *v)
{
	v->len = v->at[--v->n];
}

void hpq_msg_values_drop_first(struct hpq_msg_values *v, size_t n)
{
	size_t cut;

	if (!n)
		return;
	cut = n < v->n ? v->at[n] : v->len;
	memmove(v->buf, v->buf + cut, v->len - cut);
	v->len -= cut;
	for (size_t i = n; i < v->n; i++)
		v->at[i - n] = v->at[i] - cut;
	v->n -= n;
}

void hpq_msg_values_release(struct hpq_msg_values *v)
{
	free(v->buf);
	free(v->at);
	*v = (struct hpq_msg_values){ .field = v->field };
}

static size_t value_end(const struct hpq_msg_values *v, size_t i)
{
	return i + 1 < v->n ? v->at[i + 1] : v->len;
}

/*
 * A protobuf message is its fields in any order, so the body is packed
 * without the values and they follow; the Envelope is packed without its
 * body, which follows as one more field (the oneof's, length-delimited).
 */
uint8_t *hpq_msg_encode_values(const Hpq__Envelope *env, const struct hpq_msg_values *v,
			       size_t n, bool reverse, size_t *ret_len)
{
	const ProtobufCFieldDescriptor *fd =
		protobuf_c_message_descriptor_get_field(&hpq__envelope__descriptor,
							(unsigned)env->body_case);
	const ProtobufCMessage *body;
	Hpq__Envelope bare = *env;
	size_t values = n ? value_end(v, n - 1) : 0, body_len, size, off;
	uint8_t *buf;

	if (!fd || fd->type != PROTOBUF_C_TYPE_MESSAGE || n > v->n)
		hpq_fatal("hpq_msg_encode_values: no body to append values to");
	body = *(const ProtobufCMessage *const *)((const char *)env + fd->offset);
	bare.body_case = HPQ__ENVELOPE__BODY__NOT_SET;
	body_len = protobuf_c_message_get_packed_size(body) + values;
	size = hpq__envelope__get_packed_size(&bare) + varint_size(key_delimited(fd->id)) +
	       varint_size(body_len) + body_len;
	if (size > UINT32_MAX)
		hpq_fatal("message of %zu bytes cannot be framed", size);
	buf = xmalloc(HPQ_FRAME_HEADER + size);
	hpq_frame_header(buf, (uint32_t)size);
	off = HPQ_FRAME_HEADER + hpq__envelope__pack(&bare, buf + HPQ_FRAME_HEADER);
	off += varint_put(buf + off, key_delimited(fd->id));
	off += varint_put(buf + off, body_len);
	off += protobuf_c_message_pack(body, buf + off);
	for (size_t k = 0; k < n; k++) {
		size_t i = reverse ? n - 1 - k : k, len = value_end(v, i) - v->at[i];

		memcpy(buf + off, v->buf + v->at[i], len);
		off += len;
	}
	if (off != HPQ_FRAME_HEADER + size)
		hpq_fatal("protobuf-c packed a different size than it measured");
	*ret_len = off;
	return buf;
}

/* protobuf-c keeps fields it does not know for re-packing, and it takes
 * an over-long encoding of tag 0 (80 00) for one, although field number 0
 * is invalid: re-packed canonically, such a message no longer decodes.
 * Refuse it here, in every nested message, so that whatever decodes can
 * also be sent on. The schema has no recursive messages, so the depth is
 * bounded. */
static bool msg_tags_valid(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (size_t i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return false;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const char *base = (const char *)m;

		if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + fd->quantifier_offset);
			ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)(base +
											fd->offset);

			for (size_t k = 0; k < n; k++)
				if (v[k] && !msg_tags_valid(v[k]))
					return false;
		} else {
			const ProtobufCMessage *sub =
				*(const ProtobufCMessage *const *)(base + fd->offset);

			if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
			    *(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
				continue; /* another member of the oneof is set */
			if (sub && !msg_tags_valid(sub))
				return false;
		}
	}
	return true;
}

/*
 * The arena of hpq_msg_use_arena: decoded messages are carved from large
 * blocks, never freed one by one. A reply of 100,000 tasks is over a
 * million small allocations; one by one, malloc was much of the time it
 * took to read. The blocks are big buffers (xbig_grow, xalloc.h): zeroed,
 * in huge pages. hpq_msg_arena_reset starts again at the first block.
 */
#define ARENA_BLOCK (8u << 20)

static struct {
	uint8_t **blocks;            /* every block mapped, in order of use */
	size_t nblocks, cur;         /* blocks[cur] is being carved */
	size_t used;                 /* of blocks[cur] */
} arena;

static void *arena_alloc(void *data, size_t n)
{
	void *p;

	(void)data;
	n = (n + 15) & ~(size_t)15;
	if (n > ARENA_BLOCK / 4)
		return xbig_grow(NULL, 0, n); /* left to the process's exit, like the blocks */
	if (!arena.nblocks || arena.used + n > ARENA_BLOCK) {
		if (arena.nblocks && arena.cur + 1 < arena.nblocks) {
			arena.cur++;
		} else {
			arena.blocks = xreallocarray(arena.blocks, arena.nblocks + 1,
						     sizeof(*arena.blocks));
			arena.blocks[arena.nblocks] = xbig_grow(NULL, 0, ARENA_BLOCK);
			arena.cur = arena.nblocks++;
		}
		arena.used = 0;
	}
	p = arena.blocks[arena.cur] + arena.used;
	arena.used += n;
	return p;
}

static void arena_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

static ProtobufCAllocator arena_allocator = { arena_alloc, arena_free, NULL };
static ProtobufCAllocator *msg_allocator;

void hpq_msg_use_arena(void)
{
	msg_allocator = &arena_allocator;
}

void hpq_msg_arena_reset(void)
{
	arena.cur = 0;
	arena.used = 0;
}

Hpq__Envelope *hpq_msg_decode(const uint8_t *payload, size_t len)
{
	static const uint8_t empty[1];
	Hpq__Envelope *env;

	/* protobuf-c wants a valid pointer even for zero bytes. */
	env = hpq__envelope__unpack(msg_allocator, len, len ? payload : empty);
	if (!env)
		return NULL;
	if (env->body_case == HPQ__ENVELOPE__BODY__NOT_SET || !msg_tags_valid(&env->base)) {
		hpq__envelope__free_unpacked(env, msg_allocator);
		return NULL;
	}
	return env;
}

void hpq_msg_free(Hpq__Envelope *env)
{
	/* The arena frees nothing: walking a long list's every field to free
	 * nothing cost as much as a tenth of reading it. */
	if (env && msg_allocator != &arena_allocator)
		hpq__envelope__free_unpacked(env, msg_allocator);
}

const char *hpq_msg_name(const Hpq__Envelope *env)
{
	const ProtobufCFieldDescriptor *fd;

	if (!env || env->body_case == HPQ__ENVELOPE__BODY__NOT_SET)
		return "none";
	fd = protobuf_c_message_descriptor_get_field(&hpq__envelope__descriptor,
						     (unsigned)env->body_case);
	return fd ? fd->name : "unknown";
}

struct hpq_res hpq_res_from_pb(const Hpq__Resources *pb)
{
	struct hpq_res r = HPQ_RES_ZERO;

	if (pb) {
		r.gpus = pb->gpus;
		r.cpus = pb->cpus;
		/* mem is uint64 on the wire; anything beyond int64 is nonsense. */
		r.mem = pb->mem > INT64_MAX ? INT64_MAX : (int64_t)pb->mem;
	}
	return r;
}

static uint32_t clamp_u32(int64_t v)
{
	if (v < 0)
		return 0;
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void hpq_res_to_pb(struct hpq_res r, Hpq__Resources *pb)
{
	pb->gpus = clamp_u32(r.gpus);
	pb->cpus = clamp_u32(r.cpus);
	pb->mem = r.mem < 0 ? 0 : (uint64_t)r.mem;
}
