/*
 * test_agent_config.c: every agent setting is checked in one place
 * (config_set) for flags and agent.conf alike. Good values land, bad ones
 * are refused with a message and leave the setting as it was, and a bad
 * line in agent.conf is reported with its line number. The settings of
 * how a node reaches hpqd (TLS, joining, --insecure, a Unix socket) are
 * checked against each other by config_finish. For --check and detaching
 * (config-check.c): relative paths become absolute, the work and health
 * directories are checked against the system, and every printed setting
 * says where its value came from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config-check.h"
#include "config.h"
#include "error.h"
#include "log.h"

static void defaults(void **state)
{
	struct agent_config c;

	config_init(&c);
	assert_string_equal(c.server, "127.0.0.1:7420");
	assert_string_equal(c.pool, "default");
	assert_string_equal(c.work_dir, "/var/lib/hpq-agent");
	assert_null(c.name);
	assert_null(c.join_token);
	assert_null(c.join_file);
	assert_null(c.ca_hash);
	assert_null(c.server_name);
	assert_false(c.insecure);
	assert_int_equal(c.gpus, -1);
	assert_int_equal(c.cpus, -1);
	assert_int_equal(c.mem, -1);
	assert_int_equal(c.heartbeat_s, 10);
	assert_false(c.kill_tasks_on_exit);
	config_release(&c);
}

static void good_values(void **state)
{
	struct agent_config c;
	char err[256];

	config_init(&c);
	assert_int_equal(config_set(&c, "server", "10.0.0.1:7000", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "server", "[::1]:7420", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "server", "head", err, sizeof(err)), 0);
	assert_string_equal(c.server, "head");
	assert_int_equal(config_set(&c, "name", "gpu-node-01.rack2", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "pool", "p5.48xlarge", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "work_dir", "/srv/hpq", err, sizeof(err)), 0);
	assert_string_equal(c.work_dir, "/srv/hpq");
	assert_int_equal(config_set(&c, "gpus", "8", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "cpus", "0", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "mem", "64G", err, sizeof(err)), 0);
	assert_int_equal(c.gpus, 8);
	assert_int_equal(c.cpus, 0);
	assert_int_equal(c.mem, 65536);
	assert_int_equal(config_set(&c, "heartbeat", "2s", err, sizeof(err)), 0);
	assert_int_equal(c.heartbeat_s, 2);
	assert_int_equal(config_set(&c, "log-level", "debug", err, sizeof(err)), 0);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(config_set(&c, "kill-tasks-on-exit", "yes", err, sizeof(err)), 0);
	assert_true(c.kill_tasks_on_exit);
	assert_int_equal(config_set(&c, "labels", " zone=a , ib,nvlink ", err, sizeof(err)), 0);
	assert_int_equal(c.nlabels, 3);
	assert_string_equal(c.labels[0], "zone=a");
	assert_string_equal(c.labels[1], "ib");
	assert_string_equal(c.labels[2], "nvlink");
	assert_int_equal(config_set(&c, "address", "10.1.2.3", err, sizeof(err)), 0);
	assert_string_equal(c.address, "10.1.2.3");
	config_release(&c);
}

#define HASH "sha256:00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF"

static void trust_values(void **state)
{
	struct agent_config c;
	char err[512];

	config_init(&c);
	assert_int_equal(config_set(&c, "server", "/run/hpq/hpqd.sock", err, sizeof(err)), 0);
	assert_true(config_server_is_path(c.server));
	assert_false(config_server_is_path("head:7420"));
	assert_int_equal(config_set(&c, "server-name", "hpq-master.example.org", err,
				    sizeof(err)), 0);
	assert_int_equal(config_set(&c, "server_name", "10.0.0.1", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "server-name", "fd00::1", err, sizeof(err)), 0);
	assert_string_equal(c.server_name, "fd00::1");
	assert_int_equal(config_set(&c, "join", "hpq1.abc.def", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "join_token", "hpq1.id2.secret2", err, sizeof(err)), 0);
	assert_string_equal(c.join_token, "hpq1.id2.secret2");
	assert_int_equal(config_set(&c, "join-file", "/etc/hpq/join", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "join_token_file", "/etc/hpq/join2", err, sizeof(err)),
			 0);
	assert_string_equal(c.join_file, "/etc/hpq/join2");
	assert_int_equal(config_set(&c, "ca_hash", HASH, err, sizeof(err)), 0);
	assert_string_equal(c.ca_hash, HASH);
	assert_int_equal(config_set(&c, "insecure", "yes", err, sizeof(err)), 0);
	assert_true(c.insecure);
	config_release(&c);
}

static void bad_trust_values_change_nothing(void **state)
{
	struct agent_config c;
	char err[512], longpath[200];

	config_init(&c);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(config_set(&c, "server", longpath, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "socket path"));
	assert_string_equal(c.server, "127.0.0.1:7420");
	assert_int_equal(config_set(&c, "server-name", "a b", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "server-name", "", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "server-name", "-x", err, sizeof(err)), HPQ_EINVAL);
	assert_null(c.server_name);
	assert_int_equal(config_set(&c, "join", "", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "join", "secret", err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "hpq1.ID.SECRET"));
	assert_null(strstr(err, "secret")); /* a token is never echoed */
	assert_int_equal(config_set(&c, "join", "hpq1.a b", err, sizeof(err)), HPQ_EINVAL);
	assert_null(c.join_token);
	assert_int_equal(config_set(&c, "join-file", "", err, sizeof(err)), HPQ_EINVAL);
	assert_null(c.join_file);
	assert_int_equal(config_set(&c, "ca-hash", "sha256:1234", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "ca-hash", "md5:" "00112233445566778899aabbccddeeff",
				    err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "sha256:"));
	assert_null(c.ca_hash);
	assert_int_equal(config_set(&c, "insecure", "perhaps", err, sizeof(err)), HPQ_EINVAL);
	assert_false(c.insecure);
	config_release(&c);
}

/* The cluster key is gone; whoever still sets it learns what replaced it. */
static void key_file_is_gone(void **state)
{
	struct agent_config c;
	char err[512];
	char *path = NULL;
	FILE *f;

	config_init(&c);
	assert_int_equal(config_set(&c, "key-file", "/etc/hpq/cluster.key", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_non_null(strstr(err, "hpq node token create"));
	assert_non_null(strstr(err, "--join TOKEN --ca-hash"));
	path = strdup("/tmp/test_agent_config.XXXXXX");
	f = fdopen(mkstemp(path), "w");
	assert_non_null(f);
	fputs("[agent]\nkey_file = /etc/hpq/cluster.key\n", f);
	fclose(f);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, ":2: key-file is no longer used"));
	unlink(path);
	free(path);
	config_release(&c);
}

/* config_finish on a config with these settings: its result and err. */
static int finish_with(const char *const *kv, char *err, size_t errlen,
		       struct agent_config *ret)
{
	int r;

	config_init(ret);
	assert_int_equal(config_set(ret, "name", "n1", err, errlen), 0);
	for (; kv[0]; kv += 2)
		assert_int_equal(config_set(ret, kv[0], kv[1], err, errlen), 0);
	r = config_finish(ret, err, errlen);
	return r;
}

static void finish_checks_trust(void **state)
{
	struct agent_config c;
	char err[512], cwd[4096], want[4200];

	/* --join needs the pin. */
	assert_int_equal(finish_with((const char *[]){"join", "hpq1.a.b", NULL}, err,
				     sizeof(err), &c), HPQ_EINVAL);
	assert_non_null(strstr(err, "--ca-hash"));
	config_release(&c);
	assert_int_equal(finish_with((const char *[]){"join-file", "/x", NULL}, err,
				     sizeof(err), &c), HPQ_EINVAL);
	config_release(&c);
	assert_int_equal(finish_with((const char *[]){"join", "hpq1.a.b", "ca-hash", HASH,
						      NULL}, err, sizeof(err), &c), 0);
	config_release(&c);
	/* Both: --join wins (uplink.c), and neither is an error. */
	assert_int_equal(finish_with((const char *[]){"join", "hpq1.a.b", "join-file", "/x",
						      "ca-hash", HASH, NULL}, err, sizeof(err),
				     &c), 0);
	config_release(&c);
	/* --insecure: loopback only, and never with --join. */
	assert_int_equal(finish_with((const char *[]){"insecure", "yes", NULL}, err,
				     sizeof(err), &c), 0);
	config_release(&c);
	assert_int_equal(finish_with((const char *[]){"insecure", "yes", "server", "[::1]:7000",
						      NULL}, err, sizeof(err), &c), 0);
	config_release(&c);
	assert_int_equal(finish_with((const char *[]){"insecure", "yes", "server",
						      "10.0.0.1:7420", NULL}, err, sizeof(err),
				     &c), HPQ_EINVAL);
	assert_non_null(strstr(err, "loopback"));
	config_release(&c);
	assert_int_equal(finish_with((const char *[]){"insecure", "yes", "server", "localhost",
						      NULL}, err, sizeof(err), &c), HPQ_EINVAL);
	config_release(&c);
	assert_int_equal(finish_with((const char *[]){"insecure", "yes", "join", "hpq1.a.b",
						      "ca-hash", HASH, NULL}, err, sizeof(err),
				     &c), HPQ_EINVAL);
	assert_non_null(strstr(err, "--insecure"));
	config_release(&c);
	/* Relative paths are made absolute before the agent leaves its directory. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(finish_with((const char *[]){"server", "./hpqd.sock", "join-file",
						      "tok/en", "ca-hash", HASH, NULL}, err,
				     sizeof(err), &c), 0);
	snprintf(want, sizeof(want), "%s/tok/en", cwd);
	assert_string_equal(c.join_file, want);
	if (strlen(cwd) + 12 <= CONFIG_SOCKET_PATH_MAX) {
		snprintf(want, sizeof(want), "%s/./hpqd.sock", cwd);
		assert_string_equal(c.server, want);
	}
	config_release(&c);
}

static void bad_values_change_nothing(void **state)
{
	struct agent_config c;
	char err[256];

	config_init(&c);
	err[0] = '\0';
	assert_int_equal(config_set(&c, "server", "host:0", err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "host:0"));
	assert_int_equal(config_set(&c, "server", "host:99999", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "server", ":7420", err, sizeof(err)), HPQ_EINVAL);
	assert_string_equal(c.server, "127.0.0.1:7420");
	assert_int_equal(config_set(&c, "name", "-bad", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "name", "a b", err, sizeof(err)), HPQ_EINVAL);
	assert_null(c.name);
	assert_int_equal(config_set(&c, "pool", "", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "gpus", "-1", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "gpus", "4097", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "cpus", "two", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "mem", "lots", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(c.gpus, -1);
	assert_int_equal(c.cpus, -1);
	assert_int_equal(c.mem, -1);
	assert_int_equal(config_set(&c, "heartbeat", "0", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "heartbeat", "2h", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(c.heartbeat_s, 10);
	assert_int_equal(config_set(&c, "log-level", "chatty", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "kill-tasks-on-exit", "maybe", err, sizeof(err)),
			 HPQ_EINVAL);
	assert_int_equal(config_set(&c, "labels", "ok,not ok", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(c.nlabels, 0);
	assert_int_equal(config_set(&c, "address", "a b", err, sizeof(err)), HPQ_EINVAL);
	assert_int_equal(config_set(&c, "colour", "blue", err, sizeof(err)), HPQ_ENOTFOUND);
	assert_non_null(strstr(err, "colour"));
	config_release(&c);
}

static char *write_file(const char *text)
{
	char *path = strdup("/tmp/test_agent_config.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void file_with_section(void **state)
{
	struct agent_config c;
	char err[256];
	char *path = write_file("; agent.conf\n"
				"server = 10.0.0.5:7420\n"
				"[agent]\n"
				"name = n7\n"
				"work_dir = /srv/agent   ; inline comment\n"
				"gpus = 2\n");

	config_init(&c);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.server, "10.0.0.5:7420");
	assert_string_equal(c.name, "n7");
	assert_string_equal(c.work_dir, "/srv/agent");
	assert_int_equal(c.gpus, 2);
	config_release(&c);
	unlink(path);
	free(path);
}

static void file_errors_name_the_line(void **state)
{
	struct agent_config c;
	char err[256], want[300];
	char *bad_value = write_file("name = n1\n\ngpus = many\n");
	char *bad_section = write_file("[agent]\nname = n1\n[daemon]\nport = 1\n");
	char *bad_key = write_file("nmae = n1\n");

	config_init(&c);
	assert_int_equal(config_load(&c, bad_value, err, sizeof(err)), HPQ_EINVAL);
	snprintf(want, sizeof(want), "%s:3: invalid gpus 'many'", bad_value);
	assert_non_null(strstr(err, want));
	assert_int_equal(config_load(&c, bad_section, err, sizeof(err)), HPQ_EINVAL);
	snprintf(want, sizeof(want), "%s:4: unknown section [daemon]", bad_section);
	assert_non_null(strstr(err, want));
	assert_int_equal(config_load(&c, bad_key, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "unknown setting 'nmae'"));
	assert_true(config_load(&c, "/nonexistent/agent.conf", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "cannot open"));
	config_release(&c);
	unlink(bad_value);
	unlink(bad_section);
	unlink(bad_key);
	free(bad_value);
	free(bad_section);
	free(bad_key);
}

/* A syntax error, then a bad value: the error names line 2 and what is wrong
 * there, not line 2 with line 3's message. */
static void file_error_line_matches_message(void **state)
{
	struct agent_config c;
	char err[256], want[300];
	char *path = write_file("name = n1\nthis is no setting\ngpus = many\n");

	config_init(&c);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), HPQ_EINVAL);
	snprintf(want, sizeof(want), "%s:2: syntax error", path);
	if (!strstr(err, want))
		fail_msg("'%s' does not say line 2 is a syntax error", err);
	config_release(&c);
	unlink(path);
	free(path);
}

/* A continuation line (leading blank) must not silently replace the list
 * the line before set: "labels = ib," "  nvlink" is both, or an error. */
static void file_continuation_keeps_list(void **state)
{
	struct agent_config c;
	char err[256];
	char *path = write_file("labels = ib,\n  nvlink\n");
	int r;

	config_init(&c);
	r = config_load(&c, path, err, sizeof(err));
	if (r == 0 && !(c.nlabels == 2 && !strcmp(c.labels[0], "ib")))
		fail_msg("labels = ib,<newline>  nvlink was read as %zu label(s), the first '%s'",
			 c.nlabels, c.nlabels ? c.labels[0] : "");
	config_release(&c);
	unlink(path);
	free(path);
}

static void finish_names_the_node(void **state)
{
	struct agent_config c;
	char err[256];

	config_init(&c);
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	assert_non_null(c.name);
	assert_null(strchr(c.name, '.')); /* the short host name */
	config_release(&c);
}

static void check_make_absolute(void **state)
{
	struct agent_config c;
	char err[512], cwd[256], want[300];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	config_init(&c);
	assert_int_equal(config_set(&c, "work-dir", "relwd", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "health-dir", "./health.d", err, sizeof(err)), 0);
	assert_int_equal(config_make_absolute(&c, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/relwd", cwd);
	assert_string_equal(c.work_dir, want);
	snprintf(want, sizeof(want), "%s/health.d", cwd);
	assert_string_equal(c.health_dir, want);
	assert_null(c.health_inject); /* unset stays unset */
	config_release(&c);
}

static char *check_text(const struct agent_config *c, unsigned *ret_n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	*ret_n = config_check(c, f);
	fclose(f);
	return text;
}

static void check_against_the_system(void **state)
{
	struct agent_config c;
	char err[256], dir[] = "/tmp/hpq-test-acheck-XXXXXX", path[300];
	char *file, *text;
	unsigned n;

	assert_non_null(mkdtemp(dir));
	config_init(&c);
	assert_int_equal(config_set(&c, "server", "127.0.0.1:7420", err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/work", dir);
	assert_int_equal(config_set(&c, "work-dir", path, err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "health-dir", dir, err, sizeof(err)), 0);
	/* Over TCP a node without a certificate must have a way to join. */
	text = check_text(&c, &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr(text, "the node must join first"));
	free(text);
	assert_int_equal(config_set(&c, "join", "hpq1.0123456789ab.0123456789abcdef0123456789abcdef",
				    err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "ca-hash", "sha256:0123456789abcdef0123456789abcdef"
				    "0123456789abcdef0123456789abcdef", err, sizeof(err)), 0);
	text = check_text(&c, &n);
	if (n != 0)
		fail_msg("a good configuration has problems:\n%s", text);
	assert_non_null(strstr(text, "not joined yet"));
	free(text);

	file = write_file("not a directory\n");
	assert_int_equal(config_set(&c, "work-dir", file, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(config_set(&c, "health-dir", path, err, sizeof(err)), 0);
	text = check_text(&c, &n);
	assert_int_equal(n, 2);
	assert_non_null(strstr(text, "hpq-agent: work-dir"));
	assert_non_null(strstr(text, "is not a directory"));
	assert_non_null(strstr(text, "hpq-agent: health-dir"));
	assert_non_null(strstr(text, "No such file or directory"));
	free(text);
	assert_int_equal(config_set(&c, "health-dir", file, err, sizeof(err)), 0);
	text = check_text(&c, &n);
	assert_non_null(strstr(text, "not a directory"));
	free(text);
	config_release(&c);
	unlink(file);
	free(file);
	rmdir(dir);
}

/* The line of key in text (up to its newline), or fails. */
static char *line_of(const char *text, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);

	for (const char *l = text; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] == '\n')) {
		if (!strncmp(l, key, klen) && l[klen] == ' ') {
			snprintf(buf, len, "%.*s", (int)strcspn(l, "\n"), l);
			return buf;
		}
	}
	fail_msg("no line for '%s' in:\n%s", key, text);
	return NULL;
}

static void print_sources(void **state)
{
	struct agent_config c;
	char err[256], buf[256], *text = NULL;
	char *file = write_file("[agent]\nwork_dir = /srv/agent\npool = p5\ncpus = 3\n");
	const char *options[] = {"pool", "foreground", "log-level"};
	size_t len = 0;
	FILE *f;

	config_init(&c);
	assert_int_equal(config_load(&c, file, err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "pool", "p6", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "foreground", "yes", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "log-level", "debug", err, sizeof(err)), 0);
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	f = open_memstream(&text, &len);
	config_print(&c, (struct hpq_res){4, 64, 2048}, file, options, 3, f);
	fclose(f);
	assert_memory_equal(text, "[agent]\n", 8);
	assert_string_equal(line_of(text, "server", buf, sizeof(buf)),
			    "server = 127.0.0.1:7420                  ; default");
	assert_string_equal(line_of(text, "pool", buf, sizeof(buf)),
			    "pool = p6                                ; option");
	assert_string_equal(line_of(text, "work-dir", buf, sizeof(buf)),
			    "work-dir = /srv/agent                    ; file");
	assert_string_equal(line_of(text, "cpus", buf, sizeof(buf)),
			    "cpus = 3                                 ; file");
	assert_string_equal(line_of(text, "gpus", buf, sizeof(buf)),
			    "gpus = 4                                 ; detected");
	assert_string_equal(line_of(text, "mem", buf, sizeof(buf)),
			    "mem = 2G                                 ; detected");
	assert_non_null(strstr(line_of(text, "name", buf, sizeof(buf)), "; detected"));
	assert_string_equal(line_of(text, "log-level", buf, sizeof(buf)),
			    "log-level = debug                        ; option");
	assert_string_equal(line_of(text, "foreground", buf, sizeof(buf)),
			    "foreground = yes                         ; option");
	assert_string_equal(line_of(text, "#address", buf, sizeof(buf)),
			    "#address =                               ; default (none)");
	assert_string_equal(line_of(text, "health-disk-warning", buf, sizeof(buf)),
			    "health-disk-warning = 10%                ; default");
	free(text);
	config_release(&c);

	/* What it prints reads back as the same settings. */
	text = NULL;
	f = open_memstream(&text, &len);
	config_init(&c);
	assert_int_equal(config_load(&c, file, err, sizeof(err)), 0);
	assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
	config_print(&c, (struct hpq_res){4, 64, 2048}, NULL, NULL, 0, f);
	fclose(f);
	config_release(&c);
	unlink(file);
	free(file);
	file = write_file(text);
	free(text);
	config_init(&c);
	assert_int_equal(config_load(&c, file, err, sizeof(err)), 0);
	assert_string_equal(c.work_dir, "/srv/agent");
	assert_int_equal(c.cpus, 3);
	assert_int_equal(c.gpus, 4);
	assert_int_equal(c.mem, 2048);
	assert_int_equal(c.heartbeat_s, 10);
	assert_null(c.address);
	config_release(&c);
	unlink(file);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults),
		cmocka_unit_test(good_values),
		cmocka_unit_test(bad_values_change_nothing),
		cmocka_unit_test(trust_values),
		cmocka_unit_test(bad_trust_values_change_nothing),
		cmocka_unit_test(key_file_is_gone),
		cmocka_unit_test(finish_checks_trust),
		cmocka_unit_test(file_with_section),
		cmocka_unit_test(file_errors_name_the_line),
		cmocka_unit_test(file_error_line_matches_message),
		cmocka_unit_test(file_continuation_keeps_list),
		cmocka_unit_test(finish_names_the_node),
		cmocka_unit_test(check_make_absolute),
		cmocka_unit_test(check_against_the_system),
		cmocka_unit_test(print_sources),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
