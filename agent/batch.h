/*
 * batch.h: what a batch task adds to running a command: the copy of its
 * script, its output and error file patterns, and the SLURM_* and array
 * variables of its environment.
 *
 * Script. RunTask.script is the script as it was at submit. Every attempt
 * writes it afresh to <work_dir>/scripts/<task id>.<attempt>, mode 0700,
 * owned by the task's user, and runs that file with RunTask.argv[1..] as
 * its arguments; a script without a "#!" line runs under /bin/sh. The
 * directory is the agent's (mode 0711: others may reach a file they know
 * the name of, not list or change it), and the file is created there with
 * O_EXCL, so no user can plant or swap it. As under Slurm, whose copies
 * live in its spool directory, $0 in the script is the copy's path; the
 * original path is argv[0] of RunTask (the log header shows it). The copy
 * goes when the agent forgets the attempt.
 *
 * Output patterns. %j the task id, %A the array id (the task id when not
 * in an array), %a the array index (4294967294 when not in an array, as
 * Slurm), %x the task name, %u the user, %N this node's name, %t the node
 * rank, %% a '%'. A number between '%' and the letter pads with zeros to
 * that width (%4a: 0007). Anything else after a '%' is kept as it is (the
 * client and hpqd refuse unknown escapes; the agent only never fails on
 * one). A relative path is relative to the task's working directory.
 */
#ifndef HPQ_AGENT_BATCH_H
#define HPQ_AGENT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hpq.pb-c.h"

#define BATCH_NO_ARRAY_INDEX 4294967294u   /* %a outside an array, as Slurm's NO_VAL */

/* What the escapes of an output pattern stand for. */
struct batch_names {
	uint64_t task_id;
	uint64_t array_id;       /* has_array */
	uint32_t array_index;
	bool has_array;
	const char *name;
	const char *user;
	const char *node;
	uint32_t rank;
};

/* pattern with its escapes expanded (a new string). */
char *batch_expand(const char *pattern, const struct batch_names *names);

/*
 * The variables a batch task gets besides the agent's own (exec.h):
 * HPQ_ARRAY_ID and HPQ_ARRAY_INDEX in an array, and with rt->slurm_env
 * SLURM_JOB_ID, SLURM_JOB_NAME, SLURM_NNODES, SLURM_JOB_NUM_NODES,
 * SLURM_NODEID, SLURM_JOB_NODELIST, SLURM_SUBMIT_DIR, SLURM_GPUS_PER_NODE,
 * SLURM_CPUS_PER_TASK and SLURM_MEM_PER_NODE (when asked for),
 * SLURM_NTASKS_PER_NODE (when set) and the SLURM_ARRAY_* ones in an
 * array. Calls add(arg, "NAME=VALUE") for each, in that order.
 */
void batch_env(const Hpq__RunTask *rt, void (*add)(void *arg, char *entry), void *arg);

/* Whether a submitted variable gives way to the agent's: HPQ_ARRAY_*, and
 * every SLURM_* one when slurm_env (a stale SLURM_JOB_ID from the
 * submitter's own allocation would mislead the task). */
bool batch_env_managed(const char *entry, bool slurm_env);

/*
 * Writes the script's copy for (id, attempt) into dir (created, 0711, if
 * missing; it must be the agent's and writable by it alone), handed to
 * uid:gid when chown. Its path goes into path. Returns 0, or a negative
 * code with why.
 */
int batch_script_write(const char *dir, uint64_t id, uint32_t attempt, const void *body,
		       size_t len, bool chown, uid_t uid, gid_t gid, char *path, size_t pathlen,
		       char *why, size_t whylen);
void batch_script_remove(const char *dir, uint64_t id, uint32_t attempt);

#endif
