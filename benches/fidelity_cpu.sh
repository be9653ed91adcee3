#!/usr/bin/env bash
# CPU-scale fidelity runs for RESULTS.md: the small ResNet, a baseline, then AutoReP, its
# identity ablation and SNL at several budgets from that baseline, each method configured so
# that it reaches the budget by selection (the tables say, per row, whether it did).
#
#   bash benches/fidelity_cpu.sh fashion     # bundled Fashion-MNIST, 3 budgets (~10 min, 2 cores)
#   bash benches/fidelity_cpu.sh cifar10     # ../shared/data CIFAR-10 copy, first 5,000 images (~12 min)
#
# Writes runs/fidelity_<dataset>/{baseline,autorep+snl sweep,identity sweep} and prints the
# tables; times on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-fashion}
bin=target/release/autorep
cargo build --release --quiet
case "$which" in
  fashion)
    data=(--dataset fashion-mnist --data assets/fashion-mnist-small)
    budgets=2822,1129,564          # 5 %, 2 %, 1 % of 56,448
    base_epochs=6; epochs=6; snl_epochs=4; ft=2
    limits=()
    ;;
  cifar10)
    data=(--dataset cifar10 --data ../shared/data/cifar-10-jpeg75-bin)
    budgets=3686,1474              # 5 %, 2 % of 73,728
    base_epochs=10; epochs=6; snl_epochs=4; ft=2
    limits=(--limit-train 5000 --limit-test 2000)
    ;;
  *) echo "usage: $0 fashion|cifar10" >&2; exit 2 ;;
esac
out=runs/fidelity_$which
opts=(--batch 64 --quiet)
time $bin --device cpu train "${opts[@]}" --model small "${data[@]}" "${limits[@]}" --epochs $base_epochs \
  --lr 0.05 --out $out/baseline --overwrite
base=$out/baseline/best.safetensors
# AutoReP: λ 20, h from [0, 0.05], gate rate 0.02 (the start-of-run forecast checks it can
# switch enough gates off). SNL: paced λ₁ from 1e-4, α rate 0.02, then a short finetune.
gates=(--lambda 20 --h-init 0,0.05 --mask-lr 0.02)
time $bin --device cpu sweep "${opts[@]}" --baseline $base --budgets $budgets "${data[@]}" "${limits[@]}" \
  --epochs $epochs "${gates[@]}" --snl --snl-epochs $snl_epochs --snl-lambda 1e-4 \
  --snl-alpha-lr 0.02 --finetune-epochs $ft --finetune-lr 0.01 --project --overwrite \
  --out $out/sweep
time $bin --device cpu sweep "${opts[@]}" --baseline $base --budgets $budgets "${data[@]}" "${limits[@]}" \
  --epochs $epochs "${gates[@]}" --identity --project --overwrite --out $out/identity
