/*
 * xid.h: NVIDIA XID errors, the numbered GPU error reports the driver
 * writes to the kernel log ("NVRM: Xid (PCI:0000:3b:00): 79, pid=...,
 * GPU has fallen off the bus."), and what each well-known one calls for.
 *
 * The table follows NVIDIA's XID catalogue and what cloud node-repair
 * agents do with it: errors of the hardware or the driver's state (ECC,
 * row remapping, NVLink, a GPU off the bus, GSP failures) are fatal with
 * the repair that fixes them, reboot (a GPU reset is part of it) or
 * replace (the hardware is bad). Errors a program causes (13, 31, 43, 45)
 * are kept as info: they say nothing about the node. 92 (high single-bit
 * ECC rate) is a warning: the GPU still works, and should be replaced at
 * the next chance. An XID not in the table is a warning without action.
 */
#ifndef HPQ_AGENT_XID_H
#define HPQ_AGENT_XID_H

#include <stddef.h>

#include "health.h"

struct xid_info {
	unsigned xid;
	const char *what;
	enum health_severity severity;
	const char *action;         /* "reboot", "replace", or "" */
};

/* The table's entry for xid, or NULL for one it does not know. */
const struct xid_info *xid_lookup(unsigned xid);

/*
 * Parses a kernel log message for an XID report. Returns 0 with the XID
 * and the device the driver names (e.g. "PCI:0000:3b:00", cut to devlen
 * - 1), HPQ_ENOTFOUND when the message is not an XID report, or
 * HPQ_EINVAL when it looks like one but cannot be read.
 */
int xid_parse(const char *msg, unsigned *ret_xid, char *ret_dev, size_t devlen);

#endif
