/*
 * req-list.c: ListRequest, `hpq list` (request.h): the tasks that match a
 * filter, newest first (or oldest first, in_order), each whole or with
 * only the fields a table shows (the default table's, or those of every
 * --format column), as rows or as columns, in one frame or streamed in as
 * many as it takes.
 *
 * A streamed list is built over several turns of the loop, about a
 * frame's worth (LIST_FRAME_BYTES or LIST_FRAME_ROWS) at a time, so that
 * a list of 100,000 tasks does not hold up every other request and agent
 * for the tens of milliseconds it takes to build; a turn waits while the
 * client has more than LIST_QUEUE_MAX unread. Between turns the walk
 * remembers only ids (the next task's, and within an array's expanded
 * rows the next index): a task that leaves memory meanwhile is simply
 * not met, and no row outlives the strings it borrows: a row of tasks is
 * packed as it is taken, and a frame of columns is encoded before its
 * turn ends. An array's pending rows follow its first task, or stand in
 * its place once that task has ended and left memory. The list is of the
 * tasks that existed when it was asked for (below st->next_id then), each
 * as it stands when the walk reaches it, with queue positions as of its
 * first pending row. A list that is not
 * streamed, or has no socket to go to, is built at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "array.h"
#include "clock.h"
#include "context.h"
#include "deprecation.h"
#include "error.h"
#include "log.h"
#include "msg.h"
#include "queue.h"
#include "request.h"
#include "rights.h"
#include "server.h"
#include "strmap.h"
#include "task-reply.h"
#include "xalloc.h"

/* Room left in a frame for the envelope around a list of tasks. */
#define LIST_BUDGET (HPQ_FRAME_MAX - 65536)
/* A streamed list's frames: small enough that the client decodes one
 * while the next is on its way, */
#define LIST_FRAME_BYTES (1u << 20)
/* and of at most this many rows, each a Task for the client to decode. */
#define LIST_FRAME_ROWS 1024
/* Slots of the cache of texts by address that columns keep per frame. */
#define LIST_SEEN 256
/* At least what a columns row adds to a frame, packed: its numbers and
 * text indices (five varints of up to 10 bytes, thirteen of up to 5),
 * 5 more for each node name's index, and each text new to the frame its
 * length and 8. */
#define LIST_COLS_ROW_BYTES 128
#define LIST_COLS_NODE_BYTES 5
#define LIST_COLS_TEXT_BYTES 8
/* What LIST_VIEW_FORMAT's columns add to a row: four varints of up to 10
 * bytes and four of up to 5. */
#define LIST_COLS_FORMAT_BYTES 60
/* The columns of texts: name, team, user, class, state, reason, array_spec,
 * node names, and LIST_VIEW_FORMAT's pool and dependency. */
#define LIST_TEXT_COLS 10
/* A turn of a streamed list ends once its frame is within this of
 * LIST_FRAME_BYTES: more than a row takes. */
#define LIST_TURN_SLACK (16u << 10)
/* A streamed list waits while its client has more than this unread, and
 * looks again after LIST_WAIT_MS. */
#define LIST_QUEUE_MAX (2 * LIST_FRAME_BYTES)
#define LIST_WAIT_MS 2

struct list_filter {
	const char *team, *user, *name;
	unsigned states;     /* 1 << task_state; 0: any */
};

#define ACTIVE_STATES (1u << TASK_PENDING | 1u << TASK_RUNNING | 1u << TASK_PREEMPTING)

static bool list_match(const struct task *t, const struct list_filter *f)
{
	if (f->states && !(f->states & 1u << t->state))
		return false;
	if (f->team && strcmp(t->team, f->team))
		return false;
	if (f->user && strcmp(t->user, f->user))
		return false;
	if (f->name && strcmp(t->name, f->name))
		return false;
	return true;
}

/* Adds one state word ("running", "active") to *states. */
static int list_state(const char *word, unsigned *states, struct state_err *e)
{
	int s;

	if (!strcasecmp(word, "active")) {
		*states |= ACTIVE_STATES;
		return 0;
	}
	s = state_task_state_parse(word);
	if (s < 0)
		return state_errf(e, HPQ_EINVAL, "unknown state '%.32s': use PENDING, RUNNING, "
				  "PREEMPTING, COMPLETED, FAILED, CANCELLED, TIMEOUT, "
				  "OUT_OF_MEMORY or active", word);
	*states |= 1u << s;
	return 0;
}

/*
 * The columns of the frame being built (ListRequest.columns): each row
 * goes straight in as it is taken, each text once; the arrays keep their
 * room from frame to frame.
 */
struct list_cols {
	Hpq__TaskColumns pb;         /* its n_ counts are set when it is sent */
	bool format;                 /* LIST_VIEW_FORMAT's columns too */
	size_t n, cap;               /* rows */
	size_t cap_strings, cap_node_names;
	struct strmap index;         /* text -> its index + 1 */
	struct {
		const char *s;       /* by address first: most texts are shared */
		uint32_t i;
	} recent[LIST_SEEN], last[LIST_TEXT_COLS];
};

/*
 * The reply being built. Rows are collected newest first, so that a limit
 * (or, without stream, the frame size) keeps the newest; each frame is
 * sent oldest first. With stream, a frame that is full is sent with `more`
 * and the next one starts empty, so that any number of tasks can be
 * listed; without it (a client that does not say it reads more than one
 * frame), what does not fit is left out and the reply says `truncated`.
 * With in_order, the client gets the list oldest first, frame after frame,
 * to print each as it comes: without a limit, the tasks are walked oldest
 * first (forward: rows in print order, frames sent as they fill, while
 * the client reads the ones before); with one, the frames are encoded as
 * they fill and held, then sent last built first (the write queue would
 * have held them all the same).
 */
struct list_out {
	struct conn *c;
	uint64_t req_id;
	bool stream;
	bool in_order;               /* ListRequest.in_order (with stream) */
	bool forward;                /* in_order without a limit: rows in print order */
	uint8_t **held;              /* in_order: the encoded frames, newest first */
	size_t *held_len, nheld;
	bool columns;                /* ListRequest.columns (with a view but FULL) */
	struct list_cols cols;       /* with columns: the frame's rows */
	uint32_t view;               /* LIST_VIEW_* */
	/* The row being taken, into the columns or packed into rows, */
	Hpq__Task task;
	Hpq__Resources res;
	/* without columns, the frame's rows: each Task packed as it is taken
	 * (ListReply.tasks), in one walk of its fields, with its exact size. */
	struct hpq_msg_values rows;
	size_t n, bytes;             /* the frame's rows, either way, and their bytes */
	uint64_t total;              /* rows in every frame so far */
	unsigned frames;             /* frames sent */
	protobuf_c_boolean truncated;
	char **own;                  /* strings to free once the frame is sent */
	size_t nown;
	uint32_t limit;
};

static size_t seen_slot(const char *s)
{
	return ((uintptr_t)s >> 4) & (LIST_SEEN - 1);
}

/* Are two short texts equal? Inline: rows' texts are a few bytes, where
 * strcmp's setup was half the cost of listing 100,000 tasks. */
static inline bool text_eq(const char *a, const char *b)
{
	if (a == b)
		return true;
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static void list_out_fill(struct list_out *o, const struct state *st, const struct task *t,
			  Hpq__Task *pb, Hpq__Resources *res, const struct rights_view *view)
{
	/* Initialised once (req_list), then row after row. */
	if (o->view == HPQ__LIST_VIEW__LIST_VIEW_TABLE) {
		task_table_row(st, t, pb, res);
		return;
	}
	if (o->view == HPQ__LIST_VIEW__LIST_VIEW_FORMAT) {
		task_format_row(st, t, pb, res);
		return;
	}
	task_to_pb(st, t, pb, res);
	task_redact(view, t, pb);
}

#define COL_HAS_EXIT_CODE HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HAS_EXIT_CODE
#define COL_HAS_ARRAY HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HAS_ARRAY
#define COL_HELD HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HELD

/* s's index in the frame's strings, added if new. */
static uint32_t list_cols_text_index(struct list_cols *c, const char *s)
{
	size_t h;
	uintptr_t k;

	h = seen_slot(s);
	if (c->recent[h].s == s)
		return c->recent[h].i;
	k = (uintptr_t)strmap_get(&c->index, s);
	if (k) {
		c->recent[h].s = s;
		c->recent[h].i = (uint32_t)(k - 1);
		return (uint32_t)(k - 1);
	}
	c->recent[h].s = s;
	c->recent[h].i = (uint32_t)c->pb.n_strings;
	if (c->pb.n_strings == c->cap_strings) {
		c->cap_strings = c->cap_strings ? 2 * c->cap_strings : 64;
		c->pb.strings = xreallocarray(c->pb.strings, c->cap_strings,
					      sizeof(*c->pb.strings));
	}
	c->pb.strings[c->pb.n_strings] = (char *)s;
	strmap_put(&c->index, s, (void *)(uintptr_t)(c->pb.n_strings + 1));
	return (uint32_t)c->pb.n_strings++;
}

/* The index of text s of column col in the frame's strings, added if new. */
static uint32_t list_cols_text(struct list_cols *c, unsigned col, const char *s)
{
	uint32_t i;

	if (!s)
		s = "";
	/* As cols_text_bound: the column's last text, then by address. */
	if (c->last[col].s && text_eq(c->last[col].s, s))
		return c->last[col].i;
	i = list_cols_text_index(c, s);
	c->last[col].s = s;
	c->last[col].i = i;
	return i;
}

#define COL_ROW_ARRAYS(X) X(id) X(name) X(team) X(user) X(class_) X(state) X(reason) \
	X(queue_position) X(nodes) X(gpus) X(node_counts) X(start_time) X(end_time) \
	X(exit_code) X(flags) X(array_id) X(array_index) X(array_spec)
#define COL_FORMAT_ARRAYS(X) X(pool) X(submit_time) X(time_limit_s) X(attempts) \
	X(preemptions) X(dependency) X(cpu_usec) X(peak_mem)

/* Room for one more row in every column, and for n more node names. */
static void list_cols_reserve(struct list_cols *c, size_t n)
{
	Hpq__TaskColumns *pb = &c->pb;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
#define GROW(f) pb->f = xreallocarray(pb->f, c->cap, sizeof(*pb->f));
		COL_ROW_ARRAYS(GROW)
		if (c->format) {
			COL_FORMAT_ARRAYS(GROW)
		}
#undef GROW
	}
	if (pb->n_node_names + n > c->cap_node_names) {
		c->cap_node_names = c->cap_node_names ? 2 * c->cap_node_names : 64;
		if (c->cap_node_names < pb->n_node_names + n)
			c->cap_node_names = pb->n_node_names + n;
		pb->node_names = xreallocarray(pb->node_names, c->cap_node_names,
					       sizeof(*pb->node_names));
	}
}

/*
 * Row t as the last of the frame's columns; returns at least what it adds
 * to the packed frame. Its texts are borrowed: from the tasks, which the
 * turn does not change, or from o->own, freed after the frame is sent.
 */
static size_t list_cols_add(struct list_cols *c, const Hpq__Task *t)
{
	Hpq__TaskColumns *pb = &c->pb;
	size_t i = c->n, first = pb->n_strings, bytes = LIST_COLS_ROW_BYTES;

	list_cols_reserve(c, t->n_node_names);
	pb->id[i] = t->id;
	pb->name[i] = list_cols_text(c, 0, t->name);
	pb->team[i] = list_cols_text(c, 1, t->team);
	pb->user[i] = list_cols_text(c, 2, t->user);
	pb->class_[i] = list_cols_text(c, 3, t->class_);
	pb->state[i] = list_cols_text(c, 4, t->state);
	pb->reason[i] = list_cols_text(c, 5, t->reason);
	pb->queue_position[i] = t->queue_position;
	pb->nodes[i] = t->nodes;
	pb->gpus[i] = t->per_node ? t->per_node->gpus : 0;
	pb->node_counts[i] = (uint32_t)t->n_node_names;
	for (size_t j = 0; j < t->n_node_names; j++)
		pb->node_names[pb->n_node_names++] = list_cols_text(c, 7, t->node_names[j]);
	pb->start_time[i] = t->start_time;
	pb->end_time[i] = t->end_time;
	pb->exit_code[i] = t->exit_code;
	pb->flags[i] = (t->has_exit_code ? COL_HAS_EXIT_CODE : 0) |
		       (t->has_array ? COL_HAS_ARRAY : 0) | (t->held ? COL_HELD : 0);
	pb->array_id[i] = t->array_id;
	pb->array_index[i] = t->array_index;
	pb->array_spec[i] = list_cols_text(c, 6, t->array_spec);
	if (c->format) {
		pb->pool[i] = list_cols_text(c, 8, t->pool);
		pb->submit_time[i] = t->submit_time;
		pb->time_limit_s[i] = t->time_limit_s;
		pb->attempts[i] = t->attempts;
		pb->preemptions[i] = t->preemptions;
		pb->dependency[i] = list_cols_text(c, 9, t->dependency);
		pb->cpu_usec[i] = t->cpu_usec;
		pb->peak_mem[i] = t->peak_mem;
		bytes += LIST_COLS_FORMAT_BYTES;
	}
	c->n++;
	bytes += LIST_COLS_NODE_BYTES * t->n_node_names;
	for (size_t k = first; k < pb->n_strings; k++)
		bytes += strlen(pb->strings[k]) + LIST_COLS_TEXT_BYTES;
	return bytes;
}

/* Takes back the last row, which added the texts from index strings on
 * and the node names from node_names on. */
static void list_cols_drop_last(struct list_cols *c, size_t strings, size_t node_names)
{
	for (size_t k = strings; k < c->pb.n_strings; k++)
		strmap_del(&c->index, c->pb.strings[k]);
	c->pb.n_strings = strings;
	c->pb.n_node_names = node_names;
	c->n--;
	/* They may name the texts just taken back. */
	memset(c->recent, 0, sizeof(c->recent));
	memset(c->last, 0, sizeof(c->last));
}

/* Collected newest first, the rows are sent oldest first: reversed, and
 * so are the node names, row by row. */
static void list_cols_reverse(struct list_cols *c)
{
	Hpq__TaskColumns *pb = &c->pb;
	size_t n = c->n, total = pb->n_node_names, k = 0;

#define SWAP(v, i, j) { __typeof__(*(v)) x = (v)[i]; (v)[i] = (v)[j]; (v)[j] = x; }
	for (size_t i = 0; i < n / 2; i++) {
#define SWAP_ROWS(f) SWAP(pb->f, i, n - 1 - i)
		COL_ROW_ARRAYS(SWAP_ROWS)
		if (c->format) {
			COL_FORMAT_ARRAYS(SWAP_ROWS)
		}
#undef SWAP_ROWS
	}
	for (size_t i = 0; i < total / 2; i++)
		SWAP(pb->node_names, i, total - 1 - i)
	for (size_t r = 0; r < n; r++) {
		size_t m = pb->node_counts[r];

		for (size_t i = 0; i < m / 2; i++)
			SWAP(pb->node_names, k + i, k + m - 1 - i)
		k += m;
	}
#undef SWAP
}

/* The frame's columns, ready to pack. */
static Hpq__TaskColumns *list_cols_frame(struct list_cols *c, bool forward)
{
	if (!forward)
		list_cols_reverse(c);
#define SETN(f) c->pb.n_##f = c->n;
	COL_ROW_ARRAYS(SETN)
	if (c->format) {
		COL_FORMAT_ARRAYS(SETN)
	}
#undef SETN
	return &c->pb;
}

/* Empty for the next frame, keeping the columns' room (the index of
 * texts starts again: a frame has few). */
static void list_cols_clear(struct list_cols *c)
{
	c->n = 0;
	c->pb.n_strings = 0;
	c->pb.n_node_names = 0;
	strmap_release(&c->index);
	memset(c->recent, 0, sizeof(c->recent));
	memset(c->last, 0, sizeof(c->last));
}

static void list_cols_release(struct list_cols *c)
{
	Hpq__TaskColumns *pb = &c->pb;

	free(pb->strings);
	free(pb->node_names);
#define FREE(f) free(pb->f);
	COL_ROW_ARRAYS(FREE)
	COL_FORMAT_ARRAYS(FREE)
#undef FREE
	strmap_release(&c->index);
}

/* Sends the frame's rows (the first n: a row taken since may open the
 * next frame) as one ListReply, oldest first. */
static void list_out_send(struct list_out *o, bool more)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ListReply rep = HPQ__LIST_REPLY__INIT;
	uint8_t *frame;
	size_t len;

	if (o->columns)
		rep.columns = list_cols_frame(&o->cols, o->forward);
	rep.truncated = o->truncated;
	/* Held (in_order with a limit): the first frame built is sent last. */
	rep.more = o->in_order && !o->forward ? o->frames > 0 : more;
	rep.in_order = o->in_order;
	env.id = o->req_id;
	env.body_case = HPQ__ENVELOPE__BODY_LIST_REPLY;
	env.list_reply = &rep;
	/* Collected newest first, the rows go out oldest first. */
	frame = o->columns ? hpq_msg_encode(&env, &len)
			   : hpq_msg_encode_values(&env, &o->rows, o->n, !o->forward, &len);
	if (o->in_order && !o->forward) {
		o->held = xreallocarray(o->held, o->nheld + 1, sizeof(*o->held));
		o->held_len = xreallocarray(o->held_len, o->nheld + 1, sizeof(*o->held_len));
		o->held[o->nheld] = frame;
		o->held_len[o->nheld] = len;
		o->nheld++;
		o->frames++;
	} else if (o->frames++) {
		/* A long list is sent whole, past the write queue's limit. */
		server_send_frame_continued(o->c, frame, len);
	} else {
		server_send_frame(o->c, frame, len);
	}
	if (o->columns)
		list_cols_clear(&o->cols);
	else
		hpq_msg_values_drop_first(&o->rows, o->n);
	for (size_t i = 0; i < o->nown; i++)
		free(o->own[i]);
	o->nown = 0;
	o->n = 0;
	o->bytes = 0;
}

/* Counts a row of sz bytes into the frame, unless it would pass the
 * frame's budget: then the list ends there, truncated. */
static bool list_out_count(struct list_out *o, size_t sz)
{
	if (o->bytes + sz > LIST_BUDGET) {
		o->truncated = true;
		return false;
	}
	o->bytes += sz;
	o->n++;
	o->total++;
	return true;
}

/*
 * Takes the row just filled (o->task) into the frame's columns, if the
 * frame allows it. With stream, a frame that is full first goes out and
 * the row opens the next one.
 */
static bool list_out_take_cols(struct list_out *o)
{
	struct list_cols *c = &o->cols;
	size_t strings, node_names, sz;

	if (o->stream && o->n && (o->bytes + LIST_TURN_SLACK > LIST_FRAME_BYTES ||
				  o->n >= LIST_FRAME_ROWS))
		list_out_send(o, true);
	strings = c->pb.n_strings;
	node_names = c->pb.n_node_names;
	sz = list_cols_add(c, &o->task);
	if (!list_out_count(o, sz)) {
		list_cols_drop_last(c, strings, node_names);
		return false;
	}
	return true;
}

/*
 * Takes the row just filled (o->task), packed, if the limit and (without
 * stream) the frame allow it. With stream, a frame that is full goes out
 * first and the row opens the next one.
 */
static bool list_out_take(struct list_out *o)
{
	size_t sz;

	if (o->columns)
		return list_out_take_cols(o);
	sz = hpq_msg_values_add(&o->rows, &o->task.base);
	if (o->stream && o->n && (o->bytes + sz > LIST_FRAME_BYTES || o->n >= LIST_FRAME_ROWS))
		list_out_send(o, true);
	if (!list_out_count(o, sz)) {
		hpq_msg_values_drop_last(&o->rows);
		return false;
	}
	return true;
}

static bool list_out_full(const struct list_out *o)
{
	return (o->limit && o->total >= o->limit) || o->truncated;
}

/* How a task's step of the walk ended. */
enum list_step {
	STEP_ON,        /* its rows are in: on to the next task */
	STEP_PAUSED,    /* the turn ended within its array's rows */
	STEP_FULL,      /* the limit or the frame budget is reached: the list is done */
};

/* A list being built, from its request until its last frame is sent. */
struct list_run {
	/* The next turn: at the loop's next iteration (soon), or after a wait
	 * for the client to read (wait). Made when a list first needs one. */
	uv_idle_t soon;
	uv_timer_t wait;
	bool has_handles;
	unsigned open_handles;
	struct hpqd *d;
	struct list_out o;
	struct list_filter f;        /* its texts are the run's own copies */
	uint64_t array_id;           /* ListRequest.array_id: that array's tasks only */
	bool expand;                 /* ListRequest.expand_arrays */
	bool whole;                  /* built in one go: not streamed, or no socket */
	uint64_t end;                /* only tasks below this id: st->next_id at the start */
	/* Where the walk goes on: the task with this id, or forward the next
	 * above it, else the next below it; within the array that task heads,
	 * at its pending index after (forward: before) next_index. */
	uint64_t next;
	bool in_array;
	uint32_t next_index;
	unsigned turn_frames;        /* o.frames when this turn began */
	struct queue_index *qi;      /* queue positions, made at the first pending row */
	const struct rights_view *view; /* this turn's */
};

/* Has this turn built a frame's worth? Never, for a list built at once. */
static bool turn_over(const struct list_run *r)
{
	return !r->whole && (r->o.frames != r->turn_frames ||
			     r->o.bytes + LIST_TURN_SLACK > LIST_FRAME_BYTES ||
			     r->o.n >= LIST_FRAME_ROWS);
}

/*
 * The row of what an array has not materialized yet: one row for all of
 * them ("5-999%50"), or with expand_arrays one per index, in the list
 * being built (o), within its limit and frame budget.
 */
static bool list_out_push(struct list_out *o, const struct state *st, const struct array *a,
			  uint32_t idx, char *spec, const char *reason,
			  const struct rights_view *view)
{
	Hpq__Task *pb;

	if (list_out_full(o))
		return false;
	pb = &o->task;
	list_out_fill(o, st, a->tmpl, pb, &o->res, view);
	pb->id = a->id;
	pb->has_array = true;
	pb->array_id = a->id;
	pb->array_index = idx;
	pb->array_spec = spec ? spec : (char *)"";
	pb->state = (char *)"PENDING";
	pb->reason = (char *)reason;
	pb->held = a->held;
	return list_out_take(o);
}

struct expand_arg {
	struct list_run *r;
	const struct array *a;
	const char *reason;
	enum list_step step;
};

static bool expand_one(void *arg, uint32_t idx)
{
	struct expand_arg *x = arg;
	struct list_run *r = x->r;

	if (!list_out_push(&r->o, &r->d->state, x->a, idx, NULL, x->reason, r->view)) {
		x->step = STEP_FULL;
		return false;
	}
	if (!turn_over(r))
		return true;
	/* The rest at the next turn, unless this was the last index. */
	if (r->o.forward ? idx > 0 : idx < UINT32_MAX) {
		x->step = STEP_PAUSED;
		r->in_array = true;
		r->next_index = idx;
	}
	return false;
}

/* The rows of the pending indices of array a (NULL: none), from where the
 * last turn paused if it did. */
static enum list_step list_array_rows(struct list_run *r, const struct array *a)
{
	const struct state *st = &r->d->state;
	struct expand_arg x = { r, a, NULL, STEP_ON };
	bool resume = r->in_array;
	char *spec;

	r->in_array = false;
	if (!a || !a->tmpl || array_set_empty(&a->pending) || !list_match(a->tmpl, &r->f))
		return STEP_ON;
	x.reason = array_pending_reason(st, a);
	if (r->expand) {
		/* Collected newest first, as the tasks, each frame reversed when
		 * sent, these read from the highest index down; forward, they
		 * are collected as printed. */
		if (r->o.forward)
			array_set_each_desc(&a->pending, resume ? r->next_index - 1 : UINT32_MAX,
					    expand_one, &x);
		else
			array_set_each(&a->pending, resume ? r->next_index + 1 : 0, expand_one, &x);
		return x.step;
	}
	spec = array_pending_spec(a);
	if (!list_out_push(&r->o, st, a, array_set_min(&a->pending), spec, x.reason, r->view)) {
		free(spec);
		return STEP_FULL;
	}
	r->o.own = xreallocarray(r->o.own, r->o.nown + 1, sizeof(*r->o.own));
	r->o.own[r->o.nown++] = spec;
	return STEP_ON;
}

/* Task t's own row; false when the list is full. */
static bool list_task_row(struct list_run *r, const struct task *t)
{
	const struct state *st = &r->d->state;
	Hpq__Task *pb;

	if (list_out_full(&r->o))
		return false;
	pb = &r->o.task;
	list_out_fill(&r->o, st, t, pb, &r->o.res, r->view);
	if (queue_has(t)) {
		if (!r->qi)
			r->qi = queue_index_new(st);
		pb->queue_position = queue_index_get(r->qi, t->st.id);
	}
	return list_out_take(&r->o);
}

/*
 * Task t's rows: its own and, when it heads an array, its array's pending
 * indices (before its own walking back, after it forward). A step the
 * last turn paused in its array's rows goes on from there.
 */
static enum list_step list_step(struct list_run *r, const struct task *t)
{
	bool head = t->array_id && t->array_id == t->st.id;
	bool resumed = r->in_array;
	enum list_step s;

	if (r->array_id && t->array_id != r->array_id)
		return STEP_ON;
	if (head && !r->o.forward &&
	    (s = list_array_rows(r, array_find(&r->d->state, t->st.id))) != STEP_ON)
		return s;
	/* Forward, a paused step's own row went out before its array's. */
	if (!(resumed && r->o.forward) && list_match(t, &r->f) && !list_task_row(r, t))
		return STEP_FULL;
	if (head && r->o.forward &&
	    (s = list_array_rows(r, array_find(&r->d->state, t->st.id))) != STEP_ON)
		return s;
	return list_out_full(&r->o) ? STEP_FULL : STEP_ON;
}

/*
 * The array at st->arrays[q] if its first task, whose id it has, has left
 * memory (it ended: state_tasks_evict) while indices of it still wait:
 * the walk meets its rows where that task's were, or they would be lost.
 */
static const struct array *walk_orphan(const struct state *st, size_t q)
{
	const struct array *a = st->arrays[q];

	if (!a->tmpl || array_set_empty(&a->pending) || state_task_find(st, a->id))
		return NULL;
	return a;
}

/* The first array walk_orphan finds from arrays[*q] on (forward), or down
 * from arrays[*q - 1], that comes before task t (NULL: any, below end);
 * NULL if none. *q is left at it, or where the search stopped. */
static const struct array *walk_next_orphan(const struct list_run *r, size_t *q,
					    const struct task *t)
{
	const struct state *st = &r->d->state;
	bool fwd = r->o.forward;

	while (fwd ? *q < st->narrays && st->arrays[*q]->id < r->end &&
		     (!t || st->arrays[*q]->id < t->st.id)
		   : *q > 0 && (!t || st->arrays[*q - 1]->id > t->st.id)) {
		const struct array *a = walk_orphan(st, fwd ? *q : *q - 1);

		if (a)
			return a;
		*q = fwd ? *q + 1 : *q - 1;
	}
	return NULL;
}

/* The task k ahead of the walk at p (list_walk), if there is one. */
static const struct task *walk_ahead(const struct state *st, size_t p, bool fwd, size_t k)
{
	if (fwd)
		return p + k < st->ntasks ? st->tasks[p + k] : NULL;
	return p >= k ? st->tasks[p - k] : NULL;
}

/* The array of id's rows alone, its first task gone (walk_orphan). */
static enum list_step list_orphan_step(struct list_run *r, const struct array *a)
{
	enum list_step s;

	if (r->array_id && a->id != r->array_id)
		return STEP_ON;
	if ((s = list_array_rows(r, a)) != STEP_ON)
		return s;
	return list_out_full(&r->o) ? STEP_FULL : STEP_ON;
}

/* One turn of the walk: true once the list is complete. */
static bool list_walk(struct list_run *r)
{
	const struct state *st = &r->d->state;
	bool fwd = r->o.forward;
	/* fwd: the next task is tasks[p]; else tasks[p - 1]. The same for
	 * the arrays whose first task has gone, from arrays[q]. */
	size_t p = state_task_lower_bound(st, fwd ? r->next : r->next + 1);
	size_t q = arrays_lower_bound(st, fwd ? r->next : r->next + 1);
	size_t k = fwd ? q : q - 1;

	r->turn_frames = r->o.frames;
	/* The task whose array's rows paused has left (and its array with
	 * it, if the array has no rows left): go on past it. */
	if (r->in_array && !(fwd ? p < st->ntasks && st->tasks[p]->st.id == r->next
				 : p > 0 && st->tasks[p - 1]->st.id == r->next) &&
	    !((fwd ? q < st->narrays : q > 0) && st->arrays[k]->id == r->next &&
	      walk_orphan(st, k)))
		r->in_array = false;
	for (;;) {
		const struct task *t = NULL, *ahead;
		const struct array *orphan;
		enum list_step s;
		uint64_t id;

		if (fwd ? p < st->ntasks && st->tasks[p]->st.id < r->end : p > 0)
			t = st->tasks[fwd ? p : p - 1];
		if ((orphan = walk_next_orphan(r, &q, t))) {
			id = orphan->id;
			s = list_orphan_step(r, orphan);
			q = fwd ? q + 1 : q - 1;
		} else if (t) {
			p = fwd ? p + 1 : p - 1;
			if ((ahead = walk_ahead(st, p, fwd, TASK_PREFETCH_AHEAD)))
				task_prefetch(ahead);
			if ((ahead = walk_ahead(st, p, fwd, TASK_PREFETCH_TEXTS)))
				task_prefetch_texts(ahead);
			id = t->st.id;
			s = list_step(r, t);
		} else {
			return true;
		}

		switch (s) {
		case STEP_FULL:
			return true;
		case STEP_PAUSED:
			r->next = id;
			return false;
		case STEP_ON:
			break;
		}
		r->next = fwd ? id + 1 : id - 1;
		if (!turn_over(r))
			continue;
		if (fwd ? p < st->ntasks && st->tasks[p]->st.id < r->end : p > 0)
			return false;
		return !walk_next_orphan(r, &q, NULL);
	}
}

static void list_run_free(struct list_run *r)
{
	for (size_t i = 0; i < r->o.nheld; i++)   /* a client gone before they were sent */
		free(r->o.held[i]);
	free(r->o.held);
	free(r->o.held_len);
	list_cols_release(&r->o.cols);
	hpq_msg_values_release(&r->o.rows);
	for (size_t i = 0; i < r->o.nown; i++)
		free(r->o.own[i]);
	free(r->o.own);
	queue_index_free(r->qi);
	free((char *)r->f.team);
	free((char *)r->f.user);
	free((char *)r->f.name);
	server_answered(r->o.c);
	free(r);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct list_run *r = h->data;

	if (--r->open_handles == 0)
		list_run_free(r);
}

static void list_run_end(struct list_run *r)
{
	if (!r->has_handles) {
		list_run_free(r);
		return;
	}
	r->open_handles = 2;
	uv_close((uv_handle_t *)&r->soon, on_handle_closed);
	uv_close((uv_handle_t *)&r->wait, on_handle_closed);
}

/* The last frame, then (in_order with a limit) the held ones, oldest first. */
static void list_finish(struct list_run *r)
{
	struct list_out *o = &r->o;

	list_out_send(o, false);
	if (!r->whole)
		log_debug("%s: list (request %llu) built: %llu rows in %u frames", o->c->peer,
			  (unsigned long long)o->req_id, (unsigned long long)o->total,
			  o->frames);
	for (size_t i = o->nheld; i-- > 0;)
		if (i == o->nheld - 1)
			server_send_frame(o->c, o->held[i], o->held_len[i]);
		else
			server_send_frame_continued(o->c, o->held[i], o->held_len[i]);
	o->nheld = 0;
}

static void on_soon(uv_idle_t *h);
static void on_wait(uv_timer_t *h);

/*
 * The next turn: after ms, or with 0 at the loop's next iteration, once
 * it has polled for everything else. (Not a timer of 0 ms: libuv before
 * 1.45 runs one restarted from its own callback again at once.)
 */
static void list_later(struct list_run *r, uint64_t ms)
{
	if (!r->has_handles) {
		uv_idle_init(r->d->loop, &r->soon);
		uv_timer_init(r->d->loop, &r->wait);
		r->soon.data = r->wait.data = r;
		r->has_handles = true;
	}
	if (ms)
		uv_timer_start(&r->wait, on_wait, ms, 0);
	else
		uv_idle_start(&r->soon, on_soon);
}

static void list_turn(struct list_run *r)
{
	struct rights_view view;
	bool done;

	if (r->has_handles)
		uv_idle_stop(&r->soon);
	if (r->o.c->dead) {
		list_run_end(r);
		return;
	}
	/* A client that does not read its frames is not sent more meanwhile;
	 * one that never does meets [limits] write_timeout. */
	if (!r->whole && server_queued(r->o.c) > LIST_QUEUE_MAX) {
		list_later(r, LIST_WAIT_MS);
		return;
	}
	/* The reader's rights, this turn's: each task's private data is one check. */
	rights_view_init(&view, &r->d->state, &r->o.c->actor, r->d->cfg.private_data);
	r->view = &view;
	done = list_walk(r);
	r->view = NULL;
	rights_view_release(&view);
	if (done) {
		list_finish(r);
		list_run_end(r);
		return;
	}
	if (r->o.n)
		list_out_send(&r->o, true);
	list_later(r, 0);
}

static void on_soon(uv_idle_t *h)
{
	list_turn(h->data);
}

static void on_wait(uv_timer_t *h)
{
	list_turn(h->data);
}

int req_list(struct req *q)
{
	const Hpq__ListRequest *m = q->env->list;
	struct state *st = &q->d->state;
	struct list_filter f = { NULL, NULL, NULL, 0 };
	struct list_run *r;

	if (m->view > HPQ__LIST_VIEW__LIST_VIEW_FORMAT)
		return state_errf(q->e, HPQ_EINVAL, "unknown list view %u: this hpqd knows "
				  "0 (every field), 1 (the table's) and 2 (the table's and "
				  "every --format column's)", m->view);
	if (*m->state && list_state(m->state, &f.states, q->e) < 0)
		return HPQ_EINVAL;
	if (*m->state)               /* protocol 1's field: served, and recorded */
		deprecation_note(q->d->deprecations, DEPRECATED_LIST_STATE, q->c->user,
				 hpq_now_ms());
	for (size_t i = 0; i < m->n_states; i++)
		if (list_state(m->states[i], &f.states, q->e) < 0)
			return HPQ_EINVAL;

	r = xcalloc(1, sizeof(*r));
	r->d = q->d;
	r->o = (struct list_out){ .c = q->c, .req_id = q->id, .stream = m->stream,
				  .view = m->view, .limit = m->limit,
				  .in_order = m->stream && m->in_order };
	r->o.columns = m->columns && m->view != HPQ__LIST_VIEW__LIST_VIEW_FULL;
	r->o.cols.format = m->view == HPQ__LIST_VIEW__LIST_VIEW_FORMAT;
	r->o.rows.field = protobuf_c_message_descriptor_get_field_by_name(
		&hpq__list_reply__descriptor, "tasks")->id;
	hpq__task_columns__init(&r->o.cols.pb);
	hpq__task__init(&r->o.task);
	hpq__resources__init(&r->o.res);
	/* Newest first, so that a limit (or the frame size) keeps the newest;
	 * forward, oldest first, an array's pending rest after its first task. */
	r->o.forward = r->o.in_order && !r->o.limit;
	r->f = f;
	r->f.team = *m->team ? xstrdup(m->team) : NULL;
	r->f.user = *m->user ? xstrdup(m->user) : NULL;
	r->f.name = *m->name ? xstrdup(m->name) : NULL;
	r->array_id = m->array_id;
	r->expand = m->expand_arrays;
	r->whole = !r->o.stream || q->c->pseudo;
	r->end = st->next_id;
	r->next = r->o.forward ? 0 : st->next_id ? st->next_id - 1 : 0;
	server_awaits(q->c);
	list_turn(r);
	return 0;
}
