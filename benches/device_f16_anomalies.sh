#!/usr/bin/env bash
# On a lent GPU machine (after benches/device_fidelity_prep.sh here; carry .devbin and .gl):
# the two open anomalies of the f16 path (BENCHMARKS.md, "Mixed precision"), about 2 minutes.
# 1. f16 SIMT convolutions measured 3-5x slower than f32 SIMT ones per pass, while an f16 step
#    on them was faster than f32: both, in one warmed-up call, on the SIMT path alone.
# 2. Per-pass rates that depended on the process: the same f16 listing twice in one process
#    (both models), then wrn22_8 alone.
set -u
source benches/device_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
warm_up
echo "== 1. wrn22_8 batch 32 forward passes, SIMT: f32 then f16"
for p in f32 f16; do
  AUTOREP_COOP=0 timeout 60 $B --device gpu bench kernels --model wrn22_8 --precision $p --batch 32 \
    --reps 5 2>&1 | grep conv2d_forward | head -5 | tee -a "$OUT/simt_passes.txt"
done
for p in f32 f16; do
  AUTOREP_COOP=0 timeout 60 $B --device gpu bench step --model wrn22_8 --batch 128 --steps 5 \
    --precision $p 2>&1 | tail -1 | tee -a "$OUT/simt_steps.txt"
done
echo "== 2. f16 tensor cores: both models in one process, twice; then wrn22_8 alone"
for i in 1 2; do
  timeout 90 $B --device gpu bench kernels --precision f16 --reps 5 > "$OUT/both_$i.txt" 2>&1
  grep -A3 -- "-- wrn22_8" "$OUT/both_$i.txt" | tail -3
done
timeout 60 $B --device gpu bench kernels --model wrn22_8 --precision f16 --reps 5 2>&1 \
  | grep conv2d | head -3 | tee "$OUT/wrn_alone.txt"
