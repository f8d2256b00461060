/*
 * monitor-clock.c: the clock offset monitor (see monitor.h).
 *
 * hpqd orders events and judges heartbeats and time limits by its own
 * clock, and tasks compare timestamps across nodes; a node whose clock
 * is off by seconds (NTP broken) or minutes (no NTP at all) makes all of
 * that wrong. The measurement itself is the upuplink's (uplink_clock_offset);
 * this monitor only judges it, each round, so a clock stepped between
 * registrations is caught within a round too.
 */
#include <stdlib.h>

#include "monitor.h"
#include "uplink.h"
#include "xalloc.h"

void monitor_clock_check(struct health_source *src, int64_t offset_ms, int64_t err_ms,
			 double warning, double fatal)
{
	int64_t beyond = llabs(offset_ms) - err_ms; /* what the measurement cannot explain */
	const char *side = offset_ms > 0 ? "behind" : "ahead of";
	double off = (double)llabs(offset_ms) / 1000.0, err = (double)err_ms / 1000.0;

	if (fatal > 0 && (double)beyond > fatal * 1000.0)
		health_see(src, HEALTH_RUNTIME, "clock-offset", HEALTH_FATAL, NULL,
			   "this node's clock is %.3f s %s hpqd's (+-%.3f s; fatal above "
			   "%.0f s); check NTP", off, side, err, fatal);
	else if (warning > 0 && (double)beyond > warning * 1000.0)
		health_see(src, HEALTH_RUNTIME, "clock-offset", HEALTH_WARNING, NULL,
			   "this node's clock is %.3f s %s hpqd's (+-%.3f s; warning above "
			   "%.0f s); check NTP", off, side, err, warning);
}

struct clock_state {
	struct health *h;
	struct health_source *src;
};

static void clock_run(void *state)
{
	struct clock_state *st = state;
	int64_t offset, err;

	if (uplink_clock_offset(st->h->cfg.uplink, &offset, &err))
		monitor_clock_check(st->src, offset, err, st->h->cfg.clock_warning,
				    st->h->cfg.clock_fatal);
	health_done(st->src);
}

static int clock_init(struct health *h, struct health_source *src, void **ret_state)
{
	struct clock_state *st;

	if (!h->cfg.uplink || (h->cfg.clock_warning <= 0 && h->cfg.clock_fatal <= 0))
		return 1;
	st = xcalloc(1, sizeof(*st));
	st->h = h;
	st->src = src;
	*ret_state = st;
	return 0;
}

static void clock_release(void *state)
{
	free(state);
}

const struct monitor monitor_clock = {
	.name = "clock",
	.init = clock_init,
	.run = clock_run,
	.release = clock_release,
};
