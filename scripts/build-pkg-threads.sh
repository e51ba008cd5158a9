#!/usr/bin/env bash
# Builds pkg-threads/: the wasm CPU path with rayon on Web Workers sharing one memory, for
# cross-origin isolated pages (`initThreadPool(n)` after init; see pkg/README.md). The default
# single-threaded pkg/ stays what every other page uses; the app's worker picks this build for CPU
# captions when its page is isolated (www/worker/threads.js).
#   bash scripts/build-pkg-threads.sh            build it (fails when it cannot)
#   bash scripts/build-pkg-threads.sh --trunk    Trunk's pre_build hook (Trunk.toml): as above, but
#       where the nightly cannot be installed (no network) or EDGECAP_THREADS=0, it leaves an empty
#       pkg-threads/ and says so: the app then captions on one thread everywhere.
#
# Needs wasm atomics, so std is rebuilt with them: the pinned nightly of scripts/tools.sh
# (installed when missing) and -Z build-std, in its own target directory. CPU only: wgpu's
# WebGPU types are not Send in a build with atomics, and the threaded build is for devices that
# caption on the CPU. The memory's maximum is 1 GiB: shared memories are reserved at their
# maximum and iOS refuses large reservations; a BLIP-base caption needs about 340 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
trunk_hook=
[ "${1:-}" = --trunk ] && trunk_hook=1

without_threads() {
    echo "build-pkg-threads: $1; the app will caption on one thread (pkg-threads/ left empty)" >&2
    rm -rf pkg-threads
    mkdir -p pkg-threads
    exit 0
}
if [ -n "$trunk_hook" ] && [ "${EDGECAP_THREADS:-1}" = 0 ]; then
    without_threads "EDGECAP_THREADS=0"
fi
if ! threads_toolchain; then
    [ -n "$trunk_hook" ] && without_threads "the pinned nightly $THREADS_NIGHTLY could not be installed"
    exit 1
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/wasm-threads
[ -n "$trunk_hook" ] && echo "build-pkg-threads: building the threaded CPU build (about 10 minutes the first time)" >&2
RUSTFLAGS='--cfg getrandom_backend="wasm_js" -C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals -C link-arg=--max-memory=1073741824 -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base' \
    cargo "+$THREADS_NIGHTLY" build --release --lib --target wasm32-unknown-unknown --no-default-features --features threads \
    -Z build-std=panic_abort,std --target-dir "$TARGET_DIR" --quiet
wasm="$TARGET_DIR/wasm32-unknown-unknown/release/edgecap.wasm"
# Unchanged since the last run: keep pkg-threads/ as it is (Trunk runs this hook on every rebuild).
if [ -s pkg-threads/edgecap_bg.wasm ] && [ pkg-threads/edgecap_bg.wasm -nt "$wasm" ]; then
    exit 0
fi
# Into a fresh folder (stale snippets would linger), moved into place only once complete.
rm -rf pkg-threads.new
wasm-bindgen --target web --typescript --out-dir pkg-threads.new "$wasm"

# wasm-bindgen-rayon starts each pool worker from a blob: copy of its helper script. A blob: worker
# needs `worker-src blob:` in the app's Content-Security-Policy, and WebKit has had bugs giving blob
# workers the page's cross-origin isolation; the helper is same-origin here, so start it from its
# own URL (served with the app's headers). The build fails if the helper changed shape.
helper=$(find pkg-threads.new/snippets -name 'workerHelpers*.js' | head -1)
[ -n "$helper" ] || { echo "build-pkg-threads: no wasm-bindgen-rayon workerHelpers in pkg-threads.new/snippets" >&2; exit 1; }
python3 - "$helper" <<'PY'
import sys
path = sys.argv[1]
src = open(path).read()
old = [
    "      let scriptBlob = await fetch(import.meta.url).then(r => r.blob());\n",
    "      let url = URL.createObjectURL(scriptBlob);\n",
    "      URL.revokeObjectURL(url);\n",
]
for line in old:
    if src.count(line) != 1:
        sys.exit(f"build-pkg-threads: {path} changed; expected once: {line.strip()}")
src = src.replace(old[0], "").replace(old[1], "      const url = import.meta.url;  // edgecap: same-origin, no blob: (scripts/build-pkg-threads.sh)\n").replace(old[2], "")
open(path, "w").write(src)
PY
rm -rf pkg-threads
mv pkg-threads.new pkg-threads
ls -l pkg-threads/edgecap.js pkg-threads/edgecap_bg.wasm
