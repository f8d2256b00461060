/*
 * error.h: hpq's error codes. Functions return 0 or a positive value on
 * success and a negative code on failure: a negative errno for system
 * errors (as libuv does), or one of the HPQ_E* domain codes below, which
 * sit under -1000 so the two ranges never meet. The same codes travel in
 * Error.code on the wire.
 */
#ifndef HPQ_ERROR_H
#define HPQ_ERROR_H

enum {
	HPQ_EPROTO = -1001,      /* malformed or unexpected message */
	HPQ_ETOOBIG = -1002,     /* frame over the size limit */
	HPQ_EVERSION = -1003,    /* incompatible protocol version */
	HPQ_EAUTH = -1004,       /* authentication failed */
	HPQ_EPERM = -1005,       /* not allowed for this user */
	HPQ_ENOTFOUND = -1006,   /* no such task, team, class, node, pool */
	HPQ_EEXIST = -1007,      /* already exists */
	HPQ_EINVAL = -1008,      /* invalid argument */
	HPQ_ESTATE = -1009,      /* not possible in the object's current state */
	HPQ_ESTORAGE = -1010,    /* the durable store failed */
	HPQ_EUNAVAIL = -1011,    /* daemon not reachable or shutting down */
	HPQ_EBUSY = -1012,       /* in use (e.g. a team with tasks) */
	HPQ_ETLS = -1013,        /* TLS failed: a certificate, a pin or the channel */
};

/* A static description of code: an HPQ_E* code or a negative errno. */
const char *hpq_strerror(int code);

#include <stddef.h>

/* Formats a message into err (when err and errlen are set) and returns
 * code, so that a failure is one line: return hpq_errf(err, errlen,
 * HPQ_EINVAL, "invalid port '%s'", s); */
int hpq_errf(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
