/*
 * t_top: `hpq top` in a real terminal, driven through tmux (a private
 * server on a socket in the test's dir). It must start and show the team
 * table; show a task submitted meanwhile although its refresh timer is an
 * hour (the daemon pushes the event, top fetches again); survive a resize;
 * quit on q with
 * exit status 0; and leave the terminal sane (echo and canonical mode
 * back on), also when it is stopped by SIGTERM instead. Skipped (77) when
 * tmux is not installed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static char tmux_sock[160];

/* Runs tmux with the test's socket; returns its exit status, or -1 when
 * the command does not fit (args come from start_top's 1024-byte buffer). */
static int tmux(const char *args)
{
	char cmd[sizeof(tmux_sock) + 1024 + 64];
	int n;

	n = snprintf(cmd, sizeof(cmd), "tmux -S '%s' %s >/dev/null 2>&1", tmux_sock, args);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	return system(cmd);
}

/* The pane's text (malloc'd). */
static char *capture(struct h_cluster *c)
{
	const char *out = h_path(c, "pane.txt");
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "tmux -S '%s' capture-pane -p -t top > '%s' 2>/dev/null",
		 tmux_sock, out);
	if (system(cmd) != 0)
		return NULL;
	return h_read_file(out);
}

static bool pane_has(struct h_cluster *c, const char *needle)
{
	char *text = capture(c);
	bool ok = text && strstr(text, needle);

	free(text);
	return ok;
}

/* The pid of hpq top: the child of the pane's shell. */
static pid_t top_pid(void)
{
	char cmd[512], line[64] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "pgrep -P \"$(tmux -S '%s' list-panes -t top "
		 "-F '#{pane_pid}')\" -x hpq", tmux_sock);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (!fgets(line, sizeof(line), p))
		line[0] = '\0';
	pclose(p);
	return (pid_t)atoi(line);
}

/* Starts top in a 120x30 window; after it exits, the shell prints its
 * status and the terminal's echo/icanon settings, then waits. */
static void start_top(struct h_cluster *c)
{
	char args[1024];

	snprintf(args, sizeof(args),
		 "new-session -d -s top -x 120 -y 30 \"HPQ_SOCKET='%s' '%s' top --interval 1h; "
		 "echo EXITED \\$?; stty -a | tr ' ;' '\\n\\n' | grep -x -e echo -e icanon "
		 "-e -echo -e -icanon | tr '\\n' ' '; echo; sleep 120\"",
		 c->sock, h_bin("hpq"));
	assert_int_equal(tmux(args), 0);
}

static void top_live(void **state)
{
	struct h_cluster *c = *state;
	char cmd[256], *text;
	uint64_t id;

	if (system("command -v tmux >/dev/null 2>&1") != 0) {
		h_pass(c);
		skip();
	}
	snprintf(tmux_sock, sizeof(tmux_sock), "%s/tmux.sock", c->dir);
	h_daemon_start(c);
	h_agent_start(c, "node1", 4, 4, "4G");
	assert_true(h_wait_nodes(c, 1, 30000));
	assert_int_equal(h_hpq(c, NULL, "team", "add", "vision", "--gpus", "2", NULL), 0);

	start_top(c);
	assert_true(H_WAIT_FOR(c, pane_has(c, "TEAM") && pane_has(c, "vision") &&
				  pane_has(c, "q quit"), 30000));

	/* A submit shows up: the timer is an hour off, so only the event the
	 * daemon pushed can have made top fetch again. */
	id = h_submit(c, "--team", "vision", "--gpus", "1", "--", "sleep", "120", NULL);
	snprintf(cmd, sizeof(cmd), "%llu        vision", (unsigned long long)id);
	assert_true(H_WAIT_FOR(c, pane_has(c, cmd), 30000));

	/* Resize: redrawn to the new width, still running. */
	assert_int_equal(tmux("resize-window -t top -x 90 -y 20"), 0);
	assert_true(H_WAIT_FOR(c, ({
		text = capture(c);
		bool ok = text && strstr(text, "q quit") && !strstr(text, "EXITED");
		/* The key line is cut to the new width. */
		ok = ok && !strstr(text, "space refresh");
		free(text);
		ok;
	}), 30000));
	assert_int_equal(tmux("send-keys -t top w"), 0);
	assert_true(H_WAIT_FOR(c, pane_has(c, "sorted by wait"), 30000));
	assert_int_equal(tmux("send-keys -t top g"), 0);
	assert_true(H_WAIT_FOR(c, pane_has(c, "sorted by gpus"), 30000));

	/* q quits with 0 and the terminal is back to normal. */
	assert_int_equal(tmux("send-keys -t top q"), 0);
	assert_true(H_WAIT_FOR(c, pane_has(c, "EXITED 0"), 30000));
	assert_true(H_WAIT_FOR(c, pane_has(c, "echo icanon") || pane_has(c, "icanon echo"),
			       30000));
	assert_false(pane_has(c, "-echo"));
	tmux("kill-session -t top");

	/* SIGTERM: the same clean exit. */
	start_top(c);
	assert_true(H_WAIT_FOR(c, pane_has(c, "q quit"), 30000));
	assert_true(H_WAIT_FOR(c, top_pid() > 0, 30000));
	assert_int_equal(kill(top_pid(), SIGTERM), 0);
	assert_true(H_WAIT_FOR(c, pane_has(c, "EXITED"), 30000));
	assert_true(H_WAIT_FOR(c, pane_has(c, "echo icanon") || pane_has(c, "icanon echo"),
			       30000));
	assert_false(pane_has(c, "-echo"));
	tmux("kill-server");
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(top_live, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
