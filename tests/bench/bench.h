/*
 * bench.h: what the hpq benchmarks share: a real hpqd on a fresh temp
 * dir (no agents, so nothing but the daemon is measured), a monotonic
 * clock, and order statistics. The benchmarks are run by hand (README.md);
 * ctest does not run them, because timing on a shared machine is not a
 * pass/fail question.
 */
#ifndef HPQ_BENCH_H
#define HPQ_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bench_daemon {
	char dir[64];   /* /tmp/hpqb-XXXXXX: state dir, socket, log */
	char sock[100];
	pid_t pid;
};

/* Path of hpqd or hpq: $HPQ_BENCH_HPQD / $HPQ_BENCH_HPQ, else the build's. */
const char *bench_bin(const char *which);

/* Starts hpqd (log level warning, stderr to <dir>/hpqd.log) and waits
 * until its socket accepts. Exits the program on failure. */
void bench_daemon_start(struct bench_daemon *d);
/* SIGTERM, wait, remove the dir. */
void bench_daemon_stop(struct bench_daemon *d);

uint64_t bench_now_ns(void);

/* Sorts v in place and returns the value at quantile q (0..1), nearest
 * rank. */
double bench_quantile(double *v, size_t n, double q);

#endif
