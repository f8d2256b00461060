/*
 * link.c: connecting, the handshake, heartbeats and request bookkeeping
 * on the agent's connection to hpqd. The state machine:
 *
 *   IDLE ─start─▶ CONNECTING ─▶ HELLO ─(nonce)─▶ AUTH ─▶ REGISTER ─▶ READY
 *                   ▲   │          │    (no nonce)──────────▲          │
 *                   │   └──────────┴─ any failure ─▶ WAIT ◀────────────┘
 *                   └──────────── backoff expires ────┘
 *
 * Name resolution uses getaddrinfo, which blocks for as long as the
 * resolver takes; it runs once per attempt, and a numeric address (the
 * usual configuration) resolves without any lookup.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "hpq.h"
#include "link.h"
#include "log.h"
#include "msg.h"
#include "parse.h"
#include "xalloc.h"

static void link_attempt(struct link *l);
static void link_try_next(struct link *l);

/* Errors that repeat on every attempt are loud on the first and every 10th. */
static int link_loud(const struct link *l)
{
	return l->failures % 10 == 0 ? LOG_ERR : LOG_DEBUG;
}

static int64_t link_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double link_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ pending */

static void link_pending_add(struct link *l, uint64_t id, link_reply_fn *cb, void *ctx)
{
	if (l->npending == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->pending = xreallocarray(l->pending, l->cap, sizeof(*l->pending));
	}
	l->pending[l->npending++] = (struct link_pending){id, cb, ctx};
}

/* Removes and returns the entry for id; false if there is none. */
static bool link_pending_take(struct link *l, uint64_t id, struct link_pending *ret)
{
	for (size_t i = 0; i < l->npending; i++) {
		if (l->pending[i].id == id) {
			*ret = l->pending[i];
			memmove(&l->pending[i], &l->pending[i + 1],
				(l->npending - i - 1) * sizeof(*l->pending));
			l->npending--;
			return true;
		}
	}
	return false;
}

/* Answers every pending request with NULL. Callbacks may add new ones
 * (they fail: the link is not ready), so take the list first. */
static void link_pending_fail(struct link *l)
{
	struct link_pending *list = l->pending;
	size_t n = l->npending;

	l->pending = NULL;
	l->npending = l->cap = 0;
	for (size_t i = 0; i < n; i++)
		list[i].cb(list[i].ctx, NULL);
	free(list);
}

/* ------------------------------------------------------------ teardown */

static void link_close_socket(struct link *l)
{
	ev_io_stop(l->loop, &l->connect_w);
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	if (l->conn) {
		struct conn *c = l->conn;

		l->conn = NULL;
		c->on_close = NULL; /* we are the ones closing it */
		conn_close(c, 0);
	}
	if (l->addrs) {
		freeaddrinfo(l->addrs);
		l->addrs = l->addr_next = NULL;
	}
}

/* Drops the connection and schedules the next attempt. */
static void link_fail(struct link *l)
{
	bool was_ready = l->state == LINK_READY;
	double delay;

	if (l->state == LINK_IDLE)
		return;
	link_close_socket(l);
	ev_timer_stop(l->loop, &l->heartbeat_w);
	ev_timer_stop(l->loop, &l->timer_w);
	l->state = LINK_WAIT;
	if (was_ready) {
		l->backoff = LINK_BACKOFF_MIN;
		l->failures = 0;
	}
	l->failures++;
	delay = l->backoff * (0.5 + 0.5 * ((double)random() / RAND_MAX));
	l->backoff = l->backoff * 2 > LINK_BACKOFF_MAX ? LINK_BACKOFF_MAX : l->backoff * 2;
	log_debug("link: next attempt in %.1f s", delay);
	ev_timer_set(&l->timer_w, delay, 0.0);
	ev_timer_start(l->loop, &l->timer_w);
	link_pending_fail(l);
	if (was_ready && l->ops->lost)
		l->ops->lost(l->data);
}

static void link_conn_closed(struct conn *c, int error)
{
	struct link *l = c->data;

	l->conn = NULL;
	if (error == 0)
		log_warn("link: hpqd at %s closed the connection; reconnecting", l->server);
	else if (error == HPQ_EPROTO || error == HPQ_ETOOBIG)
		log_warn("link: malformed frame from hpqd at %s (%s); reconnecting", l->server,
			 hpq_strerror(error));
	else
		log_warn("link: connection to hpqd at %s failed: %s; reconnecting", l->server,
			 hpq_strerror(error));
	link_fail(l);
}

/* ------------------------------------------------------------ sending */

static uint64_t link_send_raw(struct link *l, Hpq__Envelope *env, bool request)
{
	if (request)
		env->id = l->next_id++;
	conn_send(l->conn, env);
	return env->id;
}

static void link_send_hello(struct link *l)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Hello hello = HPQ__HELLO__INIT;

	hello.role = HPQ__ROLE__ROLE_AGENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)HPQ_VERSION;
	hello.name = l->name;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	l->handshake_id = link_send_raw(l, &env, true);
	l->state = LINK_HELLO;
}

static void link_send_register(struct link *l)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Register reg = HPQ__REGISTER__INIT;

	l->ops->fill_register(l->data, &reg, l->local_addr);
	reg.name = l->name;
	env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
	env.register_ = &reg;
	l->reg_sent_wall_ms = link_now_ms();
	l->reg_sent_mono = link_mono();
	l->handshake_id = link_send_raw(l, &env, true);
	l->ops->release_register(l->data, &reg);
	l->state = LINK_REGISTER;
}

static void link_send_auth(struct link *l, const ProtobufCBinaryData *nonce)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Auth auth = HPQ__AUTH__INIT;
	uint8_t mac[HPQ_AUTH_MAC_BYTES];

	hpq_auth_mac(nonce->data, nonce->len, l->key, mac);
	auth.mac.data = mac;
	auth.mac.len = sizeof(mac);
	env.body_case = HPQ__ENVELOPE__BODY_AUTH;
	env.auth = &auth;
	l->handshake_id = link_send_raw(l, &env, true);
	l->state = LINK_AUTH;
}

static void link_send_heartbeat(struct link *l)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Heartbeat hb = HPQ__HEARTBEAT__INIT;

	hb.time = link_now_ms();
	if (l->ops->fill_heartbeat)
		l->ops->fill_heartbeat(l->data, &hb);
	env.body_case = HPQ__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	link_send_raw(l, &env, false);
}

bool link_ready(const struct link *l)
{
	return l->state == LINK_READY && l->conn && !l->conn->dead;
}

int link_send(struct link *l, Hpq__Envelope *env)
{
	if (!link_ready(l))
		return HPQ_EUNAVAIL;
	link_send_raw(l, env, false);
	return 0;
}

void link_reply(struct link *l, uint64_t id, int code, const char *message)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Ok ok = HPQ__OK__INIT;

	if (id == 0 || !link_ready(l))
		return;
	if (code < 0) {
		conn_send_error(l->conn, id, code, message ? message : hpq_strerror(code));
		return;
	}
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_OK;
	env.ok = &ok;
	link_send_raw(l, &env, false);
}

int link_request(struct link *l, Hpq__Envelope *env, link_reply_fn *cb, void *ctx)
{
	if (!link_ready(l))
		return HPQ_EUNAVAIL;
	link_pending_add(l, link_send_raw(l, env, true), cb, ctx);
	return 0;
}

static void link_heartbeat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct link *l = w->data;

	if (!link_ready(l))
		return;
	link_send_heartbeat(l);
	if (l->ops->tick)
		l->ops->tick(l->data);
}

void link_heartbeat_now(struct link *l)
{
	if (!link_ready(l))
		return;
	link_send_heartbeat(l);
	ev_timer_again(l->loop, &l->heartbeat_w);
}

/* ------------------------------------------------------------ receiving */

static const char *link_error_text(const Hpq__Envelope *env)
{
	if (env->body_case == HPQ__ENVELOPE__BODY_ERROR && env->error && env->error->message &&
	    env->error->message[0])
		return env->error->message;
	if (env->body_case == HPQ__ENVELOPE__BODY_ERROR && env->error)
		return hpq_strerror(env->error->code);
	return hpq_msg_name(env);
}

/* One round trip, Register to RegisterReply, against the daemon's clock. */
static void link_measure_clock(struct link *l, int64_t daemon_ms)
{
	int64_t now_ms = link_now_ms();
	double now_mono = link_mono(), rtt = now_mono - l->reg_sent_mono;

	if (daemon_ms <= 0 || rtt < 0)
		return;
	l->clock_wall_ms = (l->reg_sent_wall_ms + now_ms) / 2;
	l->clock_offset_ms = daemon_ms - l->clock_wall_ms;
	l->clock_err_ms = (int64_t)(rtt * 500.0) + 1; /* half the round trip, and rounding */
	l->clock_mono = (l->reg_sent_mono + now_mono) / 2;
	l->clock_known = true;
	log_debug("link: clock offset to hpqd %" PRId64 " ms (+-%" PRId64 " ms)",
		  l->clock_offset_ms, l->clock_err_ms);
}

bool link_clock_offset(const struct link *l, int64_t *ret_offset_ms, int64_t *ret_err_ms)
{
	int64_t expect_ms;

	if (!l->clock_known)
		return false;
	/* Where our clock would be had it kept pace with the monotonic one. */
	expect_ms = l->clock_wall_ms + (int64_t)((link_mono() - l->clock_mono) * 1000.0);
	*ret_offset_ms = l->clock_offset_ms + (expect_ms - link_now_ms());
	*ret_err_ms = l->clock_err_ms;
	return true;
}

int link_socket(const struct link *l)
{
	return link_ready(l) ? l->conn->fd : -1;
}

static void link_registered(struct link *l, const Hpq__RegisterReply *rr)
{
	if (rr)
		link_measure_clock(l, rr->daemon_time);
	l->state = LINK_READY;
	l->backoff = LINK_BACKOFF_MIN;
	l->failures = 0;
	ev_timer_stop(l->loop, &l->timer_w);
	l->heartbeat_now = l->heartbeat;
	if (rr && rr->heartbeat_s > 0 && (double)rr->heartbeat_s < l->heartbeat)
		l->heartbeat_now = (double)rr->heartbeat_s;
	ev_timer_init(&l->heartbeat_w, link_heartbeat_cb, l->heartbeat_now, l->heartbeat_now);
	l->heartbeat_w.data = l;
	ev_timer_start(l->loop, &l->heartbeat_w);
	log_notice("link: registered with hpqd at %s as %s (heartbeat %.0f s)", l->server, l->name,
		   l->heartbeat_now);
	l->ops->ready(l->data);
}

/* The handshake: one expected answer per state; anything else ends the attempt. */
static void link_handshake(struct link *l, const Hpq__Envelope *env)
{
	const char *what = l->state == LINK_HELLO ? "hello" :
			   l->state == LINK_AUTH ? "authentication" : "registration";
	bool ours = env->id == l->handshake_id || env->id == 0;

	if (ours && env->body_case == HPQ__ENVELOPE__BODY_ERROR) {
		hpq_log(link_loud(l), "link: hpqd at %s refused the %s: %s", l->server, what,
			link_error_text(env));
		if (env->error && env->error->code == HPQ_EAUTH)
			hpq_log(link_loud(l), "link: check that --key-file names the cluster key "
				"of hpqd");
		link_fail(l);
		return;
	}
	if (l->state == LINK_HELLO && ours && env->body_case == HPQ__ENVELOPE__BODY_HELLO_REPLY &&
	    env->hello_reply) {
		const Hpq__HelloReply *hr = env->hello_reply;

		if (hr->protocol_version < HPQ_PROTOCOL_MIN) {
			hpq_log(link_loud(l), "link: hpqd at %s speaks protocol %" PRIu32 ", this "
				"agent needs %d or newer; upgrade hpqd", l->server,
				hr->protocol_version, HPQ_PROTOCOL_MIN);
			link_fail(l);
			return;
		}
		if (hr->nonce.len > 0) {
			if (!l->have_key) {
				hpq_log(link_loud(l), "link: hpqd at %s requires the cluster key; "
					"start hpq-agent with --key-file", l->server);
				link_fail(l);
				return;
			}
			link_send_auth(l, &hr->nonce);
			return;
		}
		link_send_register(l);
		return;
	}
	if (l->state == LINK_AUTH && env->id == l->handshake_id &&
	    env->body_case == HPQ__ENVELOPE__BODY_OK) {
		link_send_register(l);
		return;
	}
	if (l->state == LINK_REGISTER && env->id == l->handshake_id &&
	    env->body_case == HPQ__ENVELOPE__BODY_REGISTER_REPLY) {
		link_registered(l, env->register_reply);
		return;
	}
	log_err("link: unexpected %s (id %" PRIu64 ") from hpqd at %s during the %s; reconnecting",
		hpq_msg_name(env), env->id, l->server, what);
	link_fail(l);
}

static void link_frame(struct conn *c, const Hpq__Envelope *env)
{
	struct link *l = c->data;
	struct link_pending p;

	if (l->state != LINK_READY) {
		/*
		 * Once Register is sent the daemon knows the node and may push
		 * work before its RegisterReply (a stale copy to kill, a start
		 * committed meanwhile): that is not a handshake error.
		 */
		if (l->state == LINK_REGISTER && env->id == 0 &&
		    (env->body_case == HPQ__ENVELOPE__BODY_RUN_TASK ||
		     env->body_case == HPQ__ENVELOPE__BODY_KILL_TASK)) {
			l->ops->message(l->data, env);
			return;
		}
		link_handshake(l, env);
		return;
	}
	switch (env->body_case) {
	case HPQ__ENVELOPE__BODY_OK:
	case HPQ__ENVELOPE__BODY_ERROR:
		if (env->id != 0 && link_pending_take(l, env->id, &p)) {
			p.cb(p.ctx, env);
			return;
		}
		if (env->body_case == HPQ__ENVELOPE__BODY_ERROR)
			log_warn("link: error from hpqd: %s", link_error_text(env));
		else
			log_debug("link: Ok for unknown request %" PRIu64, env->id);
		return;
	case HPQ__ENVELOPE__BODY_HELLO:
	case HPQ__ENVELOPE__BODY_HELLO_REPLY:
	case HPQ__ENVELOPE__BODY_AUTH:
	case HPQ__ENVELOPE__BODY_REGISTER_REPLY:
		log_err("link: unexpected %s from hpqd at %s after registration; reconnecting",
			hpq_msg_name(env), l->server);
		link_fail(l);
		return;
	default:
		if (env->id != 0 && link_pending_take(l, env->id, &p)) {
			p.cb(p.ctx, env); /* a typed reply to one of our requests */
			return;
		}
		l->ops->message(l->data, env);
		return;
	}
}

/* ------------------------------------------------------------ connecting */

static void link_set_keepalive(int fd)
{
	int one = 1, idle = 30, intvl = 10, cnt = 3;

	/* A daemon host that vanishes without a FIN is noticed within about a minute. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void link_connected(struct link *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = l->fd;

	ev_io_stop(l->loop, &l->connect_w);
	l->fd = -1;
	freeaddrinfo(l->addrs);
	l->addrs = l->addr_next = NULL;
	l->local_addr[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		(void)getnameinfo((struct sockaddr *)&ss, len, l->local_addr, sizeof(l->local_addr),
				  NULL, 0, NI_NUMERICHOST);
	link_set_keepalive(fd);
	l->conn = conn_new(l->loop, fd, link_frame, link_conn_closed, l);
	log_info("link: connected to hpqd at %s", l->server);
	ev_timer_stop(l->loop, &l->timer_w);
	ev_timer_set(&l->timer_w, LINK_HANDSHAKE_TIMEOUT, 0.0);
	ev_timer_start(l->loop, &l->timer_w);
	link_send_hello(l);
}

static void link_connect_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct link *l = w->data;
	socklen_t elen = sizeof(int);
	int err = 0;

	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		err = errno;
	if (err == 0) {
		link_connected(l);
		return;
	}
	log_debug("link: connect to %s failed: %s", l->server, strerror(err));
	ev_io_stop(loop, &l->connect_w);
	close(l->fd);
	l->fd = -1;
	link_try_next(l);
}

/* Starts a non-blocking connect to the next resolved address. */
static void link_try_next(struct link *l)
{
	while (l->addr_next) {
		struct addrinfo *ai = l->addr_next;
		int fd;

		l->addr_next = ai->ai_next;
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		l->fd = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			link_connected(l);
			return;
		}
		if (errno == EINPROGRESS || errno == EINTR) {
			ev_io_set(&l->connect_w, fd, EV_WRITE);
			ev_io_start(l->loop, &l->connect_w);
			return;
		}
		log_debug("link: connect to %s failed: %s", l->server, strerror(errno));
		close(fd);
		l->fd = -1;
	}
	/* Said once per outage; the retries are debug noise. */
	hpq_log(l->failures == 0 ? LOG_WARNING : LOG_DEBUG,
		"link: cannot connect to hpqd at %s; retrying with backoff", l->server);
	link_fail(l);
}

static void link_attempt(struct link *l)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int r;

	l->state = LINK_CONNECTING;
	r = getaddrinfo(l->host, l->port, &hints, &l->addrs);
	if (r != 0) {
		log_warn("link: cannot resolve '%s': %s", l->host, gai_strerror(r));
		l->addrs = NULL;
		link_fail(l);
		return;
	}
	l->addr_next = l->addrs;
	ev_timer_stop(l->loop, &l->timer_w);
	ev_timer_set(&l->timer_w, LINK_CONNECT_TIMEOUT, 0.0);
	ev_timer_start(l->loop, &l->timer_w);
	link_try_next(l);
}

/* Backoff over, or a connect/handshake timeout. */
static void link_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct link *l = w->data;

	switch (l->state) {
	case LINK_WAIT:
		link_attempt(l);
		return;
	case LINK_CONNECTING:
		log_info("link: connecting to hpqd at %s timed out; retrying", l->server);
		link_fail(l);
		return;
	case LINK_HELLO:
	case LINK_AUTH:
	case LINK_REGISTER:
		log_warn("link: hpqd at %s did not answer the handshake; reconnecting", l->server);
		link_fail(l);
		return;
	case LINK_IDLE:
	case LINK_READY:
		return;
	}
}

/* ------------------------------------------------------------ lifetime */

int link_init(struct link *l, struct ev_loop *loop, const struct link_config *cfg,
	      const struct link_ops *ops, void *data)
{
	char host[256], port[8];
	uint16_t portnum;

	if (hpq_split_hostport(cfg->server, 0, host, sizeof(host), &portnum) < 0)
		return HPQ_EINVAL;
	snprintf(port, sizeof(port), "%u", (unsigned)portnum);
	memset(l, 0, sizeof(*l));
	l->loop = loop;
	l->ops = ops;
	l->data = data;
	l->server = xstrdup(cfg->server);
	l->host = xstrdup(host);
	l->port = xstrdup(port);
	l->name = xstrdup(cfg->name);
	if (cfg->key) {
		l->have_key = true;
		memcpy(l->key, cfg->key, HPQ_AUTH_KEY_BYTES);
	}
	l->heartbeat = l->heartbeat_now = cfg->heartbeat > 0 ? cfg->heartbeat : 10.0;
	l->state = LINK_IDLE;
	l->fd = -1;
	l->backoff = LINK_BACKOFF_MIN;
	l->next_id = 1;
	ev_io_init(&l->connect_w, link_connect_cb, -1, EV_WRITE);
	ev_timer_init(&l->timer_w, link_timer_cb, 0.0, 0.0);
	ev_timer_init(&l->heartbeat_w, link_heartbeat_cb, l->heartbeat, l->heartbeat);
	l->connect_w.data = l->timer_w.data = l->heartbeat_w.data = l;
	return 0;
}

void link_start(struct link *l)
{
	if (l->state != LINK_IDLE)
		return;
	link_attempt(l);
}

void link_stop(struct link *l)
{
	link_close_socket(l);
	ev_timer_stop(l->loop, &l->timer_w);
	ev_timer_stop(l->loop, &l->heartbeat_w);
	l->state = LINK_IDLE;
	link_pending_fail(l);
}

void link_release(struct link *l)
{
	link_stop(l);
	memset(l->key, 0, sizeof(l->key));
	free(l->server);
	free(l->host);
	free(l->port);
	free(l->name);
	free(l->pending);
	memset(l, 0, sizeof(*l));
}
