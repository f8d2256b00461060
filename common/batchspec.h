/*
 * batchspec.h: the syntax of a task's array and dependency specs, as
 * submit's --array and --dependency (and sbatch's) write them. The client
 * checks a spec before it sends it and hpqd can call the same functions,
 * so a typo is refused with the same words on both sides. Whether the
 * tasks named in a dependency exist is hpqd's to know.
 */
#ifndef HPQ_BATCHSPEC_H
#define HPQ_BATCHSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one array may be: indices 0..HPQ_ARRAY_INDEX_MAX, at most
 * HPQ_ARRAY_COUNT_MAX of them (hpqd counts them); and the longest spec
 * strings, in bytes. */
#define HPQ_ARRAY_INDEX_MAX 4000000u
#define HPQ_ARRAY_COUNT_MAX 1000000u
#define HPQ_ARRAY_SPEC_MAX 4096
#define HPQ_DEPENDENCY_MAX 4096

/*
 * The index lists of task arrays: terms N, N-M or N-M:STEP separated by
 * commas ("0-99", "1,5,7-9:2"), as --array takes them (before its
 * %LIMIT), as hpq list writes an array's pending rest (12_[5-99:2]) and
 * as hpqd keeps an array's indices. The one reader of them, in hpq and in
 * hpqd; what a term may hold (bounds, order, a step of 0) is each
 * caller's to check.
 */
struct hpq_index_range {
	uint64_t lo, hi;             /* hi is lo for a term N */
	uint64_t step;               /* 1 without :STEP */
};

/* Reads the term at *p into r and moves *p past it, to the ',' before
 * the next term or whatever else follows. Returns 0, or HPQ_EINVAL where
 * a number is missing (*p and r are then undefined). A number past
 * UINT64_MAX reads as UINT64_MAX, for the caller's bound to refuse. A
 * step after a single index (N:STEP) is read, as hpqd always has: N. */
int hpq_index_range_read(const char **p, struct hpq_index_range *r);

/* Whether index idx is in the list at list: its terms, up to its end or
 * the first text that continues none ("%50"). A step of 0 holds nothing;
 * a list that cannot be read holds what its terms before that hold. */
bool hpq_index_list_has(const char *list, uint64_t idx);

/* An array spec: a comma-separated list of N, N-M and N-M:STEP (N <= M,
 * STEP >= 1, indices 0..HPQ_ARRAY_INDEX_MAX), optionally followed by
 * %LIMIT (1..HPQ_ARRAY_COUNT_MAX), how many indices may run at once:
 * "0-999%50", "1,3,5-9:2". Returns 0 and, where ret_count is set, the number of
 * indices the list names (an index listed twice counts twice); or
 * HPQ_EINVAL with a message in err. */
int hpq_array_check(const char *spec, uint64_t *ret_count, char *err, size_t errlen);

/* A dependency spec: "singleton", or TYPE:ID[:ID...] with TYPE one of
 * after, afterok, afternotok, afterany and ID a task id (12) or an array
 * index (12_5); several joined by ',' (all must hold) or by '?' (any one
 * is enough), never both. Returns 0, or HPQ_EINVAL with a message in err. */
int hpq_dependency_check(const char *spec, char *err, size_t errlen);

#endif
