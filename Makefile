# A thin layer over CMake. `make demo` and `make test` work on a fresh
# Debian 12 machine: they install what they need first.
BUILD       ?= build
JOBS        ?= $(shell nproc)
CMAKE_FLAGS ?=
CTEST_FLAGS ?=
DATA_DIR    ?= $(CURDIR)/demo-data

.PHONY: deps configure build test demo demo-real real-model bench test-asan test-tsan clean format

deps:
	./deploy/install-deps.sh

configure:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# The real model's tests skip, saying so, when it cannot be fetched.
real-model:
	./deploy/fetch-real-model.sh || echo "make: SmolLM2-135M-Instruct not fetched; the real-model tests will skip"

test: deps build real-model
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

demo: deps build
	./deploy/demo.sh $(BUILD) $(DATA_DIR)

# Two rounds on SmolLM2-135M-Instruct (docs/demo.md).
demo-real: deps build
	./deploy/demo-real.sh $(BUILD) $(CURDIR)/demo-data-real

bench: build
	./deploy/bench.sh $(BUILD)

test-asan:
	./deploy/install-deps.sh
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERD_SANITIZE=ON \
	      -DHERD_CUDA=OFF -DHERD_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

# ThreadSanitizer on what runs threads in one process: the HTTP server and
# client (TLS included), the scheduler, the orchestrator with its
# background thread. deploy/tsan.supp silences the uninstrumented
# libraries only.
TSAN_TESTS ?= Server|Client|Tls|Scheduler|Orchestrator|Router|Auth|Upload
test-tsan:
	./deploy/install-deps.sh
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERD_TSAN=ON \
	      -DHERD_CUDA=OFF -DHERD_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build build-tsan -j $(JOBS) --target herd_api_tests herd_daemon_tests
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/deploy/tsan.supp" \
	  ctest --test-dir build-tsan --output-on-failure -j $(JOBS) -R '$(TSAN_TESTS)' $(CTEST_FLAGS)

format:
	git ls-files '*.h' '*.cpp' '*.cu' | xargs clang-format -i

clean:
	rm -rf $(BUILD) build-asan build-tsan
