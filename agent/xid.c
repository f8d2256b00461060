/*
 * xid.c: the XID table and the parser of the driver's XID lines (xid.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "xid.h"

static const struct xid_info xid_table[] = {
	{13, "graphics engine exception (usually the program)", HEALTH_INFO, ""},
	{31, "GPU memory page fault (usually the program)", HEALTH_INFO, ""},
	{43, "GPU stopped processing (usually the program)", HEALTH_INFO, ""},
	{45, "preemptive cleanup after an earlier error", HEALTH_INFO, ""},
	{48, "double-bit ECC error", HEALTH_FATAL, "reboot"},
	{61, "internal micro-controller breakpoint", HEALTH_FATAL, "reboot"},
	{62, "internal micro-controller halt", HEALTH_FATAL, "reboot"},
	{63, "ECC page retirement or row remapping pending", HEALTH_FATAL, "reboot"},
	{64, "ECC page retirement or row remapping failure", HEALTH_FATAL, "replace"},
	{69, "graphics engine class error", HEALTH_FATAL, "reboot"},
	{74, "NVLink error", HEALTH_FATAL, "reboot"},
	{79, "GPU has fallen off the bus", HEALTH_FATAL, "reboot"},
	{92, "high single-bit ECC error rate", HEALTH_WARNING, "replace"},
	{94, "contained ECC error", HEALTH_FATAL, "reboot"},
	{95, "uncontained ECC error", HEALTH_FATAL, "reboot"},
	{119, "GSP RPC timeout", HEALTH_FATAL, "reboot"},
	{120, "GSP error", HEALTH_FATAL, "reboot"},
	{140, "unrecovered ECC error", HEALTH_FATAL, "reboot"},
	{154, "GPU recovery action: node reboot required", HEALTH_FATAL, "reboot"},
};

const struct xid_info *xid_lookup(unsigned xid)
{
	for (size_t i = 0; i < sizeof(xid_table) / sizeof(xid_table[0]); i++)
		if (xid_table[i].xid == xid)
			return &xid_table[i];
	return NULL;
}

int xid_parse(const char *msg, unsigned *ret_xid, char *ret_dev, size_t devlen)
{
	const char *p = strstr(msg, "NVRM: Xid ("), *dev, *end;
	unsigned long v;
	char *num_end;
	size_t n;

	if (!p)
		return HPQ_ENOTFOUND;
	dev = p + strlen("NVRM: Xid (");
	end = strstr(dev, "): ");
	if (!end || end == dev || memchr(dev, ' ', (size_t)(end - dev)))
		return HPQ_EINVAL;
	p = end + 3;
	if (*p < '0' || *p > '9')
		return HPQ_EINVAL;
	errno = 0;
	v = strtoul(p, &num_end, 10);
	if (errno || v > 100000 || (*num_end && *num_end != ',' && *num_end != ' '))
		return HPQ_EINVAL;
	n = (size_t)(end - dev);
	if (devlen) {
		if (n >= devlen)
			n = devlen - 1;
		memcpy(ret_dev, dev, n);
		ret_dev[n] = '\0';
	}
	*ret_xid = (unsigned)v;
	return 0;
}
