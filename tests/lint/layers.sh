#!/bin/sh
# layers.sh: the daemon's layers, checked from its includes.
#
# docs/architecture.md draws hpqd as floors, and arrows run only down or
# along a floor: a file may include the headers of its own floor and of
# the floors below, never of a floor above. This check reads every
# daemon/*.c and *.h, maps each to its floor by name, and fails on any
# include that points up, naming both ends. Headers from common/ and the
# generated protocol are the ground floor and always allowed.
#
# usage: layers.sh DAEMON_DIR
set -eu
dir=${1:?usage: layers.sh DAEMON_DIR}

floor() {
	case "$1" in
	scheduler.* | calendar.* | config.* | config-check.* | store.* | store-*) echo 1 ;;
	state.* | state-internal.h | change.c | task.* | team.* | node.* | policy.* | queue.*) echo 2 ;;
	server.* | context.h) echo 3 ;;
	agentlink.* | dispatch.* | events.* | usage.* | logs.* | repair.* | status.* | metrics.* | retention.*) echo 4 ;;
	request.h | req-*.c | task-reply.*) echo 5 ;;
	router.*) echo 6 ;;
	hpqd.* | main.c) echo 7 ;;
	groups.* | actor.*) echo 1 ;;
	rights.* | trust.* | update.*) echo 2 ;;
	array.* | depend.* | select.* | control.* | plan.* | submit.*) echo 2 ;;
	ca.* | backup.*) echo 1 ;;
	deprecation.* | upgrade.*) echo 4 ;;
	autoscale-plan.*) echo 1 ;;
	autoscale.*) echo 4 ;;
	*) echo "" ;;
	esac
}

bad=0
for path in "$dir"/*.c "$dir"/*.h; do
	file=${path##*/}
	from=$(floor "$file")
	if [ -z "$from" ]; then
		echo "layers: $file has no floor: add it to tests/lint/layers.sh and docs/architecture.md"
		bad=1
		continue
	fi
	for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$path"); do
		[ -f "$dir/$inc" ] || continue          # common/ or generated: the ground floor
		to=$(floor "$inc")
		if [ -n "$to" ] && [ "$to" -gt "$from" ]; then
			echo "layers: $file (floor $from) includes $inc (floor $to): an arrow up"
			bad=1
		fi
	done
done
[ $bad -eq 0 ] && echo "layers: every include of daemon/ points down or along its floor"
exit $bad
