/*
 * probe.h: a short helper process the health monitors run without
 * blocking the agent's loop: an admin health script, nvidia-smi, dmesg,
 * or a forked copy of the agent doing something that may hang (statvfs
 * of a network filesystem).
 *
 * A probe runs in its own session (so that a timeout reaches everything
 * it started) with stdin and stderr on /dev/null and stdout on a pipe the
 * loop reads (ev_io). Its exit is seen with ev_child (libev's default
 * loop), and a timer bounds it. The done callback runs once per run:
 *
 *  - when the process exits: what is left in the pipe is read, whatever
 *    the process left in its session is killed, and done sees the wait
 *    status and the output;
 *  - when the timeout passes first: the session is killed (SIGKILL) and
 *    done runs at once with timed_out set, so a process stuck in the
 *    kernel (a hung mount) cannot hold up the report. The probe stays
 *    busy until the process is reaped; probe_busy() says so, and the
 *    monitor reports it as still hung instead of starting another run.
 *
 * Output beyond max_output bytes is read and dropped, so a chatty probe
 * never blocks on a full pipe; the kept part is NUL-terminated.
 */
#ifndef HPQ_AGENT_PROBE_H
#define HPQ_AGENT_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <ev.h>

struct probe;

typedef void probe_done_fn(struct probe *p);
/* The body of a forked probe: writes its result to fd, returns the exit status. */
typedef int probe_body_fn(int fd, void *arg);

struct probe {
	struct ev_loop *loop;
	size_t max_output;
	probe_done_fn *done;
	void *data;                 /* the owner's */

	pid_t pid;                  /* > 0 from start until reaped */
	int fd;                     /* read end of the stdout pipe; -1 when closed */
	bool running;               /* started and done not yet called */
	ev_io io_w;
	ev_child child_w;
	ev_timer timer_w;

	/* Results, valid in done (and until the next start). */
	bool timed_out;
	int status;                 /* wait status; meaningful unless timed_out */
	char *out;                  /* NUL-terminated, never NULL after a run */
	size_t out_len;
};

void probe_init(struct probe *p, struct ev_loop *loop, size_t max_output, probe_done_fn *done,
		void *data);
/* Kills a probe still running or unreaped (done is not called) and frees the output. */
void probe_release(struct probe *p);

/* A run is in progress or its process is not reaped yet: no new run. */
bool probe_busy(const struct probe *p);

/*
 * Runs argv (argv[0] is a path, or a name looked up in the agent's PATH),
 * killing it after timeout seconds. Returns 0, HPQ_EBUSY while busy, or
 * -errno when no process could be made (done is then not called). A
 * program that cannot be executed exits 127 with the reason on its stdout.
 */
int probe_spawn(struct probe *p, char *const argv[], double timeout);

/* Runs body(fd, arg) in a forked child instead of a program. Same returns. */
int probe_fork(struct probe *p, probe_body_fn *body, void *arg, double timeout);

/* The full path of the executable called name in the agent's PATH (to be
 * freed), or NULL when there is none. */
char *probe_which(const char *name);

/* The first line of the output, without the newline and surrounding
 * blanks, control characters replaced by spaces, at most len - 1 bytes. */
void probe_first_line(const struct probe *p, char *buf, size_t len);

#endif
