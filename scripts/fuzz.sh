#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from
# its seed corpus in fuzz/corpus/<target>/ (copied: the seeds stay clean).
# A crash leaves the input in BUILD_DIR/fuzz-out/ and fails the run.
set -euo pipefail
build=${1:?build dir}; seconds=${2:-60}
shopt -s nullglob
targets=("$build"/fuzz_*)
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in $build" >&2; exit 1; }
for t in "${targets[@]}"; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  work="$build/fuzz-out/$name"; mkdir -p "$work/corpus"
  [ -d "fuzz/corpus/$name" ] && cp -n fuzz/corpus/"$name"/* "$work/corpus/" 2>/dev/null || true
  echo "fuzz: $name for ${seconds}s"
  "$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/" \
       -print_final_stats=1 "$work/corpus" 2>"$work/log.txt" || { tail -50 "$work/log.txt"; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss" "$work/log.txt" | sed "s/^/  $name /"
done
