#!/bin/sh
# replay_figures.sh: hpq-replay's figures on traces small enough to work
# out by hand (ten teams of one or two jobs on 10 nodes, one node each by
# demand), so that a wrong statistic shows, not only a missing one.
# usage: replay_figures.sh HPQ_REPLAY OUTDIR
set -eu
replay=$1
out=$2

rm -rf "$out"
mkdir -p "$out/late"

# trace DIR: ten empty clusterNN.csv files in DIR
trace() {
	for c in 01 02 03 04 05 06 07 08 09 10; do
		echo 'job_id,submission_time,duration,num_gpu' >"$1/cluster$c.csv"
	done
}

# expect FILE ROWKEY COLUMN WANT: the row whose first fields are ROWKEY
# (comma-separated) has WANT in COLUMN (named by the header).
expect() {
	awk -F, -v key="$2" -v col="$3" -v want="$4" -v file="$1" '
	NR == 1 {
		for (i = 1; i <= NF; i++)
			if ($i == col)
				c = i
		nk = split(key, k, ",")
		next
	}
	{
		for (i = 1; i <= nk; i++)
			if ($i != k[i])
				next
		found = 1
		if (c && $c != want) {
			print "replay_figures: " file " " key ": " col " is " $c ", not " want
			wrong = 1
		}
	}
	END {
		if (!c)
			print "replay_figures: " file ": no column " col
		else if (!found)
			print "replay_figures: " file ": no row " key
		exit !c || !found || wrong
	}' "$1" || bad=1
}
bad=0

# Every team submits one 8-GPU job of an hour at 10:00 and team 1 a second
# one; team 10 submits another at 12:00, the window's end. Team 1's second
# job waits an hour under every policy (the pool is full), the other 11 not
# at all.
trace "$out/late"
for c in 01 02 03 04 05 06 07 08 09 10; do
	echo "j$c,36000,3600,8" >>"$out/late/cluster$c.csv"
done
echo 'j01b,36000,3600,8' >>"$out/late/cluster01.csv"
echo 'j10b,43200,3600,8' >>"$out/late/cluster10.csv"
"$replay" --traces "$out/late" --nodes 10 --no-plots --policy static --out "$out/late-out" \
	>"$out/late.log" 2>&1 || {
	cat "$out/late.log"
	echo "replay_figures: hpq-replay failed" >&2
	exit 1
}
s=$out/late-out/summary.csv
t=$out/late-out/teams.csv
# delays: eleven 0 s and one 3,600 s; the 95th percentile of twelve is the
# twelfth (nearest rank: 11 of 12 is under 95%)
expect "$s" static queue_median_s 0
expect "$s" static queue_p95_s 3600
expect "$s" static jct_median_s 3600
expect "$s" static jct_p95_s 7200
# team 1's two delays, 0 s and 3,600 s: the median of an even count is
# the mean of the middle two
expect "$t" static,1 queue_median_s 1800
expect "$t" static,1 queue_p95_s 3600
expect "$t" static,10 queue_median_s 0
# from 10:00 to 12:00 on 80 GPUs: 80 of them for an hour, then 8
expect "$s" static util_pct 55.00
# from the first submission, 10:00, to the last end, 13:00 (not from the
# trace's zero: 13 h)
expect "$s" static makespan_h 3.0
# the table it prints says the same as summary.csv
grep -q '^static  *300s  *0s  *3600s  *3900s  *55\.00 ' "$out/late.log" || {
	cat "$out/late.log"
	echo "replay_figures: the printed table disagrees with summary.csv" >&2
	bad=1
}

# Two jobs end at the same instant, and which of them the replay reports
# first decides where the next job goes. Team 1 (within its guarantee or
# on idle compute nobody reclaims: the other teams' jobs come at 10,000 s,
# when it is done) fills 8 nodes for 2,000 s and two more with a long and
# a short 4-GPU job each (L0 1,000 s and S0, L1 500 s and S1, S0 and S1
# ending together at 100 s). J (4 GPUs) waits for a half node, K (8 GPUs)
# for a whole one. Ends of one instant go in trace order: S0, then S1, so
# the dispatcher hands S1's node to J, and K waits for L0's node at
# 1,000 s (940 s). The -preempt policies preempt nothing here, and their
# checkpoints (every 30 s) must not change that order.
mkdir -p "$out/tie"
trace "$out/tie"
for c in 02 03 04 05 06 07 08 09 10; do
	echo "x$c,10000,1,1" >>"$out/tie/cluster$c.csv"
done
{
	for i in 1 2 3 4 5 6 7 8; do
		echo "f$i,0,2000,8"
	done
	echo 'l0,0,1000,4'
	echo 's0,0,100,4'
	echo 'l1,0,500,4'
	echo 's1,0,100,4'
	echo 'j,50,5000,4'
	echo 'k,60,100,8'
} >>"$out/tie/cluster01.csv"
"$replay" --traces "$out/tie" --nodes 10 --no-plots --ckpt-interval 30 --out "$out/tie-out" \
	>"$out/tie.log" 2>&1 || {
	cat "$out/tie.log"
	echo "replay_figures: hpq-replay failed" >&2
	exit 1
}
s=$out/tie-out/summary.csv
t=$out/tie-out/teams.csv
for p in fcfs fcfs-preempt fair fair-preempt; do
	expect "$s" $p preemptions 0
	expect "$t" $p,1 queue_p95_s 940
	expect "$t" $p,1 queue_mean_s 71
done

[ "$bad" = 0 ] || exit 1
echo "replay_figures: ok"
