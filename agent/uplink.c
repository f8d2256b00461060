/*
 * uplink.c: connecting, TLS, joining, the handshake, heartbeats, renewal
 * and request bookkeeping on the agent's connection to hpqd. The state
 * machine:
 *
 *   IDLE ─start─▶ CONNECTING ─▶ HELLO ───────────────▶ REGISTER ─▶ READY
 *                   ▲   │          │ (no certificate yet)               │
 *                   │   │          └─▶ JOIN ─(JoinReply saved)─▶ WAIT 0 s
 *                   │   └──────────┴─ any failure ─▶ WAIT ◀─────────────┘
 *                   └──────────── backoff expires ────┘
 *
 * A join refused for good leaves the machine (IDLE, gave_up) and tells
 * the owner, which exits. The TLS context is made for each attempt from
 * the credentials in memory, so a renewed certificate is used from the
 * next connection on, and freed when that connection ends.
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "hpq.h"
#include "log.h"
#include "msg.h"
#include "parse.h"
#include "pki.h"
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

static void uplink_forget_key(char **key)
{
	if (*key) {
		explicit_bzero(*key, strlen(*key));
		free(*key);
		*key = NULL;
	}
}

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
	/* After the conn: its channel is gone now. */
	if (l->tls_ctx) {
		hpq_tls_ctx_free(l->tls_ctx);
		l->tls_ctx = NULL;
	}
	uplink_forget_key(&l->join_key_pem);
}

/* The join of the first attempt is over, one way or another. */
static void uplink_join_settle(struct uplink *l)
{
	if (!l->join_unsettled)
		return;
	l->join_unsettled = false;
	if (l->ops->join_settled)
		l->ops->join_settled(l->data);
}

/* A refusal no retry can change: stop, and let the owner exit. */
static void uplink_give_up(struct uplink *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void uplink_give_up(struct uplink *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hpq_vlog(LOG_ERR, fmt, ap);
	va_end(ap);
	uplink_stop(l);
	l->gave_up = true;
	uplink_join_settle(l);
	if (l->ops->give_up)
		l->ops->give_up(l->data);
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
	ev_timer_stop(l->loop, &l->renew_w);
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
	uplink_join_settle(l);
	if (was_ready && l->ops->lost)
		l->ops->lost(l->data);
}

/* Joined: connect again at once, with the new certificate. */
static void uplink_retry_now(struct uplink *l)
{
	uplink_close_socket(l);
	ev_timer_stop(l->loop, &l->timer_w);
	l->state = UPLINK_WAIT;
	l->backoff = UPLINK_BACKOFF_MIN;
	l->failures = 0;
	ev_timer_set(&l->timer_w, 0.0, 0.0);
	ev_timer_start(l->loop, &l->timer_w);
}

static void uplink_conn_closed(struct conn *c, int error)
{
	struct uplink *l = c->data;

	l->conn = NULL;
	if (error == HPQ_ETLS && l->joining) {
		uplink_give_up(l, "uplink: TLS with hpqd at %s failed while joining: %s; check that "
			       "--ca-hash is the hash 'hpq node token create' printed, that --server "
			       "is hpqd's address and port (and --server-name a name in its "
			       "certificate), and that hpqd does not run --insecure", l->server,
			       conn_error(c));
		return;
	}
	if (error == HPQ_ETLS)
		hpq_log(uplink_loud(l), "uplink: TLS with hpqd at %s failed: %s; reconnecting",
			l->server, conn_error(c));
	else if (error == 0)
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

/*
 * The release the agent announces: its own, unless the test suite's
 * HPQ_TEST_AGENT_ANNOUNCE=VERSION:PROTOCOL makes it say Hello as an older
 * one (tests/integration/t_upgrade.c runs a cluster of mixed versions with
 * it). Only protocols this agent also speaks are taken.
 */
static void uplink_announce(const char **version, uint32_t *protocol)
{
	static char v[32];
	const char *e = getenv("HPQ_TEST_AGENT_ANNOUNCE");
	unsigned p;
	int n = 0;

	*version = HPQ_VERSION;
	*protocol = HPQ_PROTOCOL_VERSION;
	if (!e || sscanf(e, "%31[0-9.]:%u%n", v, &p, &n) != 2 || e[n] || p < HPQ_PROTOCOL_MIN ||
	    p > HPQ_PROTOCOL_VERSION)
		return;
	*version = v;
	*protocol = p;
}

static void uplink_send_hello(struct uplink *l)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Hello hello = HPQ__HELLO__INIT;
	const char *version;

	hello.role = HPQ__ROLE__ROLE_AGENT;
	uplink_announce(&version, &hello.protocol_version);
	hello.software_version = (char *)version;
	hello.name = l->name;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	l->state = UPLINK_HELLO;
	l->handshake_id = uplink_send_raw(l, &env, true);
}

/* The pool Register names: the certificate's, when it names one. */
static char *uplink_pool(struct uplink *l)
{
	if (l->mode == UPLINK_TLS && l->creds.present && l->creds.info.ou[0])
		return l->creds.info.ou;
	return l->pool;
}

/* A token and a request for a fresh key; the key stays here until the
 * certificate for it comes back. */
static void uplink_send_join(struct uplink *l)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__JoinRequest jr = HPQ__JOIN_REQUEST__INIT;
	char *csr = NULL, msg[256];
	int r;

	uplink_forget_key(&l->join_key_pem);
	r = hpq_pki_make_request(l->name, &l->join_key_pem, &csr, msg, sizeof(msg));
	ev_now_update(l->loop); /* making a key takes a while */
	if (r < 0) {
		log_err("uplink: cannot make a key and a certificate request to join: %s", msg);
		uplink_fail(l);
		return;
	}
	jr.token = l->join_token;
	jr.csr.data = (uint8_t *)csr;
	jr.csr.len = strlen(csr);
	env.body_case = HPQ__ENVELOPE__BODY_JOIN;
	env.join = &jr;
	log_info("uplink: joining the cluster of hpqd at %s as node %s", l->server, l->name);
	l->state = UPLINK_JOIN;
	l->handshake_id = uplink_send_raw(l, &env, true);
	free(csr);
}

static void uplink_send_register(struct uplink *l)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Register reg = HPQ__REGISTER__INIT;

	l->ops->fill_register(l->data, &reg, l->local_addr);
	reg.name = l->name;
	reg.pool = uplink_pool(l);
	env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
	env.register_ = &reg;
	l->reg_sent_wall_ms = hpq_now_ms();
	l->reg_sent_mono = hpq_mono_s();
	l->reg_sent_boot_ms = hpq_boot_ms();
	l->state = UPLINK_REGISTER;
	l->handshake_id = uplink_send_raw(l, &env, true);
	l->ops->release_register(l->data, &reg);
}

struct uplink_beat {
	struct uplink *l;
	int64_t sent_ms;            /* boot clock */
};

/* hpqd answered a heartbeat: it has seen the node since it was sent. */
static void uplink_heartbeat_answered(void *ctx, const Hpq__Envelope *reply)
{
	struct uplink_beat *b = ctx;
	struct uplink *l = b->l;

	if (reply && reply->body_case == HPQ__ENVELOPE__BODY_OK && l->fence_after_ms &&
	    l->ops->lease)
		l->ops->lease(l->data, b->sent_ms, l->fence_after_ms);
	free(b);
}

static void uplink_send_heartbeat(struct uplink *l)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Heartbeat hb = HPQ__HEARTBEAT__INIT;
	struct uplink_beat *b;

	hb.time = hpq_now_ms();
	if (l->ops->fill_heartbeat)
		l->ops->fill_heartbeat(l->data, &hb);
	env.body_case = HPQ__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	if (!l->fence_after_ms) {
		uplink_send_raw(l, &env, false);
		return;
	}
	/* Fencing: each beat is a request, and its Ok renews the lease. */
	b = xmalloc(sizeof(*b));
	*b = (struct uplink_beat){l, hpq_boot_ms()};
	uplink_pending_add(l, uplink_send_raw(l, &env, true), uplink_heartbeat_answered, b);
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
	return uplink_ready(l) && l->mode != UPLINK_UNIX ? l->conn->fd : -1;
}

/* ------------------------------------------------------------ renewal */

/*
 * How often to look whether the certificate is due: every
 * UPLINK_RENEW_CHECK, or a sixth of its lifetime if that is shorter, so
 * that a short-lived certificate is renewed while a third of it is left
 * (hpqd closes a connection whose certificate expired).
 */
static double uplink_renew_every(const struct uplink *l)
{
	double every = (double)creds_lifetime(&l->creds.info) / 6;

	return every < 1.0 ? 1.0 : every > UPLINK_RENEW_CHECK ? UPLINK_RENEW_CHECK : every;
}

/* hpqd said no, or its answer was unusable: try again later, less often. */
static void uplink_renew_refused(struct uplink *l, const char *why)
{
	char when[64], wait[32];

	log_warn("uplink: hpqd at %s did not renew this node's certificate (valid until %s): "
		 "%s; trying again in %s", l->server,
		 hpq_utc_text(l->creds.info.not_after * 1000, when, sizeof(when)), why,
		 hpq_format_duration((uint64_t)l->renew_delay, wait, sizeof(wait)));
	l->renew_next = ev_now(l->loop) + l->renew_delay;
	l->renew_delay = 2 * l->renew_delay > UPLINK_RENEW_RETRY_MAX ? UPLINK_RENEW_RETRY_MAX
								      : 2 * l->renew_delay;
}

static void uplink_renew_answered(void *ctx, const Hpq__Envelope *reply)
{
	struct uplink *l = ctx;
	const Hpq__RenewReply *rr;
	char msg[512], when[64];
	int r;

	if (!reply) { /* the connection is gone: again once registered */
		uplink_forget_key(&l->renew_key_pem);
		return;
	}
	if (reply->body_case != HPQ__ENVELOPE__BODY_RENEW_REPLY || !reply->renew_reply) {
		uplink_renew_refused(l, uplink_error_text(reply));
		uplink_forget_key(&l->renew_key_pem);
		return;
	}
	rr = reply->renew_reply;
	r = creds_store(&l->creds, l->name, l->renew_key_pem, rr->certificate.data,
			rr->certificate.len, NULL, 0, NULL, msg, sizeof(msg));
	ev_now_update(l->loop); /* the files were synced */
	uplink_forget_key(&l->renew_key_pem);
	if (r < 0) {
		uplink_renew_refused(l, msg);
		return;
	}
	l->renew_delay = uplink_renew_every(l);
	log_notice("uplink: renewed this node's certificate: valid until %s (serial %s), in %s; "
		   "used from the next connection",
		   hpq_utc_text(l->creds.info.not_after * 1000, when, sizeof(when)),
		   l->creds.info.serial, l->creds.node_path);
}

/* Asks for a new certificate once less than a third of this one is left. */
static void uplink_renew_check(struct uplink *l)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__RenewRequest rq = HPQ__RENEW_REQUEST__INIT;
	char *csr = NULL, msg[256], when[64];
	int r;

	if (!uplink_ready(l) || l->mode != UPLINK_TLS || !l->creds.present || l->renew_key_pem)
		return;
	if (ev_now(l->loop) < l->renew_next ||
	    !creds_renew_due(&l->creds.info, hpq_now_ms() / 1000))
		return;
	r = hpq_pki_make_request(l->name, &l->renew_key_pem, &csr, msg, sizeof(msg));
	ev_now_update(l->loop); /* making a key takes a while */
	if (r < 0) {
		uplink_renew_refused(l, msg);
		return;
	}
	rq.csr.data = (uint8_t *)csr;
	rq.csr.len = strlen(csr);
	env.body_case = HPQ__ENVELOPE__BODY_RENEW;
	env.renew = &rq;
	log_info("uplink: asking hpqd to renew this node's certificate (valid until %s)",
		 hpq_utc_text(l->creds.info.not_after * 1000, when, sizeof(when)));
	if (uplink_request(l, &env, uplink_renew_answered, l) < 0)
		uplink_forget_key(&l->renew_key_pem);
	free(csr);
}

static void uplink_renew_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	uplink_renew_check(w->data);
}

static void uplink_registered(struct uplink *l, const Hpq__RegisterReply *rr)
{
	if (rr)
		uplink_measure_clock(l, rr->daemon_time);
	l->fence_after_ms = rr ? rr->fence_after_ms : 0;
	if (l->ops->lease) /* hpqd has seen the node since Register went out */
		l->ops->lease(l->data, l->reg_sent_boot_ms, l->fence_after_ms);
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
	log_notice("uplink: registered with hpqd at %s as %s (heartbeat %.0f s, %s)", l->server,
		   l->name, l->heartbeat_now,
		   l->mode == UPLINK_TLS ? "TLS" : l->mode == UPLINK_UNIX ? "Unix socket" :
		   "plaintext, --insecure");
	l->ops->ready(l->data);
	if (l->mode == UPLINK_TLS && uplink_ready(l)) {
		l->renew_delay = uplink_renew_every(l);
		ev_timer_set(&l->renew_w, l->renew_delay, l->renew_delay);
		ev_timer_start(l->loop, &l->renew_w);
		uplink_renew_check(l);
	}
}

/* Refusals of a join that no retry can change (a bad or used-up token, a
 * name taken, a request hpqd cannot take); others (hpqd busy or shutting
 * down, its storage failing) are tried again. */
static bool uplink_join_final(int code)
{
	return code == HPQ_EAUTH || code == HPQ_EEXIST || code == HPQ_EPERM ||
	       code == HPQ_EINVAL || code == HPQ_EVERSION || code == HPQ_ENOTFOUND ||
	       code == HPQ_EPROTO;
}

static void uplink_refused(struct uplink *l, const char *what, const Hpq__Envelope *env)
{
	int code = env->error ? env->error->code : 0;

	if (l->joining && uplink_join_final(code)) {
		/* hpqd's words say what to do (a new token, another name). */
		uplink_give_up(l, "uplink: hpqd at %s refused to let node %s join: %s", l->server,
			       l->name, uplink_error_text(env));
		return;
	}
	if (l->joining) {
		hpq_log(uplink_loud(l), "uplink: hpqd at %s cannot let node %s join now: %s; "
			"retrying", l->server, l->name, uplink_error_text(env));
		uplink_fail(l);
		return;
	}
	if (code == HPQ_EAUTH && l->mode == UPLINK_TLS) {
		hpq_log(uplink_loud(l), "uplink: hpqd at %s refuses this node's certificate: %s; "
			"to join again with a new token, remove %s and start hpq-agent with "
			"--join TOKEN --ca-hash sha256:...; retrying", l->server,
			uplink_error_text(env), l->creds.dir);
		uplink_fail(l);
		return;
	}
	hpq_log(uplink_loud(l), "uplink: hpqd at %s refused the %s: %s", l->server, what,
		uplink_error_text(env));
	uplink_fail(l);
}

/* The certificate is here: save it, and connect again with it. */
static void uplink_joined(struct uplink *l, const Hpq__JoinReply *jr)
{
	char msg[512], when[64];
	int r;

	r = creds_store(&l->creds, l->name, l->join_key_pem, jr->certificate.data,
			jr->certificate.len, jr->ca.data, jr->ca.len, l->ca_pin, msg, sizeof(msg));
	ev_now_update(l->loop); /* the files were synced */
	if (r == HPQ_EPROTO) {
		uplink_give_up(l, "uplink: hpqd at %s let node %s join, but its answer is not "
			       "usable: %s", l->server, l->name, msg);
		return;
	}
	if (r < 0) {
		log_err("uplink: node %s joined, but %s; joining again", l->name, msg);
		uplink_fail(l);
		return;
	}
	explicit_bzero(l->join_token, strlen(l->join_token));
	free(l->join_token);
	l->join_token = NULL;
	l->joining = false;
	log_notice("uplink: joined the cluster of hpqd at %s as node %s in pool %s; certificate "
		   "valid until %s, saved in %s", l->server, l->name, uplink_pool(l),
		   hpq_utc_text(l->creds.info.not_after * 1000, when, sizeof(when)), l->creds.dir);
	if (l->creds.info.ou[0] && strcmp(l->creds.info.ou, l->pool) != 0)
		log_notice("uplink: the join token puts node %s in pool %s, not in pool %s (--pool)",
			   l->name, l->creds.info.ou, l->pool);
	uplink_join_settle(l);
	uplink_retry_now(l);
}

/* The handshake: one expected answer per state; anything else ends the attempt. */
static void uplink_handshake(struct uplink *l, const Hpq__Envelope *env)
{
	const char *what = l->state == UPLINK_HELLO ? "hello" :
			   l->state == UPLINK_JOIN ? "join" : "registration";
	bool ours = env->id == l->handshake_id || env->id == 0;

	if (ours && env->body_case == HPQ__ENVELOPE__BODY_ERROR) {
		uplink_refused(l, what, env);
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
		/* A nonce is for Auth, which agents do not send: the certificate,
		 * the socket's peer or --insecure tell hpqd who this is. */
		if (hr->nonce.len > 0)
			log_debug("uplink: hpqd at %s sent a nonce; agents do not answer it",
				  l->server);
		if (l->joining)
			uplink_send_join(l);
		else
			uplink_send_register(l);
		return;
	}
	if (l->state == UPLINK_JOIN && env->id == l->handshake_id &&
	    env->body_case == HPQ__ENVELOPE__BODY_JOIN_REPLY && env->join_reply) {
		uplink_joined(l, env->join_reply);
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
	struct hpq_tls *t = NULL;
	int fd = l->fd;

	ev_io_stop(l->loop, &l->connect_w);
	l->fd = -1;
	if (l->addrs)
		freeaddrinfo(l->addrs);
	l->addrs = l->addr_next = NULL;
	l->local_addr[0] = '\0';
	if (l->mode != UPLINK_UNIX) {
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
			(void)getnameinfo((struct sockaddr *)&ss, len, l->local_addr,
					  sizeof(l->local_addr), NULL, 0, NI_NUMERICHOST);
		uplink_set_keepalive(fd);
	}
	if (l->mode == UPLINK_TLS) {
		t = hpq_tls_new(l->tls_ctx, l->tls_name);
		if (hpq_tls_error(t)[0]) { /* a name a certificate cannot carry, say */
			char why[256];

			snprintf(why, sizeof(why), "%s", hpq_tls_error(t));
			hpq_tls_free(t);
			close(fd);
			if (l->joining) {
				uplink_give_up(l, "uplink: cannot start TLS to hpqd at %s: %s; give "
					       "--server-name", l->server, why);
				return;
			}
			hpq_log(uplink_loud(l), "uplink: cannot start TLS to hpqd at %s: %s; "
				"retrying", l->server, why);
			uplink_fail(l);
			return;
		}
	}
	l->conn = conn_new(l->loop, fd, uplink_frame, uplink_conn_closed, l);
	log_info("uplink: connected to hpqd at %s (%s)", l->server,
		 l->mode == UPLINK_UNIX ? "Unix socket" : l->mode == UPLINK_PLAIN ?
		 "plaintext, --insecure" : l->joining ? "TLS, joining" : "TLS");
	ev_timer_stop(l->loop, &l->timer_w);
	ev_timer_set(&l->timer_w, UPLINK_HANDSHAKE_TIMEOUT, 0.0);
	ev_timer_start(l->loop, &l->timer_w);
	if (t) {
		conn_set_tls(l->conn, t);
		if (!l->conn)
			return; /* closed already */
	}
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

static void uplink_cannot_connect(struct uplink *l)
{
	/* Said once per outage; the retries are debug noise. */
	hpq_log(l->failures == 0 ? LOG_WARNING : LOG_DEBUG,
		"uplink: cannot connect to hpqd at %s; retrying with backoff", l->server);
	uplink_fail(l);
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
	uplink_cannot_connect(l);
}

/* hpqd's Unix socket: connected at once, or not at all. */
static void uplink_attempt_unix(struct uplink *l)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		log_err("uplink: cannot create a socket: %s", strerror(errno));
		uplink_fail(l);
		return;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", l->server);
	l->fd = fd;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		uplink_connected(l);
		return;
	}
	log_debug("uplink: connect to %s failed: %s", l->server, strerror(errno));
	close(fd);
	l->fd = -1;
	uplink_cannot_connect(l);
}

/*
 * The TLS context of this attempt: the node's certificate and the cluster
 * CA, or, to join, the pin alone. Returns false when the attempt ends here.
 * A certificate that expired stays refused, as a spent token does: the
 * uplink gives up (the agent exits, and systemd does not start it again)
 * instead of dialling hpqd with it for ever; only a new join helps.
 */
static bool uplink_tls_prepare(struct uplink *l)
{
	struct hpq_tls_config tc = {0};
	char msg[256], when[64];

	l->joining = !l->creds.present;
	if (l->joining) {
		tc.pin_hash = l->ca_pin;
	} else {
		tc.ca_pem = l->creds.ca_pem;
		tc.cert_pem = l->creds.cert_pem;
		tc.key_pem = l->creds.key_pem;
		if (l->creds.info.not_after <= hpq_now_ms() / 1000) {
			uplink_give_up(l, "uplink: this node's certificate (%s) expired on %s: "
				       "hpqd refuses it; join again with a new token: run 'hpq "
				       "node token create' on the hpqd host, remove %s and start "
				       "hpq-agent with --join TOKEN --ca-hash sha256:...",
				       l->creds.node_path,
				       hpq_utc_text(l->creds.info.not_after * 1000, when,
						    sizeof(when)), l->creds.dir);
			return false;
		}
	}
	l->tls_ctx = hpq_tls_ctx_new(false, &tc, msg, sizeof(msg));
	if (l->tls_ctx)
		return true;
	if (l->joining)
		uplink_give_up(l, "uplink: cannot set up TLS to join: %s", msg);
	else {
		hpq_log(uplink_loud(l), "uplink: cannot set up TLS with this node's certificate: "
			"%s; retrying", msg);
		uplink_fail(l);
	}
	return false;
}

static void uplink_attempt(struct uplink *l)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int r;

	l->state = UPLINK_CONNECTING;
	if (l->mode == UPLINK_UNIX) {
		uplink_attempt_unix(l);
		return;
	}
	if (l->mode == UPLINK_TLS && !uplink_tls_prepare(l))
		return;
	r = getaddrinfo(l->host, l->port, &hints, &l->addrs);
	ev_now_update(l->loop); /* a resolver may take its time */
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
	case UPLINK_JOIN:
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

/*
 * TLS: the node's certificate, or what it needs to join. A node that has
 * neither cannot talk to hpqd: that is an error at start, not a retry loop.
 */
static int uplink_init_tls(struct uplink *l, const struct uplink_config *cfg, char *err,
			   size_t errlen)
{
	char when[64];
	int r;

	r = creds_open(&l->creds, cfg->work_dir, l->name, err, errlen);
	if (r < 0)
		return r;
	if (l->creds.present) {
		hpq_utc_text(l->creds.info.not_after * 1000, when, sizeof(when));
		if (l->creds.info.not_after <= hpq_now_ms() / 1000)
			return hpq_errf(err, errlen, HPQ_EAUTH,
					"this node's certificate (%s) expired on %s: join again "
					"with a new token: run 'hpq node token create' on the hpqd "
					"host, remove %s and start hpq-agent with --join TOKEN "
					"--ca-hash sha256:...", l->creds.node_path, when,
					l->creds.dir);
		log_info("uplink: node %s has its certificate in %s (serial %s, valid until %s)",
			 l->name, l->creds.node_path, l->creds.info.serial, when);
		if (cfg->join_token || cfg->join_file)
			log_info("uplink: node %s has joined already; --join is not used", l->name);
		if (cfg->ca_hash && strcasecmp(cfg->ca_hash, l->creds.ca_hash) != 0)
			log_warn("uplink: --ca-hash %s is not the hash of the cluster CA in %s (%s); "
				 "the agent trusts the CA it joined with; to join another cluster, "
				 "remove %s and join again", cfg->ca_hash, l->creds.ca_path,
				 l->creds.ca_hash, l->creds.dir);
		if (l->creds.info.ou[0] && strcmp(l->creds.info.ou, l->pool) != 0)
			log_notice("uplink: node %s is in pool %s by its certificate; --pool %s is "
				   "not used", l->name, l->creds.info.ou, l->pool);
		return 0;
	}
	if (cfg->join_token) {
		l->join_token = xstrdup(cfg->join_token);
		if (cfg->join_file)
			log_info("uplink: --join is given; --join-file %s is not read",
				 cfg->join_file);
	} else if (cfg->join_file) {
		r = creds_read_token(cfg->join_file, &l->join_token, err, errlen);
		if (r < 0)
			return r;
	} else {
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"node %s has no certificate yet (%s), and hpqd at %s takes nodes "
				"over TCP only with one: join the cluster: run 'hpq node token "
				"create' on the hpqd host, then start hpq-agent with --join TOKEN "
				"(or --join-file FILE) --ca-hash sha256:... as it prints them; "
				"to use an --insecure hpqd on this host give --insecure",
				l->name, l->creds.node_path, l->server);
	}
	if (!cfg->ca_hash || !hpq_pki_hash_valid(cfg->ca_hash))
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"--join needs --ca-hash sha256:..., as 'hpq node token create' "
				"prints it");
	l->ca_pin = xstrdup(cfg->ca_hash);
	l->join_unsettled = true;
	return 0;
}

int uplink_init(struct uplink *l, struct ev_loop *loop, const struct uplink_config *cfg,
		const struct uplink_ops *ops, void *data, char *err, size_t errlen)
{
	char host[256] = "", port[8] = "";
	uint16_t portnum;
	int r;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (config_server_is_path(cfg->server)) {
		if (strlen(cfg->server) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"server socket path '%s' is too long", cfg->server);
		l->mode = UPLINK_UNIX;
	} else {
		if (hpq_split_hostport(cfg->server, 0, host, sizeof(host), &portnum) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL, "invalid server address '%s'",
					cfg->server);
		snprintf(port, sizeof(port), "%u", (unsigned)portnum);
		l->mode = cfg->insecure ? UPLINK_PLAIN : UPLINK_TLS;
	}
	l->loop = loop;
	l->ops = ops;
	l->data = data;
	l->server = xstrdup(cfg->server);
	l->host = xstrdup(host);
	l->port = xstrdup(port);
	l->name = xstrdup(cfg->name);
	l->pool = xstrdup(cfg->pool ? cfg->pool : HPQ_DEFAULT_POOL);
	l->tls_name = xstrdup(cfg->server_name ? cfg->server_name : host);
	if (l->mode == UPLINK_TLS) {
		r = uplink_init_tls(l, cfg, err, errlen);
		if (r < 0) {
			uplink_release(l);
			return r;
		}
	} else if (cfg->join_token || cfg->join_file) {
		log_info("uplink: --join is not used: %s", l->mode == UPLINK_UNIX ?
			 "hpqd's Unix socket takes agents without a certificate" :
			 "an --insecure hpqd takes nodes by name");
	}
	l->heartbeat = l->heartbeat_now = cfg->heartbeat > 0 ? cfg->heartbeat : 10.0;
	l->state = UPLINK_IDLE;
	l->backoff = UPLINK_BACKOFF_MIN;
	l->renew_delay = UPLINK_RENEW_CHECK;
	l->next_id = 1;
	ev_io_init(&l->connect_w, uplink_connect_cb, -1, EV_WRITE);
	ev_timer_init(&l->timer_w, uplink_timer_cb, 0.0, 0.0);
	ev_timer_init(&l->heartbeat_w, uplink_heartbeat_cb, l->heartbeat, l->heartbeat);
	ev_timer_init(&l->renew_w, uplink_renew_cb, UPLINK_RENEW_CHECK, UPLINK_RENEW_CHECK);
	l->connect_w.data = l->timer_w.data = l->heartbeat_w.data = l->renew_w.data = l;
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
	if (!l->loop)
		return; /* uplink_init failed before it had one */
	uplink_close_socket(l);
	ev_timer_stop(l->loop, &l->timer_w);
	ev_timer_stop(l->loop, &l->heartbeat_w);
	ev_timer_stop(l->loop, &l->renew_w);
	l->state = UPLINK_IDLE;
	uplink_pending_fail(l);
}

void uplink_release(struct uplink *l)
{
	uplink_stop(l);
	uplink_forget_key(&l->join_key_pem);
	uplink_forget_key(&l->renew_key_pem);
	uplink_forget_key(&l->join_token);
	creds_release(&l->creds);
	free(l->ca_pin);
	free(l->server);
	free(l->host);
	free(l->port);
	free(l->name);
	free(l->pool);
	free(l->tls_name);
	free(l->pending);
	memset(l, 0, sizeof(*l));
}
