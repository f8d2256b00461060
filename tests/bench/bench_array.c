/*
 * bench_array.c: task arrays on a real hpqd (no agents: nothing starts).
 *
 *   submit   time from a SubmitRequest of a 10,000-index array to its
 *            reply (the reply waits for the commit), median over --runs;
 *            and of one plain task, for reference
 *   memory   hpqd's resident set (VmRSS) before and after submitting
 *            arrays that hold --pending indices in all (1,000,000 by
 *            default, in arrays of at most 1,000,000), as bytes per
 *            pending index
 *
 * usage: bench_array [--runs N] [--pending N]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "client.h"
#include "msg.h"

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

static double submit_ms(struct hpq_client *cl, const char *array)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__SubmitRequest req = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	char *argv[] = { "/bin/true" };
	uint64_t t0;
	double ms;

	spec.n_argv = 1;
	spec.argv = argv;
	spec.array = (char *)array;
	req.spec = &spec;
	env.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	env.submit = &req;
	t0 = bench_now_ns();
	if (hpq_client_call(cl, &env, &reply) < 0) {
		fprintf(stderr, "bench_array: submit --array %s: %s\n", array, cl->errbuf);
		exit(1);
	}
	ms = (double)(bench_now_ns() - t0) / 1e6;
	hpq_msg_free(reply);
	return ms;
}

int main(int argc, char **argv)
{
	struct bench_daemon d;
	struct hpq_client cl;
	int runs = 20;
	long pending = 1000000, left, before, after;
	double *arr, *plain;
	char spec[64];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--pending") && i + 1 < argc)
			pending = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_array [--runs N] [--pending N]\n");
			return 2;
		}
	}
	if (runs < 1 || pending < 1) {
		fprintf(stderr, "usage: bench_array [--runs N] [--pending N]\n");
		return 2;
	}
	arr = calloc((size_t)runs, sizeof(*arr));
	plain = calloc((size_t)runs, sizeof(*plain));

	/* Memory on a fresh daemon first, so the submits below do not count. */
	bench_daemon_start(&d, BENCH_UNIX, NULL);
	if (hpq_client_connect(&cl, d.addr, 0) < 0) {
		fprintf(stderr, "bench_array: connect: %s\n", cl.errbuf);
		return 1;
	}
	submit_ms(&cl, "0-1");          /* the daemon's first submit warms its paths */
	before = rss_kb(d.pid);
	for (left = pending; left > 0;) {
		long n = left > 1000000 ? 1000000 : left;

		/* n indices: the first is a task, n - 1 pending */
		snprintf(spec, sizeof(spec), "0-%ld", n - 1);
		submit_ms(&cl, spec);
		left -= n;
	}
	after = rss_kb(d.pid);
	printf("memory: hpqd VmRSS %ld kB -> %ld kB with %ld pending array indices: %.2f bytes "
	       "per pending index\n", before, after, pending,
	       (double)(after - before) * 1024.0 / (double)pending);
	hpq_client_close(&cl);
	bench_daemon_stop(&d);

	bench_daemon_start(&d, BENCH_UNIX, NULL);
	if (hpq_client_connect(&cl, d.addr, 0) < 0) {
		fprintf(stderr, "bench_array: connect: %s\n", cl.errbuf);
		return 1;
	}
	submit_ms(&cl, "0-1");
	for (int i = 0; i < runs; i++) {
		arr[i] = submit_ms(&cl, "0-9999");
		plain[i] = submit_ms(&cl, "");
	}
	printf("submit of a 10,000-index array, request to committed reply: median %.2f ms, "
	       "max %.2f ms (%d runs); one plain task: median %.2f ms\n",
	       bench_quantile(arr, (size_t)runs, 0.5), bench_quantile(arr, (size_t)runs, 1.0),
	       runs, bench_quantile(plain, (size_t)runs, 0.5));
	hpq_client_close(&cl);
	bench_daemon_stop(&d);
	free(arr);
	free(plain);
	return 0;
}
