/*
 * t_task_rights: a task never has more than its owner's rights, and its
 * output reaches only its owner. The test runs as root and makes two
 * users, hpqt-tra and hpqt-trb, and a group hpqt-trg that only the first
 * is in (removed at the end; leftovers of an earlier run are replaced).
 *
 * - A task runs with its user's supplementary groups (`id -G`).
 * - hpqd refuses a submit as root unless [auth] allow_root_tasks; an agent
 *   refuses a root RunTask unless --allow-root-tasks, even when hpqd
 *   allows it, and the task fails with the reason root-refused.
 * - A checkpoint directory that is a link to /etc, or into another user's
 *   directory, is refused (unsafe-checkpoint-dir, the why in the task's
 *   log); a missing one is created as the user.
 * - hpqd on a new state directory hands out task ids again: the new
 *   task 1 gets a log file of its own on the same agent, and `hpq logs`
 *   shows neither user the other's output.
 */
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define USER_A "hpqt-tra"
#define USER_B "hpqt-trb"
#define GROUP "hpqt-trg"

struct user {
	uid_t uid;
	gid_t gid;
};

static struct user ua, ub;
static gid_t group_gid;

static void sh(const char *cmd)
{
	if (system(cmd) != 0)
		fail_msg("'%s' failed", cmd);
}

static void remove_users(void)
{
	/* Leftovers of an earlier run may or may not be there. */
	if (system("userdel " USER_A " 2>/dev/null; userdel " USER_B " 2>/dev/null; "
		   "groupdel " GROUP " 2>/dev/null; groupdel " USER_A " 2>/dev/null; "
		   "groupdel " USER_B " 2>/dev/null; true") != 0)
		fprintf(stderr, "t_task_rights: could not remove the test users\n");
}

static int make_users(void **state)
{
	const struct passwd *pw;
	const struct group *gr;

	remove_users();
	sh("groupadd " GROUP " && useradd -M -U -s /bin/sh -G " GROUP " " USER_A
	   " && useradd -M -U -s /bin/sh " USER_B);
	pw = getpwnam(USER_A);
	assert_non_null(pw);
	ua = (struct user){pw->pw_uid, pw->pw_gid};
	pw = getpwnam(USER_B);
	assert_non_null(pw);
	ub = (struct user){pw->pw_uid, pw->pw_gid};
	gr = getgrnam(GROUP);
	assert_non_null(gr);
	group_gid = gr->gr_gid;
	return 0;
}

static int drop_users(void **state)
{
	remove_users();
	return 0;
}

static void as(struct h_cluster *c, const struct user *u)
{
	h_cli_as(c, u ? u->uid : 0, u ? u->gid : 0);
}

static void start(struct h_cluster *c)
{
	h_daemon_start(c);
	h_agent_start(c, "node1", 0, 4, "2G");
	assert_true(h_wait_nodes(c, 1, 30000));
}

/* `hpq logs ID` as whoever the CLI runs as now; returns its output. */
static char *logs_of(struct h_cluster *c, uint64_t id)
{
	char ids[32];
	struct h_out o;
	char *out;

	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	if (h_hpq(c, &o, "logs", ids, NULL) != 0)
		fail_msg("hpq logs %s: %s", ids, o.err);
	out = strdup(o.out);
	h_out_free(&o);
	return out;
}

static void assert_reason(struct h_cluster *c, uint64_t id, const char *word)
{
	json_t *t = h_task(c, id);

	assert_non_null(t);
	if (!strstr(h_str(t, "reason"), word))
		fail_msg("task %" PRIu64 " ended with reason '%s', not %s", id, h_str(t, "reason"),
			 word);
	json_decref(t);
}

static void supplementary_groups(void **state)
{
	struct h_cluster *c = *state;
	char want[32], *log, *line;
	uint64_t id;

	start(c);
	as(c, &ua);
	id = h_submit(c, "--", "sh", "-c", "echo \"groups: $(id -G)\"", NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	log = logs_of(c, id);
	line = strstr(log, "\ngroups: "); /* the output, not the header's command */
	assert_non_null(line);
	line++;
	line[strcspn(line, "\n")] = '\0';
	snprintf(want, sizeof(want), " %u", (unsigned)group_gid);
	if (!strstr(line, want))
		fail_msg("the task's groups '%s' lack %s's gid %u", line, GROUP,
			 (unsigned)group_gid);
	free(log);
	h_pass(c);
}

static void root_refused_by_hpqd(void **state)
{
	struct h_cluster *c = *state;
	struct h_out o;
	json_t *tasks;

	h_root_tasks(c, false, true);
	start(c);
	assert_int_equal(h_hpq(c, &o, "submit", "--", "true", NULL), 1);
	if (!strstr(o.err, "may not run as root"))
		fail_msg("the refusal does not say why: %s", o.err);
	h_out_free(&o);
	tasks = h_tasks(c);
	assert_int_equal(json_array_size(tasks), 0);
	json_decref(tasks);

	/* Everyone else submits as before. */
	as(c, &ua);
	assert_true(h_wait_state(c, h_submit(c, "--", "true", NULL), "COMPLETED", 30000));
	h_pass(c);
}

static void root_refused_by_agent(void **state)
{
	struct h_cluster *c = *state;
	uint64_t id;
	char *log;

	h_root_tasks(c, true, false);
	start(c);
	id = h_submit(c, "--", "sh", "-c", "echo ran-as-root", NULL);
	assert_true(h_wait_state(c, id, "FAILED", 30000));
	assert_reason(c, id, "root-refused");
	log = logs_of(c, id);
	assert_non_null(strstr(log, "would run as root"));
	assert_null(strstr(log, "ran-as-root"));
	free(log);

	as(c, &ua);
	assert_true(h_wait_state(c, h_submit(c, "--", "true", NULL), "COMPLETED", 30000));
	h_pass(c);
}

static void checkpoint_dir_links(void **state)
{
	struct h_cluster *c = *state;
	char a[128], b[128], to_etc[160], to_b[160], fresh[160], *log;
	uint64_t id;
	struct stat st;

	start(c);
	as(c, &ua); /* makes the test's dir traversable */
	snprintf(a, sizeof(a), "%s", h_path(c, "home-a"));
	snprintf(b, sizeof(b), "%s", h_path(c, "home-b"));
	assert_int_equal(mkdir(a, 0755), 0);
	assert_int_equal(chown(a, ua.uid, ua.gid), 0);
	assert_int_equal(mkdir(b, 0755), 0);
	assert_int_equal(chown(b, ub.uid, ub.gid), 0);
	/* B's directory that anyone may write to: A's task must not be led into it. */
	assert_int_equal(mkdir(h_path(c, "home-b/drop"), 0777), 0);
	assert_int_equal(chmod(h_path(c, "home-b/drop"), 0777), 0);
	snprintf(to_etc, sizeof(to_etc), "%s/ckpt-etc", a);
	snprintf(to_b, sizeof(to_b), "%s/ckpt-b", a);
	snprintf(fresh, sizeof(fresh), "%s/ckpt/run1", a);
	assert_int_equal(symlink("/etc", to_etc), 0);
	assert_int_equal(lchown(to_etc, ua.uid, ua.gid), 0);
	assert_int_equal(symlink(h_path(c, "home-b/drop"), to_b), 0);
	assert_int_equal(lchown(to_b, ua.uid, ua.gid), 0);

	id = h_submit(c, "--checkpoint-dir", to_etc, "--", "sh", "-c",
		      "touch \"$HPQ_CHECKPOINT_DIR/hpqt-ckpt\"", NULL);
	assert_true(h_wait_state(c, id, "FAILED", 30000));
	assert_reason(c, id, "unsafe-checkpoint-dir");
	log = logs_of(c, id);
	assert_non_null(strstr(log, "'/etc' belongs to uid 0"));
	free(log);
	assert_int_equal(lstat("/etc/hpqt-ckpt", &st), -1);

	id = h_submit(c, "--checkpoint-dir", to_b, "--", "sh", "-c",
		      "touch \"$HPQ_CHECKPOINT_DIR/from-a\"", NULL);
	assert_true(h_wait_state(c, id, "FAILED", 30000));
	assert_reason(c, id, "unsafe-checkpoint-dir");
	log = logs_of(c, id);
	if (!strstr(log, "home-b' belongs to uid"))
		fail_msg("the log does not say that B's directory is B's: %s", log);
	free(log);
	assert_int_equal(lstat(h_path(c, "home-b/drop/from-a"), &st), -1);

	/* A directory of its own is created for it, as its user. */
	id = h_submit(c, "--checkpoint-dir", fresh, "--", "sh", "-c",
		      "touch \"$HPQ_CHECKPOINT_DIR/step-1\"", NULL);
	assert_true(h_wait_state(c, id, "COMPLETED", 30000));
	assert_int_equal(stat(fresh, &st), 0);
	assert_int_equal(st.st_uid, ua.uid);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(h_path(c, "home-a/ckpt/run1/step-1"), &st), 0);
	h_pass(c);
}

/* The file the agent keeps for attempt 1 of task 1 under a cluster id. */
static char *agent_log(struct h_cluster *c, const char *cluster)
{
	return h_read_file(h_path(c, "node1/logs/%s/1.1.log", cluster));
}

static void new_database_new_logs(void **state)
{
	struct h_cluster *c = *state;
	char *old_cluster, *new_cluster, *log;
	uint64_t first, again;

	start(c);
	as(c, &ua);
	first = h_submit(c, "--", "sh", "-c", "echo secret-of-a", NULL);
	assert_true(h_wait_state(c, first, "COMPLETED", 30000));
	old_cluster = h_read_file(h_path(c, "cluster-id"));
	assert_non_null(old_cluster);
	old_cluster[strcspn(old_cluster, "\n")] = '\0';

	/* A new database in the same place: task ids start again at 1. The
	 * agent, with its work directory, stays. */
	as(c, NULL);
	h_daemon_stop(c, SIGTERM);
	assert_int_equal(unlink(h_path(c, "hpq.db")), 0);
	unlink(h_path(c, "hpq.db-wal"));
	unlink(h_path(c, "hpq.db-shm"));
	assert_int_equal(unlink(h_path(c, "cluster-id")), 0);
	h_daemon_start(c);
	assert_true(h_wait_nodes(c, 1, 30000));
	new_cluster = h_read_file(h_path(c, "cluster-id"));
	assert_non_null(new_cluster);
	new_cluster[strcspn(new_cluster, "\n")] = '\0';
	assert_string_not_equal(old_cluster, new_cluster);

	as(c, &ub);
	again = h_submit(c, "--", "sh", "-c", "echo output-of-b", NULL);
	assert_int_equal(again, first);
	assert_true(h_wait_state(c, again, "COMPLETED", 30000));
	log = logs_of(c, again);
	assert_non_null(strstr(log, "output-of-b"));
	assert_null(strstr(log, "secret-of-a"));
	free(log);

	/* On the node: A's file untouched, B's a new one. */
	log = agent_log(c, old_cluster);
	assert_non_null(log);
	assert_non_null(strstr(log, "secret-of-a"));
	assert_null(strstr(log, "output-of-b"));
	free(log);
	log = agent_log(c, new_cluster);
	assert_non_null(log);
	assert_null(strstr(log, "secret-of-a"));
	free(log);

	/* A cannot read B's task 1 either. */
	as(c, &ua);
	{
		struct h_out o;

		assert_int_equal(h_hpq(c, &o, "logs", "1", NULL), 1);
		h_out_free(&o);
	}
	free(old_cluster);
	free(new_cluster);
	h_pass(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(supplementary_groups, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(root_refused_by_hpqd, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(root_refused_by_agent, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(checkpoint_dir_links, h_setup, h_teardown),
		cmocka_unit_test_setup_teardown(new_database_new_logs, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, make_users, drop_users);
}
