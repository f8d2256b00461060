/*
 * test_daemon_policy.c: governance administration in the daemon, on a
 * real state and store in a temp dir:
 *
 *   - `hpq policy set` (policy_set): admin only; every pair is checked
 *     before any is applied (a bad one leaves the policy untouched); the
 *     change reaches memory and survives a reopen;
 *   - limits of "unlimited" (HPQ_UNLIMITED_*) are accepted and kept as
 *     exactly that, also across a reopen; real limits are still capped;
 *   - a guarantee larger than its pool's nodes is refused, in a pool with
 *     no nodes yet it is not;
 *   - queue positions follow class weight, then submit order, per team.
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
#include "hpq.h"
#include "hpq.pb-c.h"
#include "policy.h"
#include "queue.h"
#include "state.h"
#include "store.h"
#include "submit.h"

static const struct actor admin = { .user = "root", .uid = 0, .gid = 0, .admin = true,
				    .known = true };
static const struct actor alice = { .user = "alice", .uid = 1000, .gid = 1000, .known = true };

static int setup(void **ts)
{
	return fix_setup(ts, "policy", STORE_NOSYNC);
}

/* No commit of its own before the close: store_close commits what is left. */
static int teardown(void **ts)
{
	return fix_teardown_uncommitted(ts);
}

/* policy_set with pairs "k1", "v1", "k2", "v2", ..., NULL. */
static int set(struct fix *f, const struct actor *who, struct state_err *e, ...)
{
	Hpq__PolicySetting s[8], *p[8];
	Hpq__PolicySetRequest req = HPQ__POLICY_SET_REQUEST__INIT;
	const char *k;
	va_list ap;

	va_start(ap, e);
	while ((k = va_arg(ap, const char *))) {
		hpq__policy_setting__init(&s[req.n_settings]);
		s[req.n_settings].key = (char *)k;
		s[req.n_settings].value = va_arg(ap, char *);
		p[req.n_settings] = &s[req.n_settings];
		req.n_settings++;
	}
	va_end(ap);
	req.settings = p;
	return policy_set(&f->st, &req, who, e);
}

static void test_policy_set(void **ts)
{
	struct fix *f = *ts;
	struct state_err e;
	Hpq__PolicyReply rep;

	/* Defaults of a new cluster. */
	policy_to_pb(&f->st, &rep);
	assert_string_equal(rep.idle_allocation, "fair-share");
	assert_int_equal(rep.half_life_s, 3600);
	assert_int_equal(rep.min_runtime_s, 0);
	assert_int_equal(rep.grace_s, 60);
	assert_string_equal(rep.requeue_order, "submit");

	assert_int_equal(set(f, &alice, &e, "grace", "5s", NULL), HPQ_EPERM);
	/* One bad pair: nothing changes. */
	assert_int_equal(set(f, &admin, &e, "grace", "5s", "idle-allocation", "random", NULL),
			 HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "fair-share or fcfs"));
	assert_int_equal(set(f, &admin, &e, "half-life", "0", NULL), HPQ_EINVAL);
	assert_int_equal(set(f, &admin, &e, "grace", "8d", NULL), HPQ_EINVAL);
	assert_int_equal(set(f, &admin, &e, "grace", "5s", "grace", "6s", NULL), HPQ_EINVAL);
	assert_int_equal(set(f, &admin, &e, "quantum", "5s", NULL), HPQ_EINVAL);
	assert_int_equal(set(f, &admin, &e, NULL), HPQ_EINVAL);
	assert_int_equal(f->st.policy.grace_s, 60);
	assert_int_equal(f->st.policy.sched.idle, SCHED_IDLE_FAIR_SHARE);

	assert_int_equal(set(f, &admin, &e, "idle-allocation", "fcfs", "half-life", "2h",
			     "min-runtime", "90s", "grace", "5s", "requeue-order", "eviction",
			     NULL), 0);
	assert_int_equal(f->st.policy.sched.idle, SCHED_IDLE_FCFS);
	assert_int_equal(f->st.policy.sched.half_life_ms, 2 * 3600 * 1000);
	assert_int_equal(f->st.policy.sched.min_runtime_ms, 90 * 1000);
	assert_int_equal(f->st.policy.grace_s, 5);
	assert_true(f->st.policy.sched.requeue_by_eviction);
	fix_commit(f);

	/* Durable. */
	fix_close(f);
	fix_open(f);
	policy_to_pb(&f->st, &rep);
	assert_string_equal(rep.idle_allocation, "fcfs");
	assert_int_equal(rep.half_life_s, 7200);
	assert_int_equal(rep.min_runtime_s, 90);
	assert_int_equal(rep.grace_s, 5);
	assert_string_equal(rep.requeue_order, "eviction");
}

static int team_set(struct fix *f, const char *name, bool create, const char *pool,
		    const Hpq__Resources *g, const Hpq__Resources *borrow_abs, struct state_err *e)
{
	Hpq__Team team = HPQ__TEAM__INIT;
	Hpq__PoolQuota pq = HPQ__POOL_QUOTA__INIT, *pqs[] = { &pq };
	Hpq__TeamSetRequest req = HPQ__TEAM_SET_REQUEST__INIT;
	char *fields[2];

	pq.pool = (char *)pool;
	team.name = (char *)name;
	team.n_quotas = 1;
	team.quotas = pqs;
	if (g) {
		pq.guarantee = (Hpq__Resources *)g;
		fields[req.n_fields++] = "quota.guarantee";
	}
	if (borrow_abs) {
		pq.has_borrow_limit_abs = true;
		pq.borrow_limit_abs = (Hpq__Resources *)borrow_abs;
		fields[req.n_fields++] = "quota.borrow_limit_abs";
	}
	req.team = &team;
	req.create = create;
	req.fields = fields;
	return state_team_set(&f->st, &req, &admin, e);
}

static void test_unlimited_and_guarantees(void **ts)
{
	struct fix *f = *ts;
	Hpq__Resources unl = HPQ__RESOURCES__INIT, big = HPQ__RESOURCES__INIT;
	Hpq__Resources g = HPQ__RESOURCES__INIT, cap = HPQ__RESOURCES__INIT;
	Hpq__Register reg = HPQ__REGISTER__INIT;
	struct state_err e;
	struct team *t;
	struct node *n;

	unl.gpus = HPQ_UNLIMITED_COUNT;
	unl.cpus = HPQ_UNLIMITED_COUNT + 5;
	unl.mem = HPQ_UNLIMITED_MEM;
	assert_int_equal(team_set(f, "a", true, "default", NULL, &unl, &e), 0);
	t = state_team_find(&f->st, "a");
	assert_true(t->quotas[0].q.has_borrow_abs);
	assert_int_equal(t->quotas[0].q.borrow_abs.gpus, HPQ_UNLIMITED_COUNT);
	assert_int_equal(t->quotas[0].q.borrow_abs.cpus, HPQ_UNLIMITED_COUNT);
	assert_int_equal(t->quotas[0].q.borrow_abs.mem, (int64_t)HPQ_UNLIMITED_MEM);
	/* The default team's own unlimited is the same value. */
	t = state_team_find(&f->st, "default");
	assert_int_equal(t->quotas[0].q.borrow_abs.gpus, HPQ_UNLIMITED_COUNT);
	/* A finite but absurd limit is still refused. */
	big.gpus = 5000;
	assert_int_equal(team_set(f, "a", false, "default", NULL, &big, &e), HPQ_EINVAL);

	/* Pool "gpu" has no nodes yet: any guarantee. */
	g.gpus = 64;
	assert_int_equal(team_set(f, "b", true, "gpu", &g, NULL, &e), 0);
	/* Once it has a node of 8 GPUs, 9 is too many, 8 is fine. */
	cap.gpus = 8;
	cap.cpus = 16;
	cap.mem = 1024;
	reg.name = "g1";
	reg.pool = "gpu";
	reg.capacity = &cap;
	reg.address = "";
	assert_int_equal(state_node_register(&f->st, &reg, "0.1.0", &n, &e), 0);
	g.gpus = 9;
	assert_int_equal(team_set(f, "b", false, "gpu", &g, NULL, &e), HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "larger than pool gpu"));
	assert_int_equal(state_team_find(&f->st, "b")->quotas[0].q.guarantee.gpus, 64);
	g.gpus = 8;
	assert_int_equal(team_set(f, "c", true, "gpu", &g, NULL, &e), 0);
	fix_commit(f);

	fix_close(f);
	fix_open(f);
	t = state_team_find(&f->st, "a");
	assert_int_equal(t->quotas[0].q.borrow_abs.cpus, HPQ_UNLIMITED_COUNT);
	assert_int_equal(t->quotas[0].q.borrow_abs.mem, (int64_t)HPQ_UNLIMITED_MEM);
}

static struct task *submit(struct fix *f, const char *team, const char *cls)
{
	char *argv[] = { "true" };
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	struct state_err e;
	struct task *t = NULL;

	res.gpus = 1;
	spec.per_node = &res;
	spec.team = (char *)team;
	spec.class_ = (char *)cls;
	spec.n_argv = 1;
	spec.argv = argv;
	if (state_task_submit(&f->st, &spec, &admin, &t, &e) < 0)
		fail_msg("submit: %s", e.msg);
	return t;
}

static void test_queue_positions(void **ts)
{
	struct fix *f = *ts;
	struct task *a1, *a2, *a3, *b1, *a4;
	struct queue_index *qi;
	struct state_err e;

	assert_int_equal(team_set(f, "b", true, "default", NULL, NULL, &e), 0);
	/* Nothing runs: no nodes. */
	a1 = submit(f, "default", "data-processing");
	a2 = submit(f, "default", "training");
	a3 = submit(f, "default", "data-processing");
	b1 = submit(f, "b", "fine-tuning");
	a4 = submit(f, "default", "inference");
	assert_int_equal(queue_position(&f->st, a4), 1);
	assert_int_equal(queue_position(&f->st, a2), 2);
	assert_int_equal(queue_position(&f->st, a1), 3);
	assert_int_equal(queue_position(&f->st, a3), 4);
	assert_int_equal(queue_position(&f->st, b1), 1);
	qi = queue_index_new(&f->st);
	assert_int_equal(queue_index_get(qi, a4->st.id), 1);
	assert_int_equal(queue_index_get(qi, a2->st.id), 2);
	assert_int_equal(queue_index_get(qi, a1->st.id), 3);
	assert_int_equal(queue_index_get(qi, a3->st.id), 4);
	assert_int_equal(queue_index_get(qi, b1->st.id), 1);
	assert_int_equal(queue_index_get(qi, 9999), 0);
	queue_index_free(qi);
	/* A cancelled task leaves the queue. */
	assert_int_equal(state_task_cancel(&f->st, a2, &admin, &e), 0);
	assert_int_equal(queue_position(&f->st, a2), 0);
	assert_int_equal(queue_position(&f->st, a1), 2);
	fix_commit(f);
}

/* The index agrees with queue_position for every task, asked as a list
 * walks (up, down, and skipping) and in no order, ids not pending too. */
static void test_queue_index_orders(void **ts)
{
	static const char *const cls[] = { "data-processing", "training", "inference",
					   "fine-tuning" };
	struct fix *f = *ts;
	struct queue_index *qi;
	struct state_err e;
	uint64_t first, last;
	char team[40][8];

	/* 40 teams and 4 weights: more groups than the index first has room for. */
	for (unsigned i = 0; i < 40; i++) {
		snprintf(team[i], sizeof(team[i]), "t%u", i);
		assert_int_equal(team_set(f, team[i], true, "default", NULL, NULL, &e), 0);
	}
	first = submit(f, "default", cls[0])->st.id;
	for (unsigned i = 1; i < 400; i++)
		submit(f, i % 3 ? "default" : team[i % 40], cls[(i * 7) % 4]);
	last = f->st.tasks[f->st.ntasks - 1]->st.id;
	for (unsigned i = 0; i < 400; i += 9)
		assert_int_equal(state_task_cancel(&f->st, f->st.tasks[i], &admin, &e), 0);
	/* Queue times out of id order (requeued by eviction, an array's
	 * later indices), some equal: those groups are sorted, the others not. */
	for (unsigned i = 0; i < 400; i++)
		f->st.tasks[i]->queue_ms = i % 5 == 0 ? 5000 - (int64_t)i * 10
					 : i % 7 == 0 ? 3000 : 1000 + (int64_t)i;
	qi = queue_index_new(&f->st);
	for (int pass = 0; pass < 4; pass++) {
		for (size_t k = 0; k < f->st.ntasks; k++) {
			size_t i = pass == 0 ? k : pass == 1 ? f->st.ntasks - 1 - k
				 : pass == 2 ? (k * 2) % f->st.ntasks : (k * 37) % f->st.ntasks;
			const struct task *t = f->st.tasks[i];

			assert_int_equal(queue_index_get(qi, t->st.id), queue_position(&f->st, t));
		}
		assert_int_equal(queue_index_get(qi, first - 1), 0);
		assert_int_equal(queue_index_get(qi, last + 1), 0);
	}
	queue_index_free(qi);
	fix_commit(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_policy_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlimited_and_guarantees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_positions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_index_orders, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
