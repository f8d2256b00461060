# The two README commands. Both install what is missing (Debian 12,
# apt-get, as root or through sudo), then build with CMake.
#
#   make demo   build, start a small local cluster in ./hpq-demo, show it working
#   make test   build with ASan+UBSan (clang, libFuzzer) and run the ctest suite
#   make        just build (./build)
#   make bench  build the benchmarks (Release, ./build-bench), run them all
#               (about 10 minutes on 2 cores) and regenerate docs/performance.md
#   make install [DESTDIR=...] [PREFIX=/usr/local]

DEPS := build-essential cmake pkg-config clang libclang-rt-14-dev \
	libuv1-dev libev-dev libprotobuf-c-dev protobuf-c-compiler \
	libsqlite3-dev sqlite3 libinih-dev libjansson-dev libcmocka-dev \
	libsodium-dev libssl-dev libncurses-dev libmicrohttpd-dev procps \
	munge libmunge-dev python3-prometheus-client logrotate libyaml-dev
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

# What only `make bench` needs: gnuplot draws the trace replay's plots; jq
# reads `hpq status --json` in the hpq-sim scenario; Slurm's controller and
# commands answer the same questions as hpq in bench_slurm.sh, on a config
# of its own (the packaged slurmctld.service starts only once
# /etc/slurm/slurm.conf exists, which make bench never writes).
BENCH_DEPS := gnuplot-nox python3 jq slurmctld slurm-client
BENCH_BUILD ?= build-bench

.PHONY: all build deps demo test bench install clean

all: build

deps:
	@missing=$$(for p in $(DEPS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DHPQ_TESTS=OFF >/dev/null
	cmake --build build -j $(JOBS)

demo: build
	./examples/demo.sh build

test: deps
	CC=clang cmake -S . -B build-test -DHPQ_SANITIZE=ON -DHPQ_FUZZ=ON >/dev/null
	cmake --build build-test -j $(JOBS)
	cd build-test && ctest --output-on-failure -j $(JOBS) --timeout 600

# Not part of `make test`: timings are figures, not pass/fail questions.
# The sizes are in tests/bench/run_all.sh; its results stay in
# $(BENCH_BUILD)/bench-results.
bench: DEPS += $(BENCH_DEPS)
bench: deps
	JOBS=$(JOBS) ./tests/bench/run_all.sh $(BENCH_BUILD)

install: build
	cmake --install build

clean:
	rm -rf build build-test build-bench
