# shellcheck shell=sh
# bench-lib.sh: shell helpers that the benchmark scripts (sim_scenario.sh,
# bench_slurm.sh) source.

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# rss_kib PID: the process's resident memory, in KiB.
rss_kib() {
	awk '/^VmRSS/ { print $2 }' "/proc/$1/status"
}
