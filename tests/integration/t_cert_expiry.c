/*
 * t_cert_expiry: a node's connection ends when the certificate that
 * vouches for it expires (docs/security.md, "Nodes"). hpqd runs as
 * shipped (TLS on TCP, its own CA) with [tls] node_cert_lifetime = 30s,
 * the shortest it takes; the agents dial its TCP port.
 *
 * - A node by hand (the test's own TLS client) joins, registers and
 *   heartbeats once a fifth of a second: every beat sent before its
 *   certificate's notAfter is answered, none sent after it is, the
 *   connection is closed, the node is no longer connected, and a
 *   "security" event names the expired certificate.
 * - An agent whose renewals hpqd refuses (its node holds 3 valid
 *   certificates already, taken by hand with its own certificate) is cut
 *   off when its certificate expires, with a "security" event, and cannot
 *   come back with it: it exits with status 2, as a refused join does (so
 *   that systemd does not start it again), and its log says why.
 * - An agent whose renewals work keeps its one connection past the
 *   notAfter of the certificate it connected with: the renewed
 *   certificate vouches for the connection from then on.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "clock.h"
#include "error.h"
#include "hpq.h"
#include "msg.h"
#include "pki.h"
#include "tls.h"

#include "harness.h"

struct token {
	char token[128];
	char hash[HPQ_PKI_HASH_LEN];
};

static void token_create(struct h_cluster *c, struct token *t, const char *uses)
{
	json_t *j = h_hpq_json(c, "node", "token", "create", "--uses", uses, "--ttl", "1h", NULL);

	snprintf(t->token, sizeof(t->token), "%s", h_str(j, "token"));
	snprintf(t->hash, sizeof(t->hash), "%s", h_str(j, "ca_hash"));
	json_decref(j);
}

static int log_count(const char *path, const char *text)
{
	char *log = h_read_file(path);
	int n = 0;

	for (const char *p = log; p && (p = strstr(p, text)); p += strlen(text))
		n++;
	free(log);
	return n;
}

/* ---------------------------------------------------------------- a node by hand */

static void expect(Hpq__Envelope *reply, int body, const char *what)
{
	if (!reply || (int)reply->body_case != body)
		fail_msg("%s: got %s%s%s", what, reply ? hpq_msg_name(reply) : "a closed connection",
			 reply && reply->body_case == HPQ__ENVELOPE__BODY_ERROR ? ": " : "",
			 reply && reply->body_case == HPQ__ENVELOPE__BODY_ERROR
				 ? reply->error->message : "");
	hpq_msg_free(reply);
}

/* Joins as name by hand: *pem gets the key and the certificate (one PEM,
 * as node.pem holds them), *ca the cluster CA, *not_after its expiry. */
static void raw_join(struct h_cluster *c, const char *name, const struct token *t, char **pem,
		     char **ca, int64_t *not_after)
{
	struct hpq_tls_config cfg = { .pin_hash = t->hash };
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__JoinRequest jr = HPQ__JOIN_REQUEST__INIT;
	char err[256], *key = NULL, *csr = NULL;
	struct h_tls r;

	assert_true(h_tls_open(&r, c->port, &cfg));
	expect(h_tls_hello(&r, name), HPQ__ENVELOPE__BODY_HELLO_REPLY, "Hello to join");
	assert_int_equal(hpq_pki_make_request(name, &key, &csr, err, sizeof(err)), 0);
	jr.token = (char *)t->token;
	jr.csr.data = (uint8_t *)csr;
	jr.csr.len = strlen(csr);
	env.body_case = HPQ__ENVELOPE__BODY_JOIN;
	env.join = &jr;
	reply = h_tls_call(&r, 2, &env);
	assert_non_null(reply);
	assert_int_equal(reply->body_case, HPQ__ENVELOPE__BODY_JOIN_REPLY);
	assert_true(asprintf(pem, "%s%.*s", key, (int)reply->join_reply->certificate.len,
			     (const char *)reply->join_reply->certificate.data) > 0);
	assert_true(asprintf(ca, "%.*s", (int)reply->join_reply->ca.len,
			     (const char *)reply->join_reply->ca.data) > 0);
	*not_after = reply->join_reply->not_after_ms / 1000;
	hpq_msg_free(reply);
	free(key);
	free(csr);
	h_tls_close(&r);
}

/*
 * Node `as` registers by hand and beats until its connection ends: every
 * beat sent before not_after is answered, none sent at or after it (those
 * reach hpqd between two rounds of its reaper too), and the connection
 * ends soon after not_after.
 */
static void beat_past_expiry(struct h_cluster *c, const char *pem, const char *ca,
			     const char *as, int64_t not_after)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__Register reg = HPQ__REGISTER__INIT;
	struct h_tls r;
	uint64_t id = 10;
	int answered_late = 0, beats = 0;

	h_tls_open_node(&r, c->port, pem, ca);
	expect(h_tls_hello(&r, as), HPQ__ENVELOPE__BODY_HELLO_REPLY, "Hello");
	reg.name = (char *)as;
	env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
	env.register_ = &reg;
	expect(h_tls_call(&r, 2, &env), HPQ__ENVELOPE__BODY_REGISTER_REPLY, "Register");
	assert_true(H_WAIT_FOR(c, h_node_connected(c, as), 10000));
	for (;;) {
		int64_t sent = hpq_now_ms();

		if (sent > (not_after + 20) * 1000)
			fail_msg("node %s's connection is still served 20 s after its certificate "
				 "expired", as);
		reply = h_tls_beat(&r, id++);
		if (!reply || reply->body_case != HPQ__ENVELOPE__BODY_OK) {
			if (sent < (not_after - 1) * 1000)
				fail_msg("node %s's beat %d s before its certificate expired: %s", as,
					 (int)(not_after - sent / 1000),
					 reply ? hpq_msg_name(reply) : "closed");
			if (reply && reply->body_case == HPQ__ENVELOPE__BODY_ERROR)
				fprintf(stderr, "%s: %s\n", as, reply->error->message);
			hpq_msg_free(reply);
			break;
		}
		beats++;
		if (sent >= not_after * 1000) {
			answered_late++;
			fprintf(stderr, "%s: a beat sent %" PRId64 " ms after expiry was answered\n",
				as, sent - not_after * 1000);
		}
		hpq_msg_free(reply);
		h_sleep_ms(200);
	}
	fprintf(stderr, "%s: %d beats answered, %d after expiry\n", as, beats, answered_late);
	assert_true(beats > 0);
	assert_int_equal(answered_late, 0);
	/* Nothing more is read from it. */
	reply = h_tls_beat(&r, id++);
	if (reply && reply->body_case == HPQ__ENVELOPE__BODY_OK)
		fail_msg("node %s's connection answered a beat after it was closed", as);
	hpq_msg_free(reply);
	h_tls_close(&r);
}

/* Renewals by hand with pem until hpqd refuses one for the node's 3 valid
 * certificates: its agent's own renewals are refused from then on. */
static void fill_renewals(struct h_cluster *c, const char *pem, const char *ca, const char *as)
{
	struct h_tls r;
	bool refused = false;

	h_tls_open_node(&r, c->port, pem, ca);
	expect(h_tls_hello(&r, as), HPQ__ENVELOPE__BODY_HELLO_REPLY, "Hello");
	for (int i = 0; i < 5 && !refused; i++) {
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
		refused = reply->body_case == HPQ__ENVELOPE__BODY_ERROR;
		if (refused)
			assert_int_equal(reply->error->code, HPQ_EBUSY);
		hpq_msg_free(reply);
	}
	assert_true(refused);
	h_tls_close(&r);
}

static int64_t cert_not_after(const char *path)
{
	struct hpq_cert_info info;
	char *pem = h_read_file(path), err[256];

	assert_non_null(pem);
	assert_int_equal(hpq_pki_cert_info(pem, strlen(pem), &info, err, sizeof(err)), 0);
	free(pem);
	return info.not_after;
}

static void expiry(void **state)
{
	struct h_cluster *c = *state;
	struct token t;
	char *pem, *ca, *starved_pem;
	int64_t hand_expires, steady_expires, starved_expires;
	int steady, starved;

	h_daemon_config(c, "[tls]\nnode_cert_lifetime = 30s\n");
	h_daemon_start(c);
	token_create(c, &t, "3");
	{
		const char *extra[] = { "--join", t.token, "--ca-hash", t.hash, NULL };

		steady = h_agent_start_tcp(c, "steady", 0, 1, "1G", extra);
		starved = h_agent_start_tcp(c, "starved", 0, 1, "1G", extra);
	}
	raw_join(c, "hand", &t, &pem, &ca, &hand_expires);
	assert_true(H_WAIT_FOR(c, h_node_connected(c, "steady") && h_node_connected(c, "starved"),
			       30000));
	steady_expires = cert_not_after(h_path(c, "steady/tls/node.pem"));
	starved_expires = cert_not_after(h_path(c, "starved/tls/node.pem"));

	/* starved's renewals are refused from now on. */
	starved_pem = h_read_file(h_path(c, "starved/tls/node.pem"));
	assert_non_null(starved_pem);
	fill_renewals(c, starved_pem, ca, "starved");
	free(starved_pem);

	/* By hand: served until its certificate's notAfter, not after. */
	beat_past_expiry(c, pem, ca, "hand", hand_expires);
	assert_true(H_WAIT_FOR(c, !h_node_connected(c, "hand"), 10000));
	assert_true(h_has_event(c, "security", "of node hand expired"));

	/* The agent refused its renewals is cut off, and stays off. */
	assert_true(H_WAIT_FOR(c, hpq_now_ms() > (starved_expires + 1) * 1000, 60000));
	assert_true(H_WAIT_FOR(c, h_has_event(c, "security", "of node starved expired"), 15000));
	assert_true(H_WAIT_FOR(c, !h_node_connected(c, "starved"), 15000));
	assert_true(h_file_has(c->agents[starved].log, "did not renew this node's certificate"));
	/* It was told why. */
	assert_true(h_file_has(c->agents[starved].log, "of node starved expired on"));
	if (!H_WAIT_FOR(c, c->agents[starved].pid == 0, 30000))
		fail_msg("the agent whose certificate expired still runs");
	assert_true(WIFEXITED(c->agents[starved].status) &&
		    WEXITSTATUS(c->agents[starved].status) == 2);
	assert_true(h_file_has(c->agents[starved].log, "tls/node.pem) expired on"));
	assert_true(h_file_has(c->agents[starved].log, "until it joins"));
	assert_false(h_node_connected(c, "starved"));

	/* The agent that renews keeps its one connection past the notAfter of
	 * the certificate it connected with. */
	assert_true(H_WAIT_FOR(c, hpq_now_ms() > (steady_expires + 8) * 1000, 60000));
	assert_true(h_node_connected(c, "steady"));
	assert_true(h_has_event(c, "node", "renewed: certificate"));
	assert_false(h_has_event(c, "security", "of node steady"));
	assert_int_equal(log_count(c->agents[steady].log, "uplink: registered with hpqd"), 1);
	assert_false(h_file_has(c->agents[steady].log, "reconnecting"));
	free(pem);
	free(ca);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(expiry, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
