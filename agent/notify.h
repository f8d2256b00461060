/*
 * notify.h: the two systemd notifications the agent sends, READY=1 once
 * it serves and WATCHDOG=1 from its loop, written by hand as datagrams to
 * $NOTIFY_SOCKET (sd_notify's protocol) so the agent needs no libsystemd.
 * Without NOTIFY_SOCKET both are no-ops.
 */
#ifndef HPQ_AGENT_NOTIFY_H
#define HPQ_AGENT_NOTIFY_H

#include <stdint.h>

/* Sends state ("READY=1", "WATCHDOG=1", "STOPPING=1", ...). Returns 1 if
 * sent, 0 if there is no NOTIFY_SOCKET, or -errno. */
int notify_send(const char *state);

/* The watchdog interval systemd expects pings within, in microseconds
 * ($WATCHDOG_USEC when $WATCHDOG_PID is unset or ours), or 0. */
uint64_t notify_watchdog_usec(void);

#endif
