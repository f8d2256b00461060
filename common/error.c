/*
 * error.c: descriptions of hpq's error codes (error.h). Domain codes get
 * a fixed table; negative errnos go through strerror's static table
 * (strerrordesc_np, which is thread-safe and never allocates).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static const char *const hpq_errors[] = {
	[-HPQ_EPROTO - 1001] = "protocol error",
	[-HPQ_ETOOBIG - 1001] = "message too large",
	[-HPQ_EVERSION - 1001] = "incompatible protocol version",
	[-HPQ_EAUTH - 1001] = "authentication failed",
	[-HPQ_EPERM - 1001] = "permission denied",
	[-HPQ_ENOTFOUND - 1001] = "not found",
	[-HPQ_EEXIST - 1001] = "already exists",
	[-HPQ_EINVAL - 1001] = "invalid argument",
	[-HPQ_ESTATE - 1001] = "not possible in the current state",
	[-HPQ_ESTORAGE - 1001] = "storage failure",
	[-HPQ_EUNAVAIL - 1001] = "daemon unavailable",
	[-HPQ_EBUSY - 1001] = "in use",
	[-HPQ_ETLS - 1001] = "TLS failed",
};

const char *hpq_strerror(int code)
{
	const char *s;

	if (code >= 0)
		return "success";
	if (code <= HPQ_EPROTO && code >= HPQ_ETLS)
		return hpq_errors[-code - 1001];
	if (code > -1000) {
		s = strerrordesc_np(-code);
		if (s)
			return s;
	}
	return "unknown error";
}

int hpq_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}
