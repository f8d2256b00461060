/*
 * test_agent_cgroup.c: the pure parts of the agent's confinement
 * (agent/cgroup.h): its own cgroup from /proc/self/cgroup (hybrid v1
 * hosts list v1 lines first), cgroup2 mounts from mountinfo lines (with
 * escaped paths and optional fields), flat keyed files (memory.events,
 * cpu.stat), controller lists, the --cgroup words, and that off is off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup.h"
#include "error.h"

static void self_cgroup(void **state)
{
	char path[256];

	assert_int_equal(cgroup_parse_self("0::/system.slice/hpq-agent.service\n", path,
					   sizeof(path)), 0);
	assert_string_equal(path, "/system.slice/hpq-agent.service");
	/* Hybrid: v1 hierarchies first, the v2 line last. */
	assert_int_equal(cgroup_parse_self("12:memory:/user.slice\n"
					   "1:name=systemd:/user.slice/session-2.scope\n"
					   "0::/user.slice/session-2.scope", path, sizeof(path)), 0);
	assert_string_equal(path, "/user.slice/session-2.scope");
	assert_int_equal(cgroup_parse_self("0::/\n", path, sizeof(path)), 0);
	assert_string_equal(path, "/");
	/* v1 only. */
	assert_int_equal(cgroup_parse_self("4:memory:/\n3:cpu,cpuacct:/\n", path, sizeof(path)),
			 HPQ_ENOTFOUND);
	assert_int_equal(cgroup_parse_self("", path, sizeof(path)), HPQ_ENOTFOUND);
	/* Too long for the buffer: refused, not cut. */
	assert_int_equal(cgroup_parse_self("0::/abcdefgh\n", path, 4), HPQ_EINVAL);
}

static void mountinfo(void **state)
{
	char mnt[256], root[256];

	assert_int_equal(cgroup_parse_mountinfo_line(
		"35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 "
		"cgroup2 rw,nsdelegate,memory_recursiveprot\n", mnt, sizeof(mnt), root,
		sizeof(root)), 1);
	assert_string_equal(mnt, "/sys/fs/cgroup");
	assert_string_equal(root, "/");
	/* Hybrid hosts mount it elsewhere; no optional fields; escapes. */
	assert_int_equal(cgroup_parse_mountinfo_line(
		"30 25 0:26 /sub\\040dir /sys/fs/cgroup/uni\\040fied rw - cgroup2 cgroup2 rw",
		mnt, sizeof(mnt), root, sizeof(root)), 1);
	assert_string_equal(mnt, "/sys/fs/cgroup/uni fied");
	assert_string_equal(root, "/sub dir");
	/* cgroup v1 and other file systems are not it. */
	assert_int_equal(cgroup_parse_mountinfo_line(
		"33 25 0:28 / /sys/fs/cgroup/memory rw shared:13 - cgroup cgroup rw,memory",
		mnt, sizeof(mnt), root, sizeof(root)), 0);
	assert_int_equal(cgroup_parse_mountinfo_line(
		"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw", mnt, sizeof(mnt), root,
		sizeof(root)), 0);
	/* Garbage. */
	assert_int_equal(cgroup_parse_mountinfo_line("35 24 0:30", mnt, sizeof(mnt), root,
						     sizeof(root)), HPQ_EINVAL);
	assert_int_equal(cgroup_parse_mountinfo_line("1 2 3 4 5 6 no separator", mnt,
						     sizeof(mnt), root, sizeof(root)),
			 HPQ_EINVAL);
}

static void keyed_files(void **state)
{
	const char *events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
	const char *cpu = "usage_usec 2503716\nuser_usec 2000000\nsystem_usec 503716\n"
			  "nr_periods 10\nnr_throttled 3\nthrottled_usec 1200\n";
	uint64_t v = 99;

	assert_int_equal(cgroup_parse_keyed(events, "oom_kill", &v), 0);
	assert_int_equal(v, 1);
	/* "oom" is not "oom_kill" nor "oom_group_kill". */
	assert_int_equal(cgroup_parse_keyed(events, "oom", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(cgroup_parse_keyed(events, "max", &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(cgroup_parse_keyed(cpu, "usage_usec", &v), 0);
	assert_int_equal(v, 2503716);
	assert_int_equal(cgroup_parse_keyed(cpu, "throttled_usec", &v), 0);
	assert_int_equal(v, 1200);
	assert_int_equal(cgroup_parse_keyed(cpu, "usage", &v), HPQ_ENOTFOUND);
	assert_int_equal(cgroup_parse_keyed("populated 0", "populated", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cgroup_parse_keyed("oom_kill x\n", "oom_kill", &v), HPQ_EINVAL);
	assert_int_equal(cgroup_parse_keyed("", "oom_kill", &v), HPQ_ENOTFOUND);
}

static void controllers(void **state)
{
	assert_true(cgroup_list_has("cpuset cpu io memory hugetlb pids rdma misc\n", "cpu"));
	assert_true(cgroup_list_has("cpuset cpu io memory hugetlb pids rdma misc\n", "pids"));
	assert_true(cgroup_list_has("memory\n", "memory"));
	assert_false(cgroup_list_has("cpuset io memory\n", "cpu"));
	assert_false(cgroup_list_has("", "memory"));
	assert_false(cgroup_list_has("\n", "memory"));
}

static void modes(void **state)
{
	enum cgroup_mode m;

	assert_int_equal(cgroup_mode_parse("auto", &m), 0);
	assert_int_equal(m, CGROUP_AUTO);
	assert_int_equal(cgroup_mode_parse("required", &m), 0);
	assert_int_equal(m, CGROUP_REQUIRED);
	assert_int_equal(cgroup_mode_parse("off", &m), 0);
	assert_int_equal(m, CGROUP_OFF);
	assert_int_equal(cgroup_mode_parse("yes", &m), HPQ_EINVAL);
	assert_string_equal(cgroup_mode_name(CGROUP_REQUIRED), "required");
}

/* Off touches nothing and says so (auto and required act on the host's
 * cgroups: the integration test t_confine runs them in a real agent). */
static void init_off(void **state)
{
	struct cgroup cg;
	char err[512];

	assert_int_equal(cgroup_init(&cg, CGROUP_OFF, 0, err, sizeof(err)), 0);
	assert_false(cg.enabled);
	assert_null(cg.root);
	assert_non_null(strstr(cg.problem, "off"));
	assert_int_equal(cg.pids_max, CGROUP_DEFAULT_PIDS_MAX);
	cgroup_release(&cg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(self_cgroup),
		cmocka_unit_test(mountinfo),
		cmocka_unit_test(keyed_files),
		cmocka_unit_test(controllers),
		cmocka_unit_test(modes),
		cmocka_unit_test(init_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
