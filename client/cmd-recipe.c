/*
 * cmd-recipe.c: `hpq recipe list` and `hpq recipe show NAME`, which read
 * recipes (recipe.h) on this machine and never talk to the daemon. show
 * resolves a recipe exactly as `hpq submit --recipe` does, through the
 * same parser, and prints the task that would be submitted with the
 * wrapper script it would run.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd-submit.h"
#include "recipe.h"
#include "xalloc.h"

extern char **environ;

enum {
	OPT_RECIPE_PATH = CLI_OPT_FIRST_PRIVATE,
	OPT_SET,
};

static const struct option recipe_options[] = {
	{"recipe-path", required_argument, NULL, OPT_RECIPE_PATH},
	{"set", required_argument, NULL, OPT_SET},
	CLI_COMMON_OPTIONS,
};

static char **recipe_path_for(char **dirs, size_t n)
{
	const char *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
	char *config_home = NULL, **path;

	if (x && x[0] == '/')
		config_home = xstrdup(x);
	else if (h && h[0] == '/')
		xasprintf(&config_home, "%s/.config", h);
	path = recipe_search_path(dirs, n, getenv("HPQ_RECIPE_PATH"), config_home);
	free(config_home);
	return path;
}

struct list_ctx {
	struct cli *cli;
	json_t *arr;
	bool bad;
};

static void list_one(void *arg, const char *file, const struct recipe *r, const char *err)
{
	struct list_ctx *c = arg;
	FILE *f = c->cli->out.out;

	if (!r) {
		fprintf(stderr, "hpq recipe list: %s\n", err);
		c->bad = true;
		return;
	}
	if (c->arr) {
		json_t *o = json_object();

		json_object_set_new(o, "name", output_json_text(r->name, strlen(r->name)));
		json_object_set_new(o, "version", r->version ? output_json_text(
			r->version, strlen(r->version)) : json_string(""));
		json_object_set_new(o, "description", r->description ? output_json_text(
			r->description, strlen(r->description)) : json_string(""));
		json_object_set_new(o, "file", output_json_text(file, strlen(file)));
		json_array_append_new(c->arr, o);
		return;
	}
	fprintf(f, "%-22s %-8s %-52s %s\n", r->name, r->version ? r->version : "-",
		r->description ? r->description : "", file);
}

static int recipe_list_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	struct list_ctx ctx = {cli, NULL, false};
	char **dirs = NULL, **path;
	size_t n = 0;
	int c;

	while ((c = cli_getopt(cli, e, argc, argv, ":h", recipe_options)) != -1) {
		if (c == CLI_OPT_HELP)
			goto done;
		if (c != OPT_RECIPE_PATH) {
			if (c == OPT_SET)
				cli_usage_error(cli, "--set goes with 'hpq recipe show NAME'");
			free(dirs);
			return CLI_USAGE;
		}
		dirs = xreallocarray(dirs, n + 1, sizeof(*dirs));
		dirs[n++] = optarg;
	}
	if (optind < argc) {
		free(dirs);
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	}
	path = recipe_path_for(dirs, n);
	if (cli->json)
		ctx.arr = json_array();
	else
		fprintf(cli->out.out, "%-22s %-8s %-52s %s\n", "NAME", "VERSION", "DESCRIPTION",
			"FILE");
	recipe_list(path, list_one, &ctx);
	if (ctx.arr) {
		char *text = json_dumps(ctx.arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		fprintf(cli->out.out, "%s\n", text ? text : "[]");
		free(text);
		json_decref(ctx.arr);
	}
	recipe_strv_free(path);
done:
	free(dirs);
	return ctx.bad ? CLI_ERR : CLI_OK;
}

/* show: the options become `submit --recipe NAME ... --test-only`. */
static int recipe_show_exec(struct cli *cli, const struct cmd_entry *e, int argc, char **argv)
{
	struct cmd_submit s;
	char **sv = xcalloc((size_t)argc * 2 + 4, sizeof(*sv));
	const char *name = NULL;
	int c, n = 0, r;

	sv[n++] = "submit";
	while ((c = cli_getopt(cli, e, argc, argv, ":h", recipe_options)) != -1) {
		if (c == CLI_OPT_HELP) {
			free(sv);
			return CLI_OK;
		}
		if (c != OPT_RECIPE_PATH && c != OPT_SET) {
			free(sv);
			return CLI_USAGE;
		}
		sv[n++] = c == OPT_SET ? "--set" : "--recipe-path";
		sv[n++] = optarg;
	}
	if (optind >= argc) {
		free(sv);
		return cli_usage_error(cli, "which recipe? 'hpq recipe list' shows them");
	}
	name = argv[optind];
	if (optind + 1 < argc) {
		free(sv);
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	}
	sv[n++] = "--recipe";
	sv[n++] = (char *)name;
	sv[n++] = "--test-only";
	sv[n] = NULL;
	r = cmd_submit_parse(cli, &cmd_submit_entry, n, sv, environ, &s);
	if (r == 0) {
		cmd_submit_print(cli, &s);
		if (!cli->json)
			fprintf(cli->out.out, "\n--- the wrapper the task runs, with the command "
				"as its arguments ---\n%s", s.recipe_script);
		cmd_submit_release(&s);
	}
	free(sv);
	return r == CLI_DONE ? CLI_OK : r;
}

static const struct cmd_entry recipe_list_entry = {
	.name = "list",
	.usage = "recipe list [--recipe-path DIR]... [--json]",
	.summary = "list the recipes found, first match per name",
	.help = "Recipes are looked for in each --recipe-path DIR, then $HPQ_RECIPE_PATH\n"
		"(':'-separated), ~/.config/hpq/recipes, /etc/hpq/recipes and the system's\n"
		"recipe directory; the first file NAME.yaml found wins.\n\n"
		"options:\n"
		"  --recipe-path DIR   look in DIR first (repeatable)\n"
		"  --json              print a JSON array\n",
	.exec = recipe_list_exec,
};

static const struct cmd_entry recipe_show_entry = {
	.name = "show",
	.usage = "recipe show NAME [--set K=V]... [--recipe-path DIR]... [--json]",
	.summary = "print the task a recipe makes, without submitting it",
	.help = "Resolves NAME with its parameters as 'hpq submit --recipe' does and prints\n"
		"the task with the wrapper script it runs.\n\n"
		"options:\n"
		"  --set K=V           a parameter's value (repeatable)\n"
		"  --recipe-path DIR   look in DIR first (repeatable)\n"
		"  --json              print a JSON object\n",
	.exec = recipe_show_exec,
};

static const struct cmd_entry *const recipe_table[] = {
	&recipe_list_entry, &recipe_show_entry, NULL,
};

const struct cmd_entry cmd_recipe_entry = {
	.name = "recipe",
	.usage = "recipe list|show ...",
	.summary = "ready-made task templates (recipes)",
	.sub = recipe_table,
};
