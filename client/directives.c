/*
 * directives.c: reading batch scripts and their #HPQ / #SBATCH lines
 * (directives.h). The words of a directive are split here by a few lines
 * of code rather than by wordexp(3), which would expand $VARIABLES and
 * ~ where sbatch does not: a Slurm script must mean the same here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "directives.h"
#include "error.h"
#include "hpq.h"
#include "xalloc.h"

void directives_free(struct directive *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (int j = 0; j < d[i].argc; j++)
			free(d[i].argv[j]);
		free(d[i].argv);
	}
	free(d);
}

static void dir_push(struct directive *d, const char *w, size_t n)
{
	d->argv = xreallocarray(d->argv, (size_t)d->argc + 2, sizeof(*d->argv));
	d->argv[d->argc++] = xmemdup(w, n);
	d->argv[d->argc] = NULL;
}

/* Splits s (n bytes, one line without its newline) into words after argv[0]. */
static int dir_split(struct directive *d, const char *s, size_t n, char *err, size_t errlen)
{
	char *w = xmalloc(n + 1);
	size_t i = 0;
	int r = 0;

	for (;;) {
		size_t wl = 0;
		char quote = 0;

		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i == n || s[i] == '#')
			break; /* the end, or a comment after the options */
		for (; i < n; i++) {
			char c = s[i];

			if (quote) {
				if (c == quote)
					quote = 0;
				else if (c == '\\' && quote == '"' && i + 1 < n)
					w[wl++] = s[++i];
				else
					w[wl++] = c;
			} else if (c == ' ' || c == '\t') {
				break;
			} else if (c == '"' || c == '\'') {
				quote = c;
			} else if (c == '\\' && i + 1 < n) {
				w[wl++] = s[++i];
			} else {
				w[wl++] = c;
			}
		}
		if (quote) {
			r = hpq_errf(err, errlen, HPQ_EINVAL, "%u: unterminated %c quote", d->line,
				     quote);
			break;
		}
		dir_push(d, w, wl);
	}
	free(w);
	return r;
}

int directives_scan(const char *data, size_t len, struct directive **ret, size_t *ret_n,
		    char *err, size_t errlen)
{
	static const struct {
		const char *prefix;
		bool slurm;
	} kinds[] = {{"#HPQ", false}, {"#SBATCH", true}};
	struct directive *d = NULL;
	size_t n = 0, off = 0;
	unsigned line = 0;

	while (off < len) {
		const char *s = data + off, *nl = memchr(s, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - s) : len - off, k, sp;

		off += ll + (nl != NULL);
		line++;
		if (ll && s[ll - 1] == '\r')
			ll--; /* a script saved with CRLF line ends */
		if (line == 1 && ll >= 2 && s[0] == '#' && s[1] == '!')
			continue;
		sp = 0;
		while (sp < ll && (s[sp] == ' ' || s[sp] == '\t'))
			sp++;
		if (sp == ll)
			continue;
		if (s[sp] != '#')
			break; /* the first command: the header ends */
		/* (An indented '#' line is a comment, as for sbatch; directives
		 * start in the first column.) */
		for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			size_t pl = strlen(kinds[k].prefix);

			if (ll >= pl && memcmp(s, kinds[k].prefix, pl) == 0 &&
			    (ll == pl || s[pl] == ' ' || s[pl] == '\t'))
				break;
		}
		if (k == sizeof(kinds) / sizeof(kinds[0]))
			continue; /* a comment */
		d = xreallocarray(d, n + 1, sizeof(*d));
		memset(&d[n], 0, sizeof(d[n]));
		d[n].line = line;
		d[n].slurm = kinds[k].slurm;
		dir_push(&d[n], kinds[k].prefix, strlen(kinds[k].prefix));
		n++;
		if (dir_split(&d[n - 1], s + strlen(kinds[k].prefix),
			      ll - strlen(kinds[k].prefix), err, errlen) < 0)
			goto bad;
		if (d[n - 1].argc == 1) {
			hpq_errf(err, errlen, HPQ_EINVAL, "%u: %s without an option", line,
				 kinds[k].prefix);
			goto bad;
		}
	}
	*ret = d;
	*ret_n = n;
	return 0;
bad:
	directives_free(d, n);
	return HPQ_EINVAL;
}

void batch_script_release(struct batch_script *s)
{
	free(s->data);
	directives_free(s->d, s->n);
	memset(s, 0, sizeof(*s));
}

int batch_script_load(const char *path, struct batch_script *ret, char *err, size_t errlen)
{
	struct batch_script s = {0};
	char msg[256];
	struct stat st;
	size_t cap = (size_t)HPQ_SCRIPT_MAX + 1;
	bool shebang;
	int fd, r = 0;

	/* O_NONBLOCK: a FIFO given as the command must not hang the open. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return 0; /* not ours to read: run as a command, as before */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto out;
	/* One read of at most the limit and a byte: that byte tells "too big". */
	s.data = xmalloc(cap + 1);
	while (s.len < cap) {
		ssize_t got = read(fd, s.data + s.len, cap - s.len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = hpq_errf(err, errlen, -errno, "cannot read %s: %s", path,
				     strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		if (memchr(s.data + s.len, '\0', (size_t)got))
			goto out; /* binary: a program, not a script */
		s.len += (size_t)got;
	}
	s.data[s.len] = '\0';
	shebang = s.len >= 2 && s.data[0] == '#' && s.data[1] == '!';
	if (directives_scan(s.data, s.len, &s.d, &s.n, msg, sizeof(msg)) < 0) {
		r = hpq_errf(err, errlen, HPQ_EINVAL, "%s:%s", path, msg);
		goto out;
	}
	if (!shebang && s.n == 0)
		goto out; /* text, but nothing says it is a batch script */
	if (s.len > HPQ_SCRIPT_MAX) {
		r = hpq_errf(err, errlen, HPQ_ETOOBIG,
			     "%s is a batch script larger than %u KiB, the most a submit carries; "
			     "keep the job's data in files the script reads", path,
			     HPQ_SCRIPT_MAX / 1024);
		goto out;
	}
	if (!shebang) {
		r = hpq_errf(err, errlen, HPQ_EINVAL,
			     "%s has %s lines but no '#!' first line to say what runs it; "
			     "add one, e.g. #!/bin/bash", path, s.d[0].argv[0]);
		goto out;
	}
	close(fd);
	*ret = s;
	return 1;
out:
	close(fd);
	batch_script_release(&s);
	return r;
}
