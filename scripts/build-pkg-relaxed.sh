#!/usr/bin/env bash
# Builds pkg-relaxed/: the wasm CPU path compiled with relaxed SIMD as well as SIMD128, so the
# int8 GEMM takes `i32x4.relaxed_dot_i8x16_i7x16_add_s` (src/backend/cpu/q8_gemm/relaxed.rs). A
# browser without relaxed SIMD refuses the whole module, so this is a second build beside the
# default one, which stays what every other page and browser uses; the app's worker loads it for
# single-threaded CPU captions where `WebAssembly.validate` accepts a relaxed dot product
# (www/worker/relaxed.js). CPU only, like the threaded build: WebGPU captions keep the default.
#   bash scripts/build-pkg-relaxed.sh            build it
#   bash scripts/build-pkg-relaxed.sh --trunk    Trunk's pre_build hook (Trunk.toml): as above,
#       but EDGECAP_RELAXED=0 leaves an empty pkg-relaxed/ (the app then captions with SIMD128).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --trunk ] && [ "${EDGECAP_RELAXED:-1}" = 0 ]; then
    echo "build-pkg-relaxed: EDGECAP_RELAXED=0; the app will caption with SIMD128 only (pkg-relaxed/ left empty)" >&2
    rm -rf pkg-relaxed
    mkdir -p pkg-relaxed
    exit 0
fi
# Its own target directory: other RUSTFLAGS would otherwise rebuild the default wasm each time.
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/wasm-relaxed
# RUSTFLAGS replaces .cargo/config.toml's flags for the target, so they are repeated here.
RUSTFLAGS='--cfg getrandom_backend="wasm_js" -C target-feature=+simd128,+relaxed-simd' \
    cargo build --release --lib --target wasm32-unknown-unknown --no-default-features \
    --target-dir "$TARGET_DIR" --quiet
wasm="$TARGET_DIR/wasm32-unknown-unknown/release/edgecap.wasm"
# Unchanged since the last run: keep pkg-relaxed/ as it is (Trunk runs this hook on every rebuild).
if [ -s pkg-relaxed/edgecap_bg.wasm ] && [ pkg-relaxed/edgecap_bg.wasm -nt "$wasm" ]; then
    exit 0
fi
rm -rf pkg-relaxed.new
wasm-bindgen --target web --typescript --out-dir pkg-relaxed.new "$wasm"
rm -rf pkg-relaxed
mv pkg-relaxed.new pkg-relaxed
ls -l pkg-relaxed/edgecap.js pkg-relaxed/edgecap_bg.wasm
