/*
 * logs.c: serves pieces of task output files to hpqd for `hpq logs`
 * (logs.h). The file is <work-dir>/logs/<cluster id>/<task id>.<attempt>.log,
 * one per attempt (exec.c); a read is one pread of at most LOGS_MAX bytes,
 * so a large log never blocks the loop for long and the daemon pages
 * through it. Only files of that exact name are opened: the ids are
 * numbers and the cluster id is hex digits, checked here. A file of
 * another cluster (an earlier database) is never served, nor one moved
 * aside because a restored database named the same run again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "logs.h"
#include "xalloc.h"

#define LOGS_DEFAULT (256u << 10)
#define LOGS_MAX (1u << 20)

void logs_serve(struct agent *a, uint64_t id, const Hpq__LogRequest *req)
{
	Hpq__Envelope env = HPQ__ENVELOPE__INIT;
	Hpq__LogChunk chunk = HPQ__LOG_CHUNK__INIT;
	uint32_t max = req->max ? req->max : LOGS_DEFAULT;
	char path[4096], msg[256];
	struct task *t;
	struct stat sb;
	ssize_t n = 0;
	uint8_t *buf = NULL;
	int fd, err;

	if (!req->task_id || !req->attempt) {
		uplink_reply(&a->uplink, id, HPQ_EINVAL,
			     "log_request needs a task id and an attempt");
		return;
	}
	if (!task_cluster_id_ok(req->cluster_id)) {
		uplink_reply(&a->uplink, id, HPQ_EINVAL,
			     "log_request needs a cluster id of 32 lower-case hex digits");
		return;
	}
	if (max > LOGS_MAX)
		max = LOGS_MAX;
	exec_log_path(a->exec.log_dir, req->cluster_id, req->task_id, req->attempt, path,
		      sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		err = errno;
		snprintf(msg, sizeof(msg), "no output of task %" PRIu64 " attempt %" PRIu32
			 " on %s: %s", req->task_id, req->attempt, a->cfg->name, strerror(err));
		if (fd >= 0)
			close(fd);
		uplink_reply(&a->uplink, id, err == ENOENT ? HPQ_ENOTFOUND : -err, msg);
		return;
	}
	if (req->offset < (uint64_t)sb.st_size) {
		buf = xmalloc(max);
		n = pread(fd, buf, max, (off_t)req->offset);
		if (n < 0)
			n = 0;
	}
	close(fd);
	chunk.data.data = buf;
	chunk.data.len = (size_t)n;
	chunk.offset = req->offset;
	chunk.size = (uint64_t)sb.st_size;
	chunk.node = (char *)a->cfg->name;
	chunk.attempt = req->attempt;
	t = task_find(&a->exec.tasks, req->task_id, req->attempt);
	chunk.running = t && !t->exited;
	env.id = id;
	env.body_case = HPQ__ENVELOPE__BODY_LOG_CHUNK;
	env.log_chunk = &chunk;
	uplink_send(&a->uplink, &env);
	free(buf);
}
