/*
 * monitor-mem.c: the memory pressure monitor (see monitor.h).
 *
 * Pressure stall information is the measure that matters: free memory
 * is always low on a busy Linux machine, but time lost waiting for memory
 * (reclaim, swap, thrashing) is what slows tasks down. avg10 reacts
 * within seconds, which suits a check that runs once a minute. Kernels
 * without PSI (or booted with psi=0, where the file exists and reading it
 * fails) fall back to MemAvailable, the kernel's estimate of what can be
 * had without swapping.
 *
 * Both files are in procfs and read in the loop: they never block.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "monitor.h"
#include "xalloc.h"

#define MEM_FILE_MAX (64u << 10)

/* The value after "key" at the start of a line of text. */
static const char *mem_field(const char *text, const char *key)
{
	size_t n = strlen(key);
	const char *line = text;

	while (line && *line) {
		if (strncmp(line, key, n) == 0)
			return line + n;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return NULL;
}

int monitor_mem_parse_psi(const char *text, double *ret_some_avg10)
{
	const char *v = mem_field(text, "some avg10=");
	char *end;
	double d;

	if (!v || *v < '0' || *v > '9')
		return HPQ_EINVAL;
	errno = 0;
	d = strtod(v, &end);
	if (errno || (*end != ' ' && *end != '\n' && *end != '\0') || d < 0 || d > 100)
		return HPQ_EINVAL;
	*ret_some_avg10 = d;
	return 0;
}

static int mem_kib(const char *text, const char *key, uint64_t *ret)
{
	const char *v = mem_field(text, key);
	char *end;
	unsigned long long k;

	if (!v)
		return HPQ_EINVAL;
	v += strspn(v, " \t");
	if (*v < '0' || *v > '9')
		return HPQ_EINVAL;
	errno = 0;
	k = strtoull(v, &end, 10);
	if (errno || strncmp(end, " kB", 3) != 0)
		return HPQ_EINVAL;
	*ret = k;
	return 0;
}

int monitor_mem_parse_meminfo(const char *text, uint64_t *ret_available, uint64_t *ret_total)
{
	uint64_t avail, total;

	if (mem_kib(text, "MemAvailable:", &avail) < 0 || mem_kib(text, "MemTotal:", &total) < 0 ||
	    total == 0)
		return HPQ_EINVAL;
	*ret_available = avail;
	*ret_total = total;
	return 0;
}

void monitor_mem_check(struct health_source *src, const char *psi, const char *meminfo,
		       unsigned pressure)
{
	uint64_t avail, total;
	double some, pct;

	if (psi && monitor_mem_parse_psi(psi, &some) == 0) {
		if (pressure && some >= pressure)
			health_see(src, HEALTH_KERNEL, "memory-pressure", HEALTH_WARNING, NULL,
				   "tasks waited for memory %.0f%% of the last 10 s "
				   "(warning at %u%%)", some, pressure);
		return;
	}
	if (!meminfo || monitor_mem_parse_meminfo(meminfo, &avail, &total) < 0)
		return;
	pct = 100.0 * (double)avail / (double)total;
	if (pct < MONITOR_MEM_AVAILABLE_MIN)
		health_see(src, HEALTH_KERNEL, "memory-pressure", HEALTH_WARNING, NULL,
			   "%.1f%% of memory available (%llu of %llu MiB; warning below %d%%)", pct,
			   (unsigned long long)(avail / 1024), (unsigned long long)(total / 1024),
			   MONITOR_MEM_AVAILABLE_MIN);
}

/* ------------------------------------------------------------ monitor */

struct mem_state {
	struct health *h;
	struct health_source *src;
	bool no_psi;                /* the PSI file failed once: don't try again */
};

static void mem_run(void *state)
{
	struct mem_state *st = state;
	const struct health_config *cfg = &st->h->cfg;
	char *psi = NULL, *meminfo = NULL;

	if (!st->no_psi &&
	    health_read_file(cfg->psi_path ? cfg->psi_path : "/proc/pressure/memory", MEM_FILE_MAX,
			     &psi) < 0)
		st->no_psi = true;
	if (!psi)
		(void)health_read_file(cfg->meminfo_path ? cfg->meminfo_path : "/proc/meminfo",
				       MEM_FILE_MAX, &meminfo);
	monitor_mem_check(st->src, psi, meminfo, cfg->memory_pressure);
	free(psi);
	free(meminfo);
	health_done(st->src);
}

static int mem_init(struct health *h, struct health_source *src, void **ret_state)
{
	struct mem_state *st;

	if (!h->cfg.memory_pressure)
		return 1;
	st = xcalloc(1, sizeof(*st));
	st->h = h;
	st->src = src;
	*ret_state = st;
	return 0;
}

static void mem_release(void *state)
{
	free(state);
}

const struct monitor monitor_mem = {
	.name = "memory",
	.init = mem_init,
	.run = mem_run,
	.release = mem_release,
};
