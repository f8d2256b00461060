/*
 * capacity.h: what this node offers: GPUs (the lines of `nvidia-smi -L`
 * when the tool exists), CPUs (online processors) and memory (MemTotal of
 * /proc/meminfo). Configured values (--gpus, --cpus, --mem) replace what
 * is detected, one resource at a time. The parsers are separate from the
 * probing so that tests can feed them samples.
 */
#ifndef HPQ_AGENT_CAPACITY_H
#define HPQ_AGENT_CAPACITY_H

#include <stdint.h>

#include "res.h"

/* MemTotal of a /proc/meminfo text, in MiB (rounded down). Returns 0 or HPQ_EINVAL. */
int capacity_parse_meminfo(const char *text, uint64_t *ret_mib);

/* Number of "GPU <n>: ..." lines in `nvidia-smi -L` output. */
uint32_t capacity_count_gpus(const char *text);

/*
 * Detects the node's resources. A component of `given` that is >= 0
 * replaces the detected value (and its probe is skipped). Returns 0, or a
 * negative code if something that was not given could not be detected
 * (memory without /proc/meminfo); nvidia-smi missing means 0 GPUs.
 */
int capacity_detect(struct hpq_res given, struct hpq_res *ret);

#endif
