#!/usr/bin/env bash
# Builds the edgecap CLI and captions an image. Uses the real BLIP-base model when
# scripts/get-real-weights.sh has fetched it; otherwise says so and runs the tiny random-weight
# test model, whose output is noise, not a caption.
#   bash scripts/run.sh [IMAGE...]
set -euo pipefail
# Mesa's Vulkan drivers complain on stderr without a runtime dir (headless servers have none);
# the CLI probes for a GPU with --backend auto.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/edgecap-xdg-$(id -u)"
    mkdir -p -m 700 "$XDG_RUNTIME_DIR"
fi
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/edgecap
model=models/blip-base-q8_0.gguf
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(tests/fixtures/images/synthetic_640x480.png)
if [ -f "$model" ]; then
  exec "$bin" caption --model "$model" "${images[@]}"
fi
echo "note: no real model at $model (get it with: bash scripts/get-real-weights.sh — needs a network)." >&2
echo "note: captioning with the tiny RANDOM-weight test model instead: the words below are noise, not a description." >&2
tiny="target/blip-tiny-random-q8_0.gguf"
"$bin" convert --from tests/fixtures/models/blip-tiny-random --to "$tiny" --dtype q8_0 \
  --tokenizer tests/fixtures/models/tokenizer.json 2>/dev/null
exec "$bin" caption --model "$tiny" "${images[@]}"
