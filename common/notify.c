/*
 * notify.c: sd_notify without libsystemd. The protocol is one datagram
 * per notification to the AF_UNIX socket named by $NOTIFY_SOCKET; a name
 * starting with '@' is in the abstract namespace. The socket is
 * non-blocking: a stalled receiver costs a lost notification, never the
 * caller's event loop.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "parse.h"

int notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t n;
	socklen_t len;
	int fd, r = 1;

	if (!path || !path[0])
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sun.sun_path))
		return -EINVAL;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
		r = -errno;
	close(fd);
	return r;
}

uint64_t notify_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	uint64_t v, p;

	if (!usec || hpq_parse_uint(usec, 1, UINT64_MAX, &v) < 0)
		return 0;
	if (pid && pid[0] && (hpq_parse_uint(pid, 1, INT32_MAX, &p) < 0 || (pid_t)p != getpid()))
		return 0;
	return v;
}
