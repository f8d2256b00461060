/*
 * config.h: the agent's settings. Every setting has one name, used both
 * as a command-line flag (--work-dir DIR) and as a key in agent.conf
 * (work-dir = DIR, or work_dir; in no section or in [agent]); join and
 * join-file may also be written join-token and join-token-file. The
 * command line wins over the file. config_set is the one place that
 * parses and checks a value, so a flag and a key can never disagree.
 */
#ifndef HPQ_AGENT_CONFIG_H
#define HPQ_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_SERVER "127.0.0.1:7420"
/* The longest Unix socket path --server takes (sockaddr_un's sun_path). */
#define CONFIG_SOCKET_PATH_MAX 107
#define CONFIG_DEFAULT_HEARTBEAT_S 10
/* The most health-disk paths: their filesystems are measured every round. */
#define CONFIG_HEALTH_DISKS_MAX 16

struct agent_config {
	char *server;            /* HOST:PORT of hpqd, or the path of its Unix socket */
	char *server_name;       /* the name hpqd's certificate must carry; NULL: server's host */
	char *name;              /* node name; NULL: the short host name */
	char *pool;
	char *work_dir;
	char *join_token;        /* --join: "hpq1.ID.SECRET"; NULL: none */
	char *join_file;         /* --join-file: the token in a private file (--join wins) */
	char *ca_hash;           /* --ca-hash: "sha256:..." of the cluster CA to trust */
	char *address;           /* advertised address; NULL: the local end of the uplink */
	char **labels;
	size_t nlabels;
	int64_t gpus, cpus, mem; /* -1: detect; mem in MiB */
	uint64_t heartbeat_s;
	/* Health monitoring (health.h). */
	char *health_dir;        /* admin health scripts; NULL: none */
	char *health_inject;     /* test-only findings file; NULL: none */
	char **health_disks;     /* filesystems that count for the node's health, besides
				  * the work directory's: each key or flag adds to them */
	size_t nhealth_disks;
	uint64_t health_interval_s;
	uint64_t health_timeout_s;
	uint64_t health_threshold;
	uint64_t health_disk_warning, health_disk_fatal;     /* percent free; 0: off */
	uint64_t health_clock_warning_s, health_clock_fatal_s; /* 0: off */
	uint64_t health_memory_pressure;                     /* percent; 0: off */
	uint64_t local_max_per_user;   /* agent socket: connections of one uid but root */
	uint64_t local_idle_timeout_s; /* agent socket: a silent client is closed */
	int log_level;           /* syslog level */
	bool foreground;
	bool kill_tasks_on_exit;
	bool allow_root_tasks;   /* run tasks as uid 0 when hpqd asks (it must allow it too) */
	bool insecure;           /* plaintext TCP to an --insecure hpqd on loopback */
	int cgroup_mode;         /* enum cgroup_mode (cgroup.h): auto, required, off */
	uint64_t task_pids_max;  /* each task's cgroup pids.max */
};

void config_init(struct agent_config *cfg);
void config_release(struct agent_config *cfg);

/* Sets one setting by name (flag name without "--"; '_' counts as '-').
 * Returns 0, or HPQ_EINVAL / HPQ_ENOTFOUND (unknown name) with err
 * saying why. */
int config_set(struct agent_config *cfg, const char *key, const char *value, char *err,
	       size_t errlen);

/* Forgets the health-disk paths (the command line's replace the file's). */
void config_health_disks_clear(struct agent_config *cfg);

/* Applies an agent.conf file. Returns 0, -errno if it cannot be read, or
 * HPQ_EINVAL with err naming the first bad line ("FILE:LINE: ..."). */
int config_load(struct agent_config *cfg, const char *path, char *err, size_t errlen);

/* Fills what defaults from the system (the node name), makes relative
 * paths absolute (the agent leaves its working directory when it
 * detaches) and checks the settings against each other. Returns 0 or
 * HPQ_EINVAL with err. */
int config_finish(struct agent_config *cfg, char *err, size_t errlen);

/* Is server the path of a Unix socket (it contains a '/') rather than
 * HOST:PORT? */
bool config_server_is_path(const char *server);

#endif
