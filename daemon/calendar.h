/*
 * calendar.h: one pool's capacity calendar for training plans, a pure
 * module (no I/O, no clock: time is an argument, in whatever unit the
 * caller uses; the daemon uses milliseconds, the tests seconds).
 *
 * It holds the pool's whole nodes, each team's guarantee in whole nodes,
 * how many nodes may be reserved at once (`[plans] reservable`), and the
 * reservations themselves: the segments of plans, each on concrete nodes
 * for a half-open interval [start, end). Two rules hold at every instant t:
 *
 *   - no node is in two segments (no node-hour is booked twice);
 *   - reserved(t) <= reservable, and
 *     sum over teams U of max(guarantee(U), reserved_by(U, t)) <= nodes:
 *     a team's own reservations count towards its guarantee, and whatever
 *     is reserved beyond a guarantee comes out of the unguaranteed rest,
 *     so no plan makes any team's guarantee unmeetable.
 *
 * calendar_search finds where a new plan fits: up to max_segments
 * segments of nnodes nodes whose lengths add up to the duration, each at
 * least min_segment long, ranked by finish time then number of breaks.
 * Its cost grows with the reservations and nodes it has to look at before
 * it finds an answer (docs/plans.md, "Search").
 */
#ifndef HPQ_CALENDAR_H
#define HPQ_CALENDAR_H

#include <stddef.h>
#include <stdint.h>

#define CALENDAR_MAX_SEGMENTS 5
#define CALENDAR_FOREVER INT64_MAX

struct calendar;

/* One segment: [start, end) on nnodes nodes (the caller's node ids). */
struct calendar_segment {
	int64_t start, end;
	uint32_t nnodes;
	uint32_t *nodes;
};

/* A way to fit a plan: segments in time order, earliest first. */
struct calendar_offer {
	int64_t finish;                  /* end of the last segment */
	uint32_t nsegments;              /* breaks = nsegments - 1 */
	struct calendar_segment segments[CALENDAR_MAX_SEGMENTS];
};

struct calendar_query {
	uint32_t team;
	uint32_t nnodes;
	int64_t duration;                /* total across the segments, > 0 */
	int64_t after;                   /* earliest start */
	int64_t before;                  /* latest end; CALENDAR_FOREVER for none */
	uint32_t max_segments;           /* 1..CALENDAR_MAX_SEGMENTS */
	int64_t min_segment;             /* 0: any length */
	uint32_t max_offers;             /* how many offerings at most (>= 1) */
};

struct calendar *calendar_new(void);
void calendar_free(struct calendar *c);

/* Nodes of the pool. Ids are the caller's, small and dense enough to index
 * an array. Removing a node that has reservations ending after `now` is
 * HPQ_EBUSY (the caller cancels or moves those plans first). */
int calendar_node_add(struct calendar *c, uint32_t node);
int calendar_node_remove(struct calendar *c, uint32_t node, int64_t now);
uint32_t calendar_nodes(const struct calendar *c);
/* How messages name a node (the caller's names); without it, by number.
 * fn returns a string valid until the next call. */
typedef const char *(*calendar_namer)(void *ctx, uint32_t node);
void calendar_set_namer(struct calendar *c, calendar_namer fn, void *ctx);

/* How many nodes may be reserved at any one time; UINT32_MAX: all. */
void calendar_set_reservable(struct calendar *c, uint32_t nodes);
/* A team's guarantee in this pool, in whole nodes (0: none). */
void calendar_set_guarantee(struct calendar *c, uint32_t team, uint32_t nodes);

/*
 * Checks that segments fit for team (every rule above) and changes
 * nothing. 0, or HPQ_EINVAL (malformed: an empty or reversed interval,
 * unknown or repeated nodes, overlapping segments) or HPQ_EBUSY (the
 * capacity is taken), with a message in err.
 */
int calendar_check(const struct calendar *c, uint32_t team, const struct calendar_segment *segs,
		   uint32_t nsegs, char *err, size_t errlen);

/*
 * Reserves segments for reservation id (a plan), all or nothing, after
 * calendar_check. With force, only the form and the nodes are checked,
 * not the counting rules nor whether id is new: a plan loaded at start
 * stays even if the settings shrank since it was made. Otherwise
 * HPQ_EEXIST if id already holds segments.
 */
int calendar_reserve(struct calendar *c, uint64_t id, uint32_t team,
		     const struct calendar_segment *segs, uint32_t nsegs, int force, char *err,
		     size_t errlen);
/* Gives back what id holds at or after `from` (a segment under way is cut
 * there; INT64_MIN gives back everything). Returns how many segments were
 * removed or cut. */
int calendar_release(struct calendar *c, uint64_t id, int64_t from);
/* Forgets every segment that ended at or before `until` (the past). */
void calendar_prune(struct calendar *c, int64_t until);

/*
 * Finds up to q->max_offers ways to fit q, earliest finish first (then
 * fewer breaks, then earlier start). *ret is an array the caller frees
 * with calendar_offers_free. Returns the number of offers (0: nothing fits
 * before q->before), or HPQ_EINVAL for a malformed query, with a message.
 */
int calendar_search(const struct calendar *c, const struct calendar_query *q,
		    struct calendar_offer **ret, char *err, size_t errlen);
void calendar_offers_free(struct calendar_offer *offers, int n);

/* Nodes team may still reserve over all of [start, end) under the
 * counting rules (not counting which nodes are free). */
uint32_t calendar_headroom(const struct calendar *c, uint32_t team, int64_t start, int64_t end);

#endif
