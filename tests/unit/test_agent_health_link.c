/*
 * test_agent_health_link.c: the monitors that look at the connection to
 * hpqd, against a stand-in daemon on loopback that answers Hello and
 * Register (with its clock set 5 s ahead of ours). The uplink measures the
 * offset from RegisterReply.daemon_time within half the round trip and
 * carries it forward on the monotonic clock; the clock monitor reports
 * it; the network monitor finds the loopback interface up and reports
 * nothing. A daemon that sends no time is not judged at all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "conn.h"
#include "health.h"
#include "hpq.h"
#include "monitor.h"
#include "uplink.h"
#include "xalloc.h"

struct daemon_stub {
	struct ev_loop *loop;
	int lfd;
	ev_io accept_w;
	struct conn *conn;
	int64_t skew_ms;            /* added to our clock in daemon_time; 0: send none */
	char server[64];
};

struct fixture {
	struct ev_loop *loop;
	struct daemon_stub d;
	struct uplink uplink;
	struct health h;
	bool ready;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ the stand-in daemon */

static void stub_frame(struct conn *c, const Hpq__Envelope *env)
{
	struct daemon_stub *d = c->data;
	Hpq__Envelope out = HPQ__ENVELOPE__INIT;
	Hpq__HelloReply hr = HPQ__HELLO_REPLY__INIT;
	Hpq__RegisterReply rr = HPQ__REGISTER_REPLY__INIT;

	out.id = env->id;
	switch (env->body_case) {
	case HPQ__ENVELOPE__BODY_HELLO:
		hr.protocol_version = HPQ_PROTOCOL_VERSION;
		hr.software_version = (char *)"stub";
		out.body_case = HPQ__ENVELOPE__BODY_HELLO_REPLY;
		out.hello_reply = &hr;
		conn_send(c, &out);
		return;
	case HPQ__ENVELOPE__BODY_REGISTER:
		rr.heartbeat_s = 10;
		rr.daemon_time = d->skew_ms ? now_ms() + d->skew_ms : 0;
		out.body_case = HPQ__ENVELOPE__BODY_REGISTER_REPLY;
		out.register_reply = &rr;
		conn_send(c, &out);
		return;
	default:
		return; /* heartbeats */
	}
}

static void stub_closed(struct conn *c, int error)
{
	struct daemon_stub *d = c->data;

	if (d->conn == c)
		d->conn = NULL;
}

static void stub_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct daemon_stub *d = w->data;
	int fd = accept4(d->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	d->conn = conn_new(loop, fd, stub_frame, stub_closed, d);
}

static void stub_start(struct daemon_stub *d, struct ev_loop *loop, int64_t skew_ms)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);

	memset(d, 0, sizeof(*d));
	d->loop = loop;
	d->skew_ms = skew_ms;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(d->lfd >= 0);
	assert_int_equal(bind(d->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(d->lfd, 4), 0);
	assert_int_equal(getsockname(d->lfd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(d->server, sizeof(d->server), "127.0.0.1:%u", ntohs(sin.sin_port));
	ev_io_init(&d->accept_w, stub_accept, d->lfd, EV_READ);
	d->accept_w.data = d;
	ev_io_start(loop, &d->accept_w);
}

static void stub_stop(struct daemon_stub *d)
{
	ev_io_stop(d->loop, &d->accept_w);
	if (d->conn)
		conn_close(d->conn, 0);
	close(d->lfd);
}

/* ------------------------------------------------------------ the agent side */

static void fill_register(void *data, Hpq__Register *reg, const char *local_addr)
{
	reg->pool = (char *)"default";
}

static void release_register(void *data, Hpq__Register *reg)
{
}

static void ready(void *data)
{
	struct fixture *f = data;

	f->ready = true;
	ev_break(f->loop, EVBREAK_ALL);
}

static void lost(void *data)
{
}

static void tick(void *data)
{
}

static void message(void *data, const Hpq__Envelope *env)
{
}

static const struct uplink_ops ops = {
	.fill_register = fill_register,
	.release_register = release_register,
	.ready = ready,
	.lost = lost,
	.tick = tick,
	.message = message,
};

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static struct fixture *connect_to_stub(int64_t skew_ms)
{
	static const struct monitor *const table[] = {&monitor_clock, &monitor_netif, NULL};
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct uplink_config lc = {0};
	struct health_config hc;
	ev_timer guard;

	f->loop = ev_default_loop(0);
	stub_start(&f->d, f->loop, skew_ms);
	lc.server = f->d.server;
	lc.name = "n1";
	lc.heartbeat = 10;
	lc.insecure = true; /* the stand-in speaks plaintext */
	assert_int_equal(uplink_init(&f->uplink, f->loop, &lc, &ops, f, NULL, 0), 0);
	uplink_start(&f->uplink);
	ev_timer_init(&guard, guard_cb, 10.0, 0.0);
	ev_timer_start(f->loop, &guard);
	ev_run(f->loop, 0);
	ev_timer_stop(f->loop, &guard);
	assert_true(f->ready);

	health_config_init(&hc);
	hc.uplink = &f->uplink;
	health_init(&f->h, f->loop, &hc, table, NULL, NULL);
	return f;
}

static void fixture_free(struct fixture *f)
{
	health_release(&f->h);
	uplink_release(&f->uplink);
	stub_stop(&f->d);
	free(f);
}

static void clock_offset_from_register_reply(void **state)
{
	struct fixture *f = connect_to_stub(5000);
	int64_t offset, err;
	const Hpq__Finding *x;

	assert_true(uplink_clock_offset(&f->uplink, &offset, &err));
	assert_true(err >= 1 && err < 1000);
	assert_true(offset >= 5000 - err - 5 && offset <= 5000 + err + 5);

	health_run(&f->h);
	x = health_find(&f->h, "runtime", "clock-offset");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_non_null(strstr(x->message, "behind hpqd's"));
	/* The connection is on lo, which is up. */
	assert_null(health_find(&f->h, "network", "netif-down"));
	assert_int_equal(f->h.nfindings, 1);

	/* Our clock "jumps" 40 s ahead: seen without a new registration. */
	f->uplink.clock_wall_ms -= 40000;
	assert_true(uplink_clock_offset(&f->uplink, &offset, &err));
	assert_true(offset >= -35000 - err - 5 && offset <= -35000 + err + 5);
	health_run(&f->h);
	x = health_find(&f->h, "runtime", "clock-offset");
	assert_string_equal(x->severity, "fatal");
	assert_non_null(strstr(x->message, "ahead of hpqd's"));
	fixture_free(f);
}

static void no_daemon_time_no_judgement(void **state)
{
	struct fixture *f = connect_to_stub(0);
	int64_t offset, err;

	assert_false(uplink_clock_offset(&f->uplink, &offset, &err));
	assert_true(uplink_socket(&f->uplink) >= 0);
	health_run(&f->h);
	assert_int_equal(f->h.nfindings, 0);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(clock_offset_from_register_reply),
		cmocka_unit_test(no_daemon_time_no_judgement),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
