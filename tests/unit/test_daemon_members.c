/*
 * test_daemon_members.c: the per node index of running members (node.h
 * members, task.h struct task_member) that task.c keeps as tasks enter
 * and leave the state's running list, on a real state and store in a
 * temp dir:
 *
 *   - after any sequence of submits, starts (gangs too), preemptions,
 *     members' exits, requeue requests, cancels, requeues, lost nodes
 *     (their tasks requeued through node_for_each_member, as hpqd does),
 *     removed nodes and nodes of the same name joining again, and a
 *     restart that adopts the running tasks, each node's members are
 *     exactly what a scan of the running tasks by node name finds, in
 *     the running list's order, and no other member is linked;
 *   - the sequence did reach each of those kinds of change.
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
#include "daemon_fixture.h"
#include "error.h"
#include "hpq.pb-c.h"
#include "log.h"
#include "node.h"
#include "state.h"
#include "store.h"
#include "submit.h"
#include "task.h"
#include "team.h"

#define NNODES 24

static const struct actor admin = { .user = "root", .uid = 0, .gid = 0, .admin = true,
				    .known = true };

static int setup(void **ts)
{
	struct fix *f;

	hpq_log_set_level(LOG_WARNING);
	fix_setup(ts, "members", STORE_NOSYNC);
	f = *ts;
	for (int i = 0; i < NNODES; i++) {
		char name[16];

		snprintf(name, sizeof(name), "n%d", i);
		fix_gpu_node(&f->st, name, "a", 8);
	}
	return 0;
}

/* The index against a fresh scan of the running tasks by node name. */
static void verify(struct fix *f, unsigned seed, int step)
{
	struct state *st = &f->st;
	size_t linked = 0, expected = 0;

	for (uint32_t i = 0; i < st->nnodes; i++) {
		const struct node *n = st->nodes[i];
		const struct dlist *at;

		if (!n)
			continue;
		at = n->members.next;
		for (const struct dlist *l = st->running.next; l != &st->running; l = l->next) {
			const struct task *t = container_of(l, struct task, run_link);
			const struct task_member *m;
			int rank = -1;

			for (uint32_t r = 0; r < t->n_node_names && rank < 0; r++)
				if (!strcmp(t->node_names[r], n->name))
					rank = (int)r;
			if (rank < 0)
				continue;
			expected++;
			if (at == &n->members)
				fail_msg("seed %u, step %d: node %s lacks task %llu", seed, step,
					 n->name, (unsigned long long)t->st.id);
			m = container_of(at, struct task_member, link);
			if (m->t != t || m->rank != (uint32_t)rank)
				fail_msg("seed %u, step %d: node %s has task %llu rank %u where "
					 "task %llu rank %d was expected", seed, step, n->name,
					 (unsigned long long)m->t->st.id, m->rank,
					 (unsigned long long)t->st.id, rank);
			at = at->next;
		}
		if (at != &n->members)
			fail_msg("seed %u, step %d: node %s has task %llu, which does not run "
				 "there", seed, step, n->name,
				 (unsigned long long)container_of(at, struct task_member, link)
					 ->t->st.id);
	}
	/* Nothing else is linked: count every task's linked members. */
	for (size_t i = 0; i < st->ntasks; i++) {
		const struct task *t = st->tasks[i];

		for (uint32_t r = 0; r < t->n_node_names; r++) {
			if (t->members[r].link.next == &t->members[r].link)
				continue;
			linked++;
			assert_true(t->state == TASK_RUNNING || t->state == TASK_PREEMPTING);
			assert_ptr_equal(t->members[r].t, t);
		}
	}
	if (linked != expected)
		fail_msg("seed %u, step %d: %zu members linked, %zu expected", seed, step,
			 linked, expected);
}

static void submit(struct fix *f, unsigned *rs)
{
	static char *argv[] = { "/bin/train" };
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	struct state_err e;
	struct task *t;

	res.gpus = 1 + (uint32_t)(rand_r(rs) % 4);
	res.cpus = 1;
	spec.pool = "a";
	spec.nodes = rand_r(rs) % 4 == 0 ? 2 + (uint32_t)(rand_r(rs) % 3) : 1;
	spec.per_node = &res;
	spec.n_argv = 1;
	spec.argv = argv;
	spec.time_limit_s = 3600;
	if (state_task_submit(&f->st, &spec, &admin, &t, &e) < 0)
		fail_msg("submit: %s", e.msg);
}

static struct task *running(struct fix *f, unsigned *rs)
{
	struct dlist *h = &f->st.running, *l;
	size_t n = 0, k;

	for (l = h->next; l != h; l = l->next)
		n++;
	if (!n)
		return NULL;
	k = (size_t)rand_r(rs) % n;
	for (l = h->next; k--; l = l->next)
		;
	return container_of(l, struct task, run_link);
}

/* A node picked at random, or NULL when that slot was removed. */
static struct node *some_node(struct fix *f, unsigned *rs)
{
	return f->st.nodes[(uint32_t)rand_r(rs) % f->st.nnodes];
}

struct seen {
	int starts, gangs, preempts, exits, requeues, cancels, lost, lost_tasks, removed, rejoined;
};

static void cycle(struct fix *f, int64_t now, struct seen *s)
{
	const struct sched_decision *d;
	size_t n;

	d = sched_cycle(f->st.sched, now, &n);
	for (size_t i = 0; i < n; i++) {
		struct task *t = state_task_of(d[i].task);

		if (d[i].action == SCHED_START) {
			state_task_start(&f->st, t);
			s->starts++;
			s->gangs += t->st.nnodes > 1;
		} else if (d[i].action == SCHED_PREEMPT) {
			state_task_preempt(&f->st, t,
					   d[i].beneficiary ? state_task_of(d[i].beneficiary)
							    : NULL, d[i].cause);
			s->preempts++;
		}
	}
}

/* What hpqd does when a node is lost (agentlink.c lose_node). */
static void lose(struct fix *f, struct node *n, struct seen *s)
{
	struct task_member *m, *next;

	state_node_lost(&f->st, n);
	node_for_each_member(m, next, n) {
		struct task *t = m->t;

		if (t->done[m->rank] != '1') {
			state_task_requeue(&f->st, t, "node lost");
			s->lost_tasks++;
		}
	}
	s->lost++;
}

/* A node without tasks leaves (hpq node remove), and may join again. */
static void remove_node(struct fix *f, struct node *n, struct seen *s)
{
	struct state_err e;
	char name[32];

	if (sched_node_tasks(f->st.sched, n->id))
		return;
	snprintf(name, sizeof(name), "%s", n->name);
	state_node_set_service(&f->st, n, "drained", "root", "test");
	state_node_disconnected(&f->st, n);
	if (state_node_remove(&f->st, n, &admin, &e) < 0)
		fail_msg("remove %s: %s", name, e.msg);
	s->removed++;
	if (strcmp(name, "n0")) {     /* n0 stays away: a slot stays NULL */
		fix_gpu_node(&f->st, name, "a", 8);
		s->rejoined++;
	}
}

static void run_seed(struct fix *f, unsigned seed, struct seen *s)
{
	unsigned rs = seed;
	int64_t now = hpq_now_ms();
	struct state_err e;
	struct task *t;
	struct node *n;

	for (int step = 0; step < 1500; step++) {
		int what = rand_r(&rs) % 100;

		now += 20000;
		if (what < 30) {
			submit(f, &rs);
		} else if (what < 55) {
			cycle(f, now, s);
		} else if (what < 75) {
			if ((t = running(f, &rs))) {
				state_task_member_exit(&f->st, t,
						       (uint32_t)(rand_r(&rs) % t->st.nnodes),
						       rand_r(&rs) % 4 == 0, "exit");
				s->exits++;
			}
		} else if (what < 80) {
			if ((t = running(f, &rs)) &&
			    state_task_requeue_request(&f->st, t, &admin, &e) == 1)
				s->requeues++;
		} else if (what < 85) {
			if ((t = running(f, &rs)) && t->state == TASK_RUNNING &&
			    state_task_cancel(&f->st, t, &admin, &e) >= 0)
				s->cancels++;
		} else if (what < 90) {
			if ((t = running(f, &rs))) {
				state_task_requeue(&f->st, t, "agent lost it");
				s->requeues++;
			}
		} else if (what < 94) {
			if ((n = some_node(f, &rs)) && !n->lost)
				lose(f, n, s);
		} else if (what < 97) {
			/* A lost node comes back. */
			if ((n = some_node(f, &rs)) && n->lost)
				fix_gpu_node(&f->st, n->name, "a", 8);
		} else if (what < 99) {
			if ((n = some_node(f, &rs)))
				remove_node(f, n, s);
		} else {
			state_tasks_evict(&f->st, INT64_MAX, 50);
		}
		verify(f, seed, step);
		if (step % 100 == 99)
			fix_commit(f);
	}
}

static void test_index_matches_a_scan(void **ts)
{
	struct fix *f = *ts;
	struct seen s = { 0 };
	size_t before = 0, after = 0;

	for (unsigned seed = 1; seed <= 4; seed++)
		run_seed(f, seed, &s);
	print_message("starts %d (gangs %d), preemptions %d, exits %d, requeues %d, cancels "
		      "%d, lost nodes %d (tasks %d), removed %d, rejoined %d\n", s.starts,
		      s.gangs, s.preempts, s.exits, s.requeues, s.cancels, s.lost, s.lost_tasks,
		      s.removed, s.rejoined);
	assert_true(s.starts > 100);
	assert_true(s.gangs > 10);
	assert_true(s.exits > 50);
	assert_true(s.requeues > 20);
	assert_true(s.cancels > 10);
	assert_true(s.lost > 5 && s.lost_tasks > 5);
	assert_true(s.removed > 0 && s.rejoined > 0);

	/* A restart: the running tasks are adopted, and indexed again, each
	 * with its nodes and the exits its gang's ranks had reported. */
	struct was { uint64_t id; char nodes[64], done[16]; } *was = NULL;
	size_t partial = 0;

	for (struct dlist *l = f->st.running.next; l != &f->st.running; l = l->next) {
		const struct task *t = container_of(l, struct task, run_link);

		was = realloc(was, (before + 1) * sizeof(*was));
		assert_non_null(was);
		was[before].id = t->st.id;
		snprintf(was[before].done, sizeof(was[before].done), "%s", t->done);
		was[before].nodes[0] = '\0';
		for (uint32_t r = 0; r < t->n_node_names; r++)
			snprintf(was[before].nodes + strlen(was[before].nodes),
				 sizeof(was[before].nodes) - strlen(was[before].nodes), "%s,",
				 t->node_names[r]);
		partial += strchr(t->done, '1') != NULL;
		before++;
	}
	assert_true(before > 0);
	assert_true(partial > 0);
	fix_commit_close(f);
	fix_open(f);
	for (struct dlist *l = f->st.running.next; l != &f->st.running; l = l->next)
		after++;
	assert_int_equal(after, before);
	for (size_t i = 0; i < before; i++) {
		const struct task *t = state_task_find(&f->st, was[i].id);
		char nodes[64] = "";

		assert_non_null(t);
		for (uint32_t r = 0; r < t->n_node_names; r++)
			snprintf(nodes + strlen(nodes), sizeof(nodes) - strlen(nodes), "%s,",
				 t->node_names[r]);
		assert_string_equal(nodes, was[i].nodes);
		assert_string_equal(t->done, was[i].done);
	}
	free(was);
	verify(f, 0, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_index_matches_a_scan, setup, fix_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
