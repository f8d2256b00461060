/*
 * directives.h: batch scripts for `hpq submit script.sh`: deciding whether
 * a command is a script to copy, reading it once, and finding the option
 * lines (#HPQ and #SBATCH) in its header, split into words. What the words
 * mean is cmd-submit.c's: directives go through the same option table as
 * the command line.
 */
#ifndef HPQ_DIRECTIVES_H
#define HPQ_DIRECTIVES_H

#include <stdbool.h>
#include <stddef.h>

struct directive {
	unsigned line;   /* 1-based line number in the script */
	bool slurm;      /* #SBATCH; otherwise #HPQ */
	int argc;
	char **argv;     /* argv[0] is "#SBATCH" or "#HPQ"; NULL-terminated, owned */
};

struct batch_script {
	char *data;              /* the file's bytes (NUL after them), owned */
	size_t len;
	struct directive *d;     /* in file order */
	size_t n;
};

/*
 * Scans the header of a script (data, len bytes): an optional #! first
 * line, then blank and comment lines; the first other line ends it, as it
 * ends sbatch's. Lines starting with "#HPQ" or "#SBATCH" and a blank are
 * directives: split into words at blanks, with "..." and '...' quoting and
 * backslash escapes, and an unquoted '#' starting a word beginning a
 * comment. Returns 0 and sets *ret and *ret_n (free with directives_free),
 * or HPQ_EINVAL with "LINE: why" in err for an empty directive or an
 * unterminated quote.
 */
int directives_scan(const char *data, size_t len, struct directive **ret, size_t *ret_n,
		    char *err, size_t errlen);
void directives_free(struct directive *d, size_t n);

/*
 * Decides whether path is a batch script and reads it once. A script is a
 * regular file hpq can read, with no NUL byte, that starts with a #! line
 * or has directives. Returns 1 and fills *ret (release with
 * batch_script_release); 0 when path is no script (missing, unreadable,
 * not a regular file, binary, or text with neither), which is then run as
 * a command, as before; or a negative code with a message in err: a
 * script larger than HPQ_SCRIPT_MAX, directives without a #! line (there
 * is no interpreter to run it with), a malformed directive ("PATH:LINE:
 * why"), or a read error.
 */
int batch_script_load(const char *path, struct batch_script *ret, char *err, size_t errlen);
void batch_script_release(struct batch_script *s);

#endif
