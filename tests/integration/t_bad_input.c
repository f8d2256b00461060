/*
 * t_bad_input: whatever arrives, hpqd answers with an error or closes the
 * connection, keeps serving everyone else, and changes nothing it stored.
 *
 * Socket level, hand-made with common/frame.h and msg.h: bytes that are no
 * frame at all, a frame whose payload is no protobuf, a truncated frame,
 * length headers over the limit, an Envelope whose body is a field number
 * the schema does not have, requests before Hello, a message that only
 * the daemon may send, a Hello with a future protocol version; over the
 * Unix socket and over TCP. A connection stuck in the middle of a frame
 * does not hold up other clients.
 *
 * Request level, through the client library (so the CLI's own checks do
 * not hide the daemon's): submits with an unknown team, class or pool, no
 * command, absurd sizes, an overlong name. CLI level: the same mistakes on
 * the command line give a message and a non-zero exit.
 *
 * Before and after: the task list, the teams and the classes are the same.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "error.h"
#include "frame.h"
#include "hpq.h"
#include "msg.h"

#include "harness.h"

/* ---------------------------------------------------------------- raw sockets */

static int raw_unix(struct h_cluster *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int raw_tcp(struct h_cluster *c)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
	/* The daemon may already have closed; that is an allowed answer. */
	ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

	assert_true(r == (ssize_t)n || (r < 0 && (errno == EPIPE || errno == ECONNRESET)));
}

static void raw_send_env(int fd, Hpq__Envelope *env)
{
	size_t len;
	uint8_t *buf = hpq_msg_encode(env, &len);

	raw_send(fd, buf, len);
	free(buf);
}

static void raw_hello(int fd, uint32_t version)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Hello hello = HPQ__HELLO__INIT;

	hello.role = HPQ__ROLE__ROLE_CLIENT;
	hello.protocol_version = version;
	hello.software_version = (char *)"t_bad_input";
	hello.name = (char *)"root";
	env.id = 1;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	raw_send_env(fd, &env);
}

enum answer { ANS_ERROR, ANS_CLOSED, ANS_OTHER, ANS_SILENT };
static const char *answer_name[] = {"an Error", "a close", "a non-error reply", "silence"};

/* Reads frames until one arrives (that is not the HelloReply, unless
 * want_hello), the connection closes, or timeout_ms pass. */
static enum answer raw_read(int fd, int timeout_ms, bool want_hello, Hpq__Envelope **ret_env)
{
	struct hpq_framer f;
	int64_t end = h_now_ms() + timeout_ms;
	enum answer a = ANS_SILENT;

	hpq_framer_init(&f, HPQ_FRAME_MAX);
	for (;;) {
		const uint8_t *p;
		size_t len;
		int r;

		while ((r = hpq_framer_next(&f, &p, &len)) > 0) {
			Hpq__Envelope *env = hpq_msg_decode(p, len);

			if (!env) {
				a = ANS_OTHER;
				goto out;
			}
			if (env->body_case == HPQ__ENVELOPE__BODY_HELLO_REPLY && !want_hello) {
				hpq_msg_free(env);
				continue;
			}
			a = env->body_case == HPQ__ENVELOPE__BODY_ERROR ? ANS_ERROR : ANS_OTHER;
			if (ret_env)
				*ret_env = env;
			else
				hpq_msg_free(env);
			goto out;
		}
		if (r < 0) {
			a = ANS_OTHER;
			goto out;
		}

		struct pollfd pfd = {fd, POLLIN, 0};
		int64_t left = end - h_now_ms();
		uint8_t buf[4096];
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			goto out;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			a = ANS_CLOSED;
			goto out;
		}
		hpq_framer_feed(&f, buf, (size_t)n);
	}
out:
	hpq_framer_release(&f);
	return a;
}

static enum answer raw_answer(int fd, int timeout_ms, Hpq__Envelope **ret_env)
{
	return raw_read(fd, timeout_ms, false, ret_env);
}

static enum answer raw_first(int fd, int timeout_ms, Hpq__Envelope **ret_env)
{
	return raw_read(fd, timeout_ms, true, ret_env);
}

static void expect_refused(const char *what, int fd, int timeout_ms)
{
	enum answer a = raw_answer(fd, timeout_ms, NULL);

	fprintf(stderr, "%s: got %s\n", what, answer_name[a]);
	if (a != ANS_ERROR && a != ANS_CLOSED)
		fail_msg("%s: want an Error reply or a closed connection, got %s", what,
			 answer_name[a]);
}

/* The daemon is alive and serves a normal CLI call. */
static void assert_serving(struct h_cluster *c)
{
	h_reap(c);
	assert_int_not_equal(c->hpqd, 0);
	assert_int_equal(h_hpq(c, NULL, "list", NULL), 0);
}

static void socket_level(struct h_cluster *c, int (*open_fd)(struct h_cluster *),
			 const char *via)
{
	char what[128];
	int fd, stuck;

	/* Bytes that are no frame at all: an HTTP request. Its first four
	 * bytes read as a length of about 1.2 GB. */
	fd = open_fd(c);
	raw_send(fd, "GET / HTTP/1.1\r\nHost: hpq\r\n\r\n", 29);
	snprintf(what, sizeof(what), "%s: http request", via);
	expect_refused(what, fd, 30000);
	close(fd);
	assert_serving(c);

	/* A well-sized frame whose payload is not protobuf. */
	{
		uint8_t junk[4 + 16];

		hpq_frame_header(junk, 16);
		memset(junk + 4, 0xff, 16);
		fd = open_fd(c);
		raw_send(fd, junk, sizeof(junk));
		snprintf(what, sizeof(what), "%s: garbage payload", via);
		expect_refused(what, fd, 30000);
		close(fd);
		assert_serving(c);
	}

	/* The same after a proper Hello. */
	{
		uint8_t junk[4 + 7] = {0, 0, 0, 7, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

		fd = open_fd(c);
		raw_hello(fd, HPQ_PROTOCOL_VERSION);
		raw_send(fd, junk, sizeof(junk));
		snprintf(what, sizeof(what), "%s: garbage payload after hello", via);
		expect_refused(what, fd, 30000);
		close(fd);
		assert_serving(c);
	}

	/* Length headers over the limit: just over, and the largest. */
	{
		uint8_t hdr[4];

		hpq_frame_header(hdr, HPQ_FRAME_MAX + 1);
		fd = open_fd(c);
		raw_hello(fd, HPQ_PROTOCOL_VERSION);
		raw_send(fd, hdr, 4);
		snprintf(what, sizeof(what), "%s: length limit + 1", via);
		expect_refused(what, fd, 30000);
		close(fd);

		hpq_frame_header(hdr, UINT32_MAX);
		fd = open_fd(c);
		raw_send(fd, hdr, 4);
		snprintf(what, sizeof(what), "%s: length 4 GiB", via);
		expect_refused(what, fd, 30000);
		close(fd);
		assert_serving(c);
	}

	/* An Envelope with id 5 and field 99, which the schema does not have:
	 * no body the daemon knows. First message, and after Hello. */
	{
		static const uint8_t unknown[] = {0, 0, 0, 5, 0x08, 0x05, 0x9a, 0x06, 0x00};

		fd = open_fd(c);
		raw_send(fd, unknown, sizeof(unknown));
		snprintf(what, sizeof(what), "%s: unknown body first", via);
		expect_refused(what, fd, 30000);
		close(fd);

		fd = open_fd(c);
		raw_hello(fd, HPQ_PROTOCOL_VERSION);
		raw_send(fd, unknown, sizeof(unknown));
		snprintf(what, sizeof(what), "%s: unknown body after hello", via);
		expect_refused(what, fd, 30000);
		close(fd);
		assert_serving(c);
	}

	/* A request before Hello. */
	{
		Hpq__Envelope env = HPQ__ENVELOPE__INIT;
		Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;

		env.id = 3;
		env.body_case = HPQ__ENVELOPE__BODY_LIST;
		env.list = &list;
		fd = open_fd(c);
		raw_send_env(fd, &env);
		snprintf(what, sizeof(what), "%s: list before hello", via);
		expect_refused(what, fd, 30000);
		close(fd);
	}

	/* A message only the daemon sends. */
	{
		Hpq__Envelope env = HPQ__ENVELOPE__INIT;
		Hpq__SubmitReply reply = HPQ__SUBMIT_REPLY__INIT;

		reply.id = 1;
		env.id = 4;
		env.body_case = HPQ__ENVELOPE__BODY_SUBMIT_REPLY;
		env.submit_reply = &reply;
		fd = open_fd(c);
		raw_hello(fd, HPQ_PROTOCOL_VERSION);
		raw_send_env(fd, &env);
		snprintf(what, sizeof(what), "%s: submit_reply from a client", via);
		expect_refused(what, fd, 30000);
		close(fd);
	}

	/* A protocol version older than any the daemon serves. */
	fd = open_fd(c);
	raw_hello(fd, HPQ_PROTOCOL_MIN - 1);
	snprintf(what, sizeof(what), "%s: hello with version %d", via, HPQ_PROTOCOL_MIN - 1);
	expect_refused(what, fd, 30000);
	close(fd);

	/* One from the future: refused, or answered with the daemon's own
	 * (older) version for the client to settle on. */
	{
		Hpq__Envelope *env = NULL;
		enum answer a;

		fd = open_fd(c);
		raw_hello(fd, HPQ_PROTOCOL_VERSION + 1000);
		a = raw_first(fd, 30000, &env);
		snprintf(what, sizeof(what), "%s: hello with version +1000", via);
		fprintf(stderr, "%s: got %s\n", what,
			env && env->body_case == HPQ__ENVELOPE__BODY_HELLO_REPLY
				? "a HelloReply" : answer_name[a]);
		if (env && env->body_case == HPQ__ENVELOPE__BODY_HELLO_REPLY)
			assert_true(env->hello_reply->protocol_version <= HPQ_PROTOCOL_VERSION);
		else if (a != ANS_ERROR && a != ANS_CLOSED)
			fail_msg("%s: want an Error, a close or a HelloReply, got %s", what,
				 answer_name[a]);
		hpq_msg_free(env);
		close(fd);
	}
	assert_serving(c);

	/* A truncated frame: the daemon waits for the rest, serves others
	 * meanwhile, and drops the connection when it closes. */
	{
		uint8_t part[4 + 10] = {0};

		hpq_frame_header(part, 100);
		stuck = open_fd(c);
		raw_hello(stuck, HPQ_PROTOCOL_VERSION);
		raw_send(stuck, part, sizeof(part));
		assert_serving(c);
		shutdown(stuck, SHUT_WR);
		snprintf(what, sizeof(what), "%s: truncated frame, then EOF", via);
		expect_refused(what, stuck, 30000);
		close(stuck);
		assert_serving(c);
	}
}

/* ---------------------------------------------------------------- requests */

/* Submits spec through the client library; the daemon must refuse it. */
static void expect_submit_refused(struct h_cluster *c, const char *what, Hpq__TaskSpec *spec)
{
	struct hpq_client cl;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__SubmitRequest req = HPQ__SUBMIT_REQUEST__INIT;
	int r;

	r = hpq_client_connect(&cl, c->sock, 30000);
	if (r < 0)
		fail_msg("%s: cannot connect: %s", what, cl.errbuf);
	req.spec = spec;
	env.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	env.submit = &req;
	r = hpq_client_call(&cl, &env, &reply);
	if (r == 0) {
		uint64_t id = reply->body_case == HPQ__ENVELOPE__BODY_SUBMIT_REPLY
				      ? reply->submit_reply->id : 0;
		hpq_msg_free(reply);
		hpq_client_close(&cl);
		fail_msg("%s: the daemon accepted it (task %" PRIu64 ")", what, id);
	}
	fprintf(stderr, "%s: refused (%d): %s\n", what, r, cl.errbuf);
	assert_true(strlen(cl.errbuf) > 0);
	hpq_client_close(&cl);
}

static void request_level(struct h_cluster *c)
{
	static char *argv_true[] = {(char *)"true"};
	static char *argv_empty[] = {(char *)""};
	static char long_name[4096];
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	Hpq__TaskSpec spec;

#define RESET()                                                                   \
	do {                                                                      \
		hpq__task_spec__init(&spec);                                      \
		hpq__resources__init(&res);                                       \
		res.cpus = 1;                                                     \
		spec.per_node = &res;                                             \
		spec.argv = argv_true;                                            \
		spec.n_argv = 1;                                                  \
		spec.cwd = c->dir;                                                \
	} while (0)

	RESET();
	spec.team = (char *)"no-such-team";
	expect_submit_refused(c, "submit: unknown team", &spec);
	RESET();
	spec.class_ = (char *)"no-such-class";
	expect_submit_refused(c, "submit: unknown class", &spec);
	RESET();
	spec.team = (char *)"../etc";
	expect_submit_refused(c, "submit: invalid team name", &spec);
	RESET();
	spec.pool = (char *)"bad pool/name";
	expect_submit_refused(c, "submit: invalid pool name", &spec);
	RESET();
	spec.n_argv = 0;
	spec.argv = NULL;
	expect_submit_refused(c, "submit: no command", &spec);
	RESET();
	spec.argv = argv_empty;
	expect_submit_refused(c, "submit: empty command", &spec);
	RESET();
	res.gpus = UINT32_MAX;
	expect_submit_refused(c, "submit: 4294967295 gpus", &spec);
	RESET();
	res.mem = UINT64_MAX;
	expect_submit_refused(c, "submit: 2^64-1 MiB", &spec);
	RESET();
	spec.nodes = UINT32_MAX;
	expect_submit_refused(c, "submit: 4294967295 nodes", &spec);
	RESET();
	memset(long_name, 'x', sizeof(long_name) - 1);
	spec.name = long_name;
	expect_submit_refused(c, "submit: 4095-byte name", &spec);
#undef RESET
}

/* ---------------------------------------------------------------- CLI */

static void expect_cli_error(struct h_cluster *c, const char *const *argv)
{
	struct h_out o;
	char cmd[512] = "hpq";

	for (const char *const *a = argv; *a; a++)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " '%s'", *a);
	h_hpqv(c, &o, argv);
	fprintf(stderr, "%s => %d: %s", cmd, o.code, o.err);
	if (o.code == 0)
		fail_msg("%s succeeded; stdout: %s", cmd, o.out);
	if (o.code != 1 && o.code != 2)
		fail_msg("%s exited %d; want 1 (error) or 2 (usage)", cmd, o.code);
	if (strlen(o.err) == 0)
		fail_msg("%s failed without a message on stderr", cmd);
	h_out_free(&o);
}

#define CLI_ERROR(c, ...) expect_cli_error(c, (const char *const[]){__VA_ARGS__, NULL})

static void cli_level(struct h_cluster *c)
{
	CLI_ERROR(c, "submit", "--team", "no-such-team", "--", "true");
	CLI_ERROR(c, "submit", "--class", "no-such-class", "--", "true");
	CLI_ERROR(c, "submit", "--gpus", "-1", "--", "true");
	CLI_ERROR(c, "submit", "--cpus", "-4", "--", "true");
	CLI_ERROR(c, "submit", "--cpus", "99999999999999999999", "--", "true");
	CLI_ERROR(c, "submit", "--mem", "-5G", "--", "true");
	CLI_ERROR(c, "submit", "--mem", "99999999999T", "--", "true");
	CLI_ERROR(c, "submit", "--mem", "lots", "--", "true");
	CLI_ERROR(c, "submit", "--nodes", "-2", "--", "true");
	CLI_ERROR(c, "submit", "--nodes", "0", "--", "true");
	CLI_ERROR(c, "submit", "--time", "banana", "--", "true");
	CLI_ERROR(c, "submit");
	CLI_ERROR(c, "submit", "--");
	CLI_ERROR(c, "submit", "--", "");
	CLI_ERROR(c, "show", "not-a-number");
	CLI_ERROR(c, "show", "987654321");
	CLI_ERROR(c, "cancel");
	CLI_ERROR(c, "list", "--state", "SLEEPING");
	CLI_ERROR(c, "frobnicate");
}

/* ---------------------------------------------------------------- the test */

struct snapshot {
	json_t *tasks, *teams, *classes;
};

static void take(struct h_cluster *c, struct snapshot *s)
{
	s->tasks = h_tasks(c);
	s->teams = h_hpq_json(c, "team", "list", NULL);
	s->classes = h_hpq_json(c, "class", "list", NULL);
}

static void same(const char *what, json_t *a, json_t *b)
{
	if (!json_equal(a, b)) {
		char *da = json_dumps(a, JSON_COMPACT), *db = json_dumps(b, JSON_COMPACT);
		fail_msg("%s changed:\nbefore: %s\nafter:  %s", what, da, db);
	}
}

static void bad_input(void **state)
{
	struct h_cluster *c = *state;
	struct snapshot before, after;
	uint64_t id;

	/* The raw TCP probes say Hello as a client without a MUNGE credential:
	 * past Hello they reach the request path only on an --insecure daemon
	 * (t_munge covers the MUNGE handshake). */
	c->insecure = true;
	h_daemon_start(c);
	h_agent_start(c, "node1", 1, 2, "1G");
	assert_true(h_wait_nodes(c, 1, 30000));
	/* Something stored: a team and a finished task. */
	assert_int_equal(h_hpq(c, NULL, "team", "add", "vision", NULL), 0);
	id = h_submit(c, "--name", "keep-me", "--", "sh", "-c", "exit 7", NULL);
	assert_true(h_wait_state(c, id, "FAILED", 30000));
	take(c, &before);

	socket_level(c, raw_unix, "unix");
	socket_level(c, raw_tcp, "tcp");
	request_level(c);
	cli_level(c);

	assert_serving(c);
	take(c, &after);
	same("the task list", before.tasks, after.tasks);
	same("the team list", before.teams, after.teams);
	same("the class list", before.classes, after.classes);
	json_decref(before.tasks);
	json_decref(before.teams);
	json_decref(before.classes);
	json_decref(after.tasks);
	json_decref(after.teams);
	json_decref(after.classes);

	/* And it still does real work. */
	id = h_submit(c, "--", "true", NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(bad_input, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
