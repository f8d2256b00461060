/*
 * recipe.c: reading, merging and resolving recipes, and the wrapper
 * script they run as (recipe.h). YAML is libyaml's: the file is loaded as
 * a document and its node tree checked key by key, so an unknown key or a
 * value of the wrong shape is reported with its line.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "error.h"
#include "parse.h"
#include "recipe.h"
#include "xalloc.h"

#ifndef HPQ_RECIPE_SYSTEM_DIR
#define HPQ_RECIPE_SYSTEM_DIR "/usr/share/hpq/recipes"
#endif
#define RECIPE_SITE_DIR "/etc/hpq/recipes"
#define RECIPE_MAX_BASES 32

/* ---------------------------------------------------------------- small helpers */

static void strv_push(char ***v, size_t *n, char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = s;
}

void recipe_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void strv_free_n(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char **strv_dup_n(char *const *v, size_t n)
{
	char **d = n ? xcalloc(n, sizeof(*d)) : NULL;

	for (size_t i = 0; i < n; i++)
		d[i] = xstrdup(v[i]);
	return d;
}

static void set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? xstrdup(src) : NULL;
}

const char *recipe_launcher_name(enum recipe_launcher l)
{
	switch (l) {
	case RECIPE_LAUNCH_TORCHRUN: return "torchrun";
	case RECIPE_LAUNCH_MPIRUN: return "mpirun";
	default: return "none";
	}
}

static const char *const type_names[] = {"string", "int", "bool", "duration", "size", "time"};

/* What a value of type t is, for "'x' is not a ..." */
static const char *type_name(enum recipe_type t)
{
	static const char *const names[] = {"string", "int", "bool", "duration", "size",
					    "time limit"};

	return names[t];
}

/* ---------------------------------------------------------------- search path */

char **recipe_search_path(char *const *dirs, size_t n_dirs, const char *env_path,
			  const char *config_home)
{
	char **v = NULL, *s;
	size_t n = 0;

	for (size_t i = 0; i < n_dirs; i++)
		strv_push(&v, &n, xstrdup(dirs[i]));
	if (env_path && env_path[0]) {
		char *copy = xstrdup(env_path), *save = NULL;

		for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
			strv_push(&v, &n, xstrdup(d));
		free(copy);
	}
	if (config_home && config_home[0]) {
		xasprintf(&s, "%s/hpq/recipes", config_home);
		strv_push(&v, &n, s);
	}
	strv_push(&v, &n, xstrdup(RECIPE_SITE_DIR));
	strv_push(&v, &n, xstrdup(HPQ_RECIPE_SYSTEM_DIR));
	strv_push(&v, &n, NULL);
	return v;
}

/* ---------------------------------------------------------------- reading */

struct reader {
	yaml_document_t doc;
	const char *file;
	char *err;
	size_t errlen;
};

static int rd_err(struct reader *rd, const yaml_node_t *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int rd_err(struct reader *rd, const yaml_node_t *at, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return hpq_errf(rd->err, rd->errlen, HPQ_EINVAL, "%s:%zu: %s", rd->file,
			at ? at->start_mark.line + 1 : 1, msg);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A scalar value, or an error naming the key. */
static int rd_scalar(struct reader *rd, const char *key, const yaml_node_t *v, char **ret)
{
	const char *s = scalar(v);

	if (!s)
		return rd_err(rd, v, "'%s' takes a single value, not a %s", key,
			      v->type == YAML_MAPPING_NODE ? "mapping" : "list");
	set_str(ret, s);
	return 0;
}

typedef int (*rd_pair_fn)(struct reader *rd, struct recipe *r, const char *key,
			  const yaml_node_t *k, const yaml_node_t *v, void *arg);

/* Calls fn for every key of a mapping node, checking the keys are scalars
 * and unique. */
static int rd_mapping(struct reader *rd, struct recipe *r, const char *what,
		      const yaml_node_t *m, rd_pair_fn fn, void *arg)
{
	if (m->type != YAML_MAPPING_NODE)
		return rd_err(rd, m, "%s must be a mapping (key: value lines)", what);
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(&rd->doc, p->key);
		const yaml_node_t *v = yaml_document_get_node(&rd->doc, p->value);
		const char *key = scalar(k);
		int rc;

		if (!key)
			return rd_err(rd, k, "a key of %s is not a plain name", what);
		for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++)
			if (!strcmp(scalar(yaml_document_get_node(&rd->doc, q->key)) ?: "", key))
				return rd_err(rd, k, "'%s' is given twice in %s", key, what);
		rc = fn(rd, r, key, k, v, arg);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int rd_type(const char *s, enum recipe_type *ret)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (!strcmp(s, type_names[i])) {
			*ret = (enum recipe_type)i;
			return 0;
		}
	return HPQ_EINVAL;
}

static int check_value(enum recipe_type t, const char *v, char **norm);

static int rd_param_field(struct reader *rd, struct recipe *r, const char *key,
			  const yaml_node_t *k, const yaml_node_t *v, void *arg)
{
	struct recipe_param *p = arg;
	char *s = NULL;
	int rc;

	if (strcmp(key, "type") && strcmp(key, "default") && strcmp(key, "description"))
		return rd_err(rd, k, "unknown key '%s' in parameter '%s' (type, default, "
			      "description)", key, p->name);
	if (rd_scalar(rd, key, v, &s) < 0)
		return HPQ_EINVAL;
	if (!strcmp(key, "type")) {
		rc = rd_type(s, &p->type);
		free(s);
		if (rc < 0)
			return rd_err(rd, v, "parameter '%s': type '%s' is not string, int, bool, "
				      "duration, time or size", p->name, scalar(v));
		p->has_type = true;
	} else if (!strcmp(key, "default")) {
		free(p->def);
		p->def = s;
	} else {
		free(p->description);
		p->description = s;
	}
	return 0;
}

static bool param_name_ok(const char *s)
{
	if (!s[0] || !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_", s[0]))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
	       strlen(s) && strcmp(s, "path");
}

static int rd_param(struct reader *rd, struct recipe *r, const char *key, const yaml_node_t *k,
		    const yaml_node_t *v, void *arg)
{
	struct recipe_param *p;
	char *norm = NULL;

	if (!param_name_ok(key))
		return rd_err(rd, k, "'%s' is not a usable parameter name (letters, digits, "
			      "'_' and '-', starting with a letter; 'path' is reserved)", key);
	r->params = xreallocarray(r->params, r->n_params + 1, sizeof(*r->params));
	p = &r->params[r->n_params++];
	memset(p, 0, sizeof(*p));
	p->name = xstrdup(key);
	p->line = (unsigned)k->start_mark.line + 1;
	if (rd_mapping(rd, r, "a parameter", v, rd_param_field, p) < 0)
		return HPQ_EINVAL;
	/* A default is checked against its type here, where its line is known. */
	if (p->has_type && p->def && check_value(p->type, p->def, &norm) < 0)
		return rd_err(rd, v, "parameter '%s': default '%s' is not a %s", key, p->def,
			      type_name(p->type));
	free(norm);
	return 0;
}

static int rd_resources(struct reader *rd, struct recipe *r, const char *key,
			const yaml_node_t *k, const yaml_node_t *v, void *arg)
{
	if (!strcmp(key, "gpus"))
		return rd_scalar(rd, key, v, &r->gpus);
	if (!strcmp(key, "cpus"))
		return rd_scalar(rd, key, v, &r->cpus);
	if (!strcmp(key, "mem"))
		return rd_scalar(rd, key, v, &r->mem);
	return rd_err(rd, k, "unknown key '%s' in resources (gpus, cpus, mem)", key);
}

static int rd_resume(struct reader *rd, struct recipe *r, const char *key, const yaml_node_t *k,
		     const yaml_node_t *v, void *arg)
{
	if (!strcmp(key, "arg"))
		return rd_scalar(rd, key, v, &r->resume_arg);
	if (!strcmp(key, "env"))
		return rd_scalar(rd, key, v, &r->resume_env);
	return rd_err(rd, k, "unknown key '%s' in checkpoint.resume (arg or env)", key);
}

static int rd_checkpoint(struct reader *rd, struct recipe *r, const char *key,
			 const yaml_node_t *k, const yaml_node_t *v, void *arg)
{
	if (!strcmp(key, "dir"))
		return rd_scalar(rd, key, v, &r->ckpt_dir);
	if (!strcmp(key, "resume")) {
		if (rd_mapping(rd, r, "checkpoint.resume", v, rd_resume, NULL) < 0)
			return HPQ_EINVAL;
		if (r->resume_arg && r->resume_env)
			return rd_err(rd, v, "checkpoint.resume takes arg or env, not both");
		if (!r->resume_arg && !r->resume_env)
			return rd_err(rd, v, "checkpoint.resume needs arg or env");
		return 0;
	}
	return rd_err(rd, k, "unknown key '%s' in checkpoint (dir, resume)", key);
}

static bool env_name_ok(const char *s)
{
	if (!s[0] || !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_", s[0]))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
	       strlen(s);
}

static int rd_env(struct reader *rd, struct recipe *r, const char *key, const yaml_node_t *k,
		  const yaml_node_t *v, void *arg)
{
	char *s = NULL;

	if (!env_name_ok(key))
		return rd_err(rd, k, "'%s' is not a variable name", key);
	if (rd_scalar(rd, key, v, &s) < 0)
		return HPQ_EINVAL;
	r->env = xreallocarray(r->env, r->n_env + 1, sizeof(*r->env));
	r->env[r->n_env++] = (struct recipe_kv){xstrdup(key), s};
	return 0;
}

static int rd_top(struct reader *rd, struct recipe *r, const char *key, const yaml_node_t *k,
		  const yaml_node_t *v, void *arg)
{
	if (!strcmp(key, "name"))
		return rd_scalar(rd, key, v, &r->name);
	if (!strcmp(key, "version"))
		return rd_scalar(rd, key, v, &r->version);
	if (!strcmp(key, "description"))
		return rd_scalar(rd, key, v, &r->description);
	if (!strcmp(key, "base"))
		return rd_scalar(rd, key, v, &r->base);
	if (!strcmp(key, "nodes"))
		return rd_scalar(rd, key, v, &r->nodes);
	if (!strcmp(key, "class"))
		return rd_scalar(rd, key, v, &r->class_);
	if (!strcmp(key, "time"))
		return rd_scalar(rd, key, v, &r->time);
	if (!strcmp(key, "params"))
		return rd_mapping(rd, r, "params", v, rd_param, NULL);
	if (!strcmp(key, "resources"))
		return rd_mapping(rd, r, "resources", v, rd_resources, NULL);
	if (!strcmp(key, "checkpoint"))
		return rd_mapping(rd, r, "checkpoint", v, rd_checkpoint, NULL);
	if (!strcmp(key, "env"))
		return rd_mapping(rd, r, "env", v, rd_env, NULL);
	if (!strcmp(key, "launcher")) {
		const char *s = scalar(v);

		if (s && !strcmp(s, "torchrun"))
			r->launcher = RECIPE_LAUNCH_TORCHRUN;
		else if (s && !strcmp(s, "mpirun"))
			r->launcher = RECIPE_LAUNCH_MPIRUN;
		else if (s && !strcmp(s, "none"))
			r->launcher = RECIPE_LAUNCH_NONE;
		else
			return rd_err(rd, v, "launcher must be torchrun, mpirun or none");
		r->has_launcher = true;
		return 0;
	}
	if (!strcmp(key, "command")) {
		if (v->type != YAML_SEQUENCE_NODE)
			return rd_err(rd, v, "command must be a list of words, e.g. "
				      "[python3, train.py, --lr, \"{lr}\"]");
		strv_free_n(r->command, r->n_command);
		r->command = NULL;
		r->n_command = 0;
		for (yaml_node_item_t *i = v->data.sequence.items.start;
		     i < v->data.sequence.items.top; i++) {
			const yaml_node_t *w = yaml_document_get_node(&rd->doc, *i);

			if (!scalar(w))
				return rd_err(rd, w, "each word of command must be a single value");
			strv_push(&r->command, &r->n_command, xstrdup(scalar(w)));
		}
		if (r->n_command == 0)
			return rd_err(rd, v, "command is empty");
		r->has_command = true;
		return 0;
	}
	return rd_err(rd, k, "unknown key '%s' (name, version, description, base, params, "
		      "resources, nodes, class, time, command, launcher, checkpoint, env)", key);
}

int recipe_parse_file(const char *file, struct recipe *ret, char *err, size_t errlen)
{
	struct reader rd = {.file = file, .err = err, .errlen = errlen};
	yaml_parser_t parser;
	yaml_node_t *root;
	struct recipe r;
	FILE *f;
	int rc = 0;

	memset(&r, 0, sizeof(r));
	f = fopen(file, "rb");
	if (!f)
		return hpq_errf(err, errlen, -errno, "cannot read %s: %s", file, strerror(errno));
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return hpq_errf(err, errlen, -ENOMEM, "%s: cannot start the YAML parser", file);
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &rd.doc)) {
		rc = hpq_errf(err, errlen, HPQ_EINVAL, "%s:%zu:%zu: YAML syntax error: %s%s%s",
			      file, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			      parser.problem ? parser.problem : "unreadable",
			      parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		fclose(f);
		return rc;
	}
	yaml_parser_delete(&parser);
	fclose(f);
	root = yaml_document_get_root_node(&rd.doc);
	if (!root)
		rc = hpq_errf(err, errlen, HPQ_EINVAL, "%s: the recipe is empty", file);
	else
		rc = rd_mapping(&rd, &r, "a recipe", root, rd_top, NULL);
	yaml_document_delete(&rd.doc);
	if (rc < 0) {
		recipe_release(&r);
		return rc;
	}
	r.path = xstrdup(file);
	*ret = r;
	return 0;
}

void recipe_release(struct recipe *r)
{
	free(r->name);
	free(r->version);
	free(r->description);
	free(r->base);
	free(r->path);
	for (size_t i = 0; i < r->n_params; i++) {
		free(r->params[i].name);
		free(r->params[i].def);
		free(r->params[i].description);
	}
	free(r->params);
	free(r->gpus);
	free(r->cpus);
	free(r->mem);
	free(r->nodes);
	free(r->class_);
	free(r->time);
	strv_free_n(r->command, r->n_command);
	free(r->ckpt_dir);
	free(r->resume_arg);
	free(r->resume_env);
	for (size_t i = 0; i < r->n_env; i++) {
		free(r->env[i].key);
		free(r->env[i].value);
	}
	free(r->env);
	memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------------- finding, bases */

static bool recipe_name_ok(const char *s)
{
	return s[0] && s[0] != '.' && !strchr(s, '/') &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
		       strlen(s);
}

/* The file for name on path: DIR/NAME.yaml, then DIR/NAME.yml. */
static char *recipe_find(char *const *path, const char *name)
{
	static const char *const exts[] = {"yaml", "yml"};
	struct stat sb;
	char *f;

	for (size_t i = 0; path && path[i]; i++) {
		for (size_t j = 0; j < 2; j++) {
			xasprintf(&f, "%s/%s.%s", path[i], name, exts[j]);
			if (stat(f, &sb) == 0 && S_ISREG(sb.st_mode))
				return f;
			free(f);
		}
	}
	return NULL;
}

/* Reads name's file and checks its name: key matches the file's. */
static int recipe_read_named(char *const *path, const char *name, struct recipe *ret, char *err,
			     size_t errlen)
{
	char *file;
	int rc;

	if (!recipe_name_ok(name))
		return hpq_errf(err, errlen, HPQ_EINVAL, "'%s' is not a recipe name", name);
	file = recipe_find(path, name);
	if (!file)
		return hpq_errf(err, errlen, HPQ_ENOTFOUND, "no recipe '%s' on the recipe path "
				"(hpq recipe list shows them)", name);
	rc = recipe_parse_file(file, ret, err, errlen);
	if (rc == 0 && ret->name && strcmp(ret->name, name)) {
		rc = hpq_errf(err, errlen, HPQ_EINVAL, "%s: name '%s' does not match the file "
			      "name '%s'", file, ret->name, name);
		recipe_release(ret);
	}
	if (rc == 0 && !ret->name)
		ret->name = xstrdup(name);
	free(file);
	return rc;
}

/* Merges base into r: what r does not set, it takes from base. */
static void recipe_merge(struct recipe *r, const struct recipe *base)
{
#define TAKE(f) do { if (!r->f && base->f) r->f = xstrdup(base->f); } while (0)
	TAKE(version);
	TAKE(description);
	TAKE(gpus);
	TAKE(cpus);
	TAKE(mem);
	TAKE(nodes);
	TAKE(class_);
	TAKE(time);
	TAKE(ckpt_dir);
#undef TAKE
	if (!r->resume_arg && !r->resume_env) {
		set_str(&r->resume_arg, base->resume_arg);
		set_str(&r->resume_env, base->resume_env);
	}
	if (!r->has_command && base->has_command) {
		r->command = strv_dup_n(base->command, base->n_command);
		r->n_command = base->n_command;
		r->has_command = true;
	}
	if (!r->has_launcher && base->has_launcher) {
		r->launcher = base->launcher;
		r->has_launcher = true;
	}
	/* Parameters: the base's first, in their order, a derived entry
	 * overriding only the fields it gives; then the derived ones. */
	{
		struct recipe_param *v = xcalloc(base->n_params + r->n_params + 1, sizeof(*v));
		size_t n = 0;

		for (size_t i = 0; i < base->n_params; i++) {
			const struct recipe_param *b = &base->params[i];
			struct recipe_param *p = &v[n++];

			p->name = xstrdup(b->name);
			p->type = b->type;
			p->has_type = b->has_type;
			p->def = b->def ? xstrdup(b->def) : NULL;
			p->description = b->description ? xstrdup(b->description) : NULL;
			p->line = b->line;
			for (size_t j = 0; j < r->n_params; j++) {
				struct recipe_param *d = &r->params[j];

				if (!d->name || strcmp(d->name, b->name))
					continue;
				if (d->has_type) {
					p->type = d->type;
					p->has_type = true;
				}
				if (d->def)
					set_str(&p->def, d->def);
				if (d->description)
					set_str(&p->description, d->description);
				free(d->name);
				d->name = NULL; /* taken */
			}
		}
		for (size_t j = 0; j < r->n_params; j++) {
			if (r->params[j].name)
				v[n++] = r->params[j];
			else {
				free(r->params[j].def);
				free(r->params[j].description);
			}
		}
		free(r->params);
		r->params = v;
		r->n_params = n;
	}
	/* env: per variable, the derived value wins. */
	for (size_t i = 0; i < base->n_env; i++) {
		bool have = false;

		for (size_t j = 0; j < r->n_env && !have; j++)
			have = !strcmp(r->env[j].key, base->env[i].key);
		if (have)
			continue;
		r->env = xreallocarray(r->env, r->n_env + 1, sizeof(*r->env));
		r->env[r->n_env++] = (struct recipe_kv){xstrdup(base->env[i].key),
							xstrdup(base->env[i].value)};
	}
}

int recipe_load(char *const *path, const char *name, struct recipe *ret, char *err,
		size_t errlen)
{
	struct recipe r, base;
	char *chain[RECIPE_MAX_BASES + 1];
	size_t n = 0;
	int rc;

	rc = recipe_read_named(path, name, &r, err, errlen);
	if (rc < 0)
		return rc;
	chain[n++] = xstrdup(name);
	rc = 0;
	while (r.base) {
		char *b = r.base, msg[1024];
		size_t len = 0;

		r.base = NULL;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(chain[i], b))
				continue;
			/* A cycle: name the whole chain, back to where it loops. */
			msg[0] = '\0';
			for (size_t j = 0; j < n; j++)
				len += (size_t)snprintf(msg + len, len < sizeof(msg) ?
							sizeof(msg) - len : 0, "%s -> ",
							chain[j]);
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "recipe '%s': its bases form a "
				      "cycle: %s%s", name, msg, b);
			free(b);
			goto out;
		}
		if (n == RECIPE_MAX_BASES) {
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "recipe '%s': more than %d bases",
				      name, RECIPE_MAX_BASES);
			free(b);
			goto out;
		}
		rc = recipe_read_named(path, b, &base, err, errlen);
		if (rc < 0) {
			char inner[900];

			snprintf(inner, sizeof(inner), "%s", err);
			rc = hpq_errf(err, errlen, rc, "recipe '%s', base '%s': %s",
				      chain[n - 1], b, inner);
			free(b);
			goto out;
		}
		chain[n++] = b;
		recipe_merge(&r, &base);
		r.base = base.base;
		base.base = NULL;
		recipe_release(&base);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(chain[i]);
	if (rc < 0) {
		recipe_release(&r);
		return rc;
	}
	*ret = r;
	return 0;
}

/* ---------------------------------------------------------------- resolving */

/* Checks v against t; *norm gets the value as it is substituted. */
static int check_value(enum recipe_type t, const char *v, char **norm)
{
	uint64_t u;

	switch (t) {
	case RECIPE_STRING:
		break;
	case RECIPE_INT: {
		const char *d = v[0] == '-' ? v + 1 : v;

		if (hpq_parse_uint(d, 0, INT64_MAX, &u) < 0)
			return HPQ_EINVAL;
		break;
	}
	case RECIPE_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") ||
		    !strcmp(v, "on")) {
			*norm = xstrdup("true");
			return 0;
		}
		if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") ||
		    !strcmp(v, "off")) {
			*norm = xstrdup("false");
			return 0;
		}
		return HPQ_EINVAL;
	case RECIPE_DURATION:
		if (hpq_parse_duration(v, &u) < 0)
			return HPQ_EINVAL;
		break;
	case RECIPE_TIME:
		if (hpq_parse_time_limit(v, &u) < 0)
			return HPQ_EINVAL;
		break;
	case RECIPE_SIZE:
		if (hpq_parse_size_mib(v, &u) < 0)
			return HPQ_EINVAL;
		break;
	}
	*norm = xstrdup(v);
	return 0;
}

struct values {
	const struct recipe *r;
	char **v; /* by parameter index */
};

/* s with every {param} replaced; "{{" and "}}" are literal braces; {path}
 * is kept when keep_path. Braces that cannot be a placeholder stay as
 * they are, so that shell text in a command needs no escaping: "${VAR}"
 * (a '$' before the brace) and "{ print $1 }" (not a name inside). */
static int subst(const struct values *vals, const char *where, const char *s, bool keep_path,
		 char **ret, char *err, size_t errlen)
{
	size_t cap = strlen(s) + 1, n = 0;
	char *out = xmalloc(cap);

#define PUT(p, len) do {                                              \
		if (n + (len) + 1 > cap) {                            \
			cap = (n + (len) + 1) * 2;                    \
			out = xrealloc(out, cap);                     \
		}                                                     \
		memcpy(out + n, (p), (len));                          \
		n += (len);                                           \
	} while (0)
	for (const char *p = s; *p;) {
		const char *close;
		size_t i;

		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			PUT(p, 1);
			p += 2;
			continue;
		}
		close = *p == '{' ? strchr(p, '}') : NULL;
		if (!close || (p > s && p[-1] == '$') || close == p + 1 ||
		    strspn(p + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789_-") != (size_t)(close - p - 1)) {
			PUT(p, 1);
			p++;
			continue;
		}
		if (keep_path && close - p == 5 && !strncmp(p, "{path}", 6)) {
			PUT(p, 6);
			p += 6;
			continue;
		}
		for (i = 0; i < vals->r->n_params; i++)
			if (strlen(vals->r->params[i].name) == (size_t)(close - p - 1) &&
			    !strncmp(vals->r->params[i].name, p + 1, (size_t)(close - p - 1)))
				break;
		if (i == vals->r->n_params) {
			free(out);
			return hpq_errf(err, errlen, HPQ_EINVAL, "%s: {%.*s} is not a parameter "
					"of the recipe", where, (int)(close - p - 1), p + 1);
		}
		PUT(vals->v[i], strlen(vals->v[i]));
		p = close + 1;
	}
#undef PUT
	out[n] = '\0';
	*ret = out;
	return 0;
}

static int resolve_uint(const struct values *vals, const char *field, const char *tmpl,
			uint64_t min, uint64_t max, uint32_t *ret, char *err, size_t errlen)
{
	char *s;
	uint64_t v;
	int rc;

	if (!tmpl)
		return 0;
	rc = subst(vals, field, tmpl, false, &s, err, errlen);
	if (rc < 0)
		return rc;
	if (hpq_parse_uint(s, min, max, &v) < 0)
		rc = hpq_errf(err, errlen, HPQ_EINVAL, "%s is '%s', not a whole number from "
			      "%llu to %llu", field, s, (unsigned long long)min,
			      (unsigned long long)max);
	else
		*ret = (uint32_t)v;
	free(s);
	return rc;
}

/* The time: field substituted. A duration parameter's bare number is
 * seconds, and a time limit's is minutes (as --time reads it): a duration
 * goes in as its seconds ("3600s"), so that it means there what it was
 * checked as; a time parameter, and any other, goes in as given. */
static int subst_time(const struct values *vals, const char *tmpl, char **ret, char *err,
		      size_t errlen)
{
	const struct recipe *r = vals->r;
	struct values tv = {r, xcalloc(r->n_params + 1, sizeof(char *))};
	uint64_t secs;
	int rc;

	for (size_t i = 0; i < r->n_params; i++) {
		if (r->params[i].type == RECIPE_DURATION &&
		    hpq_parse_duration(vals->v[i], &secs) == 0)
			xasprintf(&tv.v[i], "%llus", (unsigned long long)secs);
		else
			tv.v[i] = xstrdup(vals->v[i]);
	}
	rc = subst(&tv, "time", tmpl, false, ret, err, errlen);
	strv_free_n(tv.v, r->n_params);
	return rc;
}

void recipe_task_release(struct recipe_task *t)
{
	free(t->name);
	free(t->version);
	free(t->path);
	strv_free_n(t->params, t->n_params);
	strv_free_n(t->command, t->n_command);
	free(t->class_);
	free(t->ckpt_dir);
	strv_free_n(t->resume_arg, t->n_resume_arg);
	free(t->resume_env);
	strv_free_n(t->env, t->n_env);
	memset(t, 0, sizeof(*t));
}

int recipe_resolve(const struct recipe *r, char *const *sets, size_t n_sets,
		   struct recipe_task *ret, char *err, size_t errlen)
{
	struct values vals = {r, xcalloc(r->n_params + 1, sizeof(char *))};
	struct recipe_task t;
	char *s = NULL;
	int rc = HPQ_EINVAL;

	memset(&t, 0, sizeof(t));
	if (!r->has_command) {
		rc = hpq_errf(err, errlen, HPQ_EINVAL, "recipe '%s' has no command", r->name);
		goto out;
	}
	/* --set values: each must name a parameter and fit its type. */
	for (size_t i = 0; i < n_sets; i++) {
		const char *eq = strchr(sets[i], '=');
		size_t j;

		if (!eq || eq == sets[i]) {
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "--set takes KEY=VALUE, not '%s'",
				      sets[i]);
			goto out;
		}
		for (j = 0; j < r->n_params; j++)
			if (strlen(r->params[j].name) == (size_t)(eq - sets[i]) &&
			    !strncmp(r->params[j].name, sets[i], (size_t)(eq - sets[i])))
				break;
		if (j == r->n_params) {
			char names[512] = "";
			size_t len = 0;

			for (size_t k = 0; k < r->n_params && len < sizeof(names); k++)
				len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
							k ? ", " : "", r->params[k].name);
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "--set %s: recipe '%s' has no "
				      "parameter '%.*s'%s%s", sets[i], r->name,
				      (int)(eq - sets[i]), sets[i], r->n_params ? "; it has " : "",
				      names);
			goto out;
		}
		free(vals.v[j]);
		vals.v[j] = NULL;
		if (check_value(r->params[j].type, eq + 1, &vals.v[j]) < 0) {
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "--set %s: '%s' is not a %s",
				      sets[i], eq + 1, type_name(r->params[j].type));
			goto out;
		}
	}
	for (size_t j = 0; j < r->n_params; j++) {
		const struct recipe_param *p = &r->params[j];

		if (!vals.v[j] && !p->def) {
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "recipe '%s' needs parameter '%s'%s%s "
				      "(--set %s=VALUE)", r->name, p->name,
				      p->description ? ": " : "",
				      p->description ? p->description : "", p->name);
			goto out;
		}
		if (!vals.v[j] && check_value(p->type, p->def, &vals.v[j]) < 0) {
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "recipe '%s': default '%s' of "
				      "parameter '%s' is not a %s", r->name, p->def, p->name,
				      type_name(p->type));
			goto out;
		}
		xasprintf(&s, "%s=%s", p->name, vals.v[j]);
		strv_push(&t.params, &t.n_params, s);
		s = NULL;
	}

	for (size_t i = 0; i < r->n_command; i++) {
		if ((rc = subst(&vals, "command", r->command[i], false, &s, err, errlen)) < 0)
			goto out;
		strv_push(&t.command, &t.n_command, s);
		s = NULL;
	}
	if ((rc = resolve_uint(&vals, "nodes", r->nodes, 1, 65536, &t.nodes, err, errlen)) < 0 ||
	    (rc = resolve_uint(&vals, "resources.gpus", r->gpus, 0, 1024, &t.gpus, err,
			       errlen)) < 0 ||
	    (rc = resolve_uint(&vals, "resources.cpus", r->cpus, 1, 65536, &t.cpus, err,
			       errlen)) < 0)
		goto out;
	if (r->mem) {
		if ((rc = subst(&vals, "resources.mem", r->mem, false, &s, err, errlen)) < 0)
			goto out;
		if (hpq_parse_size_mib(s, &t.mem_mib) < 0 || t.mem_mib == 0) {
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "resources.mem is '%s', not a size "
				      "like 512M or 64G", s);
			goto out;
		}
		free(s);
		s = NULL;
	}
	if (r->time) {
		if ((rc = subst_time(&vals, r->time, &s, err, errlen)) < 0)
			goto out;
		if (hpq_parse_time_limit(s, &t.time_s) < 0) {
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "time is '%s', not a time limit "
				      "like 2h, 1d or 90m", s);
			goto out;
		}
		t.has_time = true;
		free(s);
		s = NULL;
	}
	if (r->class_) {
		if ((rc = subst(&vals, "class", r->class_, false, &t.class_, err, errlen)) < 0)
			goto out;
		if (hpq_check_name(t.class_) < 0) {
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "class '%s' is not a class name",
				      t.class_);
			goto out;
		}
	}
	if (r->ckpt_dir) {
		if ((rc = subst(&vals, "checkpoint.dir", r->ckpt_dir, false, &t.ckpt_dir, err,
				errlen)) < 0)
			goto out;
		if (!t.ckpt_dir[0]) {
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "checkpoint.dir is empty");
			goto out;
		}
	}
	if ((r->resume_arg || r->resume_env) && !r->ckpt_dir) {
		rc = hpq_errf(err, errlen, HPQ_EINVAL, "checkpoint.resume needs checkpoint.dir");
		goto out;
	}
	if (r->resume_arg) {
		/* Words split on blanks; each keeps {path} for the wrapper. */
		char *copy, *save = NULL;

		if ((rc = subst(&vals, "checkpoint.resume.arg", r->resume_arg, true, &copy, err,
				errlen)) < 0)
			goto out;
		for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
			strv_push(&t.resume_arg, &t.n_resume_arg, xstrdup(w));
		free(copy);
		if (!t.n_resume_arg) {
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "checkpoint.resume.arg is empty");
			goto out;
		}
	}
	if (r->resume_env) {
		if (!env_name_ok(r->resume_env)) {
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "checkpoint.resume.env '%s' is not a "
				      "variable name", r->resume_env);
			goto out;
		}
		t.resume_env = xstrdup(r->resume_env);
	}
	for (size_t i = 0; i < r->n_env; i++) {
		char *v, *where;

		xasprintf(&where, "env.%s", r->env[i].key);
		rc = subst(&vals, where, r->env[i].value, false, &v, err, errlen);
		free(where);
		if (rc < 0)
			goto out;
		xasprintf(&s, "%s=%s", r->env[i].key, v);
		free(v);
		strv_push(&t.env, &t.n_env, s);
		s = NULL;
	}
	t.launcher = r->launcher;
	t.name = xstrdup(r->name ? r->name : "");
	t.version = xstrdup(r->version ? r->version : "");
	t.path = xstrdup(r->path ? r->path : "");
	*ret = t;
	memset(&t, 0, sizeof(t));
	rc = 0;
out:
	free(s);
	recipe_task_release(&t);
	for (size_t j = 0; j < r->n_params; j++)
		free(vals.v[j]);
	free(vals.v);
	return rc;
}

/* ---------------------------------------------------------------- the wrapper */

struct sbuf {
	char *s;
	size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* s, n bytes of it, as one single-quoted shell word: nothing in it is
 * expanded; a ' is written '\''. */
static void sb_quote(struct sbuf *b, const char *s, size_t n)
{
	sb_str(b, "'");
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\'')
			sb_str(b, "'\\''");
		else
			sb_add(b, s + i, 1);
	}
	sb_str(b, "'");
}

/* A word where the text is literal and each occurrence of token becomes
 * "$var": e.g. '--resume='"$HPQ_RESUME_FROM". */
static void sb_word_with(struct sbuf *b, const char *s, const char *token, const char *var)
{
	const char *p = s, *hit;
	bool any = false;

	while ((hit = token ? strstr(p, token) : NULL)) {
		if (hit > p)
			sb_quote(b, p, (size_t)(hit - p));
		sb_str(b, "\"$");
		sb_str(b, var);
		sb_str(b, "\"");
		p = hit + strlen(token);
		any = true;
	}
	if (*p || !any)
		sb_quote(b, p, strlen(p));
}

/* The checkpoint directory: %u the user, %j "$HPQ_TASK_ID", %% a '%'. */
static void sb_ckpt_dir(struct sbuf *b, const char *tmpl, const char *user)
{
	const char *p = tmpl;
	size_t lit = 0;

	for (; p[lit];) {
		if (p[lit] == '%' && (p[lit + 1] == 'u' || p[lit + 1] == 'j' || p[lit + 1] == '%')) {
			if (lit)
				sb_quote(b, p, lit);
			if (p[lit + 1] == 'u')
				sb_quote(b, user, strlen(user));
			else if (p[lit + 1] == 'j')
				sb_str(b, "\"$HPQ_TASK_ID\"");
			else
				sb_str(b, "%");
			p += lit + 2;
			lit = 0;
			continue;
		}
		lit++;
	}
	if (lit || p == tmpl)
		sb_quote(b, p, lit);
}

char *recipe_script(const struct recipe_task *t, const char *user, const char *hpq_bin)
{
	struct sbuf b = {NULL, 0, 0};

	sb_str(&b, "#!/bin/sh\n# Written by hpq for recipe ");
	/* Names and versions are shown in a comment: keep them on one line. */
	for (const char *p = t->name; *p; p++)
		sb_add(&b, *p == '\n' ? " " : p, 1);
	sb_str(&b, " ");
	for (const char *p = t->version; *p; p++)
		sb_add(&b, *p == '\n' ? " " : p, 1);
	sb_str(&b, ". It runs the command (its arguments, \"$@\")\n"
		   "# under the recipe's launcher");
	if (t->ckpt_dir)
		sb_str(&b, ", reports each checkpoint written to the\n# checkpoint directory "
			   "and passes the newest one on resume");
	sb_str(&b, ".\nset -u\n\n");

	for (size_t i = 0; i < t->n_env; i++) {
		const char *eq = strchr(t->env[i], '=');

		sb_str(&b, "export ");
		sb_add(&b, t->env[i], (size_t)(eq - t->env[i]));
		sb_str(&b, "=");
		sb_quote(&b, eq + 1, strlen(eq + 1));
		sb_str(&b, "\n");
	}
	if (t->n_env)
		sb_str(&b, "\n");

	if (t->ckpt_dir) {
		sb_str(&b, "# The checkpoint directory, one per task.\nckpt_dir=");
		sb_ckpt_dir(&b, t->ckpt_dir, user);
		sb_str(&b, "\nmkdir -p -- \"$ckpt_dir\" || exit 1\n"
			   "export HPQ_CHECKPOINT_DIR=\"$ckpt_dir\"\n\n");
		if (t->n_resume_arg || t->resume_env) {
			sb_str(&b, "# After preemption the agent names the newest checkpoint.\n"
				   "if [ -n \"${HPQ_RESUME_FROM:-}\" ]; then\n");
			if (t->n_resume_arg) {
				sb_str(&b, "\tset -- \"$@\"");
				for (size_t i = 0; i < t->n_resume_arg; i++) {
					sb_str(&b, " ");
					sb_word_with(&b, t->resume_arg[i], "{path}",
						     "HPQ_RESUME_FROM");
				}
				sb_str(&b, "\n");
			} else {
				sb_str(&b, "\texport ");
				sb_str(&b, t->resume_env);
				sb_str(&b, "=\"$HPQ_RESUME_FROM\"\n");
			}
			sb_str(&b, "fi\n\n");
		}
	}

	switch (t->launcher) {
	case RECIPE_LAUNCH_TORCHRUN:
		sb_str(&b,
		       "# torchrun on every node, one process per GPU of this node; the command\n"
		       "# is a program with its arguments (python3 train.py ...): --no-python.\n"
		       "nproc=$(printf '%s' \"${CUDA_VISIBLE_DEVICES:-}\" | tr ',' '\\n' | "
		       "grep -c .)\n"
		       "[ \"$nproc\" -gt 0 ] || nproc=1\n"
		       "if [ \"${HPQ_NNODES:-1}\" -gt 1 ] && [ -n \"${HPQ_MASTER_ADDR:-}\" ]; then\n"
		       "\tset -- torchrun --nnodes \"$HPQ_NNODES\" --node-rank \"$HPQ_NODE_RANK\" \\\n"
		       "\t\t--nproc-per-node \"$nproc\" --rdzv-backend c10d \\\n"
		       "\t\t--rdzv-endpoint \"$HPQ_MASTER_ADDR:$HPQ_MASTER_PORT\" --no-python \"$@\"\n"
		       "else\n"
		       "\tset -- torchrun --standalone --nnodes 1 --nproc-per-node \"$nproc\" "
		       "--no-python \"$@\"\n"
		       "fi\n\n");
		break;
	case RECIPE_LAUNCH_MPIRUN:
		sb_str(&b,
		       "# One process per node, with the variables distributed programs read.\n"
		       "export WORLD_SIZE=\"${HPQ_NNODES:-1}\" RANK=\"${HPQ_NODE_RANK:-0}\" "
		       "LOCAL_RANK=0\n"
		       "export MASTER_ADDR=\"${HPQ_MASTER_ADDR:-127.0.0.1}\" "
		       "MASTER_PORT=\"${HPQ_MASTER_PORT:-29500}\"\n\n");
		break;
	default:
		break;
	}

	if (t->ckpt_dir) {
		sb_str(&b, "hpq_bin=${HPQ_BIN:-");
		sb_quote(&b, hpq_bin, strlen(hpq_bin));
		sb_str(&b, "}\n[ -x \"$hpq_bin\" ] || hpq_bin=hpq\n"
			   "# One watcher per task, on the first node: rank 0 writes the "
			   "checkpoints.\n"
			   "watcher=\n"
			   "# It starts with USR1 ignored, so that the notice below cannot end it\n"
			   "# before it has its handler; the notice is repeated until it has.\n"
			   "if [ \"${HPQ_NODE_RANK:-0}\" = 0 ]; then\n"
			   "\ttrap '' USR1\n"
			   "\t\"$hpq_bin\" checkpoint --watch \"$ckpt_dir\" &\n"
			   "\twatcher=$!\n"
			   "\ttrap - USR1\n"
			   "fi\n\n");
	}
	sb_str(&b, "# The program runs in the background so that the signals of preemption\n"
		   "# (TERM) and of an interrupt reach it through the traps.\n"
		   "\"$@\" &\n"
		   "child=$!\n"
		   "trap 'kill -TERM \"$child\" 2>/dev/null' TERM\n"
		   "trap 'kill -INT \"$child\" 2>/dev/null' INT\n"
		   "status=0\n"
		   "wait \"$child\" || status=$?\n"
		   "while kill -0 \"$child\" 2>/dev/null; do\n"
		   "\tstatus=0\n"
		   "\twait \"$child\" || status=$?\n"
		   "done\n");
	if (t->ckpt_dir)
		sb_str(&b, "# The watcher reports what is left, then exits.\n"
			   "if [ -n \"$watcher\" ]; then\n"
			   "\t( while kill -USR1 \"$watcher\" 2>/dev/null; do sleep 0.1; done ) &\n"
			   "\tnudger=$!\n"
			   "\twait \"$watcher\" 2>/dev/null\n"
			   "\tkill \"$nudger\" 2>/dev/null\n"
			   "fi\n");
	sb_str(&b, "exit \"$status\"\n");
	return b.s;
}

/* ---------------------------------------------------------------- listing */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t recipe_list(char *const *path,
		   void (*fn)(void *arg, const char *file, const struct recipe *r,
			      const char *err),
		   void *arg)
{
	char **seen = NULL;
	size_t n_seen = 0, count = 0;

	for (size_t i = 0; path && path[i]; i++) {
		DIR *d = opendir(path[i]);
		struct dirent *de;
		char **names = NULL;
		size_t n = 0;

		if (!d)
			continue;
		while ((de = readdir(d))) {
			const char *dot = strrchr(de->d_name, '.');

			if (de->d_name[0] == '.' || !dot ||
			    (strcmp(dot, ".yaml") && strcmp(dot, ".yml")))
				continue;
			strv_push(&names, &n, xstrdup(de->d_name));
		}
		closedir(d);
		if (n)
			qsort(names, n, sizeof(*names), name_cmp);
		for (size_t j = 0; j < n; j++) {
			char *name = xstrndup(names[j], (size_t)(strrchr(names[j], '.') - names[j]));
			char *file, err[1024];
			struct recipe r;
			bool dup = false;

			for (size_t k = 0; k < n_seen && !dup; k++)
				dup = !strcmp(seen[k], name);
			if (dup || !recipe_name_ok(name)) {
				free(name);
				continue;
			}
			strv_push(&seen, &n_seen, name);
			xasprintf(&file, "%s/%s", path[i], names[j]);
			if (recipe_load(path, name, &r, err, sizeof(err)) == 0) {
				fn(arg, file, &r, NULL);
				recipe_release(&r);
			} else {
				fn(arg, file, NULL, err);
			}
			count++;
			free(file);
		}
		strv_free_n(names, n);
	}
	strv_free_n(seen, n_seen);
	return count;
}
