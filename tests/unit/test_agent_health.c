/*
 * test_agent_health.c: the findings framework without any monitor. A
 * reason counts only after `threshold` rounds in a row and stops at the
 * first round without it; since is when its streak began and survives a
 * change of severity; one reason seen twice in a round, or by two
 * sources, is one finding with the worse severity and both messages; the
 * owner is told when the set changes and not when only a message does;
 * a source that goes takes its findings along. Also the test-only inject
 * file's parsing and the settings that drive the monitors.
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
#include <ev.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "health.h"
#include "monitor.h"
#include "xalloc.h"

struct fixture {
	struct ev_loop *loop;
	struct health h;
	int changes;
};

static void on_change(struct health *h, void *data)
{
	struct fixture *f = data;

	f->changes++;
}

static struct fixture *fixture_new(unsigned threshold)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct health_config cfg;

	health_config_init(&cfg);
	cfg.threshold = threshold;
	f->loop = ev_default_loop(0);
	health_init(&f->h, f->loop, &cfg, NULL, on_change, f);
	return f;
}

static void fixture_free(struct fixture *f)
{
	health_release(&f->h);
	free(f);
}

static void round_with(struct health_source *s, const char *reason, enum health_severity sev)
{
	if (reason)
		health_see(s, HEALTH_KERNEL, reason, sev, NULL, "%s seen", reason);
	health_done(s);
}

static void names(void **state)
{
	enum health_category c;
	enum health_severity s;

	assert_int_equal(health_category_parse("accelerator", &c), 0);
	assert_int_equal(c, HEALTH_ACCELERATOR);
	assert_int_equal(health_category_parse("agent", &c), 0);
	assert_int_equal(c, HEALTH_AGENT);
	assert_int_equal(health_category_parse("gpu", &c), HPQ_EINVAL);
	assert_int_equal(health_severity_parse("fatal", &s), 0);
	assert_int_equal(s, HEALTH_FATAL);
	assert_int_equal(health_severity_parse("error", &s), HPQ_EINVAL);
	assert_string_equal(health_category_name(HEALTH_STORAGE), "storage");
	assert_string_equal(health_severity_name(HEALTH_WARNING), "warning");
}

static void threshold_counts_consecutive_rounds(void **state)
{
	struct fixture *f = fixture_new(3);
	struct health_source *s = health_source_new(&f->h, "test");

	round_with(s, "flaky", HEALTH_FATAL);
	round_with(s, "flaky", HEALTH_FATAL);
	assert_int_equal(f->h.nfindings, 0);
	round_with(s, NULL, 0);              /* the streak breaks */
	round_with(s, "flaky", HEALTH_FATAL);
	round_with(s, "flaky", HEALTH_FATAL);
	assert_int_equal(f->h.nfindings, 0);
	assert_int_equal(f->changes, 0);
	round_with(s, "flaky", HEALTH_FATAL); /* third in a row */
	assert_int_equal(f->h.nfindings, 1);
	assert_int_equal(f->changes, 1);
	assert_string_equal(f->h.findings[0]->category, "kernel");
	assert_string_equal(f->h.findings[0]->reason, "flaky");
	assert_string_equal(f->h.findings[0]->severity, "fatal");
	assert_string_equal(f->h.findings[0]->message, "flaky seen");
	assert_string_equal(f->h.findings[0]->action, "");
	round_with(s, "flaky", HEALTH_FATAL);
	assert_int_equal(f->changes, 1);     /* same set: no extra heartbeat */
	round_with(s, NULL, 0);              /* not seen: cleared at once */
	assert_int_equal(f->h.nfindings, 0);
	assert_int_equal(f->changes, 2);
	fixture_free(f);
}

static void default_threshold_is_one(void **state)
{
	struct fixture *f = fixture_new(1);
	struct health_source *s = health_source_new(&f->h, "test");

	round_with(s, "now", HEALTH_WARNING);
	assert_int_equal(f->h.nfindings, 1);
	assert_non_null(health_find(&f->h, "kernel", "now"));
	assert_null(health_find(&f->h, "kernel", "other"));
	assert_null(health_find(&f->h, "storage", "now"));
	fixture_free(f);
}

static void since_is_start_of_streak(void **state)
{
	struct fixture *f = fixture_new(1);
	struct health_source *s = health_source_new(&f->h, "test");
	int64_t before = hpq_now_ms() / 1000, since;

	round_with(s, "slow", HEALTH_WARNING);
	since = f->h.findings[0]->since;
	assert_true(since >= before && since <= hpq_now_ms() / 1000);
	sleep(1);
	round_with(s, "slow", HEALTH_FATAL);  /* worse now: a change, same streak */
	assert_int_equal(f->changes, 2);
	assert_string_equal(f->h.findings[0]->severity, "fatal");
	assert_int_equal(f->h.findings[0]->since, since);
	round_with(s, NULL, 0);
	sleep(1);
	round_with(s, "slow", HEALTH_FATAL);  /* a new streak */
	assert_true(f->h.findings[0]->since > since);
	fixture_free(f);
}

static void message_change_alone_is_no_change(void **state)
{
	struct fixture *f = fixture_new(1);
	struct health_source *s = health_source_new(&f->h, "test");

	health_see(s, HEALTH_STORAGE, "disk-space-low", HEALTH_WARNING, NULL, "9%% free");
	health_done(s);
	health_see(s, HEALTH_STORAGE, "disk-space-low", HEALTH_WARNING, NULL, "8%% free");
	health_done(s);
	assert_int_equal(f->changes, 1);
	assert_string_equal(f->h.findings[0]->message, "8% free"); /* but it is sent */
	health_see(s, HEALTH_STORAGE, "disk-space-low", HEALTH_WARNING, "replace", "8%% free");
	health_done(s);
	assert_int_equal(f->changes, 2);     /* a new action is a change */
	fixture_free(f);
}

static void same_reason_twice_in_a_round(void **state)
{
	struct fixture *f = fixture_new(1);
	struct health_source *s = health_source_new(&f->h, "test");

	health_see(s, HEALTH_STORAGE, "disk-space-low", HEALTH_WARNING, NULL, "/a: 8%% free");
	health_see(s, HEALTH_STORAGE, "disk-space-low", HEALTH_FATAL, NULL, "/b: 1%% free");
	health_see(s, HEALTH_STORAGE, "disk-space-low", HEALTH_WARNING, NULL, "/a: 8%% free");
	health_done(s);
	assert_int_equal(f->h.nfindings, 1);
	assert_string_equal(f->h.findings[0]->severity, "fatal");
	assert_string_equal(f->h.findings[0]->message, "/a: 8% free; /b: 1% free");
	fixture_free(f);
}

static void sources_merge_and_sort(void **state)
{
	struct fixture *f = fixture_new(1);
	struct health_source *a = health_source_new(&f->h, "a");
	struct health_source *b = health_source_new(&f->h, "b");

	health_see(a, HEALTH_RUNTIME, "health-script-timeout", HEALTH_WARNING, NULL, "script x");
	health_see(a, HEALTH_AGENT, "note", HEALTH_INFO, NULL, "just so you know");
	health_done(a);
	health_see(b, HEALTH_RUNTIME, "health-script-timeout", HEALTH_WARNING, NULL, "script y");
	health_see(b, HEALTH_ACCELERATOR, "xid-79", HEALTH_FATAL, "reboot", "off the bus");
	health_done(b);
	assert_int_equal(f->h.nfindings, 3);
	/* Worst first. */
	assert_string_equal(f->h.findings[0]->reason, "xid-79");
	assert_string_equal(f->h.findings[0]->action, "reboot");
	assert_string_equal(f->h.findings[1]->reason, "health-script-timeout");
	assert_non_null(strstr(f->h.findings[1]->message, "script x"));
	assert_non_null(strstr(f->h.findings[1]->message, "script y"));
	assert_string_equal(f->h.findings[2]->severity, "info");

	/* A source that goes takes its findings; the other's stay. */
	f->changes = 0;
	health_source_free(b);
	assert_int_equal(f->changes, 1);
	assert_int_equal(f->h.nfindings, 2);
	assert_null(health_find(&f->h, "accelerator", "xid-79"));
	assert_string_equal(health_find(&f->h, "runtime", "health-script-timeout")->message,
			    "script x");
	fixture_free(f);
}

static void long_and_odd_text_is_cut_and_cleaned(void **state)
{
	struct fixture *f = fixture_new(1);
	struct health_source *s = health_source_new(&f->h, "test");
	char reason[400], msg[3000];

	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	msg[5] = '\n';
	msg[6] = '\033';
	health_see(s, HEALTH_AGENT, reason, HEALTH_INFO, NULL, "%s", msg);
	health_done(s);
	assert_int_equal(strlen(f->h.findings[0]->reason), HEALTH_REASON_MAX - 1);
	assert_int_equal(strlen(f->h.findings[0]->message), HEALTH_MESSAGE_MAX - 1);
	assert_null(strpbrk(f->h.findings[0]->message, "\n\033"));
	fixture_free(f);
}

/* ------------------------------------------------------------ inject */

static void inject_lines(void **state)
{
	struct fixture *f = fixture_new(1);
	struct health_source *s = health_source_new(&f->h, "inject");
	const Hpq__Finding *x;

	monitor_inject_apply(s, "/t/inject",
			     "# a comment\n"
			     "\n"
			     "accelerator xid-79 fatal action=reboot GPU 0 fell off the bus  \n"
			     "storage disk-slow warning\n"
			     "  kernel  spaced   info   with   blanks\n"
			     "gpu bad fatal not a category\n"
			     "kernel oops critical not a severity\n"
			     "kernel short\n"
			     "network x fatal action=explode what\n"
			     "network netif-down fatal action=none eth0 is down\n");
	health_done(s);
	x = health_find(&f->h, "accelerator", "xid-79");
	assert_non_null(x);
	assert_string_equal(x->severity, "fatal");
	assert_string_equal(x->action, "reboot");
	assert_string_equal(x->message, "GPU 0 fell off the bus");
	x = health_find(&f->h, "storage", "disk-slow");
	assert_non_null(x);
	assert_string_equal(x->message, "disk-slow"); /* no message: the reason */
	assert_string_equal(health_find(&f->h, "kernel", "spaced")->message, "with   blanks");
	assert_string_equal(health_find(&f->h, "network", "netif-down")->action, "");
	x = health_find(&f->h, "agent", "health-inject-invalid");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_non_null(strstr(x->message, "/t/inject:6: unknown category 'gpu'"));
	assert_non_null(strstr(x->message, "/t/inject:7: unknown severity 'critical'"));
	assert_non_null(strstr(x->message, "/t/inject:8: expected"));
	assert_non_null(strstr(x->message, "/t/inject:9: unknown action 'explode'"));
	assert_int_equal(f->h.nfindings, 5);

	/* The line goes, the finding goes. */
	monitor_inject_apply(s, "/t/inject", "storage disk-slow warning\n");
	health_done(s);
	assert_int_equal(f->h.nfindings, 1);
	fixture_free(f);
}

/* ------------------------------------------------------------ settings */

static void health_settings(void **state)
{
	struct agent_config c;
	char err[256];

	config_init(&c);
	assert_null(c.health_dir);
	assert_null(c.health_inject);
	assert_int_equal(c.health_interval_s, 60);
	assert_int_equal(c.health_timeout_s, 30);
	assert_int_equal(c.health_threshold, 1);
	assert_int_equal(c.health_disk_warning, 10);
	assert_int_equal(c.health_disk_fatal, 2);
	assert_int_equal(c.health_clock_warning_s, 1);
	assert_int_equal(c.health_clock_fatal_s, 30);
	assert_int_equal(c.health_memory_pressure, 20);

	assert_int_equal(config_set(&c, "health-dir", "/etc/hpq/health.d", err, sizeof(err)), 0);
	assert_string_equal(c.health_dir, "/etc/hpq/health.d");
	assert_int_equal(config_set(&c, "health_interval", "2m", err, sizeof(err)), 0);
	assert_int_equal(c.health_interval_s, 120);
	assert_int_equal(config_set(&c, "health-timeout", "5s", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "health-threshold", "3", err, sizeof(err)), 0);
	assert_int_equal(c.health_threshold, 3);
	assert_int_equal(config_set(&c, "health-disk-warning", "15%", err, sizeof(err)), 0);
	assert_int_equal(c.health_disk_warning, 15);
	assert_int_equal(config_set(&c, "health-disk-fatal", "0", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "health-clock-fatal", "1m", err, sizeof(err)), 0);
	assert_int_equal(c.health_clock_fatal_s, 60);
	assert_int_equal(config_set(&c, "health-memory-pressure", "50", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "health-inject", "/tmp/x", err, sizeof(err)), 0);

	assert_int_equal(config_set(&c, "health-interval", "0", err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "health-interval"));
	assert_int_equal(config_set(&c, "health-interval", "2d", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "health-threshold", "0", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "health-disk-warning", "101", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(config_set(&c, "health-disk-warning", "%", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "health-disk-warning", "1.5", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(config_set(&c, "health-dir", "", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(c.health_interval_s, 120); /* unchanged by the refusals */
	assert_int_equal(c.health_disk_warning, 15);

	/* Checked against each other at the end. */
	assert_int_equal(config_set(&c, "name", "n1", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "health-disk-fatal", "20", err, sizeof(err)), 0);
	assert_int_equal(config_finish(&c, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "health-disk-fatal"));
	assert_int_equal(config_set(&c, "health-disk-fatal", "5", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "health-clock-warning", "2m", err, sizeof(err)), 0);
	assert_int_equal(config_finish(&c, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "health-clock-fatal"));
	assert_int_equal(config_set(&c, "health-clock-warning", "10s", err, sizeof(err)), 0);
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	config_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names),
		cmocka_unit_test(threshold_counts_consecutive_rounds),
		cmocka_unit_test(default_threshold_is_one),
		cmocka_unit_test(since_is_start_of_streak),
		cmocka_unit_test(message_change_alone_is_no_change),
		cmocka_unit_test(same_reason_twice_in_a_round),
		cmocka_unit_test(sources_merge_and_sort),
		cmocka_unit_test(long_and_odd_text_is_cut_and_cleaned),
		cmocka_unit_test(inject_lines),
		cmocka_unit_test(health_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
