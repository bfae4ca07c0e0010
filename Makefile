# rackllm — the two entry points of the README, over CMake.
#   make run    installs dependencies, builds, runs the main job
#   make test   installs dependencies, builds, runs every test (also under
#               ASan+UBSan, a short fuzz run, and the kernel tests of an
#               aarch64 cross build under qemu)
# Other targets: build, asan, fuzz, test-arm, clean.

JOBS ?= $(shell nproc)
BUILD ?= build

.PHONY: all deps build run test test-release test-asan test-arm fuzz fuzz-long clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@scripts/main-job.sh $(BUILD)/rackllm

test: test-release test-asan fuzz test-arm

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRACKLLM_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS) -LE slow

# The aarch64 kernels (NEON, dotprod, i8mm), cross-compiled and run under
# qemu-user on emulated CPUs with and without those extensions.
ARM_BUILD ?= build-arm64
test-arm:
	@scripts/deps-arm64.sh
	@cmake -S . -B $(ARM_BUILD) -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(ARM_BUILD) -j $(JOBS) --target test_kernels test_golden test_batch
	@scripts/test-arm.sh $(ARM_BUILD)

# A bounded fuzz run of every target (CI); `make fuzz-long` for a real one.
FUZZ_SECONDS ?= 60
fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DRACKLLM_FUZZ=ON -DRACKLLM_SANITIZE=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

fuzz-long:
	$(MAKE) fuzz FUZZ_SECONDS=3600

clean:
	rm -rf build build-asan build-fuzz $(ARM_BUILD)
