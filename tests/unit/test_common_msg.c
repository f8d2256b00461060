/*
 * test_common_msg.c: Envelope encoding and decoding. A round trip keeps
 * every field; anything malformed, and an Envelope with no body, decodes
 * to NULL instead of crashing or half-filling a message. Values packed
 * one by one (hpq_msg_values) make the same message as packed whole. The
 * arena that hpq list decodes into reuses its memory after a reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "frame.h"
#include "hpq.h"
#include "msg.h"

static void test_roundtrip(void **state)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *out;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	char *argv[] = {"python", "train.py", "--lr=3e-4"};
	struct hpq_framer f = HPQ_FRAMER_INIT(HPQ_FRAME_MAX);
	const uint8_t *p;
	uint8_t *buf;
	size_t len, plen;

	hpq_res_to_pb((struct hpq_res){8, 64, 512 * 1024}, &res);
	spec.name = "llm";
	spec.team = "ml";
	spec.per_node = &res;
	spec.nodes = 2;
	spec.n_argv = 3;
	spec.argv = argv;
	spec.time_limit_s = 3600;
	sub.spec = &spec;
	env.id = 42;
	env.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	env.submit = &sub;

	buf = hpq_msg_encode(&env, &len);
	assert_non_null(buf);
	assert_true(len > HPQ_FRAME_HEADER);
	/* The header states the payload length. */
	assert_int_equal(hpq_framer_feed(&f, buf, len), 0);
	assert_int_equal(hpq_framer_next(&f, &p, &plen), 1);
	assert_int_equal(plen, len - HPQ_FRAME_HEADER);

	out = hpq_msg_decode(p, plen);
	assert_non_null(out);
	assert_int_equal(out->id, 42);
	assert_int_equal(out->body_case, HPQ__ENVELOPE__BODY_SUBMIT);
	assert_string_equal(hpq_msg_name(out), "submit");
	assert_string_equal(out->submit->spec->name, "llm");
	assert_string_equal(out->submit->spec->team, "ml");
	assert_int_equal(out->submit->spec->nodes, 2);
	assert_int_equal(out->submit->spec->time_limit_s, 3600);
	assert_int_equal(out->submit->spec->n_argv, 3);
	assert_string_equal(out->submit->spec->argv[2], "--lr=3e-4");
	assert_true(hpq_res_eq(hpq_res_from_pb(out->submit->spec->per_node),
			       (struct hpq_res){8, 64, 512 * 1024}));
	hpq_msg_free(out);
	hpq_framer_release(&f);
	free(buf);
}

/* Decodes a frame made by hpq_msg_encode_values: a list_reply with ids. */
static Hpq__Envelope *values_decode(const uint8_t *buf, size_t len)
{
	Hpq__Envelope *out;

	assert_true(len > HPQ_FRAME_HEADER);
	assert_int_equal(((size_t)buf[0] << 24 | (size_t)buf[1] << 16 | (size_t)buf[2] << 8 | buf[3]),
			 len - HPQ_FRAME_HEADER);
	out = hpq_msg_decode(buf + HPQ_FRAME_HEADER, len - HPQ_FRAME_HEADER);
	assert_non_null(out);
	assert_int_equal(out->body_case, HPQ__ENVELOPE__BODY_LIST_REPLY);
	return out;
}

/*
 * Values packed one by one and appended to a body decode as the same
 * message packed whole, in either order, with each length's varint of
 * one, two or three bytes (a value packed in the room of two is moved
 * either way), after values were dropped from either end.
 */
static void test_values(void **state)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *out;
	Hpq__ListReply rep = HPQ__LIST_REPLY__INIT;
	Hpq__Task t[4], *whole[3];
	struct hpq_msg_values v = { .field = 1 };  /* ListReply.tasks */
	static char longname[20000], midname[200];
	const char *names[] = { "a", longname, midname, "d" };
	uint8_t *buf, *ref;
	size_t len, ref_len, sz;

	(void)state;
	/* Nothing yet (a list that matched nothing): a frame, and nothing to drop. */
	rep.in_order = true;
	env.body_case = HPQ__ENVELOPE__BODY_LIST_REPLY;
	env.list_reply = &rep;
	hpq_msg_values_drop_first(&v, 0);
	buf = hpq_msg_encode_values(&env, &v, 0, true, &len);
	out = values_decode(buf, len);
	assert_int_equal(out->list_reply->n_tasks, 0);
	assert_true(out->list_reply->in_order);
	hpq_msg_free(out);
	free(buf);

	memset(longname, 'x', sizeof(longname) - 1);
	memset(midname, 'm', sizeof(midname) - 1);
	for (int i = 0; i < 4; i++) {
		hpq__task__init(&t[i]);
		t[i].id = (uint64_t)i + 1;
		t[i].name = (char *)names[i];
		sz = hpq_msg_values_add(&v, &t[i].base);
		assert_int_equal(sz, hpq__task__get_packed_size(&t[i]) +
				 (i == 0 || i == 3 ? 2 : i == 1 ? 4 : 3));
	}
	hpq_msg_values_drop_last(&v);
	assert_int_equal(v.n, 3);

	rep.more = true;
	env.id = 7;
	buf = hpq_msg_encode_values(&env, &v, 3, true, &len);
	/* The same reply packed whole by protobuf-c: as long. */
	whole[0] = &t[2];
	whole[1] = &t[1];
	whole[2] = &t[0];
	rep.n_tasks = 3;
	rep.tasks = whole;
	ref = hpq_msg_encode(&env, &ref_len);
	rep.n_tasks = 0;
	rep.tasks = NULL;
	assert_int_equal(len, ref_len);
	out = values_decode(buf, len);
	assert_int_equal(out->id, 7);
	assert_true(out->list_reply->more);
	assert_true(out->list_reply->in_order);
	assert_int_equal(out->list_reply->n_tasks, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(out->list_reply->tasks[i]->id, 3 - i);
		assert_string_equal(out->list_reply->tasks[i]->name, names[2 - i]);
	}
	hpq_msg_free(out);
	free(buf);
	free(ref);

	/* In order, the first two only. */
	buf = hpq_msg_encode_values(&env, &v, 2, false, &len);
	out = values_decode(buf, len);
	assert_int_equal(out->list_reply->n_tasks, 2);
	assert_int_equal(out->list_reply->tasks[0]->id, 1);
	assert_string_equal(out->list_reply->tasks[1]->name, longname);
	hpq_msg_free(out);
	free(buf);

	/* The first two sent: the third is what is left, and more can follow it. */
	hpq_msg_values_drop_first(&v, 2);
	assert_int_equal(v.n, 1);
	assert_int_equal(v.at[0], 0);
	hpq_msg_values_add(&v, &t[3].base);
	rep.more = false;
	buf = hpq_msg_encode_values(&env, &v, 2, false, &len);
	out = values_decode(buf, len);
	assert_false(out->list_reply->more);
	assert_int_equal(out->list_reply->n_tasks, 2);
	assert_string_equal(out->list_reply->tasks[0]->name, midname);
	assert_string_equal(out->list_reply->tasks[1]->name, "d");
	hpq_msg_free(out);
	free(buf);

	/* None: the body alone. */
	buf = hpq_msg_encode_values(&env, &v, 0, false, &len);
	out = values_decode(buf, len);
	assert_int_equal(out->list_reply->n_tasks, 0);
	hpq_msg_free(out);
	free(buf);
	hpq_msg_values_release(&v);
	assert_int_equal(v.n, 0);
	assert_int_equal(v.field, 1);
}

static void test_empty_body_message(void **state)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *out;
	Hpq__Ok ok = HPQ__OK__INIT;
	uint8_t *buf;
	size_t len;

	/* Ok has no fields, but the body case is still on the wire. */
	env.id = 7;
	env.body_case = HPQ__ENVELOPE__BODY_OK;
	env.ok = &ok;
	buf = hpq_msg_encode(&env, &len);
	out = hpq_msg_decode(buf + HPQ_FRAME_HEADER, len - HPQ_FRAME_HEADER);
	assert_non_null(out);
	assert_int_equal(out->body_case, HPQ__ENVELOPE__BODY_OK);
	assert_string_equal(hpq_msg_name(out), "ok");
	hpq_msg_free(out);
	free(buf);
}

static void test_not_set(void **state)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	uint8_t *buf;
	size_t len;

	env.id = 9;
	buf = hpq_msg_encode(&env, &len);
	assert_null(hpq_msg_decode(buf + HPQ_FRAME_HEADER, len - HPQ_FRAME_HEADER));
	assert_null(hpq_msg_decode(NULL, 0));
	assert_string_equal(hpq_msg_name(&env), "none");
	assert_string_equal(hpq_msg_name(NULL), "none");
	free(buf);
}

static void test_unknown_body_field(void **state)
{
	/* id = 1, then field 99 (varint) = 1: a body this version does not know. */
	static const uint8_t unknown[] = {0x08, 0x01, 0x98, 0x06, 0x01};

	assert_null(hpq_msg_decode(unknown, sizeof(unknown)));
}

static void test_field_zero(void **state)
{
	/* ok {} plus an over-long tag 0 (80 00) = 0 inside the Envelope... */
	static const uint8_t top[] = {0x08, 0x01, 0x32, 0x00, 0x80, 0x00, 0x00};
	/* ...and inside a nested message: submit { spec { per_node { 80 00 00 } } } */
	static const uint8_t nested[] = {0x52, 0x07, 0x0a, 0x05, 0x32, 0x03, 0x80, 0x00, 0x00};
	/* The same nesting with a valid unknown field 15 is fine (newer peers). */
	static const uint8_t newer[] = {0x52, 0x06, 0x0a, 0x04, 0x32, 0x02, 0x78, 0x01};
	Hpq__Envelope *e;

	assert_null(hpq_msg_decode(top, sizeof(top)));
	assert_null(hpq_msg_decode(nested, sizeof(nested)));
	e = hpq_msg_decode(newer, sizeof(newer));
	assert_non_null(e);
	assert_int_equal(e->body_case, HPQ__ENVELOPE__BODY_SUBMIT);
	hpq_msg_free(e);
}

static void test_garbage(void **state)
{
	static const uint8_t truncated_len[] = {0x12, 0x05, 0x08}; /* hello, 5 bytes, only 1 */
	static const uint8_t bad_wire_type[] = {0x0f, 0x00};
	static const uint8_t huge_len[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f};
	static const uint8_t bad_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
					     0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t junk[256];
	unsigned seed = 1;

	assert_null(hpq_msg_decode(truncated_len, sizeof(truncated_len)));
	assert_null(hpq_msg_decode(bad_wire_type, sizeof(bad_wire_type)));
	assert_null(hpq_msg_decode(huge_len, sizeof(huge_len)));
	assert_null(hpq_msg_decode(bad_varint, sizeof(bad_varint)));

	/* Random bytes: whatever comes back must be a message with a body. */
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof(junk));
		Hpq__Envelope *e;

		for (size_t i = 0; i < n; i++)
			junk[i] = (uint8_t)rand_r(&seed);
		e = hpq_msg_decode(junk, n);
		if (e) {
			assert_int_not_equal(e->body_case, HPQ__ENVELOPE__BODY__NOT_SET);
			assert_string_not_equal(hpq_msg_name(e), "none");
			hpq_msg_free(e);
		}
	}
}

static void test_names(void **state)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;

	env.body_case = HPQ__ENVELOPE__BODY_HELLO_REPLY;
	assert_string_equal(hpq_msg_name(&env), "hello_reply");
	env.body_case = HPQ__ENVELOPE__BODY_TASK_UPDATE;
	assert_string_equal(hpq_msg_name(&env), "task_update");
	env.body_case = (Hpq__Envelope__BodyCase)9999;
	assert_string_equal(hpq_msg_name(&env), "unknown");
}

/* A ListReply of n tasks named "tN", encoded (payload only). */
static uint8_t *list_payload(size_t n, uint64_t first, size_t *ret_len)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ListReply lr = HPQ__LIST_REPLY__INIT;
	Hpq__Task *tasks = calloc(n, sizeof(*tasks)), **ptrs = calloc(n, sizeof(*ptrs));
	char (*names)[24] = calloc(n, sizeof(*names));
	uint8_t *buf, *payload;
	size_t len;

	for (size_t i = 0; i < n; i++) {
		hpq__task__init(&tasks[i]);
		tasks[i].id = first + i;
		snprintf(names[i], sizeof(names[i]), "t%zu", first + i);
		tasks[i].name = names[i];
		ptrs[i] = &tasks[i];
	}
	lr.n_tasks = n;
	lr.tasks = ptrs;
	env.id = 7;
	env.body_case = HPQ__ENVELOPE__BODY_LIST_REPLY;
	env.list_reply = &lr;
	buf = hpq_msg_encode(&env, &len);
	payload = malloc(len - HPQ_FRAME_HEADER);
	memcpy(payload, buf + HPQ_FRAME_HEADER, len - HPQ_FRAME_HEADER);
	*ret_len = len - HPQ_FRAME_HEADER;
	free(buf);
	free(tasks);
	free(ptrs);
	free(names);
	return payload;
}

/* The arena (hpq list's): what is decoded after a reset reuses the memory
 * of what came before, across more than one of its blocks, and reads
 * right. It cannot be turned off: this test runs last. */
static void test_arena_reset(void **state)
{
	size_t alen, blen;
	uint8_t *a = list_payload(40000, 1, &alen), *b = list_payload(1000, 90000, &blen);
	Hpq__Envelope *x, *y, *z;
	char name[24];

	(void)state;
	hpq_msg_use_arena();
	x = hpq_msg_decode(a, alen);
	assert_non_null(x);
	assert_int_equal(x->list_reply->n_tasks, 40000);
	assert_string_equal(x->list_reply->tasks[39999]->name, "t40000");
	hpq_msg_arena_reset();
	y = hpq_msg_decode(b, blen);
	assert_non_null(y);
	assert_ptr_equal(y, x);      /* the same memory, from its start */
	for (size_t i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "t%zu", 90000 + i);
		assert_int_equal(y->list_reply->tasks[i]->id, 90000 + i);
		assert_string_equal(y->list_reply->tasks[i]->name, name);
		assert_int_equal(y->list_reply->tasks[i]->exit_code, 0);
	}
	hpq_msg_arena_reset();
	z = hpq_msg_decode(a, alen);  /* past the first block again */
	assert_ptr_equal(z, x);
	assert_int_equal(z->list_reply->tasks[39999]->id, 40000);
	assert_string_equal(z->list_reply->tasks[39999]->name, "t40000");
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_empty_body_message),
		cmocka_unit_test(test_not_set),
		cmocka_unit_test(test_unknown_body_field),
		cmocka_unit_test(test_field_zero),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_arena_reset), /* last: the arena stays on */
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
