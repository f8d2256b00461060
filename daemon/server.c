/*
 * server.c: listeners, connections, framing, Hello and Auth (server.h).
 *
 * Reading follows redis's shape: libuv hands us bytes (into one shared
 * buffer: reads are handled to completion before the next one), we feed
 * the connection's framer and handle every whole frame it yields. A frame
 * over the limit gets an Error and the connection is closed once that is
 * written; a frame that does not decode gets an Error and the connection
 * goes on; so does a request the handler refuses. Writes go through
 * uv_write, whose queue is per stream; a peer that lets more than
 * [limits] max_write_queue pile up, or reads nothing for write_timeout,
 * is cut off rather than allowed to grow the heap.
 *
 * Limits against misbehaving peers ([limits], docs/security.md): before
 * Hello (and Auth) a peer may send frames of PREAUTH_FRAME_MAX only, the
 * framer checking each length before keeping a byte of the body, and
 * must finish within hello_timeout; TCP peers not yet known count per
 * address. A Unix peer counts by its uid from the moment it is accepted,
 * a TCP client once it is known, against max_connections_per_user and
 * max_connections; root, hpqd's own user and agents are never counted,
 * so there is always room for them (file descriptors permitting:
 * LimitNOFILE). A frame begun must be complete within read_timeout; a
 * client silent for idle_timeout is closed, unless events are pushed to
 * it or it waits for an answer, and an agent once it missed twice the
 * heartbeats that make its node lost. At most max_inflight replies of a
 * connection wait for a commit: then its reading stops until one is
 * sent. What peers cause at will is logged at most once a log_interval.
 *
 * TLS (unless --insecure): every TCP connection is a TLS 1.3 channel over
 * memory BIOs (tls.h). What the socket yields is fed to the channel, the
 * plaintext it yields to the framer; every frame sent is encrypted and the
 * ciphertext written. A peer whose first byte is not a TLS handshake
 * record gets one plain Error saying so. A failed handshake is logged
 * (rate-limited) and closes the connection; the handshake counts against
 * hello_timeout.
 *
 * Identity is settled by Hello before anything else: on the Unix socket
 * from SO_PEERCRED (Hello.name is ignored). Over TCP a client's comes with
 * Auth, from a MUNGE credential bound to this connection's nonce, which
 * munged checks (munge_decode, on libuv's thread pool since it blocks); an
 * agent's from its certificate, whose CN must be the name Hello gives, or
 * it may only join (CONN_JOIN). Hello.name is trusted only when hpqd runs
 * --insecure (loopback only, no TLS). Every message after that goes whole
 * to the on_message callback (the router). A user's groups, and whether
 * they make an administrator, are looked up at Hello and again before a
 * request once GROUPS_TTL_MS old: a connection that lasts days keeps the
 * user, not the rights of its first minute.
 *
 * A certificate is checked for expiry by the handshake only, and a
 * connection outlives it: so the certificate that vouches for a live
 * connection (the one it presented, or the one the node renewed over it:
 * server_cert_renewed) is checked again before every message is handed on
 * and by the reaper. Once it has expired the connection is closed, the
 * on_lapsed callback told why first, and nothing the peer sent after is
 * read.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <munge.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "groups.h"
#include "hpq.h"
#include "log.h"
#include "msg.h"
#include "parse.h"
#include "rights.h"
#include "server.h"
#include "store.h"
#include "strmap.h"
#include "xalloc.h"

#define READ_BUF 65536
#define BACKLOG 128
/* The largest frame a peer may send before Hello (and Auth) are done: a
 * Hello or an Auth is a few hundred bytes, so nobody unknown can make the
 * daemon buffer a whole HPQ_FRAME_MAX. */
#define PREAUTH_FRAME_MAX (64u << 10)

/* How many connections hold one key ("uid:1000", "addr:10.0.0.7"). */
struct peer_count {
	char *key;
	uint32_t n;
};

struct server {
	struct server_params p;
	uv_tcp_t tcp;
	bool has_tcp;
	uv_pipe_t pipe;
	bool has_pipe;
	char *socket_path;
	int port;
	struct dlist conns;
	uv_timer_t reaper;
	bool has_reaper;
	bool quiesced;               /* stopping: reads no more requests */
	struct strmap counts;        /* of struct peer_count, by key */
	uint32_t unprivileged;       /* connections counted toward max_connections */
	struct hpq_log_limit peer_log; /* refused and reaped peers */
	char rbuf[READ_BUF];
	char pbuf[READ_BUF];         /* plaintext out of a TLS channel */
};

struct write_req {
	uv_write_t req;
	struct conn *c;
	uint8_t *buf;
	size_t streamed;             /* its part of c->streamed */
};

static void conn_free(struct conn *c)
{
	hpq_tls_free(c->tls);
	hpq_framer_release(&c->framer);
	free(c->user);
	free(c->software);
	free(c->actor.groups);
	free(c);
}

void server_ref(struct conn *c)
{
	c->refs++;
}

void server_unref(struct conn *c)
{
	if (--c->refs == 0)
		conn_free(c);
}

static void on_closed(uv_handle_t *h)
{
	server_unref(container_of(h, struct conn, h.handle));
}

/* ---------------------------------------------------------------- counts ([limits]) */

static const struct limits_config *limits(const struct server *srv)
{
	return &srv->p.cfg->limits;
}

/* Root and hpqd's own user always get in: whatever users do, the
 * administrator and the agents on this host can still connect. */
static bool privileged_uid(const struct server *srv, uint32_t uid)
{
	return uid == 0 || uid == (uint32_t)srv->p.uid;
}

static uint32_t count_of(const struct server *srv, const char *key)
{
	const struct peer_count *pc = strmap_get(&srv->counts, key);

	return pc ? pc->n : 0;
}

static void count_take(struct conn *c, const char *key)
{
	struct server *srv = c->srv;
	struct peer_count *pc = strmap_get(&srv->counts, key);

	if (!pc) {
		pc = xcalloc(1, sizeof(*pc));
		pc->key = xstrdup(key);
		strmap_put(&srv->counts, pc->key, pc);
	}
	pc->n++;
	c->count = pc;
}

static void count_drop(struct conn *c)
{
	struct peer_count *pc = c->count;

	if (!pc)
		return;
	c->count = NULL;
	if (--pc->n == 0) {
		strmap_del(&c->srv->counts, pc->key);
		free(pc->key);
		free(pc);
	}
}

/*
 * Admits a user's connection against max_connections and
 * max_connections_per_user (key: "uid:N", or "user:NAME" for a TCP name
 * without an account here). Returns NULL, or why it is refused.
 */
static const char *admit_user(struct conn *c, const char *key, char *why, size_t len)
{
	struct server *srv = c->srv;
	const struct limits_config *l = limits(srv);

	if (srv->unprivileged >= l->max_connections) {
		snprintf(why, len, "hpqd holds %u connections of users, its limit "
			 "([limits] max_connections %u): try again later", srv->unprivileged,
			 l->max_connections);
		return why;
	}
	if (count_of(srv, key) >= l->max_connections_per_user) {
		snprintf(why, len, "too many connections of %s: the limit is %u per user "
			 "([limits] max_connections_per_user)", key, l->max_connections_per_user);
		return why;
	}
	count_take(c, key);
	c->unprivileged = true;
	srv->unprivileged++;
	return NULL;
}

static void uncount(struct conn *c)
{
	count_drop(c);
	if (c->unprivileged) {
		c->unprivileged = false;
		c->srv->unprivileged--;
	}
}

/* Marks c dead and tells the session's owner; the handle closes separately. */
static void conn_kill(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	uncount(c);
	dlist_del(&c->link);
	if (c->on_close)
		c->on_close(c);
	log_debug("%s: connection closed", c->peer);
}

static void close_now(struct conn *c)
{
	conn_kill(c);
	if (c->pseudo)
		return;      /* its creator holds the reference */
	if (!uv_is_closing(&c->h.handle))
		uv_close(&c->h.handle, on_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	free(req);
	if (!uv_is_closing(&c->h.handle))
		uv_close(&c->h.handle, on_closed);
}

static void tls_flush(struct conn *c, bool streamed);

void server_close(struct conn *c)
{
	uv_shutdown_t *req;

	if (c->pseudo || c->dead) {
		conn_kill(c);
		return;
	}
	conn_kill(c);
	uv_read_stop(&c->h.stream);
	if (c->tls && c->tls_ready && !c->tls_failed) {
		hpq_tls_shutdown(c->tls);
		tls_flush(c, false);
	}
	req = xcalloc(1, sizeof(*req));
	req->data = c;
	if (uv_shutdown(req, &c->h.stream, on_shutdown) < 0) {
		free(req);
		if (!uv_is_closing(&c->h.handle))
			uv_close(&c->h.handle, on_closed);
	}
}

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = container_of(req, struct write_req, req);

	if (status < 0 && status != UV_ECANCELED && !w->c->dead) {
		log_debug("%s: write failed: %s", w->c->peer, uv_strerror(status));
		close_now(w->c);
	}
	if (status == 0)
		w->c->write_mono = uv_now(w->c->srv->p.loop);
	w->c->streamed -= w->streamed;
	free(w->buf);
	free(w);
}

/* Writes bytes as they are (ciphertext, or a frame on a plain connection);
 * streamed: they carry a long reply's later frames (server_send_continued). */
static void write_raw(struct conn *c, uint8_t *buf, size_t len, bool streamed)
{
	struct write_req *w;
	uv_buf_t b;
	int r;

	if (c->h.stream.write_queue_size == 0)
		c->write_mono = uv_now(c->srv->p.loop);
	w = xcalloc(1, sizeof(*w));
	w->c = c;
	w->buf = buf;
	w->streamed = streamed ? len : 0;
	c->streamed += w->streamed;
	b = uv_buf_init((char *)w->buf, (unsigned)len);
	r = uv_write(&w->req, &c->h.stream, &b, 1, on_written);
	if (r < 0) {
		c->streamed -= w->streamed;
		free(w->buf);
		free(w);
		close_now(c);
	}
}

/* Writes what the TLS channel has for the peer (handshake records too). */
static void tls_flush(struct conn *c, bool streamed)
{
	size_t n = hpq_tls_out_pending(c->tls);
	uint8_t *buf;

	if (!n || uv_is_closing(&c->h.handle))
		return;
	buf = xmalloc(n);
	hpq_tls_out_take(c->tls, buf, n);
	write_raw(c, buf, n, streamed);
}

/*
 * Bytes of replies c has left unread, less what the later frames of long
 * replies (server_send_continued) leave queued: a client that sent a list
 * and a submit at once and reads both is not cut off because the
 * submit's reply came while the list was still on its way. (A partly
 * written frame counts whole, so this errs toward the client.)
 */
static size_t unread_replies(const struct conn *c)
{
	size_t queued = c->h.stream.write_queue_size;

	return queued > c->streamed ? queued - c->streamed : 0;
}

/* bounded: checked against [limits] max_write_queue (not a long reply's
 * later frame, server_send_continued). */
static void send_frame(struct conn *c, uint8_t *frame, size_t len, bool bounded)
{
	if (c->dead || c->pseudo) {
		free(frame);
		return;
	}
	if (bounded && unread_replies(c) > limits(c->srv)->max_write_queue) {
		hpq_log_limited(&c->srv->peer_log, LOG_WARNING,
				"%s: not reading its replies (%zu bytes queued, [limits] "
				"max_write_queue): disconnecting", c->peer, unread_replies(c));
		free(frame);
		close_now(c);
		return;
	}
	if (!c->tls) {
		write_raw(c, frame, len, !bounded);
		return;
	}
	if (hpq_tls_write(c->tls, frame, len) < 0) {
		free(frame);
		close_now(c);
		return;
	}
	free(frame);
	tls_flush(c, !bounded);
}

size_t server_queued(const struct conn *c)
{
	return c->dead || c->pseudo ? 0 : c->h.stream.write_queue_size;
}

void server_send_frame(struct conn *c, uint8_t *frame, size_t len)
{
	send_frame(c, frame, len, true);
}

void server_send(struct conn *c, const Hpq__Envelope *env)
{
	size_t len;
	uint8_t *frame;

	if (c->dead || c->pseudo)
		return;
	frame = hpq_msg_encode(env, &len);
	server_send_frame(c, frame, len);
}

void server_send_continued(struct conn *c, const Hpq__Envelope *env)
{
	size_t len;
	uint8_t *frame;

	if (c->dead || c->pseudo)
		return;
	frame = hpq_msg_encode(env, &len);
	send_frame(c, frame, len, false);
}

void server_send_frame_continued(struct conn *c, uint8_t *frame, size_t len)
{
	send_frame(c, frame, len, false);
}

void server_send_error(struct conn *c, uint64_t id, int code, const char *msg)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Error err = HPQ__ERROR__INIT;

	err.code = code;
	err.message = (char *)(msg && *msg ? msg : hpq_strerror(code));
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_ERROR;
	env.error = &err;
	log_debug("%s: request %llu refused: %s", c->peer, (unsigned long long)id, err.message);
	server_send(c, &env);
}

void server_send_ok(struct conn *c, uint64_t id)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Ok ok = HPQ__OK__INIT;

	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_OK;
	env.ok = &ok;
	server_send(c, &env);
}

/* ---------------------------------------------------------------- replies after commit */

struct pending_reply {
	struct conn *c;
	uint64_t id;
	uint8_t **frames;
	size_t *lens, n;
};

static void conn_resume(struct conn *c);

static void on_committed(void *arg, int status)
{
	struct pending_reply *p = arg;

	if (status < 0) {
		struct store_health h;
		char msg[600];

		/* Only a stop fails a change that waited for its commit (store.h). */
		store_health(p->c->srv->p.store, &h);
		snprintf(msg, sizeof(msg), "the change could not be stored: %s; the daemon is "
			 "stopping", *h.problem ? h.problem : "the state store failed");
		for (size_t i = 0; i < p->n; i++)
			free(p->frames[i]);
		server_send_error(p->c, p->id, HPQ_ESTORAGE, msg);
	} else {
		for (size_t i = 0; i < p->n; i++)
			send_frame(p->c, p->frames[i], p->lens[i], i == 0);
	}
	server_answered(p->c);
	free(p->frames);
	free(p->lens);
	free(p);
}

void server_frames_after_commit(struct conn *c, uint64_t id, uint8_t **frames, size_t *lens,
				size_t n)
{
	struct pending_reply *p = xcalloc(1, sizeof(*p));

	p->c = c;
	p->id = id;
	p->frames = (void *)xmemdup(frames, n * sizeof(*frames));
	p->lens = (void *)xmemdup(lens, n * sizeof(*lens));
	p->n = n;
	server_awaits(c);
	store_after_commit(c->srv->p.store, on_committed, p);
}

void server_reply_after_commit(struct conn *c, const Hpq__Envelope *env)
{
	size_t len;
	uint8_t *frame = hpq_msg_encode(env, &len);

	server_frames_after_commit(c, env->id, &frame, &len, 1);
}

void server_ok_after_commit(struct conn *c, uint64_t id)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Ok ok = HPQ__OK__INIT;

	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_OK;
	env.ok = &ok;
	server_reply_after_commit(c, &env);
}

void server_awaits(struct conn *c)
{
	server_ref(c);
	c->inflight++;
}

void server_answered(struct conn *c)
{
	c->inflight--;
	conn_resume(c);
	server_unref(c);
}

/* ---------------------------------------------------------------- identity */

static bool is_admin(const struct server *srv, const char *user, uint32_t uid, bool known)
{
	const struct config *cfg = srv->p.cfg;

	if (known && (uid == 0 || uid == (uint32_t)srv->p.uid))
		return true;
	for (size_t i = 0; i < cfg->nadmins; i++)
		if (!strcmp(cfg->admins[i], user))
			return true;
	return false;
}

/*
 * Roles: the user's groups (teams' @group members and admins, [auth]
 * admin_group), from NSS for the uid and gid established, and whether
 * that makes an administrator. Set at Hello, and again before a request
 * once they are GROUPS_TTL_MS old (refresh_rights).
 */
static void set_rights(struct conn *c)
{
	free(c->actor.groups);
	c->actor.groups = NULL;
	c->actor.ngroups = 0;
	c->rights_mono = uv_now(c->srv->p.loop);
	if (!c->actor.agent && c->actor.known)
		c->actor.groups = groups_of(c->srv->p.groups, c->user, c->actor.gid,
					    (int64_t)c->rights_mono, &c->actor.ngroups);
	c->actor.admin = !c->actor.agent &&
			 (is_admin(c->srv, c->user, c->actor.uid, c->actor.known) ||
			  actor_in_group(&c->actor, c->srv->p.cfg->admin_group));
}

/* A connection lasts as long as its peer likes (hpq top, a follower of
 * events): its rights follow the user's groups as a new connection's
 * would, within the groups cache's TTL, not those of when it said Hello. */
static void refresh_rights(struct conn *c)
{
	bool was = c->actor.admin;

	if (c->pseudo || c->actor.agent || !c->actor.known ||
	    uv_now(c->srv->p.loop) - c->rights_mono < GROUPS_TTL_MS)
		return;
	set_rights(c);
	if (was != c->actor.admin)
		log_notice("%s: user %s %s an administrator now (its groups changed)", c->peer,
			   c->user, c->actor.admin ? "is" : "is no longer");
}

/* Sets user, uid, gid and admin of c; Unix socket from the peer
 * credentials, a TCP client from its MUNGE credential (c->munged), an
 * agent or an --insecure daemon's TCP client from the name the peer gives. */
static int identify(struct conn *c, const char *name, struct state_err *e)
{
	struct passwd *pw;
	char num[32];

	if (c->local || c->munged) {
		uint32_t uid = c->local ? c->peer_uid : c->munge_uid;

		pw = getpwuid(uid);
		snprintf(num, sizeof(num), "%u", uid);
		c->user = xstrdup(pw ? pw->pw_name : num);
		c->actor.uid = uid;
		c->actor.gid = c->munged ? c->munge_gid : pw ? pw->pw_gid : c->peer_gid;
		c->actor.known = true;
	} else {
		if (!*name || strlen(name) >= HPQ_NAME_MAX || strpbrk(name, " \t\n:/,"))
			return state_errf(e, HPQ_EAUTH, "a TCP peer must name its %s in Hello",
					  c->role == HPQ__ROLE__ROLE_AGENT ? "node" : "user");
		c->user = xstrdup(name);
		pw = c->role == HPQ__ROLE__ROLE_CLIENT ? getpwnam(name) : NULL;
		c->actor.known = pw != NULL;
		c->actor.uid = pw ? pw->pw_uid : UINT32_MAX;
		c->actor.gid = pw ? pw->pw_gid : UINT32_MAX;
	}
	c->actor.user = c->user;
	c->actor.agent = c->role == HPQ__ROLE__ROLE_AGENT;
	set_rights(c);
	if (c->actor.agent) {
		if (c->local && !privileged_uid(c->srv, c->peer_uid))
			return state_errf(e, HPQ_EPERM,
					  "agents on the Unix socket must run as root or as hpqd's "
					  "user");
		if (hpq_check_name(name) < 0)
			return state_errf(e, HPQ_EINVAL, "invalid node name '%.64s' in Hello",
					  name);
		free(c->user);
		c->user = xstrdup(name);
		c->actor.user = c->user;
		c->actor.node = c->user;
	}
	return 0;
}

static int on_hello(struct conn *c, uint64_t id, const Hpq__Hello *h, struct state_err *e)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__HelloReply rep = HPQ__HELLO_REPLY__INIT;
	int r;

	/* The promise (docs/upgrades.md): peers one release back are served; a
	 * newer peer is refused, as the daemon is upgraded first. */
	if (h->protocol_version < HPQ_PROTOCOL_MIN)
		return state_errf(e, HPQ_EVERSION,
				  "protocol version %u is too old (hpqd %s speaks %d to %d): "
				  "upgrade this hpq or hpq-agent to a release hpqd serves",
				  h->protocol_version, HPQ_VERSION, HPQ_PROTOCOL_MIN,
				  HPQ_PROTOCOL_VERSION);
	if (h->protocol_version > HPQ_PROTOCOL_VERSION)
		return state_errf(e, HPQ_EVERSION,
				  "protocol version %u is newer than hpqd %s speaks (%d to %d): "
				  "upgrade hpqd first, then the agents, then hpq",
				  h->protocol_version, HPQ_VERSION, HPQ_PROTOCOL_MIN,
				  HPQ_PROTOCOL_VERSION);
	if (h->role != HPQ__ROLE__ROLE_CLIENT && h->role != HPQ__ROLE__ROLE_AGENT)
		return state_errf(e, HPQ_EPROTO, "Hello without a role");
	c->role = h->role;
	c->protocol = h->protocol_version;
	free(c->software);
	c->software = xstrndup(h->software_version, 64);
	/* A TCP client's user comes with Auth, from munged: not from its name. */
	c->need_munge = !c->local && c->role == HPQ__ROLE__ROLE_CLIENT &&
			!c->srv->p.cfg->insecure;
	if (c->tls && c->role == HPQ__ROLE__ROLE_AGENT) {
		/* A node is its certificate's; without one it may only join. */
		if (hpq_check_name(h->name) < 0)
			return state_errf(e, HPQ_EINVAL, "invalid node name '%.64s' in Hello",
					  h->name);
		if (c->has_cert && strcmp(h->name, c->cert.cn))
			return state_errf(e, HPQ_EAUTH, "this certificate is node %s's: it cannot "
					  "say Hello as %.64s", c->cert.cn, h->name);
		if (!c->has_cert) {
			c->user = xstrdup(h->name);
			c->actor.user = c->user;
			c->actor.agent = true;
			c->phase = CONN_JOIN;
		}
	}
	if (!c->need_munge && c->phase != CONN_JOIN) {
		r = identify(c, h->name, e);
		if (r < 0)
			return r;
	}
	rep.protocol_version = c->protocol;
	rep.software_version = (char *)HPQ_VERSION;
	rep.user = c->need_munge ? (char *)"" : c->user;
	rep.admin = !c->need_munge && c->actor.admin;
	rep.munge = c->need_munge;
	if (c->need_munge) {
		hpq_auth_nonce(c->nonce);
		rep.nonce.data = c->nonce;
		rep.nonce.len = sizeof(c->nonce);
		c->phase = CONN_AUTH;
	} else if (c->phase != CONN_JOIN) {
		c->phase = CONN_READY;
	}
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO_REPLY;
	env.hello_reply = &rep;
	server_send(c, &env);
	log_debug("%s: hello from %s %s (%s)%s", c->peer,
		  c->role == HPQ__ROLE__ROLE_AGENT ? "agent" : "user",
		  c->need_munge ? "(who MUNGE will tell)" : c->user, h->software_version,
		  c->actor.admin ? ", administrator" : "");
	return 0;
}

static void settle(struct conn *c);

/* A MUNGE credential on its way through munged (on libuv's thread pool:
 * munge_decode blocks on munged's socket). */
struct munge_check {
	uv_work_t req;
	struct conn *c;            /* referenced until the check is done */
	uint64_t id;               /* Auth's request id */
	char *cred, *socket;
	munge_err_t err;
	char msg[160];             /* libmunge's words for err */
	void *payload;
	int len;
	uid_t uid;
	gid_t gid;
};

/* On the thread pool: only the munge_check itself is touched here. */
static void munge_work(uv_work_t *req)
{
	struct munge_check *m = container_of(req, struct munge_check, req);
	munge_ctx_t ctx = munge_ctx_create();

	if (!ctx) {
		m->err = EMUNGE_NO_MEMORY;
		snprintf(m->msg, sizeof(m->msg), "%s", munge_strerror(m->err));
		return;
	}
	m->err = munge_ctx_set(ctx, MUNGE_OPT_SOCKET, m->socket);
	if (m->err == EMUNGE_SUCCESS)
		m->err = munge_decode(m->cred, ctx, &m->payload, &m->len, &m->uid, &m->gid);
	if (m->err != EMUNGE_SUCCESS)
		snprintf(m->msg, sizeof(m->msg), "%s",
			 munge_ctx_strerror(ctx) ? munge_ctx_strerror(ctx)
						 : munge_strerror(m->err));
	munge_ctx_destroy(ctx);
}

/* What munged said, and whether the payload names this connection. */
static int munge_verdict(struct conn *c, const struct munge_check *m, struct state_err *e)
{
	char want[HPQ_MUNGE_PAYLOAD_MAX];
	int n;

	switch (m->err) {
	case EMUNGE_SUCCESS:
		break;
	case EMUNGE_CRED_EXPIRED:
		return state_errf(e, HPQ_EAUTH, "MUNGE credential expired: connect again for a "
				  "fresh one (and check that the clocks of this host and "
				  "hpqd's agree)");
	case EMUNGE_CRED_REWOUND:
		return state_errf(e, HPQ_EAUTH, "MUNGE credential made in the future: the clocks "
				  "of this host and hpqd's disagree");
	case EMUNGE_CRED_REPLAYED:
		return state_errf(e, HPQ_EAUTH, "MUNGE credential replayed: it was already used, "
				  "and every connection needs a fresh one");
	case EMUNGE_SOCKET:
	case EMUNGE_SNAFU:
	case EMUNGE_NO_MEMORY:
		log_warn("%s: cannot check a MUNGE credential with munged at %s: %s", c->peer,
			 m->socket, m->msg);
		return state_errf(e, HPQ_EUNAVAIL, "hpqd cannot check MUNGE credentials now (its "
				  "munged does not answer): try again later");
	default:
		return state_errf(e, HPQ_EAUTH, "MUNGE credential refused: %s (do this host and "
				  "hpqd's share the cluster's munge key?)", m->msg);
	}
	n = hpq_munge_payload("client", c->nonce, sizeof(c->nonce), want);
	if (n < 0 || m->len != n || memcmp(m->payload, want, (size_t)n) != 0)
		return state_errf(e, HPQ_EAUTH, "MUNGE credential not made for this connection: "
				  "its payload does not carry this connection's nonce");
	return 0;
}

static void munge_done(uv_work_t *req, int status)
{
	struct munge_check *m = container_of(req, struct munge_check, req);
	struct conn *c = m->c;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__HelloReply rep = HPQ__HELLO_REPLY__INIT;
	struct state_err e = { { 0 } };
	int r;

	if (c->dead)
		goto out;
	r = status < 0 ? state_errf(&e, HPQ_EUNAVAIL, "hpqd is stopping") : munge_verdict(c, m, &e);
	if (r == 0) {
		c->munged = true;
		c->munge_uid = (uint32_t)m->uid;
		c->munge_gid = (uint32_t)m->gid;
		r = identify(c, "", &e);
	}
	if (r < 0) {
		log_info("%s: MUNGE authentication failed: %s", c->peer, e.msg);
		server_send_error(c, m->id, r, e.msg);
		server_close(c);
		goto out;
	}
	c->phase = CONN_READY;
	/* The answer to Auth says whom munged vouched for. */
	rep.protocol_version = c->protocol;
	rep.software_version = (char *)HPQ_VERSION;
	rep.user = c->user;
	rep.admin = c->actor.admin;
	env.id = m->id;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO_REPLY;
	env.hello_reply = &rep;
	server_send(c, &env);
	log_debug("%s: MUNGE says user %s (uid %u gid %u)%s", c->peer, c->user, c->munge_uid,
		  c->munge_gid, c->actor.admin ? ", administrator" : "");
	/* Known now: counted as this user from here on, as after a Hello. */
	settle(c);
out:
	free(m->payload);
	free(m->cred);
	free(m->socket);
	free(m);
	server_unref(c);
}

/* Hands a TCP client's credential to munged; the answer comes in munge_done. */
static int munge_start(struct conn *c, uint64_t id, const char *cred, struct state_err *e)
{
	struct munge_check *m;
	int r;

	if (!cred || !*cred)
		return state_errf(e, HPQ_EAUTH, "hpqd needs a MUNGE credential from a client over "
				  "TCP: run munged on this host with the cluster's munge key, "
				  "or use hpqd's Unix socket on its own host");
	if (strlen(cred) > 4096)
		return state_errf(e, HPQ_EAUTH, "MUNGE credential longer than 4096 bytes");
	m = xcalloc(1, sizeof(*m));
	m->c = c;
	m->id = id;
	m->cred = xstrdup(cred);
	m->socket = xstrdup(c->srv->p.cfg->munge_socket);
	r = uv_queue_work(c->srv->p.loop, &m->req, munge_work, munge_done);
	if (r < 0) {
		free(m->cred);
		free(m->socket);
		free(m);
		return state_errf(e, HPQ_EUNAVAIL, "cannot check the MUNGE credential: %s",
				  uv_strerror(r));
	}
	server_ref(c);
	c->phase = CONN_MUNGE;
	return 0;
}

static int on_auth(struct conn *c, uint64_t id, const Hpq__Auth *a, struct state_err *e)
{
	return munge_start(c, id, a->munge_credential, e);
}

/* ---------------------------------------------------------------- delivery */

/*
 * Has the certificate that vouches for c expired? Then c is closed, with
 * an Error that says so and the on_lapsed callback (a security event and
 * a log line), and true is returned: nothing more of it is read.
 */
static bool cert_lapsed(struct conn *c)
{
	char why[200], when[HPQ_UTC_LEN];

	if (!c->has_cert || c->dead || hpq_now_ms() / 1000 < c->cert.not_after)
		return false;
	hpq_utc_text(c->cert.not_after * 1000, when, sizeof(when));
	snprintf(why, sizeof(why), "certificate %s of node %s expired on %s: closing its "
		 "connection", c->cert.serial, c->cert.cn, when);
	if (c->srv->p.on_lapsed)
		c->srv->p.on_lapsed(c->srv->p.arg, c, why);
	else
		log_warn("%s: %s", c->peer, why);
	server_send_error(c, 0, HPQ_EAUTH, why);
	server_close(c);
	return true;
}

void server_cert_renewed(struct conn *c, const struct hpq_cert_info *info)
{
	if (!c->has_cert || strcmp(info->cn, c->cert.cn) || info->not_after <= c->cert.not_after)
		return;
	log_debug("%s: now vouched for by certificate %s (was %s)", c->peer, info->serial,
		  c->cert.serial);
	c->cert = *info;
}

/* Hello and Auth are the server's; everything after goes to on_message. */
static void deliver(struct conn *c, const Hpq__Envelope *env)
{
	struct state_err e = { { 0 } };
	int r;

	if (cert_lapsed(c))
		return;
	if (c->phase == CONN_READY) {
		if (env->body_case == HPQ__ENVELOPE__BODY_HELLO ||
		    env->body_case == HPQ__ENVELOPE__BODY_AUTH) {
			server_send_error(c, env->id, HPQ_EPROTO,
					  env->body_case == HPQ__ENVELOPE__BODY_HELLO
						  ? "Hello was already said"
						  : "no Auth was asked for");
			return;
		}
		refresh_rights(c);
		c->srv->p.on_message(c->srv->p.arg, c, env);
		return;
	}
	if (c->phase == CONN_JOIN && env->body_case == HPQ__ENVELOPE__BODY_JOIN) {
		/* One request, then the agent comes back with its certificate. */
		c->phase = CONN_JOINED;
		c->srv->p.on_message(c->srv->p.arg, c, env);
		return;
	}
	if (c->phase == CONN_HELLO && env->body_case == HPQ__ENVELOPE__BODY_HELLO)
		r = on_hello(c, env->id, env->hello, &e);
	else if (c->phase == CONN_AUTH && env->body_case == HPQ__ENVELOPE__BODY_AUTH)
		r = on_auth(c, env->id, env->auth, &e);
	else if (c->phase == CONN_HELLO)
		r = state_errf(&e, HPQ_EPROTO, "the first message must be Hello, not %s",
			       hpq_msg_name(env));
	else if (c->phase == CONN_MUNGE)
		r = state_errf(&e, HPQ_EPROTO, "%s before the answer to Auth", hpq_msg_name(env));
	else if (c->phase == CONN_JOIN)
		r = state_errf(&e, HPQ_EAUTH, "this agent has no certificate: it may only join "
			       "(hpq-agent --join TOKEN --ca-hash HASH), not send %s",
			       hpq_msg_name(env));
	else if (c->phase == CONN_JOINED)
		r = state_errf(&e, HPQ_EPROTO, "%s after JoinRequest: connect again with the "
			       "certificate", hpq_msg_name(env));
	else
		r = state_errf(&e, HPQ_EAUTH, "authenticate first: over TCP hpqd needs a MUNGE "
			       "credential in Auth");
	if (r >= 0)
		return;
	/* A failed handshake ends the connection. */
	server_send_error(c, env->id, r, e.msg);
	server_close(c);
}

/* Logs (rate-limited: peers cause these at will), tells the peer why and
 * closes the connection. */
static void refuse(struct conn *c, int code, const char *why)
{
	hpq_log_limited(&c->srv->peer_log, LOG_NOTICE, "%s: %s: closing", c->peer, why);
	server_send_error(c, 0, code, why);
	server_close(c);
}

/*
 * Once Hello (and Auth) made a TCP peer known, it stops counting against
 * its address and counts as what it is: an agent or root not at all, a
 * user against max_connections and max_connections_per_user. (A Unix
 * peer was counted by its uid when accepted.)
 */
static void settle(struct conn *c)
{
	char key[HPQ_NAME_MAX + 16], why[200];
	const char *refused;

	if (c->settled || c->dead || c->pseudo || c->phase != CONN_READY)
		return;
	c->settled = true;
	if (c->local)
		return;
	count_drop(c);
	if (c->role == HPQ__ROLE__ROLE_AGENT ||
	    (c->actor.known && privileged_uid(c->srv, c->actor.uid)))
		return;
	if (c->actor.known)
		snprintf(key, sizeof(key), "uid %u", c->actor.uid);
	else
		snprintf(key, sizeof(key), "user %s", c->user);
	refused = admit_user(c, key, why, sizeof(why));
	if (refused)
		refuse(c, HPQ_EBUSY, refused);
}

/* The largest frame c may send now. */
static uint32_t frame_max(const struct conn *c)
{
	return c->phase == CONN_READY ? HPQ_FRAME_MAX : PREAUTH_FRAME_MAX;
}

/*
 * Handles the whole frames buffered, until max_inflight replies wait for
 * a commit: then reading stops (conn_resume starts it again), so a peer
 * cannot queue unbounded work by not waiting for its answers.
 */
static void process(struct conn *c)
{
	uint32_t max_inflight = limits(c->srv)->max_inflight;
	const uint8_t *p;
	size_t len;
	bool took = false;
	int r = 0;

	while (!c->dead && c->inflight < max_inflight) {
		Hpq__Envelope *env;

		c->framer.max = frame_max(c);
		r = hpq_framer_next(&c->framer, &p, &len);
		if (r <= 0)
			break;
		r = 0;
		took = true;
		c->last_rx_mono = uv_now(c->srv->p.loop);
		env = hpq_msg_decode(p, len);
		if (!env) {
			server_send_error(c, 0, HPQ_EPROTO, "malformed or unknown message");
			continue;
		}
		deliver(c, env);
		hpq_msg_free(env);
		settle(c);
	}
	if (c->dead)
		return;
	if (r < 0) {
		char msg[96];

		snprintf(msg, sizeof(msg), "frame larger than %u bytes: closing the connection",
			 c->framer.max);
		refuse(c, r, msg);
		return;
	}
	if (c->inflight >= max_inflight) {
		if (!c->paused && !c->pseudo)
			uv_read_stop(&c->h.stream);
		c->paused = true;
		c->frame_mono = 0;   /* what waits is ours to take, not the peer's to finish */
		return;
	}
	/* A frame begun must be finished within read_timeout (on_reaper),
	 * timed from its own first byte: what follows a frame just taken
	 * began with this read. */
	if (!hpq_framer_pending(&c->framer))
		c->frame_mono = 0;
	else if (!c->frame_mono || took)
		c->frame_mono = uv_now(c->srv->p.loop);
}

static void feed(struct conn *c, const void *data, size_t n)
{
	int r;

	/* The header is checked against the limit before any body is kept. */
	c->framer.max = frame_max(c);
	r = hpq_framer_feed(&c->framer, data, n);
	if (r < 0) {
		char msg[96];

		snprintf(msg, sizeof(msg), "frame larger than %u bytes: closing the connection",
			 c->framer.max);
		refuse(c, r, msg);
		return;
	}
	process(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* A reply was committed or sent: if reading waited for it, go on, unless
 * hpqd is stopping, when a commit still completes but nothing new is read. */
static void conn_resume(struct conn *c)
{
	if (c->dead || !c->paused || c->srv->quiesced ||
	    c->inflight >= limits(c->srv)->max_inflight)
		return;
	c->paused = false;
	if (!c->pseudo && uv_read_start(&c->h.stream, on_alloc, on_read) < 0) {
		close_now(c);
		return;
	}
	process(c);
}

void server_feed(struct conn *c, const void *data, size_t len)
{
	if (!c->dead)
		feed(c, data, len);
}

/* A plain peer on the TLS listener (an older hpq, a client without TLS):
 * one Error it can read, then the connection ends. */
static void refuse_plain(struct conn *c)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Error err = HPQ__ERROR__INIT;
	size_t len;

	hpq_log_limited(&c->srv->peer_log, LOG_NOTICE, "%s: speaks without TLS: closing",
			c->peer);
	err.code = HPQ_ETLS;
	err.message = (char *)"hpqd speaks TLS on TCP: connect with an hpq that uses TLS "
			      "(hpq --ca-file, hpq-agent --join), or over the Unix socket";
	env.body_case = HPQ__ENVELOPE__BODY_ERROR;
	env.error = &err;
	c->tls_failed = true;
	write_raw(c, hpq_msg_encode(&env, &len), len, false);
	server_close(c);
}

/* Ciphertext from a TLS peer: through the channel into the framer. */
static void tls_in(struct conn *c, const char *data, size_t n)
{
	struct server *srv = c->srv;
	ssize_t m;
	int r;

	/* Every TLS connection begins with a handshake record (22). */
	if (!c->tls_ready && !c->tls_started && (uint8_t)data[0] != 22) {
		refuse_plain(c);
		return;
	}
	c->tls_started = true;
	r = hpq_tls_feed(c->tls, data, n);
	tls_flush(c, false);
	if (r < 0) {
		hpq_log_limited(&srv->peer_log, LOG_NOTICE, "%s: TLS failed: %s: closing",
				c->peer, hpq_tls_error(c->tls));
		c->tls_failed = true;
		server_close(c);
		return;
	}
	if (!c->tls_ready && hpq_tls_ready(c->tls)) {
		c->tls_ready = true;
		c->has_cert = hpq_tls_peer(c->tls, &c->cert);
		log_debug("%s: TLS established%s%s", c->peer, c->has_cert ? ", certificate of " : "",
			  c->has_cert ? c->cert.cn : "");
	}
	while (!c->dead && (m = hpq_tls_read(c->tls, srv->pbuf, sizeof(srv->pbuf))) != 0) {
		if (m < 0) {
			if (m != -EPIPE)
				hpq_log_limited(&srv->peer_log, LOG_NOTICE, "%s: TLS failed: %s: "
						"closing", c->peer, hpq_tls_error(c->tls));
			c->tls_failed = m != -EPIPE;
			server_close(c);
			return;
		}
		feed(c, srv->pbuf, (size_t)m);
	}
	if (!c->dead)
		tls_flush(c, false);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = container_of(h, struct conn, h.handle);

	*buf = uv_buf_init(c->srv->rbuf, READ_BUF);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = container_of(s, struct conn, h.stream);

	if (n < 0) {
		if (n != UV_EOF)
			log_debug("%s: read failed: %s", c->peer, uv_strerror((int)n));
		close_now(c);
		return;
	}
	if (n > 0 && c->tls)
		tls_in(c, buf->base, (size_t)n);
	else if (n > 0)
		feed(c, buf->base, (size_t)n);
}

/* ---------------------------------------------------------------- accepting */

static struct conn *conn_new(struct server *srv)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->srv = srv;
	c->refs = 1;
	hpq_framer_init(&c->framer, PREAUTH_FRAME_MAX);
	dlist_init(&c->link);
	return c;
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
	bool local = listener == (uv_stream_t *)&srv->pipe;
	const char *refused = NULL;
	char key[96], why[200];
	struct conn *c;
	int r;

	if (status < 0) {
		hpq_log_limited(&srv->peer_log, LOG_WARNING, "cannot accept a connection: %s",
				uv_strerror(status));
		return;
	}
	c = conn_new(srv);
	c->local = local;
	r = local ? uv_pipe_init(srv->p.loop, &c->h.pipe, 0)
		  : uv_tcp_init(srv->p.loop, &c->h.tcp);
	if (r < 0) {
		conn_free(c);
		return;
	}
	if (!local && srv->p.tls)
		c->tls = hpq_tls_new(srv->p.tls, NULL);
	if (uv_accept(listener, &c->h.stream) < 0) {
		uv_close(&c->h.handle, on_closed);
		return;
	}
	if (local) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		uv_os_fd_t fd;

		if (uv_fileno(&c->h.handle, &fd) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			log_warn("cannot read the credentials of a local peer: closing it");
			uv_close(&c->h.handle, on_closed);
			return;
		}
		c->peer_uid = cred.uid;
		c->peer_gid = cred.gid;
		snprintf(c->peer, sizeof(c->peer), "unix uid %u pid %d", cred.uid, (int)cred.pid);
		snprintf(key, sizeof(key), "uid %u", cred.uid);
		if (!privileged_uid(srv, cred.uid))
			refused = admit_user(c, key, why, sizeof(why));
	} else {
		struct sockaddr_storage ss;
		int sl = sizeof(ss);
		char host[64] = "?";

		uv_tcp_nodelay(&c->h.tcp, 1);
		uv_tcp_keepalive(&c->h.tcp, 1, 60);
		if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &sl) == 0) {
			if (ss.ss_family == AF_INET6) {
				struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

				uv_ip6_name(a, host, sizeof(host));
				snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host,
					 ntohs(a->sin6_port));
			} else {
				struct sockaddr_in *a = (struct sockaddr_in *)&ss;

				uv_ip4_name(a, host, sizeof(host));
				snprintf(c->peer, sizeof(c->peer), "%s:%u", host,
					 ntohs(a->sin_port));
			}
		}
		/* Until Hello (and Auth) say who it is, a TCP peer is its address. */
		snprintf(key, sizeof(key), "address %s", host);
		if (count_of(srv, key) >= limits(srv)->max_unauthenticated_per_address) {
			snprintf(why, sizeof(why), "too many unauthenticated connections from %s "
				 "([limits] max_unauthenticated_per_address %u)", host,
				 limits(srv)->max_unauthenticated_per_address);
			refused = why;
		} else {
			count_take(c, key);
		}
	}
	c->accepted_mono = c->last_rx_mono = uv_now(srv->p.loop);
	dlist_add_tail(&srv->conns, &c->link);
	if (refused) {
		refuse(c, HPQ_EBUSY, refused);
		return;
	}
	r = uv_read_start(&c->h.stream, on_alloc, on_read);
	if (r < 0)
		close_now(c);
}

struct conn *server_pseudo(struct server *srv, Hpq__Role role, const char *user, bool admin)
{
	struct conn *c = conn_new(srv);

	c->pseudo = true;
	c->local = true;
	c->phase = CONN_READY;
	c->role = role;
	c->protocol = HPQ_PROTOCOL_VERSION;
	c->user = xstrdup(user);
	c->actor.user = c->user;
	c->actor.uid = (uint32_t)getuid();
	c->actor.gid = (uint32_t)getgid();
	c->actor.known = true;
	c->actor.admin = admin;
	c->actor.agent = role == HPQ__ROLE__ROLE_AGENT;
	c->actor.node = c->actor.agent ? c->user : NULL;
	snprintf(c->peer, sizeof(c->peer), "pseudo %s", user);
	dlist_add_tail(&srv->conns, &c->link);
	return c;
}

struct conn *server_pseudo_peer(struct server *srv)
{
	struct conn *c = conn_new(srv);

	c->pseudo = true;
	if (srv->p.tls) {
		/* Never driven: it only makes the connection one over TLS whose
		 * peer sent no certificate, as a joining agent's is. */
		c->tls = hpq_tls_new(srv->p.tls, NULL);
		c->tls_ready = true;
	}
	snprintf(c->peer, sizeof(c->peer), "pseudo peer");
	dlist_add_tail(&srv->conns, &c->link);
	return c;
}

/* ---------------------------------------------------------------- listening */

int server_new(const struct server_params *p, struct server **ret_server)
{
	struct server *srv = xcalloc(1, sizeof(*srv));

	srv->p = *p;
	dlist_init(&srv->conns);
	srv->peer_log.interval_ms = (int64_t)p->cfg->limits.log_interval_ms;
	*ret_server = srv;
	return 0;
}

static int parse_hostport(const char *s, struct sockaddr_storage *ss, char *err, size_t errlen)
{
	char host[128];
	uint16_t port;

	if (hpq_split_hostport(s, HPQ_HOSTPORT_LISTEN, host, sizeof(host), &port) < 0)
		goto bad;
	if (!host[0])
		strcpy(host, "0.0.0.0");
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
bad:
	return hpq_errf(err, errlen, HPQ_EINVAL, "invalid listen address '%s': use HOST:PORT", s);
}

/* Only this host can reach a listener on a loopback address. */
int server_check_insecure(const char *listen, char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	bool loopback;
	int r;

	if (!listen || !*listen)
		return 0;
	r = parse_hostport(listen, &ss, err, errlen);
	if (r < 0)
		return r;
	if (ss.ss_family == AF_INET6)
		loopback = IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&ss)->sin6_addr);
	else
		loopback = ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24 == 127;
	if (!loopback)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"--insecure is allowed only with a loopback listen address "
				"(127.0.0.1:PORT or [::1]:PORT), not '%s'", listen);
	return 0;
}

static int listen_tcp(struct server *srv, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	int r, sl = sizeof(ss);

	r = parse_hostport(addr, &ss, err, errlen);
	if (r < 0)
		return r;
	r = uv_tcp_init(srv->p.loop, &srv->tcp);
	if (r < 0)
		return hpq_errf(err, errlen, r, "cannot make a TCP socket: %s", uv_strerror(r));
	srv->has_tcp = true;
	srv->tcp.data = srv;
	r = uv_tcp_bind(&srv->tcp, (struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&srv->tcp, BACKLOG, on_connection);
	if (r < 0)
		return hpq_errf(err, errlen, r, "cannot listen on %s: %s", addr, uv_strerror(r));
	if (uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&ss, &sl) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							   : ((struct sockaddr_in *)&ss)->sin_port);
	log_info("listening on %s (port %d)", addr, srv->port);
	return 0;
}

/* Is a daemon answering on path? A refused connect means a stale socket. */
static bool socket_alive(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return r == 0;
}

static void make_parent(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');

	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno == ENOENT) {
			make_parent(dir);
			mkdir(dir, 0755);
		}
	}
	free(dir);
}

static int listen_unix(struct server *srv, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"socket path '%s' is longer than %zu bytes", path,
				sizeof(sa.sun_path) - 1);
	if (socket_alive(path))
		return hpq_errf(err, errlen, -EADDRINUSE,
				"another daemon is listening on '%s': stop it or use --socket",
				path);
	unlink(path);
	make_parent(path);
	r = uv_pipe_init(srv->p.loop, &srv->pipe, 0);
	if (r < 0)
		return hpq_errf(err, errlen, r, "cannot make a Unix socket: %s", uv_strerror(r));
	srv->has_pipe = true;
	srv->pipe.data = srv;
	r = uv_pipe_bind(&srv->pipe, path);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&srv->pipe, BACKLOG, on_connection);
	if (r < 0)
		return hpq_errf(err, errlen, r, "cannot listen on '%s': %s", path, uv_strerror(r));
	srv->socket_path = xstrdup(path);
	/* Anyone local may connect: the kernel tells us who they are. */
	if (chmod(path, 0666) < 0)
		log_warn("cannot open '%s' to all local users: %s", path, strerror(errno));
	log_info("listening on %s", path);
	return 0;
}

size_t server_close_node(struct server *srv, const char *node)
{
	size_t n = 0;

	for (struct dlist *l = srv->conns.next, *next; l != &srv->conns; l = next) {
		struct conn *c = container_of(l, struct conn, link);

		next = l->next;
		if (c->dead || !c->has_cert || strcmp(c->cert.cn, node))
			continue;
		server_close(c);
		n++;
	}
	return n;
}

static void on_reaper(uv_timer_t *h)
{
	struct server *srv = container_of(h, struct server, reaper);
	const struct limits_config *lim = limits(srv);
	uint64_t now = uv_now(srv->p.loop);
	/* An agent heartbeats; one silent for twice the time after which
	 * its node is lost is gone (it reconnects if it is not). */
	uint64_t agent_idle = 2 * config_unreachable_ms(srv->p.cfg);
	char why[160], d[32];

	for (struct dlist *l = srv->conns.next, *next; l != &srv->conns; l = next) {
		struct conn *c = container_of(l, struct conn, link);
		uint64_t idle = c->role == HPQ__ROLE__ROLE_AGENT ? agent_idle : lim->idle_timeout_ms;

		next = l->next;
		if (c->pseudo || c->dead)
			continue;
		settle(c);
		if (c->dead || cert_lapsed(c))
			continue;
		if (c->phase != CONN_READY && now - c->accepted_mono > lim->hello_timeout_ms) {
			snprintf(why, sizeof(why), "no Hello (and Auth) within %s ([limits] "
				 "hello_timeout)", hpq_format_duration(lim->hello_timeout_ms / 1000,
									d, sizeof(d)));
			refuse(c, HPQ_EPROTO, why);
		} else if (c->frame_mono && now - c->frame_mono > lim->read_timeout_ms) {
			snprintf(why, sizeof(why), "a frame is still incomplete after %s ([limits] "
				 "read_timeout)", hpq_format_duration(lim->read_timeout_ms / 1000,
								      d, sizeof(d)));
			refuse(c, HPQ_EPROTO, why);
		} else if (c->h.stream.write_queue_size &&
			   now - c->write_mono > lim->write_timeout_ms) {
			hpq_log_limited(&srv->peer_log, LOG_NOTICE, "%s: read none of its replies "
					"for %s ([limits] write_timeout): closing", c->peer,
					hpq_format_duration(lim->write_timeout_ms / 1000, d,
							    sizeof(d)));
			close_now(c);
		} else if (c->phase == CONN_READY && idle && !c->follower && !c->inflight &&
			   !c->h.stream.write_queue_size && now - c->last_rx_mono > idle) {
			snprintf(why, sizeof(why), "idle for %s ([limits] idle_timeout, or missed "
				 "heartbeats of an agent)", hpq_format_duration(idle / 1000, d,
										  sizeof(d)));
			refuse(c, HPQ_EUNAVAIL, why);
		}
	}
}

/* The reaper looks often enough to hold the shortest deadline to about half of it. */
static uint64_t reaper_interval(const struct limits_config *l)
{
	uint64_t ms = l->hello_timeout_ms;

	if (l->read_timeout_ms < ms)
		ms = l->read_timeout_ms;
	if (l->write_timeout_ms < ms)
		ms = l->write_timeout_ms;
	ms /= 2;
	return ms < 100 ? 100 : ms > 5000 ? 5000 : ms;
}

int server_listen(struct server *srv, const char *listen, const char *path, char *err,
		  size_t errlen)
{
	int r;

	if (!srv->has_reaper) {
		uv_timer_init(srv->p.loop, &srv->reaper);
		uv_timer_start(&srv->reaper, on_reaper, reaper_interval(limits(srv)),
			       reaper_interval(limits(srv)));
		srv->has_reaper = true;
	}

	if (listen && *listen) {
		r = listen_tcp(srv, listen, err, errlen);
		if (r < 0)
			return r;
	}
	if (path && *path) {
		r = listen_unix(srv, path, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

void server_set_tls(struct server *srv, struct hpq_tls_ctx *tls)
{
	if (srv->p.tls)
		srv->p.tls = tls;
}

int server_port(const struct server *srv)
{
	return srv->port;
}

void server_quiesce(struct server *srv)
{
	srv->quiesced = true;
	if (srv->has_reaper && !uv_is_closing((uv_handle_t *)&srv->reaper))
		uv_close((uv_handle_t *)&srv->reaper, NULL);
	if (srv->has_tcp && !uv_is_closing((uv_handle_t *)&srv->tcp))
		uv_close((uv_handle_t *)&srv->tcp, NULL);
	if (srv->has_pipe && !uv_is_closing((uv_handle_t *)&srv->pipe)) {
		uv_close((uv_handle_t *)&srv->pipe, NULL);
		unlink(srv->socket_path);
	}
	for (struct dlist *l = srv->conns.next; l != &srv->conns; l = l->next) {
		struct conn *c = container_of(l, struct conn, link);

		if (!c->pseudo)
			uv_read_stop(&c->h.stream);
	}
}

void server_close_all(struct server *srv)
{
	while (!dlist_empty(&srv->conns))
		server_close(container_of(srv->conns.next, struct conn, link));
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	free(srv->socket_path);
	strmap_release(&srv->counts);
	free(srv);
}
