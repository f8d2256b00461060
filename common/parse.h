/*
 * parse.h: parsing and formatting of the values people type: durations
 * ("90", "90s", "15m", "1h30m", "2d", "1:30:00"), sizes ("512M", "64G",
 * "1T"; plain numbers are MiB), bounded integers, names, signals. Each
 * parser returns 0 and sets *ret only on success, and a negative code
 * (HPQ_EINVAL) on anything else, never a partial value.
 */
#ifndef HPQ_PARSE_H
#define HPQ_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Duration in seconds. Accepts N, Ns, Nm, Nh, Nd and concatenations
 * (1h30m), and Slurm's [[D-]HH:]MM:SS forms. */
int hpq_parse_duration(const char *s, uint64_t *ret_seconds);

/* A task's time limit, read as sbatch --time reads it: a bare number is
 * MINUTES; MM:SS, HH:MM:SS, D-HH, D-HH:MM and D-HH:MM:SS, where fields
 * after the first may exceed their clock range and simply add up (as in
 * Slurm); hpq's unit forms (90s, 2h, 1h30m, 1d); UNLIMITED, infinite or
 * none (any case) for no limit, which is 0. At most HPQ_TIME_LIMIT_MAX_S. */
#define HPQ_TIME_LIMIT_MAX_S (100ull * 366 * 24 * 3600)
int hpq_parse_time_limit(const char *s, uint64_t *ret_seconds);

/* Size in MiB. Suffixes K, M, G, T (binary, optional trailing B or iB);
 * no suffix means MiB. Rounds up to whole MiB. */
int hpq_parse_size_mib(const char *s, uint64_t *ret_mib);

/* An unsigned integer in [min, max], decimal, whole string. */
int hpq_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* A signal given as a number or a name with or without SIG ("TERM", "SIGUSR1"). */
int hpq_parse_signal(const char *s, int *ret_signo);

/* A name for a team, class, pool or node: 1..HPQ_NAME_MAX-1 of [A-Za-z0-9._-],
 * starting with a letter or digit. Returns 0 or HPQ_EINVAL. */
int hpq_check_name(const char *s);

/* A Unix group name, as team members and admins name one (@GROUP) and
 * hpqd's [auth] admin_group: 1..HPQ_GROUP_NAME_MAX of [A-Za-z0-9._-],
 * starting with a letter, digit or '_' (groupadd's rule, as Debian relaxes
 * it). Returns 0 or HPQ_EINVAL. */
#define HPQ_GROUP_NAME_MAX 32
int hpq_check_group_name(const char *s);

/* hpq_split_hostport flags. */
#define HPQ_HOSTPORT_LISTEN 1u /* also ":PORT" (empty host: any address) and port 0 */

/* Splits "HOST:PORT", "[V6ADDR]:PORT", "HOST" or a bare IPv6 address (the
 * last two get HPQ_DEFAULT_PORT) into host (NUL-terminated, without the
 * brackets) and *ret_port, 1..65535. The one parser behind hpqd --listen,
 * hpq-agent --server and the CLI's --server. Returns 0, or HPQ_EINVAL (also
 * when the host does not fit in hostlen); host and *ret_port are written
 * only on success. */
int hpq_split_hostport(const char *addr, unsigned flags, char *host, size_t hostlen,
		       uint16_t *ret_port);

/* "1h30m5s" style; 0 prints "0s". Returns buf. */
char *hpq_format_duration(uint64_t seconds, char *buf, size_t len);
/* "512M", "64G" style for a MiB count. Returns buf. */
char *hpq_format_size_mib(uint64_t mib, char *buf, size_t len);

#endif
