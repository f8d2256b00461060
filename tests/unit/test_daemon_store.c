/*
 * test_daemon_store.c: the daemon's durable store (daemon/store*.c) with the
 * real state module on top, on temporary files:
 *
 *   - a new database gets the schema and the defaults of a new cluster;
 *   - what the state records survives close and reopen, including a task
 *     that was RUNNING (adopted by the dispatcher on load);
 *   - completions run in the order they were registered, only after their
 *     rows are visible to another connection (i.e. committed), and a
 *     history read sees everything recorded before it;
 *   - the WAL is checkpointed beside the commits, by a thread of its own
 *     that the storage thread completes, and starts over;
 *   - a commit that fails answers nothing: the store is degraded, reads
 *     still answer, and a retry commits what waited, in order, once the
 *     database takes it; a stop fails what still waits; what a RunTask
 *     reads sees the rows of its own transaction and waits for their commit;
 *   - the events and usage reads filter, order and sum as store.h says,
 *     pruning keeps the newest event, and a read that fails by itself
 *     leaves the store working;
 *   - a database written by schema version 1 (the exact v1 SQL, frozen
 *     below) opens with the current code, upgraded, data intact. Keep
 *     this test passing when migrations are added: never edit the copy;
 *   - so does one of version 3 (the one before team admins), every team
 *     kept, with no admins;
 *   - so does one of version 8 (the one before upgrade insights): its rows
 *     kept, the tables of deprecated use and backups added, a backup
 *     recorded from another connection read back with the database's size;
 *   - so does one of version 9 (the one before the autoscaler's nodes),
 *     and that table keeps its rows;
 *   - so does one of the version before plans, and a plan's row loads back;
 *   - a cancel of many pending tasks and a release of many held ones (one
 *     bulk change each): the reply's commit comes first, then every task's
 *     row and event, with the event ids the loop counted (an event
 *     recorded after them comes after them), and a read in the same
 *     transaction already sees them; a bulk change that a crash left
 *     half written is finished at the next load; a database of version 12
 *     (before bulk changes) upgrades and takes them;
 *   - one of version 15 gets arrays.dropped and arrays_gone_bad; an array
 *     from before has its dropped indices counted at the next start and
 *     recorded;
 *   - a database from a newer hpqd is refused, not damaged.
 */
#include <setjmp.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "array.h"
#include "error.h"
#include "hpq.pb-c.h"
#include "clock.h"
#include "control.h"
#include "daemon_fixture.h"
#include "plan.h"
#include "state.h"
#include "store.h"
#include "strmap.h"
#include "submit.h"
#include "trust.h"
#include "xalloc.h"

/* ---------------------------------------------------------------- fixtures */

/* The fixture's temp dir and loop; each test opens its own store and
 * state, so f->s stays NULL. */
static int setup(void **ts)
{
	struct fix *f = xcalloc(1, sizeof(*f));

	fix_init(f, "store", 0);
	*ts = f;
	return 0;
}

static struct store *open_store(struct fix *f)
{
	struct store *s = NULL;
	char err[256] = "";

	if (store_open(f->path, 0, &s, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	return s;
}

static void load(struct store *s, struct state *st)
{
	char err[256] = "";

	state_init(st, s);
	if (state_load(st, err, sizeof(err)) < 0)
		fail_msg("state_load: %s", err);
}

/* What store_read_run gave: entry nth of the environment, and how many. */
struct env_read {
	int done;
	size_t envc;
	char nth[128];
	size_t want;
	size_t script_len;
};

static void on_env(void *arg, int status, const struct store_run *r)
{
	struct env_read *e = arg;

	e->done = status == 0 && r ? 1 : -1;
	if (e->done == 1) {
		e->envc = r->envc;
		e->script_len = r->script ? r->script_len : 0;
		if (e->want < r->envc)
			snprintf(e->nth, sizeof(e->nth), "%s", r->env[e->want]);
	}
}

/* A pending task's environment stays in the store (task.c): reads it
 * there, on a started store. */
static void assert_env(struct fix *f, struct store *s, uint64_t id, size_t envc, size_t nth,
		       const char *want)
{
	struct env_read e = { .want = nth };

	store_read_run(s, id, 0, on_env, &e);
	store_submit(s);
	while (!e.done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(e.done, 1);
	assert_int_equal(e.envc, envc);
	assert_string_equal(e.nth, want);
}

static const struct actor admin = { .user = "root", .uid = 0, .gid = 0, .admin = true,
				    .known = true };
static const struct actor alice = { .user = "alice", .uid = 1000, .gid = 1000, .known = true };

static int submit(struct state *st, const char *team, const char *cls, uint32_t nodes,
		  uint32_t gpus, struct task **ret)
{
	static char *argv[] = { "/bin/train", "--epochs", "3" };
	static char *env[] = { "HOME=/home/alice", "LANG=C.UTF-8" };
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	struct state_err e;
	int r;

	res.gpus = gpus;
	res.cpus = 2;
	res.mem = 1024;
	spec.team = (char *)team;
	spec.class_ = (char *)cls;
	spec.nodes = nodes;
	spec.per_node = &res;
	spec.n_argv = 3;
	spec.argv = argv;
	spec.n_env = 2;
	spec.env = env;
	spec.cwd = "/home/alice/run";
	spec.time_limit_s = 3600;
	r = state_task_submit(st, &spec, &alice, ret, &e);
	if (r < 0)
		print_message("submit: %s\n", e.msg);
	return r;
}

/* ---------------------------------------------------------------- tests */

static void test_new_database_has_defaults(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct state st;
	struct team *def;

	load(s, &st);
	/* 2: usage table (daemon/usage.c); 3: node service columns (daemon/repair.c);
	 * 4: team admins (daemon/rights.c); 5: join tokens, node certificates
	 * (daemon/trust.c); 6: the batch workflow (arrays, scripts, dependencies);
	 * 7: environments in a table of their own (task_env); 8: the recipe a task was
	 * made from; 9: deprecated uses and backups (upgrade insights);
	 * 10: the autoscaler's nodes (daemon/autoscale.c); 11: training plans
	 * (daemon/plan.c); 12: the plan a task runs in; 13: changes of many
	 * tasks at once (task_bulk); 14: how pruned tasks ended (tasks_gone_bad);
	 * 15: the dependency an array's indices were submitted with; 16: how
	 * an array's indices ended when [tasks] retain deleted them;
	 * 17: what the deleted tasks counted (tasks_gone_counts) */
	assert_int_equal(store_schema_latest(), 17);
	assert_non_null(state_pool_find(&st, "default"));
	assert_int_equal(state_class_find(&st, "inference")->weight, 15);
	assert_false(state_class_find(&st, "inference")->preemptible);
	assert_int_equal(state_class_find(&st, "training")->weight, 10);
	assert_int_equal(state_class_find(&st, "fine-tuning")->weight, 5);
	assert_int_equal(state_class_find(&st, "data-processing")->weight, 1);
	assert_int_equal(state_class_find(&st, STATE_NO_CLASS)->weight, 0);
	def = state_team_find(&st, "default");
	assert_non_null(def);
	assert_int_equal(def->nmembers, 0);
	assert_int_equal(def->nquotas, 1);
	assert_true(def->quotas[0].q.has_borrow_abs);
	assert_true(def->quotas[0].q.borrow_abs.gpus >= 1000000);
	assert_true(hpq_res_is_zero(def->quotas[0].q.guarantee));
	state_release(&st);
	fix_close_store(f, s);
}

static void test_round_trip(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct state st;
	struct task *t1, *t2, *t;
	struct node *n;
	const struct sched_decision *decs;
	struct state_err e;
	size_t nd;
	static char *members[] = { "alice", "bob" };
	static char *admins[] = { "carol", "@ml-leads" };
	static char *team_fields[] = { "weight", "preempt_own", "members", "default_class",
				       "quotas", "admins" };
	static char *class_fields[] = { "weight", "preemptible" };
	Hpq__Team team = HPQ__TEAM__INIT;
	Hpq__PoolQuota pq = HPQ__POOL_QUOTA__INIT;
	Hpq__PoolQuota *pqs[] = { &pq };
	Hpq__Resources g = HPQ__RESOURCES__INIT;
	Hpq__TeamSetRequest tsr = HPQ__TEAM_SET_REQUEST__INIT;
	Hpq__PriorityClass pc = HPQ__PRIORITY_CLASS__INIT;
	Hpq__ClassSetRequest csr = HPQ__CLASS_SET_REQUEST__INIT;
	Hpq__Register reg = HPQ__REGISTER__INIT;
	Hpq__Resources cap = HPQ__RESOURCES__INIT;

	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);

	/* A team with members and a quota in a pool that does not exist yet. */
	g.gpus = 8;
	pq.pool = "gpu";
	pq.guarantee = &g;
	pq.sharing = "lend";
	pq.borrow_limit_pct = 100;
	team.name = "vision";
	team.weight = 3;
	team.preempt_own = "never";
	team.n_members = 2;
	team.members = members;
	team.n_admins = 2;
	team.admins = admins;
	team.default_class = "training";
	team.n_quotas = 1;
	team.quotas = pqs;
	tsr.team = &team;
	tsr.create = true;
	tsr.n_fields = 6;
	tsr.fields = team_fields;
	assert_int_equal(state_team_set(&st, &tsr, &admin, &e), 0);
	/* Only administrators change teams. */
	assert_int_equal(state_team_set(&st, &tsr, &alice, &e), HPQ_EPERM);

	pc.name = "urgent";
	pc.weight = 50;
	pc.preemptible = false;
	csr.class_ = &pc;
	csr.create = true;
	csr.n_fields = 2;
	csr.fields = class_fields;
	assert_int_equal(state_class_set(&st, &csr, &admin, &e), 0);

	/* A node in pool gpu, "connected" (state.c never dereferences conn). */
	cap.gpus = 8;
	cap.cpus = 64;
	cap.mem = 512 * 1024;
	reg.name = "g1";
	reg.pool = "gpu";
	reg.capacity = &cap;
	reg.address = "10.0.0.1";
	assert_int_equal(state_node_register(&st, &reg, "0.1.0", &n, &e),
			 0);

	assert_int_equal(submit(&st, "", "", 1, 0, &t1), 0);       /* alice's only team */
	assert_string_equal(t1->team, "vision");
	assert_string_equal(t1->cls, "training");                  /* the team's default */
	assert_string_equal(t1->pool, "default");
	/* Bad input changes nothing. */
	assert_int_equal(submit(&st, "nope", "", 1, 0, &t), HPQ_ENOTFOUND);
	assert_int_equal(submit(&st, "vision", "nope", 1, 0, &t), HPQ_ENOTFOUND);
	assert_int_equal(submit(&st, "vision", "", 1, 5000, &t), HPQ_EINVAL);
	assert_int_equal(st.ntasks, 1);

	/* t2 runs on g1: submitted to pool gpu, started by the dispatcher. */
	{
		Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
		Hpq__Resources res = HPQ__RESOURCES__INIT;
		char *argv[] = { "sleep", "100" };
		char *params[] = { "steps=10", "lr=0.1" };

		res.gpus = 4;
		spec.per_node = &res;
		spec.pool = "gpu";
		spec.recipe = "pretrain";     /* made from a recipe (schema version 7) */
		spec.recipe_version = "1.2";
		spec.n_recipe_params = 2;
		spec.recipe_params = params;
		spec.team = "vision";
		spec.class_ = "urgent";
		spec.n_argv = 2;
		spec.argv = argv;
		assert_int_equal(state_task_submit(&st, &spec, &alice, &t2, &e), 0);
	}
	decs = sched_cycle(st.sched, 1, &nd);
	assert_int_equal(nd, 1);
	assert_ptr_equal(state_task_of(decs[0].task), t2);
	state_task_start(&st, t2);
	assert_int_equal(state_checkpoint_add(&st, t2, 1, 42, "/ckpt/42", &alice, &e), 0);
	assert_int_equal(state_checkpoint_add(&st, t2, 2, 43, "/ckpt/43", &alice, &e),
			 HPQ_ESTATE);
	/* An administrator drains g1, with its service columns (schema version 3). */
	n->admin_hold = true;
	free(n->repair_action);
	n->repair_action = strdup("replace");
	state_node_set_service(&st, n, "draining", "root", "swap the PSU");
	fix_commit_store(f, s);
	state_release(&st);
	fix_close_store(f, s);

	/* Everything is back after a reopen. */
	s = open_store(f);
	load(s, &st);
	assert_int_equal(st.ntasks, 2);
	assert_int_equal(st.next_id, 3);
	t = state_task_find(&st, 1);
	assert_non_null(t);
	assert_string_equal(t->user, "alice");
	assert_int_equal(t->uid, 1000);
	assert_string_equal(t->cwd, "/home/alice/run");
	assert_int_equal(t->argc, 3);
	assert_string_equal(t->argv[1], "--epochs");
	assert_null(t->env);             /* it stays in the store: assert_env below */
	assert_int_equal(t->time_limit_s, 3600);
	assert_int_equal(t->state, TASK_PENDING);
	assert_int_equal(t->st.state, SCHED_PENDING);
	assert_string_equal(t->recipe, "");
	assert_int_equal(t->n_recipe_params, 0);

	t = state_task_find(&st, 2);
	assert_non_null(t);
	assert_int_equal(t->state, TASK_RUNNING);
	assert_int_equal(t->st.state, SCHED_RUNNING);     /* adopted on g1 */
	assert_int_equal(t->attempts, 1);
	assert_int_equal(t->n_node_names, 1);
	assert_string_equal(t->node_names[0], "g1");
	assert_true(t->ckpt.has);
	assert_int_equal(t->ckpt.step, 42);
	assert_string_equal(t->ckpt.path, "/ckpt/42");
	assert_false(dlist_empty(&st.running));
	assert_string_equal(t->recipe, "pretrain");
	assert_string_equal(t->recipe_version, "1.2");
	assert_int_equal(t->n_recipe_params, 2);
	assert_string_equal(t->recipe_params[1], "lr=0.1");

	{
		struct team *v = state_team_find(&st, "vision");
		struct pool *gpu = state_pool_find(&st, "gpu");
		struct team *def = state_team_find(&st, "default");

		assert_non_null(v);
		assert_non_null(gpu);
		assert_int_equal(v->weight, 3);
		assert_false(v->preempt_own_lower);
		assert_int_equal(v->nmembers, 2);
		assert_string_equal(v->members[1], "bob");
		assert_int_equal(v->nadmins, 2);
		assert_string_equal(v->admins[1], "@ml-leads");
		assert_string_equal(v->default_class, "training");
		assert_int_equal(v->nquotas, 1);
		assert_int_equal(v->quotas[0].pool, gpu->id);
		assert_int_equal(v->quotas[0].q.guarantee.gpus, 8);
		assert_int_equal(v->quotas[0].q.sharing, SCHED_LEND);
		assert_int_equal(v->quotas[0].q.borrow_limit_pct, 100);
		assert_int_equal(v->active, 2);
		/* The new pool gave the default team its unlimited borrowing there too. */
		assert_int_equal(def->nquotas, 2);
	}
	assert_int_equal(state_class_find(&st, "urgent")->weight, 50);
	n = state_node_find(&st, "g1");
	assert_non_null(n);
	assert_string_equal(n->address, "10.0.0.1");
	assert_int_equal(n->capacity.gpus, 8);
	assert_false(n->connected);
	assert_string_equal(n->service, "draining");
	assert_string_equal(n->service_by, "root");
	assert_string_equal(n->reason, "swap the PSU");
	assert_true(n->service_since_ms > 0);
	assert_true(n->admin_hold);
	assert_string_equal(n->repair_action, "replace");
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	assert_env(f, s, 1, 2, 1, "LANG=C.UTF-8");
	state_release(&st);
	fix_close_store(f, s);
}

struct order {
	struct fix *f;
	int next;
	int seen[8];
	sqlite3 *reader;
};

struct order_item {
	struct order *o;
	int index;
	char msg[32];
};

static int count_events(sqlite3 *db, const char *msg)
{
	sqlite3_stmt *q;
	int n = -1;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM events WHERE message = ?",
					    -1, &q, NULL), SQLITE_OK);
	sqlite3_bind_text(q, 1, msg, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return n;
}

static void on_ordered(void *arg, int status)
{
	struct order_item *it = arg;

	assert_int_equal(status, 0);
	/* In order, and already visible to another connection: committed. */
	assert_int_equal(it->index, it->o->next);
	assert_int_equal(count_events(it->o->reader, it->msg), 1);
	it->o->seen[it->o->next++] = it->index;
}

static void on_history(void *arg, int status, const struct store_history *h)
{
	struct order *o = arg;

	assert_int_equal(status, 0);
	/* Sees the six events recorded before it, oldest first. */
	assert_int_equal(h->nevents, 6);
	assert_string_equal(h->events[0].message, "e0");
	assert_string_equal(h->events[5].message, "e5");
	assert_int_equal(h->nckpts, 1);
	assert_int_equal(h->ckpts[0].step, 7);
	assert_int_equal(o->next, 6);
	o->seen[o->next++] = 100;
}

static void test_group_commit_order(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct order o = { .f = f };
	struct order_item items[6];

	assert_int_equal(sqlite3_open_v2(f->path, &o.reader, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	for (int i = 0; i < 6; i++) {
		struct store_event ev = { .time_ms = i, .kind = "test", .task_id = 7,
					  .message = items[i].msg };

		items[i].o = &o;
		items[i].index = i;
		snprintf(items[i].msg, sizeof(items[i].msg), "e%d", i);
		store_event_add(s, &ev);
		store_after_commit(s, on_ordered, &items[i]);
		/* Batches of one, two and three registrations. */
		if (i == 0 || i == 2)
			store_submit(s);
	}
	store_checkpoint_add(s, 7, 1, 7, "/c/7", 1000);
	store_read_history(s, 7, 0, on_history, &o);
	store_submit(s);
	assert_true(store_inflight(s) >= 1);
	while (o.next < 7)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(store_inflight(s), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(o.seen[i], i);
	assert_int_equal(o.seen[6], 100);
	sqlite3_close(o.reader);
	fix_close_store(f, s);
}

/* What store_close commits itself: rows recorded but never submitted. */
static void test_close_commits_the_rest(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct store_event ev = { .time_ms = 1, .kind = "test", .message = "last words" };
	sqlite3 *db;
	int done = 0;

	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	store_event_add(s, &ev);
	store_after_commit(s, fix_on_commit, &done);
	fix_close_store(f, s);
	assert_int_equal(done, 1);
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(count_events(db, "last words"), 1);
	sqlite3_close(db);
}

/*
 * The WAL's checkpoints run beside the commits (store-checkpoint.c): 12 MiB
 * of events in 240 commits take the WAL past its checkpoint size a few
 * times over. Passes ran in the background, and the storage thread ended
 * them after a commit, so the WAL started over from its beginning and
 * ends far shorter than what went through it; every row is there.
 */
static void test_checkpoints_beside_commits(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct store_checkpoints c;
	char *wal, msg[3001];
	struct stat sb;
	sqlite3 *db;
	sqlite3_stmt *q;

	xasprintf(&wal, "%s-wal", f->path);
	memset(msg, 'w', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	for (int i = 0; i < 240; i++) {
		for (int k = 0; k < 16; k++) {
			struct store_event ev = { .time_ms = i, .kind = "fill", .message = msg };

			store_event_add(s, &ev);
		}
		fix_commit_store(f, s);
	}
	store_checkpoint_counts(s, &c);
	assert_true(c.background >= 1);
	assert_true(c.finished >= 1);
	assert_int_equal(stat(wal, &sb), 0);
	assert_true(sb.st_size < 8 << 20);
	fix_close_store(f, s);
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM events WHERE kind = 'fill'",
					    -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 240 * 16);
	sqlite3_finalize(q);
	sqlite3_close(db);
	free(wal);
}

/* ---------------------------------------------------------------- reads */

struct read_result {
	bool done;
	char got[256];          /* what the callback saw, as text */
};

/* Submits what is recorded and waits for r's answer. */
static void wait_read(struct fix *f, struct store *s, struct read_result *r)
{
	store_submit(s);
	while (!r->done)
		uv_run(&f->loop, UV_RUN_ONCE);
}

static void on_events(void *arg, int status, const struct store_event_list *l)
{
	struct read_result *r = arg;
	size_t len = 0;

	r->done = true;
	assert_int_equal(status, 0);
	assert_null(l->error);
	for (size_t i = 0; i < l->n; i++)
		len += (size_t)snprintf(r->got + len, sizeof(r->got) - len, "%s%s",
					i ? " " : "", l->v[i].message);
	if (l->truncated)
		snprintf(r->got + len, sizeof(r->got) - len, " +");
}

static void on_marks(void *arg, int status, const struct store_event_marks *m)
{
	struct read_result *r = arg;
	size_t len;

	r->done = true;
	assert_int_equal(status, 0);
	assert_null(m->error);
	len = (size_t)snprintf(r->got, sizeof(r->got), "max %llu:",
			       (unsigned long long)m->max_id);
	for (size_t i = 0; i < m->n; i++)
		len += (size_t)snprintf(r->got + len, sizeof(r->got) - len, " %llu@%lld",
					(unsigned long long)m->v[i].task_id,
					(long long)m->v[i].time_ms);
}

static void on_prune(void *arg, int status, const struct store_prune *p)
{
	struct read_result *r = arg;

	r->done = true;
	assert_int_equal(status, 0);
	assert_null(p->error);
	snprintf(r->got, sizeof(r->got), "%lld", (long long)p->deleted);
}

static void test_event_reads(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	static const struct store_event evs[] = {
		{ .time_ms = 100, .kind = "submit", .task_id = 1, .team = "a", .message = "e1" },
		{ .time_ms = 200, .kind = "preempt", .task_id = 1, .team = "a", .message = "e2" },
		{ .time_ms = 300, .kind = "node", .node = "n1", .message = "e3" },
		{ .time_ms = 250, .kind = "preempt", .task_id = 2, .team = "b", .message = "e4" },
		{ .time_ms = 400, .kind = "end", .task_id = 1, .team = "a", .message = "e5" },
	};
	struct read_result r;

	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		store_event_add(s, &evs[i]);

	/* The newest of a team, oldest first; more matched than the limit. */
	r = (struct read_result){ 0 };
	store_events_read(s, &(struct store_event_filter){ .team = "a", .limit = 2 }, on_events,
			  &r);
	wait_read(f, s, &r);
	assert_string_equal(r.got, "e2 e5 +");
	r = (struct read_result){ 0 };
	store_events_read(s, &(struct store_event_filter){ .since_ms = 250, .limit = 10 },
			  on_events, &r);
	wait_read(f, s, &r);
	assert_string_equal(r.got, "e3 e4 e5");
	r = (struct read_result){ 0 };
	store_events_read(s, &(struct store_event_filter){ .task_id = 1, .node = "n1",
							    .limit = 10 }, on_events, &r);
	wait_read(f, s, &r);
	assert_string_equal(r.got, "");

	/* Marks come by time, not by id. */
	r = (struct read_result){ 0 };
	store_events_marks(s, "preempt", 150, on_marks, &r);
	wait_read(f, s, &r);
	assert_string_equal(r.got, "max 5: 1@200 2@250");

	/* At most max_rows, the oldest first, and never the newest row. */
	r = (struct read_result){ 0 };
	store_events_prune(s, 1000, 2, on_prune, &r);
	wait_read(f, s, &r);
	assert_string_equal(r.got, "2");
	r = (struct read_result){ 0 };
	store_events_prune(s, 1000, 100, on_prune, &r);
	wait_read(f, s, &r);
	assert_string_equal(r.got, "2");
	r = (struct read_result){ 0 };
	store_events_read(s, &(struct store_event_filter){ .limit = 10 }, on_events, &r);
	wait_read(f, s, &r);
	assert_string_equal(r.got, "e5");
	fix_close_store(f, s);
}

static void on_usage(void *arg, int status, const struct store_usage_list *l)
{
	struct read_result *r = arg;
	size_t len = 0;

	r->done = true;
	assert_int_equal(status, 0);
	if (l->error) {
		snprintf(r->got, sizeof(r->got), "error");
		return;
	}
	for (size_t i = 0; i < l->n; i++)
		len += (size_t)snprintf(r->got + len, sizeof(r->got) - len,
					"%s%s/%s %lld %lld %lld %lld", i ? ", " : "", l->v[i].key,
					l->v[i].pool, (long long)l->v[i].used_ms,
					(long long)l->v[i].within_ms,
					(long long)l->v[i].borrowed_ms, (long long)l->v[i].lent_ms);
}

static void test_usage_rows(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct store_event ev = { .time_ms = 1, .kind = "test", .message = "still fine" };
	/* A bucket adds up whatever is written to it, as often as it is. */
	static const struct store_usage_row rows[] = {
		{ 10, "team", "vision", "gpu", 100, 60, 40, 0 },
		{ 10, "team", "vision", "gpu", 50, 50, 0, 5 },
		{ 11, "team", "vision", "gpu", 1, 1, 0, 0 },
		{ 11, "team", "nlp", "gpu", 7, 7, 0, 0 },
		{ 11, "user", "alice", "gpu", 9, 0, 0, 0 },
		{ 9, "team", "nlp", "gpu", 1000, 0, 0, 0 },
	};
	struct read_result r;
	sqlite3 *db;

	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		store_usage_add(s, &rows[i]);

	r = (struct read_result){ 0 };
	store_usage_read(s, "team", 10, on_usage, &r);
	wait_read(f, s, &r);
	assert_string_equal(r.got, "nlp/gpu 7 7 0 0, vision/gpu 151 111 40 5");

	/* A read that fails by itself answers with its error; the store goes on. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "ALTER TABLE usage RENAME TO gone", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	r = (struct read_result){ 0 };
	store_usage_read(s, "team", 0, on_usage, &r);
	wait_read(f, s, &r);
	assert_string_equal(r.got, "error");
	store_event_add(s, &ev);
	fix_commit_store(f, s);
	fix_close_store(f, s);
}

/* ---------------------------------------------------------------- failed commits */

static void on_change(void *arg)
{
	(*(int *)arg)++;
}

/* Every completion's status and its place in the order they ran. */
struct seen {
	int order[4];
	int status[4];
	int n;
};

struct seen_one {
	struct seen *seen;
	int which;
};

static void on_seen(void *arg, int status)
{
	struct seen_one *o = arg;

	o->seen->status[o->which] = status == 0 ? 1 : -1;
	o->seen->order[o->seen->n++] = o->which;
}

/* Renames a table under the daemon's feet, from another connection. */
static void rename_table(struct fix *f, const char *from, const char *to)
{
	char sql[128];
	sqlite3 *db;

	snprintf(sql, sizeof(sql), "ALTER TABLE %s RENAME TO %s", from, to);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/*
 * A commit that fails loses nothing and answers nothing: the store turns
 * degraded (told once), its rows and their completions wait, reads still
 * answer, what is recorded later waits behind, and the watch's retry
 * commits it all in order once the database takes it again.
 */
static void test_failed_commit_waits(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct store_event ev = { .time_ms = 1, .kind = "test", .message = "fine" };
	struct store_event kept = { .time_ms = 2, .kind = "test", .message = "kept" };
	struct seen seen = { { 0 }, { 0 }, 0 };
	struct seen_one one[3] = { { &seen, 0 }, { &seen, 1 }, { &seen, 2 } };
	struct store_health h;
	struct read_result r;
	int changes = 0;
	char msg[512];
	sqlite3 *db;

	assert_int_equal(store_start(s, &f->loop, on_change, &changes), 0);
	store_event_add(s, &ev);
	store_after_commit(s, on_seen, &one[0]);
	store_submit(s);
	while (seen.n < 1)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(seen.status[0], 1);
	assert_false(store_degraded(s));
	assert_int_equal(store_check_writable(s, msg, sizeof(msg)), 0);

	rename_table(f, "events", "away");
	store_event_add(s, &kept);
	store_after_commit(s, on_seen, &one[1]);
	store_submit(s);
	while (!changes)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(seen.n, 1);           /* not answered, either way */
	assert_true(store_degraded(s));
	store_health(s, &h);
	assert_int_equal(h.state, STORE_FAILING);
	assert_non_null(strstr(h.problem, "state store failing: "));
	assert_non_null(strstr(h.problem, "events"));
	assert_true(h.waiting_rows >= 1);
	assert_true(h.since_ms > 0);
	assert_int_equal(store_check_writable(s, msg, sizeof(msg)), HPQ_ESTORAGE);
	assert_non_null(strstr(msg, "state store failing: "));

	/* Reads answer meanwhile, from what is committed. */
	r = (struct read_result){ 0 };
	store_usage_read(s, "team", 0, on_usage, &r);
	wait_read(f, s, &r);
	assert_string_equal(r.got, "");

	/* What is recorded meanwhile waits behind. */
	store_pool_put(s, "later");
	store_after_commit(s, on_seen, &one[2]);
	store_submit(s);

	/* The table is back: the retry commits both, in order, and the store
	 * is writable again (told once more). */
	rename_table(f, "away", "events");
	while (seen.n < 3)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(seen.order[1], 1);
	assert_int_equal(seen.order[2], 2);
	assert_int_equal(seen.status[1], 1);
	assert_int_equal(seen.status[2], 1);
	assert_false(store_degraded(s));
	assert_int_equal(changes, 2);
	store_health(s, &h);
	assert_int_equal(h.waiting_rows, 0);
	assert_string_equal(h.problem, "");
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(count_events(db, "kept"), 1);
	assert_int_equal(sqlite3_exec(db, "SELECT 1 FROM pools WHERE name = 'later'", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);
	fix_close_store(f, s);
}

/* A stop does not wait for room: what waits gets one last try, and fails. */
static void test_stop_fails_what_waits(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct store_event ev = { .time_ms = 1, .kind = "test", .message = "lost" };
	struct seen seen = { { 0 }, { 0 }, 0 };
	struct seen_one one[2] = { { &seen, 0 }, { &seen, 1 } };
	int changes = 0;

	assert_int_equal(store_start(s, &f->loop, on_change, &changes), 0);
	fix_commit_store(f, s);
	rename_table(f, "events", "away");
	store_event_add(s, &ev);
	store_after_commit(s, on_seen, &one[0]);
	store_submit(s);
	while (!changes)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(seen.n, 0);
	store_finish(s);
	store_after_commit(s, on_seen, &one[1]);
	store_submit(s);
	while (seen.n < 2)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(seen.status[0], -1);
	assert_int_equal(seen.status[1], -1);
	fix_close_store(f, s);
}

/*
 * What a RunTask needs is read in the START's own transaction, so it sees
 * a task submitted in the same one, and is handed over only once that
 * commits: not from what was committed before while the commit waits,
 * which has neither the task's environment nor its script.
 */
static void test_run_read_waits_for_its_rows(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	static char *argv[] = { "/bin/train" };
	static char *env[] = { "HOME=/root", "LANG=C.UTF-8" };
	static const char script[] = "#!/bin/sh\ntrain\n";
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	struct env_read e = { .want = 1 };
	struct state_err err;
	struct state st;
	struct task *t;
	int changes = 0;

	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, on_change, &changes), 0);
	fix_commit_store(f, s);
	rename_table(f, "events", "away");    /* the submit's event fails the commit */
	res.cpus = 1;
	spec.per_node = &res;
	spec.n_argv = 1;
	spec.argv = argv;
	spec.n_env = 2;
	spec.env = env;
	spec.script.data = (uint8_t *)script;
	spec.script.len = sizeof(script) - 1;
	assert_int_equal(state_task_submit(&st, &spec, &admin, &t, &err), 0);
	store_read_run(s, t->st.id, t->st.id, on_env, &e);
	store_submit(s);
	while (!changes)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_true(store_degraded(s));
	assert_int_equal(e.done, 0);          /* nothing before its rows are durable */

	rename_table(f, "away", "events");
	while (!e.done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(e.done, 1);
	assert_int_equal(e.envc, 2);
	assert_string_equal(e.nth, "LANG=C.UTF-8");
	assert_int_equal(e.script_len, sizeof(script) - 1);
	state_release(&st);
	fix_close_store(f, s);
}

/*
 * Schema version 1, verbatim. Frozen: it is what hpqd 0.1 wrote, and this
 * test proves such a file still opens. Do not edit it when the schema
 * changes; add the new version's expectations below instead.
 */
static const char schema_v1[] =
	"CREATE TABLE meta (\n"
	"  key TEXT PRIMARY KEY,\n"
	"  value TEXT NOT NULL\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE policy (\n"
	"  key TEXT PRIMARY KEY,\n"
	"  value TEXT NOT NULL\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE pools (\n"
	"  name TEXT PRIMARY KEY\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE classes (\n"
	"  name TEXT PRIMARY KEY,\n"
	"  weight INTEGER NOT NULL,\n"
	"  preemptible INTEGER NOT NULL\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE teams (\n"
	"  name TEXT PRIMARY KEY,\n"
	"  weight INTEGER NOT NULL DEFAULT 1,\n"
	"  preempt_own TEXT NOT NULL DEFAULT 'lower-priority',\n"
	"  default_class TEXT NOT NULL DEFAULT '',\n"
	"  members TEXT NOT NULL DEFAULT ''\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE team_quotas (\n"
	"  team TEXT NOT NULL,\n"
	"  pool TEXT NOT NULL,\n"
	"  guarantee_gpus INTEGER NOT NULL DEFAULT 0,\n"
	"  guarantee_cpus INTEGER NOT NULL DEFAULT 0,\n"
	"  guarantee_mem INTEGER NOT NULL DEFAULT 0,\n"
	"  sharing TEXT NOT NULL DEFAULT 'lend-and-borrow',\n"
	"  borrow_limit_pct INTEGER NOT NULL DEFAULT 50,\n"
	"  borrow_abs_gpus INTEGER,\n"
	"  borrow_abs_cpus INTEGER,\n"
	"  borrow_abs_mem INTEGER,\n"
	"  lend_gpus INTEGER,\n"
	"  lend_cpus INTEGER,\n"
	"  lend_mem INTEGER,\n"
	"  PRIMARY KEY (team, pool)\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE nodes (\n"
	"  name TEXT PRIMARY KEY,\n"
	"  pool TEXT NOT NULL,\n"
	"  gpus INTEGER NOT NULL,\n"
	"  cpus INTEGER NOT NULL,\n"
	"  mem INTEGER NOT NULL,\n"
	"  labels BLOB NOT NULL DEFAULT x'',\n"
	"  address TEXT NOT NULL DEFAULT '',\n"
	"  service TEXT NOT NULL DEFAULT 'active',\n"
	"  health TEXT NOT NULL DEFAULT 'healthy',\n"
	"  reason TEXT NOT NULL DEFAULT '',\n"
	"  last_seen INTEGER NOT NULL DEFAULT 0\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE tasks (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  name TEXT NOT NULL,\n"
	"  team TEXT NOT NULL,\n"
	"  user TEXT NOT NULL,\n"
	"  uid INTEGER NOT NULL,\n"
	"  gid INTEGER NOT NULL,\n"
	"  class TEXT NOT NULL,\n"
	"  pool TEXT NOT NULL,\n"
	"  state TEXT NOT NULL,\n"
	"  reason TEXT NOT NULL DEFAULT '',\n"
	"  nnodes INTEGER NOT NULL,\n"
	"  gpus INTEGER NOT NULL,\n"
	"  cpus INTEGER NOT NULL,\n"
	"  mem INTEGER NOT NULL,\n"
	"  node_names TEXT NOT NULL DEFAULT '',\n"
	"  nodes_done TEXT NOT NULL DEFAULT '',\n"
	"  attempts INTEGER NOT NULL DEFAULT 0,\n"
	"  submit_time INTEGER NOT NULL,\n"
	"  start_time INTEGER NOT NULL DEFAULT 0,\n"
	"  end_time INTEGER NOT NULL DEFAULT 0,\n"
	"  exit_code INTEGER,\n"
	"  time_limit_s INTEGER NOT NULL DEFAULT 0,\n"
	"  preempt_signal INTEGER NOT NULL DEFAULT 15,\n"
	"  grace_s INTEGER NOT NULL DEFAULT 0,\n"
	"  checkpoint_dir TEXT NOT NULL DEFAULT '',\n"
	"  cwd TEXT NOT NULL DEFAULT '',\n"
	"  argv BLOB NOT NULL,\n"
	"  env BLOB NOT NULL DEFAULT x'',\n"
	"  cancel_requested INTEGER NOT NULL DEFAULT 0\n"
	");\n"
	"CREATE INDEX tasks_state ON tasks (state);\n"
	"CREATE TABLE checkpoints (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  task_id INTEGER NOT NULL,\n"
	"  attempt INTEGER NOT NULL,\n"
	"  step INTEGER NOT NULL,\n"
	"  path TEXT NOT NULL,\n"
	"  time INTEGER NOT NULL\n"
	");\n"
	"CREATE INDEX checkpoints_task ON checkpoints (task_id, id);\n"
	"CREATE TABLE events (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  time INTEGER NOT NULL,\n"
	"  kind TEXT NOT NULL,\n"
	"  task_id INTEGER,\n"
	"  node TEXT NOT NULL DEFAULT '',\n"
	"  team TEXT NOT NULL DEFAULT '',\n"
	"  actor TEXT NOT NULL DEFAULT '',\n"
	"  message TEXT NOT NULL DEFAULT ''\n"
	");\n"
	"CREATE INDEX events_task ON events (task_id, id);\n"
	"CREATE INDEX events_time ON events (time);\n"
	"INSERT INTO pools (name) VALUES ('default');\n"
	"INSERT INTO classes (name, weight, preemptible) VALUES\n"
	"  ('inference', 15, 0), ('training', 10, 1), ('fine-tuning', 5, 1),\n"
	"  ('data-processing', 1, 1), ('-', 0, 1);\n"
	"INSERT INTO teams (name, weight, preempt_own, default_class, members)\n"
	"  VALUES ('default', 1, 'lower-priority', '', '');\n"
	"INSERT INTO team_quotas (team, pool, sharing, borrow_limit_pct,\n"
	"  borrow_abs_gpus, borrow_abs_cpus, borrow_abs_mem)\n"
	"  VALUES ('default', 'default', 'lend-and-borrow', 0,\n"
	"  1000000000, 1000000000, 1125899906842624);\n"
	"INSERT INTO meta (key, value) VALUES ('created', CAST(strftime('%s', 'now') AS TEXT));\n";

/* A cluster's life in version 1: a team, a class, a node, tasks in three states. */
static const char rows_v1[] =
	"INSERT INTO pools (name) VALUES ('a100');\n"
	"INSERT INTO policy (key, value) VALUES ('idle-allocation', 'fcfs'), ('grace', '90s');\n"
	"INSERT INTO classes (name, weight, preemptible) VALUES ('urgent', 40, 0);\n"
	"INSERT INTO teams (name, weight, preempt_own, default_class, members)\n"
	"  VALUES ('nlp', 2, 'never', 'fine-tuning', 'carol,dave');\n"
	"INSERT INTO team_quotas (team, pool, guarantee_gpus, guarantee_cpus, guarantee_mem,\n"
	"  sharing, borrow_limit_pct, lend_gpus, lend_cpus, lend_mem)\n"
	"  VALUES ('nlp', 'a100', 16, 128, 1048576, 'lend-and-borrow', 25, 4, 32, 65536);\n"
	"INSERT INTO nodes (name, pool, gpus, cpus, mem, labels, address, last_seen)\n"
	"  VALUES ('a1', 'a100', 8, 96, 1048576, CAST('rack=3' || char(0) AS BLOB),\n"
	"  '10.1.0.1', 1700000000000);\n"
	"INSERT INTO tasks (id, name, team, user, uid, gid, class, pool, state, nnodes, gpus,\n"
	"  cpus, mem, submit_time, argv, env, cwd)\n"
	"  VALUES (7, 'prep', 'nlp', 'carol', 1001, 1001, 'fine-tuning', 'a100', 'PENDING', 1,\n"
	"  0, 4, 2048, 1700000000000, CAST('prep.sh' || char(0) AS BLOB),\n"
	"  CAST('A=1' || char(0) || 'B=2' || char(0) AS BLOB), '/srv/nlp');\n"
	"INSERT INTO tasks (id, name, team, user, uid, gid, class, pool, state, nnodes, gpus,\n"
	"  cpus, mem, node_names, nodes_done, attempts, submit_time, start_time, argv)\n"
	"  VALUES (8, 'train', 'nlp', 'dave', 1002, 1002, 'urgent', 'a100', 'RUNNING', 1, 8,\n"
	"  32, 65536, 'a1', '0', 2, 1700000001000, 1700000002000,\n"
	"  CAST('train' || char(0) || '--big' || char(0) AS BLOB));\n"
	"INSERT INTO tasks (id, name, team, user, uid, gid, class, pool, state, reason, nnodes,\n"
	"  gpus, cpus, mem, attempts, submit_time, end_time, exit_code, argv)\n"
	"  VALUES (9, 'eval', 'nlp', 'carol', 1001, 1001, 'fine-tuning', 'a100', 'FAILED',\n"
	"  'exit on a1', 1, 1, 1, 1, 1, 1700000000500, 1700000003000, 3,\n"
	"  CAST('eval' || char(0) AS BLOB));\n"
	"INSERT INTO checkpoints (task_id, attempt, step, path, time) VALUES\n"
	"  (8, 1, 100, '/ck/100', 1700000001500), (8, 2, 200, '/ck/200', 1700000002500);\n"
	"INSERT INTO events (time, kind, task_id, team, actor, message) VALUES\n"
	"  (1700000000000, 'submit', 7, 'nlp', 'carol', 'prep submitted');\n";

static void make_v1(const char *path)
{
	sqlite3 *db;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, schema_v1, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, rows_v1, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("making the v1 fixture: %s", msg);
	sqlite3_close(db);
}

static void test_v1_upgrades(void **ts)
{
	struct fix *f = *ts;
	struct store *s;
	struct state st;
	struct task *t;
	struct team *nlp;
	sqlite3 *db;
	sqlite3_stmt *q;

	make_v1(f->path);
	s = open_store(f);
	load(s, &st);

	assert_int_equal(st.policy.sched.idle, SCHED_IDLE_FCFS);
	assert_int_equal(st.policy.grace_s, 90);
	assert_int_equal(state_class_find(&st, "urgent")->weight, 40);
	nlp = state_team_find(&st, "nlp");
	assert_non_null(nlp);
	assert_int_equal(nlp->weight, 2);
	assert_false(nlp->preempt_own_lower);
	assert_string_equal(nlp->default_class, "fine-tuning");
	assert_int_equal(nlp->nmembers, 2);
	assert_int_equal(nlp->nquotas, 1);
	assert_int_equal(nlp->quotas[0].q.guarantee.gpus, 16);
	assert_int_equal(nlp->quotas[0].q.borrow_limit_pct, 25);
	assert_false(nlp->quotas[0].q.has_borrow_abs);
	assert_true(nlp->quotas[0].q.has_lend_limit);
	assert_int_equal(nlp->quotas[0].q.lend_limit.cpus, 32);
	assert_int_equal(nlp->active, 2);
	assert_int_equal(state_node_find(&st, "a1")->nlabels, 1);
	assert_string_equal(state_node_find(&st, "a1")->labels[0], "rack=3");
	/* Version 3's node columns take their defaults. */
	assert_string_equal(state_node_find(&st, "a1")->service, "active");
	assert_string_equal(state_node_find(&st, "a1")->service_by, "");
	assert_false(state_node_find(&st, "a1")->admin_hold);
	assert_string_equal(state_node_find(&st, "a1")->repair_action, "");

	t = state_task_find(&st, 7);
	assert_int_equal(t->state, TASK_PENDING);
	assert_null(t->env);             /* it stays in the store */
	assert_string_equal(t->cwd, "/srv/nlp");
	assert_int_equal(t->preempt_signal, 15);
	/* Version 6's columns take their defaults: no array, no script, not held. */
	assert_int_equal(t->array_id, 0);
	assert_null(t->script);
	assert_false(t->held);
	assert_string_equal(t->dependency, "");
	assert_string_equal(t->output, "");
	assert_int_equal(t->preemptions, 0);
	t = state_task_find(&st, 8);
	assert_int_equal(t->state, TASK_RUNNING);
	assert_int_equal(t->st.state, SCHED_RUNNING);
	assert_int_equal(t->attempts, 2);
	assert_int_equal(t->argc, 2);
	assert_string_equal(t->argv[1], "--big");
	assert_int_equal(t->ckpt.step, 200);          /* the newest checkpoint */
	t = state_task_find(&st, 9);
	assert_int_equal(t->state, TASK_FAILED);
	assert_true(t->has_exit_code);
	assert_int_equal(t->exit_code, 3);
	assert_string_equal(t->reason, "exit on a1");
	assert_int_equal(st.next_id, 10);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	assert_env(f, s, 7, 2, 1, "B=2");
	state_release(&st);
	fix_close_store(f, s);

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), store_schema_latest());
	sqlite3_finalize(q);
	/* Version 2 added the usage table (empty after the upgrade) and an
	 * index on the events' team; the v1 events are still there. */
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM usage WHERE used_ms >= 0"
					    " AND within_ms >= 0 AND borrowed_ms >= 0"
					    " AND lent_ms >= 0", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 0);
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE"
					    " type = 'index' AND name = 'events_team'", -1, &q,
					    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 1);
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &q, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_true(sqlite3_column_int(q, 0) > 0);
	sqlite3_finalize(q);
	/* Version 5 added the join tokens and node certificates, empty. */
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM join_tokens) +"
					    " (SELECT count(*) FROM node_certs)", -1, &q, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 0);
	sqlite3_finalize(q);
	/* Version 6 added scripts and arrays, empty. */
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM scripts) +"
					    " (SELECT count(*) FROM arrays)", -1, &q, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 0);
	sqlite3_finalize(q);
	/* Version 7 moved every environment to task_env (a version-6 file is
	 * what the migrations above made of it), leaving tasks.env empty. */
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM task_env),"
					    " (SELECT count(*) FROM tasks WHERE length(env) > 0)",
					    -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_true(sqlite3_column_int(q, 0) > 0);
	assert_int_equal(sqlite3_column_int(q, 1), 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* Tokens and certificates come back after a restart: a token's uses, and
 * a revocation, hold across it; only a hash of a token's secret is kept. */
static void test_trust_round_trip(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	const struct join_token *t, *u;
	struct state st;
	struct state_err e;
	char token[TRUST_TOKEN_MAX], again[TRUST_TOKEN_MAX];
	size_t n;
	const struct join_token **v;
	sqlite3 *db;
	sqlite3_stmt *q;

	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	assert_int_equal(state_token_create(&st, "", 600, 2, &admin, token, &t, &e), 0);
	assert_int_equal(state_token_create(&st, "nosuchpool", 600, 1, &admin, again, &u, &e),
			 HPQ_ENOTFOUND);
	assert_int_equal(state_token_check(&st, token, "n1", "test", &t, &e), 0);
	state_token_use(&st, t);
	state_cert_issued(&st, "AA01", "n1", "", hpq_now_ms() + 600000, "joined");
	state_cert_issued(&st, "AA02", "n2", "gpu", hpq_now_ms() + 600000, "joined");
	assert_int_equal(state_node_revoke(&st, "n2", &admin, &n, &e), 0);
	assert_int_equal(n, 1);
	/* The wrong secret of a real token, and a malformed one. */
	snprintf(again, sizeof(again), "%s", token);
	again[strlen(again) - 1] = again[strlen(again) - 1] == '0' ? '1' : '0';
	assert_int_equal(state_token_check(&st, again, "n3", "test", &u, &e), HPQ_EAUTH);
	assert_int_equal(state_token_check(&st, "hpq1.zz", "n3", "test", &u, &e), HPQ_EAUTH);
	fix_commit_store(f, s);
	state_release(&st);
	fix_close_store(f, s);

	s = open_store(f);
	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	v = state_tokens(&st, &n);
	assert_int_equal(n, 1);
	assert_int_equal(v[0]->uses_left, 1);
	free(v);
	assert_int_equal(state_token_check(&st, token, "n4", "test", &t, &e), 0);
	state_token_use(&st, t);
	assert_int_equal(state_token_check(&st, token, "n5", "test", &t, &e), HPQ_EAUTH);
	assert_non_null(strstr(e.msg, "used up"));
	assert_int_equal(state_cert_check(&st, "AA01", "n1", &e), 0);
	assert_int_equal(state_cert_check(&st, "AA01", "n2", &e), HPQ_EAUTH);
	assert_int_equal(state_cert_check(&st, "AA02", "n2", &e), HPQ_EAUTH);
	assert_non_null(strstr(e.msg, "revoked"));
	assert_int_equal(state_cert_check(&st, "FFFF", "n1", &e), HPQ_EAUTH);
	assert_non_null(state_node_cert(&st, "n1"));
	assert_null(state_node_cert(&st, "n2"));
	fix_commit_store(f, s);
	state_release(&st);
	fix_close_store(f, s);

	/* No secret in the database: nothing of the token's last part. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM join_tokens WHERE"
					    " instr(secret_hash, ?) > 0 OR instr(id, ?) > 0", -1,
					    &q, NULL), SQLITE_OK);
	sqlite3_bind_text(q, 1, strrchr(token, '.') + 1, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, strrchr(token, '.') + 1, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* Renewal: refused once a node holds no valid certificate (a connection
 * opened before its last one expired), and at 3 valid ones. */
static void test_renewal_needs_a_valid_certificate(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct state st;
	struct state_err e;
	int64_t now = hpq_now_ms();

	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	state_cert_issued(&st, "AA01", "n1", "", now - 1, "joined with token");
	assert_int_equal(state_cert_renewable(&st, "n1", &e), HPQ_EAUTH);
	assert_non_null(strstr(e.msg, "no valid certificate"));
	state_cert_issued(&st, "AA02", "n1", "", now + 600000, "renewed");
	assert_int_equal(state_cert_renewable(&st, "n1", &e), 0);
	state_cert_issued(&st, "AA03", "n1", "", now + 700000, "renewed");
	state_cert_issued(&st, "AA04", "n1", "", now + 800000, "renewed");
	assert_int_equal(state_cert_renewable(&st, "n1", &e), HPQ_EBUSY);
	fix_commit_store(f, s);
	state_release(&st);
	fix_close_store(f, s);
}

/* req_join's order: a token checked, the certificate signed (which takes
 * a while), the use recorded, the certificate recorded, then the token's
 * id and pool read for the log and the reply. A token that expires while
 * its join is signed must not be freed under the join. */
static void test_token_outlives_its_join(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	const struct join_token *t;
	struct state st;
	struct state_err e;
	char token[TRUST_TOKEN_MAX], id[32];

	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	assert_int_equal(state_token_create(&st, "", 1, 1, &admin, token, &t, &e), 0);
	assert_int_equal(state_token_check(&st, token, "n1", "test", &t, &e), 0);
	snprintf(id, sizeof(id), "%s", t->id);
	/* The signing outlasted the token's last millisecond. */
	((struct join_token *)t)->expires_ms = hpq_now_ms() - 1;
	state_token_use(&st, t);
	state_cert_issued(&st, "AA01", "n1", "", hpq_now_ms() + 600000, "joined with token");
	if (strmap_get(&st.tokens, id) != t)
		fail_msg("token %s was freed while its join still uses it", id);
	assert_string_equal(t->id, id);
	fix_commit_store(f, s);
	state_release(&st);
	fix_close_store(f, s);
}

/*
 * Versions 2 and 3, verbatim as store-open.c applies them, so that a database of
 * the version before the newest can be made as hpqd 0.3 left it.
 */
static const char schema_v2_v3[] =
	"CREATE TABLE usage (\n"
	"  hour INTEGER NOT NULL,\n"
	"  dim TEXT NOT NULL,\n"
	"  key TEXT NOT NULL,\n"
	"  pool TEXT NOT NULL,\n"
	"  used_ms INTEGER NOT NULL DEFAULT 0,\n"
	"  within_ms INTEGER NOT NULL DEFAULT 0,\n"
	"  borrowed_ms INTEGER NOT NULL DEFAULT 0,\n"
	"  lent_ms INTEGER NOT NULL DEFAULT 0,\n"
	"  PRIMARY KEY (hour, dim, key, pool)\n"
	");\n"
	"CREATE INDEX events_team ON events (team, id);\n"
	"ALTER TABLE nodes ADD COLUMN service_by TEXT NOT NULL DEFAULT '';\n"
	"ALTER TABLE nodes ADD COLUMN service_since INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE nodes ADD COLUMN admin_hold INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE nodes ADD COLUMN repair_action TEXT NOT NULL DEFAULT '';\n";

/* Version 3's teams: members by name, no admins yet. */
static const char rows_v3[] =
	"INSERT INTO teams (name, weight, preempt_own, default_class, members)\n"
	"  VALUES ('vision', 5, 'lower-priority', '', 'erin'),\n"
	"  ('open', 1, 'lower-priority', '', '');\n";

static void test_v3_upgrades(void **ts)
{
	struct fix *f = *ts;
	struct store *s;
	struct state st;
	struct team *t;
	sqlite3 *db;
	char *msg = NULL;
	uint32_t nteams = 0;

	make_v1(f->path);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	if (sqlite3_exec(db, schema_v2_v3, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, rows_v3, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA user_version = 3", NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("making the v3 fixture: %s", msg);
	sqlite3_close(db);

	s = open_store(f);
	load(s, &st);
	/* Every team is kept, as it was, with no admins. */
	for (uint32_t i = 0; i < st.nteams; i++)
		nteams += st.teams[i] != NULL;
	assert_int_equal(nteams, 4);                /* default, nlp, vision, open */
	t = state_team_find(&st, "nlp");
	assert_int_equal(t->nmembers, 2);
	assert_string_equal(t->members[0], "carol");
	assert_int_equal(t->nquotas, 1);
	assert_int_equal(t->nadmins, 0);
	t = state_team_find(&st, "vision");
	assert_int_equal(t->weight, 5);
	assert_int_equal(t->nmembers, 1);
	assert_string_equal(t->members[0], "erin");
	assert_int_equal(t->nadmins, 0);
	t = state_team_find(&st, "open");
	assert_int_equal(t->nmembers, 0);
	assert_int_equal(t->nadmins, 0);
	assert_int_equal(state_team_find(&st, "default")->nadmins, 0);
	state_release(&st);
	fix_close_store(f, s);

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "SELECT admins FROM teams", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
}

static void on_backup(void *arg, int status, const struct store_backup_info *b)
{
	struct store_backup_info *out = arg;

	assert_int_equal(status, 0);
	*out = *b;
	out->path = b->path ? strdup(b->path) : NULL;
	out->error = "read";
}

static void on_deprecated_row(void *arg, const struct store_deprecated_row *r)
{
	assert_string_equal(r->what, "protocol-1");
	assert_string_equal(r->who, "agent n1");
	assert_int_equal(r->count, 7);
	(*(int *)arg)++;
}

/* Makes f's database at the latest version, with what a new cluster has. */
static void create(struct fix *f)
{
	struct store *s = open_store(f);
	struct state st;

	load(s, &st);
	state_release(&st);
	fix_close_store(f, s);
}

/* Makes f's database, made at the latest version, one of version
 * version: sql takes out what the versions after it added. */
static void downgrade(struct fix *f, int version, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL, pragma[48];

	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, pragma, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("making the v%d fixture: %s", version, msg);
	sqlite3_close(db);
}

/* Version 8 is this one without the tables of versions 9 to 11: made by
 * dropping them. */
static void test_v8_upgrades(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct store_backup_info b = { 0 };
	struct state st;
	char err[256] = "";
	int rows = 0;

	fix_close_store(f, s);
	downgrade(f, 8, "DROP TABLE deprecated_uses; DROP TABLE backups;"
		  " DROP TABLE autoscale_nodes; DROP TABLE plans;"
		  " ALTER TABLE tasks DROP COLUMN plan;"
		  " DROP TABLE tasks_gone_bad; DROP TABLE task_bulk;"
		  " ALTER TABLE arrays DROP COLUMN dependency;"
		  " DROP TABLE arrays_gone_bad; ALTER TABLE arrays DROP COLUMN dropped;"
		  " DROP TABLE tasks_gone_counts;"
		  " INSERT INTO pools (name) VALUES ('v8pool');");
	/* hpqd --backup against a version 8 database: nowhere to record. */
	assert_int_equal(store_backup_record(f->path, "/b/1.db", 1, 2, 8, err, sizeof(err)),
			 -ENOENT);

	s = open_store(f);
	load(s, &st);
	assert_non_null(state_pool_find(&st, "v8pool"));
	store_deprecated_put(s, &(struct store_deprecated_row){
		.what = "protocol-1", .who = "agent n1", .first_seen_ms = 1, .last_seen_ms = 2,
		.count = 7 });
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	fix_commit_store(f, s);
	assert_int_equal(store_backup_record(f->path, "/b/2.db", 5000, 4096, 9, err,
					     sizeof(err)), 0);
	assert_int_equal(store_backup_record(f->path, "/b/3.db", 6000, 8192, 9, err,
					     sizeof(err)), 0);
	store_backup_latest(s, on_backup, &b);
	store_submit(s);
	while (!b.error)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_true(b.has);
	assert_string_equal(b.path, "/b/3.db");
	assert_int_equal(b.time_ms, 6000);
	assert_int_equal(b.bytes, 8192);
	assert_int_equal(b.schema, 9);
	assert_true(b.db_bytes > 0);
	free((char *)b.path);
	state_release(&st);
	fix_close_store(f, s);

	s = open_store(f);
	assert_int_equal(store_deprecated_load(s, on_deprecated_row, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows, 1);
	fix_close_store(f, s);
}

/* store_load_asnodes' callback: the rows, as "name pool state launched born replaces;". */
static void on_asnode(void *arg, const struct store_asnode_row *a)
{
	char *out = arg;
	size_t len = strlen(out);

	snprintf(out + len, 512 - len, "%s %s %s %lld %lld %s;", a->name, a->pool, a->state,
		 (long long)a->launched_ms, (long long)a->born_ms, a->replaces);
}

/*
 * Version 10 added the autoscaler's nodes. A database of version 9 (this
 * code's, less that table and version 11's) opens, upgraded, and
 * the table keeps its rows from one start to the next.
 */
static void test_v9_upgrades(void **ts)
{
	struct fix *f = *ts;
	struct store *s;
	struct state st;
	sqlite3 *db;
	char rows[512] = "", err[256] = "";

	s = open_store(f);
	fix_close_store(f, s);
	downgrade(f, 9, "DROP TABLE autoscale_nodes; DROP TABLE plans;"
		  " DROP TABLE tasks_gone_bad; DROP TABLE task_bulk;"
		  " ALTER TABLE arrays DROP COLUMN dependency;"
		  " DROP TABLE arrays_gone_bad; ALTER TABLE arrays DROP COLUMN dropped;"
		  " DROP TABLE tasks_gone_counts; ALTER TABLE tasks DROP COLUMN plan;");

	s = open_store(f);
	assert_int_equal(store_load_asnodes(s, on_asnode, rows, err, sizeof(err)), 0);
	assert_string_equal(rows, "");
	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	store_asnode_put(s, &(struct store_asnode_row){ "gpu-1", "gpu", "launching", "", 1000,
							0 });
	store_asnode_put(s, &(struct store_asnode_row){ "gpu-2", "gpu", "ready", "gpu-1", 2000,
							3000 });
	store_asnode_put(s, &(struct store_asnode_row){ "gpu-3", "gpu", "ready", "", 1, 2 });
	store_asnode_delete(s, "gpu-3");
	fix_commit_store(f, s);
	state_release(&st);
	fix_close_store(f, s);

	s = open_store(f);
	assert_int_equal(store_load_asnodes(s, on_asnode, rows, err, sizeof(err)), 0);
	assert_string_equal(rows, "gpu-1 gpu launching 1000 0 ;gpu-2 gpu ready 2000 3000 gpu-1;");
	fix_close_store(f, s);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	{
		sqlite3_stmt *q;

		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(q, 0), store_schema_latest());
		sqlite3_finalize(q);
	}
	sqlite3_close(db);
}

/* The version before plans: the plans table comes with the upgrade, and
 * a plan recorded then loads back with its segments and state. */
static void test_plans_upgrade(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct state st;
	struct plan *p;
	struct store_plan_row row = {
		.id = 7, .name = "llm", .team = "default", .pool = "gpu", .state = "between-segments",
		.segments = "1000-2000@n1,n2;3000-4000@n3,n4", .created_by = "carol", .nodes = 2,
		.gpus_per_node = 8, .duration_s = 2, .created_ms = 500,
	};

	fix_close_store(f, s);
	downgrade(f, 10, "DROP TABLE plans; ALTER TABLE tasks DROP COLUMN plan;"
		  " DROP TABLE tasks_gone_bad; DROP TABLE task_bulk;"
		  " ALTER TABLE arrays DROP COLUMN dependency;"
		  " DROP TABLE arrays_gone_bad; ALTER TABLE arrays DROP COLUMN dropped;"
		  " DROP TABLE tasks_gone_counts");

	s = open_store(f);
	load(s, &st);
	assert_int_equal(st.plans->n, 0);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	store_plan_put(s, &row);
	fix_commit_store(f, s);
	state_release(&st);
	fix_close_store(f, s);

	s = open_store(f);
	load(s, &st);
	p = plans_find(&st, "llm");
	assert_non_null(p);
	assert_int_equal(p->id, 7);
	assert_int_equal(p->state, PLAN_BETWEEN);
	assert_int_equal(p->nsegments, 2);
	assert_int_equal(p->seg[1].start_ms, 3000);
	assert_int_equal(p->seg[1].end_ms, 4000);
	assert_int_equal(p->seg[1].nnodes, 2);
	assert_string_equal(p->seg[1].nodes[1], "n4");
	assert_string_equal(p->created_by, "carol");
	assert_true(plan_gpu_hours_reserved(p) > 0);
	state_release(&st);
	fix_close_store(f, s);
}

/* The version before plan-bound tasks: the tasks' plan column comes with
 * the upgrade, empty for the tasks there were; a task's plan loads back,
 * and one whose plan is unknown queues as any task (plan-ended). */
static void test_plan_tasks_upgrade(void **ts)
{
	struct fix *f = *ts;
	struct store *s;
	struct state st;
	struct task *t;
	sqlite3 *db;
	char *msg = NULL;

	make_v1(f->path);
	s = open_store(f);
	fix_close_store(f, s);
	downgrade(f, 11, "ALTER TABLE tasks DROP COLUMN plan; DROP TABLE tasks_gone_bad;"
		  " DROP TABLE task_bulk; ALTER TABLE arrays DROP COLUMN dependency;"
		  " DROP TABLE arrays_gone_bad; ALTER TABLE arrays DROP COLUMN dropped;"
		  " DROP TABLE tasks_gone_counts");

	s = open_store(f);
	load(s, &st);
	t = state_task_find(&st, 7);
	assert_non_null(t);
	assert_string_equal(t->plan, "");
	state_release(&st);
	fix_close_store(f, s);

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	if (sqlite3_exec(db, "UPDATE tasks SET plan = 'llm' WHERE id = 7", NULL, NULL, &msg) !=
	    SQLITE_OK)
		fail_msg("setting a plan: %s", msg);
	sqlite3_close(db);
	s = open_store(f);
	load(s, &st);
	t = state_task_find(&st, 7);
	assert_non_null(t);
	assert_string_equal(t->plan, "llm");
	assert_int_equal(t->st.state, SCHED_PENDING);
	assert_string_equal(t->reason, "plan-ended");
	state_release(&st);
	fix_close_store(f, s);
}

/* ---------------------------------------------------------------- bulk changes */

/* A held task of alice's, in team default. */
static struct task *submit_held(struct state *st)
{
	static char *argv[] = { "/bin/true" };
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	struct state_err e;
	struct task *t = NULL;

	res.cpus = 1;
	spec.per_node = &res;
	spec.n_argv = 1;
	spec.argv = argv;
	spec.cwd = "/";
	spec.hold = true;
	if (state_task_submit(st, &spec, &alice, &t, &e) < 0)
		fail_msg("submit: %s", e.msg);
	return t;
}

/* op over tasks ids[0..n), as hpq cancel or hpq release with those ids. */
static void control_ids(struct state *st, enum control_op op, const uint64_t *ids, size_t n)
{
	struct selection sel = { 0 };

	sel.v = calloc(n, sizeof(*sel.v));
	assert_non_null(sel.v);
	sel.n = sel.cap = n;
	for (size_t i = 0; i < n; i++) {
		sel.v[i].kind = SEL_TASK;
		sel.v[i].t = state_task_find(st, ids[i]);
		sel.v[i].id = ids[i];
		assert_non_null(sel.v[i].t);
	}
	control_apply(st, &sel, op, &alice, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sel.v[i].code, 0);
	select_release(&sel);
}

/* The events table from another connection, oldest first, one
 * "id:kind:task:team:actor:message;" each, from id `from` on. */
static void events_text(const char *path, int64_t from, char *out, size_t len)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	size_t off = 0;

	out[0] = '\0';
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT id, kind, coalesce(task_id, 0), team,"
					    " actor, message FROM events WHERE id >= ? ORDER BY id",
					    -1, &q, NULL), SQLITE_OK);
	sqlite3_bind_int64(q, 1, from);
	while (sqlite3_step(q) == SQLITE_ROW)
		off += (size_t)snprintf(out + off, len - off, "%lld:%s:%lld:%s:%s:%s;",
					(long long)sqlite3_column_int64(q, 0),
					sqlite3_column_text(q, 1),
					(long long)sqlite3_column_int64(q, 2),
					sqlite3_column_text(q, 3), sqlite3_column_text(q, 4),
					sqlite3_column_text(q, 5));
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* One integer from another connection. */
static int64_t db_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

struct bulk_read {
	bool done;
	size_t nevents;
	char last[160];         /* the newest event: "kind:message" */
	int64_t at_commit;      /* task 3's end events in the table at the commit's completion */
	const char *path;
};

static void on_bulk_history(void *arg, int status, const struct store_history *h)
{
	struct bulk_read *r = arg;

	assert_int_equal(status, 0);
	r->done = true;
	r->nevents = h->nevents;
	if (h->nevents)
		snprintf(r->last, sizeof(r->last), "%s:%s", h->events[h->nevents - 1].kind,
			 h->events[h->nevents - 1].message);
}

static void on_bulk_committed(void *arg, int status)
{
	struct bulk_read *r = arg;

	assert_int_equal(status, 0);
	r->at_commit = db_int(r->path, "SELECT count(*) FROM events WHERE task_id = 3"
			      " AND kind = 'end'");
	r->done = true;
}

/*
 * Six held tasks: 1-3 cancelled in one request, then an event of another
 * kind, then 4-6 released in one; a history read of task 2 in the same
 * transaction as the cancel. The cancel's completion runs after a commit
 * that holds the cancel: its rows may still be on their way, but the read
 * already sees task 2's end, and once the thread is done every task has
 * its row and its event, numbered in the order the loop recorded them.
 * Everything loads back after a restart.
 */
static void test_bulk_changes(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	struct bulk_read done = { .path = f->path }, hist = { 0 }, later = { 0 };
	static const uint64_t cancel[] = { 1, 2, 3 }, release[] = { 4, 5, 6 };
	struct state st;
	struct task *t;
	int64_t first, end_ms;
	char got[2048], want[2048];

	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(submit_held(&st)->st.id, (uint64_t)i + 1);
	fix_commit_store(f, s);
	first = db_int(f->path, "SELECT max(id) FROM events") + 1;

	control_ids(&st, CONTROL_CANCEL, cancel, 3);
	end_ms = state_task_find(&st, 1)->end_ms;
	assert_int_equal(state_task_find(&st, 3)->end_ms, end_ms);
	store_read_history(s, 2, 0, on_bulk_history, &hist);
	store_after_commit(s, on_bulk_committed, &done);
	state_event(&st, "node", NULL, "n1", NULL, "after the cancel");
	store_submit(s);
	while (!done.done || !hist.done)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(done.at_commit, 1);
	assert_int_equal(hist.nevents, 2);
	assert_string_equal(hist.last, "end:CANCELLED: cancelled by alice");

	control_ids(&st, CONTROL_RELEASE, release, 3);
	assert_false(state_task_find(&st, 5)->held);
	assert_int_equal(state_task_find(&st, 5)->st.state, SCHED_PENDING);
	fix_commit_store(f, s);
	store_read_history(s, 5, 0, on_bulk_history, &later);
	store_submit(s);
	while (!later.done)
		uv_run(&f->loop, UV_RUN_ONCE);

	assert_int_equal(later.nevents, 2);
	assert_string_equal(later.last, "release:released by alice");
	snprintf(want, sizeof(want),
		 "%lld:end:1:default:hpqd:CANCELLED: cancelled by alice;"
		 "%lld:end:2:default:hpqd:CANCELLED: cancelled by alice;"
		 "%lld:end:3:default:hpqd:CANCELLED: cancelled by alice;"
		 "%lld:cancel:0::alice:3 pending tasks cancelled by alice;"
		 "%lld:node:0::hpqd:after the cancel;"
		 "%lld:release:4:default:alice:released by alice;"
		 "%lld:release:5:default:alice:released by alice;"
		 "%lld:release:6:default:alice:released by alice;",
		 (long long)first, (long long)first + 1, (long long)first + 2,
		 (long long)first + 3, (long long)first + 4, (long long)first + 5,
		 (long long)first + 6, (long long)first + 7);
	events_text(f->path, first, got, sizeof(got));
	assert_string_equal(got, want);
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM task_bulk"), 0);
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM tasks WHERE state = 'CANCELLED'"
				" AND reason = 'cancelled by alice' AND id <= 3"), 3);
	assert_int_equal(db_int(f->path, "SELECT min(end_time) FROM tasks WHERE id <= 3"), end_ms);
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM tasks WHERE state = 'PENDING'"
				" AND held = 0 AND reason = '' AND id > 3"), 3);
	state_release(&st);
	fix_close_store(f, s);

	s = open_store(f);
	load(s, &st);
	t = state_task_find(&st, 2);
	assert_int_equal(t->state, TASK_CANCELLED);
	assert_int_equal(t->end_ms, end_ms);
	assert_string_equal(t->reason, "cancelled by alice");
	t = state_task_find(&st, 6);
	assert_int_equal(t->state, TASK_PENDING);
	assert_false(t->held);
	assert_int_equal(t->st.state, SCHED_PENDING);
	state_release(&st);
	fix_close_store(f, s);
}

/* Tasks' ids as a task_bulk row keeps them: 8 bytes each, little-endian. */
static void put_ids(unsigned char *p, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 8; k++)
			p[8 * i + (size_t)k] = (unsigned char)(ids[i] >> (8 * k));
}

/*
 * hpqd killed after a bulk change's commit and before its tasks' rows:
 * the task_bulk row and the last task's event are all there is (made
 * here by hand, as the commit leaves them, with an event recorded after
 * them). The next load finishes it first: the tasks load ended, or
 * released, with every event in its place.
 */
static void test_bulk_finished_at_load(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	static const uint64_t ended[] = { 2, 3 }, released[] = { 4 };
	unsigned char blob[16];
	struct state st;
	struct task *t;
	sqlite3 *db;
	sqlite3_stmt *q;
	int64_t first;
	char got[2048], want[2048];

	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	for (int i = 0; i < 4; i++)
		submit_held(&st);
	fix_commit_store(f, s);
	state_release(&st);
	fix_close_store(f, s);

	first = db_int(f->path, "SELECT max(id) FROM events") + 1;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
		"INSERT INTO task_bulk (change, ids, first_event, state, reason, end_time, time,"
		" kind, actor, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 5000, ?7, ?8, ?9)",
		-1, &q, NULL), SQLITE_OK);
	put_ids(blob, ended, 2);
	sqlite3_bind_text(q, 1, "end", -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, blob, 16, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 3, first);
	sqlite3_bind_text(q, 4, "CANCELLED", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, "cancelled by alice", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, 4000);
	sqlite3_bind_text(q, 7, "end", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, "hpqd", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 9, "CANCELLED: cancelled by alice", -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(q), SQLITE_DONE);
	sqlite3_reset(q);
	put_ids(blob, released, 1);
	sqlite3_bind_text(q, 1, "release", -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, blob, 8, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 3, first + 2);
	sqlite3_bind_text(q, 4, "", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, 0);
	sqlite3_bind_text(q, 7, "release", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, "alice", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 9, "released by alice", -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	snprintf(want, sizeof(want),
		 "INSERT INTO events (id, time, kind, task_id, team, actor, message) VALUES"
		 " (%lld, 5000, 'end', 3, 'default', 'hpqd', 'CANCELLED: cancelled by alice'),"
		 " (%lld, 5000, 'release', 4, 'default', 'alice', 'released by alice');"
		 " INSERT INTO events (time, kind, actor, message) VALUES (6000, 'node', 'hpqd',"
		 " 'after')", (long long)first + 1, (long long)first + 2);
	assert_int_equal(sqlite3_exec(db, want, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	s = open_store(f);
	load(s, &st);
	t = state_task_find(&st, 2);
	assert_int_equal(t->state, TASK_CANCELLED);
	assert_int_equal(t->end_ms, 4000);
	assert_string_equal(t->reason, "cancelled by alice");
	assert_int_equal(state_task_find(&st, 3)->state, TASK_CANCELLED);
	t = state_task_find(&st, 4);
	assert_int_equal(t->state, TASK_PENDING);
	assert_false(t->held);
	assert_int_equal(t->st.state, SCHED_PENDING);
	t = state_task_find(&st, 1);
	assert_int_equal(t->state, TASK_PENDING);
	assert_true(t->held);
	state_release(&st);
	fix_close_store(f, s);

	snprintf(want, sizeof(want),
		 "%lld:end:2:default:hpqd:CANCELLED: cancelled by alice;"
		 "%lld:end:3:default:hpqd:CANCELLED: cancelled by alice;"
		 "%lld:release:4:default:alice:released by alice;"
		 "%lld:node:0::hpqd:after;",
		 (long long)first, (long long)first + 1, (long long)first + 2,
		 (long long)first + 3);
	events_text(f->path, first, got, sizeof(got));
	assert_string_equal(got, want);
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM task_bulk"), 0);
}

/* Version 13 added task_bulk. A database of version 12 (this code's, less
 * that table) opens, upgraded, and a cancel of many tasks goes through it. */
static void test_v12_upgrades(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	static const uint64_t ids[] = { 1, 2 };
	struct state st;

	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	submit_held(&st);
	submit_held(&st);
	fix_commit_store(f, s);
	state_release(&st);
	fix_close_store(f, s);
	downgrade(f, 12, "DROP TABLE tasks_gone_bad; DROP TABLE task_bulk;"
		  " ALTER TABLE arrays DROP COLUMN dependency;"
		  " DROP TABLE arrays_gone_bad;"
		  " ALTER TABLE arrays DROP COLUMN dropped;"
		  " DROP TABLE tasks_gone_counts;");

	s = open_store(f);
	load(s, &st);
	assert_int_equal(db_int(f->path, "PRAGMA user_version"), store_schema_latest());
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	control_ids(&st, CONTROL_CANCEL, ids, 2);
	fix_commit_store(f, s);
	state_release(&st);
	fix_close_store(f, s);
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM tasks WHERE state = 'CANCELLED'"),
			 2);
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM events WHERE kind = 'end'"), 2);
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM task_bulk"), 0);
}

/* Version 14 adds tasks_gone_bad to a version-13 database and keeps its
 * rows; a restart reads the tasks that did not complete from both. */
static void test_v13_upgrades(void **ts)
{
	struct fix *f = *ts;
	struct store *s = open_store(f);
	static const uint64_t ids[] = { 1 };
	struct state st;

	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	submit_held(&st);
	submit_held(&st);
	control_ids(&st, CONTROL_CANCEL, ids, 1);
	fix_commit_store(f, s);
	state_release(&st);
	fix_close_store(f, s);
	downgrade(f, 13, "DROP TABLE tasks_gone_bad;"
		  " ALTER TABLE arrays DROP COLUMN dependency;"
		  " DROP TABLE arrays_gone_bad;"
		  " ALTER TABLE arrays DROP COLUMN dropped;"
		  " DROP TABLE tasks_gone_counts;");

	s = open_store(f);
	load(s, &st);
	assert_int_equal(db_int(f->path, "PRAGMA user_version"), store_schema_latest());
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM tasks"), 2);
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM tasks_gone_bad"), 0);
	assert_int_equal(st.ntasks, 2);
	state_release(&st);
	fix_close_store(f, s);
}

/* Version 15 adds arrays.dependency to a version-14 database, "" for the
 * arrays it had (their first task's dependency stands for it, as before). */
static void test_v14_upgrades(void **ts)
{
	struct fix *f = *ts;
	struct store *s;
	struct state st;

	create(f);
	downgrade(f, 14, "ALTER TABLE arrays DROP COLUMN dependency;"
		  " DROP TABLE arrays_gone_bad;"
		  " ALTER TABLE arrays DROP COLUMN dropped;"
		  " DROP TABLE tasks_gone_counts;"
		  " INSERT INTO arrays (id, spec, pending) VALUES (5, '0-3', '');");

	s = open_store(f);
	load(s, &st);
	assert_int_equal(db_int(f->path, "PRAGMA user_version"), store_schema_latest());
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM arrays WHERE dependency = ''"), 1);
	state_release(&st);
	fix_close_store(f, s);
}

/*
 * Version 16 adds arrays.dropped and arrays_gone_bad to a version-15
 * database: an array with indices pending dropped none (""), one without
 * does not say (NULL) until the next start counts them from its rows, as
 * before, and records them.
 */
static void test_v15_upgrades(void **ts)
{
	struct fix *f = *ts;
	struct store *s;
	struct state st;
	struct array *a;

	create(f);
	downgrade(f, 15, "DROP TABLE arrays_gone_bad;"
		  " ALTER TABLE arrays DROP COLUMN dropped;"
		  " DROP TABLE tasks_gone_counts;"
		  " INSERT INTO arrays (id, spec, pending) VALUES (5, '0-3', ''),"
		  " (9, '0-9', '4-9');");

	s = open_store(f);
	assert_int_equal(db_int(f->path, "PRAGMA user_version"), store_schema_latest());
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM arrays WHERE id = 5 AND"
				" dropped IS NULL"), 1);
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM arrays WHERE id = 9 AND"
				" dropped = ''"), 1);
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM arrays_gone_bad"), 0);
	load(s, &st);
	assert_int_equal(store_start(s, &f->loop, NULL, NULL), 0);
	/* Array 5 has no row: all four were dropped, none completed. */
	a = array_find(&st, 5);
	assert_non_null(a);
	assert_int_equal(a->nbad, 4);
	assert_int_equal(a->nok, 0);
	assert_int_equal(array_set_count(&a->gone_bad), 4);
	fix_commit_store(f, s);
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM arrays WHERE id = 5 AND"
				" dropped = '0-3'"), 1);
	state_release(&st);
	fix_close_store(f, s);
}

/*
 * Version 17 adds tasks_gone_counts to a version-16 database, empty: what
 * retain deleted before is not known. A start reads it with the rows.
 */
static void test_v16_upgrades(void **ts)
{
	struct fix *f = *ts;
	struct store *s;
	struct state st;

	create(f);
	downgrade(f, 16, "DROP TABLE tasks_gone_counts;");

	s = open_store(f);
	assert_int_equal(db_int(f->path, "PRAGMA user_version"), store_schema_latest());
	assert_int_equal(db_int(f->path, "SELECT count(*) FROM tasks_gone_counts"), 0);
	load(s, &st);
	assert_null(strmap_get(&st.gone_counts, "default"));
	state_release(&st);
	fix_close_store(f, s);
}

static void test_newer_schema_refused(void **ts)
{
	struct fix *f = *ts;
	struct store *s = NULL;
	sqlite3 *db;
	char sql[64], err[256] = "";

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", store_schema_latest() + 1);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, 0, &s, err, sizeof(err)), HPQ_ESTORAGE);
	assert_null(s);
	assert_non_null(strstr(err, "newer"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_database_has_defaults,
						setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_v8_upgrades, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_order, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_close_commits_the_rest, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints_beside_commits, setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(test_failed_commit_waits, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_stop_fails_what_waits, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_run_read_waits_for_its_rows, setup,
						fix_teardown),
		cmocka_unit_test_setup_teardown(test_event_reads, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_usage_rows, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_v1_upgrades, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_trust_round_trip, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_v3_upgrades, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_v9_upgrades, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_plans_upgrade, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_plan_tasks_upgrade, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_bulk_changes, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_bulk_finished_at_load, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_v12_upgrades, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_v13_upgrades, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_v14_upgrades, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_v15_upgrades, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_v16_upgrades, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_token_outlives_its_join, setup, fix_teardown),
		cmocka_unit_test_setup_teardown(test_renewal_needs_a_valid_certificate, setup,
						fix_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
