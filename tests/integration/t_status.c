/*
 * t_status: `hpq status --json` and `hpq events --follow` through borrowing
 * and a reclaim. One node with 4 GPUs; teams a and b each hold a guarantee
 * of 2 GPUs, lend their unused guarantee and may borrow 100% beyond it.
 *
 *  1. b runs four 1-GPU tasks: 2 within its guarantee, 2 borrowed from a's
 *     unused guarantee. status: b used 4, borrowed 2; a used 0, lent 2,
 *     flagged as holding a guarantee it does not use; the training class
 *     runs 4.
 *  2. a submits two 1-GPU tasks and takes its guarantee back: two of b's
 *     tasks are preempted and wait again. status: a used 2, borrowed 0,
 *     lent 0; b used 2, borrowed 0, pending 2, preempted_1h 2; the pool
 *     is full (idle 0).
 *
 * After step 1, `hpq usage --json` must show b's GPU-hours half borrowed
 * and a's lent hours equal to them.
 *
 * Meanwhile a follower (`hpq events --follow --json`, started before step 2)
 * must receive the preempt and start events live, one JSON object a line,
 * after the backlog it was given first. Filters and errors: --team narrows
 * the teams, an unknown team is an error.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* The row of team in pool "default" of a status object (borrowed), or NULL. */
static json_t *team_row(json_t *status, const char *team)
{
	size_t i;
	json_t *row;

	json_array_foreach(json_object_get(status, "teams"), i, row)
		if (!strcmp(h_str(row, "name"), team) && !strcmp(h_str(row, "pool"), "default"))
			return row;
	return NULL;
}

static long long gpus(json_t *row, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(row, key), "gpus"));
}

static long long class_count(json_t *status, const char *cls, const char *key)
{
	size_t i;
	json_t *row;

	json_array_foreach(json_object_get(status, "classes"), i, row)
		if (!strcmp(h_str(row, "name"), cls))
			return h_int(row, key);
	return -1;
}

/* Status figures of a team, polled until they match (the dispatcher and
 * the agent work asynchronously). */
static bool team_is(struct h_cluster *c, const char *team, long long used, long long borrowed,
		    long long lent, long long running, long long pending)
{
	json_t *s = h_hpq_json(c, "status", NULL);
	json_t *row = team_row(s, team);
	bool ok = row && gpus(row, "used") == used && gpus(row, "borrowed") == borrowed &&
		  gpus(row, "lent") == lent && h_int(row, "running") == running &&
		  h_int(row, "pending") == pending;

	json_decref(s);
	return ok;
}

static json_t *usage_row(json_t *usage, const char *team)
{
	size_t i;
	json_t *row;

	json_array_foreach(json_object_get(usage, "rows"), i, row)
		if (!strcmp(h_str(row, "name"), team) && !strcmp(h_str(row, "pool"), "default"))
			return row;
	return NULL;
}

static pid_t start_follower(struct h_cluster *c, const char *out)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0)
			_exit(127);
		dup2(fd, 1);
		setenv("HPQ_SOCKET", c->sock, 1);
		execl(h_bin("hpq"), "hpq", "events", "--follow", "--json", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void borrow_and_reclaim(void **state)
{
	struct h_cluster *c = *state;
	const char *follow = h_path(c, "follow.out");
	json_t *s, *row, *pool;
	struct h_out o;
	pid_t follower;
	int64_t t_submit;
	char *text;

	h_daemon_start(c);
	h_agent_start(c, "node1", 4, 8, "8G");
	assert_true(h_wait_nodes(c, 1, 30000));
	assert_int_equal(h_hpq(c, NULL, "team", "add", "a", "--gpus", "2", "--borrow-limit", "100",
			       NULL), 0);
	assert_int_equal(h_hpq(c, NULL, "team", "add", "b", "--gpus", "2", "--borrow-limit", "100",
			       NULL), 0);

	/* Nothing runs: a holds a guarantee it does not use. */
	s = h_hpq_json(c, "status", NULL);
	row = team_row(s, "a");
	assert_non_null(row);
	assert_int_equal(gpus(row, "guarantee"), 2);
	assert_int_equal(gpus(row, "used"), 0);
	assert_int_equal(gpus(row, "unused_guarantee"), 2);
	assert_true(json_is_true(json_object_get(row, "guarantee_unused")));
	pool = json_array_get(json_object_get(s, "pools"), 0);
	assert_string_equal(h_str(pool, "name"), "default");
	assert_int_equal(h_int(pool, "nodes"), 1);
	assert_int_equal(gpus(pool, "capacity"), 4);
	assert_int_equal(gpus(pool, "guaranteed"), 4);
	assert_int_equal(gpus(pool, "idle"), 4);
	assert_non_null(json_object_get(json_object_get(s, "policy"), "idle_allocation"));
	json_decref(s);

	/* 1. b borrows a's unused guarantee. */
	t_submit = h_now_ms();
	for (int i = 0; i < 4; i++)
		h_submit(c, "--team", "b", "--class", "training", "--gpus", "1", "--mem", "256M",
			 "--", "sleep", "300", NULL);
	assert_true(H_WAIT_FOR(c, team_is(c, "b", 4, 2, 0, 4, 0), 30000));
	assert_true(team_is(c, "a", 0, 0, 2, 0, 0));
	s = h_hpq_json(c, "status", NULL);
	assert_true(json_is_true(json_object_get(team_row(s, "a"), "guarantee_unused")));
	assert_false(json_is_true(json_object_get(team_row(s, "b"), "guarantee_unused")));
	assert_int_equal(class_count(s, "training", "running"), 4);
	assert_int_equal(class_count(s, "training", "pending"), 0);
	pool = json_array_get(json_object_get(s, "pools"), 0);
	assert_int_equal(gpus(pool, "used"), 4);
	assert_int_equal(gpus(pool, "idle"), 0);
	assert_int_equal(h_int(team_row(s, "b"), "preempted_1h"), 0);
	json_decref(s);

	/* Usage while b borrows: half of what b uses is borrowed, and a lent
	 * that much. The daemon integrates continuously; the 4 tasks may have
	 * started a moment apart, so the borrowed share tends to one half as
	 * the hours grow: wait until it is there. */
	assert_true(H_WAIT_FOR(c, ({
		s = h_hpq_json(c, "usage", "--since", "1h", NULL);
		json_t *ub_ = usage_row(s, "b");
		double bu_ = ub_ ? json_real_value(json_object_get(ub_, "used_gpu_h")) : 0;
		double bb_ = ub_ ? json_real_value(json_object_get(ub_, "borrowed_gpu_h")) : 0;
		json_decref(s);
		bu_ > 0 && bb_ > 0.45 * bu_ && bb_ < 0.55 * bu_;
	}), 60000));
	s = h_hpq_json(c, "usage", "--since", "1h", NULL);
	{
		json_t *ua = usage_row(s, "a"), *ub = usage_row(s, "b");
		double bu, bb, bw, al;
		/* No more than 4 GPUs for as long as the test has run. */
		double most = 4.0 * (double)(h_now_ms() - t_submit + 1000) / 3600e3;

		assert_non_null(ub);
		bu = json_real_value(json_object_get(ub, "used_gpu_h"));
		bb = json_real_value(json_object_get(ub, "borrowed_gpu_h"));
		bw = json_real_value(json_object_get(ub, "within_gpu_h"));
		al = ua ? json_real_value(json_object_get(ua, "lent_gpu_h")) : 0;
		if (!(bu > 0 && bu <= 1.05 * most))
			fail_msg("b used %g GPU-hours; 4 GPUs since the submits make at most %g", bu,
				 most);
		assert_true(bb > 0.45 * bu && bb < 0.55 * bu);
		assert_true(bw + bb > 0.99 * bu && bw + bb < 1.01 * bu);
		assert_true(al > 0.9 * bb && al < 1.1 * bb);
		assert_true(!ua || json_real_value(json_object_get(ua, "used_gpu_h")) == 0);
	}
	json_decref(s);
	assert_int_equal(h_hpq(c, &o, "usage", "--by", "user", "--csv", NULL), 0);
	assert_true(strncmp(o.out, "user,pool,used_gpu_h\n", 21) == 0);
	h_out_free(&o);

	/* A follower from here on: the backlog, then live events. */
	follower = start_follower(c, follow);
	assert_true(H_WAIT_FOR(c, h_count_prefix(follow, "{\"id\":") >= 5, 30000));

	/* 2. a takes its guarantee back: two of b's tasks are preempted. */
	h_submit(c, "--team", "a", "--class", "training", "--gpus", "1", "--mem", "256M", "--",
		 "sleep", "300", NULL);
	h_submit(c, "--team", "a", "--class", "training", "--gpus", "1", "--mem", "256M", "--",
		 "sleep", "300", NULL);
	assert_true(H_WAIT_FOR(c, team_is(c, "a", 2, 0, 0, 2, 0), 30000));
	assert_true(H_WAIT_FOR(c, team_is(c, "b", 2, 0, 0, 2, 2), 30000));
	s = h_hpq_json(c, "status", NULL);
	row = team_row(s, "b");
	assert_int_equal(h_int(row, "preempted_1h"), 2);
	assert_true(h_int(row, "oldest_pending_s") >= 0);
	/* Why b's oldest waits: a dispatcher reason, e.g. no idle compute. */
	assert_true(json_is_string(json_object_get(row, "oldest_pending_reason")));
	assert_true(strlen(h_str(row, "oldest_pending_reason")) > 0);
	assert_true(json_is_null(json_object_get(team_row(s, "a"), "oldest_pending_reason")));
	assert_int_equal(h_int(team_row(s, "a"), "preempted_1h"), 0);
	assert_false(json_is_true(json_object_get(team_row(s, "a"), "guarantee_unused")));
	assert_int_equal(class_count(s, "training", "running"), 4);
	assert_int_equal(class_count(s, "training", "pending"), 2);
	assert_int_equal(h_int(s, "pending"), 2);
	json_decref(s);

	/* The follower saw both preemptions and a's starts as they happened. */
	assert_true(H_WAIT_FOR(c, ({
		text = h_read_file(follow);
		bool ok = text && strstr(text, "\"kind\":\"preempt\"") &&
			  strstr(text, "\"kind\":\"requeue\"");
		int starts_of_a = 0;
		for (char *p = text; p && (p = strstr(p, "\"kind\":\"start\"")); p++) {
			char *eol = strchr(p, '\n');
			char *team = strstr(p, "\"team\":\"a\"");
			if (team && (!eol || team < eol))
				starts_of_a++;
		}
		free(text);
		ok && starts_of_a == 2;
	}), 30000));
	kill(follower, SIGTERM);
	assert_true(h_wait_child(c, follower, 30000) != -1);
	/* Backlog and pushes alike carry the table's ids, each once, in order;
	 * the pushed ones are what `hpq events` reads back. */
	text = h_read_file(follow);
	{
		json_t *all = h_hpq_json(c, "events", NULL);
		long long last = 0;
		size_t n = 0;

		for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
			json_t *ev = json_loads(line, 0, NULL), *back;

			assert_non_null(ev);
			assert_true(json_is_integer(json_object_get(ev, "id")));
			assert_true(h_int(ev, "id") > last);
			last = h_int(ev, "id");
			back = json_array_get(all, (size_t)h_int(ev, "id") - 1);
			assert_non_null(back);
			assert_int_equal(h_int(back, "id"), h_int(ev, "id"));
			assert_string_equal(h_str(back, "kind"), h_str(ev, "kind"));
			assert_string_equal(h_str(back, "message"), h_str(ev, "message"));
			json_decref(ev);
			n++;
		}
		assert_true(n >= 5 + 2 + 2 + 2);
		json_decref(all);
	}
	free(text);

	/* Filters, the text form, and a wrong name. */
	s = h_hpq_json(c, "status", "--team", "b", NULL);
	assert_int_equal(json_array_size(json_object_get(s, "teams")), 1);
	json_decref(s);
	assert_int_equal(h_hpq(c, &o, "status", NULL), 0);
	assert_non_null(strstr(o.out, "TEAM"));
	assert_non_null(strstr(o.out, "CLASS"));
	h_out_free(&o);
	assert_int_equal(h_hpq(c, &o, "status", "--team", "nosuch", NULL), 1);
	assert_non_null(strstr(o.err, "unknown team 'nosuch'"));
	h_out_free(&o);
	s = h_hpq_json(c, "events", "--team", "b", NULL);
	assert_true(json_array_size(s) >= 4 + 2 + 2);
	json_decref(s);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(borrow_and_reclaim, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
