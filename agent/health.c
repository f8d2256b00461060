/*
 * health.c: rounds, counting and publishing of health findings (the rules
 * are in health.h), and the table of built-in monitors.
 *
 * Each source keeps one entry per (category, reason) it has seen in its
 * current streak. An entry holds two sets of values: the committed ones,
 * which publishing reads, and the ones of the round being collected,
 * which health_done commits. So a source whose round is half-collected
 * never shows a half-updated finding when another source publishes.
 *
 * The published set is small (a handful of findings) and is rebuilt
 * from scratch after every round: simpler than keeping it up to date,
 * and cheap at one round per source per minute.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "health.h"
#include "log.h"
#include "monitor.h"
#include "xalloc.h"

const struct monitor *const health_builtin[] = {
	&monitor_gpu,
	&monitor_kmsg,
	&monitor_disk,
	&monitor_mem,
	&monitor_clock,
	&monitor_netif,
	&monitor_script,
	&monitor_inject,
	NULL,
};

static const char *const health_severity_names[] = {"info", "warning", "fatal"};
static const char *const health_category_names[HEALTH_NCATEGORIES] = {
	"accelerator", "kernel", "storage", "network", "runtime", "agent",
};

struct health_entry {
	enum health_category category;
	char *reason;

	/* Committed: what publishing sees. */
	enum health_severity severity;
	char *action;               /* "" for none */
	char *message;
	unsigned streak;            /* consecutive rounds seen; 0: new in this round */
	int64_t since;              /* unix seconds, start of the streak */

	/* The round being collected. */
	bool seen;
	enum health_severity r_severity;
	char *r_action;
	char *r_message;
};

struct health_source {
	struct dlist entry;
	struct health *h;
	char *name;
	struct health_entry *entries;
	size_t nentries, cap;
};

const char *health_severity_name(enum health_severity s)
{
	return (unsigned)s <= HEALTH_FATAL ? health_severity_names[s] : "?";
}

const char *health_category_name(enum health_category c)
{
	return (unsigned)c < HEALTH_NCATEGORIES ? health_category_names[c] : "?";
}

int health_severity_parse(const char *name, enum health_severity *ret)
{
	for (int i = HEALTH_INFO; i <= HEALTH_FATAL; i++) {
		if (strcmp(name, health_severity_names[i]) == 0) {
			*ret = (enum health_severity)i;
			return 0;
		}
	}
	return HPQ_EINVAL;
}

int health_category_parse(const char *name, enum health_category *ret)
{
	for (int i = 0; i < HEALTH_NCATEGORIES; i++) {
		if (strcmp(name, health_category_names[i]) == 0) {
			*ret = (enum health_category)i;
			return 0;
		}
	}
	return HPQ_EINVAL;
}

int health_read_file(const char *path, size_t max, char **ret_text)
{
	char *buf = xmalloc(max + 1);
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0) {
		free(buf);
		return -errno;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			r = -EFBIG;
			break;
		}
	}
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[len] = '\0';
	*ret_text = buf;
	return 0;
}

void health_config_init(struct health_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->interval = HEALTH_DEFAULT_INTERVAL_S;
	cfg->timeout = HEALTH_DEFAULT_TIMEOUT_S;
	cfg->threshold = HEALTH_DEFAULT_THRESHOLD;
	cfg->disk_warning = HEALTH_DEFAULT_DISK_WARNING;
	cfg->disk_fatal = HEALTH_DEFAULT_DISK_FATAL;
	cfg->clock_warning = HEALTH_DEFAULT_CLOCK_WARNING_S;
	cfg->clock_fatal = HEALTH_DEFAULT_CLOCK_FATAL_S;
	cfg->memory_pressure = HEALTH_DEFAULT_MEMORY_PRESSURE;
}

/* ------------------------------------------------------------ text */

/* A copy of at most max - 1 bytes, control characters turned into spaces. */
static char *health_clean(const char *s, size_t max)
{
	size_t n = strlen(s ? s : "");
	char *r;

	if (n >= max)
		n = max - 1;
	r = xstrndup(s ? s : "", n);
	for (char *p = r; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return r;
}

/* *dst = *dst + "; " + add, within HEALTH_MESSAGE_MAX. */
static void health_join(char **dst, const char *add)
{
	char *joined;

	if (!add[0] || strstr(*dst, add))
		return;
	if (!(*dst)[0]) {
		free(*dst);
		*dst = xstrdup(add);
		return;
	}
	xasprintf(&joined, "%s; %s", *dst, add);
	free(*dst);
	*dst = health_clean(joined, HEALTH_MESSAGE_MAX);
	free(joined);
}

/* ------------------------------------------------------------ publishing */

static void health_keys_free(struct health_key *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(keys[i].reason);
		free(keys[i].action);
	}
	free(keys);
}

static void health_pb_free(struct health *h)
{
	for (size_t i = 0; i < h->nfindings; i++) {
		free(h->pb[i].category);
		free(h->pb[i].reason);
		free(h->pb[i].message);
		free(h->pb[i].severity);
		free(h->pb[i].action);
	}
	free(h->pb);
	free(h->findings);
	h->pb = NULL;
	h->findings = NULL;
	h->nfindings = 0;
}

/* A merged, counted finding while the set is built. */
struct health_item {
	enum health_category category;
	enum health_severity severity;
	const char *reason;
	const char *action;
	char *message;
	int64_t since;
};

static int health_item_by_name(const void *a, const void *b)
{
	const struct health_item *x = a, *y = b;

	if (x->category != y->category)
		return x->category < y->category ? -1 : 1;
	return strcmp(x->reason, y->reason);
}

static int health_item_by_rank(const void *a, const void *b)
{
	const struct health_item *x = a, *y = b;

	if (x->severity != y->severity)
		return x->severity > y->severity ? -1 : 1;
	return health_item_by_name(a, b);
}

static const struct health_key *health_key_find(const struct health_key *keys, size_t n,
						 enum health_category c, const char *reason)
{
	for (size_t i = 0; i < n; i++)
		if (keys[i].category == c && strcmp(keys[i].reason, reason) == 0)
			return &keys[i];
	return NULL;
}

/* Logs what starts, changes and stops counting; returns whether anything did. */
static bool health_log_changes(const struct health_key *old, size_t nold,
			       const struct health_item *items, size_t n)
{
	bool changed = false;

	for (size_t i = 0; i < n; i++) {
		const struct health_item *it = &items[i];
		const struct health_key *k = health_key_find(old, nold, it->category, it->reason);

		if (k && k->severity == it->severity && strcmp(k->action, it->action) == 0)
			continue;
		changed = true;
		hpq_log(it->severity == HEALTH_INFO ? LOG_INFO : LOG_WARNING,
			"health: %s %s/%s%s%s: %s", health_severity_name(it->severity),
			health_category_name(it->category), it->reason,
			it->action[0] ? ", suggested action " : "", it->action, it->message);
	}
	for (size_t i = 0; i < nold; i++) {
		bool present = false;

		for (size_t j = 0; j < n && !present; j++)
			present = items[j].category == old[i].category &&
				  strcmp(items[j].reason, old[i].reason) == 0;
		if (!present) {
			changed = true;
			log_notice("health: %s/%s cleared", health_category_name(old[i].category),
				   old[i].reason);
		}
	}
	return changed;
}

static void health_publish(struct health *h)
{
	struct health_item *items = NULL;
	struct health_source *s;
	struct health_key *keys;
	size_t n = 0, cap = 0, m = 0;
	bool changed;

	dlist_for_each_entry(s, &h->sources, entry) {
		for (size_t i = 0; i < s->nentries; i++) {
			const struct health_entry *e = &s->entries[i];

			if (e->streak == 0 || e->streak < h->cfg.threshold)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				items = xreallocarray(items, cap, sizeof(*items));
			}
			items[n++] = (struct health_item){e->category, e->severity, e->reason,
							  e->action, xstrdup(e->message), e->since};
		}
	}
	/* One finding per (category, reason): the worst, the earliest, every message. */
	if (n > 1)
		qsort(items, n, sizeof(*items), health_item_by_name);
	for (size_t i = 0; i < n; i++) {
		struct health_item *into = m ? &items[m - 1] : NULL;

		if (into && health_item_by_name(into, &items[i]) == 0) {
			if (items[i].severity > into->severity) {
				into->severity = items[i].severity;
				into->action = items[i].action;
			} else if (items[i].severity == into->severity && !into->action[0]) {
				into->action = items[i].action;
			}
			if (items[i].since < into->since)
				into->since = items[i].since;
			health_join(&into->message, items[i].message);
			free(items[i].message);
			continue;
		}
		items[m++] = items[i];
	}
	n = m;
	if (n > 1)
		qsort(items, n, sizeof(*items), health_item_by_rank);
	if (n > HEALTH_FINDINGS_MAX) {
		log_warn("health: %zu findings, sending the %d most severe", n,
			 HEALTH_FINDINGS_MAX);
		for (size_t i = HEALTH_FINDINGS_MAX; i < n; i++)
			free(items[i].message);
		n = HEALTH_FINDINGS_MAX;
	}

	changed = health_log_changes(h->keys, h->nkeys, items, n);
	health_pb_free(h);
	keys = n ? xcalloc(n, sizeof(*keys)) : NULL;
	h->pb = n ? xcalloc(n, sizeof(*h->pb)) : NULL;
	h->findings = n ? xcalloc(n, sizeof(*h->findings)) : NULL;
	for (size_t i = 0; i < n; i++) {
		Hpq__Finding *f = &h->pb[i];

		hpq__finding__init(f);
		f->category = xstrdup(health_category_name(items[i].category));
		f->reason = xstrdup(items[i].reason);
		f->message = items[i].message; /* moved */
		f->severity = xstrdup(health_severity_name(items[i].severity));
		f->action = xstrdup(items[i].action);
		f->since = items[i].since;
		h->findings[i] = f;
		keys[i] = (struct health_key){items[i].category, items[i].severity,
					      xstrdup(items[i].reason), xstrdup(items[i].action)};
	}
	h->nfindings = n;
	health_keys_free(h->keys, h->nkeys);
	h->keys = keys;
	h->nkeys = n;
	free(items);
	if (changed && h->on_change)
		h->on_change(h, h->data);
}

const Hpq__Finding *health_find(const struct health *h, const char *category, const char *reason)
{
	for (size_t i = 0; i < h->nfindings; i++)
		if (strcmp(h->findings[i]->category, category) == 0 &&
		    strcmp(h->findings[i]->reason, reason) == 0)
			return h->findings[i];
	return NULL;
}

/* ------------------------------------------------------------ sources */

struct health_source *health_source_new(struct health *h, const char *name)
{
	struct health_source *s = xcalloc(1, sizeof(*s));

	s->h = h;
	s->name = xstrdup(name);
	dlist_add_head(&h->sources, &s->entry);
	return s;
}

static void health_entry_release(struct health_entry *e)
{
	free(e->reason);
	free(e->action);
	free(e->message);
	free(e->r_action);
	free(e->r_message);
}

static bool health_source_counts(const struct health_source *s)
{
	for (size_t i = 0; i < s->nentries; i++)
		if (s->entries[i].streak > 0 && s->entries[i].streak >= s->h->cfg.threshold)
			return true;
	return false;
}

static void health_source_drop(struct health_source *s)
{
	dlist_del(&s->entry);
	for (size_t i = 0; i < s->nentries; i++)
		health_entry_release(&s->entries[i]);
	free(s->entries);
	free(s->name);
	free(s);
}

void health_source_free(struct health_source *s)
{
	struct health *h;
	bool counted;

	if (!s)
		return;
	h = s->h;
	counted = health_source_counts(s);
	health_source_drop(s);
	if (counted && !h->releasing)
		health_publish(h);
}

struct health *health_source_health(const struct health_source *s)
{
	return s->h;
}

void health_see(struct health_source *s, enum health_category category, const char *reason,
		enum health_severity severity, const char *action, const char *fmt, ...)
{
	struct health_entry *e = NULL;
	char *raw, *msg, *rsn = health_clean(reason, HEALTH_REASON_MAX);
	va_list ap;

	if (!action)
		action = "";
	va_start(ap, fmt);
	xvasprintf(&raw, fmt, ap);
	va_end(ap);
	msg = health_clean(raw, HEALTH_MESSAGE_MAX);
	free(raw);

	for (size_t i = 0; i < s->nentries && !e; i++)
		if (s->entries[i].category == category && strcmp(s->entries[i].reason, rsn) == 0)
			e = &s->entries[i];
	if (!e) {
		if (s->nentries == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 8;
			s->entries = xreallocarray(s->entries, s->cap, sizeof(*s->entries));
		}
		e = &s->entries[s->nentries++];
		memset(e, 0, sizeof(*e));
		e->category = category;
		e->reason = rsn;
		e->action = xstrdup("");
		e->message = xstrdup("");
		rsn = NULL;
	}
	free(rsn);
	if (!e->seen) {
		e->seen = true;
		e->r_severity = severity;
		free(e->r_action);
		e->r_action = xstrdup(action);
		free(e->r_message);
		e->r_message = msg;
		return;
	}
	/* Seen twice in one round: one finding, the worse severity, both messages. */
	if (severity > e->r_severity || (severity == e->r_severity && !e->r_action[0])) {
		e->r_severity = severity;
		free(e->r_action);
		e->r_action = xstrdup(action);
	}
	health_join(&e->r_message, msg);
	free(msg);
}

void health_done(struct health_source *s)
{
	int64_t now = hpq_now_ms() / 1000; /* since is in unix seconds */
	size_t kept = 0;

	for (size_t i = 0; i < s->nentries; i++) {
		struct health_entry *e = &s->entries[i];

		if (!e->seen) {
			if (e->streak > 0)
				log_debug("health: %s: %s/%s no longer seen", s->name,
					  health_category_name(e->category), e->reason);
			health_entry_release(e);
			continue;
		}
		if (e->streak == 0)
			e->since = now;
		if (e->streak < UINT32_MAX)
			e->streak++;
		e->severity = e->r_severity;
		free(e->action);
		e->action = e->r_action;
		free(e->message);
		e->message = e->r_message;
		e->r_action = e->r_message = NULL;
		e->seen = false;
		if (e->streak < s->h->cfg.threshold)
			log_debug("health: %s: %s/%s seen %u of %u times", s->name,
				  health_category_name(e->category), e->reason, e->streak,
				  s->h->cfg.threshold);
		s->entries[kept++] = *e;
	}
	s->nentries = kept;
	health_publish(s->h);
}

/* ------------------------------------------------------------ lifetime */

static void health_round_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	health_run(w->data);
}

void health_init(struct health *h, struct ev_loop *loop, const struct health_config *cfg,
		 const struct monitor *const *table, health_change_fn *on_change, void *data)
{
	size_t n = 0;

	memset(h, 0, sizeof(*h));
	h->loop = loop;
	h->cfg = *cfg;
	if (h->cfg.threshold == 0)
		h->cfg.threshold = 1;
	if (h->cfg.interval <= 0)
		h->cfg.interval = HEALTH_DEFAULT_INTERVAL_S;
	if (h->cfg.timeout <= 0)
		h->cfg.timeout = HEALTH_DEFAULT_TIMEOUT_S;
	h->on_change = on_change;
	h->data = data;
	dlist_init(&h->sources);
	ev_timer_init(&h->round_w, health_round_cb, 0.0, h->cfg.interval);
	h->round_w.data = h;

	while (table && table[n])
		n++;
	h->monitors = n ? xcalloc(n, sizeof(*h->monitors)) : NULL;
	for (size_t i = 0; i < n; i++) {
		const struct monitor *m = table[i];
		struct health_monitor *hm = &h->monitors[h->nmonitors];
		int r;

		hm->monitor = m;
		hm->source = health_source_new(h, m->name);
		r = m->init(h, hm->source, &hm->state);
		if (r != 0) {
			if (r < 0)
				log_warn("health: the %s monitor is off: %s", m->name,
					 hpq_strerror(r));
			else
				log_debug("health: the %s monitor has nothing to watch here",
					  m->name);
			health_source_drop(hm->source);
			continue;
		}
		log_debug("health: %s monitor on", m->name);
		h->nmonitors++;
	}
}

void health_start(struct health *h)
{
	ev_timer_set(&h->round_w, 0.0, h->cfg.interval);
	ev_timer_start(h->loop, &h->round_w);
}

void health_run(struct health *h)
{
	for (size_t i = 0; i < h->nmonitors; i++)
		h->monitors[i].monitor->run(h->monitors[i].state);
}

void health_release(struct health *h)
{
	ev_timer_stop(h->loop, &h->round_w);
	h->releasing = true; /* nothing is published or sent while everything goes */
	for (size_t i = 0; i < h->nmonitors; i++)
		h->monitors[i].monitor->release(h->monitors[i].state);
	while (!dlist_empty(&h->sources))
		health_source_drop(dlist_first_entry(&h->sources, struct health_source, entry));
	free(h->monitors);
	health_pb_free(h);
	health_keys_free(h->keys, h->nkeys);
	memset(h, 0, sizeof(*h));
}
