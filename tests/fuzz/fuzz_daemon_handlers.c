/*
 * fuzz_daemon_handlers.c: the daemon's message handlers under libFuzzer.
 *
 * A real hpqd core (state, dispatcher, SQLite store and its thread) runs on
 * a temporary state directory; each input is fed, in the chunks its plan
 * says (fuzz.h), into a connection without a socket that has already said
 * Hello (server_pseudo), so the bytes go through the same framing, decoding,
 * dispatch switch and handlers as a peer's. The plan's low bits choose the
 * peer: a client or an agent, an administrator or not. After each input the
 * dispatcher runs and every commit completes, so replies, RunTask and
 * KillTask are built (and dropped). State carries over between inputs, as
 * it would between peers, and is rebuilt every RESET_EVERY inputs to keep
 * memory bounded.
 *
 * The daemon's headers are reached by a relative path: this target gets
 * hpqd_core's instrumented copy, which does not pass on its -iquote.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "log.h"

#include "../../daemon/dispatch.h"
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

	snprintf(dir, sizeof(dir), "/tmp/hpq-fuzz-daemon-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	config_init(&cfg);
	free(cfg.state_dir);
	cfg.state_dir = strdup(dir);
	if (hpqd_init(&d, &loop, &cfg, STORE_NOSYNC, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_daemon_handlers: %s\n", err);
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
		fprintf(stderr, "fuzz_daemon_handlers: cannot remove %s\n", dir);
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
	uint8_t who = size ? data[0] : 0;
	size_t n;

	if (!up)
		bring_up();
	c = server_pseudo(d.server, (who & 1) ? HPQ__ROLE__ROLE_AGENT : HPQ__ROLE__ROLE_CLIENT,
			  (who & 1) ? "node-1" : "alice", (who & 2) != 0);
	fuzz_chunker_init(&ch, data, size);
	while (fuzz_chunker_next(&ch, &p, &n))
		server_feed(c, p, n);
	dispatch_run(&d);
	while (store_inflight(d.store)) {
		uv_run(&loop, UV_RUN_ONCE);
		dispatch_run(&d);
	}
	server_close(c);
	server_unref(c);
	if (++runs % RESET_EVERY == 0)
		tear_down();
	return 0;
}
