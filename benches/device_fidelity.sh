#!/usr/bin/env bash
# On a lent GPU machine (after benches/device_fidelity_prep.sh here; carry .devbin and .gl):
# the fidelity run of assets/configs/fidelity_cifar10_short.toml, then the identity ablation
# with the same settings. Each stage's metrics are copied to $OUT as soon as it ends, and the
# ablation only starts with time left (BUDGET_S, default 480), so a run cut short still
# returns what it finished.
set -u
source benches/device_env.sh
cfg=assets/configs/fidelity_cifar10_short.toml
run=/tmp/runs/fidelity_cifar10_short
budget=${BUDGET_S:-480}
save() {
  cp $run/summary.json $OUT/summary.json 2>/dev/null
  for s in train replace snl identity; do cp $run/$s/metrics.jsonl $OUT/metrics_$s.jsonl 2>/dev/null; done
}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
$B devices 2>&1 | head -4
$B --device gpu bench step --model small --batch 64 --steps 3 > /dev/null 2>&1   # warm-up
t=$SECONDS
timeout $((budget - 20)) $B --device gpu run $cfg --project --overwrite --quiet 2>&1 | tail -12
echo "run wall $((SECONDS - t)) s"
save
left=$((budget - SECONDS))
if [ $left -gt 100 ]; then
  t=$SECONDS
  timeout $((left - 10)) $B --device gpu replace --baseline $run/train/best.safetensors --data .devbin/c10 \
    --budget 12.9k --lambda 140 --dapa faithful --epochs 20 --weight-lr 1e-3 --mask-lr 3e-3 \
    --bn-recalib 8 --identity --project --overwrite --quiet --out $run/identity 2>&1 | tail -3
  echo "identity wall $((SECONDS - t)) s"
else
  echo "identity skipped: ${left} s left"
fi
save
ls -la $OUT
