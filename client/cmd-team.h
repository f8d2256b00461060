/*
 * cmd-team.h: the parsed form of `hpq team add|set` and the request built
 * from it, exposed for the unit tests.
 *
 * Options that describe a pool's quota (--gpus --cpus --mem --sharing
 * --borrow-limit --borrow-limit-abs --lend-limit) belong to the --pool
 * group they follow, or to pool "default" before any --pool. Team-wide
 * options (--weight --preempt-own --members --admins --default-class) may appear
 * anywhere.
 *
 * The request carries the team as it should be afterwards and `fields`
 * naming what the command line gave ("weight", "quota.guarantee", ...).
 * For `set`, quotas are merged into the team's current ones (fetched
 * first), so a resource or pool the command did not mention keeps its
 * value whether the daemon applies only the named fields or whole quotas.
 */
#ifndef HPQ_CMD_TEAM_H
#define HPQ_CMD_TEAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

/* Defaults of a new pool quota (docs/design.md §4, "Admission"): lend and borrow, borrow up to
 * 50% of the guarantee, lend all of the unused guarantee. */
#define TEAM_DEFAULT_SHARING "lend-and-borrow"
#define TEAM_DEFAULT_BORROW_PCT 50
#define TEAM_MAX_BORROW_PCT 10000
#define TEAM_MAX_WEIGHT 100

/* What one --pool group gave. */
enum {
	TEAM_Q_GPUS = 1 << 0,
	TEAM_Q_CPUS = 1 << 1,
	TEAM_Q_MEM = 1 << 2,
	TEAM_Q_SHARING = 1 << 3,
	TEAM_Q_BORROW_PCT = 1 << 4,
	TEAM_Q_BORROW_ABS = 1 << 5,
	TEAM_Q_LEND = 1 << 6,
};

/* What the team-wide options gave. */
enum {
	TEAM_F_WEIGHT = 1 << 0,
	TEAM_F_PREEMPT_OWN = 1 << 1,
	TEAM_F_MEMBERS = 1 << 2,
	TEAM_F_DEFAULT_CLASS = 1 << 3,
	TEAM_F_ADMINS = 1 << 4,
};

struct cmd_team_pool {
	const char *pool;
	unsigned given; /* TEAM_Q_* */
	Hpq__Resources guarantee;
	const char *sharing;
	uint32_t borrow_pct;
	bool has_borrow_abs; /* --borrow-limit-abs none: false */
	Hpq__Resources borrow_abs;
	bool has_lend;       /* --lend-limit all: false */
	Hpq__Resources lend;
};

struct cmd_team {
	const char *name;
	unsigned given; /* TEAM_F_* */
	uint32_t weight;
	const char *preempt_own;
	char **members; /* owned: users and @groups */
	size_t n_members;
	char **admins;  /* owned: users and @groups */
	size_t n_admins;
	const char *default_class;
	struct cmd_team_pool *pools; /* owned */
	size_t n_pools;
};

/* Parses `team add|set NAME [options]` (argv[0] is "add" or "set").
 * Returns 0 and fills *ret (release with cmd_team_release), CLI_DONE
 * after --help, or CLI_USAGE after printing why not. */
int cmd_team_parse(struct cli *cli, const struct cmd_entry *e, int argc, char **argv,
		   struct cmd_team *ret);
void cmd_team_release(struct cmd_team *t);

/* Parses a limit vector: "gpus=N,cpus=N,mem=SIZE" (any of them; those not
 * named and "unlimited" values are not limited) or "unlimited". Returns 0
 * or HPQ_EINVAL. */
int cmd_team_parse_limit(const char *s, Hpq__Resources *ret);

struct cmd_team_request {
	Hpq__TeamSetRequest req;
	Hpq__Team team;
	Hpq__PoolQuota *quotas;   /* n_quotas */
	Hpq__PoolQuota **quota_ptrs;
	Hpq__Resources *res;      /* 3 per quota: guarantee, borrow_abs, lend */
	char *fields[16];
};

/* Builds the TeamSetRequest for t, merging into existing (the team as the
 * daemon has it) when not NULL. The request borrows strings from t and
 * existing; release it before them. */
void cmd_team_request(const struct cmd_team *t, bool create, const Hpq__Team *existing,
		      struct cmd_team_request *ret);
void cmd_team_request_release(struct cmd_team_request *r);

#endif
