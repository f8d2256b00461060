/*
 * config.c: parsing and checking the agent's settings, from flags and
 * from agent.conf (INI, read with inih). See config.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>


#include "cgroup.h"
#include "config.h"
#include "credentials.h"
#include "error.h"
#include "health.h"
#include "inifile.h"
#include "local.h"
#include "hpq.h"
#include "log.h"
#include "parse.h"
#include "pki.h"
#include "xalloc.h"

#define CONFIG_LABEL_MAX 64
#define CONFIG_LABELS_MAX 64

void config_init(struct agent_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->server = xstrdup(CONFIG_DEFAULT_SERVER);
	cfg->pool = xstrdup(HPQ_DEFAULT_POOL);
	cfg->work_dir = xstrdup(HPQ_DEFAULT_WORK_DIR);
	cfg->gpus = cfg->cpus = cfg->mem = -1;
	cfg->heartbeat_s = CONFIG_DEFAULT_HEARTBEAT_S;
	cfg->health_interval_s = HEALTH_DEFAULT_INTERVAL_S;
	cfg->health_timeout_s = HEALTH_DEFAULT_TIMEOUT_S;
	cfg->health_threshold = HEALTH_DEFAULT_THRESHOLD;
	cfg->health_disk_warning = HEALTH_DEFAULT_DISK_WARNING;
	cfg->health_disk_fatal = HEALTH_DEFAULT_DISK_FATAL;
	cfg->health_clock_warning_s = HEALTH_DEFAULT_CLOCK_WARNING_S;
	cfg->health_clock_fatal_s = HEALTH_DEFAULT_CLOCK_FATAL_S;
	cfg->health_memory_pressure = HEALTH_DEFAULT_MEMORY_PRESSURE;
	cfg->local_max_per_user = LOCAL_DEFAULT_MAX_PER_UID;
	cfg->local_idle_timeout_s = (uint64_t)LOCAL_DEFAULT_IDLE_TIMEOUT;
	cfg->log_level = LOG_INFO;
	cfg->cgroup_mode = CGROUP_AUTO;
	cfg->task_pids_max = CGROUP_DEFAULT_PIDS_MAX;
}

static void config_labels_clear(struct agent_config *cfg)
{
	for (size_t i = 0; i < cfg->nlabels; i++)
		free(cfg->labels[i]);
	free(cfg->labels);
	cfg->labels = NULL;
	cfg->nlabels = 0;
}

void config_release(struct agent_config *cfg)
{
	free(cfg->server);
	free(cfg->server_name);
	free(cfg->name);
	free(cfg->pool);
	free(cfg->work_dir);
	if (cfg->join_token)
		explicit_bzero(cfg->join_token, strlen(cfg->join_token));
	free(cfg->join_token);
	free(cfg->join_file);
	free(cfg->ca_hash);
	free(cfg->address);
	free(cfg->health_dir);
	free(cfg->health_inject);
	config_health_disks_clear(cfg);
	config_labels_clear(cfg);
	memset(cfg, 0, sizeof(*cfg));
}

void config_health_disks_clear(struct agent_config *cfg)
{
	for (size_t i = 0; i < cfg->nhealth_disks; i++)
		free(cfg->health_disks[i]);
	free(cfg->health_disks);
	cfg->health_disks = NULL;
	cfg->nhealth_disks = 0;
}

/*
 * health-disk = PATH[,PATH...]: adds to the list (a path already there is
 * not added twice). A path is checked whole before any is added, so a bad
 * value changes nothing. The filesystems may be missing now (a mount that
 * comes later): the disk monitor reports that as a finding.
 */
static int config_health_disks(struct agent_config *cfg, const char *value, char *err,
			       size_t errlen)
{
	char *copy = xstrdup(value), *tok, *save = NULL, *add[CONFIG_HEALTH_DISKS_MAX];
	size_t n = 0, seen = 0, total = cfg->nhealth_disks;
	int r = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool dup = false, ctl = false;
		char *end;

		tok += strspn(tok, " \t");
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (!*tok)
			continue;
		seen++;
		for (const char *c = tok; *c; c++)
			ctl |= (unsigned char)*c < 0x20 || *c == 0x7f;
		if (strlen(tok) > 3000 || ctl) {
			r = hpq_errf(err, errlen, HPQ_EINVAL, "invalid health-disk '%s'", tok);
			break;
		}
		for (size_t i = 0; i < cfg->nhealth_disks && !dup; i++)
			dup = strcmp(cfg->health_disks[i], tok) == 0;
		for (size_t i = 0; i < n && !dup; i++)
			dup = strcmp(add[i], tok) == 0;
		if (dup)
			continue;
		if (total == CONFIG_HEALTH_DISKS_MAX) {
			r = hpq_errf(err, errlen, HPQ_EINVAL, "too many health-disk paths: at most %d",
				     CONFIG_HEALTH_DISKS_MAX);
			break;
		}
		add[n++] = tok;
		total++;
	}
	if (r == 0 && seen == 0)
		r = hpq_errf(err, errlen, HPQ_EINVAL,
			     "invalid health-disk '%s': expected PATH[,PATH...]", value);
	if (r == 0 && n > 0) {
		cfg->health_disks = xreallocarray(cfg->health_disks, total, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			cfg->health_disks[cfg->nhealth_disks++] = xstrdup(add[i]);
	}
	free(copy);
	return r;
}

static void config_str(char **dst, const char *value)
{
	free(*dst);
	*dst = xstrdup(value);
}

static int config_bool(const char *v, bool *ret)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return HPQ_EINVAL;
}

static bool config_label_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < CONFIG_LABEL_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/=:-") == n;
}

/* A DNS name or an IP address, as a certificate's subjectAltName has them. */
static bool config_tls_name_ok(const char *s)
{
	size_t n = strlen(s);
	unsigned char addr[16];

	if (inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1)
		return true;
	return n > 0 && n <= 253 && s[0] != '-' && s[0] != '.' &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

bool config_server_is_path(const char *server)
{
	return strchr(server, '/') != NULL;
}

/* "a,b=c, d": replaces the list; all or nothing. */
static int config_labels(struct agent_config *cfg, const char *value, char *err, size_t errlen)
{
	char **labels = NULL, *copy = xstrdup(value), *tok, *save = NULL;
	size_t n = 0;
	int r = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (!*tok)
			continue;
		if (!config_label_ok(tok) || n >= CONFIG_LABELS_MAX) {
			r = hpq_errf(err, errlen, HPQ_EINVAL,
				     "invalid label '%s': up to %d labels of 1-%d characters "
				     "[A-Za-z0-9._/=:-]", tok, CONFIG_LABELS_MAX,
				     CONFIG_LABEL_MAX - 1);
			break;
		}
		labels = xreallocarray(labels, n + 1, sizeof(*labels));
		labels[n++] = xstrdup(tok);
	}
	free(copy);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(labels[i]);
		free(labels);
		return r;
	}
	config_labels_clear(cfg);
	cfg->labels = labels;
	cfg->nlabels = n;
	return 0;
}

static int config_count(const char *key, const char *value, uint64_t max, int64_t *dst, char *err,
			size_t errlen)
{
	uint64_t v;

	if (hpq_parse_uint(value, 0, max, &v) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"invalid %s '%s': expected a whole number from 0 to %llu", key,
				value, (unsigned long long)max);
	*dst = (int64_t)v;
	return 0;
}

/* A duration in [min, max] seconds, said in err as "from MIN to MAX". */
static int config_duration(const char *key, const char *value, uint64_t min, uint64_t max,
			   const char *range, uint64_t *dst, char *err, size_t errlen)
{
	uint64_t v;

	if (hpq_parse_duration(value, &v) < 0 || v < min || v > max)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"invalid %s '%s': expected a duration from %s", key, value, range);
	*dst = v;
	return 0;
}

/* "10" or "10%", 0 to 100. */
static int config_percent(const char *key, const char *value, uint64_t *dst, char *err,
			  size_t errlen)
{
	char num[8];
	size_t n = strlen(value);
	uint64_t v;

	if (n > 0 && value[n - 1] == '%')
		n--;
	if (n == 0 || n >= sizeof(num))
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"invalid %s '%s': expected a percentage from 0 to 100", key, value);
	memcpy(num, value, n);
	num[n] = '\0';
	if (hpq_parse_uint(num, 0, 100, &v) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"invalid %s '%s': expected a percentage from 0 to 100", key, value);
	*dst = v;
	return 0;
}

int config_set(struct agent_config *cfg, const char *key_in, const char *value, char *err,
	       size_t errlen)
{
	char key[32];
	size_t n = strlen(key_in);
	uint64_t v;
	bool b;
	int level;

	if (n >= sizeof(key)) {
		hpq_errf(err, errlen, HPQ_EINVAL, "unknown setting '%s'", key_in);
		return HPQ_ENOTFOUND;
	}
	for (size_t i = 0; i <= n; i++)
		key[i] = key_in[i] == '_' ? '-' : key_in[i];
	if (!value)
		value = "";

	if (strcmp(key, "server") == 0) {
		char host[256];
		uint16_t port;

		if (config_server_is_path(value)) {
			if (strlen(value) > CONFIG_SOCKET_PATH_MAX)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid server '%s': a socket path has at most %d "
						"characters", value, CONFIG_SOCKET_PATH_MAX);
		} else if (hpq_split_hostport(value, 0, host, sizeof(host), &port) < 0) {
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid server '%s': expected HOST:PORT or the path of "
					"hpqd's Unix socket", value);
		}
		config_str(&cfg->server, value);
	} else if (strcmp(key, "server-name") == 0) {
		if (!config_tls_name_ok(value))
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid server-name '%s': expected the DNS name or IP "
					"address hpqd's certificate carries", value);
		config_str(&cfg->server_name, value);
	} else if (strcmp(key, "join") == 0 || strcmp(key, "join-token") == 0) {
		if (!creds_token_valid(value))
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid join token: expected hpq1.ID.SECRET, as 'hpq node "
					"token create' prints it");
		if (cfg->join_token)
			explicit_bzero(cfg->join_token, strlen(cfg->join_token));
		config_str(&cfg->join_token, value);
	} else if (strcmp(key, "join-file") == 0 || strcmp(key, "join-token-file") == 0) {
		if (!value[0] || strlen(value) > 3000)
			return hpq_errf(err, errlen, HPQ_EINVAL, "invalid join-file '%s'", value);
		config_str(&cfg->join_file, value);
	} else if (strcmp(key, "ca-hash") == 0) {
		if (!hpq_pki_hash_valid(value))
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid ca-hash '%s': expected sha256: and 64 hex digits, "
					"as 'hpq node token create' prints it", value);
		config_str(&cfg->ca_hash, value);
	} else if (strcmp(key, "insecure") == 0) {
		if (config_bool(value, &b) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid insecure '%s': expected yes or no", value);
		cfg->insecure = b;
	} else if (strcmp(key, "name") == 0) {
		if (hpq_check_name(value) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid node name '%s': 1-%d characters "
					"[A-Za-z0-9._-], starting with a letter or digit", value,
					HPQ_NAME_MAX - 1);
		config_str(&cfg->name, value);
	} else if (strcmp(key, "pool") == 0) {
		if (hpq_check_name(value) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid pool name '%s': 1-%d characters "
					"[A-Za-z0-9._-], starting with a letter or digit", value,
					HPQ_NAME_MAX - 1);
		config_str(&cfg->pool, value);
	} else if (strcmp(key, "work-dir") == 0) {
		if (!value[0] || strlen(value) > 3000)
			return hpq_errf(err, errlen, HPQ_EINVAL, "invalid work-dir '%s'", value);
		config_str(&cfg->work_dir, value);
	} else if (strcmp(key, "key-file") == 0) {
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"key-file is no longer used: nodes join with a token instead of "
				"the cluster key: run 'hpq node token create' on the hpqd host, "
				"then start hpq-agent once with --join TOKEN --ca-hash sha256:... "
				"(see hpq-agent(8)); remove key-file");
	} else if (strcmp(key, "address") == 0) {
		if (!value[0] || strlen(value) > 255 || strpbrk(value, " \t/"))
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid address '%s': expected a host name or IP", value);
		config_str(&cfg->address, value);
	} else if (strcmp(key, "labels") == 0) {
		return config_labels(cfg, value, err, errlen);
	} else if (strcmp(key, "gpus") == 0) {
		return config_count(key, value, 4096, &cfg->gpus, err, errlen);
	} else if (strcmp(key, "cpus") == 0) {
		return config_count(key, value, 1u << 20, &cfg->cpus, err, errlen);
	} else if (strcmp(key, "mem") == 0) {
		if (hpq_parse_size_mib(value, &v) < 0 || v > (1ull << 40))
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid mem '%s': expected a size like 512M, 64G, 2T",
					value);
		cfg->mem = (int64_t)v;
	} else if (strcmp(key, "heartbeat") == 0) {
		if (hpq_parse_duration(value, &v) < 0 || v < 1 || v > 3600)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid heartbeat '%s': expected a duration from "
					"1s to 1h", value);
		cfg->heartbeat_s = v;
	} else if (strcmp(key, "health-dir") == 0) {
		if (!value[0] || strlen(value) > 3000)
			return hpq_errf(err, errlen, HPQ_EINVAL, "invalid health-dir '%s'", value);
		config_str(&cfg->health_dir, value);
	} else if (strcmp(key, "health-inject") == 0) {
		if (!value[0] || strlen(value) > 3000)
			return hpq_errf(err, errlen, HPQ_EINVAL, "invalid health-inject '%s'",
					value);
		config_str(&cfg->health_inject, value);
	} else if (strcmp(key, "health-disk") == 0) {
		return config_health_disks(cfg, value, err, errlen);
	} else if (strcmp(key, "health-interval") == 0) {
		return config_duration(key, value, 1, 86400, "1s to 1d", &cfg->health_interval_s,
				       err, errlen);
	} else if (strcmp(key, "health-timeout") == 0) {
		return config_duration(key, value, 1, 3600, "1s to 1h", &cfg->health_timeout_s, err,
				       errlen);
	} else if (strcmp(key, "health-threshold") == 0) {
		if (hpq_parse_uint(value, 1, 1000, &v) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid health-threshold '%s': expected a count "
					"from 1 to 1000", value);
		cfg->health_threshold = v;
	} else if (strcmp(key, "health-disk-warning") == 0) {
		return config_percent(key, value, &cfg->health_disk_warning, err, errlen);
	} else if (strcmp(key, "health-disk-fatal") == 0) {
		return config_percent(key, value, &cfg->health_disk_fatal, err, errlen);
	} else if (strcmp(key, "health-clock-warning") == 0) {
		return config_duration(key, value, 0, 86400, "0 (off) to 1d",
				       &cfg->health_clock_warning_s, err, errlen);
	} else if (strcmp(key, "health-clock-fatal") == 0) {
		return config_duration(key, value, 0, 86400, "0 (off) to 1d",
				       &cfg->health_clock_fatal_s, err, errlen);
	} else if (strcmp(key, "health-memory-pressure") == 0) {
		return config_percent(key, value, &cfg->health_memory_pressure, err, errlen);
	} else if (strcmp(key, "local-max-per-user") == 0) {
		if (hpq_parse_uint(value, 1, LOCAL_MAX_CLIENTS - LOCAL_ROOT_RESERVE, &v) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid local-max-per-user '%s': expected a count from "
					"1 to %d", value, LOCAL_MAX_CLIENTS - LOCAL_ROOT_RESERVE);
		cfg->local_max_per_user = v;
	} else if (strcmp(key, "local-idle-timeout") == 0) {
		return config_duration(key, value, 1, 3600, "1s to 1h", &cfg->local_idle_timeout_s,
				       err, errlen);
	} else if (strcmp(key, "log-level") == 0) {
		level = hpq_log_level_parse(value);
		if (level < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid log-level '%s': expected error, warning, "
					"notice, info or debug", value);
		cfg->log_level = level;
	} else if (strcmp(key, "foreground") == 0) {
		if (config_bool(value, &b) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid foreground '%s': expected yes or no", value);
		cfg->foreground = b;
	} else if (strcmp(key, "kill-tasks-on-exit") == 0) {
		if (config_bool(value, &b) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid kill-tasks-on-exit '%s': expected yes or no",
					value);
		cfg->kill_tasks_on_exit = b;
	} else if (strcmp(key, "allow-root-tasks") == 0) {
		if (config_bool(value, &b) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid allow-root-tasks '%s': expected yes or no",
					value);
		cfg->allow_root_tasks = b;
	} else if (strcmp(key, "cgroup") == 0) {
		enum cgroup_mode mode;

		if (cgroup_mode_parse(value, &mode) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid cgroup '%s': expected auto, required or off",
					value);
		cfg->cgroup_mode = mode;
	} else if (strcmp(key, "task-pids-max") == 0) {
		if (hpq_parse_uint(value, 16, 1u << 22, &v) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid task-pids-max '%s': expected a count from 16 "
					"to %u", value, 1u << 22);
		cfg->task_pids_max = v;
	} else {
		hpq_errf(err, errlen, HPQ_EINVAL, "unknown setting '%s'", key_in);
		return HPQ_ENOTFOUND;
	}
	return 0;
}

/* inifile.h calls this per key, in file order. */
static int config_ini_cb(void *user, const char *section, const char *name, const char *value,
			 char *err, size_t errlen)
{
	struct agent_config *cfg = user;

	if (section[0] && strcmp(section, "agent") != 0)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"unknown section [%s]; settings go in [agent] or before any "
				"section", section);
	return config_set(cfg, name, value, err, errlen) < 0 ? HPQ_EINVAL : 0;
}

int config_load(struct agent_config *cfg, const char *path, char *err, size_t errlen)
{
	return hpq_ini_load(path, config_ini_cb, cfg, err, errlen);
}

/* *path made absolute against the working directory. */
static int config_absolute(char **path, const char *what, char *err, size_t errlen)
{
	char cwd[PATH_MAX], *abs;

	if ((*path)[0] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)))
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"cannot resolve the relative %s '%s': %s; give an absolute path",
				what, *path, strerror(errno));
	xasprintf(&abs, "%s/%s", cwd, *path);
	free(*path);
	*path = abs;
	return 0;
}

/* A numeric loopback address: only this host can be on the other end. */
static bool config_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return ntohl(a4.s_addr) >> 24 == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* The settings about hpqd and how the agent proves its node, together. */
static int config_finish_trust(struct agent_config *cfg, char *err, size_t errlen)
{
	bool join = cfg->join_token || cfg->join_file;
	char host[256];
	uint16_t port;
	int r;

	if (config_server_is_path(cfg->server)) {
		r = config_absolute(&cfg->server, "server socket", err, errlen);
		if (r < 0)
			return r;
		if (strlen(cfg->server) > CONFIG_SOCKET_PATH_MAX)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"server socket path '%s' is longer than %d characters",
					cfg->server, CONFIG_SOCKET_PATH_MAX);
	}
	if (cfg->join_file) {
		r = config_absolute(&cfg->join_file, "join-file", err, errlen);
		if (r < 0)
			return r;
	}
	if (join && !cfg->ca_hash)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"--join needs --ca-hash sha256:..., the hash of the cluster CA that "
				"'hpq node token create' prints with the token: it is how the "
				"agent knows it joins the right hpqd");
	if (cfg->insecure && join)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"--join and --insecure do not go together: an --insecure hpqd "
				"takes nodes by the names they give; drop one of them");
	if (cfg->insecure && !config_server_is_path(cfg->server) &&
	    (hpq_split_hostport(cfg->server, 0, host, sizeof(host), &port) < 0 ||
	     !config_loopback(host)))
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"--insecure is allowed only with a loopback --server "
				"(127.0.0.1:PORT or [::1]:PORT), not '%s': without TLS anyone on "
				"the way could read and change what hpqd and the agent say",
				cfg->server);
	return 0;
}

int config_finish(struct agent_config *cfg, char *err, size_t errlen)
{
	char host[256];
	int r;

	r = config_finish_trust(cfg, err, errlen);
	if (r < 0)
		return r;
	if (cfg->health_disk_warning && cfg->health_disk_fatal > cfg->health_disk_warning)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"health-disk-fatal (%llu%%) is above health-disk-warning "
				"(%llu%%): fatal is the lower share of free space",
				(unsigned long long)cfg->health_disk_fatal,
				(unsigned long long)cfg->health_disk_warning);
	if (cfg->health_clock_fatal_s && cfg->health_clock_fatal_s < cfg->health_clock_warning_s)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"health-clock-fatal (%llus) is below health-clock-warning "
				"(%llus): fatal is the larger offset",
				(unsigned long long)cfg->health_clock_fatal_s,
				(unsigned long long)cfg->health_clock_warning_s);
	if (cfg->name)
		return 0;
	if (gethostname(host, sizeof(host)) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"cannot read the host name: %s; give --name", strerror(errno));
	host[sizeof(host) - 1] = '\0';
	host[strcspn(host, ".")] = '\0'; /* the short name, as Slurm's default */
	if (hpq_check_name(host) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"host name '%s' is not a valid node name; give --name", host);
	cfg->name = xstrdup(host);
	return 0;
}
