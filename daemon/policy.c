/*
 * policy.c: `hpq policy show|set` (policy.h).
 *
 * A set request is checked whole into a copy of the policy; only if every
 * key and value is good does the copy replace the policy in force, reach
 * the dispatcher and the store, and make one event. The store keeps the
 * values as people type them (durations formatted by hpq_format_duration,
 * which hpq_parse_duration reads back), so the table is readable with the
 * sqlite3 shell and loading needs no second format.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "parse.h"
#include "policy.h"
#include "store.h"

#define MAX_SETTINGS 16
#define MAX_HALF_LIFE_S (366ull * 24 * 3600)
#define MAX_MIN_RUNTIME_S (366ull * 24 * 3600)
#define MAX_GRACE_S (7ull * 24 * 3600)   /* as state.c allows per task */

enum key {
	K_IDLE,
	K_HALF_LIFE,
	K_MIN_RUNTIME,
	K_GRACE,
	K_REQUEUE,
	K_MAX_GRACE,
	K_COUNT,
};

static const char *const key_names[K_COUNT] = {
	[K_IDLE] = "idle-allocation",
	[K_HALF_LIFE] = "half-life",
	[K_MIN_RUNTIME] = "min-runtime",
	[K_GRACE] = "grace",
	[K_REQUEUE] = "requeue-order",
	[K_MAX_GRACE] = "max-grace",
};

static int key_parse(const char *name)
{
	for (int k = 0; k < K_COUNT; k++)
		if (!strcmp(name, key_names[k]))
			return k;
	return -1;
}

static int duration(const char *key, const char *value, uint64_t min, uint64_t max,
		    uint64_t *ret, struct state_err *e)
{
	char lo[32], hi[32];
	uint64_t s;

	if (hpq_parse_duration(value, &s) < 0)
		return state_errf(e, HPQ_EINVAL, "%s '%.64s' is not a duration: use e.g. 90s, "
				  "15m, 1h", key, value);
	if (s < min || s > max)
		return state_errf(e, HPQ_EINVAL, "%s %.64s is out of range %s-%s", key, value,
				  hpq_format_duration(min, lo, sizeof(lo)),
				  hpq_format_duration(max, hi, sizeof(hi)));
	*ret = s;
	return 0;
}

/* Applies one setting to p; p is a copy, so a refusal changes nothing. */
static int apply(struct state_policy *p, enum key k, const char *value, struct state_err *e)
{
	uint64_t s;
	int r;

	switch (k) {
	case K_IDLE:
		if (!strcmp(value, "fair-share"))
			p->sched.idle = SCHED_IDLE_FAIR_SHARE;
		else if (!strcmp(value, "fcfs"))
			p->sched.idle = SCHED_IDLE_FCFS;
		else
			return state_errf(e, HPQ_EINVAL, "idle-allocation '%.64s' is unknown: use "
					  "fair-share or fcfs", value);
		return 0;
	case K_HALF_LIFE:
		r = duration(key_names[k], value, 1, MAX_HALF_LIFE_S, &s, e);
		if (r == 0)
			p->sched.half_life_ms = (int64_t)s * 1000;
		return r;
	case K_MIN_RUNTIME:
		r = duration(key_names[k], value, 0, MAX_MIN_RUNTIME_S, &s, e);
		if (r == 0)
			p->sched.min_runtime_ms = (int64_t)s * 1000;
		return r;
	case K_GRACE:
		r = duration(key_names[k], value, 0, MAX_GRACE_S, &s, e);
		if (r == 0)
			p->grace_s = s;
		return r;
	case K_MAX_GRACE:
		r = duration(key_names[k], value, 1, MAX_GRACE_S, &s, e);
		if (r == 0)
			p->max_grace_s = s;
		return r;
	case K_REQUEUE:
		if (!strcmp(value, "submit"))
			p->sched.requeue_by_eviction = false;
		else if (!strcmp(value, "eviction"))
			p->sched.requeue_by_eviction = true;
		else
			return state_errf(e, HPQ_EINVAL, "requeue-order '%.64s' is unknown: use "
					  "submit or eviction", value);
		return 0;
	default:
		return state_errf(e, HPQ_EINVAL, "unknown policy key");
	}
}

/* The stored (and shown) word for key k of p. */
static const char *value_of(const struct state_policy *p, enum key k, char *buf, size_t len)
{
	switch (k) {
	case K_IDLE:
		return p->sched.idle == SCHED_IDLE_FCFS ? "fcfs" : "fair-share";
	case K_HALF_LIFE:
		return hpq_format_duration((uint64_t)p->sched.half_life_ms / 1000, buf, len);
	case K_MIN_RUNTIME:
		return hpq_format_duration((uint64_t)p->sched.min_runtime_ms / 1000, buf, len);
	case K_GRACE:
		return hpq_format_duration(p->grace_s, buf, len);
	case K_MAX_GRACE:
		return hpq_format_duration(p->max_grace_s, buf, len);
	case K_REQUEUE:
		return p->sched.requeue_by_eviction ? "eviction" : "submit";
	default:
		return "";
	}
}

int policy_set(struct state *st, const Hpq__PolicySetRequest *req, const struct actor *who,
	       struct state_err *e)
{
	struct state_policy next = st->policy;
	bool seen[K_COUNT] = { false };
	char msg[384], buf[32];
	size_t len = 0;
	int r;

	if (!who->admin)
		return state_errf(e, HPQ_EPERM, "only administrators can change the policy");
	if (!req->n_settings)
		return state_errf(e, HPQ_EINVAL, "nothing to change: give KEY VALUE");
	if (req->n_settings > MAX_SETTINGS)
		return state_errf(e, HPQ_EINVAL, "%zu settings in one change are too many",
				  req->n_settings);
	for (size_t i = 0; i < req->n_settings; i++) {
		const Hpq__PolicySetting *s = req->settings[i];
		int k;

		if (!s)
			return state_errf(e, HPQ_EINVAL, "empty setting %zu", i + 1);
		k = key_parse(s->key);
		if (k < 0)
			return state_errf(e, HPQ_EINVAL, "unknown policy key '%.64s': use "
					  "idle-allocation, half-life, min-runtime, grace, "
					  "max-grace or requeue-order", s->key);
		if (seen[k])
			return state_errf(e, HPQ_EINVAL, "%s is given twice", key_names[k]);
		seen[k] = true;
		r = apply(&next, (enum key)k, s->value, e);
		if (r < 0)
			return r;
	}
	if ((seen[K_GRACE] || seen[K_MAX_GRACE]) && next.grace_s > next.max_grace_s) {
		char g[32], m[32];

		return state_errf(e, HPQ_EINVAL, "grace %s is longer than max-grace %s: the "
				  "default cannot exceed the cap",
				  hpq_format_duration(next.grace_s, g, sizeof(g)),
				  hpq_format_duration(next.max_grace_s, m, sizeof(m)));
	}

	/* Everything checked: apply it whole. */
	st->policy = next;
	sched_set_policy(st->sched, &st->policy.sched);
	msg[0] = '\0';
	for (int k = 0; k < K_COUNT; k++) {
		const char *v;

		if (!seen[k])
			continue;
		v = value_of(&st->policy, (enum key)k, buf, sizeof(buf));
		store_policy_put(st->store, key_names[k], v);
		if (len < sizeof(msg))
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s%s %s",
						len ? ", " : "", key_names[k], v);
	}
	state_event(st, "policy", NULL, NULL, who->user, "%s", msg);
	st->dirty = true;
	return 0;
}

void policy_to_pb(const struct state *st, Hpq__PolicyReply *rep)
{
	const struct state_policy *p = &st->policy;

	hpq__policy_reply__init(rep);
	rep->idle_allocation = (char *)(p->sched.idle == SCHED_IDLE_FCFS ? "fcfs" : "fair-share");
	rep->half_life_s = (uint64_t)p->sched.half_life_ms / 1000;
	rep->min_runtime_s = (uint64_t)p->sched.min_runtime_ms / 1000;
	rep->grace_s = p->grace_s;
	rep->max_grace_s = p->max_grace_s;
	rep->requeue_order = (char *)(p->sched.requeue_by_eviction ? "eviction" : "submit");
}
