/*
 * t_list_format: what scripts and the shell completion read from
 * `hpq list`, against a real cluster, and the job-control commands'
 * refusals, which need no daemon support.
 *
 * - `list --format COLUMNS` prints exactly those columns, in that order,
 *   with the exit code of a finished task in `exit`; `--noheader` leaves
 *   the header out: `list --format id --noheader --state active` is one id
 *   a line, the running and pending tasks, as the completion asks it.
 * - An unknown column, or --format with --json, is a usage error (2).
 * - `cancel`, `hold`, `release` and `requeue` with neither ids nor
 *   filters are refused (2) and cancel nothing; plain ids still cancel
 *   through the older request, so an older hpqd keeps working.
 * - `update` with an unknown key or a malformed value is refused (2).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Whether text has a line of exactly these whitespace-separated words. */
static bool has_row(const char *text, const char *const *words, size_t n)
{
	char *copy = strdup(text), *save = NULL;
	bool found = false;

	for (char *line = strtok_r(copy, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		char *s2 = NULL, *w = strtok_r(line, " ", &s2);
		size_t i = 0;

		while (w && i < n && strcmp(w, words[i]) == 0) {
			w = strtok_r(NULL, " ", &s2);
			i++;
		}
		found = i == n && !w;
	}
	free(copy);
	return found;
}

static size_t count_lines(const char *text)
{
	size_t n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

static void list_format(void **state)
{
	struct h_cluster *c = *state;
	uint64_t done, run, pend;
	char want[256], ids[32];
	struct h_out o;
	json_t *t;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 1, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));

	done = h_submit(c, "--name", "done", "--", "sh", "-c", "exit 4", NULL);
	assert_true(h_wait_state(c, done, "FAILED", 30000));
	run = h_submit(c, "--name", "run", "--cpus", "1", "--", "sleep", "120", NULL);
	assert_true(h_wait_state(c, run, "RUNNING", 30000));
	pend = h_submit(c, "--name", "pend", "--cpus", "1", "--", "true", NULL);

	/* Chosen columns, in order; the exit code of the finished task. */
	assert_int_equal(h_hpq(c, &o, "list", "--all", "--format", "ID,name,state,exit", NULL), 0);
	{
		const char *header[] = {"ID", "NAME", "STATE", "EXIT"};
		const char *row[] = {ids, "done", "FAILED", "4"};

		snprintf(ids, sizeof(ids), "%" PRIu64, done);
		if (!has_row(o.out, header, 4) || !has_row(o.out, row, 4))
			fail_msg("no header or no row '%s done FAILED 4' in:\n%s", ids, o.out);
		assert_int_equal(count_lines(o.out), 4);
	}
	h_out_free(&o);

	/* The completion's question: the active ids, one a line, no header. */
	assert_int_equal(h_hpq(c, &o, "list", "--format", "id", "--noheader", "--state", "active",
			       NULL),
			 0);
	assert_int_equal(count_lines(o.out), 2);
	snprintf(ids, sizeof(ids), "%" PRIu64, run);
	assert_true(has_row(o.out, (const char *[]){ids}, 1));
	snprintf(ids, sizeof(ids), "%" PRIu64, pend);
	assert_true(has_row(o.out, (const char *[]){ids}, 1));
	h_out_free(&o);

	assert_int_equal(h_hpq(c, &o, "list", "--format", "id,colour", NULL), 2);
	assert_non_null(strstr(o.err, "'colour'"));
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "list", "--format", "id", "--json", NULL), 2);
	h_out_free(&o);

	/* Nothing selected: refused, and nothing is cancelled or held. */
	assert_int_equal(h_hpq(c, &o, "cancel", NULL), 2);
	assert_non_null(strstr(o.err, "--user"));
	h_out_free(&o);
	assert_int_equal(h_hpq(c, NULL, "hold", NULL), 2);
	assert_int_equal(h_hpq(c, NULL, "release", NULL), 2);
	assert_int_equal(h_hpq(c, NULL, "requeue", NULL), 2);
	assert_int_equal(h_hpq(c, NULL, "cancel", "12_[3-1]", NULL), 2);
	snprintf(ids, sizeof(ids), "%" PRIu64, pend);
	assert_int_equal(h_hpq(c, NULL, "update", ids, "colour=red", NULL), 2);
	assert_int_equal(h_hpq(c, NULL, "update", ids, "time=soon", NULL), 2);
	t = h_task(c, run);
	assert_string_equal(h_str(t, "state"), "RUNNING");
	json_decref(t);
	t = h_task(c, pend);
	assert_string_equal(h_str(t, "state"), "PENDING");
	json_decref(t);

	/* Plain ids go the older way and still work. */
	assert_int_equal(h_hpq(c, &o, "cancel", ids, NULL), 0);
	snprintf(want, sizeof(want), "cancelled task %" PRIu64 "\n", pend);
	assert_string_equal(o.out, want);
	h_out_free(&o);
	t = h_task(c, pend);
	assert_string_equal(h_str(t, "state"), "CANCELLED");
	json_decref(t);
	snprintf(ids, sizeof(ids), "%" PRIu64, run);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);
	assert_true(h_wait_state(c, run, "CANCELLED", 30000));
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(list_format, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
