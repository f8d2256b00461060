/*
 * task.c: the agent's task records and their list. Plain data handling;
 * see task.h for what a record means and who owns which part of it.
 */
#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "xalloc.h"

struct task *task_new(uint64_t id, uint32_t attempt, const char *name)
{
	struct task *t = xcalloc(1, sizeof(*t));

	t->id = id;
	t->attempt = attempt;
	t->name = xstrdup(name ? name : "");
	return t;
}

void task_free(struct task *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->gpus);
	free(t->checkpoint_dir);
	free(t);
}

void task_list_release(struct dlist *list)
{
	while (!dlist_empty(list)) {
		struct task *t = dlist_first_entry(list, struct task, entry);

		dlist_del(&t->entry);
		task_free(t);
	}
}

struct task *task_find(const struct dlist *list, uint64_t id, uint32_t attempt)
{
	struct task *t;

	dlist_for_each_entry(t, list, entry)
		if (t->id == id && t->attempt == attempt)
			return t;
	return NULL;
}

size_t task_list_count(const struct dlist *list)
{
	const struct task *t;
	size_t n = 0;

	dlist_for_each_entry(t, list, entry)
		n++;
	return n;
}

void task_set_reason(char dst[TASK_REASON_MAX], const char *reason)
{
	size_t n = reason ? strlen(reason) : 0;

	if (n >= TASK_REASON_MAX)
		n = TASK_REASON_MAX - 1;
	memcpy(dst, reason ? reason : "", n);
	dst[n] = '\0';
}

bool task_cluster_id_ok(const char *s)
{
	return s && strlen(s) == TASK_CLUSTER_ID_LEN &&
	       strspn(s, "0123456789abcdef") == TASK_CLUSTER_ID_LEN;
}
