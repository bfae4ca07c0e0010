#!/usr/bin/env bash
for r in 1 2 3 4 5 6; do
  for w in before after; do
    bin=/tmp/before/build/rackllm; [ $w = after ] && bin=/tmp/ab/rackllm-after
    g=$($bin plan --hardware this --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["hardware"]["name"])' 2>/dev/null)
    bw=$($bin plan --hardware this | sed -n 's/.*cores, \([0-9.]*\) GB\/s.*/\1/p')
    echo "$r $w $bw"
  done
done
