/*
 * msg.c: packing and unpacking of Envelopes (msg.h) and the conversion
 * between the wire resource vector and struct hpq_res. Decoding is the
 * first thing that touches bytes from a peer, so it accepts nothing that
 * the rest of the program would have to second-guess: a payload that does
 * not unpack, an Envelope without a body, or one carrying the invalid
 * field number 0 anywhere, is NULL.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

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
 * took to read. hpq_msg_arena_reset starts again at the first block.
 */
#define ARENA_BLOCK (8u << 20)
#define ARENA_HUGE (2u << 20)

static struct {
	uint8_t **blocks;            /* every block mapped, in order of use */
	size_t nblocks, cur;         /* blocks[cur] is being carved */
	size_t used;                 /* of blocks[cur] */
} arena;

/* n bytes, zero, aligned to huge pages and asking for them: where the
 * kernel gives them, filling the memory faults once per 2 MiB instead of
 * once per 4 KiB (on a virtual machine, faults were most of the cost). */
static void *arena_map(size_t n)
{
	uint8_t *b = mmap(NULL, n + ARENA_HUGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (b == MAP_FAILED)
		hpq_fatal("out of memory");
	b = (uint8_t *)(((uintptr_t)b + ARENA_HUGE - 1) & ~(uintptr_t)(ARENA_HUGE - 1));
	madvise(b, n, MADV_HUGEPAGE);
	return b;
}

static void *arena_alloc(void *data, size_t n)
{
	void *p;

	(void)data;
	n = (n + 15) & ~(size_t)15;
	if (n > ARENA_BLOCK / 4)
		return arena_map(n); /* left to the process's exit, like the blocks */
	if (!arena.nblocks || arena.used + n > ARENA_BLOCK) {
		if (arena.nblocks && arena.cur + 1 < arena.nblocks) {
			arena.cur++;
		} else {
			arena.blocks = xreallocarray(arena.blocks, arena.nblocks + 1,
						     sizeof(*arena.blocks));
			arena.blocks[arena.nblocks] = arena_map(ARENA_BLOCK);
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
