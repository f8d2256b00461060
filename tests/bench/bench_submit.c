/*
 * bench_submit: durable submit throughput, in tasks per second that the
 * daemon acknowledged. An acknowledgement comes only after the task is
 * committed with synchronous=FULL (docs/design.md §6), so this measures the storage
 * path and its group commit: one client waits for every commit in turn,
 * several concurrent clients can share commits.
 *
 *	bench_submit [--clients 1,8] [--tasks 2000] [--runs 5]
 *		     [--transport unix,tls] [--munge-socket PATH]
 *
 * Transports (bench.h): unix, the daemon's Unix socket; tls, TCP on
 * loopback with TLS 1.3 and the user proved by MUNGE; plain, TCP to an
 * --insecure hpqd (a reference without either). For tls a private munged
 * is started (or --munge-socket names a running one), which hpqd decodes
 * with and the clients encode with.
 *
 * For each client count, runs are interleaved across the transports (run 1
 * of each, then run 2 of each...), so that a disturbance on a shared
 * machine hits them alike. Each run starts a fresh hpqd on a temp dir (no
 * agents: nothing is dispatched), forks the clients, lets them connect
 * (TLS handshake and MUNGE included), then starts them together; each
 * submits its share of --tasks through common/client.h, one request at a
 * time. A run's figure is all acks divided by the time from the start
 * signal to the last ack. It prints every run, the medians, each
 * transport's median over unix's, and the CPU time hpqd and the clients
 * used in that window per task (medians): on a busy machine the rates
 * swing, the CPU per task much less.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"
#include "msg.h"

#define MAX_CLIENTS 64
#define MAX_RUNS 50

/* What a client reports at its end. */
struct client_done {
	int acked;
	double cpu_s; /* its CPU time from the start to its last ack */
};

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* One client: connect, report ready, wait for the start, submit n tasks,
 * write the number acknowledged and the CPU time used to out. */
static void client(const char *addr, int n, int ready, int go, int out)
{
	static char *argv[] = {(char *)"true"};
	struct hpq_client c;
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	struct client_done done = {0};
	char b;

	if (hpq_client_connect(&c, addr, 30000) < 0) {
		fprintf(stderr, "bench_submit: %s\n", c.errbuf);
		_exit(1);
	}
	res.cpus = 1;
	spec.name = (char *)"bench";
	spec.per_node = &res;
	spec.argv = argv;
	spec.n_argv = 1;
	spec.cwd = (char *)"/";
	sub.spec = &spec;
	req.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	req.submit = &sub;

	if (write(ready, "r", 1) != 1 || read(go, &b, 1) != 0)
		_exit(1);
	done.cpu_s = -self_cpu_s();
	for (int i = 0; i < n; i++) {
		int r = hpq_client_call(&c, &req, &reply);

		if (r < 0) {
			fprintf(stderr, "bench_submit: submit %d: %s\n", i, c.errbuf);
			break;
		}
		done.acked += reply->body_case == HPQ__ENVELOPE__BODY_SUBMIT_REPLY &&
			      reply->submit_reply->id > 0;
		hpq_msg_free(reply);
	}
	done.cpu_s += self_cpu_s();
	hpq_client_close(&c);
	if (write(out, &done, sizeof(done)) != sizeof(done))
		_exit(1);
	_exit(0);
}

struct result {
	double rate;      /* tasks/s */
	double hpqd_us;   /* hpqd's CPU time per task acknowledged */
	double client_us; /* the clients', all together, per task */
};

/* One run with nclients clients and ntasks tasks in all over transport t. */
static struct result run(int nclients, int ntasks, enum bench_transport t,
			 const char *munge_sock)
{
	struct bench_daemon d;
	struct result res;
	int ready[2], go[2], out[2], total = 0;
	pid_t pids[MAX_CLIENTS];
	double cpu0, cpu1, client_cpu = 0;
	uint64_t t0, t1;
	char b;

	bench_daemon_start(&d, t, munge_sock);
	if (pipe(ready) < 0 || pipe(go) < 0 || pipe(out) < 0) {
		perror("pipe");
		exit(1);
	}
	for (int i = 0; i < nclients; i++) {
		int share = ntasks / nclients + (i < ntasks % nclients);

		if ((pids[i] = fork()) < 0) {
			perror("fork");
			exit(1);
		}
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			close(out[0]);
			client(d.addr, share, ready[1], go[0], out[1]);
		}
	}
	close(ready[1]);
	close(go[0]);
	close(out[1]);
	for (int i = 0; i < nclients; i++)
		if (read(ready[0], &b, 1) != 1) {
			fprintf(stderr, "bench_submit: a client failed to connect\n");
			goto fail;
		}
	cpu0 = bench_proc_cpu_s(d.pid);
	t0 = bench_now_ns();
	close(go[1]);
	for (int i = 0; i < nclients; i++) {
		struct client_done done;

		if (read(out[0], &done, sizeof(done)) != sizeof(done)) {
			fprintf(stderr, "bench_submit: a client failed\n");
			goto fail;
		}
		total += done.acked;
		client_cpu += done.cpu_s;
	}
	t1 = bench_now_ns();
	cpu1 = bench_proc_cpu_s(d.pid);
	for (int i = 0; i < nclients; i++)
		waitpid(pids[i], NULL, 0);
	close(ready[0]);
	close(out[0]);
	bench_daemon_stop(&d);
	if (total != ntasks)
		fprintf(stderr, "bench_submit: only %d of %d submits acknowledged\n", total, ntasks);
	res.rate = total / ((double)(t1 - t0) / 1e9);
	res.hpqd_us = total ? (cpu1 - cpu0) * 1e6 / total : 0;
	res.client_us = total ? client_cpu * 1e6 / total : 0;
	return res;

fail:
	/* The clients that are still up, then the daemon (and munged, at
	 * exit): nothing is left running. */
	for (int i = 0; i < nclients; i++)
		kill(pids[i], SIGTERM);
	for (int i = 0; i < nclients; i++)
		waitpid(pids[i], NULL, 0);
	bench_daemon_stop(&d);
	exit(1);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_submit [--clients 1,8] [--tasks 2000] [--runs 5]\n"
		   "                    [--transport unix,tls] [--munge-socket PATH]\n"
		   "transports: unix (Unix socket), tls (TCP, TLS 1.3 + MUNGE), plain (TCP to an\n"
		   "--insecure hpqd); tls starts a private munged unless --munge-socket\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"clients", required_argument, NULL, 'c'},
		{"tasks", required_argument, NULL, 't'},
		{"runs", required_argument, NULL, 'r'},
		{"transport", required_argument, NULL, 'T'},
		{"munge-socket", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *clients = "1,8", *transport = "unix,tls", *munge_sock = NULL;
	enum bench_transport tr[BENCH_NTRANSPORTS];
	struct bench_munged m = {0};
	int ntasks = 2000, runs = 5, ntr, o, unix_at = -1;
	bool need_munge = false;

	while ((o = getopt_long(argc, argv, "c:t:r:T:m:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			clients = optarg;
			break;
		case 't':
			ntasks = atoi(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'T':
			transport = optarg;
			break;
		case 'm':
			munge_sock = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (ntasks < 1 || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "bench_submit: --tasks must be >= 1, --runs 1..%d\n", MAX_RUNS);
		return 2;
	}
	ntr = bench_transports(transport, tr);
	if (ntr < 0)
		return 2;
	/* Check every count before anything starts. */
	for (const char *p = clients; *p;) {
		char *end;
		long n = strtol(p, &end, 10);

		if (end == p || n < 1 || n > MAX_CLIENTS || (*end && *end != ',')) {
			fprintf(stderr, "bench_submit: --clients takes counts 1..%d, like 1,8\n",
				MAX_CLIENTS);
			return 2;
		}
		p = *end ? end + 1 : end;
	}
	for (int i = 0; i < ntr; i++) {
		need_munge |= tr[i] == BENCH_TLS;
		if (tr[i] == BENCH_UNIX)
			unix_at = i;
	}
	if (need_munge && !munge_sock) {
		if (bench_munged_start(&m) < 0) {
			fprintf(stderr, "bench_submit: tls needs munged (run as root, or give "
					"--munge-socket, or --transport unix)\n");
			return 1;
		}
		munge_sock = m.sock;
	}

	printf("durable submit throughput, %d tasks per run, %d runs, hpqd %s\n", ntasks, runs,
	       bench_bin("hpqd"));
	printf("transports:");
	for (int i = 0; i < ntr; i++)
		printf("%s %s", i ? "," : "", tr[i] == BENCH_UNIX ? "unix (Unix socket)"
			      : tr[i] == BENCH_TLS ? "tls (TCP 127.0.0.1, TLS 1.3, MUNGE)"
			      : "plain (TCP 127.0.0.1, hpqd --insecure)");
	printf("; runs interleaved, tasks/s\n");
	for (const char *p = clients; *p;) {
		char *end;
		long n = strtol(p, &end, 10);
		double rate[BENCH_NTRANSPORTS][MAX_RUNS], med[BENCH_NTRANSPORTS];
		double hpqd[BENCH_NTRANSPORTS][MAX_RUNS], cl[BENCH_NTRANSPORTS][MAX_RUNS];

		for (int r = 0; r < runs; r++) {
			char label[16];

			snprintf(label, sizeof(label), "run %d:", r + 1);
			printf("%2ld client%s %-7s", n, n == 1 ? " " : "s", label);
			fflush(stdout);
			for (int i = 0; i < ntr; i++) {
				struct result res = run((int)n, ntasks, tr[i], munge_sock);

				rate[i][r] = res.rate;
				hpqd[i][r] = res.hpqd_us;
				cl[i][r] = res.client_us;
				printf("  %-5s %7.0f", bench_transport_name(tr[i]), rate[i][r]);
				fflush(stdout);
			}
			printf("\n");
		}
		printf("%2ld client%s %-7s", n, n == 1 ? " " : "s", "median:");
		for (int i = 0; i < ntr; i++) {
			med[i] = bench_quantile(rate[i], (size_t)runs, 0.5);
			printf("  %-5s %7.0f", bench_transport_name(tr[i]), med[i]);
		}
		printf("\n");
		if (unix_at >= 0 && ntr > 1) {
			printf("%2ld client%s %-7s", n, n == 1 ? " " : "s", "ratio:");
			for (int i = 0; i < ntr; i++)
				if (i != unix_at)
					printf("  %s/unix %5.2f", bench_transport_name(tr[i]),
					       med[unix_at] > 0 ? med[i] / med[unix_at] : 0.0);
			printf("  (medians)\n");
		}
		printf("%2ld client%s %-7s", n, n == 1 ? " " : "s", "cpu:");
		for (int i = 0; i < ntr; i++)
			printf("  %-5s %3.0f+%-3.0f", bench_transport_name(tr[i]),
			       bench_quantile(hpqd[i], (size_t)runs, 0.5),
			       bench_quantile(cl[i], (size_t)runs, 0.5));
		printf("  (us per task: hpqd+clients, medians)\n");
		fflush(stdout);
		p = *end ? end + 1 : end;
	}
	bench_munged_stop(&m);
	return 0;
}
