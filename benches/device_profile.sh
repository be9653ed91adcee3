#!/usr/bin/env bash
# On a lent GPU machine (after benches/device_fidelity_prep.sh here; carry .devbin and .gl):
# where a training step's time goes, about 5 minutes. First the tensor-core tests
# (kernels/tests/coop.rs), then the f16 GEMM at 8192^3 beside the tensor cores' ceiling on
# this path (fragments in registers, in workgroup memory, in a storage buffer:
# shaders/coop_peak.wgsl), and the f32 GEMM with and without its pipelined K loop. Then `bench step --profile` of resnet18_in and wrn22_8 at batch 128
# in f32 and in f16 on tensor cores (each also with the conv tiles' K loop pipelined,
# AUTOREP_PREFETCH=1), and in f16 with the tensor cores off (AUTOREP_COOP=0: the f16 SIMT
# convolutions inside a real step, the first anomaly of BENCHMARKS.md's mixed-precision
# section): the host's recording time against the device's per step, the device time per
# kernel and per layer pass, the device buffers at the memory peak by size (--memory), and
# each run's timeline as a Chrome trace. One file per run in
# $OUT; headlines and splits in $OUT/profile.txt.
set -u
source benches/device_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
warm_up
echo "== kernels/tests/coop.rs (the tensor-core kernels, the ceiling kernels among them)"
timeout 90 .devbin/coop_test --nocapture > "$OUT/coop_test.txt" 2>&1 || echo "coop test failed: see coop_test.txt"
grep -E "test result|panicked" "$OUT/coop_test.txt"
echo "== the tensor-core check (kernels/src/coop_check.rs; devices runs it), timed"
for coop in 1 0; do
  ( time AUTOREP_COOP=$coop timeout 60 $B --device gpu devices ) 2>&1 \
    | grep -E "tensor cores:|warning|real" | sed "s/\$/ (AUTOREP_COOP=$coop)/" | tee -a "$OUT/coop_check.txt"
done
timeout 60 $B --device gpu bench gemm --precision f16 --size 8192x8192x8192 --reps 5 2>&1 \
  | tee "$OUT/coop_ceiling.txt"
for prefetch in 0 1; do
  AUTOREP_PREFETCH=$prefetch timeout 60 $B --device gpu bench gemm --size 8192x8192x8192 --reps 5 \
    2>&1 | tail -1 | sed "s/\$/ (f32 SIMT, AUTOREP_PREFETCH=$prefetch)/" | tee -a "$OUT/gemm.txt"
done
# Runs: f32 and f16 (tensor cores), each also with the conv tiles' pipelined K loop
# (AUTOREP_PREFETCH=1, off by default until measured here), and f16 on the SIMT tiles.
for model in resnet18_in wrn22_8; do
  for run in f32 f32_prefetch f16 f16_prefetch f16_simt; do
    precision=${run%%_*}
    coop=1; [ "$run" = f16_simt ] && coop=0
    prefetch=0; [ "${run#*_}" = prefetch ] && prefetch=1
    file="$OUT/profile_${model}_$run.txt"
    AUTOREP_COOP=$coop AUTOREP_PREFETCH=$prefetch timeout 90 $B --device gpu bench step \
      --model $model --batch 128 --steps 5 --precision $precision --profile --memory \
      --trace "$OUT/trace_${model}_$run.json" > "$file" 2>&1
    tail -4 "$file" | sed "s/\$/ ($run)/" | tee -a "$OUT/profile.txt"
  done
done
ls -la "$OUT"
