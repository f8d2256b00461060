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

#include <stddef.h>
#include <stdint.h>

#include "hpq.pb-c.h"
#include "res.h"

/* Returns a malloc'd buffer holding header + payload and sets *ret_len. */
uint8_t *hpq_msg_encode(const Hpq__Envelope *env, size_t *ret_len);

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
