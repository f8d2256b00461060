#!/bin/bash
# bench_slurm.sh: hpq and Slurm side by side, in the same run on the same
# machine, run by `make bench` and by hand (README.md), never by ctest.
#
# It starts a real slurmctld (Debian's Slurm: packages slurmctld and
# slurm-client) on a fresh state directory, with a private munged on a
# fresh key and no slurmd, so that nothing ever runs, and fills it with
# JOBS held jobs (sbatch --hold, SBATCH_PROCS at once). Beside it, a real
# hpqd of BUILD with JOBS held tasks (bench_cli --serve). Then it asks both
# the same questions, each a whole process timed from fork to exit with
# its output to /dev/null, the two programs in turn, RUNS times:
#
#   squeue             and  hpq list            the queue
#   squeue --json      and  hpq list --json     the queue, for a script
#   squeue -j ID       and  hpq show ID         one job in the middle
#
# and once each, at the end, since it empties the queue:
#
#   scancel -u U -t PENDING  and  hpq cancel --user U --state pending
#
# It prints "side: ..." lines (medians, and Slurm's median over hpq's), how
# long the fill took, and both daemons' VmRSS with the queue full. Every
# answer is checked first to list the whole queue.
#
#   BUILD=build-bench JOBS=10000 RUNS=9 SBATCH_PROCS=8 KEEP=0 tests/bench/bench_slurm.sh
#
# KEEP=1 keeps the temp dir (slurm.conf, slurmctld.log, munged's log).
set -eu
export LC_ALL=C
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

BUILD=${BUILD:-build}
JOBS=${JOBS:-10000}
RUNS=${RUNS:-9}
SBATCH_PROCS=${SBATCH_PROCS:-8}
KEEP=${KEEP:-0}

for v in "$JOBS" "$RUNS" "$SBATCH_PROCS"; do
	case $v in
	'' | *[!0-9]*) echo "bench_slurm: JOBS, RUNS and SBATCH_PROCS are numbers" >&2; exit 2 ;;
	esac
done
if [ "$JOBS" -lt 1 ] || [ "$RUNS" -lt 1 ] || [ "$SBATCH_PROCS" -lt 1 ]; then
	echo "bench_slurm: JOBS, RUNS and SBATCH_PROCS are at least 1" >&2
	exit 2
fi

HPQ=$(realpath "$BUILD/client/hpq")
SERVE=$BUILD/tests/bench/bench_cli
MUNGED=${MUNGED:-/usr/sbin/munged}
SLURMCTLD=${SLURMCTLD:-/usr/sbin/slurmctld}
for b in "$HPQ" "$SERVE" "$MUNGED" "$SLURMCTLD" "$(command -v sbatch || echo sbatch)" \
	"$(command -v squeue || echo squeue)" "$(command -v scancel || echo scancel)"; do
	[ -x "$b" ] || { echo "bench_slurm: $b is not installed or built" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/hpq-slurm-XXXXXX)
chmod 755 "$DIR"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$KEEP" = 1 ]; then echo "bench_slurm: kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# wait_for SECONDS COMMAND...: until COMMAND succeeds, or fail.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
}

# munged, on a key of its own: as in tests/integration/t_munge.c.
mkdir -m 755 "$DIR/munge"
head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
chmod 600 "$DIR/munge/munge.key"
"$MUNGED" -F -f --socket="$DIR/munge/munge.sock" --key-file="$DIR/munge/munge.key" \
	--pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
	--seed-file="$DIR/munge/munged.seed" >"$DIR/munge/munged.out" 2>&1 &
pids+=($!)
wait_for 30 test -S "$DIR/munge/munge.sock" ||
	{ echo "bench_slurm: munged did not start:"; cat "$DIR/munge/munged.out"; exit 1; } >&2

# slurmctld: one node that never registers (no slurmd), jobs held anyway.
port=$(free_port)
mkdir "$DIR/state" "$DIR/spool"
cat >"$DIR/slurm.conf" <<EOF
ClusterName=hpqbench
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.sock
CredType=cred/munge
SlurmUser=$(id -un)
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmctldDebug=error
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
MaxJobCount=$((JOBS * 2 + 1000))
NodeName=n1 CPUs=1 State=UNKNOWN
PartitionName=bench Nodes=n1 Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$DIR/slurm.conf
"$SLURMCTLD" -D -i >"$DIR/slurmctld.out" 2>&1 &
ctld=$!
pids+=("$ctld")
wait_for 60 sh -c 'scontrol ping | grep -q UP' ||
	{ echo "bench_slurm: slurmctld did not start:"; tail -n 20 "$DIR/slurmctld.out"; exit 1; } >&2
slurm_version=$(squeue --version | sed 's/^slurm[-a-z]* //')

# hpqd with JOBS held tasks.
"$SERVE" --serve "$JOBS" >"$DIR/serve.out" 2>&1 &
pids+=($!)
wait_for 600 grep -q '^HPQ_SOCKET=' "$DIR/serve.out" ||
	{ echo "bench_slurm: bench_cli --serve did not start:"; cat "$DIR/serve.out"; exit 1; } >&2
export HPQ_SOCKET
HPQ_SOCKET=$(sed -n 's/^HPQ_SOCKET=\([^ ]*\) .*/\1/p' "$DIR/serve.out")
hpqd=$(sed -n 's/^HPQ_SOCKET=.*(hpqd \([0-9]*\),.*/\1/p' "$DIR/serve.out")
first=$(sed -n 's/^HPQ_SOCKET=.*tasks \([0-9]*\)-.*/\1/p' "$DIR/serve.out")
hpq_version=$("$HPQ" --version | head -n 1)

echo "hpq and Slurm side by side: $hpq_version and Slurm $slurm_version (slurmctld, no" \
	"slurmd), $JOBS held jobs each, $RUNS runs of each question in turn"

# The fill: sbatch is one process a job.
ctld_empty=$(rss_kib "$ctld")
t0=$EPOCHREALTIME
seq "$JOBS" | xargs -P "$SBATCH_PROCS" -I{} sbatch -Q --hold -J bench -o /dev/null \
	--wrap=true
t1=$EPOCHREALTIME
fill_us=$((${t1/./} - ${t0/./}))
[ "$(squeue -h | wc -l)" -eq "$JOBS" ] ||
	{ echo "bench_slurm: slurmctld holds $(squeue -h | wc -l) jobs, not $JOBS" >&2; exit 1; }
ctld_full=$(rss_kib "$ctld")
awk -v n="$JOBS" -v us="$fill_us" -v p="$SBATCH_PROCS" \
	'BEGIN { printf "filled: Slurm %d jobs in %.1f s (%.0f/s, sbatch in %d processes at once)\n",
		 n, us / 1e6, n / (us / 1e6), p }'
awk -v n="$JOBS" -v e="$ctld_empty" -v f="$ctld_full" -v h="$(rss_kib "$hpqd")" \
	'BEGIN { printf "memory: VmRSS with the queue full: slurmctld %d KiB (%d KiB empty, %.0f B per job), hpqd %d KiB\n",
		 f, e, (f - e) * 1024 / n, h }'

# Every answer lists the whole queue (or the one job) before it is timed.
mid=$(((JOBS + 1) / 2))
slurm_mid=$(squeue -h -o %i | sort -n | sed -n "${mid}p")
hpq_mid=$((first + mid - 1))
n=$(squeue -h | wc -l)
[ "$n" -eq "$JOBS" ] || { echo "bench_slurm: squeue listed $n jobs" >&2; exit 1; }
n=$("$HPQ" list | grep -c PENDING)
[ "$n" -eq "$JOBS" ] || { echo "bench_slurm: hpq list listed $n tasks" >&2; exit 1; }
n=$(squeue --json | grep -c '"job_id":' || true)
[ "$n" -eq "$JOBS" ] || { echo "bench_slurm: squeue --json listed $n jobs" >&2; exit 1; }
n=$("$HPQ" list --json | grep -c '^    "id":' || true)
[ "$n" -eq "$JOBS" ] || { echo "bench_slurm: hpq list --json listed $n tasks" >&2; exit 1; }
squeue -h -j "$slurm_mid" | grep -q . || { echo "bench_slurm: squeue -j found no job" >&2; exit 1; }
"$HPQ" show "$hpq_mid" >/dev/null

# timed VAR COMMAND...: one run of COMMAND, output to /dev/null; its
# microseconds appended to the array VAR.
timed() {
	local -n into=$1
	shift
	local t0=$EPOCHREALTIME
	"$@" >/dev/null 2>&1 || { echo "bench_slurm: $* failed" >&2; exit 1; }
	local t1=$EPOCHREALTIME
	into+=($((${t1/./} - ${t0/./})))
}

# median VAR: of the array VAR, in ms.
median() {
	local -n of=$1
	printf '%s\n' "${of[@]}" | sort -n |
		awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
			printf "%.1f", m / 1000 }'
}

# side QUESTION SLURM_LABEL SLURM_VAR HPQ_LABEL HPQ_VAR
side() {
	local s h
	s=$(median "$3")
	h=$(median "$5")
	awk -v q="$1" -v sl="$2" -v s="$s" -v hl="$4" -v h="$h" \
		'BEGIN { printf "side: %s: Slurm `%s` %s ms, hpq `%s` %s ms, Slurm/hpq %.1f\n",
			 q, sl, s, hl, h, s / h }'
}

# The arrays that timed fills, by name (so shellcheck cannot see them used).
# shellcheck disable=SC2034
sq=() hl=() sj=() hj=() s1=() h1=()
for ((r = 0; r < RUNS; r++)); do
	timed sq squeue
	timed hl "$HPQ" list
	timed sj squeue --json
	timed hj "$HPQ" list --json
	timed s1 squeue -j "$slurm_mid"
	timed h1 "$HPQ" show "$hpq_mid"
done
side "the queue" "squeue" sq "hpq list" hl
side "the queue as JSON" "squeue --json" sj "hpq list --json" hj
side "one job" "squeue -j ID" s1 "hpq show ID" h1

# shellcheck disable=SC2034
sc=() hc=()
timed sc scancel -u "$(id -un)" -t PENDING
timed hc "$HPQ" cancel --user "$(id -un)" --state pending
side "cancel every pending job, once" "scancel -u U -t PENDING" sc \
	"hpq cancel --user U --state pending" hc
