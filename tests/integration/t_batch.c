/*
 * t_batch: what an agent makes of a batch task's RunTask, end to end. The
 * tasks are submitted through the client library with the batch fields of
 * TaskSpec set directly (script, output, error, submit_dir), as `hpq
 * submit script.sh` sends them; nothing of the script is on disk.
 *
 * - The script's copy runs, with the task's arguments, as the task's user
 *   (as root the test makes the user hpqt-bat, removed at the end); its
 *   output goes to the -o pattern with %x, %j, %N and %t expanded,
 *   relative to the working directory, in a file the user owns; `hpq
 *   logs` says where the output went instead of showing it.
 * - The task gets SLURM_JOB_ID, SLURM_JOB_NAME, SLURM_NNODES,
 *   SLURM_JOB_NUM_NODES, SLURM_NODEID, SLURM_JOB_NODELIST,
 *   SLURM_CPUS_PER_TASK and SLURM_SUBMIT_DIR, and a submitted
 *   SLURM_JOB_ID does not survive.
 * - A script without "#!" runs under /bin/sh; -e sends stderr to a file
 *   of its own.
 * - With hpqd's [compat] slurm_env = no there is no SLURM_* variable, and
 *   the HPQ_* ones are still there.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "msg.h"

#define USER "hpqt-bat"

static struct passwd user;   /* uid 0: the test runs as itself */
static char user_name[32];

static int make_user(void **state)
{
	const struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if (system("userdel " USER " 2>/dev/null; groupdel " USER " 2>/dev/null; "
		   "useradd -M -U -s /bin/sh " USER) != 0) {
		fprintf(stderr, "t_batch: cannot make user " USER "; running as root only\n");
		return 0;
	}
	pw = getpwnam(USER);
	if (!pw)
		return -1;
	snprintf(user_name, sizeof(user_name), "%s", pw->pw_name);
	user = *pw;
	user.pw_name = user_name;
	return 0;
}

static int drop_user(void **state)
{
	if (user.pw_uid && system("userdel " USER " 2>/dev/null; groupdel " USER
				  " 2>/dev/null; true") != 0)
		fprintf(stderr, "t_batch: could not remove " USER "\n");
	return 0;
}

/* The value of NAME in an `env` dump, or NULL. Returns a static buffer. */
static const char *env_value(const char *dump, const char *name)
{
	static char val[512];
	size_t n = strlen(name);

	for (const char *p = dump; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			size_t len = strcspn(p + n + 1, "\n");

			snprintf(val, sizeof(val), "%.*s", (int)len, p + n + 1);
			return val;
		}
	}
	return NULL;
}

/* Fails unless NAME is want in the dump (want NULL: NAME is absent). */
static void expect_env(const char *dump, const char *name, const char *want)
{
	const char *v = env_value(dump, name);

	if (!want && v)
		fail_msg("%s=%s in the task's environment; it should be absent", name, v);
	if (want && (!v || strcmp(v, want) != 0))
		fail_msg("%s is %s%s%s in the task's environment, not '%s'", name, v ? "'" : "",
			 v ? v : "absent", v ? "'" : "", want);
}

/*
 * Submits spec through the client library, as uid (0: the test itself),
 * from a child that became that user; returns the new task's id.
 */
static uint64_t submit_spec(struct h_cluster *c, Hpq__TaskSpec *spec, const struct passwd *as)
{
	char msg[512] = "";
	uint64_t id = 0;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply = NULL;
		Hpq__SubmitRequest req = HPQ__SUBMIT_REQUEST__INIT;
		struct hpq_client cl;
		char out[520];

		close(fds[0]);
		if (as && as->pw_uid && (setgroups(0, NULL) < 0 || setgid(as->pw_gid) < 0 ||
					 setuid(as->pw_uid) < 0)) {
			dprintf(fds[1], "E cannot become %s: %s", as->pw_name, strerror(errno));
			_exit(1);
		}
		if (hpq_client_connect(&cl, c->sock, 30000) < 0) {
			dprintf(fds[1], "E cannot connect: %s", cl.errbuf);
			_exit(1);
		}
		req.spec = spec;
		env.body_case = HPQ__ENVELOPE__BODY_SUBMIT;
		env.submit = &req;
		if (hpq_client_call(&cl, &env, &reply) < 0 ||
		    reply->body_case != HPQ__ENVELOPE__BODY_SUBMIT_REPLY) {
			snprintf(out, sizeof(out), "E submit refused: %s", cl.errbuf);
			if (write(fds[1], out, strlen(out)) < 0)
				_exit(1);
			_exit(1);
		}
		dprintf(fds[1], "%" PRIu64, reply->submit_reply->id);
		hpq_msg_free(reply);
		hpq_client_close(&cl);
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], msg, sizeof(msg) - 1);
	close(fds[0]);
	status = h_wait_child(c, pid, 30000);
	msg[n > 0 ? n : 0] = '\0';
	if (status != 0 || msg[0] == 'E' || !msg[0])
		fail_msg("submit: %s", msg[0] ? msg + 2 : "the child failed");
	id = strtoull(msg, NULL, 10);
	assert_true(id > 0);
	return id;
}

/* A directory under the test's dir that the task's user owns. */
static const char *user_dir(struct h_cluster *c, const char *name)
{
	const char *dir = h_path(c, "%s", name);

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		fail_msg("mkdir '%s': %s", dir, strerror(errno));
	if (user.pw_uid && chown(dir, user.pw_uid, user.pw_gid) < 0)
		fail_msg("chown '%s': %s", dir, strerror(errno));
	return dir;
}

static void start(struct h_cluster *c)
{
	if (user.pw_uid)
		h_cli_as(c, user.pw_uid, user.pw_gid); /* makes the dir reachable for it */
	h_cli_as(c, 0, 0);
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 2, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));
}

static void script_output_env(void **state)
{
	static const char script[] =
		"#!/bin/sh\n"
		"echo \"args=$1|$2|$#\"\n"
		"echo \"whoami=$(id -u)\"\n"
		"echo to-stderr >&2\n"
		"env\n";
	static char *argv[] = {(char *)"/nowhere/on/disk/job.sh", (char *)"first arg",
			       (char *)"second"};
	static char *envv[] = {(char *)"SLURM_JOB_ID=999", (char *)"KEEP_ME=1",
			       (char *)"PATH=/usr/bin:/bin"};
	struct h_cluster *c = *state;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	char ids[32], want[64], *text;
	const char *work, *out;
	struct h_out o;
	struct stat st;
	uint64_t id;

	start(c);
	work = user_dir(c, "work");
	res.cpus = 1;
	spec.per_node = &res;
	spec.argv = argv;
	spec.n_argv = 3;
	spec.env = envv;
	spec.n_env = 3;
	spec.cwd = (char *)work;
	spec.name = (char *)"batchjob";
	spec.script.data = (uint8_t *)script;
	spec.script.len = sizeof(script) - 1;
	spec.output = (char *)"%x-%j-%N-%t.out";
	spec.submit_dir = (char *)"/where/it/was/submitted";
	id = submit_spec(c, &spec, user.pw_uid ? &user : NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));

	out = h_path(c, "work/batchjob-%" PRIu64 "-node1-0.out", id);
	text = h_read_file(out);
	if (!text)
		fail_msg("no output file %s", out);
	if (!strstr(text, "args=first arg|second|2\n"))
		fail_msg("the script did not get its arguments:\n%s", text);
	snprintf(want, sizeof(want), "whoami=%lu\n", (unsigned long)(user.pw_uid ? user.pw_uid
								       : geteuid()));
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "to-stderr\n"));
	assert_int_equal(stat(out, &st), 0);
	assert_int_equal(st.st_uid, user.pw_uid ? user.pw_uid : geteuid());
	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	expect_env(text, "SLURM_JOB_ID", ids);
	expect_env(text, "SLURM_JOB_NAME", "batchjob");
	expect_env(text, "SLURM_NNODES", "1");
	expect_env(text, "SLURM_JOB_NUM_NODES", "1");
	expect_env(text, "SLURM_NODEID", "0");
	expect_env(text, "SLURM_JOB_NODELIST", "node1");
	expect_env(text, "SLURM_CPUS_PER_TASK", "1");
	expect_env(text, "SLURM_SUBMIT_DIR", "/where/it/was/submitted");
	expect_env(text, "SLURM_ARRAY_TASK_ID", NULL);
	expect_env(text, "HPQ_ARRAY_ID", NULL);
	expect_env(text, "HPQ_TASK_ID", ids);
	expect_env(text, "KEEP_ME", "1");
	free(text);

	/* hpq logs: hpq's lines, where the output went, not the output. */
	if (h_hpq(c, &o, "logs", ids, NULL) != 0)
		fail_msg("hpq logs %s: %s", ids, o.err);
	if (!strstr(o.out, "go to") || !strstr(o.out, "batchjob-") || strstr(o.out, "args="))
		fail_msg("hpq logs should name the output file and not show the output:\n%s",
			 o.out);
	assert_non_null(strstr(o.out, "/nowhere/on/disk/job.sh"));
	h_out_free(&o);
	h_pass(c);
}

static void plain_script_error_file(void **state)
{
	static const char script[] = "echo \"out $HPQ_TASK_ID\"\necho \"err $1\" >&2\n";
	static char *argv[] = {(char *)"job.sh", (char *)"x"};
	struct h_cluster *c = *state;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	char want[64], *text;
	const char *work;
	uint64_t id;

	start(c);
	work = user_dir(c, "work");
	res.cpus = 1;
	spec.per_node = &res;
	spec.argv = argv;
	spec.n_argv = 2;
	spec.cwd = (char *)work;
	spec.script.data = (uint8_t *)script;
	spec.script.len = sizeof(script) - 1;
	spec.output = (char *)"o-%j.txt";
	spec.error = (char *)"e-%j.txt";
	id = submit_spec(c, &spec, user.pw_uid ? &user : NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	text = h_read_file(h_path(c, "work/o-%" PRIu64 ".txt", id));
	assert_non_null(text);
	snprintf(want, sizeof(want), "out %" PRIu64 "\n", id);
	assert_string_equal(text, want);
	free(text);
	text = h_read_file(h_path(c, "work/e-%" PRIu64 ".txt", id));
	assert_non_null(text);
	assert_string_equal(text, "err x\n");
	free(text);
	h_pass(c);
}

static void slurm_env_off(void **state)
{
	static const char script[] = "#!/bin/sh\nenv\n";
	static char *argv[] = {(char *)"job.sh"};
	struct h_cluster *c = *state;
	Hpq__Resources res = HPQ__RESOURCES__INIT;
	Hpq__TaskSpec spec = HPQ__TASK_SPEC__INIT;
	char ids[32], *text;
	const char *work;
	uint64_t id;

	h_daemon_config(c, "[compat]\nslurm_env = no\n");
	start(c);
	work = user_dir(c, "work");
	res.cpus = 1;
	spec.per_node = &res;
	spec.argv = argv;
	spec.n_argv = 1;
	spec.cwd = (char *)work;
	spec.script.data = (uint8_t *)script;
	spec.script.len = sizeof(script) - 1;
	spec.output = (char *)"env-%j";
	id = submit_spec(c, &spec, user.pw_uid ? &user : NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	text = h_read_file(h_path(c, "work/env-%" PRIu64, id));
	assert_non_null(text);
	if (strstr(text, "SLURM_"))
		fail_msg("SLURM_* variables with slurm_env = no:\n%s", text);
	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	expect_env(text, "HPQ_TASK_ID", ids);
	expect_env(text, "HPQ_NODE_RANK", "0");
	free(text);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(script_output_env, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(plain_script_error_file, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(slurm_env_off, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, make_user, drop_user);
}
