#!/usr/bin/env bash
# bench/serve-load.sh — the server's promise under load (a benchmark, not a
# test): `rackllm serve` on a synthetic Llama-3.2-1B Q4_0 calibrates its
# capacity C at the floor, then `rackllm loadgen` opens 2×C streaming
# sessions for a while. Every admitted session should hold the floor on the
# client's side; the rest wait in the queue or get 429. Then, if a llama.cpp
# build is found, its `llama-server -np C` gets the same load (it queues
# everything beyond its slots, so its slowest session is the figure).
#
# usage: bench/serve-load.sh [BUILD_DIR]          (default: build)
# environment (defaults in brackets):
#   MODEL        a GGUF to use instead of synthesising one [BUILD_DIR/bench-llama3.2-1b-q4_0.gguf]
#   THREADS [2]  FLOOR [10]  DURATION [60] s  MAX_TOKENS [64]  PROMPT_LEN [64] words
#   QUEUE [C]    rackllm's queue length
#   LLAMA_SERVER [/work/peer/llama.cpp/build/bin/llama-server]; NP [C] its slots
#   OUT [BUILD_DIR/serve-load]  where the JSON reports go
#   ENDPOINT [completions]  completions (plain text: llama-server's chat parser rejects a
#                random-weights model's output and fails the request) or chat
# Everything listens on 127.0.0.1 only and stops by itself.
set -euo pipefail
build=${1:-build}
BIN=$build/rackllm
[ -x "$BIN" ] || { echo "serve-load: no $BIN (build first)" >&2; exit 1; }
THREADS=${THREADS:-2}
FLOOR=${FLOOR:-10}
DURATION=${DURATION:-60}
MAX_TOKENS=${MAX_TOKENS:-64}
PROMPT_LEN=${PROMPT_LEN:-64}
LLAMA_SERVER=${LLAMA_SERVER:-/work/peer/llama.cpp/build/bin/llama-server}
ENDPOINT=${ENDPOINT:-completions}
lg_mode=()
[ "$ENDPOINT" = completions ] && lg_mode=(--completions)
OUT=${OUT:-$build/serve-load}
mkdir -p "$OUT"
MODEL=${MODEL:-$build/bench-llama3.2-1b-q4_0.gguf}
if [ ! -f "$MODEL" ]; then
  echo "serve-load: synthesising $MODEL" >&2
  "$BIN" synth --shape llama3.2-1b --type q4_0 -o "$MODEL" >&2
fi

pids=()
stop() { # stop PID: SIGTERM, then SIGKILL after 10 s
  kill -TERM "$1" 2>/dev/null || return 0
  local end=$((SECONDS + 10))
  while kill -0 "$1" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
trap 'for p in "${pids[@]}"; do stop "$p"; done' EXIT

wait_for() { # wait_for SECONDS COMMAND...
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.5
  done
}

# ---- rackllm ----
"$BIN" serve -m "$MODEL" --port 0 --threads "$THREADS" --floor "$FLOOR" ${QUEUE:+--queue "$QUEUE"} \
  ${CAPACITY:+--capacity "$CAPACITY"} >"$OUT/rackllm-serve.out" 2>"$OUT/rackllm-serve.err" &
pids+=($!)
wait_for 900 grep -qs "listening on" "$OUT/rackllm-serve.out" || { cat "$OUT/rackllm-serve.err" >&2; exit 1; }
url=$(sed -n 's/.*listening on //p' "$OUT/rackllm-serve.out")
C=$(curl -s "$url/health" | jq -r .capacity_calibrated)
if [ -z "${QUEUE:-}" ] && [ "$(curl -s "$url/health" | jq -r .queue_limit)" != "$C" ]; then
  # restart with a queue as long as the capacity (so 2xC = C running + C waiting, then 429s)
  stop "${pids[-1]}"
  "$BIN" serve -m "$MODEL" --port 0 --threads "$THREADS" --floor "$FLOOR" --queue "$C" --capacity "$C" \
    >"$OUT/rackllm-serve.out" 2>>"$OUT/rackllm-serve.err" &
  pids+=($!)
  wait_for 300 grep -qs "listening on" "$OUT/rackllm-serve.out" || { cat "$OUT/rackllm-serve.err" >&2; exit 1; }
  url=$(sed -n 's/.*listening on //p' "$OUT/rackllm-serve.out")
fi
S=$((2 * C))
echo "rackllm: capacity $C at >= $FLOOR tok/s ($(grep -c '^calibration:' "$OUT/rackllm-serve.err") calibration trials); loadgen with $S sessions for $DURATION s" >&2
"$BIN" loadgen --url "$url" --sessions "$S" --duration "$DURATION" --max-tokens "$MAX_TOKENS" \
  --prompt-len "$PROMPT_LEN" "${lg_mode[@]}" --json >"$OUT/rackllm.json" || true
curl -s "$url/metrics" >"$OUT/rackllm-metrics.txt"
curl -s "$url/health" >"$OUT/rackllm-health.json"
stop "${pids[-1]}"

# ---- llama.cpp's llama-server, same load ----
if [ -x "$LLAMA_SERVER" ]; then
  NP=${NP:-$C}
  port=$((20000 + RANDOM % 20000))
  ctx=$(((PROMPT_LEN * 2 + MAX_TOKENS + 64) * NP))
  # --no-jinja: its legacy template path, without the output parser that
  # rejects a random-weights model's text as malformed tool/reasoning output
  "$LLAMA_SERVER" -m "$MODEL" --host 127.0.0.1 --port "$port" -t "$THREADS" -np "$NP" -c "$ctx" --no-jinja \
    >"$OUT/llama-server.log" 2>&1 &
  pids+=($!)
  if wait_for 300 curl -sf "http://127.0.0.1:$port/health" -o /dev/null; then
    echo "llama-server -np $NP: loadgen with $S sessions for $DURATION s" >&2
    "$BIN" loadgen --url "http://127.0.0.1:$port" --sessions "$S" --duration "$DURATION" \
      --max-tokens "$MAX_TOKENS" --prompt-len "$PROMPT_LEN" "${lg_mode[@]}" --json >"$OUT/llama-server.json" || true
  else
    echo "serve-load: llama-server did not come up (see $OUT/llama-server.log)" >&2
  fi
  stop "${pids[-1]}"
else
  echo "serve-load: no llama-server at $LLAMA_SERVER: skipping the comparison" >&2
fi

# ---- summary ----
row() { # row NAME FILE
  jq -r --arg n "$1" '"| \($n) | \(.sessions) | \(.requests.completed) | \(.requests.rejected_429) | \(.requests.errors + .requests.cut) | \(.session_tps.min) | \(.session_tps.p50) | \(.ttft_s.p50) / \(.ttft_s.p99) | \(.itl_s.p50) / \(.itl_s.p99) |"' "$2"
}
echo
echo "model $(basename "$MODEL"), $ENDPOINT requests, $THREADS threads, floor $FLOOR tok/s, capacity $C, $MAX_TOKENS tokens per answer, ~$PROMPT_LEN-word prompts, $DURATION s"
echo
echo "| server | sessions | completed | 429 | errors+cut | slowest tok/s | p50 tok/s | TTFT p50 / p99 s | ITL p50 / p99 s |"
echo "|---|---|---|---|---|---|---|---|---|"
row "rackllm serve (capacity $C, queue ${QUEUE:-$C})" "$OUT/rackllm.json"
[ -f "$OUT/llama-server.json" ] && row "llama-server -np ${NP:-$C}" "$OUT/llama-server.json"
exit 0
