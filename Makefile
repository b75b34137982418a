# The two commands a new user needs are `make run` and `make test`; both install what is
# missing (Debian packages, via scripts/install-deps.sh) and build what they need.
.PHONY: all deps peers build run test test-asan test-tsan test-long bench fuzz fuzz-short format clean

JOBS ?= $(shell nproc)
CTEST = ctest --output-on-failure -j $(JOBS)
FUZZ_SECONDS ?= 300

all: build

deps:
	@./scripts/install-deps.sh

build/%/build.ninja: CMakeLists.txt CMakePresets.json
	cmake --preset $* >/dev/null

build: deps build/release/build.ninja
	cmake --build build/release -j $(JOBS)

run: build
	build/release/apps/gapless run --data-dir ./gapless-data

test: build peers
	cd build/release && $(CTEST)

# syslog-ng's loggen for the real-client tests (downloaded and unpacked, not installed).
peers:
	@./scripts/fetch-peers.sh build/peers

test-asan: deps peers build/asan/build.ninja
	cmake --build build/asan -j $(JOBS)
	cd build/asan && $(CTEST)

test-tsan: deps peers build/tsan/build.ninja
	cmake --build build/tsan -j $(JOBS)
	cd build/tsan && TSAN_OPTIONS=halt_on_error=1 $(CTEST)

# Long trials: 100 kill -9 runs, 50,000 seeded power-loss sequences, a 1 GiB encrypted
# archive round trip.
test-long: build
	cd build/release && GAPLESS_CRASH_TRIALS=100 GAPLESS_POWER_LOSS_ITERATIONS=50000 GAPLESS_OUTPUT_RECORDS=100000 GAPLESS_UDP_DATAGRAMS=300000 GAPLESS_QUERY_RECORDS=200000 \
	  GAPLESS_ENCRYPT_BYTES=1073741824 \
	  ctest --output-on-failure -L 'crash|unit' --timeout 3600

bench: build
	build/release/bench/spool_bench --bench-dir=$(or $(BENCH_DIR),./build/bench-data)
	build/release/bench/syslog_ingest_bench --load build/release/bench/syslog_load \
	  --dir $(or $(BENCH_DIR),./build/bench-data)/syslog
	build/release/bench/e2e_bench --gapless build/release/apps/gapless \
	  --load build/release/bench/syslog_load --dir $(or $(BENCH_DIR),./build/bench-data)/e2e
	build/release/bench/e2e_bench --gapless build/release/apps/gapless --output file \
	  --load build/release/bench/syslog_load --dir $(or $(BENCH_DIR),./build/bench-data)/e2e
	build/release/bench/verify_bench --dir $(or $(BENCH_DIR),./build/bench-data)/verify
	build/release/bench/output_bench --type file --dir $(or $(BENCH_DIR),./build/bench-data)/output
	build/release/bench/output_bench --type relp --dir $(or $(BENCH_DIR),./build/bench-data)/output
	build/release/bench/output_bench --type syslog --dir $(or $(BENCH_DIR),./build/bench-data)/output
	build/release/bench/output_bench --type nats --dir $(or $(BENCH_DIR),./build/bench-data)/output
	build/release/bench/query_bench --dir $(or $(BENCH_DIR),./build/bench-data)/query
	build/release/bench/console_bench --dir $(or $(BENCH_DIR),./build/bench-data)/console

fuzz: deps build/fuzz/build.ninja
	cmake --build build/fuzz -j $(JOBS)
	./scripts/run-fuzzers.sh build/fuzz $(FUZZ_SECONDS)

fuzz-short: deps build/fuzz/build.ninja
	cmake --build build/fuzz -j $(JOBS)
	./scripts/run-fuzzers.sh build/fuzz 20

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf build
