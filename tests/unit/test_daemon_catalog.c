/*
 * test_daemon_catalog.c: the release catalogue (common/catalog.c) as the
 * daemon reads it:
 *
 *   - the catalogue this tree ships lists this build: its default release
 *     is HPQ_VERSION with this protocol and this schema, so a schema or
 *     protocol change cannot land without its catalogue entry;
 *   - support status by date: standard, extended, then end of support;
 *   - every malformed catalogue is refused with the file and the reason:
 *     bad JSON (with its line), no releases, an unknown key, a date that
 *     is no day, dates out of order, a version twice, not exactly one
 *     default, protocol_min above protocol;
 *   - versions compare as numbers (0.10.0 after 0.9.1);
 *   - config_keys: the shipped default release lists exactly the keys of
 *     dist/hpqd.conf (and the deprecated [nodes] unreachable_after, and
 *     any [repair.actions] key), so that a key cannot land without its
 *     catalogue entry; keys match by section, "section.*" any key of it;
 *     a malformed list is refused;
 *   - the release before this one is in the catalogue, inside this one's
 *     protocol window (the promise of docs/upgrades.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "catalog.h"
#include "error.h"
#include "hpq.h"
#include "store.h"

static void shipped_catalogue_lists_this_build(void **ts)
{
	struct hpq_catalog cat;
	const struct hpq_release *r = NULL;
	char err[512];

	(void)ts;
	if (hpq_catalog_load(HPQ_SOURCE_DIR "/dist/versions.json", &cat, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	for (size_t i = 0; i < cat.n; i++)
		if (cat.v[i].is_default)
			r = &cat.v[i];
	assert_non_null(r);
	assert_string_equal(r->version, HPQ_VERSION);
	assert_int_equal(r->protocol, HPQ_PROTOCOL_VERSION);
	assert_int_equal(r->protocol_min, HPQ_PROTOCOL_MIN);
	assert_int_equal(r->schema, store_schema_latest());
	assert_ptr_equal(hpq_catalog_default(&cat), r);
	/* One release back is served. */
	{
		const struct hpq_release *prev = NULL;

		for (size_t i = 0; i < cat.n; i++)
			if (hpq_version_cmp(cat.v[i].version, r->version) < 0 &&
			    (!prev || hpq_version_cmp(cat.v[i].version, prev->version) > 0))
				prev = &cat.v[i];
		assert_non_null(prev);
		assert_true(prev->protocol >= r->protocol_min && prev->protocol < r->protocol);
	}
	hpq_catalog_release(&cat);
}

/* dist/hpqd.conf's keys ("#key = default" under "[section]") are the
 * default release's config_keys, less the two that are not in the file. */
static void shipped_config_keys_match_hpqd_conf(void **ts)
{
	struct hpq_catalog cat;
	const struct hpq_release *r;
	char err[512], line[512], section[64] = "", key[64];
	size_t in_file = 0;
	FILE *f;

	(void)ts;
	if (hpq_catalog_load(HPQ_SOURCE_DIR "/dist/versions.json", &cat, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	r = hpq_catalog_default(&cat);
	assert_true(r->has_config_keys);
	f = fopen(HPQ_SOURCE_DIR "/dist/hpqd.conf", "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "[%63[a-z.]]", section) == 1)
			continue;
		if (sscanf(line, "#%63[a-z_] =", key) != 1 || !*section ||
		    !strcmp(section, "repair.actions"))
			continue;
		in_file++;
		if (!hpq_release_knows_key(r, section, key))
			fail_msg("dist/hpqd.conf has [%s] %s; dist/versions.json's %s does not "
				 "list \"%s.%s\"", section, key, r->version, section, key);
	}
	fclose(f);
	assert_true(in_file > 30);
	assert_true(hpq_release_knows_key(r, "nodes", "unreachable_after"));
	assert_true(hpq_release_knows_key(r, "repair.actions", "gpu-xid-79"));
	assert_false(hpq_release_knows_key(r, "auth", "key_file"));
	assert_false(hpq_release_knows_key(r, "hpqd", "colour"));
	/* [autoscale.POOL]: the file's example is commented out whole. */
	assert_true(hpq_release_knows_key(r, "autoscale.gpu", "min_nodes"));
	assert_true(hpq_release_knows_key(r, "autoscale.gpu", "disruption_budget"));
	assert_false(hpq_release_knows_key(r, "autoscale.gpu", "colour"));
	assert_false(hpq_release_knows_key(r, "autoscale", "min_nodes"));
	assert_false(hpq_release_knows_key(r, "autoscale.a.b", "min_nodes"));
	/* Nothing listed that the file lacks: its two and autoscale's 13. */
	assert_int_equal(r->nconfig_keys, in_file + 2 + 13);
	hpq_catalog_release(&cat);
}

static time_t day(const char *ymd)
{
	struct tm tm = { 0 };

	assert_non_null(strptime(ymd, "%Y-%m-%d", &tm));
	tm.tm_hour = 12;
	return timegm(&tm);
}

static void status_by_date(void **ts)
{
	struct hpq_release r = { .version = "1.2.3", .released = "2026-01-01",
				 .standard_end = "2026-12-31", .extended_end = "2027-06-30" };

	(void)ts;
	assert_string_equal(hpq_release_status(&r, day("2026-06-01")), "STANDARD_SUPPORT");
	assert_string_equal(hpq_release_status(&r, day("2026-12-31")), "STANDARD_SUPPORT");
	assert_string_equal(hpq_release_status(&r, day("2027-01-01")), "EXTENDED_SUPPORT");
	assert_string_equal(hpq_release_status(&r, day("2027-07-01")), "END_OF_SUPPORT");
	assert_true(hpq_version_cmp("0.10.0", "0.9.1") > 0);
	assert_true(hpq_version_cmp("1.0.0", "1.0.0") == 0);
	assert_true(hpq_version_cmp("1.0", "0.0.1") < 0);   /* unparsable first */
}

#define REL(extra) "{\"version\": \"1.0.0\", \"released\": \"2026-01-01\", " \
		   "\"end_of_standard_support\": \"2026-12-31\", "              \
		   "\"end_of_extended_support\": \"2027-06-30\", \"protocol\": 2, " \
		   "\"protocol_min\": 1, \"schema\": 6" extra "}"

static void refuse(const char *text, const char *want)
{
	char path[] = "/tmp/hpq-catalog-XXXXXX", err[512] = "";
	struct hpq_catalog cat;
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	assert_int_equal(hpq_catalog_load(path, &cat, err, sizeof(err)), HPQ_EINVAL);
	unlink(path);
	assert_null(cat.v);
	if (!strstr(err, want) || !strstr(err, "/tmp/hpq-catalog-"))
		fail_msg("catalogue %s: refused with '%s', wanted '%s' and the file", text, err,
			 want);
}

static void malformed_catalogues(void **ts)
{
	(void)ts;
	refuse("{\"releases\": [\n" REL(", \"default\": true") ",\n]}", ":3:");
	refuse("{}", "no \"releases\"");
	refuse("{\"releases\": []}", "no \"releases\"");
	refuse("{\"releases\": [" REL(", \"default\": true, \"colour\": 1") "]}",
	       "unknown key \"colour\"");
	refuse("{\"releases\": [{\"version\": \"1.0.0\", \"released\": \"2026-02-30\"}]}",
	       "not a date");
	refuse("{\"releases\": [{\"version\": \"1.0.0\", \"released\": \"2027-01-01\", "
	       "\"end_of_standard_support\": \"2026-12-31\", \"end_of_extended_support\": "
	       "\"2027-06-30\", \"protocol\": 2, \"protocol_min\": 1, \"schema\": 6, "
	       "\"default\": true}]}",
	       "dates must run");
	refuse("{\"releases\": [" REL(", \"default\": true") ", " REL("") "]}", "listed twice");
	refuse("{\"releases\": [" REL("") "]}", "exactly one must be");
	refuse("{\"releases\": [{\"version\": \"1.0\", \"released\": \"2026-01-01\", "
	       "\"end_of_standard_support\": \"2026-12-31\", \"end_of_extended_support\": "
	       "\"2027-06-30\", \"protocol\": 2, \"protocol_min\": 1, \"schema\": 6}]}",
	       "MAJOR.MINOR.PATCH");
	refuse("{\"releases\": [{\"version\": \"1.0.0\", \"released\": \"2026-01-01\", "
	       "\"end_of_standard_support\": \"2026-12-31\", \"end_of_extended_support\": "
	       "\"2027-06-30\", \"protocol\": 2, \"protocol_min\": 3, \"schema\": 6, "
	       "\"default\": true}]}",
	       "protocol_min 3");
	refuse("{\"releases\": [" REL(", \"default\": \"yes\"") "]}", "true or false");
	refuse("{\"releases\": [" REL(", \"default\": true, \"config_keys\": \"hpqd.listen\"")
	       "]}", "must be an array");
	refuse("{\"releases\": [" REL(", \"default\": true, \"config_keys\": [\"listen\"]")
	       "]}", "config key 1 is not");
	refuse("{\"releases\": [" REL(", \"default\": true, \"config_keys\": [\"a.b\", 3]")
	       "]}", "config key 2 is not");
	refuse("{\"releases\": [" REL(", \"default\": true, \"config_keys\": [\"a.*x\"]")
	       "]}", "config key 1 is not");
	refuse("{\"releases\": [" REL(", \"default\": true, \"config_keys\": [\"a.b\", "
	       "\"a.b\"]") "]}", "listed twice");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shipped_catalogue_lists_this_build),
		cmocka_unit_test(status_by_date),
		cmocka_unit_test(malformed_catalogues),
		cmocka_unit_test(shipped_config_keys_match_hpqd_conf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
