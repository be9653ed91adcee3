# Sourced by the device_*.sh scripts on a lent GPU machine: unpack Vulkan's loader (carried as
# .debs in .gl/), point it at NVIDIA's ICD, and name the binary and the output folder.
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
export WGPU_BACKEND=vulkan
# The built-in conv rule unless a script names a plans file: a machine where `autorep tune`
# once filled the plans cache would otherwise measure the tuned plans instead of the rule.
export AUTOREP_PLANS=rule
B=.devbin/autorep
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# A fresh machine's first heavy GPU process ran conv passes up to 3-4x slower than later ones
# (BENCHMARKS.md): one untimed pass over every conv and memory-bound kernel, in both
# precisions, before anything is measured. Once per machine: scripts run back to back in one
# call (e.g. `bash benches/device_profile.sh; bash benches/device_fusion.sh`) warm it up once.
warm_up() {
  [ -f /tmp/autorep_warm ] && return
  $B --device gpu bench kernels --reps 1 > /dev/null 2>&1
  $B --device gpu bench kernels --precision f16 --reps 1 > /dev/null 2>&1
  touch /tmp/autorep_warm
}
