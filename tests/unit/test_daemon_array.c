/*
 * test_daemon_array.c: task arrays (daemon/array.c) on a real state and
 * store in a temp dir:
 *
 *   - index specs: ranges, steps, lists, the % limit, overlaps, and every
 *     malformed or out-of-range spec refused with a message;
 *   - the index sets: removal from the middle of a stepped range, format;
 *   - a 10,000-index array with %50 is one task and one queued entry at
 *     submit; one cycle starts exactly 50 indices (the successor hook), an
 *     index that ends lets exactly one more start; each index runs once;
 *   - a restart keeps the pending indices, the running ones and the limit,
 *     and a pending set however scattered a cancel left it;
 *   - a bad array submit changes nothing;
 *   - selectors: ids (12, 12_5, 12_[1-3,7]) and filters, malformed ones
 *     and the empty selector refused;
 *   - hold and release: a held task leaves the dispatcher and comes back
 *     with its place in the queue; another user is refused and nothing
 *     changes; running tasks are "not pending", released ones "not held";
 *     one index, a whole array, and cancel of a whole array (head,
 *     pending rest and running indices) and of 10,000 pending tasks by a
 *     filter;
 *   - dependencies: parsing, unknown ids, cycles, a changed dependency,
 *     afterok chains,
 *     afternotok, never-satisfied with and without kill_on_invalid_dep,
 *     any-of, arrays as a whole and by index, singleton, and a restart;
 *   - a singleton array runs one index at a time (met at submit or not,
 *     with afterok and a % limit, a million indices, across restarts),
 *     and a plain task of its name and user waits its turn;
 *   - adding to index sets in any order joins ranges by stride;
 *   - an array's ended tasks leave memory while the rest runs, the array
 *     once all of it ended; dependencies on its indices and on it still
 *     resolve, also after a restart that loads no ended task.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <uv.h>

#include "array.h"
#include "clock.h"
#include "control.h"
#include "daemon_fixture.h"
#include "depend.h"
#include "error.h"
#include "hpq.h"
#include "hpq.pb-c.h"
#include "log.h"
#include "select.h"
#include "state.h"
#include "state-internal.h"
#include "store.h"
#include "submit.h"

static const struct actor alice = { .user = "alice", .uid = 1000, .gid = 1000, .known = true };
static const struct actor bob = { .user = "bob", .uid = 1002, .gid = 1002, .known = true };

static int setup(void **ts)
{
	return fix_setup(ts, "array", STORE_NOSYNC);
}

/* No commit of its own before the close: store_close commits what is left. */
static int teardown(void **ts)
{
	return fix_teardown_uncommitted(ts);
}

/* ---------------------------------------------------------------- specs */

static char *fmt(const char *spec, uint32_t *m)
{
	struct array_set set;
	struct state_err e;
	char *s;

	if (array_set_parse(spec, &set, m, &e) < 0)
		fail_msg("%s: %s", spec, e.msg);
	s = array_set_format(&set);
	array_set_release(&set);
	return s;
}

static void expect(const char *spec, const char *want, uint32_t want_m)
{
	uint32_t m;
	char *s = fmt(spec, &m);

	assert_string_equal(s, want);
	assert_int_equal(m, want_m);
	free(s);
}

static void refused(const char *spec, const char *msg_part)
{
	struct array_set set;
	struct state_err e = { { 0 } };
	uint32_t m;

	assert_int_equal(array_set_parse(spec, &set, &m, &e), HPQ_EINVAL);
	if (!strstr(e.msg, msg_part))
		fail_msg("'%s': message '%s' does not say '%s'", spec, e.msg, msg_part);
}

/* The indices an array_set walk gave, up to stop (0: all). */
static struct {
	uint32_t v[64];
	size_t n, stop;
} walked;

static bool walk_one(void *arg, uint32_t idx)
{
	(void)arg;
	walked.v[walked.n++] = idx;
	return !walked.stop || walked.n < walked.stop;
}

static void test_specs(void **ts)
{
	struct array_set set;
	struct state_err e;
	uint32_t m;
	char *s;

	(void)ts;
	expect("0-999%50", "0-999", 50);
	expect("7", "7", 0);
	expect("1,3,5-9:2", "1,3,5-9:2", 0);
	expect("0-10:3", "0-9:3", 0);                  /* the last index in the range */
	expect("5-9,0-2", "0-2,5-9", 0);               /* sorted */
	expect("1-5,3", "1-5", 0);                     /* overlaps: each index once */
	expect("0-10:2,1-9:2", "0-10", 0);
	expect("4000000", "4000000", 0);
	expect("0-999999%1", "0-999999", 1);

	refused("", "empty");
	refused("abc", "not a list of indices");
	refused("1-", "not a list of indices");
	refused("-3", "not a list of indices");
	refused("1,,2", "not a list of indices");
	refused("1-5%", "not a list of indices");
	refused("1-5%x", "not a list of indices");
	refused("1-5%0", "limit of 0");
	refused("9-3", "goes down");
	refused("1-9:0", "step of 0");
	refused("4000001", "from 0 to 4000000");
	refused("99999999999999999999", "from 0 to 4000000");
	refused("0-1000000", "more than 1000000");
	refused("0-10 ", "not a list of indices");

	/* Removal: the ends, then the middle of a stepped range splits it. */
	assert_int_equal(array_set_parse("0-20:2,30", &set, &m, &e), 0);
	assert_int_equal(array_set_count(&set), 12);
	assert_true(array_set_has(&set, 8));
	assert_false(array_set_has(&set, 9));
	assert_false(array_set_remove(&set, 9));
	assert_true(array_set_remove(&set, 0));
	assert_true(array_set_remove(&set, 20));
	assert_true(array_set_remove(&set, 10));
	assert_true(array_set_remove(&set, 30));
	s = array_set_format(&set);
	assert_string_equal(s, "2-8:2,12-18:2");
	free(s);
	assert_int_equal(array_set_min(&set), 2);
	assert_int_equal(array_set_count(&set), 8);
	array_set_release(&set);

	/* Walked both ways: every index once, in order, whatever the steps. */
	assert_int_equal(array_set_parse("0,3-9:3,11-16:2,20-21", &set, &m, &e), 0);
	walked.n = 0;
	array_set_each(&set, 0, walk_one, &walked);
	assert_int_equal(walked.n, 9);
	assert_memory_equal(walked.v, ((uint32_t[]){ 0, 3, 6, 9, 11, 13, 15, 20, 21 }),
			    9 * sizeof(uint32_t));
	walked.n = 0;
	array_set_each_desc(&set, UINT32_MAX, walk_one, &walked);
	assert_int_equal(walked.n, 9);
	assert_memory_equal(walked.v, ((uint32_t[]){ 21, 20, 15, 13, 11, 9, 6, 3, 0 }),
			    9 * sizeof(uint32_t));
	/* Stopped by its callback. */
	walked.n = 0;
	walked.stop = 4;
	array_set_each_desc(&set, UINT32_MAX, walk_one, &walked);
	assert_int_equal(walked.n, 4);
	walked.stop = 0;
	/* Resumed where a walk stopped: from an index in a range, between
	 * its steps, between ranges, and past either end. */
	walked.n = 0;
	array_set_each(&set, 4, walk_one, &walked);
	assert_memory_equal(walked.v, ((uint32_t[]){ 6, 9, 11, 13, 15, 20, 21 }),
			    7 * sizeof(uint32_t));
	assert_int_equal(walked.n, 7);
	walked.n = 0;
	array_set_each(&set, 13, walk_one, &walked);
	assert_int_equal(walked.n, 4);
	assert_int_equal(walked.v[0], 13);
	walked.n = 0;
	array_set_each(&set, 22, walk_one, &walked);
	assert_int_equal(walked.n, 0);
	walked.n = 0;
	array_set_each_desc(&set, 14, walk_one, &walked);
	assert_memory_equal(walked.v, ((uint32_t[]){ 13, 11, 9, 6, 3, 0 }), 6 * sizeof(uint32_t));
	assert_int_equal(walked.n, 6);
	walked.n = 0;
	array_set_each_desc(&set, 18, walk_one, &walked);
	assert_int_equal(walked.v[0], 15);
	walked.n = 0;
	array_set_each_desc(&set, 2, walk_one, &walked);
	assert_int_equal(walked.n, 1);
	assert_int_equal(walked.v[0], 0);
	array_set_release(&set);
}

/* ---------------------------------------------------------------- on a state */

static int submit_full(struct fix *f, const struct actor *who, const char *name,
		       const char *array, bool hold, const char *dep, bool kill, struct task **t,
		       struct state_err *e)
{
	char *argv[] = { "/bin/true" };
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;

	res.cpus = 1;
	spec.per_node = &res;
	spec.n_argv = 1;
	spec.argv = argv;
	spec.name = (char *)name;
	spec.array = (char *)array;
	spec.hold = hold;
	spec.dependency = (char *)dep;
	spec.kill_on_invalid_dep = kill;
	return state_task_submit(&f->st, &spec, who, t, e);
}

static int submit(struct fix *f, const char *array, bool hold, struct task **t,
		  struct state_err *e)
{
	return submit_full(f, &alice, "", array, hold, "", false, t, e);
}

/* A plain task of alice's with a dependency; asserts it was accepted. */
static struct task *dep_task(struct fix *f, const char *dep, bool kill)
{
	struct state_err e = { { 0 } };
	struct task *t = NULL;

	if (submit_full(f, &alice, "", "", false, dep, kill, &t, &e) < 0)
		fail_msg("submit with '%s': %s", dep, e.msg);
	return t;
}

/* Ends a running task with exit code code. */
static void task_exit(struct fix *f, struct task *t, int code)
{
	assert_int_equal(t->state, TASK_RUNNING);
	assert_int_equal(state_task_member_exit(&f->st, t, 0, code, "exit"), EXIT_ENDED);
}

static uint32_t count_state(struct fix *f, uint64_t array_id, enum task_state s)
{
	uint32_t n = 0;

	for (size_t i = 0; i < f->st.ntasks; i++)
		if (f->st.tasks[i]->array_id == array_id && f->st.tasks[i]->state == s)
			n++;
	return n;
}

/* Every running index of the array exits 0. */
static uint32_t finish_running(struct fix *f, uint64_t array_id, uint32_t max)
{
	uint32_t n = 0;

	for (size_t i = 0; i < f->st.ntasks && n < max; i++) {
		struct task *t = f->st.tasks[i];

		if (t->array_id == array_id && t->state == TASK_RUNNING) {
			assert_int_equal(state_task_member_exit(&f->st, t, 0, 0, "exit"),
					 EXIT_ENDED);
			n++;
		}
	}
	return n;
}

static void test_limit_and_fanout(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct sched_usage u;
	struct array *a;
	struct task *t;
	uint8_t *seen;
	size_t ntasks;

	/* 2 nodes of 64 CPUs: room for 128 one-CPU tasks. */
	fix_cpu_node(&f->st, "n1", 64);
	fix_cpu_node(&f->st, "n2", 64);

	/* Bad input changes nothing. */
	assert_int_equal(submit(f, "0-9999%0", false, &t, &e), HPQ_EINVAL);
	assert_int_equal(submit(f, "0-5000000", false, &t, &e), HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "indices go from 0 to 4000000"));
	assert_int_equal(f->st.ntasks, 0);
	assert_int_equal(f->st.narrays, 0);

	assert_int_equal(submit(f, "0-9999%50", false, &t, &e), 0);
	a = array_find(&f->st, t->st.id);
	assert_non_null(a);
	assert_int_equal(t->array_id, t->st.id);
	assert_int_equal(t->array_index, 0);
	assert_int_equal(f->st.ntasks, 1);
	assert_int_equal(array_set_count(&a->pending), 9999);
	assert_int_equal(sched_team_usage(f->st.sched, t->st.team, t->st.pool, &u), 0);
	assert_int_equal(u.pending, 1);
	fix_commit(f);

	/* One cycle: exactly the limit starts, with one head left queued. */
	assert_int_equal(fix_cycle(&f->st), 50);
	assert_int_equal(count_state(f, a->id, TASK_RUNNING), 50);
	assert_int_equal(a->nactive, 50);
	assert_null(a->head);
	assert_int_equal(f->st.ntasks, 50);
	assert_int_equal(fix_cycle(&f->st), 0);
	fix_commit(f);

	/* 10 end: 10 more start, never more than 50 at once. */
	assert_int_equal(finish_running(f, a->id, 10), 10);
	assert_int_equal(fix_cycle(&f->st), 10);
	assert_int_equal(count_state(f, a->id, TASK_RUNNING), 50);
	fix_commit(f);

	/* A restart keeps the running, the pending and the limit. */
	ntasks = f->st.ntasks;
	fix_close(f);
	fix_open(f);
	fix_cpu_node(&f->st, "n1", 64);   /* the agents are back */
	fix_cpu_node(&f->st, "n2", 64);
	a = array_find(&f->st, f->st.tasks[0]->st.id);
	assert_non_null(a);
	assert_int_equal(a->max_running, 50);
	assert_int_equal(a->nactive, 50);
	assert_int_equal(array_set_count(&a->pending), 10000 - 60);
	assert_int_equal(f->st.ntasks, ntasks);
	assert_int_equal(fix_cycle(&f->st), 0);
	assert_non_null(a->tmpl);
	assert_string_equal(a->tmpl->argv[0], "/bin/true");

	/* Run it to the end: every index exactly once. */
	for (int guard = 0; guard < 1000; guard++) {
		if (!finish_running(f, a->id, 50))
			break;
		fix_cycle(&f->st);
		assert_true(count_state(f, a->id, TASK_RUNNING) <= 50);
	}
	fix_commit(f);
	assert_true(array_set_empty(&a->pending));
	assert_int_equal(count_state(f, a->id, TASK_COMPLETED), 10000);
	seen = calloc(10000, 1);
	assert_non_null(seen);
	for (size_t i = 0; i < f->st.ntasks; i++) {
		t = f->st.tasks[i];
		assert_int_equal(t->array_id, a->id);
		assert_true(t->array_index < 10000);
		assert_int_equal(seen[t->array_index], 0);
		seen[t->array_index] = 1;
	}
	free(seen);
}

/* Without a limit the chain starts as many as fit in one cycle. */
static void test_fanout_unlimited(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct array *a;
	struct task *t;

	fix_cpu_node(&f->st, "n1", 64);
	assert_int_equal(submit(f, "1-100:3", false, &t, &e), 0);
	a = array_find(&f->st, t->st.id);
	assert_int_equal(t->array_index, 1);
	assert_int_equal(a->count, 34);
	assert_int_equal(a->step, 3);
	assert_int_equal(a->max, 100);
	assert_int_equal(fix_cycle(&f->st), 34);
	assert_true(array_set_empty(&a->pending));
	assert_null(a->head);
	/* Every index started: nothing is made from the template any more,
	 * so it is gone, and a restart does not make it again. */
	assert_null(a->tmpl);
	fix_commit(f);
	fix_close(f);
	fix_open(f);
	fix_cpu_node(&f->st, "n1", 64);
	a = array_find(&f->st, f->st.tasks[0]->st.id);
	assert_non_null(a);
	assert_null(a->tmpl);
	assert_int_equal(a->nactive, 34);
	assert_int_equal(fix_cycle(&f->st), 0);
	fix_commit(f);
}


/* ---------------------------------------------------------------- selectors */

static void test_select_ids(void **ts)
{
	struct array_set set;
	struct state_err e = { { 0 } };
	uint64_t id;
	bool has;
	char *s;
	static const char *const bad[] = { "", "x", "12_", "12_[", "12_[1-3", "12_[1%2]",
					   "12-3", "12_5x", "_5", "12_[]", "12__5",
					   "99999999999999999999999" };

	(void)ts;
	assert_int_equal(select_parse_id("12", &id, &has, &set, &e), 0);
	assert_int_equal(id, 12);
	assert_false(has);
	assert_int_equal(select_parse_id("12_5", &id, &has, &set, &e), 0);
	assert_true(has);
	s = array_set_format(&set);
	assert_string_equal(s, "5");
	free(s);
	array_set_release(&set);
	assert_int_equal(select_parse_id("12_[1-3,7]", &id, &has, &set, &e), 0);
	s = array_set_format(&set);
	assert_string_equal(s, "1-3,7");
	free(s);
	array_set_release(&set);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = '\0';
		if (select_parse_id(bad[i], &id, &has, &set, &e) == 0)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(e.msg[0] != '\0');
	}
	/* Indices that hpq lets through but no array has: the reason, once. */
	assert_int_equal(select_parse_id("12_[1-99999999]", &id, &has, &set, &e), HPQ_EINVAL);
	assert_string_equal(e.msg, "'12_[1-99999999]': --array '1-99999999': indices go from 0 "
			    "to 4000000");
}

static int control_ids(struct fix *f, const struct actor *who, enum control_op op,
		       const char *id, struct selection *sel)
{
	Hpq__TaskSelector ts = HPQ__TASK_SELECTOR__INIT;
	char *ids[] = { (char *)id };
	struct state_err e = { { 0 } };
	int r;

	ts.n_ids = 1;
	ts.ids = ids;
	r = select_resolve(&f->st, &ts, sel, &e);
	if (r < 0)
		fail_msg("%s: %s", id, e.msg);
	control_apply(&f->st, sel, op, who, NULL, NULL);
	for (size_t i = 0; i < sel->n; i++)
		if (sel->v[i].code < 0)
			return sel->v[i].code;
	return 0;
}

static int hold_ids(struct fix *f, const struct actor *who, bool release, const char *id,
		    struct selection *sel)
{
	return control_ids(f, who, release ? CONTROL_RELEASE : CONTROL_HOLD, id, sel);
}

static const char *first_msg(const struct selection *sel)
{
	for (size_t i = 0; i < sel->n; i++)
		if (sel->v[i].msg)
			return sel->v[i].msg;
	return "";
}

static void test_hold_release(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	Hpq__TaskSelector empty = HPQ__TASK_SELECTOR__INIT;
	struct selection sel;
	struct task *a, *b, *c;
	char id[32];

	fix_cpu_node(&f->st, "n1", 1);
	assert_int_equal(select_resolve(&f->st, &empty, &sel, &e), HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "empty selection matches nothing"));

	assert_int_equal(submit(f, "", true, &a, &e), 0);
	assert_true(a->held);
	assert_int_equal(a->st.state, SCHED_NONE);
	assert_string_equal(state_task_reason(&f->st, a), "held");
	assert_int_equal(submit(f, "", false, &b, &e), 0);
	assert_int_equal(submit(f, "", false, &c, &e), 0);
	assert_int_equal(fix_cycle(&f->st), 1);
	assert_int_equal(b->state, TASK_RUNNING);

	/* bob may not release alice's task: refused, nothing changes. */
	snprintf(id, sizeof(id), "%llu", (unsigned long long)a->st.id);
	assert_int_equal(hold_ids(f, &bob, true, id, &sel), HPQ_EPERM);
	assert_non_null(strstr(first_msg(&sel), "only its owner"));
	select_release(&sel);
	assert_true(a->held);
	/* Holding again is fine; releasing puts it back with its submit time. */
	assert_int_equal(hold_ids(f, &alice, false, id, &sel), 0);
	select_release(&sel);
	assert_int_equal(hold_ids(f, &alice, true, id, &sel), 0);
	select_release(&sel);
	assert_false(a->held);
	assert_int_equal(a->st.state, SCHED_PENDING);
	assert_int_equal(hold_ids(f, &alice, true, id, &sel), HPQ_ESTATE);
	assert_non_null(strstr(first_msg(&sel), "not held"));
	select_release(&sel);
	snprintf(id, sizeof(id), "%llu", (unsigned long long)b->st.id);
	assert_int_equal(hold_ids(f, &alice, false, id, &sel), HPQ_ESTATE);
	assert_non_null(strstr(first_msg(&sel), "RUNNING, not pending"));
	select_release(&sel);
	/* b ends: a (older) starts before c. */
	task_exit(f, b, 0);
	assert_int_equal(fix_cycle(&f->st), 1);
	assert_int_equal(a->state, TASK_RUNNING);
	assert_int_equal(c->state, TASK_PENDING);
	fix_commit(f);
}

static void test_array_control(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct selection sel;
	struct array *a;
	struct task *t, *five;
	char id[32];
	uint32_t running;

	fix_cpu_node(&f->st, "n1", 8);
	assert_int_equal(submit(f, "0-9%2", false, &t, &e), 0);
	a = array_find(&f->st, t->st.id);
	assert_int_equal(fix_cycle(&f->st), 2);

	/* One index that is not materialized: materialized, held. */
	snprintf(id, sizeof(id), "%llu_5", (unsigned long long)a->id);
	assert_int_equal(hold_ids(f, &alice, false, id, &sel), 0);
	select_release(&sel);
	assert_false(array_set_has(&a->pending, 5));
	five = array_task_find(&f->st, a, 5);
	assert_non_null(five);
	assert_true(five->held);
	snprintf(id, sizeof(id), "%llu_77", (unsigned long long)a->id);
	assert_int_equal(hold_ids(f, &alice, false, id, &sel), HPQ_ENOTFOUND);
	assert_non_null(strstr(first_msg(&sel), "has no index 77"));
	select_release(&sel);

	/* The whole array: its rest is held; the running say "not pending". */
	snprintf(id, sizeof(id), "%llu", (unsigned long long)a->id);
	assert_int_equal(hold_ids(f, &alice, false, id, &sel), HPQ_ESTATE);
	select_release(&sel);
	assert_true(a->held);
	assert_int_equal(finish_running(f, a->id, 2), 2);
	assert_int_equal(fix_cycle(&f->st), 0);
	assert_int_equal(count_state(f, a->id, TASK_RUNNING), 0);

	/* Release: the limit still holds within one cycle. */
	/* The ended ones are left out: nothing fails. */
	assert_int_equal(hold_ids(f, &alice, true, id, &sel), 0);
	for (size_t i = 0; i < sel.n; i++)
		assert_false(sel.v[i].kind == SEL_TASK && task_state_final(sel.v[i].t->state));
	select_release(&sel);
	assert_false(a->held);
	assert_false(five->held);
	assert_int_equal(fix_cycle(&f->st), 2);
	running = count_state(f, a->id, TASK_RUNNING);
	assert_int_equal(running, 2);

	/* Cancel of the whole array: its rest, its head and its running indices. */
	{
		Hpq__TaskSelector ts2 = HPQ__TASK_SELECTOR__INIT;
		char *ids[] = { id };
		int kills = 0;

		ts2.n_ids = 1;
		ts2.ids = ids;
		assert_int_equal(select_resolve(&f->st, &ts2, &sel, &e), 0);
		control_apply(&f->st, &sel, CONTROL_CANCEL, &alice, NULL, NULL);
		for (size_t i = 0; i < sel.n; i++)
			if (sel.v[i].kind == SEL_TASK && sel.v[i].t->state == TASK_RUNNING &&
			    sel.v[i].t->cancel_requested)
				kills++;
		select_release(&sel);
		assert_int_equal(kills, 2);
	}
	assert_true(array_set_empty(&a->pending));
	assert_int_equal(count_state(f, a->id, TASK_PENDING), 0);
	assert_int_equal(fix_cycle(&f->st), 0);
	fix_commit(f);
}

/* The results a reply of sel gives (sel_item.folded: answered for by another). */
static size_t answered(const struct selection *sel, const struct sel_item **last)
{
	size_t n = 0;

	for (size_t i = 0; i < sel->n; i++)
		if (!sel->v[i].folded) {
			n++;
			*last = &sel->v[i];
		}
	return n;
}

/*
 * A cancel of indices that are not tasks drops them, as the cancel of a
 * whole array drops its rest: no task, id or row is made for each only to
 * end it, one result stands for the run, and what waits on the array
 * looks again though no task ended. The head goes after them, so that
 * its end does not make the next of them a task.
 */
static void test_cancel_indices_drop(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	const struct sel_item *it = NULL;
	struct selection sel;
	struct array *a, *b;
	struct task *t, *any, *ok;
	uint64_t next;
	size_t ntasks;
	char id[64];

	assert_int_equal(submit(f, "0-99999", true, &t, &e), 0);
	a = array_find(&f->st, t->st.id);
	snprintf(id, sizeof(id), "afterany:%llu", (unsigned long long)a->id);
	any = dep_task(f, id, false);
	snprintf(id, sizeof(id), "afterok:%llu", (unsigned long long)a->id);
	ok = dep_task(f, id, false);
	snprintf(id, sizeof(id), "%llu_0", (unsigned long long)a->id);
	assert_int_equal(control_ids(f, &alice, CONTROL_CANCEL, id, &sel), 0);
	select_release(&sel);
	assert_int_equal(t->state, TASK_CANCELLED);
	assert_string_equal(any->reason, "dependency");

	ntasks = f->st.ntasks;
	next = f->st.next_id;
	snprintf(id, sizeof(id), "%llu_[1-99999]", (unsigned long long)a->id);
	assert_int_equal(control_ids(f, &alice, CONTROL_CANCEL, id, &sel), 0);
	assert_int_equal(sel.n, 99999);
	assert_int_equal(answered(&sel, &it), 1);
	assert_int_equal(it->id, a->id);
	assert_int_equal(it->tasks, 99999);
	assert_int_equal(sel.folded, 0);
	select_release(&sel);
	assert_int_equal(f->st.ntasks, ntasks);
	assert_int_equal(f->st.next_id, next);
	assert_true(array_set_empty(&a->pending));
	assert_int_equal(array_set_count(&a->dropped), 99999);
	assert_int_equal(a->nbegun, 100000);
	/* Every index has ended, one of them as a task: the waiting look again. */
	assert_string_not_equal(any->reason, "dependency");
	assert_int_equal(any->st.state, SCHED_PENDING);
	assert_string_equal(ok->reason, "dependency-never-satisfied");

	/* An array that runs: its head goes after the indices named with it. */
	fix_cpu_node(&f->st, "n1", 1);
	assert_int_equal(submit(f, "0-19", false, &t, &e), 0);
	b = array_find(&f->st, t->st.id);
	snprintf(id, sizeof(id), "%llu_[0-9]", (unsigned long long)b->id);
	assert_int_equal(control_ids(f, &alice, CONTROL_CANCEL, id, &sel), 0);
	assert_int_equal(answered(&sel, &it), 2);
	select_release(&sel);
	assert_int_equal(t->state, TASK_CANCELLED);
	assert_int_equal(count_state(f, b->id, TASK_CANCELLED), 1);
	assert_int_equal(array_set_count(&b->dropped), 9);
	assert_int_equal(array_set_count(&b->pending), 9);
	assert_non_null(b->head);
	assert_int_equal(b->head->array_index, 10);
	assert_int_equal(fix_cycle(&f->st), 1);
	fix_commit(f);
}

static void test_cancel_by_filter(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	Hpq__TaskSelector sel = HPQ__TASK_SELECTOR__INIT;
	char *states[] = { "pending" };
	struct selection s;
	struct task *t;
	struct timespec t0, t1;
	double ms;

	for (int i = 0; i < 10000; i++)
		assert_int_equal(submit(f, "", false, &t, &e), 0);
	assert_int_equal(submit_full(f, &bob, "", "", false, "", false, &t, &e), 0);
	fix_commit(f);
	sel.user = "alice";
	sel.n_states = 1;
	sel.states = states;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(select_resolve(&f->st, &sel, &s, &e), 0);
	assert_int_equal(s.n, 10000);
	control_apply(&f->st, &s, CONTROL_CANCEL, &alice, NULL, NULL);
	fix_commit(f);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("cancel of 10,000 pending tasks by a filter: %.1f ms (with the commit)\n",
		      ms);
	for (size_t i = 0; i < s.n; i++)
		assert_int_equal(s.v[i].code, 0);
	select_release(&s);
	assert_int_equal(t->state, TASK_PENDING);   /* bob's */
	assert_int_equal(f->st.tasks[0]->state, TASK_CANCELLED);
	/* A state name that does not exist is refused as a whole. */
	states[0] = "sleeping";
	assert_int_equal(select_resolve(&f->st, &sel, &s, &e), HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "unknown state"));
}

/* ---------------------------------------------------------------- dependencies */

static void test_depend_parse(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct task *a, *b;
	char spec[64];
	static const char *const bad[] = { "afterok", "afterok:", "afterok:x", "bogus:1",
					   "afterok:1,", "afterok:1,afterany:1?after:1",
					   "afterok:1+5", "afterok:0", "singleton:1" };

	assert_int_equal(submit(f, "", false, &a, &e), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = '\0';
		if (depend_check(&f->st, NULL, bad[i], &e) == 0)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(e.msg[0] != '\0');
	}
	assert_int_equal(depend_check(&f->st, NULL, "afterok:1:1", &e), 0);
	assert_int_equal(depend_check(&f->st, NULL, "afterok:99", &e), HPQ_ENOTFOUND);
	assert_non_null(strstr(e.msg, "no task 99"));
	assert_int_equal(depend_check(&f->st, NULL, "afterok:1_3", &e), HPQ_ENOTFOUND);
	assert_int_equal(depend_check(&f->st, NULL, "singleton", &e), 0);
	/* An unknown id at submit: refused, nothing changes. */
	assert_int_equal(submit_full(f, &alice, "", "", false, "afterok:42", false, &b, &e),
			 HPQ_ENOTFOUND);
	assert_int_equal(f->st.ntasks, 1);
	/* b waits for a; a waiting for b would be a cycle. */
	snprintf(spec, sizeof(spec), "afterok:%llu", (unsigned long long)a->st.id);
	b = dep_task(f, spec, false);
	snprintf(spec, sizeof(spec), "afterany:%llu", (unsigned long long)b->st.id);
	assert_int_equal(depend_check(&f->st, a, spec, &e), HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "cycle"));
	assert_int_equal(depend_check(&f->st, b, spec, &e), HPQ_EINVAL);

	/* An update of a queued task's dependency takes it out until met. */
	assert_int_equal(submit(f, "", false, &b, &e), 0);
	assert_int_equal(b->st.state, SCHED_PENDING);
	snprintf(spec, sizeof(spec), "afterok:%llu", (unsigned long long)a->st.id);
	assert_int_equal(depend_check(&f->st, b, spec, &e), 0);
	str_free(b->dependency);        /* "" is shared (daemon/change.c) */
	b->dependency = strdup(spec);
	depend_changed(&f->st, b);
	assert_int_equal(b->st.state, SCHED_NONE);
	assert_string_equal(state_task_reason(&f->st, b), "dependency");
	fix_commit(f);
}

static void test_depend_chain(void **ts)
{
	struct fix *f = *ts;
	struct task *a, *b, *c, *d, *k, *n, *any;
	struct state_err e = { { 0 } };
	char spec[96];
	uint64_t bid, cid, did, kid;

	fix_cpu_node(&f->st, "n1", 8);
	assert_int_equal(submit(f, "", false, &a, &e), 0);
	snprintf(spec, sizeof(spec), "afterok:%llu", (unsigned long long)a->st.id);
	b = dep_task(f, spec, false);
	snprintf(spec, sizeof(spec), "afterok:%llu", (unsigned long long)b->st.id);
	c = dep_task(f, spec, false);
	snprintf(spec, sizeof(spec), "afternotok:%llu", (unsigned long long)a->st.id);
	d = dep_task(f, spec, false);
	snprintf(spec, sizeof(spec), "afternotok:%llu", (unsigned long long)b->st.id);
	k = dep_task(f, spec, true);
	snprintf(spec, sizeof(spec), "afterok:%llu?afternotok:%llu", (unsigned long long)a->st.id,
		 (unsigned long long)a->st.id);
	any = dep_task(f, spec, false);
	assert_string_equal(state_task_reason(&f->st, b), "dependency");
	assert_int_equal(b->st.state, SCHED_NONE);
	assert_int_equal(fix_cycle(&f->st), 1);         /* a only */
	fix_commit(f);
	bid = b->st.id;
	cid = c->st.id;
	did = d->st.id;
	kid = k->st.id;

	/* A restart in the middle: the waits survive. */
	fix_close(f);
	fix_open(f);
	fix_cpu_node(&f->st, "n1", 8);
	a = f->st.tasks[0];
	b = state_task_find(&f->st, bid);
	c = state_task_find(&f->st, cid);
	d = state_task_find(&f->st, did);
	k = state_task_find(&f->st, kid);
	assert_int_equal(b->st.state, SCHED_NONE);
	assert_string_equal(state_task_reason(&f->st, b), "dependency");
	assert_int_equal(fix_cycle(&f->st), 0);

	/* a completes: b and the any-of start; d can never. */
	task_exit(f, a, 0);
	assert_string_equal(b->dependency, "");
	assert_string_equal(state_task_reason(&f->st, d), "dependency-never-satisfied");
	assert_int_equal(d->state, TASK_PENDING);
	assert_int_equal(fix_cycle(&f->st), 2);
	any = state_task_find(&f->st, kid + 1);
	assert_int_equal(any->state, TASK_RUNNING);
	/* b completes: c starts; k (afternotok, kill) is cancelled. */
	task_exit(f, b, 0);
	assert_int_equal(k->state, TASK_CANCELLED);
	assert_string_equal(k->reason, "dependency-never-satisfied");
	assert_int_equal(fix_cycle(&f->st), 1);
	assert_int_equal(c->state, TASK_RUNNING);
	/* afternotok on a failure starts. */
	snprintf(spec, sizeof(spec), "afternotok:%llu", (unsigned long long)c->st.id);
	n = dep_task(f, spec, false);
	task_exit(f, c, 3);
	assert_int_equal(fix_cycle(&f->st), 1);
	assert_int_equal(n->state, TASK_RUNNING);
	fix_commit(f);
}

static void test_depend_arrays(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct task *t, *all, *one, *s1, *s2;
	struct array *a;
	char spec[64];

	fix_cpu_node(&f->st, "n1", 2);
	assert_int_equal(submit(f, "0-3", false, &t, &e), 0);
	a = array_find(&f->st, t->st.id);
	snprintf(spec, sizeof(spec), "afterok:%llu", (unsigned long long)a->id);
	all = dep_task(f, spec, false);
	snprintf(spec, sizeof(spec), "afterany:%llu_1", (unsigned long long)a->id);
	one = dep_task(f, spec, false);
	assert_int_equal(fix_cycle(&f->st), 2);         /* indices 0 and 1 */
	assert_int_equal(finish_running(f, a->id, 2), 2);
	assert_int_equal(one->st.state, SCHED_PENDING); /* 1 ended */
	assert_int_equal(all->st.state, SCHED_NONE);
	fix_cycle(&f->st);
	while (finish_running(f, a->id, 4))
		fix_cycle(&f->st);
	assert_int_equal(a->nok, 4);
	assert_int_equal(all->state, TASK_RUNNING);     /* entered once the last one ended */

	/* singleton: one of a name at a time. */
	assert_int_equal(submit_full(f, &alice, "solo", "", false, "singleton", false, &s1, &e),
			 0);
	assert_int_equal(submit_full(f, &alice, "solo", "", false, "singleton", false, &s2, &e),
			 0);
	assert_int_equal(s1->st.state, SCHED_PENDING);
	assert_int_equal(s2->st.state, SCHED_NONE);
	assert_string_equal(s2->reason, "dependency");
	fix_commit(f);
}

/* An index's own task id, named as a plain id: the dependent starts when
 * that task completes, not only at a restart. */
static void test_depend_index_task_id(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct task *t, *idx1, *d;
	struct array *a;
	char spec[64];

	fix_cpu_node(&f->st, "n1", 8);
	assert_int_equal(submit(f, "0-2", false, &t, &e), 0);
	a = array_find(&f->st, t->st.id);
	assert_int_equal(fix_cycle(&f->st), 3);
	idx1 = array_task_find(&f->st, a, 1);
	assert_non_null(idx1);
	assert_int_not_equal(idx1->st.id, a->id);
	snprintf(spec, sizeof(spec), "afterok:%llu", (unsigned long long)idx1->st.id);
	d = dep_task(f, spec, false);
	assert_int_equal(d->st.state, SCHED_NONE);
	task_exit(f, idx1, 0);
	assert_int_equal(d->st.state, SCHED_PENDING);
	fix_commit(f);
}

/* A restart finds the array's queued head again: no second one. */
static void test_restart_head(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct array *a;
	struct task *t;
	uint64_t head;
	size_t ntasks;

	fix_cpu_node(&f->st, "n1", 2);
	assert_int_equal(submit(f, "0-99", false, &t, &e), 0);
	a = array_find(&f->st, t->st.id);
	assert_int_equal(fix_cycle(&f->st), 2);
	assert_non_null(a->head);
	head = a->head->st.id;
	ntasks = f->st.ntasks;
	fix_commit(f);
	fix_close(f);
	fix_open(f);
	fix_cpu_node(&f->st, "n1", 2);
	a = array_find(&f->st, f->st.tasks[0]->st.id);
	assert_non_null(a->head);
	assert_int_equal(a->head->st.id, head);
	assert_int_equal(f->st.ntasks, ntasks);
	assert_int_equal(a->nactive, 2);
	assert_int_equal(array_set_count(&a->pending), 97);
	assert_int_equal(finish_running(f, a->id, 1), 1);
	assert_int_equal(fix_cycle(&f->st), 1);
	assert_int_equal(a->head->array_index, 3);
	fix_commit(f);
}

/* Adding indices one at a time in any order gives the set they make,
 * joined into as few ranges as their strides allow. */
static void test_set_add(void **ts)
{
	enum { N = 400 };
	static const uint32_t steps[] = { 1, 3 };

	(void)ts;
	srand(7);
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		uint32_t step = steps[k], order[N];
		bool in[N * 3 + 1] = { false };
		struct array_set set = { 0 };

		for (uint32_t i = 0; i < N; i++)
			order[i] = i * step;
		for (uint32_t i = N - 1; i > 0; i--) {
			uint32_t j = (uint32_t)rand() % (i + 1), x = order[i];

			order[i] = order[j];
			order[j] = x;
		}
		for (uint32_t i = 0; i < N; i++) {
			array_set_add(&set, order[i], step);
			array_set_add(&set, order[i], step);  /* twice: no change */
			in[order[i]] = true;
			for (uint32_t r = 1; r < set.n; r++)
				assert_true(set.r[r - 1].hi < set.r[r].lo);
			if (i % 37 == 0)
				for (uint32_t x = 0; x <= N * step; x++)
					assert_int_equal(array_set_has(&set, x), in[x]);
		}
		assert_int_equal(array_set_count(&set), N);
		assert_int_equal(set.n, 1);
		array_set_release(&set);
	}

	/* An index inside a stepped range's span, not in it, splits it. */
	{
		struct array_set set = { 0 };
		char *s;

		for (uint32_t x = 0; x <= 12; x += 4)
			array_set_add(&set, x, 4);
		array_set_add(&set, 6, 4);
		s = array_set_format(&set);
		assert_string_equal(s, "0-4:4,6,8-12:4");
		free(s);
		array_set_release(&set);
	}
}

/* Whether a new task of alice's that depends on "kind:id" (or on
 * "kind:id_idx", idx >= 0) is offered to the dispatcher at once. */
static bool dep_offered(struct fix *f, const char *kind, uint64_t id, long idx)
{
	char spec[96];
	int n = snprintf(spec, sizeof(spec), "%s:%llu", kind, (unsigned long long)id);

	if (idx >= 0)
		snprintf(spec + n, sizeof(spec) - (size_t)n, "_%ld", idx);
	return dep_task(f, spec, false)->st.state == SCHED_PENDING;
}

/* Cycles, every running task exiting 0, until nothing more starts. */
static void run_all(struct fix *f)
{
	for (bool more = true; more;) {
		more = false;
		fix_cycle(&f->st);
		for (size_t i = 0; i < f->st.ntasks; i++)
			if (f->st.tasks[i]->state == TASK_RUNNING) {
				task_exit(f, f->st.tasks[i], 0);
				more = true;
			}
	}
}

/*
 * An array's ended tasks leave memory with [tasks] keep_finished while
 * the rest of it runs; the array keeps which of them completed, for
 * dependencies on one index, and leaves once all of it has ended. After
 * a restart the store gives the same answers.
 */
static void test_evict_ended(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct selection sel = { 0 };
	Hpq__TaskSelector q = HPQ__TASK_SELECTOR__INIT;
	struct task *t;
	struct array *a;
	uint64_t x, y, z;
	char id[32], *ids[] = { id };
	size_t before;

	fix_cpu_node(&f->st, "n1", 2);
	assert_int_equal(submit(f, "0-5", false, &t, &e), 0);
	x = t->st.id;
	a = array_find(&f->st, x);
	assert_int_equal(fix_cycle(&f->st), 2);
	task_exit(f, array_task_find(&f->st, a, 0), 0);
	task_exit(f, array_task_find(&f->st, a, 1), 1);
	assert_int_equal(fix_cycle(&f->st), 2);         /* 2 and 3 */
	before = f->st.ntasks;
	assert_int_equal(state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000), 2);
	assert_int_equal(f->st.ntasks, before - 2);
	assert_ptr_equal(array_find(&f->st, x), a);
	assert_null(array_task_find(&f->st, a, 0));
	assert_false(array_set_has(&a->gone_bad, 0));
	assert_true(array_set_has(&a->gone_bad, 1));
	assert_true(dep_offered(f, "afterok", x, 0));
	assert_false(dep_offered(f, "afterok", x, 1));
	assert_true(dep_offered(f, "afternotok", x, 1));
	assert_false(dep_offered(f, "afterok", x, 4));  /* pending */
	snprintf(id, sizeof(id), "afterok:%llu_77", (unsigned long long)x);
	assert_true(submit_full(f, &alice, "", "", false, id, false, &t, &e) < 0);
	assert_non_null(strstr(e.msg, "has no index 77"));
	/* A selector names a gone index as ended, not as unknown. */
	snprintf(id, sizeof(id), "%llu_0", (unsigned long long)x);
	q.n_ids = 1;
	q.ids = ids;
	assert_int_equal(select_resolve(&f->st, &q, &sel, &e), 0);
	assert_non_null(strstr(first_msg(&sel), "has already ended"));
	select_release(&sel);

	/* The rest ends; the array goes with its tasks, and one of them failed. */
	run_all(f);
	assert_int_equal(a->nok + a->nbad, 6);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_null(array_find(&f->st, x));
	assert_false(dep_offered(f, "afterok", x, -1));
	assert_true(dep_offered(f, "afterany", x, 3));
	snprintf(id, sizeof(id), "%llu", (unsigned long long)x);
	assert_int_equal(select_resolve(&f->st, &q, &sel, &e), 0);
	assert_non_null(strstr(first_msg(&sel), "has already ended"));
	select_release(&sel);

	/* One that all completed. */
	assert_int_equal(submit(f, "0-2", false, &t, &e), 0);
	y = t->st.id;
	run_all(f);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_null(array_find(&f->st, y));
	assert_true(dep_offered(f, "afterok", y, -1));
	assert_true(dep_offered(f, "afterok", y, 1));

	/* A restart that loads no ended task: the store tells which completed. */
	run_all(f);
	assert_int_equal(submit(f, "0-9", false, &t, &e), 0);
	z = t->st.id;
	assert_int_equal(fix_cycle(&f->st), 2);
	a = array_find(&f->st, z);
	task_exit(f, array_task_find(&f->st, a, 0), 2);
	task_exit(f, array_task_find(&f->st, a, 1), 0);
	fix_commit(f);
	fix_close(f);
	fix_open_keep(f, 0);
	fix_cpu_node(&f->st, "n1", 2);
	a = array_find(&f->st, z);
	assert_non_null(a);
	/* Its first task stays: it is the template of the indices left. */
	assert_non_null(array_task_find(&f->st, a, 0));
	assert_null(array_task_find(&f->st, a, 1));
	assert_false(array_set_has(&a->gone_bad, 1));
	assert_int_equal(a->nok, 1);
	assert_int_equal(a->nbad, 1);
	assert_false(dep_offered(f, "afterok", z, 0));
	assert_true(dep_offered(f, "afterok", z, 1));
	/* The arrays that ended before are not kept at all. */
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_null(array_find(&f->st, x));
	assert_null(array_find(&f->st, y));
	assert_false(dep_offered(f, "afterok", x, -1));
	assert_true(dep_offered(f, "afterok", y, -1));
	fix_commit(f);
}

/* What dependencies on array x's indices see: 0 and 3 failed, 1 and 2
 * completed, 4 was cancelled and 5 dropped with the rest. */
static void check_mixed(struct fix *f, uint64_t x)
{
	assert_false(dep_offered(f, "afterok", x, 0));
	assert_true(dep_offered(f, "afternotok", x, 0));
	assert_true(dep_offered(f, "afterok", x, 1));
	assert_false(dep_offered(f, "afternotok", x, 1));
	assert_true(dep_offered(f, "afterok", x, 2));
	assert_false(dep_offered(f, "afterok", x, 3));
	assert_false(dep_offered(f, "afterok", x, 4));
	assert_false(dep_offered(f, "afterok", x, 5));
	assert_true(dep_offered(f, "afternotok", x, 5));
	assert_true(dep_offered(f, "afterany", x, 1));
	assert_false(dep_offered(f, "afterok", x, -1));
	assert_true(dep_offered(f, "afternotok", x, -1));
}

/*
 * An array of which some indices completed and some did not leaves
 * memory: a dependency on one index still follows that index, not the
 * whole array, also after a restart. Only the indices that did not
 * complete are kept, as ranges; nothing for an array that all completed
 * or all failed.
 */
static void test_evict_mixed(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	Hpq__TaskSelector q = HPQ__TASK_SELECTOR__INIT;
	struct selection sel;
	struct task *t;
	struct array *a;
	uint64_t x, y, z;
	char id[32], *ids[] = { id };

	fix_cpu_node(&f->st, "n1", 4);
	assert_int_equal(submit(f, "0-5%2", false, &t, &e), 0);
	x = t->st.id;
	a = array_find(&f->st, x);
	assert_int_equal(fix_cycle(&f->st), 2);
	task_exit(f, array_task_find(&f->st, a, 0), 1);
	task_exit(f, array_task_find(&f->st, a, 1), 0);
	assert_int_equal(fix_cycle(&f->st), 2);
	task_exit(f, array_task_find(&f->st, a, 2), 0);
	task_exit(f, array_task_find(&f->st, a, 3), 1);
	assert_non_null(array_task_find(&f->st, a, 4));
	assert_true(array_set_has(&a->pending, 5));
	/* The whole array cancelled: its head 4, and 5 that never existed. */
	snprintf(id, sizeof(id), "%llu", (unsigned long long)x);
	q.n_ids = 1;
	q.ids = ids;
	assert_int_equal(select_resolve(&f->st, &q, &sel, &e), 0);
	control_apply(&f->st, &sel, CONTROL_CANCEL, &alice, NULL, NULL);
	select_release(&sel);
	assert_int_equal(a->nok, 2);
	assert_int_equal(a->nbad, 4);

	assert_int_equal(submit(f, "0-2", false, &t, &e), 0);       /* all complete */
	y = t->st.id;
	assert_int_equal(fix_cycle(&f->st), 3);
	assert_int_equal(finish_running(f, y, 3), 3);
	assert_int_equal(submit(f, "0-1", false, &t, &e), 0);       /* all fail */
	z = t->st.id;
	a = array_find(&f->st, z);
	assert_int_equal(fix_cycle(&f->st), 2);
	task_exit(f, array_task_find(&f->st, a, 0), 1);
	task_exit(f, array_task_find(&f->st, a, 1), 1);

	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_null(array_find(&f->st, x));
	assert_null(array_find(&f->st, y));
	assert_null(array_find(&f->st, z));
	check_mixed(f, x);
	assert_true(dep_offered(f, "afterok", y, 1));
	assert_false(dep_offered(f, "afternotok", y, 1));
	assert_false(dep_offered(f, "afterok", z, 1));
	assert_true(dep_offered(f, "afternotok", z, 0));
	/* x's four that did not complete, in two ranges: y and z keep none. */
	assert_int_equal(f->st.narrays_gone, 1);
	assert_int_equal(f->st.arrays_gone[0].id, x);
	assert_int_equal(array_set_count(&f->st.arrays_gone[0].bad), 4);
	assert_int_equal(f->st.arrays_gone[0].bad.n, 2);

	/* A restart builds none of them again, and keeps the same records. */
	fix_commit(f);
	fix_close(f);
	fix_open_keep(f, 0);
	fix_cpu_node(&f->st, "n1", 4);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_null(array_find(&f->st, x));
	assert_null(array_find(&f->st, y));
	assert_null(array_find(&f->st, z));
	check_mixed(f, x);
	assert_true(dep_offered(f, "afterok", y, 1));
	assert_false(dep_offered(f, "afterok", z, 1));
	assert_int_equal(f->st.narrays_gone, 1);
	assert_int_equal(array_set_count(&f->st.arrays_gone[0].bad), 4);
	fix_commit(f);
}

/* A parked index (the % limit) given a dependency that is not met is no
 * longer parked: its array counts it out, and leaves memory once all of
 * it ended. */
static void test_parked_dependency_update(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct selection sel;
	struct task *t, *p, *two;
	struct array *a;
	char id[32], dep[64], *fields[] = { dep };
	uint64_t x;

	fix_cpu_node(&f->st, "n1", 8);
	p = dep_task(f, "", false);
	assert_int_equal(submit(f, "0-3%1", false, &t, &e), 0);
	x = t->st.id;
	a = array_find(&f->st, x);
	assert_int_equal(fix_cycle(&f->st), 2);          /* p and index 0 */
	snprintf(id, sizeof(id), "%llu_2", (unsigned long long)a->id);
	assert_int_equal(hold_ids(f, &alice, false, id, &sel), 0);
	select_release(&sel);
	assert_int_equal(hold_ids(f, &alice, true, id, &sel), 0);
	select_release(&sel);
	two = array_task_find(&f->st, a, 2);
	assert_string_equal(two->reason, "array-limit");
	assert_int_equal(a->nparked, 1);
	snprintf(dep, sizeof(dep), "dependency=afterok:%llu", (unsigned long long)p->st.id);
	assert_int_equal(state_task_update(&f->st, two, fields, 1, &alice, &e), 0);
	assert_string_equal(two->reason, "dependency");
	assert_int_equal(a->nparked, 0);
	task_exit(f, p, 0);
	run_all(f);
	assert_int_equal(a->nok, 4);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_null(array_find(&f->st, x));
	fix_commit(f);
}

/* A dependency that can never be met, with kill_on_invalid_dep: the
 * indices that already exist go with the rest, a held one too. */
static void test_kill_invalid_held_index(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct selection sel;
	struct task *t, *p, *two;
	struct array *a;
	char id[32], dep[64];
	uint64_t x;

	fix_cpu_node(&f->st, "n1", 8);
	p = dep_task(f, "", false);
	assert_int_equal(fix_cycle(&f->st), 1);
	snprintf(dep, sizeof(dep), "afterok:%llu", (unsigned long long)p->st.id);
	assert_int_equal(submit_full(f, &alice, "", "0-3", false, dep, true, &t, &e), 0);
	x = t->st.id;
	a = array_find(&f->st, x);
	snprintf(id, sizeof(id), "%llu_2", (unsigned long long)x);
	assert_int_equal(hold_ids(f, &alice, false, id, &sel), 0);
	select_release(&sel);
	two = array_task_find(&f->st, a, 2);
	assert_true(two->held);
	task_exit(f, p, 1);
	assert_int_equal(t->state, TASK_CANCELLED);
	assert_int_equal(two->state, TASK_CANCELLED);
	assert_string_equal(two->reason, "dependency-never-satisfied");
	assert_int_equal(a->nbad, 4);
	state_tasks_evict(&f->st, hpq_now_ms() + 1, 1000);
	assert_null(array_find(&f->st, x));
	fix_commit(f);
}

/* ---------------------------------------------------------------- singleton arrays */

/* The tasks of user's named "solo" that run now; *one: the last of them. */
static uint32_t solo_running(struct fix *f, const char *user, struct task **one)
{
	uint32_t n = 0;

	if (one)
		*one = NULL;
	for (size_t i = 0; i < f->st.ntasks; i++) {
		struct task *t = f->st.tasks[i];

		if (t->state == TASK_RUNNING && !strcmp(t->name, "solo") && !strcmp(t->user, user)) {
			n++;
			if (one)
				*one = t;
		}
	}
	return n;
}

/*
 * Runs alice's "solo" tasks to the end, one at a time: after each cycle
 * exactly one runs (never two), the one that runs exits 0, until none is
 * left to start. Returns how many ran.
 */
static uint32_t run_solo_one_by_one(struct fix *f)
{
	uint32_t ran = 0;
	struct task *t;

	for (;;) {
		fix_cycle(&f->st);
		fix_cycle(&f->st);
		if (!solo_running(f, "alice", NULL))
			return ran;
		assert_int_equal(solo_running(f, "alice", &t), 1);
		task_exit(f, t, 0);
		ran++;
	}
}

/*
 * singleton: "no other task of yours with the same name is active". An
 * array's indices share its name, so they run one at a time, as in Slurm,
 * also when the dependency was met at submit; a plain task of the name
 * waits its turn too, another user's does not.
 */
static void test_singleton_array(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct task *t, *plain, *other, *run;
	struct array *a;

	fix_cpu_node(&f->st, "n1", 8);
	assert_int_equal(submit_full(f, &alice, "solo", "0-3", false, "singleton", false, &t, &e),
			 0);
	assert_int_equal(t->st.state, SCHED_PENDING);   /* met at submit */
	a = array_find(&f->st, t->st.id);
	fix_cycle(&f->st);
	fix_cycle(&f->st);
	assert_int_equal(count_state(f, a->id, TASK_RUNNING), 1);
	/* The next index waits out of the dispatcher, the rest as ranges. */
	assert_non_null(a->head);
	assert_int_equal(a->head->array_index, 1);
	assert_int_equal(a->head->st.state, SCHED_NONE);
	assert_string_equal(a->head->reason, "dependency");
	assert_string_equal(a->head->dependency, "singleton");
	assert_int_equal(array_set_count(&a->pending), 2);
	assert_int_equal(f->st.ntasks, 2);

	/* While an index runs, a plain task of the name waits; bob's runs. */
	assert_int_equal(submit_full(f, &alice, "solo", "", false, "singleton", false, &plain,
				     &e), 0);
	assert_int_equal(plain->st.state, SCHED_NONE);
	assert_string_equal(plain->reason, "dependency");
	assert_int_equal(submit_full(f, &bob, "solo", "", false, "singleton", false, &other, &e),
			 0);
	assert_int_equal(fix_cycle(&f->st), 1);
	assert_int_equal(other->state, TASK_RUNNING);
	assert_int_equal(solo_running(f, "alice", &run), 1);
	assert_int_equal(run->array_index, 0);

	/* Index 0 ends: one more of alice's starts, not two; then each in
	 * turn, through the whole array and the plain task. */
	task_exit(f, run, 0);
	assert_int_equal(run_solo_one_by_one(f), 4);
	assert_int_equal(count_state(f, a->id, TASK_COMPLETED), 4);
	assert_int_equal(plain->state, TASK_COMPLETED);
	assert_true(array_set_empty(&a->pending));
	fix_commit(f);
}

/*
 * A million-index singleton array: still one materialized waiter behind
 * the index that runs (what a wake of the name looks at), the rest ranges.
 */
static void test_singleton_array_large(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct task *t, *run;
	struct array *a;

	fix_cpu_node(&f->st, "n1", 64);
	assert_int_equal(submit_full(f, &alice, "solo", "0-999999", false, "singleton", false,
				     &t, &e), 0);
	a = array_find(&f->st, t->st.id);
	for (uint32_t i = 0; i < 3; i++) {
		fix_cycle(&f->st);
		fix_cycle(&f->st);
		assert_int_equal(solo_running(f, "alice", &run), 1);
		assert_int_equal(run->array_index, i);
		assert_int_equal(count_state(f, a->id, TASK_PENDING), 1);
		assert_int_equal(array_set_count(&a->pending), 999998 - i);
		task_exit(f, run, 0);
	}
	fix_commit(f);
}

/*
 * singleton with other terms and the % limit: the array waits for
 * afterok's task first, then runs one index at a time although its %
 * limit allows two; a running plain task of the name holds back its
 * first index until it ends. A failed afterok is never satisfied.
 */
static void test_singleton_array_terms(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct task *x, *t, *plain, *bad;
	struct array *a;
	char spec[64];

	fix_cpu_node(&f->st, "n1", 8);
	assert_int_equal(submit_full(f, &alice, "x", "", false, "", false, &x, &e), 0);
	snprintf(spec, sizeof(spec), "afterok:%llu,singleton", (unsigned long long)x->st.id);
	assert_int_equal(submit_full(f, &alice, "solo", "0-4%2", false, spec, false, &t, &e), 0);
	a = array_find(&f->st, t->st.id);
	assert_int_equal(fix_cycle(&f->st), 1);          /* x only */
	assert_int_equal(count_state(f, a->id, TASK_RUNNING), 0);
	assert_string_equal(t->reason, "dependency");
	/* singleton is kept while afterok waits: it is asked again at the end. */
	assert_string_equal(t->dependency, spec);
	assert_int_equal(submit_full(f, &alice, "solo", "", false, "", false, &plain, &e), 0);
	assert_int_equal(fix_cycle(&f->st), 1);
	assert_int_equal(plain->state, TASK_RUNNING);
	task_exit(f, x, 0);                                /* met but for singleton */
	assert_int_equal(t->st.state, SCHED_NONE);
	assert_string_equal(t->dependency, "singleton");
	assert_int_equal(fix_cycle(&f->st), 0);
	task_exit(f, plain, 0);
	assert_int_equal(t->st.state, SCHED_PENDING);
	assert_int_equal(run_solo_one_by_one(f), 5);
	assert_int_equal(count_state(f, a->id, TASK_COMPLETED), 5);

	/* afterok on a task that failed: never, the singleton aside. */
	assert_int_equal(submit_full(f, &alice, "x", "", false, "", false, &x, &e), 0);
	assert_int_equal(fix_cycle(&f->st), 1);
	task_exit(f, x, 1);
	snprintf(spec, sizeof(spec), "afterok:%llu,singleton", (unsigned long long)x->st.id);
	assert_int_equal(submit_full(f, &alice, "solo", "0-2", false, spec, false, &bad, &e), 0);
	assert_string_equal(bad->reason, "dependency-never-satisfied");
	assert_int_equal(fix_cycle(&f->st), 0);
	fix_commit(f);
}

/* A restart keeps a singleton array one at a time: before its first
 * index starts, while one runs with the next waiting, and while the next
 * is queued after the one before ended. */
static void test_singleton_array_restart(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct task *t, *run;
	uint64_t id;

	fix_cpu_node(&f->st, "n1", 8);
	assert_int_equal(submit_full(f, &alice, "solo", "0-5", false, "singleton", false, &t, &e),
			 0);
	id = t->st.id;
	fix_commit(f);
	fix_close(f);                                      /* index 0 queued, not started */
	fix_open(f);
	fix_cpu_node(&f->st, "n1", 8);
	fix_cycle(&f->st);
	fix_cycle(&f->st);
	assert_int_equal(solo_running(f, "alice", &run), 1);
	assert_int_equal(run->array_index, 0);
	fix_commit(f);
	fix_close(f);                                      /* 0 runs, 1 waits */
	fix_open(f);
	fix_cpu_node(&f->st, "n1", 8);
	fix_cycle(&f->st);
	assert_int_equal(solo_running(f, "alice", &run), 1);
	assert_string_equal(array_find(&f->st, id)->head->reason, "dependency");
	task_exit(f, run, 0);
	fix_commit(f);
	fix_close(f);                                      /* 1 queued, 0 ended */
	fix_open(f);
	fix_cpu_node(&f->st, "n1", 8);
	fix_cycle(&f->st);
	fix_cycle(&f->st);
	assert_int_equal(solo_running(f, "alice", &run), 1);
	assert_int_equal(run->array_index, 1);
	task_exit(f, run, 0);
	assert_int_equal(run_solo_one_by_one(f), 4);
	assert_int_equal(count_state(f, id, TASK_COMPLETED), 6);
	fix_commit(f);
}

/* Indices cancelled here and there leave a pending set whose text is far
 * longer than any spec a user may give: a restart reads it back whole. */
static void test_restart_long_sets(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct selection sel;
	struct task *t;
	struct array *a;
	char id[64];
	uint64_t array_id;

	assert_int_equal(submit(f, "0-9999", true, &t, &e), 0);
	array_id = t->array_id;
	snprintf(id, sizeof(id), "%llu_[1-9999:3]", (unsigned long long)array_id);
	{
		Hpq__TaskSelector tsel = HPQ__TASK_SELECTOR__INIT;
		char *ids[] = { id };

		tsel.n_ids = 1;
		tsel.ids = ids;
		assert_int_equal(select_resolve(&f->st, &tsel, &sel, &e), 0);
		control_apply(&f->st, &sel, CONTROL_CANCEL, &alice, NULL, NULL);
		for (size_t i = 0; i < sel.n; i++)
			assert_int_equal(sel.v[i].code, 0);
		select_release(&sel);
	}
	a = array_find(&f->st, array_id);
	assert_int_equal(array_set_count(&a->pending), 6666);
	fix_commit(f);

	fix_close(f);
	fix_open(f);
	a = array_find(&f->st, array_id);
	assert_non_null(a);
	assert_int_equal(array_set_count(&a->pending), 6666);
	assert_true(array_set_has(&a->pending, 9998));
	assert_false(array_set_has(&a->pending, 9997));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_specs),
		cmocka_unit_test(test_set_add),
		cmocka_unit_test_setup_teardown(test_evict_ended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evict_mixed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parked_dependency_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_invalid_held_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_and_fanout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fanout_unlimited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_long_sets, setup, teardown),
		cmocka_unit_test(test_select_ids),
		cmocka_unit_test_setup_teardown(test_hold_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_array_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_indices_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_by_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_depend_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_depend_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_depend_arrays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_depend_index_task_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_singleton_array, setup, teardown),
		cmocka_unit_test_setup_teardown(test_singleton_array_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_singleton_array_terms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_singleton_array_restart, setup, teardown),
	};

	hpq_log_set_level(LOG_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
