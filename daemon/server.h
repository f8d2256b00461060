/*
 * server.h: hpqd's listeners and connections (DESIGN §7).
 *
 * A connection embeds its libuv handle and is freed in the close callback
 * or later, when the last reference goes: a reply that waits for a commit
 * holds a reference, and finds the connection marked dead (its sends are
 * dropped) if the peer went away meanwhile. Every connection starts with
 * Hello (and Auth over TCP when the daemon has a cluster key); then its
 * frames are decoded and dispatched by one switch in server.c to rpc.c
 * (clients) and agentlink.c (agents).
 */
#ifndef HPQD_SERVER_H
#define HPQD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "auth.h"
#include "frame.h"
#include "hpq.pb-c.h"
#include "state.h"

struct hpqd;
struct server;

enum conn_phase {
	CONN_HELLO = 0,   /* waiting for Hello */
	CONN_AUTH,        /* HelloReply carried a nonce: waiting for Auth */
	CONN_READY,
};

struct conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	struct hpqd *d;
	struct dlist link;         /* in the server's list */
	unsigned refs;
	bool dead;                 /* closing or closed: sends are dropped */
	bool pseudo;               /* no socket (fuzzer): replies are discarded */
	bool local;                /* Unix socket: identity from SO_PEERCRED */
	enum conn_phase phase;
	Hpq__Role role;
	uint32_t protocol;         /* the version agreed in Hello */
	char *user;                /* identity (agents: the node name) */
	char *software;            /* Hello.software_version */
	struct actor actor;        /* who this connection acts as, for state.c */
	struct hpq_framer framer;
	uint8_t nonce[HPQ_AUTH_NONCE_BYTES];
	uint32_t peer_uid, peer_gid; /* SO_PEERCRED on the Unix socket */
	struct node *node;         /* agents: after Register */
	bool pushes_open;          /* agents: RegisterReply sent, pushes may flow */
	struct held_frame *held;   /* pushes waiting for RegisterReply, in order */
	struct held_frame **held_tail;
	char peer[96];             /* for log lines: "unix uid 1000", "127.0.0.1:5123" */
	uint64_t accepted_mono;    /* uv_now when accepted: Hello must follow soon */
};

int server_new(struct hpqd *d, struct server **ret_server);
/*
 * Listens on TCP (listen: HOST:PORT, IPv6 as [ADDR]:PORT; port 0 picks
 * one) and on the Unix socket at path; either may be NULL or "". Refuses
 * to take over a socket another live daemon answers on.
 */
int server_listen(struct server *srv, const char *listen, const char *path, char *err,
		  size_t errlen);
/* The TCP port actually bound, 0 if none. */
int server_port(const struct server *srv);
/* Shutdown, step 1: close the listeners and stop reading from everyone. */
void server_quiesce(struct server *srv);
/* Shutdown, step 2: flush what is queued to each peer, then close. */
void server_close_all(struct server *srv);
/* After the loop ended. */
void server_free(struct server *srv);

void server_ref(struct conn *c);
void server_unref(struct conn *c);

/* Sends env on c (dropped if c is dead or pseudo). */
void server_send(struct conn *c, const Hpq__Envelope *env);
/* Sends an encoded frame (hpq_msg_encode), taking ownership of it. */
void server_send_frame(struct conn *c, uint8_t *frame, size_t len);
void server_send_error(struct conn *c, uint64_t id, int code, const char *msg);
void server_send_ok(struct conn *c, uint64_t id);
/*
 * A push to an agent (RunTask, KillTask). An agent reads nothing but
 * RegisterReply until it is registered, so pushes decided meanwhile are
 * held and go out, in order, right after it (server_open_pushes).
 */
void server_push(struct conn *c, const Hpq__Envelope *env);
/* Sends the RegisterReply env, then the held pushes; later pushes flow. */
void server_open_pushes(struct conn *c, const Hpq__Envelope *reply);

/* Closes c after what is queued has been written. */
void server_close(struct conn *c);

/*
 * For the fuzzer: a connection with no socket, already past Hello with
 * the given role and identity; server_feed runs bytes through the same
 * framing, decoding and dispatch as a socket's reads. The caller owns
 * the reference it returns: server_close, then server_unref.
 */
struct conn *server_pseudo(struct hpqd *d, Hpq__Role role, const char *user, bool admin);
void server_feed(struct conn *c, const void *data, size_t len);

#endif
