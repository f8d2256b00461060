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
 *   - versions compare as numbers (0.10.0 after 0.9.1).
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
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shipped_catalogue_lists_this_build),
		cmocka_unit_test(status_by_date),
		cmocka_unit_test(malformed_catalogues),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
