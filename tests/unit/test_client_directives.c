/*
 * test_client_directives.c: batch scripts in `hpq submit`, without a
 * daemon: which files are scripts, the header scan of #HPQ and #SBATCH
 * lines, a real-looking Slurm script turned into a request, precedence
 * (command line over #HPQ over #SBATCH), warnings and errors that name
 * FILE:LINE, and that a bad directive leaves nothing behind.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "cmd-submit.h"
#include "directives.h"
#include "error.h"
#include "hpq.h"
#include "xalloc.h"

static char dir[] = "/tmp/hpq-test-directives-XXXXXX";
static char *test_envp[] = {"HOME=/home/alice", "PATH=/usr/bin:/bin", NULL};
static char last_err[8192]; /* what the last parse printed on stderr */

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char *cmd;

	xasprintf(&cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(cmd);
	return 0;
}

/* Writes a file of n bytes (n: strlen when 0) under dir; returns its path. */
static char *put(const char *name, const char *content, size_t n, mode_t mode)
{
	char *path;
	FILE *f;

	xasprintf(&path, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, n ? n : strlen(content), f), n ? n : strlen(content));
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

/* Runs the submit parser on a NULL-terminated argv; stderr goes to last_err. */
static int parse(char **argv, struct cmd_submit *s)
{
	struct cli cli;
	char tmpl[] = "/tmp/hpq-test-stderr-XXXXXX";
	int fd = mkstemp(tmpl), saved = dup(2), argc = 0, r;
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(tmpl);
	while (argv[argc])
		argc++;
	fflush(stderr);
	dup2(fd, 2);
	cli_init(&cli);
	cli.cmd = "submit";
	r = cmd_submit_parse(&cli, &cmd_submit_entry, argc, argv, test_envp, s);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, last_err, sizeof(last_err) - 1, 0);
	last_err[n > 0 ? n : 0] = '\0';
	close(fd);
	return r;
}

static bool has_warning(const struct cmd_submit *s, const char *want)
{
	for (size_t i = 0; i < s->n_warnings; i++)
		if (strstr(s->warnings[i], want))
			return true;
	return false;
}

/* Parsing fails as a usage error and says want. */
static void refused(char **argv, const char *want)
{
	struct cmd_submit s;
	int r = parse(argv, &s);

	if (r != CLI_USAGE)
		fail_msg("'%s %s' gave %d, not a usage error", argv[1], argv[2] ? argv[2] : "", r);
	if (!strstr(last_err, want))
		fail_msg("the error '%s' lacks '%s'", last_err, want);
}

/* ---------------------------------------------------------------- the scan */

static void test_scan(void **state)
{
	const char *text = "#!/bin/bash\n"
			   "\n"
			   "# a comment\n"
			   "#SBATCH --job-name=\"my job\" -N 2   # two nodes\n"
			   "#HPQ\t--class  'training run'\r\n"
			   "#SBATCHX --not-a-directive\n"
			   "#SBATCH --output=a\\ b.log\n"
			   "echo hi\n"
			   "#SBATCH --after-the-header\n";
	struct directive *d;
	size_t n;
	char err[256];

	assert_int_equal(directives_scan(text, strlen(text), &d, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(d[0].line, 4);
	assert_true(d[0].slurm);
	assert_int_equal(d[0].argc, 4);
	assert_string_equal(d[0].argv[0], "#SBATCH");
	assert_string_equal(d[0].argv[1], "--job-name=my job");
	assert_string_equal(d[0].argv[3], "2");
	assert_null(d[0].argv[4]);
	assert_int_equal(d[1].line, 5);
	assert_false(d[1].slurm);
	assert_int_equal(d[1].argc, 3);
	assert_string_equal(d[1].argv[2], "training run");
	assert_string_equal(d[2].argv[1], "--output=a b.log");
	directives_free(d, n);

	assert_int_equal(directives_scan("#!/bin/sh\n#SBATCH -J 'x\n", 24, &d, &n, err,
					 sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "2: unterminated ' quote"));
	assert_int_equal(directives_scan("#!/bin/sh\n\n#HPQ   \n", 19, &d, &n, err,
					 sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "3: #HPQ without an option"));
	/* No #! line: directives still count (and load refuses them). */
	assert_int_equal(directives_scan("#SBATCH -N 1\n", 13, &d, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	directives_free(d, n);
}

/* What is a script and what runs as a command. */
static void test_load(void **state)
{
	struct batch_script b;
	char err[512], *big, *p;
	size_t bign = (size_t)HPQ_SCRIPT_MAX + 1;

	p = put("plain.sh", "#!/bin/sh\necho hi\n", 0, 0755);
	assert_int_equal(batch_script_load(p, &b, err, sizeof(err)), 1);
	assert_int_equal(b.len, 18);
	assert_int_equal(b.n, 0);
	batch_script_release(&b);
	free(p);
	/* Not executable: still a script (it is sent, not run from disk). */
	p = put("noexec.sh", "#!/bin/sh\n#HPQ --gpus 1\n", 0, 0644);
	assert_int_equal(batch_script_load(p, &b, err, sizeof(err)), 1);
	assert_int_equal(b.n, 1);
	batch_script_release(&b);
	free(p);
	/* A binary, text without #! or directives, a directory, nothing. */
	p = put("prog", "\x7f" "ELF\0\0#!", 8, 0755);
	assert_int_equal(batch_script_load(p, &b, err, sizeof(err)), 0);
	free(p);
	p = put("notes.txt", "just text\n#SBATCH -N 2\n", 0, 0644);
	assert_int_equal(batch_script_load(p, &b, err, sizeof(err)), 0);
	free(p);
	assert_int_equal(batch_script_load(dir, &b, err, sizeof(err)), 0);
	assert_int_equal(batch_script_load("/nonexistent/x.sh", &b, err, sizeof(err)), 0);
	/* Directives without #!: refused, nothing could run it. */
	p = put("nobang.sh", "#SBATCH -N 2\necho\n", 0, 0755);
	assert_int_equal(batch_script_load(p, &b, err, sizeof(err)), HPQ_EINVAL);
	assert_non_null(strstr(err, "no '#!' first line"));
	free(p);
	/* Exactly the limit is fine; a byte more is not. */
	big = xmalloc(bign);
	memset(big, '#', bign);
	memcpy(big, "#!/bin/sh\n", 10);
	p = put("big.sh", big, bign - 1, 0755);
	assert_int_equal(batch_script_load(p, &b, err, sizeof(err)), 1);
	assert_int_equal(b.len, HPQ_SCRIPT_MAX);
	batch_script_release(&b);
	free(p);
	p = put("big.sh", big, bign, 0755);
	assert_int_equal(batch_script_load(p, &b, err, sizeof(err)), HPQ_ETOOBIG);
	assert_non_null(strstr(err, "larger than 1024 KiB"));
	free(p);
	free(big);
}

/* ---------------------------------------------------------------- submit */

static const char slurm_script[] =
	"#!/bin/bash\n"
	"#SBATCH --job-name=llm-pretrain\n"                /* 2 */
	"#SBATCH --account=nlp\n"                          /* 3 */
	"#SBATCH --partition=a100 --qos=high\n"            /* 4 */
	"#SBATCH -N 2-4\n"                                 /* 5 */
	"#SBATCH --ntasks-per-node=8\n"                    /* 6 */
	"#SBATCH --gres=gpu:a100:8\n"                      /* 7 */
	"#SBATCH --cpus-per-task=12\n"                     /* 8 */
	"#SBATCH --mem=512G\n"                             /* 9 */
	"#SBATCH --time=2-00:00:00\n"                      /* 10 */
	"#SBATCH -o logs/%x-%j.out\n"                      /* 11 */
	"#SBATCH -e logs/%x-%j.err\n"                      /* 12 */
	"#SBATCH --array=0-15:4%2\n"                       /* 13 */
	"#SBATCH --dependency=afterok:41:42\n"             /* 14 */
	"#SBATCH --kill-on-invalid-dep=yes\n"              /* 15 */
	"#SBATCH --export=NONE,WANDB_MODE=offline\n"       /* 16 */
	"#SBATCH --chdir=/srv/run\n"                       /* 17 */
	"#SBATCH --mail-type=END,FAIL\n"                   /* 18 */
	"#SBATCH --mail-user=me@example.com\n"             /* 19 */
	"#SBATCH --requeue\n"                              /* 20 */
	"#SBATCH --exclusive\n"                            /* 21 */
	"#SBATCH -H\n"                                     /* 22 */
	"\n"
	"srun python train.py\n";

static void test_slurm_script(void **state)
{
	char *p = put("job.sh", slurm_script, 0, 0755);
	char *argv[] = {"submit", p, "--lr", "3e-4", NULL};
	struct cmd_submit s;
	char *w;

	assert_int_equal(parse(argv, &s), 0);
	assert_string_equal(s.spec.name, "llm-pretrain");
	assert_string_equal(s.spec.team, "nlp");
	assert_string_equal(s.spec.pool, "a100");
	assert_string_equal(s.spec.class_, "high");
	assert_int_equal(s.spec.nodes, 2);
	assert_int_equal(s.spec.ntasks_per_node, 8);
	assert_int_equal(s.spec.per_node->gpus, 8);
	assert_int_equal(s.spec.per_node->cpus, 96);
	assert_int_equal(s.spec.per_node->mem, 512 * 1024);
	assert_int_equal(s.spec.time_limit_s, 2 * 86400);
	assert_string_equal(s.spec.output, "logs/%x-%j.out");
	assert_string_equal(s.spec.error, "logs/%x-%j.err");
	assert_string_equal(s.spec.array, "0-15:4%2");
	assert_string_equal(s.spec.dependency, "afterok:41:42");
	assert_true(s.spec.kill_on_invalid_dep);
	assert_int_equal(s.spec.n_env, 1);
	assert_string_equal(s.spec.env[0], "WANDB_MODE=offline");
	assert_string_equal(s.spec.cwd, "/srv/run");
	assert_true(s.spec.exclusive);
	assert_true(s.spec.hold);
	/* The script's bytes travel; argv is the path and the arguments. */
	assert_int_equal(s.spec.script.len, strlen(slurm_script));
	assert_memory_equal(s.spec.script.data, slurm_script, strlen(slurm_script));
	assert_int_equal(s.spec.n_argv, 3);
	assert_string_equal(s.spec.argv[0], p);
	assert_string_equal(s.spec.argv[2], "3e-4");
	assert_non_null(s.spec.submit_dir);
	assert_true(s.spec.submit_dir[0] == '/');
	/* Warnings name the file and line. */
	xasprintf(&w, "%s:5: --nodes 2-4", p);
	assert_true(has_warning(&s, w));
	free(w);
	xasprintf(&w, "%s:7: --gres gpu:a100:8: GPU types are not scheduled", p);
	assert_true(has_warning(&s, w));
	free(w);
	xasprintf(&w, "%s:18: --mail-type is ignored", p);
	assert_true(has_warning(&s, w));
	free(w);
	xasprintf(&w, "%s:20: --requeue is ignored", p);
	assert_true(has_warning(&s, w));
	free(w);
	assert_int_equal(s.n_warnings, 5);
	cmd_submit_release(&s);
	free(p);
}

/* The command line wins over #HPQ, #HPQ over #SBATCH, whatever the order
 * in the file; options that set the same thing share one slot. */
static void test_precedence(void **state)
{
	char *p = put("prec.sh",
		      "#!/bin/sh\n"
		      "#HPQ --cpus 4 --time 10 --name from-hpq\n"
		      "#SBATCH -c 2 -t 20 -J from-sbatch --mem 1G -p sb-pool\n"
		      "#SBATCH --gpus-per-node=1\n"
		      "#HPQ --gpus 3\n"
		      "#SBATCH -q sb-class\n"
		      "#SBATCH -q sb-class2\n",
		      0, 0755);
	char *a1[] = {"submit", p, NULL};
	char *a2[] = {"submit", "--time", "90", "-J", "cli", "--gres=gpu:2", p, NULL};
	struct cmd_submit s;

	assert_int_equal(parse(a1, &s), 0);
	assert_string_equal(s.spec.name, "from-hpq");
	assert_int_equal(s.spec.per_node->cpus, 4);     /* #HPQ --cpus over #SBATCH -c */
	assert_int_equal(s.spec.time_limit_s, 600);     /* #HPQ, in minutes */
	assert_int_equal(s.spec.per_node->mem, 1024);   /* only #SBATCH says */
	assert_string_equal(s.spec.pool, "sb-pool");
	assert_int_equal(s.spec.per_node->gpus, 3);
	assert_string_equal(s.spec.class_, "sb-class2"); /* the last line of a kind */
	assert_int_equal(s.n_warnings, 0);
	cmd_submit_release(&s);

	assert_int_equal(parse(a2, &s), 0);
	assert_string_equal(s.spec.name, "cli");
	assert_int_equal(s.spec.time_limit_s, 5400);
	assert_int_equal(s.spec.per_node->gpus, 2);
	assert_int_equal(s.spec.per_node->cpus, 4);
	cmd_submit_release(&s);
	free(p);
}

/* Each bad directive is refused with FILE:LINE and the reason. */
static void bad_script(const char *name, const char *line, const char *want)
{
	char *content, *p, *where;
	char *argv[] = {"submit", NULL, NULL};

	xasprintf(&content, "#!/bin/sh\n#SBATCH -N 1\n%s\necho\n", line);
	p = put(name, content, 0, 0755);
	argv[1] = p;
	xasprintf(&where, "%s:3: ", p);
	refused(argv, where);
	if (!strstr(last_err, want))
		fail_msg("'%s': the error '%s' lacks '%s'", line, last_err, want);
	free(where);
	free(p);
	free(content);
}

static void test_bad_directives(void **state)
{
	bad_script("b1.sh", "#SBATCH --frobnicate", "unknown option '--frobnicate'");
	bad_script("b2.sh", "#SBATCH -Z 1", "unknown option '-Z'");
	bad_script("b3.sh", "#SBATCH --time", "needs a value");
	bad_script("b4.sh", "#SBATCH --time=soon", "--time takes minutes");
	bad_script("b5.sh", "#SBATCH -o out-%q.log", "unknown escape '%q'");
	bad_script("b6.sh", "#SBATCH --array=5-1", "ends before it starts");
	bad_script("b7.sh", "#SBATCH -d afterok:x", "not a task id");
	bad_script("b8.sh", "#SBATCH --mem=0", "--mem must be more than 0");
	bad_script("b9.sh", "#SBATCH --constraint=a100", "--constraint is not supported");
	bad_script("b10.sh", "#SBATCH -w node1", "--nodelist is not supported");
	bad_script("b11.sh", "#SBATCH --licenses=matlab", "--licenses is not supported");
	bad_script("b12.sh", "#SBATCH --signal=USR1@90", "--signal is not supported");
	bad_script("b13.sh", "#SBATCH --gres=nvme:1", "GPUs only");
	bad_script("b14.sh", "#SBATCH --exclusive=user", "--exclusive=user");
	bad_script("b15.sh", "#SBATCH --json", "command line");
	bad_script("b16.sh", "#SBATCH --wrap=true", "command line");
	bad_script("b17.sh", "#SBATCH -N 2 stray", "unexpected 'stray'");
	bad_script("b18.sh", "#SBATCH -J 'open", "unterminated");
	bad_script("b19.sh", "#HPQ", "without an option");
	bad_script("b20.sh", "#SBATCH -p a,b", "one pool");
	bad_script("b21.sh", "#SBATCH --kill-on-invalid-dep=maybe", "yes or no");
	bad_script("b22.sh", "#SBATCH --export=1BAD", "not a variable name");
}

/* Resource arithmetic: totals and per-task counts become per-node ones. */
static void test_resources(void **state)
{
	char *a1[] = {"submit", "-N", "4", "-G", "16", "--", "x", NULL};
	char *a2[] = {"submit", "-N", "4", "-G", "6", "--", "x", NULL};
	char *a3[] = {"submit", "-N", "2", "-n", "16", "-c", "4", "--", "x", NULL};
	char *a4[] = {"submit", "-N", "2", "-n", "5", "--", "x", NULL};
	char *a5[] = {"submit", "-N", "2", "--ntasks-per-node", "4", "-n", "6", "--", "x", NULL};
	char *a6[] = {"submit", "--cpus", "4", "--mem-per-cpu", "2G", "--", "x", NULL};
	char *a7[] = {"submit", "-n", "1", "--", "x", NULL};
	char *a8[] = {"submit", "-N", "3", "-n", "1", "--", "x", NULL};
	char *a9[] = {"submit", "--ntasks-per-node", "4", "--", "x", NULL};
	struct cmd_submit s;

	assert_int_equal(parse(a1, &s), 0);
	assert_int_equal(s.spec.per_node->gpus, 4);
	cmd_submit_release(&s);
	refused(a2, "does not divide evenly over 4 nodes");
	assert_int_equal(parse(a3, &s), 0);
	assert_int_equal(s.spec.ntasks_per_node, 8);
	assert_int_equal(s.spec.per_node->cpus, 32);
	cmd_submit_release(&s);
	refused(a4, "does not spread evenly over 2 nodes");
	refused(a5, "is not --nodes 2 times --ntasks-per-node 4");
	assert_int_equal(parse(a6, &s), 0);
	assert_int_equal(s.spec.per_node->mem, 8 * 1024);
	cmd_submit_release(&s);
	assert_int_equal(parse(a7, &s), 0);
	assert_int_equal(s.spec.ntasks_per_node, 0);
	cmd_submit_release(&s);
	refused(a8, "--ntasks 1 is fewer");
	/* One CPU per task when only the task count is known, as in Slurm. */
	assert_int_equal(parse(a9, &s), 0);
	assert_int_equal(s.spec.per_node->cpus, 4);
	assert_int_equal(s.spec.ntasks_per_node, 4);
	cmd_submit_release(&s);
}

static void test_wrap(void **state)
{
	char *a1[] = {"submit", "--wrap", "echo hi; sleep 1", "-t", "5", NULL};
	char *a2[] = {"submit", "--wrap", "true", "extra", NULL};
	char *a3[] = {"submit", "--wrap", "", NULL};
	struct cmd_submit s;

	assert_int_equal(parse(a1, &s), 0);
	assert_int_equal(s.spec.n_argv, 3);
	assert_string_equal(s.spec.argv[0], "sh");
	assert_string_equal(s.spec.argv[1], "-c");
	assert_string_equal(s.spec.argv[2], "echo hi; sleep 1");
	assert_string_equal(s.spec.name, "wrap");
	assert_int_equal(s.spec.time_limit_s, 300);
	assert_int_equal(s.spec.script.len, 0);
	cmd_submit_release(&s);
	refused(a2, "unexpected 'extra'");
	refused(a3, "--wrap needs a command");
}

/* A command that is no script keeps today's behaviour: argv only. */
static void test_not_a_script(void **state)
{
	char *p = put("data.txt", "hello\n", 0, 0644);
	char *a1[] = {"submit", p, NULL};
	char *a2[] = {"submit", "/bin/sh", "-c", "true", NULL};
	struct cmd_submit s;

	assert_int_equal(parse(a1, &s), 0);
	assert_int_equal(s.spec.script.len, 0);
	cmd_submit_release(&s);
	assert_int_equal(parse(a2, &s), 0);
	assert_int_equal(s.spec.script.len, 0);
	assert_string_equal(s.spec.argv[0], "/bin/sh");
	cmd_submit_release(&s);
	free(p);
}

/* --test-only through the whole command: prints, connects to nothing. */
static void test_test_only(void **state)
{
	const struct cmd_entry *const table[] = {&cmd_submit_entry, NULL};
	char *p = put("t.sh", "#!/bin/sh\n#SBATCH -J tonly\n#SBATCH --mail-type=ALL\n", 0, 0755);
	char *argv[] = {"submit", "--test-only", "--json", p, NULL};
	char *out = NULL;
	size_t outlen = 0;
	struct cli cli;
	int r;

	cli_init(&cli);
	cli.addr = "/nonexistent/hpq-test.sock"; /* a connection would fail */
	cli.out.out = open_memstream(&out, &outlen);
	r = cli_run(&cli, table, NULL, 4, argv);
	fclose(cli.out.out);
	cli_release(&cli);
	assert_int_equal(r, CLI_OK);
	assert_non_null(strstr(out, "\"name\": \"tonly\""));
	assert_non_null(strstr(out, "\"script_bytes\": 51"));
	free(out);
	free(p);
}

/* An indented comment is still a comment of the header, as sbatch reads it
 * ("Stop parsing script if not a comment": blanks, then '#'): the #SBATCH
 * line after it must not be dropped. */
static void test_indented_comment(void **state)
{
	const char *text = "#!/bin/bash\n"
			   "  # resources for the big run\n"
			   "#SBATCH --mem=64G\n"
			   "echo hi\n";
	struct directive *d;
	size_t n;
	char err[256];

	assert_int_equal(directives_scan(text, strlen(text), &d, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(d[0].line, 3);
	directives_free(d, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_slurm_script),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_bad_directives),
		cmocka_unit_test(test_resources),
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_not_a_script),
		cmocka_unit_test(test_test_only),
		cmocka_unit_test(test_indented_comment),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
