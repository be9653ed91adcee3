#!/usr/bin/env bash
# Here, before a lent-GPU session: the release binary, Vulkan's loader debs and a CIFAR-10
# subset that fits the 64 MiB a device call carries (see assets/configs/
# fidelity_cifar10_short.toml). Then run, with carry [".devbin", ".gl"]:
#   bash benches/device_fidelity.sh
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.devbin/' .git/info/exclude 2>/dev/null || echo '/.devbin/' >> .git/info/exclude
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >> .git/info/exclude
cargo build --release --quiet
mkdir -p .devbin/c10
cp target/release/autorep .devbin/autorep
# The tensor-core GEMM's test (kernels/tests/coop.rs), which needs a GPU that has them.
coop=$(cargo test --release -p autorep-kernels --test coop --no-run --message-format=json 2>/dev/null \
  | grep -o '"executable":"[^"]*coop-[^"]*"' | cut -d'"' -f4 | head -1)
[ -n "$coop" ] && cp "$coop" .devbin/coop_test
src=../shared/data/cifar-10-jpeg75-bin
for i in 1 2 3 4 5; do head -c $((2400 * 3073)) $src/data_batch_$i.bin > .devbin/c10/data_batch_$i.bin; done
head -c $((2000 * 3073)) $src/test_batch.bin > .devbin/c10/test_batch.bin
cp $src/batches.meta.txt .devbin/c10/
# NVIDIA's Vulkan ICD is libGLX_nvidia, which needs glvnd: without libglvnd0 and its kin the
# loader finds the ICD but cannot create an instance ("Found no drivers").
if [ -z "$(ls .gl/libglvnd0_*.deb 2>/dev/null)" ]; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .devbin .gl
