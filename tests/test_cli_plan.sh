#!/usr/bin/env bash
# test_cli_plan.sh — `rackllm plan` end to end: --list, --json fields,
# hand-checked numbers through the CLI, bad input, a GGUF file, the matrix
# (JSON and SVG, validated with xmllint), calibration and --verify-from.
# JSON is read with node (a build dependency, scripts/deps.sh).
set -uo pipefail
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

# An SVG that is well-formed XML (xmllint), with an <svg> root.
valid_svg() {
  if command -v xmllint >/dev/null 2>&1; then
    xmllint --noout "$1" || return 1
  else # structural check: every opened element is closed
    node -e "
      const s = require('fs').readFileSync('$1', 'utf8');
      const stack = [];
      for (const m of s.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
        if (m[3] === '/') continue;
        if (m[1] === '/') { if (stack.pop() !== m[2]) process.exit(1); } else stack.push(m[2]);
      }
      process.exit(stack.length === 0 ? 0 : 1);" || return 1
  fi
  grep -q '<svg xmlns="http://www.w3.org/2000/svg"' "$1"
}

# ---- --help ----
"$bin" plan --help >"$tmp/help" 2>&1
check '[ $? -eq 0 ]' "--help exits 0"
check 'grep -q -- "--matrix" "$tmp/help" && grep -q -- "--calibrate" "$tmp/help"'

# ---- --list: ids first, one per line ----
"$bin" plan --list >"$tmp/list"
check '[ $? -eq 0 ]'
for id in llama3.2-1b llama3.1-8b llama3.3-70b llama3.1-405b tinyllama-1.1b ampereone-a192-32x ampereone-m \
          altra-max-m128-30 altra-q80-30 graviton4 epyc-9654 epyc-9754 epyc-9r14 xeon-8480p h100-sxm h100-pcie this; do
  check "cut -f1 '$tmp/list' | grep -qx '$id'" "--list lacks $id"
done
check '[ "$(grep -c $'"'"'\tmodel\t'"'"' "$tmp/list")" -ge 10 ] && [ "$(grep -c $'"'"'\thardware\t'"'"' "$tmp/list")" -ge 12 ]'

# ---- one plan as JSON ----
# The catalog's default factors, given as flags: the evidence fit (below) would replace them.
dflt="--eff-bw 0.5 --eff-compute 0.25"
"$bin" plan --model llama3.2-1b --quant Q4_0 --hardware ampereone-a192-32x $dflt --json >"$tmp/a.json"
check '[ $? -eq 0 ]'
for f in sessions_per_server servers_per_rack sessions_per_rack watts_per_session joules_per_token usd_per_mtok; do
  check "[ \"\$(jget '$tmp/a.json' \"typeof j.$f === 'number' && isFinite(j.$f)\")\" = true ]" "$f numeric"
done
check '[ "$(jget "$tmp/a.json" "typeof j.limiting_factor")" = string ]'
# By hand, from data/hardware.json and the Llama 3.2 1B shape: weights 1,235,814,432 x 4.5 / 8 =
# 695,145,618 B; KV 32768 B/token x 4096 = 134,217,728 B per session; 3,008,364,544 FLOP per
# token, of which attention 2 x 16 layers x 2 x 2048 x 4096 = 536,870,912; bandwidth B = 0.5 x
# 332.8 GB/s = 166.4e9, int8 compute C = 0.25 x 39.32e12 = 9.83e12, float Ca = 0.25 x 19.66e12.
# A session's attention: A = 134,217,728 / B + 536,870,912 / Ca = 9.158e-4 s; its weights'
# arithmetic 2,471,493,632 / C = 2.514e-4 s.
#   bandwidth: (0.1 - 695,145,618 / B) / A = 104.6 -> 104
#   compute:   (0.1 - 2 x 2.514e-4) / (2.514e-4 + A) = 85.2 -> 85
# so 85 sessions, compute-bound.
# Rack: (12500 - 300) / 600 W = 20.3 -> 20 servers (space: 40 x 1U), power-bound: 1700 sessions.
check '[ "$(jget "$tmp/a.json" j.sessions_per_server)" = 85 ]'
check '[ "$(jget "$tmp/a.json" j.limiting_factor)" = compute ]'
check '[ "$(jget "$tmp/a.json" j.servers_per_rack)" = 20 ]'
check '[ "$(jget "$tmp/a.json" j.rack_limiting_factor)" = power ]'
check '[ "$(jget "$tmp/a.json" j.sessions_per_rack)" = 1700 ]'
# Watts per session: (20 x 600 + 300) / 1700 = 7.235...
check '[ "$(jget "$tmp/a.json" "Math.abs(j.watts_per_session - 12300 / 1700) < 1e-9")" = true ]'

# A rack with more room: 20 kW -> (20000 - 300) / 600 = 32 servers.
"$bin" plan --hardware ampereone-a192-32x --rack-kw 20 --json >"$tmp/b.json"
check '[ "$(jget "$tmp/b.json" j.servers_per_rack)" = 32 ]'
# A space-bound rack: 10U less 2U of switch at 1U each = 8 servers.
"$bin" plan --hardware ampereone-a192-32x --rack-u 10 --json >"$tmp/c.json"
check '[ "$(jget "$tmp/c.json" j.servers_per_rack)" = 8 ] && [ "$(jget "$tmp/c.json" j.rack_limiting_factor)" = space ]'

# GPUs: the seed's one session per GPU and per MIG slice, and batching, all reported.
"$bin" plan --hardware h100-sxm --model llama3.1-8b --json >"$tmp/g.json"
check '[ $? -eq 0 ]'
check '[ "$(jget "$tmp/g.json" "j.strategies.map(s => s.strategy).sort().join()")" = "batched,one-per-gpu,one-per-mig" ]'
check '[ "$(jget "$tmp/g.json" "j.strategies.find(s => s.strategy === \"one-per-gpu\").sessions_per_server")" = 8 ]'
check '[ "$(jget "$tmp/g.json" "j.strategies.find(s => s.strategy === \"one-per-mig\").sessions_per_server")" = 56 ]'
"$bin" plan --hardware h100-sxm --model llama3.1-8b --gpu-batching --json >"$tmp/gb.json"
check '[ "$(jget "$tmp/gb.json" j.strategy)" = batched ]'

# --cores: an 8-core slice of a 2 x 96-core EPYC server: 192 / 8 = 24 slices, 8 / 96 of a socket.
"$bin" plan --hardware epyc-9654 --cores 8 --json >"$tmp/s.json"
check '[ "$(jget "$tmp/s.json" j.slices_per_server)" = 24 ]'
check '[ "$(jget "$tmp/s.json" "Math.abs(j.slice_bw_share - 8 / 96) < 1e-12")" = true ]'

# The human table names the headline and the rack.
"$bin" plan --hardware ampereone-a192-32x $dflt >"$tmp/table"
check 'grep -q "sessions per rack   1700" "$tmp/table" && grep -q "limited by power" "$tmp/table"'

# ---- bad input: exit 2 with "rackllm plan: ..." ----
bad() {
  "$bin" plan "$@" >/dev/null 2>"$tmp/err"
  local rc=$?
  if [ $rc -eq 2 ] && grep -q '^rackllm plan: ' "$tmp/err"; then ok; else fail "plan $* -> exit $rc: $(cat "$tmp/err")"; fi
}
bad --hardware no-such-hw
bad --model no-such-model --hardware epyc-9654
bad --hardware epyc-9654 --floor -1
bad --hardware epyc-9654 --floor abc
bad --hardware epyc-9654 --cores 1000
bad --hardware h100-sxm --cores 4
bad --hardware epyc-9654 --quant Q9_9
bad --hardware epyc-9654 --no-such-flag
bad --model
bad --model /no/such/file.gguf --hardware epyc-9654
bad --matrix --calibrate /no/such/bench.json
bad --verify-from tests/data/no-such.json
bad --verify --verify-repeat 0
bad --verify --verify-repeat 2.5
bad
echo '{"rackllm_bench": 7}' >"$tmp/wrong.json"
bad --verify-from "$tmp/wrong.json"

# ---- a GGUF file as the model: its own tensors' bytes ----
model="$shared/models/synth-s512-q8_0.gguf"
if [ -f "$model" ]; then
  "$bin" plan --model "$model" --hardware this --json >"$tmp/f.json"
  check '[ $? -eq 0 ]'
  size=$(stat -c %s "$model")
  check "[ \"\$(jget '$tmp/f.json' \"j.model.weight_bytes > 0 && j.model.weight_bytes < $size\")\" = true ]"
  check '[ "$(jget "$tmp/f.json" j.model.size_class)" = 0 ]'
  check '[ "$(jget "$tmp/f.json" "j.hardware.id")" = this ]'
else
  fail "$model missing (see ../shared/README.md)"
fi

# ---- the matrix ----
"$bin" plan --matrix --json >"$tmp/m.json"
check '[ $? -eq 0 ]'
check '[ "$(jget "$tmp/m.json" "j.classes.map(c => c.class).join()")" = "0,1,2,3" ]'
check '[ "$(jget "$tmp/m.json" "j.matrix.every(r => Number.isInteger(r.sessions_per_rack) && r.sessions_per_rack >= 0)")" = true ]'
check '[ "$(jget "$tmp/m.json" "j.assumptions.length >= 4")" = true ]'
# The seed's qualitative result: class 0 and 1 on the 192-core AmpereOne beat H100s running one session each
# by 10x or more (with its published llama.cpp runs fitted: 900 and 120 sessions against 8).
for k in 0 1; do
  cpu=$(jget "$tmp/m.json" "j.matrix.find(r => r.hardware === 'ampereone-a192-32x' && r.class === $k).sessions_per_rack")
  gpu=$(jget "$tmp/m.json" "j.matrix.find(r => r.hardware === 'h100-sxm' && r.strategy === 'one-per-gpu' && r.class === $k).sessions_per_rack")
  check "[ $gpu -gt 0 ] && [ $cpu -ge \$((10 * $gpu)) ]" "class $k: cpu $cpu vs one per GPU $gpu"
done
"$bin" plan --matrix --svg "$tmp/m.svg" >"$tmp/m.txt"
check '[ $? -eq 0 ]'
check 'valid_svg "$tmp/m.svg"' "matrix SVG"
check 'grep -q "log scale" "$tmp/m.svg" && grep -q "context 4096 tokens" "$tmp/m.svg" && grep -q "h100-sxm (1/GPU)" "$tmp/m.svg"'
check 'grep -q "assumptions:" "$tmp/m.txt" && grep -q "ampereone-a192-32x" "$tmp/m.txt"'
"$bin" plan --hardware h100-pcie --model llama3.3-70b --svg "$tmp/p.svg" >/dev/null
check '[ $? -eq 0 ] && valid_svg "$tmp/p.svg"' "plan SVG"
check 'grep -q "MIG slice" "$tmp/p.svg"'
"$bin" plan --hardware epyc-9654 --svg /no/such/dir/x.svg >/dev/null 2>&1
check '[ $? -eq 2 ]' "unwritable SVG path"

# ---- what each figure rests on: published evidence ----
"$bin" plan --hardware epyc-9654 >"$tmp/e1"
check 'grep -q "^rests on   fitted to [0-9]* published points for zen4 (llama.cpp" "$tmp/e1"' "fitted label"
check 'grep -q "leave-one-out error: median [0-9.]*%" "$tmp/e1" && grep -q "x 3.77 compute" "$tmp/e1"'
"$bin" plan --hardware graviton4 >"$tmp/e2"
check 'grep -q "not measured on this instruction set" "$tmp/e2"' "Arm: no rackllm ratio"
"$bin" plan --hardware epyc-9754 --json >"$tmp/e3.json"
check '[ "$(jget "$tmp/e3.json" j.basis.kind)" = no_evidence ]'
check '[ "$(jget "$tmp/e3.json" "j.basis.sessions_per_rack_low < j.basis.sessions_per_rack_high && j.basis.text.startsWith(\"no evidence for this CPU\")")" = true ]'
"$bin" plan --hardware epyc-9654 --json >"$tmp/e4.json"
"$bin" plan --hardware epyc-9654 --software llama.cpp --json >"$tmp/e5.json"
check '[ "$(jget "$tmp/e4.json" "j.basis.kind + j.basis.points")" = "fitted$(jget "$tmp/e5.json" j.basis.points)" ]'
check '[ "$(jget "$tmp/e5.json" j.sessions_per_rack)" -lt "$(jget "$tmp/e4.json" j.sessions_per_rack)" ]' "rackllm above llama.cpp"
"$bin" plan --hardware this --calibrate tests/data/bench-sample.json --json >"$tmp/e6.json"
check '[ "$(jget "$tmp/e6.json" j.basis.kind)" = measured ]'
"$bin" plan --hardware epyc-9654 --calibrate tests/data/bench-sample.json --json >"$tmp/e7.json"
check '[ "$(jget "$tmp/e7.json" "j.basis.kind + j.params.eff_bw")" = "$(jget "$tmp/e4.json" "j.basis.kind + j.params.eff_bw")" ]' "evidence kept under --calibrate"
# (the matrix's text from the SVG run above)
check 'grep -q "^epyc-9654 .*fit zen4 n=[0-9]* LOO" "$tmp/m.txt" && grep -q "^epyc-9754 .*[0-9]-[0-9].*no evidence: range" "$tmp/m.txt"' "matrix marks"
check 'grep -q "^h100-sxm (1/GPU) .*default" "$tmp/m.txt"'
"$bin" plan --evidence >"$tmp/ev.md"
check 'grep -q "^Leave-one-out, all fitted points: median error [0-9.]*%, worst [0-9]*%" "$tmp/ev.md"'
check '[ "$(grep -c "^| m7a | llama.cpp b11f9ba |" "$tmp/ev.md")" -ge 100 ]' "a row per point"
"$bin" plan --evidence --json >"$tmp/ev.json"
check '[ "$(jget "$tmp/ev.json" "j.points_published > 1000 && j.points_fitted > 500 && j.loo_median_error < 0.2")" = true ]'

# docs/planner.md's generated blocks are what the command says now (scripts/planner-docs.sh).
check '[ "$(grep "^Leave-one-out, all fitted points" "$tmp/ev.md")" = "$(grep "^Leave-one-out, all fitted points" docs/planner.md)" ]' "docs/planner.md evidence block is current"
row=$(jget "$tmp/m.json" "j.matrix.filter(c => c.hardware === 'epyc-9654').map(c => c.sessions_per_rack).join(' | ')")
check "grep -q '^| epyc-9654 | $row |' docs/planner.md" "docs/planner.md matrix block is current"

# ---- a chat workload is not a decode-only plan ----
"$bin" plan --hardware epyc-9654 --ctx 1125 --json >"$tmp/d.json"
"$bin" plan --hardware epyc-9654 --prompt 1000 --answer 250 --think 30 --json >"$tmp/ch.json"
check '[ "$(jget "$tmp/ch.json" "j.params.ctx + \",\" + (j.chat.prefill_share > 0.05)")" = "1125,true" ]'
check '[ "$(jget "$tmp/ch.json" j.sessions_per_rack)" -lt "$(jget "$tmp/d.json" j.sessions_per_rack)" ]' "prefill costs sessions"
check '[ "$(jget "$tmp/ch.json" "j.chat.users_per_rack > j.sessions_per_rack")" = true ]' "think time adds users"
"$bin" plan --hardware epyc-9654 --prompt 1000 --answer 250 >"$tmp/ch.txt"
check 'grep -q "chat: new prompts take [0-9.]*% of each step" "$tmp/ch.txt"'
bad --hardware epyc-9654 --prompt 100
bad --hardware epyc-9654 --software vllm

# ---- calibration and verification against the sample bench ----
"$bin" plan --hardware this --calibrate tests/data/bench-sample.json --json >"$tmp/k.json"
check '[ $? -eq 0 ]'
# eff_bw = 20 tok/s (the sweep's one session) x 7e8 bytes / 20e9 B/s = 0.7
check '[ "$(jget "$tmp/k.json" "Math.abs(j.params.eff_bw - 0.7) < 1e-12")" = true ]'
# the compute factors from every batch by least squares (tests/test_plan.c): verified against the
# very file they were fitted to, the predicted crossing lands within 6% of its own (9 + 12/55:
# the sample bends more than the model can, -5.2% here)
"$bin" plan --verify-from tests/data/bench-sample.json --calibrate tests/data/bench-sample.json --json >"$tmp/kv.json"
check '[ "$(jget "$tmp/kv.json" "Math.abs(j.predicted_capacity / j.measured_capacity - 1) < 0.06 && j.step_fixed >= 0")" = true ]' "calibrated fit"
check '[ "$(jget "$tmp/k.json" "j.params.eff_compute > 0 && j.params.efficiency")" = "calibrated by the bench JSON" ]'
# a batch slower than half the floor is left out of the fit: the same factors with one added
node -e 'const fs = require("fs"), j = JSON.parse(fs.readFileSync(process.argv[1]));
         j.sweep.batched.push({sessions: 24, min_tok_s: 2, median_tok_s: 2, aggregate_tok_s: 48});
         fs.writeFileSync(process.argv[2], JSON.stringify(j))' tests/data/bench-sample.json "$tmp/far.json"
"$bin" plan --hardware this --calibrate "$tmp/far.json" --json >"$tmp/kf.json"
check '[ "$(jget "$tmp/kf.json" "j.params.eff_compute + \",\" + j.params.step_fixed")" = "$(jget "$tmp/k.json" "j.params.eff_compute + \",\" + j.params.step_fixed")" ]' "far batch left out"

"$bin" plan --hardware h100-sxm --calibrate tests/data/bench-sample.json --json >"$tmp/kg.json"
check '[ "$(jget "$tmp/kg.json" j.params.eff_bw)" = 0.6 ]' "GPU keeps its defaults"
"$bin" plan --verify-from tests/data/bench-sample.json --calibrate tests/data/bench-sample.json --json >"$tmp/v.json"
check '[ $? -eq 0 ]'
check '[ "$(jget "$tmp/v.json" "j.measured_batched + \",\" + j.measured_partitioned")" = "9,2" ]'
check '[ "$(jget "$tmp/v.json" "Number.isInteger(j.predicted_batched) && Number.isInteger(j.predicted_partitioned) && typeof j.error_batched_pct")" = number ]'
# the measured crossing: 9 sessions at 10.2 tok/s, 12 at 8 -> 9 + 3 x 4/55 (tests/test_plan.c)
check '[ "$(jget "$tmp/v.json" "Math.abs(j.measured_capacity - (9 + 12 / 55)) < 1e-9")" = true ]'
check '[ "$(jget "$tmp/v.json" "j.predicted_capacity >= j.predicted_batched && j.predicted_capacity < j.predicted_batched + 1")" = true ]'
# calibrated with the very file it verifies: the calibration run's crossing is the measured one
check '[ "$(jget "$tmp/v.json" "j.calibration_capacity === j.measured_capacity")" = true ]'
"$bin" plan --verify-from tests/data/bench-sample.json >"$tmp/v.txt"
check 'grep -q "predicted" "$tmp/v.txt" && grep -q "partitioned" "$tmp/v.txt"'
check 'grep -q "before rounding" "$tmp/v.txt"'
# A run at another context with no partitioned sweep (--partitions 0): no calibration crossing
# to compare (the calibration ran at 192 tokens), no partitioned error.
node -e 'const fs = require("fs"), j = JSON.parse(fs.readFileSync(process.argv[1]));
         j.sweep.prompt_len = 1024; j.sweep.partitioned = []; delete j.max_sessions_at_floor.partitioned;
         fs.writeFileSync(process.argv[2], JSON.stringify(j))' tests/data/bench-sample.json "$tmp/long.json"
"$bin" plan --verify-from "$tmp/long.json" --calibrate tests/data/bench-sample.json --json >"$tmp/vl.json"
check '[ $? -eq 0 ]'
check '[ "$(jget "$tmp/vl.json" "j.calibration_capacity === null && j.measured_partitioned === null && j.error_partitioned_pct === null")" = true ]'
check '[ "$(jget "$tmp/vl.json" j.measured_batched)" = 9 ]'
"$bin" plan --verify-from "$tmp/long.json" --calibrate tests/data/bench-sample.json >"$tmp/vl.txt"
check 'grep -q "(no sweep)" "$tmp/vl.txt" && ! grep -q "calibration run crossed" "$tmp/vl.txt"'

# The measurement against itself: three passes per point, split A B A (tests/test_plan.c).
# 8 sessions: A = (11 + 11.5) / 2, B = 10.5; 9: A = 10.3, B = 9.8 -> 9 and 8 sessions.
node -e 'const fs = require("fs"), j = JSON.parse(fs.readFileSync(process.argv[1]));
         const p = {1: [20, 20, 20], 4: [14, 14, 14], 8: [11, 10.5, 11.5], 9: [10.2, 9.8, 10.4], 12: [8, 8, 8]};
         for (const pt of j.sweep.batched) pt.pass_min_tok_s = p[pt.sessions];
         fs.writeFileSync(process.argv[2], JSON.stringify(j))' tests/data/bench-sample.json "$tmp/passes.json"
"$bin" plan --verify-from "$tmp/passes.json" --json >"$tmp/vh.json"
check '[ "$(jget "$tmp/vh.json" "j.measured_halves.batched.join() + \"/\" + j.measured_halves.passes.join()")" = "9,8/2,1" ]'
"$bin" plan --verify-from "$tmp/passes.json" >"$tmp/vh.txt"
check 'grep -q "measured 9 and 8 sessions" "$tmp/vh.txt" && grep -q "moves by 1" "$tmp/vh.txt"'
# without passes there are no halves
check '[ "$(jget "$tmp/v.json" "j.measured_halves === undefined")" = true ] && ! grep -q "against itself" "$tmp/v.txt"'

report test_cli_plan
