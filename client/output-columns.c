/*
 * output-columns.c: task tables with named columns (see output-columns.h).
 * A column is a name, a header and how to print one task's value twice:
 * for a table and for a program. The two are kept side by side in one
 * switch so that a new column cannot exist in one form only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "log.h"
#include "output-columns.h"
#include "parse.h"
#include "table.h"
#include "xalloc.h"

enum {
	COL_ID,
	COL_NAME,
	COL_TEAM,
	COL_USER,
	COL_CLASS,
	COL_POOL,
	COL_STATE,
	COL_EXIT,
	COL_REASON,
	COL_NODES,
	COL_GPUS,
	COL_TIME,
	COL_ELAPSED,
	COL_NODELIST,
	COL_SUBMIT,
	COL_START,
	COL_END,
	COL_LIMIT,
	COL_ATTEMPTS,
	COL_PREEMPTIONS,
	COL_HELD,
	COL_DEPENDENCY,
	COL_GPU_HOURS,
	COL_CPU_TIME,
	COL_PEAK_MEM,
};

const struct task_column task_columns[] = {
	[COL_ID] = {"id", "ID", true, true},
	[COL_NAME] = {"name", "NAME", false, true},
	[COL_TEAM] = {"team", "TEAM", false, true},
	[COL_USER] = {"user", "USER", false, true},
	[COL_CLASS] = {"class", "CLASS", false, true},
	[COL_POOL] = {"pool", "POOL", false, false},
	[COL_STATE] = {"state", "STATE", false, true},
	[COL_EXIT] = {"exit", "EXIT", true, true},
	[COL_REASON] = {"reason", "REASON", false, true},
	[COL_NODES] = {"nodes", "NODES", true, true},
	[COL_GPUS] = {"gpus", "GPUS", true, true},
	[COL_TIME] = {"time", "TIME", true, true},
	[COL_ELAPSED] = {"elapsed", "ELAPSED", true, true},
	[COL_NODELIST] = {"nodelist", "NODELIST", false, true},
	[COL_SUBMIT] = {"submit", "SUBMIT", false, false},
	[COL_START] = {"start", "START", false, true},
	[COL_END] = {"end", "END", false, true},
	[COL_LIMIT] = {"limit", "LIMIT", true, false},
	[COL_ATTEMPTS] = {"attempts", "ATTEMPTS", true, false},
	[COL_PREEMPTIONS] = {"preemptions", "PREEMPTIONS", true, false},
	[COL_HELD] = {"held", "HELD", false, true},
	[COL_DEPENDENCY] = {"dependency", "DEPENDENCY", false, false},
	[COL_GPU_HOURS] = {"gpu_hours", "GPU-HOURS", true, false},
	[COL_CPU_TIME] = {"cpu_time", "CPU-TIME", true, false},
	[COL_PEAK_MEM] = {"peak_mem", "PEAK-MEM", true, false},
	{NULL, NULL, false, false},
};

int task_columns_parse(const char *spec, size_t *cols, size_t max, size_t *ret_n, char *err,
		       size_t errlen)
{
	size_t n = 0, len = strlen(spec);
	const char *p = spec;

	if (len == 0 || spec[len - 1] == ',')
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"--format takes column names separated by commas, "
				"not '%.100s'", spec);
	while (*p) {
		size_t w = strcspn(p, ","), col;

		for (col = 0; task_columns[col].name; col++)
			if (strlen(task_columns[col].name) == w &&
			    strncasecmp(task_columns[col].name, p, w) == 0)
				break;
		if (!task_columns[col].name)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--format: unknown column '%.*s'; see --help for "
					"the columns", (int)(w > 64 ? 64 : w), p);
		if (n == max)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--format: more than %zu columns", max);
		cols[n++] = col;
		p += w;
		if (*p == ',')
			p++;
	}
	*ret_n = n;
	return 0;
}

char *task_id_text(const Hpq__Task *t, char *buf, size_t len)
{
	bool spec = t->array_spec && t->array_spec[0];
	bool array = spec || t->has_array;
	char num[24], *p;

	if (len < TASK_ID_LEN + (spec ? strlen(t->array_spec) : 0))
		hpq_fatal("task_id_text: %zu bytes is too short", len);
	/* Without printf: a list of 100,000 tasks has an id a row. */
	if (!array)
		return output_uint(t->id, buf, len);
	p = stpcpy(buf, output_uint(t->array_id ? t->array_id : t->id, num, sizeof(num)));
	if (spec)
		stpcpy(stpcpy(stpcpy(p, "_["), t->array_spec), "]");
	else
		stpcpy(stpcpy(p, "_"), output_uint(t->array_index, num, sizeof(num)));
	return buf;
}

uint64_t task_elapsed_s(const Hpq__Task *t, int64_t now_ms)
{
	int64_t end = t->end_time > 0 ? t->end_time : now_ms;

	/* A requeued task keeps its last attempt's start; it does not run now. */
	if (t->start_time <= 0 || end <= t->start_time || strcmp(t->state, "PENDING") == 0)
		return 0;
	return (uint64_t)(end - t->start_time) / 1000;
}

double task_gpu_hours(const Hpq__Task *t, int64_t now_ms)
{
	uint32_t nodes = t->nodes ? t->nodes : 1;
	uint32_t gpus = t->per_node ? t->per_node->gpus : 0;

	if (gpus >= HPQ_UNLIMITED_COUNT)
		gpus = 0;
	return (double)gpus * nodes * (double)task_elapsed_s(t, now_ms) / 3600.0;
}

char *task_bytes_text(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%lluB", (unsigned long long)bytes);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(units) - 1) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f%c", v, units[u]);
	return buf;
}

/* Room for n bytes in b's text, its contents not kept. */
static char *cell_room(struct task_cell_buf *b, size_t n)
{
	if (n > b->cap) {
		b->cap = n < 256 ? 256 : 2 * n;
		free(b->s);
		b->s = xmalloc(b->cap);
	}
	return b->s;
}

static const char *cell_uint(struct task_cell_buf *b, uint64_t v)
{
	return output_uint(v, cell_room(b, 24), 24);
}

/* b's text printed from fmt, b grown to fit (it may have no room yet). */
static const char *cell_fmt(struct task_cell_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static const char *cell_fmt(struct task_cell_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->s, b->cap, fmt, ap);
	va_end(ap);
	if (n < 0)
		return "";
	if ((size_t)n >= b->cap) {
		cell_room(b, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(b->s, b->cap, fmt, ap);
		va_end(ap);
	}
	return b->s;
}

/* A time as text: the second's from b if it is one of those kept (for
 * every cell, localtime_r and strftime were a tenth of an export's CPU),
 * with its milliseconds filled in when raw. */
static const char *cell_time(struct task_cell_buf *b, int64_t ms, bool raw)
{
	int64_t secs = ms / 1000;
	__typeof__(b->time[0]) *k = &b->time[secs % TASK_CELL_TIMES];
	size_t n;

	if (ms <= 0)
		return "";
	if (secs != k->s || raw != k->raw || !k->text[0]) {
		if (raw)
			output_time_iso(ms, k->text, sizeof(k->text));
		else
			output_time_local(ms, k->text, sizeof(k->text));
		k->s = secs;
		k->raw = raw;
	}
	n = strlen(k->text);
	if (raw && n >= 5 && k->text[n - 5] == '.' && k->text[n - 1] == 'Z') {
		/* "...:SS.mmmZ": the kept text with this time's mmm. */
		char *buf = memcpy(cell_room(b, n + 1), k->text, n + 1);
		int m = (int)(ms % 1000);

		buf[n - 4] = (char)('0' + m / 100);
		buf[n - 3] = (char)('0' + m / 10 % 10);
		buf[n - 2] = (char)('0' + m % 10);
		return buf;
	}
	return k->text;
}

static const char *cell_join(struct task_cell_buf *b, char *const *v, size_t n)
{
	size_t len = 1;
	char *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	p = cell_room(b, len);
	*p = '\0';
	for (size_t i = 0; i < n; i++)
		p = stpcpy(stpcpy(p, i ? "," : ""), v[i]);
	return b->s;
}

const char *task_cell_text(const Hpq__Task *t, size_t col, bool raw, int64_t now_ms,
			   struct task_cell_buf *b)
{
	uint32_t nodes = t->nodes ? t->nodes : 1;
	size_t n;
	uint64_t secs;

	switch (col) {
	case COL_ID:
		/* An array's pending rest has its indices, of any length. */
		n = TASK_ID_LEN + (t->array_spec ? strlen(t->array_spec) : 0);
		return task_id_text(t, cell_room(b, n), n);
	case COL_NAME:
		return t->name;
	case COL_TEAM:
		return t->team;
	case COL_USER:
		return t->user;
	case COL_CLASS:
		return t->class_;
	case COL_POOL:
		return t->pool;
	case COL_STATE:
		return t->state;
	case COL_EXIT:
		if (!output_state_ended(t->state) || !t->has_exit_code)
			return "";
		if (t->exit_code >= 0)
			return cell_uint(b, (uint64_t)t->exit_code);
		return cell_fmt(b, "%d", t->exit_code);
	case COL_REASON:
		if (raw || !t->queue_position)
			return t->reason;
		return output_queued(t->reason, t->queue_position,
				     cell_room(b, strlen(t->reason) + OUTPUT_QUEUED_LEN));
	case COL_NODES:
		return cell_uint(b, nodes);
	case COL_GPUS:
		return cell_uint(b, (uint64_t)nodes * (t->per_node ? t->per_node->gpus : 0));
	case COL_TIME:
	case COL_ELAPSED:
		secs = task_elapsed_s(t, now_ms);
		if (raw)
			return cell_uint(b, secs);
		return output_runtime(t, now_ms, cell_room(b, 64), 64);
	case COL_NODELIST:
		/* A requeued task still names its last nodes; it is not on them now. */
		if (!strcmp(t->state, "PENDING"))
			return "";
		return cell_join(b, t->node_names, t->n_node_names);
	case COL_SUBMIT:
		return cell_time(b, t->submit_time, raw);
	case COL_START:
		return cell_time(b, t->start_time, raw);
	case COL_END:
		return cell_time(b, t->end_time, raw);
	case COL_LIMIT:
		if (!t->time_limit_s)
			return "";
		if (raw)
			return cell_uint(b, t->time_limit_s);
		return hpq_format_duration(t->time_limit_s, cell_room(b, 64), 64);
	case COL_ATTEMPTS:
		return cell_uint(b, t->attempts);
	case COL_PREEMPTIONS:
		return cell_uint(b, t->preemptions);
	case COL_HELD:
		return t->held ? "yes" : "no";
	case COL_DEPENDENCY:
		return t->dependency;
	case COL_GPU_HOURS:
		return cell_fmt(b, raw ? "%.3f" : "%.2f", task_gpu_hours(t, now_ms));
	case COL_CPU_TIME:
		if (raw)
			return cell_fmt(b, "%.3f", (double)t->cpu_usec / 1e6);
		if (!t->cpu_usec)
			return "";
		return hpq_format_duration(t->cpu_usec / 1000000, cell_room(b, 64), 64);
	case COL_PEAK_MEM:
		if (raw)
			return cell_uint(b, t->peak_mem);
		if (!t->peak_mem)
			return "";
		return task_bytes_text(t->peak_mem, cell_room(b, 64), 64);
	}
	hpq_fatal("task_cell_text: no column %zu", col);
}

void task_table(const struct output_ctx *o, struct task_rows *tasks, const size_t *cols,
		size_t ncols, bool header)
{
	struct table *t = table_new(1, task_columns[cols[0]].header);
	struct task_cell_buf b = { 0 };

	/* table_new takes its headers as arguments; the rest are added here. */
	for (size_t c = 1; c < ncols; c++)
		table_add_column(t, task_columns[cols[c]].header);
	for (size_t c = 0; c < ncols; c++)
		if (task_columns[cols[c]].right)
			table_align_right(t, c);
	if (!header)
		table_hide_header(t);
	task_rows_rewind_last(tasks);
	for (const Hpq__Task *k; (k = tasks->next(tasks));)
		for (size_t c = 0; c < ncols; c++)
			table_add_text(t, cols[c] == COL_STATE ? output_state_colour(k->state) : NULL,
				       task_cell_text(k, cols[c], false, o->now_ms, &b));
	table_print(t, o->out, o->colour);
	table_free(t);
	free(b.s);
}

char *task_csv_quote(char *p, const char *s, size_t n)
{
	if (strcspn(s, ",\"\r\n") == n && !(n && (s[0] == ' ' || s[n - 1] == ' ')))
		return (char *)memcpy(p, s, n) + n;
	*p++ = '"';
	for (; *s; s++) {
		if (*s == '"')
			*p++ = '"';
		*p++ = *s;
	}
	*p++ = '"';
	return p;
}

void task_csv(FILE *f, struct task_rows *tasks, const size_t *cols, size_t ncols, bool header,
	      int64_t now_ms)
{
	struct task_cell_buf b = { 0 };
	char *line = NULL;
	size_t cap = 0;

	for (size_t c = 0; header && c < ncols; c++)
		fprintf(f, "%s%s", c ? "," : "", task_columns[cols[c]].name);
	if (header)
		fputc('\n', f);
	task_rows_rewind_last(tasks);
	/* One write a record, laid out in line. */
	for (const Hpq__Task *k; (k = tasks->next(tasks));) {
		size_t len = 0;

		for (size_t c = 0; c < ncols; c++) {
			const char *cell = task_cell_text(k, cols[c], true, now_ms, &b);
			size_t n = strlen(cell);

			if (len + 2 * n + 4 > cap) {
				cap = 2 * (len + 2 * n + 4);
				line = xrealloc(line, cap);
			}
			if (c)
				line[len++] = ',';
			len = (size_t)(task_csv_quote(line + len, cell, n) - line);
		}
		if (len + 1 > cap)
			line = xrealloc(line, cap = len + 1);
		line[len++] = '\n';
		fwrite(line, 1, len, f);
	}
	free(line);
	free(b.s);
}
