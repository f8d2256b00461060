/*
 * test_common_res.c: resource vector arithmetic, "fits", the text form,
 * and the conversion to and from the wire message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "msg.h"
#include "res.h"

static void test_arith(void **state)
{
	struct hpq_res a = {8, 64, 512 * 1024}, b = {2, 80, 1024};
	struct hpq_res d = hpq_res_sub(a, b), f = hpq_res_sub_floor(a, b);

	assert_true(hpq_res_eq(hpq_res_add(a, b), (struct hpq_res){10, 144, 512 * 1024 + 1024}));
	assert_true(hpq_res_eq(d, (struct hpq_res){6, -16, 511 * 1024}));
	assert_true(hpq_res_eq(f, (struct hpq_res){6, 0, 511 * 1024}));
	assert_true(hpq_res_eq(hpq_res_scale(b, 3), (struct hpq_res){6, 240, 3072}));
	assert_true(hpq_res_eq(hpq_res_min(a, b), (struct hpq_res){2, 64, 1024}));
	assert_true(hpq_res_eq(hpq_res_max(a, b), (struct hpq_res){8, 80, 512 * 1024}));
	assert_true(hpq_res_is_zero(HPQ_RES_ZERO));
	assert_false(hpq_res_is_zero((struct hpq_res){0, 0, 1}));
}

static void test_fits(void **state)
{
	struct hpq_res cap = {8, 64, 1024};

	assert_true(hpq_res_fits(cap, cap));
	assert_true(hpq_res_fits(HPQ_RES_ZERO, cap));
	assert_false(hpq_res_fits((struct hpq_res){9, 1, 1}, cap));
	assert_false(hpq_res_fits((struct hpq_res){1, 65, 1}, cap));
	assert_false(hpq_res_fits((struct hpq_res){1, 1, 1025}, cap));
}

static void test_format(void **state)
{
	char buf[64];

	assert_string_equal(hpq_res_format((struct hpq_res){8, 64, 512 * 1024}, buf, sizeof(buf)),
			    "8 gpus, 64 cpus, 512G");
	assert_string_equal(hpq_res_format((struct hpq_res){1, 1, 1536}, buf, sizeof(buf)),
			    "1 gpu, 1 cpu, 1536M");
	assert_string_equal(hpq_res_format(HPQ_RES_ZERO, buf, sizeof(buf)),
			    "0 gpus, 0 cpus, 0M");
	assert_string_equal(hpq_res_format((struct hpq_res){-1, -2, -2048}, buf, sizeof(buf)),
			    "-1 gpus, -2 cpus, -2G");
	assert_string_equal(hpq_res_format((struct hpq_res){8, 64, 1024}, buf, 8), "8 gpus,");
}

static void test_pb(void **state)
{
	Hpq__Resources pb = HPQ__RESOURCES__INIT;
	struct hpq_res r;

	hpq_res_to_pb((struct hpq_res){4, 32, 65536}, &pb);
	assert_int_equal(pb.gpus, 4);
	assert_int_equal(pb.cpus, 32);
	assert_int_equal(pb.mem, 65536);
	r = hpq_res_from_pb(&pb);
	assert_true(hpq_res_eq(r, (struct hpq_res){4, 32, 65536}));
	assert_true(hpq_res_eq(hpq_res_from_pb(NULL), HPQ_RES_ZERO));

	/* Out-of-range values clamp instead of wrapping. */
	hpq_res_to_pb((struct hpq_res){-1, INT64_MAX, -5}, &pb);
	assert_int_equal(pb.gpus, 0);
	assert_int_equal(pb.cpus, UINT32_MAX);
	assert_int_equal(pb.mem, 0);
	pb.mem = UINT64_MAX;
	assert_true(hpq_res_from_pb(&pb).mem == INT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arith),
		cmocka_unit_test(test_fits),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_pb),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
