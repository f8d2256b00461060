/*
 * test_daemon_confine.c: what hpqd makes of a node's confinement, on a
 * real state and store in a temp dir:
 *
 *   - a Register says whether the node confines its tasks and why not;
 *     the node keeps it (hpq node show), a later Register replaces it,
 *     and a problem with control characters is refused;
 *   - a member that exits with reason "oom" (an AgentTask with oom set)
 *     ends the task OUT_OF_MEMORY, its reason naming the node and the
 *     limit; a time limit still wins, a plain failure is still FAILED.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "error.h"
#include "hpq.pb-c.h"
#include "scheduler.h"
#include "state.h"
#include "store.h"
#include "submit.h"

struct fix {
	char dir[64];
	char path[128];
	uv_loop_t loop;
	struct store *s;
	struct state st;
};

static const struct actor admin = { .user = "root", .uid = 0, .gid = 0, .admin = true,
				    .known = true };

static int setup(void **ts)
{
	struct fix *f = calloc(1, sizeof(*f));
	char err[256] = "";

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/hpq-confine-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/hpq.db", f->dir);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	if (store_open(f->path, STORE_NOSYNC, &f->s, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	state_init(&f->st, f->s);
	if (state_load(&f->st, err, sizeof(err)) < 0)
		fail_msg("state_load: %s", err);
	assert_int_equal(store_start(f->s, &f->loop, NULL, NULL), 0);
	*ts = f;
	return 0;
}

static int teardown(void **ts)
{
	struct fix *f = *ts;
	char cmd[160];

	state_release(&f->st);
	store_close(f->s);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int reg(struct fix *f, const char *name, bool cgroup, const char *problem,
	       struct node **ret, struct state_err *e)
{
	Hpq__Register r = HPQ__REGISTER__INIT;
	Hpq__Resources cap = HPQ__RESOURCES__INIT;

	cap.cpus = 8;
	cap.mem = 4096;
	r.name = (char *)name;
	r.capacity = &cap;
	r.cgroup = cgroup;
	r.cgroup_problem = (char *)problem;
	return state_node_register(&f->st, &r, "test", ret, e);
}

/* Submits a task asking for mem MiB and starts it as the dispatcher would. */
static struct task *run(struct fix *f, uint64_t mem)
{
	static char *argv[] = { "/bin/true" };
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	const struct sched_decision *d;
	struct state_err e;
	struct task *t = NULL;
	size_t n;

	res.cpus = 1;
	res.mem = mem;
	spec.per_node = &res;
	spec.n_argv = 1;
	spec.argv = argv;
	spec.cwd = "/";
	if (state_task_submit(&f->st, &spec, &admin, &t, &e) < 0)
		fail_msg("submit: %s", e.msg);
	d = sched_cycle(f->st.sched, 0, &n);
	for (size_t i = 0; i < n; i++)
		if (d[i].action == SCHED_START)
			state_task_start(&f->st, state_task_of(d[i].task));
	assert_int_equal(t->state, TASK_RUNNING);
	return t;
}

static void node_reports_confinement(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct node *n;

	assert_int_equal(reg(f, "n1", false, "the cgroup2 subtree /x lacks the memory "
			     "controller", &n, &e), 0);
	assert_false(n->cgroup);
	assert_string_equal(n->cgroup_problem, "the cgroup2 subtree /x lacks the memory "
			    "controller");
	assert_int_equal(reg(f, "n1", true, "", &n, &e), 0);
	assert_true(n->cgroup);
	assert_string_equal(n->cgroup_problem, "");
	assert_int_equal(reg(f, "n1", false, "bad\nline", &n, &e), HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "cgroup"));
	assert_true(n->cgroup); /* unchanged */
}

static void oom_ends_out_of_memory(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct node *n;
	struct task *t;

	assert_int_equal(reg(f, "n1", true, "", &n, &e), 0);
	t = run(f, 64);
	assert_int_equal(state_task_member_exit(&f->st, t, 0, 137, "oom"), EXIT_ENDED);
	assert_int_equal(t->state, TASK_OUT_OF_MEMORY);
	assert_string_equal(state_task_state(t->state), "OUT_OF_MEMORY");
	assert_string_equal(t->reason, "out of memory on n1 (memory.max 64 MiB)");
	assert_int_equal(t->exit_code, 137);

	/* Without a memory limit the node ran out. */
	t = run(f, 0);
	assert_int_equal(state_task_member_exit(&f->st, t, 0, 137, "oom"), EXIT_ENDED);
	assert_int_equal(t->state, TASK_OUT_OF_MEMORY);
	assert_non_null(strstr(t->reason, "no memory limit"));

	/* The others are as before. */
	t = run(f, 64);
	assert_int_equal(state_task_member_exit(&f->st, t, 0, 143, "timeout"), EXIT_ENDED);
	assert_int_equal(t->state, TASK_TIMEOUT);
	t = run(f, 64);
	assert_int_equal(state_task_member_exit(&f->st, t, 0, 137, "signal"), EXIT_ENDED);
	assert_int_equal(t->state, TASK_FAILED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(node_reports_confinement, setup, teardown),
		cmocka_unit_test_setup_teardown(oom_ends_out_of_memory, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
