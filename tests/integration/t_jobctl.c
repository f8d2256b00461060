/*
 * t_jobctl: a Slurm user's job control with real processes, one agent.
 *
 *   - a request no node could ever hold is refused at submit, naming the
 *     limit; a class's --max-time caps time limits; nothing is queued;
 *   - a batch script edited after submit: the stored copy runs, with its
 *     #HPQ directives, and `hpq show --script` prints that copy;
 *   - a script written for Slurm runs unchanged: #SBATCH options, minutes,
 *     -o with %x and %j, a warning naming the line it ignores, SLURM_*;
 *   - hpq requeue: a training task goes back to the queue and resumes from
 *     its newest checkpoint in attempt 2;
 *   - hpq update: a pending task changes its name and size; a running
 *     task's shorter time limit reaches its agent, and it ends TIMEOUT;
 *   - hpq list with several states and a name, hpq acct over what ended:
 *     text, JSON and CSV, filtered by state.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void refused_at_submit(struct h_cluster *c)
{
	struct h_out o;
	json_t *all;

	assert_int_not_equal(h_hpq(c, &o, "submit", "--gpus", "4", "--", "true", NULL), 0);
	if (!strstr(o.err, "impossible request") || !strstr(o.err, "the most any has is 1"))
		fail_msg("submit of 4 GPUs on a 1-GPU cluster: %s", o.err);
	h_out_free(&o);
	assert_int_equal(h_hpq(c, NULL, "class", "set", "training", "--max-time", "1h", NULL), 0);
	assert_int_not_equal(h_hpq(c, &o, "submit", "--class", "training", "--time", "2:00:00",
				   "--", "true", NULL), 0);
	if (!strstr(o.err, "maximum of 1h"))
		fail_msg("submit over the class's maximum: %s", o.err);
	h_out_free(&o);
	all = h_tasks(c);
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);
}

static uint64_t edited_script(struct h_cluster *c)
{
	const char *script = "#!/bin/sh\n#HPQ --cpus 1\n#HPQ --name scripted\n"
			     "echo \"hello from the script, $1\"\n";
	const char *path = h_path(c, "job.sh");
	char *copy, *log;
	struct h_out o;
	uint64_t id;
	json_t *t;

	h_write_file(path, script);
	/* Held first, so the edit surely comes before it runs. */
	if (h_hpq(c, &o, "submit", "--hold", path, "world", NULL) != 0)
		fail_msg("hpq submit %s: %s", path, o.err);
	id = h_parse_id(o.out);
	h_out_free(&o);
	h_write_file(path, "#!/bin/sh\necho edited after submit\n");
	assert_int_equal(h_hpq(c, NULL, "release", h_id(id), NULL), 0);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	t = h_task(c, id);
	assert_string_equal(h_str(t, "name"), "scripted");
	json_decref(t);
	log = h_task_log(c, "node1", id);
	assert_non_null(log);
	if (!strstr(log, "hello from the script, world") || strstr(log, "edited"))
		fail_msg("the stored copy did not run; the log:\n%s", log);
	free(log);
	assert_int_equal(h_hpq(c, &o, "show", h_id(id), "--script", NULL), 0);
	copy = o.out;
	assert_string_equal(copy, script);
	h_out_free(&o);
	return id;
}

/* A script written for Slurm runs unchanged: its #SBATCH lines are
 * options (a bare --time is minutes), -o names the output file, harmless
 * options are warnings naming their line, and the task sees SLURM_*. */
static void slurm_script(struct h_cluster *c)
{
	const char *path = h_path(c, "slurm.sh");
	char want[96], *out;
	struct h_out o;
	uint64_t id;
	json_t *t;

	h_write_file(path, "#!/bin/bash\n"
			   "#SBATCH --job-name=slurmjob\n"
			   "#SBATCH --time=5 --cpus-per-task=1\n"
			   "#SBATCH -o slurm-%x-%j.out\n"
			   "#SBATCH --mail-type=END\n"
			   "echo \"job $SLURM_JOB_ID name $SLURM_JOB_NAME nodes $SLURM_JOB_NODELIST\"\n");
	if (h_hpq(c, &o, "submit", "--chdir", c->dir, path, NULL) != 0)
		fail_msg("hpq submit %s: %s", path, o.err);
	if (!strstr(o.err, "slurm.sh:5") || !strstr(o.err, "mail-type"))
		fail_msg("no warning naming slurm.sh:5 for --mail-type: %s", o.err);
	id = h_parse_id(o.out);
	h_out_free(&o);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	t = h_task(c, id);
	assert_string_equal(h_str(t, "name"), "slurmjob");
	assert_int_equal(h_int(t, "time_limit"), 300);
	json_decref(t);
	snprintf(want, sizeof(want), "job %" PRIu64 " name slurmjob nodes node1\n", id);
	out = h_read_file(h_path(c, "slurm-slurmjob-%" PRIu64 ".out", id));
	if (!out || strcmp(out, want))
		fail_msg("slurm-slurmjob-%" PRIu64 ".out holds '%s', not '%s'", id,
			 out ? out : "(nothing)", want);
	free(out);
}

static uint64_t requeue_resumes(struct h_cluster *c)
{
	char cmd[1024];
	long long at;
	uint64_t id;
	json_t *t;

	id = h_submit(c, "--name", "train", "--gpus", "1", "--checkpoint-dir", h_path(c, "ckpt"),
		      "--", "sh", "-c", h_trainer_cmd(cmd, sizeof(cmd), 5), NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));
	assert_true(H_WAIT_FOR(c, h_newest_step(c, id) >= 10, 30000));
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
	json_decref(t);
	/* Attempt 2 started where attempt 1's newest checkpoint left off. */
	at = h_newest_step(c, id);
	assert_true(at > 10);
	return id;
}

static uint64_t update_pending_and_running(struct h_cluster *c)
{
	uint64_t run, wait;
	char id[32];
	json_t *t;

	run = h_submit(c, "--gpus", "1", "--cpus", "2", "--time", "1:00:00", "--", "sleep", "300",
		       NULL);
	assert_true(h_wait_state(c, run, "RUNNING", 30000));
	wait = h_submit(c, "--gpus", "1", "--name", "before", "--", "true", NULL);
	snprintf(id, sizeof(id), "%" PRIu64, wait);
	assert_int_equal(h_hpq(c, NULL, "update", id, "name=after", "cpus=1", NULL), 0);
	t = h_task(c, wait);
	assert_string_equal(h_str(t, "name"), "after");
	assert_string_equal(h_str(t, "state"), "PENDING");
	json_decref(t);
	/* A shorter limit for the running one: MM:SS, 3 seconds. */
	snprintf(id, sizeof(id), "%" PRIu64, run);
	assert_int_equal(h_hpq(c, NULL, "update", id, "time=0:03", NULL), 0);
	assert_true(h_wait_state(c, run, "TIMEOUT", 60000));
	assert_true(h_wait_state(c, wait, "COMPLETED", 30000));
	return run;
}

static void list_and_acct(struct h_cluster *c, uint64_t scripted, uint64_t requeued,
			  uint64_t timed_out)
{
	json_t *j, *row;
	struct h_out o;
	size_t i;
	bool seen = false;

	j = h_hpq_json(c, "list", "--state", "completed,timeout", "--name", "train", NULL);
	assert_int_equal(json_array_size(j), 1);
	assert_int_equal(h_int(json_array_get(j, 0), "id"), (long long)requeued);
	json_decref(j);

	j = h_hpq_json(c, "acct", NULL);
	assert_true(json_array_size(j) >= 4);
	json_array_foreach(j, i, row)
		if (h_int(row, "id") == (long long)requeued) {
			assert_int_equal(h_int(row, "attempts"), 2);
			assert_string_equal(h_str(row, "state"), "COMPLETED");
			seen = true;
		}
	assert_true(seen);
	json_decref(j);
	j = h_hpq_json(c, "acct", "--state", "timeout", NULL);
	assert_int_equal(json_array_size(j), 1);
	assert_int_equal(h_int(json_array_get(j, 0), "id"), (long long)timed_out);
	json_decref(j);
	assert_int_equal(h_hpq(c, &o, "acct", "--csv", NULL), 0);
	{
		char want[40];

		snprintf(want, sizeof(want), "\n%" PRIu64 ",", scripted);
		if (!strstr(o.out, want))
			fail_msg("hpq acct --csv has no row for task %" PRIu64 ":\n%s", scripted,
				 o.out);
	}
	h_out_free(&o);
	/* Bad input: an acct state of a task that has not ended. */
	assert_int_not_equal(h_hpq(c, &o, "acct", "--state", "running", NULL), 0);
	assert_true(strlen(o.err) > 0);
	h_out_free(&o);
}

static void job_control(void **state)
{
	struct h_cluster *c = *state;
	uint64_t scripted, requeued, timed_out;

	if (!*h_bin("trainer"))
		skip();
	h_daemon_start(c);
	h_agent_start(c, "node1", 1, 2, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));

	refused_at_submit(c);
	scripted = edited_script(c);
	slurm_script(c);
	requeued = requeue_resumes(c);
	timed_out = update_pending_and_running(c);
	list_and_acct(c, scripted, requeued, timed_out);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(job_control, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
