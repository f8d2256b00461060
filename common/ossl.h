/*
 * ossl.h: what pki.c and tls.c share about talking to OpenSSL: how its
 * errors become hpq's, and refusing the passphrase prompt. Nothing else
 * includes it.
 */
#ifndef HPQ_OSSL_H
#define HPQ_OSSL_H

#include <stddef.h>

/* Formats "what: OpenSSL's reason" into err, clears the thread's error
 * queue and returns code. */
int hpq_ossl_errf(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* OpenSSL's reason for the oldest error in the queue, or NULL. */
const char *hpq_ossl_reason(void);
/* A pem_password_cb: keys are never encrypted, so OpenSSL must not prompt
 * on the terminal. */
int hpq_ossl_no_passphrase(char *buf, int size, int rwflag, void *u);

#endif
