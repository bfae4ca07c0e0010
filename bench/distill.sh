#!/usr/bin/env bash
# bench/distill.sh — the measurements of issue 13 (rackllm distill), one
# part per call so that each exclusive hold of the CPU stays short:
#
#   threeway STUDENT SETTING   held-out loss of a student after the same
#                              steps and tokens, seeds 1 2 3; STUDENT is s3
#                              (~1/4 of stories260K) or s10 (~1/10); SETTING
#                              a (--alpha 0: from scratch), b (distilled),
#                              c (distilled, started from teacher layer 0);
#                              one line per seed into $OUT/threeway.tsv
#   speed                      tokens/s of the C trainer (build/train_speed)
#                              against PyTorch (bench/oracles/train_llama.py)
#                              on the same model, batch, sequence, threads,
#                              alternating, ROUNDS rounds
#   curves                     both trainers from the same weights on the same
#                              batches: the loss at every step, side by side
#   density                    `rackllm bench` sessions at >= 10 tok/s of
#                              teacher and students, of an 8B teacher and a
#                              1B student at real shapes (synthetic Q4_0),
#                              and `rackllm plan` for that pair on servers
#   peer                       llama.cpp (peer build) loads a student and
#                              generates the same greedy tokens as rackllm
#   scale                      the trainer at a wider shape (dim 512): its
#                              GFLOP/s, and PyTorch's tok/s beside it
#   summary                    the three-way table over seeds
#
# Environment: RACKLLM (build/rackllm), TRAIN_SPEED (build/train_speed),
# THREADS (2), OUT ($TMPDIR/rackllm-distill), STEPS (300), ROUNDS (3),
# LLAMA_CPP_DIR (/work/peer/llama.cpp/build/bin), SHARED (../shared).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
RACKLLM=${RACKLLM:-$here/build/rackllm}
TRAIN_SPEED=${TRAIN_SPEED:-$here/build/train_speed}
SHARED=${SHARED:-$here/../shared}
THREADS=${THREADS:-2}
OUT=${OUT:-${TMPDIR:-/tmp}/rackllm-distill}
STEPS=${STEPS:-300}
ROUNDS=${ROUNDS:-3}
LLAMA_CPP_DIR=${LLAMA_CPP_DIR:-/work/peer/llama.cpp/build/bin}
teacher=$SHARED/models/stories260K.gguf
text=$SHARED/text/tinystories_sample.txt
mkdir -p "$OUT"

# The students: ~1/4 (one layer of the teacher's width, tied output: the
# shape --init-from-teacher 0 makes, so setting c trains the same model)
# and ~1/10.
shape_s3=dim=64,layers=1,heads=8,kv=4,ff=172,tied
shape_s10=dim=32,layers=1,heads=4,kv=2,ff=86,tied
common=(--teacher "$teacher" --data "$text" --steps "$STEPS" --batch 8 --seq-len 128 --lr 1e-2 --warmup 20
        --eval-every 100 --checkpoint-every 0 --top-k 32 --temperature 2 --cache "$OUT/teacher-t128-k32.teacher"
        -t "$THREADS")
speed_shape=${SPEED_SHAPE:-$shape_s3}
speed_args=(--model "$teacher" --text "$text" --shape "$speed_shape" --batch 16 --seq-len 128 -t "$THREADS")

threeway() { # STUDENT SETTING
  local st=$1 set=$2 shape_var="shape_$1" args
  case $set in
    a) args=(--student-shape "${!shape_var}" --alpha 0) ;;
    b) args=(--student-shape "${!shape_var}" --alpha 0.5) ;;
    c) [ "$st" = s3 ] || { echo "setting c needs the teacher's width (s3)" >&2; return 2; }
       args=(--init-from-teacher 0 --alpha 0.5) ;;
    *) echo "setting a, b or c" >&2; return 2 ;;
  esac
  for seed in 1 2 3; do
    local j=$OUT/$st-$set-seed$seed.json
    "$RACKLLM" distill "${common[@]}" "${args[@]}" --seed "$seed" -o "$OUT/$st-$set-seed$seed.gguf" --json "$j" \
      2>"$OUT/$st-$set-seed$seed.log" || { tail -3 "$OUT/$st-$set-seed$seed.log"; return 1; }
    jq -r --arg s "$st" --arg set "$set" '[$s, $set, .params.seed, .student.params, .teacher_params, .steps_done,
      .train_tokens, .student_held, .teacher_held, .tok_per_s] | @tsv' "$j" | tee -a "$OUT/threeway.tsv"
  done
}

speed() {
  "$TRAIN_SPEED" "${speed_args[@]}" --steps 21 --dump "$OUT/speed-run" >/dev/null || return 1
  for r in $(seq "$ROUNDS"); do
    local order="c py"
    [ $((r % 2)) -eq 0 ] && order="py c"
    for who in $order; do
      if [ "$who" = c ]; then
        "$TRAIN_SPEED" "${speed_args[@]}" --steps 21 | tail -1
      else
        /usr/bin/python3 "$here/bench/oracles/train_llama.py" "$OUT/speed-run" --threads "$THREADS" --steps 21 |
          tail -1
      fi
    done
  done | tee "$OUT/speed.txt"
}

curves() {
  local steps=${CURVE_STEPS:-200}
  "$TRAIN_SPEED" "${speed_args[@]}" --steps "$steps" --dump "$OUT/curve-run" >"$OUT/curve-c.txt" || return 1
  /usr/bin/python3 "$here/bench/oracles/train_llama.py" "$OUT/curve-run" --threads "$THREADS" >"$OUT/curve-py.txt"
  paste <(grep '^step' "$OUT/curve-c.txt" | awk '{print $2, $4}') <(grep '^step' "$OUT/curve-py.txt" |
    awk '{print $4}') | awk '{d = $2 - $3; if (d < 0) d = -d; if (d > m) m = d;
      if ($1 % 25 == 0 || $1 == '"$steps"' - 1) printf "step %d  C %.5f  PyTorch %.5f\n", $1, $2, $3}
      END {printf "max |C - PyTorch| over %d steps: %.2g\n", NR, m}' | tee "$OUT/curves.txt"
}

density() {
  for m in "$teacher" "$OUT/s3-b-seed1.gguf" "$OUT/s10-b-seed1.gguf"; do
    local j=$OUT/bench-$(basename "$m" .gguf).json
    "$RACKLLM" bench -m "$m" -t "$THREADS" --sweep-only --partitions 0 --max-sessions 4096 --prompt 64 --gen 32 \
      --json "$j" -q >/dev/null 2>&1 || { echo "bench failed on $m"; return 1; }
    jq -r --arg m "$(basename "$m")" '"\($m): \(.max_sessions_at_floor.batched) sessions at >= \(.floor) tok/s"' "$j"
  done | tee "$OUT/density.txt"
  # the same at real shapes (synthetic weights: speed depends on the shape,
  # not on what the weights learned): an 8B teacher, a 1B student
  for shape in llama3.1-8b llama3.2-1b; do
    local j=$OUT/bench-$shape-q4_0.json
    "$RACKLLM" bench --shape "$shape" -T q4_0 -t "$THREADS" --sweep-only --partitions 0 --prompt 64 --gen 32 \
      --json "$j" -q >/dev/null 2>&1 || { echo "bench failed on $shape"; return 1; }
    jq -r --arg m "$shape Q4_0 (synthetic)" '"\($m): \(.max_sessions_at_floor.batched) sessions at >= \(.floor) tok/s"' "$j"
  done | tee -a "$OUT/density.txt"
  for hw in ampereone-m epyc-9654; do
    for m in llama3.1-8b llama3.2-1b; do
      "$RACKLLM" plan --model "$m" --quant Q4_0 --hardware "$hw" --json |
        jq -r --arg m "$m" --arg hw "$hw" '"plan \($hw) \($m) Q4_0: \(.sessions_per_server) sessions/server, \(.sessions_per_rack) per rack, \(.watts_per_session | . * 10 | round / 10) W/session"'
    done
  done | tee -a "$OUT/density.txt"
}

peer() {
  local s=$OUT/s3-b-seed1.gguf n=32
  [ -x "$LLAMA_CPP_DIR/llama-completion" ] || { echo "no llama.cpp at $LLAMA_CPP_DIR"; return 0; }
  for p in "Once upon a time" "The little dog"; do
    local ours theirs
    ours=$("$RACKLLM" run -m "$s" -p "$p" -n $n --temp 0 -t 1 2>/dev/null)
    theirs=$("$LLAMA_CPP_DIR/llama-completion" -m "$s" -p "$p" -n $n --temp 0 -t 1 --no-warmup -no-cnv \
      2>/dev/null)
    printf '%s\n  rackllm:   %q\n  llama.cpp: %q\n  same: %s\n' "$p" "$ours" "$theirs" \
      "$([ "$p$ours" = "${theirs# }" ] && echo yes || echo no)" # llama.cpp echoes the prompt, after a space
  done | tee "$OUT/peer.txt"
}

# The trainer at a wider shape (dim 512, the stories vocabulary): the
# GFLOP/s that docs/distill.md scales to a real pair, and PyTorch's ratio
# where its per-op overhead matters less.
scale() {
  local args=(--model "$teacher" --text "$text" --shape dim=512,layers=2,heads=8,kv=4,ff=1376 --batch 8
              --seq-len 256 -t "$THREADS")
  "$TRAIN_SPEED" "${args[@]}" --steps 6 --dump "$OUT/scale-run" >/dev/null || return 1
  for r in 1 2; do
    "$TRAIN_SPEED" "${args[@]}" --steps 6 | tail -1
    /usr/bin/python3 "$here/bench/oracles/train_llama.py" "$OUT/scale-run" --threads "$THREADS" | tail -1
  done | tee "$OUT/scale.txt"
}

# The three-way table from $OUT/threeway.tsv: per student and setting the
# held-out loss over seeds (mean, min-max), and the share of the gap between
# training from scratch (a) and the teacher that distillation closed.
summary() {
  awk -F'\t' '{k = $1 " " $2; n[k]++; s[k] += $8; if (!(k in lo) || $8 < lo[k]) lo[k] = $8;
      if (!(k in hi) || $8 > hi[k]) hi[k] = $8; if ($9 != "") t = $9; p[$1] = $4; tp = $5; tok[k] = $7}
    END {printf " teacher held-out %.4f nats/token (%d parameters)\n", t, tp;
      for (k in n) { split(k, a, " "); m[k] = s[k] / n[k] }
      for (k in n) { split(k, a, " "); ka = a[1] " a"; gap = (ka in m) ? (m[ka] - m[k]) / (m[ka] - t) : 0;
        printf "%s %s: %d params (%.3f of the teacher), %d tokens, %d seeds: %.4f (%.4f-%.4f), gap closed %.0f%%\n",
          a[1], a[2], p[a[1]], p[a[1]] / tp, tok[k], n[k], m[k], lo[k], hi[k], 100 * gap }
    }' "$OUT/threeway.tsv" | sort | tee "$OUT/summary.txt"
}

case ${1:-} in
  threeway) threeway "${2:?s3|s10}" "${3:?a|b|c}" ;;
  speed | curves | density | peer | scale | summary) "$1" ;;
  *) sed -n '2,/^set -u/{/^#/p}' "$0"; exit 2 ;;
esac
