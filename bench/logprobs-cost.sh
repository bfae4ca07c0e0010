#!/usr/bin/env bash
# bench/logprobs-cost.sh — what asking for log-probabilities costs a stream
# (a benchmark, not a test): `rackllm serve` on a synthetic Llama-3.2-1B
# Q4_0 (a 128,256-token vocabulary: each token's logprobs are one pass of
# exp over it, plus its top alternatives), one session at a time, the
# same greedy completion streamed without logprobs and with logprobs 5
# (completions) or top_logprobs 20 (chat), in alternating rounds. Reported
# per request: decode tok/s from its first to its last token event (the
# reader's view, as loadgen measures it), and the bytes streamed.
#
# usage: bench/logprobs-cost.sh [BUILD_DIR]        (default: build)
# environment (defaults in brackets):
#   MODEL  a GGUF [BUILD_DIR/bench-llama3.2-1b-q4_0.gguf, synthesised if missing]
#   THREADS [2]  MAX_TOKENS [64]  ROUNDS [3]
# Everything listens on 127.0.0.1 only and stops by itself.
set -euo pipefail
build=${1:-build}
BIN=$build/rackllm
[ -x "$BIN" ] || { echo "logprobs-cost: no $BIN (build first)" >&2; exit 1; }
THREADS=${THREADS:-2} MAX_TOKENS=${MAX_TOKENS:-64} ROUNDS=${ROUNDS:-3}
MODEL=${MODEL:-$build/bench-llama3.2-1b-q4_0.gguf}
[ -f "$MODEL" ] || "$BIN" synth --shape llama3.2-1b --type q4_0 -o "$MODEL" >&2
tmp=$(mktemp -d)
pid=
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap stop EXIT
"$BIN" serve -m "$MODEL" --port 0 --threads "$THREADS" --capacity 1 --queue 0 --ctx 1024 --no-web \
  >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 600); do grep -q listening "$tmp/out" && break; sleep 0.1; done # start-up, not synchronisation of results
url=$(grep -o 'http://[^ ]*' "$tmp/out")
# one streamed request: "tok/s bytes" (token events timestamped as they arrive)
run() {
  curl -sN "$url/v1/$1" -H 'Content-Type: application/json' -d "$2" | python3 -c '
import sys, time
t, n, size = [], 0, 0
for line in sys.stdin:
    size += len(line)
    if line.startswith("data: {") and "\"finish_reason\":null" in line and "\"role\"" not in line:
        t.append(time.monotonic())
print("%.2f %d" % ((len(t) - 1) / (t[-1] - t[0]), size))'
}
base='"model":"x","max_tokens":'$MAX_TOKENS',"temperature":0,"ignore_eos":true,"stream":true'
comp="{${base/\"x\"/\"$(basename "$MODEL" .gguf)\"},\"prompt\":\"Once upon a time\"}"
chat="{${base/\"x\"/\"$(basename "$MODEL" .gguf)\"},\"messages\":[{\"role\":\"user\",\"content\":\"Tell a story.\"}]}"
printf 'round endpoint logprobs tok/s bytes\n'
for r in $(seq "$ROUNDS"); do
  printf '%d completions off %s\n' "$r" "$(run completions "$comp")"
  printf '%d completions 5 %s\n' "$r" "$(run completions "${comp%\}},\"logprobs\":5}")"
  printf '%d chat off %s\n' "$r" "$(run chat/completions "$chat")"
  printf '%d chat top20 %s\n' "$r" "$(run chat/completions "${chat%\}},\"logprobs\":true,\"top_logprobs\":20}")"
done
