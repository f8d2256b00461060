/*
 * t_chaos: never twice, never lost, while machines fail. A few hundred
 * tasks run on three agents while the test, at random:
 *
 *   - kills an agent with -9, and restarts it later (or, for one of them
 *     at most, never);
 *   - kills hpqd with -9 and starts it again;
 *   - partitions an agent from hpqd: every agent reaches hpqd through a
 *     TCP proxy in this process, which can black-hole its connections
 *     (bytes are held, nothing is closed: a silent network) and heal;
 *   - fills an agent's work directory (a small tmpfs mounted for it) and
 *     frees it again;
 *   - fills hpqd's state directory (a tmpfs of its own) and frees it.
 *
 * Every task takes an exclusive flock on a file named after its id, and
 * appends its start and end (attempt, time) to a file of its own; a task
 * that finds the lock taken records an overlap. After the chaos everything
 * heals, and once every task has ended the test checks:
 *
 *   - no task overlapped itself;
 *   - every submit that was acknowledged is a task hpqd knows;
 *   - every task ended exactly once (one "end" event), in the state and
 *     with the exit code its command gives (a seventh of them exit 3);
 *   - every task ran: its run file has a start and an end of the attempt
 *     that ended it.
 *
 * `t_chaos` runs 45 s of chaos, for make test; `t_chaos --long
 * SECONDS` as long as asked, with more tasks. Without the right to mount
 * a tmpfs the work directories are not filled (said on stderr).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define NODES 3
#define PROXY_CONNS 16

static int chaos_seconds = 45;
static int ntasks = 200;

/* ---------------------------------------------------------------- the proxy */

/* One agent's way to hpqd: accepted connections are relayed to hpqd's
 * port, both ways, unless the link is black-holed, when bytes stay where
 * they are (unread) until it heals. */
struct proxy {
	int lfd, port, target;
	atomic_bool holed;
	atomic_bool stop;
	pthread_t thread;
	int a[PROXY_CONNS], b[PROXY_CONNS];  /* agent side, hpqd side; -1: free */
};

static int connect_local(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void proxy_drop(struct proxy *p, int i)
{
	close(p->a[i]);
	close(p->b[i]);
	p->a[i] = p->b[i] = -1;
}

/* Moves what one side has to the other; false when either side is gone. */
static bool relay(int from, int to)
{
	char buf[16384];
	ssize_t n = recv(from, buf, sizeof(buf), MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return false;
	return n < 0 || send(to, buf, (size_t)n, MSG_NOSIGNAL) == n;
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;

	while (!atomic_load(&p->stop)) {
		struct pollfd pfd[1 + 2 * PROXY_CONNS];
		int n = 0, idx[1 + 2 * PROXY_CONNS];
		bool holed = atomic_load(&p->holed);

		pfd[n] = (struct pollfd){ p->lfd, POLLIN, 0 };
		idx[n++] = -1;
		for (int i = 0; i < PROXY_CONNS && !holed; i++) {
			if (p->a[i] < 0)
				continue;
			pfd[n] = (struct pollfd){ p->a[i], POLLIN, 0 };
			idx[n++] = i;
			pfd[n] = (struct pollfd){ p->b[i], POLLIN, 0 };
			idx[n++] = i;
		}
		if (poll(pfd, (nfds_t)n, 50) <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC), i;

			for (i = 0; fd >= 0 && i < PROXY_CONNS && p->a[i] >= 0; i++)
				;
			if (fd >= 0 && i < PROXY_CONNS && (p->b[i] = connect_local(p->target)) >= 0)
				p->a[i] = fd;
			else if (fd >= 0)
				close(fd);    /* hpqd is down: the agent retries */
		}
		for (int k = 1; k < n; k++) {
			int i = idx[k];

			if (!pfd[k].revents || p->a[i] < 0)
				continue;
			if (!relay(pfd[k].fd, pfd[k].fd == p->a[i] ? p->b[i] : p->a[i]))
				proxy_drop(p, i);
		}
	}
	return NULL;
}

static void proxy_start(struct proxy *p, int target)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	memset(p, 0, sizeof(*p));
	for (int i = 0; i < PROXY_CONNS; i++)
		p->a[i] = p->b[i] = -1;
	p->target = target;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(p->lfd, 16), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sa, &len), 0);
	p->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&p->thread, NULL, proxy_main, p), 0);
}

static void proxy_stop(struct proxy *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	for (int i = 0; i < PROXY_CONNS; i++)
		if (p->a[i] >= 0)
			proxy_drop(p, i);
	close(p->lfd);
}

/* ---------------------------------------------------------------- the chaos */

struct chaos {
	struct h_cluster *c;
	struct proxy proxy[NODES];
	int agent[NODES];
	bool mounted[NODES];
	bool filled[NODES];
	bool gone[NODES];            /* killed, not restarted yet */
	int lost;                    /* the agent that stays away until the end, or -1 */
	uint64_t *acked;
	size_t nacked;
	bool state_mounted, state_filled;
	unsigned counts[7];          /* of each kind of blow, for the log */
};

static const char *const blows[] = { "agent -9", "hpqd -9", "partition", "heal", "fill",
				     "restart agent", "fill state" };

/* Submits task i; remembers its id if hpqd acknowledged it. */
static void submit_one(struct chaos *ch, int i)
{
	struct h_cluster *c = ch->c;
	char secs[16], code[8], script[512];
	struct h_out o;
	uint64_t id;

	snprintf(secs, sizeof(secs), "%d.%d", (i % 3), (i * 37) % 10);
	snprintf(code, sizeof(code), "%d", i % 7 == 0 ? 3 : 0);
	snprintf(script, sizeof(script),
		 "d=%s; id=$HPQ_TASK_ID; exec 9>\"$d/locks/$id\"; "
		 "if ! flock -n 9; then echo \"$id $HPQ_ATTEMPT\" >> \"$d/overlap\"; exit 99; fi; "
		 "echo \"start $HPQ_ATTEMPT\" >> \"$d/runs/$id\"; sleep \"$1\"; "
		 "echo \"end $HPQ_ATTEMPT\" >> \"$d/runs/$id\"; exit \"$2\"",
		 h_path(c, "chaos"));
	if (h_hpq(c, &o, "submit", "--cpus", "1", "--name", "chaos", "--", "sh", "-c", script,
		  "chaos", secs, code, NULL) == 0 && (id = h_parse_id(o.out)) != 0) {
		ch->acked = realloc(ch->acked, (ch->nacked + 1) * sizeof(*ch->acked));
		assert_non_null(ch->acked);
		ch->acked[ch->nacked++] = id;
	}
	h_out_free(&o);
}

static void fill(struct chaos *ch, int n, bool on)
{
	const char *big = h_path(ch->c, "node%d/chaos-fill", n + 1);
	char cmd[300];

	if (!ch->mounted[n])
		return;
	if (on)
		snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of='%s' bs=64k 2>/dev/null; true", big);
	else
		snprintf(cmd, sizeof(cmd), "rm -f '%s'", big);
	assert_int_equal(system(cmd), 0);
	ch->filled[n] = on;
}

static void fill_state(struct chaos *ch, bool on);

/*
 * hpqd again. It starts on a full disk too (t_diskfull), but then cannot
 * write the port file the harness waits for: the disk is freed first.
 */
static void start_hpqd(struct chaos *ch)
{
	if (ch->state_filled)
		fill_state(ch, false);
	h_daemon_start(ch->c);
}

/* hpqd's state directory (a tmpfs of its own) full, or free again. */
static void fill_state(struct chaos *ch, bool on)
{
	const char *big = h_path(ch->c, "state/chaos-fill");
	char cmd[300];

	if (!ch->state_mounted)
		return;
	if (on)
		snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of='%s' bs=64k 2>/dev/null; true", big);
	else
		snprintf(cmd, sizeof(cmd), "rm -f '%s'", big);
	assert_int_equal(system(cmd), 0);
	ch->state_filled = on;
}

static void blow(struct chaos *ch)
{
	struct h_cluster *c = ch->c;
	int kind = rand() % 7, n = rand() % NODES;

	switch (kind) {
	case 0:     /* an agent dies */
		if (ch->gone[n])
			return;
		h_agent_stop(c, ch->agent[n], SIGKILL);
		ch->gone[n] = true;
		/* One of them may never come back (until the end). */
		if (ch->lost < 0 && rand() % 4 == 0)
			ch->lost = n;
		break;
	case 1:     /* hpqd dies */
		h_daemon_stop(c, SIGKILL);
		start_hpqd(ch);
		break;
	case 2:
		atomic_store(&ch->proxy[n].holed, true);
		break;
	case 3:
		for (int i = 0; i < NODES; i++)
			atomic_store(&ch->proxy[i].holed, false);
		break;
	case 4:
		fill(ch, n, !ch->filled[n]);
		break;
	case 6:     /* hpqd's state disk fills up, or frees */
		fill_state(ch, !ch->state_filled);
		break;
	case 5:     /* a dead agent comes back */
		for (int i = 0; i < NODES; i++)
			if (ch->gone[i] && i != ch->lost && c->agents[ch->agent[i]].pid == 0) {
				h_agent_restart(c, ch->agent[i]);
				ch->gone[i] = false;
				break;
			}
		break;
	}
	ch->counts[kind]++;
	fprintf(stderr, "chaos: %s (node%d)\n", blows[kind], n + 1);
}

/* Everything back: links healed, disks freed, every agent running. */
static void heal(struct chaos *ch)
{
	if (ch->state_filled)
		fill_state(ch, false);
	for (int i = 0; i < NODES; i++) {
		atomic_store(&ch->proxy[i].holed, false);
		if (ch->filled[i])
			fill(ch, i, false);
		if (ch->c->agents[ch->agent[i]].pid == 0)
			h_agent_restart(ch->c, ch->agent[i]);
		ch->gone[i] = false;
	}
	if (ch->c->hpqd == 0)
		start_hpqd(ch);
}

/* ---------------------------------------------------------------- the checks */

static int count_lines(const char *path, const char *prefix)
{
	char *text = h_read_file(path), *p;
	int n = 0;

	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
		if (!strncmp(p, prefix, strlen(prefix)))
			n++;
	free(text);
	return n;
}

static bool all_ended(struct h_cluster *c)
{
	json_t *tasks = h_tasks(c), *t;
	bool done = true;
	size_t i;

	json_array_foreach(tasks, i, t)
		if (!h_is_terminal(h_str(t, "state")))
			done = false;
	json_decref(tasks);
	return done;
}

static void check(struct chaos *ch)
{
	struct h_cluster *c = ch->c;
	json_t *tasks = h_tasks(c), *events, *e;
	char *overlap = h_read_file(h_path(c, "chaos/overlap"));
	size_t i;
	int *ends;
	uint64_t maxid = 0;

	if (overlap && *overlap)
		fail_msg("tasks overlapped themselves (id attempt):\n%s", overlap);
	free(overlap);
	for (size_t k = 0; k < ch->nacked; k++) {
		json_t *t = h_find_task(tasks, ch->acked[k]);
		uint64_t id = ch->acked[k];
		const char *state;
		char want[32];

		if (!t)
			fail_msg("task %" PRIu64 " was acknowledged and is gone", id);
		state = h_str(t, "state");
		maxid = id > maxid ? id : maxid;
		/* Its command's last argument is its exit code (3 for every
		 * seventh), so its end is known: FAILED with 3, or COMPLETED. */
		{
			json_t *argv = json_object_get(t, "argv");
			const char *code = json_string_value(json_array_get(argv,
									  json_array_size(argv) - 1));

			assert_non_null(code);
			snprintf(want, sizeof(want), "%s", !strcmp(code, "3") ? "FAILED" : "COMPLETED");
			if (strcmp(state, want) || h_int(t, "exit_code") != atoi(code))
				fail_msg("task %" PRIu64 " ended %s with exit code %lld (%s); its "
					 "command exits %s", id, state, h_int(t, "exit_code"),
					 h_str(t, "reason"), code);
		}
		/* It ran: a start and an end of some attempt. */
		if (count_lines(h_path(c, "chaos/runs/%" PRIu64, id), "start ") < 1 ||
		    count_lines(h_path(c, "chaos/runs/%" PRIu64, id), "end ") < 1)
			fail_msg("task %" PRIu64 " ended %s but never ran to its end", id, state);
	}
	json_decref(tasks);
	/* Exactly one end per task. */
	ends = calloc(maxid + 1, sizeof(*ends));
	assert_non_null(ends);
	events = h_hpq_json(c, "events", "--limit", "100000", NULL);
	json_array_foreach(events, i, e)
		if (!strcmp(h_str(e, "kind"), "end") && h_int(e, "task") > 0 &&
		    (uint64_t)h_int(e, "task") <= maxid)
			ends[h_int(e, "task")]++;
	json_decref(events);
	for (size_t k = 0; k < ch->nacked; k++)
		if (ends[ch->acked[k]] != 1)
			fail_msg("task %" PRIu64 " ended %d times", ch->acked[k], ends[ch->acked[k]]);
	free(ends);
}

/* ---------------------------------------------------------------- the test */

/* The test's state outlives a failure (fail_msg leaves the test function
 * by longjmp): the proxies' threads use it, and the teardown stops them and
 * unmounts the tmpfs mounts. */
static struct chaos ch;

static int teardown(void **state)
{
	for (int n = 0; n < NODES; n++) {
		if (ch.proxy[n].lfd > 0 && !atomic_load(&ch.proxy[n].stop))
			proxy_stop(&ch.proxy[n]);
		if (ch.mounted[n])
			umount2(h_path(ch.c, "node%d", n + 1), MNT_DETACH);
	}
	free(ch.acked);
	/* After hpqd is gone (h_teardown stops it): its state is on the tmpfs. */
	{
		bool state_mounted = ch.state_mounted;
		struct h_cluster *c = ch.c;
		int r;

		memset(&ch, 0, sizeof(ch));
		if (!state_mounted)
			return h_teardown(state);
		if (c->hpqd)
			h_daemon_stop(c, SIGKILL);
		umount2(h_path(c, "state"), MNT_DETACH);
		r = h_teardown(state);
		return r;
	}
}

static void chaos(void **state)
{
	struct h_cluster *c = *state;
	int64_t end;
	int submitted = 0;
	bool can_mount = true;

	ch.c = c;
	ch.lost = -1;
	c->insecure = true;   /* plain TCP through the proxies: this test is not about trust */
	/* The fence on, as in production: cut off for 2 s, a node's supervisors
	 * stop its tasks; hpqd requeues them only after 10 s (2 x 2 s + 5 s, and
	 * a second more). */
	h_daemon_config(c, "[agents]\nheartbeat = 1s\nunreachable_after = 10\nfence_after = 2s\n");
	/* hpqd's state on a tmpfs of its own, which the chaos fills. */
	assert_int_equal(mkdir(h_path(c, "state"), 0700), 0);
	if (mount("tmpfs", h_path(c, "state"), "tmpfs", 0, "size=32m,mode=0700") == 0) {
		ch.state_mounted = true;
		snprintf(c->state, sizeof(c->state), "state");
	} else {
		fprintf(stderr, "chaos: cannot mount a tmpfs (%s): the state disk is not filled\n",
			strerror(errno));
	}
	h_daemon_start(c);
	assert_int_equal(mkdir(h_path(c, "chaos"), 0755), 0);
	assert_int_equal(mkdir(h_path(c, "chaos/locks"), 0755), 0);
	assert_int_equal(mkdir(h_path(c, "chaos/runs"), 0755), 0);
	for (int n = 0; n < NODES; n++) {
		char name[16], server[64];
		const char *extra[] = { "--server", server, "--insecure", NULL };

		snprintf(name, sizeof(name), "node%d", n + 1);
		proxy_start(&ch.proxy[n], c->port);
		snprintf(server, sizeof(server), "127.0.0.1:%d", ch.proxy[n].port);
		assert_int_equal(mkdir(h_path(c, "%s", name), 0755), 0);
		if (can_mount && mount("tmpfs", h_path(c, "%s", name), "tmpfs", 0,
					"size=8m,mode=0755") < 0) {
			fprintf(stderr, "chaos: cannot mount a tmpfs (%s): work directories are not "
				"filled\n", strerror(errno));
			can_mount = false;
		}
		ch.mounted[n] = can_mount;
		ch.agent[n] = h_agent_start_tcp(c, name, 0, 4, "4G", extra);
	}
	assert_true(h_wait_nodes(c, NODES, 30000));

	srand((unsigned)getpid());
	end = h_now_ms() + chaos_seconds * 1000;
	while (h_now_ms() < end) {
		/* Keep work coming while the blows land. */
		for (int k = 0; k < 8 && submitted < ntasks; k++, submitted++)
			submit_one(&ch, submitted);
		if (c->hpqd == 0)
			start_hpqd(&ch);
		blow(&ch);
		h_sleep_ms(500 + rand() % 2000);  /* the chaos's pace, not a wait for anything */
		h_reap(c);
	}
	heal(&ch);
	while (submitted < ntasks)
		submit_one(&ch, submitted++);
	fprintf(stderr, "chaos: %zu of %d submits acknowledged; blows:", ch.nacked, ntasks);
	for (int k = 0; k < 7; k++)
		fprintf(stderr, " %s %u,", blows[k], ch.counts[k]);
	fputc('\n', stderr);
	if (!H_WAIT_FOR(c, all_ended(c), 300000))
		fail_msg("tasks still not ended 5 minutes after the chaos");
	check(&ch);

	for (int n = 0; n < NODES; n++)
		h_agent_stop(c, ch.agent[n], SIGTERM);
	h_pass(c);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(chaos, h_setup, teardown),
	};

	if (argc == 3 && !strcmp(argv[1], "--long")) {
		chaos_seconds = atoi(argv[2]);
		ntasks = chaos_seconds * 4;
	} else if (argc != 1) {
		fprintf(stderr, "usage: t_chaos [--long SECONDS]\n");
		return 2;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
