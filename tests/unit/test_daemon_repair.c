/*
 * test_daemon_repair.c: the settings of node repair (config.c: [nodes],
 * [repair], [repair.actions]) and how a finding's reason picks its repair
 * action (repair_action_for: config over the agent's suggestion over the
 * built-in table). The repair flow itself runs against real agents in
 * tests/integration/t_repair.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "error.h"
#include "repair.h"

static int set(struct config *c, const char *section, const char *key, const char *value)
{
	char err[256];

	return config_set(c, section, key, value, err, sizeof(err));
}

static void test_defaults(void **ts)
{
	struct config c;

	(void)ts;
	config_init(&c);
	assert_true(c.repair.enabled);
	assert_int_equal(c.repair.wait_accelerator_ms, 10 * 60 * 1000);
	assert_int_equal(c.repair.wait_default_ms, 30 * 60 * 1000);
	assert_string_equal(c.repair.command, "");
	assert_int_equal(c.repair.timeout_ms, 20 * 60 * 1000);
	assert_int_equal(c.repair.healthy_streak, 3);
	assert_int_equal(c.repair.max_unhealthy_percent, 20);
	assert_int_equal(c.repair.max_parallel, 1);
	assert_int_equal(c.unreachable_after, 25);   /* room for the default fence */
	config_release(&c);
}

static void test_keys(void **ts)
{
	struct config c;
	char err[256];

	(void)ts;
	config_init(&c);
	assert_int_equal(set(&c, "nodes", "unreachable_after", "5"), 0);
	assert_int_equal(c.unreachable_after, 5);
	assert_int_equal(set(&c, "nodes", "unreachable_after", "0"), HPQ_EINVAL);
	assert_int_equal(set(&c, "repair", "enabled", "no"), 0);
	assert_false(c.repair.enabled);
	assert_int_equal(set(&c, "repair", "enabled", "maybe"), HPQ_EINVAL);
	assert_int_equal(set(&c, "repair", "wait_accelerator", "5s"), 0);
	assert_int_equal(c.repair.wait_accelerator_ms, 5000);
	assert_int_equal(set(&c, "repair", "wait_default", "1h"), 0);
	assert_int_equal(c.repair.wait_default_ms, 3600 * 1000);
	assert_int_equal(set(&c, "repair", "wait_default", "0"), HPQ_EINVAL);
	assert_int_equal(set(&c, "repair", "timeout", "8d"), HPQ_EINVAL);
	assert_int_equal(set(&c, "repair", "command", "/usr/local/sbin/fix-node"), 0);
	assert_string_equal(c.repair.command, "/usr/local/sbin/fix-node");
	assert_int_equal(set(&c, "repair", "command", "fix-node"), HPQ_EINVAL);
	assert_string_equal(c.repair.command, "/usr/local/sbin/fix-node");  /* unchanged */
	assert_int_equal(set(&c, "repair", "healthy_streak", "0"), HPQ_EINVAL);
	assert_int_equal(set(&c, "repair", "max_unhealthy_percent", "101"), HPQ_EINVAL);
	assert_int_equal(set(&c, "repair", "max_unhealthy_percent", "50"), 0);
	assert_int_equal(c.repair.max_unhealthy_percent, 50);
	assert_int_equal(set(&c, "repair", "max_parallel", "4"), 0);
	assert_int_equal(c.repair.max_parallel, 4);
	assert_int_equal(set(&c, "repair", "retries", "4"), HPQ_ENOTFOUND);
	assert_int_equal(set(&c, "repair.actions", "xid-79", "replace"), 0);
	assert_int_equal(set(&c, "repair.actions", "xid-79", "fix"), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "repairs", "enabled", "yes", err, sizeof(err)),
			 HPQ_ENOTFOUND);
	assert_non_null(strstr(err, "[repair]"));
	config_release(&c);
}

static void test_file_and_copy(void **ts)
{
	char path[] = "/tmp/hpq-repair-conf-XXXXXX";
	struct config c, copy;
	char err[256];
	int fd;
	const char text[] = "[nodes]\nunreachable_after = 4\n[repair]\nenabled = yes\n"
			    "command = /bin/true\ntimeout = 90s\n[repair.actions]\n"
			    "disk-space-low = reboot\nxid-48 = replace\n";

	(void)ts;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	config_init(&c);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(c.unreachable_after, 4);
	assert_int_equal(c.repair.timeout_ms, 90000);
	assert_int_equal(c.repair.nactions, 2);
	config_copy(&copy, &c);
	config_release(&c);   /* the copy owns its own strings */
	assert_string_equal(copy.repair.command, "/bin/true");
	assert_int_equal(copy.repair.nactions, 2);
	assert_string_equal(repair_action_for(&copy, "disk-space-low", NULL), "reboot");
	assert_string_equal(repair_action_for(&copy, "xid-48", "reboot"), "replace");
	config_release(&copy);
}

static void test_actions(void **ts)
{
	struct config c;

	(void)ts;
	config_init(&c);
	/* Built in. */
	assert_string_equal(repair_action_for(&c, "xid-79", NULL), "reboot");
	assert_string_equal(repair_action_for(&c, "gpu-missing", ""), "reboot");
	assert_string_equal(repair_action_for(&c, "disk-space-low", ""), "none");
	assert_string_equal(repair_action_for(&c, "unreachable", NULL), "reboot");
	assert_string_equal(repair_action_for(&c, "something-new", ""), "reboot");
	/* The agent's suggestion beats the table; junk suggestions do not count. */
	assert_string_equal(repair_action_for(&c, "xid-64", "replace"), "replace");
	assert_string_equal(repair_action_for(&c, "disk-space-low", "reboot"), "reboot");
	assert_string_equal(repair_action_for(&c, "disk-space-low", "explode"), "none");
	/* The config beats both. */
	assert_int_equal(set(&c, "repair.actions", "xid-64", "none"), 0);
	assert_string_equal(repair_action_for(&c, "xid-64", "replace"), "none");
	assert_int_equal(set(&c, "repair.actions", "xid-64", "reboot"), 0);   /* replaced */
	assert_int_equal(c.repair.nactions, 1);
	assert_string_equal(repair_action_for(&c, "xid-64", "replace"), "reboot");
	config_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_file_and_copy),
		cmocka_unit_test(test_actions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
