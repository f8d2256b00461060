/*
 * list.h: the intrusive doubly linked list of hpqd, hpq-agent and hpq.
 *
 * A record that sits in a list embeds a struct dlist and is found again
 * from it with container_of (dlist_entry). A list head is a struct dlist
 * of its own: an empty list points at itself, so adding and removing
 * need no special case and no allocation. A node that is not in a list
 * points at itself too (dlist_init, or after dlist_del), so deleting it
 * again is harmless.
 */
#ifndef HPQ_LIST_H
#define HPQ_LIST_H

#include <stdbool.h>
#include <stddef.h>

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

struct dlist {
	struct dlist *prev, *next;
};

/* For a head defined with a static initialiser: struct dlist h = DLIST_INIT(h); */
#define DLIST_INIT(name) { &(name), &(name) }

static inline void dlist_init(struct dlist *h)
{
	h->prev = h->next = h;
}

static inline bool dlist_empty(const struct dlist *h)
{
	return h->next == h;
}

/* Links n in between two adjacent nodes. */
static inline void dlist_insert(struct dlist *prev, struct dlist *next, struct dlist *n)
{
	n->prev = prev;
	n->next = next;
	prev->next = n;
	next->prev = n;
}

static inline void dlist_add_head(struct dlist *h, struct dlist *n)
{
	dlist_insert(h, h->next, n);
}

static inline void dlist_add_tail(struct dlist *h, struct dlist *n)
{
	dlist_insert(h->prev, h, n);
}

static inline void dlist_del(struct dlist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* Moves every node of from to the end of h, in order; from is left empty. */
static inline void dlist_splice_tail(struct dlist *h, struct dlist *from)
{
	if (dlist_empty(from))
		return;
	from->next->prev = h->prev;
	h->prev->next = from->next;
	from->prev->next = h;
	h->prev = from->prev;
	dlist_init(from);
}

#define dlist_entry(ptr, type, member) container_of(ptr, type, member)

/* The first record of a list that is not empty. */
#define dlist_first_entry(h, type, member) dlist_entry((h)->next, type, member)

#define dlist_next_entry(pos, member)                                                \
	dlist_entry((pos)->member.next, __typeof__(*(pos)), member)

/* pos walks the records of h in order; the body must not remove pos. */
#define dlist_for_each_entry(pos, h, member)                                         \
	for (pos = dlist_entry((h)->next, __typeof__(*(pos)), member);               \
	     &(pos)->member != (h); pos = dlist_next_entry(pos, member))

/* The same, but the body may remove (and free) pos: n holds the next one. */
#define dlist_for_each_entry_safe(pos, n, h, member)                                 \
	for (pos = dlist_entry((h)->next, __typeof__(*(pos)), member),               \
	     n = dlist_next_entry(pos, member);                                          \
	     &(pos)->member != (h); pos = n, n = dlist_next_entry(n, member))

#endif
