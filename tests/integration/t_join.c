/*
 * t_join: nodes that join over TLS with a bootstrap token, and what hpqd
 * refuses them (docs/security.md, "Nodes"). hpqd runs as shipped (TLS on
 * TCP, its own CA in its state directory); the agents here dial its TCP
 * port, as agents on other machines do.
 *
 * - An agent joins with `hpq node token create`'s token and CA hash: its
 *   key and certificate land in <work>/tls, 0600; the node is "tls" in
 *   `hpq node list`; a task runs on it and its output comes back; with
 *   [tls] node_cert_lifetime short, the agent renews its certificate.
 * - Refused, the agent exiting with status 2 and a message that says why
 *   (so that systemd does not start it again), and nothing
 *   taken: a token used a second time (stolen), a token past its TTL, the
 *   wrong CA hash (the token is not even sent: its uses are untouched), a
 *   name that already holds a certificate.
 * - The CLI over TCP refuses an hpqd whose certificate another CA signed;
 *   a plain-TCP peer is told hpqd speaks TLS.
 * - With a valid certificate, a node that says Hello as another node is
 *   refused, and one that reports another node's task is refused, the
 *   task untouched, and a "security" event is recorded.
 * - A Register on a second connection with a node's certificate, while
 *   its registered connection beats, is refused (another machine under
 *   its name) and leaves that connection serving it.
 * - Renewals asked for one after another are refused once the node holds
 *   3 valid certificates.
 * - `hpq node revoke` disconnects the node, and every other connection
 *   with its certificate (one that never registered here), and its
 *   certificate is refused from then on; a new token lets it join again
 *   under its name.
 * - hpqd --check reports the TLS setup, and names the rule a CA key open
 *   to others breaks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "frame.h"
#include "hpq.h"
#include "msg.h"
#include "pki.h"
#include "tls.h"

#include "harness.h"

/* ---------------------------------------------------------------- tokens */

struct token {
	char token[128];
	char hash[HPQ_PKI_HASH_LEN];
	long long expires;
};

static void token_create(struct h_cluster *c, struct token *t, const char *uses,
			 const char *ttl)
{
	json_t *j = h_hpq_json(c, "node", "token", "create", "--uses", uses, "--ttl", ttl, NULL);

	snprintf(t->token, sizeof(t->token), "%s", h_str(j, "token"));
	snprintf(t->hash, sizeof(t->hash), "%s", h_str(j, "ca_hash"));
	t->expires = h_int(j, "expires");
	json_decref(j);
	assert_true(strncmp(t->token, "hpq1.", 5) == 0);
	assert_true(hpq_pki_hash_valid(t->hash));
}

/* The uses left of the token whose whole text is t (hpq node token list). */
static long long uses_left(struct h_cluster *c, const struct token *t)
{
	json_t *j = h_hpq_json(c, "node", "token", "list", NULL), *o;
	long long n = -1;
	size_t i;

	json_array_foreach(j, i, o)
		if (!strncmp(t->token + 5, h_str(o, "id"), strlen(h_str(o, "id"))))
			n = h_int(o, "uses_left");
	json_decref(j);
	return n;
}

/* Starts an agent that joins over TCP with token and hash. */
static int join(struct h_cluster *c, const char *name, const char *token, const char *hash)
{
	const char *extra[] = { "--join", token, "--ca-hash", hash, NULL };

	return h_agent_start_tcp(c, name, 1, 2, "1G", extra);
}

/* Agent i must exit on its own with status 2, its log saying want. */
static void assert_gave_up(struct h_cluster *c, int i, const char *want)
{
	struct h_agent *a = &c->agents[i];
	char *log;

	if (!H_WAIT_FOR(c, a->pid == 0, 30000))
		fail_msg("agent %s did not give up", a->name);
	log = h_read_file(a->log);
	assert_non_null(log);
	fprintf(stderr, "agent %s exited %d\n", a->name, WEXITSTATUS(a->status));
	/* 2: refused for good, so systemd does not start it again. */
	assert_true(WIFEXITED(a->status) && WEXITSTATUS(a->status) == 2);
	if (!strstr(log, want))
		fail_msg("agent %s's log does not say '%s':\n%s", a->name, want, log);
	free(log);
}

static json_t *node_of(struct h_cluster *c, const char *name)
{
	json_t *j = h_hpq_json(c, "node", "list", NULL), *o, *found = NULL;
	size_t i;

	json_array_foreach(j, i, o)
		if (!strcmp(h_str(o, "name"), name))
			found = json_incref(o);
	json_decref(j);
	return found;
}

static void assert_mode(const char *path, mode_t mode)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	if ((st.st_mode & 07777) != mode)
		fail_msg("%s has mode %04o, not %04o", path, st.st_mode & 07777, mode);
}

/* ---------------------------------------------------------------- a node by hand */

/* An agent's connection driven by the test (h_tls): with a node's own key
 * and certificate (node.pem holds both), trusting the cluster CA. */
/* A join by hand: TLS pinned to the token's CA hash, Hello as name, a
 * certificate request; returns hpqd's answer. */
static Hpq__Envelope *raw_join(struct h_cluster *c, const char *name, const struct token *t)
{
	struct hpq_tls_config cfg = { .pin_hash = t->hash };
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__JoinRequest jr = HPQ__JOIN_REQUEST__INIT;
	char err[256], *key = NULL, *csr = NULL;
	struct h_tls r;

	assert_true(h_tls_open(&r, c->port, &cfg));
	reply = h_tls_hello(&r, name);
	assert_non_null(reply);
	assert_int_equal(reply->body_case, HPQ__ENVELOPE__BODY_HELLO_REPLY);
	hpq_msg_free(reply);
	assert_int_equal(hpq_pki_make_request(name, &key, &csr, err, sizeof(err)), 0);
	jr.token = (char *)t->token;
	jr.csr.data = (uint8_t *)csr;
	jr.csr.len = strlen(csr);
	env.body_case = HPQ__ENVELOPE__BODY_JOIN;
	env.join = &jr;
	reply = h_tls_call(&r, 2, &env);
	free(key);
	free(csr);
	h_tls_close(&r);
	return reply;
}

static void assert_error(Hpq__Envelope *reply, int code, const char *want, const char *what)
{
	if (!reply || reply->body_case != HPQ__ENVELOPE__BODY_ERROR)
		fail_msg("%s: want an Error, got %s", what,
			 reply ? hpq_msg_name(reply) : "a closed connection");
	fprintf(stderr, "%s: refused: %s\n", what, reply->error->message);
	assert_int_equal(reply->error->code, code);
	if (!strstr(reply->error->message, want))
		fail_msg("%s: the error does not say '%s'", what, want);
	hpq_msg_free(reply);
}

/* Node `as`, holding the certificate in pem, says Hello as `claim`: refused. */
static void impersonate(struct h_cluster *c, const char *pem, const char *ca, const char *as,
			const char *claim)
{
	struct h_tls r;
	char want[128];

	h_tls_open_node(&r, c->port, pem, ca);
	snprintf(want, sizeof(want), "this certificate is node %s's", as);
	assert_error(h_tls_hello(&r, claim), HPQ_EAUTH, want, "Hello as another node");
	h_tls_close(&r);
}

/* Node `as` reports that task id (attempt 1, which runs elsewhere) ended. */
static void report_foreign(struct h_cluster *c, const char *pem, const char *ca, const char *as,
			   uint64_t id)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__Register reg = HPQ__REGISTER__INIT;
	Hpq__RegisterReply *rr;
	Hpq__TaskUpdate tu = HPQ__TASK_UPDATE__INIT;
	Hpq__AgentTask at = HPQ__AGENT_TASK__INIT;
	struct h_tls r;

	h_tls_open_node(&r, c->port, pem, ca);
	reply = h_tls_hello(&r, as);
	assert_non_null(reply);
	assert_int_equal(reply->body_case, HPQ__ENVELOPE__BODY_HELLO_REPLY);
	hpq_msg_free(reply);
	reg.name = (char *)as;
	env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
	env.register_ = &reg;
	reply = h_tls_call(&r, 2, &env);
	assert_non_null(reply);
	if (reply->body_case != HPQ__ENVELOPE__BODY_REGISTER_REPLY)
		fail_msg("Register: %s", reply->body_case == HPQ__ENVELOPE__BODY_ERROR
						  ? reply->error->message : hpq_msg_name(reply));
	rr = reply->register_reply;
	assert_non_null(rr);
	hpq_msg_free(reply);

	at.task_id = id;
	at.attempt = 1;
	at.exited = true;
	at.exit_code = 0;
	tu.task = &at;
	env.body_case = HPQ__ENVELOPE__BODY_TASK_UPDATE;
	env.task_update = &tu;
	assert_error(h_tls_call(&r, 3, &env), HPQ_EPERM, "a node reports only its own tasks",
		     "a report about another node's task");
	h_tls_close(&r);
}

/* A Register by hand as `as` on r (after its Hello); address "" or one
 * hpqd must refuse. Returns hpqd's answer. */
static Hpq__Envelope *raw_register(struct h_tls *r, uint64_t id, const char *as,
				   const char *address)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Register reg = HPQ__REGISTER__INIT;

	reg.name = (char *)as;
	reg.address = (char *)address;
	env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
	env.register_ = &reg;
	return h_tls_call(r, id, &env);
}

static void raw_hello_ok(struct h_tls *r, const char *as)
{
	Hpq__Envelope *reply = h_tls_hello(r, as);

	assert_non_null(reply);
	assert_int_equal(reply->body_case, HPQ__ENVELOPE__BODY_HELLO_REPLY);
	hpq_msg_free(reply);
}

/* A heartbeat sent as a request on r: is it answered (Ok, or an Error
 * when the connection is not registered), or is the connection closed? */
/*
 * Node `as` is registered on one connection; a second connection with its
 * certificate sends a Register, which hpqd refuses: the first was heard
 * from just now. The refusal changes nothing: the first connection still
 * serves the node, which is still connected, and once that connection
 * ends the node is not.
 */
static void refused_register_keeps_node(struct h_cluster *c, const char *pem, const char *ca,
					const char *as)
{
	struct h_tls one, two;
	Hpq__Envelope *reply;

	h_tls_open_node(&one, c->port, pem, ca);
	raw_hello_ok(&one, as);
	reply = raw_register(&one, 2, as, "");
	assert_non_null(reply);
	assert_int_equal(reply->body_case, HPQ__ENVELOPE__BODY_REGISTER_REPLY);
	hpq_msg_free(reply);
	assert_true(H_WAIT_FOR(c, h_node_connected(c, as), 30000));

	h_tls_open_node(&two, c->port, pem, ca);
	raw_hello_ok(&two, as);
	assert_error(raw_register(&two, 2, as, ""), HPQ_EBUSY, "a second agent",
		     "a Register on a second connection");
	h_tls_close(&two);

	reply = h_tls_beat(&one, 3);
	if (!reply || reply->body_case != HPQ__ENVELOPE__BODY_OK)
		fail_msg("after another connection's refused Register, node %s's connection %s",
			 as, reply ? hpq_msg_name(reply) : "was closed");
	hpq_msg_free(reply);
	assert_true(h_node_connected(c, as));
	h_tls_close(&one);
	assert_true(H_WAIT_FOR(c, !h_node_connected(c, as), 30000));
}

/* Node `as` asks for one renewal after another on one connection: hpqd
 * signs until the node holds 3 valid certificates, then refuses. */
static void renewal_flood(struct h_cluster *c, const char *pem, const char *ca, const char *as)
{
	struct h_tls r;
	int signed_ = 0, i;
	bool refused = false;

	h_tls_open_node(&r, c->port, pem, ca);
	raw_hello_ok(&r, as);
	/* Certificates here live 30 s, so some may expire meanwhile: a few
	 * more tries than 3 are allowed, never one without limit. */
	for (i = 0; i < 8 && !refused; i++) {
		Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
		Hpq__RenewRequest rq = HPQ__RENEW_REQUEST__INIT;
		char err[256], *key = NULL, *csr = NULL;

		assert_int_equal(hpq_pki_make_request(as, &key, &csr, err, sizeof(err)), 0);
		rq.csr.data = (uint8_t *)csr;
		rq.csr.len = strlen(csr);
		env.body_case = HPQ__ENVELOPE__BODY_RENEW;
		env.renew = &rq;
		reply = h_tls_call(&r, 10 + (uint64_t)i, &env);
		free(key);
		free(csr);
		assert_non_null(reply);
		if (reply->body_case == HPQ__ENVELOPE__BODY_RENEW_REPLY) {
			signed_++;
			hpq_msg_free(reply);
		} else {
			refused = true;
			assert_error(reply, HPQ_EBUSY, "valid certificates already",
				     "a renewal beyond the limit");
		}
	}
	fprintf(stderr, "renewals by hand: %d signed before the refusal\n", signed_);
	if (!refused)
		fail_msg("node %s got %d renewals in a row, none refused", as, signed_);
	assert_true(signed_ <= 3);
	h_tls_close(&r);
}

/* The certificate the agent holds in path once it has min_left_s of life
 * left: with 30 s certificates renewed every 20 s, the one in the file
 * can be about to expire, and a handshake with it then fails. */
static char *pem_with_life_left(struct h_cluster *c, const char *path, int64_t min_left_s)
{
	struct hpq_cert_info info;
	char *pem = NULL, err[256];

	if (!H_WAIT_FOR(c, (free(pem), (pem = h_read_file(path))) &&
			       hpq_pki_cert_info(pem, strlen(pem), &info, err, sizeof(err)) == 0 &&
			       info.not_after - hpq_now_ms() / 1000 >= min_left_s,
			90000))
		fail_msg("%s never held a certificate with %lld s left", path,
			 (long long)min_left_s);
	return pem;
}

/* hpqd --check on the cluster's state directory: its output, and its exit
 * status in *status. */
static char *check_output(struct h_cluster *c, int *status)
{
	char listen[64];
	const char *argv[] = { h_bin("hpqd"), "--check", "--foreground", "--state-dir", c->dir,
			       "--listen", listen, "--socket", c->sock, NULL };
	pid_t pid;
	int st;

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", c->port);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(h_path(c, "check.out"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	st = h_wait_child(c, pid, 30000);
	assert_true(st != -1 && WIFEXITED(st));
	*status = WEXITSTATUS(st);
	return h_read_file(h_path(c, "check.out"));
}

/* ---------------------------------------------------------------- the test */

/* An hpq without its TLS module (hpq loads it only for TCP) says so and
 * does nothing; over the Unix socket it needs none. Only where no hpq is
 * installed, whose module a lone hpq would find. */
static void no_tls_module(struct h_cluster *c, const char *server)
{
	const char *saved = getenv("HPQ_TEST_HPQ");
	char *keep = saved ? strdup(saved) : NULL;
	struct h_out o;

	if (access(HPQ_TLS_MODULE_PATH, F_OK) == 0) {
		fprintf(stderr, "skipped: an hpq without its TLS module (%s is installed)\n",
			HPQ_TLS_MODULE_PATH);
		free(keep);
		return;
	}
	assert_int_equal(mkdir(h_path(c, "lone"), 0700), 0);
	h_copy_file(h_bin("hpq"), h_path(c, "lone/hpq"), 0700);
	setenv("HPQ_TEST_HPQ", h_path(c, "lone/hpq"), 1);
	assert_int_not_equal(h_hpq(c, &o, "--server", server, "list", NULL), 0);
	fprintf(stderr, "no TLS module: %s", o.err);
	assert_non_null(strstr(o.err, "this hpq has no TLS"));
	assert_non_null(strstr(o.err, "hpq-tls.so"));
	h_out_free(&o);
	assert_int_equal(h_hpq(c, NULL, "list", NULL), 0);
	if (keep)
		setenv("HPQ_TEST_HPQ", keep, 1);
	else
		unsetenv("HPQ_TEST_HPQ");
	free(keep);
}

static void join_flow(void **state)
{
	struct h_cluster *c = *state;
	struct token one, many, brief, again;
	struct h_out o;
	char server[64], path[256], zeros[HPQ_PKI_HASH_LEN], *pem, *ca, *log;
	uint64_t id, sleeper;
	json_t *n;
	int edge1, edge5, i;

	/* Certificates due for renewal 20 s after they are issued. */
	h_daemon_config(c, "[tls]\nnode_cert_lifetime = 30s\n");
	h_daemon_start(c);
	snprintf(server, sizeof(server), "127.0.0.1:%d", c->port);

	/* A join, and a node that works. */
	token_create(c, &one, "1", "1h");
	edge1 = join(c, "edge1", one.token, one.hash);
	assert_true(H_WAIT_FOR(c, h_node_connected(c, "edge1"), 30000));
	n = node_of(c, "edge1");
	assert_string_equal(h_str(n, "identity"), "tls");
	assert_false(json_is_null(json_object_get(n, "cert_not_after")));
	json_decref(n);
	assert_mode(h_path(c, "edge1/tls"), 0700);
	assert_mode(h_path(c, "edge1/tls/node.pem"), 0600);
	assert_mode(h_path(c, "edge1/tls/ca.crt"), 0600);
	assert_int_equal(uses_left(c, &one), 0);
	id = h_submit(c, "--", "sh", "-c", "echo over-tls", NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	{
		char ids[32];

		snprintf(ids, sizeof(ids), "%" PRIu64, id);
		assert_int_equal(h_hpq(c, &o, "logs", ids, NULL), 0);
		assert_non_null(strstr(o.out, "over-tls"));
		h_out_free(&o);
	}
	assert_true(h_has_event(c, "node", "joined with token"));

	/* The same token again, as a thief would: used up. */
	i = join(c, "edge2", one.token, one.hash);
	assert_gave_up(c, i, "used up");
	assert_true(h_has_event(c, "security", "join as edge2"));
	assert_false(h_node_connected(c, "edge2"));

	/* The wrong CA: the agent stops before sending the token. */
	token_create(c, &many, "5", "1h");
	memset(zeros, '0', sizeof(zeros));
	memcpy(zeros, "sha256:", 7);
	zeros[HPQ_PKI_HASH_LEN - 1] = '\0';
	i = join(c, "edge3", many.token, zeros);
	assert_gave_up(c, i, "pinned");
	assert_int_equal(uses_left(c, &many), 5);

	/* A token past its TTL. */
	token_create(c, &brief, "1", "1s");
	assert_true(H_WAIT_FOR(c, (long long)time(NULL) > brief.expires, 5000));
	i = join(c, "edge4", brief.token, brief.hash);
	assert_gave_up(c, i, "expired");

	/* A name that is taken: edge1 holds a certificate. By hand, since an
	 * agent named edge1 here would share edge1's work directory. */
	assert_error(raw_join(c, "edge1", &many), HPQ_EEXIST, "already holds a certificate",
		     "a join under a taken name");
	assert_int_equal(uses_left(c, &many), 5);

	/* The CLI over TCP: the right CA works (as far as MUNGE, which this
	 * host need not run); another CA's certificate is refused; plain TCP
	 * is told that hpqd speaks TLS. */
	{
		struct hpq_ca *other;
		char err[256];

		assert_int_equal(mkdir(h_path(c, "otherca"), 0700), 0);
		assert_int_equal(hpq_ca_open(h_path(c, "otherca"), "other", true, &other, err,
					     sizeof(err)), 0);
		h_write_file(h_path(c, "other.crt"), hpq_ca_pem(other));
		hpq_ca_free(other);
	}
	assert_int_not_equal(h_hpq(c, &o, "--server", server, "--ca-file",
				   h_path(c, "other.crt"), "list", NULL), 0);
	fprintf(stderr, "another CA: %s", o.err);
	assert_non_null(strstr(o.err, "TLS with hpqd failed"));
	h_out_free(&o);
	assert_int_not_equal(h_hpq(c, &o, "--server", server, "--insecure", "list", NULL), 0);
	assert_non_null(strstr(o.err, "hpqd speaks TLS on TCP"));
	h_out_free(&o);
	assert_int_not_equal(h_hpq(c, &o, "--server", server, "--server-name", "elsewhere.example",
				   "list", NULL), 0);
	fprintf(stderr, "another name: %s", o.err);
	assert_non_null(strstr(o.err, "TLS with hpqd failed"));
	h_out_free(&o);
	no_tls_module(c, server);

	/* A second node, then by hand with its certificate: no Hello as
	 * another node, no report about another node's task. */
	edge5 = join(c, "edge5", many.token, many.hash);
	assert_true(H_WAIT_FOR(c, h_node_connected(c, "edge5"), 30000));
	h_agent_stop(c, edge5, SIGTERM);
	assert_true(H_WAIT_FOR(c, !h_node_connected(c, "edge5"), 30000));
	snprintf(path, sizeof(path), "%s", h_path(c, "edge5/tls/node.pem"));
	pem = h_read_file(path);
	ca = h_read_file(h_path(c, "edge5/tls/ca.crt"));
	assert_non_null(pem);
	assert_non_null(ca);
	sleeper = h_submit(c, "--", "sleep", "600", NULL);
	assert_true(h_wait_state(c, sleeper, "RUNNING", 30000));
	impersonate(c, pem, ca, "edge5", "edge1");
	report_foreign(c, pem, ca, "edge5", sleeper);
	refused_register_keeps_node(c, pem, ca, "edge5");
	renewal_flood(c, pem, ca, "edge5");
	assert_true(h_has_event(c, "security", "does not run on node edge5"));
	{
		json_t *t = h_task(c, sleeper);

		assert_string_equal(h_str(t, "state"), "RUNNING");
		json_decref(t);
	}

	/* A 30 s certificate (the shortest hpqd issues) is due with 10 s
	 * left: edge1's agent has renewed it meanwhile, or does so now. */
	assert_true(H_WAIT_FOR(c, h_node_has_event(c, "edge1", "node", "renewed: certificate"), 60000));

	/* Revocation: edge1 is cut off and its certificate refused, on every
	 * connection: also one that has not registered (by hand, with the
	 * certificate the agent holds now). */
	{
		struct h_tls other;
		Hpq__Envelope *reply;

		/* Taken before the revocation stops its renewals, with time left
		 * for both uses of it here. */
		pem = (free(pem), pem_with_life_left(c, h_path(c, "edge1/tls/node.pem"), 15));
		h_tls_open_node(&other, c->port, pem, ca);
		raw_hello_ok(&other, "edge1");
		reply = h_tls_beat(&other, 2);     /* open: refused, since not registered */
		assert_non_null(reply);
		assert_int_equal(reply->body_case, HPQ__ENVELOPE__BODY_ERROR);
		hpq_msg_free(reply);
		assert_int_equal(h_hpq(c, NULL, "node", "revoke", "edge1", NULL), 0);
		reply = h_tls_beat(&other, 3);
		if (reply)
			fail_msg("a connection with edge1's revoked certificate is still open: %s",
				 hpq_msg_name(reply));
		h_tls_close(&other);
	}
	assert_true(H_WAIT_FOR(c, !h_node_connected(c, "edge1"), 30000));
	assert_true(H_WAIT_FOR(c, (log = h_read_file(c->agents[edge1].log)) &&
				      strstr(log, "refuses this node's certificate") ? (free(log), true)
										   : (free(log), false),
			       30000));
	assert_true(h_has_event(c, "security", "was revoked"));
	assert_false(h_node_connected(c, "edge1"));
	/* The revoked node's certificate (the one above) cannot even report
	 * for itself. */
	{
		struct h_tls r;
		Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
		Hpq__Register reg = HPQ__REGISTER__INIT;

		h_tls_open_node(&r, c->port, pem, ca);
		reply = h_tls_hello(&r, "edge1");
		assert_non_null(reply);
		hpq_msg_free(reply);
		reg.name = (char *)"edge1";
		env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
		env.register_ = &reg;
		assert_error(h_tls_call(&r, 2, &env), HPQ_EAUTH, "was revoked",
			     "a revoked certificate");
		/* Nor, registered or not, record a checkpoint of a task that
		 * still runs on its node: the path an attempt resumes from. */
		{
			Hpq__CheckpointRequest ck = HPQ__CHECKPOINT_REQUEST__INIT;
			json_t *t = h_task(c, sleeper);

			assert_string_equal(h_str(t, "state"), "RUNNING");
			json_decref(t);
			ck.task_id = sleeper;
			ck.attempt = 1;
			ck.step = 999;
			ck.path = (char *)"/tmp/planted-by-a-revoked-node";
			env.body_case = HPQ__ENVELOPE__BODY_CHECKPOINT;
			env.checkpoint = &ck;
			reply = h_tls_call(&r, 3, &env);
			if (reply && reply->body_case != HPQ__ENVELOPE__BODY_ERROR)
				fail_msg("a revoked certificate recorded a checkpoint of task %"
					 PRIu64 " (%s)", sleeper, hpq_msg_name(reply));
			hpq_msg_free(reply);
		}
		h_tls_close(&r);
	}
	/* A new token lets the machine join again under its name. */
	h_agent_stop(c, edge1, SIGTERM);
	snprintf(path, sizeof(path), "rm -rf '%s'", h_path(c, "edge1/tls"));
	assert_int_equal(system(path), 0);
	token_create(c, &again, "1", "10m");
	{
		struct h_agent *a = &c->agents[edge1];

		snprintf(a->extra[1], sizeof(a->extra[1]), "%s", again.token);
		snprintf(a->extra[3], sizeof(a->extra[3]), "%s", again.hash);
		h_agent_restart(c, edge1);
	}
	assert_true(H_WAIT_FOR(c, h_node_connected(c, "edge1"), 30000));
	free(pem);
	free(ca);

	/* A CA key others may read: hpqd --check says which rule and how to fix
	 * it, and hpqd refuses to start on it. */
	h_daemon_stop(c, SIGTERM);
	assert_int_equal(chmod(h_path(c, "tls/ca.key"), 0644), 0);
	log = check_output(c, &i);
	assert_int_equal(i, 1);
	assert_non_null(strstr(log, "chmod 600"));
	assert_non_null(strstr(log, "hpqd: auth: TCP on 127.0.0.1:"));
	free(log);
	assert_int_equal(chmod(h_path(c, "tls/ca.key"), 0600), 0);
	log = check_output(c, &i);
	assert_int_equal(i, 0);
	assert_non_null(strstr(log, "hpqd: tls: cluster CA sha256:"));
	free(log);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(join_flow, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
