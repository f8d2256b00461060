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
 * WRITE_QUEUE_MAX pile up is cut off rather than allowed to grow the heap.
 *
 * Identity is settled by Hello before anything else: on the Unix socket
 * from SO_PEERCRED (Hello.name is ignored), over TCP from Hello.name,
 * trusted only after Auth when the daemon has a cluster key. Every message
 * after that goes whole to the on_message callback (the router).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "hpq.h"
#include "log.h"
#include "msg.h"
#include "parse.h"
#include "server.h"
#include "store.h"
#include "xalloc.h"

#define READ_BUF 65536
#define WRITE_QUEUE_MAX (64u << 20)
#define BACKLOG 128
/* A peer that has not finished Hello (and Auth) by then is cut off, so idle
 * sockets cannot pile up before anyone knows who holds them. */
#define HANDSHAKE_MS 10000

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
	char rbuf[READ_BUF];
};

struct write_req {
	uv_write_t req;
	struct conn *c;
	uint8_t *buf;
};

static void conn_free(struct conn *c)
{
	hpq_framer_release(&c->framer);
	free(c->user);
	free(c->software);
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

/* Marks c dead and tells the session's owner; the handle closes separately. */
static void conn_kill(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
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

void server_close(struct conn *c)
{
	uv_shutdown_t *req;

	if (c->pseudo || c->dead) {
		conn_kill(c);
		return;
	}
	conn_kill(c);
	uv_read_stop(&c->h.stream);
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
	free(w->buf);
	free(w);
}

void server_send_frame(struct conn *c, uint8_t *frame, size_t len)
{
	struct write_req *w;
	uv_buf_t b;
	int r;

	if (c->dead || c->pseudo) {
		free(frame);
		return;
	}
	if (c->h.stream.write_queue_size > WRITE_QUEUE_MAX) {
		log_warn("%s: not reading its replies (%zu bytes queued): disconnecting", c->peer,
			 c->h.stream.write_queue_size);
		free(frame);
		close_now(c);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->c = c;
	w->buf = frame;
	b = uv_buf_init((char *)w->buf, (unsigned)len);
	r = uv_write(&w->req, &c->h.stream, &b, 1, on_written);
	if (r < 0) {
		free(w->buf);
		free(w);
		close_now(c);
	}
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
	uint8_t *frame;
	size_t len;
};

static void on_committed(void *arg, int status)
{
	struct pending_reply *p = arg;

	if (status < 0) {
		free(p->frame);
		server_send_error(p->c, p->id, HPQ_ESTORAGE,
				  "the change could not be stored: the daemon is stopping");
	} else {
		server_send_frame(p->c, p->frame, p->len);
	}
	server_unref(p->c);
	free(p);
}

void server_reply_after_commit(struct conn *c, const Hpq__Envelope *env)
{
	struct pending_reply *p = xcalloc(1, sizeof(*p));

	p->c = c;
	p->id = env->id;
	p->frame = hpq_msg_encode(env, &p->len);
	server_ref(c);
	store_after_commit(c->srv->p.store, on_committed, p);
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

/* Sets user, uid, gid and admin of c; Unix socket from the peer
 * credentials, TCP from the name the peer gives. */
static int identify(struct conn *c, const char *name, struct state_err *e)
{
	struct passwd *pw;
	char num[32];

	if (c->local) {
		pw = getpwuid(c->peer_uid);
		snprintf(num, sizeof(num), "%u", c->peer_uid);
		c->user = xstrdup(pw ? pw->pw_name : num);
		c->actor.uid = c->peer_uid;
		c->actor.gid = pw ? pw->pw_gid : c->peer_gid;
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
	c->actor.admin = !c->actor.agent &&
			 is_admin(c->srv, c->user, c->actor.uid, c->actor.known);
	if (c->actor.agent) {
		if (c->local && !is_admin(c->srv, c->user, c->peer_uid, true))
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

	if (h->protocol_version < HPQ_PROTOCOL_MIN || h->protocol_version > HPQ_PROTOCOL_VERSION)
		return state_errf(e, HPQ_EVERSION,
				  "protocol version %u is not supported (hpqd %s speaks %d to %d): "
				  "use matching versions of hpq", h->protocol_version, HPQ_VERSION,
				  HPQ_PROTOCOL_MIN, HPQ_PROTOCOL_VERSION);
	if (h->role != HPQ__ROLE__ROLE_CLIENT && h->role != HPQ__ROLE__ROLE_AGENT)
		return state_errf(e, HPQ_EPROTO, "Hello without a role");
	c->role = h->role;
	c->protocol = h->protocol_version;
	free(c->software);
	c->software = xstrndup(h->software_version, 64);
	r = identify(c, h->name, e);
	if (r < 0)
		return r;
	rep.protocol_version = c->protocol;
	rep.software_version = (char *)HPQ_VERSION;
	rep.user = c->user;
	rep.admin = c->actor.admin;
	if (!c->local && c->srv->p.key) {
		hpq_auth_nonce(c->nonce);
		rep.nonce.data = c->nonce;
		rep.nonce.len = sizeof(c->nonce);
		c->phase = CONN_AUTH;
	} else {
		c->phase = CONN_READY;
	}
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO_REPLY;
	env.hello_reply = &rep;
	server_send(c, &env);
	log_debug("%s: hello from %s %s (%s)%s", c->peer,
		  c->role == HPQ__ROLE__ROLE_AGENT ? "agent" : "user", c->user,
		  h->software_version, c->actor.admin ? ", administrator" : "");
	return 0;
}

static int on_auth(struct conn *c, uint64_t id, const Hpq__Auth *a, struct state_err *e)
{
	if (hpq_auth_verify(a->mac.data, a->mac.len, c->nonce, sizeof(c->nonce),
			    c->srv->p.key) < 0)
		return state_errf(e, HPQ_EAUTH,
				  "authentication failed: the cluster key does not match");
	c->phase = CONN_READY;
	server_send_ok(c, id);
	return 0;
}

/* ---------------------------------------------------------------- delivery */

/* Hello and Auth are the server's; everything after goes to on_message. */
static void deliver(struct conn *c, const Hpq__Envelope *env)
{
	struct state_err e = { { 0 } };
	int r;

	if (c->phase == CONN_READY) {
		if (env->body_case == HPQ__ENVELOPE__BODY_HELLO ||
		    env->body_case == HPQ__ENVELOPE__BODY_AUTH) {
			server_send_error(c, env->id, HPQ_EPROTO,
					  env->body_case == HPQ__ENVELOPE__BODY_HELLO
						  ? "Hello was already said"
						  : "no Auth was asked for");
			return;
		}
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
	else
		r = state_errf(&e, HPQ_EAUTH, "authenticate first: this daemon needs the "
			       "cluster key over TCP");
	if (r >= 0)
		return;
	/* A failed handshake ends the connection. */
	server_send_error(c, env->id, r, e.msg);
	server_close(c);
}

static void feed(struct conn *c, const void *data, size_t n)
{
	const uint8_t *p;
	size_t len;
	int r;

	r = hpq_framer_feed(&c->framer, data, n);
	while (r == 0 && !c->dead && (r = hpq_framer_next(&c->framer, &p, &len)) > 0) {
		Hpq__Envelope *env = hpq_msg_decode(p, len);

		r = 0;
		if (!env) {
			server_send_error(c, 0, HPQ_EPROTO, "malformed or unknown message");
			continue;
		}
		deliver(c, env);
		hpq_msg_free(env);
	}
	if (r < 0 && !c->dead) {
		char msg[96];

		snprintf(msg, sizeof(msg), "frame larger than %u bytes: closing the connection",
			 HPQ_FRAME_MAX);
		log_info("%s: %s", c->peer, msg);
		server_send_error(c, 0, r, msg);
		server_close(c);
	}
}

void server_feed(struct conn *c, const void *data, size_t len)
{
	if (!c->dead)
		feed(c, data, len);
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
	if (n > 0)
		feed(c, buf->base, (size_t)n);
}

/* ---------------------------------------------------------------- accepting */

static struct conn *conn_new(struct server *srv)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->srv = srv;
	c->refs = 1;
	hpq_framer_init(&c->framer, HPQ_FRAME_MAX);
	dlist_init(&c->link);
	return c;
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
	bool local = listener == (uv_stream_t *)&srv->pipe;
	struct conn *c;
	int r;

	if (status < 0) {
		log_warn("cannot accept a connection: %s", uv_strerror(status));
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
	}
	c->accepted_mono = uv_now(srv->p.loop);
	dlist_add_tail(&srv->conns, &c->link);
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

/* ---------------------------------------------------------------- listening */

int server_new(const struct server_params *p, struct server **ret_server)
{
	struct server *srv = xcalloc(1, sizeof(*srv));

	srv->p = *p;
	dlist_init(&srv->conns);
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

static void on_reaper(uv_timer_t *h)
{
	struct server *srv = container_of(h, struct server, reaper);
	uint64_t now = uv_now(srv->p.loop);

	for (struct dlist *l = srv->conns.next, *next; l != &srv->conns; l = next) {
		struct conn *c = container_of(l, struct conn, link);

		next = l->next;
		if (c->phase != CONN_READY && !c->pseudo && now - c->accepted_mono > HANDSHAKE_MS) {
			log_info("%s: no Hello within %d s: closing", c->peer, HANDSHAKE_MS / 1000);
			server_send_error(c, 0, HPQ_EPROTO, "too slow to say Hello");
			server_close(c);
		}
	}
}

int server_listen(struct server *srv, const char *listen, const char *path, char *err,
		  size_t errlen)
{
	int r;

	if (!srv->has_reaper) {
		uv_timer_init(srv->p.loop, &srv->reaper);
		uv_timer_start(&srv->reaper, on_reaper, HANDSHAKE_MS / 2, HANDSHAKE_MS / 2);
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

int server_port(const struct server *srv)
{
	return srv->port;
}

void server_quiesce(struct server *srv)
{
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
	free(srv);
}
