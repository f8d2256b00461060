/*
 * output.h: how hpq prints what it fetched. Fetching and printing are
 * separate (bgpctl's struct output): a handler gets a reply from the
 * daemon and passes its messages to one of two implementations of the
 * same interface, output_text (aligned tables and key/value blocks for
 * people) or output_json (one JSON document for scripts, with the field
 * names every command shares: id, name, team, user, class, state, ...).
 *
 * Conventions both follow: wire times are unix milliseconds (checkpoint
 * and finding times are seconds), 0 or less means unset. JSON prints
 * times as ISO-8601 UTC with milliseconds and unset ones as null; tables
 * print local times and relative ages. Memory is MiB on the wire and in
 * JSON, "64G" style in tables. A resource count at or above
 * HPQ_UNLIMITED_COUNT (memory: HPQ_UNLIMITED_MEM, common/hpq.h) means
 * "no limit": JSON null, "unlimited" in tables.
 */
#ifndef HPQ_OUTPUT_H
#define HPQ_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "hpq.h"
#include "hpq.pb-c.h"


struct output_ctx {
	FILE *out;      /* results */
	FILE *err;      /* per-item failures (cancel) */
	bool colour;    /* ANSI colour in tables */
	int64_t now_ms; /* "now" for ages and run times; tests fix it */
	bool noheader;  /* the task table leaves its header row out, and its
	                 * widths are then those of the rows alone */
};

struct output_version {
	const char *client_version;
	unsigned client_protocol;
	const char *server_version; /* NULL: daemon not reached */
	const char *address;
	const char *user;
	bool admin;
};

/*
 * A list of tasks read one at a time, so that a list of 100,000 tasks is
 * printed without 100,000 Task messages in memory at once: hpq list reads
 * them from the reply's frames as they come (cmd-list.c), or turns each
 * row of a frame of columns into one Task it reuses. next() returns the
 * next task, valid until the next call, or NULL after the last. rewind()
 * starts again from the first, for a printer that takes two passes (the
 * text table measures its columns first); a list that cannot be read
 * twice has none, and only output_json prints it. rewind_live(), where
 * there is one, starts a pass over the same rows in the same order, taken
 * as they arrive: hpq list's then come while hpqd still sends its reply
 * (task_rows_rewind_live), where rewind() would wait for all of it.
 * rewind_last(), where there is one, is rewind_live() for the last pass:
 * the rows may be forgotten as they are read (hpq list's frames, their
 * memory reused), and no rewind may follow (task_rows_rewind_last).
 * gen changes whenever the texts of rows read before may be gone, so
 * that a printer that knows a text by its address forgets them.
 */
struct task_rows {
	const Hpq__Task *(*next)(struct task_rows *r);
	void (*rewind)(struct task_rows *r);
	void (*rewind_live)(struct task_rows *r);
	void (*rewind_last)(struct task_rows *r);
	unsigned gen;
};

static inline void task_rows_rewind_live(struct task_rows *r)
{
	(r->rewind_live ? r->rewind_live : r->rewind)(r);
}

static inline void task_rows_rewind_last(struct task_rows *r)
{
	if (r->rewind_last)
		r->rewind_last(r);
	else
		task_rows_rewind_live(r);
}

/* task_rows over an array of tasks; the array outlives the rows. */
struct task_array_rows {
	struct task_rows rows;
	Hpq__Task *const *tasks;
	size_t n, i;
};
struct task_rows *task_rows_array(struct task_array_rows *a, Hpq__Task *const *tasks, size_t n);

struct output {
	void (*submitted)(const struct output_ctx *o, uint64_t id);
	void (*tasks)(const struct output_ctx *o, struct task_rows *tasks);
	void (*task)(const struct output_ctx *o, const Hpq__Task *t);
	void (*cancelled)(const struct output_ctx *o, Hpq__CancelResult *const *r, size_t n);
	void (*nodes)(const struct output_ctx *o, Hpq__Node *const *nodes, size_t n);
	void (*node)(const struct output_ctx *o, const Hpq__Node *node);
	void (*teams)(const struct output_ctx *o, Hpq__Team *const *teams, size_t n);
	void (*team)(const struct output_ctx *o, const Hpq__Team *team);
	void (*classes)(const struct output_ctx *o, Hpq__PriorityClass *const *c, size_t n);
	void (*version)(const struct output_ctx *o, const struct output_version *v);
	void (*versions)(const struct output_ctx *o, const Hpq__VersionsReply *r);
};

extern const struct output output_text;
extern const struct output output_json;

/* JSON values of single messages (new references), used by output_json
 * and by the tests that pin the field names. */
json_t *output_json_task(const Hpq__Task *t);
json_t *output_json_node(const Hpq__Node *n);
json_t *output_json_team(const Hpq__Team *t);
json_t *output_json_class(const Hpq__PriorityClass *c);
json_t *output_json_res(const Hpq__Resources *r);
/* A JSON string of the n bytes at s: invalid UTF-8 becomes U+FFFD. */
json_t *output_json_text(const char *s, size_t n);
/* hpq acct --json: an array of each task's record (id, task, array_id,
 * array_index, array_spec, name, user, team, class, pool, state,
 * exit_code, reason, submit_time, start_time, end_time, elapsed, nodes,
 * node_names, per_node, gpus, gpu_hours, cpu_time, peak_mem, attempts,
 * preemptions), as json_dumps(JSON_INDENT(2) | JSON_REAL_PRECISION(9))
 * prints one array of those objects, and a newline: in one pass, each
 * task printed as it is read, so that a reply that comes in frames is
 * printed as they come. */
void output_json_acct(FILE *f, struct task_rows *tasks, int64_t now_ms);

/* Formatting shared by both outputs. Each writes into buf and returns it. */
#define OUTPUT_TIME_LEN 32
/* "2024-05-01T12:00:03.250Z"; ms must be > 0. */
char *output_time_iso(int64_t ms, char *buf, size_t len);
/* "2024-05-01 14:00:03" in local time, "-" when unset. */
char *output_time_local(int64_t ms, char *buf, size_t len);
/* "5m ago", "just now", "in 3s" (clock skew); "-" when unset. */
char *output_ago(int64_t now_ms, int64_t ms, char *buf, size_t len);
/* Run time of a task: start to end, or to now while it runs; "-" while it
 * is pending (also after a requeue) or if it never started. */
char *output_runtime(const Hpq__Task *t, int64_t now_ms, char *buf, size_t len);
/* v in decimal at the end of buf (24 bytes at least), without printf:
 * a list of 100,000 tasks has several numbers a row. Returns where it
 * starts. */
char *output_uint(uint64_t v, char *buf, size_t len);
/* A queued task's reason with its queue position, "borrow-limit #3", or
 * "#3" alone when the reason is empty, in buf: room for strlen(reason) +
 * OUTPUT_QUEUED_LEN bytes. Returns buf. */
#define OUTPUT_QUEUED_LEN 24
char *output_queued(const char *reason, uint32_t pos, char *buf);
/* "unlimited" or the number; mem as "64G". */
char *output_count(uint64_t n, char *buf, size_t len);
char *output_mem(uint64_t mib, char *buf, size_t len);
/* "8 gpus, 1 cpu, 512G mem". */
char *output_res(const Hpq__Resources *r, char *buf, size_t len);
/* A signal number as "TERM"; 0 is the default, TERM. */
const char *output_signal(int signo, char *buf, size_t len);
/* argv joined with spaces, quoted for a POSIX shell where needed (malloc'd). */
char *output_argv(char *const *argv, size_t n);
/* The ANSI colour for a task state or node health word, or NULL. */
const char *output_state_colour(const char *state);
/* Is a task in this state finished: not pending, running or preempting? */
bool output_state_ended(const char *state);
/*
 * The error line of r[0], a job-control result that failed, to f: "hpq:
 * cannot VERB task ID: why", or for a summary of refusals past hpqd's
 * bound (id 0, r->tasks) "cannot VERB N more tasks: why" with the way to
 * act on one's own. The results after it, of n, that failed alike (the
 * same id, code and message: each pending index of an array that a
 * requeue names) are one line with it, which counts them. Returns how many
 * results the line stands for.
 */
size_t output_result_error(FILE *f, const char *verb, Hpq__CancelResult *const *r, size_t n);
/* A printer's own buffer of n bytes to f, after what f holds: straight to
 * its file, one write(2) for the whole buffer where stdio would make two
 * (it copies a buffer's head into its own first). A failure is left on f
 * for ferror(), as stdio leaves its own. f is locked by the caller or
 * used by one thread. */
void output_write(FILE *f, const char *buf, size_t n);

#endif
