/*
 * output-json.c: the --json output. One JSON document per command on
 * stdout, built with jansson from the reply and dumped with two-space
 * indentation; a list of tasks, which can be 100,000 long, is written
 * directly in the same bytes (json_tasks). Field names are the same in every command (docs/decisions.md: id, name, team, user, class, pool, state, reason, nodes,
 * node_names, per_node, attempts, submit_time, start_time, end_time,
 * exit_code, time_limit, checkpoints, events, argv, cwd); times are
 * ISO-8601 UTC strings and null when unset; memory is MiB; a resource
 * limit that means "none" is null. Lists are arrays, single objects are
 * objects.
 *
 * Strings from the daemon are bytes (a command line can hold anything);
 * jansson only takes UTF-8, so invalid sequences become U+FFFD rather
 * than making a whole reply unprintable. A task's output (hpq logs) may
 * hold NUL bytes too: they are kept, as \u0000.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "output-columns.h"
#include "output.h"
#include "xalloc.h"

json_t *output_json_text(const char *s, size_t n)
{
	json_t *v;
	char *clean, *p;

	if ((v = json_stringn(s, n)))
		return v;
	/* Replace each byte that is not part of a valid UTF-8 sequence. */
	p = clean = xmalloc(3 * n + 1);
	for (size_t i = 0; i < n;) {
		const unsigned char *u = (const unsigned char *)s + i;
		size_t len = u[0] < 0x80 ? 1 : (u[0] & 0xe0) == 0xc0 ? 2 : (u[0] & 0xf0) == 0xe0 ? 3
					    : (u[0] & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = len > 0 && i + len <= n;

		for (size_t k = 1; ok && k < len; k++)
			ok = (u[k] & 0xc0) == 0x80;
		if (ok && len > 1) {
			/* Let jansson judge overlongs and surrogates. */
			json_t *probe = json_stringn(s + i, len);
			ok = probe != NULL;
			json_decref(probe);
		}
		if (ok) {
			memcpy(p, s + i, len);
			p += len;
			i += len;
		} else {
			p = stpcpy(p, "\xef\xbf\xbd");
			i++;
		}
	}
	v = json_stringn(clean, (size_t)(p - clean));
	free(clean);
	if (!v)
		hpq_fatal("json: cannot build a string");
	return v;
}

static json_t *json_str(const char *s)
{
	if (!s)
		s = "";
	return output_json_text(s, strlen(s));
}

static json_t *json_time_ms(int64_t ms)
{
	char buf[OUTPUT_TIME_LEN];

	return ms > 0 ? json_string(output_time_iso(ms, buf, sizeof(buf))) : json_null();
}

static json_t *json_strings(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_str(v[i]));
	return a;
}

static json_t *json_count(uint64_t n)
{
	return n >= HPQ_UNLIMITED_COUNT ? json_null() : json_integer((json_int_t)n);
}

json_t *output_json_res(const Hpq__Resources *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "gpus", json_count(r ? r->gpus : 0));
	json_object_set_new(o, "cpus", json_count(r ? r->cpus : 0));
	json_object_set_new(o, "mem", r && r->mem >= HPQ_UNLIMITED_MEM
					      ? json_null()
					      : json_integer((json_int_t)(r ? r->mem : 0)));
	return o;
}

static json_t *json_checkpoint(const Hpq__Checkpoint *c)
{
	json_t *o = json_object();

	json_object_set_new(o, "step", json_integer((json_int_t)c->step));
	json_object_set_new(o, "path", json_str(c->path));
	json_object_set_new(o, "time", json_time_ms(c->time * 1000)); /* seconds on the wire */
	json_object_set_new(o, "attempt", json_integer(c->attempt));
	return o;
}

static json_t *json_event(const Hpq__Event *e)
{
	json_t *o = json_object();

	json_object_set_new(o, "time", json_time_ms(e->time));
	json_object_set_new(o, "kind", json_str(e->kind));
	json_object_set_new(o, "actor", json_str(e->actor));
	json_object_set_new(o, "node", json_str(e->node));
	json_object_set_new(o, "message", json_str(e->message));
	return o;
}

json_t *output_json_task(const Hpq__Task *t)
{
	json_t *o = json_object(), *a;
	char sig[16];

	json_object_set_new(o, "id", json_integer((json_int_t)t->id));
	json_object_set_new(o, "name", json_str(t->name));
	json_object_set_new(o, "team", json_str(t->team));
	json_object_set_new(o, "user", json_str(t->user));
	json_object_set_new(o, "uid", json_integer(t->uid));
	json_object_set_new(o, "gid", json_integer(t->gid));
	json_object_set_new(o, "class", json_str(t->class_));
	json_object_set_new(o, "pool", json_str(t->pool));
	json_object_set_new(o, "state", json_str(t->state));
	json_object_set_new(o, "reason", json_str(t->reason));
	json_object_set_new(o, "queue_position", t->queue_position
							 ? json_integer(t->queue_position)
							 : json_null());
	json_object_set_new(o, "nodes", json_integer(t->nodes ? t->nodes : 1));
	json_object_set_new(o, "node_names", json_strings(t->node_names, t->n_node_names));
	json_object_set_new(o, "per_node", output_json_res(t->per_node));
	json_object_set_new(o, "attempts", json_integer(t->attempts));
	json_object_set_new(o, "submit_time", json_time_ms(t->submit_time));
	json_object_set_new(o, "start_time", json_time_ms(t->start_time));
	json_object_set_new(o, "end_time", json_time_ms(t->end_time));
	json_object_set_new(o, "exit_code", t->has_exit_code ? json_integer(t->exit_code)
							     : json_null());
	json_object_set_new(o, "time_limit", t->time_limit_s
						     ? json_integer((json_int_t)t->time_limit_s)
						     : json_null());
	json_object_set_new(o, "checkpoint_dir", json_str(t->checkpoint_dir));
	json_object_set_new(o, "preempt_signal",
			    json_str(output_signal(t->preempt_signal, sig, sizeof(sig))));
	json_object_set_new(o, "grace", t->grace_s ? json_integer((json_int_t)t->grace_s)
						   : json_null());
	a = json_array();
	for (size_t i = 0; i < t->n_checkpoints; i++)
		json_array_append_new(a, json_checkpoint(t->checkpoints[i]));
	json_object_set_new(o, "checkpoints", a);
	json_object_set_new(o, "plan", t->plan && t->plan[0] ? json_str(t->plan) : json_null());
	/* Made from a recipe (hpq submit --recipe): its name, version, parameters. */
	if (t->recipe && t->recipe[0]) {
		json_t *r = json_object();

		json_object_set_new(r, "name", json_str(t->recipe));
		json_object_set_new(r, "version", json_str(t->recipe_version));
		json_object_set_new(r, "params", json_strings(t->recipe_params,
							      t->n_recipe_params));
		json_object_set_new(o, "recipe", r);
	} else {
		json_object_set_new(o, "recipe", json_null());
	}
	a = json_array();
	for (size_t i = 0; i < t->n_events; i++)
		json_array_append_new(a, json_event(t->events[i]));
	json_object_set_new(o, "events", a);
	/* Another user's private data, withheld by the daemon: null, not empty. */
	json_object_set_new(o, "argv", t->redacted ? json_null()
						   : json_strings(t->argv, t->n_argv));
	json_object_set_new(o, "cwd", t->redacted ? json_null() : json_str(t->cwd));
	json_object_set_new(o, "redacted", json_boolean(t->redacted));
	/* Arrays: the array's id and this task's index, null outside one;
	 * array_spec is an array's pending rest shown as one entry. */
	json_object_set_new(o, "array_id", t->has_array || (t->array_spec && t->array_spec[0])
						   ? json_integer((json_int_t)t->array_id)
						   : json_null());
	json_object_set_new(o, "array_index", t->has_array && !(t->array_spec && t->array_spec[0])
						      ? json_integer(t->array_index)
						      : json_null());
	json_object_set_new(o, "array_spec", t->array_spec && t->array_spec[0]
						     ? json_str(t->array_spec)
						     : json_null());
	json_object_set_new(o, "held", json_boolean(t->held));
	json_object_set_new(o, "dependency", json_str(t->dependency ? t->dependency : ""));
	json_object_set_new(o, "output", t->redacted ? json_null() : json_str(t->output));
	json_object_set_new(o, "error", t->redacted ? json_null() : json_str(t->error));
	json_object_set_new(o, "has_script", json_boolean(t->has_script));
	json_object_set_new(o, "peak_mem", json_integer((json_int_t)t->peak_mem));
	json_object_set_new(o, "cpu_usec", json_integer((json_int_t)t->cpu_usec));
	json_object_set_new(o, "preemptions", json_integer(t->preemptions));
	return o;
}

static json_t *json_finding(const Hpq__Finding *f)
{
	json_t *o = json_object();

	json_object_set_new(o, "category", json_str(f->category));
	json_object_set_new(o, "reason", json_str(f->reason));
	json_object_set_new(o, "message", json_str(f->message));
	json_object_set_new(o, "severity", json_str(f->severity));
	json_object_set_new(o, "action", json_str(f->action));
	json_object_set_new(o, "since", json_time_ms(f->since * 1000)); /* seconds on the wire */
	return o;
}

json_t *output_json_node(const Hpq__Node *n)
{
	json_t *o = json_object(), *a;

	json_object_set_new(o, "name", json_str(n->name));
	json_object_set_new(o, "pool", json_str(n->pool));
	json_object_set_new(o, "capacity", output_json_res(n->capacity));
	json_object_set_new(o, "used", output_json_res(n->used));
	json_object_set_new(o, "health", json_str(n->health));
	json_object_set_new(o, "service", json_str(n->service));
	json_object_set_new(o, "reason", json_str(n->reason));
	json_object_set_new(o, "service_by", json_str(n->service_by));
	json_object_set_new(o, "service_since", json_time_ms(n->service_since));
	json_object_set_new(o, "repair_action", json_str(n->repair_action));
	json_object_set_new(o, "connected", json_boolean(n->connected));
	json_object_set_new(o, "last_heartbeat", json_time_ms(n->last_heartbeat));
	json_object_set_new(o, "heartbeats", json_integer((json_int_t)n->heartbeats));
	a = json_array();
	for (size_t i = 0; i < n->n_tasks; i++)
		json_array_append_new(a, json_integer((json_int_t)n->tasks[i]));
	json_object_set_new(o, "tasks", a);
	json_object_set_new(o, "address", json_str(n->address));
	json_object_set_new(o, "software_version", json_str(n->software_version));
	json_object_set_new(o, "identity", json_str(n->identity));
	json_object_set_new(o, "cgroup", json_boolean(n->cgroup));
	json_object_set_new(o, "cgroup_problem", json_str(n->cgroup_problem));
	json_object_set_new(o, "cert_not_after", n->cert_not_after_ms
							 ? json_time_ms(n->cert_not_after_ms)
							 : json_null());
	a = json_array();
	for (size_t i = 0; i < n->n_findings; i++)
		json_array_append_new(a, json_finding(n->findings[i]));
	json_object_set_new(o, "findings", a);
	return o;
}

static json_t *json_quota(const Hpq__PoolQuota *q)
{
	json_t *o = json_object();

	json_object_set_new(o, "pool", json_str(q->pool));
	json_object_set_new(o, "guarantee", output_json_res(q->guarantee));
	json_object_set_new(o, "sharing", json_str(q->sharing));
	json_object_set_new(o, "borrow_limit_pct", json_integer(q->borrow_limit_pct));
	json_object_set_new(o, "borrow_limit_abs", q->has_borrow_limit_abs
							   ? output_json_res(q->borrow_limit_abs)
							   : json_null());
	json_object_set_new(o, "lend_limit", q->has_lend_limit ? output_json_res(q->lend_limit)
							       : json_null());
	return o;
}

json_t *output_json_team(const Hpq__Team *t)
{
	json_t *o = json_object(), *a;

	json_object_set_new(o, "name", json_str(t->name));
	json_object_set_new(o, "weight", json_integer(t->weight));
	json_object_set_new(o, "preempt_own", json_str(t->preempt_own));
	json_object_set_new(o, "members", json_strings(t->members, t->n_members));
	json_object_set_new(o, "admins", json_strings(t->admins, t->n_admins));
	json_object_set_new(o, "default_class", json_str(t->default_class));
	a = json_array();
	for (size_t i = 0; i < t->n_quotas; i++)
		json_array_append_new(a, json_quota(t->quotas[i]));
	json_object_set_new(o, "quotas", a);
	a = json_array();
	for (size_t i = 0; i < t->n_usage; i++) {
		const Hpq__PoolUsage *u = t->usage[i];
		json_t *j = json_object();

		json_object_set_new(j, "pool", json_str(u->pool));
		json_object_set_new(j, "used", output_json_res(u->used));
		json_object_set_new(j, "borrowed", output_json_res(u->borrowed));
		json_object_set_new(j, "lent", output_json_res(u->lent));
		json_object_set_new(j, "running", json_integer(u->running));
		json_object_set_new(j, "pending", json_integer(u->pending));
		json_array_append_new(a, j);
	}
	json_object_set_new(o, "usage", a);
	return o;
}

json_t *output_json_class(const Hpq__PriorityClass *c)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_str(c->name));
	json_object_set_new(o, "weight", json_integer(c->weight));
	json_object_set_new(o, "preemptible", json_boolean(c->preemptible));
	json_object_set_new(o, "max_time_s", json_integer((json_int_t)c->max_time_s));
	return o;
}

static void json_print(const struct output_ctx *o, json_t *v)
{
	json_dumpf(v, o->out, JSON_INDENT(2));
	fputc('\n', o->out);
	json_decref(v);
}

static void json_submitted(const struct output_ctx *o, uint64_t id)
{
	json_print(o, json_pack("{s:I}", "id", (json_int_t)id));
}

/*
 * The task list's writer. Building each task as jansson values and dumping
 * them cost about 130,000 instructions a task (a list of 100,000 took
 * seconds), so the list is written straight from the reply instead, byte
 * for byte what json_dumps(output_json_task(t), JSON_INDENT(2)) prints
 * inside the array (tests/unit/test_client_output.c compares the two).
 * Only strings that are plain printable ASCII are written here; any other
 * goes through output_json_text and jansson, whose escaping and UTF-8
 * repair are then the same as everywhere else.
 */
#define JW_DEPTH 8
/* Slots of the cache of key texts (jw_key), by the key's address. */
#define JW_KEYS 128
/* The most a cached key text holds: "\n", the indentation, the quoted key
 * and ": ". A longer one is written without the cache. */
#define JW_KEY_TEXT 48

/* What jw_key writes before a key's value, but its comma. */
struct jw_key_text {
	const char *key;        /* the key's address: the writer's keys are literals */
	unsigned depth;
	size_t len;
	char text[JW_KEY_TEXT];
};

struct jw {
	FILE *f;
	char buf[65536];        /* written to f when full: stdio's per-call cost */
	size_t len;             /* was most of the rest */
	unsigned depth;
	bool first[JW_DEPTH];   /* nothing written yet in the object or array at depth */
	time_t day_secs;        /* output_time_iso's last second, kept: most tasks */
	char day[24];           /* of a list share their submit second */
	size_t day_len;
	bool has_day;
	/* A task writes 47 keys, the same literals at the same depth, task
	 * after task: each one's text is made once and then copied. */
	struct jw_key_text keys[JW_KEYS];
};

static void jw_flush(struct jw *w)
{
	output_write(w->f, w->buf, w->len);
	w->len = 0;
}

static void jw_put(struct jw *w, const char *s, size_t n)
{
	if (w->len + n > sizeof(w->buf)) {
		jw_flush(w);
		if (n > sizeof(w->buf)) {
			output_write(w->f, s, n);
			return;
		}
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void jw_putc(struct jw *w, char c)
{
	if (w->len == sizeof(w->buf))
		jw_flush(w);
	w->buf[w->len++] = c;
}

/* At p, a value's indentation at depth d ("\n" and two spaces a level),
 * then key's text if any; returns the end. */
static char *jw_indent_key(char *p, size_t d, const char *key, size_t klen)
{
	*p++ = '\n';
	memset(p, ' ', 2 * d);
	p += 2 * d;
	if (key) {
		*p++ = '"';
		memcpy(p, key, klen);
		p += klen;
		memcpy(p, "\": ", 3);
		p += 3;
	}
	return p;
}

/* Before a value inside the current object or array: its separator,
 * then jw_indent_key's text, written into the buffer at once. */
static void jw_sep(struct jw *w, const char *key, size_t klen)
{
	size_t d = w->depth, need = 2 + 2 * d + (key ? klen + 4 : 0);
	char *p;

	if (w->len + need > sizeof(w->buf))
		jw_flush(w);
	p = w->buf + w->len;
	if (!w->first[d])
		*p++ = ',';
	w->first[d] = false;
	w->len = (size_t)(jw_indent_key(p, d, key, klen) - w->buf);
}

static void jw_next(struct jw *w)
{
	jw_sep(w, NULL, 0);
}

static void jw_open(struct jw *w, char c)
{
	jw_putc(w, c);
	if (w->depth + 1 >= JW_DEPTH)
		hpq_fatal("json: nested too deep");
	w->first[++w->depth] = true;
}

static void jw_close(struct jw *w, char c)
{
	static const char spaces[] = "                                ";
	bool empty = w->first[w->depth];

	w->depth--;
	if (!empty) {
		jw_putc(w, '\n');
		jw_put(w, spaces, 2 * w->depth < sizeof(spaces) - 1 ? 2 * w->depth
								      : sizeof(spaces) - 1);
	}
	jw_putc(w, c);
}

/* A string value: plain printable ASCII as it is, anything else as jansson
 * writes it. */
static void jw_string(struct jw *w, const char *s)
{
	const unsigned char *p;
	char *dumped;
	json_t *v;

	if (!s)
		s = "";
	for (p = (const unsigned char *)s; *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\';
	     p++)
		;
	if (!*p) {
		jw_putc(w, '"');
		jw_put(w, s, (size_t)(p - (const unsigned char *)s));
		jw_putc(w, '"');
		return;
	}
	v = output_json_text(s, strlen(s));
	dumped = json_dumps(v, JSON_ENCODE_ANY);
	if (!dumped)
		hpq_fatal("json: cannot print a string");
	jw_put(w, dumped, strlen(dumped));
	free(dumped);
	json_decref(v);
}

/* "key": (keys are ours: plain ASCII literals) */
static void jw_key(struct jw *w, const char *key)
{
	struct jw_key_text *k = &w->keys[((uintptr_t)key * 0x9e3779b97f4a7c15u) >> 57];
	size_t d = w->depth;
	char *p;

	if (k->key != key || k->depth != d) {
		size_t klen = strlen(key);

		if (1 + 2 * d + klen + 4 > JW_KEY_TEXT) {
			jw_sep(w, key, klen);
			return;
		}
		k->key = key;
		k->depth = (unsigned)d;
		k->len = (size_t)(jw_indent_key(k->text, d, key, klen) - k->text);
	}
	/* The whole of text, whatever its length: one copy of a known size. */
	if (w->len + 1 + JW_KEY_TEXT > sizeof(w->buf))
		jw_flush(w);
	p = w->buf + w->len;
	if (!w->first[d])
		*p++ = ',';
	w->first[d] = false;
	memcpy(p, k->text, JW_KEY_TEXT);
	w->len = (size_t)(p + k->len - w->buf);
}

/* json_integer's text ("%lld"), without printf. */
static void jw_int(struct jw *w, json_int_t x)
{
	char buf[24], *p;

	p = output_uint(x < 0 ? 0ull - (unsigned long long)x : (unsigned long long)x, buf,
			sizeof(buf));
	if (x < 0)
		*--p = '-';
	jw_put(w, p, (size_t)(buf + sizeof(buf) - 1 - p)); /* not output_uint's NUL */
}

static void jw_null(struct jw *w)
{
	jw_put(w, "null", 4);
}

static void jw_bool(struct jw *w, bool b)
{
	if (b)
		jw_put(w, "true", 4);
	else
		jw_put(w, "false", 5);
}

static void jw_key_int(struct jw *w, const char *key, json_int_t x)
{
	jw_key(w, key);
	jw_int(w, x);
}

static void jw_key_string(struct jw *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_string(w, s);
}

/* json_time_ms: output_time_iso's text, its date and time part kept for
 * the next time in the same second. */
static void jw_key_time(struct jw *w, const char *key, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	char buf[OUTPUT_TIME_LEN];
	struct tm tm;
	size_t n;
	int frac;

	jw_key(w, key);
	if (ms <= 0) {
		jw_null(w);
		return;
	}
	if (!w->has_day || w->day_secs != secs) {
		if (!gmtime_r(&secs, &tm) ||
		    !(w->day_len = strftime(w->day, sizeof(w->day), "%Y-%m-%dT%H:%M:%S", &tm))) {
			jw_string(w, output_time_iso(ms, buf, sizeof(buf)));
			return;
		}
		w->day_secs = secs;
		w->has_day = true;
	}
	/* "%s.%03dZ", without printf. */
	frac = (int)(ms % 1000);
	buf[0] = '"';
	memcpy(buf + 1, w->day, w->day_len);
	n = 1 + w->day_len;
	buf[n++] = '.';
	buf[n++] = (char)('0' + frac / 100);
	buf[n++] = (char)('0' + frac / 10 % 10);
	buf[n++] = (char)('0' + frac % 10);
	buf[n++] = 'Z';
	buf[n++] = '"';
	jw_put(w, buf, n);
}

static void jw_strings(struct jw *w, char *const *v, size_t n)
{
	jw_open(w, '[');
	for (size_t i = 0; i < n; i++) {
		jw_next(w);
		jw_string(w, v[i]);
	}
	jw_close(w, ']');
}

static void jw_count(struct jw *w, const char *key, uint64_t n)
{
	jw_key(w, key);
	if (n >= HPQ_UNLIMITED_COUNT)
		jw_null(w);
	else
		jw_int(w, (json_int_t)n);
}

/* output_json_res */
static void jw_res(struct jw *w, const Hpq__Resources *r)
{
	jw_open(w, '{');
	jw_count(w, "gpus", r ? r->gpus : 0);
	jw_count(w, "cpus", r ? r->cpus : 0);
	jw_key(w, "mem");
	if (r && r->mem >= HPQ_UNLIMITED_MEM)
		jw_null(w);
	else
		jw_int(w, (json_int_t)(r ? r->mem : 0));
	jw_close(w, '}');
}

/* A task's array_id, array_index and array_spec: null outside an array,
 * and for an array's pending rest (array_spec) no index. */
static void jw_array_keys(struct jw *w, const Hpq__Task *t)
{
	bool spec = t->array_spec && t->array_spec[0];

	jw_key(w, "array_id");
	if (t->has_array || spec)
		jw_int(w, (json_int_t)t->array_id);
	else
		jw_null(w);
	jw_key(w, "array_index");
	if (t->has_array && !spec)
		jw_int(w, t->array_index);
	else
		jw_null(w);
	jw_key(w, "array_spec");
	if (spec)
		jw_string(w, t->array_spec);
	else
		jw_null(w);
}

/* output_json_task, field for field. */
static void jw_task(struct jw *w, const Hpq__Task *t)
{
	char sig[16];

	jw_open(w, '{');
	jw_key_int(w, "id", (json_int_t)t->id);
	jw_key_string(w, "name", t->name);
	jw_key_string(w, "team", t->team);
	jw_key_string(w, "user", t->user);
	jw_key_int(w, "uid", t->uid);
	jw_key_int(w, "gid", t->gid);
	jw_key_string(w, "class", t->class_);
	jw_key_string(w, "pool", t->pool);
	jw_key_string(w, "state", t->state);
	jw_key_string(w, "reason", t->reason);
	jw_key(w, "queue_position");
	if (t->queue_position)
		jw_int(w, t->queue_position);
	else
		jw_null(w);
	jw_key_int(w, "nodes", t->nodes ? t->nodes : 1);
	jw_key(w, "node_names");
	jw_strings(w, t->node_names, t->n_node_names);
	jw_key(w, "per_node");
	jw_res(w, t->per_node);
	jw_key_int(w, "attempts", t->attempts);
	jw_key_time(w, "submit_time", t->submit_time);
	jw_key_time(w, "start_time", t->start_time);
	jw_key_time(w, "end_time", t->end_time);
	jw_key(w, "exit_code");
	if (t->has_exit_code)
		jw_int(w, t->exit_code);
	else
		jw_null(w);
	jw_key(w, "time_limit");
	if (t->time_limit_s)
		jw_int(w, (json_int_t)t->time_limit_s);
	else
		jw_null(w);
	jw_key_string(w, "checkpoint_dir", t->checkpoint_dir);
	jw_key_string(w, "preempt_signal", output_signal(t->preempt_signal, sig, sizeof(sig)));
	jw_key(w, "grace");
	if (t->grace_s)
		jw_int(w, (json_int_t)t->grace_s);
	else
		jw_null(w);
	jw_key(w, "checkpoints");
	jw_open(w, '[');
	for (size_t i = 0; i < t->n_checkpoints; i++) {
		const Hpq__Checkpoint *c = t->checkpoints[i];

		jw_next(w);
		jw_open(w, '{');
		jw_key_int(w, "step", (json_int_t)c->step);
		jw_key_string(w, "path", c->path);
		jw_key_time(w, "time", c->time * 1000); /* seconds on the wire */
		jw_key_int(w, "attempt", c->attempt);
		jw_close(w, '}');
	}
	jw_close(w, ']');
	jw_key(w, "plan");
	if (t->plan && t->plan[0])
		jw_string(w, t->plan);
	else
		jw_null(w);
	jw_key(w, "recipe");
	if (t->recipe && t->recipe[0]) {
		jw_open(w, '{');
		jw_key_string(w, "name", t->recipe);
		jw_key_string(w, "version", t->recipe_version);
		jw_key(w, "params");
		jw_strings(w, t->recipe_params, t->n_recipe_params);
		jw_close(w, '}');
	} else {
		jw_null(w);
	}
	jw_key(w, "events");
	jw_open(w, '[');
	for (size_t i = 0; i < t->n_events; i++) {
		const Hpq__Event *e = t->events[i];

		jw_next(w);
		jw_open(w, '{');
		jw_key_time(w, "time", e->time);
		jw_key_string(w, "kind", e->kind);
		jw_key_string(w, "actor", e->actor);
		jw_key_string(w, "node", e->node);
		jw_key_string(w, "message", e->message);
		jw_close(w, '}');
	}
	jw_close(w, ']');
	jw_key(w, "argv");
	if (t->redacted)
		jw_null(w);
	else
		jw_strings(w, t->argv, t->n_argv);
	jw_key(w, "cwd");
	if (t->redacted)
		jw_null(w);
	else
		jw_string(w, t->cwd);
	jw_key(w, "redacted");
	jw_bool(w, t->redacted);
	jw_array_keys(w, t);
	jw_key(w, "held");
	jw_bool(w, t->held);
	jw_key_string(w, "dependency", t->dependency ? t->dependency : "");
	jw_key(w, "output");
	if (t->redacted)
		jw_null(w);
	else
		jw_string(w, t->output);
	jw_key(w, "error");
	if (t->redacted)
		jw_null(w);
	else
		jw_string(w, t->error);
	jw_key(w, "has_script");
	jw_bool(w, t->has_script);
	jw_key_int(w, "peak_mem", (json_int_t)t->peak_mem);
	jw_key_int(w, "cpu_usec", (json_int_t)t->cpu_usec);
	jw_key_int(w, "preemptions", t->preemptions);
	jw_close(w, '}');
}

/* A real as jansson prints it with JSON_REAL_PRECISION(9): its own
 * formatting, two of them in a record, is not worth a copy. */
static void jw_real(struct jw *w, double x)
{
	json_t *v = json_real(x);
	char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(9)) : NULL;

	if (s)
		jw_put(w, s, strlen(s));
	else
		jw_null(w);             /* not a number: jansson has no text for it */
	free(s);
	json_decref(v);
}

/* hpq acct's record of t, key for key (hpq(1), hpq acct --json). */
static void jw_acct(struct jw *w, const Hpq__Task *t, int64_t now_ms)
{
	uint32_t nodes = t->nodes ? t->nodes : 1;
	uint32_t gpus = t->per_node ? t->per_node->gpus : 0;
	bool spec = t->array_spec && t->array_spec[0];
	char buf[128], *id;

	jw_open(w, '{');
	jw_key_int(w, "id", (json_int_t)t->id);
	/* "12_[5-99]": an array's dropped indices, of any length */
	if (spec) {
		size_t n = TASK_ID_LEN + strlen(t->array_spec);

		id = xmalloc(n);
		jw_key_string(w, "task", task_id_text(t, id, n));
		free(id);
	} else {
		jw_key_string(w, "task", task_id_text(t, buf, sizeof(buf)));
	}
	jw_array_keys(w, t);
	jw_key_string(w, "name", t->name);
	jw_key_string(w, "user", t->user);
	jw_key_string(w, "team", t->team);
	jw_key_string(w, "class", t->class_);
	jw_key_string(w, "pool", t->pool);
	jw_key_string(w, "state", t->state);
	jw_key(w, "exit_code");
	if (t->has_exit_code)
		jw_int(w, t->exit_code);
	else
		jw_null(w);
	jw_key_string(w, "reason", t->reason);
	jw_key_time(w, "submit_time", t->submit_time);
	jw_key_time(w, "start_time", t->start_time);
	jw_key_time(w, "end_time", t->end_time);
	jw_key_int(w, "elapsed", (json_int_t)task_elapsed_s(t, now_ms));
	jw_key_int(w, "nodes", nodes);
	jw_key(w, "node_names");
	jw_strings(w, t->node_names, t->n_node_names);
	jw_key(w, "per_node");
	jw_res(w, t->per_node);
	jw_key_int(w, "gpus", gpus >= HPQ_UNLIMITED_COUNT ? 0 : (json_int_t)gpus * nodes);
	jw_key(w, "gpu_hours");
	jw_real(w, task_gpu_hours(t, now_ms));
	jw_key(w, "cpu_time");
	jw_real(w, (double)t->cpu_usec / 1e6);
	jw_key_int(w, "peak_mem", (json_int_t)t->peak_mem);
	jw_key_int(w, "attempts", t->attempts);
	jw_key_int(w, "preemptions", t->preemptions);
	jw_close(w, '}');
}

/* An array of a row for each of tasks, as json_dumps(JSON_INDENT(2))
 * prints one array, and a newline: one pass, each task printed as it is
 * read, so that a reply that comes in frames is printed as they come. */
static void jw_rows(FILE *f, struct task_rows *tasks,
		    void (*row)(struct jw *w, const Hpq__Task *t, int64_t now_ms), int64_t now_ms)
{
	struct jw *w = xcalloc(1, sizeof(*w));

	w->f = f;
	w->first[0] = true;
	flockfile(f);
	jw_open(w, '[');
	for (const Hpq__Task *k; (k = tasks->next(tasks));) {
		jw_next(w);
		row(w, k, now_ms);
	}
	jw_close(w, ']');
	jw_putc(w, '\n');
	jw_flush(w);
	funlockfile(f);
	free(w);
}

void output_json_acct(FILE *f, struct task_rows *tasks, int64_t now_ms)
{
	jw_rows(f, tasks, jw_acct, now_ms);
}

static void jw_list_row(struct jw *w, const Hpq__Task *t, int64_t now_ms)
{
	(void)now_ms;
	jw_task(w, t);
}

/* A JSON array of the tasks, as json_dumps(JSON_INDENT(2)) of one array
 * of output_json_task values would print it, and a newline. */
static void json_tasks(const struct output_ctx *o, struct task_rows *tasks)
{
	jw_rows(o->out, tasks, jw_list_row, 0);
}

static void json_task(const struct output_ctx *o, const Hpq__Task *t)
{
	json_print(o, output_json_task(t));
}

static void json_cancelled(const struct output_ctx *o, Hpq__CancelResult *const *r, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *e = json_object();

		json_object_set_new(e, "id", json_integer((json_int_t)r[i]->id));
		json_object_set_new(e, "ok", json_boolean(r[i]->code == 0));
		json_object_set_new(e, "error", r[i]->code == 0 ? json_null()
								: json_str(r[i]->message));
		/* How many tasks: a summary of refusals past hpqd's bound (id 0),
		 * an array's pending indices (its id). */
		if (r[i]->tasks)
			json_object_set_new(e, "tasks", json_integer((json_int_t)r[i]->tasks));
		json_array_append_new(a, e);
	}
	json_print(o, a);
}

static void json_nodes(const struct output_ctx *o, Hpq__Node *const *nodes, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, output_json_node(nodes[i]));
	json_print(o, a);
}

static void json_node(const struct output_ctx *o, const Hpq__Node *n)
{
	json_print(o, output_json_node(n));
}

static void json_teams(const struct output_ctx *o, Hpq__Team *const *teams, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, output_json_team(teams[i]));
	json_print(o, a);
}

static void json_team(const struct output_ctx *o, const Hpq__Team *t)
{
	json_print(o, output_json_team(t));
}

static void json_classes(const struct output_ctx *o, Hpq__PriorityClass *const *c, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, output_json_class(c[i]));
	json_print(o, a);
}

static void json_version(const struct output_ctx *o, const struct output_version *v)
{
	json_t *root = json_object(), *c = json_object(), *s;

	json_object_set_new(c, "version", json_str(v->client_version));
	json_object_set_new(c, "protocol", json_integer(v->client_protocol));
	json_object_set_new(root, "client", c);
	if (v->server_version) {
		s = json_object();
		json_object_set_new(s, "version", json_str(v->server_version));
		json_object_set_new(s, "address", json_str(v->address));
		json_object_set_new(s, "user", json_str(v->user));
		json_object_set_new(s, "admin", json_boolean(v->admin));
	} else {
		s = json_null();
	}
	json_object_set_new(root, "server", s);
	json_print(o, root);
}

static void json_versions(const struct output_ctx *o, const Hpq__VersionsReply *r)
{
	json_t *v = json_object(), *a = json_array();

	for (size_t i = 0; i < r->n_releases; i++) {
		const Hpq__Release *x = r->releases[i];
		json_t *e = json_object();

		json_object_set_new(e, "version", json_str(x->version));
		json_object_set_new(e, "released", json_str(x->released));
		json_object_set_new(e, "end_of_standard_support",
				    json_str(x->end_of_standard_support));
		json_object_set_new(e, "end_of_extended_support",
				    json_str(x->end_of_extended_support));
		json_object_set_new(e, "status", json_str(x->status));
		json_object_set_new(e, "protocol", json_integer(x->protocol));
		json_object_set_new(e, "protocol_min", json_integer(x->protocol_min));
		json_object_set_new(e, "schema", json_integer(x->schema));
		json_object_set_new(e, "default", json_boolean(x->default_));
		json_array_append_new(a, e);
	}
	json_object_set_new(v, "releases", a);
	json_object_set_new(v, "catalog", json_str(r->catalog));
	json_object_set_new(v, "catalog_error", *r->catalog_error ? json_str(r->catalog_error)
								  : json_null());
	json_object_set_new(v, "daemon", json_pack("{s:s, s:i, s:i}", "version",
						     r->daemon_version, "protocol",
						     (int)r->daemon_protocol, "schema",
						     (int)r->daemon_schema));
	a = json_array();
	for (size_t i = 0; i < r->n_agents; i++)
		json_array_append_new(a, json_pack("{s:s, s:o, s:b}", "node", r->agents[i]->node,
						   "version", *r->agents[i]->version
								      ? json_string(r->agents[i]->version)
								      : json_null(),
						   "connected", r->agents[i]->connected));
	json_object_set_new(v, "agents", a);
	json_print(o, v);
}

const struct output output_json = {
	.submitted = json_submitted,
	.tasks = json_tasks,
	.task = json_task,
	.cancelled = json_cancelled,
	.nodes = json_nodes,
	.node = json_node,
	.teams = json_teams,
	.team = json_team,
	.classes = json_classes,
	.version = json_version,
	.versions = json_versions,
};
