/*
 * server.h: hpqd's transport (docs/design.md §7): listeners, connections,
 * framing, Hello and Auth, write queues, and the replies that wait for a
 * commit.
 *
 * A connection embeds its libuv handle and is freed in the close callback
 * or later, when the last reference goes: a reply that waits for a commit
 * holds a reference, and finds the connection marked dead (its sends are
 * dropped) if the peer went away meanwhile. Every connection starts with
 * Hello (and, from a client over TCP, Auth with a MUNGE credential),
 * which the server answers itself; every later whole message goes to the
 * on_message callback given to server_new (the router). The server knows
 * nothing of what a message means.
 *
 * TCP is TLS 1.3 (tls.h) unless hpqd runs --insecure: an agent proves its
 * node with its certificate (the CN must be the name in Hello); an agent
 * without one is in CONN_JOIN, where only JoinRequest goes to the router.
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
#include "tls.h"

struct config;
struct peer_count;
struct server;
struct store;

enum conn_phase {
	CONN_HELLO = 0,   /* waiting for Hello */
	CONN_AUTH,        /* HelloReply carried a nonce: waiting for Auth */
	CONN_MUNGE,       /* Auth carried a MUNGE credential: munged is checking it */
	CONN_JOIN,        /* an agent over TLS without a certificate: JoinRequest only */
	CONN_JOINED,      /* its JoinRequest was taken: nothing more */
	CONN_READY,
};

struct conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	struct server *srv;
	struct dlist link;         /* in the server's list */
	unsigned refs;
	bool dead;                 /* closing or closed: sends are dropped */
	bool pseudo;               /* no socket (fuzzer): replies are discarded */
	bool local;                /* Unix socket: identity from SO_PEERCRED */
	bool need_munge;           /* TCP client: Auth must carry a MUNGE credential */
	bool munged;               /* identity from a MUNGE credential: munge_uid, munge_gid */
	uint32_t munge_uid, munge_gid;
	enum conn_phase phase;
	Hpq__Role role;
	uint32_t protocol;         /* the version agreed in Hello */
	char *user;                /* identity (agents: the node name) */
	char *software;            /* Hello.software_version */
	struct actor actor;        /* who this connection acts as, for the state */
	uint64_t rights_mono;      /* uv_now when actor's groups and admin were looked up */
	struct hpq_framer framer;
	struct hpq_tls *tls;       /* TCP without --insecure: the TLS channel */
	bool tls_started;          /* the peer's first bytes were a TLS record */
	bool tls_ready;            /* its handshake is done */
	bool tls_failed;           /* it failed: no close_notify */
	bool has_cert;             /* the peer sent a certificate the CA signed: cert */
	struct hpq_cert_info cert; /* the one that vouches for it: presented, or renewed
	                            * over it (server_cert_renewed); c ends when it expires */
	uint8_t nonce[HPQ_AUTH_NONCE_BYTES];
	uint32_t peer_uid, peer_gid; /* SO_PEERCRED on the Unix socket */
	char peer[96];             /* for log lines: "unix uid 1000", "127.0.0.1:5123" */
	uint64_t accepted_mono;    /* uv_now when accepted: Hello must follow soon */
	/* [limits] (server.c): what the reaper and the caps look at. */
	uint64_t last_rx_mono;     /* uv_now of the last whole message */
	uint64_t frame_mono;       /* uv_now when the partial frame buffered began; 0: none */
	uint64_t write_mono;       /* uv_now of the last write progress while one is queued */
	size_t streamed;           /* bytes of the later frames of long replies not yet
	                            * written: not held against max_write_queue */
	uint32_t inflight;         /* replies waiting for a commit */
	bool paused;               /* reading stopped until inflight drops */
	bool settled;              /* counted as what it turned out to be after Hello */
	bool unprivileged;         /* counts toward [limits] max_connections */
	bool follower;             /* events.c: events are pushed to it, so silence is normal */
	struct peer_count *count;  /* the per-user or per-address count it holds, or NULL */

	/* The layer above may attach a session to the connection; on_close,
	 * if set, is called once when the connection dies, before its
	 * sends start being dropped for good. */
	void *session;
	void (*on_close)(struct conn *c);
};

/* Who the server hands messages to, and how it decides who is who. */
struct server_params {
	uv_loop_t *loop;
	struct store *store;           /* replies after commit wait on it */
	const struct config *cfg;      /* [auth] admins and munge_socket, --insecure */
	uid_t uid;                     /* the daemon's own uid: an administrator */
	struct hpq_tls_ctx *tls;       /* TCP speaks TLS with it; NULL: plain (--insecure) */
	struct groups *groups;         /* users' groups for roles (groups.h); NULL: no cache */
	/* A whole message from a peer past Hello (and Auth). */
	void (*on_message)(void *arg, struct conn *c, const Hpq__Envelope *env);
	/* The certificate that vouches for c expired: c is being closed, for
	 * why (which names the certificate). NULL: only logged. */
	void (*on_lapsed)(void *arg, struct conn *c, const char *why);
	void *arg;
};

int server_new(const struct server_params *p, struct server **ret_server);
/* For --insecure (cfg->insecure): 0 if listen is a loopback address (or
 * empty), else HPQ_EINVAL and why in err. hpqd checks it before starting. */
int server_check_insecure(const char *listen, char *err, size_t errlen);
/*
 * Listens on TCP (listen: HOST:PORT, IPv6 as [ADDR]:PORT; port 0 picks
 * one) and on the Unix socket at path; either may be NULL or "". Refuses
 * to take over a socket another live daemon answers on.
 */
int server_listen(struct server *srv, const char *listen, const char *path, char *err,
		  size_t errlen);
/* The TCP port actually bound, 0 if none. */
int server_port(const struct server *srv);
/* New TCP connections speak TLS with tls from now on (hpqd's certificate
 * renewed: ca_renew_server); open ones keep the context they began with,
 * which OpenSSL keeps for them. Not for a server without TLS. */
void server_set_tls(struct server *srv, struct hpq_tls_ctx *tls);
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
/* server_send for the frames of one long reply after its first (a streamed
 * list), which was sent with server_send: they are let past [limits]
 * max_write_queue and not counted against it, so that a reply longer than
 * that is not cut off, nor another reply sent while it is on its way. The
 * long reply bounds what it queues itself (server_queued); a client that
 * does not read meets [limits] write_timeout. */
void server_send_continued(struct conn *c, const Hpq__Envelope *env);
/* The same for a frame encoded already (hpq_msg_encode), which it takes. */
void server_send_frame_continued(struct conn *c, uint8_t *frame, size_t len);
/* Bytes queued to c and not yet written (0 once it is dead). */
size_t server_queued(const struct conn *c);
/* Sends an encoded frame (hpq_msg_encode), taking ownership of it. */
void server_send_frame(struct conn *c, uint8_t *frame, size_t len);
void server_send_error(struct conn *c, uint64_t id, int code, const char *msg);
void server_send_ok(struct conn *c, uint64_t id);

/*
 * Replies once everything recorded so far is committed: env is encoded
 * now (so it says what was decided now) and written from the commit's
 * completion, or replaced by an Error if the commit failed.
 */
void server_reply_after_commit(struct conn *c, const Hpq__Envelope *env);
/* The same for a reply of n frames (hpq_msg_encode's, taken over), sent
 * in order, the later ones as server_send_frame_continued sends them. */
void server_frames_after_commit(struct conn *c, uint64_t id, uint8_t **frames, size_t *lens,
				size_t n);
void server_ok_after_commit(struct conn *c, uint64_t id);
/*
 * A request whose reply comes later from elsewhere (a read of the store,
 * a relay to an agent): server_awaits holds c, as server_ref does, and
 * counts the request against [limits] max_inflight, as a reply waiting
 * for its commit is counted, so that a peer cannot queue reads without
 * end by not waiting for their answers. server_answered, once the reply
 * is sent (or c died), lets go of both.
 */
void server_awaits(struct conn *c);
void server_answered(struct conn *c);

/* Closes c after what is queued has been written. */
void server_close(struct conn *c);
/* The node c proved itself as renewed its certificate over c: from now on
 * info's expiry, not the presented certificate's, ends c (a peer whose
 * certificate expires is disconnected). Ignored unless info is c's node's
 * and lasts longer. */
void server_cert_renewed(struct conn *c, const struct hpq_cert_info *info);
/* Closes every connection whose peer proved itself with a certificate of
 * node (revocation); returns how many. */
size_t server_close_node(struct server *srv, const char *node);

/*
 * For the fuzzer: a connection with no socket, already past Hello with
 * the given role and identity; server_feed runs bytes through the same
 * framing, decoding and delivery as a socket's reads. The caller owns
 * the reference it returns: server_close, then server_unref.
 */
struct conn *server_pseudo(struct server *srv, Hpq__Role role, const char *user, bool admin);
void server_feed(struct conn *c, const void *data, size_t len);
/* For the fuzzer: a connection with no socket before Hello, as a TCP peer
 * over TLS without a certificate is (a client, or an agent that joins). */
struct conn *server_pseudo_peer(struct server *srv);

#endif
