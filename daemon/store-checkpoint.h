/*
 * store-checkpoint.h: the WAL's checkpoints on a thread and a connection
 * of their own (store-checkpoint.c), for the engine (store.c).
 */
#ifndef HPQD_STORE_CHECKPOINT_H
#define HPQD_STORE_CHECKPOINT_H

#include <stdint.h>

#include <sqlite3.h>

struct checkpointer;

/* Checkpoints for main, the database at path, which its new connection
 * syncs as main does; NULL (SQLite's in-commit checkpoints stay) if that
 * connection cannot be opened. Called before main's thread starts. */
struct checkpointer *checkpointer_start(sqlite3 *main, const char *path);
/* SQLite's own checkpoints again on main, the thread joined, c freed. */
void checkpointer_stop(struct checkpointer *c);
/* The passes so far: the thread's, the writer's short ends of them, and
 * the writer's full ones (store.h, store_checkpoints); zeros for NULL. */
void checkpointer_counts(const struct checkpointer *c, uint64_t *passes, uint64_t *finished,
			 uint64_t *forced);

#endif
