/*
 * local.c: the agent's Unix socket for `hpq checkpoint` (see local.h).
 *
 * Each accepted connection is a conn (conn.h) with a small client record.
 * A forwarded request holds a reference to the conn, not to the record:
 * when the daemon's answer comes back after the task has hung up, the
 * conn is dead, the answer is dropped, and the last reference frees it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "error.h"
#include "exec.h"
#include "hpq.h"
#include "local.h"
#include "log.h"
#include "uplink.h"
#include "xalloc.h"

#define LOCAL_PATH_MAX 4096

struct local_client {
	struct dlist entry;
	struct local *lo;
	struct conn *conn;
	uid_t uid;
	pid_t pid;
	bool hello;
	unsigned forwards;   /* requests waiting for the daemon's answer */
	double last_s;       /* ev_now of accept or of the last whole message */
	ev_timer idle_w;     /* ticks every LOCAL_READ_TIMEOUT: deadlines (local_idle_cb) */
};

/* A request waiting for the daemon. */
struct local_forward {
	struct conn *conn;   /* referenced */
	uint64_t id;         /* the client's request id */
};

static void local_forward_done(void *ctx, const Hpq__Envelope *reply)
{
	struct local_forward *f = ctx;
	struct conn *c = f->conn;
	struct local_client *cl = c->data;

	if (cl)
		cl->forwards--;
	if (c->dead) {
		/* The task hung up; the daemon has recorded the checkpoint or not. */
	} else if (!reply) {
		conn_send_error(c, f->id, HPQ_EUNAVAIL,
				"the agent lost its connection to hpqd before it answered; the "
				"checkpoint may not be recorded, try again");
	} else if (reply->body_case == HPQ__ENVELOPE__BODY_OK) {
		Hpq__Envelope env = HPQ__ENVELOPE__INIT;
		Hpq__Ok ok = HPQ__OK__INIT;

		env.id = f->id;
		env.body_case = HPQ__ENVELOPE__BODY_OK;
		env.ok = &ok;
		conn_send(c, &env);
	} else if (reply->body_case == HPQ__ENVELOPE__BODY_ERROR && reply->error) {
		conn_send_error(c, f->id, reply->error->code < 0 ? reply->error->code : HPQ_EPROTO,
				reply->error->message && reply->error->message[0]
					? reply->error->message : hpq_strerror(reply->error->code));
	} else {
		conn_send_error(c, f->id, HPQ_EPROTO, "unexpected answer from hpqd");
	}
	conn_unref(c);
	free(f);
}

static void local_hello(struct local_client *cl, const Hpq__Envelope *env)
{
	Hpq__Envelope rep = HPQ__ENVELOPE__INIT;
	Hpq__HelloReply hr = HPQ__HELLO_REPLY__INIT;
	struct passwd *pw = getpwuid(cl->uid);
	char uidbuf[16];

	if (!env->hello || env->hello->role == HPQ__ROLE__ROLE_AGENT) {
		conn_send_error(cl->conn, env->id, HPQ_EPROTO,
				"the agent socket is for clients inside tasks");
		conn_close_flush(cl->conn, HPQ_EPROTO);
		return;
	}
	if (env->hello->protocol_version < HPQ_PROTOCOL_MIN) {
		conn_send_error(cl->conn, env->id, HPQ_EVERSION,
				"protocol version too old for this agent; update hpq");
		conn_close_flush(cl->conn, HPQ_EVERSION);
		return;
	}
	snprintf(uidbuf, sizeof(uidbuf), "%lu", (unsigned long)cl->uid);
	hr.protocol_version = HPQ_PROTOCOL_VERSION;
	hr.software_version = (char *)HPQ_VERSION;
	hr.user = pw ? pw->pw_name : uidbuf;
	rep.id = env->id;
	rep.body_case = HPQ__ENVELOPE__BODY_HELLO_REPLY;
	rep.hello_reply = &hr;
	cl->hello = true;
	conn_send(cl->conn, &rep);
}

static void local_checkpoint(struct local_client *cl, const Hpq__Envelope *env)
{
	const Hpq__CheckpointRequest *ck = env->checkpoint;
	Hpq__Envelope fwd = HPQ__ENVELOPE__INIT;
	Hpq__CheckpointRequest req = HPQ__CHECKPOINT_REQUEST__INIT;
	struct local_forward *f;
	struct task *t;
	char msg[256];

	if (env->id == 0) {
		conn_send_error(cl->conn, 0, HPQ_EPROTO, "a checkpoint request needs a request id");
		return;
	}
	if (!ck || ck->task_id == 0 || ck->attempt == 0) {
		conn_send_error(cl->conn, env->id, HPQ_EINVAL,
				"checkpoint request without a task id and attempt");
		return;
	}
	if (!ck->path || !ck->path[0] || strlen(ck->path) >= LOCAL_PATH_MAX) {
		conn_send_error(cl->conn, env->id, HPQ_EINVAL,
				"checkpoint path is empty or too long");
		return;
	}
	t = task_find(&cl->lo->exec->tasks, ck->task_id, ck->attempt);
	if (!t || t->exited) {
		snprintf(msg, sizeof(msg), "task %" PRIu64 " attempt %" PRIu32
			 " is not running on this node", ck->task_id, ck->attempt);
		conn_send_error(cl->conn, env->id, HPQ_ENOTFOUND, msg);
		return;
	}
	if (cl->uid != 0 && cl->uid != t->uid) {
		snprintf(msg, sizeof(msg), "task %" PRIu64 " runs as uid %lu; you are uid %lu",
			 t->id, (unsigned long)t->uid, (unsigned long)cl->uid);
		log_warn("local: pid %ld uid %lu tried to checkpoint task %" PRIu64 " of uid %lu",
			 (long)cl->pid, (unsigned long)cl->uid, t->id, (unsigned long)t->uid);
		conn_send_error(cl->conn, env->id, HPQ_EPERM, msg);
		return;
	}
	req.task_id = ck->task_id;
	req.attempt = ck->attempt;
	req.step = ck->step;
	req.path = ck->path;
	fwd.body_case = HPQ__ENVELOPE__BODY_CHECKPOINT;
	fwd.checkpoint = &req;
	f = xcalloc(1, sizeof(*f));
	f->conn = cl->conn;
	f->id = env->id;
	if (uplink_request(cl->lo->uplink, &fwd, local_forward_done, f) < 0) {
		free(f);
		conn_send_error(cl->conn, env->id, HPQ_EUNAVAIL,
				"the agent is not connected to hpqd right now; try again later");
		return;
	}
	conn_ref(cl->conn);
	cl->forwards++;
	log_debug("local: forwarded checkpoint of task %" PRIu64 " attempt %" PRIu32
		  " step %" PRIu64, ck->task_id, ck->attempt, ck->step);
}

static void local_frame(struct conn *c, const Hpq__Envelope *env)
{
	struct local_client *cl = c->data;

	cl->last_s = ev_now(cl->lo->loop);
	if (!cl->hello) {
		if (env->body_case == HPQ__ENVELOPE__BODY_HELLO) {
			local_hello(cl, env);
			return;
		}
		conn_send_error(c, env->id, HPQ_EPROTO, "say hello first");
		conn_close_flush(c, HPQ_EPROTO);
		return;
	}
	switch (env->body_case) {
	case HPQ__ENVELOPE__BODY_CHECKPOINT:
		local_checkpoint(cl, env);
		return;
	default:
		conn_send_error(c, env->id, HPQ_EPROTO,
				"the agent socket serves checkpoint requests only; talk to hpqd "
				"for anything else");
		return;
	}
}

static void local_client_closed(struct conn *c, int error)
{
	struct local_client *cl = c->data;

	if (error < 0)
		log_debug("local: client pid %ld: %s", (long)cl->pid, hpq_strerror(error));
	ev_timer_stop(cl->lo->loop, &cl->idle_w);
	dlist_del(&cl->entry);
	cl->lo->nclients--;
	free(cl);
	c->data = NULL;
}

/* A client that has not said Hello, or stalls in the middle of a frame,
 * for LOCAL_READ_TIMEOUT, or is silent for idle_timeout without waiting
 * for an answer, gives its slot back. */
static void local_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct local_client *cl = w->data;
	double quiet = ev_now(loop) - cl->last_s;
	const char *why = NULL;

	if ((!cl->hello || hpq_framer_pending(&cl->conn->framer)) && quiet >= LOCAL_READ_TIMEOUT)
		why = cl->hello ? "stalled in the middle of a message" : "no Hello";
	else if (!cl->forwards && quiet >= cl->lo->idle_timeout)
		why = "idle";
	if (!why)
		return;
	hpq_log_limited(&cl->lo->refused_log, LOG_INFO, "local: client pid %ld uid %lu: %s "
			"for %.0f s, closing", (long)cl->pid, (unsigned long)cl->uid, why, quiet);
	conn_close(cl->conn, -ETIMEDOUT);
}

/* Why a new client of uid may not have a slot, or NULL. */
static const char *local_admit(const struct local *lo, uid_t uid)
{
	const struct local_client *cl;
	unsigned mine = 0;

	if (uid == 0)
		return lo->nclients >= LOCAL_MAX_CLIENTS ? "the agent socket is full" : NULL;
	if (lo->nclients >= LOCAL_MAX_CLIENTS - LOCAL_ROOT_RESERVE)
		return "the agent socket is full (the rest is kept for root)";
	dlist_for_each_entry(cl, &lo->clients, entry)
		if (cl->uid == uid)
			mine++;
	return mine >= lo->max_per_uid ? "too many connections of this uid "
					 "(local-max-per-user)" : NULL;
}

static void local_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct local *lo = w->data;
	struct local_client *cl;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	const char *why;
	int fd;

	fd = accept4(lo->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("local: cannot accept on '%s': %s", lo->path, strerror(errno));
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("local: cannot read peer credentials: %s", strerror(errno));
		close(fd);
		return;
	}
	why = local_admit(lo, cred.uid);
	if (why) {
		hpq_log_limited(&lo->refused_log, LOG_WARNING, "local: refusing pid %ld uid %lu: %s",
				(long)cred.pid, (unsigned long)cred.uid, why);
		close(fd);
		return;
	}
	cl = xcalloc(1, sizeof(*cl));
	cl->lo = lo;
	cl->uid = cred.uid;
	cl->pid = cred.pid;
	cl->last_s = ev_now(loop);
	cl->conn = conn_new(loop, fd, local_frame, local_client_closed, cl);
	cl->conn->framer.max = LOCAL_FRAME_MAX;
	ev_init(&cl->idle_w, local_idle_cb);
	cl->idle_w.repeat = LOCAL_READ_TIMEOUT;
	cl->idle_w.data = cl;
	ev_timer_again(loop, &cl->idle_w);
	dlist_add_tail(&lo->clients, &cl->entry);
	lo->nclients++;
}

int local_open(struct local *lo, struct ev_loop *loop, const char *path, struct exec *exec,
	       struct uplink *uplink)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, r;

	memset(lo, 0, sizeof(*lo));
	lo->fd = -1;
	dlist_init(&lo->clients);
	local_set_limits(lo, LOCAL_DEFAULT_MAX_PER_UID, LOCAL_DEFAULT_IDLE_TIMEOUT);
	lo->refused_log.interval_ms = LOCAL_LOG_INTERVAL;
	if (strlen(path) >= sizeof(sun.sun_path))
		return HPQ_EINVAL;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a previous agent: nobody listens on it any more
	 * (the caller holds the work directory's lock). */
	if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0666) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		goto fail;
	}
	lo->loop = loop;
	lo->path = xstrdup(path);
	lo->fd = fd;
	lo->exec = exec;
	lo->uplink = uplink;
	ev_io_init(&lo->accept_w, local_accept_cb, fd, EV_READ);
	lo->accept_w.data = lo;
	ev_io_start(loop, &lo->accept_w);
	return 0;
fail:
	close(fd);
	return r;
}

void local_set_limits(struct local *lo, unsigned max_per_uid, double idle_timeout)
{
	lo->max_per_uid = max_per_uid;
	lo->idle_timeout = idle_timeout;
}

void local_close(struct local *lo)
{
	if (lo->fd >= 0) {
		ev_io_stop(lo->loop, &lo->accept_w);
		close(lo->fd);
		lo->fd = -1;
		unlink(lo->path);
	}
	/* local_client_closed unlinks and frees each client. */
	while (!dlist_empty(&lo->clients))
		conn_close(dlist_first_entry(&lo->clients, struct local_client, entry)->conn, 0);
	free(lo->path);
	lo->path = NULL;
}
