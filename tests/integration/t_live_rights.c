/*
 * t_live_rights: a connection that stays open keeps its user's rights only
 * while the user has them (docs/security.md, "Rights"). With a real user
 * and group (useradd/groupadd, names hpqt-live*, removed at the end and
 * before), hpqt-live in [auth] admin_group opens a connection on the Unix
 * socket, as a long-running client (hpq top, a follower of events) does,
 * and lists join tokens, which administrators alone may. Taken out of the
 * group while connected, it is refused on that same connection once the
 * groups cache's 30 s have passed, with the refusal that names the right.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "frame.h"
#include "hpq.h"
#include "msg.h"

#include "harness.h"

#define USER "hpqt-live"
#define GROUP "hpqt-live-adm"

/* The child's outcomes, as its exit status. */
enum { REFUSED = 0, BROKEN = 1, STILL_ADMIN = 2 };

static void sh(const char *cmd)
{
	if (system(cmd) != 0)
		fail_msg("'%s' failed", cmd);
}

static void remove_accounts(void)
{
	if (system("userdel " USER " >/dev/null 2>&1; groupdel " GROUP " >/dev/null 2>&1") < 0)
		fail_msg("cannot run userdel");
}

/* One request on fd, its answer (NULL: closed, or none in 10 s). */
static Hpq__Envelope *call(int fd, struct hpq_framer *f, Hpq__Envelope *env, uint64_t id)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	Hpq__Envelope *reply;
	bool sent;

	env->id = id;
	h_append_frame(&buf, &len, env);
	sent = write(fd, buf, len) == (ssize_t)len;
	free(buf);
	if (!sent)
		return NULL;
	while ((reply = h_next_frame(fd, f, 10000)) && reply->id != id)
		hpq_msg_free(reply);
	return reply;
}

/* Lists join tokens: 1 answered, 0 refused for want of the right, -1 else. */
static int list_tokens(int fd, struct hpq_framer *f, uint64_t id)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__TokenListRequest tl = HPQ__TOKEN_LIST_REQUEST__INIT;
	int r = -1;

	env.body_case = HPQ__ENVELOPE__BODY_TOKEN_LIST;
	env.token_list = &tl;
	reply = call(fd, f, &env, id);
	if (reply && reply->body_case == HPQ__ENVELOPE__BODY_TOKEN_LIST_REPLY)
		r = 1;
	else if (reply && reply->body_case == HPQ__ENVELOPE__BODY_ERROR &&
		 reply->error->code == HPQ_EPERM &&
		 strstr(reply->error->message, "only administrators can list join tokens")) {
		fprintf(stderr, "child: refused: %s\n", reply->error->message);
		r = 0;
	} else
		fprintf(stderr, "child: unexpected %s\n", reply ? hpq_msg_name(reply) : "close");
	hpq_msg_free(reply);
	return r;
}

/*
 * The client, as the user: Hello, one listing as an administrator, 'A' on
 * up; then, once the parent says so on down, a listing a second until one
 * is refused (REFUSED) or 60 s passed (STILL_ADMIN).
 */
static int client(const char *sock, const struct passwd *pw, int up, int down)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	Hpq__Envelope env = HPQ__ENVELOPE__INIT, *reply;
	Hpq__Hello hello = HPQ__HELLO__INIT;
	struct hpq_framer f;
	uint64_t id = 2;
	int64_t end;
	char go;
	int fd;

	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		return BROKEN;
	hpq_framer_init(&f, HPQ_FRAME_MAX);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return BROKEN;
	hello.role = HPQ__ROLE__ROLE_CLIENT;
	hello.protocol_version = HPQ_PROTOCOL_VERSION;
	hello.software_version = (char *)"t_live_rights";
	hello.name = (char *)USER;
	env.body_case = HPQ__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	reply = call(fd, &f, &env, 1);
	if (!reply || reply->body_case != HPQ__ENVELOPE__BODY_HELLO_REPLY ||
	    !reply->hello_reply->admin)
		return BROKEN;
	hpq_msg_free(reply);
	if (list_tokens(fd, &f, id++) != 1 || write(up, "A", 1) != 1 || read(down, &go, 1) != 1)
		return BROKEN;
	end = hpq_mono_ms() + 60000;
	while (hpq_mono_ms() < end) {
		int r = list_tokens(fd, &f, id++);

		if (r == 0)
			return REFUSED;
		if (r < 0)
			return BROKEN;
		poll(NULL, 0, 1000);
	}
	return STILL_ADMIN;
}

static void live_rights(void **state)
{
	struct h_cluster *c = *state;
	const struct passwd *pw;
	int up[2], down[2], status;
	int64_t removed;
	char a;
	pid_t pid;

	remove_accounts();
	sh("groupadd " GROUP " && useradd -M -N -G " GROUP " " USER);
	pw = getpwnam(USER);
	assert_non_null(pw);
	h_cli_as(c, pw->pw_uid, pw->pw_gid); /* opens the test's directory to the user */
	h_cli_as(c, 0, 0);
	h_daemon_config(c, "[auth]\nadmin_group = " GROUP "\n");
	h_daemon_start(c);

	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(client(c->sock, pw, up[1], down[0]));
	close(up[1]);
	close(down[0]);
	if (read(up[0], &a, 1) != 1)
		fail_msg("the client did not get in as an administrator (status %d)",
			 h_wait_child(c, pid, 10000));
	sh("gpasswd -d " USER " " GROUP " >/dev/null");
	removed = hpq_mono_ms();
	assert_int_equal(write(down[1], "g", 1), 1);
	status = h_wait_child(c, pid, 90000);
	fprintf(stderr, "refused %lld ms after leaving the group\n",
		(long long)(hpq_mono_ms() - removed));
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == STILL_ADMIN)
		fail_msg("a connection opened as an administrator stays one 60 s after its user "
			 "left [auth] admin_group");
	assert_int_equal(WEXITSTATUS(status), REFUSED);
	/* Within the groups cache's TTL (30 s) and a second of polling. */
	assert_true(hpq_mono_ms() - removed < 40000);
	close(up[0]);
	close(down[1]);
	remove_accounts();
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(live_rights, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
