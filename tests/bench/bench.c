/*
 * bench.c: the shared part of the benchmarks (bench.h): start and stop a
 * real hpqd on a temp dir, time, quantiles.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *bench_bin(const char *which)
{
	const char *e;

	if (strcmp(which, "hpqd") == 0)
		return (e = getenv("HPQ_BENCH_HPQD")) && *e ? e : HPQ_BENCH_HPQD_PATH;
	return (e = getenv("HPQ_BENCH_HPQ")) && *e ? e : HPQ_BENCH_HPQ_PATH;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_quantile(double *v, size_t n, double q)
{
	size_t rank;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	rank = (size_t)(q * (double)n + 0.999999);
	if (rank == 0)
		rank = 1;
	return v[(rank > n ? n : rank) - 1];
}

static int connectable(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

void bench_daemon_start(struct bench_daemon *d)
{
	char log[128];
	int status;

	strcpy(d->dir, "/tmp/hpqb-XXXXXX");
	if (!mkdtemp(d->dir)) {
		fprintf(stderr, "bench: cannot create a temp dir: %s\n", strerror(errno));
		exit(1);
	}
	snprintf(d->sock, sizeof(d->sock), "%s/hpqd.sock", d->dir);
	snprintf(log, sizeof(log), "%s/hpqd.log", d->dir);
	d->pid = fork();
	if (d->pid < 0) {
		fprintf(stderr, "bench: fork: %s\n", strerror(errno));
		exit(1);
	}
	if (d->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
			_exit(127);
		execl(bench_bin("hpqd"), "hpqd", "--foreground", "--state-dir", d->dir, "--socket",
		      d->sock, "--listen", "127.0.0.1:0", "--log-level", "warning", (char *)NULL);
		fprintf(stderr, "bench: cannot run '%s': %s\n", bench_bin("hpqd"),
			strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < 3000; i++) {
		if (connectable(d->sock))
			return;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			fprintf(stderr, "bench: hpqd exited during start; see %s\n", log);
			exit(1);
		}
		usleep(10000);
	}
	fprintf(stderr, "bench: hpqd did not start within 30 s; see %s\n", log);
	kill(d->pid, SIGKILL);
	exit(1);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

void bench_daemon_stop(struct bench_daemon *d)
{
	int status;

	kill(d->pid, SIGTERM);
	for (int i = 0; i < 2000; i++) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid)
			goto gone;
		usleep(10000);
	}
	fprintf(stderr, "bench: hpqd ignored SIGTERM for 20 s; killing it\n");
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &status, 0);
gone:
	if (!getenv("HPQ_KEEP_TMP"))
		nftw(d->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
