/*
 * output-text.c: the output for people. Lists are aligned tables (table.h)
 * with one row per object and the columns an operator scans first; single
 * objects (show) are "Key: value" blocks followed by tables of their parts
 * (checkpoints, events, findings, quotas). Times are local with a relative
 * age, memory is "64G" style, empty values are "-". Colour marks states
 * and health only when stdout is a terminal and NO_COLOR is not set.
 *
 * Nothing here is meant for parsing: scripts use --json, whose fields do
 * not change when these columns do. The task list, which can be 100,000
 * rows, has a printer of its own (text_tasks) that lays out the same
 * bytes as a table would.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "escape.h"
#include "log.h"
#include "output-columns.h"
#include "output.h"
#include "parse.h"
#include "table.h"
#include "xalloc.h"

#define KEY_WIDTH 16

static void text_kv(const struct output_ctx *o, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One "Key:  value" line; an empty value prints as "-". Values come from
 * other users (names, commands, messages): control characters become
 * visible escapes (escape.h), so none can move the cursor or forge a line. */
static void text_kv(const struct output_ctx *o, const char *key, const char *fmt, ...)
{
	char *v, *shown;
	va_list ap;

	va_start(ap, fmt);
	xvasprintf(&v, fmt, ap);
	va_end(ap);
	shown = hpq_escape(v[0] ? v : "-");
	fprintf(o->out, "%s:%*s%s\n", key, (int)(KEY_WIDTH - strlen(key)), "", shown);
	free(shown);
	free(v);
}

static const char *text_colour(const struct output_ctx *o, const char *word)
{
	return o->colour ? output_state_colour(word) : NULL;
}

/* A word in its colour, for key/value lines. */
static void text_kv_word(const struct output_ctx *o, const char *key, const char *word,
			 const char *suffix)
{
	const char *sgr = text_colour(o, word);
	char *w, *s;

	if (!sgr) {
		text_kv(o, key, "%s%s", word, suffix);
		return;
	}
	/* The colour is ours; only the words are escaped. */
	w = hpq_escape(word);
	s = hpq_escape(suffix);
	fprintf(o->out, "%s:%*s%s%s\033[0m%s\n", key, (int)(KEY_WIDTH - strlen(key)), "", sgr, w,
		s);
	free(w);
	free(s);
}

static char *text_join(char *const *v, size_t n, const char *sep)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + strlen(sep);
	p = s = xmalloc(len);
	*p = '\0';
	for (size_t i = 0; i < n; i++)
		p = stpcpy(stpcpy(p, i ? sep : ""), v[i]);
	return s;
}

/* An absolute limit vector: "unlimited", or the limited resources as
 * "gpus=8,mem=512G" (the form `hpq team set --borrow-limit-abs` takes). */
static char *text_limit(const Hpq__Resources *r, char *buf, size_t len)
{
	char m[16];
	size_t off = 0;

	buf[0] = '\0';
	if (r && r->gpus < HPQ_UNLIMITED_COUNT)
		off += snprintf(buf + off, len - off, "gpus=%u", r->gpus);
	if (r && r->cpus < HPQ_UNLIMITED_COUNT && off < len)
		off += snprintf(buf + off, len - off, "%scpus=%u", off ? "," : "", r->cpus);
	if (r && r->mem < HPQ_UNLIMITED_MEM && off < len)
		snprintf(buf + off, len - off, "%smem=%s", off ? "," : "",
			 hpq_format_size_mib(r->mem, m, sizeof(m)));
	if (buf[0] == '\0')
		snprintf(buf, len, "unlimited");
	return buf;
}

static void text_submitted(const struct output_ctx *o, uint64_t id)
{
	fprintf(o->out, "%llu\n", (unsigned long long)id);
}

/*
 * The task table: hpq list's, which can be 100,000 rows. It lays out what
 * table.h would, in the same bytes, but keeps each row's cells in a few
 * bytes (text_kept) instead of a million cells of a table: most of the
 * time of a long list went to storing and copying those. The rows are
 * read once, as they arrive (task_rows_rewind_last), so hpq list forgets
 * each frame of the reply once its rows are kept.
 */
#define ROW_COLS 12
#define ROW_STATE 5                 /* the cell that has a colour */
/* Its rows go to the stream this many bytes at a time: stdio's buffer
 * is a page, a write(2) for every 50 rows, 1,800 for 100,000. */
#define TEXT_OUT_CHUNK (64u << 10)
#define TEXT_BOLD "\033[1m"
#define TEXT_RESET "\033[0m"

struct text_row {
	const char *cell[ROW_COLS];
	size_t len[ROW_COLS];       /* bytes */
	size_t shown[ROW_COLS];     /* characters shown: len, but for escaped cells */
	bool wide;                  /* a cell's shown is not its len */
	bool ended;                 /* the task has finished (output_state_ended) */
	const char *sgr;            /* STATE's colour, with colour on; or NULL */
	char id[64], exit[16], nodes[24], gpus[24], time[64];
	char *reason, *nodelist;    /* grown as needed */
	size_t reason_cap, nodelist_cap;
	char *spec_id;              /* an array's pending rest, ID_[...]: any length */
	size_t spec_id_cap;
	char *esc[ROW_COLS];        /* cells escaped (escape.h), this row's */
	/* Each column's last text from the reply and its length: rows share
	 * most texts (a reply of columns sends each once), checked once. A
	 * text is known by its address, so they are forgotten whenever the
	 * rows' gen says that addresses may have been reused. */
	const char *seen[ROW_COLS];
	size_t seen_len[ROW_COLS];
	unsigned gen;
};

static char *text_room(char **buf, size_t *cap, size_t n)
{
	if (n > *cap) {
		*cap = n * 2;
		*buf = xrealloc(*buf, *cap);
	}
	return *buf;
}

/* The cells of task k's row (EXIT too), from rows whose texts are of
 * generation gen (task_rows). */
static void text_row_fill(const struct output_ctx *o, const Hpq__Task *k, unsigned gen,
			  struct text_row *r)
{
	uint32_t nodes = k->nodes ? k->nodes : 1;
	/* A requeued task still names its last nodes; it is not on them now. */
	bool pending = strcmp(k->state, "PENDING") == 0;
	size_t c = 0, len;
	char *p;

	if (gen != r->gen) {
		memset(r->seen, 0, sizeof(r->seen));
		r->gen = gen;
	}
	/* Array tasks as ID_INDEX, an array's pending rest as ID_[5-999%50]. */
	if (k->array_spec && k->array_spec[0]) {
		len = TASK_ID_LEN + strlen(k->array_spec);
		r->cell[c++] = task_id_text(k, text_room(&r->spec_id, &r->spec_id_cap, len), len);
	} else {
		r->cell[c++] = task_id_text(k, r->id, sizeof(r->id));
	}
	r->cell[c++] = k->name;
	r->cell[c++] = k->team;
	r->cell[c++] = k->user;
	r->cell[c++] = k->class_;
	r->cell[c++] = k->state;
	r->ended = !pending && output_state_ended(k->state);
	if (r->ended && k->has_exit_code)
		snprintf(r->exit, sizeof(r->exit), "%d", k->exit_code);
	else
		r->exit[0] = '\0';
	r->cell[c++] = r->exit;
	/* REASON with the queue position: "reason #3", or "#3" alone. */
	if (k->queue_position) {
		p = text_room(&r->reason, &r->reason_cap, strlen(k->reason) + OUTPUT_QUEUED_LEN);
		r->cell[c++] = output_queued(k->reason, k->queue_position, p);
	} else {
		r->cell[c++] = k->reason;
	}
	r->cell[c++] = output_uint(nodes, r->nodes, sizeof(r->nodes));
	r->cell[c++] = output_uint((uint64_t)nodes * (k->per_node ? k->per_node->gpus : 0), r->gpus,
				 sizeof(r->gpus));
	r->cell[c++] = pending ? "-" : output_runtime(k, o->now_ms, r->time, sizeof(r->time));
	len = 1;
	if (!pending)
		for (size_t i = 0; i < k->n_node_names; i++)
			len += strlen(k->node_names[i]) + 1;
	p = text_room(&r->nodelist, &r->nodelist_cap, len);
	p[0] = '\0';
	if (!pending)
		for (size_t i = 0, off = 0; i < k->n_node_names; i++) {
			if (i)
				p[off++] = ',';
			off = (size_t)(stpcpy(p + off, k->node_names[i]) - p);
		}
	r->cell[c++] = p;
	r->wide = false;
	r->sgr = o->colour ? output_state_colour(k->state) : NULL;
	for (size_t i = 0; i < c; i++) {
		const char *x = r->cell[i];
		bool own = (x >= (const char *)r && x < (const char *)(r + 1)) || x == r->reason ||
			   x == r->nodelist || x == r->spec_id;

		if (!x || !x[0])
			x = r->cell[i] = "-";
		if (!own && x == r->seen[i]) {
			r->len[i] = r->shown[i] = r->seen_len[i];
			continue;
		}
		if (table_plain(x, &r->len[i])) {
			r->shown[i] = r->len[i];
			if (!own) {
				r->seen[i] = x;
				r->seen_len[i] = r->len[i];
			}
			continue;
		}
		free(r->esc[i]);
		r->cell[i] = r->esc[i] = table_escape(x, &r->len[i], &r->shown[i]);
		r->wide = true;
	}
}

static void text_row_free(struct text_row *r)
{
	free(r->reason);
	free(r->nodelist);
	free(r->spec_id);
	for (size_t i = 0; i < ROW_COLS; i++)
		free(r->esc[i]);
}

/*
 * The rows of the widths pass, kept for the printing. A row is a byte of
 * flags, its cells' lengths, a byte each (255: the next four bytes hold
 * it), then, where a cell is shown in fewer characters than its bytes
 * (KEPT_WIDE), the characters each in the same way, then its colour
 * (KEPT_SGR: the pointer), then the texts. Blocks are big buffers
 * (xalloc.h), never moved.
 */
#define TEXT_KEPT_BLOCK (2u << 20)
#define KEPT_WIDE 1u
#define KEPT_SGR 2u

struct text_kept {
	struct text_kept_block {
		uint8_t *buf;
		size_t len, cap;
	} *b;
	size_t n;
	size_t at, off;              /* the next row to read: block at, byte off */
};

static uint8_t *text_keep_size(uint8_t *p, size_t n)
{
	uint32_t v = (uint32_t)n; /* a reply's texts: far below 4 GiB */

	if (v < UINT8_MAX) {
		*p++ = (uint8_t)v;
	} else {
		*p++ = UINT8_MAX;
		memcpy(p, &v, sizeof(v));
		p += sizeof(v);
	}
	return p;
}

static const uint8_t *text_kept_size(const uint8_t *p, size_t *n)
{
	uint32_t v = *p++;

	if (v == UINT8_MAX) {
		memcpy(&v, p, sizeof(v));
		p += sizeof(v);
	}
	*n = v;
	return p;
}

static void text_keep(struct text_kept *k, const struct text_row *r)
{
	struct text_kept_block *b = k->n ? &k->b[k->n - 1] : NULL;
	unsigned flags = (r->wide ? KEPT_WIDE : 0) | (r->sgr ? KEPT_SGR : 0);
	size_t need = 1 + sizeof(r->sgr);
	uint8_t *p;

	for (size_t c = 0; c < ROW_COLS; c++)
		need += 2 * (1 + sizeof(uint32_t)) + r->len[c];
	if (!b || b->len + need > b->cap) {
		k->b = xreallocarray(k->b, k->n + 1, sizeof(*k->b));
		b = &k->b[k->n++];
		b->cap = need > TEXT_KEPT_BLOCK ? need : TEXT_KEPT_BLOCK;
		b->buf = xbig_grow(NULL, 0, b->cap);
		b->len = 0;
	}
	p = b->buf + b->len;
	*p++ = (uint8_t)flags;
	for (size_t c = 0; c < ROW_COLS; c++)
		p = text_keep_size(p, r->len[c]);
	for (size_t c = 0; (flags & KEPT_WIDE) && c < ROW_COLS; c++)
		p = text_keep_size(p, r->shown[c]);
	if (flags & KEPT_SGR) {
		memcpy(p, &r->sgr, sizeof(r->sgr));
		p += sizeof(r->sgr);
	}
	for (size_t c = 0; c < ROW_COLS; c++) {
		memcpy(p, r->cell[c], r->len[c]);
		p += r->len[c];
	}
	b->len = (size_t)(p - b->buf);
}

/* The next kept row's cells into r; false after the last. */
static bool text_kept_next(struct text_kept *k, struct text_row *r)
{
	const uint8_t *p;
	unsigned flags;

	if (k->at < k->n && k->off == k->b[k->at].len) {
		k->at++;
		k->off = 0;
	}
	if (k->at == k->n)
		return false;
	p = k->b[k->at].buf + k->off;
	flags = *p++;
	for (size_t c = 0; c < ROW_COLS; c++)
		p = text_kept_size(p, &r->len[c]);
	for (size_t c = 0; c < ROW_COLS; c++)
		if (flags & KEPT_WIDE)
			p = text_kept_size(p, &r->shown[c]);
		else
			r->shown[c] = r->len[c];
	r->wide = flags & KEPT_WIDE;
	r->sgr = NULL;
	if (flags & KEPT_SGR) {
		memcpy(&r->sgr, p, sizeof(r->sgr));
		p += sizeof(r->sgr);
	}
	for (size_t c = 0; c < ROW_COLS; c++) {
		r->cell[c] = (const char *)p;
		p += r->len[c];
	}
	k->off = (size_t)(p - k->b[k->at].buf);
	return true;
}

static void text_kept_free(struct text_kept *k)
{
	for (size_t i = 0; i < k->n; i++)
		xbig_free(k->b[i].buf, k->b[i].cap);
	free(k->b);
}

/* How a row is laid out: column c shows cell src[c], from at[c] on. */
struct text_layout {
	size_t ncols, src[ROW_COLS], at[ROW_COLS];
	size_t width[ROW_COLS];     /* by cell */
	bool colour;
};

/* ID, EXIT, NODES, GPUS and TIME are aligned right. */
static const bool text_right[ROW_COLS] = {
	[0] = true, [6] = true, [8] = true, [9] = true, [10] = true,
};

/* The most bytes r's line takes (text_line), its newline included. */
static size_t text_line_size(const struct text_layout *l, const struct text_row *r)
{
	size_t last = l->src[l->ncols - 1], need = 1;

	if (!r->wide && !l->colour)
		return l->at[l->ncols - 1] + (text_right[last] ? l->width[last] : r->len[last]) + 1;
	for (size_t c = 0; c < l->ncols; c++)
		need += 2 + l->width[l->src[c]] + r->len[l->src[c]] +
			sizeof(TEXT_BOLD) + sizeof(TEXT_RESET);
	return need;
}

/* r's line at p, as table.h lays out a row (header: the header row, bold
 * with colour on); returns its length. */
static size_t text_line(char *p, const struct text_layout *l, const struct text_row *r,
			bool header)
{
	char *start = p;

	if (!r->wide && !l->colour) {
		/* Every cell's bytes are its characters: blank, then each cell
		 * at its column's place. */
		size_t n = text_line_size(l, r);

		memset(p, ' ', n - 1);
		for (size_t c = 0; c < l->ncols; c++) {
			size_t k = l->src[c], len = r->len[k];

			memcpy(p + l->at[c] + (text_right[k] ? l->width[k] - len : 0), r->cell[k],
			       len);
		}
		p[n - 1] = '\n';
		return n;
	}
	for (size_t c = 0; c < l->ncols; c++) {
		size_t k = l->src[c], pad = l->width[k] - r->shown[k];
		const char *sgr = !l->colour ? NULL : header ? TEXT_BOLD
					    : k == ROW_STATE ? r->sgr : NULL;

		if (c > 0) {
			memcpy(p, "  ", 2);
			p += 2;
		}
		if (text_right[k]) {
			memset(p, ' ', pad);
			p += pad;
		}
		if (sgr)
			p = stpcpy(p, sgr);
		memcpy(p, r->cell[k], r->len[k]);
		p += r->len[k];
		if (sgr)
			p = stpcpy(p, TEXT_RESET);
		if (!text_right[k] && c + 1 < l->ncols) {
			memset(p, ' ', pad);
			p += pad;
		}
	}
	*p++ = '\n';
	return (size_t)(p - start);
}

/* A list with finished tasks (hpq list --all, --state failed) has an EXIT
 * column after STATE: their exit codes, "-" for the others. With
 * o->noheader (hpq list --noheader) the header row is left out, and its
 * texts do not widen the columns. */
static void text_tasks(const struct output_ctx *o, struct task_rows *tasks)
{
	static const char *const head[ROW_COLS] = {
		"ID", "NAME", "TEAM", "USER", "CLASS", "STATE", "EXIT", "REASON", "NODES", "GPUS",
		"TIME", "NODELIST",
	};
	struct text_layout l = { .colour = o->colour };
	struct text_row r = { 0 };
	struct text_kept kept = { 0 };
	size_t cap = 0, off = 0;
	bool exit_col = false;
	char *chunk = NULL;         /* rows not yet written, up to TEXT_OUT_CHUNK bytes */

	/* The widths with EXIT, and whether any task has finished: without
	 * one, the EXIT column goes. The rows come in print order, are read
	 * once (task_rows_rewind_last) and are kept for the printing. */
	for (size_t c = 0; c < ROW_COLS; c++)
		l.width[c] = o->noheader ? 0 : strlen(head[c]);
	task_rows_rewind_last(tasks);
	for (const Hpq__Task *k; (k = tasks->next(tasks));) {
		text_row_fill(o, k, tasks->gen, &r);
		exit_col = exit_col || r.ended;
		for (size_t c = 0; c < ROW_COLS; c++)
			if (r.shown[c] > l.width[c])
				l.width[c] = r.shown[c];
		text_keep(&kept, &r);
	}
	l.ncols = exit_col ? 12 : 11;
	for (size_t c = 0; c < l.ncols; c++)
		l.src[c] = exit_col || c < 6 ? c : c + 1;
	/* Two spaces between columns. */
	for (size_t c = 1; c < l.ncols; c++)
		l.at[c] = l.at[c - 1] + l.width[l.src[c - 1]] + 2;
	flockfile(o->out);
	for (size_t i = 0;; i++) {
		size_t need;

		if (i == 0 && o->noheader) {
			continue;
		} else if (i == 0) {
			for (size_t c = 0; c < ROW_COLS; c++) {
				r.cell[c] = head[c];
				r.len[c] = r.shown[c] = strlen(head[c]);
			}
			r.wide = false;
		} else if (!text_kept_next(&kept, &r)) {
			break;
		}
		need = text_line_size(&l, &r);
		if (off + need > TEXT_OUT_CHUNK) {
			output_write(o->out, chunk, off);
			off = 0;
		}
		text_room(&chunk, &cap, off + need);
		off += text_line(chunk + off, &l, &r, i == 0);
	}
	output_write(o->out, chunk, off);
	funlockfile(o->out);
	text_kept_free(&kept);
	free(chunk);
	text_row_free(&r);
}

static void text_time_kv(const struct output_ctx *o, const char *key, int64_t ms)
{
	char local[OUTPUT_TIME_LEN], ago[48];

	if (ms <= 0)
		text_kv(o, key, "-");
	else
		text_kv(o, key, "%s (%s)", output_time_local(ms, local, sizeof(local)),
			output_ago(o->now_ms, ms, ago, sizeof(ago)));
}

static void text_task(const struct output_ctx *o, const Hpq__Task *k)
{
	char buf[128], sig[16], *s;
	uint32_t nodes = k->nodes ? k->nodes : 1;

	text_kv(o, "Task", "%s", task_id_text(k, buf, sizeof(buf)));
	if (k->has_array)
		text_kv(o, "Array", "%llu, index %u (task %llu)", (unsigned long long)k->array_id,
			k->array_index, (unsigned long long)k->id);
	text_kv(o, "Name", "%s", k->name);
	text_kv_word(o, "State", k->state, "");
	text_kv(o, "Reason", "%s", k->reason);
	if (k->queue_position)
		text_kv(o, "Queue", "#%u in team %s", k->queue_position, k->team);
	text_kv(o, "Team", "%s", k->team);
	text_kv(o, "User", "%s (uid %u, gid %u)", k->user, k->uid, k->gid);
	text_kv(o, "Class", "%s", k->class_);
	text_kv(o, "Pool", "%s", k->pool);
	s = text_join(k->node_names, k->n_node_names, ", ");
	text_kv(o, "Nodes", "%u%s%s%s", nodes, s[0] ? (strcmp(k->state, "PENDING") == 0 ?
						       " (last attempt: " : " (") : "",
		s, s[0] ? ")" : "");
	free(s);
	text_kv(o, "Per node", "%s", output_res(k->per_node, buf, sizeof(buf)));
	text_kv(o, "Attempts", "%u", k->attempts);
	text_time_kv(o, "Submitted", k->submit_time);
	text_time_kv(o, "Started", k->start_time);
	text_time_kv(o, "Ended", k->end_time);
	text_kv(o, "Run time", "%s", output_runtime(k, o->now_ms, buf, sizeof(buf)));
	text_kv(o, "Time limit", "%s",
		k->time_limit_s ? hpq_format_duration(k->time_limit_s, buf, sizeof(buf)) : "none");
	if (k->has_exit_code)
		text_kv(o, "Exit code", "%d", k->exit_code);
	else
		text_kv(o, "Exit code", "-");
	if (k->held)
		text_kv(o, "Held", "yes (hpq release starts it)");
	if (k->dependency && k->dependency[0])
		text_kv(o, "Depends on", "%s%s", k->dependency,
			k->kill_on_invalid_dep ? " (cancelled if never satisfied)" : "");
	if (k->peak_mem || k->cpu_usec) {
		char cpu[32];

		text_kv(o, "Peak memory", "%s", task_bytes_text(k->peak_mem, buf, sizeof(buf)));
		text_kv(o, "CPU time", "%s",
			hpq_format_duration((k->cpu_usec + 500000) / 1000000, cpu, sizeof(cpu)));
	}
	if (k->preemptions)
		text_kv(o, "Preemptions", "%u", k->preemptions);
	text_kv(o, "Checkpoint dir", "%s", k->checkpoint_dir);
	if (k->plan && k->plan[0])
		text_kv(o, "Plan", "%s", k->plan);
	if (k->recipe && k->recipe[0]) {
		s = text_join(k->recipe_params, k->n_recipe_params, ", ");
		text_kv(o, "Recipe", "%s %s (%s)", k->recipe, k->recipe_version, s);
		free(s);
	}
	if (k->output && k->output[0])
		text_kv(o, "Output", "%s", k->output);
	if (k->error && k->error[0])
		text_kv(o, "Error", "%s", k->error);
	if (k->has_script)
		text_kv(o, "Script", "kept at submit (hpq show %llu --script)",
			(unsigned long long)k->id);
	text_kv(o, "Preemption", "SIG%s, grace %s",
		output_signal(k->preempt_signal, sig, sizeof(sig)),
		k->grace_s ? hpq_format_duration(k->grace_s, buf, sizeof(buf)) : "cluster default");
	/* Another user's private data, withheld by the daemon ([auth] private_data). */
	s = k->redacted ? xstrdup("(hidden)") : output_argv(k->argv, k->n_argv);
	text_kv(o, "Directory", "%s", k->redacted ? "(hidden)" : k->cwd);
	text_kv(o, "Command", "%s", s);
	free(s);

	if (k->n_checkpoints > 0) {
		struct table *t = table_new(4, "STEP", "ATTEMPT", "TIME", "PATH");

		table_align_right(t, 0);
		table_align_right(t, 1);
		for (size_t i = 0; i < k->n_checkpoints; i++) {
			const Hpq__Checkpoint *c = k->checkpoints[i];

			table_add(t, NULL, "%llu", (unsigned long long)c->step);
			table_add(t, NULL, "%u", c->attempt);
			table_add(t, NULL, "%s",
				  output_time_local(c->time * 1000, buf, sizeof(buf)));
			table_add(t, NULL, "%s", c->path);
		}
		fprintf(o->out, "\nCheckpoints:\n");
		table_print(t, o->out, o->colour);
		table_free(t);
	}
	if (k->n_events > 0) {
		struct table *t = table_new(5, "TIME", "KIND", "ACTOR", "NODE", "MESSAGE");

		for (size_t i = 0; i < k->n_events; i++) {
			const Hpq__Event *e = k->events[i];

			table_add(t, NULL, "%s", output_time_local(e->time, buf, sizeof(buf)));
			table_add(t, NULL, "%s", e->kind);
			table_add(t, NULL, "%s", e->actor);
			table_add(t, NULL, "%s", e->node);
			table_add(t, NULL, "%s", e->message);
		}
		fprintf(o->out, "\nEvents:\n");
		table_print(t, o->out, o->colour);
		table_free(t);
	}
}

static void text_cancelled(const struct output_ctx *o, Hpq__CancelResult *const *r, size_t n)
{
	for (size_t i = 0; i < n;) {
		if (r[i]->code == 0 && r[i]->tasks)
			fprintf(o->out, "cancelled %u pending %s of array %llu\n", r[i]->tasks,
				r[i]->tasks == 1 ? "index" : "indices", (unsigned long long)r[i]->id);
		else if (r[i]->code == 0)
			fprintf(o->out, "cancelled task %llu\n", (unsigned long long)r[i]->id);
		else {
			i += output_result_error(o->err, "cancel", r + i, n - i);
			continue;
		}
		i++;
	}
}

/* "used/capacity" of one resource. */
static void text_usage(struct table *t, uint64_t used, uint64_t cap, bool mem)
{
	char u[16], c[16];

	if (mem)
		table_add(t, NULL, "%s/%s", output_mem(used, u, sizeof(u)),
			  output_mem(cap, c, sizeof(c)));
	else
		table_add(t, NULL, "%llu/%llu", (unsigned long long)used, (unsigned long long)cap);
}

static void text_nodes(const struct output_ctx *o, Hpq__Node *const *nodes, size_t n)
{
	struct table *t = table_new(11, "NAME", "POOL", "AGENT", "HEALTH", "SERVICE", "GPUS",
				    "CPUS", "MEM", "TASKS", "HEARTBEAT", "REASON");
	char buf[48];

	for (size_t i = 5; i <= 8; i++)
		table_align_right(t, i);
	for (size_t i = 0; i < n; i++) {
		const Hpq__Node *d = nodes[i];
		const Hpq__Resources *cap = d->capacity, *used = d->used;

		table_add(t, NULL, "%s", d->name);
		table_add(t, NULL, "%s", d->pool);
		table_add(t, d->connected ? NULL : "\033[31m", "%s", d->connected ? "up" : "down");
		table_add(t, output_state_colour(d->health), "%s", d->health);
		table_add(t, output_state_colour(d->service), "%s", d->service);
		text_usage(t, used ? used->gpus : 0, cap ? cap->gpus : 0, false);
		text_usage(t, used ? used->cpus : 0, cap ? cap->cpus : 0, false);
		text_usage(t, used ? used->mem : 0, cap ? cap->mem : 0, true);
		table_add(t, NULL, "%zu", d->n_tasks);
		table_add(t, NULL, "%s",
			  output_ago(o->now_ms, d->last_heartbeat, buf, sizeof(buf)));
		table_add(t, NULL, "%s", d->reason);
	}
	table_print(t, o->out, o->colour);
	table_free(t);
}

static void text_node(const struct output_ctx *o, const Hpq__Node *d)
{
	char buf[128];

	text_kv(o, "Node", "%s", d->name);
	text_kv(o, "Pool", "%s", d->pool);
	text_kv(o, "Address", "%s", d->address);
	text_kv(o, "Agent", "%s%s%s", d->connected ? "connected" : "disconnected",
		d->software_version[0] ? ", version " : "", d->software_version);
	if (d->identity[0] && !strcmp(d->identity, "tls"))
		text_kv(o, "Identity", "certificate, valid until %s",
			output_time_local(d->cert_not_after_ms, buf, sizeof(buf)));
	else if (d->identity[0])
		text_kv(o, "Identity", "%s", !strcmp(d->identity, "local")
						     ? "Unix socket, as root"
						     : "its own word (hpqd --insecure)");
	text_kv_word(o, "Health", d->health, "");
	text_kv_word(o, "Service", d->service, "");
	if (d->service_by[0])
		text_kv(o, "Service by", "%s", d->service_by);
	if (d->repair_action[0])
		text_kv(o, "Repair", "%s", d->repair_action);
	text_kv(o, "Reason", "%s", d->reason);
	text_kv(o, "Capacity", "%s", output_res(d->capacity, buf, sizeof(buf)));
	text_kv(o, "Used", "%s", output_res(d->used, buf, sizeof(buf)));
	if (d->connected)
		text_kv(o, "Confinement", "%s%s", d->cgroup ? "cgroup v2 (CPUs, memory, pids)"
							  : "none: ",
			d->cgroup ? "" : d->cgroup_problem[0] ? d->cgroup_problem : "not reported");
	text_time_kv(o, "Heartbeat", d->last_heartbeat);
	if (d->n_tasks == 0) {
		text_kv(o, "Tasks", "-");
	} else {
		fprintf(o->out, "Tasks:%*s", KEY_WIDTH - 5, "");
		for (size_t i = 0; i < d->n_tasks; i++)
			fprintf(o->out, "%s%llu", i ? " " : "", (unsigned long long)d->tasks[i]);
		fputc('\n', o->out);
	}
	if (d->n_findings > 0) {
		struct table *t = table_new(5, "SEVERITY", "CATEGORY", "REASON", "SINCE",
					    "MESSAGE");

		for (size_t i = 0; i < d->n_findings; i++) {
			const Hpq__Finding *f = d->findings[i];

			table_add(t, NULL, "%s", f->severity);
			table_add(t, NULL, "%s", f->category);
			table_add(t, NULL, "%s", f->reason);
			table_add(t, NULL, "%s",
				  output_ago(o->now_ms, f->since * 1000, buf, sizeof(buf)));
			table_add(t, NULL, "%s", f->message);
		}
		fprintf(o->out, "\nFindings:\n");
		table_print(t, o->out, o->colour);
		table_free(t);
	}
}

/* The quota columns of one (team, pool) row. */
static void text_quota_cells(struct table *t, const Hpq__PoolQuota *q)
{
	char buf[96];
	const Hpq__Resources *g = q->guarantee;

	table_add(t, NULL, "%s", q->pool);
	table_add(t, NULL, "%s", output_count(g ? g->gpus : 0, buf, sizeof(buf)));
	table_add(t, NULL, "%s", output_count(g ? g->cpus : 0, buf, sizeof(buf)));
	table_add(t, NULL, "%s", output_mem(g ? g->mem : 0, buf, sizeof(buf)));
	table_add(t, NULL, "%s", q->sharing);
	if (q->has_borrow_limit_abs)
		table_add(t, NULL, "%s", text_limit(q->borrow_limit_abs, buf, sizeof(buf)));
	else
		table_add(t, NULL, "%u%%", q->borrow_limit_pct);
	table_add(t, NULL, "%s", q->has_lend_limit ? text_limit(q->lend_limit, buf, sizeof(buf))
						   : "all");
}

static void text_teams(const struct output_ctx *o, Hpq__Team *const *teams, size_t n)
{
	struct table *t = table_new(11, "TEAM", "WEIGHT", "MEMBERS", "ADMINS", "POOL", "GPUS",
				    "CPUS", "MEM", "SHARING", "BORROW", "LEND");

	table_align_right(t, 1);
	for (size_t i = 5; i <= 7; i++)
		table_align_right(t, i);
	for (size_t i = 0; i < n; i++) {
		const Hpq__Team *m = teams[i];
		char *members = text_join(m->members, m->n_members, ",");
		char *admins = text_join(m->admins, m->n_admins, ",");

		/* One row per pool quota; a team without quotas still gets a row. */
		for (size_t k = 0; k < (m->n_quotas ? m->n_quotas : 1); k++) {
			table_add(t, NULL, "%s", m->name);
			table_add(t, NULL, "%u", m->weight);
			table_add(t, NULL, "%s", m->n_members ? members : "anyone");
			table_add(t, NULL, "%s", m->n_admins ? admins : "-");
			if (m->n_quotas) {
				text_quota_cells(t, m->quotas[k]);
			} else {
				for (int c = 0; c < 7; c++)
					table_add(t, NULL, "-");
			}
		}
		free(members);
		free(admins);
	}
	table_print(t, o->out, o->colour);
	table_free(t);
}

static void text_team(const struct output_ctx *o, const Hpq__Team *m)
{
	char *members = text_join(m->members, m->n_members, ", ");

	text_kv(o, "Team", "%s", m->name);
	text_kv(o, "Weight", "%u", m->weight);
	text_kv(o, "Preempt own", "%s", m->preempt_own);
	text_kv(o, "Default class", "%s", m->default_class);
	text_kv(o, "Members", "%s", m->n_members ? members : "anyone (open team)");
	free(members);
	members = text_join(m->admins, m->n_admins, ", ");
	text_kv(o, "Admins", "%s", m->n_admins ? members : "none (cluster administrators only)");
	free(members);
	if (m->n_quotas > 0) {
		struct table *t = table_new(7, "POOL", "GPUS", "CPUS", "MEM", "SHARING", "BORROW",
					    "LEND");

		for (size_t i = 1; i <= 3; i++)
			table_align_right(t, i);
		for (size_t i = 0; i < m->n_quotas; i++)
			text_quota_cells(t, m->quotas[i]);
		fprintf(o->out, "\nGuarantees:\n");
		table_print(t, o->out, o->colour);
		table_free(t);
	}
	if (m->n_usage > 0) {
		struct table *t = table_new(6, "POOL", "USED", "BORROWED", "LENT", "RUNNING",
					    "PENDING");
		char a[64], b[64], c[64];

		for (size_t i = 1; i <= 5; i++)
			table_align_right(t, i);
		for (size_t i = 0; i < m->n_usage; i++) {
			const Hpq__PoolUsage *u = m->usage[i];

			table_add(t, NULL, "%s", u->pool);
			table_add(t, NULL, "%s", output_res(u->used, a, sizeof(a)));
			table_add(t, NULL, "%s", output_res(u->borrowed, b, sizeof(b)));
			table_add(t, NULL, "%s", output_res(u->lent, c, sizeof(c)));
			table_add(t, NULL, "%u", u->running);
			table_add(t, NULL, "%u", u->pending);
		}
		fprintf(o->out, "\nUsage now:\n");
		table_print(t, o->out, o->colour);
		table_free(t);
	}
}

static void text_classes(const struct output_ctx *o, Hpq__PriorityClass *const *c, size_t n)
{
	struct table *t = table_new(4, "CLASS", "WEIGHT", "PREEMPTIBLE", "MAX TIME");
	char d[32];

	table_align_right(t, 1);
	for (size_t i = 0; i < n; i++) {
		table_add(t, NULL, "%s", c[i]->name);
		table_add(t, NULL, "%u", c[i]->weight);
		table_add(t, NULL, "%s", c[i]->preemptible ? "yes" : "no");
		table_add(t, NULL, "%s", c[i]->max_time_s ? hpq_format_duration(c[i]->max_time_s,
								 d, sizeof(d)) : "-");
	}
	table_print(t, o->out, o->colour);
	table_free(t);
}

static void text_version(const struct output_ctx *o, const struct output_version *v)
{
	char *sv, *user;

	fprintf(o->out, "hpq %s (protocol %u)\n", v->client_version, v->client_protocol);
	if (!v->server_version)
		return;
	sv = hpq_escape(v->server_version);
	user = hpq_escape(v->user);
	fprintf(o->out, "hpqd %s at %s, connected as %s%s\n", sv, v->address, user,
		v->admin ? " (admin)" : "");
	free(sv);
	free(user);
}

/* hpq versions: the catalogue, then who runs what, agents grouped by release. */
static void text_versions(const struct output_ctx *o, const Hpq__VersionsReply *r)
{
	struct table *t = table_new(8, "VERSION", "RELEASED", "STANDARD-UNTIL", "EXTENDED-UNTIL",
				    "STATUS", "PROTOCOL", "SCHEMA", "DEFAULT");
	bool *done = r->n_agents ? xcalloc(r->n_agents, sizeof(*done)) : NULL;

	for (size_t i = 0; i < r->n_releases; i++) {
		const Hpq__Release *x = r->releases[i];

		table_add(t, NULL, "%s", x->version);
		table_add(t, NULL, "%s", x->released);
		table_add(t, NULL, "%s", x->end_of_standard_support);
		table_add(t, NULL, "%s", x->end_of_extended_support);
		table_add(t, strcmp(x->status, "END_OF_SUPPORT") ? NULL : output_state_colour("FAILED"), "%s",
			  x->status);
		if (x->protocol_min < x->protocol)
			table_add(t, NULL, "%u (from %u)", x->protocol, x->protocol_min);
		else
			table_add(t, NULL, "%u", x->protocol);
		table_add(t, NULL, "%u", x->schema);
		table_add(t, NULL, "%s", x->default_ ? "yes" : "");
	}
	if (r->n_releases)
		table_print(t, o->out, o->colour);
	else
		fprintf(o->out, "no release catalogue: %s\n", r->catalog_error);
	table_free(t);
	fprintf(o->out, "\nhpqd: %s (protocol %u, schema %u)\n", r->daemon_version,
		r->daemon_protocol, r->daemon_schema);
	/* Agents, one line per version, in the order first seen. */
	for (size_t i = 0; i < r->n_agents; i++) {
		const char *v = r->agents[i]->version;
		size_t n = 0, off = 0;
		char line[1024];

		if (done[i])
			continue;
		line[0] = '\0';
		for (size_t k = i; k < r->n_agents; k++) {
			if (done[k] || strcmp(r->agents[k]->version, v))
				continue;
			done[k] = true;
			n++;
			if (off < sizeof(line) - 64)
				off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s%s",
							n > 1 ? ", " : "", r->agents[k]->node,
							r->agents[k]->connected ? "" : " (away)");
			else if (off < sizeof(line) - 4)
				off += (size_t)snprintf(line + off, sizeof(line) - off, ", ...");
		}
		fprintf(o->out, "agents %s: %zu (%s)\n", *v ? v : "(not yet known)", n, line);
	}
	free(done);
}

const struct output output_text = {
	.submitted = text_submitted,
	.tasks = text_tasks,
	.task = text_task,
	.cancelled = text_cancelled,
	.nodes = text_nodes,
	.node = text_node,
	.teams = text_teams,
	.team = text_team,
	.classes = text_classes,
	.version = text_version,
	.versions = text_versions,
};
