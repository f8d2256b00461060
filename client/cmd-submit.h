/*
 * cmd-submit.h: the parsed form of `hpq submit`, exposed so that the unit
 * tests can check what a command line turns into without a daemon.
 */
#ifndef HPQ_CMD_SUBMIT_H
#define HPQ_CMD_SUBMIT_H

#include <stddef.h>

#include "cli.h"
#include "directives.h"
#include "recipe.h"

/* Defaults of a task when the command line does not say (documented in
 * hpq(1)): one node, one CPU, no GPU, 1 GiB of memory per node. */
#define SUBMIT_DEFAULT_CPUS 1
#define SUBMIT_DEFAULT_MEM_MIB 1024
/* Sanity bounds; the daemon checks requests against real capacity. */
#define SUBMIT_MAX_NODES 65536
#define SUBMIT_MAX_GPUS 1024
#define SUBMIT_MAX_CPUS 65536
#define SUBMIT_MAX_MEM_MIB ((uint64_t)64 << 20) /* 64 TiB per node */
#define SUBMIT_MAX_GRACE_S (24 * 3600)

struct cmd_submit {
	Hpq__TaskSpec spec;      /* ready to send; points into the fields below */
	Hpq__Resources per_node;
	char *name;              /* owned */
	char *cwd;               /* owned, absolute */
	char *checkpoint_dir;    /* owned, absolute, or NULL */
	char **env;              /* owned KEY=VALUE strings */
	size_t n_env;
	char *submit_dir;        /* owned: the directory submit ran in */
	char **wrap_argv;        /* owned array (not strings): sh -c CMD for --wrap */
	struct batch_script script; /* the batch script sent (spec.script), if any */
	bool test_only;          /* --test-only: print, do not submit */
	char **warnings;         /* owned: options ignored, "FILE:LINE: " first for a script's */
	size_t n_warnings;
	/* --recipe: the resolved recipe, its wrapper (spec.script), the argv
	 * (the recipe's file, then its command) and the option values it set. */
	bool has_recipe;
	struct recipe_task recipe;
	char *recipe_script;
	char **recipe_argv;      /* owned array (not strings) */
	char **recipe_opts;      /* owned strings */
	size_t n_recipe_opts;
};

/* Parses `submit [options] [--] COMMAND [ARGS...]` (argv[0] is "submit")
 * with envp as the environment to capture. When COMMAND is a batch script
 * (batch_script_load), its #SBATCH and then its #HPQ lines are read with
 * the same options before the command line, so the command line wins. Returns 0 and fills *ret
 * (release with cmd_submit_release), CLI_DONE after --help, or CLI_USAGE /
 * CLI_ERR after printing why not. COMMAND and ARGS are borrowed from argv. */
int cmd_submit_parse(struct cli *cli, const struct cmd_entry *e, int argc, char **argv,
		     char *const *envp, struct cmd_submit *ret);
void cmd_submit_release(struct cmd_submit *s);

/* Prints s as --test-only does (text or, with --json, JSON). */
void cmd_submit_print(struct cli *cli, const struct cmd_submit *s);

/* Applies an --export value (ALL, NONE, or a comma-separated list of
 * ALL, NONE, VAR and VAR=VALUE) to envp. Returns 0 and sets *ret_env /
 * *ret_n (malloc'd strings in a malloc'd array), or HPQ_EINVAL with a
 * message in err. */
int cmd_submit_export(const char *spec, char *const *envp, char ***ret_env, size_t *ret_n,
		      char *err, size_t errlen);

#endif
