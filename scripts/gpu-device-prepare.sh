#!/usr/bin/env bash
# Builds here what scripts/gpu-device-bench.sh runs on the lent GPU machine (x86-64, no package
# registries, no Rust) and puts it in .device/ (git-ignored), which the `device` tool's `run`
# takes along with carry [".device"]:
#   .device/gpu_speed.xz  the release `gpu_speed` bench executable (xz: the carry limit is 64 MiB
#   .device/edgecap.xz    for the working tree and these together)
#   .device/gl/*.deb      the Vulkan/GL loader packages (unpacked into / there)
# The full-size random BLIP-base q8_0 (~250 MB) is not carried: the bench builds it there on
# first use (under target/bench-models/, kept while the machine stays warm).
#   bash scripts/gpu-device-prepare.sh          # SKIP_GL=1 to keep the .deb files already there
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(uname -m)" = x86_64 ] || { echo "gpu-device-prepare: build on x86-64 (the GPU machine is x86-64)" >&2; exit 1; }
DEV=.device
mkdir -p "$DEV/gl"
start=$SECONDS

echo "== cargo bench --bench gpu_speed --no-run (release)"
# The executable's path is printed by cargo ("Executable benches/gpu_speed.rs (target/release/deps/gpu_speed-HASH)").
exe=$(cargo bench --bench gpu_speed --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    try: m = json.loads(l)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "gpu_speed" and m.get("executable"):
        print(m["executable"])' | tail -1)
if [ -z "$exe" ] || [ ! -x "$exe" ]; then
    cargo bench --bench gpu_speed --no-run   # shows the error
    echo "gpu-device-prepare: no gpu_speed executable" >&2
    exit 1
fi
echo "   $exe"

echo "== cargo build --release (edgecap CLI)"
cargo build --release --bin edgecap

for pair in "$exe:gpu_speed" "target/release/edgecap:edgecap"; do
    src=${pair%%:*} name=${pair##*:}
    cp "$src" "$DEV/$name.tmp"
    strip "$DEV/$name.tmp" 2>/dev/null || true
    xz -T0 -6 -f -c "$DEV/$name.tmp" >"$DEV/$name.xz"
    rm -f "$DEV/$name.tmp" "$DEV/$name"
    echo "   $DEV/$name.xz: $(du -h "$DEV/$name.xz" | cut -f1) (from $(du -h "$src" | cut -f1))"
done

if [ "${SKIP_GL:-0}" != 1 ] || ! ls "$DEV"/gl/*.deb >/dev/null 2>&1; then
    echo "== apt-get download the Vulkan/GL loaders (amd64)"
    rm -f "$DEV"/gl/*.deb
    lists=/tmp/amd64-lists
    mkdir -p "$lists/partial"
    o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
    apt-get "${o[@]}" update -qq >/dev/null 2>&1 || apt-get "${o[@]}" update
    (cd "$DEV/gl" && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
ls "$DEV"/gl/*.deb | sed 's/^/   /'

total=$(du -sb "$DEV" | cut -f1)
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
limit=$((64 * 1024 * 1024))
printf '== %s: %.1f MiB; working tree that travels: %.1f MiB; together %.1f of 64 MiB\n' \
    "$DEV" "$(echo "$total / 1048576" | bc -l)" "$(echo "$tree / 1048576" | bc -l)" "$(echo "($total + $tree) / 1048576" | bc -l)"
if [ $((total + tree)) -gt $limit ]; then
    echo "gpu-device-prepare: over the 64 MiB the device tool carries" >&2
    exit 1
fi
echo "== done in $((SECONDS - start)) s; on the device: run with carry [\".device\"]: bash scripts/gpu-device-bench.sh"
