#!/usr/bin/env bash
# test_cli_bench.sh — `rackllm bench` and `rackllm synth` end to end, with
# --quick runs (no timed assertions: only signs and consistency):
#  - a synthetic Llama-3.2-1B cut to one layer, built in memory: the JSON
#    (read with node, and by the planner: `plan --verify-from`) has the
#    contract's fields, aggregate = sessions x per-session for batched
#    points, max_sessions_at_floor agrees with the points; the SVG is
#    well-formed (xmllint);
#  - a model file (../shared/models/stories260K.gguf) with --sweep-only;
#  - `synth` writes the same bytes for the same seed, and `bench -m` on
#    that file reports its shape and type;
#  - bad input exits 2, --help exits 0.
set -uo pipefail
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
export RACKLLM_NO_PROGRESS=1

# ---- --help and bad input ----
"$bin" bench --help >"$tmp/help" 2>&1
check '[ $? -eq 0 ]' "bench --help exits 0"
check 'grep -q -- "--sweep-only" "$tmp/help"'
"$bin" synth --help >/dev/null 2>&1
check '[ $? -eq 0 ]' "synth --help exits 0"
for args in "" "--shape nosuch" "--shape llama3.2-1b --type q3_xx" "--shape llama3.2-1b -m x.gguf" \
            "--shape llama3.2-1b --sessions 1,,2" "--shape llama3.2-1b --floor -1" "--shape llama3.2-1b --gen 1" \
            "--shape llama3.2-1b --layers 0" "-m $tmp/missing.gguf" "--shape llama3.2-1b --sweep-only --no-sweep" \
            "--shape llama3.2-1b --sweep-repeat 0" "--shape llama3.2-1b --sweep-repeat 33" \
            "--shape llama3.2-1b --layers 1 --type q8_0 --quick -t 2 --partitions 3"; do
  "$bin" bench $args >/dev/null 2>"$tmp/err"
  rc=$?
  check "[ $rc -eq 2 ]" "bench $args: exit $rc, expected 2"
  check 'grep -q "^rackllm bench: " "$tmp/err"' "bench $args: message"
done
"$bin" synth --shape llama3.2-1b --type q4_0 >/dev/null 2>&1
check '[ $? -eq 2 ]' "synth without -o"

# ---- a synthetic shape, in memory ----
"$bin" bench --shape llama3.2-1b --layers 1 --type q8_0 --quick -t 2 \
  --json "$tmp/b.json" --svg "$tmp/b.svg" >"$tmp/out" 2>"$tmp/log"
rc=$?
check "[ $rc -eq 0 ]" "bench --shape --quick: exit $rc: $(tail -3 "$tmp/log")"
check 'grep -q "sessions at >= 10 tok/s each" "$tmp/out"' "the table's last line"
check 'xmllint --noout "$tmp/b.svg"' "the SVG is well-formed"
check 'grep -q "<svg xmlns=\"http://www.w3.org/2000/svg\"" "$tmp/b.svg"'
check '[ "$(jget "$tmp/b.json" "j.rackllm_bench")" = 1 ]'
check '[ "$(jget "$tmp/b.json" "j.model.shape")" = "" ]' "a cut model is not the catalog shape"
check '[ "$(jget "$tmp/b.json" "j.model.type")" = q8_0 ]'
check '[ "$(jget "$tmp/b.json" "j.model.layers")" = 1 ]'
check '[ "$(jget "$tmp/b.json" "j.model.params")" = 323491872 ]' "128256x2048 + 60821504 + 2048 + 32"
check '[ "$(jget "$tmp/b.json" "j.machine.threads")" = 2 ]'
check '[ "$(jget "$tmp/b.json" "j.floor")" = 10 ]'
check '[ "$(jget "$tmp/b.json" "j.bandwidth_gbs > 0 && j.roofline_tok_s > 0 && j.prefill_tok_s.pp16 > 0 && j.decode_tok_s.tg16 > 0")" = true ]'
check '[ "$(jget "$tmp/b.json" "Math.abs(j.roofline_tok_s - j.bandwidth_gbs * 1e9 / j.model.bytes_per_token) < 1e-6 * j.roofline_tok_s")" = true ]'
check '[ "$(jget "$tmp/b.json" "j.sweep.prompt_len + \",\" + j.sweep.gen_len")" = 16,8 ]'
check '[ "$(jget "$tmp/b.json" "j.sweep.batched.length >= 1 && j.sweep.partitioned.length >= 1")" = true ]'
check '[ "$(jget "$tmp/b.json" "j.sweep.batched.every(p => p.partitions === 1 && p.min_tok_s > 0 && Math.abs(p.aggregate_tok_s - p.sessions * p.min_tok_s) <= 1e-6 * p.aggregate_tok_s)")" = true ]' \
  "batched: aggregate = sessions x per-session"
check '[ "$(jget "$tmp/b.json" "j.sweep.partitioned.every(p => p.partitions === p.sessions && p.session_tok_s.length === p.sessions && Math.abs(p.aggregate_tok_s - p.session_tok_s.reduce((a, b) => a + b, 0)) <= 1e-6 * p.aggregate_tok_s)")" = true ]' \
  "partitioned: aggregate = sum of the sessions"
maxat='pts => pts.filter(p => p.min_tok_s >= j.floor).reduce((m, p) => Math.max(m, p.sessions), 0)'
check '[ "$(jget "$tmp/b.json" "j.max_sessions_at_floor.batched === ($maxat)(j.sweep.batched)")" = true ]' \
  "max_sessions_at_floor.batched agrees with the sweep"
check '[ "$(jget "$tmp/b.json" "j.max_sessions_at_floor.partitioned === ($maxat)(j.sweep.partitioned)")" = true ]'
# the planner reads it (its reader is the contract's)
"$bin" plan --verify-from "$tmp/b.json" --json >"$tmp/verify.json" 2>"$tmp/err"
rc=$?
check "[ $rc -eq 0 ]" "plan --verify-from the bench JSON: exit $rc: $(cat "$tmp/err")"

# ---- a model file, --sweep-only ----
"$bin" bench -m "$shared/models/stories260K.gguf" --quick --sweep-only --json "$tmp/s.json" \
  --svg "$tmp/s.svg" >/dev/null 2>"$tmp/log"
rc=$?
check "[ $rc -eq 0 ]" "bench -m --sweep-only: exit $rc: $(tail -3 "$tmp/log")"
check '[ "$(jget "$tmp/s.json" "j.prefill_tok_s === undefined && j.decode_tok_s === undefined")" = true ]' \
  "--sweep-only skips prefill and decode"
check '[ "$(jget "$tmp/s.json" "j.bandwidth_gbs > 0 && j.sweep.batched.length > 0 && j.max_sessions_at_floor.batched >= 0")" = true ]'
check 'xmllint --noout "$tmp/s.svg"'
"$bin" bench -m "$shared/models/stories260K.gguf" --quick --no-sweep --json "$tmp/n.json" >/dev/null 2>&1
check '[ "$(jget "$tmp/n.json" "j.sweep === undefined && j.decode_tok_s.tg16 > 0")" = true ]' "--no-sweep"
"$bin" bench -m "$shared/models/stories260K.gguf" --quick --no-sweep --svg "$tmp/n.svg" >/dev/null 2>&1
check '[ $? -eq 2 ]' "--svg without a sweep is refused"

# ---- synth files: same seed, same bytes; bench -m names their shape and type ----
for seed in 5 5 6; do
  "$bin" synth --shape tinyllama-1.1b --layers 1 --type q8_0 --seed $seed -t 2 -o "$tmp/t$seed-$RANDOM.gguf" 2>/dev/null
  check '[ $? -eq 0 ]' "synth seed $seed"
done
files=("$tmp"/t5-*.gguf)
check '[ ${#files[@]} -eq 2 ] && cmp -s "${files[0]}" "${files[1]}"' "same seed, same bytes"
check '! cmp -s "${files[0]}" "$tmp"/t6-*.gguf' "another seed, other bytes"
"$bin" synth --shape tinyllama-1.1b --type q4_k_m --layers 2 -t 1 -o "$tmp/full.gguf" 2>/dev/null
"$bin" bench -m "$tmp/full.gguf" --quick --no-sweep --json "$tmp/f.json" >/dev/null 2>&1
check '[ $? -eq 0 ]'
check '[ "$(jget "$tmp/f.json" "j.model.type + \" \" + j.model.layers")" = "q4_k_m 2" ]' "type from general.file_type"
check '[ "$(jget "$tmp/f.json" "j.model.shape")" = "" ]' "two of 22 layers: not the catalog's shape"

report test_cli_bench
