/*
 * bench_cli: the hpq command line at queue sizes people really have. For
 * each queue size (default 10,000 and 100,000 pending tasks) it starts a
 * real hpqd on a fresh temp dir (no agents), fills it with plain held
 * tasks (one SubmitRequest each, pipelined over one connection), and
 * times whole CLI processes, fork and exec to exit, stdout to /dev/null:
 *
 *	hpq --version                             process start alone (no daemon)
 *	hpq list                                  the default table
 *	hpq list --json
 *	hpq list --format id,name,state,submit    a column beyond the default table's
 *	hpq list --state pending --user U         U: the benchmark's user
 *	hpq show ID                               one task
 *	hpq cancel ID x 10,000                    10,000 more tasks, by id
 *	hpq cancel --user U --state pending       every pending task
 *	hpq release --user U                      every held task
 *	hpq list                                  the released queue: every row
 *	                                          has its queue position
 *
 * and how long a long list holds up everyone else: the longest wait of a
 * StatusRequest, sent back to back on a connection of its own while one
 * `hpq list --json` runs, against the median wait of the same request
 * with nothing else running.
 *
 *	bench_cli [--sizes 10000,100000] [--runs 5]
 *	bench_cli --serve N       fill a daemon with N tasks, print its socket
 *	                          and wait (for profiling by hand) until SIGINT,
 *	                          SIGTERM or SIGHUP, then stop the daemon
 *
 * Each figure is the median over --runs (runs of different commands are
 * interleaved), with the CPU time of the hpq process and of hpqd meanwhile
 * (all its threads, in clock ticks), steadier than wall times on a busy
 * machine. A cancel by filter empties the queue, and a release leaves no
 * task held, so each of their runs has a daemon of its own, filled again;
 * a cancel by ids cancels 10,000 tasks submitted just before it. Before
 * timing, one `hpq list` and one `hpq list --json` are checked to hold
 * every pending task.
 *
 * The rows with a target say whether the median met it: at 10,000 and at
 * 100,000 pending tasks, hpq list under 15 ms, hpq list --json under
 * 30 ms, a cancel of every pending task by filter under 200 ms, and hpqd
 * under 1 KiB of memory per pending task (its RSS growth while filling).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
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
#include "frame.h"
#include "hpq.h"
#include "msg.h"
#include "xalloc.h"

#define MAX_RUNS 50
#define WINDOW 512         /* submits in flight on the one connection */
#define CANCEL_IDS 10000

static const char *user_name(void)
{
	struct passwd *pw = getpwuid(getuid());

	return pw ? pw->pw_name : "root";
}

static void read_exact(int fd, struct hpq_framer *f, size_t want, uint64_t *first_id,
		       uint64_t *last_id)
{
	uint8_t buf[65536];
	size_t got = 0;

	while (got < want) {
		const uint8_t *p;
		size_t len;
		ssize_t n;
		int r;

		while (got < want && (r = hpq_framer_next(f, &p, &len)) > 0) {
			Hpq__Envelope *env = hpq_msg_decode(p, len);

			if (!env || env->body_case != HPQ__ENVELOPE__BODY_SUBMIT_REPLY) {
				fprintf(stderr, "bench_cli: submit refused: %s\n",
					env && env->body_case == HPQ__ENVELOPE__BODY_ERROR
						? env->error->message
						: "?");
				exit(1);
			}
			if (!*first_id)
				*first_id = env->submit_reply->id;
			*last_id = env->submit_reply->id;
			hpq_msg_free(env);
			got++;
		}
		if (got == want)
			break;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0) {
			fprintf(stderr, "bench_cli: hpqd closed the connection\n");
			exit(1);
		}
		hpq_framer_feed(f, buf, (size_t)n);
	}
}

/*
 * Submits n plain held tasks over one connection, WINDOW requests written
 * before their replies are read, so that the daemon commits them in
 * groups. Sets the first and last ids; returns the time it took in s.
 */
static double submit_many(const struct bench_daemon *d, int n, uint64_t *first, uint64_t *last)
{
	static char *argv[] = {(char *)"true"};
	struct hpq_client c;
	struct hpq_framer f = HPQ_FRAMER_INIT(HPQ_FRAME_MAX);
	Hpq__Envelope req = HPQ__ENVELOPE__INIT;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	uint64_t t0 = bench_now_ns(), id = 1000000;

	if (hpq_client_connect(&c, d->addr, 60000) < 0) {
		fprintf(stderr, "bench_cli: %s\n", c.errbuf);
		exit(1);
	}
	/* Blocking from here: the benchmark writes a window, then reads it. */
	fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) & ~O_NONBLOCK);
	res.cpus = 1;
	spec.name = (char *)"bench";
	spec.per_node = &res;
	spec.argv = argv;
	spec.n_argv = 1;
	spec.cwd = (char *)"/";
	spec.hold = true;
	sub.spec = &spec;
	req.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	req.submit = &sub;
	*first = *last = 0;
	for (int done = 0; done < n;) {
		int w = n - done < WINDOW ? n - done : WINDOW;

		for (int i = 0; i < w; i++) {
			size_t len;
			uint8_t *buf;

			req.id = id++;
			buf = hpq_msg_encode(&req, &len);
			for (size_t off = 0; off < len;) {
				ssize_t k = write(c.fd, buf + off, len - off);

				if (k < 0 && errno != EINTR) {
					perror("bench_cli: write");
					exit(1);
				}
				off += k > 0 ? (size_t)k : 0;
			}
			free(buf);
		}
		read_exact(c.fd, &f, (size_t)w, first, last);
		done += w;
	}
	hpq_framer_release(&f);
	hpq_client_close(&c);
	return (double)(bench_now_ns() - t0) / 1e9;
}

/* Starts hpq with argv (argv[0] ignored), stdout to out_path or /dev/null. */
static pid_t start_hpq(char **argv, const char *out_path)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		int fd = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC,
			      0600);

		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(127);
		argv[0] = (char *)"hpq";
		execv(bench_bin("hpq"), argv);
		_exit(127);
	}
	return pid;
}

/* CPU time (user + system, ms) of the last hpq that time_hpq ran, and
 * what hpqd (every thread of it) used meanwhile: on a busy shared machine
 * much steadier than the wall time. */
static double last_cpu_ms, last_hpqd_ms;
static pid_t hpqd_pid;

/* Until hpqd has used no CPU for 200 ms (a release's commits go on after
 * its reply), or 30 s passed. */
static void wait_idle(void)
{
	double last = bench_proc_cpu_s(hpqd_pid);
	int still = 0;

	for (int i = 0; i < 600 && still < 4; i++) {
		double now;

		usleep(50 * 1000);
		now = bench_proc_cpu_s(hpqd_pid);
		still = now == last ? still + 1 : 0;
		last = now;
	}
}

/* Before timing: the files the checks wrote (96 MB of JSON at 100,000
 * tasks) unlinked and their writeback done, and hpqd quiet, so that the
 * timed runs do not share the machine with what came before them. */
static void settle(const char *written)
{
	unlink(written);
	sync();
	wait_idle();
}

/* Runs hpq with argv (argv[0] ignored), stdout to out_path or /dev/null;
 * returns the wall time in ms from fork to its exit. */
static double time_hpq(char **argv, const char *out_path)
{
	uint64_t t0 = bench_now_ns();
	double d0 = bench_proc_cpu_s(hpqd_pid);
	struct rusage ru;
	int status;
	pid_t pid = start_hpq(argv, out_path);

	wait4(pid, &status, 0, &ru);
	last_cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
		      (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
	last_hpqd_ms = (bench_proc_cpu_s(hpqd_pid) - d0) * 1e3;
	if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 1)) {
		fprintf(stderr, "bench_cli: hpq %s exited %d\n", argv[1], status);
		exit(1);
	}
	return (double)(bench_now_ns() - t0) / 1e6;
}

/* One StatusRequest's round trip on c, in ms. */
static double status_ms(struct hpq_client *c)
{
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *rep = NULL;
	Hpq__StatusRequest st = HPQ__STATUS_REQUEST__INIT;
	uint64_t t0 = bench_now_ns();

	req.body_case = HPQ__ENVELOPE__BODY_STATUS;
	req.status = &st;
	if (hpq_client_call(c, &req, &rep) != 0) {
		fprintf(stderr, "bench_cli: status: %s\n", c->errbuf);
		exit(1);
	}
	hpq_msg_free(rep);
	return (double)(bench_now_ns() - t0) / 1e6;
}

/*
 * The longest wait of a StatusRequest, sent back to back while hpq runs
 * with argv, in ms; *alone is the median wait of 50 with nothing else
 * running.
 */
static double longest_wait_during(const struct bench_daemon *d, char **argv, double *alone)
{
	struct hpq_client c;
	double w[50], most = 0;
	int status;
	pid_t pid;

	if (hpq_client_connect(&c, d->addr, 60000) < 0) {
		fprintf(stderr, "bench_cli: %s\n", c.errbuf);
		exit(1);
	}
	for (int i = 0; i < 50; i++)
		w[i] = status_ms(&c);
	*alone = bench_quantile(w, 50, 0.5);
	pid = start_hpq(argv, NULL);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		double ms = status_ms(&c);

		most = ms > most ? ms : most;
	}
	hpq_client_close(&c);
	return most;
}

static size_t count_in_file(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	size_t n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

enum {
	M_VERSION, M_LIST, M_JSON, M_FORMAT, M_FILTER, M_SHOW, M_CANCEL_IDS, M_CANCEL_FILTER,
	M_RELEASE_FILTER, M_LIST_QUEUED, M_N
};

static const char *const m_name[M_N] = {
	"hpq --version", "hpq list", "hpq list --json", "hpq list --format id,name,state,submit",
	"hpq list --state pending --user U",
	"hpq show ID", "hpq cancel ID x 10,000", "hpq cancel --user U --state pending",
	"hpq release --user U", "hpq list, released (queue positions)",
};

/* The targets, in ms of wall time; 0: none. */
static const double m_target[M_N] = {
	[M_LIST] = 15, [M_JSON] = 30, [M_CANCEL_FILTER] = 200, [M_LIST_QUEUED] = 15,
};
#define TARGET_BYTES_PER_TASK 1024

static void bench_size(int n, int runs)
{
	struct bench_daemon d;
	double t[M_N][MAX_RUNS], cpu[M_N][MAX_RUNS], dcpu[M_N][MAX_RUNS], sub_s;
	double stall[MAX_RUNS], alone[MAX_RUNS];
	char idbuf[32], out[160];
	uint64_t first, last;
	const char *user = user_name();
	char *version[] = {NULL, (char *)"--version", NULL};
	char *list[] = {NULL, (char *)"list", NULL};
	char *json[] = {NULL, (char *)"list", (char *)"--json", NULL};
	char *fmt[] = {NULL, (char *)"list", (char *)"--format", (char *)"id,name,state,submit",
		       NULL};
	char *filt[] = {NULL, (char *)"list", (char *)"--state", (char *)"pending",
			(char *)"--user", (char *)user, NULL};
	char *show[] = {NULL, (char *)"show", idbuf, NULL};
	char *cfilt[] = {NULL, (char *)"cancel", (char *)"--user", (char *)user,
			 (char *)"--state", (char *)"pending", NULL};
	char *rfilt[] = {NULL, (char *)"release", (char *)"--user", (char *)user, NULL};
	char **cids = xcalloc(CANCEL_IDS + 3, sizeof(*cids));
	size_t rows;
	long rss0, rss1;
	double per_task;

	bench_daemon_start(&d, BENCH_UNIX, NULL);
	hpqd_pid = d.pid;
	setenv("HPQ_SOCKET", d.sock, 1);
	rss0 = rss_kib(d.pid);
	sub_s = submit_many(&d, n, &first, &last);
	rss1 = rss_kib(d.pid);
	per_task = (double)(rss1 - rss0) * 1024 / n;
	printf("%d pending: submitted in %.2f s (%.0f/s, pipelined over one connection); "
	       "hpqd RSS %ld KiB, %.0f B per pending task (target < %d: %s)\n", n, sub_s,
	       n / sub_s, rss1, per_task, TARGET_BYTES_PER_TASK,
	       per_task < TARGET_BYTES_PER_TASK ? "met" : "MISSED");
	snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)(first + (last - first) / 2));

	/* Every pending task, once. */
	snprintf(out, sizeof(out), "%s/list.out", d.dir);
	time_hpq(list, out);
	rows = count_in_file(out, " PENDING ");
	if (rows != (size_t)n)
		printf("  warning: hpq list printed %zu of %d pending tasks\n", rows, n);
	time_hpq(json, out);
	rows = count_in_file(out, "\"state\": \"PENDING\"");
	if (rows != (size_t)n)
		printf("  warning: hpq list --json printed %zu of %d pending tasks\n", rows, n);
	settle(out);

	for (int r = 0; r < runs; r++) {
		t[M_VERSION][r] = time_hpq(version, NULL);
		cpu[M_VERSION][r] = last_cpu_ms;
		dcpu[M_VERSION][r] = last_hpqd_ms;
		t[M_LIST][r] = time_hpq(list, NULL);
		cpu[M_LIST][r] = last_cpu_ms;
		dcpu[M_LIST][r] = last_hpqd_ms;
		t[M_JSON][r] = time_hpq(json, NULL);
		cpu[M_JSON][r] = last_cpu_ms;
		dcpu[M_JSON][r] = last_hpqd_ms;
		t[M_FORMAT][r] = time_hpq(fmt, NULL);
		cpu[M_FORMAT][r] = last_cpu_ms;
		dcpu[M_FORMAT][r] = last_hpqd_ms;
		t[M_FILTER][r] = time_hpq(filt, NULL);
		cpu[M_FILTER][r] = last_cpu_ms;
		dcpu[M_FILTER][r] = last_hpqd_ms;
		t[M_SHOW][r] = time_hpq(show, NULL);
		cpu[M_SHOW][r] = last_cpu_ms;
		dcpu[M_SHOW][r] = last_hpqd_ms;
	}
	/* What a long list costs everyone else. */
	for (int r = 0; r < runs; r++)
		stall[r] = longest_wait_during(&d, json, &alone[r]);
	/* 10,000 more each time, cancelled by their ids. */
	for (int r = 0; r < runs; r++) {
		submit_many(&d, CANCEL_IDS, &first, &last);
		cids[1] = (char *)"cancel";
		for (int i = 0; i < CANCEL_IDS; i++)
			xasprintf(&cids[2 + i], "%llu", (unsigned long long)(first + i));
		t[M_CANCEL_IDS][r] = time_hpq(cids, NULL);
		cpu[M_CANCEL_IDS][r] = last_cpu_ms;
		dcpu[M_CANCEL_IDS][r] = last_hpqd_ms;
		for (int i = 0; i < CANCEL_IDS; i++)
			free(cids[2 + i]);
	}
	bench_daemon_stop(&d);
	/* Cancel every pending task by filter: a fresh queue for each run. */
	for (int r = 0; r < runs; r++) {
		bench_daemon_start(&d, BENCH_UNIX, NULL);
		hpqd_pid = d.pid;
		setenv("HPQ_SOCKET", d.sock, 1);
		submit_many(&d, n, &first, &last);
		snprintf(out, sizeof(out), "%s/cancel.out", d.dir);
		t[M_CANCEL_FILTER][r] = time_hpq(cfilt, r ? NULL : out);
		cpu[M_CANCEL_FILTER][r] = last_cpu_ms;
		dcpu[M_CANCEL_FILTER][r] = last_hpqd_ms;
		bench_daemon_stop(&d);
	}
	/* Release every held task: a fresh queue for each run too. */
	for (int r = 0; r < runs; r++) {
		bench_daemon_start(&d, BENCH_UNIX, NULL);
		hpqd_pid = d.pid;
		setenv("HPQ_SOCKET", d.sock, 1);
		submit_many(&d, n, &first, &last);
		t[M_RELEASE_FILTER][r] = time_hpq(rfilt, NULL);
		cpu[M_RELEASE_FILTER][r] = last_cpu_ms;
		dcpu[M_RELEASE_FILTER][r] = last_hpqd_ms;
		/* Queued now, as a real queue is: each row has its position. */
		wait_idle();
		snprintf(out, sizeof(out), "%s/queued.out", d.dir);
		time_hpq(list, out);
		rows = count_in_file(out, " PENDING ");
		if (rows != (size_t)n || !count_in_file(out, " #1 "))
			printf("  warning: hpq list printed %zu of %d queued tasks, or no "
			       "position\n", rows, n);
		settle(out);
		t[M_LIST_QUEUED][r] = time_hpq(list, NULL);
		cpu[M_LIST_QUEUED][r] = last_cpu_ms;
		dcpu[M_LIST_QUEUED][r] = last_hpqd_ms;
		bench_daemon_stop(&d);
	}
	for (int m = 0; m < M_N; m++) {
		char line[512], target[48] = "";
		size_t off = 0;
		double med = bench_quantile(t[m], (size_t)runs, 0.5);

		for (int r = 0; r < runs; r++)
			off += (size_t)snprintf(line + off, sizeof(line) - off, " %.1f", t[m][r]);
		if (m_target[m])
			snprintf(target, sizeof(target), "  (target < %.0f ms: %s)", m_target[m],
				 med < m_target[m] ? "met" : "MISSED");
		printf("  %-38s median %8.1f ms  CPU: hpq %6.1f ms, hpqd %6.0f ms   runs:%s%s\n",
		       m_name[m], med, bench_quantile(cpu[m], (size_t)runs, 0.5),
		       bench_quantile(dcpu[m], (size_t)runs, 0.5), line, target);
	}
	printf("  %-38s median %8.1f ms  (a status alone: %.2f ms)\n",
	       "longest status wait during --json", bench_quantile(stall, (size_t)runs, 0.5),
	       bench_quantile(alone, (size_t)runs, 0.5));
	fflush(stdout);
	free(cids);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_cli [--sizes 10000,100000] [--runs 5] | --serve N\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"sizes", required_argument, NULL, 's'},
		{"runs", required_argument, NULL, 'r'},
		{"serve", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *sizes = "10000,100000";
	int runs = 5, serve = -1, c;
	char *list, *tok, *save;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sizes = optarg;
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'S':
			serve = atoi(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "bench_cli: --runs is 1 to %d\n", MAX_RUNS);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (serve >= 0) {
		struct bench_daemon d;
		uint64_t first, last;

		bench_extra_config = "[limits]\nmax_pending_tasks = 10000000\n";
		bench_daemon_start(&d, BENCH_UNIX, NULL);
		submit_many(&d, serve, &first, &last);
		sigset_t stop;
		int sig;

		printf("HPQ_SOCKET=%s (hpqd %d, tasks %llu-%llu)\n", d.sock, (int)d.pid,
		       (unsigned long long)first, (unsigned long long)last);
		/* Killed, it stops its hpqd first (blocked only now: hpqd
		 * would inherit the mask). */
		sigemptyset(&stop);
		sigaddset(&stop, SIGINT);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGHUP);
		sigprocmask(SIG_BLOCK, &stop, NULL);
		sigwait(&stop, &sig);
		bench_daemon_stop(&d);
		return 0;
	}
	/* A queue this long is the point: lift the per-user pending limit. */
	bench_extra_config = "[limits]\nmax_pending_tasks = 10000000\n";
	printf("hpq %s, hpqd %s; wall time of the whole CLI process, median of %d\n\n",
	       bench_bin("hpq"), bench_bin("hpqd"), runs);
	list = xstrdup(sizes);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		bench_size(atoi(tok), runs);
	free(list);
	return 0;
}
