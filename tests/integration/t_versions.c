/*
 * t_versions: hpq versions against a real hpqd and agents. With the
 * catalogue this tree ships, it lists this release as the default, in
 * standard support, and names the release hpqd and each agent run (an
 * agent that left is shown away). A malformed catalogue makes
 * `hpqd --check` fail naming the file, and `hpq versions` say why it has
 * no releases; hpqd keeps running.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void versions(void **state)
{
	struct h_cluster *c = *state;
	char conf[512], cmd[1024];
	struct h_out o;
	json_t *v, *rel, *agents, *a;
	size_t i;
	int seen = 0;

	snprintf(conf, sizeof(conf), "[versions]\ncatalog = %s/dist/versions.json\n",
		 HPQ_SOURCE_DIR);
	h_daemon_config(c, conf);
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 1, "1G");
	h_agent_start(c, "node2", 0, 1, "1G");
	assert_true(h_wait_nodes(c, 2, 30000));
	h_agent_stop(c, h_agent_index(c, "node2"), SIGTERM);

	v = h_hpq_json(c, "versions", NULL);
	rel = json_array_get(json_object_get(v, "releases"), 0);
	assert_string_equal(h_str(rel, "version"), HPQ_VERSION);
	assert_string_equal(h_str(rel, "status"), "STANDARD_SUPPORT");
	assert_true(json_is_true(json_object_get(rel, "default")));
	assert_string_equal(h_str(json_object_get(v, "daemon"), "version"), HPQ_VERSION);
	agents = json_object_get(v, "agents");
	json_array_foreach(agents, i, a) {
		assert_string_equal(h_str(a, "version"), HPQ_VERSION);
		seen++;
	}
	assert_int_equal(seen, 2);
	json_decref(v);
	assert_int_equal(h_hpq(c, &o, "versions", NULL), 0);
	if (!strstr(o.out, "STANDARD_SUPPORT") || !strstr(o.out, "agents " HPQ_VERSION ": 2") ||
	    !strstr(o.out, "(away)"))
		fail_msg("hpq versions printed:\n%s", o.out);
	h_out_free(&o);

	/* A malformed catalogue: hpq versions says why; --check fails. */
	h_write_file(h_path(c, "bad.json"), "{\"releases\": [ {\"version\": \"1.0\" ]}\n");
	snprintf(conf, sizeof(conf), "[versions]\ncatalog = %s\n", h_path(c, "bad.json"));
	h_write_file(h_path(c, "bad.conf"), conf);
	snprintf(cmd, sizeof(cmd), "'%s' --check --foreground -d '%s' -c '%s' >/dev/null 2>'%s'",
		 h_bin("hpqd"), h_path(c, "checkdir"), h_path(c, "bad.conf"),
		 h_path(c, "check.err"));
	assert_int_not_equal(system(cmd), 0);
	{
		char *said = h_read_file(h_path(c, "check.err"));
		bool named = said && strstr(said, "bad.json:1:");

		if (!named)
			fail_msg("hpqd --check said: %s", said ? said : "(nothing)");
		free(said);
	}
	h_daemon_stop(c, SIGTERM);
	h_daemon_config(c, conf);
	h_daemon_start(c);
	v = h_hpq_json(c, "versions", NULL);
	assert_int_equal(json_array_size(json_object_get(v, "releases")), 0);
	assert_non_null(strstr(h_str(v, "catalog_error"), "bad.json:1:"));
	json_decref(v);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(versions, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
