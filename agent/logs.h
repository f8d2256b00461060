/*
 * logs.h: the agent's side of `hpq logs`: answers hpqd's LogRequest with
 * a LogChunk of the task's output file (or an Error).
 */
#ifndef HPQ_AGENT_LOGS_H
#define HPQ_AGENT_LOGS_H

#include <stdint.h>

#include "agent.h"
#include "hpq.pb-c.h"

void logs_serve(struct agent *a, uint64_t id, const Hpq__LogRequest *req);

#endif
