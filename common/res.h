/*
 * res.h: resource vectors (gpus, cpus, mem in MiB) and their arithmetic.
 * Every comparison of capacity, request, guarantee and usage goes through
 * these, so the meaning of "fits" is written once. Values are signed so
 * that differences can be formed without wrapping; valid vectors are >= 0.
 */
#ifndef HPQ_RES_H
#define HPQ_RES_H

#include <stdbool.h>
#include <stdint.h>

struct hpq_res {
	int64_t gpus;
	int64_t cpus;
	int64_t mem; /* MiB */
};

#define HPQ_RES_ZERO ((struct hpq_res){0, 0, 0})

static inline struct hpq_res hpq_res_add(struct hpq_res a, struct hpq_res b)
{
	return (struct hpq_res){a.gpus + b.gpus, a.cpus + b.cpus, a.mem + b.mem};
}

static inline struct hpq_res hpq_res_sub(struct hpq_res a, struct hpq_res b)
{
	return (struct hpq_res){a.gpus - b.gpus, a.cpus - b.cpus, a.mem - b.mem};
}

static inline struct hpq_res hpq_res_scale(struct hpq_res a, int64_t k)
{
	return (struct hpq_res){a.gpus * k, a.cpus * k, a.mem * k};
}

static inline int64_t hpq__max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t hpq__min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Component-wise max(a - b, 0). */
static inline struct hpq_res hpq_res_sub_floor(struct hpq_res a, struct hpq_res b)
{
	return (struct hpq_res){hpq__max64(a.gpus - b.gpus, 0), hpq__max64(a.cpus - b.cpus, 0),
				hpq__max64(a.mem - b.mem, 0)};
}

static inline struct hpq_res hpq_res_min(struct hpq_res a, struct hpq_res b)
{
	return (struct hpq_res){hpq__min64(a.gpus, b.gpus), hpq__min64(a.cpus, b.cpus),
				hpq__min64(a.mem, b.mem)};
}

static inline struct hpq_res hpq_res_max(struct hpq_res a, struct hpq_res b)
{
	return (struct hpq_res){hpq__max64(a.gpus, b.gpus), hpq__max64(a.cpus, b.cpus),
				hpq__max64(a.mem, b.mem)};
}

/* a <= b in every component: a request of a fits into b. */
static inline bool hpq_res_fits(struct hpq_res a, struct hpq_res b)
{
	return a.gpus <= b.gpus && a.cpus <= b.cpus && a.mem <= b.mem;
}

static inline bool hpq_res_is_zero(struct hpq_res a)
{
	return a.gpus == 0 && a.cpus == 0 && a.mem == 0;
}

static inline bool hpq_res_eq(struct hpq_res a, struct hpq_res b)
{
	return a.gpus == b.gpus && a.cpus == b.cpus && a.mem == b.mem;
}

/* Formats "8 gpus, 64 cpus, 512G" style text into buf; returns buf. */
char *hpq_res_format(struct hpq_res r, char *buf, unsigned len);

#endif
