/*
 * bench_submit: durable submit throughput, in tasks per second that the
 * daemon acknowledged. An acknowledgement comes only after the task is
 * committed with synchronous=FULL (docs/design.md §6), so this measures the storage
 * path and its group commit: one client waits for every commit in turn,
 * several concurrent clients can share commits.
 *
 *	bench_submit [--clients 1,8] [--tasks 2000] [--runs 5]
 *
 * For each client count, each run starts a fresh hpqd on a temp dir (no
 * agents: nothing is dispatched), forks the clients, lets them connect,
 * then starts them together; each submits its share of --tasks through
 * common/client.h, one request at a time. A run's figure is all acks
 * divided by the time from the start signal to the last ack; the median
 * over the runs is reported.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"
#include "msg.h"

#define MAX_CLIENTS 64
#define MAX_RUNS 50

/* One client: connect, report ready, wait for the start, submit n tasks,
 * write the number acknowledged to out. */
static void client(const char *sock, int n, int ready, int go, int out)
{
	static char *argv[] = {(char *)"true"};
	struct hpq_client c;
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	int acked = 0;
	char b;

	if (hpq_client_connect(&c, sock, 30000) < 0) {
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
	for (int i = 0; i < n; i++) {
		int r = hpq_client_call(&c, &req, &reply);

		if (r < 0) {
			fprintf(stderr, "bench_submit: submit %d: %s\n", i, c.errbuf);
			break;
		}
		acked += reply->body_case == HPQ__ENVELOPE__BODY_SUBMIT_REPLY &&
			 reply->submit_reply->id > 0;
		hpq_msg_free(reply);
	}
	hpq_client_close(&c);
	if (write(out, &acked, sizeof(acked)) != sizeof(acked))
		_exit(1);
	_exit(0);
}

/* One run with nclients clients and ntasks tasks in all; returns tasks/s. */
static double run(int nclients, int ntasks)
{
	struct bench_daemon d;
	int ready[2], go[2], out[2], total = 0;
	pid_t pids[MAX_CLIENTS];
	uint64_t t0, t1;
	char b;

	bench_daemon_start(&d);
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
			client(d.sock, share, ready[1], go[0], out[1]);
		}
	}
	close(ready[1]);
	close(go[0]);
	close(out[1]);
	for (int i = 0; i < nclients; i++)
		if (read(ready[0], &b, 1) != 1) {
			fprintf(stderr, "bench_submit: a client failed to connect\n");
			exit(1);
		}
	t0 = bench_now_ns();
	close(go[1]);
	for (int i = 0; i < nclients; i++) {
		int acked;

		if (read(out[0], &acked, sizeof(acked)) != sizeof(acked)) {
			fprintf(stderr, "bench_submit: a client failed\n");
			exit(1);
		}
		total += acked;
	}
	t1 = bench_now_ns();
	for (int i = 0; i < nclients; i++)
		waitpid(pids[i], NULL, 0);
	close(ready[0]);
	close(out[0]);
	bench_daemon_stop(&d);
	if (total != ntasks)
		fprintf(stderr, "bench_submit: only %d of %d submits acknowledged\n", total, ntasks);
	return total / ((double)(t1 - t0) / 1e9);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"clients", required_argument, NULL, 'c'},
		{"tasks", required_argument, NULL, 't'},
		{"runs", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *clients = "1,8";
	int ntasks = 2000, runs = 5, o;

	while ((o = getopt_long(argc, argv, "c:t:r:h", opts, NULL)) != -1) {
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
		default:
			fprintf(stderr, "usage: bench_submit [--clients 1,8] [--tasks 2000] "
					"[--runs 5]\n");
			return o == 'h' ? 0 : 2;
		}
	}
	if (ntasks < 1 || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "bench_submit: --tasks must be >= 1, --runs 1..%d\n", MAX_RUNS);
		return 2;
	}
	printf("durable submit throughput, %d tasks per run, %d runs, hpqd %s\n", ntasks, runs,
	       bench_bin("hpqd"));
	for (const char *p = clients; *p;) {
		char *end;
		long n = strtol(p, &end, 10);
		double rate[MAX_RUNS];

		if (end == p || n < 1 || n > MAX_CLIENTS || (*end && *end != ',')) {
			fprintf(stderr, "bench_submit: --clients takes counts 1..%d, like 1,8\n",
				MAX_CLIENTS);
			return 2;
		}
		printf("%2ld client%s:", n, n == 1 ? " " : "s");
		fflush(stdout);
		for (int r = 0; r < runs; r++) {
			rate[r] = run((int)n, ntasks);
			printf(" %.0f", rate[r]);
			fflush(stdout);
		}
		printf("  -> median %.0f tasks/s\n", bench_quantile(rate, (size_t)runs, 0.5));
		p = *end ? end + 1 : end;
	}
	return 0;
}
