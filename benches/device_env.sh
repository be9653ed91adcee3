# Sourced by the device_*.sh scripts on a lent GPU machine: unpack Vulkan's loader (carried as
# .debs in .gl/), point it at NVIDIA's ICD, and name the binary and the output folder.
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
export WGPU_BACKEND=vulkan
B=.devbin/autorep
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
