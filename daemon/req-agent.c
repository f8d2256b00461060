/*
 * req-agent.c: what agents send: Register with reconciliation, heartbeats
 * (with a task's own warnings), task updates, and the answers to our
 * pushes (request.h).
 *
 * An agent's report about a run is "expected" when the daemon has that
 * task RUNNING or PREEMPTING, at that attempt, with that node among its
 * members; only expected exits change anything, so a duplicate or late
 * report is harmless. Every answer to an agent's report (TaskUpdate Ok,
 * RegisterReply) is sent after the commit of what the report changed, and
 * after any commit still in flight, because completions run in order: an
 * agent that forgets an outcome on our Ok can never see it forgotten by us.
 *
 * Reconciliation at Register, per the agent's task list:
 *   expected and running          -> adopt (it runs; nothing to send)
 *   expected and exited           -> apply the outcome
 *   exited but not expected       -> ignored (a security event if foreign)
 *   running but not expected      -> KillTask "stale"
 * and for the daemon's runs on that node that the agent did not list
 * (and whose member there had not already finished) -> requeue, killing
 * the gang's other members. A START whose RunTask has not gone out yet is
 * left alone: its completion sends RunTask on the new connection.
 * A Register takes a node over from another connection only once that one
 * has gone quiet (check_live_peer).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "clock.h"
#include "context.h"
#include "error.h"
#include "log.h"
#include "logs.h"
#include "request.h"
#include "server.h"
#include "store.h"
#include "trust.h"
#include "xalloc.h"

#define MAX_REGISTER_TASKS 65536

/* The rank of node in the current attempt of task, if this report is about it. */
static int expected_rank(struct state *st, uint64_t task_id, uint32_t attempt,
			 const struct node *n, struct task **ret_task)
{
	struct task *t = state_task_find(st, task_id);

	if (!t || (t->state != TASK_RUNNING && t->state != TASK_PREEMPTING) ||
	    t->attempts != attempt)
		return -1;
	*ret_task = t;
	return agentlink_rank_on(t, n->name);
}

/*
 * A report no honest agent sends: about the current attempt of a task
 * that does not run on its node, or an attempt that was never made (0
 * never is), or a task that never existed. (An older attempt is only stale: the node ran
 * it once, and is told to stop it.)
 */
static bool foreign(struct state *st, const Hpq__AgentTask *at, const struct node *n)
{
	struct task *t = state_task_find(st, at->task_id);

	if (!t)
		return at->task_id >= st->next_id;
	if (at->attempt == 0 || at->attempt > t->attempts)
		return true;
	return at->attempt == t->attempts && agentlink_rank_on(t, n->name) < 0;
}

static void apply_exit(struct hpqd *d, struct task *t, int rank, const Hpq__AgentTask *at)
{
	uint32_t attempt = t->attempts;
	enum member_exit x;

	/* What its cgroup saw, once per member (a repeated report is ignored
	 * below), before the exit records the row. */
	if (t->done && strlen(t->done) > (size_t)rank && t->done[rank] != '1') {
		if (at->peak_mem > t->peak_mem)
			t->peak_mem = at->peak_mem;
		t->cpu_usec += at->cpu_usec;
	}
	/* An OOM kill explains an exit or a signal; a stop hpqd or the agent
	 * started (timeout, preempted, fenced, ...) keeps its own reason. */
	x = state_task_member_exit(&d->state, t, (uint32_t)rank, at->exit_code,
				   at->oom && (!*at->reason || !strcmp(at->reason, "exit") ||
					       !strcmp(at->reason, "signal")) ? "oom" : at->reason);
	/* A gang member's end ends the attempt: stop the others. */
	if ((x == EXIT_ENDED || x == EXIT_REQUEUED) && t->n_node_names > 1)
		agentlink_kill_after_commit(d, t, attempt, rank, SIGKILL, 0, "stale");
}

static void kill_stale(struct hpqd *d, struct conn *c, uint64_t task_id, uint32_t attempt)
{
	/* An agent reads KillTask attempt 0 as "whichever attempt runs here":
	 * a report about attempt 0, which no run ever is, must not stop the
	 * current one. */
	if (!attempt) {
		log_notice("node %s reports task %llu attempt 0, which no run is: ignored",
			   c->user, (unsigned long long)task_id);
		return;
	}
	log_notice("node %s runs task %llu attempt %u, which is not expected there: killing it",
		   c->user, (unsigned long long)task_id, attempt);
	agentlink_kill_on(d, c, task_id, attempt, SIGKILL, 0, "stale");
}

/*
 * An adopted run that should be stopping: its KillTask may have been lost
 * with the agent's previous connection (or the daemon's previous life).
 * Saying it again is harmless; the agent is already stopping it or starts to.
 */
static void kill_again_if_stopping(struct hpqd *d, struct conn *c, const struct task *t)
{
	uint64_t grace = state_task_stop_grace(&d->state, t);

	if (t->cancel_requested)
		agentlink_kill_on(d, c, t->st.id, t->attempts, SIGTERM, grace, "cancelled");
	else if (t->state == TASK_PREEMPTING)
		agentlink_kill_on(d, c, t->st.id, t->attempts, t->preempt_signal, grace,
				  "preempted");
}

/* ---------------------------------------------------------------- register */

struct register_reply {
	struct conn *c;
	uint64_t id;
	uint32_t heartbeat_s;
	uint64_t fence_after_ms;
};

static void on_register_committed(void *arg, int status)
{
	struct register_reply *rr = arg;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__RegisterReply rep = HPQ__REGISTER_REPLY__INIT;

	if (status < 0) {
		server_send_error(rr->c, rr->id, status, "the registration could not be stored");
	} else {
		rep.heartbeat_s = rr->heartbeat_s;
		rep.fence_after_ms = rr->fence_after_ms;
		/* Read now, not at registration: the commit took a while, and
		 * the agent measures its clock offset from this. */
		rep.daemon_time = hpq_now_ms();
		env.id = rr->id;
		env.body_case = HPQ__ENVELOPE__BODY_REGISTER_REPLY;
		env.register_reply = &rep;
		agentlink_open_pushes(rr->c, &env);
	}
	server_answered(rr->c);
	free(rr);
}

/*
 * A second connection may take a node over only from one that has gone
 * quiet (a half-open TCP connection of an agent that reconnected). While
 * the node's agent still beats on its own connection, a Register under
 * its name is another machine's (a cloned host, a mistyped --name): taken
 * over, the node's runs it does not list would be requeued while they
 * still run, and the two would take the name from each other for ever.
 * A live agent beats every heartbeat interval; two give it room.
 */
static int check_live_peer(struct hpqd *d, const struct conn *c, const char *name,
			   struct state_err *e)
{
	const struct node *n = state_node_find(&d->state, name);
	const struct conn *prev = n ? agentlink_conn(d, n) : NULL;
	uint64_t quiet;

	if (!prev || prev == c)
		return 0;
	quiet = uv_now(d->loop) - n->seen_mono;
	if (quiet >= 2 * d->cfg.heartbeat_ms)
		return 0;
	log_warn("node %s: a second agent (%s) registers while the first (%s) is connected "
		 "and was heard from %llu ms ago: refused", name, c->peer, prev->peer,
		 (unsigned long long)quiet);
	return state_errf(e, HPQ_EBUSY, "node %s is connected from %s and heard from: a second "
			  "agent cannot register under its name", name, prev->peer);
}

static bool listed(const Hpq__Register *m, uint64_t task_id, uint32_t attempt)
{
	for (size_t i = 0; i < m->n_tasks; i++)
		if (m->tasks[i] && m->tasks[i]->task_id == task_id &&
		    m->tasks[i]->attempt == attempt)
			return true;
	return false;
}

int req_register(struct req *q)
{
	struct hpqd *d = q->d;
	struct conn *c = q->c;
	struct state *st = &d->state;
	const Hpq__Register *m = q->env->register_;
	Hpq__Register reg = *m;
	struct register_reply *rr;
	struct node *n;
	struct task_member *mb, *next;
	char why[128];
	int r;

	if (agentlink_node(c))
		return state_errf(q->e, HPQ_EPROTO, "this connection has registered already");
	if (!*reg.name)
		reg.name = c->user;
	if (strcmp(reg.name, c->user))
		return state_errf(q->e, HPQ_EPROTO,
				  "Register names node '%.64s' but Hello said '%s'", reg.name,
				  c->user);
	/* Over TLS the node is its certificate's: still valid, and in its pool. */
	if (c->has_cert) {
		r = state_cert_check(st, c->cert.serial, c->cert.cn, q->e);
		if (r < 0) {
			state_security(st, c->user, NULL, c->user, "%s: %s", c->peer, q->e->msg);
			return r;
		}
		if (*c->cert.ou && !*reg.pool)
			reg.pool = c->cert.ou;
		if (*c->cert.ou && strcmp(reg.pool, c->cert.ou))
			return state_errf(q->e, HPQ_EPERM, "node %s joined pool %s: it cannot "
					  "register in pool %.64s (its agent's --pool)", c->user,
					  c->cert.ou, reg.pool);
	}
	if (m->n_tasks > MAX_REGISTER_TASKS)
		return state_errf(q->e, HPQ_EINVAL, "%zu tasks in one Register are too many",
				  m->n_tasks);
	for (size_t i = 0; i < m->n_tasks; i++)
		if (!m->tasks[i])
			return state_errf(q->e, HPQ_EINVAL, "empty task in Register");

	r = check_live_peer(d, c, reg.name, q->e);
	if (r < 0)
		return r;
	/* A refused Register changes nothing: the node's connection, if it
	 * has one, goes only once this one has taken the node. */
	r = state_node_register(st, &reg, c->software ? c->software : "", &n, q->e);
	if (r < 0)
		return r;
	agentlink_take_over(d, n, c);
	agentlink_attach(d, c, n);
	n->seen_mono = uv_now(d->loop);

	/* What the agent has. */
	for (size_t i = 0; i < m->n_tasks; i++) {
		const Hpq__AgentTask *at = m->tasks[i];
		struct task *t = NULL;
		int rank = expected_rank(st, at->task_id, at->attempt, n, &t);

		if (at->exited) {
			if (rank >= 0)
				apply_exit(d, t, rank, at);
			else if (foreign(st, at, n))
				state_security(st, n->name, NULL, n->name, "Register reports the "
					       "exit of task %llu attempt %u, which does not run "
					       "on %s: ignored",
					       (unsigned long long)at->task_id, at->attempt,
					       n->name);
		} else if (rank >= 0) {
			t->run_unsent = false;
			log_info("task %llu attempt %u: adopted on %s",
				 (unsigned long long)t->st.id, t->attempts, n->name);
			kill_again_if_stopping(d, c, t);
		} else {
			if (foreign(st, at, n))
				state_security(st, n->name, NULL, n->name, "Register lists task %llu "
					       "attempt %u, which does not run on %s",
					       (unsigned long long)at->task_id, at->attempt,
					       n->name);
			kill_stale(d, c, at->task_id, at->attempt);
		}
	}
	/* What the agent should have and does not. */
	snprintf(why, sizeof(why), "its agent on %s no longer had it", n->name);
	node_for_each_member(mb, next, n) {
		struct task *t = mb->t;
		int rank = (int)mb->rank;

		if (t->run_unsent || t->done[rank] == '1' || listed(m, t->st.id, t->attempts))
			continue;
		agentlink_lose_member(d, t, rank, why);
	}

	rr = xcalloc(1, sizeof(*rr));
	rr->c = c;
	rr->id = q->id;
	rr->heartbeat_s = (uint32_t)(d->cfg.heartbeat_ms / 1000);
	rr->fence_after_ms = d->cfg.fence_after_ms;
	server_awaits(c);
	store_after_commit(d->store, on_register_committed, rr);
	return 0;
}

/* ---------------------------------------------------------------- reports */

#define TASK_WARNINGS_MAX 16       /* taken from one heartbeat; the agent sends one */
#define TASK_WARNING_REASON_MAX 64
#define TASK_WARNING_MESSAGE_MAX 400

static bool warning_text_ok(const char *s, size_t max, bool word)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if (word ? !((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-')
			 : ((unsigned char)*s < 0x20 || *s == 0x7f))
			return false;
	return true;
}

/*
 * A task's own problem, seen by its node (a full checkpoint directory,
 * say; proto TaskWarning): an event of the task, kind "warning", and
 * nothing else: the task runs on, the node's health is not touched. Only
 * about the current attempt of a task this node runs; anything else, or a
 * malformed warning, is dropped with a log line, and the heartbeat that
 * carried it still counts. The agent sends one per change, so there is no
 * flood to damp here beyond a cap per heartbeat.
 */
static void task_warnings(struct hpqd *d, const struct node *n, const Hpq__Heartbeat *hb)
{
	for (size_t i = 0; i < hb->n_task_warnings; i++) {
		const Hpq__TaskWarning *w = hb->task_warnings[i];
		struct task *t = NULL;

		if (i == TASK_WARNINGS_MAX) {
			log_info("node %s: %zu task warnings in one heartbeat; the first %d taken",
				 n->name, hb->n_task_warnings, TASK_WARNINGS_MAX);
			return;
		}
		if (!warning_text_ok(w->reason, TASK_WARNING_REASON_MAX, true) ||
		    !warning_text_ok(w->message, TASK_WARNING_MESSAGE_MAX, false)) {
			log_info("node %s: a malformed warning about task %llu dropped", n->name,
				 (unsigned long long)w->task_id);
			continue;
		}
		if (expected_rank(&d->state, w->task_id, w->attempt, n, &t) < 0) {
			log_info("node %s: warning %s about task %llu attempt %u, which does not "
				 "run there now: dropped", n->name, w->reason,
				 (unsigned long long)w->task_id, w->attempt);
			continue;
		}
		state_event(&d->state, "warning", t, n->name, NULL, "%s: %s", w->reason,
			    w->message);
	}
}

/*
 * An agent beats once a heartbeat interval (a second at the least), and
 * again when its findings change. Beats far faster than that (a broken or
 * hostile agent) are ignored beyond HEARTBEAT_BURST a second: each would
 * cost the loop a findings update, and findings that changed with every
 * beat a database write. They still show the node is alive, and a beat
 * sent as a request (fencing) is still answered.
 */
#define HEARTBEAT_BURST 20

static bool heartbeat_flood(struct node *n, uint64_t now)
{
	if (now - n->beat_window_mono >= 1000) {
		n->beat_window_mono = now;
		n->beats_in_window = 0;
	}
	if (++n->beats_in_window <= HEARTBEAT_BURST)
		return false;
	if (n->beats_in_window == HEARTBEAT_BURST + 1)
		log_notice("node %s sends more than %d heartbeats a second: ignoring the rest "
			   "of this second's", n->name, HEARTBEAT_BURST);
	return true;
}

int req_heartbeat(struct req *q)
{
	struct node *n = agentlink_node(q->c);

	if (!n)
		return state_errf(q->e, HPQ_EPROTO, "register first");
	n->seen_mono = uv_now(q->d->loop);
	if (heartbeat_flood(n, n->seen_mono)) {
		if (q->id)
			server_send_ok(q->c, q->id);
		return 0;
	}
	state_node_heartbeat(&q->d->state, n, q->env->heartbeat);
	task_warnings(q->d, n, q->env->heartbeat);
	if (q->id)
		server_send_ok(q->c, q->id);
	return 0;
}

int req_task_update(struct req *q)
{
	struct hpqd *d = q->d;
	struct node *n = agentlink_node(q->c);
	const Hpq__AgentTask *at = q->env->task_update->task;
	struct task *t = NULL;
	int rank;

	if (!n)
		return state_errf(q->e, HPQ_EPROTO, "register first");
	if (!at)
		return state_errf(q->e, HPQ_EINVAL, "TaskUpdate without a task");
	n->seen_mono = uv_now(d->loop);
	rank = expected_rank(&d->state, at->task_id, at->attempt, n, &t);
	/* The router records the refusal as a security event. */
	if (rank < 0 && foreign(&d->state, at, n))
		return state_errf(q->e, HPQ_EPERM, "task %llu attempt %u does not run on node %s: "
				  "a node reports only its own tasks",
				  (unsigned long long)at->task_id, at->attempt, n->name);
	if (at->exited) {
		if (rank >= 0)
			apply_exit(d, t, rank, at);
	} else if (rank >= 0) {
		t->run_unsent = false;
	} else {
		kill_stale(d, q->c, at->task_id, at->attempt);
	}
	/* Ok after the commit of this outcome and of any earlier one it repeats. */
	if (q->id)
		server_ok_after_commit(q->c, q->id);
	return 0;
}

/* ---------------------------------------------------------------- answers to our pushes */

/* A relayed hpq logs request's answer (logs.c). */
int req_log_chunk(struct req *q)
{
	return logs_agent_reply(q->d->logs, q->c, q->env) ? 0 : HPQ_EPROTO;
}

/* Ok or Error: an agent acknowledging a push. Nothing waits for it, except
 * a relayed hpq logs request. */
int req_ack(struct req *q)
{
	if (logs_agent_reply(q->d->logs, q->c, q->env))
		return 0;
	if (q->env->body_case == HPQ__ENVELOPE__BODY_ERROR)
		log_info("%s: agent reports: %s", q->c->peer, q->env->error->message);
	return 0;
}
