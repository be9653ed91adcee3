#!/usr/bin/env bash
# One call on a lent GPU machine (see BENCHMARKS.md): GEMM, every kernel, training steps on the
# GPU, with and without split-K, and the CPU step against PyTorch on two pinned cores of the same
# machine. Expects a release binary in .devbin/autorep and Vulkan's loader debs in .gl/.
set -u
source benches/device_env.sh
passes() { # total ms per conv pass kind in a `bench kernels` listing
  awk '/conv2d/ {s[$1]+=$(NF-6)} END {for (k in s) printf "  %-20s %8.3f ms\n", k, s[k]}' "$1" | sort
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv
lscpu | grep -E "Model name|^CPU\(s\)"
$B devices 2>&1 | head -40
echo "== gemm"; $B --device gpu bench gemm --reps 10 --size 1024x1024x1024 --size 4096x4096x4096 \
  --size 8192x8192x8192 --size 131072x64x576 2>&1
echo "== torch gemm"; python3 benches/torch_reference.py gemm --size 8192 2>&1
# The first GPU process on a freshly started machine runs every kernel ~3x slower (measured:
# the same binary's second run is the fast one), so one untimed pass goes first.
$B --device gpu bench kernels --batch 128 --reps 3 > /dev/null 2>&1
echo "== kernels"; $B --device gpu bench kernels --batch 128 --reps 10 --json "$OUT/kernels_gpu.json" > "$OUT/kernels_gpu.txt" 2>&1
grep "GEMM core" "$OUT/kernels_gpu.txt"; passes "$OUT/kernels_gpu.txt"
echo "== without split-K (AUTOREP_SPLIT_TARGET=0)"
AUTOREP_SPLIT_TARGET=0 $B --device gpu bench kernels --batch 128 --reps 10 > "$OUT/kernels_nosplit.txt" 2>&1
passes "$OUT/kernels_nosplit.txt"
echo "== steps gpu"
for m in resnet18_in wrn22_8; do $B --device gpu bench step --model $m --batch 128 --steps 10 2>&1 | tail -1; done
$B --device gpu bench step --model resnet18_in --batch 32 --steps 10 2>&1 | tail -1
python3 benches/torch_reference.py step --device cuda --batch 128 --steps 10 2>&1
echo "== cpu, two pinned cores"
taskset -c 0,1 $B --device cpu bench kernels --model resnet18_in --batch 32 --reps 3 > "$OUT/kernels_cpu.txt" 2>&1
passes "$OUT/kernels_cpu.txt"; grep -E "bn_|relu|add" "$OUT/kernels_cpu.txt"
echo "== cpu steps, alternating"
for i in 1 2 3; do
  taskset -c 0,1 $B --device cpu bench step --model resnet18_in --batch 32 --steps 6 2>&1 | tail -1
  taskset -c 0,1 python3 benches/torch_reference.py step --device cpu --threads 2 --batch 32 --steps 6 2>&1
done
