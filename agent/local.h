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
 */
#ifndef HPQ_AGENT_LOCAL_H
#define HPQ_AGENT_LOCAL_H

#include <stddef.h>

#include <ev.h>

#include "list.h"

struct exec;
struct uplink;
struct local_client;

#define LOCAL_SOCKET "agent.sock"
#define LOCAL_MAX_CLIENTS 256
#define LOCAL_IDLE_TIMEOUT 60.0  /* seconds without a message: the client is dropped */

struct local {
	struct ev_loop *loop;
	char *path;
	int fd;
	ev_io accept_w;
	struct exec *exec;      /* the tasks, to check requests against */
	struct uplink *uplink;  /* where requests go */
	struct dlist clients;   /* of struct local_client */
	size_t nclients;
};

/* Listens on path (replacing a stale socket file), mode 0666: the peer's
 * credentials are the access check. Returns 0 or -errno (HPQ_EINVAL for a
 * path too long for a socket address). */
int local_open(struct local *lo, struct ev_loop *loop, const char *path, struct exec *exec,
	       struct uplink *uplink);
/* Closes the socket and every client, and removes the socket file. */
void local_close(struct local *lo);

#endif
