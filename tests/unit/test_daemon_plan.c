/*
 * test_daemon_plan.c: training plans in the model (daemon/plan.c), with the
 * real state and store on temporary files, in milliseconds of a fixed
 * clock:
 *
 *   - a pool [plans] reservable does not name has nothing to offer;
 *   - a team's guarantee in GPUs counts as whole nodes (rounded up), and
 *     the team itself may reserve into it while others may not;
 *   - only team admins and administrators create and cancel, and a
 *     refusal changes nothing;
 *   - offerings are used once and expire; a stale one is refused;
 *   - the state follows the clock, with a `plan` row and event for each
 *     change, and survives a reopen.
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

#include "config.h"
#include "daemon_fixture.h"
#include "error.h"
#include "hpq.pb-c.h"
#include "plan.h"
#include "state.h"
#include "store.h"
#include "xalloc.h"

#define T0 ((int64_t)1900000000000)   /* "now", a fixed clock */
#define MINUTE 60000

struct plan_fix {
	struct fix fx;
	struct config cfg;
	int events;                  /* `plan` events seen */
	char last[512];
};

static const struct actor admin = { .user = "root", .admin = true, .known = true };
static const struct actor carol = { .user = "carol", .uid = 1002, .gid = 1002, .known = true };
static const struct actor dave = { .user = "dave", .uid = 1003, .gid = 1003, .known = true };

static void on_event(void *arg, const struct store_event *ev, const struct task *t)
{
	struct plan_fix *pf = arg;

	(void)t;
	if (!strcmp(ev->kind, "plan")) {
		pf->events++;
		snprintf(pf->last, sizeof(pf->last), "%s", ev->message);
	}
}

/* fix_open, with the plans configured and the events observed before the load. */
static void open_all(struct plan_fix *pf)
{
	struct fix *f = &pf->fx;
	char err[256] = "";
	struct state_observer o = { .event = on_event, .arg = pf };

	if (store_open(f->path, f->flags, &f->s, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	state_init(&f->st, f->s);
	plans_configure(&f->st, &pf->cfg);
	state_observe(&f->st, &o);
	if (state_load(&f->st, err, sizeof(err)) < 0)
		fail_msg("state_load: %s", err);
	assert_int_equal(store_start(f->s, &f->loop, NULL, NULL), 0);
}

/* Team name with admins and a guarantee of gpus in pool "gpu". */
static void team(struct fix *f, const char *name, const char *admins, int64_t gpus)
{
	Hpq__TeamSetRequest req = HPQ__TEAM_SET_REQUEST__INIT;
	Hpq__Team tm = HPQ__TEAM__INIT;
	Hpq__PoolQuota pq = HPQ__POOL_QUOTA__INIT, *pqs[] = { &pq };
	Hpq__Resources g = HPQ__RESOURCES__INIT;
	char *fields[] = { "admins", "quotas" }, *av[] = { (char *)admins };
	struct state_err e;

	g.gpus = gpus;
	pq.pool = "gpu";
	pq.guarantee = &g;
	pq.sharing = "lend";
	pq.borrow_limit_pct = 50;
	tm.name = (char *)name;
	tm.n_admins = 1;
	tm.admins = av;
	tm.n_quotas = 1;
	tm.quotas = pqs;
	req.team = &tm;
	req.create = true;
	req.fields = fields;
	req.n_fields = 2;
	if (state_team_set(&f->st, &req, &admin, &e) < 0)
		fail_msg("team: %s", e.msg);
}

static int setup(void **ts)
{
	struct plan_fix *pf = xcalloc(1, sizeof(*pf));
	struct fix *f = &pf->fx;
	char err[256];

	fix_init(f, "plan", 0);
	config_init(&pf->cfg);
	assert_int_equal(config_set(&pf->cfg, "plans", "reservable", "gpu=100%", err,
				    sizeof(err)), 0);
	open_all(pf);
	for (int i = 0; i < 4; i++) {
		char name[16];

		snprintf(name, sizeof(name), "g%d", i);
		fix_gpu_node(&f->st, name, "gpu", 8);
	}
	fix_gpu_node(&f->st, "c0", "cpu", 8);
	team(f, "nlp", "carol", 12);      /* 1.5 nodes of 8 GPUs: 2 whole nodes */
	team(f, "vision", "dave", 0);
	*ts = pf;
	return 0;
}

static int teardown(void **ts)
{
	struct plan_fix *pf = *ts;

	fix_commit_close(&pf->fx);
	config_release(&pf->cfg);
	fix_fini(&pf->fx);
	free(pf);
	return 0;
}

static int search(struct fix *f, const char *pool, const char *team, uint32_t nodes,
		  uint64_t dur_s, const struct plan_offer **o, struct state_err *e)
{
	struct plan_query q = { .pool = pool, .team = team, .nodes = nodes, .duration_s = dur_s,
				.max_segments = 1 };

	return plans_search(&f->st, &q, T0, o, NULL, NULL, e);
}

static void test_guarantees_and_pools(void **ts)
{
	struct plan_fix *pf = *ts;
	struct fix *f = &pf->fx;
	const struct plan_offer *o;
	struct state_err e;
	struct plan *p;
	char id[24];

	/* cpu is not reservable; unknown pools and teams are refused */
	assert_int_equal(search(f, "cpu", "", 1, 60, &o, &e), HPQ_EINVAL);
	assert_non_null(strstr(e.msg, "no reservable nodes"));
	assert_int_equal(search(f, "tpu", "", 1, 60, &o, &e), HPQ_ENOTFOUND);
	assert_int_equal(search(f, "gpu", "nobody", 1, 60, &o, &e), HPQ_ENOTFOUND);
	/* nlp's 12 GPUs hold 2 of the 4 nodes: vision may reserve 2, nlp 4 */
	assert_int_equal(search(f, "gpu", "vision", 3, 60, &o, &e), 0);
	assert_int_equal(search(f, "gpu", "vision", 2, 60, &o, &e), 1);
	assert_int_equal(search(f, "gpu", "", 3, 60, &o, &e), 0);
	assert_int_equal(search(f, "gpu", "nlp", 4, 60, &o, &e), 1);
	snprintf(id, sizeof(id), "%s", o[0].id);
	assert_int_equal(o[0].o.segments[0].start, T0);
	/* created for vision, nlp's offering breaks nlp's guarantee: stale */
	assert_int_equal(plans_create(&f->st, &admin, id, "vision", "v1", T0, &p, &e), HPQ_EBUSY);
	assert_non_null(strstr(e.msg, "stale"));
	assert_non_null(strstr(e.msg, "guarantee"));
	assert_int_equal(plans_create(&f->st, &admin, id, "nlp", "n1", T0, &p, &e), 0);
	assert_int_equal(p->nsegments, 1);
	assert_int_equal(p->state, PLAN_ACTIVE);
	assert_int_equal(p->gpus_per_node, 8);
	/* used once */
	assert_int_equal(plans_create(&f->st, &admin, id, "nlp", "n2", T0, &p, &e),
			 HPQ_ENOTFOUND);
	/* the pool is taken for that minute: the next window is after it */
	assert_int_equal(search(f, "gpu", "nlp", 1, 60, &o, &e), 1);
	assert_int_equal(o[0].o.segments[0].start, T0 + MINUTE);
	/* an offering made before a plan took its nodes is stale, and says
	 * which node by name */
	assert_int_equal(search(f, "gpu", "nlp", 1, 60, &o, &e), 1);
	snprintf(id, sizeof(id), "%s", o[0].id);
	assert_int_equal(search(f, "gpu", "nlp", 1, 60, &o, &e), 1);
	assert_int_equal(plans_create(&f->st, &admin, o[0].id, "nlp", "n2", T0, &p, &e), 0);
	assert_int_equal(plans_create(&f->st, &admin, id, "nlp", "n3", T0, &p, &e), HPQ_EBUSY);
	assert_non_null(strstr(e.msg, "node g"));
	assert_null(plans_find(&f->st, "n3"));
}

static void test_rights_and_expiry(void **ts)
{
	struct plan_fix *pf = *ts;
	struct fix *f = &pf->fx;
	const struct plan_offer *o;
	struct state_err e;
	struct plan *p;
	char id[24];
	int events;

	assert_int_equal(search(f, "gpu", "vision", 1, 600, &o, &e), 1);
	snprintf(id, sizeof(id), "%s", o[0].id);
	events = pf->events;
	assert_int_equal(plans_create(&f->st, &carol, id, "vision", "v1", T0, &p, &e), HPQ_EPERM);
	assert_int_equal(plans_create(&f->st, &dave, id, "vision", "bad name", T0, &p, &e),
			 HPQ_EINVAL);
	assert_int_equal(plans_create(&f->st, &dave, id, "vision", "v1",
				      T0 + (int64_t)pf->cfg.plans.offer_lifetime_s * 1000, &p, &e),
			 HPQ_ESTATE);
	assert_non_null(strstr(e.msg, "expired"));
	assert_int_equal(pf->events, events);
	assert_null(plans_find(&f->st, "v1"));
	assert_int_equal(plans_create(&f->st, &dave, id, "vision", "v1", T0 + 1000, &p, &e), 0);
	assert_int_equal(pf->events, events + 2);      /* scheduled, active */
	assert_int_equal(plans_cancel(&f->st, &carol, "v1", T0 + 2000, &e), HPQ_EPERM);
	assert_int_equal(plans_cancel(&f->st, &dave, "v1", T0 + 2000, &e), 0);
	assert_int_equal(plans_cancel(&f->st, &admin, "v1", T0 + 3000, &e), HPQ_ESTATE);
	assert_non_null(strstr(pf->last, "cancelled"));
	/* two seconds of one node of 8 GPUs */
	assert_true(plan_gpu_hours_reserved(plans_find(&f->st, "v1")) > 0.0044);
	assert_true(plan_gpu_hours_reserved(plans_find(&f->st, "v1")) < 0.0045);
}

static void test_clock_and_reopen(void **ts)
{
	struct plan_fix *pf = *ts;
	struct fix *f = &pf->fx;
	struct plan_query q = { .pool = "gpu", .team = "nlp", .nodes = 4, .duration_s = 120,
				.after = T0 + MINUTE, .max_segments = 2 };
	const struct plan_offer *o;
	struct state_err e;
	struct plan *p;
	char id[24];

	/* all 4 nodes taken [T0+2m, T0+3m): a 2-minute run splits around it */
	q.duration_s = 60;
	q.after = T0 + 2 * MINUTE;
	assert_int_equal(plans_search(&f->st, &q, T0, &o, NULL, NULL, &e), 1);
	snprintf(id, sizeof(id), "%s", o[0].id);
	assert_int_equal(plans_create(&f->st, &admin, id, "nlp", "block", T0, &p, &e), 0);
	q.duration_s = 120;
	q.after = T0 + MINUTE;
	assert_true(plans_search(&f->st, &q, T0, &o, NULL, NULL, &e) >= 1);
	assert_int_equal(o[0].o.nsegments, 2);
	assert_int_equal(o[0].o.segments[1].start, T0 + 3 * MINUTE);
	assert_int_equal(o[0].o.finish, T0 + 4 * MINUTE);
	snprintf(id, sizeof(id), "%s", o[0].id);
	assert_int_equal(plans_create(&f->st, &admin, id, "nlp", "split", T0, &p, &e), 0);
	assert_int_equal(p->state, PLAN_SCHEDULED);
	assert_int_equal(plans_advance(&f->st, T0), T0 + MINUTE);
	assert_int_equal(plans_advance(&f->st, T0 + MINUTE), T0 + 2 * MINUTE);
	assert_int_equal(p->state, PLAN_ACTIVE);
	plans_advance(&f->st, T0 + 2 * MINUTE);
	assert_int_equal(p->state, PLAN_BETWEEN);
	assert_non_null(strstr(pf->last, "segment 2 starts"));

	fix_commit_close(f);
	open_all(pf);
	p = plans_find(&f->st, "split");
	assert_non_null(p);
	assert_int_equal(p->state, PLAN_BETWEEN);
	assert_int_equal(p->nsegments, 2);
	assert_string_equal(p->team, "nlp");
	assert_int_equal(p->seg[1].nnodes, 4);
	plans_advance(&f->st, T0 + 5 * MINUTE);
	assert_int_equal(p->state, PLAN_COMPLETED);
	assert_int_equal(p->ended_ms, T0 + 4 * MINUTE);
	assert_int_equal(plans_advance(&f->st, T0 + 5 * MINUTE), INT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_guarantees_and_pools, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rights_and_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clock_and_reopen, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
