#!/bin/bash
# sim_scenario.sh: hpqd at cluster scale against hpq-sim (tests/sim), run
# by hand (README.md), never by ctest.
#
# hpqd and hpq-sim of one build start on a fresh temp dir; hpq-sim opens one
# connection per simulated node; 200 teams get guarantees; tasks (1 GPU
# each) arrive over time as small arrays, round-robin over the teams, for
# RUN seconds. Reported at the end (and kept in the dir with KEEP=1):
#   hpqd's CPU share (utime+stime over wall time), and its loop thread's
#     alone (the rest is its storage and checkpoint threads), and VmRSS,
#     per live task,
#   hpq-sim's own CPU share (it shares the machine with hpqd),
#   submit-to-start latency p50/p99 (submit: when sim_submit sends the
#     SubmitRequest; start: RunTask's arrival at hpq-sim, from its --runlog),
#   tasks started and finished per second over the steady part of the run,
#   `hpq status` and `hpq list` latency during the run (medians),
#   hpqd's group commits over the run (hpq_store_commit_seconds: how many,
#     and what share took longer than 10, 25 and 50 ms), the turns of its
#     loop likewise (hpq_loop_turn_seconds), the WAL's checkpoints by
#     where they ran (hpq_store_checkpoints_total), and the size of the
#     database's WAL file at the end.
#
# Sizes are environment variables:
#   BUILD=build NODES=2000 GPUS=8 TEAMS=200 HEARTBEAT=10s RATE=200 BATCH=20
#   TASK=exp:20s RUN=120 WARMUP=20 SAMPLE=2 KEEP=0 SUBMITTERS=4
#   HPQD=$BUILD/daemon/hpqd (another hpqd binary, to compare two builds)
#   KEEP_FINISHED=1h ([tasks] keep_finished: how long a finished task stays
#   in hpqd's memory; shorter than the run, RSS follows the live tasks)
#   RESTART=0 (1: once the submits are done, hpqd is killed with SIGKILL
#   and started again on the same state; reported: how long until every
#   node has registered again, hpqd's CPU meanwhile, and the tasks still
#   running then, none started twice; give TASK long enough to outlive it)
# RATE tasks a second, submitted BATCH at a time (one SubmitRequest of an
# array, from sim_submit.c; SUBMITTERS of them, each on its own connection);
# TASK is each task's duration as hpq-sim reads it (sim:duration=TASK).
set -eu
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

BUILD=${BUILD:-build}
NODES=${NODES:-2000}
GPUS=${GPUS:-8}
TEAMS=${TEAMS:-200}
HEARTBEAT=${HEARTBEAT:-10s}
RATE=${RATE:-200}
BATCH=${BATCH:-20}
TASK=${TASK:-exp:20s}
RUN=${RUN:-120}
WARMUP=${WARMUP:-20}
SAMPLE=${SAMPLE:-2}
KEEP=${KEEP:-0}
SUBMITTERS=${SUBMITTERS:-4}
KEEP_FINISHED=${KEEP_FINISHED:-1h}
RESTART=${RESTART:-0}

HPQD=${HPQD:-$BUILD/daemon/hpqd}
HPQ=$(realpath "$BUILD/client/hpq")
SIM=$BUILD/tests/sim/hpq-sim
SUBMIT=$BUILD/tests/bench/sim_submit
for b in "$HPQD" "$HPQ" "$SIM" "$SUBMIT"; do
	[ -x "$b" ] || { echo "sim_scenario: $b is not built" >&2; exit 1; }
done

# One descriptor per node, in hpq-sim and in hpqd both.
need=$((NODES + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $need ]; then
	ulimit -n $need 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $need ] ||
	echo "sim_scenario: ulimit -n is $(ulimit -n): fewer than $NODES nodes will connect" >&2

DIR=$(mktemp -d /tmp/hpq-sim-XXXXXX)
SOCK=$DIR/hpqd.sock
export HPQ_SOCKET=$SOCK
pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

cat >"$DIR/hpqd.conf" <<EOF
[auth]
allow_root_tasks = yes
[agents]
fence_after = off
[limits]
max_connections = $((NODES + 1024))
[tasks]
keep_finished = $KEEP_FINISHED
EOF
METRICS=127.0.0.1:$(free_port)
start_hpqd() {
	"$HPQD" --foreground --state-dir "$DIR" --socket "$SOCK" --listen "" --log-level warning \
		--metrics "$METRICS" \
		--heartbeat "$HEARTBEAT" --config "$DIR/hpqd.conf" 2>>"$DIR/hpqd.log" &
	HPQD_PID=$!
	pids+=("$HPQD_PID")
	for _ in $(seq 600); do [ -S "$SOCK" ] && "$HPQ" status >/dev/null 2>&1 && break; sleep 0.1; done
}
start_hpqd

echo "nodes $NODES x $GPUS GPUs, heartbeat $HEARTBEAT, $TEAMS teams, $RATE tasks/s" \
     "($BATCH per submit) of $TASK for ${RUN}s, finished tasks kept $KEEP_FINISHED;" \
     "hpqd pid $HPQD_PID, dir $DIR"

"$SIM" --server "$SOCK" --nodes "$NODES" --gpus "$GPUS" --quiet --stats "$DIR/sim.stats" \
	--runlog "$DIR/runlog" 2>"$DIR/sim.log" &
SIM_PID=$!
pids+=("$SIM_PID")
t0=$(date +%s)
until [ -f "$DIR/sim.stats" ] && grep -qx "ready $NODES" "$DIR/sim.stats"; do
	sleep 0.5
	if [ $(($(date +%s) - t0)) -gt 300 ]; then
		echo "sim_scenario: not every node registered:" >&2
		grep -E "^(ready|connect_failures|register_errors) " "$DIR/sim.stats" >&2
		exit 1
	fi
done
echo "all $NODES nodes registered in $(($(date +%s) - t0)) s"

# Guarantees: 90% of the capacity, shared evenly.
g=$((NODES * GPUS * 9 / 10 / TEAMS))
for i in $(seq 1 "$TEAMS"); do
	"$HPQ" team add "t$i" --gpus "$g" >/dev/null
done

# The baseline: nodes and teams, no tasks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# The loop's thread is the process's first (its tid is the pid).
loop_ticks() { awk '{ print $14 + $15 }' "/proc/$1/task/$1/stat"; }
echo "baseline: hpqd VmRSS $(rss_kib $HPQD_PID) KiB with $NODES nodes, $TEAMS teams"
echo "base $(date +%s%N) $(ticks $HPQD_PID) $(rss_kib $HPQD_PID) $(ticks $SIM_PID)" \
	>"$DIR/samples"

# Submits: SUBMITTERS sim_submit processes, each with a connection of its
# own, RATE/SUBMITTERS tasks a second each in arrays of BATCH, on schedule.
submitter() {
	local k subs=()
	for k in $(seq 0 $((SUBMITTERS - 1))); do
		"$SUBMIT" --rate "$(echo "$RATE / $SUBMITTERS" | bc -l)" --batch "$BATCH" \
			--time "$RUN" --task "$TASK" --teams $((TEAMS / SUBMITTERS)) \
			--first-team $((1 + k * (TEAMS / SUBMITTERS))) >"$DIR/submits.$k" \
			2>>"$DIR/submit.err" &
		subs+=($!)
	done
	wait "${subs[@]}"
	cat "$DIR"/submits.* >"$DIR/submits"
}

# Samples: hpqd's CPU and RSS, the live tasks, status and list latency.
sampler() {
	local a b c s
	while :; do
		a=$(date +%s%N)
		s=$("$HPQ" status --json) || s='{}'
		b=$(date +%s%N)
		"$HPQ" list >/dev/null || true
		c=$(date +%s%N)
		echo "sample $a $(ticks $HPQD_PID) $(rss_kib $HPQD_PID) $(ticks $SIM_PID)" \
		     "$(jq -r '"\(.running // 0) \(.pending // 0)"' <<<"$s")" \
		     "$(((b - a) / 1000)) $(((c - b) / 1000)) $(loop_ticks $HPQD_PID)"
		sleep "$SAMPLE"
	done >>"$DIR/samples"
}

sampler &
SAMPLER=$!
pids+=("$SAMPLER")
submitter
kill $SAMPLER 2>/dev/null || true
wait $SAMPLER 2>/dev/null || true
python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
	"http://$METRICS/metrics" >"$DIR/metrics" 2>/dev/null || : >"$DIR/metrics"
wal_kib=$(du -k "$DIR/hpq.db-wal" 2>/dev/null | cut -f1)

# A crash under load: every agent reconnects and registers again at once.
stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$DIR/sim.stats"; }
restart_report=
if [ "$RESTART" = 1 ]; then
	before=$("$HPQ" status --json | jq -r '.running // 0')
	disc=$(stat_of disconnects)
	kill -9 "$HPQD_PID"
	wait "$HPQD_PID" 2>/dev/null || true
	t0=$(date +%s%N)
	until [ "$(stat_of disconnects)" -ge $((disc + NODES)) ]; do sleep 0.05; done
	start_hpqd
	tup=$(date +%s%N)
	until [ "$(stat_of ready)" = "$NODES" ]; do
		sleep 0.1
		if [ $((($(date +%s%N) - t0) / 1000000000)) -gt 600 ]; then
			echo "sim_scenario: not every node registered again in 600 s" >&2
			break
		fi
	done
	t1=$(date +%s%N)
	after=$("$HPQ" status --json | jq -r '.running // 0')
	restart_report=$(printf 'restart: SIGKILL with %s tasks running; hpqd served again %.1f s after the kill, every one of %s nodes registered again %.1f s after that; hpqd CPU %.1f s; %s tasks running then' \
		"$before" "$(echo "($tup - $t0) / 1000000000" | bc -l)" "$NODES" \
		"$(echo "($t1 - $tup) / 1000000000" | bc -l)" \
		"$(echo "$(ticks $HPQD_PID) / $(getconf CLK_TCK)" | bc -l)" "$after")
fi
kill -TERM $SIM_PID
wait $SIM_PID || true

python3 - "$DIR" "$WARMUP" "$RUN" "$(getconf CLK_TCK)" "$NODES" "$BATCH" "${wal_kib:-0}" <<'EOF'
import sys, statistics as st
d, warm, run, hz, nodes, batch = (sys.argv[1], float(sys.argv[2]), float(sys.argv[3]),
                                  int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
wal_kib = int(sys.argv[7])

def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))] if v else float('nan')

sub = {}
cli = []
for line in open(d + '/submits'):
    f = line.split()
    if len(f) == 3 and f[0].isdigit() and int(f[0]):
        sub[int(f[0])] = int(f[1])
        cli.append((int(f[2]) - int(f[1])) / 1e6)
t_start = min(sub.values()) / 1e9 if sub else 0
lat, starts, ends = [], [], []
for line in open(d + '/runlog'):
    f = line.split()
    if f[0] == 'R':
        t = int(f[1]) / 1e6
        starts.append(t)
        a = int(f[4]) or int(f[2])   # the array's id, or a plain task's own
        if a in sub:
            lat.append(int(f[1]) / 1e3 - sub[a] / 1e6)
    elif f[0] == 'E':
        ends.append(int(f[1]) / 1e6)
lo, hi = t_start + warm, t_start + run
win = hi - lo
ns = sum(1 for t in starts if lo <= t < hi)
ne = sum(1 for t in ends if lo <= t < hi)
samples = [l.split() for l in open(d + '/samples')]
base = samples[0]
rows = [s for s in samples[1:] if lo <= int(s[1]) / 1e9 < hi]
print('submitted %d tasks in %d arrays; %d started' % (len(lat), len(sub), len(starts)))
print('submit-to-start ms: p50 %.2f  p99 %.2f  max %.2f  (a submit to its committed reply: p50 %.2f ms)'
      % (q(lat, .5), q(lat, .99), max(lat) if lat else 0, q(cli, .5)))
print('steady window %.0f s: %.1f starts/s, %.1f ends/s, %.1f together'
      % (win, ns / win, ne / win, (ns + ne) / win))
if len(rows) >= 2:
    f, l = rows[0], rows[-1]
    dt = (int(l[1]) - int(f[1])) / 1e9
    print('hpqd CPU %.1f%% of one core (its loop thread %.1f%%); hpq-sim CPU %.1f%%'
          % (100 * (int(l[2]) - int(f[2])) / hz / dt, 100 * (int(l[9]) - int(f[9])) / hz / dt,
             100 * (int(l[4]) - int(f[4])) / hz / dt))
    rss = [int(r[3]) for r in rows]
    live = [int(r[5]) + int(r[6]) for r in rows]
    per = [(int(r[3]) - int(base[3])) * 1024 / max(1, int(r[5]) + int(r[6])) for r in rows]
    # Finished tasks stay in hpqd's memory too: the growth per task made so far.
    made = [sum(1 for a in sub.values() if a <= int(r[1])) * batch for r in rows]
    per_made = [(int(r[3]) - int(base[3])) * 1024 / max(1, m) for r, m in zip(rows, made)]
    print('hpqd VmRSS KiB: baseline %s (%d nodes, no tasks), median %d, max %d; live tasks '
          'median %d, max %d; (RSS - baseline) per live task: median %.0f B, per task '
          'submitted so far (finished ones included): %.0f B at the end'
          % (base[3], nodes, st.median(rss), max(rss), st.median(live), max(live),
             st.median(per), per_made[-1]))
    print('hpq status: median %.1f ms; hpq list: median %.1f ms (%d samples)'
          % (st.median(int(r[7]) / 1e3 for r in rows), st.median(int(r[8]) / 1e3 for r in rows),
             len(rows)))
# The group commits and the loop's turns over the whole run, from the
# histograms' cumulative buckets; the checkpoints by where they ran.
def histogram(name):
    b = {}
    for line in open(d + '/metrics'):
        if line.startswith(name + '_bucket{le="'):
            le = line.split('"')[1]
            b[float('inf') if le == '+Inf' else float(le)] = int(line.split()[-1])
    return b
def over(b, s):
    n = b[float('inf')]
    return 100.0 * (n - b[s]) / n if n else 0.0
commits, turns = histogram('hpq_store_commit_seconds'), histogram('hpq_loop_turn_seconds')
ckpt = {}
for line in open(d + '/metrics'):
    if line.startswith('hpq_store_checkpoints_total{where="'):
        ckpt[line.split('"')[1]] = int(line.split()[-1])
if commits:
    print('group commits: %d; over 10 ms %.1f%%, over 25 ms %.2f%%, over 50 ms %.2f%%; '
          'WAL file at the end %d KiB'
          % (commits[float('inf')], over(commits, 0.01), over(commits, 0.025),
             over(commits, 0.05), wal_kib))
if turns:
    print('loop turns: %d; over 10 ms %.3f%%, over 25 ms %.3f%%, over 50 ms %.3f%%'
          % (turns[float('inf')], over(turns, 0.01), over(turns, 0.025), over(turns, 0.05)))
if ckpt:
    print('WAL checkpoints: %d background passes, %d finished after a commit, %d forced'
          % (ckpt.get('background', 0), ckpt.get('finish', 0), ckpt.get('forced', 0)))
EOF
[ -n "$restart_report" ] && echo "$restart_report"
grep -E "^(dup_starts|max_attempt|exits_refused|disconnects|cpu_s|maxrss_kib) " "$DIR/sim.stats" |
	tr '\n' ' '
echo
[ -s "$DIR/submit.err" ] && { echo "submit errors:"; sort "$DIR/submit.err" | uniq -c | head; }
exit 0
