/*
 * sim_submit.c: the task source of sim_scenario.sh. Over one connection
 * (common/client.h), it submits arrays of --batch tasks of one GPU each,
 * on schedule at --rate tasks a second for --time seconds, round-robin
 * over the teams t<first>..t<first+teams-1>, each task running
 * `sim:duration=--task` on hpq-sim. It prints one line per submit,
 * "ARRAY_ID SENT_NS REPLIED_NS" (wall clock), which the scenario joins with
 * hpq-sim's --runlog for submit-to-start latency. A submit's reply waits
 * for its commit, so one connection makes at most one submit a commit;
 * the scenario runs several of these for higher rates.
 *
 * usage: sim_submit --rate N --batch N --time SECS --task DUR
 *                   [--teams N] [--first-team N] [--socket PATH]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "msg.h"

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: sim_submit --rate N --batch N --time SECS --task DUR [--teams N] "
		"[--first-team N] [--socket PATH]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double rate = 100, run_s = 60;
	long batch = 10, teams = 200, first = 1;
	const char *task = "1s", *sock = NULL;
	struct hpq_client cl;
	char cmd[128], range[32], team[32];
	char *args[1] = { cmd };
	int64_t period, start, next;
	long i = 0;

	for (int k = 1; k < argc; k++) {
		if (k + 1 >= argc)
			usage();
		if (!strcmp(argv[k], "--rate"))
			rate = atof(argv[++k]);
		else if (!strcmp(argv[k], "--batch"))
			batch = atol(argv[++k]);
		else if (!strcmp(argv[k], "--time"))
			run_s = atof(argv[++k]);
		else if (!strcmp(argv[k], "--task"))
			task = argv[++k];
		else if (!strcmp(argv[k], "--teams"))
			teams = atol(argv[++k]);
		else if (!strcmp(argv[k], "--first-team"))
			first = atol(argv[++k]);
		else if (!strcmp(argv[k], "--socket"))
			sock = argv[++k];
		else
			usage();
	}
	if (rate <= 0 || batch < 1 || run_s <= 0 || teams < 1)
		usage();
	snprintf(cmd, sizeof(cmd), "sim:duration=%s", task);
	snprintf(range, sizeof(range), "0-%ld", batch - 1);
	if (hpq_client_connect(&cl, sock, 0) < 0) {
		fprintf(stderr, "sim_submit: %s\n", cl.errbuf);
		return 1;
	}
	period = (int64_t)(1e9 * (double)batch / rate);
	start = next = mono_ns();
	while (next - start < (int64_t)(run_s * 1e9)) {
		Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
		Hpq__SubmitRequest req = HPQ__SUBMIT_REQUEST__INIT;
		Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
		Hpq__Resources res = HPQ__RESOURCES__INIT;
		int64_t now = mono_ns(), sent;

		if (now < next) {
			struct timespec ts = { (next - now) / 1000000000, (next - now) % 1000000000 };

			nanosleep(&ts, NULL);
		}
		snprintf(team, sizeof(team), "t%ld", first + i % teams);
		res.gpus = 1;
		res.cpus = 1;
		spec.per_node = &res;
		spec.team = team;
		spec.n_argv = 1;
		spec.argv = args;
		spec.cwd = (char *)"/";
		spec.array = batch > 1 ? range : (char *)"";
		req.spec = &spec;
		env.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
		env.submit = &req;
		sent = wall_ns();
		if (hpq_client_call(&cl, &env, &reply) < 0) {
			fprintf(stderr, "sim_submit: submit: %s\n", cl.errbuf);
		} else {
			printf("%" PRIu64 " %" PRId64 " %" PRId64 "\n", reply->submit_reply->id, sent,
			       wall_ns());
			hpq_msg_free(reply);
		}
		i++;
		next += period;
		now = mono_ns();
		if (next < now)
			next = now; /* late: no burst to catch up */
	}
	hpq_client_close(&cl);
	return 0;
}
