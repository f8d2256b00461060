/*
 * config-check.c: the agent's settings against the system
 * (config-check.h). config.c checks each value alone, as it is read; this
 * file checks what needs the system, and says where each value came from.
 * Nothing here changes anything on disk.
 */
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "clock.h"
#include "config-check.h"
#include "credentials.h"
#include "error.h"
#include "inifile.h"
#include "log.h"
#include "parse.h"
#include "path.h"
#include "pki.h"
#include "xalloc.h"

#define SOURCE_COLUMN 40

static int make_absolute(char **slot, const char *key, char *err, size_t errlen)
{
	char msg[512], *abs;
	int r;

	if (!*slot)
		return 0;
	r = hpq_path_absolute(*slot, &abs, msg, sizeof(msg));
	if (r < 0)
		return hpq_errf(err, errlen, r, "%s: %s", key, msg);
	free(*slot);
	*slot = abs;
	return 0;
}

int config_make_absolute(struct agent_config *cfg, char *err, size_t errlen)
{
	int r;

	r = make_absolute(&cfg->work_dir, "work-dir", err, errlen);
	if (r == 0)
		r = make_absolute(&cfg->health_dir, "health-dir", err, errlen);
	if (r == 0)
		r = make_absolute(&cfg->health_inject, "health-inject", err, errlen);
	for (size_t i = 0; r == 0 && i < cfg->nhealth_disks; i++)
		r = make_absolute(&cfg->health_disks[i], "health-disk", err, errlen);
	return r;
}

/* Whether host resolves; says why not in f. */
static bool resolves(const char *key, const char *value, const char *host, FILE *f)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int r;

	r = getaddrinfo(host, NULL, &hints, &res);
	if (res)
		freeaddrinfo(res);
	if (r == 0)
		return true;
	fprintf(f, "hpq-agent: %s '%s': cannot resolve '%s': %s\n", key, value, host,
		r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
	return false;
}

/*
 * Over TCP the node needs its certificate, or a way to get one: what is in
 * WORK-DIR/tls is read as the agent would read it (making nothing), and
 * reported on stderr with the check's other findings. Returns the number
 * of problems.
 */
static unsigned check_credentials(const struct agent_config *cfg, FILE *f)
{
	struct hpq_cert_info info;
	char *path, *text = NULL, *key = NULL, *cert = NULL, err[512], when[64];
	unsigned problems = 0;
	size_t len;

	xasprintf(&path, "%s/%s/%s", cfg->work_dir, CREDS_DIR, CREDS_NODE_FILE);
	if (access(path, F_OK) < 0) {
		if (!cfg->join_token && !cfg->join_file) {
			fprintf(f, "hpq-agent: no certificate in '%s' and no --join: over TCP "
				"the node must join first (hpq node token create on hpqd's host, "
				"then --join TOKEN --ca-hash sha256:...)\n", path);
			problems++;
		} else if (!cfg->ca_hash) {
			fprintf(f, "hpq-agent: --join needs --ca-hash\n");
			problems++;
		} else {
			fprintf(f, "hpq-agent: not joined yet: joins at start with the token\n");
		}
	} else if (hpq_pki_read_private(path, &text, &len, err, sizeof(err)) < 0 ||
		   creds_split_node(text, &key, &cert, err, sizeof(err)) < 0 ||
		   hpq_pki_cert_info(cert, strlen(cert), &info, err, sizeof(err)) < 0) {
		fprintf(f, "hpq-agent: %s\n", err);
		problems++;
	} else if (strcmp(info.cn, cfg->name)) {
		fprintf(f, "hpq-agent: '%s' is node %s's certificate, not %s's\n", path, info.cn,
			cfg->name);
		problems++;
	} else {
		hpq_utc_text(info.not_after * 1000, when, sizeof(when));
		fprintf(f, "hpq-agent: joined as node %s%s%s; certificate valid until %s\n",
			info.cn, *info.ou ? " in pool " : "", info.ou, when);
		if (info.not_after <= (int64_t)time(NULL)) {
			fprintf(f, "hpq-agent: the certificate has expired: remove '%s/%s' and join "
				"again with a new token\n", cfg->work_dir, CREDS_DIR);
			problems++;
		}
	}
	if (text)
		explicit_bzero(text, len);
	if (key)
		explicit_bzero(key, strlen(key));
	free(text);
	free(key);
	free(cert);
	free(path);
	return problems;
}

unsigned config_check(const struct agent_config *cfg, FILE *f)
{
	unsigned problems = 0;
	char host[256], msg[512];
	struct stat st;
	uint16_t port;

	if (strchr(cfg->server, '/')) {
		/* hpqd's Unix socket, on hpqd's own host. */
		if (stat(cfg->server, &st) < 0 || !S_ISSOCK(st.st_mode)) {
			fprintf(f, "hpq-agent: server '%s': %s\n", cfg->server,
				errno == ENOENT ? "no such socket (is hpqd running here?)"
						: "not a socket");
			problems++;
		}
	} else if (hpq_split_hostport(cfg->server, 0, host, sizeof(host), &port) < 0) {
		fprintf(f, "hpq-agent: server '%s': give HOST:PORT or hpqd's socket path\n",
			cfg->server);
		problems++;
	} else if (!resolves("server", cfg->server, host, f)) {
		problems++;
	} else if (!cfg->insecure) {
		problems += check_credentials(cfg, f);
	}
	if (cfg->address && !resolves("address", cfg->address, cfg->address, f))
		problems++;
	if (hpq_path_check_dir(cfg->work_dir, msg, sizeof(msg)) < 0) {
		fprintf(f, "hpq-agent: work-dir '%s': %s\n", cfg->work_dir, msg);
		problems++;
	}
	if (cfg->health_dir) {
		if (stat(cfg->health_dir, &st) < 0) {
			fprintf(f, "hpq-agent: health-dir '%s': %s\n", cfg->health_dir,
				strerror(errno));
			problems++;
		} else if (!S_ISDIR(st.st_mode)) {
			fprintf(f, "hpq-agent: health-dir '%s': not a directory\n", cfg->health_dir);
			problems++;
		} else if (access(cfg->health_dir, R_OK | X_OK) < 0) {
			fprintf(f, "hpq-agent: health-dir '%s': uid %ld cannot read it: %s\n",
				cfg->health_dir, (long)geteuid(), strerror(errno));
			problems++;
		}
	}
	/* Missing now, it would be a finding (disk-error) every round. */
	for (size_t i = 0; i < cfg->nhealth_disks; i++) {
		if (stat(cfg->health_disks[i], &st) < 0) {
			fprintf(f, "hpq-agent: health-disk '%s': %s\n", cfg->health_disks[i],
				strerror(errno));
			problems++;
		}
	}
	return problems;
}

/* ---------------------------------------------------------------- sources */

struct names {
	char **v;
	size_t n;
};

/* Setting names as config_set takes them: '_' is '-'. */
static char *name_norm(const char *name)
{
	char *s = xstrdup(name);

	for (char *p = s; *p; p++)
		if (*p == '_')
			*p = '-';
	return s;
}

static bool names_has(const struct names *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], key))
			return true;
	return false;
}

static int on_file_key(void *user, const char *section, const char *name, const char *value,
		       char *err, size_t errlen)
{
	struct names *l = user;

	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = name_norm(name);
	return 0;
}

struct printer {
	FILE *out;
	struct names options, file;
};

/* "key = value ; source"; a NULL value is printed commented out. detected:
 * the source when neither an option nor the file gave the value. */
static void put(struct printer *p, const char *key, const char *value, const char *detected)
{
	const char *src = detected ? detected : "default";
	char *line;
	int n;

	if (names_has(&p->options, key))
		src = "option";
	else if (names_has(&p->file, key))
		src = "file";
	n = xasprintf(&line, "%s%s =%s%s", value ? "" : "#", key, value && *value ? " " : "",
		      value ? value : "");
	fprintf(p->out, "%s%*s ; %s%s\n", line, n < SOURCE_COLUMN ? SOURCE_COLUMN - n : 0, "",
		src, value ? "" : " (none)");
	free(line);
}

static void put_u(struct printer *p, const char *key, uint64_t v, const char *suffix)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu%s", (unsigned long long)v, suffix);
	put(p, key, buf, NULL);
}

static void put_duration(struct printer *p, const char *key, uint64_t seconds)
{
	char buf[32];

	put(p, key, hpq_format_duration(seconds, buf, sizeof(buf)), NULL);
}

static void put_bool(struct printer *p, const char *key, bool v)
{
	put(p, key, v ? "yes" : "no", NULL);
}

void config_print(const struct agent_config *cfg, struct hpq_res capacity,
		  const char *config_path, const char *const *options, size_t n, FILE *out)
{
	static const char *const levels[] = {"emerg", "alert", "crit", "error", "warning",
					     "notice", "info", "debug"};
	struct printer p = {.out = out};
	char buf[64], *labels;
	size_t len = 1;

	for (size_t i = 0; i < n; i++) {
		p.options.v = xreallocarray(p.options.v, p.options.n + 1, sizeof(char *));
		p.options.v[p.options.n++] = name_norm(options[i]);
	}
	/* load_settings has read it already; a file that changed since is
	 * only misattributed, never misread. */
	if (config_path)
		hpq_ini_load(config_path, on_file_key, &p.file, NULL, 0);

	fprintf(out, "[agent]\n");
	put(&p, "server", cfg->server, NULL);
	put(&p, "server-name", cfg->server_name, NULL);
	/* The token's secret is not for printouts: its public ID is enough. */
	if (cfg->join_token) {
		const char *dot = strrchr(cfg->join_token, '.');

		snprintf(buf, sizeof(buf), "%.*s.(secret not shown)",
			 dot ? (int)(dot - cfg->join_token) : 4, cfg->join_token);
		put(&p, "join", buf, NULL);
	} else {
		put(&p, "join", NULL, NULL);
	}
	put(&p, "join-file", cfg->join_file, NULL);
	put(&p, "ca-hash", cfg->ca_hash, NULL);
	put_bool(&p, "insecure", cfg->insecure);
	put(&p, "name", cfg->name, "detected (the host name)");
	put(&p, "pool", cfg->pool, NULL);
	put(&p, "work-dir", cfg->work_dir, NULL);
	snprintf(buf, sizeof(buf), "%lld", (long long)(cfg->gpus >= 0 ? cfg->gpus : capacity.gpus));
	put(&p, "gpus", buf, cfg->gpus >= 0 ? NULL : "detected");
	snprintf(buf, sizeof(buf), "%lld", (long long)(cfg->cpus >= 0 ? cfg->cpus : capacity.cpus));
	put(&p, "cpus", buf, cfg->cpus >= 0 ? NULL : "detected");
	hpq_format_size_mib((uint64_t)(cfg->mem >= 0 ? cfg->mem : capacity.mem), buf, sizeof(buf));
	put(&p, "mem", buf, cfg->mem >= 0 ? NULL : "detected");
	for (size_t i = 0; i < cfg->nlabels; i++)
		len += strlen(cfg->labels[i]) + 1;
	labels = xcalloc(1, len);
	for (size_t i = 0; i < cfg->nlabels; i++)
		strcat(strcat(labels, i ? "," : ""), cfg->labels[i]);
	put(&p, "labels", labels, NULL);
	free(labels);
	put(&p, "address", cfg->address, NULL);
	put_duration(&p, "heartbeat", cfg->heartbeat_s);
	put(&p, "health-dir", cfg->health_dir, NULL);
	len = 1;
	for (size_t i = 0; i < cfg->nhealth_disks; i++)
		len += strlen(cfg->health_disks[i]) + 1;
	labels = xcalloc(1, len);
	for (size_t i = 0; i < cfg->nhealth_disks; i++)
		strcat(strcat(labels, i ? "," : ""), cfg->health_disks[i]);
	put(&p, "health-disk", cfg->nhealth_disks ? labels : NULL, NULL);
	free(labels);
	put_duration(&p, "health-interval", cfg->health_interval_s);
	put_duration(&p, "health-timeout", cfg->health_timeout_s);
	put_u(&p, "health-threshold", cfg->health_threshold, "");
	put_u(&p, "health-disk-warning", cfg->health_disk_warning, "%");
	put_u(&p, "health-disk-fatal", cfg->health_disk_fatal, "%");
	put_duration(&p, "health-clock-warning", cfg->health_clock_warning_s);
	put_duration(&p, "health-clock-fatal", cfg->health_clock_fatal_s);
	put_u(&p, "health-memory-pressure", cfg->health_memory_pressure, "%");
	put(&p, "health-inject", cfg->health_inject, NULL);
	put_u(&p, "local-max-per-user", cfg->local_max_per_user, "");
	put_duration(&p, "local-idle-timeout", cfg->local_idle_timeout_s);
	put(&p, "log-level", levels[cfg->log_level & 7], NULL);
	put_bool(&p, "kill-tasks-on-exit", cfg->kill_tasks_on_exit);
	put_bool(&p, "allow-root-tasks", cfg->allow_root_tasks);
	put(&p, "cgroup", cgroup_mode_name(cfg->cgroup_mode), NULL);
	put_u(&p, "task-pids-max", cfg->task_pids_max, "");
	put_bool(&p, "foreground", cfg->foreground);

	for (size_t i = 0; i < p.options.n; i++)
		free(p.options.v[i]);
	for (size_t i = 0; i < p.file.n; i++)
		free(p.file.v[i]);
	free(p.options.v);
	free(p.file.v);
}
