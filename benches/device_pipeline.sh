#!/usr/bin/env bash
# On a lent GPU machine: `autorep demo` and benches/gpu_pipeline.toml, timed. Expects the
# release binary in .devbin/autorep, Vulkan's loader debs in .gl/ and the CIFAR-10 prefix in
# .devbin/cifar-10-partial-bin.
set -u
source benches/device_env.sh
mkdir -p /tmp/c10
for i in 1 2 3 4 5; do ln -sf "$PWD/.devbin/cifar-10-partial-bin/data_batch_$i.first1017.bin" /tmp/c10/data_batch_$i.bin; done
ln -sf "$PWD/.devbin/cifar-10-partial-bin/test_batch.first1017.bin" /tmp/c10/test_batch.bin
$B --device gpu bench step --model small --batch 64 --steps 3 > /dev/null 2>&1   # warm-up
echo "== demo"; t=$SECONDS; $B --device gpu demo --out /tmp/runs/demo 2>&1 | tail -12; echo "demo wall $((SECONDS - t)) s"
echo "== pipeline"; t=$SECONDS; $B --device gpu run benches/gpu_pipeline.toml --quiet 2>&1 | tail -15; echo "pipeline wall $((SECONDS - t)) s"
for s in train replace finetune; do f=/tmp/runs/gpu_pipeline/$s/metrics.jsonl; [ -f $f ] && { echo "-- $s"; head -c 400 $f; echo; tail -n 1 $f; }; done
ls -R /tmp/runs/gpu_pipeline | head -20
