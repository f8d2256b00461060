/*
 * fuzz_batchspec.c: the batch specs a submit carries are text from any
 * user, checked by the client and again by hpqd: output patterns, array
 * specs, dependency specs and time limits. Each input, as a C string, goes
 * to every checker. They must accept or refuse with words, never crash,
 * read past the string or leave a refusal without a message; an accepted
 * array names at least one index. (The frame seeds shared with the other
 * targets are just text here.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batchspec.h"
#include "error.h"
#include "outpat.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), err[256];
	uint64_t v;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	err[0] = '\0';
	if (hpq_outpat_check(s, err, sizeof(err)) != 0 && !err[0])
		abort();
	err[0] = '\0';
	v = 0;
	if (hpq_array_check(s, &v, err, sizeof(err)) == 0) {
		if (v == 0)
			abort();
	} else if (!err[0]) {
		abort();
	}
	err[0] = '\0';
	if (hpq_dependency_check(s, err, sizeof(err)) != 0 && !err[0])
		abort();
	if (hpq_parse_time_limit(s, &v) == 0 && v > HPQ_TIME_LIMIT_MAX_S)
		abort();
	free(s);
	return 0;
}
