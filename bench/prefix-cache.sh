#!/usr/bin/env bash
# bench/prefix-cache.sh — what the prefix cache buys a chat (a benchmark,
# not a test): `rackllm serve` on a synthetic Llama-3.2-1B Q4_0, with the
# cache (--prefix-cache, its default size) and without (--prefix-cache 0),
# in alternating rounds; in each, `rackllm loadgen --turns T` holds S
# conversations that each send their whole history and a new message, T
# times, behind a shared system prompt. Reported per run: time to first
# token of turn 1 and of turn T, the slowest session's tok/s, and the share
# of prompt tokens the server took from its cache.
#
# usage: bench/prefix-cache.sh [BUILD_DIR]        (default: build)
# environment (defaults in brackets):
#   MODEL        a GGUF [BUILD_DIR/bench-llama3.2-1b-q4_0.gguf, synthesised if missing]
#   THREADS [2]  SESSIONS [2]  TURNS [10]  PROMPT_LEN [24] words a message
#   MAX_TOKENS [24] per answer  SYSTEM_LEN [200] words  ROUNDS [2]  CAPACITY [4]
#   OUT [BUILD_DIR/prefix-cache]   where the JSON reports go
# Everything listens on 127.0.0.1 only and stops by itself.
set -euo pipefail
build=${1:-build}
BIN=$build/rackllm
[ -x "$BIN" ] || { echo "prefix-cache: no $BIN (build first)" >&2; exit 1; }
THREADS=${THREADS:-2} SESSIONS=${SESSIONS:-2} TURNS=${TURNS:-10} PROMPT_LEN=${PROMPT_LEN:-24}
MAX_TOKENS=${MAX_TOKENS:-24} SYSTEM_LEN=${SYSTEM_LEN:-200} ROUNDS=${ROUNDS:-2} CAPACITY=${CAPACITY:-4}
OUT=${OUT:-$build/prefix-cache}
mkdir -p "$OUT"
MODEL=${MODEL:-$build/bench-llama3.2-1b-q4_0.gguf}
[ -f "$MODEL" ] || "$BIN" synth --shape llama3.2-1b --type q4_0 -o "$MODEL" >&2

pid=
stop() {
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local end=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}
trap stop EXIT

run() { # run NAME ROUND [SERVE FLAGS...]
  local name=$1 round=$2 log="$OUT/$1-$2"
  shift 2
  "$BIN" serve -m "$MODEL" --port 0 --threads "$THREADS" --capacity "$CAPACITY" --queue 0 --ctx 4096 "$@" \
    >"$log.out" 2>"$log.err" &
  pid=$!
  local end=$((SECONDS + 300))
  until grep -qs "listening on" "$log.out"; do
    [ "$SECONDS" -lt "$end" ] && kill -0 "$pid" 2>/dev/null || { cat "$log.err" >&2; exit 1; }
    sleep 0.2
  done
  local url
  url=$(sed -n 's/.*listening on //p' "$log.out")
  "$BIN" loadgen --url "$url" --sessions "$SESSIONS" --turns "$TURNS" --system-len "$SYSTEM_LEN" \
    --prompt-len "$PROMPT_LEN" --max-tokens "$MAX_TOKENS" --duration 600 \
    --max-requests $((SESSIONS * TURNS)) --json >"$OUT/$name-$round.json"
  stop
}

for r in $(seq 1 "$ROUNDS"); do
  run cache "$r"                       # the default cache
  run nocache "$r" --prefix-cache 0
done

echo "| run | requests | TTFT turn 1 p50 | TTFT turn $TURNS p50 / p99 | slowest tok/s | prompt tokens cached |"
echo "|---|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
  for name in cache nocache; do
    jq -r --arg n "$name $r" --argjson t "$TURNS" '"| \($n) | \(.requests.completed) | \(.ttft_by_turn_s[0].p50) s | \(.ttft_by_turn_s[$t-1].p50) / \(.ttft_by_turn_s[$t-1].p99) s | \(.session_tps.min) | \(.cached_tokens) of \(.prompt_tokens) |"' \
      "$OUT/$name-$r.json"
  done
done
