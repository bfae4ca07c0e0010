#!/usr/bin/env bash
# bench/ttft.sh — time to first token at capacity, through the official
# `openai` npm client (bench/chat_load.mjs): `rackllm serve` on a synthetic
# Llama-3.2-1B Q4_0 calibrates its capacity C once; then, round by round,
# each build under test serves C closed-loop chat sessions (~90-token
# prompts, 64 tokens per answer) for DURATION seconds, and then 3 x C
# sessions; the queue holds as many as the sessions. The configurations
# (a baseline build, the build under test, and that build with a TTFT
# limit) alternate within each round, forwards then backwards, so drift of
# this shared machine falls on all. One JSON line
# per run into $OUT/ttft.jsonl, and a table at the end.
#
# usage: bench/ttft.sh BUILD_DIR [BASELINE_BUILD_DIR]
# environment (defaults in brackets):
#   MODEL [BUILD_DIR/bench-llama3.2-1b-q4_0.gguf, synthesised if absent]
#   THREADS [2]  FLOOR [10]  DURATION [60] s  ROUNDS [2]  MAX_TOKENS [64]
#   PROMPT_WORDS [25] (about 90 tokens with the chat template)  SYSTEM_WORDS [0]  CAPACITY [calibrated]
#   LOADS ["1 3"]      multiples of C to run
#   SERVE_ARGS         more `serve` flags for the build under test
#   TTFT_LIMIT         also run the build under test with --ttft-limit TTFT_LIMIT
#   CONFIGS            instead of the three above: "LABEL|BINARY|FLAGS;..." (e.g. the
#                      same build with and without --prefix-cache 0)
#   OUT [BUILD_DIR/ttft]
# Everything listens on 127.0.0.1 only and stops by itself.
set -euo pipefail
build=${1:?usage: bench/ttft.sh BUILD_DIR [BASELINE_BUILD_DIR]}
base=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-2} FLOOR=${FLOOR:-10} DURATION=${DURATION:-60} ROUNDS=${ROUNDS:-2}
MAX_TOKENS=${MAX_TOKENS:-64} PROMPT_WORDS=${PROMPT_WORDS:-25} SYSTEM_WORDS=${SYSTEM_WORDS:-0}
LOADS=${LOADS:-"1 3"}
OUT=${OUT:-$build/ttft}
MODEL=${MODEL:-$build/bench-llama3.2-1b-q4_0.gguf}
mkdir -p "$OUT"
[ -f "$MODEL" ] || "$build/rackllm" synth --shape llama3.2-1b --type q4_0 -o "$MODEL" >&2

# The openai client, from the tests' lock file, installed once in the build.
node_dir=$build/node-client
mkdir -p "$node_dir"
cp "$here/tests/node/package.json" "$here/tests/node/package-lock.json" "$node_dir/"
cp "$here/bench/chat_load.mjs" "$node_dir/"
[ -d "$node_dir/node_modules/openai" ] || (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)

pid=
stop() {
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local end=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}
trap stop EXIT

start() { # start BIN ARGS...: url in $url
  local bin=$1
  shift
  "$bin" serve -m "$MODEL" --port 0 --threads "$THREADS" --floor "$FLOOR" "$@" >"$OUT/serve.out" 2>"$OUT/serve.err" &
  pid=$!
  local end=$((SECONDS + 900))
  until grep -qs "listening on" "$OUT/serve.out"; do
    kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$end" ] || { cat "$OUT/serve.err" >&2; exit 1; }
    sleep 0.5
  done
  url=$(sed -n 's/.*listening on //p' "$OUT/serve.out")
}

C=${CAPACITY:-}
if [ -z "$C" ]; then
  start "$build/rackllm" --queue 0
  C=$(curl -s "$url/health" | jq -r .capacity_calibrated)
  stop
fi
echo "capacity $C at >= $FLOOR tok/s; $DURATION s per run" >&2

run() { # run NAME BIN LOAD ARGS...
  local name=$1 bin=$2 load=$3
  shift 3
  local n=$((load * C)) q=$((load * C))
  start "$bin" --capacity "$C" --queue "$q" "$@"
  local r
  r=$(FLOOR=$FLOOR node "$node_dir/chat_load.mjs" "$url" "$n" "$DURATION" "$MAX_TOKENS" "$PROMPT_WORDS" "$SYSTEM_WORDS")
  local chunk
  chunk=$(curl -s "$url/health" | jq -r '.prefill_chunk // empty')
  stop
  echo "$r" | jq -c --arg b "$name" --argjson load "$load" --arg chunk "$chunk" \
    '. + {build: $b, load: $load, prefill_chunk: $chunk}' | tee -a "$OUT/ttft.jsonl"
}

: >"$OUT/ttft.jsonl"
configs=() # label|binary|serve flags
if [ -n "${CONFIGS:-}" ]; then
  IFS=';' read -r -a configs <<<"$CONFIGS"
else
  [ -n "$base" ] && configs+=("baseline|$base/rackllm|")
  configs+=("new|$build/rackllm|${SERVE_ARGS:-}")
  [ -n "${TTFT_LIMIT:-}" ] && configs+=("new --ttft-limit $TTFT_LIMIT|$build/rackllm|${SERVE_ARGS:-} --ttft-limit $TTFT_LIMIT")
fi
for r in $(seq "$ROUNDS"); do
  order=("${configs[@]}")
  if [ $((r % 2)) -eq 0 ]; then # every other round backwards
    order=()
    for ((i = ${#configs[@]} - 1; i >= 0; i--)); do order+=("${configs[i]}"); done
  fi
  for load in $LOADS; do
    for c in "${order[@]}"; do
      IFS='|' read -r name bin flags <<<"$c"
      read -r -a args <<<"$flags"
      run "$name" "$bin" "$load" "${args[@]}"
    done
  done
done

echo
echo "model $(basename "$MODEL"), $THREADS threads, floor $FLOOR tok/s, capacity $C, $MAX_TOKENS tokens per answer," \
  "~$PROMPT_WORDS-word chat prompts, $DURATION s per run"
echo
echo "| build | sessions | completed | 429 | failed | TTFT p50 / p90 / p99 s | slowest tok/s | p50 tok/s | below floor |"
echo "|---|---|---|---|---|---|---|---|---|"
jq -r '"| \(.build) | \(.sessions) | \(.completed) | \(.refused) | \(.failed) | \(.ttft_s.p50) / \(.ttft_s.p90) / \(.ttft_s.p99) | \(.tok_s.min) | \(.tok_s.p50) | \(.below_floor) |"' \
  "$OUT/ttft.jsonl"
