/*
 * state-internal.h: what the model's files (state.c, change.c, task.c,
 * team.c, node.c) share and nobody else may call: string helpers, the
 * common checks, and the loader callbacks that state_load hands the store.
 */
#ifndef HPQD_STATE_INTERNAL_H
#define HPQD_STATE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "state.h"
#include "store.h"

/* change.c: helpers and the checks every noun shares */
int check_limit(const Hpq__Resources *pb, struct hpq_res *ret, const char *what,
		struct state_err *e);
int check_res(const Hpq__Resources *pb, struct hpq_res *ret, const char *what,
	      struct state_err *e);
char **dup_strv(char *const *v, size_t n);
void free_strv(char **v, size_t n);
bool has_ctl(const char *s);
void mark_dirty(struct state *st);
/* One task's change in a batch (struct cancel_batch): its row's change and
 * its event go to the store as b (store_task_bulk), and the observers and
 * the log hear the event now, as state_event tells them. */
void state_task_bulk(struct state *st, const struct task *t, const struct store_bulk *b);
/* *slot (a heap string, or NULL) becomes a heap copy of s. */
void set_str(char **slot, const char *s);
/* A task's string: "" is one shared empty string, never freed (str_free);
 * str_set is set_str for such a string. */
char *str_dup(const char *s);
void str_set(char **slot, const char *s);
void str_free(char *s);
/* task.c: t's user, team, class and pool become the state's shared copies
 * of those names (a task holds them for its life; there are few names). */
void task_intern(struct state *st, struct task *t);
/* Sets t's class or pool name (update.c), shared or not as t's are. */
void task_set_name(struct state *st, struct task *t, char **slot, const char *name);
void task_names_release(struct state *st);

/* task.c */
void load_task(void *arg, const struct store_task_row *row,
	       const struct store_checkpoint *newest);
void restore_one(struct state *st, struct task *t);
/* A task the store did not load: it ended long ago (store_loader.on_gone). */
void load_gone(void *arg, const struct store_gone_row *g);
void task_gone_release(struct state *st);
/* A task made by the model itself (an array's index): into the state's
 * tasks, counted and recorded, PENDING, not in the dispatcher. */
void task_adopt(struct state *st, struct task *t);
/* Records t's row as it is now. */
void task_save(struct state *st, struct task *t);
/* To a final state, out of the dispatcher, recorded with its end event. */
void task_finish(struct state *st, struct task *t, enum task_state to, const char *reason);
/* t, pending and outside the dispatcher, is new in the queue: the
 * observers that follow tasks offer it (state.h, task_entered). */
void task_entered(struct state *st, struct task *t);
/* Does an observer keep t, a successor about to be offered, out (state.h)? */
bool task_successor_held(struct state *st, struct task *t);
/* t leaves the dispatcher (held, or waiting again): the observers that
 * follow tasks hear it first (state.h, task_leaving). */
void task_leaving(struct state *st, struct task *t);
/* id left memory and did not end COMPLETED (for dependencies on it). */
void task_gone_bad(struct state *st, uint64_t id);

/* task.c, for submit.c: the state's shared copy of a user, team, class or
 * pool name; a user's PENDING tasks; a new task joining the model (into
 * the state's tasks, counted, its row with its environment and script
 * into the store's batch, which keeps those two from then on). */
char *task_shared_name(struct state *st, const char *name);
uint32_t task_pending_of(const struct state *st, const char *user);
void task_enter(struct state *st, struct task *t);

/* team.c */
void load_class(void *arg, const struct store_class_row *c);
void load_pool(void *arg, const char *name);
void load_quota(void *arg, const char *team, const struct store_quota_row *row);
void load_team(void *arg, const struct store_team_row *row);
struct pool *pool_create(struct state *st, const char *name, const char *actor);
struct pool *pool_restore(struct state *st, const char *name);
/* May who submit to t: open, or a member or admin of it (user or @group)? */
bool team_admits(const struct team *t, const struct actor *who);
void team_free(struct team *t);

/* task.c: frees the per-user tallies of state_release. */
void task_tallies_release(struct state *st);

/* trust.c */
void load_token(void *arg, const struct store_token_row *row);
void load_cert(void *arg, const struct store_cert_row *row);
void trust_release(struct state *st);

/* node.c */
void load_node(void *arg, const struct store_node_row *row);
void node_free(struct node *n);

#endif
