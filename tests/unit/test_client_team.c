/*
 * test_client_team.c: `hpq team add|set` command lines and the requests
 * built from them: --pool groups, the implicit "default" pool, limits,
 * members and admins (users and @groups), the usage errors, and for `set`
 * the merge into the team the daemon has, which must keep everything the
 * command did not mention.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "cmd-team.h"
#include "error.h"

#define ARGC(v) ((int)(sizeof(v) / sizeof((v)[0])) - 1)

static int parse(char **argv, int argc, struct cmd_team *t)
{
	struct cli cli;

	cli_init(&cli);
	cli.cmd = "team add";
	return cmd_team_parse(&cli, cmd_team_entry.sub[0], argc, argv, t);
}

static bool has_field(const struct cmd_team_request *r, const char *name)
{
	for (size_t i = 0; i < r->req.n_fields; i++)
		if (strcmp(r->req.fields[i], name) == 0)
			return true;
	return false;
}

static const Hpq__PoolQuota *quota(const struct cmd_team_request *r, const char *pool)
{
	for (size_t i = 0; i < r->req.team->n_quotas; i++)
		if (strcmp(r->req.team->quotas[i]->pool, pool) == 0)
			return r->req.team->quotas[i];
	fail_msg("no quota for pool %s", pool);
	return NULL;
}

static void test_add_groups(void **state)
{
	char *argv[] = {"add", "--weight", "3", "--pool", "p5", "--gpus", "8", "--borrow-limit",
			"100%", "--pool", "p4", "--cpus", "4", "--sharing", "lend", "--members",
			"alice,bob,alice", "--default-class", "training", "team1", NULL};
	struct cmd_team t;
	struct cmd_team_request r;
	const Hpq__PoolQuota *q;

	assert_int_equal(parse(argv, ARGC(argv), &t), 0);
	assert_string_equal(t.name, "team1");
	assert_int_equal(t.n_pools, 2);
	assert_int_equal(t.n_members, 2);
	assert_int_equal(t.given, TEAM_F_WEIGHT | TEAM_F_MEMBERS | TEAM_F_DEFAULT_CLASS);
	assert_int_equal(t.pools[0].given, TEAM_Q_GPUS | TEAM_Q_BORROW_PCT);
	assert_int_equal(t.pools[1].given, TEAM_Q_CPUS | TEAM_Q_SHARING);

	cmd_team_request(&t, true, NULL, &r);
	assert_true(r.req.create);
	assert_ptr_equal(r.req.team, &r.team);
	assert_string_equal(r.req.team->name, "team1");
	assert_int_equal(r.req.team->weight, 3);
	assert_int_equal(r.req.team->n_members, 2);
	assert_string_equal(r.req.team->members[1], "bob");
	assert_string_equal(r.req.team->default_class, "training");
	assert_int_equal(r.req.n_fields, 6);
	assert_true(has_field(&r, "weight"));
	assert_true(has_field(&r, "members"));
	assert_true(has_field(&r, "default_class"));
	assert_true(has_field(&r, "quota.guarantee"));
	assert_true(has_field(&r, "quota.borrow_limit_pct"));
	assert_true(has_field(&r, "quota.sharing"));
	assert_false(has_field(&r, "preempt_own"));

	assert_int_equal(r.req.team->n_quotas, 2);
	q = quota(&r, "p5");
	assert_int_equal(q->guarantee->gpus, 8);
	assert_int_equal(q->borrow_limit_pct, 100);
	assert_string_equal(q->sharing, TEAM_DEFAULT_SHARING);
	assert_false(q->has_borrow_limit_abs);
	assert_null(q->borrow_limit_abs);
	q = quota(&r, "p4");
	assert_int_equal(q->guarantee->cpus, 4);
	assert_int_equal(q->guarantee->gpus, 0);
	assert_string_equal(q->sharing, "lend");
	assert_int_equal(q->borrow_limit_pct, TEAM_DEFAULT_BORROW_PCT);
	cmd_team_request_release(&r);
	cmd_team_release(&t);
}

static void test_default_pool(void **state)
{
	char *argv[] = {"add", "ml", "--gpus", "4", "--pool", "p5", "--gpus", "16", NULL};
	struct cmd_team t;

	assert_int_equal(parse(argv, ARGC(argv), &t), 0);
	assert_int_equal(t.n_pools, 2);
	assert_string_equal(t.pools[0].pool, "default");
	assert_int_equal(t.pools[0].guarantee.gpus, 4);
	assert_string_equal(t.pools[1].pool, "p5");
	assert_int_equal(t.pools[1].guarantee.gpus, 16);
	cmd_team_release(&t);
}

static void test_limits(void **state)
{
	char *argv[] = {"add", "ml", "--borrow-limit-abs", "gpus=4,mem=512G",
			"--lend-limit", "cpus=8", "--pool", "p5", "--borrow-limit-abs", "none",
			"--lend-limit", "all", NULL};
	struct cmd_team t;
	struct cmd_team_request r;
	const Hpq__PoolQuota *q;
	Hpq__Resources v;

	assert_int_equal(parse(argv, ARGC(argv), &t), 0);
	cmd_team_request(&t, true, NULL, &r);
	q = quota(&r, "default");
	assert_true(q->has_borrow_limit_abs);
	assert_int_equal(q->borrow_limit_abs->gpus, 4);
	assert_int_equal(q->borrow_limit_abs->cpus, HPQ_UNLIMITED_COUNT);
	assert_int_equal(q->borrow_limit_abs->mem, 512 * 1024);
	assert_true(q->has_lend_limit);
	assert_int_equal(q->lend_limit->cpus, 8);
	assert_int_equal(q->lend_limit->gpus, HPQ_UNLIMITED_COUNT);
	q = quota(&r, "p5");
	assert_false(q->has_borrow_limit_abs);
	assert_null(q->borrow_limit_abs);
	assert_false(q->has_lend_limit);
	assert_true(has_field(&r, "quota.borrow_limit_abs"));
	assert_true(has_field(&r, "quota.lend_limit"));
	cmd_team_request_release(&r);
	cmd_team_release(&t);

	assert_int_equal(cmd_team_parse_limit("unlimited", &v), 0);
	assert_int_equal(v.gpus, HPQ_UNLIMITED_COUNT);
	assert_int_equal(v.mem, HPQ_UNLIMITED_MEM);
	assert_int_equal(cmd_team_parse_limit("cpus=unlimited,gpus=0", &v), 0);
	assert_int_equal(v.gpus, 0);
	assert_int_equal(v.cpus, HPQ_UNLIMITED_COUNT);
	static const char *const bad[] = {"", "gpus", "gpus=", "gpus=-1", "gpus=4,gpus=5",
					  "disk=1", "gpus=4,", "mem=lots", "none", NULL};
	for (const char *const *s = bad; *s; s++)
		if (cmd_team_parse_limit(*s, &v) != HPQ_EINVAL)
			fail_msg("limit '%s' was accepted", *s);
}

static void bad(char **argv, int argc)
{
	struct cmd_team t;
	int r = parse(argv, argc, &t);

	if (r != CLI_USAGE) {
		char line[512] = "";

		for (int i = 0; i < argc; i++) {
			strncat(line, argv[i], sizeof(line) - strlen(line) - 2);
			strcat(line, " ");
		}
		fail_msg("'%s' gave %d, not a usage error", line, r);
	}
}

#define BAD(...)                                             \
	do {                                                 \
		char *v_[] = {"add", __VA_ARGS__, NULL};     \
		bad(v_, ARGC(v_));                           \
	} while (0)

static void test_usage_errors(void **state)
{
	BAD("t", "--pool", "p5", "--gpus", "1", "--pool", "p5");
	BAD("t", "--gpus", "1", "--gpus", "2");
	BAD("t", "--weight", "1", "--weight", "2");
	BAD("t", "--weight", "101");
	BAD("t", "--weight", "-1");
	BAD("t", "--borrow-limit", "10001");
	BAD("t", "--borrow-limit", "%");
	BAD("t", "--borrow-limit", "5%%");
	BAD("t", "--sharing", "share");
	BAD("t", "--preempt-own", "always");
	BAD("t", "--members", "a,,b");
	BAD("t", "--members", "has space");
	BAD("t", "--borrow-limit-abs", "gpus=x");
	BAD("t", "--lend-limit", "none");
	BAD("t", "--mem", "10Q");
	BAD("t", "--pool", "bad/pool");
	BAD("t", "--default-class", "no way");
	BAD("--gpus", "1");
	BAD("t", "u");
	BAD("bad name");
}

/* set: the team as the daemon has it, then a change to part of one quota
 * and a new pool. Nothing unmentioned may change, and the reply the
 * existing team came from must not be written to. */
static void test_set_merge(void **state)
{
	char *argv[] = {"set", "team1", "--pool", "p5", "--cpus", "32", "--pool", "fresh", "--gpus",
			"2", NULL};
	Hpq__Team ex = HPQ__TEAM__INIT;
	Hpq__PoolQuota q5 = HPQ__POOL_QUOTA__INIT, q4 = HPQ__POOL_QUOTA__INIT, *qs[] = {&q5, &q4};
	Hpq__Resources g5 = HPQ__RESOURCES__INIT, g4 = HPQ__RESOURCES__INIT;
	Hpq__Resources lend5 = HPQ__RESOURCES__INIT;
	char *members[] = {"carol"};
	struct cmd_team t;
	struct cmd_team_request r;
	const Hpq__PoolQuota *q;

	ex.name = "team1";
	ex.weight = 7;
	ex.preempt_own = "lower-priority";
	ex.members = members;
	ex.n_members = 1;
	ex.default_class = "training";
	g5.gpus = 8;
	g5.cpus = 64;
	g5.mem = 1000;
	q5.pool = "p5";
	q5.guarantee = &g5;
	q5.sharing = "lend";
	q5.borrow_limit_pct = 30;
	q5.has_lend_limit = true;
	lend5.gpus = 2;
	q5.lend_limit = &lend5;
	g4.gpus = 1;
	q4.pool = "p4";
	q4.guarantee = &g4;
	q4.sharing = "dont-lend";
	ex.quotas = qs;
	ex.n_quotas = 2;

	assert_int_equal(parse(argv, ARGC(argv), &t), 0);
	cmd_team_request(&t, false, &ex, &r);
	assert_false(r.req.create);
	assert_int_equal(r.req.n_fields, 1);
	assert_true(has_field(&r, "quota.guarantee"));
	assert_int_equal(r.req.team->weight, 7);
	assert_string_equal(r.req.team->preempt_own, "lower-priority");
	assert_int_equal(r.req.team->n_members, 1);
	assert_string_equal(r.req.team->default_class, "training");
	assert_int_equal(r.req.team->n_quotas, 3);

	q = quota(&r, "p5");
	assert_int_equal(q->guarantee->gpus, 8);
	assert_int_equal(q->guarantee->cpus, 32);
	assert_int_equal(q->guarantee->mem, 1000);
	assert_string_equal(q->sharing, "lend");
	assert_int_equal(q->borrow_limit_pct, 30);
	assert_true(q->has_lend_limit);
	assert_int_equal(q->lend_limit->gpus, 2);
	assert_ptr_not_equal(q->guarantee, &g5);
	q = quota(&r, "p4");
	assert_int_equal(q->guarantee->gpus, 1);
	assert_string_equal(q->sharing, "dont-lend");
	q = quota(&r, "fresh");
	assert_int_equal(q->guarantee->gpus, 2);
	assert_string_equal(q->sharing, TEAM_DEFAULT_SHARING);
	assert_int_equal(q->borrow_limit_pct, TEAM_DEFAULT_BORROW_PCT);

	/* The existing team is untouched. */
	assert_int_equal(g5.cpus, 64);
	assert_int_equal(ex.n_quotas, 2);
	cmd_team_request_release(&r);
	cmd_team_release(&t);
}

static void test_members_clear(void **state)
{
	char *argv[] = {"set", "team1", "--members", "", NULL};
	struct cmd_team t;
	struct cmd_team_request r;

	assert_int_equal(parse(argv, ARGC(argv), &t), 0);
	cmd_team_request(&t, false, NULL, &r);
	assert_true(has_field(&r, "members"));
	assert_int_equal(r.req.team->n_members, 0);
	assert_int_equal(r.req.team->n_quotas, 0);
	cmd_team_request_release(&r);
	cmd_team_release(&t);
}

static void test_admins_and_groups(void **state)
{
	char *argv[] = {"set", "team1", "--members", "alice,@ml", "--admins", "@ml-leads,lena",
			NULL};
	char *bad1[] = {"set", "team1", "--members", "@", NULL};
	char *bad2[] = {"set", "team1", "--admins", "@-x", NULL};
	char *bad3[] = {"set", "team1", "--admins", "a", "--admins", "b", NULL};
	char *kept[] = {"@old"};
	Hpq__Team ex = HPQ__TEAM__INIT;
	struct cmd_team t;
	struct cmd_team_request r;

	assert_int_equal(parse(argv, ARGC(argv), &t), 0);
	assert_int_equal(t.given, TEAM_F_MEMBERS | TEAM_F_ADMINS);
	cmd_team_request(&t, false, NULL, &r);
	assert_int_equal(r.req.n_fields, 2);
	assert_true(has_field(&r, "admins"));
	assert_string_equal(r.req.team->members[1], "@ml");
	assert_int_equal(r.req.team->n_admins, 2);
	assert_string_equal(r.req.team->admins[0], "@ml-leads");
	cmd_team_request_release(&r);
	cmd_team_release(&t);

	/* set --members keeps the admins the daemon has. */
	ex.name = "team1";
	ex.admins = kept;
	ex.n_admins = 1;
	assert_int_equal(parse((char *[]){"set", "team1", "--members", "bob", NULL}, 4, &t), 0);
	cmd_team_request(&t, false, &ex, &r);
	assert_false(has_field(&r, "admins"));
	assert_string_equal(r.req.team->admins[0], "@old");
	cmd_team_request_release(&r);
	cmd_team_release(&t);

	assert_int_equal(parse(bad1, ARGC(bad1), &t), CLI_USAGE);
	assert_int_equal(parse(bad2, ARGC(bad2), &t), CLI_USAGE);
	assert_int_equal(parse(bad3, ARGC(bad3), &t), CLI_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_groups),   cmocka_unit_test(test_default_pool),
		cmocka_unit_test(test_limits),       cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_set_merge),    cmocka_unit_test(test_members_clear),
		cmocka_unit_test(test_admins_and_groups),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
