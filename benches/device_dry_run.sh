#!/usr/bin/env bash
# Here, before a lent-GPU session, in a few minutes: run device scripts against a stand-in
# for the binary, so that a command the CLI no longer accepts (a renamed flag, a model or a
# precision it refuses) shows here and not in the 15 minutes of a device session. Each
# `autorep` command of the scripts runs the release binary on this machine's adapter
# (lavapipe) for at most DRY_SECONDS (default 3): one that exits with an error in that time
# failed its checks; one still running then got past them, and is stopped. The scripts run
# in a scratch copy of benches/ with a dry device_env.sh (no loader debs, no warm-up), so
# .devbin/ and .gl/ are left alone; nvidia-smi and the tensor-core test binary are stand-ins.
# What they write to /tmp/runs on the device goes to the scratch folder. Besides ok and FAIL,
# a command is marked "needs" when it starts from a checkpoint an earlier, stopped command
# would have trained, and "limit" when only this adapter's limits refuse it (lavapipe binds
# 128 MiB at most; a GPU's driver allows more, and the binary requests what it allows).
#   bash benches/device_dry_run.sh                      # the scripts BENCHMARKS.md names next
#   bash benches/device_dry_run.sh device_fusion.sh ... # these
set -u
cd "$(dirname "$0")/.."
root=$PWD
[ $# -gt 0 ] || set -- device_tune.sh device_profile.sh device_fusion.sh device_f16_anomalies.sh
cargo build --release --quiet || exit 1
bin=${CARGO_TARGET_DIR:-$root/target}/release/autorep
tmp=$(mktemp -d /tmp/autorep-dry.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/benches" "$tmp/.devbin" "$tmp/bin" "$tmp/out"
cp benches/*.sh benches/*.py benches/*.toml "$tmp/benches/" 2>/dev/null
mkdir "$tmp/assets"
for a in assets/*; do [ "$a" = assets/configs ] || ln -s "$root/$a" "$tmp/$a"; done
cp -r assets/configs "$tmp/assets/"
# What the scripts write to /tmp/runs on the device goes to the scratch folder here.
sed -i "s#/tmp/runs#$tmp/runs#g" "$tmp"/benches/*.sh "$tmp"/benches/*.toml "$tmp"/assets/configs/*.toml
# The CIFAR-10 data the scripts expect in .devbin/: the local copies they are cut from.
data=$root/../shared/data
[ -d "$data/cifar-10-jpeg75-bin" ] && ln -s "$data/cifar-10-jpeg75-bin" "$tmp/.devbin/c10"
[ -d "$data/cifar-10-partial-bin" ] && ln -s "$data/cifar-10-partial-bin" "$tmp/.devbin/"
cat > "$tmp/benches/device_env.sh" <<EOF
export WGPU_BACKEND=vulkan AUTOREP_PLANS=rule
B=.devbin/autorep
OUT=$tmp/out
warm_up() { :; }
EOF
cat > "$tmp/.devbin/autorep" <<EOF
#!/usr/bin/env bash
timeout -s KILL \${DRY_SECONDS:-3} "$bin" "\$@" > "$tmp/last.txt" 2>&1
rc=\$?
# A tune stopped before its first pass leaves no plans file, which the script's next commands
# read: a real tune of a small network writes one for this adapter (the rule covers the rest).
prev=""; for a in "\$@"; do
  if [ "\$prev" = --out ] && [ "\$1 \$2" = "--device gpu" ] && [ "\$3" = tune ] && [ ! -f "\$a" ]; then
    "$bin" --device gpu tune --model small --batch 2 --input 8 --reps 1 --out "\$a" > /dev/null 2>&1
  fi
  prev=\$a
done
if [ \$rc = 0 ] || [ \$rc = 137 ]; then
  echo "ok    autorep \$*" >> "$tmp/log.txt"
elif grep -q "checkpoint .* not found" "$tmp/last.txt"; then
  # It starts from a network an earlier command trains, stopped here before it wrote one.
  echo "needs autorep \$* (the checkpoint of an earlier command)" >> "$tmp/log.txt"
elif grep -q "exceeds this adapter's" "$tmp/last.txt"; then
  # A limit of the software adapter (lavapipe binds at most 128 MiB; a GPU's driver more).
  echo "limit autorep \$* (\$(grep -m1 -o "exceeds this adapter's[^;]*" "$tmp/last.txt"))" >> "$tmp/log.txt"
else
  echo "FAIL  autorep \$* (exit \$rc): \$(grep -m1 -i error "$tmp/last.txt")" >> "$tmp/log.txt"
fi
EOF
printf '#!/bin/sh\necho "test result: ok (dry run stand-in)"\n' > "$tmp/.devbin/coop_test"
printf '#!/bin/sh\necho "dry run, no GPU"\n' > "$tmp/bin/nvidia-smi"
chmod +x "$tmp/.devbin/autorep" "$tmp/.devbin/coop_test" "$tmp/bin/nvidia-smi"
cd "$tmp"
for s in "$@"; do
  s=${s#benches/}
  [ -f "benches/$s" ] || { echo "FAIL  no script benches/$s" >> log.txt; continue; }
  echo "== $s" >> log.txt
  PATH="$tmp/bin:$PATH" OUT="$tmp/out" timeout 600 bash "benches/$s" > /dev/null 2>&1
done
cat log.txt
fails=$(grep -c '^FAIL' log.txt)
echo "$(grep -c '^ok' log.txt) commands got past their checks, $(grep -c '^needs' log.txt) need an earlier command's checkpoint, $(grep -c '^limit' log.txt) exceed a limit of this adapter only, $fails failed"
[ "$fails" = 0 ]
