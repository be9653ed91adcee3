#!/usr/bin/env bash
# Tuning run on a lent GPU: the conv passes of both models under several split-K targets
# (AUTOREP_SPLIT_TARGET, output elements per pass; 0 = never split), with the step time of each.
set -u
source benches/device_env.sh
$B --device gpu bench kernels --batch 128 --reps 3 > /dev/null 2>&1   # warm-up (see BENCHMARKS.md)
for t in ${TARGETS:-0 4194304 16777216 33554432}; do
  echo "== split target $t"
  AUTOREP_SPLIT_TARGET=$t $B --device gpu bench kernels --batch 128 --reps 10 > "$OUT/kernels_split_$t.txt" 2>&1
  grep -E "GEMM core" "$OUT/kernels_split_$t.txt"; grep conv2d "$OUT/kernels_split_$t.txt" | awk '{s+=$(NF-6)} END {print "sum of conv pass ms:", s}'
  for m in resnet18_in wrn22_8; do AUTOREP_SPLIT_TARGET=$t $B --device gpu bench step --model $m --batch 128 --steps 10 2>&1 | tail -1; done
done
