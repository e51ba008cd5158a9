#!/usr/bin/env bash
# The pinned web toolchain, installed only where missing (sourced by run.sh and test.sh):
# the wasm32 target, wasm-bindgen-cli = the wasm-bindgen of Cargo.lock, and Trunk 0.22.1.
#   source scripts/tools.sh; web_tools

TRUNK_VERSION=0.22.1
# The threaded wasm build (atomics) rebuilds std with -Z build-std, which only nightly allows;
# pinned so a new nightly cannot break it. Only its rust-src is needed, no wasm32 rust-std.
THREADS_NIGHTLY=nightly-2026-05-19

web_tools() {
    export PATH="$HOME/.cargo/bin:$PATH"
    rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
    local want
    want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
    if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$want" ]; then
        echo "installing wasm-bindgen-cli $want (a few minutes, once)" >&2
        # No --locked: its lockfile wants crates this registry mirror lacks.
        cargo install --quiet wasm-bindgen-cli --version "$want"
    fi
    if [ "$(trunk --version 2>/dev/null | cut -d' ' -f2)" != "$TRUNK_VERSION" ]; then
        echo "installing trunk $TRUNK_VERSION (about 25 minutes on 2 cores, once)" >&2
        # 0.22 declares a newer rust-version than it needs; it builds and runs on ours.
        cargo install --quiet trunk --version "$TRUNK_VERSION" --locked --ignore-rust-version
    fi
    # Trunk builds with cargo offline (Trunk.toml): fetch the crates first.
    cargo fetch --quiet
    echo "wasm-bindgen $(wasm-bindgen --version | cut -d' ' -f2), trunk $(trunk --version | cut -d' ' -f2)" >&2
}

threads_toolchain() {
    export PATH="$HOME/.cargo/bin:$PATH"
    if ! rustup component list --toolchain "$THREADS_NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
        echo "installing $THREADS_NIGHTLY with rust-src (for the threaded wasm build; once)" >&2
        rustup toolchain install "$THREADS_NIGHTLY" --profile minimal --component rust-src
    fi
}
