/*
 * test_daemon_usage.c: the per user, class and plan GPU rates that
 * daemon/usage.c keeps from the state's events, one task at a time, on a
 * real state and store in a temp dir:
 *
 *   - after any sequence of submits, starts, preemptions (reclaim and
 *     priority), members' exits (ends, failures, requeues on a node's
 *     fault), requeue requests, cancels, class updates of running tasks,
 *     requeues of lost tasks, ended tasks leaving memory and events that
 *     name no task, what was kept agrees with a count of the running tasks
 *     afresh (usage_verify), for a few seeds;
 *   - the sequence did reach each of those kinds of change, so that the
 *     agreement means something.
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

#include "clock.h"
#include "context.h"
#include "daemon_fixture.h"
#include "error.h"
#include "hpq.pb-c.h"
#include "log.h"
#include "state.h"
#include "store.h"
#include "submit.h"
#include "task.h"
#include "team.h"
#include "usage.h"
#include "xalloc.h"

struct usage_fix {
	struct fix fx;              /* the temp dir and the loop; not its store and state */
	struct hpqd d;              /* the state, the store and usage's context */
};

static const struct actor admin = { .user = "root", .uid = 0, .gid = 0, .admin = true,
				    .known = true };
static const char *const users[] = { "alice", "bob", "carol" };

/* Team name with a guarantee of gpus in pool "a", lending, preempting its
 * own lower classes. */
static void team(struct usage_fix *f, const char *name, int64_t gpus)
{
	Hpq__TeamSetRequest req = HPQ__TEAM_SET_REQUEST__INIT;
	Hpq__Team tm = HPQ__TEAM__INIT;
	Hpq__PoolQuota pq = HPQ__POOL_QUOTA__INIT, *pqs[] = { &pq };
	Hpq__Resources g = HPQ__RESOURCES__INIT;
	char *fields[] = { "quotas", "preempt_own" };
	struct state_err e;

	g.gpus = gpus;
	pq.pool = "a";
	pq.guarantee = &g;
	pq.sharing = "lend";
	pq.borrow_limit_pct = 100;
	tm.name = (char *)name;
	tm.n_quotas = 1;
	tm.quotas = pqs;
	tm.preempt_own = "lower-priority";
	req.team = &tm;
	req.create = true;
	req.fields = fields;
	req.n_fields = 2;
	if (state_team_set(&f->d.state, &req, &admin, &e) < 0)
		fail_msg("team: %s", e.msg);
}

static void class_set(struct usage_fix *f, const char *name, bool create, uint32_t weight,
		      bool preemptible)
{
	static char *fields[] = { "weight", "preemptible" };
	Hpq__PriorityClass pc = HPQ__PRIORITY_CLASS__INIT;
	Hpq__ClassSetRequest req = HPQ__CLASS_SET_REQUEST__INIT;
	struct state_err e;

	pc.name = (char *)name;
	pc.weight = weight;
	pc.preemptible = preemptible;
	req.class_ = &pc;
	req.create = create;
	req.n_fields = 2;
	req.fields = fields;
	if (state_class_set(&f->d.state, &req, &admin, &e) < 0)
		fail_msg("class set: %s", e.msg);
}

static int setup(void **ts)
{
	struct usage_fix *f = xcalloc(1, sizeof(*f));
	char err[256] = "";

	hpq_log_set_level(LOG_WARNING);   /* thousands of tasks' events otherwise */
	fix_init(&f->fx, "usage", STORE_NOSYNC);
	f->d.loop = &f->fx.loop;
	if (store_open(f->fx.path, f->fx.flags, &f->d.store, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	state_init(&f->d.state, f->d.store);
	if (state_load(&f->d.state, err, sizeof(err)) < 0)
		fail_msg("state_load: %s", err);
	assert_int_equal(store_start(f->d.store, &f->fx.loop, NULL, NULL), 0);
	fix_gpu_node(&f->d.state, "a0", "a", 8);
	fix_gpu_node(&f->d.state, "a1", "a", 8);
	fix_gpu_node(&f->d.state, "a2", "a", 8);
	fix_gpu_node(&f->d.state, "a3", "a", 8);
	/* Pool b holds hundreds of small tasks at once: what usage keeps per
	 * task then fills its table well past the first collisions. */
	for (int i = 0; i < 60; i++) {
		char name[16];

		snprintf(name, sizeof(name), "b%d", i);
		fix_gpu_node(&f->d.state, name, "b", 8);
	}
	team(f, "t1", 16);
	team(f, "t2", 0);
	class_set(f, "low", true, 1, true);
	class_set(f, "high", true, 50, false);
	assert_int_equal(usage_init(&f->d), 0);
	*ts = f;
	return 0;
}

static int teardown(void **ts)
{
	struct usage_fix *f = *ts;

	usage_close(&f->d);
	fix_commit_store(&f->fx, f->d.store);
	state_release(&f->d.state);
	fix_close_store(&f->fx, f->d.store);
	fix_fini(&f->fx);
	free(f);
	return 0;
}

static void verify(struct usage_fix *f, unsigned seed, int step)
{
	char err[256] = "";

	if (usage_verify(f->d.usage, err, sizeof(err)) < 0)
		fail_msg("seed %u, step %d: %s", seed, step, err);
}

static void submit(struct usage_fix *f, unsigned *rs)
{
	static char *argv[] = { "/bin/train" };
	static const char *const classes[] = { "", "low", "high" };
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	struct actor who = admin;
	struct state_err e;
	struct task *t;
	bool in_b = rand_r(rs) % 2 == 0;
	int n = in_b ? 1 + rand_r(rs) % 10 : 1;

	who.user = users[rand_r(rs) % 3];
	who.uid = who.gid = 1000 + (uint32_t)(rand_r(rs) % 3);
	res.gpus = in_b ? 1 : 1 + (uint32_t)(rand_r(rs) % 8);
	res.cpus = 1;
	spec.pool = in_b ? "b" : "a";
	spec.team = in_b ? "" : rand_r(rs) % 2 ? "t1" : "t2";
	spec.class_ = (char *)classes[rand_r(rs) % 3];
	spec.nodes = rand_r(rs) % 5 == 0 ? 2 : 1;
	spec.per_node = &res;
	spec.n_argv = 1;
	spec.argv = argv;
	spec.time_limit_s = 3600;
	while (n--)
		if (state_task_submit(&f->d.state, &spec, &who, &t, &e) < 0)
			fail_msg("submit: %s", e.msg);
}

static size_t most_running;     /* the most tasks running at once */

/* A running task picked at random, or NULL when none runs. */
static struct task *running(struct usage_fix *f, unsigned *rs)
{
	struct dlist *h = &f->d.state.running, *l;
	size_t n = 0, k;

	for (l = h->next; l != h; l = l->next)
		n++;
	if (n > most_running)
		most_running = n;
	if (!n)
		return NULL;
	k = (size_t)rand_r(rs) % n;
	for (l = h->next; k--; l = l->next)
		;
	return container_of(l, struct task, run_link);
}

struct seen {
	int starts, preempts, ends, requeues, updates, cancels, untasked, evicted;
};

static void cycle(struct usage_fix *f, int64_t now, struct seen *s)
{
	const struct sched_decision *d;
	size_t n;

	d = sched_cycle(f->d.state.sched, now, &n);
	for (size_t i = 0; i < n; i++) {
		struct task *t = state_task_of(d[i].task);

		if (d[i].action == SCHED_START) {
			state_task_start(&f->d.state, t);
			s->starts++;
		} else if (d[i].action == SCHED_PREEMPT) {
			state_task_preempt(&f->d.state, t,
					   d[i].beneficiary ? state_task_of(d[i].beneficiary)
							    : NULL, d[i].cause);
			s->preempts++;
		}
	}
}

static void member_exit(struct usage_fix *f, unsigned *rs, struct seen *s)
{
	static const char *const reasons[] = { "exit", "exit", "fenced", "timeout", "signal" };
	struct task *t = running(f, rs);
	int r;

	if (!t)
		return;
	r = rand_r(rs) % 5;
	switch (state_task_member_exit(&f->d.state, t, (uint32_t)(rand_r(rs) % t->st.nnodes),
				       r == 4 ? 143 : rand_r(rs) % 4 == 0, reasons[r])) {
	case EXIT_ENDED:
		s->ends++;
		break;
	case EXIT_REQUEUED:
		s->requeues++;
		break;
	default:
		break;
	}
}

static void run_seed(struct usage_fix *f, unsigned seed, struct seen *s)
{
	unsigned rs = seed;
	int64_t now = hpq_now_ms();
	struct state_err e;
	struct task *t;

	for (int step = 0; step < 1500; step++) {
		int what = rand_r(&rs) % 100;

		now += 20000;
		if (what < 30) {
			submit(f, &rs);
		} else if (what < 55) {
			cycle(f, now, s);
		} else if (what < 75) {
			member_exit(f, &rs, s);
		} else if (what < 80) {
			if ((t = running(f, &rs)) &&
			    state_task_requeue_request(&f->d.state, t, &admin, &e) == 1)
				s->requeues++;
		} else if (what < 85) {
			if ((t = running(f, &rs)) && t->state == TASK_RUNNING &&
			    state_task_cancel(&f->d.state, t, &admin, &e) >= 0)
				s->cancels++;
		} else if (what < 91) {
			char field[32];
			char *fields[] = { field };

			snprintf(field, sizeof(field), "class=%s", rand_r(&rs) % 2 ? "low" : "high");
			if ((t = running(f, &rs)) &&
			    state_task_update(&f->d.state, t, fields, 1, &admin, &e) >= 0)
				s->updates++;
		} else if (what < 95) {
			if ((t = running(f, &rs)) && t->state == TASK_RUNNING) {
				state_task_requeue(&f->d.state, t, "its node was lost");
				s->requeues++;
			}
		} else if (what < 97) {
			/* An event that names no task: the rates are counted again. */
			class_set(f, "low", false, 1 + (uint32_t)(rand_r(&rs) % 5), true);
			s->untasked++;
		} else {
			s->evicted += (int)state_tasks_evict(&f->d.state, INT64_MAX, 50);
		}
		/* Now and then, not after every step: errors may pile up between. */
		if (rand_r(&rs) % 8 == 0)
			verify(f, seed, step);
		if (step % 100 == 99)
			fix_commit_store(&f->fx, f->d.store);
	}
	verify(f, seed, -1);
}

static void test_kept_rates_match_a_recount(void **ts)
{
	struct usage_fix *f = *ts;
	struct seen s = { 0 };

	for (unsigned seed = 1; seed <= 4; seed++)
		run_seed(f, seed, &s);
	print_message("starts %d, preemptions %d, ends %d, requeues %d, class updates %d, "
		      "cancels %d, events without a task %d, evicted %d; at most %zu running\n",
		      s.starts, s.preempts, s.ends, s.requeues, s.updates, s.cancels, s.untasked,
		      s.evicted, most_running);
	assert_true(most_running > 300);
	assert_true(s.starts > 100);
	assert_true(s.preempts > 0);
	assert_true(s.ends > 50);
	assert_true(s.requeues > 20);
	assert_true(s.updates > 10);
	assert_true(s.cancels > 10);
	assert_true(s.untasked > 0);
	assert_true(s.evicted > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kept_rates_match_a_recount, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
