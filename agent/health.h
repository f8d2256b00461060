/*
 * health.h: the agent's health monitoring. Monitors (monitor.h) are
 * small independent sources that look at one part of the node every
 * health interval and report what is wrong as findings {category,
 * reason, message, severity, action}; the framework decides which
 * findings count and publishes them for Register and Heartbeat.
 *
 * Rounds. A monitor reports through a source: it calls health_see() for
 * each problem it sees and then health_done() to close its round, at
 * once or later (a script that is still running). A monitor may own
 * several sources (one per admin script), each with its own rounds.
 * Within a round the same (category, reason) seen twice is one finding
 * with the worse severity and both messages.
 *
 * Counting. A reason counts once it has been seen in `threshold`
 * consecutive rounds of its source (default 1), so a single flake does
 * not drain a node, and stops counting at the first round it is not
 * seen in. A finding's `since` is the time (unix seconds) its current
 * streak began, whatever its severity did since.
 *
 * Publishing. After every round the counted findings of all sources are
 * merged (one per category and reason: the worst severity, the earliest
 * since, the messages joined), sorted worst first, and kept in
 * h->findings for the uplink to send. When that set changes (a finding
 * starts or stops counting, or its severity or action changes; a new
 * message alone is no change), on_change runs, and the agent sends a
 * heartbeat at once.
 */
#ifndef HPQ_AGENT_HEALTH_H
#define HPQ_AGENT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "hpq.pb-c.h"
#include "list.h"

struct uplink;

#define HEALTH_DEFAULT_INTERVAL_S 60
#define HEALTH_DEFAULT_TIMEOUT_S 30
#define HEALTH_DEFAULT_THRESHOLD 1
#define HEALTH_DEFAULT_DISK_WARNING 10   /* percent free */
#define HEALTH_DEFAULT_DISK_FATAL 2
#define HEALTH_DEFAULT_CLOCK_WARNING_S 1
#define HEALTH_DEFAULT_CLOCK_FATAL_S 30
#define HEALTH_DEFAULT_MEMORY_PRESSURE 20 /* percent, PSI "some avg10" */

#define HEALTH_REASON_MAX 128     /* longer reasons are cut */
#define HEALTH_MESSAGE_MAX 1024   /* longer messages are cut */
#define HEALTH_FINDINGS_MAX 128   /* published at most; the least severe are dropped */

enum health_severity {
	HEALTH_INFO,
	HEALTH_WARNING,
	HEALTH_FATAL,
};

enum health_category {
	HEALTH_ACCELERATOR,
	HEALTH_KERNEL,
	HEALTH_STORAGE,
	HEALTH_NETWORK,
	HEALTH_RUNTIME,
	HEALTH_AGENT,
	HEALTH_NCATEGORIES,
};

const char *health_severity_name(enum health_severity s);
const char *health_category_name(enum health_category c);
/* Name -> value. Return 0, or HPQ_EINVAL for an unknown name. */
int health_severity_parse(const char *name, enum health_severity *ret);
int health_category_parse(const char *name, enum health_category *ret);

struct health_config {
	double interval;            /* seconds between rounds */
	double timeout;             /* seconds a script or probe may take */
	unsigned threshold;         /* consecutive rounds before a reason counts */
	const char *work_dir;       /* its filesystem is watched */
	char *const *disks;         /* the admin's (--health-disk): watched too; may be NULL */
	size_t ndisks;
	uint32_t gpus;              /* GPUs the node offers: nvidia-smi must show as many */
	const char *script_dir;     /* admin health scripts; NULL: none */
	const char *inject_path;    /* test-only findings file; NULL: none */
	unsigned disk_warning;      /* percent free space or inodes; 0: off */
	unsigned disk_fatal;
	double clock_warning;       /* seconds of offset against hpqd; 0: off */
	double clock_fatal;
	unsigned memory_pressure;   /* percent (PSI some avg10); 0: off */
	/* struct task: their checkpoint directories are watched for the tasks
	 * alone, never as the node's health; may be NULL. */
	const struct dlist *tasks;
	/* Tells the owner about one task's own problem (its checkpoint
	 * directory full, say), to report on that task. Returns whether it
	 * went out (false: not connected; it is offered again next round).
	 * NULL: such problems are only logged. */
	bool (*task_warning)(void *data, uint64_t task_id, uint32_t attempt, const char *reason,
			     const char *message);
	void *task_warning_data;
	const struct uplink *uplink; /* clock offset and network interface; may be NULL */
	/* For tests; NULL: the system's. */
	const char *kmsg_path;
	const char *psi_path;
	const char *meminfo_path;
};

/* Fills cfg with the defaults above (no paths, no tasks, no uplink). */
void health_config_init(struct health_config *cfg);

struct health;
struct health_source;
struct monitor;

typedef void health_change_fn(struct health *h, void *data);

/* One monitor running in this agent (health.c). */
struct health_monitor {
	const struct monitor *monitor;
	void *state;                /* the monitor's */
	struct health_source *source; /* its default source */
};

/* What changed-detection compares: one counted finding. */
struct health_key {
	enum health_category category;
	enum health_severity severity;
	char *reason;
	char *action;
};

struct health {
	struct ev_loop *loop;
	struct health_config cfg;   /* strings and pointers belong to the owner */
	health_change_fn *on_change;
	void *data;                 /* the owner's */
	ev_timer round_w;

	struct health_monitor *monitors;
	size_t nmonitors;
	struct dlist sources;       /* of struct health_source, newest first */

	/* The published set: what Register and Heartbeat carry. */
	Hpq__Finding **findings;
	size_t nfindings;
	Hpq__Finding *pb;           /* storage of findings[] */
	struct health_key *keys;    /* the same set, for change detection */
	size_t nkeys;
	bool releasing;             /* health_release: nothing is published any more */
};

/*
 * Sets up and starts the monitors of table (NULL-terminated; see
 * health_builtin in monitor.h). A monitor that has nothing to watch on
 * this node stays out. Nothing runs until health_start. cfg is copied;
 * what it points to must outlive h.
 */
void health_init(struct health *h, struct ev_loop *loop, const struct health_config *cfg,
		 const struct monitor *const *table, health_change_fn *on_change, void *data);
/* First round now, then one every interval. */
void health_start(struct health *h);
/* Runs one round of every monitor now (tests; the timer does it otherwise). */
void health_run(struct health *h);
/* Stops the monitors (killing their helper processes) and frees everything. */
void health_release(struct health *h);

/* ------------------------------------------------------ for monitors */

/* A new source (name for the log, e.g. the script's). Its findings start empty. */
struct health_source *health_source_new(struct health *h, const char *name);
/* Drops a source and its findings (publishing the change). NULL is fine. */
void health_source_free(struct health_source *s);
struct health *health_source_health(const struct health_source *s);

/* Reports one finding for the round in progress. action: "reboot",
 * "replace" or NULL/"" (none). */
void health_see(struct health_source *s, enum health_category category, const char *reason,
		enum health_severity severity, const char *action, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* Closes the round: counts, clears what was not seen, publishes. */
void health_done(struct health_source *s);

/* The counted finding (category, reason) of the published set, or NULL. */
const Hpq__Finding *health_find(const struct health *h, const char *category, const char *reason);

/* Reads a small file (procfs, the inject file) whole, NUL-terminated, at
 * most max bytes. Returns 0, -errno, or -EFBIG when it is longer. */
int health_read_file(const char *path, size_t max, char **ret_text);

#endif
