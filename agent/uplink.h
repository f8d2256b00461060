/*
 * uplink.h: the agent's one connection to hpqd.
 *
 * The uplink connects (non-blocking, with a timeout), says Hello as an
 * agent named after the node, registers the node, and then heartbeats.
 * Any failure (refused, timeout, malformed frame, TLS, Error during the
 * handshake, the daemon closing) closes the connection and tries again
 * after an exponential backoff with jitter: 0.5 s doubling to 30 s, a
 * uniformly random 50-100% of it, back to 0.5 s once registered. Tasks
 * are not affected: they keep running and are reported again when the
 * node registers again.
 *
 * How the node proves who it is depends on --server:
 *  - a Unix socket path: hpqd knows the agent's user from the kernel (it
 *    takes agents there from root and its own user); no TLS;
 *  - HOST:PORT: TLS 1.3 with the node's certificate (credentials.h),
 *    trusting hpqd's certificate by the cluster CA and the name dialled
 *    (--server-name overrides it). A node without a certificate joins
 *    first: TLS trusting hpqd only if its chain holds the CA whose hash
 *    is --ca-hash, Hello, JoinRequest{token, a request for a fresh key};
 *    the JoinReply's certificate and CA are saved, and the uplink connects
 *    again with them at once. A refusal that no retry can change (a bad
 *    or used-up token, the wrong pin, a name taken) gives up: the agent
 *    exits with the reason. Once registered, a certificate with less than
 *    a third of its lifetime left is renewed (RenewRequest for a new key)
 *    and used from the next connection;
 *  - HOST:PORT with --insecure: plaintext, to an --insecure hpqd on
 *    loopback, which takes the node by the name in Hello.
 *
 * The uplink knows the protocol's shape, not the agent's business: what to
 * put into Register and Heartbeat, and what to do with RunTask and
 * KillTask, is asked of its owner through struct uplink_ops. Requests sent
 * with uplink_request get their answer through a callback, called exactly
 * once: with the reply, or with NULL when the connection is lost or the
 * uplink stops before the reply came.
 */
#ifndef HPQ_AGENT_UPLINK_H
#define HPQ_AGENT_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "conn.h"
#include "credentials.h"
#include "hpq.pb-c.h"
#include "tls.h"

#define UPLINK_BACKOFF_MIN 0.5
#define UPLINK_BACKOFF_MAX 30.0
#define UPLINK_CONNECT_TIMEOUT 10.0
#define UPLINK_HANDSHAKE_TIMEOUT 30.0
/* How often a registered uplink looks whether its certificate is due for
 * renewal (more often for a certificate that lives less than 6 times
 * this), and the longest wait after hpqd refused to renew it. */
#define UPLINK_RENEW_CHECK 60.0
#define UPLINK_RENEW_RETRY_MAX 3600.0

struct uplink;

struct uplink_ops {
	/* Fill reg (name is set by the uplink, address is the local end of the
	 * connection unless the owner sets one); release frees what fill made. */
	void (*fill_register)(void *data, Hpq__Register *reg, const char *local_addr);
	void (*release_register)(void *data, Hpq__Register *reg);
	/* Findings for a Heartbeat (may be NULL: none). */
	void (*fill_heartbeat)(void *data, Hpq__Heartbeat *hb);
	/* Registered: the daemon listens now. */
	void (*ready)(void *data);
	/* The registered connection is gone (pending requests got NULL first). */
	void (*lost)(void *data);
	/* After each heartbeat: time to retry what is unanswered. */
	void (*tick)(void *data);
	/* A message from the daemon that is not a reply: RunTask, KillTask, ... */
	void (*message)(void *data, const Hpq__Envelope *env);
	/* Joining: the first attempt is over (joined, failed for now, or given
	 * up). Called once, and only when the uplink started by joining. */
	void (*join_settled)(void *data);
	/* Given up (a join that cannot succeed; logged): the agent should exit. */
	void (*give_up)(void *data);
	/* Fencing ([agents] fence_after of hpqd, RegisterReply.fence_after_ms):
	 * hpqd acknowledged a Register or Heartbeat sent at boot-clock time
	 * sent_ms, so the node's lease runs until sent_ms + fence_after_ms
	 * (CLOCK_BOOTTIME, ms). fence_after_ms 0: hpqd does not fence. May be
	 * NULL. */
	void (*lease)(void *data, int64_t sent_ms, uint64_t fence_after_ms);
};

typedef void uplink_reply_fn(void *ctx, const Hpq__Envelope *reply);

enum uplink_state {
	UPLINK_IDLE,      /* not started, or stopped */
	UPLINK_WAIT,      /* backing off before the next attempt */
	UPLINK_CONNECTING,
	UPLINK_HELLO,
	UPLINK_JOIN,      /* JoinRequest sent */
	UPLINK_REGISTER,
	UPLINK_READY,
};

enum uplink_mode {
	UPLINK_UNIX,      /* hpqd's Unix socket */
	UPLINK_TLS,       /* TCP with TLS */
	UPLINK_PLAIN,     /* TCP in plaintext (--insecure, loopback) */
};

struct uplink_pending {
	uint64_t id;
	uplink_reply_fn *cb;
	void *ctx;
};

struct uplink {
	struct ev_loop *loop;
	const struct uplink_ops *ops;
	void *data;

	char *server, *host, *port, *name;
	char *pool;                 /* configured; a certificate's OU wins */
	enum uplink_mode mode;
	char *tls_name;             /* the name hpqd's certificate must carry */
	struct creds creds;         /* UPLINK_TLS: WORK-DIR/tls */
	char *join_token;           /* until joined; NULL otherwise */
	char *ca_pin;               /* --ca-hash, or NULL */
	struct hpq_tls_ctx *tls_ctx;  /* of the current attempt */
	bool joining;               /* the current attempt joins */
	bool join_unsettled;        /* join_settled not called yet */
	bool gave_up;
	char *join_key_pem;         /* the key of the JoinRequest that is out */
	ev_timer renew_w;
	double renew_next;          /* ev_now() before which no RenewRequest goes out */
	double renew_delay;         /* the wait after a refusal, doubling */
	char *renew_key_pem;        /* the key of the RenewRequest that is out */
	double heartbeat;           /* configured, seconds */
	double heartbeat_now;       /* in use: at most what the daemon asked for */

	enum uplink_state state;
	int fd;                     /* while connecting */
	struct addrinfo *addrs, *addr_next;
	ev_io connect_w;
	ev_timer timer_w;           /* backoff, connect and handshake timeouts */
	ev_timer heartbeat_w;
	double backoff;
	unsigned failures;          /* attempts since the last registration */
	struct conn *conn;
	char local_addr[64];

	/* The daemon's clock, from RegisterReply.daemon_time (uplink_clock_offset). */
	int64_t reg_sent_wall_ms;   /* our clock when Register went out */
	double reg_sent_mono;
	bool clock_known;
	int64_t clock_offset_ms;    /* daemon minus agent, at clock_mono */
	int64_t clock_err_ms;       /* half the round trip */
	int64_t clock_wall_ms;      /* our clock at the middle of the round trip */
	double clock_mono;          /* the monotonic clock then, in seconds */

	/* The lease (uplink_ops.lease). */
	int64_t reg_sent_boot_ms;   /* CLOCK_BOOTTIME when Register went out */
	uint64_t fence_after_ms;    /* from RegisterReply; 0: no fencing */

	uint64_t next_id;
	uint64_t handshake_id;      /* the Hello, JoinRequest or Register being answered */
	struct uplink_pending *pending;
	size_t npending, cap;
};

struct uplink_config {
	const char *server;         /* HOST:PORT, or a Unix socket path (with a '/') */
	const char *server_name;    /* NULL: the host of server */
	const char *name;           /* the node name, sent in Hello */
	const char *pool;           /* sent in Register unless the certificate names one */
	const char *work_dir;       /* absolute; the credentials are in WORK-DIR/tls */
	const char *join_token;     /* NULL: none */
	const char *join_file;      /* the token in a private file; NULL: none */
	const char *ca_hash;        /* the pin for joining; NULL: none */
	bool insecure;              /* TCP in plaintext */
	double heartbeat;           /* seconds */
};

/* Loads the credentials (TCP without --insecure) and checks that the node
 * can reach hpqd at all: a node with neither a certificate nor a join
 * token cannot. Returns 0, or a negative code with err saying what to do. */
int uplink_init(struct uplink *l, struct ev_loop *loop, const struct uplink_config *cfg,
		const struct uplink_ops *ops, void *data, char *err, size_t errlen);
/* First attempt now. */
void uplink_start(struct uplink *l);
/* Closes the connection, answers pending callbacks with NULL, stops retrying. */
void uplink_stop(struct uplink *l);
void uplink_release(struct uplink *l);

bool uplink_ready(const struct uplink *l);
/* Sends a message that needs no answer (a reply carries its request's id).
 * Returns 0, or HPQ_EUNAVAIL when not registered. */
int uplink_send(struct uplink *l, Hpq__Envelope *env);
/* Replies to request id with Ok, or with Error{code, message} when code < 0. */
void uplink_reply(struct uplink *l, uint64_t id, int code, const char *message);
/* Sends a request with a fresh id; cb runs once, later. Returns 0, or
 * HPQ_EUNAVAIL when not registered (cb is then never called). */
int uplink_request(struct uplink *l, Hpq__Envelope *env, uplink_reply_fn *cb, void *ctx);
/* Sends a heartbeat now (for a health change) and restarts the interval. */
void uplink_heartbeat_now(struct uplink *l);

/*
 * The daemon's clock minus ours, in milliseconds: measured at the last
 * registration whose RegisterReply carried daemon_time (NTP's estimate
 * from one round trip: the reply was sent half-way), then carried forward
 * on the monotonic clock, so that a later jump of our clock shows. The
 * error bound is half the round trip. Returns false while unknown (no
 * registration yet, or a daemon that does not send its time).
 */
bool uplink_clock_offset(const struct uplink *l, int64_t *ret_offset_ms, int64_t *ret_err_ms);

/* The TCP socket of the registered connection to hpqd, or -1. */
int uplink_socket(const struct uplink *l);

#endif
