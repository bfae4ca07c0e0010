#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from
# its seed corpus in fuzz/corpus/<target>/ (copied: the seeds stay clean) and
# its dictionary fuzz/<target>.dict if there is one. The working corpus in
# BUILD_DIR/fuzz-out/<target>/corpus grows from run to run.
#
# A crash, a sanitizer report, a hang (-timeout), a single allocation over
# FUZZ_MALLOC_MB (default 256: the GGUF reader allocates a small multiple of
# its input) or a process over 2 GB fails the run: the input is left in
# BUILD_DIR/fuzz-out/<target>/ and the command to replay it is printed.
# Extra libFuzzer flags: FUZZ_FLAGS="-max_len=65536 ...".
#
# Usage: scripts/fuzz.sh BUILD_DIR [SECONDS]     (make fuzz / make fuzz-long)
set -euo pipefail
build=${1:?build dir}; seconds=${2:-60}
malloc_mb=${FUZZ_MALLOC_MB:-256}
shopt -s nullglob
targets=("$build"/fuzz_*)
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in $build" >&2; exit 1; }
for t in "${targets[@]}"; do
  if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
  name=$(basename "$t")
  work="$build/fuzz-out/$name"; mkdir -p "$work/corpus"
  if [ -d "fuzz/corpus/$name" ]; then cp -n fuzz/corpus/"$name"/* "$work/corpus/" 2>/dev/null || true; fi
  flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb="$malloc_mb"
         -artifact_prefix="$work/" -print_final_stats=1)
  [ -f "fuzz/$name.dict" ] && flags+=(-dict="fuzz/$name.dict")
  # shellcheck disable=SC2206  # FUZZ_FLAGS is a list of words on purpose
  flags+=(${FUZZ_FLAGS:-})
  echo "fuzz: $name for ${seconds}s (log: $work/log.txt)"
  if ! "$t" "${flags[@]}" "$work/corpus" 2>"$work/log.txt"; then
    tail -50 "$work/log.txt"
    for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$work"/slow-unit-*; do
      echo "fuzz: $name failed on $a; replay with: $t $a" >&2
    done
    exit 1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss|stat::new_units_added" "$work/log.txt" | sed "s/^/  $name /"
  grep -E "^#[0-9]+.*DONE" "$work/log.txt" | sed "s/^/  $name /" || true
done
