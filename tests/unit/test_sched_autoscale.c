/*
 * test_sched_autoscale.c: the autoscaler's pure plan (daemon/autoscale-plan.h).
 *
 * Checked: a burst launches exactly the nodes its work packs onto (an
 * array's pending indices too), and a
 * second plan with those nodes launching asks for nothing more; free
 * capacity on the nodes there are is used first; max_nodes, a template
 * too small and a back-off stop launches; gangs need distinct nodes;
 * min_nodes is kept; empty nodes leave after idle_timeout and not before
 * (the plan says when to look again), never below min_nodes and within
 * the disruption budget; consolidation empties a node whose movable work
 * fits elsewhere, never one with work that may not move; a node past its
 * lifetime is replaced within the budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "autoscale-plan.h"

#define CPU(n) ((struct hpq_res){ 0, (n), 1024 * (n) })
#define NOW 1000000

static struct asplan_pool pool_of(uint32_t min, uint32_t max)
{
	return (struct asplan_pool){
		.tmpl = CPU(2),
		.min_nodes = min,
		.max_nodes = max,
		.idle_timeout_ms = 60000,
		.budget = 1,
		.may_launch = true,
	};
}

static void demand(struct asplan_demand *d, size_t n, struct hpq_res per, uint32_t nnodes)
{
	for (size_t i = 0; i < n; i++)
		d[i] = (struct asplan_demand){ per, nnodes, 1 };
}

static struct asplan_node ready(uint32_t id, struct hpq_res free, uint32_t ntasks,
				const struct hpq_res *tasks)
{
	return (struct asplan_node){
		.id = id,
		.state = ASPLAN_READY,
		.managed = true,
		.schedulable = true,
		.movable = true,
		.capacity = CPU(2),
		.free = free,
		.ntasks = ntasks,
		.task_res = tasks,
		.empty_since_ms = ntasks ? 0 : NOW - 1000,
		.born_ms = NOW - 1000,
	};
}

static void burst_launches_exactly(void **state)
{
	struct asplan p;
	struct asplan_pool pool = pool_of(0, 10);
	struct asplan_demand d[6];
	struct asplan_node n[3];

	(void)state;
	asplan_init(&p);
	demand(d, 6, CPU(1), 1);
	asplan_run(&p, &pool, NULL, 0, d, 6, NOW);
	assert_int_equal(p.launch, 3);
	assert_int_equal(p.unplaced, 0);
	/* The same work with those three launching: nothing more. */
	for (uint32_t i = 0; i < 3; i++)
		n[i] = (struct asplan_node){ .id = i, .state = ASPLAN_LAUNCHING, .managed = true,
					     .capacity = CPU(2) };
	asplan_run(&p, &pool, n, 3, d, 6, NOW);
	assert_int_equal(p.launch, 0);
	/* An array's six pending indices as one item: the same three. */
	d[0].count = 6;
	asplan_run(&p, &pool, NULL, 0, d, 1, NOW);
	assert_int_equal(p.launch, 3);
	/* Two more tasks: one node more. */
	demand(d, 6, CPU(1), 1);
	{
		struct asplan_demand more[8];

		demand(more, 8, CPU(1), 1);
		asplan_run(&p, &pool, n, 3, more, 8, NOW);
		assert_int_equal(p.launch, 1);
	}
	asplan_release(&p);
}

static void free_capacity_first(void **state)
{
	struct asplan p;
	struct asplan_pool pool = pool_of(0, 10);
	struct asplan_demand d[3];
	struct hpq_res one = CPU(1);
	struct asplan_node n[2] = { ready(0, CPU(1), 1, &one), ready(1, CPU(1), 1, &one) };

	(void)state;
	asplan_init(&p);
	demand(d, 3, CPU(1), 1);
	asplan_run(&p, &pool, n, 2, d, 3, NOW);
	assert_int_equal(p.launch, 1);
	/* A node that is not schedulable (draining) gives nothing. */
	n[1].schedulable = false;
	asplan_run(&p, &pool, n, 2, d, 3, NOW);
	assert_int_equal(p.launch, 1);
	asplan_run(&p, &pool, n, 2, d, 2, NOW);
	assert_int_equal(p.launch, 1);
	asplan_release(&p);
}

static void limits_stop_launches(void **state)
{
	struct asplan p;
	struct asplan_pool pool = pool_of(0, 2);
	struct asplan_demand d[10];

	(void)state;
	asplan_init(&p);
	demand(d, 10, CPU(1), 1);
	asplan_run(&p, &pool, NULL, 0, d, 10, NOW);
	assert_int_equal(p.launch, 2);
	assert_int_equal(p.unplaced, 6);
	/* Larger than the template: no node would take it. */
	demand(d, 1, CPU(3), 1);
	asplan_run(&p, &pool, NULL, 0, d, 1, NOW);
	assert_int_equal(p.launch, 0);
	assert_int_equal(p.unplaced, 1);
	/* Backing off. */
	pool.may_launch = false;
	demand(d, 1, CPU(1), 1);
	asplan_run(&p, &pool, NULL, 0, d, 1, NOW);
	assert_int_equal(p.launch, 0);
	asplan_release(&p);
}

static void gangs_need_distinct_nodes(void **state)
{
	struct asplan p;
	struct asplan_pool pool = pool_of(0, 10);
	struct asplan_demand d[2];

	(void)state;
	asplan_init(&p);
	/* Two gangs of 2 x 1 CPU: both fit on two 2-CPU nodes. */
	demand(d, 2, CPU(1), 2);
	asplan_run(&p, &pool, NULL, 0, d, 2, NOW);
	assert_int_equal(p.launch, 2);
	/* One gang of 3 x 2 CPUs: three nodes. */
	demand(d, 1, CPU(2), 3);
	asplan_run(&p, &pool, NULL, 0, d, 1, NOW);
	assert_int_equal(p.launch, 3);
	asplan_release(&p);
}

static void min_nodes_kept(void **state)
{
	struct asplan p;
	struct asplan_pool pool = pool_of(2, 4);
	struct asplan_node n[2] = { ready(0, CPU(2), 0, NULL), ready(1, CPU(2), 0, NULL) };

	(void)state;
	asplan_init(&p);
	asplan_run(&p, &pool, NULL, 0, NULL, 0, NOW);
	assert_int_equal(p.launch, 2);
	/* Two empty nodes long idle, min 2: neither leaves. */
	n[0].empty_since_ms = n[1].empty_since_ms = NOW - 3600000;
	pool.budget = 5;
	asplan_run(&p, &pool, n, 2, NULL, 0, NOW);
	assert_int_equal(p.launch, 0);
	assert_int_equal(p.nremove, 0);
	pool.min_nodes = 1;
	asplan_run(&p, &pool, n, 2, NULL, 0, NOW);
	assert_int_equal(p.nremove, 1);
	asplan_release(&p);
}

static void idle_nodes_leave(void **state)
{
	struct asplan p;
	struct asplan_pool pool = pool_of(0, 4);
	struct asplan_node n[3] = { ready(0, CPU(2), 0, NULL), ready(1, CPU(2), 0, NULL),
				    ready(2, CPU(2), 0, NULL) };
	struct asplan_demand d[1];

	(void)state;
	asplan_init(&p);
	/* Not yet: the plan says when. */
	asplan_run(&p, &pool, n, 3, NULL, 0, NOW);
	assert_int_equal(p.nremove, 0);
	assert_int_equal(p.next_ms, NOW - 1000 + 60000);
	/* Then, within the budget (1): one at a time. */
	asplan_run(&p, &pool, n, 3, NULL, 0, NOW + 60000);
	assert_int_equal(p.nremove, 1);
	n[p.remove[0]].state = ASPLAN_LEAVING;
	asplan_run(&p, &pool, n, 3, NULL, 0, NOW + 60000);
	assert_int_equal(p.nremove, 0);
	/* A budget of 2: the next one goes; work that wants a node keeps it. */
	pool.budget = 2;
	demand(d, 1, CPU(1), 1);
	asplan_run(&p, &pool, n, 3, d, 1, NOW + 60000);
	assert_int_equal(p.nremove, 1);
	assert_int_equal(p.launch, 0);
	/* Not managed: never removed. */
	n[1].managed = n[2].managed = false;
	asplan_run(&p, &pool, n, 3, NULL, 0, NOW + 60000);
	assert_int_equal(p.nremove, 0);
	asplan_release(&p);
}

static void consolidation(void **state)
{
	struct asplan p;
	struct asplan_pool pool = pool_of(0, 4);
	struct hpq_res one = CPU(1);
	struct asplan_node n[3] = { ready(0, CPU(1), 1, &one), ready(1, CPU(1), 1, &one),
				    ready(2, CPU(1), 1, &one) };

	(void)state;
	asplan_init(&p);
	asplan_run(&p, &pool, n, 3, NULL, 0, NOW);
	assert_int_equal(p.nconsolidate, 0);         /* off */
	pool.consolidation = true;
	asplan_run(&p, &pool, n, 3, NULL, 0, NOW);
	assert_int_equal(p.nconsolidate, 1);         /* budget 1 */
	pool.budget = 3;
	asplan_run(&p, &pool, n, 3, NULL, 0, NOW);
	/* Three half-full nodes: one empties into another; the third has
	 * nowhere left to go. */
	assert_int_equal(p.nconsolidate, 1);
	/* Work that may not move: not those nodes. */
	n[0].movable = n[1].movable = n[2].movable = false;
	asplan_run(&p, &pool, n, 3, NULL, 0, NOW);
	assert_int_equal(p.nconsolidate, 0);
	n[0].movable = true;
	asplan_run(&p, &pool, n, 3, NULL, 0, NOW);
	assert_int_equal(p.nconsolidate, 1);
	assert_int_equal(p.consolidate[0], 0);
	/* A budget used up by nodes already leaving: nothing. */
	pool.budget = 1;
	n[2].state = ASPLAN_LEAVING;
	asplan_run(&p, &pool, n, 3, NULL, 0, NOW);
	assert_int_equal(p.nconsolidate, 0);
	asplan_release(&p);
}

static void lifetime_replaced(void **state)
{
	struct asplan p;
	struct asplan_pool pool = pool_of(0, 2);
	struct hpq_res one = CPU(1);
	struct asplan_node n[2] = { ready(0, CPU(1), 1, &one), ready(1, CPU(1), 1, &one) };

	(void)state;
	asplan_init(&p);
	pool.max_lifetime_ms = 10000;
	n[0].born_ms = NOW - 20000;
	n[1].born_ms = NOW - 5000;
	asplan_run(&p, &pool, n, 2, NULL, 0, NOW);
	assert_int_equal(p.nreplace, 1);
	assert_int_equal(p.replace[0], 0);
	assert_int_equal(p.next_ms, NOW + 5000);
	/* Its replacement is on the way: the budget is taken. */
	n[0].replacing = true;
	asplan_run(&p, &pool, n, 2, NULL, 0, NOW + 6000);
	assert_int_equal(p.nreplace, 0);
	asplan_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_launches_exactly),
		cmocka_unit_test(free_capacity_first),
		cmocka_unit_test(limits_stop_launches),
		cmocka_unit_test(gangs_need_distinct_nodes),
		cmocka_unit_test(min_nodes_kept),
		cmocka_unit_test(idle_nodes_leave),
		cmocka_unit_test(consolidation),
		cmocka_unit_test(lifetime_replaced),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
