/*
 * t_upgrade: hpq upgrade-check and the compatibility promise against a
 * real hpqd and agents of mixed releases.
 *
 *   - A client of protocol 1 (the release before this one) is served: its
 *     Hello is answered and its ListRequest with the older `state` field
 *     listed; both uses are recorded as deprecated, with who. A Hello older
 *     than protocol_min, or newer than hpqd's, is refused with a message
 *     that says what to upgrade.
 *   - The cluster: an agent of this release, one announcing 0.1.0 on
 *     protocol 1 (HPQ_TEST_AGENT_ANNOUNCE), a drained one; a running task
 *     of the non-preemptible class "inference"; hpqd.conf with the
 *     deprecated [nodes] unreachable_after. The catalogue is the shipped
 *     one plus a future 0.3.0 (protocol 3, from 2; schema + 1; without
 *     [nodes] unreachable_after).
 *   - hpq upgrade-check --json to the default (this release): agents and
 *     client in the window, deprecated use WARNING, no migration, the
 *     drained node WARNING (within max_unhealthy_percent), the task
 *     WARNING, the keys known; exit 3.
 *   - --target 0.3.0: the old agent ERROR, deprecated use ERROR, the
 *     migration WARNING for want of a backup until hpqd --backup makes one
 *     (then PASSING, naming it), the config key ERROR; exit 4.
 *   - The record survives a restart of hpqd; hpqd --check notes the
 *     deprecated key.
 *   - An unknown --target, an older one, and a malformed catalogue are
 *     clear errors (exit 1).
 */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "error.h"
#include "frame.h"
#include "hpq.h"
#include "msg.h"

#include "harness.h"

/* ---------------------------------------------------------------- a client of another protocol */

static int raw_unix(struct h_cluster *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void raw_send(int fd, Hpq__Envelope *env)
{
	size_t len;
	uint8_t *buf = hpq_msg_encode(env, &len);
	ssize_t r = send(fd, buf, len, MSG_NOSIGNAL);

	assert_true(r == (ssize_t)len || (r < 0 && (errno == EPIPE || errno == ECONNRESET)));
	free(buf);
}

/* The next whole frame, or NULL when the connection closes or 30 s pass. */
static Hpq__Envelope *raw_next(int fd, struct hpq_framer *f)
{
	int64_t end = h_now_ms() + 30000;

	for (;;) {
		const uint8_t *p;
		size_t len;
		uint8_t buf[4096];
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t n;

		if (hpq_framer_next(f, &p, &len) > 0)
			return hpq_msg_decode(p, len);
		if (h_now_ms() >= end || poll(&pfd, 1, 1000) < 0)
			return NULL;
		if (!(pfd.revents & (POLLIN | POLLHUP)))
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0 || hpq_framer_feed(f, buf, (size_t)n) < 0)
			return NULL;
	}
}

static Hpq__Envelope *hello(int fd, struct hpq_framer *f, uint32_t protocol)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Hello h = HPQ__HELLO__INIT;

	h.role = HPQ__ROLE__ROLE_CLIENT;
	h.protocol_version = protocol;
	h.software_version = (char *)"0.1.0";
	h.name = (char *)"old-client";
	env.id = 1;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &h;
	raw_send(fd, &env);
	return raw_next(fd, f);
}

/* Protocol 1 is served, its `state` field included; outside the window,
 * a clear refusal. */
static void old_clients(struct h_cluster *c, uint64_t running)
{
	struct hpq_framer f;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *r;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	int fd = raw_unix(c);
	bool seen = false;

	hpq_framer_init(&f, HPQ_FRAME_MAX);
	r = hello(fd, &f, 1);
	assert_non_null(r);
	assert_int_equal(r->body_case, HPQ__ENVELOPE__BODY_HELLO_REPLY);
	assert_int_equal(r->hello_reply->protocol_version, 1);
	hpq_msg_free(r);
	list.state = (char *)"running";
	env.id = 2;
	env.body_case = HPQ__ENVELOPE__BODY_LIST;
	env.list = &list;
	raw_send(fd, &env);
	r = raw_next(fd, &f);
	assert_non_null(r);
	if (r->body_case != HPQ__ENVELOPE__BODY_LIST_REPLY)
		fail_msg("a protocol 1 list got %s", hpq_msg_name(r));
	for (size_t i = 0; i < r->list_reply->n_tasks; i++) {
		assert_string_equal(r->list_reply->tasks[i]->state, "RUNNING");
		seen = seen || r->list_reply->tasks[i]->id == running;
	}
	assert_true(seen);
	hpq_msg_free(r);
	hpq_framer_release(&f);
	close(fd);

	for (int i = 0; i < 2; i++) {
		uint32_t p = i ? HPQ_PROTOCOL_VERSION + 1 : HPQ_PROTOCOL_MIN - 1;
		const char *want = i ? "upgrade hpqd first" : "too old";

		fd = raw_unix(c);
		hpq_framer_init(&f, HPQ_FRAME_MAX);
		r = hello(fd, &f, p);
		if (!r || r->body_case != HPQ__ENVELOPE__BODY_ERROR ||
		    !strstr(r->error->message, want))
			fail_msg("Hello with protocol %u: wanted an Error saying '%s', got %s", p,
				 want, r ? (r->body_case == HPQ__ENVELOPE__BODY_ERROR
						    ? r->error->message : hpq_msg_name(r))
					 : "nothing");
		assert_int_equal(r->error->code, HPQ_EVERSION);
		hpq_msg_free(r);
		hpq_framer_release(&f);
		close(fd);
	}
}

/* ---------------------------------------------------------------- upgrade-check */

/* The shipped catalogue and a future release that drops protocol 1. */
static void write_catalogue(struct h_cluster *c)
{
	json_error_t je;
	json_t *cat = json_load_file(HPQ_SOURCE_DIR "/dist/versions.json", 0, &je), *next = NULL;
	json_t *rels = json_object_get(cat, "releases"), *r, *keys, *k;
	size_t i;

	assert_non_null(cat);
	json_array_foreach(rels, i, r)
		if (!strcmp(h_str(r, "version"), HPQ_VERSION))
			next = json_deep_copy(r);
	assert_non_null(next);
	json_object_set_new(next, "version", json_string("0.3.0"));
	json_object_set_new(next, "released", json_string("2027-06-01"));
	json_object_set_new(next, "end_of_standard_support", json_string("2028-06-01"));
	json_object_set_new(next, "end_of_extended_support", json_string("2029-06-01"));
	json_object_set_new(next, "protocol", json_integer(HPQ_PROTOCOL_VERSION + 1));
	json_object_set_new(next, "protocol_min", json_integer(HPQ_PROTOCOL_VERSION));
	json_object_set_new(next, "schema", json_integer(h_int(next, "schema") + 1));
	json_object_set_new(next, "default", json_false());
	keys = json_object_get(next, "config_keys");
	json_array_foreach(keys, i, k)
		if (!strcmp(json_string_value(k), "nodes.unreachable_after"))
			break;
	assert_true(i < json_array_size(keys));
	json_array_remove(keys, i);
	json_array_append_new(rels, next);
	assert_int_equal(json_dump_file(cat, h_path(c, "versions.json"), JSON_INDENT(2)), 0);
	json_decref(cat);
}

struct check_run {
	int status;
	json_t *v;
	char *err;
};

static struct check_run upgrade_check(struct h_cluster *c, const char *target)
{
	struct h_out o;
	struct check_run run = { 0 };
	json_error_t je;

	if (target)
		run.status = h_hpq(c, &o, "upgrade-check", "--target", target, "--json", NULL);
	else
		run.status = h_hpq(c, &o, "upgrade-check", "--json", NULL);
	run.v = json_loads(o.out, 0, &je);
	run.err = strdup(o.err);
	h_out_free(&o);
	return run;
}

static void run_free(struct check_run *run)
{
	json_decref(run->v);
	free(run->err);
}

static json_t *check(struct check_run *run, const char *id)
{
	json_t *e;
	size_t i;

	if (!run->v)
		fail_msg("hpq upgrade-check printed no JSON (exit %d): %s", run->status, run->err);
	json_array_foreach(json_object_get(run->v, "checks"), i, e)
		if (!strcmp(h_str(e, "id"), id))
			return e;
	fail_msg("no check %s", id);
	return NULL;
}

/* Check id has status, and if mention, an affected object that says it. */
static void expect(struct check_run *run, const char *id, const char *status,
		   const char *mention)
{
	json_t *e = check(run, id), *a;
	size_t i;
	bool found = !mention;

	json_array_foreach(json_object_get(e, "affected"), i, a)
		found = found || strstr(json_string_value(a), mention);
	if (strcmp(h_str(e, "status"), status) || !found) {
		char *dump = json_dumps(e, JSON_INDENT(2));

		fail_msg("%s: wanted %s mentioning '%s', got %s", id, status,
			 mention ? mention : "", dump);
	}
	if (strcmp(status, "PASSING"))
		assert_true(*h_str(e, "recommendation"));
}

static void upgrade(void **state)
{
	struct h_cluster *c = *state;
	char conf[1024], cmd[2048], who[256];
	struct check_run run;
	struct passwd *me;
	struct h_out o;
	uint64_t id;

	write_catalogue(c);
	snprintf(conf, sizeof(conf),
		 "[versions]\ncatalog = %s\n"
		 "[nodes]\nunreachable_after = 30\n"
		 "[repair]\nmax_unhealthy_percent = 50\n",
		 h_path(c, "versions.json"));
	h_daemon_config(c, conf);
	h_daemon_start(c);
	h_agent_start(c, "cur1", 0, 2, "1G");
	assert_int_equal(setenv("HPQ_TEST_AGENT_ANNOUNCE", "0.1.0:1", 1), 0);
	h_agent_start(c, "old1", 0, 2, "1G");
	assert_int_equal(unsetenv("HPQ_TEST_AGENT_ANNOUNCE"), 0);
	h_agent_start(c, "drn1", 0, 2, "1G");
	assert_true(h_wait_nodes(c, 3, 30000));
	assert_int_equal(h_hpq(c, NULL, "node", "drain", "drn1", "--reason", "upgrade test",
			       NULL), 0);
	id = h_submit(c, "--class", "inference", "--cpus", "1", "--", "sleep", "600", NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));

	old_clients(c, id);

	/* hpq versions shows the old agent as 0.1.0. */
	{
		json_t *v = h_hpq_json(c, "versions", NULL), *a;
		size_t i;
		bool old = false;

		json_array_foreach(json_object_get(v, "agents"), i, a)
			old = old || (!strcmp(h_str(a, "node"), "old1") &&
				      !strcmp(h_str(a, "version"), "0.1.0"));
		assert_true(old);
		json_decref(v);
	}

	/* To this release (the default). */
	run = upgrade_check(c, NULL);
	assert_string_equal(h_str(run.v, "target"), HPQ_VERSION);
	expect(&run, "agent-version-skew", "PASSING", NULL);
	expect(&run, "client-version-skew", "PASSING", NULL);
	/* On the Unix socket a client is the user its uid names. */
	me = getpwuid(getuid());
	assert_non_null(me);
	expect(&run, "deprecated-use", "WARNING", "protocol-1: agent old1");
	snprintf(who, sizeof(who), "protocol-1: client %s", me->pw_name);
	expect(&run, "deprecated-use", "WARNING", who);
	snprintf(who, sizeof(who), "list-request-state: %s,", me->pw_name);
	expect(&run, "deprecated-use", "WARNING", who);
	/* The file hpqd read (the harness's run copy of hpqd.conf). */
	snprintf(who, sizeof(who), "config-nodes-unreachable_after: %s/hpqd", c->dir);
	expect(&run, "deprecated-use", "WARNING", who);
	expect(&run, "schema-migrations", "PASSING", NULL);
	expect(&run, "node-health", "WARNING", "drn1: drain");
	expect(&run, "disrupted-work", "WARNING", "not preemptible");
	expect(&run, "config-keys", "PASSING", NULL);
	assert_int_equal(run.status, 3);
	run_free(&run);

	/* The same for people: a line per check, what it found, what to do. */
	assert_int_equal(h_hpq(c, &o, "upgrade-check", NULL), 3);
	if (!strstr(o.out, "WARNING  deprecated-use\n") || !strstr(o.out, "PASSING  config-keys\n") ||
	    !strstr(o.out, "         - drn1: drain") || !strstr(o.out, "recommendation: "))
		fail_msg("hpq upgrade-check printed:\n%s", o.out);
	h_out_free(&o);

	/* To 0.3.0, which drops protocol 1 and [nodes] unreachable_after. */
	run = upgrade_check(c, "0.3.0");
	expect(&run, "agent-version-skew", "ERROR", "old1: 0.1.0 (protocol 1");
	expect(&run, "deprecated-use", "ERROR", "by the target");
	expect(&run, "schema-migrations", "WARNING", "no backup recorded");
	expect(&run, "config-keys", "ERROR", "[nodes] unreachable_after");
	assert_int_equal(run.status, 4);
	run_free(&run);

	/* A backup: the migration is covered. */
	snprintf(cmd, sizeof(cmd), "'%s' --state-dir '%s' --backup '%s' > '%s' 2>&1",
		 h_bin("hpqd"), c->dir, h_path(c, "before-0.3.db"), h_path(c, "backup.out"));
	if (system(cmd) != 0)
		fail_msg("hpqd --backup: %s", h_read_file(h_path(c, "backup.out")));
	run = upgrade_check(c, "0.3.0");
	expect(&run, "schema-migrations", "PASSING", "before-0.3.db");
	run_free(&run);

	/* hpqd --check notes the deprecated key (a note, not a problem). */
	snprintf(cmd, sizeof(cmd), "'%s' --check --foreground -d '%s' -c '%s' > '%s' 2>&1",
		 h_bin("hpqd"), h_path(c, "checkdir"), c->config, h_path(c, "check.out"));
	(void)!system(cmd);
	{
		char *said = h_read_file(h_path(c, "check.out"));

		if (!said || !strstr(said, "# deprecated: [nodes] unreachable_after in ") ||
		    !strstr(said, "use [agents] unreachable_after"))
			fail_msg("hpqd --check said: %s", said ? said : "(nothing)");
		free(said);
	}

	/* The record survives a restart (the old client does not come back). */
	h_daemon_stop(c, SIGTERM);
	h_daemon_start(c);
	run = upgrade_check(c, NULL);
	snprintf(who, sizeof(who), "list-request-state: %s,", me->pw_name);
	expect(&run, "deprecated-use", "WARNING", who);
	run_free(&run);

	/* Clear errors: an unknown target, an older one, a malformed catalogue. */
	assert_int_equal(h_hpq(c, &o, "upgrade-check", "--target", "9.9.9", NULL), 1);
	if (!strstr(o.err, "unknown target release '9.9.9'") || !strstr(o.err, "0.3.0"))
		fail_msg("unknown target: %s", o.err);
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "upgrade-check", "--target", "0.1.0", NULL), 1);
	if (!strstr(o.err, "does not go back"))
		fail_msg("older target: %s", o.err);
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "upgrade-check", "--target", "latest", NULL), 2);
	h_out_free(&o);
	h_write_file(h_path(c, "versions.json"), "{\"releases\": [ {\"version\": \"1.0\" ]}\n");
	assert_int_equal(h_hpq(c, &o, "upgrade-check", NULL), 1);
	if (!strstr(o.err, "release catalogue") || !strstr(o.err, "versions.json:1:"))
		fail_msg("malformed catalogue: %s", o.err);
	h_out_free(&o);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(upgrade, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
