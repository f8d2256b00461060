/*
 * recipe.h: recipes, ready-to-run task templates in YAML (docs/recipes.md).
 *
 * A recipe file NAME.yaml is found on a search path (recipe_search_path),
 * read with libyaml (recipe_load follows its `base:` chain and merges it,
 * field by field, the derived recipe winning), and resolved with the
 * user's --set values into a task (recipe_resolve): parameters typed and
 * checked, {param} substituted, resources parsed. recipe_script then
 * writes the POSIX sh wrapper the task runs: launcher, checkpoint
 * directory, checkpoint watcher, resume. Everything here is pure (files
 * are only read), so the unit tests drive it without a daemon.
 */
#ifndef HPQ_CLIENT_RECIPE_H
#define HPQ_CLIENT_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RECIPE_DURATION is an hpq duration (a bare number is seconds);
 * RECIPE_TIME a time limit as --time takes it (a bare number is minutes,
 * UNLIMITED). Either means the same in the recipe's time: field. */
enum recipe_type {
	RECIPE_STRING, RECIPE_INT, RECIPE_BOOL, RECIPE_DURATION, RECIPE_SIZE, RECIPE_TIME
};
enum recipe_launcher { RECIPE_LAUNCH_NONE, RECIPE_LAUNCH_TORCHRUN, RECIPE_LAUNCH_MPIRUN };

struct recipe_param {
	char *name;
	enum recipe_type type;
	bool has_type;
	char *def;            /* NULL: required */
	char *description;
	unsigned line;
};

struct recipe_kv {
	char *key, *value;
};

/* A recipe file as read, or a chain merged: each field NULL (or n_ 0,
 * has_ false) when not set. Values are the YAML scalars, unsubstituted. */
struct recipe {
	char *name, *version, *description, *base;
	char *path;           /* the file it came from (the most derived one) */
	struct recipe_param *params;
	size_t n_params;
	char *gpus, *cpus, *mem, *nodes, *class_, *time;
	char **command;
	size_t n_command;
	bool has_command;
	enum recipe_launcher launcher;
	bool has_launcher;
	char *ckpt_dir, *resume_arg, *resume_env;
	struct recipe_kv *env;
	size_t n_env;
};

/* A recipe resolved with its parameters: what a task is made of. */
struct recipe_task {
	char *name, *version, *path;
	char **params;        /* "k=v", every parameter in declaration order */
	size_t n_params;
	char **command;       /* substituted words */
	size_t n_command;
	uint32_t nodes, gpus, cpus; /* 0: not said (submit's default) */
	uint64_t mem_mib, time_s;
	bool has_time;
	char *class_;         /* NULL: not said */
	enum recipe_launcher launcher;
	char *ckpt_dir;       /* substituted; %u and %j left for recipe_script; NULL: none */
	char **resume_arg;    /* words of the resume argument, "{path}" kept */
	size_t n_resume_arg;
	char *resume_env;     /* variable that gets the resume path, or NULL */
	char **env;           /* "KEY=VALUE", substituted */
	size_t n_env;
};

/* The directories searched, first match wins: each of dirs (--recipe-path),
 * then each of env_path (a ':'-separated list, $HPQ_RECIPE_PATH; NULL or
 * "" for none), the user's (config_home/hpq/recipes, config_home being
 * $XDG_CONFIG_HOME or ~/.config; NULL to skip), /etc/hpq/recipes and the
 * system directory. Returns a NULL-terminated malloc'd array of malloc'd
 * strings (recipe_strv_free). */
char **recipe_search_path(char *const *dirs, size_t n_dirs, const char *env_path,
			  const char *config_home);
void recipe_strv_free(char **v);

/* Reads one recipe file. Returns 0, or HPQ_EINVAL / -errno with
 * "FILE:LINE: why" in err. */
int recipe_parse_file(const char *file, struct recipe *ret, char *err, size_t errlen);

/* Finds NAME on path and reads it with its bases, merged. *ret_found
 * (optional) is then the file found. Returns 0, HPQ_ENOTFOUND or
 * HPQ_EINVAL with a message (a base cycle names the chain). */
int recipe_load(char *const *path, const char *name, struct recipe *ret, char *err,
		size_t errlen);
void recipe_release(struct recipe *r);

/* Resolves r with sets ("k=v" strings: --set). Returns 0, or HPQ_EINVAL
 * with a message (an unknown or mistyped parameter, a missing required
 * one, a field that is not what it must be after substitution). */
int recipe_resolve(const struct recipe *r, char *const *sets, size_t n_sets,
		   struct recipe_task *ret, char *err, size_t errlen);
void recipe_task_release(struct recipe_task *t);

/* The wrapper the task runs (a malloc'd POSIX sh script). It runs "$@",
 * the task's argv[1..] (the command), under the launcher; with a
 * checkpoint directory it expands %u to user and %j to $HPQ_TASK_ID,
 * creates it, exports $HPQ_CHECKPOINT_DIR, runs `hpq_bin checkpoint
 * --watch` on it, passes $HPQ_RESUME_FROM as the recipe says, forwards
 * TERM and INT to the program and exits with its status. */
char *recipe_script(const struct recipe_task *t, const char *user, const char *hpq_bin);

/* Every recipe file in path, first match per name only: calls fn for each
 * (r is NULL and err set when it does not parse). Returns how many. */
size_t recipe_list(char *const *path,
		   void (*fn)(void *arg, const char *file, const struct recipe *r,
			      const char *err),
		   void *arg);

const char *recipe_launcher_name(enum recipe_launcher l);

#endif
