/*
 * router.h: the request table. Every message a peer sends after Hello
 * comes here from the server; the router finds the body's entry, checks
 * once that the sender's role may send it, and calls its handler
 * (request.h). Adding a request is one line in router.c's table and one
 * handler.
 */
#ifndef HPQD_ROUTER_H
#define HPQD_ROUTER_H

#include "hpq.pb-c.h"

struct conn;
struct hpqd;

/* The server's on_message callback; arg is the struct hpqd. */
void router_deliver(void *arg, struct conn *c, const Hpq__Envelope *env);

#endif
