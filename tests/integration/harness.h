/*
 * harness.h: the integration-test harness. Each t_*.c program starts the
 * real hpqd and real hpq-agent processes on a private temp dir (state,
 * socket, work dirs, logs), drives them through the real hpq CLI and
 * checks what the CLI's --json output says.
 *
 * Everything started here carries HPQ_ITEST_DIR=<dir> in its environment,
 * and task processes inherit it through `hpq submit` (which exports the
 * environment), so teardown finds every leftover process, including task
 * process groups in their own sessions, by that marker or by a cwd under
 * the dir. A guardian process does the same sweep if the test process dies
 * without tearing down (ctest timeout SIGKILL). The test process is a child
 * subreaper, so orphaned task processes are reaped here and never linger
 * as zombies that would make "the process group is gone" checks lie.
 *
 *	struct h_cluster *c = h_cluster_new();
 *	h_daemon_start(c);
 *	h_agent_start(c, "node1", 0, 4, "2G");
 *	h_wait_nodes(c, 1, 20000);
 *	uint64_t id = h_submit(c, "--", "sh", "-c", "exit 3", NULL);
 *	assert_true(h_wait_state(c, id, "FAILED", 20000));
 *	h_pass(c);                   // teardown prints logs unless this ran
 *	h_cluster_free(c);
 *
 * Binaries: HPQ_TEST_HPQD, HPQ_TEST_AGENT, HPQ_TEST_HPQ, HPQ_TEST_TRAINER
 * in the environment, else the paths CMake compiled in. The CLI runs with
 * HPQ_CLI set to the hpq under test, so tasks (the example trainer) that
 * report checkpoints use it too. HPQ_KEEP_TMP=1
 * keeps the temp dir; HPQ_ITEST_VERBOSE=1 echoes every CLI call.
 */
#ifndef HPQ_HARNESS_H
#define HPQ_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/types.h>

#include <cmocka.h>
#include <jansson.h>

#include "frame.h"
#include "hpq.pb-c.h"
#include "tls.h"

#define H_MAX_AGENTS 8
#define H_AGENT_EXTRA 8    /* options h_agent_start_tcp and h_agent_start_opts add */

/* A wait's outcome must be looked at: the build (-Werror) fails where a
 * test drops it, since a wait that fails unnoticed turns a broken daemon
 * into a later, puzzling failure or into none. */
#define H_MUST_USE __attribute__((warn_unused_result))

struct h_agent {
	char name[32];
	char work[128];   /* <dir>/<name> */
	char log[128];    /* <dir>/<name>.log: the agent's stderr */
	unsigned gpus, cpus;
	char mem[16];
	pid_t pid;        /* 0 when not running */
	int status;       /* wait status after it ended */
	bool tcp;         /* h_agent_start_tcp: over TCP */
	char extra[H_AGENT_EXTRA][128]; /* "" ends them */
};

struct h_cluster {
	char dir[64];     /* /tmp/hpqt-XXXXXX */
	char sock[100];   /* <dir>/hpqd.sock (sun_path holds 108) */
	char log[128];    /* <dir>/hpqd.log */
	char config[128]; /* <dir>/hpqd.conf, or "" */
	char state[16];   /* hpqd's state directory under <dir> ("": <dir> itself) */
	int port;         /* TCP port, fixed after the first start */
	bool insecure;    /* h_daemon_start passes --insecure: TCP clients need no MUNGE */
	pid_t hpqd;
	int hpqd_status;
	struct h_agent agents[H_MAX_AGENTS];
	int nagents;
	pid_t guardian;
	int guardian_fd;  /* closing it tells the guardian we are done */
	bool passed;
	bool no_root_daemon; /* see h_root_tasks */
	bool no_root_agents;
	uid_t cli_uid;    /* non-zero: the CLI runs as this user (h_hpq*); see h_cli_as */
	gid_t cli_gid;
	char cli_copy[128]; /* <dir>/bin/hpq once made: what cli_uid runs */
	char **paths;     /* h_path's strings, each kept until h_cluster_free */
	size_t npaths, cappaths;
};

/* The output of one CLI run. */
struct h_out {
	int code;         /* exit status; 128 + signal if killed */
	char *out;        /* stdout, NUL-terminated */
	char *err;        /* stderr */
};

const char *h_bin(const char *which); /* "hpqd", "agent", "hpq", "trainer" */

/* Creates the temp dir and the guardian. Fatal (test fails) on error. */
struct h_cluster *h_cluster_new(void);
/* Stops everything, removes the dir (unless HPQ_KEEP_TMP), prints log
 * tails unless h_pass() was called. Returns -1 if hpqd failed to stop
 * cleanly on SIGTERM (nonzero exit: a crash or a sanitizer report). */
int h_cluster_free(struct h_cluster *c);
void h_pass(struct h_cluster *c);

/* Writes <dir>/hpqd.conf with text; later daemon starts use --config. */
void h_daemon_config(struct h_cluster *c, const char *text);
/* Starts hpqd and waits for its port file and socket. */
void h_daemon_start(struct h_cluster *c);
/* Tasks as root, which is what the tests submit as: the harness allows
 * them in hpqd ([auth] allow_root_tasks = yes, ahead of the test's own
 * config text) and in every agent (--allow-root-tasks), unless told
 * otherwise here, for the daemons and agents started after the call. */
void h_root_tasks(struct h_cluster *c, bool daemon, bool agents);
/* Sends sig; for SIGKILL waits for it to die. For SIGTERM waits for a
 * clean exit and returns its wait status. */
int h_daemon_stop(struct h_cluster *c, int sig);

/* Starts an agent named name (work dir <dir>/<name>); returns its index. */
int h_agent_start(struct h_cluster *c, const char *name, unsigned gpus, unsigned cpus,
		  const char *mem);
/* Starts an agent that connects to hpqd's TCP port (TLS) instead of its
 * Unix socket, with extra options (NULL-terminated, at most
 * H_AGENT_EXTRA): --join TOKEN --ca-hash HASH, say. */
int h_agent_start_tcp(struct h_cluster *c, const char *name, unsigned gpus, unsigned cpus,
		      const char *mem, const char *const *extra);
/* Starts an agent on hpqd's Unix socket, as h_agent_start does, with
 * extra options (NULL-terminated, at most H_AGENT_EXTRA): "--health-disk",
 * "/scratch", say. */
int h_agent_start_opts(struct h_cluster *c, const char *name, unsigned gpus, unsigned cpus,
		       const char *mem, const char *const *extra);
/* Starts agent i again with the same settings (after h_agent_stop). */
void h_agent_restart(struct h_cluster *c, int i);
void h_agent_stop(struct h_cluster *c, int i, int sig);
int h_agent_index(struct h_cluster *c, const char *name);

/* Runs the CLI (h_hpq*) as uid:gid from now on; 0, 0 runs it as the test
 * again. Another user need not reach the build tree (a checkout in root's
 * 0700 home): the first call copies hpq, which the harness runs for that
 * user, to <dir>/bin/hpq (mode 0755, the dir 0755), with the TLS module it
 * loads from beside itself, and makes <dir> itself traversable (0711),
 * since the CLI works in it and reaches the socket there. A task such a
 * user submits runs in <dir> too. */
void h_cli_as(struct h_cluster *c, uid_t uid, gid_t gid);
/* hpq-tls.so, which h_bin("hpq") loads to speak TLS: beside it. */
const char *h_cli_tls_module(void);
/* Copies the file at src to dst with mode (the harness's own use above,
 * and for a test's programs that another user must run). */
void h_copy_file(const char *src, const char *dst, mode_t mode);

/* Runs hpq with the args (NULL-terminated) in <dir>, HPQ_SOCKET set.
 * Returns the exit code; out is filled (free with h_out_free) if non-NULL. */
int h_hpq(struct h_cluster *c, struct h_out *out, const char *arg, ...)
	__attribute__((sentinel));
int h_hpqv(struct h_cluster *c, struct h_out *out, const char *const *argv);
void h_out_free(struct h_out *o);

/* Runs a read command with --json appended; asserts exit 0 and valid JSON. */
json_t *h_hpq_json(struct h_cluster *c, const char *arg, ...) __attribute__((sentinel));

/* `hpq submit ARGS`; asserts success and returns the printed task id. */
uint64_t h_submit(struct h_cluster *c, const char *arg, ...) __attribute__((sentinel));

/* All tasks (hpq list --json), as an array (a new reference). */
json_t *h_tasks(struct h_cluster *c);
/* One task (hpq show ID --json); NULL if the show fails. */
json_t *h_task(struct h_cluster *c, uint64_t id);
/* Whether the event log (hpq events, its newest 100,000) holds an event of
 * kind (NULL: any kind) whose message contains text. */
bool h_has_event(struct h_cluster *c, const char *kind, const char *text);
/* The same among task id's own events (hpq show). */
bool h_task_has_event(struct h_cluster *c, uint64_t id, const char *kind, const char *text);
/* The same among node's events (hpq events --node). */
bool h_node_has_event(struct h_cluster *c, const char *node, const char *kind, const char *text);
/* The step of the task's newest checkpoint (hpq show); -1 if none. */
long long h_newest_step(struct h_cluster *c, uint64_t id);
/* A task id as text, for an hpq argument: one of four rotating buffers. */
const char *h_id(uint64_t id);
/* Finds the task with this id in an array from h_tasks (borrowed). */
json_t *h_find_task(json_t *tasks, uint64_t id);
/* Task field helpers: "" / -1 when absent or null. */
const char *h_str(json_t *obj, const char *key);
long long h_int(json_t *obj, const char *key);
bool h_is_terminal(const char *state);

/* Polls hpq show until the task is in state (or, with state NULL, any
 * terminal state); true if it got there before timeout_ms. */
H_MUST_USE bool h_wait_state(struct h_cluster *c, uint64_t id, const char *state,
			     int timeout_ms);
/* Waits until n nodes are connected (hpq node list --json). */
H_MUST_USE bool h_wait_nodes(struct h_cluster *c, int n, int timeout_ms);

/*
 * The daemon's progress, for waiting on what it has done instead of on
 * wall time: "the node was not declared lost" holds once the daemon has
 * checked it a few more times, however slow the machine is. All count
 * from 0 when hpqd starts.
 *
 * h_status_counter: a top-level counter of `hpq status --json`:
 *   "cycles"         dispatcher cycles run (one follows every change of a
 *                    task or node; an idle daemon runs none),
 *   "node_checks"    unreachability checks of the nodes (every heartbeat/2
 *                    of the daemon's [agents] heartbeat, 5 s by default),
 *   "repair_checks"  passes of the repair timer (every heartbeat/2, at
 *                    most 1 s).
 * h_node_heartbeats: heartbeats hpqd received from node (`hpq node list
 * --json`); -1 if there is no such node. The harness's agents send one a
 * second.
 *
 * The waits return true once the counter got there, and otherwise print
 * what it reached and return false (use them in assert_true):
 * h_wait_counter waits until key >= target; the others until the counter
 * has advanced n beyond its value when they are called.
 */
long long h_status_counter(struct h_cluster *c, const char *key);
long long h_node_heartbeats(struct h_cluster *c, const char *node);
H_MUST_USE bool h_wait_counter(struct h_cluster *c, const char *key, long long target,
			       int timeout_ms);
H_MUST_USE bool h_wait_node_checks(struct h_cluster *c, int n, int timeout_ms);
H_MUST_USE bool h_wait_repair_checks(struct h_cluster *c, int n, int timeout_ms);
H_MUST_USE bool h_wait_heartbeats(struct h_cluster *c, const char *node, int n, int timeout_ms);

/* Waits for a child a test forked itself (not hpqd or an agent), which
 * h_reap may already have reaped. Returns its wait status, -1 on timeout. */
int h_wait_child(struct h_cluster *c, pid_t pid, int timeout_ms);

/* The first decimal number in text (what `hpq submit` prints), or 0. */
uint64_t h_parse_id(const char *text);

/* Pids of the processes of task id (found by HPQ_TASK_ID=id and our
 * marker in their environment); returns how many, at most max. */
int h_task_pids(struct h_cluster *c, uint64_t id, pid_t *pids, int max);

/* Reaps exited children (tasks orphaned to us, agents, hpqd) and records
 * the statuses of the ones the harness tracks. */
void h_reap(struct h_cluster *c);

int64_t h_now_ms(void);
void h_sleep_ms(int ms);

static inline H_MUST_USE bool h__wait_result(bool ok)
{
	return ok;
}

/* Evaluates expr every 50 ms (reaping children meanwhile) until it is
 * true or timeout_ms passed; yields its final truth value, which the test
 * must use (assert_true(H_WAIT_FOR(...)), or a fail_msg that says what
 * did not happen). timeout_ms is a deadline against hanging, generous for
 * a loaded machine, never the thing a test measures: expr is evaluated
 * at least once, however late. */
#define H_WAIT_FOR(c, expr, timeout_ms) h__wait_result(({			\
	int64_t h__end = h_now_ms() + (timeout_ms);				\
	bool h__ok;								\
	for (;;) {								\
		h_reap(c);							\
		if ((h__ok = (expr)) || h_now_ms() >= h__end)			\
			break;							\
		h_sleep_ms(50);							\
	}									\
	h__ok;									\
}))

/*
 * The example trainer for a task that is to be stopped and resumed
 * (preempted, its node lost or repaired), as a `sh -c` command: its first
 * attempt runs until it is stopped, so that however slow the machine it
 * still runs when its stop comes; a later attempt resumes at the step of
 * $HPQ_RESUME_FROM and runs to h_resumed_steps() of it, then exits 0. The
 * trainer is the task's process (exec), so it gets the stop signal itself.
 * every: its --every (checkpoint every that many steps; 0: only when
 * signalled). Returns buf.
 */
const char *h_trainer_cmd(char *buf, size_t len, unsigned every);
long long h_resumed_steps(long long at);

/*
 * A connection driven by hand over TLS, for tests that speak the protocol
 * themselves: to 127.0.0.1:port, trusting (and proving itself) as cfg says
 * (tls.h), the certificate checked for the name 127.0.0.1. h_tls_open
 * says on stderr why it failed; h_tls_next returns the next whole message
 * (waiting at most 30 s for each piece), also what came just before the
 * daemon's close_notify, and NULL once the connection is closed or failed.
 */
struct h_tls {
	int fd;
	struct hpq_framer f;
	struct hpq_tls_ctx *ctx;
	struct hpq_tls *tls;
};
/* Raw frames, for tests that pipeline requests or read replies as they
 * come: appends env's frame to *buf (of *len bytes); reads the next frame
 * on fd through f, which keeps what a read brought after it, waiting at
 * most timeout_ms in all (NULL on EOF or timeout). */
void h_append_frame(uint8_t **buf, size_t *len, const Hpq__Envelope *env);
Hpq__Envelope *h_next_frame(int fd, struct hpq_framer *f, int timeout_ms);

bool h_tls_open(struct h_tls *r, int port, const struct hpq_tls_config *cfg);
bool h_tls_send(struct h_tls *r, const Hpq__Envelope *env);
Hpq__Envelope *h_tls_next(struct h_tls *r);
void h_tls_close(struct h_tls *r);
/* A node's own connection: trusting the cluster CA ca, proving itself
 * with pem (its key and certificate, as node.pem holds them); fails the
 * test if the handshake does. */
void h_tls_open_node(struct h_tls *r, int port, const char *pem, const char *ca);
/* Sends env with id and returns the reply to it, skipping others; NULL
 * once the connection is closed. */
Hpq__Envelope *h_tls_call(struct h_tls *r, uint64_t id, Hpq__Envelope *env);
/* Hello as the agent of node name (id 1); a heartbeat (id): their replies. */
Hpq__Envelope *h_tls_hello(struct h_tls *r, const char *name);
Hpq__Envelope *h_tls_beat(struct h_tls *r, uint64_t id);
/* Whether hpq node list says node name is connected. */
bool h_node_connected(struct h_cluster *c, const char *name);

/* Small file helpers. h_read_file returns a malloc'd NUL-terminated
 * string or NULL. h_path returns <dir>/<formatted>, valid until
 * h_cluster_free (the same string for the same path: calling it in a
 * polling loop costs no memory), so a test may keep it across waits. */
char *h_read_file(const char *path);
void h_write_file(const char *path, const char *text);
const char *h_path(struct h_cluster *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* What node's agent keeps of task id's output: its attempts' log files
 * (<node>/logs/<cluster id>/<id>.<attempt>.log, the cluster id from the
 * daemon's <dir>/cluster-id) one after the other; NULL if none is there. */
char *h_task_log(struct h_cluster *c, const char *node, uint64_t id);
/* Counts lines of file equal to line (without the newline), or starting
 * with prefix. */
int h_count_lines(const char *path, const char *line);
int h_count_prefix(const char *path, const char *prefix);
/* Whether the file holds text anywhere (false if it cannot be read). */
bool h_file_has(const char *path, const char *text);

/* Prints the last lines of the daemon and agent logs to stderr. */
void h_dump_logs(struct h_cluster *c);

/* For cmocka group fixtures: a test's state is its cluster. */
int h_setup(void **state);
int h_teardown(void **state);

#endif
