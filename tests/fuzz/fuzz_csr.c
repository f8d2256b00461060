/*
 * fuzz_csr.c: a joining node's certificate request is the first thing hpqd
 * parses from a peer it does not trust yet. Each input, as it is, goes to
 * hpq_ca_sign_node under a real CA (made once, in a temporary directory
 * removed at once). It must be refused with words or signed, never crash
 * or leak; a certificate it signs must name exactly the node and pool
 * hpqd gave, whatever the request said. Each input is tried twice: as
 * the PEM text a node sends, and as the DER inside a PEM request, so that
 * mutations also reach the ASN.1 itself and not only the base64 around
 * it. The seed corpus holds a valid request in both forms (seeds.c); the
 * frame seeds it shares with the stream targets are garbage here, which
 * is fine.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "error.h"
#include "pki.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct hpq_ca *ca;

/* The CA lives on in memory; its files go at once, so that no run, however
 * it ends, leaves a directory behind. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/hpq-fuzz-csr-XXXXXX", path[sizeof(dir) + 16], err[256];
	int r;

	if (!mkdtemp(dir)) {
		perror("fuzz_csr: mkdtemp");
		abort();
	}
	r = hpq_ca_open(dir, "fuzz", true, &ca, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	unlink(path);
	rmdir(dir);
	if (r < 0) {
		fprintf(stderr, "fuzz_csr: %s\n", err);
		abort();
	}
	return 0;
}

static void sign(const char *pem, size_t len)
{
	struct hpq_cert_info info, again;
	char err[256] = "", *cert = NULL;
	int r;

	r = hpq_ca_sign_node(ca, pem, len, "gpu-01", "a100", 3600, &cert, &info, err, sizeof(err));
	if (r < 0) {
		/* A refusal always says why and hands nothing out. */
		if (cert || !err[0])
			abort();
		return;
	}
	if (r != 0 || !cert || strcmp(info.cn, "gpu-01") != 0 || strcmp(info.ou, "a100") != 0)
		abort();
	if (hpq_pki_cert_info(cert, strlen(cert), &again, err, sizeof(err)) != 0 ||
	    strcmp(again.cn, "gpu-01") != 0 || strcmp(again.ou, "a100") != 0 ||
	    strcmp(again.serial, info.serial) != 0)
		abort();
	free(cert);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	BIO *b;
	char *pem;
	long n;

	sign((const char *)data, size);
	if (size == 0 || size > HPQ_PKI_FILE_MAX / 2)
		return 0;
	b = BIO_new(BIO_s_mem());
	if (!b || !PEM_write_bio(b, "CERTIFICATE REQUEST", "", data, (long)size))
		abort();
	n = BIO_get_mem_data(b, &pem);
	sign(pem, (size_t)n);
	BIO_free(b);
	return 0;
}
