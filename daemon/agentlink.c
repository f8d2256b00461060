/*
 * agentlink.c: the agents' side of the daemon (agentlink.h).
 *
 * (task id, attempt) names one run everywhere. An agent's report about a
 * run is "expected" when the daemon has that task RUNNING or PREEMPTING,
 * at that attempt, with that node among its members; only expected exits
 * change anything, so a duplicate or late report is harmless. Every
 * answer to an agent's report (TaskUpdate Ok, RegisterReply) is sent
 * after the commit of what the report changed, and after any commit
 * still in flight, because completions run in order: an agent that
 * forgets an outcome on our Ok can never see it forgotten by us.
 *
 * Reconciliation at Register, per the agent's task list:
 *   expected and running          -> adopt (it runs; nothing to send)
 *   expected and exited           -> apply the outcome
 *   running but not expected      -> KillTask "stale"
 * and for the daemon's runs on that node that the agent did not list
 * (and whose member there had not already finished) -> requeue, killing
 * the gang's other members. A START whose RunTask has not gone out yet is
 * left alone: its completion sends RunTask on the new connection.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "agentlink.h"
#include "error.h"
#include "hpq.h"
#include "hpqd.h"
#include "log.h"
#include "msg.h"
#include "repair.h"
#include "rpc.h"
#include "server.h"
#include "store.h"
#include "xalloc.h"

#define MASTER_PORT_BASE 20000
#define MASTER_PORT_SPAN 10000

static int rank_on(const struct task *t, const char *node)
{
	for (uint32_t i = 0; i < t->n_node_names; i++)
		if (!strcmp(t->node_names[i], node))
			return (int)i;
	return -1;
}

/* The rank of node in the current attempt of task, if this report is about it. */
static int expected_rank(struct state *st, uint64_t task_id, uint32_t attempt,
			 const struct node *n, struct task **ret_task)
{
	struct task *t = state_task_find(st, task_id);

	if (!t || (t->state != TASK_RUNNING && t->state != TASK_PREEMPTING) ||
	    t->attempts != attempt)
		return -1;
	*ret_task = t;
	return rank_on(t, n->name);
}

/* ---------------------------------------------------------------- sending after commit */

struct run_job {
	struct hpqd *d;
	uint64_t task_id;
	uint32_t attempt;
};

static void send_run(struct hpqd *d, struct task *t)
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
	rt.n_env = t->envc;
	rt.env = t->env;
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
	rt.grace_s = t->grace_s ? t->grace_s : st->policy.grace_s;
	hpq_res_to_pb(t->st.per_node, &res);
	rt.resources = &res;
	rt.name = t->name;
	env.body_case = HPQ__ENVELOPE__BODY_RUN_TASK;
	env.run_task = &rt;

	for (uint32_t r = 0; r < t->n_node_names; r++) {
		struct node *n = state_node_find(st, t->node_names[r]);

		if (!n || !n->conn) {
			log_info("task %llu: node %s is away; attempt %u starts there when it "
				 "is back, or is requeued", (unsigned long long)t->st.id,
				 t->node_names[r], t->attempts);
			continue;
		}
		rt.node_rank = r;
		server_push(n->conn, &env);
	}
}

static void on_start_committed(void *arg, int status)
{
	struct run_job *j = arg;
	struct task *t = state_task_find(&j->d->state, j->task_id);

	/* Still the same run, not yet sent (a Register may have sent it). */
	if (status == 0 && t && t->run_unsent && t->attempts == j->attempt &&
	    (t->state == TASK_RUNNING || t->state == TASK_PREEMPTING)) {
		t->run_unsent = false;
		send_run(j->d, t);
	}
	free(j);
}

void agentlink_run_after_commit(struct hpqd *d, struct task *t)
{
	struct run_job *j = xcalloc(1, sizeof(*j));

	j->d = d;
	j->task_id = t->st.id;
	j->attempt = t->attempts;
	store_after_commit(d->store, on_start_committed, j);
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
	server_push(c, &env);
}

static void on_kill_committed(void *arg, int status)
{
	struct kill_job *j = arg;

	for (size_t i = 0; i < j->n; i++) {
		struct node *n = state_node_find(&j->d->state, j->nodes[i]);

		if (status == 0 && n && n->conn)
			send_kill(n->conn, j->task_id, j->attempt, j->signo, j->grace_s,
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

/* Kills one run on one connection, after the commit of whatever is in flight. */
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

static void kill_on(struct conn *c, uint64_t task_id, uint32_t attempt, int signo,
		    uint64_t grace_s, const char *reason)
{
	struct conn_kill_job *j = xcalloc(1, sizeof(*j));

	j->c = c;
	j->task_id = task_id;
	j->attempt = attempt;
	j->signo = signo;
	j->grace_s = grace_s;
	j->reason = reason;
	server_ref(c);
	store_after_commit(c->d->store, on_conn_kill_committed, j);
}

static void kill_stale(struct conn *c, uint64_t task_id, uint32_t attempt)
{
	log_notice("node %s runs task %llu attempt %u, which is not expected there: killing it",
		   c->user, (unsigned long long)task_id, attempt);
	kill_on(c, task_id, attempt, SIGKILL, 0, "stale");
}

/*
 * An adopted run that should be stopping: its KillTask may have been lost
 * with the agent's previous connection (or the daemon's previous life).
 * Saying it again is harmless; the agent is already stopping it or starts to.
 */
static void kill_again_if_stopping(struct conn *c, const struct task *t)
{
	uint64_t grace = t->grace_s ? t->grace_s : c->d->state.policy.grace_s;

	if (t->cancel_requested)
		kill_on(c, t->st.id, t->attempts, SIGTERM, grace, "cancelled");
	else if (t->state == TASK_PREEMPTING)
		kill_on(c, t->st.id, t->attempts, t->preempt_signal, grace, "preempted");
}

/* ---------------------------------------------------------------- outcomes */

static void apply_exit(struct hpqd *d, struct task *t, int rank, const Hpq__AgentTask *at)
{
	uint32_t attempt = t->attempts;
	enum member_exit x;

	x = state_task_member_exit(&d->state, t, (uint32_t)rank, at->exit_code, at->reason);
	/* A gang member's end ends the attempt: stop the others. */
	if ((x == EXIT_ENDED || x == EXIT_REQUEUED) && t->n_node_names > 1)
		agentlink_kill_after_commit(d, t, attempt, rank, SIGKILL, 0, "stale");
}

/* The run of t lost its member on node n: requeue it, kill the rest of the gang. */
static void lose_member(struct hpqd *d, struct task *t, int rank, const char *why)
{
	uint32_t attempt = t->attempts;

	state_task_requeue(&d->state, t, why);
	if (t->n_node_names > 1)
		agentlink_kill_after_commit(d, t, attempt, rank, SIGKILL, 0, "stale");
}

/* ---------------------------------------------------------------- messages */

struct register_reply {
	struct conn *c;
	uint64_t id;
};

static void on_register_committed(void *arg, int status)
{
	struct register_reply *rr = arg;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__RegisterReply rep = HPQ__REGISTER_REPLY__INIT;

	if (status < 0) {
		server_send_error(rr->c, rr->id, status, "the registration could not be stored");
	} else {
		rep.heartbeat_s = (uint32_t)(rr->c->d->cfg.heartbeat_ms / 1000);
		/* Read now, not at registration: the commit took a while, and
		 * the agent measures its clock offset from this. */
		rep.daemon_time = hpq_now_ms();
		env.id = rr->id;
		env.body_case = HPQ__ENVELOPE__BODY_REGISTER_REPLY;
		env.register_reply = &rep;
		server_open_pushes(rr->c, &env);
	}
	server_unref(rr->c);
	free(rr);
}

static bool listed(const Hpq__Register *m, uint64_t task_id, uint32_t attempt)
{
	for (size_t i = 0; i < m->n_tasks; i++)
		if (m->tasks[i] && m->tasks[i]->task_id == task_id &&
		    m->tasks[i]->attempt == attempt)
			return true;
	return false;
}

int agentlink_register(struct conn *c, uint64_t id, const Hpq__Register *m, struct state_err *e)
{
	struct hpqd *d = c->d;
	struct state *st = &d->state;
	Hpq__Register reg = *m;
	struct register_reply *rr;
	struct node *n, *old;
	char why[128];
	int r;

	if (c->node)
		return state_errf(e, HPQ_EPROTO, "this connection has registered already");
	if (!*reg.name)
		reg.name = c->user;
	if (strcmp(reg.name, c->user))
		return state_errf(e, HPQ_EPROTO, "Register names node '%.64s' but Hello said '%s'",
				  reg.name, c->user);
	if (m->n_tasks > 65536)
		return state_errf(e, HPQ_EINVAL, "%zu tasks in one Register are too many",
				  m->n_tasks);
	for (size_t i = 0; i < m->n_tasks; i++)
		if (!m->tasks[i])
			return state_errf(e, HPQ_EINVAL, "empty task in Register");

	old = state_node_find(st, reg.name);
	if (old && old->conn && old->conn != c) {
		struct conn *prev = old->conn;

		log_notice("node %s registers again: dropping its previous connection (%s)",
			   reg.name, prev->peer);
		prev->node = NULL;
		old->conn = NULL;
		server_close(prev);
	}
	r = state_node_register(st, &reg, c->software ? c->software : "", c, &n, e);
	if (r < 0)
		return r;
	c->node = n;
	n->seen_mono = uv_now(d->loop);
	repair_node_seen(d, n, false);

	/* What the agent has. */
	for (size_t i = 0; i < m->n_tasks; i++) {
		const Hpq__AgentTask *at = m->tasks[i];
		struct task *t = NULL;
		int rank = expected_rank(st, at->task_id, at->attempt, n, &t);

		if (at->exited) {
			if (rank >= 0)
				apply_exit(d, t, rank, at);
		} else if (rank >= 0) {
			t->run_unsent = false;
			log_info("task %llu attempt %u: adopted on %s",
				 (unsigned long long)t->st.id, t->attempts, n->name);
			kill_again_if_stopping(c, t);
		} else {
			kill_stale(c, at->task_id, at->attempt);
		}
	}
	/* What the agent should have and does not. */
	snprintf(why, sizeof(why), "its agent on %s no longer had it", n->name);
	for (struct dlist *l = st->running.next, *next; l != &st->running; l = next) {
		struct task *t = container_of(l, struct task, run_link);
		int rank = rank_on(t, n->name);

		next = l->next;
		if (rank < 0 || t->run_unsent || t->done[rank] == '1' ||
		    listed(m, t->st.id, t->attempts))
			continue;
		lose_member(d, t, rank, why);
	}

	rr = xcalloc(1, sizeof(*rr));
	rr->c = c;
	rr->id = id;
	server_ref(c);
	store_after_commit(d->store, on_register_committed, rr);
	return 0;
}

int agentlink_heartbeat(struct conn *c, uint64_t id, const Hpq__Heartbeat *m,
			struct state_err *e)
{
	if (!c->node)
		return state_errf(e, HPQ_EPROTO, "register first");
	c->node->seen_mono = uv_now(c->d->loop);
	state_node_heartbeat(&c->d->state, c->node, m);
	repair_node_seen(c->d, c->node, true);
	if (id)
		server_send_ok(c, id);
	return 0;
}

int agentlink_task_update(struct conn *c, uint64_t id, const Hpq__TaskUpdate *m,
			  struct state_err *e)
{
	struct state *st = &c->d->state;
	const Hpq__AgentTask *at = m->task;
	struct task *t = NULL;
	int rank;

	if (!c->node)
		return state_errf(e, HPQ_EPROTO, "register first");
	if (!at)
		return state_errf(e, HPQ_EINVAL, "TaskUpdate without a task");
	c->node->seen_mono = uv_now(c->d->loop);
	rank = expected_rank(st, at->task_id, at->attempt, c->node, &t);
	if (at->exited) {
		if (rank >= 0)
			apply_exit(c->d, t, rank, at);
	} else if (rank >= 0) {
		t->run_unsent = false;
	} else {
		kill_stale(c, at->task_id, at->attempt);
	}
	/* Ok after the commit of this outcome and of any earlier one it repeats. */
	if (id)
		rpc_ok_after_commit(c, id);
	return 0;
}

void agentlink_disconnected(struct conn *c)
{
	struct node *n = c->node;

	c->node = NULL;
	if (!n || n->conn != c)
		return;
	n->seen_mono = uv_now(c->d->loop);
	state_node_disconnected(&c->d->state, n);
}

/* ---------------------------------------------------------------- lost nodes */

static void lose_node(struct hpqd *d, struct node *n)
{
	struct state *st = &d->state;
	char why[128];

	state_node_lost(st, n);
	snprintf(why, sizeof(why), "node %s lost", n->name);
	for (struct dlist *l = st->running.next, *next; l != &st->running; l = next) {
		struct task *t = container_of(l, struct task, run_link);
		int rank = rank_on(t, n->name);

		next = l->next;
		if (rank >= 0 && t->done[rank] != '1')
			lose_member(d, t, rank, why);
	}
}

int agentlink_evacuate(struct hpqd *d, struct node *n, const char *why)
{
	struct state *st = &d->state;
	int count = 0;

	for (struct dlist *l = st->running.next, *next; l != &st->running; l = next) {
		struct task *t = container_of(l, struct task, run_link);
		uint32_t attempt = t->attempts;
		int rank = rank_on(t, n->name);

		next = l->next;
		if (rank < 0 || t->done[rank] == '1')
			continue;
		state_task_requeue(st, t, why);
		/* Every member, this node's too: the task resumes elsewhere. */
		agentlink_kill_after_commit(d, t, attempt, -1, SIGKILL, 0, "node-repair");
		count++;
	}
	return count;
}

void agentlink_check_nodes(struct hpqd *d)
{
	struct state *st = &d->state;
	uint64_t now = uv_now(d->loop), limit = config_unreachable_ms(&d->cfg);

	for (uint32_t i = 0; i < st->nnodes; i++) {
		struct node *n = st->nodes[i];
		uint64_t since = n->seen_mono > d->start_mono ? n->seen_mono : d->start_mono;

		if (n->lost || now - since <= limit)
			continue;
		if (n->conn) {
			struct conn *c = n->conn;

			log_warn("node %s: no heartbeat for %llu ms: dropping its connection",
				 n->name, (unsigned long long)(now - since));
			server_close(c);
		}
		lose_node(d, n);
	}
}

static void on_node_timer(uv_timer_t *h)
{
	struct hpqd *d = container_of(h, struct hpqd, node_timer);

	d->node_checks++;
	agentlink_check_nodes(d);
}

int agentlink_start(struct hpqd *d)
{
	uint64_t every = d->cfg.heartbeat_ms / 2;
	int r;

	r = uv_timer_init(d->loop, &d->node_timer);
	if (r < 0)
		return r;
	return uv_timer_start(&d->node_timer, on_node_timer, every, every);
}
