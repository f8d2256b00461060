/*
 * change.c: what every change to the model shares (state.h,
 * state-internal.h): the refusal's message, string helpers, the checks of
 * resources every noun makes, marking the dispatcher dirty, and recording
 * the change's event and telling the observers of it.
 *
 * Each public change function, in task.c, team.c, node.c and policy.c,
 * has the same shape: check everything the request says against the
 * current state (returning a clear error before touching anything), then
 * apply it to memory and to the dispatcher, record the rows and one event
 * in the store's open batch, and mark the dispatcher dirty when its
 * inputs changed. A change is therefore either refused whole or recorded
 * whole; the caller decides whether to wait for the commit before it
 * answers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "log.h"
#include "state-internal.h"
#include "store.h"
#include "xalloc.h"

int state_errf(struct state_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

/* ---------------------------------------------------------------- small helpers */

/* The one empty string tasks share (most of their optional fields are
 * empty): str_dup and str_set give it for "", str_free never frees it. */
static char empty_str[1];

char *str_dup(const char *s)
{
	return s && *s ? xstrdup(s) : empty_str;
}

void str_free(char *s)
{
	if (s != empty_str)
		free(s);
}

void str_set(char **slot, const char *s)
{
	char *n = str_dup(s);

	str_free(*slot);
	*slot = n;
}

void set_str(char **slot, const char *s)
{
	char *n = xstrdup(s ? s : "");

	str_free(*slot);
	*slot = n;
}

void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

char **dup_strv(char *const *v, size_t n)
{
	char **c;

	if (!n)
		return NULL;
	c = xcalloc(n, sizeof(*c));
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

void mark_dirty(struct state *st)
{
	st->dirty = true;
}

/* The observers and the log hear ev, whose row is recorded. */
static void event_told(struct state *st, const struct store_event *ev, const struct task *t)
{
	for (size_t i = 0; i < st->nobservers; i++)
		if (st->observers[i].event)
			st->observers[i].event(st->observers[i].arg, ev, t);
	if (t)
		log_info("task %llu: %s: %s", (unsigned long long)t->st.id, ev->kind, ev->message);
	else
		log_info("%s%s%s: %s", ev->kind, *ev->node ? " " : "", ev->node, ev->message);
}

void state_event(struct state *st, const char *kind, const struct task *t, const char *node,
		 const char *actor, const char *fmt, ...)
{
	struct store_event ev = { 0 };
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ev.time_ms = hpq_now_ms();
	ev.kind = kind;
	ev.task_id = t ? t->st.id : 0;
	ev.node = node ? node : "";
	ev.team = t ? t->team : "";
	ev.actor = actor ? actor : "hpqd";
	ev.message = msg;
	store_event_add(st->store, &ev);
	event_told(st, &ev, t);
}

void state_task_bulk(struct state *st, const struct task *t, const struct store_bulk *b)
{
	struct store_event ev = {
		.time_ms = b->time_ms,
		.kind = b->kind,
		.task_id = t->st.id,
		.node = "",
		.team = t->team,
		.actor = b->actor,
		.message = b->message,
	};

	store_task_bulk(st->store, t->st.id, b);
	event_told(st, &ev, t);
}

/* ---------------------------------------------------------------- observers */

void state_observe(struct state *st, const struct state_observer *o)
{
	st->observers = xreallocarray(st->observers, st->nobservers + 1, sizeof(*o));
	st->observers[st->nobservers++] = *o;
}

void state_unobserve(struct state *st, const void *arg)
{
	size_t k = 0;

	for (size_t i = 0; i < st->nobservers; i++)
		if (st->observers[i].arg != arg)
			st->observers[k++] = st->observers[i];
	st->nobservers = k;
}

/* ---------------------------------------------------------------- checks */

int check_res(const Hpq__Resources *pb, struct hpq_res *ret, const char *what,
	      struct state_err *e)
{
	struct hpq_res r = pb ? (struct hpq_res){ pb->gpus, pb->cpus, (int64_t)pb->mem }
			      : HPQ_RES_ZERO;

	if (pb && pb->mem > (uint64_t)STATE_MAX_MEM)
		return state_errf(e, HPQ_EINVAL, "%s memory %llu MiB is absurd", what,
				  (unsigned long long)pb->mem);
	if (r.gpus > STATE_MAX_GPUS)
		return state_errf(e, HPQ_EINVAL, "%s of %lld gpus is more than %d", what,
				  (long long)r.gpus, STATE_MAX_GPUS);
	if (r.cpus > STATE_MAX_CPUS)
		return state_errf(e, HPQ_EINVAL, "%s of %lld cpus is more than %d", what,
				  (long long)r.cpus, STATE_MAX_CPUS);
	*ret = r;
	return 0;
}

/*
 * A limit (borrow, lend): a component at or above HPQ_UNLIMITED_COUNT
 * (memory: HPQ_UNLIMITED_MEM) means "no limit" and is kept as exactly
 * that value, the one definition of unlimited (common/hpq.h); the others
 * are checked like any resource vector.
 */
int check_limit(const Hpq__Resources *pb, struct hpq_res *ret, const char *what,
		struct state_err *e)
{
	Hpq__Resources finite = HPQ__RESOURCES__INIT;
	struct hpq_res r;
	int rc;

	if (pb) {
		finite.gpus = pb->gpus >= HPQ_UNLIMITED_COUNT ? 0 : pb->gpus;
		finite.cpus = pb->cpus >= HPQ_UNLIMITED_COUNT ? 0 : pb->cpus;
		finite.mem = pb->mem >= HPQ_UNLIMITED_MEM ? 0 : pb->mem;
	}
	rc = check_res(&finite, &r, what, e);
	if (rc < 0)
		return rc;
	if (pb && pb->gpus >= HPQ_UNLIMITED_COUNT)
		r.gpus = HPQ_UNLIMITED_COUNT;
	if (pb && pb->cpus >= HPQ_UNLIMITED_COUNT)
		r.cpus = HPQ_UNLIMITED_COUNT;
	if (pb && pb->mem >= HPQ_UNLIMITED_MEM)
		r.mem = (int64_t)HPQ_UNLIMITED_MEM;
	*ret = r;
	return 0;
}
