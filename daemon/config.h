/*
 * config.h: hpqd's settings, from built-in defaults, then the INI file
 * (--config), then the command line, each overriding the one before.
 * Every key has one setter (config_set) used by both the file and the
 * flags, so a value is validated the same way wherever it comes from.
 * man/hpqd.8 lists every key; keep the two in step.
 */
#ifndef HPQD_CONFIG_H
#define HPQD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "res.h"

/* [autoscale.POOL]: one pool whose nodes hpqd launches and removes
 * (daemon/autoscale.c, docs/autoscale.md). */
struct autoscale_config {
	char *pool;
	uint32_t min_nodes, max_nodes;
	bool has_max;                 /* max_nodes was set: it has no default */
	struct hpq_res tmpl;          /* what each launched node offers */
	char **labels;                /* the template's labels */
	size_t nlabels;
	char *provision_command;      /* absolute path; run as COMMAND NODE... */
	char *deprovision_command;
	uint64_t launch_timeout_ms;   /* its agent registers by then, or it is undone */
	uint64_t idle_timeout_ms;     /* an empty node is removed after this long */
	uint64_t max_lifetime_ms;     /* a node older than this is replaced; 0 = never */
	bool consolidation;           /* move preemptible work off nodes it empties */
	uint32_t budget;              /* disruption_budget: nodes at once ... */
	bool budget_percent;          /* ... or percent of the pool's nodes */
};

struct config {
	char *listen;               /* HOST:PORT for agents and remote clients; "" = none */
	char *socket_path;          /* Unix socket for local clients; "" = none */
	char *state_dir;            /* holds hpq.db, hpqd.port (and hpqd.log when daemonized) */
	char *munge_socket;         /* [auth] munge_socket: munged, which vouches for TCP clients */
	bool insecure;              /* --insecure: plain TCP, peers name themselves (loopback only) */
	char **admins;              /* user names with administrator rights */
	size_t nadmins;
	char *admin_group;          /* [auth] admin_group: its members are admins; "" = none */
	bool private_data;          /* [auth] private_data: others' argv, cwd, output are hidden */
	bool allow_root_tasks;      /* [auth] allow_root_tasks: accept submits by uid 0 */
	bool slurm_env;             /* [compat] slurm_env: tasks get SLURM_* variables */
	char *versions_catalog;     /* [versions] catalog: the release catalogue (JSON);
	                             * "": the installed one (config_catalog) */
	char *file;                 /* the INI file read (config_load); NULL: none */
	char **file_keys;           /* "section.key" of each line it set, in order */
	size_t nfile_keys;
	int log_level;              /* syslog level */
	uint64_t heartbeat_ms;      /* what agents are told to use */
	uint32_t unreachable_after; /* heartbeats missed before a node is lost */
	uint64_t fence_after_ms;    /* [agents] fence_after: agents' lease; 0 = off */
	bool foreground;
	uint64_t events_retain_s;   /* [events] retain: older events are pruned; 0 = keep all */
	uint64_t keep_finished_s;   /* [tasks] keep_finished: an ended task's time in memory */
	uint64_t tasks_retain_s;    /* [tasks] retain: older ended tasks are pruned; 0 = keep all */
	char *metrics;              /* [hpqd] metrics: HOST:PORT of /metrics; "" = off */
	struct repair_config {      /* [repair] and [repair.actions] (daemon/repair.c) */
		bool enabled;
		uint64_t wait_accelerator_ms; /* a fatal accelerator finding lasts this long */
		uint64_t wait_default_ms;     /* any other fatal finding, or unreachability */
		char *command;                /* run as COMMAND NODE ACTION REASON; "" = none */
		uint64_t timeout_ms;          /* the node is back in service by then, or down */
		uint32_t healthy_streak;      /* healthy heartbeats before it is active again */
		uint32_t max_unhealthy_percent;
		uint32_t max_parallel;
		char **action_reasons;        /* [repair.actions] reason = action */
		char **action_values;
		size_t nactions;
	} repair;
	struct tls_config {         /* [tls]: the cluster CA and certificates (ca.c) */
		char **server_names;          /* names in the server certificate; none: found */
		size_t nserver_names;
		uint64_t node_cert_lifetime_s; /* a node certificate's validity */
		uint64_t server_cert_lifetime_s;
		uint64_t token_ttl_s;         /* a join token's default life */
	} tls;
	struct limits_config {      /* [limits]: misbehaving peers (server.c, router.c, task.c) */
		uint64_t hello_timeout_ms;    /* Hello (and Auth) must be done by then */
		uint64_t read_timeout_ms;     /* a frame begun must be complete by then */
		uint64_t idle_timeout_ms;     /* a client without a request is closed; 0 = never */
		uint64_t write_timeout_ms;    /* queued replies must make progress by then */
		uint32_t max_connections;     /* of unprivileged peers, all together */
		uint32_t max_connections_per_user;
		uint32_t max_unauthenticated_per_address; /* TCP, before Hello/Auth */
		uint32_t max_inflight;        /* requests awaiting their answer, per connection */
		uint64_t max_write_queue;     /* bytes of replies a peer may leave unread */
		uint64_t log_interval_ms;     /* one line per interval about refused peers */
		uint32_t max_pending_tasks;   /* per user */
		uint64_t max_task_bytes;      /* argv + environment of one task */
		uint32_t rate;                /* requests per second per user ... */
		uint32_t burst;               /* ... with this many at once */
		bool exempt_admins;           /* administrators are not rate limited */
	} limits;
	struct autoscale_config *autoscale; /* [autoscale.POOL] sections, in file order */
	size_t nautoscale;
	struct plans_config {       /* [plans]: training plans (plan.c, docs/plans.md) */
		char *reservable;             /* "POOL=N[%], ...": "" = no pool */
		uint64_t max_length_s;        /* longest plan, all segments together */
		uint64_t end_warning_s;       /* plan tasks are warned this long before a segment ends */
		uint64_t offer_lifetime_s;    /* an offering of hpq plan search lasts this long */
	} plans;
};

void config_init(struct config *c);
void config_release(struct config *c);
/* Deep copy of src into dst (dst is not initialised). */
void config_copy(struct config *dst, const struct config *src);

/*
 * Sets one key ("listen", "auth.admins", ...: section.key as in the file,
 * sections [hpqd], [auth], [agents]). Returns 0, or HPQ_EINVAL /
 * HPQ_ENOTFOUND with a message in err.
 */
int config_set(struct config *c, const char *section, const char *key, const char *value,
	       char *err, size_t errlen);

/* Reads an INI file into c. Returns 0 or a negative code with err set
 * ("FILE:LINE: ..."). */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/*
 * What config_set cannot check key by key in [autoscale.POOL] sections:
 * max_nodes given and at least min_nodes, both commands given, a
 * template with some capacity. Returns 0, or HPQ_EINVAL with err naming
 * the section and what to change. hpqd refuses to start without it, and
 * --check says so.
 */
int config_autoscale_check(const struct config *c, char *err, size_t errlen);
/* The [autoscale.POOL] section of pool, or NULL. */
const struct autoscale_config *config_autoscale_find(const struct config *c, const char *pool);
/* The disruption budget of a pool of nnodes nodes: the number, or the
 * percentage of nnodes rounded up. */
uint32_t config_autoscale_budget(const struct autoscale_config *a, uint32_t nnodes);

/*
 * [plans] reservable: how many of pool's nnodes nodes plans may hold at
 * once (0 for a pool the setting does not name). config_set has checked
 * the syntax.
 */
uint32_t config_plans_reservable(const struct config *c, const char *pool, uint32_t nnodes);

/* [repair.actions]: the action (reboot replace none) for a finding's reason. */
void config_repair_action_set(struct config *c, const char *reason, const char *action);

/* Milliseconds after which a silent or disconnected node is lost. */
uint64_t config_unreachable_ms(const struct config *c);
/* Past its lease's end (fence_after), a node's supervisors stop its tasks
 * and kill them at most fence_after later; this margin covers the rest
 * (their polling, the kill, scheduling). */
#define CONFIG_FENCE_MARGIN_MS 5000
/* How long after a node's last heartbeat its tasks are surely gone:
 * 2 x fence_after + CONFIG_FENCE_MARGIN_MS; 0 when fencing is off. */
uint64_t config_fence_ms(const struct config *c);

/* The release catalogue's path: [versions] catalog, or the installed one. */
const char *config_catalog(const struct config *c);

#endif
