/*
 * t_daemonize: hpqd and hpq-agent started as daemons (without
 * --foreground) from a directory of the test's, every path given
 * relative to it, and their --check.
 *
 * - hpqd puts its state where the relative --state-dir names it from the
 *   directory it was started in (not under "/", where the daemon works),
 *   logs to hpqd.log there with dated lines, writes its pid to hpqd.pid
 *   (and removes it when it stops), re-reads its relative --config on
 *   SIGHUP, and writes nothing more to the starting command's output once
 *   it has started. Started in a directory that no longer exists, it
 *   refuses a relative path, saying why.
 * - hpq-agent does the same with a relative --work-dir (agent.log,
 *   agent.pid), runs a task there, and re-reads its relative --config on
 *   SIGHUP.
 * - --check of both prints the settings with where each value came from,
 *   makes relative paths absolute as a daemon would, and exits 1 naming
 *   what is wrong.
 *
 * The daemons are stopped by the pids in their pid files; the test
 * process is a child subreaper, so it reaps them and sees their status.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* Runs argv with its output (stdout and stderr) in out_path, in the
 * directory cwd, or in a directory removed after entering it when cwd is
 * NULL. Returns its exit status, or -1 if it did not end in 60 s. */
static int run_in(struct h_cluster *c, const char *cwd, const char *const *argv,
		  const char *out_path)
{
	const char *gone = h_path(c, "gone");
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		setenv("HPQ_ITEST_DIR", c->dir, 1);
		if (cwd && chdir(cwd) < 0)
			_exit(127);
		if (!cwd && (mkdir(gone, 0700) < 0 || chdir(gone) < 0 || rmdir(gone) < 0))
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	status = h_wait_child(c, pid, 60000);
	if (status == -1) {
		kill(pid, SIGKILL);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* run_in that must exit with code; fails with the output otherwise. */
static char *run_expect(struct h_cluster *c, const char *cwd, const char *const *argv, int code)
{
	const char *out = h_path(c, "run.out");
	int r = run_in(c, cwd, argv, out);
	char *text = h_read_file(out);

	if (r != code)
		fail_msg("%s exited with %d, not %d:\n%s", argv[0], r, code, text ? text : "");
	assert_non_null(text);
	return text;
}

static pid_t read_pid(const char *path)
{
	char *text = h_read_file(path);
	long pid = text ? strtol(text, NULL, 10) : 0;

	free(text);
	return (pid_t)pid;
}

/* Every line of the log file at path is dated: "2024-05-01T14:00:03.250+0200
 * level prog[pid]: ...". */
static void assert_dated(const char *path, const char *prog)
{
	char *text = h_read_file(path), pattern[160];
	regex_t re;

	assert_non_null(text);
	snprintf(pattern, sizeof(pattern), "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
		 "\\.[0-9]{3}[+-][0-9]{4} [a-z]+ %s\\[[0-9]+\\]: ", prog);
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	for (char *line = text; *line;) {
		size_t len = strcspn(line, "\n");
		char save = line[len];

		line[len] = '\0';
		if (regexec(&re, line, 0, NULL, 0) != 0)
			fail_msg("%s: not a dated line: '%s'", path, line);
		line[len] = save;
		line += len + (save == '\n');
	}
	regfree(&re);
	free(text);
}

static bool file_has(const char *path, const char *needle)
{
	char *text = h_read_file(path);
	bool found = text && strstr(text, needle);

	free(text);
	return found;
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Stops the daemon whose pid is in pid_path and checks it exits 0 and
 * removes the file. */
static void stop_by_pid_file(struct h_cluster *c, const char *pid_path)
{
	pid_t pid = read_pid(pid_path);
	int status;

	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGTERM), 0);
	status = h_wait_child(c, pid, 30000);
	if (status == -1) {
		kill(pid, SIGKILL);
		fail_msg("pid %d did not stop within 30 s of SIGTERM", (int)pid);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(access(pid_path, F_OK), -1);
}

static void hpqd_daemonized(void **state)
{
	struct h_cluster *c = *state;
	const char *run = h_path(c, "run"), *start_out = h_path(c, "run/start.out");
	const char *log = h_path(c, "run/state/hpqd.log");
	const char *pid_path = h_path(c, "run/state/hpqd.pid");
	const char *argv[] = {h_bin("hpqd"), "--state-dir", "state", "--socket", "state/hpqd.sock",
			      "--listen", "127.0.0.1:0", "--insecure", "--config", "hpqd.conf",
			      NULL};
	char want[300], *text;
	struct h_out o;
	pid_t pid;
	int code;

	assert_int_equal(mkdir(run, 0755), 0);
	h_write_file(h_path(c, "run/hpqd.conf"), "[hpqd]\nlog_level = info\n");
	code = run_in(c, run, argv, start_out);
	if (code != 0) {
		text = h_read_file(start_out);
		fail_msg("daemonized hpqd: exit %d\n%s", code, text ? text : "");
	}
	/* The starting command has returned: the daemon serves already. */
	pid = read_pid(pid_path);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, 0), 0);
	assert_int_equal(access("/state/hpqd.pid", F_OK), -1);
	assert_int_equal(h_hpq(c, &o, "--socket", h_path(c, "run/state/hpqd.sock"), "list",
			       "--json", NULL), 0);
	h_out_free(&o);
	snprintf(want, sizeof(want), "ready (pid %d, state in %s/state)", (int)pid, run);
	if (!file_has(log, want)) {
		text = h_read_file(log);
		fail_msg("hpqd.log lacks '%s':\n%s", want, text ? text : "(no file)");
	}

	/* SIGHUP re-reads the config file, by the path made absolute. */
	assert_int_equal(kill(pid, SIGHUP), 0);
	snprintf(want, sizeof(want), "re-read from %s/hpqd.conf", run);
	if (!H_WAIT_FOR(c, file_has(log, want), 20000)) {
		text = h_read_file(log);
		fail_msg("hpqd.log lacks '%s':\n%s", want, text ? text : "");
	}
	assert_dated(log, "hpqd");
	/* Everything went to the log, nothing to where it was started from. */
	if (file_size(start_out) != 0) {
		text = h_read_file(start_out);
		fail_msg("the daemon wrote to its starter's output:\n%s", text ? text : "");
	}
	stop_by_pid_file(c, pid_path);
	assert_true(file_has(log, "stopped"));

	/* A relative path in a directory that is gone cannot be resolved. */
	argv[8] = NULL; /* no config file */
	text = run_expect(c, NULL, argv, 1);
	if (!strstr(text, "cannot resolve the relative path 'state'"))
		fail_msg("no clear refusal of a relative path:\n%s", text);
	free(text);
	h_pass(c);
}

static void agent_detached(void **state)
{
	struct h_cluster *c = *state;
	const char *run = h_path(c, "run2"), *start_out = h_path(c, "run2/start.out");
	const char *log = h_path(c, "run2/relwd/agent.log");
	const char *pid_path = h_path(c, "run2/relwd/agent.pid");
	char want[300], id[32], *text;
	off_t started;
	struct h_out o;
	uint64_t task;
	int code;

	h_daemon_start(c);
	assert_int_equal(mkdir(run, 0755), 0);
	h_write_file(h_path(c, "run2/agent.conf"), "[agent]\nheartbeat = 1s\n");

	const char *argv[] = {h_bin("agent"), "--server", c->sock, "--name", "node1", "--work-dir",
			      "relwd", "--gpus", "0", "--cpus", "1", "--mem", "1G",
			      "--allow-root-tasks", "--config", "agent.conf", NULL};

	code = run_in(c, run, argv, start_out);
	if (code != 0) {
		text = h_read_file(start_out);
		fail_msg("detached hpq-agent: exit %d\n%s", code, text ? text : "");
	}
	started = file_size(start_out);
	assert_true(read_pid(pid_path) > 0);
	assert_true(h_wait_nodes(c, 1, 30000));
	task = h_submit(c, "--cpus", "1", "--", "echo", "hello from relwd", NULL);
	assert_true(h_wait_state(c, task, "COMPLETED", 30000));
	snprintf(id, sizeof(id), "%llu", (unsigned long long)task);
	assert_int_equal(h_hpq(c, &o, "logs", id, NULL), 0);
	assert_non_null(strstr(o.out, "hello from relwd"));
	h_out_free(&o);
	snprintf(want, sizeof(want), "serving node node1 (work directory %s/relwd)", run);
	assert_true(file_has(log, want));

	/* SIGHUP re-reads the config file, by the path made absolute. */
	assert_int_equal(kill(read_pid(pid_path), SIGHUP), 0);
	if (!H_WAIT_FOR(c, file_has(log, "reloaded settings"), 20000)) {
		text = h_read_file(log);
		fail_msg("agent.log lacks the reload:\n%s", text ? text : "(no file)");
	}
	assert_false(file_has(log, "reload:"));
	assert_dated(log, "hpq-agent");
	/* Once detached it wrote nothing more where it was started from. */
	assert_int_equal(file_size(start_out), started);
	stop_by_pid_file(c, pid_path);
	h_pass(c);
}

/* The line of out that starts with "key ", or fails. */
static const char *line_of(const char *out, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);

	for (const char *l = out; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] == '\n')) {
		if (!strncmp(l, key, klen) && l[klen] == ' ') {
			snprintf(buf, len, "%.*s", (int)strcspn(l, "\n"), l);
			return buf;
		}
	}
	fail_msg("no '%s' line in:\n%s", key, out);
	return NULL;
}

/* A "key = value ; source" line of out has this value and source. */
static void assert_setting(const char *out, const char *key, const char *value,
			   const char *source)
{
	char line[512], want[300], *semi;

	line_of(out, key, line, sizeof(line));
	semi = strstr(line, " ; ");
	if (!semi)
		fail_msg("no source on '%s'", line);
	snprintf(want, sizeof(want), "%s = %s", key, value);
	if (strncmp(line, want, strlen(want)) || strcmp(semi + 3, source))
		fail_msg("'%s': expected '%s' from %s", line, want, source);
}

static void check_settings(void **state)
{
	struct h_cluster *c = *state;
	const char *run = h_path(c, "run3");
	char abs[300], *out;

	assert_int_equal(mkdir(run, 0755), 0);
	h_write_file(h_path(c, "run3/hpqd.conf"), "[agents]\nheartbeat = 5s\nfence_after = off\n"
		     "[nodes]\nunreachable_after = 4\n");
	h_write_file(h_path(c, "run3/agent.conf"), "pool = p5\nwork_dir = /srv/agent\n");

	/* hpqd: sources, and paths made absolute as the daemon would. */
	const char *hpqd_ok[] = {h_bin("hpqd"), "--check", "--config", "hpqd.conf", "--state-dir",
				 "state", "--socket", "hpqd.sock", "--heartbeat", "2s", NULL};
	out = run_expect(c, run, hpqd_ok, 0);
	snprintf(abs, sizeof(abs), "%s/state", run);
	assert_setting(out, "state_dir", abs, "option");
	assert_setting(out, "heartbeat", "2s", "option");
	assert_setting(out, "unreachable_after", "4", "file");
	assert_setting(out, "listen", "0.0.0.0:7420", "default");
	free(out);
	/* In the foreground the paths stay as given. */
	const char *hpqd_fg[] = {h_bin("hpqd"), "--check", "--foreground", "--state-dir", "state",
				 "--socket", "hpqd.sock", NULL};
	out = run_expect(c, run, hpqd_fg, 0);
	assert_setting(out, "state_dir", "state", "option");
	free(out);
	/* Values that parse but cannot work: exit 1, each said. */
	const char *hpqd_bad[] = {h_bin("hpqd"), "--check", "--state-dir", "hpqd.conf/state",
				  "--socket", "", "--listen", "gpu-head:7420", NULL};
	out = run_expect(c, run, hpqd_bad, 1);
	assert_non_null(strstr(out, "hpqd: listen 'gpu-head:7420': give an IP address"));
	assert_non_null(strstr(out, "hpqd: state_dir"));
	assert_non_null(strstr(out, "hpqd: 2 problems in the settings"));
	free(out);

	/* hpq-agent: the same. */
	const char *agent_ok[] = {h_bin("agent"), "--check", "--config", "agent.conf", "--work-dir",
				  "relwd", "--gpus", "3", "--join",
				  "hpq1.0123456789ab.0123456789abcdef0123456789abcdef", "--ca-hash",
				  "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				  NULL};
	out = run_expect(c, run, agent_ok, 0);
	snprintf(abs, sizeof(abs), "%s/relwd", run);
	assert_setting(out, "work-dir", abs, "option");
	assert_setting(out, "pool", "p5", "file");
	assert_setting(out, "gpus", "3", "option");
	assert_setting(out, "server", "127.0.0.1:7420", "default");
	assert_non_null(strstr(line_of(out, "cpus", abs, sizeof(abs)), "; detected"));
	free(out);
	const char *agent_bad[] = {h_bin("agent"), "--check", "--work-dir", "agent.conf",
				   "--health-dir", "no-such-dir", "--insecure", NULL};
	out = run_expect(c, run, agent_bad, 1);
	assert_non_null(strstr(out, "hpq-agent: work-dir"));
	assert_non_null(strstr(out, "hpq-agent: health-dir"));
	assert_non_null(strstr(out, "hpq-agent: 2 problems in the settings"));
	free(out);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(hpqd_daemonized, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(agent_detached, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(check_settings, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
