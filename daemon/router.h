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

/* The per-user request rate ([limits] rate and burst) lives in d->router:
 * router_new makes it at start, router_free after the loop ended. */
struct router *router_new(void);
void router_free(struct router *r);

#endif
