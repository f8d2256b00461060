/*
 * t_roles: roles with real users and groups (useradd/groupadd, names
 * hpqt-*, removed at the end; leftovers of an earlier run are removed
 * first). The CLI runs as each of them over the Unix socket:
 *
 * - a member of @hpqt-ml submits to team vision; bob, in no group of it,
 *   is refused with a message that says so;
 * - bob cannot cancel alice's task nor read its output: the refusals name
 *   who may, and appear as "denied" events with bob as the actor;
 * - bob sees alice's task listed, with its argv and cwd hidden (null,
 *   redacted) in list and show --json; he sees his own; alice, lena (an
 *   admin of vision via @hpqt-leads) and root see alice's;
 * - lena cancels alice's task and sets vision's members, not its weight;
 * - hpqt-adm, in [auth] admin_group, administers: creates a team, cancels
 *   bob's task;
 * - with [auth] private_data = no, bob sees alice's argv.
 */
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *const users[] = { "hpqt-alice", "hpqt-bob", "hpqt-lena", "hpqt-adm" };
static const char *const groups[] = { "hpqt-ml", "hpqt-leads", "hpqt-admins" };

static void sh(const char *cmd)
{
	if (system(cmd) != 0)
		fail_msg("'%s' failed", cmd);
}

/* Removes the users and groups, tolerating those that are not there. */
static void remove_accounts(void)
{
	char cmd[128];

	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		snprintf(cmd, sizeof(cmd), "userdel %s >/dev/null 2>&1", users[i]);
		if (system(cmd) < 0)
			fail_msg("cannot run userdel");
	}
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		snprintf(cmd, sizeof(cmd), "groupdel %s >/dev/null 2>&1", groups[i]);
		if (system(cmd) < 0)
			fail_msg("cannot run groupdel");
	}
}

static void as(struct h_cluster *c, const char *user)
{
	const struct passwd *pw = user ? getpwnam(user) : NULL;

	if (user && !pw)
		fail_msg("no user %s", user);
	h_cli_as(c, pw ? pw->pw_uid : 0, pw ? pw->pw_gid : 0);
}

/* The task with id in `hpq list --all --json` as the current CLI user. */
static json_t *listed(struct h_cluster *c, uint64_t id)
{
	json_t *all = h_hpq_json(c, "list", "--all", NULL), *t = h_find_task(all, id);

	if (!t)
		fail_msg("task %" PRIu64 " is not listed", id);
	json_incref(t);
	json_decref(all);
	return t;
}

/* argv and cwd withheld (null, redacted), or shown ("sleep 600"). */
static void assert_private(json_t *t, bool hidden)
{
	json_t *argv = json_object_get(t, "argv");

	if (hidden) {
		assert_true(json_is_null(argv));
		assert_true(json_is_null(json_object_get(t, "cwd")));
		assert_true(json_is_true(json_object_get(t, "redacted")));
	} else {
		assert_true(json_is_array(argv));
		assert_string_equal(json_string_value(json_array_get(argv, 0)), "sleep");
		assert_true(json_is_string(json_object_get(t, "cwd")));
		assert_true(json_is_false(json_object_get(t, "redacted")));
	}
	json_decref(t);
}

static void assert_both(struct h_cluster *c, uint64_t id, bool hidden)
{
	assert_private(listed(c, id), hidden);
	assert_private(h_task(c, id), hidden);
}

/* A "denied" event by actor whose message holds text. */
static bool has_denied(struct h_cluster *c, const char *actor, const char *text)
{
	json_t *evs = h_hpq_json(c, "events", "--limit", "10000", NULL), *ev;
	bool found = false;
	size_t i;

	json_array_foreach(evs, i, ev) {
		if (!strcmp(h_str(ev, "kind"), "denied") && !strcmp(h_str(ev, "actor"), actor) &&
		    strstr(h_str(ev, "message"), text))
			found = true;
	}
	json_decref(evs);
	return found;
}

static void roles(void **state)
{
	struct h_cluster *c = *state;
	struct h_out o;
	uint64_t a, b, b2;
	char ida[32], idb[32], idb2[32];
	json_t *j;

	remove_accounts();
	sh("groupadd hpqt-ml && groupadd hpqt-leads && groupadd hpqt-admins");
	sh("useradd -M -N -G hpqt-ml hpqt-alice && useradd -M -N hpqt-bob && "
	   "useradd -M -N -G hpqt-leads hpqt-lena && useradd -M -N -G hpqt-admins hpqt-adm");

	h_daemon_config(c, "[auth]\nadmin_group = hpqt-admins\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 4, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));

	/* root makes team vision: members @hpqt-ml, admins @hpqt-leads. */
	assert_int_equal(h_hpq(c, NULL, "team", "add", "vision", "--members", "@hpqt-ml",
			       "--admins", "@hpqt-leads", NULL), 0);
	j = h_hpq_json(c, "team", "show", "vision", NULL);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "members"), 0)),
			    "@hpqt-ml");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "admins"), 0)),
			    "@hpqt-leads");
	json_decref(j);
	assert_int_equal(h_hpq(c, &o, "team", "list", NULL), 0);
	assert_non_null(strstr(o.out, "ADMINS"));
	assert_non_null(strstr(o.out, "@hpqt-leads"));
	h_out_free(&o);

	/* A member through @hpqt-ml submits; bob is not a member. */
	as(c, "hpqt-alice");
	a = h_submit(c, "--team", "vision", "--", "sleep", "600", NULL);
	snprintf(ida, sizeof(ida), "%" PRIu64, a);
	as(c, "hpqt-bob");
	assert_int_equal(h_hpq(c, &o, "submit", "--team", "vision", "--", "sleep", "600", NULL),
			 1);
	assert_non_null(strstr(o.err, "hpqt-bob is not a member of team vision"));
	h_out_free(&o);
	b = h_submit(c, "--team", "default", "--", "sleep", "600", NULL);
	snprintf(idb, sizeof(idb), "%" PRIu64, b);
	assert_true(h_wait_state(c, a, "RUNNING", 30000));

	/* bob may neither cancel alice's task nor read its output. */
	assert_int_equal(h_hpq(c, &o, "cancel", ida, NULL), 1);
	assert_non_null(strstr(o.err, "is hpqt-alice's: only its owner, admins of team vision "
			       "and cluster administrators may cancel it"));
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "logs", ida, NULL), 1);
	assert_non_null(strstr(o.err, "may read its output"));
	h_out_free(&o);
	assert_string_equal(h_str(j = h_task(c, a), "state"), "RUNNING");
	json_decref(j);

	/* He lists it, without its private data; his own he sees whole. */
	assert_both(c, a, true);
	assert_both(c, b, false);
	assert_int_equal(h_hpq(c, &o, "show", ida, NULL), 0);
	assert_non_null(strstr(o.out, "(hidden)"));
	assert_null(strstr(o.out, "sleep 600"));
	h_out_free(&o);

	/* Both refusals are in the event log, with who asked. */
	as(c, NULL);
	assert_true(has_denied(c, "hpqt-bob", "may cancel it"));
	assert_true(has_denied(c, "hpqt-bob", "may read its output"));
	assert_true(has_denied(c, "hpqt-bob", "not a member of team vision"));

	/* The owner, the team's admin and root see it whole. */
	assert_both(c, a, false);
	as(c, "hpqt-alice");
	assert_both(c, a, false);
	as(c, "hpqt-lena");
	assert_both(c, a, false);
	assert_both(c, b, true);
	/* Her `hpq logs` is not refused; the file is there once the agent started it. */
	if (h_hpq(c, &o, "logs", ida, NULL) != 0)
		assert_null(strstr(o.err, "may read its output"));
	h_out_free(&o);
	if (!H_WAIT_FOR(c, h_hpq(c, NULL, "logs", ida, NULL) == 0, 30000))
		fail_msg("the team admin cannot read task %s's output", ida);

	/* lena, an admin of vision, cancels alice's task ... */
	assert_int_equal(h_hpq(c, NULL, "cancel", ida, NULL), 0);
	assert_true(h_wait_state(c, a, "CANCELLED", 30000));
	/* ... and not bob's, in another team. */
	assert_int_equal(h_hpq(c, &o, "cancel", idb, NULL), 1);
	h_out_free(&o);
	/* She sets vision's members, not its weight. */
	assert_int_equal(h_hpq(c, NULL, "team", "set", "vision", "--members",
			       "@hpqt-ml,hpqt-bob", NULL), 0);
	assert_int_equal(h_hpq(c, &o, "team", "set", "vision", "--weight", "9", NULL), 1);
	assert_non_null(strstr(o.err, "members only"));
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "team", "add", "lenas", NULL), 1);
	h_out_free(&o);

	/* bob is a member now. */
	as(c, "hpqt-bob");
	b2 = h_submit(c, "--team", "vision", "--", "sleep", "600", NULL);
	snprintf(idb2, sizeof(idb2), "%" PRIu64, b2);
	assert_int_equal(h_hpq(c, NULL, "cancel", idb2, NULL), 0);

	/* A member of [auth] admin_group administers. */
	as(c, "hpqt-adm");
	j = h_hpq_json(c, "version", NULL);
	assert_true(json_is_true(json_object_get(json_object_get(j, "server"), "admin")));
	json_decref(j);
	assert_both(c, b, false);
	assert_int_equal(h_hpq(c, NULL, "team", "add", "hpqt-made", NULL), 0);
	assert_int_equal(h_hpq(c, NULL, "cancel", idb, NULL), 0);
	assert_true(h_wait_state(c, b, "CANCELLED", 30000));
	assert_true(h_wait_state(c, b2, "CANCELLED", 30000));

	/* private_data = no opens them to everyone. */
	as(c, NULL);
	assert_int_equal(h_daemon_stop(c, SIGTERM), 0);
	h_daemon_config(c, "[auth]\nadmin_group = hpqt-admins\nprivate_data = no\n");
	h_daemon_start(c);
	as(c, "hpqt-bob");
	assert_both(c, a, false);
	as(c, NULL);

	remove_accounts();
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(roles, h_setup, h_teardown),
	};
	int r;

	r = cmocka_run_group_tests(tests, NULL, NULL);
	remove_accounts();
	return r;
}
