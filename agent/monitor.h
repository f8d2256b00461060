/*
 * monitor.h: the health monitors and the table they are registered in.
 * Each monitor lives in agent/monitor-NAME.c and exports one struct
 * monitor; health_builtin lists the ones the agent runs (health.c).
 *
 * A monitor reports through the source health_init gives it (health.h):
 * health_see() for each problem, then health_done() to close its round,
 * at once or from a callback later. It never blocks the loop: anything
 * that can hang (a program, a filesystem) runs in a probe (probe.h).
 *
 * Below each monitor are the parts of it that tests drive directly: the
 * checks that turn what was observed into findings, separate from the
 * observing.
 */
#ifndef HPQ_AGENT_MONITOR_H
#define HPQ_AGENT_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include "health.h"

struct monitor {
	const char *name;
	/* Returns 0 with its state, 1 when there is nothing to watch on this
	 * node (the monitor stays out), or a negative code (logged; it stays out). */
	int (*init)(struct health *h, struct health_source *src, void **ret_state);
	/* One round: report through src now or later. */
	void (*run)(void *state);
	/* Stops everything it runs and frees state. */
	void (*release)(void *state);
};

/* NULL-terminated: every built-in monitor, in the order they run. */
extern const struct monitor *const health_builtin[];

/* ------------------------------------------------------ monitor-gpu.c */

/*
 * GPUs through nvidia-smi, when it is in PATH: the number of GPUs it
 * lists against the number the node offers, uncorrected (double-bit) ECC
 * errors, a GPU that has fallen off the bus, and nvidia-smi failing or
 * hanging. Category accelerator.
 */
extern const struct monitor monitor_gpu;

/* The query it runs, one line per GPU: "index, bus id, uncorrected ECC count". */
#define MONITOR_GPU_QUERY "--query-gpu=index,pci.bus_id,ecc.errors.uncorrected.volatile.total"

/* Findings from one nvidia-smi run (status: its wait status). */
void monitor_gpu_check(struct health_source *src, uint32_t expected, bool timed_out, int status,
		       const char *output);

/* ------------------------------------------------------ monitor-kmsg.c */

/*
 * The kernel log (/dev/kmsg, read from its end without blocking; dmesg
 * when /dev/kmsg cannot be read): NVIDIA XID errors (xid.h), a GPU that
 * has fallen off the bus, soft and hard lockups, hung tasks, kernel BUGs
 * and oopses, fork failures and OOM kills. A message that calls for a
 * reboot keeps its finding until the agent restarts; the others hold for
 * MONITOR_KMSG_HOLD_S after the last such message.
 */
extern const struct monitor monitor_kmsg;

#define MONITOR_KMSG_HOLD_S 600.0

struct kmsg_scan;

struct kmsg_scan *monitor_kmsg_scan_new(void);
void monitor_kmsg_scan_free(struct kmsg_scan *ks);
/* One line of the kernel log: a /dev/kmsg record ("6,812,5093431,-;text"),
 * a dmesg line ("[ 5.093431] text") or bare text. Lines starting with a
 * blank (a record's key=value continuation) are ignored. now: monotonic s. */
void monitor_kmsg_scan_line(struct kmsg_scan *ks, const char *line, double now);
/* Sees every finding the lines scanned so far still hold at time now (no health_done). */
void monitor_kmsg_scan_report(const struct kmsg_scan *ks, struct health_source *src, double now);

/* ------------------------------------------------------ monitor-disk.c */

/*
 * Free space and free inodes of the node's filesystems: the work
 * directory's and those of the administrator's --health-disk paths.
 * statvfs runs in a forked probe: a hung network filesystem is reported
 * (disk-unresponsive), it does not freeze the agent. Category storage.
 *
 * The checkpoint directories of the tasks running here are a user's
 * choice, so they never count for the node: they are measured apart, as
 * each task's user, and a problem is handed to health_config.task_warning
 * for that task alone, once per change of it (reasons below).
 */
extern const struct monitor monitor_disk;

/* Findings for one path (no health_done): disk-space-low, disk-inodes-low. */
void monitor_disk_check(struct health_source *src, const char *path, const struct statvfs *st,
			unsigned warning, unsigned fatal);

/* The paths whose filesystems are the node's health: the work directory,
 * then cfg->disks, each once, at most max; never a task's. Returns how many. */
size_t monitor_disk_node_paths(const struct health_config *cfg, const char **ret, size_t max);

/*
 * A task's checkpoint directory as its user sees it: statvfs's figures,
 * or err (its errno) when that failed, and write_err (access W_OK's
 * errno; 0: writable). Returns NULL when all is well, else the reason,
 * with the message in msg: checkpoint-dir-error (err), -readonly, -full
 * (no space or inodes left, or below fatal percent), -unwritable, -low
 * (below warning percent). The monitor adds checkpoint-dir-unresponsive
 * (statvfs hangs).
 */
const char *monitor_disk_task_check(const char *path, const struct statvfs *st, int err,
				    int write_err, unsigned warning, unsigned fatal, char *msg,
				    size_t len);
/* For tests: does a probe of the disk monitor (its state) still run? */
bool monitor_disk_busy(const void *state);

/* ------------------------------------------------------ monitor-mem.c */

/*
 * Memory pressure: "some avg10" of /proc/pressure/memory (the share of
 * the last 10 s in which some task waited for memory), or, without PSI,
 * MemAvailable below MONITOR_MEM_AVAILABLE_MIN percent of MemTotal.
 * A warning (memory-pressure): the remedy is in the tasks, not the node.
 * Category kernel.
 */
extern const struct monitor monitor_mem;

#define MONITOR_MEM_AVAILABLE_MIN 5

/* "some avg10=12.34 ..." -> 12.34. Returns 0 or HPQ_EINVAL. */
int monitor_mem_parse_psi(const char *text, double *ret_some_avg10);
/* MemAvailable and MemTotal of /proc/meminfo, in KiB. Returns 0 or HPQ_EINVAL. */
int monitor_mem_parse_meminfo(const char *text, uint64_t *ret_available, uint64_t *ret_total);
/* Findings (no health_done) from the PSI text (NULL: no PSI) or else meminfo. */
void monitor_mem_check(struct health_source *src, const char *psi, const char *meminfo,
		       unsigned pressure);

/* ------------------------------------------------------ monitor-clock.c */

/*
 * The agent's clock against hpqd's, measured when the node registers
 * (RegisterReply.daemon_time, uplink.h) and carried forward on the
 * monotonic clock, so a clock that jumps later is seen too. The offset
 * counts only beyond the measurement's own uncertainty (half the round
 * trip). Category runtime, reason clock-offset.
 */
extern const struct monitor monitor_clock;

void monitor_clock_check(struct health_source *src, int64_t offset_ms, int64_t err_ms,
			 double warning, double fatal);

/* ------------------------------------------------------ monitor-netif.c */

/*
 * The network interface the connection to hpqd uses (the one holding
 * its local address) must be up and running; while disconnected, the
 * interface used last is checked. Category network.
 */
extern const struct monitor monitor_netif;

/* The interface holding fd's local address: its name and flags
 * (IFF_*). Returns 0, -errno, or HPQ_ENOTFOUND. */
int monitor_netif_of_socket(int fd, char *ret_name, size_t len, unsigned *ret_flags);
/* The flags of the interface called name. Returns 0 or HPQ_ENOTFOUND. */
int monitor_netif_flags(const char *name, unsigned *ret_flags);
/* Findings for interface name with flags (found: it exists). */
void monitor_netif_check(struct health_source *src, const char *name, bool found,
			 unsigned flags);

/* ------------------------------------------------------ monitor-script.c */

/*
 * Admin health scripts: every executable in the health directory runs
 * each round, at most one run of a script at a time, killed after the
 * health timeout. Exit 0 is healthy, 1 a warning, 2 fatal. The first line
 * of stdout is the reason, which names the problem and should not change
 * from run to run (it is what is counted), optionally after a category
 * ("accelerator: gpu-too-hot"; else runtime); the second line, if any, is
 * the message. A script that hangs is killed and reported
 * (health-script-timeout); one that exits otherwise, or cannot run, is
 * reported as health-script-error. Files that are hidden or end in '~' or
 * a package manager's suffix are skipped; files and directories that
 * others than root and the agent's user could change are not run
 * (health-script-unsafe).
 */
extern const struct monitor monitor_script;

/* Findings (no health_done) for one finished run of script name. */
void monitor_script_result(struct health_source *src, const char *name, bool timed_out,
			   double timeout, int status, const char *output);

/* ------------------------------------------------------ monitor-inject.c */

/*
 * Test-only: findings from a file, one per line, "category reason
 * severity [action=reboot|replace] message...", while the line is there.
 * The file is read every round and as soon as it changes (ev_stat); a
 * missing file is no findings, a bad line a warning (agent,
 * health-inject-invalid). This is how integration tests make a node
 * unhealthy; the daemon treats these findings like any other.
 */
extern const struct monitor monitor_inject;

/* Findings (no health_done) from the contents of the file at path. */
void monitor_inject_apply(struct health_source *src, const char *path, const char *text);

#endif
