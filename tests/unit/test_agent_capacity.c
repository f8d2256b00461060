/*
 * test_agent_capacity.c: the agent reads its memory from /proc/meminfo
 * and counts GPUs in `nvidia-smi -L` output. Samples from real machines
 * (including MIG lines, which are not GPUs of their own) must give the
 * right numbers, and anything malformed must be refused, not guessed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "capacity.h"
#include "error.h"

static const char meminfo_sample[] =
	"MemTotal:       263859560 kB\n"
	"MemFree:        189271860 kB\n"
	"MemAvailable:   250130308 kB\n"
	"Buffers:          1261604 kB\n"
	"Cached:          58003372 kB\n"
	"SwapTotal:              0 kB\n";

static void meminfo_total_in_mib(void **state)
{
	uint64_t mib = 0;

	assert_int_equal(capacity_parse_meminfo(meminfo_sample, &mib), 0);
	assert_int_equal(mib, 263859560ull / 1024);
}

static void meminfo_not_first_line(void **state)
{
	uint64_t mib = 0;

	assert_int_equal(capacity_parse_meminfo("Foo: 1 kB\nMemTotal:\t2048 kB\n", &mib), 0);
	assert_int_equal(mib, 2);
}

static void meminfo_malformed(void **state)
{
	uint64_t mib = 77;

	assert_int_equal(capacity_parse_meminfo("", &mib), HPQ_EINVAL);
	assert_int_equal(capacity_parse_meminfo("MemFree: 100 kB\n", &mib), HPQ_EINVAL);
	assert_int_equal(capacity_parse_meminfo("MemTotal: lots kB\n", &mib), HPQ_EINVAL);
	assert_int_equal(capacity_parse_meminfo("MemTotal: 100 MB\n", &mib), HPQ_EINVAL);
	assert_int_equal(capacity_parse_meminfo("MemTotal: -5 kB\n", &mib), HPQ_EINVAL);
	assert_int_equal(capacity_parse_meminfo("MemTotal: 99999999999999999999999 kB\n", &mib),
			 HPQ_EINVAL);
	/* MemTotal must start the line. */
	assert_int_equal(capacity_parse_meminfo("XMemTotal: 100 kB\n", &mib), HPQ_EINVAL);
	assert_int_equal(mib, 77); /* untouched on failure */
}

static void gpus_counted_from_nvidia_smi(void **state)
{
	static const char eight[] =
		"GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0b1a2c3d-1111-2222-3333-444455556666)\n"
		"GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-0b1a2c3d-1111-2222-3333-444455556667)\n"
		"GPU 2: NVIDIA H100 80GB HBM3 (UUID: GPU-0b1a2c3d-1111-2222-3333-444455556668)\n"
		"GPU 3: NVIDIA H100 80GB HBM3 (UUID: GPU-0b1a2c3d-1111-2222-3333-444455556669)\n"
		"GPU 4: NVIDIA H100 80GB HBM3 (UUID: GPU-0b1a2c3d-1111-2222-3333-44445555666a)\n"
		"GPU 5: NVIDIA H100 80GB HBM3 (UUID: GPU-0b1a2c3d-1111-2222-3333-44445555666b)\n"
		"GPU 6: NVIDIA H100 80GB HBM3 (UUID: GPU-0b1a2c3d-1111-2222-3333-44445555666c)\n"
		"GPU 7: NVIDIA H100 80GB HBM3 (UUID: GPU-0b1a2c3d-1111-2222-3333-44445555666d)\n";
	static const char mig[] =
		"GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77)\n"
		"  MIG 1g.5gb      Device  0: (UUID: MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f)\n"
		"  MIG 1g.5gb      Device  1: (UUID: MIG-cba663e8-9bed-5b25-b243-5985ef7c9beb)\n"
		"GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a78)";

	assert_int_equal(capacity_count_gpus(eight), 8);
	assert_int_equal(capacity_count_gpus(mig), 2);
	assert_int_equal(capacity_count_gpus(""), 0);
	assert_int_equal(capacity_count_gpus("No devices were found\n"), 0);
	assert_int_equal(capacity_count_gpus("NVIDIA-SMI has failed because it couldn't "
					     "communicate with the NVIDIA driver.\n"), 0);
	assert_int_equal(capacity_count_gpus("GPU x: broken\nGPU 0 no colon\n"), 0);
}

static void given_values_win(void **state)
{
	struct hpq_res r = {0, 0, 0};

	assert_int_equal(capacity_detect((struct hpq_res){3, 5, 1024}, &r), 0);
	assert_int_equal(r.gpus, 3);
	assert_int_equal(r.cpus, 5);
	assert_int_equal(r.mem, 1024);
}

static void detected_values_are_plausible(void **state)
{
	struct hpq_res r = {0, 0, 0};

	/* GPUs given: nvidia-smi is not consulted; CPUs and memory come from this machine. */
	assert_int_equal(capacity_detect((struct hpq_res){0, -1, -1}, &r), 0);
	assert_int_equal(r.gpus, 0);
	assert_true(r.cpus >= 1);
	assert_true(r.mem >= 64); /* any machine that runs the tests has 64 MiB */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(meminfo_total_in_mib),
		cmocka_unit_test(meminfo_not_first_line),
		cmocka_unit_test(meminfo_malformed),
		cmocka_unit_test(gpus_counted_from_nvidia_smi),
		cmocka_unit_test(given_values_win),
		cmocka_unit_test(detected_values_are_plausible),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
