/*
 * bench_rtt: how long a person or a script waits for the CLI, and what a
 * connection costs over each transport. Against a real hpqd on a temp dir
 * holding 20 pending tasks (a fresh one per transport), it times:
 *
 *   list, one connection    a ListRequest on a connection kept open
 *                           (the daemon's request path alone)
 *   list, new connection    connect, Hello, ListRequest, close: what one
 *                           CLI invocation does on the wire; over tls the
 *                           client library's whole path: read the CA file,
 *                           make a TLS context, connect, TLS handshake
 *                           (carried by Hello and its reply), MUNGE encode
 *                           (a round trip to munged), Auth, whose check in
 *                           hpqd is another (munge_decode), ListRequest
 *   list, first in process  the same, once in a forked child of a process
 *                           that has not used TLS: a CLI's one connection,
 *                           OpenSSL's one-time work included (not exec)
 *   hello, new connection   connect, Hello, HelloReply, close, by hand
 *                           (no Auth, no request); over tls with the CA
 *                           file read and the context made each time, as
 *                           the library does: so tls minus plain is the
 *                           TLS handshake and its setup, and hpqd's
 *                           HelloReply asks for MUNGE but none is sent
 *   exec hpq version        the whole `hpq version` process: exec, dynamic
 *                           linking, connect, Hello (and Auth), exit
 *   exec hpq list           the whole `hpq list` process, table output
 *
 * and, when tls is measured, the client-side pieces alone: reading the CA
 * file and making a TLS context, munge_encode and munge_decode of a
 * credential like the client's, against the same munged.
 *
 *	bench_rtt [--calls 2000] [--execs 200] [--transport unix,plain,tls]
 *		  [--munge-socket PATH]
 *
 * Transports as in bench.h: unix (the Unix socket), plain (TCP to an
 * --insecure hpqd: no TLS, no MUNGE), tls (TCP, TLS 1.3, MUNGE, with a
 * private munged unless --munge-socket names a running one). Each line
 * gives the median and the 99th percentile, and the CPU time per call of
 * hpqd, of the client side (this process and its children: the forks,
 * the CLI processes) and of our munged (from /proc and getrusage, in clock
 * ticks: coarse for small counts); then the differences between
 * transports, of the medians and of the 99th percentiles.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <munge.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "bench.h"
#include "client.h"
#include "hpq.h"
#include "msg.h"
#include "tls.h"
#include "xalloc.h"

static _Noreturn void die(const char *what)
{
	fprintf(stderr, "bench_rtt: %s\n", what);
	exit(1);
}

static void connect_or_die(struct hpq_client *c, const char *addr)
{
	if (hpq_client_connect(c, addr, 30000) < 0) {
		fprintf(stderr, "bench_rtt: %s\n", c->errbuf);
		exit(1);
	}
}

static void call_or_die(struct hpq_client *c, Hpq__Envelope *req)
{
	Hpq__Envelope *reply;

	if (hpq_client_call(c, req, &reply) < 0) {
		fprintf(stderr, "bench_rtt: %s\n", c->errbuf);
		exit(1);
	}
	hpq_msg_free(reply);
}

/* Submits n tasks from a child process, so that this one has not used
 * TLS yet (first_in_process). */
static void submit_some(const char *addr, int n)
{
	static char *argv[] = {(char *)"true"};
	struct hpq_client c;
	Hpq__Envelope req = HPQ__ENVELOPE__INIT;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;

	res.cpus = 1;
	spec.per_node = &res;
	spec.argv = argv;
	spec.n_argv = 1;
	spec.cwd = (char *)"/";
	sub.spec = &spec;
	req.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	req.submit = &sub;
	pid_t pid;
	int st;

	fflush(stdout); /* not twice, if the child exits */
	pid = fork();
	if (pid < 0)
		die("fork failed");
	if (pid == 0) {
		connect_or_die(&c, addr);
		for (int i = 0; i < n; i++)
			call_or_die(&c, &req);
		hpq_client_close(&c);
		_exit(0);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("submitting the pending tasks failed");
}

/* ---------------------------------------------------------------- Hello by hand */

/* A connection made by hand, to time Hello without what follows it. */
struct raw {
	int fd;
	struct hpq_framer f;
	struct hpq_tls_ctx *ctx;
	struct hpq_tls *tls;
};

/* The CA file's text, read as the client library reads it (whole, once
 * per connection). */
static char *read_ca(const char *path)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0)
		die("cannot read the CA copy");
	buf = xmalloc((size_t)st.st_size + 1);
	if (read(fd, buf, (size_t)st.st_size) != st.st_size)
		die("cannot read the CA copy");
	close(fd);
	buf[st.st_size] = '\0';
	return buf;
}

static struct hpq_tls_ctx *tls_ctx(const char *ca_path)
{
	char *ca = read_ca(ca_path), err[256];
	struct hpq_tls_ctx *ctx = hpq_tls_ctx_new(false, &(struct hpq_tls_config){.ca_pem = ca},
						  err, sizeof(err));

	free(ca);
	if (!ctx)
		die(err);
	return ctx;
}

/* Sends what the TLS channel has for hpqd. */
static void raw_flush(struct raw *r)
{
	uint8_t buf[16384];
	size_t n;

	while ((n = hpq_tls_out_take(r->tls, buf, sizeof(buf))) > 0)
		if (send(r->fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
			die("send failed");
}

static void raw_connect(struct raw *r, const struct bench_daemon *d, enum bench_transport t)
{
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->port)};
	int one = 1;

	memset(r, 0, sizeof(*r));
	hpq_framer_init(&r->f, HPQ_FRAME_MAX);
	if (t == BENCH_UNIX) {
		snprintf(su.sun_path, sizeof(su.sun_path), "%s", d->sock);
		r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (r->fd < 0 || connect(r->fd, (struct sockaddr *)&su, sizeof(su)) < 0)
			die("cannot connect to hpqd's socket");
		return;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0 || connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot connect to hpqd's port");
	setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (t == BENCH_TLS) {
		r->ctx = tls_ctx(d->ca);
		r->tls = hpq_tls_new(r->ctx, "127.0.0.1");
		raw_flush(r); /* the ClientHello */
	}
}

static void raw_send(struct raw *r, const Hpq__Envelope *env)
{
	size_t len;
	uint8_t *buf = hpq_msg_encode(env, &len);

	if (r->tls) {
		if (hpq_tls_write(r->tls, buf, len) < 0)
			die(hpq_tls_error(r->tls));
		raw_flush(r);
	} else if (send(r->fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
		die("send failed");
	}
	free(buf);
}

/* The next whole frame. */
static Hpq__Envelope *raw_read(struct raw *r)
{
	const uint8_t *p;
	size_t len;
	uint8_t buf[16384];

	for (;;) {
		struct pollfd pfd = {r->fd, POLLIN, 0};
		ssize_t n, m;

		if (hpq_framer_next(&r->f, &p, &len) > 0)
			return hpq_msg_decode(p, len);
		if (poll(&pfd, 1, 30000) <= 0 || (n = recv(r->fd, buf, sizeof(buf), 0)) <= 0)
			die("hpqd closed the connection or did not answer within 30 s");
		if (!r->tls) {
			hpq_framer_feed(&r->f, buf, (size_t)n);
			continue;
		}
		if (hpq_tls_feed(r->tls, buf, (size_t)n) < 0)
			die(hpq_tls_error(r->tls));
		raw_flush(r);
		while ((m = hpq_tls_read(r->tls, buf, sizeof(buf))) > 0)
			hpq_framer_feed(&r->f, buf, (size_t)m);
		if (m < 0)
			die("hpqd closed the TLS channel");
	}
}

static void raw_close(struct raw *r)
{
	hpq_tls_free(r->tls);
	hpq_tls_ctx_free(r->ctx);
	hpq_framer_release(&r->f);
	close(r->fd);
}

/* connect, Hello, HelloReply, close. Over tls the reply must ask for MUNGE
 * (the proof that follows, not sent here); elsewhere it must not. */
static void raw_hello(const struct bench_daemon *d, enum bench_transport t)
{
	static char name[64];
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__Hello hello = HPQ__HELLO__INIT;
	struct raw r;

	if (!*name) {
		struct passwd *pw = getpwuid(geteuid());

		if (pw)
			snprintf(name, sizeof(name), "%s", pw->pw_name);
		else
			snprintf(name, sizeof(name), "%u", (unsigned)geteuid());
	}
	hello.name = name;
	hello.role = HPQ__ROLE__ROLE_CLIENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)HPQ_VERSION;
	env.id = 1;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	raw_connect(&r, d, t);
	raw_send(&r, &env);
	reply = raw_read(&r);
	if (!reply || reply->body_case != HPQ__ENVELOPE__BODY_HELLO_REPLY ||
	    !reply->hello_reply || reply->hello_reply->munge != (t == BENCH_TLS))
		die("unexpected answer to Hello");
	hpq_msg_free(reply);
	raw_close(&r);
}

/* ---------------------------------------------------------------- MUNGE alone */

/* A credential as the client makes one for a nonce; NULL on failure. */
static char *munge_cred(const char *sock)
{
	uint8_t nonce[HPQ_AUTH_NONCE_BYTES];
	char payload[HPQ_MUNGE_PAYLOAD_MAX], *cred = NULL;
	munge_ctx_t ctx = munge_ctx_create();
	int n;

	hpq_auth_nonce(nonce);
	n = hpq_munge_payload("client", nonce, sizeof(nonce), payload);
	if (!ctx || n < 0 || munge_ctx_set(ctx, MUNGE_OPT_SOCKET, sock) != EMUNGE_SUCCESS ||
	    munge_encode(&cred, ctx, payload, n) != EMUNGE_SUCCESS)
		die("munge_encode failed");
	munge_ctx_destroy(ctx);
	return cred;
}

static void munge_check(const char *sock, const char *cred)
{
	munge_ctx_t ctx = munge_ctx_create();
	void *payload = NULL;
	int len;
	uid_t uid;
	gid_t gid;

	if (!ctx || munge_ctx_set(ctx, MUNGE_OPT_SOCKET, sock) != EMUNGE_SUCCESS ||
	    munge_decode(cred, ctx, &payload, &len, &uid, &gid) != EMUNGE_SUCCESS)
		die("munge_decode failed");
	free(payload);
	munge_ctx_destroy(ctx);
}

/* ---------------------------------------------------------------- figures */

enum measure {
	M_LIST_ONE,
	M_LIST_NEW,
	M_LIST_FIRST,
	M_HELLO_NEW,
	M_EXEC_VERSION,
	M_EXEC_LIST,
	M_TLS_CTX,
	M_MUNGE_ENCODE,
	M_MUNGE_DECODE,
	M_COUNT
};

static const char *const measure_names[M_COUNT] = {
	"list, one connection", "list, new connection", "list, first in process",
	"hello, new connection",
	"exec hpq version", "exec hpq list", "TLS context from CA file", "munge_encode",
	"munge_decode",
};

/* CPU seconds used so far by hpqd, by this process and its reaped
 * children (the CLI processes, the first-in-process children), and by
 * munged when it is ours. */
struct cpu {
	double hpqd, client, munged;
};

static pid_t hpqd_pid, munged_pid;

static double rusage_s(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static struct cpu cpu_now(void)
{
	return (struct cpu){
		.hpqd = bench_proc_cpu_s(hpqd_pid),
		.client = rusage_s(RUSAGE_SELF) + rusage_s(RUSAGE_CHILDREN),
		.munged = munged_pid > 0 ? bench_proc_cpu_s(munged_pid) : -1,
	};
}

struct figure {
	bool done;
	int n;
	double p50, p99;   /* us */
	bool has_cpu;
	struct cpu cpu;    /* us per call; munged < 0: unknown */
};

static struct figure fig[M_COUNT][BENCH_NTRANSPORTS];

/* Keeps the n times in us and, unless cpu0 is NULL, the CPU used per call
 * since *cpu0. */
static void keep(enum measure m, enum bench_transport t, double *us, int n,
		 const struct cpu *cpu0)
{
	struct figure *f = &fig[m][t];

	*f = (struct figure){
		.done = true,
		.n = n,
		.p50 = bench_quantile(us, (size_t)n, 0.5),
		.p99 = bench_quantile(us, (size_t)n, 0.99),
	};
	if (cpu0) {
		struct cpu c = cpu_now();

		f->has_cpu = true;
		f->cpu.hpqd = (c.hpqd - cpu0->hpqd) * 1e6 / n;
		f->cpu.client = (c.client - cpu0->client) * 1e6 / n;
		f->cpu.munged = c.munged >= 0 && cpu0->munged >= 0
			? (c.munged - cpu0->munged) * 1e6 / n : -1;
	}
}

static void print_us(double v)
{
	if (v >= 1000 || v <= -1000)
		printf("%8.2f ms", v / 1000);
	else
		printf("%8.1f us", v);
}

static void report(enum measure m, enum bench_transport t, const char *tname)
{
	const struct figure *f = &fig[m][t];

	if (!f->done)
		return;
	printf("%-26s %-6s n=%-5d median ", measure_names[m], tname, f->n);
	print_us(f->p50);
	printf("   p99 ");
	print_us(f->p99);
	if (f->has_cpu) {
		printf("   cpu/call: hpqd %5.0f  client %5.0f", f->cpu.hpqd, f->cpu.client);
		if (t == BENCH_TLS && f->cpu.munged >= 0)
			printf("  munged %4.0f", f->cpu.munged);
		printf(" us");
	}
	printf("\n");
}

static void difference(enum measure m, enum bench_transport a, enum bench_transport b)
{
	const struct figure *x = &fig[m][a], *y = &fig[m][b];
	char label[32];

	if (!x->done || !y->done)
		return;
	snprintf(label, sizeof(label), "%s - %s", bench_transport_name(a),
		 bench_transport_name(b));
	printf("%-26s %-13s median ", measure_names[m], label);
	print_us(x->p50 - y->p50);
	printf("   p99 ");
	print_us(x->p99 - y->p99);
	printf("\n");
}

/* Runs `hpq arg1` against d with stdout/stderr to /dev/null; returns its
 * status. The client environment (bench_daemon_start) is inherited. */
static int exec_hpq(const struct bench_daemon *d, enum bench_transport t, const char *arg1)
{
	pid_t pid = fork();
	int status;

	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		setenv(t == BENCH_UNIX ? "HPQ_SOCKET" : "HPQ_SERVER", d->addr, 1);
		execl(bench_bin("hpq"), "hpq", arg1, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

/* Times n calls of one thing, after a few untimed ones, and the CPU they
 * used. */
#define TIME(m, t, n, warm, stmt)                                                  \
	do {                                                                       \
		struct cpu cpu0_;                                                  \
		for (int i_ = 0; i_ < (warm); i_++) {                              \
			stmt;                                                      \
		}                                                                  \
		cpu0_ = cpu_now();                                                 \
		for (int i_ = 0; i_ < (n); i_++) {                                 \
			uint64_t t0_ = bench_now_ns();                             \
			stmt;                                                      \
			us[i_] = (double)(bench_now_ns() - t0_) / 1e3;             \
		}                                                                  \
		keep((m), (t), us, (n), &cpu0_);                                   \
	} while (0)

/* One connection with a ListRequest, as in list, new connection, but in a
 * forked child, forked before this process ever used TLS: the first
 * connection of a process such as the CLI, with OpenSSL's one-time work
 * (initialisation, algorithm fetches) in it, but not exec and dynamic
 * linking. Returns its time in us, measured in the child. */
static double first_in_process(const char *addr, Hpq__Envelope *req)
{
	double v = -1;
	int p[2], st;
	pid_t pid;

	if (pipe(p) < 0 || (pid = fork()) < 0)
		die("pipe or fork failed");
	if (pid == 0) {
		uint64_t t0 = bench_now_ns();
		struct hpq_client c;
		Hpq__Envelope *reply;

		if (hpq_client_connect(&c, addr, 30000) < 0 ||
		    hpq_client_call(&c, req, &reply) < 0) {
			fprintf(stderr, "bench_rtt: %s\n", c.errbuf);
			_exit(1);
		}
		hpq_msg_free(reply);
		hpq_client_close(&c);
		v = (double)(bench_now_ns() - t0) / 1e3;
		_exit(write(p[1], &v, sizeof(v)) == sizeof(v) ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], &v, sizeof(v)) != sizeof(v))
		v = -1;
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (v < 0)
		die("a first connection in a fresh process failed");
	return v;
}

static void exec_ok(const struct bench_daemon *d, enum bench_transport t, const char *arg1)
{
	int st = exec_hpq(d, t, arg1);

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench_rtt: hpq %s over %s failed (status %d)\n", arg1,
			bench_transport_name(t), st);
		exit(1);
	}
}

/* Everything over transport t, on a fresh daemon. */
static void measure(enum bench_transport t, const char *munge_sock, int calls, int execs,
		    double *us)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	struct bench_daemon d;
	struct hpq_client c;
	struct cpu cpu0;

	bench_daemon_start(&d, t, munge_sock);
	hpqd_pid = d.pid;
	list.state = (char *)"active";
	req.body_case = HPQ__ENVELOPE__BODY_LIST;
	req.list = &list;
	submit_some(d.addr, 20);
	/* Before anything here uses TLS (submit_some forks for that). */
	cpu0 = cpu_now();
	for (int i = 0; i < execs; i++)
		us[i] = first_in_process(d.addr, &req);
	keep(M_LIST_FIRST, t, us, execs, &cpu0);

	connect_or_die(&c, d.addr);
	TIME(M_LIST_ONE, t, calls, 50, call_or_die(&c, &req));
	hpq_client_close(&c);

	TIME(M_LIST_NEW, t, calls, 20, {
		connect_or_die(&c, d.addr);
		call_or_die(&c, &req);
		hpq_client_close(&c);
	});
	TIME(M_HELLO_NEW, t, calls, 20, raw_hello(&d, t));
	TIME(M_EXEC_VERSION, t, execs, 5, exec_ok(&d, t, "version"));
	TIME(M_EXEC_LIST, t, execs, 5, exec_ok(&d, t, "list"));
	if (t == BENCH_TLS) {
		TIME(M_TLS_CTX, t, calls, 20, hpq_tls_ctx_free(tls_ctx(d.ca)));
		TIME(M_MUNGE_ENCODE, t, calls, 20, free(munge_cred(munge_sock)));
		/* Each decode gets a fresh credential (munged refuses a
		 * replay); only the decode is timed. */
		for (int i = 0; i < calls; i++) {
			char *cred = munge_cred(munge_sock);
			uint64_t t0 = bench_now_ns();

			munge_check(munge_sock, cred);
			us[i] = (double)(bench_now_ns() - t0) / 1e3;
			free(cred);
		}
		keep(M_MUNGE_DECODE, t, us, calls, NULL);
	}
	bench_daemon_stop(&d);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_rtt [--calls 2000] [--execs 200] [--transport unix,plain,tls]\n"
		   "                 [--munge-socket PATH]\n"
		   "transports: unix (Unix socket), plain (TCP to an --insecure hpqd), tls (TCP,\n"
		   "TLS 1.3 + MUNGE); tls starts a private munged unless --munge-socket\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"calls", required_argument, NULL, 'c'},
		{"execs", required_argument, NULL, 'e'},
		{"transport", required_argument, NULL, 'T'},
		{"munge-socket", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *transport = "unix,plain,tls", *munge_sock = NULL;
	enum bench_transport tr[BENCH_NTRANSPORTS];
	struct bench_munged mg = {0};
	int calls = 2000, execs = 200, ntr, o;
	bool need_munge = false;
	double *us;

	while ((o = getopt_long(argc, argv, "c:e:T:m:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			calls = atoi(optarg);
			break;
		case 'e':
			execs = atoi(optarg);
			break;
		case 'T':
			transport = optarg;
			break;
		case 'm':
			munge_sock = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (calls < 1 || execs < 1) {
		fprintf(stderr, "bench_rtt: counts must be >= 1\n");
		return 2;
	}
	ntr = bench_transports(transport, tr);
	if (ntr < 0)
		return 2;
	for (int i = 0; i < ntr; i++)
		need_munge |= tr[i] == BENCH_TLS;
	if (need_munge && !munge_sock) {
		if (bench_munged_start(&mg) < 0) {
			fprintf(stderr, "bench_rtt: tls needs munged (run as root, or give "
					"--munge-socket, or leave tls out of --transport)\n");
			return 1;
		}
		munge_sock = mg.sock;
		munged_pid = mg.pid;
	}
	us = xcalloc((size_t)(calls > execs ? calls : execs), sizeof(*us));

	printf("CLI round trips against hpqd %s (20 pending tasks, a fresh hpqd per "
	       "transport)\n", bench_bin("hpqd"));
	printf("unix: Unix socket; plain: TCP 127.0.0.1 to hpqd --insecure; tls: TCP 127.0.0.1, "
	       "TLS 1.3, MUNGE\n");
	for (int i = 0; i < ntr; i++)
		measure(tr[i], munge_sock, calls, execs, us);
	for (int m = 0; m < M_COUNT; m++)
		for (int i = 0; i < ntr; i++)
			report((enum measure)m, tr[i], bench_transport_name(tr[i]));

	printf("differences (of the medians, and of the p99s):\n");
	for (int m = M_LIST_ONE; m <= M_EXEC_LIST; m++) {
		difference((enum measure)m, BENCH_TLS, BENCH_PLAIN);
		difference((enum measure)m, BENCH_TLS, BENCH_UNIX);
		difference((enum measure)m, BENCH_PLAIN, BENCH_UNIX);
	}
	/* What MUNGE, Auth and the ListRequest add to a TLS connection, over
	 * what the ListRequest adds to a plain one. */
	if (fig[M_LIST_NEW][BENCH_TLS].done && fig[M_LIST_NEW][BENCH_PLAIN].done) {
		const struct figure *a = fig[M_LIST_NEW], *b = fig[M_HELLO_NEW];

		printf("%-40s median ", "MUNGE + Auth (tls, derived)");
		print_us(a[BENCH_TLS].p50 - b[BENCH_TLS].p50 -
			 (a[BENCH_PLAIN].p50 - b[BENCH_PLAIN].p50));
		printf("   (list - hello over tls, less list - hello over plain)\n");
	}
	bench_munged_stop(&mg);
	free(us);
	return 0;
}
