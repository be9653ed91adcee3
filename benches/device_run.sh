#!/usr/bin/env bash
# One call on a lent GPU machine (see BENCHMARKS.md): GEMM, every kernel, training steps on the
# GPU, and the CPU step against PyTorch on two pinned cores of the same machine.
# Expects a release binary in .devbin/autorep and Vulkan's loader debs in .gl/.
set -u
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
export WGPU_BACKEND=vulkan
B=.devbin/autorep
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv
lscpu | grep -E "Model name|^CPU\(s\)"
$B devices 2>&1 | head -40
echo "== gemm"; $B --device gpu bench gemm --reps 10 --size 1024x1024x1024 --size 2048x2048x2048 \
  --size 4096x4096x4096 --size 8192x8192x8192 --size 131072x64x576 --size 32768x128x1152 2>&1
echo "== torch gemm"; python3 benches/torch_reference.py gemm --size 8192 2>&1
echo "== kernels"; $B --device gpu bench kernels --batch 128 --reps 10 --json "$OUT/kernels_gpu.json" > "$OUT/kernels_gpu.txt" 2>&1; tail -5 "$OUT/kernels_gpu.txt"
echo "== steps gpu"
for m in resnet18_in wrn22_8; do $B --device gpu bench step --model $m --batch 128 --steps 10 2>&1 | tail -1; done
$B --device gpu bench step --model resnet18_in --batch 32 --steps 10 2>&1 | tail -1
python3 benches/torch_reference.py step --device cuda --batch 128 --steps 10 2>&1
echo "== cpu, two pinned cores"
taskset -c 0,1 python3 benches/torch_reference.py step --device cpu --threads 2 --batch 32 2>&1
taskset -c 0,1 $B --device cpu bench step --model resnet18_in --batch 32 --steps 3 2>&1 | tail -1
