/*
 * req-task.c: the task requests: submit, list, show, cancel and checkpoint
 * (request.h).
 *
 * Reads answer at once from memory, except `show`, whose checkpoints and
 * events live only in the database: it queues a read behind everything
 * recorded so far and answers from the storage thread's result. Changes
 * answer after their commit.
 *
 * Replies point into the state's own strings instead of copying them;
 * that is safe because they are encoded before the handler returns.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "array.h"
#include "clock.h"
#include "context.h"
#include "deprecation.h"
#include "error.h"
#include "parse.h"
#include "msg.h"
#include "queue.h"
#include "request.h"
#include "rights.h"
#include "select.h"
#include "server.h"
#include "store.h"
#include "strmap.h"
#include "xalloc.h"

#define MAX_CANCEL_IDS 10000
/* Room left in a frame for the envelope around a list of tasks. */
#define LIST_BUDGET (HPQ_FRAME_MAX - 65536)
/* A streamed list's frames: small enough that the client decodes one
 * while the next is on its way. */
#define LIST_FRAME_BYTES (1u << 20)
/* Slots of the caches of texts by address that columns keep per frame. */
#define LIST_SEEN 256
/* The columns of texts: name, team, user, class, state, reason, array_spec
 * and node names. */
#define LIST_TEXT_COLS 8

/* Fills pb from t; res is pb's per_node storage. Strings are borrowed. */
static void task_to_pb(const struct state *st, const struct task *t, Hpq__Task *pb,
		       Hpq__Resources *res)
{
	hpq__task__init(pb);
	hpq__resources__init(res);
	pb->id = t->st.id;
	pb->name = t->name;
	pb->team = t->team;
	pb->user = t->user;
	pb->uid = t->uid;
	pb->gid = t->gid;
	pb->class_ = t->cls;
	pb->pool = t->pool;
	pb->state = (char *)state_task_state(t->state);
	pb->reason = (char *)state_task_reason(st, t);
	pb->nodes = t->st.nnodes;
	hpq_res_to_pb(t->st.per_node, res);
	pb->per_node = res;
	pb->n_node_names = t->n_node_names;
	pb->node_names = t->node_names;
	pb->attempts = t->attempts;
	pb->submit_time = t->submit_ms;
	pb->start_time = t->start_ms;
	pb->end_time = t->end_ms;
	pb->exit_code = t->exit_code;
	pb->has_exit_code = t->has_exit_code;
	pb->time_limit_s = t->time_limit_s;
	pb->checkpoint_dir = t->checkpoint_dir;
	pb->n_argv = t->argc;
	pb->argv = t->argv;
	pb->cwd = t->cwd;
	pb->preempt_signal = t->preempt_signal;
	pb->grace_s = state_task_grace(st, t);
	pb->has_array = t->array_id != 0;
	pb->array_id = t->array_id;
	pb->array_index = t->array_index;
	pb->dependency = t->dependency ? t->dependency : (char *)"";
	pb->kill_on_invalid_dep = t->kill_on_invalid_dep;
	pb->held = t->held;
	pb->output = t->output;
	pb->error = t->error;
	pb->submit_dir = t->submit_dir;
	pb->has_script = t->has_script;
	pb->peak_mem = t->peak_mem;
	pb->cpu_usec = t->cpu_usec;
	pb->preemptions = t->preemptions;
	pb->recipe = t->recipe ? t->recipe : (char *)"";
	pb->recipe_version = t->recipe_version ? t->recipe_version : (char *)"";
	pb->n_recipe_params = t->n_recipe_params;
	pb->recipe_params = t->recipe_params;
	pb->plan = t->plan ? t->plan : (char *)"";
}

/* Withholds t's private data from a reader who may not see it (rights.h). */
static void task_redact(const struct rights_view *v, const struct task *t, Hpq__Task *pb)
{
	if (rights_view_task(v, t))
		return;
	pb->n_argv = 0;
	pb->argv = NULL;
	pb->cwd = (char *)"";
	pb->output = (char *)"";
	pb->error = (char *)"";
	pb->submit_dir = (char *)"";
	pb->script.len = 0;
	pb->script.data = NULL;
	pb->redacted = true;
}

int req_submit(struct req *q)
{
	const Hpq__SubmitRequest *m = q->env->submit;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__SubmitReply rep = HPQ__SUBMIT_REPLY__INIT;
	struct task *t;
	int r;

	/* A task runs as its submitter: root only where the cluster allows it. */
	if (q->c->actor.uid == 0 && !q->d->cfg.allow_root_tasks)
		return state_errf(q->e, HPQ_EPERM, "tasks may not run as root on this cluster: "
				  "submit as an ordinary user (or set [auth] allow_root_tasks "
				  "= yes in hpqd.conf)");
	r = state_task_submit(&q->d->state, m->spec, &q->c->actor, &t, q->e);
	if (r < 0)
		return r;
	rep.id = t->st.id;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_SUBMIT_REPLY;
	env.submit_reply = &rep;
	server_reply_after_commit(q->c, &env);
	return 0;
}

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
	bool columns;                /* ListRequest.columns (with LIST_VIEW_TABLE) */
	uint32_t view;               /* LIST_VIEW_* */
	Hpq__Task *tasks;
	Hpq__Resources *res;
	Hpq__Task **ptrs;
	size_t n, cap, bytes;
	uint64_t total;              /* rows in every frame so far */
	unsigned frames;             /* frames sent */
	protobuf_c_boolean truncated;
	char **own;                  /* strings to free once the frame is sent */
	size_t nown;
	uint32_t limit;
	/* With columns: texts already counted in this frame's bytes, by
	 * address (most are the state's shared strings). */
	const char *seen[LIST_SEEN];
	const char *last[LIST_TEXT_COLS]; /* each text column's last text */
};

/* Fills pb with only what hpq list's default table shows (LIST_VIEW_TABLE):
 * no argv, environment or paths, so nothing is private to redact. */
static void task_to_pb_table(const struct state *st, const struct task *t, Hpq__Task *pb,
			     Hpq__Resources *res)
{
	hpq__task__init(pb);
	hpq__resources__init(res);
	pb->id = t->st.id;
	pb->name = t->name;
	pb->team = t->team;
	pb->user = t->user;
	pb->class_ = t->cls;
	pb->state = (char *)state_task_state(t->state);
	pb->reason = (char *)state_task_reason(st, t);
	pb->nodes = t->st.nnodes;
	res->gpus = t->st.per_node.gpus;
	pb->per_node = res;
	pb->n_node_names = t->n_node_names;
	pb->node_names = t->node_names;
	pb->start_time = t->start_ms;
	pb->end_time = t->end_ms;
	pb->exit_code = t->exit_code;
	pb->has_exit_code = t->has_exit_code;
	pb->has_array = t->array_id != 0;
	pb->array_id = t->array_id;
	pb->array_index = t->array_index;
	pb->held = t->held;
}

/*
 * At least the packed size of a LIST_VIEW_TABLE row, without protobuf-c's
 * walk over every field of Task (much of a long list's cost): each
 * string at most its length, a tag and a 5-byte length; the numbers and
 * per_node at most 160 bytes together.
 */
static size_t table_row_bound(const Hpq__Task *pb)
{
	const char *s[] = { pb->name, pb->team, pb->user, pb->class_, pb->state, pb->reason,
			    pb->array_spec };
	size_t sz = 160;

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		sz += (s[i] ? strlen(s[i]) : 0) + 8;
	for (size_t i = 0; i < pb->n_node_names; i++)
		sz += strlen(pb->node_names[i]) + 8;
	return sz;
}

/*
 * About the packed size of a full row (LIST_VIEW_FULL), for cutting a
 * stream into frames (a frame may hold four times LIST_FRAME_BYTES, so a
 * field added to Task and not counted here still fits): each text and
 * each string of a list at most its length, a tag and a 5-byte length;
 * the numbers and per_node at most 512 bytes together. protobuf-c's own
 * count walks every field, and packing the frame walks them twice more.
 * A row with checkpoints, events or a script (none that task_to_pb
 * fills) is counted by protobuf-c.
 */
static size_t full_row_bound(const Hpq__Task *pb)
{
	const char *s[] = { pb->name, pb->team, pb->user, pb->class_, pb->pool, pb->state,
			    pb->reason, pb->checkpoint_dir, pb->cwd, pb->dependency, pb->output,
			    pb->error, pb->submit_dir, pb->recipe, pb->recipe_version,
			    pb->array_spec };
	size_t sz = 512;

	if (pb->n_checkpoints || pb->n_events || pb->script.len)
		return hpq__task__get_packed_size(pb) + 8;
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		sz += (s[i] ? strlen(s[i]) : 0) + 8;
	for (size_t i = 0; i < pb->n_node_names; i++)
		sz += strlen(pb->node_names[i]) + 8;
	for (size_t i = 0; i < pb->n_argv; i++)
		sz += strlen(pb->argv[i]) + 8;
	for (size_t i = 0; i < pb->n_recipe_params; i++)
		sz += strlen(pb->recipe_params[i]) + 8;
	return sz;
}

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

/* A text's share of a columns row's bound: its index, and the text itself
 * unless this frame has counted it already. */
static size_t cols_text_bound(struct list_out *o, unsigned col, const char *s)
{
	size_t h;

	if (!s)
		return 6;
	/* Neighbouring rows often have equal texts at other addresses (each
	 * task's own name): compared as text, no hashing. */
	if (o->last[col] && text_eq(o->last[col], s))
		return 6;
	o->last[col] = s;
	h = seen_slot(s);
	if (o->seen[h] == s)
		return 6;
	o->seen[h] = s;
	return strlen(s) + 8 + 6;
}

/* At least a row's share of a frame of columns: its numbers (at most 10
 * bytes each) and its texts' indices, and each text the frame has not
 * counted yet; no strlen of the texts the rows share. */
static size_t cols_row_bound(struct list_out *o, const Hpq__Task *pb)
{
	const char *s[] = { pb->name, pb->team, pb->user, pb->class_, pb->state, pb->reason,
			    pb->array_spec };
	size_t sz = 128;

	for (unsigned i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		sz += cols_text_bound(o, i, s[i]);
	for (size_t i = 0; i < pb->n_node_names; i++)
		sz += cols_text_bound(o, LIST_TEXT_COLS - 1, pb->node_names[i]);
	return sz;
}

/* The next row's slot, growing the frame's arrays. */
static Hpq__Task *list_out_slot(struct list_out *o, Hpq__Resources **res)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 64;
		o->tasks = xreallocarray(o->tasks, o->cap, sizeof(*o->tasks));
		o->res = xreallocarray(o->res, o->cap, sizeof(*o->res));
		o->ptrs = xreallocarray(o->ptrs, o->cap, sizeof(*o->ptrs));
	}
	*res = &o->res[o->n];
	return &o->tasks[o->n];
}

static void list_out_fill(struct list_out *o, const struct state *st, const struct task *t,
			  Hpq__Task *pb, Hpq__Resources *res, const struct rights_view *view)
{
	if (o->view == HPQ__LIST_VIEW__LIST_VIEW_TABLE) {
		task_to_pb_table(st, t, pb, res);
		return;
	}
	task_to_pb(st, t, pb, res);
	task_redact(view, t, pb);
}

#define COL_HAS_EXIT_CODE HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HAS_EXIT_CODE
#define COL_HAS_ARRAY HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HAS_ARRAY
#define COL_HELD HPQ__TASK_COLUMN_FLAG__TASK_COLUMN_HELD

/* The columns of a frame being built: its texts, each once. */
struct list_cols {
	Hpq__TaskColumns pb;
	struct strmap index;         /* text -> its index + 1 */
	size_t cap_strings;
	struct {
		const char *s;       /* by address first: most texts are shared */
		uint32_t i;
	} recent[LIST_SEEN], last[LIST_TEXT_COLS];
};

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

/* The rows of o (newest first) as columns, oldest first, into c: the
 * texts are borrowed from the rows, which outlive the frame's sending. */
static void list_cols_fill(struct list_cols *c, const struct list_out *o)
{
	Hpq__TaskColumns *pb = &c->pb;
	size_t n = o->n, nn = 0, k = 0;

	hpq__task_columns__init(pb);
	for (size_t i = 0; i < n; i++)
		nn += o->tasks[i].n_node_names;
#define COL(f) (pb->n_##f = n, pb->f = xcalloc(n ? n : 1, sizeof(*pb->f)))
	COL(id);
	COL(name);
	COL(team);
	COL(user);
	COL(class_);
	COL(state);
	COL(reason);
	COL(queue_position);
	COL(nodes);
	COL(gpus);
	COL(node_counts);
	COL(start_time);
	COL(end_time);
	COL(exit_code);
	COL(flags);
	COL(array_id);
	COL(array_index);
	COL(array_spec);
#undef COL
	pb->n_node_names = nn;
	pb->node_names = xcalloc(nn ? nn : 1, sizeof(*pb->node_names));
	for (size_t i = 0; i < n; i++) {
		const Hpq__Task *t = &o->tasks[o->forward ? i : n - 1 - i];

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
			pb->node_names[k++] = list_cols_text(c, 7, t->node_names[j]);
		pb->start_time[i] = t->start_time;
		pb->end_time[i] = t->end_time;
		pb->exit_code[i] = t->exit_code;
		pb->flags[i] = (t->has_exit_code ? COL_HAS_EXIT_CODE : 0) |
			       (t->has_array ? COL_HAS_ARRAY : 0) | (t->held ? COL_HELD : 0);
		pb->array_id[i] = t->array_id;
		pb->array_index[i] = t->array_index;
		pb->array_spec[i] = list_cols_text(c, 6, t->array_spec);
	}
}

static void list_cols_release(struct list_cols *c)
{
	Hpq__TaskColumns *pb = &c->pb;

	free(pb->strings);
	free(pb->id);
	free(pb->name);
	free(pb->team);
	free(pb->user);
	free(pb->class_);
	free(pb->state);
	free(pb->reason);
	free(pb->queue_position);
	free(pb->nodes);
	free(pb->gpus);
	free(pb->node_counts);
	free(pb->node_names);
	free(pb->start_time);
	free(pb->end_time);
	free(pb->exit_code);
	free(pb->flags);
	free(pb->array_id);
	free(pb->array_index);
	free(pb->array_spec);
	strmap_release(&c->index);
}

/* Sends the rows collected so far as one ListReply, oldest first. */
static void list_out_send(struct list_out *o, bool more)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ListReply rep = HPQ__LIST_REPLY__INIT;
	struct list_cols cols = { .pb = HPQ__TASK_COLUMNS__INIT };

	/* res may have moved while growing: point every task at its own again. */
	for (size_t i = 0; i < o->n; i++) {
		size_t k = o->forward ? i : o->n - 1 - i;

		o->tasks[k].per_node = &o->res[k];
		o->ptrs[i] = &o->tasks[k];
	}
	if (o->columns) {
		list_cols_fill(&cols, o);
		rep.columns = &cols.pb;
	} else {
		rep.n_tasks = o->n;
		rep.tasks = o->ptrs;
	}
	rep.truncated = o->truncated;
	/* Held (in_order with a limit): the first frame built is sent last. */
	rep.more = o->in_order && !o->forward ? o->frames > 0 : more;
	rep.in_order = o->in_order;
	env.id = o->req_id;
	env.body_case = HPQ__ENVELOPE__BODY_LIST_REPLY;
	env.list_reply = &rep;
	if (o->in_order && !o->forward) {
		o->held = xreallocarray(o->held, o->nheld + 1, sizeof(*o->held));
		o->held_len = xreallocarray(o->held_len, o->nheld + 1, sizeof(*o->held_len));
		o->held[o->nheld] = hpq_msg_encode(&env, &o->held_len[o->nheld]);
		o->nheld++;
		o->frames++;
	} else if (o->frames++) {
		/* A long list is sent whole, past the write queue's limit. */
		server_send_continued(o->c, &env);
	} else {
		server_send(o->c, &env);
	}
	if (o->columns)
		list_cols_release(&cols);
	for (size_t i = 0; i < o->nown; i++)
		free(o->own[i]);
	o->nown = 0;
	o->n = 0;
	o->bytes = 0;
	memset(o->seen, 0, sizeof(o->seen));
	memset(o->last, 0, sizeof(o->last));
}

/*
 * Takes the row just filled in the next slot, if the limit and (without
 * stream) the frame allow it; with stream, a full frame is sent first and
 * the row moves to the new one.
 */
static bool list_out_take(struct list_out *o)
{
	Hpq__Task *pb = &o->tasks[o->n];
	size_t sz;

	pb->per_node = &o->res[o->n];
	/* Without stream, the frame must fit: counted exactly. With it, the
	 * count only cuts frames near LIST_FRAME_BYTES, far below the most a
	 * frame may hold. */
	sz = o->columns ? cols_row_bound(o, pb)
	     : o->view == HPQ__LIST_VIEW__LIST_VIEW_TABLE ? table_row_bound(pb)
	     : o->stream ? full_row_bound(pb)
			 : hpq__task__get_packed_size(pb) + 8;
	if (o->stream && o->n && o->bytes + sz > LIST_FRAME_BYTES) {
		Hpq__Task row = *pb;
		Hpq__Resources res = o->res[o->n];

		/* This row opens the next frame. */
		list_out_send(o, true);
		o->tasks[0] = row;
		o->res[0] = res;
		o->tasks[0].per_node = &o->res[0];
		pb = &o->tasks[0];
		if (o->columns)
			sz = cols_row_bound(o, pb); /* its texts, counted in the new frame */
	}
	if (o->bytes + sz > LIST_BUDGET) {
		o->truncated = true;
		return false;
	}
	o->bytes += sz;
	o->n++;
	o->total++;
	return true;
}

static bool list_out_full(const struct list_out *o)
{
	return (o->limit && o->total >= o->limit) || o->truncated;
}

/*
 * The rows of what an array has not materialized yet: one row for all of
 * them ("5-999%50"), or with expand_arrays one per index, in the list
 * being built (o), within its limit and frame budget.
 */
static bool list_out_push(struct list_out *o, const struct state *st, const struct array *a,
			  uint32_t idx, char *spec, const char *reason,
			  const struct rights_view *view)
{
	Hpq__Task *pb;
	Hpq__Resources *res;

	if (list_out_full(o))
		return false;
	pb = list_out_slot(o, &res);
	list_out_fill(o, st, a->tmpl, pb, res, view);
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
	struct list_out *o;
	const struct state *st;
	const struct array *a;
	const char *reason;
	const struct rights_view *view;
};

static bool expand_one(void *arg, uint32_t idx)
{
	struct expand_arg *x = arg;

	return list_out_push(x->o, x->st, x->a, idx, NULL, x->reason, x->view);
}

static void list_array_rows(const struct state *st, const struct task *first, bool expand,
			    const struct list_filter *f, struct list_out *o,
			    const struct rights_view *view)
{
	const struct array *a = array_find(st, first->array_id);
	const char *reason;
	char *spec;

	if (!a || !a->tmpl || array_set_empty(&a->pending) || !list_match(a->tmpl, f))
		return;
	reason = array_pending_reason(st, a);
	if (expand) {
		struct expand_arg x = { o, st, a, reason, view };

		/* Collected newest first, as the tasks, each frame reversed when
		 * sent, these read from the highest index down; forward, they
		 * are collected as printed. */
		if (o->forward)
			array_set_each_desc(&a->pending, expand_one, &x);
		else
			array_set_each(&a->pending, expand_one, &x);
		return;
	}
	spec = array_pending_spec(a);
	if (!list_out_push(o, st, a, array_set_min(&a->pending), spec, reason, view)) {
		free(spec);
		return;
	}
	o->own = xreallocarray(o->own, o->nown + 1, sizeof(*o->own));
	o->own[o->nown++] = spec;
}

/* Task t's own row; false when the list is full. */
static bool list_task_row(struct list_out *o, const struct state *st, const struct task *t,
			  struct queue_index **qi, const struct rights_view *view)
{
	Hpq__Task *pb;
	Hpq__Resources *res;

	if (list_out_full(o))
		return false;
	pb = list_out_slot(o, &res);
	list_out_fill(o, st, t, pb, res, view);
	if (t->state == TASK_PENDING) {
		if (!*qi)
			*qi = queue_index_new(st);
		pb->queue_position = queue_index_get(*qi, t->st.id);
	}
	return list_out_take(o);
}

int req_list(struct req *q)
{
	const Hpq__ListRequest *m = q->env->list;
	struct state *st = &q->d->state;
	struct list_filter f = { NULL, NULL, NULL, 0 };
	struct queue_index *qi = NULL;
	struct rights_view view;
	struct list_out o = { .c = q->c, .req_id = q->id, .stream = m->stream, .view = m->view,
			      .limit = m->limit, .in_order = m->stream && m->in_order };

	o.columns = m->columns && m->view == HPQ__LIST_VIEW__LIST_VIEW_TABLE;
	if (m->view > HPQ__LIST_VIEW__LIST_VIEW_TABLE)
		return state_errf(q->e, HPQ_EINVAL, "unknown list view %u: this hpqd knows "
				  "0 (every field) and 1 (the table's)", m->view);
	if (*m->team)
		f.team = m->team;
	if (*m->user)
		f.user = m->user;
	if (*m->name)
		f.name = m->name;
	if (*m->state && list_state(m->state, &f.states, q->e) < 0)
		return HPQ_EINVAL;
	if (*m->state)               /* protocol 1's field: served, and recorded */
		deprecation_note(q->d->deprecations, DEPRECATED_LIST_STATE, q->c->user,
				 hpq_now_ms());
	for (size_t i = 0; i < m->n_states; i++)
		if (list_state(m->states[i], &f.states, q->e) < 0)
			return HPQ_EINVAL;

	/* The reader's rights once; then each task's private data is one check. */
	rights_view_init(&view, st, &q->c->actor, q->d->cfg.private_data);
	o.forward = o.in_order && !o.limit;
	/* Newest first, so that a limit (or the frame size) keeps the newest;
	 * forward, oldest first, an array's pending rest after its first task. */
	for (size_t k = 0; k < st->ntasks; k++) {
		const struct task *t = st->tasks[o.forward ? k : st->ntasks - 1 - k];
		bool head;

		if (m->array_id && t->array_id != m->array_id)
			continue;
		head = t->array_id && t->array_id == t->st.id;
		if (head && !o.forward)
			list_array_rows(st, t, m->expand_arrays, &f, &o, &view);
		if (o.truncated)
			break;
		if (list_match(t, &f) && !list_task_row(&o, st, t, &qi, &view))
			break;
		if (head && o.forward) {
			list_array_rows(st, t, m->expand_arrays, &f, &o, &view);
			if (o.truncated)
				break;
		}
		if (list_out_full(&o))
			break;
	}
	list_out_send(&o, false);
	/* in_order: oldest first, the first as a reply's first frame. */
	for (size_t i = o.nheld; i-- > 0;)
		if (i == o.nheld - 1)
			server_send_frame(q->c, o.held[i], o.held_len[i]);
		else
			server_send_frame_continued(q->c, o.held[i], o.held_len[i]);
	free(o.held);
	free(o.held_len);
	free(o.ptrs);
	free(o.tasks);
	free(o.res);
	free(o.own);
	queue_index_free(qi);
	rights_view_release(&view);
	return 0;
}

struct show_req {
	struct hpqd *d;
	struct conn *c;
	uint64_t id;
	uint64_t task_id;
	bool script;                 /* the asker wants the batch script */
	bool from_store;             /* the task's row is read too */
	uint64_t array_id;           /* ID_INDEX read from the store: its array and index */
	uint32_t array_index;
};

static void *task_of_row(const struct store_task_row *row, const struct store_checkpoint *newest);

static void on_history(void *arg, int status, const struct store_history *h)
{
	struct show_req *q = arg;
	struct state *st = &q->d->state;
	/* A task that left memory comes with its row (state_tasks_evict). */
	struct task *gone = h ? h->task : NULL;
	const struct task *t = gone ? gone : state_task_find(st, q->task_id);
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ShowReply rep = HPQ__SHOW_REPLY__INIT;
	Hpq__Task task;
	Hpq__Resources res;
	Hpq__Checkpoint *ck = NULL, **ckp = NULL;
	Hpq__Event *ev = NULL, **evp = NULL;
	struct rights_view view;
	struct state_err e;

	if (status < 0) {
		server_send_error(q->c, q->id, status, "cannot read the task's history");
		goto out;
	}
	if (!t && q->array_id) {
		server_send_error(q->c, q->id, state_errf(&e, HPQ_ENOTFOUND, "array %llu has no "
							  "index %u",
							  (unsigned long long)q->array_id,
							  q->array_index), e.msg);
		goto out;
	}
	if (!t && !q->from_store && q->task_id && q->task_id < st->next_id) {
		/* It left memory while its history was read: read its row. */
		q->from_store = true;
		store_read_task_history(q->d->store, q->task_id, q->script, task_of_row, on_history,
					q);
		return;
	}
	if (!t) {
		server_send_error(q->c, q->id, state_errf(&e, HPQ_ENOTFOUND, "no task %llu",
							  (unsigned long long)q->task_id), e.msg);
		goto out;
	}
	task_to_pb(st, t, &task, &res);
	if (q->script) {
		if (!h->script) {
			server_send_error(q->c, q->id,
					  state_errf(&e, HPQ_ENOTFOUND, "task %llu was not submitted "
						     "as a batch script",
						     (unsigned long long)t->st.id), e.msg);
			goto out;
		}
		task.script.data = (uint8_t *)h->script;
		task.script.len = h->script_len;
	}
	rights_view_init(&view, st, &q->c->actor, q->d->cfg.private_data);
	task_redact(&view, t, &task);
	rights_view_release(&view);
	if (q->script && task.redacted) {
		server_send_error(q->c, q->id,
				  state_errf(&e, HPQ_EPERM, "task %llu is %s's: its script is "
					     "private", (unsigned long long)t->st.id, t->user),
				  e.msg);
		goto out;
	}
	task.queue_position = queue_position(st, t);
	if (h->nckpts) {
		ck = xcalloc(h->nckpts, sizeof(*ck));
		ckp = xcalloc(h->nckpts, sizeof(*ckp));
	}
	for (size_t i = 0; i < h->nckpts; i++) {
		hpq__checkpoint__init(&ck[i]);
		ck[i].step = h->ckpts[i].step;
		ck[i].path = h->ckpts[i].path;
		ck[i].time = h->ckpts[i].time_ms / 1000;
		ck[i].attempt = h->ckpts[i].attempt;
		ckp[i] = &ck[i];
	}
	if (h->nevents) {
		ev = xcalloc(h->nevents, sizeof(*ev));
		evp = xcalloc(h->nevents, sizeof(*evp));
	}
	for (size_t i = 0; i < h->nevents; i++) {
		const struct store_event *se = &h->events[i];

		hpq__event__init(&ev[i]);
		ev[i].id = se->id;
		ev[i].time = se->time_ms;
		ev[i].kind = (char *)se->kind;
		ev[i].task_id = se->task_id;
		ev[i].node = (char *)se->node;
		ev[i].team = (char *)se->team;
		ev[i].actor = (char *)se->actor;
		ev[i].message = (char *)se->message;
		evp[i] = &ev[i];
	}
	task.n_checkpoints = h->nckpts;
	task.checkpoints = ckp;
	task.n_events = h->nevents;
	task.events = evp;
	rep.task = &task;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_SHOW_REPLY;
	env.show_reply = &rep;
	server_send(q->c, &env);
	free(ck);
	free(ckp);
	free(ev);
	free(evp);
out:
	state_task_free(gone);
	server_unref(q->c);
	free(q);
}

static void *task_of_row(const struct store_task_row *row, const struct store_checkpoint *newest)
{
	return state_task_from_row(row, newest);
}

/*
 * ID_INDEX: the index's own task once it is materialized (*task_id), else
 * the array's template with that index, answered here (returns 1).
 */
static int show_array_index(struct req *q, const Hpq__ShowRequest *m, uint64_t *task_id)
{
	struct state *st = &q->d->state;
	const struct array *a = array_find(st, m->id);
	const struct task *t;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__ShowReply rep = HPQ__SHOW_REPLY__INIT;
	Hpq__Task task;
	Hpq__Resources res;
	struct rights_view view;

	/* The array ended and left memory: the store has its tasks. */
	if (!a && state_task_gone(st, m->id, &(bool){ false })) {
		*task_id = 0;
		return 0;
	}
	if (!a)
		return state_errf(q->e, HPQ_ENOTFOUND, "no array %llu", (unsigned long long)m->id);
	t = array_task_find(st, a, m->array_index);
	if (t) {
		*task_id = t->st.id;
		return 0;
	}
	/* Its task ended and left memory: the store has it (req_show). */
	if ((!a->tmpl || !array_set_has(&a->pending, m->array_index)) &&
	    m->array_index >= a->min && m->array_index <= a->max) {
		*task_id = 0;
		return 0;
	}
	if (!a->tmpl || !array_set_has(&a->pending, m->array_index))
		return state_errf(q->e, HPQ_ENOTFOUND, "array %llu has no index %u",
				  (unsigned long long)m->id, m->array_index);
	task_to_pb(st, a->tmpl, &task, &res);
	rights_view_init(&view, st, &q->c->actor, q->d->cfg.private_data);
	task_redact(&view, a->tmpl, &task);
	rights_view_release(&view);
	task.id = a->id;
	task.has_array = true;
	task.array_id = a->id;
	task.array_index = m->array_index;
	task.held = a->held;
	task.reason = (char *)array_pending_reason(st, a);
	rep.task = &task;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_SHOW_REPLY;
	env.show_reply = &rep;
	server_send(q->c, &env);
	return 1;
}

int req_show(struct req *q)
{
	const Hpq__ShowRequest *m = q->env->show;
	const struct task *t;
	struct show_req *s;
	uint64_t task_id = m->id;

	if (m->has_array_index) {
		int r = show_array_index(q, m, &task_id);

		if (r != 0)
			return r < 0 ? r : 0;
	}
	t = task_id ? state_task_find(&q->d->state, task_id) : NULL;
	if (!t && !m->has_array_index && (task_id == 0 || task_id >= q->d->state.next_id))
		return state_errf(q->e, HPQ_ENOTFOUND, "no task %llu", (unsigned long long)m->id);
	s = xcalloc(1, sizeof(*s));
	s->d = q->d;
	s->c = q->c;
	s->id = q->id;
	s->task_id = task_id;
	s->script = m->script;
	server_ref(s->c);
	s->from_store = !t;
	if (!t && !task_id) {
		s->array_id = m->id;
		s->array_index = m->array_index;
		store_read_index_history(q->d->store, m->id, m->array_index, m->script, task_of_row,
					 on_history, s);
	} else if (!t) {
		store_read_task_history(q->d->store, task_id, m->script, task_of_row, on_history, s);
	} else {
		store_read_history(q->d->store, task_id,
				   m->script ? (t->array_id ? t->array_id : t->st.id) : 0,
				   on_history, s);
	}
	return 0;
}

int req_cancel(struct req *q)
{
	const Hpq__CancelRequest *m = q->env->cancel;
	struct state *st = &q->d->state;
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__CancelReply rep = HPQ__CANCEL_REPLY__INIT;
	Hpq__CancelResult *res, **ptrs;
	struct state_err *msgs;
	struct cancel_batch batch = { 0 };
	size_t pending = 0;

	if (m->select)
		return req_cancel_select(q);
	if (!m->n_ids)
		return state_errf(q->e, HPQ_EINVAL, "no task to cancel");
	if (m->n_ids > MAX_CANCEL_IDS)
		return state_errf(q->e, HPQ_EINVAL, "at most %d tasks per cancel", MAX_CANCEL_IDS);
	res = xcalloc(m->n_ids, sizeof(*res));
	ptrs = xcalloc(m->n_ids, sizeof(*ptrs));
	msgs = xcalloc(m->n_ids, sizeof(*msgs));
	for (size_t i = 0; i < m->n_ids; i++) {
		const struct task *t = state_task_find(st, m->ids[i]);

		pending += t && t->state == TASK_PENDING;
	}
	batch.on = pending >= CANCEL_BATCH_MIN;
	for (size_t i = 0; i < m->n_ids; i++) {
		struct task *t = state_task_find(st, m->ids[i]);
		int r;

		hpq__cancel_result__init(&res[i]);
		res[i].id = m->ids[i];
		ptrs[i] = &res[i];
		if (!t) {
			r = state_errf(&msgs[i], HPQ_ENOTFOUND, "no task %llu",
				       (unsigned long long)m->ids[i]);
		} else {
			r = state_task_cancel_in(st, t, &q->c->actor, &batch, &msgs[i]);
			if (r == HPQ_EPERM)
				rights_denied(st, &q->c->actor, t, msgs[i].msg);
			if (r == 1)
				agentlink_kill_after_commit(q->d, t, t->attempts, -1, SIGTERM,
							    state_task_stop_grace(st, t),
							    "cancelled");
		}
		res[i].code = r < 0 ? r : 0;
		res[i].message = r < 0 ? msgs[i].msg : (char *)"";
	}
	state_cancel_batch_end(st, &batch, &q->c->actor);
	rep.n_results = m->n_ids;
	rep.results = ptrs;
	env.id = q->id;
	env.body_case = HPQ__ENVELOPE__BODY_CANCEL_REPLY;
	env.cancel_reply = &rep;
	server_reply_after_commit(q->c, &env);
	free(res);
	free(ptrs);
	free(msgs);
	return 0;
}

int req_checkpoint(struct req *q)
{
	const Hpq__CheckpointRequest *m = q->env->checkpoint;
	struct task *t = state_task_find(&q->d->state, m->task_id);

	if (!t)
		return state_errf(q->e, HPQ_ENOTFOUND, "no task %llu", (unsigned long long)m->task_id);
	return req_ok_after_commit(q, state_checkpoint_add(&q->d->state, t, m->attempt, m->step,
							   m->path, &q->c->actor, q->e));
}

/* The one task an update names: "12", or an array's started index "12_5". */
static struct task *update_task(struct state *st, const char *id, struct state_err *e, int *r)
{
	Hpq__TaskSelector sel = HPQ__TASK_SELECTOR__INIT;
	struct selection found;
	struct task *t = NULL;
	char *ids[] = { (char *)id };

	sel.n_ids = 1;
	sel.ids = ids;
	*r = select_resolve(st, &sel, &found, e);
	if (*r < 0)
		return NULL;
	if (found.n == 1 && found.v[0].kind == SEL_TASK) {
		t = found.v[0].t;
	} else if (found.n == 1 && found.v[0].kind == SEL_MISSING) {
		*r = state_errf(e, found.v[0].code, "%s", found.v[0].msg ? found.v[0].msg : id);
	} else if (found.n && found.v[0].kind == SEL_INDEX) {
		*r = state_errf(e, HPQ_ESTATE, "%.32s has not started: an array's pending "
				"indices share the array's request (hpq hold %.32s makes it a "
				"task of its own, which hpq update can change)", id, id);
	} else {
		*r = state_errf(e, HPQ_EINVAL, "%.32s names more than one task: update one at "
				"a time", id);
	}
	select_release(&found);
	return t;
}

int req_update(struct req *q)
{
	const Hpq__UpdateRequest *m = q->env->update;
	struct state *st = &q->d->state;
	int r;
	struct task *t = update_task(st, m->id, q->e, &r);

	if (!t)
		return r;
	r = state_task_update(st, t, m->fields, m->n_fields, &q->c->actor, q->e);
	if (r == HPQ_EPERM)
		rights_denied(st, &q->c->actor, t, q->e->msg);
	if (r == 1)
		agentlink_limit_after_commit(q->d, t);
	return req_ok_after_commit(q, r);
}
