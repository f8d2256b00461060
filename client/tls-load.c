/*
 * tls-load.c: the TLS functions that common/client.c calls, for the hpq
 * program only. They have tls.h's names, so client.c is the same in
 * every program, and forward to hpq-tls.so, which the first
 * hpq_tls_ctx_new loads (tls-module.h says why it is a module). hpqd,
 * hpq-agent and the tests link common/tls.c itself instead.
 *
 * The module is looked for next to the running hpq (a build tree), then
 * where it is installed (HPQ_TLS_MODULE_PATH). A channel exists only
 * once a context does, so only hpq_tls_ctx_new loads; the rest forward.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "path.h"
#include "tls-module.h"

#define TLS_MODULE_NAME "hpq-tls.so"

static const struct hpq_tls_module *tls;

static const struct hpq_tls_module *tls_load(char *err, size_t errlen)
{
	char *beside = hpq_path_beside_self(TLS_MODULE_NAME, R_OK);
	const char *path = beside ? beside : HPQ_TLS_MODULE_PATH;
	const struct hpq_tls_module *m = NULL;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		hpq_errf(err, errlen, HPQ_EINVAL, "this hpq has no TLS: %s", dlerror());
	} else if (!(m = dlsym(h, HPQ_TLS_MODULE_SYMBOL))) {
		hpq_errf(err, errlen, HPQ_EINVAL, "%s is not hpq's TLS module", path);
		dlclose(h);
	} else if (m->size != sizeof(*m) || strcmp(m->version, HPQ_VERSION)) {
		hpq_errf(err, errlen, HPQ_EINVAL, "%s is the TLS module of hpq %s, not of this hpq %s",
			 path, m->version, HPQ_VERSION);
		m = NULL;
		dlclose(h);
	}
	free(beside);
	return m;   /* kept loaded until the process exits */
}

struct hpq_tls_ctx *hpq_tls_ctx_new(bool server, const struct hpq_tls_config *cfg, char *err,
				    size_t errlen)
{
	if (!tls && !(tls = tls_load(err, errlen)))
		return NULL;
	return tls->ctx_new(server, cfg, err, errlen);
}

void hpq_tls_ctx_free(struct hpq_tls_ctx *ctx)
{
	if (ctx)
		tls->ctx_free(ctx);
}

struct hpq_tls *hpq_tls_new(struct hpq_tls_ctx *ctx, const char *server_name)
{
	return tls->channel_new(ctx, server_name);
}

void hpq_tls_free(struct hpq_tls *t)
{
	if (t)
		tls->channel_free(t);
}

int hpq_tls_feed(struct hpq_tls *t, const void *buf, size_t len)
{
	return tls->feed(t, buf, len);
}

ssize_t hpq_tls_read(struct hpq_tls *t, void *buf, size_t len)
{
	return tls->read(t, buf, len);
}

int hpq_tls_write(struct hpq_tls *t, const void *buf, size_t len)
{
	return tls->write(t, buf, len);
}

size_t hpq_tls_out_take(struct hpq_tls *t, void *buf, size_t len)
{
	return tls->out_take(t, buf, len);
}

const char *hpq_tls_error(const struct hpq_tls *t)
{
	return tls->error(t);
}
