#!/usr/bin/env bash
# The main job (`make run`): how many chat sessions at >= 10 tokens/s each
# does this machine hold?
#
# Runs `rackllm bench` on a synthetic Llama-3.2-1B-shaped Q4_0 model built in
# memory (the real model's tensors and arithmetic, seeded random weights; no
# download, nothing needed outside this tree), writes
#   out/bench.json  every figure (docs/bench-json.md; `rackllm plan --calibrate`)
#   out/bench.svg   tok/s per session vs concurrent sessions
#   out/bench.txt   the table
# and ends with one line: the answer.
#
# Usage: scripts/main-job.sh [path/to/rackllm]
# Environment: OUT_DIR (default out), RACKLLM_BENCH_ARGS (extra bench flags,
# e.g. "--quick" or "-t 4").
set -euo pipefail

bin=${1:-build/rackllm}
out=${OUT_DIR:-out}
shape=llama3.2-1b
type=q4_0
mkdir -p "$out"

# shellcheck disable=SC2086  # RACKLLM_BENCH_ARGS is a list of flags
# --sweep-repeat 3: each sweep point times three generation windows and
# counts each session's median, so one noisy window does not move the answer.
"$bin" bench --shape "$shape" --type "$type" --sweep-repeat 3 --json "$out/bench.json" --svg "$out/bench.svg" \
  ${RACKLLM_BENCH_ARGS:-} | tee "$out/bench.txt"

# The answer, from the JSON (cJSON's layout: one key per line).
field() { awk -F'"' -v k="$1" '$2 == k { print $4; exit }' "$out/bench.json"; }
number_in() { # number_in OBJECT KEY: a number inside a top-level object
  awk -v o="\"$1\":" -v k="\"$2\":" 'index($0, o) { f = 1 } f && index($0, k) { gsub(/[^0-9.]/, ""); print; exit }' \
    "$out/bench.json"
}
sessions=$(number_in max_sessions_at_floor batched)
floor=$(awk '/"floor":/ { gsub(/[^0-9.]/, ""); print; exit }' "$out/bench.json")
threads=$(number_in machine threads)
plural=s
[ "$sessions" = 1 ] && plural=
echo "main job: this machine ($(field cpu), ${threads} threads) holds ${sessions} session${plural} of a Llama-3.2-1B-shaped" \
  "Q4_0 model at >= ${floor} tok/s each (batched decoding; $out/bench.json, $out/bench.svg)"
