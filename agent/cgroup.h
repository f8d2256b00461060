/*
 * cgroup.h: confining tasks with cgroup v2 under the subtree delegated to
 * the agent.
 *
 * At start the agent finds its own cgroup ("0::/PATH" in /proc/self/cgroup)
 * on the cgroup2 mount (from /proc/self/mountinfo; it need not be
 * /sys/fs/cgroup). That cgroup is the agent's subtree, the one systemd
 * delegates with Delegate=yes; when the agent already sits in a leaf named
 * "agent" (systemd's DelegateSubgroup=agent, or an agent restarted from
 * there), its parent is. The subtree must offer the cpu, memory and pids
 * controllers (cgroup.controllers) and be writable by the agent. Because
 * a cgroup that hands controllers to its children may hold no process
 * itself, the agent moves into the leaf "agent" and then enables the
 * three controllers in the subtree's cgroup.subtree_control.
 *
 * Each attempt of a task gets the child "task-<id>-<attempt>": cpu.max
 * gives it its CPUs' worth of time (cpus x 100 ms per 100 ms), memory.max
 * its memory, memory.swap.max 0 (no swapping around the limit), and
 * pids.max a bound on its processes and threads. The task's process joins
 * it before exec, while still privileged (cgroup_join, in the child).
 * When the attempt ends, the agent reads whether the kernel's OOM killer
 * acted (memory.events oom_kill), the peak memory (memory.peak, kernel
 * 5.19 and later; else the largest memory.current sampled while it ran)
 * and the CPU time (cpu.stat usage_usec), kills whatever is left
 * (cgroup.kill, or each process of cgroup.procs), and removes the cgroup.
 *
 * Where none of this is possible the agent says why once, runs tasks
 * unconfined, and reports it (Register.cgroup_problem).
 *
 * The parsing helpers are pure, for the unit tests.
 */
#ifndef HPQ_AGENT_CGROUP_H
#define HPQ_AGENT_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CGROUP_DEFAULT_PIDS_MAX 4096
#define CGROUP_PROBLEM_MAX 256

enum cgroup_mode {
	CGROUP_AUTO = 0,    /* confine when possible, else say why and go on */
	CGROUP_REQUIRED,    /* refuse to start without confinement */
	CGROUP_OFF,         /* never confine */
};

struct cgroup {
	bool enabled;                       /* tasks are confined */
	char *root;                         /* the delegated subtree's directory; NULL: none */
	uint64_t pids_max;
	char problem[CGROUP_PROBLEM_MAX];   /* why not enabled; "" when enabled */
};

/* What an attempt used, read when it ended. */
struct cgroup_usage {
	bool oom;                           /* memory.events oom_kill > 0 */
	uint64_t peak_mem;                  /* bytes */
	uint64_t cpu_usec;
};

/* "auto", "required", "off" -> mode. Returns 0 or HPQ_EINVAL. */
int cgroup_mode_parse(const char *s, enum cgroup_mode *ret);
const char *cgroup_mode_name(enum cgroup_mode mode);

/*
 * Sets up the subtree as above. Returns 0 with cg->enabled, or with
 * cg->problem saying why tasks are not confined (mode auto or off); with
 * mode required, HPQ_EUNAVAIL and the problem in err instead.
 */
int cgroup_init(struct cgroup *cg, enum cgroup_mode mode, uint64_t pids_max, char *err,
		size_t errlen);
void cgroup_release(struct cgroup *cg);

/* The directory of an attempt's cgroup, into buf. */
void cgroup_task_path(const struct cgroup *cg, uint64_t id, uint32_t attempt, char *buf,
		      size_t len);

/*
 * Creates an attempt's cgroup with its limits (cpus: 0 no CPU limit; mem
 * in MiB, 0 no memory limit). An earlier cgroup of the same name with
 * nothing in it is replaced. Returns 0, or a negative code with why.
 */
int cgroup_task_create(struct cgroup *cg, uint64_t id, uint32_t attempt, uint32_t cpus,
		       uint64_t mem_mib, char *why, size_t whylen);

/* In the task's child before exec: moves the calling process into dir.
 * Async-signal-safe. Returns 0 or -errno. */
int cgroup_join(const char *dir);

/* The largest memory.current seen so far goes into *peak (kernels
 * without memory.peak). */
void cgroup_task_sample(const struct cgroup *cg, uint64_t id, uint32_t attempt, uint64_t *peak);

/*
 * The attempt ended: reads its usage into u (fields it cannot read stay as
 * they are), kills what is left in it and removes it. A cgroup that does
 * not exist (never created, or removed already) leaves u alone.
 */
void cgroup_task_finish(struct cgroup *cg, uint64_t id, uint32_t attempt,
			struct cgroup_usage *u);

/* Removes an attempt's cgroup if it is empty (a later try of the above). */
void cgroup_task_remove(struct cgroup *cg, uint64_t id, uint32_t attempt);

/* ----------------------------------------------------- parts, for tests */

/* The cgroup v2 path ("0::/PATH") of /proc/self/cgroup's text. Returns 0,
 * or HPQ_ENOTFOUND when there is no v2 line. */
int cgroup_parse_self(const char *text, char *path, size_t len);

/*
 * One line of /proc/self/mountinfo: whether it is a cgroup2 mount, and
 * then its mount point (octal escapes undone) and root (the path of the
 * cgroup tree mounted there, "/" usually). Returns 1 for cgroup2, 0 for
 * another file system, HPQ_EINVAL for a line that cannot be read.
 */
int cgroup_parse_mountinfo_line(const char *line, char *mnt, size_t mntlen, char *root,
				size_t rootlen);

/* The value of key in a flat keyed file ("key value" lines: memory.events,
 * cpu.stat). Returns 0, or HPQ_ENOTFOUND. */
int cgroup_parse_keyed(const char *text, const char *key, uint64_t *ret);

/* Whether the space-separated list (cgroup.controllers) names word. */
bool cgroup_list_has(const char *list, const char *word);

#endif
