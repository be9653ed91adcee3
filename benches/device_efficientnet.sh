#!/usr/bin/env bash
# On a lent GPU machine (after benches/device_fidelity_prep.sh here; carry .devbin and .gl):
# issue 13's figures for EfficientNet-B2, about 5 minutes. Warm-up first, then the conv
# passes at 224 (stem and 1x1 layers) and the depthwise/elementwise kernels in GB/s, one
# training step at batch 64 and 224x224 in ours and in PyTorch (FP32, TF32 off) when torch and
# torchvision are installed there, and the JPEG decoding rate on every core of that machine
# (synthetic 500x375 JPEGs written first). Everything lands in $OUT as it finishes.
set -u
source benches/device_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
$B devices 2>&1 | head -4
$B --device gpu bench step --model small --batch 64 --steps 3 > /dev/null 2>&1   # warm-up
echo "== kernels (efficientnet_b2 shapes, batch 64)"
timeout 150 $B --device gpu bench kernels --model efficientnet_b2 --batch 64 --reps 5 > "$OUT/kernels_b2.txt" 2>&1
tail -40 "$OUT/kernels_b2.txt"
echo "== step"
timeout 120 $B --device gpu bench step --model efficientnet_b2 --batch 64 --input 224 --steps 5 2>&1 | tail -1 | tee "$OUT/step_b2.txt"
if python3 -c "import torch, torchvision" 2>/dev/null; then
  timeout 90 python3 benches/torch_reference.py step --device cuda --model efficientnet_b2 --input 224 \
    --batch 64 --steps 10 2>&1 | tail -1 | tee -a "$OUT/step_b2.txt"
else
  echo "PyTorch reference skipped: no torch/torchvision on this machine" | tee -a "$OUT/step_b2.txt"
fi
echo "== input pipeline"
mkdir -p /tmp/inet && python3 - <<'PY' 2>/dev/null || echo "no Python PIL/numpy: input benchmark skipped"
import os, numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for c in range(8):
    d = f"/tmp/inet/train/n{c:08d}"; os.makedirs(d, exist_ok=True)
    for i in range(64):
        h, w = (375, 500) if i % 3 else (500, 375)
        img = rng.normal(128, 40, (h, w, 3)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(f"{d}/{i}.JPEG", quality=90)
PY
[ -d /tmp/inet/train ] && timeout 60 $B bench input --data /tmp/inet --batch 128 --batches 3 2>&1 | tail -1 | tee "$OUT/input.txt"
ls -la $OUT
