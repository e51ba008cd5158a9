#!/usr/bin/env bash
# Builds the web app with Trunk and serves it at http://127.0.0.1:8080/ (installs the pinned
# tools first where missing: see scripts/tools.sh). The app downloads its model from beside
# itself: the real BLIP-base q8_0 (fetched once with scripts/get-real-weights.sh where there is a
# network), otherwise this says so and serves the tiny RANDOM-weight test model, whose captions
# are noise.
#   bash scripts/run.sh                 (PORT=8080 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
# Mesa's Vulkan drivers complain on stderr without a runtime dir (the CLI probes for a GPU).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/edgecap-xdg-$(id -u)"
    mkdir -p -m 700 "$XDG_RUNTIME_DIR"
fi
web_tools
cargo build --release --quiet
bin=target/release/edgecap
models=target/web-models
mkdir -p "$models"

# sidecar FILE: FILE.sha256 for the app to verify the download against (skipped when current).
sidecar() {
    [ "$1.sha256" -nt "$1" ] || sha256sum "$1" | cut -d' ' -f1 > "$1.sha256"
}

real=models/blip-base-q8_0.gguf
port=${PORT:-8080}
if [ ! -f "$real" ] && [ -z "${EDGECAP_NO_DOWNLOAD:-}" ]; then
    # Once, where there is a network (about 1 GB from the Hugging Face hub; resumable).
    echo "no real model yet: trying to fetch it (set EDGECAP_NO_DOWNLOAD=1 to skip)" >&2
    bash scripts/get-real-weights.sh "$real" || true
fi
if [ -f "$real" ]; then
    ln -f "$real" "$models/blip-base-q8_0.gguf"
    sidecar "$models/blip-base-q8_0.gguf"
    url="http://127.0.0.1:$port/"
else
    rm -f "$models/blip-base-q8_0.gguf" "$models/blip-base-q8_0.gguf.sha256"
    echo "note: no real model at $real, and it could not be downloaded (it needs a network once: bash scripts/get-real-weights.sh)." >&2
    echo "note: serving the tiny RANDOM-weight test model instead: its captions are noise, not descriptions." >&2
    "$bin" convert --from tests/fixtures/models/blip-tiny-random --to "$models/tiny-q8_0.gguf" --dtype q8_0 \
        --tokenizer tests/fixtures/models/tokenizer.json >/dev/null 2>&1
    sidecar "$models/tiny-q8_0.gguf"
    url="http://127.0.0.1:$port/?model=models/tiny-q8_0.gguf"
fi
echo "open $url" >&2
exec trunk serve --port "$port"
