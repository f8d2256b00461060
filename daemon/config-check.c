/*
 * config-check.c: hpqd's settings against the system (config-check.h).
 * config.c checks each value alone, as it is read; this file checks what
 * needs the system or two settings together, and says where each value
 * came from. Nothing here changes anything on disk.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "config-check.h"
#include "error.h"
#include "inifile.h"
#include "parse.h"
#include "path.h"
#include "xalloc.h"

#define SOURCE_COLUMN 40

static int make_absolute(char **slot, const char *key, char *err, size_t errlen)
{
	char msg[512], *abs;
	int r;

	r = hpq_path_absolute(*slot, &abs, msg, sizeof(msg));
	if (r < 0)
		return hpq_errf(err, errlen, r, "%s: %s", key, msg);
	free(*slot);
	*slot = abs;
	return 0;
}

int config_make_absolute(struct config *c, char *err, size_t errlen)
{
	int r;

	r = make_absolute(&c->state_dir, "state_dir", err, errlen);
	if (r == 0)
		r = make_absolute(&c->socket_path, "socket", err, errlen);
	if (r == 0 && strlen(c->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		r = hpq_errf(err, errlen, HPQ_EINVAL,
			     "socket '%s' is too long for a Unix socket (at most %zu bytes): give "
			     "a shorter absolute path", c->socket_path,
			     sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return r;
}

/* HOST:PORT with HOST an IP address or empty (any), as the listeners take it. */
static bool ip_and_port(const char *addr, uint16_t *ret_port)
{
	char host[128];
	struct in6_addr a6;
	struct in_addr a4;

	if (!strchr(addr, ':') ||
	    hpq_split_hostport(addr, HPQ_HOSTPORT_LISTEN, host, sizeof(host), ret_port) < 0)
		return false;
	return !host[0] || inet_pton(AF_INET, host, &a4) == 1 ||
	       inet_pton(AF_INET6, host, &a6) == 1;
}

int config_fence_check(const struct config *c, char *err, size_t errlen)
{
	uint64_t unreachable = config_unreachable_ms(c), fence = config_fence_ms(c);

	if (!c->fence_after_ms)
		return 0;
	if (c->fence_after_ms < 2 * c->heartbeat_ms)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"[agents] fence_after (%llu s) must be at least two heartbeats "
				"(%llu s), or one late heartbeat stops every task",
				(unsigned long long)(c->fence_after_ms / 1000),
				(unsigned long long)(2 * c->heartbeat_ms / 1000));
	if (unreachable < fence)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"[agents] unreachable_after x heartbeat (%llu ms) must be at "
				"least 2 x fence_after + %d ms (%llu ms): a lost node's tasks "
				"are requeued only once their supervisors have surely killed "
				"them; raise unreachable_after or lower fence_after",
				(unsigned long long)unreachable, CONFIG_FENCE_MARGIN_MS,
				(unsigned long long)fence);
	return 0;
}

unsigned config_check(const struct config *c, FILE *f)
{
	uint16_t listen_port = 0, metrics_port = 0;
	unsigned problems = 0;
	char msg[512];

	if (*c->listen && !ip_and_port(c->listen, &listen_port)) {
		fprintf(f, "hpqd: listen '%s': give an IP address and a port (HOST:PORT, "
			"[ADDR]:PORT for IPv6, :PORT for any address)\n", c->listen);
		problems++;
	}
	if (*c->metrics && !ip_and_port(c->metrics, &metrics_port)) {
		fprintf(f, "hpqd: metrics '%s': give an IP address and a port (HOST:PORT, "
			"[ADDR]:PORT for IPv6)\n", c->metrics);
		problems++;
	}
	if (listen_port && listen_port == metrics_port) {
		fprintf(f, "hpqd: listen '%s' and metrics '%s' use the same port\n", c->listen,
			c->metrics);
		problems++;
	}
	if (hpq_path_check_dir(c->state_dir, msg, sizeof(msg)) < 0) {
		fprintf(f, "hpqd: state_dir '%s': %s\n", c->state_dir, msg);
		problems++;
	}
	if (*c->socket_path) {
		char *dir = xstrdup(c->socket_path), *slash = strrchr(dir, '/');

		if (!slash)
			strcpy(dir, ".");
		else if (slash == dir)
			dir[1] = '\0'; /* a socket in "/" */
		else
			*slash = '\0';
		if (strlen(c->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			fprintf(f, "hpqd: socket '%s': too long for a Unix socket (at most %zu "
				"bytes)\n", c->socket_path,
				sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
			problems++;
		} else if (hpq_path_check_dir(dir, msg, sizeof(msg)) < 0) {
			fprintf(f, "hpqd: socket '%s': %s\n", c->socket_path, msg);
			problems++;
		}
		free(dir);
	}
	if (config_fence_check(c, msg, sizeof(msg)) < 0) {
		fprintf(f, "hpqd: %s\n", msg);
		problems++;
	}
	if (*c->repair.command &&
	    hpq_path_check_executable(c->repair.command, msg, sizeof(msg)) < 0) {
		fprintf(f, "hpqd: [repair] command: %s\n", msg);
		problems++;
	}
	if (config_autoscale_check(c, msg, sizeof(msg)) < 0) {
		fprintf(f, "hpqd: %s\n", msg);
		problems++;
	}
	for (size_t i = 0; i < c->nautoscale; i++) {
		const struct autoscale_config *a = &c->autoscale[i];
		const char *cmds[2] = { a->provision_command, a->deprovision_command };

		for (int k = 0; k < 2; k++) {
			if (!*cmds[k] || hpq_path_check_executable(cmds[k], msg, sizeof(msg)) == 0)
				continue;
			fprintf(f, "hpqd: [autoscale.%s] %s: %s\n", a->pool,
				k ? "deprovision_command" : "provision_command", msg);
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

static void names_add(struct names *l, const char *section, const char *key)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	xasprintf(&l->v[l->n++], "%s.%s", section, key);
}

static bool names_has(char *const *v, size_t n, const char *section, const char *key)
{
	size_t sl = strlen(section);

	for (size_t i = 0; i < n; i++)
		if (!strncmp(v[i], section, sl) && v[i][sl] == '.' && !strcmp(v[i] + sl + 1, key))
			return true;
	return false;
}

/* The keys a file sets, under the names --check prints them by (inifile.h). */
static int on_file_key(void *user, const char *section, const char *name, const char *value,
		       char *err, size_t errlen)
{
	if (!*section)
		section = "hpqd";
	else if (!strcmp(section, "nodes"))
		section = "agents"; /* the same setting under another name */
	names_add(user, section, name);
	return 0;
}

void config_print_sources(FILE *out, const char *text, const char *config_path,
			  const char *const *options, size_t n)
{
	struct names file = {0};
	char section[128] = "";

	/* config_load has read it already; a file that changed since is
	 * only misattributed, never misread. */
	if (config_path)
		hpq_ini_load(config_path, on_file_key, &file, NULL, 0);
	for (const char *line = text; *line;) {
		size_t len = strcspn(line, "\n"), klen = strcspn(line, " =");
		const char *src;
		char key[256];

		if (line[0] == '[' && len >= 2 && len - 2 < sizeof(section)) {
			snprintf(section, sizeof(section), "%.*s", (int)(len - 2), line + 1);
			fprintf(out, "%.*s\n", (int)len, line);
		} else if (len && line[0] != '#' && line[0] != ';' && klen < len &&
			   klen < sizeof(key) && memchr(line, '=', len)) {
			snprintf(key, sizeof(key), "%.*s", (int)klen, line);
			if (names_has((char *const *)options, n, section, key))
				src = "option";
			else if (names_has(file.v, file.n, section, key))
				src = "file";
			else
				src = "default";
			fprintf(out, "%.*s%*s ; %s\n", (int)len, line,
				len < SOURCE_COLUMN ? (int)(SOURCE_COLUMN - len) : 0, "", src);
		} else {
			fprintf(out, "%.*s\n", (int)len, line);
		}
		line += len + (line[len] == '\n');
	}
	for (size_t i = 0; i < file.n; i++)
		free(file.v[i]);
	free(file.v);
}
