/*
 * config.c: hpqd's settings (config.h). The INI file is read with inih;
 * each key goes through config_set, the same path the command-line flags
 * take, so "heartbeat = 0" in a file and "--heartbeat 0" are rejected with
 * the same words. Unknown sections and keys are errors, not silence: a
 * typo in a daemon's config should stop it at start, not change nothing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "error.h"
#include "hpq.h"
#include "log.h"
#include "parse.h"
#include "xalloc.h"

#define DEFAULT_HEARTBEAT_MS 10000
#define DEFAULT_UNREACHABLE_AFTER 3

void config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	xasprintf(&c->listen, "0.0.0.0:%d", HPQ_DEFAULT_PORT);
	c->socket_path = xstrdup(HPQ_DEFAULT_SOCKET);
	c->state_dir = xstrdup(HPQ_DEFAULT_STATE_DIR);
	c->log_level = LOG_INFO;
	c->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
	c->unreachable_after = DEFAULT_UNREACHABLE_AFTER;
	c->events_retain_s = 30 * 24 * 3600;
	c->metrics = xstrdup("");
}

static void free_admins(struct config *c)
{
	for (size_t i = 0; i < c->nadmins; i++)
		free(c->admins[i]);
	free(c->admins);
	c->admins = NULL;
	c->nadmins = 0;
}

void config_release(struct config *c)
{
	free(c->listen);
	free(c->socket_path);
	free(c->state_dir);
	free(c->key_file);
	free(c->metrics);
	free_admins(c);
	memset(c, 0, sizeof(*c));
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void config_copy(struct config *dst, const struct config *src)
{
	*dst = *src;
	dst->listen = dup_or_null(src->listen);
	dst->socket_path = dup_or_null(src->socket_path);
	dst->state_dir = dup_or_null(src->state_dir);
	dst->key_file = dup_or_null(src->key_file);
	dst->metrics = dup_or_null(src->metrics);
	dst->admins = src->nadmins ? xcalloc(src->nadmins, sizeof(char *)) : NULL;
	for (size_t i = 0; i < src->nadmins; i++)
		dst->admins[i] = xstrdup(src->admins[i]);
}

uint64_t config_unreachable_ms(const struct config *c)
{
	return c->heartbeat_ms * c->unreachable_after;
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static void set_str(char **slot, const char *value)
{
	free(*slot);
	*slot = xstrdup(value);
}

/* "a, b,c" -> {"a","b","c"}; every name must be a plausible user name. */
static int set_admins(struct config *c, const char *value, char *err, size_t errlen)
{
	char *copy = xstrdup(value), *save = NULL, *tok;
	char **list = NULL;
	size_t n = 0;
	int r = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		tok += strspn(tok, " \t");
		size_t len = strlen(tok);

		while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			tok[--len] = '\0';
		if (!len)
			continue;
		if (len >= HPQ_NAME_MAX || strpbrk(tok, " \t:/")) {
			r = fail(err, errlen, HPQ_EINVAL, "invalid user name '%s' in admins", tok);
			goto out;
		}
		list = xreallocarray(list, n + 1, sizeof(*list));
		list[n++] = xstrdup(tok);
	}
	free_admins(c);
	c->admins = list;
	c->nadmins = n;
	list = NULL;
	n = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
	free(copy);
	return r;
}

int config_set(struct config *c, const char *section, const char *key, const char *value,
	       char *err, size_t errlen)
{
	uint64_t v;

	if (!section || !*section)
		section = "hpqd";
	if (!strcmp(section, "hpqd")) {
		if (!strcmp(key, "listen")) {
			set_str(&c->listen, value);
			return 0;
		}
		if (!strcmp(key, "metrics")) {
			/* HOST:PORT; checked when the listener starts (metrics.c). */
			if (strlen(value) > 200)
				return fail(err, errlen, HPQ_EINVAL, "metrics address too long");
			free(c->metrics);
			c->metrics = xstrdup(value);
			return 0;
		}
		if (!strcmp(key, "socket")) {
			set_str(&c->socket_path, value);
			return 0;
		}
		if (!strcmp(key, "state_dir")) {
			if (!*value)
				return fail(err, errlen, HPQ_EINVAL, "state_dir must not be empty");
			set_str(&c->state_dir, value);
			return 0;
		}
		if (!strcmp(key, "log_level")) {
			int level = hpq_log_level_parse(value);

			if (level < 0)
				return fail(err, errlen, HPQ_EINVAL,
					    "unknown log level '%s': use error, warning, notice, "
					    "info or debug", value);
			c->log_level = level;
			return 0;
		}
	} else if (!strcmp(section, "auth")) {
		if (!strcmp(key, "key_file")) {
			free(c->key_file);
			c->key_file = *value ? xstrdup(value) : NULL;
			return 0;
		}
		if (!strcmp(key, "admins"))
			return set_admins(c, value, err, errlen);
	} else if (!strcmp(section, "agents")) {
		if (!strcmp(key, "heartbeat")) {
			/* Whole seconds on the wire (RegisterReply.heartbeat_s). */
			if (hpq_parse_duration(value, &v) < 0 || v < 1 || v > 3600)
				return fail(err, errlen, HPQ_EINVAL,
					    "invalid heartbeat '%s': give 1s to 1h", value);
			c->heartbeat_ms = v * 1000;
			return 0;
		}
		if (!strcmp(key, "unreachable_after")) {
			if (hpq_parse_uint(value, 1, 1000, &v) < 0)
				return fail(err, errlen, HPQ_EINVAL,
					    "invalid unreachable_after '%s': give a count of "
					    "heartbeats from 1 to 1000", value);
			c->unreachable_after = (uint32_t)v;
			return 0;
		}
	} else if (!strcmp(section, "events")) {
		if (!strcmp(key, "retain")) {
			/* 0 keeps every event. */
			if (hpq_parse_duration(value, &v) < 0 || v > 100ull * 366 * 24 * 3600)
				return fail(err, errlen, HPQ_EINVAL,
					    "invalid retain '%s': give a duration such as 30d, "
					    "or 0 to keep every event", value);
			c->events_retain_s = v;
			return 0;
		}
	} else {
		return fail(err, errlen, HPQ_ENOTFOUND,
			    "unknown section [%s]: use [hpqd], [auth], [agents] or [events]",
			    section);
	}
	return fail(err, errlen, HPQ_ENOTFOUND, "unknown key '%s' in [%s]", key, section);
}

struct load_ctx {
	struct config *c;
	char msg[256];
};

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;

	/* inih calls with name == NULL at a new section when that option is on. */
	if (!name)
		return 1;
	return config_set(ctx->c, section, name, value ? value : "", ctx->msg,
			  sizeof(ctx->msg)) == 0;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct load_ctx ctx = { .c = c };
	int r;

	r = ini_parse(path, on_ini, &ctx);
	if (r == -1) {
		int e = errno ? errno : ENOENT;

		return fail(err, errlen, -e, "cannot open config '%s': %s", path, strerror(e));
	}
	if (r == -2)
		hpq_fatal("out of memory reading '%s'", path);
	if (r > 0)
		return fail(err, errlen, HPQ_EINVAL, "%s:%d: %s", path, r,
			    ctx.msg[0] ? ctx.msg : "syntax error");
	return 0;
}
