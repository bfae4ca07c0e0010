#!/usr/bin/env bash
# The same binary at its avx2 and avx512 kernel levels (RACKLLM_KERNELS), two
# alternating rounds: prefill/decode and the automatic batched session sweep.
# Run from the repository root with the model written by
# `rackllm synth --shape llama3.2-1b --type q4_0 -o l1b-q4_0.gguf`.
set -euo pipefail
model=${MODEL:-/work/models/l1b-q4_0.gguf}
out=$(dirname "$0")
for r in 1 2; do
  for lv in avx2 avx512; do
    RACKLLM_KERNELS=$lv build/rackllm bench -m "$model" --no-sweep -p 512 -n 128 -r 1 -t 2 -q --json "$out/single-$lv-$r.json"
    RACKLLM_KERNELS=$lv build/rackllm bench -m "$model" --sweep-only --partitions 0 --min-sessions 1 \
      --prompt 128 --gen 64 -t 2 -q --json "$out/sweep-$lv-$r.json"
  done
done
