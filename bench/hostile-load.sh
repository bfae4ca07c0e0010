#!/usr/bin/env bash
# bench/hostile-load.sh — does the floor hold while one client attacks the
# server? (a benchmark, not a test; issue 14). For each binary given, in
# alternating rounds: `rackllm serve` on a small model, then
#   quiet   a legitimate 100-token stream alone
#   slow    the same while one address holds SLOW_N connections that send
#           half a request head and then a byte every 20 s
#   prompts the same while FLOOD_N connections at a time post ~1 MB prompts
#           (far past the context) over and over
# and for each: the stream's tokens/s after its head, and how long /health
# took (curl's time_total; "none" if no answer within 10 s). Lines of
#   BINARY ROUND PHASE tok_s=X health_s=Y attacker=...
# on stdout. Run it under `flock -x /work/.cpu.lock` (the numbers are
# speeds).
#
# usage: bench/hostile-load.sh BUILD_DIR BINARY...  (BUILD_DIR has hostile_client)
# environment: MODEL [../shared/models/synth-s512-q8_0.gguf] ROUNDS [2]
#   SLOW_N [600] FLOOD_N [16] PHASE_S [12] THREADS [2] FLOOR [10]
# Everything listens on 127.0.0.1 and stops by itself.
set -euo pipefail
build=${1:?build dir}
shift
HOSTILE=$build/hostile_client
MODEL=${MODEL:-../shared/models/synth-s512-q8_0.gguf}
ROUNDS=${ROUNDS:-2} SLOW_N=${SLOW_N:-600} FLOOD_N=${FLOOD_N:-16} PHASE_S=${PHASE_S:-12}
THREADS=${THREADS:-2} FLOOR=${FLOOR:-10}
TMP=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill -KILL "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
ulimit -n 8192

# A prompt of ~1 MB of words, as one completion request.
words=$(head -c 999000 /dev/zero | tr '\0' 'a' | sed 's/a\{6\}/hello /g')
printf '{"model":"m","prompt":"%s","max_tokens":5}' "$words" >"$TMP/big.json"

start() { # BINARY: starts it (PID in SERVER, URL in URL)
  "$1" serve -m "$MODEL" --name m --port 0 --threads "$THREADS" --floor "$FLOOR" --capacity 2 --ctx 512 \
    >"$TMP/out" 2>"$TMP/err" &
  SERVER=$!
  for _ in $(seq 600); do
    grep -qs "listening on" "$TMP/out" && break
    sleep 0.1
  done
  URL=$(sed -n 's/^rackllm serve: listening on \(http:.*\)$/\1/p' "$TMP/out")
}

measure() { # URL: "tok_s=X health_s=Y"
  local h t
  h=$(curl -s -o /dev/null --max-time 10 -w '%{time_total}' "$1/health" || echo none)
  t=$(curl -sN --max-time 30 -o "$TMP/s.sse" -w '%{time_starttransfer} %{time_total}' -H 'Content-Type: application/json' \
    -d '{"model":"m","prompt":"Once","max_tokens":100,"stream":true,"ignore_eos":true}' "$1/v1/completions" || true)
  local n
  n=0 # ignore_eos: a stream that ends by its length made all 100
  grep -qs '"finish_reason":"length"' "$TMP/s.sse" && n=100
  awk -v t="$t" -v n="${n:-0}" -v h="$h" 'BEGIN { split(t, a, " "); d = a[2] - a[1];
    printf "tok_s=%s health_s=%s\n", (n >= 100 && d > 0 ? sprintf("%.1f", n / d) : "none"), h }'
}

for round in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    start "$bin"
    url=$URL
    to=127.0.0.1:${url##*:}
    echo "$bin $round quiet $(measure "$url")"
    "$HOSTILE" slow-head --to "$to" --from 127.0.0.2 --n "$SLOW_N" --every 20 --for "$PHASE_S" >"$TMP/slow" &
    a=$!
    sleep 2 # the connections opened (a benchmark's pacing, not a synchronisation)
    m=$(measure "$url")
    wait "$a"
    echo "$bin $round slow $m attacker: $(cat "$TMP/slow")"
    "$HOSTILE" flood --to "$to" --from 127.0.0.3 --n "$FLOOD_N" --for "$PHASE_S" --body "$TMP/big.json" >"$TMP/flood" &
    a=$!
    sleep 2
    m=$(measure "$url")
    wait "$a"
    echo "$bin $round prompts $m attacker: $(cat "$TMP/flood")"
    kill -KILL "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=
  done
done
