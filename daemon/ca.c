/*
 * ca.c: hpqd's certificates and TLS context (ca.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "ca.h"
#include "clock.h"
#include "error.h"
#include "log.h"
#include "parse.h"
#include "xalloc.h"

struct ca {
	struct hpq_ca *ca;
	struct hpq_tls_ctx *tls;
	char **names;
	size_t nnames;
	uint64_t node_lifetime_s;
	char *dir;                   /* <state_dir>/tls */
	char *cert_pem;              /* the server certificate tls speaks with */
	struct hpq_cert_info cert;   /* and what it says */
};

static void add_name(struct ca *ca, const char *name)
{
	for (size_t i = 0; i < ca->nnames; i++)
		if (!strcmp(ca->names[i], name))
			return;
	ca->names = xreallocarray(ca->names, ca->nnames + 1, sizeof(char *));
	ca->names[ca->nnames++] = xstrdup(name);
}

/* Is host one address (not 0.0.0.0 or ::, which mean all of them)? */
static bool specific_address(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return a4.s_addr != htonl(INADDR_ANY);
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return !IN6_IS_ADDR_UNSPECIFIED(&a6);
	return false;
}

static void find_names(struct ca *ca, const struct config *cfg)
{
	char host[256];
	uint16_t port;

	if (cfg->tls.nserver_names) {
		for (size_t i = 0; i < cfg->tls.nserver_names; i++)
			add_name(ca, cfg->tls.server_names[i]);
		return;
	}
	if (*cfg->listen &&
	    hpq_split_hostport(cfg->listen, HPQ_HOSTPORT_LISTEN, host, sizeof(host), &port) == 0 &&
	    *host && specific_address(host)) {
		add_name(ca, host);
	} else {
		uv_interface_address_t *ifs;
		int n;

		if (uv_interface_addresses(&ifs, &n) == 0) {
			for (int i = 0; i < n; i++) {
				char a[INET6_ADDRSTRLEN];

				if (ifs[i].address.address4.sin_family == AF_INET)
					uv_ip4_name(&ifs[i].address.address4, a, sizeof(a));
				else if (ifs[i].address.address6.sin6_scope_id == 0)
					uv_ip6_name(&ifs[i].address.address6, a, sizeof(a));
				else
					continue;   /* link-local: not dialled by name */
				add_name(ca, a);
			}
			uv_free_interface_addresses(ifs, n);
		}
	}
	if (gethostname(host, sizeof(host)) == 0 && *host)
		add_name(ca, host);
	add_name(ca, "localhost");
	add_name(ca, "127.0.0.1");
	add_name(ca, "::1");
}

/*
 * The server certificate for days (as hpq_ca_server_cert keeps or makes
 * it) and, when it is not the one tls speaks with already, a new TLS
 * context with it. Sets *changed then; the old context is freed.
 */
static int server_tls(struct ca *ca, int days, bool *changed, char *err, size_t errlen)
{
	struct hpq_tls_config tc = { 0 };
	struct hpq_cert_info info;
	struct hpq_tls_ctx *tls;
	char *cert = NULL, *key = NULL;
	int r;

	*changed = false;
	r = hpq_ca_server_cert(ca->ca, ca->dir, (const char *const *)ca->names, ca->nnames, days,
			       &cert, &key, err, errlen);
	if (r < 0 || (ca->cert_pem && !strcmp(ca->cert_pem, cert)))
		goto out;
	r = hpq_pki_cert_info(cert, strlen(cert), &info, err, errlen);
	if (r < 0)
		goto out;
	tc.ca_pem = hpq_ca_pem(ca->ca);
	tc.cert_pem = cert;
	tc.key_pem = key;
	tc.chain_pem = hpq_ca_pem(ca->ca);
	tls = hpq_tls_ctx_new(true, &tc, err, errlen);
	if (!tls) {
		r = HPQ_ETLS;
		goto out;
	}
	hpq_tls_ctx_free(ca->tls);
	ca->tls = tls;
	free(ca->cert_pem);
	ca->cert_pem = cert;
	cert = NULL;
	ca->cert = info;
	*changed = true;
out:
	free(cert);
	free(key);
	return r;
}

static int lifetime_days(const struct config *cfg)
{
	return (int)(cfg->tls.server_cert_lifetime_s / 86400);
}

int ca_open(const struct config *cfg, const char *cluster_id, struct ca **ret, char *err,
	    size_t errlen)
{
	struct ca *ca = xcalloc(1, sizeof(*ca));
	bool changed;
	int r;

	xasprintf(&ca->dir, "%s/tls", cfg->state_dir);
	if (mkdir(ca->dir, 0700) < 0 && errno != EEXIST) {
		r = hpq_errf(err, errlen, -errno, "cannot make '%s': %s", ca->dir, strerror(errno));
		goto fail;
	}
	r = hpq_ca_open(ca->dir, cluster_id, true, &ca->ca, err, errlen);
	if (r < 0)
		goto fail;
	find_names(ca, cfg);
	r = server_tls(ca, lifetime_days(cfg), &changed, err, errlen);
	if (r < 0)
		goto fail;
	ca->node_lifetime_s = cfg->tls.node_cert_lifetime_s;
	*ret = ca;
	return 0;
fail:
	ca_free(ca);
	return r;
}

int ca_renew_server(struct ca *ca, const struct config *cfg, bool *renewed, char *err,
		    size_t errlen)
{
	char when[HPQ_UTC_LEN];
	int r = server_tls(ca, lifetime_days(cfg), renewed, err, errlen);

	if (r == 0 && *renewed) {
		hpq_utc_text(ca->cert.not_after * 1000, when, sizeof(when));
		log_notice("hpqd's server certificate renewed: serial %s, valid until %s",
			   ca->cert.serial, when);
	}
	return r;
}

const struct hpq_cert_info *ca_server_cert(const struct ca *ca)
{
	return &ca->cert;
}

uint64_t ca_renew_every_ms(const struct config *cfg)
{
	uint64_t sixth = cfg->tls.server_cert_lifetime_s * 1000 / 6;

	return sixth < 3600000 ? sixth : 3600000;
}

void ca_free(struct ca *ca)
{
	if (!ca)
		return;
	hpq_tls_ctx_free(ca->tls);
	hpq_ca_free(ca->ca);
	free(ca->cert_pem);
	free(ca->dir);
	for (size_t i = 0; i < ca->nnames; i++)
		free(ca->names[i]);
	free(ca->names);
	free(ca);
}

struct hpq_tls_ctx *ca_server_tls(struct ca *ca)
{
	return ca->tls;
}

const char *ca_hash(const struct ca *ca)
{
	return hpq_ca_hash(ca->ca);
}

const char *ca_pem(const struct ca *ca)
{
	return hpq_ca_pem(ca->ca);
}

const char *const *ca_server_names(const struct ca *ca, size_t *n)
{
	*n = ca->nnames;
	return (const char *const *)ca->names;
}

int ca_check(const struct config *cfg, FILE *out)
{
	struct hpq_ca *hca = NULL;
	struct hpq_cert_info info;
	struct ca names = { 0 };
	char *dir = NULL, *path = NULL, *pem = NULL, err[512], when[HPQ_UTC_LEN];
	size_t len;
	int r;

	xasprintf(&dir, "%s/tls", cfg->state_dir);
	r = hpq_ca_open(dir, "", false, &hca, err, sizeof(err));
	if (r == -ENOENT || r == -ENOTDIR) {
		/* (A state directory that cannot be one is config_check's to say.) */
		fprintf(out, "hpqd: tls: no cluster CA yet: hpqd makes one in %s at its first start\n",
			dir);
		r = 0;
	} else if (r < 0) {
		fprintf(out, "hpqd: tls: the cluster CA cannot be used: %s\n", err);
	} else {
		fprintf(out, "hpqd: tls: cluster CA %s (%s/ca.crt)\n", hpq_ca_hash(hca), dir);
		xasprintf(&path, "%s/server.crt", dir);
		if (access(path, F_OK) == 0) {
			r = hpq_pki_read_private(path, &pem, &len, err, sizeof(err));
			if (r == 0)
				r = hpq_pki_cert_info(pem, len, &info, err, sizeof(err));
			if (r < 0) {
				fprintf(out, "hpqd: tls: the server certificate cannot be used: %s\n", err);
			} else {
				hpq_utc_text(info.not_after * 1000, when, sizeof(when));
				fprintf(out, "hpqd: tls: server certificate valid until %s\n", when);
			}
		}
	}
	find_names(&names, cfg);
	fprintf(out, "hpqd: tls: the server certificate names ");
	for (size_t i = 0; i < names.nnames; i++)
		fprintf(out, "%s%s", i ? "," : "", names.names[i]);
	fprintf(out, "%s\n", cfg->tls.nserver_names ? " ([tls] server_names)" : " (found)");
	for (size_t i = 0; i < names.nnames; i++)
		free(names.names[i]);
	free(names.names);
	hpq_ca_free(hca);
	free(pem);
	free(path);
	free(dir);
	return r;
}

int ca_sign_node(struct ca *ca, const char *csr, size_t len, const char *node, const char *pool,
		 char **ret_pem, struct hpq_cert_info *info, char *err, size_t errlen)
{
	return hpq_ca_sign_node(ca->ca, csr, len, node, pool, (int64_t)ca->node_lifetime_s,
				ret_pem, info, err, errlen);
}
