#!/usr/bin/env bash
# Builds pkg/: the library for other web apps (wasm-bindgen --target web, TypeScript types
# included). The generated files are not committed; pkg/README.md documents the API and
# pkg/example.html uses it.
#   bash scripts/build-pkg.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release --lib --target wasm32-unknown-unknown --no-default-features --features gpu --quiet
wasm-bindgen --target web --typescript --out-dir pkg "$TARGET_DIR/wasm32-unknown-unknown/release/edgecap.wasm"
ls -l pkg/edgecap.js pkg/edgecap.d.ts pkg/edgecap_bg.wasm
