/*
 * bench_rtt: how long a person or a script waits for the CLI. Against a
 * real hpqd on a temp dir holding 20 pending tasks, it times:
 *
 *   list, one connection    a ListRequest on a connection kept open
 *                           (the daemon's request path alone)
 *   list, new connection    connect, Hello, ListRequest, close: what one
 *                           CLI invocation does on the wire
 *   exec hpq version        the whole `hpq version` process: exec, dynamic
 *                           linking, connect, Hello, exit
 *   exec hpq list           the whole `hpq list` process, table output
 *
 *	bench_rtt [--calls 2000] [--execs 200]
 *
 * Each line gives the median and the 99th percentile.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"
#include "msg.h"

static void connect_or_die(struct hpq_client *c, const char *sock)
{
	if (hpq_client_connect(c, sock, 30000) < 0) {
		fprintf(stderr, "bench_rtt: %s\n", c->errbuf);
		exit(1);
	}
}

static void call_or_die(struct hpq_client *c, Hpq__Envelope *req)
{
	Hpq__Envelope *reply;

	if (hpq_client_call(c, req, &reply) < 0) {
		fprintf(stderr, "bench_rtt: %s\n", c->errbuf);
		exit(1);
	}
	hpq_msg_free(reply);
}

static void submit_some(const char *sock, int n)
{
	static char *argv[] = {(char *)"true"};
	struct hpq_client c;
	Hpq__Envelope req = HPQ__ENVELOPE__INIT;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;

	res.cpus = 1;
	spec.per_node = &res;
	spec.argv = argv;
	spec.n_argv = 1;
	spec.cwd = (char *)"/";
	sub.spec = &spec;
	req.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	req.submit = &sub;
	connect_or_die(&c, sock);
	for (int i = 0; i < n; i++)
		call_or_die(&c, &req);
	hpq_client_close(&c);
}

static void report(const char *what, double *us, int n)
{
	double p50 = bench_quantile(us, (size_t)n, 0.5), p99 = bench_quantile(us, (size_t)n, 0.99);

	if (p50 >= 1000)
		printf("%-24s n=%-5d median %8.2f ms   p99 %8.2f ms\n", what, n, p50 / 1000,
		       p99 / 1000);
	else
		printf("%-24s n=%-5d median %8.1f us   p99 %8.1f us\n", what, n, p50, p99);
	fflush(stdout);
}

/* Runs `hpq args...` with stdout/stderr to /dev/null; returns its status. */
static int exec_hpq(const char *sock, const char *arg1)
{
	pid_t pid = fork();
	int status;

	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		setenv("HPQ_SOCKET", sock, 1);
		execl(bench_bin("hpq"), "hpq", arg1, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"calls", required_argument, NULL, 'c'},
		{"execs", required_argument, NULL, 'e'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	Hpq__Envelope req = HPQ__ENVELOPE__INIT;
	Hpq__ListRequest list = HPQ__LIST_REQUEST__INIT;
	struct bench_daemon d;
	struct hpq_client c;
	int calls = 2000, execs = 200, o;
	double *us;

	while ((o = getopt_long(argc, argv, "c:e:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			calls = atoi(optarg);
			break;
		case 'e':
			execs = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: bench_rtt [--calls 2000] [--execs 200]\n");
			return o == 'h' ? 0 : 2;
		}
	}
	if (calls < 1 || execs < 1) {
		fprintf(stderr, "bench_rtt: counts must be >= 1\n");
		return 2;
	}
	us = calloc((size_t)(calls > execs ? calls : execs), sizeof(*us));
	if (!us)
		return 1;

	bench_daemon_start(&d);
	submit_some(d.sock, 20);
	list.state = (char *)"active";
	req.body_case = HPQ__ENVELOPE__BODY_LIST;
	req.list = &list;
	printf("CLI round trips against hpqd %s (20 pending tasks)\n", bench_bin("hpqd"));

	connect_or_die(&c, d.sock);
	for (int i = 0; i < 50; i++) /* warm up */
		call_or_die(&c, &req);
	for (int i = 0; i < calls; i++) {
		uint64_t t0 = bench_now_ns();

		call_or_die(&c, &req);
		us[i] = (double)(bench_now_ns() - t0) / 1e3;
	}
	hpq_client_close(&c);
	report("list, one connection", us, calls);

	for (int i = 0; i < calls; i++) {
		uint64_t t0 = bench_now_ns();

		connect_or_die(&c, d.sock);
		call_or_die(&c, &req);
		hpq_client_close(&c);
		us[i] = (double)(bench_now_ns() - t0) / 1e3;
	}
	report("list, new connection", us, calls);

	for (int i = 0; i < execs; i++) {
		uint64_t t0 = bench_now_ns();
		int st = exec_hpq(d.sock, "version");

		us[i] = (double)(bench_now_ns() - t0) / 1e3;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "bench_rtt: hpq version failed (status %d)\n", st);
			return 1;
		}
	}
	report("exec hpq version", us, execs);

	for (int i = 0; i < execs; i++) {
		uint64_t t0 = bench_now_ns();
		int st = exec_hpq(d.sock, "list");

		us[i] = (double)(bench_now_ns() - t0) / 1e3;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "bench_rtt: hpq list failed (status %d)\n", st);
			return 1;
		}
	}
	report("exec hpq list", us, execs);

	bench_daemon_stop(&d);
	free(us);
	return 0;
}
