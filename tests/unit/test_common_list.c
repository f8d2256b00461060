/*
 * test_common_list.c: the intrusive list (list.h): order of insertion at
 * either end, deletion anywhere (and twice), iteration that deletes as it
 * goes, and splicing one list onto another.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "list.h"

struct item {
	int v;
	struct dlist link;
};

/* Checks that h is well formed both ways, then that it holds want[0..n) in order. */
static void assert_list(const struct dlist *h, const int *want, size_t n)
{
	const struct dlist *l = h;
	const struct item *it;
	size_t i = 0;

	do {
		assert_ptr_equal(l->next->prev, l);
		assert_ptr_equal(l->prev->next, l);
		l = l->next;
	} while (l != h);
	dlist_for_each_entry(it, h, link) {
		assert_true(i < n);
		assert_int_equal(it->v, want[i]);
		i++;
	}
	assert_int_equal(i, n);
	assert_int_equal(dlist_empty(h), n == 0);
}

static struct item *item_new(int v)
{
	struct item *it = calloc(1, sizeof(*it));

	assert_non_null(it);
	it->v = v;
	dlist_init(&it->link);
	return it;
}

static void free_all(struct dlist *h)
{
	struct item *it, *next;

	dlist_for_each_entry_safe(it, next, h, link) {
		dlist_del(&it->link);
		free(it);
	}
	assert_true(dlist_empty(h));
}

static void test_empty(void **state)
{
	struct dlist a = DLIST_INIT(a), b;

	dlist_init(&b);
	assert_list(&a, NULL, 0);
	assert_list(&b, NULL, 0);
	free_all(&a); /* iterating an empty list runs no body */
}

static void test_add_head_and_tail(void **state)
{
	struct dlist h = DLIST_INIT(h);
	static const int want[] = {0, 1, 2, 3};

	dlist_add_tail(&h, &item_new(2)->link);
	dlist_add_tail(&h, &item_new(3)->link);
	dlist_add_head(&h, &item_new(1)->link);
	dlist_add_head(&h, &item_new(0)->link);
	assert_list(&h, want, 4);
	assert_int_equal(dlist_first_entry(&h, struct item, link)->v, 0);
	assert_int_equal(dlist_entry(h.prev, struct item, link)->v, 3);
	free_all(&h);
}

static void test_del(void **state)
{
	struct dlist h = DLIST_INIT(h);
	struct item *it[5];
	static const int after_mid[] = {0, 1, 3, 4}, after_ends[] = {1, 3};
	static const int back[] = {0, 1, 3, 2, 4};

	for (int i = 0; i < 5; i++) {
		it[i] = item_new(i);
		dlist_add_tail(&h, &it[i]->link);
	}
	dlist_del(&it[2]->link);
	assert_list(&h, after_mid, 4);
	/* A deleted node stands alone: deleting it again changes nothing. */
	assert_ptr_equal(it[2]->link.next, &it[2]->link);
	assert_ptr_equal(it[2]->link.prev, &it[2]->link);
	dlist_del(&it[2]->link);
	assert_list(&h, after_mid, 4);

	dlist_del(&it[0]->link);
	dlist_del(&it[4]->link);
	assert_list(&h, after_ends, 2);

	/* Deleted nodes can go back in. */
	dlist_add_head(&h, &it[0]->link);
	dlist_add_tail(&h, &it[2]->link);
	dlist_add_tail(&h, &it[4]->link);
	assert_list(&h, back, 5);
	free_all(&h);
}

static void test_iterate_with_deletion(void **state)
{
	struct dlist h = DLIST_INIT(h), odd = DLIST_INIT(odd);
	struct item *it, *next;
	static const int even[] = {0, 2, 4, 6, 8}, odds[] = {1, 3, 5, 7, 9}, mid[] = {2, 4, 6};

	for (int i = 0; i < 10; i++)
		dlist_add_tail(&h, &item_new(i)->link);
	/* Moving the current node to another list is safe too. */
	dlist_for_each_entry_safe(it, next, &h, link) {
		if (it->v % 2) {
			dlist_del(&it->link);
			dlist_add_tail(&odd, &it->link);
		}
	}
	assert_list(&h, even, 5);
	assert_list(&odd, odds, 5);

	/* Deleting and freeing the first and the last as they come. */
	dlist_for_each_entry_safe(it, next, &h, link) {
		if (it->v == 0 || it->v == 8) {
			dlist_del(&it->link);
			free(it);
		}
	}
	assert_list(&h, mid, 3);
	free_all(&h);
	free_all(&odd);
}

static void test_splice_tail(void **state)
{
	struct dlist a = DLIST_INIT(a), b = DLIST_INIT(b), e = DLIST_INIT(e);
	static const int all[] = {1, 2, 3, 4, 5};

	dlist_add_tail(&a, &item_new(1)->link);
	dlist_add_tail(&a, &item_new(2)->link);
	dlist_add_tail(&b, &item_new(3)->link);
	dlist_add_tail(&b, &item_new(4)->link);
	dlist_add_tail(&b, &item_new(5)->link);

	dlist_splice_tail(&a, &e); /* an empty list adds nothing */
	assert_list(&a, all, 2);
	dlist_splice_tail(&a, &b);
	assert_list(&a, all, 5);
	assert_list(&b, NULL, 0);
	dlist_splice_tail(&e, &a); /* onto an empty list */
	assert_list(&e, all, 5);
	assert_list(&a, NULL, 0);
	free_all(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_add_head_and_tail),
		cmocka_unit_test(test_del),
		cmocka_unit_test(test_iterate_with_deletion),
		cmocka_unit_test(test_splice_tail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
