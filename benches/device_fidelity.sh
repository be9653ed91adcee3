#!/usr/bin/env bash
# On a lent GPU machine (after benches/device_fidelity_prep.sh here; carry .devbin and .gl):
# the fidelity run of assets/configs/fidelity_cifar10_short.toml, then the identity ablation
# with the same settings, and the summaries copied to $OUT.
set -u
source benches/device_env.sh
cfg=assets/configs/fidelity_cifar10_short.toml
run=/tmp/runs/fidelity_cifar10_short
$B --device gpu bench step --model small --batch 64 --steps 3 > /dev/null 2>&1   # warm-up
t=$SECONDS
$B --device gpu run $cfg --project --overwrite --quiet 2>&1 | tail -8
echo "run wall $((SECONDS - t)) s"
t=$SECONDS
$B --device gpu replace --baseline $run/train/best.safetensors --data .devbin/c10 \
  --budget 12.9k --lambda 140 --dapa faithful --epochs 20 --weight-lr 1e-3 --mask-lr 3e-3 \
  --bn-recalib 8 --identity --project --overwrite --quiet --out $run/identity 2>&1 | tail -3
echo "identity wall $((SECONDS - t)) s"
cp $run/summary.json $OUT/summary.json
for s in train replace snl identity; do cp $run/$s/metrics.jsonl $OUT/metrics_$s.jsonl 2>/dev/null; done
ls -la $OUT
