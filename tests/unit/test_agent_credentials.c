/*
 * test_agent_credentials.c: the node's key, certificate and CA in
 * WORK-DIR/tls. A real cluster CA (pki.h) issues the certificates. Saved
 * files are 0600 in a 0700 directory and load again as they were; files
 * or a directory open to others are refused with the fix in the words; an
 * answer from hpqd that does not fit (another node's certificate, a CA
 * that is not the pinned one, a certificate for another key, bytes with a
 * NUL) changes nothing on disk; a join token is read from a private file
 * only.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "credentials.h"
#include "error.h"
#include "pki.h"

static char root[] = "/tmp/hpq-test-creds-XXXXXX";
static struct hpq_ca *ca;

#define assert_ok(call)                                                              \
	do {                                                                         \
		int r_ = (call);                                                     \
		if (r_ != 0)                                                         \
			fail_msg("%s: %d (%s)", #call, r_, err);                     \
	} while (0)

static char *path(const char *a, const char *b)
{
	static char buf[16][600];
	static int i;
	char *p = buf[i++ % 16];

	if (b)
		snprintf(p, 600, "%s/%s/%s", root, a, b);
	else
		snprintf(p, 600, "%s/%s", root, a);
	return p;
}

/* A fresh work directory. */
static const char *work(const char *name)
{
	const char *p = path(name, NULL);

	assert_int_equal(mkdir(p, 0755), 0);
	return p;
}

static mode_t mode_of(const char *p)
{
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	return st.st_mode & 07777;
}

static char *slurp(const char *p)
{
	FILE *f = fopen(p, "re");
	char *buf = calloc(1, 1 << 17);
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, (1 << 17) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A key and the CA's certificate for it, as hpqd issues on a join. */
static void issue(const char *node, const char *pool, char **key, char **cert)
{
	struct hpq_cert_info info;
	char *csr, err[256];

	assert_ok(hpq_pki_make_request(node, key, &csr, err, sizeof(err)));
	assert_ok(hpq_ca_sign_node(ca, csr, strlen(csr), node, pool, 3600, cert, &info, err,
				   sizeof(err)));
	free(csr);
}

static int setup(void **state)
{
	char err[256];

	assert_non_null(mkdtemp(root));
	assert_int_equal(mkdir(path("ca", NULL), 0700), 0);
	assert_ok(hpq_ca_open(path("ca", NULL), "test", true, &ca, err, sizeof(err)));
	return 0;
}

static int teardown(void **state)
{
	char cmd[700];

	hpq_ca_free(ca);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void fresh_dir_has_none(void **state)
{
	const char *w = work("fresh");
	struct creds c;
	char err[256];

	assert_ok(creds_open(&c, w, "n1", err, sizeof(err)));
	assert_false(c.present);
	assert_int_equal(mode_of(path("fresh", "tls")), 0700);
	assert_string_equal(c.node_path, path("fresh", "tls/node.pem"));
	creds_release(&c);
}

static void store_and_load(void **state)
{
	const char *w = work("store");
	const char *ca_pem = hpq_ca_pem(ca);
	struct creds c;
	char *key, *cert, *text, err[512];

	issue("n1", "gpu", &key, &cert);
	assert_ok(creds_open(&c, w, "n1", err, sizeof(err)));
	assert_ok(creds_store(&c, "n1", key, cert, strlen(cert), ca_pem, strlen(ca_pem),
			      hpq_ca_hash(ca), err, sizeof(err)));
	assert_true(c.present);
	assert_string_equal(c.info.cn, "n1");
	assert_string_equal(c.info.ou, "gpu");
	assert_string_equal(c.ca_hash, hpq_ca_hash(ca));
	creds_release(&c);

	assert_int_equal(mode_of(path("store", "tls/node.pem")), 0600);
	assert_int_equal(mode_of(path("store", "tls/ca.crt")), 0600);
	/* One file: the key, then the certificate. */
	text = slurp(path("store", "tls/node.pem"));
	assert_non_null(strstr(text, "PRIVATE KEY-----"));
	assert_true(strstr(text, "PRIVATE KEY-----") < strstr(text, "BEGIN CERTIFICATE"));
	free(text);

	assert_ok(creds_open(&c, w, "n1", err, sizeof(err)));
	assert_true(c.present);
	assert_string_equal(c.key_pem, key);
	assert_string_equal(c.cert_pem, cert);
	assert_string_equal(c.info.cn, "n1");
	assert_string_equal(c.ca_hash, hpq_ca_hash(ca));
	creds_release(&c);

	/* Another name for the same credentials: an error that says so. */
	assert_int_equal(creds_open(&c, w, "n2", err, sizeof(err)) < 0, 1);
	assert_non_null(strstr(err, "for node 'n1'"));
	assert_non_null(strstr(err, "'n2'"));
	creds_release(&c);
	free(key);
	free(cert);
}

/* A renewal: a new key and certificate, the same CA. */
static void renewal_replaces_the_pair(void **state)
{
	const char *w = work("renew");
	const char *ca_pem = hpq_ca_pem(ca);
	struct creds c;
	char *key, *cert, *key2, *cert2, serial[HPQ_PKI_SERIAL_LEN], err[512];

	issue("n1", "", &key, &cert);
	issue("n1", "", &key2, &cert2);
	assert_ok(creds_open(&c, w, "n1", err, sizeof(err)));
	assert_ok(creds_store(&c, "n1", key, cert, strlen(cert), ca_pem, strlen(ca_pem), NULL,
			      err, sizeof(err)));
	memcpy(serial, c.info.serial, sizeof(serial));
	/* The old key with the new certificate does not go. */
	assert_int_equal(creds_store(&c, "n1", key, cert2, strlen(cert2), NULL, 0, NULL, err,
				     sizeof(err)), HPQ_EPROTO);
	assert_non_null(strstr(err, "key"));
	assert_string_equal(c.info.serial, serial);
	assert_ok(creds_store(&c, "n1", key2, cert2, strlen(cert2), NULL, 0, NULL, err,
			      sizeof(err)));
	assert_string_not_equal(c.info.serial, serial);
	creds_release(&c);
	assert_ok(creds_open(&c, w, "n1", err, sizeof(err)));
	assert_string_equal(c.key_pem, key2);
	assert_string_not_equal(c.info.serial, serial);
	creds_release(&c);
	free(key);
	free(cert);
	free(key2);
	free(cert2);
}

/* What hpqd sends is checked before anything is written. */
static void bad_answers_change_nothing(void **state)
{
	const char *w = work("bad");
	const char *ca_pem = hpq_ca_pem(ca);
	static const char wrong_pin[] =
		"sha256:0000000000000000000000000000000000000000000000000000000000000000";
	struct creds c;
	char *key, *cert, *other_key, *other_cert, *nul, err[512];

	issue("n1", "", &key, &cert);
	issue("n9", "", &other_key, &other_cert);
	assert_ok(creds_open(&c, w, "n1", err, sizeof(err)));
	assert_int_equal(creds_store(&c, "n1", key, cert, strlen(cert), ca_pem, strlen(ca_pem),
				     wrong_pin, err, sizeof(err)), HPQ_EPROTO);
	assert_non_null(strstr(err, "not the pinned one"));
	assert_int_equal(creds_store(&c, "n1", other_key, other_cert, strlen(other_cert), ca_pem,
				     strlen(ca_pem), NULL, err, sizeof(err)), HPQ_EPROTO);
	assert_non_null(strstr(err, "'n9'"));
	assert_int_equal(creds_store(&c, "n1", other_key, cert, strlen(cert), ca_pem,
				     strlen(ca_pem), NULL, err, sizeof(err)), HPQ_EPROTO);
	nul = strdup(cert);
	nul[10] = '\0';
	assert_int_equal(creds_store(&c, "n1", key, nul, strlen(cert), ca_pem, strlen(ca_pem),
				     NULL, err, sizeof(err)), HPQ_EPROTO);
	assert_int_equal(creds_store(&c, "n1", key, "junk", 4, ca_pem, strlen(ca_pem), NULL,
				     err, sizeof(err)), HPQ_EPROTO);
	assert_int_equal(creds_store(&c, "n1", key, cert, strlen(cert), "junk", 4, NULL, err,
				     sizeof(err)), HPQ_EPROTO);
	assert_int_equal(creds_store(&c, "n1", key, cert, 0, ca_pem, strlen(ca_pem), NULL, err,
				     sizeof(err)), HPQ_EPROTO);
	assert_false(c.present);
	assert_int_equal(access(path("bad", "tls/node.pem"), F_OK), -1);
	assert_int_equal(access(path("bad", "tls/ca.crt"), F_OK), -1);
	creds_release(&c);
	free(nul);
	free(key);
	free(cert);
	free(other_key);
	free(other_cert);
}

/* Files and the directory must be closed to others, as ssh wants its keys. */
static void permissions_are_checked(void **state)
{
	const char *w = work("perm");
	const char *ca_pem = hpq_ca_pem(ca);
	struct creds c;
	char *key, *cert, err[512];

	issue("n1", "", &key, &cert);
	assert_ok(creds_open(&c, w, "n1", err, sizeof(err)));
	assert_ok(creds_store(&c, "n1", key, cert, strlen(cert), ca_pem, strlen(ca_pem), NULL,
			      err, sizeof(err)));
	creds_release(&c);

	assert_int_equal(chmod(path("perm", "tls/node.pem"), 0640), 0);
	assert_true(creds_open(&c, w, "n1", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "chmod 600"));
	assert_false(c.present);
	creds_release(&c);
	assert_int_equal(chmod(path("perm", "tls/node.pem"), 0600), 0);

	assert_int_equal(chmod(path("perm", "tls/ca.crt"), 0644), 0);
	assert_true(creds_open(&c, w, "n1", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "chmod 600"));
	creds_release(&c);
	assert_int_equal(chmod(path("perm", "tls/ca.crt"), 0600), 0);

	assert_int_equal(chmod(path("perm", "tls"), 0750), 0);
	assert_int_equal(creds_open(&c, w, "n1", err, sizeof(err)), HPQ_EPERM);
	assert_non_null(strstr(err, "chmod 700"));
	creds_release(&c);
	assert_int_equal(chmod(path("perm", "tls"), 0700), 0);

	assert_ok(creds_open(&c, w, "n1", err, sizeof(err)));
	assert_true(c.present);
	creds_release(&c);
	free(key);
	free(cert);
}

/* node.pem is the mark of a joined node: without ca.crt it is an error;
 * ca.crt alone is a join cut short, and the node joins again. */
static void half_states(void **state)
{
	const char *w = work("half");
	const char *ca_pem = hpq_ca_pem(ca);
	struct creds c;
	char *key, *cert, err[512];

	issue("n1", "", &key, &cert);
	assert_ok(creds_open(&c, w, "n1", err, sizeof(err)));
	assert_ok(creds_store(&c, "n1", key, cert, strlen(cert), ca_pem, strlen(ca_pem), NULL,
			      err, sizeof(err)));
	creds_release(&c);
	assert_int_equal(unlink(path("half", "tls/ca.crt")), 0);
	assert_true(creds_open(&c, w, "n1", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "join again"));
	creds_release(&c);

	assert_int_equal(rename(path("half", "tls/node.pem"), path("half", "tls/ca.crt")), 0);
	assert_ok(creds_open(&c, w, "n1", err, sizeof(err)));
	assert_false(c.present);
	creds_release(&c);

	/* A node.pem that is not ours. */
	assert_int_equal(rename(path("half", "tls/ca.crt"), path("half", "tls/node.pem")), 0);
	assert_int_equal(truncate(path("half", "tls/node.pem"), 40), 0);
	assert_int_equal(creds_open(&c, w, "n1", err, sizeof(err)) < 0, 1);
	creds_release(&c);
	free(key);
	free(cert);
}

static void split_node(void **state)
{
	char *key, *cert, err[256];

	assert_ok(creds_split_node("-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n"
				   "-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----\n",
				   &key, &cert, err, sizeof(err)));
	assert_string_equal(key, "-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n");
	assert_string_equal(cert, "-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----\n");
	free(key);
	free(cert);
	assert_int_equal(creds_split_node("-----BEGIN CERTIFICATE-----\nc\n", &key, &cert, err,
					  sizeof(err)), HPQ_EINVAL);
	assert_int_equal(creds_split_node("no pem at all", &key, &cert, err, sizeof(err)),
			 HPQ_EINVAL);
}

static void renew_due_after_two_thirds(void **state)
{
	/* Issued at 1000 for 3000 s, backdated as hpqd does. */
	struct hpq_cert_info info = {.not_before = 1000 - HPQ_PKI_BACKDATE_S,
				     .not_after = 1000 + 3000};

	assert_false(creds_renew_due(&info, 1000));
	assert_false(creds_renew_due(&info, 2999));
	assert_false(creds_renew_due(&info, 3000)); /* exactly a third left */
	assert_true(creds_renew_due(&info, 3001));
	assert_true(creds_renew_due(&info, 5000));
	/* A certificate of 60 s is not due at once for its backdating: a
	 * third of its own life is left until 40 s after its issue. */
	info.not_after = 1000 + 60;
	assert_int_equal(creds_lifetime(&info), 60);
	assert_false(creds_renew_due(&info, 1000));
	assert_false(creds_renew_due(&info, 1040));
	assert_true(creds_renew_due(&info, 1041));
	info.not_after = info.not_before;
	assert_true(creds_renew_due(&info, 0));
}

static void write_file(const char *p, const char *text, mode_t mode)
{
	int fd;

	unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void token_file(void **state)
{
	const char *p = path("token", NULL);
	char *tok = NULL, err[512];

	write_file(p, "hpq1.abc.s3cret\n\n", 0600);
	assert_ok(creds_read_token(p, &tok, err, sizeof(err)));
	assert_string_equal(tok, "hpq1.abc.s3cret");
	free(tok);
	write_file(p, "hpq1.abc.s3cret\n", 0644);
	assert_true(creds_read_token(p, &tok, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "chmod 600"));
	write_file(p, "hpq1.abc s3cret\n", 0600);
	assert_int_equal(creds_read_token(p, &tok, err, sizeof(err)), HPQ_EINVAL);
	assert_null(strstr(err, "s3cret")); /* the secret is never echoed */
	write_file(p, "", 0600);
	assert_int_equal(creds_read_token(p, &tok, err, sizeof(err)), HPQ_EINVAL);
	assert_true(creds_read_token(path("nonexistent", NULL), &tok, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "nonexistent"));
	assert_true(creds_token_valid("hpq1.a.b"));
	assert_false(creds_token_valid("hpq1."));
	assert_false(creds_token_valid("hpq2.a.b"));
	assert_false(creds_token_valid("hpq1.a.\x01"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fresh_dir_has_none),
		cmocka_unit_test(store_and_load),
		cmocka_unit_test(renewal_replaces_the_pair),
		cmocka_unit_test(bad_answers_change_nothing),
		cmocka_unit_test(permissions_are_checked),
		cmocka_unit_test(half_states),
		cmocka_unit_test(split_node),
		cmocka_unit_test(renew_due_after_two_thirds),
		cmocka_unit_test(token_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
