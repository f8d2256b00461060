/*
 * bench_e2e.c: hpq end to end on one agent: a real hpqd and one real
 * hpq-agent on its Unix socket (--cpus 64, no GPUs), running real tasks
 * (/bin/true, one CPU each). Each run starts both afresh and measures:
 *
 *   latency     on the idle cluster, one task at a time: the time from
 *               sending its SubmitRequest to receiving its "start" event
 *               (hpqd dispatched it and committed that; events are pushed
 *               after the commit) and its "end" event (the agent forked
 *               and exec'ed it, it exited, the agent reported the exit and
 *               hpqd committed it), on a connection that follows the
 *               events; --latency samples per run
 *   throughput  --tasks tasks submitted as ONE array, from the submit to
 *               hpqd counting none pending and none running (polled
 *               through StatusRequest every 10 ms, which costs hpqd
 *               little): task starts per second on the one agent, and the
 *               CPU seconds hpqd and the agent (with its children: the
 *               forks that become tasks, and the supervisors) used
 *               meanwhile
 *
 * and, for reference, what this machine allows at all: /bin/true forked,
 * exec'ed and waited for, one at a time, by a small process (the agent
 * forks twice per task: the task and its supervisor), and the same by as
 * many processes at once as there are cores, which says whether process
 * creation here grows with the cores.
 *
 * It prints every run, then one figure per line, "e2e: LABEL: VALUE",
 * medians over --runs (the latency percentiles are the medians of each
 * run's), and a coarse histogram of all the latency samples together.
 *
 * usage: bench_e2e [--tasks N] [--runs N] [--latency N] [--cpus N]
 *                  [--cgroup auto|required|off]
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"
#include "dash.h"
#include "msg.h"

#define MAX_RUNS 50
/* The most fork+exec loops the second reference runs at once. */
#define MAX_PROCS 256

static const char *agent_bin(void)
{
	const char *e = getenv("HPQ_BENCH_AGENT");

	return e && *e ? e : HPQ_BENCH_AGENT_PATH;
}

static pid_t agent_start(const struct bench_daemon *d, unsigned cpus, const char *cgroup)
{
	char work[128], log[128], ncpus[16];
	pid_t pid;

	snprintf(work, sizeof(work), "%s/agent", d->dir);
	snprintf(log, sizeof(log), "%s/agent.log", d->dir);
	snprintf(ncpus, sizeof(ncpus), "%u", cpus);
	if (mkdir(work, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "bench_e2e: mkdir %s: %s\n", work, strerror(errno));
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "bench_e2e: fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
			_exit(127);
		/* Its own process group, so that stopping it reaches nothing of
		 * ours; tasks and supervisors get their own sessions anyway. */
		setpgid(0, 0);
		execl(agent_bin(), "hpq-agent", "--foreground", "--server", d->sock, "--name",
		      "e2e", "--work-dir", work, "--gpus", "0", "--cpus", ncpus, "--mem", "64G",
		      "--log-level", "warning", "--allow-root-tasks", "--kill-tasks-on-exit",
		      "--cgroup", cgroup, (char *)NULL);
		fprintf(stderr, "bench_e2e: cannot run '%s': %s\n", agent_bin(), strerror(errno));
		_exit(127);
	}
	return pid;
}

static void agent_stop(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	for (int i = 0; i < 2000; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	fprintf(stderr, "bench_e2e: hpq-agent ignored SIGTERM for 20 s; killing it\n");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* CPU seconds of pid and of the children it has reaped (/proc's utime,
 * stime, cutime, cstime): for the agent, the forks that became tasks
 * and the supervisors. */
static double tree_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long t[4];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
			 &t[0], &t[1], &t[2], &t[3]) != 4)
		return -1;
	return (double)(t[0] + t[1] + t[2] + t[3]) / (double)sysconf(_SC_CLK_TCK);
}

static Hpq__Envelope *call(struct hpq_client *cl, Hpq__Envelope *req, const char *what)
{
	Hpq__Envelope *reply = NULL;

	if (hpq_client_call(cl, req, &reply) < 0) {
		fprintf(stderr, "bench_e2e: %s: %s\n", what, cl->errbuf);
		exit(1);
	}
	return reply;
}

/* Waits (up to 30 s) until node e2e is connected, schedulable and offers
 * cpus CPUs. */
static void wait_node(struct hpq_client *cl, pid_t agent, unsigned cpus)
{
	for (int i = 0; i < 3000; i++) {
		Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
		Hpq__NodeListRequest nl = HPQ__NODE_LIST_REQUEST__INIT;
		int status;
		bool up = false;

		req.body_case = HPQ__ENVELOPE__BODY_NODE_LIST;
		req.node_list = &nl;
		reply = call(cl, &req, "node list");
		for (size_t j = 0; j < reply->node_list_reply->n_nodes; j++) {
			const Hpq__Node *n = reply->node_list_reply->nodes[j];

			up |= n->connected && n->capacity && n->capacity->cpus == cpus &&
			      !strcmp(n->service, "active") && !strcmp(n->health, "healthy");
		}
		hpq_msg_free(reply);
		if (up)
			return;
		if (waitpid(agent, &status, WNOHANG) == agent) {
			fprintf(stderr, "bench_e2e: hpq-agent exited during start (status %d)\n",
				status);
			exit(1);
		}
		usleep(10000);
	}
	fprintf(stderr, "bench_e2e: the agent did not register within 30 s\n");
	exit(1);
}

static uint64_t submit(struct hpq_client *cl, const char *array, const char *cwd)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__SubmitRequest sr = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	char *argv[] = { "/bin/true" };
	uint64_t id;

	res.cpus = 1;
	spec.per_node = &res;
	spec.n_argv = 1;
	spec.argv = argv;
	spec.cwd = (char *)cwd;
	spec.array = (char *)array;
	sr.spec = &spec;
	req.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	req.submit = &sr;
	reply = call(cl, &req, "submit");
	id = reply->submit_reply->id;
	hpq_msg_free(reply);
	return id;
}

static void status_counts(struct hpq_client *cl, uint32_t *pending, uint32_t *running)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__StatusRequest sr = HPQ__STATUS_REQUEST__INIT;

	req.body_case = HPQ__ENVELOPE__BODY_STATUS;
	req.status = &sr;
	reply = call(cl, &req, "status");
	*pending = reply->status_reply->pending;
	*running = reply->status_reply->running;
	hpq_msg_free(reply);
}

/* How many tasks are in state (one row per task: arrays expanded). */
static size_t count_state(struct hpq_client *cl, const char *state, bool *truncated)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__ListRequest lr = HPQ__LIST_REQUEST__INIT;
	size_t n;

	lr.state = (char *)state;
	lr.expand_arrays = true;
	req.body_case = HPQ__ENVELOPE__BODY_LIST;
	req.list = &lr;
	reply = call(cl, &req, "list");
	n = reply->list_reply->n_tasks;
	*truncated |= reply->list_reply->truncated;
	hpq_msg_free(reply);
	return n;
}

/* Opens cl's subscription to every new event; returns its request id. */
static uint64_t follow_events(struct hpq_client *cl)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__EventsRequest er = HPQ__EVENTS_REQUEST__INIT;

	er.follow = true;
	er.limit = 1;
	req.body_case = HPQ__ENVELOPE__BODY_EVENTS;
	req.events = &er;
	reply = call(cl, &req, "events --follow");
	hpq_msg_free(reply);
	return req.id;
}

/* Waits for event kind of task id on the follower; returns when it came. */
static uint64_t wait_event(struct hpq_client *fl, uint64_t sub, uint64_t id, const char *kind)
{
	for (;;) {
		Hpq__Envelope *push = NULL;
		int r = dash_follow_next(fl, sub, 30000, &push);
		bool hit;

		if (r <= 0) {
			fprintf(stderr, "bench_e2e: no '%s' event for task %llu: %s\n", kind,
				(unsigned long long)id, r ? fl->errbuf : "30 s passed");
			exit(1);
		}
		hit = push->body_case == HPQ__ENVELOPE__BODY_EVENT &&
		      push->event->task_id == id && !strcmp(push->event->kind, kind);
		hpq_msg_free(push);
		if (hit)
			return bench_now_ns();
	}
}

struct run {
	double start_p[3], end_p[3]; /* p50 p90 p99, ms */
	double rate;                 /* task starts per second */
	double secs;
	double hpqd_cpu, agent_cpu;  /* CPU seconds per 1,000 tasks */
};

static const double quantiles[3] = { 0.50, 0.90, 0.99 };

static void one_run(int r, int ntasks, int nlat, unsigned cpus, const char *cgroup,
		    double *all_start, double *all_end, struct run *out)
{
	struct bench_daemon d;
	struct hpq_client cl, fl;
	double *ls = calloc((size_t)nlat, sizeof(*ls)), *le = calloc((size_t)nlat, sizeof(*le));
	char array[32];
	uint32_t pending, running;
	uint64_t t0, t1, sub;
	double hpqd0, agent0;
	bool truncated = false;
	size_t done, failed;
	pid_t agent;

	bench_daemon_start(&d, BENCH_UNIX, NULL);
	agent = agent_start(&d, cpus, cgroup);
	if (hpq_client_connect(&cl, d.addr, 0) < 0 || hpq_client_connect(&fl, d.addr, 0) < 0) {
		fprintf(stderr, "bench_e2e: connect: %s\n", cl.errbuf);
		exit(1);
	}
	wait_node(&cl, agent, cpus);
	sub = follow_events(&fl);

	/* Latency, one task at a time on the idle cluster; the first task
	 * (not counted) warms the daemon's and the agent's paths. */
	for (int i = -1; i < nlat; i++) {
		uint64_t id;

		t0 = bench_now_ns();
		id = submit(&cl, "", d.dir);
		t1 = wait_event(&fl, sub, id, "start");
		if (i >= 0)
			ls[i] = (double)(t1 - t0) / 1e6;
		t1 = wait_event(&fl, sub, id, "end");
		if (i >= 0)
			le[i] = (double)(t1 - t0) / 1e6;
	}
	hpq_client_close(&fl);
	memcpy(all_start + (size_t)r * (size_t)nlat, ls, (size_t)nlat * sizeof(*ls));
	memcpy(all_end + (size_t)r * (size_t)nlat, le, (size_t)nlat * sizeof(*le));
	for (int q = 0; q < 3; q++) {
		out->start_p[q] = bench_quantile(ls, (size_t)nlat, quantiles[q]);
		out->end_p[q] = bench_quantile(le, (size_t)nlat, quantiles[q]);
	}

	/* Throughput: one array of ntasks. */
	snprintf(array, sizeof(array), "0-%d", ntasks - 1);
	hpqd0 = bench_proc_cpu_s(d.pid);
	agent0 = tree_cpu_s(agent);
	t0 = bench_now_ns();
	submit(&cl, array, d.dir);
	for (;;) {
		status_counts(&cl, &pending, &running);
		if (!pending && !running)
			break;
		if (bench_now_ns() - t0 > 600ull * 1000000000u) {
			fprintf(stderr, "bench_e2e: %u pending, %u running after 600 s\n", pending,
				running);
			exit(1);
		}
		usleep(10000);
	}
	t1 = bench_now_ns();
	out->secs = (double)(t1 - t0) / 1e9;
	out->rate = ntasks / out->secs;
	out->hpqd_cpu = (bench_proc_cpu_s(d.pid) - hpqd0) * 1000.0 / ntasks;
	out->agent_cpu = (tree_cpu_s(agent) - agent0) * 1000.0 / ntasks;

	/* Every task ran and exited 0: the latency tasks, the warm-up and the
	 * array. */
	done = count_state(&cl, "COMPLETED", &truncated);
	failed = count_state(&cl, "FAILED", &truncated);
	if (!truncated && (done != (size_t)ntasks + (size_t)nlat + 1 || failed)) {
		fprintf(stderr, "bench_e2e: %zu tasks completed and %zu failed, of %d\n", done,
			failed, ntasks + nlat + 1);
		exit(1);
	}
	hpq_client_close(&cl);
	agent_stop(agent);
	bench_daemon_stop(&d);

	printf("run %d: %d tasks in %.3f s: %.0f starts/s (hpqd %.2f, agent %.2f CPU s per "
	       "1,000 tasks); submit-to-start p50 %.3f p90 %.3f p99 %.3f ms, submit-to-end "
	       "p50 %.3f ms%s\n",
	       r + 1, ntasks, out->secs, out->rate, out->hpqd_cpu, out->agent_cpu, out->start_p[0],
	       out->start_p[1], out->start_p[2], out->end_p[0],
	       truncated ? " (completion not checked: list truncated)" : "");
	fflush(stdout);
	free(ls);
	free(le);
}

static double median_of(const struct run *runs, int n, size_t off)
{
	double v[MAX_RUNS];

	for (int i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&runs[i] + off);
	return bench_quantile(v, (size_t)n, 0.5);
}

#define MED(field) median_of(runs, nruns, offsetof(struct run, field))

static void histogram(const char *what, double *v, size_t n)
{
	static const double edge[] = { 0.5, 1, 2, 5, 10, 20, 50, 100 };
	size_t count[sizeof(edge) / sizeof(edge[0]) + 1] = { 0 }, most = 1;
	const size_t nb = sizeof(count) / sizeof(count[0]);

	for (size_t i = 0; i < n; i++) {
		size_t b = 0;

		while (b < nb - 1 && v[i] >= edge[b])
			b++;
		count[b]++;
	}
	for (size_t b = 0; b < nb; b++)
		most = count[b] > most ? count[b] : most;
	printf("histogram of %s, all %zu samples (ms):\n", what, n);
	for (size_t b = 0; b < nb; b++) {
		char range[32];
		int bar = (int)(count[b] * 50 / most);

		if (b == 0)
			snprintf(range, sizeof(range), "< %g", edge[0]);
		else if (b == nb - 1)
			snprintf(range, sizeof(range), ">= %g", edge[b - 1]);
		else
			snprintf(range, sizeof(range), "%g - %g", edge[b - 1], edge[b]);
		printf("  %-10s %6zu %.*s\n", range, count[b], bar,
		       "##################################################");
	}
}

/* Forks, execs and waits for /bin/true n times in a row, in a child of
 * fork_exec_rate (so _exit: stdout's buffer is the parent's to flush). */
static void fork_exec_loop(int n)
{
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		int status;

		if (pid < 0) {
			fprintf(stderr, "bench_e2e: fork: %s\n", strerror(errno));
			_exit(1);
		}
		if (pid == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			_exit(1);
	}
}

/* fork_exec_loop in procs processes at once, n each: per second, for the
 * whole machine. Where process creation scales with the cores, procs at
 * once do procs times what one does. */
static double fork_exec_rate(int n, int procs)
{
	pid_t pids[MAX_PROCS];
	uint64_t t0 = bench_now_ns();
	int status;

	for (int p = 0; p < procs; p++) {
		pids[p] = fork();
		if (pids[p] < 0) {
			fprintf(stderr, "bench_e2e: fork: %s\n", strerror(errno));
			exit(1);
		}
		if (pids[p] == 0) {
			fork_exec_loop(n);
			_exit(0);
		}
	}
	for (int p = 0; p < procs; p++) {
		if (waitpid(pids[p], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			fprintf(stderr, "bench_e2e: a fork+exec loop failed\n");
			exit(1);
		}
	}
	return (double)n * procs / ((double)(bench_now_ns() - t0) / 1e9);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_e2e [--tasks N] [--runs N] [--latency N] [--cpus N]\n"
		   "                 [--cgroup auto|required|off]\n");
}

int main(int argc, char **argv)
{
	int ntasks = 5000, nruns = 3, nlat = 200;
	unsigned cpus = 64;
	const char *cgroup = "off";
	struct run runs[MAX_RUNS];
	double *all_start, *all_end;
	int ncpu;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tasks") && i + 1 < argc)
			ntasks = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			nruns = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--latency") && i + 1 < argc)
			nlat = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--cpus") && i + 1 < argc)
			cpus = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--cgroup") && i + 1 < argc)
			cgroup = argv[++i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (ntasks < 1 || nruns < 1 || nruns > MAX_RUNS || nlat < 1 || cpus < 1 ||
	    cpus > 4096) {
		usage(stderr);
		fprintf(stderr, "(--tasks, --latency >= 1, --runs 1..%d, --cpus 1..4096)\n",
			MAX_RUNS);
		return 2;
	}
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	ncpu = ncpu < 1 ? 1 : ncpu > MAX_PROCS ? MAX_PROCS : ncpu;
	all_start = calloc((size_t)nruns * (size_t)nlat, sizeof(*all_start));
	all_end = calloc((size_t)nruns * (size_t)nlat, sizeof(*all_end));
	printf("end to end on one agent: hpqd and hpq-agent (--cpus %u, no GPUs, cgroup %s) on "
	       "a Unix socket, /bin/true tasks of 1 CPU; %d runs of %d latency samples and an "
	       "array of %d\n", cpus, cgroup, nruns, nlat, ntasks);
	fflush(stdout);
	for (int r = 0; r < nruns; r++)
		one_run(r, ntasks, nlat, cpus, cgroup, all_start, all_end, &runs[r]);

	printf("median of %d runs\n", nruns);
	printf("e2e: task starts/s on one agent: %.0f\n", MED(rate));
	printf("e2e: array of %d, submit to last exit: %.3f s\n", ntasks, MED(secs));
	printf("e2e: hpqd CPU per 1,000 tasks: %.3f s\n", MED(hpqd_cpu));
	printf("e2e: agent CPU per 1,000 tasks (with its children): %.3f s\n", MED(agent_cpu));
	printf("e2e: submit-to-start p50: %.3f ms\n", MED(start_p[0]));
	printf("e2e: submit-to-start p90: %.3f ms\n", MED(start_p[1]));
	printf("e2e: submit-to-start p99: %.3f ms\n", MED(start_p[2]));
	printf("e2e: submit-to-end p50: %.3f ms\n", MED(end_p[0]));
	printf("e2e: submit-to-end p99: %.3f ms\n", MED(end_p[2]));
	printf("e2e: reference, fork+exec+wait of /bin/true one at a time: %.0f/s\n",
	       fork_exec_rate(500, 1));
	printf("e2e: reference, the same in %d processes at once (one a core), all together: "
	       "%.0f/s\n", ncpu, fork_exec_rate(500, ncpu));
	histogram("submit-to-start", all_start, (size_t)nruns * (size_t)nlat);
	free(all_start);
	free(all_end);
	return 0;
}
