/*
 * test_common_client.c: the blocking client against a small scripted
 * server running in a thread on a Unix socket (and once over TCP): the
 * Hello exchange, reply matching by id past pushes and stale replies,
 * Error replies, the cluster-key Auth step, timeouts and a closed peer.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "client.h"
#include "error.h"
#include "hpq.h"
#include "msg.h"

enum mode { MODE_NORMAL, MODE_HELLO_ERROR };

struct server {
	int lfd;
	enum mode mode;
	pthread_t thread;
	/* what the server saw */
	char hello_name[64];
	int hello_role;
	unsigned hello_version;
};

static char dir[] = "/tmp/hpq-test-client-XXXXXX";
static char sock_path[128];

static Hpq__Envelope *srv_recv(int fd, struct hpq_framer *f)
{
	for (;;) {
		const uint8_t *p;
		size_t len;
		uint8_t buf[4096];
		ssize_t n;

		if (hpq_framer_next(f, &p, &len) == 1)
			return hpq_msg_decode(p, len);
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return NULL;
		if (hpq_framer_feed(f, buf, (size_t)n) < 0)
			return NULL;
	}
}

static void srv_send(int fd, Hpq__Envelope *env, bool bytewise)
{
	size_t len;
	uint8_t *buf = hpq_msg_encode(env, &len);

	if (bytewise) {
		for (size_t i = 0; i < len; i++)
			if (write(fd, buf + i, 1) != 1)
				break;
	} else if (write(fd, buf, len) != (ssize_t)len) {
		/* the client went away; the test notices */
	}
	free(buf);
}

static void srv_error(int fd, uint64_t id, int code, const char *msg)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Error err = HPQ__ERROR__INIT;

	err.code = code;
	err.message = (char *)msg;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_ERROR;
	env.error = &err;
	srv_send(fd, &env, false);
}

static void srv_ok(int fd, uint64_t id)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__Ok ok = HPQ__OK__INIT;

	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_OK;
	env.ok = &ok;
	srv_send(fd, &env, false);
}

static void srv_list_reply(int fd, uint64_t id, const char *task_name, bool bytewise)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ListReply lr = HPQ__LIST_REPLY__INIT;
	Hpq__Task task = HPQ__TASK__INIT, *tasks[1] = {&task};

	task.id = 5;
	task.name = (char *)task_name;
	lr.n_tasks = 1;
	lr.tasks = tasks;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_LIST_REPLY;
	env.list_reply = &lr;
	srv_send(fd, &env, bytewise);
}

/* Serves one connection according to s->mode. */
static void *srv_main(void *arg)
{
	struct server *s = arg;
	struct hpq_framer f = HPQ_FRAMER_INIT(HPQ_FRAME_MAX);
	Hpq__Envelope *req, rep = HPQ__ENVELOPE__INIT;
	Hpq__HelloReply hr = HPQ__HELLO_REPLY__INIT;
	int fd = accept(s->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	req = srv_recv(fd, &f);
	if (!req || req->body_case != HPQ__ENVELOPE__BODY_HELLO)
		goto out;
	snprintf(s->hello_name, sizeof(s->hello_name), "%s", req->hello->name);
	s->hello_role = req->hello->role;
	s->hello_version = req->hello->protocol_version;
	if (s->mode == MODE_HELLO_ERROR) {
		srv_error(fd, req->id, HPQ_EVERSION, "protocol version 1 is not supported");
		goto out;
	}
	hr.user = "alice";
	hr.admin = true;
	hr.software_version = "9.9.9";
	hr.protocol_version = HPQ_PROTOCOL_VERSION;
	rep.id = req->id;
	rep.body_case = HPQ__ENVELOPE__BODY_HELLO_REPLY;
	rep.hello_reply = &hr;
	srv_send(fd, &rep, false);
	hpq_msg_free(req);

	while ((req = srv_recv(fd, &f))) {
		switch (req->body_case) {
		case HPQ__ENVELOPE__BODY_LIST:
			/* A push, a stale reply, then the real one a byte at a time. */
			srv_ok(fd, 0);
			srv_list_reply(fd, req->id + 100, "stale", false);
			srv_list_reply(fd, req->id, "fresh", true);
			break;
		case HPQ__ENVELOPE__BODY_SHOW:
			srv_error(fd, req->id, HPQ_ENOTFOUND, "no task 5");
			break;
		case HPQ__ENVELOPE__BODY_CANCEL:
			break; /* never answered: the client times out */
		case HPQ__ENVELOPE__BODY_NODE_LIST:
			goto out; /* hang up */
		default:
			srv_error(fd, req->id, HPQ_EPROTO, "unexpected");
			break;
		}
		hpq_msg_free(req);
	}
	req = NULL;
out:
	hpq_msg_free(req);
	hpq_framer_release(&f);
	close(fd);
	return NULL;
}

static void srv_start_unix(struct server *s, enum mode mode)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	unlink(sock_path);
	assert_true(strlen(sock_path) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, sock_path, strlen(sock_path) + 1);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_stop(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->lfd);
}

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/hpqd.sock", dir);
	unsetenv("HPQ_SOCKET");
	unsetenv("HPQ_SERVER");
	unsetenv("HPQ_CA_FILE");
	/* This server speaks plain TCP (TLS is the integration tests'). */
	setenv("HPQ_INSECURE", "1", 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static Hpq__Envelope list_req(Hpq__ListRequest *lr)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;

	env.body_case = HPQ__ENVELOPE__BODY_LIST;
	env.list = lr;
	return env;
}

static void test_hello_and_calls(void **state)
{
	struct server s;
	struct hpq_client c;
	struct passwd *pw = getpwuid(geteuid());
	Hpq__ListRequest lr = HPQ__LIST_REQUEST__INIT;
	Hpq__ShowRequest sr = HPQ__SHOW_REQUEST__INIT;
	Hpq__Envelope req, show = HPQ__ENVELOPE__INIT, *rep = NULL;

	srv_start_unix(&s, MODE_NORMAL);
	assert_int_equal(hpq_client_connect(&c, sock_path, 5000), 0);
	assert_string_equal(c.user, "alice");
	assert_true(c.admin);
	assert_string_equal(c.server_version, "9.9.9");

	for (int i = 0; i < 3; i++) {
		uint64_t id_before = c.next_id;

		req = list_req(&lr);
		rep = NULL;
		assert_int_equal(hpq_client_call(&c, &req, &rep), 0);
		assert_non_null(rep);
		assert_int_equal(req.id, id_before);
		assert_int_equal(rep->id, req.id);
		assert_int_equal(rep->body_case, HPQ__ENVELOPE__BODY_LIST_REPLY);
		assert_string_equal(rep->list_reply->tasks[0]->name, "fresh");
		hpq_msg_free(rep);
	}

	show.body_case = HPQ__ENVELOPE__BODY_SHOW;
	show.show = &sr;
	rep = NULL;
	assert_int_equal(hpq_client_call(&c, &show, &rep), HPQ_ENOTFOUND);
	assert_null(rep);
	assert_string_equal(c.errbuf, "no task 5");

	hpq_client_close(&c);
	srv_stop(&s);
	assert_string_equal(s.hello_name, pw ? pw->pw_name : "");
	assert_int_equal(s.hello_role, HPQ__ROLE__ROLE_CLIENT);
	assert_int_equal(s.hello_version, HPQ_PROTOCOL_VERSION);
}

static void test_timeout(void **state)
{
	struct server s;
	struct hpq_client c;
	Hpq__CancelRequest cr = HPQ__CANCEL_REQUEST__INIT;
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *rep = NULL;
	struct timespec t0, t1;
	long ms;

	srv_start_unix(&s, MODE_NORMAL);
	assert_int_equal(hpq_client_connect(&c, sock_path, 300), 0);
	req.body_case = HPQ__ENVELOPE__BODY_CANCEL;
	req.cancel = &cr;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(hpq_client_call(&c, &req, &rep), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 250 && ms < 3000);
	assert_null(rep);
	assert_non_null(strstr(c.errbuf, "no reply"));
	hpq_client_close(&c);
	srv_stop(&s);
}

static void test_peer_closes(void **state)
{
	struct server s;
	struct hpq_client c;
	Hpq__NodeListRequest nr = HPQ__NODE_LIST_REQUEST__INIT;
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *rep = NULL;

	srv_start_unix(&s, MODE_NORMAL);
	assert_int_equal(hpq_client_connect(&c, sock_path, 5000), 0);
	req.body_case = HPQ__ENVELOPE__BODY_NODE_LIST;
	req.node_list = &nr;
	assert_int_equal(hpq_client_call(&c, &req, &rep), HPQ_EUNAVAIL);
	assert_null(rep);
	srv_stop(&s);
	/* Writing to the closed peer fails cleanly (no SIGPIPE) at the latest
	 * on the second try. */
	assert_true(hpq_client_call(&c, &req, &rep) < 0);
	assert_true(hpq_client_call(&c, &req, &rep) < 0);
	hpq_client_close(&c);
}

static void test_hello_error(void **state)
{
	struct server s;
	struct hpq_client c;

	srv_start_unix(&s, MODE_HELLO_ERROR);
	assert_int_equal(hpq_client_connect(&c, sock_path, 5000), HPQ_EVERSION);
	assert_string_equal(c.errbuf, "protocol version 1 is not supported");
	assert_int_equal(c.fd, -1);
	hpq_client_close(&c); /* harmless after a failed connect */
	srv_stop(&s);
}

static void test_default_address(void **state)
{
	struct server s;
	struct hpq_client c;

	/* $HPQ_SOCKET wins over $HPQ_SERVER. */
	setenv("HPQ_SOCKET", sock_path, 1);
	setenv("HPQ_SERVER", "127.0.0.1:1", 1);
	srv_start_unix(&s, MODE_NORMAL);
	assert_int_equal(hpq_client_connect(&c, NULL, 5000), 0);
	hpq_client_close(&c);
	srv_stop(&s);
	unsetenv("HPQ_SOCKET");
	unsetenv("HPQ_SERVER");
}

static void test_tcp(void **state)
{
	struct server s;
	struct hpq_client c;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof(sin);
	char addr[64];

	memset(&s, 0, sizeof(s));
	s.mode = MODE_NORMAL;
	s.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s.lfd >= 0);
	assert_int_equal(bind(s.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s.lfd, 4), 0);
	assert_int_equal(getsockname(s.lfd, (struct sockaddr *)&sin, &slen), 0);
	assert_int_equal(pthread_create(&s.thread, NULL, srv_main, &s), 0);

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	assert_int_equal(hpq_client_connect(&c, addr, 5000), 0);
	assert_string_equal(c.user, "alice");
	hpq_client_close(&c);
	srv_stop(&s);
}

static void test_connect_failures(void **state)
{
	struct hpq_client c;
	char missing[160];

	snprintf(missing, sizeof(missing), "%s/nothing.sock", dir);
	assert_int_equal(hpq_client_connect(&c, missing, 1000), -ENOENT);
	assert_non_null(strstr(c.errbuf, missing));
	hpq_client_close(&c);

	assert_int_equal(hpq_client_connect(&c, "localhost:99999", 1000), HPQ_EINVAL);
	assert_int_equal(hpq_client_connect(&c, "localhost:", 1000), HPQ_EINVAL);
	assert_int_equal(hpq_client_connect(&c, ":7420", 1000), HPQ_EINVAL);
	assert_int_equal(hpq_client_connect(&c, "[::1", 1000), HPQ_EINVAL);
	assert_non_null(strstr(c.errbuf, "HOST:PORT"));
	/* Port 1 on loopback: nothing listens, refused at once. */
	assert_int_equal(hpq_client_connect(&c, "127.0.0.1:1", 1000), -ECONNREFUSED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_and_calls),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_peer_closes),
		cmocka_unit_test(test_hello_error),
		cmocka_unit_test(test_default_address),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_connect_failures),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
