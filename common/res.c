/*
 * res.c: the text form of a resource vector, for logs, errors and
 * tables: "8 gpus, 64 cpus, 512G". The arithmetic is inline in res.h.
 */
#include <inttypes.h>
#include <stdio.h>

#include "parse.h"
#include "res.h"

char *hpq_res_format(struct hpq_res r, char *buf, unsigned len)
{
	char mem[32];

	if (len == 0)
		return buf;
	if (r.mem >= 0) {
		hpq_format_size_mib((uint64_t)r.mem, mem, sizeof(mem));
	} else {
		/* Only differences are negative; show them, do not hide them. */
		mem[0] = '-';
		hpq_format_size_mib(-(uint64_t)r.mem, mem + 1, sizeof(mem) - 1);
	}
	snprintf(buf, len, "%" PRId64 " gpu%s, %" PRId64 " cpu%s, %s", r.gpus,
		 r.gpus == 1 ? "" : "s", r.cpus, r.cpus == 1 ? "" : "s", mem);
	return buf;
}
