/*
 * agent.c: the agent's rules between runner, journal, uplink and local
 * socket (listed in agent.h). Each handler does its work in the order
 * that keeps an outcome from being lost: act, journal, then report.
 *
 * Starts, exits and acknowledged exits do not save the journal each:
 * they mark it dirty, and agent_flush, at the end of the loop iteration
 * (an ev_prepare), saves it once and only then answers the RunTasks and
 * reports the starts and exits. A burst (hpqd sends its RunTasks
 * together, exits come together) costs one save, with its two fsyncs,
 * instead of one per task; the order is the same, only grouped. The
 * RunTasks themselves wait for agent_flush too, which starts them all
 * at once (exec_start_many: their start records reach the disk
 * together). Anything else that answers hpqd (a kill, a Register)
 * flushes first, so it finds the tasks asked for before it started.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "error.h"
#include "journal.h"
#include "log.h"
#include "logs.h"
#include "monitor.h"
#include "msg.h"
#include "path.h"
#include "xalloc.h"

static int agent_journal(struct agent *a)
{
	int r = journal_save(a->journal_path, &a->exec.tasks);

	if (r < 0)
		log_err("cannot write the journal '%s': %s; if the agent stops now, task "
			"outcomes may be lost", a->journal_path, hpq_strerror(r));
	else
		a->journal_dirty = false;
	return r;
}

/* A RunTask received, started by agent_flush with the others of its burst. */
struct agent_run {
	uint64_t msg_id;
	Hpq__RunTask *rt;           /* a copy: the uplink frees its own */
};

/* A RunTask that started a task (or found it here): answered by agent_flush. */
struct agent_started {
	uint64_t msg_id;            /* the RunTask's */
	uint64_t id;
	uint32_t attempt;
	bool report;                /* a start of this iteration: report it */
};

/* The journal is behind: saved, and what waits on it sent, before the
 * loop sleeps again. */
static void agent_dirty(struct agent *a)
{
	a->journal_dirty = true;
	ev_prepare_start(a->loop, &a->flush_w);
}

/*
 * The work directory could not record a task's start: a finding about the
 * node's own storage, until a probe write succeeds again. A failed start
 * is a fact, not a sample, so it counts at once whatever the threshold.
 */
static void agent_work_dir_bad(struct agent *a, const char *why)
{
	unsigned rounds = a->work_dir_bad ? 1 : a->health.cfg.threshold;

	if (!a->work_dir_health)
		a->work_dir_health = health_source_new(&a->health, "work-dir");
	a->work_dir_bad = true;
	for (unsigned i = 0; i < (rounds ? rounds : 1); i++) {
		health_see(a->work_dir_health, HEALTH_STORAGE, "work-dir-unwritable",
			   HEALTH_FATAL, NULL, "the agent's work directory %s cannot record task "
			   "starts (%s): tasks cannot start on this node", a->work_dir, why);
		health_done(a->work_dir_health);
	}
}

/* Can the work directory take a synced write again? */
static void agent_work_dir_probe(struct agent *a)
{
	char *path = NULL;
	int fd, r = 0;

	if (!a->work_dir_bad)
		return;
	xasprintf(&path, "%s/.probe", a->work_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, "probe\n", 6) != 6 || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(path);
	if (r < 0) {
		agent_work_dir_bad(a, hpq_strerror(r));
		return;
	}
	log_notice("the work directory %s takes writes again", a->work_dir);
	a->work_dir_bad = false;
	health_done(a->work_dir_health); /* nothing seen: the finding goes */
}

size_t agent_running(const struct agent *a)
{
	const struct task *t;
	size_t n = 0;

	dlist_for_each_entry(t, &a->exec.tasks, entry)
		n += !t->exited;
	return n;
}

/* ------------------------------------------------------------ reports */

static void agent_task_pb(const struct task *t, Hpq__AgentTask *pb)
{
	hpq__agent_task__init(pb);
	pb->task_id = t->id;
	pb->attempt = t->attempt;
	pb->running = !t->exited;
	pb->pid = t->pid;
	pb->exited = t->exited;
	pb->exit_code = t->exited ? t->exit_code : 0;
	pb->start_time = t->start_ms;
	pb->end_time = t->exited ? t->end_ms : 0;
	pb->reason = (char *)(t->exited ? t->reason : "");
	pb->oom = t->exited && t->oom;
	pb->peak_mem = t->peak_mem;
	pb->cpu_usec = t->cpu_usec;
}

static void agent_report_start(struct agent *a, const struct task *t)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__TaskUpdate up = HPQ__TASK_UPDATE__INIT;
	Hpq__AgentTask at;

	agent_task_pb(t, &at);
	up.task = &at;
	env.body_case = HPQ__ENVELOPE__BODY_TASK_UPDATE;
	env.task_update = &up;
	(void)uplink_send(&a->uplink, &env); /* not connected: Register will report it */
}

struct agent_exit_key {
	struct agent *agent;
	uint64_t id;
	uint32_t attempt;
};

static void agent_exit_answered(void *ctx, const Hpq__Envelope *reply)
{
	struct agent_exit_key *k = ctx;
	struct agent *a = k->agent;
	struct task *t = task_find(&a->exec.tasks, k->id, k->attempt);
	int code;

	free(k);
	if (!t || !t->exited)
		return;
	t->update_inflight = false;
	if (!reply)
		return; /* connection lost: sent again after the next registration */
	if (reply->body_case == HPQ__ENVELOPE__BODY_OK) {
		log_debug("task %" PRIu64 " attempt %" PRIu32 ": exit acknowledged", t->id,
			  t->attempt);
		exec_forget(&a->exec, t);
		agent_dirty(a);
		return;
	}
	code = reply->body_case == HPQ__ENVELOPE__BODY_ERROR && reply->error ? reply->error->code
									       : HPQ_EPROTO;
	if (code == HPQ_ENOTFOUND || code == HPQ_ESTATE || code == HPQ_EINVAL) {
		log_warn("task %" PRIu64 " attempt %" PRIu32 ": hpqd rejected its exit (%s); "
			 "dropping it", t->id, t->attempt,
			 reply->error && reply->error->message && reply->error->message[0]
				 ? reply->error->message : hpq_strerror(code));
		exec_forget(&a->exec, t);
		agent_dirty(a);
		return;
	}
	log_warn("task %" PRIu64 " attempt %" PRIu32 ": hpqd could not take its exit yet (%s); "
		 "will send it again", t->id, t->attempt, hpq_strerror(code));
}

static void agent_report_exit(struct agent *a, struct task *t)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__TaskUpdate up = HPQ__TASK_UPDATE__INIT;
	Hpq__AgentTask at;
	struct agent_exit_key *k;

	/* Not before the journal has it (agent_flush sends it then). */
	if (!t->exited || t->update_inflight || !uplink_ready(&a->uplink) || a->journal_dirty)
		return;
	agent_task_pb(t, &at);
	up.task = &at;
	env.body_case = HPQ__ENVELOPE__BODY_TASK_UPDATE;
	env.task_update = &up;
	k = xmalloc(sizeof(*k));
	*k = (struct agent_exit_key){a, t->id, t->attempt};
	if (uplink_request(&a->uplink, &env, agent_exit_answered, k) < 0) {
		free(k);
		return;
	}
	t->update_inflight = true;
	t->update_sent_ms = hpq_now_ms();
}

static void agent_report_exits(struct agent *a)
{
	struct task *t;

	dlist_for_each_entry(t, &a->exec.tasks, entry)
		agent_report_exit(a, t);
}

/*
 * Saves the journal if it is behind, then answers the RunTasks and
 * reports what it now holds. A start the journal cannot hold is killed:
 * nothing may run that an agent restart would not know of.
 */
static void agent_start_runs(struct agent *a);

static void agent_flush(struct agent *a)
{
	size_t n;
	bool killed = false;

	agent_start_runs(a);
	ev_prepare_stop(a->loop, &a->flush_w);
	n = a->nstarted;
	if (a->journal_dirty && agent_journal(a) < 0) {
		for (size_t i = 0; i < n; i++) {
			struct agent_started *s = &a->started[i];
			struct task *t = task_find(&a->exec.tasks, s->id, s->attempt);

			if (!s->report || !t || t->exited)
				continue;
			log_err("task %" PRIu64 " attempt %" PRIu32 ": its start cannot be "
				"journaled: killing it", t->id, t->attempt);
			exec_kill(&a->exec, t, SIGKILL, 0, "work-dir-unwritable");
			killed = true;
		}
		if (killed)
			agent_work_dir_bad(a, "the journal cannot be written");
		/* Tried again at the next change; what waits on it goes now,
		 * as before: the exits are sent again until acknowledged. */
		a->journal_dirty = false;
	}
	a->nstarted = 0;
	for (size_t i = 0; i < n; i++) {
		struct agent_started *s = &a->started[i];
		struct task *t = task_find(&a->exec.tasks, s->id, s->attempt);

		uplink_reply(&a->uplink, s->msg_id, 0, NULL);
		if (s->report && t && !t->exited)
			agent_report_start(a, t);
	}
	agent_report_exits(a);
	if (a->stopping && agent_running(a) == 0)
		ev_break(a->loop, EVBREAK_ALL);
}

static void agent_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	agent_flush(w->data);
}

/* ------------------------------------------------------------ runner */

static void agent_task_exited(struct exec *ex, struct task *t)
{
	struct agent *a = ex->data;

	log_info("task %" PRIu64 " attempt %" PRIu32 " ended: exit code %d (%s)", t->id,
		 t->attempt, t->exit_code, t->reason);
	agent_dirty(a); /* reported by agent_flush, which also ends a stopping loop */
}

static void agent_started_push(struct agent *a, uint64_t msg_id, const struct task *t,
			       bool report)
{
	if (a->nstarted == a->started_cap) {
		a->started_cap = a->started_cap ? 2 * a->started_cap : 64;
		a->started = xreallocarray(a->started, a->started_cap, sizeof(*a->started));
	}
	a->started[a->nstarted++] = (struct agent_started){msg_id, t->id, t->attempt, report};
	ev_prepare_start(a->loop, &a->flush_w);
}

/* ------------------------------------------------------------ daemon */

static Hpq__RunTask *run_task_copy(const Hpq__RunTask *rt)
{
	size_t len = hpq__run_task__get_packed_size(rt);
	uint8_t *buf = xmalloc(len + 1);
	Hpq__RunTask *copy;

	hpq__run_task__pack(rt, buf);
	copy = hpq__run_task__unpack(NULL, len, buf);
	free(buf);
	if (!copy)
		hpq_fatal("a RunTask does not unpack from its own packing");
	return copy;
}

/* Kept for agent_flush, which starts the burst's tasks together. */
static void agent_run_task(struct agent *a, uint64_t id, const Hpq__RunTask *rt)
{
	if (!rt) {
		uplink_reply(&a->uplink, id, HPQ_EPROTO, "empty run_task");
		return;
	}
	if (a->stopping) {
		uplink_reply(&a->uplink, id, HPQ_EUNAVAIL, "the agent is shutting down");
		return;
	}
	if (a->nruns == a->runs_cap) {
		a->runs_cap = a->runs_cap ? 2 * a->runs_cap : 64;
		a->runs = xreallocarray(a->runs, a->runs_cap, sizeof(*a->runs));
	}
	a->runs[a->nruns++] = (struct agent_run){ id, run_task_copy(rt) };
	ev_prepare_start(a->loop, &a->flush_w);
}

/* Starts the RunTasks received since the last flush, all at once. */
static void agent_start_runs(struct agent *a)
{
	size_t n = a->nruns;
	const Hpq__RunTask **rts;
	struct task **tasks;
	int *ret;

	if (!n)
		return;
	rts = xcalloc(n, sizeof(*rts));
	tasks = xcalloc(n, sizeof(*tasks));
	ret = xcalloc(n, sizeof(*ret));
	for (size_t i = 0; i < n; i++)
		rts[i] = a->runs[i].rt;
	a->nruns = 0;
	/* Starts that come after the node's lease ran out were held up on the
	 * way (a network that kept its bytes, then healed): hpqd may have
	 * declared the node lost since and started them on another node.
	 * None begins here, where its supervisor would fence it only once it
	 * ran: each ends at once, fenced, and hpqd requeues it as it does a
	 * task its supervisor fenced. */
	if (a->lease_until && hpq_boot_ms() >= a->lease_until) {
		char why[160];

		snprintf(why, sizeof(why), "the node's lease from hpqd ran out %" PRId64 " ms "
			 "before its start came", hpq_boot_ms() - a->lease_until);
		for (size_t i = 0; i < n; i++)
			ret[i] = exec_refuse(&a->exec, rts[i], "fenced", why, &tasks[i]);
	} else {
		exec_start_many(&a->exec, rts, n, tasks, ret);
	}
	for (size_t i = 0; i < n; i++) {
		const Hpq__RunTask *rt = rts[i];
		uint64_t id = a->runs[i].msg_id;
		struct task *t = tasks[i];

		if (ret[i] == HPQ_EEXIST) {
			log_debug("task %" PRIu64 " attempt %" PRIu32 " is already here",
				  rt->task_id, rt->attempt);
			/* Perhaps started in this burst: answered after its journal. */
			t = task_find(&a->exec.tasks, rt->task_id, rt->attempt);
			agent_started_push(a, id, t, false);
		} else if (ret[i] < 0) {
			log_warn("ignoring a run_task without a task id and attempt");
			uplink_reply(&a->uplink, id, ret[i], "run_task needs a task id and an attempt");
		} else {
			if (t->exited && strcmp(t->reason, "work-dir-unwritable") == 0)
				agent_work_dir_bad(a, "see the agent's log");
			/* Journaled, answered and reported by agent_flush (the top). */
			a->journal_dirty = true;
			agent_started_push(a, id, t, true);
		}
		hpq__run_task__free_unpacked(a->runs[i].rt, NULL);
	}
	free(rts);
	free(tasks);
	free(ret);
}

static void agent_kill_task(struct agent *a, uint64_t id, const Hpq__KillTask *kt)
{
	struct task *t = NULL, *it;
	char msg[128];

	if (!kt || kt->task_id == 0) {
		uplink_reply(&a->uplink, id, HPQ_EINVAL, "kill_task needs a task id");
		return;
	}
	if (kt->attempt) {
		t = task_find(&a->exec.tasks, kt->task_id, kt->attempt);
	} else {
		/* Attempt 0: whichever attempt runs here. */
		dlist_for_each_entry(it, &a->exec.tasks, entry)
			if (it->id == kt->task_id && (!t || !it->exited))
				t = it;
	}
	if (!t) {
		snprintf(msg, sizeof(msg), "task %" PRIu64 " attempt %" PRIu32 " is not on this node",
			 kt->task_id, kt->attempt);
		uplink_reply(&a->uplink, id, HPQ_ENOTFOUND, msg);
		return;
	}
	if (!t->exited) {
		log_info("task %" PRIu64 " attempt %" PRIu32 ": stopping it (%s)", t->id, t->attempt,
			 kt->reason && kt->reason[0] ? kt->reason : "killed");
		exec_kill(&a->exec, t, kt->signal, kt->grace_s,
			  kt->reason && kt->reason[0] ? kt->reason : "killed");
		agent_journal(a);
	}
	uplink_reply(&a->uplink, id, 0, NULL);
}

static void agent_task_limit(struct agent *a, const Hpq__TaskLimit *tl)
{
	struct task *t = tl ? task_find(&a->exec.tasks, tl->task_id, tl->attempt) : NULL;

	/* Pushed without a reply: an attempt that is gone has nothing to change. */
	if (!t)
		return;
	log_info("task %" PRIu64 " attempt %" PRIu32 ": time limit now %" PRIu64 " s", t->id,
		 t->attempt, tl->time_limit_s);
	exec_set_limit(&a->exec, t, tl->time_limit_s);
	agent_journal(a);
}

static void agent_message(void *data, const Hpq__Envelope *env)
{
	struct agent *a = data;
	char msg[96];

	/* Whatever else hpqd asks is answered after what it asked before. */
	if (env->body_case != HPQ__ENVELOPE__BODY_RUN_TASK)
		agent_flush(a);
	switch (env->body_case) {
	case HPQ__ENVELOPE__BODY_RUN_TASK:
		agent_run_task(a, env->id, env->run_task);
		return;
	case HPQ__ENVELOPE__BODY_KILL_TASK:
		agent_kill_task(a, env->id, env->kill_task);
		return;
	case HPQ__ENVELOPE__BODY_TASK_LIMIT:
		agent_task_limit(a, env->task_limit);
		return;
	case HPQ__ENVELOPE__BODY_LOG_REQUEST:
		logs_serve(a, env->id, env->log_request);   /* hpq logs (logs.c) */
		return;
	default:
		log_debug("uplink: ignoring %s from hpqd", hpq_msg_name(env));
		snprintf(msg, sizeof(msg), "the agent does not serve %s", hpq_msg_name(env));
		uplink_reply(&a->uplink, env->id, HPQ_EPROTO, msg);
		return;
	}
}

static void agent_fill_register(void *data, Hpq__Register *reg, const char *local_addr)
{
	struct agent *a = data;
	Hpq__Resources *cap;
	size_t n, i = 0;
	void *block;
	Hpq__AgentTask *tasks;
	struct task *t;

	/* No exit listed that the journal does not hold; first, as it can
	 * start the RunTasks it holds, which the list then counts. */
	agent_flush(a);
	cap = xmalloc(sizeof(*cap));
	n = task_list_count(&a->exec.tasks);
	/* One block: n pointers, then the n records they point to. */
	block = xcalloc(1, n * (sizeof(Hpq__AgentTask *) + sizeof(Hpq__AgentTask)) + 1);
	tasks = (Hpq__AgentTask *)((Hpq__AgentTask **)block + n);
	hpq__resources__init(cap);
	hpq_res_to_pb(a->capacity, cap);
	reg->pool = a->cfg->pool;
	reg->capacity = cap;
	reg->n_labels = a->cfg->nlabels;
	reg->labels = a->cfg->labels;
	reg->address = (char *)(a->cfg->address ? a->cfg->address : local_addr);
	reg->boot_time = a->boot_time_ms;
	reg->n_tasks = n;
	reg->tasks = block;
	dlist_for_each_entry(t, &a->exec.tasks, entry) {
		agent_task_pb(t, &tasks[i]);
		reg->tasks[i] = &tasks[i];
		i++;
	}
	reg->n_findings = a->health.nfindings;
	reg->findings = a->health.findings;
	reg->cgroup = a->cgroup.enabled;
	reg->cgroup_problem = a->cgroup.problem;
}

static void agent_release_register(void *data, Hpq__Register *reg)
{
	free(reg->capacity);
	free(reg->tasks);
}

static void agent_fill_heartbeat(void *data, Hpq__Heartbeat *hb)
{
	struct agent *a = data;

	hb->n_findings = a->health.nfindings;
	hb->findings = a->health.findings;
}

/* A task's own problem (health.h, task_warning): a heartbeat carrying it,
 * with the node's findings as every heartbeat has them; hpqd records it
 * on the task. Not connected: false, and the monitor offers it again. */
static bool agent_task_warning(void *data, uint64_t task_id, uint32_t attempt,
			       const char *reason, const char *message)
{
	struct agent *a = data;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Heartbeat hb = HPQ__HEARTBEAT__INIT;
	Hpq__TaskWarning w = HPQ__TASK_WARNING__INIT, *ws[1] = {&w};

	w.task_id = task_id;
	w.attempt = attempt;
	w.reason = (char *)reason;
	w.message = (char *)message;
	hb.time = hpq_now_ms();
	agent_fill_heartbeat(a, &hb);
	hb.n_task_warnings = 1;
	hb.task_warnings = ws;
	env.body_case = HPQ__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	return uplink_send(&a->uplink, &env) == 0;
}

static void agent_ready(void *data)
{
	struct agent *a = data;
	struct task *t;

	/* Register listed the exits; each is confirmed by its own answered TaskUpdate. */
	dlist_for_each_entry(t, &a->exec.tasks, entry)
		t->update_inflight = false;
	agent_report_exits(a);
	if (a->health_unsent) {
		a->health_unsent = false;
		uplink_heartbeat_now(&a->uplink);
	}
}

static void agent_lost(void *data)
{
	struct agent *a = data;
	struct task *t;

	/* Nobody to answer: the next Register lists the tasks. */
	a->nstarted = 0;
	dlist_for_each_entry(t, &a->exec.tasks, entry)
		t->update_inflight = false;
}

static void agent_tick(void *data)
{
	struct agent *a = data;
	int64_t overdue = hpq_now_ms() - (int64_t)(3 * a->uplink.heartbeat_now * 1000);
	struct task *t;

	dlist_for_each_entry(t, &a->exec.tasks, entry) {
		/* Peak memory where the kernel keeps no memory.peak. */
		if (!t->exited)
			cgroup_task_sample(&a->cgroup, t->id, t->attempt, &t->peak_mem);
		if (t->exited && t->update_inflight && t->update_sent_ms < overdue) {
			log_info("task %" PRIu64 " attempt %" PRIu32 ": no answer to its exit; "
				 "sending it again", t->id, t->attempt);
			t->update_inflight = false;
		}
	}
	agent_report_exits(a);
	agent_work_dir_probe(a);
}

/* The set of counted findings changed: tell hpqd now, not at the next beat. */
static void agent_health_changed(struct health *h, void *data)
{
	struct agent *a = data;

	/* Not registered: the next Register carries them, unless it is on its way. */
	a->health_unsent = !uplink_ready(&a->uplink);
	uplink_heartbeat_now(&a->uplink);
}

/*
 * The node's lease (fencing, hpq-agent(8)): <work_dir>/run/lease holds
 * "UNTIL FENCE UNTIL FENCE", fixed-width decimal, UNTIL the lease's end on
 * CLOCK_BOOTTIME in ms and FENCE hpqd's fence_after in ms, rewritten in
 * place (no new blocks: a full work directory does not stop the renewals)
 * and read by every supervisor, which stops its task once UNTIL has
 * passed. The pair is written twice so that a reader can tell a torn read
 * and look again. Without fencing the file is removed.
 */
static void agent_lease(void *data, int64_t sent_ms, uint64_t fence_after_ms)
{
	struct agent *a = data;
	char *path = NULL, buf[128];
	int64_t until = sent_ms + (int64_t)fence_after_ms;
	int n;

	xasprintf(&path, "%s/run/lease", a->work_dir);
	if (!fence_after_ms) {
		if (a->lease_fd >= 0 || a->lease_until)
			log_info("hpqd does not fence: no lease for the tasks");
		if (a->lease_fd >= 0)
			close(a->lease_fd);
		a->lease_fd = -1;
		a->lease_until = 0;
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("cannot remove '%s': %s", path, strerror(errno));
		free(path);
		return;
	}
	if (until <= a->lease_until) { /* an older heartbeat, answered late */
		free(path);
		return;
	}
	if (a->lease_fd < 0) {
		char *dir = NULL;

		xasprintf(&dir, "%s/run", a->work_dir);
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			log_warn("cannot create '%s': %s", dir, strerror(errno));
		free(dir);
		a->lease_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (a->lease_fd < 0) {
			log_err("cannot open the lease file '%s': %s; the tasks here will be "
				"stopped when the lease they know of runs out", path,
				strerror(errno));
			free(path);
			return;
		}
		log_info("hpqd fences after %" PRIu64 " ms: lease in %s", fence_after_ms, path);
	}
	n = snprintf(buf, sizeof(buf), "%020" PRId64 " %020" PRIu64 " %020" PRId64 " %020" PRIu64
		     "\n", until, fence_after_ms, until, fence_after_ms);
	if (pwrite(a->lease_fd, buf, (size_t)n, 0) != n)
		log_err("cannot renew the lease in '%s': %s", path, strerror(errno));
	else
		a->lease_until = until;
	free(path);
}

static void agent_serving(struct agent *a)
{
	if (a->serving || a->uplink.gave_up)
		return;
	a->serving = true;
	if (a->on_serving)
		a->on_serving(a->on_serving_ctx);
}

static void agent_join_settled(void *data)
{
	agent_serving(data);
}

/* The node cannot join (the uplink said why): exit, leaving any tasks. */
static void agent_give_up(void *data)
{
	struct agent *a = data;

	ev_break(a->loop, EVBREAK_ALL);
}

static const struct uplink_ops agent_uplink_ops = {
	.fill_register = agent_fill_register,
	.release_register = agent_release_register,
	.fill_heartbeat = agent_fill_heartbeat,
	.ready = agent_ready,
	.lost = agent_lost,
	.tick = agent_tick,
	.message = agent_message,
	.join_settled = agent_join_settled,
	.give_up = agent_give_up,
	.lease = agent_lease,
};

/* ------------------------------------------------------------ lifetime */

static int64_t agent_boot_time_ms(void)
{
	char line[256];
	long long btime;
	int64_t r = 0;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", &btime) == 1) {
			r = (int64_t)btime * 1000;
			break;
		}
	fclose(f);
	return r;
}

/* hpq-supervisor next to this program (a build tree, or an install that
 * keeps them together), else where it is installed. */
static char *agent_find_supervisor(void)
{
	char *beside = hpq_path_beside_self("hpq-supervisor", X_OK);

	if (beside)
		return beside;
	if (access(HPQ_SUPERVISOR_PATH, X_OK) == 0)
		return xstrdup(HPQ_SUPERVISOR_PATH);
	return NULL;
}

/* mkdir -p for the work directory. */
static int agent_mkdirs(const char *path)
{
	char *copy = xstrdup(path);
	int r = 0;

	for (char *p = copy + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
				r = -errno;
				break;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	free(copy);
	return r;
}

static int agent_fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int agent_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

int agent_init(struct agent *a, struct ev_loop *loop, const struct agent_config *cfg,
	       struct hpq_res capacity, char *err, size_t errlen)
{
	struct dlist journal = DLIST_INIT(journal);
	struct health_config hc;
	struct uplink_config lc;
	struct exec_config ec;
	char jerr[256], *lock_path = NULL, real[PATH_MAX];
	struct task *t;
	int r;

	memset(a, 0, sizeof(*a));
	a->loop = loop;
	a->cfg = cfg;
	a->capacity = capacity;
	a->lock_fd = -1;
	a->lease_fd = -1;
	a->boot_time_ms = agent_boot_time_ms();
	ev_prepare_init(&a->flush_w, agent_flush_cb);
	a->flush_w.data = a;

	r = agent_mkdirs(cfg->work_dir);
	if (r < 0 || !realpath(cfg->work_dir, real))
		return agent_fail(err, errlen, r < 0 ? r : -errno, "cannot create work directory "
				  "'%s': %s", cfg->work_dir, strerror(r < 0 ? -r : errno));
	a->work_dir = xstrdup(real);
	{
		struct stat st;

		if (stat(a->work_dir, &st) == 0 && !(st.st_mode & S_IXOTH))
			log_warn("work directory '%s' is not searchable by other users: tasks that "
				 "do not run as %s cannot reach the agent socket (chmod o+x it)",
				 a->work_dir, geteuid() == 0 ? "root" : "the agent's user");
	}
	xasprintf(&a->journal_path, "%s/%s", a->work_dir, JOURNAL_FILE);
	xasprintf(&a->socket_path, "%s/%s", a->work_dir, LOCAL_SOCKET);
	a->supervisor = agent_find_supervisor();
	if (a->supervisor)
		log_info("tasks run under %s", a->supervisor);
	else
		log_warn("hpq-supervisor is neither next to hpq-agent nor at %s: tasks run "
			 "without it, and the exit code of a task that ends while the agent "
			 "restarts is lost", HPQ_SUPERVISOR_PATH);

	xasprintf(&lock_path, "%s/agent.lock", a->work_dir);
	a->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (a->lock_fd < 0) {
		r = agent_fail(err, errlen, -errno, "cannot open '%s': %s", lock_path,
			       strerror(errno));
		goto fail;
	}
	if (flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = agent_fail(err, errlen, errno == EWOULDBLOCK ? HPQ_EBUSY : -errno,
			       "another hpq-agent is using work directory '%s'; give each agent "
			       "its own --work-dir", a->work_dir);
		goto fail;
	}

	r = journal_load(a->journal_path, &journal, jerr, sizeof(jerr));
	if (r < 0) {
		r = agent_fail(err, errlen, r, "cannot read the journal '%s': %s; move it away to "
			       "start without it (outcomes of tasks in it are then lost)",
			       a->journal_path, r == HPQ_EINVAL ? jerr : hpq_strerror(r));
		goto fail;
	}

	r = cgroup_init(&a->cgroup, (enum cgroup_mode)cfg->cgroup_mode, cfg->task_pids_max, err,
			errlen);
	if (r < 0)
		goto fail;
	if (a->cgroup.enabled)
		log_info("tasks are confined: each in a cgroup of its own under %s (cpu.max, "
			 "memory.max, pids.max %llu)", a->cgroup.root,
			 (unsigned long long)a->cgroup.pids_max);
	else
		log_warn("tasks are not confined: %s", a->cgroup.problem);

	ec = (struct exec_config){
		.work_dir = a->work_dir,
		.node_name = cfg->name,
		.agent_socket = a->socket_path,
		.ngpus = (uint32_t)capacity.gpus,
		.allow_root_tasks = cfg->allow_root_tasks,
		.supervisor = a->supervisor,
		.cgroup = &a->cgroup,
	};
	exec_init(&a->exec, loop, &ec, agent_task_exited, a);
	while (!dlist_empty(&journal)) {
		t = dlist_first_entry(&journal, struct task, entry);
		dlist_del(&t->entry);
		exec_adopt(&a->exec, t);
	}
	exec_orphans(&a->exec); /* started, but the journal never held them */

	lc = (struct uplink_config){
		.server = cfg->server,
		.server_name = cfg->server_name,
		.name = cfg->name,
		.pool = cfg->pool,
		.work_dir = a->work_dir,
		.join_token = cfg->join_token,
		.join_file = cfg->join_file,
		.ca_hash = cfg->ca_hash,
		.insecure = cfg->insecure,
		.heartbeat = (double)cfg->heartbeat_s,
	};
	r = uplink_init(&a->uplink, loop, &lc, &agent_uplink_ops, a, err, errlen);
	if (r < 0) {
		exec_release(&a->exec);
		goto fail;
	}

	r = local_open(&a->local, loop, a->socket_path, &a->exec, &a->uplink);
	local_set_limits(&a->local, (unsigned)cfg->local_max_per_user,
			 (double)cfg->local_idle_timeout_s);
	if (r < 0) {
		r = agent_fail(err, errlen, r, "cannot listen on '%s': %s", a->socket_path,
			       r == HPQ_EINVAL ? "path too long for a socket; use a shorter "
			       "--work-dir" : hpq_strerror(r));
		uplink_release(&a->uplink);
		exec_release(&a->exec);
		goto fail;
	}
	health_config_init(&hc);
	hc.interval = (double)cfg->health_interval_s;
	hc.timeout = (double)cfg->health_timeout_s;
	hc.threshold = (unsigned)cfg->health_threshold;
	hc.work_dir = a->work_dir;
	hc.disks = cfg->health_disks;
	hc.ndisks = cfg->nhealth_disks;
	hc.task_warning = agent_task_warning;
	hc.task_warning_data = a;
	hc.gpus = (uint32_t)capacity.gpus;
	hc.script_dir = cfg->health_dir;
	hc.inject_path = cfg->health_inject;
	hc.disk_warning = (unsigned)cfg->health_disk_warning;
	hc.disk_fatal = (unsigned)cfg->health_disk_fatal;
	hc.clock_warning = (double)cfg->health_clock_warning_s;
	hc.clock_fatal = (double)cfg->health_clock_fatal_s;
	hc.memory_pressure = (unsigned)cfg->health_memory_pressure;
	hc.tasks = &a->exec.tasks;
	hc.uplink = &a->uplink;
	health_init(&a->health, loop, &hc, health_builtin, agent_health_changed, a);

	agent_journal(a);
	log_info("work directory %s: %zu tasks running, %zu exits to report", a->work_dir,
		 agent_running(a), task_list_count(&a->exec.tasks) - agent_running(a));
	free(lock_path);
	return 0;
fail:
	task_list_release(&journal);
	cgroup_release(&a->cgroup);
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	free(lock_path);
	free(a->work_dir);
	free(a->journal_path);
	free(a->socket_path);
	free(a->supervisor);
	memset(a, 0, sizeof(*a));
	a->lock_fd = -1;
	return r;
}

void agent_start(struct agent *a)
{
	bool joins = a->uplink.join_unsettled;

	health_start(&a->health);
	uplink_start(&a->uplink);
	if (!joins)
		agent_serving(a);
}

void agent_stop(struct agent *a, bool kill_tasks)
{
	struct task *t;

	agent_start_runs(a);   /* asked before the stop: started, and stopped with the rest */
	a->stopping = true;
	if (kill_tasks && agent_running(a) > 0) {
		log_notice("stopping %zu tasks before exiting", agent_running(a));
		dlist_for_each_entry(t, &a->exec.tasks, entry)
			exec_kill(&a->exec, t, 0, 0, "agent-stopped");
		agent_journal(a);
		return; /* agent_flush breaks the loop after the last one */
	}
	agent_flush(a);
	ev_break(a->loop, EVBREAK_ALL);
}

void agent_release(struct agent *a)
{
	if (a->journal_dirty) /* the loop ended between a change and its flush */
		agent_journal(a);
	ev_prepare_stop(a->loop, &a->flush_w);
	/* RunTasks never started: hpqd finds them missing at the next Register. */
	for (size_t i = 0; i < a->nruns; i++)
		hpq__run_task__free_unpacked(a->runs[i].rt, NULL);
	free(a->runs);
	free(a->started);
	health_release(&a->health); /* kills its helper processes; uses the uplink and tasks */
	uplink_release(&a->uplink);   /* pending callbacks still see the tasks and clients */
	local_close(&a->local);
	exec_release(&a->exec);
	cgroup_release(&a->cgroup);
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	if (a->lease_fd >= 0)
		close(a->lease_fd);
	free(a->work_dir);
	free(a->journal_path);
	free(a->socket_path);
	free(a->supervisor);
	memset(a, 0, sizeof(*a));
	a->lock_fd = -1;
	a->lease_fd = -1;
}
