/*
 * fuzz_daemon_preauth.c: what a peer nobody knows yet can make hpqd
 * decode, under libFuzzer: Hello, Auth (the MUNGE path) and JoinRequest
 * (a bootstrap token and a certificate request), on a connection that has
 * said nothing yet and came, as over TCP, through TLS without a
 * certificate (server_pseudo_peer). A real hpqd core runs on a temporary
 * state directory, as in fuzz_daemon_handlers; its munged socket does not
 * exist, so a credential is refused the way a stopped munged's is, on
 * libuv's thread pool, which each input waits for.
 *
 * The daemon's headers are reached by a relative path, as in
 * fuzz_daemon_handlers.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "log.h"

#include "../../daemon/hpqd.h"
#include "../../daemon/server.h"
#include "../../daemon/store.h"

#define RESET_EVERY 2000

static uv_loop_t loop;
static struct hpqd d;
static bool up;
static unsigned runs;
static char dir[64];

static void bring_up(void)
{
	struct config cfg;
	char err[256];

	snprintf(dir, sizeof(dir), "/tmp/hpq-fuzz-preauth-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	config_init(&cfg);
	free(cfg.state_dir);
	cfg.state_dir = strdup(dir);
	free(cfg.munge_socket);
	if (asprintf(&cfg.munge_socket, "%s/no-munged.sock", dir) < 0)
		abort();
	if (hpqd_init(&d, &loop, &cfg, STORE_NOSYNC, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_daemon_preauth: %s\n", err);
		abort();
	}
	config_release(&cfg);
	up = true;
}

static void tear_down(void)
{
	char cmd[128];

	hpqd_stop(&d);
	uv_run(&loop, UV_RUN_DEFAULT);
	hpqd_release(&d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_daemon_preauth: cannot remove %s\n", dir);
	up = false;
}

static void at_exit(void)
{
	if (up)
		tear_down();
	uv_loop_close(&loop);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	hpq_log_init("fuzz", LOG_CRIT);
	if (uv_loop_init(&loop) < 0)
		abort();
	atexit(at_exit);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_chunker ch;
	const uint8_t *p;
	struct conn *c;
	size_t n;

	if (!up)
		bring_up();
	c = server_pseudo_peer(d.server);
	fuzz_chunker_init(&ch, data, size);
	while (fuzz_chunker_next(&ch, &p, &n)) {
		server_feed(c, p, n);
		/* A credential goes to munged on the thread pool: wait for it. */
		while (!c->dead && c->phase == CONN_MUNGE)
			uv_run(&loop, UV_RUN_ONCE);
	}
	while (store_inflight(d.store))
		uv_run(&loop, UV_RUN_ONCE);
	server_close(c);
	server_unref(c);
	if (++runs % RESET_EVERY == 0)
		tear_down();
	return 0;
}
