#!/usr/bin/env bash
# On a lent GPU machine (after benches/device_fidelity_prep.sh here; carry .devbin and .gl):
# `autorep tune` of resnet18_in and wrn22_8 at batch 128, f32 and f16, into one plans file,
# then each training step with the rule's plans against the measured ones (same warm machine,
# alternating). About 6 minutes; every tune saves its plans after each pass, so a timeout
# keeps what was measured. Results in $OUT: tune_*.txt (one line per pass), plans.txt (bring
# it back: benches/results/), steps.txt.
set -u
source benches/device_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
warm_up
for precision in f32 f16; do
  for model in resnet18_in wrn22_8; do
    timeout 150 $B --device gpu tune --model $model --batch 128 --precision $precision --reps 3 \
      --out "$OUT/plans.txt" > "$OUT/tune_${model}_$precision.txt" 2>&1
    tail -1 "$OUT/tune_${model}_$precision.txt" | sed "s/^/$model $precision: /"
  done
done
for model in resnet18_in wrn22_8; do
  for precision in f32 f16; do
    for plans in rule measured rule measured; do
      args="--plans rule"; [ $plans = measured ] && args="--plans $OUT/plans.txt"
      timeout 60 $B --device gpu $args bench step --model $model --batch 128 --steps 10 \
        --precision $precision 2>&1 | tail -1 | sed "s/\$/ ($plans plans)/" | tee -a "$OUT/steps.txt"
    done
  done
done
ls -la "$OUT"
