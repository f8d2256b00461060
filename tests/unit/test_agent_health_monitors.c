/*
 * test_agent_health_monitors.c: the built-in monitors' checks on sample
 * input, and the monitors themselves where that is possible without root
 * or special hardware: the kernel log monitor on a file standing in for
 * /dev/kmsg, the GPU monitor with a fake nvidia-smi first in PATH, the
 * disk monitor's forked statvfs on the test's own directories, and the
 * network monitor on a loopback connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "clock.h"
#include "error.h"
#include "health.h"
#include "monitor.h"
#include "task.h"
#include "xalloc.h"
#include "xid.h"

#define EXIT(n) ((n) << 8) /* a wait status for exit(n) */

struct fixture {
	struct ev_loop *loop;
	struct health h;
	struct health_source *src;  /* for the checks driven by hand */
	char dir[64];
	int changes;
};

static void on_change(struct health *h, void *data)
{
	((struct fixture *)data)->changes++;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct health_config cfg;

	strcpy(f->dir, "/tmp/test_agent_health_monitors.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->loop = ev_default_loop(0);
	health_config_init(&cfg);
	health_init(&f->h, f->loop, &cfg, NULL, on_change, f);
	f->src = health_source_new(&f->h, "test");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	health_release(&f->h);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Replaces the fixture's framework with one running `table` with cfg. */
static void restart_with(struct fixture *f, const struct health_config *cfg,
			 const struct monitor *const *table)
{
	health_release(&f->h);
	health_init(&f->h, f->loop, cfg, table, on_change, f);
	f->src = NULL;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

/* Runs the loop until find(category, reason) is published, or limit seconds. */
static const Hpq__Finding *wait_for(struct fixture *f, const char *category, const char *reason,
				    double limit)
{
	double end = hpq_mono_s() + limit;
	ev_timer tick;
	const Hpq__Finding *x;

	ev_timer_init(&tick, tick_cb, 0.02, 0.02);
	ev_timer_start(f->loop, &tick);
	while (!(x = health_find(&f->h, category, reason)) && hpq_mono_s() < end)
		ev_run(f->loop, EVRUN_ONCE);
	ev_timer_stop(f->loop, &tick);
	return x;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void append_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* ------------------------------------------------------------ XID */

static void xid_lines(void **state)
{
	char dev[48];
	unsigned xid;

	assert_int_equal(xid_parse("NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU "
				   "has fallen off the bus.", &xid, dev, sizeof(dev)), 0);
	assert_int_equal(xid, 79);
	assert_string_equal(dev, "PCI:0000:3b:00");
	assert_int_equal(xid_parse("NVRM: Xid (0000:86:00): 48, An uncorrectable double bit error "
				   "(DBE) has been detected", &xid, dev, sizeof(dev)), 0);
	assert_int_equal(xid, 48);
	assert_string_equal(dev, "0000:86:00");
	assert_int_equal(xid_parse("NVRM: Xid (PCI:0000:07:00): 13", &xid, dev, sizeof(dev)), 0);
	assert_int_equal(xid, 13);
	/* The device is cut, not overflowed. */
	assert_int_equal(xid_parse("NVRM: Xid (PCI:0000:07:00): 13,", &xid, dev, 5), 0);
	assert_string_equal(dev, "PCI:");

	assert_int_equal(xid_parse("NVRM: GPU at PCI:0000:3b:00: GPU has fallen off the bus.",
				   &xid, dev, sizeof(dev)), HPQ_ENOTFOUND);
	assert_int_equal(xid_parse("usb 1-1: new device", &xid, dev, sizeof(dev)), HPQ_ENOTFOUND);
	assert_int_equal(xid_parse("NVRM: Xid (PCI:0000:3b:00): abc", &xid, dev, sizeof(dev)),
			 HPQ_EINVAL);
	assert_int_equal(xid_parse("NVRM: Xid (PCI:0000:3b:00: 79", &xid, dev, sizeof(dev)),
			 HPQ_EINVAL);
	assert_int_equal(xid_parse("NVRM: Xid (): 79,", &xid, dev, sizeof(dev)), HPQ_EINVAL);
	assert_int_equal(xid_parse("NVRM: Xid (PCI:0): 79x", &xid, dev, sizeof(dev)), HPQ_EINVAL);
}

static void xid_table(void **state)
{
	static const struct {
		unsigned xid;
		enum health_severity severity;
		const char *action;
	} want[] = {
		{48, HEALTH_FATAL, "reboot"}, {63, HEALTH_FATAL, "reboot"},
		{64, HEALTH_FATAL, "replace"}, {74, HEALTH_FATAL, "reboot"},
		{79, HEALTH_FATAL, "reboot"}, {92, HEALTH_WARNING, "replace"},
		{94, HEALTH_FATAL, "reboot"}, {95, HEALTH_FATAL, "reboot"},
		{13, HEALTH_INFO, ""}, {31, HEALTH_INFO, ""},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct xid_info *x = xid_lookup(want[i].xid);

		assert_non_null(x);
		assert_int_equal(x->severity, want[i].severity);
		assert_string_equal(x->action, want[i].action);
		assert_true(strlen(x->what) > 0);
	}
	assert_null(xid_lookup(999));
	assert_null(xid_lookup(0));
}

/* ------------------------------------------------------------ kernel log */

static void kmsg_patterns(void **state)
{
	struct fixture *f = *state;
	struct kmsg_scan *ks = monitor_kmsg_scan_new();
	const Hpq__Finding *x;
	static const char *const lines[] = {
		"6,100,200,-;watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [python:1234]",
		"3,101,300,-;INFO: task jbd2/sda1-8:345 blocked for more than 120 seconds.",
		" SUBSYSTEM=block",
		" DEVICE=b8:0",
		"[   12.500000] BUG: unable to handle page fault for address: ffffa0",
		"3,102,400,-;Out of memory: Killed process 4321 (python) total-vm:1024kB",
		"6,103,500,c;Memory cgroup out of memory: Killed process 77 (x) total-vm:8kB",
		"4,104,600,-;cgroup: fork rejected by pids controller in /system.slice/x",
		"bash: fork: retry: Resource temporarily unavailable",
		"4,105,700,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=1, name=p, GPU has fallen off "
		"the bus.",
		"4,106,701,-;NVRM: Xid (PCI:0000:86:00): 79, pid=2, name=p, GPU has fallen off "
		"the bus.",
		"4,107,702,-;NVRM: GPU at PCI:0000:3b:00: GPU has fallen off the bus.",
		"[ 5093.431234] NVRM: Xid (PCI:0000:86:00): 999, pid=1, something new",
		"[ 5093.5] NVRM: Xid (PCI:0000:86:00): 13, Graphics SM Warp Exception",
		"6,108,800,-;usb 1-1: new high-speed USB device number 2",
		"",
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		monitor_kmsg_scan_line(ks, lines[i], 1000.0);
	monitor_kmsg_scan_report(ks, f->src, 1000.0);
	health_done(f->src);

	x = health_find(&f->h, "kernel", "soft-lockup");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_non_null(strstr(x->message, "CPU#3 stuck"));
	assert_string_equal(health_find(&f->h, "kernel", "hung-task")->severity, "warning");
	x = health_find(&f->h, "kernel", "kernel-bug");
	assert_non_null(x);
	assert_string_equal(x->severity, "fatal");
	assert_string_equal(x->action, "reboot");
	assert_non_null(strstr(x->message, "unable to handle page fault"));
	x = health_find(&f->h, "kernel", "oom-kill");
	assert_non_null(x);
	assert_non_null(strstr(x->message, "(2 times)"));
	assert_non_null(strstr(x->message, "Killed process 77"));
	assert_non_null(strstr(health_find(&f->h, "kernel", "fork-failure")->message, "2 times"));
	x = health_find(&f->h, "accelerator", "xid-79");
	assert_non_null(x);
	assert_string_equal(x->severity, "fatal");
	assert_string_equal(x->action, "reboot");
	assert_non_null(strstr(x->message, "XID 79 (GPU has fallen off the bus)"));
	assert_non_null(strstr(x->message, "PCI:0000:3b:00, PCI:0000:86:00"));
	assert_string_equal(health_find(&f->h, "accelerator", "gpu-fallen-off-bus")->severity,
			    "fatal");
	x = health_find(&f->h, "accelerator", "xid-999");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_string_equal(x->action, "");
	assert_non_null(strstr(x->message, "not a well-known XID"));
	assert_string_equal(health_find(&f->h, "accelerator", "xid-13")->severity, "info");
	assert_int_equal(f->h.nfindings, 9);

	/* Later, the transient ones have gone; what needs a reboot stays. */
	monitor_kmsg_scan_report(ks, f->src, 1000.0 + MONITOR_KMSG_HOLD_S - 1);
	health_done(f->src);
	assert_int_equal(f->h.nfindings, 9);
	monitor_kmsg_scan_report(ks, f->src, 1000.0 + MONITOR_KMSG_HOLD_S);
	health_done(f->src);
	assert_null(health_find(&f->h, "kernel", "soft-lockup"));
	assert_null(health_find(&f->h, "kernel", "oom-kill"));
	assert_null(health_find(&f->h, "accelerator", "xid-999"));
	assert_non_null(health_find(&f->h, "kernel", "kernel-bug"));
	assert_non_null(health_find(&f->h, "accelerator", "xid-79"));
	assert_non_null(health_find(&f->h, "accelerator", "gpu-fallen-off-bus"));
	assert_int_equal(f->h.nfindings, 3);
	monitor_kmsg_scan_free(ks);
}

/* The monitor itself, on a file in place of /dev/kmsg: only what comes after start counts. */
static void kmsg_monitor_reads_new_lines(void **state)
{
	static const struct monitor *const table[] = {&monitor_kmsg, NULL};
	struct fixture *f = *state;
	struct health_config cfg;
	char path[128];

	snprintf(path, sizeof(path), "%s/kmsg", f->dir);
	write_file(path, "6,1,1,-;BUG: from before the agent started\n", 0644);
	health_config_init(&cfg);
	cfg.kmsg_path = path;
	restart_with(f, &cfg, table);
	health_run(&f->h);
	assert_int_equal(f->h.nfindings, 0);

	append_file(path, "3,2,2,-;INFO: task x:1 blocked for more than 120 seconds.\n"
			  " SUBSYSTEM=x\n3,3,3,-;NVRM: Xid (PCI:0000:3b:00): 4");
	health_run(&f->h);
	assert_non_null(health_find(&f->h, "kernel", "hung-task"));
	assert_null(health_find(&f->h, "accelerator", "xid-4")); /* not a whole line yet */
	append_file(path, "8, pid=1, name=x, DBE\n");
	health_run(&f->h);
	assert_non_null(health_find(&f->h, "accelerator", "xid-48"));
	assert_non_null(health_find(&f->h, "kernel", "hung-task")); /* held */
	assert_null(health_find(&f->h, "kernel", "kernel-bug"));
	assert_int_equal(f->h.nfindings, 2);
}

/* Starts the kernel log monitor on a kmsg that cannot be opened, with PATH = dir only. */
static void kmsg_start_without_kmsg(struct fixture *f, const char *dir)
{
	static const struct monitor *const table[] = {&monitor_kmsg, NULL};
	const char *old = getenv("PATH");
	char *saved = xstrdup(old ? old : "/usr/bin:/bin");
	struct health_config cfg;
	static char path[128];

	snprintf(path, sizeof(path), "%s/no-such-kmsg", f->dir);
	health_config_init(&cfg);
	cfg.kmsg_path = path;
	cfg.timeout = 5;
	setenv("PATH", dir, 1);
	restart_with(f, &cfg, table);
	setenv("PATH", saved, 1);
	free(saved);
}

static void kmsg_unreadable_is_said(void **state)
{
	struct fixture *f = *state;
	const Hpq__Finding *x;

	kmsg_start_without_kmsg(f, f->dir); /* no dmesg there either */
	health_run(&f->h);
	x = health_find(&f->h, "agent", "kernel-log-unreadable");
	assert_non_null(x);
	assert_string_equal(x->severity, "info");
	assert_non_null(strstr(x->message, "no-such-kmsg"));
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Without /dev/kmsg, dmesg: its first run sets the mark, later runs scan what is newer. */
static void kmsg_falls_back_to_dmesg(void **state)
{
	struct fixture *f = *state;
	char tool[128], ring[128], ran[128], script[512];
	const Hpq__Finding *x = NULL;
	double end;

	snprintf(tool, sizeof(tool), "%s/dmesg", f->dir);
	snprintf(ring, sizeof(ring), "%s/ring", f->dir);
	snprintf(ran, sizeof(ran), "%s/ran", f->dir);
	snprintf(script, sizeof(script), "#!/bin/sh\ncat %s\ntouch %s\n", ring, ran);
	write_file(tool, script, 0755);
	write_file(ring, "[    1.000000] BUG: from before the agent started\n"
			 "[    2.500000] usb 1-1: new device\n", 0644);
	kmsg_start_without_kmsg(f, f->dir);
	health_run(&f->h);
	end = hpq_mono_s() + 10;
	while (!exists(ran) && hpq_mono_s() < end)
		(void)wait_for(f, "agent", "not-reported", 0.05);
	assert_true(exists(ran));

	append_file(ring, "[    2.400000] BUG: older than the mark, a line the ring lost\n"
			  "[   10.000000] INFO: task x:1 blocked for more than 120 seconds.\n");
	end = hpq_mono_s() + 10;
	while (!x && hpq_mono_s() < end) {
		health_run(&f->h); /* a no-op while the previous run is busy */
		x = wait_for(f, "kernel", "hung-task", 0.2);
	}
	assert_non_null(x);
	assert_null(health_find(&f->h, "kernel", "kernel-bug"));
	assert_null(health_find(&f->h, "agent", "kernel-log-unreadable"));

	/* dmesg refused (dmesg_restrict): said, and nothing else is tried. */
	write_file(tool, "#!/bin/sh\necho 'dmesg: read kernel buffer failed: Operation not "
			 "permitted'\nexit 1\n", 0755);
	x = NULL;
	end = hpq_mono_s() + 10;
	while (!x && hpq_mono_s() < end) {
		health_run(&f->h);
		x = wait_for(f, "agent", "kernel-log-unreadable", 0.2);
	}
	assert_non_null(x);
	assert_non_null(strstr(x->message, "Operation not permitted"));
	assert_non_null(health_find(&f->h, "kernel", "hung-task")); /* still held */
}

/* ------------------------------------------------------------ GPUs */

static void gpu_outputs(void **state)
{
	struct fixture *f = *state;
	const Hpq__Finding *x;

	monitor_gpu_check(f->src, 2, false, EXIT(0),
			  "0, 00000000:3B:00.0, 0\n1, 00000000:86:00.0, [N/A]\n");
	health_done(f->src);
	assert_int_equal(f->h.nfindings, 0);

	monitor_gpu_check(f->src, 4, false, EXIT(0),
			  "0, 00000000:3B:00.0, 0\n1, 00000000:86:00.0, 3\n");
	health_done(f->src);
	x = health_find(&f->h, "accelerator", "gpu-missing");
	assert_non_null(x);
	assert_string_equal(x->severity, "fatal");
	assert_string_equal(x->message, "nvidia-smi shows 2 of the 4 GPUs this node offers");
	x = health_find(&f->h, "accelerator", "gpu-ecc-dbe");
	assert_non_null(x);
	assert_string_equal(x->action, "reboot");
	assert_non_null(strstr(x->message, "GPU 1 (00000000:86:00.0): 3"));
	assert_null(strstr(x->message, "GPU 0"));

	/* An error line about a GPU is not a GPU. */
	monitor_gpu_check(f->src, 2, false, EXIT(0),
			  "0, 00000000:3B:00.0, 0\n"
			  "Unable to determine the device handle for GPU 0000:86:00.0: "
			  "Unknown Error\n");
	health_done(f->src);
	assert_non_null(health_find(&f->h, "accelerator", "gpu-missing"));
	assert_null(health_find(&f->h, "accelerator", "gpu-ecc-dbe"));

	monitor_gpu_check(f->src, 2, false, EXIT(15),
			  "Unable to determine the device handle for GPU 0000:3B:00.0: GPU is lost."
			  "  Reboot the system to recover this GPU\n");
	health_done(f->src);
	x = health_find(&f->h, "accelerator", "gpu-fallen-off-bus");
	assert_non_null(x);
	assert_non_null(strstr(x->message, "GPU is lost"));
	assert_int_equal(f->h.nfindings, 1);

	monitor_gpu_check(f->src, 2, false, EXIT(9),
			  "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
			  "driver.\nMake sure that the latest NVIDIA driver is installed.\n");
	health_done(f->src);
	x = health_find(&f->h, "accelerator", "nvidia-smi-failed");
	assert_non_null(x);
	assert_non_null(strstr(x->message, "exited 9: NVIDIA-SMI has failed"));
	assert_int_equal(f->h.nfindings, 1);

	monitor_gpu_check(f->src, 2, true, 0, "");
	health_done(f->src);
	assert_non_null(health_find(&f->h, "accelerator", "nvidia-smi-timeout"));
	assert_int_equal(f->h.nfindings, 1);
}

/* The monitor with a fake nvidia-smi first in PATH: it runs the query and judges the answer. */
static void gpu_monitor_runs_nvidia_smi(void **state)
{
	static const struct monitor *const table[] = {&monitor_gpu, NULL};
	struct fixture *f = *state;
	struct health_config cfg;
	char tool[128], path[4096];
	const char *old = getenv("PATH");
	char *saved = xstrdup(old ? old : "/usr/bin:/bin");
	const Hpq__Finding *x;

	snprintf(tool, sizeof(tool), "%s/nvidia-smi", f->dir);
	write_file(tool, "#!/bin/sh\n"
			 "[ \"$1\" = '" MONITOR_GPU_QUERY "' ] &&"
			 " [ \"$2\" = --format=csv,noheader ] || exit 3\n"
			 "echo '0, 00000000:3B:00.0, 0'\n"
			 "echo '1, 00000000:86:00.0, 2'\n", 0755);
	snprintf(path, sizeof(path), "%s:%s", f->dir, saved);
	setenv("PATH", path, 1);
	health_config_init(&cfg);
	cfg.gpus = 8;
	restart_with(f, &cfg, table);
	setenv("PATH", saved, 1);
	free(saved);

	health_run(&f->h);
	x = wait_for(f, "accelerator", "gpu-missing", 10);
	assert_non_null(x);
	assert_string_equal(x->message, "nvidia-smi shows 2 of the 8 GPUs this node offers");
	assert_non_null(health_find(&f->h, "accelerator", "gpu-ecc-dbe"));
	assert_null(health_find(&f->h, "accelerator", "nvidia-smi-failed"));
}

static void gpu_monitor_off_without_nvidia_smi(void **state)
{
	static const struct monitor *const table[] = {&monitor_gpu, NULL};
	struct fixture *f = *state;
	struct health_config cfg;
	const char *old = getenv("PATH");
	char *saved = xstrdup(old ? old : "/usr/bin:/bin");

	setenv("PATH", f->dir, 1); /* empty: no nvidia-smi */
	health_config_init(&cfg);
	cfg.gpus = 8;
	restart_with(f, &cfg, table);
	setenv("PATH", saved, 1);
	free(saved);
	assert_int_equal(f->h.nmonitors, 0);
}

/* ------------------------------------------------------------ disks */

static struct statvfs fake_vfs(unsigned long blocks, unsigned long bavail, unsigned long files,
			       unsigned long favail)
{
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	sv.f_blocks = blocks;
	sv.f_bavail = bavail;
	sv.f_bfree = bavail;
	sv.f_files = files;
	sv.f_favail = favail;
	sv.f_ffree = favail;
	return sv;
}

static void disk_thresholds(void **state)
{
	struct fixture *f = *state;
	struct statvfs sv;
	const Hpq__Finding *x;

	sv = fake_vfs(1000, 100, 1000, 500);      /* exactly 10% free: fine */
	monitor_disk_check(f->src, "/work", &sv, 10, 2);
	health_done(f->src);
	assert_int_equal(f->h.nfindings, 0);

	sv = fake_vfs(1000, 99, 1000, 500);       /* 9.9% */
	monitor_disk_check(f->src, "/work", &sv, 10, 2);
	health_done(f->src);
	x = health_find(&f->h, "storage", "disk-space-low");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_string_equal(x->message, "/work: 9.9% of its space free (warning below 10%)");

	sv = fake_vfs(1000, 19, 0, 0);            /* 1.9%; no inode count (btrfs) */
	monitor_disk_check(f->src, "/work", &sv, 10, 2);
	sv = fake_vfs(1000, 500, 1000, 5);        /* inodes at 0.5% */
	monitor_disk_check(f->src, "/ckpt", &sv, 10, 2);
	health_done(f->src);
	x = health_find(&f->h, "storage", "disk-space-low");
	assert_string_equal(x->severity, "fatal");
	assert_string_equal(x->message, "/work: 1.9% of its space free (fatal below 2%)");
	x = health_find(&f->h, "storage", "disk-inodes-low");
	assert_non_null(x);
	assert_string_equal(x->severity, "fatal");
	assert_non_null(strstr(x->message, "/ckpt: 0.5% of its inodes free"));

	sv = fake_vfs(1000, 0, 1000, 0);          /* off: 0 thresholds */
	monitor_disk_check(f->src, "/work", &sv, 0, 0);
	sv = fake_vfs(0, 0, 0, 0);                /* a pseudo filesystem */
	monitor_disk_check(f->src, "/proc", &sv, 10, 2);
	health_done(f->src);
	assert_int_equal(f->h.nfindings, 0);
}

/* The node's paths: the work directory and the admin's, once each, never a task's. */
static void disk_node_paths(void **state)
{
	char *disks[] = {"/scratch", "/work", "/bad\tpath", "/scratch", "/data"};
	struct dlist tasks = DLIST_INIT(tasks);
	struct health_config cfg;
	const char *paths[8];
	struct task *t;
	size_t n;

	t = task_new(1, 1, "train");
	t->checkpoint_dir = xstrdup("/home/user/ckpt");
	dlist_add_tail(&tasks, &t->entry);
	health_config_init(&cfg);
	cfg.work_dir = "/work";
	cfg.tasks = &tasks;
	n = monitor_disk_node_paths(&cfg, paths, 8);
	assert_int_equal(n, 1);
	assert_string_equal(paths[0], "/work");

	cfg.disks = disks;
	cfg.ndisks = 5;
	n = monitor_disk_node_paths(&cfg, paths, 8);
	assert_int_equal(n, 3);
	assert_string_equal(paths[0], "/work");
	assert_string_equal(paths[1], "/scratch");
	assert_string_equal(paths[2], "/data");
	assert_int_equal(monitor_disk_node_paths(&cfg, paths, 2), 2); /* at most max */
	task_list_release(&tasks);
}

/* A task's checkpoint directory: the reasons, worst first. */
static void disk_task_checks(void **state)
{
	struct statvfs sv;
	char msg[256];

	sv = fake_vfs(1000, 500, 1000, 500);
	assert_null(monitor_disk_task_check("/c", &sv, 0, 0, 10, 2, msg, sizeof(msg)));
	assert_string_equal(monitor_disk_task_check("/c", &sv, EACCES, 0, 10, 2, msg,
						    sizeof(msg)), "checkpoint-dir-error");
	assert_string_equal(msg, "/c: the task's user cannot measure it: Permission denied");
	assert_string_equal(monitor_disk_task_check("/c", &sv, 0, EACCES, 10, 2, msg,
						    sizeof(msg)), "checkpoint-dir-unwritable");
	sv.f_flag = ST_RDONLY;
	assert_string_equal(monitor_disk_task_check("/c", &sv, 0, EROFS, 10, 2, msg,
						    sizeof(msg)), "checkpoint-dir-readonly");

	sv = fake_vfs(1000, 0, 1000, 500);        /* no space left, even with thresholds off */
	assert_string_equal(monitor_disk_task_check("/c", &sv, 0, 0, 0, 0, msg, sizeof(msg)),
			    "checkpoint-dir-full");
	assert_string_equal(msg, "/c: 0.0% of its space free: checkpoints written there may fail");
	sv = fake_vfs(1000, 500, 1000, 19);       /* inodes below fatal */
	assert_string_equal(monitor_disk_task_check("/c", &sv, 0, EACCES, 10, 2, msg,
						    sizeof(msg)), "checkpoint-dir-full");
	assert_non_null(strstr(msg, "1.9% of its inodes free"));
	sv = fake_vfs(1000, 99, 1000, 500);       /* space below warning */
	assert_string_equal(monitor_disk_task_check("/c", &sv, 0, 0, 10, 2, msg, sizeof(msg)),
			    "checkpoint-dir-low");
	assert_string_equal(msg, "/c: 9.9% of its space free (warning below 10%)");
	assert_null(monitor_disk_task_check("/c", &sv, 0, 0, 0, 2, msg, sizeof(msg)));
	sv = fake_vfs(0, 0, 0, 0);                /* a pseudo filesystem */
	assert_null(monitor_disk_task_check("/c", &sv, 0, 0, 10, 2, msg, sizeof(msg)));
}

/* What the monitor told the owner about tasks (health_config.task_warning). */
struct warnings {
	int n;
	bool refuse;              /* answer "not sent" */
	uint64_t id;
	uint32_t attempt;
	char reason[64];
	char message[HEALTH_MESSAGE_MAX];
};

static bool on_task_warning(void *data, uint64_t task_id, uint32_t attempt, const char *reason,
			    const char *message)
{
	struct warnings *w = data;

	if (w->refuse)
		return false;
	w->n++;
	w->id = task_id;
	w->attempt = attempt;
	snprintf(w->reason, sizeof(w->reason), "%s", reason);
	snprintf(w->message, sizeof(w->message), "%s", message);
	return true;
}

/* Runs rounds (one now, one every 50 ms) until the disk monitor's node
 * probe and task probe have both finished `rounds` more times, or 10 s. */
static void disk_rounds(struct fixture *f, int rounds)
{
	struct health_monitor *m = &f->h.monitors[0];
	double end = hpq_mono_s() + 10;
	ev_timer tick;

	assert_string_equal(m->monitor->name, "disk");
	ev_timer_init(&tick, tick_cb, 0.02, 0.02);
	ev_timer_start(f->loop, &tick);
	for (int i = 0; i < rounds; i++) {
		health_run(&f->h);
		/* Both probes are forked in the round: wait until neither is busy. */
		while (monitor_disk_busy(m->state) && hpq_mono_s() < end)
			ev_run(f->loop, EVRUN_ONCE);
	}
	ev_timer_stop(f->loop, &tick);
	assert_true(hpq_mono_s() < end);
}

/*
 * The monitor: the node's paths are measured as the node's health (the
 * work directory, an admin's path, one that is missing), the running
 * tasks' checkpoint directories (one not made yet) only for their tasks,
 * once per change, and again when the owner could not send it.
 */
static void disk_monitor_measures_paths(void **state)
{
	static const struct monitor *const table[] = {&monitor_disk, NULL};
	struct fixture *f = *state;
	struct dlist tasks = DLIST_INIT(tasks);
	struct warnings w = {0};
	struct health_config cfg;
	char ckpt[160], admin[160], missing[160], *disks[2] = {admin, missing};
	struct task *t, *t1;
	const Hpq__Finding *x;

	t1 = t = task_new(1, 1, "train");
	snprintf(ckpt, sizeof(ckpt), "%s/ckpt/not/made/yet", f->dir);
	t->checkpoint_dir = xstrdup(ckpt);
	t->uid = getuid();
	t->gid = getgid();
	dlist_add_tail(&tasks, &t->entry);
	t = task_new(2, 1, "done");               /* exited: not watched */
	t->checkpoint_dir = xstrdup("/nonexistent-exited");
	t->exited = true;
	dlist_add_tail(&tasks, &t->entry);
	snprintf(admin, sizeof(admin), "%s/scratch", f->dir);
	assert_int_equal(mkdir(admin, 0755), 0);
	snprintf(missing, sizeof(missing), "%s/not-mounted", f->dir);

	health_config_init(&cfg);
	cfg.work_dir = f->dir;
	cfg.disks = disks;
	cfg.ndisks = 2;
	cfg.tasks = &tasks;
	cfg.disk_warning = 100;                   /* any filesystem in use is below */
	cfg.disk_fatal = 0;
	cfg.task_warning = on_task_warning;
	cfg.task_warning_data = &w;
	restart_with(f, &cfg, table);
	disk_rounds(f, 1);
	x = health_find(&f->h, "storage", "disk-space-low");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_non_null(strstr(x->message, f->dir));
	assert_non_null(strstr(x->message, admin));
	assert_null(strstr(x->message, "ckpt"));  /* a task's path is never the node's */
	assert_null(strstr(x->message, "nonexistent-exited"));
	x = health_find(&f->h, "storage", "disk-error");
	assert_non_null(x);                       /* the admin named it: it must be there */
	assert_string_equal(x->severity, "warning");
	assert_non_null(strstr(x->message, missing));
	assert_null(strstr(x->message, "ckpt"));

	/* The task's own: told once, for its attempt, not again while unchanged. */
	assert_int_equal(w.n, 1);
	assert_int_equal(w.id, 1);
	assert_int_equal(w.attempt, 1);
	assert_string_equal(w.reason, "checkpoint-dir-low");
	assert_non_null(strstr(w.message, ckpt));
	disk_rounds(f, 2);
	assert_int_equal(w.n, 1);

	/* Fine again (no warning threshold), then low again: told again. */
	f->h.cfg.disk_warning = 0;
	disk_rounds(f, 1);
	assert_int_equal(w.n, 1);
	f->h.cfg.disk_warning = 100;
	w.refuse = true;                          /* not connected: not counted as told */
	disk_rounds(f, 1);
	assert_int_equal(w.n, 1);
	w.refuse = false;
	disk_rounds(f, 1);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.reason, "checkpoint-dir-low");

	/* As the task's user: root's private directory is not the task's. */
	if (geteuid() == 0) {
		char priv[160];

		snprintf(priv, sizeof(priv), "%s/private", f->dir);
		assert_int_equal(mkdir(priv, 0700), 0);
		free(t1->checkpoint_dir);
		xasprintf(&t1->checkpoint_dir, "%s/ckpt", priv);
		t1->uid = 65534;
		t1->gid = 65534;
		disk_rounds(f, 1);
		assert_int_equal(w.n, 3);
		assert_string_equal(w.reason, "checkpoint-dir-error");
		assert_non_null(strstr(w.message, "Permission denied"));
		assert_null(health_find(&f->h, "storage", "checkpoint-dir-error"));
	}
	health_release(&f->h);
	health_config_init(&cfg);
	health_init(&f->h, f->loop, &cfg, NULL, on_change, f);
	task_list_release(&tasks);
}

/* ------------------------------------------------------------ memory */

static void psi_and_meminfo(void **state)
{
	struct fixture *f = *state;
	const char *psi_busy = "some avg10=35.50 avg60=10.00 avg300=1.00 total=123456\n"
			       "full avg10=5.00 avg60=1.00 avg300=0.10 total=1234\n";
	const char *psi_idle = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
			       "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
	const char *mem_low = "MemTotal:        1000000 kB\nMemFree:           10000 kB\n"
			      "MemAvailable:      30000 kB\nBuffers: 1 kB\n";
	const char *mem_ok = "MemTotal: 1000000 kB\nMemAvailable: 500000 kB\n";
	uint64_t avail, total;
	double some;
	const Hpq__Finding *x;

	assert_int_equal(monitor_mem_parse_psi(psi_busy, &some), 0);
	assert_true(some > 35.49 && some < 35.51);
	assert_int_equal(monitor_mem_parse_psi(psi_idle, &some), 0);
	assert_true(some == 0.0);
	assert_int_equal(monitor_mem_parse_psi("some avg10=abc avg60=0", &some), HPQ_EINVAL);
	assert_int_equal(monitor_mem_parse_psi("full avg10=1.00\n", &some), HPQ_EINVAL);
	assert_int_equal(monitor_mem_parse_psi("", &some), HPQ_EINVAL);
	assert_int_equal(monitor_mem_parse_meminfo(mem_low, &avail, &total), 0);
	assert_int_equal(avail, 30000);
	assert_int_equal(total, 1000000);
	assert_int_equal(monitor_mem_parse_meminfo("MemTotal: 10 kB\n", &avail, &total),
			 HPQ_EINVAL);

	monitor_mem_check(f->src, psi_busy, mem_ok, 20);
	health_done(f->src);
	x = health_find(&f->h, "kernel", "memory-pressure");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_non_null(strstr(x->message, "36% of the last 10 s"));

	monitor_mem_check(f->src, psi_busy, mem_low, 50);  /* below the threshold */
	health_done(f->src);
	assert_int_equal(f->h.nfindings, 0);
	monitor_mem_check(f->src, psi_idle, mem_low, 20);  /* PSI wins over MemAvailable */
	health_done(f->src);
	assert_int_equal(f->h.nfindings, 0);

	monitor_mem_check(f->src, NULL, mem_low, 20);      /* no PSI: 3% available */
	health_done(f->src);
	x = health_find(&f->h, "kernel", "memory-pressure");
	assert_non_null(x);
	assert_non_null(strstr(x->message, "3.0% of memory available"));
	monitor_mem_check(f->src, "garbage", mem_ok, 20);
	health_done(f->src);
	assert_int_equal(f->h.nfindings, 0);
}

static void mem_monitor_reads_files(void **state)
{
	static const struct monitor *const table[] = {&monitor_mem, NULL};
	struct fixture *f = *state;
	struct health_config cfg;
	char psi[128], meminfo[128];

	snprintf(psi, sizeof(psi), "%s/psi", f->dir);
	snprintf(meminfo, sizeof(meminfo), "%s/meminfo", f->dir);
	write_file(psi, "some avg10=80.00 avg60=1.00 avg300=0.10 total=1\n", 0644);
	write_file(meminfo, "MemTotal: 1000 kB\nMemAvailable: 900 kB\n", 0644);
	health_config_init(&cfg);
	cfg.psi_path = psi;
	cfg.meminfo_path = meminfo;
	restart_with(f, &cfg, table);
	health_run(&f->h);
	assert_non_null(health_find(&f->h, "kernel", "memory-pressure"));

	/* PSI goes away (psi=0): MemAvailable decides from then on. */
	unlink(psi);
	health_run(&f->h);
	assert_int_equal(f->h.nfindings, 0);
	write_file(meminfo, "MemTotal: 1000 kB\nMemAvailable: 10 kB\n", 0644);
	health_run(&f->h);
	assert_non_null(health_find(&f->h, "kernel", "memory-pressure"));
}

/* ------------------------------------------------------------ clock */

static void clock_offsets(void **state)
{
	struct fixture *f = *state;
	const Hpq__Finding *x;

	monitor_clock_check(f->src, 0, 5, 1, 30);
	monitor_clock_check(f->src, 1500, 600, 1, 30);     /* within the error bound */
	health_done(f->src);
	assert_int_equal(f->h.nfindings, 0);

	monitor_clock_check(f->src, 5000, 10, 1, 30);
	health_done(f->src);
	x = health_find(&f->h, "runtime", "clock-offset");
	assert_non_null(x);
	assert_string_equal(x->severity, "warning");
	assert_non_null(strstr(x->message, "5.000 s behind hpqd's"));

	monitor_clock_check(f->src, -40000, 10, 1, 30);
	health_done(f->src);
	x = health_find(&f->h, "runtime", "clock-offset");
	assert_string_equal(x->severity, "fatal");
	assert_non_null(strstr(x->message, "40.000 s ahead of hpqd's"));

	monitor_clock_check(f->src, -40000, 10, 0, 0);     /* off */
	health_done(f->src);
	assert_int_equal(f->h.nfindings, 0);
}

/* ------------------------------------------------------------ network */

static void netif_of_loopback_connection(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	char name[IF_NAMESIZE + 1];
	unsigned flags = 0, by_name = 0;
	int lfd, cfd;
	const Hpq__Finding *x;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0 && cfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);

	assert_int_equal(monitor_netif_of_socket(cfd, name, sizeof(name), &flags), 0);
	assert_string_equal(name, "lo");
	assert_true(flags & IFF_UP);
	assert_true(flags & IFF_LOOPBACK);
	assert_int_equal(monitor_netif_flags("lo", &by_name), 0);
	assert_int_equal(by_name & IFF_UP, IFF_UP);
	assert_int_equal(monitor_netif_flags("nosuchif0", &by_name), HPQ_ENOTFOUND);
	assert_int_equal(monitor_netif_of_socket(-1, name, sizeof(name), &flags), -EBADF);
	close(cfd);
	close(lfd);

	monitor_netif_check(f->src, "lo", true, IFF_UP | IFF_RUNNING | IFF_LOOPBACK);
	health_done(f->src);
	assert_int_equal(f->h.nfindings, 0);
	monitor_netif_check(f->src, "eth0", true, IFF_UP);
	health_done(f->src);
	x = health_find(&f->h, "network", "netif-down");
	assert_non_null(x);
	assert_string_equal(x->severity, "fatal");
	assert_non_null(strstr(x->message, "eth0"));
	assert_non_null(strstr(x->message, "no carrier"));
	monitor_netif_check(f->src, "eth0", true, 0);
	health_done(f->src);
	assert_non_null(strstr(health_find(&f->h, "network", "netif-down")->message, "is down"));
	monitor_netif_check(f->src, "eth0", false, 0);
	health_done(f->src);
	assert_non_null(health_find(&f->h, "network", "netif-missing"));
	assert_null(health_find(&f->h, "network", "netif-down"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(xid_lines),
		cmocka_unit_test(xid_table),
		T(kmsg_patterns),
		T(kmsg_monitor_reads_new_lines),
		T(kmsg_unreadable_is_said),
		T(kmsg_falls_back_to_dmesg),
		T(gpu_outputs),
		T(gpu_monitor_runs_nvidia_smi),
		T(gpu_monitor_off_without_nvidia_smi),
		T(disk_thresholds),
		cmocka_unit_test(disk_node_paths),
		cmocka_unit_test(disk_task_checks),
		T(disk_monitor_measures_paths),
		T(psi_and_meminfo),
		T(mem_monitor_reads_files),
		T(clock_offsets),
		T(netif_of_loopback_connection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
