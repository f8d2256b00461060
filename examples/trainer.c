/*
 * trainer.c: hpq-example-trainer, a stand-in for a training job, used by
 * the demo and the integration tests. It does what a real trainer must do
 * to live well under hpq: checkpoint every K steps and when asked to stop
 * (write a temporary file, fsync, rename, so a checkpoint is whole or
 * absent), report each checkpoint with `hpq checkpoint`, and resume from
 * $HPQ_RESUME_FROM after a preemption or a node failure.
 *
 * It uses only libc, on purpose: this is the kind of code users write.
 * Signals stay blocked except while sleeping in ppoll(), so a preemption
 * signal is seen exactly between two steps and never interrupts a write.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXIT_FAIL_AT 3

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hpq-example-trainer [--steps N] [--step-ms MS] [--every K] [--fail-at STEP]\n"
		"\n"
		"  --steps N        train up to step N (default 100)\n"
		"  --step-ms MS     time one step takes, in milliseconds (default 100)\n"
		"  --every K        checkpoint every K steps, 0 for never (default 10)\n"
		"  --fail-at STEP   exit with status 3 at step STEP (for tests)\n"
		"\n"
		"Checkpoints go to $HPQ_CHECKPOINT_DIR/ckpt-<step> (none if unset) and are\n"
		"reported with `hpq checkpoint` ($HPQ_CLI, else hpq from PATH). With\n"
		"$HPQ_RESUME_FROM set it continues from the step stored in that file.\n"
		"SIGTERM, SIGINT and SIGUSR1 checkpoint and exit with 128 + the signal.\n");
}

static uint64_t parse_num(const char *opt, const char *s)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9' || (v = strtoull(s, &end, 10), errno) || *end != '\0') {
		fprintf(stderr, "hpq-example-trainer: invalid %s '%s': expected a number\n", opt,
			s);
		exit(EXIT_USAGE);
	}
	return v;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads the step stored in a checkpoint file: a decimal number. */
static int read_checkpoint(const char *path, uint64_t *ret_step)
{
	char buf[64], *end;
	unsigned long long v;
	FILE *f = fopen(path, "r");
	bool ok;

	if (!f)
		return -1;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok || buf[0] < '0' || buf[0] > '9') {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || (*end != '\n' && *end != '\0')) {
		errno = EINVAL;
		return -1;
	}
	*ret_step = v;
	return 0;
}

/* Writes dir/ckpt-<step> atomically. Returns 0 and the path, or -1. */
static int write_checkpoint(const char *dir, uint64_t step, char *path, size_t pathlen)
{
	char tmp[PATH_MAX], content[32];
	int fd, n;

	snprintf(path, pathlen, "%s/ckpt-%" PRIu64, dir, step);
	snprintf(tmp, sizeof(tmp), "%s/.ckpt-%" PRIu64 ".%ld.tmp", dir, step, (long)getpid());
	n = snprintf(content, sizeof(content), "%" PRIu64 "\n", step);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	if (write_all(fd, content, (size_t)n) < 0 || fsync(fd) < 0) {
		close(fd);
		goto fail_unlink;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0)
		goto fail_unlink;
	/* Make the rename itself durable. */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
fail_unlink:
	n = errno;
	unlink(tmp);
	errno = n;
fail:
	fprintf(stderr, "hpq-example-trainer: cannot write checkpoint '%s': %s\n", path,
		strerror(errno));
	return -1;
}

/* Runs `hpq checkpoint --step N --path P`; a failure is only a warning. */
static void report_checkpoint(uint64_t step, const char *path, const sigset_t *origmask)
{
	const char *cli = getenv("HPQ_CLI");
	char stepbuf[32];
	pid_t pid;
	int status;

	if (!cli || !cli[0])
		cli = "hpq";
	snprintf(stepbuf, sizeof(stepbuf), "%" PRIu64, step);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "hpq-example-trainer: warning: cannot report checkpoint: %s\n",
			strerror(errno));
		return;
	}
	if (pid == 0) {
		char *argv[] = {(char *)cli, "checkpoint", "--step", stepbuf, "--path",
				(char *)path, NULL};

		sigprocmask(SIG_SETMASK, origmask, NULL);
		execvp(cli, argv);
		fprintf(stderr, "hpq-example-trainer: warning: cannot run '%s': %s\n", cli,
			strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "hpq-example-trainer: warning: waitpid: %s\n",
				strerror(errno));
			return;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr,
			"hpq-example-trainer: warning: checkpoint %" PRIu64
			" was not reported ('%s checkpoint' failed); continuing\n",
			step, cli);
}

/* Sleeps ms with the stop signals unblocked; returns early on one. */
static void sleep_ms(uint64_t ms, const sigset_t *origmask)
{
	struct timespec end, now;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)(ms / 1000);
	end.tv_nsec += (long)(ms % 1000) * 1000000;
	if (end.tv_nsec >= 1000000000) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000;
	}
	while (!stop_signal) {
		struct timespec left;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = end.tv_sec - now.tv_sec;
		left.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000;
		}
		if (left.tv_sec < 0)
			break;
		/* Atomically unblocks the signals for the wait only. */
		ppoll(NULL, 0, &left, origmask);
	}
	/* One more look, so that a zero-length sleep still sees a signal. */
	if (!stop_signal && ms == 0) {
		struct timespec zero = {0, 0};

		ppoll(NULL, 0, &zero, origmask);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"steps", required_argument, NULL, 's'},  {"step-ms", required_argument, NULL, 'm'},
		{"every", required_argument, NULL, 'e'},  {"fail-at", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	uint64_t steps = 100, step_ms = 100, every = 10, fail_at = 0, step = 0, saved = 0;
	const char *dir_env = getenv("HPQ_CHECKPOINT_DIR"), *resume = getenv("HPQ_RESUME_FROM");
	char dir[PATH_MAX], path[PATH_MAX];
	bool have_dir = false, have_saved = false;
	struct sigaction sa;
	sigset_t stopset, origmask;
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0); /* output usually goes to a log file */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			steps = parse_num("--steps", optarg);
			break;
		case 'm':
			step_ms = parse_num("--step-ms", optarg);
			break;
		case 'e':
			every = parse_num("--every", optarg);
			break;
		case 'f':
			fail_at = parse_num("--fail-at", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "hpq-example-trainer: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}

	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	sigaddset(&stopset, SIGUSR1);
	sigprocmask(SIG_BLOCK, &stopset, &origmask);
	sigdelset(&origmask, SIGTERM);
	sigdelset(&origmask, SIGINT);
	sigdelset(&origmask, SIGUSR1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);

	if (dir_env && dir_env[0]) {
		if (mkdir(dir_env, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "hpq-example-trainer: cannot create '%s': %s\n", dir_env,
				strerror(errno));
			return 1;
		}
		if (!realpath(dir_env, dir)) {
			fprintf(stderr, "hpq-example-trainer: cannot use '%s': %s\n", dir_env,
				strerror(errno));
			return 1;
		}
		have_dir = true;
	}

	if (resume && resume[0]) {
		if (read_checkpoint(resume, &step) < 0) {
			fprintf(stderr, "hpq-example-trainer: cannot resume from '%s': %s\n", resume,
				strerror(errno));
			return 1;
		}
		saved = step;
		have_saved = true;
		printf("resumed at step %" PRIu64 "\n", step);
	} else {
		printf("starting at step 0\n");
	}

	while (step < steps && !stop_signal) {
		sleep_ms(step_ms, &origmask);
		if (stop_signal)
			break;
		step++;
		printf("step %" PRIu64 "\n", step);
		if (fail_at && step == fail_at) {
			fprintf(stderr, "hpq-example-trainer: failing at step %" PRIu64
					" as asked (--fail-at)\n", step);
			return EXIT_FAIL_AT;
		}
		if (have_dir && every && step % every == 0 &&
		    write_checkpoint(dir, step, path, sizeof(path)) == 0) {
			saved = step;
			have_saved = true;
			report_checkpoint(step, path, &origmask);
		}
	}

	if (stop_signal) {
		int sig = stop_signal;

		printf("signal %d at step %" PRIu64 ": %s\n", sig, step,
		       have_dir ? "checkpointing and exiting" : "exiting");
		if (have_dir && !(have_saved && saved == step) &&
		    write_checkpoint(dir, step, path, sizeof(path)) == 0)
			report_checkpoint(step, path, &origmask);
		fflush(stdout);
		return 128 + sig;
	}
	printf("done %" PRIu64 " steps\n", steps);
	return 0;
}
