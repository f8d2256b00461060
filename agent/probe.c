/*
 * probe.c: helper processes for the health monitors (see probe.h).
 *
 * The child is made the same way as a task's (exec.c), with less to do:
 * default signal dispositions and an empty signal mask (the agent ignores
 * SIGPIPE and libev may block signals), a new session, stdin and stderr
 * on /dev/null, stdout on the pipe, every other descriptor closed. It
 * runs as the agent's user, with the agent's environment.
 *
 * A run ends when its process exits, not when the pipe closes: a script
 * that leaves a background process holding stdout must not look hung.
 * What the process wrote before it exited is still in the pipe and is
 * read then; its leftovers in the session are killed, as for tasks.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "probe.h"
#include "xalloc.h"

#define PROBE_READ_CHUNK 4096

/* Reads what the pipe holds now; closes it at EOF or on an error. */
static void probe_read(struct probe *p)
{
	char chunk[PROBE_READ_CHUNK];

	while (p->fd >= 0) {
		ssize_t n = read(p->fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			ev_io_stop(p->loop, &p->io_w);
			close(p->fd);
			p->fd = -1;
			return;
		}
		if (p->out_len < p->max_output) {
			size_t keep = (size_t)n;

			if (keep > p->max_output - p->out_len)
				keep = p->max_output - p->out_len;
			p->out = xrealloc(p->out, p->out_len + keep + 1);
			memcpy(p->out + p->out_len, chunk, keep);
			p->out_len += keep;
			p->out[p->out_len] = '\0';
		}
	}
}

static void probe_close_pipe(struct probe *p)
{
	ev_io_stop(p->loop, &p->io_w);
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
}

static void probe_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	probe_read(w->data);
}

static void probe_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct probe *p = w->data;
	pid_t pid = p->pid;

	ev_child_stop(loop, w);
	p->pid = 0;
	if (!p->running)
		return; /* reaped after a timeout that was reported already */
	/* Whatever it left in its session goes with it. */
	(void)kill(-pid, SIGKILL);
	ev_timer_stop(loop, &p->timer_w);
	probe_read(p);
	probe_close_pipe(p);
	p->status = w->rstatus;
	p->running = false;
	p->done(p); /* last: it may start the next run or free p */
}

static void probe_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct probe *p = w->data;

	/* The session first, then the leader in case it never made one. */
	(void)kill(-p->pid, SIGKILL);
	(void)kill(p->pid, SIGKILL);
	probe_read(p);
	probe_close_pipe(p);
	p->timed_out = true;
	p->running = false;
	p->done(p);
}

void probe_init(struct probe *p, struct ev_loop *loop, size_t max_output, probe_done_fn *done,
		void *data)
{
	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->max_output = max_output;
	p->done = done;
	p->data = data;
	p->fd = -1;
	p->out = xstrdup("");
	ev_io_init(&p->io_w, probe_io_cb, -1, EV_READ);
	ev_child_init(&p->child_w, probe_child_cb, 0, 0);
	ev_timer_init(&p->timer_w, probe_timer_cb, 0.0, 0.0);
	p->io_w.data = p->child_w.data = p->timer_w.data = p;
}

void probe_release(struct probe *p)
{
	if (p->pid > 0) {
		(void)kill(-p->pid, SIGKILL);
		(void)kill(p->pid, SIGKILL);
	}
	ev_child_stop(p->loop, &p->child_w);
	ev_timer_stop(p->loop, &p->timer_w);
	probe_close_pipe(p);
	free(p->out);
	p->out = NULL;
	p->pid = 0;
	p->running = false;
}

bool probe_busy(const struct probe *p)
{
	return p->running || p->pid > 0;
}

static void probe_child(int nullfd, int outfd, char *const argv[], probe_body_fn *body, void *arg)
	__attribute__((noreturn));

static void probe_child(int nullfd, int outfd, char *const argv[], probe_body_fn *body, void *arg)
{
	sigset_t none;
	int e;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	(void)setsid();
	if (dup2(nullfd, 0) < 0 || dup2(outfd, 1) < 0 || dup2(nullfd, 2) < 0)
		_exit(127);
	/*
	 * Closed, not just close-on-exec: a forked body never execs, and a copy
	 * of the agent's lock, its socket to hpqd or its listening socket held
	 * by a child stuck in the kernel would outlive the agent.
	 */
	if (close_range(3, ~0U, 0) < 0)
		for (int fd = 3; fd < 1024; fd++)
			(void)close(fd);
	/* Exactly one of argv and body is given (probe_run / probe_fork);
	 * testing argv lets the compiler see execvp never gets a NULL. */
	if (!argv)
		_exit(body(1, arg));
	/* systemd's notifications are the agent's, not a script's to send. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	execvp(argv[0], argv);
	e = errno;
	dprintf(1, "cannot execute '%s': %s\n", argv[0], strerror(e));
	_exit(127);
}

static int probe_start(struct probe *p, char *const argv[], probe_body_fn *body, void *arg,
		       double timeout)
{
	int fds[2], nullfd, r;
	pid_t pid;

	if (probe_busy(p))
		return HPQ_EBUSY;
	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd < 0)
		return -errno;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		r = -errno;
		close(nullfd);
		return r;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(fds[0]);
		close(fds[1]);
		close(nullfd);
		return r;
	}
	if (pid == 0)
		probe_child(nullfd, fds[1], argv, body, arg);
	close(fds[1]);
	close(nullfd);
	(void)fcntl(fds[0], F_SETFL, O_NONBLOCK);

	p->pid = pid;
	p->fd = fds[0];
	p->running = true;
	p->timed_out = false;
	p->status = 0;
	p->out_len = 0;
	p->out[0] = '\0';
	ev_io_set(&p->io_w, p->fd, EV_READ);
	ev_io_start(p->loop, &p->io_w);
	ev_child_set(&p->child_w, pid, 0);
	ev_child_start(p->loop, &p->child_w);
	ev_timer_set(&p->timer_w, timeout > 0 ? timeout : 1.0, 0.0);
	ev_timer_start(p->loop, &p->timer_w);
	return 0;
}

int probe_spawn(struct probe *p, char *const argv[], double timeout)
{
	return probe_start(p, argv, NULL, NULL, timeout);
}

int probe_fork(struct probe *p, probe_body_fn *body, void *arg, double timeout)
{
	return probe_start(p, NULL, body, arg, timeout);
}

void probe_first_line(const struct probe *p, char *buf, size_t len)
{
	const char *s = p->out ? p->out : "";
	size_t n, o = 0;

	if (len == 0)
		return;
	s += strspn(s, " \t\r");
	n = strcspn(s, "\n");
	for (size_t i = 0; i < n && o + 1 < len; i++)
		buf[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
	while (o > 0 && buf[o - 1] == ' ')
		o--;
	buf[o] = '\0';
}

char *probe_which(const char *name)
{
	const char *path = getenv("PATH");
	char *copy = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin"), *dir, *save;
	char *found = NULL;

	for (dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		char *full;

		xasprintf(&full, "%s/%s", dir, name);
		if (access(full, X_OK) == 0)
			found = full;
		else
			free(full);
	}
	free(copy);
	return found;
}
