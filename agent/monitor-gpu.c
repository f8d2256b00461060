/*
 * monitor-gpu.c: the GPU monitor (see monitor.h).
 *
 * One nvidia-smi query per round, in a probe, gives one line per GPU the
 * driver can reach, with its uncorrected ECC count since the driver
 * loaded ("0, 00000000:3B:00.0, 0"; "[N/A]" where ECC is off). Fewer
 * lines than the GPUs the node offers means GPUs went missing; a count
 * above zero is a double-bit error the GPU could not correct. A GPU that
 * has fallen off the bus makes nvidia-smi say "GPU is lost". nvidia-smi
 * failing or hanging means the driver cannot be trusted either. All of
 * these are fatal, and a reboot (which resets the GPUs and reloads the
 * driver) is what fixes them when anything short of new hardware does.
 *
 * XID errors are in the kernel log and belong to monitor-kmsg.c. Nodes
 * without nvidia-smi have nothing to watch here, whatever --gpus says.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "error.h"
#include "log.h"
#include "monitor.h"
#include "probe.h"
#include "xalloc.h"

#define GPU_OUTPUT_MAX (256u << 10)

/* Trims blanks at both ends, in place. */
static char *gpu_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* The first line of text containing needle, cut to len - 1 bytes. */
static void gpu_line_with(const char *text, const char *needle, char *buf, size_t len)
{
	const char *hit = strstr(text, needle), *start = hit, *end;

	while (start > text && start[-1] != '\n')
		start--;
	end = hit + strcspn(hit, "\n");
	snprintf(buf, len, "%.*s", (int)(end - start), start);
}

void monitor_gpu_check(struct health_source *src, uint32_t expected, bool timed_out, int status,
		       const char *output)
{
	char *copy, *line, *next, first[200], dbe[600] = "";
	const char *lost_word = strstr(output, "GPU is lost") ? "GPU is lost" :
				strstr(output, "fallen off the bus") ? "fallen off the bus" : NULL;
	uint32_t seen = 0;
	size_t used = 0;

	if (timed_out) {
		health_see(src, HEALTH_ACCELERATOR, "nvidia-smi-timeout", HEALTH_FATAL, "reboot",
			   "nvidia-smi did not finish in time; the GPU driver may be hung");
		return;
	}
	if (lost_word) {
		gpu_line_with(output, lost_word, first, sizeof(first));
		health_see(src, HEALTH_ACCELERATOR, "gpu-fallen-off-bus", HEALTH_FATAL, "reboot",
			   "nvidia-smi: %s", first);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (lost_word)
			return;
		snprintf(first, sizeof(first), "%.*s", (int)strcspn(output, "\n"), output);
		if (WIFEXITED(status))
			health_see(src, HEALTH_ACCELERATOR, "nvidia-smi-failed", HEALTH_FATAL,
				   "reboot", "nvidia-smi exited %d: %s", WEXITSTATUS(status),
				   first[0] ? gpu_trim(first) : "no output");
		else
			health_see(src, HEALTH_ACCELERATOR, "nvidia-smi-failed", HEALTH_FATAL,
				   "reboot", "nvidia-smi was killed by signal %d",
				   WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		return;
	}

	copy = xstrdup(output);
	for (line = copy; line && *line; line = next) {
		char *fields[3], *save = NULL, *end;
		unsigned long long ecc;
		int n = 0;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		for (char *fl = strtok_r(line, ",", &save); fl && n < 3;
		     fl = strtok_r(NULL, ",", &save))
			fields[n++] = gpu_trim(fl);
		if (n < 1 || !isdigit((unsigned char)fields[0][0]))
			continue; /* not a GPU line: an error about one, say */
		seen++;
		if (n < 3 || !isdigit((unsigned char)fields[2][0]))
			continue; /* [N/A]: ECC off or not supported */
		errno = 0;
		ecc = strtoull(fields[2], &end, 10);
		if (errno || *end || ecc == 0)
			continue;
		if (used < sizeof(dbe))
			used += (size_t)snprintf(dbe + used, sizeof(dbe) - used,
						 "%sGPU %s (%s): %llu", used ? ", " : "",
						 fields[0], fields[1], ecc);
	}
	free(copy);

	if (seen < expected)
		health_see(src, HEALTH_ACCELERATOR, "gpu-missing", HEALTH_FATAL, "reboot",
			   "nvidia-smi shows %u of the %u GPUs this node offers", seen, expected);
	if (dbe[0])
		health_see(src, HEALTH_ACCELERATOR, "gpu-ecc-dbe", HEALTH_FATAL, "reboot",
			   "uncorrected ECC errors since the driver loaded: %s", dbe);
}

/* ------------------------------------------------------------ monitor */

struct gpu_state {
	struct health *h;
	struct health_source *src;
	struct probe probe;
	char *tool;                 /* nvidia-smi's path, found at start */
};

static void gpu_done(struct probe *p)
{
	struct gpu_state *st = p->data;

	monitor_gpu_check(st->src, st->h->cfg.gpus, p->timed_out, p->status, p->out);
	health_done(st->src);
}

static void gpu_run(void *state)
{
	struct gpu_state *st = state;
	char *argv[] = {st->tool, MONITOR_GPU_QUERY, "--format=csv,noheader", NULL};
	int r;

	if (probe_busy(&st->probe)) {
		if (st->probe.running)
			return; /* within its timeout still: its end closes the round */
		/* Killed at its timeout and not gone yet: still hung. */
		monitor_gpu_check(st->src, st->h->cfg.gpus, true, 0, "");
		health_done(st->src);
		return;
	}
	r = probe_spawn(&st->probe, argv, st->h->cfg.timeout);
	if (r < 0) {
		health_see(st->src, HEALTH_AGENT, "probe-failed", HEALTH_WARNING, NULL,
			   "cannot run nvidia-smi: %s", hpq_strerror(r));
		health_done(st->src);
	}
}

static int gpu_init(struct health *h, struct health_source *src, void **ret_state)
{
	char *tool = probe_which("nvidia-smi");
	struct gpu_state *st;

	if (!tool)
		return 1;
	st = xcalloc(1, sizeof(*st));
	st->tool = tool;
	st->h = h;
	st->src = src;
	probe_init(&st->probe, h->loop, GPU_OUTPUT_MAX, gpu_done, st);
	*ret_state = st;
	return 0;
}

static void gpu_release(void *state)
{
	struct gpu_state *st = state;

	probe_release(&st->probe);
	free(st->tool);
	free(st);
}

const struct monitor monitor_gpu = {
	.name = "gpu",
	.init = gpu_init,
	.run = gpu_run,
	.release = gpu_release,
};
