#!/usr/bin/env bash
# On a lent GPU machine (after benches/device_fidelity_prep.sh here; carry .devbin and .gl):
# issue 11's side-by-side figures, about 3 minutes on an H100 (its f16 GEMMs run on tensor cores where the
# adapter offers them; .devbin/coop_test, from the prep script, checks that path first, and
# the f16 figures fall back to the SIMT path if it fails). Warm-up; then for resnet18_in and
# wrn22_8 at batch 128: ours in f32 and f16 (images/s and peak device memory), PyTorch FP32
# (TF32 off), TF32 and AMP (fp16 autocast + GradScaler, channels_last) with peak CUDA memory
# when torch is installed there; then GEMM 8192^3 in f32 and f16, ours and cuBLAS. Every
# figure lands in $OUT as it finishes.
set -u
source benches/device_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
$B devices 2>&1 | head -6
# The tensor-core path first: if it fails here, every later f16 figure is taken on the SIMT
# path instead (AUTOREP_COOP=0) rather than lost.
echo "== tensor cores: the cooperative-matrix GEMM and convolutions against the SIMT kernels (kernels/tests/coop.rs)"
if [ -x .devbin/coop_test ]; then
  timeout 90 .devbin/coop_test --nocapture > "$OUT/coop_test.txt" 2>&1; rc=$?
  grep -E "tensor cores|test result|panicked" "$OUT/coop_test.txt" | tail -40
  [ $rc = 0 ] || { echo "coop test failed (rc $rc): f16 figures below on the SIMT path"; export AUTOREP_COOP=0; }
fi
warm_up
torch_ok=0; python3 -c "import torch" 2>/dev/null && torch_ok=1
for model in resnet18_in wrn22_8; do
  echo "== $model batch 128"
  for p in f32 f16; do
    timeout 90 $B --device gpu bench step --model $model --batch 128 --steps 5 --precision $p 2>&1 \
      | tail -1 | tee -a "$OUT/step_$model.txt"
  done
  if [ $torch_ok = 1 ]; then
    for p in fp32 tf32 amp; do
      timeout 60 python3 benches/torch_reference.py step --device cuda --model $model --batch 128 \
        --steps 10 --precision $p 2>&1 | tail -1 | tee -a "$OUT/step_$model.txt"
    done
  else
    echo "PyTorch reference skipped: no torch on this machine" | tee -a "$OUT/step_$model.txt"
  fi
done
echo "== GEMM 8192^3 (f16: tensor cores, then the SIMT core with AUTOREP_COOP=0)"
for p in f32 f16; do
  timeout 60 $B --device gpu bench gemm --size 8192x8192x8192 --reps 5 --precision $p 2>&1 | tail -1 \
    | tee -a "$OUT/gemm.txt"
done
AUTOREP_COOP=0 timeout 60 $B --device gpu bench gemm --size 8192x8192x8192 --reps 5 --precision f16 \
  2>&1 | tail -1 | sed 's/$/ (SIMT)/' | tee -a "$OUT/gemm.txt"
if [ $torch_ok = 1 ]; then
  for d in fp32 fp16; do
    timeout 30 python3 benches/torch_reference.py gemm --size 8192 --dtype $d 2>&1 | tail -1 | tee -a "$OUT/gemm.txt"
  done
fi
ls -la $OUT
