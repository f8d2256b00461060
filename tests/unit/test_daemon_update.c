/*
 * test_daemon_update.c: what a submit may ask and how a task's request
 * changes after it (daemon/task.c, daemon/update.c, daemon/node.c), with
 * the real state and store on temporary files:
 *
 *   - a request no registered node of its pool could ever hold is refused
 *     at submit, saying which limit and what the largest node offers; a
 *     pool with no node yet takes anything;
 *   - --exclusive asks for whole nodes; a class caps time limits;
 *   - a pending task that no node can hold any more (its node came back
 *     smaller, or a node of a gang's pool left) says "unsatisfiable", not
 *     "capacity";
 *   - hpq update: a pending task changes its resources, class, name and
 *     time; a running one only its time and class, and only a team admin
 *     or an administrator gives it more time; bad fields change nothing;
 *   - hpq requeue: a running task is marked, a pending or ended one is
 *     refused; the mark, the preemption count and the class cap survive
 *     a reopen;
 *   - hpq node remove: only a drained node that holds no task leaves, for
 *     good (also after a reopen), and its name may join again;
 *   - a node whose room a waiting gang holds may not register in another
 *     pool until that has passed.
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

#include "daemon_fixture.h"
#include "error.h"
#include "hpq.pb-c.h"
#include "state.h"
#include "store.h"
#include "submit.h"

static const struct actor admin = { .user = "root", .uid = 0, .gid = 0, .admin = true,
				    .known = true };
static const struct actor alice = { .user = "alice", .uid = 1000, .gid = 1000, .known = true };
static const struct actor bob = { .user = "bob", .uid = 1001, .gid = 1001, .known = true };

static int setup(void **ts)
{
	return fix_setup(ts, "update", 0);
}

struct ask {
	const char *pool, *cls, *team;
	uint32_t nodes, gpus;
	uint64_t time_s;
	bool exclusive;
};

static int submit(struct fix *f, const struct actor *who, struct ask a, struct task **ret,
		  struct state_err *e)
{
	static char *argv[] = { "/bin/train" };
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	struct task *t;

	res.gpus = a.gpus;
	res.cpus = 1;
	spec.pool = (char *)(a.pool ? a.pool : "");
	spec.class_ = (char *)(a.cls ? a.cls : "");
	spec.team = (char *)(a.team ? a.team : "");
	spec.nodes = a.nodes;
	spec.per_node = &res;
	spec.n_argv = 1;
	spec.argv = argv;
	spec.time_limit_s = a.time_s;
	spec.exclusive = a.exclusive;
	return state_task_submit(&f->st, &spec, who, ret ? ret : &t, e);
}

static void class_cap(struct fix *f, const char *name, uint64_t max_s)
{
	static char *fields[] = { "max_time" };
	Hpq__PriorityClass pc = HPQ__PRIORITY_CLASS__INIT;
	Hpq__ClassSetRequest req = HPQ__CLASS_SET_REQUEST__INIT;
	struct state_err e;

	pc.name = (char *)name;
	pc.max_time_s = max_s;
	req.class_ = &pc;
	req.n_fields = 1;
	req.fields = fields;
	if (state_class_set(&f->st, &req, &admin, &e) < 0)
		fail_msg("class set: %s", e.msg);
}

static int update(struct fix *f, struct task *t, const struct actor *who, struct state_err *e,
		  const char *f1, const char *f2)
{
	char *fields[2] = { (char *)f1, (char *)f2 };

	return state_task_update(&f->st, t, fields, f2 ? 2 : 1, who, e);
}

static void impossible_requests_are_refused(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct task *t;
	size_t before;

	/* No node yet: anything is taken, nodes may still join. */
	assert_int_equal(submit(f, &alice, (struct ask){ .gpus = 16 }, &t, &e), 0);

	fix_gpu_node(&f->st, "a1", "default", 8);
	fix_gpu_node(&f->st, "a2", "default", 8);
	before = f->st.ntasks;
	assert_int_equal(submit(f, &alice, (struct ask){ .gpus = 16 }, NULL, &e), HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "16 GPUs"));
	assert_non_null(strstr(e.msg, "the most any has is 8"));
	assert_int_equal(submit(f, &alice, (struct ask){ .nodes = 3, .gpus = 8 }, NULL, &e),
			 HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "only 2 nodes"));
	assert_int_equal(submit(f, &alice, (struct ask){ .pool = "nope" }, NULL, &e),
			 HPQ_ENOTFOUND);
	assert_int_equal(f->st.ntasks, before);         /* nothing changed */

	/* The task taken before the nodes came is now known never to fit. */
	assert_string_equal(state_task_reason(&f->st, t), "unsatisfiable");

	/* Whole nodes: --exclusive takes a node's size. */
	assert_int_equal(submit(f, &alice, (struct ask){ .nodes = 2, .gpus = 1, .exclusive = true },
				&t, &e), 0);
	assert_int_equal(t->st.per_node.gpus, 8);
	assert_int_equal(t->st.per_node.cpus, 64);

	/* A class caps time limits. */
	class_cap(f, "training", 3600);
	assert_int_equal(submit(f, &alice, (struct ask){ .cls = "training", .gpus = 1,
							  .time_s = 7200 }, NULL, &e),
			 HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "class training's maximum of 1h"));
	assert_int_equal(submit(f, &alice, (struct ask){ .cls = "training", .gpus = 1,
							  .time_s = 3600 }, NULL, &e), 0);
}

static void a_node_that_shrinks_leaves_its_queue_unsatisfiable(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct task *big, *t;

	fix_gpu_node(&f->st, "a1", "default", 8);
	assert_int_equal(submit(f, &alice, (struct ask){ .gpus = 8 }, &big, &e), 0);
	assert_int_equal(submit(f, &alice, (struct ask){ .gpus = 8 }, &t, &e), 0);
	fix_cycle(&f->st);
	assert_int_equal(big->state, TASK_RUNNING);
	assert_string_not_equal(state_task_reason(&f->st, t), "unsatisfiable");
	/* The node comes back with half its GPUs (one failed for good). */
	fix_gpu_node(&f->st, "a1", "default", 4);
	assert_string_equal(state_task_reason(&f->st, t), "unsatisfiable");
}

/* What a pool could ever give is remembered per request shape while its
 * nodes stay as they are; a node that leaves makes it count again. */
static void a_node_removed_leaves_a_gang_unsatisfiable(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct task *one, *gang;
	struct node *idle;

	fix_gpu_node(&f->st, "a1", "default", 8);
	fix_gpu_node(&f->st, "a2", "default", 8);
	assert_int_equal(submit(f, &alice, (struct ask){ .gpus = 8 }, &one, &e), 0);
	fix_cycle(&f->st);
	assert_int_equal(one->state, TASK_RUNNING);
	assert_int_equal(submit(f, &alice, (struct ask){ .nodes = 2, .gpus = 8 }, &gang, &e), 0);
	fix_cycle(&f->st);
	assert_string_not_equal(state_task_reason(&f->st, gang), "unsatisfiable");
	assert_string_not_equal(state_task_reason(&f->st, gang), "unsatisfiable");
	idle = state_node_find(&f->st, strcmp(one->node_names[0], "a1") ? "a1" : "a2");
	state_node_set_service(&f->st, idle, "drained", "root", "retired");
	state_node_disconnected(&f->st, idle);
	/* Drained, it still counts: it may come back. */
	assert_string_not_equal(state_task_reason(&f->st, gang), "unsatisfiable");
	assert_int_equal(state_node_remove(&f->st, idle, &admin, &e), 0);
	assert_string_equal(state_task_reason(&f->st, gang), "unsatisfiable");
	/* And a new submit of that shape is refused. */
	assert_int_equal(submit(f, &alice, (struct ask){ .nodes = 2, .gpus = 8 }, NULL, &e),
			 HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "only 1 node"));
}

/* One dispatcher cycle, a little later than the one before, its starts and
 * preemptions applied as dispatch.c does. */
static void cycle_all(struct fix *f)
{
	static int64_t now = 1000;
	const struct sched_decision *d;
	size_t n;

	now += 10;
	d = sched_cycle(f->st.sched, now, &n);
	for (size_t i = 0; i < n; i++) {
		struct task *t = state_task_of(d[i].task);

		if (d[i].action == SCHED_START)
			state_task_start(&f->st, t);
		else if (d[i].action == SCHED_PREEMPT)
			state_task_preempt(&f->st, t,
					   d[i].beneficiary ? state_task_of(d[i].beneficiary)
							    : NULL, d[i].cause);
	}
}

static int register_in(struct fix *f, const char *name, const char *pool, struct state_err *e)
{
	Hpq__Register reg = HPQ__REGISTER__INIT;
	Hpq__Resources cap = HPQ__RESOURCES__INIT;
	struct node *n;

	cap.gpus = 8;
	cap.cpus = 64;
	cap.mem = 512 * 1024;
	reg.name = (char *)name;
	reg.pool = (char *)pool;
	reg.capacity = &cap;
	reg.address = "10.0.0.1";
	return state_node_register(&f->st, &reg, "0.1.0", &n, e);
}

/*
 * A gang reclaims its team's guarantee: it waits for the borrower's task
 * to leave, its room held on both nodes. The idle one runs nothing, yet
 * may not move to another pool, or hpqd would list it there while the
 * dispatcher still counts it here, and starts the gang on it.
 */
static void a_node_held_for_a_gang_keeps_its_pool(void **ts)
{
	struct fix *f = *ts;
	Hpq__TeamSetRequest req = HPQ__TEAM_SET_REQUEST__INIT;
	Hpq__Team tm = HPQ__TEAM__INIT;
	Hpq__PoolQuota pq = HPQ__POOL_QUOTA__INIT, *pqs[] = { &pq };
	Hpq__Resources g = HPQ__RESOURCES__INIT;
	char *fields[] = { "quotas" };
	struct actor owner = admin;
	struct state_err e;
	struct task *borrowed, *gang;
	struct node *idle;
	struct hpq_res cap;
	uint32_t home;

	fix_gpu_node(&f->st, "a1", "default", 8);
	fix_gpu_node(&f->st, "a2", "default", 8);
	home = state_pool_find(&f->st, "default")->id;
	g.gpus = 16;
	pq.pool = "default";
	pq.guarantee = &g;
	pq.sharing = "lend-and-borrow";
	pq.borrow_limit_pct = 100;
	tm.name = "owner";
	tm.n_quotas = 1;
	tm.quotas = pqs;
	req.team = &tm;
	req.create = true;
	req.fields = fields;
	req.n_fields = 1;
	assert_int_equal(state_team_set(&f->st, &req, &admin, &e), 0);
	owner.user = "alice";
	owner.uid = owner.gid = 1000;
	assert_int_equal(submit(f, &alice, (struct ask){ .cls = "training", .gpus = 8 },
				&borrowed, &e), 0);
	cycle_all(f);
	assert_int_equal(borrowed->state, TASK_RUNNING);
	assert_int_equal(submit(f, &owner, (struct ask){ .team = "owner", .cls = "training",
							  .nodes = 2, .gpus = 4 },
				&gang, &e), 0);
	cycle_all(f);
	assert_int_equal(borrowed->state, TASK_PREEMPTING);
	idle = state_node_find(&f->st, strcmp(borrowed->node_names[0], "a1") ? "a1" : "a2");
	assert_int_equal(sched_node_tasks(f->st.sched, idle->id), 0);

	assert_int_equal(register_in(f, idle->name, "other", &e), HPQ_EBUSY);
	assert_non_null(strstr(e.msg, "held for"));
	assert_int_equal(idle->pool, home);

	/* The borrower leaves: the gang starts on both nodes of its own pool. */
	assert_int_equal(state_task_member_exit(&f->st, borrowed, 0, 143, "signal"),
			 EXIT_REQUEUED);
	cycle_all(f);
	assert_int_equal(gang->state, TASK_RUNNING);
	for (uint32_t i = 0; i < gang->n_node_names; i++)
		assert_int_equal(state_node_find(&f->st, gang->node_names[i])->pool, home);
	/* Once nothing holds it any more, it moves, capacity and all. */
	assert_int_equal(state_task_member_exit(&f->st, gang, 0, 0, "exit"), EXIT_WAIT);
	assert_int_equal(state_task_member_exit(&f->st, gang, 1, 0, "exit"), EXIT_ENDED);
	assert_int_equal(register_in(f, idle->name, "other", &e), 0);
	assert_int_equal(sched_pool_capacity(f->st.sched, idle->pool, &cap, NULL), 0);
	assert_int_equal(cap.gpus, 8);
}

static void update_pending_and_running(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct task *run, *wait;

	fix_gpu_node(&f->st, "a1", "default", 8);
	assert_int_equal(submit(f, &alice, (struct ask){ .gpus = 8, .time_s = 600 }, &run, &e), 0);
	assert_int_equal(submit(f, &alice, (struct ask){ .gpus = 8, .time_s = 600 }, &wait, &e),
			 0);
	fix_cycle(&f->st);
	assert_int_equal(run->state, TASK_RUNNING);
	assert_int_equal(wait->state, TASK_PENDING);

	/* Pending: resources, name, class, time, all at once. */
	assert_int_equal(update(f, wait, &alice, &e, "gpus=4", "name=smaller"), 0);
	assert_int_equal(wait->st.per_node.gpus, 4);
	assert_string_equal(wait->name, "smaller");
	assert_int_equal(update(f, wait, &alice, &e, "class=training", "time=30m"), 0);
	assert_string_equal(wait->cls, "training");
	assert_int_equal(wait->time_limit_s, 1800);
	/* The dispatcher sees the new size: 4 GPUs still do not fit next to 8. */
	fix_cycle(&f->st);
	assert_int_equal(wait->state, TASK_PENDING);

	/* Bad input changes nothing. */
	assert_int_equal(update(f, wait, &alice, &e, "gpus=4", "colour=blue"), HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "colour"));
	assert_int_equal(update(f, wait, &alice, &e, "gpus=16", NULL), HPQ_EINVAL);
	assert_int_equal(wait->st.per_node.gpus, 4);
	assert_int_equal(update(f, wait, &alice, &e, "class=nope", NULL), HPQ_ENOTFOUND);
	assert_int_equal(update(f, wait, &alice, &e, "gpus", NULL), HPQ_EINVAL);
	assert_int_equal(update(f, wait, &bob, &e, "name=mine", NULL), HPQ_EPERM);
	assert_string_equal(wait->name, "smaller");
	/* A short name lives in the task, a long one apart (ASan checks
	 * that each is freed the right way). */
	assert_ptr_equal(wait->name, wait->name_buf);
	assert_int_equal(update(f, wait, &alice, &e,
				"name=a-name-longer-than-the-task-holds-inside", NULL), 0);
	assert_string_equal(wait->name, "a-name-longer-than-the-task-holds-inside");
	assert_ptr_not_equal(wait->name, wait->name_buf);
	assert_int_equal(update(f, wait, &alice, &e, "name=smaller", NULL), 0);
	assert_string_equal(wait->name, "smaller");
	assert_ptr_equal(wait->name, wait->name_buf);

	/* Running: only time and class; the owner may only give time back. */
	assert_int_equal(update(f, run, &alice, &e, "gpus=1", NULL), HPQ_ESTATE);
	assert_int_equal(update(f, run, &alice, &e, "time=2h", NULL), HPQ_EPERM);
	assert_int_equal(update(f, run, &alice, &e, "time=none", NULL), HPQ_EPERM);
	assert_int_equal(run->time_limit_s, 600);
	assert_int_equal(update(f, run, &alice, &e, "time=5", NULL), 1);    /* 5 minutes */
	assert_int_equal(run->time_limit_s, 300);
	assert_int_equal(update(f, run, &admin, &e, "time=2h", NULL), 1);
	assert_int_equal(run->time_limit_s, 7200);
	assert_int_equal(update(f, run, &alice, &e, "class=inference", NULL), 0);
	assert_string_equal(run->cls, "inference");

	/* A class cap holds for updates too, except for administrators. */
	class_cap(f, "training", 3600);
	assert_int_equal(update(f, wait, &alice, &e, "time=2h", NULL), HPQ_EINVAL);
	assert_int_equal(update(f, wait, &admin, &e, "time=2h", NULL), 0);
}

static void requeue_marks_running_tasks(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct task *run, *wait;
	uint64_t id;

	fix_gpu_node(&f->st, "a1", "default", 8);
	assert_int_equal(submit(f, &alice, (struct ask){ .gpus = 8 }, &run, &e), 0);
	assert_int_equal(submit(f, &alice, (struct ask){ .gpus = 8 }, &wait, &e), 0);
	fix_cycle(&f->st);
	id = run->st.id;
	assert_int_equal(state_task_requeue_request(&f->st, wait, &alice, &e), HPQ_ESTATE);
	assert_non_null(strstr(e.msg, "pending"));
	assert_int_equal(state_task_requeue_request(&f->st, run, &bob, &e), HPQ_EPERM);
	assert_int_equal(state_task_requeue_request(&f->st, run, &alice, &e), 1);
	assert_string_equal(run->requeue_by, "alice");
	assert_int_equal(state_task_requeue_request(&f->st, run, &alice, &e), 0); /* on its way */
	class_cap(f, "fine-tuning", 7200);

	/* The mark survives a restart; the exit then requeues instead of ending. */
	fix_commit_close(f);
	fix_open(f);
	run = state_task_find(&f->st, id);
	assert_string_equal(run->requeue_by, "alice");
	assert_int_equal(state_class_find(&f->st, "fine-tuning")->max_time_s, 7200);
	assert_int_equal(state_task_member_exit(&f->st, run, 0, 143, "signal"), EXIT_REQUEUED);
	assert_int_equal(run->state, TASK_PENDING);
	assert_string_equal(run->requeue_by, "");
	assert_false(run->has_exit_code);
}

static void a_drained_node_is_removed(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	struct task *run;
	struct node *n;
	char name[16];

	fix_gpu_node(&f->st, "a1", "default", 8);
	fix_gpu_node(&f->st, "a2", "default", 8);
	assert_int_equal(submit(f, &alice, (struct ask){ .gpus = 8 }, &run, &e), 0);
	fix_cycle(&f->st);
	snprintf(name, sizeof(name), "%s", run->node_names[0]);
	n = state_node_find(&f->st, name);
	/* Not drained, a task on it, not an administrator: refused, nothing changes. */
	assert_int_equal(state_node_remove(&f->st, n, &admin, &e), HPQ_ESTATE);
	assert_non_null(strstr(e.msg, "drain it first"));
	state_node_set_service(&f->st, n, "drained", "root", "retire");
	assert_int_equal(state_node_remove(&f->st, n, &admin, &e), HPQ_EBUSY);
	assert_non_null(strstr(e.msg, "holds 1 task"));
	assert_int_equal(state_task_member_exit(&f->st, run, 0, 0, "exit"), EXIT_ENDED);
	assert_int_equal(state_node_remove(&f->st, n, &admin, &e), HPQ_EBUSY);
	assert_non_null(strstr(e.msg, "agent is connected"));
	state_node_disconnected(&f->st, n);
	assert_int_equal(state_node_remove(&f->st, n, &alice, &e), HPQ_EPERM);
	assert_int_equal(state_node_remove(&f->st, n, &admin, &e), 0);
	assert_null(state_node_find(&f->st, name));
	/* A 16-GPU gang now needs both nodes: only one is left. */
	assert_int_equal(submit(f, &alice, (struct ask){ .nodes = 2, .gpus = 8 }, NULL, &e),
			 HPQ_EINVAL);

	/* Gone after a restart too; the name can join again as a new node. */
	fix_commit_close(f);
	fix_open(f);
	assert_null(state_node_find(&f->st, name));
	assert_non_null(state_node_find(&f->st, strcmp(name, "a1") ? "a1" : "a2"));
	fix_gpu_node(&f->st, name, "default", 8);
	assert_non_null(state_node_find(&f->st, name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(impossible_requests_are_refused,
						setup, fix_teardown),
		cmocka_unit_test_setup_teardown(a_node_that_shrinks_leaves_its_queue_unsatisfiable,
						setup, fix_teardown),
		cmocka_unit_test_setup_teardown(a_node_removed_leaves_a_gang_unsatisfiable, setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(a_node_held_for_a_gang_keeps_its_pool, setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(update_pending_and_running, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(requeue_marks_running_tasks, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(a_drained_node_is_removed, setup, fix_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
