/*
 * tls-module.h: the TLS channel of tls.h as a table of functions, which
 * is all that hpq-tls.so exports. The CLI talks to a local hpqd over a
 * Unix socket and needs TLS only when it dials one over TCP, so it does
 * not link OpenSSL: loading libssl and libcrypto cost every hpq process
 * about 4 ms of page faults, as much as the rest of its start. hpq loads
 * the module on first use instead (tls-load.c); hpqd and hpq-agent link
 * tls.c as it is. On a login node, which dials hpqd over TCP, every
 * command loads it, and starts as it did before.
 */
#ifndef HPQ_TLS_MODULE_H
#define HPQ_TLS_MODULE_H

#include "tls.h"

/* The one symbol the module exports: a const struct hpq_tls_module. */
#define HPQ_TLS_MODULE_SYMBOL "hpq_tls_module"

struct hpq_tls_module {
	/* HPQ_VERSION and the table's size when the module was built: hpq
	 * refuses a module from another build, whose table may differ.
	 * These two stay first, so that any build can read them. */
	const char *version;
	size_t size;
	struct hpq_tls_ctx *(*ctx_new)(bool server, const struct hpq_tls_config *cfg, char *err,
				       size_t errlen);
	void (*ctx_free)(struct hpq_tls_ctx *ctx);
	struct hpq_tls *(*channel_new)(struct hpq_tls_ctx *ctx, const char *server_name);
	void (*channel_free)(struct hpq_tls *t);
	int (*feed)(struct hpq_tls *t, const void *buf, size_t len);
	ssize_t (*read)(struct hpq_tls *t, void *buf, size_t len);
	int (*write)(struct hpq_tls *t, const void *buf, size_t len);
	size_t (*out_take)(struct hpq_tls *t, void *buf, size_t len);
	const char *(*error)(const struct hpq_tls *t);
};

#endif
