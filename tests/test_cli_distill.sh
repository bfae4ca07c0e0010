#!/usr/bin/env bash
# test_cli_distill.sh — `rackllm distill` and `rackllm eval` end to end on
# the real TinyStories model and a few kilobytes of its stories: a short
# run writes a student that `eval`, `run` and `quantize` take, its --json
# and --svg; Ctrl-C leaves a checkpoint and no student, and --resume ends
# with the bytes of a run that never stopped; the teacher's pass in shards,
# merged, gives the same student; bad input exits 2 with one line and
# writes nothing.
. "$(dirname "$0")/cli_lib.sh"

teacher=$shared/models/stories260K.gguf
head -c 12000 "$shared/text/tinystories_sample.txt" >"$tmp/text.txt"
base=(--teacher "$teacher" --data "$tmp/text.txt" --batch 4 --seq-len 32 --top-k 8 --eval-seqs 4 --teacher-seqs 8
      --cache "$tmp/t.teacher" -t 2)
common=("${base[@]}" --student-shape dim=32,layers=1,heads=4,kv=2,ff=64)

check '"$bin" distill --help | grep -q -- --student-shape' "distill --help"
check '"$bin" eval --help | grep -q llama-perplexity' "eval --help"

# a short run
"$bin" distill "${common[@]}" --steps 6 --eval-every 3 -o "$tmp/s.gguf" --json "$tmp/s.json" --svg "$tmp/s.svg" \
  2>"$tmp/log"
rc=$?
check '[ $rc -eq 0 ] && [ -s "$tmp/s.gguf" ]' "distill wrote the student: $(tail -3 "$tmp/log")"
check '[ "$(jget "$tmp/s.json" "j.steps_done + \" \" + j.curve.length + \" \" + (j.curve[2].held > 0)")" = "6 6 true" ]' \
  "the JSON has the curve"
check '[ "$(jget "$tmp/s.json" "j.student_held > j.teacher_held && j.student.n_embd == 32")" = true ]' "JSON figures"
check 'xmllint --noout "$tmp/s.svg"' "the SVG is well-formed"
check 'grep -q "held-out" "$tmp/log" && grep -q "teacher pass" "$tmp/log"' "the log says what happened"

out=$("$bin" eval -m "$tmp/s.gguf" --text "$tmp/text.txt" -c 64 -t 2 2>/dev/null)
check 'echo "$out" | grep -q "nats/token, perplexity"' "eval prints NLL and perplexity: $out"
check '"$bin" eval -m "$tmp/s.gguf" --text "$tmp/text.txt" -c 64 -t 2 --json 2>/dev/null | grep -q "\"ppl\""' \
  "eval --json"
check '"$bin" quantize "$tmp/s.gguf" "$tmp/s-q8.gguf" q8_0 2>/dev/null && [ -s "$tmp/s-q8.gguf" ]' "quantize"
check '"$bin" run -m "$tmp/s-q8.gguf" -p "Once upon" -n 4 --temp 0 -t 1 >/dev/null 2>&1' "run"

# Ctrl-C, then --resume: the same bytes as a run that never stopped
long=(--steps 200 --eval-every 10 --checkpoint-every 0)
"$bin" distill "${common[@]}" "${long[@]}" -o "$tmp/whole.gguf" 2>/dev/null
"$bin" distill "${common[@]}" "${long[@]}" -o "$tmp/cut.gguf" 2>"$tmp/cut.log" &
pid=$!
for _ in $(seq 500); do grep -q "step 10/" "$tmp/cut.log" 2>/dev/null && break; sleep 0.02; done
kill -INT $pid
wait $pid
rc=$?
check '[ $rc -eq 130 ] && [ -s "$tmp/cut.gguf.ckpt" ] && [ ! -e "$tmp/cut.gguf" ]' \
  "Ctrl-C: exit $rc, a checkpoint, no student ($(tail -1 "$tmp/cut.log"))"
check 'grep -q -- "--resume" "$tmp/cut.log"' "the message says how to go on"
"$bin" distill "${common[@]}" "${long[@]}" -o "$tmp/cut.gguf" --resume 2>"$tmp/resume.log"
rc=$?
check '[ $rc -eq 0 ] && cmp -s "$tmp/whole.gguf" "$tmp/cut.gguf"' "resumed: the same student ($(tail -1 "$tmp/resume.log"))"

# the teacher's pass in two shards (two servers), merged by concatenating
# records: the same student as from one whole pass, and no teacher rerun
short=(--steps 6 --eval-every 0 --checkpoint-every 0)
for i in 0 1; do
  "$bin" distill "${common[@]}" "${short[@]}" --cache "$tmp/shard$i.teacher" --teacher-shard "$i/2" \
    -o "$tmp/shard.gguf" 2>"$tmp/shard$i.log"
  check '[ $? -eq 0 ] && [ -s "$tmp/shard$i.teacher" ] && [ ! -e "$tmp/shard.gguf" ]' "teacher shard $i/2, no student"
done
cp "$tmp/shard0.teacher" "$tmp/merged.teacher"
tail -c +65 "$tmp/shard1.teacher" >>"$tmp/merged.teacher"
"$bin" distill "${common[@]}" "${short[@]}" --cache "$tmp/merged.teacher" -o "$tmp/merged.gguf" 2>"$tmp/merged.log"
"$bin" distill "${common[@]}" "${short[@]}" -o "$tmp/oneshot.gguf" 2>/dev/null
check 'grep -q "0 computed" "$tmp/merged.log" && cmp -s "$tmp/merged.gguf" "$tmp/oneshot.gguf"' \
  "merged shards: nothing recomputed, the same student ($(grep "teacher pass" "$tmp/merged.log"))"

# bad input: exit 2, one line, no file
bad() { # bad WHY ARGS...
  local why=$1
  shift
  "$bin" distill "$@" -o "$tmp/bad.gguf" >"$tmp/bad.out" 2>"$tmp/bad.err"
  local rc=$?
  check '[ $rc -eq 2 ] && [ "$(wc -l <"$tmp/bad.err")" -eq 1 ] && grep -q "$why" "$tmp/bad.err" && [ ! -e "$tmp/bad.gguf" ]' \
    "$why: exit $rc, $(cat "$tmp/bad.err")"
}
printf '\n\n  \n' >"$tmp/empty.txt"
printf 'caf\xe9\n' >"$tmp/latin1.txt"
bad "required" --data "$tmp/text.txt"
bad "no text" --teacher "$teacher" --data "$tmp/empty.txt" --student-shape dim=32,layers=1,heads=4
bad "not UTF-8" --teacher "$teacher" --data "$tmp/latin1.txt" --student-shape dim=32,layers=1,heads=4
bad "do not divide" "${common[@]}" --student-shape dim=32,layers=1,heads=4,kv=3
bad "tokenizer" "${common[@]}" --student-shape llama3.2-1b
bad "teacher-shard" "${common[@]}" --teacher-shard 2/2
bad "no layer 9" "${base[@]}" --init-from-teacher 0,9
# a full disk (a 64 KiB file-size limit; SIGXFSZ ignored, so writes fail
# with EFBIG): an error naming the file, no student, no temporary left
(trap '' XFSZ; ulimit -f 64; exec "$bin" distill "${common[@]}" --alpha 0 --steps 2 --checkpoint-every 0 \
  -o "$tmp/full.gguf") 2>"$tmp/full.err"
rc=$?
check '[ $rc -ne 0 ] && grep -q "full.gguf" "$tmp/full.err" && [ ! -e "$tmp/full.gguf" ] && [ -z "$(ls "$tmp" | grep "^full.gguf.")" ]' \
  "full disk: exit $rc, $(tail -1 "$tmp/full.err"), left: $(ls "$tmp" | grep "^full" | tr '\n' ' ')"
"$bin" eval -m "$teacher" --text "$tmp/latin1.txt" 2>"$tmp/bad.err"
rc=$?
check '[ $rc -eq 2 ] && grep -q "not UTF-8" "$tmp/bad.err"' "eval of bad text: exit $rc, $(cat "$tmp/bad.err")"

report test_cli_distill
