/*
 * t_logs: `hpq logs` reads a task's output from the agent that ran it,
 * relayed by hpqd. A task that prints slowly is followed (--follow) from
 * before its first line to its end: every line arrives, in order, and
 * hpq exits 0 once the task has ended. A 3 MB output is paged through
 * (the pieces are 1 MiB) byte for byte. Unknown tasks and tasks that
 * never ran are errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void logs_follow_and_page(void **state)
{
	struct h_cluster *c = *state;
	struct h_out o;
	uint64_t slow, big, waiting;
	char id[32];
	size_t xs = 0;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));

	slow = h_submit(c, "--cpus", "1", "--", "sh", "-c",
			"for i in 1 2 3 4 5 6; do echo step $i; sleep 0.3; done", NULL);
	assert_true(h_wait_state(c, slow, "RUNNING", 30000));
	snprintf(id, sizeof(id), "%llu", (unsigned long long)slow);
	assert_int_equal(h_hpq(c, &o, "logs", "--follow", id, NULL), 0);
	for (int i = 1; i <= 6; i++) {
		char line[32];
		char *p;

		snprintf(line, sizeof(line), "\nstep %d\n", i);
		p = strstr(o.out, line);
		assert_non_null(p);
		if (i < 6) {
			snprintf(line, sizeof(line), "\nstep %d\n", i + 1);
			assert_true(strstr(o.out, line) > p);
		}
	}
	assert_non_null(strstr(o.out, "exit code 0"));
	h_out_free(&o);
	assert_true(h_wait_state(c, slow, "COMPLETED", 30000));

	big = h_submit(c, "--cpus", "1", "--", "sh", "-c",
		       "head -c 3000000 /dev/zero | tr '\\000' x; echo", NULL);
	assert_true(h_wait_state(c, big, "COMPLETED", 30000));
	snprintf(id, sizeof(id), "%llu", (unsigned long long)big);
	assert_int_equal(h_hpq(c, &o, "logs", id, NULL), 0);
	/* The longest run of x: the task's output, whole (headers have x's too). */
	for (char *p = o.out; *p; p++) {
		size_t run = 0;

		while (p[run] == 'x')
			run++;
		if (run > xs)
			xs = run;
		p += run ? run - 1 : 0;
	}
	assert_int_equal(xs, 3000000);
	h_out_free(&o);

	/* Never ran (too big to start) and unknown: errors that say so. */
	waiting = h_submit(c, "--cpus", "2", "--mem", "1G", "--nodes", "2", "--", "true", NULL);
	snprintf(id, sizeof(id), "%llu", (unsigned long long)waiting);
	assert_int_equal(h_hpq(c, &o, "logs", id, NULL), 1);
	assert_non_null(strstr(o.err, "has not run yet"));
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "logs", "999999", NULL), 1);
	assert_non_null(strstr(o.err, "no task 999999"));
	h_out_free(&o);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(logs_follow_and_page, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
