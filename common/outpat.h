/*
 * outpat.h: the output and error file patterns of a task (submit's
 * -o/--output and -e/--error, sbatch's filename patterns). The client
 * checks them before it sends a request and hpqd checks them again on
 * receipt, with this one function, so both refuse the same patterns with
 * the same words.
 */
#ifndef HPQ_OUTPAT_H
#define HPQ_OUTPAT_H

#include <stddef.h>

/* The longest pattern accepted, in bytes (a path, before expansion). */
#define HPQ_OUTPAT_MAX 1024

/* Checks that pat uses only the escapes hpq expands: %j (task id), %A
 * (array id), %a (array index), %x (task name), %u (user), %N (node
 * name), %t (node rank) and %% (a '%'). An empty pattern is valid (the
 * per-task log). Control characters and patterns over HPQ_OUTPAT_MAX
 * bytes are refused. Returns 0, or HPQ_EINVAL with a message in err that
 * names the offending escape. */
int hpq_outpat_check(const char *pat, char *err, size_t errlen);

#endif
