/*
 * t_sim: hpqd against hpq-sim, many simulated agents over the real
 * protocol in one process (tests/sim/hpq-sim.c).
 *
 *   sim_many:       500 nodes and a stream of short tasks: every task is
 *                   accounted for (COMPLETED, or FAILED with the exit code
 *                   it asked for, or CANCELLED when cancelled), none is
 *                   started twice, and the capacity counters are sane.
 *   sim_liars:      nodes that report exits of tasks they do not run,
 *                   updates with attempts they never got, and floods of
 *                   heartbeats: hpqd refuses or ignores each with a logged
 *                   reason, no task is ended by a lie, nothing crashes.
 *   sim_register_lie: a node whose Register lists the exit of a task that
 *                   runs on a simulated node: the task runs on, and the
 *                   lie is a security event.
 *   sim_impostors:  connections that register names already connected,
 *                   whose agents still beat: each is refused with a logged
 *                   reason, the node is never counted twice, and every
 *                   task runs once, on its real node, to its own exit.
 *
 * hpq-sim writes its counters to a file every second; the waits are on
 * those counters and on hpqd's own state, never on wall time.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "msg.h"

#include "harness.h"

struct sim {
	pid_t pid;
	char stats[160];
	char log[160];
};

static const char *sim_bin(void)
{
	const char *p = getenv("HPQ_TEST_SIM");

	return p && *p ? p : HPQ_TEST_SIM_PATH;
}

/* Starts hpq-sim with its log and counters in the test's dir. */
static void sim_start(struct h_cluster *c, struct sim *s, const char *name, const char *const *extra)
{
	const char *argv[40];
	int n = 0;

	snprintf(s->stats, sizeof(s->stats), "%s/%s.stats", c->dir, name);
	snprintf(s->log, sizeof(s->log), "%s/%s.log", c->dir, name);
	argv[n++] = sim_bin();
	argv[n++] = "--server";
	argv[n++] = c->sock;
	argv[n++] = "--stats";
	argv[n++] = s->stats;
	while (*extra && n < 38)
		argv[n++] = *extra++;
	argv[n] = NULL;
	s->pid = fork();
	if (s->pid < 0)
		fail_msg("fork: %m");
	if (s->pid == 0) {
		FILE *f = freopen(s->log, "a", stderr);

		if (!f)
			_exit(127);
		setenv("HPQ_ITEST_DIR", c->dir, 1); /* the harness's sweep finds it */
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %m\n", argv[0]);
		_exit(127);
	}
}

/* A counter from hpq-sim's stats file; -1 before the first write. */
static long long sim_stat(const struct sim *s, const char *key)
{
	char *text = h_read_file(s->stats), *p;
	size_t len = strlen(key);
	long long v = -1;

	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (!strncmp(p, key, len) && p[len] == ' ') {
			v = atoll(p + len + 1);
			break;
		}
	}
	free(text);
	return v;
}

static void sim_stop(struct h_cluster *c, struct sim *s)
{
	int st;

	kill(s->pid, SIGTERM);
	st = h_wait_child(c, s->pid, 30000);
	assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	s->pid = 0;
}

static void sim_dump(const struct sim *s)
{
	char *text = h_read_file(s->stats);

	fprintf(stderr, "hpq-sim counters:\n%s", text ? text : "(none)\n");
	free(text);
}

static long long res_of(json_t *obj, const char *key, const char *what)
{
	return h_int(json_object_get(obj, key), what);
}

/* The one pool's row of hpq status --json. */
static json_t *pool_row(json_t *status)
{
	return json_array_get(json_object_get(status, "pools"), 0);
}

/* Capacity and use as hpqd counts them agree with nodes x gpus, and
 * nothing is left in use once everything has ended. */
static void assert_capacity(struct h_cluster *c, int nodes, int gpus)
{
	json_t *s = h_hpq_json(c, "status", NULL);
	json_t *p = pool_row(s);

	assert_non_null(p);
	assert_int_equal(h_int(p, "nodes"), nodes);
	assert_int_equal(res_of(p, "capacity", "gpus"), (long long)nodes * gpus);
	assert_int_equal(res_of(p, "used", "gpus"), 0);
	assert_int_equal(res_of(p, "free", "gpus"), (long long)nodes * gpus);
	assert_int_equal(h_int(s, "running"), 0);
	assert_int_equal(h_int(s, "pending"), 0);
	json_decref(s);
}

static bool status_capacity_is(struct h_cluster *c, int nodes, int gpus)
{
	json_t *s = h_hpq_json(c, "status", NULL);
	json_t *p = pool_row(s);
	bool ok = p && h_int(p, "nodes") == nodes &&
		  res_of(p, "capacity", "gpus") == (long long)nodes * gpus;

	json_decref(s);
	return ok;
}

static int count_log(struct h_cluster *c, const char *needle)
{
	char *text = h_read_file(c->log), *p;
	int n = 0;

	for (p = text; p && (p = strstr(p, needle)); p++)
		n++;
	free(text);
	return n;
}

/*
 * Every task of hpq list --all: counts by state and checks that each ran
 * one attempt. Returns how many tasks there are.
 */
struct tally {
	int total, completed, failed3, cancelled, other, multi_attempt;
};

static struct tally tally_tasks(struct h_cluster *c)
{
	json_t *all = h_hpq_json(c, "list", "--all", "--limit", "100000", NULL);
	struct tally t = { 0 };
	size_t i;
	json_t *row;

	json_array_foreach(all, i, row) {
		const char *st = h_str(row, "state");

		t.total++;
		if (!strcmp(st, "COMPLETED") && h_int(row, "exit_code") == 0)
			t.completed++;
		else if (!strcmp(st, "FAILED") && h_int(row, "exit_code") == 3)
			t.failed3++;
		else if (!strcmp(st, "CANCELLED"))
			t.cancelled++;
		else
			t.other++;
		if (h_int(row, "attempts") > 1)
			t.multi_attempt++;
		if (t.other == 1 && strcmp(st, "COMPLETED") && strcmp(st, "FAILED") &&
		    strcmp(st, "CANCELLED"))
			fprintf(stderr, "task %lld: %s exit %lld\n", h_int(row, "id"), st,
				h_int(row, "exit_code"));
	}
	json_decref(all);
	return t;
}

/* Submits arrays of `size` while at most two are waiting to start. */
static int submit_stream(struct h_cluster *c, struct sim *s, int arrays, int size,
			 const char *const *cmds, int ncmds)
{
	char range[32];
	int submitted = 0;

	snprintf(range, sizeof(range), "0-%d", size - 1);
	for (int i = 0; i < arrays; i++) {
		const char *cmd = cmds[i % ncmds];

		if (!H_WAIT_FOR(c, sim_stat(s, "run_tasks") >= submitted - size, 60000)) {
			sim_dump(s);
			fail_msg("the tasks submitted so far did not start");
		}
		if (!strcmp(cmd, "sim"))
			h_submit(c, "--array", range, "--gpus", "1", "--", "sim", "duration=500ms",
				 NULL);
		else
			h_submit(c, "--array", range, "--gpus", "1", "--", cmd, NULL);
		submitted += size;
	}
	return submitted;
}

static void sim_many(void **state)
{
	struct h_cluster *c = *state;
	const char *const args[] = { "--nodes", "500", "--prefix", "many", "--quiet", NULL };
	const char *const cmds[] = { "sim:duration=1s", "sim", "sim:duration=2s,ckpt=500ms" };
	struct sim s;
	struct tally t;
	uint64_t cancelled;
	int total;

	h_daemon_start(c);
	sim_start(c, &s, "sim", args);
	if (!H_WAIT_FOR(c, sim_stat(&s, "ready") == 500, 60000)) {
		sim_dump(&s);
		fail_msg("500 simulated nodes did not register");
	}
	assert_true(H_WAIT_FOR(c, status_capacity_is(c, 500, 8), 30000));

	/* One that runs until it is cancelled: KillTask is honoured. */
	cancelled = h_submit(c, "--gpus", "1", "--", "sim:duration=1h", NULL);
	/* Exit codes come from the task's argv. */
	h_submit(c, "--array", "0-19", "--", "sim:duration=200ms,exit=3", NULL);
	total = 21 + submit_stream(c, &s, 15, 200, cmds, 3);
	assert_true(h_wait_state(c, cancelled, "RUNNING", 30000));
	{
		char id[32];

		snprintf(id, sizeof(id), "%llu", (unsigned long long)cancelled);
		assert_int_equal(h_hpq(c, NULL, "cancel", id, NULL), 0);
	}
	assert_true(h_wait_state(c, cancelled, "CANCELLED", 30000));

	/* Every exit reported and acknowledged. */
	if (!H_WAIT_FOR(c, sim_stat(&s, "exits_acked") >= total, 90000)) {
		sim_dump(&s);
		fail_msg("not every task's exit was acknowledged");
	}
	assert_true(H_WAIT_FOR(c, h_status_counter(c, "running") == 0, 30000));

	t = tally_tasks(c);
	if (t.total != total || t.completed != total - 21 || t.failed3 != 20 ||
	    t.cancelled != 1 || t.other || t.multi_attempt) {
		sim_dump(&s);
		fail_msg("%d tasks of %d: %d completed, %d failed with 3, %d cancelled, %d other, "
			 "%d with more than one attempt", t.total, total, t.completed, t.failed3,
			 t.cancelled, t.other, t.multi_attempt);
	}
	assert_capacity(c, 500, 8);
	/* The counters as the simulator wrote them at its exit: the file is
	 * otherwise rewritten once a second, and could miss a late start. */
	sim_stop(c, &s);
	assert_int_equal(sim_stat(&s, "run_tasks"), total);
	assert_int_equal(sim_stat(&s, "dup_starts"), 0);
	assert_int_equal(sim_stat(&s, "concurrent_dups"), 0);
	assert_int_equal(sim_stat(&s, "max_attempt"), 1);
	assert_int_equal(sim_stat(&s, "exits_refused"), 0);
	assert_true(sim_stat(&s, "kills") >= 1);
	assert_true(sim_stat(&s, "ckpts_acked") > 0);
	assert_int_equal(sim_stat(&s, "ckpts_refused"), 0);
	assert_int_equal(sim_stat(&s, "disconnects"), 0);
	h_pass(c);
}

static void sim_liars(void **state)
{
	struct h_cluster *c = *state;
	const char *const args[] = { "--nodes", "40", "--prefix", "liar", "--lie-exits", "40",
				     "--bad-attempts", "40", "--flood-heartbeats", "50",
				     "--misbehave-after", "0.5s", "--quiet", NULL };
	const char *const cmds[] = { "sim:duration=1s" };
	struct sim s;
	struct tally t;
	int total;

	h_daemon_start(c);
	sim_start(c, &s, "sim", args);
	if (!H_WAIT_FOR(c, sim_stat(&s, "ready") == 40, 30000)) {
		sim_dump(&s);
		fail_msg("40 simulated nodes did not register");
	}
	total = submit_stream(c, &s, 6, 100, cmds, 1);
	if (!H_WAIT_FOR(c, sim_stat(&s, "exits_acked") >= total, 90000)) {
		sim_dump(&s);
		fail_msg("not every task's exit was acknowledged");
	}
	/* Lies went out, and enough of them. */
	assert_true(H_WAIT_FOR(c, sim_stat(&s, "lies_sent") >= 50 &&
				      sim_stat(&s, "bad_sent") >= 50, 30000));
	sim_stop(c, &s);

	/* No lie ended a task: each ran once, to its own exit 0. */
	t = tally_tasks(c);
	if (t.total != total || t.completed != total || t.multi_attempt) {
		sim_dump(&s);
		fail_msg("%d tasks of %d: %d completed, %d other, %d with more than one attempt",
			 t.total, total, t.completed, t.other, t.multi_attempt);
	}
	assert_int_equal(sim_stat(&s, "dup_starts"), 0);
	assert_int_equal(sim_stat(&s, "concurrent_dups"), 0);
	assert_int_equal(sim_stat(&s, "exits_refused"), 0);
	/* Every exit about another node's task or a task never made is refused
	 * as a security event, with the reason in hpqd's log. */
	assert_int_equal(sim_stat(&s, "lies_accepted"), 0);
	assert_int_equal(sim_stat(&s, "lies_refused"), sim_stat(&s, "lies_sent"));
	assert_true(count_log(c, "a node reports only its own tasks") > 0);
	/* An attempt the node never got: refused, or (an attempt that is not
	 * the current one) ignored; the task itself ran on, as tallied. */
	assert_true(sim_stat(&s, "bad_refused") > 0);
	/* The flood: taken without harm, damped with a logged reason. */
	assert_true(sim_stat(&s, "heartbeats") > 40 * 50);
	assert_true(count_log(c, "heartbeats a second: ignoring") > 0);
	/* The nodes left: nothing is in use, nothing counted twice. */
	json_t *st = h_hpq_json(c, "status", NULL);

	assert_int_equal(res_of(pool_row(st), "used", "gpus"), 0);
	assert_int_equal(h_int(st, "running"), 0);
	json_decref(st);
	h_pass(c);
}

/* Sends env on fd and returns the reply to its id (pushes before it are
 * dropped), or NULL. */
static Hpq__Envelope *raw_request(int fd, struct hpq_framer *f, Hpq__Envelope *env)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	Hpq__Envelope *reply;

	h_append_frame(&buf, &len, env);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	free(buf);
	while ((reply = h_next_frame(fd, f, 30000)) && reply->id != env->id)
		hpq_msg_free(reply);
	return reply;
}

static void sim_register_lie(void **state)
{
	struct h_cluster *c = *state;
	const char *const args[] = { "--nodes", "2", "--prefix", "reg", "--quiet", NULL };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__Hello hello = HPQ__HELLO__INIT;
	Hpq__Register reg = HPQ__REGISTER__INIT;
	Hpq__Resources cap = HPQ__RESOURCES__INIT;
	Hpq__AgentTask lie = HPQ__AGENT_TASK__INIT, *tasks[1] = { &lie };
	struct hpq_framer f;
	struct sim s;
	char want[128];
	uint64_t id;
	json_t *t;
	int fd;

	h_daemon_start(c);
	sim_start(c, &s, "sim", args);
	assert_true(H_WAIT_FOR(c, sim_stat(&s, "ready") == 2, 30000));
	id = h_submit(c, "--gpus", "1", "--", "sim:duration=1h", NULL);
	assert_true(h_wait_state(c, id, "RUNNING", 30000));

	/* Node regliar registers, listing that task's exit as its own. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->sock);
	assert_true(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	hpq_framer_init(&f, HPQ_FRAME_MAX);
	hello.role = HPQ__ROLE__ROLE_AGENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)"t_sim";
	hello.name = (char *)"regliar";
	env.id = 1;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	reply = raw_request(fd, &f, &env);
	assert_non_null(reply);
	assert_int_equal(reply->body_case, HPQ__ENVELOPE__BODY_HELLO_REPLY);
	hpq_msg_free(reply);
	lie.task_id = id;
	lie.attempt = 1;
	lie.exited = true;
	lie.exit_code = 99;
	lie.reason = (char *)"exit";
	cap.gpus = 1;
	cap.cpus = 1;
	cap.mem = 1024;
	reg.name = (char *)"regliar";
	reg.capacity = &cap;
	reg.tasks = tasks;
	reg.n_tasks = 1;
	env.id = 2;
	env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
	env.register_ = &reg;
	reply = raw_request(fd, &f, &env);
	assert_non_null(reply);
	assert_int_equal(reply->body_case, HPQ__ENVELOPE__BODY_REGISTER_REPLY);
	hpq_msg_free(reply);

	/* Ignored, and said so: the task runs on where it ran. */
	snprintf(want, sizeof(want), "Register reports the exit of task %llu attempt 1",
		 (unsigned long long)id);
	assert_true(H_WAIT_FOR(c, h_has_event(c, "security", want), 30000));
	t = h_task(c, id);
	assert_string_equal(h_str(t, "state"), "RUNNING");
	assert_int_equal(h_int(t, "attempts"), 1);
	json_decref(t);
	close(fd);
	hpq_framer_release(&f);

	assert_int_equal(h_hpq(c, NULL, "cancel", h_id(id), NULL), 0);
	assert_true(h_wait_state(c, id, "CANCELLED", 30000));
	sim_stop(c, &s);
	assert_int_equal(sim_stat(&s, "max_attempt"), 1);
	h_pass(c);
}

static void sim_impostors(void **state)
{
	struct h_cluster *c = *state;
	const char *const args[] = { "--nodes", "20", "--prefix", "imp", "--dup-register", "5",
				     "--misbehave-after", "1s", "--quiet", NULL };
	const char *const cmds[] = { "sim:duration=3s" };
	struct sim s;
	struct tally t;
	int total;

	h_daemon_start(c);
	sim_start(c, &s, "sim", args);
	if (!H_WAIT_FOR(c, sim_stat(&s, "ready") == 20, 30000)) {
		sim_dump(&s);
		fail_msg("20 simulated nodes did not register");
	}
	total = submit_stream(c, &s, 2, 160, cmds, 1);
	/* The impostors came while the real nodes ran tasks, and were refused
	 * with the reason logged. */
	if (!H_WAIT_FOR(c, sim_stat(&s, "ghosts_refused") == 5, 60000)) {
		sim_dump(&s);
		fail_msg("the impostors were not refused");
	}
	assert_true(H_WAIT_FOR(c, count_log(c, "a second agent") >= 5, 30000));
	assert_true(H_WAIT_FOR(c, ({
		json_t *st = h_hpq_json(c, "status", NULL);
		bool idle = h_int(st, "running") == 0 && h_int(st, "pending") == 0;

		json_decref(st);
		idle;
	}), 90000));
	/* Twenty nodes, never twenty-five. */
	assert_capacity(c, 20, 8);
	sim_stop(c, &s);

	/* No task was given up on the word of an impostor: each ran once, on
	 * its real node, to its own exit. */
	t = tally_tasks(c);
	if (t.total != total || t.completed != total || t.multi_attempt) {
		sim_dump(&s);
		fail_msg("%d tasks of %d: %d completed, %d other, %d with more than one attempt",
			 t.total, total, t.completed, t.other, t.multi_attempt);
	}
	assert_int_equal(sim_stat(&s, "ghosts_registered"), 0);
	assert_int_equal(sim_stat(&s, "ghost_run_tasks"), 0);
	assert_int_equal(sim_stat(&s, "run_tasks"), total);
	assert_int_equal(sim_stat(&s, "max_attempt"), 1);
	assert_int_equal(sim_stat(&s, "dup_starts"), 0);
	assert_int_equal(sim_stat(&s, "concurrent_dups"), 0);
	/* The real nodes' connections were never dropped: only the impostors'. */
	assert_int_equal(sim_stat(&s, "disconnects"), 5);
	assert_int_equal(count_log(c, "registers again: dropping its previous connection"), 0);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(sim_many, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(sim_liars, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(sim_register_lie, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(sim_impostors, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
