/*
 * test_common_strmap.c: the name map (strmap.h): lookups, replacement,
 * growth over many resizes, deletion inside probe chains (including one
 * that wraps around the end of the table), and release.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "strmap.h"

/* A record that owns its name, as the daemon's teams and nodes do. */
struct rec {
	char name[24];
	int v;
};

static size_t slot_of(const struct strmap *m, const char *key)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i] && strcmp(m->keys[i], key) == 0)
			return i;
	fail_msg("'%s' is not in the map", key);
	return 0;
}

/* The slot key hashes to in a table of 16, seen by putting it into an empty map. */
static size_t home16(const char *key)
{
	struct strmap m = {0};
	size_t i;

	strmap_put(&m, key, &m);
	assert_int_equal(m.cap, 16);
	i = slot_of(&m, key);
	strmap_release(&m);
	return i;
}

/* Fills recs[0..n) with distinct names whose home slot (of 16) is home. */
static void names_at(struct rec *recs, size_t n, size_t home, const char *prefix)
{
	size_t found = 0;

	for (int i = 0; found < n; i++) {
		assert_true(i < 100000);
		snprintf(recs[found].name, sizeof(recs[found].name), "%s%d", prefix, i);
		if (home16(recs[found].name) == home)
			recs[found++].v = i;
	}
}

static void test_empty(void **state)
{
	struct strmap m = {0};

	assert_null(strmap_get(&m, "x"));
	assert_null(strmap_get(&m, NULL));
	strmap_del(&m, "x");
	strmap_release(&m);
	assert_int_equal(m.len, 0);
}

static void test_put_get_replace(void **state)
{
	struct rec a = {"alpha", 1}, b = {"beta", 2}, a2 = {"alpha", 3};
	struct strmap m = {0};
	char key[] = "alpha";

	strmap_put(&m, a.name, &a);
	strmap_put(&m, b.name, &b);
	assert_int_equal(m.len, 2);
	/* Found by content, not by the pointer it was put with. */
	assert_ptr_equal(strmap_get(&m, key), &a);
	assert_ptr_equal(strmap_get(&m, "beta"), &b);
	assert_null(strmap_get(&m, "gamma"));
	assert_null(strmap_get(&m, NULL));

	/* Putting a name again replaces the value and the borrowed key. */
	strmap_put(&m, a2.name, &a2);
	assert_int_equal(m.len, 2);
	assert_ptr_equal(strmap_get(&m, "alpha"), &a2);
	assert_ptr_equal(m.keys[slot_of(&m, "alpha")], a2.name);

	strmap_del(&m, "gamma"); /* not there: nothing happens */
	assert_int_equal(m.len, 2);
	strmap_del(&m, "alpha");
	assert_int_equal(m.len, 1);
	assert_null(strmap_get(&m, "alpha"));
	assert_ptr_equal(strmap_get(&m, "beta"), &b);
	strmap_release(&m);
}

static void test_growth(void **state)
{
	enum { N = 5000 }; /* 16 -> 16384: ten resizes */
	struct rec *recs = calloc(N, sizeof(*recs));
	struct strmap m = {0};
	char miss[32];

	assert_non_null(recs);
	for (int i = 0; i < N; i++) {
		snprintf(recs[i].name, sizeof(recs[i].name), "node%04d", i);
		recs[i].v = i;
		strmap_put(&m, recs[i].name, &recs[i]);
		assert_int_equal(m.len, i + 1);
		assert_true(2 * m.len <= m.cap);              /* at most half full */
		assert_int_equal(m.cap & (m.cap - 1), 0);     /* a power of two */
	}
	assert_int_equal(m.cap, 16384);
	for (int i = 0; i < N; i++)
		assert_ptr_equal(strmap_get(&m, recs[i].name), &recs[i]);
	for (int i = N; i < N + 100; i++) {
		snprintf(miss, sizeof(miss), "node%04d", i);
		assert_null(strmap_get(&m, miss));
	}
	/* Deleting every other one leaves the rest reachable. */
	for (int i = 0; i < N; i += 2)
		strmap_del(&m, recs[i].name);
	assert_int_equal(m.len, N / 2);
	for (int i = 0; i < N; i++)
		assert_ptr_equal(strmap_get(&m, recs[i].name), i % 2 ? &recs[i] : NULL);
	strmap_release(&m);
	free(recs);
}

/*
 * a0, a1, a2 share home slot h, d shares h + 1. Put in the order a0 a1 d
 * a2, they sit at h, h + 1, h + 2, h + 3; every one after a0 probed past
 * a0's slot. Deleting a0 must pull the chain back so each stays reachable.
 */
static void chain_case(size_t h)
{
	struct rec a[3], d;
	struct strmap m = {0};

	names_at(a, 3, h, "a");
	names_at(&d, 1, (h + 1) % 16, "d");
	strmap_put(&m, a[0].name, &a[0]);
	strmap_put(&m, a[1].name, &a[1]);
	strmap_put(&m, d.name, &d);
	strmap_put(&m, a[2].name, &a[2]);
	assert_int_equal(m.cap, 16);
	assert_int_equal(slot_of(&m, a[0].name), h);
	assert_int_equal(slot_of(&m, a[1].name), (h + 1) % 16);
	assert_int_equal(slot_of(&m, d.name), (h + 2) % 16);
	assert_int_equal(slot_of(&m, a[2].name), (h + 3) % 16);

	strmap_del(&m, a[0].name);
	assert_null(strmap_get(&m, a[0].name));
	assert_ptr_equal(strmap_get(&m, a[1].name), &a[1]);
	assert_ptr_equal(strmap_get(&m, d.name), &d);
	assert_ptr_equal(strmap_get(&m, a[2].name), &a[2]);
	/* No hole is left in the chain: a1 moved to h, d to its own home. */
	assert_int_equal(slot_of(&m, a[1].name), h);
	assert_int_equal(slot_of(&m, d.name), (h + 1) % 16);
	assert_int_equal(slot_of(&m, a[2].name), (h + 2) % 16);

	/* From the middle of the chain. */
	strmap_del(&m, d.name);
	assert_null(strmap_get(&m, d.name));
	assert_ptr_equal(strmap_get(&m, a[1].name), &a[1]);
	assert_ptr_equal(strmap_get(&m, a[2].name), &a[2]);
	assert_int_equal(m.len, 2);

	/* Put back after deletions: found, not duplicated. */
	strmap_put(&m, a[0].name, &a[0]);
	strmap_put(&m, d.name, &d);
	assert_int_equal(m.len, 4);
	assert_ptr_equal(strmap_get(&m, a[0].name), &a[0]);
	assert_ptr_equal(strmap_get(&m, d.name), &d);
	strmap_release(&m);
}

static void test_delete_in_probe_chain(void **state)
{
	chain_case(5);
}

/* The same chain across the end of the table: slots 14, 15, 0, 1. */
static void test_delete_in_wrapped_chain(void **state)
{
	chain_case(14);
}

/* Many puts and deletions over few names, against a plain array. */
static void test_against_reference(void **state)
{
	enum { NAMES = 300, OPS = 20000 };
	static struct rec recs[NAMES];
	bool in[NAMES] = {false};
	struct strmap m = {0};
	unsigned seed = 12345;
	size_t len = 0;

	for (int i = 0; i < NAMES; i++)
		snprintf(recs[i].name, sizeof(recs[i].name), "team-%d", i);
	for (int op = 0; op < OPS; op++) {
		int i;

		seed = seed * 1103515245u + 12345u;
		i = (int)((seed >> 8) % NAMES);
		if ((seed >> 20) % 3) {
			len += !in[i];
			in[i] = true;
			strmap_put(&m, recs[i].name, &recs[i]);
		} else {
			len -= in[i];
			in[i] = false;
			strmap_del(&m, recs[i].name);
		}
		assert_int_equal(m.len, len);
		if (op % 500 == 0)
			for (int k = 0; k < NAMES; k++)
				assert_ptr_equal(strmap_get(&m, recs[k].name),
						 in[k] ? &recs[k] : NULL);
	}
	strmap_release(&m);
}

static void test_release(void **state)
{
	struct rec r[40];
	struct strmap m = {0};

	for (int i = 0; i < 40; i++) {
		snprintf(r[i].name, sizeof(r[i].name), "pool%d", i);
		strmap_put(&m, r[i].name, &r[i]);
	}
	strmap_release(&m);
	assert_null(m.keys);
	assert_null(m.vals);
	assert_int_equal(m.cap, 0);
	assert_int_equal(m.len, 0);
	assert_null(strmap_get(&m, "pool1"));
	/* A released map is an empty one, ready for use. */
	strmap_put(&m, r[7].name, &r[7]);
	assert_ptr_equal(strmap_get(&m, "pool7"), &r[7]);
	strmap_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_put_get_replace),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_delete_in_probe_chain),
		cmocka_unit_test(test_delete_in_wrapped_chain),
		cmocka_unit_test(test_against_reference),
		cmocka_unit_test(test_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
