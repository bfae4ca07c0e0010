#!/usr/bin/env bash
# Runs the aarch64 build's kernel tests under qemu-user, on two emulated
# CPUs so that every Arm code path is exercised, not just compiled:
#   max        (has dotprod and i8mm): test_kernels forces every level (ref,
#              neon, dotprod, i8mm); the golden tests run at the level
#              detected (i8mm) on the tiny real model and two quantized
#              ones, the batch test on the real model and a synthetic
#              Q4_K_M one; the Qwen2/Qwen3 golden files at every Arm
#              level (biases, per-head norms, NeoX RoPE);
#   cortex-a72 (plain NEON, no dotprod): the level detected must be neon.
# Usage: scripts/test-arm.sh BUILD_DIR   (from the repository root)
set -euo pipefail
build=${1:-build-arm64}
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64)
fail=0

run() { # cpu, test, args...
  local cpu=$1; shift
  local start=$SECONDS
  if QEMU_CPU=$cpu "$qemu" "$build/$1" "${@:2}" > "$build/arm-$cpu-$1.log" 2>&1; then
    echo "test-arm: $cpu $* ok ($((SECONDS - start)) s): $(tail -1 "$build/arm-$cpu-$1.log")"
  else
    echo "test-arm: $cpu $* FAILED ($((SECONDS - start)) s):"
    tail -20 "$build/arm-$cpu-$1.log"
    fail=1
  fi
}

run max test_kernels
run max test_golden stories260K
run max test_golden synth-s512-q4_0
run max test_golden synth-s512-q4_k_m
run max test_batch stories260K
run max test_batch q4_k_m
run max test_golden qwen2-q8_0 qwen3-f16
run max test_batch qwen3-q4_0
run cortex-a72 test_kernels
run cortex-a72 test_golden stories260K
run cortex-a72 test_batch stories260K

# the levels each CPU must report
grep -q "^level i8mm" "$build/arm-max-test_kernels.log" || { echo "test-arm: i8mm level not tested on max"; fail=1; }
if grep -q "^level dotprod" "$build/arm-cortex-a72-test_kernels.log"; then
  echo "test-arm: cortex-a72 claims dotprod"; fail=1
fi
grep -q "^level neon" "$build/arm-cortex-a72-test_kernels.log" || { echo "test-arm: neon level not tested"; fail=1; }
exit $fail
