#!/usr/bin/env bash
# A/B: before (main at the branch point) and after (house), alternating.
set -u
B=/tmp/before/build/rackllm
A=/tmp/ab/rackllm-after
out=/tmp/ab/out
mkdir -p $out
for round in 1 2 3; do
  for which in before after; do
    bin=$B; [ $which = after ] && bin=$A
    $bin bench --shape llama3.2-1b --type q4_0 --no-sweep -p 128 -n 64 -r 3 -t 2 -q --json $out/single-$which-$round.json > $out/single-$which-$round.txt 2>&1
    echo "single $which $round rc=$?" >> $out/log
  done
  for which in after before; do
    bin=$B; [ $which = after ] && bin=$A
    $bin bench --shape llama3.2-1b --type q4_0 --sweep-only --partitions 0 --sessions 1,4,6 --prompt 128 --gen 32 -t 2 -q --json $out/sweep-$which-$round.json > $out/sweep-$which-$round.txt 2>&1
    echo "sweep $which $round rc=$?" >> $out/log
  done
done
echo done >> $out/log
