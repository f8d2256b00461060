/*
 * test_agent_journal.c: the agent's journal must give back exactly what
 * was saved, survive a crash in the middle of a save (the old journal
 * stays whole; a left-over temporary file is ignored), and refuse a
 * damaged file as a whole instead of adopting half of it.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "journal.h"
#include "task.h"
#include "xalloc.h"

struct fixture {
	char dir[64];
	char path[128];
	char tmp[160];
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/test_agent_journal.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, JOURNAL_FILE);
	snprintf(f->tmp, sizeof(f->tmp), "%s.tmp", f->path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	unlink(f->tmp);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static char *read_text(const char *path)
{
	static char buf[8192];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

/* Three records that between them use every field. */
static void sample(struct dlist *l)
{
	struct task *running = task_new(42, 1, "train"), *stopping = task_new(43, 2, NULL),
		    *exited = task_new(18446744073709551615ull, 4294967295u, NULL);

	running->pid = 12345;
	running->proc_start = 987654321;
	running->sup_pid = 12344;         /* its supervisor; the others have none */
	running->sup_start = 987654320;
	running->uid = 1000;
	running->gid = 100;
	running->start_ms = 1700000000123;
	running->time_limit_s = 3600;
	running->stop_signal = 15;
	running->grace_s = 30;
	running->gpus = xreallocarray(NULL, 2, sizeof(uint32_t));
	running->gpus[0] = 0;
	running->gpus[1] = 3;
	running->ngpus = 2;

	stopping->pid = 2222;
	stopping->proc_start = 5;
	stopping->start_ms = 1;
	stopping->stop_signal = 10;
	stopping->grace_s = 1;
	task_set_reason(stopping->kill_reason, "preempted");
	stopping->kill_deadline_ms = 1700000099000;

	exited->exited = true;
	exited->exit_code = -1;
	exited->stop_signal = 15;
	exited->end_ms = 1700000100000;
	task_set_reason(exited->reason, "lost");
	exited->oom = true;               /* what its cgroup saw */
	exited->peak_mem = 18446744073709551615ull;
	exited->cpu_usec = 2503716;

	dlist_add_tail(l, &running->entry);
	dlist_add_tail(l, &stopping->entry);
	dlist_add_tail(l, &exited->entry);
}

static void assert_same_task(const struct task *a, const struct task *b)
{
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->attempt, b->attempt);
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(a->proc_start, b->proc_start);
	assert_int_equal(a->sup_pid, b->sup_pid);
	assert_int_equal(a->sup_start, b->sup_start);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_int_equal(a->start_ms, b->start_ms);
	assert_int_equal(a->time_limit_s, b->time_limit_s);
	assert_int_equal(a->stop_signal, b->stop_signal);
	assert_int_equal(a->grace_s, b->grace_s);
	assert_int_equal(a->ngpus, b->ngpus);
	for (uint32_t i = 0; i < a->ngpus; i++)
		assert_int_equal(a->gpus[i], b->gpus[i]);
	assert_string_equal(a->kill_reason, b->kill_reason);
	assert_int_equal(a->kill_deadline_ms, b->kill_deadline_ms);
	assert_int_equal(a->exited, b->exited);
	assert_int_equal(a->exit_code, b->exit_code);
	assert_int_equal(a->end_ms, b->end_ms);
	assert_string_equal(a->reason, b->reason);
	assert_int_equal(a->oom, b->oom);
	assert_int_equal(a->peak_mem, b->peak_mem);
	assert_int_equal(a->cpu_usec, b->cpu_usec);
}

static void round_trip(void **state)
{
	struct fixture *f = *state;
	struct dlist saved = DLIST_INIT(saved);
	struct dlist loaded = DLIST_INIT(loaded);
	struct task *a, *b;

	sample(&saved);
	assert_int_equal(journal_save(f->path, &saved), 0);
	assert_int_equal(access(f->tmp, F_OK), -1); /* nothing left behind */
	assert_int_equal(journal_load(f->path, &loaded, NULL, 0), 0);
	assert_int_equal(task_list_count(&loaded), 3);
	b = dlist_first_entry(&loaded, struct task, entry);
	dlist_for_each_entry(a, &saved, entry) {
		assert_same_task(a, b);
		b = dlist_next_entry(b, entry);
	}

	/* Saving what was loaded gives the same bytes. */
	{
		char first[8192];

		strcpy(first, read_text(f->path));
		assert_int_equal(journal_save(f->path, &loaded), 0);
		assert_string_equal(read_text(f->path), first);
	}
	task_list_release(&saved);
	task_list_release(&loaded);
}

static void missing_is_empty_and_empty_list_saves(void **state)
{
	struct fixture *f = *state;
	struct dlist l = DLIST_INIT(l);

	assert_int_equal(journal_load(f->path, &l, NULL, 0), 0);
	assert_true(dlist_empty(&l));
	assert_int_equal(journal_save(f->path, &l), 0);
	assert_int_equal(journal_load(f->path, &l, NULL, 0), 0);
	assert_true(dlist_empty(&l));
}

/* A node may have as many GPUs as the agent's config allows (gpus, at
 * most 4096: agent/config.c), and one task may hold them all: the next
 * agent must read that record back. */
static void all_gpus_of_the_largest_node(void **state)
{
	struct fixture *f = *state;
	struct dlist saved = DLIST_INIT(saved);
	struct dlist loaded = DLIST_INIT(loaded);
	struct task *t = task_new(7, 1, "big");

	t->ngpus = 4096;
	t->gpus = xcalloc(t->ngpus, sizeof(*t->gpus));
	for (uint32_t i = 0; i < t->ngpus; i++)
		t->gpus[i] = i;
	t->uid = 4294967294u;
	t->stop_signal = 15;
	t->grace_s = 30;
	t->pid = 1234;
	t->start_ms = 1700000000000;
	dlist_add_tail(&saved, &t->entry);
	assert_int_equal(journal_save(f->path, &saved), 0);
	assert_int_equal(journal_load(f->path, &loaded, NULL, 0), 0);
	assert_false(dlist_empty(&loaded));
	t = dlist_first_entry(&loaded, struct task, entry);
	assert_int_equal(t->ngpus, 4096);
	assert_int_equal(t->gpus[4095], 4095);
	task_list_release(&saved);
	task_list_release(&loaded);
}

/*
 * A crash during a save can leave the temporary file in any state; the
 * journal itself is only ever replaced by rename. Loading must see the
 * last complete save, and the next save must not trip over the leftover.
 */
static void crash_during_save_keeps_old_journal(void **state)
{
	struct fixture *f = *state;
	struct dlist saved = DLIST_INIT(saved);
	struct dlist loaded = DLIST_INIT(loaded);
	struct task *t;

	sample(&saved);
	assert_int_equal(journal_save(f->path, &saved), 0);
	/* The interrupted save of a newer state: half a line in the temporary file. */
	write_text(f->tmp, "# hpq-agent\nhpq-agent-journal 1\ntask id=99 attempt=1 pid=");
	assert_int_equal(journal_load(f->path, &loaded, NULL, 0), 0);
	assert_int_equal(task_list_count(&loaded), 3);
	assert_null(task_find(&loaded, 99, 1));
	task_list_release(&loaded);

	/* The agent carries on: it acknowledges task 42 and saves again. */
	t = task_find(&saved, 42, 1);
	dlist_del(&t->entry);
	task_free(t);
	assert_int_equal(journal_save(f->path, &saved), 0);
	assert_int_equal(access(f->tmp, F_OK), -1);
	assert_int_equal(journal_load(f->path, &loaded, NULL, 0), 0);
	assert_int_equal(task_list_count(&loaded), 2);
	assert_null(task_find(&loaded, 42, 1));
	task_list_release(&loaded);
	task_list_release(&saved);
}

/* A failed save (here: the temporary file cannot be created) leaves the old journal. */
static void failed_save_keeps_old_journal(void **state)
{
	struct fixture *f = *state;
	struct dlist saved = DLIST_INIT(saved);
	struct dlist loaded = DLIST_INIT(loaded);

	sample(&saved);
	assert_int_equal(journal_save(f->path, &saved), 0);
	/* A directory where the temporary file goes makes open() fail for root too. */
	assert_int_equal(mkdir(f->tmp, 0700), 0);
	task_list_release(&saved);
	assert_true(journal_save(f->path, &saved) < 0);
	assert_int_equal(rmdir(f->tmp), 0);
	assert_int_equal(journal_load(f->path, &loaded, NULL, 0), 0);
	assert_int_equal(task_list_count(&loaded), 3);
	task_list_release(&loaded);
}

static void expect_refused(struct fixture *f, const char *text, const char *why)
{
	struct dlist l = DLIST_INIT(l);
	char err[256] = "";

	write_text(f->path, text);
	assert_int_equal(journal_load(f->path, &l, err, sizeof(err)), HPQ_EINVAL);
	assert_true(dlist_empty(&l)); /* all or nothing */
	if (!strstr(err, why))
		fail_msg("error '%s' does not mention '%s'", err, why);
}

#define GOOD_TASK                                                                          \
	"task id=1 attempt=1 pid=100 pstart=5 uid=0 gid=0 start=1 limit=0 signal=15 grace=30 " \
	"gpus=- kill=- deadline=0 exited=0 code=0 end=0 reason=-\n"

static void damaged_files_refused(void **state)
{
	struct fixture *f = *state;

	expect_refused(f, "", "empty journal");
	expect_refused(f, "# only a comment\n", "empty journal");
	expect_refused(f, "something else 1\n", "not an hpq-agent journal");
	expect_refused(f, "hpq-agent-journal 2\n", "journal version 2");
	expect_refused(f, "hpq-agent-journal 1\n" GOOD_TASK "task id=2 attempt=1 pid=1\n",
		       "line 3: missing");
	expect_refused(f, "hpq-agent-journal 1\n" GOOD_TASK GOOD_TASK, "listed twice");
	expect_refused(f, "hpq-agent-journal 1\nbogus record\n", "line 2: unknown record");
	expect_refused(f, "hpq-agent-journal 1\ntask id=0 attempt=1\n", "invalid id '0'");
	expect_refused(f, "hpq-agent-journal 1\n"
		       "task id=1 attempt=1 pid=100 pstart=5 uid=0 gid=0 start=1 limit=0 signal=99 "
		       "grace=30 gpus=- kill=- deadline=0 exited=0 code=0 end=0 reason=-\n",
		       "invalid signal");
	expect_refused(f, "hpq-agent-journal 1\n"
		       "task id=1 attempt=1 pid=100 pstart=5 uid=0 gid=0 start=1 limit=0 signal=15 "
		       "grace=30 gpus=0,,1 kill=- deadline=0 exited=0 code=0 end=0 reason=-\n",
		       "invalid gpus");
	expect_refused(f, "hpq-agent-journal 1\n"
		       "task id=1 attempt=1 pid=100 pstart=5 uid=0 gid=0 start=1 limit=0 signal=15 "
		       "grace=30 gpus=- kill=rm$-rf deadline=0 exited=0 code=0 end=0 reason=-\n",
		       "invalid kill");
	expect_refused(f, "hpq-agent-journal 1\n"
		       "task id=1 attempt=1 pid=0 pstart=5 uid=0 gid=0 start=1 limit=0 signal=15 "
		       "grace=30 gpus=- kill=- deadline=0 exited=0 code=0 end=0 reason=-\n",
		       "without a pid");
	expect_refused(f, "hpq-agent-journal 1\n"
		       "task id=1 attempt=1 pid=100 pstart=5 uid=0 gid=0 start=1 limit=0 signal=15 "
		       "grace=30 gpus=- kill=- deadline=0 exited=2 code=0 end=0 reason=-\n",
		       "invalid exited");
	expect_refused(f, "hpq-agent-journal 1\n"
		       "task id=1 attempt=1 pid=100 pstart=5 uid=0 gid=0 start=1 limit=0 signal=15 "
		       "grace=30 gpus=- kill=- deadline=0 exited=0 code=0 end=0 reason=- sup=1\n",
		       "invalid sup");
	expect_refused(f, "hpq-agent-journal 1\n"
		       "task id=1 attempt=1 pid=100 pstart=5 uid=0 gid=0 start=1 limit=0 signal=15 "
		       "grace=30 gpus=- kill=- deadline=0 exited=0 code=0 end=0 reason=- oom=yes\n",
		       "invalid oom");
	expect_refused(f, "hpq-agent-journal 1\n"
		       "task id=1 attempt=1 pid=100 pstart=5 uid=0 gid=0 start=1 limit=0 signal=15 "
		       "grace=30 gpus=- kill=- deadline=0 exited=0 code=0 end=0 reason=- peak=-1\n",
		       "invalid peak");
	/* A save cut short (not possible with rename, but a disk can lose blocks). */
	expect_refused(f, "hpq-agent-journal 1\ntask id=1 attempt=1 pid=100 pst", "line 2");
}

static void binary_garbage_refused(void **state)
{
	struct fixture *f = *state;
	struct dlist l = DLIST_INIT(l);
	static const char garbage[] = "hpq-agent-journal 1\n\0\xff\xfe task";
	char err[128];
	int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_int_equal(write(fd, garbage, sizeof(garbage)), (ssize_t)sizeof(garbage));
	close(fd);
	assert_int_equal(journal_load(f->path, &l, err, sizeof(err)), HPQ_EINVAL);
	assert_true(dlist_empty(&l));
}

static void unknown_keys_ignored(void **state)
{
	struct fixture *f = *state;
	struct dlist l = DLIST_INIT(l);

	write_text(f->path, "hpq-agent-journal 1\n\n"
		   "task id=5 attempt=2 pid=100 pstart=5 uid=0 gid=0 start=1 limit=0 signal=15 "
		   "grace=30 gpus=1 kill=- deadline=0 exited=1 code=3 end=9 reason=exit "
		   "cgroup=/sys/fs/cgroup/hpq/5\n");
	assert_int_equal(journal_load(f->path, &l, NULL, 0), 0);
	assert_int_equal(task_list_count(&l), 1);
	assert_int_equal(dlist_first_entry(&l, struct task, entry)->exit_code, 3);
	assert_string_equal(dlist_first_entry(&l, struct task, entry)->reason, "exit");
	task_list_release(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_is_empty_and_empty_list_saves, setup,
						teardown),
		cmocka_unit_test_setup_teardown(crash_during_save_keeps_old_journal, setup,
						teardown),
		cmocka_unit_test_setup_teardown(failed_save_keeps_old_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(damaged_files_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(binary_garbage_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_keys_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(all_gpus_of_the_largest_node, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
