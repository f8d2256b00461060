/*
 * capacity.c: detection of the node's GPUs, CPUs and memory at start.
 *
 * nvidia-smi is run once, at start, before the event loop, through
 * popen(): it is the one portable way to count NVIDIA GPUs without linking
 * NVML, and its `-L` output is one line per GPU. The agent does not link
 * any vendor library; a node without the tool simply has no GPUs unless
 * --gpus says otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capacity.h"
#include "error.h"
#include "xalloc.h"

int capacity_parse_meminfo(const char *text, uint64_t *ret_mib)
{
	const char *line = text;

	while (line && *line) {
		if (strncmp(line, "MemTotal:", 9) == 0) {
			char *end;
			unsigned long long kib;
			const char *s = line + 9;

			while (*s == ' ' || *s == '\t')
				s++;
			if (*s < '0' || *s > '9')
				return HPQ_EINVAL;
			errno = 0;
			kib = strtoull(s, &end, 10);
			if (errno)
				return HPQ_EINVAL;
			while (*end == ' ' || *end == '\t')
				end++;
			if (strncmp(end, "kB", 2) != 0)
				return HPQ_EINVAL;
			*ret_mib = kib / 1024;
			return 0;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return HPQ_EINVAL;
}

uint32_t capacity_count_gpus(const char *text)
{
	const char *line = text;
	uint32_t n = 0;

	while (line && *line) {
		unsigned idx;
		char colon;

		if (sscanf(line, "GPU %u%c", &idx, &colon) == 2 && colon == ':')
			n++;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return n;
}

/* Reads a small text file (at most 64 KiB) into a NUL-terminated buffer. */
static int capacity_read(const char *path, char **ret)
{
	size_t cap = 65536, len = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	buf = xmalloc(cap);
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;

			free(buf);
			close(fd);
			return e;
		}
		if (n == 0 || (len += (size_t)n) == cap - 1)
			break;
	}
	close(fd);
	buf[len] = '\0';
	*ret = buf;
	return 0;
}

/* Is there an executable `name` in $PATH? Avoids a shell error for a missing tool. */
static int capacity_have_tool(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	int found = 0;

	copy = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		char *full;

		xasprintf(&full, "%s/%s", dir, name);
		found = access(full, X_OK) == 0;
		free(full);
	}
	free(copy);
	return found;
}

static uint32_t capacity_detect_gpus(void)
{
	char buf[4096], *text = xstrdup("");
	uint32_t n;
	FILE *p;

	if (!capacity_have_tool("nvidia-smi")) {
		free(text);
		return 0;
	}
	p = popen("nvidia-smi -L 2>/dev/null", "re");
	if (!p) {
		free(text);
		return 0;
	}
	while (fgets(buf, sizeof(buf), p)) {
		char *joined;

		xasprintf(&joined, "%s%s", text, buf);
		free(text);
		text = joined;
	}
	/* A failing nvidia-smi (driver gone) counts what it printed: normally nothing. */
	pclose(p);
	n = capacity_count_gpus(text);
	free(text);
	return n;
}

int capacity_detect(struct hpq_res given, struct hpq_res *ret)
{
	struct hpq_res r = given;

	if (r.gpus < 0)
		r.gpus = capacity_detect_gpus();
	if (r.cpus < 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		r.cpus = n > 0 ? n : 1;
	}
	if (r.mem < 0) {
		char *text = NULL;
		uint64_t mib;
		int e = capacity_read("/proc/meminfo", &text);

		if (e < 0)
			return e;
		e = capacity_parse_meminfo(text, &mib);
		free(text);
		if (e < 0)
			return e;
		r.mem = (int64_t)mib;
	}
	*ret = r;
	return 0;
}
