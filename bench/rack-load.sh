#!/usr/bin/env bash
# bench/rack-load.sh — a rack in miniature (a benchmark, not a test): two
# `rackllm serve`, each pinned to its own core (the planner's partition
# layout on this 2-core machine), behind Debian's HAProxy configured by
# deploy/rackllm-haproxy. `rackllm loadgen` drives the pool at 1.5x and 3x
# its capacity C, three ways:
#   agent       capacity-routed: --agent-port, weights = free sessions,
#               maxconn, the pool's 429, refusals retried elsewhere
#               (servers: --queue 0 --full-status 503)
#   leastconn   plain HAProxy, no agent (servers as shipped: queue 16, 429)
#   roundrobin  the same, round robin
# then the failure drill: the agent setup at 1.5x C, one backend killed
# (kill -9) a third of the way in and restarted at two thirds.
# Capacities are calibrated once, with both backends starting together,
# and given to every later start (--capacity), so every run has the same C.
#
# usage: flock -x /work/.cpu.lock bench/rack-load.sh [BUILD_DIR]   (default: build)
# environment: DURATION [15] s per run, MAX_TOKENS [48], PROMPT_LEN [32],
#   FLOOR [10], CAPACITY [calibrated] sessions per backend, MODEL [BUILD/bench-rack-l1b-2l.gguf: Llama-3.2-1B shapes,
#   2 layers, Q4_0, synthesised if absent], OUT [BUILD/rack-load]
# Prints one table row per run; the loadgen JSON of each run goes to OUT.
set -euo pipefail
build=${1:-build}
export RACKLLM_BIN=$PWD/$build/rackllm
[ -x "$RACKLLM_BIN" ] || { echo "rack-load: no $RACKLLM_BIN (build first)" >&2; exit 1; }
DURATION=${DURATION:-15}
MAX_TOKENS=${MAX_TOKENS:-48}
PROMPT_LEN=${PROMPT_LEN:-32}
FLOOR=${FLOOR:-10}
OUT=${OUT:-$build/rack-load}
MODEL=${MODEL:-$build/bench-rack-l1b-2l.gguf}
mkdir -p "$OUT"
[ -f "$MODEL" ] || "$RACKLLM_BIN" synth --shape llama3.2-1b --type q4_0 --layers 2 -o "$MODEL" >&2
set +eu
. tests/server_lib.sh
. tests/rack_lib.sh
set -u

stop_all() { # SIGTERM every backend, wait for each
  local i
  for i in "${!BACKENDS[@]}"; do stop_server "$(bpid "$i")" >/dev/null || true; done
  [ -n "${HPID:-}" ] && kill "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null
  HPID=""
}
# backends MODE: both backends (b0 on CPU 0, b1 on CPU 1) for MODE.
backends() {
  local i extra=()
  [ "$1" = agent ] || extra=(--queue 16 --full-status 429)
  for i in 0 1; do
    LAUNCH="taskset -c $i" start_backend "$i" -m "$MODEL" --floor "$FLOOR" --capacity "${CAP[$i]}" "${extra[@]}"
  done
}
# run NAME MODE FACTOR: loadgen at FACTOR x C through a pool routed by MODE.
run() {
  local n
  n=$(awk -v c="$C" -v f="$3" 'BEGIN { printf "%d", c * f + 0.5 }')
  "$RACKLLM_BIN" loadgen --url "$POOL" --sessions "$n" --duration "$DURATION" --max-tokens "$MAX_TOKENS" \
    --prompt-len "$PROMPT_LEN" --json >"$OUT/$1.json"
  row "$1" "$n" "$OUT/$1.json"
}
row() {
  jq -r --arg name "$1" --arg n "$2" --arg floor "$FLOOR" '[$name, $n, .requests.completed, .requests.rejected_429,
    .requests.errors, .requests.cut, (.session_tps.min * 100 | round / 100),
    (if .session_tps.min >= ($floor | tonumber) then "yes" else "NO" end),
    (.ttft_s.p50 * 1000 | round), (.ttft_s.p99 * 1000 | round)] | @tsv' "$3"
}

# ---- calibrate both, together (as they will serve) ----
CAP=(0 0)
for i in 0 1; do
  [ -n "${CAPACITY:-}" ] && { CAP[$i]=$CAPACITY; continue; }
  taskset -c "$i" "$RACKLLM_BIN" serve --port 0 --threads 1 -m "$MODEL" --floor "$FLOOR" --max-sessions 32 \
    >"$TMP/cal$i.out" 2>"$TMP/cal$i.err" &
  CPID[$i]=$!
  PIDS+=("${CPID[$i]}")
done
for i in 0 1; do
  [ -n "${CAPACITY:-}" ] && continue
  wait_until 300 grep -qs "listening on http://" "$TMP/cal$i.out" || { cat "$TMP/cal$i.err" >&2; exit 1; }
  CAP[$i]=$(health "$(sed -n 's/^rackllm serve: listening on //p' "$TMP/cal$i.out")" .capacity_calibrated)
  stop_server "${CPID[$i]}" || true
done
C=$((CAP[0] + CAP[1]))
CAPS=("${CAP[@]}") # each backend's own capacity in the rack config
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; model $(basename "$MODEL"); floor $FLOOR tok/s"
echo "# capacity calibrated together: b0 (CPU 0) ${CAP[0]}, b1 (CPU 1) ${CAP[1]}: pool C = $C"
echo "# $DURATION s per run, $MAX_TOKENS tokens per answer, ~$PROMPT_LEN-word prompts"
printf 'run\tsessions\tserved\t429\terrors\tcut\tslowest_tok_s\tall>=floor\tttft_p50_ms\tttft_p99_ms\n'

for mode in agent leastconn roundrobin; do
  backends "$mode"
  rack_conf 0 "$mode"
  start_haproxy
  for f in 1.5 3; do run "$mode-${f}x" "$mode" "$f"; done
  stop_all
done

# ---- the failure drill: kill -9 under load, restart ----
backends agent
rack_conf 0 agent
start_haproxy
n=$(awk -v c="$C" 'BEGIN { printf "%d", c * 1.5 + 0.5 }')
"$RACKLLM_BIN" loadgen --url "$POOL" --sessions "$n" --duration "$DURATION" --max-tokens "$MAX_TOKENS" \
  --prompt-len "$PROMPT_LEN" --json >"$OUT/drill.json" &
LG=$!
t0=$SECONDS
sleep $((DURATION / 3)) # the drill's schedule: a point in the run
inflight=$(health "$(burl 1)" .active_sessions)
kill -KILL "$(bpid 1)"
wait_until 30 srv_is b1 DOWN
t_down=$((SECONDS - t0))
sleep $((t0 + 2 * DURATION / 3 - SECONDS > 0 ? t0 + 2 * DURATION / 3 - SECONDS : 0))
LAUNCH="taskset -c 1" start_backend 1 -m "$MODEL" --floor "$FLOOR" --capacity "${CAP[1]}"
wait_until 30 srv_is b1 UP
t_up=$((SECONDS - t0))
wait "$LG"
row "drill-1.5x" "$n" "$OUT/drill.json"
echo "# drill: b1 killed at ~$((DURATION / 3)) s with $inflight streams in flight; HAProxy saw it DOWN by ${t_down} s;"
echo "# restarted, UP again by ${t_up} s. errors above = streams lost (only b1's in-flight ones expected)."
stop_all
