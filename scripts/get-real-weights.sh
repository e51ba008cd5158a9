#!/usr/bin/env bash
# Downloads Salesforce/blip-image-captioning-base (config, weights, tokenizer) from the Hugging Face
# hub and converts it to one self-contained q8_0 GGUF file: models/blip-base-q8_0.gguf.
# Needs a network; resumes an interrupted download.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="${BLIP_REPO:-Salesforce/blip-image-captioning-base}"
hub="${HF_ENDPOINT:-https://huggingface.co}"
dir="models/$(basename "$repo")"
out="${1:-models/blip-base-q8_0.gguf}"
mkdir -p "$dir"
for f in config.json tokenizer.json model.safetensors; do
  echo "downloading $repo/$f" >&2
  if ! curl -fL --progress-bar --retry 2 --connect-timeout 15 -C - -o "$dir/$f" "$hub/$repo/resolve/main/$f"; then
    echo "error: could not download $f from $hub (is there a network connection?)." >&2
    echo "       Copy config.json, tokenizer.json and model.safetensors of $repo into $dir by hand," >&2
    echo "       then run: cargo run --release -- convert --from $dir --to $out --dtype q8_0" >&2
    exit 1
  fi
done
cargo run --release --quiet -- convert --from "$dir" --to "$out" --dtype q8_0
echo "ready: $out" >&2
