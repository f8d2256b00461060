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

/* How the clients reach the daemon. */
enum bench_transport {
	BENCH_UNIX,  /* its Unix socket; the user is the peer's SO_PEERCRED uid */
	BENCH_TLS,   /* TCP on 127.0.0.1: TLS 1.3, the user proved by MUNGE */
	BENCH_PLAIN, /* TCP on 127.0.0.1 to an --insecure hpqd: neither */
	BENCH_NTRANSPORTS
};

struct bench_daemon {
	char dir[64];   /* /tmp/hpqb-XXXXXX: state dir, socket, config, log */
	char sock[100];
	char ca[100];   /* <dir>/ca.crt: a copy of the cluster CA, for clients */
	char addr[100]; /* what clients dial: sock, or 127.0.0.1:PORT */
	int port;       /* hpqd's TCP port (its hpqd.port) */
	pid_t pid;
};

/* A private munged of the benchmark's own (as tests/integration/t_munge.c
 * starts one): fresh key, socket, pid file, log and seed in a temp dir. */
struct bench_munged {
	char dir[64];
	char sock[100];
	pid_t pid;
};

/* More of hpqd's config, appended after the [auth] section when not NULL
 * (e.g. "[limits]\nmax_pending_tasks = 1000000\n"). */
extern const char *bench_extra_config;

/* Path of hpqd or hpq: $HPQ_BENCH_HPQD / $HPQ_BENCH_HPQ, else the build's. */
const char *bench_bin(const char *which);

const char *bench_transport_name(enum bench_transport t);
/* Parses a list like "unix,tls" into out (at most BENCH_NTRANSPORTS, no
 * repeats); returns how many, or -1 (and says why on stderr). */
int bench_transports(const char *list, enum bench_transport *out);

/* Starts hpqd for clients over transport t (log level warning, stderr to
 * <dir>/hpqd.log; [auth] allow_root_tasks = yes, since the benchmarks run
 * as whoever runs them and nothing is ever dispatched; munge_socket =
 * munge_sock unless NULL) and waits until its socket accepts and its port
 * is known. Always listens on 127.0.0.1:0 too, --insecure for BENCH_PLAIN.
 * Then sets this process's client environment (HPQ_CA_FILE, HPQ_INSECURE,
 * HPQ_MUNGE_SOCKET), inherited by the clients it forks, so that
 * hpq_client_connect(d->addr) goes over t. Exits the program on failure. */
void bench_daemon_start(struct bench_daemon *d, enum bench_transport t, const char *munge_sock);
/* SIGTERM, wait, remove the dir. */
void bench_daemon_stop(struct bench_daemon *d);

/* Starts a private munged (/usr/sbin/munged or another sbin; run as root,
 * as munged normally is) and waits until it makes credentials. Returns 0,
 * or -1 with why on stderr. */
int bench_munged_start(struct bench_munged *m);
void bench_munged_stop(struct bench_munged *m);

uint64_t bench_now_ns(void);
/* User + system CPU seconds that process pid has used so far (from
 * /proc, in clock ticks), or -1. */
double bench_proc_cpu_s(pid_t pid);

/* Sorts v in place and returns the value at quantile q (0..1), nearest
 * rank. */
double bench_quantile(double *v, size_t n, double q);

#endif
