/*
 * t_plan: training plans (docs/plans.md) with a real hpqd and two agents,
 * in seconds. Bad input is refused with a clear message and changes
 * nothing; a short plan goes scheduled -> active -> completed by the
 * clock alone; a search splits into two segments when the contiguous
 * window is taken, and the split plan goes active -> between-segments ->
 * active -> completed; an offering whose capacity was taken meanwhile is
 * refused as stale; cancel frees capacity; hpq status lists the plans that
 * have not ended; plans and their states survive a daemon restart.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Runs hpq ARGS expecting exit code `code` and `want` in its stderr. */
static void refused(struct h_cluster *c, int code, const char *want, const char *const *argv)
{
	struct h_out o;
	int rc = h_hpqv(c, &o, argv);

	if (rc != code || !strstr(o.err, want))
		fail_msg("hpq %s %s: exit %d (want %d), stderr '%s' (want '%s')", argv[0], argv[1],
			 rc, code, o.err, want);
	h_out_free(&o);
}

#define REFUSED(c, code, want, ...) refused(c, code, want, (const char *const[]){__VA_ARGS__, NULL})

/* hpq plan search ARGS --json: the offerings (a new reference). */
static json_t *search(struct h_cluster *c, const char *nodes, const char *dur, const char *segs,
		      const char *after)
{
	return h_hpq_json(c, "plan", "search", "--pool", "default", "--nodes", nodes, "--duration",
			  dur, "--max-segments", segs, "--after", after, NULL);
}

static json_t *create(struct h_cluster *c, const char *offer, const char *name)
{
	return h_hpq_json(c, "plan", "create", offer, "--team", "default", "--name", name, NULL);
}

static bool plan_is(struct h_cluster *c, const char *name, const char *state)
{
	json_t *p = h_hpq_json(c, "plan", "show", name, NULL);
	bool ok = !strcmp(h_str(p, "state"), state);

	json_decref(p);
	return ok;
}

/* Is there a `plan` event whose message has both words? */
static bool event_has(struct h_cluster *c, const char *a, const char *b)
{
	json_t *evs = h_hpq_json(c, "events", NULL), *e;
	size_t i;
	bool found = false;

	json_array_foreach(evs, i, e) {
		const char *kind = json_string_value(json_object_get(e, "kind"));
		const char *msg = json_string_value(json_object_get(e, "message"));

		if (kind && msg && !strcmp(kind, "plan") && strstr(msg, a) && strstr(msg, b))
			found = true;
	}
	json_decref(evs);
	return found;
}

static const char *offer_id(json_t *offers, size_t i)
{
	return json_string_value(json_object_get(json_array_get(offers, i), "id"));
}

static void plans(void **state)
{
	struct h_cluster *c = *state;
	json_t *offers, *offers2, *p, *list, *o0, *o1;
	struct h_out out;

	h_daemon_config(c, "[plans]\nreservable = default=100%\nmax_length = 1d\n"
			"end_warning = 1s\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "1G");
	h_agent_start(c, "node2", 0, 2, "1G");
	assert_true(h_wait_nodes(c, 2, 30000));

	/* bad input: refused, with the reason */
	REFUSED(c, 1, "unknown pool 'nope'", "plan", "search", "--pool", "nope", "--nodes", "1",
		"--duration", "10s");
	REFUSED(c, 2, "--duration", "plan", "search", "--pool", "default", "--nodes", "1",
		"--duration", "soon");
	REFUSED(c, 2, "--duration must be longer than 0", "plan", "search", "--pool", "default",
		"--nodes", "1", "--duration", "0");
	REFUSED(c, 2, "--max-segments", "plan", "search", "--pool", "default", "--nodes", "1",
		"--duration", "10s", "--max-segments", "6");
	REFUSED(c, 1, "only 2 nodes", "plan", "search", "--pool", "default", "--nodes", "3",
		"--duration", "10s");
	REFUSED(c, 1, "in the past", "plan", "search", "--pool", "default", "--nodes", "1",
		"--duration", "10s", "--after", "@1000000");
	REFUSED(c, 1, "longer than [plans] max_length", "plan", "search", "--pool", "default",
		"--nodes", "1", "--duration", "2d");
	REFUSED(c, 1, "minimum segment is longer", "plan", "search", "--pool", "default",
		"--nodes", "1", "--duration", "10s", "--max-segments", "2", "--min-segment",
		"20s");
	REFUSED(c, 1, "unknown offering 'o999'", "plan", "create", "o999", "--team", "default",
		"--name", "x");
	REFUSED(c, 1, "unknown team 'nobody'", "plan", "create", "o1", "--team", "nobody",
		"--name", "x");
	REFUSED(c, 2, "give --team and --name", "plan", "create", "o1", "--team", "default");
	list = h_hpq_json(c, "plan", "list", "--all", NULL);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);

	/* a short plan follows the clock to its end */
	offers = search(c, "1", "2s", "1", "now");
	assert_true(json_array_size(offers) >= 1);
	p = create(c, offer_id(offers, 0), "short");
	assert_string_equal(h_str(p, "team"), "default");
	json_decref(p);
	json_decref(offers);
	REFUSED(c, 1, "unknown offering", "plan", "create", "o1", "--team", "default", "--name",
		"again");
	assert_true(H_WAIT_FOR(c, plan_is(c, "short", "completed"), 30000));
	assert_true(event_has(c, "plan short", "scheduled"));
	assert_true(event_has(c, "plan short", "completed"));

	/* both nodes taken from +6s to +12s: an 8s run splits around it */
	offers = search(c, "2", "6s", "1", "+6s");
	p = create(c, offer_id(offers, 0), "blocker");
	json_decref(p);
	json_decref(offers);
	offers = search(c, "2", "8s", "2", "now");
	offers2 = search(c, "2", "8s", "2", "now");
	assert_true(json_array_size(offers) >= 2);
	o0 = json_array_get(offers, 0);
	o1 = json_array_get(offers, 1);
	assert_int_equal(h_int(o0, "breaks"), 1);
	assert_int_equal(json_array_size(json_object_get(o0, "segments")), 2);
	assert_int_equal(h_int(o1, "breaks"), 0);
	assert_true(strcmp(h_str(o0, "finish"), h_str(o1, "finish")) < 0);
	p = create(c, offer_id(offers, 0), "split");
	assert_int_equal(json_array_size(json_object_get(p, "segments")), 2);
	json_decref(p);
	/* the same capacity, offered before the create: stale now */
	REFUSED(c, 1, "is stale", "plan", "create", offer_id(offers2, 0), "--team", "default",
		"--name", "late");
	REFUSED(c, 1, "exists", "plan", "create", offer_id(offers2, 1), "--team", "default",
		"--name", "split");
	json_decref(offers);
	json_decref(offers2);

	/* through the break and back */
	assert_true(H_WAIT_FOR(c, plan_is(c, "split", "between-segments"), 30000));
	assert_true(H_WAIT_FOR(c, plan_is(c, "split", "active"), 30000));
	assert_true(event_has(c, "plan split", "segment 2 of 2"));
	assert_true(H_WAIT_FOR(c, plan_is(c, "split", "completed"), 30000));

	/* cancel frees what is left; twice is refused */
	offers = search(c, "2", "1h", "1", "+1h");
	p = create(c, offer_id(offers, 0), "later");
	json_decref(p);
	json_decref(offers);
	assert_int_equal(h_hpq(c, NULL, "plan", "cancel", "later", NULL), 0);
	REFUSED(c, 1, "already cancelled", "plan", "cancel", "later");
	REFUSED(c, 1, "unknown plan 'gone'", "plan", "cancel", "gone");
	offers = search(c, "2", "1h", "1", "+1h");
	p = create(c, offer_id(offers, 0), "kept");
	json_decref(p);
	json_decref(offers);
	list = h_hpq_json(c, "plan", "list", NULL);
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(h_str(json_array_get(list, 0), "name"), "kept");
	json_decref(list);
	/* hpq status lists it too */
	p = h_hpq_json(c, "status", NULL);
	list = json_object_get(p, "plans");
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(h_str(json_array_get(list, 0), "state"), "scheduled");
	json_decref(p);

	/* a restart keeps every plan and its state */
	assert_int_equal(h_daemon_stop(c, SIGTERM), 0);
	h_daemon_start(c);
	list = h_hpq_json(c, "plan", "list", "--all", NULL);
	assert_int_equal(json_array_size(list), 5);
	json_decref(list);
	assert_true(plan_is(c, "kept", "scheduled"));
	assert_true(plan_is(c, "later", "cancelled"));
	assert_true(plan_is(c, "split", "completed"));
	p = h_hpq_json(c, "plan", "show", "kept", NULL);
	assert_int_equal(json_array_size(json_object_get(p, "segments")), 1);
	assert_int_equal(h_int(p, "nodes"), 2);
	json_decref(p);
	/* and its capacity: the same window is not offered again */
	assert_int_equal(h_hpq(c, &out, "plan", "search", "--pool", "default", "--nodes", "1",
			       "--duration", "1h", "--after", "+1h", "--before", "+2h", NULL), 0);
	assert_non_null(strstr(out.out, "nothing fits"));
	h_out_free(&out);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(plans, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
