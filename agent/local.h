/*
 * local.h: the agent's Unix socket for the tasks it runs
 * (HPQ_AGENT_SOCKET, <work-dir>/agent.sock).
 *
 * `hpq checkpoint` inside a task connects here and speaks the normal
 * protocol: Hello (role client), then CheckpointRequest. The agent checks
 * that the task (id, attempt) runs on this node and that the caller's uid
 * (SO_PEERCRED, never what it claims) is the task's or root's, forwards
 * the request to hpqd on its own authenticated connection, and relays the
 * daemon's answer, which the daemon sends after committing. So a task
 * needs no key and cannot record checkpoints for another user's task.
 * When the daemon is not connected the caller gets an Error at once and
 * may retry; nothing is queued on its behalf.
 *
 * Limits, so one user cannot block the others' `hpq checkpoint`: at most
 * max_per_uid connections per uid, and LOCAL_MAX_CLIENTS in all of which
 * LOCAL_ROOT_RESERVE are kept for root; frames of LOCAL_FRAME_MAX at most;
 * Hello, and any frame begun, within LOCAL_READ_TIMEOUT; a client silent
 * for idle_timeout (and not waiting for the daemon's answer) is closed.
 * Refusals are logged at most once per LOCAL_LOG_INTERVAL.
 */
#ifndef HPQ_AGENT_LOCAL_H
#define HPQ_AGENT_LOCAL_H

#include <stddef.h>

#include <ev.h>

#include "list.h"
#include "log.h"

struct exec;
struct uplink;
struct local_client;

#define LOCAL_SOCKET "agent.sock"
#define LOCAL_MAX_CLIENTS 256
#define LOCAL_ROOT_RESERVE 16     /* of LOCAL_MAX_CLIENTS, only root may take these */
#define LOCAL_FRAME_MAX (64u << 10) /* a checkpoint request is a path and numbers */
#define LOCAL_READ_TIMEOUT 5.0    /* seconds for Hello, and to finish a frame begun */
#define LOCAL_LOG_INTERVAL 10000  /* ms: one line about refused clients per interval */
#define LOCAL_DEFAULT_MAX_PER_UID 8
#define LOCAL_DEFAULT_IDLE_TIMEOUT 30.0

struct local {
	struct ev_loop *loop;
	char *path;
	int fd;
	ev_io accept_w;
	struct exec *exec;      /* the tasks, to check requests against */
	struct uplink *uplink;  /* where requests go */
	struct dlist clients;   /* of struct local_client */
	size_t nclients;
	unsigned max_per_uid;   /* connections of one uid other than root */
	double idle_timeout;    /* seconds */
	struct hpq_log_limit refused_log;
};

/* Listens on path (replacing a stale socket file), mode 0666: the peer's
 * credentials are the access check. Returns 0 or -errno (HPQ_EINVAL for a
 * path too long for a socket address). */
int local_open(struct local *lo, struct ev_loop *loop, const char *path, struct exec *exec,
	       struct uplink *uplink);
/* The limits of the agent's settings (local-max-per-user,
 * local-idle-timeout); local_open sets the defaults. */
void local_set_limits(struct local *lo, unsigned max_per_uid, double idle_timeout);
/* Closes the socket and every client, and removes the socket file. */
void local_close(struct local *lo);

#endif
