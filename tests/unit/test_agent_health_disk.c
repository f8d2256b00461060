/*
 * test_agent_health_disk.c: the health-disk setting, the filesystems an
 * administrator adds to the node's health (the disk monitor's part is in
 * test_agent_health_monitors.c). Each flag or key adds paths, a list
 * separated by commas, each path once; a bad value is refused whole and
 * changes nothing; relative paths become absolute for a detaching agent;
 * --check says when one is missing and prints the list with its source.
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

#include "config-check.h"
#include "config.h"
#include "error.h"

static void adds_paths(void **state)
{
	struct agent_config c;
	char err[256];

	config_init(&c);
	assert_int_equal(c.nhealth_disks, 0);
	assert_int_equal(config_set(&c, "health-disk", "/scratch", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "health_disk", " /data , /my disk,/scratch ", err,
				    sizeof(err)), 0);
	assert_int_equal(c.nhealth_disks, 3);
	assert_string_equal(c.health_disks[0], "/scratch");
	assert_string_equal(c.health_disks[1], "/data");
	assert_string_equal(c.health_disks[2], "/my disk");
	/* Only paths already there: nothing to add, and no error. */
	assert_int_equal(config_set(&c, "health-disk", "/data", err, sizeof(err)), 0);
	assert_int_equal(c.nhealth_disks, 3);
	config_health_disks_clear(&c);
	assert_int_equal(c.nhealth_disks, 0);
	assert_null(c.health_disks);
	assert_int_equal(config_set(&c, "health-disk", "/x", err, sizeof(err)), 0);
	config_release(&c);
}

static void bad_values_change_nothing(void **state)
{
	struct agent_config c;
	char err[256], many[CONFIG_HEALTH_DISKS_MAX * 8 + 16] = "";

	config_init(&c);
	assert_int_equal(config_set(&c, "health-disk", "/a", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "health-disk", "", err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "expected PATH[,PATH...]"));
	assert_int_equal(config_set(&c, "health-disk", " , ", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "health-disk", "/b,/c\td", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_non_null(strstr(err, "invalid health-disk"));
	assert_int_equal(c.nhealth_disks, 1);     /* not even /b */
	for (int i = 0; i < CONFIG_HEALTH_DISKS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "/d%d,", i);
	assert_int_equal(config_set(&c, "health-disk", many, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "too many health-disk paths"));
	assert_int_equal(c.nhealth_disks, 1);
	assert_string_equal(c.health_disks[0], "/a");
	config_release(&c);
}

static char *write_file(const char *text)
{
	char *path = strdup("/tmp/hpq-test-hdisk-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void file_keys_add_up(void **state)
{
	char *file = write_file("[agent]\nhealth-disk = /scratch,/data\nhealth_disk = /nvme\n");
	struct agent_config c;
	char err[256];

	config_init(&c);
	assert_int_equal(config_load(&c, file, err, sizeof(err)), 0);
	assert_int_equal(c.nhealth_disks, 3);
	assert_string_equal(c.health_disks[2], "/nvme");
	config_release(&c);
	unlink(file);
	free(file);
}

static void absolute_checked_printed(void **state)
{
	struct agent_config c;
	char err[512], cwd[256], want[300], dir[] = "/tmp/hpq-test-hdisk-XXXXXX", *text = NULL;
	size_t len = 0;
	unsigned n;
	FILE *f;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_non_null(mkdtemp(dir));
	config_init(&c);
	assert_int_equal(config_set(&c, "server", "/run/hpq/hpqd.sock", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "work-dir", dir, err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "health-disk", "rel/scratch", err, sizeof(err)), 0);
	assert_int_equal(config_make_absolute(&c, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/rel/scratch", cwd);
	assert_string_equal(c.health_disks[0], want);

	/* A path that is not there is a problem for --check. */
	f = open_memstream(&text, &len);
	n = config_check(&c, f);
	fclose(f);
	assert_non_null(strstr(text, "hpq-agent: health-disk '"));
	assert_non_null(strstr(text, "No such file or directory"));
	assert_true(n >= 1);
	free(text);

	assert_int_equal(config_set(&c, "health-disk", "/tmp", err, sizeof(err)), 0);
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	text = NULL;
	f = open_memstream(&text, &len);
	config_print(&c, (struct hpq_res){0, 1, 1024}, NULL, (const char *const[]){"health-disk"}, 1,
		     f);
	fclose(f);
	snprintf(want, sizeof(want), "health-disk = %s/rel/scratch,/tmp", cwd);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "; option"));
	free(text);
	config_release(&c);

	/* None: printed commented out. */
	config_init(&c);
	assert_int_equal(config_set(&c, "name", "n1", err, sizeof(err)), 0);
	text = NULL;
	f = open_memstream(&text, &len);
	config_print(&c, (struct hpq_res){0, 1, 1024}, NULL, NULL, 0, f);
	fclose(f);
	assert_non_null(strstr(text, "\n#health-disk ="));
	free(text);
	config_release(&c);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(adds_paths),
		cmocka_unit_test(bad_values_change_nothing),
		cmocka_unit_test(file_keys_add_up),
		cmocka_unit_test(absolute_checked_printed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
