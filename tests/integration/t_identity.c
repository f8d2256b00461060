/*
 * t_identity: who a local client is, what it may do, and whom its task
 * runs as. The test runs as root; the CLI is also run as `nobody`.
 *
 * - On the Unix socket the daemon takes the user from the peer's
 *   credentials: nobody is "nobody", not an administrator, even when its
 *   Hello claims to be root.
 * - nobody cannot administer teams or cancel root's task, and can cancel
 *   its own; root (an administrator) can cancel anyone's.
 * - A task records its user, and the agent (running as root) runs it as
 *   that user: nobody's task sees uid and gid 65534.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "hpq.h"
#include "msg.h"

#include "harness.h"

/* Reads one whole frame from fd (waiting at most 30 s for each piece); NULL
 * on close or timeout. */
static Hpq__Envelope *read_env(int fd, struct hpq_framer *f)
{
	const uint8_t *p;
	size_t len;
	uint8_t buf[4096];

	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t n;

		if (hpq_framer_next(f, &p, &len) > 0)
			return hpq_msg_decode(p, len);
		if (poll(&pfd, 1, 30000) <= 0 || (n = recv(fd, buf, sizeof(buf), 0)) <= 0)
			return NULL;
		hpq_framer_feed(f, buf, (size_t)n);
	}
}

static void send_env(int fd, Hpq__Envelope *env)
{
	size_t len;
	uint8_t *buf = hpq_msg_encode(env, &len);

	if (write(fd, buf, len) != (ssize_t)len)
		_exit(10);
	free(buf);
}

/* In a child running as uid: a Hello that claims to be root, then a team
 * creation. Exits 0 if the daemon saw through it. */
static void impostor(struct h_cluster *c, uid_t uid, gid_t gid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__Hello hello = HPQ__HELLO__INIT;
	Hpq__TeamSetRequest set = HPQ__TEAM_SET_REQUEST__INIT;
	Hpq__Team team = HPQ__TEAM__INIT;
	struct hpq_framer f;
	int fd;

	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		_exit(11);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(12);
	hpq_framer_init(&f, HPQ_FRAME_MAX);

	hello.role = HPQ__ROLE__ROLE_CLIENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)HPQ_VERSION;
	hello.name = (char *)"root";
	env.id = 1;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	send_env(fd, &env);
	reply = read_env(fd, &f);
	if (!reply || reply->body_case != HPQ__ENVELOPE__BODY_HELLO_REPLY)
		_exit(13);
	if (strcmp(reply->hello_reply->user, "nobody") != 0 || reply->hello_reply->admin) {
		fprintf(stderr, "a Hello naming root from uid %u made us '%s'%s\n", (unsigned)uid,
			reply->hello_reply->user, reply->hello_reply->admin ? ", admin" : "");
		_exit(14);
	}
	hpq_msg_free(reply);

	team.name = (char *)"impostor";
	set.team = &team;
	set.create = true;
	env.id = 2;
	env.body_case = HPQ__ENVELOPE__BODY_TEAM_SET;
	env.team_set = &set;
	send_env(fd, &env);
	reply = read_env(fd, &f);
	if (!reply || reply->body_case != HPQ__ENVELOPE__BODY_ERROR)
		_exit(15);
	hpq_msg_free(reply);
	hpq_framer_release(&f);
	close(fd);
	_exit(0);
}

/* The CLI runs as pw from now on (NULL: as root again). The harness runs
 * a copy of hpq in the test's dir for it, so that nobody need not reach
 * the build tree (a checkout in root's 0700 home). */
static void as_user(struct h_cluster *c, const struct passwd *pw)
{
	h_cli_as(c, pw ? pw->pw_uid : 0, pw ? pw->pw_gid : 0);
}

static void identity(void **state)
{
	struct h_cluster *c = *state;
	const struct passwd *pw = getpwnam("nobody");
	char ids[32], cmd[256], *who, expect[64];
	struct h_out o;
	uint64_t root_task, mine, done;
	json_t *j, *t;
	pid_t pid;
	int st;

	if (!pw)
		skip();
	struct passwd nobody = *pw;

	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 4, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));
	/* Where nobody's task writes. (h_cli_as makes the test's dir, with the
	 * socket and the task's working directory, traversable.) */
	assert_int_equal(mkdir(h_path(c, "shared"), 0777), 0);
	assert_int_equal(chmod(h_path(c, "shared"), 0777), 0);

	root_task = h_submit(c, "--", "sleep", "60", NULL);
	assert_true(h_wait_state(c, root_task, "RUNNING", 30000));

	as_user(c, &nobody);
	j = h_hpq_json(c, "version", NULL);
	assert_string_equal(h_str(json_object_get(j, "server"), "user"), "nobody");
	assert_true(json_is_false(json_object_get(json_object_get(j, "server"), "admin")));
	json_decref(j);

	/* Not an administrator. */
	assert_int_equal(h_hpq(c, &o, "team", "add", "mine", NULL), 1);
	assert_true(strlen(o.err) > 0);
	h_out_free(&o);
	snprintf(ids, sizeof(ids), "%" PRIu64, root_task);
	assert_int_equal(h_hpq(c, &o, "cancel", ids, NULL), 1);
	assert_true(strlen(o.err) > 0);
	h_out_free(&o);

	/* Its task runs as nobody. */
	snprintf(cmd, sizeof(cmd), "{ id -u; id -g; } > %s/who.$HPQ_TASK_ID", h_path(c, "shared"));
	done = h_submit(c, "--", "sh", "-c", cmd, NULL);
	assert_true(h_wait_state(c, done, "COMPLETED", 30000));
	t = h_task(c, done);
	assert_string_equal(h_str(t, "user"), "nobody");
	json_decref(t);
	who = h_read_file(h_path(c, "shared/who.%" PRIu64, done));
	assert_non_null(who);
	snprintf(expect, sizeof(expect), "%u\n%u\n", (unsigned)nobody.pw_uid,
		 (unsigned)nobody.pw_gid);
	assert_string_equal(who, expect);
	free(who);

	/* It may cancel its own task. */
	mine = h_submit(c, "--", "sleep", "60", NULL);
	assert_true(h_wait_state(c, mine, "RUNNING", 30000));
	snprintf(ids, sizeof(ids), "%" PRIu64, mine);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);
	assert_true(h_wait_state(c, mine, "CANCELLED", 30000));

	/* Claiming to be root in Hello changes nothing on the Unix socket. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		impostor(c, nobody.pw_uid, nobody.pw_gid);
	st = h_wait_child(c, pid, 30000);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("impostor check failed (status %d)", st);

	/* root administers and cancels anyone's task. */
	as_user(c, NULL);
	j = h_hpq_json(c, "team", "list", NULL);
	{
		size_t i;
		json_t *team;

		json_array_foreach(j, i, team) {
			assert_string_not_equal(h_str(team, "name"), "mine");
			assert_string_not_equal(h_str(team, "name"), "impostor");
		}
	}
	json_decref(j);
	snprintf(ids, sizeof(ids), "%" PRIu64, root_task);
	assert_int_equal(h_hpq(c, NULL, "cancel", ids, NULL), 0);
	assert_true(h_wait_state(c, root_task, "CANCELLED", 30000));
	h_pass(c);
}

/* In a child running as uid (named in [auth] admins, not root, not hpqd's
 * user): a Hello as the agent of node1 on the Unix socket, then its
 * Register. Exits 0 if the Hello is refused. */
static void node_impostor(struct h_cluster *c, uid_t uid, gid_t gid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__Hello hello = HPQ__HELLO__INIT;
	Hpq__Register reg = HPQ__REGISTER__INIT;
	struct hpq_framer f;
	int fd;

	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		_exit(11);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(12);
	hpq_framer_init(&f, HPQ_FRAME_MAX);
	hello.role = HPQ__ROLE__ROLE_AGENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)HPQ_VERSION;
	hello.name = (char *)"node1";
	env.id = 1;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	send_env(fd, &env);
	reply = read_env(fd, &f);
	if (!reply)
		_exit(13);
	if (reply->body_case == HPQ__ENVELOPE__BODY_ERROR)
		_exit(0);
	fprintf(stderr, "uid %u (an [auth] admin) said Hello as the agent of node1: %s\n",
		(unsigned)uid, hpq_msg_name(reply));
	hpq_msg_free(reply);
	reg.name = (char *)"node1";
	env.id = 2;
	env.body_case = HPQ__ENVELOPE__BODY_REGISTER;
	env.register_ = &reg;
	send_env(fd, &env);
	while ((reply = read_env(fd, &f)) && reply->id != 2)
		hpq_msg_free(reply);
	if (reply && reply->body_case == HPQ__ENVELOPE__BODY_REGISTER_REPLY) {
		fprintf(stderr, "... and registered as node1, dropping its agent\n");
		_exit(20);
	}
	_exit(21);
}

/* docs/security.md: "An agent on the Unix socket must run as root or as
 * hpqd's user": an [auth] admins user is neither. */
static void admin_is_no_agent(void **state)
{
	struct h_cluster *c = *state;
	const struct passwd *pw = getpwnam("nobody");
	pid_t pid;
	int st;

	if (!pw)
		skip();
	struct passwd nobody = *pw;

	h_daemon_config(c, "[auth]\nadmins = nobody\n");
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 4, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));
	h_cli_as(c, nobody.pw_uid, nobody.pw_gid);   /* the test's dir, traversable */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		node_impostor(c, nobody.pw_uid, nobody.pw_gid);
	st = h_wait_child(c, pid, 30000);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("an [auth] admins user became an agent on the Unix socket (status %d)",
			 WIFEXITED(st) ? WEXITSTATUS(st) : st);
	h_cli_as(c, 0, 0);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(identity, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(admin_is_no_agent, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
