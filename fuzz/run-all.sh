#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 600) one after the other, on the corpus that
# fuzz/seed.sh made; findings land in fuzz/artifacts/<target>/. Needs a nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`).
#
#   bash fuzz/run-all.sh [SECONDS] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-600}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(gguf safetensors config image tokenizer)
for t in "${targets[@]}"; do
    echo "== $t: ${secs} s"
    # malloc_limit: one allocation over 2 GiB is a finding (a small file must never ask for that).
    cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -timeout=30 \
        -rss_limit_mb=3072 -malloc_limit_mb=2048 -print_final_stats=1 2>&1 | tail -25
    echo "== $t: exit ${PIPESTATUS[0]}"
done
