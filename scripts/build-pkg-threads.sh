#!/usr/bin/env bash
# Builds pkg-threads/: the wasm CPU path with rayon on Web Workers sharing one memory, for
# cross-origin isolated pages (`initThreadPool(n)` after init; see pkg/README.md). The default
# single-threaded pkg/ stays what every other page uses.
#   bash scripts/build-pkg-threads.sh
#
# Needs wasm atomics, so std is rebuilt with them: the pinned nightly of scripts/tools.sh
# (installed when missing) and -Z build-std, in its own target directory. CPU only: wgpu's
# WebGPU types are not Send in a build with atomics, and the threaded build is for devices that
# caption on the CPU. The memory's maximum is 1 GiB: shared memories are reserved at their
# maximum and iOS refuses large reservations; a BLIP-base caption needs about 340 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
threads_toolchain
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/wasm-threads
RUSTFLAGS='--cfg getrandom_backend="wasm_js" -C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals -C link-arg=--max-memory=1073741824 -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base' \
    cargo "+$THREADS_NIGHTLY" build --release --lib --target wasm32-unknown-unknown --no-default-features --features threads \
    -Z build-std=panic_abort,std --target-dir "$TARGET_DIR" --quiet
rm -rf pkg-threads  # stale snippets would linger
wasm-bindgen --target web --typescript --out-dir pkg-threads "$TARGET_DIR/wasm32-unknown-unknown/release/edgecap.wasm"
ls -l pkg-threads/edgecap.js pkg-threads/edgecap_bg.wasm
