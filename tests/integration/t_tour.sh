#!/bin/sh
# t_tour.sh: the README's five-minute tour, its commands as written, in a
# temp dir. The test takes the tour's ```sh block from README.md and runs
# its lines in order: the setup (up to the export) sourced into this
# shell, so its daemons are this shell's jobs; then each hpq line. It adds
# only waits between lines, for what a person typing would wait for (the
# nodes to register, the tasks to end), and checks what the README's
# comments promise. `make` is the build the test was given: the programs
# are copied to ./build, where the tour looks.
#
# Run as root, the tour runs as an unprivileged user (made with useradd),
# since root's tasks are refused unless allowed, as the README says.
#
# usage: t_tour.sh README BUILD_DIR
set -eu
readme=${1:?usage: t_tour.sh README BUILD_DIR}
build=${2:?usage: t_tour.sh README BUILD_DIR}
user=hpqt-tour

if [ "${T_TOUR_INNER:-}" != 1 ]; then
	tmp=$(mktemp -d /tmp/hpq-tour.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	for p in daemon/hpqd agent/hpq-agent client/hpq; do
		mkdir -p "$tmp/build/$(dirname "$p")"
		cp "$build/$p" "$tmp/build/$p"
	done
	# The tour's block, between "## A five-minute tour" and its closing fence.
	awk '/^## A five-minute tour/ { f = 1 }
	     f && /^```sh/ { g = 1; next }
	     g && /^```/ { exit }
	     g { print }' "$readme" > "$tmp/tour.sh"
	[ -s "$tmp/tour.sh" ] || { echo "t_tour: no tour block in $readme" >&2; exit 1; }
	cp "$0" "$tmp/t_tour.sh"
	chmod -R a+rX "$tmp"
	if [ "$(id -u)" = 0 ]; then
		id "$user" >/dev/null 2>&1 ||
			useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$user"
		chown -R "$user:" "$tmp"
		cd "$tmp"
		T_TOUR_INNER=1 runuser -u "$user" -- sh "$tmp/t_tour.sh" "$readme" "$build" ||
			exit 1
	else
		cd "$tmp"
		T_TOUR_INNER=1 sh "$tmp/t_tour.sh" "$readme" "$build" || exit 1
	fi
	echo "t_tour: ok"
	exit 0
fi

# ---------------------------------------------------------------- as the user

fail() {
	echo "t_tour: $*" >&2
	for f in out.txt tour/*.log; do
		[ -f "$f" ] && { echo "---- $f" >&2; tail -30 "$f" >&2; }
	done
	stop
	exit 1
}
# The tour's daemons are this shell's jobs (jobs -p in a $(...) subshell
# would list none of them).
stop() {
	jobs -p > jobs.txt
	for j in $(cat jobs.txt); do kill "$j" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
# Waits (10 s at most) until the command's output matches the pattern.
wait_for() {
	i=0
	until sh -c "$1" 2>/dev/null | grep -q -e "$2"; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "waited 10 s for '$1' to show '$2'"
		sleep 0.1
	done
}

make() { :; }    # the tour's first line: built already
setup=$(grep -n '^export ' tour.sh | head -1 | cut -d: -f1)
[ -n "$setup" ] || fail "the tour has no export line"
head -n "$setup" tour.sh > setup.sh
tail -n +"$((setup + 1))" tour.sh > steps.sh
# The daemons log to the terminal in the tour; here, to files.
exec 3>&2 2> tour-stderr.log
. ./setup.sh
exec 2>&3
trap stop EXIT
wait_for "hpq node list --json" '"name": "node2"'
wait_for "hpq node list" 'node1'

: > out.txt
while IFS= read -r line; do
	cmd=${line%%#*}
	[ -n "$(printf '%s' "$cmd" | tr -d ' ')" ] || continue
	case $cmd in
	*"hpq list --all"*)
		# The README says COMPLETED: both tasks have ended.
		wait_for "hpq list --all" '^ *2 .*COMPLETED'
		wait_for "hpq list --all" '^ *1 .*COMPLETED' ;;
	esac
	echo "\$ $cmd" >> out.txt
	sh -c "$cmd" >> out.txt 2>&1 || fail "'$cmd' failed"
done < steps.sh

grep -q 'node1' out.txt && grep -q 'node2' out.txt || fail "hpq node list lacks the nodes"
grep -q 'rank [01] of 2' out.txt || fail "hpq logs 2 lacks the gang's output"
[ "$(grep -c 'COMPLETED' out.txt)" -ge 2 ] || fail "hpq list --all lacks two COMPLETED"
stop
