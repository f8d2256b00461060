/*
 * test_daemon_ca: hpqd's server certificate while it runs (ca.h).
 *
 *   - renew: a certificate with a third of its life left or less is made
 *     anew by ca_renew_server, and the new TLS context speaks with it (a
 *     client's handshake sees its serial); one with more left is kept, the
 *     context too; a failed renewal keeps the old context and says why;
 *   - every: how often hpqd asks, a sixth of the lifetime, at most an hour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca.h"
#include "config.h"
#include "tls.h"
#include "xalloc.h"

/* The certificate a client sees when it shakes hands with tls. */
static void handshake(struct hpq_tls_ctx *server, const char *ca_pem, struct hpq_cert_info *seen)
{
	struct hpq_tls_config cc = { .ca_pem = ca_pem };
	char err[256];
	struct hpq_tls_ctx *client = hpq_tls_ctx_new(false, &cc, err, sizeof(err));
	struct hpq_tls *c, *s;
	unsigned char buf[1 << 16];
	bool moved = true;

	if (!client)
		fail_msg("client context: %s", err);
	c = hpq_tls_new(client, "127.0.0.1");
	s = hpq_tls_new(server, NULL);
	while (moved) {
		size_t n;

		moved = false;
		while ((n = hpq_tls_out_take(c, buf, sizeof(buf))) > 0) {
			assert_int_equal(hpq_tls_feed(s, buf, n), 0);
			moved = true;
		}
		while ((n = hpq_tls_out_take(s, buf, sizeof(buf))) > 0) {
			assert_int_equal(hpq_tls_feed(c, buf, n), 0);
			moved = true;
		}
	}
	if (!hpq_tls_ready(c))
		fail_msg("no handshake: %s", hpq_tls_error(c));
	assert_true(hpq_tls_peer(c, seen));
	hpq_tls_free(c);
	hpq_tls_free(s);
	hpq_tls_ctx_free(client);
}

static void test_renew(void **ts)
{
	char dir[] = "/tmp/hpq-ca-XXXXXX", path[64], err[512];
	struct hpq_cert_info first, now, seen;
	struct hpq_tls_ctx *tls;
	struct config cfg;
	struct ca *ca;
	bool renewed;

	(void)ts;
	assert_non_null(mkdtemp(dir));
	config_init(&cfg);
	free(cfg.state_dir);
	cfg.state_dir = xstrdup(dir);
	cfg.tls.server_cert_lifetime_s = 90 * 86400;
	if (ca_open(&cfg, "test", &ca, err, sizeof(err)) < 0)
		fail_msg("ca_open: %s", err);
	first = *ca_server_cert(ca);
	tls = ca_server_tls(ca);
	handshake(tls, ca_pem(ca), &seen);
	assert_string_equal(seen.serial, first.serial);

	/* 90 days left of 90: kept, and so is the context. */
	assert_int_equal(ca_renew_server(ca, &cfg, &renewed, err, sizeof(err)), 0);
	assert_false(renewed);
	assert_ptr_equal(ca_server_tls(ca), tls);

	/* Asked for 365 days, 90 left is less than a third: made anew, as
	 * it would be 244 days into a 365-day certificate. */
	cfg.tls.server_cert_lifetime_s = 365 * 86400;
	assert_int_equal(ca_renew_server(ca, &cfg, &renewed, err, sizeof(err)), 0);
	assert_true(renewed);
	now = *ca_server_cert(ca);
	assert_string_not_equal(now.serial, first.serial);
	assert_true(now.not_after - (int64_t)time(NULL) > 360 * 86400);
	handshake(ca_server_tls(ca), ca_pem(ca), &seen);
	assert_string_equal(seen.serial, now.serial);
	assert_int_equal(ca_renew_server(ca, &cfg, &renewed, err, sizeof(err)), 0);
	assert_false(renewed);

	/* A renewal that fails (its key file readable by others, which the
	 * rules refuse) keeps the context that speaks now, and says why. */
	cfg.tls.server_cert_lifetime_s = 3650 * 86400;
	snprintf(path, sizeof(path), "%s/tls/server.key", dir);
	tls = ca_server_tls(ca);
	assert_int_equal(chmod(path, 0644), 0);
	assert_true(ca_renew_server(ca, &cfg, &renewed, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "chmod"));
	assert_false(renewed);
	assert_ptr_equal(ca_server_tls(ca), tls);
	handshake(ca_server_tls(ca), ca_pem(ca), &seen);
	assert_string_equal(seen.serial, now.serial);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(ca_renew_server(ca, &cfg, &renewed, err, sizeof(err)), 0);
	assert_true(renewed);
	ca_free(ca);
	config_release(&cfg);
	snprintf(err, sizeof(err), "rm -rf '%s'", dir);
	assert_int_equal(system(err), 0);
}

static void test_every(void **ts)
{
	struct config cfg;

	(void)ts;
	config_init(&cfg);
	cfg.tls.server_cert_lifetime_s = 365 * 86400;
	assert_int_equal(ca_renew_every_ms(&cfg), 3600 * 1000);
	cfg.tls.server_cert_lifetime_s = 86400;
	assert_int_equal(ca_renew_every_ms(&cfg), 3600 * 1000);
	cfg.tls.server_cert_lifetime_s = 3 * 3600;
	assert_int_equal(ca_renew_every_ms(&cfg), 1800 * 1000);
	config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_renew),
		cmocka_unit_test(test_every),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
