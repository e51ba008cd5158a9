#!/usr/bin/env bash
# Trunk post-build hook: serves the models run.sh prepared (target/web-models/*.gguf and their
# .sha256 files) beside the app under models/. Hard links, so a 270 MB model costs nothing per
# build; never precached by the service worker.
set -euo pipefail
dir=${TRUNK_STAGING_DIR:?run by trunk as a post_build hook}
src="$(cd "$(dirname "$0")/.." && pwd)/target/web-models"
[ -d "$src" ] || exit 0
mkdir -p "$dir/models"
for f in "$src"/*; do
    [ -f "$f" ] || continue
    ln -f "$f" "$dir/models/" 2>/dev/null || cp "$f" "$dir/models/"
done
