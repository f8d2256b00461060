/*
 * uplink.c: connecting, the handshake, heartbeats and request bookkeeping
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
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "hpq.h"
#include "log.h"
#include "msg.h"
#include "parse.h"
#include "uplink.h"
#include "xalloc.h"

static void uplink_attempt(struct uplink *l);
static void uplink_try_next(struct uplink *l);

/* Errors that repeat on every attempt are loud on the first and every 10th. */
static int uplink_loud(const struct uplink *l)
{
	return l->failures % 10 == 0 ? LOG_ERR : LOG_DEBUG;
}

/* ------------------------------------------------------------ pending */

static void uplink_pending_add(struct uplink *l, uint64_t id, uplink_reply_fn *cb, void *ctx)
{
	if (l->npending == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->pending = xreallocarray(l->pending, l->cap, sizeof(*l->pending));
	}
	l->pending[l->npending++] = (struct uplink_pending){id, cb, ctx};
}

/* Removes and returns the entry for id; false if there is none. */
static bool uplink_pending_take(struct uplink *l, uint64_t id, struct uplink_pending *ret)
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
 * (they fail: the uplink is not ready), so take the list first. */
static void uplink_pending_fail(struct uplink *l)
{
	struct uplink_pending *list = l->pending;
	size_t n = l->npending;

	l->pending = NULL;
	l->npending = l->cap = 0;
	for (size_t i = 0; i < n; i++)
		list[i].cb(list[i].ctx, NULL);
	free(list);
}

/* ------------------------------------------------------------ teardown */

static void uplink_close_socket(struct uplink *l)
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
static void uplink_fail(struct uplink *l)
{
	bool was_ready = l->state == UPLINK_READY;
	double delay;

	if (l->state == UPLINK_IDLE)
		return;
	uplink_close_socket(l);
	ev_timer_stop(l->loop, &l->heartbeat_w);
	ev_timer_stop(l->loop, &l->timer_w);
	l->state = UPLINK_WAIT;
	if (was_ready) {
		l->backoff = UPLINK_BACKOFF_MIN;
		l->failures = 0;
	}
	l->failures++;
	delay = l->backoff * (0.5 + 0.5 * ((double)random() / RAND_MAX));
	l->backoff = l->backoff * 2 > UPLINK_BACKOFF_MAX ? UPLINK_BACKOFF_MAX : l->backoff * 2;
	log_debug("uplink: next attempt in %.1f s", delay);
	ev_timer_set(&l->timer_w, delay, 0.0);
	ev_timer_start(l->loop, &l->timer_w);
	uplink_pending_fail(l);
	if (was_ready && l->ops->lost)
		l->ops->lost(l->data);
}

static void uplink_conn_closed(struct conn *c, int error)
{
	struct uplink *l = c->data;

	l->conn = NULL;
	if (error == 0)
		log_warn("uplink: hpqd at %s closed the connection; reconnecting", l->server);
	else if (error == HPQ_EPROTO || error == HPQ_ETOOBIG)
		log_warn("uplink: malformed frame from hpqd at %s (%s); reconnecting", l->server,
			 hpq_strerror(error));
	else
		log_warn("uplink: connection to hpqd at %s failed: %s; reconnecting", l->server,
			 hpq_strerror(error));
	uplink_fail(l);
}

/* ------------------------------------------------------------ sending */

static uint64_t uplink_send_raw(struct uplink *l, Hpq__Envelope *env, bool request)
{
	if (request)
		env->id = l->next_id++;
	conn_send(l->conn, env);
	return env->id;
}

static void uplink_send_hello(struct uplink *l)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Hello hello = HPQ__HELLO__INIT;

	hello.role = HPQ__ROLE__ROLE_AGENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)HPQ_VERSION;
	hello.name = l->name;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	l->handshake_id = uplink_send_raw(l, &env, true);
	l->state = UPLINK_HELLO;
}

static void uplink_send_register(struct uplink *l)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Register reg = HPQ__REGISTER__INIT;

	l->ops->fill_register(l->data, &reg, l->local_addr);
	reg.name = l->name;
	env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
	env.register_ = &reg;
	l->reg_sent_wall_ms = hpq_now_ms();
	l->reg_sent_mono = hpq_mono_s();
	l->handshake_id = uplink_send_raw(l, &env, true);
	l->ops->release_register(l->data, &reg);
	l->state = UPLINK_REGISTER;
}

static void uplink_send_auth(struct uplink *l, const ProtobufCBinaryData *nonce)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Auth auth = HPQ__AUTH__INIT;
	uint8_t mac[HPQ_AUTH_MAC_BYTES];

	hpq_auth_mac(nonce->data, nonce->len, l->key, mac);
	auth.mac.data = mac;
	auth.mac.len = sizeof(mac);
	env.body_case = HPQ__ENVELOPE__BODY_AUTH;
	env.auth = &auth;
	l->handshake_id = uplink_send_raw(l, &env, true);
	l->state = UPLINK_AUTH;
}

static void uplink_send_heartbeat(struct uplink *l)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Heartbeat hb = HPQ__HEARTBEAT__INIT;

	hb.time = hpq_now_ms();
	if (l->ops->fill_heartbeat)
		l->ops->fill_heartbeat(l->data, &hb);
	env.body_case = HPQ__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	uplink_send_raw(l, &env, false);
}

bool uplink_ready(const struct uplink *l)
{
	return l->state == UPLINK_READY && l->conn && !l->conn->dead;
}

int uplink_send(struct uplink *l, Hpq__Envelope *env)
{
	if (!uplink_ready(l))
		return HPQ_EUNAVAIL;
	uplink_send_raw(l, env, false);
	return 0;
}

void uplink_reply(struct uplink *l, uint64_t id, int code, const char *message)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Ok ok = HPQ__OK__INIT;

	if (id == 0 || !uplink_ready(l))
		return;
	if (code < 0) {
		conn_send_error(l->conn, id, code, message ? message : hpq_strerror(code));
		return;
	}
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_OK;
	env.ok = &ok;
	uplink_send_raw(l, &env, false);
}

int uplink_request(struct uplink *l, Hpq__Envelope *env, uplink_reply_fn *cb, void *ctx)
{
	if (!uplink_ready(l))
		return HPQ_EUNAVAIL;
	uplink_pending_add(l, uplink_send_raw(l, env, true), cb, ctx);
	return 0;
}

static void uplink_heartbeat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct uplink *l = w->data;

	if (!uplink_ready(l))
		return;
	uplink_send_heartbeat(l);
	if (l->ops->tick)
		l->ops->tick(l->data);
}

void uplink_heartbeat_now(struct uplink *l)
{
	if (!uplink_ready(l))
		return;
	uplink_send_heartbeat(l);
	ev_timer_again(l->loop, &l->heartbeat_w);
}

/* ------------------------------------------------------------ receiving */

static const char *uplink_error_text(const Hpq__Envelope *env)
{
	if (env->body_case == HPQ__ENVELOPE__BODY_ERROR && env->error && env->error->message &&
	    env->error->message[0])
		return env->error->message;
	if (env->body_case == HPQ__ENVELOPE__BODY_ERROR && env->error)
		return hpq_strerror(env->error->code);
	return hpq_msg_name(env);
}

/* One round trip, Register to RegisterReply, against the daemon's clock. */
static void uplink_measure_clock(struct uplink *l, int64_t daemon_ms)
{
	int64_t now_ms = hpq_now_ms();
	double now_mono = hpq_mono_s(), rtt = now_mono - l->reg_sent_mono;

	if (daemon_ms <= 0 || rtt < 0)
		return;
	l->clock_wall_ms = (l->reg_sent_wall_ms + now_ms) / 2;
	l->clock_offset_ms = daemon_ms - l->clock_wall_ms;
	l->clock_err_ms = (int64_t)(rtt * 500.0) + 1; /* half the round trip, and rounding */
	l->clock_mono = (l->reg_sent_mono + now_mono) / 2;
	l->clock_known = true;
	log_debug("uplink: clock offset to hpqd %" PRId64 " ms (+-%" PRId64 " ms)",
		  l->clock_offset_ms, l->clock_err_ms);
}

bool uplink_clock_offset(const struct uplink *l, int64_t *ret_offset_ms, int64_t *ret_err_ms)
{
	int64_t expect_ms;

	if (!l->clock_known)
		return false;
	/* Where our clock would be had it kept pace with the monotonic one. */
	expect_ms = l->clock_wall_ms + (int64_t)((hpq_mono_s() - l->clock_mono) * 1000.0);
	*ret_offset_ms = l->clock_offset_ms + (expect_ms - hpq_now_ms());
	*ret_err_ms = l->clock_err_ms;
	return true;
}

int uplink_socket(const struct uplink *l)
{
	return uplink_ready(l) ? l->conn->fd : -1;
}

static void uplink_registered(struct uplink *l, const Hpq__RegisterReply *rr)
{
	if (rr)
		uplink_measure_clock(l, rr->daemon_time);
	l->state = UPLINK_READY;
	l->backoff = UPLINK_BACKOFF_MIN;
	l->failures = 0;
	ev_timer_stop(l->loop, &l->timer_w);
	l->heartbeat_now = l->heartbeat;
	if (rr && rr->heartbeat_s > 0 && (double)rr->heartbeat_s < l->heartbeat)
		l->heartbeat_now = (double)rr->heartbeat_s;
	ev_timer_init(&l->heartbeat_w, uplink_heartbeat_cb, l->heartbeat_now, l->heartbeat_now);
	l->heartbeat_w.data = l;
	ev_timer_start(l->loop, &l->heartbeat_w);
	log_notice("uplink: registered with hpqd at %s as %s (heartbeat %.0f s)", l->server,
		   l->name, l->heartbeat_now);
	l->ops->ready(l->data);
}

/* The handshake: one expected answer per state; anything else ends the attempt. */
static void uplink_handshake(struct uplink *l, const Hpq__Envelope *env)
{
	const char *what = l->state == UPLINK_HELLO ? "hello" :
			   l->state == UPLINK_AUTH ? "authentication" : "registration";
	bool ours = env->id == l->handshake_id || env->id == 0;

	if (ours && env->body_case == HPQ__ENVELOPE__BODY_ERROR) {
		hpq_log(uplink_loud(l), "uplink: hpqd at %s refused the %s: %s", l->server, what,
			uplink_error_text(env));
		if (env->error && env->error->code == HPQ_EAUTH)
			hpq_log(uplink_loud(l), "uplink: check that --key-file names the "
				"cluster key of hpqd");
		uplink_fail(l);
		return;
	}
	if (l->state == UPLINK_HELLO && ours && env->body_case == HPQ__ENVELOPE__BODY_HELLO_REPLY &&
	    env->hello_reply) {
		const Hpq__HelloReply *hr = env->hello_reply;

		if (hr->protocol_version < HPQ_PROTOCOL_MIN) {
			hpq_log(uplink_loud(l), "uplink: hpqd at %s speaks protocol %" PRIu32
				", this agent needs %d or newer; upgrade hpqd", l->server,
				hr->protocol_version, HPQ_PROTOCOL_MIN);
			uplink_fail(l);
			return;
		}
		if (hr->nonce.len > 0) {
			if (!l->have_key) {
				hpq_log(uplink_loud(l), "uplink: hpqd at %s requires the cluster "
					"key; start hpq-agent with --key-file", l->server);
				uplink_fail(l);
				return;
			}
			uplink_send_auth(l, &hr->nonce);
			return;
		}
		uplink_send_register(l);
		return;
	}
	if (l->state == UPLINK_AUTH && env->id == l->handshake_id &&
	    env->body_case == HPQ__ENVELOPE__BODY_OK) {
		uplink_send_register(l);
		return;
	}
	if (l->state == UPLINK_REGISTER && env->id == l->handshake_id &&
	    env->body_case == HPQ__ENVELOPE__BODY_REGISTER_REPLY) {
		uplink_registered(l, env->register_reply);
		return;
	}
	log_err("uplink: unexpected %s (id %" PRIu64 ") from hpqd at %s during the %s; "
		"reconnecting", hpq_msg_name(env), env->id, l->server, what);
	uplink_fail(l);
}

static void uplink_frame(struct conn *c, const Hpq__Envelope *env)
{
	struct uplink *l = c->data;
	struct uplink_pending p;

	if (l->state != UPLINK_READY) {
		/*
		 * Once Register is sent the daemon knows the node and may push
		 * work before its RegisterReply (a stale copy to kill, a start
		 * committed meanwhile): that is not a handshake error.
		 */
		if (l->state == UPLINK_REGISTER && env->id == 0 &&
		    (env->body_case == HPQ__ENVELOPE__BODY_RUN_TASK ||
		     env->body_case == HPQ__ENVELOPE__BODY_KILL_TASK)) {
			l->ops->message(l->data, env);
			return;
		}
		uplink_handshake(l, env);
		return;
	}
	switch (env->body_case) {
	case HPQ__ENVELOPE__BODY_OK:
	case HPQ__ENVELOPE__BODY_ERROR:
		if (env->id != 0 && uplink_pending_take(l, env->id, &p)) {
			p.cb(p.ctx, env);
			return;
		}
		if (env->body_case == HPQ__ENVELOPE__BODY_ERROR)
			log_warn("uplink: error from hpqd: %s", uplink_error_text(env));
		else
			log_debug("uplink: Ok for unknown request %" PRIu64, env->id);
		return;
	case HPQ__ENVELOPE__BODY_HELLO:
	case HPQ__ENVELOPE__BODY_HELLO_REPLY:
	case HPQ__ENVELOPE__BODY_AUTH:
	case HPQ__ENVELOPE__BODY_REGISTER_REPLY:
		log_err("uplink: unexpected %s from hpqd at %s after registration; reconnecting",
			hpq_msg_name(env), l->server);
		uplink_fail(l);
		return;
	default:
		if (env->id != 0 && uplink_pending_take(l, env->id, &p)) {
			p.cb(p.ctx, env); /* a typed reply to one of our requests */
			return;
		}
		l->ops->message(l->data, env);
		return;
	}
}

/* ------------------------------------------------------------ connecting */

static void uplink_set_keepalive(int fd)
{
	int one = 1, idle = 30, intvl = 10, cnt = 3;

	/* A daemon host that vanishes without a FIN is noticed within about a minute. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void uplink_connected(struct uplink *l)
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
	uplink_set_keepalive(fd);
	l->conn = conn_new(l->loop, fd, uplink_frame, uplink_conn_closed, l);
	log_info("uplink: connected to hpqd at %s", l->server);
	ev_timer_stop(l->loop, &l->timer_w);
	ev_timer_set(&l->timer_w, UPLINK_HANDSHAKE_TIMEOUT, 0.0);
	ev_timer_start(l->loop, &l->timer_w);
	uplink_send_hello(l);
}

static void uplink_connect_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct uplink *l = w->data;
	socklen_t elen = sizeof(int);
	int err = 0;

	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		err = errno;
	if (err == 0) {
		uplink_connected(l);
		return;
	}
	log_debug("uplink: connect to %s failed: %s", l->server, strerror(err));
	ev_io_stop(loop, &l->connect_w);
	close(l->fd);
	l->fd = -1;
	uplink_try_next(l);
}

/* Starts a non-blocking connect to the next resolved address. */
static void uplink_try_next(struct uplink *l)
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
			uplink_connected(l);
			return;
		}
		if (errno == EINPROGRESS || errno == EINTR) {
			ev_io_set(&l->connect_w, fd, EV_WRITE);
			ev_io_start(l->loop, &l->connect_w);
			return;
		}
		log_debug("uplink: connect to %s failed: %s", l->server, strerror(errno));
		close(fd);
		l->fd = -1;
	}
	/* Said once per outage; the retries are debug noise. */
	hpq_log(l->failures == 0 ? LOG_WARNING : LOG_DEBUG,
		"uplink: cannot connect to hpqd at %s; retrying with backoff", l->server);
	uplink_fail(l);
}

static void uplink_attempt(struct uplink *l)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int r;

	l->state = UPLINK_CONNECTING;
	r = getaddrinfo(l->host, l->port, &hints, &l->addrs);
	if (r != 0) {
		log_warn("uplink: cannot resolve '%s': %s", l->host, gai_strerror(r));
		l->addrs = NULL;
		uplink_fail(l);
		return;
	}
	l->addr_next = l->addrs;
	ev_timer_stop(l->loop, &l->timer_w);
	ev_timer_set(&l->timer_w, UPLINK_CONNECT_TIMEOUT, 0.0);
	ev_timer_start(l->loop, &l->timer_w);
	uplink_try_next(l);
}

/* Backoff over, or a connect/handshake timeout. */
static void uplink_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct uplink *l = w->data;

	switch (l->state) {
	case UPLINK_WAIT:
		uplink_attempt(l);
		return;
	case UPLINK_CONNECTING:
		log_info("uplink: connecting to hpqd at %s timed out; retrying", l->server);
		uplink_fail(l);
		return;
	case UPLINK_HELLO:
	case UPLINK_AUTH:
	case UPLINK_REGISTER:
		log_warn("uplink: hpqd at %s did not answer the handshake; reconnecting",
			 l->server);
		uplink_fail(l);
		return;
	case UPLINK_IDLE:
	case UPLINK_READY:
		return;
	}
}

/* ------------------------------------------------------------ lifetime */

int uplink_init(struct uplink *l, struct ev_loop *loop, const struct uplink_config *cfg,
		const struct uplink_ops *ops, void *data)
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
	l->state = UPLINK_IDLE;
	l->fd = -1;
	l->backoff = UPLINK_BACKOFF_MIN;
	l->next_id = 1;
	ev_io_init(&l->connect_w, uplink_connect_cb, -1, EV_WRITE);
	ev_timer_init(&l->timer_w, uplink_timer_cb, 0.0, 0.0);
	ev_timer_init(&l->heartbeat_w, uplink_heartbeat_cb, l->heartbeat, l->heartbeat);
	l->connect_w.data = l->timer_w.data = l->heartbeat_w.data = l;
	return 0;
}

void uplink_start(struct uplink *l)
{
	if (l->state != UPLINK_IDLE)
		return;
	uplink_attempt(l);
}

void uplink_stop(struct uplink *l)
{
	uplink_close_socket(l);
	ev_timer_stop(l->loop, &l->timer_w);
	ev_timer_stop(l->loop, &l->heartbeat_w);
	l->state = UPLINK_IDLE;
	uplink_pending_fail(l);
}

void uplink_release(struct uplink *l)
{
	uplink_stop(l);
	memset(l->key, 0, sizeof(l->key));
	free(l->server);
	free(l->host);
	free(l->port);
	free(l->name);
	free(l->pending);
	memset(l, 0, sizeof(*l));
}
