/*
 * t_cli: the CLI's contract with scripts, against a real cluster.
 *
 * - A new cluster has the four default classes and an open `default` team,
 *   so `hpq submit -- cmd` works out of the box.
 * - Task JSON has the same field names in `list` and `show`, with times as
 *   ISO-8601 UTC strings and null (times, exit_code) when unset; a task
 *   seen by both has the same values in both.
 * - `hpq submit` without --team: the one team whose members list names the
 *   user, else `default`.
 * - `list` filters by team, state and user; without options it shows the
 *   active tasks only.
 * - `team add|set|list|show|rm` round trip; a team with unfinished tasks
 *   cannot be removed; `node list` and `version` have their fields.
 * - Every read command takes --json and prints one JSON document (`logs`
 *   one record per line); `top`, a live view, refuses it. The tables:
 *   `list --all` has the exit codes of finished tasks, `events` a header.
 */
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *const task_fields[] = {
	"id", "name", "team", "user", "class", "pool", "state", "reason", "nodes", "node_names",
	"per_node", "attempts", "submit_time", "start_time", "end_time", "exit_code",
	"time_limit", "argv", "cwd", NULL,
};

static void assert_iso_or_null(json_t *t, const char *key, bool null)
{
	static regex_t re;
	static bool compiled;
	json_t *v = json_object_get(t, key);

	if (!compiled) {
		assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
					      "(\\.[0-9]+)?Z$", REG_EXTENDED | REG_NOSUB), 0);
		compiled = true;
	}
	if (null) {
		if (!json_is_null(v))
			fail_msg("%s should be null, is %s", key, json_dumps(v, JSON_ENCODE_ANY));
		return;
	}
	if (!json_is_string(v) || regexec(&re, json_string_value(v), 0, NULL, 0) != 0)
		fail_msg("%s is not an ISO-8601 UTC time: %s", key, json_dumps(v, JSON_ENCODE_ANY));
}

static void assert_task_shape(json_t *t)
{
	for (const char *const *f = task_fields; *f; f++)
		if (!json_object_get(t, *f))
			fail_msg("task JSON has no '%s': %s", *f, json_dumps(t, JSON_COMPACT));
	assert_true(json_is_integer(json_object_get(t, "id")));
	assert_true(json_is_array(json_object_get(t, "node_names")));
	assert_true(json_is_array(json_object_get(t, "argv")));
	assert_true(json_is_object(json_object_get(t, "per_node")));
	assert_iso_or_null(t, "submit_time", false);
}

static json_t *find_by(json_t *arr, const char *key, const char *value)
{
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o)
		if (strcmp(h_str(o, key), value) == 0)
			return o;
	return NULL;
}

static bool list_has(json_t *arr, uint64_t id)
{
	return h_find_task(arr, id) != NULL;
}

static void cli(void **state)
{
	struct h_cluster *c = *state;
	uint64_t done, pend, run, mine;
	char ids[32];
	json_t *j, *t, *s, *o;
	struct h_out out;
	const char *key;

	h_daemon_start(c);
	h_agent_start(c, "node1", 2, 2, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));

	/* A new cluster: classes and the open default team. */
	j = h_hpq_json(c, "class", "list", NULL);
	{
		static const struct {
			const char *name;
			int weight;
			bool preemptible;
		} want[] = {{"inference", 15, false}, {"training", 10, true},
			    {"fine-tuning", 5, true}, {"data-processing", 1, true}};

		for (size_t i = 0; i < 4; i++) {
			o = find_by(j, "name", want[i].name);
			if (!o)
				fail_msg("no default class %s", want[i].name);
			assert_int_equal(h_int(o, "weight"), want[i].weight);
			assert_int_equal(json_is_true(json_object_get(o, "preemptible")),
					 want[i].preemptible);
		}
	}
	json_decref(j);
	j = h_hpq_json(c, "team", "list", NULL);
	assert_non_null(find_by(j, "name", "default"));
	json_decref(j);

	/* One finished, one running, one pending task in `default`. */
	done = h_submit(c, "--name", "done", "--", "sh", "-c", "exit 4", NULL);
	assert_true(h_wait_state(c, done, "FAILED", 30000));
	run = h_submit(c, "--name", "run", "--cpus", "2", "--", "sleep", "60", NULL);
	assert_true(h_wait_state(c, run, "RUNNING", 30000));
	pend = h_submit(c, "--name", "pend", "--cpus", "2", "--time", "1h", "--", "true", NULL);

	/* list (active only by default) and show agree, field by field. */
	j = h_hpq_json(c, "list", NULL);
	assert_false(list_has(j, done));
	assert_true(list_has(j, run));
	assert_true(list_has(j, pend));
	json_decref(j);
	j = h_tasks(c);
	for (uint64_t id = done; id <= pend; id++) {
		t = h_find_task(j, id);
		assert_non_null(t);
		assert_task_shape(t);
		s = h_task(c, id);
		assert_non_null(s);
		assert_task_shape(s);
		json_object_foreach(t, key, o) {
			/* list is a summary: the history is show's. */
			if (strcmp(key, "events") == 0 || strcmp(key, "checkpoints") == 0)
				continue;
			if (!json_equal(o, json_object_get(s, key)))
				fail_msg("task %" PRIu64 ": '%s' is %s in list, %s in show", id, key,
					 json_dumps(o, JSON_ENCODE_ANY),
					 json_dumps(json_object_get(s, key), JSON_ENCODE_ANY));
		}
		json_decref(s);
	}
	t = h_find_task(j, done);
	assert_string_equal(h_str(t, "team"), "default");
	assert_string_equal(h_str(t, "user"), "root");
	assert_int_equal(h_int(t, "exit_code"), 4);
	assert_iso_or_null(t, "start_time", false);
	assert_iso_or_null(t, "end_time", false);
	assert_string_equal(json_string_value(json_array_get(json_object_get(t, "argv"), 2)),
			    "exit 4");
	assert_string_equal(h_str(t, "cwd"), c->dir);
	t = h_find_task(j, run);
	assert_iso_or_null(t, "start_time", false);
	assert_iso_or_null(t, "end_time", true);
	assert_true(json_is_null(json_object_get(t, "exit_code")));
	t = h_find_task(j, pend);
	assert_string_equal(h_str(t, "state"), "PENDING");
	assert_iso_or_null(t, "start_time", true);
	assert_iso_or_null(t, "end_time", true);
	assert_true(json_is_null(json_object_get(t, "exit_code")));
	assert_int_equal(h_int(t, "time_limit"), 3600);
	assert_int_equal(h_int(json_object_get(t, "per_node"), "cpus"), 2);
	assert_int_equal(h_int(t, "attempts"), 0);
	json_decref(j);

	/* Filters. */
	j = h_hpq_json(c, "list", "--state", "failed", NULL);
	assert_int_equal(json_array_size(j), 1);
	assert_true(list_has(j, done));
	json_decref(j);
	j = h_hpq_json(c, "list", "--state", "RUNNING", NULL);
	assert_int_equal(json_array_size(j), 1);
	assert_true(list_has(j, run));
	json_decref(j);
	j = h_hpq_json(c, "list", "--all", "--user", "nobody", NULL);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);

	/* Teams: add, show, set, list; a members list makes a team the
	 * user's default. */
	assert_int_equal(h_hpq(c, NULL, "team", "add", "vision", "--gpus", "2", "--cpus", "2",
			       "--mem", "2G", "--weight", "3", "--members", "root", NULL), 0);
	assert_int_not_equal(h_hpq(c, &out, "team", "add", "vision", NULL), 0);
	assert_true(strlen(out.err) > 0);
	h_out_free(&out);
	j = h_hpq_json(c, "team", "show", "vision", NULL);
	assert_string_equal(h_str(j, "name"), "vision");
	assert_int_equal(h_int(j, "weight"), 3);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "members"), 0)),
			    "root");
	o = json_array_get(json_object_get(j, "quotas"), 0);
	assert_non_null(o);
	assert_string_equal(h_str(o, "pool"), "default");
	assert_int_equal(h_int(json_object_get(o, "guarantee"), "gpus"), 2);
	assert_int_equal(h_int(json_object_get(o, "guarantee"), "mem"), 2048);
	json_decref(j);
	assert_int_equal(h_hpq(c, NULL, "team", "set", "vision", "--weight", "7", NULL), 0);
	j = h_hpq_json(c, "team", "list", NULL);
	o = find_by(j, "name", "vision");
	assert_non_null(o);
	assert_int_equal(h_int(o, "weight"), 7);
	/* set changes only what it names */
	assert_int_equal(h_int(json_object_get(json_array_get(json_object_get(o, "quotas"), 0),
					       "guarantee"), "gpus"), 2);
	json_decref(j);

	mine = h_submit(c, "--cpus", "2", "--", "sleep", "60", NULL);
	t = h_task(c, mine);
	assert_string_equal(h_str(t, "team"), "vision");
	json_decref(t);
	j = h_hpq_json(c, "list", "--team", "vision", NULL);
	assert_int_equal(json_array_size(j), 1);
	assert_true(list_has(j, mine));
	json_decref(j);

	/* A team with unfinished tasks stays; without, it goes. */
	assert_int_not_equal(h_hpq(c, &out, "team", "rm", "vision", NULL), 0);
	assert_true(strlen(out.err) > 0);
	h_out_free(&out);
	snprintf(ids, sizeof(ids), "%" PRIu64, mine);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);
	assert_true(h_wait_state(c, mine, "CANCELLED", 30000));
	assert_int_equal(h_hpq(c, NULL, "team", "rm", "vision", NULL), 0);
	j = h_hpq_json(c, "team", "list", NULL);
	assert_null(find_by(j, "name", "vision"));
	json_decref(j);
	assert_int_not_equal(h_hpq(c, NULL, "team", "show", "vision", NULL), 0);

	/* Nodes and version. */
	j = h_hpq_json(c, "node", "list", NULL);
	assert_int_equal(json_array_size(j), 1);
	o = json_array_get(j, 0);
	assert_string_equal(h_str(o, "name"), "node1");
	assert_string_equal(h_str(o, "pool"), "default");
	assert_string_equal(h_str(o, "health"), "healthy");
	assert_true(json_is_true(json_object_get(o, "connected")));
	assert_int_equal(h_int(json_object_get(o, "capacity"), "gpus"), 2);
	assert_int_equal(h_int(json_object_get(o, "capacity"), "cpus"), 2);
	assert_int_equal(h_int(json_object_get(o, "capacity"), "mem"), 2048);
	json_decref(j);
	j = h_hpq_json(c, "version", NULL);
	assert_string_equal(h_str(json_object_get(j, "server"), "user"), "root");
	assert_true(json_is_true(json_object_get(json_object_get(j, "server"), "admin")));
	assert_string_equal(h_str(json_object_get(j, "client"), "version"),
			    h_str(json_object_get(j, "server"), "version"));
	json_decref(j);
	h_pass(c);
}

static void read_commands_json(void **state)
{
	struct h_cluster *c = *state;
	static const char *const reads[][5] = {
		{"list"}, {"list", "--all"}, {"show", "ID"}, {"status"}, {"events"},
		{"events", "--task", "ID"}, {"usage"}, {"node", "list"}, {"node", "show", "node1"},
		{"team", "list"}, {"team", "show", "default"}, {"class", "list"},
		{"policy", "show"}, {"version"},
	};
	struct h_out o;
	char id[32];
	uint64_t done, failed;
	json_t *j;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));
	done = h_submit(c, "--cpus", "1", "--", "echo", "hi", NULL);
	failed = h_submit(c, "--cpus", "1", "--", "sh", "-c", "exit 7", NULL);
	assert_true(h_wait_state(c, done, "COMPLETED", 30000));
	assert_true(h_wait_state(c, failed, "FAILED", 30000));
	snprintf(id, sizeof(id), "%llu", (unsigned long long)done);

	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		const char *argv[8];
		size_t n = 0;

		for (size_t k = 0; k < 5 && reads[i][k]; k++)
			argv[n++] = strcmp(reads[i][k], "ID") ? reads[i][k] : id;
		argv[n++] = "--json";
		argv[n] = NULL;
		h_hpqv(c, &o, argv);
		if (o.code != 0)
			fail_msg("hpq %s --json: exit %d: %s", argv[0], o.code, o.err);
		j = json_loads(o.out, 0, NULL);
		if (!j)
			fail_msg("hpq %s %s --json: not one JSON document:\n%s", argv[0],
				 n > 2 ? argv[1] : "", o.out);
		json_decref(j);
		h_out_free(&o);
	}
	/* logs: one JSON record per line. */
	assert_int_equal(h_hpq(c, &o, "logs", id, "--json", NULL), 0);
	assert_non_null(strstr(o.out, "\"stream\":\"output\",\"offset\":"));
	assert_non_null(strstr(o.out, "\"text\":\"hi\""));
	for (char *line = o.out; *line; line += strcspn(line, "\n") + 1) {
		j = json_loadb(line, strcspn(line, "\n"), 0, NULL);
		assert_non_null(j);
		json_decref(j);
	}
	h_out_free(&o);
	/* top is for people: --json is a usage error, not silently ignored. */
	assert_int_equal(h_hpq(c, &o, "top", "--json", NULL), 2);
	assert_non_null(strstr(o.err, "hpq status --json"));
	h_out_free(&o);

	/* The tables: exit codes of finished tasks, a header over the events. */
	assert_int_equal(h_hpq(c, &o, "list", "--all", NULL), 0);
	if (!strstr(o.out, " EXIT ") || !strstr(o.out, "FAILED        7") ||
	    !strstr(o.out, "COMPLETED     0"))
		fail_msg("hpq list --all lacks the exit codes:\n%s", o.out);
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "list", NULL), 0);
	assert_null(strstr(o.out, "EXIT"));
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "events", "--task", id, NULL), 0);
	assert_memory_equal(o.out, "TIME ", 5);
	assert_non_null(strstr(o.out, " KIND "));
	h_out_free(&o);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(cli, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(read_commands_json, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
