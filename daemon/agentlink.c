/*
 * agentlink.c: the daemon's link to its agents (agentlink.h).
 *
 * (task id, attempt) names one run everywhere. A session hangs off each
 * registered agent connection: its node and the pushes decided before its
 * RegisterReply went out. RunTask and KillTask leave from commit
 * completions (agentlink.h), and are addressed by node name, looked up
 * again when they leave, so a node that reconnected meanwhile gets them
 * on its new connection.
 *
 * The node timer declares a node lost once its agent has been silent for
 * unreachable_after: its runs are requeued from their checkpoints, and a
 * gang loses all its members. With fencing ([agents] fence_after) that is
 * never sooner than 2 x fence_after + a margin after its last heartbeat:
 * by then its tasks' supervisors have stopped and killed them (hpqd(8)).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "array.h"
#include "context.h"
#include "control.h"
#include "log.h"
#include "msg.h"
#include "server.h"
#include "store.h"
#include "xalloc.h"

#define MASTER_PORT_BASE 20000
#define MASTER_PORT_SPAN 10000

struct agentlink {
	struct hpqd *d;
	uv_timer_t timer;            /* declares silent nodes lost */
	struct conn **conns;         /* by node id: the agent's connection, or NULL */
	uint32_t nconns;
};

/* A frame decided before the agent's RegisterReply went out. */
struct held_frame {
	struct held_frame *next;
	uint8_t *frame;
	size_t len;
};

/* An agent connection's session, from its Register on (conn.session). */
struct session {
	struct hpqd *d;
	struct node *node;           /* NULL once another connection took the node over */
	bool pushes_open;            /* RegisterReply sent: pushes go out at once */
	struct held_frame *held, **held_tail;
};

int agentlink_rank_on(const struct task *t, const char *node)
{
	for (uint32_t i = 0; i < t->n_node_names; i++)
		if (!strcmp(t->node_names[i], node))
			return (int)i;
	return -1;
}

/* ---------------------------------------------------------------- sending after commit */

struct run_job {
	struct hpqd *d;
	uint64_t task_id;
	uint32_t attempt;
};

static void send_run(struct hpqd *d, struct task *t, const struct store_run *run)
{
	struct state *st = &d->state;
	const struct node *master = state_node_find(st, t->node_names[0]);
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__RunTask rt = HPQ__RUN_TASK__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;

	rt.task_id = t->st.id;
	rt.attempt = t->attempts;
	rt.n_argv = t->argc;
	rt.argv = t->argv;
	rt.n_env = run->envc;
	rt.env = (char **)run->env;
	rt.cwd = t->cwd;
	rt.uid = t->uid;
	rt.gid = t->gid;
	rt.user = t->user;
	rt.checkpoint_dir = t->checkpoint_dir;
	if (t->ckpt.has) {
		rt.has_resume = true;
		rt.resume_from = t->ckpt.path;
		rt.resume_step = t->ckpt.step;
	}
	rt.nnodes = t->st.nnodes;
	rt.master_addr = master && *master->address ? master->address : t->node_names[0];
	rt.master_port = MASTER_PORT_BASE + (uint32_t)(t->st.id % MASTER_PORT_SPAN);
	rt.time_limit_s = t->time_limit_s;
	rt.preempt_signal = t->preempt_signal;
	rt.grace_s = state_task_grace(st, t);
	hpq_res_to_pb(t->st.per_node, &res);
	rt.resources = &res;
	rt.name = t->name;
	rt.cluster_id = d->cluster_id;
	/* the batch workflow: the agent writes the script, expands the
	 * patterns and sets the SLURM_* variables (agent/batch.h) */
	if (run->script) {
		rt.script.data = (uint8_t *)run->script;
		rt.script.len = run->script_len;
	}
	rt.output = t->output ? t->output : "";
	rt.error = t->error ? t->error : "";
	rt.has_array = t->array_id != 0;
	rt.array_id = t->array_id;
	rt.array_index = t->array_index;
	rt.n_node_names = t->n_node_names;
	rt.node_names = t->node_names;
	rt.slurm_env = d->cfg.slurm_env;
	rt.submit_dir = t->submit_dir ? t->submit_dir : "";
	rt.ntasks_per_node = t->ntasks_per_node;
	array_run_fields(st, t, &rt.array_min, &rt.array_max, &rt.array_count, &rt.array_step);
	env.body_case = HPQ__ENVELOPE__BODY_RUN_TASK;
	env.run_task = &rt;

	for (uint32_t r = 0; r < t->n_node_names; r++) {
		struct node *n = state_node_find(st, t->node_names[r]);

		struct conn *c = n ? agentlink_conn(d, n) : NULL;

		if (!c) {
			log_info("task %llu: node %s is away; attempt %u starts there when it "
				 "is back, or is requeued", (unsigned long long)t->st.id,
				 t->node_names[r], t->attempts);
			continue;
		}
		rt.node_rank = r;
		agentlink_push(c, &env);
	}
}

/* Still the same run, not yet sent (a Register may have sent it). */
static struct task *run_still_unsent(struct run_job *j)
{
	struct task *t = state_task_find(&j->d->state, j->task_id);

	if (t && t->run_unsent && t->attempts == j->attempt &&
	    (t->state == TASK_RUNNING || t->state == TASK_PREEMPTING))
		return t;
	return NULL;
}

/* The pending rest of t's array, if any, held by hpqd. */
static void hold_rest(struct hpqd *d, const struct task *t)
{
	struct array *a = t->array_id ? array_find(&d->state, t->array_id) : NULL;

	if (!a || a->held || array_set_empty(&a->pending))
		return;
	array_set_held(&d->state, a, true);
	state_event(&d->state, "hold", a->tmpl, NULL, "hpqd", "%llu pending indices of array "
		    "%llu held: its environment could not be read",
		    (unsigned long long)array_set_count(&a->pending), (unsigned long long)a->id);
}

/*
 * The START is committed, and the environment and script (task.c does
 * not keep them in memory while a task waits in the queue) were read in
 * its own transaction: the RunTask goes out now.
 */
static void on_start_committed(void *arg, int status, const struct store_run *run)
{
	static const struct actor hpqd_actor = { .user = "hpqd", .admin = true, .known = true };
	struct run_job *j = arg;
	struct task *t = status == 0 ? run_still_unsent(j) : NULL;
	struct state_err e;

	if (t && !run) {
		/* Never sent, so it runs nowhere: back to the queue, held. The
		 * dispatcher would start it again at once, and the same read
		 * would fail again, attempt after attempt, while nothing else
		 * got the node. */
		log_warn("task %llu attempt %u: cannot read its environment from the state "
			 "database; it is requeued and held (with its array's pending "
			 "rest): hpq release them once the database reads again",
			 (unsigned long long)j->task_id, j->attempt);
		t->run_unsent = false;
		state_task_requeue(&j->d->state, t, "its environment could not be read");
		/* An array's indices all read its first task's: its rest waits too,
		 * rather than each index being made a task to fail the same way. */
		hold_rest(j->d, t);
		if (t->state == TASK_PENDING &&
		    state_task_hold(&j->d->state, t, false, &hpqd_actor, &e) < 0)
			log_warn("task %llu: cannot hold it: %s", (unsigned long long)j->task_id,
				 e.msg);
	} else if (t) {
		t->run_unsent = false;
		send_run(j->d, t, run);
	}
	free(j);
}

void agentlink_run_after_commit(struct hpqd *d, struct task *t)
{
	struct run_job *j = xcalloc(1, sizeof(*j));
	uint64_t first = t->array_id ? t->array_id : t->st.id;

	j->d = d;
	j->task_id = t->st.id;
	j->attempt = t->attempts;
	/* An array's indices run its first task's environment and script. */
	store_read_run(d->store, first, t->has_script ? first : 0, on_start_committed, j);
}

struct kill_job {
	struct hpqd *d;
	uint64_t task_id;
	uint32_t attempt;
	int signo;
	uint64_t grace_s;
	char reason[16];
	size_t n;
	char *nodes[];
};

static void send_kill(struct conn *c, uint64_t task_id, uint32_t attempt, int signo,
		      uint64_t grace_s, const char *reason)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__KillTask kt = HPQ__KILL_TASK__INIT;

	kt.task_id = task_id;
	kt.attempt = attempt;
	kt.signal = signo;
	kt.grace_s = grace_s;
	kt.reason = (char *)reason;
	env.body_case = HPQ__ENVELOPE__BODY_KILL_TASK;
	env.kill_task = &kt;
	agentlink_push(c, &env);
}

static void on_kill_committed(void *arg, int status)
{
	struct kill_job *j = arg;

	for (size_t i = 0; i < j->n; i++) {
		struct node *n = state_node_find(&j->d->state, j->nodes[i]);

		struct conn *c = n ? agentlink_conn(j->d, n) : NULL;

		if (status == 0 && c)
			send_kill(c, j->task_id, j->attempt, j->signo, j->grace_s,
				  j->reason);
		free(j->nodes[i]);
	}
	free(j);
}

void agentlink_kill_after_commit(struct hpqd *d, const struct task *t, uint32_t attempt,
				 int skip_rank, int signo, uint64_t grace_s, const char *reason)
{
	struct kill_job *j = xcalloc(1, sizeof(*j) + t->n_node_names * sizeof(char *));

	j->d = d;
	j->task_id = t->st.id;
	j->attempt = attempt;
	j->signo = signo ? signo : t->preempt_signal;
	j->grace_s = grace_s;
	snprintf(j->reason, sizeof(j->reason), "%s", reason);
	/* Names now: the next START may give the task other nodes before the commit. */
	for (uint32_t r = 0; r < t->n_node_names; r++)
		if ((int)r != skip_rank)
			j->nodes[j->n++] = xstrdup(t->node_names[r]);
	store_after_commit(d->store, on_kill_committed, j);
}

struct limit_job {
	struct hpqd *d;
	uint64_t task_id;
	uint32_t attempt;
};

static void on_limit_committed(void *arg, int status)
{
	struct limit_job *j = arg;
	struct state *st = &j->d->state;
	struct task *t = state_task_find(st, j->task_id);
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__TaskLimit tl = HPQ__TASK_LIMIT__INIT;

	/* The attempt still runs; a later one gets the limit in its RunTask. */
	if (status == 0 && t && t->attempts == j->attempt && !t->run_unsent &&
	    (t->state == TASK_RUNNING || t->state == TASK_PREEMPTING)) {
		tl.task_id = j->task_id;
		tl.attempt = j->attempt;
		tl.time_limit_s = t->time_limit_s;
		env.body_case = HPQ__ENVELOPE__BODY_TASK_LIMIT;
		env.task_limit = &tl;
		for (uint32_t r = 0; r < t->n_node_names; r++) {
			struct node *n = state_node_find(st, t->node_names[r]);
			struct conn *c = n ? agentlink_conn(j->d, n) : NULL;

			if (c)
				agentlink_push(c, &env);
		}
	}
	free(j);
}

void agentlink_limit_after_commit(struct hpqd *d, const struct task *t)
{
	struct limit_job *j = xcalloc(1, sizeof(*j));

	j->d = d;
	j->task_id = t->st.id;
	j->attempt = t->attempts;
	store_after_commit(d->store, on_limit_committed, j);
}

struct conn_kill_job {
	struct conn *c;
	uint64_t task_id;
	uint32_t attempt;
	int signo;
	uint64_t grace_s;
	const char *reason;    /* a literal */
};

static void on_conn_kill_committed(void *arg, int status)
{
	struct conn_kill_job *j = arg;

	if (status == 0)
		send_kill(j->c, j->task_id, j->attempt, j->signo, j->grace_s, j->reason);
	server_unref(j->c);
	free(j);
}

void agentlink_kill_on(struct hpqd *d, struct conn *c, uint64_t task_id, uint32_t attempt,
		       int signo, uint64_t grace_s, const char *reason)
{
	struct conn_kill_job *j = xcalloc(1, sizeof(*j));

	j->c = c;
	j->task_id = task_id;
	j->attempt = attempt;
	j->signo = signo;
	j->grace_s = grace_s;
	j->reason = reason;
	server_ref(c);
	store_after_commit(d->store, on_conn_kill_committed, j);
}

/* ---------------------------------------------------------------- lost nodes */

void agentlink_lose_member(struct hpqd *d, struct task *t, int rank, const char *why)
{
	uint32_t attempt = t->attempts;

	state_task_requeue(&d->state, t, why);
	if (t->n_node_names > 1)
		agentlink_kill_after_commit(d, t, attempt, rank, SIGKILL, 0, "stale");
}

static void lose_node(struct hpqd *d, struct node *n)
{
	struct state *st = &d->state;
	struct task_member *m, *next;
	char why[128];

	state_node_lost(st, n);
	snprintf(why, sizeof(why), "node %s lost", n->name);
	node_for_each_member(m, next, n) {
		struct task *t = m->t;
		int rank = (int)m->rank;

		if (t->done[rank] != '1')
			agentlink_lose_member(d, t, rank, why);
	}
}

int agentlink_evacuate(struct hpqd *d, struct node *n, const char *why)
{
	struct state *st = &d->state;
	struct task_member *m, *next;
	int count = 0;

	node_for_each_member(m, next, n) {
		struct task *t = m->t;
		uint32_t attempt = t->attempts;

		if (t->done[m->rank] == '1')
			continue;
		state_task_requeue(st, t, why);
		/* Every member, this node's too: the task resumes elsewhere. */
		agentlink_kill_after_commit(d, t, attempt, -1, SIGKILL, 0, "node-repair");
		count++;
	}
	return count;
}

static void check_nodes(struct hpqd *d)
{
	struct state *st = &d->state;
	uint64_t now = uv_now(d->loop), limit = config_unreachable_ms(&d->cfg);

	/* Never before a fenced node's supervisors have surely killed its
	 * tasks (config_fence_check makes this the rule at start already). */
	if (limit < config_fence_ms(&d->cfg))
		limit = config_fence_ms(&d->cfg);

	for (uint32_t i = 0; i < st->nnodes; i++) {
		struct node *n = st->nodes[i];
		uint64_t since;

		if (!n)              /* removed (hpq node remove) */
			continue;
		/* Launched by the autoscaler, never heard from yet: its own
		 * launch timeout decides (autoscale.c), not this one. */
		if (!strcmp(n->service, "launching"))
			continue;
		since = n->seen_mono > d->start_mono ? n->seen_mono : d->start_mono;
		if (n->lost || now - since <= limit)
			continue;
		struct conn *c = agentlink_conn(d, n);

		if (c) {
			log_warn("node %s: no heartbeat for %llu ms: dropping its connection",
				 n->name, (unsigned long long)(now - since));
			server_close(c);
		}
		lose_node(d, n);
	}
}

static void on_node_timer(uv_timer_t *h)
{
	struct agentlink *al = container_of(h, struct agentlink, timer);

	al->d->node_checks++;
	check_nodes(al->d);
}

/* ---------------------------------------------------------------- sessions */

struct node *agentlink_node(const struct conn *c)
{
	const struct session *s = c->session;

	return s ? s->node : NULL;
}

static void held_free(struct session *s)
{
	while (s->held) {
		struct held_frame *h = s->held;

		s->held = h->next;
		free(h->frame);
		free(h);
	}
	s->held_tail = &s->held;
}

/* The connection died: the node keeps its tasks but gets no new ones. */
static void on_conn_close(struct conn *c)
{
	struct session *s = c->session;
	struct node *n = s->node;

	c->session = NULL;
	c->on_close = NULL;
	if (n && agentlink_conn(s->d, n) == c) {
		s->d->agents->conns[n->id] = NULL;
		n->seen_mono = uv_now(s->d->loop);
		state_node_disconnected(&s->d->state, n);
	}
	held_free(s);
	free(s);
}

struct conn *agentlink_conn(struct hpqd *d, const struct node *n)
{
	const struct agentlink *al = d->agents;

	return al && n->id < al->nconns ? al->conns[n->id] : NULL;
}

void agentlink_take_over(struct hpqd *d, struct node *n, struct conn *c)
{
	struct conn *prev = agentlink_conn(d, n);
	struct session *s;

	if (!prev || prev == c)
		return;
	log_notice("node %s registers again: dropping its previous connection (%s)", n->name,
		   prev->peer);
	s = prev->session;
	if (s)
		s->node = NULL;
	d->agents->conns[n->id] = NULL;
	server_close(prev);
}

void agentlink_attach(struct hpqd *d, struct conn *c, struct node *n)
{
	struct agentlink *al = d->agents;
	struct session *s = xcalloc(1, sizeof(*s));

	s->d = d;
	s->node = n;
	s->held_tail = &s->held;
	if (n->id >= al->nconns) {
		uint32_t cap = n->id + 1 > 2 * al->nconns ? n->id + 1 : 2 * al->nconns;

		al->conns = xreallocarray(al->conns, cap, sizeof(*al->conns));
		memset(al->conns + al->nconns, 0, (cap - al->nconns) * sizeof(*al->conns));
		al->nconns = cap;
	}
	al->conns[n->id] = c;
	c->session = s;
	c->on_close = on_conn_close;
}

void agentlink_push(struct conn *c, const Hpq__Envelope *env)
{
	struct session *s = c->session;
	struct held_frame *h;

	if (c->dead || c->pseudo)
		return;
	if (!s || s->pushes_open) {
		server_send(c, env);
		return;
	}
	h = xcalloc(1, sizeof(*h));
	h->frame = hpq_msg_encode(env, &h->len);
	*s->held_tail = h;
	s->held_tail = &h->next;
}

void agentlink_open_pushes(struct conn *c, const Hpq__Envelope *reply)
{
	struct session *s = c->session;

	server_send(c, reply);
	if (!s)
		return;
	s->pushes_open = true;
	while (s->held) {
		struct held_frame *h = s->held;

		s->held = h->next;
		server_send_frame(c, h->frame, h->len);
		free(h);
	}
	s->held_tail = &s->held;
}

/* ---------------------------------------------------------------- setup */

int agentlink_init(struct hpqd *d)
{
	struct agentlink *al = xcalloc(1, sizeof(*al));
	uint64_t every = d->cfg.heartbeat_ms / 2;
	int r;

	al->d = d;
	r = uv_timer_init(d->loop, &al->timer);
	if (r < 0) {
		free(al);
		return r;
	}
	d->agents = al;
	return uv_timer_start(&al->timer, on_node_timer, every, every);
}

static void on_closed(uv_handle_t *h)
{
	struct agentlink *al = container_of((uv_timer_t *)h, struct agentlink, timer);

	free(al->conns);
	free(al);
}

void agentlink_close(struct hpqd *d)
{
	struct agentlink *al = d->agents;

	if (!al)
		return;
	d->agents = NULL;
	uv_close((uv_handle_t *)&al->timer, on_closed);
}
