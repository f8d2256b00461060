/*
 * notify.h: the systemd notifications hpqd and hpq-agent send (READY=1
 * once they serve, RELOADING=1 around a SIGHUP re-read, WATCHDOG=1 from
 * their loop, STOPPING=1), written by hand as datagrams to $NOTIFY_SOCKET
 * (sd_notify's protocol) so that neither needs libsystemd. One copy here,
 * used by both programs. Without NOTIFY_SOCKET both calls are no-ops.
 */
#ifndef HPQ_NOTIFY_H
#define HPQ_NOTIFY_H

#include <stdint.h>

/* Sends state ("READY=1", "WATCHDOG=1", "STOPPING=1", ...). Returns 1 if
 * sent, 0 if there is no NOTIFY_SOCKET, or -errno. */
int notify_send(const char *state);

/* The watchdog interval systemd expects pings within, in microseconds
 * ($WATCHDOG_USEC when $WATCHDOG_PID is unset or ours), or 0. */
uint64_t notify_watchdog_usec(void);

#endif
