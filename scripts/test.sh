#!/usr/bin/env bash
# The project's test command: every Rust test (the GPU backend on Mesa's lavapipe, a software
# Vulkan driver), the cross-checks against llama.cpp's `gguf` Python package and nltk's BLEU,
# the eval/study commands end to end, and the GPU backend compiled to wasm in headless
# Chromium's WebGPU. Needs Rust, Python 3 with pip and a Debian-like system; installs what is
# missing: Debian packages (mesa-vulkan-drivers, libvulkan1, chromium, chromium-driver; as root
# or through sudo), the Python packages (gguf numpy safetensors nltk, into the cargo target dir)
# and wasm-bindgen-cli (cargo install).
#
#   bash scripts/test.sh
#
# Runs every stage even after one fails; the last line is "N passed, M failed" (stages), and
# the exit status is non-zero when any stage failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
PY_DEPS="$TARGET_DIR/python-deps/$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
export PYTHONPATH="$PY_DEPS${PYTHONPATH:+:$PYTHONPATH}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgecap-test-sh.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
failed_names=()
stage_no=0

# stage NAME COMMAND...: runs COMMAND (a function or program) with errexit on, records the result.
stage() {
    local name=$1 rc
    shift
    stage_no=$((stage_no + 1))
    echo
    echo "==> [$stage_no] $name"
    set +e
    (set -e; "$@")
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        echo "<== [$stage_no] ok: $name"
        passed=$((passed + 1))
    else
        echo "<== [$stage_no] FAILED (exit $rc): $name"
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
}

system_packages() {
    local missing=()
    [ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 ||
        missing+=(mesa-vulkan-drivers libvulkan1)
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    # WebKitGTK (Safari's engine) for the app's CPU path, under a virtual X display.
    command -v WebKitWebDriver >/dev/null || missing+=(webkit2gtk-driver)
    command -v Xvfb >/dev/null || missing+=(xvfb)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    ls /usr/share/vulkan/icd.d/
}

wasm_tools() {
    # The wasm32 target, wasm-bindgen-cli (= Cargo.lock's wasm-bindgen; also the test runner)
    # and Trunk, each installed only when missing; and the pinned nightly with rust-src that the
    # threaded CPU build needs (the app's trunk build then builds it; here it must not be skipped).
    web_tools
    threads_toolchain
}

python_packages() {
    if ! python3 -c 'import gguf, numpy, safetensors, nltk' 2>/dev/null; then
        echo "installing gguf numpy safetensors nltk into $PY_DEPS"
        # --target: no root, no virtualenv, and allowed where the system Python is
        # externally managed (PEP 668, as on Debian 12).
        python3 -m pip install --quiet --disable-pip-version-check --upgrade --target "$PY_DEPS" gguf numpy safetensors nltk
    fi
    python3 -c 'from importlib.metadata import version as v; print("gguf", v("gguf"), "| numpy", v("numpy"), "| safetensors", v("safetensors"), "| nltk", v("nltk"))'
}

docs_links() {
    # Every relative link and #anchor in README.md, docs/ and the other tracked *.md files.
    node scripts/check-links.mjs
}

# rustfmt and clippy come with rustup's default profile; added where a minimal one left them out.
rust_component() {
    cargo "$1" --version >/dev/null 2>&1 || rustup component add "$2"
}

formatted() {
    rust_component fmt rustfmt
    cargo fmt --check
}

lints() {
    rust_component clippy clippy
    cargo clippy --all-targets --quiet -- -D warnings
}

rust_tests() {
    # tests/gguf.rs rewrites this file for the last stage; never check a stale one.
    rm -f "$TARGET_DIR/tmp/edgecap_written.gguf"
    # --no-fail-fast: one failing test target does not hide the results of the others.
    # The GPU tests must run here (on lavapipe), not skip for want of an adapter.
    EDGECAP_REQUIRE_GPU=1 cargo test --release --no-fail-fast
}

q8_0_gguf_matches_gguf_py() {
    cargo build --release --quiet
    local model=tests/fixtures/models/blip-tiny-random
    "$TARGET_DIR/release/edgecap" convert --from "$model" --to "$WORK/tiny-q8_0.gguf" --dtype q8_0 \
        --tokenizer tests/fixtures/models/tokenizer.json
    python3 tests/fixtures/tools/check_q8_gguf.py "$WORK/tiny-q8_0.gguf" "$model"
}

gguf_writer_matches_gguf_py() {
    # Written by tests/gguf.rs (CARGO_TARGET_TMPDIR) during the cargo test stage.
    python3 tests/fixtures/tools/check_gguf_py.py "$TARGET_DIR/tmp/edgecap_written.gguf"
}

# ggml's own library (libggml-base.so from npm's @node-llama-cpp/linux-x64, a plain llama.cpp
# build) for its reference 4-bit quantizers, called through ctypes.
ggml_library() {
    local dir="$TARGET_DIR/ggml-ref" lib="$TARGET_DIR/ggml-ref/package/bins/linux-x64/libggml-base.so"
    if [ ! -f "$lib" ]; then
        mkdir -p "$dir"
        (cd "$dir" && npm pack --silent @node-llama-cpp/linux-x64@3.22.1 >/dev/null && tar xzf node-llama-cpp-linux-x64-3.22.1.tgz)
    fi
    echo "$lib"
}

q4_gguf_from_gguf_py() {
    # The fixture's 4-bit blocks and gguf-py's decoding of them are still what the installed gguf
    # writes and decodes (tests/q4_gguf.rs holds edgecap's reader to them, bit for bit), and the
    # quantizer fixture is still what ggml's reference quantizers write (tests/q4_gguf.rs holds
    # edgecap's quantizers to it) ...
    python3 tests/fixtures/tools/q4_blocks.py --check
    local lib
    lib=$(ggml_library)
    python3 tests/fixtures/tools/ggml_q4_reference.py --lib "$lib" --check
    cargo build --release --quiet
    local bin="$TARGET_DIR/release/edgecap" tok=tests/fixtures/models/tokenizer.json
    # ... a model whose matrices all take Q4_K (rows of 256 and 512), converted by edgecap: every
    # 4-bit tensor is ggml's bytes for the source ...
    local wide="$WORK/wide-random" m=tests/fixtures/models/blip-tiny-random
    python3 tests/fixtures/tools/wide_model.py "$wide"
    local d
    for d in q4_k q4_0; do
        "$bin" convert --from "$wide" --to "$WORK/wide-$d.gguf" --dtype "$d" --tokenizer "$tok"
        python3 tests/fixtures/tools/check_q4_gguf.py --lib "$lib" "$WORK/wide-$d.gguf" "$wide"
    done
    # ... the same written by gguf-py (tensors only, as other tools write them; Q4_K blocks from
    # ggml's library), and a tiny Q4_0 one, load with --config/--tokenizer; a GGUF goes back to f32 ...
    "$bin" convert --from "$wide" --to "$WORK/wide-f32.gguf" --dtype f32 --tokenizer "$tok" >/dev/null
    python3 tests/fixtures/tools/q4_model.py "$WORK/wide-f32.gguf" "$WORK/wide-py-q4_k.gguf" q4_k --lib "$lib"
    python3 tests/fixtures/tools/q4_model.py "$WORK/wide-f32.gguf" "$WORK/wide-py-q4_0.gguf" q4_0
    "$bin" convert --from "$m" --to "$WORK/tiny-f32-for-q4.gguf" --dtype f32 --tokenizer "$tok" >/dev/null
    python3 tests/fixtures/tools/q4_model.py "$WORK/tiny-f32-for-q4.gguf" "$WORK/tiny-py-q4_0.gguf" q4_0
    "$bin" convert --from "$WORK/wide-q4_k.gguf" --to "$WORK/wide-back-f32.gguf" --dtype f32
    # candle-transformers' quantized BLIP layout: tensors only, the LM head stored untied.
    "$bin" convert --from "$wide" --to "$WORK/wide-f32-candle.gguf" --dtype f32 --compat candle --tokenizer "$tok" >/dev/null
    python3 tests/fixtures/tools/q4_model.py "$WORK/wide-f32-candle.gguf" "$WORK/wide-candle-q4_k.gguf" q4_k --lib "$lib"
    # ... and each captions alike on the CPU and the GPU backend (lavapipe) for every image (greedy;
    # tests/gpu.rs takes every fixture case, prompts and beams included, on 4-bit tiny models):
    # the same ids, or ids that part at a near tie only (examples/backend_agreement.rs says when).
    cargo build --release --quiet --example backend_agreement
    local file config
    for file in wide-q4_k wide-q4_0 wide-py-q4_k wide-py-q4_0 wide-candle-q4_k tiny-py-q4_0 wide-back-f32; do
        config="$wide/config.json"
        [ "$file" = tiny-py-q4_0 ] && config="$m/config.json"
        "$TARGET_DIR/release/examples/backend_agreement" "$WORK/$file.gguf" "$config" "$tok" tests/fixtures/images/*.png
    done
}

bleu_matches_nltk() {
    cargo build --release --quiet
    # The figures tests/eval.rs reads are still what the installed nltk computes ...
    python3 tests/fixtures/tools/bleu_reference.py check tests/fixtures/eval/bleu_nltk.json
    # ... and on fresh random corpora (a new seed each run, printed) `edgecap eval` agrees to 1e-6.
    python3 tests/fixtures/tools/bleu_reference.py compare --edgecap "$TARGET_DIR/release/edgecap" --corpora 100
}

eval_and_study_on_the_tiny_model() {
    # Random weights: the captions are noise and their BLEU tests the plumbing, not the model.
    cargo build --release --quiet
    local bin="$TARGET_DIR/release/edgecap" model=tests/fixtures/models/blip-tiny-random
    local tok=tests/fixtures/models/tokenizer.json refs=tests/fixtures/eval/refs.jsonl
    "$bin" eval --references "$refs" --model "$model" --tokenizer "$tok" --images tests/fixtures/images \
        --out "$WORK/preds.jsonl" --backend cpu --json | tee "$WORK/eval.json"
    # What the captioning run reported is nltk's BLEU of the captions it wrote.
    python3 tests/fixtures/tools/bleu_reference.py score --predictions "$WORK/preds.jsonl" --references "$refs" > "$WORK/nltk.json"
    python3 - "$WORK/eval.json" "$WORK/nltk.json" <<'PY'
import json, sys
ours, nltk = (json.load(open(p)) for p in sys.argv[1:])
assert ours["n"] == nltk["n"] == 4, (ours, nltk)
for k in ("bleu1", "bleu2", "bleu3", "bleu4"):
    assert abs(ours[k] - nltk[k]) <= 1e-6, (k, ours[k], nltk[k])
assert all(ours["latency_ms"][p] > 0 for p in ("p50", "p90", "p99")), ours
print("eval --model agrees with nltk on the captions it wrote:", {k: ours[k] for k in ("n", "bleu1", "bleu4")})
PY
    # A second run finds every image captioned.
    "$bin" eval --references "$refs" --model "$model" --tokenizer "$tok" --images tests/fixtures/images \
        --out "$WORK/preds.jsonl" --json | python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["captioned"] == 0, d; print("resumed: nothing left to caption")'
    "$bin" study --model "$model" --tokenizer "$tok" --references "$refs" --images tests/fixtures/images \
        --out "$WORK/study" --backend cpu --sizes 32,64,96 --max-tokens 10 --dtypes f32,f16,q8_0,q4_k,q4_0
    for dtype in f32 f16 q8_0 q4_k q4_0; do
        grep -q "^dtype,$dtype," "$WORK/study/study.csv" || { echo "study.csv has no $dtype row"; head -3 "$WORK/study/study.csv"; return 1; }
    done
    for f in study.md study.csv bleu_vs_input_size.svg bleu_vs_sparsity.svg size_vs_sparsity.svg latency_vs_sparsity.svg \
        bleu_vs_size_by_dtype.svg latency_vs_size_by_dtype.svg; do
        test -s "$WORK/study/$f" || { echo "study wrote no $f"; return 1; }
    done
    grep -q 'input size (pixels per side)' "$WORK/study/bleu_vs_input_size.svg"
    grep -q 'weights pruned in scope (%)' "$WORK/study/size_vs_sparsity.svg"
    grep -q 'q4_k' "$WORK/study/bleu_vs_size_by_dtype.svg"
}

library_builds_for_wasm() {
    # The browser app compiles this same library; keep it compiling for wasm32, with and
    # without the GPU backend.
    cargo check --lib --no-default-features --target wasm32-unknown-unknown --quiet
    cargo check --lib --no-default-features --features gpu --target wasm32-unknown-unknown --quiet
}

library_package_for_web_apps() {
    # pkg/: wasm-bindgen --target web, with its TypeScript types ...
    bash scripts/build-pkg.sh
    grep -q 'static load(reader: ModelReader, backend: BackendChoice, onProgress?: ProgressCallback, options?: LoadOptions)' pkg/edgecap.d.ts
    grep -q 'readonly submitEvery: number | undefined' pkg/edgecap.d.ts
    grep -q 'readonly gpuLimits: GpuLimitsChoice | undefined' pkg/edgecap.d.ts
    grep -q 'captionImageData(image: ImageData): Promise<CaptionResult>' pkg/edgecap.d.ts
    grep -q 'captionWith(rgba: .*options?: CaptionOptions): Promise<CaptionResult>' pkg/edgecap.d.ts
    # ... and its example page, used in Chromium: load from a URL, caption a picked image, on
    # the CPU and on WebGPU, each equal to the CLI on the same image and backend.
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
    cargo build --release --quiet
    local bin="$TARGET_DIR/release/edgecap" m=tests/fixtures/models/blip-tiny-random tok=tests/fixtures/models/tokenizer.json
    mkdir -p "$WORK/pkg-models"
    "$bin" convert --from "$m" --to "$WORK/pkg-models/tiny-q8_0.gguf" --dtype q8_0 --tokenizer "$tok" >/dev/null
    "$bin" convert --from "$m" --to "$WORK/pkg-models/tiny-f32.gguf" --dtype f32 --tokenizer "$tok" >/dev/null
    node tests/e2e/pkg-example.mjs --pkg pkg --model "$WORK/pkg-models/tiny-q8_0.gguf" \
        --cpu-model "$WORK/pkg-models/tiny-f32.gguf" --cli "$bin"
    # Peak wasm memory while loading, per backend (figures printed; fails on WebGPU above 64 MiB
    # plus the largest tensor).
    node tests/e2e/wasm-memory.mjs --pkg pkg --model "$WORK/pkg-models/tiny-q8_0.gguf" --backends webgpu,cpu
}

app_builds_with_trunk() {
    EDGECAP_THREADS=1 trunk build --dist "$WORK/dist"
    for f in index.html edgecap.js edgecap_bg.wasm worker.js sw.js manifest.webmanifest threads/edgecap.js threads/edgecap_bg.wasm; do
        test -s "$WORK/dist/$f" || { echo "trunk build wrote no $f"; return 1; }
    done
    # The service worker knows this build's files (scripts/precache.sh ran).
    grep -q '^const BUILD = "[0-9a-f]\{16\}";' "$WORK/dist/sw.js"
    # The page carries its Content-Security-Policy (precache.sh also refuses inline scripts/styles;
    # the e2e scenario privacy-no-external-requests checks the policy is in force).
    grep -q '<meta http-equiv="Content-Security-Policy" content="[^"]*connect-src .self.;' "$WORK/dist/index.html"
    # The threaded build's pool workers start from their own URL, not a blob: the policy forbids.
    if grep -rq 'createObjectURL' "$WORK/dist/threads/snippets"; then echo "threads/snippets still starts workers from blob: URLs"; return 1; fi
    grep -q '"threads/edgecap_bg.wasm"' "$WORK/dist/sw.js"
    # The relaxed-SIMD build beside them, precached too.
    for f in relaxed/edgecap.js relaxed/edgecap_bg.wasm; do
        test -s "$WORK/dist/$f" || { echo "trunk build wrote no $f"; return 1; }
    done
    grep -q '"relaxed/edgecap_bg.wasm"' "$WORK/dist/sw.js"
    echo "wasm: $(stat -c %s "$WORK/dist/edgecap_bg.wasm") bytes, $(gzip -9 -c "$WORK/dist/edgecap_bg.wasm" | wc -c) gzipped"
    echo "threaded wasm: $(stat -c %s "$WORK/dist/threads/edgecap_bg.wasm") bytes, $(gzip -9 -c "$WORK/dist/threads/edgecap_bg.wasm" | wc -c) gzipped"
    echo "relaxed-SIMD wasm: $(stat -c %s "$WORK/dist/relaxed/edgecap_bg.wasm") bytes, $(gzip -9 -c "$WORK/dist/relaxed/edgecap_bg.wasm" | wc -c) gzipped"
}

app_end_to_end_in_chromium_and_webkitgtk() {
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
    cargo build --release --quiet
    # The test server alone (Range, faults, the Content-Security-Policy header), then the app.
    node --test tests/e2e/server.test.mjs
    # Includes privacy-no-external-requests, bad-models, bad-photos and long-run-cpu-20 (the short
    # variant of `node tests/e2e/long-run.mjs --captions 200`).
    node tests/e2e/run.mjs --dist "$WORK/dist" --cli "$TARGET_DIR/release/edgecap"
}

web_app_unit_tests() {
    # The page's logic without a browser: the state table, the suspension-aware watchdog, platform
    # detection, diagnostics, automatic mode, camera and speech decisions (tests/web/*.test.mjs).
    node --test tests/web/
}

web_app_memory_budget() {
    [ -d tests/e2e/node_modules/playwright-core ] || (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
    # The full-size random BLIP-base q8_0 (built under target/bench-models/ when missing) in the
    # built app: peak wasm + live GPU buffers + JS heaps, loading onto WebGPU (budget 700 MB) and
    # through a GPU loss, the fall-back and 20 CPU captions (budget 900 MB). About 5 min here.
    node benches/web/memory_budget.mjs --dist "$WORK/dist"
}

gpu_backend_in_headless_chromium() {
    # wasm-bindgen-test drives Chromium through chromedriver; webdriver.json (repository root)
    # gives the flags that turn WebGPU on headless (SwiftShader).
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER=$(command -v chromedriver) \
        WASM_BINDGEN_TEST_TIMEOUT=1500 \
        cargo test --release --target wasm32-unknown-unknown --no-default-features --features gpu --test wasm_gpu --test wasm_cpu --test cpu_kernels
    # The relaxed-SIMD build (scripts/build-pkg-relaxed.sh's flags and target directory): its int8
    # path against the definition and the scalar path, and every fixture case captioned like
    # transformers on its CPU backend.
    RUSTFLAGS='--cfg getrandom_backend="wasm_js" -C target-feature=+simd128,+relaxed-simd' \
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER=$(command -v chromedriver) \
        WASM_BINDGEN_TEST_TIMEOUT=1500 \
        cargo test --release --target wasm32-unknown-unknown --no-default-features --target-dir "$TARGET_DIR/wasm-relaxed" \
        --test cpu_kernels --test wasm_cpu
}

# wgpu wants a private runtime dir; lavapipe warns without one.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$WORK/xdg}
mkdir -p -m 700 "$XDG_RUNTIME_DIR"

stage "system packages (lavapipe, chromium, chromedriver, WebKitGTK driver, Xvfb)" system_packages
stage "wasm32 target, wasm-bindgen-cli and trunk" wasm_tools
stage "Python packages for the cross-checks (gguf numpy safetensors nltk)" python_packages
stage "README and docs/: every link resolves" docs_links
stage "cargo fmt --check (rustfmt.toml)" formatted
stage "cargo clippy --all-targets -- -D warnings" lints
stage "cargo test --release (all Rust tests)" rust_tests
stage "q8_0 GGUF from edgecap convert is byte-identical to gguf-py's quantization" q8_0_gguf_matches_gguf_py
stage "GGUF written by tests/gguf.rs reads and re-writes identically in gguf-py" gguf_writer_matches_gguf_py
stage "4-bit GGUF (Q4_0, Q4_K): read as gguf-py, written as ggml; edgecap and gguf-py files caption alike on cpu and gpu" q4_gguf_from_gguf_py
stage "BLEU equals nltk's corpus_bleu (committed figures, fresh random corpora)" bleu_matches_nltk
stage "edgecap eval and study run end to end on the tiny model and the synthetic set" eval_and_study_on_the_tiny_model
stage "the library builds for wasm32-unknown-unknown" library_builds_for_wasm
stage "wasm in headless Chromium: WebGPU and CPU backends caption like transformers; CPU kernels match their definitions" gpu_backend_in_headless_chromium
stage "pkg/ builds for other web apps, with TypeScript types" library_package_for_web_apps
stage "the web app's logic: node:test unit tests (tests/web)" web_app_unit_tests
stage "the web app builds with trunk (and its threaded CPU build)" app_builds_with_trunk
stage "the web app end to end: Chromium (WebGPU and CPU) and WebKitGTK (CPU)" app_end_to_end_in_chromium_and_webkitgtk
stage "the web app's memory budget with the full-size model (WebGPU load, GPU loss, CPU captions)" web_app_memory_budget

echo
for name in ${failed_names[@]+"${failed_names[@]}"}; do
    echo "FAILED: $name"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
