/*
 * cmd-acct.h: the parts of `hpq acct` the unit tests reach.
 */
#ifndef HPQ_CMD_ACCT_H
#define HPQ_CMD_ACCT_H

#include <stddef.h>
#include <stdint.h>

/* A --since/--until value as unix milliseconds: "now", a date or date and
 * time in local time ("2026-12-04", "2026-12-04T10:00", "2026-12-04
 * 10:00:30"), or a duration ago ("2h", "-2h", "1d"). Returns 0, or
 * HPQ_EINVAL with a message in err. */
int acct_parse_time(const char *s, int64_t now_ms, int64_t *ret_ms, char *err, size_t errlen);

/* The columns hpq acct prints when --format is not given. */
#define ACCT_DEFAULT_COLUMNS                                                            \
	"id,name,user,team,class,state,exit,reason,start,end,elapsed,nodes,gpu_hours,"  \
	"cpu_time,peak_mem,attempts,preemptions"

#endif
