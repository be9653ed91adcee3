#!/usr/bin/env bash
# On a lent GPU machine, after benches/device_fidelity.sh: clean DaPa made safe by the official
# c2 clip (--clip-x2 1), and SNL at two α rates, all without BatchNorm re-estimation (the setting that
# benches/device_ablation.sh found better for AutoReP).
set -u
source benches/device_env.sh
run=/tmp/runs/fidelity_cifar10_short
base=$run/train/best.safetensors
t=$SECONDS
timeout 120 $B --device gpu replace --baseline $base --data .devbin/c10 --budget 12.9k --lambda 140 \
  --epochs 20 --weight-lr 1e-3 --mask-lr 3e-3 --dapa clean --clip-x2 1 --bn-recalib 0 \
  --project --overwrite --quiet --out $run/clean_clip 2>&1 | tail -2
echo "clean_clip wall $((SECONDS - t)) s"; cp $run/clean_clip/metrics.jsonl $OUT/metrics_clean_clip.jsonl 2>/dev/null
for v in "snl_norecalib 5e-3" "snl_slow 2e-3"; do
  set -- $v
  t=$SECONDS
  timeout 100 $B --device gpu snl --baseline $base --data .devbin/c10 --budget 12.9k --lambda 1e-5 \
    --epochs 16 --lr 1e-3 --alpha-lr $2 --schedule paced --finetune-epochs 4 --finetune-lr 1e-2 \
    --bn-recalib 0 --project --overwrite --quiet --out $run/$1 2>&1 | tail -2
  echo "$1 wall $((SECONDS - t)) s"; cp $run/$1/metrics.jsonl $OUT/metrics_$1.jsonl 2>/dev/null
done
