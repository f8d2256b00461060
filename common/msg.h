/*
 * msg.h: Envelope helpers shared by the three programs, on top of the
 * protobuf-c code generated from proto/hpq.proto.
 *
 * hpq_msg_encode() packs an Envelope into one malloc'd frame (header
 * included) ready to write. hpq_msg_decode() unpacks one frame payload;
 * it returns NULL for anything malformed, including an Envelope whose
 * body is not set, and never aborts on bad input.
 */
#ifndef HPQ_MSG_H
#define HPQ_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hpq.pb-c.h"
#include "res.h"

/* Returns a malloc'd buffer holding header + payload and sets *ret_len. */
uint8_t *hpq_msg_encode(const Hpq__Envelope *env, size_t *ret_len);

/*
 * The values of one repeated message field of an Envelope's body, each
 * packed as it comes (tag, length, message) into one buffer, for a reply
 * too long to build whole first: protobuf-c's hpq_msg_encode measures
 * every value in one walk of its fields and packs it in another, where
 * hpq_msg_values_add packs it in one. hpq_msg_encode_values then frames
 * the Envelope with these values appended to its body.
 */
struct hpq_msg_values {
	uint32_t field;              /* the body's field number they are values of */
	uint8_t *buf;
	size_t len, cap;
	size_t *at;                  /* where each value starts in buf */
	size_t n, cap_at;
};

/* Packs m as the next value; returns the bytes it takes (tag included). */
size_t hpq_msg_values_add(struct hpq_msg_values *v, const ProtobufCMessage *m);
/* Forgets the last value, or the first n. */
void hpq_msg_values_drop_last(struct hpq_msg_values *v);
void hpq_msg_values_drop_first(struct hpq_msg_values *v, size_t n);
void hpq_msg_values_release(struct hpq_msg_values *v);
/* hpq_msg_encode, with the first n values appended to the body's fields,
 * in their order or, with reverse, last first. The body's own field of
 * that number must be empty. */
uint8_t *hpq_msg_encode_values(const Hpq__Envelope *env, const struct hpq_msg_values *v,
			       size_t n, bool reverse, size_t *ret_len);

/* Unpacks a payload; NULL if malformed. Free with hpq_msg_free(). */
Hpq__Envelope *hpq_msg_decode(const uint8_t *payload, size_t len);
/* From now on, what this process decodes is allocated from large blocks
 * that are freed only at its exit, and hpq_msg_free frees nothing: for a
 * short-lived process that reads one long reply (hpq list). */
void hpq_msg_use_arena(void);
/* Forgets everything decoded so far and reuses the arena's memory for what
 * comes next: a reader that prints a long reply frame by frame, and keeps
 * nothing of a frame once printed, touches fresh memory once. */
void hpq_msg_arena_reset(void);
void hpq_msg_free(Hpq__Envelope *env);

/* The oneof case's name ("submit", "hello", ...), for logs and errors. */
const char *hpq_msg_name(const Hpq__Envelope *env);

/* Conversions between the wire vector and struct hpq_res. */
struct hpq_res hpq_res_from_pb(const Hpq__Resources *pb);
void hpq_res_to_pb(struct hpq_res r, Hpq__Resources *pb); /* pb must be initialised */

#endif
