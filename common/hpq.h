/*
 * hpq.h: constants every hpq program agrees on: versions, default paths
 * and ports, limits. The wire schema itself is proto/hpq.proto; this is
 * the one place that holds its version number.
 */
#ifndef HPQ_H
#define HPQ_H

#include <stdint.h>

/* Bump when a message changes meaning. The daemon serves peers (agents
 * and clients) from HPQ_PROTOCOL_MIN to its own version, one release back,
 * and notes each use of an older one as deprecated; a newer peer is
 * refused, so the daemon is upgraded first (docs/upgrades.md).
 * 2: ListRequest.states replaces ListRequest.state (still served). */
#define HPQ_PROTOCOL_VERSION 2
#define HPQ_PROTOCOL_MIN 1

#ifndef HPQ_VERSION
#define HPQ_VERSION "0.0.0"
#endif

#define HPQ_DEFAULT_PORT 7420
#define HPQ_DEFAULT_SOCKET "/run/hpq/hpqd.sock"
#define HPQ_DEFAULT_STATE_DIR "/var/lib/hpq"
#define HPQ_DEFAULT_WORK_DIR "/var/lib/hpq-agent"
#define HPQ_DEFAULT_POOL "default"
/* munged's socket on Debian (and libmunge's default). */
#define HPQ_DEFAULT_MUNGE_SOCKET "/run/munge/munge.socket.2"
/* The cluster CA's certificate on client hosts: a copy of hpqd's
 * <state_dir>/tls/ca.crt, which the CLI trusts over TCP. */
#define HPQ_DEFAULT_CA_FILE "/etc/hpq/ca.crt"

/* Frames larger than this close the connection (docs/design.md §7). */
#define HPQ_FRAME_MAX (4u << 20)

#define HPQ_NAME_MAX 64 /* team, class, pool, node, task names */

/* The largest batch script a submit may carry (TaskSpec.script): the
 * client refuses a larger file and hpqd a larger request. */
#define HPQ_SCRIPT_MAX (1u << 20)

/* "No limit" in a limit vector on the wire (borrow and lend limits): a
 * count at or above HPQ_UNLIMITED_COUNT, memory at or above
 * HPQ_UNLIMITED_MEM MiB. Same values as the daemon's STATE_UNLIMITED,
 * small enough that sums over a cluster cannot overflow an int64. */
#define HPQ_UNLIMITED_COUNT 1000000000u
#define HPQ_UNLIMITED_MEM ((uint64_t)1 << 50)

#endif
