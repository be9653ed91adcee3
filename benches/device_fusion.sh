#!/usr/bin/env bash
# On a lent GPU machine (after benches/device_fidelity_prep.sh here; carry .devbin and .gl):
# the fused batch norm + activation op against the separate ops, about 4 minutes. Training
# steps of resnet18_in and wrn22_8 at batch 128 in f32 and f16, alternating AUTOREP_FUSE=1 and
# AUTOREP_FUSE=0 twice so that drift between processes shows; then the AutoReP stage's step
# (pixel-wise gates, DaPa statistics) through `bench step --gated`, fused and not. Each line
# carries images/s and the step's peak device memory. Last, the memory-bound kernels (batch
# norm's reductions among them) with each channel split over workgroups (the default) and with
# one workgroup per channel (AUTOREP_BN_PART=1000000000), and the resnet18_in f32 step both ways.
set -u
source benches/device_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
warm_up
for round in 1 2; do
  for precision in f32 f16; do
    for model in resnet18_in wrn22_8; do
      for fuse in 1 0; do
        AUTOREP_FUSE=$fuse timeout 60 $B --device gpu bench step --model $model --batch 128 \
          --steps 5 --precision $precision 2>&1 | tail -1 \
          | sed "s/\$/ (AUTOREP_FUSE=$fuse, round $round)/" | tee -a "$OUT/fusion.txt"
      done
    done
  done
done
for fuse in 1 0; do
  AUTOREP_FUSE=$fuse timeout 60 $B --device gpu bench step --model resnet18_in --batch 128 \
    --steps 5 --gated 12.9k 2>&1 | tail -1 | sed "s/\$/ (gated, AUTOREP_FUSE=$fuse)/" | tee -a "$OUT/fusion.txt"
done
for part in 8192 1000000000; do
  AUTOREP_BN_PART=$part timeout 60 $B --device gpu bench kernels --model resnet18_in --reps 5 \
    > "$OUT/kernels_bn_part$part.txt" 2>&1
  grep -E "^(bn_|gate_|relu|add)" "$OUT/kernels_bn_part$part.txt" | sed "s/\$/ (AUTOREP_BN_PART=$part)/"
  AUTOREP_BN_PART=$part timeout 60 $B --device gpu bench step --model resnet18_in --batch 128 \
    --steps 5 2>&1 | tail -1 | sed "s/\$/ (AUTOREP_BN_PART=$part)/" | tee -a "$OUT/fusion.txt"
done
ls -la "$OUT"
