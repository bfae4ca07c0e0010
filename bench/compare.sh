#!/usr/bin/env bash
# bench/compare.sh — rackllm against llama.cpp on the same files, same
# threads, in one run: the speed targets of the speed issue (issue 3).
#
# 1. Finds llama.cpp's tools outside this tree ($LLAMA_CPP_DIR, default
#    /work/peer/llama.cpp/build/bin); without them it says so and exits 0.
# 2. Checks that `rackllm synth` files of every type (F16, Q8_0, Q4_0, Q4_K,
#    Q6_K, Q4_K_M, Q5_K_M; two layers of TinyLlama) load and run in
#    llama-bench (LOAD_CHECK=0 skips this).
# 2b. Writes synthetic Llama-3.2-1B-shaped files with `rackllm synth` (Q4_0
#    and Q8_0 by default) into a temporary directory.
# 3. For each file, alternating the two programs (the one that goes first
#    changes every round) and repeating:
#      single stream:  llama-bench -p 128,512 -n 128 -r 1   vs
#                      rackllm bench --no-sweep -p 128,512 -n 128 -r 1
#      sessions:       llama-batched-bench -npp 128 -ntg 64 -npl N  vs
#                      rackllm bench --sweep-only --partitions 0 --min-sessions 1
#    The session count of both is found the same way: N = 1, 2, 4, ... until
#    the per-sequence generation speed is clearly below the floor, then
#    bisection (rackllm's search, redone here in shell for llama.cpp).
# 4. Prints medians, spreads (min-max over the rounds), ratios and whether
#    each target is met; writes every raw output and summary.md to $OUT.
#
# Targets (issue 3), per type: decode tg128 >= 1.15x llama-bench and >= 85%
# of the bandwidth roofline measured in the same rackllm run; prefill pp512
# >= 1.3x; sessions at >= 10 tok/s (batched) >= 3x llama-batched-bench's.
#
# Environment: RACKLLM_BIN (build/rackllm), LLAMA_CPP_DIR, THREADS (all
# CPUs), ROUNDS (3 single-stream rounds), SWEEP_ROUNDS (2), TYPES
# ("q4_0 q8_0"), SHAPE (llama3.2-1b), LAYERS (cut the model: dry runs only),
# FLOOR (10), OUT (out/compare), KEEP_FILES (1: keep the synthetic models),
# LOAD_CHECK (1: first check that every synth type loads in llama-bench),
# SUMMARY_ONLY (1: summarise an earlier run in OUT again).
# Needs node (scripts/deps.sh) to read JSON.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${RACKLLM_BIN:-$root/build/rackllm}
llama=${LLAMA_CPP_DIR:-/work/peer/llama.cpp/build/bin}
threads=${THREADS:-$(nproc)}
rounds=${ROUNDS:-3}
sweep_rounds=${SWEEP_ROUNDS:-2}
types=${TYPES:-"q4_0 q8_0"}
shape=${SHAPE:-llama3.2-1b}
layers=${LAYERS:-}
floor=${FLOOR:-10}
out=${OUT:-$root/out/compare}
npp=128
ntg=64

for tool in llama-bench llama-batched-bench; do
  if [ ! -x "$llama/$tool" ]; then
    echo "compare: llama.cpp's $tool not found in $llama; set LLAMA_CPP_DIR to a llama.cpp build/bin. Nothing compared."
    exit 0
  fi
done
[ -x "$bin" ] || { echo "compare: $bin not found; build rackllm first (make build)" >&2; exit 1; }
command -v node >/dev/null || { echo "compare: node is needed to read JSON (scripts/deps.sh)" >&2; exit 1; }

mkdir -p "$out"
tmp=$(mktemp -d)
trap '[ "${KEEP_FILES:-0}" = 1 ] || rm -rf "$tmp"' EXIT
export RACKLLM_NO_PROGRESS=1

log() { echo "compare: $*" >&2; }
# js CODE: runs JavaScript with these helpers: J(file) parses JSON, L(file)
# JSON lines, med(array) the median
js() {
  node -e "
    const fs = require('fs');
    const J = f => JSON.parse(fs.readFileSync(f, 'utf8'));
    const L = f => fs.readFileSync(f, 'utf8').split('\n').filter(l => l.trim().startsWith('{')).map(l => JSON.parse(l));
    const med = a => { const s = [...a].sort((x, y) => x - y), n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
    $1"
}

# ---- every synth type loads and runs in llama.cpp ----
load_check() {
  local f t
  : >"$out/load-check.txt"
  for t in f16 q8_0 q4_0 q4_k q6_k q4_k_m q5_k_m; do
    f="$tmp/load-$t.gguf"
    "$bin" synth --shape "${LOAD_SHAPE:-tinyllama-1.1b}" --type "$t" --layers 2 -t "$threads" -o "$f"
    if "$llama/llama-bench" -m "$f" -p 8 -n 4 -r 1 -t "$threads" -o csv >"$tmp/load.csv" 2>"$tmp/load.err"; then
      echo "$t: loads and runs in llama-bench: $(js "
        const [h, ...rows] = fs.readFileSync('$tmp/load.csv', 'utf8').trim().split('\\n').map(l => l.split(',').map(c => c.replace(/\"/g, '')));
        const col = n => h.indexOf(n);
        console.log(rows.map(r => r[col('model_type')] + ' ' + (+r[col('n_prompt')] ? 'pp' + r[col('n_prompt')] : 'tg' + r[col('n_gen')]) + ' ' + (+r[col('avg_ts')]).toFixed(1) + ' t/s').join(', '))")" |
        tee -a "$out/load-check.txt" >&2
    else
      echo "$t: llama-bench FAILED: $(tail -2 "$tmp/load.err" | tr '\n' ' ')" | tee -a "$out/load-check.txt" >&2
    fi
    rm -f "$f"
  done
}

# ---- llama.cpp's session search ----
# llama_probe FILE N OUTFILE: per-sequence generation tok/s of N parallel
# sequences (llama-batched-bench's S_TG / N), its JSON line appended to OUTFILE
llama_probe() {
  local f=$1 n=$2 o=$3
  "$llama/llama-batched-bench" -m "$f" -c $((n * (npp + ntg) + 64)) -b 2048 -ub 512 -npp $npp -ntg $ntg -npl "$n" \
    -t "$threads" --output-format jsonl 2>/dev/null | grep '^{' >>"$o"
  js "console.log(L('$o').filter(r => r.pl === $n).slice(-1).map(r => r.speed_tg / r.pl)[0])"
}

at_floor() { awk -v v="$1" -v f="$floor" 'BEGIN { exit !(v >= f) }'; }
far_below() { awk -v v="$1" -v f="$floor" 'BEGIN { exit !(v < 0.9 * f) }'; }

# llama_sessions FILE OUTFILE: the most sequences at the floor, searched as
# rackllm's bench_search does (doubling, then bisection to within 1/16)
llama_sessions() {
  local f=$1 o=$2 n=1 below=0 lo hi k tol v
  local -A speed=()
  : >"$o"
  while :; do
    v=$(llama_probe "$f" $n "$o")
    speed[$n]=$v
    log "  llama-batched-bench $n parallel: $v tok/s per sequence"
    if at_floor "$v"; then
      below=0
    else
      far_below "$v" && break
      below=$((below + 1))
      [ $below -ge 2 ] && break
    fi
    [ $n -ge 256 ] && break
    n=$((n * 2))
  done
  while :; do
    lo=0 hi=0
    for k in "${!speed[@]}"; do
      if at_floor "${speed[$k]}" && [ "$k" -gt $lo ]; then lo=$k; fi
    done
    for k in "${!speed[@]}"; do
      if [ "$k" -gt $lo ] && ! at_floor "${speed[$k]}" && { [ $hi -eq 0 ] || [ "$k" -lt $hi ]; }; then hi=$k; fi
    done
    tol=$((lo / 16 > 1 ? lo / 16 : 1))
    if [ $hi -eq 0 ] || [ $lo -eq 0 ] || [ $((hi - lo)) -le $tol ]; then break; fi
    n=$(((lo + hi) / 2))
    v=$(llama_probe "$f" $n "$o")
    speed[$n]=$v
    log "  llama-batched-bench $n parallel: $v tok/s per sequence"
  done
  echo "$lo"
}

# ---- one round of each comparison (FILE TYPE ROUND) ----
single_llama() {
  log "$2 round $3: llama-bench"
  "$llama/llama-bench" -m "$1" -p 128,512 -n 128 -t "$threads" -r 1 -o json 2>/dev/null >"$out/$2-llama-bench-$3.json"
}
single_rackllm() {
  log "$2 round $3: rackllm bench"
  "$bin" bench -m "$1" --no-sweep -p 128,512 -n 128 -r 1 -t "$threads" -q --json "$out/$2-rackllm-bench-$3.json" \
    >/dev/null
}
sweep_llama() {
  log "$2 sweep round $3: llama-batched-bench"
  llama_sessions "$1" "$out/$2-llama-batched-$3.jsonl" >"$out/$2-llama-sessions-$3.txt"
}
sweep_rackllm() {
  log "$2 sweep round $3: rackllm bench --sweep-only"
  "$bin" bench -m "$1" --sweep-only --partitions 0 --min-sessions 1 --prompt $npp --gen $ntg --floor "$floor" -t "$threads" \
    --json "$out/$2-rackllm-sweep-$3.json" --svg "$out/$2-rackllm-sweep-$3.svg" 2>&1 >/dev/null |
    sed 's/^/compare:   /' >&2
}

# Everything measured goes to $out; SUMMARY_ONLY=1 only summarises an
# earlier run's $out again.
measure() {
  local t f r
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "rackllm: $(git -C "$(dirname "$bin")" rev-parse --short HEAD 2>/dev/null || echo unknown) ($bin)"
    echo "llama.cpp: $(git -C "$llama/../.." rev-parse --short HEAD 2>/dev/null || echo unknown) ($llama)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs; threads used: $threads"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  } | tee "$out/machine.txt" >&2
  if [ "${LOAD_CHECK:-1}" = 1 ]; then load_check; fi
  for t in $types; do
    log "synthesising $shape $t${layers:+ ($layers layers)}"
    "$bin" synth --shape "$shape" --type "$t" ${layers:+--layers "$layers"} -t "$threads" -o "$tmp/$shape-$t.gguf"
  done
  # the program that goes first changes every round
  for t in $types; do
    f="$tmp/$shape-$t.gguf"
    for r in $(seq 1 "$rounds"); do
      if [ $((r % 2)) -eq 1 ]; then single_llama "$f" "$t" "$r"; single_rackllm "$f" "$t" "$r";
      else single_rackllm "$f" "$t" "$r"; single_llama "$f" "$t" "$r"; fi
    done
    for r in $(seq 1 "$sweep_rounds"); do
      if [ $((r % 2)) -eq 1 ]; then sweep_llama "$f" "$t" "$r"; sweep_rackllm "$f" "$t" "$r";
      else sweep_rackllm "$f" "$t" "$r"; sweep_llama "$f" "$t" "$r"; fi
    done
  done
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt" >&2
}
[ "${SUMMARY_ONLY:-0}" = 1 ] || measure


# ---- the summary ----
summary="$out/summary.md"
{
  echo "| type | measure | llama.cpp | rackllm | ratio | target | met |"
  echo "|---|---|---:|---:|---:|---|---|"
} >"$summary"
all_met=1
for t in $types; do
  if ! ls "$out/$t"-llama-bench-*.json "$out/$t"-rackllm-bench-*.json >/dev/null 2>&1; then
    log "no measurements of $t in $out"
    continue
  fi
  llama_files=$(ls "$out/$t"-llama-bench-*.json | sed "s/.*/'&'/" | paste -sd,)
  rack_files=$(ls "$out/$t"-rackllm-bench-*.json | sed "s/.*/'&'/" | paste -sd,)
  sweep_files=$( (ls "$out/$t"-rackllm-sweep-*.json 2>/dev/null || true) | sed "s/.*/'&'/" | paste -sd,)
  sess_files=$( (ls "$out/$t"-llama-sessions-*.txt 2>/dev/null || true) | sed "s/.*/'&'/" | paste -sd,)
  js "
    const spread = a => a.length > 1 ? ' (' + Math.min(...a).toFixed(1) + '-' + Math.max(...a).toFixed(1) + ')' : '';
    const fmt = a => med(a).toFixed(2) + spread(a);
    const lb = [$llama_files].map(J), rb = [$rack_files].map(J), rs = [$sweep_files].map(J);
    const ls = [$sess_files].map(f => +fs.readFileSync(f, 'utf8').trim());
    const lt = (p, g) => lb.map(x => x.find(e => e.n_prompt === p && e.n_gen === g).avg_ts);
    const rows = [];
    const row = (what, l, r, ratio, target, ok) => rows.push(['', '$t', what, l, r, ratio, target, ok === null ? '' : ok ? 'yes' : '**no**', ''].join(' | ').trim());
    const ratio = (a, b) => med(b) / med(a);
    const pp128 = [lt(128, 0), rb.map(x => x.prefill_tok_s.pp128)];
    const pp512 = [lt(512, 0), rb.map(x => x.prefill_tok_s.pp512)];
    const tg = [lt(0, 128), rb.map(x => x.decode_tok_s.tg128)];
    const roof = rb.map(x => x.decode_tok_s.tg128 / x.roofline_tok_s);
    const sess = [ls, rs.map(x => x.max_sessions_at_floor.batched)];
    const q = r => r.toFixed(2) + 'x';
    row('prefill pp128 tok/s', fmt(pp128[0]), fmt(pp128[1]), q(ratio(...pp128)), '', null);
    row('prefill pp512 tok/s', fmt(pp512[0]), fmt(pp512[1]), q(ratio(...pp512)), '>= 1.3x', ratio(...pp512) >= 1.3);
    row('decode tg128 tok/s', fmt(tg[0]), fmt(tg[1]), q(ratio(...tg)), '>= 1.15x', ratio(...tg) >= 1.15);
    row('decode tg128 / bandwidth roofline (rackllm run: ' + fmt(rb.map(x => x.bandwidth_gbs)) + ' GB/s, roofline ' + fmt(rb.map(x => x.roofline_tok_s)) + ' tok/s)', '', (100 * med(roof)).toFixed(0) + '%' + (roof.length > 1 ? ' (' + roof.map(x => (100 * x).toFixed(0)).join(', ') + ')' : ''), '', '>= 85%', med(roof) >= 0.85);
    if (rs.length && ls.length) row('sessions >= $floor tok/s, batched (each round)', sess[0].join(', '), sess[1].join(', '), med(sess[0]) > 0 ? q(ratio(...sess)) : 'n/a (llama.cpp: 0)', '>= 3x', med(sess[0]) > 0 ? ratio(...sess) >= 3 : null);
    console.log(rows.join('\n'));" >>"$summary"
done
if grep -q '\*\*no\*\*' "$summary" || grep -q 'n/a (llama' "$summary"; then all_met=0; fi
echo
kernels=$(ls "$out"/*-rackllm-bench-*.json 2>/dev/null | head -1 | xargs -r -I{} node -e "console.log(JSON.parse(require('fs').readFileSync('{}','utf8')).machine.kernels)")
echo "rackllm (kernels ${kernels:-?}) vs llama.cpp, $shape${layers:+ cut to $layers layers}, $threads threads (median over rounds, min-max in brackets):"
cat "$summary"
echo
if [ $all_met = 1 ]; then echo "compare: every target met"; else echo "compare: some targets not met or not judged (see **no**, n/a)"; fi
echo "compare: raw outputs and summary.md in $out"
