/*
 * fuzz_daemon_preauth.c: what a peer nobody knows yet can make hpqd
 * decode, under libFuzzer: Hello, Auth (the MUNGE path) and JoinRequest
 * (a bootstrap token and a certificate request), on a connection that has
 * said nothing yet and came, as over TCP, through TLS without a
 * certificate (server_pseudo_peer). A real hpqd core runs (fuzz-core.h);
 * a credential goes to its munged, which is not there, on libuv's thread
 * pool, which each input waits for.
 */
#include <stdint.h>

#include "fuzz-core.h"
#include "fuzz.h"

#include "../../daemon/server.h"

static struct fuzz_core core = { .name = "fuzz-preauth" };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void at_exit(void)
{
	fuzz_core_exit(&core);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_core_init(&core, at_exit);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hpqd *d = fuzz_core_get(&core);
	struct fuzz_chunker ch;
	const uint8_t *p;
	struct conn *c;
	size_t n;

	c = server_pseudo_peer(d->server);
	fuzz_chunker_init(&ch, data, size);
	while (fuzz_chunker_next(&ch, &p, &n)) {
		server_feed(c, p, n);
		while (!c->dead && c->phase == CONN_MUNGE)
			uv_run(&core.loop, UV_RUN_ONCE);
	}
	while (store_inflight(d->store))
		uv_run(&core.loop, UV_RUN_ONCE);
	server_close(c);
	server_unref(c);
	fuzz_core_done(&core);
	return 0;
}
