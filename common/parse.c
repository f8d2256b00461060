/*
 * parse.c: the values people type (parse.h). Every parser walks the whole
 * string itself instead of trusting strtoul, which skips blanks, accepts
 * signs ("-1" becomes a huge number) and saturates on overflow: here a
 * value is either entirely valid and in range, or rejected.
 */
#include <ctype.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "hpq.h"
#include "parse.h"

/* Reads a run of decimal digits at *sp into *ret, advancing *sp. Fails on
 * no digits or overflow. */
static int parse_digits(const char **sp, uint64_t *ret)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return HPQ_EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return HPQ_EINVAL;
		v = v * 10 + d;
	}
	*sp = s;
	*ret = v;
	return 0;
}

static int mul_add(uint64_t *acc, uint64_t v, uint64_t unit)
{
	if (unit && v > UINT64_MAX / unit)
		return HPQ_EINVAL;
	v *= unit;
	if (*acc > UINT64_MAX - v)
		return HPQ_EINVAL;
	*acc += v;
	return 0;
}

int hpq_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v;

	if (!s || parse_digits(&s, &v) < 0 || *s != '\0' || v < min || v > max)
		return HPQ_EINVAL;
	*ret = v;
	return 0;
}

/* Slurm's colon forms: MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. The
 * first field is unbounded (90:00 is 90 minutes); later ones are clock
 * fields (< 60, hours after a day < 24) unless lenient, where, as Slurm
 * does, they simply add up (1:90:00 is 2h30m). */
static int parse_clock(const char *s, bool lenient, uint64_t *ret)
{
	uint64_t f[3], days = 0, total = 0;
	bool has_days = false;
	int n = 0;

	if (strchr(s, '-')) {
		if (parse_digits(&s, &days) < 0 || *s++ != '-')
			return HPQ_EINVAL;
		has_days = true;
	}
	for (;;) {
		if (n == 3 || parse_digits(&s, &f[n]) < 0)
			return HPQ_EINVAL;
		n++;
		if (*s == '\0')
			break;
		if (*s++ != ':')
			return HPQ_EINVAL;
	}

	if (has_days) {
		/* D-HH, D-HH:MM, D-HH:MM:SS */
		static const uint64_t units[3] = {3600, 60, 1};
		static const uint64_t limits[3] = {24, 60, 60};

		if (mul_add(&total, days, 86400) < 0)
			return HPQ_EINVAL;
		for (int i = 0; i < n; i++) {
			if ((!lenient && f[i] >= limits[i]) ||
			    mul_add(&total, f[i], units[i]) < 0)
				return HPQ_EINVAL;
		}
	} else {
		/* MM:SS or HH:MM:SS; a bare number has no colon and never gets here. */
		uint64_t unit = n == 3 ? 3600 : 60;

		if (n < 2)
			return HPQ_EINVAL;
		for (int i = 0; i < n; i++, unit /= 60) {
			if ((!lenient && i > 0 && f[i] >= 60) || mul_add(&total, f[i], unit) < 0)
				return HPQ_EINVAL;
		}
	}
	*ret = total;
	return 0;
}

int hpq_parse_duration(const char *s, uint64_t *ret_seconds)
{
	static const struct {
		char c;
		uint64_t secs;
	} units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
	uint64_t total = 0, v;
	size_t next_unit = 0;

	if (!s || *s == '\0')
		return HPQ_EINVAL;
	if (strchr(s, ':') || strchr(s, '-'))
		return parse_clock(s, false, ret_seconds);

	/* A bare number is seconds. */
	if (hpq_parse_uint(s, 0, UINT64_MAX, &v) == 0) {
		*ret_seconds = v;
		return 0;
	}
	/* Otherwise N<unit> parts, largest unit first, each unit at most once. */
	while (*s) {
		size_t i;
		char c;

		if (parse_digits(&s, &v) < 0)
			return HPQ_EINVAL;
		if (*s == '\0')
			return HPQ_EINVAL; /* "1h30": a unitless part only stands alone */
		c = (char)tolower((unsigned char)*s++);
		for (i = next_unit; i < sizeof(units) / sizeof(units[0]); i++)
			if (units[i].c == c)
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return HPQ_EINVAL;
		if (mul_add(&total, v, units[i].secs) < 0)
			return HPQ_EINVAL;
		next_unit = i + 1;
	}
	*ret_seconds = total;
	return 0;
}

int hpq_parse_time_limit(const char *s, uint64_t *ret_seconds)
{
	uint64_t v;

	if (!s || *s == '\0')
		return HPQ_EINVAL;
	if (strcasecmp(s, "UNLIMITED") == 0 || strcasecmp(s, "infinite") == 0 ||
	    strcasecmp(s, "none") == 0) {
		*ret_seconds = 0;
		return 0;
	}
	if (strchr(s, ':') || strchr(s, '-')) {
		if (parse_clock(s, true, &v) < 0)
			return HPQ_EINVAL;
	} else if (hpq_parse_uint(s, 0, UINT64_MAX, &v) == 0) {
		/* A bare number is minutes, as sbatch --time reads it. */
		if (v > UINT64_MAX / 60)
			return HPQ_EINVAL;
		v *= 60;
	} else if (hpq_parse_duration(s, &v) < 0) {
		return HPQ_EINVAL;
	}
	if (v > HPQ_TIME_LIMIT_MAX_S)
		return HPQ_EINVAL;
	*ret_seconds = v;
	return 0;
}

int hpq_parse_size_mib(const char *s, uint64_t *ret_mib)
{
	uint64_t v;
	int shift;

	if (!s || parse_digits(&s, &v) < 0)
		return HPQ_EINVAL;
	switch (toupper((unsigned char)*s)) {
	case '\0':
		*ret_mib = v;
		return 0;
	case 'K':
		shift = -1;
		break;
	case 'M':
		shift = 0;
		break;
	case 'G':
		shift = 10;
		break;
	case 'T':
		shift = 20;
		break;
	default:
		return HPQ_EINVAL;
	}
	s++;
	if (*s != '\0' && strcasecmp(s, "B") != 0 && strcasecmp(s, "iB") != 0)
		return HPQ_EINVAL;
	if (shift < 0) {
		/* KiB, rounded up to whole MiB. */
		*ret_mib = v / 1024 + (v % 1024 != 0);
		return 0;
	}
	if (v > (UINT64_MAX >> shift))
		return HPQ_EINVAL;
	*ret_mib = v << shift;
	return 0;
}

int hpq_parse_signal(const char *s, int *ret_signo)
{
	uint64_t v;

	if (!s || *s == '\0')
		return HPQ_EINVAL;
	if (*s >= '0' && *s <= '9') {
		if (hpq_parse_uint(s, 1, (uint64_t)(NSIG - 1), &v) < 0)
			return HPQ_EINVAL;
		*ret_signo = (int)v;
		return 0;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (int sig = 1; sig < NSIG; sig++) {
		const char *abbrev = sigabbrev_np(sig);

		if (abbrev && strcasecmp(s, abbrev) == 0) {
			*ret_signo = sig;
			return 0;
		}
	}
	return HPQ_EINVAL;
}

int hpq_check_name(const char *s)
{
	size_t n;

	if (!s || !isalnum((unsigned char)s[0]))
		return HPQ_EINVAL;
	for (n = 0; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (n >= HPQ_NAME_MAX - 1)
			return HPQ_EINVAL;
		if (!(c < 128 && (isalnum(c) || c == '.' || c == '_' || c == '-')))
			return HPQ_EINVAL;
	}
	return 0;
}

int hpq_check_group_name(const char *s)
{
	size_t n;

	if (!s || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return HPQ_EINVAL;
	for (n = 0; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (n >= HPQ_GROUP_NAME_MAX)
			return HPQ_EINVAL;
		if (!(c < 128 && (isalnum(c) || c == '.' || c == '_' || c == '-')))
			return HPQ_EINVAL;
	}
	return 0;
}

char *hpq_format_duration(uint64_t seconds, char *buf, size_t len)
{
	static const struct {
		char c;
		uint64_t secs;
	} units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
	size_t off = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (seconds == 0) {
		snprintf(buf, len, "0s");
		return buf;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t n = seconds / units[i].secs;
		int w;

		if (n == 0)
			continue;
		seconds -= n * units[i].secs;
		w = snprintf(buf + off, len - off, "%" PRIu64 "%c", n, units[i].c);
		if (w < 0 || (size_t)w >= len - off)
			break; /* truncated, still terminated */
		off += (size_t)w;
	}
	return buf;
}

char *hpq_format_size_mib(uint64_t mib, char *buf, size_t len)
{
	static const char suffix[] = "MGT"; /* what hpq_parse_size_mib reads back */
	int i = 0;

	if (len == 0)
		return buf;
	/* The largest unit that states the value exactly: 1536 MiB is "1536M". */
	while (mib != 0 && mib % 1024 == 0 && suffix[i + 1]) {
		mib /= 1024;
		i++;
	}
	snprintf(buf, len, "%" PRIu64 "%c", mib, suffix[i]);
	return buf;
}

int hpq_split_hostport(const char *addr, unsigned flags, char *host, size_t hostlen,
		       uint16_t *ret_port)
{
	const char *colon, *h = addr;
	uint64_t port = HPQ_DEFAULT_PORT;
	size_t n;

	if (!addr || !addr[0])
		return HPQ_EINVAL;
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');

		if (!end || (end[1] != '\0' && end[1] != ':'))
			return HPQ_EINVAL;
		h = addr + 1;
		n = (size_t)(end - h);
		if (n == 0)
			return HPQ_EINVAL;
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(addr, ':');
		if (colon && strchr(addr, ':') != colon)
			colon = NULL; /* a bare IPv6 address: brackets are needed for a port */
		n = colon ? (size_t)(colon - addr) : strlen(addr);
		if (n == 0 && !(flags & HPQ_HOSTPORT_LISTEN))
			return HPQ_EINVAL;
	}
	if (n >= hostlen)
		return HPQ_EINVAL;
	if (colon && hpq_parse_uint(colon + 1, flags & HPQ_HOSTPORT_LISTEN ? 0 : 1, 65535,
				    &port) < 0)
		return HPQ_EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	*ret_port = (uint16_t)port;
	return 0;
}
