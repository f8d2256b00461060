/*
 * catalog.c: reading the release catalogue (catalog.h) with jansson. The
 * file is small and read whole; every field is checked, so a malformed
 * catalogue is refused with the reason instead of half used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "catalog.h"
#include "error.h"
#include "xalloc.h"

static bool parse_version(const char *s, unsigned v[3])
{
	int n = 0;

	return sscanf(s, "%u.%u.%u%n", &v[0], &v[1], &v[2], &n) == 3 && s[n] == '\0';
}

int hpq_version_cmp(const char *a, const char *b)
{
	unsigned x[3], y[3];
	bool px = parse_version(a, x), py = parse_version(b, y);

	if (!px || !py)
		return (int)px - (int)py;
	for (int i = 0; i < 3; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

/* YYYY-MM-DD, a real day. */
static bool valid_date(const char *s)
{
	struct tm tm = { 0 };
	char back[11];
	const char *end;

	if (strlen(s) != 10)
		return false;
	end = strptime(s, "%Y-%m-%d", &tm);
	if (!end || *end)
		return false;
	/* strptime takes 2026-02-30; a round trip does not. */
	tm.tm_isdst = -1;
	if (timegm(&tm) == (time_t)-1)
		return false;
	strftime(back, sizeof(back), "%Y-%m-%d", &tm);
	return !strcmp(back, s);
}

static int field_str(json_t *o, const char *key, char *out, size_t len, bool date, size_t i,
		     const char *path, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);

	if (!s)
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %zu has no string \"%s\"",
				path, i + 1, key);
	if (strlen(s) >= len || (date && !valid_date(s)))
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %zu: \"%s\" is not %s: "
				"'%.40s'", path, i + 1, key, date ? "a date YYYY-MM-DD" : "valid",
				s);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int field_uint(json_t *o, const char *key, uint32_t *out, size_t i, const char *path,
		      char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000)
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %zu: \"%s\" must be a "
				"positive integer", path, i + 1, key);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

/* "section.key" or "section.*": lower-case words of [a-z0-9_.] around one
 * dot at least (repair.actions.* has two); a section word may be "*" for a
 * section named by the site, as in autoscale.*.min_nodes ([autoscale.POOL]). */
static bool valid_config_key(const char *s)
{
	const char *dot = strrchr(s, '.');

	if (!dot || dot == s || !dot[1] || strlen(s) > 128)
		return false;
	if (strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_.*") != strlen(s))
		return false;
	/* A star is a whole word: between dots, or the whole key after the last. */
	for (const char *p = strchr(s, '*'); p; p = strchr(p + 1, '*'))
		if ((p != s && p[-1] != '.') || (p[1] && p[1] != '.'))
			return false;
	return true;
}

static void keys_free(struct hpq_release *r)
{
	for (size_t k = 0; k < r->nconfig_keys; k++)
		free(r->config_keys[k]);
	free(r->config_keys);
	r->config_keys = NULL;
	r->nconfig_keys = 0;
}

static int config_keys_load(json_t *o, struct hpq_release *r, size_t i, const char *path,
			    char *err, size_t errlen)
{
	json_t *list = json_object_get(o, "config_keys"), *v;
	size_t k;

	if (!list)
		return 0;
	if (!json_is_array(list))
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %zu: \"config_keys\" must be "
				"an array of \"section.key\" strings", path, i + 1);
	r->has_config_keys = true;
	r->config_keys = xcalloc(json_array_size(list) + 1, sizeof(*r->config_keys));
	json_array_foreach(list, k, v) {
		const char *s = json_string_value(v);

		if (!s || !valid_config_key(s)) {
			keys_free(r);
			return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %zu: config key %zu "
					"is not \"section.key\" or \"section.*\": '%.60s'", path,
					i + 1, k + 1, s ? s : "(not a string)");
		}
		for (size_t j = 0; j < r->nconfig_keys; j++)
			if (!strcmp(r->config_keys[j], s)) {
				keys_free(r);
				return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %zu: config key "
						"'%s' is listed twice", path, i + 1, s);
			}
		r->config_keys[r->nconfig_keys++] = xstrdup(s);
	}
	return 0;
}

/* Whether pattern (words between dots, "*" for any one word) names name. */
static bool key_matches(const char *pattern, const char *name)
{
	for (;;) {
		size_t lp = strcspn(pattern, "."), ln = strcspn(name, ".");

		if (!(lp == 1 && *pattern == '*') && (lp != ln || strncmp(pattern, name, lp)))
			return false;
		pattern += lp;
		name += ln;
		if (!*pattern || !*name)
			return !*pattern && !*name;
		pattern++;
		name++;
	}
}

bool hpq_release_knows_key(const struct hpq_release *r, const char *section, const char *key)
{
	char name[256];

	if (snprintf(name, sizeof(name), "%s.%s", section, key) >= (int)sizeof(name))
		return false;
	for (size_t k = 0; k < r->nconfig_keys; k++)
		if (key_matches(r->config_keys[k], name))
			return true;
	return false;
}

static int release_load(json_t *o, struct hpq_release *r, size_t i, const char *path,
			char *err, size_t errlen)
{
	static const char *const known[] = { "version", "released", "end_of_standard_support",
					     "end_of_extended_support", "protocol",
					     "protocol_min", "schema", "default", "notes",
					     "config_keys" };
	const char *key;
	json_t *v;
	unsigned ver[3];
	int rc;

	if (!json_is_object(o))
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %zu is not an object",
				path, i + 1);
	json_object_foreach(o, key, v) {
		bool ok = false;

		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			ok = ok || !strcmp(key, known[k]);
		if (!ok)
			return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %zu: unknown key "
					"\"%.40s\"", path, i + 1, key);
	}
	if ((rc = field_str(o, "version", r->version, sizeof(r->version), false, i, path, err,
			    errlen)) < 0 ||
	    (rc = field_str(o, "released", r->released, sizeof(r->released), true, i, path, err,
			    errlen)) < 0 ||
	    (rc = field_str(o, "end_of_standard_support", r->standard_end,
			    sizeof(r->standard_end), true, i, path, err, errlen)) < 0 ||
	    (rc = field_str(o, "end_of_extended_support", r->extended_end,
			    sizeof(r->extended_end), true, i, path, err, errlen)) < 0 ||
	    (rc = field_uint(o, "protocol", &r->protocol, i, path, err, errlen)) < 0 ||
	    (rc = field_uint(o, "protocol_min", &r->protocol_min, i, path, err, errlen)) < 0 ||
	    (rc = field_uint(o, "schema", &r->schema, i, path, err, errlen)) < 0)
		return rc;
	if (!parse_version(r->version, ver))
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %zu: version '%s' is not "
				"MAJOR.MINOR.PATCH", path, i + 1, r->version);
	if (strcmp(r->released, r->standard_end) > 0 || strcmp(r->standard_end,
							       r->extended_end) > 0)
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %s: its dates must run "
				"released <= end of standard <= end of extended support", path,
				r->version);
	if (r->protocol_min > r->protocol)
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %s: protocol_min %u is "
				"above its protocol %u", path, r->version, r->protocol_min,
				r->protocol);
	v = json_object_get(o, "default");
	if (v && !json_is_boolean(v))
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %s: \"default\" must be "
				"true or false", path, r->version);
	r->is_default = json_is_true(v);
	return config_keys_load(o, r, i, path, err, errlen);
}

int hpq_catalog_load(const char *path, struct hpq_catalog *cat, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *list;
	size_t ndefault = 0;
	int rc = 0;

	memset(cat, 0, sizeof(*cat));
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return hpq_errf(err, errlen, HPQ_EINVAL, "%s:%d: %s", path, je.line, je.text);
	list = json_object_get(root, "releases");
	if (!json_is_array(list) || !json_array_size(list)) {
		rc = hpq_errf(err, errlen, HPQ_EINVAL, "%s: no \"releases\" array (a catalogue "
			      "is {\"releases\": [ ... ]})", path);
		goto out;
	}
	if (json_array_size(list) > HPQ_CATALOG_MAX_RELEASES) {
		rc = hpq_errf(err, errlen, HPQ_EINVAL, "%s: more than %d releases", path,
			      HPQ_CATALOG_MAX_RELEASES);
		goto out;
	}
	cat->v = xcalloc(json_array_size(list), sizeof(*cat->v));
	for (size_t i = 0; i < json_array_size(list); i++) {
		struct hpq_release *r = &cat->v[i];

		rc = release_load(json_array_get(list, i), r, i, path, err, errlen);
		if (rc < 0)
			goto out;
		if (hpq_catalog_find(cat, r->version)) {
			keys_free(r);
			rc = hpq_errf(err, errlen, HPQ_EINVAL, "%s: release %s is listed twice",
				      path, r->version);
			goto out;
		}
		ndefault += r->is_default;
		cat->n++;
	}
	if (ndefault != 1)
		rc = hpq_errf(err, errlen, HPQ_EINVAL, "%s: %zu releases are marked default; "
			      "exactly one must be", path, ndefault);
out:
	json_decref(root);
	if (rc < 0)
		hpq_catalog_release(cat);
	return rc;
}

void hpq_catalog_release(struct hpq_catalog *cat)
{
	for (size_t i = 0; i < cat->n; i++)
		keys_free(&cat->v[i]);
	free(cat->v);
	cat->v = NULL;
	cat->n = 0;
}

const struct hpq_release *hpq_catalog_find(const struct hpq_catalog *cat, const char *version)
{
	for (size_t i = 0; i < cat->n; i++)
		if (!strcmp(cat->v[i].version, version))
			return &cat->v[i];
	return NULL;
}

const struct hpq_release *hpq_catalog_default(const struct hpq_catalog *cat)
{
	for (size_t i = 0; i < cat->n; i++)
		if (cat->v[i].is_default)
			return &cat->v[i];
	return NULL;
}

const char *hpq_release_status(const struct hpq_release *r, time_t now)
{
	struct tm tm;
	char today[11];

	gmtime_r(&now, &tm);
	strftime(today, sizeof(today), "%Y-%m-%d", &tm);
	if (strcmp(today, r->standard_end) <= 0)
		return "STANDARD_SUPPORT";
	if (strcmp(today, r->extended_end) <= 0)
		return "EXTENDED_SUPPORT";
	return "END_OF_SUPPORT";
}
