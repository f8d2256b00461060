/*
 * test_daemon_config.c: what `hpqd --check` adds to reading the settings.
 * Relative paths become absolute against the current directory (a socket
 * too long once absolute is refused); addresses, directories and the
 * repair command are checked against the system, one line per problem;
 * every printed setting says whether an option, the file or the default
 * gave it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config-check.h"
#include "config.h"
#include "error.h"

static char dir[] = "/tmp/hpq-test-dconfig-XXXXXX";

static char *path_in(const char *name)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* Runs config_check; returns its count, with its lines in *ret_text. */
static unsigned check(const struct config *c, char **ret_text)
{
	size_t len = 0;
	FILE *f = open_memstream(ret_text, &len);
	unsigned n;

	n = config_check(c, f);
	fclose(f);
	return n;
}

static void set(struct config *c, const char *section, const char *key, const char *value)
{
	char err[256];

	if (config_set(c, section, key, value, err, sizeof(err)) != 0)
		fail_msg("%s.%s = %s: %s", section, key, value, err);
}

static void make_absolute(void **state)
{
	struct config c;
	char err[512], want[300], longer[200];

	assert_int_equal(chdir(dir), 0);
	config_init(&c);
	set(&c, "hpqd", "state_dir", "var");
	set(&c, "hpqd", "socket", "./var/hpqd.sock");
	assert_int_equal(config_make_absolute(&c, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/var", dir);
	assert_string_equal(c.state_dir, want);
	snprintf(want, sizeof(want), "%s/var/hpqd.sock", dir);
	assert_string_equal(c.socket_path, want);
	/* Absolute paths and "no socket" stay as they are. */
	set(&c, "hpqd", "socket", "");
	set(&c, "hpqd", "state_dir", "/srv/hpq");
	assert_int_equal(config_make_absolute(&c, err, sizeof(err)), 0);
	assert_string_equal(c.socket_path, "");
	assert_string_equal(c.state_dir, "/srv/hpq");
	/* Short as given, too long for sun_path once absolute. */
	memset(longer, 'x', 100);
	longer[100] = '\0';
	set(&c, "hpqd", "socket", longer);
	assert_true(config_make_absolute(&c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "too long for a Unix socket"));
	config_release(&c);
}

static void check_values(void **state)
{
	struct config c;
	char *text;

	config_init(&c);
	set(&c, "hpqd", "state_dir", path_in("state"));
	set(&c, "hpqd", "socket", path_in("run/hpqd.sock"));
	set(&c, "hpqd", "listen", "127.0.0.1:0");
	set(&c, "hpqd", "metrics", "[::1]:9100");
	write_file(path_in("repair"), "#!/bin/sh\n", 0755);
	set(&c, "repair", "command", path_in("repair"));
	if (check(&c, &text) != 0)
		fail_msg("a good configuration has problems:\n%s", text);
	free(text);

	set(&c, "hpqd", "listen", "head.example.org:7420");
	set(&c, "hpqd", "metrics", "127.0.0.1");
	write_file(path_in("plain"), "", 0644);
	set(&c, "hpqd", "state_dir", path_in("plain"));
	set(&c, "hpqd", "socket", path_in("plain/hpqd.sock"));
	set(&c, "repair", "command", path_in("plain"));
	assert_int_equal(check(&c, &text), 5);
	assert_non_null(strstr(text, "hpqd: listen 'head.example.org:7420': give an IP address"));
	assert_non_null(strstr(text, "hpqd: metrics '127.0.0.1': give an IP address"));
	assert_non_null(strstr(text, "state_dir"));
	assert_non_null(strstr(text, "is not a directory"));
	assert_non_null(strstr(text, "hpqd: socket"));
	assert_non_null(strstr(text, "hpqd: [repair] command:"));
	assert_non_null(strstr(text, "not executable"));
	free(text);

	/* The same port twice. */
	set(&c, "hpqd", "state_dir", dir);
	set(&c, "hpqd", "socket", "");
	set(&c, "repair", "command", "");
	set(&c, "hpqd", "listen", ":7420");
	set(&c, "hpqd", "metrics", "127.0.0.1:7420");
	assert_int_equal(check(&c, &text), 1);
	assert_non_null(strstr(text, "use the same port"));
	free(text);
	config_release(&c);
}

/* [agents] fence_after: 2 min by default, which the defaults allow; a lost
 * node's tasks are requeued only after 2 x fence_after + the margin, and
 * fence_after spans two beats. */
static void fence_rule(void **state)
{
	struct config c;
	char err[512];

	config_init(&c);
	assert_int_equal(c.fence_after_ms, 120000);
	assert_int_equal(config_fence_check(&c, err, sizeof(err)), 0);
	assert_int_equal(config_fence_ms(&c), 245000);
	set(&c, "agents", "fence_after", "off");
	assert_int_equal(config_fence_ms(&c), 0);
	assert_int_not_equal(config_set(&c, "agents", "fence_after", "soon", err, sizeof(err)), 0);
	assert_int_not_equal(config_set(&c, "agents", "fence_after", "2d", err, sizeof(err)), 0);

	set(&c, "agents", "heartbeat", "1s");
	set(&c, "agents", "unreachable_after", "12");
	set(&c, "agents", "fence_after", "3s");
	assert_int_equal(config_fence_ms(&c), 11000);
	assert_int_equal(config_fence_check(&c, err, sizeof(err)), 0);

	set(&c, "agents", "unreachable_after", "10"); /* 10 s < 2 x 3 s + 5 s */
	assert_int_equal(config_fence_check(&c, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "unreachable_after"));

	set(&c, "agents", "unreachable_after", "100");
	set(&c, "agents", "heartbeat", "2s"); /* 3 s < two heartbeats */
	assert_int_equal(config_fence_check(&c, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "two heartbeats"));

	set(&c, "agents", "fence_after", "off");
	assert_int_equal(config_fence_check(&c, err, sizeof(err)), 0);
	config_release(&c);
}

/* [tasks]: how long ended tasks stay in memory and in the database. */
static void tasks_retention(void **state)
{
	struct config c;
	char err[512];

	(void)state;
	config_init(&c);
	assert_int_equal(c.keep_finished_s, 3600);
	assert_int_equal(c.tasks_retain_s, 0);
	set(&c, "tasks", "keep_finished", "0");
	assert_int_equal(c.keep_finished_s, 0);
	set(&c, "tasks", "keep_finished", "10m");
	assert_int_equal(c.keep_finished_s, 600);
	set(&c, "tasks", "retain", "365d");
	assert_int_equal(c.tasks_retain_s, 365ull * 24 * 3600);
	assert_int_equal(config_set(&c, "tasks", "keep_finished", "soon", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_non_null(strstr(err, "keep_finished"));
	assert_int_equal(config_set(&c, "tasks", "keep_finished", "400d", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(config_set(&c, "tasks", "retain", "-1", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "tasks", "forever", "1", err, sizeof(err)), HPQ_ENOTFOUND);
	/* Nothing changed by the refusals. */
	assert_int_equal(c.keep_finished_s, 600);
	assert_int_equal(c.tasks_retain_s, 365ull * 24 * 3600);
	config_release(&c);
}

/* [plans]: the reservable list per pool, durations, refusals that change nothing. */
static void plans_settings(void **state)
{
	struct config c, d;
	char err[512];

	(void)state;
	config_init(&c);
	assert_string_equal(c.plans.reservable, "");
	assert_int_equal(config_plans_reservable(&c, "gpu", 10), 0);
	assert_int_equal(c.plans.end_warning_s, 1800);
	set(&c, "plans", "reservable", "gpu=8, train = 50%");
	assert_int_equal(config_plans_reservable(&c, "gpu", 10), 8);
	assert_int_equal(config_plans_reservable(&c, "gpu", 4), 4);
	assert_int_equal(config_plans_reservable(&c, "train", 9), 4);
	assert_int_equal(config_plans_reservable(&c, "tra", 9), 0);
	assert_int_equal(config_plans_reservable(&c, "other", 9), 0);
	set(&c, "plans", "max_length", "30d");
	assert_int_equal(c.plans.max_length_s, 30 * 86400);
	set(&c, "plans", "end_warning", "0");
	assert_int_equal(c.plans.end_warning_s, 0);
	set(&c, "plans", "offer_lifetime", "5m");
	assert_int_equal(c.plans.offer_lifetime_s, 300);
	assert_int_equal(config_set(&c, "plans", "reservable", "gpu", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_non_null(strstr(err, "POOL=NODES"));
	assert_int_equal(config_set(&c, "plans", "reservable", "gpu=101%", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(config_set(&c, "plans", "reservable", "gpu=8,=3", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(config_set(&c, "plans", "reservable", "gpu=x", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(config_set(&c, "plans", "max_length", "0", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "plans", "end_warning", "2d", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(config_set(&c, "plans", "later", "1", err, sizeof(err)), HPQ_ENOTFOUND);
	assert_int_equal(config_plans_reservable(&c, "gpu", 10), 8);
	assert_int_equal(c.plans.max_length_s, 30 * 86400);
	config_copy(&d, &c);
	config_release(&c);
	assert_int_equal(config_plans_reservable(&d, "train", 10), 5);
	config_release(&d);
}

static void sources(void **state)
{
	const char *file = path_in("hpqd.conf");
	const char *options[] = {"hpqd.state_dir", "agents.heartbeat"};
	const char *text = "[hpqd]\nlisten = 0.0.0.0:7420\nstate_dir = /x\nsocket = /s\n"
			   "\n[agents]\nheartbeat = 2s\nunreachable_after = 5\n"
			   "\n[repair.actions]\nxid-79 = replace\n";
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	/* [nodes] unreachable_after is [agents] unreachable_after; the option
	 * wins over the file's heartbeat. */
	write_file(file, "listen = 0.0.0.0:7420\n[agents]\nheartbeat = 5s\n[nodes]\n"
		   "unreachable_after = 5\n[repair.actions]\nxid-79 = replace\n", 0644);
	f = open_memstream(&out, &len);
	config_print_sources(f, text, file, options, 2);
	fclose(f);
	assert_string_equal(out,
			    "[hpqd]\n"
			    "listen = 0.0.0.0:7420                    ; file\n"
			    "state_dir = /x                           ; option\n"
			    "socket = /s                              ; default\n"
			    "\n[agents]\n"
			    "heartbeat = 2s                           ; option\n"
			    "unreachable_after = 5                    ; file\n"
			    "\n[repair.actions]\n"
			    "xid-79 = replace                         ; file\n");
	free(out);

	/* Without a file, everything not given as an option is a default. */
	out = NULL;
	f = open_memstream(&out, &len);
	config_print_sources(f, "[hpqd]\nlisten = 0.0.0.0:7420\n", NULL, options, 0);
	fclose(f);
	assert_string_equal(out, "[hpqd]\nlisten = 0.0.0.0:7420                    ; default\n");
	free(out);

	/* What it prints reads back as the same settings. */
	{
		struct config c;
		char err[256];
		const char *again = path_in("again.conf");

		out = NULL;
		f = open_memstream(&out, &len);
		config_print_sources(f, "[hpqd]\nstate_dir = /x\nmetrics =\n", NULL, NULL, 0);
		fclose(f);
		write_file(again, out, 0644);
		free(out);
		config_init(&c);
		assert_int_equal(config_load(&c, again, err, sizeof(err)), 0);
		assert_string_equal(c.state_dir, "/x");
		assert_string_equal(c.metrics, "");
		config_release(&c);
	}
}

/* SIGHUP copies the whole config to swap [repair] in (repair_reload):
 * the copy owns every string, so releasing both frees nothing twice
 * (ASan watches this in make test). The file's keys are copied too. */
static void copy_is_deep(void **state)
{
	struct config a, b;
	char err[256];

	(void)state;
	config_init(&a);
	assert_int_equal(config_set(&a, "versions", "catalog", "/etc/hpq/versions.json", err,
				    sizeof(err)), 0);
	assert_int_equal(config_set(&a, "repair", "command", "/bin/true", err, sizeof(err)), 0);
	config_copy(&b, &a);
	config_release(&a);
	assert_string_equal(b.versions_catalog, "/etc/hpq/versions.json");
	assert_string_equal(config_catalog(&b), "/etc/hpq/versions.json");
	config_release(&b);
	config_init(&a);
	assert_non_null(strstr(config_catalog(&a), "/hpq/versions.json"));
	config_release(&a);

	/* The file and the keys it set (hpq upgrade-check reads them), each
	 * once, in order, deep-copied. */
	write_file(path_in("keys.conf"), "listen = 0.0.0.0:7420\n[nodes]\nunreachable_after = 5\n"
		   "[hpqd]\nlisten = 0.0.0.0:7421\n[repair.actions]\nxid-79 = replace\n", 0644);
	config_init(&a);
	assert_int_equal(config_load(&a, path_in("keys.conf"), err, sizeof(err)), 0);
	config_copy(&b, &a);
	config_release(&a);
	assert_string_equal(b.file, path_in("keys.conf"));
	assert_int_equal(b.nfile_keys, 3);
	assert_string_equal(b.file_keys[0], "hpqd.listen");
	assert_string_equal(b.file_keys[1], "nodes.unreachable_after");
	assert_string_equal(b.file_keys[2], "repair.actions.xid-79");
	assert_int_equal(b.unreachable_after, 5);
	config_release(&b);
}

/* [autoscale.POOL]: each key, the rules across keys, the budget, and a
 * deep copy (hpqd_init copies the config; ASan watches the frees). */
static void autoscale_sections(void **state)
{
	struct config a, b;
	const struct autoscale_config *g;
	char err[256];

	(void)state;
	config_init(&a);
	assert_int_equal(config_autoscale_check(&a, err, sizeof(err)), 0);
	set(&a, "autoscale.gpu", "max_nodes", "10");
	set(&a, "autoscale.gpu", "gpus", "8");
	set(&a, "autoscale.gpu", "mem", "64G");
	set(&a, "autoscale.gpu", "labels", "spot, h100");
	set(&a, "autoscale.gpu", "provision_command", "/bin/true");
	set(&a, "autoscale.gpu", "idle_timeout", "5s");
	set(&a, "autoscale.gpu", "max_node_lifetime", "off");
	set(&a, "autoscale.gpu", "disruption_budget", "25%");
	/* No deprovision_command yet. */
	assert_int_equal(config_autoscale_check(&a, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "[autoscale.gpu] has no deprovision_command"));
	set(&a, "autoscale.gpu", "deprovision_command", "/bin/true");
	assert_int_equal(config_autoscale_check(&a, err, sizeof(err)), 0);
	set(&a, "autoscale.gpu", "min_nodes", "11");
	assert_int_equal(config_autoscale_check(&a, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "min_nodes (11) is more than max_nodes (10)"));
	set(&a, "autoscale.gpu", "min_nodes", "1");
	assert_int_equal(config_set(&a, "autoscale.gpu", "provision_command", "up.sh", err,
				    sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&a, "autoscale.gpu", "idle_timeout", "0", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(config_set(&a, "autoscale.gpu", "consolidation", "maybe", err,
				    sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&a, "autoscale.gpu", "size", "xl", err, sizeof(err)),
			 HPQ_ENOTFOUND);
	assert_int_equal(config_set(&a, "autoscale.a/b", "max_nodes", "1", err, sizeof(err)),
			 HPQ_EINVAL);

	config_copy(&b, &a);
	config_release(&a);
	g = config_autoscale_find(&b, "gpu");
	assert_non_null(g);
	assert_null(config_autoscale_find(&b, "cpu"));
	assert_int_equal(g->min_nodes, 1);
	assert_int_equal(g->max_nodes, 10);
	assert_int_equal(g->tmpl.gpus, 8);
	assert_int_equal(g->tmpl.mem, 64 * 1024);
	assert_int_equal(g->nlabels, 2);
	assert_string_equal(g->labels[1], "h100");
	assert_string_equal(g->deprovision_command, "/bin/true");
	assert_int_equal(g->idle_timeout_ms, 5000);
	assert_int_equal(g->max_lifetime_ms, 0);
	assert_int_equal(config_autoscale_budget(g, 10), 3);    /* 25% of 10, rounded up */
	assert_int_equal(config_autoscale_budget(g, 0), 0);
	config_release(&b);

	/* A template of no capacity. */
	config_init(&a);
	set(&a, "autoscale.x", "max_nodes", "1");
	set(&a, "autoscale.x", "mem", "1G");
	set(&a, "autoscale.x", "provision_command", "/bin/true");
	set(&a, "autoscale.x", "deprovision_command", "/bin/true");
	assert_int_equal(config_autoscale_check(&a, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "no capacity"));
	config_release(&a);
}

/* A file with two bad lines: the error names the first line and says what
 * is wrong with that line, not with the last bad one. */
static void load_first_error(void **state)
{
	struct config c;
	char err[512];

	write_file(path_in("two-errors.conf"), "[agents]\nheartbeat = 0\nbogus = 1\n", 0644);
	config_init(&c);
	assert_int_equal(config_load(&c, path_in("two-errors.conf"), err, sizeof(err)),
			 HPQ_EINVAL);
	if (!strstr(err, ":2: invalid heartbeat"))
		fail_msg("'%s' does not say what is wrong with line 2", err);
	config_release(&c);
}

/* A continuation line (leading blank) must not replace the list the line
 * before set: "admins = alice," "  bob" is both names or an error, never
 * bob alone (alice would lose her rights without a word). */
static void load_continuation_keeps_admins(void **state)
{
	struct config c;
	char err[512];
	int r;

	write_file(path_in("cont.conf"), "[auth]\nadmins = alice,\n  bob\n", 0644);
	config_init(&c);
	r = config_load(&c, path_in("cont.conf"), err, sizeof(err));
	if (r == 0 && !(c.nadmins == 2 && !strcmp(c.admins[0], "alice")))
		fail_msg("admins = alice,<newline>  bob was read as %zu admin(s), the first '%s'",
			 c.nadmins, c.nadmins ? c.admins[0] : "");
	if (r != 0 && !strstr(err, ":3: "))
		fail_msg("'%s' does not name line 3", err);
	config_release(&c);
}

/* A line longer than inih's buffer (199 bytes with Debian's) must not be
 * cut in two, its tail read as a line of its own: 96 admins or an error
 * naming the line, never {zed}. */
static void load_long_line_not_split(void **state)
{
	struct config c;
	char text[512], err[512];
	size_t n = 0;
	int r;

	n += (size_t)snprintf(text + n, sizeof(text) - n, "[auth]\nadmins = ");
	for (int i = 0; i < 95; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "u,");
	snprintf(text + n, sizeof(text) - n, " zed\n");
	assert_true(strlen(strchr(text, '\n') + 1) > 200);
	write_file(path_in("long.conf"), text, 0644);
	config_init(&c);
	r = config_load(&c, path_in("long.conf"), err, sizeof(err));
	if (r == 0 && c.nadmins != 96)
		fail_msg("a %zu-byte admins line of 96 names was read as %zu admin(s), the "
			 "first '%s'", strlen(strchr(text, '\n') + 1) - 1, c.nadmins,
			 c.nadmins ? c.admins[0] : "");
	if (r != 0 && !strstr(err, ":2: "))
		fail_msg("'%s' does not name line 2", err);
	config_release(&c);
}

/* A syntax error, then a bad value: the error names line 2 and what is
 * wrong there, not line 2 with line 3's message. */
static void load_error_line_matches_message(void **state)
{
	struct config c;
	char err[512];

	write_file(path_in("syntax.conf"), "[agents]\nthis is no setting\nheartbeat = 0\n", 0644);
	config_init(&c);
	assert_int_equal(config_load(&c, path_in("syntax.conf"), err, sizeof(err)), HPQ_EINVAL);
	if (!strstr(err, ":2: syntax error"))
		fail_msg("'%s' does not say line 2 is a syntax error", err);
	config_release(&c);

	/* And the other way round: the bad value first. */
	write_file(path_in("syntax2.conf"), "[agents]\nheartbeat = 0\nthis is no setting\n", 0644);
	config_init(&c);
	assert_int_equal(config_load(&c, path_in("syntax2.conf"), err, sizeof(err)), HPQ_EINVAL);
	if (!strstr(err, ":2: invalid heartbeat"))
		fail_msg("'%s' does not say what is wrong with line 2", err);
	config_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(autoscale_sections),
		cmocka_unit_test(make_absolute),
		cmocka_unit_test(copy_is_deep),
		cmocka_unit_test(check_values),
		cmocka_unit_test(sources),
		cmocka_unit_test(fence_rule),
		cmocka_unit_test(tasks_retention),
		cmocka_unit_test(plans_settings),
		cmocka_unit_test(load_first_error),
		cmocka_unit_test(load_continuation_keeps_admins),
		cmocka_unit_test(load_long_line_not_split),
		cmocka_unit_test(load_error_line_matches_message),
	};
	char cmd[128];
	int r;

	if (!mkdtemp(dir))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
