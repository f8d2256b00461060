/*
 * monitor-kmsg.c: the kernel log monitor (see monitor.h).
 *
 * /dev/kmsg is opened once, non-blocking, and positioned at its end, so
 * only what the kernel logs while the agent runs counts; each round reads
 * what has come since (one record per read; EPIPE means records were
 * overwritten before we read them, and reading simply goes on). Without
 * a readable /dev/kmsg (some containers), `dmesg` runs each round in a
 * probe and the lines newer than the newest one of the previous run are
 * scanned; the first run only sets that mark. When neither works, the
 * monitor says so once per round as an info finding and sees nothing.
 *
 * Reading once per round rather than on every record keeps the agent
 * asleep between rounds; the kernel's buffer (128 KiB and more) holds far
 * more than a minute of a healthy node's messages.
 *
 * The scan matches each message against the XID parser and a short table
 * of substrings, in order (a soft lockup's message also contains "BUG:").
 * For each reason it remembers when it last matched, how often, and the
 * last message. Reboot-class reasons (fatal) are sticky: the node stays
 * broken until it reboots, which also restarts the agent. The others hold
 * for MONITOR_KMSG_HOLD_S after the last match, long enough for the
 * daemon to see them and for an operator to look.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "log.h"
#include "monitor.h"
#include "probe.h"
#include "xalloc.h"
#include "xid.h"

#define KMSG_LINE_MAX 8192
#define KMSG_SAMPLE_MAX 240
#define KMSG_DEVICES_MAX 160
#define KMSG_DMESG_OUTPUT_MAX (8u << 20)

struct kmsg_pattern {
	const char *needle;
	enum health_category category;
	const char *reason;
	enum health_severity severity;
	const char *action;
};

static const struct kmsg_pattern kmsg_patterns[] = {
	{"has fallen off the bus", HEALTH_ACCELERATOR, "gpu-fallen-off-bus", HEALTH_FATAL,
	 "reboot"},
	{"soft lockup", HEALTH_KERNEL, "soft-lockup", HEALTH_WARNING, ""},
	{"hard LOCKUP", HEALTH_KERNEL, "hard-lockup", HEALTH_FATAL, "reboot"},
	{"detected stall", HEALTH_KERNEL, "rcu-stall", HEALTH_WARNING, ""},
	{"blocked for more than", HEALTH_KERNEL, "hung-task", HEALTH_WARNING, ""},
	{"fork rejected by pids controller", HEALTH_KERNEL, "fork-failure", HEALTH_WARNING, ""},
	{"retry fork", HEALTH_KERNEL, "fork-failure", HEALTH_WARNING, ""},
	{"fork: retry", HEALTH_KERNEL, "fork-failure", HEALTH_WARNING, ""},
	{"fork: Cannot allocate memory", HEALTH_KERNEL, "fork-failure", HEALTH_WARNING, ""},
	{"Killed process", HEALTH_KERNEL, "oom-kill", HEALTH_WARNING, ""},
	{"Out of memory: Kill process", HEALTH_KERNEL, "oom-kill", HEALTH_WARNING, ""},
	{"BUG:", HEALTH_KERNEL, "kernel-bug", HEALTH_FATAL, "reboot"},
	{"Oops:", HEALTH_KERNEL, "kernel-bug", HEALTH_FATAL, "reboot"},
};

struct kmsg_hit {
	enum health_category category;
	char reason[32];
	enum health_severity severity;
	const char *action;
	double last;                /* monotonic seconds of the last match */
	unsigned count;
	char sample[KMSG_SAMPLE_MAX];
	char devices[KMSG_DEVICES_MAX]; /* XIDs: the devices that reported it */
};

struct kmsg_scan {
	struct kmsg_hit *hits;
	size_t nhits;
};

struct kmsg_scan *monitor_kmsg_scan_new(void)
{
	return xcalloc(1, sizeof(struct kmsg_scan));
}

void monitor_kmsg_scan_free(struct kmsg_scan *ks)
{
	if (!ks)
		return;
	free(ks->hits);
	free(ks);
}

static struct kmsg_hit *kmsg_hit(struct kmsg_scan *ks, enum health_category c, const char *reason,
				 enum health_severity severity, const char *action)
{
	struct kmsg_hit *h;

	for (size_t i = 0; i < ks->nhits; i++)
		if (ks->hits[i].category == c && strcmp(ks->hits[i].reason, reason) == 0)
			return &ks->hits[i];
	ks->hits = xreallocarray(ks->hits, ks->nhits + 1, sizeof(*ks->hits));
	h = &ks->hits[ks->nhits++];
	memset(h, 0, sizeof(*h));
	h->category = c;
	snprintf(h->reason, sizeof(h->reason), "%s", reason);
	h->severity = severity;
	h->action = action;
	return h;
}

static void kmsg_note(struct kmsg_hit *h, const char *msg, double now)
{
	h->last = now;
	if (h->count < UINT32_MAX)
		h->count++;
	snprintf(h->sample, sizeof(h->sample), "%s", msg);
}

/* The message of a kmsg record or dmesg line; NULL for a continuation line. */
static const char *kmsg_text(const char *line)
{
	const char *semi;

	if (line[0] == ' ' || line[0] == '\t')
		return NULL;
	if (line[0] >= '0' && line[0] <= '9') {
		semi = strchr(line, ';');
		/* "prio,seq,usec,flags;" has no blanks before the ';' */
		if (semi && strcspn(line, " ;") == (size_t)(semi - line))
			return semi + 1;
		return line;
	}
	if (line[0] == '[') {
		const char *end = strchr(line, ']');

		if (end)
			return end[1] == ' ' ? end + 2 : end + 1;
	}
	return line;
}

void monitor_kmsg_scan_line(struct kmsg_scan *ks, const char *line, double now)
{
	const char *msg = kmsg_text(line);
	char dev[48], reason[32];
	struct kmsg_hit *h;
	unsigned xid;

	if (!msg || !msg[0])
		return;
	if (xid_parse(msg, &xid, dev, sizeof(dev)) == 0) {
		const struct xid_info *info = xid_lookup(xid);
		size_t used;

		snprintf(reason, sizeof(reason), "xid-%u", xid);
		h = kmsg_hit(ks, HEALTH_ACCELERATOR, reason,
			     info ? info->severity : HEALTH_WARNING, info ? info->action : "");
		kmsg_note(h, msg, now);
		used = strlen(h->devices);
		if (!strstr(h->devices, dev) && used + strlen(dev) + 3 < sizeof(h->devices))
			snprintf(h->devices + used, sizeof(h->devices) - used, "%s%s",
				 used ? ", " : "", dev);
		return;
	}
	for (size_t i = 0; i < sizeof(kmsg_patterns) / sizeof(kmsg_patterns[0]); i++) {
		const struct kmsg_pattern *p = &kmsg_patterns[i];

		if (strstr(msg, p->needle)) {
			h = kmsg_hit(ks, p->category, p->reason, p->severity, p->action);
			kmsg_note(h, msg, now);
			return;
		}
	}
}

void monitor_kmsg_scan_report(const struct kmsg_scan *ks, struct health_source *src, double now)
{
	for (size_t i = 0; i < ks->nhits; i++) {
		const struct kmsg_hit *h = &ks->hits[i];
		char count[32] = "";

		if (h->severity != HEALTH_FATAL && now - h->last >= MONITOR_KMSG_HOLD_S)
			continue;
		if (h->count > 1)
			snprintf(count, sizeof(count), " (%u times)", h->count);
		if (h->devices[0]) {
			unsigned xid = (unsigned)strtoul(h->reason + 4, NULL, 10);
			const struct xid_info *info = xid_lookup(xid);

			health_see(src, h->category, h->reason, h->severity, h->action,
				   "XID %u (%s) on %s%s: %s", xid,
				   info ? info->what : "not a well-known XID", h->devices, count,
				   h->sample);
		} else {
			health_see(src, h->category, h->reason, h->severity, h->action,
				   "kernel log%s: %s", count, h->sample);
		}
	}
}

/* ------------------------------------------------------------ monitor */

enum kmsg_mode {
	KMSG_FILE,                  /* /dev/kmsg (or the test's file) */
	KMSG_DMESG,
	KMSG_NONE,
};

struct kmsg_state {
	struct health *h;
	struct health_source *src;
	enum kmsg_mode mode;
	int fd;
	char *carry;                /* a line not complete yet (files only) */
	size_t ncarry;
	struct kmsg_scan *scan;
	struct probe probe;         /* dmesg */
	char *dmesg;                /* its path */
	bool have_mark;
	double mark;                /* dmesg: timestamp of the newest line scanned */
	char why[160];              /* KMSG_NONE: what failed */
};

static void kmsg_feed(struct kmsg_state *st, const char *buf, size_t n, double now)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		if (buf[i] != '\n')
			continue;
		if (st->ncarry) {
			size_t take = i - start;

			if (st->ncarry + take >= KMSG_LINE_MAX)
				take = KMSG_LINE_MAX - 1 - st->ncarry;
			memcpy(st->carry + st->ncarry, buf + start, take);
			st->carry[st->ncarry + take] = '\0';
			monitor_kmsg_scan_line(st->scan, st->carry, now);
			st->ncarry = 0;
		} else {
			char *line = xstrndup(buf + start, i - start);

			monitor_kmsg_scan_line(st->scan, line, now);
			free(line);
		}
		start = i + 1;
	}
	if (start < n) {
		size_t take = n - start;

		if (st->ncarry + take >= KMSG_LINE_MAX)
			take = KMSG_LINE_MAX - 1 - st->ncarry;
		memcpy(st->carry + st->ncarry, buf + start, take);
		st->ncarry += take;
	}
}

static void kmsg_off(struct kmsg_state *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Reads what is new; a read error (some containers allow open, not read) ends file mode. */
static void kmsg_read(struct kmsg_state *st)
{
	char buf[KMSG_LINE_MAX];
	double now = hpq_mono_s();
	int e;

	for (;;) {
		ssize_t n = read(st->fd, buf, sizeof(buf));

		if (n < 0 && (errno == EINTR || errno == EPIPE))
			continue;
		if (n == 0 || (n < 0 && errno == EAGAIN))
			return;
		if (n < 0)
			break;
		kmsg_feed(st, buf, (size_t)n, now);
	}
	e = errno;
	close(st->fd);
	st->fd = -1;
	if ((st->dmesg = probe_which("dmesg"))) {
		log_info("health: cannot read the kernel log (%s); reading it with dmesg",
			 strerror(e));
		st->mode = KMSG_DMESG;
	} else {
		kmsg_off(st, "cannot read the kernel log: %s", strerror(e));
	}
}

static void kmsg_report(struct kmsg_state *st)
{
	monitor_kmsg_scan_report(st->scan, st->src, hpq_mono_s());
	if (st->mode == KMSG_NONE)
		health_see(st->src, HEALTH_AGENT, "kernel-log-unreadable", HEALTH_INFO, NULL,
			   "the kernel log is not watched: %s", st->why);
	health_done(st->src);
}

static void kmsg_off(struct kmsg_state *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->why, sizeof(st->why), fmt, ap);
	va_end(ap);
	st->mode = KMSG_NONE;
	log_warn("health: the kernel log is not watched: %s", st->why);
}

static void kmsg_dmesg_done(struct probe *p)
{
	struct kmsg_state *st = p->data;
	double now = hpq_mono_s(), newest = st->mark;
	char first[160];

	if (p->timed_out || !WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
		probe_first_line(p, first, sizeof(first));
		if (p->timed_out)
			snprintf(first, sizeof(first), "it did not finish in time");
		kmsg_off(st, "/dev/kmsg cannot be read and dmesg failed (%s)",
			 first[0] ? first : "no output");
		kmsg_report(st);
		return;
	}
	for (char *line = p->out, *next; line && *line; line = next) {
		double ts;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (sscanf(line, "[%lf]", &ts) != 1)
			continue;
		if (st->have_mark && ts > st->mark)
			monitor_kmsg_scan_line(st->scan, line, now);
		if (ts > newest)
			newest = ts;
	}
	st->mark = newest;
	st->have_mark = true;
	kmsg_report(st);
}

static void kmsg_run(void *state)
{
	struct kmsg_state *st = state;
	int r;

	if (st->mode == KMSG_FILE)
		kmsg_read(st); /* may turn to dmesg, or off */
	/* A dmesg still busy (hung): report what is known. */
	if (st->mode == KMSG_DMESG && !probe_busy(&st->probe)) {
		char *argv[] = {st->dmesg, NULL};

		r = probe_spawn(&st->probe, argv, st->h->cfg.timeout);
		if (r == 0)
			return; /* reported from kmsg_dmesg_done */
		kmsg_off(st, "cannot run dmesg: %s", hpq_strerror(r));
	}
	kmsg_report(st);
}

static int kmsg_init(struct health *h, struct health_source *src, void **ret_state)
{
	struct kmsg_state *st = xcalloc(1, sizeof(*st));
	const char *path = h->cfg.kmsg_path ? h->cfg.kmsg_path : "/dev/kmsg";
	int e;

	st->h = h;
	st->src = src;
	st->scan = monitor_kmsg_scan_new();
	st->carry = xmalloc(KMSG_LINE_MAX);
	probe_init(&st->probe, h->loop, KMSG_DMESG_OUTPUT_MAX, kmsg_dmesg_done, st);
	st->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	e = errno;
	if (st->fd >= 0) {
		st->mode = KMSG_FILE;
		(void)lseek(st->fd, 0, SEEK_END);
	} else if ((st->dmesg = probe_which("dmesg"))) {
		log_info("health: cannot read %s (%s); reading the kernel log with dmesg", path,
			 strerror(e));
		st->mode = KMSG_DMESG;
	} else {
		kmsg_off(st, "cannot read %s: %s", path, strerror(e));
	}
	*ret_state = st;
	return 0;
}

static void kmsg_release(void *state)
{
	struct kmsg_state *st = state;

	probe_release(&st->probe);
	if (st->fd >= 0)
		close(st->fd);
	monitor_kmsg_scan_free(st->scan);
	free(st->dmesg);
	free(st->carry);
	free(st);
}

const struct monitor monitor_kmsg = {
	.name = "kernel-log",
	.init = kmsg_init,
	.run = kmsg_run,
	.release = kmsg_release,
};
