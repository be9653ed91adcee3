#!/usr/bin/env bash
# On a lent GPU machine (after benches/device_fidelity_prep.sh here; carry .devbin and .gl):
# the tensor-core convolutions' two tiles side by side, about 2 minutes. The tests first (both
# tiles against the SIMT passes and the twins), then every f16 conv pass of resnet18_in and
# wrn22_8 (one model per process) and their f16 training steps at batch 128, with the wide
# 128x128 tile where a pass has 128 output columns or more (the default) and with the 64-column
# tile everywhere (AUTOREP_COOP_WIDE=0).
set -u
source benches/device_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
warm_up
timeout 90 .devbin/coop_test --nocapture > "$OUT/coop_test.txt" 2>&1 || {
  grep -E "panicked|test result" "$OUT/coop_test.txt"; echo "the tensor-core tests failed"; exit 1; }
grep -E "test result" "$OUT/coop_test.txt"
for wide in 1 0; do
  for model in resnet18_in wrn22_8; do
    AUTOREP_COOP_WIDE=$wide timeout 60 $B --device gpu bench kernels --model $model \
      --precision f16 --reps 5 > "$OUT/kernels_${model}_wide$wide.txt" 2>&1
    AUTOREP_COOP_WIDE=$wide timeout 60 $B --device gpu bench step --model $model --batch 128 \
      --steps 5 --precision f16 2>&1 | tail -1 | sed "s/\$/ (AUTOREP_COOP_WIDE=$wide)/" | tee -a "$OUT/step.txt"
  done
done
ls -la "$OUT"
