/*
 * logs.h: `hpq logs`: the daemon relays a client's LogRequest to the agent
 * of the node that ran the task (which keeps the output file) and the
 * agent's LogChunk back. Requests to agents carry ids with LOGS_ID_BIT
 * set, so their replies are told apart from the acknowledgements of
 * RunTask and KillTask. A request the agent does not answer within
 * LOGS_TIMEOUT_MS, or whose agent goes away, gets an Error.
 */
#ifndef HPQD_LOGS_H
#define HPQD_LOGS_H

#include <stdbool.h>
#include <stdint.h>

#include "hpq.pb-c.h"
#include "state.h"

struct conn;
struct hpqd;
struct logs;

#define LOGS_ID_BIT ((uint64_t)1 << 62)
#define LOGS_TIMEOUT_MS 10000

int logs_init(struct hpqd *d);
void logs_close(struct hpqd *d);

/* Asks agent for max bytes at offset of the output of task_id's attempt,
 * on behalf of client's request id; the answer, or an Error, goes to the
 * client. */
void logs_relay(struct logs *lg, struct conn *client, uint64_t id, uint64_t task_id,
		uint32_t attempt, struct conn *agent, uint64_t offset, uint32_t max);
/* From an agent: a LogChunk, or an Error; false if id is not one of ours. */
bool logs_agent_reply(struct logs *lg, struct conn *agent, const Hpq__Envelope *env);

#endif
