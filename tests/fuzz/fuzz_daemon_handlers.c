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
 * it would between peers, and is rebuilt every FUZZ_CORE_RESET inputs to keep
 * memory bounded (fuzz-core.h).
 */
#include <stdint.h>

#include "fuzz-core.h"
#include "fuzz.h"

#include "../../daemon/dispatch.h"
#include "../../daemon/server.h"

static struct fuzz_core core = { .name = "fuzz-daemon" };

static void at_exit(void)
{
	fuzz_core_exit(&core);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	uint8_t who = size ? data[0] : 0;
	size_t n;

	c = server_pseudo(d->server, (who & 1) ? HPQ__ROLE__ROLE_AGENT : HPQ__ROLE__ROLE_CLIENT,
			  (who & 1) ? "node-1" : "alice", (who & 2) != 0);
	fuzz_chunker_init(&ch, data, size);
	while (fuzz_chunker_next(&ch, &p, &n))
		server_feed(c, p, n);
	dispatch_run(d);
	while (store_inflight(d->store)) {
		uv_run(&core.loop, UV_RUN_ONCE);
		dispatch_run(d);
	}
	server_close(c);
	server_unref(c);
	fuzz_core_done(&core);
	return 0;
}
