/*
 * msg.c: packing and unpacking of Envelopes (msg.h) and the conversion
 * between the wire resource vector and struct hpq_res. Decoding is the
 * first thing that touches bytes from a peer, so it accepts nothing that
 * the rest of the program would have to second-guess: a payload that does
 * not unpack, or an Envelope without a body, is NULL.
 */
#include <stdint.h>
#include <stdlib.h>

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

Hpq__Envelope *hpq_msg_decode(const uint8_t *payload, size_t len)
{
	static const uint8_t empty[1];
	Hpq__Envelope *env;

	/* protobuf-c wants a valid pointer even for zero bytes. */
	env = hpq__envelope__unpack(NULL, len, len ? payload : empty);
	if (!env)
		return NULL;
	if (env->body_case == HPQ__ENVELOPE__BODY__NOT_SET) {
		hpq__envelope__free_unpacked(env, NULL);
		return NULL;
	}
	return env;
}

void hpq_msg_free(Hpq__Envelope *env)
{
	if (env)
		hpq__envelope__free_unpacked(env, NULL);
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
