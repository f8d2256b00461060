/*
 * dash.h: what the dashboard commands (status, events, usage, top) share:
 * the JSON form of a status reply (hpq status --json; the tests pin its
 * names), the forms of an event, and reading the pushes of a subscription
 * (events --follow, top) from the connection a request was made on.
 */
#ifndef HPQ_DASH_H
#define HPQ_DASH_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "client.h"
#include "hpq.pb-c.h"

/* The status as {"pools": [...], "teams": [...], "classes": [...], "policy": {...}}. */
json_t *dash_status_json(const Hpq__StatusReply *s);

/* One event as {"id", "time", "kind", "task", "team", "node", "actor", "message"}. */
json_t *dash_event_json(const Hpq__Event *e);

/* hpq events for people: one line per event in fixed columns (lines come
 * one at a time with --follow, so no table can size them), under a header
 * line. Text from other users is escaped (escape.h). */
void dash_event_header(FILE *f);
void dash_event_text(FILE *f, const Hpq__Event *e);

/*
 * Waits up to timeout_ms (-1: for ever) for the next frame carrying id
 * (a push of a subscription, or a reply). Returns 1 with *ret_env set
 * (free with hpq_msg_free), 0 on timeout, or a negative code with
 * c->errbuf set (the daemon closed the connection, a read failed, or it
 * answered with Error).
 */
int dash_follow_next(struct hpq_client *c, uint64_t id, int timeout_ms, Hpq__Envelope **ret_env);

#endif
