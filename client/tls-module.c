/*
 * tls-module.c: hpq-tls.so, tls.c for the CLI, loaded when it is needed
 * (tls-module.h says why). The module is linked with the hpq_common
 * archive and exports nothing but this table.
 */
#include "tls-module.h"

__attribute__((visibility("default")))
const struct hpq_tls_module hpq_tls_module = {
	.version = HPQ_VERSION,
	.size = sizeof(struct hpq_tls_module),
	.ctx_new = hpq_tls_ctx_new,
	.ctx_free = hpq_tls_ctx_free,
	.channel_new = hpq_tls_new,
	.channel_free = hpq_tls_free,
	.feed = hpq_tls_feed,
	.read = hpq_tls_read,
	.write = hpq_tls_write,
	.out_take = hpq_tls_out_take,
	.error = hpq_tls_error,
};
