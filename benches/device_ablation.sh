#!/usr/bin/env bash
# On a lent GPU machine, after benches/device_fidelity.sh (it reuses that run's baseline, or
# trains it when absent): two single-change ablations of the fidelity run's AutoReP stage —
# clean DaPa instead of faithful, and no BatchNorm re-estimation before evaluations.
set -u
source benches/device_env.sh
run=/tmp/runs/fidelity_cifar10_short
base=$run/train/best.safetensors
[ -f $base ] || $B --device gpu train --model resnet18_in --data .devbin/c10 --epochs 30 --batch 128 \
  --seed 2 --overwrite --quiet --out $run/train 2>&1 | tail -2
common="--baseline $base --data .devbin/c10 --budget 12.9k --lambda 140 --epochs 20 --weight-lr 1e-3 --mask-lr 3e-3 --project --overwrite --quiet"
for v in "clean --dapa clean --bn-recalib 8" "norecalib --dapa faithful --bn-recalib 0"; do
  set -- $v; name=$1; shift
  t=$SECONDS
  timeout ${STAGE_S:-150} $B --device gpu replace $common "$@" --out $run/$name 2>&1 | tail -2
  echo "$name wall $((SECONDS - t)) s"
  cp $run/$name/metrics.jsonl $OUT/metrics_$name.jsonl 2>/dev/null
done
