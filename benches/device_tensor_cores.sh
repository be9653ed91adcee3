#!/usr/bin/env bash
# On a lent GPU machine (after benches/device_fidelity_prep.sh here; carry .devbin and .gl):
# the tensor-core kernels alone, about 2 minutes. Correctness first (kernels/tests/coop.rs),
# then GEMM 8192^3 in f16 three ways (direct fragment loads, staged through workgroup memory,
# SIMT), every conv pass of resnet18_in and wrn22_8 at batch 128 in f16 on tensor cores and on
# the SIMT tiles (`bench kernels --precision f16`) and in f32; the training steps are
# device_mixed_precision.sh's. Every figure lands in $OUT as it finishes.
set -u
source benches/device_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
warm_up
echo "== kernels/tests/coop.rs"
timeout 90 .devbin/coop_test --nocapture > "$OUT/coop_test.txt" 2>&1; rc=$?
grep -E "test result|panicked|split false forward" "$OUT/coop_test.txt" | tail -14
[ $rc = 0 ] || { echo "coop test failed (rc $rc): tensor-core figures below are not trustworthy"; }
echo "== GEMM 8192^3 f16: direct, staged, SIMT"
g="--device gpu bench gemm --size 8192x8192x8192 --reps 5 --precision f16"
timeout 60 $B $g 2>&1 | tail -1 | tee -a "$OUT/gemm.txt"
AUTOREP_COOP_DIRECT=0 timeout 60 $B $g 2>&1 | tail -1 | sed 's/$/ (staged)/' | tee -a "$OUT/gemm.txt"
AUTOREP_COOP=0 timeout 60 $B $g 2>&1 | tail -1 | sed 's/$/ (SIMT)/' | tee -a "$OUT/gemm.txt"
echo "== conv passes, f16, tensor cores then SIMT"
timeout 120 $B --device gpu bench kernels --precision f16 --reps 3 > "$OUT/kernels_f16_coop.txt" 2>&1
grep -E "conv2d|GEMM core" "$OUT/kernels_f16_coop.txt"
AUTOREP_COOP=0 timeout 120 $B --device gpu bench kernels --precision f16 --reps 3 > "$OUT/kernels_f16_simt.txt" 2>&1
grep -E "conv2d|GEMM core" "$OUT/kernels_f16_simt.txt"
echo "== conv passes, f32 (SIMT), for the f16/f32 comparison on the same device"
timeout 120 $B --device gpu bench kernels --reps 3 > "$OUT/kernels_f32.txt" 2>&1
grep -E "conv2d|GEMM core" "$OUT/kernels_f32.txt" | head -3
echo "== f16 on tensor cores at batch 32 (does a layer's rate depend on M?)"
timeout 60 $B --device gpu bench kernels --precision f16 --reps 3 --batch 32 2>&1 | grep conv2d_forward \
  | tee -a "$OUT/kernels_f16_coop.txt"
ls -la $OUT
