/*
 * output-columns.h: task tables with columns chosen by name, for
 * `hpq list --format` and `hpq acct`: the column table (the names are
 * also the keys of hpq acct --json and the header of --csv), the parser
 * of a "--format id,name,state" list, the cells as people read them
 * (tables) or as programs do (CSV: seconds, bytes, ISO-8601 UTC), the
 * CSV quoting of RFC 4180, and the figures hpq derives from a task
 * (GPU-hours).
 */
#ifndef HPQ_OUTPUT_COLUMNS_H
#define HPQ_OUTPUT_COLUMNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "output.h"

struct task_column {
	const char *name;   /* as --format takes it, lower case */
	const char *header; /* table header */
	bool right;         /* numbers align right */
	bool table;         /* LIST_VIEW_TABLE's columns carry it (else LIST_VIEW_FORMAT's) */
};

/* Every column, ending with a NULL name. */
extern const struct task_column task_columns[];
#define TASK_COLUMNS_MAX 64 /* the most columns one --format may list */

/* Parses a comma-separated list of column names (any letter case; a name
 * may repeat) into indices of task_columns. Returns 0, or HPQ_EINVAL with
 * a message naming the unknown column in err. */
int task_columns_parse(const char *spec, size_t *cols, size_t max, size_t *ret_n, char *err,
		       size_t errlen);

/* The columns for --help (a unit test checks it names every column). */
#define TASK_COLUMNS_HELP                                                            \
	"  id           task id; ID_INDEX in an array, ID_[5-99%10] for its pending\n"  \
	"               rest\n"                                                       \
	"  name, team, user, class, pool, state\n"                                    \
	"  exit         exit code of a finished task (128+N: signal N)\n"             \
	"  reason       why it waits or why it ended\n"                               \
	"  nodes        number of nodes\n"                                            \
	"  gpus         GPUs over all its nodes\n"                                    \
	"  time, elapsed  run time of the current or last attempt\n"                  \
	"  nodelist     nodes of the current or last attempt\n"                       \
	"  submit, start, end  times (start and end of the last attempt)\n"           \
	"  limit        time limit\n"                                                 \
	"  attempts     attempts so far\n"                                            \
	"  preemptions  times it was preempted\n"                                     \
	"  held         yes when held (hpq hold)\n"                                   \
	"  dependency   dependencies it still waits for\n"                            \
	"  gpu_hours    GPUs per node x nodes x elapsed hours\n"                      \
	"  cpu_time     CPU time used over its attempts\n"                            \
	"  peak_mem     the largest memory use of an attempt\n"

/* Where a cell's text is laid out: grown as needed, kept from cell to
 * cell (free s when done), so that a row costs no allocation. The texts
 * of the last few seconds shown are kept too, by second: the rows of a
 * list were mostly submitted, started and ended within a few seconds of
 * each other's. Start it zeroed. */
#define TASK_CELL_TIMES 4
struct task_cell_buf {
	char *s;
	size_t cap;
	struct {
		int64_t s;           /* the second text shows (none while it is "") */
		bool raw;            /* ... as ISO-8601 UTC, its .000Z to fill */
		char text[OUTPUT_TIME_LEN];
	} time[TASK_CELL_TIMES];
};
/* Column col of task t: for people when !raw (durations "1h30m", memory
 * "1.5G", local times), for programs when raw (seconds, bytes, ISO-8601
 * UTC, "" when unset). One of t's strings, or b's text: valid until t or
 * b next changes. */
const char *task_cell_text(const Hpq__Task *t, size_t col, bool raw, int64_t now_ms,
			   struct task_cell_buf *b);

/* The task's id as shown: "12", "12_5" in an array, "12_[5-999%50]" for
 * an array's pending rest, in buf: TASK_ID_LEN bytes, and strlen of the
 * rest's indices more. Returns the text, which is in buf. */
#define TASK_ID_LEN 48
char *task_id_text(const Hpq__Task *t, char *buf, size_t len);
/* Seconds of its last attempt (to now while running); 0 if it never ran. */
uint64_t task_elapsed_s(const Hpq__Task *t, int64_t now_ms);
/* GPUs per node x nodes x elapsed hours. */
double task_gpu_hours(const Hpq__Task *t, int64_t now_ms);
/* Bytes for people: "512B", "2.0K", "1.5G". Returns buf. */
char *task_bytes_text(uint64_t bytes, char *buf, size_t len);

/* A table of the chosen columns; header false leaves the header row out.
 * Both it and task_csv read the rows once (task_rows_rewind_last). */
void task_table(const struct output_ctx *o, struct task_rows *tasks, const size_t *cols,
		size_t ncols, bool header);
/* CSV with RFC 4180 quoting: a header row of column names when header;
 * lines end in LF, as hpq usage --csv. */
void task_csv(FILE *f, struct task_rows *tasks, const size_t *cols, size_t ncols, bool header,
	      int64_t now_ms);
/* One CSV field, s of n bytes, at p (room for 2n + 2 bytes): quoted when
 * it holds a comma, quote, CR or LF or starts or ends with a space,
 * quotes doubled. Returns its end; no NUL is written. */
char *task_csv_quote(char *p, const char *s, size_t n);

#endif
