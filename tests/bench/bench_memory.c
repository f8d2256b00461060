/*
 * bench_memory.c: hpqd's memory per pending task, and its restart on a
 * large database (no agents: nothing starts).
 *
 *   pending  for each N of --tasks: a fresh hpqd; its VmRSS once up, then
 *            after --clients clients submitted N tasks (common/client.h),
 *            each with a typical environment (--env-vars variables, about
 *            2.5 KiB for 60), and once more after a restart on the same
 *            database; bytes per pending task = (VmRSS - VmRSS up) / N
 *
 *   restart  --restart F,P: a fresh database made by hpqd, into which
 *            this program writes F ended tasks (2 hours old) and P
 *            pending ones directly with SQLite, the way hpqd writes them;
 *            then the time from starting hpqd to its first answered
 *            request (hpq status), and its VmRSS then and a little later;
 *            then `hpq acct --limit 0 --csv`, every ended task's record:
 *            its time to the last line, hpq's peak RSS, and hpqd's VmRSS
 *            before and after
 *
 * usage: bench_memory [--tasks 10000,100000] [--clients 16] [--env-vars 60]
 *        bench_memory --restart 1000000,100000 [--env-vars 60] [--reuse DIR]
 *
 * $HPQ_BENCH_HPQD runs another hpqd (for a before-and-after comparison).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"
#include "msg.h"

#define MAX_CLIENTS 64

struct daemon {
	char dir[64];
	char sock[100];
	pid_t pid;
};

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

/* A status request answered: hpqd serves. */
static int status_ok(const char *sock)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
	Hpq__StatusRequest req = HPQ__STATUS_REQUEST__INIT;
	struct hpq_client c;
	int ok;

	if (hpq_client_connect(&c, sock, 1000) < 0)
		return 0;
	env.body_case = HPQ__ENVELOPE__BODY_STATUS;
	env.status = &req;
	ok = hpq_client_call(&c, &env, &reply) == 0 && reply &&
	     reply->body_case == HPQ__ENVELOPE__BODY_STATUS_REPLY;
	if (reply)
		hpq_msg_free(reply);
	hpq_client_close(&c);
	return ok;
}

static void write_config(const struct daemon *d)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/hpqd.conf", d->dir);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	/* Many pending tasks of one user, submitted as fast as possible. */
	fprintf(f, "[auth]\nallow_root_tasks = yes\n[limits]\nmax_pending_tasks = 100000000\n"
		"rate = 1000000\nburst = 1000000\nmax_inflight = 100000\n");
	fclose(f);
}

/* Starts hpqd on d->dir and waits until it answers; returns the seconds that took. */
static double daemon_start(struct daemon *d)
{
	char log[128], conf[128];
	uint64_t t0 = bench_now_ns();
	int status;

	snprintf(d->sock, sizeof(d->sock), "%s/hpqd.sock", d->dir);
	snprintf(log, sizeof(log), "%s/hpqd.log", d->dir);
	snprintf(conf, sizeof(conf), "%s/hpqd.conf", d->dir);
	unlink(d->sock);
	d->pid = fork();
	if (d->pid < 0) {
		perror("fork");
		exit(1);
	}
	if (d->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
			_exit(127);
		execl(bench_bin("hpqd"), "hpqd", "--foreground", "--state-dir", d->dir, "--socket",
		      d->sock, "--listen", "127.0.0.1:0", "--log-level", "info", "--config", conf,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 600000; i++) {
		if (status_ok(d->sock))
			return (double)(bench_now_ns() - t0) / 1e9;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			fprintf(stderr, "bench_memory: hpqd exited during start; see %s\n", log);
			exit(1);
		}
		usleep(1000);
	}
	fprintf(stderr, "bench_memory: hpqd did not answer; see %s\n", log);
	exit(1);
}

static void daemon_stop(struct daemon *d)
{
	int status;

	kill(d->pid, SIGTERM);
	waitpid(d->pid, &status, 0);
}

static void daemon_dir(struct daemon *d)
{
	strcpy(d->dir, "/tmp/hpqm-XXXXXX");
	if (!mkdtemp(d->dir)) {
		perror("mkdtemp");
		exit(1);
	}
	write_config(d);
}

static void daemon_remove(struct daemon *d)
{
	char cmd[128];

	if (getenv("HPQ_KEEP_TMP"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_memory: cannot remove %s\n", d->dir);
}

/* A submitting shell's environment: nvars variables, about 42 bytes each. */
static char **make_env(int nvars, size_t *bytes)
{
	static const char *const common[] = {
		"HOME=/home/alice", "USER=alice", "LOGNAME=alice", "SHELL=/bin/bash",
		"LANG=C.UTF-8", "TERM=xterm-256color",
		("PATH=/home/alice/.local/bin:/opt/conda/bin:/usr/local/cuda/bin:/usr/local/sbin:"
		 "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
		"LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/nccl/lib:/opt/conda/lib",
		"PWD=/home/alice/projects/llm-train/runs/2024-06-01",
	};
	char **env = calloc((size_t)nvars + 1, sizeof(*env));
	size_t n = sizeof(common) / sizeof(common[0]);

	*bytes = 0;
	for (int i = 0; i < nvars; i++) {
		if ((size_t)i < n)
			env[i] = strdup(common[i]);
		else if (asprintf(&env[i], "EXPERIMENT_SETTING_%02d=value-%02d-abcdefghijklm", i,
				  i) < 0)
			exit(1);
		*bytes += strlen(env[i]) + 1;
	}
	return env;
}

static void client(const char *sock, int n, char **env, int nenv, int go, int out)
{
	char *argv[] = { "/home/alice/projects/llm-train/train.sh", "--config", "base.yaml" };
	Hpq__Envelope req = HPQ__ENVELOPE__INIT, *reply;
	Hpq__SubmitRequest sub = HPQ__SUBMIT_REQUEST__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	struct hpq_client c;
	int acked = 0;
	char b;

	if (hpq_client_connect(&c, sock, 30000) < 0) {
		fprintf(stderr, "bench_memory: %s\n", c.errbuf);
		_exit(1);
	}
	res.gpus = 1;
	res.cpus = 8;
	spec.name = "train";
	spec.per_node = &res;
	spec.argv = argv;
	spec.n_argv = 3;
	spec.env = env;
	spec.n_env = (size_t)nenv;
	spec.cwd = "/home/alice/projects/llm-train";
	sub.spec = &spec;
	req.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
	req.submit = &sub;
	if (read(go, &b, 1) != 0)
		_exit(1);
	for (int i = 0; i < n; i++) {
		if (hpq_client_call(&c, &req, &reply) < 0) {
			fprintf(stderr, "bench_memory: submit %d: %s\n", i, c.errbuf);
			break;
		}
		if (reply->body_case == HPQ__ENVELOPE__BODY_SUBMIT_REPLY)
			acked++;
		else if (reply->body_case == HPQ__ENVELOPE__BODY_ERROR && i == 0)
			fprintf(stderr, "bench_memory: %s\n", reply->error->message);
		hpq_msg_free(reply);
	}
	hpq_client_close(&c);
	if (write(out, &acked, sizeof(acked)) != sizeof(acked))
		_exit(1);
	_exit(0);
}

static void pending(long ntasks, int nclients, int nvars)
{
	struct daemon d;
	size_t envb;
	char **env = make_env(nvars, &envb);
	int go[2], out[2], total = 0;
	pid_t pids[MAX_CLIENTS];
	long up, after, restarted;
	double secs, restart_s;
	uint64_t t0;

	daemon_dir(&d);
	daemon_start(&d);
	sleep(1);
	up = rss_kb(d.pid);
	if (pipe(go) < 0 || pipe(out) < 0)
		exit(1);
	for (int i = 0; i < nclients; i++) {
		int share = (int)(ntasks / nclients + (i < ntasks % nclients));

		if ((pids[i] = fork()) == 0) {
			close(go[1]);
			client(d.sock, share, env, nvars, go[0], out[1]);
		}
	}
	close(go[0]);
	close(out[1]);
	t0 = bench_now_ns();
	close(go[1]);
	for (int i = 0; i < nclients; i++) {
		int a = 0;

		if (read(out[0], &a, sizeof(a)) == sizeof(a))
			total += a;
	}
	secs = (double)(bench_now_ns() - t0) / 1e9;
	for (int i = 0; i < nclients; i++)
		waitpid(pids[i], NULL, 0);
	after = rss_kb(d.pid);
	daemon_stop(&d);
	restart_s = daemon_start(&d);
	sleep(1);
	restarted = rss_kb(d.pid);
	printf("pending %ld (acked %d, env %d vars = %zu bytes, %.1f s to submit): VmRSS up %ld KiB,"
	       " after %ld KiB = %.0f bytes/task; after a restart (%.2f s) %ld KiB = %.0f "
	       "bytes/task\n", ntasks, total, nvars, envb, secs, up, after,
	       (double)(after - up) * 1024 / (double)total, restart_s, restarted,
	       (double)(restarted - up) * 1024 / (double)total);
	fflush(stdout);
	daemon_stop(&d);
	daemon_remove(&d);
}

/* ---------------------------------------------------------------- restart */

static void check(int rc, sqlite3 *db, const char *what)
{
	if (rc != SQLITE_OK && rc != SQLITE_DONE) {
		fprintf(stderr, "bench_memory: %s: %s\n", what, sqlite3_errmsg(db));
		exit(1);
	}
}

static void generate(const char *path, long finished, long npending, int nvars)
{
	size_t envb, off = 0;
	char **env = make_env(nvars, &envb);
	char *blob = malloc(envb), cls[64] = "";
	const char argv[] = "/home/alice/train.sh\0--epochs\0" "10";
	int64_t now = (int64_t)time(NULL) * 1000, old = now - 2 * 3600 * 1000;
	sqlite3 *db;
	sqlite3_stmt *q, *qe;
	int rc, fd;

	for (int i = 0; i < nvars; i++) {
		memcpy(blob + off, env[i], strlen(env[i]) + 1);
		off += strlen(env[i]) + 1;
	}
	check(sqlite3_open(path, &db), db, "open");
	/* One big transaction: no WAL for it (hpqd turns WAL on again). */
	check(sqlite3_exec(db, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF", NULL, NULL,
			   NULL), db, "pragma");
	check(sqlite3_prepare_v2(db, "SELECT default_class FROM teams WHERE name = 'default'",
				 -1, &q, NULL), db, "class");
	if (sqlite3_step(q) == SQLITE_ROW)
		snprintf(cls, sizeof(cls), "%s", sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	if (!*cls)
		snprintf(cls, sizeof(cls), "-");       /* what a submit without --class gets */
	check(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), db, "begin");
	check(sqlite3_prepare_v2(db,
		"INSERT INTO tasks (name, team, user, uid, gid, class, pool, state, reason, nnodes,"
		" gpus, cpus, mem, node_names, nodes_done, attempts, submit_time, start_time,"
		" end_time, exit_code, cwd, argv) VALUES ('train', 'default', 'alice', 1000,"
		" 1000, ?1, 'default', ?2, '', 1, 1, 8, 0, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
		" '/home/alice', ?10)", -1, &q, NULL), db, "prepare");
	/* The environment's table of schema version 7 (daemon/store-open.c). */
	check(sqlite3_prepare_v2(db, "INSERT INTO task_env (id, env) VALUES (last_insert_rowid(), ?1)",
				 -1, &qe, NULL), db, "prepare env");
	for (long i = 0; i < finished + npending; i++) {
		bool fin = i < finished;

		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, cls, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, fin ? (i % 10 ? "COMPLETED" : "FAILED") : "PENDING", -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(q, 3, fin ? "g001" : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 4, fin ? "1" : "", -1, SQLITE_STATIC);
		sqlite3_bind_int(q, 5, fin);
		sqlite3_bind_int64(q, 6, old - 60000);
		sqlite3_bind_int64(q, 7, fin ? old - 30000 : 0);
		sqlite3_bind_int64(q, 8, fin ? old : 0);
		if (fin)
			sqlite3_bind_int(q, 9, i % 10 ? 0 : 1);
		else
			sqlite3_bind_null(q, 9);
		sqlite3_bind_blob(q, 10, argv, sizeof(argv), SQLITE_STATIC);
		check(sqlite3_step(q), db, "insert");
		sqlite3_reset(qe);
		sqlite3_bind_blob(qe, 1, blob, (int)envb, SQLITE_STATIC);
		check(sqlite3_step(qe), db, "insert env");
	}
	sqlite3_finalize(q);
	sqlite3_finalize(qe);
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	check(rc, db, "commit");
	sqlite3_close(db);
	free(blob);
	/* On disk before hpqd starts, as hpqd's own commits would have put
	 * it: else the first restart's first fsync writes all of it out. */
	fd = open(path, O_RDONLY);
	if (fd < 0 || fsync(fd) < 0) {
		fprintf(stderr, "bench_memory: fsync %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
}

/* hpq acct --limit 0 --csv, read through a pipe: how many records, and
 * hpq's peak RSS in KiB (*maxrss). */
static long acct_export(const struct daemon *d, long *maxrss)
{
	char buf[65536];
	struct rusage ru;
	long lines = 0;
	int p[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe(p) < 0 || (pid = fork()) < 0) {
		perror("acct");
		exit(1);
	}
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		setenv("HPQ_SOCKET", d->sock, 1);
		execl(bench_bin("hpq"), "hpq", "acct", "--limit", "0", "--csv", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close(p[0]);
	if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "bench_memory: hpq acct failed\n");
		exit(1);
	}
	*maxrss = ru.ru_maxrss;
	return lines - 1;             /* the header */
}

/* reuse: a directory a previous run kept (HPQ_KEEP_TMP), or NULL. */
static void restart(long finished, long npending, int nvars, const char *reuse)
{
	struct daemon d;
	char path[128];
	double s;
	long rss, later;
	uint64_t t0;

	if (reuse) {
		memset(&d, 0, sizeof(d));
		snprintf(d.dir, sizeof(d.dir), "%s", reuse);
	} else {
		daemon_dir(&d);
		daemon_start(&d);      /* makes the database */
		daemon_stop(&d);
		snprintf(path, sizeof(path), "%s/hpq.db", d.dir);
		t0 = bench_now_ns();
		generate(path, finished, npending, nvars);
		printf("wrote %ld ended and %ld pending tasks in %.1f s to %s\n", finished,
		       npending, (double)(bench_now_ns() - t0) / 1e9, d.dir);
	}
	for (int run = 0; run < 3; run++) {
		s = daemon_start(&d);
		rss = rss_kb(d.pid);
		sleep(2);
		later = rss_kb(d.pid);
		printf("restart %d: first answer %.2f s after start; VmRSS then %ld KiB, 2 s later "
		       "%ld KiB\n", run + 1, s, rss, later);
		fflush(stdout);
		daemon_stop(&d);
	}
	daemon_start(&d);
	for (int run = 0; run < 3; run++) {
		long records, maxrss;

		rss = rss_kb(d.pid);
		t0 = bench_now_ns();
		records = acct_export(&d, &maxrss);
		s = (double)(bench_now_ns() - t0) / 1e9;
		printf("acct %d: %ld records as CSV in %.2f s; hpq peak RSS %ld KiB; hpqd VmRSS "
		       "%ld KiB, after %ld KiB\n", run + 1, records, s, maxrss, rss, rss_kb(d.pid));
		fflush(stdout);
	}
	daemon_stop(&d);
	if (!reuse)
		daemon_remove(&d);
}

int main(int argc, char **argv)
{
	char *tasks = strdup("10000,100000"), *tok, *save = NULL;
	int nclients = 16, nvars = 60;
	long rf = -1, rp = -1;
	const char *reuse = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tasks") && i + 1 < argc)
			tasks = strdup(argv[++i]);
		else if (!strcmp(argv[i], "--clients") && i + 1 < argc)
			nclients = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--env-vars") && i + 1 < argc)
			nvars = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reuse") && i + 1 < argc)
			reuse = argv[++i];
		else if (!strcmp(argv[i], "--restart") && i + 1 < argc &&
			 sscanf(argv[i + 1], "%ld,%ld", &rf, &rp) == 2)
			i++;
		else {
			fprintf(stderr, "usage: bench_memory [--tasks N,...] [--clients N] "
				"[--env-vars N] | --restart ENDED,PENDING [--env-vars N] [--reuse DIR]\n");
			return 2;
		}
	}
	if (nclients < 1 || nclients > MAX_CLIENTS || nvars < 1)
		return 2;
	printf("hpqd: %s\n", bench_bin("hpqd"));
	if (rf >= 0) {
		restart(rf, rp, nvars, reuse);
		return 0;
	}
	for (tok = strtok_r(tasks, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		pending(atol(tok), nclients, nvars);
	free(tasks);
	return 0;
}
