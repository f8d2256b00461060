/*
 * test_agent_uplink_tls.c: the agent's uplink against a small stand-in
 * for hpqd on the same libev loop, which speaks the real protocol over
 * TLS (tls.h, server side, driven by hand) with a real cluster CA
 * (pki.h). It checks what the agent does, not hpqd: a node without a
 * certificate joins with its token and pin, saves what it got and
 * registers with it; a node with one registers at once; a wrong pin, a
 * refused token or a TLS name mismatch end as they should (giving up, or
 * retrying); a refused certificate is retried; a certificate near its end
 * is renewed and saved; the Unix socket and --insecure speak plaintext.
 * Every wait is on a condition, with a deadline that fails the test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "clock.h"
#include "error.h"
#include "frame.h"
#include "hpq.h"
#include "msg.h"
#include "pki.h"
#include "tls.h"
#include "uplink.h"
#include "xalloc.h"

#define TOKEN "hpq1.tok.secret"
#define DEADLINE 20.0

static char root[] = "/tmp/hpq-test-uplink-XXXXXX";
static struct hpq_ca *ca;
static struct hpq_tls_ctx *server_ctx;
static int dir_seq;

#define assert_ok(call)                                                              \
	do {                                                                         \
		int r_ = (call);                                                     \
		if (r_ != 0)                                                         \
			fail_msg("%s: %d (%s)", #call, r_, err);                     \
	} while (0)

/* ------------------------------------------------------------ the stand-in */

struct fake {
	struct ev_loop *loop;
	int lfd;
	ev_io accept_w;
	bool plain;               /* no TLS (Unix socket, --insecure) */
	/* How it answers. */
	int join_error;           /* Error for JoinRequest; 0: sign */
	int register_error;       /* Error for Register; 0: RegisterReply */
	int64_t lifetime_s;       /* of the certificates it issues */
	/* What it saw. */
	int conns, hellos, joins, registers, renews;
	char token[128];          /* of the last JoinRequest */
	char peer_cn[HPQ_NAME_MAX]; /* the client certificate's, at Register */
	char reg_pool[HPQ_NAME_MAX];
	char reg_name[HPQ_NAME_MAX];
	struct fconn *open;       /* connections not closed yet */
};

struct fconn {
	struct fconn *next;
	struct fake *f;
	int fd;
	ev_io rio;
	struct hpq_tls *tls;
	struct hpq_framer fr;
	char name[HPQ_NAME_MAX];
};

static void fconn_close(struct fconn *fc)
{
	struct fconn **p = &fc->f->open;

	while (*p != fc)
		p = &(*p)->next;
	*p = fc->next;
	ev_io_stop(fc->f->loop, &fc->rio);
	close(fc->fd);
	hpq_tls_free(fc->tls);
	hpq_framer_release(&fc->fr);
	free(fc);
}

static void fconn_write(struct fconn *fc, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len > 0) {
		ssize_t n = send(fc->fd, b, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the agent went away */
		b += n;
		len -= (size_t)n;
	}
}

static void fconn_flush(struct fconn *fc)
{
	uint8_t buf[16384];
	size_t n;

	if (!fc->tls)
		return;
	while ((n = hpq_tls_out_take(fc->tls, buf, sizeof(buf))) > 0)
		fconn_write(fc, buf, n);
}

static void fconn_send(struct fconn *fc, Hpq__Envelope *env)
{
	size_t len;
	uint8_t *frame = hpq_msg_encode(env, &len);

	if (fc->tls) {
		hpq_tls_write(fc->tls, frame, len);
		fconn_flush(fc);
	} else {
		fconn_write(fc, frame, len);
	}
	free(frame);
}

static void fconn_error(struct fconn *fc, uint64_t id, int code, const char *msg)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Error e = HPQ__ERROR__INIT;

	e.code = code;
	e.message = (char *)msg;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_ERROR;
	env.error = &e;
	fconn_send(fc, &env);
}

/* Signs a request as hpqd would: the node and pool are the stand-in's word. */
static char *fake_sign(struct fake *f, const ProtobufCBinaryData *csr, const char *node,
		       struct hpq_cert_info *info)
{
	char *cert = NULL, err[256];

	assert_ok(hpq_ca_sign_node(ca, (const char *)csr->data, csr->len, node, "gpu",
				   f->lifetime_s, &cert, info, err, sizeof(err)));
	return cert;
}

/* Returns false when the connection is to be closed. */
static bool fconn_message(struct fconn *fc, const Hpq__Envelope *env)
{
	struct fake *f = fc->f;
	Hpq__Envelope out = HPQ__ENVELOPE__INIT;
	struct hpq_cert_info info;
	char *cert;

	out.id = env->id;
	switch (env->body_case) {
	case HPQ__ENVELOPE__BODY_HELLO: {
		Hpq__HelloReply hr = HPQ__HELLO_REPLY__INIT;

		f->hellos++;
		snprintf(fc->name, sizeof(fc->name), "%s", env->hello->name);
		hr.protocol_version = HPQ_PROTOCOL_VERSION;
		hr.software_version = (char *)"fake";
		hr.user = fc->name;
		out.body_case = HPQ__ENVELOPE__BODY_HELLO_REPLY;
		out.hello_reply = &hr;
		fconn_send(fc, &out);
		return true;
	}
	case HPQ__ENVELOPE__BODY_JOIN: {
		Hpq__JoinReply jr = HPQ__JOIN_REPLY__INIT;

		f->joins++;
		snprintf(f->token, sizeof(f->token), "%s", env->join->token);
		assert_false(hpq_tls_peer(fc->tls, NULL)); /* no certificate yet */
		if (f->join_error) {
			fconn_error(fc, env->id, f->join_error, "the stand-in says no");
			return false;
		}
		cert = fake_sign(f, &env->join->csr, fc->name, &info);
		jr.certificate.data = (uint8_t *)cert;
		jr.certificate.len = strlen(cert);
		jr.ca.data = (uint8_t *)hpq_ca_pem(ca);
		jr.ca.len = strlen(hpq_ca_pem(ca));
		jr.pool = (char *)"gpu";
		jr.not_after_ms = info.not_after * 1000;
		out.body_case = HPQ__ENVELOPE__BODY_JOIN_REPLY;
		out.join_reply = &jr;
		fconn_send(fc, &out);
		free(cert);
		hpq_tls_shutdown(fc->tls);
		fconn_flush(fc);
		return false; /* hpqd ends a join's connection */
	}
	case HPQ__ENVELOPE__BODY_REGISTER: {
		Hpq__RegisterReply rr = HPQ__REGISTER_REPLY__INIT;

		f->registers++;
		f->peer_cn[0] = '\0';
		if (fc->tls && hpq_tls_peer(fc->tls, &info))
			snprintf(f->peer_cn, sizeof(f->peer_cn), "%s", info.cn);
		snprintf(f->reg_name, sizeof(f->reg_name), "%s", env->register_->name);
		snprintf(f->reg_pool, sizeof(f->reg_pool), "%s", env->register_->pool);
		if (f->register_error) {
			fconn_error(fc, env->id, f->register_error, "certificate revoked");
			return false;
		}
		rr.heartbeat_s = 10;
		rr.daemon_time = hpq_now_ms();
		out.body_case = HPQ__ENVELOPE__BODY_REGISTER_REPLY;
		out.register_reply = &rr;
		fconn_send(fc, &out);
		return true;
	}
	case HPQ__ENVELOPE__BODY_RENEW: {
		Hpq__RenewReply rr = HPQ__RENEW_REPLY__INIT;

		f->renews++;
		assert_true(hpq_tls_peer(fc->tls, &info));
		cert = fake_sign(f, &env->renew->csr, info.cn, &info);
		rr.certificate.data = (uint8_t *)cert;
		rr.certificate.len = strlen(cert);
		rr.not_after_ms = info.not_after * 1000;
		out.body_case = HPQ__ENVELOPE__BODY_RENEW_REPLY;
		out.renew_reply = &rr;
		fconn_send(fc, &out);
		free(cert);
		return true;
	}
	default:
		return true; /* heartbeats */
	}
}

static void fconn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fconn *fc = w->data;
	uint8_t buf[65536];
	const uint8_t *payload;
	size_t len;
	ssize_t n = recv(fc->fd, buf, sizeof(buf), MSG_DONTWAIT);
	bool keep = true;
	int r;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		fconn_close(fc);
		return;
	}
	if (fc->tls) {
		if (hpq_tls_feed(fc->tls, buf, (size_t)n) < 0) {
			fconn_flush(fc);
			fconn_close(fc);
			return;
		}
		fconn_flush(fc);
		while ((n = hpq_tls_read(fc->tls, buf, sizeof(buf))) > 0)
			hpq_framer_feed(&fc->fr, buf, (size_t)n);
	} else {
		hpq_framer_feed(&fc->fr, buf, (size_t)n);
	}
	while (keep && (r = hpq_framer_next(&fc->fr, &payload, &len)) > 0) {
		Hpq__Envelope *env = hpq_msg_decode(payload, len);

		assert_non_null(env);
		keep = fconn_message(fc, env);
		hpq_msg_free(env);
	}
	if (!keep)
		fconn_close(fc);
}

static void fake_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fake *f = w->data;
	struct fconn *fc;
	int fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	f->conns++;
	fc = xcalloc(1, sizeof(*fc));
	fc->f = f;
	fc->fd = fd;
	fc->next = f->open;
	f->open = fc;
	hpq_framer_init(&fc->fr, HPQ_FRAME_MAX);
	if (!f->plain)
		fc->tls = hpq_tls_new(server_ctx, NULL);
	ev_io_init(&fc->rio, fconn_read_cb, fd, EV_READ);
	fc->rio.data = fc;
	ev_io_start(loop, &fc->rio);
}

/* Listens on 127.0.0.1 (or on the Unix socket unix_path); fills server. */
static void fake_start(struct fake *f, struct ev_loop *loop, bool plain, const char *unix_path,
		       char *server, size_t len)
{
	memset(f, 0, sizeof(*f));
	f->loop = loop;
	f->plain = plain;
	f->lifetime_s = 3600;
	if (unix_path) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};

		f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", unix_path);
		assert_int_equal(bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
		snprintf(server, len, "%s", unix_path);
	} else {
		struct sockaddr_in sin = {.sin_family = AF_INET};
		socklen_t sl = sizeof(sin);

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
		assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &sl), 0);
		snprintf(server, len, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
	}
	assert_int_equal(listen(f->lfd, 16), 0);
	ev_io_init(&f->accept_w, fake_accept_cb, f->lfd, EV_READ);
	f->accept_w.data = f;
	ev_io_start(loop, &f->accept_w);
}

static void fake_stop(struct fake *f)
{
	while (f->open)
		fconn_close(f->open);
	ev_io_stop(f->loop, &f->accept_w);
	close(f->lfd);
}

/* ------------------------------------------------------------ the agent side */

struct agent_side {
	int ready, lost, settled, gave_up;
};

static void fill_register(void *data, Hpq__Register *reg, const char *local_addr)
{
}

static void release_register(void *data, Hpq__Register *reg)
{
}

static void on_ready(void *data)
{
	((struct agent_side *)data)->ready++;
}

static void on_lost(void *data)
{
	((struct agent_side *)data)->lost++;
}

static void on_message(void *data, const Hpq__Envelope *env)
{
}

static void on_settled(void *data)
{
	((struct agent_side *)data)->settled++;
}

static void on_give_up(void *data)
{
	((struct agent_side *)data)->gave_up++;
}

static const struct uplink_ops ops = {
	.fill_register = fill_register,
	.release_register = release_register,
	.ready = on_ready,
	.lost = on_lost,
	.message = on_message,
	.join_settled = on_settled,
	.give_up = on_give_up,
};

static void wake_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

/* Runs the loop until cond holds; fails the test after DEADLINE seconds. */
#define run_until(loop, cond)                                                        \
	do {                                                                         \
		ev_timer wake_;                                                      \
		double end_ = hpq_mono_s() + DEADLINE;                               \
		ev_timer_init(&wake_, wake_cb, 0.05, 0.05);                          \
		ev_timer_start((loop), &wake_);                                      \
		while (!(cond)) {                                                    \
			if (hpq_mono_s() > end_)                                     \
				fail_msg("timed out waiting for %s", #cond);         \
			ev_run((loop), EVRUN_ONCE);                                  \
		}                                                                    \
		ev_timer_stop((loop), &wake_);                                       \
	} while (0)

static char *new_work_dir(void)
{
	char *p;

	xasprintf(&p, "%s/w%d", root, dir_seq++);
	assert_int_equal(mkdir(p, 0755), 0);
	return p;
}

static struct uplink_config base_config(const char *server, const char *work_dir)
{
	return (struct uplink_config){
		.server = server,
		.name = "n1",
		.pool = "default",
		.work_dir = work_dir,
		.heartbeat = 10.0,
	};
}

static bool exists(const char *dir, const char *file)
{
	char p[700];
	struct stat st;

	snprintf(p, sizeof(p), "%s/tls/%s", dir, file);
	return stat(p, &st) == 0;
}

/* Joins a fresh work directory against a fake; leaves the uplink ready. */
static void join_fresh(struct ev_loop *loop, struct fake *f, const char *server,
		       const char *work_dir, struct uplink *l, struct agent_side *as)
{
	struct uplink_config cfg = base_config(server, work_dir);
	char err[512];

	cfg.join_token = TOKEN;
	cfg.ca_hash = hpq_ca_hash(ca);
	assert_ok(uplink_init(l, loop, &cfg, &ops, as, err, sizeof(err)));
	assert_true(l->join_unsettled);
	uplink_start(l);
	run_until(loop, as->ready > 0 || as->gave_up > 0);
	assert_int_equal(as->gave_up, 0);
}

static void join_then_register(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct agent_side as = {0};
	struct uplink l;
	struct fake f;
	char server[128], *w = new_work_dir(), err[512];

	fake_start(&f, loop, false, NULL, server, sizeof(server));
	join_fresh(loop, &f, server, w, &l, &as);
	assert_int_equal(f.joins, 1);
	assert_string_equal(f.token, TOKEN);
	assert_int_equal(f.registers, 1);
	assert_string_equal(f.peer_cn, "n1");   /* registered with its new certificate */
	assert_string_equal(f.reg_pool, "gpu"); /* the certificate's pool */
	assert_int_equal(as.settled, 1);
	assert_null(l.join_token);
	assert_true(l.creds.present);
	assert_true(exists(w, "node.pem"));
	assert_true(exists(w, "ca.crt"));
	uplink_release(&l);

	/* Again with the credentials: no join, even with a token given. */
	{
		struct uplink_config cfg = base_config(server, w);
		struct agent_side as2 = {0};

		cfg.join_token = TOKEN;
		cfg.ca_hash = hpq_ca_hash(ca);
		assert_ok(uplink_init(&l, loop, &cfg, &ops, &as2, err, sizeof(err)));
		assert_false(l.join_unsettled);
		uplink_start(&l);
		run_until(loop, as2.ready > 0);
		assert_int_equal(f.joins, 1);
		assert_int_equal(f.registers, 2);
		assert_string_equal(f.peer_cn, "n1");
		assert_int_equal(as2.settled, 0);
		uplink_release(&l);
	}
	fake_stop(&f);
	ev_loop_destroy(loop);
	free(w);
}

static void wrong_pin_gives_up(void **state)
{
	static const char other[] =
		"sha256:1111111111111111111111111111111111111111111111111111111111111111";
	struct ev_loop *loop = ev_loop_new(0);
	struct agent_side as = {0};
	struct uplink_config cfg;
	struct uplink l;
	struct fake f;
	char server[128], *w = new_work_dir(), err[512];

	fake_start(&f, loop, false, NULL, server, sizeof(server));
	cfg = base_config(server, w);
	cfg.join_token = TOKEN;
	cfg.ca_hash = other;
	assert_ok(uplink_init(&l, loop, &cfg, &ops, &as, err, sizeof(err)));
	uplink_start(&l);
	run_until(loop, as.gave_up > 0);
	assert_true(l.gave_up);
	assert_int_equal(as.settled, 1);
	assert_int_equal(as.ready, 0);
	assert_int_equal(f.joins, 0); /* the token never left the node */
	assert_false(exists(w, "node.pem"));
	uplink_release(&l);
	fake_stop(&f);
	ev_loop_destroy(loop);
	free(w);
}

static void refused_token_gives_up(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct agent_side as = {0};
	struct uplink_config cfg;
	struct uplink l;
	struct fake f;
	char server[128], *w = new_work_dir(), err[512];

	fake_start(&f, loop, false, NULL, server, sizeof(server));
	f.join_error = HPQ_EAUTH;
	cfg = base_config(server, w);
	cfg.join_token = TOKEN;
	cfg.ca_hash = hpq_ca_hash(ca);
	assert_ok(uplink_init(&l, loop, &cfg, &ops, &as, err, sizeof(err)));
	uplink_start(&l);
	run_until(loop, as.gave_up > 0);
	assert_int_equal(f.joins, 1);
	assert_int_equal(as.settled, 1);
	assert_false(exists(w, "node.pem"));
	uplink_release(&l);
	fake_stop(&f);
	ev_loop_destroy(loop);
	free(w);
}

/* hpqd unable to take the node now: retried, and the join goes through. */
static void busy_join_is_retried(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct agent_side as = {0};
	struct uplink_config cfg;
	struct uplink l;
	struct fake f;
	char server[128], *w = new_work_dir(), err[512];

	fake_start(&f, loop, false, NULL, server, sizeof(server));
	f.join_error = HPQ_EUNAVAIL;
	cfg = base_config(server, w);
	cfg.join_token = TOKEN;
	cfg.ca_hash = hpq_ca_hash(ca);
	assert_ok(uplink_init(&l, loop, &cfg, &ops, &as, err, sizeof(err)));
	uplink_start(&l);
	run_until(loop, f.joins >= 2);
	assert_int_equal(as.gave_up, 0);
	assert_int_equal(as.settled, 1); /* the first attempt is over: the agent serves */
	f.join_error = 0;
	run_until(loop, as.ready > 0);
	assert_true(exists(w, "node.pem"));
	assert_int_equal(as.settled, 1);
	uplink_release(&l);
	fake_stop(&f);
	ev_loop_destroy(loop);
	free(w);
}

static void renewal_when_due(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct agent_side as = {0};
	char server[128], serial[HPQ_PKI_SERIAL_LEN], *w = new_work_dir(), err[512];
	struct creds c;
	struct uplink l;
	struct fake f;

	fake_start(&f, loop, false, NULL, server, sizeof(server));
	/* Due with 2 s left, 4 s after its issue (the backdating is not
	 * counted), looked at every second (a sixth of its life). */
	f.lifetime_s = 6;
	join_fresh(loop, &f, server, w, &l, &as);
	memcpy(serial, l.creds.info.serial, sizeof(serial));
	run_until(loop, f.renews > 0 && strcmp(l.creds.info.serial, serial) != 0);
	assert_int_equal(f.renews, 1);
	/* Saved: the file holds the renewed certificate and its new key. */
	assert_ok(creds_open(&c, w, "n1", err, sizeof(err)));
	assert_string_equal(c.info.serial, l.creds.info.serial);
	assert_string_equal(c.key_pem, l.creds.key_pem);
	creds_release(&c);
	uplink_release(&l);
	fake_stop(&f);
	ev_loop_destroy(loop);
	free(w);
}

static void refused_certificate_is_retried(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct agent_side as = {0}, as2 = {0};
	struct uplink_config cfg;
	struct uplink l;
	struct fake f;
	char server[128], *w = new_work_dir(), err[512];

	fake_start(&f, loop, false, NULL, server, sizeof(server));
	join_fresh(loop, &f, server, w, &l, &as);
	uplink_release(&l);
	f.register_error = HPQ_EAUTH;
	cfg = base_config(server, w);
	assert_ok(uplink_init(&l, loop, &cfg, &ops, &as2, err, sizeof(err)));
	uplink_start(&l);
	run_until(loop, f.registers >= 3);
	assert_int_equal(as2.ready, 0);
	assert_int_equal(as2.gave_up, 0);
	uplink_release(&l);
	fake_stop(&f);
	ev_loop_destroy(loop);
	free(w);
}

/* hpqd's certificate must carry the name dialled (or --server-name). */
static void server_name_mismatch_is_retried(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct agent_side as = {0}, as2 = {0};
	struct uplink_config cfg;
	struct uplink l;
	struct fake f;
	char server[128], *w = new_work_dir(), err[512];

	fake_start(&f, loop, false, NULL, server, sizeof(server));
	join_fresh(loop, &f, server, w, &l, &as);
	uplink_release(&l);
	cfg = base_config(server, w);
	cfg.server_name = "elsewhere.example.org";
	assert_ok(uplink_init(&l, loop, &cfg, &ops, &as2, err, sizeof(err)));
	uplink_start(&l);
	run_until(loop, f.conns >= 4);
	assert_int_equal(f.registers, 1); /* only the join's */
	assert_int_equal(f.hellos, 2);    /* likewise: nothing reached it over a bad channel */
	assert_int_equal(as2.ready, 0);
	assert_int_equal(as2.gave_up, 0);
	uplink_release(&l);
	fake_stop(&f);
	ev_loop_destroy(loop);
	free(w);
}

static void no_certificate_no_token(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct agent_side as = {0};
	struct uplink_config cfg;
	struct uplink l;
	char *w = new_work_dir(), err[1024];

	cfg = base_config("127.0.0.1:1", w);
	assert_int_equal(uplink_init(&l, loop, &cfg, &ops, &as, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "--join TOKEN"));
	assert_non_null(strstr(err, "hpq node token create"));
	/* A token file open to others is refused at start. */
	{
		char tok[700];
		FILE *fp;

		snprintf(tok, sizeof(tok), "%s/token", w);
		fp = fopen(tok, "w");
		fputs(TOKEN "\n", fp);
		fclose(fp);
		chmod(tok, 0644);
		cfg.join_file = tok;
		cfg.ca_hash = hpq_ca_hash(ca);
		assert_true(uplink_init(&l, loop, &cfg, &ops, &as, err, sizeof(err)) < 0);
		assert_non_null(strstr(err, "chmod 600"));
		chmod(tok, 0600);
		assert_ok(uplink_init(&l, loop, &cfg, &ops, &as, err, sizeof(err)));
		assert_string_equal(l.join_token, TOKEN);
		uplink_release(&l);
		/* A token given directly wins; the file is not even read. */
		cfg.join_token = "hpq1.direct.token";
		cfg.join_file = "/nonexistent/token";
		assert_ok(uplink_init(&l, loop, &cfg, &ops, &as, err, sizeof(err)));
		assert_string_equal(l.join_token, "hpq1.direct.token");
		uplink_release(&l);
		/* A token without a pin is refused. */
		cfg.ca_hash = NULL;
		assert_int_equal(uplink_init(&l, loop, &cfg, &ops, &as, err, sizeof(err)),
				 HPQ_EINVAL);
		assert_non_null(strstr(err, "--ca-hash"));
	}
	ev_loop_destroy(loop);
	free(w);
}

/* The Unix socket and --insecure: plaintext, no certificate needed. */
static void plaintext_modes(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct agent_side as = {0}, as2 = {0};
	struct uplink_config cfg;
	struct uplink l;
	struct fake f;
	char server[128], sock[200], *w = new_work_dir(), err[512];

	snprintf(sock, sizeof(sock), "%s/hpqd.sock", root);
	fake_start(&f, loop, true, sock, server, sizeof(server));
	cfg = base_config(server, w);
	cfg.join_token = TOKEN; /* not used there */
	cfg.ca_hash = hpq_ca_hash(ca);
	assert_ok(uplink_init(&l, loop, &cfg, &ops, &as, err, sizeof(err)));
	assert_int_equal(l.mode, UPLINK_UNIX);
	uplink_start(&l);
	run_until(loop, as.ready > 0);
	assert_string_equal(f.reg_name, "n1");
	assert_string_equal(f.reg_pool, "default");
	assert_int_equal(uplink_socket(&l), -1); /* no network interface to watch */
	assert_false(exists(w, "node.pem"));
	uplink_release(&l);
	fake_stop(&f);

	fake_start(&f, loop, true, NULL, server, sizeof(server));
	cfg = base_config(server, w);
	cfg.insecure = true;
	assert_ok(uplink_init(&l, loop, &cfg, &ops, &as2, err, sizeof(err)));
	assert_int_equal(l.mode, UPLINK_PLAIN);
	uplink_start(&l);
	run_until(loop, as2.ready > 0);
	assert_true(uplink_socket(&l) >= 0);
	uplink_release(&l);
	fake_stop(&f);
	ev_loop_destroy(loop);
	free(w);
}

static int setup(void **state)
{
	const char *names[] = {"127.0.0.1"};
	char dir[600], *cert, *key, err[256];
	struct hpq_tls_config tc = {0};

	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/ca", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_ok(hpq_ca_open(dir, "test", true, &ca, err, sizeof(err)));
	assert_ok(hpq_ca_server_cert(ca, dir, names, 1, 1, &cert, &key, err, sizeof(err)));
	tc.ca_pem = hpq_ca_pem(ca);
	tc.cert_pem = cert;
	tc.key_pem = key;
	tc.chain_pem = hpq_ca_pem(ca);
	server_ctx = hpq_tls_ctx_new(true, &tc, err, sizeof(err));
	assert_non_null(server_ctx);
	free(cert);
	free(key);
	return 0;
}

static int teardown(void **state)
{
	char cmd[700];

	hpq_tls_ctx_free(server_ctx);
	hpq_ca_free(ca);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(join_then_register),
		cmocka_unit_test(wrong_pin_gives_up),
		cmocka_unit_test(refused_token_gives_up),
		cmocka_unit_test(busy_join_is_retried),
		cmocka_unit_test(renewal_when_due),
		cmocka_unit_test(refused_certificate_is_retried),
		cmocka_unit_test(server_name_mismatch_is_retried),
		cmocka_unit_test(no_certificate_no_token),
		cmocka_unit_test(plaintext_modes),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
