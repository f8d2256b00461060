/*
 * journal.h: the agent's durable memory, one small text file in the work
 * directory listing the tasks it runs and the exits the daemon has not
 * acknowledged yet. An agent that restarts reads it to adopt the task
 * processes that still run and to re-send outcomes, so no exit is lost
 * between "the process ended" and "the daemon committed it".
 *
 * The file is rewritten whole on every change, atomically: a temporary
 * file is written and fsync'ed, renamed over the old one, and the
 * directory is fsync'ed. A crash at any point leaves either the old or
 * the new journal, never a mix. It holds one line per task, so it stays
 * tiny and the rewrite costs one fsync.
 *
 * Format (version 1), '#' starts a comment line:
 *
 *	hpq-agent-journal 1
 *	task id=42 attempt=1 pid=1234 pstart=889911 uid=1000 gid=1000
 *	     start=1700000000000 limit=3600 signal=15 grace=30 gpus=0,1
 *	     kill=- deadline=0 exited=0 code=0 end=0 reason=-
 *	     cluster=0123456789abcdef0123456789abcdef sup=1233 sstart=889910
 *	     oom=0 peak=104857600 cpu=5000000
 *
 * (one line per task; "-" is an empty word or an empty GPU list). Unknown
 * keys are ignored so that a newer agent's journal can be read by an older
 * one; every known key must be present and valid, except cluster (the
 * cluster id that names the attempt's log file), which journals written
 * before it existed lack: such a record has no log file to append to;
 * sup and sstart (the task's hpq-supervisor, exec.h; 0: none) are
 * optional too, and so are oom, peak and cpu (what the attempt's cgroup
 * saw, cgroup.h: OOM kill, peak memory in bytes, CPU time in
 * microseconds).
 */
#ifndef HPQ_AGENT_JOURNAL_H
#define HPQ_AGENT_JOURNAL_H

#include <stddef.h>

#include "task.h"

#define JOURNAL_FILE "tasks.journal"

/* Writes every record of tasks to path atomically. Returns 0 or -errno. */
int journal_save(const char *path, const struct dlist *tasks);

/*
 * Reads path into *ret_tasks (which must be empty; records are appended
 * in file order, with no watchers running). A missing file is an empty
 * journal. Returns 0, -errno, or HPQ_EINVAL for a malformed file, in
 * which case err says where (when err is not NULL) and *ret_tasks is left
 * empty.
 */
int journal_load(const char *path, struct dlist *ret_tasks, char *err, size_t errlen);

#endif
