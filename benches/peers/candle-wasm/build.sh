#!/usr/bin/env bash
# Builds benches/peers/candle-wasm/pkg/: candle-transformers' quantized_blip for the browser
# (wasm32-unknown-unknown, release, SIMD128 from the repository's .cargo/config.toml, then
# wasm-bindgen --target web), the peer benches/web/wasm_speed.mjs times edgecap against.
#   bash benches/peers/candle-wasm/build.sh
set -euo pipefail
cd "$(dirname "$0")"
# Run from inside the repository so cargo reads its .cargo/config.toml (edgecap's wasm rustflags).
cargo build --release --target wasm32-unknown-unknown --quiet
wasm-bindgen --target web --typescript --out-dir pkg target/wasm32-unknown-unknown/release/candle_wasm.wasm
ls -l pkg/candle_wasm.js pkg/candle_wasm_bg.wasm
