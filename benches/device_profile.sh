#!/usr/bin/env bash
# On a lent GPU machine (after benches/device_fidelity_prep.sh here; carry .devbin and .gl):
# where a training step's time goes, about 2 minutes. `bench step --profile` of resnet18_in and
# wrn22_8 at batch 128 in f32 and f16 (tensor cores), and in f16 with the tensor cores off
# (AUTOREP_COOP=0: the f16 SIMT convolutions inside a real step, the first anomaly of
# BENCHMARKS.md's mixed-precision section): the host's recording time against the device's
# time per step, the device time per kernel, and per layer pass. One file per run in $OUT; the
# headlines and the splits go to $OUT/profile.txt.
set -u
source benches/device_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
warm_up
for model in resnet18_in wrn22_8; do
  for run in f32 f16 f16_simt; do
    precision=${run%_simt}
    coop=1; [ "$run" = f16_simt ] && coop=0
    file="$OUT/profile_${model}_$run.txt"
    AUTOREP_COOP=$coop timeout 90 $B --device gpu bench step --model $model --batch 128 \
      --steps 5 --precision $precision --profile > "$file" 2>&1
    tail -2 "$file" | sed "s/\$/ ($run)/" | tee -a "$OUT/profile.txt"
  done
done
ls -la "$OUT"
