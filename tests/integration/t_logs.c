/*
 * t_logs: `hpq logs` reads a task's output from the agent that ran it,
 * relayed by hpqd. A task that prints slowly is followed (--follow) from
 * before its first line to its end: every line arrives, in order, and
 * hpq exits 0 once the task has ended. A 3 MB output is paged through
 * (the pieces are 1 MiB) byte for byte. Unknown tasks and tasks that
 * never ran are errors. With --json every line is a record {task,
 * attempt, node, stream, offset, text}: the header and the footer are
 * stream "hpq", the task's lines "output", in order, at their offsets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/*
 * `hpq logs ID --json [--follow]`: checks that every line is a record of
 * task id on node1, that the first (offset 0) and the last are hpq's and
 * the others the task's, each starting where the one before ended; returns
 * the task's lines joined with '\n' (malloc'd).
 */
static char *json_log(struct h_cluster *c, uint64_t id, bool follow)
{
	struct h_out o;
	char arg[32], *text = calloc(1, 1);
	size_t n = 0, tlen = 0;
	long long next = 0;

	snprintf(arg, sizeof(arg), "%llu", (unsigned long long)id);
	assert_int_equal(h_hpq(c, &o, "logs", arg, "--json", follow ? "--follow" : NULL, NULL),
			 0);
	for (char *line = o.out; *line; n++) {
		size_t len = strcspn(line, "\n");
		json_error_t jerr;
		json_t *r = json_loadb(line, len, 0, &jerr);
		const char *stream, *t;
		bool last = line[len] == '\n' && line[len + 1] == '\0';

		if (!r)
			fail_msg("not JSON: '%.*s': %s", (int)len, line, jerr.text);
		assert_int_equal(h_int(r, "task"), (long long)id);
		assert_int_equal(h_int(r, "attempt"), 1);
		assert_string_equal(h_str(r, "node"), "node1");
		assert_int_equal(h_int(r, "offset"), next);
		stream = h_str(r, "stream");
		t = h_str(r, "text");
		assert_string_equal(stream, n == 0 || last ? "hpq" : "output");
		if (n == 0 || last)
			assert_memory_equal(t, "==== hpq: task ", 15);
		next += (long long)json_string_length(json_object_get(r, "text")) + 1;
		if (!strcmp(stream, "output")) {
			text = realloc(text, tlen + strlen(t) + 2);
			tlen += (size_t)sprintf(text + tlen, "%s%s", tlen ? "\n" : "", t);
		}
		json_decref(r);
		line += len + (line[len] == '\n');
	}
	assert_true(n >= 2);
	h_out_free(&o);
	return text;
}

static void logs_follow_and_page(void **state)
{
	struct h_cluster *c = *state;
	struct h_out o;
	uint64_t slow, big, waiting;
	char id[32], *text;
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
	text = json_log(c, slow, false);
	assert_string_equal(text, "step 1\nstep 2\nstep 3\nstep 4\nstep 5\nstep 6");
	free(text);

	/* Followed from before the first line, as JSON. */
	slow = h_submit(c, "--cpus", "1", "--", "sh", "-c",
			"for i in 1 2 3; do echo \"line $i\"; sleep 0.3; done; printf 'no newline'",
			NULL);
	assert_true(h_wait_state(c, slow, "RUNNING", 30000));
	text = json_log(c, slow, true);
	assert_string_equal(text, "line 1\nline 2\nline 3\nno newline");
	free(text);

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
	/* As JSON, the 3 MB line comes in records of a piece (1 MiB) at most. */
	assert_int_equal(h_hpq(c, &o, "logs", id, "--json", NULL), 0);
	xs = 0;
	for (char *line = o.out; *line; line += strcspn(line, "\n") + 1) {
		json_t *r = json_loadb(line, strcspn(line, "\n"), 0, NULL);
		size_t len;

		assert_non_null(r);
		len = json_string_length(json_object_get(r, "text"));
		assert_true(len <= (1u << 20));
		if (!strcmp(h_str(r, "stream"), "output"))
			xs += len;
		json_decref(r);
	}
	assert_int_equal(xs, 3000000);
	h_out_free(&o);

	/* Never ran (held) and unknown: errors that say so. */
	waiting = h_submit(c, "--hold", "--", "true", NULL);
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
