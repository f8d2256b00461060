/*
 * batchspec.c: array and dependency spec syntax (batchspec.h). Numbers
 * are read digit by digit with an explicit bound, never with strtoul,
 * which would take signs and blanks.
 */
#include <stdbool.h>
#include <string.h>

#include "batchspec.h"
#include "error.h"
#include "parse.h"

/* A decimal number at *sp, at most max; advances *sp. */
static int bs_number(const char **sp, uint64_t max, uint64_t *ret)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return HPQ_EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (max - d) / 10)
			return HPQ_EINVAL; /* checked before v * 10 can wrap */
		v = v * 10 + d;
	}
	*sp = s;
	*ret = v;
	return 0;
}

/* A number of an index list, UINT64_MAX past it: too large for any
 * bound, which is the caller's to say. */
static int range_number(const char **sp, uint64_t *ret)
{
	if (bs_number(sp, UINT64_MAX, ret) == 0)
		return 0;
	if (**sp < '0' || **sp > '9')
		return HPQ_EINVAL;
	while (**sp >= '0' && **sp <= '9')
		++*sp;
	*ret = UINT64_MAX;
	return 0;
}

int hpq_index_range_read(const char **p, struct hpq_index_range *r)
{
	r->step = 1;
	if (range_number(p, &r->lo) < 0)
		return HPQ_EINVAL;
	r->hi = r->lo;
	if (**p == '-' && (++*p, range_number(p, &r->hi) < 0))
		return HPQ_EINVAL;
	if (**p == ':' && (++*p, range_number(p, &r->step) < 0))
		return HPQ_EINVAL;
	return 0;
}

bool hpq_index_list_has(const char *list, uint64_t idx)
{
	struct hpq_index_range r;

	for (const char *p = list; hpq_index_range_read(&p, &r) == 0; p++) {
		if (r.step && idx >= r.lo && idx <= r.hi && (idx - r.lo) % r.step == 0)
			return true;
		if (*p != ',')
			break;
	}
	return false;
}

int hpq_array_check(const char *spec, uint64_t *ret_count, char *err, size_t errlen)
{
	const char *s = spec;
	uint64_t count = 0, limit;

	if (spec[0] == '\0')
		return hpq_errf(err, errlen, HPQ_EINVAL, "--array needs indices, e.g. 0-99 or "
				"1,3,5-9:2");
	if (strlen(spec) > HPQ_ARRAY_SPEC_MAX)
		return hpq_errf(err, errlen, HPQ_EINVAL, "--array spec is longer than %d bytes",
				HPQ_ARRAY_SPEC_MAX);
	for (;;) {
		const char *item = s;
		struct hpq_index_range r;

		if (hpq_index_range_read(&s, &r) < 0 || r.lo > HPQ_ARRAY_INDEX_MAX ||
		    r.hi > HPQ_ARRAY_INDEX_MAX)
			goto bad_index;
		if (r.hi < r.lo)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--array range '%.*s' ends before it starts",
					(int)(s - item), item);
		if (r.step == 0 || r.step > HPQ_ARRAY_INDEX_MAX)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--array '%s': a step is a whole number from 1 to %u",
					spec, HPQ_ARRAY_INDEX_MAX);
		count += (r.hi - r.lo) / r.step + 1;
		if (*s != ',')
			break;
		s++;
	}
	/* The limit is read as hpqd reads it (array.c). */
	if (*s == '%') {
		if (hpq_parse_uint(s + 1, 1, HPQ_ARRAY_COUNT_MAX, &limit) < 0)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--array '%s': the limit after '%%' is how many indices "
					"may run at once, a whole number from 1 to %u", spec,
					HPQ_ARRAY_COUNT_MAX);
	} else if (*s != '\0') {
		return hpq_errf(err, errlen, HPQ_EINVAL,
				"--array '%s': unexpected '%c'; write indices as N, N-M or "
				"N-M:STEP, separated by commas, then %%LIMIT if any", spec, *s);
	}
	if (ret_count)
		*ret_count = count;
	return 0;
bad_index:
	return hpq_errf(err, errlen, HPQ_EINVAL,
			"--array '%s': indices are whole numbers from 0 to %u, written N, N-M "
			"or N-M:STEP and separated by commas", spec, HPQ_ARRAY_INDEX_MAX);
}

/* One task reference of a dependency: ID or ID_INDEX, ending at a ':',
 * ',' '?' or the end. */
static bool bs_task_ref(const char **sp)
{
	uint64_t v;

	if (bs_number(sp, INT64_MAX, &v) < 0 || v == 0)
		return false;
	if (**sp == '_') {
		(*sp)++;
		if (bs_number(sp, HPQ_ARRAY_INDEX_MAX, &v) < 0)
			return false;
	}
	return **sp == '\0' || **sp == ':' || **sp == ',' || **sp == '?';
}

int hpq_dependency_check(const char *spec, char *err, size_t errlen)
{
	static const char *const types[] = {"afterok", "afternotok", "afterany", "after"};
	const char *s = spec;
	char sep = 0;

	if (spec[0] == '\0')
		return hpq_errf(err, errlen, HPQ_EINVAL, "--dependency needs a condition, "
				"e.g. afterok:12");
	if (strlen(spec) > HPQ_DEPENDENCY_MAX)
		return hpq_errf(err, errlen, HPQ_EINVAL, "--dependency is longer than %d bytes",
				HPQ_DEPENDENCY_MAX);
	for (;;) {
		size_t n = strcspn(s, ":,?");
		size_t t;

		if (n == strlen("singleton") && strncmp(s, "singleton", n) == 0 && s[n] != ':') {
			s += n;
		} else {
			for (t = 0; t < sizeof(types) / sizeof(types[0]); t++)
				if (strlen(types[t]) == n && strncmp(s, types[t], n) == 0)
					break;
			if (t == sizeof(types) / sizeof(types[0]))
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"--dependency '%s': unknown condition '%.*s'; "
						"use after, afterok, afternotok, afterany or "
						"singleton", spec, (int)n, s);
			s += n;
			if (*s != ':')
				return hpq_errf(err, errlen, HPQ_EINVAL,
						"--dependency '%s': '%.*s' needs task ids, e.g. "
						"%.*s:12", spec, (int)n, s - n, (int)n, s - n);
			while (*s == ':') {
				const char *id = ++s;

				if (!bs_task_ref(&s)) {
					size_t m = strcspn(id, ":,?");

					if (memchr(id, '+', m))
						return hpq_errf(err, errlen, HPQ_EINVAL,
								"--dependency '%s': delays "
								"('+MINUTES') are not supported",
								spec);
					return hpq_errf(err, errlen, HPQ_EINVAL,
							"--dependency '%s': '%.*s' is not a task "
							"id (12) or array index (12_5)", spec,
							(int)m, id);
				}
			}
		}
		if (*s == '\0')
			return 0;
		if (sep && *s != sep)
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--dependency '%s': use ',' (all of) or '?' (any of), "
					"not both", spec);
		sep = *s++;
		if (*s == '\0')
			return hpq_errf(err, errlen, HPQ_EINVAL,
					"--dependency '%s' ends with '%c'", spec, sep);
	}
}
