/*
 * bench.c: the shared part of the benchmarks (bench.h): start and stop a
 * real hpqd on a temp dir for a transport, and a private munged; time,
 * quantiles.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <munge.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long utime, stime;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* After "pid (comm) ": state is field 3, utime and stime 14 and 15;
	 * comm may hold spaces and parentheses, hence the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
			 &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

const char *bench_bin(const char *which)
{
	const char *e;

	if (strcmp(which, "hpqd") == 0)
		return (e = getenv("HPQ_BENCH_HPQD")) && *e ? e : HPQ_BENCH_HPQD_PATH;
	return (e = getenv("HPQ_BENCH_HPQ")) && *e ? e : HPQ_BENCH_HPQ_PATH;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_quantile(double *v, size_t n, double q)
{
	size_t rank;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	rank = (size_t)(q * (double)n + 0.999999);
	if (rank == 0)
		rank = 1;
	return v[(rank > n ? n : rank) - 1];
}

static int connectable(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static const char *const transport_names[BENCH_NTRANSPORTS] = {"unix", "tls", "plain"};

const char *bench_transport_name(enum bench_transport t)
{
	return transport_names[t];
}

int bench_transports(const char *list, enum bench_transport *out)
{
	int n = 0;

	for (const char *p = list;;) {
		size_t len = strcspn(p, ",");
		int t;

		for (t = 0; t < BENCH_NTRANSPORTS; t++)
			if (strlen(transport_names[t]) == len && !strncmp(p, transport_names[t], len))
				break;
		if (t == BENCH_NTRANSPORTS) {
			fprintf(stderr, "bench: unknown transport '%.*s': use unix, tls or plain, "
					"like unix,tls\n", (int)len, p);
			return -1;
		}
		for (int i = 0; i < n; i++)
			if (out[i] == (enum bench_transport)t) {
				fprintf(stderr, "bench: transport '%s' given twice\n",
					transport_names[t]);
				return -1;
			}
		out[n++] = (enum bench_transport)t;
		if (!p[len])
			return n;
		p += len + 1;
	}
}

/* The TCP port in <dir>/hpqd.port (hpqd writes it whole, by rename), or 0. */
static int read_port(const char *dir)
{
	char path[128], buf[16];
	ssize_t n;
	long port;
	char *end;
	int fd;

	snprintf(path, sizeof(path), "%s/hpqd.port", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	port = strtol(buf, &end, 10);
	return end != buf && (*end == '\n' || !*end) && port > 0 && port <= 65535 ? (int)port : 0;
}

/* Copies from to to (mode 0644); returns 0 or -errno. */
static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out, r = 0;
	ssize_t n;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		r = -errno;
		close(in);
		return r;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			r = -EIO;
			break;
		}
	if (n < 0)
		r = -errno;
	close(in);
	if (close(out) < 0 && !r)
		r = -errno;
	return r;
}

const char *bench_extra_config;

static void write_config(const char *path, const char *munge_sock)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "bench: cannot write '%s': %s\n", path, strerror(errno));
		exit(1);
	}
	/* Nothing is ever dispatched (no agents), and the benchmark runs as
	 * whoever runs it, root included. */
	fprintf(f, "[auth]\nallow_root_tasks = yes\n");
	if (munge_sock)
		fprintf(f, "munge_socket = %s\n", munge_sock);
	if (bench_extra_config)
		fputs(bench_extra_config, f);
	if (fclose(f) != 0) {
		fprintf(stderr, "bench: cannot write '%s': %s\n", path, strerror(errno));
		exit(1);
	}
}

/* The client library reads these (common/client.h); set for t alone. */
static void client_env(const struct bench_daemon *d, enum bench_transport t,
		       const char *munge_sock)
{
	unsetenv("HPQ_SOCKET");
	unsetenv("HPQ_SERVER");
	unsetenv("HPQ_SERVER_NAME");
	if (t == BENCH_PLAIN)
		setenv("HPQ_INSECURE", "1", 1);
	else
		unsetenv("HPQ_INSECURE");
	if (t == BENCH_TLS)
		setenv("HPQ_CA_FILE", d->ca, 1);
	else
		unsetenv("HPQ_CA_FILE");
	if (munge_sock)
		setenv("HPQ_MUNGE_SOCKET", munge_sock, 1);
	else
		unsetenv("HPQ_MUNGE_SOCKET");
}

void bench_daemon_start(struct bench_daemon *d, enum bench_transport t, const char *munge_sock)
{
	char log[128], conf[128], ca[128];
	int status;

	memset(d, 0, sizeof(*d));
	strcpy(d->dir, "/tmp/hpqb-XXXXXX");
	if (!mkdtemp(d->dir)) {
		fprintf(stderr, "bench: cannot create a temp dir: %s\n", strerror(errno));
		exit(1);
	}
	snprintf(d->sock, sizeof(d->sock), "%s/hpqd.sock", d->dir);
	snprintf(log, sizeof(log), "%s/hpqd.log", d->dir);
	snprintf(conf, sizeof(conf), "%s/hpqd.conf", d->dir);
	write_config(conf, munge_sock);
	d->pid = fork();
	if (d->pid < 0) {
		fprintf(stderr, "bench: fork: %s\n", strerror(errno));
		exit(1);
	}
	if (d->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
			_exit(127);
		execl(bench_bin("hpqd"), "hpqd", "--foreground", "--state-dir", d->dir, "--socket",
		      d->sock, "--listen", "127.0.0.1:0", "--log-level", "warning", "--config",
		      conf, t == BENCH_PLAIN ? "--insecure" : (char *)NULL, (char *)NULL);
		fprintf(stderr, "bench: cannot run '%s': %s\n", bench_bin("hpqd"),
			strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < 3000; i++) {
		if (connectable(d->sock) && (d->port = read_port(d->dir)) > 0)
			goto up;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			fprintf(stderr, "bench: hpqd exited during start; see %s\n", log);
			exit(1);
		}
		usleep(10000);
	}
	fprintf(stderr, "bench: hpqd did not start within 30 s; see %s\n", log);
	kill(d->pid, SIGKILL);
	exit(1);
up:
	/* hpqd made the cluster CA at its first start (mode 0600 there);
	 * clients get a copy, as a cluster's users would. */
	snprintf(ca, sizeof(ca), "%s/tls/ca.crt", d->dir);
	snprintf(d->ca, sizeof(d->ca), "%s/ca.crt", d->dir);
	if (t == BENCH_TLS && (status = copy_file(ca, d->ca)) < 0) {
		fprintf(stderr, "bench: cannot copy '%s': %s\n", ca, strerror(-status));
		bench_daemon_stop(d);
		exit(1);
	}
	if (t == BENCH_UNIX)
		snprintf(d->addr, sizeof(d->addr), "%s", d->sock);
	else
		snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", d->port);
	client_env(d, t, munge_sock);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

void bench_daemon_stop(struct bench_daemon *d)
{
	int status;

	kill(d->pid, SIGTERM);
	for (int i = 0; i < 2000; i++) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid)
			goto gone;
		usleep(10000);
	}
	fprintf(stderr, "bench: hpqd ignored SIGTERM for 20 s; killing it\n");
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &status, 0);
gone:
	if (!getenv("HPQ_KEEP_TMP"))
		nftw(d->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether munged at sock makes credentials. */
static int munge_works(const char *sock)
{
	munge_ctx_t ctx = munge_ctx_create();
	char *cred = NULL;
	int ok;

	if (!ctx)
		return 0;
	ok = munge_ctx_set(ctx, MUNGE_OPT_SOCKET, sock) == EMUNGE_SUCCESS &&
	     munge_encode(&cred, ctx, NULL, 0) == EMUNGE_SUCCESS;
	free(cred);
	munge_ctx_destroy(ctx);
	return ok;
}

/* The munged started, stopped at exit too (a failure exits the program),
 * by the process that started it alone (not by forked clients). */
static struct bench_munged *started;
static pid_t started_by;

static void munged_at_exit(void)
{
	if (started && getpid() == started_by)
		bench_munged_stop(started);
}

int bench_munged_start(struct bench_munged *m)
{
	static const char *const dirs[] = {"/usr/sbin", "/usr/local/sbin", "/sbin"};
	char munged[64] = "", key[128], out[128], opt[5][160];
	unsigned char bytes[1024];
	int fd, status;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !*munged; i++) {
		snprintf(munged, sizeof(munged), "%s/munged", dirs[i]);
		if (access(munged, X_OK) < 0)
			*munged = '\0';
	}
	if (!*munged) {
		fprintf(stderr, "bench: munged not found (the Debian package munge)\n");
		return -1;
	}
	strcpy(m->dir, "/tmp/hpqb-munge-XXXXXX");
	if (!mkdtemp(m->dir)) {
		fprintf(stderr, "bench: cannot create a temp dir: %s\n", strerror(errno));
		return -1;
	}
	snprintf(m->sock, sizeof(m->sock), "%s/munge.sock", m->dir);
	snprintf(out, sizeof(out), "%s/munged.out", m->dir);
	/* The key: random bytes, readable by munged's user only. */
	snprintf(key, sizeof(key), "%s/munge.key", m->dir);
	fd = open(key, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes) ||
	    write(fd, bytes, sizeof(bytes)) != (ssize_t)sizeof(bytes)) {
		fprintf(stderr, "bench: cannot write the MUNGE key '%s'\n", key);
		if (fd >= 0)
			close(fd);
		bench_munged_stop(m);
		return -1;
	}
	close(fd);
	snprintf(opt[0], sizeof(opt[0]), "--socket=%s", m->sock);
	snprintf(opt[1], sizeof(opt[1]), "--key-file=%s", key);
	snprintf(opt[2], sizeof(opt[2]), "--pid-file=%s/munged.pid", m->dir);
	snprintf(opt[3], sizeof(opt[3]), "--log-file=%s/munged.log", m->dir);
	snprintf(opt[4], sizeof(opt[4]), "--seed-file=%s/munged.seed", m->dir);
	m->pid = fork();
	if (m->pid < 0) {
		fprintf(stderr, "bench: fork: %s\n", strerror(errno));
		m->pid = 0;
		bench_munged_stop(m);
		return -1;
	}
	if (m->pid == 0) {
		/* In the foreground (-F), so that it is our child to stop; -f
		 * because its files are in /tmp. */
		fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execl(munged, munged, "-F", "-f", opt[0], opt[1], opt[2], opt[3], opt[4],
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 3000; i++) {
		if (munge_works(m->sock)) {
			if (!started_by)
				atexit(munged_at_exit);
			started = m;
			started_by = getpid();
			return 0;
		}
		if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
			/* Its dir stays, for its output. */
			m->pid = 0;
			fprintf(stderr, "bench: munged exited during start (status %d); see %s\n",
				status, out);
			return -1;
		}
		usleep(10000);
	}
	fprintf(stderr, "bench: munged did not start within 30 s; see %s\n", out);
	kill(m->pid, SIGKILL);
	waitpid(m->pid, &status, 0);
	m->pid = 0;
	return -1;
}

void bench_munged_stop(struct bench_munged *m)
{
	int status;

	if (m->pid > 0) {
		kill(m->pid, SIGTERM);
		for (int i = 0; i < 2000; i++) {
			if (waitpid(m->pid, &status, WNOHANG) == m->pid)
				goto gone;
			usleep(10000);
		}
		fprintf(stderr, "bench: munged ignored SIGTERM for 20 s; killing it\n");
		kill(m->pid, SIGKILL);
		waitpid(m->pid, &status, 0);
	}
gone:
	m->pid = 0;
	if (started == m)
		started = NULL;
	if (*m->dir && !getenv("HPQ_KEEP_TMP"))
		nftw(m->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
