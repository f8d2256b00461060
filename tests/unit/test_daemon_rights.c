/*
 * test_daemon_rights.c: roles in the daemon (daemon/rights.c, groups.c),
 * on a real state and store in a temp dir:
 *
 *   - the group cache answers from its entries until the TTL passes or
 *     the primary group changes, keeps at most its size (the oldest
 *     goes), and hands out copies that outlive its entries; the NSS
 *     resolver finds root's group;
 *   - team members and admins match user names and @groups; a team
 *     admin via @group cancels the team's tasks, another user is refused
 *     with a message naming who may; a team admin sets the team's members
 *     but nothing else, and not another team's; an @group member submits;
 *   - a reader's view of private data: owner, team admins, cluster
 *     administrators, everyone with private_data off;
 *   - refusals are recorded as "denied" events, DENIED_BURST per user and
 *     window, and the next window's first says how many were left out; a
 *     summary of many refusals (rights_denied_many) is one event, and
 *     counts for all of them when it is left out.
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
#include "error.h"
#include "groups.h"
#include "hpq.pb-c.h"
#include "rights.h"
#include "state.h"
#include "store.h"
#include "submit.h"

/* ---------------------------------------------------------------- the group cache */

struct fake_ns {
	int calls;
	const char *group;   /* every user's one group besides "users" */
};

static char **fake_resolve(void *arg, const char *user, uint32_t gid, size_t *ret_n)
{
	struct fake_ns *ns = arg;
	char **b = malloc(2 * sizeof(char *) + 64);

	assert_non_null(b);
	ns->calls++;
	b[0] = (char *)(b + 2);
	b[1] = b[0] + 32;
	snprintf(b[0], 32, "%s", ns->group);
	snprintf(b[1], 32, "users");
	*ret_n = 2;
	return b;
}

static void test_group_cache(void **ts)
{
	struct fake_ns ns = { 0, "ml" };
	struct groups *g = groups_new(30000, 2, fake_resolve, &ns);
	char **a, **b;
	size_t n;

	a = groups_of(g, "alice", 100, 1000, &n);
	assert_int_equal(n, 2);
	assert_string_equal(a[0], "ml");
	assert_string_equal(a[1], "users");
	assert_int_equal(ns.calls, 1);
	/* Fresh: from the cache, as a copy of its own. */
	ns.group = "ops";
	b = groups_of(g, "alice", 100, 30999, &n);
	assert_int_equal(ns.calls, 1);
	assert_string_equal(b[0], "ml");
	free(b);
	/* The TTL passed: asked again. */
	b = groups_of(g, "alice", 100, 31000, &n);
	assert_int_equal(ns.calls, 2);
	assert_string_equal(b[0], "ops");
	free(b);
	/* Another primary group: asked again. */
	b = groups_of(g, "alice", 200, 31001, &n);
	assert_int_equal(ns.calls, 3);
	free(b);
	/* Full at two users: the oldest (alice, at 31001) makes room. */
	free(groups_of(g, "bob", 100, 32000, &n));
	free(groups_of(g, "carol", 100, 33000, &n));
	assert_int_equal(ns.calls, 5);
	free(groups_of(g, "bob", 100, 34000, &n));
	assert_int_equal(ns.calls, 5);
	free(groups_of(g, "alice", 200, 35000, &n));
	assert_int_equal(ns.calls, 6);
	groups_free(g);
	/* The first copy outlives the cache. */
	assert_string_equal(a[1], "users");
	free(a);

	/* The name service: root is in group 0, whatever its name. */
	a = groups_of(NULL, "root", 0, 0, &n);
	assert_true(n >= 1);
	assert_non_null(a);
	free(a);
}

/* ---------------------------------------------------------------- rights on a real state */

struct fix {
	char dir[64];
	char path[128];
	uv_loop_t loop;
	struct store *s;
	struct state st;
	int denied;                  /* "denied" events seen */
	char last[512];              /* the newest one's message */
	char last_actor[64];
};

static const struct actor admin = { .user = "root", .uid = 0, .gid = 0, .admin = true,
				    .known = true };
static char *lead_groups[] = { "ml-leads", "users" };
static char *ml_groups[] = { "ml", "users" };
/* A team lead through @ml-leads; a member through @ml; an outsider. */
static const struct actor lead = { .user = "lena", .uid = 1001, .gid = 1001, .known = true,
				   .groups = lead_groups, .ngroups = 2 };
static const struct actor alice = { .user = "alice", .uid = 1000, .gid = 1000, .known = true,
				    .groups = ml_groups, .ngroups = 2 };
static const struct actor bob = { .user = "bob", .uid = 1002, .gid = 1002, .known = true };

static void on_event(void *arg, const struct store_event *ev, const struct task *t)
{
	struct fix *f = arg;

	if (strcmp(ev->kind, "denied"))
		return;
	f->denied++;
	snprintf(f->last, sizeof(f->last), "%s", ev->message);
	snprintf(f->last_actor, sizeof(f->last_actor), "%s", ev->actor);
}

static int setup(void **ts)
{
	struct fix *f = calloc(1, sizeof(*f));
	char err[256] = "";

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/hpq-rights-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/hpq.db", f->dir);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	if (store_open(f->path, STORE_NOSYNC, &f->s, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	state_init(&f->st, f->s);
	if (state_load(&f->st, err, sizeof(err)) < 0)
		fail_msg("state_load: %s", err);
	assert_int_equal(store_start(f->s, &f->loop, NULL, NULL), 0);
	state_observe(&f->st, &(struct state_observer){ .event = on_event, .arg = f });
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

/* hpq team add|set NAME with the given fields: members and admins are
 * comma-separated lists ("" for none). */
static int team_set(struct fix *f, const struct actor *who, bool create, const char *name,
		    const char *members, const char *admins, uint32_t weight, struct state_err *e)
{
	Hpq__TeamSetRequest req = HPQ__TEAM_SET_REQUEST__INIT;
	Hpq__Team team = HPQ__TEAM__INIT;
	char *fields[3], *mv[8], *av[8], mbuf[128] = "", abuf[128] = "", *save = NULL;

	team.name = (char *)name;
	req.team = &team;
	req.create = create;
	req.fields = fields;
	if (members) {
		snprintf(mbuf, sizeof(mbuf), "%s", members);
		for (char *s = strtok_r(mbuf, ",", &save); s; s = strtok_r(NULL, ",", &save))
			mv[team.n_members++] = s;
		team.members = mv;
		fields[req.n_fields++] = "members";
	}
	if (admins) {
		snprintf(abuf, sizeof(abuf), "%s", admins);
		for (char *s = strtok_r(abuf, ",", &save); s; s = strtok_r(NULL, ",", &save))
			av[team.n_admins++] = s;
		team.admins = av;
		fields[req.n_fields++] = "admins";
	}
	if (weight) {
		team.weight = weight;
		fields[req.n_fields++] = "weight";
	}
	return state_team_set(&f->st, &req, who, e);
}

static struct task *submit(struct fix *f, const struct actor *who, const char *team,
			   struct state_err *e)
{
	static char *argv[] = { "/bin/train", "--secret-flag" };
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	struct task *t = NULL;

	spec.team = (char *)team;
	spec.n_argv = 2;
	spec.argv = argv;
	spec.cwd = "/home/secret";
	return state_task_submit(&f->st, &spec, who, &t, e) < 0 ? NULL : t;
}

static void test_team_roles(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct team *vision;
	struct task *t;

	/* Cluster administrators make teams; @names are checked. */
	assert_int_equal(team_set(f, &lead, true, "vision", NULL, NULL, 0, &e), HPQ_EPERM);
	assert_non_null(strstr(e.msg, "cluster administrators"));
	assert_int_equal(team_set(f, &admin, true, "vision", "@bad name", NULL, 0, &e),
			 HPQ_EINVAL);
	assert_int_equal(team_set(f, &admin, true, "vision", "carol,@ml", "@ml-leads", 0, &e), 0);
	assert_int_equal(team_set(f, &admin, true, "nlp", "bob", "bob", 0, &e), 0);
	vision = state_team_find(&f->st, "vision");
	assert_int_equal(vision->nadmins, 1);
	assert_string_equal(vision->admins[0], "@ml-leads");

	assert_true(actor_named(vision->members, vision->nmembers, &alice));   /* @ml */
	assert_false(actor_named(vision->members, vision->nmembers, &bob));
	assert_true(team_is_admin(vision, &lead));
	assert_false(team_is_admin(vision, &alice));
	assert_false(team_is_admin(NULL, &lead));

	/* A member via @ml submits; bob is refused, saying who may. */
	t = submit(f, &alice, "vision", &e);
	assert_non_null(t);
	assert_null(submit(f, &bob, "vision", &e));
	assert_non_null(strstr(e.msg, "not a member of team vision"));

	/* The team admin may cancel the team's task; bob may not. */
	assert_false(rights_task_manage(&f->st, t, &bob));
	assert_int_equal(state_task_cancel(&f->st, t, &bob, &e), HPQ_EPERM);
	assert_string_equal(e.msg, "task 1 is alice's: only its owner, admins of team vision and "
			    "cluster administrators may cancel it");
	assert_true(rights_task_manage(&f->st, t, &alice));
	assert_true(rights_task_manage(&f->st, t, &admin));
	assert_int_equal(state_task_cancel(&f->st, t, &lead, &e), 0);
	assert_int_equal(t->state, TASK_CANCELLED);

	/* Team admins set their team's members, nothing else, no other team's. */
	assert_int_equal(team_set(f, &lead, false, "vision", "@ml,dan", NULL, 0, &e), 0);
	vision = state_team_find(&f->st, "vision");
	assert_int_equal(vision->nmembers, 2);
	assert_string_equal(vision->members[1], "dan");
	assert_int_equal(team_set(f, &lead, false, "vision", NULL, NULL, 50, &e), HPQ_EPERM);
	assert_non_null(strstr(e.msg, "members only"));
	assert_int_equal(team_set(f, &lead, false, "vision", NULL, "lena", 0, &e), HPQ_EPERM);
	assert_int_equal(team_set(f, &lead, false, "nlp", "lena", NULL, 0, &e), HPQ_EPERM);
	assert_non_null(strstr(e.msg, "not an admin of team nlp"));
	assert_int_equal(team_set(f, &alice, false, "vision", "alice", NULL, 0, &e), HPQ_EPERM);
	assert_int_equal(state_team_remove(&f->st, "vision", &lead, &e), HPQ_EPERM);
	assert_int_equal(state_team_find(&f->st, "vision")->weight, 1);
	assert_int_equal(state_team_find(&f->st, "vision")->nadmins, 1);
}

static void test_private_view(void **ts)
{
	struct fix *f = *ts;
	struct state_err e = { { 0 } };
	struct rights_view v;
	struct task *t, *u;

	assert_int_equal(team_set(f, &admin, true, "vision", "@ml,bob", "@ml-leads", 0, &e), 0);
	assert_int_equal(team_set(f, &admin, true, "nlp", "bob", "", 0, &e), 0);
	t = submit(f, &alice, "vision", &e);
	u = submit(f, &bob, "nlp", &e);
	assert_non_null(t);
	assert_non_null(u);

	rights_view_init(&v, &f->st, &bob, true);
	assert_false(rights_view_task(&v, t));
	assert_true(rights_view_task(&v, u));             /* its own */
	rights_view_release(&v);
	rights_view_init(&v, &f->st, &lead, true);
	assert_true(rights_view_task(&v, t));             /* team admin */
	assert_false(rights_view_task(&v, u));
	rights_view_release(&v);
	rights_view_init(&v, &f->st, &admin, true);
	assert_true(rights_view_task(&v, t) && rights_view_task(&v, u));
	rights_view_release(&v);
	rights_view_init(&v, &f->st, &bob, false);        /* private_data = no */
	assert_true(rights_view_task(&v, t));
	rights_view_release(&v);

	/* A removed team's tasks keep their owner's right only. */
	assert_int_equal(state_task_cancel(&f->st, u, &bob, &e), 0);
	assert_int_equal(state_team_remove(&f->st, "nlp", &admin, &e), 0);
	rights_view_init(&v, &f->st, &lead, true);
	assert_false(rights_view_task(&v, u));
	rights_view_release(&v);
}

static void test_denied_rate(void **ts)
{
	struct fix *f = *ts;
	int64_t t0 = 5000000;

	for (int i = 0; i < DENIED_BURST + 5; i++)
		rights_denied_at(&f->st, &bob, NULL, "task 1 is alice's", t0 + i);
	assert_int_equal(f->denied, DENIED_BURST);
	assert_string_equal(f->last_actor, "bob");
	assert_string_equal(f->last, "task 1 is alice's");
	/* Others are counted apart. */
	rights_denied_at(&f->st, &alice, NULL, "only administrators can drain nodes", t0 + 20);
	assert_int_equal(f->denied, DENIED_BURST + 1);
	/* Still bob's window: nothing. */
	rights_denied_at(&f->st, &bob, NULL, "again", t0 + DENIED_WINDOW_MS - 1);
	assert_int_equal(f->denied, DENIED_BURST + 1);
	/* A new window says how many were left out. */
	rights_denied_at(&f->st, &bob, NULL, "later", t0 + DENIED_WINDOW_MS);
	assert_int_equal(f->denied, DENIED_BURST + 2);
	assert_non_null(strstr(f->last, "later (and 6 earlier refusals of bob"));
	rights_denied_at(&f->st, &bob, NULL, "later still", t0 + DENIED_WINDOW_MS + 1);
	assert_string_equal(f->last, "later still");

	/* At most DENIED_MAX_USERS are remembered; a new one still records. */
	for (int i = 0; i < DENIED_MAX_USERS + 3; i++) {
		char name[32];
		struct actor who = { .user = name, .known = true };

		snprintf(name, sizeof(name), "user%d", i);
		rights_denied_at(&f->st, &who, NULL, "no", t0 + 100000 + i);
	}
	assert_int_equal(f->denied, DENIED_BURST + 3 + DENIED_MAX_USERS + 3);

	/* A summary of many refusals (control.h) is one event, and left out
	 * it counts for all of them. */
	{
		struct actor carol = { .user = "carol", .known = true };
		int64_t now = hpq_mono_ms();
		int before = f->denied;

		rights_denied_many(&f->st, &carol, 500, "cancel of 500 more tasks");
		assert_int_equal(f->denied, before + 1);
		assert_string_equal(f->last, "cancel of 500 more tasks");
		for (int i = 1; i < DENIED_BURST; i++)
			rights_denied_at(&f->st, &carol, NULL, "task 1 is alice's", now);
		rights_denied_many(&f->st, &carol, 500, "cancel of 500 more tasks");
		assert_int_equal(f->denied, before + DENIED_BURST);
		rights_denied_at(&f->st, &carol, NULL, "later", now + DENIED_WINDOW_MS + 1000);
		assert_non_null(strstr(f->last, "later (and 500 earlier refusals of carol"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_cache),
		cmocka_unit_test_setup_teardown(test_team_roles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_view, setup, teardown),
		cmocka_unit_test_setup_teardown(test_denied_rate, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
