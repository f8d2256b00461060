/*
 * t_munge: who a client over TCP is, proven by MUNGE. The test starts its
 * own munged, as Slurm's test suites do: its key, socket, pid file, log and
 * seed in the test's temp dir; and an hpqd whose [auth] munge_socket names
 * that socket. TCP is TLS: the CLI and the raw connections here trust the
 * cluster's CA.
 *
 * - A valid credential maps to the real uid: the CLI, run as the user
 *   hpqt-munge with --server and --munge-socket, is that user and no
 *   administrator, and its task runs with that user's uid and gid.
 * - A forged name in Hello is ignored over TCP: hpqt-munge saying "root"
 *   is still hpqt-munge, and may not create a team.
 * - Refused, each with an error that says why, and the connection closed:
 *   an Auth without a credential, a request before Auth, a credential that
 *   is no credential, one made for another connection's nonce, a replayed
 *   one and an expired one (a TTL of 1 s, sent once the clock has passed
 *   it). The CLI with no munged at its --munge-socket says so.
 * - hpqd refuses --insecure with a non-loopback listen address; on
 *   loopback it trusts the name a TCP client gives, and warns in its log.
 * - With munged stopped (the end of the test), hpqd answers that it cannot
 *   check credentials now.
 *
 * Without munged (Debian's package munge) the test is skipped: exit 77.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <munge.h>

#include "auth.h"
#include "error.h"
#include "frame.h"
#include "hpq.h"
#include "msg.h"
#include "tls.h"

#include "harness.h"

#define USER "hpqt-munge"

/* ---------------------------------------------------------------- processes */

/* Finds a system program; false if it is not installed. */
static bool find_program(const char *name, char path[128])
{
	static const char *const dirs[] = {"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"};

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, 128, "%s/%s", dirs[i], name);
		if (access(path, X_OK) == 0)
			return true;
	}
	return false;
}

/* Runs argv (stdout and stderr to the file out) and waits for it; returns
 * its wait status. */
static int run(struct h_cluster *c, const char *const *argv, const char *out)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || chdir(c->dir) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	st = h_wait_child(c, pid, 60000);
	if (st == -1)
		fail_msg("%s did not finish within 60 s", argv[0]);
	return st;
}

/* The test user: made here (or left over from an earlier run). */
static struct passwd test_user(struct h_cluster *c)
{
	char useradd[128];
	const char *argv[] = {useradd, "--system", "--no-create-home", "--user-group",
			      "--shell", "/usr/sbin/nologin", USER, NULL};
	struct passwd *pw = getpwnam(USER);

	if (!pw) {
		if (!find_program("useradd", useradd))
			fail_msg("useradd is missing: cannot make the user " USER);
		if (run(c, argv, h_path(c, "useradd.out")) != 0)
			fail_msg("useradd " USER " failed: %s",
				 h_read_file(h_path(c, "useradd.out")));
		pw = getpwnam(USER);
	}
	assert_non_null(pw);
	return *pw;
}

static void remove_user(struct h_cluster *c)
{
	char userdel[128];
	const char *argv[] = {userdel, USER, NULL};

	if (find_program("userdel", userdel) && getpwnam(USER) &&
	    run(c, argv, h_path(c, "userdel.out")) != 0)
		fprintf(stderr, "t_munge: userdel " USER " failed (left behind)\n");
}

/* ---------------------------------------------------------------- munged */

struct munged {
	char dir[128];     /* <dir>/munge: key, socket, pid, log, seed */
	char sock[160];
	pid_t pid;
};

/* Whether munged at sock makes credentials. */
static bool munge_works(const char *sock)
{
	munge_ctx_t ctx = munge_ctx_create();
	char *cred = NULL;
	bool ok;

	assert_non_null(ctx);
	ok = munge_ctx_set(ctx, MUNGE_OPT_SOCKET, sock) == EMUNGE_SUCCESS &&
	     munge_encode(&cred, ctx, NULL, 0) == EMUNGE_SUCCESS;
	free(cred);
	munge_ctx_destroy(ctx);
	return ok;
}

static bool alive(pid_t pid)
{
	return kill(pid, 0) == 0;
}

/* Starts munged on a fresh key; its directory is open to other users, as
 * the socket must be reachable by the test user. */
static void munged_start(struct h_cluster *c, struct munged *m, const char *munged)
{
	char key[160], opt[5][200];
	uint8_t bytes[1024];
	int fd;

	snprintf(m->dir, sizeof(m->dir), "%s", h_path(c, "munge"));
	snprintf(m->sock, sizeof(m->sock), "%s/munge.sock", m->dir);
	assert_int_equal(mkdir(m->dir, 0755), 0);
	assert_int_equal(chmod(m->dir, 0755), 0);
	/* The key: random bytes, as `dd if=/dev/urandom` would write, readable
	 * by munged's user (root here) only. */
	snprintf(key, sizeof(key), "%s/munge.key", m->dir);
	assert_int_equal(getrandom(bytes, sizeof(bytes), 0), (ssize_t)sizeof(bytes));
	fd = open(key, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, sizeof(bytes)), (ssize_t)sizeof(bytes));
	close(fd);

	snprintf(opt[0], sizeof(opt[0]), "--socket=%s", m->sock);
	snprintf(opt[1], sizeof(opt[1]), "--key-file=%s", key);
	snprintf(opt[2], sizeof(opt[2]), "--pid-file=%s/munged.pid", m->dir);
	snprintf(opt[3], sizeof(opt[3]), "--log-file=%s/munged.log", m->dir);
	snprintf(opt[4], sizeof(opt[4]), "--seed-file=%s/munged.seed", m->dir);
	m->pid = fork();
	assert_true(m->pid >= 0);
	if (m->pid == 0) {
		/* In the foreground (-F), so that it is our child to stop; -f
		 * because it runs as root with its files in /tmp. Its cwd in
		 * the test's dir lets the harness's sweep find it if we die. */
		fd = open(h_path(c, "munge/munged.out"), O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || chdir(c->dir) < 0)
			_exit(127);
		execl(munged, munged, "-F", "-f", opt[0], opt[1], opt[2], opt[3], opt[4],
		      (char *)NULL);
		_exit(127);
	}
	if (!H_WAIT_FOR(c, !alive(m->pid) || munge_works(m->sock), 30000) || !alive(m->pid))
		fail_msg("munged did not start; its output:\n%s",
			 h_read_file(h_path(c, "munge/munged.out")));
}

static void munged_stop(struct h_cluster *c, struct munged *m)
{
	int st;

	if (!m->pid)
		return;
	kill(m->pid, SIGTERM);
	st = h_wait_child(c, m->pid, 30000);
	if (st == -1)
		fail_msg("munged did not stop within 30 s of SIGTERM");
	m->pid = 0;
}

/* A credential for the daemon's nonce (ttl 0: munged's default). */
static char *credential(const char *sock, const ProtobufCBinaryData *nonce, int ttl)
{
	char payload[HPQ_MUNGE_PAYLOAD_MAX], *cred = NULL;
	munge_ctx_t ctx = munge_ctx_create();
	int n = hpq_munge_payload("client", nonce->data, nonce->len, payload);

	if (!ctx || n < 0 || munge_ctx_set(ctx, MUNGE_OPT_SOCKET, sock) != EMUNGE_SUCCESS ||
	    munge_ctx_set(ctx, MUNGE_OPT_TTL, ttl) != EMUNGE_SUCCESS ||
	    munge_encode(&cred, ctx, payload, n) != EMUNGE_SUCCESS)
		cred = NULL;
	munge_ctx_destroy(ctx);
	return cred;
}

/* ---------------------------------------------------------------- raw connections */

/* A client connection by hand, over TLS as every TCP client's is, trusting
 * the cluster's CA (read once hpqd is up). */
static char *ca_pem;

struct raw {
	struct h_tls t;
	Hpq__Envelope *hello; /* the HelloReply */
};

static bool raw_send(struct raw *r, Hpq__Envelope *env)
{
	return h_tls_send(&r->t, env);
}

/* The next whole frame; NULL on close. */
static Hpq__Envelope *raw_read(struct raw *r)
{
	return h_tls_next(&r->t);
}

/* Connects to 127.0.0.1:port and says Hello as a client named name.
 * Returns false (and says why on stderr) unless a HelloReply came. */
static bool raw_hello(struct raw *r, int port, const char *name)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Hello hello = HPQ__HELLO__INIT;

	r->hello = NULL;
	if (!h_tls_open(&r->t, port, &(struct hpq_tls_config){ .ca_pem = ca_pem }))
		return false;
	hello.role = HPQ__ROLE__ROLE_CLIENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)"t_munge";
	hello.name = (char *)name;
	env.id = 1;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	if (!raw_send(r, &env) || !(r->hello = raw_read(r)) ||
	    r->hello->body_case != HPQ__ENVELOPE__BODY_HELLO_REPLY) {
		fprintf(stderr, "no HelloReply to Hello\n");
		return false;
	}
	return true;
}

static void raw_close(struct raw *r)
{
	hpq_msg_free(r->hello);
	h_tls_close(&r->t);
}

/* Sends Auth with cred (NULL: none) and returns the answer, NULL on close. */
static Hpq__Envelope *raw_auth(struct raw *r, const char *cred)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Auth auth = HPQ__AUTH__INIT;

	if (cred)
		auth.munge_credential = (char *)cred;
	env.id = 2;
	env.body_case = HPQ__ENVELOPE__BODY_AUTH;
	env.auth = &auth;
	return raw_send(r, &env) ? raw_read(r) : NULL;
}

/* The HelloReply of an hpqd that wants MUNGE: a nonce, no identity yet. */
static void assert_munge_asked(struct raw *r)
{
	const Hpq__HelloReply *h = r->hello->hello_reply;

	assert_true(h->munge);
	assert_int_equal(h->nonce.len, HPQ_AUTH_NONCE_BYTES);
	assert_string_equal(h->user, "");
	assert_false(h->admin);
}

/* reply must be an Error with code whose message contains want, and the
 * daemon must then close the connection. */
static void assert_refused(struct raw *r, Hpq__Envelope *reply, int code, const char *want,
			   const char *what)
{
	Hpq__Envelope *more;

	if (!reply || reply->body_case != HPQ__ENVELOPE__BODY_ERROR)
		fail_msg("%s: want an Error, got %s", what,
			 reply ? hpq_msg_name(reply) : "a closed connection");
	fprintf(stderr, "%s: refused: %s\n", what, reply->error->message);
	if (!strstr(reply->error->message, want))
		fail_msg("%s: the error does not say '%s'", what, want);
	assert_int_equal(reply->error->code, code);
	hpq_msg_free(reply);
	more = raw_read(r);
	if (more)
		fail_msg("%s: the connection goes on (%s)", what, hpq_msg_name(more));
}

/* ---------------------------------------------------------------- the checks */

/* In a child running as pw: a Hello that names root, a credential of its
 * own, then a team creation. Exits 0 if hpqd saw through it. */
static void impostor(struct h_cluster *c, const struct passwd *pw, const char *sock)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__TeamSetRequest set = HPQ__TEAM_SET_REQUEST__INIT;
	Hpq__Team team = HPQ__TEAM__INIT;
	struct raw r;
	char *cred;

	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		_exit(11);
	if (!raw_hello(&r, c->port, "root"))
		_exit(12);
	if (!r.hello->hello_reply->munge || strcmp(r.hello->hello_reply->user, "") != 0 ||
	    r.hello->hello_reply->admin) {
		fprintf(stderr, "Hello naming root over TCP got user '%s'%s without MUNGE\n",
			r.hello->hello_reply->user, r.hello->hello_reply->admin ? ", admin" : "");
		_exit(13);
	}
	cred = credential(sock, &r.hello->hello_reply->nonce, 0);
	if (!cred)
		_exit(14);
	reply = raw_auth(&r, cred);
	free(cred);
	if (!reply || reply->body_case != HPQ__ENVELOPE__BODY_HELLO_REPLY)
		_exit(15);
	if (strcmp(reply->hello_reply->user, USER) != 0 || reply->hello_reply->admin) {
		fprintf(stderr, "uid %u naming root is '%s'%s\n", (unsigned)pw->pw_uid,
			reply->hello_reply->user, reply->hello_reply->admin ? ", admin" : "");
		_exit(16);
	}
	hpq_msg_free(reply);

	team.name = (char *)"impostor";
	set.team = &team;
	set.create = true;
	env.id = 3;
	env.body_case = HPQ__ENVELOPE__BODY_TEAM_SET;
	env.team_set = &set;
	if (!raw_send(&r, &env) || !(reply = raw_read(&r)) ||
	    reply->body_case != HPQ__ENVELOPE__BODY_ERROR)
		_exit(17);
	hpq_msg_free(reply);
	raw_close(&r);
	_exit(0);
}

/* The CLI as pw over TCP: its identity, and a task that reports its ids. */
static void real_uid(struct h_cluster *c, const struct passwd *pw, const char *server,
		     const char *sock)
{
	char cmd[256], expect[64], *who;
	uint64_t id;
	json_t *j, *t;
	pid_t pid;
	int st;

	h_cli_as(c, pw->pw_uid, pw->pw_gid);
	j = h_hpq_json(c, "--server", server, "--munge-socket", sock, "version", NULL);
	assert_string_equal(h_str(json_object_get(j, "server"), "user"), USER);
	assert_true(json_is_false(json_object_get(json_object_get(j, "server"), "admin")));
	json_decref(j);

	snprintf(cmd, sizeof(cmd), "{ id -u; id -g; } > %s/who.$HPQ_TASK_ID",
		 h_path(c, "shared"));
	id = h_submit(c, "--server", server, "--munge-socket", sock, "--", "sh", "-c", cmd, NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	t = h_task(c, id);
	assert_string_equal(h_str(t, "user"), USER);
	json_decref(t);
	who = h_read_file(h_path(c, "shared/who.%" PRIu64, id));
	assert_non_null(who);
	snprintf(expect, sizeof(expect), "%u\n%u\n", (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	assert_string_equal(who, expect);
	free(who);
	h_cli_as(c, 0, 0);

	/* A forged name in Hello changes nothing. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		impostor(c, pw, sock);
	st = h_wait_child(c, pid, 60000);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("impostor check failed (status %d)", st);
	j = h_hpq_json(c, "team", "list", NULL);
	{
		size_t i;
		json_t *team;

		json_array_foreach(j, i, team)
			assert_string_not_equal(h_str(team, "name"), "impostor");
	}
	json_decref(j);
}

static void refusals(struct h_cluster *c, const char *server, const char *sock)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	struct raw r, other;
	struct h_out o;
	char *cred;
	time_t made;

	/* No credential at all. */
	assert_true(raw_hello(&r, c->port, "root"));
	assert_munge_asked(&r);
	assert_refused(&r, raw_auth(&r, NULL), HPQ_EAUTH, "needs a MUNGE credential",
		       "Auth without a credential");
	raw_close(&r);

	/* A request instead of Auth. */
	assert_true(raw_hello(&r, c->port, "root"));
	env.id = 2;
	env.body_case = HPQ__ENVELOPE__BODY_LIST;
	env.list = &list;
	assert_true(raw_send(&r, &env));
	assert_refused(&r, raw_read(&r), HPQ_EAUTH, "MUNGE credential in Auth",
		       "a list before Auth");
	raw_close(&r);

	/* Something that is no credential. */
	assert_true(raw_hello(&r, c->port, "root"));
	assert_refused(&r, raw_auth(&r, "MUNGE:bm90IGEgY3JlZGVudGlhbA==:"), HPQ_EAUTH,
		       "MUNGE credential refused", "a garbage credential");
	raw_close(&r);

	/* A good credential, made for another connection's nonce. */
	assert_true(raw_hello(&other, c->port, "root"));
	assert_true(raw_hello(&r, c->port, "root"));
	cred = credential(sock, &other.hello->hello_reply->nonce, 0);
	assert_non_null(cred);
	assert_refused(&r, raw_auth(&r, cred), HPQ_EAUTH, "not made for this connection",
		       "a credential for another connection");
	free(cred);
	raw_close(&r);
	raw_close(&other);

	/* Replayed: accepted once, refused on the next connection. */
	assert_true(raw_hello(&r, c->port, "root"));
	cred = credential(sock, &r.hello->hello_reply->nonce, 0);
	assert_non_null(cred);
	reply = raw_auth(&r, cred);
	assert_non_null(reply);
	assert_int_equal(reply->body_case, HPQ__ENVELOPE__BODY_HELLO_REPLY);
	assert_string_equal(reply->hello_reply->user, "root");
	assert_true(reply->hello_reply->admin);
	hpq_msg_free(reply);
	raw_close(&r);
	assert_true(raw_hello(&r, c->port, "root"));
	assert_refused(&r, raw_auth(&r, cred), HPQ_EAUTH, "replayed", "a replayed credential");
	free(cred);
	raw_close(&r);

	/* Expired: a TTL of one second, sent once munged's clock (this host's)
	 * is past it. */
	assert_true(raw_hello(&r, c->port, "root"));
	cred = credential(sock, &r.hello->hello_reply->nonce, 1);
	assert_non_null(cred);
	made = time(NULL);
	assert_true(H_WAIT_FOR(c, time(NULL) > made + 1, 10000));
	assert_refused(&r, raw_auth(&r, cred), HPQ_EAUTH, "expired", "an expired credential");
	free(cred);
	raw_close(&r);

	/* The CLI without munged where it looks. */
	assert_int_equal(h_hpq(c, &o, "--server", server, "--munge-socket",
			       h_path(c, "munge/nothing.sock"), "list", NULL), 1);
	fprintf(stderr, "hpq without munged: %s", o.err);
	assert_non_null(strstr(o.err, "MUNGE credential"));
	assert_non_null(strstr(o.err, "nothing.sock"));
	h_out_free(&o);
	/* An empty --munge-socket is a usage error. */
	assert_int_equal(h_hpq(c, NULL, "--server", server, "--munge-socket", "", "list", NULL), 2);
}

/* hpqd --insecure: refused on 0.0.0.0, trusting names on loopback. */
static void insecure(struct h_cluster *c)
{
	const char *hpqd = h_bin("hpqd");
	const char *off[] = {hpqd, "--foreground", "--insecure", "--state-dir",
			     h_path(c, "insecure-off"), "--socket", "", "--listen", "0.0.0.0:0",
			     NULL};
	char sock[160], state[128], server[64], *log, *port = NULL;
	json_t *j;
	pid_t pid;
	int st, fd;

	st = run(c, off, h_path(c, "insecure-off.out"));
	log = h_read_file(h_path(c, "insecure-off.out"));
	assert_non_null(log);
	fprintf(stderr, "hpqd --insecure --listen 0.0.0.0:0: status %d: %s", st, log);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	assert_non_null(strstr(log, "--insecure is allowed only with a loopback"));
	free(log);
	/* Refused before anything was made. */
	assert_int_equal(access(h_path(c, "insecure-off"), F_OK), -1);

	/* On loopback: a daemon of its own, which the CLI reaches without
	 * munged, as whoever it names (root). */
	snprintf(state, sizeof(state), "%s", h_path(c, "insecure"));
	snprintf(sock, sizeof(sock), "%s/hpqd.sock", state);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(h_path(c, "insecure.log"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || chdir(c->dir) < 0)
			_exit(127);
		execl(hpqd, hpqd, "--foreground", "--insecure", "--state-dir", state, "--socket",
		      sock, "--listen", "127.0.0.1:0", (char *)NULL);
		_exit(127);
	}
	if (!H_WAIT_FOR(c, !alive(pid) || (port = h_read_file(h_path(c, "insecure/hpqd.port"))),
			30000) || !alive(pid))
		fail_msg("hpqd --insecure on loopback did not start: %s",
			 h_read_file(h_path(c, "insecure.log")));
	snprintf(server, sizeof(server), "127.0.0.1:%d", atoi(port));
	free(port);
	j = h_hpq_json(c, "--server", server, "--insecure", "--munge-socket",
		       h_path(c, "munge/nothing.sock"), "version", NULL);
	assert_string_equal(h_str(json_object_get(j, "server"), "user"), "root");
	json_decref(j);
	kill(pid, SIGTERM);
	st = h_wait_child(c, pid, 30000);
	assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	log = h_read_file(h_path(c, "insecure.log"));
	assert_non_null(strstr(log, "TCP is plain and NOT authenticated"));
	free(log);
}

static void munge(void **state)
{
	struct h_cluster *c = *state;
	struct munged m = {0};
	char munged[128];
	struct passwd pw;
	struct raw r;
	char conf[256], server[64];
	char *cred;

	assert_true(find_program("munged", munged));
	pw = test_user(c);
	munged_start(c, &m, munged);
	snprintf(conf, sizeof(conf), "[auth]\nmunge_socket = %s\n", m.sock);
	h_daemon_config(c, conf);
	h_daemon_start(c);
	ca_pem = h_read_file(h_path(c, "ca.crt"));
	assert_non_null(ca_pem);
	h_agent_start(c, "node1", 0, 4, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));
	snprintf(server, sizeof(server), "127.0.0.1:%d", c->port);
	/* Where the test user's task writes. */
	assert_int_equal(mkdir(h_path(c, "shared"), 0777), 0);
	assert_int_equal(chmod(h_path(c, "shared"), 0777), 0);

	real_uid(c, &pw, server, m.sock);
	refusals(c, server, m.sock);
	insecure(c);

	/* munged gone: hpqd cannot check a credential made before. */
	assert_true(raw_hello(&r, c->port, "root"));
	cred = credential(m.sock, &r.hello->hello_reply->nonce, 0);
	assert_non_null(cred);
	munged_stop(c, &m);
	assert_refused(&r, raw_auth(&r, cred), HPQ_EUNAVAIL, "cannot check MUNGE credentials",
		       "a credential with munged stopped");
	free(cred);
	raw_close(&r);
	/* The Unix socket still serves, by SO_PEERCRED. */
	assert_int_equal(h_hpq(c, NULL, "list", NULL), 0);

	free(ca_pem);
	ca_pem = NULL;
	h_pass(c);
}

/* The test user goes, also after a failure. */
static int teardown(void **state)
{
	if (*state)
		remove_user(*state);
	return h_teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(munge, h_setup, teardown),
	};

	char munged[128];

	if (!find_program("munged", munged)) {
		fprintf(stderr, "t_munge: munged not found (install the Debian package munge): "
				"skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
