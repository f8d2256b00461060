/*
 * rpc.h: the client requests (hpq and the client library). Each handler
 * checks the request, makes its change through state.c, and either replies
 * at once (reads) or registers the reply to go out after the commit
 * (changes). A handler that refuses returns a negative code with the
 * reason in e; server.c turns that into the Error reply, so every refusal
 * leaves through one exit.
 */
#ifndef HPQD_RPC_H
#define HPQD_RPC_H

#include <stdint.h>

#include "hpq.pb-c.h"
#include "state.h"

struct conn;

int rpc_submit(struct conn *c, uint64_t id, const Hpq__SubmitRequest *m, struct state_err *e);
int rpc_list(struct conn *c, uint64_t id, const Hpq__ListRequest *m, struct state_err *e);
int rpc_show(struct conn *c, uint64_t id, const Hpq__ShowRequest *m, struct state_err *e);
int rpc_cancel(struct conn *c, uint64_t id, const Hpq__CancelRequest *m, struct state_err *e);
int rpc_checkpoint(struct conn *c, uint64_t id, const Hpq__CheckpointRequest *m,
		   struct state_err *e);
int rpc_node_list(struct conn *c, uint64_t id, const Hpq__NodeListRequest *m,
		  struct state_err *e);
int rpc_team_set(struct conn *c, uint64_t id, const Hpq__TeamSetRequest *m, struct state_err *e);
int rpc_team_remove(struct conn *c, uint64_t id, const Hpq__TeamRemoveRequest *m,
		    struct state_err *e);
int rpc_team_list(struct conn *c, uint64_t id, const Hpq__TeamListRequest *m,
		  struct state_err *e);
int rpc_class_set(struct conn *c, uint64_t id, const Hpq__ClassSetRequest *m,
		  struct state_err *e);
int rpc_class_remove(struct conn *c, uint64_t id, const Hpq__ClassRemoveRequest *m,
		     struct state_err *e);
int rpc_class_list(struct conn *c, uint64_t id, const Hpq__ClassListRequest *m,
		   struct state_err *e);

/* Replies Ok (or Error) to c once everything recorded so far is committed. */
void rpc_ok_after_commit(struct conn *c, uint64_t id);
/* Replies env (encoded now) to c once everything recorded so far is
 * committed, or an Error if the commit failed. */
void rpc_reply_after_commit(struct conn *c, const Hpq__Envelope *env);

#endif
