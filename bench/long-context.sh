#!/usr/bin/env bash
# bench/long-context.sh — decode speed of several sessions at a long
# context: what a chat server sees once conversations grow, where attention
# reads every session's KV cache at every step.
#
# For one synthetic Llama-3.2-1B-shaped file, SESSIONS sessions each
# prefill PROMPT random tokens, then generate GEN tokens together; the
# per-session speed of that generation is reported, for every rackllm
# binary in RACKLLM_BINS (e.g. an older build and this one) and, if found,
# llama.cpp's llama-batched-bench on the same file (-npp PROMPT -ntg GEN
# -npl SESSIONS: per-sequence speed = speed_tg / pl). The programs take
# turns, in an order that changes every round (this VM's speed drifts), and
# the script prints each round's figures and the median ratios to the first
# binary.
#
#   rackllm bench -m FILE --sweep-only --sessions N --partitions 0 --prompt P --gen G
#   llama-batched-bench -m FILE -c C -b 2048 -ub 512 -npp P -ntg G -npl N -t T
#
# Environment: RACKLLM_BINS (build/rackllm), LLAMA_CPP_DIR
# (/work/peer/llama.cpp/build/bin; skipped if absent), TYPE (q4_0),
# SESSIONS (4), PROMPT (2048), GEN (32), ROUNDS (2), THREADS (all CPUs),
# OUT (out/long-context). Needs node (scripts/deps.sh) to read JSON.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bins=${RACKLLM_BINS:-$root/build/rackllm}
llama=${LLAMA_CPP_DIR:-/work/peer/llama.cpp/build/bin}
type=${TYPE:-q4_0}
sessions=${SESSIONS:-4}
prompt=${PROMPT:-2048}
gen=${GEN:-32}
rounds=${ROUNDS:-2}
threads=${THREADS:-$(nproc)}
out=${OUT:-$root/out/long-context}
mkdir -p "$out"

first=${bins%% *}
file=$out/llama3.2-1b-$type.gguf
[ -f "$file" ] || "$first" synth --shape llama3.2-1b --type "$type" -o "$file" >/dev/null

progs=()
for b in $bins; do progs+=("rackllm:$b"); done
[ -x "$llama/llama-batched-bench" ] && progs+=("llama.cpp:$llama/llama-batched-bench")

# Per-session generation tok/s of one run of program number $1 (kind:path
# $2), round $3; raw output in $OUT/p<number>-<round>.*
run_one() {
  local kind=${2%%:*} path=${2#*:}
  local log=$out/p$1-$3
  if [ "$kind" = rackllm ]; then
    "$path" bench -m "$file" --sweep-only --sessions "$sessions" --partitions 0 --prompt "$prompt" \
      --gen "$gen" -t "$threads" -q --json "$log.json" >"$log.txt"
    node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));
             console.log(r.sweep.batched[0].min_tok_s.toFixed(2))' "$log.json"
  else
    "$path" -m "$file" -c $((sessions * (prompt + gen) + 16)) -b 2048 -ub 512 -npp "$prompt" -ntg "$gen" \
      -npl "$sessions" -t "$threads" --output-format jsonl >"$log.jsonl" 2>"$log.err"
    node -e 'const l=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").pop();
             const r=JSON.parse(l); console.log((r.speed_tg / r.pl).toFixed(2))' "$log.jsonl"
  fi
}

echo "long context: $type, $sessions sessions x $prompt prompt tokens, $gen generated, $threads threads"
for ((k = 0; k < ${#progs[@]}; k++)); do echo "p$k = ${progs[$k]}"; done
declare -A speeds
for ((r = 1; r <= rounds; r++)); do
  n=${#progs[@]}
  line="round $r:"
  for ((i = 0; i < n; i++)); do
    k=$(((i + r - 1) % n)) # a different program goes first every round
    s=$(run_one "$k" "${progs[$k]}" "r$r")
    speeds[$k]="${speeds[$k]:-} $s"
    line="$line  [${progs[$k]}] $s"
  done
  echo "$line tok/s per session"
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END{print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
base=$(echo "${speeds[0]}" | median)
for ((k = 0; k < ${#progs[@]}; k++)); do
  m=$(echo "${speeds[$k]}" | median)
  printf '%-70s median %6.2f tok/s per session (%s)  ratio to the first: %.2fx\n' "${progs[$k]}" "$m" \
    "${speeds[$k]# }" "$(echo "$m $base" | awk '{print $1 / $2}')"
done
