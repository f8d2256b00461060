/*
 * output-json.c: the --json output. One JSON document per command on
 * stdout, built with jansson from the reply and dumped with two-space
 * indentation. Field names are the same in every command (docs/decisions.md: id, name, team, user, class, pool, state, reason, nodes,
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
#include <stdlib.h>
#include <string.h>

#include "log.h"
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
 * One task at a time, each freed before the next, so that a list of
 * 100,000 tasks never holds them all as JSON values (malloc and page
 * faults were most of its cost). What it prints is what dumping them as
 * one array prints: each object indented one level more, which is two
 * spaces after every newline (a string's newlines are escaped, so every
 * newline in a dump is the layout's).
 */
static void json_tasks(const struct output_ctx *o, Hpq__Task *const *tasks, size_t n)
{
	if (!n) {
		json_print(o, json_array());
		return;
	}
	fputs("[\n", o->out);
	for (size_t i = 0; i < n; i++) {
		json_t *v = output_json_task(tasks[i]);
		char *s = json_dumps(v, JSON_INDENT(2)), *p, *nl;

		if (!s)
			hpq_fatal("json: cannot print a task");
		fputs("  ", o->out);
		for (p = s; (nl = strchr(p, '\n')); p = nl + 1) {
			fwrite(p, 1, (size_t)(nl + 1 - p), o->out);
			fputs("  ", o->out);
		}
		fputs(p, o->out);
		fputs(i + 1 < n ? ",\n" : "\n", o->out);
		free(s);
		json_decref(v);
	}
	fputs("]\n", o->out);
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
