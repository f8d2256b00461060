#!/bin/sh
# t_demo.sh: `make demo`'s script (examples/demo.sh), run in a temp dir that
# also holds the README tour's ./var, as after following the tour by hand.
# The demo must run to its end in a directory of its own (./hpq-demo),
# leave ./var as it was, and show what it promises: finished tasks with
# their exit codes, a task's output read with hpq logs, a gang's two ranks,
# and preempted tasks resumed from their checkpoints. A ./hpq-demo the
# demo did not make is refused, kept, and the message says how to clear it.
#
# usage: t_demo.sh DEMO_SCRIPT BUILD_DIR
set -eu
demo=${1:?usage: t_demo.sh DEMO_SCRIPT BUILD_DIR}
build=${2:?usage: t_demo.sh DEMO_SCRIPT BUILD_DIR}

tmp=$(mktemp -d /tmp/hpq-demo-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

fail() {
	echo "t_demo: $*" >&2
	for f in demo.out refuse.out; do
		[ -f "$f" ] && { echo "---- $f" >&2; tail -60 "$f" >&2; }
	done
	exit 1
}
expect() {
	grep -q -e "$1" demo.out || fail "the demo's output lacks '$1'"
}

mkdir var
echo "the tour's state" > var/keep
sh "$demo" "$build" > demo.out 2>&1 || fail "the demo failed with exit status $?"
[ "$(ls -A var)" = keep ] && [ "$(cat var/keep)" = "the tour's state" ] ||
	fail "the demo changed ./var"
[ -e hpq-demo/.hpq-demo ] || fail "the demo did not use ./hpq-demo"
expect '^ID .* STATE .* EXIT '
expect 'COMPLETED  *0 '
expect 'FAILED  *3 '
expect '^done 24 steps'
expect '^rank 0 of 2'
expect '^rank 1 of 2'
expect 'resumed at step'
expect '^TIME  *KIND  *TASK'

mkdir other
cd other
mkdir hpq-demo
: > hpq-demo/mine
if sh "$demo" "$build" > refuse.out 2>&1; then
	fail "the demo took over a ./hpq-demo it did not make"
fi
grep -q 'rm -rf hpq-demo' refuse.out || fail "the refusal does not say how to clear it"
[ -e hpq-demo/mine ] || fail "the demo removed a ./hpq-demo it did not make"
echo "t_demo: ok"
