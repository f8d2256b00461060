#!/bin/sh
# replay_smoke.sh: hpq-replay on a small excerpt of the ITP traces (the
# first 200 jobs of each cluster, 2,000 in all, on a pool small enough that
# lenders reclaim), so that the tool cannot rot: once with plain jobs, once
# with sweeps as arrays under a % limit and long jobs as chains of parts.
# It checks the CSV: one row per policy, every job accounted for, sane
# numbers. The replay itself exits non-zero when its own bookkeeping fails
# (a job that ends twice or never, an over-full pool, an array over its
# limit).
# usage: replay_smoke.sh HPQ_REPLAY OUTDIR
set -eu
replay=$1
out=$2

# run_replay DIR ARGS...: one replay into DIR, checked.
run_replay() {
	dir=$1
	shift
	rm -rf "$dir"
	"$replay" --max-jobs 200 --nodes 48 --ckpt-interval 1800 --no-plots --out "$dir" "$@" \
		>"$dir.log" 2>&1 || {
		cat "$dir.log"
		echo "replay_smoke: hpq-replay $* failed" >&2
		exit 1
	}
	check "$dir"
}

check() {
	awk -F, '
	NR == 1 {
		if ($1 != "policy" || $2 != "jobs" || $9 != "util_pct" || $10 != "jain") {
			print "replay_smoke: unexpected header: " $0; bad = 1
		}
		next
	}
	{
		rows++
		seen[$1] = 1
		# 200 of each cluster
		if ($2 != 2000) { print "replay_smoke: " $1 ": " $2 " jobs, not 2000"; bad = 1 }
		for (i = 3; i <= 8; i++)
			if ($i !~ /^[0-9.]+$/) { print "replay_smoke: " $1 ": field " i " is " $i; bad = 1 }
		if ($4 > $5 || $3 > $6) { print "replay_smoke: " $1 ": median above p95 or queue above JCT"; bad = 1 }
		if ($9 <= 0 || $9 > 100) { print "replay_smoke: " $1 ": utilisation " $9; bad = 1 }
		if ($10 <= 0 || $10 > 1.0001) { print "replay_smoke: " $1 ": Jain " $10; bad = 1 }
		if ($1 !~ /preempt/ && ($11 != 0 || $12 != 0)) { print "replay_smoke: " $1 ": preempted without preemption"; bad = 1 }
		# at this size lenders do take their guarantees back
		if ($1 ~ /preempt/ && $11 == 0) { print "replay_smoke: " $1 ": no preemption"; bad = 1 }
		# each preemption loses at most one checkpoint interval (0.5 h) of a 64-GPU job
		if ($12 > $11 * 0.5 * 64) { print "replay_smoke: " $1 ": " $12 " GPU-hours lost"; bad = 1 }
		if ($1 == "static") sq = $3
		if ($1 == "fcfs") fq = $3
	}
	END {
		n = split("static fcfs fcfs-preempt fair fair-preempt noguar-fcfs noguar-fair", want, " ")
		for (i = 1; i <= n; i++)
			if (!(want[i] in seen)) { print "replay_smoke: no row for " want[i]; bad = 1 }
		if (rows != n) { print "replay_smoke: " rows " rows, not " n; bad = 1 }
		# lending can only help queueing on the same jobs with the same guarantees
		if (fq > sq) { print "replay_smoke: fcfs queues longer than static (" fq " > " sq ")"; bad = 1 }
		exit bad
	}' "$1/summary.csv"
	lines=$(wc -l <"$1/teams.csv")
	[ "$lines" -eq 71 ] || { echo "replay_smoke: teams.csv has $lines lines, not 71" >&2; exit 1; }
	for f in util.csv replay.gp share-static.csv share-noguar-fair.csv; do
		[ -s "$1/$f" ] || { echo "replay_smoke: no $f" >&2; exit 1; }
	done
}

run_replay "$out"
# 217 arrays of 676 jobs, 639 jobs as 2,571 parts: the rows stay one per
# trace job.
run_replay "$out-workflow" --arrays --array-limit 2 --chain 6
grep -q '^arrays: [1-9][0-9]*, of [1-9][0-9]* jobs.*%2$' "$out-workflow.log" || {
	echo "replay_smoke: no arrays in the workflow replay" >&2
	exit 1
}
grep -q '^chains: [1-9][0-9]* jobs over 6 h run as [1-9][0-9]* parts' "$out-workflow.log" || {
	echo "replay_smoke: no chains in the workflow replay" >&2
	exit 1
}
echo "replay_smoke: ok"
