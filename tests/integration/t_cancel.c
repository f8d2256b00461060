/*
 * t_cancel: cancel a pending and a running task. One agent with room for
 * one task: the first task runs (a shell that writes its pid, which is
 * also its process group id since the agent starts it in its own session,
 * and waits on a background sleep in the same group), the second waits.
 * Cancelling the pending one ends it CANCELLED at once and it never runs;
 * cancelling the running one ends it CANCELLED once the agent reports the
 * exit, and by then its whole process group is gone. Cancelling a task
 * that has ended, or one that does not exist, is an error. A cancel of
 * several pending tasks at once records one cancel event for all of them
 * and each one's end, where a single cancel records both for its task.
 *
 * A release of many held tasks and a cancel of many pending ones, by a
 * filter and by ids (each one bulk change in the store), survive hpqd
 * killed with SIGKILL as soon as the last cancel is answered: after a
 * restart every task is as it was told, ended at a time, with its event,
 * and hpq acct lists the cancelled ones.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static bool group_gone(pid_t pgid)
{
	return kill(-pgid, 0) < 0 && errno == ESRCH;
}

/* Three held tasks cancelled by a filter: CANCELLED, each with its end
 * event; the cancel itself is one event, naming how many. */
static void cancel_many_pending(struct h_cluster *c)
{
	uint64_t id[3];
	json_t *evs, *ev;
	bool summary = false;
	size_t i;

	for (i = 0; i < 3; i++)
		id[i] = h_submit(c, "--hold", "--name", "many", "--", "true", NULL);
	assert_int_equal(h_hpq(c, NULL, "cancel", "--name", "many", "--state", "pending", NULL),
			 0);
	for (i = 0; i < 3; i++) {
		json_t *t = h_task(c, id[i]);

		assert_string_equal(h_str(t, "state"), "CANCELLED");
		json_decref(t);
		assert_true(h_task_has_event(c, id[i], "end", "CANCELLED: cancelled by "));
		assert_false(h_task_has_event(c, id[i], "cancel", ""));
	}
	evs = h_hpq_json(c, "events", NULL);
	json_array_foreach(json_is_array(evs) ? evs : json_object_get(evs, "events"), i, ev)
		summary |= !strcmp(h_str(ev, "kind"), "cancel") &&
			   strstr(h_str(ev, "message"), "3 pending tasks cancelled by ") != NULL;
	json_decref(evs);
	assert_true(summary);
}

static void cancel_pending_and_running(void **state)
{
	struct h_cluster *c = *state;
	char cmd[256], ids[32];
	struct h_out o;
	uint64_t running, pending, other;
	json_t *t;
	pid_t pgid = 0;
	long long cycles;
	char *text;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 1, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));

	snprintf(cmd, sizeof(cmd), "echo $$ > %s; sleep 120 & wait", h_path(c, "running.pid"));
	running = h_submit(c, "--cpus", "1", "--", "sh", "-c", cmd, NULL);
	assert_true(h_wait_state(c, running, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, (text = h_read_file(h_path(c, "running.pid"))) &&
					  (pgid = (pid_t)atoi(text)) > 0, 30000));
	free(text);
	assert_false(group_gone(pgid));
	/* Both the shell and its sleep are in the group. */
	assert_true(H_WAIT_FOR(c, ({
		char out[64];
		FILE *p;
		int n = 0;
		snprintf(cmd, sizeof(cmd), "pgrep -g %d | wc -l", (int)pgid);
		if ((p = popen(cmd, "r"))) {
			if (fgets(out, sizeof(out), p))
				n = atoi(out);
			pclose(p);
		}
		n >= 2;
	}), 30000));

	/* The second cannot start while the first holds the only CPU: once
	 * the dispatcher has run a cycle since its submit, and the agent has
	 * sent two more heartbeats, it still waits. */
	snprintf(cmd, sizeof(cmd), "touch %s", h_path(c, "pending-ran"));
	cycles = h_status_counter(c, "cycles");
	pending = h_submit(c, "--cpus", "1", "--", "sh", "-c", cmd, NULL);
	assert_true(h_wait_counter(c, "cycles", cycles + 1, 30000));
	assert_true(h_wait_heartbeats(c, "node1", 2, 30000));
	t = h_task(c, pending);
	assert_non_null(t);
	assert_string_equal(h_str(t, "state"), "PENDING");
	assert_int_equal(h_int(t, "attempts"), 0);
	json_decref(t);

	/* Cancel the pending one: final at once. */
	snprintf(ids, sizeof(ids), "%" PRIu64, pending);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);
	t = h_task(c, pending);
	assert_string_equal(h_str(t, "state"), "CANCELLED");
	assert_int_equal(h_int(t, "attempts"), 0);
	json_decref(t);
	assert_true(h_task_has_event(c, pending, "cancel", "cancelled while pending"));

	/* Cancel the running one: CANCELLED once the agent has killed it. */
	snprintf(ids, sizeof(ids), "%" PRIu64, running);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);
	assert_true(h_wait_state(c, running, "CANCELLED", 30000));
	assert_true(H_WAIT_FOR(c, group_gone(pgid), 30000));
	t = h_task(c, running);
	assert_non_null(json_object_get(t, "end_time"));
	assert_false(json_is_null(json_object_get(t, "end_time")));
	json_decref(t);

	/* The freed slot must not have started the cancelled pending task. */
	other = h_submit(c, "--cpus", "1", "--", "true", NULL);
	assert_true(h_wait_state(c, other, "COMPLETED", 30000));
	assert_int_equal(access(h_path(c, "pending-ran"), F_OK), -1);
	t = h_task(c, pending);
	assert_string_equal(h_str(t, "state"), "CANCELLED");
	json_decref(t);

	/* Errors: a finished task, a task that does not exist. */
	snprintf(ids, sizeof(ids), "%" PRIu64, other);
	assert_int_not_equal(h_hpq(c, &o, "cancel", ids, NULL), 0);
	assert_true(strlen(o.err) > 0);
	h_out_free(&o);
	t = h_task(c, other);
	assert_string_equal(h_str(t, "state"), "COMPLETED");
	json_decref(t);
	assert_int_not_equal(h_hpq(c, &o, "cancel", "999999", NULL), 0);
	assert_true(strlen(o.err) > 0);
	h_out_free(&o);
	cancel_many_pending(c);
	h_pass(c);
}

#define BULK_CANCEL 40
#define BULK_RELEASE 20
#define BULK_IDS 5

static void bulk_survives_kill(void **state)
{
	struct h_cluster *c = *state;
	uint64_t cancel[BULK_CANCEL + BULK_IDS], release[BULK_RELEASE];
	char ids[BULK_IDS][24];
	struct h_out o;
	json_t *j, *row;
	size_t i, acct = 0;

	h_daemon_start(c);
	for (i = 0; i < BULK_CANCEL; i++)
		cancel[i] = h_submit(c, "--hold", "--name", "bulkc", "--", "true", NULL);
	for (i = 0; i < BULK_RELEASE; i++)
		release[i] = h_submit(c, "--hold", "--name", "bulkr", "--", "true", NULL);
	for (i = 0; i < BULK_IDS; i++) {
		cancel[BULK_CANCEL + i] = h_submit(c, "--hold", "--name", "bulkc", "--", "true",
						   NULL);
		snprintf(ids[i], sizeof(ids[i]), "%" PRIu64, cancel[BULK_CANCEL + i]);
	}
	assert_int_equal(h_hpq(c, &o, "release", "--name", "bulkr", NULL), 0);
	assert_non_null(strstr(o.out, "released 20 tasks"));
	h_out_free(&o);
	/* Plain ids: CancelRequest.ids, the other way to a batch. */
	assert_int_equal(h_hpq(c, NULL, "cancel", ids[0], ids[1], ids[2], ids[3], ids[4], NULL),
			 0);
	assert_int_equal(h_hpq(c, &o, "cancel", "--name", "bulkc", "--state", "pending", NULL), 0);
	assert_non_null(strstr(o.out, "cancelled 40 tasks"));
	h_out_free(&o);
	h_daemon_stop(c, SIGKILL);
	h_daemon_start(c);

	for (i = 0; i < BULK_CANCEL + BULK_IDS; i++) {
		json_t *t = h_task(c, cancel[i]);

		assert_string_equal(h_str(t, "state"), "CANCELLED");
		assert_false(json_is_null(json_object_get(t, "end_time")));
		json_decref(t);
		assert_true(h_task_has_event(c, cancel[i], "end", "CANCELLED: cancelled by "));
	}
	for (i = 0; i < BULK_RELEASE; i++) {
		json_t *t = h_task(c, release[i]);

		assert_string_equal(h_str(t, "state"), "PENDING");
		assert_false(json_is_true(json_object_get(t, "held")));
		json_decref(t);
		assert_true(h_task_has_event(c, release[i], "release", "released by "));
	}
	j = h_hpq_json(c, "acct", "--state", "cancelled", NULL);
	json_array_foreach(j, i, row)
		acct += !strcmp(h_str(row, "name"), "bulkc");
	json_decref(j);
	assert_int_equal(acct, BULK_CANCEL + BULK_IDS);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(cancel_pending_and_running, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(bulk_survives_kill, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
