/*
 * client.c: the blocking client library (client.h). No event loop: the
 * socket is non-blocking only so that every wait (connect, write, read)
 * goes through poll() with a deadline; a hung daemon gives a timeout, not
 * a hung CLI. Replies are matched on the request id; frames with other
 * ids (pushes) are skipped. Over TCP the connection is TLS 1.3 (tls.h),
 * the daemon's certificate checked against the cluster CA, and the user
 * is proven with a MUNGE credential from the local munged (libmunge),
 * bound to the daemon's nonce.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <munge.h>

#include "auth.h"
#include "client.h"
#include "clock.h"
#include "error.h"
#include "hpq.h"
#include "msg.h"
#include "parse.h"
#include "pki.h"
#include "tls.h"
#include "xalloc.h"

#define CLIENT_DEFAULT_TIMEOUT_MS 30000

__attribute__((format(printf, 2, 3))) static void client_err(struct hpq_client *c,
							    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errbuf, sizeof(c->errbuf), fmt, ap);
	va_end(ap);
}

/* Waits until fd is ready for events or the deadline passes. Returns 0,
 * -ETIMEDOUT or a negative errno. */
static int client_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = events};
		int64_t left = deadline - hpq_mono_ms();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r > 0)
			return 0; /* readiness or an error: the next call says which */
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* Connects fd to addr within the deadline. */
static int client_connect_fd(int fd, const struct sockaddr *sa, socklen_t salen, int64_t deadline)
{
	socklen_t elen = sizeof(int);
	int r, err = 0;

	for (;;) {
		if (connect(fd, sa, salen) == 0)
			return 0;
		if (errno == EINTR || errno == EINPROGRESS)
			break;
		if (errno != EAGAIN)
			return -errno;
		/* A Unix socket with a full backlog: try again shortly. */
		if (hpq_mono_ms() >= deadline)
			return -ETIMEDOUT;
		poll(NULL, 0, 10);
	}
	r = client_wait(fd, POLLOUT, deadline);
	if (r < 0)
		return r;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return -errno;
	return err ? -err : 0;
}

static int client_connect_unix(struct hpq_client *c, const char *path, int64_t deadline)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, r;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		client_err(c, "socket path '%s' is too long", path);
		return HPQ_EINVAL;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		client_err(c, "cannot create a socket: %s", hpq_strerror(r));
		return r;
	}
	r = client_connect_fd(fd, (struct sockaddr *)&sun, sizeof(sun), deadline);
	if (r < 0) {
		close(fd);
		client_err(c, "cannot connect to '%s': %s (is hpqd running? set HPQ_SOCKET or "
			      "HPQ_SERVER to reach another daemon)", path, hpq_strerror(r));
		return r;
	}
	c->fd = fd;
	return 0;
}

static int client_connect_tcp(struct hpq_client *c, const char *addr, int64_t deadline)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL, *ai;
	char host[256], port[8];
	uint16_t portnum;
	int r, one = 1;

	if (hpq_split_hostport(addr, 0, host, sizeof(host), &portnum) < 0) {
		client_err(c, "invalid server address '%s': expected HOST:PORT", addr);
		return HPQ_EINVAL;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)portnum);
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		client_err(c, "cannot resolve '%s': %s", host, gai_strerror(r));
		return HPQ_EUNAVAIL;
	}
	r = -ENOENT;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);

		if (fd < 0) {
			r = -errno;
			continue;
		}
		r = client_connect_fd(fd, ai->ai_addr, ai->ai_addrlen, deadline);
		if (r == 0) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			c->fd = fd;
			break;
		}
		close(fd);
		if (r == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (r < 0)
		client_err(c, "cannot connect to %s: %s (is hpqd running there?)", addr,
			   hpq_strerror(r));
	return r;
}

static int client_take(struct hpq_client *c, const uint8_t *buf, size_t n, int64_t deadline);

/* The daemon closed the connection: if it said why first (an Error before
 * closing, as when a limit refuses a connection), that is the error. */
static int client_closed_why(struct hpq_client *c, int r)
{
	uint8_t buf[4096];
	const uint8_t *payload;
	size_t plen;
	ssize_t n;

	while ((n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		if (client_take(c, buf, (size_t)n, hpq_mono_ms()) < 0)
			break;
	while (hpq_framer_next(&c->framer, &payload, &plen) > 0) {
		Hpq__Envelope *env = hpq_msg_decode(payload, plen);

		if (!env)
			break;
		if (env->body_case == HPQ__ENVELOPE__BODY_ERROR && env->error->message[0]) {
			client_err(c, "%s", env->error->message);
			r = env->error->code < 0 ? env->error->code : r;
			hpq_msg_free(env);
			return r;
		}
		hpq_msg_free(env);
	}
	return r;
}

static int client_send_raw(struct hpq_client *c, const uint8_t *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		int r;

		if (w >= 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			r = -errno;
			client_err(c, "cannot send to hpqd: %s", hpq_strerror(r));
			return r == -EPIPE || r == -ECONNRESET ? client_closed_why(c, r) : r;
		}
		r = client_wait(c->fd, POLLOUT, deadline);
		if (r < 0) {
			client_err(c, "cannot send to hpqd: %s", hpq_strerror(r));
			return r;
		}
	}
	return 0;
}

/* Sends what the TLS channel has for the daemon. */
static int client_tls_flush(struct hpq_client *c, int64_t deadline)
{
	uint8_t buf[16384];
	size_t n;
	int r;

	while ((n = hpq_tls_out_take(c->tls, buf, sizeof(buf))) > 0) {
		r = client_send_raw(c, buf, n, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

static int client_write_all(struct hpq_client *c, const uint8_t *p, size_t n, int64_t deadline)
{
	if (!c->tls)
		return client_send_raw(c, p, n, deadline);
	if (hpq_tls_write(c->tls, p, n) < 0) {
		client_err(c, "TLS with hpqd failed: %s", hpq_tls_error(c->tls));
		return HPQ_ETLS;
	}
	return client_tls_flush(c, deadline);
}

/* Bytes from the daemon: into the framer, through the TLS channel if any. */
static int client_take(struct hpq_client *c, const uint8_t *buf, size_t n, int64_t deadline)
{
	uint8_t plain[16384];
	ssize_t m;
	int r;

	if (!c->tls) {
		r = hpq_framer_feed(&c->framer, buf, n);
		goto out;
	}
	if (hpq_tls_feed(c->tls, buf, n) < 0) {
		client_err(c, "TLS with hpqd failed: %s", hpq_tls_error(c->tls));
		return HPQ_ETLS;
	}
	r = client_tls_flush(c, deadline);
	if (r < 0)
		return r;
	while ((m = hpq_tls_read(c->tls, plain, sizeof(plain))) > 0) {
		r = hpq_framer_feed(&c->framer, plain, (size_t)m);
		if (r < 0)
			goto out;
	}
	if (m == -EPIPE) {
		/* What came before close_notify is read first (client_recv). */
		c->tls_closed = true;
		return 0;
	}
	if (m < 0) {
		client_err(c, "TLS with hpqd failed: %s", hpq_tls_error(c->tls));
		return HPQ_ETLS;
	}
	r = 0;
out:
	if (r < 0)
		client_err(c, "message from hpqd is over the %u byte limit", c->framer.max);
	return r;
}

static int client_send(struct hpq_client *c, Hpq__Envelope *env, int64_t deadline)
{
	size_t len;
	uint8_t *buf = hpq_msg_encode(env, &len);
	int r;

	if (len - HPQ_FRAME_HEADER > HPQ_FRAME_MAX) {
		client_err(c, "request of %zu bytes is over the %u byte limit",
			   len - HPQ_FRAME_HEADER, HPQ_FRAME_MAX);
		free(buf);
		return HPQ_ETOOBIG;
	}
	r = client_write_all(c, buf, len, deadline);
	free(buf);
	return r;
}

/* Reads until a frame with id arrives (or, when any_hello is set, the
 * daemon's first answer to Hello, whatever its id). */
static int client_recv(struct hpq_client *c, uint64_t id, bool any_hello, int64_t deadline,
		       Hpq__Envelope **ret_env)
{
	uint8_t buf[65536];

	for (;;) {
		const uint8_t *payload;
		size_t plen;
		ssize_t n;
		int r;

		while ((r = hpq_framer_next(&c->framer, &payload, &plen)) > 0) {
			Hpq__Envelope *env = hpq_msg_decode(payload, plen);

			if (!env) {
				client_err(c, "malformed message from hpqd");
				return HPQ_EPROTO;
			}
			if (env->id == id ||
			    (any_hello && env->id == 0 &&
			     (env->body_case == HPQ__ENVELOPE__BODY_HELLO_REPLY ||
			      env->body_case == HPQ__ENVELOPE__BODY_ERROR))) {
				*ret_env = env;
				return 0;
			}
			hpq_msg_free(env); /* a push or a stale reply: not ours */
		}
		if (r < 0) {
			client_err(c, "message from hpqd is over the %u byte limit", c->framer.max);
			return r;
		}
		if (c->tls_closed) {
			client_err(c, "hpqd closed the connection");
			return HPQ_EUNAVAIL;
		}

		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			r = client_take(c, buf, (size_t)n, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (n == 0) {
			client_err(c, "hpqd closed the connection");
			return HPQ_EUNAVAIL;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			r = -errno;
			client_err(c, "cannot read from hpqd: %s", hpq_strerror(r));
			return r;
		}
		r = client_wait(c->fd, POLLIN, deadline);
		if (r == -ETIMEDOUT) {
			client_err(c, "no reply from hpqd within %d ms", c->timeout_ms);
			return r;
		}
		if (r < 0) {
			client_err(c, "cannot read from hpqd: %s", hpq_strerror(r));
			return r;
		}
	}
}

/* An Error body becomes its code (never >= 0) and message. */
static int client_error_reply(struct hpq_client *c, const Hpq__Error *e)
{
	int code = e && e->code < 0 ? e->code : HPQ_EPROTO;

	if (e && e->message && e->message[0])
		client_err(c, "%s", e->message);
	else
		client_err(c, "%s", hpq_strerror(code));
	return code;
}

/* The reply to id (client_recv), by deadline: an Error body becomes its
 * code and message. */
static int client_reply(struct hpq_client *c, uint64_t id, bool any_hello, int64_t deadline,
			Hpq__Envelope **ret_reply)
{
	Hpq__Envelope *rep;
	int r = client_recv(c, id, any_hello, deadline, &rep);

	if (r < 0)
		return r;
	if (rep->body_case == HPQ__ENVELOPE__BODY_ERROR) {
		r = client_error_reply(c, rep->error);
		hpq_msg_free(rep);
		return r;
	}
	*ret_reply = rep;
	return 0;
}

/* One request and its reply within one timeout. */
static int client_roundtrip(struct hpq_client *c, Hpq__Envelope *req, bool any_hello,
			    Hpq__Envelope **ret_reply)
{
	int64_t deadline = hpq_mono_ms() + c->timeout_ms;
	int r;

	if (c->fd < 0) {
		client_err(c, "not connected to hpqd");
		return HPQ_EUNAVAIL;
	}
	req->id = c->next_id++;
	r = client_send(c, req, deadline);
	if (r < 0)
		return r;
	return client_reply(c, req->id, any_hello, deadline, ret_reply);
}

/* Takes the identity the daemon gave us from a HelloReply. */
static void client_identity(struct hpq_client *c, const Hpq__HelloReply *hr)
{
	free(c->user);
	c->user = xstrdup(hr->user ? hr->user : "");
	c->admin = hr->admin;
}

/* Answers the daemon's nonce with a MUNGE credential whose payload binds it
 * to this connection; the daemon's HelloReply says whom munged vouched for. */
static int client_munge(struct hpq_client *c, const ProtobufCBinaryData *nonce)
{
	const char *sock = getenv("HPQ_MUNGE_SOCKET");
	char payload[HPQ_MUNGE_PAYLOAD_MAX], *cred = NULL;
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *rep = NULL;
	Hpq__Auth auth = HPQ__AUTH__INIT;
	munge_ctx_t ctx;
	munge_err_t err;
	int n, r;

	n = hpq_munge_payload("client", nonce->data, nonce->len, payload);
	if (n < 0) {
		client_err(c, "hpqd sent a nonce of %zu bytes, not %d", nonce->len,
			   HPQ_AUTH_NONCE_BYTES);
		return HPQ_EPROTO;
	}
	if (!sock || !sock[0])
		sock = HPQ_DEFAULT_MUNGE_SOCKET;
	ctx = munge_ctx_create();
	if (!ctx) {
		client_err(c, "cannot make a MUNGE context: out of memory");
		return -ENOMEM;
	}
	err = munge_ctx_set(ctx, MUNGE_OPT_SOCKET, sock);
	if (err == EMUNGE_SUCCESS)
		err = munge_encode(&cred, ctx, payload, n);
	if (err != EMUNGE_SUCCESS) {
		const char *why = munge_ctx_strerror(ctx);

		client_err(c, "cannot get the MUNGE credential hpqd needs over TCP: %s "
			      "(--munge-socket names munged's socket)",
			   why ? why : munge_strerror(err));
		munge_ctx_destroy(ctx);
		return HPQ_EAUTH;
	}
	munge_ctx_destroy(ctx);
	auth.munge_credential = cred;
	req.body_case = HPQ__ENVELOPE__BODY_AUTH;
	req.auth = &auth;
	r = client_roundtrip(c, &req, false, &rep);
	free(cred);
	if (r < 0)
		return r;
	if (rep->body_case != HPQ__ENVELOPE__BODY_HELLO_REPLY || !rep->hello_reply) {
		client_err(c, "unexpected %s reply to auth from hpqd", hpq_msg_name(rep));
		r = HPQ_EPROTO;
	} else {
		client_identity(c, rep->hello_reply);
	}
	hpq_msg_free(rep);
	return r;
}

static int client_hello(struct hpq_client *c)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *rep = NULL;
	Hpq__Hello hello = HPQ__HELLO__INIT;
	struct passwd *pw = getpwuid(geteuid());
	char uidbuf[16];
	int r;

	if (pw) {
		hello.name = pw->pw_name;
	} else {
		snprintf(uidbuf, sizeof(uidbuf), "%u", (unsigned)geteuid());
		hello.name = uidbuf;
	}
	hello.role = HPQ__ROLE__ROLE_CLIENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)HPQ_VERSION;
	req.body_case = HPQ__ENVELOPE__BODY_HELLO;
	req.hello = &hello;

	r = client_roundtrip(c, &req, true, &rep);
	if (r < 0)
		return r;
	if (rep->body_case != HPQ__ENVELOPE__BODY_HELLO_REPLY || !rep->hello_reply) {
		client_err(c, "unexpected %s reply to hello from hpqd", hpq_msg_name(rep));
		hpq_msg_free(rep);
		return HPQ_EPROTO;
	}
	client_identity(c, rep->hello_reply);
	c->server_version = xstrdup(rep->hello_reply->software_version ?
					    rep->hello_reply->software_version : "");
	if (rep->hello_reply->munge)
		r = client_munge(c, &rep->hello_reply->nonce);
	hpq_msg_free(rep);
	return r;
}

/* Reads the cluster CA's certificate: public, but a regular file of sane
 * size (nothing that could hang or never end). */
static char *client_read_ca(struct hpq_client *c, const char *path)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		client_err(c, "cannot read the cluster CA '%s': %s (copy the ca.crt of hpqd's "
			      "state directory there, or give --ca-file)", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > HPQ_PKI_FILE_MAX) {
		client_err(c, "the cluster CA '%s' is not a regular file of at most %u bytes",
			   path, HPQ_PKI_FILE_MAX);
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		client_err(c, "cannot read the cluster CA '%s'", path);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* TLS over the TCP connection, unless $HPQ_INSECURE says the daemon runs
 * --insecure: the daemon's certificate must be the cluster CA's and name
 * the host dialled (or $HPQ_SERVER_NAME). The handshake itself runs as
 * Hello is sent and its answer read. */
static int client_tls_start(struct hpq_client *c, const char *addr, int64_t deadline)
{
	const char *insecure = getenv("HPQ_INSECURE"), *path = getenv("HPQ_CA_FILE");
	const char *name = getenv("HPQ_SERVER_NAME");
	struct hpq_tls_config cfg = { 0 };
	char host[256], err[256];
	uint16_t port;
	char *ca;

	if (insecure && !strcmp(insecure, "1"))
		return 0;
	if (!path || !path[0])
		path = HPQ_DEFAULT_CA_FILE;
	ca = client_read_ca(c, path);
	if (!ca)
		return HPQ_ETLS;
	cfg.ca_pem = ca;
	c->tls_ctx = hpq_tls_ctx_new(false, &cfg, err, sizeof(err));
	free(ca);
	if (!c->tls_ctx) {
		client_err(c, "cannot use the cluster CA '%s': %s", path, err);
		return HPQ_ETLS;
	}
	if (!name || !name[0]) {
		if (hpq_split_hostport(addr, 0, host, sizeof(host), &port) < 0)
			return HPQ_EINVAL;
		name = host;
	}
	c->tls = hpq_tls_new(c->tls_ctx, name);
	return client_tls_flush(c, deadline);
}

int hpq_client_connect(struct hpq_client *c, const char *addr, int timeout_ms)
{
	int64_t deadline;
	int r;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->next_id = 1;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
	hpq_framer_init(&c->framer, HPQ_FRAME_MAX);
	deadline = hpq_mono_ms() + c->timeout_ms;

	if (!addr || !addr[0]) {
		const char *sock = getenv("HPQ_SOCKET"), *server = getenv("HPQ_SERVER");

		if (sock && sock[0])
			addr = sock;
		else if (server && server[0])
			addr = server;
		else
			addr = HPQ_DEFAULT_SOCKET;
	}
	if (strchr(addr, '/')) {
		r = client_connect_unix(c, addr, deadline);
	} else {
		r = client_connect_tcp(c, addr, deadline);
		if (r == 0)
			r = client_tls_start(c, addr, deadline);
	}
	if (r == 0)
		r = client_hello(c);
	if (r < 0) {
		char saved[sizeof(c->errbuf)];

		memcpy(saved, c->errbuf, sizeof(saved));
		hpq_client_close(c);
		memcpy(c->errbuf, saved, sizeof(saved));
	}
	return r;
}

void hpq_client_close(struct hpq_client *c)
{
	hpq_tls_free(c->tls);
	c->tls = NULL;
	hpq_tls_ctx_free(c->tls_ctx);
	c->tls_ctx = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	hpq_framer_release(&c->framer);
	free(c->user);
	c->user = NULL;
	free(c->server_version);
	c->server_version = NULL;
	c->admin = false;
}

int hpq_client_call(struct hpq_client *c, Hpq__Envelope *req, Hpq__Envelope **ret_reply)
{
	return client_roundtrip(c, req, false, ret_reply);
}

int hpq_client_next(struct hpq_client *c, uint64_t id, Hpq__Envelope **ret_reply)
{
	if (c->fd < 0) {
		client_err(c, "not connected to hpqd");
		return HPQ_EUNAVAIL;
	}
	return client_reply(c, id, false, hpq_mono_ms() + c->timeout_ms, ret_reply);
}
