/*
 * monitor-netif.c: the network interface monitor (see monitor.h).
 *
 * The interface is found from the connection itself: the local address
 * of the socket to hpqd (getsockname) is looked up among the interface
 * addresses (getifaddrs). Its name is remembered, so that while the uplink
 * is down (perhaps because of this very interface) the same interface is
 * still checked by name. IFF_UP is the administrative state, IFF_RUNNING
 * the carrier; a usable interface has both.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "error.h"
#include "monitor.h"
#include "uplink.h"
#include "xalloc.h"

/* Same address? IPv4-mapped IPv6 addresses count as their IPv4 address. */
static bool netif_same(const struct sockaddr *a, const struct sockaddr_storage *ss)
{
	struct in_addr v4;
	const struct sockaddr *b = (const struct sockaddr *)ss;

	if (a->sa_family == AF_INET && b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6 && b->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	if (a->sa_family == AF_INET && b->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)b)->sin6_addr)) {
		memcpy(&v4, &((const struct sockaddr_in6 *)b)->sin6_addr.s6_addr[12], 4);
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == v4.s_addr;
	}
	return false;
}

int monitor_netif_of_socket(int fd, char *ret_name, size_t len, unsigned *ret_flags)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct ifaddrs *list, *ifa;
	int r = HPQ_ENOTFOUND;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	if (getifaddrs(&list) < 0)
		return -errno;
	for (ifa = list; ifa; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || !netif_same(ifa->ifa_addr, &ss))
			continue;
		snprintf(ret_name, len, "%s", ifa->ifa_name);
		*ret_flags = ifa->ifa_flags;
		r = 0;
		break;
	}
	freeifaddrs(list);
	return r;
}

int monitor_netif_flags(const char *name, unsigned *ret_flags)
{
	struct ifaddrs *list, *ifa;
	int r = HPQ_ENOTFOUND;

	if (getifaddrs(&list) < 0)
		return -errno;
	for (ifa = list; ifa; ifa = ifa->ifa_next) {
		if (strcmp(ifa->ifa_name, name) == 0) {
			*ret_flags = ifa->ifa_flags;
			r = 0;
			break;
		}
	}
	freeifaddrs(list);
	return r;
}

void monitor_netif_check(struct health_source *src, const char *name, bool found,
			 unsigned flags)
{
	if (!found)
		health_see(src, HEALTH_NETWORK, "netif-missing", HEALTH_FATAL, NULL,
			   "network interface %s, which the connection to hpqd used, is gone",
			   name);
	else if (!(flags & IFF_UP))
		health_see(src, HEALTH_NETWORK, "netif-down", HEALTH_FATAL, NULL,
			   "network interface %s, which the connection to hpqd uses, is down",
			   name);
	else if (!(flags & IFF_RUNNING))
		health_see(src, HEALTH_NETWORK, "netif-down", HEALTH_FATAL, NULL,
			   "network interface %s, which the connection to hpqd uses, has no "
			   "carrier", name);
}

struct netif_state {
	struct health *h;
	struct health_source *src;
	char name[IF_NAMESIZE + 1]; /* the interface used last; empty: none yet */
};

static void netif_run(void *state)
{
	struct netif_state *st = state;
	int fd = uplink_socket(st->h->cfg.uplink);
	char name[IF_NAMESIZE + 1];
	unsigned flags = 0;
	int r;

	if (fd >= 0 && monitor_netif_of_socket(fd, name, sizeof(name), &flags) == 0) {
		snprintf(st->name, sizeof(st->name), "%s", name);
		monitor_netif_check(st->src, st->name, true, flags);
	} else if (st->name[0]) {
		r = monitor_netif_flags(st->name, &flags);
		if (r == 0 || r == HPQ_ENOTFOUND)
			monitor_netif_check(st->src, st->name, r == 0, flags);
	}
	health_done(st->src);
}

static int netif_init(struct health *h, struct health_source *src, void **ret_state)
{
	struct netif_state *st;

	if (!h->cfg.uplink)
		return 1;
	st = xcalloc(1, sizeof(*st));
	st->h = h;
	st->src = src;
	*ret_state = st;
	return 0;
}

static void netif_release(void *state)
{
	free(state);
}

const struct monitor monitor_netif = {
	.name = "network",
	.init = netif_init,
	.run = netif_run,
	.release = netif_release,
};
