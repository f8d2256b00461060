#!/bin/sh
# run_all.sh: what `make bench` runs. Builds the benchmarks (Release, no
# sanitizers) in BUILD, runs each in turn with sizes that fit a small
# machine (2 cores: the whole run takes about 10 minutes), keeps each
# one's output in RESULTS/NAME.txt (and its command, exit status and wall
# time in RESULTS/NAME.meta), then regenerates docs/performance.md from
# them with perfpage.py.
#
#   tests/bench/run_all.sh [BUILD [RESULTS]]   (defaults: build-bench, BUILD/bench-results)
#
# A benchmark whose program or script is not in this tree is skipped with
# a line that says so; one that fails is recorded as failed and the rest
# still run. The sizes are below, one variable per benchmark; raise them
# on a bigger machine (the page records the commands used).
set -u

cd "$(dirname "$0")/../.." || exit 1
BUILD=${1:-build-bench}
RESULTS=${2:-$BUILD/bench-results}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
B=$BUILD/tests/bench

# Sizes for a 2-core machine; every benchmark prints medians over its runs.
SCHED_ARGS=${SCHED_ARGS:---runs 5 --pending 1000000}
SUBMIT_ARGS=${SUBMIT_ARGS:---clients 1,8 --tasks 2000 --runs 3 --transport unix,tls}
RTT_ARGS=${RTT_ARGS:---calls 1000 --execs 100}
STATUS_ARGS=${STATUS_ARGS:-100000 1000}
AUTOSCALE_ARGS=${AUTOSCALE_ARGS:-10000 1000}
E2E_ARGS=${E2E_ARGS:---tasks 500 --runs 3 --latency 100}
ARRAY_ARGS=${ARRAY_ARGS:---runs 10 --pending 1000000}
# The hpq-sim scenario takes its sizes from the environment (its defaults
# but a shorter run); the others below come with their own defaults.
SIM_ENV=${SIM_ENV:-RUN=60 WARMUP=10}
REPLAY_ARGS=${REPLAY_ARGS:-}
WORKFLOW_ARGS=${WORKFLOW_ARGS:---arrays --array-limit 4 --chain 24}
CLI_ARGS=${CLI_ARGS:---runs 9}
# hpq and Slurm side by side: like the hpq-sim scenario, sizes from the
# environment. 10,000 held jobs: sbatch fills about 100 a second here.
SLURM_ENV=${SLURM_ENV:-JOBS=10000 RUNS=5}
MEMORY_ARGS=${MEMORY_ARGS:-}
RESTART_ARGS=${RESTART_ARGS:---restart 1000000,100000}
PLAN_ARGS=${PLAN_ARGS:---runs 9}

# Warnings stay warnings here: an optimised build finds format-truncation
# cases that the default (unoptimised) build does not.
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DHPQ_TESTS=ON -DHPQ_SANITIZE=OFF \
	-DHPQ_FUZZ=OFF -DCMAKE_C_FLAGS=-Wno-error=format-truncation >/dev/null || exit 1
targets=$(cmake --build "$BUILD" --target help | sed -n 's/^\.\.\. \([^ ]*\).*/\1/p')
has_target() { printf '%s\n' "$targets" | grep -qx "$1"; }

want="hpqd hpq hpq-agent hpq-supervisor"
for t in sched_bench bench_submit bench_rtt bench_status bench_autoscale bench_e2e bench_array \
	hpq-sim sim_submit hpq-replay bench_cli bench_restart bench_memory bench_plan_search; do
	has_target "$t" && want="$want $t"
done
echo "== building:$want"
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$JOBS" --target $want || exit 1

rm -rf "$RESULTS"
mkdir -p "$RESULTS" || exit 1
start_all=$(date +%s)

# run NAME COMMAND...: runs it, output to RESULTS/NAME.txt and the terminal.
run() {
	name=$1
	shift
	echo "== $name: $*"
	t0=$(date +%s)
	{ "$@" 2>&1; echo "rc=$?" >"$RESULTS/$name.rc"; } | tee "$RESULTS/$name.txt"
	rc=$(sed 's/rc=//' "$RESULTS/$name.rc")
	rm -f "$RESULTS/$name.rc"
	t1=$(date +%s)
	{
		echo "command=$*"
		echo "rc=$rc"
		echo "seconds=$((t1 - t0))"
	} >"$RESULTS/$name.meta"
	[ "$rc" = 0 ] || echo "== $name FAILED (exit $rc): the page records it"
}

# skip NAME WHY: records a benchmark that is not in this tree.
skip() {
	echo "== $1: skipped: $2"
	printf 'skipped=%s\n' "$2" >"$RESULTS/$1.meta"
}

# run_bin NAME ARGS: a benchmark program of the build, if it was built.
run_bin() {
	name=$1
	args=$2
	if [ -x "$B/$name" ]; then
		# shellcheck disable=SC2086
		run "$name" "$B/$name" $args
	else
		skip "$name" "no $name in this tree"
	fi
}

run_bin sched_bench "$SCHED_ARGS"
run_bin bench_submit "$SUBMIT_ARGS"
run_bin bench_rtt "$RTT_ARGS"
run_bin bench_status "$STATUS_ARGS"
run_bin bench_autoscale "$AUTOSCALE_ARGS"
run_bin bench_e2e "$E2E_ARGS"
run_bin bench_array "$ARRAY_ARGS"
run_bin bench_plan_search "$PLAN_ARGS"

# The hpq-sim scenario: a script that takes the build directory and its
# sizes from the environment.
if [ -f tests/bench/sim_scenario.sh ]; then
	# shellcheck disable=SC2086
	run sim env BUILD="$BUILD" $SIM_ENV bash tests/bench/sim_scenario.sh
else
	skip sim "no tests/bench/sim_scenario.sh (hpq-sim) in this tree"
fi

# The trace replay: CSV and gnuplot PNGs under RESULTS/replay, the PNGs
# then copied to docs/perf/ by perfpage.py.
replay=$(find "$BUILD" -name hpq-replay -type f -perm -u+x 2>/dev/null | head -n 1)
if [ -n "$replay" ]; then
	mkdir -p "$RESULTS/replay"
	# shellcheck disable=SC2086
	run replay "$replay" --out "$RESULTS/replay" $REPLAY_ARGS
	# The same jobs with the workflow features: sweeps as arrays (alone,
	# then with a % limit) and jobs over a day as chains of afterok parts.
	# shellcheck disable=SC2086
	run replay-arrays "$replay" --no-plots --arrays --out "$RESULTS/replay-arrays" $REPLAY_ARGS
	# shellcheck disable=SC2086
	run replay-workflow "$replay" --no-plots $WORKFLOW_ARGS --out "$RESULTS/replay-workflow" \
		$REPLAY_ARGS
else
	skip replay "no hpq-replay in this tree"
fi

run_bin bench_cli "$CLI_ARGS"
# The same questions to a real slurmctld and to hpqd, in turn (Debian's
# Slurm, which `make bench` installs; by hand it may be missing).
if [ ! -f tests/bench/bench_slurm.sh ]; then
	skip bench_slurm "no tests/bench/bench_slurm.sh in this tree"
elif [ ! -x /usr/sbin/slurmctld ] || ! command -v sbatch >/dev/null; then
	skip bench_slurm "Slurm is not installed (Debian packages slurmctld and slurm-client)"
else
	# shellcheck disable=SC2086
	run bench_slurm env BUILD="$BUILD" $SLURM_ENV bash tests/bench/bench_slurm.sh
fi
# bench_memory twice: memory per pending task, then a restart on a large
# database (its two modes).
run_bin bench_memory "$MEMORY_ARGS"
if [ -x "$B/bench_memory" ]; then
	# shellcheck disable=SC2086
	run bench_restart "$B/bench_memory" $RESTART_ARGS
else
	skip bench_restart "no bench_memory in this tree"
fi

echo "== all benchmarks: $(($(date +%s) - start_all)) s"
python3 tests/bench/perfpage.py "$RESULTS" docs/performance.md docs/perf
