/*
 * config.c: hpqd's settings (config.h). The INI file is read with inih;
 * each key goes through config_set, the same path the command-line flags
 * take, so "heartbeat = 0" in a file and "--heartbeat 0" are rejected with
 * the same words. Unknown sections and keys are errors, not silence: a
 * typo in a daemon's config should stop it at start, not change nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>


#include "config.h"
#include "error.h"
#include "hpq.h"
#include "inifile.h"
#include "log.h"
#include "parse.h"
#include "xalloc.h"

#define DEFAULT_HEARTBEAT_MS 10000
/* Fencing on by default: a node is lost only after 25 heartbeats (250 s),
 * which leaves room for a 2 min lease (config_fence_check). */
#define DEFAULT_UNREACHABLE_AFTER 25
#define DEFAULT_FENCE_AFTER_MS (120 * 1000)
#define DEFAULT_ADMIN_GROUP "hpq-admin"

void config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	xasprintf(&c->listen, "0.0.0.0:%d", HPQ_DEFAULT_PORT);
	c->socket_path = xstrdup(HPQ_DEFAULT_SOCKET);
	c->state_dir = xstrdup(HPQ_DEFAULT_STATE_DIR);
	c->munge_socket = xstrdup(HPQ_DEFAULT_MUNGE_SOCKET);
	c->admin_group = xstrdup(DEFAULT_ADMIN_GROUP);
	c->private_data = true;
	c->slurm_env = true;
	c->versions_catalog = xstrdup("");
	c->log_level = LOG_INFO;
	c->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
	c->unreachable_after = DEFAULT_UNREACHABLE_AFTER;
	c->fence_after_ms = DEFAULT_FENCE_AFTER_MS;
	c->events_retain_s = 30 * 24 * 3600;
	c->keep_finished_s = 3600;
	c->tasks_retain_s = 0;
	c->metrics = xstrdup("");
	c->repair.enabled = true;
	c->repair.wait_accelerator_ms = 10 * 60 * 1000;
	c->repair.wait_default_ms = 30 * 60 * 1000;
	c->repair.command = xstrdup("");
	c->repair.timeout_ms = 20 * 60 * 1000;
	c->repair.healthy_streak = 3;
	c->repair.max_unhealthy_percent = 20;
	c->repair.max_parallel = 1;
	c->tls.node_cert_lifetime_s = 30 * 86400;
	c->tls.server_cert_lifetime_s = 365 * 86400;
	c->tls.token_ttl_s = 3600;
	c->limits = (struct limits_config){
		.hello_timeout_ms = 10000,
		.read_timeout_ms = 10000,
		.idle_timeout_ms = 15 * 60 * 1000,
		.write_timeout_ms = 60000,
		.max_connections = 1024,
		.max_connections_per_user = 64,
		.max_unauthenticated_per_address = 16,
		.max_inflight = 64,
		.max_write_queue = 16u << 20,
		.log_interval_ms = 10000,
		.max_pending_tasks = 5000,
		.max_task_bytes = 128u << 10,
		.rate = 50,
		.burst = 200,
		.exempt_admins = true,
	};
	c->plans.reservable = xstrdup("");
	c->plans.max_length_s = 90 * 86400;
	c->plans.end_warning_s = 30 * 60;
	c->plans.offer_lifetime_s = 10 * 60;
}

static void free_actions(struct config *c)
{
	for (size_t i = 0; i < c->repair.nactions; i++) {
		free(c->repair.action_reasons[i]);
		free(c->repair.action_values[i]);
	}
	free(c->repair.action_reasons);
	free(c->repair.action_values);
	c->repair.action_reasons = c->repair.action_values = NULL;
	c->repair.nactions = 0;
}

static void free_server_names(struct config *c)
{
	for (size_t i = 0; i < c->tls.nserver_names; i++)
		free(c->tls.server_names[i]);
	free(c->tls.server_names);
	c->tls.server_names = NULL;
	c->tls.nserver_names = 0;
}

static void free_admins(struct config *c)
{
	for (size_t i = 0; i < c->nadmins; i++)
		free(c->admins[i]);
	free(c->admins);
	c->admins = NULL;
	c->nadmins = 0;
}

static void free_file_keys(struct config *c)
{
	for (size_t i = 0; i < c->nfile_keys; i++)
		free(c->file_keys[i]);
	free(c->file_keys);
	c->file_keys = NULL;
	c->nfile_keys = 0;
}

static void free_autoscale(struct config *c)
{
	for (size_t i = 0; i < c->nautoscale; i++) {
		struct autoscale_config *a = &c->autoscale[i];

		free(a->pool);
		for (size_t k = 0; k < a->nlabels; k++)
			free(a->labels[k]);
		free(a->labels);
		free(a->provision_command);
		free(a->deprovision_command);
	}
	free(c->autoscale);
	c->autoscale = NULL;
	c->nautoscale = 0;
}

void config_release(struct config *c)
{
	free(c->file);
	free_file_keys(c);
	free(c->listen);
	free(c->socket_path);
	free(c->state_dir);
	free(c->versions_catalog);
	free_server_names(c);
	free(c->munge_socket);
	free(c->admin_group);
	free(c->metrics);
	free(c->repair.command);
	free(c->plans.reservable);
	free_actions(c);
	free_admins(c);
	free_autoscale(c);
	memset(c, 0, sizeof(*c));
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void config_copy(struct config *dst, const struct config *src)
{
	*dst = *src;
	dst->file = dup_or_null(src->file);
	dst->file_keys = src->nfile_keys ? xcalloc(src->nfile_keys, sizeof(char *)) : NULL;
	for (size_t i = 0; i < src->nfile_keys; i++)
		dst->file_keys[i] = xstrdup(src->file_keys[i]);
	dst->listen = dup_or_null(src->listen);
	dst->socket_path = dup_or_null(src->socket_path);
	dst->state_dir = dup_or_null(src->state_dir);
	dst->versions_catalog = dup_or_null(src->versions_catalog);
	dst->tls.server_names = src->tls.nserver_names
		? xcalloc(src->tls.nserver_names, sizeof(char *)) : NULL;
	for (size_t i = 0; i < src->tls.nserver_names; i++)
		dst->tls.server_names[i] = xstrdup(src->tls.server_names[i]);
	dst->munge_socket = dup_or_null(src->munge_socket);
	dst->admin_group = dup_or_null(src->admin_group);
	dst->metrics = dup_or_null(src->metrics);
	dst->repair.command = dup_or_null(src->repair.command);
	dst->plans.reservable = dup_or_null(src->plans.reservable);
	dst->repair.action_reasons = NULL;
	dst->repair.action_values = NULL;
	dst->repair.nactions = 0;
	for (size_t i = 0; i < src->repair.nactions; i++)
		config_repair_action_set(dst, src->repair.action_reasons[i],
					 src->repair.action_values[i]);
	dst->admins = src->nadmins ? xcalloc(src->nadmins, sizeof(char *)) : NULL;
	for (size_t i = 0; i < src->nadmins; i++)
		dst->admins[i] = xstrdup(src->admins[i]);
	dst->autoscale = src->nautoscale ? xcalloc(src->nautoscale, sizeof(*dst->autoscale))
					 : NULL;
	for (size_t i = 0; i < src->nautoscale; i++) {
		const struct autoscale_config *s = &src->autoscale[i];
		struct autoscale_config *a = &dst->autoscale[i];

		*a = *s;
		a->pool = xstrdup(s->pool);
		a->labels = s->nlabels ? xcalloc(s->nlabels, sizeof(char *)) : NULL;
		for (size_t k = 0; k < s->nlabels; k++)
			a->labels[k] = xstrdup(s->labels[k]);
		a->provision_command = xstrdup(s->provision_command);
		a->deprovision_command = xstrdup(s->deprovision_command);
	}
}

uint64_t config_unreachable_ms(const struct config *c)
{
	return c->heartbeat_ms * c->unreachable_after;
}

uint64_t config_fence_ms(const struct config *c)
{
	return c->fence_after_ms ? 2 * c->fence_after_ms + CONFIG_FENCE_MARGIN_MS : 0;
}

static void cfg_set_str(char **slot, const char *value)
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
			r = hpq_errf(err, errlen, HPQ_EINVAL, "invalid user name '%s' in admins",
				     tok);
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

void config_repair_action_set(struct config *c, const char *reason, const char *action)
{
	struct repair_config *r = &c->repair;

	for (size_t i = 0; i < r->nactions; i++) {
		if (!strcmp(r->action_reasons[i], reason)) {
			cfg_set_str(&r->action_values[i], action);
			return;
		}
	}
	r->action_reasons = xreallocarray(r->action_reasons, r->nactions + 1, sizeof(char *));
	r->action_values = xreallocarray(r->action_values, r->nactions + 1, sizeof(char *));
	r->action_reasons[r->nactions] = xstrdup(reason);
	r->action_values[r->nactions] = xstrdup(action);
	r->nactions++;
}

/* Durations of [repair]: whole seconds at least, at most a week. */
static int set_repair_duration(uint64_t *slot, const char *key, const char *value, char *err,
			       size_t errlen)
{
	uint64_t v;

	if (hpq_parse_duration(value, &v) < 0 || v < 1 || v > 7 * 24 * 3600)
		return hpq_errf(err, errlen, HPQ_EINVAL, "invalid %s '%s': give 1s to 7d", key,
				value);
	*slot = v * 1000;
	return 0;
}

static int set_repair(struct config *c, const char *key, const char *value, char *err,
		      size_t errlen)
{
	struct repair_config *r = &c->repair;
	uint64_t v;

	if (!strcmp(key, "enabled")) {
		if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
			r->enabled = true;
		else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
			r->enabled = false;
		else
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid enabled '%s': use yes or no", value);
		return 0;
	}
	if (!strcmp(key, "wait_accelerator"))
		return set_repair_duration(&r->wait_accelerator_ms, key, value, err, errlen);
	if (!strcmp(key, "wait_default"))
		return set_repair_duration(&r->wait_default_ms, key, value, err, errlen);
	if (!strcmp(key, "timeout"))
		return set_repair_duration(&r->timeout_ms, key, value, err, errlen);
	if (!strcmp(key, "command")) {
		if (strlen(value) > 1024)
			return hpq_errf(err, errlen, HPQ_EINVAL, "repair command too long");
		if (*value && value[0] != '/')
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid command '%s': give an absolute path", value);
		cfg_set_str(&r->command, value);
		return 0;
	}
	if (!strcmp(key, "healthy_streak")) {
		if (hpq_parse_uint(value, 1, 1000, &v) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid healthy_streak '%s': give 1 to 1000 heartbeats",
					value);
		r->healthy_streak = (uint32_t)v;
		return 0;
	}
	if (!strcmp(key, "max_unhealthy_percent")) {
		if (hpq_parse_uint(value, 0, 100, &v) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid max_unhealthy_percent '%s': give 0 to 100", value);
		r->max_unhealthy_percent = (uint32_t)v;
		return 0;
	}
	if (!strcmp(key, "max_parallel")) {
		if (hpq_parse_uint(value, 0, 100000, &v) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid max_parallel '%s': give a count of nodes", value);
		r->max_parallel = (uint32_t)v;
		return 0;
	}
	return hpq_errf(err, errlen, HPQ_ENOTFOUND, "unknown key '%s' in [repair]", key);
}

/* A byte count: N (bytes), NK or NM (binary), within [min, max]. */
static int parse_bytes(const char *value, uint64_t min, uint64_t max, uint64_t *ret)
{
	size_t len = strlen(value);
	unsigned shift = 0;
	char num[32];
	uint64_t v;

	if (len && (value[len - 1] == 'K' || value[len - 1] == 'k'))
		shift = 10;
	else if (len && (value[len - 1] == 'M' || value[len - 1] == 'm'))
		shift = 20;
	if (shift)
		len--;
	if (len == 0 || len >= sizeof(num))
		return HPQ_EINVAL;
	memcpy(num, value, len);
	num[len] = '\0';
	if (hpq_parse_uint(num, 0, UINT64_MAX >> shift, &v) < 0)
		return HPQ_EINVAL;
	v <<= shift;
	if (v < min || v > max)
		return HPQ_EINVAL;
	*ret = v;
	return 0;
}

/* A duration of [limits] in [min_s, max_s] seconds, as milliseconds. */
static int set_limit_duration(uint64_t *slot, const char *key, const char *value,
			      uint64_t min_s, uint64_t max_s, const char *range, char *err,
			      size_t errlen)
{
	uint64_t v;

	if (hpq_parse_duration(value, &v) < 0 || v < min_s || v > max_s)
		return hpq_errf(err, errlen, HPQ_EINVAL, "invalid %s '%s': give %s", key, value,
				range);
	*slot = v * 1000;
	return 0;
}

static int set_limit_count(uint32_t *slot, const char *key, const char *value, uint64_t max,
			   char *err, size_t errlen)
{
	uint64_t v;

	if (hpq_parse_uint(value, 1, max, &v) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "invalid %s '%s': give 1 to %llu", key,
				value, (unsigned long long)max);
	*slot = (uint32_t)v;
	return 0;
}

static int set_limits(struct config *c, const char *key, const char *value, char *err,
		      size_t errlen)
{
	struct limits_config *l = &c->limits;

	if (!strcmp(key, "hello_timeout"))
		return set_limit_duration(&l->hello_timeout_ms, key, value, 1, 300, "1s to 5m",
					  err, errlen);
	if (!strcmp(key, "read_timeout"))
		return set_limit_duration(&l->read_timeout_ms, key, value, 1, 300, "1s to 5m",
					  err, errlen);
	if (!strcmp(key, "idle_timeout"))
		return set_limit_duration(&l->idle_timeout_ms, key, value, 0, 7 * 24 * 3600,
					  "up to 7d, or 0 to keep idle clients", err, errlen);
	if (!strcmp(key, "write_timeout"))
		return set_limit_duration(&l->write_timeout_ms, key, value, 1, 3600, "1s to 1h",
					  err, errlen);
	if (!strcmp(key, "log_interval"))
		return set_limit_duration(&l->log_interval_ms, key, value, 1, 3600, "1s to 1h",
					  err, errlen);
	if (!strcmp(key, "max_connections"))
		return set_limit_count(&l->max_connections, key, value, 1000000, err, errlen);
	if (!strcmp(key, "max_connections_per_user"))
		return set_limit_count(&l->max_connections_per_user, key, value, 1000000, err,
				       errlen);
	if (!strcmp(key, "max_unauthenticated_per_address"))
		return set_limit_count(&l->max_unauthenticated_per_address, key, value, 1000000,
				       err, errlen);
	if (!strcmp(key, "max_inflight"))
		return set_limit_count(&l->max_inflight, key, value, 100000, err, errlen);
	if (!strcmp(key, "max_pending_tasks"))
		return set_limit_count(&l->max_pending_tasks, key, value, 100000000, err, errlen);
	if (!strcmp(key, "rate"))
		return set_limit_count(&l->rate, key, value, 1000000, err, errlen);
	if (!strcmp(key, "burst"))
		return set_limit_count(&l->burst, key, value, 1000000, err, errlen);
	if (!strcmp(key, "max_write_queue")) {
		if (parse_bytes(value, 64u << 10, 1u << 30, &l->max_write_queue) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid max_write_queue '%s': give 64K to 1024M", value);
		return 0;
	}
	if (!strcmp(key, "max_task_bytes")) {
		/* A task's argv and environment each may hold up to 1 MiB (task.c). */
		if (parse_bytes(value, 1u << 10, 2u << 20, &l->max_task_bytes) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid max_task_bytes '%s': give 1K to 2M", value);
		return 0;
	}
	if (!strcmp(key, "exempt_admins")) {
		if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
			l->exempt_admins = true;
		else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
			l->exempt_admins = false;
		else
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid exempt_admins '%s': use yes or no", value);
		return 0;
	}
	return hpq_errf(err, errlen, HPQ_ENOTFOUND, "unknown key '%s' in [limits]", key);
}

/* A duration within [min_s, max_s]. */
static int set_lifetime(uint64_t *slot, const char *key, const char *value, uint64_t min_s,
			uint64_t max_s, char *err, size_t errlen)
{
	uint64_t v;
	char lo[32], hi[32];

	if (hpq_parse_duration(value, &v) < 0 || v < min_s || v > max_s)
		return hpq_errf(err, errlen, HPQ_EINVAL, "invalid %s '%.64s': give %s to %s", key,
				value, hpq_format_duration(min_s, lo, sizeof(lo)),
				hpq_format_duration(max_s, hi, sizeof(hi)));
	*slot = v;
	return 0;
}

static int set_tls(struct config *c, const char *key, const char *value, char *err,
		   size_t errlen)
{
	if (!strcmp(key, "server_names")) {
		char *copy = xstrdup(value), *save = NULL;

		free_server_names(c);
		for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
			if (strlen(tok) > 253 || strspn(tok, "abcdefghijklmnopqrstuvwxyz"
					"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") != strlen(tok)) {
				free(copy);
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid server name '%.64s' in server_names: give "
						"DNS names and IP addresses, separated by commas", tok);
			}
			c->tls.server_names = xreallocarray(c->tls.server_names,
							    c->tls.nserver_names + 1,
							    sizeof(char *));
			c->tls.server_names[c->tls.nserver_names++] = xstrdup(tok);
		}
		free(copy);
		return 0;
	}
	if (!strcmp(key, "node_cert_lifetime"))
		return set_lifetime(&c->tls.node_cert_lifetime_s, key, value, 30, 366 * 86400,
				    err, errlen);
	if (!strcmp(key, "server_cert_lifetime"))
		return set_lifetime(&c->tls.server_cert_lifetime_s, key, value, 86400,
				    10 * 366 * 86400, err, errlen);
	if (!strcmp(key, "token_ttl"))
		return set_lifetime(&c->tls.token_ttl_s, key, value, 60, 30 * 86400, err, errlen);
	return hpq_errf(err, errlen, HPQ_ENOTFOUND, "unknown key '%s' in [tls]", key);
}

/* ---------------------------------------------------------------- [autoscale.POOL] */

#define AUTOSCALE_MAX_NODES 100000

const struct autoscale_config *config_autoscale_find(const struct config *c, const char *pool)
{
	for (size_t i = 0; i < c->nautoscale; i++)
		if (!strcmp(c->autoscale[i].pool, pool))
			return &c->autoscale[i];
	return NULL;
}

uint32_t config_autoscale_budget(const struct autoscale_config *a, uint32_t nnodes)
{
	if (!a->budget_percent)
		return a->budget;
	return (uint32_t)(((uint64_t)nnodes * a->budget + 99) / 100);
}

static struct autoscale_config *autoscale_section(struct config *c, const char *pool)
{
	struct autoscale_config *a = (struct autoscale_config *)config_autoscale_find(c, pool);

	if (a)
		return a;
	c->autoscale = xreallocarray(c->autoscale, c->nautoscale + 1, sizeof(*c->autoscale));
	a = &c->autoscale[c->nautoscale++];
	memset(a, 0, sizeof(*a));
	a->pool = xstrdup(pool);
	a->provision_command = xstrdup("");
	a->deprovision_command = xstrdup("");
	a->launch_timeout_ms = 10 * 60 * 1000;
	a->idle_timeout_ms = 10 * 60 * 1000;
	a->budget = 10;
	a->budget_percent = true;
	return a;
}

static int set_as_duration(uint64_t *slot, const char *pool, const char *key, const char *value,
			   bool zero_is_off, char *err, size_t errlen)
{
	uint64_t v;

	if (zero_is_off && (!strcmp(value, "0") || !strcmp(value, "off"))) {
		*slot = 0;
		return 0;
	}
	if (hpq_parse_duration(value, &v) < 0 || v < 1 || v > 366ull * 24 * 3600)
		return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] invalid %s '%.64s': "
				"give 1s to 366d%s", pool, key, value,
				zero_is_off ? ", or off" : "");
	*slot = v * 1000;
	return 0;
}

static int set_as_labels(struct autoscale_config *a, const char *value, char *err, size_t errlen)
{
	char *copy = xstrdup(value), *save = NULL, *tok;
	char **list = NULL;
	size_t n = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t len;

		tok += strspn(tok, " \t");
		len = strlen(tok);
		while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			tok[--len] = '\0';
		if (!len)
			continue;
		if (len > 256 || n >= 256 || strpbrk(tok, " \t\n")) {
			for (size_t i = 0; i < n; i++)
				free(list[i]);
			free(list);
			free(copy);
			return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] invalid label "
					"'%.64s': labels are words without blanks, at most 256",
					a->pool, tok);
		}
		list = xreallocarray(list, n + 1, sizeof(*list));
		list[n++] = xstrdup(tok);
	}
	for (size_t i = 0; i < a->nlabels; i++)
		free(a->labels[i]);
	free(a->labels);
	a->labels = list;
	a->nlabels = n;
	free(copy);
	return 0;
}

static int set_autoscale(struct config *c, const char *pool, const char *key, const char *value,
			 char *err, size_t errlen)
{
	struct autoscale_config *a;
	uint64_t v;

	if (hpq_check_name(pool) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "invalid pool name '%.64s' in "
				"[autoscale.POOL]", pool);
	a = autoscale_section(c, pool);
	if (!strcmp(key, "min_nodes") || !strcmp(key, "max_nodes")) {
		if (hpq_parse_uint(value, 0, AUTOSCALE_MAX_NODES, &v) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] invalid %s "
					"'%.64s': give 0 to %d nodes", pool, key, value,
					AUTOSCALE_MAX_NODES);
		if (key[1] == 'i') {
			a->min_nodes = (uint32_t)v;
		} else {
			a->max_nodes = (uint32_t)v;
			a->has_max = true;
		}
		return 0;
	}
	if (!strcmp(key, "gpus") || !strcmp(key, "cpus")) {
		if (hpq_parse_uint(value, 0, key[0] == 'g' ? 4096 : 1 << 20, &v) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] invalid %s "
					"'%.64s': give a count", pool, key, value);
		if (key[0] == 'g')
			a->tmpl.gpus = (int64_t)v;
		else
			a->tmpl.cpus = (int64_t)v;
		return 0;
	}
	if (!strcmp(key, "mem")) {
		if (hpq_parse_size_mib(value, &v) < 0 || v > ((uint64_t)1 << 40))
			return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] invalid mem "
					"'%.64s': give a size such as 64G", pool, value);
		a->tmpl.mem = (int64_t)v;
		return 0;
	}
	if (!strcmp(key, "labels"))
		return set_as_labels(a, value, err, errlen);
	if (!strcmp(key, "provision_command") || !strcmp(key, "deprovision_command")) {
		if (strlen(value) > 1024)
			return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] %s too long",
					pool, key);
		if (value[0] != '/')
			return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] invalid %s "
					"'%.64s': give an absolute path", pool, key, value);
		cfg_set_str(key[0] == 'p' ? &a->provision_command : &a->deprovision_command, value);
		return 0;
	}
	if (!strcmp(key, "launch_timeout"))
		return set_as_duration(&a->launch_timeout_ms, pool, key, value, false, err,
				       errlen);
	if (!strcmp(key, "idle_timeout"))
		return set_as_duration(&a->idle_timeout_ms, pool, key, value, false, err,
				       errlen);
	if (!strcmp(key, "max_node_lifetime"))
		return set_as_duration(&a->max_lifetime_ms, pool, key, value, true, err,
				       errlen);
	if (!strcmp(key, "consolidation")) {
		if (!strcmp(value, "on") || !strcmp(value, "yes") || !strcmp(value, "true"))
			a->consolidation = true;
		else if (!strcmp(value, "off") || !strcmp(value, "no") || !strcmp(value, "false"))
			a->consolidation = false;
		else
			return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] invalid "
					"consolidation '%.64s': use on or off", pool, value);
		return 0;
	}
	if (!strcmp(key, "disruption_budget")) {
		size_t len = strlen(value);
		bool pct = len && value[len - 1] == '%';
		char num[32];

		if (len == 0 || len >= sizeof(num))
			goto bad_budget;
		memcpy(num, value, len - pct);
		num[len - pct] = '\0';
		if (hpq_parse_uint(num, 0, pct ? 100 : AUTOSCALE_MAX_NODES, &v) < 0)
			goto bad_budget;
		a->budget = (uint32_t)v;
		a->budget_percent = pct;
		return 0;
bad_budget:
		return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] invalid "
				"disruption_budget '%.64s': give a count of nodes or a "
				"percentage such as 10%%", pool, value);
	}
	return hpq_errf(err, errlen, HPQ_ENOTFOUND, "unknown key '%s' in [autoscale.%s]", key,
			pool);
}

int config_autoscale_check(const struct config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->nautoscale; i++) {
		const struct autoscale_config *a = &c->autoscale[i];

		if (!a->has_max)
			return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] has no max_nodes: "
					"say how many nodes the pool may have at most", a->pool);
		if (a->max_nodes < 1 || a->min_nodes > a->max_nodes)
			return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] min_nodes (%u) is "
					"more than max_nodes (%u), or max_nodes is 0", a->pool,
					a->min_nodes, a->max_nodes);
		if (!*a->provision_command || !*a->deprovision_command)
			return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] has no %s: give the "
					"command that %s a node", a->pool,
					*a->provision_command ? "deprovision_command"
							      : "provision_command",
					*a->provision_command ? "removes" : "starts");
		if (a->tmpl.gpus == 0 && a->tmpl.cpus == 0)
			return hpq_errf(err, errlen, HPQ_EINVAL, "[autoscale.%s] the node template "
					"has no capacity: set gpus or cpus (and mem)", a->pool);
	}
	return 0;
}

/*
 * One item of [plans] reservable, "POOL=N" or "POOL=N%": its pool name's
 * length, the number and whether it is a percentage. s points at the
 * item, which ends at a comma or the end. 0 or HPQ_EINVAL.
 */
static int reservable_item(const char *s, size_t *ret_namelen, uint64_t *ret_n, bool *ret_pct,
			   const char **ret_end, char *err, size_t errlen)
{
	const char *eq, *end = strchr(s, ',');
	char num[24];
	size_t len, nlen;

	if (!end)
		end = s + strlen(s);
	*ret_end = end;
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	len = (size_t)(end - s);
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	eq = memchr(s, '=', len);
	if (!eq || eq == s)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"invalid reservable item '%.*s': use POOL=NODES or POOL=PERCENT%%",
				(int)(len > 64 ? 64 : len), s);
	*ret_namelen = (size_t)(eq - s);
	while (*ret_namelen && s[*ret_namelen - 1] == ' ')
		(*ret_namelen)--;
	eq++;
	while (*eq == ' ')
		eq++;
	nlen = (size_t)(s + len - eq);
	*ret_pct = nlen > 0 && eq[nlen - 1] == '%';
	if (*ret_pct)
		nlen--;
	if (nlen == 0 || nlen >= sizeof(num))
		return hpq_errf(err, errlen, HPQ_EINVAL, "invalid reservable count for pool '%.*s'",
				(int)*ret_namelen, s);
	memcpy(num, eq, nlen);
	num[nlen] = 0;
	if (hpq_parse_uint(num, 0, *ret_pct ? 100 : 1000000, ret_n) < 0)
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"invalid reservable '%s' for pool '%.*s': a node count up to "
				"1000000, or a percentage up to 100%%", num, (int)*ret_namelen, s);
	return 0;
}

static int set_reservable(struct config *c, const char *value, char *err, size_t errlen)
{
	const char *s = value;

	while (*s == ' ')
		s++;
	if (*s) {
		for (;;) {
			size_t namelen;
			uint64_t n;
			bool pct;
			const char *end;
			int rc = reservable_item(s, &namelen, &n, &pct, &end, err, errlen);

			if (rc)
				return rc;
			if (!*end)
				break;
			s = end + 1;
		}
	}
	free(c->plans.reservable);
	c->plans.reservable = xstrdup(value);
	return 0;
}

uint32_t config_plans_reservable(const struct config *c, const char *pool, uint32_t nnodes)
{
	const char *s = c->plans.reservable ? c->plans.reservable : "";

	while (*s == ' ')
		s++;
	while (*s) {
		size_t namelen;
		uint64_t n;
		bool pct;
		const char *end, *name = s;

		if (reservable_item(s, &namelen, &n, &pct, &end, NULL, 0))
			return 0;
		while (*name == ' ' || *name == '\t')
			name++;
		if (strlen(pool) == namelen && !strncmp(name, pool, namelen)) {
			if (pct)
				return (uint32_t)((uint64_t)nnodes * n / 100);
			return n < nnodes ? (uint32_t)n : nnodes;
		}
		if (!*end)
			break;
		s = end + 1;
	}
	return 0;
}

static int set_plans(struct config *c, const char *key, const char *value, char *err,
		     size_t errlen)
{
	uint64_t v;

	if (!strcmp(key, "reservable"))
		return set_reservable(c, value, err, errlen);
	if (!strcmp(key, "max_length")) {
		if (hpq_parse_duration(value, &v) < 0 || v < 1 || v > 366ull * 86400)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid max_length '%.64s': give a duration from 1s to "
					"366d, such as 90d", value);
		c->plans.max_length_s = v;
		return 0;
	}
	if (!strcmp(key, "end_warning")) {
		if (hpq_parse_duration(value, &v) < 0 || v > 86400)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid end_warning '%.64s': give a duration up to 1d, "
					"such as 30m, or 0", value);
		c->plans.end_warning_s = v;
		return 0;
	}
	if (!strcmp(key, "offer_lifetime")) {
		if (hpq_parse_duration(value, &v) < 0 || v < 1 || v > 86400)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid offer_lifetime '%.64s': give a duration from 1s "
					"to 1d, such as 10m", value);
		c->plans.offer_lifetime_s = v;
		return 0;
	}
	return hpq_errf(err, errlen, HPQ_ENOTFOUND, "unknown key '%s' in [plans]", key);
}

int config_set(struct config *c, const char *section, const char *key, const char *value,
	       char *err, size_t errlen)
{
	uint64_t v;

	if (!section || !*section)
		section = "hpqd";
	if (!strcmp(section, "hpqd")) {
		if (!strcmp(key, "listen")) {
			cfg_set_str(&c->listen, value);
			return 0;
		}
		if (!strcmp(key, "metrics")) {
			/* HOST:PORT; checked when the listener starts (metrics.c). */
			if (strlen(value) > 200)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"metrics address too long");
			free(c->metrics);
			c->metrics = xstrdup(value);
			return 0;
		}
		if (!strcmp(key, "socket")) {
			cfg_set_str(&c->socket_path, value);
			return 0;
		}
		if (!strcmp(key, "state_dir")) {
			if (!*value)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"state_dir must not be empty");
			cfg_set_str(&c->state_dir, value);
			return 0;
		}
		if (!strcmp(key, "log_level")) {
			int level = hpq_log_level_parse(value);

			if (level < 0)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"unknown log level '%s': use error, warning, "
						"notice, info or debug", value);
			c->log_level = level;
			return 0;
		}
	} else if (!strcmp(section, "auth")) {
		if (!strcmp(key, "key_file"))
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"[auth] key_file is no longer used: nodes join with a "
					"token and speak TLS (hpq node token create; see "
					"dist/README.md, \"From the cluster key to joined nodes\"): "
					"remove the line");
		if (!strcmp(key, "admins"))
			return set_admins(c, value, err, errlen);
		if (!strcmp(key, "admin_group")) {
			/* A group that does not exist is fine: nobody is in it. */
			if (*value && hpq_check_group_name(value) < 0)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid admin_group '%.64s': give a Unix group's "
						"name, or nothing for none", value);
			cfg_set_str(&c->admin_group, value);
			return 0;
		}
		if (!strcmp(key, "private_data")) {
			if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
				c->private_data = true;
			else if (!strcmp(value, "no") || !strcmp(value, "false") ||
				 !strcmp(value, "0"))
				c->private_data = false;
			else
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid private_data '%.64s': use yes or no",
						value);
			return 0;
		}
		if (!strcmp(key, "allow_root_tasks")) {
			if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
				c->allow_root_tasks = true;
			else if (!strcmp(value, "no") || !strcmp(value, "false") ||
				 !strcmp(value, "0"))
				c->allow_root_tasks = false;
			else
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid allow_root_tasks '%s': use yes or no",
						value);
			return 0;
		}
		if (!strcmp(key, "munge_socket")) {
			/* A Unix socket's path: absolute, and within sun_path. */
			if (value[0] != '/' ||
			    strlen(value) >= sizeof(((struct sockaddr_un *)0)->sun_path))
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid munge_socket '%.200s': give the absolute "
						"path of munged's socket (under 108 bytes)", value);
			cfg_set_str(&c->munge_socket, value);
			return 0;
		}
	} else if (!strcmp(section, "tls")) {
		return set_tls(c, key, value, err, errlen);
	} else if (!strcmp(section, "agents")) {
		if (!strcmp(key, "heartbeat")) {
			/* Whole seconds on the wire (RegisterReply.heartbeat_s). */
			if (hpq_parse_duration(value, &v) < 0 || v < 1 || v > 3600)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid heartbeat '%s': give 1s to 1h", value);
			c->heartbeat_ms = v * 1000;
			return 0;
		}
		if (!strcmp(key, "unreachable_after")) {
			if (hpq_parse_uint(value, 1, 1000, &v) < 0)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid unreachable_after '%s': give a count of "
						"heartbeats from 1 to 1000", value);
			c->unreachable_after = (uint32_t)v;
			return 0;
		}
		if (!strcmp(key, "fence_after")) {
			/* 0 turns fencing off; the rule against the heartbeat and
			 * unreachable_after is config-check.c's. */
			if (!strcmp(value, "0") || !strcmp(value, "off")) {
				c->fence_after_ms = 0;
				return 0;
			}
			if (hpq_parse_duration(value, &v) < 0 || v < 1 || v > 86400)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid fence_after '%s': give 1s to 1d, or off",
						value);
			c->fence_after_ms = v * 1000;
			return 0;
		}
	} else if (!strcmp(section, "nodes")) {
		/* The key's first name, deprecated (deprecation.c): still read,
		 * and hpqd records that the file uses it. */
		if (!strcmp(key, "unreachable_after"))
			return config_set(c, "agents", key, value, err, errlen);
	} else if (!strcmp(section, "repair")) {
		return set_repair(c, key, value, err, errlen);
	} else if (!strcmp(section, "limits")) {
		return set_limits(c, key, value, err, errlen);
	} else if (!strcmp(section, "repair.actions")) {
		if (strcmp(value, "reboot") && strcmp(value, "replace") && strcmp(value, "none"))
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"invalid repair action '%s' for '%s': use reboot, replace "
					"or none", value, key);
		if (strlen(key) >= 256)
			return hpq_errf(err, errlen, HPQ_EINVAL, "reason '%.32s...' is too long",
					key);
		config_repair_action_set(c, key, value);
		return 0;
	} else if (!strcmp(section, "events")) {
		if (!strcmp(key, "retain")) {
			/* 0 keeps every event. */
			if (hpq_parse_duration(value, &v) < 0 || v > 100ull * 366 * 24 * 3600)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid retain '%s': give a duration such as 30d, "
						"or 0 to keep every event", value);
			c->events_retain_s = v;
			return 0;
		}
	} else if (!strcmp(section, "versions")) {
		if (!strcmp(key, "catalog")) {
			free(c->versions_catalog);
			c->versions_catalog = xstrdup(value);
			return 0;
		}
	} else if (!strcmp(section, "tasks")) {
		if (!strcmp(key, "keep_finished")) {
			/* 0 lets an ended task go once its end is committed. */
			if (hpq_parse_duration(value, &v) < 0 || v > 366ull * 24 * 3600)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid keep_finished '%.64s': give a duration up "
						"to 366d, such as 1h, or 0", value);
			c->keep_finished_s = v;
			return 0;
		}
		if (!strcmp(key, "retain")) {
			/* 0 keeps every task. */
			if (hpq_parse_duration(value, &v) < 0 || v > 100ull * 366 * 24 * 3600)
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid retain '%.64s': give a duration such as "
						"365d, or 0 to keep every task", value);
			c->tasks_retain_s = v;
			return 0;
		}
	} else if (!strcmp(section, "compat")) {
		if (!strcmp(key, "slurm_env")) {
			if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
				c->slurm_env = true;
			else if (!strcmp(value, "no") || !strcmp(value, "false") ||
				 !strcmp(value, "0"))
				c->slurm_env = false;
			else
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"invalid slurm_env '%.64s': use yes or no", value);
			return 0;
		}
	} else if (!strcmp(section, "plans")) {
		return set_plans(c, key, value, err, errlen);
	} else if (!strncmp(section, "autoscale.", 10)) {
		return set_autoscale(c, section + 10, key, value, err, errlen);
	} else {
		return hpq_errf(err, errlen, HPQ_ENOTFOUND,
				"unknown section [%s]: use [hpqd], [auth], [agents], [nodes], "
				"[repair], [repair.actions], [events], [tasks], [plans], [tls], "
				"[limits], [compat], [autoscale.POOL] or [versions]",
				section);
	}
	return hpq_errf(err, errlen, HPQ_ENOTFOUND, "unknown key '%s' in [%s]", key, section);
}

/* inifile.h calls this per key, in file order. */
static int on_ini(void *user, const char *section, const char *name, const char *value,
		  char *err, size_t errlen)
{
	struct config *c = user;
	char *full = NULL;

	/* Which keys the file sets, for hpq upgrade-check (keys a release does
	 * not know, deprecated ones). A key repeated is listed once. */
	xasprintf(&full, "%s.%s", *section ? section : "hpqd", name);
	for (size_t i = 0; i < c->nfile_keys && full; i++)
		if (!strcmp(c->file_keys[i], full)) {
			free(full);
			full = NULL;
		}
	if (full) {
		c->file_keys = xreallocarray(c->file_keys, c->nfile_keys + 1, sizeof(char *));
		c->file_keys[c->nfile_keys++] = full;
	}
	return config_set(c, section, name, value, err, errlen);
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	free(c->file);
	c->file = xstrdup(path);
	return hpq_ini_load(path, on_ini, c, err, errlen);
}

const char *config_catalog(const struct config *c)
{
	return *c->versions_catalog ? c->versions_catalog : HPQ_DATADIR "/hpq/versions.json";
}
