/*
 * t_recipe: a recipe run end to end with real processes, one agent.
 *
 *   - bad --set values (an unknown parameter, a wrong type) are refused
 *     at submit, naming the parameter, and nothing is queued;
 *   - `hpq submit --recipe cpu-dataprep` (the shipped recipe and example
 *     program) runs; the program only writes step-N files, and the
 *     recipe's watcher reports them as checkpoints, which hpq show lists;
 *   - hpq requeue stops it as a preemption does: attempt 2 gets the newest
 *     automatic checkpoint through --resume, prints "resumed from step N"
 *     and completes every chunk;
 *   - the task records the recipe's name, version and parameters (hpq show,
 *     text and JSON);
 *   - the watcher's other shapes, with a recipe written here: a directory
 *     checkpoint counts once it has its COMPLETE marker, a file closed
 *     after writing (ckpt_7.pt) counts, a temporary name never does, and
 *     the resume path reaches the program through the recipe's variable.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define CHUNKS "30"

static void bad_sets_refused(struct h_cluster *c)
{
	struct h_out o;
	json_t *all;

	assert_int_not_equal(h_hpq(c, &o, "submit", "--recipe", "cpu-dataprep", "--recipe-path",
				   HPQ_TEST_SOURCE_DIR "/recipes", "--set", "nosuch=1", NULL), 0);
	if (!strstr(o.err, "no parameter 'nosuch'"))
		fail_msg("--set nosuch=1: %s", o.err);
	h_out_free(&o);
	assert_int_not_equal(h_hpq(c, &o, "submit", "--recipe", "cpu-dataprep", "--recipe-path",
				   HPQ_TEST_SOURCE_DIR "/recipes", "--set", "chunks=many", NULL),
			     0);
	if (!strstr(o.err, "chunks=many") || !strstr(o.err, "not a int"))
		fail_msg("--set chunks=many: %s", o.err);
	h_out_free(&o);
	all = h_tasks(c);
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);
}

static void recipe_resumes(struct h_cluster *c)
{
	struct h_out o;
	char out[256];
	long long at;
	uint64_t id;
	json_t *t, *r, *p;
	char *result;
	bool found = false;
	size_t i;

	snprintf(out, sizeof(out), "out=%s", h_path(c, "result.json"));
	id = h_submit(c, "--recipe", "cpu-dataprep", "--recipe-path",
		      HPQ_TEST_SOURCE_DIR "/recipes",
		      "--set", "program=" HPQ_TEST_SOURCE_DIR "/examples/dataprep_tiny.py",
		      "--set", "chunks=" CHUNKS, "--set", "delay=0.25",
		      "--set", out, NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	/* Nothing but the watcher reports checkpoints. */
	assert_true(H_WAIT_FOR(c, h_newest_step(c, id) >= 3, 30000));
	assert_int_equal(h_hpq(c, NULL, "requeue", h_id(id), NULL), 0);
	assert_true(H_WAIT_FOR(c, ({
		json_t *x = h_task(c, id);
		bool two = h_int(x, "attempts") >= 2;
		json_decref(x);
		two;
	}), 30000));
	assert_true(h_wait_state(c, id, "COMPLETED", 60000));
	t = h_task(c, id);
	assert_int_equal(h_int(t, "attempts"), 2);
	r = json_object_get(t, "recipe");
	assert_non_null(r);
	assert_string_equal(h_str(r, "name"), "cpu-dataprep");
	assert_string_equal(h_str(r, "version"), "1.0");
	json_array_foreach(json_object_get(r, "params"), i, p)
		found = found || !strcmp(json_string_value(p), "chunks=" CHUNKS);
	assert_true(found);
	json_decref(t);
	at = h_newest_step(c, id);
	if (at != atoi(CHUNKS))
		fail_msg("the newest checkpoint is step %lld, not %s", at, CHUNKS);

	/* Attempt 2 resumed from attempt 1's newest automatic checkpoint. */
	assert_int_equal(h_hpq(c, &o, "logs", h_id(id), "--attempt", "2", NULL), 0);
	if (!strstr(o.out, "resumed from step "))
		fail_msg("attempt 2 did not resume: %s", o.out);
	if (atoi(strstr(o.out, "resumed from step ") + 18) < 3)
		fail_msg("attempt 2 resumed too early: %s", o.out);
	h_out_free(&o);
	result = h_read_file(h_path(c, "result.json"));
	if (!result || !strstr(result, "\"chunks\": " CHUNKS))
		fail_msg("result.json: %s", result ? result : "(none)");
	free(result);

	assert_int_equal(h_hpq(c, &o, "show", h_id(id), NULL), 0);
	if (!strstr(o.out, "cpu-dataprep 1.0 (") || !strstr(o.out, "chunks=" CHUNKS))
		fail_msg("hpq show has no recipe line: %s", o.out);
	h_out_free(&o);
}

/* The program waits for each report through hpq show, so that the order
 * of the checkpoints is certain. */
static const char shapes_recipe[] =
	"name: shapes\n"
	"version: \"0.1\"\n"
	"launcher: none\n"
	"checkpoint:\n"
	"  dir: \"ck-%j\"\n"
	"  resume: {env: MY_RESUME}\n"
	"command:\n"
	"  - sh\n"
	"  - -c\n"
	"  - |\n"
	"    d=$HPQ_CHECKPOINT_DIR\n"
	"    if [ -n \"${MY_RESUME:-}\" ]; then echo \"resume=$MY_RESUME\"; exit 0; fi\n"
	"    has() { \"$HPQ_CLI\" show \"$HPQ_TASK_ID\" --json | grep -Eq \"\\\"step\\\": ?$1\\b\"; }\n"
	"    echo partial > \"$d/step-99.tmp\"\n"
	"    mkdir \"$d/checkpoint-5\" && echo w > \"$d/checkpoint-5/weights\"\n"
	"    echo done > \"$d/checkpoint-5/COMPLETE\"\n"
	"    until has 5; do sleep 0.1; done\n"
	"    echo w > \"$d/ckpt_7.pt\"\n"
	"    until has 7; do sleep 0.1; done\n"
	"    echo reported\n"
	"    sleep 300\n";

static void watcher_shapes(struct h_cluster *c)
{
	json_t *t, *ck;
	struct h_out o;
	char want[256];
	uint64_t id;
	size_t i;

	mkdir(h_path(c, "mine"), 0755);
	h_write_file(h_path(c, "mine/shapes.yaml"), shapes_recipe);
	id = h_submit(c, "--recipe", "shapes", "--recipe-path", h_path(c, "mine"), NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, h_newest_step(c, id) == 7, 30000));
	assert_int_equal(h_hpq(c, NULL, "requeue", h_id(id), NULL), 0);
	assert_true(h_wait_state(c, id, "COMPLETED", 60000));
	t = h_task(c, id);
	assert_int_equal(h_int(t, "attempts"), 2);
	assert_int_equal(json_array_size(json_object_get(t, "checkpoints")), 2);
	json_array_foreach(json_object_get(t, "checkpoints"), i, ck) {
		const char *path = h_str(ck, "path");

		if (h_int(ck, "step") == 5 ? !strstr(path, "/checkpoint-5")
					   : !strstr(path, "/ckpt_7.pt"))
			fail_msg("checkpoint step %lld at %s", h_int(ck, "step"), path);
	}
	json_decref(t);
	assert_int_equal(h_hpq(c, &o, "logs", h_id(id), "--attempt", "2", NULL), 0);
	snprintf(want, sizeof(want), "resume=%s", h_path(c, "ck-%" PRIu64 "/ckpt_7.pt", id));
	if (!strstr(o.out, want))
		fail_msg("attempt 2 got no %s: %s", want, o.out);
	h_out_free(&o);
}

static void recipe_run(void **state)
{
	struct h_cluster *c = *state;

	if (access("/usr/bin/python3", X_OK) != 0 && system("command -v python3 >/dev/null"))
		skip();
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));
	bad_sets_refused(c);
	recipe_resumes(c);
	watcher_shapes(c);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(recipe_run, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
